/* Unary math and activations (exp, log, sqrt, pow_scalar, clamp, relu ... softplus) through one
 * elementwise table, and numerically stable softmax / log_softmax along any axis. */
#include "core/internal.h"
#include "graft/ops.h"
#include "kernels/vec.h"

#include <math.h>

/* ---- elementwise unary ops -------------------------------------------------------------
 * Every unary op is a kind in one table; the forward and backward kernels are one switch of
 * plain loops over contiguous arrays (x: input, y: output, g: upstream grad, gx: input grad).
 * The op's parameters travel in unary_saved.a / .b (exponent; lo, hi; slope; alpha; beta,
 * threshold). */

typedef enum {
    U_EXP, U_LOG, U_SQRT, U_POW, U_CLAMP, U_RELU, U_LEAKY_RELU, U_ELU, U_GELU, U_GELU_TANH,
    U_SILU, U_SIGMOID, U_TANH, U_SOFTPLUS, U_COUNT
} unary_kind;

static const struct {
    const char *name;
    gf_op op;
    bool uses_x; /* backward reads the input (else only the saved output) */
    int cost;    /* rough work per element, for the thread count */
} unary_info[U_COUNT] = {
    [U_EXP] = {"exp", GF_OP_EXP, false, 4},
    [U_LOG] = {"log", GF_OP_LOG, true, 4},
    [U_SQRT] = {"sqrt", GF_OP_SQRT, false, 2},
    [U_POW] = {"pow_scalar", GF_OP_POW_SCALAR, true, 8},
    [U_CLAMP] = {"clamp", GF_OP_CLAMP, false, 1}, /* recorded: a saved mask (below) */
    [U_RELU] = {"relu", GF_OP_RELU, false, 1},
    [U_LEAKY_RELU] = {"leaky_relu", GF_OP_LEAKY_RELU, true, 1},
    [U_ELU] = {"elu", GF_OP_ELU, true, 4},
    [U_GELU] = {"gelu", GF_OP_GELU, true, 8},
    [U_GELU_TANH] = {"gelu", GF_OP_GELU, true, 8},
    [U_SILU] = {"silu", GF_OP_SILU, true, 4},
    [U_SIGMOID] = {"sigmoid", GF_OP_SIGMOID, false, 4},
    [U_TANH] = {"tanh", GF_OP_TANH, false, 4},
    [U_SOFTPLUS] = {"softplus", GF_OP_SOFTPLUS, true, 8},
};

typedef struct {
    unary_kind kind;
    float a, b;
    uint8_t *mask; /* relu in a recorded graph: bit i = x[i] > 0 (arena), else NULL */
    bool over_bn;  /* gf_act_inplace_done: the input is a batch_norm's output, read by it alone */
} unary_saved;

#define SQRT1_2 0.70710678118654752440f      /* 1/sqrt(2) */
#define INV_SQRT_2PI 0.39894228040143267794f /* 1/sqrt(2 pi) */
#define GELU_BETA 0.79788456080286535588f    /* sqrt(2/pi), PyTorch's kBeta */
#define GELU_KAPPA 0.044715f

/* for i in [0, n): STMT, split statically over nt threads. */
#define EW_LOOP(n, nt, STMT)                                                                \
    do {                                                                                    \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t i = 0; i < (n); i++) { STMT; }                                        \
    } while (0)

