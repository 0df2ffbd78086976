#!/usr/bin/env bash
# Tables with a regression target: scikit-learn's diabetes data (a numeric target with many
# distinct values) is taken as regression with a warning, trained with MSE, L1 and Huber losses
# on a standardised target, evaluated (MAE, RMSE, R²) and predicted in the target's units; R²
# of eval equals scikit-learn's r2_score formula over predict's CSV. Usage: test_cli_tabular.sh
# path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"

SK=/usr/lib/python3/dist-packages/sklearn/datasets/data
if [ ! -f "$SK/diabetes_data_raw.csv.gz" ] || [ ! -f "$SK/diabetes_target.csv.gz" ]; then
    skip "scikit-learn's diabetes files are not installed"
    finish
    exit $?
fi

# metadata value of a weights file: meta FILE KEY
meta() {
    python3 - "$1" "$2" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n]).get("__metadata__", {}).get(sys.argv[2], ""))
PY
}

# the two gzip files as one CSV with a header: the first 350 rows to train on, the rest to test
python3 - "$SK" "$T" <<'PY'
import gzip, sys
d, out = sys.argv[1], sys.argv[2]
X = [l.split() for l in gzip.open(d + "/diabetes_data_raw.csv.gz", "rt") if l.strip()]
y = [l.strip() for l in gzip.open(d + "/diabetes_target.csv.gz", "rt") if l.strip()]
names = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "progression"]
for fn, rows in (("train.csv", range(0, 350)), ("test.csv", range(350, len(X)))):
    with open(out + "/" + fn, "w") as f:
        f.write(",".join(names) + "\n")
        for i in rows:
            f.write(",".join(X[i]) + ",%g\n" % float(y[i]))
PY

# r2 FILE: scikit-learn's r2_score of predict's CSV against test.csv's target
r2_of() {
    python3 - "$1" "$T/test.csv" <<'PY'
import csv, sys
p = [float(r["prediction"]) for r in csv.DictReader(open(sys.argv[1]))]
y = [float(r["progression"]) for r in csv.DictReader(open(sys.argv[2]))]
m = sum(y) / len(y)
print(1 - sum((a - b) ** 2 for a, b in zip(y, p)) / sum((a - m) ** 2 for a in y))
PY
}

TR="--data csv:$T/train.csv --split 0.85,0.15,0 --hidden 32 --epochs 20 --lr 0.01 $TH"

# ---- found as regression, with a warning ----------------------------------------------------------
run "$G" train $TR --out "$T/d.safetensors" --json
expect_rc 0 "train on diabetes"
expect_err "taken as a regression target (--task classification reads it as classes)" "auto regression warning"
json 'd["data"]["target"] == "progression" and d["data"]["classes"] == []' "regression data in JSON"
json 'd["eval"]["r2"] > 0.2 and d["eval"]["rmse"] > 10' "validation R2 and RMSE in the target's units"
[ "$(meta "$T/d.safetensors" graft.task)" = regression ] && ok || bad "graft.task not recorded"
meta "$T/d.safetensors" graft.target >"$T/target.json"
python3 -c "
import json, sys
t = json.load(open(sys.argv[1]))
sys.exit(0 if t['name'] == 'progression' and 140 < t['mean'] < 165 and 60 < t['std'] < 90 else 1)" \
    "$T/target.json" && ok || bad "graft.target: $(cat "$T/target.json")"

# ---- predict writes values in the target's units; eval's R2 is r2_score of them -------------------
run "$G" predict --weights "$T/d.safetensors" --input "$T/test.csv" --out "$T/p.csv"
expect_rc 0 "predict --out"
expect_out "progression: mean" "regression summary"
head -1 "$T/p.csv" | grep -qx "input,row,prediction" && ok || bad "predictions CSV header: $(head -1 "$T/p.csv")"
R2=$(r2_of "$T/p.csv")
run "$G" eval --weights "$T/d.safetensors" --data "csv:$T/test.csv" --split 0,0,1 --json $TH
expect_rc 0 "eval on the held-out rows"
json "d['examples'] == 92 and d['r2'] > 0.2 and abs(d['r2'] - $R2) < 1e-4" "eval R2 = r2_score of predict ($R2)"
json 'abs(d["mse"] - d["rmse"] ** 2) < 1e-3 * d["mse"] and d["mae"] <= d["rmse"]' "MSE, MAE, RMSE"
run "$G" predict --weights "$T/d.safetensors" --input "$T/test.csv"
expect_rc 0 "predict to stdout"
expect_out "progression" "the predicted value is named by the target"
run "$G" predict --weights "$T/d.safetensors" --input "$T/test.csv" --task classification
expect_rc 2 "--task classification against regression weights"
expect_err "trained for regression" "names the weights' task"

