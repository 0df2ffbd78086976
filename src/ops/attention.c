/* Scaled dot-product attention as one recorded op: scores, masked softmax, dropout and the
 * weighted sum of values per (batch, head), with the backward next to it. */
#include "core/internal.h"
#include "graft/ops.h"
#include "kernels/gemm.h"

#include <math.h>

/* Shapes: q [B, H, Lq, E], k [B, H, Lk, E], v [B, H, Lk, Ev]; one "head" below is one of the
 * B * H independent problems. */
typedef struct {
    int64_t bh, h, lq, lk, e, ev;
    float scale;         /* applied to the scores */
    float drop_scale;    /* 1 / (1 - p), 0 when p == 1; unused without dropout */
    const float *q, *k, *v; /* contiguous input values (the inputs or arena copies) */
    float *p;            /* softmax probabilities [B, H, Lq, Lk] before dropout */
    uint8_t *mask;       /* dropout keep mask over p, or NULL */
} attn_saved;

gf_attention_params gf_attention_default_params(void) {
    gf_attention_params p = {NULL, false, 0.0f, false, 0.0f};
    return p;
}

static bool attn_shapes(gf_ctx *ctx, gf_tensor *q, gf_tensor *k, gf_tensor *v,
                        const gf_attention_params *p) {
    const char *op = "scaled_dot_product_attention";
    if (!gf_check_tensor(ctx, op, "query", q, GF_F32) || !gf_check_tensor(ctx, op, "key", k, GF_F32) ||
        !gf_check_tensor(ctx, op, "value", v, GF_F32))
        return false;
    char sq[GF_SHAPE_BUF], sk[GF_SHAPE_BUF], sv[GF_SHAPE_BUF];
    gf_shape_str(q, sq, sizeof sq);
    gf_shape_str(k, sk, sizeof sk);
    gf_shape_str(v, sv, sizeof sv);
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4 || q->shape[0] != k->shape[0] ||
        q->shape[1] != k->shape[1] || k->shape[0] != v->shape[0] || k->shape[1] != v->shape[1] ||
        q->shape[3] != k->shape[3] || k->shape[2] != v->shape[2]) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "%s: expected query [B, H, Lq, E], key [B, H, Lk, E], value "
                         "[B, H, Lk, Ev], got query %s, key %s, value %s",
                         op, sq, sk, sv);
        return false;
    }
    if (!(p->dropout_p >= 0.0f && p->dropout_p <= 1.0f)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: dropout probability %g is outside [0, 1]", op,
                         (double)p->dropout_p);
        return false;
    }
    const gf_tensor *len = p->key_lengths;
    if (!len) return true;
    if (len->dtype != GF_I64 || len->ndim != 1 || len->shape[0] != q->shape[0]) {
        char sl[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: key_lengths must be int64 [B] = [%lld], got %s %s",
                         op, (long long)q->shape[0], len->dtype == GF_I64 ? "int64" : "float32",
                         gf_shape_str(len, sl, sizeof sl));
        return false;
    }
    for (int64_t b = 0; b < len->shape[0]; b++) {
        int64_t n = gf_get_i64(len, b);
        if (n < 0 || n > k->shape[2]) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID,
                             "%s: key_lengths[%lld] = %lld is outside [0, %lld] (key %s)", op,
                             (long long)b, (long long)n, (long long)k->shape[2], sk);
            return false;
        }
    }
    return true;
}

/* Softmax of row s[0..lk) over the keys j < n that the causal rule allows (j <= i), written
 * to p; masked keys get 0. A row with no key left is all zeros (PyTorch gives NaN there). */
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

/* One head: p = softmax(scale q k^T) under the masks; o = dropout(p) v. pd is the dropped
 * copy of p (p itself without dropout). */
