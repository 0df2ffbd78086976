/* Convolution and pooling with ONNX's geometry: 1, 2 or 3 spatial axes, pads that differ at the
 * two ends, auto_pad (SAME_UPPER, SAME_LOWER, VALID), dilation, groups, ceil mode. Convolution
 * runs on gf_conv1d / gf_conv2d (uneven pads applied first with gf_pad); 3-D convolution is a sum
 * of 2-D convolutions over the kernel's depth; ConvTranspose is the convolution of the input
 * with zeros inserted between its elements by the flipped, channel-swapped kernel. Pooling takes
 * gf_max_pool2d / gf_avg_pool2d where PyTorch's symmetric geometry applies, gf_*_pool_nd
 * otherwise. Everything is built from recorded ops, so all of it is differentiable. */
#include "import/onnx_internal.h"

#include <limits.h>
#include <string.h>

typedef struct geo {
    int nsp;                                    /* spatial axes */
    int64_t k[3], s[3], d[3], pb[3], pe[3], op[3];
    int64_t group;
} geo;

/* kernel_shape (or the weight's), strides, dilations, pads, output_padding, group. */
static bool read_geo(ox_exec *e, const gf_tensor *x, const gf_tensor *w, geo *g) {
    memset(g, 0, sizeof *g);
    g->nsp = x->ndim - 2;
    if (g->nsp < 1 || g->nsp > 3)
        return ox_fail(e, GF_ERR_SHAPE, "input of rank %d: expected [N, C] and 1 to 3 spatial axes",
                       x->ndim);
    const int64_t *ks, *st, *di, *pa, *op;
    int nk = ox_attr_ints(e->node, "kernel_shape", &ks), ns = ox_attr_ints(e->node, "strides", &st);
    int nd = ox_attr_ints(e->node, "dilations", &di), np = ox_attr_ints(e->node, "pads", &pa);
    int no = ox_attr_ints(e->node, "output_padding", &op);
    if ((ks && nk != g->nsp) || (st && ns != g->nsp) || (di && nd != g->nsp) ||
        (pa && np != 2 * g->nsp) || (op && no != g->nsp))
        return ox_fail(e, GF_ERR_INVALID,
                       "kernel_shape, strides, dilations, pads or output_padding "
                       "do not fit %d spatial axes",
                       g->nsp);
    if (!ks && (!w || w->ndim != g->nsp + 2))
        return ox_fail(e, GF_ERR_INVALID, "no kernel_shape, and no weight to take it from");
    for (int i = 0; i < g->nsp; i++) {
        g->k[i] = ks ? ks[i] : w->shape[2 + i];
        g->s[i] = st ? st[i] : 1;
        g->d[i] = di ? di[i] : 1;
        g->pb[i] = pa ? pa[i] : 0;
        g->pe[i] = pa ? pa[i + g->nsp] : 0;
        g->op[i] = op ? op[i] : 0;
        if (g->k[i] < 1 || g->s[i] < 1 || g->d[i] < 1 || g->pb[i] < 0 || g->pe[i] < 0 ||
            g->k[i] > INT_MAX || g->s[i] > INT_MAX || g->d[i] > INT_MAX || g->pb[i] > INT_MAX ||
            g->pe[i] > INT_MAX || g->op[i] < 0 ||
            g->op[i] >= (g->s[i] > g->d[i] ? g->s[i] : g->d[i]))
            return ox_fail(e, GF_ERR_INVALID,
                           "axis %d: kernel %lld, stride %lld, dilation %lld, "
                           "pads %lld/%lld, output padding %lld out of range",
                           i, (long long)g->k[i], (long long)g->s[i], (long long)g->d[i],
                           (long long)g->pb[i], (long long)g->pe[i], (long long)g->op[i]);
    }
    g->group = ox_attr_int(e->node, "group", 1);
    if (g->group < 1 || g->group > INT_MAX)
        return ox_fail(e, GF_ERR_INVALID, "group %lld", (long long)g->group);
    return true;
}

