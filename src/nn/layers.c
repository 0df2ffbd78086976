/* Leaf layers: Linear, Conv1d/2d, BatchNorm1d/2d, LayerNorm, Dropout, Embedding, pooling,
 * Flatten, Identity and the activations, each a constructor (PyTorch's default init) plus a
 * forward that checks the input against the layer's configuration before calling its op. */
#include "nn/nn_internal.h"

#include <math.h>
#include <stdio.h>

/* Frees a half-built module and returns NULL (ctx already holds the error). */
static gf_module *fail(gf_module *m) {
    gf_module_free(m);
    return NULL;
}

/* A module of this file: every layer here keeps nothing from its forward and returns its
 * input or a new header (GF_LAYER_LIB); most also return fresh storage (GF_LAYER_FRESH). */
static gf_module *layer_alloc(gf_ctx *ctx, const char *type, gf_module_forward_fn forward,
                              unsigned flags) {
    gf_module *m = gf_module_alloc(ctx, type, forward);
    if (m) m->layer = GF_LAYER_LIB | flags;
    return m;
}

/* Linear/Conv default: weight kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
 * then bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static bool default_init(gf_ctx *ctx, gf_rng *rng, gf_tensor *w, gf_tensor *b) {
    if (gf_nn_init_kaiming_uniform(ctx, w, rng, sqrtf(5.0f), GF_FAN_IN) != GF_OK) return false;
    if (!b) return true;
    float bound = 1.0f / sqrtf((float)gf_nn_fan(w, GF_FAN_IN));
    return gf_nn_init_uniform(ctx, b, rng, -bound, bound) == GF_OK;
}

/* ---- Linear ------------------------------------------------------------------------------ */

static gf_tensor *linear_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    const gf_layer_cfg *c = &self->cfg;
    if (!gf_check_tensor(ctx, "linear", "input", x, GF_F32)) return NULL;
    if (x->ndim < 1 || x->shape[x->ndim - 1] != c->in) {
        char s[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "input %s does not end in in_features=%lld",
                         gf_shape_str(x, s, sizeof s), (long long)c->in);
        return NULL;
    }
    return gf_linear(ctx, x, c->weight, c->bias);
}

gf_module *gf_nn_linear(gf_ctx *ctx, gf_rng *rng, int64_t in_features, int64_t out_features,
                        bool bias) {
    if (in_features <= 0 || out_features <= 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "Linear(in_features=%lld, out_features=%lld): both must be > 0",
                         (long long)in_features, (long long)out_features);
        return NULL;
    }
    gf_module *m = layer_alloc(ctx, "Linear", linear_fwd, GF_LAYER_FRESH);
    if (!m) return NULL;
    gf_layer_cfg *c = &m->cfg;
    c->in = in_features;
    c->out = out_features;
    c->weight = gf_module_new_param(ctx, m, "weight", 2, (int64_t[]){out_features, in_features});
    if (!c->weight) return fail(m);
    if (bias && !(c->bias = gf_module_new_param(ctx, m, "bias", 1, &out_features))) return fail(m);
    if (!default_init(ctx, rng, c->weight, c->bias)) return fail(m);
    return m;
}

/* ---- Conv1d / Conv2d --------------------------------------------------------------------- */

static gf_tensor *conv_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    const gf_layer_cfg *c = &self->cfg;
    bool two = c->dims == 2;
    int want = two ? 4 : 3;
    if (!gf_check_tensor(ctx, two ? "conv2d" : "conv1d", "input", x, GF_F32)) return NULL;
    if (x->ndim != want || x->shape[1] != c->in) {
        char s[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "expected input [N, %lld, %s], got %s",
                         (long long)c->in, two ? "H, W" : "L", gf_shape_str(x, s, sizeof s));
        return NULL;
    }
    return two ? gf_conv2d(ctx, x, c->weight, c->bias, &c->conv)
               : gf_conv1d(ctx, x, c->weight, c->bias, &c->conv);
}

