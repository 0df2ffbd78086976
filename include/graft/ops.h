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

/* How a loss reduces its per-element values: NONE keeps them, MEAN and SUM give a scalar.
 * BATCHMEAN (kl_div only) is the sum divided by the size of axis 0. */
typedef enum gf_reduction {
    GF_REDUCE_NONE = 0,
    GF_REDUCE_MEAN,
    GF_REDUCE_SUM,
    GF_REDUCE_BATCHMEAN
} gf_reduction;

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
 * no gradient (padding_idx < 0: none). idx may also be float32 holding whole numbers (token
 * ids from a dataset); a fractional or out-of-range id is an error naming it and its
 * position. */
gf_tensor *gf_embedding(gf_ctx *ctx, gf_tensor *weight, gf_tensor *idx, int64_t padding_idx);

/* ---- more elementwise functions (src/ops/unary_ext.c) ------------------------------------
 * One recorded op for all of them; a and b are the function's parameters where it has any. */
typedef enum gf_unary_fn {
    GF_FN_NEG = 0, GF_FN_ABS, GF_FN_RECIPROCAL,
    GF_FN_FLOOR, GF_FN_CEIL, GF_FN_ROUND, GF_FN_TRUNC, GF_FN_SIGN, /* gradient 0 */
    GF_FN_SIN, GF_FN_COS, GF_FN_TAN, GF_FN_ASIN, GF_FN_ACOS, GF_FN_ATAN,
    GF_FN_SINH, GF_FN_COSH, GF_FN_ASINH, GF_FN_ACOSH, GF_FN_ATANH, GF_FN_ERF,
    GF_FN_SOFTSIGN,         /* x / (1 + |x|) */
    GF_FN_HARDSIGMOID,      /* max(0, min(1, a x + b)) */
    GF_FN_HARDSWISH,        /* x * hardsigmoid(x) with a = 1/6, b = 1/2 */
    GF_FN_SELU,             /* b x for x > 0, else b a (e^x - 1) */
    GF_FN_CELU,             /* max(0, x) + min(0, a (e^(x/a) - 1)), a != 0 */
    GF_FN_THRESHOLDED_RELU, /* x where x > a, else 0 */
    GF_FN_SHRINK,           /* x + a below -b, x - a above b, else 0 */
    GF_FN_COUNT
} gf_unary_fn;
gf_tensor *gf_unary(gf_ctx *ctx, gf_tensor *x, gf_unary_fn fn, float a, float b);
/* "neg", "hardswish", ...; "?" when out of range. */
const char *gf_unary_fn_name(gf_unary_fn fn);
gf_tensor *gf_neg(gf_ctx *ctx, gf_tensor *x);
gf_tensor *gf_abs(gf_ctx *ctx, gf_tensor *x);
/* max(0, min(1, alpha x + beta)); torch's hardsigmoid is alpha 1/6, beta 1/2. */
gf_tensor *gf_hardsigmoid(gf_ctx *ctx, gf_tensor *x, float alpha, float beta);
gf_tensor *gf_hardswish(gf_ctx *ctx, gf_tensor *x);

/* ---- selection and indexing (src/ops/select.c, src/ops/index.c, src/ops/prod.c) ---------- */
/* Elementwise with broadcasting; NaN propagates; a tie sends half the gradient to each. */
gf_tensor *gf_minimum(gf_ctx *ctx, gf_tensor *a, gf_tensor *b);
gf_tensor *gf_maximum(gf_ctx *ctx, gf_tensor *a, gf_tensor *b);
/* cond (int64, nonzero = true) ? a : b, the three broadcast together. */
gf_tensor *gf_where(gf_ctx *ctx, gf_tensor *cond, gf_tensor *a, gf_tensor *b);
/* numpy.take(x, idx, axis): slices of x along axis picked by int64 indices of any shape ->
 * x.shape[:axis] + idx.shape + x.shape[axis+1:]. Negative indices count from the end. x may
 * be float32 or int64 (int64 is never recorded). */
gf_tensor *gf_take(gf_ctx *ctx, gf_tensor *x, gf_tensor *idx, int axis);
/* torch.gather(x, axis, idx): idx of x's rank (no larger outside axis) -> idx.shape, out[p] =
 * x[p with axis replaced by idx[p]]. Negative indices count from the end. */
gf_tensor *gf_gather(gf_ctx *ctx, gf_tensor *x, int axis, gf_tensor *idx);
/* Product over axes (n_axes 0: all), keepdim as gf_sum. */
gf_tensor *gf_prod(gf_ctx *ctx, gf_tensor *x, const int *axes, int n_axes, bool keepdim);

/* ---- pooling with ONNX's geometry (src/ops/pool_nd.c) ------------------------------------- */
typedef struct gf_pool_nd_params {
    int n_spatial;          /* 1, 2 or 3: input [N, C, D1...Dn] */
    int kernel[3], stride[3], dilation[3];
    int pad_begin[3], pad_end[3];
    bool ceil_mode;
    bool count_include_pad; /* average only: divide by the window inside the padded input */
} gf_pool_nd_params;
/* indices (may be NULL) receives int64 flat positions of the maxima in x ([N, C, ...] order). */
gf_tensor *gf_max_pool_nd(gf_ctx *ctx, gf_tensor *x, const gf_pool_nd_params *p,
                          gf_tensor **indices);
