/* Winograd F(2x2, 3x3): each 2x2 block of outputs ("tile") of a 3x3, pad-1, stride-1
 * convolution is computed from the 4x4 input patch d around it as
 *     Y = A^T [ sum over input channels of (G g G^T) .* (B^T d B) ] A,
 * so the channel sum becomes 16 independent matrix products U_e [co, ci] x V_e [ci, tiles],
 * one per element e of the 4x4 transformed tile, with 16 multiplies per 4 outputs and input
 * channel instead of 36: 2.25x fewer multiplies than im2col + GEMM, at the cost of the input
 * and output transforms (additions only) and of slightly larger rounding errors.
 *
 * Tiles are numbered image by image, row by row (tile (i, ty, tx) is number
 * (i*th + ty)*tw + tx); a chunk of whole tile rows is transformed into V [16, ci, nt], the 16
 * products land in M [16, co, nt], and the output transform writes the chunk's outputs
 * straight into NCHW. Chunks are sized so that V and M stay in L2 between the three steps.
 *
 *     B^T = [1  0 -1  0]     G = [ 1    0    0 ]     A^T = [1  1  1  0]
 *           [0  1  1  0]         [ 1/2  1/2  1/2]           [0  1 -1 -1]
 *           [0 -1  1  0]         [ 1/2 -1/2  1/2]
 *           [0  1  0 -1]         [ 0    0    1 ]
 *
 * The transforms put consecutive tiles in the lanes of explicit 8-float vectors (vec.h) and
 * are compiled twice like the other kernels (portable and AVX2); they add and subtract in a
 * fixed order, so both copies agree bit for bit, and every output is computed by one thread
 * in an order that does not depend on the thread count. */
#include "kernels/winograd.h"
#include "kernels/vec.h"

#include "kernels/gemm.h"
#include <string.h>

/* When Winograd beats im2col + GEMM, measured at one thread (forward, and input gradient
 * alone, batch 16-64, 3x3 pad-1 layers on 1x1 to 56x56 images):
 *  - Fewer than 8 channels on either side lose: a product only 4 deep is mostly packing.
 *  - Images under 6x6 lose or tie: most of their tiles are padding (a 5x5 image computes
 *    36 outputs for 25), and the weight transform is amortised over few tiles.
 *  - For dX (dY's O channels in, C out) im2col's product is [9C, O] x [O, P], efficient even
 *    for small C, while Winograd's input transform runs over O planes for only C outputs
 *    each: with O >= 8C (8 -> 64, 16 -> 128) Winograd was 15-50% slower, at O = 5.3C 9%
 *    faster. The forward's im2col product [O, 9C] is the inefficient one when O is small,
 *    so it has no such limit (64 -> 8 channels: 1.8x faster). */
enum { MIN_CHANNELS = 8, MIN_SIZE = 6, MAX_DX_FAN = 8 };

static bool wino_shape(const gf_conv_geom *g) {
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->ph == 1 && g->pw == 1 &&
           g->dh == 1 && g->dw == 1 && g->groups == 1 && g->oh == g->h && g->ow == g->w &&
           g->h >= MIN_SIZE && g->w >= MIN_SIZE && g->c >= MIN_CHANNELS &&
           g->o >= MIN_CHANNELS;
}

bool gf_wino_fwd(const gf_conv_geom *g) { return wino_shape(g); }

bool gf_wino_dx(const gf_conv_geom *g) { return wino_shape(g) && g->o < MAX_DX_FAN * g->c; }

/* ---- vector helpers --------------------------------------------------------------------------- */

typedef int32_t v8i __attribute__((vector_size(32)));
#if defined(__clang__)
#define SHUF8(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUF8(a, b, ...) __builtin_shuffle(a, b, (v8i){__VA_ARGS__})
#endif
/* Even and odd elements of the 16 floats a, b; a, b interleaved (low and high halves). */
#define EVEN(a, b) SHUF8(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define ODD(a, b) SHUF8(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#define ZIP_LO(a, b) SHUF8(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define ZIP_HI(a, b) SHUF8(a, b, 4, 12, 5, 13, 6, 14, 7, 15)

/* Unit-stride passes over n positions run 8 at a time; when n is not a multiple of 8, the
 * last block is the one ending at n, which recomputes up to 7 positions identically (each
 * position's value depends only on the inputs, which the passes do not modify). Under 8
 * positions the scalar form of the same operations runs. */