static void unary_forward(int nt, const unary_saved *s, const float *x, float *y, int64_t n) {
    const float a = s->a, b = s->b;
    switch (s->kind) {
    case U_EXP: EW_LOOP(n, nt, y[i] = expf(x[i])); break;
    case U_LOG: EW_LOOP(n, nt, y[i] = logf(x[i])); break;
    case U_SQRT: EW_LOOP(n, nt, y[i] = sqrtf(x[i])); break;
    case U_POW: EW_LOOP(n, nt, y[i] = powf(x[i], a)); break;
    /* written so that NaN passes through and lo > hi gives hi, as torch.clamp */
    case U_CLAMP: EW_LOOP(n, nt, float v = x[i] < a ? a : x[i]; y[i] = v > b ? b : v); break;
    case U_RELU: EW_LOOP(n, nt, y[i] = x[i] < 0.0f ? 0.0f : x[i]); break;
    /* a sum of two selects, not x > 0 ? x : a x: GCC vectorises only this form */
    case U_LEAKY_RELU:
        EW_LOOP(n, nt, y[i] = (x[i] > 0.0f ? x[i] : 0.0f) + a * (x[i] > 0.0f ? 0.0f : x[i]));
        break;
    case U_ELU: EW_LOOP(n, nt, y[i] = x[i] > 0.0f ? x[i] : a * expm1f(x[i])); break;
    case U_GELU: EW_LOOP(n, nt, y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * SQRT1_2))); break;
    case U_GELU_TANH:
        EW_LOOP(n, nt, float v = x[i];
                y[i] = 0.5f * v * (1.0f + tanhf(GELU_BETA * (v + GELU_KAPPA * v * v * v))));
        break;
    case U_SILU: EW_LOOP(n, nt, y[i] = x[i] / (1.0f + expf(-x[i]))); break;
    case U_SIGMOID: EW_LOOP(n, nt, y[i] = 1.0f / (1.0f + expf(-x[i]))); break;
    case U_TANH: EW_LOOP(n, nt, y[i] = tanhf(x[i])); break;
    case U_SOFTPLUS:
        EW_LOOP(n, nt, float z = x[i] * a; y[i] = z > b ? x[i] : log1pf(expf(z)) / a);
        break;
    case U_COUNT: break;
    }
}

/* c ? a : b with both arms evaluated (function arguments are), so no load is conditional. */
static inline float sel(int c, float a, float b) { return c ? a : b; }

/* The 0 of "0 + term" is read through a volatile: with a literal, GCC folds 0.0f + (c ? g :
 * 0.0f) into a branch and the loop no longer vectorises. */
static const volatile float k_zero = 0.0f;

/* gx[i] += TERM, or with fresh (gx not initialised, see gf_grad_of_for_write) gx[i] = 0 +
 * TERM, which is bitwise what zero-filling and accumulating gives. */
#define BW_LOOP(n, nt, fresh, TERM)                                                         \
    do {                                                                                    \
        const float z_ = k_zero;                                                            \
        if (fresh) EW_LOOP(n, nt, float t_ = (TERM); gx[i] = z_ + t_);                      \
        else EW_LOOP(n, nt, float t_ = (TERM); gx[i] += t_);                                \
    } while (0)

/* gx += g * dy/dx, with PyTorch's backward formulas (derivatives.yaml / its kernels). Every
 * term loads g[i] (and x[i], y[i]) unconditionally and selects: no branch, so the piecewise
 * kernels (relu, clamp, leaky_relu) vectorise, and ELU and softplus evaluate both pieces
 * instead of mispredicting on real data (the exp of the discarded piece may overflow to inf;
 * the select drops it). */
