/* graft ops: every differentiable operation. Each takes the context first, returns a new
 * arena tensor (valid until gf_ctx_reset), and returns NULL with a context error naming the
 * op and the shapes when the inputs do not fit. Semantics follow PyTorch's functions of the
 * same name; axes may be negative (counted from the end). */
#ifndef GRAFT_OPS_H
#define GRAFT_OPS_H

#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gf_reduction { GF_REDUCE_NONE = 0, GF_REDUCE_MEAN, GF_REDUCE_SUM } gf_reduction;

/* ---- elementwise arithmetic, broadcasting like PyTorch (src/ops/arith.c) ------------- */
gf_tensor *gf_add(gf_ctx *ctx, gf_tensor *a, gf_tensor *b);
gf_tensor *gf_sub(gf_ctx *ctx, gf_tensor *a, gf_tensor *b);
gf_tensor *gf_mul(gf_ctx *ctx, gf_tensor *a, gf_tensor *b);
gf_tensor *gf_div(gf_ctx *ctx, gf_tensor *a, gf_tensor *b);
/* a * scale + shift, one fused op (covers add/mul/neg by a constant). */
gf_tensor *gf_affine(gf_ctx *ctx, gf_tensor *a, float scale, float shift);
gf_tensor *gf_add_scalar(gf_ctx *ctx, gf_tensor *a, float s);
gf_tensor *gf_mul_scalar(gf_ctx *ctx, gf_tensor *a, float s);
/* a ** b with broadcasting (differentiable in both; d/db uses log a, defined for a > 0). */
gf_tensor *gf_pow(gf_ctx *ctx, gf_tensor *a, gf_tensor *b);

/* ---- matrix products (src/ops/matmul.c) ----------------------------------------------- */
/* torch.matmul: 1-D/2-D/batched with broadcast batch dimensions. */
gf_tensor *gf_matmul(gf_ctx *ctx, gf_tensor *a, gf_tensor *b);
/* x[..., in] @ w[out, in]^T + b[out]; b may be NULL. */
gf_tensor *gf_linear(gf_ctx *ctx, gf_tensor *x, gf_tensor *w, gf_tensor *b);

/* ---- unary math and activations (src/ops/act.c) -------------------------------------- */
gf_tensor *gf_exp(gf_ctx *ctx, gf_tensor *x);
gf_tensor *gf_log(gf_ctx *ctx, gf_tensor *x);
gf_tensor *gf_sqrt(gf_ctx *ctx, gf_tensor *x);
gf_tensor *gf_pow_scalar(gf_ctx *ctx, gf_tensor *x, float exponent);
/* Bounds may be -INFINITY / INFINITY for "none". Gradient passes where lo <= x <= hi. */
gf_tensor *gf_clamp(gf_ctx *ctx, gf_tensor *x, float lo, float hi);
gf_tensor *gf_relu(gf_ctx *ctx, gf_tensor *x);
gf_tensor *gf_leaky_relu(gf_ctx *ctx, gf_tensor *x, float negative_slope);
gf_tensor *gf_elu(gf_ctx *ctx, gf_tensor *x, float alpha);
typedef enum gf_gelu_approx { GF_GELU_EXACT = 0, GF_GELU_TANH = 1 } gf_gelu_approx;
gf_tensor *gf_gelu(gf_ctx *ctx, gf_tensor *x, gf_gelu_approx approx);
gf_tensor *gf_silu(gf_ctx *ctx, gf_tensor *x);
gf_tensor *gf_sigmoid(gf_ctx *ctx, gf_tensor *x);
gf_tensor *gf_tanh(gf_ctx *ctx, gf_tensor *x);
/* log(1 + exp(beta x)) / beta, linear where beta x > threshold (PyTorch: 1, 20). */
gf_tensor *gf_softplus(gf_ctx *ctx, gf_tensor *x, float beta, float threshold);
gf_tensor *gf_softmax(gf_ctx *ctx, gf_tensor *x, int axis);
gf_tensor *gf_log_softmax(gf_ctx *ctx, gf_tensor *x, int axis);

/* ---- reductions (src/ops/reduce.c) ------------------------------------------------------
 * axes: list of n_axes axes; n_axes == 0 reduces over all. keepdim as in PyTorch. */
gf_tensor *gf_sum(gf_ctx *ctx, gf_tensor *x, const int *axes, int n_axes, bool keepdim);
gf_tensor *gf_mean(gf_ctx *ctx, gf_tensor *x, const int *axes, int n_axes, bool keepdim);
/* torch.amax: gradient shared equally between tied maxima. */
gf_tensor *gf_max(gf_ctx *ctx, gf_tensor *x, const int *axes, int n_axes, bool keepdim);
/* Index of the maximum along one axis (int64, no gradient). */
gf_tensor *gf_argmax(gf_ctx *ctx, gf_tensor *x, int axis, bool keepdim);

/* ---- shape and views (src/ops/shape.c) ------------------------------------------------
 * reshape/flatten/transpose/permute/slice return views sharing data where the layout allows;
 * gradients flow back through them. */
