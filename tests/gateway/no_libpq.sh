#!/usr/bin/env bash
# tests/gateway/no_libpq.sh BIN_DIR - the gateway has no database client (issue 10): the
# chat-gateway binary links no libpq (ldd), while chat-api and the persister do (so the check
# is known to see libpq where it is). Run by ctest as gateway.no_libpq.
set -euo pipefail
bin=$1
fail() {
    echo "gateway.no_libpq: $*" >&2
    exit 1
}
command -v ldd >/dev/null || fail "ldd not found"
for b in chat-gateway chat-api chat-persister; do
    [ -x "$bin/$b" ] || fail "$bin/$b not built"
done
if ldd "$bin/chat-gateway" | grep -q 'libpq'; then
    ldd "$bin/chat-gateway" | grep libpq >&2
    fail "chat-gateway links libpq"
fi
ldd "$bin/chat-api" | grep -q 'libpq' || fail "chat-api does not link libpq: the check is blind"
ldd "$bin/chat-persister" | grep -q 'libpq' || fail "chat-persister does not link libpq"
echo "gateway.no_libpq: ok (chat-gateway links no libpq; chat-api and chat-persister do)"
