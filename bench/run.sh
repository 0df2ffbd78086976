#!/usr/bin/env bash
# graft vs PyTorch benchmark: builds graft in Release, runs every workload at 1 and 2 threads,
# alternating graft and PyTorch runs for several rounds in this one invocation, and prints
# markdown tables of the medians (the ones in docs/PERFORMANCE.md).
#
#   bash bench/run.sh                   # full run (~5 minutes on 2 idle cores)
#   ROUNDS=1 QUICK=1 bash bench/run.sh  # a quick look (~1 minute)
#   ONLY="lstm gru transformer" bash bench/run.sh   # some workloads only
#   ONLY="mbv2-*" bash bench/run.sh     # MobileNetV2 (needs scripts/fetch-mobilenet.sh first)
#   ONLY="logmel" bash bench/run.sh     # log-mel features of 1 s clips
#
# Every table is headed by the CPU, its vector extensions and the OpenBLAS kernel each side
# runs (OPENBLAS_CORETYPE=Haswell forces graft's AVX2 kernel on any x86-64 CPU with AVX2).
# Environment: CLI_EXAMPLES (12000: training examples of the timed `graft train` runs), GRAFT_BUILD_DIR (default build/, as scripts/build.sh), ROUNDS (3), THREADS
# ("1 2"), QUICK (1: fewer windows), TIME_LIMIT (4: seconds of timed windows per run before a
# run stops early, bounding the total on a busy machine; 0: none), TORCH_PYTHON (default
# /usr/bin/python3; the PyTorch runs are skipped when it cannot import torch), GRAFT_DATA_DIR
# (see data.h). Anything else in the environment (OMP_WAIT_POLICY, ...) reaches both sides.
# Raw results (one JSON line per run) and the tables go to $GRAFT_BUILD_DIR/bench-results/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${GRAFT_BUILD_DIR:-$root/build}"
rounds="${ROUNDS:-3}"
threads="${THREADS:-1 2}"
quick="${QUICK:-0}"
time_limit="${TIME_LIMIT:-4}"
torch_py="${TORCH_PYTHON:-/usr/bin/python3}"
res="$dir/bench-results"

# ---- build -----------------------------------------------------------------------------------
# scripts/build.sh builds everything; if some other target (a test in progress) does not
# compile, fall back to the library alone so the benchmark can still run.
mkdir -p "$res"
log="$res/build.log"
if ! GRAFT_BUILD_DIR="$dir" bash "$root/scripts/build.sh" >"$log" 2>&1; then
  echo "run.sh: full build failed (see $log); building the library only" >&2
  cmake --build "$dir" -j"$(nproc)" --target graft >>"$log" 2>&1
fi
bench="$dir/bench/bench_graft"
if [ ! -x "$bench" ]; then
  # bench/ not yet added to the top-level CMakeLists.txt: compile it against the built library
  # with the link line CMake found (OpenBLAS, OpenMP, zlib, cJSON).
  blas="$(sed -n 's/^BLAS_openblas_LIBRARY:FILEPATH=//p' "$dir/CMakeCache.txt")"
  mkdir -p "$dir/bench"
  cc -std=c11 -O2 -Wall -Wextra -I"$root/include" "$root/bench/bench_graft.c" \
    "$dir/libgraft.a" "${blas:--lopenblas}" $(pkg-config --libs libcjson) -fopenmp -lz -lm \
    -o "$bench"
fi

have_torch=0
if "$torch_py" -c "import torch" >/dev/null 2>&1; then have_torch=1; fi
out="$res/results.jsonl"
: >"$out"