static inline int64_t block_at(int64_t p, int64_t n) { return p + 8 <= n ? p : n - 8; }

/* ---- input transform -------------------------------------------------------------------------
 * One channel plane x [h, w], tile rows [ty0, ty0 + R), all tw tiles of each: V_e of the tile
 * at chunk position s = (ty - ty0) tw + tx goes to v[e * ldv + s].
 *
 * 1. The padded input rows the tiles touch (2 R + 2 of them, 0 outside the plane) are staged
 *    with their zero columns, so that the next step needs no bounds tests and may read past
 *    the last tile. All are staged before any is read: loads that straddle recent stores
 *    would stall on store forwarding.
 * 2. The row half of the transform (d B) of every staged row, 8 tiles at a time: patch
 *    column k of tiles tx..tx+7 is every other element from column 2 tx + k, split out of two
 *    8-float loads. The result goes to the position s of the tile whose patch starts at that
 *    row: rows 2 ty to E_j, rows 2 ty + 1 to O_j. A block past the row's last tile spills into
 *    the next row of the same array, which is written after it (or into slack at the end).
 * 3. The column half (B^T): the patch's last two rows, 2 (ty + 1) + {0, 1}, are those of the
 *    tile at s + tw, so it is one unit-stride pass over all R tw tiles. Tiles of different
 *    rows share the vector lanes, which matters on small images (7 tiles a row at 14x14).
 * buf: wino_in_floats(R, w) floats of per-thread scratch. */
static int64_t stage_width(int64_t w) { return ((w + 1) / 2 * 2 + 16 + 7) / 8 * 8; }
static int64_t wino_in_floats(int64_t R, int64_t w) {
    const int64_t tw = (w + 1) / 2;
    return 8 * ((R + 1) * tw + 8) + (2 * R + 2) * stage_width(w) + 16;
}

GF_INLINE void in_plane_body(const float *restrict x, int64_t h, int64_t w, int64_t ty0,
                             int64_t R, float *restrict v, int64_t ldv, float *restrict buf) {
    const int64_t tw = (w + 1) / 2, L = R * tw, Lh = (R + 1) * tw + 8, ws = stage_width(w);
    float *stage = buf + 8 * Lh; /* padded column pc (input column pc - 1) at [pc] */
    const gf_v8f zero = GF_V8F_ZERO;
    for (int64_t pr = 0; pr < 2 * R + 2; pr++) {
        const int64_t iy = 2 * ty0 + pr - 1;
        float *d = stage + pr * ws;
        if (iy < 0 || iy >= h) {
            for (int64_t c = 0; c < ws; c += 8) gf_v8f_store(d + c, &zero);
            continue;
        }
        const float *src = x + iy * w;
        /* zeros over columns w + 1 .. w + 16, which covers every column the row pass reads
         * (up to 2 tw + 15; a store past ws lands in the next row, staged after this one, or
         * in the slack at the end), then the row over columns 1..w, then column 0. Two
         * stores, not a loop: GCC turns a loop of them into a memset call per row. */
        gf_v8f_store(d + w + 1, &zero);
        gf_v8f_store(d + w + 9, &zero);
        if (w >= 8) {
            for (int64_t c = 0; c < w; c += 8) {
                gf_v8f t;
                gf_v8f_load(&t, src + block_at(c, w));
                gf_v8f_store(d + 1 + block_at(c, w), &t);
            }
        } else {
            for (int64_t c = 0; c < w; c++) d[1 + c] = src[c];
        }
        d[0] = 0.0f;
    }
    for (int64_t pr = 0; pr < 2 * R + 2; pr++) {
        const float *d = stage + pr * ws;
        float *hb = buf + (pr & 1) * 4 * Lh + (pr >> 1) * tw;
        for (int64_t tx = 0; tx < tw; tx += 8) {
            gf_v8f a, b, c, e;
            gf_v8f_load(&a, d + 2 * tx);
            gf_v8f_load(&b, d + 2 * tx + 8);
            gf_v8f_load(&c, d + 2 * tx + 2);
            gf_v8f_load(&e, d + 2 * tx + 10);
            const gf_v8f d0 = EVEN(a, b), d1 = ODD(a, b), d2 = EVEN(c, e), d3 = ODD(c, e);
            const gf_v8f h0 = d0 - d2, h1 = d1 + d2, h2 = d2 - d1, h3 = d1 - d3;
            gf_v8f_store(hb + tx, &h0);
            gf_v8f_store(hb + Lh + tx, &h1);
            gf_v8f_store(hb + 2 * Lh + tx, &h2);
            gf_v8f_store(hb + 3 * Lh + tx, &h3);
        }
    }
    for (int j = 0; j < 4; j++) {
        const float *e = buf + j * Lh, *o = buf + (4 + j) * Lh;
        float *v0 = v + j * ldv, *v1 = v + (4 + j) * ldv, *v2 = v + (8 + j) * ldv;
        float *v3 = v + (12 + j) * ldv;
        if (L < 8) {
            for (int64_t s = 0; s < L; s++) {
                v0[s] = e[s] - e[s + tw];
                v1[s] = o[s] + e[s + tw];
                v2[s] = e[s + tw] - o[s];
                v3[s] = o[s] - o[s + tw];
            }
            continue;
        }
        for (int64_t s0 = 0; s0 < L; s0 += 8) {
            const int64_t s = block_at(s0, L);
            gf_v8f e0, e1, o0, o1, r;
            gf_v8f_load(&e0, e + s);
            gf_v8f_load(&e1, e + s + tw);
            gf_v8f_load(&o0, o + s);
            gf_v8f_load(&o1, o + s + tw);
            r = e0 - e1;
            gf_v8f_store(v0 + s, &r);
            r = o0 + e1;
            gf_v8f_store(v1 + s, &r);
            r = e1 - o0;
            gf_v8f_store(v2 + s, &r);
            r = o0 - o1;
            gf_v8f_store(v3 + s, &r);
        }
    }
}