static gf_module *conv_new(gf_ctx *ctx, gf_rng *rng, int dims, int64_t in, int64_t out, int kh,
                           int kw, const gf_conv_params *p, bool bias) {
    const char *type = dims == 2 ? "Conv2d" : "Conv1d";
    gf_conv_params cp = p ? *p : gf_conv_default_params();
    int nd = dims == 2 ? 2 : 1;
    char head[160];
    if (dims == 2)
        snprintf(head, sizeof head, "Conv2d(in_channels=%lld, out_channels=%lld, kernel_size=(%d, %d), groups=%d)",
                 (long long)in, (long long)out, kh, kw, cp.groups);
    else
        snprintf(head, sizeof head, "Conv1d(in_channels=%lld, out_channels=%lld, kernel_size=%d, groups=%d)",
                 (long long)in, (long long)out, kw, cp.groups);
    const char *why = NULL;
    if (in <= 0 || out <= 0) why = "channel counts must be > 0";
    else if (kh <= 0 || kw <= 0) why = "kernel size must be > 0";
    else if (cp.groups <= 0) why = "groups must be > 0";
    else if (in % cp.groups) why = "in_channels must be divisible by groups";
    else if (out % cp.groups) why = "out_channels must be divisible by groups";
    for (int i = 0; i < nd && !why; i++) {
        if (cp.stride[i] <= 0) why = "stride must be > 0";
        else if (cp.padding[i] < 0) why = "padding must be >= 0";
        else if (cp.dilation[i] <= 0) why = "dilation must be > 0";
    }
    if (why) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s", head, why);
        return NULL;
    }
    gf_module *m = layer_alloc(ctx, type, conv_fwd, GF_LAYER_FRESH);
    if (!m) return NULL;
    gf_layer_cfg *c = &m->cfg;
    c->dims = dims;
    c->in = in;
    c->out = out;
    c->kh = kh;
    c->kw = kw;
    c->conv = cp;
    int64_t ws[4] = {out, in / cp.groups, kh, kw};
    if (dims == 1) ws[2] = kw;
    c->weight = gf_module_new_param(ctx, m, "weight", dims + 2, ws);
    if (!c->weight) return fail(m);
    if (bias && !(c->bias = gf_module_new_param(ctx, m, "bias", 1, &out))) return fail(m);
    if (!default_init(ctx, rng, c->weight, c->bias)) return fail(m);
    return m;
}

gf_module *gf_nn_conv2d(gf_ctx *ctx, gf_rng *rng, int64_t in_channels, int64_t out_channels,
                        int kh, int kw, const gf_conv_params *p, bool bias) {
    return conv_new(ctx, rng, 2, in_channels, out_channels, kh, kw, p, bias);
}

gf_module *gf_nn_conv1d(gf_ctx *ctx, gf_rng *rng, int64_t in_channels, int64_t out_channels,
                        int kernel, const gf_conv_params *p, bool bias) {
    return conv_new(ctx, rng, 1, in_channels, out_channels, 1, kernel, p, bias);
}

/* ---- BatchNorm1d / BatchNorm2d ------------------------------------------------------------ */

gf_bn_params gf_bn_default_params(void) {
    gf_bn_params p = {1e-5f, 0.1f, true, true};
    return p;
}

static gf_tensor *bn_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    gf_layer_cfg *c = &self->cfg;
    if (!gf_check_tensor(ctx, "batch_norm", "input", x, GF_F32)) return NULL;
    bool ok_dims = c->dims == 2 ? x->ndim == 4 : (x->ndim == 2 || x->ndim == 3);
    if (!ok_dims) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "expected %s input (got %dD input)",
                         c->dims == 2 ? "4D" : "2D or 3D", x->ndim);
        return NULL;
    }
    if (x->shape[1] != c->in) {
        char s[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "input %s has %lld channels, expected num_features=%lld",
                         gf_shape_str(x, s, sizeof s), (long long)x->shape[1], (long long)c->in);
        return NULL;
    }
    /* torch: in training with tracking, count the batch; momentum None averages cumulatively.
     * Replicas other than the first leave the count, like the running statistics, to it. */
    float factor = 0.0f;
    if (self->training && c->track && !ctx->bn_skip_running) {
        int64_t *nb = gf_i64(c->num_batches);
        *nb += 1;
        factor = c->f1 < 0.0f ? (float)(1.0 / (double)*nb) : c->f1;
    }
    bool use_batch = self->training || !c->track;
    return gf_batch_norm(ctx, x, c->weight, c->bias, c->running_mean, c->running_var, use_batch,
                         factor, c->f0);
}