# ---- workloads: name mode steps-per-window [warm-up steps] (windows of ~0.1-0.5 s on one core;
# the MobileNetV2 ones longer, with fewer warm-up steps: at least 2, since graft's arena grows
# in the first step and is merged into one fresh block for the second, whose pages the kernel
# then zeroes) ---------------------------------------------------------------------------------
workloads=(
  "mlp train 60"
  "mlp infer 120"
  "cnn train 12"
  "cnn infer 30"
  "finetune-frozen train 30"
  "finetune-full train 12"
  "lstm train 4"
  "gru train 4"
  "lstm-256 train 2"
  "gru-256 train 2"
  "transformer train 3"
  "mbv2-224-b1 infer 4 3"
  "mbv2-224-b32 infer 1 2"
  "mbv2-96-b1 infer 20 3"
  "mbv2-96-b32 infer 1 2"
  "mbv2-head train 300 3"
  "mbv2-full train 1 2"
  "logmel features 4"
)
# ONLY="lstm gru ...": just these workloads, without the command-line and sgemm rows; a word
# may be a pattern ("mbv2-*": every MobileNetV2 workload)
if [ -n "${ONLY:-}" ]; then
  kept=()
  for w in "${workloads[@]}"; do
    for pat in $ONLY; do
      # shellcheck disable=SC2053  # the pattern is meant to match as a glob
      if [[ ${w%% *} == $pat ]]; then kept+=("$w"); break; fi
    done
  done
  workloads=("${kept[@]}")
fi
windows=5
warmup=5
if [ "$quick" = 1 ]; then windows=3; warmup=3; fi

# A failed run is reported and skipped (its row shows "—"); the others still run.
fail() { echo "run.sh: FAILED: $*" >&2; }
common=(--windows "$windows" --warmup "$warmup" --time-limit "$time_limit")
run_graft() { # workload mode steps threads [warm-up]
  "$bench" --workload "$1" --mode "$2" --steps "$3" --threads "$4" "${common[@]}" \
    ${5:+--warmup "$5"} >>"$out" || fail "bench_graft $*"
}
run_torch() { # workload mode steps threads [warm-up] (threads 0: PyTorch's defaults,
  [ "$have_torch" = 1 ] || return 0 # OPENBLAS_NUM_THREADS unset)
  if [ "$4" = 0 ]; then
    env -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS "$torch_py" "$root/bench/bench_torch.py" \
      --workload "$1" --mode "$2" --steps "$3" --threads 0 "${common[@]}" \
      ${5:+--warmup "$5"} >>"$out" || fail "bench_torch default $*"
  else
    OPENBLAS_NUM_THREADS=1 "$torch_py" "$root/bench/bench_torch.py" --workload "$1" \
      --mode "$2" --steps "$3" --threads "$4" "${common[@]}" ${5:+--warmup "$5"} >>"$out" ||
      fail "bench_torch $*"
  fi
}

# The command-line path users run: a whole `graft train` process (start, Fashion-MNIST read,
# one epoch on CLI_EXAMPLES examples, evaluation on as many test images, the weights written),
# timed from outside; also its own in-loop rate (training.seconds of its --json summary).
cli_examples="${CLI_EXAMPLES:-12000}"
run_cli() { # model threads
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$res/cli.rss" "$dir/graft" train --model "$1" --data fashion-mnist \
    --epochs 1 --limit "$cli_examples" --threads "$2" --quiet --json \
    --out "$res/cli.safetensors" >"$res/cli.json" 2>"$res/cli.err" || rc=$?
  t1=$(date +%s.%N)
  if [ "$rc" != 0 ]; then fail "graft train --model $1 --threads $2 (see $res/cli.err)"; return 0; fi
  python3 - "$1" "$2" "$t0" "$t1" "$res/cli.json" "$res/cli.rss" "$cli_examples" >>"$out" <<'PY'
import json, sys
model, threads, t0, t1, summary, rss, n = sys.argv[1:]
d = json.load(open(summary))
wall = float(t1) - float(t0)
train = d["data"]["train"]
print(json.dumps({"impl": "graft", "workload": {"mlp": "mlp", "cnn-small": "cnn"}[model],
                  "mode": "cli-train", "threads": int(threads), "examples": train,
                  "samples_per_s": round(train / wall, 1), "process_seconds": round(wall, 3),
                  "in_loop_samples_per_s": round(train / d["training"]["seconds"], 1),
                  "peak_rss_mib": round(int(open(rss).read().split()[-1]) / 1024, 1)}))
PY
}

