#!/usr/bin/env bash
# Installs the Debian packages graft needs when any is missing: scripts/packages.txt (build and
# demo), and with --test also scripts/packages-test.txt (the test suite). Needs root (or sudo)
# and the Debian archive; does nothing when everything is already installed.
#   bash scripts/deps.sh [--test]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lists=("$here/packages.txt")
[ "${1:-}" = "--test" ] && lists+=("$here/packages-test.txt")
mapfile -t pkgs < <(cat "${lists[@]}" | grep -v '^\s*#' | sed '/^\s*$/d')
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "graft: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -q
  $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