/* ---- output transform ------------------------------------------------------------------------
 * M_e of the tiles of rows [ty0, ty0 + R) at m[e * ldm + s] (s as above) -> their 2x2 outputs
 * in plane y [h, w], written as v + bias or added (y += v); the row and column past an odd h
 * or w are dropped. One unit-stride pass over all tiles computes the four outputs of each
 * (into buf, wino_out_floats), then a pass per output row interleaves the even and odd
 * columns, 8 or 4 tiles at a time while they fit in the row (a 4-tile block reads 4 more
 * floats than it uses: hence the slack in buf). */
static int64_t wino_out_floats(int64_t R, int64_t w) { return 4 * R * ((w + 1) / 2) + 8; }

GF_INLINE void out_tile(const float *m, int64_t ldm, int64_t s, float *y00, float *y01,
                        float *y10, float *y11) {
    float r0[4], r1[4];
    for (int j = 0; j < 4; j++) {
        const float m0 = m[j * ldm + s], m1 = m[(4 + j) * ldm + s];
        const float m2 = m[(8 + j) * ldm + s], m3 = m[(12 + j) * ldm + s];
        r0[j] = m0 + m1 + m2;
        r1[j] = m1 - m2 - m3;
    }
    y00[s] = r0[0] + r0[1] + r0[2];
    y01[s] = r0[1] - r0[2] - r0[3];
    y10[s] = r1[0] + r1[1] + r1[2];
    y11[s] = r1[1] - r1[2] - r1[3];
}