/* auto_pad for a convolution or pooling: SAME pads so that out = ceil(in / stride). */
static bool auto_pad(ox_exec *e, const gf_tensor *x, geo *g) {
    const char *ap = ox_attr_str(e->node, "auto_pad", "NOTSET");
    if (!strcmp(ap, "NOTSET") || !ap[0]) return true;
    bool upper = !strcmp(ap, "SAME_UPPER"), lower = !strcmp(ap, "SAME_LOWER");
    if (!upper && !lower && strcmp(ap, "VALID"))
        return ox_fail(e, GF_ERR_INVALID,
                       "auto_pad '%s' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", ap);
    for (int i = 0; i < g->nsp; i++) {
        int64_t in = x->shape[2 + i], total = 0;
        if (upper || lower) {
            int64_t out = (in + g->s[i] - 1) / g->s[i];
            total = (out - 1) * g->s[i] + (g->k[i] - 1) * g->d[i] + 1 - in;
            if (total < 0) total = 0;
        }
        g->pb[i] = lower ? total - total / 2 : total / 2;
        g->pe[i] = total - g->pb[i];
    }
    return true;
}

/* The input with the pads of g: refused when it would be larger than both the input and the
 * activation limit (pads are numbers from the file). */
static bool check_padded(ox_exec *e, const gf_tensor *x, const geo *g) {
    int64_t n = x->shape[0] * x->shape[1];
    for (int i = 0; i < g->nsp; i++) {
        int64_t len = x->shape[2 + i] + g->pb[i] + g->pe[i];
        n = len && n > INT64_MAX / len ? INT64_MAX : n * len;
    }
    return ox_check_grow(e, n, x->numel, "the padded input");
}

/* x padded with zeros at both ends of each spatial axis where the pads differ (or always, with
 * all), leaving symmetric pads in g for the convolution itself. */
static gf_tensor *pad_uneven(ox_exec *e, gf_tensor *x, geo *g, bool all) {
    bool need = false;
    for (int i = 0; i < g->nsp; i++) need |= (all && g->pb[i]) || g->pb[i] != g->pe[i];
    if (!need) return x;
    int64_t pairs[6];
    for (int i = 0; i < g->nsp; i++) {
        int k = g->nsp - 1 - i;
        pairs[2 * k] = g->pb[i], pairs[2 * k + 1] = g->pe[i];
        g->pb[i] = g->pe[i] = 0;
    }
    return gf_pad(e->ctx, x, pairs, 2 * g->nsp, 0.0f);
}

/* 3-D convolution (pads already applied) as the sum over the kernel's depth of 2-D
 * convolutions of the input's matching depth slices. */
static gf_tensor *conv3d(ox_exec *e, gf_tensor *x, gf_tensor *w, gf_tensor *b, const geo *g) {
    gf_ctx *c = e->ctx;
    const int64_t n = x->shape[0], ch = x->shape[1], dp = x->shape[2], o = w->shape[0];
    const int64_t od = (dp - (g->k[0] - 1) * g->d[0] - 1) / g->s[0] + 1;
    if (od < 1) return ox_fail(e, GF_ERR_SHAPE, "kernel depth does not fit the input"), NULL;
    gf_conv_params p = gf_conv_default_params();
    p.stride[0] = (int)g->s[1], p.stride[1] = (int)g->s[2];
    p.dilation[0] = (int)g->d[1], p.dilation[1] = (int)g->d[2];
    p.groups = (int)g->group;
    static const int perm[5] = {0, 2, 1, 3, 4};
    gf_tensor *acc = NULL;
    for (int64_t t = 0; t < g->k[0]; t++) {
        int64_t from = t * g->d[0];
        gf_tensor *xs =
            gf_permute(c, gf_slice(c, x, 2, from, from + (od - 1) * g->s[0] + 1, g->s[0]), perm);
        int64_t s4[4] = {n * od, ch, x->shape[3], x->shape[4]};
        int64_t w4[4] = {o, w->shape[1], w->shape[3], w->shape[4]};
        gf_tensor *wt = gf_reshape(c, gf_slice(c, w, 2, t, t + 1, 1), 4, w4);
        gf_tensor *y = gf_conv2d(c, gf_reshape(c, xs, 4, s4), wt, NULL, &p);
        acc = acc ? gf_add(c, acc, y) : y;
        if (!acc) return NULL;
    }
    int64_t s5[5] = {n, od, o, acc->shape[2], acc->shape[3]};
    gf_tensor *y = gf_permute(c, gf_reshape(c, acc, 5, s5), perm);
    if (b) {
        int64_t bs[5] = {1, o, 1, 1, 1};
        y = gf_add(c, y, gf_reshape(c, b, 5, bs));
    }
    return y;
}

