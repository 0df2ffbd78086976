/* GridSample (opset 16): X [N, C, H, W] sampled at the grid's normalised (x, y) points
 * [N, Ho, Wo, 2] — bilinear, nearest or bicubic, with zeros, border or reflection padding and
 * both align_corners conventions, as torch.nn.functional.grid_sample. The sample is a weighted
 * sum of gf_gather's of the flattened input, so it is differentiable in X; the grid is read as
 * numbers (no gradient reaches it). */
#include "import/onnx_internal.h"

#include <math.h>
#include <string.h>

enum { GS_BILINEAR, GS_NEAREST, GS_BICUBIC };
enum { GS_ZEROS, GS_BORDER, GS_REFLECTION };

typedef struct gs {
    int mode, pad;
    bool align;
    int64_t h, w;
} gs;

/* A normalised coordinate in [-1, 1] to a pixel position along an axis of `len`. */
static double unnormalise(const gs *g, double v, int64_t len) {
    return g->align ? (v + 1) / 2 * (double)(len - 1) : ((v + 1) * (double)len - 1) / 2;
}

/* Reflection of x into [lo, hi] (torch's reflect_coordinates). */
static double reflect(double x, double lo, double hi) {
    if (lo == hi) return 0;
    double span = hi - lo, d = fabs(x - lo);
    int64_t flips = (int64_t)floor(d / span);
    double extra = fmod(d, span);
    return flips % 2 == 0 ? lo + extra : hi - extra;
}

/* The coordinate after border or reflection padding (zeros: unchanged). */
static double pad_coord(const gs *g, double x, int64_t len) {
    if (g->pad == GS_BORDER) return x < 0 ? 0 : x > (double)(len - 1) ? (double)(len - 1) : x;
    if (g->pad == GS_REFLECTION) {
        x = g->align ? reflect(x, 0, (double)(len - 1)) : reflect(x, -0.5, (double)len - 0.5);
        return x < 0 ? 0 : x > (double)(len - 1) ? (double)(len - 1) : x;
    }
    return x;
}

/* Index and validity of a tap at integer position (ix, iy): for bicubic, out-of-range taps take
 * the border or reflection of their position; zeros padding drops them. */
static bool tap(const gs *g, int64_t ix, int64_t iy, int64_t *flat) {
    if (g->mode == GS_BICUBIC && g->pad != GS_ZEROS) {
        ix = (int64_t)pad_coord(g, (double)ix, g->w);
        iy = (int64_t)pad_coord(g, (double)iy, g->h);
    }
    if (ix < 0 || ix >= g->w || iy < 0 || iy >= g->h) {
        *flat = 0;
        return false;
    }
    *flat = iy * g->w + ix;
    return true;
}

static double cubic_w(double t) {
    const double a = -0.75;
    t = fabs(t);
    if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
    if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
    return 0;
}

/* Taps (up to 16) of one output point: flat indices and weights (0 for dropped taps). */
static int taps_of(const gs *g, double gx, double gy, int64_t *idx, double *wt) {
    double x = unnormalise(g, gx, g->w), y = unnormalise(g, gy, g->h);
    if (g->mode != GS_BICUBIC) x = pad_coord(g, x, g->w), y = pad_coord(g, y, g->h);
    if (g->mode == GS_NEAREST) {
        wt[0] = tap(g, (int64_t)nearbyint(x), (int64_t)nearbyint(y), &idx[0]) ? 1 : 0;
        return 1;
    }
    const int64_t x0 = (int64_t)floor(x), y0 = (int64_t)floor(y);
    const double fx = x - (double)x0, fy = y - (double)y0;
    if (g->mode == GS_BILINEAR) {
        for (int k = 0; k < 4; k++) {
            int dx = k & 1, dy = k >> 1;
            double w = (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy);
            wt[k] = tap(g, x0 + dx, y0 + dy, &idx[k]) ? w : 0;
        }
        return 4;
    }
    for (int k = 0; k < 16; k++) {
        int dx = k % 4 - 1, dy = k / 4 - 1;
        double w = cubic_w(fx - dx) * cubic_w(fy - dy);
        wt[k] = tap(g, x0 + dx, y0 + dy, &idx[k]) ? w : 0;
    }
    return 16;
}

bool ox_op_grid_sample(ox_exec *e) {
    gf_tensor *x = e->in[0], *grid = e->in[1];
    if (!ox_need(e, 0, GF_F32) || !ox_need(e, 1, GF_F32)) return false;
    if (x->ndim != 4 || grid->ndim != 4 || grid->shape[3] != 2 || grid->shape[0] != x->shape[0])
        return ox_fail(e, GF_ERR_SHAPE, "expected X [N, C, H, W] and grid [N, Ho, Wo, 2]");
    const char *mode = ox_attr_str(e->node, "mode", "bilinear"),
               *pad = ox_attr_str(e->node, "padding_mode", "zeros");
    gs g = {!strcmp(mode, "nearest")       ? GS_NEAREST
                : !strcmp(mode, "bicubic") ? GS_BICUBIC
                                           : GS_BILINEAR,
            !strcmp(pad, "border")           ? GS_BORDER
                : !strcmp(pad, "reflection") ? GS_REFLECTION
                                             : GS_ZEROS,
            ox_attr_int(e->node, "align_corners", 0) != 0, x->shape[2], x->shape[3]};
    if ((g.mode == GS_BILINEAR && strcmp(mode, "bilinear")) ||
        (g.pad == GS_ZEROS && strcmp(pad, "zeros")))
        return ox_fail(e, GF_ERR_INVALID, "mode '%s' or padding_mode '%s' is unknown", mode, pad);
    const int64_t n = x->shape[0], c = x->shape[1], ho = grid->shape[1], wo = grid->shape[2],
                  p = ho * wo;
    const int nt = g.mode == GS_NEAREST ? 1 : g.mode == GS_BILINEAR ? 4 : 16;
    if (!ox_check_grow(e, ox_mul(ox_mul(n * c, p), nt), x->numel, "the sampling taps"))
        return false;
    gf_ctx *cx = e->ctx;
    gf_tensor *flat = gf_reshape(cx, x, 3, (int64_t[]){n, c, g.h * g.w}), *y = NULL;
    gf_tensor *idx[16], *wt[16];
    for (int k = 0; k < nt; k++) {
        idx[k] = gf_empty(cx, GF_I64, 3, (int64_t[]){n, c, p});
        wt[k] = gf_empty(cx, GF_F32, 3, (int64_t[]){n, 1, p});
        if (!idx[k] || !wt[k]) return false;
    }
    for (int64_t b = 0; b < n; b++)
        for (int64_t q = 0; q < p; q++) {
            int64_t ti[16];
            double tw[16];
            taps_of(&g, gf_get_f32(grid, (b * p + q) * 2), gf_get_f32(grid, (b * p + q) * 2 + 1),
                    ti, tw);
            for (int k = 0; k < nt; k++) {
                gf_f32(wt[k])[b * p + q] = (float)tw[k];
                for (int64_t ch = 0; ch < c; ch++) gf_i64(idx[k])[(b * c + ch) * p + q] = ti[k];
            }
        }
    for (int k = 0; k < nt && flat; k++) {
        gf_tensor *v = gf_mul(cx, gf_gather(cx, flat, 2, idx[k]), wt[k]);
        y = y ? gf_add(cx, y, v) : v;
    }
    return (e->out[0] = y ? gf_reshape(cx, y, 4, (int64_t[]){n, c, ho, wo}) : NULL) != NULL;
}
