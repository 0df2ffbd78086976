/* Max and average pooling over 1, 2 or 3 spatial axes with ONNX's full geometry: pads that
 * differ at the two ends of an axis, dilation, ceil mode and count_include_pad. gf_max_pool2d /
 * gf_avg_pool2d (pool.c) are faster for PyTorch's symmetric 2-D case; these cover the rest.
 * Everything runs as 3-D, missing axes being of size 1. Max pooling ignores padding and keeps
 * each output's argmax for the backward (and for ONNX's Indices output); average pooling
 * divides by the window's elements inside the input, or, with count_include_pad, inside the
 * padded input. */
#include "core/internal.h"
#include "graft/ops.h"

#include <math.h>

typedef struct {
    int64_t planes;              /* N * C */
    int64_t in[3], out[3];       /* spatial sizes (missing axes 1) */
    int64_t k[3], s[3], d[3], pb[3], pe[3];
    bool include_pad;
    int64_t *arg;                /* max: per output, the input offset in its plane (-1: none) */
} pnd_geom;

/* Ceil mode drops a last window that would start in the end padding (PyTorch's rule, which ONNX
 * Runtime follows): every window holds at least one input element. */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe,
                        bool ceil_mode) {
    int64_t span = in + pb + pe - (d * (k - 1) + 1);
    if (span < 0) return 0;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + pb) out--;
    return out;
}

static bool pnd_setup(gf_ctx *ctx, const char *op, const gf_tensor *x, const gf_pool_nd_params *p,
                      pnd_geom *g) {
    if (!gf_check_tensor(ctx, op, "input", x, GF_F32)) return false;
    char sx[GF_SHAPE_BUF];
    gf_shape_str(x, sx, sizeof sx);
    if (!p || p->n_spatial < 1 || p->n_spatial > 3 || x->ndim != p->n_spatial + 2) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: expected [N, C] and %d spatial axes, got input %s",
                         op, p ? p->n_spatial : 0, sx);
        return false;
    }
    memset(g, 0, sizeof *g);
    g->planes = x->shape[0] * x->shape[1];
    g->include_pad = p->count_include_pad;
    for (int i = 0; i < 3; i++) {
        g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
    }
    for (int i = 0; i < p->n_spatial; i++) {
        int j = 3 - p->n_spatial + i;
        g->in[j] = x->shape[2 + i];
        g->k[j] = p->kernel[i], g->s[j] = p->stride[i], g->d[j] = p->dilation[i];
        g->pb[j] = p->pad_begin[i], g->pe[j] = p->pad_end[i];
        if (g->k[j] < 1 || g->s[j] < 1 || g->d[j] < 1 || g->pb[j] < 0 || g->pe[j] < 0) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: axis %d: kernel %lld, stride %lld and "
                             "dilation %lld must be >= 1 and pads %lld, %lld >= 0 (input %s)", op,
                             i, (long long)g->k[j], (long long)g->s[j], (long long)g->d[j],
                             (long long)g->pb[j], (long long)g->pe[j], sx);
            return false;
        }
        g->out[j] = out_size(g->in[j], g->k[j], g->s[j], g->d[j], g->pb[j], g->pe[j], p->ceil_mode);
        if (g->out[j] < 1) {
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: axis %d of input %s is too small for kernel "
                             "%lld with dilation %lld and pads %lld, %lld", op, i, sx,
                             (long long)g->k[j], (long long)g->d[j], (long long)g->pb[j],
                             (long long)g->pe[j]);
            return false;
        }
    }
    return true;
}

static gf_tensor *pnd_output(gf_ctx *ctx, const gf_tensor *x, const gf_pool_nd_params *p,
                             const pnd_geom *g) {
    int64_t shape[5] = {x->shape[0], x->shape[1]};
    for (int i = 0; i < p->n_spatial; i++) shape[2 + i] = g->out[3 - p->n_spatial + i];
    return gf_empty(ctx, GF_F32, x->ndim, shape);
}

/* The window of output position o along axis a: first tap, taps inside the input [lo, hi)
 * (as tap numbers) and, for count_include_pad, taps inside the padded input. */
static void window(const pnd_geom *g, int a, int64_t o, int64_t *start, int64_t *lo, int64_t *hi,
                   int64_t *padded) {
    int64_t st = o * g->s[a] - g->pb[a];
    int64_t t0 = 0, t1 = g->k[a];
    while (t0 < t1 && st + t0 * g->d[a] < 0) t0++;
    while (t1 > t0 && st + (t1 - 1) * g->d[a] >= g->in[a]) t1--;
    int64_t p1 = g->k[a];
    while (p1 > 0 && st + (p1 - 1) * g->d[a] >= g->in[a] + g->pe[a]) p1--;
    *start = st, *lo = t0, *hi = t1, *padded = p1;
}

