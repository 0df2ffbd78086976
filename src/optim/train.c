/* The training loop (gf_fit) and evaluation, written only against graft's public API so a user
 * can copy this file and change the loop: batches from a loader, loss, backward, accumulation,
 * clipping, optimizer and schedule steps, validation, early stopping, keep-best, callbacks. */
#define _POSIX_C_SOURCE 200809L
#include "graft/graft.h"
#include "graft/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

gf_loss_spec gf_loss_default(gf_loss_kind kind) {
    gf_loss_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.beta = 1.0f;
    return s;
}

static const char *loss_name(gf_loss_kind k) {
    static const char *const names[GF_LOSS_KIND_COUNT] = {"cross_entropy", "mse", "l1",
                                                          "smooth_l1", "bce_with_logits", "custom"};
    return (k >= 0 && k < GF_LOSS_KIND_COUNT) ? names[k] : "?";
}

/* A float target of the output's numel but another shape ([N] for [N, 1]) is viewed as the
 * output's shape. */
static gf_tensor *match_target(gf_ctx *ctx, gf_tensor *out, gf_tensor *y) {
    if (y->dtype != GF_F32 || gf_same_shape(out, y) || out->numel != y->numel) return y;
    return gf_reshape(ctx, y, out->ndim, out->shape);
}

gf_tensor *gf_loss_compute(gf_ctx *ctx, const gf_loss_spec *loss, gf_tensor *out, gf_tensor *y) {
    gf_loss_spec ce = gf_loss_default(GF_LOSS_CROSS_ENTROPY);
    const gf_loss_spec *l = loss ? loss : &ce;
    if (!out || !y) {
        if (gf_ctx_status(ctx) == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss %s: NULL output or target",
                             loss_name(l->kind));
        return NULL;
    }
    switch (l->kind) {
    case GF_LOSS_CROSS_ENTROPY: {
        gf_ce_params p = gf_ce_default_params();
        p.label_smoothing = l->label_smoothing;
        return gf_cross_entropy_ex(ctx, out, y, &p);
    }
    case GF_LOSS_MSE: return gf_mse_loss(ctx, out, match_target(ctx, out, y), GF_REDUCE_MEAN);
    case GF_LOSS_L1: return gf_l1_loss(ctx, out, match_target(ctx, out, y), GF_REDUCE_MEAN);
    case GF_LOSS_SMOOTH_L1:
        return gf_smooth_l1_loss(ctx, out, match_target(ctx, out, y), GF_REDUCE_MEAN, l->beta);
    case GF_LOSS_BCE_WITH_LOGITS:
        return gf_bce_with_logits(ctx, out, match_target(ctx, out, y), NULL, NULL, GF_REDUCE_MEAN);
    case GF_LOSS_CUSTOM: {
        if (!l->fn) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss custom: no function given");
            return NULL;
        }
        gf_tensor *v = l->fn(ctx, out, y, l->user);
        if (v && v->numel != 1) {
            char s[64];
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "loss custom: returned %s, expected a scalar",
                             gf_shape_str(v, s, sizeof s));
            return NULL;
        }
        if (!v && gf_ctx_status(ctx) == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss custom: returned NULL");
        return v;
    }
    default:
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss: unknown kind %d", (int)l->kind);
        return NULL;
    }
}

/* Correct predictions in a batch, or -1 when accuracy does not apply: class labels (int64 [N])
 * with scores [N, C] (argmax, the first of equal maxima), or, for binary cross entropy, float
 * targets with one logit per example (logit > 0 vs target >= 0.5). */
