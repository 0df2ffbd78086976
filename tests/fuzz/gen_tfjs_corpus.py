#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_tfjs.c into tests/fuzz/corpus/tfjs/: the tiny model
of tests/fixtures/tfjs/tiny whole and cut, a Sequential model without an InputLayer, and the
malformed inputs the importer must refuse cheaply: shards shorter than the manifest, an unknown
dtype, quantisation without min and scale, huge shapes, an unsupported layer, a shared layer, a
forward reference, deep nesting. Each input is a 4-byte little-endian length, the model.json
text, then the weights. Standard library only.
Usage: gen_tfjs_corpus.py [OUT_DIR]"""
import copy
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "..", "fixtures", "tfjs", "tiny")
SHARDS = ["group1-shard1of2.bin", "group1-shard2of2.bin", "group2-shard1of1.bin"]


def pack(doc, weights):
    text = doc if isinstance(doc, bytes) else json.dumps(doc, separators=(",", ":")).encode()
    return struct.pack("<I", len(text)) + text + weights


def layer(doc, name):
    return next(l for l in doc["modelTopology"]["config"]["layers"] if l["name"] == name)


def weight(doc, name):
    return next(w for g in doc["weightsManifest"] for w in g["weights"] if w["name"] == name)


def edits():
    """(file name, function changing a copy of the tiny model.json)"""
    def dtype(d): weight(d, "pw/kernel")["dtype"] = "float64"
    def qmin(d): del weight(d, "c1/kernel")["quantization"]["min"]
    def huge(d): weight(d, "pw/kernel")["shape"] = [1, 1, 1000000, 1000000]
    def lstm(d): layer(d, "act")["class_name"] = "LSTM"
    def shared(d):
        ib = layer(d, "act")["inbound_nodes"]
        ib.append(copy.deepcopy(ib[0]))
    def forward(d): layer(d, "zp")["inbound_nodes"][0][0][0] = "out"
    def kernel(d): layer(d, "c1")["config"]["kernel_size"] = [3000, 3000]
    def big_input(d): layer(d, "img")["config"]["batch_input_shape"] = [None, 100000, 100000, 3]
    def cut(d): d["modelTopology"]["config"]["output_layers"] = [["cat", 0, 0]]
    return [("bad_dtype", dtype), ("bad_quant_min", qmin), ("bad_huge_shape", huge),
            ("bad_class", lstm), ("bad_shared", shared),
            ("bad_forward_ref", forward), ("bad_kernel", kernel), ("bad_big_input", big_input),
            ("ok_output_cat", cut)]


def sequential():
    doc = {"format": "layers-model", "modelTopology": {"class_name": "Sequential", "config": {
        "name": "seq", "layers": [
            {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "relu",
                                               "use_bias": True, "batch_input_shape": [None, 3]}},
            {"class_name": "Dense", "config": {"name": "e", "units": 1, "activation": "sigmoid",
                                               "use_bias": False}}]}},
        "weightsManifest": [{"paths": ["w.bin"], "weights": [
            {"name": "d/kernel", "shape": [3, 2], "dtype": "float32"},
            {"name": "d/bias", "shape": [2], "dtype": "float32"},
            {"name": "e/kernel", "shape": [2, 1], "dtype": "float32"}]}]}
    return pack(doc, struct.pack("<11f", *[0.5, -1, 0.25, 2, -0.5, 1, 0.1, -0.2, 1.5, -1, 0]))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus", "tfjs")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(TINY, "model.json"), "rb") as f:
        text = f.read()
    weights = b"".join(open(os.path.join(TINY, s), "rb").read() for s in SHARDS)
    base = json.loads(text)
    files = {"ok_tiny": pack(text, weights), "ok_sequential": sequential(),
             "bad_short_weights": pack(text, weights[:-7]), "bad_no_weights": pack(text, b""),
             "bad_not_json": pack(b"{\"modelTopology\": [", b""),
             "bad_deep": pack(b"[" * 5000, b"")}
    for name, edit in edits():
        d = copy.deepcopy(base)
        edit(d)
        files[name] = pack(d, weights)
    for name, data in sorted(files.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(files)} inputs to {out}")


if __name__ == "__main__":
    main()
