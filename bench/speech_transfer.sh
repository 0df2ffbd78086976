#!/usr/bin/env bash
# Transfer on speech, the table of docs/SPEECH.md, run with the graft binary over 3 seeds:
#   1. openWakeWord's speech embedding (melspectrogram.onnx + embedding_model.onnx) frozen, a
#      new head trained on the synthetic words (the embeddings computed once and cached);
#   2. graft's own log-mel features and the zoo's kws CNN, from scratch;
#   3. the embedding's last block (conv2d_15..conv2d_19) fine-tuned with the new head.
# Columns: held-out espeak-ng voices and flite (spoken digits: make-speech.sh DIR, trained on
# its 1,540 clips of 77 voices), and KLettres' 52 real recordings of the English letter names
# (trained on 260 synthetic clips: make-speech.sh DIR --letters --voices 12 --renditions 1).
# Makes the data under $DATA (default build/speech-data) when it is not there (espeak-ng,
# flite, sox; Debian's klettres-data for the last column). Needs scripts/fetch-openwakeword.sh.
# Prints a markdown table (mean ± sd over the seeds) and leaves one JSON per run in $OUT
# (default build/speech-transfer).
#
#   bash bench/speech_transfer.sh
#   ROWS="1 2" SEEDS="0" bash bench/speech_transfer.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
G="${GRAFT:-$root/build/graft}"
out="${OUT:-$root/build/speech-transfer}"
data="${DATA:-$root/build/speech-data}"
seeds="${SEEDS:-0 1 2}"
rows="${ROWS:-1 2 3}"
threads="${THREADS:-2}"
clip="${CLIP:-1}"
models="${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}/openwakeword"
E="$models/embedding_model.onnx"
[ -x "$G" ] || { echo "speech_transfer.sh: build graft first ($G)" >&2; exit 1; }
[ -f "$E" ] || { echo "speech_transfer.sh: run scripts/fetch-openwakeword.sh first" >&2; exit 1; }
[ -d "$data/digits/train" ] || bash "$root/scripts/make-speech.sh" "$data/digits"
[ -d "$data/letters/train" ] || bash "$root/scripts/make-speech.sh" "$data/letters" --letters --voices 12 --renditions 1
mkdir -p "$out"

# acc NAME ARGS...: one graft run with --json; its accuracy on stdout, the JSON kept
acc() {
    local name="$1"; shift
    "$G" "$@" --threads "$threads" --json >"$out/$name.json" 2>"$out/$name.err" || {
        echo "speech_transfer.sh: $name failed:" >&2; tail -3 "$out/$name.err" >&2; exit 1; }
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("eval", d).get("accuracy"))' "$out/$name.json"
}
# stats V...: "mean ± sd" of the values
stats() { python3 -c 'import statistics as s,sys; v=[float(x) for x in sys.argv[1:]]; print("%.3f ± %.3f" % (s.mean(v), s.stdev(v) if len(v) > 1 else 0.0))' "$@"; }
# ev NAME WEIGHTS DIR: the accuracy of trained weights on every clip of DIR
ev() { acc "$1" eval --weights "$2" --data "audio:$3" --split 0,0,1; }

# train_args ROW SEED DATASET: the command that trains row ROW
train_args() {
    local row="$1" s="$2" d="$3"
    case "$row" in
        1) echo finetune --from "$E" --freeze "trunk.*" --pool "${POOL:-mean}" --epochs 40 --lr 0.003 ;;
        2) echo train --model kws --normalize standard --epochs 8 ;;
        3) echo finetune --from "$E" --freeze "trunk.*" --unfreeze "trunk.model/conv2d_1[5-9]/*" \
                --pool "${POOL:-mean}" --epochs 6 --lr 0.001 --lr-trunk-factor 0.1 ;;
    esac
}

names=([1]="frozen embedding + new head" [2]="log-mel + kws, from scratch" [3]="embedding, last block fine-tuned")
echo "| model | held-out espeak-ng voices (digits) | flite (digits) | KLettres (letters, real) |"
echo "|---|---|---|---|"
for row in $rows; do
    e=(); f=(); k=()
    for s in $seeds; do
        read -r -a a <<<"$(train_args "$row" "$s" digits)"
        e+=("$(acc "r$row-digits-$s" "${a[@]}" --data "audio:$data/digits" --clip-seconds "$clip" --seed "$s" --out "$out/r$row-digits-$s.safetensors")")
        f+=("$(ev "r$row-flite-$s" "$out/r$row-digits-$s.safetensors" "$data/digits-flite")")
        read -r -a a <<<"$(train_args "$row" "$s" letters)"
        acc "r$row-letters-$s" "${a[@]}" --data "audio:$data/letters" --clip-seconds "$clip" --seed "$s" --out "$out/r$row-letters-$s.safetensors" >/dev/null
        if [ -d "$data/letters-klettres" ]; then
            k+=("$(ev "r$row-klettres-$s" "$out/r$row-letters-$s.safetensors" "$data/letters-klettres")")
        fi
    done
    echo "| ${names[$row]} | $(stats "${e[@]}") | $(stats "${f[@]}") | $([ ${#k[@]} -gt 0 ] && stats "${k[@]}" || echo "no klettres-data") |"
done
