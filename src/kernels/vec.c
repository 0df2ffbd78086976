/* Vectorised elementwise kernels shared by ops and data (see vec.h): the CPU dispatch level,
 * the uint8 -> float batch conversion and a deterministic lane-parallel sum. */
#include "kernels/vec.h"

#include <math.h>
#include <stdatomic.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <string.h>

int gf_vec_level(void) {
#if GF_VEC_AVX2
    static _Atomic int level = -1; /* threads racing here all store the same value */
    int l = atomic_load_explicit(&level, memory_order_relaxed);
    if (l < 0) {
        __builtin_cpu_init();
        l = __builtin_cpu_supports("avx2") ? GF_VEC_AVX2_LEVEL : GF_VEC_PORTABLE;
        atomic_store_explicit(&level, l, memory_order_relaxed);
    }
    return l;
#else
    return GF_VEC_PORTABLE;
#endif
}

/* ---- uint8 -> float ------------------------------------------------------------------------ */

GF_INLINE void u8_to_f32_body(const uint8_t *restrict src, float *restrict dst, int64_t n,
                              float mean, float std) {
    if (mean == 0.0f && std == 1.0f) {
        for (int64_t i = 0; i < n; i++) dst[i] = (float)src[i] / 255.0f;
    } else {
        for (int64_t i = 0; i < n; i++) dst[i] = ((float)src[i] / 255.0f - mean) / std;
    }
}

static void u8_to_f32_base(const uint8_t *src, float *dst, int64_t n, float mean, float std) {
    u8_to_f32_body(src, dst, n, mean, std);
}

#if GF_VEC_AVX2
GF_TARGET_AVX2 static void u8_to_f32_avx2(const uint8_t *src, float *dst, int64_t n, float mean,
                                          float std) {
    u8_to_f32_body(src, dst, n, mean, std);
}
#endif

void gf_vec_u8_to_f32(int level, const uint8_t *src, float *dst, int64_t n, float mean,
                      float std) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        u8_to_f32_avx2(src, dst, n, mean, std);
        return;
    }
#endif
    (void)level;
    u8_to_f32_base(src, dst, n, mean, std);
}

/* ---- batch norm in evaluation mode ----------------------------------------------------------- */

typedef double gf_v4d __attribute__((vector_size(32)));
typedef float gf_v4f __attribute__((vector_size(16)));
typedef int32_t gf_v4i __attribute__((vector_size(16)));

/* Lanes of a where m is set, else of b (bitwise). */
GF_INLINE gf_v4f select4(gf_v4i m, gf_v4f a, gf_v4f b) {
    gf_v4i ai, bi;
    memcpy(&ai, &a, sizeof ai);
    memcpy(&bi, &b, sizeof bi);
    ai = (ai & m) | (bi & ~m);
    memcpy(&a, &ai, sizeof a);
    return a;
}

/* Element by element (v - m) a + c, clamped: 8 lanes at a time, then 4, then 1 (the same
 * operations on each element, so the same bits at every width). */
GF_INLINE void bn_eval_body(const float *x, float *y, int64_t n, double mu, double is,
                            double w, double b, float lo, float hi) {
    const float m = (float)mu, a = (float)(is * w), c = (float)b;
    int64_t i = 0;
    const gf_v8f lo8 = GF_V8F_ZERO + lo, hi8 = GF_V8F_ZERO + hi;
    for (; i + 8 <= n; i += 8) {
        gf_v8f v;
        gf_v8f_load(&v, x + i);
        v = (v - m) * a + c;
        const gf_v8i below = v < lo8;
        gf_v8f_select(&v, &below, &lo8, &v);
        const gf_v8i above = v > hi8;
        gf_v8f_select(&v, &above, &hi8, &v);
        gf_v8f_store(y + i, &v);
    }
    const gf_v4f lov = {lo, lo, lo, lo}, hiv = {hi, hi, hi, hi};
    for (; i + 4 <= n; i += 4) {
        gf_v4f v;
        memcpy(&v, x + i, sizeof v);
        v = (v - m) * a + c;
        v = select4(v < lov, lov, v);
        v = select4(v > hiv, hiv, v);
        memcpy(y + i, &v, sizeof v);
    }
    for (; i < n; i++) {
        float v = (x[i] - m) * a + c;
        v = v < lo ? lo : v;
        y[i] = v > hi ? hi : v;
    }
}

