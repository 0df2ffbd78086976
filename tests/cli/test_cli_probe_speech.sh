#!/usr/bin/env bash
# graft probe with a speech embedding on audio: data: the clips read as waveforms through the
# chain finetune builds (the mel model, windows of 76 frames, the embedding cut at its block
# ends, each window's output averaged over its positions, then --pool over the windows), the
# features standardised as finetune standardises them, so the probe at the embedding's output
# gives finetune --freeze 'trunk.*''s accuracy with the same seed and epochs (flat, mean and
# max pooling); --cuts; mixed with a model of the waveforms and its ONNX export (the same
# scores); candidates that cannot take the data refused before any work, naming the
# file: a speech embedding on images, a model.json next to one on audio, a missing --front, an
# unknown cut, a speech bundle. The models are the stand-ins of tests/fixtures/speech_standin
# (openWakeWord's interfaces, gen_speech_standin.py). Skipped (77) without espeak-ng, flite and
# sox (scripts/make-speech.sh) or in a graft without audio.
source "$(dirname "$0")/lib.sh"

need_speech
D="$T/words"
bash "$SRC/scripts/make-speech.sh" "$D" --words "one two three" --voices 10 --renditions 2 \
    >"$T/make.log" 2>&1 || { bad "make-speech.sh failed: $(tail -2 "$T/make.log")"; finish; exit; }
M="$SRC/tests/fixtures/speech_standin/embedding_model.onnx"
TINY="$SRC/tests/fixtures/tfjs/tiny/model.json"
COMMON=(--data "audio:$D" --clip-seconds 1 --epochs 3 --lr 0.003 --seed 1)

run "$G" probe --from "$M" "${COMMON[@]}" --pool max --json $TH
expect_rc 0 "a speech embedding's sweep"
cp "$T/out" "$T/max.json"
json "d['models'][0]['kind'] == 'speech embedding' and d['models'][0]['input'].startswith( \
'waveforms [1, 16000] -> ') and d['models'][0]['input'].endswith('pooled max')" "the chain"
json "[c['cut'] for c in d['cuts']] == ['win', 'mean', 'output']" \
    "its block ends, then the embedding's output"
json "[c['features'] for c in d['cuts']] == [2432, 32, 96]" "each window's output, pooled by max"
json "all(math.isfinite(c['logme']) and 0 <= c['accuracy'] <= 1 for c in d['cuts'])" "scores"

run "$G" probe --from "$M" "${COMMON[@]}" --pool max $TH
expect_rc 0 "the table"
expect_out "model #1  $M (speech embedding, 3 cut points" "the candidate"

run "$G" probe --from "$M" --cut mean "${COMMON[@]}" --pool mean --json $TH
expect_rc 0 "--cut inside the embedding"
json "[c['cut'] for c in d['cuts']] == ['win', 'mean'] and d['cuts'][1]['features'] == 32" \
    "the sweep ends there"

# the probe at the embedding's output is finetune's frozen embedding + linear head
for pool in max mean flat; do
    if [ "$pool" = max ]; then cp "$T/max.json" "$T/probe.json"; else
        run "$G" probe --from "$M" --cuts mean,output "${COMMON[@]}" --pool $pool --json $TH
        expect_rc 0 "--cuts with --pool $pool"
        cp "$T/out" "$T/probe.json"
    fi
    run "$G" finetune --from "$M" --freeze 'trunk.*' "${COMMON[@]}" --pool $pool --json $TH
    expect_rc 0 "finetune --freeze 'trunk.*' --pool $pool"
    if python3 - "$T/probe.json" "$T/out" <<'PY' >"$T/cmp" 2>&1
import json, sys
p = json.load(open(sys.argv[1]))["cuts"][-1]
f = json.load(open(sys.argv[2]))["eval"]
print(p["cut"], p["accuracy"], p["f1"], f["accuracy"], f["macro_f1"])
sys.exit(0 if p["cut"] == "output" and abs(p["accuracy"] - f["accuracy"]) < 1e-9 and
         abs(p["f1"] - f["macro_f1"]) < 1e-9 else 1)
PY
    then ok; else bad "--pool $pool: probe and finetune differ at the output: $(cat "$T/cmp")"; fi
done

# ---- mixed with candidates that take the waveforms: a small model trained on them, its export --
cat >"$T/wave.json" <<'JSON'
{"type": "container", "name": "WaveNet", "input": "data", "children": {
  "features": {"type": "sequential", "children": [
    {"type": "conv1d", "out": 8, "kernel": 160, "stride": 80}, {"type": "relu"}]},
  "classifier": {"type": "sequential", "children": [
    {"type": "flatten"}, {"type": "linear", "out": "classes"}]}}}
JSON
run "$G" train --model "$T/wave.json" --data "audio:$D" --waveform --clip-seconds 1 --align energy \
    --epochs 1 --out "$T/wave.safetensors" $TH
expect_rc 0 "a model of the waveforms"
run "$G" export "$T/wave.safetensors" "$T/wave.onnx"
expect_rc 0 "its ONNX export"
run "$G" probe --from "$M" --cuts output --from "$T/wave.onnx" --from "$T/wave.safetensors" \
    "${COMMON[@]}" --pool max --json $TH
expect_rc 0 "three kinds on the same clips"
json "[m['kind'] for m in d['models']] == ['speech embedding', 'ONNX', 'bundle'] and \
len(d['cuts']) == 4 and d['cuts'][0]['features'] == 96" "each with its cut points"
json "abs(d['cuts'][1]['logme'] - d['cuts'][2]['logme']) < 1e-4 * (1 + abs(d['cuts'][2]['logme']))" \
    "the waveform model and its export score the same"

# ---- refused before any work, naming the file --------------------------------------------------
run "$G" probe --from "$M" --data "idx:$FX/idx" $TH
expect_rc 2 "a speech embedding on images"
expect_err "--from $M is a speech embedding" "names the file"
expect_err "it takes audio: data" "says what it takes"
run "$G" probe --from "$M" --from "$TINY" "${COMMON[@]}" $TH
expect_rc 2 "a model.json next to it on audio"
expect_err "$TINY takes samples of 3 dimensions, the data's are [1, 16000]" "names the file"
expect_no_out "nothing is probed"
if grep -q "features of the" "$T/err"; then bad "no features are computed before the refusal"; else ok; fi
run "$G" probe --from "$M" --front "$T/nope.onnx" "${COMMON[@]}" $TH
expect_rc 2 "a missing mel model"
expect_err "nope.onnx" "names it"
run "$G" probe --from "$M" --cuts output,nope "${COMMON[@]}" $TH
expect_rc 2 "an unknown cut"
expect_err "--cuts: $M has no tensor or node \"nope\"" "names the file and the cut"
run "$G" finetune --from "$M" --freeze 'trunk.*' "${COMMON[@]}" --pool max --out "$T/sp.safetensors" $TH
expect_rc 0 "a speech bundle"
run "$G" probe --from "$M" --from "$T/sp.safetensors" "${COMMON[@]}" $TH
expect_rc 2 "a speech bundle as a candidate"
expect_err "--from $T/sp.safetensors is a speech embedding with a trained head" "names it"
finish
