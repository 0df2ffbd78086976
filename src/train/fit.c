/* The training loop (gf_fit), written only against graft's public API so a user can copy it (with
 * the rest of src/train) and change the loop: batches from a loader (or from several tasks'
 * loaders, interleaved or summed), the loss (one that sees the batch too), backward,
 * accumulation, clipping, optimizer and schedule steps, validation, early stopping, keep-best,
 * callbacks, checkpoints and exact resume. It is graft's only training loop: multi-task
 * training and distillation run through it. gf_fit is a sequence of named steps over one
 * fit_run: validate, set up (or resume), then per epoch the steps and the end-of-epoch work. */
#define _POSIX_C_SOURCE 200809L
#include "graft/autograd.h"
#include "train/train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gf_fit_params gf_fit_default_params(void) {
    gf_fit_params p;
    memset(&p, 0, sizeof p);
    p.epochs = 10;
    p.accum_steps = 1;
    return p;
}

gf_fit_task gf_fit_task_default(gf_loader *loader) {
    gf_fit_task t;
    memset(&t, 0, sizeof t);
    t.loader = loader;
    t.loss = gf_loss_default(GF_LOSS_CROSS_ENTROPY);
    t.weight = 1.0f;
    return t;
}

/* Multiplies every gradient of the optimizer's trainable parameters by f. */
static void scale_grads(gf_optim *opt, float f) {
    for (int i = 0; i < gf_optim_n_params(opt); i++) {
        gf_tensor *p = gf_optim_param(opt, i);
        if (!p->requires_grad || !p->grad) continue;
        float *g = gf_f32(p->grad);
        for (int64_t k = 0; k < p->grad->numel; k++) g[k] *= f;
    }
}