static void bn_eval_base(const float *x, float *y, int64_t n, double mu, double is, double w,
                         double b, float lo, float hi) {
    bn_eval_body(x, y, n, mu, is, w, b, lo, hi);
}

#if GF_VEC_AVX2
GF_TARGET_AVX2 static void bn_eval_avx2(const float *x, float *y, int64_t n, double mu,
                                        double is, double w, double b, float lo, float hi) {
    bn_eval_body(x, y, n, mu, is, w, b, lo, hi);
}
#endif

void gf_vec_bn_eval(int level, const float *x, float *y, int64_t n, double mu, double is,
                    double w, double b, float lo, float hi) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        bn_eval_avx2(x, y, n, mu, is, w, b, lo, hi);
        return;
    }
#endif
    (void)level;
    bn_eval_base(x, y, n, mu, is, w, b, lo, hi);
}

/* Bit l of the mask byte for 8 values: relu: v > 0; else lo <= v <= hi (false for NaN). */
GF_INLINE unsigned keep_bits4(gf_v4f v, bool relu, gf_v4f lov, gf_v4f hiv) {
    const gf_v4f zero = {0, 0, 0, 0};
    const gf_v4i keep = relu ? (v > zero) : ((v >= lov) & (v <= hiv));
#if defined(__SSE2__)
    __m128 k;
    memcpy(&k, &keep, sizeof k);
    return (unsigned)_mm_movemask_ps(k); /* the lanes' sign bits: set where keep is -1 */
#else
    return (unsigned)(keep[0] & 1) | (unsigned)(keep[1] & 1) << 1 | (unsigned)(keep[2] & 1) << 2 |
           (unsigned)(keep[3] & 1) << 3;
#endif
}

GF_INLINE void bn_eval_mask_body(const float *x, float *y, uint8_t *mask, int64_t n, double mu,
                                 double is, double w, double b, bool relu, float lo, float hi) {
    const float m = (float)mu, a = (float)(is * w), c = (float)b;
    if (relu) lo = 0.0f, hi = INFINITY;
    const gf_v4f lov = {lo, lo, lo, lo}, hiv = {hi, hi, hi, hi};
    for (int64_t i = 0; i + 8 <= n; i += 8) {
        unsigned bits = 0;
        for (int k = 0; k < 2; k++) {
            gf_v4f v;
            memcpy(&v, x + i + 4 * k, sizeof v);
            v = (v - m) * a + c;
            bits |= keep_bits4(v, relu, lov, hiv) << (4 * k);
            v = select4(v < lov, lov, v);
            v = select4(v > hiv, hiv, v);
            memcpy(y + i + 4 * k, &v, sizeof v);
        }
        mask[i / 8] = (uint8_t)bits;
    }
}

static void bn_eval_mask_base(const float *x, float *y, uint8_t *mask, int64_t n, double mu,
                              double is, double w, double b, bool relu, float lo, float hi) {
    bn_eval_mask_body(x, y, mask, n, mu, is, w, b, relu, lo, hi);
}

#if GF_VEC_AVX2
GF_TARGET_AVX2 static void bn_eval_mask_avx2(const float *x, float *y, uint8_t *mask, int64_t n,
                                             double mu, double is, double w, double b, bool relu,
                                             float lo, float hi) {
    bn_eval_mask_body(x, y, mask, n, mu, is, w, b, relu, lo, hi);
}
#endif

void gf_vec_bn_eval_mask(int level, const float *x, float *y, uint8_t *mask, int64_t n,
                         double mu, double is, double w, double b, bool relu, float lo, float hi) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        bn_eval_mask_avx2(x, y, mask, n, mu, is, w, b, relu, lo, hi);
        return;
    }
#endif
    (void)level;
    bn_eval_mask_base(x, y, mask, n, mu, is, w, b, relu, lo, hi);
}

/* ---- batch norm: row sums and the input gradient ---------------------------------------------- */

enum { BN_LANES = 8 };