static gf_module *bn_new(gf_ctx *ctx, int dims, int64_t nf, const gf_bn_params *p) {
    gf_bn_params bp = p ? *p : gf_bn_default_params();
    const char *type = dims == 2 ? "BatchNorm2d" : "BatchNorm1d";
    if (nf <= 0 || !(bp.eps >= 0.0f) || !isfinite(bp.momentum) || bp.momentum > 1.0f) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s(num_features=%lld, eps=%g, momentum=%g): num_features must be > 0, "
                         "eps >= 0, momentum <= 1 (negative: cumulative average)",
                         type, (long long)nf, (double)bp.eps, (double)bp.momentum);
        return NULL;
    }
    gf_module *m = layer_alloc(ctx, type, bn_fwd, GF_LAYER_FRESH);
    if (!m) return NULL;
    gf_layer_cfg *c = &m->cfg;
    c->in = nf;
    c->dims = dims;
    c->f0 = bp.eps;
    c->f1 = bp.momentum;
    c->track = bp.track_running_stats;
    if (bp.affine) {
        if (!(c->weight = gf_module_new_param(ctx, m, "weight", 1, &nf)) ||
            !(c->bias = gf_module_new_param(ctx, m, "bias", 1, &nf)))
            return fail(m);
        gf_nn_init_constant(ctx, c->weight, 1.0f); /* bias stays 0 */
    }
    if (bp.track_running_stats) {
        if (!(c->running_mean = gf_module_new_buffer(ctx, m, "running_mean", GF_F32, 1, &nf)) ||
            !(c->running_var = gf_module_new_buffer(ctx, m, "running_var", GF_F32, 1, &nf)) ||
            !(c->num_batches = gf_module_new_buffer(ctx, m, "num_batches_tracked", GF_I64, 0, NULL)))
            return fail(m);
        gf_nn_init_constant(ctx, c->running_var, 1.0f);
    }
    return m;
}

gf_module *gf_nn_batch_norm1d(gf_ctx *ctx, int64_t num_features, const gf_bn_params *p) {
    return bn_new(ctx, 1, num_features, p);
}

gf_module *gf_nn_batch_norm2d(gf_ctx *ctx, int64_t num_features, const gf_bn_params *p) {
    return bn_new(ctx, 2, num_features, p);
}

/* ---- LayerNorm ------------------------------------------------------------------------- */

static gf_tensor *ln_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    const gf_layer_cfg *c = &self->cfg;
    if (!gf_check_tensor(ctx, "layer_norm", "input", x, GF_F32)) return NULL;
    int k = c->dim0;
    bool ok = x->ndim >= k;
    for (int i = 0; ok && i < k; i++) ok = x->shape[x->ndim - k + i] == c->norm_shape[i];
    if (!ok) {
        char s[GF_SHAPE_BUF], ns[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "input %s does not end in normalized_shape %s",
                         gf_shape_str(x, s, sizeof s), gf_dims_str(k, c->norm_shape, ns, sizeof ns));
        return NULL;
    }
    return gf_layer_norm(ctx, x, k, c->weight, c->bias, c->f0);
}

gf_module *gf_nn_layer_norm(gf_ctx *ctx, int n_axes, const int64_t *normalized_shape, float eps,
                            bool elementwise_affine) {
    bool ok = n_axes >= 1 && n_axes <= GF_MAX_DIMS && normalized_shape && eps >= 0.0f;
    for (int i = 0; ok && i < n_axes; i++) ok = normalized_shape[i] > 0;
    if (!ok) {
        char ns[GF_SHAPE_BUF] = "(null)";
        if (normalized_shape && n_axes >= 0 && n_axes <= GF_MAX_DIMS)
            gf_dims_str(n_axes, normalized_shape, ns, sizeof ns);
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "LayerNorm(normalized_shape=%s, n_axes=%d, eps=%g): need 1 to %d axes, "
                         "each > 0, and eps >= 0", ns, n_axes, (double)eps, GF_MAX_DIMS);
        return NULL;
    }
    gf_module *m = layer_alloc(ctx, "LayerNorm", ln_fwd, GF_LAYER_FRESH);
    if (!m) return NULL;
    gf_layer_cfg *c = &m->cfg;
    c->dim0 = n_axes;
    c->f0 = eps;
    memcpy(c->norm_shape, normalized_shape, sizeof(int64_t) * (size_t)n_axes);
    if (elementwise_affine) {
        if (!(c->weight = gf_module_new_param(ctx, m, "weight", n_axes, normalized_shape)) ||
            !(c->bias = gf_module_new_param(ctx, m, "bias", n_axes, normalized_shape)))
            return fail(m);
        gf_nn_init_constant(ctx, c->weight, 1.0f);
    }
    return m;
}

