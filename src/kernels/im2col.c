/* Convolution kernels: im2col / col2im (unfold one channel plane into kernel-offset rows so a
 * convolution becomes one sgemm, fold column gradients back) and direct single-plane
 * kernels for depthwise convolution, where the products are too thin for sgemm. */
#include "kernels/im2col.h"

#include <string.h>

/* 1M floats (4 MiB): big enough that a chunk of images makes a well-shaped sgemm, small
 * enough that the column matrix stays in cache between im2col and sgemm (measured on
 * ResNet-style 3x3 layers: 8M floats was up to 30% slower). */
#define DEFAULT_CHUNK_BUDGET (1 << 20)

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

void gf_im2col_plane(const gf_conv_geom *g, const float *x, float *col, int64_t ld) {
    const int64_t oh = g->oh, ow = g->ow, sw = g->sw;
    for (int64_t i = 0; i < g->kh; i++) {
        for (int64_t j = 0; j < g->kw; j++) {
            float *row = col + (i * g->kw + j) * ld;
            int64_t x0 = j * g->dw - g->pw, lo, hi;
            valid_range(x0, sw, g->w, ow, &lo, &hi);
            for (int64_t oy = 0; oy < oh; oy++) {
                float *r = row + oy * ow;
                int64_t iy = oy * g->sh - g->ph + i * g->dh;
                if (iy < 0 || iy >= g->h) {
                    memset(r, 0, sizeof(float) * (size_t)ow);
                    continue;
                }
                const float *src = x + iy * g->w; /* input column of ox: x0 + ox * sw */
                for (int64_t ox = 0; ox < lo; ox++) r[ox] = 0.0f;
                if (sw == 1 && hi > lo)
                    memcpy(r + lo, src + (x0 + lo), sizeof(float) * (size_t)(hi - lo));
                else
                    for (int64_t ox = lo; ox < hi; ox++) r[ox] = src[x0 + ox * sw];
                for (int64_t ox = hi; ox < ow; ox++) r[ox] = 0.0f;
            }
        }
    }
}

void gf_col2im_plane_add(const gf_conv_geom *g, const float *col, int64_t ld, float *x) {
    const int64_t oh = g->oh, ow = g->ow, sw = g->sw;
    for (int64_t i = 0; i < g->kh; i++) {
        for (int64_t j = 0; j < g->kw; j++) {
            const float *row = col + (i * g->kw + j) * ld;
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
