/* Reductions: sum, mean, amax-style max over any set of axes (keepdim as in PyTorch), and
 * argmax along one axis. Forward and backward of each op live here. */
#include "core/internal.h"
#include "graft/ops.h"

#include <math.h>

/* ---- reduction plan ----------------------------------------------------------------------
 * The contiguous input's dimensions, with size-1 dimensions dropped and neighbours of the same
 * kind (kept / reduced) merged, become groups. A trailing kept group of `inner` elements is
 * contiguous in both input and output, so work runs in units of (outer position o, tile of up
 * to RED_LANES of those inner elements): each unit owns its outputs and walks its reduced
 * elements in row-major order, the same order in every run. Output element of (o, lane j):
 * o * inner + j0 + j; the last reduced group is walked with its own loop. */

enum { RED_LANES = 256 };

typedef struct {
    int nk, nr;                                        /* outer kept / reduced groups */
    int64_t ksize[GF_MAX_DIMS], kstride[GF_MAX_DIMS];  /* strides in input elements */
    int64_t rsize[GF_MAX_DIMS], rstride[GF_MAX_DIMS];  /* nr >= 1 (a size-1 group if none) */
    int64_t inner;                                     /* trailing kept elements */
    int64_t n_outer, n_red;                            /* outer positions; reduced per output */
    int64_t tiles;                                     /* lane tiles per outer position */
    double scale;                                      /* mean: 1 / n_red; else 1 */
} red_plan;

/* Where the idx-th (row-major) combination of n groups starts in the input. */
static int64_t group_offset(int n, const int64_t *size, const int64_t *stride, int64_t idx) {
    int64_t off = 0;
    for (int d = n - 1; d >= 0; d--) {
        off += (idx % size[d]) * stride[d];
        idx /= size[d];
    }
    return off;
}

static void plan_reduce(int ndim, const int64_t *shape, const bool *red, red_plan *p) {
    int64_t gsize[GF_MAX_DIMS], gstride[GF_MAX_DIMS];
    bool gred[GF_MAX_DIMS];
    int ng = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) continue;
        if (ng && gred[ng - 1] == red[d]) gsize[ng - 1] *= shape[d];
        else {
            gsize[ng] = shape[d];
            gred[ng++] = red[d];
        }
    }
    int64_t st = 1;
    for (int g = ng - 1; g >= 0; g--) {
        gstride[g] = st;
        st *= gsize[g];
    }
    memset(p, 0, sizeof *p);
    p->inner = 1;
    if (ng && !gred[ng - 1]) p->inner = gsize[--ng];
    p->n_outer = p->n_red = 1;
    for (int g = 0; g < ng; g++) {
        if (gred[g]) {
            p->rsize[p->nr] = gsize[g];
            p->rstride[p->nr++] = gstride[g];
            p->n_red *= gsize[g];
        } else {
            p->ksize[p->nk] = gsize[g];
            p->kstride[p->nk++] = gstride[g];
            p->n_outer *= gsize[g];
        }
    }
    if (p->nr == 0) {
        p->rsize[0] = 1;
        p->rstride[0] = 0;
        p->nr = 1;
    }
    p->tiles = (p->inner + RED_LANES - 1) / RED_LANES;
    p->scale = 1.0f;
}

/* One unit of work: input offset of its first lane, output offset, lane count. */
typedef struct {
    int64_t in, out, w;
} red_unit;

static red_unit unit_at(const red_plan *p, int64_t u) {
    int64_t o = u / p->tiles, j0 = (u % p->tiles) * RED_LANES;
    red_unit q = {group_offset(p->nk, p->ksize, p->kstride, o) + j0, o * p->inner + j0,
                  p->inner - j0 < RED_LANES ? p->inner - j0 : RED_LANES};
    return q;
}

/* Runs the statements (...) for each run of unit q's reduced elements, with `at` the input
 * offset of the run's first element; a run is one pass over the last reduced group. */