# The same job in PyTorch as a whole process (bench/torch_train.py: data, one epoch at batch 64,
# the test set, weights saved), timed the same way.
run_torch_cli() { # model threads
  [ "$have_torch" = 1 ] || return 0
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  OPENBLAS_NUM_THREADS=1 /usr/bin/time -f '%M' -o "$res/tcli.rss" "$torch_py" \
    "$root/bench/torch_train.py" --model "$1" --limit "$cli_examples" --threads "$2" \
    --out "$res/tcli.pt" >"$res/tcli.json" 2>"$res/tcli.err" || rc=$?
  t1=$(date +%s.%N)
  if [ "$rc" != 0 ]; then fail "torch_train.py --model $1 --threads $2 (see $res/tcli.err)"; return 0; fi
  python3 - "$1" "$2" "$t0" "$t1" "$res/tcli.json" "$res/tcli.rss" >>"$out" <<'PY'
import json, sys
model, threads, t0, t1, summary, rss = sys.argv[1:]
d = json.load(open(summary))
wall = float(t1) - float(t0)
print(json.dumps({"impl": "torch", "workload": {"mlp": "mlp", "cnn-small": "cnn"}[model],
                  "mode": "cli-train", "threads": int(threads), "examples": d["train"],
                  "samples_per_s": round(d["train"] / wall, 1), "process_seconds": round(wall, 3),
                  "in_loop_samples_per_s": round(d["train"] / d["in_loop_seconds"], 1),
                  "peak_rss_mib": round(int(open(rss).read().split()[-1]) / 1024, 1)}))
PY
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
flags="$(grep -m1 '^flags' /proc/cpuinfo)"
isa="SSE"; [[ "$flags" == *" avx2"* ]] && isa="AVX2"; [[ "$flags" == *" avx512f"* ]] && isa="AVX-512"
cpu="$cpu ($isa); graft's OpenBLAS: $("$dir/graft" --version | sed -n 's/^blas: //p')"
if [ "$have_torch" = 1 ]; then
  cpu="$cpu; torch: $("$torch_py" "$root/bench/bench_torch.py" --describe 2>/dev/null || echo unknown)"
fi
echo "run.sh: $cpu;" \
  "$rounds rounds; torch: $([ "$have_torch" = 1 ] && echo yes || echo 'not found, graft only');" \
  "load average at start: $(load)" >&2
t_start=$(date +%s)
for ((r = 1; r <= rounds; r++)); do
  for t in $threads; do
    for w in "${workloads[@]}"; do
      set -- $w
      # alternate which side goes first, so slow drifts in machine load hit both equally
      if ((r % 2)); then run_graft "$1" "$2" "$3" "$t" ${4:-}; run_torch "$1" "$2" "$3" "$t" ${4:-}
      else run_torch "$1" "$2" "$3" "$t" ${4:-}; run_graft "$1" "$2" "$3" "$t" ${4:-}; fi
    done
    [ -n "${ONLY:-}" ] && continue
    run_cli mlp "$t"
    run_cli cnn-small "$t"
    run_torch_cli mlp "$t"
    run_torch_cli cnn-small "$t"
    "$bench" --workload sgemm --threads "$t" --windows 3 >>"$out" || fail "bench_graft sgemm $t"
    if [ "$have_torch" = 1 ]; then
      OPENBLAS_NUM_THREADS=1 "$torch_py" "$root/bench/bench_torch.py" --workload sgemm \
        --threads "$t" --windows 3 >>"$out" || fail "bench_torch sgemm $t"
    fi
  done
  if ((r == 1)); then # PyTorch's default settings, once, for reference
    for w in "${workloads[@]}"; do
      set -- $w
      run_torch "$1" "$2" "$3" 0 ${4:-}
    done
  fi
  echo "run.sh: round $r/$rounds done ($(($(date +%s) - t_start)) s, load $(load))" >&2
done

summarize() {
  if command -v python3 >/dev/null; then python3 "$root/bench/summarize.py" "$out"
  elif [ "$have_torch" = 1 ]; then "$torch_py" "$root/bench/summarize.py" "$out"
  else echo "(no python3 to summarise; raw results:)"; cat "$out"; fi
}
{
  echo "Machine: $cpu;" \
    "load average at the end: $(load); $(($(date +%s) - t_start)) s."
  echo
  summarize
} | tee "$res/table.md"
echo "run.sh: raw results in $out, table in $res/table.md" >&2
