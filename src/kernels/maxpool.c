/* Max-pooling plane kernels (see maxpool.h). The reference walks each window with a
 * branch-free compare-and-select; the tiled kernels run the same chain of selects on 4
 * windows at once (2x2, in explicit vectors) or tap by tap along a row (other tilings). */
#include "kernels/maxpool.h"
#include "kernels/vec.h" /* GF_INLINE */

#include <math.h>
#include <string.h>

bool gf_maxpool_tiled(const gf_maxpool_geom *g) {
    return g->kh == g->sh && g->kw == g->sw && g->ph == 0 && g->pw == 0 && g->dh == 1 &&
           g->dw == 1 && g->oh * g->kh <= g->h && g->ow * g->kw <= g->w;
}

/* ---- reference ----------------------------------------------------------------------------- */

/* First tap in [start, ...) stepping by dil that is >= 0, and the end bound (exclusive). */
static inline void taps(int64_t start, int64_t k, int64_t dil, int64_t size, int64_t *lo,
                        int64_t *hi) {
    int64_t end = start + (k - 1) * dil + 1;
    *hi = end < size ? end : size;
    while (start < 0) start += dil;
    *lo = start;
}

/* best, best_t = v, t when v > best or v is NaN (PyTorch's rule), without a branch: on real
 * data the comparison is a coin flip, and mispredicted branches made the kernel 3x slower. */
static inline void max_step(float v, int64_t t, float *best, int64_t *best_t) {
    uint32_t take = (uint32_t)((v > *best) | (v != v));
    uint32_t m32 = 0u - take, vb, bb;
    uint64_t m64 = 0u - (uint64_t)take;
    memcpy(&vb, &v, sizeof vb);
    memcpy(&bb, best, sizeof bb);
    bb = (vb & m32) | (bb & ~m32);
    memcpy(best, &bb, sizeof bb);
    *best_t = (int64_t)(((uint64_t)t & m64) | ((uint64_t)*best_t & ~m64));
}

/* The chain runs over taps (r * kw + c from the window's corner); arg gets the winner's plane
 * index, tap the tap itself. */
static void plane_ref(const gf_maxpool_geom *g, const float *x, float *y, int32_t *arg,
                      uint8_t *tap) {
    for (int64_t oy = 0; oy < g->oh; oy++) {
        const int64_t wy = oy * g->sh - g->ph;
        int64_t y0, y1;
        taps(wy, g->kh, g->dh, g->h, &y0, &y1);
        for (int64_t ox = 0; ox < g->ow; ox++) {
            const int64_t wx = ox * g->sw - g->pw;
            int64_t x0, x1;
            taps(wx, g->kw, g->dw, g->w, &x0, &x1);
            /* as PyTorch: start from -inf at the first tap; the first of equal maxima wins,
             * a NaN always wins */
            const int64_t c0 = (x0 - wx) / g->dw;
            int64_t best_t = (y0 - wy) / g->dh * g->kw + c0;
            float best = -INFINITY;
            for (int64_t iy = y0, r = (y0 - wy) / g->dh; iy < y1; iy += g->dh, r++)
                for (int64_t ix = x0, c = c0; ix < x1; ix += g->dw, c++)
                    max_step(x[iy * g->w + ix], r * g->kw + c, &best, &best_t);
            y[oy * g->ow + ox] = best;
            if (arg)
                arg[oy * g->ow + ox] = (int32_t)((wy + best_t / g->kw * g->dh) * g->w + wx +
                                                 best_t % g->kw * g->dw);
            if (tap) tap[oy * g->ow + ox] = (uint8_t)best_t;
        }
    }
}

bool gf_maxpool_taps_fit(const gf_maxpool_geom *g) { return g->kh * g->kw <= 256; }

void gf_maxpool_plane_ref(const gf_maxpool_geom *g, const float *x, float *y, int32_t *arg) {
    plane_ref(g, x, y, arg, NULL);
}

void gf_maxpool_plane_ref_taps(const gf_maxpool_geom *g, const float *x, float *y, uint8_t *tap) {
    plane_ref(g, x, y, NULL, tap);
}

