/* Scaled dot-product attention as one recorded op: scores, masked softmax, dropout and the
 * weighted sum of values per (batch, head), with the backward next to it. Each head's
 * matrices are read and written in place through strides, so heads packed in the last axis
 * ([N, L, H * Dh], MultiheadAttention's layout) need no copies to split or merge. */
#include "core/internal.h"
#include "graft/ops.h"
#include "kernels/gemm.h"
#include "kernels/vec.h"

#include <math.h>

/* Where head (b, h)'s [rows, cols] matrix lies in a buffer: element (r, c) at
 * b * sb + h * sh + r * row + c. */
typedef struct {
    int64_t sb, sh, row;
} head_layout;

static int64_t at(const head_layout *l, int64_t i, int64_t h) {
    return (i / h) * l->sb + (i % h) * l->sh;
}

typedef struct {
    int64_t bh, h, lq, lk, e, ev;
    float scale;             /* applied to the scores */
    float drop_scale;        /* 1 / (1 - p), 0 when p == 1; unused without dropout */
    const float *q, *k, *v;  /* input values (the inputs' storage or arena copies) */
    head_layout lq_, lk_, lv_; /* their layouts */
    head_layout gq, gk, gv;  /* layouts of the inputs' gradients (contiguous, logical shape) */
    head_layout lo;          /* the output's (and its gradient's) layout */
    float *p;                /* softmax probabilities [B * H, Lq, Lk] before dropout */
    uint8_t *mask;           /* dropout keep mask over p, or NULL */
    const int64_t *keys;     /* [B] keys each example attends to, or NULL: all Lk */
} attn_saved;

/* Keys visible to head i: the products skip the hidden keys (their weights are 0). */
static int64_t head_keys(const attn_saved *a, int64_t i) { return a->keys ? a->keys[i / a->h] : a->lk; }

gf_attention_params gf_attention_default_params(void) {
    gf_attention_params p = {NULL, false, 0.0f, false, 0.0f};
    return p;
}

static bool check_params(gf_ctx *ctx, const char *op, const gf_attention_params *p, int64_t b,
                         int64_t lk, const char *key_shape) {
    if (!(p->dropout_p >= 0.0f && p->dropout_p <= 1.0f)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: dropout probability %g is outside [0, 1]", op,
                         (double)p->dropout_p);
        return false;
    }
    const gf_tensor *len = p->key_lengths;
    if (!len) return true;
    if (len->dtype != GF_I64 || len->ndim != 1 || len->shape[0] != b) {
        char sl[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: key_lengths must be int64 [B] = [%lld], got %s %s",
                         op, (long long)b, len->dtype == GF_I64 ? "int64" : "float32",
                         gf_shape_str(len, sl, sizeof sl));
        return false;
    }
    for (int64_t i = 0; i < b; i++) {
        int64_t n = gf_get_i64(len, i);
        if (n < 0 || n > lk) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID,
                             "%s: key_lengths[%lld] = %lld is outside [0, %lld] (key %s)", op,
                             (long long)i, (long long)n, (long long)lk, key_shape);
            return false;
        }
    }
    return true;
}

/* Softmax of row s[0..n) written to p, with p = 0 for the hidden keys n..lk. A row with no
 * key left is all zeros (PyTorch gives NaN there). */
static void masked_softmax_row(const float *s, float *p, int64_t lk, int64_t n) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
    float sum = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        p[j] = expf(s[j] - mx);
        sum += p[j];
    }
    const float inv = n > 0 ? 1.0f / sum : 0.0f;
    for (int64_t j = 0; j < n; j++) p[j] *= inv;
    for (int64_t j = n; j < lk; j++) p[j] = 0.0f;
}

/* One head: p = softmax(scale q k^T) under the masks; o = dropout(p) v. pd receives the
 * dropped copy of p (p itself is used without dropout). Scores are computed for the visible
 * keys only; the hidden ones get weight 0 without being read. */
static void head_forward(const gf_ctx *ctx, const attn_saved *a, int64_t i, bool causal,
                         float *pd, float *o, const head_layout *lo) {
    const int64_t lq = a->lq, lk = a->lk, keys = head_keys(a, i);
    const float *q = a->q + at(&a->lq_, i, a->h), *k = a->k + at(&a->lk_, i, a->h);
    float *p = a->p + i * lq * lk;
    gf_gemm(ctx, false, true, lq, keys, a->e, a->scale, q, a->lq_.row, k, a->lk_.row, 0.0f, p, lk);
    for (int64_t r = 0; r < lq; r++) {
        int64_t n = causal && r + 1 < keys ? r + 1 : keys; /* keys j <= r under the causal mask */
        masked_softmax_row(p + r * lk, p + r * lk, lk, n);
    }
    const float *w = p;
    if (a->mask) {
        const uint8_t *m = a->mask + i * lq * lk;
        float *d = pd + i * lq * lk;
        gf_vec_dropout_apply(gf_vec_level(), p, m, a->drop_scale, d, lq * lk, GF_DROPOUT_WRITE);
        w = d;
    }
    gf_gemm(ctx, false, false, lq, a->ev, keys, 1.0f, w, lk, a->v + at(&a->lv_, i, a->h),
            a->lv_.row, 0.0f, o + at(lo, i, a->h), lo->row);
}

