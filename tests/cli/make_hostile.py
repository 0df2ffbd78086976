"""Writes the hostile inputs of test_cli_hostile.sh (docs/SECURITY.md) with the standard library
only. Usage:
    python3 make_hostile.py DIR
"""
import gzip
import json
import os
import struct
import sys


def safetensors(path, header, data=b""):
    h = json.dumps(header, separators=(",", ":")).encode() if isinstance(header, dict) else header
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def main(out):
    os.makedirs(out, exist_ok=True)
    # the 97-byte spec: one 10^9-channel convolution (7.8 GB and 34 s before the limits)
    conv = '{"type":"sequential","children":[{"type":"conv2d","in":1,"out":1000000000,"kernel":1}]}'
    with open(os.path.join(out, "conv1e9.json"), "w") as f:
        f.write(conv)
    # the same spec inside a weights file's metadata, as predict reads it
    safetensors(os.path.join(out, "evil_spec.safetensors"),
                {"__metadata__": {"graft.model": "spec", "graft.spec": conv, "graft.input": "[4]",
                                  "graft.classes": '["a","b"]'},
                 "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)
    # 20,000 class names inside one metadata string (the header's scan counts it as one value)
    names = json.dumps(["c%d" % i for i in range(20000)], separators=(",", ":"))
    safetensors(os.path.join(out, "classes.safetensors"),
                {"__metadata__": {"graft.model": "mlp", "graft.input": "[4]", "graft.classes": names},
                 "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)
    # a header of 7 MB of empty arrays (about 2.4 million JSON values)
    body = b'{"x":[' + b"[]," * ((7 << 20) // 3) + b"[]]}"
    safetensors(os.path.join(out, "nodes.safetensors"), body)
    # an escaped NUL in a tensor name ("a\u0000b" read as "a")
    safetensors(os.path.join(out, "nul.safetensors"),
                b'{"a\\u0000b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4)
    # an IDX gzip bomb: 1,000 images of 1000x1000 declared, 1 MB of zeros inside
    d = os.path.join(out, "bomb")
    os.makedirs(d, exist_ok=True)
    with gzip.open(os.path.join(d, "images.gz"), "wb", 9) as f:
        f.write(struct.pack(">IIII", 0x803, 1000, 1000, 1000))
        f.write(b"\0" * (1 << 20))
    with gzip.open(os.path.join(d, "labels.gz"), "wb") as f:
        f.write(struct.pack(">II", 0x801, 1000) + b"\0" * 1000)
    # a CSV of 20,000 classes (one row each)
    with open(os.path.join(out, "classes.csv"), "w") as f:
        f.write("x,label\n")
        for i in range(20000):
            f.write("%d,c%d\n" % (i, i))


if __name__ == "__main__":
    main(sys.argv[1])
