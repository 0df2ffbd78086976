#!/usr/bin/env bash
# graft probe with the tiny model of tests/fixtures/tfjs/tiny: the cut sweep finds its block
# ends, scores each with LogME and H-score, trains a linear probe per cut and correlates; --cuts
# probes the layers named; a probe at a cut gives what finetune's cached-feature probe gives
# there; wrong options and unknown layers fail with a message. Then several candidates: a
# cnn-small bundle trained here and the same model exported as ONNX next to the tiny model,
# ranked in one table (the bundle and its ONNX export give the same scores at the same cut
# points); per-candidate --cuts and --cut; candidates that cannot take the data, unknown cut
# names. Usage: test_cli_probe.sh graft.
source "$(dirname "$0")/lib.sh"
M="$SRC/tests/fixtures/tfjs/tiny/model.json"
D="idx:$FX/idx"

run "$G" probe --from "$M" --data "$D" --limit 200 --epochs 3 --lr 0.01 $TH
expect_rc 0 "probe with the default sweep"
expect_out "input 1 -> 3 channels (repeated), 28x28 -> 7x9 (bilinear)" "the data is adapted"
expect_out "LogME    H-score" "the table's columns"
expect_out "Spearman rank correlation with the accuracy over 7 (model, cut) pairs" "the correlation"
expect_out "best by LogME: #1 at" "the cut LogME chooses"
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
expect_err "has no layer \"cat3\" (did you mean \"cat" "names the layer and a near one"
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
expect_rc 2 "--from that is not a model"
expect_err "takes a TensorFlow.js layers model.json, an ONNX model (.onnx) or a graft bundle" \
    "says what it takes"
run "$G" probe --from "$M" --data "$D" --augment flip $TH
expect_rc 2 "--augment"

# ---- several candidates: a bundle, its ONNX export and the TF.js model ------------------------
run "$G" train --model cnn-small --data "$D" --limit 300 --epochs 2 --lr 0.003 --out "$T/cnn.safetensors" $TH
expect_rc 0 "train the bundle candidate"
run "$G" export "$T/cnn.safetensors" "$T/cnn.onnx"
if grep -q "without ONNX" "$T/err"; then
    skip "graft was built without ONNX support"
    finish
    exit 0
fi
expect_rc 0 "export it as ONNX"
B="$T/cnn.safetensors"
O="$T/cnn.onnx"

run "$G" probe --from "$O" --from "$B" --from "$M" --data "$D" --limit 200 --epochs 3 --lr 0.01 \
    --json $TH
expect_rc 0 "three candidates"
cp "$T/out" "$T/three.json"
json "[m['kind'] for m in d['models']] == ['ONNX', 'bundle', 'TensorFlow.js']" "the kinds"
json "[c['cut'] for c in d['cuts'] if c['model'] == 0] == ['/features.1/Relu_1', \
'/features.2/MaxPool_2', '/features.4/Relu_4', '/features.5/MaxPool_5', '/classifier.2/Relu_8']" \
    "the ONNX sweep: where the graph is a chain and a layer complete, up to the last Gemm's input"
json "[c['cut'] for c in d['cuts'] if c['model'] == 1] == ['features.1', 'features.2', \
'features.4', 'features.5', 'classifier.2']" "the bundle sweep: steps not followed by an activation"
json "len(d['cuts']) == 17 and sorted(d['ranking']) == list(range(17))" "every pair ranked once"
json "all(d['cuts'][a]['logme'] >= d['cuts'][b]['logme'] for a, b in zip(d['ranking'], \
d['ranking'][1:]))" "the ranking is by LogME, best first"
json "all(math.isfinite(c['logme']) and math.isfinite(c['hscore']) and 0 <= c['accuracy'] <= 1 \
for c in d['cuts'])" "finite scores, accuracies in [0, 1]"
json "-1 <= d['spearman_logme_accuracy'] <= 1 and -1 <= d['spearman_hscore_accuracy'] <= 1" \
    "the correlations over all pairs"
json "all(abs(a['logme'] - b['logme']) < 1e-4 * (1 + abs(b['logme'])) and a['features'] == \
b['features'] for a, b in zip(d['cuts'][0:5], d['cuts'][5:10]))" \
    "the bundle and its ONNX export score the same at the same cut points"