/* The replicas gf_fit runs with (*out NULL: none), by gf_fit_params.replicas. */
static gf_status make_replicas(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, int want,
                               gf_replicas **out) {
    *out = NULL;
    if (want == 1) return GF_OK;
    const bool custom = loss && loss->kind == GF_LOSS_CUSTOM;
    char why[384];
    if (want == 0) {
        if (gf_ctx_threads(ctx) < 2 || custom || !gf_module_replicable(model, why, sizeof why) ||
            (gf_ctx_batch_norm_synced(ctx) && gf_module_uses_batch_stats(model)))
            return GF_OK;
        want = gf_ctx_threads(ctx);
    } else if (custom) {
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: replicas %d with a custom loss (it "
                                "need not be a mean over examples); use 0 or 1", want);
    }
    *out = gf_replicas_new(ctx, model, want);
    return *out ? GF_OK : gf_ctx_status(ctx);
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* One source of batches: the train loader, or one of gf_fit_params.tasks. */
typedef struct fit_task {
    const char *name;        /* NULL for the train loader */
    char name_buf[24];
    gf_loader *loader;
    const gf_loss_spec *loss;
    float weight;
    gf_forward_fn forward;
    void *forward_user;
    gf_optim *opt;           /* the task's own optimizer (may be NULL) */
    int64_t per_epoch;       /* its batches per epoch */
    gf_batch b;              /* its batch of the current step */
    bool in;                 /* it takes part in the current step */
    bool in_group;           /* ... in the current accumulation group, with a gradient */
    bool done;               /* its loader is through the epoch */
    double lv;               /* its batch's loss, correct predictions */
    int64_t correct;
    double loss_sum;         /* this epoch, finite batches: sum of loss x examples */
    int64_t seen;
    double loss_sum0;        /* loss_sum and seen where the accumulation group began */
    int64_t seen0;
    int64_t steps;           /* optimizer steps it took part in */
} fit_task;

/* Everything one gf_fit call works with. io.p and io.snap point into the struct itself. */
typedef struct fit_run {
    gf_ctx *ctx;
    gf_module *model;
    const gf_loss_spec *loss;
    gf_optim *opt;
    gf_sched *sched;
    gf_loader *train, *val;
    gf_fit_params p;
    fit_task *tasks;         /* the train loader as one task, or p.tasks */
    int n_tasks;
    bool multi;              /* p.tasks given */
    int next, remaining;     /* interleave: whose turn it is; tasks not done this epoch */
    double *task_loss;       /* [n_tasks] for the epoch callback */
    int64_t *task_steps;
    gf_monitor mon;          /* AUTO resolved */
    bool maximize;           /* the monitored value is an accuracy */
    bool checkpointing;      /* p.checkpoint.dir is set */
    int64_t n_batches;       /* steps per epoch: the training loader's batches, or the tasks' */
    gf_snapshot snap;        /* keep-best weights (restore_best) */
    gf_train_scratch sc;
    gf_replicas *rep;        /* NULL: ops split their own work */
    bool group_ends;         /* the step in progress is its accumulation group's last */
    cJSON *settings;         /* the run's settings (checkpointing or resuming) */
    char *settings_text;
    gf_fit_io io;
    gf_ckpt_progress prog;   /* where the run starts, then the last checkpoint's position */
    gf_run_sums sums;
    gf_run_sums group0;      /* the sums where the accumulation group began (p.grad_sync) */
    double *sync_v;          /* the group's sums as sent to p.grad_sync: 5 + 2 per task */
    double best;             /* best monitored value so far (NaN: none) */
    int bad_epochs;
    gf_fit_result res;
} fit_run;

/* One optimizer step from the accumulated gradients of `used` of p->accum_steps batches (a
 * short group is rescaled to their mean): gf_fit's optimizer, then the own optimizers of the
 * tasks in the group, then a per-step schedule's step. */
static gf_status apply_step(fit_run *r, int used, double *grad_norm) {
    const gf_fit_params *p = &r->p;
    *grad_norm = NAN;
    const bool rescale = p->accum_steps > 1 && used != p->accum_steps;
    const float f = (float)p->accum_steps / (float)used;
    const gf_step_params sp = {
        .clip_norm = p->clip_norm, .clip_value = p->clip_value, .sched = r->sched};
    if (rescale) scale_grads(r->opt, f);
    gf_status st = gf_train_update(r->ctx, r->opt, &sp, grad_norm);
    for (int j = 0; j < r->n_tasks && st == GF_OK; j++) {
        fit_task *t = &r->tasks[j];
        if (!t->opt || !t->in_group) continue;
        if (rescale) scale_grads(t->opt, f);
        st = gf_train_update(r->ctx, t->opt, &sp, NULL);
    }
    return st != GF_OK ? st : gf_train_sched_step(r->ctx, r->sched);
}

static void zero_grads(fit_run *r) {
    gf_optim_zero_grad(r->opt);
    for (int j = 0; j < r->n_tasks; j++) gf_optim_zero_grad(r->tasks[j].opt);
}

/* Task t's next batch, or the end of its epoch; false on a loader error. */
static bool take_batch(fit_run *r, fit_task *t, int *n_in) {
    if (gf_loader_next(r->ctx, t->loader, &t->b)) {
        t->in = true;
        (*n_in)++;
    } else {
        t->done = true;
        r->remaining--;
    }
    return gf_ctx_status(r->ctx) == GF_OK;
}

/* The tasks' batches of the next step (fit_task.in, .b); false at the end of the epoch (or on
 * a loader error). Interleave: the next task in turn with a batch left; sum: every task with a
 * batch left. */
static bool next_step(fit_run *r) {
    for (int j = 0; j < r->n_tasks; j++) r->tasks[j].in = false;
    if (!r->multi) return (r->tasks[0].in = gf_loader_next(r->ctx, r->train, &r->tasks[0].b));
    int n_in = 0;
    if (r->p.task_policy == GF_TASKS_INTERLEAVE) {
        while (n_in == 0 && r->remaining > 0) {
            fit_task *t = &r->tasks[r->next];
            r->next = (r->next + 1) % r->n_tasks;
            if (!t->done && !take_batch(r, t, &n_in)) return false;
        }
    } else {
        for (int j = 0; j < r->n_tasks; j++)
            if (!r->tasks[j].done && !take_batch(r, &r->tasks[j], &n_in)) return false;
    }
    return n_in > 0;
}

/* Forward and loss of task t's batch into t->lv and t->correct (-1 also when sc is NULL:
 * accuracy no longer counted); *loss: the arena scalar. */
static gf_status task_forward_loss(fit_run *r, int j, gf_train_scratch *sc, gf_tensor **loss) {
    gf_ctx *ctx = r->ctx;
    fit_task *t = &r->tasks[j];
    const gf_batch *b = &t->b;
    gf_tensor *out = t->forward ? t->forward(ctx, r->model, b->x, t->forward_user)
                                : gf_module_forward(ctx, r->model, b->x);
    const gf_batch_info bi = {b->idx, b->n, b->x, b->y, NULL, j, b->epoch, b->index, true};
    *loss = gf_loss_compute_batch(ctx, t->loss, out, &bi);
    if (!*loss) return gf_ctx_status(ctx) != GF_OK ? gf_ctx_status(ctx) : GF_ERR_INVALID;
    t->lv = (double)gf_get_f32(*loss, 0);
    t->correct = sc ? gf_eval_batch_correct(t->loss, out, b->y, gf_train_scratch_for(sc, out->numel))
                    : -1;
    return GF_OK;
}

/* Forward, loss and backward of the step's batches, the gradient of scale * (the sum of the
 * tasks' weighted losses) added to the parameters' only when every loss is finite: in the
 * replicas when there are enough examples for them, else in ctx. *bad: the first task whose
 * loss is not finite (-1: none); *lv: the step's loss. */
static gf_status forward_backward(fit_run *r, float scale, gf_train_scratch *sc, int *bad,
                                  double *lv) {
    gf_ctx *ctx = r->ctx;
    *bad = -1;
    fit_task *t0 = &r->tasks[0];
    if (r->rep && t0->b.n >= 2 * gf_replicas_count(r->rep)) { /* one loader only */
        gf_replicas_out ro;
        gf_status st = gf_replicas_step(ctx, r->rep, r->loss, t0->b.x, t0->b.y, scale, &ro);
        *lv = t0->lv = ro.loss;
        t0->correct = sc ? ro.correct : -1;
        if (st == GF_OK && !isfinite(ro.loss)) *bad = 0;
        return st;
    }
    gf_tensor *total = NULL;
    *lv = 0.0;
    for (int j = 0; j < r->n_tasks; j++) {
        fit_task *t = &r->tasks[j];
        if (!t->in) continue;
        if (t->b.n == 0) { /* an empty share of this task's batch: nothing to add here */
            t->lv = 0.0;
            t->correct = sc ? 0 : -1;
            continue;
        }
        gf_tensor *l;
        gf_status st = task_forward_loss(r, j, sc, &l);
        if (st != GF_OK) return st;
        if (!isfinite(t->lv)) {
            *bad = j;
            *lv = t->lv;
            return GF_OK;
        }
        /* a task's share of a batch split between processes weighs share / batch */
        float w = t->weight;
        if (r->multi && t->b.global_n > t->b.n) w *= (float)t->b.n / (float)t->b.global_n;
        gf_tensor *wl = w == 1.0f ? l : gf_mul_scalar(ctx, l, w);
        total = total ? gf_add(ctx, total, wl) : wl;
        if (!total) return gf_ctx_status(ctx);
        *lv += w == 1.0f ? t->lv : (double)gf_get_f32(wl, 0);
    }
    if (!r->multi) *lv = t0->lv;
    if (!total) return GF_OK; /* every task's share was empty here */
    gf_tensor *scaled = scale != 1.0f ? gf_mul_scalar(ctx, total, scale) : total;
    if (!scaled) return gf_ctx_status(ctx);
    /* the group's gradients turn final in this backward: their exchange can start in it */
    if (r->group_ends && r->p.grad_sync && r->p.grad_begin) {
        gf_status st = r->p.grad_begin(ctx, r->opt, r->p.grad_sync_user);
        if (st != GF_OK) return st;
    }
    return gf_backward(ctx, scaled);
}

/* The checks of gf_fit_params.tasks. */
static gf_status validate_tasks(fit_run *r) {
    gf_ctx *ctx = r->ctx;
    const gf_fit_params *p = &r->p;
    if (p->n_tasks < 1 || !p->tasks || (unsigned)p->task_policy >= GF_TASKS_POLICY_COUNT)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: tasks %s with n_tasks %d (need >= 1) "
                                "and task_policy %d (need interleave or sum)",
                                p->tasks ? "given" : "NULL", p->n_tasks, (int)p->task_policy);
    if (p->checkpoint.dir || p->resume_from || p->replicas >= 2)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: several tasks do not combine with "
                                "checkpoints (%s), resume_from (%s) or replicas %d >= 2",
                                p->checkpoint.dir ? p->checkpoint.dir : "none",
                                p->resume_from ? p->resume_from : "none", p->replicas);
    for (int j = 0; j < p->n_tasks; j++) {
        const gf_fit_task *t = &p->tasks[j];
        const char *name = t->name ? t->name : "";
        if (!t->loader)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: task %d \"%s\" has no loader", j,
                                    name);
        if (!(t->weight > 0) || !isfinite(t->weight))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: task %d \"%s\": weight %g must "
                                    "be > 0", j, name, (double)t->weight);
    }
    return GF_OK;
}

