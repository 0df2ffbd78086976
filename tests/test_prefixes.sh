#!/usr/bin/env bash
# Every function a public header declares carries that header's prefix: the table "Names" in
# docs/API.md is the rule and this test reads it. A row is "| `header.h` | `gf_a`, `gf_b` |".
# A name belongs to the header listing the longest prefix it matches (equal to it, or it
# followed by '_'), so dataspec.h can own gf_ds_open within dataset.h's gf_ds. ops.h names
# functions after the operation (torch.add -> gf_add): its row is `*`, the names no other
# row claims. A prefix listed twice, a header without a row, and a function whose owner is
# another header all fail.
set -euo pipefail
root="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
table="$root/docs/API.md"
rows="$(awk -F'|' '/^\| `[a-z0-9_]+\.h` \|/ {
    h = $2; gsub(/[ `]/, "", h); p = $3; gsub(/[ `]/, "", p); print h, p }' "$table")"
[ -n "$rows" ] || { echo "test_prefixes: no header rows in the table of $table"; exit 1; }
# "header name" for every gf_ function declared at column 0 (not in a typedef or comment)
decls="$(for hdr in "$root"/include/graft/*.h; do
  h="$(basename "$hdr")"
  [ "$h" = graft.h ] && continue
  echo "$h -"
  grep -E '^[A-Za-z_]' "$hdr" | grep -vE '^(typedef|#|extern|struct|enum|union)' |
    grep -oE '\bgf_[a-z0-9_]+\(' | tr -d '(' | sed "s/^/$h /" || true
done)"
awk -v rows="$rows" '
  BEGIN {
    n = split(rows, lines, "\n")
    for (i = 1; i <= n; i++) {
      split(lines[i], f, " "); has_row[f[1]] = 1
      if (f[2] == "*") { star = f[1]; continue }
      k = split(f[2], ps, ",")
      for (j = 1; j <= k; j++) {
        if (ps[j] in owner) { printf "test_prefixes: %s is listed for %s and %s\n", ps[j], owner[ps[j]], f[1]; bad = 1 }
        owner[ps[j]] = f[1]
      }
    }
  }
  $2 == "-" { if (!($1 in has_row)) { printf "test_prefixes: %s has no row in docs/API.md (Names)\n", $1; bad = 1 }; next }
  !seen[$1 " " $2]++ {
    best = ""; who = star
    for (p in owner)
      if (($2 == p || index($2, p "_") == 1) && length(p) > length(best)) { best = p; who = owner[p] }
    if (who != $1) {
      printf "test_prefixes: %s declares %s, which belongs to %s (%s)\n", $1, $2, who ? who : "no header",
             best ? "prefix " best : "no prefix matches"
      bad = 1
    }
    count++
  }
  END {
    if (bad) { print "test_prefixes: rename the functions above or change the table in docs/API.md"; exit 1 }
    printf "test_prefixes: %d public functions, each with its header'"'"'s prefix\n", count
  }' <<<"$decls"
