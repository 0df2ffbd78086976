/* The forward of an imported TensorFlow.js model: the kept layers in the file's order, each
 * reading its inbound layers' outputs. Images are NCHW throughout; a layer whose meaning
 * depends on the element order (Flatten, Reshape) views its input in the file's NHWC order, so
 * the numbers are TensorFlow.js's, transposed. Everything is a recorded op or a module, so the
 * network is differentiable; the forward changes nothing but the context (reentrant). */
#include "import/tfjs_internal.h"
#include "core/internal.h"
#include "ops/ops_internal.h"
#include "kernels/vec.h"
#include "nn/nn_access.h"

#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <string.h>

gf_tensor *gf_tfjs_to_nhwc(gf_ctx *ctx, gf_tensor *x) {
    static const int perm[4] = {0, 2, 3, 1};
    if (!x || x->ndim != 4) return x;
    return gf_contiguous(ctx, gf_permute(ctx, x, perm));
}

gf_tensor *gf_tfjs_from_nhwc(gf_ctx *ctx, gf_tensor *x) {
    static const int perm[4] = {0, 3, 1, 2};
    if (!x || x->ndim != 4) return x;
    return gf_contiguous(ctx, gf_permute(ctx, x, perm));
}

static gf_tensor *activate(gf_ctx *ctx, const tj_node *nd, gf_tensor *y) {
    if (!y) return NULL;
    switch (nd->act) {
    case TJ_A_LINEAR: return y;
    case TJ_A_RELU: return gf_relu(ctx, y);
    case TJ_A_CLAMP: return gf_clamp(ctx, y, nd->act_lo, nd->act_hi);
    case TJ_A_LEAKY: return gf_leaky_relu(ctx, y, nd->act_slope);
    case TJ_A_SIGMOID: return gf_sigmoid(ctx, y);
    case TJ_A_SOFTMAX: return gf_softmax(ctx, y, y->ndim == 4 ? 1 : -1); /* the file's last axis */
    case TJ_A_TANH: return gf_tanh(ctx, y);
    case TJ_A_ELU: return gf_elu(ctx, y, 1.0f);
    case TJ_A_SOFTPLUS: return gf_softplus(ctx, y, 1.0f, 20.0f);
    case TJ_A_SWISH: return gf_silu(ctx, y);
    }
    return y;
}

/* TensorFlow's 'same' padding of x [N, C, H, W] for a window: (top, bottom, left, right). */
static void same_pads(const tj_node *nd, const gf_tensor *x, int64_t p[4]) {
    tj_same_pads(x->shape[2], (nd->kh - 1) * nd->dh + 1, nd->sh, &p[0], &p[1]);
    tj_same_pads(x->shape[3], (nd->kw - 1) * nd->dw + 1, nd->sw, &p[2], &p[3]);
}

/* A convolution layer: the part of 'same' padding its module does not do (see
 * tfjs_build.c: same_base), the module, the fused activation. */
static gf_tensor *conv(gf_ctx *ctx, gf_module *self, const tj_node *nd, gf_tensor *x) {
    if (nd->same && x->ndim == 4) {
        int64_t p[4];
        same_pads(nd, x, p);
        int kh = (nd->kh - 1) * nd->dh + 1, kw = (nd->kw - 1) * nd->dw + 1;
        int64_t bh = kh > nd->sh ? (kh - nd->sh) / 2 : 0, bw = kw > nd->sw ? (kw - nd->sw) / 2 : 0;
        const int64_t extra[4] = {p[2] - bw, p[3] - bw, p[0] - bh, p[1] - bh};
        if (extra[0] || extra[1] || extra[2] || extra[3]) x = gf_pad(ctx, x, extra, 4, 0.0f);
    }
    return activate(ctx, nd, gf_module_forward(ctx, gf_module_child(self, nd->module), x));
}

/* Average pooling with 'same' padding divides by the window's valid elements only: pad with
 * zeros, average over the whole window, and rescale each output by k / valid. */
static gf_tensor *avg_same(gf_ctx *ctx, const tj_node *nd, gf_tensor *x, const int64_t p[4],
                           const gf_pool_params *pp) {
    const int64_t h = x->shape[2], w = x->shape[3];
    const int64_t pads[4] = {p[2], p[3], p[0], p[1]};
    gf_tensor *y = gf_avg_pool2d(ctx, gf_pad(ctx, x, pads, 4, 0.0f), pp);
    if (!y) return NULL;
    const int64_t oh = y->shape[2], ow = y->shape[3], fs[4] = {1, 1, oh, ow};
    gf_tensor *f = gf_empty(ctx, GF_F32, 4, fs);
    if (!f) return NULL;
    for (int64_t i = 0; i < oh; i++) {
        int64_t r0 = i * nd->sh - p[0], r1 = r0 + nd->kh;
        int64_t rows = (r1 < h ? r1 : h) - (r0 > 0 ? r0 : 0);
        for (int64_t j = 0; j < ow; j++) {
            int64_t c0 = j * nd->sw - p[2], c1 = c0 + nd->kw;
            int64_t cols = (c1 < w ? c1 : w) - (c0 > 0 ? c0 : 0);
            gf_f32(f)[i * ow + j] = (float)((double)nd->kh * nd->kw / (double)(rows * cols));
        }
    }
    return gf_mul(ctx, y, f);
}

