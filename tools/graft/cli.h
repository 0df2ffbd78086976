/* The graft command line: one file per subcommand, this header joins them to main.c.
 * Exit codes: 0 success, 1 the run failed, 2 bad usage. */
#ifndef GRAFT_CLI_H
#define GRAFT_CLI_H

#include <stdio.h>

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* argv[0] is the subcommand name; returns the exit code. */
int cmd_train(int argc, char **argv);
void cmd_train_usage(FILE *f);
int cmd_inspect(int argc, char **argv);

#endif