/* The argument and settings checks, before anything is touched; resolves the monitor. */
static gf_status validate(fit_run *r) {
    gf_ctx *ctx = r->ctx;
    const gf_fit_params *p = &r->p;
    if (!r->model || !r->opt || (!r->train && !r->multi))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: NULL model, optimizer or train loader");
    if (r->multi && r->train)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: a train loader and %d tasks given: the "
                                "tasks bring their own loaders (pass NULL)", p->n_tasks);
    if (p->epochs < 1 || p->accum_steps < 1 || p->patience < 0 || !(p->clip_norm >= 0) ||
        !(p->clip_value >= 0) || !(p->min_delta >= 0))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "fit: invalid settings (epochs %d >= 1, accum_steps %d >= 1, "
                                "patience %d >= 0, clip_norm %g, clip_value %g, min_delta %g >= 0)",
                                p->epochs, p->accum_steps, p->patience, p->clip_norm, p->clip_value,
                                p->min_delta);
    const gf_ckpt_policy *cp = &p->checkpoint;
    if (cp->dir && (cp->every_steps < 0 || cp->keep_last < 0 || cp->keep_best < 0))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "fit: invalid checkpoint settings (every_steps %lld, keep_last %d, "
                                "keep_best %d: none may be negative)",
                                (long long)cp->every_steps, cp->keep_last, cp->keep_best);
    r->mon = p->monitor;
    if (r->mon == GF_MONITOR_AUTO) r->mon = r->val ? GF_MONITOR_VAL_LOSS : GF_MONITOR_TRAIN_LOSS;
    if (!r->val && (r->mon == GF_MONITOR_VAL_LOSS || r->mon == GF_MONITOR_VAL_ACC))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: monitor %s needs a validation loader",
                                gf_monitor_name(r->mon));
    r->maximize = r->mon == GF_MONITOR_VAL_ACC || r->mon == GF_MONITOR_TRAIN_ACC;
    if (p->replicas < 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: replicas %d, must be >= 0", p->replicas);
    return r->multi ? validate_tasks(r) : GF_OK;
}

