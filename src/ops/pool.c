/* 2-D pooling: max (with dilation, saving the argmax for backward), average (PyTorch's
 * divisor rules for padding and ceil mode) and adaptive average (PyTorch's bin edges).
 * Every kernel works plane by plane ([N*C] planes of [H, W]), one thread per plane. */
#include "core/internal.h"
#include "graft/ops.h"
#include "kernels/maxpool.h"

#include <math.h>

typedef struct {
    int64_t planes, h, w, oh, ow;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    bool count_include_pad;
} pool_geom;

/* The argmax of a recorded max pooling, [planes, oh, ow] (arena): the winning tap within
 * each window (one byte, gf_maxpool_taps_fit) or, for windows over 256 taps, the index in
 * the input plane. Bytes keep the saved state of a 2x2 pooling at 1/16 of its input. */
typedef struct {
    pool_geom g;
    uint8_t *taps;
    int32_t *argmax;
} maxpool_saved;

gf_pool_params gf_pool_default_params(int k) {
    gf_pool_params p;
    memset(&p, 0, sizeof p);
    p.kernel[0] = p.kernel[1] = k;
    p.stride[0] = p.stride[1] = k;
    p.dilation[0] = p.dilation[1] = 1;
    p.ceil_mode = false;
    p.count_include_pad = true;
    return p;
}

/* PyTorch's pooling_output_shape: floor or ceil division, and in ceil mode the last window
 * must start inside the input or the left padding. */
static int64_t pool_out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil,
                             bool ceil_mode) {
    int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
    int64_t q = num >= 0 ? num / stride : -((-num + stride - 1) / stride); /* floor */
    int64_t out = q + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) out--;
    return out;
}

/* Input x [N, C, H, W] or [C, H, W] with non-empty C, H, W. */
static bool check_input(gf_ctx *ctx, const char *op, const gf_tensor *x) {
    if (!gf_check_tensor(ctx, op, "input", x, GF_F32)) return false;
    char sx[GF_SHAPE_BUF];
    int nd = x->ndim;
    if ((nd != 3 && nd != 4) || x->shape[nd - 1] == 0 || x->shape[nd - 2] == 0 || x->shape[nd - 3] == 0) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "%s: expected input [N, C, H, W] or [C, H, W] with non-zero C, H, W, got %s",
                         op, gf_shape_str(x, sx, sizeof sx));
        return false;
    }
    return true;
}

static void out_shape(const gf_tensor *x, const pool_geom *g, int64_t *shape) {
    for (int i = 0; i < x->ndim - 2; i++) shape[i] = x->shape[i];
    shape[x->ndim - 2] = g->oh;
    shape[x->ndim - 1] = g->ow;
}

