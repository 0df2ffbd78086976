/* The evaluator (gf_evaluate_ex, and gf_evaluate on top of it): one pass over a loader in
 * evaluation mode without gradients, the mean loss, the accuracy and, unless asked for the
 * basics only, the confusion matrix with per-class precision / recall / F1, top-k accuracy,
 * regression errors and each example's prediction. Every evaluation in graft goes through it:
 * gf_fit's validation, the multi-task scores, the strategy comparison and the graft tool. */
#include "train/train_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float *gf_train_scratch_for(gf_train_scratch *s, int64_t n) {
    if (n > s->n) {
        float *p = realloc(s->p, sizeof(float) * (size_t)n);
        if (!p) return NULL;
        s->p = p;
        s->n = n;
    }
    return s->p;
}

gf_eval_params gf_eval_default_params(void) {
    gf_eval_params p;
    memset(&p, 0, sizeof p);
    p.loss_reduction = GF_REDUCE_MEAN;
    return p;
}

void gf_eval_result_free(gf_eval_result *r) {
    if (!r) return;
    gf_confusion_free(r->confusion);
    free(r->precision);
    free(r->recall);
    free(r->f1);
    free(r->support);
    memset(r, 0, sizeof *r);
}

/* The running sums of one evaluation. */
typedef struct eval_run {
    gf_ctx *ctx;
    const gf_loss_spec *loss;
    const gf_eval_params *p;
    bool sum_loss;          /* each batch's summed loss (GF_REDUCE_SUM on a built-in kind) */
    double loss_sum;
    int64_t count, correct;
    int64_t scored;         /* what loss and accuracy average over: examples, or steps */
    float *rows;            /* per-step batches: the scored steps' scores */
    int64_t cap_rows;
    bool acc_ok;            /* every batch had an accuracy */
    gf_confusion *cm;       /* full: class labels (or one logit with BCE: 2 classes) */
    int64_t topk_hits;
    bool topk_ok;
    float *yt, *yp;         /* full, regression: targets and predictions */
    int64_t n_reg, cap_reg;
    bool reg_ok;
    int64_t *pred, *truth;  /* a batch's classes */
    int64_t cap_pred;
    gf_train_scratch sc;
    gf_replicas *rep;       /* batches split between threads (NULL: none) */
} eval_run;

static bool is_regression(const gf_loss_spec *l) {
    return l && (l->kind == GF_LOSS_MSE || l->kind == GF_LOSS_L1 || l->kind == GF_LOSS_SMOOTH_L1);
}

/* out's values as a contiguous array (borrowed: the tensor's or the scratch). */
static const float *values(eval_run *r, const gf_tensor *out) {
    if (gf_tensor_is_contiguous(out)) return gf_f32(out);
    float *s = gf_train_scratch_for(&r->sc, out->numel);
    if (s) gf_copy_out(out, s);
    else gf_ctx_set_error(r->ctx, GF_ERR_NOMEM, "evaluate: out of memory");
    return s;
}

static bool grow_batch(eval_run *r, int64_t n) {
    if (n <= r->cap_pred) return true;
    int64_t *p = realloc(r->pred, sizeof(int64_t) * (size_t)n);
    if (p) r->pred = p;
    int64_t *t = p ? realloc(r->truth, sizeof(int64_t) * (size_t)n) : NULL;
    if (t) r->truth = t;
    if (!p || !t) {
        gf_ctx_set_error(r->ctx, GF_ERR_NOMEM, "evaluate: out of memory");
        return false;
    }
    r->cap_pred = n;
    return true;
}

/* The probability of class c among the k scores s (softmax, in double). */
static float softmax_at(const float *s, int64_t k, int64_t c) {
    double m = s[0], sum = 0;
    for (int64_t j = 1; j < k; j++)
        if (s[j] > m) m = s[j];
    for (int64_t j = 0; j < k; j++) sum += exp((double)s[j] - m);
    return (float)(exp((double)s[c] - m) / sum);
}

/* A per-step batch's scored steps (label not GF_DS_IGNORE_LABEL) as rows: their k scores
 * into r->rows, their labels into r->truth; *n: how many. NULL when out of memory. */
static const float *step_rows(eval_run *r, const gf_tensor *y, const float *s, int64_t k,
                              int64_t *n) {
    const int64_t m = y->numel;
    if (!grow_batch(r, m)) return NULL;
    if (m * k > r->cap_rows) {
        float *p = realloc(r->rows, sizeof(float) * (size_t)(m * k));
        if (!p) {
            gf_ctx_set_error(r->ctx, GF_ERR_NOMEM, "evaluate: out of memory");
            return NULL;
        }
        r->rows = p;
        r->cap_rows = m * k;
    }
    int64_t j = 0;
    for (int64_t i = 0; i < m; i++) {
        const int64_t t = gf_i64(y)[i];
        if (t == GF_DS_IGNORE_LABEL) continue;
        memcpy(r->rows + j * k, s + i * k, sizeof(float) * (size_t)k);
        r->truth[j++] = t;
    }
    *n = j;
    return r->rows;
}

