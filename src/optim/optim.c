/* SGD and Adam/AdamW over persistent parameters. Each update mirrors PyTorch 1.13's
 * single-tensor implementation operation by operation, in float32 with double scalars.
 * PyTorch's CPU kernels round add(x, alpha=a) and addcmul as one fused multiply-add, so the
 * same steps use fmaf here: the trajectories then agree with PyTorch's (AVX2/AVX-512 builds)
 * to the last bit. */
#include "graft/optim.h"
#include "core/internal.h"
#include "optim/optim_internal.h"

#include <math.h>
#include <stdlib.h>

/* State of one parameter: `buf` holds n_buf arrays of the parameter's numel floats in one
 * block (SGD: momentum_buffer; Adam: exp_avg, exp_avg_sq[, max_exp_avg_sq]). */
typedef struct param_state {
    gf_tensor *p;
    int64_t steps;
    float *buf;
    int n_buf;
} param_state;

struct gf_optim {
    gf_optim_params hp;
    int n;
    param_state *ps;
    int64_t steps;
    size_t state_bytes;
};

static const char *const kind_names[GF_OPTIM_KIND_COUNT] = {"sgd", "adam", "adamw"};

const char *gf_optim_kind_name(gf_optim_kind kind) {
    return (kind >= 0 && kind < GF_OPTIM_KIND_COUNT) ? kind_names[kind] : "?";
}

gf_optim_params gf_optim_default_params(gf_optim_kind kind) {
    gf_optim_params p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.lr = kind == GF_OPTIM_SGD ? 1e-2 : 1e-3;
    p.weight_decay = kind == GF_OPTIM_ADAMW ? 1e-2 : 0.0;
    p.beta1 = 0.9;
    p.beta2 = 0.999;
    p.eps = 1e-8;
    return p;
}

/* The same checks (and messages) as PyTorch's constructors. */
static bool check_hp(gf_ctx *ctx, const gf_optim_params *p) {
    const char *k = gf_optim_kind_name(p->kind);
    if (p->kind < 0 || p->kind >= GF_OPTIM_KIND_COUNT) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: unknown optimizer kind %d", (int)p->kind);
        return false;
    }
#define BAD(cond, ...)                                                                     \
    if (cond) {                                                                            \
        gf_ctx_set_error(ctx, GF_ERR_INVALID, __VA_ARGS__);                                \
        return false;                                                                      \
    }
    BAD(!(p->lr >= 0.0) || !isfinite(p->lr), "optim %s: invalid learning rate %g", k, p->lr);
    BAD(!(p->weight_decay >= 0.0) || !isfinite(p->weight_decay),
        "optim %s: invalid weight_decay %g", k, p->weight_decay);
    if (p->kind == GF_OPTIM_SGD) {
        BAD(!(p->momentum >= 0.0) || !isfinite(p->momentum), "optim sgd: invalid momentum %g",
            p->momentum);
        BAD(!isfinite(p->dampening), "optim sgd: invalid dampening %g", p->dampening);
        BAD(p->nesterov && (p->momentum <= 0.0 || p->dampening != 0.0),
            "optim sgd: Nesterov momentum requires a momentum > 0 and zero dampening "
            "(momentum %g, dampening %g)",
            p->momentum, p->dampening);
    } else {
        BAD(!(p->eps >= 0.0) || !isfinite(p->eps), "optim %s: invalid eps %g", k, p->eps);
        BAD(!(p->beta1 >= 0.0 && p->beta1 < 1.0), "optim %s: invalid beta1 %g (need [0, 1))",
            k, p->beta1);
        BAD(!(p->beta2 >= 0.0 && p->beta2 < 1.0), "optim %s: invalid beta2 %g (need [0, 1))",
            k, p->beta2);
    }
#undef BAD
    return true;
}

gf_optim *gf_optim_new(gf_ctx *ctx, const gf_optim_params *p, gf_tensor *const *params, int n) {
    gf_optim_params hp = p ? *p : gf_optim_default_params(GF_OPTIM_ADAM);
    if (!check_hp(ctx, &hp)) return NULL;
    if (n < 0 || (n > 0 && !params)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: bad parameter list (n = %d)", n);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        gf_tensor *t = params[i];
        if (!t) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: parameter %d is NULL", i);
            return NULL;
        }
        if (t->dtype != GF_F32 || !t->persistent || !gf_tensor_is_contiguous(t)) {
            char s[GF_SHAPE_BUF];
            gf_ctx_set_error(ctx, GF_ERR_INVALID,
                             "optim: parameter %d %s must be a persistent contiguous float32 "
                             "tensor (got %s%s%s)",
                             i, gf_shape_str(t, s, sizeof s), gf_dtype_name(t->dtype),
                             t->persistent ? "" : ", arena", 
                             gf_tensor_is_contiguous(t) ? "" : ", strided");
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (params[j] == t) {
                gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                 "optim: parameter %d is the same tensor as parameter %d", i, j);
                return NULL;
            }
    }
    gf_optim *o = calloc(1, sizeof *o);
    param_state *ps = calloc((size_t)(n ? n : 1), sizeof *ps);
    if (!o || !ps) {
        free(o);
        free(ps);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "optim: out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) ps[i].p = params[i];
    o->hp = hp;
    o->n = n;
    o->ps = ps;
    return o;
}

