/* Output shapes of the kept layers, in the file's layout (NHWC per example, -1 for a size the
 * file leaves open), with the weights each layer needs checked against the manifest (present,
 * float32, the shape its settings and input imply) and the params / activation limits applied
 * before any module is allocated. */
#define _POSIX_C_SOURCE 200809L
#include "import/tfjs_internal.h"

#include <stdio.h>
#include <string.h>

void tj_same_pads(int64_t in, int k, int s, int64_t *before, int64_t *after) {
    int64_t out = (in + s - 1) / s, total = (out - 1) * s + k - in;
    if (total < 0) total = 0;
    *before = total / 2;
    *after = total - *before;
}

/* The weight "<layer>/<field>": float32 with the expected shape; NULL after an error. */
static const tj_weight *need(gf_ctx *ctx, const tj_manifest *m, const tj_node *nd,
                             const char *field, int ndim, const int64_t *shape, const char *label) {
    char key[2 * TJ_NAME_MAX + 32], want[128], got[128];
    snprintf(key, sizeof key, "%s/%s", nd->name, field);
    const tj_weight *w = tj_manifest_find(m, key);
    gf_dims_str(ndim, shape, want, sizeof want);
    if (!w) {
        tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "weight %s %s is not in the weights "
                       "manifest", key, want);
        return NULL;
    }
    gf_dims_str(w->ndim, w->shape, got, sizeof got);
    bool same = w->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = w->shape[d] == shape[d];
    if (!w->is_f32 || !same) {
        tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "weight %s: expected float32 %s, found %s%s",
                       w->name, want, w->is_f32 ? "" : "a non-float32 ", got);
        return NULL;
    }
    return w;
}

/* Output size along one axis of a window op. */
static int64_t window_out(int64_t in, int k_eff, int s, bool same) {
    if (in < 0) return -1;
    if (same) return (in + s - 1) / s;
    return in < k_eff ? 0 : (in - k_eff) / s + 1;
}

/* Kernel, stride, 'same' into the output [H', W', C] of a 3-D input; checks the window fits. */
static gf_status window_shape(gf_ctx *ctx, tj_node *nd, const tj_node *x, int64_t c,
                              const char *label) {
    int keh = (nd->kh - 1) * nd->dh + 1, kew = (nd->kw - 1) * nd->dw + 1;
    nd->out_ndim = 3;
    nd->out[0] = window_out(x->out[0], keh, nd->sh, nd->same);
    nd->out[1] = window_out(x->out[1], kew, nd->sw, nd->same);
    nd->out[2] = c;
    if (nd->out[0] == 0 || nd->out[1] == 0)
        return tj_layer_error(ctx, GF_ERR_SHAPE, label, nd, "input %lldx%lld is smaller than the "
                              "window %dx%d", (long long)x->out[0], (long long)x->out[1], keh, kew);
    return GF_OK;
}

/* Conv2D, DepthwiseConv2D, SeparableConv2D: weights and output. */
static gf_status conv_shape(gf_ctx *ctx, tj_node *nd, const tj_node *x, const tj_manifest *m,
                            const char *label) {
    const int64_t c = x->out[2], lim = gf_ctx_limits(ctx)->model_params;
    if (c < 1)
        return tj_layer_error(ctx, GF_ERR_SHAPE, label, nd, "the input's channel count is not "
                              "known");
    if (nd->mult > lim / c || (nd->kind != TJ_DWCONV && nd->filters > lim / c))
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "%lld input channels make more than "
                              "%lld weights " GF_LIMIT_HINT("params"), (long long)c,
                              (long long)lim);
    int64_t dk[4] = {nd->kh, nd->kw, c, nd->kind == TJ_CONV ? nd->filters : nd->mult};
    int64_t out_c = nd->kind == TJ_DWCONV ? c * nd->mult : nd->filters;
    const char *kname = nd->kind == TJ_CONV ? "kernel" : "depthwise_kernel";
    const tj_weight *k = need(ctx, m, nd, kname, 4, dk, label);
    if (!k) return gf_ctx_status(ctx);
    nd->params = k->numel;
    if (nd->kind == TJ_SEPCONV) {
        int64_t pk[4] = {1, 1, c * nd->mult, nd->filters};
        const tj_weight *p = need(ctx, m, nd, "pointwise_kernel", 4, pk, label);
        if (!p) return gf_ctx_status(ctx);
        nd->params += p->numel;
    }
    if (nd->bias) {
        if (!need(ctx, m, nd, "bias", 1, &out_c, label)) return gf_ctx_status(ctx);
        nd->params += out_c;
    }
    return window_shape(ctx, nd, x, out_c, label);
}