GF_INLINE double bn_lanes_total(const double *a) {
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

/* Element j goes to lane j mod 8 of each sum (lanes 0-3 in the first vector, 4-7 in the
 * second: one double per lane, so the vectors change nothing); the lanes are added in a fixed
 * tree. */
GF_INLINE void load8d(const float *p, gf_v4d *lo, gf_v4d *hi) {
    gf_v4f a, b;
    memcpy(&a, p, sizeof a);
    memcpy(&b, p + 4, sizeof b);
    *lo = __builtin_convertvector(a, gf_v4d);
    *hi = __builtin_convertvector(b, gf_v4d);
}

/* w (LayerNorm's weight, or NULL) multiplies g element by element, exactly, in double. */
GF_INLINE void bn_sums_body(const float *x, const float *g, const float *w, int64_t n, double mu,
                            double is, double *s1, double *s2) {
    const gf_v4d zero = {0, 0, 0, 0};
    gf_v4d a0 = zero, a1 = zero, b0 = zero, b1 = zero, x0, x1, g0, g1, w0, w1;
    int64_t j = 0;
    for (; j + BN_LANES <= n; j += BN_LANES) {
        load8d(x + j, &x0, &x1);
        if (g) { /* sum g, sum g * (x - mu) * is */
            load8d(g + j, &g0, &g1);
            if (w) {
                load8d(w + j, &w0, &w1);
                g0 *= w0, g1 *= w1;
            }
            a0 += g0, a1 += g1;
            b0 += g0 * ((x0 - mu) * is), b1 += g1 * ((x1 - mu) * is);
        } else if (s1 && s2) { /* sum (x - mu) and sum (x - mu)^2 in one pass */
            x0 -= mu, x1 -= mu;
            a0 += x0, a1 += x1;
            b0 += x0 * x0, b1 += x1 * x1;
        } else if (s1) { /* sum x */
            a0 += x0, a1 += x1;
        } else { /* sum (x - mu)^2 */
            x0 -= mu, x1 -= mu;
            b0 += x0 * x0, b1 += x1 * x1;
        }
    }
    double a[BN_LANES], b[BN_LANES];
    memcpy(a, &a0, sizeof a0), memcpy(a + 4, &a1, sizeof a1);
    memcpy(b, &b0, sizeof b0), memcpy(b + 4, &b1, sizeof b1);
    for (int l = 0; j < n; j++, l++) {
        if (g) {
            const double gj = w ? (double)g[j] * w[j] : (double)g[j];
            a[l] += gj;
            b[l] += gj * ((x[j] - mu) * is);
        } else if (s1 && s2) {
            const double d = x[j] - mu;
            a[l] += d;
            b[l] += d * d;
        } else if (s1) {
            a[l] += x[j];
        } else {
            const double d = x[j] - mu;
            b[l] += d * d;
        }
    }
    if (s1) *s1 = bn_lanes_total(a);
    if (s2) *s2 = bn_lanes_total(b);
}

/* Sums of x and x^2 (bn_sums_body's one-pass mode around 0) over 16 lanes: element j to lane
 * j mod 16, four vectors a sum, so that the adds of one vector wait on each other only every
 * 16 elements and the loop keeps up with memory; the lanes are added in a fixed tree. */
enum { MOM_LANES = 16 };

GF_INLINE void bn_moments_body(const float *x, int64_t n, double *s1, double *s2) {
    const gf_v4d zero = {0, 0, 0, 0};
    gf_v4d a[4] = {zero, zero, zero, zero}, b[4] = {zero, zero, zero, zero}, v;
    int64_t j = 0;
    for (; j + MOM_LANES <= n; j += MOM_LANES)
        for (int q = 0; q < 4; q++) {
            gf_v4f f;
            memcpy(&f, x + j + 4 * q, sizeof f);
            v = __builtin_convertvector(f, gf_v4d);
            a[q] += v;
            b[q] += v * v;
        }
    double la[MOM_LANES], lb[MOM_LANES];
    memcpy(la, a, sizeof la);
    memcpy(lb, b, sizeof lb);
    for (int l = 0; j < n; j++, l++) {
        const double d = x[j];
        la[l] += d;
        lb[l] += d * d;
    }
    *s1 = bn_lanes_total(la) + bn_lanes_total(la + BN_LANES);
    *s2 = bn_lanes_total(lb) + bn_lanes_total(lb + BN_LANES);
}

static const volatile float k_bn_zero = 0.0f;

/* gx = (fresh ? 0 : gx) + (float)(k (g w - mg - (x - mu) is mgx)), in double (w as in
 * bn_sums_body). */
GF_INLINE void bn_grad_body(const float *x, const float *g, const float *w, float *gx, int64_t n,
                            double mu, double is, double k, double mg, double mgx, bool fresh) {
    const float z = k_bn_zero;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        gf_v4f xf, gf, wf, t;
        memcpy(&xf, x + j, sizeof xf);
        memcpy(&gf, g + j, sizeof gf);
        const gf_v4d xhat = (__builtin_convertvector(xf, gf_v4d) - mu) * is;
        gf_v4d gd = __builtin_convertvector(gf, gf_v4d);
        if (w) {
            memcpy(&wf, w + j, sizeof wf);
            gd *= __builtin_convertvector(wf, gf_v4d);
        }
        t = __builtin_convertvector(k * (gd - mg - xhat * mgx), gf_v4f);
        gf_v4f acc = {z, z, z, z};
        if (!fresh) memcpy(&acc, gx + j, sizeof acc);
        acc += t;
        memcpy(gx + j, &acc, sizeof acc);
    }
    for (; j < n; j++) {
        const double xhat = (x[j] - mu) * is, gj = w ? (double)g[j] * w[j] : (double)g[j];
        const float t = (float)(k * (gj - mg - xhat * mgx));
        gx[j] = (fresh ? z : gx[j]) + t;
    }
}