gf_tensor *gf_avg_pool_nd(gf_ctx *ctx, gf_tensor *x, const gf_pool_nd_params *p);

/* ---- attention (src/ops/attention.c) ------------------------------------------------------
 * torch.nn.functional.scaled_dot_product_attention as one recorded op:
 *   out = dropout(softmax(scale * q k^T + mask)) v
 * with q [B, H, Lq, E], k [B, H, Lk, E], v [B, H, Lk, Ev] -> out [B, H, Lq, Ev]. The mask
 * hides key j from query i when j >= key_lengths[b] (a key padding mask) or, when causal,
 * j > i (PyTorch's is_causal / a square subsequent mask). A query with every key hidden gets
 * zeros (PyTorch gives NaN there). Gradients flow to q, k and v. */
typedef struct gf_attention_params {
    const gf_tensor *key_lengths; /* int64 [B], values in [0, Lk], or NULL: every key real */
    bool causal;                  /* hide keys after the query's position */
    float dropout_p;              /* on the attention weights, context RNG; training only */
    bool training;
    float scale;                  /* 0: 1 / sqrt(E) */
} gf_attention_params;
/* No mask, no dropout, scale 1 / sqrt(E). */
gf_attention_params gf_attention_default_params(void);
/* p NULL: the defaults. weights (may be NULL) receives the attention weights [B, H, Lq, Lk]
 * after dropout, as torch.nn.MultiheadAttention returns them; they are a plain arena tensor
 * carrying no gradient. */
gf_tensor *gf_scaled_dot_product_attention(gf_ctx *ctx, gf_tensor *q, gf_tensor *k, gf_tensor *v,
                                           const gf_attention_params *p, gf_tensor **weights);
/* The same over heads packed in the last axis, as torch.nn.MultiheadAttention holds them
 * between its projections: q [N, Lq, E], k [N, Lk, E], v [N, Lk, Ev] (or [L, N, ...] when
 * not batch_first), head h being columns h E/H .. (h + 1) E/H -> out [N, Lq, Ev] (or
 * [Lq, N, Ev]); E and Ev divisible by num_heads, scale 0 meaning 1 / sqrt(E / H). Views with
 * a contiguous last axis (the parts of one packed projection) are read in place, and
 * gradients are written in place, so splitting and merging heads costs no copies.
 * key_lengths index N. */
gf_tensor *gf_multi_head_attention(gf_ctx *ctx, gf_tensor *q, gf_tensor *k, gf_tensor *v,
                                   int64_t num_heads, bool batch_first,
                                   const gf_attention_params *p, gf_tensor **weights);

/* ---- losses (src/ops/loss.c, src/ops/loss_elem.c) ----------------------------------------
 * Each follows torch.nn.functional's function of the same name (PyTorch 1.13), with
 * reduction NONE (per-element values, the shape given below), MEAN or SUM (a 0-d scalar).
 * A MEAN over nothing is NaN, as in PyTorch. Float inputs receive gradients, targets
 * included; class weights too (PyTorch refuses a gradient for some of them: graft gives the
 * exact derivative of the value it returns). Integer class targets get none. */

/* Class-index losses view input as [N, C, d1...] (or [C] with a 0-d target: one sample)
 * and target as int64 [N, d1...]. A target equal to ignore_index contributes nothing; any
 * other target must lie in [0, C). weight: [C] class weights or NULL (all 1). NONE returns
 * the target's shape. */

/* cross_entropy with class-index targets, no weights, no smoothing:
 * log_softmax over axis 1, then nll_loss. MEAN divides by the count of non-ignored targets. */
gf_tensor *gf_cross_entropy(gf_ctx *ctx, gf_tensor *logits, gf_tensor *target,
                            gf_reduction reduction, int64_t ignore_index);

typedef struct gf_ce_params {
    gf_reduction reduction; /* NONE, MEAN (default) or SUM */
    int64_t ignore_index;   /* index targets only; default -100. Must be < 0 with
                             * probability targets (PyTorch: not supported there) */
    float label_smoothing;  /* eps in [0, 1]; default 0 */
    gf_tensor *weight;      /* [C] class weights or NULL (default) */
} gf_ce_params;
gf_ce_params gf_ce_default_params(void);

/* torch.nn.functional.cross_entropy in full; p NULL means the defaults.
 * Index targets (int64 [N, d1...]): with lp = log_softmax(logits, 1), w_c the class weights
 * and eps the smoothing, each non-ignored position p with target t contributes
 *   nll_p = -w_t lp_t    and    smooth_p = -sum_c w_c lp_c,
 *   loss_p = (1 - eps) nll_p + eps / C * smooth_p.
 * MEAN divides the sum by sum_p w_{t_p} over non-ignored positions (their count when weight
 * is NULL); all ignored: NaN.
 * Probability targets (float32 of the logits' shape, PyTorch's "soft" targets):
 *   loss_p = -sum_c w_c ((1 - eps) target_pc + eps / C) lp_pc,
 * and MEAN divides by the number of positions N * d1 * ... (not by the weights). The target
 * receives a gradient. */
