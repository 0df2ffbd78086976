#!/usr/bin/env bash
# graft finetune --from embedding_model.onnx (openWakeWord's speech embedding, fetched by
# scripts/fetch-openwakeword.sh; skipped without it): a frozen embedding's head trained on
# cached, standardised embeddings and folded back (the bundle's own evaluation by graft eval
# gives the accuracy the run printed), --dry-run, two phases from the bundle, and the usage
# errors.
source "$(dirname "$0")/lib.sh"
M="${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}/openwakeword"
if [ ! -f "$M/embedding_model.onnx" ] || "$G" --version | grep -q "^audio: none"; then
    skip "openWakeWord's models are not fetched (scripts/fetch-openwakeword.sh) or no audio"
    finish
    exit 77
fi
# speech/: two words as tones of 0.75 s (make-speech.sh's layout)
python3 - "$T/speech" <<'PY' || { bad "cannot write the clips"; finish; exit; }
import math, os, struct, sys, wave
for part, n in (("train", 6), ("test", 3)):
    for word, f0 in (("one", 300.0), ("two", 2500.0)):
        os.makedirs(os.path.join(sys.argv[1], part, word), exist_ok=True)
        for k in range(n):
            with wave.open(os.path.join(sys.argv[1], part, word, "%d.wav" % k), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                f = f0 + 40 * k
                w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * f * i / 16000)))
                                       for i in range(12000)))
PY
E="$M/embedding_model.onnx"
W="$T/oww.safetensors"

run "$G" finetune --from "$E" --data "audio:$T/speech" --freeze 'trunk.*' --dry-run $TH
expect_rc 0 "dry run"
expect_out "9 windows of 76 frames" "dry run: 1.5 s clips"
expect_out "head      864 -> 2 classes" "dry run: flat pooling"
expect_out "its features would be computed once" "dry run: frozen"

run "$G" finetune --from "$E" --data "audio:$T/speech" --freeze 'trunk.*' --pool max \
    --clip-seconds 1 --epochs 30 --lr 0.01 --json --out "$W" $TH
expect_rc 0 "frozen embedding"
json "d['speech']['features_cached'] and d['speech']['windows'] == 3" "cached, 3 windows"
json "d['eval']['accuracy'] == 1.0" "tones told apart"
acc="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["eval"]["loss"])' "$T/out")"

run "$G" eval --weights "$W" --data "audio:$T/speech" --json $TH
expect_rc 0 "eval of the bundle"
json "d['accuracy'] == 1.0 and d['examples'] == 6" "the bundle rebuilt, its clips read as waveforms"
json "abs(d['loss'] - $acc) < 1e-3 * max(1, abs($acc))" "the folded head gives the run's loss"

run "$G" finetune --from "$W" --data "audio:$T/speech" --freeze 'trunk.*' \
    --unfreeze 'trunk.model/conv2d_1[5-9]/*' --epochs 1 --lr 0.0001 --json --out "$T/ft.safetensors" $TH
expect_rc 0 "two phases: the last block fine-tuned from the bundle"
json "d['finetune']['loaded'] >= 40" "every tensor loaded from the bundle"

run "$G" finetune --from "$E" --data "csv:$FX/table.csv" $TH
expect_rc 2 "an ONNX --from on csv: data"
expect_err "on audio: data" "names the data it needs"
run "$G" finetune --from "$E" --data "audio:$T/speech" --pool median $TH
expect_rc 2 "--pool median"
expect_err "is not flat, mean or max" "names the choices"
run "$G" finetune --from "$E" --data "audio:$T/speech" --front "$T/none.onnx" $TH
expect_rc 1 "a missing front end"
expect_err "none.onnx" "names the file"
run "$G" finetune --from "$E" --data "audio:$T/speech" --clip-seconds 0.3 $TH
expect_rc 2 "a clip shorter than one window"
expect_err "fewer than one window of 76" "says why"
finish
