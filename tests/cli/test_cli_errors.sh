#!/usr/bin/env bash
# Bad usage and bad input: each gives a clear message on stderr (naming the option, file, layer
# or shapes), exit status 2 (the command line) or 1 (the run), nothing on stdout and no partial
# output file. Usage: test_cli_errors.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"

OUT="$T/out.safetensors"
fails() { # STATUS DESCRIPTION TEXT_IN_STDERR -- command...
    local want=$1 desc=$2 text=$3
    shift 4
    run "$@"
    expect_rc "$want" "$desc"
    expect_err "$text" "$desc"
    expect_no_out "$desc"
}

# ---- the command line --------------------------------------------------------------------------
fails 2 "unknown command" "unknown command 'trian'" -- "$G" trian
expect_err "did you mean 'train'?" "a misspelt command gets the nearest one"
fails 2 "unknown command, far from any" "unknown command 'frobnicate'" -- "$G" frobnicate
if grep -q "did you mean" "$T/err"; then bad "no hint for a word near no command"; else ok; fi
fails 2 "misspelt option" "did you mean '--epochs'?" -- "$G" train --epocs 3
fails 2 "misspelt option, underscore" "did you mean '--per-class'?" -- "$G" finetune --per_class 3
fails 2 "unknown option" "unknown option '--epoch-count'" -- "$G" train --epoch-count 3
expect_err "Try 'graft train --help'" "unknown option hints at --help"
fails 2 "option of another command" "'--weights' does not apply to graft train" -- "$G" train --weights x
fails 2 "missing value" "needs a value" -- "$G" train --data
fails 2 "bad number" "--epochs: 'three' is not" -- "$G" train --data "idx:$FX/idx" --epochs three
fails 2 "negative number" "--lr: '-1' is not" -- "$G" train --data "idx:$FX/idx" --lr -1
fails 2 "bad --split" "--split" -- "$G" train --data "idx:$FX/idx" --split 0.5,0.6,0.1
fails 2 "unknown optimizer" "unknown optimizer 'adamm'" -- "$G" train --data "idx:$FX/idx" --optim adamm
fails 2 "unknown schedule" "unknown schedule" -- "$G" train --data "idx:$FX/idx" --sched linear
fails 2 "unknown augmentation" "unknown augmentation 'rotate'" -- "$G" train --data "idx:$FX/idx" --augment=crop,rotate
fails 2 "bad --bn-policy" "--bn-policy" -- "$G" finetune --from x --bn-policy frozen
fails 2 "no --data" "--data is required" -- "$G" train
fails 2 "stray argument" "unexpected argument 'extra'" -- "$G" train --data "idx:$FX/idx" extra
fails 2 "unknown model" "unknown model 'cnn-big'" -- "$G" train --data "idx:$FX/idx" --model cnn-big
fails 2 "zoo conv on a table" "needs images" -- "$G" train --data "csv:$FX/table.csv" --model cnn-small
fails 2 "--momentum with adam" "--momentum applies to" -- "$G" train --data "idx:$FX/idx" --momentum 0.9 --epochs 1
fails 2 "csv options on images" "apply to csv" -- "$G" train --data "idx:$FX/idx" --label-column 3
fails 2 "augment on a table" "--augment applies to image data" -- "$G" train --data "csv:$FX/table.csv" --augment

# ---- files that are not there ------------------------------------------------------------------
fails 2 "missing weights file" "--weights $T/nope.safetensors: No such file" -- "$G" eval --weights "$T/nope.safetensors" --data "idx:$FX/idx"
fails 2 "missing --from" "--from $T/nope.safetensors" -- "$G" finetune --from "$T/nope.safetensors" --data "idx:$FX/idx"
fails 2 "missing csv" "No such file" -- "$G" train --data "csv:$T/nope.csv"
fails 2 "missing spec file" "no such file" -- "$G" train --data "idx:$FX/idx" --model "$T/nope.json"
fails 2 "missing predict input" "--input $T/none.png" -- "$G" predict --weights "$FX/../fx/idx/../table.csv" --input "$T/none.png"
fails 2 "inspect a missing file" "No such file" -- "$G" inspect "$T/nope.safetensors"

# ---- data specs that match nothing ----------------------------------------------------------------
fails 2 "unknown data spec" "unknown data spec 'cifar10'" -- "$G" train --data cifar10
fails 2 "a file without a kind" "did you mean csv:" -- "$G" train --data "$FX/table.csv"
fails 2 "images: a missing folder" "is not a folder" -- "$G" train --data "images:$T/nothing"
mkdir -p "$T/empty"
fails 1 "images: a folder without class folders" "$T/empty" -- "$G" train --data "images:$T/empty" --epochs 1
fails 1 "--classes naming no class" "classes 3-12:" -- "$G" train --data "idx:$FX/idx" --classes 3-12 --epochs 1
fails 1 "--per-class larger than available" "per_class 500:" -- "$G" train --data "idx:$FX/idx" --per-class 500 --epochs 1
run "$G" train --data "csv:$FX/table.csv" --label-column nosuchcolumn --epochs 1
expect_rc 1 "csv: unknown label column"
expect_err "nosuchcolumn" "csv names the column"
printf 'a,b,label\n1,2,x\n3,oops,y\n' >"$T/broken.csv"
run "$G" train --data "csv:$T/broken.csv" --epochs 1
expect_rc 1 "csv: a non-numeric feature"
expect_err "broken.csv:3:" "csv error names the line"