gf_tensor *gf_cross_entropy_ex(gf_ctx *ctx, gf_tensor *logits, gf_tensor *target,
                               const gf_ce_params *p);

/* torch.nn.functional.nll_loss: input holds log-probabilities; loss_p = -w_t input_p[t].
 * MEAN divides by sum_p w_{t_p} over non-ignored positions (NaN when there are none). */
gf_tensor *gf_nll_loss(gf_ctx *ctx, gf_tensor *input, gf_tensor *target, gf_tensor *weight,
                       gf_reduction reduction, int64_t ignore_index);

/* Elementwise losses: input and target float32 of the same shape (no broadcasting); NONE
 * returns that shape, MEAN divides by the element count. d = input - target. */
/* d^2. */
gf_tensor *gf_mse_loss(gf_ctx *ctx, gf_tensor *input, gf_tensor *target,
                       gf_reduction reduction);
/* |d|; gradient sign(d) (0 at d = 0). */
gf_tensor *gf_l1_loss(gf_ctx *ctx, gf_tensor *input, gf_tensor *target, gf_reduction reduction);
/* 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta; beta >= 0 (0 gives l1_loss). */
gf_tensor *gf_smooth_l1_loss(gf_ctx *ctx, gf_tensor *input, gf_tensor *target,
                             gf_reduction reduction, float beta);
/* 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta); delta > 0. */
gf_tensor *gf_huber_loss(gf_ctx *ctx, gf_tensor *input, gf_tensor *target,
                         gf_reduction reduction, float delta);
/* torch.nn.functional.binary_cross_entropy_with_logits: input x = logits, target y in [0, 1]
 * of x's shape; weight and pos_weight (each may be NULL) broadcast to x's shape (a [C]
 * pos_weight applies per class along the last axis).
 *   loss = weight * ((1 - y) x + (1 + (pos_weight - 1) y) log(1 + exp(-x))),
 * with log(1 + exp(-x)) computed stably for any |x|. */
gf_tensor *gf_bce_with_logits(gf_ctx *ctx, gf_tensor *input, gf_tensor *target,
                              gf_tensor *weight, gf_tensor *pos_weight, gf_reduction reduction);
/* torch.nn.functional.kl_div: input holds log-probabilities (a student's log_softmax), target
 * probabilities (log-probabilities when log_target), same shape.
 *   loss = xlogy(target, target) - target * input     (log_target: exp(target)(target - input))
 * with 0 log 0 = 0. Reductions NONE, SUM, MEAN (over all elements) and BATCHMEAN (the sum
 * divided by the size of axis 0: the true KL divergence per sample; a 0-d input: the sum). */
gf_tensor *gf_kl_div(gf_ctx *ctx, gf_tensor *input, gf_tensor *target, gf_reduction reduction,
                     bool log_target);

/* ---- recurrent layers (src/ops/rnn.c) -----------------------------------------------------
 * One layer and one direction of torch.nn.LSTM / GRU over a whole right-padded batch.
 * x is [T, N, I] ([N, T, I] when batch_first); the result is [T, N, H] ([N, T, H]). Gates in
 * PyTorch's order and formulas (G = 4 for LSTM: i, f, g, o; G = 3 for GRU: r, z, n):
 *   LSTM  c' = f c + i g,  h' = o tanh(c')
 *   GRU   n = tanh(W_in x + b_in + r (W_hn h + b_hn)),  h' = (1 - z) n + z h
 * With lengths, example n runs steps 0..len[n]-1 (reverse: len[n]-1 down to 0); at its other
 * steps its state does not change and its output is 0, so the final state is the one of its
 * last real step (pack_padded_sequence). Differentiable in x, the weights, h0 and c0. */
typedef struct gf_rnn_args {
    gf_tensor *w_ih;    /* [G*H, I] */
    gf_tensor *w_hh;    /* [G*H, H] */
    gf_tensor *b_ih;    /* [G*H] or NULL (then b_hh must be NULL too) */
    gf_tensor *b_hh;    /* [G*H] or NULL */
    gf_tensor *h0;      /* [N, H] or NULL: zeros */
    gf_tensor *c0;      /* LSTM only: [N, H] or NULL: zeros */
    gf_tensor *lengths; /* int64 [N] with values in [0, T], or NULL: every step real */
    bool batch_first;
    bool reverse;       /* run from the last real step back to step 0 */
} gf_rnn_args;
/* Returns the output sequence; *h_n (and *c_n), when not NULL, receive the final states
 * [N, H], arena tensors that carry gradients like the output. */
gf_tensor *gf_lstm_layer(gf_ctx *ctx, gf_tensor *x, const gf_rnn_args *a, gf_tensor **h_n,
                         gf_tensor **c_n);
gf_tensor *gf_gru_layer(gf_ctx *ctx, gf_tensor *x, const gf_rnn_args *a, gf_tensor **h_n);

#ifdef __cplusplus
}
#endif
#endif
