/* graft dist: data-parallel training across processes over MPI (docs/DISTRIBUTED.md). Every
 * process (rank) holds the whole model, trains on its share of every batch and, after each
 * accumulation group, sums its gradients with the others' (MPI_Allreduce), so all ranks take
 * the same step and keep identical weights. Run the same program under an MPI launcher:
 *     mpirun -np 3 graft train --data fashion-mnist --model cnn-small --batch 64
 * gf_dist_init joins the job when a launcher started the process and is a world of one
 * process, without any MPI call, otherwise. Collectives wait for the other ranks at most
 * gf_dist_params.timeout seconds: then the call fails with a message naming the silent rank,
 * and the caller stops the job (gf_dist_abort).
 *
 * These functions live in libgraft_dist.a, built next to libgraft when CMake finds an MPI
 * library (Open MPI or MPICH; only standard MPI-3 is used); the graft tool links it. */
#ifndef GRAFT_DIST_H
#define GRAFT_DIST_H

#include <signal.h>

#include "graft/dataset.h"
#include "graft/loader.h"
#include "graft/nn.h"
#include "graft/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gf_dist gf_dist;

typedef struct gf_dist_params {
    /* Seconds a collective may wait for the slowest rank (60). Then rank 0 fails naming the
     * ranks it has not heard from, and the other ranks fail grace seconds later (when rank 0
     * itself is the silent one). It must exceed the longest time one rank can spend alone: a
     * checkpoint written by rank 0. The start-up collectives (joining, the checks, rank 0's
     * weights) wait ten times as long: the ranks may read their data at different speeds. */
    double timeout;
    double grace;          /* extra wait of the ranks other than 0 (max(2, timeout / 4)); < 0: that */
    int64_t bucket_bytes;  /* gradient bytes per allreduce (1 MiB) */
    /* Start each bucket's allreduce during the backward, as soon as the backward has made
     * all of its gradients final (true, as PyTorch's DDP); false: after the backward. */
    bool overlap;
} gf_dist_params;

gf_dist_params gf_dist_default_params(void);

/* True when an MPI launcher started this process (mpirun, mpiexec, srun: its variables
 * OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK, ... are set). */
bool gf_dist_launched(void);
/* The number of processes the launcher started (its variables), 1 when not launched. */
int gf_dist_launched_size(void);

/* Joins the job: MPI_Init_thread (unless the program initialised MPI already) when launched,
 * then every rank's process id and host (for messages); a world of one process without any
 * MPI call when not launched. p NULL: the defaults. NULL with a context error. */
gf_dist *gf_dist_init(gf_ctx *ctx, const gf_dist_params *p);
/* Waits for every rank (no deadline: rank 0 may still be writing its results), then
 * MPI_Finalize when gf_dist_init called MPI_Init; frees d. NULL: no-op. */
void gf_dist_finalize(gf_dist *d);
/* Stops every rank of the job now (MPI_Abort with code) after an error this rank cannot
 * recover from, a failed collective among them. Returns only in a world of one process. */
void gf_dist_abort(gf_dist *d, int code);

int gf_dist_rank(const gf_dist *d);
int gf_dist_size(const gf_dist *d);
/* "pid 1234 on host" of a rank (borrowed; "?" when unknown). */
const char *gf_dist_describe_rank(const gf_dist *d, int rank);

/* ---- start-up checks ------------------------------------------------------------------------
 * Ranks started with different settings, data or graft versions would train different things
 * and never notice: each rank describes what must agree as named items, and rank 0's items are
 * compared with every other rank's. */
typedef struct gf_dist_item {
    char name[32];  /* "batch", "training data" */
    char text[80];  /* shown in the message: "64", "600 examples, labels 1f0e..." */
    uint64_t value; /* what is compared (a hash of text for gf_dist_item_text) */
} gf_dist_item;

/* 64-bit FNV-1a of n bytes continued from h (start with GF_DIST_HASH_INIT). */
#define GF_DIST_HASH_INIT 0xcbf29ce484222325ull
uint64_t gf_dist_hash(uint64_t h, const void *p, size_t n);
gf_dist_item gf_dist_item_text(const char *name, const char *text);
/* A dataset: its example count and a hash of its labels (or regression targets) in order. */
gf_dist_item gf_dist_item_dataset(gf_ctx *ctx, const char *name, const gf_ds *ds);
/* A model: its tensors' names, shapes and which parameters require a gradient. */
gf_dist_item gf_dist_item_module(gf_ctx *ctx, const char *name, const gf_module *m);
/* Every rank's items[0..n) equal rank 0's (the graft version is compared first). Otherwise
 * GF_ERR_INVALID on every rank with the same message naming the first rank and item that
 * differ and both values. */
