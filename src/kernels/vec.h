/* Vectorised elementwise kernels and their run-time dispatch: each hot kernel is one plain C
 * body compiled twice, for the x86-64 baseline (SSE2) and with AVX2 enabled, and the AVX2
 * copy is chosen when the CPU has it. Both copies do the same IEEE operations in the same
 * order (no FMA contraction, no reassociation), so they agree to the bit; tests/test_kernels.c
 * checks that. On other CPUs and compilers only the portable copy exists. */
#ifndef GRAFT_KERNELS_VEC_H
#define GRAFT_KERNELS_VEC_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* -DGF_VEC_AVX2=0 builds the portable copies only. */
#if !defined(GF_VEC_AVX2) && defined(__GNUC__) && defined(__x86_64__)
#define GF_VEC_AVX2 1
#elif !defined(GF_VEC_AVX2)
#define GF_VEC_AVX2 0
#endif
#if GF_VEC_AVX2
#define GF_TARGET_AVX2 __attribute__((target("avx2")))
#endif
#define GF_INLINE static inline __attribute__((always_inline))

/* 8 floats as one value (GCC/clang vector extension): elementwise IEEE operations, a scalar
 * operand broadcast. One AVX register, or two SSE registers in the portable copy; the
 * results are the same. The helpers take vectors by pointer, never by value: a 32-byte
 * vector crossing a call in the portable copy would have an ABI that depends on AVX. */
typedef float gf_v8f __attribute__((vector_size(32)));
typedef int gf_v8i __attribute__((vector_size(32))); /* a comparison's lanes: -1 or 0 */
#define GF_V8F_ZERO ((gf_v8f){0, 0, 0, 0, 0, 0, 0, 0})
GF_INLINE void gf_v8f_load(gf_v8f *v, const float *p) { memcpy(v, p, sizeof *v); }
GF_INLINE void gf_v8f_store(float *p, const gf_v8f *v) { memcpy(p, v, sizeof *v); }
/* *out = the lanes of a where m is set, else of b (bitwise, so exact). */
GF_INLINE void gf_v8f_select(gf_v8f *out, const gf_v8i *m, const gf_v8f *a, const gf_v8f *b) {
    gf_v8i ai, bi;
    memcpy(&ai, a, sizeof ai);
    memcpy(&bi, b, sizeof bi);
    ai = (ai & *m) | (bi & ~*m);
    memcpy(out, &ai, sizeof ai);
}
/* Lanes summed pairwise: (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then 0+1. */
GF_INLINE float gf_v8f_sum(const gf_v8f *v) {
    float a[8];
    memcpy(a, v, sizeof a);
    for (int w = 4; w > 0; w /= 2)
        for (int j = 0; j < w; j++) a[j] += a[j + w];
    return a[0];
}

/* Dispatch levels: 0 the portable copy, 1 the AVX2 copy. */
enum { GF_VEC_PORTABLE = 0, GF_VEC_AVX2_LEVEL = 1 };

/* The level kernels use: the best the CPU has (GF_VEC_PORTABLE where there is no AVX2 copy). */
int gf_vec_level(void);

/* dst[i] = (float)src[i] / 255, then (v - mean) / std unless mean == 0 and std == 1: what
 * torchvision's ToTensor followed by Normalize gives, bit for bit (a division, not a multiply
 * by the reciprocal). level: a dispatch level (tests compare them); gf_vec_level() normally. */
void gf_vec_u8_to_f32(int level, const uint8_t *src, float *dst, int64_t n, float mean,
                      float std);

/* Batch norm's normalisation of a row, then a clamp: y[i] = (x[i] - m) * a + c in float, with
 * m = (float)mu, a = (float)(is * w), c = (float)b (the subtraction first, so values near the
 * mean keep their precision; no FMA), then clamped to [lo, hi] as gf_clamp does (lo = -inf,
 * hi = inf: no clamp). y may be x. The same bits at every level. */
void gf_vec_bn_eval(int level, const float *x, float *y, int64_t n, double mu, double is,
                    double w, double b, float lo, float hi);
/* The same normalisation, then the ReLU (relu: lo 0, hi ignored) or clamp to [lo, hi] of an
 * activation that keeps a bit mask, in one pass: y and mask[0..n/8) are the bits that
 * gf_vec_bn_eval with no clamp followed by gf_vec_relu_mask_fwd / gf_vec_clamp_mask_fwd write.
 * n a multiple of 8. */
void gf_vec_bn_eval_mask(int level, const float *x, float *y, uint8_t *mask, int64_t n,
                         double mu, double is, double w, double b, bool relu, float lo, float hi);

/* Batch norm's row sums, in double over 8 interleaved lanes added in a fixed tree (the same
 * bits at every level). With g: *s1 = sum g, *s2 = sum g (x - mu) is. Without g: with both s1
 * and s2, *s1 = sum (x - mu) and *s2 = sum (x - mu)^2 in one pass (around mu = 0: over 16
 * lanes); with s1 only *s1 = sum x; with s2 only *s2 = sum (x - mu)^2. */
