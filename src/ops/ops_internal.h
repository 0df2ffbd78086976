/* Ops for the library's own forwards, beyond the public graft/ops.h: variants for imported
 * graphs. Not installed. */
#ifndef GRAFT_OPS_INTERNAL_H
#define GRAFT_OPS_INTERNAL_H

#include "core/internal.h"
#include "graft/ops.h"

/* conv2d of x zero-padded by pads = (top, bottom, left, right), without the padded copy (the
 * kernels skip taps outside the input), with p's own padding 0. The same values as gf_pad
 * then gf_conv2d, but for the sign of a zero or a tap whose weight is not finite (the padded
 * copy adds weight * 0); recorded, its backward gives the gradients of that pair (dW summed
 * over the taps inside the input only). */
gf_tensor *gf_conv2d_padded(gf_ctx *ctx, gf_tensor *x, gf_tensor *w, gf_tensor *b,
                            const gf_conv_params *p, const int64_t pads[4]);

/* The planes of an output a training forward never stored (gf_deferred_act), for one op call:
 * resolved once, outside any parallel region. Rows are the [N * C] planes of s values. */
typedef struct gf_act_planes {
    const float *x, *w, *b;      /* the batch_norm's input, weight and bias (or NULL) */
    const double *mean, *invstd; /* its statistics */
    int64_t c, s;
    gf_bn_act act;
} gf_act_planes;

/* Whether t is such an output (t->node->deferred): fills p. false when t holds its values, or
 * with a context error when its batch_norm's operands could not be read. */
bool gf_act_planes_of(gf_ctx *ctx, const gf_tensor *t, gf_act_planes *p);

/* Rows [r0, r0 + count) into dst (count * s floats): bitwise what the batch_norm and the
 * activation would have stored (gf_vec_bn_eval_mask's expression). with_mask: their bits are
 * written into the activation's mask too (the forward; a row's bits by one thread only). */
void gf_act_planes_rows(const gf_act_planes *p, int level, int64_t r0, int64_t count, float *dst,
                        bool with_mask);

#endif