/* Validates p for max (dilation allowed) or average pooling and fills the geometry. */
static bool pool_setup(gf_ctx *ctx, const char *op, const gf_tensor *x, const gf_pool_params *p,
                       bool is_max, pool_geom *g) {
    if (!check_input(ctx, op, x)) return false;
    char sx[GF_SHAPE_BUF];
    gf_shape_str(x, sx, sizeof sx);
    if (!p) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: params is NULL (input %s)", op, sx);
        return false;
    }
    int nd = x->ndim;
    memset(g, 0, sizeof *g);
    g->h = x->shape[nd - 2];
    g->w = x->shape[nd - 1];
    g->planes = x->numel / (g->h * g->w);
    g->kh = p->kernel[0], g->kw = p->kernel[1];
    g->sh = p->stride[0] ? p->stride[0] : p->kernel[0];
    g->sw = p->stride[1] ? p->stride[1] : p->kernel[1];
    g->ph = p->padding[0], g->pw = p->padding[1];
    g->dh = is_max ? p->dilation[0] : 1;
    g->dw = is_max ? p->dilation[1] : 1;
    g->count_include_pad = p->count_include_pad;
    if (g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1 || g->dh < 1 || g->dw < 1 || g->ph < 0 ||
        g->pw < 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s: kernel %dx%d, stride %dx%d, padding %dx%d, dilation %dx%d: kernel, "
                         "stride and dilation must be positive and padding >= 0 (input %s)", op,
                         p->kernel[0], p->kernel[1], p->stride[0], p->stride[1], p->padding[0],
                         p->padding[1], p->dilation[0], p->dilation[1], sx);
        return false;
    }
    if (!is_max && ((p->dilation[0] != 0 && p->dilation[0] != 1) ||
                    (p->dilation[1] != 0 && p->dilation[1] != 1))) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: dilation %dx%d is not supported (input %s)", op,
                         p->dilation[0], p->dilation[1], sx);
        return false;
    }
    if (g->ph > g->kh / 2 || g->pw > g->kw / 2) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s: padding %lldx%lld must be at most half of kernel %lldx%lld (input %s)",
                         op, (long long)g->ph, (long long)g->pw, (long long)g->kh, (long long)g->kw, sx);
        return false;
    }
    g->oh = pool_out_size(g->h, g->kh, g->ph, g->sh, g->dh, p->ceil_mode);
    g->ow = pool_out_size(g->w, g->kw, g->pw, g->sw, g->dw, p->ceil_mode);
    if (g->oh < 1 || g->ow < 1) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "%s: input %s gives output size %lldx%lld (kernel %lldx%lld, dilation "
                         "%lldx%lld, padding %lldx%lld): too small", op, sx, (long long)g->oh,
                         (long long)g->ow, (long long)g->kh, (long long)g->kw, (long long)g->dh,
                         (long long)g->dw, (long long)g->ph, (long long)g->pw);
        return false;
    }
    return true;
}

/* ---- max pooling ------------------------------------------------------------------------ */

static gf_maxpool_geom mp_geom(const pool_geom *g) {
    gf_maxpool_geom m = {g->h, g->w, g->oh, g->ow, g->kh, g->kw, g->sh, g->sw,
                         g->ph, g->pw, g->dh, g->dw};
    return m;
}

