/* Direct 3x3 depthwise kernels (MobileNet's): one plane, dilation 1, stride 1 or 2 across,
 * any stride down and any padding. Each is one C body compiled twice (portable and AVX2,
 * kernels/vec.h), vectorised over 8 output (or, for dX, input) columns at a time with the
 * 3x3 taps held in registers, so an output block is loaded and stored once instead of once
 * per tap as in the generic kernels of kernels/im2col.c. Columns too near the edges for a
 * whole block take a scalar path (or, for dX with stride 2, a masked block).
 *
 * The forward pass and dX do, per element, exactly the generic kernels' operations in their
 * order (start from the value already there, add k * x tap after tap in row-major order,
 * skipping taps that fall in the padding; no FMA), so they equal them to the bit. dW sums each
 * tap's products over the plane in 8 float lanes (block columns) plus one float for the edge
 * columns, added in double at the end: another order than the generic kernel's (which adds
 * row sums in double), the same at every thread count and level. */
#include "kernels/im2col.h"
#include "kernels/vec.h"

#include <string.h>

enum { LANES = 8, TAPS = 9 };

bool gf_dwconv3_fits(const gf_conv_geom *g) {
    return g->kh == 3 && g->kw == 3 && g->dh == 1 && g->dw == 1 && (g->sw == 1 || g->sw == 2) &&
           g->groups > 1 && g->c == g->groups;
}

/* 16 floats from p split into the even (*e) and odd (*o) positions; and back. */
GF_INLINE void split_pairs(const float *p, gf_v8f *e, gf_v8f *o) {
    gf_v8f a, b;
    gf_v8f_load(&a, p);
    gf_v8f_load(&b, p + LANES);
#if defined(__clang__)
    *e = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
    *o = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
#else
    *e = __builtin_shuffle(a, b, (gf_v8i){0, 2, 4, 6, 8, 10, 12, 14});
    *o = __builtin_shuffle(a, b, (gf_v8i){1, 3, 5, 7, 9, 11, 13, 15});
#endif
}

GF_INLINE void join_pairs(float *p, const gf_v8f *e, const gf_v8f *o) {
#if defined(__clang__)
    const gf_v8f a = __builtin_shufflevector(*e, *o, 0, 8, 1, 9, 2, 10, 3, 11);
    const gf_v8f b = __builtin_shufflevector(*e, *o, 4, 12, 5, 13, 6, 14, 7, 15);
#else
    const gf_v8f a = __builtin_shuffle(*e, *o, (gf_v8i){0, 8, 1, 9, 2, 10, 3, 11});
    const gf_v8f b = __builtin_shuffle(*e, *o, (gf_v8i){4, 12, 5, 13, 6, 14, 7, 15});
#endif
    gf_v8f_store(p, &a);
    gf_v8f_store(p + LANES, &b);
}

/* 8 inputs of stride sw from p: p[0], p[sw], ..., p[7 sw] (reads p[0..8 sw)). */
GF_INLINE void load_cols(gf_v8f *v, const float *p, int64_t sw) {
    if (sw == 1) {
        gf_v8f_load(v, p);
        return;
    }
    gf_v8f odd; /* unused: the compiler drops its shuffle */
    split_pairs(p, v, &odd);
}

/* The first output column whose three taps lie inside the input, and the end of the block
 * starts whose loads (load_cols at every tap) stay inside a row of width w. */
static void block_range(const gf_conv_geom *g, int64_t *first, int64_t *end) {
    const int64_t sw = g->sw, pw = g->pw;
    int64_t a = (pw + sw - 1) / sw;
    /* block at ox reads input columns [ox sw - pw, ox sw - pw + 2 + 8 sw) */
    int64_t e = g->w - 2 - LANES * sw + pw;
    e = e >= 0 ? e / sw + 1 : 0; /* block starts ox with ox sw <= w - 2 - 8 sw + pw */
    if (e > g->ow - LANES + 1) e = g->ow - LANES + 1;
    if (a > g->ow) a = g->ow;
    *first = a;
    *end = e < a ? a : e; /* no block: [first, end) empty */
}

