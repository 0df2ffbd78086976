#!/usr/bin/env bash
# Text data on the command line: train on text:FILE (the fixtures of tests/fixtures/text), the
# weights record the vocabulary (graft.text); eval on another file tokenises with it, not with
# a vocabulary of its own; predict reads .txt (one text per line) and .jsonl texts; errors name
# the file and line. Usage: test_cli_text.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"
TX="${GRAFT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/fixtures/text"

meta() {
    python3 - "$1" "$2" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n]).get("__metadata__", {}).get(sys.argv[2], ""))
PY
}

run "$G" train --data "text:$TX/reviews.jsonl" --model mlp --epochs 2 --out "$T/t.safetensors" --json $TH
expect_rc 0 "train on text:reviews.jsonl"
json 'd["data"]["classes"] == ["neg", "pos"]' "classes from the labels, sorted"
meta "$T/t.safetensors" graft.text >"$T/vocab.json"
python3 -c "
import json, sys
v = json.load(open(sys.argv[1]))
sys.exit(0 if v['format'] == 'graft.text' and v['tokens'][:2] == ['<pad>', '<unk>'] and v['tokenizer'] == 'word' else 1)" \
    "$T/vocab.json" && ok || bad "graft.text: $(head -c 200 "$T/vocab.json")"

# eval on a file whose own vocabulary would differ: the weights' is used
printf '{"text":"great battery great","label":"pos"}\n{"text":"zzz unseen words","label":"neg"}\n' >"$T/e.jsonl"
run "$G" eval --weights "$T/t.safetensors" --data "text:$T/e.jsonl" --split 0,0,1 --json $TH
expect_rc 0 "eval on another text file"
json 'd["examples"] == 2' "both texts evaluated"

printf 'great battery\n\nawful screen, broke\n' >"$T/new.txt"
run "$G" predict --weights "$T/t.safetensors" --input "$T/new.txt"
expect_rc 0 "predict a .txt file"
expect_out "new.txt line 3" "texts named by their line"

printf 'ok\nbad \xe9 byte\n' >"$T/bad.txt"
run "$G" predict --weights "$T/t.safetensors" --input "$T/bad.txt"
expect_rc 1 "predict refuses invalid UTF-8"
expect_err "bad.txt: line 2: invalid UTF-8 at byte 7" "invalid UTF-8 named by line and byte"

run "$G" train --data "text:$TX/reviews.json" --label-column class --epochs 1 $TH
expect_rc 1 "an entry without a label"
expect_err "reviews.json: line 22: an entry without a label" "the unlabelled entry named by its line"

# the zoo's text classifiers train on text: data and predict texts
for m in lstm gru transformer; do
    run "$G" train --data "text:$TX/reviews.jsonl" --model $m --epochs 2 --out "$T/$m.safetensors" $TH
    expect_rc 0 "train --model $m on text"
    run "$G" predict --weights "$T/$m.safetensors" --input "$T/new.txt"
    expect_rc 0 "predict with the $m text model"
    expect_out "new.txt line 3" "$m: texts named by their line"
done

# pretrained word vectors into the embedding, by vocabulary; frozen on request
python3 - "$T/v100.txt" <<'PY'
import sys
words = ["great", "battery", "phone", "broke", "terrible", "screen"]
with open(sys.argv[1], "w") as f:
    for k, w in enumerate(words):
        f.write(w + " " + " ".join("%.3f" % ((k + 1) * 0.01 * ((j % 7) - 3)) for j in range(100)) + "\n")
PY
run "$G" train --data "text:$TX/reviews.jsonl" --model lstm --lowercase --epochs 2 --vectors "$T/v100.txt" \
    --freeze-vectors --out "$T/vec.safetensors" $TH
