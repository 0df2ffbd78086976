/* 3x3 depthwise kernels over 8 channels at once, for small planes. On a 6x6 or 3x3 plane the
 * per-plane kernels of kernels/dwconv3.c fill a vector of 8 output columns with a few real
 * ones and spend most of their time on edges; here the 8 lanes are 8 channels instead. The
 * planes are transposed into a [position][8 channels] scratch (8x8 blocks in registers), each
 * output position adds its taps that lie inside the input (the same taps for all 8 lanes, so
 * no masking), and the result is transposed back. Every output element gets exactly the
 * generic kernels' operations in their order (start value, then k * x tap after tap in
 * row-major order, padding skipped, no FMA), so the forward pass and dX equal them to the bit.
 * dW sums each channel's products over the plane in float, in position order, then adds the
 * image's sum in double: a fixed order, the same at every level and thread count. */
#include "kernels/im2col.h"
#include "kernels/vec.h"

enum { LANES = 8, TAPS = 9, X8_MAX = GF_DWCONV3X8_MAX_POSITIONS };

int64_t gf_dwconv3x8_work(const gf_conv_geom *g) {
    return LANES * (g->h * g->w + g->oh * g->ow);
}

bool gf_dwconv3x8_fits(const gf_conv_geom *g) {
    return gf_dwconv3_fits(g) && g->o == g->c && g->h * g->w <= X8_MAX &&
           g->oh * g->ow <= X8_MAX;
}

#if defined(__clang__)
#define SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUF(a, b, ...) __builtin_shuffle(a, b, (gf_v8i){__VA_ARGS__})
#endif