static gf_tensor *pool(gf_ctx *ctx, const tj_node *nd, gf_tensor *x) {
    gf_pool_params pp = gf_pool_default_params(nd->kh);
    pp.kernel[1] = nd->kw;
    pp.stride[0] = nd->sh, pp.stride[1] = nd->sw;
    pp.count_include_pad = false;
    int64_t p[4] = {0, 0, 0, 0};
    if (nd->same && x->ndim == 4) same_pads(nd, x, p);
    bool padded = p[0] || p[1] || p[2] || p[3];
    if (nd->kind == TJ_AVGPOOL)
        return padded ? avg_same(ctx, nd, x, p, &pp) : gf_avg_pool2d(ctx, x, &pp);
    if (padded) { /* padding never wins a maximum */
        const int64_t pads[4] = {p[2], p[3], p[0], p[1]};
        x = gf_pad(ctx, x, pads, 4, -INFINITY);
    }
    return gf_max_pool2d(ctx, x, &pp);
}

/* Flatten and Reshape in the file's element order. */
static gf_tensor *reshape(gf_ctx *ctx, const tj_node *nd, gf_tensor *x) {
    x = gf_tfjs_to_nhwc(ctx, x);
    if (!x) return NULL;
    int64_t shape[GF_MAX_DIMS] = {x->shape[0], -1};
    int nd_out = 2;
    if (nd->kind == TJ_RESHAPE) {
        for (int d = 0; d < nd->out_ndim; d++) shape[d + 1] = nd->out[d];
        nd_out = nd->out_ndim + 1;
    }
    return gf_tfjs_from_nhwc(ctx, gf_reshape(ctx, x, nd_out, shape));
}

/* The file's axis (1..rank-1 of NHWC) as graft's axis of the NCHW tensor. */
static int graft_axis(int axis, int ndim) {
    if (ndim != 4) return axis;
    return axis == 3 ? 1 : axis + 1;
}

static gf_tensor *run_node(gf_ctx *ctx, gf_module *self, const tj_node *nd, gf_tensor **t) {
    gf_tensor *x = t[nd->in[0]];
    static const int hw[2] = {2, 3};
    switch (nd->kind) {
    case TJ_CONV:
    case TJ_DWCONV:
    case TJ_SEPCONV: return conv(ctx, self, nd, x);
    case TJ_DENSE:
    case TJ_BN:
        return activate(ctx, nd, gf_module_forward(ctx, gf_module_child(self, nd->module), x));
    case TJ_ACT: return activate(ctx, nd, x);
    case TJ_ZEROPAD: {
        const int64_t p[4] = {nd->pad[2], nd->pad[3], nd->pad[0], nd->pad[1]};
        return gf_pad(ctx, x, p, 4, 0.0f);
    }
    case TJ_ADD:
        for (int k = 1; k < nd->n_in; k++) x = gf_add(ctx, x, t[nd->in[k]]);
        return x;
    case TJ_CONCAT: {
        gf_tensor **xs = gf_arena_alloc(gf_ctx_arena(ctx), sizeof *xs * (size_t)nd->n_in);
        if (!xs || !x) return NULL;
        for (int k = 0; k < nd->n_in; k++) xs[k] = t[nd->in[k]];
        return gf_concat(ctx, xs, nd->n_in, graft_axis(nd->axis, x->ndim));
    }
    case TJ_MAXPOOL:
    case TJ_AVGPOOL: return pool(ctx, nd, x);
    case TJ_GAP: return gf_mean(ctx, x, hw, 2, nd->keepdims);
    case TJ_GMP: return gf_max(ctx, x, hw, 2, nd->keepdims);
    case TJ_DROPOUT: return gf_dropout(ctx, x, nd->rate, gf_module_is_training(self));
    case TJ_FLATTEN:
    case TJ_RESHAPE: return reshape(ctx, nd, x);
    case TJ_INPUT: return x;
    }
    return NULL;
}

/* ---- inference without a graph: memory ----------------------------------------------------
 * With autograd off nothing keeps a layer's output alive after its last reader, but the arena
 * frees only at reset, so a deep network's forward would hold every activation at once. Here
 * (no recording, no training) a BatchNormalization in evaluation mode and a ReLU or clamp
 * layer run in place on an input that no later layer reads; and once the outputs still to be
 * read take at most a quarter of what this forward has allocated (8 MiB or more), they are
 * copied out, the arena is rewound to the forward's start and they are copied back (or, when
 * they all lie above where their new places end, copied down once). The numbers are bitwise
 * those of the ops (the same expressions, element by element). */

enum { TJ_LIVE_MAX = 8 };
#define TJ_REWIND_MIN ((size_t)8 << 20)

typedef struct tj_mem {
    gf_arena_mark mark; /* the arena at the forward's start */
    int *last;          /* per node: the last kept node that reads its output (n: never dies) */
    int *readers;       /* per node: how many kept nodes read its output */
    bool *fused;        /* per node: an activation already applied by the BatchNormalization
                         * before it (its output is its input) */
    int *pad_from;      /* per node: the ZeroPadding2D whose padding this convolution applies
                         * itself (gf_conv2d_padded), or -1 */
    int *slot;          /* per node: scratch for compact() (reallocate_live) */
} tj_mem;

/* Per node: how many times kept nodes up to the output read its output; NULL when out of
 * memory. */
static int *reader_counts(gf_ctx *ctx, const tj_graph *g) {
    int *readers = gf_arena_alloc(gf_ctx_arena(ctx), sizeof *readers * (size_t)g->n);
    if (!readers) return NULL;
    for (int i = 0; i < g->n; i++) readers[i] = 0;
    for (int i = 0; i <= g->output; i++)
        if (g->nodes[i].keep)
            for (int k = 0; k < g->nodes[i].n_in; k++) readers[g->nodes[i].in[k]]++;
    return readers;
}

