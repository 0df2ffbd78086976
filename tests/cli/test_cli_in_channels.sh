#!/usr/bin/env bash
# graft finetune --in-channels: a grey (MNIST-style) model fine-tuned on a small RGB image
# folder adapts its first convolution (timm's rule) and says so; an RGB model on grey data sums
# it; --in-channels error refuses. Usage: test_cli_in_channels.sh path/to/graft.
source "$(dirname "$0")/lib.sh"

# a grey base: cnn-small on the 28x28 IDX digits
B="$T/grey.safetensors"
run "$G" train --data "idx:$FX/idx" --model cnn-small --epochs 1 --limit 200 $TH --quiet --out "$B"
expect_rc 0 "train the grey base"

# a small RGB image folder: three classes of 28x28 colour images (a bar whose colour and place
# tell the class), train and test parts
python3 - "$HERE" "$T/rgb" <<'PY'
import os, random, sys
sys.path.insert(0, sys.argv[1])
from make_fixtures import png
rng = random.Random(7)
colours = [(230, 40, 40), (40, 200, 60), (50, 80, 240)]
for split, n in (("train", 8), ("test", 3)):
    for k, name in enumerate(("red", "green", "blue")):
        d = os.path.join(sys.argv[2], split, name)
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            def pix(x, y, k=k):
                if 4 + 7 * k <= y < 9 + 7 * k and 3 <= x < 25:
                    return colours[k]
                v = rng.randint(0, 30)
                return (v, v, v)
            png(os.path.join(d, "%s_%d.png" % (name, i)), 28, 28, 3, pix)
PY
[ -d "$T/rgb/train/red" ] && ok || bad "the RGB folder was not written"

NOTE="features.0.weight: 1 -> 3 input channels, repeated and scaled (timm's rule)"
F="$T/rgb-ft.safetensors"
run "$G" finetune --from "$B" --data "images:$T/rgb" --epochs 2 --lr 0.01 $TH --out "$F"
expect_rc 0 "grey model, RGB data: adapted by default"
expect_err "graft finetune: $NOTE" "the adaptation is reported while loading"
expect_out "input     $NOTE" "and in the summary"
expect_out "new head classifier.3: 10 -> 3 outputs" "the head is replaced for 3 classes"
expect_file "$F" "--out"
run "$G" inspect "$F" --json
json "any(t['name'] == 'features.0.weight' and t['shape'] == [32, 3, 3, 3] for t in d['tensors'])" "the saved model reads 3 channels"
run "$G" predict --weights "$F" --input "$T/rgb/test/green/green_0.png"
expect_rc 0 "the fine-tuned model predicts on an RGB image"

run "$G" finetune --from "$B" --data "images:$T/rgb" --dry-run
expect_rc 0 "--dry-run"
expect_out "input channels: $NOTE" "the plan shows the adaptation"
expect_out "[32, 3, 3, 3] (adapted from file [32, 1, 3, 3])" "the plan shows both shapes"
run "$G" finetune --from "$B" --data "images:$T/rgb" --epochs 1 $TH --json --quiet
expect_rc 0 "--json"
json "d['finetune']['plan']['in_channels'] == {'mode': 'adapt', 'from': 1, 'to': 3, 'adapted': True, 'note': \"$NOTE\"}" "JSON in_channels"

# --in-channels error: the recorded sample shape refuses; so does a plain PyTorch file
run "$G" finetune --from "$B" --data "images:$T/rgb" --in-channels error --epochs 1 $TH
expect_rc 1 "--in-channels error"
expect_err "samples [1, 28, 28]" "names the file's samples"
python3 - "$B" "$T/plain.safetensors" <<'PY'
import json, struct, sys
src = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", src[:8])[0]
head = json.loads(src[8:8 + n])
head.pop("__metadata__", None)  # a plain PyTorch file: no sample shape recorded
b = json.dumps(head).encode()
open(sys.argv[2], "wb").write(struct.pack("<Q", len(b)) + b + src[8 + n:])
PY
run "$G" finetune --from "$T/plain.safetensors" --model cnn-small --data "images:$T/rgb" --in-channels error --epochs 1 $TH --out "$T/never.safetensors"
expect_rc 1 "--in-channels error with a plain file"
expect_err "features.0.weight: 1 -> 3 input channels, not adapted" "says what was not adapted"
expect_no_file "$T/never.safetensors" "nothing written"
run "$G" finetune --from "$T/plain.safetensors" --model cnn-small --data "images:$T/rgb" --epochs 1 $TH --quiet --json
expect_rc 0 "a plain file is adapted too"
json "d['finetune']['plan']['in_channels']['adapted']" "adapted"
run "$G" finetune --from "$B" --data "images:$T/rgb" --in-channels repeat
expect_rc 2 "--in-channels takes adapt or error"
expect_err "--in-channels: 'repeat' is not adapt or error" "names the bad value"

# the reverse: an RGB model on grey digits, summed
R="$T/rgb-base.safetensors"
run "$G" train --data "images:$T/rgb" --model cnn-small --epochs 1 $TH --quiet --out "$R"
expect_rc 0 "train an RGB base"
run "$G" finetune --from "$R" --data "idx:$FX/idx" --limit 100 --epochs 1 $TH
expect_rc 0 "RGB model, grey data"
expect_err "features.0.weight: 3 -> 1 input channels, summed (timm's rule)" "summed"

finish
