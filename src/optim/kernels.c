/* The optimizers' elementwise update kernels: one portable reference kernel per rule and, on
 * x86-64 CPUs with AVX2+FMA, a fast one chosen at run time that rounds identically.
 *
 * Rounding follows PyTorch 1.13's CPU kernels, whose vectorised forms fuse a multiply and an
 * add: add(x, alpha=a) is fma(x, a, self) and addcmul(t1, t2, value=v) is fma(v t1, t2, self),
 * while addcdiv(t1, t2, value=v) is self + (v t1) / t2 and mul_/sqrt/add of a scalar round on
 * their own. With the same operations in the same order, trajectories agree with PyTorch's
 * (AVX2/AVX-512 builds) to the last bit. tests/test_optim.c checks reference == fast. */
#include "core/internal.h"
#include "optim/optim_internal.h"

#include <math.h>

/* torch.optim.SGD: d = g + wd p; b = d at the first step, else mu b + (1 - tau) d;
 * d = nesterov ? d + mu b : b; p -= lr d. */
#define SGD_LOOP(a, lo, hi)                                                                \
    for (int64_t i = (lo), i_end = (hi); i < i_end; i++) {                                 \
        float d = a->maximize ? -a->g[i] : a->g[i];                                        \
        if (a->use_wd) d = fmaf(a->p[i], a->wd, d);                                        \
        if (a->buf0) {                                                                     \
            float b = a->first ? d : fmaf(d, a->one_minus_damp, a->buf0[i] * a->mom);      \
            a->buf0[i] = b;                                                                \
            d = a->nesterov ? fmaf(b, a->mom, d) : b;                                      \
        }                                                                                  \
        a->p[i] = fmaf(d, a->lr_neg, a->p[i]);                                             \
    }

/* torch.optim.Adam / AdamW (t = this parameter's step count):
 *   AdamW: p *= 1 - lr wd;   Adam: g += wd p
 *   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;   amsgrad: vmax = maximum(vmax, v)
 *   p += -(lr / (1 - b1^t)) m / (sqrt(v or vmax) / sqrt(1 - b2^t) + eps)
 * (torch.maximum propagates NaN, hence the isnan.) */
#define ADAM_LOOP(a, lo, hi)                                                               \
    for (int64_t i = (lo), i_end = (hi); i < i_end; i++) {                                 \
        float gi = a->maximize ? -a->g[i] : a->g[i];                                       \
        float pi = a->p[i];                                                                \
        if (a->use_wd) {                                                                   \
            if (a->adamw) pi = pi * a->decay;                                              \
            else gi = fmaf(pi, a->wd, gi);                                                 \
        }                                                                                  \
        float mi = fmaf(gi, a->omb1, a->buf0[i] * a->b1);                                  \
        float vi = fmaf(a->omb2 * gi, gi, a->buf1[i] * a->b2);                             \
        a->buf0[i] = mi;                                                                   \
        a->buf1[i] = vi;                                                                   \
        if (a->buf2) {                                                                     \
            float old = a->buf2[i];                                                        \
            vi = (vi > old || isnan(vi)) ? vi : old;                                       \
            a->buf2[i] = vi;                                                               \
        }                                                                                  \
        float denom = sqrtf(vi) / a->bc2_sqrt + a->eps;                                    \
        a->p[i] = pi + (a->step_neg * mi) / denom;                                         \
    }

/* torch.optim.RMSprop (buf0 square_avg, buf1 momentum_buffer, buf2 grad_avg):
 *   g += wd p;   s = alpha s + (1 - alpha) g^2
 *   centered: ga = alpha ga + (1 - alpha) g;  avg = sqrt(s - ga^2) + eps;  else sqrt(s) + eps
 *   momentum: b = mu b + g / avg;  p -= lr b        else: p -= lr g / avg */
#define RMSPROP_LOOP(a, lo, hi)                                                            \
    for (int64_t i = (lo), i_end = (hi); i < i_end; i++) {                                 \
        float gi = a->maximize ? -a->g[i] : a->g[i];                                       \
        if (a->use_wd) gi = fmaf(a->p[i], a->wd, gi);                                      \
        float si = fmaf(a->one_minus_alpha * gi, gi, a->buf0[i] * a->alpha);               \
        a->buf0[i] = si;                                                                   \
        float avg;                                                                         \
        if (a->buf2) {                                                                     \
            float gai = fmaf(gi, a->one_minus_alpha, a->buf2[i] * a->alpha);               \
            a->buf2[i] = gai;                                                              \
            avg = sqrtf(fmaf(-gai, gai, si));                                              \
        } else {                                                                           \
            avg = sqrtf(si);                                                               \
        }                                                                                  \
        avg = avg + a->eps;                                                                \
        if (a->buf1) {                                                                     \
            float b = a->buf1[i] * a->mom + gi / avg;                                      \
            a->buf1[i] = b;                                                                \
            a->p[i] = fmaf(b, a->lr_neg, a->p[i]);                                         \
        } else {                                                                           \
            a->p[i] = a->p[i] + (a->lr_neg * gi) / avg;                                    \
        }                                                                                  \
    }

