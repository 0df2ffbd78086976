#!/usr/bin/env bash
# Using what was trained: a fine-tuned spec model read back by eval and predict, predict with
# plain weights and a spec, eval on every part, images read as the weights say, scikit-learn's
# CSV layout and other tables (--csv-header, --skip-lines, --delimiter), predicting rows that
# still hold their label, folders and CSV output, specs that take input and classes from the
# data, and the finetune summary. Usage: test_cli_use.sh path/to/graft. To add a check: see
# tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"
SHAPES="$FX/shapes/train" # 3 classes of 12 x 12 RGB images, no train/test folders

# metadata value of a weights file: meta FILE KEY
meta() {
    python3 - "$1" "$2" <<'EOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n]).get("__metadata__", {}).get(sys.argv[2], ""))
EOF
}

# ---- a spec model fine-tuned to new classes (its stored spec gives the new head) -----------------
cat >"$T/tiny.json" <<'EOF'
{"type": "container", "name": "Tiny", "input": [3, 32, 32], "children": {
  "conv1": {"type": "conv2d", "in": 3, "out": 4, "kernel": 3, "stride": 2, "padding": 1},
  "relu": {"type": "relu"},
  "pool": {"type": "adaptiveavgpool2d", "output": 1},
  "flat": {"type": "flatten"},
  "fc": {"type": "linear", "out": 10}}}
EOF
# "pretrained": a plain state dict (no graft metadata), like a file exported from PyTorch
python3 - "$T/tiny.safetensors" <<'EOF'
import json, random, struct, sys
random.seed(0)
shapes = {"conv1.weight": [4, 3, 3, 3], "conv1.bias": [4], "fc.weight": [10, 4], "fc.bias": [10]}
head, data = {}, b""
for k, s in shapes.items():
    n = 1
    for d in s: n *= d
    b = struct.pack("<%df" % n, *[random.uniform(-0.5, 0.5) for _ in range(n)])
    head[k] = {"dtype": "F32", "shape": s, "data_offsets": [len(data), len(data) + len(b)]}
    data += b
h = json.dumps(head).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + data)
EOF
FT="$T/ft.safetensors"
run "$G" finetune --from "$T/tiny.safetensors" --model "$T/tiny.json" --data "images:$SHAPES" --image-size 32 --epochs 1 $TH --out "$FT"
expect_rc 0 "finetune a spec model to 3 classes"
if [[ "$(meta "$FT" graft.spec)" == *'"fc":{"type":"linear","out":3}'* ]]; then ok; else
    bad "the stored spec keeps the old head: $(meta "$FT" graft.spec)"
fi
# the summary: one paragraph, the counts of the load as done, no dry-run plan
expect_err "from $T/tiny.safetensors: 2 of 4 tensors loaded (0 renamed), 2 new (head fc)" "finetune summary counts"
expect_err "head fc: 10 -> 3 classes, new (the classes differ in number)" "finetune summary names the head change"
expect_err "input channels: 3, as in the file" "finetune summary: channels"
if grep -q "dry run" "$T/err"; then bad "a real run says 'dry run'"; else ok; fi
if [ "$(grep -c . "$T/err")" -le 4 ]; then ok; else bad "finetune printed $(grep -c . "$T/err") lines on stderr"; fi
expect_out "loaded    2 of 4 tensors from $T/tiny.safetensors (0 renamed); 2 new, 0 of another shape" "finetune's table agrees with its summary"
run "$G" predict --weights "$FT" "$FX/big.png"
expect_rc 0 "predict with the fine-tuned spec model"
expect_out "  1. " "predict prints the top classes"
run "$G" eval --weights "$FT" --data "images:$SHAPES" --image-size 32 --json
expect_rc 0 "eval the fine-tuned spec model"
json "d['examples'] == 6 and len(d['confusion']) == 3" "eval of 3 classes"
run "$G" finetune --from "$T/tiny.safetensors" --model "$T/tiny.json" --data "images:$SHAPES" --image-size 32 --epochs 1 $TH -v --json
expect_rc 0 "finetune -v --json"
expect_err "loaded     trainable   conv1.weight" "-v lists each tensor"
expect_err "new        trainable   fc.weight" "-v shows the new head"
json "d['finetune']['loaded'] == 2 and d['finetune']['new'] == 2 and d['finetune']['mismatched'] == 0" "finetune JSON counts"