/* ---- Dropout, Embedding ------------------------------------------------------------------ */

static gf_tensor *dropout_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_dropout(ctx, x, self->cfg.f0, self->training);
}

gf_module *gf_nn_dropout(gf_ctx *ctx, float p) {
    if (!(p >= 0.0f && p <= 1.0f)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "Dropout(p=%g): p must be in [0, 1]", (double)p);
        return NULL;
    }
    gf_module *m = layer_alloc(ctx, "Dropout", dropout_fwd, GF_LAYER_FRESH);
    if (m) m->cfg.f0 = p;
    return m;
}

static gf_tensor *embedding_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_embedding(ctx, self->cfg.weight, x, self->cfg.padding_idx);
}

gf_module *gf_nn_embedding(gf_ctx *ctx, gf_rng *rng, int64_t num_embeddings,
                           int64_t embedding_dim, int64_t padding_idx) {
    if (num_embeddings <= 0 || embedding_dim <= 0 || padding_idx >= num_embeddings) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "Embedding(num_embeddings=%lld, embedding_dim=%lld, padding_idx=%lld): "
                         "sizes must be > 0 and padding_idx < num_embeddings",
                         (long long)num_embeddings, (long long)embedding_dim, (long long)padding_idx);
        return NULL;
    }
    gf_module *m = layer_alloc(ctx, "Embedding", embedding_fwd, GF_LAYER_FRESH);
    if (!m) return NULL;
    gf_layer_cfg *c = &m->cfg;
    c->in = num_embeddings;
    c->out = embedding_dim;
    c->padding_idx = padding_idx < 0 ? -1 : padding_idx;
    c->weight = gf_module_new_param(ctx, m, "weight", 2, (int64_t[]){num_embeddings, embedding_dim});
    if (!c->weight || gf_nn_init_normal(ctx, c->weight, rng, 0.0f, 1.0f) != GF_OK) return fail(m);
    if (c->padding_idx >= 0)
        memset(gf_f32(c->weight) + c->padding_idx * embedding_dim, 0,
               sizeof(float) * (size_t)embedding_dim);
    return m;
}

/* A batch of bags' masks: which ids count (int64 [N, T, 1], gf_where's condition), how many
 * per bag (float [N, 1]; 1 for an empty bag, whose sum is zero anyway) and whether any does
 * (int64 [N, 1]). */
typedef struct bag_masks {
    gf_tensor *keep, *count, *any;
} bag_masks;

static bool bag_masks_of(gf_ctx *ctx, const gf_tensor *ids, int64_t pad, bag_masks *bm) {
    const int64_t n = ids->shape[0], t = ids->shape[1];
    const float *f = ids->dtype == GF_F32 ? gf_contig_f32(ctx, ids) : NULL;
    const int64_t *l = ids->dtype == GF_I64 && gf_tensor_is_contiguous(ids) ? gf_i64(ids) : NULL;
    if (!f && !l) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "EmbeddingBag: ids must be float32 or contiguous "
                         "int64, found %s", gf_dtype_name(ids->dtype));
        return false;
    }
    bm->keep = gf_empty(ctx, GF_I64, 3, (int64_t[]){n, t, 1});
    bm->count = gf_empty(ctx, GF_F32, 2, (int64_t[]){n, 1});
    bm->any = gf_empty(ctx, GF_I64, 2, (int64_t[]){n, 1});
    if (!bm->keep || !bm->count || !bm->any) return false;
    int64_t *k = gf_i64(bm->keep);
    for (int64_t i = 0; i < n; i++) {
        int64_t c = 0;
        for (int64_t j = 0; j < t; j++) {
            const int64_t id = f ? (int64_t)f[i * t + j] : l[i * t + j];
            k[i * t + j] = id != pad;
            c += id != pad;
        }
        gf_f32(bm->count)[i] = c ? (float)c : 1.0f;
        gf_i64(bm->any)[i] = c > 0;
    }
    return true;
}

