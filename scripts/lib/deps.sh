# shellcheck shell=bash
#
# Build-dependency checks shared by scripts/test.sh and bounty.sh.
# Source this file; it defines functions only and changes no shell options.
#
#   bounty_ensure_build_deps     C/C++ compiler, cmake, clang, libclang-dev, pkg-config
#   bounty_ensure_postgres_bins  PostgreSQL server binaries; sets PG_BIN
#
# Missing pieces are installed with apt-get (as root, or through `sudo -n`
# when that works without a password). Where that is impossible, the functions
# print exactly what to install and return non-zero.
#
# Environment:
#   BOUNTY_NO_INSTALL=1   never install anything; only report what is missing.

_bounty_apt_updated=0

_bounty_info() { printf '==> %s\n' "$*" >&2; }
_bounty_error() { printf 'error: %s\n' "$*" >&2; }

# Runs "$@" as root: directly when we are root, else via non-interactive sudo.
_bounty_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo -n "$@"
    fi
}

# True when _bounty_as_root can work without a prompt.
_bounty_can_root() {
    [ "$(id -u)" -eq 0 ] && return 0
    command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1
}

# _bounty_apt_install WHAT PKG... : installs Debian packages, or explains how.
_bounty_apt_install() {
    local what=$1
    shift
    local manual="apt-get install -y $*"
    [ "$(id -u)" -eq 0 ] || manual="sudo $manual"

    if [ "${BOUNTY_NO_INSTALL:-0}" = 1 ]; then
        _bounty_error "missing $what, and BOUNTY_NO_INSTALL=1 forbids installing."
        _bounty_error "install with: $manual"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        _bounty_error "missing $what, and apt-get is not available to install it."
        _bounty_error "install the equivalent of these Debian packages with your package manager: $*"
        return 1
    fi
    if ! _bounty_can_root; then
        _bounty_error "missing $what; installing needs root (not root, and no password-less sudo)."
        _bounty_error "install with: $manual"
        return 1
    fi

    _bounty_info "installing missing $what with apt-get: $*"
    if [ "$_bounty_apt_updated" != 1 ]; then
        if ! _bounty_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q; then
            _bounty_error "apt-get update failed; install these packages yourself: $manual"
            return 1
        fi
        _bounty_apt_updated=1
    fi
    if ! _bounty_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@"; then
        _bounty_error "apt-get install failed; install these packages yourself: $manual"
        return 1
    fi
}