static void unary_backward_kernel(int nt, const unary_saved *s, const float *x, const float *y,
                                  const float *g, float *gx, int64_t n, bool fresh) {
    const float a = s->a, b = s->b;
    switch (s->kind) {
    case U_EXP: BW_LOOP(n, nt, fresh, g[i] * y[i]); break;
    case U_LOG: BW_LOOP(n, nt, fresh, g[i] / x[i]); break;
    case U_SQRT: BW_LOOP(n, nt, fresh, g[i] / (2.0f * y[i])); break;
    case U_POW: /* torch: exponent 0 gives a zero gradient, even at x = 0 */
        if (a != 0.0f) BW_LOOP(n, nt, fresh, g[i] * a * powf(x[i], a - 1.0f));
        else if (fresh) EW_LOOP(n, nt, gx[i] = 0.0f);
        break;
    case U_CLAMP: BW_LOOP(n, nt, fresh, sel((x[i] >= a) & (x[i] <= b), g[i], 0.0f)); break;
    case U_RELU: BW_LOOP(n, nt, fresh, sel(y[i] > 0.0f, g[i], 0.0f)); break;
    case U_LEAKY_RELU:
        BW_LOOP(n, nt, fresh, sel(x[i] > 0.0f, g[i], 0.0f) + a * sel(x[i] > 0.0f, 0.0f, g[i]));
        break;
    case U_ELU: BW_LOOP(n, nt, fresh, sel(x[i] > 0.0f, g[i], g[i] * a * expf(x[i]))); break;
    case U_GELU: /* d/dx x Phi(x) = Phi(x) + x phi(x) */
        BW_LOOP(n, nt, fresh, g[i] * (0.5f * (1.0f + erff(x[i] * SQRT1_2)) +
                                      x[i] * (expf(-0.5f * x[i] * x[i]) * INV_SQRT_2PI)));
        break;
    case U_GELU_TANH: /* u = beta (x + kappa x^3): d/dx 0.5 x (1 + tanh u) */
        EW_LOOP(n, nt, float v = x[i];
                float t = tanhf(GELU_BETA * (v + GELU_KAPPA * v * v * v));
                float du = GELU_BETA * (1.0f + 3.0f * GELU_KAPPA * v * v);
                float d = g[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
                gx[i] = (fresh ? 0.0f : gx[i]) + d);
        break;
    case U_SILU: /* s (1 + x (1 - s)) with s = sigmoid(x) */
        EW_LOOP(n, nt, float sg = 1.0f / (1.0f + expf(-x[i]));
                float d = g[i] * sg * (1.0f + x[i] * (1.0f - sg));
                gx[i] = (fresh ? 0.0f : gx[i]) + d);
        break;
    case U_SIGMOID: BW_LOOP(n, nt, fresh, g[i] * y[i] * (1.0f - y[i])); break;
    case U_TANH: BW_LOOP(n, nt, fresh, g[i] * (1.0f - y[i] * y[i])); break;
    case U_SOFTPLUS: /* sigmoid(beta x) below the threshold, 1 above */
        BW_LOOP(n, nt, fresh, sel(x[i] * a > b, g[i], g[i] / (1.0f + expf(-(x[i] * a)))));
        break;
    case U_COUNT: break;
    }
}

static int64_t unary_work(unary_kind k, int64_t n) { return n * unary_info[k].cost; }

/* A recorded relu saves its sign bits, so that its backward reads n / 8 bytes instead of the
 * n floats of its output (it is a pure streaming kernel: a third less memory traffic).
 * Threads take whole blocks of RELU_BLOCK elements (a multiple of 8, whole mask bytes). */
enum { RELU_BLOCK = 8192 };

static void relu_mask_run(gf_ctx *ctx, bool bw, const float *a, float *c, uint8_t *mask,
                          int64_t n, bool fresh) {
    const int64_t blocks = (n + RELU_BLOCK - 1) / RELU_BLOCK;
#pragma omp parallel for num_threads(gf_threads_for(ctx, n)) schedule(static)
    for (int64_t bl = 0; bl < blocks; bl++) {
        int64_t i0 = bl * RELU_BLOCK, i1 = i0 + RELU_BLOCK < n ? i0 + RELU_BLOCK : n;
        if (bw) gf_vec_relu_mask_bwd(mask, a, c, i0, i1, fresh);
        else gf_vec_relu_mask_fwd(a, c, mask, i0, i1);
    }
}

/* Recorded clamp: y = clamp(x, a, b) and bit i % 8 of mask[i / 8] = a <= x[i] <= b (false for
 * NaN), the condition PyTorch's clamp backward passes the gradient on; so the backward reads
 * the mask (gf_vec_relu_mask_bwd) instead of x, and x's storage may hold y. */
static void clamp_mask_run(gf_ctx *ctx, const float *x, float *y, uint8_t *mask, int64_t n,
                           float a, float b) {
    const int64_t blocks = (n + RELU_BLOCK - 1) / RELU_BLOCK;
#pragma omp parallel for num_threads(gf_threads_for(ctx, n)) schedule(static)
    for (int64_t bl = 0; bl < blocks; bl++) {
        const int64_t i0 = bl * RELU_BLOCK, i1 = i0 + RELU_BLOCK < n ? i0 + RELU_BLOCK : n;
        gf_vec_clamp_mask_fwd(x, y, mask, i0, i1, a, b);
    }
}

/* inplace: out is a new header on x's storage (x contiguous; gf_relu_inplace,
 * gf_clamp_inplace). The kernels read each element before writing it, so they run unchanged
 * with out == x. */
static gf_tensor *unary(gf_ctx *ctx, unary_kind k, gf_tensor *x, float a, float b,
                        bool inplace) {
    if (!gf_check_tensor(ctx, unary_info[k].name, "input", x, GF_F32)) return NULL;
    const float *px = inplace ? gf_f32(x) : gf_contig_f32(ctx, x);
    gf_tensor *out = !px ? NULL
                     : inplace ? gf_view_raw(ctx, GF_F32, x->ndim, x->shape, NULL, x->data)
                               : gf_empty(ctx, GF_F32, x->ndim, x->shape);
    if (!out) return NULL;
    unary_saved s = {k, a, b, NULL, false};
    const bool rec = gf_wants_grad(ctx, &x, 1);
    if ((k == U_RELU || k == U_CLAMP) && rec) {
        if (!(s.mask = gf_scratch(ctx, (size_t)((x->numel + 7) / 8)))) return NULL;
        if (k == U_RELU) relu_mask_run(ctx, false, px, gf_f32(out), s.mask, x->numel, false);
        else clamp_mask_run(ctx, px, gf_f32(out), s.mask, x->numel, a, b);
    } else {
        unary_forward(gf_threads_for(ctx, unary_work(k, x->numel)), &s, px, gf_f32(out),
                      x->numel);
    }
    if (rec) {
        gf_node *node = gf_record(ctx, unary_info[k].op, out, &x, 1, sizeof s);
        if (!node) return NULL;
        *(unary_saved *)node->saved = s;
    }
    return out;
}

static void unary_backward(gf_ctx *ctx, gf_node *node) {
    const unary_saved *s = node->saved;
    if (!node->in[0]->requires_grad) return;
    const float *x = NULL;
    if (unary_info[s->kind].uses_x && !(x = gf_contig_f32(ctx, node->in[0]))) return;
    gf_tensor *in = node->in[0];
    bool fresh = true;
    /* inside a Sequential the output's gradient is dead after this: compute the input's
     * over it (every kernel reads g[i] before writing gx[i]) */
    float *gx = gf_take_out_grad(node, in) ? gf_f32(in->grad)
                                           : gf_grad_of_for_write(ctx, in, &fresh);
    if (!gx) return;
    int64_t n = node->out->numel;
    if (s->mask) {
        /* over a batch_norm's output: the gradient handed over unmasked (gx is out's grad)
         * and the mask applied by the batch_norm's backward as it reads each row */
        if (s->over_bn && fresh && gx == gf_f32(node->out->grad) &&
            gf_batch_norm_defer_mask(in->node && in->node->out == in ? in->node : NULL, s->mask))
            return;
        relu_mask_run(ctx, true, gf_f32(node->out->grad), gx, s->mask, n, fresh);
        return;
    }
    unary_backward_kernel(gf_threads_for(ctx, unary_work(s->kind, n)), s, x,
                          gf_f32(node->out), gf_f32(node->out->grad), gx, n, fresh);
}

gf_tensor *gf_exp(gf_ctx *ctx, gf_tensor *x) { return unary(ctx, U_EXP, x, 0, 0, false); }
gf_tensor *gf_log(gf_ctx *ctx, gf_tensor *x) { return unary(ctx, U_LOG, x, 0, 0, false); }
gf_tensor *gf_sqrt(gf_ctx *ctx, gf_tensor *x) { return unary(ctx, U_SQRT, x, 0, 0, false); }
gf_tensor *gf_pow_scalar(gf_ctx *ctx, gf_tensor *x, float exponent) {
    return unary(ctx, U_POW, x, exponent, 0, false);
}
gf_tensor *gf_clamp(gf_ctx *ctx, gf_tensor *x, float lo, float hi) {
    return unary(ctx, U_CLAMP, x, lo, hi, false);
}
gf_tensor *gf_relu(gf_ctx *ctx, gf_tensor *x) { return unary(ctx, U_RELU, x, 0, 0, false); }
gf_tensor *gf_relu_inplace(gf_ctx *ctx, gf_tensor *x) {
    if (x && (x->persistent || !gf_tensor_is_contiguous(x))) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "relu: in place needs a contiguous arena tensor");
        return NULL;
    }
    return unary(ctx, U_RELU, x, 0, 0, true);
}
gf_tensor *gf_clamp_inplace(gf_ctx *ctx, gf_tensor *x, float lo, float hi) {
    if (x && (x->persistent || !gf_tensor_is_contiguous(x))) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "clamp: in place needs a contiguous arena tensor");
        return NULL;
    }
    return unary(ctx, U_CLAMP, x, lo, hi, true);
}
gf_tensor *gf_act_inplace_done(gf_ctx *ctx, gf_tensor *x, bool relu, float lo, float hi,
                               uint8_t *mask) {
    if (!gf_check_tensor(ctx, relu ? "relu" : "clamp", "input", x, GF_F32)) return NULL;
    gf_tensor *out = gf_view_raw(ctx, GF_F32, x->ndim, x->shape, NULL, x->data);
    if (!out || !gf_wants_grad(ctx, &x, 1)) return out;
    const unary_saved s = {relu ? U_RELU : U_CLAMP, relu ? 0.0f : lo, relu ? 0.0f : hi, mask,
                           true};
    gf_node *node = gf_record(ctx, unary_info[s.kind].op, out, &x, 1, sizeof s);
    if (!node) return NULL;
    *(unary_saved *)node->saved = s;
    return out;
}