/* ---- forward: y += x (*) k ------------------------------------------------------------------ */

/* Outputs [ox0, ox1) of row oy near the edges, one by one: the generic kernel's operations. */
GF_INLINE void fwd_points(const gf_conv_geom *g, const float *x, const float *k, int64_t oy,
                          int64_t ox0, int64_t ox1, float *yr) {
    for (int64_t ox = ox0; ox < ox1; ox++) {
        float acc = yr[ox];
        for (int64_t i = 0; i < 3; i++) {
            int64_t iy = oy * g->sh - g->ph + i;
            if (iy < 0 || iy >= g->h) continue;
            for (int64_t j = 0; j < 3; j++) {
                int64_t ix = ox * g->sw - g->pw + j;
                if (ix >= 0 && ix < g->w) acc += k[i * 3 + j] * x[iy * g->w + ix];
            }
        }
        yr[ox] = acc;
    }
}

/* Small planes (most columns near an edge): each input row copied once into a row with pw
 * zeros in front and enough behind for whole blocks, then every block of 8 outputs vectorised;
 * in blocks that reach an edge each tap is added only in the lanes where it lies inside the
 * input (a bitwise select), so every output still gets the generic kernel's operations. */
enum { SMALL_FLOATS = 4096, SMALL_BLOCKS = 8 };

static bool small_plane(const gf_conv_geom *g) {
    const int64_t nb = (g->ow + LANES - 1) / LANES, wp = nb * LANES * g->sw + 2;
    return nb <= SMALL_BLOCKS && g->pw <= 2 && g->h * wp <= SMALL_FLOATS;
}

/* acc += the taps of one block of 8 outputs: rows[i] (NULL for a row in the padding) points
 * at the block's first input column in input row i; kv holds the 9 weights broadcast. */
GF_INLINE void fwd_taps(gf_v8f *acc, const float *const *rows, const gf_v8f *kv, int64_t sw) {
    gf_v8f xv;
    for (int64_t i = 0; i < 3; i++) {
        if (!rows[i]) continue;
        for (int64_t j = 0; j < 3; j++) {
            load_cols(&xv, rows[i] + j, sw);
            *acc += kv[i * 3 + j] * xv;
        }
    }
}

/* The same where tap j may lie in the padding for some lanes: added only where m[j] is set. */
GF_INLINE void fwd_taps_masked(gf_v8f *acc, const float *const *rows, const gf_v8f *kv,
                               int64_t sw, const gf_v8i *m) {
    gf_v8f xv, t;
    for (int64_t i = 0; i < 3; i++) {
        if (!rows[i]) continue;
        for (int64_t j = 0; j < 3; j++) {
            load_cols(&xv, rows[i] + j, sw);
            t = *acc + kv[i * 3 + j] * xv;
            gf_v8f_select(acc, &m[j], &t, acc);
        }
    }
}

