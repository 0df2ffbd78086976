#!/usr/bin/env bash
# ONNX Runtime live on graft's ONNX exports: when GRAFT_ORT_DIR names a folder with
# onnxruntime-node installed (tests/fixtures/gen_onnx_export_ort.sh says how), exports the
# models of tests/fixtures/onnx_export with this build, runs them through ONNX Runtime and
# checks graft's outputs against ONNX Runtime's (test_onnx_export_ref --ort), and the same for
# the text models (test_onnx_export_text --ort). Skipped (77)
# without GRAFT_ORT_DIR or node.
# Usage: test_onnx_export_ort_live.sh BUILD_DIR
set -euo pipefail
build="${1:?usage: $0 BUILD_DIR}"
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/graft-ort-live-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
rc=0
"$src/tests/fixtures/gen_onnx_export_ort.sh" "$build" "$tmp/ort.json" "$tmp/text_ort.json" || rc=$?
if [ "$rc" = 77 ]; then echo "test_onnx_export_ort_live: skipped (no GRAFT_ORT_DIR or node)"; exit 77; fi
[ "$rc" = 0 ] || exit "$rc"
GRAFT_SOURCE_DIR="$src" "$build/tests/test_onnx_export_ref" --ort "$tmp/ort.json"
GRAFT_SOURCE_DIR="$src" "$build/tests/test_onnx_export_text" --ort "$tmp/text_ort.json"
