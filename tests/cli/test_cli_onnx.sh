#!/usr/bin/env bash
# graft run and graft inspect on ONNX models: the corpus's mlp.onnx (values checked against a
# direct computation), a conformance case of libonnx-testdata (outputs checked against its
# expected .pb, when the package is installed), cuts, and the refusals (usage errors exit 2,
# bad files 1).
# Usage: test_cli_onnx.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"

if ! "$G" run --help >/dev/null 2>&1; then bad "graft run --help"; finish; exit; fi
C="$SRC/tests/fuzz/corpus/onnx"
if ! "$G" inspect "$C/mlp.onnx" >/dev/null 2>&1 && "$G" inspect "$C/mlp.onnx" 2>&1 | grep -q "without ONNX"; then
    skip "graft was built without ONNX support"
    finish
    exit 77
fi

# .npy files written and read with the standard library (numpy is not needed)
cat >"$T/npy.py" <<'EOF'
import ast, struct, sys
def read(path):
    b = open(path, "rb").read()
    assert b[:6] == b"\x93NUMPY", "magic"
    n = struct.unpack("<H", b[8:10])[0]
    h = ast.literal_eval(b[10:10 + n].decode())
    fmt = {"<f4": "f", "<i8": "q"}[h["descr"]]
    count = 1
    for d in h["shape"]:
        count *= d
    return h["shape"], list(struct.unpack("<%d%s" % (count, fmt), b[10 + n:]))
def write(path, shape, values):
    d = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (tuple(shape),)
    head = d.encode()
    head += b" " * ((64 - (10 + len(head) + 1) % 64) % 64) + b"\n"
    open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head +
                           struct.pack("<%df" % len(values), *values))
