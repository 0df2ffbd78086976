#!/usr/bin/env bash
# Keyword spotting on the command line: three spoken words and a _silence_ class synthesised
# with espeak-ng (voices split between training and the test recording), a small kws model
# trained with waveform augmentation, graft.audio recorded, predict on single clips, and
# predict --stream over a long recording of the words at known times (scripts/
# make-speech-stream.sh writes the truth): the right words in the right order at the right
# times, nothing else. Skipped (77) without espeak-ng and sox or in a graft without audio.
# Usage: test_cli_kws.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"

if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null; then
    echo "test_cli_kws: espeak-ng and sox are needed; skipped"
    exit 77
fi
if "$G" --version | grep -q "^audio: none"; then
    echo "test_cli_kws: this graft reads no audio; skipped"
    exit 77
fi

# ---- the words: training voices, test voices, silence and noise -------------------------------
words=(one two three)
train_voices=(en-gb+m1 en-gb+f1 en-us+m2 en-us+f2 en-gb-scotland+m3 en-gb-scotland+f3
              en-gb-x-rp+m4 en-gb-x-rp+f4 en-029+m5 en-029+f5 en-us-nyc+m7 en-us-nyc+klatt
              en-gb-x-gbclan+m1 en-gb-x-gbcwmd+f2 en-gb+klatt en-us+m3)
test_voices=(en-gb+f3 en-us+m4 en-gb-x-rp+f2)
D="$T/words"
for w in "${words[@]}"; do
    mkdir -p "$D/train/$w" "$D/test/$w"
    for v in "${train_voices[@]}"; do
        for s in 130 170; do
            espeak-ng -v "$v" -s $s --stdout "$w" | sox -R -D -V1 -t wav - -r 16000 -c 1 -b 16 \
                "$D/train/$w/$v-$s.wav"
        done
    done
    for v in "${test_voices[@]}"; do
        espeak-ng -v "$v" -s 150 --stdout "$w" | sox -R -D -V1 -t wav - -r 16000 -c 1 -b 16 \
            "$D/test/$w/$v.wav"
    done
done
mkdir -p "$D/train/_silence_" "$D/test/_silence_"
kinds=(silence whitenoise pinknoise brownnoise)
for k in $(seq 0 39); do
    part=train
    [ "$k" -ge 32 ] && part=test
    kind=${kinds[$((k % 4))]}
    vol=$(awk -v k="$k" 'BEGIN { printf "%.4f", 0.002 * (1 + (k * 7) % 25) }')
    if [ "$kind" = silence ]; then
        sox -R -D -V1 -n -r 16000 -c 1 -b 16 "$D/$part/_silence_/$k.wav" trim 0 1
    else
        sox -R -D -V1 -n -r 16000 -c 1 -b 16 "$D/$part/_silence_/$k.wav" synth 1 "$kind" vol "$vol"
    fi
done

# ---- training records the front end ----------------------------------------------------------
run "$G" train --data "audio:$D" --model kws --normalize standard --augment=shift,noise \
    --epochs 8 --seed 1 --out "$T/kws.safetensors" --json --threads 2
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
    --voices "${test_voices[*]}" --seed 3 >/dev/null
run "$G" predict --weights "$T/kws.safetensors" --stream "$T/rec/stream-0.wav" --json --threads 2
expect_rc 0 "predict --stream over the recording"
python3 - "$T/out" "$T/rec/truth.csv" <<'PY' && ok || bad "stream detections do not match the truth"
import csv, json, sys
det = json.load(open(sys.argv[1]))["recordings"][0]["detections"]
truth = [r for r in csv.DictReader(open(sys.argv[2]))]
got = [(d["class"], (d["start"] + d["end"]) / 2) for d in det]
want = [(r["word"], (float(r["start"]) + float(r["end"])) / 2) for r in truth]
print("got ", [(w, round(t, 2)) for w, t in got], file=sys.stderr)
print("want", [(w, round(t, 2)) for w, t in want], file=sys.stderr)
ok = [w for w, _ in got] == [w for w, _ in want] and all(abs(a - b) < 0.35 for (_, a), (_, b) in zip(got, want))
sys.exit(0 if ok else 1)
PY
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