/* ---- tiled fast path ------------------------------------------------------------------------
 * Windows [oy*kh, +kh) x [ox*kw, +kw). Starting the chain from the first tap's value is the
 * same as starting from -inf: a first tap of -inf leaves best = -inf and the winner at the
 * first tap either way. Each step takes v when v > best or v is NaN. The chain carries taps
 * (dy * kw + dx), turned into plane indices only for an int32 argmax.
 *
 * 2x2 windows (the common case) run 4 outputs at a time in explicit 4-lane vectors: a row
 * pair is loaded as 8 + 8 floats and split into even and odd columns. A row whose width is
 * not a multiple of 4 ends with the block of the last 4 outputs, which recomputes (and
 * rewrites identically) up to 3 of them; rows under 4 outputs run the scalar chain. */

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
#if defined(__clang__)
#define SHUF(a, b, i0, i1, i2, i3) __builtin_shufflevector(a, b, i0, i1, i2, i3)
#else
#define SHUF(a, b, i0, i1, i2, i3) __builtin_shuffle(a, b, (v4i){i0, i1, i2, i3})
#endif

GF_INLINE v4f ld4(const float *p) {
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}
/* m ? a : b lane by lane (m all ones or all zeros per lane) */
GF_INLINE v4f blendf(v4i m, v4f a, v4f b) { return (v4f)((m & (v4i)a) | (~m & (v4i)b)); }
GF_INLINE v4i blendi(v4i m, v4i a, v4i b) { return (m & a) | (~m & b); }

/* One step of the chain on scalars, branch-free (a branch here mispredicts on real data). */
GF_INLINE void step1(float v, int32_t i, float *best, int32_t *bi) {
    uint32_t m = 0u - (uint32_t)((v > *best) | (v != v)), vb, bb;
    memcpy(&vb, &v, sizeof vb);
    memcpy(&bb, best, sizeof bb);
    bb = (vb & m) | (bb & ~m);
    memcpy(best, &bb, sizeof bb);
    *bi = (int32_t)(((uint32_t)i & m) | ((uint32_t)*bi & ~m));
}

/* Outputs [ox, ox + 4) of a 2x2 row pair; i0: plane index of r0[0], w: row length. Taps 0..3
 * are (0, 0), (0, 1), (1, 0), (1, 1); a tap t is at plane index corner + (t & 1) + (t >> 1) w. */
GF_INLINE void block_2x2(const float *r0, const float *r1, int32_t ox, int32_t i0, int32_t w,
                         float *y, int32_t *arg, uint8_t *tap) {
    const v4f a0 = ld4(r0 + 2 * ox), a1 = ld4(r0 + 2 * ox + 4);
    const v4f c0 = ld4(r1 + 2 * ox), c1 = ld4(r1 + 2 * ox + 4);
    const bool want = arg || tap;
    v4f b = SHUF(a0, a1, 0, 2, 4, 6), v;
    v4i t, bt = {0, 0, 0, 0};
    v = SHUF(a0, a1, 1, 3, 5, 7), t = (v > b) | (v != v), b = blendf(t, v, b);
    if (want) bt = blendi(t, (v4i){1, 1, 1, 1}, bt);
    v = SHUF(c0, c1, 0, 2, 4, 6), t = (v > b) | (v != v), b = blendf(t, v, b);
    if (want) bt = blendi(t, (v4i){2, 2, 2, 2}, bt);
    v = SHUF(c0, c1, 1, 3, 5, 7), t = (v > b) | (v != v), b = blendf(t, v, b);
    if (want) bt = blendi(t, (v4i){3, 3, 3, 3}, bt);
    memcpy(y + ox, &b, sizeof b);
    if (arg) {
        const v4i i = i0 + 2 * ox + (v4i){0, 2, 4, 6};
        const v4i bi = i + (bt & 1) + (-(bt >> 1) & w);
        memcpy(arg + ox, &bi, sizeof bi);
    }
    if (tap)
        for (int k = 0; k < 4; k++) tap[ox + k] = (uint8_t)bt[k];
}