GF_INLINE void out_plane_body(const float *restrict m, int64_t ldm, int64_t h, int64_t w,
                              int64_t ty0, int64_t R, float bias, bool acc,
                              float *restrict y, float *restrict buf) {
    const int64_t tw = (w + 1) / 2, L = R * tw, pairs = w / 2;
    float *y00 = buf, *y01 = buf + L, *y10 = buf + 2 * L, *y11 = buf + 3 * L;
    if (L < 8) {
        for (int64_t s = 0; s < L; s++) out_tile(m, ldm, s, y00, y01, y10, y11);
    } else {
        for (int64_t s0 = 0; s0 < L; s0 += 8) {
            const int64_t s = block_at(s0, L);
            gf_v8f r0[4], r1[4], t;
            for (int j = 0; j < 4; j++) {
                gf_v8f m0, m1, m2, m3;
                gf_v8f_load(&m0, m + j * ldm + s);
                gf_v8f_load(&m1, m + (4 + j) * ldm + s);
                gf_v8f_load(&m2, m + (8 + j) * ldm + s);
                gf_v8f_load(&m3, m + (12 + j) * ldm + s);
                r0[j] = m0 + m1 + m2;
                r1[j] = m1 - m2 - m3;
            }
            t = r0[0] + r0[1] + r0[2];
            gf_v8f_store(y00 + s, &t);
            t = r0[1] - r0[2] - r0[3];
            gf_v8f_store(y01 + s, &t);
            t = r1[0] + r1[1] + r1[2];
            gf_v8f_store(y10 + s, &t);
            t = r1[1] - r1[2] - r1[3];
            gf_v8f_store(y11 + s, &t);
        }
    }
    for (int64_t q = 0; q < R; q++)
        for (int a = 0; a < 2; a++) {
            const int64_t oy = 2 * (ty0 + q) + a;
            if (oy >= h) break;
            const float *ye = (a ? y10 : y00) + q * tw, *yo = (a ? y11 : y01) + q * tw;
            float *dst = y + oy * w;
            int64_t tx = 0;
            for (; tx + 8 <= pairs; tx += 8) { /* the even and odd columns of 8 tiles */
                gf_v8f e, o, lo, hi;
                gf_v8f_load(&e, ye + tx);
                gf_v8f_load(&o, yo + tx);
                lo = ZIP_LO(e, o);
                hi = ZIP_HI(e, o);
                if (acc) {
                    gf_v8f old;
                    gf_v8f_load(&old, dst + 2 * tx);
                    lo = old + lo;
                    gf_v8f_load(&old, dst + 2 * tx + 8);
                    hi = old + hi;
                } else {
                    lo = lo + bias;
                    hi = hi + bias;
                }
                gf_v8f_store(dst + 2 * tx, &lo);
                gf_v8f_store(dst + 2 * tx + 8, &hi);
            }
            for (; tx + 4 <= pairs; tx += 4) { /* 4 tiles; lanes 4..7 of e and o unused */
                gf_v8f e, o, lo;
                gf_v8f_load(&e, ye + tx);
                gf_v8f_load(&o, yo + tx);
                lo = ZIP_LO(e, o);
                if (acc) {
                    gf_v8f old;
                    gf_v8f_load(&old, dst + 2 * tx);
                    lo = old + lo;
                } else {
                    lo = lo + bias;
                }
                gf_v8f_store(dst + 2 * tx, &lo);
            }
            if (acc) {
                for (; tx < pairs; tx++) {
                    dst[2 * tx] += ye[tx];
                    dst[2 * tx + 1] += yo[tx];
                }
                if (w & 1) dst[w - 1] += ye[pairs];
            } else {
                for (; tx < pairs; tx++) {
                    dst[2 * tx] = ye[tx] + bias;
                    dst[2 * tx + 1] = yo[tx] + bias;
                }
                if (w & 1) dst[w - 1] = ye[pairs] + bias;
            }
        }
}

static void in_plane_base(const float *x, int64_t h, int64_t w, int64_t ty0, int64_t R,
                          float *v, int64_t ldv, float *buf) {
    in_plane_body(x, h, w, ty0, R, v, ldv, buf);
}
static void out_plane_base(const float *m, int64_t ldm, int64_t h, int64_t w, int64_t ty0,
                           int64_t R, float bias, bool acc, float *y, float *buf) {
    out_plane_body(m, ldm, h, w, ty0, R, bias, acc, y, buf);
}
#if GF_VEC_AVX2
GF_TARGET_AVX2 static void in_plane_avx2(const float *x, int64_t h, int64_t w, int64_t ty0,
                                         int64_t R, float *v, int64_t ldv, float *buf) {
    in_plane_body(x, h, w, ty0, R, v, ldv, buf);
}
GF_TARGET_AVX2 static void out_plane_avx2(const float *m, int64_t ldm, int64_t h, int64_t w,
                                          int64_t ty0, int64_t R, float bias, bool acc,
                                          float *y, float *buf) {
    out_plane_body(m, ldm, h, w, ty0, R, bias, acc, y, buf);
}
#endif

static void in_plane(int level, const float *x, int64_t h, int64_t w, int64_t ty0, int64_t R,
                     float *v, int64_t ldv, float *buf) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        in_plane_avx2(x, h, w, ty0, R, v, ldv, buf);
        return;
    }