static gf_tensor *embedding_bag_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    const gf_layer_cfg *c = &self->cfg;
    if (x->ndim != 2) {
        char sh[64];
        gf_dims_str(x->ndim, x->shape, sh, sizeof sh);
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "EmbeddingBag: ids must be bags [N, T], found %s", sh);
        return NULL;
    }
    bag_masks bm;
    gf_tensor *e = gf_embedding(ctx, c->weight, x, c->padding_idx);
    if (!e || !bag_masks_of(ctx, x, c->padding_idx, &bm)) return NULL;
    const int axis = 1;
    if (c->dim0 == GF_NN_BAG_MAX) { /* left-out ids as -inf, then empty bags as zeros */
        gf_tensor *m = gf_max(ctx, gf_where(ctx, bm.keep, e, gf_scalar(ctx, -INFINITY)), &axis, 1,
                              false);
        return gf_where(ctx, bm.any, m, gf_scalar(ctx, 0.0f));
    }
    gf_tensor *s = gf_sum(ctx, gf_where(ctx, bm.keep, e, gf_scalar(ctx, 0.0f)), &axis, 1, false);
    return c->dim0 == GF_NN_BAG_SUM ? s : gf_div(ctx, s, bm.count);
}

gf_module *gf_nn_embedding_bag(gf_ctx *ctx, gf_rng *rng, int64_t num_embeddings,
                               int64_t embedding_dim, gf_nn_bag_mode mode, int64_t padding_idx) {
    if (mode < GF_NN_BAG_MEAN || mode > GF_NN_BAG_MAX) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "EmbeddingBag: mode %d is not mean, sum or max",
                         (int)mode);
        return NULL;
    }
    gf_module *m = gf_nn_embedding(ctx, rng, num_embeddings, embedding_dim, padding_idx);
    if (!m) return NULL;
    snprintf(m->type, sizeof m->type, "EmbeddingBag");
    m->forward = embedding_bag_fwd;
    m->cfg.dim0 = (int)mode;
    return m;
}

/* ---- pooling, Flatten, Identity ---------------------------------------------------------- */

static gf_tensor *maxpool_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_max_pool2d(ctx, x, &self->cfg.pool);
}

static gf_tensor *avgpool_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_avg_pool2d(ctx, x, &self->cfg.pool);
}

static gf_module *pool_new(gf_ctx *ctx, const char *type, gf_module_forward_fn fwd,
                           const gf_pool_params *p) {
    if (!p) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: params are NULL (use gf_pool_default_params)", type);
        return NULL;
    }
    bool max = fwd == maxpool_fwd;
    for (int i = 0; i < 2; i++)
        if (p->kernel[i] <= 0 || p->stride[i] < 0 || p->padding[i] < 0 ||
            (max && p->dilation[i] <= 0)) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID,
                             "%s(kernel_size=(%d, %d), stride=(%d, %d), padding=(%d, %d), "
                             "dilation=(%d, %d)): kernel and dilation must be > 0, stride and "
                             "padding >= 0", type, p->kernel[0], p->kernel[1], p->stride[0],
                             p->stride[1], p->padding[0], p->padding[1], p->dilation[0],
                             p->dilation[1]);
            return NULL;
        }
    gf_module *m = layer_alloc(ctx, type, fwd, GF_LAYER_FRESH);
    if (m) m->cfg.pool = *p;
    return m;
}

gf_module *gf_nn_max_pool2d(gf_ctx *ctx, const gf_pool_params *p) {
    return pool_new(ctx, "MaxPool2d", maxpool_fwd, p);
}

gf_module *gf_nn_avg_pool2d(gf_ctx *ctx, const gf_pool_params *p) {
    return pool_new(ctx, "AvgPool2d", avgpool_fwd, p);
}

static gf_tensor *adaptive_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_adaptive_avg_pool2d(ctx, x, self->cfg.kh, self->cfg.kw);
}

gf_module *gf_nn_adaptive_avg_pool2d(gf_ctx *ctx, int out_h, int out_w) {
    if (out_h <= 0 || out_w <= 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "AdaptiveAvgPool2d(output_size=(%d, %d)): sizes must be > 0", out_h, out_w);
        return NULL;
    }
    gf_module *m = layer_alloc(ctx, "AdaptiveAvgPool2d", adaptive_fwd, GF_LAYER_FRESH);
    if (m) {
        m->cfg.kh = out_h;
        m->cfg.kw = out_w;
    }
    return m;
}

static gf_tensor *flatten_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_flatten(ctx, x, self->cfg.dim0, self->cfg.dim1);
}

gf_module *gf_nn_flatten(gf_ctx *ctx, int start_dim, int end_dim) {
    gf_module *m = layer_alloc(ctx, "Flatten", flatten_fwd, 0); /* returns a view: not fresh */
    if (m) {
        m->cfg.dim0 = start_dim;
        m->cfg.dim1 = end_dim;
    }
    return m;
}