gf_tensor *gf_leaky_relu(gf_ctx *ctx, gf_tensor *x, float negative_slope) {
    return unary(ctx, U_LEAKY_RELU, x, negative_slope, 0, false);
}
gf_tensor *gf_elu(gf_ctx *ctx, gf_tensor *x, float alpha) {
    return unary(ctx, U_ELU, x, alpha, 0, false);
}
gf_tensor *gf_gelu(gf_ctx *ctx, gf_tensor *x, gf_gelu_approx approx) {
    if (approx != GF_GELU_EXACT && approx != GF_GELU_TANH) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "gelu: approximation %d is neither GF_GELU_EXACT nor GF_GELU_TANH",
                         (int)approx);
        return NULL;
    }
    return unary(ctx, approx == GF_GELU_TANH ? U_GELU_TANH : U_GELU, x, 0, 0, false);
}
gf_tensor *gf_silu(gf_ctx *ctx, gf_tensor *x) { return unary(ctx, U_SILU, x, 0, 0, false); }
gf_tensor *gf_sigmoid(gf_ctx *ctx, gf_tensor *x) {
    return unary(ctx, U_SIGMOID, x, 0, 0, false);
}
gf_tensor *gf_tanh(gf_ctx *ctx, gf_tensor *x) { return unary(ctx, U_TANH, x, 0, 0, false); }
gf_tensor *gf_softplus(gf_ctx *ctx, gf_tensor *x, float beta, float threshold) {
    return unary(ctx, U_SOFTPLUS, x, beta, threshold, false);
}

