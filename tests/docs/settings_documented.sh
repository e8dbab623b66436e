#!/usr/bin/env bash
# tests/docs/settings_documented.sh BIN_DIR - every CHAT_* name the documents mention exists.
#
# The documents (README.md, docs/ARCHITECTURE.md, proto/README.md and every component's README)
# are read as promises. A CHAT_* name in them must be one of: a setting of a service or tool
# (in the --help of chat-gateway, chat-api, chat-persister, chat-presence, chatctl or chat-bench
# in BIN_DIR), a variable a script reads (scripts/, bench/, tests/, k8s/), or a constant or code
# of the sources (libchat/include, */src) that the text names as such. A name that is none of
# these is a promise nobody keeps: exit 1 naming it (and the files that mention it); 2: usage.
set -euo pipefail

[ $# -eq 1 ] && [ -d "$1" ] || { echo "usage: settings_documented.sh BIN_DIR" >&2; exit 2; }
bin=$1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for b in chat-gateway chat-api chat-persister chat-presence chatctl chat-bench; do
    [ -x "$bin/$b" ] || { echo "settings_documented.sh: no $bin/$b" >&2; exit 2; }
    "$bin/$b" --help 2>&1 || true
done | grep -o 'CHAT_[A-Z0-9_]*[A-Z0-9]' | sort -u >"$tmp/help"

docs=("$repo"/README.md "$repo"/docs/ARCHITECTURE.md "$repo"/proto/README.md "$repo"/*/README.md)
missing=0 checked=0
while IFS= read -r name; do
    checked=$((checked + 1))
    grep -qx -- "$name" "$tmp/help" && continue
    grep -rqsw -- "$name" "$repo"/scripts "$repo"/bench "$repo"/tests/integration/fixtures \
        "$repo"/tests/web "$repo"/tests/k8s "$repo"/k8s "$repo"/.ci && continue
    grep -rqsw --include='*.h' --include='*.c' --include='*.def' -- "$name" "$repo"/libchat/include \
        "$repo"/proto "$repo"/gateway/src "$repo"/api/src "$repo"/persister/src \
        "$repo"/presence/src "$repo"/tools && continue
    echo "documented but no setting, script variable or code: $name ($(grep -lw -- "$name" \
        "${docs[@]}" | sed "s|$repo/||" | tr '\n' ' '))"
    missing=$((missing + 1))
done < <(grep -ohw 'CHAT_[A-Z0-9_]*[A-Z0-9]' "${docs[@]}" | sort -u)
echo "settings_documented.sh: $checked CHAT_* names in the documents, $missing unknown"
[ "$missing" -eq 0 ]