# ---- predict: plain weights and a spec that gives the input ----------------------------------------
run "$G" predict --weights "$T/tiny.safetensors" --model "$T/tiny.json" "$FX/big.png" --top-k 2
expect_rc 0 "predict with a plain state dict and --model spec"
expect_out "big.png" "predict names the input"
run "$G" predict --weights "$T/tiny.safetensors" --model cnn-small "$FX/big.png"
expect_rc 1 "a zoo model and a file without its input shape"
expect_err "does not record its input shape (graft.input)" "says what is missing"

# ---- eval: images read as the weights were trained ------------------------------------------------
run "$G" eval --weights "$FT" --data "images:$SHAPES"
expect_rc 0 "eval without --image-size reads images as the weights say"
expect_err "images read as the weights were trained (graft.image)" "eval says so"
# images of several sizes without a resize: the message names the option
mkdir -p "$T/mixed/a" "$T/mixed/b"
cp "$FX/big.png" "$T/mixed/a/1.png"
cp "$FX/digit3.png" "$T/mixed/b/2.png"
run "$G" train --data "images:$T/mixed" --epochs 1 $TH
expect_rc 1 "images of two sizes"
expect_err "give --image-size N" "the error names the option"
run "$G" eval --weights "$FT" --data "images:$T/mixed" --classes a,b
expect_rc 1 "eval of 2 classes with 3-class weights"
expect_err "trained on 3 classes" "the mixed sizes were read at the saved size"

# ---- eval --part all and --split -------------------------------------------------------------------
TAB="$T/table.safetensors"
run "$G" train --data "csv:$FX/table.csv" --epochs 2 $TH --quiet --out "$TAB"
expect_rc 0 "train on the table"
run "$G" eval --weights "$TAB" --data "csv:$FX/table.csv" --part all --json
expect_rc 0 "eval --part all"
json "d['examples'] == 150 and d['part'] == 'all'" "--part all is every row"
run "$G" eval --weights "$TAB" --data "csv:$FX/table.csv" --split 1,0,0 --part all --json
expect_rc 0 "eval --split 1,0,0 --part all"
json "d['examples'] == 150" "all of a split without test"
run "$G" eval --weights "$TAB" --data "csv:$FX/table.csv" --split 0,0,1 --json
expect_rc 0 "eval --split 0,0,1"
json "d['examples'] == 150 and d['part'] == 'test'" "every row as the test part"
run "$G" eval --weights "$TAB" --data "csv:$FX/table.csv" --split 0,0.5,0.5 --part val --json
expect_rc 0 "eval --split 0,0.5,0.5 --part val"
json "d['examples'] == 75" "half the rows in val"
run "$G" train --data "csv:$FX/table.csv" --split 0,0,1
expect_rc 2 "train --split 0,0,1"
expect_err "leaves nothing to train on" "train needs a training part"

# ---- scikit-learn's CSV layout and other tables ------------------------------------------------------
# sk.csv: the table in scikit-learn's layout, three more columns (so the first line's field count
# differs from the rows', as in wine_data.csv); semi.csv: ';'-separated after two comment lines
python3 - "$FX/table.csv" "$T/sk.csv" "$T/semi.csv" <<'EOF'
import sys
rows = [l.split(",") for l in open(sys.argv[1]).read().split("\n")[1:] if l]
names = sorted({r[-1] for r in rows})
with open(sys.argv[2], "w") as f:
    f.write("%d,7,%s\n" % (len(rows), ",".join(names)))
    for i, r in enumerate(rows):
        f.write(",".join(r[:-1] + ["%d" % (i % 7), "1.5", "-2", str(names.index(r[-1]))]) + "\n")
with open(sys.argv[3], "w") as f:
    f.write("# exported table\n# 150 rows\nf1;f2;f3;f4;species\n")
    for r in rows: f.write(";".join(r) + "\n")