#define UNARY_BW(name) \
    void gf_bw_##name(gf_ctx *ctx, gf_node *n) { unary_backward(ctx, n); }
UNARY_BW(exp)
UNARY_BW(log)
UNARY_BW(sqrt)
UNARY_BW(pow_scalar)
UNARY_BW(clamp)
UNARY_BW(relu)
UNARY_BW(leaky_relu)
UNARY_BW(elu)
UNARY_BW(gelu)
UNARY_BW(silu)
UNARY_BW(sigmoid)
UNARY_BW(tanh)
UNARY_BW(softplus)

/* ---- softmax / log_softmax ---------------------------------------------------------------
 * x is viewed as [outer, len, inner] around the axis. The last axis (inner == 1) runs row by
 * row; otherwise a tile of up to SM_LANES adjacent columns runs together so the inner loops
 * stay contiguous. Forward subtracts the row maximum; backward uses only the output y:
 *   softmax:     dx = y (g - sum(g y))
 *   log_softmax: dx = g - exp(y) sum(g)                                                   */

enum { SM_LANES = 64 };

typedef struct {
    int64_t outer, len, inner;
    bool log;
} softmax_saved;

static void softmax_row(const float *x, float *y, int64_t len, bool log) {
    float m = -INFINITY, s = 0.0f;
    for (int64_t l = 0; l < len; l++) m = x[l] > m ? x[l] : m;
    for (int64_t l = 0; l < len; l++) {
        y[l] = expf(x[l] - m);
        s += y[l];
    }
    if (log) { /* (x - m) - log s: x - m is exact for values near m */
        float ls = logf(s);
        for (int64_t l = 0; l < len; l++) y[l] = (x[l] - m) - ls;
    } else {
        float r = 1.0f / s;
        for (int64_t l = 0; l < len; l++) y[l] *= r;
    }
}