/* One entry of shape may be -1 (inferred). */
gf_tensor *gf_reshape(gf_ctx *ctx, gf_tensor *x, int ndim, const int64_t *shape);
/* torch.flatten(x, start, end). */
gf_tensor *gf_flatten(gf_ctx *ctx, gf_tensor *x, int start_axis, int end_axis);
gf_tensor *gf_transpose(gf_ctx *ctx, gf_tensor *x, int axis0, int axis1);
gf_tensor *gf_permute(gf_ctx *ctx, gf_tensor *x, const int *perm);
/* Elements start, start+step, ... < end along axis (end clipped to the size; step >= 1). */
gf_tensor *gf_slice(gf_ctx *ctx, gf_tensor *x, int axis, int64_t start, int64_t end,
                    int64_t step);
/* A contiguous copy (or x itself when already contiguous). */
gf_tensor *gf_contiguous(gf_ctx *ctx, gf_tensor *x);
gf_tensor *gf_concat(gf_ctx *ctx, gf_tensor *const *xs, int n, int axis);
/* Splits x along axis into n parts of the given sizes (which must sum to the axis size);
 * writes the n views to out. Returns GF_OK or an error. */
gf_status gf_split(gf_ctx *ctx, gf_tensor *x, const int64_t *sizes, int n, int axis,
                   gf_tensor **out);
/* torch.nn.functional.pad, constant mode: pads holds (before, after) pairs starting with the
 * LAST axis, n_pads = 2 * number of padded axes. Negative pads crop. */
gf_tensor *gf_pad(gf_ctx *ctx, gf_tensor *x, const int64_t *pads, int n_pads, float value);

/* ---- convolution and pooling (src/ops/conv.c, src/ops/pool.c) ---------------------------- */
typedef struct gf_conv_params {
    int stride[2];
    int padding[2];
    int dilation[2];
    int groups;
} gf_conv_params;
/* stride 1, padding 0, dilation 1, groups 1. */
gf_conv_params gf_conv_default_params(void);

/* x [N, C, H, W], w [O, C/groups, KH, KW], b [O] or NULL -> [N, O, OH, OW]. */
gf_tensor *gf_conv2d(gf_ctx *ctx, gf_tensor *x, gf_tensor *w, gf_tensor *b,
                     const gf_conv_params *p);
/* x [N, C, L], w [O, C/groups, K], b [O] or NULL -> [N, O, OL]; uses index 0 of p's pairs. */
gf_tensor *gf_conv1d(gf_ctx *ctx, gf_tensor *x, gf_tensor *w, gf_tensor *b,
                     const gf_conv_params *p);

typedef struct gf_pool_params {
    int kernel[2];
    int stride[2];    /* 0: same as kernel (PyTorch's default) */
    int padding[2];
    int dilation[2];  /* max pooling only */
    bool ceil_mode;
    bool count_include_pad; /* avg pooling only; PyTorch's default is true */
} gf_pool_params;
/* kernel k x k, stride = kernel, padding 0, dilation 1, floor mode, count_include_pad. */
gf_pool_params gf_pool_default_params(int k);

gf_tensor *gf_max_pool2d(gf_ctx *ctx, gf_tensor *x, const gf_pool_params *p);
gf_tensor *gf_avg_pool2d(gf_ctx *ctx, gf_tensor *x, const gf_pool_params *p);
/* x [N, C, H, W] -> [N, C, oh, ow] with PyTorch's adaptive bin edges. */
gf_tensor *gf_adaptive_avg_pool2d(gf_ctx *ctx, gf_tensor *x, int oh, int ow);

/* ---- normalisation, dropout, embedding (src/ops/norm.c, src/ops/embed.c) ---------------- */
/* x [N, C, *]. training: normalise with batch statistics and, when running_mean/var are not
 * NULL, update them in place: r = (1 - momentum) r + momentum * stat, with the unbiased
 * variance. Eval: normalise with the running statistics. weight/bias [C] may be NULL. */
gf_tensor *gf_batch_norm(gf_ctx *ctx, gf_tensor *x, gf_tensor *weight, gf_tensor *bias,
                         gf_tensor *running_mean, gf_tensor *running_var, bool training,
                         float momentum, float eps);
/* Normalises over the last n_axes axes; weight/bias have that trailing shape or are NULL. */
gf_tensor *gf_layer_norm(gf_ctx *ctx, gf_tensor *x, int n_axes, gf_tensor *weight,
                         gf_tensor *bias, float eps);
/* Inverted dropout with the context RNG; identity when !training or p == 0. */
gf_tensor *gf_dropout(gf_ctx *ctx, gf_tensor *x, float p, bool training);
/* weight [V, D], idx int64 of any shape -> [*idx.shape, D]. Rows equal to padding_idx get
 * no gradient (padding_idx < 0: none). */
gf_tensor *gf_embedding(gf_ctx *ctx, gf_tensor *weight, gf_tensor *idx, int64_t padding_idx);

/* ---- losses (src/ops/loss.c) ----------------------------------------------------------- */
/* logits [N, C] or [N, C, d1...], target int64 [N] or [N, d1...]. Targets equal to
 * ignore_index contribute nothing (mean divides by the count of the others). */
gf_tensor *gf_cross_entropy(gf_ctx *ctx, gf_tensor *logits, gf_tensor *target,
                            gf_reduction reduction, int64_t ignore_index);
gf_tensor *gf_mse_loss(gf_ctx *ctx, gf_tensor *input, gf_tensor *target,
                       gf_reduction reduction);

#ifdef __cplusplus
}
#endif
#endif
