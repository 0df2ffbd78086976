#!/usr/bin/env bash
# Tables with text feature columns: one-hot encoded with the training part's categories (the
# weights keep them as graft.categorical), so eval and predict encode new rows the same way,
# in any column order; a category never seen is zeros with a warning; --categorical error and
# --max-categories refuse, naming the column. Usage: test_cli_categorical.sh path/to/graft.
# To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"

meta() {
    python3 - "$1" "$2" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n]).get("__metadata__", {}).get(sys.argv[2], ""))
PY
}

# buy = yes when the colour is red, or the shape square and the size over 5
python3 - "$T" <<'PY'
import random, sys
random.seed(3)
out = sys.argv[1]
with open(out + "/shop.csv", "w") as f:
    f.write("size,color,shape,buy\n")
    for i in range(400):
        c = random.choice(["red", "green", "blue"])
        s = round(random.uniform(0, 10), 2)
        h = random.choice(["round", "square"])
        f.write("%s,%s,%s,%s\n" % (s, c, h, "yes" if c == "red" or (h == "square" and s > 5) else "no"))
with open(out + "/new.csv", "w") as f:  # other column order, an unseen colour
    f.write("shape,size,color\nround,1.0,red\nsquare,9.0,green\nround,2.0,blue\nround,2.0,purple\n")
with open(out + "/names.csv", "w") as f:
    f.write("id,name,y\n" + "".join("%d,n%d,%d\n" % (i, i, i % 2) for i in range(80)))
PY

TR="--data csv:$T/shop.csv --model mlp --hidden 32 --epochs 40 --lr 0.01 --batch 32 $TH"
run "$G" train $TR --out "$T/shop.safetensors" --json
expect_rc 0 "train on a table with text columns"
json 'd["eval"]["accuracy"] >= 0.9' "one-hot features learn the rule (test accuracy >= 0.9)"
[ "$(meta "$T/shop.safetensors" graft.features)" = '["size","color=blue","color=green","color=red","shape=round","shape=square"]' ] \
    && ok || bad "graft.features: the encoded names col=value in sorted order"
meta "$T/shop.safetensors" graft.categorical | grep -qF '{"column":"color","at":1,"values":["blue","green","red"]}' \
    && ok || bad "graft.categorical records the colour's categories"

run "$G" predict --weights "$T/shop.safetensors" "$T/new.csv" --out "$T/pred.csv"
expect_rc 0 "predict rows with text values, columns in another order"
expect_err "1 text values are not among the categories the model was trained with" "unseen colour warned"
python3 - "$T/pred.csv" <<'PY' && ok || bad "predictions follow the rule (red yes; big square yes; small round blue no)"
import csv, sys
p = [r["class"] for r in csv.DictReader(open(sys.argv[1]))]
sys.exit(0 if p[:3] == ["yes", "yes", "no"] and len(p) == 4 else 1)
PY

run "$G" eval --weights "$T/shop.safetensors" --data "csv:$T/shop.csv" --split 0,0,1 --json
expect_rc 0 "eval encodes the table with the stored categories"
json 'd["accuracy"] >= 0.9' "eval accuracy over the whole table"

# eval on a table whose colours include one the model never saw
sed 's/^\([0-9.]*\),green,/\1,violet,/' "$T/shop.csv" >"$T/violet.csv"
run "$G" eval --weights "$T/shop.safetensors" --data "csv:$T/violet.csv" --split 0,0,1
expect_rc 0 "eval with an unseen category"
expect_err "text values are not among the categories learnt from the training data" "eval warns of unseen categories"

run "$G" train $TR --categorical error
expect_rc 1 "--categorical error refuses a text column"
expect_err "column 2 (color): not a number: 'red' (--categorical auto one-hot encodes text columns)" "error names the column"

run "$G" train --data "csv:$T/names.csv" --epochs 1 $TH
expect_rc 1 "a text column of 80 distinct values"
expect_err "column 2 (name): more than 64 categories" "the category limit names the column"
expect_err "raise --max-categories" "the message says the option"
run "$G" train --data "csv:$T/names.csv" --epochs 1 --max-categories 100 --hidden 8 $TH
expect_rc 0 "--max-categories raises the limit"
printf 'a,b,label\n1,2,x\n3,oops,y\n4,5,x\n6,7,y\n' >"$T/typo.csv"
run "$G" train --data "csv:$T/typo.csv" --epochs 1 $TH
expect_rc 1 "a word in a column of numbers is an error, not a category"
expect_err "typo.csv:3: column 2 (b): not a number: 'oops' (a word in a column of numbers" "names the typo"
run "$G" train $TR --categorical maybe
expect_rc 2 "--categorical: a bad mode"
finish
