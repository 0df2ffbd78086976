#!/bin/sh
# The installed library as a user meets it: `cmake --install` of a built tree into a temporary
# prefix, every public header compiled on its own, every examples/*.c compiled with
#     cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags --libs graft)
# against that prefix only and run with --quick, and one example built by a tiny CMake project
# through find_package(graft). Usage: test_install.sh BUILD_DIR SOURCE_DIR [CMAKE]
# Exits 77 (skip) when the examples could be built but Fashion-MNIST is missing for the runs.
# To add an example: drop it in examples/; it must accept --quick (and finish in seconds); give
# it arguments in example_args below if it needs more.
set -u
BUILD=${1:?usage: test_install.sh BUILD_DIR SOURCE_DIR [CMAKE]}
SRC=${2:?usage: test_install.sh BUILD_DIR SOURCE_DIR [CMAKE]}
CMAKE=${3:-cmake}
CC=${CC:-cc}
FIXTURE="$SRC/tests/fixtures/pretrained/cnn_small_fmnist04.safetensors"

WORK=$(mktemp -d /tmp/graft_install.XXXXXX) || exit 1
trap 'rm -rf "$WORK"' EXIT
PREFIX="$WORK/prefix"
fail() { echo "FAIL: $*"; exit 1; }
show() { echo "---- $1"; tail -n 30 "$1"; }

# Arguments for each example's quick run.
example_args() {
    case "$1" in
        finetune) echo "--quick $FIXTURE $WORK/out" ;;
        transfer_protocols) echo "--quick --protocol c --fixture $FIXTURE" ;;
        classify) echo "$WORK/table.safetensors $SRC/tests/fixtures/bundle/rows.csv" ;;
        *) echo "--quick" ;;
    esac
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# 1. install
"$CMAKE" --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log" 2>&1 ||
    { show "$WORK/install.log"; fail "cmake --install $BUILD --prefix $PREFIX"; }
PC=$(find "$PREFIX" -name graft.pc | head -n 1)
[ -n "$PC" ] || fail "no graft.pc installed"
CONFIG=$(find "$PREFIX" -name graftConfig.cmake | head -n 1)
[ -n "$CONFIG" ] || fail "no graftConfig.cmake installed"
[ -f "$PREFIX/include/graft/graft.h" ] || fail "no include/graft/graft.h installed"
find "$PREFIX" -name 'libgraft.so*' | grep -q . || fail "no libgraft.so installed"
[ -x "$PREFIX/bin/graft" ] || fail "no bin/graft installed"
# the bash completion and the man page, as the installed tool prints them
COMPL="$PREFIX/share/bash-completion/completions/graft"
[ -f "$COMPL" ] || fail "no share/bash-completion/completions/graft installed"
[ -f "$PREFIX/share/man/man1/graft.1" ] || fail "no share/man/man1/graft.1 installed"
"$PREFIX/bin/graft" completion bash | cmp -s - "$COMPL" ||
    fail "the installed completion differs from what bin/graft completion bash prints"
"$PREFIX/bin/graft" man | cmp -s - "$PREFIX/share/man/man1/graft.1" ||
    fail "the installed man page differs from what bin/graft man prints"
OFFER=$(bash -c '. "$1"; COMP_WORDS=(graft fine); COMP_CWORD=1; _graft; echo "${COMPREPLY[*]}"' _ "$COMPL")
[ "$OFFER" = finetune ] || fail "the installed completion offers '$OFFER' for 'graft fine'"
echo "ok   bash completion and man page installed (share/bash-completion/completions/graft, share/man/man1/graft.1)"
echo "ok   installed: $(cd "$PREFIX" && find . -type f | wc -l) files ($(dirname "$PC" | sed "s|$PREFIX/||")/graft.pc, $(dirname "$CONFIG" | sed "s|$PREFIX/||")/graftConfig.cmake)"