/* Keep-best buffers, the checkpoint parts and settings, the resumed state (p.resume_from), stale
 * temporary files, training mode and the replicas: everything before the first batch. */
static gf_status setup(fit_run *r) {
    gf_ctx *ctx = r->ctx;
    const gf_fit_params *p = &r->p;
    const gf_ckpt_policy *cp = &p->checkpoint;
    gf_status st;
    if (p->restore_best &&
        (st = gf_snapshot_init(ctx, &r->snap, r->model, "fit: out of memory (keep-best)")) != GF_OK)
        return st;
    r->n_batches = 0;
    for (int j = 0; j < r->n_tasks; j++) {
        fit_task *t = &r->tasks[j];
        t->per_epoch = gf_loader_batches_per_epoch(t->loader);
        if (r->p.task_policy == GF_TASKS_SUM) {
            if (t->per_epoch > r->n_batches) r->n_batches = t->per_epoch;
        } else {
            r->n_batches += t->per_epoch;
        }
    }
    r->checkpointing = cp->dir != NULL;
    gf_fit_io *io = &r->io;
    io->parts.model = r->model;
    io->parts.opt = r->opt;
    io->parts.sched = r->sched;
    io->parts.rng = gf_ctx_rng(ctx);
    io->parts.train = r->train;
    io->parts.val = r->val;
    io->p = p;
    io->snap = &r->snap;
    io->maximize = r->maximize;
    if (r->checkpointing || p->resume_from) {
        r->settings = gf_fit_settings_json(ctx, p, r->mon, r->loss, r->opt, r->sched, r->train,
                                           r->val);
        r->settings_text = r->settings ? cJSON_PrintUnformatted(r->settings) : NULL;
        if (!r->settings_text)
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "fit: out of memory (settings)");
        io->parts.settings = r->settings_text;
    }
    /* where the run starts: epoch prog.epoch + 1, after `sums.batches` of its batches */
    r->prog = gf_ckpt_progress_init();
    gf_run_sums_new_epoch(&r->sums);
    if (p->resume_from) {
        if ((st = gf_fit_resume(ctx, io, r->settings, &r->prog, &r->sums)) != GF_OK) return st;
        r->res.resumed = true;
        r->res.epochs_run = (int)r->prog.epoch;
        r->res.best_epoch = (int)r->prog.best_epoch;
        r->res.best_metric = r->prog.best_metric;
        r->res.steps = r->sums.steps;
        r->res.skipped = r->sums.skipped_total;
    }
    if (r->checkpointing && (st = gf_ckpt_clean_temp(ctx, cp->dir, cp->prefix, NULL)) != GF_OK)
        return st;
    r->best = r->prog.best_metric;
    r->bad_epochs = (int)r->prog.bad_epochs;
    gf_module_train(r->model, true);
    if (!r->multi && (st = make_replicas(ctx, r->model, r->loss, p->replicas, &r->rep)) != GF_OK)
        return st;
    if (r->res.resumed && r->prog.batch == 0 && p->patience > 0 && r->bad_epochs >= p->patience)
        r->res.stopped_early = true; /* the checkpoint is the end of a run that stopped early */
    return GF_OK;
}

/* Records where the run is (at a step inside `epoch`, 1-based, or at its end with metric) in
 * prog and the run's counters in sums, for a checkpoint. */
static void mark_progress(fit_run *r, int64_t epoch, int64_t batch, double metric) {
    r->prog.epoch = epoch;
    r->prog.batch = batch;
    r->prog.best_metric = r->best;
    r->prog.best_epoch = r->res.best_epoch;
    r->prog.bad_epochs = r->bad_epochs;
    r->prog.metric = metric;
    r->sums.steps = r->res.steps;
    r->sums.skipped_total = r->res.skipped;
}

