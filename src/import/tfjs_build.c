/* The graft modules of the layers with weights, and their weights converted from TensorFlow's
 * layouts: HWIO kernels [kh, kw, in, out] become OIHW [out, in, kh, kw]; depthwise kernels
 * [kh, kw, C, M] become grouped-convolution weights [C * M, 1, kh, kw] (output channel
 * c * M + m, TensorFlow's order); Dense kernels [in, out] become Linear weights [out, in]. */
#define _POSIX_C_SOURCE 200809L
#include "import/tfjs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* [kh, kw, I, O] -> [O, I, kh, kw] (a Dense kernel is kh = kw = 1). */
static void hwio_to_oihw(const float *src, float *dst, int64_t kh, int64_t kw, int64_t in,
                         int64_t out) {
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < in; i++)
            for (int64_t y = 0; y < kh; y++)
                for (int64_t x = 0; x < kw; x++)
                    dst[((o * in + i) * kh + y) * kw + x] = src[((y * kw + x) * in + i) * out + o];
}

/* [kh, kw, C, M] -> [C * M, 1, kh, kw]. */
static void depthwise_to_grouped(const float *src, float *dst, int64_t kh, int64_t kw, int64_t c,
                                 int64_t m) {
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t j = 0; j < m; j++)
            for (int64_t y = 0; y < kh; y++)
                for (int64_t x = 0; x < kw; x++)
                    dst[((ch * m + j) * kh + y) * kw + x] = src[((y * kw + x) * c + ch) * m + j];
}

typedef enum { COPY, HWIO, DEPTHWISE } tj_layout;

/* Decodes "<layer>/<field>" and writes it into the tensor `param` of mod in graft's layout. */
static gf_status put(gf_ctx *ctx, gf_module *mod, const char *param, const tj_node *nd,
                     const char *field, tj_layout how, tj_manifest *m, const uint8_t *data,
                     const char *label) {
    char key[2 * TJ_NAME_MAX + 32];
    snprintf(key, sizeof key, "%s/%s", nd->name, field);
    tj_weight *w = tj_manifest_find(m, key); /* present and shaped: tj_infer_shapes checked */
    gf_tensor *t = gf_module_tensor(ctx, mod, param);
    if (!w || !t || t->numel != w->numel)
        return tj_layer_error(ctx, GF_ERR_STATE, label, nd, "weight %s does not fit %s", key,
                              param);
    float *tmp = how == COPY ? gf_f32(t) : malloc((size_t)w->numel * sizeof *tmp);
    if (!tmp) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
    tj_weight_decode(w, data, tmp);
    if (how == HWIO)
        hwio_to_oihw(tmp, gf_f32(t), w->ndim == 4 ? w->shape[0] : 1, w->ndim == 4 ? w->shape[1] : 1,
                     w->shape[w->ndim - 2], w->shape[w->ndim - 1]);
    else if (how == DEPTHWISE)
        depthwise_to_grouped(tmp, gf_f32(t), w->shape[0], w->shape[1], w->shape[2], w->shape[3]);
    if (how != COPY) free(tmp);
    w->used = true;
    return GF_OK;
}

/* Padding built into the convolution for 'same': the value for inputs divisible by the stride,
 * max(k_eff - s, 0) / 2; the forward pads the difference, which is never negative. */
static int same_base(int k, int d, int s) {
    int keff = (k - 1) * d + 1;
    return keff > s ? (keff - s) / 2 : 0;
}

static gf_conv_params conv_params(const tj_node *nd, int groups) {
    gf_conv_params p = gf_conv_default_params();
    p.stride[0] = nd->sh, p.stride[1] = nd->sw;
    p.dilation[0] = nd->dh, p.dilation[1] = nd->dw;
    if (nd->same) {
        p.padding[0] = same_base(nd->kh, nd->dh, nd->sh);
        p.padding[1] = same_base(nd->kw, nd->dw, nd->sw);
    }
    p.groups = groups;
    return p;
}

/* A SeparableConv2D: children depthwise (grouped, no bias) and pointwise (1x1, the bias). */
static gf_module *separable(gf_ctx *ctx, gf_rng *rng, const tj_node *nd, int64_t c) {
    gf_module *m = gf_nn_container(ctx, "SeparableConv2D", NULL, NULL, NULL);
    if (!m) return NULL;
    gf_conv_params dp = conv_params(nd, (int)c);
    gf_module_add(ctx, m, "depthwise",
                  gf_nn_conv2d(ctx, rng, c, c * nd->mult, nd->kh, nd->kw, &dp, false));
    gf_module_add(ctx, m, "pointwise",
                  gf_nn_conv2d(ctx, rng, c * nd->mult, nd->filters, 1, 1, NULL, nd->bias));
    if (gf_module_num_children(m) != 2) {
        gf_module_free(m);
        return NULL;
    }
    return m;
}