#endif
    (void)level;
    in_plane_base(x, h, w, ty0, R, v, ldv, buf);
}

static void out_plane(int level, const float *m, int64_t ldm, int64_t h, int64_t w,
                      int64_t ty0, int64_t R, float bias, bool acc, float *y, float *buf) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        out_plane_avx2(m, ldm, h, w, ty0, R, bias, acc, y, buf);
        return;
    }
#endif
    (void)level;
    out_plane_base(m, ldm, h, w, ty0, R, bias, acc, y, buf);
}

/* ---- weight transform ------------------------------------------------------------------------
 * U = G g G^T in double, rounded once: double costs nothing here (co ci 16 values per call)
 * and keeps the transform's own rounding out of U. Four input channels at a time in 4-lane
 * double vectors (a lone channel uses lane 0 of the same code): a scalar loop over pairs
 * took ~50 ns a pair, as long as the whole convolution on 4x4 images with 128 channels. */
typedef double v4d __attribute__((vector_size(32)));

/* Row oc of u [16, co, ci]: for input channel ic, tap t of the kernel is
 * g[ic * ps + t * ts] (ps, ts: the pair and tap strides of the layout, see weights()). */
GF_INLINE void weights_row_body(const float *restrict g, int64_t ps, int64_t ts, int64_t ci,
                                float *restrict u, int64_t lde) {
    for (int64_t ic = 0; ic < ci; ic += 4) {
        const int nl = ci - ic < 4 ? (int)(ci - ic) : 4;
        v4d k[9], t[4][3];
        for (int tap = 0; tap < 9; tap++)
            for (int l = 0; l < 4; l++)
                k[tap][l] = g[(ic + (l < nl ? l : 0)) * ps + tap * ts];
        for (int j = 0; j < 3; j++) {
            t[0][j] = k[j];
            t[1][j] = 0.5 * (k[j] + k[3 + j] + k[6 + j]);
            t[2][j] = 0.5 * (k[j] - k[3 + j] + k[6 + j]);
            t[3][j] = k[6 + j];
        }
        for (int i = 0; i < 4; i++) {
            const v4d r[4] = {t[i][0], 0.5 * (t[i][0] + t[i][1] + t[i][2]),
                              0.5 * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < nl; l++) u[(i * 4 + j) * lde + ic + l] = (float)r[j][l];
        }
    }
}

static void weights_row_base(const float *g, int64_t ps, int64_t ts, int64_t ci, float *u,
                             int64_t lde) {
    weights_row_body(g, ps, ts, ci, u, lde);
}
#if GF_VEC_AVX2
GF_TARGET_AVX2 static void weights_row_avx2(const float *g, int64_t ps, int64_t ts, int64_t ci,
                                            float *u, int64_t lde) {
    weights_row_body(g, ps, ts, ci, u, lde);
}
#endif

/* u [16, co, ci] from wt (layout as gf_wino_conv's): unflipped, wt [co, ci, 3, 3] read in
 * order; flipped, wt [ci, co, 3, 3] with each kernel's taps read backwards (the 180-degree
 * rotation). */
static void weights(gf_ctx *ctx, int level, int64_t ci, int64_t co, const float *wt, bool flip,
                    float *u) {
    const int64_t pairs = co * ci, ps = flip ? co * 9 : 9, ts = flip ? -1 : 1;
    (void)level;
#pragma omp parallel for num_threads(gf_threads_for(ctx, pairs * 64)) schedule(static)
    for (int64_t oc = 0; oc < co; oc++) {
        const float *g = flip ? wt + oc * 9 + 8 : wt + oc * ci * 9;
#if GF_VEC_AVX2
        if (level == GF_VEC_AVX2_LEVEL) {
            weights_row_avx2(g, ps, ts, ci, u + oc * ci, pairs);
            continue;
        }
#endif
        weights_row_base(g, ps, ts, ci, u + oc * ci, pairs);
    }
}

/* ---- driver ---------------------------------------------------------------------------------- */


/* The tile rows [*a, *e) of image i (global numbering) that fall in chunk [r0, r1). */
static void segment(int64_t r0, int64_t r1, int64_t i, int64_t th, int64_t *a, int64_t *e) {
    *a = r0 > i * th ? r0 : i * th;
    *e = r1 < (i + 1) * th ? r1 : (i + 1) * th;
}

