#!/usr/bin/env bash
# Keyword spotting on the command line: three spoken words and a _silence_ class synthesised
# with espeak-ng by scripts/make-speech.sh (voices split between training and test), a small kws model
# trained with waveform augmentation, graft.audio recorded, predict on single clips, and
# predict --stream over a long recording of the words at known times (scripts/
# make-speech-stream.sh writes the truth): the right words in the right order at the right
# times, nothing else. Skipped (77) without espeak-ng, flite and sox or in a graft without audio.
# Usage: test_cli_kws.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"

need_speech

# ---- the words: 24 voices (every fifth for test), renditions at two speeds, _silence_ ----------
D="$T/words"
bash "$SRC/scripts/make-speech.sh" "$D" --words "one two three" --voices 24 --background 40 \
    >"$T/make.log" 2>&1 || { bad "make-speech.sh failed: $(tail -2 "$T/make.log")"; finish; exit; }
test_voices="$(ls "$D/test/one" | sed -E 's/-([a-z0-9]+)-[0-9]+\.wav$/+\1/' | sort -u | tr '\n' ' ')"

# ---- training records the front end ----------------------------------------------------------
run "$G" train --data "audio:$D" --model kws --normalize standard --augment=shift,noise \
    --epochs 10 --batch 16 --seed 1 --out "$T/kws.safetensors" --json --threads 2
expect_rc 0 "train kws on the spoken words"
json 'd["data"]["classes"] == ["_silence_", "one", "three", "two"]' "the words and _silence_"
python3 - "$T/kws.safetensors" <<'PY' && ok || bad "graft.audio is not the front end trained on"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
a = json.loads(json.loads(b[8:8 + n])["__metadata__"]["graft.audio"])
sys.exit(0 if a["sample_rate"] == 16000 and a["clip_seconds"] == 1 and a["n_mels"] == 40
         and a["hop_length"] == 160 and a["n_fft"] == 400 and a["f_max"] == 8000 else 1)
PY

# ---- single clips: predict agrees with eval ---------------------------------------------------
run "$G" eval --weights "$T/kws.safetensors" --data "audio:$D/test" --split 0,0,1 --json --threads 2
expect_rc 0 "eval on the test voices"
acc_eval="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accuracy"])' "$T/out")"
run "$G" predict --weights "$T/kws.safetensors" --json --threads 2 "$D/test"
expect_rc 0 "predict the test clips"
acc_pred="$(python3 -c '
import json, os, sys
p = json.load(open(sys.argv[1]))["predictions"]
print(sum(os.path.basename(os.path.dirname(e["input"])) == e["top"][0]["class"] for e in p) / len(p))' "$T/out")"
python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1]) - float(sys.argv[2])) < 1e-6 else 1)' \
    "$acc_eval" "$acc_pred" && ok || bad "predict's accuracy $acc_pred is not eval's $acc_eval"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 0.75 else 1)' "$acc_pred" && ok ||
    bad "accuracy on the test voices $acc_pred < 0.75"
clip="$(ls "$D"/test/two/*.wav | head -1)"
run "$G" predict --weights "$T/kws.safetensors" "$clip" --top-k 2
expect_rc 0 "predict one clip"
expect_out "  2. " "the top 2 classes"
# a stereo 44.1 kHz copy reads the same way (mixed down, resampled)
sox -V1 "$clip" -r 44100 -c 2 "$T/stereo.wav"
run "$G" predict --weights "$T/kws.safetensors" "$T/stereo.wav" --json
expect_rc 0 "predict a stereo 44.1 kHz clip"

# ---- the stream: a recording of test voices at known times ------------------------------------
bash "$SRC/scripts/make-speech-stream.sh" "$T/rec" --recordings 1 --count 6 --words "one two three" \
    --voices "$test_voices" --seed 3 >/dev/null
run "$G" predict --weights "$T/kws.safetensors" --stream "$T/rec/stream-0.wav" --json --threads 2
expect_rc 0 "predict --stream over the recording"
cp "$T/out" "$T/det.json"
# every word, in order, its detection centred within 0.35 s of the word's centre, nothing else
if python3 "$SRC/scripts/score-kws.py" "$T/rec/truth.csv" "$T/det.json" --tolerance 0.35 \
    --exact >"$T/score" 2>&1; then ok; else
    bad "stream detections do not match the truth: $(cat "$T/score")"
    python3 -c 'import json, sys
for d in json.load(open(sys.argv[1]))["recordings"][0]["detections"]:
    print("  got  %-6s %6.2f - %6.2f  %.3f" % (d["class"], d["start"], d["end"], d["probability"]))' \
        "$T/det.json" >&2
    sed 's/^/  want /' "$T/rec/truth.csv" >&2
fi
run "$G" predict --weights "$T/kws.safetensors" --stream "$T/rec/stream-0.wav" --threshold 1
expect_rc 0 "a threshold of 1"
expect_out "0 detections" "nothing is that sure"
run "$G" predict --weights "$T/kws.safetensors" --stream "$T/rec/stream-0.wav" --background nothing
expect_rc 2 "an unknown --background class"
expect_err "no class of that name" "the class named"

# ---- a model without a front end refuses audio -------------------------------------------------
printf 'a,b,label\n1,2,x\n2,1,y\n3,3,x\n1,1,y\n' >"$T/t.csv"
run "$G" train --data "csv:$T/t.csv" --epochs 1 --out "$T/t.safetensors" $TH
run "$G" predict --weights "$T/t.safetensors" "$clip"
expect_rc 1 "a table's model on a clip"
expect_err "graft.audio" "the missing front end named"
run "$G" predict --weights "$T/t.safetensors" --stream "$clip"
expect_rc 2 "a table's model streaming"
expect_err "records no audio front end" "the missing front end named"
finish
