#!/usr/bin/env bash
# graft export: models trained for one epoch (the zoo's mlp on a table, cnn-small on IDX images,
# a spec with BatchNorm, pooling and Dropout, a spec of most layer types, the zoo's lstm,
# transformer and embedding-bag on a small text file, taking int64 token ids) written as ONNX, and
# `graft run OUT.onnx` giving the outputs `graft run W.safetensors` gives on the same input;
# ONNX's checker (python3-onnx, when installed) on the files; --input-shape; the refusals
# (usage errors exit 2, a model ONNX export does not cover exits 1 naming the layer) with no
# file, temporary or partial, left behind and an existing file unchanged.
# Usage: test_cli_export.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"

if "$G" export "$SRC/tests/fixtures/onnx_export/cnn.safetensors" "$T/probe.onnx" 2>&1 |
    grep -q "without ONNX"; then
    skip "graft was built without ONNX support"
    finish
    exit 77
fi

# x.npy of a shape (float32 values in [-1, 1)), and the largest difference of two .npy files
cat >"$T/npy.py" <<'EOF'
import ast, random, struct, sys
def read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<H", b[8:10])[0]
    h = ast.literal_eval(b[10:10 + n].decode())
    count = 1
    for d in h["shape"]:
        count *= d
    return h["shape"], struct.unpack("<%df" % count, b[10 + n:])