# ---- model specs -----------------------------------------------------------------------------------
cat >"$T/unknown_layer.json" <<'JSON'
{"type": "sequential", "children": [{"type": "flatten"}, {"type": "Conv3d", "out": 4}]}
JSON
fails 1 "spec: unknown layer type" 'unknown layer type "Conv3d"' -- "$G" train --data "idx:$FX/idx" --model "$T/unknown_layer.json"
expect_err "at 1" "spec error names the layer path"
cat >"$T/unknown_key.json" <<'JSON'
{"type": "sequential", "children": [
  {"type": "conv2d", "in": 1, "out": 4, "kernel": 3, "paddin": 1}, {"type": "flatten"},
  {"type": "linear", "out": 10}]}
JSON
fails 1 "spec: unknown key" 'unknown key "paddin"' -- "$G" train --data "idx:$FX/idx" --model "$T/unknown_key.json"
expect_err "at 0 (conv2d)" "unknown key names the layer"
cat >"$T/no_connect.json" <<'JSON'
{"type": "container", "children": {
  "features": {"type": "sequential", "children": [
    {"type": "conv2d", "in": 1, "out": 8, "kernel": 3, "padding": 1},
    {"type": "maxpool2d", "kernel": 2}]},
  "classifier": {"type": "sequential", "children": [
    {"type": "flatten"}, {"type": "linear", "in": 6272, "out": 10}]}}}
JSON
fails 1 "spec: shapes that cannot connect" "shapes do not connect at classifier.1 (linear)" -- "$G" train --data "idx:$FX/idx" --model "$T/no_connect.json" --out "$OUT"
expect_err "[2, 1568]" "the message has the incoming shape"
expect_err "6272" "the message has the expected shape"
expect_no_file "$OUT" "no output after a spec error"
cat >"$T/wrong_out.json" <<'JSON'
{"type": "sequential", "children": [{"type": "flatten"}, {"type": "linear", "out": 7}]}
JSON
fails 1 "spec: outputs != classes" "7 outputs but the data has 10 classes" -- "$G" train --data "idx:$FX/idx" --model "$T/wrong_out.json"
printf '{"type": "linear", "in": 4,, "out": 2}' >"$T/badjson.json"
fails 1 "spec: invalid JSON" "not valid JSON (line 1" -- "$G" inspect "$T/badjson.json"

# ---- outputs that cannot be written ------------------------------------------------------------
fails 2 "--out in a missing folder" "the folder $T/missing does not exist" -- "$G" train --data "idx:$FX/idx" --epochs 1 --out "$T/missing/w.safetensors"
fails 2 "--out is a folder" "is a folder" -- "$G" train --data "idx:$FX/idx" --epochs 1 --out "$T"
fails 2 "--report under a missing folder" "does not exist" -- "$G" train --data "idx:$FX/idx" --epochs 1 --report "$T/missing/deeper/rep"
fails 2 "--checkpoint-dir under a file" "does not exist" -- "$G" train --data "idx:$FX/idx" --epochs 1 --checkpoint-dir "$FX/table.csv/ck"
if [ "$(id -u)" != 0 ]; then
    mkdir -p "$T/ro"
    chmod 555 "$T/ro"
    fails 2 "--out in a read-only folder" "cannot write into $T/ro" -- "$G" train --data "idx:$FX/idx" --epochs 1 --out "$T/ro/w.safetensors"
    expect_no_file "$T/ro/w.safetensors" "nothing written in the read-only folder"
    expect_clean_dir "$T/ro" "no temporary file in the read-only folder"
    chmod 755 "$T/ro"
else
    # root may write anywhere on disk: /proc refuses new files even to root
    run "$G" train --data "idx:$FX/idx" --epochs 1 $TH --out /proc/graft-test.safetensors
    if [ "$RC" = 1 ] || [ "$RC" = 2 ]; then ok; else bad "--out in /proc: exit $RC"; fi
    expect_err "/proc/graft-test.safetensors" "the message names the output"
    expect_no_file /proc/graft-test.safetensors "no output in /proc"
fi