# ---- finetune onto a regression target: from a regression model, and from a classifier ----------
# (train.csv's first 200 rows as the new task; the classifier learns progression above 140)
python3 - "$T" <<'PY2'
import csv, sys
rows = list(csv.reader(open(sys.argv[1] + "/train.csv")))
with open(sys.argv[1] + "/few.csv", "w") as f:
    f.write(",".join(rows[0]) + "\n" + "".join(",".join(r) + "\n" for r in rows[1:201]))
with open(sys.argv[1] + "/high.csv", "w") as f:
    f.write(",".join(rows[0][:-1]) + ",high\n")
    f.write("".join(",".join(r[:-1]) + ",%s\n" % ("yes" if float(r[-1]) > 140 else "no") for r in rows[1:]))
PY2
FT="--data csv:$T/few.csv --split 0.8,0,0.2 --epochs 15 --lr 0.01 $TH"
run "$G" finetune --from "$T/d.safetensors" $FT --loss huber --out "$T/ft.safetensors" --json
expect_rc 0 "finetune a regression model onto a regression target"
json 'd["finetune"]["head_replaced"] and "r2" in d["eval"] and "mae" in d["eval"] and "rmse" in d["eval"]' \
    "a new head and MAE, RMSE, R2"
json 'd["eval"]["r2"] > 0.1 and d["eval"]["rmse"] > 10' "R2 and RMSE in the target's units"
expect_err "head head: 1 -> 1 output, new (a regression target)" "the summary says the head"
[ "$(meta "$T/ft.safetensors" graft.task)" = regression ] && ok || bad "finetune records graft.task"
run "$G" predict --weights "$T/ft.safetensors" --input "$T/test.csv" --out "$T/pft.csv"
expect_rc 0 "predict with the fine-tuned regression model"
python3 -c "import sys; sys.exit(0 if $(r2_of "$T/pft.csv") > 0.1 else 1)" && ok || bad "fine-tuned R2 on the held-out rows"
run "$G" train --data "csv:$T/high.csv" --hidden 32 --epochs 10 --lr 0.01 --out "$T/cls.safetensors" $TH
expect_rc 0 "a classifier of the same features"
run "$G" finetune --from "$T/cls.safetensors" $FT --out "$T/ft2.safetensors" --json
expect_rc 0 "finetune a classifier onto a regression target"
json 'd["finetune"]["head_replaced"] and d["eval"]["r2"] > 0.1' "new 1-output head, R2"
expect_err "head head: 2 -> 1 output, new (a regression target)" "2 classes -> 1 output"
run "$G" finetune --from "$T/cls.safetensors" $FT --head keep
expect_rc 2 "--head keep: 2 outputs for a regression target"
expect_err "has a regression target: outputs 1" "says why"
run "$G" finetune --from "$T/d.safetensors" --data "csv:$T/high.csv" --epochs 2 --class-weight balanced --json $TH
expect_rc 0 "finetune a regression model onto classes, with class weights"
json 'd["finetune"]["head_replaced"] and "accuracy" in d["eval"]' "classes again"

# ---- other losses and no target scaling ---------------------------------------------------------
for L in l1 "huber --huber-delta 0.5"; do
    # shellcheck disable=SC2086
    run "$G" train $TR --loss $L --json
    expect_rc 0 "train --loss $L"
    json 'd["eval"]["r2"] > 0.2' "R2 with --loss $L"
done
run "$G" train $TR --target-scale none --epochs 5 --out "$T/raw.safetensors"
expect_rc 0 "train --target-scale none"
meta "$T/raw.safetensors" graft.target | grep -q '"mean":0,"std":1' && ok || bad "unscaled target: $(meta "$T/raw.safetensors" graft.target)"

# ---- --task overrides the guess -------------------------------------------------------------------
run "$G" train $TR --task classification --epochs 1 --json
expect_rc 0 "train --task classification"
json 'len(d["data"]["classes"]) > 20 and "r2" not in d["eval"]' "classes from the numeric column"
run "$G" train --data "csv:$T/train.csv" --task nonsense
expect_rc 2 "--task nonsense"
run "$G" train --data "$FX/idx" --task regression --epochs 1
expect_rc 2 "--task regression on images"
run "$G" train $TR --classes 0-3
expect_rc 1 "--classes with a regression target"
expect_err "regression target" "says why"