if sys.argv[1] == "normalize":  # x.npy W.safetensors out.npy: (x - mean) / std in float32
    import json
    shape, x = read(sys.argv[2])
    w = open(sys.argv[3], "rb").read()
    meta = json.loads(w[8:8 + struct.unpack("<Q", w[:8])[0]])["__metadata__"]
    norm = json.loads(meta["graft.normalize"])
    f = lambda v: struct.unpack("<f", struct.pack("<f", v))[0]
    per, c = len(x) // shape[0] // shape[1], len(norm["mean"])
    y = [f(f(v - f(norm["mean"][(i // per) % shape[1] if c > 1 else 0])) /
           f(norm["std"][(i // per) % shape[1] if c > 1 else 0])) for i, v in enumerate(x)]
    d = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (tuple(shape),)
    head = d.encode()
    head += b" " * ((64 - (10 + len(head) + 1) % 64) % 64) + b"\n"
    open(sys.argv[4], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head +
                                  struct.pack("<%df" % len(y), *y))
elif sys.argv[1] == "ids":  # ids.npy: int64 token ids [4, 8], rows of 8, 5, 1 and 3 ids, 0 after
    rng = random.Random(9)
    rows = [[rng.randrange(2, 12) if t < n else 0 for t in range(8)] for n in (8, 5, 1, 3)]
    d = "{'descr': '<i8', 'fortran_order': False, 'shape': (4, 8), }"
    head = d.encode()
    head += b" " * ((64 - (10 + len(head) + 1) % 64) % 64) + b"\n"
    open(sys.argv[2], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head +
                                  struct.pack("<32q", *[v for r in rows for v in r]))
elif sys.argv[1] == "write":
    shape = [int(v) for v in sys.argv[3].split(",")]
    count = 1
    for d in shape:
        count *= d
    rng = random.Random(5)
    d = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (tuple(shape),)
    head = d.encode()
    head += b" " * ((64 - (10 + len(head) + 1) % 64) % 64) + b"\n"
    open(sys.argv[2], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head +
                                  struct.pack("<%df" % count, *[rng.uniform(-1, 1) for _ in range(count)]))
else:
    (sa, a), (sb, b) = read(sys.argv[2]), read(sys.argv[3])
    assert sa == sb, (sa, sb)
    print(max(abs(x - y) for x, y in zip(a, b)))
EOF

# export_and_compare NAME W.safetensors SHAPE: export, then both runs on one batch of SHAPE
# (ids: int64 token ids [4, 8] of mixed lengths, padded with 0)
export_and_compare() {
    local name="$1" w="$2" shape="$3"
    run "$G" export "$w" "$T/$name.onnx" --json
    expect_rc 0 "export $name"
    json "d['opset'] == 17 and d['input'] == 'input' and d['bytes'] > 0" "export $name: JSON summary"
    expect_file "$T/$name.onnx" "export $name"
    if [ "$shape" = ids ]; then
        python3 "$T/npy.py" ids "$T/$name-x.npy"
    else
        python3 "$T/npy.py" write "$T/$name-x.npy" "$shape"
    fi
    run "$G" run "$w" --input "$T/$name-x.npy" --out "$T/$name-w"
    expect_rc 0 "run $name weights"
    run "$G" run "$T/$name.onnx" --input "$T/$name-x.npy" --out "$T/$name-o"
    expect_rc 0 "run $name onnx"
    local d
    d="$(python3 "$T/npy.py" diff "$T/$name-w/output.npy" "$T/$name-o/output.npy" 2>&1)"
    if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 1e-5 else 1)" "$d" 2>/dev/null; then
        ok
    else
        bad "export $name: graft run on the .onnx and on the weights differ by $d"
    fi
}

# ---- trained models, exported ----------------------------------------------------------------------
run "$G" train --data "csv:$FX/table.csv" --model mlp --hidden 8 --epochs 1 $TH --quiet --out "$T/table.safetensors"
expect_rc 0 "train mlp on a table"
export_and_compare table "$T/table.safetensors" 5,4

run "$G" train --data "idx:$FX/idx" --model cnn-small --epochs 1 --limit 64 $TH --quiet --out "$T/cnn.safetensors"
expect_rc 0 "train cnn-small"
export_and_compare cnn "$T/cnn.safetensors" 3,1,28,28

cat >"$T/bn.json" <<'EOF'
{"type": "sequential", "children": [
  {"type": "conv2d", "in": 1, "out": 4, "kernel": 3, "stride": 2, "padding": 1},
  {"type": "batchnorm2d", "features": 4}, {"type": "relu"},
  {"type": "maxpool2d", "kernel": 2}, {"type": "dropout", "p": 0.3},
  {"type": "adaptiveavgpool2d", "output": 1}, {"type": "flatten"},
  {"type": "linear", "in": 4, "out": 10}]}
EOF
run "$G" train --data "idx:$FX/idx" --model "$T/bn.json" --epochs 1 --limit 64 $TH --quiet --out "$T/bn.safetensors"
expect_rc 0 "train a spec with BatchNorm"
export_and_compare bn "$T/bn.safetensors" 2,1,28,28
expect_clean_dir "$T" "no temporary files after the exports"

# most exported layer types in one spec (and the ops they become: Where, Erf, LayerNormalization...)
cat >"$T/all.json" <<'EOF'
{"type": "sequential", "children": [
  {"type": "conv2d", "in": 1, "out": 4, "kernel": 3, "padding": 1},
  {"type": "batchnorm2d", "features": 4, "affine": false}, {"type": "leakyrelu", "negative_slope": 0.1},
  {"type": "conv2d", "in": 4, "out": 4, "kernel": 3, "stride": 2, "padding": 2, "dilation": 2,
   "groups": 2, "bias": false},
  {"type": "elu"}, {"type": "maxpool2d", "kernel": 3, "stride": 2, "padding": 1}, {"type": "silu"},
  {"type": "avgpool2d", "kernel": 2}, {"type": "adaptiveavgpool2d", "output": 1},
  {"type": "flatten"}, {"type": "dropout", "p": 0.2}, {"type": "linear", "in": 4, "out": 12},
  {"type": "batchnorm1d", "features": 12}, {"type": "gelu", "approximate": "tanh"},
  {"type": "layernorm", "shape": 12}, {"type": "softplus", "beta": 2, "threshold": 1},
  {"type": "linear", "in": 12, "out": 10}, {"type": "logsoftmax", "dim": 1}]}
EOF
run "$G" train --data "idx:$FX/idx" --model "$T/all.json" --epochs 1 --limit 64 $TH --quiet --out "$T/all.safetensors"
expect_rc 0 "train a spec of many layer types"
export_and_compare all "$T/all.safetensors" 2,1,28,28

# text models (the bundle records the vocabulary): the graph takes int64 token ids [batch, 8],
# graft run gives the weights the same ids (as float32) and both give the same outputs on a
# padded batch of mixed lengths
python3 - "$T/text.jsonl" <<'EOF'
import json, random, sys
r = random.Random(3)
good, bad = "good great fine lovely nice".split(), "bad awful poor ugly dull".split()
filler = "the a movie food was is very really".split()
with open(sys.argv[1], "w") as f:
    for i in range(40):
        words = [r.choice(filler) for _ in range(r.randint(1, 6))] + [r.choice(good if i % 2 else bad)]
        r.shuffle(words)
        f.write(json.dumps({"text": " ".join(words), "label": "pos" if i % 2 else "neg"}) + "\n")
EOF
for model in lstm transformer embedding-bag; do
    run "$G" train --model $model --data "text:$T/text.jsonl" --max-len 8 --epochs 1 $TH --quiet \
        --out "$T/text-$model.safetensors"
    expect_rc 0 "train $model on text"
    export_and_compare "text-$model" "$T/text-$model.safetensors" ids
    run "$G" export "$T/text-$model.safetensors" "$T/text-$model-2.onnx" --json
    json "d['input_dtype'] == 'int64' and d['sample_shape'] == [8]" "export $model: int64 token ids [batch, 8]"
done
run "$G" export "$T/text-lstm.safetensors" "$T/text-lstm-n.onnx" --with-normalize
expect_rc 1 "export --with-normalize of a text model"
expect_no_file "$T/text-lstm-n.onnx" "export --with-normalize of a text model: no file"

# ONNX's own checker (python3-onnx, when installed) accepts every exported file, shapes included
if /usr/bin/python3 -c "import onnx" 2>/dev/null; then
    for f in table cnn bn all text-lstm text-transformer; do
        if /usr/bin/python3 -c "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)" \
            "$T/$f.onnx" 2>"$T/check.err"; then ok; else
            bad "onnx.checker refuses $f.onnx: $(tail -1 "$T/check.err")"
        fi
    done
else
    skip "python3-onnx is not installed: ONNX's checker not run"
fi

# another sample size for a model of convolutions and adaptive pooling
run "$G" export "$T/bn.safetensors" "$T/bn32.onnx" --input-shape 1,32,32
expect_rc 0 "export with --input-shape"
expect_out "[batch, 1, 32, 32]" "export with --input-shape: the input shape"

# --with-normalize: the recorded standardisation becomes the graph's first nodes, so the file
# takes raw rows: on x it gives what the plain export gives on (x - mean) / std
run "$G" export "$T/table.safetensors" "$T/table-raw.onnx" --with-normalize
expect_rc 0 "export --with-normalize"
expect_err "graph's first nodes" "export --with-normalize: says so"
run "$G" inspect "$T/table-raw.onnx"
expect_out "Sub" "export --with-normalize: a Sub node"
expect_out "Div" "export --with-normalize: a Div node"
python3 "$T/npy.py" normalize "$T/table-x.npy" "$T/table.safetensors" "$T/table-xn.npy"
run "$G" run "$T/table-raw.onnx" --input "$T/table-x.npy" --out "$T/table-raw"
expect_rc 0 "run the --with-normalize export on raw rows"
d="$(python3 "$T/npy.py" diff "$T/table-raw/output.npy" "$T/table-o/output.npy" 2>&1)"
[ "$d" = "0.0" ] && bad "export --with-normalize: the same outputs on raw and normalised rows"
run "$G" run "$T/table.onnx" --input "$T/table-xn.npy" --out "$T/table-n"
d="$(python3 "$T/npy.py" diff "$T/table-raw/output.npy" "$T/table-n/output.npy" 2>&1)"
if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 1e-5 else 1)" "$d" 2>/dev/null; then
    ok
else
    bad "export --with-normalize: raw rows through the graph and normalised rows differ by $d"
fi
run "$G" export "$T/cnn.safetensors" "$T/cnn-raw.onnx" --with-normalize
expect_rc 1 "export --with-normalize of a model without a recorded normalisation"
expect_err "records no normalisation" "export --with-normalize without one: says why"
expect_no_file "$T/cnn-raw.onnx" "export --with-normalize without one: no file"

# ---- refusals -------------------------------------------------------------------------------------
run "$G" export "$T/missing.safetensors" "$T/m.onnx"
expect_rc 2 "export of a missing file"
expect_no_file "$T/m.onnx" "export of a missing file"
run "$G" export "$T/cnn.safetensors"
expect_rc 2 "export without the output"
expect_err "OUT.onnx" "export without the output: says what to give"
run "$G" export "$T/cnn.safetensors" "$T/cnn.txt"
expect_rc 2 "export to a name without .onnx"
expect_err "must end in .onnx" "export to a name without .onnx"
run "$G" export "$T/cnn.safetensors" "$T/no/such/dir/cnn.onnx"
expect_rc 2 "export into a missing folder"
run "$G" export "$T/cnn.safetensors" "$T/x.onnx" --input-shape 1,0,28
expect_rc 2 "export with a bad --input-shape"
expect_err "--input-shape" "export with a bad --input-shape: names the option"
run "$G" export "$FX/table.csv" "$T/t.onnx"
expect_rc 1 "export of a file that is not weights"
expect_no_file "$T/t.onnx" "export of a file that is not weights"

# a layer ONNX export does not cover: adaptive pooling to 3x3 of a 7x7 input
cat >"$T/ap.json" <<'EOF'
{"type": "sequential", "children": [
  {"type": "conv2d", "in": 1, "out": 2, "kernel": 3, "stride": 4, "padding": 1},
  {"type": "adaptiveavgpool2d", "output": 3}, {"type": "flatten"},
  {"type": "linear", "in": 18, "out": 10}]}
EOF
run "$G" train --data "idx:$FX/idx" --model "$T/ap.json" --epochs 1 --limit 32 $TH --quiet --out "$T/ap.safetensors"
expect_rc 0 "train a spec with adaptive pooling to 3x3"
run "$G" export "$T/ap.safetensors" "$T/ap.onnx"
expect_rc 1 "export of adaptive pooling ONNX cannot express"
expect_err "module 1 (AdaptiveAvgPool2d)" "export refusal: names the layer"
expect_no_file "$T/ap.onnx" "export refusal: no file"
echo keep >"$T/old.onnx"
run "$G" export "$T/ap.safetensors" "$T/old.onnx"
expect_rc 1 "export refusal over an existing file"
if [ "$(cat "$T/old.onnx")" = keep ]; then ok; else bad "export refusal: the existing file changed"; fi
run "$G" export "$T/ap.safetensors" "$T/ap9.onnx" --input-shape 1,36,36
expect_rc 0 "export of the same model at a size adaptive pooling divides"
expect_clean_dir "$T" "no temporary files after the refusals"

finish