/* Convolution over 1-3 spatial axes with symmetric or uneven pads. */
static gf_tensor *conv_any(ox_exec *e, gf_tensor *x, gf_tensor *w, gf_tensor *b, geo *g) {
    x = pad_uneven(e, x, g, g->nsp == 3);
    if (!x) return NULL;
    if (g->nsp == 3) return conv3d(e, x, w, b, g);
    gf_conv_params p = gf_conv_default_params();
    for (int i = 0; i < g->nsp; i++) {
        p.stride[i] = (int)g->s[i], p.dilation[i] = (int)g->d[i], p.padding[i] = (int)g->pb[i];
    }
    p.groups = (int)g->group;
    return g->nsp == 2 ? gf_conv2d(e->ctx, x, w, b, &p) : gf_conv1d(e->ctx, x, w, b, &p);
}

bool ox_op_conv(ox_exec *e) {
    gf_tensor *x = e->in[0], *w = e->in[1], *b = e->n_in > 2 ? e->in[2] : NULL;
    geo g;
    if (!ox_need(e, 0, GF_F32) || !ox_need(e, 1, GF_F32) || !read_geo(e, x, w, &g) ||
        !auto_pad(e, x, &g))
        return false;
    if (w->ndim != x->ndim)
        return ox_fail(e, GF_ERR_SHAPE, "weight of rank %d for an input of rank %d", w->ndim,
                       x->ndim);
    if (!check_padded(e, x, &g)) return false;
    for (int i = 0; i < g.nsp; i++)
        if (w->shape[2 + i] != g.k[i])
            return ox_fail(e, GF_ERR_SHAPE,
                           "kernel_shape %lld differs from the weight's %lld on axis %d",
                           (long long)g.k[i], (long long)w->shape[2 + i], i);
    return (e->out[0] = conv_any(e, x, w, b, &g)) != NULL;
}

/* ---- ConvTranspose --------------------------------------------------------------------------- */

/* x with s-1 zeros after each element along spatial axis a (the trailing ones dropped). */
static gf_tensor *dilate_axis(gf_ctx *c, gf_tensor *x, int a, int64_t s) {
    if (s == 1 || !x) return x;
    int64_t shape[GF_MAX_DIMS], pads[2 * GF_MAX_DIMS] = {0};
    const int r = x->ndim;
    for (int d = 0; d <= a; d++) shape[d] = x->shape[d];
    shape[a + 1] = 1;
    for (int d = a + 1; d < r; d++) shape[d + 1] = x->shape[d];
    const int k = r - 1 - a; /* the new axis, counted from the last */
    pads[2 * k + 1] = s - 1;
    gf_tensor *y = gf_pad(c, gf_reshape(c, x, r + 1, shape), pads, 2 * (k + 1), 0.0f);
    if (!y) return NULL;
    int64_t merged[GF_MAX_DIMS];
    memcpy(merged, x->shape, sizeof(int64_t) * (size_t)r);
    merged[a] = x->shape[a] * s;
    y = gf_reshape(c, y, r, merged);
    return gf_slice(c, y, a, 0, (x->shape[a] - 1) * s + 1, 1);
}

/* The ConvTranspose weight [Cin, Cout/g, k...] as a convolution's: flipped spatially and with
 * in and out channels swapped within each group -> [Cout, Cin/g, k...]. */