GF_INLINE void row_2x2(const float *r0, const float *r1, int32_t ow, int32_t i0, int32_t w,
                       float *y, int32_t *arg, uint8_t *tap) {
    if (ow < 4) {
        for (int32_t ox = 0; ox < ow; ox++) {
            float b = r0[2 * ox];
            int32_t bt = 0;
            step1(r0[2 * ox + 1], 1, &b, &bt);
            step1(r1[2 * ox], 2, &b, &bt);
            step1(r1[2 * ox + 1], 3, &b, &bt);
            y[ox] = b;
            if (arg) arg[ox] = i0 + 2 * ox + (bt & 1) + (bt >> 1) * w;
            if (tap) tap[ox] = (uint8_t)bt;
        }
        return;
    }
    int32_t ox = 0;
    for (; ox + 4 <= ow; ox += 4) block_2x2(r0, r1, ox, i0, w, y, arg, tap);
    if (ox < ow) block_2x2(r0, r1, ow - 4, i0, w, y, arg, tap);
}

/* Any tiling: the output row is the running maximum, updated tap by tap in PyTorch's order
 * (rows of the window, then columns). */
static void row_any(const float *r, int32_t ow, int32_t kh, int32_t kw, int32_t w, int32_t i0,
                    float *y, int32_t *arg, uint8_t *tap) {
    int32_t tb[64];
    for (int32_t ox0 = 0; ox0 < ow; ox0 += 64) { /* blocks of 64 outputs */
        const int32_t n = ow - ox0 < 64 ? ow - ox0 : 64;
        float *yb = y + ox0;
        const float *rb = r + (int64_t)ox0 * kw;
        for (int32_t ox = 0; ox < n; ox++) {
            yb[ox] = rb[ox * kw];
            tb[ox] = 0;
        }
        for (int32_t dy = 0; dy < kh; dy++)
            for (int32_t dx = dy ? 0 : 1; dx < kw; dx++) {
                const float *rt = rb + (int64_t)dy * w + dx;
                const int32_t t = dy * kw + dx;
                for (int32_t ox = 0; ox < n; ox++) step1(rt[ox * kw], t, yb + ox, tb + ox);
            }
        if (arg)
            for (int32_t ox = 0; ox < n; ox++)
                arg[ox0 + ox] = i0 + (ox0 + ox) * kw + tb[ox] / kw * w + tb[ox] % kw;
        if (tap)
            for (int32_t ox = 0; ox < n; ox++) tap[ox0 + ox] = (uint8_t)tb[ox];
    }
}

static void plane_tiled(const gf_maxpool_geom *g, const float *x, float *y, int32_t *arg,
                        uint8_t *tap) {
    const int32_t w = (int32_t)g->w, ow = (int32_t)g->ow, kh = (int32_t)g->kh, kw = (int32_t)g->kw;
    for (int32_t oy = 0; oy < (int32_t)g->oh; oy++) {
        const float *r = x + (int64_t)oy * kh * w;
        const int32_t i0 = oy * kh * w;
        int32_t *ar = arg ? arg + (int64_t)oy * ow : NULL;
        uint8_t *tr = tap ? tap + (int64_t)oy * ow : NULL;
        float *yr = y + (int64_t)oy * ow;
        if (kh == 2 && kw == 2) row_2x2(r, r + w, ow, i0, w, yr, ar, tr);
        else row_any(r, ow, kh, kw, w, i0, yr, ar, tr);
    }
}

void gf_maxpool_plane_tiled(const gf_maxpool_geom *g, const float *x, float *y, int32_t *arg) {
    plane_tiled(g, x, y, arg, NULL);
}

void gf_maxpool_plane_tiled_taps(const gf_maxpool_geom *g, const float *x, float *y,
                                 uint8_t *tap) {
    plane_tiled(g, x, y, NULL, tap);
}

/* ---- backward ------------------------------------------------------------------------------ */

static const volatile float k_zero = 0.0f;

