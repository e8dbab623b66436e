#!/usr/bin/env bash
# scripts/lint.sh [ROOT] - source checks that the compiler does not make (STYLE.md 5 and 9).
#
#  1. Banned functions: malloc calloc realloc free strdup atoi sprintf strtok strcpy may only be
#     called in libchat/src/mem.c; everywhere else use chat_x* / chat_free / chat_parse_ll /
#     snprintf / chat_buf.
#  2. Hand-built JSON: a string literal holding {\"key\": or ,\"key\": (or starting with \"key\":)
#     that has a printf-style conversion or is passed to a printf / chat_buf append / strcat
#     call, outside libchat/src/proto.c. JSON is built by the codec in proto.c only.
#
# Scanned: *.c and *.h under gateway/ api/ persister/ presence/ libchat/ tools/ bench/ (tests/ is not
# scanned). Comments are ignored; string literals are ignored for check 1. A line carrying the
# word NOLINT is exempt (say why next to it).
# Exit status: 0 clean, 1 violations (printed as path:line: rule: source line), 2 usage error.
set -euo pipefail

root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
[[ -d $root ]] || { echo "lint.sh: no such directory: $root" >&2; exit 2; }
cd "$root"

dirs=()
for d in gateway api persister presence libchat tools bench; do
    [[ -d $d ]] && dirs+=("$d")
done
((${#dirs[@]})) || { echo "lint.sh: nothing to scan under $root" >&2; exit 2; }

mapfile -d '' files < <(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
((${#files[@]})) || { echo "lint.sh: ok (no C sources)"; exit 0; }

# The scanner splits each line into code (comments and string contents removed) and the text of
# its string literals (comments removed), tracking block comments across lines.
awk -v sq="'" '
function flush_file() { in_comment = 0 }
FNR == 1 { flush_file() }
{
    line = $0; code = ""; strs = ""; n = length(line); i = 1
    while (i <= n) {
        c = substr(line, i, 1); c2 = substr(line, i, 2)
        if (in_comment) {
            if (c2 == "*/") { in_comment = 0; i += 2 } else i++
            continue
        }
        if (c2 == "/*") { in_comment = 1; i += 2; continue }
        if (c2 == "//") break
        if (c == "\"" || c == sq) {          # string or character literal
            q = c; i++; lit = ""
            while (i <= n) {
                c = substr(line, i, 1)
                if (c == "\\") { lit = lit substr(line, i, 2); i += 2; continue }
                if (c == q) { i++; break }
                lit = lit c; i++
            }
            code = code q q
            if (q == "\"") strs = strs lit "\001"
            continue
        }
        code = code c; i++
    }
    if (line ~ /NOLINT/) next
    skip_banned = (FILENAME == "libchat/src/mem.c")
    skip_json = (FILENAME == "libchat/src/proto.c")
    rest = code; names = ""
    while (!skip_banned && match(rest, /(^|[^A-Za-z0-9_.>])(malloc|calloc|realloc|free|strdup|atoi|sprintf|strtok|strcpy)[ \t]*\(/)) {
        hit = substr(rest, RSTART, RLENGTH); sub(/^[^A-Za-z_]/, "", hit); sub(/[ \t]*\($/, "", hit)
        names = names (names == "" ? "" : ", ") hit "()"
        rest = substr(rest, RSTART + RLENGTH)
    }
    if (names != "") {
        printf "%s:%d: banned %s (use chat_x* / chat_free / chat_parse_ll / snprintf): %s\n", FILENAME, FNR, names, $0
        bad++
    }
    if (!skip_json && strs ~ /(^|[{,\001])\\"[A-Za-z_][A-Za-z0-9_]*\\"[ \t]*:/ &&
        (strs ~ /%/ || code ~ /(printf|asprintf|chat_buf_append[sf]?|strn?cat)[ \t]*\(/)) {
        printf "%s:%d: JSON built by hand (use an encoder in libchat/src/proto.c): %s\n", FILENAME, FNR, $0
        bad++
    }
}
END {
    if (bad) { printf "lint.sh: %d violation(s)\n", bad; exit 1 }
}
' "${files[@]}" || exit 1

echo "lint.sh: ok (${#files[@]} files)"