/* y = (float)((x - mu) is w + b) in double, w and b optional. */
GF_INLINE void ln_row_body(const float *x, const float *w, const float *b, float *y, int64_t n,
                           double mu, double is) {
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        gf_v4f xf, wf, bf;
        memcpy(&xf, x + j, sizeof xf);
        gf_v4d v = (__builtin_convertvector(xf, gf_v4d) - mu) * is;
        if (w) {
            memcpy(&wf, w + j, sizeof wf);
            v *= __builtin_convertvector(wf, gf_v4d);
        }
        if (b) {
            memcpy(&bf, b + j, sizeof bf);
            v += __builtin_convertvector(bf, gf_v4d);
        }
        const gf_v4f out = __builtin_convertvector(v, gf_v4f);
        memcpy(y + j, &out, sizeof out);
    }
    for (; j < n; j++) {
        double v = (x[j] - mu) * is;
        if (w) v *= w[j];
        if (b) v += b[j];
        y[j] = (float)v;
    }
}

static void bn_moments_base(const float *x, int64_t n, double *s1, double *s2) {
    bn_moments_body(x, n, s1, s2);
}
static void bn_sums_base(const float *x, const float *g, const float *w, int64_t n, double mu,
                         double is, double *s1, double *s2) {
    bn_sums_body(x, g, w, n, mu, is, s1, s2);
}
static void bn_grad_base(const float *x, const float *g, const float *w, float *gx, int64_t n,
                         double mu, double is, double k, double mg, double mgx, bool fresh) {
    bn_grad_body(x, g, w, gx, n, mu, is, k, mg, mgx, fresh);
}
static void ln_row_base(const float *x, const float *w, const float *b, float *y, int64_t n,
                        double mu, double is) {
    ln_row_body(x, w, b, y, n, mu, is);
}
#if GF_VEC_AVX2
GF_TARGET_AVX2 static void bn_moments_avx2(const float *x, int64_t n, double *s1, double *s2) {
    bn_moments_body(x, n, s1, s2);
}
GF_TARGET_AVX2 static void bn_sums_avx2(const float *x, const float *g, const float *w, int64_t n,
                                        double mu, double is, double *s1, double *s2) {
    bn_sums_body(x, g, w, n, mu, is, s1, s2);
}
GF_TARGET_AVX2 static void bn_grad_avx2(const float *x, const float *g, const float *w, float *gx,
                                        int64_t n, double mu, double is, double k, double mg,
                                        double mgx, bool fresh) {
    bn_grad_body(x, g, w, gx, n, mu, is, k, mg, mgx, fresh);
}
GF_TARGET_AVX2 static void ln_row_avx2(const float *x, const float *w, const float *b, float *y,
                                       int64_t n, double mu, double is) {
    ln_row_body(x, w, b, y, n, mu, is);
}
#endif