#define RED_RUNS(p, q, ...)                                                                 \
    do {                                                                                    \
        const int last_ = (p)->nr - 1;                                                      \
        for (int64_t r_ = 0; r_ < (p)->n_red / (p)->rsize[last_]; r_++) {                   \
            const int64_t at = (q).in + group_offset(last_, (p)->rsize, (p)->rstride, r_);  \
            __VA_ARGS__;                                                                    \
        }                                                                                   \
    } while (0)

/* Runs the statements (...) for every input element xi reduced into lane j (0 <= j < q.w)
 * of unit q. */
#define RED_WALK(p, q, ...)                                                                 \
    RED_RUNS(p, q, const int64_t rl_ = (p)->rsize[last_], rs_ = (p)->rstride[last_];      \
             for (int64_t t_ = 0; t_ < rl_; t_++)                                           \
                 for (int64_t j = 0; j < (q).w; j++) {                                      \
                     const int64_t xi = at + t_ * rs_ + j;                                  \
                     __VA_ARGS__;                                                           \
                 })

/* Sum and max of a contiguous run (the inner == 1 case: the last reduced group then has
 * stride 1, or is the single size-1 group). Eight interleaved partial results keep the
 * order fixed and let the loop vectorise. */
static double run_sum(const float *x, int64_t n) {
    double part[8] = {0}, s = 0.0;
    int64_t t = 0;
    for (; t + 8 <= n; t += 8)
        for (int k = 0; k < 8; k++) part[k] += x[t + k];
    for (; t < n; t++) s += x[t];
    for (int k = 0; k < 8; k++) s += part[k];
    return s;
}

/* NaN wins, as in torch.amax. */
static inline float max_nan(float m, float v) { return (v > m || v != v) ? v : m; }

static float run_max(const float *x, int64_t n, float m) {
    float part[8];
    int64_t t = 0;
    for (int k = 0; k < 8; k++) part[k] = m;
    for (; t + 8 <= n; t += 8)
        for (int k = 0; k < 8; k++) part[k] = max_nan(part[k], x[t + k]);
    for (; t < n; t++) m = max_nan(m, x[t]);
    for (int k = 0; k < 8; k++) m = max_nan(m, part[k]);
    return m;
}

/* for each unit u of plan p, split statically over `nt` threads (a variable in scope). */
#define RED_UNITS(p, u)                                                                     \
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                           \
    for (int64_t u = 0; u < (p)->n_outer * (p)->tiles; u++)

/* y = scale * sum (accumulated in double), or y = max. */
static void reduce_kernel(gf_ctx *ctx, const red_plan *p, bool is_max, const float *x,
                          float *y) {
    int nt = gf_threads_for(ctx, p->n_outer * p->inner * p->n_red);
    const int64_t rl = p->rsize[p->nr - 1];
    const double scale = is_max ? 1.0 : p->scale;
    RED_UNITS(p, u) {
        red_unit q = unit_at(p, u);
        double acc[RED_LANES]; /* a max holds float values exactly */
        for (int64_t j = 0; j < q.w; j++) acc[j] = is_max ? -INFINITY : 0.0;
        if (p->inner == 1 && is_max) RED_RUNS(p, q, acc[0] = run_max(x + at, rl, (float)acc[0]));
        else if (p->inner == 1) RED_RUNS(p, q, acc[0] += run_sum(x + at, rl));
        else if (is_max) RED_WALK(p, q, acc[j] = max_nan((float)acc[j], x[xi]));
        else RED_WALK(p, q, acc[j] += x[xi]);
        for (int64_t j = 0; j < q.w; j++) y[q.out + j] = (float)(acc[j] * scale);
    }
}

/* ---- argument checks and output shapes -------------------------------------------------- */

/* Marks the reduced axes in red[] (all when n_axes == 0) and writes the output shape.
 * A 0-d tensor takes axis 0 or -1, as in PyTorch. */
