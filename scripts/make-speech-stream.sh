#!/usr/bin/env bash
# Synthesises long recordings of spoken words at known times for keyword spotting
# (`graft predict --stream`): each recording is silence, then words spoken by espeak-ng voices
# (trimmed of their own silence with sox), each followed by a gap, all under a faint white
# noise; truth.csv gives every word's true start and end (from the construction: the lengths of
# the pieces concatenated).
#   bash scripts/make-speech-stream.sh DIR [--recordings N] [--words "one two three"]
#        [--voices "en-gb+m3 en-us+f2"] [--gap-lo S] [--gap-hi S] [--count N] [--seed N]
# writes DIR/stream-K.wav (16 kHz mono 16-bit) and DIR/truth.csv (file,word,start,end).
# Defaults: 4 recordings of 12 words each, the ten digits, make-speech.sh's 19 test voices
# (every fifth voice there: never heard in training), gaps 0.8 to 2.0 s, seed 1.
# Deterministic for a seed (bash's RANDOM seeded; sox -R -D).
set -euo pipefail
dir="${1:?usage: make-speech-stream.sh DIR [options]}"
shift
recordings=4 count=12 seed=1 gap_lo=0.8 gap_hi=2.0
words="zero one two three four five six seven eight nine"
# the test voices of make-speech.sh: every fifth of its accents x variants
voices=""
v=0
for a in en-gb en-us en-gb-scotland en-gb-x-rp en-gb-x-gbclan en-gb-x-gbcwmd en-029 en-us-nyc; do
  for var in m1 m2 m3 m4 m5 m7 f1 f2 f3 f4 f5 klatt; do
    [ $((v % 5)) -eq 4 ] && voices="$voices $a+$var"
    v=$((v + 1))
  done
done
while [ $# -gt 0 ]; do
  case "$1" in
    --recordings) recordings="$2"; shift ;;
    --words) words="$2"; shift ;;
    --voices) voices="$2"; shift ;;
    --count) count="$2"; shift ;;
    --gap-lo) gap_lo="$2"; shift ;;
    --gap-hi) gap_hi="$2"; shift ;;
    --seed) seed="$2"; shift ;;
    *) echo "make-speech-stream.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
for t in espeak-ng sox soxi; do
  command -v "$t" >/dev/null || { echo "make-speech-stream.sh: $t is needed" >&2; exit 2; }
done
read -r -a W <<<"$words"
read -r -a V <<<"$voices"
mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
RANDOM="$seed"
echo "file,word,start,end" >"$dir/truth.csv"
# samples of a 16 kHz file
samples() { soxi -s "$1"; }
for ((r = 0; r < recordings; r++)); do
  pieces=()
  at=0 # samples so far
  lead="$tmp/lead-$r.wav"
  sox -R -D -V1 -n -r 16000 -c 1 -b 16 "$lead" trim 0 0.8
  pieces+=("$lead")
  at=$((at + $(samples "$lead")))
  for ((k = 0; k < count; k++)); do
    w="${W[$((RANDOM % ${#W[@]}))]}"
    v="${V[$((RANDOM % ${#V[@]}))]}"
    speed=$((130 + RANDOM % 50))
    word="$tmp/w-$r-$k.wav"
    espeak-ng -v "$v" -s "$speed" --stdout "$w" |
      sox -R -D -V1 -t wav - -r 16000 -c 1 -b 16 "$word" \
        silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse
    n=$(samples "$word")
    echo "stream-$r.wav,$w,$(awk -v a="$at" 'BEGIN { printf "%.4f", a / 16000 }'),$(awk -v a="$at" -v n="$n" 'BEGIN { printf "%.4f", (a + n) / 16000 }')" >>"$dir/truth.csv"
    pieces+=("$word")
    at=$((at + n))
    gap="$tmp/g-$r-$k.wav"
    u=$RANDOM # drawn here: a subshell's RANDOM is seeded afresh
    g=$(awk -v lo="$gap_lo" -v hi="$gap_hi" -v u="$u" 'BEGIN { printf "%.3f", lo + (hi - lo) * u / 32767 }')
    sox -R -D -V1 -n -r 16000 -c 1 -b 16 "$gap" trim 0 "$g"
    pieces+=("$gap")
    at=$((at + $(samples "$gap")))
  done
  sox -R -D -V1 "${pieces[@]}" "$tmp/clean-$r.wav"
  secs=$(awk -v a="$at" 'BEGIN { printf "%.4f", a / 16000 }')
  # white noise uniform in +-0.003 from awk's seeded generator (sox's synth differs every run)
  awk -v n="$at" -v seed="$((seed * 1000 + r))" 'BEGIN { srand(seed)
    print "; Sample Rate 16000"; print "; Channels 1"
    for (i = 0; i < n; i++) printf "%.6f %.6f\n", i / 16000, 0.003 * (2 * rand() - 1) }' >"$tmp/noise-$r.dat"
  sox -R -D -V1 "$tmp/noise-$r.dat" -r 16000 -c 1 -b 16 "$tmp/noise-$r.wav"
  sox -R -D -V1 -m -v 1 "$tmp/clean-$r.wav" -v 1 "$tmp/noise-$r.wav" "$dir/stream-$r.wav"
done
echo "make-speech-stream.sh: $recordings recordings of $count words in $dir (truth.csv)"
