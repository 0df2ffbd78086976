#!/usr/bin/env python3
"""Scores keyword spotting: `graft predict --stream --json` output against the truth.csv of
scripts/make-speech-stream.sh. A detection hits a spoken word when it names the word and its
centre ((start + end) / 2) lies within --tolerance seconds of the word's centre; each word is hit
at most once (the nearest detection). Words not hit are misses; detections that hit nothing
are false alarms (a wrong word, or a word where none was spoken).

    python3 scripts/score-kws.py truth.csv detections.json [--tolerance 0.5] [--exact]

prints the counts (and with --exact exits 1 unless every word is hit, in order, and nothing
else is detected)."""
import argparse
import csv
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("truth")
    ap.add_argument("detections")
    ap.add_argument("--tolerance", type=float, default=0.5)
    ap.add_argument("--exact", action="store_true")
    a = ap.parse_args()
    truth = {}
    for r in csv.DictReader(open(a.truth)):
        truth.setdefault(r["file"], []).append(
            (r["word"], (float(r["start"]) + float(r["end"])) / 2))
    words = sum(len(v) for v in truth.values())
    hits = false_alarms = 0
    seconds = 0.0
    in_order = True
    for rec in json.load(open(a.detections))["recordings"]:
        want = truth.get(os.path.basename(rec["input"]), [])
        seconds += rec["seconds"]
        used = [False] * len(want)
        got = []
        for d in rec["detections"]:
            c = (d["start"] + d["end"]) / 2
            best = None
            for i, (w, t) in enumerate(want):
                if not used[i] and w == d["class"] and abs(t - c) <= a.tolerance:
                    if best is None or abs(t - c) < abs(want[best][1] - c):
                        best = i
            if best is None:
                false_alarms += 1
            else:
                used[best] = True
                hits += 1
                got.append(best)
        in_order = in_order and got == sorted(got)
    print("words %d  detected %d (%.1f%%)  missed %d  false alarms %d (%.1f per minute of %.0f s)"
          % (words, hits, 100.0 * hits / max(words, 1), words - hits, false_alarms,
             60.0 * false_alarms / max(seconds, 1e-9), seconds))
    if a.exact and not (hits == words and false_alarms == 0 and in_order):
        sys.exit(1)


if __name__ == "__main__":
    main()