/* The shared forward: a holds the shapes and input layouts; out (contiguous) is written
 * through lo; a->gq/gk/gv already describe the gradient layouts. */
static gf_tensor *attention_run(gf_ctx *ctx, attn_saved a, gf_tensor *const in[3],
                                const gf_attention_params *p, gf_tensor *out,
                                const head_layout *lo, gf_tensor **weights) {
    if (a.scale == 0.0f) a.scale = a.e > 0 ? 1.0f / sqrtf((float)a.e) : 1.0f;
    a.lo = *lo;
    const int64_t np = a.bh * a.lq * a.lk;
    a.p = gf_scratch_f32(ctx, np > 0 ? np : 1);
    if (!a.p || !out) return NULL;
    float *pd = NULL;
    const bool drop = p->training && p->dropout_p > 0.0f;
    if (p->key_lengths) { /* a copy: the backward must not depend on the caller's tensor */
        const int64_t nb = p->key_lengths->numel;
        int64_t *keys = gf_scratch(ctx, sizeof(int64_t) * (size_t)(nb > 0 ? nb : 1));
        if (!keys) return NULL;
        for (int64_t j = 0; j < nb; j++) keys[j] = gf_get_i64(p->key_lengths, j);
        a.keys = keys;
    }
    if (drop) {
        a.mask = gf_scratch(ctx, (size_t)(np > 0 ? np : 1));
        pd = gf_scratch_f32(ctx, np > 0 ? np : 1);
        if (!a.mask || !pd) return NULL;
        a.drop_scale = p->dropout_p < 1.0f ? 1.0f / (1.0f - p->dropout_p) : 0.0f;
        if (p->dropout_p < 1.0f) gf_dropout_mask(ctx, gf_ctx_rng(ctx), np, p->dropout_p, a.mask);
        else memset(a.mask, 0, (size_t)np); /* everything dropped, nothing drawn */
    }
    const int64_t b = a.h > 0 ? a.bh / a.h : 0;
    float *o = gf_f32(out);
    /* one thread per head; gf_gemm inside runs single-threaded, so the bits do not depend on
     * the thread count */
#pragma omp parallel for num_threads(gf_threads_for(ctx, np * (a.e + a.ev))) schedule(static)
    for (int64_t i = 0; i < a.bh; i++) head_forward(ctx, &a, i, p->causal, pd, o, lo);
    if (weights) {
        *weights = gf_empty(ctx, GF_F32, 4, (int64_t[]){b, a.h, a.lq, a.lk});
        if (!*weights) return NULL;
        memcpy(gf_f32(*weights), drop ? pd : a.p, sizeof(float) * (size_t)np);
    }
    if (gf_wants_grad(ctx, in, 3)) {
        gf_node *nd = gf_record(ctx, GF_OP_ATTENTION, out, in, 3, sizeof(attn_saved));
        if (!nd) return NULL;
        *(attn_saved *)nd->saved = a;
    }
    return out;
}

/* t [B, H, L, X] read in place when its last axis is contiguous, else from a copy. */
static const float *head_source(gf_ctx *ctx, const gf_tensor *t, head_layout *l) {
    if (t->stride[3] == 1 || t->shape[3] == 1) {
        *l = (head_layout){t->stride[0], t->stride[1], t->stride[2]};
        return gf_f32(t);
    }
    *l = (head_layout){t->shape[1] * t->shape[2] * t->shape[3], t->shape[2] * t->shape[3], t->shape[3]};
    return gf_contig_f32(ctx, t);
}

static head_layout contiguous_4d(const gf_tensor *t) {
    return (head_layout){t->shape[1] * t->shape[2] * t->shape[3], t->shape[2] * t->shape[3], t->shape[3]};
}

