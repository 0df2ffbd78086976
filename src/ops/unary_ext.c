/* More elementwise functions, one recorded op for all of them (gf_unary): neg, abs, rounding,
 * sign, trigonometric and hyperbolic functions, erf, reciprocal and the activations ONNX
 * models use beyond PyTorch's common ones (hard sigmoid, hard swish, softsign, SELU, CELU,
 * thresholded ReLU, shrink). Each kind has its forward value and its derivative side by side;
 * the piecewise ones take PyTorch's choice at the joins (derivative of the right-hand piece,
 * 0 for abs and sign at 0, as torch.abs). */
#include "core/internal.h"
#include "graft/ops.h"

#include <math.h>

typedef struct {
    gf_unary_fn fn;
    float a, b;
} ux_saved;

static const char *const fn_names[GF_FN_COUNT] = {
    [GF_FN_NEG] = "neg", [GF_FN_ABS] = "abs", [GF_FN_RECIPROCAL] = "reciprocal",
    [GF_FN_FLOOR] = "floor", [GF_FN_CEIL] = "ceil", [GF_FN_ROUND] = "round",
    [GF_FN_TRUNC] = "trunc", [GF_FN_SIGN] = "sign", [GF_FN_SIN] = "sin", [GF_FN_COS] = "cos",
    [GF_FN_TAN] = "tan", [GF_FN_ASIN] = "asin", [GF_FN_ACOS] = "acos", [GF_FN_ATAN] = "atan",
    [GF_FN_SINH] = "sinh", [GF_FN_COSH] = "cosh", [GF_FN_ASINH] = "asinh",
    [GF_FN_ACOSH] = "acosh", [GF_FN_ATANH] = "atanh", [GF_FN_ERF] = "erf",
    [GF_FN_SOFTSIGN] = "softsign", [GF_FN_HARDSIGMOID] = "hardsigmoid",
    [GF_FN_HARDSWISH] = "hardswish", [GF_FN_SELU] = "selu", [GF_FN_CELU] = "celu",
    [GF_FN_THRESHOLDED_RELU] = "thresholded_relu", [GF_FN_SHRINK] = "shrink",
};

const char *gf_unary_fn_name(gf_unary_fn fn) {
    return fn >= 0 && fn < GF_FN_COUNT ? fn_names[fn] : "?";
}

/* f(x) with parameters a, b. */
static float fwd(gf_unary_fn fn, float x, float a, float b) {
    switch (fn) {
    case GF_FN_NEG: return -x;
    case GF_FN_ABS: return fabsf(x);
    case GF_FN_RECIPROCAL: return 1.0f / x;
    case GF_FN_FLOOR: return floorf(x);
    case GF_FN_CEIL: return ceilf(x);
    case GF_FN_ROUND: return nearbyintf(x); /* halves to even, as numpy and ONNX */
    case GF_FN_TRUNC: return truncf(x);
    case GF_FN_SIGN: return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x; /* 0 and NaN stay */
    case GF_FN_SIN: return sinf(x);
    case GF_FN_COS: return cosf(x);
    case GF_FN_TAN: return tanf(x);
    case GF_FN_ASIN: return asinf(x);
    case GF_FN_ACOS: return acosf(x);
    case GF_FN_ATAN: return atanf(x);
    case GF_FN_SINH: return sinhf(x);
    case GF_FN_COSH: return coshf(x);
    case GF_FN_ASINH: return asinhf(x);
    case GF_FN_ACOSH: return acoshf(x);
    case GF_FN_ATANH: return atanhf(x);
    case GF_FN_ERF: return erff(x);
    case GF_FN_SOFTSIGN: return x / (1.0f + fabsf(x));
    case GF_FN_HARDSIGMOID: return fmaxf(0.0f, fminf(1.0f, a * x + b));
    case GF_FN_HARDSWISH: return x * fmaxf(0.0f, fminf(1.0f, x / 6.0f + 0.5f));
    case GF_FN_SELU: return x > 0.0f ? b * x : b * a * expm1f(x);
    case GF_FN_CELU: return fmaxf(0.0f, x) + fminf(0.0f, a * expm1f(x / a));
    case GF_FN_THRESHOLDED_RELU: return x > a ? x : 0.0f;
    case GF_FN_SHRINK: return x < -b ? x + a : x > b ? x - a : 0.0f;
    case GF_FN_COUNT: break;
    }
    return x;
}

