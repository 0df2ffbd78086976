#!/usr/bin/env bash
# Synthesises spoken words for audio: data with Debian's espeak-ng: the ten digits "zero".."nine"
# (with --commands also yes no up down left right on off stop go; with --letters the 26 English
# letter names "a".."z" instead), spoken by many voices (English accents x voice variants) at
# several speeds and pitches, as 16 kHz mono 16-bit WAV in
#   DIR/train/<word>/<voice>-<k>.wav  and  DIR/test/<word>/<voice>-<k>.wav
# split BY VOICE: every fifth voice (accent + variant) is a test voice, never heard in training.
# Also DIR-flite/<word>/<voice>.wav from flite's voices (a second engine, for testing a model on
# speech it was not trained on). Deterministic: the same files, byte for byte, on every run
# (sox -R -D: no dither, fixed seeds). Installs scripts/packages-speech.txt (espeak-ng, flite,
# sox) when missing (as root).
# --voices N keeps N of the 96 espeak-ng voices, spread over the accents and variants (12 voices:
# 10 for training, 2 for test). With --letters and Debian's klettres-data installed, also
# DIR-klettres/<letter>/{en,en_GB}.ogg: KLettres' 52 real recordings of the letter names (GPL-2+,
# copied from /usr/share/klettres at run time for testing only; never commit them).
# --background N adds a class _silence_ of N clips in train/ (N / 4 in test/): silence and white
# or brown noise at several levels, the "no word" class keyword spotting needs (graft predict
# --stream). --words "one two": these words instead of the digits.
#   bash scripts/make-speech.sh DIR [--commands | --letters | --words LIST] [--renditions N]
#        [--voices N] [--background N]
#   (default: 2 renditions, every voice, no background class)
# Licences: espeak-ng and flite are GPL-3+ / BSD-style programs; the audio they synthesise is
# not a copy of any recording.
set -euo pipefail
dir="${1:?usage: make-speech.sh DIR [--commands | --letters | --words LIST] [--renditions N] [--voices N] [--background N]}"
shift
words=(zero one two three four five six seven eight nine)
renditions=2
nvoices=0
letters=0
background=0
while [ $# -gt 0 ]; do
  case "$1" in
    --commands) words+=(yes no up down left right on off stop go) ;;
    --letters) words=(a b c d e f g h i j k l m n o p q r s t u v w x y z); letters=1 ;;
    --renditions) renditions="${2:?--renditions needs a number}"; shift ;;
    --voices) nvoices="${2:?--voices needs a number}"; shift ;;
    --words) read -r -a words <<<"${2:?--words needs a list}"; shift ;;
    --background) background="${2:?--background needs a number}"; shift ;;
    *) echo "make-speech.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
need=()
mapfile -t pkgs < <(grep -v '^\s*#' "$(dirname "${BASH_SOURCE[0]}")/packages-speech.txt" | sed '/^\s*$/d')
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "make-speech.sh: install ${need[*]} (apt-get, as root)" >&2; exit 2; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi

accents=(en-gb en-us en-gb-scotland en-gb-x-rp en-gb-x-gbclan en-gb-x-gbcwmd en-029 en-us-nyc)
variants=(m1 m2 m3 m4 m5 m7 f1 f2 f3 f4 f5 klatt)
speeds=(120 145 170 195)
pitches=(30 45 60 75)
all=()
for a in "${accents[@]}"; do
  for var in "${variants[@]}"; do all+=("$a $var"); done