void gf_vec_bn_sums(int level, const float *x, const float *g, int64_t n, double mu, double is,
                    double *s1, double *s2);
/* Batch norm's input gradient row: gx (+)= (float)(k (g - mg - (x - mu) is mgx)) in double;
 * fresh: gx = 0 + term (what a zeroed gx and += give), else gx += term. */
void gf_vec_bn_grad(int level, const float *x, const float *g, float *gx, int64_t n, double mu,
                    double is, double k, double mg, double mgx, bool fresh);
/* The same two with an elementwise weight w (LayerNorm's; NULL: 1) multiplying g exactly in
 * double: the sums of g w and g w (x - mu) is, and gx (+)= (float)(k (g w - mg - (x - mu) is
 * mgx)). */
void gf_vec_norm_sums(int level, const float *x, const float *g, const float *w, int64_t n,
                      double mu, double is, double *s1, double *s2);
void gf_vec_norm_grad(int level, const float *x, const float *g, const float *w, float *gx,
                      int64_t n, double mu, double is, double k, double mg, double mgx,
                      bool fresh);
/* A LayerNorm row: y = (float)((x - mu) is w + b), in double; w and b may be NULL. */
void gf_vec_ln_row(int level, const float *x, const float *w, const float *b, float *y,
                   int64_t n, double mu, double is);

/* ReLU with a saved sign mask, for a recorded graph: y = x < 0 ? 0 : x (NaN passes), and bit
 * i % 8 of mask[i / 8] = x[i] > 0 (which is y[i] > 0). Its backward reads the (n + 7) / 8
 * mask bytes instead of the n floats of y: gx += bit ? g : 0, or with fresh (gx not yet
 * initialised) gx = 0 + (bit ? g : 0), bitwise what the y > 0 test gives. i0 is the index of
 * the first element (a multiple of 8): callers split [0, n) over threads at bytes. */
void gf_vec_relu_mask_fwd(const float *x, float *y, uint8_t *mask, int64_t i0, int64_t i1);
void gf_vec_relu_mask_bwd(const uint8_t *mask, const float *g, float *gx, int64_t i0,
                          int64_t i1, bool fresh);
/* The same for clamp: y = clamp(x, lo, hi) as gf_clamp, and bit = lo <= x <= hi (false for
 * NaN): the lanes clamp's backward passes the gradient on (read back by
 * gf_vec_relu_mask_bwd). y may be x. */
void gf_vec_clamp_mask_fwd(const float *x, float *y, uint8_t *mask, int64_t i0, int64_t i1,
                           float lo, float hi);

/* Dropout's keep mask from whole Philox4x32-10 blocks: block b has counter counter0 + b (low,
 * high 32 bits; the other two words 0) under key, and its four words w give mask[4 b + k] =
 * (w_k >> 8) >= threshold, which is gf_rng_uniform's u >= p for threshold = ceil(p 2^24).
 * Blocks run side by side (eight on AVX2, from 32x32 -> 64-bit vector products); the words
 * are exactly gf_philox4x32's. level: a dispatch level, gf_vec_level() normally. */
void gf_vec_dropout_mask(int level, const uint32_t key[2], uint64_t counter0, int64_t nblocks,
                         uint32_t threshold, uint8_t *mask);

/* Dropout applied with its mask over [0, n): t_i = mask[i] ? x[i] * scale : 0, then
 * y[i] = t_i (GF_DROPOUT_WRITE), 0 + t_i (GF_DROPOUT_FRESH: what a zeroed y and += give) or
 * y[i] + t_i (GF_DROPOUT_ADD). y may be x. */
typedef enum { GF_DROPOUT_WRITE, GF_DROPOUT_FRESH, GF_DROPOUT_ADD } gf_dropout_apply_mode;
void gf_vec_dropout_apply(int level, const float *x, const uint8_t *mask, float scale, float *y,
                          int64_t n, gf_dropout_apply_mode mode);

/* Hints the CPU to start loading bytes [p, p + n) into cache (no effect on results). Batch
 * assembly calls it for the example after next: examples picked at random from a large
 * dataset otherwise cost a cache miss per 64 bytes. */
GF_INLINE void gf_vec_prefetch(const void *p, int64_t n) {
#if defined(__GNUC__)
    for (int64_t k = 0; k < n; k += 64) __builtin_prefetch((const char *)p + k);
#else
    (void)p;
    (void)n;
#endif
}

/* Sum of x[0..n) with 16 interleaved float accumulators (lane j takes x[16 k + j]) added in a
 * fixed tree: deterministic, and its rounding error grows like sqrt(n / 16) rather than n. */
float gf_vec_sum(const float *x, int64_t n);

#endif
