/* The table of recorded ops: X(ENUM_SUFFIX, name). Each name has a backward function
 * gf_bw_<name> defined next to its forward in src/ops/. Adding an op = one line here plus
 * the forward/backward pair; a missing backward is a link error. */
#ifndef GRAFT_OP_LIST_H
#define GRAFT_OP_LIST_H

#define GF_OP_LIST(X)                                                                      \
    X(ADD, add)                                                                            \
    X(SUB, sub)                                                                            \
    X(MUL, mul)                                                                            \
    X(DIV, div)                                                                            \
    X(POW, pow)                                                                            \
    X(AFFINE, affine)                                                                      \
    X(MATMUL, matmul)                                                                      \
    X(LINEAR, linear)                                                                      \
    X(EXP, exp)                                                                            \
    X(LOG, log)                                                                            \
    X(SQRT, sqrt)                                                                          \
    X(POW_SCALAR, pow_scalar)                                                              \
    X(CLAMP, clamp)                                                                        \
    X(RELU, relu)                                                                          \
    X(LEAKY_RELU, leaky_relu)                                                              \
    X(ELU, elu)                                                                            \
    X(GELU, gelu)                                                                          \
    X(SILU, silu)                                                                          \
    X(SIGMOID, sigmoid)                                                                    \
    X(TANH, tanh)                                                                          \
    X(SOFTPLUS, softplus)                                                                  \
    X(SOFTMAX, softmax)                                                                    \
    X(LOG_SOFTMAX, log_softmax)                                                            \
    X(SUM, sum)                                                                            \
    X(MEAN, mean)                                                                          \
    X(MAX, max)                                                                            \
    X(VIEW, view)                                                                          \
    X(COPY, copy)                                                                          \
    X(CONCAT, concat)                                                                      \
    X(PAD, pad)                                                                            \
    X(CONV2D, conv2d)                                                                      \
    X(MAX_POOL2D, max_pool2d)                                                              \
    X(AVG_POOL2D, avg_pool2d)                                                              \
    X(ADAPTIVE_AVG_POOL2D, adaptive_avg_pool2d)                                            \
    X(BATCH_NORM, batch_norm)                                                              \
    X(LAYER_NORM, layer_norm)                                                              \
    X(DROPOUT, dropout)                                                                    \
    X(EMBEDDING, embedding)                                                                \
    X(CROSS_ENTROPY, cross_entropy)                                                        \
    X(CROSS_ENTROPY_PROB, cross_entropy_prob)                                              \
    X(NLL_LOSS, nll_loss)                                                                  \
    X(MSE_LOSS, mse_loss)                                                                  \
    X(L1_LOSS, l1_loss)                                                                    \
    X(SMOOTH_L1_LOSS, smooth_l1_loss)                                                      \
    X(HUBER_LOSS, huber_loss)                                                              \
    X(BCE_WITH_LOGITS, bce_with_logits)                                                    \
    X(KL_DIV, kl_div)

#endif
