/* Network ONNX ops beyond convolution: Gemm and MatMul, the normalisations (BatchNormalization in
 * inference mode and, when a node asks, its training mode; Instance-, Layer- and
 * MeanVarianceNormalization; LRN), Dropout, Softmax / LogSoftmax / Hardmax with the axis rules
 * before and after opset 13, and the two losses. Compositions of recorded ops where graft has
 * no single op, so gradients flow through all of them. */
#include "import/onnx_internal.h"

#include <math.h>
#include <string.h>

/* ---- products -------------------------------------------------------------------------------- */

bool ox_op_gemm(ox_exec *e) {
    gf_tensor *a = e->in[0], *b = e->in[1], *c = e->n_in > 2 ? e->in[2] : NULL;
    if (!ox_need(e, 0, GF_F32) || !ox_need(e, 1, GF_F32) || (c && !ox_need(e, 2, GF_F32)))
        return false;
    if (a->ndim != 2 || b->ndim != 2) return ox_fail(e, GF_ERR_SHAPE, "A and B must be matrices");
    int64_t big = a->numel > b->numel ? a->numel : b->numel;
    if (c && c->numel > big) big = c->numel;
    const int64_t rows = a->shape[ox_attr_int(e->node, "transA", 0) ? 1 : 0];
    const int64_t cols = b->shape[ox_attr_int(e->node, "transB", 0) ? 0 : 1];
    if (!ox_check_grow(e, cols && rows > INT64_MAX / cols ? INT64_MAX : rows * cols, big,
                       "the product"))
        return false;
    const float alpha = ox_attr_float(e->node, "alpha", 1.0f),
                beta = ox_attr_float(e->node, "beta", 1.0f);
    const bool ta = ox_attr_int(e->node, "transA", 0) != 0,
               tb = ox_attr_int(e->node, "transB", 0) != 0;
    gf_ctx *x = e->ctx;
    /* the Linear layer PyTorch exports: x W^T + b */
    if (!ta && tb && alpha == 1.0f && beta == 1.0f &&
        (!c || (c->ndim == 1 && c->shape[0] == b->shape[0])))
        return (e->out[0] = gf_linear(x, a, b, c)) != NULL;
    gf_tensor *y =
        gf_matmul(x, ta ? gf_transpose(x, a, 0, 1) : a, tb ? gf_transpose(x, b, 0, 1) : b);
    if (y && alpha != 1.0f) y = gf_mul_scalar(x, y, alpha);
    if (y && c && beta != 0.0f) y = gf_add(x, y, beta == 1.0f ? c : gf_mul_scalar(x, c, beta));
    return (e->out[0] = y) != NULL;
}

bool ox_op_matmul(ox_exec *e) {
    if (!ox_need(e, 0, GF_F32) || !ox_need(e, 1, GF_F32)) return false;
    const gf_tensor *a = e->in[0], *b = e->in[1];
    if (a->ndim >= 2 && b->ndim >= 2) { /* the broadcast batch times rows times columns */
        int64_t s[GF_MAX_DIMS];
        const int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
        int64_t n = 1;
        for (int d = 0; d < nd - 2; d++) {
            int ia = d - (nd - a->ndim), ib = d - (nd - b->ndim);
            int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
            s[d] = da == 1 ? db : da;
            n = s[d] && n > INT64_MAX / s[d] ? INT64_MAX : n * s[d];
        }
        int64_t mn = a->shape[a->ndim - 2] * b->shape[b->ndim - 1];
        n = mn && n > INT64_MAX / mn ? INT64_MAX : n * mn;
        if (!ox_check_grow(e, n, a->numel > b->numel ? a->numel : b->numel, "the product"))
            return false;
    }
    return (e->out[0] = gf_matmul(e->ctx, e->in[0], e->in[1])) != NULL;
}

/* ---- normalisation --------------------------------------------------------------------------- */

/* v [C] reshaped to [1, C, 1, ...] for an input of rank r. */
static gf_tensor *per_channel(ox_exec *e, gf_tensor *v, int r) {
    int64_t s[GF_MAX_DIMS];
    for (int d = 0; d < r; d++) s[d] = 1;
    if (!v || r < 2) return NULL;
    s[1] = v->numel;
    return gf_reshape(e->ctx, v, r, s);
}

