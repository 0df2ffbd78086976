#!/usr/bin/env python3
"""Tagged text from real sentences, for sequence labelling: restoring punctuation.

Each sentence of the sentiment data (scripts/fetch-text.sh: the UCI sentences of Amazon, IMDB
and Yelp) becomes its words, lower-cased and without punctuation, each tagged with the
punctuation that followed it in the original:
    PERIOD (. or ...), COMMA (, ; :), QUESTION (?), EXCLAIM (!), O (none).
"Great phone, works well!" -> tokens [great, phone, works, well],
                              tags   [O, COMMA, O, EXCLAIM].
A model sees only the lower-cased words and has to put the punctuation back: a self-supervised
task with labels that were really written. Words are runs of letters and digits (graft's word
tokeniser splits the same way, so each token is one token to it); other characters only set the
tag of the word before them.

    python3 scripts/make-tags.py [SRC_DIR] [OUT_DIR] [--test 0.2] [--seed 0]
      SRC_DIR  default ~/.cache/graft/text/sentiment (its amazon.jsonl, imdb.jsonl, yelp.jsonl)
      OUT_DIR  default SRC_DIR/../tags (~/.cache/graft/text/tags)
writes OUT_DIR/punct-train.jsonl and OUT_DIR/punct-test.jsonl ({"tokens", "tags", "source"}
per line; a seeded shuffle, the last --test of it for testing) and prints the counts and the
baseline: the most frequent tag of each word in the training file (unseen words: the most
frequent tag overall), scored on the test file (accuracy over tokens, and macro F1 over the
tags, as graft eval reports them).

    python3 scripts/make-tags.py --baseline TRAIN.jsonl TEST.jsonl
scores the baseline only."""
import json
import os
import random
import sys
from collections import Counter, defaultdict

TAG_OF = {".": "PERIOD", ",": "COMMA", ";": "COMMA", ":": "COMMA", "?": "QUESTION",
          "!": "EXCLAIM"}
STRONGER = ["O", "COMMA", "PERIOD", "EXCLAIM", "QUESTION"]  # the mark that wins in "?!" or ".,"


def words_and_tags(text):
    toks, tags, word = [], [], []
    for ch in text + " ":
        if ch.isalnum():
            word.append(ch)
            continue
        if word:
            toks.append("".join(word).lower())
            tags.append("O")
            word = []
        tag = TAG_OF.get(ch)
        if tag and tags and STRONGER.index(tag) > STRONGER.index(tags[-1]):
            tags[-1] = tag
    return toks, tags


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def tag_f1(gold, pred, c):
    tp = sum(1 for g, p in zip(gold, pred) if g == c and p == c)
    fp = sum(1 for g, p in zip(gold, pred) if g != c and p == c)
    fn = sum(1 for g, p in zip(gold, pred) if g == c and p != c)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return 2 * prec * rec / (prec + rec) if prec + rec else 0.0


def macro_f1(gold, pred):
    """sklearn's f1_score(average="macro") over the tags in either list (as graft eval)."""
    labels = sorted(set(gold) | set(pred))
    return sum(tag_f1(gold, pred, c) for c in labels) / len(labels)


def baseline(train, test):
    by_word, overall = defaultdict(Counter), Counter()
    for r in train:
        for w, t in zip(r["tokens"], r["tags"]):
            by_word[w][t] += 1
            overall[t] += 1
    # most frequent, ties to the tag first in byte order (deterministic)
    best = {w: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for w, c in by_word.items()}
    top = min(overall.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    gold = [t for r in test for t in r["tags"]]
    pred = [best.get(w, top) for r in test for w in r["tokens"]]
    acc = sum(g == p for g, p in zip(gold, pred)) / len(gold)
    only = [top] * len(gold)
    print("baseline, most frequent tag per word: accuracy %.4f, macro F1 %.4f (%d test tokens)"
          % (acc, macro_f1(gold, pred), len(gold)))
    print("  F1 per tag: " + ", ".join("%s %.3f" % (c, tag_f1(gold, pred, c))
                                       for c in sorted(set(gold))))
    print("every token %s: accuracy %.4f, macro F1 %.4f"
          % (top, sum(g == top for g in gold) / len(gold), macro_f1(gold, only)))


def main(argv):
    if argv[:1] == ["--baseline"]:
        baseline(read_jsonl(argv[1]), read_jsonl(argv[2]))
        return 0
    test_frac, seed, pos = 0.2, 0, []
    i = 0
    while i < len(argv):
        if argv[i] == "--test":
            test_frac = float(argv[i + 1])
            i += 2
        elif argv[i] == "--seed":
            seed = int(argv[i + 1])
            i += 2
        else:
            pos.append(argv[i])
            i += 1
    src = pos[0] if pos else os.path.expanduser("~/.cache/graft/text/sentiment")
    out = pos[1] if len(pos) > 1 else os.path.join(os.path.dirname(os.path.abspath(src)), "tags")
    recs = []
    for name in ("amazon", "imdb", "yelp"):
        for r in read_jsonl(os.path.join(src, name + ".jsonl")):
            toks, tags = words_and_tags(r["text"])
            if toks:
                recs.append({"tokens": toks, "tags": tags, "source": name})
    random.Random(seed).shuffle(recs)
    n_test = int(round(len(recs) * test_frac))
    train, test = recs[:len(recs) - n_test], recs[len(recs) - n_test:]
    os.makedirs(out, exist_ok=True)
    for part, rows in (("train", train), ("test", test)):
        with open(os.path.join(out, "punct-%s.jsonl" % part), "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts = Counter(t for r in recs for t in r["tags"])
    print("%s: %d training and %d test sentences, %d tokens: %s"
          % (out, len(train), len(test), sum(counts.values()),
             ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
    baseline(train, test)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
