/* The training loop (gf_fit), written only against graft's public API so a user can copy it (with
 * the rest of src/train) and change the loop: batches from a loader, loss, backward,
 * accumulation, clipping, optimizer and schedule steps, validation, early stopping, keep-best,
 * callbacks, checkpoints and exact resume. gf_fit is a sequence of named steps over one
 * fit_run: validate, set up (or resume), then per epoch the batches and the end-of-epoch work. */
#define _POSIX_C_SOURCE 200809L
#include "graft/autograd.h"
#include "train/train_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

gf_fit_params gf_fit_default_params(void) {
    gf_fit_params p;
    memset(&p, 0, sizeof p);
    p.epochs = 10;
    p.accum_steps = 1;
    return p;
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

/* One optimizer step from the accumulated gradients of `used` of p->accum_steps batches (a
 * short group is rescaled to their mean), then a per-step schedule's step. */
static gf_status apply_step(gf_ctx *ctx, gf_optim *opt, gf_sched *sched, const gf_fit_params *p,
                            int used, double *grad_norm) {
    *grad_norm = NAN;
    if (p->accum_steps > 1 && used != p->accum_steps)
        scale_grads(opt, (float)p->accum_steps / (float)used);
    const gf_step_params sp = {
        .clip_norm = p->clip_norm, .clip_value = p->clip_value, .sched = sched};
    gf_status st = gf_train_update(ctx, opt, &sp, grad_norm);
    return st != GF_OK ? st : gf_train_sched_step(ctx, sched);
}

/* The replicas gf_fit runs with (*out NULL: none), by gf_fit_params.replicas. */
static gf_status make_replicas(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, int want,
                               gf_replicas **out) {
    *out = NULL;
    if (want == 1) return GF_OK;
    const bool custom = loss && loss->kind == GF_LOSS_CUSTOM;
    char why[384];
    if (want == 0) {
        if (gf_ctx_threads(ctx) < 2 || custom || !gf_module_replicable(model, why, sizeof why))
            return GF_OK;
        want = gf_ctx_threads(ctx);
    } else if (custom) {
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: replicas %d with a custom loss (it "
                                "need not be a mean over examples); use 0 or 1", want);
    }
    *out = gf_replicas_new(ctx, model, want);
    return *out ? GF_OK : gf_ctx_status(ctx);
}

/* Forward, loss and backward of one batch, the gradient of scale * loss added to the
 * parameters' only when the loss is finite: in the replicas when there are enough examples for
 * them, else in ctx. *lv: the batch's mean loss; *correct: as gf_batch_correct (-1 also when
 * sc is NULL: accuracy no longer counted). */
static gf_status forward_backward(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss,
                                  gf_replicas *rep, const gf_batch *b, float scale,
                                  gf_train_scratch *sc, double *lv, int64_t *correct) {
    if (rep && b->n >= 2 * gf_replicas_count(rep)) {
        gf_replicas_out ro;
        gf_status st = gf_replicas_step(ctx, rep, loss, b->x, b->y, scale, &ro);
        *lv = ro.loss;
        *correct = sc ? ro.correct : -1;
        return st;
    }
    gf_tensor *out = gf_module_forward(ctx, model, b->x);
    gf_tensor *l = gf_loss_compute(ctx, loss, out, b->y);
    if (!l) return gf_ctx_status(ctx);
    *lv = (double)gf_get_f32(l, 0);
    *correct = sc ? gf_batch_correct(loss, out, b->y, gf_train_scratch_for(sc, out->numel)) : -1;
    if (!isfinite(*lv)) return GF_OK;
    gf_tensor *scaled = scale != 1.0f ? gf_mul_scalar(ctx, l, scale) : l;
    if (!scaled) return gf_ctx_status(ctx);
    return gf_backward(ctx, scaled);
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* Everything one gf_fit call works with. io.p and io.snap point into the struct itself. */
typedef struct fit_run {
    gf_ctx *ctx;
    gf_module *model;
    const gf_loss_spec *loss;
    gf_optim *opt;
    gf_sched *sched;
    gf_loader *train, *val;
    gf_fit_params p;
    gf_monitor mon;          /* AUTO resolved */
    bool maximize;           /* the monitored value is an accuracy */
    bool checkpointing;      /* p.checkpoint.dir is set */
    int64_t n_batches;       /* of the training loader, per epoch */
    gf_snapshot snap;        /* keep-best weights (restore_best) */
    gf_train_scratch sc;
    gf_replicas *rep;        /* NULL: ops split their own work */
    cJSON *settings;         /* the run's settings (checkpointing or resuming) */
    char *settings_text;
    gf_fit_io io;
    gf_ckpt_progress prog;   /* where the run starts, then the last checkpoint's position */
    gf_run_sums sums;
    gf_run_sums group0;      /* the sums where the accumulation group began (p.grad_sync) */
    double best;             /* best monitored value so far (NaN: none) */
    int bad_epochs;
    gf_fit_result res;
} fit_run;

/* The argument and settings checks, before anything is touched; resolves the monitor. */
static gf_status validate(fit_run *r) {
    gf_ctx *ctx = r->ctx;
    const gf_fit_params *p = &r->p;
    if (!r->model || !r->opt || !r->train)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: NULL model, optimizer or train loader");
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
    return GF_OK;
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
    r->n_batches = gf_loader_batches_per_epoch(r->train);
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
    if ((st = make_replicas(ctx, r->model, r->loss, p->replicas, &r->rep)) != GF_OK) return st;
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

/* Forward, loss and backward of batch b and its place in the epoch's sums: a non-finite loss
 * stops the run (STOP) or counts the batch as skipped (SKIP). *used counts the batches whose
 * gradients the current accumulation group holds. Resets the context. */
static gf_status train_batch(fit_run *r, int epoch, const gf_batch *b, gf_step_stats *ss,
                             int *used) {
    gf_ctx *ctx = r->ctx;
    gf_run_sums *s = &r->sums;
    s->batches++;
    if (b->n == 0) { /* an empty share (a batch smaller than the process count): no gradient */
        (*used)++;
        return GF_OK;
    }
    /* a share of a batch split between processes weighs share / batch, so that the processes'
     * summed gradients are the whole batch's mean gradient (1 for a whole batch) */
    float scale = 1.0f / (float)r->p.accum_steps;
    if (b->global_n > b->n) scale *= (float)b->n / (float)b->global_n;
    double lv = NAN;
    int64_t c = -1;
    gf_status st = forward_backward(ctx, r->model, r->loss, r->rep, b, scale,
                                    s->acc_ok ? &r->sc : NULL, &lv, &c);
    if (st != GF_OK) {
        gf_ctx_reset(ctx);
        return st;
    }
    ss->loss = lv;
    if (!isfinite(lv)) {
        if (r->p.on_nonfinite == GF_NONFINITE_STOP) {
            gf_ctx_reset(ctx);
            return gf_ctx_set_error(ctx, GF_ERR_NUMERIC,
                                    "fit: the training loss is %s at epoch %d, batch %lld of "
                                    "%lld (after %lld optimizer steps); set on_nonfinite to "
                                    "GF_NONFINITE_SKIP to skip such batches",
                                    isnan(lv) ? "nan" : "inf", epoch, (long long)b->index + 1,
                                    (long long)r->n_batches, (long long)(r->res.steps));
        }
        ss->skipped = true;
        s->skipped++;
        r->res.skipped++;
    } else {
        s->loss_sum += lv * (double)b->n;
        s->seen += b->n;
        if (c < 0) s->acc_ok = false;
        else s->correct += c;
        (*used)++;
    }
    gf_ctx_reset(ctx);
    return GF_OK;
}

/* ---- training across processes (p.grad_sync) ------------------------------------------------ */

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
    double v[5] = {s->loss_sum - g->loss_sum, (double)(s->seen - g->seen),
                   (double)(s->correct - g->correct), s->acc_ok ? 0.0 : 1.0,
                   (double)(micro - *used)};
    gf_status st = r->p.grad_sync(r->ctx, r->opt, v, 5, r->p.grad_sync_user);
    if (st != GF_OK) return st;
    if (v[4] > 0.5) {
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

/* The end of an accumulation group: the optimizer step from the `used` batches with gradients
 * (none when all were skipped), zeroed gradients, and a step checkpoint when one is due. */
static gf_status end_group(fit_run *r, int epoch, gf_step_stats *ss, int used,
                           int64_t *saved_at) {
    gf_status st;
    if (used > 0) {
        if ((st = apply_step(r->ctx, r->opt, r->sched, &r->p, used, &ss->grad_norm)) != GF_OK)
            return st;
        ss->stepped = true;
        r->res.steps++;
    }
    gf_optim_zero_grad(r->opt);
    const gf_ckpt_policy *cp = &r->p.checkpoint;
    if (ss->stepped && r->checkpointing && cp->every_steps > 0 &&
        gf_optim_steps(r->opt) % cp->every_steps == 0) {
        if ((st = save_mid_epoch(r, epoch)) != GF_OK) return st;
        *saved_at = r->sums.batches;
    }
    return GF_OK;
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
    gf_optim_zero_grad(r->opt);
    gf_batch b;
    /* a stop asked for mid-group waits for the group's step, so a checkpoint never has to
     * hold half-accumulated gradients */
    while (!(*stop && micro == 0) && !batches_done && gf_loader_next(ctx, r->train, &b)) {
        gf_step_stats ss;
        memset(&ss, 0, sizeof ss);
        ss.epoch = epoch;
        ss.batch = b.index;
        ss.batches = r->n_batches;
        ss.lr = gf_optim_group_lr(r->opt, 0);
        ss.grad_norm = NAN;
        if (micro == 0) r->group0 = r->sums;
        if ((st = train_batch(r, epoch, &b, &ss, &used)) != GF_OK) return st;
        micro++;
        if (micro == p->accum_steps || b.index == r->n_batches - 1) {
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
    gf_status st = validate(&r);
    if (st != GF_OK) return st;
    if ((st = setup(&r)) == GF_OK) {
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
    gf_snapshot_free(&r.snap);
    free(r.sc.p);
    cJSON_Delete(r.settings);
    free(r.settings_text);
    if (result) *result = r.res;
    return st;
}
