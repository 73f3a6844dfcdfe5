#!/usr/bin/env bash
# Builds (if needed) and runs bounty from this checkout. See --wrapper-help.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ "${1:-}" = "--wrapper-help" ]; then
    cat <<'USAGE'
Usage: ./bounty.sh [BOUNTY ARGS...]
       ./bounty.sh --wrapper-help

Runs bounty from source:

    cargo run --release --locked -- [BOUNTY ARGS...]

e.g. `./bounty.sh serve`, `./bounty.sh --help` (bounty's own help).
All arguments go to bounty; the working directory is kept, so relative
paths (such as the data directory) are relative to where you run it.

Before building it checks the build dependencies (C/C++ compiler, cmake,
clang, libclang-dev, pkg-config) and installs missing ones with apt-get
(as root, or through password-less sudo), saying what it installs; where it
cannot, it stops and names exactly what to install.

Environment:
    BOUNTY_NO_INSTALL=1   never install packages; fail naming what is missing
USAGE
    exit 0
fi

# shellcheck source-path=SCRIPTDIR source=scripts/lib/deps.sh
. "$ROOT/scripts/lib/deps.sh"

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
        PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
        export PATH
    else
        printf 'error: cargo not found: install Rust (https://rustup.rs) and put cargo on PATH\n' >&2
        exit 1
    fi
fi

if ! bounty_ensure_build_deps; then
    printf 'error: cannot build bounty: build dependencies missing (see above)\n' >&2
    exit 1
fi

exec cargo run --release --locked --manifest-path "$ROOT/Cargo.toml" --bin bounty -- "$@"
