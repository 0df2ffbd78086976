/* graft training loop: gf_fit runs epochs of forward, loss, backward, clipping, gradient
 * accumulation, optimizer and schedule steps, validation, early stopping and keep-best, with
 * callbacks for progress, checkpoints and exact resume; gf_train_step for loops of your own. The
 * training layer (src/train) is built only on the public API: copy it and change what you
 * need. */
#ifndef GRAFT_TRAIN_H
#define GRAFT_TRAIN_H

#include "graft/checkpoint.h"
#include "graft/loader.h"
#include "graft/nn.h"
#include "graft/optim.h"
#include "graft/sched.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- an optimizer over a module ------------------------------------------------------------ */

/* New optimizer over every parameter of m (gf_module_named_tensors order, frozen ones included:
 * they carry no state until they are unfrozen), grouped by specs as gf_optim_new_named
 * (graft/optim.h) does. Errors (GF_ERR_INVALID, naming the spec and the pattern or parameter):
 * a NULL module or one without parameters, a pattern that matches no parameter, a parameter
 * matched by two specs, an empty pattern list, bad hyperparameters. */
gf_optim *gf_optim_new_module(gf_ctx *ctx, gf_module *m, const gf_optim_params *defaults,
                              const gf_group_spec *specs, int n_specs);

/* ---- losses ------------------------------------------------------------------------------ */

typedef enum gf_loss_kind {
    GF_LOSS_CROSS_ENTROPY = 0, /* logits [N, C, ...], int64 class labels [N, ...] */
    GF_LOSS_MSE,               /* outputs and float32 targets of the same numel ([N] targets
                                * are viewed as the output's shape, e.g. [N, 1]) */
    GF_LOSS_L1,
    GF_LOSS_SMOOTH_L1,         /* beta */
    GF_LOSS_BCE_WITH_LOGITS,   /* logits and float32 targets in [0, 1] */
    GF_LOSS_CUSTOM,            /* fn */
    GF_LOSS_KIND_COUNT
} gf_loss_kind;

/* A custom loss: a scalar (0-d or one element) arena tensor from the model's output and the
 * batch's targets, NULL with a context error on failure. */
typedef gf_tensor *(*gf_loss_fn)(gf_ctx *ctx, gf_tensor *output, gf_tensor *target, void *user);

typedef struct gf_loss_spec {
    gf_loss_kind kind;
    float label_smoothing; /* cross entropy, in [0, 1] (0) */
    float beta;            /* smooth L1 (1) */
    gf_loss_fn fn;         /* CUSTOM */
    void *user;            /* passed to fn */
} gf_loss_spec;

gf_loss_spec gf_loss_default(gf_loss_kind kind);
/* The mean loss of a batch (an arena scalar), NULL with a context error. */
gf_tensor *gf_loss_compute(gf_ctx *ctx, const gf_loss_spec *loss, gf_tensor *output,
                           gf_tensor *target);

/* Correct predictions in a batch, or -1 when accuracy does not apply: class labels (int64 [N])
 * with scores [N, C] (argmax, the first of equal maxima), or, for binary cross entropy, float
 * targets with one logit per example (logit > 0 vs target >= 0.5). scratch (out->numel floats)
 * is used when out is not contiguous; NULL then gives -1. */
int64_t gf_batch_correct(const gf_loss_spec *loss, const gf_tensor *out, const gf_tensor *y,
                         float *scratch);

/* ---- data parallelism on one machine ---------------------------------------------------------
 * A model's forward, loss and backward run on slices of each batch in several threads at once,
 * each thread with its own context (arena, tape, RNG) and its own gradient buffers, and the
 * slices' gradients are then added into the parameters' gradients: for a loss that is a mean
 * over examples (every built-in kind) that is the gradient of the whole batch, up to float
 * rounding. A step then waits for the other threads once instead of after every op, which is
 * what lets a step on two cores run nearly twice as fast as on one. gf_fit uses it by itself
 * (gf_fit_params.replicas); this is the same machinery for a hand-written loop. */
typedef struct gf_replicas gf_replicas;

/* n >= 2 replicas of model's training step, over the parameters that require a gradient now.
 * NULL with a ctx error when the model is not replicable (the message names the module, see
 * gf_module_replicable) or out of memory. The model's structure, its mode and which
 * parameters require a gradient must not change while the replicas live. */