/* readers[], a cleared fused[] and pad_from[] for the lean forward; false when out of memory. */
static bool lean_init(gf_ctx *ctx, const tj_graph *g, tj_mem *mm) {
    gf_arena *a = gf_ctx_arena(ctx);
    mm->readers = reader_counts(ctx, g);
    mm->fused = gf_arena_alloc(a, sizeof *mm->fused * (size_t)g->n);
    mm->pad_from = gf_arena_alloc(a, sizeof *mm->pad_from * (size_t)g->n);
    mm->slot = gf_arena_alloc(a, sizeof *mm->slot * (size_t)g->n);
    if (!mm->readers || !mm->fused || !mm->pad_from || !mm->slot) return false;
    for (int i = 0; i < g->n; i++) mm->fused[i] = false, mm->pad_from[i] = -1;
    return true;
}

/* last[] of the kept nodes up to the output; NULL with a context error. */
static int *last_readers(gf_ctx *ctx, const tj_graph *g) {
    int *last = gf_arena_alloc(gf_ctx_arena(ctx), sizeof *last * (size_t)g->n);
    if (!last) return NULL;
    for (int i = 0; i < g->n; i++) last[i] = -1;
    for (int i = 0; i <= g->output; i++)
        if (g->nodes[i].keep)
            for (int k = 0; k < g->nodes[i].n_in; k++) last[g->nodes[i].in[k]] = i;
    last[g->output] = g->n;
    return last;
}

/* x (node `from`'s output) may be overwritten by node i: allocated in this forward,
 * contiguous, read by no later node, and sharing no storage with an output still to be read. */
static bool writable(gf_ctx *ctx, const tj_mem *mm, gf_tensor **t, int from, int i) {
    const gf_tensor *x = t[from];
    if (!x || mm->last[from] != i || !gf_tensor_is_contiguous(x) || x->dtype != GF_F32 ||
        !gf_arena_since(gf_ctx_arena(ctx), mm->mark, x->data))
        return false;
    const char *lo = x->data, *hi = lo + sizeof(float) * (size_t)x->numel;
    for (int j = 0; j < i; j++) {
        const gf_tensor *u = t[j];
        if (!u || u == x || mm->last[j] <= i) continue;
        const char *a = u->data;
        if (a < hi && a + sizeof(float) * (size_t)u->numel > lo) return false;
    }
    return true;
}

/* A BatchNormalization's per-channel constants for gf_vec_bn_eval: mu, 1 / sqrt(var + eps),
 * w, b (gf_batch_norm's, in double); NULL when out of memory. */
static double *bn_constants(gf_ctx *ctx, gf_module *bn, float eps, int64_t c) {
    const gf_tensor *w = gf_module_tensor(NULL, bn, "weight"), *b = gf_module_tensor(NULL, bn, "bias");
    const gf_tensor *rm = gf_module_tensor(NULL, bn, "running_mean");
    const gf_tensor *rv = gf_module_tensor(NULL, bn, "running_var");
    double *k = gf_scratch(ctx, sizeof(double) * 4 * (size_t)c);
    if (!k || rm->numel < c || rv->numel < c) return NULL;
    for (int64_t ch = 0; ch < c; ch++) {
        k[4 * ch] = gf_get_f32(rm, ch);
        k[4 * ch + 1] = 1.0 / sqrt((double)gf_get_f32(rv, ch) + (double)eps);
        k[4 * ch + 2] = w ? gf_get_f32(w, ch) : 1.0;
        k[4 * ch + 3] = b ? gf_get_f32(b, ch) : 0.0;
    }
    return k;
}

/* gf_batch_norm's evaluation-mode expression, in place, then clamped to [lo, hi] (the
 * expression of the activation layer fused into it, or +-inf). */
static void bn_eval_inplace(gf_ctx *ctx, gf_module *bn, float eps, gf_tensor *x, float lo,
                            float hi) {
    const int64_t c = x->shape[1], s = x->shape[2] * x->shape[3], planes = x->shape[0] * c;
    const double *k = bn_constants(ctx, bn, eps, c);
    if (!k) return;
    float *px = gf_f32(x);
    const int level = gf_vec_level();
#pragma omp parallel for num_threads(gf_threads_for(ctx, x->numel)) schedule(static)
    for (int64_t r = 0; r < planes; r++) {
        const double *kc = k + 4 * (r % c);
        gf_vec_bn_eval(level, px + r * s, px + r * s, s, kc[0], kc[1], kc[2], kc[3], lo, hi);
    }
}

/* gf_clamp's (lo, hi) or gf_relu's expression, in place. */
static void clamp_inplace(gf_ctx *ctx, const tj_node *nd, gf_tensor *x) {
    float *p = gf_f32(x);
    const float a = nd->act_lo, b = nd->act_hi;
    const bool relu = nd->act == TJ_A_RELU;
#pragma omp parallel for num_threads(gf_threads_for(ctx, x->numel)) schedule(static)
    for (int64_t i = 0; i < x->numel; i++) {
        if (relu) {
            p[i] = p[i] < 0.0f ? 0.0f : p[i];
        } else {
            float v = p[i] < a ? a : p[i];
            p[i] = v > b ? b : v;
        }
    }
}

/* The ReLU or clamp layer that alone reads node i's output, or NULL. */
static const tj_node *sole_activation(const tj_graph *g, const int *readers, const int *last,
                                      int i) {
    const int j = last[i];
    if (readers[i] != 1 || j < 0 || j >= g->n || j == g->output) return NULL;
    const tj_node *a = &g->nodes[j];
    return a->kind == TJ_ACT && (a->act == TJ_A_CLAMP || a->act == TJ_A_RELU) && a->n_in == 1
               ? a
               : NULL;
}

/* The bounds a ReLU (0, inf) or clamp layer a applies; none (-inf, inf) for NULL. */
static void act_bounds(const tj_node *a, float *lo, float *hi) {
    const bool relu = a && a->act == TJ_A_RELU;
    *lo = !a ? -INFINITY : relu ? 0.0f : a->act_lo;
    *hi = !a || relu ? INFINITY : a->act_hi;
}

