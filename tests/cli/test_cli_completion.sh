#!/usr/bin/env bash
# `graft completion bash` and `graft man`, both written from the option tables --help prints:
# the completion offers the commands, a command's options (every one --list-options names) and
# --data's kinds, run in bash with COMP_WORDS / COMP_CWORD set as bash sets them; the man page
# has a section per command listing every option its --help shows, and renders without a
# warning (groff -ww, man -l) where groff is installed. Usage: test_cli_completion.sh
# path/to/graft. To add a check: see tests/cli/lib.sh.
source "$(dirname "$0")/lib.sh"

run "$G" completion bash
expect_rc 0 "graft completion bash"
cp "$T/out" "$T/graft.bash"
bash -n "$T/graft.bash" && ok || bad "the completion script is not valid bash"

# complete WORD...: what _graft offers for the words, the last one being completed
complete_words() {
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _graft; printf "%s\n" "${COMPREPLY[@]}"' \
        _ "$T/graft.bash" "$@" 2>"$T/compl.err"
}
offers() { # DESCRIPTION WANT WORD...: the completions include WANT
    local what="$1" want="$2"
    shift 2
    if complete_words "$@" | grep -qx -- "$want"; then ok; else
        bad "$what: '$*' does not offer '$want' (got: $(complete_words "$@" | tr '\n' ' '))"
    fi
}
offers "a command" train graft tr
offers "a command" lr-find graft lr
offers "a command" finetune graft ""
offers "the completion command" completion graft comp
offers "an option of train" --data graft train --da
offers "an option of finetune" --freeze graft finetune --data x --fr
offers "an option of lr-find" --from graft lr-find --fro
if complete_words graft predict --fre | grep -q .; then bad "predict offers --freeze, which it does not take"; else ok; fi
offers "--data's kinds" csv: graft train --data c
offers "--data's kinds, from the data specs of --help" text: graft train --data t
offers "files for a value" "$T/graft.bash" graft eval --weights "$T/graft.b"
# every option of every command is offered after "--"
for c in $("$G" --help | sed -n 's/^  \([a-z-]*\) .*/\1/p'); do
    complete_words graft "$c" -- >"$T/offered"
    missing=""
    for opt in $("$G" "$c" --list-options); do grep -qx -- "$opt" "$T/offered" || missing="$missing $opt"; done
    if [ -z "$missing" ]; then ok; else bad "graft $c: the completion lacks$missing"; fi
done

# ---- the man page ------------------------------------------------------------------------------
run "$G" man
expect_rc 0 "graft man"
cp "$T/out" "$T/graft.1"
grep -q '^\.TH GRAFT 1' "$T/graft.1" && ok || bad "the man page has no .TH GRAFT 1"
for c in $("$G" --help | sed -n 's/^  \([a-z-]*\) .*/\1/p'); do
    # the command's section: from its .SS to the next .SS or .SH
    awk -v c="$c" '/^\.S[SH] / { on = ($0 == ".SS \"graft " c "\"") ; next } on' "$T/graft.1" >"$T/section"
    if [ -s "$T/section" ]; then ok; else bad "the man page has no section for graft $c"; continue; fi
    "$G" "$c" --help >"$T/help"
    missing=""
    # the options --help shows ("  --data SPEC", "  -q, --quiet") must all be in the section
    for opt in $(sed -n 's/^  \(-[a-z], \)\{0,1\}\(--[a-z0-9-]*\).*/\2/p' "$T/help"); do
        grep -qF -- "\\fB$(printf '%s' "$opt" | sed 's/-/\\-/g')\\fR" "$T/section" || missing="$missing $opt"
    done
    if [ -z "$missing" ]; then ok; else bad "the man page's graft $c lacks$missing"; fi
    n_help=$(sed -n 's/^  \(-[a-z], \)\{0,1\}\(--[a-z0-9-]*\).*/\2/p' "$T/help" | wc -l)
    n_list=$("$G" "$c" --list-options | wc -l)
    [ "$n_help" = "$n_list" ] && ok || bad "graft $c --help shows $n_help options, --list-options $n_list"
done
if command -v groff >/dev/null; then
    groff -man -Tutf8 -ww "$T/graft.1" >"$T/man.txt" 2>"$T/groff.err"
    if [ ! -s "$T/groff.err" ] && [ -s "$T/man.txt" ]; then ok; else
        bad "groff -man -ww warns: $(head -3 "$T/groff.err")"
    fi
    grep -q "lr-find" "$T/man.txt" && ok || bad "the rendered page lacks lr-find"
    if command -v man >/dev/null; then
        MANWIDTH=80 man -l "$T/graft.1" >"$T/man2.txt" 2>"$T/man.err"
        if [ -s "$T/man2.txt" ] && [ ! -s "$T/man.err" ]; then ok; else bad "man -l: $(head -3 "$T/man.err")"; fi
    fi
else
    skip "groff is not installed: the man page is not rendered"
fi

run "$G" completion zsh
expect_rc 2 "graft completion zsh is refused"
run "$G" man extra
expect_rc 2 "graft man takes no argument"
finish