static gf_tensor *flip_swap(ox_exec *e, gf_tensor *w, int64_t group) {
    gf_ctx *c = e->ctx;
    const int r = w->ndim;
    gf_tensor *f = w;
    for (int a = 2; f && a < r; a++) {
        int64_t k = w->shape[a];
        gf_tensor *idx = gf_empty(c, GF_I64, 1, &k);
        if (!idx) return NULL;
        for (int64_t i = 0; i < k; i++) gf_i64(idx)[i] = k - 1 - i;
        f = gf_take(c, f, idx, a);
    }
    if (!f || w->shape[0] % group)
        return ox_fail(e, GF_ERR_SHAPE, "weight channels %lld not divisible by group %lld",
                       (long long)w->shape[0], (long long)group),
               NULL;
    int64_t s[GF_MAX_DIMS], o[GF_MAX_DIMS];
    int perm[GF_MAX_DIMS];
    s[0] = group, s[1] = w->shape[0] / group, s[2] = w->shape[1];
    for (int a = 2; a < r; a++) s[a + 1] = w->shape[a];
    for (int a = 0; a <= r; a++) perm[a] = a;
    perm[1] = 2, perm[2] = 1;
    o[0] = group * w->shape[1], o[1] = w->shape[0] / group;
    for (int a = 2; a < r; a++) o[a] = w->shape[a];
    return gf_reshape(c, gf_permute(c, gf_reshape(c, f, r + 1, s), perm), r, o);
}

/* The pads implied by output_shape or auto_pad (ONNX's ConvTranspose rules). */
static bool convt_pads(ox_exec *e, const gf_tensor *x, geo *g) {
    const int64_t *os;
    int n = ox_attr_ints(e->node, "output_shape", &os);
    const char *ap = ox_attr_str(e->node, "auto_pad", "NOTSET");
    bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    if (!os && !same) return true;
    if (os && n != g->nsp && n != g->nsp + 2)
        return ox_fail(e, GF_ERR_INVALID, "output_shape has %d entries for %d spatial axes", n,
                       g->nsp);
    for (int i = 0; i < g->nsp; i++) {
        int64_t in = x->shape[2 + i];
        int64_t want = os ? os[n - g->nsp + i] : in * g->s[i];
        int64_t total = g->s[i] * (in - 1) + g->op[i] + (g->k[i] - 1) * g->d[i] + 1 - want;
        bool upper = !strcmp(ap, "SAME_UPPER");
        /* a larger output_shape than the convolution gives: zeros appended at the end */
        g->pb[i] = total < 0 ? 0 : upper ? total / 2 : total - total / 2;
        g->pe[i] = total - g->pb[i];
    }
    return true;
}

bool ox_op_conv_transpose(ox_exec *e) {
    gf_tensor *x = e->in[0], *w = e->in[1], *b = e->n_in > 2 ? e->in[2] : NULL;
    geo g;
    if (!ox_need(e, 0, GF_F32) || !ox_need(e, 1, GF_F32) || !read_geo(e, x, w, &g) ||
        !convt_pads(e, x, &g))
        return false;
    if (w->ndim != x->ndim || w->shape[0] != x->shape[1])
        return ox_fail(e, GF_ERR_SHAPE,
                       "weight [%lld, ...] of rank %d for an input of rank %d with %lld "
                       "channels",
                       (long long)w->shape[0], w->ndim, x->ndim, (long long)x->shape[1]);
    for (int i = 0; i < g.nsp; i++)
        if (w->shape[2 + i] != g.k[i])
            return ox_fail(e, GF_ERR_SHAPE,
                           "kernel_shape %lld differs from the weight's %lld on axis %d",
                           (long long)g.k[i], (long long)w->shape[2 + i], i);
    int64_t pairs[6];
    int64_t total =
        x->shape[0] * (x->shape[1] > w->shape[1] * g.group ? x->shape[1] : w->shape[1] * g.group);
    for (int i = 0; i < g.nsp; i++) {
        int k = g.nsp - 1 - i;
        int64_t ext = (g.k[i] - 1) * g.d[i];
        pairs[2 * k] = ext - g.pb[i];
        pairs[2 * k + 1] = ext - g.pe[i] + g.op[i];
        int64_t dil = (x->shape[2 + i] - 1) * g.s[i] + 1;
        int64_t len = dil + (pairs[2 * k] > 0 ? pairs[2 * k] : 0) +
            (pairs[2 * k + 1] > 0 ? pairs[2 * k + 1] : 0);
        total = len > 0 ? ox_mul(total, len) : INT64_MAX;
    }
    if (!ox_check_grow(e, total, 0, "the dilated, padded input")) return false;
    gf_tensor *y = x;
    for (int i = 0; i < g.nsp; i++) y = dilate_axis(e->ctx, y, 2 + i, g.s[i]);
    y = gf_pad(e->ctx, y, pairs, 2 * g.nsp, 0.0f);
    gf_tensor *wc = flip_swap(e, w, g.group);
    if (!y || !wc) return false;
    geo cg = g;
    for (int i = 0; i < g.nsp; i++) cg.s[i] = 1, cg.pb[i] = cg.pe[i] = 0;
    return (e->out[0] = conv_any(e, y, wc, b, &cg)) != NULL;
}