GF_INLINE void fwd_small(const gf_conv_geom *g, const float *restrict x,
                         const float *restrict k, float *restrict y) {
    const int64_t sw = g->sw, ow = g->ow, nb = (ow + LANES - 1) / LANES;
    const int64_t wp = nb * LANES * sw + 2;
    float xp[SMALL_FLOATS], yb[LANES];
    gf_v8i m[SMALL_BLOCKS][3];
    gf_v8f kv[TAPS];
    bool full[SMALL_BLOCKS];
    for (int t = 0; t < TAPS; t++) kv[t] = GF_V8F_ZERO + k[t];
    for (int64_t r = 0; r < g->h; r++) { /* wp >= pw + w: blocks reach past the row's end */
        float *dst = xp + r * wp;
        memset(dst, 0, sizeof(float) * (size_t)g->pw);
        memcpy(dst + g->pw, x + r * g->w, sizeof(float) * (size_t)g->w);
        memset(dst + g->pw + g->w, 0, sizeof(float) * (size_t)(wp - g->pw - g->w));
    }
    for (int64_t b = 0; b < nb; b++) {
        full[b] = true;
        for (int64_t j = 0; j < 3; j++)
            for (int64_t l = 0; l < LANES; l++) {
                const int64_t ix = (b * LANES + l) * sw - g->pw + j;
                m[b][j][l] = ix >= 0 && ix < g->w ? -1 : 0;
                full[b] &= m[b][j][l] != 0 || b * LANES + l >= ow;
            }
    }
    for (int64_t oy = 0; oy < g->oh; oy++) {
        float *yr = y + oy * ow;
        const float *rows[3];
        for (int64_t i = 0; i < 3; i++) {
            const int64_t iy = oy * g->sh - g->ph + i;
            rows[i] = iy >= 0 && iy < g->h ? xp + iy * wp : NULL;
        }
        for (int64_t b = 0; b < nb; b++) {
            const int64_t ox0 = b * LANES, n = ow - ox0 < LANES ? ow - ox0 : LANES;
            const float *br[3];
            for (int64_t i = 0; i < 3; i++) br[i] = rows[i] ? rows[i] + ox0 * sw : NULL;
            gf_v8f acc = GF_V8F_ZERO;
            if (n == LANES) gf_v8f_load(&acc, yr + ox0);
            else memcpy(&acc, yr + ox0, sizeof(float) * (size_t)n);
            if (full[b]) fwd_taps(&acc, br, kv, sw);
            else fwd_taps_masked(&acc, br, kv, sw, m[b]);
            if (n == LANES) {
                gf_v8f_store(yr + ox0, &acc);
                continue;
            }
            gf_v8f_store(yb, &acc);
            memcpy(yr + ox0, yb, sizeof(float) * (size_t)n);
        }
    }
}

GF_INLINE void fwd_body(const gf_conv_geom *g, const float *restrict x, const float *restrict k,
                        float *restrict y) {
    const int64_t ow = g->ow, sw = g->sw;
    if (small_plane(g)) {
        fwd_small(g, x, k, y);
        return;
    }
    int64_t first, end;
    block_range(g, &first, &end);
    gf_v8f kv[TAPS];
    for (int t = 0; t < TAPS; t++) kv[t] = GF_V8F_ZERO + k[t];
    for (int64_t oy = 0; oy < g->oh; oy++) {
        float *yr = y + oy * ow;
        const float *br[3];
        int64_t row0[3]; /* input row i's first element, -1 for a row in the padding */
        for (int64_t i = 0; i < 3; i++) {
            const int64_t iy = oy * g->sh - g->ph + i;
            row0[i] = iy >= 0 && iy < g->h ? iy * g->w : -1;
        }
        fwd_points(g, x, k, oy, 0, first, yr);
        int64_t ox = first;
        for (; ox < end; ox += LANES) {
            gf_v8f acc;
            gf_v8f_load(&acc, yr + ox);
            for (int64_t i = 0; i < 3; i++) br[i] = row0[i] >= 0 ? x + row0[i] + ox * sw - g->pw : NULL;
            fwd_taps(&acc, br, kv, sw);
            gf_v8f_store(yr + ox, &acc);
        }
        fwd_points(g, x, k, oy, ox, ow, yr);
    }
}

static void fwd_base(const gf_conv_geom *g, const float *x, const float *k, float *y) {
    fwd_body(g, x, k, y);
}
#if GF_VEC_AVX2
GF_TARGET_AVX2 static void fwd_avx2(const gf_conv_geom *g, const float *x, const float *k,
                                    float *y) {
    fwd_body(g, x, k, y);
}
#endif

void gf_dwconv3_plane(int level, const gf_conv_geom *g, const float *x, const float *k,
                      float *y) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        fwd_avx2(g, x, k, y);
        return;
    }
#endif
    (void)level;
    fwd_base(g, x, k, y);
}

/* ---- dX (stride 1 both ways): dx[iy, ix] += k[i, j] dy[iy + ph - i, ix + pw - j] --------- */

bool gf_dwconv3_bwd_x_fits(const gf_conv_geom *g) {
    return gf_dwconv3_fits(g) && (g->sw == 2 || g->sh == 1);
}

