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

#endif