# ---- --class-weight balanced: scikit-learn's n_samples / (n_classes * count) -----------------------
python3 - "$SK/iris.csv" "$T/imb.csv" <<'PY2'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))[1:]
keep, seen = {"0": 50, "1": 20, "2": 10}, {}
with open(sys.argv[2], "w") as f:
    f.write("a,b,c,d,species\n")
    for r in rows:
        seen[r[4]] = seen.get(r[4], 0) + 1
        if seen[r[4]] <= keep[r[4]]:
            f.write(",".join(r) + "\n")
PY2
IMB="--data csv:$T/imb.csv --split 1,0,0 --epochs 3 --json $TH"
run "$G" train $IMB --class-weight balanced
expect_rc 0 "train --class-weight balanced"
expect_err "class weights (balanced): 0 0.533333, 1 1.33333, 2 2.66667" "80 / (3 * count)"
python3 -c "import json; print(json.load(open('$T/out'))['training']['history'][-1]['train_loss'])" >"$T/weighted"
run "$G" train $IMB
python3 -c "import json; print(json.load(open('$T/out'))['training']['history'][-1]['train_loss'])" >"$T/plain"
if cmp -s "$T/weighted" "$T/plain"; then bad "class weights change nothing"; else ok; fi
run "$G" train $TR --class-weight balanced
expect_rc 2 "--class-weight with a regression target"

# ---- missing values: an error naming line and column, or dropped, or filled -----------------------
python3 - "$SK/iris.csv" "$T" <<'PY2'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))[1:]
tokens = ["", "NA", "NaN", "?"]
with open(sys.argv[2] + "/miss.csv", "w") as f:
    f.write("a,b,c,d,species\n")
    for i, r in enumerate(rows):
        if i % 7 == 3:
            r[i % 4] = tokens[i % 4]
        f.write(",".join(r) + "\n")
with open(sys.argv[2] + "/miss_rows.csv", "w") as f:
    f.write("a,b,c,d\n5.1,,1.4,0.2\n")
PY2
MS="--data csv:$T/miss.csv --split 1,0,0 --epochs 2 $TH"
run "$G" train $MS
expect_rc 1 "missing values are an error by default"
expect_err "miss.csv:5: column 4 (d): missing value '?'" "names the line and column"
expect_err "--missing drop, mean, median or zero" "names the option"
run "$G" train $MS --missing drop --json
expect_rc 0 "--missing drop"
json 'd["data"]["train"] == 129' "21 rows left out"
expect_err "left out 21 rows" "says how many"
for how in mean median; do
    run "$G" train $MS --missing $how --out "$T/$how.safetensors"
    expect_rc 0 "--missing $how"
    meta "$T/$how.safetensors" graft.missing >"$T/missing.json"
    python3 - "$T/miss.csv" "$T/missing.json" $how <<'PY2' && ok || bad "graft.missing ($how): $(cat "$T/missing.json")"
import csv, json, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
m = json.load(open(sys.argv[2]))
f = statistics.mean if sys.argv[3] == "mean" else statistics.median
want = [f([float(r[c]) for r in rows if r[c] not in ("", "NA", "NaN", "?")]) for c in "abcd"]
sys.exit(0 if m["strategy"] == sys.argv[3] and all(abs(a - b) < 1e-5 for a, b in zip(m["values"], want)) else 1)
PY2
done
# predict fills a missing feature with the stored value: the same as writing it out
B=$(python3 -c "import json; print(json.load(open('$T/missing.json'))['values'][1])")
printf 'a,b,c,d\n5.1,%s,1.4,0.2\n' "$B" >"$T/filled_rows.csv"
run "$G" predict --weights "$T/median.safetensors" --input "$T/miss_rows.csv" --top-k 3
expect_rc 0 "predict a row with a missing feature"
sed 1d "$T/out" >"$T/p_missing"
run "$G" predict --weights "$T/median.safetensors" --input "$T/filled_rows.csv" --top-k 3
sed 1d "$T/out" >"$T/p_filled"
cmp -s "$T/p_missing" "$T/p_filled" && ok || bad "a missing feature is not predicted as its fill value"
run "$G" eval --weights "$T/median.safetensors" --data "csv:$T/miss.csv" --split 0,0,1 $TH
expect_rc 0 "eval fills missing values as the weights say"

finish