GF_INLINE float bwd_x_point(const gf_conv_geom *g, const float *dy, const float *k, int64_t iy,
                            int64_t ix, float acc) {
    for (int64_t i = 0; i < 3; i++) {
        int64_t oy = iy + g->ph - i;
        if (oy < 0 || oy >= g->oh) continue;
        for (int64_t j = 0; j < 3; j++) {
            int64_t ox = ix + g->pw - j;
            if (ox >= 0 && ox < g->ow) acc += k[i * 3 + j] * dy[oy * g->ow + ox];
        }
    }
    return acc;
}

GF_INLINE void bwd_x_body(const gf_conv_geom *g, const float *restrict dy,
                          const float *restrict k, float *restrict dx) {
    const int64_t w = g->w, ow = g->ow, pw = g->pw;
    /* a block at ix reads dy columns [ix + pw - 2, ix + pw + 8) */
    int64_t first = 2 - pw > 0 ? 2 - pw : 0, end = ow - LANES - pw + 1;
    if (first > w) first = w;
    if (end > w - LANES + 1) end = w - LANES + 1;
    if (end < first) end = first;
    for (int64_t iy = 0; iy < g->h; iy++) {
        float *dr = dx + iy * w;
        int64_t ix = 0;
        for (; ix < first; ix++) dr[ix] = bwd_x_point(g, dy, k, iy, ix, dr[ix]);
        for (; ix < end; ix += LANES) {
            gf_v8f acc, dv;
            gf_v8f_load(&acc, dr + ix);
            for (int64_t i = 0; i < 3; i++) {
                int64_t oy = iy + g->ph - i;
                if (oy < 0 || oy >= g->oh) continue;
                const float *yr = dy + oy * ow + ix + pw;
                for (int64_t j = 0; j < 3; j++) {
                    gf_v8f_load(&dv, yr - j);
                    acc += k[i * 3 + j] * dv;
                }
            }
            gf_v8f_store(dr + ix, &acc);
        }
        for (; ix < w; ix++) dr[ix] = bwd_x_point(g, dy, k, iy, ix, dr[ix]);
    }
}

static void bwd_x_base(const gf_conv_geom *g, const float *dy, const float *k, float *dx) {
    bwd_x_body(g, dy, k, dx);
}
#if GF_VEC_AVX2
GF_TARGET_AVX2 static void bwd_x_avx2(const gf_conv_geom *g, const float *dy, const float *k,
                                      float *dx) {
    bwd_x_body(g, dy, k, dx);
}
#endif

/* ---- dX, stride 2 across (any stride down): a dx row's columns split by parity ----------- */

/* With sw = 2, dx column 2u - pw (e) takes tap j = 0 from dy column u and tap j = 2 from column
 * u - 1; column 2u + 1 - pw (o) takes tap j = 1 from column u. A block of 8 consecutive u is 16
 * dx columns: split into e and o, given their taps in the generic kernel's order (rows i
 * ascending, then j), and joined back. */

/* The dy rows that tap rows 0-2 of dx row iy read (NULL: none at that tap). */
GF_INLINE void s2_tap_rows(const gf_conv_geom *g, const float *dy, int64_t iy,
                           const float **rows) {
    for (int64_t i = 0; i < 3; i++) {
        const int64_t t = iy + g->ph - i;
        rows[i] = t >= 0 && t % g->sh == 0 && t / g->sh < g->oh ? dy + t / g->sh * g->ow : NULL;
    }
}

/* Block u0 (dy columns u0 - 1 .. u0 + 8 exist, as do dx columns 2 u0 - pw .. + 16): dst is the
 * dx row at column 2 u0 - pw; only lanes set in m get their taps when masked. */