static bool reduce_axes(gf_ctx *ctx, const char *op, const gf_tensor *x, const int *axes,
                        int n_axes, bool keepdim, bool *red, int *out_nd, int64_t *out_shape) {
    char sx[GF_SHAPE_BUF];
    if (!gf_check_tensor(ctx, op, "input", x, GF_F32)) return false;
    if (n_axes < 0 || n_axes > GF_MAX_DIMS || (n_axes > 0 && !axes)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: invalid axis list (%d axes) for input %s", op,
                         n_axes, gf_shape_str(x, sx, sizeof sx));
        return false;
    }
    int rank = x->ndim ? x->ndim : 1;
    for (int d = 0; d < GF_MAX_DIMS; d++) red[d] = n_axes == 0;
    for (int i = 0; i < n_axes; i++) {
        int a = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (a < 0 || a >= rank || red[a]) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: axis %d %s for input %s", op, axes[i],
                             a < 0 || a >= rank ? "is out of range" : "appears twice",
                             gf_shape_str(x, sx, sizeof sx));
            return false;
        }
        red[a] = true;
    }
    *out_nd = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (!red[d]) out_shape[(*out_nd)++] = x->shape[d];
        else if (keepdim) out_shape[(*out_nd)++] = 1;
    }
    return true;
}

/* An empty reduced axis: sum gives 0, mean NaN; max and argmax have no answer. */
static bool reduces_empty(const gf_tensor *x, const bool *red) {
    for (int d = 0; d < x->ndim; d++)
        if (red[d] && x->shape[d] == 0) return true;
    return false;
}

typedef enum { R_SUM, R_MEAN, R_MAX } red_kind;

