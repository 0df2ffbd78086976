#!/usr/bin/env bash
# Sequence labelling on the command line: a tagger (lstm-tagger, transformer-tagger, a spec
# whose Linear applies at every step) trains on tagged text (one tag per token), eval counts
# loss and accuracy per token, a resumed run ends where the uninterrupted one does, finetune
# goes on from a tagger, the weights carry the tags (eval maps a file's tags onto them,
# predict prints token/TAG), and malformed tags are named by file and line.
# Usage: test_cli_tags.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"

# a small tagged corpus: determiners, nouns and verbs, half as tokens, half as text
python3 - "$T/tags.jsonl" <<'PY'
import json, random, sys
r = random.Random(1)
det, noun, verb = ["the", "a", "this"], ["cat", "dog", "bird", "car"], ["runs", "sees", "eats"]
with open(sys.argv[1], "w") as f:
    for i in range(120):
        toks, tags = [], []
        for _ in range(r.randint(1, 3)):
            toks += [r.choice(det), r.choice(noun), r.choice(verb)]
            tags += ["DET", "NOUN", "VERB"]
        rec = {"tokens": toks} if i % 2 else {"text": " ".join(toks)}
        rec["tags"] = tags
        f.write(json.dumps(rec) + "\n")
PY

run "$G" train --model lstm-tagger --data "text:$T/tags.jsonl" --val 0.2 --epochs 2 --seed 3 \
    --checkpoint-dir "$T/ck" --out "$T/a.safetensors" --json $TH
expect_rc 0 "train lstm-tagger on tagged text"
json 'd["data"]["classes"] == ["DET", "NOUN", "VERB"]' "the tags are the classes, sorted"
json 'd["data"]["shape"] == [9]' "samples of the longest text's tokens"
json '0 <= d["training"]["history"][-1]["val_acc"] <= 1 and d["eval"]["tokens"] > d["eval"]["examples"]' \
    "validation and test accuracy per token"

# resumed to 3 epochs, it ends bit for bit where an uninterrupted 3-epoch run does
run "$G" train --model lstm-tagger --data "text:$T/tags.jsonl" --val 0.2 --epochs 3 --seed 3 \
    --resume "$T/ck" --out "$T/b.safetensors" $TH
expect_rc 0 "resume the tagger"
run "$G" train --model lstm-tagger --data "text:$T/tags.jsonl" --val 0.2 --epochs 3 --seed 3 \
    --out "$T/c.safetensors" $TH
expect_rc 0 "train the tagger 3 epochs at once"
if cmp -s "$T/b.safetensors" "$T/c.safetensors"; then ok; else bad "resumed weights differ"; fi

# eval on another file: 3 texts of 3 + 2 + 3 tokens; loss and accuracy count the 8 tokens
printf '%s\n' '{"tokens": ["a", "cat", "runs"], "tags": ["DET", "NOUN", "VERB"]}' \
    '{"text": "the dog", "tags": ["DET", "NOUN"]}' \
    '{"text": "this bird sees", "tags": ["DET", "NOUN", "VERB"]}' >"$T/e.jsonl"
run "$G" eval --weights "$T/c.safetensors" --data "text:$T/e.jsonl" --split 0,0,1 --json $TH
expect_rc 0 "eval the tagger"
json 'd["examples"] == 3 and d["tokens"] == 8' "8 tokens of 3 texts"
json 'sum(c["support"] for c in d["per_class"]) == 8 and d["classes"] == ["DET", "NOUN", "VERB"]' \
    "the per-tag report counts tokens"
json 'd["accuracy"] > 0.99' "3 epochs learn the pattern"
run "$G" eval --weights "$T/c.safetensors" --data "text:$T/e.jsonl" --split 0,0,1 $TH
expect_out "tokens           8" "eval prints the token count"
run "$G" eval --weights "$T/c.safetensors" --data "text:$T/e.jsonl" --split 0,0,1 \
    --predictions "$T/p.csv" $TH
expect_rc 2 "--predictions is per example"

# a file with only some of the tags: they keep the model's numbering
printf '%s\n' '{"tokens": ["cat"], "tags": ["NOUN"]}' >"$T/n.jsonl"
run "$G" eval --weights "$T/c.safetensors" --data "text:$T/n.jsonl" --split 0,0,1 --json $TH
expect_rc 0 "eval a file with one of the tags"
json 'd["tokens"] == 1 and d["classes"] == ["DET", "NOUN", "VERB"]' "the model's tags"
printf '%s\n' '{"tokens": ["cat", "runs"], "tags": ["NOUN", "ADV"]}' >"$T/u.jsonl"
run "$G" eval --weights "$T/c.safetensors" --data "text:$T/u.jsonl" --split 0,0,1 $TH
expect_rc 1 "a tag the model lacks"
expect_err "u.jsonl: line 1: tag 2 \"ADV\" is not among the model's 3 tags" "named by line"