# 2. pkg-config must describe the prefix the files were installed to
export PKG_CONFIG_PATH="$(dirname "$PC")"
FLAGS=$(pkg-config --cflags --libs graft) || fail "pkg-config --cflags --libs graft"
INCDIR=$(pkg-config --variable=includedir graft)
case "$INCDIR" in
    "$PREFIX"/*) ;;
    *) fail "graft.pc points at $INCDIR, not into the prefix it was installed to ($PREFIX):
      it is not relocatable. Fix in cmake/graft.pc.in: prefix=\${pcfiledir}/<relative path from
      the pkgconfig dir to the prefix> (e.g. computed with file(RELATIVE_PATH ...))" ;;
esac
echo "ok   pkg-config --cflags --libs graft: $FLAGS"

# 3. every public header compiles on its own
n=0
for h in "$PREFIX"/include/graft/*.h; do
    name=$(basename "$h")
    printf '#include <graft/%s>\nint main(void) { return 0; }\n' "$name" >"$WORK/h.c"
    $CC -std=c11 -Wall -Wextra -Werror -pedantic -c "$WORK/h.c" $(pkg-config --cflags graft) \
        -o "$WORK/h.o" 2>"$WORK/h.log" || { show "$WORK/h.log"; fail "graft/$name does not compile on its own"; }
    n=$((n + 1))
done
echo "ok   $n headers compile on their own (-std=c11 -pedantic -Werror)"

# 4. docs/API.md shows examples verbatim: each "<!-- verbatim: PATH -->" is followed by a
#    ```c block that must equal the file PATH
if [ -f "$SRC/docs/API.md" ]; then
    n=0
    for path in $(sed -n 's/^<!-- verbatim: \(.*\) -->$/\1/p' "$SRC/docs/API.md"); do
        awk -v want="<!-- verbatim: $path -->" '
            $0 == want { found = 1; next }
            found == 1 && /^```c$/ { found = 2; next }
            found == 2 && /^```$/ { exit }
            found == 2 { print }' "$SRC/docs/API.md" >"$WORK/verbatim.c"
        cmp -s "$WORK/verbatim.c" "$SRC/$path" || {
            diff "$SRC/$path" "$WORK/verbatim.c" | head -n 20
            fail "docs/API.md's copy of $path differs from the file (update the page)"; }
        n=$((n + 1))
    done
    echo "ok   docs/API.md: $n verbatim examples equal their files"
fi

# 5. the examples, built and run against the installed library only (classify.c gets a model
#    the installed graft trains)
mkdir -p "$WORK/out"
"$PREFIX/bin/graft" train --data "csv:$SRC/tests/fixtures/bundle/table.csv" --model mlp --hidden 8 \
    --epochs 30 --lr 0.01 --threads 1 --quiet --out "$WORK/table.safetensors" >"$WORK/train.log" 2>&1 ||
    { show "$WORK/train.log"; fail "the installed graft does not train a model for classify.c"; }
ran=0 skipped=0
for src in "$SRC"/examples/*.c; do
    [ -f "$src" ] || continue
    name=$(basename "$src" .c)
    bin="$WORK/$name"
    $CC -std=c11 -Wall -Wextra -Werror -O2 "$src" $FLAGS -o "$bin" 2>"$WORK/$name.build.log" ||
        { show "$WORK/$name.build.log"; fail "examples/$name.c does not build against the installed graft"; }
    lib=$(ldd "$bin" | awk '/libgraft/ { print $3 }')
    case "$lib" in
        "$PREFIX"/*) ;;
        *) fail "$name loads libgraft from '$lib', not from $PREFIX" ;;
    esac
    args=$(example_args "$name")
    t0=$(now)
    timeout 600 "$bin" $args >"$WORK/$name.log" 2>&1
    rc=$?
    t=$(elapsed "$t0")
    case $rc in
        0) ran=$((ran + 1)); echo "ok   examples/$name.c: built, ran '$name $args' in ${t}s: $(tail -n 1 "$WORK/$name.log")" ;;
        77) skipped=$((skipped + 1)); echo "skip examples/$name.c: built; run skipped (data missing): $(tail -n 1 "$WORK/$name.log")" ;;
        *) show "$WORK/$name.log"; fail "$name $args exited with $rc" ;;
    esac
    awk -v t="$t" 'BEGIN { exit !(t > 10) }' && echo "note $name --quick took ${t}s (aim: under 10 s; the machine may be busy)"
done
[ $((ran + skipped)) -gt 0 ] || fail "no examples/*.c found in $SRC/examples"

# 6. find_package(graft) from a CMake project
mkdir -p "$WORK/consumer"
cat >"$WORK/consumer/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.18)
project(graft_consumer C)
find_package(graft 0.1 REQUIRED)
add_executable(train_mlp "$SRC/examples/train_mlp.c")
set_target_properties(train_mlp PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
target_compile_options(train_mlp PRIVATE -Wall -Wextra -Werror)
target_link_libraries(train_mlp PRIVATE graft::graft)
EOF
"$CMAKE" -S "$WORK/consumer" -B "$WORK/consumer/build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$PREFIX" >"$WORK/consumer.log" 2>&1 &&
    "$CMAKE" --build "$WORK/consumer/build" >>"$WORK/consumer.log" 2>&1 ||
    { show "$WORK/consumer.log"; fail "find_package(graft) project does not build"; }
"$WORK/consumer/build/train_mlp" --quick >"$WORK/consumer.run.log" 2>&1
rc=$?
case $rc in
    0) echo "ok   find_package(graft 0.1) + graft::graft: train_mlp built and ran: $(tail -n 1 "$WORK/consumer.run.log")" ;;
    77) skipped=$((skipped + 1)); echo "skip find_package(graft) build ok; run skipped (data missing)" ;;
    *) show "$WORK/consumer.run.log"; fail "find_package-built train_mlp exited with $rc" ;;
esac

if [ "$ran" -eq 0 ]; then echo "skip: every example was built but none could run (Fashion-MNIST missing)"; exit 77; fi
echo "install test passed: $ran examples ran, $skipped runs skipped"
exit 0
