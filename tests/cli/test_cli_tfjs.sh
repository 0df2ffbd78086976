#!/usr/bin/env bash
# TensorFlow.js models on the command line, with the tiny model of tests/fixtures/tfjs/tiny:
# graft inspect lists its layers, counts, input, output and cut names (text and --json, cut and
# resized); graft finetune --from model.json cuts it, adapts grey 28x28 digits to its 3 x 7 x 9
# input, trains a new head (with a frozen trunk: on features computed once) and writes the
# weights; wrong options and broken files fail with a message. Usage: test_cli_tfjs.sh graft.
source "$(dirname "$0")/lib.sh"
M="$SRC/tests/fixtures/tfjs/tiny/model.json"

run "$G" inspect "$M"
expect_rc 0 "inspect model.json"
expect_out "layer (--cut NAME)" "the layer table names the cut points"
expect_out "SeparableConv2D" "layers are listed by class"
expect_out "23 layers: InputLayer 1, ZeroPadding2D 1, Conv2D 3" "layer counts per class"
expect_out "input     img [3, 7, 9]" "the input in graft's layout"
expect_out "output    out [3]" "the output"
expect_out "23 of 24 weights used, 5 of them quantised" "the weights"

run "$G" inspect "$M" --cut c2 --input-size 11 --json
expect_rc 0 "inspect --cut --input-size --json"
json "d['output']['name'] == 'c2' and d['output']['shape'] == [5, 4, 3]" "the cut is the output"
json "d['input']['shape'] == [3, 11, 11]" "--input-size sets the input's height and width"
json "[l['output'] for l in d['layers'] if l['name'] == 'c1'] == [[6, 7, 6]]" "shapes follow the size"
json "[l['kept'] for l in d['layers'] if l['name'] == 'out'] == [False]" "layers after the cut are not kept"
json "'Dense' not in d['layer_counts'] and d['layer_counts']['Conv2D'] == 3" "counts of the kept layers"
json "d['weights']['used'] == 15 and d['weights']['quantized'] == 5" "the weights the cut needs"
run "$G" inspect "$M" --input-size 11
expect_rc 1 "a size the model's Reshape cannot take"
expect_err "layer rs (Reshape): target_shape does not hold the input's 240 values" "names the layer"

run "$G" inspect "$M" --cut nope
expect_rc 1 "an unknown cut"
expect_err "cut at \"nope\": the model has no layer of that name" "the message names the cut"
run "$G" inspect "$FX/table.csv" --cut out
expect_rc 2 "--cut on a file that is not a TensorFlow.js model"

# fine-tuning: a frozen trunk trains its head on cached features
W="$T/tiny-ft.safetensors"
run "$G" finetune --from "$M" --cut cat2 --freeze 'trunk.*' --data "idx:$FX/idx" --limit 200 \
    --epochs 3 --lr 0.01 $TH --out "$W" --report "$T/rep"
expect_rc 0 "finetune --from model.json with a frozen trunk"
expect_err "its features of" "the features are computed once"
expect_out "input     1 -> 3 channels (repeated), 28x28 -> 7x9 (bilinear)" "the data is adapted"
expect_out "cut at cat2 + new head" "the summary names the cut"
expect_out "accuracy" "an evaluation"
expect_file "$W" "the weights"
expect_file "$T/rep/index.html" "the report"
run "$G" inspect "$W" --json
json "'head.weight' in [t['name'] for t in d['tensors']] and 'trunk.c1.weight' in [t['name'] for t in d['tensors']]" \
    "the state_dict holds the trunk and the head"
json "d['metadata']['graft.from'].endswith('model.json') and '\"cut\":\"cat2\"' in d['metadata']['graft.tfjs']" \
    "the file says where it came from"
json "d['metadata']['graft.model'] == 'tfjs' and d['metadata'].get('graft.classes')" \
    "the file is a bundle: model kind and classes"
# the fine-tuned classifier is used like any other: eval and predict rebuild it from graft.tfjs
run "$G" finetune --from "$M" --cut cat2 --freeze 'trunk.*' --data "idx:$FX/idx" --limit 200 \
    --epochs 3 --lr 0.01 $TH --json
FT_ACC="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["eval"]["accuracy"])' "$T/out" 2>/dev/null)"
run "$G" eval --weights "$W" --data "idx:$FX/idx" --limit 200 $TH --json
expect_rc 0 "eval of a classifier fine-tuned from model.json"
EV_ACC="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accuracy"])' "$T/out" 2>/dev/null)"
if [ -n "$FT_ACC" ] && [ "$FT_ACC" = "$EV_ACC" ]; then ok; else bad "eval's accuracy $EV_ACC is not finetune's $FT_ACC"; fi
PNG="$(ls "$FX"/*.png 2>/dev/null | head -1)"
run "$G" predict --weights "$W" --input "$PNG" --top-k 2
expect_rc 0 "predict with a classifier fine-tuned from model.json"
mv "$M" "$M.moved"
run "$G" eval --weights "$W" --data "idx:$FX/idx" --limit 200 $TH
expect_rc 1 "eval without the model.json it was fine-tuned from"
expect_err "rebuilding the classifier on" "the missing model.json is named"
mv "$M.moved" "$M"

# the whole network trains (no cache); the default cut is the input of the last Dense layer
run "$G" finetune --from "$M" --data "idx:$FX/idx" --limit 100 --epochs 1 $TH --json
expect_rc 0 "finetune the whole network"
json "d['tfjs']['cut'] == 'bn2' and d['tfjs']['features_cached'] == False" "default cut and no cache"
json "d['model']['trainable'] > 2000" "the trunk trains"

run "$G" finetune --from "$M" --cut cat2 --data "idx:$FX/idx" --dry-run $TH
expect_rc 0 "--dry-run"
expect_out "dry run: nothing was trained or written" "the dry run says so"
expect_out "head      32 -> 10 classes" "the new head"

run "$G" finetune --from "$M" --model mlp --data "idx:$FX/idx" $TH
expect_rc 2 "--model with a TensorFlow.js --from"
expect_err "--model does not apply to a TensorFlow.js --from" "the message says why"
run "$G" finetune --from "$M" --data "idx:$FX/idx" --checkpoint-dir "$T/ck" $TH
expect_rc 2 "--checkpoint-dir with a TensorFlow.js --from"
run "$G" finetune --from "$M" --data "idx:$FX/idx" --in-channels error $TH
expect_rc 2 "--in-channels error with grey data and an RGB model"

# a broken copy: a shard path leaving the folder
mkdir -p "$T/bad"
cp "$SRC"/tests/fixtures/tfjs/tiny/*.bin "$T/bad/"
sed 's/"group2-shard1of1.bin"/"..\/..\/group2-shard1of1.bin"/' "$M" >"$T/bad/model.json"
run "$G" inspect "$T/bad/model.json"
expect_rc 1 "a shard path leaving the folder"
expect_err "leaves the model's folder" "the message says so"
finish