/* A regular checkpoint after the current batch of `epoch` (1-based), before its end. */
static gf_status save_mid_epoch(fit_run *r, int epoch) {
    mark_progress(r, epoch - 1, r->sums.batches, NAN);
    return gf_fit_save(r->ctx, &r->io, &r->prog, &r->sums, true, false, &r->res);
}

/* The error of a non-finite loss under GF_NONFINITE_STOP, naming the task's batch. */
static gf_status nonfinite_error(fit_run *r, int epoch, int j, double lv) {
    const fit_task *t = &r->tasks[j];
    char task[96] = "";
    if (r->multi) snprintf(task, sizeof task, "task \"%s\": ", t->name);
    return gf_ctx_set_error(r->ctx, GF_ERR_NUMERIC,
                            "fit: %sthe training loss is %s at epoch %d, batch %lld of %lld (after "
                            "%lld optimizer steps); set on_nonfinite to GF_NONFINITE_SKIP to skip "
                            "such batches",
                            task, isnan(lv) ? "nan" : "inf", epoch, (long long)t->b.index + 1,
                            (long long)(r->multi ? t->per_epoch : r->n_batches),
                            (long long)r->res.steps);
}

/* Forward, loss and backward of the step's batches and their place in the epoch's sums: a
 * non-finite loss stops the run (STOP) or counts the step as skipped (SKIP). *used counts the
 * steps whose gradients the current accumulation group holds. Resets the context. */
static gf_status train_step(fit_run *r, int epoch, gf_step_stats *ss, int *used) {
    gf_ctx *ctx = r->ctx;
    gf_run_sums *s = &r->sums;
    s->batches++;
    const gf_batch *b0 = &r->tasks[0].b;
    if (!r->multi && b0->n == 0) { /* an empty share (a batch smaller than the process count) */
        (*used)++;
        return GF_OK;
    }
    /* a share of a batch split between processes weighs share / batch, so that the processes'
     * summed gradients are the whole batch's mean gradient (1 for a whole batch) */
    float scale = 1.0f / (float)r->p.accum_steps;
    if (!r->multi && b0->global_n > b0->n) scale *= (float)b0->n / (float)b0->global_n;
    double lv = NAN;
    int bad = -1;
    gf_status st = forward_backward(r, scale, s->acc_ok ? &r->sc : NULL, &bad, &lv);
    gf_ctx_reset(ctx);
    if (st != GF_OK) return st;
    ss->loss = lv;
    if (bad >= 0) {
        if (r->p.on_nonfinite == GF_NONFINITE_STOP) return nonfinite_error(r, epoch, bad, lv);
        ss->skipped = true;
        s->skipped++;
        r->res.skipped++;
        return GF_OK;
    }
    for (int j = 0; j < r->n_tasks; j++) {
        fit_task *t = &r->tasks[j];
        if (!t->in) continue;
        s->loss_sum += t->lv * (double)t->b.n;
        s->seen += t->b.n;
        t->loss_sum += t->lv * (double)t->b.n;
        t->seen += t->b.n;
        t->in_group = true;
        if (t->correct < 0) s->acc_ok = false;
        else s->correct += t->correct;
    }
    (*used)++;
    return GF_OK;
}

/* ---- training across processes (p.grad_sync) ------------------------------------------------ */

/* The sums where an accumulation group begins: what sync_group replaces by every process's. */
static void group_begins(fit_run *r) {
    r->group0 = r->sums;
    for (int j = 0; j < r->n_tasks; j++) {
        r->tasks[j].loss_sum0 = r->tasks[j].loss_sum;
        r->tasks[j].seen0 = r->tasks[j].seen;
    }
}

/* The group's gradients of the tasks' own optimizers (their heads), summed over the processes
 * like gf_fit's optimizer's. in_group is the same on every process: each takes the same
 * tasks' batches in every step (a share may be empty), and a group any process skipped is
 * dropped by all before this. */
static gf_status sync_task_optims(fit_run *r) {
    for (int j = 0; j < r->n_tasks; j++) {
        fit_task *t = &r->tasks[j];
        if (!t->opt || !t->in_group) continue;
        gf_status st = r->p.grad_sync(r->ctx, t->opt, NULL, 0, r->p.grad_sync_user);
        if (st != GF_OK) return st;
    }
    return GF_OK;
}

/* Sums the gradients of the group that just ended and its part of the epoch's sums over the
 * processes, so that every process steps with the whole batches' gradient and holds the whole
 * epoch's sums (the monitored value; checkpoints that any number of processes can resume). A
 * group in which some process skipped a batch is dropped by every process, as one process
 * drops a batch whose loss is not finite. micro: the group's batches; *used: those with
 * gradients here, 0 when the group is dropped. */