bool gf_wino_conv(gf_ctx *ctx, int level, int64_t n, int64_t ci, int64_t co, int64_t h,
                  int64_t w, const float *x, const float *wt, bool flip, const float *b,
                  float *y, bool accumulate) {
    const int64_t th = (h + 1) / 2, tw = (w + 1) / 2, rows = n * th, hw = h * w;
    if (rows == 0 || tw == 0 || co == 0) return true;
    /* Tile rows per chunk: V and M (16 (ci + co) floats a tile) within the conv scratch
     * budget, which keeps them in L2 from the input transform through the products to the
     * output transform. With many channels U (16 co ci floats) outgrows L2 itself and every
     * chunk streams all of it through the 16 products (and OpenBLAS repacks it), so a chunk
     * then holds at least as much V and M as there is U (measured with 256 channels on 7x7:
     * 20% faster than the budget alone, which gave 32-tile products). A chunk is a run of tile
     * rows, image after image; the chunking never depends on the thread count. */
    int64_t floats = gf_conv_chunk_budget(ctx);
    if (floats < 16 * co * ci) floats = 16 * co * ci;
    int64_t rc = floats / (16 * (ci + co) * tw);
    if (rc < 1) rc = 1;
    if (rc > rows) rc = rows;
    const int64_t seg_max = rc < th ? rc : th; /* tile rows of one image within a chunk */
    const int64_t in_buf = wino_in_floats(seg_max, w), out_buf = wino_out_floats(seg_max, w);
    const int64_t per_thread = in_buf > out_buf ? in_buf : out_buf;
    const int nt_max = gf_threads_for(ctx, rc * tw * (ci + co) * 32);
    float *u = gf_scratch_f32(ctx, 16 * co * ci);
    float *v = u ? gf_scratch_f32(ctx, 16 * ci * rc * tw) : NULL;
    float *m = v ? gf_scratch_f32(ctx, 16 * co * rc * tw) : NULL;
    float *bufs = m ? gf_scratch_f32(ctx, nt_max * per_thread) : NULL;
    if (!bufs) return false;
    weights(ctx, level, ci, co, wt, flip, u);
    for (int64_t r0 = 0; r0 < rows; r0 += rc) {
        const int64_t r1 = rows - r0 < rc ? rows : r0 + rc, nt = (r1 - r0) * tw;
        const int64_t i0 = r0 / th, segs = (r1 - 1) / th + 1 - i0; /* images it touches */
        /* One parallel region per chunk, three work-shared loops: the input transform (one
         * task per channel and image, each writing its own part of V), the 16 products (one
         * task each: OpenBLAS runs single-threaded inside a parallel region, and these
         * [co, ci] x [ci, tiles] products are too small for its own threading to pay), the
         * output transform (one task per output channel and image). Every product is
         * computed by one thread whatever the count, so results do not depend on it. */
#pragma omp parallel num_threads(nt_max)
        {
            float *buf = bufs + gf_thread_index() * per_thread;
#pragma omp for schedule(static)
            for (int64_t t = 0; t < ci * segs; t++) {
                const int64_t c = t / segs, i = i0 + t % segs;
                int64_t a, e;
                segment(r0, r1, i, th, &a, &e);
                in_plane(level, x + (i * ci + c) * hw, h, w, a - i * th, e - a,
                         v + c * nt + (a - r0) * tw, ci * nt, buf);
            }
#pragma omp for schedule(static)
            for (int el = 0; el < 16; el++)
                gf_gemm(ctx, false, false, co, nt, ci, 1.0f, u + el * co * ci, ci, v + el * ci * nt,
                        nt, 0.0f, m + el * co * nt, nt);
#pragma omp for schedule(static)
            for (int64_t t = 0; t < co * segs; t++) {
                const int64_t oc = t / segs, i = i0 + t % segs;
                int64_t a, e;
                segment(r0, r1, i, th, &a, &e);
                out_plane(level, m + oc * nt + (a - r0) * tw, co * nt, h, w, a - i * th, e - a,
                          b ? b[oc] : 0.0f, accumulate, y + (i * co + oc) * hw, buf);
            }
        }
    }
    return true;
}
