#!/usr/bin/env bash
# A rank that dies or stops ends the whole job under mpirun, with a message naming it, and the
# last checkpoint loads: rank 1 killed with SIGKILL mid-epoch (the launcher notices the exit
# and ends the job), and rank 1 stopped with SIGSTOP (alive but silent: rank 0's watchdog gives
# up after --dist-timeout 3 s, names rank 1 and its pid, and stops the job). The job must be
# over within 60 s of the signal (the stated bound is the timeout plus the grace of the other
# ranks plus the launcher's kill: 3 + 2 + ~1 s here); the time taken is printed, not judged.
# Usage: test_cli_mpi_faults.sh path/to/graft
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
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
OVER=""
"$LAUNCHER" --version 2>&1 | grep -q "Open MPI" && OVER="--oversubscribe"
cd "$T" || exit 1
RUN=(--data "idx:$FX/idx" --model mlp --batch 32 --threads 1 --epochs 400 --dist-timeout 3)

# The process of the given rank: mpirun's child whose environment names that rank.
rank_pid() { # MPIRUN_PID RANK
    local p
    for p in $(pgrep -P "$1"); do
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null |
            grep -Eq "^(OMPI_COMM_WORLD_RANK|PMI_RANK)=$2\$"; then echo "$p"; return; fi
    done
}

fault() { # SIGNAL DIR: rank 1 gets SIGNAL once the run has written a checkpoint
    "$LAUNCHER" -np 2 $OVER "$G" train "${RUN[@]}" --checkpoint-dir "$2" --checkpoint-every 5 \
        >"$T/out" 2>"$T/err" &
    local mp=$! i pid=""
    for i in $(seq 600); do
        [ -n "$(ls "$2" 2>/dev/null)" ] && pid="$(rank_pid "$mp" 1)"
        [ -n "$pid" ] && break
        sleep 0.1
    done
    if [ -z "$pid" ]; then
        bad "SIG$1: no checkpoint or no rank 1 to signal"
        kill -KILL "$mp" 2>/dev/null
        wait "$mp"
        return
    fi
    VICTIM="$pid"
    local t0 t1 left=600 # 60 s in tenths
    t0="$(date +%s.%N)"
    kill -"$1" "$pid"
    while kill -0 "$mp" 2>/dev/null && [ "$left" -gt 0 ]; do sleep 0.1; left=$((left - 1)); done
    t1="$(date +%s.%N)"
    if kill -0 "$mp" 2>/dev/null; then
        bad "SIG$1: the job still runs 60 s after rank 1 got the signal"
        kill -KILL "$pid" "$mp" 2>/dev/null
    else ok; fi
    wait "$mp"
    RC=$?
    cp "$T/err" "$T/$2.err"
    LAST="mpirun -np 2 graft train ... (rank 1: SIG$1)"
    echo "$NAME: SIG$1 to rank 1: the job ended $(python3 -c "print(round($t1 - $t0, 1))") s later (exit status $RC)"
    if [ "$RC" != 0 ]; then ok; else bad "SIG$1: the job ended with status 0"; fi
    # the last checkpoint is whole: one process continues from it for one more epoch
    local last epoch
    last="$(ls "$2" | grep -v '\.tmp' | sort | tail -1)"
    epoch="$(printf '%s' "$last" | sed -E 's/^ckpt-e0*([0-9]+)-.*/\1/')"
    run "$G" train "${RUN[@]}" --epochs "$((epoch + 1))" --resume "$2/$last" --quiet
    if [ "$RC" = 0 ]; then ok; else bad "SIG$1: the last checkpoint $last does not load"; show; fi
}
has() { # FILE TEXT(regex) WHAT
    if grep -Eq -- "$2" "$1"; then ok; else bad "$3: no /$2/ in the job's stderr"; sed 's/^/  stderr| /' "$1" | tail -8 >&2; fi
}

fault KILL ckk
# Open MPI: "mpirun noticed that process rank 1 with PID ... exited on signal 9 (Killed)";
# MPICH: "KILLED BY SIGNAL: 9"
has "$T/ckk.err" "rank 1 .*signal 9|KILLED BY SIGNAL: 9" "SIGKILL: the launcher names the killed rank"
fault STOP cks
has "$T/cks.err" "rank 1 \\(pid $VICTIM on" "SIGSTOP: rank 0 names the stopped rank and its pid"
has "$T/cks.err" "stopped, hung or dead; stopping the job" "SIGSTOP: says the job is stopped"
finish