/* A ZeroPadding2D (node i, on x) whose output only a 'valid' convolution layer reads: that
 * layer's index, when the conv can apply the padding itself (gf_conv2d_padded: a Conv2d
 * without padding of its own whose kernel fits x), else -1. The padded copy, as large as the
 * layer's input, is then never made: at 224x224 it is the forward's largest tensor. */
static int pad_reader(gf_module *self, const tj_graph *g, const int *readers, const int *last,
                      const tj_node *nd, int i, const gf_tensor *x) {
    if (nd->kind != TJ_ZEROPAD || nd->n_in != 1 || readers[i] != 1 || !x || x->ndim != 4)
        return -1;
    for (int k = 0; k < 4; k++)
        if (nd->pad[k] < 0) return -1;
    const int j = last[i];
    if (j < 0 || j >= g->n || j == g->output) return -1;
    const tj_node *c = &g->nodes[j];
    if ((c->kind != TJ_CONV && c->kind != TJ_DWCONV) || c->same || c->n_in != 1) return -1;
    gf_module *m = gf_module_child(self, c->module);
    if (!m || strcmp(gf_module_type(m), "Conv2d") != 0) return -1;
    const gf_nn_affine a = gf_nn_affine_of(m);
    if (!a.weight || a.conv.padding[0] || a.conv.padding[1] ||
        x->shape[2] < (int64_t)(a.kh - 1) * a.conv.dilation[0] + 1 ||
        x->shape[3] < (int64_t)(a.kw - 1) * a.conv.dilation[1] + 1)
        return -1;
    return j;
}

/* Node i, a convolution layer that applies the padding of ZeroPadding2D node `from` itself. */
static gf_tensor *conv_padded(gf_ctx *ctx, gf_module *self, const tj_graph *g,
                              const tj_node *nd, gf_tensor *x, int from) {
    const tj_node *pn = &g->nodes[from];
    const int64_t pads[4] = {pn->pad[0], pn->pad[1], pn->pad[2], pn->pad[3]};
    const gf_nn_affine a = gf_nn_affine_of(gf_module_child(self, nd->module));
    return activate(ctx, nd, gf_conv2d_padded(ctx, x, a.weight, a.bias, &a.conv, pads));
}

/* The BatchNormalization module of node nd when it runs with fixed statistics (evaluation
 * mode, running statistics present), else NULL. */
static gf_module *eval_bn(gf_module *self, const tj_node *nd) {
    if (nd->kind != TJ_BN || nd->act != TJ_A_LINEAR || nd->n_in != 1) return NULL;
    gf_module *bn = gf_module_child(self, nd->module);
    if (!bn || gf_module_is_training(bn) || strcmp(gf_module_type(bn), "BatchNorm2d") != 0 ||
        !gf_module_tensor(NULL, bn, "running_mean") || !gf_module_tensor(NULL, bn, "running_var"))
        return NULL;
    return bn;
}

/* A convolution layer (linear, one conv2d) whose output only a BatchNormalization with fixed
 * statistics reads, and that maybe only a ReLU / clamp layer: node i runs with the conv
 * applying both to each output plane as it computes it (gf_conv_epilogue, bitwise the
 * separate passes), and those layers are marked to hand their input on. Else node i runs
 * plainly. Its output, or NULL with a context error. */
static gf_tensor *run_conv_fused(gf_ctx *ctx, gf_module *self, const tj_graph *g,
                                 const tj_node *nd, gf_tensor **t, tj_mem *mm, int i) {
    const int j = mm->last[i];
    gf_module *conv = (nd->kind == TJ_CONV || nd->kind == TJ_DWCONV) && nd->act == TJ_A_LINEAR
                          ? gf_module_child(self, nd->module)
                          : NULL;
    gf_module *bn = conv && strcmp(gf_module_type(conv), "Conv2d") == 0 && mm->readers[i] == 1 &&
                            j >= 0 && j < g->n && j != g->output
                        ? eval_bn(self, &g->nodes[j])
                        : NULL;
    const gf_tensor *w = conv ? gf_module_tensor(NULL, conv, "weight") : NULL;
    const double *k = bn && w && w->ndim == 4 ? bn_constants(ctx, bn, g->nodes[j].eps, w->shape[0])
                                              : NULL;
    const int from = mm->pad_from[i];
    if (!k) return from >= 0 ? conv_padded(ctx, self, g, nd, t[nd->in[0]], from)
                             : run_node(ctx, self, nd, t);
    const tj_node *act = sole_activation(g, mm->readers, mm->last, j);
    gf_conv_epilogue ep = {k, 0.0f, 0.0f, false};
    act_bounds(act, &ep.lo, &ep.hi);
    ctx->conv_epilogue = &ep;
    gf_tensor *y = from >= 0 ? conv_padded(ctx, self, g, nd, t[nd->in[0]], from)
                             : run_node(ctx, self, nd, t);
    ctx->conv_epilogue = NULL;
    if (y && ep.done) {
        mm->fused[j] = true;
        if (act) mm->fused[mm->last[j]] = true;
    }
    return y;
}

/* Node i in place on its input, when that is allowed (see above): its output, else NULL. A
 * BatchNormalization whose output only a ReLU / clamp layer reads applies that layer too
 * (relu is clamp to [0, inf]: the same comparisons), which then hands its input on. */
