#!/usr/bin/env bash
# Training runs: checkpoints and --resume, Ctrl-C (a checkpoint, no --out, exit 1), validation
# with --keep-best and --patience, schedules, distill, compare (a label sweep, JSON, report) and
# multitask. Usage: test_cli_train.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"
D="idx:$FX/idx"

# ---- checkpoints and resume ----------------------------------------------------------------------
run "$G" train --data "$D" --model mlp --hidden 32 --epochs 2 $TH --checkpoint-dir "$T/ck" --json --quiet
expect_rc 0 "train with --checkpoint-dir"
json "d['checkpoint'].endswith('ckpt-e000002-b000000000.safetensors')" "JSON names the last checkpoint"
expect_file "$T/ck/ckpt-e000001-b000000000.safetensors" "a checkpoint per epoch"
expect_file "$T/ck/ckpt-e000002-b000000000.safetensors" "a checkpoint per epoch"
run "$G" train --data "$D" --model mlp --hidden 32 --epochs 4 $TH --resume "$T/ck" --json
expect_rc 0 "--resume a folder"
expect_err "resuming from" "--resume says where from"
json "d['training']['resumed'] and d['training']['epochs_run'] == 4 and len(d['training']['history']) == 2" "the resumed run trains epochs 3 and 4"
cp "$T/out" "$T/resumed.json"
run "$G" train --data "$D" --model mlp --hidden 32 --epochs 4 $TH --json --quiet
if python3 -c "
import json,sys
a=json.load(open('$T/resumed.json')); b=json.load(open('$T/out'))
sys.exit(0 if a['eval']['confusion']==b['eval']['confusion'] and a['training']['history'][-1]['train_loss']==b['training']['history'][-1]['train_loss'] else 1)"
then ok; else bad "2 + 2 resumed epochs equal 4 uninterrupted ones"; fi
run "$G" train --data "$D" --model mlp --hidden 32 --epochs 1 $TH --checkpoint-dir "$T/ck2" --checkpoint-every 3 --quiet
expect_rc 0 "--checkpoint-every"
expect_file "$T/ck2/ckpt-e000000-b000000006.safetensors" "a checkpoint after step 6"
run "$G" train --data "$D" --model mlp --hidden 32 --epochs 3 $TH --resume "$T/ck2/ckpt-e000001-b000000000.safetensors" --quiet --json
expect_rc 0 "--resume a file"

# ---- Ctrl-C ---------------------------------------------------------------------------------------
# Interrupted mid-epoch, the checkpoint is of the last finished batch; resuming it ends bitwise
# where the uninterrupted run ends (same thread count).
if have_fashion; then
    CC=(--data fashion-mnist --per-class 1000 --model cnn-small --seed 3 $TH)
    "$G" train "${CC[@]}" --epochs 50 --checkpoint-dir "$T/ck3" \
        --out "$T/int.safetensors" >"$T/int.out" 2>"$T/int.err" &
    pid=$!
    for _ in $(seq 100); do grep -q "graft train:" "$T/int.err" 2>/dev/null && break; sleep 0.1; done
    sleep 1
    kill -INT "$pid"
    wait "$pid"
    RC=$?
    expect_rc 1 "Ctrl-C: exit 1"
    if grep -q "interrupted; checkpoint" "$T/int.err"; then ok; else bad "Ctrl-C: says where the checkpoint is"; fi
    if ls "$T/ck3"/ckpt-*.safetensors >/dev/null 2>&1; then ok; else bad "Ctrl-C writes a checkpoint"; fi
    expect_file "$T/int.safetensors" "Ctrl-C: --out keeps the weights of the last step"
    if grep -q "wrote the weights of the last step to $T/int.safetensors" "$T/int.err"; then ok
    else bad "Ctrl-C: says what it wrote to --out"; fi
    run "$G" eval --weights "$T/int.safetensors" --data fashion-mnist --limit 200 $TH --quiet
    expect_rc 0 "Ctrl-C: the interrupted run's --out evaluates"
    expect_clean_dir "$T/ck3" "Ctrl-C: no temporary files"
    if grep -q "interrupted" "$T/int.out"; then ok; else bad "Ctrl-C: the summary says interrupted"; fi
    if ls "$T/ck3"/ckpt-e000000-b*.safetensors 2>/dev/null | grep -qv b000000000; then ok
    else bad "Ctrl-C inside epoch 1: the checkpoint is of a batch inside it ($(ls "$T/ck3"))"; fi
    run "$G" train "${CC[@]}" --epochs 1 --resume "$T/ck3" --out "$T/resumed.safetensors" --quiet
    expect_rc 0 "Ctrl-C: --resume finishes the run"
    run "$G" train "${CC[@]}" --epochs 1 --out "$T/whole.safetensors" --quiet
    expect_rc 0 "the uninterrupted run"
    if cmp -s "$T/resumed.safetensors" "$T/whole.safetensors"; then ok
    else bad "interrupted + resumed weights equal the uninterrupted run's bitwise"; fi
else skip "Ctrl-C (needs fashion-mnist for a long run)"; fi