expect_rc 0 "train --vectors --freeze-vectors"
expect_err "vocabulary words have a vector" "the coverage is reported"
expect_err "the embedding is frozen" "--freeze-vectors is said"
python3 - "$T/vec.safetensors" "$T/v100.txt" <<'PY' && ok || bad "the embedding rows are not the word vectors after training with --freeze-vectors"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
tokens = json.loads(h["__metadata__"]["graft.text"])["tokens"]
e = h["embedding.weight"]
lo, hi = e["data_offsets"]
dim = e["shape"][1]
w = struct.unpack("<%df" % ((hi - lo) // 4), b[8 + n + lo:8 + n + hi])
vec = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(sys.argv[2])}
checked = 0
for word, v in vec.items():
    if word in tokens:
        row = w[tokens.index(word) * dim:(tokens.index(word) + 1) * dim]
        assert all(abs(a - b) < 1e-6 for a, b in zip(row, v)), word
        checked += 1
sys.exit(0 if checked >= 3 else 1)
PY
# --vectors-vocab: every word of the vectors gets an id (a word never in the training text
# keeps its vector), here in the zoo's embedding-bag; eval and predict use the stored vocabulary
python3 - "$T/v100.txt" "$T/vx.txt" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
with open(sys.argv[2], "w") as f:
    f.write("\n".join(lines + ["zyzzyva " + " ".join(["0.5"] * 100)]) + "\n")
PY
run "$G" train --data "text:$TX/reviews.jsonl" --model embedding-bag --lowercase --epochs 2 \
    --vectors "$T/vx.txt" --vectors-vocab --freeze-vectors --out "$T/bag.safetensors" $TH
expect_rc 0 "train embedding-bag --vectors --vectors-vocab"
python3 - "$T/bag.safetensors" <<'PY' && ok || bad "--vectors-vocab: the vectors' words are not in the stored vocabulary with their vectors"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
tokens = json.loads(h["__metadata__"]["graft.text"])["tokens"]
e = h["embedding.weight"]
lo, hi = e["data_offsets"]
dim = e["shape"][1]
w = struct.unpack("<%df" % ((hi - lo) // 4), b[8 + n + lo:8 + n + hi])
i = tokens.index("zyzzyva")
sys.exit(0 if e["shape"][0] == len(tokens) and all(abs(x - 0.5) < 1e-6 for x in w[i * dim:(i + 1) * dim]) else 1)
PY
run "$G" eval --weights "$T/bag.safetensors" --data "text:$TX/reviews.jsonl" $TH
expect_rc 0 "eval of the embedding-bag with its stored vocabulary"
run "$G" train --data "text:$TX/reviews.jsonl" --model lstm --epochs 1 --vectors-vocab $TH
expect_rc 2 "--vectors-vocab without --vectors"
run "$G" train --data "text:$TX/reviews.jsonl" --model transformer --epochs 1 --vectors "$T/v100.txt" $TH
expect_rc 1 "vectors of another width than the embedding"
expect_err "--vectors" "the width mismatch names the option"
run "$G" train --data "text:$TX/reviews.jsonl" --model mlp --epochs 1 --vectors "$T/v100.txt" $TH
expect_rc 2 "--vectors on a model without an embedding"
run "$G" train --data "text:$TX/reviews.jsonl" --model lstm --epochs 1 --freeze-vectors $TH
expect_rc 2 "--freeze-vectors without --vectors"
run "$G" train --data "text:$TX/reviews.jsonl" --model lstm --epochs 1 --tokenizer char --max-len 40 \
    --min-count 2 --max-vocab 30 --json $TH
expect_rc 0 "the tokeniser and vocabulary options"
json 'd["data"]["shape"] == [40]' "--max-len sets the sample length"
# fine-tuning a text model on other text keeps its vocabulary (its embedding's rows)
tac "$TX/reviews.jsonl" >"$T/other.jsonl"
run "$G" finetune --from "$T/lstm.safetensors" --data "text:$T/other.jsonl" --epochs 1 \
    --out "$T/ft.safetensors" $TH
expect_rc 0 "finetune a text model on another file"
meta "$T/lstm.safetensors" graft.text >"$T/v1.json"
meta "$T/ft.safetensors" graft.text >"$T/v2.json"
if cmp -s "$T/v1.json" "$T/v2.json"; then ok; else bad "finetune changed the vocabulary"; fi
run "$G" train --data "csv:$TX/reviews.csv" --tokenizer char --epochs 1 $TH
expect_rc 2 "--tokenizer on csv: data"
finish
