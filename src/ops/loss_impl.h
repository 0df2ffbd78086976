/* Helpers shared by the loss files (src/ops/loss.c: class losses; src/ops/loss_elem.c:
 * elementwise losses). Private to src/ops. */
#ifndef GRAFT_OPS_LOSS_IMPL_H
#define GRAFT_OPS_LOSS_IMPL_H

#include "core/internal.h"
#include "graft/ops.h"

/* Sum of v[0..n) in double, over fixed blocks (partial sums in parallel, then in block
 * order) so the result is the same for any thread count. NaN on out-of-memory. */
double gf_loss_sum(gf_ctx *ctx, const double *v, int64_t n);

/* Accepts NONE, MEAN, SUM, and BATCHMEAN when allow_batchmean; else an error naming op. */
bool gf_loss_check_reduction(gf_ctx *ctx, const char *op, gf_reduction r, bool allow_batchmean);

/* A NONE-reduced output of the given shape, or a 0-d scalar. */
gf_tensor *gf_loss_output(gf_ctx *ctx, gf_reduction r, int ndim, const int64_t *shape);

#endif
