#!/bin/sh
# The classifier program of docs/API.md ("Using a trained model") as a reader copies it: taken
# from the page (it must equal examples/classify.c, which the page shows verbatim), compiled
# against this tree's libgraft.so, and run on a CSV model and an image model that the graft
# binary trains on tests/cli/make_fixtures.py's inputs; the class names it prints must be the
# ones `graft predict` gives (and for the table, the known ones).
# Usage: test_bundle_example.sh GRAFT LIBGRAFT_SO SOURCE_DIR [CFLAGS...]
#   CFLAGS: extra compiler flags (the sanitizer build passes -fsanitize=address,undefined)
# Exits 77 (skip) without python3, which makes the inputs.
set -u
G=${1:?usage: test_bundle_example.sh GRAFT LIBGRAFT_SO SOURCE_DIR [CFLAGS...]}
LIB=${2:?usage}
SRC=${3:?usage}
shift 3
CC=${CC:-cc}
command -v python3 >/dev/null || { echo "skip: python3 is needed for the inputs"; exit 77; }
T=$(mktemp -d /tmp/graft_bundle_example.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
show() { echo "---- $1"; tail -n 20 "$1"; }

# 1. the program, out of the page
awk '$0 == "<!-- verbatim: examples/classify.c -->" { found = 1; next }
     found == 1 && /^```c$/ { found = 2; next }
     found == 2 && /^```$/ { exit }
     found == 2 { print }' "$SRC/docs/API.md" >"$T/classify.c"
[ -s "$T/classify.c" ] || fail "docs/API.md has no block after <!-- verbatim: examples/classify.c -->"
cmp -s "$T/classify.c" "$SRC/examples/classify.c" || {
    diff "$SRC/examples/classify.c" "$T/classify.c" | head -n 20
    fail "docs/API.md's program differs from examples/classify.c (update one of them)"; }
$CC -std=c11 -Wall -Wextra -Werror -pedantic -O2 "$@" -I"$SRC/include" "$T/classify.c" "$LIB" \
    -Wl,-rpath,"$(dirname "$LIB")" -o "$T/classify" 2>"$T/build.log" ||
    { show "$T/build.log"; fail "the program of docs/API.md does not build"; }
echo "ok   the program of docs/API.md equals examples/classify.c and builds"

# 2. two models, trained by the graft binary
python3 "$SRC/tests/cli/make_fixtures.py" "$T/fx" || fail "cannot make the inputs"
FX="$T/fx"
"$G" train --data "csv:$FX/table.csv" --model mlp --hidden 16 --epochs 40 --lr 0.01 \
    --split 0.7,0.1,0.2 --threads 1 --quiet --out "$T/table.safetensors" >"$T/train.log" 2>&1 ||
    { show "$T/train.log"; fail "graft train on the CSV table"; }
"$G" train --data "images:$FX/shapes" --model mlp --hidden 16 --epochs 30 --lr 0.01 \
    --threads 1 --quiet --out "$T/shapes.safetensors" >"$T/train.log" 2>&1 ||
    { show "$T/train.log"; fail "graft train on the image folder"; }

# 3. the program's class names against graft predict's
top() { # WEIGHTS INPUT: graft predict's top class for each row
    "$G" predict --weights "$1" --input "$2" --threads 1 --json |
        python3 -c "import json, sys; [print(p['top'][0]['class']) for p in json.load(sys.stdin)['predictions']]"
}
check() { # WEIGHTS INPUT [EXPECTED...]
    w=$1 in=$2
    shift 2
    "$T/classify" "$w" "$in" >"$T/out" 2>"$T/err" || { show "$T/err"; fail "classify $w $in"; }
    top "$w" "$in" >"$T/want" || fail "graft predict --weights $w --input $in"
    cmp -s "$T/out" "$T/want" || { diff "$T/want" "$T/out"; fail "classify $in: not graft predict's classes"; }
    if [ $# -gt 0 ]; then
        printf '%s\n' "$@" >"$T/known"
        cmp -s "$T/out" "$T/known" || { diff "$T/known" "$T/out"; fail "classify $in: not the known classes"; }
    fi
    echo "ok   classify $(basename "$w") $(basename "$in"): $(tr '\n' ' ' <"$T/out")"
}
check "$T/table.safetensors" "$FX/rows.csv" setosa virginica          # a header, columns by name
check "$T/table.safetensors" "$FX/rows_plain.csv" setosa virginica    # no header, in order
check "$T/shapes.safetensors" "$FX/shapes/test/right/right_00.png"
check "$T/shapes.safetensors" "$FX/big.png"                            # another size: resized
"$T/classify" "$T/table.safetensors" "$FX/big.png" >"$T/out" 2>"$T/err" && fail "an image for a table model"
grep -q "is an image but the model takes rows of 4 features" "$T/err" || { show "$T/err"; fail "the error names the model's input"; }
echo "ok   an image for the table model is refused: $(cat "$T/err")"
echo "bundle example passed"
