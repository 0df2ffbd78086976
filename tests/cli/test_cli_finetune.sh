#!/usr/bin/env bash
# graft finetune: load plans (dry run, JSON), strict loads of renamed checkpoints
# (--strip-prefix, --rename), the head policy, freezing, BatchNorm policy, LoRA (PEFT files,
# merged weights), discriminative learning rates, delta checkpoints read back by eval and
# predict. Usage: test_cli_finetune.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"

# a base model: cnn-small on the 10-class IDX data
B="$T/base.safetensors"
run "$G" train --data "idx:$FX/idx" --model cnn-small --epochs 2 $TH --quiet --out "$B"
expect_rc 0 "train the base"

# ---- dry run ------------------------------------------------------------------------------------
run "$G" finetune --from "$B" --data "idx:$FX/idx" --dry-run --train-last 1 --out "$T/never.safetensors"
expect_rc 0 "--dry-run"
expect_out "load plan:" "--dry-run prints the plan"
expect_out "frozen      features.0.weight" "--dry-run shows frozen tensors"
expect_out "trainable   classifier.3.weight" "--dry-run shows the trainable head"
expect_out "dry run: nothing was trained or written" "--dry-run says nothing happened"
expect_no_file "$T/never.safetensors" "--dry-run writes nothing"
run "$G" finetune --from "$B" --data "idx:$FX/idx" --dry-run --json
expect_rc 0 "--dry-run --json"
json "d['dry_run'] and d['plan']['summary']['loaded'] == 8 and len(d['plan']['keys']) == 8" "plan JSON"
json "d['head_replaced'] is False" "same classes, same names: the head is kept (auto)"
run "$G" finetune --from "$B" --data "idx:$FX/idx" --dry-run --json --head new
json "d['head_replaced'] is True" "--head new replaces it"

# ---- renamed checkpoints: strict, --strip-prefix, --rename --------------------------------------
python3 - "$B" "$T/dp.safetensors" "$T/enc.safetensors" <<'PY'
import json, struct, sys
src = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", src[:8])[0]
head = json.loads(src[8:8 + n])
def write(path, rename):
    h = {(k if k == "__metadata__" else rename(k)): v for k, v in head.items()}
    h.pop("__metadata__", None)  # a plain PyTorch file
    b = json.dumps(h).encode()
    open(path, "wb").write(struct.pack("<Q", len(b)) + b + src[8 + n:])
write(sys.argv[2], lambda k: "module." + k)
write(sys.argv[3], lambda k: k.replace("features.", "encoder.", 1))
PY
run "$G" finetune --from "$T/dp.safetensors" --model cnn-small --data "idx:$FX/idx" --strict --epochs 1 $TH --out "$T/x.safetensors"
expect_rc 1 "--strict with module. keys fails"
expect_err "module.features.0.weight" "--strict lists the keys at fault"
expect_no_file "$T/x.safetensors" "no output after a strict refusal"
run "$G" finetune --from "$T/dp.safetensors" --model cnn-small --data "idx:$FX/idx" --strict --strip-prefix module. --epochs 1 $TH --json --quiet
expect_rc 0 "--strict --strip-prefix module."
json "d['finetune']['loaded'] == 8 and d['finetune']['renamed'] == 8" "--strip-prefix renames every key"
run "$G" finetune --from "$T/enc.safetensors" --model cnn-small --data "idx:$FX/idx" --strict --rename 's/^encoder\./features./' --dry-run
expect_rc 0 "--rename s/^encoder\\./features./"
expect_out "<- encoder.0.weight" "the plan shows the file key"
run "$G" finetune --from "$T/enc.safetensors" --model cnn-small --data "idx:$FX/idx" --epochs 1 $TH --quiet
expect_rc 0 "non-strict load of a partly matching file"
run "$G" finetune --from "$T/enc.safetensors" --data "idx:$FX/idx" --epochs 1 $TH
expect_rc 2 "a file without graft metadata needs --model"
expect_err "--model is required" "says --model is required"