GF_INLINE void s2_block(const float *const *rows, const gf_v8f *kv, int64_t u0, float *dst,
                        bool masked, const gf_v8i *m) {
    gf_v8f e, o, a, b, se, so;
    split_pairs(dst, &e, &o);
    for (int64_t i = 0; i < 3; i++) {
        if (!rows[i]) continue;
        gf_v8f_load(&a, rows[i] + u0);
        gf_v8f_load(&b, rows[i] + u0 - 1);
        se = e + kv[i * 3] * a;
        se += kv[i * 3 + 2] * b;
        so = o + kv[i * 3 + 1] * a;
        if (masked) {
            gf_v8f_select(&e, m, &se, &e);
            gf_v8f_select(&o, m, &so, &o);
        } else {
            e = se, o = so;
        }
    }
    join_pairs(dst, &e, &o);
}

/* dx columns [ix0, ix1) of a row one by one, from its tap rows: the generic kernel's
 * operations. */
GF_INLINE void s2_points(const gf_conv_geom *g, const float *const *rows, const float *k,
                         int64_t ix0, int64_t ix1, float *dr) {
    for (int64_t ix = ix0 < 0 ? 0 : ix0; ix < ix1 && ix < g->w; ix++) {
        float acc = dr[ix];
        for (int64_t i = 0; i < 3; i++) {
            if (!rows[i]) continue;
            for (int64_t j = 0; j < 3; j++) {
                const int64_t s = ix + g->pw - j;
                if (s >= 0 && !(s & 1) && s / 2 < g->ow) acc += k[i * 3 + j] * rows[i][s / 2];
            }
        }
        dr[ix] = acc;
    }
}

/* The first and last block starts u whose dy columns u - 1 .. u + 8 and dx columns 2 u - pw ..
 * + 16 all exist (none when *u_last < *u_in). */
static void s2_block_span(const gf_conv_geom *g, int64_t *u_in, int64_t *u_last) {
    const int64_t u_w = g->w + g->pw - 2 * LANES;
    *u_in = (g->pw + 1) / 2 > 1 ? (g->pw + 1) / 2 : 1;
    *u_last = g->ow - LANES;
    if ((u_w >= 0 ? u_w / 2 : -1) < *u_last) *u_last = u_w >= 0 ? u_w / 2 : -1;
}

/* Per row: the columns of u < u_in one by one, whole blocks from u_in, then the block at the
 * last start that fits with the lanes done already masked off, and any column left one by one.
 * At least one block fits (s2_block_span). */
GF_INLINE void bwd_x_s2_body(const gf_conv_geom *g, const float *restrict dy,
                             const float *restrict k, float *restrict dx) {
    const int64_t w = g->w, pw = g->pw, ow = g->ow;
    int64_t u_in, u_last;
    s2_block_span(g, &u_in, &u_last);
    const gf_v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
    gf_v8f kv[TAPS];
    for (int t = 0; t < TAPS; t++) kv[t] = GF_V8F_ZERO + k[t];
    for (int64_t iy = 0; iy < g->h; iy++) {
        float *dr = dx + iy * w;
        const float *rows[3];
        s2_tap_rows(g, dy, iy, rows);
        if (!rows[0] && !rows[1] && !rows[2]) continue;
        s2_points(g, rows, k, 0, 2 * u_in - pw, dr);
        int64_t u = u_in;
        for (; u <= u_last; u += LANES) s2_block(rows, kv, u, dr + 2 * u - pw, false, NULL);
        /* lanes [u, u_end) of the block at u_last: those not done yet whose dy column exists */
        int64_t u_end = u_last + LANES < ow ? u_last + LANES : ow;
        if (u < u_end) {
            const gf_v8i m = (lane >= (gf_v8i){0} + (int)(u - u_last)) &
                             (lane < (gf_v8i){0} + (int)(u_end - u_last));
            s2_block(rows, kv, u_last, dr + 2 * u_last - pw, true, &m);
        } else {
            u_end = u;
        }
        s2_points(g, rows, k, 2 * u_end - pw, w, dr);
    }
}

static void bwd_x_s2_base(const gf_conv_geom *g, const float *dy, const float *k, float *dx) {
    bwd_x_s2_body(g, dy, k, dx);
}
#if GF_VEC_AVX2
GF_TARGET_AVX2 static void bwd_x_s2_avx2(const gf_conv_geom *g, const float *dy, const float *k,
                                         float *dx) {
    bwd_x_s2_body(g, dy, k, dx);
}
#endif

