/* Convolution kernels: im2col / col2im (unfold one channel plane into kernel-offset rows so a
 * convolution becomes one sgemm, fold column gradients back) and direct single-plane
 * kernels for depthwise convolution, where the products are too thin for sgemm. */
#include "kernels/im2col.h"

#include <stdbool.h>
#include <string.h>

/* 256K floats (1 MiB): a chunk's column matrix and product stay in a core's L2 between
 * im2col, the sgemm and the scatter or col2im that follow (measured on the benchmark CNN's
 * 32 -> 64 3x3 layer on 14x14: 8% faster training than 1M floats, which misses L2; on
 * ResNet-style 3x3 layers, 8M floats was up to 30% slower than 1M). An image that alone
 * exceeds the budget is its own chunk. */
#define DEFAULT_CHUNK_BUDGET (1 << 18)

void gf_conv_set_chunk_budget(gf_ctx *ctx, int64_t floats) {
    ctx->conv_chunk_floats = floats > 0 ? floats : 0;
}

int64_t gf_conv_chunk_budget(const gf_ctx *ctx) {
    return ctx->conv_chunk_floats > 0 ? ctx->conv_chunk_floats : DEFAULT_CHUNK_BUDGET;
}

int64_t gf_conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
    int64_t span = in + 2 * pad - dil * (k - 1) - 1;
    if (span < 0) return 0;
    return span / stride + 1;
}