static gf_tensor *run_inplace(gf_ctx *ctx, gf_module *self, const tj_graph *g,
                              const tj_node *nd, gf_tensor **t, tj_mem *mm, int i) {
    if (nd->n_in == 1 && mm->fused[i]) return t[nd->in[0]];
    const int pj = nd->n_in == 1 ? pad_reader(self, g, mm->readers, mm->last, nd, i, t[nd->in[0]]) : -1;
    if (pj >= 0) { /* the convolution pads */
        mm->pad_from[pj] = i;
        return t[nd->in[0]];
    }
    if (nd->n_in != 1 || !writable(ctx, mm, t, nd->in[0], i)) return NULL;
    gf_tensor *x = t[nd->in[0]];
    if (nd->kind == TJ_ACT && (nd->act == TJ_A_CLAMP || nd->act == TJ_A_RELU)) {
        clamp_inplace(ctx, nd, x);
        return x;
    }
    gf_module *bn = x->ndim == 4 ? eval_bn(self, nd) : NULL;
    if (!bn) return NULL;
    const tj_node *act = sole_activation(g, mm->readers, mm->last, i);
    float lo, hi;
    act_bounds(act, &lo, &hi);
    bn_eval_inplace(ctx, bn, nd->eps, x, lo, hi);
    if (act) mm->fused[mm->last[i]] = true;
    return x;
}

/* Room for a tensor's header and alignment in the arena, next to its data. */
#define TJ_HEADER_ROOM ((size_t)4096)

/* Rewinds the arena to the forward's start and allocates the n live outputs anew there, each
 * copied from from[k] (which the new allocations must not overlap): the layer outputs that
 * were live[k] become the new tensors. Which t[j] is which live[k] is settled before the
 * rewind, since a new header may land where an old one was. false (context error) when an
 * allocation failed. */
static bool reallocate_live(gf_ctx *ctx, const tj_graph *g, gf_tensor **t, tj_mem *mm, int i,
                            gf_tensor *const *live, int n, const void *const *from) {
    int ndim[TJ_LIVE_MAX];
    int64_t shape[TJ_LIVE_MAX][GF_MAX_DIMS];
    for (int k = 0; k < n; k++) { /* the headers are in the space given back too */
        ndim[k] = live[k]->ndim;
        memcpy(shape[k], live[k]->shape, sizeof shape[k]);
    }
    for (int j = 0; j <= i && j < g->n; j++) {
        mm->slot[j] = -1;
        for (int k = 0; k < n; k++)
            if (t[j] == live[k]) mm->slot[j] = k;
    }
    gf_arena_rewind(gf_ctx_arena(ctx), mm->mark);
    gf_tensor *moved[TJ_LIVE_MAX];
    for (int k = 0; k < n; k++) {
        if (!(moved[k] = gf_empty(ctx, GF_F32, ndim[k], shape[k]))) return false;
        memcpy(moved[k]->data, from[k], sizeof(float) * (size_t)moved[k]->numel);
    }
    for (int j = 0; j <= i && j < g->n; j++)
        if (mm->slot[j] >= 0) t[j] = moved[mm->slot[j]];
    return true;
}

/* After node i: when the outputs still to be read are small next to what this forward holds,
 * moves them to the forward's start (see above): straight down when the arena can be rewound
 * without freeing a chunk and they all lie above the space their new headers and data take,
 * else through the context's carry buffer. Does nothing when that cannot be done. false
 * (context error) only when a moved output could not be reallocated. */
static bool compact(gf_ctx *ctx, const tj_graph *g, gf_tensor **t, tj_mem *mm, int i) {
    gf_arena *a = gf_ctx_arena(ctx);
    const size_t held = gf_arena_used(a) - mm->mark.used;
    gf_tensor *live[TJ_LIVE_MAX];
    const void *from[TJ_LIVE_MAX];
    int n = 0;
    size_t bytes = 0;
    if (held < TJ_REWIND_MIN) return true;
    for (int j = 0; j <= i && j < g->n; j++) {
        gf_tensor *u = t[j];
        if (!u || mm->last[j] <= i || !gf_arena_since(a, mm->mark, u->data)) continue;
        bool seen = false;
        for (int k = 0; k < n; k++) seen |= live[k] == u;
        if (seen) continue;
        if (n == TJ_LIVE_MAX || !gf_tensor_is_contiguous(u) || u->dtype != GF_F32) return true;
        live[n++] = u;
        bytes += sizeof(float) * (size_t)u->numel;
    }
    if (bytes * 4 > held) return true;
    const unsigned char *base = gf_arena_mark_addr(a, mm->mark), *low = NULL;
    for (int k = 0; k < n; k++) {
        from[k] = live[k]->data;
        if (!low || (const unsigned char *)from[k] < low) low = from[k];
    }
    if (base && low && low >= base && (size_t)(low - base) >= bytes + (size_t)n * TJ_HEADER_ROOM)
        return reallocate_live(ctx, g, t, mm, i, live, n, from);
    if (bytes > ctx->carry_cap) { /* the context's, reused by every forward */
        void *c = realloc(ctx->carry, bytes);
        if (!c) return true;
        ctx->carry = c, ctx->carry_cap = bytes;
    }
    size_t at = 0;
    for (int k = 0; k < n; k++) {
        memcpy((char *)ctx->carry + at, live[k]->data, sizeof(float) * (size_t)live[k]->numel);
        from[k] = (char *)ctx->carry + at;
        at += sizeof(float) * (size_t)live[k]->numel;
    }
    return reallocate_live(ctx, g, t, mm, i, live, n, from);
}

/* The input must have the file's rank and channel (or feature) count; heights and widths are
 * free (the layers check what they need). */
static bool check_input(gf_ctx *ctx, const tj_graph *g, const gf_tensor *x) {
    const tj_node *in = &g->nodes[g->input];
    const int64_t c = in->out[in->out_ndim - 1];
    bool ok = x->ndim == in->out_ndim + 1 && (x->ndim == 4 ? x->shape[1] == c
                                                            : x->shape[x->ndim - 1] == c);
    if (!ok) {
        char sx[96];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "TensorFlow.js model %s: expected an input %s with "
                         "%lld %s, got %s", g->model_name,
                         in->out_ndim == 3   ? "[N, C, H, W]"
                         : in->out_ndim == 2 ? "[N, T, F]"
                                             : "[N, F]",
                         (long long)c, in->out_ndim == 3 ? "channels" : "features",
                         gf_shape_str(x, sx, sizeof sx));
    }
    return ok;
}

