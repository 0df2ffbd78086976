/* graft multitask: hard parameter sharing — one trunk, several named heads, each task with its
 * own data, loss and loss weight; batches interleaved round-robin or one step on the weighted
 * sum of the task losses; each task's score reported next to the same task trained alone, so
 * negative transfer shows. Built on the public API (src/transfer/multitask.c) and the training
 * layer's weight snapshot (src/train/snapshot.c). */
#ifndef GRAFT_MULTITASK_H
#define GRAFT_MULTITASK_H

#include <stdio.h>

#include "graft/dataset.h"
#include "graft/optim.h"
#include "graft/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the model --------------------------------------------------------------------------------
 * A multi-task module (type "MultiTask") has two children:
 *   trunk   the given model with its head replaced by an Identity: it returns the head's input
 *           features [N, F] (PyTorch's `model.fc = nn.Identity()`)
 *   heads   a container (type "ModuleDict") of one module per task, by task name
 * so its state_dict names are "trunk.<the model's names>" and "heads.<task>.<names>" and it
 * saves and loads with gf_weights_save / gf_weights_load like any module. gf_module_forward on
 * it returns the trunk's features; gf_mt_forward runs one task. */

/* Makes a multi-task module around model, whose Linear at head_path (NULL: gf_transfer_default_head)
 * becomes an Identity (the old head is freed). Takes ownership of model (also on failure).
 * Returns the new module (free with gf_module_free), or NULL with a ctx error. */
gf_module *gf_mt_new(gf_ctx *ctx, gf_module *model, const char *head_path);
/* Adds the head of task `name` (non-empty, no '.', not yet used): Linear(F, out_features)
 * with PyTorch's default initialisation from rng (NULL: the context RNG). */
gf_status gf_mt_add_head(gf_ctx *ctx, gf_module *mt, const char *name, int64_t out_features,
                         gf_rng *rng);
/* Adds any module mapping [N, F] to the task's outputs as the head of `name`. Takes ownership
 * of head (also on failure). */
gf_status gf_mt_add_head_module(gf_ctx *ctx, gf_module *mt, const char *name, gf_module *head);

bool gf_mt_is(const gf_module *m);              /* made by gf_mt_new */
int64_t gf_mt_features(const gf_module *mt);    /* F, or -1 for another module */
int gf_mt_n_heads(const gf_module *mt);
const char *gf_mt_head_name(const gf_module *mt, int i); /* borrowed; NULL when out of range */
gf_module *gf_mt_trunk(const gf_module *mt);    /* borrowed */
gf_module *gf_mt_head(const gf_module *mt, const char *name); /* borrowed; NULL if none */

/* head(trunk(x)) for task `task`: an arena tensor, or NULL with a ctx error (an unknown task
 * is named together with the heads there are). */
gf_tensor *gf_mt_forward(gf_ctx *ctx, gf_module *mt, const char *task, gf_tensor *x);

/* ---- training ------------------------------------------------------------------------------- */

typedef enum gf_mt_mode {
    /* Round-robin: each task in turn takes one batch and one optimizer step (its loss times
     * its weight; the trunk and that task's head move). */
    GF_MT_INTERLEAVE = 0,
    /* Each step takes one batch of every task and one optimizer step on the weighted sum of
     * the task losses (the trunk gets the summed gradient). */
    GF_MT_SUM,
    GF_MT_MODE_COUNT
} gf_mt_mode;

const char *gf_mt_mode_name(gf_mt_mode m);      /* "interleave", "sum"; "?" */
bool gf_mt_mode_parse(const char *name, gf_mt_mode *out);

typedef struct gf_mt_task {
    const char *name;      /* its head's name */
    gf_ds *train;          /* borrowed */
    gf_ds *val;            /* per-epoch score (may be NULL) */
    gf_ds *test;           /* the reported score; NULL: val; both NULL: train */
    gf_loss_spec loss;     /* gf_loss_default(kind); cross entropy when zeroed */
    float weight;          /* > 0: the task's loss is multiplied by it */
} gf_mt_task;

/* Cross entropy, weight 1, no val / test. */
gf_mt_task gf_mt_task_default(const char *name, gf_ds *train);

/* Reported after every epoch of every run ("multi-task", or a task's name for its baseline).
 * Arrays hold one value per task of that run. Return false to stop (gf_mt_fit then returns
 * GF_ERR_STATE). */
typedef struct gf_mt_epoch {
    const char *run;
    int epoch, epochs;             /* 1-based */
    int n_tasks;
    const char *const *tasks;      /* names */
    const double *train_loss;      /* mean (unweighted) training loss of each task */
    const double *val_score;       /* each task's score on its val data (NaN without) */
    double seconds;
} gf_mt_epoch;
typedef bool (*gf_mt_epoch_fn)(const gf_mt_epoch *e, void *user);

typedef struct gf_mt_params {
    gf_mt_mode mode;               /* GF_MT_INTERLEAVE */
    int epochs;                    /* 10. An epoch ends when every task has been through its
                                    * training data once: tasks whose data runs out sooner sit
                                    * out the rest of the epoch. */
    int64_t batch_size;            /* 64, every task */
    uint64_t seed;                 /* task i's loader shuffles with seed + i */
    gf_optim_params optim;         /* Adam lr 1e-3: one optimizer for the trunk and one per
                                    * head, so a head that takes no part in a step is not moved
                                    * (PyTorch's zero_grad(set_to_none=True)) */
    bool baselines;                /* true: first train each task alone, from the same initial
                                    * weights, seed and settings (its own loader seed too) */
    int64_t eval_batch;            /* 64 */
    gf_mt_epoch_fn on_epoch;       /* may be NULL */
    void *user;
    /* Training across processes (graft/dist.h: gf_dist_shard_loader, gf_dist_fit_params set
     * the same fields of the loader and fit parameters): every training loader keeps share
     * shard_rank of shard_count of each batch (0 of 0: all of it), and gf_fit sums the
     * gradients of the trunk and of each head over the processes through grad_sync (NULL: one
     * process). Every process must start from the same weights. */
    int shard_rank, shard_count;
    gf_grad_sync_fn grad_sync;
    gf_grad_begin_fn grad_begin; /* optional: gf_fit_params.grad_begin */
    void *grad_sync_user;
} gf_mt_params;

gf_mt_params gf_mt_default_params(void);

typedef struct gf_mt_task_result {
    char *name;
    const char *metric;            /* "accuracy" (cross entropy) or "loss" (mean, any other) */
    bool higher_is_better;
    double score;                  /* the multi-task model's, on test (else val, else train) */
    double baseline;               /* the task trained alone; NaN without baselines */
    double gain;                   /* score - baseline (accuracy) or baseline - score (loss):
                                    * > 0 sharing helped, < 0 negative transfer; NaN */
    int64_t steps;                 /* optimizer steps of this task's head (multi-task run) */
    int epochs;
    double *train_loss;            /* [epochs] multi-task run */
    double *val_score;             /* [epochs] multi-task run, NaN without val */
} gf_mt_task_result;

typedef struct gf_mt_result {
    gf_mt_mode mode;
    int epochs;
    int n;
    gf_mt_task_result *tasks;
    int64_t steps;                 /* trunk optimizer steps of the multi-task run */
    double seconds;                /* the multi-task run */
    double baseline_seconds;       /* all baselines together (0 without) */
} gf_mt_result;

/* Trains mt (made by gf_mt_new, with a head for every task) on tasks[0..n). With baselines,
 * each task is first trained alone from mt's current weights, then the weights are put back
 * and the multi-task run starts from them; mt ends with the multi-task weights. The context's
 * RNG is set back to its starting state before every run. Stores a new result in *out (may be
 * NULL; free with gf_mt_result_free). Returns GF_OK or an error naming the task (a missing
 * head, a non-finite loss with its epoch, a loss that does not fit the head's output).
 * Each run is one gf_fit call with a task (gf_fit_task) per task: its loader, loss, weight,
 * head (the forward) and head optimizer, the trunk's optimizer as gf_fit's own, mode as the
 * task policy. With one task that is gf_fit on the model with that head (same batches, same
 * steps: bitwise the same weights, same seed, run with replicas = 1: with tasks gf_fit splits
 * each op between the context's threads, not the batch). Resets the context after every
 * batch. */
gf_status gf_mt_fit(gf_ctx *ctx, gf_module *mt, const gf_mt_task *tasks, int n,
                    const gf_mt_params *p, gf_mt_result **out);

/* One pass of task's head over ds (in index order, batches of `batch`) through gf_evaluate_ex:
 * mean loss and accuracy (NaN when the loss is not cross entropy). */
gf_status gf_mt_evaluate(gf_ctx *ctx, gf_module *mt, const gf_mt_task *task, gf_ds *ds,
                         int64_t batch, double *mean_loss, double *accuracy);

void gf_mt_result_free(gf_mt_result *r);
/* A table: task, metric, multi-task score, alone, gain (negative transfer marked). */
void gf_mt_print(const gf_mt_result *r, FILE *out);
/* {"mode", "epochs", "steps", "seconds", "baseline_seconds", "tasks": [{"name", "metric",
 * "higher_is_better", "score", "baseline", "gain", "negative_transfer", "steps", "train_loss",
 * "val_score"}]} (NaN as null). New string (free()), or NULL with a ctx error. */
char *gf_mt_json(gf_ctx *ctx, const gf_mt_result *r);

#ifdef __cplusplus
}
#endif
#endif