/* w adjacent columns of a [len, inner] slab. */
static void softmax_cols(const float *x, float *y, int64_t len, int64_t inner, int64_t w,
                         bool log) {
    float m[SM_LANES], s[SM_LANES];
    for (int64_t j = 0; j < w; j++) {
        m[j] = -INFINITY;
        s[j] = 0.0f;
    }
    for (int64_t l = 0; l < len; l++)
        for (int64_t j = 0; j < w; j++) {
            float v = x[l * inner + j];
            m[j] = v > m[j] ? v : m[j];
        }
    for (int64_t l = 0; l < len; l++)
        for (int64_t j = 0; j < w; j++) {
            y[l * inner + j] = expf(x[l * inner + j] - m[j]);
            s[j] += y[l * inner + j];
        }
    for (int64_t j = 0; j < w; j++) s[j] = log ? logf(s[j]) : 1.0f / s[j];
    for (int64_t l = 0; l < len; l++)
        for (int64_t j = 0; j < w; j++) {
            int64_t k = l * inner + j;
            y[k] = log ? (x[k] - m[j]) - s[j] : y[k] * s[j];
        }
}

static void softmax_bw_row(const float *y, const float *g, float *gx, int64_t len, bool log) {
    float d = 0.0f;
    if (log) {
        for (int64_t l = 0; l < len; l++) d += g[l];
        for (int64_t l = 0; l < len; l++) gx[l] += g[l] - expf(y[l]) * d;
    } else {
        for (int64_t l = 0; l < len; l++) d += g[l] * y[l];
        for (int64_t l = 0; l < len; l++) gx[l] += y[l] * (g[l] - d);
    }
}