void gf_dwconv3_plane_bwd_x(int level, const gf_conv_geom *g, const float *dy, const float *k,
                            float *dx) {
    if (g->sw == 2) {
        int64_t u_in, u_last;
        s2_block_span(g, &u_in, &u_last);
        if (u_last < u_in) { /* too narrow for a block: the generic kernel is as fast */
            gf_dwconv_plane_bwd_x(g, dy, k, dx);
            return;
        }
    }
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        if (g->sw == 2) bwd_x_s2_avx2(g, dy, k, dx);
        else bwd_x_avx2(g, dy, k, dx);
        return;
    }
#endif
    (void)level;
    if (g->sw == 2) bwd_x_s2_base(g, dy, k, dx);
    else bwd_x_base(g, dy, k, dx);
}

/* ---- dW: dk[i, j] += sum over oy, ox of x[oy sh - ph + i, ox sw - pw + j] dy[oy, ox] ------- */

/* The scalar products of output columns [ox0, ox1) of row oy, added tap by tap into e. */
GF_INLINE void bwd_w_edge(const gf_conv_geom *g, const float *x, const float *dyr, int64_t oy,
                          int64_t ox0, int64_t ox1, float *e) {
    for (int64_t ox = ox0; ox < ox1; ox++)
        for (int64_t i = 0; i < 3; i++) {
            int64_t iy = oy * g->sh - g->ph + i;
            if (iy < 0 || iy >= g->h) continue;
            for (int64_t j = 0; j < 3; j++) {
                int64_t ix = ox * g->sw - g->pw + j;
                if (ix >= 0 && ix < g->w) e[i * 3 + j] += x[iy * g->w + ix] * dyr[ox];
            }
        }
}

GF_INLINE void bwd_w_body(const gf_conv_geom *g, const float *restrict x,
                          const float *restrict dy, double *restrict dk) {
    const int64_t sw = g->sw;
    int64_t first, end;
    block_range(g, &first, &end);
    gf_v8f acc[TAPS], xv, dv;
    float e[TAPS] = {0};
    for (int t = 0; t < TAPS; t++) acc[t] = GF_V8F_ZERO;
    for (int64_t oy = 0; oy < g->oh; oy++) {
        const float *dyr = dy + oy * g->ow;
        int64_t ox = first;
        for (; ox < end; ox += LANES) {
            gf_v8f_load(&dv, dyr + ox);
            for (int64_t i = 0; i < 3; i++) {
                int64_t iy = oy * g->sh - g->ph + i;
                if (iy < 0 || iy >= g->h) continue;
                const float *xr = x + iy * g->w + ox * sw - g->pw;
                for (int64_t j = 0; j < 3; j++) {
                    load_cols(&xv, xr + j, sw);
                    acc[i * 3 + j] += xv * dv;
                }
            }
        }
        bwd_w_edge(g, x, dyr, oy, 0, first, e);
        bwd_w_edge(g, x, dyr, oy, ox, g->ow, e);
    }
    for (int t = 0; t < TAPS; t++) dk[t] += (double)gf_v8f_sum(&acc[t]) + (double)e[t];
}

static void bwd_w_base(const gf_conv_geom *g, const float *x, const float *dy, double *dk) {
    bwd_w_body(g, x, dy, dk);
}
#if GF_VEC_AVX2
GF_TARGET_AVX2 static void bwd_w_avx2(const gf_conv_geom *g, const float *x, const float *dy,
                                      double *dk) {
    bwd_w_body(g, x, dy, dk);
}
#endif

void gf_dwconv3_plane_bwd_w(int level, const gf_conv_geom *g, const float *x, const float *dy,
                            double *dk) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        bwd_w_avx2(g, x, dy, dk);
        return;
    }
#endif
    (void)level;
    bwd_w_base(g, x, dy, dk);
}
