#!/usr/bin/env bash
# Sequence labelling on real sentences (docs/TEXT.md, "Tagging"): punctuation restored on the
# 3,000 UCI sentiment sentences (scripts/make-tags.py: lower-cased words without punctuation,
# each tagged with the mark that followed it), the zoo's taggers trained on the 2,400 training
# sentences and evaluated on the 600 test sentences, over 3 seeds, against the baseline of the
# most frequent tag per word. Prints a markdown table (mean ± sd over the seeds) and leaves one
# JSON per run in $OUT (default build/text-tags).
#
#   bash bench/text_tags.sh                      # ~25 minutes on 2 cores
#   SEEDS="0" MODELS="lstm-tagger gru-tagger+glove" EPOCHS=4 bash bench/text_tags.sh
# A model name with +glove starts from the GloVe vectors (--vectors).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
G="${GRAFT:-$root/build/graft}"
out="${OUT:-$root/build/text-tags}"
seeds="${SEEDS:-0 1 2}"
epochs="${EPOCHS:-8}"
models="${MODELS:-lstm-tagger lstm-tagger+glove transformer-tagger}"
threads="${THREADS:-2}"
data="${GRAFT_TEXT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft/text}"
V="$data/glove/glove.6B.100d.50000.txt"
[ -x "$G" ] || { echo "text_tags.sh: build graft first ($G)" >&2; exit 1; }
[ -f "$data/sentiment/amazon.jsonl" ] && [ -f "$V" ] ||
    { echo "text_tags.sh: run scripts/fetch-text.sh first" >&2; exit 1; }
mkdir -p "$out"
python3 "$root/scripts/make-tags.py" "$data/sentiment" "$data/tags" >"$out/make-tags.txt"
TR="$data/tags/punct-train.jsonl" TE="$data/tags/punct-test.jsonl"

# run NAME ARGS...: train on the training file, then eval on the test file; "acc f1" on stdout
run() {
    local name="$1"; shift
    "$G" train --data "text:$TR" --split 1,0,0 --epochs "$epochs" --threads "$threads" \
        --out "$out/$name.safetensors" "$@" >"$out/$name.train.txt" 2>&1 || {
        echo "text_tags.sh: $name failed:" >&2; tail -3 "$out/$name.train.txt" >&2; exit 1; }
    "$G" eval --weights "$out/$name.safetensors" --data "text:$TE" --split 0,0,1 \
        --threads "$threads" --json >"$out/$name.json" 2>"$out/$name.err" || {
        echo "text_tags.sh: eval of $name failed:" >&2; tail -3 "$out/$name.err" >&2; exit 1; }
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["accuracy"], d["macro_f1"])' \
        "$out/$name.json"
}
stats() { python3 -c 'import statistics as s,sys; v=[float(x) for x in sys.argv[1:]]; print("%.3f ± %.3f" % (s.mean(v), s.stdev(v) if len(v) > 1 else 0.0))' "$@"; }

echo "| model | test accuracy (tokens) | macro F1 (5 tags) | seconds to train |"
echo "|---|---|---|---|"
python3 "$root/scripts/make-tags.py" --baseline "$TR" "$TE" | python3 -c '
import re, sys
for line in sys.stdin:
    m = re.match(r"(.*): accuracy ([0-9.]+), macro F1 ([0-9.]+)", line)
    if m: print("| %s | %s | %s | |" % (m.group(1).split(" (")[0], m.group(2), m.group(3)))'
for cfg in $models; do
    model="${cfg%+glove}"; extra=""; label="$model"
    [ "$cfg" != "$model" ] && extra="--vectors $V" && label="$model, GloVe"
    accs=(); f1s=(); secs=()
    for s in $seeds; do
        name="$(echo "$label" | tr ', ' '__')-s$s"
        t0=$(date +%s)
        read -r a f < <(run "$name" --model "$model" --seed "$s" $extra)
        secs+=($(( $(date +%s) - t0 )))
        accs+=("$a"); f1s+=("$f")
    done
    echo "| $label | $(stats "${accs[@]}") | $(stats "${f1s[@]}") | $(stats "${secs[@]}" | cut -d. -f1) |"
done
