#!/usr/bin/env bash
# docs/CLI.md documents the tool: every command, and every option each command accepts (as
# `graft CMD --list-options` prints them, which is the table --help is printed from).
# Usage: test_cli_docs.sh path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"
DOC="$SRC/docs/CLI.md"
if [ ! -f "$DOC" ]; then
    bad "docs/CLI.md is missing ($DOC)"
    finish
    exit
fi
commands="demo train lr-find finetune probe eval predict compare distill multitask inspect run export"
for c in $commands; do
    if grep -q "^### graft $c\$" "$DOC"; then ok; else bad "docs/CLI.md has no section '### graft $c'"; fi
    run "$G" "$c" --list-options
    expect_rc 0 "$c --list-options"
    while read -r opt; do
        if grep -qF -- "\`$opt" "$DOC"; then ok; else bad "docs/CLI.md does not document $opt (graft $c)"; fi
        run "$G" "$c" --help
        if grep -qF -- "$opt" "$T/out"; then ok; else bad "graft $c --help does not show $opt"; fi
    done < <("$G" "$c" --list-options)
done
# every command of `graft --help` is in the doc's command table
run "$G" --help
for c in $(sed -n 's/^  \([a-z]*\) .*/\1/p' "$T/out"); do
    if grep -qF -- "| \`$c\` |" "$DOC"; then ok; else bad "docs/CLI.md's command table lacks $c"; fi
done
# every layer type the spec parser knows is documented
for t in linear conv2d conv1d batchnorm1d batchnorm2d layernorm dropout maxpool2d avgpool2d \
         adaptiveavgpool2d flatten identity relu silu sigmoid tanh leakyrelu elu gelu softplus \
         softmax logsoftmax basicblock bottleneck embedding lstm gru sequential container; do
    if grep -qF -- "\`$t\`" "$DOC"; then ok; else bad "docs/CLI.md does not document the spec type $t"; fi
done
finish
