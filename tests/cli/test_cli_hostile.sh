#!/usr/bin/env bash
# Hostile files and paths (docs/SECURITY.md): an output that exists but is not a regular file
# (a device, FIFO, link) or ends in '/' is refused before any training with exit status 2 and
# left as it was; a killed run's stale temporary file is cleaned by the next write; headers and
# specs that promise more than their bytes justify fail at once with "(limit NAME)", which
# --max changes. Usage: test_cli_hostile.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"

H="$T/hostile"
python3 "$HERE/make_hostile.py" "$H" || { echo "$NAME: cannot make the hostile inputs" >&2; exit 1; }
TRAIN=("$G" train --data "idx:$FX/idx" --model mlp --hidden 8 --epochs 1 $TH)

refused() { # DESCRIPTION TEXT_IN_STDERR -- command...: exit 2 before any training
    local desc=$1 text=$2
    shift 3
    run "$@"
    expect_rc 2 "$desc"
    expect_err "$text" "$desc"
    if grep -q "epoch 1/" "$T/err"; then bad "$desc: it trained first"; else ok; fi
}
still() { # TEST PATH DESCRIPTION: `test TEST PATH` holds
    if [ "$1" "$2" ]; then ok; else bad "$3: $2 was replaced"; ls -l "$2" >&2; fi
}

# ---- outputs that are not regular files -------------------------------------------------------------
if mknod -m 666 "$T/node" c 1 3 2>/dev/null; then
    refused "--out a character device" "is a character device" -- "${TRAIN[@]}" --out "$T/node"
    still -c "$T/node" "--out a character device"
else
    skip "mknod is not permitted here (the character-device case)"
fi
mkfifo "$T/fifo"
refused "--out a FIFO" "is a FIFO" -- "${TRAIN[@]}" --out "$T/fifo"
still -p "$T/fifo" "--out a FIFO"
echo keep >"$T/target"
ln -s "$T/target" "$T/link.safetensors"
refused "--out a symbolic link" "is a symbolic link" -- "${TRAIN[@]}" --out "$T/link.safetensors"
still -L "$T/link.safetensors" "--out a symbolic link"
refused "--out a new folder/" "ends with '/'" -- "${TRAIN[@]}" --out "$T/newdir/"
expect_no_file "$T/newdir" "no folder made for --out newdir/"
mkdir -p "$T/rep"
mkfifo "$T/rep/index.html"
refused "--report over a FIFO index.html" "is a FIFO" -- "${TRAIN[@]}" --report "$T/rep"
still -p "$T/rep/index.html" "--report over a FIFO"

# ---- stale temporary files of a killed write ---------------------------------------------------------
W="$T/w.safetensors"
touch "$W.tmp.Ab3xY9" "$W.tmp.keep" "$T/other.safetensors.tmp.Ab3xY9"
touch -d '1 hour ago' "$W.tmp.Ab3xY9" "$W.tmp.keep" "$T/other.safetensors.tmp.Ab3xY9"
run "${TRAIN[@]}" --quiet --out "$W"
expect_rc 0 "train --out over a stale temporary file"
expect_no_file "$W.tmp.Ab3xY9" "the stale temporary file of --out is removed"
expect_file "$W" "the weights are written"
if [ -e "$W.tmp.keep" ] && [ -e "$T/other.safetensors.tmp.Ab3xY9" ]; then ok; else
    bad "files of other names were removed"
fi
rm -f "$W.tmp.keep" "$T/other.safetensors.tmp.Ab3xY9"

# the LoRA folder's files are checked before fine-tuning starts
mkdir -p "$T/lora"
ln -s "$T/target" "$T/lora/adapter_config.json"
refused "--lora-out over a link" "is a symbolic link" -- "$G" finetune --from "$W" --data "idx:$FX/idx" --epochs 1 $TH --lora-rank 2 --lora-out "$T/lora"
still -L "$T/lora/adapter_config.json" "--lora-out over a link"
refused "finetune --out a FIFO" "is a FIFO" -- "$G" finetune --from "$W" --data "idx:$FX/idx" --epochs 1 $TH --out "$T/fifo"

# ---- inputs that promise more than they hold ------------------------------------------------------
fast() { # SECONDS DESCRIPTION TEXT... -- command...: exit 1 within SECONDS, stderr has each TEXT
    local secs=$1 desc=$2
    shift 2
    local texts=()
    while [ "$1" != "--" ]; do texts+=("$1"); shift; done
    shift
    local t0=$SECONDS
    run timeout 60 "$@"
    expect_rc 1 "$desc"
    for x in "${texts[@]}"; do expect_err "$x" "$desc"; done
    if [ $((SECONDS - t0)) -le "$secs" ]; then ok; else bad "$desc: took $((SECONDS - t0)) s"; fi
    if grep -q "epoch 1/" "$T/err"; then bad "$desc: it trained first"; else ok; fi
}
fast 10 "a spec with a 10^9-channel convolution" "at 0 (conv2d)" "(limit params)" -- "${TRAIN[@]}" --model "$H/conv1e9.json"
fast 10 "the same spec in a weights file" "at 0 (conv2d)" "(limit params)" -- "$G" predict --weights "$H/evil_spec.safetensors" --input "$FX/rows.csv"
truncate -s 17M "$T/big.json"
fast 10 "a 17 MiB model spec" "at most 16 MiB" -- "${TRAIN[@]}" --model "$T/big.json"
rm -f "$T/big.json"
fast 10 "a header of 2.4 million JSON values" "nodes.safetensors" "(limit json-nodes)" -- "$G" inspect "$H/nodes.safetensors"
fast 10 "an escaped NUL in a tensor name" "nul.safetensors" '\u0000' -- "$G" inspect "$H/nul.safetensors"
fast 10 "an IDX gzip bomb" "images.gz" "(limit gzip-ratio)" -- "${TRAIN[@]}" --data "idx:$H/bomb/images.gz,$H/bomb/labels.gz"
fast 10 "20,000 class names in a weights file" "classes.safetensors" "names 20000 classes" "(limit classes)" -- "$G" predict --weights "$H/classes.safetensors" --input "$FX/rows.csv"
fast 20 "a CSV of 20,000 classes" "classes.csv" "20000 classes" "(limit classes)" -- "$G" train --data "csv:$H/classes.csv" --epochs 1 $TH

# ---- --max --------------------------------------------------------------------------------------------
run "$G" train --data "csv:$FX/table.csv" --epochs 1 $TH --quiet --max classes=2
expect_rc 1 "--max lowers a limit"
expect_err "(limit classes)" "--max classes=2 on 3 classes"
run "$G" train --data "csv:$FX/table.csv" --epochs 1 $TH --quiet --max classes=3,gzip_ratio=1e3
expect_rc 0 "--max at the data's size"
run "$G" train --data "csv:$FX/table.csv" --max bogus=3
expect_rc 2 "--max with an unknown name"
expect_err "--max: 'bogus=3'" "--max names the bad entry"
run "$G" train --data "csv:$FX/table.csv" --max params=0
expect_rc 2 "--max with 0"
run "$G" inspect "$H/nodes.safetensors" --max json-nodes=3000000
expect_rc 1 "--max json-nodes lets the header parse"
expect_err "tensor 'x'" "the raised limit reaches the header's own error"
expect_clean_dir "$T" "no temporary files after the refusals"

finish