gf_tensor *gf_max_pool2d(gf_ctx *ctx, gf_tensor *x, const gf_pool_params *p) {
    pool_geom g;
    if (!pool_setup(ctx, "max_pool2d", x, p, true, &g)) return NULL;
    if (g.h * g.w > INT32_MAX) { /* argmax indices are int32 */
        char sx[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "max_pool2d: input %s: planes over 2^31 elements",
                         gf_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    int64_t shape[4];
    out_shape(x, &g, shape);
    gf_tensor *out = gf_empty(ctx, GF_F32, x->ndim, shape);
    const float *px = gf_contig_f32(ctx, x);
    if (!out || !px) return NULL;
    bool rec = gf_wants_grad(ctx, &x, 1);
    const int64_t per = g.oh * g.ow;
    float *po = gf_f32(out);
    const gf_maxpool_geom mg = mp_geom(&g);
    const bool tiled = gf_maxpool_tiled(&mg), use_taps = gf_maxpool_taps_fit(&mg);
    /* the argmax is kept only for a recorded graph */
    const size_t n_arg = (size_t)(g.planes * per);
    uint8_t *taps = rec && use_taps ? gf_scratch(ctx, n_arg) : NULL;
    int32_t *arg = rec && !use_taps ? gf_scratch(ctx, sizeof(int32_t) * n_arg) : NULL;
    if (rec && !taps && !arg) return NULL;
#pragma omp parallel for num_threads(gf_threads_for(ctx, g.planes * per * g.kh * g.kw)) schedule(static)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *src = px + pl * g.h * g.w;
        float *dst = po + pl * per;
        if (!arg) {
            uint8_t *t = taps ? taps + pl * per : NULL;
            if (tiled) gf_maxpool_plane_tiled_taps(&mg, src, dst, t);
            else gf_maxpool_plane_ref_taps(&mg, src, dst, t);
        } else if (tiled) {
            gf_maxpool_plane_tiled(&mg, src, dst, arg + pl * per);
        } else {
            gf_maxpool_plane_ref(&mg, src, dst, arg + pl * per);
        }
    }
    if (rec) {
        gf_node *n = gf_record(ctx, GF_OP_MAX_POOL2D, out, &x, 1, sizeof(maxpool_saved));
        if (!n) return NULL;
        maxpool_saved *s = n->saved;
        s->g = g;
        s->taps = taps;
        s->argmax = arg;
    }
    return out;
}

/* dX[argmax] += dY: each window's gradient goes to the element that won it. A fresh dX is
 * written plane by plane instead of being zero-filled first. */
void gf_bw_max_pool2d(gf_ctx *ctx, gf_node *n) {
    bool fresh;
    float *gx = gf_grad_of_for_write(ctx, n->in[0], &fresh);
    if (!gx) return;
    const maxpool_saved *s = n->saved;
    const pool_geom *g = &s->g;
    const gf_maxpool_geom mg = mp_geom(g);
    const float *dy = gf_f32(n->out->grad);
    const int64_t per = g->oh * g->ow;
#pragma omp parallel for num_threads(gf_threads_for(ctx, g->planes * (fresh ? g->h * g->w : per))) schedule(static)
    for (int64_t pl = 0; pl < g->planes; pl++) {
        float *dst = gx + pl * g->h * g->w;
        if (s->taps) gf_maxpool_plane_bwd_taps(&mg, dy + pl * per, s->taps + pl * per, dst, fresh);
        else gf_maxpool_plane_bwd(&mg, dy + pl * per, s->argmax + pl * per, dst, fresh);
    }
}

/* ---- average pooling ---------------------------------------------------------------------- */

/* One window of PyTorch's avg_pool2d: the clipped rows [*y0, *y1) and columns [*x0, *x1) and
 * the divisor. The divisor with count_include_pad counts the window clipped to the padded
 * input (so ceil-mode overhang past the padding is not counted); without it, only the real
 * input elements. Returns 0 for a window with no input element (its output is 0). */
static float avg_window(const pool_geom *g, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1,
                        int64_t *x0, int64_t *x1) {
    int64_t hs = oy * g->sh - g->ph, ws = ox * g->sw - g->pw;
    int64_t he = hs + g->kh < g->h + g->ph ? hs + g->kh : g->h + g->ph;
    int64_t we = ws + g->kw < g->w + g->pw ? ws + g->kw : g->w + g->pw;
    int64_t padded = (he - hs) * (we - ws);
    hs = hs > 0 ? hs : 0;
    ws = ws > 0 ? ws : 0;
    he = he < g->h ? he : g->h;
    we = we < g->w ? we : g->w;
    *y0 = hs, *y1 = he, *x0 = ws, *x1 = we;
    if (hs >= he || ws >= we) return 0.0f;
    return (float)(g->count_include_pad ? padded : (he - hs) * (we - ws));
}

gf_tensor *gf_avg_pool2d(gf_ctx *ctx, gf_tensor *x, const gf_pool_params *p) {
    pool_geom g;
    if (!pool_setup(ctx, "avg_pool2d", x, p, false, &g)) return NULL;
    int64_t shape[4];
    out_shape(x, &g, shape);
    gf_tensor *out = gf_empty(ctx, GF_F32, x->ndim, shape);
    const float *px = gf_contig_f32(ctx, x);
    if (!out || !px) return NULL;
    float *po = gf_f32(out);
    const int64_t per = g.oh * g.ow;
#pragma omp parallel for num_threads(gf_threads_for(ctx, g.planes * per * g.kh * g.kw)) schedule(static)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *src = px + pl * g.h * g.w;
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++) {
                int64_t y0, y1, x0, x1;
                float div = avg_window(&g, oy, ox, &y0, &y1, &x0, &x1);
                float s = 0.0f;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) s += src[iy * g.w + ix];
                po[pl * per + oy * g.ow + ox] = div > 0.0f ? s / div : 0.0f;
            }
    }
    if (gf_wants_grad(ctx, &x, 1)) {
        gf_node *n = gf_record(ctx, GF_OP_AVG_POOL2D, out, &x, 1, sizeof(pool_geom));
        if (!n) return NULL;
        *(pool_geom *)n->saved = g;
    }
    return out;
}

