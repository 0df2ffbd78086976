#!/usr/bin/env bash
# graft train / finetune under mpirun on this machine (2 and 3 ranks, --oversubscribe): the
# same losses as one process with the same (global) batch, rank 0 alone printing and writing,
# identical weights on every rank, resuming with another number of ranks, Ctrl-C and SIGUSR1
# through mpirun writing one checkpoint, ranks started with different settings refused, and
# commands that train in one process refusing several. Skipped without mpirun or without MPI
# in this graft. The numerical equality of N ranks and one process is checked closely in
# tests/test_dist.c; here the epoch losses printed to 4 decimals must agree within 2e-4.
# Usage: test_cli_mpi.sh path/to/graft
source "$(dirname "$0")/lib.sh"

LAUNCHER="$(command -v mpirun || command -v mpiexec)"
if [ -z "$LAUNCHER" ]; then
    skip "no mpirun or mpiexec on PATH (Debian: apt-get install openmpi-bin)"
    finish
    exit 77
fi
if ! "$G" --version | grep -q '^processes: MPI'; then
    skip "this graft was built without MPI (install libopenmpi-dev and reconfigure)"
    finish
    exit 77
fi
# this machine may run the tests as root, which Open MPI refuses unless told
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
OVER=""
"$LAUNCHER" --version 2>&1 | grep -q "Open MPI" && OVER="--oversubscribe"
mpi() { local np="$1"; shift; timeout 120 "$LAUNCHER" -np "$np" $OVER "$@"; }

cd "$T" || exit 1
CSV=(--data "csv:$FX/table.csv" --model mlp --hidden 16 --batch 16 --threads 1)
# epoch losses of a run's stderr, one per line
losses() { sed -n 's/^epoch [0-9]*\/[0-9]*  loss \([0-9.]*\).*/\1/p' "$1"; }
same_losses() { # FILE_A FILE_B WHAT
    if python3 - "$1" "$2" <<'EOF'; then ok; else bad "$3: the epoch losses differ"; paste "$1" "$2" >&2; fi
import sys
a = [float(x) for x in open(sys.argv[1]).read().split()]
b = [float(x) for x in open(sys.argv[2]).read().split()]
sys.exit(0 if a and len(a) == len(b) and all(abs(x - y) <= 2e-4 for x, y in zip(a, b)) else 1)
EOF
}

# ---- one process and two ranks: the same run ------------------------------------------------
run "$G" train "${CSV[@]}" --epochs 4 --out one.safetensors
expect_rc 0 "one process"
losses "$T/err" >one.losses
run mpi 2 "$G" train "${CSV[@]}" --epochs 4 --out two.safetensors
expect_rc 0 "two ranks"
losses "$T/err" >two.losses
same_losses one.losses two.losses "2 ranks against 1 process"
expect_err "2 ranks, each with 1 thread" "the job is announced"
expect_err "weights identical on every rank" "every rank ends with the same weights"
expect_file two.safetensors "rank 0 writes --out"
if [ "$(grep -c '^weights ' "$T/out")" = 1 ]; then ok; else bad "the results printed $(grep -c '^weights ' "$T/out") times"; fi
if [ "$(grep -c '^graft train: mlp' "$T/err")" = 1 ]; then ok; else bad "progress from more than rank 0"; fi

run mpi 3 "$G" train "${CSV[@]}" --epochs 4 --json
expect_rc 0 "three ranks, --json"
losses "$T/err" >three.losses
same_losses one.losses three.losses "3 ranks against 1 process"
json "d['training']['steps'] == 32 and d['eval']['examples'] == 30" "one JSON summary from rank 0"

# ---- resume with another number of ranks -------------------------------------------------------
run mpi 2 "$G" train "${CSV[@]}" --epochs 2 --checkpoint-dir ck --checkpoint-every 3
expect_rc 0 "two ranks with checkpoints"
if ls ck/ckpt-e000002-b000000000.safetensors >/dev/null 2>&1; then ok; else bad "no epoch checkpoint in ck"; fi
run mpi 3 "$G" train "${CSV[@]}" --epochs 4 --resume ck
expect_rc 0 "three ranks resume two ranks' checkpoint"
expect_err "resuming from ck/ckpt-e000002-b000000000.safetensors" "resumed from the last checkpoint"
losses "$T/err" >resumed.losses
tail -2 one.losses >one.tail
same_losses one.tail resumed.losses "resumed with 3 ranks against 1 process"
run "$G" train "${CSV[@]}" --epochs 5 --resume ck
expect_rc 0 "one process resumes three ranks' checkpoint"