void gf_vec_bn_sums(int level, const float *x, const float *g, int64_t n, double mu, double is,
                    double *s1, double *s2) {
    if (!g && s1 && s2 && mu == 0.0) {
#if GF_VEC_AVX2
        if (level == GF_VEC_AVX2_LEVEL) {
            bn_moments_avx2(x, n, s1, s2);
            return;
        }
#endif
        bn_moments_base(x, n, s1, s2);
        return;
    }
    gf_vec_norm_sums(level, x, g, NULL, n, mu, is, s1, s2);
}

void gf_vec_norm_sums(int level, const float *x, const float *g, const float *w, int64_t n,
                      double mu, double is, double *s1, double *s2) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        bn_sums_avx2(x, g, w, n, mu, is, s1, s2);
        return;
    }
#endif
    (void)level;
    bn_sums_base(x, g, w, n, mu, is, s1, s2);
}

void gf_vec_bn_grad(int level, const float *x, const float *g, float *gx, int64_t n, double mu,
                    double is, double k, double mg, double mgx, bool fresh) {
    gf_vec_norm_grad(level, x, g, NULL, gx, n, mu, is, k, mg, mgx, fresh);
}

void gf_vec_norm_grad(int level, const float *x, const float *g, const float *w, float *gx,
                      int64_t n, double mu, double is, double k, double mg, double mgx,
                      bool fresh) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        bn_grad_avx2(x, g, w, gx, n, mu, is, k, mg, mgx, fresh);
        return;
    }
#endif
    (void)level;
    bn_grad_base(x, g, w, gx, n, mu, is, k, mg, mgx, fresh);
}

void gf_vec_ln_row(int level, const float *x, const float *w, const float *b, float *y,
                   int64_t n, double mu, double is) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        ln_row_avx2(x, w, b, y, n, mu, is);
        return;
    }
#endif
    (void)level;
    ln_row_base(x, w, b, y, n, mu, is);
}

/* ---- dropout masks from Philox ---------------------------------------------------------------- */

enum { PHILOX_LANES = 4 };
/* Four 32-bit words, one per 64-bit lane: a product of two such lanes is the full 64-bit
 * product (one vpmuludq / pmuludq), its halves the words Philox needs. */
typedef uint64_t philox_v4 __attribute__((vector_size(32)));

/* PHILOX_LANES blocks from counter c: their 4 * PHILOX_LANES mask bytes. */
GF_INLINE void philox_lanes_body(const uint32_t key[2], uint64_t c, uint32_t thr, uint8_t *mask) {
    const philox_v4 lo32 = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    philox_v4 c0, c1, c2 = {0, 0, 0, 0}, c3 = {0, 0, 0, 0};
    for (int j = 0; j < PHILOX_LANES; j++) {
        c0[j] = (uint32_t)(c + (uint64_t)j);
        c1[j] = (uint32_t)((c + (uint64_t)j) >> 32);
    }
    uint64_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        const philox_v4 p0 = (c0 & lo32) * 0xD2511F53u, p1 = (c2 & lo32) * 0xCD9E8D57u;
        const philox_v4 n0 = (p1 >> 32) ^ c1 ^ k0, n2 = (p0 >> 32) ^ c3 ^ k1;
        c1 = p1 & lo32;
        c3 = p0 & lo32;
        c0 = n0;
        c2 = n2;
        k0 = (uint32_t)(k0 + 0x9E3779B9u);
        k1 = (uint32_t)(k1 + 0xBB67AE85u);
    }
    for (int j = 0; j < PHILOX_LANES; j++) {
        mask[4 * j] = (c0[j] >> 8) >= thr;
        mask[4 * j + 1] = (c1[j] >> 8) >= thr;
        mask[4 * j + 2] = (c2[j] >> 8) >= thr;
        mask[4 * j + 3] = (c3[j] >> 8) >= thr;
    }
}