/* ---- pooling --------------------------------------------------------------------------------- */

static bool pool(ox_exec *e, bool is_max) {
    gf_tensor *x = e->in[0];
    const bool ints = x->dtype == GF_I64;
    if (ints && !(x = ox_as_f32(e, x))) return false;
    geo g;
    if (!ox_attr_get(e->node, "kernel_shape")) return ox_fail(e, GF_ERR_INVALID, "no kernel_shape");
    if (!read_geo(e, x, NULL, &g) || !auto_pad(e, x, &g) || !check_padded(e, x, &g)) return false;
    const bool ceil_mode = ox_attr_int(e->node, "ceil_mode", 0) != 0;
    const bool incl = ox_attr_int(e->node, "count_include_pad", 0) != 0;
    const bool want_idx = e->n_out > 1 && e->node->out[1] >= 0;
    bool fast = g.nsp == 2 && !ceil_mode && !want_idx && (is_max || (g.d[0] == 1 && g.d[1] == 1));
    for (int i = 0; fast && i < 2; i++) fast = g.pb[i] == g.pe[i] && 2 * g.pb[i] <= g.k[i];
    gf_tensor *y, *idx = NULL;
    if (fast) {
        gf_pool_params p = gf_pool_default_params(1);
        for (int i = 0; i < 2; i++) {
            p.kernel[i] = (int)g.k[i], p.stride[i] = (int)g.s[i], p.padding[i] = (int)g.pb[i];
            p.dilation[i] = (int)g.d[i];
        }
        p.count_include_pad = incl;
        y = is_max ? gf_max_pool2d(e->ctx, x, &p) : gf_avg_pool2d(e->ctx, x, &p);
    } else {
        gf_pool_nd_params p = {
            .n_spatial = g.nsp, .ceil_mode = ceil_mode, .count_include_pad = incl};
        for (int i = 0; i < g.nsp; i++) {
            p.kernel[i] = (int)g.k[i], p.stride[i] = (int)g.s[i], p.dilation[i] = (int)g.d[i];
            p.pad_begin[i] = (int)g.pb[i], p.pad_end[i] = (int)g.pe[i];
        }
        y = is_max ? gf_max_pool_nd(e->ctx, x, &p, want_idx ? &idx : NULL)
                   : gf_avg_pool_nd(e->ctx, x, &p);
    }
    if (y && idx && ox_attr_int(e->node, "storage_order", 0) && g.nsp == 2) {
        const int64_t h = x->shape[2], w = x->shape[3], plane = h * w;
        for (int64_t i = 0; i < idx->numel; i++) { /* column-major within each plane */
            int64_t v = gf_i64(idx)[i], in = v % plane;
            gf_i64(idx)[i] = v - in + (in % w) * h + in / w;
        }
    }
    if (want_idx) e->out[1] = idx;
    if (y && ints) y = ox_as_i64(e, y);
    return (e->out[0] = y) != NULL;
}

bool ox_op_max_pool(ox_exec *e) { return pool(e, true); }
bool ox_op_average_pool(ox_exec *e) { return pool(e, false); }

bool ox_op_global_pool(ox_exec *e) {
    gf_tensor *x = e->in[0];
    if (!ox_need(e, 0, GF_F32)) return false;
    if (x->ndim < 3)
        return ox_fail(e, GF_ERR_SHAPE, "input of rank %d (expected [N, C, ...])", x->ndim);
    int axes[GF_MAX_DIMS];
    for (int d = 2; d < x->ndim; d++) axes[d - 2] = d;
    bool is_max = strstr(e->node->op, "Max") != NULL;
    e->out[0] = is_max ? gf_max(e->ctx, x, axes, x->ndim - 2, true)
                       : gf_mean(e->ctx, x, axes, x->ndim - 2, true);
    return e->out[0] != NULL;
}