static void attn_head_forward(const gf_ctx *ctx, const attn_saved *a, int64_t i, int64_t keys,
                              bool causal, float *pd, float *o) {
    const int64_t lq = a->lq, lk = a->lk;
    const float *q = a->q + i * lq * a->e, *k = a->k + i * lk * a->e;
    float *p = a->p + i * lq * lk;
    gf_gemm(ctx, false, true, lq, lk, a->e, a->scale, q, a->e, k, a->e, 0.0f, p, lk);
    for (int64_t r = 0; r < lq; r++) {
        int64_t n = causal && r + 1 < keys ? r + 1 : keys;
        masked_softmax_row(p + r * lk, p + r * lk, lk, n);
    }
    const float *w = p;
    if (a->mask) {
        const uint8_t *m = a->mask + i * lq * lk;
        float *d = pd + i * lq * lk;
        for (int64_t j = 0; j < lq * lk; j++) d[j] = m[j] ? p[j] * a->drop_scale : 0.0f;
        w = d;
    }
    gf_gemm(ctx, false, false, lq, a->ev, lk, 1.0f, w, lk, a->v + i * lk * a->ev, a->ev, 0.0f,
            o + i * lq * a->ev, a->ev);
}

static int64_t keys_of(const gf_attention_params *p, int64_t i, int64_t h, int64_t lk) {
    return p->key_lengths ? gf_get_i64(p->key_lengths, i / h) : lk;
}

gf_tensor *gf_scaled_dot_product_attention(gf_ctx *ctx, gf_tensor *q, gf_tensor *k, gf_tensor *v,
                                           const gf_attention_params *params,
                                           gf_tensor **weights) {
    gf_attention_params dp = gf_attention_default_params();
    const gf_attention_params *p = params ? params : &dp;
    if (weights) *weights = NULL;
    if (!attn_shapes(ctx, q, k, v, p)) return NULL;
    attn_saved a = {q->shape[0] * q->shape[1], q->shape[1], q->shape[2], k->shape[2],
                    q->shape[3], v->shape[3], p->scale, 0.0f, NULL, NULL, NULL, NULL, NULL};
    if (a.scale == 0.0f) a.scale = a.e > 0 ? 1.0f / sqrtf((float)a.e) : 1.0f;
    const int64_t np = a.bh * a.lq * a.lk;
    a.q = gf_contig_f32(ctx, q);
    a.k = gf_contig_f32(ctx, k);
    a.v = gf_contig_f32(ctx, v);
    a.p = gf_scratch_f32(ctx, np ? np : 1);
    gf_tensor *out = gf_empty(ctx, GF_F32, 4, (int64_t[]){q->shape[0], a.h, a.lq, a.ev});
    if (!a.q || !a.k || !a.v || !a.p || !out) return NULL;
    float *pd = NULL;
    const bool drop = p->training && p->dropout_p > 0.0f;
    if (drop) {
        a.mask = gf_scratch(ctx, (size_t)(np ? np : 1));
        pd = gf_scratch_f32(ctx, np ? np : 1);
        if (!a.mask || !pd) return NULL;
        a.drop_scale = p->dropout_p < 1.0f ? 1.0f / (1.0f - p->dropout_p) : 0.0f;
        gf_rng *r = gf_ctx_rng(ctx);
        for (int64_t j = 0; j < np; j++)
            a.mask[j] = p->dropout_p < 1.0f && gf_rng_uniform(r) >= p->dropout_p;
    }
    float *o = gf_f32(out);
    /* one thread per head; gf_gemm inside runs single-threaded, so the bits do not depend on
     * the thread count */
#pragma omp parallel for num_threads(gf_threads_for(ctx, np * (a.e + a.ev))) schedule(static)
    for (int64_t i = 0; i < a.bh; i++)
        attn_head_forward(ctx, &a, i, keys_of(p, i, a.h, a.lk), p->causal, pd, o);
    if (weights) {
        *weights = gf_empty(ctx, GF_F32, 4, (int64_t[]){q->shape[0], a.h, a.lq, a.lk});
        if (!*weights) return NULL;
        memcpy(gf_f32(*weights), drop ? pd : a.p, sizeof(float) * (size_t)np);
    }
    gf_tensor *in[3] = {q, k, v};
    if (gf_wants_grad(ctx, in, 3)) {
        gf_node *nd = gf_record(ctx, GF_OP_ATTENTION, out, in, 3, sizeof(attn_saved));
        if (!nd) return NULL;
        *(attn_saved *)nd->saved = a;
    }
    return out;
}

