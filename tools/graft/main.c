/* graft: the command-line tool. This file dispatches to the subcommands (cmd_*.c) and
 * answers --help and --version. */
#include "cli.h"

#include "graft/graft.h"

#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: graft <command> [options]\n"
            "       graft --help | --version\n"
            "\n"
            "commands:\n"
            "  train     train a model on a dataset (graft train --help)\n"
            "  inspect   list the tensors and metadata of a .safetensors file\n"
            "\n"
            "exit status: 0 success, 1 the run failed, 2 bad usage\n");
}

static void version(void) {
    printf("graft %s\n", GF_VERSION_STRING);
    printf("threads: %d (cores available to this process; --threads changes it)\n",
           gf_available_cores());
    printf("blas: OpenBLAS, %s threading\n", gf_blas_threading());
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        version();
        return CLI_OK;
    }
    if (strcmp(cmd, "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "inspect") == 0) return cmd_inspect(argc - 1, argv + 1);
    fprintf(stderr, "graft: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return CLI_USAGE;
}
