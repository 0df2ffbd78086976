#!/usr/bin/env bash
# Installs what is missing, builds graft in Release and runs the main job on real data.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/deps.sh"
bash "$root/scripts/fetch-mnist.sh"
bash "$root/scripts/build.sh"
exec "$root/build/graft" demo "$@"