gf_tensor *gf_scaled_dot_product_attention(gf_ctx *ctx, gf_tensor *q, gf_tensor *k, gf_tensor *v,
                                           const gf_attention_params *params,
                                           gf_tensor **weights) {
    const char *op = "scaled_dot_product_attention";
    gf_attention_params dp = gf_attention_default_params();
    const gf_attention_params *p = params ? params : &dp;
    if (weights) *weights = NULL;
    if (!gf_check_tensor(ctx, op, "query", q, GF_F32) || !gf_check_tensor(ctx, op, "key", k, GF_F32) ||
        !gf_check_tensor(ctx, op, "value", v, GF_F32))
        return NULL;
    char sq[GF_SHAPE_BUF], sk[GF_SHAPE_BUF], sv[GF_SHAPE_BUF];
    gf_shape_str(k, sk, sizeof sk);
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4 || q->shape[0] != k->shape[0] ||
        q->shape[1] != k->shape[1] || k->shape[0] != v->shape[0] || k->shape[1] != v->shape[1] ||
        q->shape[3] != k->shape[3] || k->shape[2] != v->shape[2]) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "%s: expected query [B, H, Lq, E], key [B, H, Lk, E], value "
                         "[B, H, Lk, Ev], got query %s, key %s, value %s",
                         op, gf_shape_str(q, sq, sizeof sq), sk, gf_shape_str(v, sv, sizeof sv));
        return NULL;
    }
    if (!check_params(ctx, op, p, q->shape[0], k->shape[2], sk)) return NULL;
    attn_saved a = {.bh = q->shape[0] * q->shape[1], .h = q->shape[1], .lq = q->shape[2],
                    .lk = k->shape[2], .e = q->shape[3], .ev = v->shape[3], .scale = p->scale};
    a.q = head_source(ctx, q, &a.lq_);
    a.k = head_source(ctx, k, &a.lk_);
    a.v = head_source(ctx, v, &a.lv_);
    a.gq = contiguous_4d(q);
    a.gk = contiguous_4d(k);
    a.gv = contiguous_4d(v);
    if (!a.q || !a.k || !a.v) return NULL;
    gf_tensor *out = gf_empty(ctx, GF_F32, 4, (int64_t[]){q->shape[0], a.h, a.lq, a.ev});
    head_layout lo = {a.h * a.lq * a.ev, a.lq * a.ev, a.ev};
    gf_tensor *in[3] = {q, k, v};
    return attention_run(ctx, a, in, p, out, &lo, weights);
}

static head_layout packed_contiguous(const gf_tensor *t, int64_t x, bool bf) {
    return bf ? (head_layout){t->shape[1] * t->shape[2], x, t->shape[2]}
              : (head_layout){t->shape[2], x, t->shape[1] * t->shape[2]};
}

/* t [N, L, H * X] (batch_first) or [L, N, H * X], head h being columns h X .. (h + 1) X: read
 * in place when its last axis is contiguous, else from a copy. */
static const float *packed_source(gf_ctx *ctx, const gf_tensor *t, int64_t x, bool bf,
                                  head_layout *l) {
    if (t->stride[2] != 1 && t->shape[2] != 1) {
        *l = packed_contiguous(t, x, bf);
        return gf_contig_f32(ctx, t);
    }
    *l = bf ? (head_layout){t->stride[0], x, t->stride[1]} : (head_layout){t->stride[1], x, t->stride[0]};
    return gf_f32(t);
}

gf_tensor *gf_multi_head_attention(gf_ctx *ctx, gf_tensor *q, gf_tensor *k, gf_tensor *v,
                                   int64_t num_heads, bool batch_first,
                                   const gf_attention_params *params, gf_tensor **weights) {
    const char *op = "multi_head_attention";
    gf_attention_params dp = gf_attention_default_params();
    const gf_attention_params *p = params ? params : &dp;
    if (weights) *weights = NULL;
    if (!gf_check_tensor(ctx, op, "query", q, GF_F32) || !gf_check_tensor(ctx, op, "key", k, GF_F32) ||
        !gf_check_tensor(ctx, op, "value", v, GF_F32))
        return NULL;
    const int na = batch_first ? 0 : 1, ta = 1 - na;
    char sq[GF_SHAPE_BUF], sk[GF_SHAPE_BUF], sv[GF_SHAPE_BUF];
    gf_shape_str(q, sq, sizeof sq);
    gf_shape_str(k, sk, sizeof sk);
    gf_shape_str(v, sv, sizeof sv);
    if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3 || q->shape[na] != k->shape[na] ||
        k->shape[na] != v->shape[na] || k->shape[ta] != v->shape[ta] || q->shape[2] != k->shape[2] ||
        num_heads < 1 || q->shape[2] % num_heads || v->shape[2] % num_heads) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "%s: expected query %s, key and value %s with E and Ev divisible by "
                         "num_heads = %lld, got query %s, key %s, value %s",
                         op, batch_first ? "[N, Lq, E]" : "[Lq, N, E]",
                         batch_first ? "[N, Lk, E|Ev]" : "[Lk, N, E|Ev]", (long long)num_heads, sq,
                         sk, sv);
        return NULL;
    }
    const int64_t n = q->shape[na], h = num_heads, dh = q->shape[2] / h, dv = v->shape[2] / h;
    if (!check_params(ctx, op, p, n, k->shape[ta], sk)) return NULL;
    attn_saved a = {.bh = n * h, .h = h, .lq = q->shape[ta], .lk = k->shape[ta], .e = dh, .ev = dv,
                    .scale = p->scale};
    a.q = packed_source(ctx, q, dh, batch_first, &a.lq_);
    a.k = packed_source(ctx, k, dh, batch_first, &a.lk_);
    a.v = packed_source(ctx, v, dv, batch_first, &a.lv_);
    a.gq = packed_contiguous(q, dh, batch_first);
    a.gk = packed_contiguous(k, dh, batch_first);
    a.gv = packed_contiguous(v, dv, batch_first);
    if (!a.q || !a.k || !a.v) return NULL;
    int64_t oshape[3] = {q->shape[0], q->shape[1], v->shape[2]};
    gf_tensor *out = gf_empty(ctx, GF_F32, 3, oshape);
    head_layout lo = out ? packed_contiguous(out, dv, batch_first) : (head_layout){0, 0, 0};
    gf_tensor *in[3] = {q, k, v};
    return attention_run(ctx, a, in, p, out, &lo, weights);
}