static gf_status sync_group(fit_run *r, int micro, int *used, gf_step_stats *ss) {
    if (!r->p.grad_sync) return GF_OK;
    gf_run_sums *s = &r->sums;
    const gf_run_sums *g = &r->group0;
    const int nv = 5 + 2 * r->n_tasks;
    if (!r->sync_v && !(r->sync_v = malloc(sizeof(double) * (size_t)nv)))
        return gf_ctx_set_error(r->ctx, GF_ERR_NOMEM, "fit: out of memory");
    double *v = r->sync_v; /* allocated once for the run */
    v[0] = s->loss_sum - g->loss_sum;
    v[1] = (double)(s->seen - g->seen);
    v[2] = (double)(s->correct - g->correct);
    v[3] = s->acc_ok ? 0.0 : 1.0;
    v[4] = (double)(micro - *used);
    for (int j = 0; j < r->n_tasks; j++) { /* each task's part, for its epoch means */
        v[5 + 2 * j] = r->tasks[j].loss_sum - r->tasks[j].loss_sum0;
        v[6 + 2 * j] = (double)(r->tasks[j].seen - r->tasks[j].seen0);
    }
    gf_status st = r->p.grad_sync(r->ctx, r->opt, v, nv, r->p.grad_sync_user);
    const bool dropped = st == GF_OK && v[4] > 0.5;
    for (int j = 0; st == GF_OK && j < r->n_tasks; j++) {
        fit_task *t = &r->tasks[j];
        t->loss_sum = t->loss_sum0 + (dropped ? 0.0 : v[5 + 2 * j]);
        t->seen = t->seen0 + (dropped ? 0 : llround(v[6 + 2 * j]));
    }
    if (st == GF_OK && !dropped && r->multi) st = sync_task_optims(r);
    if (st != GF_OK) return st;
    if (dropped) {
        r->res.skipped += micro - (s->skipped - g->skipped);
        s->skipped = g->skipped + micro;
        s->loss_sum = g->loss_sum;
        s->seen = g->seen;
        s->correct = g->correct;
        *used = 0;
        ss->skipped = true;
        ss->loss = NAN;
        return GF_OK;
    }
    s->loss_sum = g->loss_sum + v[0];
    s->seen = g->seen + llround(v[1]);
    s->correct = g->correct + llround(v[2]);
    s->acc_ok = g->acc_ok && v[3] < 0.5;
    if (micro == 1 && v[1] > 0) ss->loss = v[0] / v[1]; /* the whole batch's loss */
    return GF_OK;
}

/* The end of an accumulation group: the optimizer step from the `used` steps with gradients
 * (none when all were skipped), zeroed gradients, and a step checkpoint when one is due. */
static gf_status end_group(fit_run *r, int epoch, gf_step_stats *ss, int used,
                           int64_t *saved_at) {
    gf_status st;
    if (used > 0) {
        if ((st = apply_step(r, used, &ss->grad_norm)) != GF_OK) return st;
        ss->stepped = true;
        r->res.steps++;
        for (int j = 0; j < r->n_tasks; j++) r->tasks[j].steps += r->tasks[j].in_group;
    }
    for (int j = 0; j < r->n_tasks; j++) r->tasks[j].in_group = false;
    zero_grads(r);
    const gf_ckpt_policy *cp = &r->p.checkpoint;
    if (ss->stepped && r->checkpointing && cp->every_steps > 0 &&
        gf_optim_steps(r->opt) % cp->every_steps == 0) {
        if ((st = save_mid_epoch(r, epoch)) != GF_OK) return st;
        *saved_at = r->sums.batches;
    }
    return GF_OK;
}

/* The task of the current step for the step callback: its index, or -1 for several. */
static int step_task(const fit_run *r) {
    int task = -1;
    for (int j = 0; j < r->n_tasks; j++) {
        if (!r->tasks[j].in) continue;
        if (task >= 0) return -1;
        task = j;
    }
    return task;
}

/* The batches of `epoch` (from where a resumed run stands), with the step callback. *stop: the
 * callback asked to stop; *saved_at: the batch count of the epoch's last step checkpoint. */