/* df/dx at x. */
static float deriv(gf_unary_fn fn, float x, float a, float b) {
    switch (fn) {
    case GF_FN_NEG: return -1.0f;
    case GF_FN_ABS: case GF_FN_SIGN:
        return fn == GF_FN_SIGN ? 0.0f : x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : 0.0f;
    case GF_FN_RECIPROCAL: return -1.0f / (x * x);
    case GF_FN_FLOOR: case GF_FN_CEIL: case GF_FN_ROUND: case GF_FN_TRUNC: return 0.0f;
    case GF_FN_SIN: return cosf(x);
    case GF_FN_COS: return -sinf(x);
    case GF_FN_TAN: { float t = tanf(x); return 1.0f + t * t; }
    case GF_FN_ASIN: return 1.0f / sqrtf(1.0f - x * x);
    case GF_FN_ACOS: return -1.0f / sqrtf(1.0f - x * x);
    case GF_FN_ATAN: return 1.0f / (1.0f + x * x);
    case GF_FN_SINH: return coshf(x);
    case GF_FN_COSH: return sinhf(x);
    case GF_FN_ASINH: return 1.0f / sqrtf(x * x + 1.0f);
    case GF_FN_ACOSH: return 1.0f / sqrtf(x * x - 1.0f);
    case GF_FN_ATANH: return 1.0f / (1.0f - x * x);
    case GF_FN_ERF: return 1.12837916709551257390f * expf(-x * x); /* 2/sqrt(pi) e^-x^2 */
    case GF_FN_SOFTSIGN: { float d = 1.0f + fabsf(x); return 1.0f / (d * d); }
    case GF_FN_HARDSIGMOID: { float v = a * x + b; return v > 0.0f && v < 1.0f ? a : 0.0f; }
    case GF_FN_HARDSWISH: /* torch: x/3 + 1/2 inside (-3, 3), 0 below, 1 above */
        return x < -3.0f ? 0.0f : x <= 3.0f ? x / 3.0f + 0.5f : 1.0f;
    case GF_FN_SELU: return x > 0.0f ? b : b * a * expf(x);
    case GF_FN_CELU: return x > 0.0f ? 1.0f : expf(x / a);
    case GF_FN_THRESHOLDED_RELU: return x > a ? 1.0f : 0.0f;
    case GF_FN_SHRINK: return x < -b || x > b ? 1.0f : 0.0f;
    case GF_FN_COUNT: break;
    }
    return 0.0f;
}

gf_tensor *gf_unary(gf_ctx *ctx, gf_tensor *x, gf_unary_fn fn, float a, float b) {
    if (fn < 0 || fn >= GF_FN_COUNT) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "unary: unknown function %d", (int)fn);
        return NULL;
    }
    const char *name = fn_names[fn];
    if (!gf_check_tensor(ctx, name, "input", x, GF_F32)) return NULL;
    if (fn == GF_FN_CELU && a == 0.0f) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "celu: alpha must not be 0");
        return NULL;
    }
    const float *px = gf_contig_f32(ctx, x);
    gf_tensor *out = px ? gf_empty(ctx, GF_F32, x->ndim, x->shape) : NULL;
    if (!out) return NULL;
    float *o = gf_f32(out);
    const int64_t n = x->numel;
#pragma omp parallel for num_threads(gf_threads_for(ctx, 4 * n)) schedule(static)
    for (int64_t i = 0; i < n; i++) o[i] = fwd(fn, px[i], a, b);
    if (gf_wants_grad(ctx, &x, 1)) {
        gf_node *node = gf_record(ctx, GF_OP_UNARY_EXT, out, &x, 1, sizeof(ux_saved));
        if (!node) return NULL;
        *(ux_saved *)node->saved = (ux_saved){fn, a, b};
    }
    return out;
}

void gf_bw_unary_ext(gf_ctx *ctx, gf_node *node) {
    gf_tensor *x = node->in[0];
    float *gx = gf_grad_of(ctx, x);
    const float *px = gx ? gf_contig_f32(ctx, x) : NULL;
    if (!px) return;
    const ux_saved *s = node->saved;
    const float *g = gf_f32(node->out->grad);
    const int64_t n = x->numel;
#pragma omp parallel for num_threads(gf_threads_for(ctx, 4 * n)) schedule(static)
    for (int64_t i = 0; i < n; i++) gx[i] += g[i] * deriv(s->fn, px[i], s->a, s->b);
}

gf_tensor *gf_neg(gf_ctx *ctx, gf_tensor *x) { return gf_unary(ctx, x, GF_FN_NEG, 0, 0); }
gf_tensor *gf_abs(gf_ctx *ctx, gf_tensor *x) { return gf_unary(ctx, x, GF_FN_ABS, 0, 0); }
gf_tensor *gf_hardsigmoid(gf_ctx *ctx, gf_tensor *x, float alpha, float beta) {
    return gf_unary(ctx, x, GF_FN_HARDSIGMOID, alpha, beta);
}
gf_tensor *gf_hardswish(gf_ctx *ctx, gf_tensor *x) {
    return gf_unary(ctx, x, GF_FN_HARDSWISH, 0, 0);
}