/* (x - mean) / sqrt(var + eps) over axes, with mean and var (biased) over the same axes. */
static gf_tensor *normalise(ox_exec *e, gf_tensor *x, const int *axes, int n, float eps,
                            gf_tensor **mean_out, gf_tensor **inv_out) {
    gf_ctx *c = e->ctx;
    gf_tensor *mean = gf_mean(c, x, axes, n, true), *d = gf_sub(c, x, mean);
    gf_tensor *var = gf_mean(c, gf_mul(c, d, d), axes, n, true);
    gf_tensor *inv = gf_unary(c, gf_sqrt(c, gf_add_scalar(c, var, eps)), GF_FN_RECIPROCAL, 0, 0);
    if (mean_out) *mean_out = mean;
    if (inv_out) *inv_out = inv;
    return gf_mul(c, d, inv);
}

/* Training mode (opset 14's training_mode=1): batch statistics, and the running ones updated as
 * momentum * running + (1 - momentum) * batch, returned as outputs 1 and 2. */
static bool bn_train(ox_exec *e, float eps, float momentum) {
    gf_ctx *c = e->ctx;
    gf_tensor *x = e->in[0];
    int axes[GF_MAX_DIMS], n = 0;
    for (int d = 0; d < x->ndim; d++)
        if (d != 1) axes[n++] = d;
    gf_tensor *mean;
    gf_tensor *y = normalise(e, x, axes, n, eps, &mean, NULL);
    y = gf_add(c, gf_mul(c, y, per_channel(e, e->in[1], x->ndim)),
               per_channel(e, e->in[2], x->ndim));
    gf_tensor *d = gf_sub(c, x, mean);
    gf_tensor *var = gf_reshape(c, gf_mean(c, gf_mul(c, d, d), axes, n, false), 1, &x->shape[1]);
    gf_tensor *bm = gf_reshape(c, mean, 1, &x->shape[1]);
    if (e->n_out > 1)
        e->out[1] =
            gf_add(c, gf_mul_scalar(c, e->in[3], momentum), gf_mul_scalar(c, bm, 1.0f - momentum));
    if (e->n_out > 2)
        e->out[2] =
            gf_add(c, gf_mul_scalar(c, e->in[4], momentum), gf_mul_scalar(c, var, 1.0f - momentum));
    return (e->out[0] = y) != NULL;
}

bool ox_op_batch_norm(ox_exec *e) {
    for (int i = 0; i < 5; i++)
        if (!ox_need(e, i, GF_F32)) return false;
    const float eps = ox_attr_float(e->node, "epsilon", 1e-5f);
    const float momentum = ox_attr_float(e->node, "momentum", 0.9f);
    if (e->node->opset < 9 && ox_attr_int(e->node, "spatial", 1) == 0)
        return ox_fail(e, GF_ERR_INVALID, "spatial=0 (statistics per activation) is not supported");
    if (e->node->opset >= 14 && ox_attr_int(e->node, "training_mode", 0))
        return bn_train(e, eps, momentum);
    e->out[0] = gf_batch_norm(e->ctx, e->in[0], e->in[1], e->in[2], e->in[3], e->in[4], false,
                              0.1f, eps);
    /* older opsets' optional statistics outputs: in inference they are the running ones */
    for (int k = 1; k < e->n_out; k++) e->out[k] = e->in[k % 2 ? 3 : 4];
    return e->out[0] != NULL;
}

bool ox_op_instance_norm(ox_exec *e) {
    gf_tensor *x = e->in[0];
    if (!ox_need(e, 0, GF_F32) || !ox_need(e, 1, GF_F32) || !ox_need(e, 2, GF_F32)) return false;
    if (x->ndim < 3)
        return ox_fail(e, GF_ERR_SHAPE, "input of rank %d (expected [N, C, ...])", x->ndim);
    int axes[GF_MAX_DIMS];
    for (int d = 2; d < x->ndim; d++) axes[d - 2] = d;
    gf_ctx *c = e->ctx;
    gf_tensor *y =
        normalise(e, x, axes, x->ndim - 2, ox_attr_float(e->node, "epsilon", 1e-5f), NULL, NULL);
    y = gf_add(c, gf_mul(c, y, per_channel(e, e->in[1], x->ndim)),
               per_channel(e, e->in[2], x->ndim));
    return (e->out[0] = y) != NULL;
}