# ---- finetune with a frozen layer ---------------------------------------------------------------
run mpi 2 "$G" finetune --from one.safetensors "${CSV[@]}" --freeze 'layers.0.*' --epochs 2 \
    --out ft.safetensors
expect_rc 0 "finetune with a frozen layer on two ranks"
expect_err "weights identical on every rank" "finetune: the same weights everywhere"
expect_file ft.safetensors "finetune: rank 0 writes --out"

# ---- distillation: the teacher's cached logits looked up by each rank's example indices -------
DIST=(--data "csv:$FX/table.csv" --teacher-model mlp --student-model mlp --hidden 16 --batch 16 --threads 1)
run "$G" distill --teacher one.safetensors "${DIST[@]}" --epochs 3
expect_rc 0 "distill, one process"
losses "$T/err" >d1.losses
run mpi 2 "$G" distill --teacher one.safetensors "${DIST[@]}" --epochs 3 --out d2.safetensors
expect_rc 0 "distill on two ranks"
expect_err "weights identical on every rank" "distill: the same weights everywhere"
losses "$T/err" >d2.losses
same_losses d1.losses d2.losses "distill on two ranks trains what one process does"
expect_file d2.safetensors "distill: rank 0 writes --out"

# ---- multitask: every task's batches shared out, the trunk's and each head's gradients summed -
MT=(--task a="csv:$FX/table.csv" --task b="csv:$FX/table.csv" --model mlp --hidden 16 --batch 16
    --threads 1 --epochs 3 --mode sum --no-baselines)
mt_losses() { sed -n 's/^multi-task   epoch [0-9]*\/[0-9]*  a loss \([0-9.]*\)  b loss \([0-9.]*\).*/\1\n\2/p' "$1"; }
run "$G" multitask "${MT[@]}"
expect_rc 0 "multitask, one process"
mt_losses "$T/err" >mt1.losses
run mpi 3 "$G" multitask "${MT[@]}" --out mt3.safetensors
expect_rc 0 "multitask on three ranks"
expect_err "weights identical on every rank" "multitask: the same weights everywhere"
mt_losses "$T/err" >mt3.losses
same_losses mt1.losses mt3.losses "multitask on three ranks trains what one process does"
expect_file mt3.safetensors "multitask: rank 0 writes --out"
run mpi 2 "$G" multitask "${MT[@]}" --sync-bn
expect_rc 2 "--sync-bn is refused by multitask"

# ---- synchronised BatchNorm: the statistics of the whole batch on every rank -----------------
cat >bn.json <<'JSON'
{"type": "sequential", "children": [
  {"type": "linear", "out": 16}, {"type": "batchnorm1d"}, {"type": "relu"},
  {"type": "linear", "out": "classes"}]}
JSON
BN=(--data "csv:$FX/table.csv" --model bn.json --batch 16 --threads 1 --optim sgd --lr 0.05)
run "$G" train "${BN[@]}" --epochs 3
expect_rc 0 "BatchNorm model, one process"
losses "$T/err" >bn1.losses
run mpi 2 "$G" train "${BN[@]}" --epochs 3 --sync-bn
expect_rc 0 "BatchNorm model, two ranks with --sync-bn"
expect_err "weights identical on every rank" "--sync-bn: the same weights everywhere"
losses "$T/err" >bn2.losses
same_losses bn1.losses bn2.losses "--sync-bn trains what one process does"
run mpi 2 "$G" train "${BN[@]}" --epochs 3
losses "$T/err" >bn2local.losses
if cmp -s bn1.losses bn2local.losses; then bad "without --sync-bn each rank's statistics should change the losses"; else ok; fi
run mpi 3 "$G" train "${BN[@]}" --batch 2 --epochs 1 --sync-bn
expect_rc 1 "--sync-bn refuses a batch smaller than the ranks"
expect_err "cannot give each of 3 ranks an example" "--sync-bn: the refusal says why"

# ---- compare: every strategy's run trains across the ranks ------------------------------------
IMG=(--data "idx:$FX/idx" --model mlp --batch 16 --threads 1)
run "$G" train "${IMG[@]}" --epochs 1 --quiet --out pre.safetensors
CMP=(compare "${IMG[@]}" --pretrained pre.safetensors --per-class 4 --strategies scratch,finetune,fastai
     --epochs 3 --json --quiet)