/* Class labels with [n, k] scores, per-step labels with [n, T, k] scores (every scored step a
 * row), or one logit per example with binary cross entropy: the confusion matrix, the correct
 * count, top-k and the predictions. *cls: false (and nothing done) when the batch is not a
 * classification batch. */
static gf_status classify(eval_run *r, const gf_batch *b, const gf_tensor *out, bool *cls) {
    gf_ctx *ctx = r->ctx;
    int64_t n = b->n;
    const bool steps = gf_loss_per_step(out, b->y);
    const bool labels = steps || (b->y->dtype == GF_I64 && out->ndim == 2 && out->shape[0] == n);
    const bool binary = !labels && r->loss && r->loss->kind == GF_LOSS_BCE_WITH_LOGITS &&
                        b->y->dtype == GF_F32 && out->numel == n;
    *cls = labels || binary;
    if (!*cls) return GF_OK;
    const int64_t k = binary ? 2 : out->shape[out->ndim - 1];
    if (!r->cm && !(r->cm = gf_confusion_new(ctx, (int)k))) return gf_ctx_status(ctx);
    const float *s = values(r, out);
    if (s && steps) s = step_rows(r, b->y, s, k, &n);
    if (!s || !grow_batch(r, n)) return gf_ctx_status(ctx);
    for (int64_t i = 0; i < n; i++) {
        if (binary) {
            r->pred[i] = s[i] > 0.0f;
            r->truth[i] = gf_f32(b->y)[i] >= 0.5f;
            continue;
        }
        int64_t best = 0; /* numpy's argmax: the first maximum, NaN counting as the largest */
        for (int64_t j = 1; j < k; j++) {
            const float v = s[i * k + j], bv = s[i * k + best];
            if (v > bv || (isnan(v) && !isnan(bv))) best = j;
        }
        r->pred[i] = best;
        if (!steps) r->truth[i] = gf_i64(b->y)[i];
    }
    gf_status st = n > 0 ? gf_confusion_add(ctx, r->cm, r->truth, r->pred, n) : GF_OK;
    if (st != GF_OK) return st;
    for (int64_t i = 0; i < n; i++) r->correct += r->pred[i] == r->truth[i];
    if (steps) r->scored += n;
    if (r->p->top_k >= 1 && !binary && n > 0) {
        const double f = gf_metrics_topk_accuracy(ctx, s, r->truth, n, (int)k, r->p->top_k);
        if (isnan(f)) return gf_ctx_status(ctx);
        r->topk_hits += llround(f * (double)n);
    } else if (r->p->top_k < 1 || binary) {
        r->topk_ok = false;
    }
    if (r->p->on_pred && !steps)
        for (int64_t i = 0; i < n; i++) {
            const float sc = binary ? (float)(1.0 / (1.0 + exp(-(double)s[i])))
                                    : softmax_at(s + i * k, k, r->pred[i]);
            const gf_eval_pred ep = {b->idx[i], r->truth[i], r->pred[i],
                                     binary && r->pred[i] == 0 ? 1.0f - sc : sc, NAN};
            r->p->on_pred(&ep, r->p->pred_user);
        }
    return GF_OK;
}

/* A regression batch (MSE / L1 / smooth L1 with as many outputs as targets): the values
 * for the errors, and the predictions. */
static gf_status regress(eval_run *r, const gf_batch *b, const gf_tensor *out) {
    const int64_t m = out->numel;
    if (!r->reg_ok || b->y->dtype != GF_F32 || b->y->numel != m || m % b->n != 0) {
        r->reg_ok = false;
        return GF_OK;
    }
    if (r->n_reg + m > r->cap_reg) {
        int64_t cap = r->cap_reg ? 2 * r->cap_reg : 1024;
        while (cap < r->n_reg + m) cap *= 2;
        float *t = realloc(r->yt, sizeof(float) * (size_t)cap);
        if (t) r->yt = t;
        float *p = t ? realloc(r->yp, sizeof(float) * (size_t)cap) : NULL;
        if (p) r->yp = p;
        if (!t || !p) return gf_ctx_set_error(r->ctx, GF_ERR_NOMEM, "evaluate: out of memory");
        r->cap_reg = cap;
    }
    const float *s = values(r, out);
    if (!s) return gf_ctx_status(r->ctx);
    memcpy(r->yp + r->n_reg, s, sizeof(float) * (size_t)m);
    gf_copy_out(b->y, r->yt + r->n_reg);
    const int64_t per = m / b->n;
    if (r->p->on_pred)
        for (int64_t i = 0; i < b->n; i++) {
            const gf_eval_pred ep = {b->idx[i], -1, -1, r->yp[r->n_reg + i * per],
                                     r->yt[r->n_reg + i * per]};
            r->p->on_pred(&ep, r->p->pred_user);
        }
    r->n_reg += m;
    return GF_OK;
}