done
voices=("${all[@]}")
if [ "$nvoices" -gt 0 ]; then # spread: voice i of N is the (i * 96 / N)-th
  voices=()
  for ((i = 0; i < nvoices && i < ${#all[@]}; i++)); do voices+=("${all[$((i * ${#all[@]} / nvoices))]}"); done
fi
rm -rf "$dir" "$dir-flite" "$dir-klettres"
jobs="$dir.jobs"
mkdir -p "$dir"
: >"$jobs"
v=0
for av in "${voices[@]}"; do
  read -r a var <<<"$av"
  part=train
  [ $((v % 5)) -eq 4 ] && part=test
  for wi in "${!words[@]}"; do
    w="${words[$wi]}"
    mkdir -p "$dir/$part/$w"
    for ((k = 0; k < renditions; k++)); do
      # speed and pitch from the voice, word and rendition: spread, and the same every run
      h=$(((v * 7 + wi * 3 + k * 5) % 16))
      echo "$a+$var ${speeds[$((h % 4))]} ${pitches[$((h / 4))]} $w $dir/$part/$w/$a-$var-$k.wav" >>"$jobs"
    done
  done
  v=$((v + 1))
done
for fv in kal awb rms slt; do
  for w in "${words[@]}"; do
    mkdir -p "$dir-flite/$w"
    echo "flite:$fv 0 0 $w $dir-flite/$w/$fv.wav" >>"$jobs"
  done
done
# one line: VOICE SPEED PITCH WORD OUT
synth() {
  local voice="$1" speed="$2" pitch="$3" word="$4" out="$5"
  if [[ "$voice" == noise:* ]]; then # SPEED is the length, PITCH the level, WORD the seed
    # awk's seeded generator (sox's synth noise differs on every run): white, or brown (white
    # through a leaky integrator), or silence
    awk -v secs="$speed" -v level="$pitch" -v kind="${voice#noise:}" -v seed="$word" 'BEGIN {
      srand(seed); n = int(secs * 16000); b = 0
      print "; Sample Rate 16000"; print "; Channels 1"
      for (i = 0; i < n; i++) {
        w = 2 * rand() - 1; b = 0.98 * b + 0.2 * w
        v = kind == "silence" ? 0 : kind == "brownnoise" ? level * b : level * w
        printf "%.6f %.6f\n", i / 16000, v
      } }' >"$out.dat"
    sox -R -D -V1 "$out.dat" -r 16000 -c 1 -b 16 "$out"
    rm -f "$out.dat"
  elif [[ "$voice" == flite:* ]]; then
    flite -voice "${voice#flite:}" -t "$word" -o "$out.raw.wav"
    sox -R -D -V1 "$out.raw.wav" -r 16000 -c 1 -b 16 "$out"
    rm -f "$out.raw.wav"
  else
    espeak-ng -v "$voice" -s "$speed" -p "$pitch" --stdout "$word" |
      sox -R -D -V1 -t wav - -r 16000 -c 1 -b 16 "$out"
  fi
}
# _silence_ clips: K-th of a part: silence, or noise of a colour at a level, 0.6 to 1.4 s
for part in train test; do
  n=$background
  [ "$part" = test ] && n=$((background / 4))
  [ "$n" -gt 0 ] && mkdir -p "$dir/$part/_silence_"
  for ((k = 0; k < n; k++)); do
    kinds=(silence whitenoise brownnoise)
    kind=${kinds[$((k % 3))]}
    level=$(awk -v k="$k" 'BEGIN { printf "%.4f", 0.002 * (1 + (k * 7) % 25) }')
    secs=$(awk -v k="$k" 'BEGIN { printf "%.2f", 0.6 + 0.1 * ((k * 3) % 9) }')
    echo "noise:$kind $secs $level $((k + 1)) $dir/$part/_silence_/$part-$k.wav" >>"$jobs"
  done
done
export -f synth
xargs -P "$(nproc)" -L 1 bash -c 'synth "$@"' _ <"$jobs"
rm -f "$jobs"
if [ "$letters" -eq 1 ] && [ -d /usr/share/klettres/en/alpha ] && [ -d /usr/share/klettres/en_GB/alpha ]; then
  for w in "${words[@]}"; do
    mkdir -p "$dir-klettres/$w"
    cp "/usr/share/klettres/en/alpha/${w^^}.ogg" "$dir-klettres/$w/en.ogg"
    cp "/usr/share/klettres/en_GB/alpha/$w.ogg" "$dir-klettres/$w/en_GB.ogg"
  done
  echo "make-speech.sh: $(find "$dir-klettres" -name '*.ogg' | wc -l) KLettres recordings in $dir-klettres" >&2
fi
echo "make-speech.sh: $(find "$dir/train" -name '*.wav' | wc -l) training and" \
     "$(find "$dir/test" -name '*.wav' | wc -l) test clips ($v espeak-ng voices, every fifth" \
     "for test) in $dir; $(find "$dir-flite" -name '*.wav' | wc -l) flite clips in $dir-flite"
