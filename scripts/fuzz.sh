#!/usr/bin/env bash
# Builds the fuzz targets with clang + libFuzzer + ASan/UBSan (build-fuzz/) and runs each for
# SECONDS (default 60) from its seed corpus in tests/fuzz/corpus/NAME.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${1:-60}"; shift || true
command -v clang >/dev/null || { echo "fuzz.sh: clang is not installed (apt-get install clang)" >&2; exit 2; }
CC=clang cmake -S "$root" -B "$root/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGRAFT_SANITIZE=ON -DGRAFT_FUZZ=ON >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$root"/tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
cmake --build "$root/build-fuzz" -j"$(nproc)" --target "${targets[@]}"
# libvorbis's own leak on truncated Ogg streams (upstream) is not graft's: tests/lsan_audio.supp
export LSAN_OPTIONS="suppressions=$root/tests/lsan_audio.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
for t in "${targets[@]}"; do
  corpus="$root/tests/fuzz/corpus/${t#fuzz_}"
  work="$(mktemp -d)"
  echo "== $t for ${secs}s"
  log="$work.log"
  if ! "$root/build-fuzz/tests/$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
      -print_final_stats=1 "$work" "$corpus" >"$log" 2>&1; then
    tail -60 "$log"
    echo "$t: the fuzzer found a failure (input saved as crash-* in $(pwd))" >&2
    exit 1
  fi
  grep -E "stat::(number_of_executed_units|peak_rss_mb)" "$log" | sed "s/^/$t: /"
  rm -rf "$work" "$log"
done