static int64_t count_correct(const gf_loss_spec *loss, const gf_tensor *out, const gf_tensor *y,
                             float *scratch) {
    const int64_t n = y->numel;
    if (out->ndim < 1 || out->shape[0] != n || n == 0) return -1;
    const float *o = gf_f32(out);
    if (!gf_tensor_is_contiguous(out)) {
        gf_copy_out(out, scratch);
        o = scratch;
    }
    int64_t correct = 0;
    if (y->dtype == GF_I64 && out->ndim == 2) {
        const int64_t c = out->shape[1];
        for (int64_t i = 0; i < n; i++) {
            int64_t best = 0;
            for (int64_t j = 1; j < c; j++)
                if (o[i * c + j] > o[i * c + best]) best = j;
            correct += best == gf_get_i64(y, i);
        }
        return correct;
    }
    if (loss && loss->kind == GF_LOSS_BCE_WITH_LOGITS && y->dtype == GF_F32 && out->numel == n) {
        for (int64_t i = 0; i < n; i++) correct += (o[i] > 0.0f) == (gf_get_f32(y, i) >= 0.5f);
        return correct;
    }
    return -1;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Scratch for non-contiguous outputs in count_correct (grown on demand). */
typedef struct scratch {
    float *p;
    int64_t n;
} scratch;

static float *scratch_for(scratch *s, int64_t n) {
    if (n > s->n) {
        float *p = realloc(s->p, sizeof(float) * (size_t)n);
        if (!p) return NULL;
        s->p = p;
        s->n = n;
    }
    return s->p;
}

gf_status gf_evaluate(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, gf_loader *loader,
                      double *mean_loss, double *accuracy) {
    if (mean_loss) *mean_loss = NAN;
    if (accuracy) *accuracy = NAN;
    if (!model || !loader)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "evaluate: NULL model or loader");
    const bool was_training = gf_module_is_training(model);
    const bool had_grad = gf_ctx_set_grad_enabled(ctx, false);
    gf_module_train(model, false);
    double loss_sum = 0.0;
    int64_t count = 0, correct = 0;
    bool acc_ok = true;
    scratch sc = {NULL, 0};
    gf_batch b;
    gf_status st = GF_OK;
    while (gf_loader_next(ctx, loader, &b)) {
        gf_tensor *out = gf_module_forward(ctx, model, b.x);
        gf_tensor *l = gf_loss_compute(ctx, loss, out, b.y);
        if (!l) {
            st = gf_ctx_status(ctx);
            gf_ctx_reset(ctx);
            break;
        }
        loss_sum += (double)gf_get_f32(l, 0) * (double)b.n;
        count += b.n;
        int64_t c = acc_ok ? count_correct(loss, out, b.y, scratch_for(&sc, out->numel)) : -1;
        if (c < 0) acc_ok = false;
        else correct += c;
        gf_ctx_reset(ctx);
    }
    if (st == GF_OK) st = gf_ctx_status(ctx);
    free(sc.p);
    gf_module_train(model, was_training);
    gf_ctx_set_grad_enabled(ctx, had_grad);
    if (st != GF_OK) return st;
    if (mean_loss && count > 0) *mean_loss = loss_sum / (double)count;
    if (accuracy && count > 0 && acc_ok) *accuracy = (double)correct / (double)count;
    return GF_OK;
}

gf_fit_params gf_fit_default_params(void) {
    gf_fit_params p;
    memset(&p, 0, sizeof p);
    p.epochs = 10;
    p.accum_steps = 1;
    return p;
}

/* A copy of the model's parameters and buffers (keep-best). */
typedef struct snapshot {
    gf_named_tensors *list;
    void **data;
    bool taken;
} snapshot;

static gf_status snap_init(gf_ctx *ctx, snapshot *s, gf_module *m) {
    s->list = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    if (!s->list) return gf_ctx_status(ctx);
    s->data = calloc((size_t)(s->list->n ? s->list->n : 1), sizeof *s->data);
    if (!s->data) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "fit: out of memory (keep-best)");
    for (int i = 0; i < s->list->n; i++) {
        const gf_tensor *t = s->list->items[i].tensor;
        s->data[i] = malloc(gf_dtype_size(t->dtype) * (size_t)(t->numel ? t->numel : 1));
        if (!s->data[i])
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "fit: out of memory for the best weights");
    }
    return GF_OK;
}

static void snap_take(snapshot *s) {
    for (int i = 0; i < s->list->n; i++) gf_copy_out(s->list->items[i].tensor, s->data[i]);
    s->taken = true;
}

static void snap_restore(snapshot *s) {
    for (int i = 0; i < s->list->n; i++) gf_copy_in(s->list->items[i].tensor, s->data[i]);
}