static gf_tensor *identity_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)ctx, (void)self, (void)user;
    return x;
}

gf_module *gf_nn_identity(gf_ctx *ctx) {
    return layer_alloc(ctx, "Identity", identity_fwd, GF_LAYER_FRESH); /* returns its input */
}

/* ---- activations ------------------------------------------------------------------------- */

#define SIMPLE_ACT(fn, type, op)                                                            \
    static gf_tensor *fn##_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {    \
        (void)self, (void)user;                                                             \
        return op(ctx, x);                                                                  \
    }                                                                                       \
    gf_module *gf_nn_##fn(gf_ctx *ctx) { return layer_alloc(ctx, type, fn##_fwd, GF_LAYER_FRESH); }

/* In place only when the running container has handed this very tensor over (it checked the
 * rules of docs/NN.md, "Memory", for this call); the token is used up either way. */
static gf_tensor *relu_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)self, (void)user;
    const bool inplace = x && ctx->inplace_input == x;
    ctx->inplace_input = NULL;
    return inplace ? gf_relu_inplace(ctx, x) : gf_relu(ctx, x);
}

gf_module *gf_nn_relu(gf_ctx *ctx) {
    return layer_alloc(ctx, "ReLU", relu_fwd, GF_LAYER_FRESH | GF_LAYER_RELU);
}

SIMPLE_ACT(silu, "SiLU", gf_silu)
SIMPLE_ACT(sigmoid, "Sigmoid", gf_sigmoid)
SIMPLE_ACT(tanh, "Tanh", gf_tanh)

static gf_tensor *leaky_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_leaky_relu(ctx, x, self->cfg.f0);
}

gf_module *gf_nn_leaky_relu(gf_ctx *ctx, float negative_slope) {
    gf_module *m = layer_alloc(ctx, "LeakyReLU", leaky_fwd, GF_LAYER_FRESH);
    if (m) m->cfg.f0 = negative_slope;
    return m;
}

static gf_tensor *elu_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_elu(ctx, x, self->cfg.f0);
}

gf_module *gf_nn_elu(gf_ctx *ctx, float alpha) {
    gf_module *m = layer_alloc(ctx, "ELU", elu_fwd, GF_LAYER_FRESH);
    if (m) m->cfg.f0 = alpha;
    return m;
}

static gf_tensor *gelu_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_gelu(ctx, x, self->cfg.approx);
}

gf_module *gf_nn_gelu(gf_ctx *ctx, gf_gelu_approx approximate) {
    if (approximate != GF_GELU_EXACT && approximate != GF_GELU_TANH) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "GELU(approximate=%d): must be exact (0) or tanh (1)",
                         (int)approximate);
        return NULL;
    }
    gf_module *m = layer_alloc(ctx, "GELU", gelu_fwd, GF_LAYER_FRESH);
    if (m) m->cfg.approx = approximate;
    return m;
}

static gf_tensor *softplus_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_softplus(ctx, x, self->cfg.f0, self->cfg.f1);
}

gf_module *gf_nn_softplus(gf_ctx *ctx, float beta, float threshold) {
    if (!(beta != 0.0f) || !isfinite(beta)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "Softplus(beta=%g, threshold=%g): beta must be "
                         "finite and non-zero", (double)beta, (double)threshold);
        return NULL;
    }
    gf_module *m = layer_alloc(ctx, "Softplus", softplus_fwd, GF_LAYER_FRESH);
    if (m) {
        m->cfg.f0 = beta;
        m->cfg.f1 = threshold;
    }
    return m;
}

static gf_tensor *softmax_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_softmax(ctx, x, self->cfg.dim0);
}

static gf_tensor *log_softmax_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_log_softmax(ctx, x, self->cfg.dim0);
}

gf_module *gf_nn_softmax(gf_ctx *ctx, int dim) {
    gf_module *m = layer_alloc(ctx, "Softmax", softmax_fwd, GF_LAYER_FRESH);
    if (m) m->cfg.dim0 = dim;
    return m;
}

gf_module *gf_nn_log_softmax(gf_ctx *ctx, int dim) {
    gf_module *m = layer_alloc(ctx, "LogSoftmax", log_softmax_fwd, GF_LAYER_FRESH);
    if (m) m->cfg.dim0 = dim;
    return m;
}
