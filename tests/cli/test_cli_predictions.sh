#!/usr/bin/env bash
# graft eval --predictions: every example's prediction in a CSV file (image paths, CSV rows),
# consistent with the printed misclassified count and the most confidently wrong examples, and
# the top losses in the --report page. Usage: test_cli_predictions.sh path/to/graft.
# To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"
SH="images:$FX/shapes"
run "$G" train --data "$SH" --epochs 1 --out "$T/s.safetensors" $TH -q
expect_rc 0 "train on images"
run "$G" eval --weights "$T/s.safetensors" --data "$SH" --predictions "$T/p.csv" --report "$T/rep" $TH --json
expect_rc 0 "eval --predictions --report"
expect_file "$T/p.csv" "the predictions"
json "d['misclassified'] == sum(1 for l in open('$T/p.csv').read().splitlines()[1:] if l.endswith(',0'))" \
    "the misclassified count is the CSV's wrong rows"
json "len(open('$T/p.csv').read().splitlines()) == d['examples'] + 1" "one row per example"
json "len(d['top_wrong']) == min(10, d['misclassified'])" "the top wrong examples"
json "all(d['top_wrong'][i]['probability'] >= d['top_wrong'][i + 1]['probability'] for i in range(len(d['top_wrong']) - 1))" \
    "most confident first"
if python3 - "$T/p.csv" <<'PY'
import csv, os, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert rows and all(os.path.isfile(r["path"]) for r in rows)
assert all(r["correct"] == str(int(r["true_class"] == r["predicted_class"])) for r in rows)
assert all(os.path.basename(os.path.dirname(r["path"])) == r["true_class"] for r in rows)
PY
then ok; else bad "the CSV's paths, classes or correct column"; fi
if grep -q "top losses" "$T/rep/index.html"; then ok; else bad "the report lacks the top losses"; fi
expect_clean_dir "$T" "no temporary files"

run "$G" eval --weights "$T/s.safetensors" --data "$SH" $TH
expect_out "misclassified" "the text gives the misclassified count"

# a CSV table: the row column names the data row
run "$G" train --data "csv:$FX/table.csv" --epochs 1 --hidden 8 --out "$T/t.safetensors" $TH -q
run "$G" eval --weights "$T/t.safetensors" --data "csv:$FX/table.csv" --predictions "$T/q.csv" $TH
expect_rc 0 "eval --predictions on a CSV table"
if python3 - "$T/q.csv" "$FX/table.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
data = list(csv.DictReader(open(sys.argv[2])))
assert rows and all(data[int(r["row"]) - 1]["species"] == r["true_class"] for r in rows)
PY
then ok; else bad "the row column does not lead to the example's data row"; fi
run "$G" eval --weights "$T/t.safetensors" --data "csv:$FX/table.csv" --predictions "$T/nodir/q.csv" $TH
expect_rc 2 "a --predictions path in a missing folder is refused"
finish