/* ---- training: activations in place ---------------------------------------------------------
 * A recorded forward keeps every output its backward reads, but a ReLU or clamp layer whose
 * input is read by that layer alone need not keep the input: BatchNormalization's backward
 * reads its own input, not its output, and the recorded activation keeps a bit mask instead of
 * its input. So the layer overwrites its input (gf_relu_inplace / gf_clamp_inplace) when the
 * input's storage was allocated by its producer layer in this forward and no node recorded
 * since that layer started reads the values of anything overlapping it (gf_tape_spares, by
 * the ops' GF_BW_* flags): PyTorch's `ReLU6(inplace=True)`, decided from the graph. The numbers
 * are unchanged (the same kernels). Off with the context's memory rules (gf_ctx_set_inplace).
 *
 * Going further, such an activation's output need not be kept either when one layer reads
 * it: that reader's backward (a convolution's dW) can have it computed again from the
 * BatchNormalization's input and statistics, which the BatchNormalization's backward keeps
 * anyway. So a BatchNormalization (no activation of its own) read only by such a ReLU / ReLU6,
 * itself read by one later layer, writes its output into one buffer lent to all of them (the
 * loan, ctx->out_loan, grown to the largest); the activation runs in place over it, and its
 * node gets a callback (gf_node.recompute) that writes the values back, bitwise, before the
 * reader's backward. A step then holds one such tensor at a time instead of two per block.
 * The BatchNormalization also applies the activation itself, row by row right after
 * normalising it (gf_bn_act: the same kernels and bit mask, while the row is in cache), and
 * the activation is recorded over its output without another pass (gf_act_inplace_done). */

typedef struct tj_train_mem {
    int *readers, *last;     /* per node: its readers (reader_counts) and the last of them */
    const gf_node **since;   /* per node: the tape before it ran */
    gf_arena_mark *marks;    /* per node: the arena before it ran */
    float *loan;             /* the lent buffer, loan_cap floats (NULL: none yet) */
    int64_t loan_cap;
    int loan_reader;         /* the layer that reads what the loan holds now (-1: none) */
    int *pad_from;           /* per node: the ZeroPadding2D whose padding this convolution
                              * applies itself (gf_conv2d_padded, as the lean forward), or -1 */
    gf_bn_act *act;          /* the activation the lent BatchNormalization applies itself */
    int act_node;            /* that activation's node (-1: none) */
} tj_train_mem;

typedef struct tj_recompute {
    const gf_node *bn; /* the BatchNormalization whose output the activation overwrote */
    float lo, hi;      /* the activation's bounds */
} tj_recompute;

static void recompute_bn_act(gf_ctx *ctx, gf_node *n) {
    const tj_recompute *r = n->recompute_arg;
    gf_batch_norm_recompute(ctx, r->bn, gf_f32(n->out), r->lo, r->hi);
}

/* Whether BatchNormalization node b records (so its output can be computed again). */
static bool bn_records(gf_ctx *ctx, gf_module *self, const tj_node *nd, const gf_tensor *x) {
    gf_module *bn = gf_module_child(self, nd->module);
    const gf_tensor *w = gf_module_tensor(NULL, bn, "weight"), *b = gf_module_tensor(NULL, bn, "bias");
    return gf_ctx_grad_enabled(ctx) &&
           (x->requires_grad || (w && w->requires_grad) || (b && b->requires_grad));
}

/* Whether layer c, reading an activation of x's shape over a BatchNormalization's output,
 * computes that input plane by plane as it needs it (gf_deferred_act): a depthwise
 * convolution, or a pointwise one (1x1, stride 1) on two or more channels. */
static bool reads_planes(gf_module *self, const tj_node *c, const gf_tensor *x) {
    if (c->kind == TJ_DWCONV) return true;
    if (c->kind != TJ_CONV || x->ndim != 4 || x->shape[1] < 2) return false;
    gf_module *m = gf_module_child(self, c->module);
    if (!m || strcmp(gf_module_type(m), "Conv2d") != 0) return false;
    const gf_nn_affine a = gf_nn_affine_of(m);
    return a.weight && a.kh == 1 && a.kw == 1 && a.conv.stride[0] == 1 &&
           a.conv.stride[1] == 1 && !a.conv.padding[0] && !a.conv.padding[1];
}

/* Before node b runs: lends it the buffer when the rule above allows (node b a
 * BatchNormalization read only by activation i, i read by one layer run in this forward, and
 * what the loan holds already read); false when out of memory. */