static void softmax_bw_cols(const float *y, const float *g, float *gx, int64_t len,
                            int64_t inner, int64_t w, bool log) {
    float d[SM_LANES];
    for (int64_t j = 0; j < w; j++) d[j] = 0.0f;
    for (int64_t l = 0; l < len; l++)
        for (int64_t j = 0; j < w; j++) {
            int64_t k = l * inner + j;
            d[j] += log ? g[k] : g[k] * y[k];
        }
    for (int64_t l = 0; l < len; l++)
        for (int64_t j = 0; j < w; j++) {
            int64_t k = l * inner + j;
            gx[k] += log ? g[k] - expf(y[k]) * d[j] : y[k] * (g[k] - d[j]);
        }
}

/* Runs the row or column kernel over every (outer, column tile) unit; each unit is owned by
 * one thread. bw: backward (a = y, b = g, c = gx) else forward (a = x, c = y). */
static void softmax_run(gf_ctx *ctx, const softmax_saved *s, bool bw, const float *a,
                        const float *b, float *c) {
    int64_t tiles = (s->inner + SM_LANES - 1) / SM_LANES, units = s->outer * tiles;
    int64_t slab = s->len * s->inner;
#pragma omp parallel for num_threads(gf_threads_for(ctx, s->outer * slab * 8)) schedule(static)
    for (int64_t u = 0; u < units; u++) {
        int64_t o = u / tiles, j0 = (u % tiles) * SM_LANES;
        int64_t w = s->inner - j0 < SM_LANES ? s->inner - j0 : SM_LANES;
        int64_t off = o * slab + j0;
        if (s->inner == 1 && bw) softmax_bw_row(a + off, b + off, c + off, s->len, s->log);
        else if (s->inner == 1) softmax_row(a + off, c + off, s->len, s->log);
        else if (bw) softmax_bw_cols(a + off, b + off, c + off, s->len, s->inner, w, s->log);
        else softmax_cols(a + off, c + off, s->len, s->inner, w, s->log);
    }
}

static gf_tensor *softmax_op(gf_ctx *ctx, gf_op op, const char *name, gf_tensor *x, int axis,
                             bool log) {
    if (!gf_check_tensor(ctx, name, "input", x, GF_F32)) return NULL;
    int ax;
    /* a 0-d tensor takes axis 0 or -1, as in PyTorch */
    if (!gf_check_axis(ctx, name, x->ndim ? x->ndim : 1, axis, &ax)) return NULL;
    softmax_saved s = {1, 1, 1, log};
    if (x->ndim) {
        s.outer = gf_numel_of(ax, x->shape);
        s.len = x->shape[ax];
        s.inner = gf_numel_of(x->ndim - ax - 1, x->shape + ax + 1);
    }
    const float *px = gf_contig_f32(ctx, x);
    gf_tensor *out = px ? gf_empty(ctx, GF_F32, x->ndim, x->shape) : NULL;
    if (!out) return NULL;
    if (x->numel) softmax_run(ctx, &s, false, px, NULL, gf_f32(out));
    if (gf_wants_grad(ctx, &x, 1)) {
        gf_node *node = gf_record(ctx, op, out, &x, 1, sizeof s);
        if (!node) return NULL;
        *(softmax_saved *)node->saved = s;
    }
    return out;
}

gf_tensor *gf_softmax(gf_ctx *ctx, gf_tensor *x, int axis) {
    return softmax_op(ctx, GF_OP_SOFTMAX, "softmax", x, axis, false);
}
gf_tensor *gf_log_softmax(gf_ctx *ctx, gf_tensor *x, int axis) {
    return softmax_op(ctx, GF_OP_LOG_SOFTMAX, "log_softmax", x, axis, true);
}

static void softmax_backward(gf_ctx *ctx, gf_node *n) {
    float *gx = gf_grad_of(ctx, n->in[0]);
    if (!gx || n->out->numel == 0) return;
    softmax_run(ctx, n->saved, true, gf_f32(n->out), gf_f32(n->out->grad), gx);
}
void gf_bw_softmax(gf_ctx *ctx, gf_node *n) { softmax_backward(ctx, n); }
void gf_bw_log_softmax(gf_ctx *ctx, gf_node *n) { softmax_backward(ctx, n); }