/* torch.optim.Adagrad (buf0 sum; clr = lr / (1 + (t - 1) lr_decay)):
 *   g += wd p;   s += g^2;   p -= clr g / (sqrt(s) + eps) */
#define ADAGRAD_LOOP(a, lo, hi)                                                            \
    for (int64_t i = (lo), i_end = (hi); i < i_end; i++) {                                 \
        float gi = a->maximize ? -a->g[i] : a->g[i];                                       \
        if (a->use_wd) gi = fmaf(a->p[i], a->wd, gi);                                      \
        float si = fmaf(gi, gi, a->buf0[i]);                                               \
        a->buf0[i] = si;                                                                   \
        float std = sqrtf(si) + a->eps;                                                    \
        a->p[i] = a->p[i] + (a->clr_neg * gi) / std;                                       \
    }

static void sgd_ref(const gf_optim_kargs *a, int64_t lo, int64_t hi) { SGD_LOOP(a, lo, hi) }
static void adam_ref(const gf_optim_kargs *a, int64_t lo, int64_t hi) { ADAM_LOOP(a, lo, hi) }
static void rmsprop_ref(const gf_optim_kargs *a, int64_t lo, int64_t hi) {
    RMSPROP_LOOP(a, lo, hi)
}
static void adagrad_ref(const gf_optim_kargs *a, int64_t lo, int64_t hi) {
    ADAGRAD_LOOP(a, lo, hi)
}

#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_FMA_KERNELS 1
#include <immintrin.h>
/* Compiled for AVX2+FMA and chosen at run time when the CPU has them. Loops with a sqrt are
 * written in 8-wide intrinsics (sqrtf's errno keeps the compiler from vectorising them): the
 * same operations in the same order, then the reference loop for the tail. */
#define FMA_KERNEL __attribute__((target("avx2,fma")))
FMA_KERNEL static void sgd_fma(const gf_optim_kargs *a, int64_t lo, int64_t hi) {
    const gf_optim_kargs k = *a; /* a local copy: the compiler sees the scalars cannot alias */
    const gf_optim_kargs *kp = &k;
    SGD_LOOP(kp, lo, hi) /* vectorises as written */
}

FMA_KERNEL static inline __m256 load_grad(const gf_optim_kargs *k, int64_t j) {
    __m256 g = _mm256_loadu_ps(k->g + j);
    return k->maximize ? _mm256_xor_ps(g, _mm256_set1_ps(-0.0f)) : g;
}

FMA_KERNEL static void adam_fma(const gf_optim_kargs *a, int64_t lo, int64_t hi) {
    const gf_optim_kargs k = *a;
    const gf_optim_kargs *kp = &k;
    const __m256 b1 = _mm256_set1_ps(k.b1), b2 = _mm256_set1_ps(k.b2);
    const __m256 omb1 = _mm256_set1_ps(k.omb1), omb2 = _mm256_set1_ps(k.omb2);
    const __m256 eps = _mm256_set1_ps(k.eps), step_neg = _mm256_set1_ps(k.step_neg);
    const __m256 bc2_sqrt = _mm256_set1_ps(k.bc2_sqrt), wd = _mm256_set1_ps(k.wd);
    const __m256 decay = _mm256_set1_ps(k.decay);
    int64_t j = lo; /* not i: the loop macros declare their own i */
    for (; j + 8 <= hi; j += 8) {
        __m256 g = load_grad(kp, j);
        __m256 p = _mm256_loadu_ps(k.p + j);
        if (k.use_wd) {
            if (k.adamw) p = _mm256_mul_ps(p, decay);
            else g = _mm256_fmadd_ps(p, wd, g);
        }
        __m256 m = _mm256_fmadd_ps(g, omb1, _mm256_mul_ps(_mm256_loadu_ps(k.buf0 + j), b1));
        __m256 v = _mm256_fmadd_ps(_mm256_mul_ps(omb2, g), g,
                                   _mm256_mul_ps(_mm256_loadu_ps(k.buf1 + j), b2));
        _mm256_storeu_ps(k.buf0 + j, m);
        _mm256_storeu_ps(k.buf1 + j, v);
        if (k.buf2) {
            __m256 old = _mm256_loadu_ps(k.buf2 + j);
            __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, old, _CMP_GT_OQ),
                                       _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            v = _mm256_blendv_ps(old, v, take);
            _mm256_storeu_ps(k.buf2 + j, v);
        }
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(v), bc2_sqrt), eps);
        p = _mm256_add_ps(p, _mm256_div_ps(_mm256_mul_ps(step_neg, m), denom));
        _mm256_storeu_ps(k.p + j, p);
    }
    ADAM_LOOP(kp, j, hi)
}