/* Forward, loss and the batch's share of every metric. */
static gf_status eval_batch(eval_run *r, gf_module *model, const gf_batch *b) {
    gf_ctx *ctx = r->ctx;
    const gf_eval_params *p = r->p;
    gf_tensor *out = p->forward      ? p->forward(ctx, model, b->x, p->forward_user)
                     : r->rep && b->n >= 2 ? gf_replicas_forward(ctx, r->rep, b->x)
                                       : gf_module_forward(ctx, model, b->x);
    const gf_batch_info bi = {b->idx, b->n, b->x, b->y, NULL, 0, b->epoch, b->index, false};
    gf_tensor *l = r->sum_loss ? gf_loss_compute_reduce(ctx, r->loss, out, b->y, GF_REDUCE_SUM)
                               : gf_loss_compute_batch(ctx, r->loss, out, &bi);
    if (!l) return gf_ctx_status(ctx) != GF_OK ? gf_ctx_status(ctx) : GF_ERR_INVALID;
    const bool steps = gf_loss_per_step(out, b->y);
    if (p->n_classes > 0 && (out->ndim != (steps ? 3 : 2) || out->shape[out->ndim - 1] != p->n_classes)) {
        char sh[64];
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE, "evaluate: the model gives %s for %d classes%s",
                                gf_shape_str(out, sh, sizeof sh), p->n_classes,
                                steps ? " per step" : "");
    }
    /* per-step: the loss is a mean over the scored steps, and so is the evaluation's */
    int64_t scored = b->n;
    if (steps) gf_eval_batch_step_correct(out, b->y, gf_train_scratch_for(&r->sc, out->numel),
                                          &scored);
    const double lv = (double)gf_get_f32(l, 0);
    if (scored > 0) r->loss_sum += r->sum_loss ? lv : lv * (double)scored;
    r->count += b->n;
    if (p->basic) {
        int64_t c = !r->acc_ok ? -1
                    : steps ? gf_eval_batch_step_correct(out, b->y,
                                                         gf_train_scratch_for(&r->sc, out->numel),
                                                         NULL)
                            : gf_eval_batch_correct(r->loss, out, b->y,
                                                    gf_train_scratch_for(&r->sc, out->numel));
        if (c < 0) r->acc_ok = false;
        else r->correct += c;
        r->scored += scored;
        return GF_OK;
    }
    if (!steps) r->scored += b->n; /* classify counts the steps */
    bool cls = false;
    gf_status st = classify(r, b, out, &cls);
    if (st != GF_OK) return st;
    if (!cls) r->acc_ok = false;
    if (!cls && is_regression(r->loss)) return regress(r, b, out);
    r->reg_ok = false;
    return GF_OK;
}

/* The metrics from the sums (a confusion matrix made on an early batch but not every batch
 * classified gives none). */
static gf_status finish(eval_run *r, gf_eval_result *out) {
    gf_ctx *ctx = r->ctx;
    if (r->count == 0) return GF_OK;
    out->count = r->count;
    out->scored = r->scored;
    out->loss = r->scored > 0 ? r->loss_sum / (double)r->scored : NAN;
    if (r->acc_ok && r->scored > 0) out->accuracy = (double)r->correct / (double)r->scored;
    if (r->p->basic) return GF_OK;
    if (r->acc_ok && r->cm) {
        const int k = gf_confusion_classes(r->cm);
        out->n_classes = k;
        out->confusion = r->cm;
        r->cm = NULL;
        out->precision = malloc(sizeof(double) * (size_t)k);
        out->recall = malloc(sizeof(double) * (size_t)k);
        out->f1 = malloc(sizeof(double) * (size_t)k);
        out->support = malloc(sizeof(int64_t) * (size_t)k);
        if (!out->precision || !out->recall || !out->f1 || !out->support)
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "evaluate: out of memory");
        gf_prf_params pp = gf_prf_default_params();
        if (gf_confusion_prf_average(ctx, out->confusion, &pp, GF_AVERAGE_MACRO,
                                     &out->macro_precision, &out->macro_recall,
                                     &out->macro_f1) != GF_OK)
            return gf_ctx_status(ctx);
        pp.all_labels = true;
        if (gf_confusion_prf(ctx, out->confusion, &pp, out->precision, out->recall, out->f1,
                             out->support) != GF_OK)
            return gf_ctx_status(ctx);
        if (r->p->top_k >= 1 && r->topk_ok) {
            out->top_k = r->p->top_k;
            out->top_k_accuracy = (double)r->topk_hits / (double)r->scored;
        }
    }
    if (r->reg_ok && r->n_reg > 0) {
        out->mae = gf_metrics_mae(ctx, r->yt, r->yp, r->n_reg);
        out->rmse = gf_metrics_rmse(ctx, r->yt, r->yp, r->n_reg);
        out->r2 = gf_metrics_r2(ctx, r->yt, r->yp, r->n_reg);
    }
    return gf_ctx_status(ctx);
}