/* The module of one layer with weights, before its weights are written. */
static gf_module *make_module(gf_ctx *ctx, gf_rng *rng, const tj_node *nd, const tj_node *x) {
    const int64_t c = x->out[x->out_ndim - 1];
    gf_conv_params p;
    switch (nd->kind) {
    case TJ_CONV:
        p = conv_params(nd, 1);
        return gf_nn_conv2d(ctx, rng, c, nd->filters, nd->kh, nd->kw, &p, nd->bias);
    case TJ_DWCONV:
        p = conv_params(nd, (int)c);
        return gf_nn_conv2d(ctx, rng, c, c * nd->mult, nd->kh, nd->kw, &p, nd->bias);
    case TJ_SEPCONV: return separable(ctx, rng, nd, c);
    case TJ_DENSE: return gf_nn_linear(ctx, rng, c, nd->units, nd->bias);
    default: {
        gf_bn_params bp = gf_bn_default_params();
        bp.eps = nd->eps;
        bp.momentum = nd->momentum;
        return x->out_ndim == 3 ? gf_nn_batch_norm2d(ctx, c, &bp) : gf_nn_batch_norm1d(ctx, c, &bp);
    }
    }
}

/* The weights of one layer into its module. */
static gf_status fill(gf_ctx *ctx, gf_module *mod, const tj_node *nd, tj_manifest *m,
                      const uint8_t *data, const char *label) {
    gf_status s = GF_OK;
    switch (nd->kind) {
    case TJ_CONV:
    case TJ_DENSE: s = put(ctx, mod, "weight", nd, "kernel", HWIO, m, data, label); break;
    case TJ_DWCONV:
        s = put(ctx, mod, "weight", nd, "depthwise_kernel", DEPTHWISE, m, data, label);
        break;
    case TJ_SEPCONV:
        s = put(ctx, mod, "depthwise.weight", nd, "depthwise_kernel", DEPTHWISE, m, data, label);
        if (s == GF_OK)
            s = put(ctx, mod, "pointwise.weight", nd, "pointwise_kernel", HWIO, m, data, label);
        if (s == GF_OK && nd->bias)
            s = put(ctx, mod, "pointwise.bias", nd, "bias", COPY, m, data, label);
        return s;
    default: /* BatchNormalization: a missing gamma / beta stays 1 / 0, frozen */
        if (nd->scale) s = put(ctx, mod, "weight", nd, "gamma", COPY, m, data, label);
        else gf_tensor_set_requires_grad(gf_module_tensor(NULL, mod, "weight"), false);
        if (s == GF_OK && nd->center) s = put(ctx, mod, "bias", nd, "beta", COPY, m, data, label);
        else if (s == GF_OK)
            gf_tensor_set_requires_grad(gf_module_tensor(NULL, mod, "bias"), false);
        if (s == GF_OK) s = put(ctx, mod, "running_mean", nd, "moving_mean", COPY, m, data, label);
        if (s == GF_OK)
            s = put(ctx, mod, "running_var", nd, "moving_variance", COPY, m, data, label);
        return s;
    }
    if (s == GF_OK && nd->bias) s = put(ctx, mod, "bias", nd, "bias", COPY, m, data, label);
    return s;
}

gf_status tj_build_modules(gf_ctx *ctx, gf_module *root, tj_graph *g, tj_manifest *m,
                           const uint8_t *data, const char *label) {
    gf_rng rng; /* the initial values are overwritten: a local generator leaves ctx's alone */
    gf_rng_seed(&rng, 0);
    for (int i = 0; i < g->n; i++) {
        tj_node *nd = &g->nodes[i];
        bool weights = nd->kind == TJ_CONV || nd->kind == TJ_DWCONV || nd->kind == TJ_SEPCONV ||
                       nd->kind == TJ_DENSE || nd->kind == TJ_BN;
        if (!nd->keep || !weights) continue;
        if (!(nd->module = strdup(nd->name)))
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
        for (char *c = nd->module; *c; c++)
            if (*c == '.') *c = '_'; /* '.' separates module paths */
        gf_module *mod = make_module(ctx, &rng, nd, &g->nodes[nd->in[0]]);
        if (!mod) return gf_ctx_status(ctx);
        if (fill(ctx, mod, nd, m, data, label) != GF_OK) {
            gf_module_free(mod);
            return gf_ctx_status(ctx);
        }
        if (gf_module_add(ctx, root, nd->module, mod) != GF_OK)
            return gf_ctx_prefix_error(ctx, "%s: layer %s (%s): ", label, nd->name, nd->cls);
    }
    return GF_OK;
}
