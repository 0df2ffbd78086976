/* The strategy comparison shared by graft compare and graft demo: a sweep of gf_compare_run
 * over numbers of labels per class, printed, as JSON and as report blocks. */
#ifndef GRAFT_CLI_COMPARE_H
#define GRAFT_CLI_COMPARE_H

#include "cli.h"

#include "graft/compare.h"
#include "graft/report.h"

typedef struct cli_sweep {
    int n;                              /* sweep points */
    int64_t labels[CLI_MAX_LIST];       /* labels per class at each point (0: all the data) */
    int64_t n_train[CLI_MAX_LIST];      /* training examples actually used */
    int epochs[CLI_MAX_LIST];
    gf_compare_result *res[CLI_MAX_LIST];
    int n_strategies;
    gf_compare_strategy strategies[GF_COMPARE_STRATEGY_COUNT];
} cli_sweep;

void cli_sweep_free(cli_sweep *sw);
/* Fills p from the options (model, budget, seeds into seeds[CLI_MAX_LIST], LoRA, teacher) and
 * sw's strategies (default_strategies when --strategies is not given). */
int cli_compare_params(gf_ctx *ctx, const cli_opts *o, const cli_data *d, const char *model,
                       gf_compare_params *p, uint64_t *seeds, cli_sweep *sw,
                       const char *default_strategies);
/* A usage error when --epochs is below 2 and the strategies (default_strategies when
 * --strategies is not given) include fastai, which trains the head alone for one epoch first. */
int cli_check_strategy_epochs(const cli_opts *o, const char *default_strategies);
/* Runs every sweep point (sw->labels[0..n)): N random labels per class of d->train (all the
 * class has when fewer), validation on d->val, scores on d->test. epochs_for (may be NULL)
 * picks the epochs of a point from its training size. Progress on stderr; Ctrl-C stops. */
int cli_compare_sweep(gf_ctx *ctx, const cli_opts *o, gf_compare_params *p, cli_data *d,
                      cli_sweep *sw, int (*epochs_for)(int64_t n_train, const void *user),
                      const void *user);
void cli_sweep_print(const cli_sweep *sw, bool details, FILE *f);
cJSON *cli_sweep_json(gf_ctx *ctx, const cli_sweep *sw);
/* The accuracy-vs-labels chart, and per point a table, curves and the best confusion matrix. */
gf_status cli_sweep_report(gf_ctx *ctx, gf_report *r, const cli_sweep *sw);

#endif
