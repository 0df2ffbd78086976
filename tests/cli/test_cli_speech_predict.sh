#!/usr/bin/env bash
# graft predict with a speech-embedding bundle (graft finetune --from embedding_model.onnx
# --data audio:DIR, graft.speech): the bundle records the clip's alignment on its centre of
# energy (graft.audio "align"), predict on files gives per clip the class and probability that
# graft eval --predictions gives, a word after a second of silence is read as the word alone,
# --stream over a clip shorter than its window gives predict's answer, and --align is refused
# with a bundle.
# The models are tests/fixtures/speech_standin (tiny stand-ins with openWakeWord's interfaces,
# gen_speech_standin.py), so no fetched model is needed. Skipped (77) without espeak-ng, flite
# and sox (scripts/make-speech.sh) or in a graft without audio.
source "$(dirname "$0")/lib.sh"

need_speech
D="$T/words"
bash "$SRC/scripts/make-speech.sh" "$D" --words "one two three" --voices 10 --renditions 2 \
    >"$T/make.log" 2>&1 || { bad "make-speech.sh failed: $(tail -2 "$T/make.log")"; finish; exit; }
M="$SRC/tests/fixtures/speech_standin"
W="$T/speech.safetensors"

# ---- the bundle records the alignment ---------------------------------------------------------
run "$G" finetune --from "$M/embedding_model.onnx" --data "audio:$D" --freeze 'trunk.*' \
    --pool max --clip-seconds 1 --epochs 40 --lr 0.01 --seed 1 --out "$W" --json $TH
expect_rc 0 "a head on the stand-in embedding"
python3 - "$W" <<'PY' && ok || bad "graft.audio does not record the energy alignment of a 1 s clip"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
m = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])["__metadata__"]
a = json.loads(m["graft.audio"])
sys.exit(0 if m["graft.model"] == "speech" and a["align"] == "energy" and a["clip_seconds"] == 1
         and json.loads(m["graft.input"]) == [1, 16000] else 1)
PY

# ---- predict agrees with eval, clip by clip ----------------------------------------------------
run "$G" eval --weights "$W" --data "audio:$D/test" --split 0,0,1 --predictions "$T/eval.csv" $TH
expect_rc 0 "eval the test clips"
run "$G" predict --weights "$W" --json $TH "$D/test"
expect_rc 0 "predict the test clips"
python3 - "$T/eval.csv" "$T/out" <<'PY' >"$T/cmp" 2>&1 && ok || bad "predict differs from eval: $(head -3 "$T/cmp")"
import csv, json, os, sys
# eval's rows follow the folder walk, as predict lists a folder: the same clip at each row
ev = list(csv.DictReader(open(sys.argv[1])))
pr = json.load(open(sys.argv[2]))["predictions"]
assert len(pr) == len(ev) == 12, (len(pr), len(ev))
bad = 0
for e, p in zip(ev, pr):
    top = p["top"][0]
    if (os.path.basename(os.path.dirname(p["input"])) != e["true_class"] or
            top["class"] != e["predicted_class"] or
            abs(top["probability"] - float(e["probability"])) > 1e-5):
        print(p["input"], "predict", top["class"], top["probability"], "eval", e["true_class"],
              e["predicted_class"], e["probability"])
        bad += 1
sys.exit(1 if bad else 0)
PY

# ---- one clip: the word and its probability; a second of silence before it changes nothing -----
clip="$(ls "$D"/test/two/*.wav | head -1)"
run "$G" predict --weights "$W" "$clip" --top-k 1
expect_rc 0 "predict one clip"
want="$(sed -n 's/^  1\. \([a-z]*\) *\([0-9.]*\)$/\1 \2/p' "$T/out")"
[ -n "$want" ] && ok || bad "no '1. word probability' line: $(cat "$T/out")"
sox -V1 "$clip" "$T/late.wav" pad 1 0
run "$G" predict --weights "$W" "$T/late.wav" --top-k 1
expect_rc 0 "predict the clip after a second of silence"
got="$(sed -n 's/^  1\. \([a-z]*\) *\([0-9.]*\)$/\1 \2/p' "$T/out")"
python3 -c 'import sys; a, b = sys.argv[1].split(), sys.argv[2].split()
sys.exit(0 if a and b and a[0] == b[0] and abs(float(a[1]) - float(b[1])) < 2e-3 else 1)' \
    "$want" "$got" && ok || bad "silence before the word changed the answer: '$want' then '$got'"

# ---- --stream: a recording shorter than one window is one clip, predict's answer; a longer --
# ---- one is read window by window ------------------------------------------------------------
run "$G" predict --weights "$W" --stream "$clip" --threshold 0 --json $TH
expect_rc 0 "predict --stream over one clip"
python3 - "$T/out" "$want" <<'PY' && ok || bad "the stream's window is not predict's '$want': $(cat "$T/out")"
import json, sys
r = json.load(open(sys.argv[1]))["recordings"][0]
cls, prob = sys.argv[2].split()
d = r["detections"]
sys.exit(0 if r["windows"] == 1 and len(d) == 1 and d[0]["class"] == cls
         and abs(d[0]["probability"] - float(prob)) < 2e-4 else 1)
PY
sox -V1 "$clip" "$T/long.wav" pad 1 1
run "$G" predict --weights "$W" --stream "$T/long.wav" --hop 0.25 --threshold 0 --json $TH
expect_rc 0 "predict --stream over a longer recording"
json "d['recordings'][0]['windows'] == int((d['recordings'][0]['seconds'] - 1) / 0.25 + 1e-9) + 1" \
    "one window every 0.25 s"

# ---- the bundle's alignment is used, not given ----------------------------------------------------
run "$G" eval --weights "$W" --data "audio:$D/test" --split 0,0,1 --align middle $TH
expect_rc 2 "--align with a bundle"
expect_err "aligned on the energy" "the recorded alignment named"
run "$G" finetune --from "$M/embedding_model.onnx" --data "audio:$D" --align centre $TH
expect_rc 2 "--align centre"
expect_err "is not middle or energy" "the choices named"

# ---- waveform augmentation: the clips change every epoch, so nothing is cached ----------------
run "$G" finetune --from "$M/embedding_model.onnx" --data "audio:$D" --freeze 'trunk.*' \
    --augment=noise,speed,shift --clip-seconds 1 --epochs 2 --lr 0.01 --seed 1 --json $TH
expect_rc 0 "a frozen embedding with --augment=noise,speed,shift"
json "d['speech']['features_cached'] == False" "augmented clips: no feature cache"
run "$G" finetune --from "$M/embedding_model.onnx" --data "audio:$D" --augment=specaugment $TH
expect_rc 2 "--augment=specaugment on waveforms"
expect_err "specaugment masks log-mel features" "specaugment refused for waveforms, saying why"
finish
