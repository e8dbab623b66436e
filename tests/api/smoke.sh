#!/usr/bin/env bash
# tests/api/smoke.sh BIN_DIR - chat-api's HTTP server on its own, every dependency unreachable
# (PostgreSQL, Redis and Kafka on closed ports): it starts on a free port, answers /healthz, is
# not ready (the database never answered), gives JSON 404 / 405 with Allow / 413 / 501, OPTIONS
# with Allow, 401 without a token, 503 with Retry-After for an account request, and exits 0 on
# SIGTERM. Run by ctest as api.smoke.
set -euo pipefail

bin=$1
dir=$(mktemp -d /tmp/chat-api-smoke.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
fail() {
    echo "api.smoke: $*" >&2
    echo "----- chat-api log" >&2
    cat "$dir/api.log" >&2 || true
    exit 1
}

: >"$dir/api.log" # there before the loop below reads it (the child opens it after the fork)
CHAT_API_PORT=0 CHAT_API_MAX_BODY=1024 CHAT_PG_DSN=postgresql://127.0.0.1:1/none \
    CHAT_PG_TIMEOUT_MS=500 CHAT_REDIS_PORT=1 CHAT_KAFKA_BROKERS=127.0.0.1:1 \
    CHAT_JWT_KEYS=smoke-test-secret-of-at-least-32-bytes "$bin/chat-api" >>"$dir/api.log" 2>&1 &
pid=$!
port=
for _ in $(seq 1 100); do # the port it took is in its log
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$dir/api.log" | head -1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "exited at start"
    sleep 0.1
done
[ -n "$port" ] || fail "no 'listening on' line"
url=http://127.0.0.1:$port

# check METHOD PATH WANT_STATUS [WANT_CODE] [extra curl args...]
check() {
    local method=$1 path=$2 want=$3 code=${4:-} got body
    shift 4 || shift $#
    if [ "$method" = HEAD ]; then # -X HEAD would wait for a body
        set -- --head "$@"
    else
        set -- -X "$method" "$@"
    fi
    got=$(curl -s -m 5 -o "$dir/body" -D "$dir/hdr" -w '%{http_code}' "$@" "$url$path") ||
        fail "$method $path: curl failed"
    [ "$got" = "$want" ] || fail "$method $path: $got, expected $want"
    if [ -n "$code" ]; then
        body=$(jq -r '.error.code' "$dir/body" 2>/dev/null) || fail "$method $path: body is not JSON"
        [ "$body" = "$code" ] || fail "$method $path: code $body, expected $code"
    fi
    grep -qi '^cache-control: no-store' "$dir/hdr" || fail "$method $path: no Cache-Control: no-store"
}

check GET /healthz 200
[ "$(cat "$dir/body")" = "ok" ] || fail "/healthz body"
check GET /readyz 503
grep -q '^db_seen=0' "$dir/body" || fail "/readyz does not say why"
check GET /api/v1/config 200
[ "$(jq -r '.limits.max_text' "$dir/body")" = 2000 ] || fail "/api/v1/config has no limits"
check GET /api/v1/users/me 401 auth_required
check POST /api/v1/auth/login 503 unavailable --data '{"username":"smoke","password":"x"}'
grep -qi '^retry-after: 1' "$dir/hdr" || fail "503 without Retry-After"
check POST /api/v1/auth/login 400 bad_json --data '{"username":'
check GET /metrics 200
grep -q '^chat_api_requests_total ' "$dir/body" || fail "/metrics has no chat_api_requests_total"
check GET /api/v1/nothing 404 not_found
check DELETE /healthz 405 method_not_allowed
grep -qi '^allow: GET' "$dir/hdr" || fail "405 without Allow: GET"
check OPTIONS /metrics 200 ""
grep -qi '^allow: GET' "$dir/hdr" || fail "OPTIONS without Allow"
check OPTIONS /nothing 404 not_found
check BREW /healthz 501 bad_request
check HEAD /healthz 200
# a body over CHAT_API_MAX_BODY on a GET route: read to its end, then 413
head -c 4096 /dev/zero | tr '\0' 'x' >"$dir/big"
check GET /healthz 413 too_big --data-binary @"$dir/big"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
grep -q 'exit clean' "$dir/api.log" || fail "no 'exit clean'"
echo "api.smoke: ok (port $port)"