/* r[i][j] -> r[j][i] for an 8x8 block held in 8 vectors (exact: only moves). */
GF_INLINE void transpose8(gf_v8f *r) {
    gf_v8f t[8], u[8];
    for (int q = 0; q < 8; q += 2) {
        t[q] = SHUF(r[q], r[q + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[q + 1] = SHUF(r[q], r[q + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int q = 0; q < 8; q += 4) {
        u[q] = SHUF(t[q], t[q + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[q + 1] = SHUF(t[q], t[q + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[q + 2] = SHUF(t[q + 1], t[q + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[q + 3] = SHUF(t[q + 1], t[q + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int q = 0; q < 4; q++) {
        r[q] = SHUF(u[q], u[q + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        r[q + 4] = SHUF(u[q], u[q + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

/* dst[p][l] = src[l * stride + p] for p < n: 8 planes to interleaved positions. */
GF_INLINE void interleave(const float *restrict src, int64_t stride, int64_t n,
                          float *restrict dst) {
    int64_t p = 0;
    gf_v8f r[8];
    for (; p + LANES <= n; p += LANES) {
        for (int l = 0; l < LANES; l++) gf_v8f_load(&r[l], src + l * stride + p);
        transpose8(r);
        for (int q = 0; q < LANES; q++) gf_v8f_store(dst + (p + q) * LANES, &r[q]);
    }
    for (; p < n; p++)
        for (int l = 0; l < LANES; l++) dst[p * LANES + l] = src[l * stride + p];
}

/* dst[l * stride + p] = src[p][l] for p < n: interleaved positions back to 8 planes. */
GF_INLINE void deinterleave(const float *restrict src, int64_t n, float *restrict dst,
                            int64_t stride) {
    int64_t p = 0;
    gf_v8f r[8];
    for (; p + LANES <= n; p += LANES) {
        for (int q = 0; q < LANES; q++) gf_v8f_load(&r[q], src + (p + q) * LANES);
        transpose8(r);
        for (int l = 0; l < LANES; l++) gf_v8f_store(dst + l * stride + p, &r[l]);
    }
    for (; p < n; p++)
        for (int l = 0; l < LANES; l++) dst[l * stride + p] = src[p * LANES + l];
}

/* kv[t] = the 8 channels' weight for tap t (k holds [8][9]). */
GF_INLINE void tap_vectors(const float *k, gf_v8f *kv) {
    float kt[TAPS][LANES];
    for (int l = 0; l < LANES; l++)
        for (int t = 0; t < TAPS; t++) kt[t][l] = k[l * TAPS + t];
    for (int t = 0; t < TAPS; t++) gf_v8f_load(&kv[t], kt[t]);
}

/* The taps [lo, hi) of a 3-tap axis whose input index at + tap lies in [0, n). */
GF_INLINE void tap_range(int64_t at, int64_t n, int64_t *lo, int64_t *hi) {
    *lo = at < 0 ? -at : 0;
    *hi = n - at < 3 ? n - at : 3;
    if (*hi < *lo) *hi = *lo;
}

/* ---- forward: y = b + x (*) k over 8 planes ------------------------------------------------ */

/* The output columns [*lo, *hi) whose three taps all lie inside a row of width w. */
GF_INLINE void inner_cols(const gf_conv_geom *g, int64_t *lo, int64_t *hi) {
    *lo = (g->pw + g->sw - 1) / g->sw;
    *hi = g->w - 3 + g->pw >= 0 ? (g->w - 3 + g->pw) / g->sw + 1 : 0;
    if (*hi > g->ow) *hi = g->ow;
    if (*lo > *hi) *lo = *hi;
}

/* One output position, the taps [i0, i1) x [j0, j1) that lie inside the input; p points at
 * tap (0, 0)'s interleaved input (which may lie outside). */
GF_INLINE void fwd_point(gf_v8f *acc, const float *p, int64_t rs, const gf_v8f *kv, int64_t i0,
                         int64_t i1, int64_t j0, int64_t j1) {
    gf_v8f xv;
    for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < j1; j++) {
            gf_v8f_load(&xv, p + i * rs + j * LANES);
            *acc += kv[i * 3 + j] * xv;
        }
}

/* Two neighbouring output positions with all 9 taps inside (p, p + cs): two independent
 * chains, each in the taps' order. */
GF_INLINE void fwd_pair(gf_v8f *a, gf_v8f *b, const float *p, int64_t rs, int64_t cs,
                        const gf_v8f *kv) {
    gf_v8f xa, xb;
#pragma GCC unroll 3
    for (int i = 0; i < 3; i++)
#pragma GCC unroll 3
        for (int j = 0; j < 3; j++) {
            gf_v8f_load(&xa, p + i * rs + j * LANES);
            gf_v8f_load(&xb, p + cs + i * rs + j * LANES);
            *a += kv[i * 3 + j] * xa;
            *b += kv[i * 3 + j] * xb;
        }
}

GF_INLINE void fwd_body(const gf_conv_geom *g, const float *restrict x, const float *restrict k,
                        const float *restrict b, float *restrict y,
                        float *restrict work) {
    float *xt = work, *yt = work + g->h * g->w * LANES;
    const int64_t w = g->w, ow = g->ow, rs = w * LANES, cs = g->sw * LANES;
    int64_t lo, hi;
    gf_v8f kv[TAPS], start = GF_V8F_ZERO;
    tap_vectors(k, kv);
    if (b) gf_v8f_load(&start, b);
    interleave(x, g->h * w, g->h * w, xt);
    inner_cols(g, &lo, &hi);
    for (int64_t oy = 0; oy < g->oh; oy++) {
        int64_t i0, i1, j0, j1;
        const int64_t y0 = oy * g->sh - g->ph;
        const float *row = xt + (y0 * w - g->pw) * LANES; /* tap (0, 0) of column 0 */
        float *yr = yt + oy * ow * LANES;
        tap_range(y0, g->h, &i0, &i1);
        int64_t ox = 0;
        if (i0 == 0 && i1 == 3)
            for (ox = lo; ox + 1 < hi; ox += 2) {
                gf_v8f a = start, c = start;
                fwd_pair(&a, &c, row + ox * cs, rs, cs, kv);
                gf_v8f_store(yr + ox * LANES, &a);
                gf_v8f_store(yr + (ox + 1) * LANES, &c);
            }
        const int64_t done0 = i0 == 0 && i1 == 3 ? lo : 0, done1 = i0 == 0 && i1 == 3 ? ox : 0;
        for (ox = 0; ox < ow; ox++) {
            if (ox == done0) ox = done1;
            if (ox >= ow) break;
            tap_range(ox * g->sw - g->pw, w, &j0, &j1);
            gf_v8f acc = start;
            fwd_point(&acc, row + ox * cs, rs, kv, i0, i1, j0, j1);
            gf_v8f_store(yr + ox * LANES, &acc);
        }
    }
    deinterleave(yt, g->oh * ow, y, g->oh * ow);
}

static void fwd_base(const gf_conv_geom *g, const float *x, const float *k, const float *b,
                     float *y, float *work) {
    fwd_body(g, x, k, b, y, work);
}
#if GF_VEC_AVX2
GF_TARGET_AVX2 static void fwd_avx2(const gf_conv_geom *g, const float *x, const float *k,
                                    const float *b, float *y, float *work) {
    fwd_body(g, x, k, b, y, work);
}
#endif

void gf_dwconv3x8(int level, const gf_conv_geom *g, const float *x, const float *k,
                  const float *b, float *y, float *work) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        fwd_avx2(g, x, k, b, y, work);
        return;
    }
#endif
    (void)level;
    fwd_base(g, x, k, b, y, work);
}

/* ---- dX: dx[iy, ix] += k[i, j] dy[(iy + ph - i) / sh, (ix + pw - j) / sw] over 8 planes ---- */

/* dX at one input position: the taps whose dy lies inside, in the generic kernel's order.
 * p points at dy's interleaved (ry, rx) = (iy + ph, ix + pw); tap (i, j) reads p - i rs - j. */
GF_INLINE void bwd_x_point(gf_v8f *acc, const float *p, int64_t rs, const gf_v8f *kv,
                           int64_t ry, int64_t rx, int64_t oh, int64_t ow) {
    gf_v8f dv;
    for (int64_t i = 0; i < 3; i++) {
        if (ry - i < 0 || ry - i >= oh) continue;
        for (int64_t j = 0; j < 3; j++) {
            if (rx - j < 0 || rx - j >= ow) continue;
            gf_v8f_load(&dv, p - i * rs - j * LANES);
            *acc += kv[i * 3 + j] * dv;
        }
    }
}

/* Two neighbouring input positions whose 9 taps all read inside dy. */
GF_INLINE void bwd_x_pair(gf_v8f *a, gf_v8f *b, const float *p, int64_t rs, const gf_v8f *kv) {
    gf_v8f da, db;
#pragma GCC unroll 3
    for (int i = 0; i < 3; i++)
#pragma GCC unroll 3
        for (int j = 0; j < 3; j++) {
            gf_v8f_load(&da, p - i * rs - j * LANES);
            gf_v8f_load(&db, p + LANES - i * rs - j * LANES);
            *a += kv[i * 3 + j] * da;
            *b += kv[i * 3 + j] * db;
        }
}

GF_INLINE void bwd_x_body(const gf_conv_geom *g, const float *restrict dy,
                          const float *restrict k, float *restrict dx,
                          float *restrict work) {
    float *dyt = work, *dxt = work + g->oh * g->ow * LANES;
    const int64_t w = g->w, ow = g->ow, oh = g->oh, hw = g->h * w, rs = ow * LANES;
    /* input columns whose taps all read inside dy: ix + pw - 2 >= 0 and ix + pw < ow */
    int64_t lo = 2 - g->pw > 0 ? 2 - g->pw : 0, hi = ow - g->pw < w ? ow - g->pw : w;
    if (lo > hi) lo = hi;
    gf_v8f kv[TAPS];
    tap_vectors(k, kv);
    interleave(dy, oh * ow, oh * ow, dyt);
    interleave(dx, hw, hw, dxt);
    for (int64_t iy = 0; iy < g->h; iy++) {
        const int64_t ry = iy + g->ph;
        const bool inner = ry - 2 >= 0 && ry < oh;
        const float *p = dyt + (ry * ow + g->pw) * LANES; /* (ry, rx) for ix = 0 */
        float *dr = dxt + iy * w * LANES;
        int64_t ix = 0, d0 = 0, d1 = 0;
        if (inner) {
            for (ix = lo; ix + 1 < hi; ix += 2) {
                gf_v8f a, c;
                gf_v8f_load(&a, dr + ix * LANES);
                gf_v8f_load(&c, dr + (ix + 1) * LANES);
                bwd_x_pair(&a, &c, p + ix * LANES, rs, kv);
                gf_v8f_store(dr + ix * LANES, &a);
                gf_v8f_store(dr + (ix + 1) * LANES, &c);
            }
            d0 = lo, d1 = ix;
        }
        for (ix = 0; ix < w; ix++) {
            if (ix == d0) ix = d1;
            if (ix >= w) break;
            gf_v8f acc;
            gf_v8f_load(&acc, dr + ix * LANES);
            bwd_x_point(&acc, p + ix * LANES, rs, kv, ry, ix + g->pw, oh, ow);
            gf_v8f_store(dr + ix * LANES, &acc);
        }
    }
    deinterleave(dxt, hw, dx, hw);
}

/* dX with a stride of 2 (either way; sw is 1 or 2, any sh): each input position gathers the
 * taps whose dy position exists, in the generic kernel's order (rows i, then columns j). */
GF_INLINE void bwd_x_strided_body(const gf_conv_geom *g, const float *restrict dy,
                                  const float *restrict k, float *restrict dx,
                                  float *restrict work) {
    float *dyt = work, *dxt = work + g->oh * g->ow * LANES;
    const int64_t w = g->w, ow = g->ow, hw = g->h * w, shift = g->sw - 1;
    gf_v8f kv[TAPS], dv;
    tap_vectors(k, kv);
    interleave(dy, g->oh * ow, g->oh * ow, dyt);
    interleave(dx, hw, hw, dxt);
    for (int64_t iy = 0; iy < g->h; iy++) {
        const float *rows[3]; /* dy row of tap row i, or NULL */
        for (int64_t i = 0; i < 3; i++) {
            const int64_t t = iy + g->ph - i;
            rows[i] = t >= 0 && t % g->sh == 0 && t / g->sh < g->oh ? dyt + t / g->sh * ow * LANES
                                                                    : NULL;
        }
        for (int64_t ix = 0; ix < w; ix++) {
            gf_v8f acc;
            gf_v8f_load(&acc, dxt + (iy * w + ix) * LANES);
            for (int64_t i = 0; i < 3; i++) {
                if (!rows[i]) continue;
                for (int64_t j = 0; j < 3; j++) {
                    const int64_t t = ix + g->pw - j;
                    if (t < 0 || (t & shift) || (t >> shift) >= ow) continue;
                    gf_v8f_load(&dv, rows[i] + (t >> shift) * LANES);
                    acc += kv[i * 3 + j] * dv;
                }
            }
            gf_v8f_store(dxt + (iy * w + ix) * LANES, &acc);
        }
    }
    deinterleave(dxt, hw, dx, hw);
}

static void bwd_x_base(const gf_conv_geom *g, const float *dy, const float *k, float *dx,
                       float *work) {
    if (g->sh == 1 && g->sw == 1) bwd_x_body(g, dy, k, dx, work);
    else bwd_x_strided_body(g, dy, k, dx, work);
}
#if GF_VEC_AVX2
GF_TARGET_AVX2 static void bwd_x_avx2(const gf_conv_geom *g, const float *dy, const float *k,
                                      float *dx, float *work) {
    if (g->sh == 1 && g->sw == 1) bwd_x_body(g, dy, k, dx, work);
    else bwd_x_strided_body(g, dy, k, dx, work);
}
#endif

void gf_dwconv3x8_bwd_x(int level, const gf_conv_geom *g, const float *dy, const float *k,
                        float *dx, float *work) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        bwd_x_avx2(g, dy, k, dx, work);
        return;
    }
#endif
    (void)level;
    bwd_x_base(g, dy, k, dx, work);
}

/* ---- dW: dk[l][i, j] += sum over positions of x_l[...] dy_l[oy, ox] ------------------------ */

/* dW's products of one output position (dv) with its taps [i0, i1) x [j0, j1). */
GF_INLINE void bwd_w_point(gf_v8f *acc, const float *p, int64_t rs, const gf_v8f *dv,
                           int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    gf_v8f xv;
    for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < j1; j++) {
            gf_v8f_load(&xv, p + i * rs + j * LANES);
            acc[i * 3 + j] += xv * *dv;
        }
}

/* Output positions [lo, hi) of a row whose 9 taps all lie inside (p: tap (0, 0) of column lo,
 * d: dy at column lo): the 9 sums copied into locals for the run, so they stay in registers
 * (through acc, which the edge positions index, the compiler keeps them in memory). */
GF_INLINE void bwd_w_run(gf_v8f *acc, const float *p, int64_t rs, int64_t cs, const float *d,
                         int64_t n) {
    gf_v8f a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], a4 = acc[4], a5 = acc[5];
    gf_v8f a6 = acc[6], a7 = acc[7], a8 = acc[8], dv, x0, x1, x2;
    for (int64_t q = 0; q < n; q++, p += cs, d += LANES) {
        gf_v8f_load(&dv, d);
        gf_v8f_load(&x0, p);
        gf_v8f_load(&x1, p + LANES);
        gf_v8f_load(&x2, p + 2 * LANES);
        a0 += x0 * dv, a1 += x1 * dv, a2 += x2 * dv;
        gf_v8f_load(&x0, p + rs);
        gf_v8f_load(&x1, p + rs + LANES);
        gf_v8f_load(&x2, p + rs + 2 * LANES);
        a3 += x0 * dv, a4 += x1 * dv, a5 += x2 * dv;
        gf_v8f_load(&x0, p + 2 * rs);
        gf_v8f_load(&x1, p + 2 * rs + LANES);
        gf_v8f_load(&x2, p + 2 * rs + 2 * LANES);
        a6 += x0 * dv, a7 += x1 * dv, a8 += x2 * dv;
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3, acc[4] = a4, acc[5] = a5;
    acc[6] = a6, acc[7] = a7, acc[8] = a8;
}

GF_INLINE void bwd_w_body(const gf_conv_geom *g, const float *restrict x,
                          const float *restrict dy, double *restrict dk,
                          float *restrict work) {
    float *xt = work, *dyt = work + g->h * g->w * LANES;
    const int64_t w = g->w, ow = g->ow, rs = w * LANES, cs = g->sw * LANES;
    int64_t lo, hi;
    gf_v8f acc[TAPS];
    for (int t = 0; t < TAPS; t++) acc[t] = GF_V8F_ZERO;
    interleave(x, g->h * w, g->h * w, xt);
    interleave(dy, g->oh * ow, g->oh * ow, dyt);
    inner_cols(g, &lo, &hi);
    for (int64_t oy = 0; oy < g->oh; oy++) {
        int64_t i0, i1, j0, j1;
        const int64_t y0 = oy * g->sh - g->ph;
        const float *row = xt + (y0 * w - g->pw) * LANES;
        const float *dr = dyt + oy * ow * LANES;
        tap_range(y0, g->h, &i0, &i1);
        const bool inner = i0 == 0 && i1 == 3 && lo < hi;
        for (int64_t ox = 0; ox < ow; ox++) {
            if (inner && ox == lo) { /* positions in order: the sums' order is unchanged */
                bwd_w_run(acc, row + ox * cs, rs, cs, dr + ox * LANES, hi - lo);
                ox = hi - 1;
                continue;
            }
            gf_v8f dv;
            gf_v8f_load(&dv, dr + ox * LANES);
            tap_range(ox * g->sw - g->pw, w, &j0, &j1);
            bwd_w_point(acc, row + ox * cs, rs, &dv, i0, i1, j0, j1);
        }
    }
    for (int t = 0; t < TAPS; t++) {
        float s[LANES];
        gf_v8f_store(s, &acc[t]);
        for (int l = 0; l < LANES; l++) dk[l * TAPS + t] += (double)s[l];
    }
}

static void bwd_w_base(const gf_conv_geom *g, const float *x, const float *dy, double *dk,
                       float *work) {
    bwd_w_body(g, x, dy, dk, work);
}
#if GF_VEC_AVX2
GF_TARGET_AVX2 static void bwd_w_avx2(const gf_conv_geom *g, const float *x, const float *dy,
                                      double *dk, float *work) {
    bwd_w_body(g, x, dy, dk, work);
}
#endif

void gf_dwconv3x8_bwd_w(int level, const gf_conv_geom *g, const float *x, const float *dy,
                        double *dk, float *work) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        bwd_w_avx2(g, x, dy, dk, work);
        return;
    }
#endif
    (void)level;
    bwd_w_base(g, x, dy, dk, work);
}
