#!/usr/bin/env bash
# Transfer on text, the protocols of docs/TEXT.md, run with the graft binary over 3 seeds:
#   1. pretrained GloVe vectors against a random embedding, at 100 / 300 / all training
#      sentences of the UCI sentiment sentences (amazon, imdb and yelp together);
#   2. domain transfer: an lstm trained on Amazon, fine-tuned on 50 / 200 Yelp sentences,
#      against Yelp alone and the Amazon model as it is;
#   3. spam against ham (SpamAssassin) with the lstm and the transformer.
# Needs scripts/fetch-text.sh's data. Prints markdown tables (mean ± sd over the seeds) and
# leaves one JSON per run in $OUT (default build/text-transfer).
#
#   bash bench/text_transfer.sh            # all three (~15 minutes on 2 cores)
#   PROTOCOLS="1 2" SEEDS="0" bash bench/text_transfer.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
G="${GRAFT:-$root/build/graft}"
out="${OUT:-$root/build/text-transfer}"
seeds="${SEEDS:-0 1 2}"
protocols="${PROTOCOLS:-1 2 3}"
threads="${THREADS:-2}"
data="${GRAFT_TEXT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft/text}"
S="$data/sentiment"
V="$data/glove/glove.6B.100d.50000.txt"
[ -x "$G" ] || { echo "text_transfer.sh: build graft first ($G)" >&2; exit 1; }
[ -f "$S/all.jsonl" ] && [ -f "$V" ] || { echo "text_transfer.sh: run scripts/fetch-text.sh first" >&2; exit 1; }
mkdir -p "$out"

# acc NAME ARGS...: one graft run with --json; its test accuracy on stdout, the JSON kept
acc() {
    local name="$1"; shift
    "$G" "$@" --threads "$threads" --json >"$out/$name.json" 2>"$out/$name.err" || {
        echo "text_transfer.sh: $name failed:" >&2; tail -3 "$out/$name.err" >&2; exit 1; }
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("eval", d).get("accuracy"))' "$out/$name.json"
}
# stats V...: "mean ± sd" of the values
stats() { python3 -c 'import statistics as s,sys; v=[float(x) for x in sys.argv[1:]]; print("%.3f ± %.3f" % (s.mean(v), s.stdev(v) if len(v) > 1 else 0.0))' "$@"; }

if [[ " $protocols " == *" 1 "* ]]; then
    echo "### 1. GloVe against a random embedding (lstm, sentiment sentences, test part 600)"
    echo
    echo "| training sentences | lstm, random embedding | lstm, GloVe fine-tuned | lstm, GloVe frozen | embedding-bag, random | embedding-bag, GloVe frozen, all its words |"
    echo "|---|---|---|---|---|---|"
    for n in 100 300 all; do
        pc=(); [ "$n" != all ] && pc=(--per-class $((n / 2)))
        r=(); g=(); f=(); br=(); bg=()
        for s in $seeds; do
            base=(train --model lstm --data "text:$S/all.jsonl" --lowercase --epochs 8 --seed "$s" "${pc[@]}")
            r+=("$(acc "p1-$n-random-$s" "${base[@]}")")
            g+=("$(acc "p1-$n-glove-$s" "${base[@]}" --vectors "$V")")
            f+=("$(acc "p1-$n-frozen-$s" "${base[@]}" --vectors "$V" --freeze-vectors)")
            # the average of the words' vectors and a linear layer; --vectors-vocab gives the
            # words of the test sentences never seen in training their GloVe vector too
            bag=(train --model embedding-bag --data "text:$S/all.jsonl" --lowercase --epochs 40 --lr 0.01 --seed "$s" "${pc[@]}")
            br+=("$(acc "p1-$n-bag-random-$s" "${bag[@]}")")
            bg+=("$(acc "p1-$n-bag-glove-$s" "${bag[@]}" --vectors "$V" --vectors-vocab --freeze-vectors)")
        done
        echo "| $n | $(stats "${r[@]}") | $(stats "${g[@]}") | $(stats "${f[@]}") | $(stats "${br[@]}") | $(stats "${bg[@]}") |"
    done
    echo
fi

if [[ " $protocols " == *" 2 "* ]]; then
    echo "### 2. Amazon to Yelp (lstm with GloVe; Yelp test part 200)"
    echo
    echo "| Yelp sentences | Yelp alone | Amazon model as it is | Amazon, fine-tuned on Yelp |"
    echo "|---|---|---|---|"
    for s in $seeds; do
        acc "p2-amazon-$s" train --model lstm --data "text:$S/amazon.jsonl" --lowercase --epochs 8 \
            --vectors "$V" --seed "$s" --out "$out/amazon-$s.safetensors" >/dev/null
    done
    for n in 50 200; do
        a=(); z=(); t=()
        for s in $seeds; do
            a+=("$(acc "p2-$n-alone-$s" train --model lstm --data "text:$S/yelp.jsonl" --lowercase \
                --epochs 15 --vectors "$V" --per-class $((n / 2)) --seed "$s")")
            z+=("$(acc "p2-$n-zero-$s" eval --weights "$out/amazon-$s.safetensors" \
                --data "text:$S/yelp.jsonl" --seed "$s")")
            t+=("$(acc "p2-$n-ft-$s" finetune --from "$out/amazon-$s.safetensors" \
                --data "text:$S/yelp.jsonl" --per-class $((n / 2)) --epochs 15 --seed "$s")")
        done
        echo "| $n | $(stats "${a[@]}") | $(stats "${z[@]}") | $(stats "${t[@]}") |"
    done
    echo
fi

if [[ " $protocols " == *" 3 "* ]]; then
    echo "### 3. Spam against ham (SpamAssassin, 6,046 messages, test part 20%, first 128 tokens)"
    echo
    echo "| model | test accuracy | macro F1 |"
    echo "|---|---|---|"
    for m in lstm transformer; do
        a=(); f1=()
        for s in $seeds; do
            a+=("$(acc "p3-$m-$s" train --model "$m" --data "text:$data/spam-assassin.jsonl" \
                --lowercase --min-count 2 --max-vocab 20000 --max-len 128 --epochs 3 --seed "$s")")
            f1+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["eval"]["macro_f1"])' "$out/p3-$m-$s.json")")
        done
        echo "| $m | $(stats "${a[@]}") | $(stats "${f1[@]}") |"
    done
    echo
fi