/* Each window spreads dY / divisor over the input elements it averaged. */
void gf_bw_avg_pool2d(gf_ctx *ctx, gf_node *n) {
    float *gx = gf_grad_of(ctx, n->in[0]);
    if (!gx) return;
    const pool_geom *g = n->saved;
    const float *dy = gf_f32(n->out->grad);
    const int64_t per = g->oh * g->ow;
#pragma omp parallel for num_threads(gf_threads_for(ctx, g->planes * per * g->kh * g->kw)) schedule(static)
    for (int64_t pl = 0; pl < g->planes; pl++) {
        float *dst = gx + pl * g->h * g->w;
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t y0, y1, x0, x1;
                float div = avg_window(g, oy, ox, &y0, &y1, &x0, &x1);
                if (div <= 0.0f) continue;
                float v = dy[pl * per + oy * g->ow + ox] / div;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) dst[iy * g->w + ix] += v;
            }
    }
}

/* ---- adaptive average pooling ------------------------------------------------------------- */

/* Bin i of n over size: [floor(i*size/n), ceil((i+1)*size/n)). */
static inline void bin(int64_t i, int64_t n, int64_t size, int64_t *lo, int64_t *hi) {
    *lo = i * size / n;
    *hi = ((i + 1) * size + n - 1) / n;
}

gf_tensor *gf_adaptive_avg_pool2d(gf_ctx *ctx, gf_tensor *x, int oh, int ow) {
    if (!check_input(ctx, "adaptive_avg_pool2d", x)) return NULL;
    if (oh < 1 || ow < 1) {
        char sx[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "adaptive_avg_pool2d: output size %dx%d must be positive (input %s)", oh,
                         ow, gf_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    pool_geom g;
    memset(&g, 0, sizeof g);
    g.h = x->shape[x->ndim - 2];
    g.w = x->shape[x->ndim - 1];
    g.planes = x->numel / (g.h * g.w);
    g.oh = oh;
    g.ow = ow;
    int64_t shape[4];
    out_shape(x, &g, shape);
    gf_tensor *out = gf_empty(ctx, GF_F32, x->ndim, shape);
    const float *px = gf_contig_f32(ctx, x);
    if (!out || !px) return NULL;
    float *po = gf_f32(out);
    const int64_t per = g.oh * g.ow;
#pragma omp parallel for num_threads(gf_threads_for(ctx, x->numel + g.planes * per)) schedule(static)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *src = px + pl * g.h * g.w;
        for (int64_t oy = 0; oy < g.oh; oy++) {
            int64_t y0, y1;
            bin(oy, g.oh, g.h, &y0, &y1);
            for (int64_t ox = 0; ox < g.ow; ox++) {
                int64_t x0, x1;
                bin(ox, g.ow, g.w, &x0, &x1);
                float s = 0.0f;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) s += src[iy * g.w + ix];
                po[pl * per + oy * g.ow + ox] = s / (float)((y1 - y0) * (x1 - x0));
            }
        }
    }
    if (gf_wants_grad(ctx, &x, 1)) {
        gf_node *n = gf_record(ctx, GF_OP_ADAPTIVE_AVG_POOL2D, out, &x, 1, sizeof(pool_geom));
        if (!n) return NULL;
        *(pool_geom *)n->saved = g;
    }
    return out;
}

/* Each bin spreads dY / (bin area) over its elements (bins may overlap). */
void gf_bw_adaptive_avg_pool2d(gf_ctx *ctx, gf_node *n) {
    float *gx = gf_grad_of(ctx, n->in[0]);
    if (!gx) return;
    const pool_geom *g = n->saved;
    const float *dy = gf_f32(n->out->grad);
    const int64_t per = g->oh * g->ow;
#pragma omp parallel for num_threads(gf_threads_for(ctx, g->planes * (g->h * g->w + per))) schedule(static)
    for (int64_t pl = 0; pl < g->planes; pl++) {
        float *dst = gx + pl * g->h * g->w;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            int64_t y0, y1;
            bin(oy, g->oh, g->h, &y0, &y1);
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t x0, x1;
                bin(ox, g->ow, g->w, &x0, &x1);
                float v = dy[pl * per + oy * g->ow + ox] / (float)((y1 - y0) * (x1 - x0));
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) dst[iy * g->w + ix] += v;
            }
        }
    }
}
