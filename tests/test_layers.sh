#!/usr/bin/env bash
# The layer order of docs/ARCHITECTURE.md ("Layers"), enforced: every file of src/, include/ and
# tools/ belongs to the layer whose sources or public headers the table lists, and each of its
# #include "..." / #include <graft/...> lines may name only a file of its own layer or of a layer
# above it in the table (a lower layer). Calls of gf_backward (and _with, _many) are allowed only
# in the layers whose gf_backward column says yes. The table is read from the document itself,
# so the rule and its description are one text.
#   test_layers.sh SOURCE_DIR [DOC]     (DOC: another copy of the table, for trying the rule)
set -u
src="${1:?usage: test_layers.sh SOURCE_DIR [DOC]}"
doc="${2:-$src/docs/ARCHITECTURE.md}"
cd "$src" || exit 1
[ -f "$doc" ] || { echo "layers: no $doc"; exit 1; }

# One record per include line: FILE<TAB>LINE<TAB>TARGET<TAB>ANGLE (1 for <graft/...>).
includes() {
    find src include tools -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort |
        while IFS= read -r f; do
            awk -v f="$f" '
                /^[ \t]*#[ \t]*include[ \t]*"/ {
                    t = $0; sub(/^[^"]*"/, "", t); sub(/".*/, "", t)
                    printf "%s\t%d\t%s\t0\n", f, FNR, t }
                /^[ \t]*#[ \t]*include[ \t]*<graft\// {
                    t = $0; sub(/^[^<]*</, "", t); sub(/>.*/, "", t)
                    printf "%s\t%d\t%s\t1\n", f, FNR, t }' "$f"
        done
}

# One record per gf_backward call outside comments: FILE<TAB>LINE<TAB>TEXT.
backward_calls() {
    find src tools -type f -name '*.c' | LC_ALL=C sort |
        while IFS= read -r f; do
            awk -v f="$f" '
                { line = $0
                  if (incomment) { if (line !~ /\*\//) next; sub(/^.*\*\//, "", line); incomment = 0 }
                  gsub(/\/\*([^*]|\*+[^*\/])*\*+\//, "", line)
                  if (line ~ /\/\*/) { sub(/\/\*.*$/, "", line); incomment = 1 }
                  sub(/\/\/.*$/, "", line)
                  gsub(/"([^"\\]|\\.)*"/, "\"\"", line)
                  if (line ~ /(^|[^A-Za-z0-9_])gf_backward(_with|_many)?[ \t]*\(/) {
                      t = $0; gsub(/^[ \t]+/, "", t); printf "%s\t%d\t%s\n", f, FNR, t } }' "$f"
        done
}

# Every file the rule covers, to report those no row of the table claims.
all_files() { find src include tools -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort; }

{ includes; echo "@@backward"; backward_calls; echo "@@files"; all_files; } |
awk -F'\t' -v doc="$doc" '
function trim(s) { gsub(/`/, "", s); gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
BEGIN {
    # the table: the first one after the layer-table marker
    n = 0; state = 0
    while ((getline row < doc) > 0) {
        if (state == 0) { if (row ~ /<!-- layer-table/) state = 1; continue }
        if (row !~ /^\|/) { if (state == 2) break; continue }
        state = 2
        m = split(row, c, "|")
        name = trim(c[2])
        if (name == "Layer" || name ~ /^-+$/) continue
        n++; rank[name] = n; layer[n] = name
        ns = split(trim(c[3]), s, /[ \t,]+/)
        for (i = 1; i <= ns; i++) if (s[i] != "") { dir[s[i]] = name; dirs++ }
        nh = split(trim(c[4]), h, /[ \t,]+/)
        for (i = 1; i <= nh; i++) if (h[i] != "") { hdr["include/graft/" h[i]] = name; hdrs++ }
        bw[name] = tolower(trim(c[5])) == "yes"
    }
    close(doc)
    if (n < 2) { printf "layers: no layer table after \"<!-- layer-table\" in %s\n", doc; exit 2 }
    section = "includes"; bad = 0; checked = 0
}
function exists(p) { return (system("test -f \"" p "\"") == 0) }
# the layer of a file: its public header row, else the longest source directory that holds it
function layer_of(p,    best, d) {
    if (p in hdr) return hdr[p]
    best = ""
    for (d in dir)
        if (index(p, d "/") == 1 && length(d) > length(best)) best = d
    return best == "" ? "" : dir[best]
}
function dirname(p) { sub(/\/[^\/]*$/, "", p); return p }
$0 == "@@backward" { section = "backward"; next }
$0 == "@@files" { section = "files"; next }
section == "includes" {
    f = $1; line = $2; t = $3; angle = $4
    from = layer_of(f)
    if (from == "") next                 # reported once in the files section
    if (t ~ /^graft\//) target = "include/" t
    else if (angle == 0 && exists(dirname(f) "/" t)) target = dirname(f) "/" t
    else if (angle == 0 && exists("src/" t)) target = "src/" t
    else {
        printf "%s:%d: #include \"%s\": no such file in %s/ or src/\n", f, line, t, dirname(f)
        bad++; next
    }
    to = layer_of(target)
    checked++
    if (to == "") {
        printf "%s:%d: #include \"%s\": %s belongs to no layer of the table\n", f, line, t, target
        bad++; next
    }
    if (rank[to] > rank[from]) {
        allowed = layer[1]
        for (i = 2; i <= rank[from]; i++) allowed = allowed " " layer[i]
        printf "%s:%d: forbidden edge %s -> %s: #include \"%s\" (%s may include only: %s)\n",
               f, line, from, to, t, from, allowed
        bad++
    }
    next
}
section == "backward" {
    from = layer_of($1)
    if (from != "" && !bw[from]) {
        printf "%s:%d: forbidden call in layer %s (its gf_backward column says no; train through src/train): %s\n",
               $1, $2, from, $3
        bad++
    }
    next
}
section == "files" {
    files++
    if (layer_of($0) == "") {
        printf "%s: belongs to no layer (add its directory or header to the table in %s)\n", $0, doc
        bad++
    }
}
END {
    if (n < 2) exit 2
    printf "layers: %d layers (", n
    for (i = 1; i <= n; i++) printf "%s%s", layer[i], i < n ? " < " : ""
    printf "), %d files, %d includes checked, %d forbidden\n", files, checked, bad
    exit bad > 0
}'