/* Dense on [F] and BatchNormalization over the last axis of [F] or [H, W, C]. */
static gf_status dense_bn_shape(gf_ctx *ctx, tj_node *nd, const tj_node *x, const tj_manifest *m,
                                const char *label) {
    const int64_t f = x->out[x->out_ndim - 1];
    if (f < 1)
        return tj_layer_error(ctx, GF_ERR_SHAPE, label, nd, "the input's last size is not known");
    if (nd->kind == TJ_DENSE) {
        if (x->out_ndim != 1)
            return tj_layer_error(ctx, GF_ERR_SHAPE, label, nd, "input of %d dimensions per "
                                  "example; only [features] is supported (Flatten first)",
                                  x->out_ndim);
        if (nd->units > gf_ctx_limits(ctx)->model_params / f)
            return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "%lld x %lld weights exceed the "
                                  "limit " GF_LIMIT_HINT("params"), (long long)f,
                                  (long long)nd->units);
        int64_t ks[2] = {f, nd->units};
        if (!need(ctx, m, nd, "kernel", 2, ks, label) ||
            (nd->bias && !need(ctx, m, nd, "bias", 1, &nd->units, label)))
            return gf_ctx_status(ctx);
        nd->params = f * nd->units + (nd->bias ? nd->units : 0);
        nd->out_ndim = 1;
        nd->out[0] = nd->units;
        return GF_OK;
    }
    int axis = nd->axis < 0 ? nd->axis + x->out_ndim + 1 : nd->axis;
    if ((x->out_ndim != 1 && x->out_ndim != 3) || axis != x->out_ndim)
        return tj_layer_error(ctx, GF_ERR_SHAPE, label, nd, "axis %d of a %d-dimensional input: "
                              "only the last axis of [features] or [H, W, C] is supported",
                              nd->axis, x->out_ndim + 1);
    static const char *const fields[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    for (int i = 0; i < 4; i++) {
        if ((i == 0 && !nd->scale) || (i == 1 && !nd->center)) continue;
        if (!need(ctx, m, nd, fields[i], 1, &f, label)) return gf_ctx_status(ctx);
    }
    nd->params = (nd->scale ? f : 0) + (nd->center ? f : 0);
    nd->out_ndim = x->out_ndim;
    memcpy(nd->out, x->out, sizeof nd->out);
    return GF_OK;
}

/* Add (equal shapes) and Concatenate (equal but along the axis). */
static gf_status merge_shape(gf_ctx *ctx, tj_graph *g, tj_node *nd, const char *label) {
    const tj_node *a = &g->nodes[nd->in[0]];
    if (nd->n_in < 2)
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "needs at least 2 inputs, found %d",
                              nd->n_in);
    int ax = nd->kind == TJ_CONCAT ? (nd->axis < 0 ? nd->axis + a->out_ndim + 1 : nd->axis) : -1;
    if (nd->kind == TJ_CONCAT && (ax < 1 || ax > a->out_ndim))
        return tj_layer_error(ctx, GF_ERR_SHAPE, label, nd, "axis %d of a %d-dimensional input",
                              nd->axis, a->out_ndim + 1);
    nd->out_ndim = a->out_ndim;
    memcpy(nd->out, a->out, sizeof nd->out);
    for (int k = 1; k < nd->n_in; k++) {
        const tj_node *b = &g->nodes[nd->in[k]];
        bool fit = b->out_ndim == a->out_ndim;
        for (int d = 0; fit && d < a->out_ndim; d++) {
            if (d == ax - 1) continue;
            fit = a->out[d] < 0 || b->out[d] < 0 || a->out[d] == b->out[d];
        }
        if (!fit) {
            char sa[96], sb[96];
            gf_dims_str(a->out_ndim, a->out, sa, sizeof sa);
            gf_dims_str(b->out_ndim, b->out, sb, sizeof sb);
            return tj_layer_error(ctx, GF_ERR_SHAPE, label, nd, "inputs %s (%s) and %s (%s) do "
                                  "not fit together", a->name, sa, b->name, sb);
        }
        if (ax > 0) {
            int64_t *o = &nd->out[ax - 1];
            *o = *o < 0 || b->out[ax - 1] < 0 ? -1 : *o + b->out[ax - 1];
        }
    }
    if (ax > 0) nd->axis = ax; /* the positive axis from here on */
    return GF_OK;
}