gf_replicas *gf_replicas_new(gf_ctx *ctx, gf_module *model, int n);
void gf_replicas_free(gf_replicas *r);
int gf_replicas_count(const gf_replicas *r);

typedef struct gf_replicas_out {
    double loss;     /* the batch's mean loss; not finite when some slice's loss is not */
    int64_t correct; /* correct predictions, as gf_batch_correct counts them; -1: not applicable */
} gf_replicas_out;

/* Forward, loss and backward of the batch (x, y) cut into contiguous slices of examples, one
 * per replica (fewer for a batch smaller than the count). When the batch's loss is finite the
 * gradient of scale * loss is ADDED to every trainable parameter's gradient (as gf_backward of
 * loss * scale does in one context); when it is not, no gradient changes and out->loss says so.
 * loss NULL is cross entropy; CUSTOM is refused (a custom loss need not be a mean over
 * examples). The replicas take ctx's in-place setting; Dropout in them draws from seeds taken
 * from ctx's RNG, which advances (by one draw per replica) only in steps that use them, so a
 * run is reproducible and resumable for a given replica count. x and y stay ctx's. */
gf_status gf_replicas_step(gf_ctx *ctx, gf_replicas *r, const gf_loss_spec *loss, gf_tensor *x,
                           gf_tensor *y, float scale, gf_replicas_out *out);

/* ---- training across processes ----------------------------------------------------------------
 * gf_fit and gf_train_step leave the exchange of gradients between processes to a hook (the
 * MPI one is gf_dist_grad_sync, graft/dist.h): called after each accumulation group's backward
 * and before clipping and the optimizer step, it must replace the .grad of every parameter of
 * opt that requires a gradient by its sum over the processes, and each of stats[0..n_stats) by
 * its sum too (gf_fit passes its running sums this way, so every process takes the same
 * decisions). Each process trains on its share of every batch (gf_loader_params.shard_count)
 * with its loss weighted by share / batch, so the sums are the whole batch's mean gradient.
 * Errors are returned with a context error; the processes can then no longer agree on
 * anything, and the caller stops them all. */
typedef gf_status (*gf_grad_sync_fn)(gf_ctx *ctx, gf_optim *opt, double *stats, int n_stats,
                                     void *user);

/* ---- one step of a hand-written loop ---------------------------------------------------------
 * For loops gf_fit does not cover (several optimizers, a loss gf_loss_spec cannot express,
 * batches a loader does not give): the update half of a training step, as gf_fit does it. */
typedef struct gf_step_params {
    double clip_norm;  /* > 0: clip_grad_norm_ (L2) over each optimizer's parameters before its
                        * step */
    double clip_value; /* > 0: clip_grad_value_ before each step (after clip_norm) */
    gf_sched *sched;   /* stepped after the optimizers when it is per step (GF_SCHED_PER_STEP);
                        * a per-epoch schedule is left to the caller; NULL: none */
    /* Training across processes: called for each optimizer after the backward, before its
     * clipping and step (with no stats); scale the loss by share / batch yourself. NULL: one
     * process. */
    gf_grad_sync_fn grad_sync;
    void *grad_sync_user;
} gf_step_params;

/* Backward of loss (a scalar from this step's forward) into the parameters' gradients, added to
 * what they hold (zero them before the forward: gf_optim_zero_grad), then for each of
 * opts[0..n_opts), in order, the clipping p asks for and an optimizer step, then p->sched's
 * step. p NULL: no clipping, no schedule. Stops at the first error and returns it (context
 * error set). The context is not reset. */
gf_status gf_train_step(gf_ctx *ctx, gf_tensor *loss, gf_optim *const *opts, int n_opts,
                        const gf_step_params *p);

/* ---- fit ------------------------------------------------------------------------------------ */

/* What early stopping, keep-best and ReduceLROnPlateau watch. AUTO: val_loss with a validation
 * loader, else train_loss. Losses are minimised, accuracies maximised. */
typedef enum gf_monitor {
    GF_MONITOR_AUTO = 0,
    GF_MONITOR_VAL_LOSS,
    GF_MONITOR_VAL_ACC,
    GF_MONITOR_TRAIN_LOSS,
    GF_MONITOR_TRAIN_ACC
} gf_monitor;

