#!/usr/bin/env bash
# No function in src/ or tools/ is longer than MAX lines (150): a long function is a set of
# steps that want names. A function is counted from the line that opens its body at column 0
# ("...) {" ending a definition) to the matching "}" at column 0, the project's layout.
set -euo pipefail
root="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
max="${MAX_FUNCTION_LINES:-150}"
found=0
while IFS= read -r f; do
  if ! out=$(awk -v max="$max" -v file="${f#"$root"/}" '
    # a definition opens with a line at column 0 that is not a comment, macro or type body
    start == 0 && /^[A-Za-z_].*\) *\{ *$/ && !/^(typedef|struct|enum|union)[ {]/ {
      start = FNR; name = $0; sub(/\(.*/, "", name); n = split(name, w, /[ *]+/); name = w[n]; next }
    start == 0 && /^[A-Za-z_].*[(,] *$/ && !/;/ { pending = FNR; pname = $0; next }
    start == 0 && pending && /^ .*\) *\{ *$/ {
      start = pending; name = pname; sub(/\(.*/, "", name); n = split(name, w, /[ *]+/); name = w[n]
      pending = 0; next }
    start == 0 && pending && /;/ { pending = 0 }
    start && /^\}/ {
      len = FNR - start + 1
      if (len > max) { printf "%s:%d: %s is %d lines (at most %d)\n", file, start, name, len, max; bad = 1 }
      start = 0; pending = 0 }
    END { exit bad }' "$f"); then
    echo "$out"
    found=1
  fi
done < <(find "$root/src" "$root/tools" -name '*.c' | sort)
if [ "$found" = 1 ]; then
  echo "test_function_length: split the functions above into named steps"
  exit 1
fi
echo "test_function_length: no function in src/ or tools/ over $max lines"