def pb_floats(path):
    """dims and float values of a TensorProto (raw_data or float_data)."""
    b, i, dims, vals = open(path, "rb").read(), 0, [], []
    def varint():
        nonlocal i
        r = s = 0
        while True:
            c = b[i]; i += 1; r |= (c & 0x7f) << s; s += 7
            if c < 0x80: return r
    while i < len(b):
        k = varint(); f, w = k >> 3, k & 7
        if w == 0:
            v = varint()
            if f == 1: dims.append(v)
        elif w == 5: i += 4
        elif w == 1: i += 8
        else:
            n = varint(); chunk = b[i:i + n]; i += n
            if f == 9 or f == 4: vals = list(struct.unpack("<%df" % (n // 4), chunk))
            elif f == 1:
                j = 0
                while j < len(chunk):
                    r = s = 0
                    while True:
                        c = chunk[j]; j += 1; r |= (c & 0x7f) << s; s += 7
                        if c < 0x80: break
                    dims.append(r)
    return dims, vals
EOF
py() { python3 -c "import sys; sys.path.insert(0, '$T'); from npy import *; $1"; }

# ---- the corpus MLP: x [5, 4] -> y [5, 3] --------------------------------------------------------
py "write('$T/x.npy', [5, 4], [((i * 37 % 17) - 8) / 5.0 for i in range(20)])"
run "$G" run "$C/mlp.onnx" --input "x=$T/x.npy" --out "$T/res" $TH
expect_rc 0 "run mlp.onnx"
expect_out "$T/res/y.npy" "run names the written file"
expect_file "$T/res/y.npy" "run writes y.npy"
if py "
shape, y = read('$T/res/y.npy')
x = [((i * 37 % 17) - 8) / 5.0 for i in range(20)]
w1 = lambda i, j: ((i * 7 + j * 3) % 11 - 5) / 10.0
w2 = lambda i, j: ((i * 5 + j) % 9 - 4) / 8.0
b2 = [0.1, -0.2, 0.3]
ok = list(shape) == [5, 3]
for r in range(5):
    h = [max(0.0, (i - 4) / 20.0 + sum(w1(i, j) * x[r * 4 + j] for j in range(4))) for i in range(8)]
    for o in range(3):
        want = b2[o] + sum(w2(o, i) * h[i] for i in range(8))
        ok &= abs(y[r * 3 + o] - want) <= 1e-5 + 1e-4 * abs(want)
sys.exit(0 if ok else 1)"; then ok; else bad "run mlp.onnx: y.npy differs from the direct computation"; fi
# a bare file for a model of one input; JSON summary
run "$G" run "$C/mlp.onnx" --input "$T/x.npy" --json $TH
expect_rc 0 "run with --input FILE"
json "d['outputs'][0]['name'] == 'y' and d['outputs'][0]['shape'] == [5, 3] and d['outputs'][0]['file'] is None" "run --json"
# the cut: the ReLU's output, 8 features per row
run "$G" run "$C/mlp.onnx" --input "x=$T/x.npy" --cut r --out "$T/cut" $TH
expect_rc 0 "run --cut r"
if py "shape, v = read('$T/cut/r.npy'); sys.exit(0 if list(shape) == [5, 8] and min(v) >= 0 else 1)"; then ok
else bad "run --cut r: r.npy is not [5, 8] of ReLU outputs"; fi

# ---- inspect --------------------------------------------------------------------------------------
run "$G" inspect "$C/mlp.onnx"
expect_rc 0 "inspect mlp.onnx"
for s in "opset 13" "batch, 4" "Gemm" "parameters: 67" "cut points" "graft runs every node"; do
    expect_out "$s" "inspect mlp.onnx shows '$s'"
done
run "$G" inspect "$C/mlp.onnx" --json
expect_rc 0 "inspect --json"
json "d['opset'] == 13 and d['inputs'][0]['shape'] == ['batch', 4] and d['parameters'] == 67 and [c['tensor'] for c in d['cut_points']] == ['h', 'r', 'y']" "inspect JSON"
run "$G" inspect "$C/bad_unsupported_ops.onnx"
expect_rc 0 "inspect a model with unsupported ops"
expect_out "graft cannot run 3 nodes" "inspect lists every unsupported node"
expect_out "StringNormalizer" "inspect names StringNormalizer"

# ---- refusals -------------------------------------------------------------------------------------
run "$G" run "$C/mlp.onnx" $TH
expect_rc 2 "run without --input"
run "$G" run "$C/mlp.onnx" --input "z=$T/x.npy" $TH
expect_rc 2 "run with an input name the model lacks"
expect_err "is not the model's input (it takes x)" "the message names the inputs"
run "$G" run "$C/mlp.onnx" --input "x=$T/missing.npy" $TH
expect_rc 2 "run with a missing file"
run "$G" run "$C/mlp.onnx" --input "x=$T/x.npy" --cut nowhere $TH
expect_rc 1 "run with a cut the model lacks"
expect_err "cut 'nowhere'" "the cut is named"
run "$G" run "$C/bad_unsupported_ops.onnx" --input "x=$T/x.npy" $TH
expect_rc 1 "run a model with unsupported ops"
expect_err "unsupported op" "unsupported op message"
expect_err "opset 13" "the message names the opset"
run "$G" run "$C/bad_truncated.onnx" --input "x=$T/x.npy" $TH
expect_rc 1 "run a truncated model"
run "$G" run "$C/mlp.onnx" --input "x=$SRC/tests/fuzz/corpus/npy/bad_short.npy" $TH
expect_rc 1 "run on a truncated .npy"
expect_err "the shape needs 6 elements" "the .npy's size is checked"
run "$G" run "$T/x.npy" --input "x=$T/x.npy" $TH
expect_rc 2 "run a file that is not a model"
run "$G" run "$C/mlp.onnx" --input "x=$T/x.npy" --out "$T/no/such/dir" $TH
expect_rc 2 "run --out into a missing folder"

# ---- a conformance case: outputs against ONNX's expected ones --------------------------------------
D=/usr/share/libonnx-testdata/data/node/test_gemm_all_attributes
if [ -f "$D/model.onnx" ]; then
    S="$D/test_data_set_0"
    run "$G" run "$D/model.onnx" --input "a=$S/input_0.pb" --input "b=$S/input_1.pb" \
        --input "c=$S/input_2.pb" --out "$T/gemm" $TH
    expect_rc 0 "run test_gemm_all_attributes"
    if py "
shape, got = read('$T/gemm/y.npy')
dims, want = pb_floats('$S/output_0.pb')
ok = list(shape) == dims and len(got) == len(want)
ok = ok and all(abs(g - w) <= 1e-7 + 1e-3 * abs(w) for g, w in zip(got, want))
sys.exit(0 if ok else 1)"; then ok; else bad "test_gemm_all_attributes: y.npy differs from output_0.pb"; fi
    run "$G" inspect "$D/model.onnx"
    expect_rc 0 "inspect test_gemm_all_attributes"
    expect_out "Gemm" "inspect names the op"
else
    skip "libonnx-testdata is not installed"
fi
# the If nodes of runtime: graft run on Silero VAD (scripts/fetch-silero-vad.sh) with the sample
# rate, an int64 scalar, from a .npy; the two rates take different branches
V="${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}/silero-vad/silero_vad_legacy.onnx"
if [ -f "$V" ]; then
    py "
import math, struct
def npy(path, descr, shape, fmt, vals):
    head = (\"{'descr': '%s', 'fortran_order': False, 'shape': %s, }\" % (descr, shape)).encode()
    head += b' ' * ((64 - (10 + len(head) + 1) % 64) % 64) + b'\\n'
    open(path, 'wb').write(b'\\x93NUMPY\\x01\\x00' + struct.pack('<H', len(head)) + head +
                           struct.pack('<%d%s' % (len(vals), fmt), *vals))
npy('$T/chunk.npy', '<f4', '(1, 512)', 'f', [0.3 * math.sin(i * 0.11) for i in range(512)])
npy('$T/sr16.npy', '<i8', '()', 'q', [16000])
npy('$T/sr8.npy', '<i8', '()', 'q', [8000])
npy('$T/state.npy', '<f4', '(2, 1, 64)', 'f', [0.0] * 128)" || bad "writing Silero VAD's inputs"
    for r in 16 8; do
        run "$G" run "$V" --input "input=$T/chunk.npy" --input "sr=$T/sr$r.npy" \
            --input "h=$T/state.npy" --input "c=$T/state.npy" --out "$T/vad$r" $TH
        expect_rc 0 "Silero VAD at ${r} kHz"
        expect_file "$T/vad$r/output.npy" "Silero VAD at ${r} kHz"
        expect_file "$T/vad$r/hn.npy" "Silero VAD at ${r} kHz"
    done
    if py "
s16, a = read('$T/vad16/output.npy')
s8, b = read('$T/vad8/output.npy')
ok = list(s16) == [1, 1] and list(s8) == [1, 1] and 0 < a[0] < 1 and 0 < b[0] < 1 and a != b
sys.exit(0 if ok else 1)"; then ok; else bad "Silero VAD: the two rates' outputs"; fi
    run "$G" run "$V" --input "input=$T/chunk.npy" --input "sr=$T/chunk.npy" \
        --input "h=$T/state.npy" --input "c=$T/state.npy" --out "$T/vadbad" $TH
    expect_rc 1 "Silero VAD with a float rate"
    expect_err "input 'sr'" "the wrong type is named"
else
    skip "Silero VAD is not fetched (scripts/fetch-silero-vad.sh)"
fi
finish