# ---- head, freezing, learning rates, writing ---------------------------------------------------
F="$T/ft5.safetensors"
run "$G" finetune --from "$B" --data "idx:$FX/idx" --classes 0-4 --train-last 2 --lr-trunk-factor 0.1 --epochs 2 $TH --json --quiet --out "$F"
expect_rc 0 "finetune on 5 classes, last 2 blocks"
json "d['finetune']['head_replaced'] and d['data']['classes'] == ['0', '1', '2', '3', '4']" "a new 5-way head"
json "d['model']['trainable'] == 3136*128 + 128 + 128*5 + 5" "--train-last 2 trains classifier.1 and the head"
run "$G" eval --weights "$F" --data "idx:$FX/idx" --classes 0-4 --json
expect_rc 0 "eval the fine-tuned model"
json "len(d['confusion']) == 5" "5 classes in eval"
run "$G" finetune --from "$B" --data "idx:$FX/idx" --freeze 'features.*' --unfreeze 'features.3.bias' --epochs 1 $TH --json --quiet
json "d['model']['trainable'] == 64 + 3136*128 + 128 + 128*10 + 10" "--freeze then --unfreeze"
run "$G" finetune --from "$B" --data "idx:$FX/idx" --epochs 1 $TH --quiet --freeze '*.bias' --head 10 --json
json "d['finetune']['head_replaced'] is True" "--head N"

# ---- BatchNorm policy on resnet-mini -----------------------------------------------------------
R="$T/resnet.safetensors"
run "$G" train --data "idx:$FX/idx" --model resnet-mini --epochs 1 --limit 64 $TH --quiet --out "$R"
expect_rc 0 "train resnet-mini"
run "$G" finetune --from "$R" --data "idx:$FX/idx" --dry-run --bn-policy train-all
expect_out "WILL MOVE" "--bn-policy train-all: the statistics move"
run "$G" finetune --from "$R" --data "idx:$FX/idx" --dry-run
expect_out "BatchNorm statistics: fixed" "default freeze-stats: fixed statistics"
run "$G" finetune --from "$R" --data "idx:$FX/idx" --dry-run --bn-policy 'train-all:layer3.*'
expect_out "WILL MOVE in training mode in 5 of 15 layers" "--bn-policy with a scope"

# ---- LoRA --------------------------------------------------------------------------------------
L="$T/lora.safetensors"
run "$G" finetune --from "$B" --data "idx:$FX/idx" --lora-rank 4 --lora-alpha 8 --lora-targets 'features.3,classifier.1' --lora-out "$T/adapter" --epochs 2 $TH --json --quiet --out "$L"
expect_rc 0 "finetune with LoRA"
json "d['finetune']['lora_layers'] == 2" "LoRA on two layers"
json "d['model']['trainable'] == 4*32*9 + 64*4 + 4*3136 + 128*4 + 128*10 + 10" "only the adapters and the head train"
expect_file "$T/adapter/adapter_model.safetensors" "--lora-out adapter weights"
expect_file "$T/adapter/adapter_config.json" "--lora-out adapter config"
run "$G" inspect "$L"
expect_rc 0 "inspect the merged LoRA model"
if grep -q lora_A "$T/out"; then bad "the saved LoRA model is merged (no lora_A)"; else ok; fi
run "$G" eval --weights "$L" --data "idx:$FX/idx"
expect_rc 0 "eval the merged LoRA model"

# ---- delta checkpoints --------------------------------------------------------------------------
D="$T/delta.safetensors"
run "$G" finetune --from "$B" --data "idx:$FX/idx" --train-last 1 --delta --epochs 1 $TH --json --quiet --out "$D"
expect_rc 0 "--delta"
json "d['finetune']['delta'] and d['finetune']['delta_tensors'] == 2" "the delta holds the head only"
if [ "$(stat -c %s "$D")" -lt "$(stat -c %s "$B")" ]; then ok; else bad "the delta is smaller than the base"; fi
run "$G" eval --weights "$D" --data "idx:$FX/idx" --json
expect_rc 0 "eval a delta (base from its metadata)"
run "$G" predict --weights "$D" --input "$FX/digit3.png"
expect_rc 0 "predict with a delta"
cp "$B" "$T/base2.safetensors"
mv "$B" "$T/moved.safetensors"
run "$G" eval --weights "$D" --data "idx:$FX/idx"
expect_rc 2 "a delta whose base moved"
expect_err "--base" "says to give --base"
run "$G" eval --weights "$D" --base "$T/base2.safetensors" --data "idx:$FX/idx"
expect_rc 0 "--base"
run "$G" eval --weights "$D" --base "$L" --data "idx:$FX/idx"
expect_rc 1 "a delta against the wrong base"
expect_err "sha256" "the wrong base is named by hash"

finish