bool ox_op_layer_norm(ox_exec *e) {
    gf_tensor *x = e->in[0], *w = e->in[1], *b = e->n_in > 2 ? e->in[2] : NULL;
    if (!ox_need(e, 0, GF_F32) || !ox_need(e, 1, GF_F32) || (b && !ox_need(e, 2, GF_F32)))
        return false;
    int a;
    if (!ox_axis(e, ox_attr_int(e->node, "axis", -1), x->ndim, &a)) return false;
    const float eps = ox_attr_float(e->node, "epsilon", 1e-5f);
    const int n = x->ndim - a;
    bool exact = w->ndim == n && !memcmp(w->shape, x->shape + a, sizeof(int64_t) * (size_t)n) &&
        (!b || (b->ndim == n && !memcmp(b->shape, x->shape + a, sizeof(int64_t) * (size_t)n)));
    bool stats = (e->n_out > 1 && e->node->out[1] >= 0) || (e->n_out > 2 && e->node->out[2] >= 0);
    if (exact && !stats) return (e->out[0] = gf_layer_norm(e->ctx, x, n, w, b, eps)) != NULL;
    int axes[GF_MAX_DIMS];
    for (int d = 0; d < n; d++) axes[d] = a + d;
    gf_tensor *mean, *inv;
    gf_tensor *y = gf_mul(e->ctx, normalise(e, x, axes, n, eps, &mean, &inv), w);
    if (b) y = gf_add(e->ctx, y, b);
    if (e->n_out > 1) e->out[1] = mean;
    if (e->n_out > 2) e->out[2] = inv;
    return (e->out[0] = y) != NULL;
}

bool ox_op_mvn(ox_exec *e) {
    gf_tensor *x = e->in[0];
    if (!ox_need(e, 0, GF_F32)) return false;
    const int64_t *ax;
    int n = ox_attr_ints(e->node, "axes", &ax), axes[GF_MAX_DIMS];
    static const int64_t dflt[3] = {0, 2, 3};
    if (!ax) ax = dflt, n = 3;
    if (n > x->ndim) return ox_fail(e, GF_ERR_INVALID, "%d axes for rank %d", n, x->ndim);
    for (int i = 0; i < n; i++)
        if (!ox_axis(e, ax[i], x->ndim, &axes[i])) return false;
    /* ONNX's function: (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9) */
    gf_ctx *c = e->ctx;
    gf_tensor *m = gf_mean(c, x, axes, n, true), *m2 = gf_mean(c, gf_mul(c, x, x), axes, n, true);
    gf_tensor *sd = gf_add_scalar(c, gf_sqrt(c, gf_sub(c, m2, gf_mul(c, m, m))), 1e-9f);
    return (e->out[0] = gf_div(c, gf_sub(c, x, m), sd)) != NULL;
}

/* LRN: x / (bias + alpha / size * sum of x^2 over a window of channels)^beta. */
bool ox_op_lrn(ox_exec *e) {
    gf_tensor *x = e->in[0];
    if (!ox_need(e, 0, GF_F32)) return false;
    const int64_t size = ox_attr_int(e->node, "size", 0);
    if (x->ndim < 3 || size < 1 || size > 4096)
        return ox_fail(e, GF_ERR_INVALID, "size %lld, input rank %d", (long long)size, x->ndim);
    const float alpha = ox_attr_float(e->node, "alpha", 1e-4f),
                beta = ox_attr_float(e->node, "beta", 0.75f);
    const float bias = ox_attr_float(e->node, "bias", 1.0f);
    gf_ctx *c = e->ctx;
    int64_t pads[2 * GF_MAX_DIMS] = {0};
    const int k = x->ndim - 2; /* the channel axis, counted from the last */
    pads[2 * k] = (size - 1) / 2, pads[2 * k + 1] = size - 1 - (size - 1) / 2;
    gf_tensor *sq = gf_pad(c, gf_mul(c, x, x), pads, 2 * (k + 1), 0.0f), *sum = NULL;
    for (int64_t i = 0; sq && i < size; i++) {
        gf_tensor *s = gf_slice(c, sq, 1, i, i + x->shape[1], 1);
        sum = sum ? gf_add(c, sum, s) : s;
    }
    gf_tensor *den = gf_pow_scalar(c, gf_affine(c, sum, alpha / (float)size, bias), beta);
    return (e->out[0] = gf_div(c, x, den)) != NULL;
}

/* ---- dropout --------------------------------------------------------------------------------- */

bool ox_op_dropout(ox_exec *e) {
    gf_tensor *x = e->in[0];
    double ratio = ox_attr_float(e->node, "ratio", 0.5f), train = e->training;
    if (e->node->opset >= 12) {
        ratio = 0.5;
        if (e->n_in > 1 && e->in[1] && !ox_input_scalar(e, 1, &ratio)) return false;
        if (e->n_in > 2 && e->in[2] && !ox_input_scalar(e, 2, &train)) return false;
    } else if (e->node->opset < 7 && ox_attr_int(e->node, "is_test", 0)) {
        train = 0;
    }
    if (ratio < 0 || ratio >= 1)
        return ox_fail(e, GF_ERR_INVALID, "ratio %g outside [0, 1)", ratio);
    const bool active = train != 0 && ratio > 0 && x->dtype == GF_F32;
    e->out[0] = active ? gf_dropout(e->ctx, x, (float)ratio, true) : x;
    if (e->n_out > 1 && e->out[0]) { /* the mask: the elements kept */
        gf_tensor *m = gf_empty(e->ctx, GF_I64, x->ndim, x->shape);
        if (!m) return false;
        for (int64_t i = 0; i < x->numel; i++)
            gf_i64(m)[i] = !active || gf_get_f32(e->out[0], i) != 0.0f || gf_get_f32(x, i) == 0.0f;
        e->out[1] = m;
    }
    return e->out[0] != NULL;
}