GF_INLINE void dropout_mask_body(const uint32_t key[2], uint64_t counter0, int64_t nblocks,
                                 uint32_t thr, uint8_t *mask) {
    int64_t b = 0;
    for (; b + PHILOX_LANES <= nblocks; b += PHILOX_LANES)
        philox_lanes_body(key, counter0 + (uint64_t)b, thr, mask + 4 * b);
    if (b < nblocks) { /* the last few blocks through a full group's scratch */
        uint8_t tail[4 * PHILOX_LANES];
        philox_lanes_body(key, counter0 + (uint64_t)b, thr, tail);
        memcpy(mask + 4 * b, tail, (size_t)(4 * (nblocks - b)));
    }
}

static void dropout_mask_base(const uint32_t key[2], uint64_t c, int64_t n, uint32_t thr,
                              uint8_t *mask) {
    dropout_mask_body(key, c, n, thr, mask);
}

#if GF_VEC_AVX2
#include <immintrin.h>

/* The low and high words of eight 32 x 32 -> 64-bit products a_i * m: vpmuludq multiplies the
 * even lanes, so the odd ones are shifted down first and the halves blended back in place. */
GF_TARGET_AVX2 static inline void mul_hi_lo8(__m256i a, __m256i m, __m256i *hi, __m256i *lo) {
    const __m256i even = _mm256_mul_epu32(a, m);
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

/* Eight blocks from counter c, one per 32-bit lane: their 32 mask bytes in block order. */
GF_TARGET_AVX2 static void philox8_avx2(const uint32_t key[2], uint64_t c, __m256i thr,
                                        uint8_t *mask) {
    uint32_t lo[8], hi[8];
    for (int j = 0; j < 8; j++) {
        lo[j] = (uint32_t)(c + (uint64_t)j);
        hi[j] = (uint32_t)((c + (uint64_t)j) >> 32);
    }
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    __m256i c0 = _mm256_loadu_si256((const __m256i *)lo), c1 = _mm256_loadu_si256((const __m256i *)hi);
    __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        __m256i h0, l0, h1, l1;
        mul_hi_lo8(c0, m0, &h0, &l0);
        mul_hi_lo8(c2, m1, &h1, &l1);
        c0 = _mm256_xor_si256(_mm256_xor_si256(h1, c1), _mm256_set1_epi32((int)k0));
        c2 = _mm256_xor_si256(_mm256_xor_si256(h0, c3), _mm256_set1_epi32((int)k1));
        c1 = l1;
        c3 = l0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    /* drop_w = thr > (w >> 8), signed compare is exact below 2^24; then a 4 x 8 transpose
     * into block order, packed to bytes (0 or -1) and turned into 1 = kept */
    const __m256i d0 = _mm256_cmpgt_epi32(thr, _mm256_srli_epi32(c0, 8));
    const __m256i d1 = _mm256_cmpgt_epi32(thr, _mm256_srli_epi32(c1, 8));
    const __m256i d2 = _mm256_cmpgt_epi32(thr, _mm256_srli_epi32(c2, 8));
    const __m256i d3 = _mm256_cmpgt_epi32(thr, _mm256_srli_epi32(c3, 8));
    const __m256i a = _mm256_unpacklo_epi32(d0, d1), b = _mm256_unpackhi_epi32(d0, d1);
    const __m256i e = _mm256_unpacklo_epi32(d2, d3), f = _mm256_unpackhi_epi32(d2, d3);
    const __m256i r01 = _mm256_packs_epi32(_mm256_unpacklo_epi64(a, e), _mm256_unpackhi_epi64(a, e));
    const __m256i r23 = _mm256_packs_epi32(_mm256_unpacklo_epi64(b, f), _mm256_unpackhi_epi64(b, f));
    const __m256i keep = _mm256_add_epi8(_mm256_packs_epi16(r01, r23), _mm256_set1_epi8(1));
    /* each 128-bit half holds blocks 0-3 and 4-7 respectively, already in order */
    _mm256_storeu_si256((__m256i *)mask, keep);
}

GF_TARGET_AVX2 static void dropout_mask_avx2(const uint32_t key[2], uint64_t c, int64_t n,
                                             uint32_t thr, uint8_t *mask) {
    const __m256i t = _mm256_set1_epi32((int)thr);
    int64_t b = 0;
    for (; b + 8 <= n; b += 8) philox8_avx2(key, c + (uint64_t)b, t, mask + 4 * b);
    if (b < n) { /* the last few blocks through a full group's scratch */
        uint8_t tail[32];
        philox8_avx2(key, c + (uint64_t)b, t, tail);
        memcpy(mask + 4 * b, tail, (size_t)(4 * (n - b)));
    }
}
#endif

void gf_vec_dropout_mask(int level, const uint32_t key[2], uint64_t counter0, int64_t nblocks,
                         uint32_t threshold, uint8_t *mask) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        dropout_mask_avx2(key, counter0, nblocks, threshold, mask);
        return;
    }
