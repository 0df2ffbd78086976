/* Placeholder backward functions for ops whose file has not landed yet. */
#include "core/internal.h"

__attribute__((weak)) void gf_bw_name(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "name: backward not implemented"); }
__attribute__((weak)) void gf_bw_exp(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "exp: backward not implemented"); }
__attribute__((weak)) void gf_bw_log(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "log: backward not implemented"); }
__attribute__((weak)) void gf_bw_sqrt(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "sqrt: backward not implemented"); }
__attribute__((weak)) void gf_bw_pow_scalar(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "pow_scalar: backward not implemented"); }
__attribute__((weak)) void gf_bw_clamp(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "clamp: backward not implemented"); }
__attribute__((weak)) void gf_bw_relu(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "relu: backward not implemented"); }
__attribute__((weak)) void gf_bw_leaky_relu(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "leaky_relu: backward not implemented"); }
__attribute__((weak)) void gf_bw_elu(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "elu: backward not implemented"); }
__attribute__((weak)) void gf_bw_gelu(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "gelu: backward not implemented"); }
__attribute__((weak)) void gf_bw_silu(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "silu: backward not implemented"); }
__attribute__((weak)) void gf_bw_sigmoid(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "sigmoid: backward not implemented"); }
__attribute__((weak)) void gf_bw_tanh(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "tanh: backward not implemented"); }
__attribute__((weak)) void gf_bw_softplus(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "softplus: backward not implemented"); }
__attribute__((weak)) void gf_bw_softmax(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "softmax: backward not implemented"); }
__attribute__((weak)) void gf_bw_log_softmax(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "log_softmax: backward not implemented"); }
__attribute__((weak)) void gf_bw_sum(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "sum: backward not implemented"); }
__attribute__((weak)) void gf_bw_mean(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "mean: backward not implemented"); }
__attribute__((weak)) void gf_bw_max(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "max: backward not implemented"); }
__attribute__((weak)) void gf_bw_conv2d(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "conv2d: backward not implemented"); }
__attribute__((weak)) void gf_bw_max_pool2d(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "max_pool2d: backward not implemented"); }
__attribute__((weak)) void gf_bw_avg_pool2d(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "avg_pool2d: backward not implemented"); }
__attribute__((weak)) void gf_bw_adaptive_avg_pool2d(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "adaptive_avg_pool2d: backward not implemented"); }
__attribute__((weak)) void gf_bw_batch_norm(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "batch_norm: backward not implemented"); }
__attribute__((weak)) void gf_bw_layer_norm(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "layer_norm: backward not implemented"); }
__attribute__((weak)) void gf_bw_dropout(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "dropout: backward not implemented"); }
__attribute__((weak)) void gf_bw_embedding(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "embedding: backward not implemented"); }
__attribute__((weak)) void gf_bw_cross_entropy(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "cross_entropy: backward not implemented"); }
__attribute__((weak)) void gf_bw_mse_loss(gf_ctx *ctx, gf_node *n) { (void)n; gf_ctx_set_error(ctx, GF_ERR_STATE, "mse_loss: backward not implemented"); }
