/* Losses by name (gf_loss_spec) for the training loop and evaluation: the built-in kinds mapped
 * to their ops, custom losses checked for a scalar result, and the correct-prediction count
 * behind every accuracy gf_fit and gf_evaluate report. */
#include "train/train_internal.h"

#include <string.h>

gf_loss_spec gf_loss_default(gf_loss_kind kind) {
    gf_loss_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.beta = 1.0f;
    return s;
}

const char *gf_loss_kind_name(gf_loss_kind k) {
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

/* A custom loss's result checked for a scalar. */
static gf_tensor *check_custom(gf_ctx *ctx, gf_tensor *v) {
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

gf_tensor *gf_loss_compute_reduce(gf_ctx *ctx, const gf_loss_spec *loss, gf_tensor *out,
                                  gf_tensor *y, gf_reduction red) {
    gf_loss_spec ce = gf_loss_default(GF_LOSS_CROSS_ENTROPY);
    const gf_loss_spec *l = loss ? loss : &ce;
    if (!out || !y) {
        if (gf_ctx_status(ctx) == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss %s: NULL output or target",
                             gf_loss_kind_name(l->kind));
        return NULL;
    }
    switch (l->kind) {
    case GF_LOSS_CROSS_ENTROPY: {
        if (gf_loss_per_step(out, y)) { /* PyTorch's reshape(-1, C) of a tagger's logits */
            const int64_t c = out->shape[2], m = y->numel;
            if (!(out = gf_reshape(ctx, out, 2, (int64_t[]){m, c})) ||
                !(y = gf_reshape(ctx, y, 1, &m)))
                return NULL;
        }
        gf_ce_params p = gf_ce_default_params();
        p.ignore_index = GF_DS_IGNORE_LABEL;
        p.label_smoothing = l->label_smoothing;
        p.reduction = red;
        if (l->class_weights && l->n_class_weights > 0) {
            const int64_t k = l->n_class_weights;
            if (!(p.weight = gf_empty(ctx, GF_F32, 1, &k))) return NULL;
            memcpy(p.weight->data, l->class_weights, sizeof(float) * (size_t)k);
        }
        return gf_cross_entropy_ex(ctx, out, y, &p);
    }
    case GF_LOSS_MSE: return gf_mse_loss(ctx, out, match_target(ctx, out, y), red);
    case GF_LOSS_L1: return gf_l1_loss(ctx, out, match_target(ctx, out, y), red);
    case GF_LOSS_SMOOTH_L1:
        return gf_smooth_l1_loss(ctx, out, match_target(ctx, out, y), red, l->beta);
    case GF_LOSS_BCE_WITH_LOGITS:
        return gf_bce_with_logits(ctx, out, match_target(ctx, out, y), NULL, NULL, red);
    case GF_LOSS_CUSTOM:
        if (l->batch_fn) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss custom: a batch loss (batch_fn) needs the "
                             "batch: use gf_loss_compute_batch");
            return NULL;
        }
        if (!l->fn) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss custom: no function given");
            return NULL;
        }
        return check_custom(ctx, l->fn(ctx, out, y, l->user));
    default:
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss: unknown kind %d", (int)l->kind);
        return NULL;
    }
}

gf_tensor *gf_loss_compute(gf_ctx *ctx, const gf_loss_spec *loss, gf_tensor *out, gf_tensor *y) {
    return gf_loss_compute_reduce(ctx, loss, out, y, GF_REDUCE_MEAN);
}

/* The rows b->idx of loss->extra as an arena tensor [n, extra_width]. */
static gf_tensor *gather_extra(gf_ctx *ctx, const gf_loss_spec *l, const gf_batch_info *b) {
    const int64_t w = l->extra_width;
    if (w < 1 || l->extra_count < 1 || !b->idx) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss custom: extra rows need extra_width %lld >= 1, "
                         "extra_count %lld >= 1 and the batch's indices (%s)", (long long)w,
                         (long long)l->extra_count, b->idx ? "given" : "NULL");
        return NULL;
    }
    for (int64_t i = 0; i < b->n; i++)
        if (b->idx[i] < 0 || b->idx[i] >= l->extra_count) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss custom: example %lld of the batch has "
                             "index %lld, outside the %lld extra rows", (long long)i,
                             (long long)b->idx[i], (long long)l->extra_count);
            return NULL;
        }
    gf_tensor *t = gf_empty(ctx, GF_F32, 2, (int64_t[]){b->n, w});
    if (!t) return NULL;
    for (int64_t i = 0; i < b->n; i++)
        memcpy(gf_f32(t) + i * w, l->extra + b->idx[i] * w, sizeof(float) * (size_t)w);
    return t;
}

gf_tensor *gf_loss_compute_batch(gf_ctx *ctx, const gf_loss_spec *loss, gf_tensor *out,
                                 const gf_batch_info *b) {
    if (!b) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss: NULL batch");
        return NULL;
    }
    if (!loss || loss->kind != GF_LOSS_CUSTOM || !loss->batch_fn)
        return gf_loss_compute(ctx, loss, out, b->y);
    if (!out) {
        if (gf_ctx_status(ctx) == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss custom: NULL output");
        return NULL;
    }
    gf_batch_info bi = *b;
    if (bi.training && !bi.extra && loss->extra && !(bi.extra = gather_extra(ctx, loss, b)))
        return NULL;
    return check_custom(ctx, loss->batch_fn(ctx, out, &bi, loss->user));
}

bool gf_loss_per_step(const gf_tensor *out, const gf_tensor *y) {
    return out && y && out->ndim == 3 && y->ndim == 2 && y->dtype == GF_I64 &&
           out->shape[0] == y->shape[0] && out->shape[1] == y->shape[1] && out->shape[2] >= 1;
}

int64_t gf_eval_batch_step_correct(const gf_tensor *out, const gf_tensor *y, float *scratch,
                                   int64_t *scored) {
    if (scored) *scored = 0;
    if (!gf_loss_per_step(out, y) || out->dtype != GF_F32) return -1;
    const float *o = gf_f32(out);
    if (!gf_tensor_is_contiguous(out)) {
        if (!scratch) return -1;
        gf_copy_out(out, scratch);
        o = scratch;
    }
    const int64_t m = y->numel, c = out->shape[2];
    int64_t correct = 0, n = 0;
    for (int64_t i = 0; i < m; i++) {
        const int64_t t = gf_get_i64(y, i);
        if (t == GF_DS_IGNORE_LABEL) continue;
        int64_t best = 0;
        for (int64_t j = 1; j < c; j++)
            if (o[i * c + j] > o[i * c + best]) best = j;
        correct += best == t;
        n++;
    }
    if (scored) *scored = n;
    return correct;
}

int64_t gf_eval_batch_correct(const gf_loss_spec *loss, const gf_tensor *out, const gf_tensor *y,
                         float *scratch) {
    if (gf_loss_per_step(out, y)) return -1;
    const int64_t n = y->numel;
    if (out->ndim < 1 || out->shape[0] != n || n == 0) return -1;
    const float *o = gf_f32(out);
    if (!gf_tensor_is_contiguous(out)) {
        if (!scratch) return -1;
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
