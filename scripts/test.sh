#!/usr/bin/env bash
# Runs the whole test suite (SQLite and Postgres). See --help.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/test.sh [CARGO TEST ARGS...]

Runs every test of the workspace, on SQLite and on PostgreSQL:

    cargo test --workspace --locked [CARGO TEST ARGS...]

with RUST_BACKTRACE=1, and exits with cargo's exit status. Extra arguments
are passed to `cargo test` unchanged, e.g.

    scripts/test.sh -p bounty-store
    scripts/test.sh -- --nocapture some_test_name

Works from a fresh clone on a fresh Debian/Ubuntu machine that has only Rust,
as root (e.g. in CI, CI=true, no stdin) or as a normal user:

 1. Build dependencies: checks for a C/C++ compiler, cmake, clang,
    libclang-dev and pkg-config, and for the PostgreSQL server binaries
    (initdb, pg_ctl, postgres; on Debian in /usr/lib/postgresql/<ver>/bin).
    Missing ones are installed with apt-get (as root, or through password-less
    `sudo -n`), saying what is installed. If that is impossible the script
    stops and names exactly what to install. BOUNTY_NO_INSTALL=1 forbids
    installing; PG_BIN=<dir> points at a directory holding initdb and pg_ctl.

 2. PostgreSQL:
    - If TEST_DATABASE_URL is set, it is used as is. It must point at a
      Postgres server where its user may CREATE DATABASE: the tests create
      one fresh database per test from it
      (e.g. postgres://postgres:secret@127.0.0.1:5432/postgres).
    - Otherwise a throwaway server is started: initdb in a fresh temporary
      directory, listening on a free TCP port on 127.0.0.1 only (never the
      machine's usual 5432 server), trust authentication for user
      `postgres`, fsync off, max_connections=300. As root it runs as the
      `postgres` system user (or a `bounty-test` system user created for the
      purpose), because PostgreSQL refuses to run as root. TEST_DATABASE_URL
      is exported as postgres://postgres@127.0.0.1:<port>/postgres. The server
      is stopped and its directory removed on exit, pass or fail.

 3. Runs cargo test as above, then (with no extra arguments) the
    dashboard's browser tests, scripts/e2e.sh: headless Chromium against
    `bounty serve --demo`. BOUNTY_SKIP_E2E=1 skips them.

Options:
    -h, --help    show this help (only as the first argument)

Environment:
    TEST_DATABASE_URL    use this Postgres server instead of a throwaway one
    BOUNTY_NO_INSTALL=1  never install packages; fail naming what is missing
    BOUNTY_SKIP_E2E=1    skip the browser tests
    PG_BIN=<dir>         directory with initdb/pg_ctl/postgres to use
    BOUNTY_TEST_DRY_RUN=1
                         (development) do everything except `cargo test`;
                         instead run `psql "$TEST_DATABASE_URL"
                         -c 'select version()' [ARGS...]` if psql exists
EOF
}

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    usage
    exit 0
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source-path=SCRIPTDIR source=lib/deps.sh
. "$ROOT/scripts/lib/deps.sh"

header() { printf '\n==> %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

DRY_RUN=${BOUNTY_TEST_DRY_RUN:-0}
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

# ---------------------------------------------------------------- cleanup ---
PG_TMP=""      # throwaway server's directory, when we started one
PG_USER=""     # user the throwaway server runs as (root only)
PG_STARTED=0
INNER_PID=""   # the cargo test (or dry-run) process

# Runs a PostgreSQL server binary: as $PG_USER when we are root.
pg_run() {
    if [ "$IS_ROOT" = 1 ]; then
        (cd "$PG_TMP" && runuser -u "$PG_USER" -- "$@")
    else
        (cd "$PG_TMP" && "$@")
    fi
}

# shellcheck disable=SC2317 # invoked from the EXIT trap
stop_postgres() {
    [ -n "$PG_TMP" ] || return 0
    if [ "$PG_STARTED" = 1 ] && [ -f "$PG_TMP/data/postmaster.pid" ]; then
        header "stopping throwaway Postgres"
        if ! pg_run "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w -t 30 stop >/dev/null 2>&1; then
            local pid
            pid=$(head -n 1 "$PG_TMP/data/postmaster.pid" 2>/dev/null || true)
            if [ -n "$pid" ]; then
                printf 'pg_ctl stop failed; killing postmaster %s\n' "$pid" >&2
                kill -KILL "$pid" 2>/dev/null || true
                sleep 1
            fi
        fi
    fi
    PG_STARTED=0
    rm -rf -- "$PG_TMP"
    PG_TMP=""
}

# shellcheck disable=SC2317 # invoked from the EXIT trap
on_exit() {
    local rc=$?
    set +e
    if [ -n "$INNER_PID" ] && kill -0 "$INNER_PID" 2>/dev/null; then
        header "stopping the running tests"
        kill -TERM -- "-$INNER_PID" 2>/dev/null || kill -TERM "$INNER_PID" 2>/dev/null
        wait "$INNER_PID" 2>/dev/null
    fi
    stop_postgres
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ----------------------------------------------------------- dependencies ---
header "checking build dependencies"
if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
        PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
        export PATH
    elif [ "$DRY_RUN" = 1 ]; then
        printf 'warning: cargo not found (ignored in a dry run)\n' >&2
    else
        die "cargo not found: install Rust (https://rustup.rs) and put cargo on PATH"
    fi
fi
bounty_ensure_build_deps || die "build dependencies missing (see above)"
printf 'ok: cc, c++, cmake, clang, libclang, pkg-config\n' >&2

# --------------------------------------------------------------- postgres ---
redact_url() {
    # postgres://user:secret@host/db -> postgres://user:***@host/db
    printf '%s\n' "$1" | sed -E 's#^([a-zA-Z][a-zA-Z0-9+.-]*://[^/:@]*:)[^@/]*@#\1***@#'
}

pick_port() {
    local p
    if command -v python3 >/dev/null 2>&1 &&
        p=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null) && [ -n "$p" ]; then
        printf '%s\n' "$p"
        return 0
    fi
    for _ in $(seq 1 200); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        [ "$p" -eq 5432 ] && continue
        if command -v ss >/dev/null 2>&1; then
            [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ] || continue
        fi
        # A refused connection means nothing listens there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    return 1
}

ensure_pg_user() {
    if id -u postgres >/dev/null 2>&1; then
        PG_USER=postgres
    else
        PG_USER=bounty-test
        if ! id -u "$PG_USER" >/dev/null 2>&1; then
            header "creating system user $PG_USER to run the throwaway Postgres (it refuses to run as root)"
            useradd --system --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin "$PG_USER" ||
                die "could not create user $PG_USER; create an unprivileged user or set TEST_DATABASE_URL"
        fi
    fi
}

# print_pg_logs NAME... : prints these logs from $PG_TMP.
print_pg_logs() {
    local f
    for f in "$@"; do
        f=$PG_TMP/$f
        if [ -s "$f" ]; then
            printf -- '----- %s -----\n' "${f##*/}" >&2
            cat "$f" >&2
        fi
    done
    printf -- '-----\n' >&2
}

# Tries to start the server on $PORT. Returns non-zero on failure (logs kept).
start_postgres_on_port() {
    local sock=$PG_TMP/sock
    cat >>"$PG_TMP/data/postgresql.conf" <<EOF

# --- throwaway test server (scripts/test.sh) ---
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '${sock//\'/\'\'}'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    PG_STARTED=1
    # server.log is written by the server (as $PG_USER); pg_ctl's own output
    # goes to pg_ctl.log, which this shell creates.
    pg_run "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 30 start \
        >"$PG_TMP/pg_ctl.log" 2>&1 || return 1

    for _ in $(seq 1 60); do
        if [ -x "$PG_BIN/pg_isready" ]; then
            "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -t 1 && return 0
        elif (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    printf 'server did not accept connections on 127.0.0.1:%s within 30 s\n' "$PORT" >&2
    return 1
}

start_throwaway_postgres() {
    bounty_ensure_postgres_bins || die "PostgreSQL server binaries missing (see above)"
    printf 'ok: PostgreSQL server binaries in %s\n' "$PG_BIN" >&2

    local base=${TMPDIR:-/tmp}
    # The server's unix socket path must stay under ~100 bytes.
    [ "${#base}" -le 60 ] || base=/tmp
    if [ "$IS_ROOT" = 1 ]; then
        ensure_pg_user
        base=/tmp # must be reachable by $PG_USER
    fi
    PG_TMP=$(mktemp -d "$base/bounty-pg.XXXXXX") || die "could not create a temporary directory in $base"
    mkdir -p "$PG_TMP/sock"
    if [ "$IS_ROOT" = 1 ]; then
        chown -R "$PG_USER:" "$PG_TMP"
    fi

    local attempt
    for attempt in 1 2 3; do
        PORT=$(pick_port) || die "could not find a free TCP port on 127.0.0.1"
        if [ "$IS_ROOT" = 1 ]; then
            header "starting throwaway Postgres on 127.0.0.1:$PORT (as user $PG_USER, in $PG_TMP)"
        else
            header "starting throwaway Postgres on 127.0.0.1:$PORT (in $PG_TMP)"
        fi
        if [ ! -f "$PG_TMP/data/PG_VERSION" ]; then
            # --locale=C: minimal machines often lack the locale named in $LANG.
            if ! pg_run "$PG_BIN/initdb" -D "$PG_TMP/data" -A trust -U postgres \
                --encoding=UTF8 --locale=C --no-sync >"$PG_TMP/initdb.log" 2>&1; then
                print_pg_logs initdb.log
                die "initdb failed (log above)"
            fi
            cp "$PG_TMP/data/postgresql.conf" "$PG_TMP/postgresql.conf.orig"
        else
            cp "$PG_TMP/postgresql.conf.orig" "$PG_TMP/data/postgresql.conf"
        fi
        if start_postgres_on_port; then
            TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
            export TEST_DATABASE_URL
            printf 'ok: TEST_DATABASE_URL=%s\n' "$TEST_DATABASE_URL" >&2
            return 0
        fi
        # Stop whatever half-started, and retry on another port only when
        # the port was taken between picking and binding it.
        pg_run "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
        PG_STARTED=0
        if ! grep -q 'Address already in use' "$PG_TMP/server.log" 2>/dev/null; then
            break
        fi
        printf 'port %s was taken; retrying on another port (attempt %s)\n' "$PORT" "$attempt" >&2
        rm -f "$PG_TMP/server.log"
    done
    print_pg_logs pg_ctl.log server.log
    die "throwaway PostgreSQL failed to start (server log above); set TEST_DATABASE_URL to use an existing server instead"
}

if [ -n "${TEST_DATABASE_URL:-}" ]; then
    header "using TEST_DATABASE_URL=$(redact_url "$TEST_DATABASE_URL")"
    export TEST_DATABASE_URL
else
    start_throwaway_postgres
fi

# ------------------------------------------------------------------ tests ---
# Run the inner command in the background, in its own process group, and wait
# for it: INT/TERM then reach this script at once (bash would otherwise defer
# traps until the command ends), and on_exit stops the whole group (cargo and
# the test binaries) before stopping the server.
run_inner() {
    local rc=0
    set -m
    # With job control on, bash would leave the terminal as stdin, and a
    # background read from it would stop the job; nothing here reads stdin.
    "$@" </dev/null &
    INNER_PID=$!
    set +m
    wait "$INNER_PID" || rc=$?
    INNER_PID=""
    return "$rc"
}

export RUST_BACKTRACE=1
shown_args=""
[ "$#" -eq 0 ] || shown_args=$(printf ' %q' "$@")
rc=0
if [ "$DRY_RUN" = 1 ]; then
    if command -v psql >/dev/null 2>&1; then
        header "dry run: psql \"\$TEST_DATABASE_URL\" -c 'select version()'$shown_args"
        run_inner psql "$TEST_DATABASE_URL" -X -v ON_ERROR_STOP=1 -c 'select version()' "$@" || rc=$?
    else
        header "dry run: psql not found; skipping the connection check"
    fi
else
    header "cargo test --workspace --locked$shown_args"
    run_inner cargo test --workspace --locked "$@" || rc=$?
    # The browser suite, unless only some Rust tests were asked for.
    if [ "$rc" -eq 0 ] && [ "$#" -eq 0 ] && [ "${BOUNTY_SKIP_E2E:-0}" != 1 ]; then
        header "browser tests (scripts/e2e.sh)"
        run_inner "$ROOT/scripts/e2e.sh" || rc=$?
    fi
fi

if [ "$rc" -eq 0 ]; then
    header "tests passed"
else
    header "tests FAILED (exit status $rc)"
fi
exit "$rc"
