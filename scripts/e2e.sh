#!/usr/bin/env bash
# Runs the dashboard's browser tests (web/e2e) in real headless Chromium
# against the real `bounty` binary. See --help.
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    cat <<'USAGE'
Usage: scripts/e2e.sh

Runs every web/e2e/*.test.mjs with Node's test runner, one file at a
time (shared setup in web/e2e/support.mjs). Each file starts
`bounty serve --demo` on a fresh SQLite database in a temporary folder and
drives Debian's Chromium through playwright-core: log in, a signed webhook
becoming a task that is charged once its ticket is solved, the demo
helpdesk's solved (charged) and reopened (not charged) tickets, "No charge"
on a failed one, API keys, 375 px layouts, log out. Screenshots of every page go to web/e2e/artifacts/
(kept when a test fails).

It builds the debug binary if needed (`cargo build --locked`), installs
missing Node.js/npm and Chromium with apt-get (saying what it installs;
BOUNTY_NO_INSTALL=1 forbids it), and installs playwright-core from the npm
registry with `npm ci` (it never downloads a browser).

Environment:
    BOUNTY_BIN   the binary to test (default target/debug/bounty)
    CHROMIUM     the browser (default /usr/bin/chromium)
USAGE
    exit 0
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source-path=SCRIPTDIR source=lib/deps.sh
. "$ROOT/scripts/lib/deps.sh"

printf '\n==> checking browser test dependencies\n' >&2
bounty_ensure_browser_deps || { printf 'error: browser test dependencies missing (see above)\n' >&2; exit 1; }

if [ -z "${BOUNTY_BIN:-}" ]; then
    printf '\n==> cargo build --locked (the binary under test)\n' >&2
    cargo build --locked
    BOUNTY_BIN="$ROOT/target/debug/bounty"
fi
export BOUNTY_BIN

cd "$ROOT/web/e2e"
if [ ! -d node_modules/playwright-core ]; then
    printf '\n==> npm ci (playwright-core; no browser download)\n' >&2
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi
printf '\n==> browser tests (web/e2e)\n' >&2
node --test --test-concurrency=1 ./*.test.mjs