#endif
    (void)level;
    dropout_mask_base(key, counter0, nblocks, threshold, mask);
}

/* ---- dropout applied with its mask ------------------------------------------------------------ */

GF_INLINE float dropout_term(float x, uint8_t keep, float scale) { return keep ? x * scale : 0.0f; }

static void dropout_apply_tail(const float *x, const uint8_t *mask, float scale, float *y,
                               int64_t i, int64_t n, gf_dropout_apply_mode mode) {
    for (; i < n; i++) {
        const float t = dropout_term(x[i], mask[i], scale);
        y[i] = mode == GF_DROPOUT_WRITE ? t : (mode == GF_DROPOUT_FRESH ? 0.0f : y[i]) + t;
    }
}

#if GF_VEC_AVX2
/* the kept lanes' products, the others +0 (and, not a multiply by 0, so NaN and inf drop) */
GF_TARGET_AVX2 static void dropout_apply_avx2(const float *x, const uint8_t *mask, float scale,
                                              float *y, int64_t n, gf_dropout_apply_mode mode) {
    const __m256 s = _mm256_set1_ps(scale), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        int64_t m8;
        memcpy(&m8, mask + i, 8);
        const __m256i m = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(m8));
        const __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(m, _mm256_setzero_si256()));
        const __m256 t = _mm256_and_ps(keep, _mm256_mul_ps(_mm256_loadu_ps(x + i), s));
        const __m256 base = mode == GF_DROPOUT_ADD ? _mm256_loadu_ps(y + i) : zero;
        _mm256_storeu_ps(y + i, mode == GF_DROPOUT_WRITE ? t : _mm256_add_ps(base, t));
    }
    dropout_apply_tail(x, mask, scale, y, i, n, mode);
}
#endif

void gf_vec_dropout_apply(int level, const float *x, const uint8_t *mask, float scale, float *y,
                          int64_t n, gf_dropout_apply_mode mode) {
#if GF_VEC_AVX2
    if (level == GF_VEC_AVX2_LEVEL) {
        dropout_apply_avx2(x, mask, scale, y, n, mode);
        return;
    }
#endif
    (void)level;
    dropout_apply_tail(x, mask, scale, y, 0, n, mode);
}

/* ---- ReLU with a sign mask ------------------------------------------------------------------ */

void gf_vec_relu_mask_fwd(const float *x, float *y, uint8_t *mask, int64_t i0, int64_t i1) {
    int64_t i = i0;
#if defined(__SSE2__)
    const __m128 zero = _mm_setzero_ps();
    for (; i + 8 <= i1; i += 8) {
        __m128 a = _mm_loadu_ps(x + i), b = _mm_loadu_ps(x + i + 4);
        /* x < 0 ? 0 : x keeps NaN: andnot clears exactly the lanes where x < 0 */
        _mm_storeu_ps(y + i, _mm_andnot_ps(_mm_cmplt_ps(a, zero), a));
        _mm_storeu_ps(y + i + 4, _mm_andnot_ps(_mm_cmplt_ps(b, zero), b));
        mask[i / 8] = (uint8_t)(_mm_movemask_ps(_mm_cmpgt_ps(a, zero)) |
                                (_mm_movemask_ps(_mm_cmpgt_ps(b, zero)) << 4));
    }
#endif
    for (; i < i1; i += 8) {
        uint8_t m = 0;
        for (int64_t j = 0; j < 8 && i + j < i1; j++) {
            float v = x[i + j];
            y[i + j] = v < 0.0f ? 0.0f : v;
            m |= (uint8_t)((v > 0.0f) << j);
        }
        mask[i / 8] = m;
    }
}