/* Fresh tiled backward: every element of the plane written once. Row r of window row oy
 * holds, for kw == 2, the pairs (2 ox, 2 ox + 1): built 4 outputs at a time as even and odd
 * lanes (0 + dy where the saved tap is that element's, else 0) and interleaved; a short last
 * block overlaps the previous one and rewrites the same values. */
GF_INLINE void pair_block_taps(const float *d, const uint8_t *a, int32_t ox, int32_t t0,
                               float *dst) {
    const v4f v = (v4f){0, 0, 0, 0} + ld4(d + ox);
    const v4i ai = {a[ox], a[ox + 1], a[ox + 2], a[ox + 3]};
    const v4f e = (v4f)((v4i)v & (ai == t0)), o = (v4f)((v4i)v & (ai == t0 + 1));
    const v4f lo = SHUF(e, o, 0, 4, 1, 5), hi = SHUF(e, o, 2, 6, 3, 7);
    memcpy(dst + 2 * ox, &lo, sizeof lo);
    memcpy(dst + 2 * ox + 4, &hi, sizeof hi);
}

static void bwd_fresh_taps(const gf_maxpool_geom *g, const float *dy, const uint8_t *tap,
                           float *gx) {
    const int32_t w = (int32_t)g->w, ow = (int32_t)g->ow, kh = (int32_t)g->kh, kw = (int32_t)g->kw;
    const int32_t span = ow * kw;
    const float z = k_zero; /* 0 + dy, not folded away: -0 must become +0 as with += */
    for (int32_t oy = 0; oy < (int32_t)g->oh; oy++) {
        const float *d = dy + (int64_t)oy * ow;
        const uint8_t *a = tap + (int64_t)oy * ow;
        for (int32_t r = 0; r < kh; r++) {
            float *dst = gx + (int64_t)(oy * kh + r) * w;
            if (kw == 2 && ow >= 4) {
                int32_t ox = 0;
                for (; ox + 4 <= ow; ox += 4) pair_block_taps(d, a, ox, 2 * r, dst);
                if (ox < ow) pair_block_taps(d, a, ow - 4, 2 * r, dst);
            } else {
                for (int32_t ox = 0; ox < ow; ox++)
                    for (int32_t c = 0; c < kw; c++) {
                        const float v = z + d[ox];
                        uint32_t vb, m = 0u - (uint32_t)(a[ox] == r * kw + c);
                        memcpy(&vb, &v, sizeof vb);
                        vb &= m;
                        memcpy(dst + ox * kw + c, &vb, sizeof vb);
                    }
            }
            for (int32_t ix = span; ix < w; ix++) dst[ix] = 0.0f;
        }
    }
    for (int64_t row = g->oh * g->kh; row < g->h; row++)
        memset(gx + row * g->w, 0, sizeof(float) * (size_t)g->w);
}

void gf_maxpool_plane_bwd_taps(const gf_maxpool_geom *g, const float *dy, const uint8_t *tap,
                               float *gx, bool fresh) {
    if (fresh && gf_maxpool_tiled(g)) {
        bwd_fresh_taps(g, dy, tap, gx);
        return;
    }
    if (fresh) memset(gx, 0, sizeof(float) * (size_t)(g->h * g->w));
    for (int64_t oy = 0, k = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++, k++) {
            const int64_t t = tap[k];
            const int64_t iy = oy * g->sh - g->ph + t / g->kw * g->dh;
            const int64_t ix = ox * g->sw - g->pw + t % g->kw * g->dw;
            gx[iy * g->w + ix] += dy[k];
        }
}

/* Only windows of over 256 taps keep 4-byte indices (gf_maxpool_taps_fit): rare enough that
 * a fresh plane is simply zero-filled, then scattered into. */
void gf_maxpool_plane_bwd(const gf_maxpool_geom *g, const float *dy, const int32_t *arg,
                          float *gx, bool fresh) {
    if (fresh) memset(gx, 0, sizeof(float) * (size_t)(g->h * g->w));
    const int64_t per = g->oh * g->ow;
    for (int64_t k = 0; k < per; k++) gx[arg[k]] += dy[k];
}