EOF
SK="$T/sk.safetensors"
run "$G" train --data "csv:$T/sk.csv" --epochs 1 $TH --out "$SK"
expect_rc 0 "train on a file in scikit-learn's layout"
expect_err "reads as scikit-learn's layout (first line: 150 rows, 7 features, the classes setosa, versicolor, virginica)" "a note says so"
if [ "$(meta "$SK" graft.features)" = '["0","1","2","3","4","5","6"]' ] &&
    [ "$(meta "$SK" graft.classes)" = '["setosa","versicolor","virginica"]' ]; then ok; else
    bad "scikit-learn layout: features $(meta "$SK" graft.features), classes $(meta "$SK" graft.classes)"
fi
# as iris.csv: 4 features, so the first line has as many fields as a row and was once read as
# the header
python3 - "$T/sk.csv" "$T/sk4.csv" <<'EOF'
import sys
lines = open(sys.argv[1]).read().split("\n")
with open(sys.argv[2], "w") as f:
    f.write(lines[0].replace(",7,", ",4,") + "\n")
    for l in lines[1:]:
        if l: v = l.split(","); f.write(",".join(v[:4] + v[-1:]) + "\n")
EOF
run "$G" train --data "csv:$T/sk4.csv" --epochs 1 $TH --out "$T/sk4.safetensors"
expect_rc 0 "train on a 4-feature file in scikit-learn's layout"
if [ "$(meta "$T/sk4.safetensors" graft.features)" = '["0","1","2","3"]' ]; then ok; else
    bad "its count line was read as column names: $(meta "$T/sk4.safetensors" graft.features)"
fi
run "$G" train --data "csv:$T/sk.csv" --csv-header sklearn --epochs 1 $TH
expect_rc 0 "--csv-header sklearn"
if grep -q "scikit-learn's layout" "$T/err"; then bad "a note though --csv-header was given"; else ok; fi
run "$G" train --data "csv:$T/sk.csv" --csv-header first --epochs 1 $TH
expect_rc 1 "--csv-header first reads the count line as a header"
expect_err "8 fields, expected 5 (as in the header on line 1)" "the rows do not fit that header"
run "$G" train --data "csv:$T/semi.csv" --delimiter ';' --skip-lines 2 --epochs 1 $TH --json
expect_rc 0 "--delimiter ';' --skip-lines 2"
json "d['data']['classes'] == ['setosa', 'versicolor', 'virginica'] and d['data']['shape'] == [4]" "the table as its header says"
run "$G" train --data "csv:$T/semi.csv" --epochs 1 $TH
expect_rc 1 "the same file without the options"
run "$G" train --data "images:$SHAPES" --delimiter ';' $TH
expect_rc 2 "--delimiter on image data"
expect_err "apply to csv: data" "says which data they apply to"
run "$G" train --data "csv:$T/sk.csv" --delimiter ab
expect_rc 2 "--delimiter of two characters"
run "$G" train --data "csv:$T/sk.csv" --csv-header maybe
expect_rc 2 "--csv-header maybe"
# scikit-learn's own files, where installed
SKD=/usr/lib/python3/dist-packages/sklearn/datasets/data
for f in iris.csv wine_data.csv breast_cancer.csv; do
    if [ -f "$SKD/$f" ]; then
        run "$G" train --data "csv:$SKD/$f" --epochs 1 $TH --json --quiet
        expect_rc 0 "train on scikit-learn's $f"
    else
        skip "scikit-learn's $f is not installed"
    fi
done

# ---- predict on rows that still hold their label ----------------------------------------------------
tail -n +2 "$FX/table.csv" >"$T/labelled.csv"              # no header, the label in place
run "$G" predict --weights "$TAB" "$T/labelled.csv" --top-k 1
expect_rc 0 "predict rows without a header that hold the label"
expect_out "labelled.csv line 150" "every row"
if [ "$(meta "$TAB" graft.columns)" = '["f1","f2","f3","f4","species"]' ]; then ok; else
    bad "graft.columns is '$(meta "$TAB" graft.columns)'"