/* Runs one pooling pass over all outputs. max: writes the argmax; bw: scatters g instead. */
static void pnd_run(gf_ctx *ctx, const pnd_geom *g, bool is_max, bool bw, const float *src,
                    float *dst) {
    const int64_t isz = g->in[0] * g->in[1] * g->in[2], osz = g->out[0] * g->out[1] * g->out[2];
#pragma omp parallel for num_threads(                                                              \
    gf_threads_for(ctx, g->planes *osz * g->k[0] * g->k[1] * g->k[2])) schedule(static)
    for (int64_t pl = 0; pl < g->planes; pl++) {
        const float *xp = bw ? NULL : src + pl * isz;
        float *gp = bw ? dst + pl * isz : NULL;
        for (int64_t oi = 0; oi < osz; oi++) {
            int64_t o[3] = {oi / (g->out[1] * g->out[2]), (oi / g->out[2]) % g->out[1],
                            oi % g->out[2]};
            int64_t st[3], lo[3], hi[3], pd[3];
            for (int a = 0; a < 3; a++) window(g, a, o[a], &st[a], &lo[a], &hi[a], &pd[a]);
            const int64_t k = pl * osz + oi;
            if (is_max && bw) {
                if (g->arg[k] >= 0) gp[g->arg[k]] += src[k];
                continue;
            }
            int64_t count = g->include_pad ? pd[0] * pd[1] * pd[2]
                                           : (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]);
            float best = -INFINITY, acc = 0.0f, share = bw && count ? src[k] / (float)count : 0.0f;
            int64_t arg = -1;
            for (int64_t t0 = lo[0]; t0 < hi[0]; t0++)
                for (int64_t t1 = lo[1]; t1 < hi[1]; t1++)
                    for (int64_t t2 = lo[2]; t2 < hi[2]; t2++) {
                        int64_t off = ((st[0] + t0 * g->d[0]) * g->in[1] + st[1] + t1 * g->d[1]) *
                                          g->in[2] + st[2] + t2 * g->d[2];
                        if (bw) gp[off] += share;
                        else if (!is_max) acc += xp[off];
                        else if (arg < 0 || xp[off] > best || (isnan(xp[off]) && !isnan(best)))
                            best = xp[off], arg = off; /* NaN wins, as torch's max pooling */
                    }
            if (bw) continue;
            if (is_max) {
                dst[k] = best;
                g->arg[k] = arg;
            } else {
                dst[k] = count ? acc / (float)count : 0.0f;
            }
        }
    }
}

static gf_tensor *pool_nd(gf_ctx *ctx, gf_tensor *x, const gf_pool_nd_params *p, bool is_max,
                          gf_tensor **indices) {
    const char *op = is_max ? "max_pool_nd" : "avg_pool_nd";
    pnd_geom g;
    if (!pnd_setup(ctx, op, x, p, &g)) return NULL;
    gf_tensor *out = pnd_output(ctx, x, p, &g);
    const float *px = out ? gf_contig_f32(ctx, x) : NULL;
    if (!px) return NULL;
    if (is_max && !(g.arg = gf_scratch(ctx, sizeof(int64_t) * (size_t)(out->numel + 1))))
        return NULL;
    pnd_run(ctx, &g, is_max, false, px, gf_f32(out));
    if (indices) {
        *indices = gf_empty(ctx, GF_I64, out->ndim, out->shape);
        if (!*indices) return NULL;
        const int64_t osz = out->numel / (g.planes ? g.planes : 1);
        const int64_t isz = g.in[0] * g.in[1] * g.in[2];
        for (int64_t k = 0; k < out->numel; k++)
            gf_i64(*indices)[k] = g.arg[k] < 0 ? -1 : (k / osz) * isz + g.arg[k];
    }
    if (gf_wants_grad(ctx, &x, 1)) {
        gf_node *n =
            gf_record(ctx, is_max ? GF_OP_MAX_POOL_ND : GF_OP_AVG_POOL_ND, out, &x, 1, sizeof g);
        if (!n) return NULL;
        *(pnd_geom *)n->saved = g;
    }
    return out;
}

gf_tensor *gf_max_pool_nd(gf_ctx *ctx, gf_tensor *x, const gf_pool_nd_params *p,
                          gf_tensor **indices) {
    return pool_nd(ctx, x, p, true, indices);
}

gf_tensor *gf_avg_pool_nd(gf_ctx *ctx, gf_tensor *x, const gf_pool_nd_params *p) {
    return pool_nd(ctx, x, p, false, NULL);
}

static void bw_pool_nd(gf_ctx *ctx, gf_node *n, bool is_max) {
    float *gx = gf_grad_of(ctx, n->in[0]);
    if (!gx) return;
    pnd_run(ctx, n->saved, is_max, true, gf_f32(n->out->grad), gx);
}

void gf_bw_max_pool_nd(gf_ctx *ctx, gf_node *n) { bw_pool_nd(ctx, n, true); }
void gf_bw_avg_pool_nd(gf_ctx *ctx, gf_node *n) { bw_pool_nd(ctx, n, false); }
