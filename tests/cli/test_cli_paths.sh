#!/usr/bin/env bash
# The three ways in, end to end, as a user walks them:
#  1. one's own image folder (3 classes of synthetic RGB PNGs): train on it, fine-tune a
#     Fashion-MNIST model (grey) onto it with RGB input, predict the folder into a CSV, eval
#     with the image settings the weights recorded (eval's accuracy = the CSV's);
#  2. each of scikit-learn's CSV files as installed: train and predict, the regression targets
#     (boston's MEDV, linnerud's) included;
#  3. a torchvision ResNet-18 state_dict: eval, fine-tune, predict, and the fine-tuned file back
#     into torchvision with load_state_dict(strict=True), giving graft's probabilities (when
#     /usr/bin/python3 has torch and torchvision; else that step is skipped and graft writes
#     the ResNet-18 file itself).
# Usage: test_cli_paths.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"

# metadata value of a weights file: meta FILE KEY
meta() {
    python3 - "$1" "$2" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n]).get("__metadata__", {}).get(sys.argv[2], ""))
PY
}

# ---- 1. an image folder of one's own -----------------------------------------------------------
python3 - "$T/photos" <<'PY'
import os, random, struct, sys, zlib
def png(path, w, h, pix):
    raw = bytearray()
    for y in range(h):
        raw.append(0)
        for x in range(w):
            raw.extend(pix(x, y))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))
rng = random.Random(7)
for cls in ("disc", "square", "stripes"):
    os.makedirs(os.path.join(sys.argv[1], cls))
    for i in range(20):
        cx, cy, r, ph = rng.randint(10, 21), rng.randint(10, 21), rng.randint(5, 8), rng.randint(0, 5)
        fg, bg = [rng.randint(120, 255) for _ in range(3)], [rng.randint(0, 60) for _ in range(3)]
        def pix(x, y):
            on = ((x - cx) ** 2 + (y - cy) ** 2 <= r * r if cls == "disc" else
                  abs(x - cx) <= r and abs(y - cy) <= r if cls == "square" else (x + ph) % 6 < 3)
            return fg if on else bg
        png(os.path.join(sys.argv[1], cls, "%s_%02d.png" % (cls, i)), 32, 32, pix)
PY
IMG="--data images:$T/photos --image-size 28 --model cnn-small $TH"
run "$G" train $IMG --epochs 15 --lr 3e-3 --out "$T/own.safetensors" --json
expect_rc 0 "train on the folder"
json 'd["data"]["classes"] == ["disc", "square", "stripes"]' "the folder's classes"
# a Fashion-MNIST model: trained here when the data is installed, else PyTorch's fixture
FM="$SRC/tests/fixtures/pretrained/cnn_small_fmnist04.safetensors"
if have_fashion; then
    run "$G" train --data fashion-mnist --model cnn-small --limit 1000 --epochs 1 $TH --out "$T/fm.safetensors"
    expect_rc 0 "a Fashion-MNIST model"
    FM="$T/fm.safetensors"
fi
run "$G" finetune --from "$FM" $IMG --epochs 30 --lr 3e-3 --out "$T/ft.safetensors" --json
expect_rc 0 "fine-tune the grey Fashion-MNIST model onto RGB photos"
expect_err "features.0.weight: 1 -> 3 input channels" "the first convolution adapted to RGB"
json 'd["finetune"]["head_replaced"] and d["eval"]["accuracy"] > 0.34' "a new head, better than chance"
[ "$(meta "$T/ft.safetensors" graft.image)" = '{"channels":3,"height":28,"width":28}' ] && ok ||
    bad "graft.image: $(meta "$T/ft.safetensors" graft.image)"
run "$G" predict --weights "$T/ft.safetensors" "$T/photos" --out "$T/photos.csv" $TH
expect_rc 0 "predict the folder into a CSV"
run "$G" eval --weights "$T/ft.safetensors" --data "images:$T/photos" --split 0,0,1 $TH --json
expect_rc 0 "eval with the image settings the weights recorded"
expect_err "images read as the weights were trained (graft.image): RGB, resized and centre-cropped to 28x28" "eval says how it reads the images"
python3 - "$T/photos.csv" "$T/out" <<'PY' && ok || bad "predict's CSV and eval disagree"
import csv, json, os, sys
rows = list(csv.DictReader(open(sys.argv[1])))
d = json.load(open(sys.argv[2]))
right = sum(os.path.basename(os.path.dirname(r["input"])) == r["class"] for r in rows)
assert len(rows) == 60 == d["examples"], (len(rows), d["examples"])
assert all(r["class"] in ("disc", "square", "stripes") and 0 < float(r["probability"]) <= 1 for r in rows)
assert abs(right / 60 - d["accuracy"]) < 1e-9, (right, d["accuracy"])
PY

# ---- 2. scikit-learn's CSV files ----------------------------------------------------------------
SK=/usr/lib/python3/dist-packages/sklearn/datasets/data
if [ ! -f "$SK/iris.csv" ]; then
    skip "scikit-learn's data files are not installed (python3-sklearn)"