/* ---- softmax family -------------------------------------------------------------------------- */

/* Hardmax along axis a of x: 1 at the first maximum, 0 elsewhere (no gradient). */
static gf_tensor *hardmax(ox_exec *e, gf_tensor *x, int a) {
    gf_tensor *o = gf_zeros(e->ctx, GF_F32, x->ndim, x->shape);
    const float *p = o ? gf_contig_f32(e->ctx, x) : NULL;
    if (!p) return NULL;
    const int64_t len = x->shape[a], inner = gf_numel_of(x->ndim - a - 1, x->shape + a + 1);
    const int64_t outer = len && inner ? x->numel / (len * inner) : 0;
    for (int64_t r = 0; r < outer; r++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0;
            for (int64_t j = 1; j < len; j++)
                if (p[(r * len + j) * inner + i] > p[(r * len + best) * inner + i]) best = j;
            if (len) gf_f32(o)[(r * len + best) * inner + i] = 1.0f;
        }
    return o;
}

bool ox_op_softmax(ox_exec *e) {
    gf_tensor *x = e->in[0];
    if (!ox_need(e, 0, GF_F32)) return false;
    const bool old = e->node->opset < 13;
    int a;
    if (!ox_axis(e, ox_attr_int(e->node, "axis", old ? 1 : -1), x->ndim ? x->ndim : 1, &a))
        return false;
    const char *op = e->node->op;
    gf_ctx *c = e->ctx;
    gf_tensor *in = x;
    if (old) { /* before opset 13: over the input flattened to 2-D at axis */
        int64_t s[2] = {gf_numel_of(a, x->shape), gf_numel_of(x->ndim - a, x->shape + a)};
        in = gf_reshape(c, x, 2, s);
        a = 1;
    }
    gf_tensor *y = !in ? NULL : !strcmp(op, "Softmax") ? gf_softmax(c, in, a)
                 : !strcmp(op, "LogSoftmax") ? gf_log_softmax(c, in, a) : hardmax(e, in, a);
    if (y && old) y = gf_reshape(c, y, x->ndim, x->shape);
    return (e->out[0] = y) != NULL;
}

bool ox_op_hardmax(ox_exec *e) { return ox_op_softmax(e); }

/* ---- losses ---------------------------------------------------------------------------------- */

static bool loss_args(ox_exec *e, gf_reduction *red, int64_t *ignore) {
    const char *r = ox_attr_str(e->node, "reduction", "mean");
    *red = !strcmp(r, "mean") ? GF_REDUCE_MEAN : !strcmp(r, "sum") ? GF_REDUCE_SUM : GF_REDUCE_NONE;
    if (*red == GF_REDUCE_NONE && strcmp(r, "none"))
        return ox_fail(e, GF_ERR_INVALID, "reduction '%s' is not none, mean or sum", r);
    const ox_attr *ii = ox_attr_get(e->node, "ignore_index");
    *ignore = ii ? ii->i : INT64_MIN; /* none: no target can equal it */
    return ox_need(e, 0, GF_F32) && (e->in[1] = ox_as_i64(e, e->in[1])) != NULL &&
           (e->n_in < 3 || !e->in[2] || ox_need(e, 2, GF_F32));
}

bool ox_op_nll_loss(ox_exec *e) {
    gf_reduction red;
    int64_t ignore;
    if (!loss_args(e, &red, &ignore)) return false;
    gf_tensor *w = e->n_in > 2 ? e->in[2] : NULL;
    return (e->out[0] = gf_nll_loss(e->ctx, e->in[0], e->in[1], w, red, ignore)) != NULL;
}

bool ox_op_sce_loss(ox_exec *e) {
    gf_reduction red;
    int64_t ignore;
    if (!loss_args(e, &red, &ignore)) return false;
    if (e->in[0]->ndim < 2) return ox_fail(e, GF_ERR_SHAPE, "scores must be [N, C, ...]");
    gf_tensor *lp = gf_log_softmax(e->ctx, e->in[0], 1), *w = e->n_in > 2 ? e->in[2] : NULL;
    if (e->n_out > 1) e->out[1] = lp;
    return (e->out[0] = gf_nll_loss(e->ctx, lp, e->in[1], w, red, ignore)) != NULL;
}