# ---- validation, keep-best, patience, schedules, options of the optimizer ------------------------
run "$G" train --data "$D" --model mlp --hidden 32 --epochs 6 --val 0.25 --keep-best --patience 2 --lr 0.05 $TH --json
expect_rc 0 "--val --keep-best --patience"
json "d['data']['val'] == 100 and d['data']['train'] == 300" "--val cuts the training set"
json "all(e['val_loss'] is not None for e in d['training']['history'])" "validation every epoch"
json "d['training']['best_epoch'] >= 1" "best epoch"
for s in "--sched cosine --warmup 1" "--sched step" "--sched onecycle" "--optim sgd --momentum 0.9 --lr 0.05" "--optim adamw --weight-decay 0.01 --clip-norm 1" "--optim rmsprop" "--label-smoothing 0.1" "--augment=crop,affine,erase"; do
    run "$G" train --data "$D" --model mlp --hidden 16 --epochs 3 $TH --json --quiet $s
    expect_rc 0 "train $s"
    json "len(d['training']['history']) == 3" "train $s: 3 epochs"
done
run "$G" train --data "$D" --model mlp --hidden 16 --epochs 4 --sched cosine $TH --json --quiet
json "d['training']['history'][0]['lr'] > d['training']['history'][2]['lr']" "cosine lowers the lr"

# ---- distill ---------------------------------------------------------------------------------------
TW="$T/teacher.safetensors"
run "$G" train --data "$D" --model lenet --epochs 3 $TH --quiet --out "$TW"
expect_rc 0 "train a teacher"
run "$G" distill --teacher "$TW" --data "$D" --student-model mlp --hidden 16 --epochs 3 --temperature 2 --alpha 0.5 $TH --out "$T/student.safetensors"
expect_rc 0 "distill"
expect_out "teacher   lenet" "distill prints the teacher"
expect_out "student   mlp" "distill prints the student"
expect_file "$T/student.safetensors" "distill --out"
run "$G" distill --teacher "$TW" --data "$D" --student-model mlp --hidden 16 --epochs 2 $TH --json --quiet --augment
expect_rc 0 "distill --augment (teacher run live)"
json "d['distill']['cached_teacher'] is False and d['teacher']['model'] == 'lenet' and d['model']['name'] == 'mlp'" "distill JSON"
run "$G" distill --teacher "$TW" --data "$D" --epochs 1 $TH --json --quiet
json "d['distill']['cached_teacher'] is True and d['distill']['temperature'] == 4" "distill caches the teacher, default T"
run "$G" eval --weights "$T/student.safetensors" --data "$D"
expect_rc 0 "eval the student"

# ---- compare ---------------------------------------------------------------------------------------
P="$T/pre.safetensors"
run "$G" train --data "$D" --model cnn-small --epochs 1 $TH --quiet --out "$P"
run "$G" compare --model cnn-small --pretrained "$P" --data "$D" --labels 2,5 --strategies scratch,probe,finetune,lora --epochs 2 $TH --report "$T/crep" --work-dir "$T/runs"
expect_rc 0 "compare with a sweep"
expect_out "test accuracy by labels per class" "compare prints the sweep table"
expect_out "== 5 labels per class (50 training examples" "compare prints each point"
expect_file "$T/crep/index.html" "compare --report"
expect_file "$T/runs/labels-5/finetune-seed0.delta.safetensors" "compare --work-dir keeps the deltas"
run "$G" compare --pretrained "$P" --data "$D" --per-class 3 --strategies probe,finetune --seeds 0,1 --epochs 1 $TH --json --quiet
expect_rc 0 "compare --json with two seeds"
json "len(d['sweep']) == 1 and d['sweep'][0]['n_train'] == 30" "compare JSON sweep"
json "[s['name'] for s in d['sweep'][0]['result']['strategies']] == ['probe', 'finetune']" "compare JSON strategies"
json "len(d['sweep'][0]['result']['strategies'][0]['trials']) == 2" "compare JSON seeds"
run "$G" compare --pretrained "$P" --data "$D" --strategies probe,distill --epochs 1 $TH
expect_rc 2 "distill in compare without a teacher"

# ---- multitask -------------------------------------------------------------------------------------
run "$G" multitask --task digits="$D" --task shapes="images:$FX/shapes" --model mlp --epochs 1 $TH
expect_rc 1 "multitask with two sample shapes"
expect_err "one sample shape" "multitask names the shapes"
run "$G" multitask --task all="$D" --task low="$D" --classes 0-4 --model mlp --hidden 16 --epochs 2 $TH --json --quiet --out "$T/mt.safetensors"
expect_rc 0 "multitask"
json "[t['name'] for t in d['result']['tasks']] == ['all', 'low'] and all(t['baseline'] is not None for t in d['result']['tasks'])" "multitask JSON tasks and baselines"
expect_file "$T/mt.safetensors" "multitask --out"
run "$G" multitask --task a="$D" --task b="$D" --model mlp --hidden 16 --epochs 1 --mode sum --no-baselines $TH
expect_rc 0 "multitask --mode sum --no-baselines"

finish