void gf_vec_clamp_mask_fwd(const float *x, float *y, uint8_t *mask, int64_t i0, int64_t i1,
                           float lo, float hi) {
    int64_t i = i0;
#if defined(__SSE2__)
    const __m128 l = _mm_set1_ps(lo), h = _mm_set1_ps(hi);
    for (; i + 8 <= i1; i += 8) {
        int m = 0;
        for (int k = 0; k < 2; k++) {
            const __m128 v = _mm_loadu_ps(x + i + 4 * k);
            /* v < lo ? lo : v, then > hi ? hi : that (NaN stays): selects, not min/max */
            const __m128 below = _mm_cmplt_ps(v, l);
            __m128 c = _mm_or_ps(_mm_and_ps(below, l), _mm_andnot_ps(below, v));
            const __m128 above = _mm_cmpgt_ps(c, h);
            c = _mm_or_ps(_mm_and_ps(above, h), _mm_andnot_ps(above, c));
            _mm_storeu_ps(y + i + 4 * k, c);
            m |= _mm_movemask_ps(_mm_and_ps(_mm_cmpge_ps(v, l), _mm_cmple_ps(v, h))) << (4 * k);
        }
        mask[i / 8] = (uint8_t)m;
    }
#endif
    for (; i < i1; i += 8) {
        unsigned m = 0;
        for (int64_t j = 0; j < 8 && i + j < i1; j++) {
            const float v = x[i + j], c = v < lo ? lo : v;
            m |= (unsigned)((v >= lo) & (v <= hi)) << j;
            y[i + j] = c > hi ? hi : c;
        }
        mask[i / 8] = (uint8_t)m;
    }
}

typedef int32_t v4i32 __attribute__((vector_size(16)));
typedef float v4f32 __attribute__((vector_size(16)));

static const volatile float k_zero = 0.0f;

void gf_vec_relu_mask_bwd(const uint8_t *mask, const float *g, float *gx, int64_t i0,
                          int64_t i1, bool fresh) {
    const v4i32 bits_lo = {1, 2, 4, 8}, bits_hi = {16, 32, 64, 128};
    const float z = k_zero; /* 0 + t, not folded: a -0 term must become +0 */
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8) {
        const int32_t m = mask[i / 8];
        v4i32 ml = ((v4i32){m, m, m, m} & bits_lo) != 0, mh = ((v4i32){m, m, m, m} & bits_hi) != 0;
        v4f32 a, b, da, db;
        memcpy(&a, g + i, sizeof a);
        memcpy(&b, g + i + 4, sizeof b);
        a = (v4f32)((v4i32)a & ml);
        b = (v4f32)((v4i32)b & mh);
        if (fresh) {
            da = z + a, db = z + b;
        } else {
            memcpy(&da, gx + i, sizeof da);
            memcpy(&db, gx + i + 4, sizeof db);
            da += a, db += b;
        }
        memcpy(gx + i, &da, sizeof da);
        memcpy(gx + i + 4, &db, sizeof db);
    }
    for (; i < i1; i++) {
        float t = (mask[i / 8] >> (i % 8)) & 1 ? g[i] : 0.0f;
        gx[i] = fresh ? z + t : gx[i] + t;
    }
}

/* ---- sum ----------------------------------------------------------------------------------- */

enum { SUM_LANES = 16 };

float gf_vec_sum(const float *x, int64_t n) {
    float acc[SUM_LANES] = {0};
    int64_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES)
        for (int j = 0; j < SUM_LANES; j++) acc[j] += x[i + j];
    for (int j = 0; i + j < n; j++) acc[j] += x[i + j];
    for (int w = SUM_LANES / 2; w > 0; w /= 2) /* pairwise: lanes j and j + w */
        for (int j = 0; j < w; j++) acc[j] += acc[j + w];
    return acc[0];
}
