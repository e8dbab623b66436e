#!/usr/bin/env bash
# scripts/lint.sh [ROOT] - source checks that the compiler does not make (STYLE.md 5 and 9).
#
#  1. Banned functions: malloc calloc realloc free strdup atoi sprintf strtok strcpy may only be
#     called in libchat/src/mem.c; everywhere else use chat_x* / chat_free / chat_parse_ll /
#     snprintf / chat_buf.
#  2. Hand-built JSON: a string literal holding {\"key\": or ,\"key\": (or starting with \"key\":)
#     that has a printf-style conversion or is passed to a printf / chat_buf append / strcat
#     call, outside libchat/src/proto.c. JSON is built by the codec in proto.c only.
#  3. Gateway naming (gateway/README.md): every non-static function defined in
#     gateway/src/<folder>/gw_<stem>.c is named gw_<stem>_*; in main.c only main() and
#     gw_main_* may be non-static. A gateway header is included by its folder ("room/gw_map.h").
#  4. Gateway module layering: folders under gateway/src are modules; the graph of which
#     module's headers include which other module's headers must be acyclic (a header needing a
#     type of a module above it uses a forward declaration).
#
# Scanned: *.c and *.h under gateway/ api/ db/ persister/ presence/ libchat/ tools/ bench/ (tests/
# is not scanned). Comments are ignored; string literals are ignored for check 1. A line carrying the
# word NOLINT is exempt (say why next to it).
# Exit status: 0 clean, 1 violations (printed as path:line: rule: source line), 2 usage error.
set -euo pipefail

root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
[[ -d $root ]] || { echo "lint.sh: no such directory: $root" >&2; exit 2; }
cd "$root"
status=0

dirs=()
for d in gateway api db persister presence libchat tools bench; do
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
' "${files[@]}" || status=1

# 3. gateway naming. The scanner drops comments, string and character literals and preprocessor
# lines, then tracks braces: text at file level up to a '{' that has a '(' and no '=' is a
# function definition; the identifier before its first '(' is its name.
gw_src=gateway/src
if [[ -d $gw_src ]]; then
    mapfile -d '' gw_c < <(find "$gw_src" -type f -name '*.c' -print0 | sort -z)
    mapfile -d '' gw_all < <(find "$gw_src" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
    if ((${#gw_c[@]})); then
        awk -v sq="'" '
FNR == 1 { in_comment = 0; depth = 0; decl = ""; in_macro = 0
           n = split(FILENAME, parts, "/"); base = parts[n]
           stem = base; sub(/\.c$/, "", stem)
           want = base == "main.c" ? "gw_main_" : (base ~ /^gw_[a-z0-9_]+\.c$/ ? stem "_" : "") }
{
    line = $0
    if (in_macro || (!in_comment && line ~ /^[ \t]*#/)) {   # preprocessor line (and continuations)
        in_macro = line ~ /\\$/
        next
    }
    code = ""; n = length(line); i = 1
    while (i <= n) {
        c = substr(line, i, 1); c2 = substr(line, i, 2)
        if (in_comment) { if (c2 == "*/") { in_comment = 0; i += 2 } else i++; continue }
        if (c2 == "/*") { in_comment = 1; i += 2; continue }
        if (c2 == "//") break
        if (c == "\"" || c == sq) {
            q = c; i++
            while (i <= n) { c = substr(line, i, 1); if (c == "\\") { i += 2; continue } i++; if (c == q) break }
            code = code q q; continue
        }
        code = code c; i++
    }
    for (i = 1; i <= length(code); i++) {
        c = substr(code, i, 1)
        if (c == "{") {
            if (depth == 0 && want != "" && decl ~ /\(/) {
                head = substr(decl, 1, index(decl, "(") - 1)
                if (head !~ /=/ && head !~ /(^|[^A-Za-z0-9_])static([^A-Za-z0-9_]|$)/ &&
                    match(head, /[A-Za-z_][A-Za-z0-9_]*[ \t]*$/)) {
                    name = substr(head, RSTART, RLENGTH); sub(/[ \t]+$/, "", name)
                    if (!(base == "main.c" && name == "main") && index(name, want) != 1) {
                        printf "%s:%d: gateway naming: non-static %s() in %s must be named %s* (or be static)\n", FILENAME, decl_line, name, base, want
                        bad++
                    }
                }
            }
            depth++; decl = ""
        } else if (c == "}") {
            if (depth > 0) depth--
            decl = ""
        } else if (c == ";" && depth == 0) {
            decl = ""
        } else if (depth == 0) {
            if (c == "(" && index(decl, "(") == 0) decl_line = FNR
            decl = decl c
        }
    }
    if (depth == 0) decl = decl " "
}
END { if (bad) { printf "lint.sh: %d gateway naming violation(s)\n", bad; exit 1 } }
' "${gw_c[@]}" || status=1
    fi

    # 3b. gateway headers are included by folder; 4. the module graph of header includes
    edges=$(mktemp)
    trap 'rm -f "$edges"' EXIT
    for f in "${gw_all[@]}"; do
        mod=${f#"$gw_src"/}
        [[ $mod == */* ]] && mod=${mod%%/*} || mod=.
        while IFS=: read -r ln inc; do
            inc=${inc#*\"}
            inc=${inc%%\"*}
            if [[ $inc != */* && $inc == gw*.h ]]; then
                echo "$f:$ln: gateway include \"$inc\" must name its folder (\"<folder>/$inc\")"
                status=1
            elif [[ $f == *.h && $inc == */* && -f $gw_src/$inc && ${inc%%/*} != "$mod" ]]; then
                echo "$mod ${inc%%/*} $f:$ln" >>"$edges"
            fi
        done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
    done
    loop=$(cut -d' ' -f1,2 "$edges" | tsort 2>&1 >/dev/null | sed -n 's/^tsort: \([^ :]*\)$/\1/p' || true)
    if [[ -n $loop ]]; then
        echo "gateway modules: the headers include each other in a cycle through: ${loop//$'\n'/ }; the edges:"
        sed 's/^\([^ ]*\) \([^ ]*\) \(.*\)$/  \3: \1 -> \2/' "$edges"
        status=1
    fi
fi

((status == 0)) || exit 1
echo "lint.sh: ok (${#files[@]} files)"