static gf_status run_batches(fit_run *r, int epoch, bool *stop, int64_t *saved_at) {
    gf_ctx *ctx = r->ctx;
    const gf_fit_params *p = &r->p;
    /* a checkpoint after the epoch's last batch resumes straight into its end */
    const bool batches_done = r->sums.batches == r->n_batches;
    int micro = 0, used = 0; /* batches in the current accumulation group / with gradients */
    gf_status st;
    *stop = false;
    *saved_at = -1;
    zero_grads(r);
    r->next = 0;
    r->remaining = r->n_tasks;
    for (int j = 0; j < r->n_tasks; j++) {
        fit_task *t = &r->tasks[j];
        t->done = t->in_group = false;
        t->loss_sum = 0.0;
        t->seen = 0;
    }
    /* a stop asked for mid-group waits for the group's step, so a checkpoint never has to
     * hold half-accumulated gradients */
    while (!(*stop && micro == 0) && !batches_done && next_step(r)) {
        /* the step's place in the epoch: the loader's batch index with one loader */
        const int64_t at = r->multi ? r->sums.batches : r->tasks[0].b.index;
        gf_step_stats ss;
        memset(&ss, 0, sizeof ss);
        ss.epoch = epoch;
        ss.batch = at;
        ss.batches = r->n_batches;
        ss.lr = gf_optim_group_lr(r->opt, 0);
        ss.grad_norm = NAN;
        ss.task = step_task(r);
        if (micro == 0) group_begins(r);
        r->group_ends = micro + 1 == p->accum_steps || at == r->n_batches - 1;
        if ((st = train_step(r, epoch, &ss, &used)) != GF_OK) return st;
        micro++;
        if (r->group_ends) {
            if ((st = sync_group(r, micro, &used, &ss)) != GF_OK) return st;
            if ((st = end_group(r, epoch, &ss, used, saved_at)) != GF_OK) return st;
            micro = used = 0;
        }
        ss.step = r->res.steps;
        if (p->on_step && !p->on_step(&ss, p->user)) {
            *stop = true;
            r->res.stopped_by_callback = true;
        }
    }
    return gf_ctx_status(ctx); /* a loader error */
}

/* The monitored value of an epoch. */
static double monitored(gf_monitor mon, const gf_epoch_stats *es) {
    switch (mon) {
    case GF_MONITOR_VAL_LOSS: return es->val_loss;
    case GF_MONITOR_VAL_ACC: return es->val_acc;
    case GF_MONITOR_TRAIN_ACC: return es->train_acc;
    default: return es->train_loss;
    }
}

/* The end-of-epoch work: the epoch's stats, validation, a per-epoch schedule step, improvement
 * (keep-best, patience), the epoch callback and the epoch checkpoints. */
static gf_status end_epoch(fit_run *r, int epoch, double t0, gf_epoch_stats *es) {
    gf_ctx *ctx = r->ctx;
    const gf_fit_params *p = &r->p;
    const gf_run_sums *s = &r->sums;
    gf_status st;
    es->batches = s->batches;
    es->skipped = s->skipped;
    es->steps = gf_optim_steps(r->opt);
    es->train_loss = s->seen > 0 ? s->loss_sum / (double)s->seen : NAN;
    es->train_acc = (s->seen > 0 && s->acc_ok) ? (double)s->correct / (double)s->seen : NAN;
    es->val_loss = es->val_acc = NAN;
    if (r->val &&
        (st = gf_evaluate(ctx, r->model, r->loss, r->val, &es->val_loss, &es->val_acc)) != GF_OK)
        return st;
    es->monitored = monitored(r->mon, es);
    if (r->sched && gf_sched_get_interval(r->sched) == GF_SCHED_PER_EPOCH &&
        (st = gf_sched_step_metric(ctx, r->sched, es->monitored)) != GF_OK)
        return st;
    const double m = es->monitored;
    es->improved = !isnan(m) && (isnan(r->best) || (r->maximize ? m > r->best + p->min_delta
                                                                : m < r->best - p->min_delta));
    if (es->improved) {
        r->best = m;
        r->bad_epochs = 0;
        r->res.best_epoch = epoch;
        r->res.best_metric = m;
        if (p->restore_best) gf_snapshot_take(&r->snap);
    } else {
        r->bad_epochs++;
    }
    es->bad_epochs = r->bad_epochs;
    es->lr = gf_optim_group_lr(r->opt, 0);
    es->seconds = gf_now_seconds() - t0;
    r->res.epochs_run = epoch;
    r->res.last = *es;
    r->res.last.n_tasks = es->n_tasks = r->n_tasks;
    for (int j = 0; j < r->n_tasks; j++) {
        const fit_task *t = &r->tasks[j];
        r->task_loss[j] = t->seen > 0 ? t->loss_sum / (double)t->seen : NAN;
        r->task_steps[j] = t->steps;
    }
    es->task_loss = r->task_loss;
    es->task_steps = r->task_steps;
    if (p->on_epoch && !p->on_epoch(es, p->user)) r->res.stopped_by_callback = true;
    const gf_ckpt_policy *cp = &p->checkpoint;
    if (r->checkpointing && (cp->every_epoch || cp->keep_best > 0)) {
        gf_run_sums_new_epoch(&r->sums);
        mark_progress(r, epoch, 0, m);
        if ((st = gf_fit_save(ctx, &r->io, &r->prog, &r->sums, cp->every_epoch, cp->keep_best > 0,
                              &r->res)) != GF_OK)
            return st;
    }
    return GF_OK;
}

