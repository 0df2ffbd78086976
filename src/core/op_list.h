/* The table of recorded ops: X(ENUM_SUFFIX, name, reads). Each name has a backward function
 * gf_bw_<name> defined next to its forward in src/ops/. Adding an op = one line here plus
 * the forward/backward pair; a missing backward is a link error.
 *
 * `reads` says which tensor values the op's backward uses besides its output gradient and
 * its own saved record (masks, argmax, statistics): GF_BW_IN the values of its inputs,
 * GF_BW_OUT the values of its output. The in-place rules of Sequential (docs/NN.md,
 * "Memory") overwrite a tensor only when no recorded op that can see it has the matching
 * flag, so a flag may be too wide (costs memory) but never too narrow: when unsure, give
 * both. An op whose saved record points into an input or its output counts as reading it.
 *
 * GF_OUT_OWN (not a read): the op's output is storage the op allocated for it alone, unless
 * that overlaps an input (an in-place variant). A backward may then recycle it once the op's
 * own backward has run (autograd.c, "recycling"). When unsure, leave it out. */
#ifndef GRAFT_OP_LIST_H
#define GRAFT_OP_LIST_H

#define GF_BW_IN 1u
#define GF_BW_OUT 2u
#define GF_OUT_OWN 4u

#define GF_OP_LIST(X)                                                                      \
    X(ADD, add, GF_OUT_OWN)                                                                \
    X(SUB, sub, GF_OUT_OWN)                                                                \
    X(MUL, mul, GF_BW_IN | GF_OUT_OWN)                                                     \
    X(DIV, div, GF_BW_IN | GF_OUT_OWN)                                                     \
    X(POW, pow, GF_BW_IN | GF_BW_OUT)                                                      \
    X(AFFINE, affine, GF_OUT_OWN)                                                          \
    X(MATMUL, matmul, GF_BW_IN | GF_OUT_OWN)                                               \
    X(LINEAR, linear, GF_BW_IN | GF_OUT_OWN)                                               \
    X(EXP, exp, GF_BW_OUT)                                                                 \
    X(LOG, log, GF_BW_IN)                                                                  \
    X(SQRT, sqrt, GF_BW_OUT)                                                               \
    X(POW_SCALAR, pow_scalar, GF_BW_IN)                                                    \
    X(CLAMP, clamp, GF_OUT_OWN)                                                            \
    X(RELU, relu, GF_OUT_OWN)                                                              \
    X(LEAKY_RELU, leaky_relu, GF_BW_IN)                                                    \
    X(ELU, elu, GF_BW_IN)                                                                  \
    X(GELU, gelu, GF_BW_IN)                                                                \
    X(SILU, silu, GF_BW_IN)                                                                \
    X(SIGMOID, sigmoid, GF_BW_OUT)                                                         \
    X(TANH, tanh, GF_BW_OUT)                                                               \
    X(SOFTPLUS, softplus, GF_BW_IN)                                                        \
    X(SOFTMAX, softmax, GF_BW_OUT)                                                         \
    X(LOG_SOFTMAX, log_softmax, GF_BW_OUT)                                                 \
    X(SUM, sum, 0)                                                                         \
    X(MEAN, mean, GF_OUT_OWN)                                                              \
    X(MAX, max, GF_BW_IN | GF_BW_OUT)                                                      \
    X(VIEW, view, 0)                                                                       \
    X(COPY, copy, 0)                                                                       \
    X(CONCAT, concat, GF_OUT_OWN)                                                          \
    X(PAD, pad, GF_OUT_OWN)                                                                \
    X(CONV2D, conv2d, GF_BW_IN | GF_OUT_OWN)                                               \
    X(MAX_POOL2D, max_pool2d, GF_OUT_OWN)                                                  \
    X(AVG_POOL2D, avg_pool2d, GF_OUT_OWN)                                                  \
    X(ADAPTIVE_AVG_POOL2D, adaptive_avg_pool2d, GF_OUT_OWN)                                \
    X(BATCH_NORM, batch_norm, GF_BW_IN | GF_OUT_OWN)                                       \
    X(LAYER_NORM, layer_norm, GF_BW_IN | GF_OUT_OWN)                                       \
    X(DROPOUT, dropout, GF_OUT_OWN)                                                        \
    X(EMBEDDING, embedding, GF_BW_IN)                                                      \
    X(CROSS_ENTROPY, cross_entropy, GF_BW_IN | GF_BW_OUT)                                  \
    X(CROSS_ENTROPY_PROB, cross_entropy_prob, GF_BW_IN | GF_BW_OUT)                        \
    X(NLL_LOSS, nll_loss, GF_BW_IN | GF_BW_OUT)                                            \
    X(MSE_LOSS, mse_loss, GF_BW_IN | GF_BW_OUT)                                            \
    X(L1_LOSS, l1_loss, GF_BW_IN | GF_BW_OUT)                                              \
    X(SMOOTH_L1_LOSS, smooth_l1_loss, GF_BW_IN | GF_BW_OUT)                                \
    X(HUBER_LOSS, huber_loss, GF_BW_IN | GF_BW_OUT)                                        \
    X(BCE_WITH_LOGITS, bce_with_logits, GF_BW_IN | GF_BW_OUT)                              \
    X(KL_DIV, kl_div, GF_BW_IN | GF_BW_OUT)                                                \
    X(UNARY_EXT, unary_ext, GF_BW_IN)                                                      \
    X(MINMAX, minmax, GF_BW_IN)                                                            \
    X(WHERE, where, GF_BW_IN)                                                              \
    X(TAKE, take, 0)                                                                       \
    X(GATHER, gather, 0)                                                                   \
    X(PROD, prod, GF_BW_IN)                                                                \
    X(MAX_POOL_ND, max_pool_nd, 0)                                                         \
    X(AVG_POOL_ND, avg_pool_nd, 0)                                                         \
    X(RNN, rnn, GF_BW_IN)                                                                  \
    X(ATTENTION, attention, GF_BW_IN)

#endif
