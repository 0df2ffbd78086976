/* Transforms, internal: applying a batch's augmentation to a part of it. Not installed. */
#ifndef GRAFT_TF_INTERNAL_H
#define GRAFT_TF_INTERNAL_H

#include "graft/transforms.h"

/* gf_tf_apply_raw for the examples at positions first .. first + B - 1 of a batch: each
 * example's random stream is keyed by its position in the batch, so a process that holds only
 * its share of a batch (training across processes, gf_loader_params.shard_count) augments each
 * example exactly as one process holding the whole batch would. */
gf_status gf_tf_apply_raw_at(const gf_tf *tf, int64_t B, int64_t first, int ndim,
                             const int64_t *in, const float *x, float *out, uint64_t seed,
                             char *err, size_t err_cap);

#endif