json "d['best_by_logme_from'] in ['$O', '$B', '$M'] and d['cuts'][d['ranking'][0]]['cut'] == \
d['best_by_logme']" "the best pair"

run "$G" probe --from "$O" --from "$B" --data "$D" --limit 200 --epochs 3 --lr 0.01 $TH
expect_rc 0 "the table"
expect_out "ranked by LogME:" "a ranked table"
expect_out "model #1  $O (ONNX, 5 cut points" "the candidates"
expect_out "model #2  $B (bundle, 5 cut points" "the candidates"
expect_out "over 10 (model, cut) pairs" "the correlation over all pairs"
if awk '/^ *[0-9]+ #[12] /{print $5}' "$T/out" | python3 -c "
import sys
v = [float(x) for x in sys.stdin]
sys.exit(0 if len(v) == 10 and v == sorted(v, reverse=True) else 1)"; then ok; else
    bad "the table's rows are sorted by LogME"; show; fi

run "$G" probe --from "$O" --cuts /features.5/MaxPool_5,output --from "$B" --cut features.4 \
    --data "$D" --limit 200 --epochs 2 --json $TH
expect_rc 0 "--cuts and --cut per candidate"
json "[c['cut'] for c in d['cuts']] == ['/features.5/MaxPool_5', 'output', 'features.1', \
'features.2', 'features.4'] and d['cuts'][1]['features'] == 10" "each candidate's own cut points"
run "$G" probe --cuts classifier.1 --from "$B" --data "$D" --limit 200 --epochs 2 --json $TH
expect_rc 0 "--cuts before the first --from is the first's"
json "[c['cut'] for c in d['cuts']] == ['classifier.1'] and d['cuts'][0]['features'] == 128" \
    "a bundle cut at any module"

# errors: each names the candidate; nothing runs
run "$G" probe --from "$M" --from "$O" --cuts /features.5/MaxPool_5,/features.9/Relu --data "$D" $TH
expect_rc 2 "an unknown ONNX cut"
expect_err "--cuts: $O has no tensor or node \"/features.9/Relu\"" "names the file and the cut"
expect_err "the sweep cuts at /features.1/Relu_1, /features.2/MaxPool_2" "lists valid names"
run "$G" probe --from "$B" --cut features.9 --data "$D" $TH
expect_rc 2 "an unknown bundle cut"
expect_err "--cut: $B has no module \"features.9\" (did you mean" "names the file and the module"
run "$G" probe --from "$O" --data "images:$FX/shapes" --cuts /features.1/Relu_1 --epochs 1 --json $TH
expect_rc 0 "colour images fitted to a grey ONNX input"
json "d['models'][0]['input'].startswith('3 -> 1 channels (averaged), ') and \
d['models'][0]['input'].endswith(' -> 28x28 (bilinear)')" "averaged and resized as for a model.json"
run "$G" probe --from "$O" --from "$SRC/tests/fixtures/onnx_export/cnn.onnx" --data "images:$FX/shapes" $TH
expect_rc 2 "colour images into a 2-channel ONNX input"
expect_err "takes 'input', float32 [batch, 2, 12, 12], and the samples of images:" "names its input"
expect_err "reads 2 channels, the data's samples are [3, " "says what cannot be fitted"
expect_no_out "nothing is probed"
run "$G" probe --from "$O" --data "csv:$FX/table.csv" --normalize none $TH
expect_rc 2 "an ONNX candidate that cannot take the data"
expect_err "--from $O takes 'input', float32 [batch, 1, 28, 28], but the samples of" \
    "names the file, its input and the data's samples"
expect_no_out "nothing is probed"
run "$G" probe --from "$B" --data "images:$FX/shapes" $TH
expect_rc 2 "a bundle that cannot take the data"
expect_err "--from $B takes samples [1, 28, 28] but the samples of images:" "names the shapes"
run "$G" probe --from "$O" --from "$T/missing.onnx" --data "$D" $TH
expect_rc 2 "a missing candidate"
expect_err "missing.onnx" "names it"
run "$G" probe --from "$B" --cuts features.1 --cut features.2 --data "$D" $TH
expect_rc 2 "--cuts and --cut for one candidate"
run "$G" probe --from "$B" --pool max --data "$D" $TH
expect_rc 2 "--pool without a speech embedding"
expect_err "--pool applies to a speech embedding" "says what it is for"

