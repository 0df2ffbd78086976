#!/usr/bin/env bash
# graft probe with the tiny model of tests/fixtures/tfjs/tiny: the cut sweep finds its block
# ends, scores each with LogME and H-score, trains a linear probe per cut and correlates; --cuts
# probes the layers named; a probe at a cut gives what finetune's cached-feature probe gives
# there; wrong options and unknown layers fail with a message. Usage: test_cli_probe.sh graft.
source "$(dirname "$0")/lib.sh"
M="$SRC/tests/fixtures/tfjs/tiny/model.json"
D="idx:$FX/idx"

run "$G" probe --from "$M" --data "$D" --limit 200 --epochs 3 --lr 0.01 $TH
expect_rc 0 "probe with the default sweep"
expect_out "input     1 -> 3 channels (repeated), 28x28 -> 7x9 (bilinear)" "the data is adapted"
expect_out "LogME    H-score" "the table's columns"
expect_out "Spearman rank correlation with the accuracy over 7 cuts" "the correlation"
expect_out "best cut by LogME:" "the cut LogME chooses"
expect_err "features of the 200 train examples at 7 cut points" "the features are computed once"

run "$G" probe --from "$M" --data "$D" --limit 200 --epochs 3 --lr 0.01 --cut-sweep --json $TH
expect_rc 0 "probe --cut-sweep --json"
json "[c['cut'] for c in d['cuts']] == ['zp', 'cat', 'add', 'act', 'mp', 'cat2', 'bn2']" \
    "the block ends up to the input of the last Dense layer, in the file's order"
json "[c['features'] for c in d['cuts']] == [3, 20, 20, 20, 20, 32, 32]" "pooled feature sizes"
json "all(0 <= c['accuracy'] <= 1 and c['logme'] < 5 and c['hscore'] >= 0 for c in d['cuts'])" \
    "scores and accuracies"
json "-1 <= d['spearman_logme_accuracy'] <= 1 and d['evaluated_on'] == 'test'" "the correlation"
json "d['train_examples'] == 200 and d['best_by_logme'] in [c['cut'] for c in d['cuts']]" "summary"

run "$G" probe --from "$M" --data "$D" --limit 200 --epochs 3 --lr 0.01 --cut mp --json $TH
expect_rc 0 "--cut ends the sweep"
json "[c['cut'] for c in d['cuts']] == ['zp', 'cat', 'add', 'act', 'mp']" "the sweep ends at --cut"

# a probe at one cut is finetune's probe with cached features: the same accuracy
run "$G" probe --from "$M" --data "$D" --limit 200 --epochs 3 --lr 0.01 --cuts cat2,c1 --json $TH
expect_rc 0 "probe --cuts"
json "[c['cut'] for c in d['cuts']] == ['cat2', 'c1'] and d['cuts'][1]['features'] == 6" \
    "the layers named, in the order named"
cp "$T/out" "$T/probe.json"
run "$G" finetune --from "$M" --cut cat2 --freeze 'trunk.*' --data "$D" --limit 200 --epochs 3 \
    --lr 0.01 --json $TH
expect_rc 0 "finetune at the same cut"
if python3 - "$T/probe.json" "$T/out" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
f = json.load(open(sys.argv[2]))
acc = f["eval"]["accuracy"] if "eval" in f else f["accuracy"]
sys.exit(0 if abs(p["cuts"][0]["accuracy"] - acc) < 1e-9 else 1)
PY
then ok; else bad "probe and finetune's cached probe give the same accuracy at cat2"; fi

run "$G" probe --from "$M" --data "$D" --cuts cat,cat3 $TH
expect_rc 2 "an unknown cut"
expect_err "has no layer \"cat3\"; did you mean \"cat" "names the layer and a near one"
run "$G" probe --from "$M" --data "$D" --cuts nope,cat $TH
expect_rc 2 "an unknown first cut"
expect_err "cut at \"nope\": the model has no layer of that name" "names the layer"
run "$G" probe --from "$M" --data "$D" --input-size 11 $TH
expect_rc 1 "a default end the input size cannot reach"
expect_err "end it earlier with --cut LAYER" "says how to end the sweep earlier"
run "$G" probe --from "$M" --data "$D" --cuts cat --cut-sweep $TH
expect_rc 2 "--cuts with --cut-sweep"
run "$G" probe --from "$M" --data "$D" --cuts cat --cut add $TH
expect_rc 2 "--cuts with --cut"
run "$G" probe --data "$D" $TH
expect_rc 2 "no --from"
expect_err "--from is required" "says what is missing"
run "$G" probe --from "$FX/table.csv" --data "$D" $TH
expect_rc 2 "--from that is not a TensorFlow.js model"
expect_err "takes a TensorFlow.js layers model.json" "says what it takes"
run "$G" probe --from "$M" --data "$D" --augment flip $TH
expect_rc 2 "--augment"
finish