/* What a non-finite (NaN / Inf) training loss does: STOP returns GF_ERR_NUMERIC naming the
 * epoch and batch; SKIP drops that batch (no backward, no step from it) and counts it. */
typedef enum gf_nonfinite { GF_NONFINITE_STOP = 0, GF_NONFINITE_SKIP } gf_nonfinite;

/* Reported after every epoch. Accuracies are NaN when they do not apply (no class labels);
 * validation values are NaN without a validation loader. */
typedef struct gf_epoch_stats {
    int epoch;               /* 1-based */
    int epochs;              /* the planned number */
    int64_t steps;           /* optimizer steps so far (all epochs) */
    int64_t batches;         /* batches this epoch (skipped ones included) */
    int64_t skipped;         /* batches skipped this epoch (non-finite loss) */
    double train_loss;       /* mean over the epoch's examples, before each update */
    double train_acc;
    double val_loss, val_acc;
    double lr;               /* group 0's learning rate at the end of the epoch */
    double monitored;        /* the monitored value */
    bool improved;           /* the monitored value improved (by more than min_delta) */
    int bad_epochs;          /* epochs since the last improvement */
    double seconds;          /* wall time of the epoch, validation included */
} gf_epoch_stats;

/* Reported after every training batch. */
typedef struct gf_step_stats {
    int epoch;               /* 1-based */
    int64_t batch;           /* 0-based, within the epoch */
    int64_t batches;         /* per epoch */
    int64_t step;            /* optimizer steps so far */
    double loss;             /* this batch's loss (NaN/Inf when skipped) */
    bool stepped;            /* an optimizer step followed this batch */
    bool skipped;            /* the batch was skipped (non-finite loss) */
    double grad_norm;        /* total norm before clipping, when clip_norm > 0; else NaN */
    double lr;               /* group 0's learning rate used by this batch */
} gf_step_stats;

/* Callbacks return true to continue, false to stop training; gf_fit then returns GF_OK with
 * result->stopped_by_callback. The epoch callback stops after its epoch's end. The step
 * callback stops after the current batch (with accum_steps > 1: after the step of its
 * accumulation group); stopped before its epoch's last batch, the epoch gets no end-of-epoch
 * work (no validation, epoch callback or epoch checkpoint; epochs_run counts finished epochs)
 * and, when checkpointing, a checkpoint of that very batch is written, so resuming continues
 * with the next batch and ends bitwise where the uninterrupted run ends (Ctrl-C in the CLI). */
typedef bool (*gf_epoch_fn)(const gf_epoch_stats *s, void *user);
typedef bool (*gf_step_fn)(const gf_step_stats *s, void *user);