/* One epoch: its batches, then its end-of-epoch work unless the step callback stopped it
 * early (then a checkpoint of that very batch, so a resumed run continues with the next one).
 * *stop: the run ends after this epoch. */
static gf_status run_epoch(fit_run *r, int epoch, bool first, bool *stop) {
    const double t0 = gf_now_seconds();
    gf_epoch_stats es;
    memset(&es, 0, sizeof es);
    es.epoch = epoch;
    es.epochs = r->p.epochs;
    if (!first) gf_run_sums_new_epoch(&r->sums);
    bool stop_asked;
    int64_t saved_at;
    gf_status st = run_batches(r, epoch, &stop_asked, &saved_at);
    if (st != GF_OK) return st;
    if (stop_asked && r->sums.batches < r->n_batches) {
        if (r->checkpointing && saved_at != r->sums.batches &&
            (st = save_mid_epoch(r, epoch)) != GF_OK)
            return st;
        r->res.epochs_run = epoch - 1;
        *stop = true;
        return GF_OK;
    }
    if ((st = end_epoch(r, epoch, t0, &es)) != GF_OK) return st;
    if (r->res.stopped_by_callback) *stop = true;
    else if (r->p.patience > 0 && r->bad_epochs >= r->p.patience) r->res.stopped_early = true;
    return GF_OK;
}

/* The batch sources: the train loader as one task, or gf_fit_params.tasks. */
static gf_status make_tasks(fit_run *r) {
    const int n = r->multi ? r->p.n_tasks : 1;
    r->tasks = calloc((size_t)n, sizeof *r->tasks);
    r->task_loss = calloc((size_t)n, sizeof *r->task_loss);
    r->task_steps = calloc((size_t)n, sizeof *r->task_steps);
    if (!r->tasks || !r->task_loss || !r->task_steps)
        return gf_ctx_set_error(r->ctx, GF_ERR_NOMEM, "fit: out of memory (tasks)");
    r->n_tasks = n;
    if (!r->multi) {
        r->tasks[0].loader = r->train;
        r->tasks[0].loss = r->loss;
        r->tasks[0].weight = 1.0f;
        return GF_OK;
    }
    for (int j = 0; j < n; j++) {
        const gf_fit_task *src = &r->p.tasks[j];
        fit_task *t = &r->tasks[j];
        t->name = src->name;
        if (!t->name) {
            snprintf(t->name_buf, sizeof t->name_buf, "task %d", j);
            t->name = t->name_buf;
        }
        t->loader = src->loader;
        t->loss = &src->loss;
        t->weight = src->weight;
        t->forward = src->forward;
        t->forward_user = src->forward_user;
        t->opt = src->opt;
    }
    return GF_OK;
}

gf_status gf_fit(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, gf_optim *opt,
                 gf_sched *sched, gf_loader *train, gf_loader *val, const gf_fit_params *params,
                 gf_fit_result *result) {
    fit_run r;
    memset(&r, 0, sizeof r);
    r.res.best_metric = NAN;
    if (result) *result = r.res;
    if (gf_ctx_status(ctx) != GF_OK) return gf_ctx_status(ctx); /* an earlier error stands */
    r.ctx = ctx;
    r.model = model;
    r.loss = loss;
    r.opt = opt;
    r.sched = sched;
    r.train = train;
    r.val = val;
    r.p = params ? *params : gf_fit_default_params();
    r.multi = r.p.tasks != NULL || r.p.n_tasks != 0;
    gf_status st = validate(&r);
    if (st != GF_OK) return st;
    if ((st = make_tasks(&r)) == GF_OK && (st = setup(&r)) == GF_OK) {
        const int first_epoch = (int)r.prog.epoch + 1;
        bool stop = false;
        for (int epoch = first_epoch; epoch <= r.p.epochs && !r.res.stopped_early && !stop;
             epoch++)
            if ((st = run_epoch(&r, epoch, epoch == first_epoch, &stop)) != GF_OK) break;
    }
    if (st == GF_OK && r.p.restore_best && r.snap.taken) {
        gf_snapshot_restore(&r.snap);
        r.res.restored_best = true;
    }
    gf_replicas_free(r.rep);
    free(r.tasks);
    free(r.sync_v);
    free(r.task_loss);
    free(r.task_steps);
    gf_snapshot_free(&r.snap);
    free(r.sc.p);
    cJSON_Delete(r.settings);
    free(r.settings_text);
    if (result) *result = r.res;
    return st;
}