/* One replica per thread for gf_eval_params.replicas 0, where the model (now in evaluation
 * mode) can run so; NULL otherwise, or when making them failed (then ctx's error says why). */
static gf_replicas *eval_replicas(gf_ctx *ctx, gf_module *model, const gf_eval_params *p) {
    const int want = p->replicas == 0 ? gf_ctx_threads(ctx) : p->replicas;
    if (want < 2 || p->forward || !gf_module_replicable(model, NULL, 0) ||
        (gf_ctx_batch_norm_synced(ctx) && gf_module_uses_batch_stats(model)))
        return NULL;
    return gf_replicas_new(ctx, model, want);
}

gf_status gf_evaluate_ex(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss,
                         gf_loader *loader, const gf_eval_params *params, gf_eval_result *out) {
    const gf_eval_params defaults = gf_eval_default_params();
    const gf_eval_params *p = params ? params : &defaults;
    gf_eval_result none;
    memset(&none, 0, sizeof none);
    none.loss = none.accuracy = none.macro_precision = none.macro_recall = none.macro_f1 = NAN;
    none.top_k_accuracy = none.mae = none.rmse = none.r2 = NAN;
    if (out) *out = none;
    if (gf_ctx_status(ctx) != GF_OK) return gf_ctx_status(ctx); /* an earlier error stands */
    if (!model || !loader || !out)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "evaluate: NULL model, loader or result");
    if (p->replicas < 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "evaluate: replicas %d must be >= 0",
                                p->replicas);
    if (p->loss_reduction != GF_REDUCE_MEAN && p->loss_reduction != GF_REDUCE_SUM)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "evaluate: loss_reduction %d must be "
                                "GF_REDUCE_MEAN or GF_REDUCE_SUM", (int)p->loss_reduction);
    eval_run r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.loss = loss;
    r.p = p;
    r.sum_loss = p->loss_reduction == GF_REDUCE_SUM && !(loss && loss->kind == GF_LOSS_CUSTOM);
    r.acc_ok = r.topk_ok = r.reg_ok = true;
    const bool was_training = gf_module_is_training(model);
    const bool had_grad = gf_ctx_set_grad_enabled(ctx, false);
    gf_module_train(model, false);
    r.rep = eval_replicas(ctx, model, p);
    gf_batch b;
    gf_status st = gf_ctx_status(ctx);
    while (st == GF_OK && gf_loader_next(ctx, loader, &b)) {
        st = eval_batch(&r, model, &b);
        gf_ctx_reset(ctx);
        if (st != GF_OK) break;
    }
    if (st == GF_OK) st = gf_ctx_status(ctx); /* a loader error */
    gf_module_train(model, was_training);
    gf_ctx_set_grad_enabled(ctx, had_grad);
    if (st == GF_OK) st = finish(&r, out);
    gf_replicas_free(r.rep);
    gf_confusion_free(r.cm);
    free(r.yt);
    free(r.yp);
    free(r.pred);
    free(r.truth);
    free(r.rows);
    free(r.sc.p);
    return st;
}

gf_status gf_evaluate(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, gf_loader *loader,
                      double *mean_loss, double *accuracy) {
    if (mean_loss) *mean_loss = NAN;
    if (accuracy) *accuracy = NAN;
    if (!model || !loader)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "evaluate: NULL model or loader");
    gf_eval_params p = gf_eval_default_params();
    p.basic = true;
    gf_eval_result r;
    gf_status st = gf_evaluate_ex(ctx, model, loss, loader, &p, &r);
    if (st == GF_OK) {
        if (mean_loss) *mean_loss = r.loss;
        if (accuracy) *accuracy = r.accuracy;
    }
    gf_eval_result_free(&r);
    return st;
}