typedef struct gf_fit_params {
    int epochs;              /* 10 */
    /* Gradient accumulation: gradients of accum_steps consecutive batches are summed, each
     * batch's loss scaled by 1 / accum_steps, before one optimizer step; with equal batches
     * that is the step of one batch accum_steps times larger. A shorter group at the end of
     * an epoch (or one with skipped batches) is rescaled to the mean of the batches it has. */
    int accum_steps;         /* 1 */
    /* Data parallelism inside the process (gf_replicas): each batch is cut into this many
     * slices that run in as many threads at once. 0 (default): one per context thread when
     * there are several, the model is replicable (gf_module_replicable) and the loss built in;
     * otherwise each op splits its own work between the threads. 1: never. >= 2: that many,
     * or GF_ERR_INVALID saying why not. Batches with fewer than 2 examples per replica run in
     * one context. The count changes the numbers only by float rounding (and by Dropout's
     * random numbers); a resumed run ends bitwise where the uninterrupted one does when both
     * use the same count. */
    int replicas;
    double clip_norm;        /* > 0: clip_grad_norm_ to this total L2 norm before each step */
    double clip_value;       /* > 0: clip_grad_value_ before each step (after clip_norm) */
    gf_nonfinite on_nonfinite;
    gf_monitor monitor;
    double min_delta;        /* an improvement must exceed this (absolute); 0 */
    int patience;            /* > 0: stop after this many epochs without improvement */
    bool restore_best;       /* keep a copy of the best weights (parameters and buffers) and
                              * restore it at the end */
    gf_epoch_fn on_epoch;    /* may be NULL */
    gf_step_fn on_step;      /* may be NULL */
    void *user;              /* passed to both */
    /* Checkpoints (graft/checkpoint.h, docs/CHECKPOINTS.md). With checkpoint.dir set: stale
     * temporary files of the prefix are removed at the start; a full checkpoint is written
     * after every checkpoint.every_steps-th optimizer step (counted by gf_optim_steps) and,
     * with every_epoch, after each epoch's end-of-epoch work and callback; keep_last and
     * keep_best (ranked by the monitored value) rotate them. A failed write stops the run with
     * its error. Checkpoints change nothing in the training itself. */
    gf_ckpt_policy checkpoint;
    /* A checkpoint (written by gf_fit) to continue from; NULL: start fresh. The model,
     * optimizer, schedule and loaders must be made as for the interrupted run (same
     * structure, groups, settings, datasets and batch size); the weights, optimizer and
     * schedule state, context RNG, loader positions, best value, patience counter, best
     * weights and the epoch's running sums are restored, and the run continues where it
     * stopped: with the same thread count it ends bitwise where the uninterrupted run ends.
     * Settings that change the numbers (accum_steps, clipping, on_nonfinite, monitor,
     * min_delta, restore_best, the loss, batches per epoch, a validation loader or not, the
     * optimizer and schedule kinds) must equal the checkpoint's (GF_ERR_INVALID naming the
     * setting and both values); epochs and patience may differ (to extend a run). Nothing is
     * changed when the checkpoint does not fit. */
    const char *resume_from;
    /* Training across processes (see gf_grad_sync_fn; graft/dist.h sets both): the training
     * loader gives this process's share of each batch and the hook sums gradients and the
     * epoch's sums after each accumulation group. A group in which some process skipped a
     * batch (a non-finite loss on its share, under GF_NONFINITE_SKIP) is skipped by all.
     * NULL: one process. */
    gf_grad_sync_fn grad_sync;
    void *grad_sync_user;
} gf_fit_params;

gf_fit_params gf_fit_default_params(void);

typedef struct gf_fit_result {
    int epochs_run;          /* epochs finished (a resumed run counts those before its
                              * checkpoint too) */
    int best_epoch;          /* 1-based; 0 when no epoch had a finite monitored value */
    double best_metric;
    bool stopped_early;      /* by patience */
    bool stopped_by_callback;
    bool restored_best;      /* the best weights were put back */
    int64_t steps;           /* optimizer steps in the run (a resumed run counts those before
                              * its checkpoint too) */
    int64_t skipped;         /* batches skipped in the run (likewise) */
    gf_epoch_stats last;     /* the last epoch's stats (of an epoch finished in this call) */
    bool resumed;            /* the run continued from p->resume_from */
    int64_t checkpoints;     /* checkpoint files written by this call (keep-best copies too) */
} gf_fit_result;

/* Trains model with opt (built over model's parameters) on train until epoch p->epochs:
 *   per batch: forward (training mode), loss, backward, [clip], optimizer step every
 *   accum_steps batches, a per-step schedule's step, gf_ctx_reset;
 *   per epoch: validation on val (evaluation mode, no gradients) when given, a per-epoch
 *   schedule's step (ReduceLROnPlateau with the monitored value), early stopping, keep-best,
 *   the epoch callback.
 * sched and val may be NULL; loss NULL is cross entropy; p NULL gives the defaults; result
 * may be NULL. The loaders continue from where they are (one gf_loader_next loop = an epoch).
 * Returns GF_OK, or an error with the context message (a non-finite loss under STOP:
 * GF_ERR_NUMERIC naming the epoch and batch). The model stays in training mode. The context is
 * reset after every batch: arena tensors made before the call do not survive it. */
gf_status gf_fit(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, gf_optim *opt,
                 gf_sched *sched, gf_loader *train, gf_loader *val, const gf_fit_params *p,
                 gf_fit_result *result);

/* One pass over loader in evaluation mode without gradients: the mean loss over the examples
 * and the accuracy (NaN when there are no class labels). Restores the model's mode. */
gf_status gf_evaluate(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, gf_loader *loader,
                      double *mean_loss, double *accuracy);

#ifdef __cplusplus
}
#endif
#endif