static gf_tensor *reduce(gf_ctx *ctx, red_kind k, gf_tensor *x, const int *axes, int n_axes,
                         bool keepdim) {
    static const char *const names[] = {"sum", "mean", "max"};
    static const gf_op ops[] = {GF_OP_SUM, GF_OP_MEAN, GF_OP_MAX};
    bool red[GF_MAX_DIMS];
    int nd;
    int64_t shape[GF_MAX_DIMS];
    if (!reduce_axes(ctx, names[k], x, axes, n_axes, keepdim, red, &nd, shape)) return NULL;
    if (k == R_MAX && reduces_empty(x, red)) {
        char sx[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "max: cannot reduce over an empty axis of input %s",
                         gf_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    gf_tensor *out = gf_empty(ctx, GF_F32, nd, shape);
    if (!out) return NULL;
    red_plan p;
    plan_reduce(x->ndim, x->shape, red, &p);
    if (k == R_MEAN) p.scale = 1.0 / (double)p.n_red;
    if (x->numel == 0) {
        for (int64_t i = 0; i < out->numel; i++) gf_f32(out)[i] = k == R_SUM ? 0.0f : NAN;
    } else {
        const float *px = gf_contig_f32(ctx, x);
        if (!px) return NULL;
        reduce_kernel(ctx, &p, k == R_MAX, px, gf_f32(out));
    }
    if (gf_wants_grad(ctx, &x, 1)) {
        gf_node *node = gf_record(ctx, ops[k], out, &x, 1, sizeof p);
        if (!node) return NULL;
        *(red_plan *)node->saved = p;
    }
    return out;
}

gf_tensor *gf_sum(gf_ctx *ctx, gf_tensor *x, const int *axes, int n_axes, bool keepdim) {
    return reduce(ctx, R_SUM, x, axes, n_axes, keepdim);
}
gf_tensor *gf_mean(gf_ctx *ctx, gf_tensor *x, const int *axes, int n_axes, bool keepdim) {
    return reduce(ctx, R_MEAN, x, axes, n_axes, keepdim);
}
gf_tensor *gf_max(gf_ctx *ctx, gf_tensor *x, const int *axes, int n_axes, bool keepdim) {
    return reduce(ctx, R_MAX, x, axes, n_axes, keepdim);
}

/* ---- backward ------------------------------------------------------------------------------
 * sum/mean: every reduced element gets scale * g of its output. max (torch.amax): the
 * gradient is split equally between the elements equal to the maximum, g / count. */

static void sum_backward(gf_ctx *ctx, gf_node *n) {
    float *gx = gf_grad_of(ctx, n->in[0]);
    if (!gx || n->in[0]->numel == 0) return;
    const red_plan *p = n->saved;
    const float *g = gf_f32(n->out->grad);
    const float scale = (float)p->scale;
    int nt = gf_threads_for(ctx, n->in[0]->numel);
    RED_UNITS(p, u) {
        red_unit q = unit_at(p, u);
        RED_WALK(p, q, gx[xi] += g[q.out + j] * scale);
    }
}
void gf_bw_sum(gf_ctx *ctx, gf_node *n) { sum_backward(ctx, n); }
void gf_bw_mean(gf_ctx *ctx, gf_node *n) { sum_backward(ctx, n); }

void gf_bw_max(gf_ctx *ctx, gf_node *n) {
    float *gx = gf_grad_of(ctx, n->in[0]);
    if (!gx || n->in[0]->numel == 0) return;
    const float *x = gf_contig_f32(ctx, n->in[0]);
    if (!x) return;
    const red_plan *p = n->saved;
    const float *g = gf_f32(n->out->grad), *y = gf_f32(n->out);
    int nt = gf_threads_for(ctx, 2 * n->in[0]->numel);
    RED_UNITS(p, u) {
        red_unit q = unit_at(p, u);
        float cnt[RED_LANES];
        for (int64_t j = 0; j < q.w; j++) cnt[j] = 0.0f;
        RED_WALK(p, q, cnt[j] += x[xi] == y[q.out + j] ? 1.0f : 0.0f);
        RED_WALK(p, q, if (x[xi] == y[q.out + j]) gx[xi] += g[q.out + j] / cnt[j]);
    }
}

/* ---- argmax ------------------------------------------------------------------------------
 * x viewed as [outer, len, inner]; each (outer, tile of inner) unit keeps the first index of
 * the maximum per lane (NaN counts as the maximum, as in torch.argmax). */

gf_tensor *gf_argmax(gf_ctx *ctx, gf_tensor *x, int axis, bool keepdim) {
    bool red[GF_MAX_DIMS];
    int nd;
    int64_t shape[GF_MAX_DIMS];
    if (!reduce_axes(ctx, "argmax", x, &axis, 1, keepdim, red, &nd, shape)) return NULL;
    if (reduces_empty(x, red)) {
        char sx[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "argmax: axis %d of input %s is empty", axis,
                         gf_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    gf_tensor *out = gf_empty(ctx, GF_I64, nd, shape);
    if (!out || out->numel == 0) return out;
    const float *px = gf_contig_f32(ctx, x);
    if (!px) return NULL;
    int a = 0;
    while (a < x->ndim && !red[a]) a++;
    int64_t outer = gf_numel_of(a < x->ndim ? a : 0, x->shape);
    int64_t len = a < x->ndim ? x->shape[a] : 1;
    int64_t inner = a < x->ndim ? gf_numel_of(x->ndim - a - 1, x->shape + a + 1) : 1;
    int64_t tiles = (inner + RED_LANES - 1) / RED_LANES;
    int64_t *o = gf_i64(out);
#pragma omp parallel for num_threads(gf_threads_for(ctx, x->numel)) schedule(static)
    for (int64_t u = 0; u < outer * tiles; u++) {
        int64_t b = u / tiles, j0 = (u % tiles) * RED_LANES;
        int64_t w = inner - j0 < RED_LANES ? inner - j0 : RED_LANES;
        const float *xs = px + b * len * inner + j0;
        float best[RED_LANES];
        int64_t *idx = o + b * inner + j0;
        for (int64_t j = 0; j < w; j++) {
            best[j] = xs[j];
            idx[j] = 0;
        }
        for (int64_t l = 1; l < len; l++)
            for (int64_t j = 0; j < w; j++) {
                float v = xs[l * inner + j];
                if (v > best[j] || (v != v && best[j] == best[j])) {
                    best[j] = v;
                    idx[j] = l;
                }
            }
    }
    return out;
}