void gf_optim_free(gf_optim *opt) {
    if (!opt) return;
    for (int i = 0; i < opt->n; i++) free(opt->ps[i].buf);
    free(opt->ps);
    free(opt);
}

/* Buffers a parameter needs under these hyperparameters. */
static int buffers_needed(const gf_optim_params *hp) {
    if (hp->kind == GF_OPTIM_SGD) return hp->momentum != 0.0 ? 1 : 0;
    return hp->amsgrad ? 3 : 2;
}

static bool ensure_state(gf_ctx *ctx, gf_optim *o, param_state *s) {
    int nb = buffers_needed(&o->hp);
    if (s->buf || nb == 0) return true;
    size_t bytes = (size_t)s->p->numel * sizeof(float) * (size_t)nb;
    s->buf = calloc(1, bytes ? bytes : 1);
    if (!s->buf) {
        char sh[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_NOMEM,
                         "optim %s: out of memory for the state of a parameter %s (%zu bytes)",
                         gf_optim_kind_name(o->hp.kind), gf_shape_str(s->p, sh, sizeof sh),
                         bytes);
        return false;
    }
    s->n_buf = nb;
    o->state_bytes += bytes;
    return true;
}

/* ---- update kernels ------------------------------------------------------------------
 * Each rule is written once, as a macro over elements [lo, hi): the reference kernels
 * (portable; fmaf may be a library call). On x86-64 CPUs with AVX2+FMA, fast kernels are
 * chosen at run time: SGD_LOOP compiled for that target (fmaf becomes one instruction and the
 * loop vectorises) and Adam in 8-wide intrinsics. Both round identically (fused multiply-adds,
 * IEEE sqrt and division), so they give bitwise the same result; tests/test_optim.c checks
 * this on a large parameter. */

typedef struct kernel_args {
    int64_t n;
    float *p, *buf0, *buf1, *buf2; /* SGD: buf0 momentum; Adam: exp_avg, exp_avg_sq, max */
    const float *g;
    float wd, lr_neg, mom, one_minus_damp;          /* SGD */
    float b1, b2, omb1, omb2, eps, step_neg, bc2_sqrt, decay; /* Adam */
    bool maximize, use_wd, first, nesterov, adamw;
} kernel_args;

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

static void sgd_ref(const kernel_args *a, int64_t lo, int64_t hi) { SGD_LOOP(a, lo, hi) }
static void adam_ref(const kernel_args *a, int64_t lo, int64_t hi) { ADAM_LOOP(a, lo, hi) }

#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_FMA_KERNELS 1
#include <immintrin.h>
/* Compiled for AVX2+FMA and chosen at run time when the CPU has them. */
#define FMA_KERNEL __attribute__((target("avx2,fma")))
FMA_KERNEL static void sgd_fma(const kernel_args *a, int64_t lo, int64_t hi) {
    const kernel_args k = *a; /* a local copy: the compiler sees the scalars cannot alias */
    const kernel_args *kp = &k;
    SGD_LOOP(kp, lo, hi) /* vectorises as written */
}
/* ADAM_LOOP in 8-wide intrinsics (sqrtf's errno keeps the compiler from vectorising it);
 * the same operations in the same order, then ADAM_LOOP for the tail. */
