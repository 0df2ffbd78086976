/* Matrix products whose bits do not depend on the thread count.
 *
 * OpenBLAS's own threading splits a product differently for each thread count, and on some
 * of its kernels (Haswell/Zen) that changes the rounding. graft therefore runs OpenBLAS on one
 * thread and splits C itself into a grid of tiles chosen from the shape alone; each tile is one
 * single-threaded sgemm over the whole inner dimension, and the tiles are shared out over the
 * context's threads. Any thread count then gives the same bits on a given CPU and kernel. */
#ifndef GRAFT_KERNELS_GEMM_H
#define GRAFT_KERNELS_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/internal.h"

/* Row-major C[m, n] = alpha op(A) op(B) + beta C, with op(A) [m, k] and op(B) [k, n]; A is
 * stored [k, m] when ta, B [n, k] when tb. k == 0 scales C by beta. */
void gf_gemm(const gf_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
             const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
             int64_t ldc);

/* The tile grid gf_gemm uses for a shape: tm x tn tiles of C (exposed for tests). */
void gf_gemm_tiles(int64_t m, int64_t n, int64_t k, int64_t *tile_m, int64_t *tile_n);

#endif
