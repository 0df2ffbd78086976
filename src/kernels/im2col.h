/* Convolution geometry, the unfold/fold kernels (im2col, col2im) that turn a 2-D convolution
 * into matrix products, and direct depthwise kernels. Internal to src/ops/conv.c and tests. */
#ifndef GRAFT_KERNELS_IM2COL_H
#define GRAFT_KERNELS_IM2COL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/internal.h"

/* One 2-D convolution: x [n, c, h, w] * w [o, c/groups, kh, kw] -> y [n, o, oh, ow]. */
typedef struct gf_conv_geom {
    int64_t n, c, h, w;  /* input */
    int64_t o, kh, kw;   /* weight */
    int64_t oh, ow;      /* output */
    int64_t sh, sw, ph, pw, dh, dw;
    int64_t groups;
} gf_conv_geom;

/* Output size of one convolution axis: floor((in + 2 pad - dil (k - 1) - 1) / stride) + 1,
 * which may be <= 0 when the kernel does not fit. */
int64_t gf_conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil);

/* Unfolds one input channel plane x [h, w] into kh*kw rows of oh*ow columns: row (i, j) holds
 * x[oh*sh - ph + i*dh, ow*sw - pw + j*dw] (0 outside the input). Row r starts at
 * col + r * ld (ld >= oh*ow lets several images share one column matrix). */
void gf_im2col_plane(const gf_conv_geom *g, const float *x, float *col, int64_t ld);

/* The adjoint of gf_im2col_plane: adds every column entry back into the input position it
 * was read from (x += fold(col)). One call writes only its own plane. It may overwrite
 * entries of col that fold onto no input position (padding) with zeros. */
void gf_col2im_plane_add(const gf_conv_geom *g, float *col, int64_t ld, float *x);

/* Direct kernels for one plane of a convolution whose groups each hold one input channel
 * (depthwise): y [oh, ow] += x [h, w] (*) k [kh, kw]; dx += the adjoint applied to dy; and
 * dk[kh*kw] += the correlation of x with dy (accumulated in double). */
void gf_dwconv_plane(const gf_conv_geom *g, const float *x, const float *k, float *y);
void gf_dwconv_plane_bwd_x(const gf_conv_geom *g, const float *dy, const float *k, float *dx);
void gf_dwconv_plane_bwd_w(const gf_conv_geom *g, const float *x, const float *dy, double *dk);

/* The same for 3x3 kernels, dilation 1, stride 1 or 2 across (gf_dwconv3_fits; dX with stride
 * 1 across also needs stride 1 down: gf_dwconv3_bwd_x_fits), vectorised (kernels/dwconv3.c).
 * level: a dispatch level (kernels/vec.h). The forward pass and dX equal the generic kernels to the bit; dW
 * sums in another order, the same at every level. */
bool gf_dwconv3_fits(const gf_conv_geom *g);
bool gf_dwconv3_bwd_x_fits(const gf_conv_geom *g);
void gf_dwconv3_plane(int level, const gf_conv_geom *g, const float *x, const float *k,
                      float *y);
void gf_dwconv3_plane_bwd_x(int level, const gf_conv_geom *g, const float *dy, const float *k,
                            float *dx);
void gf_dwconv3_plane_bwd_w(int level, const gf_conv_geom *g, const float *x, const float *dy,
                            double *dk);

/* The same over 8 consecutive channels at once, for small planes (at most
 * GF_DWCONV3X8_MAX_POSITIONS input and output positions, where it is faster) with one output
 * channel per input channel (kernels/dwconv3x8.c). x and y hold 8 planes each, one after the
 * other; k holds the 8 channels' 3x3 weights; work is gf_dwconv3x8_work(g) floats of scratch.
 * gf_dwconv3x8 writes y = b + x (*) k (b: 8 biases, or NULL for 0), bitwise what filling y
 * with the bias and gf_dwconv_plane give; gf_dwconv3x8_bwd_x adds into dx bitwise
 * as gf_dwconv_plane_bwd_x; gf_dwconv3x8_bwd_w adds each channel's taps into dk [8][9] (its
 * own fixed order, equal at every level). */
enum { GF_DWCONV3X8_MAX_POSITIONS = 2304 };
bool gf_dwconv3x8_fits(const gf_conv_geom *g);
int64_t gf_dwconv3x8_work(const gf_conv_geom *g);
void gf_dwconv3x8(int level, const gf_conv_geom *g, const float *x, const float *k,
                  const float *b, float *y, float *work);
void gf_dwconv3x8_bwd_x(int level, const gf_conv_geom *g, const float *dy, const float *k,
                        float *dx, float *work);
void gf_dwconv3x8_bwd_w(int level, const gf_conv_geom *g, const float *x, const float *dy,
                        double *dk, float *work);

/* Direct kernels for one input channel and one group (the first layer of a grayscale
 * network), where the column matrix is only kh*kw rows deep. Both take one image's column
 * matrix col [kh*kw, oh*ow] (gf_im2col_plane with ld = oh*ow). gf_conv_c1_fwd writes the
 * image's output y [o, oh, ow] = k [o, kh*kw] col + b (b may be NULL). gf_conv_c1_bwd_w
 * writes the image's partial sums part [o, kh*kw + 1]: dy [o, oh*ow] col^T, and in the last
 * column the sums of dy (the bias gradient). Deterministic, equal at every dispatch level. */
enum { GF_CONV_C1_MAX_TAPS = 64 };
bool gf_conv_c1_direct(const gf_conv_geom *g);
void gf_conv_c1_fwd(int level, const gf_conv_geom *g, const float *col, const float *k,
                    const float *b, float *y);
void gf_conv_c1_bwd_w(int level, const gf_conv_geom *g, const float *col, const float *dy,
                      float *part);

/* Floats of scratch (column matrix plus product buffer) the conv kernels may use at once;
 * images are processed in chunks that fit. A per-context setting: tests lower it to exercise
 * the chunking; <= 0 restores the default. */
void gf_conv_set_chunk_budget(gf_ctx *ctx, int64_t floats);
int64_t gf_conv_chunk_budget(const gf_ctx *ctx);

#endif
