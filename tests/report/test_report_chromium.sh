#!/bin/sh
# Renders the sample HTML report (test_report --write DIR) in headless Chromium, offline, and
# checks that the charts are really drawn: the page parses as XML, the rendered DOM holds the
# expected svg / rect / polyline / path / circle / table elements and no external reference, and
# the screenshots are not blank and show the series colours, the bars and the heat map.
# Usage: test_report_chromium.sh PATH/TO/test_report. Exits 77 (skip) without chromium or python3.
# Debian: apt-get install chromium. Keep the screenshots with GRAFT_REPORT_KEEP=DIR.
set -u
TEST_REPORT=${1:?usage: test_report_chromium.sh PATH/TO/test_report}

CHROME=""
for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null 2>&1; then CHROME=$(command -v "$c"); break; fi
done
if [ -z "$CHROME" ]; then echo "skip: no chromium (Debian: apt-get install chromium)"; exit 77; fi
PY=$(command -v python3 || true)
if [ -z "$PY" ]; then echo "skip: no python3"; exit 77; fi

WORK=$(mktemp -d /tmp/graft_report_chromium.XXXXXX) || exit 1
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; [ -f "$WORK/chrome.log" ] && tail -n 20 "$WORK/chrome.log"; exit 1; }

"$TEST_REPORT" --write "$WORK/report" || fail "test_report --write failed"
PAGE="$WORK/report/index.html"
[ -s "$PAGE" ] || fail "no $PAGE"

# A fresh profile per run; no network, no updates, no sync, no first-run UI.
chrome() {
    timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-default-apps --disable-extensions --hide-scrollbars \
        --user-data-dir="$WORK/profile" "$@" "file://$PAGE" 2>>"$WORK/chrome.log"
}

chrome --dump-dom >"$WORK/dom.html" || fail "chromium --dump-dom failed"
chrome --screenshot="$WORK/top.png" --window-size=1200,1600 >/dev/null || fail "screenshot failed"
chrome --screenshot="$WORK/full.png" --window-size=1200,4200 >/dev/null || fail "screenshot failed"
if [ -n "${GRAFT_REPORT_KEEP:-}" ]; then
    mkdir -p "$GRAFT_REPORT_KEEP" && cp "$WORK"/*.png "$PAGE" "$GRAFT_REPORT_KEEP"/
fi

"$PY" - "$PAGE" "$WORK/dom.html" "$WORK/top.png" "$WORK/full.png" <<'EOF' || fail "checks failed"
import re, struct, sys, zlib
import xml.etree.ElementTree as ET

page, dom_path, top, full = sys.argv[1:5]
bad = []
def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond: bad.append(what)

# 1. the file is well-formed XML (the report promises it) and has no script or external resource
root = ET.parse(page).getroot()
check(root.tag == "html", "page parses as XML with an <html> root")
src = open(page, encoding="utf-8").read()
check("<script" not in src, "no <script>")
check(not re.search(r"(src|href)=", src), "no src= or href= attribute")
check(re.findall(r"https?://[^\"' ]*", src) == ["http://www.w3.org/2000/svg"] * src.count("<svg"),
      "the only URL is the SVG namespace")

# 2. the DOM Chromium built holds the charts and the table
dom = open(dom_path, encoding="utf-8").read()
def n(tag): return len(re.findall(r"<%s[\s>/]" % tag, dom))
counts = {t: n(t) for t in ("svg", "rect", "polyline", "path", "circle", "text", "table", "tr", "th", "td", "h2", "h3")}
print("dom elements:", counts)
check(counts["svg"] == 5, "5 svg charts")
check(counts["polyline"] == 20, "20 polylines (8 + 8 curves, 4 accuracy lines)")
check(counts["rect"] >= 25 + 8, "heat-map cells and bars drawn as rects")
check(counts["path"] >= 5, "axes and error bars as paths")
check(counts["circle"] >= 20, "markers")
check(counts["text"] >= 100, "axis, legend and cell labels")
check(counts["table"] == 1 and counts["tr"] == 5 and counts["th"] == 6 and counts["td"] == 24, "the comparison table")
check("no data" not in dom, "every chart has data")

# 3. the screenshots: decode the PNG with zlib (no PIL needed)
def decode(path):
    d = open(path, "rb").read()
    assert d[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(d):
        ln, = struct.unpack(">I", d[pos:pos + 4]); typ = d[pos + 4:pos + 8]; body = d[pos + 8:pos + 8 + ln]
        pos += 12 + ln
        if typ == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, "unexpected PNG format"
            bpp = 3 if ctype == 2 else 4
        elif typ == b"IDAT":
            idat += body
    raw, stride, prev, rows, i = zlib.decompress(idat), w * bpp, bytearray(w * bpp), [], 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
        if f == 1:
            for x in range(bpp, stride): line[x] = (line[x] + line[x - bpp]) & 255
        elif f == 2:
            for x in range(stride): line[x] = (line[x] + prev[x]) & 255
        elif f == 3:
            for x in range(stride): line[x] = (line[x] + ((line[x - bpp] if x >= bpp else 0) + prev[x]) // 2) & 255
        elif f == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0; b = prev[x]; c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line)); prev = line
    hist = {}
    for r in rows:
        for x in range(0, stride, bpp):
            px = r[x:x + 3]; hist[px] = hist.get(px, 0) + 1
    return w, h, hist

def near(hist, rgb, tol=24):
    return sum(c for px, c in hist.items() if max(abs(px[k] - rgb[k]) for k in range(3)) <= tol)

def hexrgb(s): return tuple(int(s[i:i + 2], 16) for i in (1, 3, 5))

for path, label in ((top, "1200x1600"), (full, "full page")):
    w, h, hist = decode(path)
    background = max(hist.values())
    print("%s: %dx%d, %d distinct colours, most common covers %.0f%%" % (label, w, h, len(hist), 100.0 * background / (w * h)))
    check(len(hist) >= 200, label + ": not blank (>= 200 distinct colours)")
    check(background < 0.8 * w * h, label + ": no single colour covers 80% of the page")
    # blue also underlines the header (4 x 1200 pixels)
    for name, colour, least in (("blue", "#1f77b4", 4800 + 1500), ("orange", "#ff7f0e", 1500),
                                ("green", "#2ca02c", 1500), ("red", "#d62728", 1500)):
        k = near(hist, hexrgb(colour))
        check(k >= least, "%s: %s series drawn (%d pixels)" % (label, name, k))
    k = near(hist, hexrgb("#1f2d3d"), 6)
    check(k >= 20000, "%s: header band drawn (%d pixels)" % (label, k))
w, h, hist = decode(full)
k = near(hist, hexrgb("#08306b"), 30)
check(k >= 5 * 2000, "full page: heat-map diagonal drawn (%d dark-blue pixels)" % k)
k = near(hist, hexrgb("#2ca02c"), 4)
check(k >= 10000, "full page: solid bars drawn (%d green pixels)" % k)
sys.exit(1 if bad else 0)
EOF
echo "report rendered and checked in headless $($CHROME --version 2>/dev/null)"
exit 0
