#!/usr/bin/env bash
# graft eval --predictions: every example's prediction in a CSV file (image paths, CSV rows),
# consistent with the printed misclassified count and the most confidently wrong examples, and
# the top losses in the --report page, with their images as embedded PNGs for image data. Usage: test_cli_predictions.sh path/to/graft.
# To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"
SH="images:$FX/shapes"
run "$G" train --data "$SH" --epochs 1 --out "$T/s.safetensors" $TH -q
expect_rc 0 "train on images"
run "$G" eval --weights "$T/s.safetensors" --data "$SH" --predictions "$T/p.csv" --report "$T/rep" $TH --json
expect_rc 0 "eval --predictions --report"
expect_file "$T/p.csv" "the predictions"
json "d['misclassified'] == sum(1 for l in open('$T/p.csv').read().splitlines()[1:] if l.endswith(',0'))" \
    "the misclassified count is the CSV's wrong rows"
json "len(open('$T/p.csv').read().splitlines()) == d['examples'] + 1" "one row per example"
json "len(d['top_wrong']) == min(10, d['misclassified'])" "the top wrong examples"
json "all(d['top_wrong'][i]['probability'] >= d['top_wrong'][i + 1]['probability'] for i in range(len(d['top_wrong']) - 1))" \
    "most confident first"
if python3 - "$T/p.csv" <<'PY'
import csv, os, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert rows and all(os.path.isfile(r["path"]) for r in rows)
assert all(r["correct"] == str(int(r["true_class"] == r["predicted_class"])) for r in rows)
assert all(os.path.basename(os.path.dirname(r["path"])) == r["true_class"] for r in rows)
PY
then ok; else bad "the CSV's paths, classes or correct column"; fi
if grep -q "top losses" "$T/rep/index.html"; then ok; else bad "the report lacks the top losses"; fi
# the top losses' images, embedded as PNG data: URIs, one per top wrong example, each holding the
# pixels of the file its caption names (the fixtures' PNGs: 8-bit, filter 0 on every row)
cp "$T/out" "$T/eval.json"
if python3 - "$T/rep/index.html" "$T/eval.json" <<'PY'
import base64, html as H, json, re, struct, sys, zlib
html = open(sys.argv[1]).read()
top = json.load(open(sys.argv[2]))["top_wrong"]
figs = re.findall(r'<img width="\d+" height="\d+" alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"/>', html)
assert len(figs) == len(top) > 0, (len(figs), len(top))
def pixels(png):
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(png):
        n, tag = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", png[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(tag + body)
        if tag == b"IHDR": ihdr = struct.unpack(">IIBBBBB", body)
        if tag == b"IDAT": idat += body
        pos += 12 + n
    w, h, depth, kind = ihdr[:4]
    c = {0: 1, 2: 3}[kind]
    raw = zlib.decompress(idat)
    assert depth == 8 and len(raw) == h * (1 + w * c)
    rows = [raw[y * (1 + w * c):(y + 1) * (1 + w * c)] for y in range(h)]
    assert all(r[0] == 0 for r in rows)
    return w, h, c, b"".join(r[1:] for r in rows)
for (alt, b64), t in zip(figs, top):
    alt = H.unescape(alt)
    assert alt.startswith(t["source"] + ": " + t["true"] + " -> " + t["predicted"]), (alt, t)
    thumb = pixels(base64.b64decode(b64))
    assert thumb == pixels(open(t["source"], "rb").read()), t["source"]
PY
then ok; else bad "the report's thumbnails of the top losses"; fi
expect_clean_dir "$T" "no temporary files"

run "$G" eval --weights "$T/s.safetensors" --data "$SH" $TH
expect_out "misclassified" "the text gives the misclassified count"

# a CSV table: the row column names the data row
run "$G" train --data "csv:$FX/table.csv" --epochs 1 --hidden 8 --out "$T/t.safetensors" $TH -q
run "$G" eval --weights "$T/t.safetensors" --data "csv:$FX/table.csv" --predictions "$T/q.csv" \
    --report "$T/rep2" $TH
expect_rc 0 "eval --predictions on a CSV table"
if grep -q "data:image/png" "$T/rep2/index.html"; then bad "a table's report has images"; else ok; fi
if python3 - "$T/q.csv" "$FX/table.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
data = list(csv.DictReader(open(sys.argv[2])))
assert rows and all(data[int(r["row"]) - 1]["species"] == r["true_class"] for r in rows)
PY
then ok; else bad "the row column does not lead to the example's data row"; fi
run "$G" eval --weights "$T/t.safetensors" --data "csv:$FX/table.csv" --predictions "$T/nodir/q.csv" $TH
expect_rc 2 "a --predictions path in a missing folder is refused"
finish