/* One head's backward, with W = dropout(P) the weights that multiplied V:
 *   dV += W^T dO;  dW = dO V^T;  dP = dW * keep * drop_scale;
 *   dS = P * (dP - rowsum(dP * P))   (softmax; masked entries have P = 0, so dS = 0 there);
 *   dQ += scale dS K;  dK += scale dS^T Q. */
static void attn_head_backward(const gf_ctx *ctx, const attn_saved *a, int64_t i, const float *go,
                               float *gq, float *gk, float *gv, float *ds) {
    const int64_t lq = a->lq, lk = a->lk, e = a->e, ev = a->ev;
    const float *p = a->p + i * lq * lk, *dO = go + i * lq * ev;
    const uint8_t *m = a->mask ? a->mask + i * lq * lk : NULL;
    if (gv) {
        const float *w = p;
        if (m) { /* W rebuilt in ds, which is free until dW below */
            for (int64_t j = 0; j < lq * lk; j++) ds[j] = m[j] ? p[j] * a->drop_scale : 0.0f;
            w = ds;
        }
        gf_gemm(ctx, true, false, lk, ev, lq, 1.0f, w, lk, dO, ev, 1.0f, gv + i * lk * ev, ev);
    }
    if (!gq && !gk) return;
    gf_gemm(ctx, false, true, lq, lk, ev, 1.0f, dO, ev, a->v + i * lk * ev, ev, 0.0f, ds, lk);
    for (int64_t r = 0; r < lq; r++) {
        float *d = ds + r * lk;
        const float *pr = p + r * lk;
        if (m)
            for (int64_t j = 0; j < lk; j++) d[j] = m[r * lk + j] ? d[j] * a->drop_scale : 0.0f;
        float dot = 0.0f;
        for (int64_t j = 0; j < lk; j++) dot += d[j] * pr[j];
        for (int64_t j = 0; j < lk; j++) d[j] = pr[j] * (d[j] - dot);
    }
    if (gq)
        gf_gemm(ctx, false, false, lq, e, lk, a->scale, ds, lk, a->k + i * lk * e, e, 1.0f,
                gq + i * lq * e, e);
    if (gk)
        gf_gemm(ctx, true, false, lk, e, lq, a->scale, ds, lk, a->q + i * lq * e, e, 1.0f,
                gk + i * lk * e, e);
}

void gf_bw_attention(gf_ctx *ctx, gf_node *nd) {
    const attn_saved *a = nd->saved;
    float *gq = nd->in[0]->requires_grad ? gf_grad_of(ctx, nd->in[0]) : NULL;
    float *gk = nd->in[1]->requires_grad ? gf_grad_of(ctx, nd->in[1]) : NULL;
    float *gv = nd->in[2]->requires_grad ? gf_grad_of(ctx, nd->in[2]) : NULL;
    const int64_t per = a->lq * a->lk;
    float *ds = gf_scratch_f32(ctx, a->bh * per > 0 ? a->bh * per : 1);
    if (!ds || ctx->status != GF_OK) return;
    const float *go = gf_f32(nd->out->grad);
#pragma omp parallel for num_threads(gf_threads_for(ctx, a->bh * per * (a->e + a->ev))) \
    schedule(static)
    for (int64_t i = 0; i < a->bh; i++) attn_head_backward(ctx, a, i, go, gq, gk, gv, ds + i * per);
}