FMA_KERNEL static void rmsprop_fma(const gf_optim_kargs *a, int64_t lo, int64_t hi) {
    const gf_optim_kargs k = *a;
    const gf_optim_kargs *kp = &k;
    const __m256 alpha = _mm256_set1_ps(k.alpha), oma = _mm256_set1_ps(k.one_minus_alpha);
    const __m256 wd = _mm256_set1_ps(k.wd), eps = _mm256_set1_ps(k.eps);
    const __m256 mom = _mm256_set1_ps(k.mom), lr_neg = _mm256_set1_ps(k.lr_neg);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    int64_t j = lo;
    for (; j + 8 <= hi; j += 8) {
        __m256 g = load_grad(kp, j);
        __m256 p = _mm256_loadu_ps(k.p + j);
        if (k.use_wd) g = _mm256_fmadd_ps(p, wd, g);
        __m256 s = _mm256_fmadd_ps(_mm256_mul_ps(oma, g), g,
                                   _mm256_mul_ps(_mm256_loadu_ps(k.buf0 + j), alpha));
        _mm256_storeu_ps(k.buf0 + j, s);
        __m256 avg;
        if (k.buf2) {
            __m256 ga = _mm256_fmadd_ps(g, oma, _mm256_mul_ps(_mm256_loadu_ps(k.buf2 + j), alpha));
            _mm256_storeu_ps(k.buf2 + j, ga);
            avg = _mm256_sqrt_ps(_mm256_fmadd_ps(_mm256_xor_ps(ga, sign), ga, s));
        } else {
            avg = _mm256_sqrt_ps(s);
        }
        avg = _mm256_add_ps(avg, eps);
        if (k.buf1) {
            __m256 b = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(k.buf1 + j), mom),
                                     _mm256_div_ps(g, avg));
            _mm256_storeu_ps(k.buf1 + j, b);
            p = _mm256_fmadd_ps(b, lr_neg, p);
        } else {
            p = _mm256_add_ps(p, _mm256_div_ps(_mm256_mul_ps(lr_neg, g), avg));
        }
        _mm256_storeu_ps(k.p + j, p);
    }
    RMSPROP_LOOP(kp, j, hi)
}

FMA_KERNEL static void adagrad_fma(const gf_optim_kargs *a, int64_t lo, int64_t hi) {
    const gf_optim_kargs k = *a;
    const gf_optim_kargs *kp = &k;
    const __m256 wd = _mm256_set1_ps(k.wd), eps = _mm256_set1_ps(k.eps);
    const __m256 clr_neg = _mm256_set1_ps(k.clr_neg);
    int64_t j = lo;
    for (; j + 8 <= hi; j += 8) {
        __m256 g = load_grad(kp, j);
        __m256 p = _mm256_loadu_ps(k.p + j);
        if (k.use_wd) g = _mm256_fmadd_ps(p, wd, g);
        __m256 s = _mm256_fmadd_ps(g, g, _mm256_loadu_ps(k.buf0 + j));
        _mm256_storeu_ps(k.buf0 + j, s);
        __m256 std = _mm256_add_ps(_mm256_sqrt_ps(s), eps);
        p = _mm256_add_ps(p, _mm256_div_ps(_mm256_mul_ps(clr_neg, g), std));
        _mm256_storeu_ps(k.p + j, p);
    }
    ADAGRAD_LOOP(kp, j, hi)
}
#endif

typedef void (*kernel_fn)(const gf_optim_kargs *, int64_t, int64_t);

static bool force_reference = false;

void gf_optim_use_reference_kernels(bool on) { force_reference = on; }

static kernel_fn pick(gf_optim_kind kind) {
#ifdef HAVE_FMA_KERNELS
    if (!force_reference && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        switch (kind) {
        case GF_OPTIM_SGD: return sgd_fma;
        case GF_OPTIM_RMSPROP: return rmsprop_fma;
        case GF_OPTIM_ADAGRAD: return adagrad_fma;
        default: return adam_fma;
        }
    }
#endif
    switch (kind) {
    case GF_OPTIM_SGD: return sgd_ref;
    case GF_OPTIM_RMSPROP: return rmsprop_ref;
    case GF_OPTIM_ADAGRAD: return adagrad_ref;
    default: return adam_ref;
    }
}

/* Runs the kernel over contiguous per-thread ranges (elementwise: any split is exact). */
void gf_optim_run_kernel(gf_ctx *ctx, gf_optim_kind kind, const gf_optim_kargs *a) {
    kernel_fn fn = pick(kind);
    int nt = gf_threads_for(ctx, a->n);
    if (nt <= 1) {
        fn(a, 0, a->n);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) fn(a, a->n * t / nt, a->n * (t + 1) / nt);
}