# True when libclang (what bindgen loads) is present.
_bounty_have_libclang() {
    local d f
    if [ -n "${LIBCLANG_PATH:-}" ]; then
        for f in "$LIBCLANG_PATH"/libclang*.so*; do
            [ -e "$f" ] && return 0
        done
    fi
    if command -v dpkg-query >/dev/null 2>&1 &&
        [ "$(dpkg-query -W -f='${Status}' libclang-dev 2>/dev/null)" = "install ok installed" ]; then
        return 0
    fi
    for d in /usr/lib/llvm-*/lib /usr/lib64 /usr/lib /usr/lib/*-linux-gnu /usr/local/lib; do
        for f in "$d"/libclang.so "$d"/libclang-*.so; do
            [ -e "$f" ] && return 0
        done
    done
    return 1
}

# Ensures everything needed to compile bounty (and its C/C++ dependencies).
bounty_ensure_build_deps() {
    local missing=() labels=()

    if ! command -v cc >/dev/null 2>&1 || ! command -v c++ >/dev/null 2>&1; then
        missing+=(build-essential)
        labels+=("C/C++ compiler (cc, c++)")
    fi
    if ! command -v cmake >/dev/null 2>&1; then
        missing+=(cmake)
        labels+=(cmake)
    fi
    if ! command -v clang >/dev/null 2>&1; then
        missing+=(clang)
        labels+=(clang)
    fi
    if ! _bounty_have_libclang; then
        missing+=(libclang-dev)
        labels+=("libclang (libclang-dev)")
    fi
    if ! command -v pkg-config >/dev/null 2>&1; then
        missing+=(pkg-config)
        labels+=(pkg-config)
    fi

    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi

    local joined
    joined=$(printf '%s, ' "${labels[@]}")
    joined=${joined%, }
    _bounty_apt_install "build dependencies [$joined]" "${missing[@]}" || return 1

    # Re-check, so a broken install is reported here and not as a cryptic
    # compiler error twenty minutes later.
    local still=()
    command -v cc >/dev/null 2>&1 || still+=(cc)
    command -v c++ >/dev/null 2>&1 || still+=(c++)
    command -v cmake >/dev/null 2>&1 || still+=(cmake)
    command -v clang >/dev/null 2>&1 || still+=(clang)
    _bounty_have_libclang || still+=(libclang)
    command -v pkg-config >/dev/null 2>&1 || still+=(pkg-config)
    if [ "${#still[@]}" -ne 0 ]; then
        _bounty_error "still missing after installing: ${still[*]}"
        _bounty_error "install them with: apt-get install -y ${missing[*]} (as root)"
        return 1
    fi
}

# Prints the directory holding initdb and pg_ctl, if any.
_bounty_find_pg_bin() {
    local d cand
    if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ]; then
        printf '%s\n' "$PG_BIN"
        return 0
    fi
    # Debian/Ubuntu keep the server binaries off PATH, one dir per major
    # version; take the newest. Then RPM-style and source-install locations.
    cand=$(
        for d in /usr/lib/postgresql/*/bin; do
            [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && printf '%s\n' "$d"
        done | sort -t/ -k5,5 -V | tail -n 1
    )
    if [ -n "$cand" ]; then
        printf '%s\n' "$cand"
        return 0
    fi
    for d in /usr/pgsql-*/bin /usr/local/pgsql/bin; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        # Resolve symlinks so pg_ctl finds its sibling `postgres`.
        d=$(dirname "$(readlink -f "$(command -v initdb)")")
        if [ -x "$d/pg_ctl" ]; then
            printf '%s\n' "$d"
            return 0
        fi
    fi
    return 1
}

# Ensures initdb, pg_ctl and postgres exist; sets PG_BIN to their directory.
bounty_ensure_postgres_bins() {
    local dir
    if ! dir=$(_bounty_find_pg_bin); then
        _bounty_apt_install "PostgreSQL server binaries (initdb, pg_ctl, postgres)" postgresql || return 1
        if ! dir=$(_bounty_find_pg_bin); then
            _bounty_error "PostgreSQL server binaries still not found after installing 'postgresql'."
            _bounty_error "install them, or set PG_BIN to the directory that holds initdb and pg_ctl."
            return 1
        fi
    fi
    if [ ! -x "$dir/postgres" ]; then
        _bounty_error "found initdb and pg_ctl in $dir but no postgres binary next to them."
        _bounty_error "install the PostgreSQL server (Debian: sudo apt-get install -y postgresql)."
        return 1
    fi
    PG_BIN=$dir
    export PG_BIN
}

# Ensures what the dashboard's browser tests need: Node.js with npm, and
# Debian's Chromium (its own build: test tools cannot download browsers).
bounty_ensure_browser_deps() {
    local missing=() labels=()
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        missing+=(nodejs npm)
        labels+=("Node.js and npm")
    fi
    if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
        missing+=(chromium)
        labels+=("Chromium (${CHROMIUM:-/usr/bin/chromium})")
    fi
    [ "${#missing[@]}" -eq 0 ] && return 0
    local joined
    joined=$(printf '%s, ' "${labels[@]}")
    _bounty_apt_install "browser test dependencies [${joined%, }]" "${missing[@]}" || return 1
    if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ] || ! command -v node >/dev/null 2>&1; then
        _bounty_error "still missing after installing: ${missing[*]}"
        return 1
    fi
}