printf 'the cat runs\n\na dog eats this bird\n' >"$T/new.txt"
run "$G" predict --weights "$T/c.safetensors" --input "$T/new.txt"
expect_rc 0 "predict with the tagger"
expect_out "new.txt line 3" "texts named by their line"
expect_out "the/DET cat/NOUN runs/VERB" "a tag per token"
run "$G" predict --weights "$T/c.safetensors" --input "$T/new.txt" --out "$T/tags.csv" $TH
expect_rc 0 "predict --out with the tagger"
if grep -q '^.*new.txt,3,5,bird,NOUN,' "$T/tags.csv"; then ok; else bad "CSV row per token"; fi

# finetune goes on from a tagger with its vocabulary and tags
run "$G" finetune --from "$T/c.safetensors" --data "text:$T/tags.jsonl" --epochs 1 \
    --out "$T/ft.safetensors" $TH
expect_rc 0 "finetune the tagger"
run "$G" eval --weights "$T/ft.safetensors" --data "text:$T/e.jsonl" --split 0,0,1 --json $TH
expect_rc 0 "eval the finetuned tagger"
json 'd["tokens"] == 8 and d["classes"] == ["DET", "NOUN", "VERB"]' "the finetuned tagger's tags"

# the other taggers and a spec with one output per step
run "$G" train --model transformer-tagger --data "text:$T/tags.jsonl" --epochs 1 $TH
expect_rc 0 "train transformer-tagger"
cat >"$T/tagger.json" <<'JSON'
{"input": "data", "type": "sequential", "children": [
  {"type": "embedding", "embedding_dim": 16},
  {"type": "lstm", "input_size": 16, "hidden_size": 16},
  {"type": "linear", "out": "classes"}]}
JSON
run "$G" train --model "$T/tagger.json" --data "text:$T/tags.jsonl" --epochs 1 \
    --out "$T/s.safetensors" $TH
expect_rc 0 "train a spec tagger (a Linear at every step)"
run "$G" predict --weights "$T/s.safetensors" --input "$T/new.txt"
expect_rc 0 "predict with the spec tagger"
expect_out "the/" "the spec tagger tags each token"

# the textclassifier block with pool "none": a transformer tagger from a spec, saved and used
printf '%s\n' '{"input": "data", "type": "textclassifier", "d_model": 16, "nhead": 2,' \
    '"num_layers": 1, "dim_feedforward": 32, "pool": "none", "out": "classes"}' >"$T/block.json"
run "$G" train --model "$T/block.json" --data "text:$T/tags.jsonl" --epochs 1 \
    --out "$T/k.safetensors" $TH
expect_rc 0 "train a textclassifier block with pool none"
run "$G" predict --weights "$T/k.safetensors" --input "$T/new.txt" --json
expect_rc 0 "predict with the block tagger"
json 'len(d["predictions"]) == 2 and len(d["predictions"][1]["tokens"]) == 5' "a tag per token, as JSON"

# malformed tags, named by file and line
printf '%s\n' '{"tokens": ["a"], "tags": ["DET"]}' '{"tokens": ["a", "b"], "tags": "DET"}' >"$T/b1.jsonl"
run "$G" train --model lstm-tagger --data "text:$T/b1.jsonl" --epochs 1 $TH
expect_rc 1 "tags that are not an array"
expect_err "b1.jsonl: line 2: the tags are not an array of strings" "named by line"
printf '%s\n' '{"text": "a b", "tags": ["X", "Y"]}' '{"text": "don'"'"'t stop", "tags": ["X", "Y"]}' >"$T/b2.jsonl"
run "$G" train --model lstm-tagger --data "text:$T/b2.jsonl" --epochs 1 $TH
expect_rc 1 "tags that do not line up with the tokens"
expect_err "b2.jsonl: line 2: 2 tags but the word tokeniser finds 4 tokens" "the count, named by line"
printf '%s\n' '{"tokens": ["a", "b", "c"], "tags": ["X", "", "Z"]}' >"$T/b3.jsonl"
run "$G" train --model lstm-tagger --data "text:$T/b3.jsonl" --epochs 1 $TH
expect_rc 1 "an empty tag"
expect_err "b3.jsonl: line 1: tag 2 is empty" "the empty tag, named"
run "$G" train --model lstm-tagger --data "text:$T/tags.jsonl" --byte-fallback --epochs 1 $TH
expect_rc 1 "byte fallback with tags"
expect_err "byte fallback" "refused, saying why"
finish