/* One head's backward, with W = dropout(P) the weights that multiplied V:
 *   dV += W^T dO;  dW = dO V^T;  dP = dW * keep * drop_scale;
 *   dS = P * (dP - rowsum(dP * P))   (softmax; hidden keys have P = 0, so dS = 0 there);
 *   dQ += scale dS K;  dK += scale dS^T Q.
 * Hidden keys have W = P = 0: their columns of dS are 0 and their rows of dV and dK get
 * nothing, so the products run over the visible keys only. */
static void head_backward(const gf_ctx *ctx, const attn_saved *a, int64_t i, const float *go,
                          const head_layout *lo, float *gq, float *gk, float *gv, float *ds) {
    const int64_t lq = a->lq, lk = a->lk, e = a->e, ev = a->ev, h = a->h, keys = head_keys(a, i);
    const int level = gf_vec_level();
    const float *p = a->p + i * lq * lk, *dO = go + at(lo, i, h);
    const uint8_t *m = a->mask ? a->mask + i * lq * lk : NULL;
    if (gv) {
        const float *w = p;
        if (m) { /* W rebuilt in ds, which is free until dW below */
            gf_vec_dropout_apply(level, p, m, a->drop_scale, ds, lq * lk, GF_DROPOUT_WRITE);
            w = ds;
        }
        gf_gemm(ctx, true, false, keys, ev, lq, 1.0f, w, lk, dO, lo->row, 1.0f,
                gv + at(&a->gv, i, h), a->gv.row);
    }
    if (!gq && !gk) return;
    gf_gemm(ctx, false, true, lq, keys, ev, 1.0f, dO, lo->row, a->v + at(&a->lv_, i, h),
            a->lv_.row, 0.0f, ds, lk);
    for (int64_t r = 0; r < lq; r++) {
        float *d = ds + r * lk;
        const float *pr = p + r * lk;
        if (m) gf_vec_dropout_apply(level, d, m + r * lk, a->drop_scale, d, keys, GF_DROPOUT_WRITE);
        float dot = 0.0f;
        for (int64_t j = 0; j < keys; j++) dot += d[j] * pr[j];
        for (int64_t j = 0; j < keys; j++) d[j] = pr[j] * (d[j] - dot);
    }
    if (gq)
        gf_gemm(ctx, false, false, lq, e, keys, a->scale, ds, lk, a->k + at(&a->lk_, i, h),
                a->lk_.row, 1.0f, gq + at(&a->gq, i, h), a->gq.row);
    if (gk)
        gf_gemm(ctx, true, false, keys, e, lq, a->scale, ds, lk, a->q + at(&a->lq_, i, h),
                a->lq_.row, 1.0f, gk + at(&a->gk, i, h), a->gk.row);
}

void gf_bw_attention(gf_ctx *ctx, gf_node *nd) {
    const attn_saved *a = nd->saved;
    float *gq = gf_grad_of(ctx, nd->in[0]);
    float *gk = gf_grad_of(ctx, nd->in[1]);
    float *gv = gf_grad_of(ctx, nd->in[2]);
    const int64_t per = a->lq * a->lk;
    float *ds = gf_scratch_f32(ctx, a->bh * per > 0 ? a->bh * per : 1);
    if (!ds || ctx->status != GF_OK) return;
    /* the output's gradient is contiguous over its shape, as the output itself */
    const float *go = gf_f32(nd->out->grad);
#pragma omp parallel for num_threads(gf_threads_for(ctx, a->bh * per * (a->e + a->ev))) \
    schedule(static)
    for (int64_t i = 0; i < a->bh; i++) head_backward(ctx, a, i, go, &a->lo, gq, gk, gv, ds + i * per);
}