# ---- weights that do not fit -------------------------------------------------------------------
W="$T/w.safetensors"
run "$G" train --data "idx:$FX/idx" --model mlp --hidden 8 --epochs 1 $TH --quiet --out "$W"
expect_rc 0 "train a small model"
fails 1 "eval with another model" "does not fit the model" -- "$G" eval --weights "$W" --model lenet --data "idx:$FX/idx"
fails 1 "eval on fewer classes" "trained on 10 classes" -- "$G" eval --weights "$W" --data "idx:$FX/idx" --classes 0-4
fails 1 "eval on other shapes" "trained on samples [1, 28, 28]" -- "$G" eval --weights "$W" --data "images:$FX/shapes" --image-size 12
fails 1 "predict a CSV with an image model" "the model takes images" -- "$G" predict --weights "$W" --input "$FX/rows.csv"
fails 1 "not a safetensors file" "$FX/table.csv" -- "$G" eval --weights "$FX/table.csv" --data "idx:$FX/idx"
head -c 100 "$W" >"$T/truncated.safetensors"
fails 1 "a truncated weights file" "truncated.safetensors" -- "$G" inspect "$T/truncated.safetensors"
fails 2 "finetune: a freeze pattern that matches nothing" 'pattern "featurez.*"' -- "$G" finetune --from "$W" --data "idx:$FX/idx" --freeze 'featurez.*' --epochs 1 --out "$OUT"
expect_no_file "$OUT" "no output after a bad pattern"
fails 2 "finetune: --delta without --out" "--delta needs --out" -- "$G" finetune --from "$W" --data "idx:$FX/idx" --delta
fails 2 "finetune: --head keep with other classes" "--head keep" -- "$G" finetune --from "$W" --data "idx:$FX/idx" --classes 0-4 --head keep
fails 2 "finetune: --head N not the classes" "--head 7" -- "$G" finetune --from "$W" --data "idx:$FX/idx" --head 7
fails 2 "finetune: lora options without a rank" "--lora-rank" -- "$G" finetune --from "$W" --data "idx:$FX/idx" --lora-alpha 4
fails 2 "--checkpoint-every without a folder" "--checkpoint-every needs" -- "$G" train --data "idx:$FX/idx" --checkpoint-every 5
fails 1 "--resume from an empty folder" "$T/empty" -- "$G" train --data "idx:$FX/idx" --epochs 1 --resume "$T/empty"
fails 2 "predict without input" "no input" -- "$G" predict --weights "$W"
fails 2 "multitask with one task" "at least two" -- "$G" multitask --task a=idx:x
fails 2 "compare with a spec model" "compare takes a zoo model" -- "$G" compare --model "$T/no_connect.json" --data "idx:$FX/idx"
expect_clean_dir "$T" "no temporary files after the failures"

# ---- hostile image files and folders ------------------------------------------------------------
# (tests/test_data_images_hostile.c has the library's side; here: what the command line shows)
mkdir -p "$T/hostile/a" "$T/hostile/b"
cp "$FX/shapes/train/left/left_00.png" "$T/hostile/a/"
printf 'P5 2 2 555\n\001' >"$T/hostile/b/short.pgm"
fails 1 "images: a 16-bit PGM with one data byte" "short.pgm: PGM declares 2x2 pixels (8 bytes" -- "$G" train --data "images:$T/hostile" --epochs 1
fails 1 "images: --max-image-pixels" "declares 12x12 = 144 pixels, more than the limit of 100" -- "$G" train --data "images:$FX/shapes" --max-image-pixels 100 --epochs 1
fails 1 "predict: --max-image-pixels" "seven.png: PNG declares 28x28 = 784 pixels, more than the limit of 700" -- "$G" predict --weights "$W" --max-image-pixels 700 "$FX/seven.png"
printf 'GIF89a\377\377\377\377\000\000\000' >"$T/huge.gif"
fails 1 "predict: a GIF declaring 65535x65535" "GIF is not supported" -- "$G" predict --weights "$W" "$T/huge.gif"
fails 2 "--max-image-pixels on a table" "--max-image-pixels applies to images" -- "$G" train --data "csv:$FX/table.csv" --max-image-pixels 100
fails 2 "--follow-links on a table" "--follow-links applies to images: and audio: data" -- "$G" train --data "csv:$FX/table.csv" --follow-links
fails 2 "bad --max-image-pixels" "--max-image-pixels: '0' is not" -- "$G" train --data "images:$FX/shapes" --max-image-pixels 0
# a self link and a link to the parent in a class folder: each file once, and a note
mkdir -p "$T/loops/left" "$T/loops/right"
cp "$FX"/shapes/train/left/left_0[0-3].png "$T/loops/left/"
cp "$FX"/shapes/train/right/right_0[0-3].png "$T/loops/right/"
ln -s . "$T/loops/left/self"
ln -s .. "$T/loops/left/up"
run timeout 60 "$G" train --data "images:$T/loops" --model mlp --hidden 8 --epochs 1 --split 0.5,0,0.5 $TH --json
expect_rc 0 "images: a folder with link loops trains"
json "d['data']['train'] + d['data']['test'] == 8" "each image of a looping folder counted once"
expect_err "note: images:$T/loops: skipped 2 symbolic links inside the folder" "the skipped links are reported"
# a class folder leading outside the data folder: refused unless --follow-links
mkdir -p "$T/linked"
ln -s "$T/loops/right" "$T/linked/right"
cp -r "$T/loops/left" "$T/linked/left"
fails 1 "images: a class folder linking outside" "--follow-links" -- "$G" train --data "images:$T/linked" --epochs 1
run "$G" train --data "images:$T/linked" --follow-links --model mlp --hidden 8 --epochs 1 --split 0.5,0,0.5 $TH --json
expect_rc 0 "images: --follow-links reads a class folder outside"
json "d['data']['train'] + d['data']['test'] == 8" "--follow-links: each image once"

finish