static bool lend(gf_ctx *ctx, gf_module *self, const tj_graph *g, gf_tensor **t,
                 tj_train_mem *tm, int b, int last) {
    const tj_node *nd = &g->nodes[b];
    if (nd->kind != TJ_BN || nd->act != TJ_A_LINEAR || nd->n_in != 1) return true;
    const tj_node *a = sole_activation(g, tm->readers, tm->last, b);
    const int i = tm->last[b];
    const gf_tensor *x = t[nd->in[0]];
    if (!a || i >= last || tm->readers[i] != 1 || tm->loan_reader >= b || !x ||
        !bn_records(ctx, self, nd, x))
        return true;
    int r = tm->last[i]; /* the activation's reader; past a padding the conv applies, the conv */
    const int pad = r >= 0 && r < g->n && g->nodes[r].kind == TJ_ZEROPAD ? r : -1;
    if (pad >= 0 && tm->readers[pad] == 1) r = tm->last[pad];
    if (r < 0 || r > last) return true;
    /* a convolution that computes each plane itself reads it (directly, or through a padding
     * it applies) */
    const bool defer = reads_planes(self, &g->nodes[r], x) &&
                       (pad < 0 || pad_reader(self, g, tm->readers, tm->last, &g->nodes[pad],
                                              pad, x) == r);
    if (x->numel > tm->loan_cap) {
        if (!(tm->loan = gf_scratch_f32(ctx, x->numel))) return false;
        tm->loan_cap = x->numel;
    }
    ctx->out_loan = tm->loan;
    ctx->out_loan_bytes = sizeof(float) * (size_t)x->numel;
    tm->loan_reader = r;
    /* the activation too, row by row while each is in cache, keeping its bit mask */
    *tm->act = (gf_bn_act){a->act == TJ_A_RELU, 0.0f, 0.0f,
                           gf_scratch(ctx, (size_t)((x->numel + 7) / 8)), false, defer};
    act_bounds(a, &tm->act->lo, &tm->act->hi);
    if (!tm->act->mask) return false;
    ctx->bn_act = tm->act;
    tm->act_node = i;
    return true;
}

/* z, activation node nd run in place over y, a BatchNormalization's lent output: z's node
 * learns to compute z again; NULL when out of memory. */
static gf_tensor *recomputable(gf_ctx *ctx, const tj_node *nd, gf_tensor *y, gf_tensor *z) {
    if (!z || !z->node) { /* not recorded: nothing can recompute it, so a copy of its own */
        gf_tensor *c = z ? gf_empty(ctx, GF_F32, z->ndim, z->shape) : NULL;
        if (c) memcpy(c->data, z->data, sizeof(float) * (size_t)z->numel);
        return c;
    }
    tj_recompute *r = gf_arena_alloc(gf_ctx_arena(ctx), sizeof *r);
    if (!r) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "TensorFlow.js model: out of memory");
        return NULL;
    }
    r->bn = y->node;
    act_bounds(nd, &r->lo, &r->hi);
    z->node->recompute = recompute_bn_act;
    z->node->recompute_arg = r;
    return z;
}

static bool train_mem_init(gf_ctx *ctx, const tj_graph *g, tj_train_mem *tm) {
    gf_arena *a = gf_ctx_arena(ctx);
    tm->last = last_readers(ctx, g);
    tm->readers = reader_counts(ctx, g);
    tm->since = gf_arena_alloc(a, sizeof *tm->since * (size_t)g->n);
    tm->marks = gf_arena_alloc(a, sizeof *tm->marks * (size_t)g->n);
    tm->pad_from = gf_arena_alloc(a, sizeof *tm->pad_from * (size_t)g->n);
    tm->act = gf_arena_alloc(a, sizeof *tm->act);
    if (!tm->last || !tm->readers || !tm->since || !tm->marks || !tm->pad_from || !tm->act)
        return false;
    for (int i = 0; i < g->n; i++) tm->pad_from[i] = -1;
    return true;
}

/* Node i when the training forward pads inside a convolution: a ZeroPadding2D that a conv
 * will apply itself hands its input on, and that conv pads (pad_reader, as the lean forward:
 * the padded copy, the largest tensor of a stride-2 block, is never made). Else NULL. */
static gf_tensor *train_padded(gf_ctx *ctx, gf_module *self, const tj_graph *g,
                               const tj_node *nd, gf_tensor **t, tj_train_mem *tm, int i) {
    if (tm->pad_from[i] >= 0) return conv_padded(ctx, self, g, nd, t[nd->in[0]], tm->pad_from[i]);
    const int j = nd->n_in == 1 ? pad_reader(self, g, tm->readers, tm->last, nd, i, t[nd->in[0]]) : -1;
    if (j < 0) return NULL;
    tm->pad_from[j] = i;
    return t[nd->in[0]];
}

/* Node i (a ReLU or clamp layer) run over its input when that is allowed (above), else NULL. */
static gf_tensor *train_inplace(gf_ctx *ctx, const tj_graph *g, const tj_node *nd,
                                gf_tensor **t, const tj_train_mem *tm, int i) {
    if (nd->kind != TJ_ACT || (nd->act != TJ_A_CLAMP && nd->act != TJ_A_RELU) || nd->n_in != 1)
        return NULL;
    const int from = nd->in[0];
    gf_tensor *x = t[from];
    const bool lent = x && x->node && x->node->out_borrowed;
    if (from == g->input || !x || x->persistent || x->dtype != GF_F32 || !x->requires_grad ||
        tm->readers[from] != 1 || tm->last[from] != i || !gf_tensor_is_contiguous(x) ||
        (!lent && !gf_arena_since(gf_ctx_arena(ctx), tm->marks[from], x->data)) ||
        !gf_tape_spares(ctx, x, tm->since[from]))
        return NULL;
    gf_tensor *z = nd->act == TJ_A_RELU ? gf_relu_inplace(ctx, x)
                                        : gf_clamp_inplace(ctx, x, nd->act_lo, nd->act_hi);
    return lent ? recomputable(ctx, nd, x, z) : z;
}

/* Node i, the activation a lent BatchNormalization already applied (tm->act): recorded over
 * its output without another pass. Else NULL. */
static gf_tensor *train_act_done(gf_ctx *ctx, const tj_node *nd, gf_tensor **t,
                                 tj_train_mem *tm, int i) {
    if (i != tm->act_node || !tm->act->done) return NULL;
    tm->act_node = -1;
    gf_tensor *x = t[nd->in[0]];
    const gf_bn_act *a = tm->act;
    gf_tensor *z = gf_act_inplace_done(ctx, x, a->relu, a->lo, a->hi, a->mask);
    if (!a->defer || !z) return recomputable(ctx, nd, x, z);
    /* never stored: its reader computes its planes (lend() made sure both record) */
    gf_deferred_act *d = gf_arena_alloc(gf_ctx_arena(ctx), sizeof *d);
    if (!d || !z->node || !x->node) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "TensorFlow.js model: out of memory");
        return NULL;
    }
    *d = (gf_deferred_act){x->node, *a};
    z->node->deferred = d;
    return z;
}

