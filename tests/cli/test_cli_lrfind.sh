#!/usr/bin/env bash
# graft lr-find: the sweep's rates are the geometric sequence, the suggestions lie within it,
# nothing is written without --report, the report holds the log-scale chart and the
# suggestions, stop_div ends a divergent sweep, and options that do not apply are refused.
# Usage: test_cli_lrfind.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"
TAB="csv:$FX/table.csv"
mkdir -p "$T/cwd"

# ---- the sweep, run from an empty folder: it writes nothing -------------------------------------
(cd "$T/cwd" && "$G" lr-find --data "$TAB" --hidden 16 --batch 8 --num-it 30 --no-stop-div \
    --start-lr 1e-5 --end-lr 1 $TH --json) >"$T/out" 2>"$T/err"
RC=$?
LAST="lr-find --json"
expect_rc 0 "lr-find runs"
json "d['batches'] == 30 and len(d['points']) == 30 and not d['diverged']" "every batch recorded"
json "all(abs(p['lr'] - 1e-5 * (1 / 1e-5) ** (i / 30)) <= 1e-12 * p['lr'] for i, p in enumerate(d['points']))" \
    "the rates are start * (end/start)^(i/num_it)"
json "all(1e-5 <= d['suggestions'][k] <= 1 for k in ('valley', 'steep', 'minimum'))" \
    "the suggestions lie in the swept range"
json "abs(d['suggestions']['minimum_div10'] * 10 - d['suggestions']['minimum']) < 1e-15" \
    "minimum/10"
json "d['suggestions']['valley'] in [p['lr'] for p in d['points']]" "valley is a swept rate"
if [ -z "$(ls -A "$T/cwd")" ]; then ok; else bad "lr-find wrote files: $(ls -A "$T/cwd")"; fi

# ---- text output and the report --------------------------------------------------------------
run "$G" lr-find --data "$TAB" --hidden 16 --batch 8 --num-it 30 $TH --report "$T/rep"
expect_rc 0 "lr-find with --report"
expect_out "valley" "text names the valley suggestion"
expect_out "minimum/10" "text names minimum/10"
expect_file "$T/rep/index.html" "the report"
if grep -q "<svg" "$T/rep/index.html" && grep -q "learning rate (log scale)" "$T/rep/index.html" &&
    grep -q "steep" "$T/rep/index.html"; then ok; else bad "the report lacks the chart or the suggestions"; fi
expect_clean_dir "$T/rep" "report folder"

# ---- stop_div: SGD with momentum up to a rate of 1e5 diverges ------------------------------------
run "$G" lr-find --data "$TAB" --hidden 16 --batch 8 --num-it 100 --optim sgd --momentum 0.9 \
    --start-lr 1e-3 --end-lr 1e5 $TH --json
expect_rc 0 "a divergent sweep"
json "d['diverged'] and d['batches'] < 100" "stop_div ends the sweep early"
json "(lambda L: L[-1] is None or L[-1] > 4 * min(x for x in L if x is not None))([p['loss'] for p in d['points']])" \
    "the last smoothed loss passed 4x the minimum"

# ---- --from: the sweep on finetune's setup (the loaded model, a new head, frozen parts) ----------
run "$G" train --data "$TAB" --hidden 16 --epochs 2 --out "$T/base.safetensors" $TH
expect_rc 0 "a model to start from"
SUM=$(sha256sum "$T/base.safetensors")
mkdir -p "$T/cwd2"
(cd "$T/cwd2" && "$G" lr-find --from "$T/base.safetensors" --data "$TAB" --head new \
    --freeze 'layers.*' --batch 8 --num-it 30 --no-stop-div $TH --json) >"$T/out" 2>"$T/err"
RC=$?
LAST="lr-find --from --freeze"
expect_rc 0 "lr-find --from with a frozen trunk"
expect_err "graft lr-find: from $T/base.safetensors: 2 of 4 tensors loaded" "what loaded"
expect_err "head head: 3 -> 3 classes, new (--head new)" "the head starts new"
expect_err "frozen: layers" "the trunk is frozen as finetune's --freeze says"
json "d['batches'] == 30 and d['model'] == 'mlp'" "the sweep ran on the loaded model"
cp "$T/out" "$T/frozen.json"
[ "$(sha256sum "$T/base.safetensors")" = "$SUM" ] && ok || bad "lr-find --from changed the file"
if [ -z "$(ls -A "$T/cwd2")" ]; then ok; else bad "lr-find --from wrote files: $(ls -A "$T/cwd2")"; fi
run "$G" lr-find --from "$T/base.safetensors" --data "$TAB" --head new --batch 8 --num-it 30 \
    --no-stop-div $TH --json
expect_rc 0 "lr-find --from, everything training"
python3 - "$T/frozen.json" "$T/out" <<'PY' && ok || bad "freezing does not change the sweep"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
sys.exit(0 if [p["raw_loss"] for p in a["points"]] != [p["raw_loss"] for p in b["points"]] else 1)
PY
run "$G" lr-find --data "$TAB" --freeze 'layers.*' $TH
expect_rc 2 "fine-tuning options without --from"
expect_err "need --from" "says why"
run "$G" lr-find --from "$T/base.safetensors" --data "$TAB" --dry-run $TH
expect_rc 2 "--dry-run does not apply to lr-find"

# ---- refused options -------------------------------------------------------------------------
run "$G" lr-find --data "$TAB" --epochs 3 $TH
expect_rc 2 "--epochs is refused"
expect_err "--epochs does not apply" "says why"
run "$G" lr-find --data "$TAB" --start-lr 1 --end-lr 0.1 $TH
expect_rc 2 "end below start is refused"
expect_err "--end-lr" "names the option"
run "$G" lr-find --data "$TAB" --num-it 1 $TH
expect_rc 2 "--num-it 1 is refused"
finish
