#!/usr/bin/env bash
# Installs what is missing, builds graft in Release and runs the whole test suite.
#   bash scripts/test.sh              the full suite (ctest)
#   bash scripts/test.sh --sanitize   the suite built with ASan + UBSan (build-asan/)
#   bash scripts/test.sh --valgrind   memcheck --leak-check=full over the unit tests
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/deps.sh" --test
bash "$root/scripts/fetch-mnist.sh"
bash "$root/scripts/fetch-mobilenet.sh"
bash "$root/scripts/fetch-openwakeword.sh"
bash "$root/scripts/fetch-silero-vad.sh"
mode="${1:-}"
jobs="$(nproc)"
case "$mode" in
  "")
    bash "$root/scripts/build.sh"
    cd "$root/build" && ctest --output-on-failure -j"$jobs"
    ;;
  --sanitize)
    GRAFT_BUILD_DIR="$root/build-asan" bash "$root/scripts/build.sh" -DGRAFT_SANITIZE=ON
    cd "$root/build-asan"
    # the end-to-end training runs in the plain suite; here the reduced set keeps CI short
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --output-on-failure -j"$jobs" -LE "slow|coretype"
    ;;
  --valgrind)
    bash "$root/scripts/build.sh"
    cd "$root/build" && ctest --output-on-failure -L valgrind
    ;;
  *)
    echo "usage: bash scripts/test.sh [--sanitize|--valgrind]" >&2
    exit 2
    ;;
esac