/* Node i in the training forward: the activation a lent BatchNormalization applied, an
 * activation in place, or a padding its convolution applies (above); NULL when none applies or
 * on error. */
static gf_tensor *run_train(gf_ctx *ctx, gf_module *self, const tj_graph *g, const tj_node *nd,
                            gf_tensor **t, tj_train_mem *tm, int i) {
    gf_tensor *y = train_act_done(ctx, nd, t, tm, i);
    if (!y && ctx->status == GF_OK) y = train_inplace(ctx, g, nd, t, tm, i);
    if (!y && ctx->status == GF_OK) y = train_padded(ctx, self, g, nd, t, tm, i);
    return y;
}

/* Runs the kept layers up to node `last` on x; the outputs of every layer in a new arena array
 * (NULL for those not run), or NULL with a context error. */
static gf_tensor **run_graph(gf_ctx *ctx, gf_module *self, const tj_graph *g, gf_tensor *x,
                             int last, bool rewind) {
    if (!check_input(ctx, g, x)) return NULL;
    gf_tensor **t = gf_arena_alloc(gf_ctx_arena(ctx), sizeof *t * (size_t)g->n);
    if (!t) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "TensorFlow.js model: out of memory");
        return NULL;
    }
    for (int i = 0; i < g->n; i++) t[i] = NULL;
    t[g->input] = x;
    /* inference without a graph: in-place layers and rewinds (see above), unless the caller
     * wants the intermediate outputs */
    tj_mem mm = {0};
    const bool lean = rewind && !gf_ctx_grad_enabled(ctx) && !gf_module_is_training(self);
    if (lean && (!(mm.last = last_readers(ctx, g)) || !lean_init(ctx, g, &mm))) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "TensorFlow.js model: out of memory");
        return NULL;
    }
    tj_train_mem tm = {.loan_reader = -1, .act_node = -1};
    const bool train = rewind && ctx->inplace && gf_ctx_grad_enabled(ctx);
    if (train && !train_mem_init(ctx, g, &tm)) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "TensorFlow.js model: out of memory");
        return NULL;
    }
    mm.mark = gf_arena_get_mark(gf_ctx_arena(ctx));
    for (int i = 0; i <= last; i++) {
        const tj_node *nd = &g->nodes[i];
        if (!nd->keep || i == g->input) continue;
        if (train) {
            tm.since[i] = ctx->tape, tm.marks[i] = gf_arena_get_mark(gf_ctx_arena(ctx));
            if (!lend(ctx, self, g, t, &tm, i, last)) return NULL;
        }
        t[i] = lean    ? run_inplace(ctx, self, g, nd, t, &mm, i)
               : train ? run_train(ctx, self, g, nd, t, &tm, i) : NULL;
        if (!t[i] && ctx->status == GF_OK)
            t[i] = lean ? run_conv_fused(ctx, self, g, nd, t, &mm, i) : run_node(ctx, self, nd, t);
        ctx->out_loan = NULL; /* a loan the node did not take is not for the next one */
        ctx->bn_act = NULL;
        if (!t[i]) {
            if (gf_ctx_status(ctx) != GF_OK)
                gf_ctx_prefix_error(ctx, "layer %s (%s): ", nd->name, nd->cls);
            return NULL;
        }
        if (lean && i < last && !compact(ctx, g, t, &mm, i)) return NULL;
    }
    return t;
}

gf_tensor *tj_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    const tj_graph *g = user;
    const gf_node *before = ctx->tape;
    gf_tensor **t = run_graph(ctx, self, g, x, g->output, true);
    gf_tensor *y = t ? t[g->output] : NULL;
    if (y) gf_tape_mark_private(ctx, before, y);
    return y;
}

const tj_graph *tj_graph_of(gf_ctx *ctx, const gf_module *m, const char *op) {
    if (!m || strcmp(gf_module_type(m), "TFJSModel") != 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s is not a TensorFlow.js import (%s)", op,
                         m ? "the module" : "NULL", m ? gf_module_type(m) : "no module");
        return NULL;
    }
    return gf_module_user(m);
}

gf_status gf_tfjs_forward_layers(gf_ctx *ctx, gf_module *m, gf_tensor *x,
                                 const char *const *names, int n, gf_tensor **outs) {
    const char *op = "TensorFlow.js forward to layers";
    const tj_graph *g = tj_graph_of(ctx, m, op);
    if (!g) return gf_ctx_status(ctx);
    if (!x || !outs || (n > 0 && !names) || n < 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s", op,
                                !x ? "input is NULL" : "no layer names or outputs");
    int last = g->input;
    for (int k = 0; k < n; k++) {
        int i = names[k] ? tj_graph_find(g, names[k]) : -1;
        if (i < 0 || !g->nodes[i].keep)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s \"%s\"%s (the module ends at "
                                    "%s; graft inspect lists the layers)", op,
                                    i < 0 ? "no layer" : "layer", names[k] ? names[k] : "(null)",
                                    i < 0 ? " in the model" : " is not on the path to its output",
                                    g->nodes[g->output].name);
        if (i > last) last = i;
    }
    gf_tensor **t = run_graph(ctx, m, g, x, last, false);
    if (!t) return gf_ctx_status(ctx) != GF_OK ? gf_ctx_status(ctx) : GF_ERR_INVALID;
    for (int k = 0; k < n; k++) outs[k] = t[tj_graph_find(g, names[k])];
    return GF_OK;
}