/* Output columns [lo, hi) whose input column ox*s + x0 lies inside [0, w). */
static void valid_range(int64_t x0, int64_t s, int64_t w, int64_t ow, int64_t *lo, int64_t *hi) {
    int64_t l = x0 < 0 ? (-x0 + s - 1) / s : 0;
    int64_t h = w - 1 - x0 >= 0 ? (w - 1 - x0) / s + 1 : 0;
    if (h > ow) h = ow;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* "Same"-shaped stride-1 convolutions (sh = sw = 1, ow = w) make every column row a shifted
 * copy of the whole plane: row (i, j) at position p = oy*w + ox reads x[p + off] with off =
 * (i dh - ph) w + (j dw - pw), except at positions whose input row or column falls outside
 * (they read 0; in a flat shift the column ones would wrap into the neighbouring row). So a
 * row is one contiguous copy (the part of [0, oh*ow) whose source lies in [0, h*w)), then the
 * wrapped columns and the rows outside are zeroed: one memcpy instead of oh small ones. */
static bool flat_shift(const gf_conv_geom *g) {
    return g->sh == 1 && g->sw == 1 && g->ow == g->w;
}

/* For tap (i, j) of a flat-shift geometry: the offset, the valid output rows [*r0, *r1) and
 * the valid columns [*c0, *c1). */
static int64_t shift_of(const gf_conv_geom *g, int64_t i, int64_t j, int64_t *r0, int64_t *r1,
                        int64_t *c0, int64_t *c1) {
    int64_t dy = i * g->dh - g->ph, dx = j * g->dw - g->pw;
    valid_range(dy, 1, g->h, g->oh, r0, r1);
    valid_range(dx, 1, g->w, g->ow, c0, c1);
    return dy * g->w + dx;
}

static void zero_f32(float *p, int64_t n) {
    if (n > 0) memset(p, 0, sizeof(float) * (size_t)n);
}

/* Zeroes columns [0, c0) and [c1, ow) of rows [r0, r1) (a few elements per row: one strided
 * loop per column, which GCC does not turn into a memset call per row). */
static void zero_cols(float *row, int64_t r0, int64_t r1, int64_t ow, int64_t c0, int64_t c1) {
    for (int64_t ox = 0; ox < c0; ox++)
        for (int64_t oy = r0; oy < r1; oy++) row[oy * ow + ox] = 0.0f;
    for (int64_t ox = c1; ox < ow; ox++)
        for (int64_t oy = r0; oy < r1; oy++) row[oy * ow + ox] = 0.0f;
}

void gf_im2col_plane(const gf_conv_geom *g, const float *x, float *col, int64_t ld) {
    const int64_t oh = g->oh, ow = g->ow, sw = g->sw;
    for (int64_t i = 0; i < g->kh; i++) {
        for (int64_t j = 0; j < g->kw; j++) {
            float *row = col + (i * g->kw + j) * ld;
            if (flat_shift(g)) {
                int64_t r0, r1, c0, c1, off = shift_of(g, i, j, &r0, &r1, &c0, &c1);
                if (c0 >= c1) r1 = r0; /* no valid column: the whole row is 0 */
                int64_t a = r0 * ow, b = r1 * ow; /* positions of the valid rows */
                if (a < b) {
                    if (a + off < 0) a = -off; /* only wrapped columns lie before x[0] ... */
                    if (b + off > g->h * g->w) b = g->h * g->w - off; /* ... or after the end */
                    memcpy(row + a, x + a + off, sizeof(float) * (size_t)(b - a));
                    zero_f32(row + r0 * ow, a - r0 * ow);
                    zero_f32(row + b, r1 * ow - b);
                    zero_cols(row, r0, r1, ow, c0, c1);
                }
                zero_f32(row, (r0 < r1 ? r0 : oh) * ow);
                if (r0 < r1) zero_f32(row + r1 * ow, (oh - r1) * ow);
                continue;
            }
            int64_t x0 = j * g->dw - g->pw, lo, hi;
            valid_range(x0, sw, g->w, ow, &lo, &hi);
            for (int64_t oy = 0; oy < oh; oy++) {
                float *r = row + oy * ow;
                int64_t iy = oy * g->sh - g->ph + i * g->dh;
                if (iy < 0 || iy >= g->h) {
                    for (int64_t ox = 0; ox < ow; ox++) r[ox] = 0.0f;
                    continue;
                }
                const float *src = x + iy * g->w; /* input column of ox: x0 + ox * sw */
                for (int64_t ox = 0; ox < lo; ox++) r[ox] = 0.0f;
                if (sw == 1)
                    for (int64_t ox = lo; ox < hi; ox++) r[ox] = src[x0 + ox];
                else
                    for (int64_t ox = lo; ox < hi; ox++) r[ox] = src[x0 + ox * sw];
                for (int64_t ox = hi; ox < ow; ox++) r[ox] = 0.0f;
            }
        }
    }
}

/* The flat-shift case adds each row as one contiguous run after zeroing its wrapped columns
 * in col (col is the caller's scratch, dead after the fold). Each x element still receives
 * the same contributions in the same tap order; the extra + 0 terms change nothing, since a
 * sum started from +0 is never -0. */
void gf_col2im_plane_add(const gf_conv_geom *g, float *col, int64_t ld, float *x) {
    const int64_t oh = g->oh, ow = g->ow, sw = g->sw;
    for (int64_t i = 0; i < g->kh; i++) {
        for (int64_t j = 0; j < g->kw; j++) {
            float *row = col + (i * g->kw + j) * ld;
            if (flat_shift(g)) {
                int64_t r0, r1, c0, c1, off = shift_of(g, i, j, &r0, &r1, &c0, &c1);
                int64_t a = r0 * ow, b = r1 * ow;
                if (a >= b || c0 >= c1) continue;
                zero_cols(row, r0, r1, ow, c0, c1);
                if (a + off < 0) a = -off;
                if (b + off > g->h * g->w) b = g->h * g->w - off;
                float *d = x + off;
                for (int64_t p = a; p < b; p++) d[p] += row[p];
                continue;
            }
            int64_t x0 = j * g->dw - g->pw, lo, hi;
            valid_range(x0, sw, g->w, ow, &lo, &hi);
            for (int64_t oy = 0; oy < oh; oy++) {
                int64_t iy = oy * g->sh - g->ph + i * g->dh;
                if (iy < 0 || iy >= g->h) continue;
                const float *r = row + oy * ow;
                float *dst = x + iy * g->w;
                if (sw == 1) {
                    float *d = dst + (x0 + lo);
                    for (int64_t ox = lo; ox < hi; ox++) d[ox - lo] += r[ox];
                } else {
                    for (int64_t ox = lo; ox < hi; ox++) dst[x0 + ox * sw] += r[ox];
                }
            }
        }
    }
}

/* ---- depthwise (one input channel per output channel) ---------------------------------- */

void gf_dwconv_plane(const gf_conv_geom *g, const float *x, const float *k, float *y) {
    const int64_t ow = g->ow, sw = g->sw;
    for (int64_t i = 0; i < g->kh; i++)
        for (int64_t j = 0; j < g->kw; j++) {
            const float kv = k[i * g->kw + j];
            int64_t x0 = j * g->dw - g->pw, lo, hi;
            valid_range(x0, sw, g->w, ow, &lo, &hi);
            for (int64_t oy = 0; oy < g->oh; oy++) {
                int64_t iy = oy * g->sh - g->ph + i * g->dh;
                if (iy < 0 || iy >= g->h) continue;
                const float *src = x + iy * g->w;
                float *dst = y + oy * ow;
                if (sw == 1) {
                    const float *s = src + (x0 + lo);
                    for (int64_t ox = lo; ox < hi; ox++) dst[ox] += kv * s[ox - lo];
                } else {
                    for (int64_t ox = lo; ox < hi; ox++) dst[ox] += kv * src[x0 + ox * sw];
                }
            }
        }
}

void gf_dwconv_plane_bwd_x(const gf_conv_geom *g, const float *dy, const float *k, float *dx) {
    const int64_t ow = g->ow, sw = g->sw;
    for (int64_t i = 0; i < g->kh; i++)
        for (int64_t j = 0; j < g->kw; j++) {
            const float kv = k[i * g->kw + j];
            int64_t x0 = j * g->dw - g->pw, lo, hi;
            valid_range(x0, sw, g->w, ow, &lo, &hi);
            for (int64_t oy = 0; oy < g->oh; oy++) {
                int64_t iy = oy * g->sh - g->ph + i * g->dh;
                if (iy < 0 || iy >= g->h) continue;
                const float *src = dy + oy * ow;
                float *dst = dx + iy * g->w;
                if (sw == 1) {
                    float *d = dst + (x0 + lo);
                    for (int64_t ox = lo; ox < hi; ox++) d[ox - lo] += kv * src[ox];
                } else {
                    for (int64_t ox = lo; ox < hi; ox++) dst[x0 + ox * sw] += kv * src[ox];
                }
            }
        }
}

void gf_dwconv_plane_bwd_w(const gf_conv_geom *g, const float *x, const float *dy, double *dk) {
    const int64_t ow = g->ow, sw = g->sw;
    for (int64_t i = 0; i < g->kh; i++)
        for (int64_t j = 0; j < g->kw; j++) {
            int64_t x0 = j * g->dw - g->pw, lo, hi;
            valid_range(x0, sw, g->w, ow, &lo, &hi);
            double acc = 0.0;
            for (int64_t oy = 0; oy < g->oh; oy++) {
                int64_t iy = oy * g->sh - g->ph + i * g->dh;
                if (iy < 0 || iy >= g->h) continue;
                const float *src = x + iy * g->w, *d = dy + oy * ow;
                float s = 0.0f;
                if (sw == 1) {
                    const float *xs = src + (x0 + lo);
                    for (int64_t ox = lo; ox < hi; ox++) s += xs[ox - lo] * d[ox];
                } else {
                    for (int64_t ox = lo; ox < hi; ox++) s += src[x0 + ox * sw] * d[ox];
                }
                acc += s;
            }
            dk[i * g->kw + j] += acc;
        }
}
