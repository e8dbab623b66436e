#!/usr/bin/env bash
# presence/tests/it_failover.sh BIN_DIR - integration test of chat-presence against a throwaway
# redis-server and a Kafka broker (scripts/lib/cluster.sh, service kafka alone; both on
# 127.0.0.1, free ports, stopped by PID on exit).
#
# Writes two gateway nodes' presence keys as a gateway would (chat/keys.h), runs two replicas
# and checks with kcat: exactly one replica publishes; per-room and total counts are right (a
# user on two nodes counts once); only changes are published; a vanished room is published as
# 0/0 exactly once; SIGKILL of the leader hands over within about the lease; SIGTERM releases
# the lease and exits 0. Exit status: 0 pass, 1 fail, 77 skipped (redis-server/kcat missing).
set -euo pipefail

BIN=${1:?usage: it_failover.sh BIN_DIR}
MULT=${CHAT_TEST_TIMEOUT_MULT:-1}
INTERVAL=200
LEASE=1000
SETTLE=0.6 # three intervals: long enough for a spurious republish to show
for tool in redis-server redis-cli kcat curl; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done

T=$(mktemp -d /tmp/it-presence.XXXXXX)
PIDS=()
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/cluster.sh
. "$here/../../scripts/lib/cluster.sh"
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    cluster_down "$T/k" >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$T"/*.log; do echo "--- $f" >&2; tail -n 15 "$f" >&2; done
    echo "--- records" >&2
    cat "$T/records" >&2 || true
    exit 1
}
now_ms() { date +%s%3N; }
# wait_for SECONDS DESCRIPTION CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
    local deadline=$(($(now_ms) + $1 * 1000 * MULT)) what=$2
    shift 2
    until "$@"; do
        (($(now_ms) < deadline)) || fail "timed out waiting for $what"
        sleep 0.05
    done
}

# ---- redis on a free port (retry when the random port is taken)
for _ in $(seq 20); do
    RP=$((20000 + RANDOM % 12000))
    redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no >"$T/redis.log" 2>&1 &
    RPID=$!
    ok=0
    for _ in $(seq 60); do
        if redis-cli -p "$RP" ping >/dev/null 2>&1; then ok=1; break; fi
        kill -0 "$RPID" 2>/dev/null || break
        sleep 0.05
    done
    ((ok)) && break
    kill "$RPID" 2>/dev/null || true
    wait "$RPID" 2>/dev/null || true
done
((ok)) || fail "redis-server did not start"
PIDS+=("$RPID")
R() { redis-cli -p "$RP" "$@" >/dev/null; }

# ---- Kafka: the same broker as every local cluster, topics created
mkdir -p "$T/k"
CHAT_BIN=$BIN CHAT_CLUSTER_SERVICES=kafka cluster_up "$T/k" 2>"$T/kafka-up.log" ||
    fail "the Kafka broker did not start ($T/k/logs/kafka.log)"
BROKERS=$(_cl_env_get "$T/k" CHAT_KAFKA_BROKERS)

kcat -u -C -b "$BROKERS" -t chat.presence -o beginning -q -f '%k %s\n' >"$T/records" 2>"$T/kcat.log" &
PIDS+=($!)

# ---- two gateway nodes: alice is on both, in r1 (2 + 3 connections)
FAR=$(($(now_ms) + 600000))
R ZADD chat:pres:nodes "$FAR" gw1 "$FAR" gw2
R HSET chat:pres:conns:gw1 r1 2 r2 1 '*' 4
R SADD chat:pres:users:gw1:r1 alice
R SADD chat:pres:users:gw1:r2 bob
R SADD 'chat:pres:users:gw1:*' alice bob
R HSET chat:pres:conns:gw2 r1 3 '*' 3
R SADD chat:pres:users:gw2:r1 alice carol
R SADD 'chat:pres:users:gw2:*' alice carol

