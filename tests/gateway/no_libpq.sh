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
# ldd's whole output first: `ldd | grep -q` under pipefail fails when grep stops reading early
# and ldd gets SIGPIPE (a longer list, as with the sanitizers, makes that likely)
libs() {
    ldd "$bin/$1" || fail "ldd $bin/$1 failed"
}
gw=$(libs chat-gateway)
api=$(libs chat-api)
ps=$(libs chat-persister)
if grep -q 'libpq' <<<"$gw"; then
    grep libpq <<<"$gw" >&2
    fail "chat-gateway links libpq"
fi
grep -q 'libpq' <<<"$api" || fail "chat-api does not link libpq: the check is blind"
grep -q 'libpq' <<<"$ps" || fail "chat-persister does not link libpq"
echo "gateway.no_libpq: ok (chat-gateway links no libpq; chat-api and chat-persister do)"
