#!/usr/bin/env bash
# tests/integration/metrics_documented.sh - every metric a document names is exported.
#
# The documents (README.md, docs/ARCHITECTURE.md, proto/README.md and every service's README,
# k8s/README.md, bench/README.md; not docs/BENCHMARKS.md, a dated record of runs that names the
# metrics of its day) are read as promises: each full metric name they mention
# (chat_gateway_*, chat_api_*, chat_persister_*, chat_presence_*) must be in the /metrics of the
# service it belongs to in the running test cluster (CHAT_TEST_ENV: its cluster.env). A histogram
# counts as present through its _bucket/_count/_sum series. Exit 0 when all are, 1 naming the
# missing ones, 2 on a usage error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ -f "${CHAT_TEST_ENV:-}" ] || { echo "metrics_documented.sh: CHAT_TEST_ENV is not a file" >&2; exit 2; }
# shellcheck disable=SC1090
. "$CHAT_TEST_ENV"

declare -A url=(
    [gateway]=$CHAT_TEST_GW1_URL
    [api]=$CHAT_TEST_API1_URL
    [persister]=$CHAT_TEST_PERSISTER_URL
    [presence]=$CHAT_TEST_PRESENCE_URL
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for svc in "${!url[@]}"; do
    curl -sf --max-time 10 "${url[$svc]}/metrics" | sed -n 's/^\([a-z_0-9]*\).*/\1/p' |
        sed 's/_\(bucket\|count\|sum\)$//' | sort -u >"$tmp/$svc" ||
        { echo "metrics_documented.sh: no /metrics from $svc (${url[$svc]})" >&2; exit 1; }
done

docs=("$repo"/README.md "$repo"/docs/ARCHITECTURE.md "$repo"/proto/README.md "$repo"/*/README.md)
missing=0 checked=0
while IFS= read -r name; do
    name=${name%_bucket}
    case $name in
    *_) continue ;; # a family (chat_gateway_recovery_*), not a name
    esac
    # a function of the code (chat_presence_decode), not a metric
    grep -rqs -- "\b$name(" "$repo"/libchat/include "$repo"/*/src && continue
    svc=${name#chat_}
    svc=${svc%%_*}
    [ -n "${url[$svc]:-}" ] || continue
    checked=$((checked + 1))
    if ! grep -qx -- "$name" "$tmp/$svc"; then
        echo "documented but not exported by chat-$svc: $name ($(grep -l -- "$name" "${docs[@]}" |
            sed "s|$repo/||" | tr '\n' ' '))"
        missing=$((missing + 1))
    fi
done < <(grep -oh 'chat_\(gateway\|api\|persister\|presence\)_[a-z][a-z0-9_]*' "${docs[@]}" | sort -u)
echo "metrics_documented.sh: $checked documented metric names, $missing missing"
[ "$missing" -eq 0 ]
