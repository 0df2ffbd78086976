/* Direct kernels for a convolution with one input channel and one group (the first layer of
 * a grayscale-image network). Its column matrix is only kh*kw rows deep: a GEMM that thin
 * spends its time packing, and the chunked path around it reorders the whole output. Here
 * each image's small column matrix (built by gf_im2col_plane, in cache) feeds register-
 * blocked loops: 4 output channels x 8 positions per step, so 4 independent accumulator
 * chains share every load of the columns. */
#include "kernels/im2col.h"
#include "kernels/vec.h"

enum { LANES = 8, OCB = 4 };

bool gf_conv_c1_direct(const gf_conv_geom *g) {
    return g->c == 1 && g->groups == 1 && g->kh * g->kw <= GF_CONV_C1_MAX_TAPS;
}

/* ---- forward ------------------------------------------------------------------------------
 * y[oc, p] = (sum over taps t in order of k[oc, t] col[t, p], from 0) + b[oc]: every element,
 * in a vector lane or not, in that order. A last partial block of positions is computed as
 * the block ending at P (recomputing a few positions identically). */

GF_INLINE void fwd_block(const float *restrict col, int64_t P, int64_t kk,
                         const float *const *kq, const float *bq, int64_t nq, int64_t p,
                         float *restrict y) {
    gf_v8f acc[OCB], s;
    for (int q = 0; q < OCB; q++) acc[q] = GF_V8F_ZERO;
    for (int64_t t = 0; t < kk; t++) {
        gf_v8f_load(&s, col + t * P + p);
        for (int q = 0; q < OCB; q++) acc[q] += kq[q][t] * s;
    }
    for (int q = 0; q < nq; q++) {
        s = acc[q] + bq[q];
        gf_v8f_store(y + q * P + p, &s);
    }
}

GF_INLINE void fwd_body(const gf_conv_geom *g, const float *restrict col,
                        const float *restrict k, const float *restrict b, float *restrict y) {
    const int64_t P = g->oh * g->ow, kk = g->kh * g->kw, o = g->o;
    for (int64_t oc0 = 0; oc0 < o; oc0 += OCB) {
        const int64_t nq = o - oc0 < OCB ? o - oc0 : OCB;
        const float *kq[OCB];
        float bq[OCB];
        for (int q = 0; q < OCB; q++) { /* channels past the last repeat it, unstored */
            int64_t oc = oc0 + (q < nq ? q : nq - 1);
            kq[q] = k + oc * kk;
            bq[q] = b ? b[oc] : 0.0f;
        }
        float *yo = y + oc0 * P;
        if (P < LANES) {
            for (int q = 0; q < nq; q++)
                for (int64_t p = 0; p < P; p++) {
                    float a = 0.0f;
                    for (int64_t t = 0; t < kk; t++) a += kq[q][t] * col[t * P + p];
                    yo[q * P + p] = a + bq[q];
                }
            continue;
        }
        int64_t p = 0;
        for (; p + LANES <= P; p += LANES) fwd_block(col, P, kk, kq, bq, nq, p, yo);
        if (p < P) fwd_block(col, P, kk, kq, bq, nq, P - LANES, yo);
    }
}

static void fwd_base(const gf_conv_geom *g, const float *col, const float *k, const float *b,
                     float *y) {
    fwd_body(g, col, k, b, y);
}
#if GF_VEC_AVX2
GF_TARGET_AVX2 static void fwd_avx2(const gf_conv_geom *g, const float *col, const float *k,
                                    const float *b, float *y) {
    fwd_body(g, col, k, b, y);
}
#endif

void gf_conv_c1_fwd(int level, const gf_conv_geom *g, const float *col, const float *k,
                    const float *b, float *y) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        fwd_avx2(g, col, k, b, y);
        return;
    }
#endif
    (void)level;
    fwd_base(g, col, k, b, y);
}

/* ---- weight and bias gradients of one image --------------------------------------------------
 * part[oc, t] = sum over p of dy[oc, p] col[t, p] and part[oc, kk] = sum of dy[oc, :], each in
 * 8 float lanes (lane j takes p = 8 m + j, the tail too) summed pairwise at the end: the
 * result depends only on the data, not on threads or the dispatch level. */

GF_INLINE void bwd_body(const gf_conv_geom *g, const float *restrict col,
                        const float *restrict dy, float *restrict part) {
    const int64_t P = g->oh * g->ow, kk = g->kh * g->kw, o = g->o, P8 = P / LANES * LANES;
    for (int64_t oc0 = 0; oc0 < o; oc0 += OCB) {
        const int64_t nq = o - oc0 < OCB ? o - oc0 : OCB;
        const float *dq[OCB];
        for (int q = 0; q < OCB; q++) dq[q] = dy + (oc0 + (q < nq ? q : nq - 1)) * P;
        for (int64_t t = 0; t <= kk; t++) { /* t == kk: the bias sums */
            gf_v8f acc[OCB], sv, dv;
            for (int q = 0; q < OCB; q++) acc[q] = GF_V8F_ZERO;
            if (t < kk) {
                const float *s = col + t * P;
                for (int64_t p = 0; p < P8; p += LANES) {
                    gf_v8f_load(&sv, s + p);
                    for (int q = 0; q < OCB; q++) {
                        gf_v8f_load(&dv, dq[q] + p);
                        acc[q] += dv * sv;
                    }
                }
                for (int64_t j = 0; P8 + j < P; j++)
                    for (int q = 0; q < OCB; q++) acc[q][j] += dq[q][P8 + j] * s[P8 + j];
            } else {
                for (int64_t p = 0; p < P8; p += LANES)
                    for (int q = 0; q < OCB; q++) {
                        gf_v8f_load(&dv, dq[q] + p);
                        acc[q] += dv;
                    }
                for (int64_t j = 0; P8 + j < P; j++)
                    for (int q = 0; q < OCB; q++) acc[q][j] += dq[q][P8 + j];
            }
            for (int q = 0; q < nq; q++) part[(oc0 + q) * (kk + 1) + t] = gf_v8f_sum(&acc[q]);
        }
    }
}

static void bwd_base(const gf_conv_geom *g, const float *col, const float *dy, float *part) {
    bwd_body(g, col, dy, part);
}
#if GF_VEC_AVX2
GF_TARGET_AVX2 static void bwd_avx2(const gf_conv_geom *g, const float *col, const float *dy,
                                    float *part) {
    bwd_body(g, col, dy, part);
}
#endif

void gf_conv_c1_bwd_w(int level, const gf_conv_geom *g, const float *col, const float *dy,
                      float *part) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        bwd_avx2(g, col, dy, part);
        return;
    }
#endif
    (void)level;
    bwd_base(g, col, dy, part);
}
