/* graft training loop: gf_fit runs epochs of forward, loss, backward, clipping, gradient
 * accumulation, optimizer and schedule steps, validation, early stopping and keep-best, with
 * callbacks for progress, checkpoints and exact resume; gf_train_step for loops of your own. The
 * training layer (src/train) is built only on the public API: copy it and change what you
 * need. */
#ifndef GRAFT_TRAIN_H
#define GRAFT_TRAIN_H

#include "graft/checkpoint.h"
#include "graft/loader.h"
#include "graft/metrics.h"
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
gf_optim *gf_train_optim_new(gf_ctx *ctx, gf_module *m, const gf_optim_params *defaults,
                              const gf_group_spec *specs, int n_specs);

/* ---- losses ------------------------------------------------------------------------------ */

typedef enum gf_loss_kind {
    GF_LOSS_CROSS_ENTROPY = 0, /* logits [N, C, ...], int64 class labels [N, ...]; or a
                                * sequence labeller's logits [N, T, C] with labels [N, T]
                                * (gf_loss_per_step), taken as [N*T, C] and [N*T] with the
                                * steps labelled GF_DS_IGNORE_LABEL (-100) left out: PyTorch's
                                * cross_entropy(out.reshape(-1, C), y.reshape(-1)) */
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

/* The batch a loss is computed on, for a loss that needs more than the targets (a teacher's
 * outputs for distillation, per-example weights, anything looked up by example). */
typedef struct gf_batch_info {
    const int64_t *idx;  /* [n] dataset indices of the examples, in the loader's order */
    int64_t n;           /* examples */
    gf_tensor *x;        /* the inputs the model ran on (after the loader's transform) */
    gf_tensor *y;        /* the targets */
    /* [n, extra_width] float32 arena tensor: the rows idx of the loss spec's extra table, in
     * training only (NULL in evaluation, where idx indexes another dataset, and without a
     * table) */
    gf_tensor *extra;
    int task;            /* gf_fit: the task the batch belongs to (0 with one loader) */
    int64_t epoch;       /* the loader's epoch and batch (0-based) */
    int64_t batch;
    bool training;       /* false in evaluation (gf_evaluate, gf_fit's validation) */
} gf_batch_info;

/* A loss that sees the batch: a scalar arena tensor from the model's output and b, NULL with
 * a context error. gf_fit calls it once per training batch, in the loader's order, and in
 * validation with b->training false. */
typedef gf_tensor *(*gf_batch_loss_fn)(gf_ctx *ctx, gf_tensor *output, const gf_batch_info *b,
                                       void *user);

typedef struct gf_loss_spec {
    gf_loss_kind kind;
    float label_smoothing; /* cross entropy, in [0, 1] (0) */
    /* cross entropy: per-class weights (PyTorch's weight=, the mean divided by the summed
     * weights of the targets), n_class_weights of them, borrowed; NULL: none */
    const float *class_weights;
    int n_class_weights;
    float beta;            /* smooth L1 (1) */
    gf_loss_fn fn;         /* CUSTOM (when batch_fn is NULL) */
    void *user;            /* passed to fn or batch_fn */
    gf_batch_loss_fn batch_fn; /* CUSTOM: called with the batch instead of fn */
    /* Per-example rows for batch_fn, by dataset index: extra[i * extra_width ..] belongs to
     * example i of the training data (i < extra_count). Borrowed; NULL: none. */
    const float *extra;
    int64_t extra_width, extra_count;
} gf_loss_spec;

gf_loss_spec gf_loss_default(gf_loss_kind kind);
/* The mean loss of a batch (an arena scalar), NULL with a context error. A batch loss
 * (batch_fn) needs the batch: use gf_loss_compute_batch. */
gf_tensor *gf_loss_compute(gf_ctx *ctx, const gf_loss_spec *loss, gf_tensor *output,
                           gf_tensor *target);
/* The same with the batch b (its targets are b->y): batch_fn gets b, with b->extra gathered
 * from loss->extra when b->training and b->extra is NULL (an index outside [0, extra_count)
 * is an error naming it); every other kind is gf_loss_compute(loss, output, b->y). */
gf_tensor *gf_loss_compute_batch(gf_ctx *ctx, const gf_loss_spec *loss, gf_tensor *output,
                                 const gf_batch_info *b);

/* Correct predictions in a batch, or -1 when accuracy does not apply: class labels (int64 [N])
 * with scores [N, C] (argmax, the first of equal maxima), or, for binary cross entropy, float
 * targets with one logit per example (logit > 0 vs target >= 0.5). scratch (out->numel floats)
 * is used when out is not contiguous; NULL then gives -1. A per-step batch gives -1: its
 * accuracy counts steps, not examples (gf_eval_batch_step_correct). */
int64_t gf_eval_batch_correct(const gf_loss_spec *loss, const gf_tensor *out, const gf_tensor *y,
                         float *scratch);
/* True for a sequence labeller's batch: out [N, T, C] with int64 labels y [N, T]. (When C ==
 * T an output laid out [N, C, T] reads as this too: give per-step logits as [N, T, C].) */
bool gf_loss_per_step(const gf_tensor *out, const gf_tensor *y);
/* A per-step batch: the steps whose argmax over C is their label, and in *scored the steps
 * counted (those not labelled GF_DS_IGNORE_LABEL); -1 when the batch is not per-step (or out
 * is not contiguous and scratch, out->numel floats, is NULL). */
int64_t gf_eval_batch_step_correct(const gf_tensor *out, const gf_tensor *y, float *scratch,
                                   int64_t *scored);

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
    int64_t correct; /* correct predictions, as gf_eval_batch_correct counts them; -1: not applicable */
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

/* The forward alone of x (no gradients: inference), cut into contiguous slices of examples, one
 * per replica, each run in its replica's context and thread; the slices' outputs, which must
 * keep one row per example along the first dimension, joined in order into a new tensor in
 * ctx's arena. gf_evaluate splits batches this way on two or more threads. NULL with a ctx
 * error (a replica's own error, or an output that does not keep its rows). */
gf_tensor *gf_replicas_forward(gf_ctx *ctx, gf_replicas *r, gf_tensor *x);

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
/* The exchange's optional start (the MPI one is gf_dist_grad_begin): called with the same
 * user right before a backward in ctx whose gradients the next grad_sync of opt exchanges, so
 * the hook can sum each gradient as soon as the backward has made it final
 * (gf_backward_watch) instead of after the whole backward. It is not called when the backward
 * runs elsewhere (replicas) or does not run (a skipped batch); the grad_sync that follows must
 * then give the same result. NULL: the exchange starts in grad_sync. */
typedef gf_status (*gf_grad_begin_fn)(gf_ctx *ctx, gf_optim *opt, void *user);

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
    gf_grad_begin_fn grad_begin; /* optional, for the first optimizer (gf_grad_begin_fn) */
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

/* The model's output for a batch, when it is not gf_module_forward(model, x): a multi-task
 * model's head for one task, a model that takes extra inputs. An arena tensor, or NULL with a
 * context error. */
typedef gf_tensor *(*gf_forward_fn)(gf_ctx *ctx, gf_module *model, gf_tensor *x, void *user);

/* One task of a gf_fit run with several loaders (gf_fit_params.tasks): its own batches, loss,
 * loss weight, forward and, optionally, an optimizer of its own. */
typedef struct gf_fit_task {
    const char *name;      /* in messages; NULL: "task <i>" */
    gf_loader *loader;     /* the task's training batches (borrowed) */
    gf_loss_spec loss;     /* gf_loss_default(kind); cross entropy when zeroed */
    float weight;          /* > 0: the task's loss is multiplied by it (1: left as it is) */
    gf_forward_fn forward; /* NULL: gf_module_forward(model, x) */
    void *forward_user;
    /* NULL, or an optimizer (over the task's own parameters, e.g. its head) stepped after
     * gf_fit's optimizer, with the same clipping, only after the steps the task takes part
     * in: a head outside a step does not move (PyTorch's zero_grad(set_to_none=True)). */
    gf_optim *opt;
} gf_fit_task;

/* Cross entropy, weight 1, gf_module_forward, no optimizer of its own. */
gf_fit_task gf_fit_task_default(gf_loader *loader);

/* How gf_fit takes batches from several tasks. An epoch ends when every task's loader has been
 * through its data once; a task whose loader is exhausted sits out the rest of the epoch. */
typedef enum gf_task_policy {
    /* Round-robin: each step takes the next task's batch (its weighted loss). */
    GF_TASKS_INTERLEAVE = 0,
    /* Each step takes one batch of every task that has one left: one backward and one step
     * on the sum of the weighted losses, in task order. */
    GF_TASKS_SUM,
    GF_TASKS_POLICY_COUNT
} gf_task_policy;

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
    /* With tasks (gf_fit_params.tasks; 1 without): each task's mean training loss this epoch
     * (unweighted; NaN when it had no finite batch) and the optimizer steps it took part in
     * (the run so far). Borrowed: valid during the epoch callback only (NULL in
     * gf_fit_result.last). */
    int n_tasks;
    const double *task_loss;
    const int64_t *task_steps;
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
    int task;                /* the task of the batch (0 with one loader); -1: several (sum) */
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
    /* Several tasks instead of one loader: gf_fit's train argument must then be NULL, its loss
     * is used for validation only, and each step takes batches of tasks[0..n_tasks) by
     * task_policy (the batches of a step and an accumulation group count as one in
     * accum_steps and in the step callback's batch). Checkpoints, resume_from and replicas
     * >= 2 do not combine with tasks (GF_ERR_INVALID). */
    const gf_fit_task *tasks;
    int n_tasks;
    gf_task_policy task_policy;
    /* Training across processes (see gf_grad_sync_fn; graft/dist.h sets both): the training
     * loader gives this process's share of each batch and the hook sums gradients and the
     * epoch's sums after each accumulation group. A group in which some process skipped a
     * batch (a non-finite loss on its share, under GF_NONFINITE_SKIP) is skipped by all.
     * NULL: one process. */
    gf_grad_sync_fn grad_sync;
    gf_grad_begin_fn grad_begin; /* optional (gf_grad_begin_fn); with grad_sync only */
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

/* ---- evaluation -------------------------------------------------------------------------------
 * One evaluator for every caller (gf_fit's validation, multi-task scores, strategy comparison,
 * the graft tool): a pass over a loader in evaluation mode without gradients. */

/* One example's prediction, handed to gf_eval_params.on_pred in the loader's order. */
typedef struct gf_eval_pred {
    int64_t index;  /* dataset index */
    int64_t label;  /* the true class; -1 without class labels */
    int64_t pred;   /* the predicted class (argmax; one logit: logit > 0); -1 for regression */
    float score;    /* the predicted class's probability (softmax of the scores; sigmoid of one
                     * logit); regression: the prediction (the first output) */
    float target;   /* regression: the target (the first); NaN with class labels */
} gf_eval_pred;
typedef void (*gf_eval_pred_fn)(const gf_eval_pred *p, void *user);

typedef struct gf_eval_params {
    /* Only the mean loss and the accuracy (counted as gf_eval_batch_correct counts): no confusion
     * matrix, per-class or regression metrics, top-k or predictions. */
    bool basic;
    /* GF_REDUCE_MEAN (default): each batch's mean loss times its size, summed, over the count;
     * GF_REDUCE_SUM: each batch's summed loss (built-in kinds), summed, over the count. */
    gf_reduction loss_reduction;
    int n_classes;          /* > 0: the outputs must be [n, n_classes] (an error naming both
                             * otherwise); 0: the outputs' width */
    int top_k;              /* >= 1: also the top-k accuracy (class labels) */
    gf_forward_fn forward;  /* NULL: gf_module_forward(model, x) */
    void *forward_user;
    gf_eval_pred_fn on_pred; /* each example's prediction; NULL: none */
    void *pred_user;
    /* 0 (default): with two or more context threads and a replicable model (and no custom
     * forward), each batch is split between one replica per thread (gf_replicas_forward);
     * 1: the whole batch in ctx, each op splitting its work; N >= 2: N replicas where the
     * model allows */
    int replicas;
} gf_eval_params;

gf_eval_params gf_eval_default_params(void);

/* What gf_evaluate_ex measured. Metrics that do not apply are NaN (arrays NULL). */
typedef struct gf_eval_result {
    int64_t count;          /* examples */
    /* what the loss and the accuracy are means over: count, or with per-step labels the
     * steps not labelled GF_DS_IGNORE_LABEL (tokens); the confusion matrix, per-class and
     * top-k metrics then count steps too, and on_pred is not called */
    int64_t scored;
    double loss;            /* mean loss */
    double accuracy;        /* class labels with [n, C] scores, or one logit with binary
                             * cross entropy (targets >= 0.5 are class 1), or per step */
    /* Classification (not basic): the confusion matrix (owned; rows true, columns predicted,
     * argmax as numpy's: the first maximum, NaN counting as the largest), per-class precision,
     * recall, F1 and support over all n_classes (sklearn's labels=range(C), zero_division 0),
     * and their macro averages over the classes present in labels or predictions (sklearn's
     * labels=None). Accuracy is then the confusion matrix's. */
    int n_classes;          /* 0 when there is no confusion matrix */
    gf_confusion *confusion;
    double *precision, *recall, *f1;
    int64_t *support;
    double macro_precision, macro_recall, macro_f1;
    int top_k;
    double top_k_accuracy;
    /* Regression (an MSE, L1 or smooth L1 loss, not basic): over every output value as one
     * series, as sklearn's mean_absolute_error, root_mean_squared_error and r2_score do for
     * one output. */
    double mae, rmse, r2;
} gf_eval_result;

/* One pass over loader (which continues from where it is: one gf_loader_next loop) with the
 * model in evaluation mode and gradients off (both restored), the loss by loss (NULL: cross
 * entropy; a batch loss gets b->training false), p NULL: the defaults. *out is overwritten
 * (free with gf_eval_result_free, also after an error). Errors name the batch's problem (a
 * label outside the classes, outputs that do not fit n_classes). */
gf_status gf_evaluate_ex(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss,
                         gf_loader *loader, const gf_eval_params *p, gf_eval_result *out);
void gf_eval_result_free(gf_eval_result *r);

/* gf_evaluate_ex with basic set: the mean loss over the examples and the accuracy (NaN when
 * there are no class labels). Either pointer may be NULL. */
gf_status gf_evaluate(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, gf_loader *loader,
                      double *mean_loss, double *accuracy);

/* ---- learning-rate finder ---------------------------------------------------------------------
 * fastai's lr_find (Smith 2015, "Cyclical Learning Rates"): train for up to num_it batches with
 * a learning rate growing exponentially from start_lr towards end_lr, record the smoothed loss
 * against the rate, and suggest rates from the curve. The model's parameters and buffers, the
 * optimizer's state and learning rates, the context RNG and the loader's position are put back
 * afterwards, bitwise: the sweep leaves no trace but its numbers. */
typedef struct gf_lr_find_params {
    double start_lr;        /* 1e-7 */
    double end_lr;          /* 10 */
    int num_it;             /* 100: batch i (0-based) trains at start * (end / start)^(i / num_it),
                             * as fastai's SchedExp; the loader wraps into its next epoch when it
                             * has fewer batches */
    bool stop_div;          /* true: stop once the smoothed loss exceeds div_factor times its
                             * minimum, or a loss is not finite */
    double div_factor;      /* 4 */
    double beta;            /* 0.98: the smoothed loss is the debiased exponential moving
                             * average avg = beta * avg + (1 - beta) * loss, avg / (1 - beta^k)
                             * (fastai's AvgSmoothLoss) */
    double clip_norm;       /* > 0: clip the gradients' L2 norm before each step */
    gf_forward_fn forward;  /* NULL: gf_module_forward(model, x) */
    void *forward_user;
} gf_lr_find_params;

gf_lr_find_params gf_lr_find_default_params(void);

typedef struct gf_lr_find_result {
    int n;                  /* batches run (points recorded) */
    double *lrs;            /* [n] group 0's learning rate of each batch (owned) */
    double *losses;         /* [n] the smoothed loss after each batch (owned) */
    double *raw_losses;     /* [n] each batch's own loss (owned) */
    bool diverged;          /* the sweep was stopped by stop_div */
    /* Suggestions, computed as fastai 2.7 does over the points [num_it / 10, n - 5) (all points
     * when fewer than 2 remain) up to the first NaN; NaN with fewer than 2 points. */
    double lr_valley;       /* fastai's default: a rate two thirds of the way down the longest
                             * descending run of the loss (its "valley") */
    double lr_steep;        /* the rate where the loss falls fastest against log(lr) */
    double lr_min;          /* the rate of the lowest smoothed loss */
    double lr_min_div10;    /* lr_min / 10 (fastai's "minimum" suggestion) */
    int i_valley, i_steep, i_min; /* their indices into lrs (-1: none) */
} gf_lr_find_result;

/* Runs the sweep on batches from train with opt (built over model's parameters; with several
 * groups each keeps its rate's ratio to group 0's) and the loss (NULL: cross entropy). The
 * model trains in training mode; its mode, weights, buffers, opt's state and rates, the
 * context RNG and train's position are restored afterwards, also after an error. *out is
 * overwritten (free with gf_lr_find_result_free, also after an error). Errors (GF_ERR_INVALID
 * naming the parameter): start_lr <= 0, end_lr <= start_lr, num_it < 2, div_factor <= 1, beta
 * outside [0, 1); and the training step's own errors. The context is reset after every batch. */
gf_status gf_lr_find(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, gf_optim *opt,
                     gf_loader *train, const gf_lr_find_params *p, gf_lr_find_result *out);
void gf_lr_find_result_free(gf_lr_find_result *r);
/* The suggestions of a recorded sweep (lrs, losses, n; num_it as run), filled into r. */
void gf_lr_find_suggest(gf_lr_find_result *r, int num_it);

#ifdef __cplusplus
}
#endif
#endif