else
    for f in "$SK"/*.csv; do
        name=$(basename "$f" .csv)
        case "$name" in
            boston_house_prices) opts="--skip-lines 1"; want='d["eval"]["r2"] > 0.6' ;;
            linnerud_exercise) opts="--delimiter ' ' --label-column Jumps --task regression"; want='"r2" in d["eval"]' ;;
            linnerud_physiological) opts="--delimiter ' ' --label-column Weight --task regression"; want='"r2" in d["eval"]' ;;
            *) opts=""; want='d["eval"]["accuracy"] > 0.85' ;;
        esac
        eval "run \"\$G\" train --data \"csv:\$f\" $opts --hidden 32 --epochs 40 --lr 0.01 \$TH --out \"\$T/\$name.safetensors\" --json"
        expect_rc 0 "train on $name.csv"
        json "$want" "$name.csv: $want"
        popts="${opts%%--label-column*}"
        eval "run \"\$G\" predict --weights \"\$T/\$name.safetensors\" \"\$f\" $popts --out \"\$T/\$name.pred.csv\" \$TH"
        expect_rc 0 "predict $name.csv's rows"
        python3 - "$f" "$T/$name.pred.csv" "$(meta "$T/$name.safetensors" graft.task)" <<'PY' && ok || bad "$name.csv: the predictions"
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[2])))
n_data = sum(1 for l in open(sys.argv[1]) if l.strip()) - (2 if "boston" in sys.argv[1] else 1)
assert len(rows) == n_data, (len(rows), n_data)
if sys.argv[3] == "regression":
    assert all(math.isfinite(float(r["prediction"])) for r in rows)
else:  # scikit-learn's layout: the label is the last field, an index into the named classes
    lines = [l.strip().split(",") for l in open(sys.argv[1]) if l.strip()]
    names = lines[0][2:]
    right = sum(names[int(l[-1])] == r["class"] for l, r in zip(lines[1:], rows))
    assert right / len(rows) > 0.85, right / len(rows)
PY
    done
fi

# ---- 3. a torchvision ResNet-18 ----------------------------------------------------------------
if /usr/bin/python3 -c "import torch, torchvision" 2>/dev/null; then
    HAVE_TORCH=1
    /usr/bin/python3 - "$T/r18.safetensors" <<'PY'
import json, struct, sys, torch, torchvision
torch.manual_seed(0)
sd = torchvision.models.resnet18(num_classes=3).state_dict()
head, blobs, off = {}, [], 0
for k, t in sd.items():
    b = t.contiguous().numpy().tobytes()
    head[k] = {"dtype": {torch.float32: "F32", torch.int64: "I64"}[t.dtype], "shape": list(t.shape),
               "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(head).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
PY
    expect_file "$T/r18.safetensors" "torchvision's resnet18 state_dict"
else
    HAVE_TORCH=0
    skip "/usr/bin/python3 cannot import torch and torchvision: graft writes the ResNet-18 file"
    run "$G" train --data "images:$T/photos" --image-size 32 --model resnet18 --epochs 1 $TH --out "$T/r18.safetensors"
    expect_rc 0 "a ResNet-18 file"
fi
R18="--model resnet18 --data images:$T/photos --image-size 32 $TH"
run "$G" eval --weights "$T/r18.safetensors" $R18 --split 0,0,1 --json
expect_rc 0 "eval the ResNet-18 state_dict"
json 'd["examples"] == 60' "every image"
run "$G" finetune --from "$T/r18.safetensors" $R18 --head new --freeze 'layer1.*' --epochs 2 --out "$T/r18ft.safetensors" --json
expect_rc 0 "fine-tune the ResNet-18, layer1 frozen, a new head"
json 'd["finetune"]["loaded"] == 120 and d["finetune"]["head_replaced"]' "every tensor but the head loaded"
expect_err "frozen: bn1, layer1, layer2" "layer1 frozen (and, by the default BatchNorm policy, every BatchNorm)"
run "$G" predict --weights "$T/r18ft.safetensors" "$T/photos" --out "$T/r18.csv" $TH
expect_rc 0 "predict the folder with the fine-tuned ResNet-18"
if [ "$HAVE_TORCH" = 1 ]; then
    /usr/bin/python3 - "$T/r18ft.safetensors" "$T/r18.csv" >"$T/back.txt" 2>&1 <<'PY' && ok || bad "back in PyTorch: $(tail -2 "$T/back.txt")"
import csv, json, struct, sys, zlib
import numpy as np, torch, torchvision
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
head = json.loads(b[8:8 + n])
sd = {}
for k, v in head.items():
    if k != "__metadata__":
        a, e = v["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
        sd[k] = torch.from_numpy(np.frombuffer(b[8 + n + a:8 + n + e], dtype=dt).reshape(v["shape"]).copy())
m = torchvision.models.resnet18(num_classes=3)
m.load_state_dict(sd, strict=True)
m.eval()
classes = json.loads(head["__metadata__"]["graft.classes"])
def rgb(path):  # the test's PNGs: 8-bit RGB, filter 0 on every row, 32 x 32 (no resize needed)
    d, pos, idat = open(path, "rb").read(), 8, b""
    w, h = struct.unpack(">II", d[16:24])
    while pos < len(d):
        ln, tag = struct.unpack(">I4s", d[pos:pos + 8])
        idat += d[pos + 8:pos + 8 + ln] if tag == b"IDAT" else b""
        pos += 12 + ln
    raw = zlib.decompress(idat)
    px = b"".join(raw[y * (3 * w + 1) + 1:(y + 1) * (3 * w + 1)] for y in range(h))
    return torch.from_numpy(np.frombuffer(px, np.uint8).reshape(h, w, 3).astype(np.float32) / 255).permute(2, 0, 1)
rows = list(csv.DictReader(open(sys.argv[2])))
with torch.no_grad():
    p = torch.softmax(m(torch.stack([rgb(r["input"]) for r in rows])), 1)
worst = max(abs(float(q[classes.index(r["class"])]) - float(r["probability"])) for r, q in zip(rows, p))
print("largest difference of PyTorch's probabilities from graft's: %.2g" % worst)
sys.exit(0 if worst < 1e-4 else 1)
PY
else
    skip "no torch: the fine-tuned ResNet-18 is not loaded back into PyTorch"
fi
finish
