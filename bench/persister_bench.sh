#!/usr/bin/env bash
# bench/persister_bench.sh [N] - persister throughput into partitioned PostgreSQL.
#
# Loads N message events into the local Kafka broker while the persister is stopped, starts it and times
# how fast it drains them into `messages` (batches of COPY, the next batch decoded while the
# database writes this one, offsets committed after each batch's database commit). The baseline, run on the same
# PostgreSQL right after, is a plain COPY of the same N rows into a table of the same shape
# (partitioned by day, same primary key and indexes): the database's own ingest limit.
# Redis runs too (the persister's real configuration: each batch goes to the recent cache after
# its commit, while the database works on the next one); CHAT_PERSISTER_BENCH_REDIS=0 leaves it
# out (the cache writes are then skipped at once: connection refused, backoff).
# Prints both rates and the ratio, and a JSON line. Stops everything it started.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${1:-300000}
with_redis=${CHAT_PERSISTER_BENCH_REDIS:-1}
export CHAT_BIN=${CHAT_BIN:-$repo/build/bin}
# shellcheck source=../scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"

dir=$(mktemp -d /tmp/chat-psbench.XXXXXX)
cleanup() {
    cluster_down "$dir" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

services="postgres kafka persister"
[ "$with_redis" = 0 ] || services="postgres redis kafka persister"
CHAT_CLUSTER_SERVICES="$services" cluster_up "$dir" >/dev/null
set -a
# shellcheck disable=SC1091
. "$dir/cluster.env"
set +a
cluster_stop persister "$dir" >/dev/null

ts=$(now_ms)
text=$(printf 'x%.0s' $(seq 64))
# key<TAB>value lines: 1000 rooms, unique ids, one day
awk -v n="$n" -v ts="$ts" -v text="$text" 'BEGIN {
    for (i = 0; i < n; i++) {
        r = "room" (i % 1000)
        printf "%s\t{\"type\":\"message\",\"room\":\"%s\",\"id\":\"%d\",\"user\":\"u%d\",\"nick\":\"U\",\"text\":\"%s\",\"ts\":%s}\n", r, r, 1000000000 + i, i % 5000, text, ts
    }
}' >"$dir/events.tsv"
t0=$(now_ms)
kcat -P -b "$CHAT_KAFKA_BROKERS" -t chat.messages -K $'\t' -z lz4 <"$dir/events.tsv"
t1=$(now_ms)
echo "produced $n events to Kafka in $((t1 - t0)) ms"
# The broker is a fresh JVM: read the topic once in a consumer group (as the persister does), so
# its group and fetch paths are compiled before the drain is timed (otherwise its JIT compiler
# threads take CPU from the drain; the baseline runs after it).
kcat -b "$CHAT_KAFKA_BROKERS" -G chat-psbench-warmup -o beginning -e -q -f '' chat.messages >/dev/null

cluster_start persister "$dir" >/dev/null
# One poller process (a keep-alive connection, every 20 ms), not a curl + awk per look: the
# measurement must not take CPU from the two cores the drain runs on. The drain's clock starts at
# the first stored row; prints "<ms> <rows stored at the start>".
read -r ps_ms base < <(python3 - "$CHAT_TEST_PERSISTER_URL" "$n" <<'PY'
import http.client, sys, time, urllib.parse
url, n = urllib.parse.urlsplit(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
def stored():
    global conn
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        conn.close()
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
        return 0
    i = body.find(b"\nchat_persister_messages_stored_total ")
    if i < 0:
        return 0
    return int(float(body[i:body.index(b"\n", i + 1)].split()[1]))
t_end = time.monotonic() + 300
start = base = None
while True:
    s = stored()
    now = time.monotonic()
    if start is None and s > 0:
        start, base = now, s
    if s >= n:
        break
    if now > t_end:
        print(f"persister stored only {s} of {n} in 300 s", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.02)
print(int((now - start) * 1000), base)
PY
)
[ -n "${base:-}" ] || exit 1
ps_rows=$((n - base))
ps_rate=$((ps_rows * 1000 / (ps_ms > 0 ? ps_ms : 1)))
rows=$(psql "$CHAT_TEST_PG_DSN" -Atc "SELECT count(*) FROM messages")
cached=$(curl -sf "$CHAT_TEST_PERSISTER_URL/metrics" | awk '$1 == "chat_persister_cached_total" { print $2 }')
[ "$rows" -eq "$n" ] || { echo "messages holds $rows rows, expected $n" >&2; exit 1; }

# baseline: COPY of the same rows into a table of the same shape
day=$(date -u -d "@$((ts / 1000))" +%F)
next=$(date -u -d "$day + 1 day" +%F)
psql -q "$CHAT_TEST_PG_DSN" <<SQL
CREATE TABLE bench_copy (LIKE messages INCLUDING ALL) PARTITION BY RANGE (created_at);
CREATE TABLE bench_copy_d PARTITION OF bench_copy FOR VALUES FROM ('$day') TO ('$next');
SQL
# the baseline must pay for every index and constraint the real table has
shape="SELECT (SELECT count(*) FROM pg_index WHERE indrelid = '%s'::regclass),
                (SELECT count(*) FROM pg_constraint WHERE conrelid = '%s'::regclass)"
# shellcheck disable=SC2059
want=$(psql "$CHAT_TEST_PG_DSN" -Atc "$(printf "$shape" messages messages)")
# shellcheck disable=SC2059
got=$(psql "$CHAT_TEST_PG_DSN" -Atc "$(printf "$shape" bench_copy bench_copy)")
[ "$want" = "$got" ] || { echo "baseline table: indexes|constraints $got, messages has $want" >&2; exit 1; }
awk -F'\t' -v ts="$ts" 'BEGIN { OFS = "," }
{ i = NR - 1; print 1000000000 + i, $1, i % 12, i, "u" (i % 5000), "U", "xxxx", "", "" }' \
    "$dir/events.tsv" >"$dir/rows.csv"
sed -i "s/,xxxx,,\$/,$text,,$(date -u -d "@$((ts / 1000))" '+%F %T')+00/" "$dir/rows.csv"
c0=$(now_ms)
psql -q "$CHAT_TEST_PG_DSN" -c "\\copy bench_copy (id, room, kafka_partition, kafka_offset, user_id, nick, body, client_msg_id, created_at) FROM '$dir/rows.csv' CSV"
c1=$(now_ms)
copy_ms=$((c1 - c0))
copy_rate=$((n * 1000 / (copy_ms > 0 ? copy_ms : 1)))

ratio=$(awk -v a="$ps_rate" -v b="$copy_rate" 'BEGIN { printf "%.2f", a / b }')
echo
echo "| what | rows | ms | rows/s |"
echo "|---|---|---|---|"
echo "| chat-persister drain (Kafka -> PostgreSQL) | $ps_rows | $ps_ms | $ps_rate |"
echo "| baseline: psql COPY, same rows and table shape | $n | $copy_ms | $copy_rate |"
echo "| ratio persister / COPY | | | $ratio |"
printf '{"bench":"persister","rows":%d,"persister_ms":%d,"persister_rows_per_s":%d,"copy_ms":%d,"copy_rows_per_s":%d,"ratio":%s,"redis":%d,"cached":%d}\n' \
    "$ps_rows" "$ps_ms" "$ps_rate" "$copy_ms" "$copy_rate" "$ratio" "$([ "$with_redis" = 0 ] && echo 0 || echo 1)" "${cached:-0}"