FMA_KERNEL static void adam_fma(const kernel_args *a, int64_t lo, int64_t hi) {
    const kernel_args k = *a;
    const kernel_args *kp = &k;
    const __m256 b1 = _mm256_set1_ps(k.b1), b2 = _mm256_set1_ps(k.b2);
    const __m256 omb1 = _mm256_set1_ps(k.omb1), omb2 = _mm256_set1_ps(k.omb2);
    const __m256 eps = _mm256_set1_ps(k.eps), step_neg = _mm256_set1_ps(k.step_neg);
    const __m256 bc2_sqrt = _mm256_set1_ps(k.bc2_sqrt), wd = _mm256_set1_ps(k.wd);
    const __m256 decay = _mm256_set1_ps(k.decay), sign = _mm256_set1_ps(-0.0f);
    int64_t j = lo; /* not i: ADAM_LOOP(.., j, ..) declares its own i */
    for (; j + 8 <= hi; j += 8) {
        __m256 g = _mm256_loadu_ps(k.g + j);
        if (k.maximize) g = _mm256_xor_ps(g, sign);
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
#endif

typedef void (*kernel_fn)(const kernel_args *, int64_t, int64_t);

static bool force_reference = false;

void gf_optim_use_reference_kernels(bool on) { force_reference = on; }

static kernel_fn pick(bool adam) {
#ifdef HAVE_FMA_KERNELS
    if (!force_reference && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return adam ? adam_fma : sgd_fma;
#endif
    return adam ? adam_ref : sgd_ref;
}

/* Runs the kernel over contiguous per-thread ranges (elementwise: any split is exact). */
static void run_kernel(gf_ctx *ctx, kernel_fn fn, const kernel_args *a) {
    int nt = gf_threads_for(ctx, a->n);
    if (nt <= 1) {
        fn(a, 0, a->n);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) fn(a, a->n * t / nt, a->n * (t + 1) / nt);
}

static void sgd_update(gf_ctx *ctx, const gf_optim_params *hp, param_state *s) {
    kernel_args a = {0};
    a.n = s->p->numel;
    a.p = gf_f32(s->p);
    a.g = gf_f32(s->p->grad);
    a.buf0 = s->buf;
    a.first = s->steps == 0;
    a.wd = (float)hp->weight_decay;
    a.mom = (float)hp->momentum;
    a.one_minus_damp = (float)(1.0 - hp->dampening);
    a.lr_neg = (float)-hp->lr;
    a.use_wd = hp->weight_decay != 0.0;
    a.nesterov = hp->nesterov;
    a.maximize = hp->maximize;
    run_kernel(ctx, pick(false), &a);
}

/* Bias corrections in double, as PyTorch computes them with Python floats. */
static void adam_update(gf_ctx *ctx, const gf_optim_params *hp, param_state *s) {
    kernel_args a = {0};
    a.n = s->p->numel;
    a.p = gf_f32(s->p);
    a.g = gf_f32(s->p->grad);
    a.buf0 = s->buf;
    a.buf1 = s->buf + a.n;
    a.buf2 = hp->amsgrad ? s->buf + 2 * a.n : NULL;
    const double t = (double)s->steps + 1.0;
    const double bc1 = 1.0 - pow(hp->beta1, t), bc2 = 1.0 - pow(hp->beta2, t);
    a.step_neg = (float)-(hp->lr / bc1);
    a.bc2_sqrt = (float)sqrt(bc2);
    a.b1 = (float)hp->beta1;
    a.b2 = (float)hp->beta2;
    a.omb1 = (float)(1.0 - hp->beta1);
    a.omb2 = (float)(1.0 - hp->beta2);
    a.eps = (float)hp->eps;
    a.wd = (float)hp->weight_decay;
    a.decay = (float)(1.0 - hp->lr * hp->weight_decay);
    a.adamw = hp->kind == GF_OPTIM_ADAMW;
    a.use_wd = hp->weight_decay != 0.0;
    a.maximize = hp->maximize;
    run_kernel(ctx, pick(true), &a);
}

gf_status gf_optim_step(gf_ctx *ctx, gf_optim *opt) {
    if (!opt) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: step on a NULL optimizer");
    for (int i = 0; i < opt->n; i++) {
        param_state *s = &opt->ps[i];
        if (!s->p->requires_grad || !s->p->grad) continue;
        if (!ensure_state(ctx, opt, s)) return ctx->status;
        if (opt->hp.kind == GF_OPTIM_SGD) sgd_update(ctx, &opt->hp, s);
        else adam_update(ctx, &opt->hp, s);
        s->steps++;
    }
    opt->steps++;
    return GF_OK;
}

void gf_optim_zero_grad(gf_optim *opt) {
    if (!opt) return;
    for (int i = 0; i < opt->n; i++) gf_tensor_zero_grad(opt->ps[i].p);
}

const gf_optim_params *gf_optim_get_params(const gf_optim *opt) { return &opt->hp; }
void gf_optim_set_lr(gf_optim *opt, double lr) { opt->hp.lr = lr; }
int gf_optim_n_params(const gf_optim *opt) { return opt->n; }
int64_t gf_optim_steps(const gf_optim *opt) { return opt->steps; }
size_t gf_optim_state_bytes(const gf_optim *opt) { return opt->state_bytes; }

gf_tensor *gf_optim_param(const gf_optim *opt, int i) {
    return (i >= 0 && i < opt->n) ? opt->ps[i].p : NULL;
}

int64_t gf_optim_param_steps(const gf_optim *opt, int i) {
    return (i >= 0 && i < opt->n) ? opt->ps[i].steps : 0;
}

const float *gf_optim_state(const gf_optim *opt, int i, const char *key) {
    if (i < 0 || i >= opt->n || !key || !opt->ps[i].buf) return NULL;
    const param_state *s = &opt->ps[i];
    static const char *const sgd_keys[] = {"momentum_buffer"};
    static const char *const adam_keys[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    const char *const *keys = opt->hp.kind == GF_OPTIM_SGD ? sgd_keys : adam_keys;
    for (int k = 0; k < s->n_buf; k++)
        if (strcmp(key, keys[k]) == 0) return s->buf + (int64_t)k * s->p->numel;
    return NULL;
}
