/* graft loader: batches over a dataset, a fresh seeded shuffle each epoch, optional drop_last,
 * an optional transform pipeline, and a background thread that prepares the next batch while
 * the current one trains. With or without the thread the batches are bitwise the same: the
 * order depends only on (seed, epoch) and the augmentation only on (seed, epoch, batch). */
#ifndef GRAFT_LOADER_H
#define GRAFT_LOADER_H

#include "graft/dataset.h"
#include "graft/transforms.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gf_loader gf_loader;

typedef struct gf_loader_params {
    int64_t batch_size;     /* default 64 */
    bool shuffle;           /* a new permutation each epoch (default true) */
    bool drop_last;         /* drop the last, smaller batch (default false) */
    uint64_t seed;          /* drives the shuffle and the transforms (default 0) */
    bool prefetch;          /* prepare the next batch on a background thread (default true) */
    const gf_tf *transform; /* applied to every batch (borrowed: must outlive the loader); NULL */
    /* Training across processes (graft/dist.h): every process draws the same batches (same
     * seed) and keeps a contiguous share of each, shard_rank of shard_count; a batch of m
     * examples gives each m / shard_count, and the first m % shard_count one more (3 shares of
     * 64: 22, 21, 21; a share may be empty when m < shard_count). batch_size stays the whole
     * batch, so batches per epoch, positions and checkpoints do not depend on the count, and
     * each example is augmented as in the whole batch. 0, 0 (default): the whole batch. */
    int shard_rank, shard_count;
} gf_loader_params;

gf_loader_params gf_loader_default_params(void);

/* One batch. Borrowed from the loader: valid until the next gf_loader_next / _seek / _free. */
typedef struct gf_batch {
    gf_tensor *x;         /* [n, sample shape after the transform...] float32 */
    gf_tensor *y;         /* [n] int64 labels, or float32 targets for a regression dataset */
    const int64_t *idx;   /* [n] dataset indices of the examples */
    int64_t n;            /* examples in this batch (the last may be smaller) */
    int64_t epoch, index; /* which epoch, which batch of it (0-based) */
    int64_t global_n;     /* examples in the whole batch, all shares together (n unsharded) */
    int64_t offset;       /* position of this share's first example in the whole batch (0) */
} gf_batch;

/* Returns a new loader (free with gf_loader_free) holding a reference to ds, or NULL with a
 * context error (batch_size < 1, an empty dataset, a transform that does not fit the sample
 * shape, drop_last leaving no batch, no memory, no thread). */
gf_loader *gf_loader_new(gf_ctx *ctx, gf_ds *ds, const gf_loader_params *params);
/* Stops and joins the prefetch thread, frees the buffers, drops the dataset reference. */
void gf_loader_free(gf_loader *ld);

/* Next batch of the current epoch: returns true and fills *b; returns false at the end of the
 * epoch (the following call starts the next epoch) or on an error (then gf_ctx_status(ctx) is
 * set; an error is sticky: every later call returns false). Typical use:
 *     while (gf_loader_next(ctx, ld, &b)) { ...train on b.x, b.y... }
 *     if (gf_ctx_status(ctx) != GF_OK) ...                                          */
bool gf_loader_next(gf_ctx *ctx, gf_loader *ld, gf_batch *b);

int64_t gf_loader_batches_per_epoch(const gf_loader *ld);
/* The position of the next batch: the epoch and the batch within it (resume state). */
int64_t gf_loader_epoch(const gf_loader *ld);
int64_t gf_loader_batch_index(const gf_loader *ld);
/* Continues from (epoch, batch index), e.g. when resuming from a checkpoint. Any prefetched
 * batch is dropped. Invalidates the last batch. */
gf_status gf_loader_seek(gf_ctx *ctx, gf_loader *ld, int64_t epoch, int64_t batch);
/* The examples of batch `batch` of `epoch` in order (n of them, n = *count <= batch_size; with
 * shards, this process's share):
 * the order without loading anything. Writes into idx (batch_size capacity). */
gf_status gf_loader_indices(gf_ctx *ctx, const gf_loader *ld, int64_t epoch, int64_t batch,
                            int64_t *idx, int64_t *count);

#ifdef __cplusplus
}
#endif
#endif