# ---- an ONNX model of a fixed larger colour input on grey images ------------------------------
# Grey 28 x 28 images whose values are multiples of 16, and the same images doubled in size
# (bilinear, half-pixel centres: every value is then an integer again) as colour images: the
# model (cnn-small for [3, 56, 56], exported) probed on the grey images, fitted to its input by
# graft, gives what it gives on the images fitted beforehand.
python3 - "$T/grey" "$T/big" <<'PY'
import os, random, sys
random.seed(5)
def up(n, m):  # half-pixel bilinear sources and weights, in sixteenths
    out = []
    for i in range(m):
        s = max((i + 0.5) * n / m - 0.5, 0.0)
        i0 = min(int(s), n - 1); i1 = min(i0 + 1, n - 1)
        out.append((i0, i1, round((s - i0) * 4)))  # 0, 1 or 3 quarters
    return out
U = up(28, 56)
for k, cls in enumerate(["bars", "columns", "spots"]):
    for d in (sys.argv[1], sys.argv[2]):
        os.makedirs(f"{d}/{cls}", exist_ok=True)
    for j in range(24):
        g = [[random.randrange(0, 4) * 16 for _ in range(28)] for _ in range(28)]
        for y in range(28):
            for x in range(28):
                if (k == 0 and (y // 4) % 2) or (k == 1 and (x // 4) % 2) or \
                   (k == 2 and (x - 14) ** 2 + (y - 14) ** 2 < 40 + 4 * (j % 5)):
                    g[y][x] = min(240, g[y][x] + 160)
        with open(f"{sys.argv[1]}/{cls}/{j:02d}.pgm", "wb") as f:
            f.write(b"P5 28 28 255\n" + bytes(v for row in g for v in row))
        big = bytearray()
        for (y0, y1, ly) in U:
            for (x0, x1, lx) in U:
                v = ((4 - ly) * ((4 - lx) * g[y0][x0] + lx * g[y0][x1]) +
                     ly * ((4 - lx) * g[y1][x0] + lx * g[y1][x1]))
                assert v % 16 == 0
                big += bytes([v // 16] * 3)
        with open(f"{sys.argv[2]}/{cls}/{j:02d}.ppm", "wb") as f:
            f.write(b"P6 56 56 255\n" + bytes(big))
PY
run "$G" train --model cnn-small --data "images:$T/big" --epochs 1 --lr 0.003 --out "$T/big.safetensors" $TH
expect_rc 0 "train cnn-small on 3 x 56 x 56 images"
run "$G" export "$T/big.safetensors" "$T/big.onnx"
expect_rc 0 "export it: a fixed input [batch, 3, 56, 56]"
run "$G" probe --from "$T/big.onnx" --data "images:$T/grey" --grayscale --epochs 20 --lr 0.01 --json $TH
expect_rc 0 "the ONNX model on the grey 28 x 28 images"
json "d['models'][0]['input'] == '1 -> 3 channels (repeated), 28x28 -> 56x56 (bilinear)'" \
    "grey repeated, resized to the model's input"
cp "$T/out" "$T/fitted.json"
run "$G" probe --from "$T/big.onnx" --data "images:$T/big" --epochs 20 --lr 0.01 --json $TH
expect_rc 0 "the ONNX model on the images resized beforehand"
json "d['models'][0]['input'] == ''" "nothing to fit"
if python3 - "$T/fitted.json" "$T/out" <<'PY' >"$T/cmp" 2>&1
import json, sys
a = json.load(open(sys.argv[1]))["cuts"]
b = json.load(open(sys.argv[2]))["cuts"]
assert len(a) == len(b) == 5, (len(a), len(b))
for x, y in zip(a, b):
    assert x["cut"] == y["cut"] and x["features"] == y["features"], (x, y)
    assert abs(x["logme"] - y["logme"]) < 1e-4 * (1 + abs(y["logme"])), (x, y)
    assert abs(x["hscore"] - y["hscore"]) < 1e-3 * (1 + abs(y["hscore"])), (x, y)
    assert abs(x["accuracy"] - y["accuracy"]) < 1e-9, (x, y)
PY
then ok; else bad "fitted by graft and fitted beforehand give the same scores: $(tail -2 "$T/cmp")"; fi
finish
