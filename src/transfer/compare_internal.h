/* Shared between compare.c (the driver, statistics, table and JSON) and strategies.c (how each
 * strategy builds and trains its model): the working state of one run. */
#ifndef GRAFT_COMPARE_INTERNAL_H
#define GRAFT_COMPARE_INTERNAL_H

#include "graft/compare.h"

/* One strategy trained with one seed. compare.c fills the inputs; strategies.c builds and
 * trains `model` and fills the outputs. */
typedef struct cmp_run {
    /* inputs */
    gf_ctx *ctx;                    /* the run's own context (seeded, the comparison's threads) */
    const gf_compare_params *p;
    gf_compare_strategy strategy;
    uint64_t seed;
    int k;                          /* target classes */
    const char *head;               /* the head's dotted path */
    gf_ds *train, *val;             /* borrowed; val may be NULL */
    gf_compare_trial *trial;        /* curves are appended to trial->train_loss / val_acc */
    /* outputs */
    gf_module *model;               /* the trained model (owned by the run) */
    int64_t params_trainable;
    size_t state_bytes;             /* parameters + gradients + optimizer state + caches */
    char note[256];
    bool stopped;                   /* the progress callback asked to stop */
} cmp_run;

/* Builds and trains r->model for r->strategy. Returns GF_OK or the error (in r->ctx). */
gf_status gf_cmp_train(cmp_run *r);

/* Accuracy, macro-F1 and the confusion matrix (k * k, rows true) of model on ds, by
 * gf_evaluate_ex in batches of batch (eval mode without gradients; the mode is restored). */
gf_status gf_cmp_evaluate(gf_ctx *ctx, gf_module *model, gf_ds *ds, int k, int64_t batch,
                          double *accuracy, double *macro_f1, int64_t *confusion);

#endif
