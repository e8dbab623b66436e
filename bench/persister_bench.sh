#!/usr/bin/env bash
# bench/persister_bench.sh [N] [ROUNDS] - persister throughput into partitioned PostgreSQL.
#
# Each round loads N new message events into the local Kafka broker while the persister is
# stopped, starts it and times how fast it drains them into `messages` (binary COPY per batch, the
# next batch decoded while the database writes this one, offsets committed after each batch's
# database commit), then stops it. The baseline, run on the same PostgreSQL right after each
# drain, is psql's COPY (CSV) of the same N rows into a table of the same shape (`LIKE messages
# INCLUDING ALL`: partitioned by day, every index and constraint; checked), which grows round by
# round as `messages` does: the database's own ingest limit. ROUNDS (default 3) pairs are run in
# one cluster and the medians reported (of each column; the ratio is the median of the rounds'
# ratios), so one noisy moment on a shared machine does not decide.
# Redis runs too (the persister's real configuration: each batch goes to the recent cache after
# its commit, while the database works on the next one); CHAT_PERSISTER_BENCH_REDIS=0 leaves it
# out (the cache writes are then skipped at once: connection refused, backoff).
# Prints every round, the medians, and a JSON line. Stops everything it started.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${1:-300000}
rounds=${2:-3}
[ "$rounds" -ge 1 ] 2>/dev/null || { echo "ROUNDS must be 1 or more: '$rounds'" >&2; exit 2; }
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
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

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

# Waits until the persister has stored n rows; prints "<ms> <rows stored at the start>". One
# poller process (a keep-alive connection, every 20 ms), not a curl + awk per look: the
# measurement must not take CPU from the two cores the drain runs on. The clock starts at the
# first stored row.
drain_time() {
    python3 - "$CHAT_TEST_PERSISTER_URL" "$n" <<'PY'
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
}

: >"$dir/rounds.txt"
cached=0
for r in $(seq 1 "$rounds"); do
    first=$((1000000000 + (r - 1) * n)) # ids (and the baseline's offsets) new in every round
    # key<TAB>value lines: 1000 rooms, 5000 users, one day
    awk -v n="$n" -v first="$first" -v ts="$ts" -v text="$text" 'BEGIN {
        for (i = 0; i < n; i++) {
            r = "room" (i % 1000)
            printf "%s\t{\"type\":\"message\",\"room\":\"%s\",\"id\":\"%d\",\"user\":\"u%d\",\"nick\":\"U\",\"text\":\"%s\",\"ts\":%s}\n", r, r, first + i, i % 5000, text, ts
        }
    }' >"$dir/events.tsv"
    t0=$(now_ms)
    kcat -P -b "$CHAT_KAFKA_BROKERS" -t chat.messages -K $'\t' -z lz4 <"$dir/events.tsv"
    t1=$(now_ms)
    echo "round $r: produced $n events to Kafka in $((t1 - t0)) ms"
    if [ "$r" = 1 ]; then
        # The broker is a fresh JVM: read the topic once in a consumer group (as the persister
        # does), so its group and fetch paths are compiled before the first drain is timed.
        kcat -b "$CHAT_KAFKA_BROKERS" -G chat-psbench-warmup -o beginning -e -q -f '' chat.messages >/dev/null
    fi

    cluster_start persister "$dir" >/dev/null
    read -r ps_ms base < <(drain_time)
    [ -n "${base:-}" ] || exit 1
    c=$(curl -sf "$CHAT_TEST_PERSISTER_URL/metrics" | awk '$1 == "chat_persister_cached_total" { print $2 }')
    cached=$((cached + ${c:-0}))
    cluster_stop persister "$dir" >/dev/null
    ps_rows=$((n - base))
    ps_rate=$((ps_rows * 1000 / (ps_ms > 0 ? ps_ms : 1)))
    rows=$(psql "$CHAT_TEST_PG_DSN" -Atc "SELECT count(*) FROM messages")
    [ "$rows" -eq $((r * n)) ] || { echo "messages holds $rows rows, expected $((r * n))" >&2; exit 1; }

    # the baseline: the same rows, by psql's COPY
    awk -F'\t' -v first="$first" 'BEGIN { OFS = "," }
    { i = NR - 1; print first + i, $1, i % 12, first - 1000000000 + i, "u" (i % 5000), "U", "xxxx", "", "" }' \
        "$dir/events.tsv" >"$dir/rows.csv"
    sed -i "s/,xxxx,,\$/,$text,,$(date -u -d "@$((ts / 1000))" '+%F %T')+00/" "$dir/rows.csv"
    c0=$(now_ms)
    psql -q "$CHAT_TEST_PG_DSN" -c "\\copy bench_copy (id, room, kafka_partition, kafka_offset, user_id, nick, body, client_msg_id, created_at) FROM '$dir/rows.csv' CSV"
    c1=$(now_ms)
    copy_ms=$((c1 - c0))
    copy_rate=$((n * 1000 / (copy_ms > 0 ? copy_ms : 1)))
    ratio=$(awk -v a="$ps_rate" -v b="$copy_rate" 'BEGIN { printf "%.2f", a / b }')
    echo "$r $ps_rows $ps_ms $ps_rate $copy_ms $copy_rate $ratio" >>"$dir/rounds.txt"
done

col() { awk -v c="$1" '{ print $c }' "$dir/rounds.txt"; }
echo
echo "| round | persister rows | ms | rows/s | COPY rows | ms | rows/s | ratio |"
echo "|---|---|---|---|---|---|---|---|"
while read -r r pr pm prate cm crate ratio; do
    echo "| $r | $pr | $pm | $prate | $n | $cm | $crate | $ratio |"
done <"$dir/rounds.txt"
m_ps=$(col 4 | median)
m_copy=$(col 6 | median)
m_ratio=$(col 7 | median)
echo "| median | | $(col 3 | median) | $m_ps | | $(col 5 | median) | $m_copy | $m_ratio |"
printf '{"bench":"persister","rows":%d,"rounds":%d,"persister_ms":%s,"persister_rows_per_s":%s,"copy_ms":%s,"copy_rows_per_s":%s,"ratio":%s,"ratios":[%s],"redis":%d,"cached":%d}\n' \
    "$n" "$rounds" "$(col 3 | median)" "$m_ps" "$(col 5 | median)" "$m_copy" "$m_ratio" \
    "$(col 7 | paste -sd,)" "$([ "$with_redis" = 0 ] && echo 0 || echo 1)" "$cached"