fi
printf '1,2,3,oops,setosa\n' >"$T/bad_row.csv"
run "$G" predict --weights "$TAB" "$T/bad_row.csv"
expect_rc 1 "a feature that is not a number"
expect_err "bad_row.csv:1: column 4 (f4): not a number: 'oops'" "the error names the line and the column"
run "$G" predict --weights "$TAB" "$FX/table.csv" --top-k 1
expect_rc 0 "predict the training table itself (header and label)"
run "$G" predict --weights "$SK" "$T/sk.csv" --top-k 1
expect_rc 0 "predict a file in scikit-learn's layout"
expect_out "sk.csv line 2" "its first line is skipped"
printf 'f4;f1;f2;f3\n10;0;0;5\n' >"$T/semi_rows.csv"
run "$G" predict --weights "$TAB" "$T/semi_rows.csv" --delimiter ';'
expect_rc 0 "predict --delimiter ';'"

# ---- predict a folder, and into a CSV file -----------------------------------------------------------
run "$G" predict --weights "$FT" "$FX/shapes/test" --top-k 2
expect_rc 0 "predict a folder"
if [ "$(grep -c '^  1\. ' "$T/out")" = 12 ]; then ok; else bad "predicted $(grep -c '^  1\. ' "$T/out") of 12 images"; fi
run "$G" predict --weights "$FT" --input "$FX/shapes/test" --out "$T/p.csv"
expect_rc 0 "predict a folder --out"
expect_out "predicted 12 inputs (12 images, 0 CSV rows)" "a summary instead of every line"
if [ "$(head -1 "$T/p.csv")" = "input,row,class,probability,class_2,probability_2,class_3,probability_3" ] &&
    [ "$(grep -c . "$T/p.csv")" = 13 ] && grep -q "^$FX/shapes/test/left/left_00.png,," "$T/p.csv"; then ok; else
    bad "the CSV of a folder:"; head -3 "$T/p.csv" >&2
fi
run "$G" predict --weights "$TAB" "$FX/table.csv" --out "$T/q.csv" --top-k 1 --json
expect_rc 0 "predict CSV rows --out --json"
json "d['csv_rows'] == 150 and d['images'] == 0 and sum(d['predicted'].values()) == 150" "the JSON summary"
if [ "$(head -1 "$T/q.csv")" = "input,row,class,probability" ] && grep -q "^$FX/table.csv,150," "$T/q.csv"; then ok; else
    bad "the CSV of rows:"; head -3 "$T/q.csv" >&2
fi
run "$G" predict --weights "$FT" "$T/mixed/b" --out "$T/nowhere/p.csv"
expect_rc 2 "--out in a folder that does not exist"
mkdir -p "$T/empty"
run "$G" predict --weights "$FT" "$T/empty"
expect_rc 2 "a folder without images"
expect_err "a folder without image files" "says so"

# ---- a spec that takes its input and classes from the data ------------------------------------------
cat >"$T/net.json" <<'EOF'
{"type": "container", "name": "Net", "input": "data", "children": {
  "features": {"type": "sequential", "children": [
    {"type": "conv2d", "out": 4, "kernel": 3, "padding": 1}, {"type": "relu"},
    {"type": "maxpool2d", "kernel": 2}]},
  "classifier": {"type": "sequential", "children": [
    {"type": "flatten"}, {"type": "linear", "out": "classes"}]}}}
EOF
NET="$T/net.safetensors"
run "$G" train --data "images:$SHAPES" --image-size 16 --model "$T/net.json" --epochs 1 $TH --quiet --out "$NET"
expect_rc 0 "a spec with \"input\": \"data\" and \"out\": \"classes\" on 3-class RGB images"
S="$(meta "$NET" graft.spec)"
if [[ "$S" == *'"input":[3,16,16]'* && "$S" == *'"linear","out":3}'* && "$S" != *classes* ]]; then ok; else
    bad "the stored spec is not resolved: $S"
fi
run "$G" predict --weights "$NET" "$FX/seven.png"
expect_rc 0 "predict with it"
run "$G" train --data "idx:$FX/idx" --model "$T/net.json" --epochs 1 $TH --json --quiet
expect_rc 0 "the same spec on 10-class grey digits"
json "d['model']['parameters'] == 4*1*9 + 4 + 4*14*14*10 + 10" "built for that data"
sed 's/"classes"/"klasses"/' "$T/net.json" >"$T/bad_net.json"
run "$G" train --data "images:$SHAPES" --model "$T/bad_net.json" --epochs 1 $TH
expect_rc 1 "\"out\": \"klasses\""
expect_err "at classifier.1 (linear): \"out\" must be a whole number or \"classes\"" "names the layer"

finish