/* Flatten and Reshape: the input's size must be known. */
static gf_status reshape_shape(gf_ctx *ctx, tj_node *nd, const tj_node *x, const char *label) {
    int64_t n = 1;
    for (int d = 0; d < x->out_ndim; d++) {
        if (x->out[d] < 0)
            return tj_layer_error(ctx, GF_ERR_SHAPE, label, nd, "the input's size is not known "
                                  "(give the input's height and width)");
        n *= x->out[d];
    }
    if (nd->kind == TJ_FLATTEN) {
        nd->out_ndim = 1;
        nd->out[0] = n;
        return GF_OK;
    }
    int64_t known = 1;
    int open = -1;
    for (int d = 0; d < nd->r_ndim; d++) {
        if (nd->r_shape[d] < 0) open = d;
        else if (nd->r_shape[d] > n) known = n + 1;
        else known *= nd->r_shape[d];
        if (known > n) break;
    }
    nd->out_ndim = nd->r_ndim;
    memcpy(nd->out, nd->r_shape, sizeof nd->out);
    if (open >= 0 && known <= n && n % known == 0) nd->out[open] = n / known;
    else if (open >= 0 || known != n)
        return tj_layer_error(ctx, GF_ERR_SHAPE, label, nd, "target_shape does not hold the "
                              "input's %lld values", (long long)n);
    return GF_OK;
}

/* The layers without weights that act on [H, W, C]: padding, pooling, global pooling. */
static gf_status spatial_shape(gf_ctx *ctx, tj_node *nd, const tj_node *x, const char *label) {
    switch (nd->kind) {
    case TJ_ZEROPAD:
        nd->out_ndim = 3;
        nd->out[0] = x->out[0] < 0 ? -1 : x->out[0] + nd->pad[0] + nd->pad[1];
        nd->out[1] = x->out[1] < 0 ? -1 : x->out[1] + nd->pad[2] + nd->pad[3];
        nd->out[2] = x->out[2];
        return GF_OK;
    case TJ_MAXPOOL:
    case TJ_AVGPOOL: return window_shape(ctx, nd, x, x->out[2], label);
    default: /* global pooling */
        nd->out_ndim = nd->keepdims ? 3 : 1;
        nd->out[0] = nd->out[1] = 1;
        nd->out[nd->out_ndim - 1] = x->out[2];
        return GF_OK;
    }
}

/* One kept layer's output shape. */
static gf_status layer_shape(gf_ctx *ctx, tj_graph *g, tj_node *nd, const tj_manifest *m,
                             const char *label) {
    const tj_node *x = &g->nodes[nd->in[0]];
    bool spatial = nd->kind == TJ_CONV || nd->kind == TJ_DWCONV || nd->kind == TJ_SEPCONV ||
                   nd->kind == TJ_ZEROPAD || nd->kind == TJ_MAXPOOL || nd->kind == TJ_AVGPOOL ||
                   nd->kind == TJ_GAP || nd->kind == TJ_GMP;
    if (nd->kind != TJ_ADD && nd->kind != TJ_CONCAT && nd->n_in != 1)
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "expected one input, found %d",
                              nd->n_in);
    if (spatial && x->out_ndim != 3)
        return tj_layer_error(ctx, GF_ERR_SHAPE, label, nd, "expected an input [H, W, C], found "
                              "%d dimensions per example (from %s)", x->out_ndim, x->name);
    switch (nd->kind) {
    case TJ_CONV:
    case TJ_DWCONV:
    case TJ_SEPCONV: return conv_shape(ctx, nd, x, m, label);
    case TJ_DENSE:
    case TJ_BN: return dense_bn_shape(ctx, nd, x, m, label);
    case TJ_ADD:
    case TJ_CONCAT: return merge_shape(ctx, g, nd, label);
    case TJ_FLATTEN:
    case TJ_RESHAPE: return reshape_shape(ctx, nd, x, label);
    case TJ_ACT:
    case TJ_DROPOUT:
        nd->out_ndim = x->out_ndim;
        memcpy(nd->out, x->out, sizeof nd->out);
        return GF_OK;
    default: return spatial_shape(ctx, nd, x, label);
    }
}

gf_status tj_infer_shapes(gf_ctx *ctx, tj_graph *g, const tj_manifest *m, const char *label) {
    const gf_limits *lim = gf_ctx_limits(ctx);
    int64_t params = 0;
    for (int i = 0; i < g->n; i++) {
        tj_node *nd = &g->nodes[i];
        if (!nd->keep || nd->kind == TJ_INPUT) continue;
        if (layer_shape(ctx, g, nd, m, label) != GF_OK) return gf_ctx_status(ctx);
        int64_t n = 1;
        for (int d = 0; d < nd->out_ndim; d++) /* saturating: sizes may be large */
            if (nd->out[d] > 0)
                n = nd->out[d] > lim->model_activation / n ? lim->model_activation + 1
                                                           : n * nd->out[d];
        if (n > lim->model_activation)
            return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "its output holds more than %lld "
                                  "values per example " GF_LIMIT_HINT("activation"),
                                  (long long)lim->model_activation);
        params += nd->params;
        if (params > lim->model_params)
            return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "the model's parameters exceed "
                                  "%lld " GF_LIMIT_HINT("params"), (long long)lim->model_params);
    }
    return GF_OK;
}
