/* Winograd F(2x2, 3x3) convolution for 3x3 kernels, stride 1, padding 1, no dilation, one
 * group: the forward pass and, through the same machinery, the input gradient (a 3x3 pad-1
 * convolution of dY with the weights rotated by 180 degrees and C/O swapped). Internal to
 * src/ops/conv.c and tests. */
#ifndef GRAFT_KERNELS_WINOGRAD_H
#define GRAFT_KERNELS_WINOGRAD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/internal.h"
#include "kernels/im2col.h"

/* Whether conv2d with this geometry takes the Winograd path for its forward pass, and for
 * its input gradient: the shape above, with enough channels and a large enough image for
 * Winograd to beat im2col + GEMM (measured; see winograd.c). */
bool gf_wino_fwd(const gf_conv_geom *g);
bool gf_wino_dx(const gf_conv_geom *g);

/* y [n, co, h, w] = conv(x [n, ci, h, w], k) + b, with 3x3 taps, stride 1 and padding 1.
 * flip = false: wt is [co, ci, 3, 3] (a forward convolution). flip = true: wt is
 * [ci, co, 3, 3] and each 3x3 kernel is used rotated by 180 degrees (the input gradient of a
 * convolution whose weight is wt, with x = dY). b may be NULL. accumulate: y += conv instead
 * (b must then be NULL); otherwise every element of y is written as v + b (v + 0 without a
 * bias, so a fresh buffer never receives -0). Scratch comes from the context's arena in
 * chunks of tiles sized by gf_conv_chunk_budget. The result does not depend on the thread
 * count, and both dispatch levels agree bit for bit. Returns false (context error set) when
 * out of memory; y is then partly written. */
bool gf_wino_conv(gf_ctx *ctx, int level, int64_t n, int64_t ci, int64_t co, int64_t h,
                  int64_t w, const float *x, const float *wt, bool flip, const float *b,
                  float *y, bool accumulate);

#endif