static void snap_free(snapshot *s) {
    for (int i = 0; s->list && s->data && i < s->list->n; i++) free(s->data[i]);
    free(s->data);
    gf_named_tensors_free(s->list);
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

static const char *monitor_name(gf_monitor m) {
    switch (m) {
    case GF_MONITOR_VAL_LOSS: return "val_loss";
    case GF_MONITOR_VAL_ACC: return "val_acc";
    case GF_MONITOR_TRAIN_LOSS: return "train_loss";
    case GF_MONITOR_TRAIN_ACC: return "train_acc";
    default: return "auto";
    }
}

/* One optimizer step from the accumulated gradients of `used` of `group` batches. */
static gf_status apply_step(gf_ctx *ctx, gf_optim *opt, gf_sched *sched, const gf_fit_params *p,
                            int used, double *grad_norm) {
    *grad_norm = NAN;
    if (p->accum_steps > 1 && used != p->accum_steps)
        scale_grads(opt, (float)p->accum_steps / (float)used);
    if (p->clip_norm > 0 &&
        gf_optim_clip_grad_norm(ctx, opt, p->clip_norm, 2.0, false, grad_norm) != GF_OK)
        return gf_ctx_status(ctx);
    if (p->clip_value > 0 && gf_optim_clip_grad_value(ctx, opt, p->clip_value) != GF_OK)
        return gf_ctx_status(ctx);
    if (gf_optim_step(ctx, opt) != GF_OK) return gf_ctx_status(ctx);
    if (sched && gf_sched_get_interval(sched) == GF_SCHED_PER_STEP &&
        gf_sched_step(ctx, sched) != GF_OK)
        return gf_ctx_status(ctx);
    return GF_OK;
}

gf_status gf_fit(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, gf_optim *opt,
                 gf_sched *sched, gf_loader *train, gf_loader *val, const gf_fit_params *params,
                 gf_fit_result *result) {
    gf_fit_params p = params ? *params : gf_fit_default_params();
    gf_fit_result res;
    memset(&res, 0, sizeof res);
    res.best_metric = NAN;
    if (result) *result = res;
    if (gf_ctx_status(ctx) != GF_OK) return gf_ctx_status(ctx); /* an earlier error stands */
    if (!model || !opt || !train)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: NULL model, optimizer or train loader");
    if (p.epochs < 1 || p.accum_steps < 1 || p.patience < 0 || !(p.clip_norm >= 0) ||
        !(p.clip_value >= 0) || !(p.min_delta >= 0))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "fit: invalid settings (epochs %d >= 1, accum_steps %d >= 1, "
                                "patience %d >= 0, clip_norm %g, clip_value %g, min_delta %g >= 0)",
                                p.epochs, p.accum_steps, p.patience, p.clip_norm, p.clip_value,
                                p.min_delta);
    gf_monitor mon = p.monitor;
    if (mon == GF_MONITOR_AUTO) mon = val ? GF_MONITOR_VAL_LOSS : GF_MONITOR_TRAIN_LOSS;
    if (!val && (mon == GF_MONITOR_VAL_LOSS || mon == GF_MONITOR_VAL_ACC))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: monitor %s needs a validation loader",
                                monitor_name(mon));
    const bool maximize = mon == GF_MONITOR_VAL_ACC || mon == GF_MONITOR_TRAIN_ACC;

    snapshot snap = {NULL, NULL, false};
    scratch sc = {NULL, 0};
    gf_status st = GF_OK;
    if (p.restore_best && (st = snap_init(ctx, &snap, model)) != GF_OK) goto done;

    const int64_t n_batches = gf_loader_batches_per_epoch(train);
    double best = NAN;
    int bad_epochs = 0;
    gf_module_train(model, true);
    for (int epoch = 1; epoch <= p.epochs; epoch++) {
        const double t0 = now_seconds();
        gf_epoch_stats es;
        memset(&es, 0, sizeof es);
        es.epoch = epoch;
        es.epochs = p.epochs;
        double loss_sum = 0.0;
        int64_t seen = 0, correct = 0;
        bool acc_ok = true, stop = false;
        int micro = 0, used = 0; /* batches in the current accumulation group / with gradients */
        gf_optim_zero_grad(opt);
        gf_batch b;
        while (!stop && gf_loader_next(ctx, train, &b)) {
            gf_step_stats ss;
            memset(&ss, 0, sizeof ss);
            ss.epoch = epoch;
            ss.batch = b.index;
            ss.batches = n_batches;
            ss.lr = gf_optim_group_lr(opt, 0);
            ss.grad_norm = NAN;
            es.batches++;
            gf_tensor *out = gf_module_forward(ctx, model, b.x);
            gf_tensor *l = gf_loss_compute(ctx, loss, out, b.y);
            if (!l) {
                st = gf_ctx_status(ctx);
                gf_ctx_reset(ctx);
                goto done;
            }
            const double lv = (double)gf_get_f32(l, 0);
            ss.loss = lv;
            if (!isfinite(lv)) {
                if (p.on_nonfinite == GF_NONFINITE_STOP) {
                    gf_ctx_reset(ctx);
                    st = gf_ctx_set_error(ctx, GF_ERR_NUMERIC,
                                          "fit: the training loss is %s at epoch %d, batch %lld of "
                                          "%lld (after %lld optimizer steps); set on_nonfinite to "
                                          "GF_NONFINITE_SKIP to skip such batches",
                                          isnan(lv) ? "nan" : "inf", epoch,
                                          (long long)b.index + 1, (long long)n_batches,
                                          (long long)(res.steps));
                    goto done;
                }
                ss.skipped = true;
                es.skipped++;
                res.skipped++;
            } else {
                gf_tensor *scaled = p.accum_steps > 1
                                        ? gf_mul_scalar(ctx, l, 1.0f / (float)p.accum_steps)
                                        : l;
                if (!scaled || gf_backward(ctx, scaled) != GF_OK) {
                    st = gf_ctx_status(ctx);
                    gf_ctx_reset(ctx);
                    goto done;
                }
                loss_sum += lv * (double)b.n;
                seen += b.n;
                int64_t c = acc_ok ? count_correct(loss, out, b.y, scratch_for(&sc, out->numel)) : -1;
                if (c < 0) acc_ok = false;
                else correct += c;
                used++;
            }
            gf_ctx_reset(ctx);
            micro++;
            if (micro == p.accum_steps || b.index == n_batches - 1) {
                if (used > 0) {
                    if ((st = apply_step(ctx, opt, sched, &p, used, &ss.grad_norm)) != GF_OK)
                        goto done;
                    ss.stepped = true;
                    res.steps++;
                }
                gf_optim_zero_grad(opt);
                micro = used = 0;
            }
            ss.step = res.steps;
            if (p.on_step && !p.on_step(&ss, p.user)) {
                stop = true;
                res.stopped_by_callback = true;
            }
        }
        if ((st = gf_ctx_status(ctx)) != GF_OK) goto done; /* a loader error */
        es.steps = gf_optim_steps(opt);
        es.train_loss = seen > 0 ? loss_sum / (double)seen : NAN;
        es.train_acc = (seen > 0 && acc_ok) ? (double)correct / (double)seen : NAN;
        es.val_loss = es.val_acc = NAN;
        if (val && (st = gf_evaluate(ctx, model, loss, val, &es.val_loss, &es.val_acc)) != GF_OK)
            goto done;
        switch (mon) {
        case GF_MONITOR_VAL_LOSS: es.monitored = es.val_loss; break;
        case GF_MONITOR_VAL_ACC: es.monitored = es.val_acc; break;
        case GF_MONITOR_TRAIN_ACC: es.monitored = es.train_acc; break;
        default: es.monitored = es.train_loss; break;
        }
        if (sched && gf_sched_get_interval(sched) == GF_SCHED_PER_EPOCH && !stop &&
            (st = gf_sched_step_metric(ctx, sched, es.monitored)) != GF_OK)
            goto done;
        const double m = es.monitored;
        es.improved = !isnan(m) && (isnan(best) || (maximize ? m > best + p.min_delta
                                                             : m < best - p.min_delta));
        if (es.improved) {
            best = m;
            bad_epochs = 0;
            res.best_epoch = epoch;
            res.best_metric = m;
            if (p.restore_best) snap_take(&snap);
        } else {
            bad_epochs++;
        }
        es.bad_epochs = bad_epochs;
        es.lr = gf_optim_group_lr(opt, 0);
        es.seconds = now_seconds() - t0;
        res.epochs_run = epoch;
        res.last = es;
        if (p.on_epoch && !p.on_epoch(&es, p.user)) res.stopped_by_callback = true;
        if (res.stopped_by_callback) break;
        if (p.patience > 0 && bad_epochs >= p.patience) {
            res.stopped_early = true;
            break;
        }
    }
    if (p.restore_best && snap.taken) {
        snap_restore(&snap);
        res.restored_best = true;
    }
done:
    snap_free(&snap);
    free(sc.p);
    if (result) *result = res;
    return st;
}