PORT_pa='' PORT_pb='' # set by start_replica
# start_replica NAME: starts chat-presence with metrics on any port; sets PORT_<NAME>, PID_<NAME>
start_replica() {
    local name=$1
    env CHAT_KAFKA_BROKERS="$BROKERS" CHAT_KAFKA_LINGER_MS=1 CHAT_REDIS_PORT="$RP" \
        CHAT_METRICS_PORT=0 CHAT_INSTANCE_ID="$name" CHAT_PRESENCE_INTERVAL_MS=$INTERVAL \
        CHAT_PRESENCE_LEASE_MS=$LEASE "$BIN/chat-presence" >"$T/$name.log" 2>&1 &
    PIDS+=($!)
    printf -v "PID_$name" '%s' $!
    wait_for 10 "$name start" grep -q 'started:' "$T/$name.log"
    printf -v "PORT_$name" '%s' "$(sed -n 's/.*started:.* metrics=127.0.0.1:\([0-9]*\).*/\1/p' \
        "$T/$name.log")"
}
metric() { # metric PORT NAME
    curl -sf "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}
ready() { curl -sf "http://127.0.0.1:$1/readyz" >/dev/null; }
has() { grep -qF -- "$1" "$T/records"; }
count() { grep -cF -- "$1" "$T/records" || true; }

start_replica pa
wait_for 10 "pa ready" ready "$PORT_pa"
start_replica pb
wait_for 10 "pb ready" ready "$PORT_pb"

# ---- counts
TOTAL1='* {"type":"presence","scope":"total","conns":7,"users":3}'
R1='r1 {"type":"presence","scope":"room","room":"r1","conns":5,"users":2}'
R2='r2 {"type":"presence","scope":"room","room":"r2","conns":1,"users":1}'
wait_for 10 "first publish" has "$TOTAL1"
wait_for 5 "r1 5/2" has "$R1"
wait_for 5 "r2 1/1" has "$R2"

# ---- exactly one leader, and only it publishes
sleep "$SETTLE"
la=$(metric "$PORT_pa" chat_presence_leader)
lb=$(metric "$PORT_pb" chat_presence_leader)
[ $((la + lb)) -eq 1 ] || fail "leaders: pa=$la pb=$lb"
if [ "$la" = 1 ]; then LEADER=pa; FOLLOWER=pb; else LEADER=pb; FOLLOWER=pa; fi
fport=PORT_$FOLLOWER lpid=PID_$LEADER fpid=PID_$FOLLOWER
[ "$(metric "${!fport}" chat_presence_published_total)" = 0 ] || fail "the follower published"
[ "$(count "$TOTAL1")" = 1 ] || fail "unchanged total published again"

# ---- r2 vanishes from gw1: 0/0 once, total drops to 6 conns / 3 users
R HDEL chat:pres:conns:gw1 r2
R HSET chat:pres:conns:gw1 '*' 3
R DEL chat:pres:users:gw1:r2
R2ZERO='r2 {"type":"presence","scope":"room","room":"r2","conns":0,"users":0}'
wait_for 5 "r2 0/0" has "$R2ZERO"
wait_for 5 "total 6/3" has '* {"type":"presence","scope":"total","conns":6,"users":3}'
sleep "$SETTLE"
[ "$(count "$R2ZERO")" = 1 ] || fail "vanished room published more than once"
[ "$(count "$R1")" = 1 ] || fail "unchanged room r1 published again"

# ---- SIGKILL the leader: the follower takes over and publishes everything once
t0=$(now_ms)
kill -KILL "${!lpid}"
wait "${!lpid}" 2>/dev/null || true
is_leader() { [ "$(metric "$1" chat_presence_leader)" = 1 ]; }
seen_times() { [ "$(count "$1")" = "$2" ]; }
wait_for 10 "handover" is_leader "${!fport}"
dt=$(($(now_ms) - t0))
((dt <= LEASE + 2 * INTERVAL + 500)) || fail "handover took $dt ms (lease $LEASE ms)"
wait_for 5 "full publish by the new leader" seen_times "$R1" 2
echo "handover after SIGKILL: $dt ms"

# ---- SIGTERM: releases the lease, exits 0
kill -TERM "${!fpid}"
rc=0
wait "${!fpid}" || rc=$?
[ "$rc" = 0 ] || fail "chat-presence exited $rc on SIGTERM"
[ -z "$(redis-cli -p "$RP" GET chat:pres:leader)" ] || fail "lease not released"
grep -q 'lease: released' "$T/$FOLLOWER.log" || fail "no release logged"
echo "PASS"
