#!/usr/bin/env bash
# tests/web/run.sh - tests of the web client (web/):
#   run.sh unit      node --test on tests/web/js/ (the pure modules web/js/proto.js, state.js, and
#                    moderation.js's edit request and pins.js's requests against a stub fetch, and
#                    api.js's retry of a message not stored yet: retry.test.js; no dependencies,
#                    no browser)
#   run.sh browser   tests/web/browser.js, rooms.js, moderation.js, edits.js and pins.js (one after the other; shared
#                    helpers in lib.js): headless Chromium (the Debian package, /usr/bin/chromium,
#                    or CHAT_CHROMIUM) driven by npm playwright-core (pinned in package.json and
#                    package-lock.json, installed here with `npm ci` when missing; it never
#                    downloads a browser) against the integration cluster of CHAT_TEST_ENV
#                    (cluster.env), through nginx (CHAT_TEST_LB_URL).
# Environment: CHAT_TEST_ENV, CHAT_TEST_TIMEOUT_MULT, CHAT_CHROMIUM, CHAT_WEB_SCREENSHOTS (a
# directory: save the README screenshots there, e.g. docs/screenshots). Exits non-zero on failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v node >/dev/null 2>&1 || { echo "run.sh: node is not installed" >&2; exit 2; }

case ${1:-} in
unit)
    exec node --test "$here/js/"
    ;;
browser)
    chromium=${CHAT_CHROMIUM:-/usr/bin/chromium}
    [ -x "$chromium" ] || {
        echo "run.sh: no Chromium at $chromium (scripts/deps.sh installs the Debian package chromium)" >&2
        exit 2
    }
    if [ ! -d "$here/node_modules/playwright-core" ] ||
        [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
        echo "run.sh: npm ci in tests/web" >&2
        (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
    # one file at a time: each starts its own browser, and the machine may be small
    cd "$here" && CHAT_CHROMIUM=$chromium exec node --test --test-concurrency=1 browser.js rooms.js moderation.js edits.js pins.js
    ;;
*)
    echo "usage: $0 unit|browser" >&2
    exit 2
    ;;
esac
