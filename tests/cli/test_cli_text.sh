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
finish