gf_status gf_dist_check_same(gf_ctx *ctx, gf_dist *d, const gf_dist_item *items, int n);

/* ---- weights ---------------------------------------------------------------------------- */

/* Rank 0's parameters and buffers to every rank, so all start identical whatever their
 * random numbers. */
gf_status gf_dist_broadcast_module(gf_ctx *ctx, gf_dist *d, gf_module *m);
/* A hash of m's parameters and buffers on every rank: GF_ERR_STATE naming the ranks whose
 * weights differ from rank 0's. *hash (may be NULL): this rank's. */
gf_status gf_dist_same_weights(gf_ctx *ctx, gf_dist *d, const gf_module *m, uint64_t *hash);

/* ---- training ------------------------------------------------------------------------------ */

/* This rank's share of every batch: shard_rank / shard_count of the loader parameters. */
void gf_dist_shard_loader(const gf_dist *d, gf_loader_params *lp);
/* gf_fit's and gf_train_step's hook (gf_grad_sync_fn) set to gf_dist_grad_sync with d; in a
 * world of one process nothing is set, and gf_fit runs as it always does. */
void gf_dist_fit_params(gf_dist *d, gf_fit_params *fp);
void gf_dist_step_params(gf_dist *d, gf_step_params *sp);
/* The optional start (gf_grad_begin_fn, user: the gf_dist) that gf_dist_fit_params and
 * gf_dist_step_params set when p.overlap: watches the backward that follows and starts each
 * bucket's allreduce as soon as its gradients are final. gf_dist_grad_sync of the same opt
 * must come next. */
gf_status gf_dist_grad_begin(gf_ctx *ctx, gf_optim *opt, void *user);
/* The hook (user: the gf_dist): every trainable gradient of opt and stats[0..n_stats) summed
 * over the ranks, in buckets of bucket_bytes, and the stop flag exchanged. */
gf_status gf_dist_grad_sync(gf_ctx *ctx, gf_optim *opt, double *stats, int n_stats, void *user);

/* Synchronised BatchNorm (torch.nn.SyncBatchNorm) on ctx: every batch_norm in training mode
 * normalises with the statistics of the whole batch, all ranks' shares together
 * (gf_ctx_set_batch_norm_sync with gf_dist_sum as the hook); on false: each rank's share (the
 * default, PyTorch DDP's without SyncBatchNorm). Every rank needs at least one example in every
 * batch: drop a last batch smaller than the number of ranks (gf_loader_params.drop_last). */
void gf_dist_sync_batch_norm(gf_dist *d, gf_ctx *ctx, bool on);

/* A flag that a signal handler sets (Ctrl-C: mpirun sends the ranks SIGTERM). Each gradient
 * exchange carries it; once any rank has it set, gf_dist_stop_agreed turns true on every rank
 * after the same exchange, so all stop after the same step. */
void gf_dist_watch_stop(gf_dist *d, const volatile sig_atomic_t *flag);
bool gf_dist_stop_agreed(const gf_dist *d);

/* Sums v[0..n) over the ranks (every rank gets the sums). */
gf_status gf_dist_sum(gf_ctx *ctx, gf_dist *d, double *v, int n);
/* Waits for every rank, within the timeout. */
gf_status gf_dist_barrier(gf_ctx *ctx, gf_dist *d);

typedef struct gf_dist_stats {
    int64_t exchanges;   /* gradient exchanges (gf_dist_grad_sync calls) */
    int64_t bytes;       /* gradient bytes each rank contributed, all exchanges */
    int64_t buckets;     /* allreduce calls for them */
    int64_t buckets_early; /* of them started during the backward (overlap) */
    double seconds;      /* wall time in the exchanges' own work: packing (also during the
                          * backward), starting, waiting, unpacking */
    double wait_seconds; /* of which waiting for the collectives to finish */
} gf_dist_stats;

gf_dist_stats gf_dist_get_stats(const gf_dist *d);

#ifdef __cplusplus
}
#endif
#endif
