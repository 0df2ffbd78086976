#!/usr/bin/env bash
# Transfer on speech, the table of docs/SPEECH.md, run with the graft binary over 3 seeds:
#   1. openWakeWord's speech embedding (melspectrogram.onnx + embedding_model.onnx) frozen, a
#      new head trained on the synthetic words (the embeddings computed once and cached);
#   2. graft's own log-mel features and the zoo's kws CNN, from scratch;
#   3. the embedding's last block (conv2d_15..conv2d_19) fine-tuned with the head, starting
#      from row 1's model (fastai's two phases: the head first, then the block and the head;
#      3 epochs on the letters, 1 on the digits: the whole chain runs at every step).
# Columns: held-out espeak-ng voices and flite (spoken digits: make-speech.sh DIR, trained on
# its 1,540 clips of 77 voices), and KLettres' 52 real recordings of the English letter names
# (trained on 260 synthetic clips: make-speech.sh DIR --letters --voices 12 --renditions 1).
# Makes the data under $DATA (default build/speech-data) when it is not there (espeak-ng,
# flite, sox; Debian's klettres-data for the last column). Needs scripts/fetch-openwakeword.sh.
# The seeds run side by side (one process each, $THREADS threads). Prints a markdown table
# (mean ± sd over the seeds) and leaves one JSON per run in $OUT (default build/speech-transfer).
#
#   bash bench/speech_transfer.sh
#   ROWS="1 2" SEEDS="0" SETS=letters bash bench/speech_transfer.sh   (rows 1 and 3 of a seed
#   need row 1 first; SETS: letters, digits or both)
#   ALIGN=middle ROWS=1 bash bench/speech_transfer.sh   (rows 1 and 2 with --align ALIGN; by
#   default each command's own: energy for the speech embedding, middle for kws)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
G="${GRAFT:-$root/build/graft}"
out="${OUT:-$root/build/speech-transfer}"
data="${DATA:-$root/build/speech-data}"
seeds="${SEEDS:-0 1 2}"
rows="${ROWS:-1 2 3}"
sets="${SETS:-letters digits}"
threads="${THREADS:-1}"
clip="${CLIP:-1}"
align=()
[ -n "${ALIGN:-}" ] && align=(--align "$ALIGN")
models="${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}/openwakeword"
E="$models/embedding_model.onnx"
[ -x "$G" ] || { echo "speech_transfer.sh: build graft first ($G)" >&2; exit 1; }
[ -f "$E" ] || { echo "speech_transfer.sh: run scripts/fetch-openwakeword.sh first" >&2; exit 1; }
[ -d "$data/digits/train" ] || bash "$root/scripts/make-speech.sh" "$data/digits"
[ -d "$data/letters/train" ] || bash "$root/scripts/make-speech.sh" "$data/letters" --letters --voices 12 --renditions 1
mkdir -p "$out"

# acc NAME ARGS...: one graft run with --json; its accuracy into $out/NAME.acc
acc() {
    local name="$1"; shift
    "$G" "$@" --threads "$threads" --json >"$out/$name.json" 2>"$out/$name.err" || {
        echo "speech_transfer.sh: $name failed:" >&2; tail -3 "$out/$name.err" >&2; return 1; }
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("eval", d).get("accuracy"))' \
        "$out/$name.json" >"$out/$name.acc"
}
# ev NAME WEIGHTS DIR: the accuracy of trained weights on every clip of DIR
ev() { acc "$1" eval --weights "$2" --data "audio:$3" --split 0,0,1; }
# stats NAME...: "mean ± sd" of the accuracies in $out/NAME.acc
stats() {
    local v=() n
    for n in "$@"; do [ -f "$out/$n.acc" ] && v+=("$(cat "$out/$n.acc")"); done
    [ ${#v[@]} -gt 0 ] || { echo "-"; return; }
    python3 -c 'import statistics as s,sys; v=[float(x) for x in sys.argv[1:]]; print("%.3f ± %.3f" % (s.mean(v), s.stdev(v) if len(v) > 1 else 0.0))' "${v[@]}"
}

# train ROW SEED SET: trains row ROW on $data/SET into $out/rROW-SET-SEED.safetensors
train() {
    local row="$1" s="$2" set="$3" a
    local w="$out/r$row-$set-$s.safetensors"
    local common=(--data "audio:$data/$set" --clip-seconds "$clip" --seed "$s" "${align[@]}")
    case "$row" in
        1) a=(finetune --from "$E" --freeze "trunk.*" --pool max --epochs 100 --lr 0.003) ;;
        2) a=(train --model kws --normalize standard --epochs 8) ;;
        3) a=(finetune --from "$out/r1-$set-$s.safetensors" --freeze "trunk.*"
              --unfreeze "trunk.model/conv2d_1[5-9]/*" --epochs "$([ "$set" = digits ] && echo 1 || echo 3)"
              --batch 16 --lr 0.0005)
           common=(--data "audio:$data/$set" --seed "$s") ;; # the clip is the bundle's
    esac
    acc "r$row-$set-$s" "${a[@]}" "${common[@]}" --out "$w"
}

# one ROW SEED: the row's three columns for one seed
one() {
    local row="$1" s="$2"
    if [[ " $sets " == *" letters "* ]]; then
        train "$row" "$s" letters
        if [ -d "$data/letters-klettres" ]; then
            ev "r$row-klettres-$s" "$out/r$row-letters-$s.safetensors" "$data/letters-klettres"
        fi
    fi
    if [[ " $sets " == *" digits "* ]]; then
        train "$row" "$s" digits && ev "r$row-flite-$s" "$out/r$row-digits-$s.safetensors" "$data/digits-flite"
    fi
}

names=([1]="frozen embedding + new head" [2]="log-mel + kws, from scratch" [3]="embedding, last block fine-tuned")
for row in $rows; do
    for s in $seeds; do one "$row" "$s" & done
    wait
done
echo "| model | held-out espeak-ng voices (digits) | flite (digits) | KLettres, real (letters) | held-out espeak-ng voices (letters) |"
echo "|---|---|---|---|---|"
for row in $rows; do
    d=(); f=(); k=(); l=()
    for s in $seeds; do d+=("r$row-digits-$s"); f+=("r$row-flite-$s"); k+=("r$row-klettres-$s"); l+=("r$row-letters-$s"); done
    echo "| ${names[$row]} | $(stats "${d[@]}") | $(stats "${f[@]}") | $(stats "${k[@]}") | $(stats "${l[@]}") |"
done