run "$G" "${CMP[@]}"
expect_rc 0 "compare in one process"
cp "$T/out" cmp1.json
run mpi 2 "$G" "${CMP[@]}" --work-dir cmpruns
expect_rc 0 "compare on two ranks"
cp "$T/out" cmp2.json
if python3 - cmp1.json cmp2.json <<'EOF'; then ok; else bad "compare: 2 ranks do not train what one process does"; fi
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
def trials(d):
    return [t for s in d['sweep'][0]['result']['strategies'] for t in s['trials']]
ta, tb = trials(a), trials(b)
ok = len(ta) == len(tb) == 3
for x, y in zip(ta, tb):
    la, lb = x['train_loss'], y['train_loss']
    ok = ok and len(la) == len(lb) == 3 and all(abs(u - v) <= 1e-4 * max(1, abs(u)) for u, v in zip(la, lb))
    ok = ok and abs(x['accuracy'] - y['accuracy']) <= 0.02
sys.exit(0 if ok else 1)
EOF
if [ "$(grep -c '"command"' cmp2.json)" = 1 ]; then ok; else bad "compare: the JSON printed by more than rank 0"; fi
expect_file cmpruns/all/finetune-seed0.delta.safetensors "compare: rank 0 keeps the deltas in --work-dir"
run mpi 2 "$G" "${CMP[@]}" --sync-bn
expect_rc 2 "compare refuses --sync-bn"

# ---- stopping: Ctrl-C (mpirun sends SIGTERM), SIGUSR1 (forwarded) ------------------------------
BIG=(--data "idx:$FX/idx" --model mlp --batch 32 --threads 1 --epochs 400)
stop_with() { # SIGNAL DIR: a long run stopped once its first checkpoint exists
    "$LAUNCHER" -np 2 $OVER "$G" train "${BIG[@]}" --checkpoint-dir "$2" \
        --out "$2.safetensors" >"$T/out" 2>"$T/err" &
    local mp=$! i
    for i in $(seq 600); do [ -n "$(ls "$2" 2>/dev/null)" ] && break; sleep 0.1; done
    kill -"$1" "$mp"
    for i in $(seq 600); do kill -0 "$mp" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$mp" 2>/dev/null # still there after 60 s: the check below fails
    wait "$mp"
    RC=$?
    LAST="mpirun -np 2 graft train ... (SIG$1)"
}
# the epoch after the newest checkpoint of DIR
next_epoch() {
    local last
    last="$(ls "$1" | grep -v '\.tmp' | sort | tail -1)"
    echo $(( $(printf '%s' "$last" | sed -E 's/^ckpt-e0*([0-9]+)-.*/\1/') + 1 ))
}
if "$LAUNCHER" --version 2>&1 | grep -q "Open MPI"; then
    stop_with INT cki
    expect_err "interrupted; checkpoint cki/" "Ctrl-C: one checkpoint of the step every rank stopped after"
    expect_err "wrote the weights of the last step" "Ctrl-C: rank 0 writes --out"
    stop_with USR1 cku
    expect_rc 1 "SIGUSR1: stops like Ctrl-C (exit status 1)"
    expect_err "interrupted; checkpoint cku/" "SIGUSR1: a checkpoint"
    run mpi 3 "$G" train "${BIG[@]}" --epochs "$(next_epoch cku)" --resume cku --quiet
    expect_rc 0 "three ranks resume the stopped run"
else
    skip "Ctrl-C through mpirun is checked with Open MPI's mpirun only"
fi

# ---- refusals ------------------------------------------------------------------------------------
run "$LAUNCHER" $OVER -np 1 "$G" train "${CSV[@]}" --epochs 1 : -np 1 "$G" train "${CSV[@]}" \
    --epochs 1 --batch 32
if [ "$RC" != 0 ]; then ok; else bad "ranks with different --batch trained"; fi
expect_err "rank 1 (pid" "different settings: the rank is named"
expect_err "different --batch than rank 0: 32 (rank 0: 16)" "different settings: the setting and both values"
run mpi 2 "$G" eval --weights one.safetensors --data "csv:$FX/table.csv"
expect_rc 2 "eval refuses several processes"
expect_err "only train, finetune, distill, multitask and compare train across processes" "eval says what does"
finish
