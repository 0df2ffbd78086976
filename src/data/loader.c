/* Batch loader: per-epoch seeded permutation, batches read through gf_ds_read and transformed
 * with gf_tf_apply_raw, double-buffered between the caller and one prefetch thread. */
#define _POSIX_C_SOURCE 200809L
#include "graft/loader.h"
#include "core/internal.h"
#include "data/tf_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N_SLOTS = 2 }; /* the batch the caller holds + the one being prepared */

typedef enum slot_state { SLOT_EMPTY, SLOT_FILLING, SLOT_READY, SLOT_HELD } slot_state;

typedef struct slot {
    slot_state state;
    gf_tensor *x, *y; /* persistent, batch_size rows; shape[0] set per batch */
    float *raw;       /* untransformed examples (only with a transform) */
    int64_t *idx;     /* [batch_size] */
    int64_t n, epoch, index;
    int64_t global_n, offset; /* the whole batch's size, this share's place in it */
    gf_status status;
    char err[384];
} slot;

struct gf_loader {
    gf_ds *ds;
    gf_loader_params p;
    int64_t n, nb; /* examples, batches per epoch */
    int in_ndim;
    int64_t in_shape[GF_DS_MAX_DIMS]; /* sample shape of the dataset */
    int64_t in_numel, out_numel;
    slot slots[N_SLOTS];

    /* the filler's permutation cache (the worker's, or the caller's without prefetch) */
    int64_t *perm;
    int64_t perm_epoch;

    /* caller's position */
    int64_t cur_epoch, cur_batch;
    int next_slot; /* ring position of the next batch to hand out */
    int held;      /* slot the caller holds, -1 */
    bool failed;
    gf_status fail_status;
    char fail_msg[512];

    /* worker */
    bool thread_running, quit;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t w_epoch, w_batch; /* next job */
    int w_slot;
};

gf_loader_params gf_loader_default_params(void) {
    gf_loader_params p;
    memset(&p, 0, sizeof p);
    p.batch_size = 64;
    p.shuffle = true;
    p.drop_last = false;
    p.seed = 0;
    p.prefetch = true;
    p.transform = NULL;
    return p;
}

static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Independent seeds for the shuffle of an epoch and the transform of a batch. */
static uint64_t derive(uint64_t seed, uint64_t tag, int64_t epoch, int64_t batch) {
    return mix64(mix64(mix64(seed ^ tag) + (uint64_t)epoch) + (uint64_t)batch);
}

static void make_perm(const gf_loader *ld, int64_t epoch, int64_t *perm) {
    for (int64_t i = 0; i < ld->n; i++) perm[i] = i;
    if (!ld->p.shuffle) return;
    gf_rng r;
    gf_rng_seed(&r, derive(ld->p.seed, 0x73687566666C65ull /* "shuffle" */, epoch, 0));
    gf_rng_shuffle(&r, perm, ld->n);
}

/* This process's share of a batch of `whole` examples: *off, *n (the whole batch unsharded).
 * Contiguous shares, the first whole % count of them one example longer, so that every process
 * computes every share's place from the batch size alone. */
static void share_of(const gf_loader *ld, int64_t whole, int64_t *off, int64_t *n) {
    const int64_t k = ld->p.shard_count > 1 ? ld->p.shard_count : 1, r = ld->p.shard_rank;
    const int64_t base = whole / k, extra = whole % k;
    *n = k == 1 ? whole : base + (r < extra ? 1 : 0);
    *off = k == 1 ? 0 : r * base + (r < extra ? r : extra);
}

/* Prepares batch (epoch, index) in s. Runs on the worker (or the caller without prefetch). */
static void fill(gf_loader *ld, slot *s, int64_t epoch, int64_t index) {
    if (ld->perm_epoch != epoch) {
        make_perm(ld, epoch, ld->perm);
        ld->perm_epoch = epoch;
    }
    const int64_t B = ld->p.batch_size, start = index * B;
    const int64_t whole = ld->n - start < B ? ld->n - start : B;
    int64_t off, n;
    share_of(ld, whole, &off, &n);
    memcpy(s->idx, ld->perm + start + off, (size_t)n * sizeof *s->idx);
    s->n = n;
    s->global_n = whole;
    s->offset = off;
    s->epoch = epoch;
    s->index = index;
    s->err[0] = '\0';
    s->status = GF_OK;
    if (n == 0) return; /* an empty share: nothing to read */
    float *dst = ld->p.transform ? s->raw : gf_f32(s->x);
    s->status = gf_ds_read_epoch(ld->ds, s->idx, n, epoch, dst, s->y->data, s->err, sizeof s->err);
    if (s->status == GF_OK && ld->p.transform)
        s->status = gf_tf_apply_raw_at(ld->p.transform, n, off, ld->in_ndim, ld->in_shape, s->raw,
                                       gf_f32(s->x), derive(ld->p.seed, 0x7466ull, epoch, index),
                                       s->err, sizeof s->err);
}

static void *worker(void *arg) {
    gf_loader *ld = arg;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->quit && ld->slots[ld->w_slot].state != SLOT_EMPTY)
            pthread_cond_wait(&ld->cv, &ld->mu);
        if (ld->quit) break;
        slot *s = &ld->slots[ld->w_slot];
        const int64_t epoch = ld->w_epoch, index = ld->w_batch;
        s->state = SLOT_FILLING;
        ld->w_slot = (ld->w_slot + 1) % N_SLOTS;
        if (++ld->w_batch == ld->nb) {
            ld->w_batch = 0;
            ld->w_epoch++;
        }
        pthread_mutex_unlock(&ld->mu);
        fill(ld, s, epoch, index);
        pthread_mutex_lock(&ld->mu);
        s->state = SLOT_READY;
        pthread_cond_broadcast(&ld->cv);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

/* Stops the worker (it finishes the batch in hand) and empties every slot. */
static void stop_worker(gf_loader *ld) {
    if (ld->thread_running) {
        pthread_mutex_lock(&ld->mu);
        ld->quit = true;
        pthread_cond_broadcast(&ld->cv);
        pthread_mutex_unlock(&ld->mu);
        pthread_join(ld->thread, NULL);
        ld->thread_running = false;
    }
    ld->quit = false;
    for (int i = 0; i < N_SLOTS; i++) ld->slots[i].state = SLOT_EMPTY;
    ld->held = -1;
    ld->next_slot = 0;
}

static gf_status start_worker(gf_ctx *ctx, gf_loader *ld) {
    ld->w_epoch = ld->cur_epoch;
    ld->w_batch = ld->cur_batch;
    ld->w_slot = 0;
    if (!ld->p.prefetch) return GF_OK;
    if (pthread_create(&ld->thread, NULL, worker, ld) != 0)
        return gf_ctx_set_error(ctx, GF_ERR_STATE, "gf_loader: cannot start the prefetch thread");
    ld->thread_running = true;
    return GF_OK;
}

gf_loader *gf_loader_new(gf_ctx *ctx, gf_ds *ds, const gf_loader_params *params) {
    gf_loader_params p = params ? *params : gf_loader_default_params();
    if (!ds) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_loader_new: NULL dataset");
        return NULL;
    }
    const int64_t n = gf_ds_count(ds);
    const int shards = p.shard_count > 0 ? p.shard_count : 1;
    if (p.shard_count < 0 || p.shard_rank < 0 || p.shard_rank >= shards) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "gf_loader_new: share %d of %d (shard_rank must be in 0..shard_count-1)",
                         p.shard_rank, p.shard_count);
        return NULL;
    }
    if (p.batch_size < 1 || n < 1) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "gf_loader_new: batch_size %lld must be >= 1 and the dataset non-empty "
                         "(%lld examples)",
                         (long long)p.batch_size, (long long)n);
        return NULL;
    }
    const int64_t nb = p.drop_last ? n / p.batch_size : (n + p.batch_size - 1) / p.batch_size;
    if (nb == 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "gf_loader_new: drop_last with batch_size %lld > %lld examples leaves "
                         "no batch",
                         (long long)p.batch_size, (long long)n);
        return NULL;
    }
    const int ndim = gf_ds_ndim(ds);
    int64_t out[GF_MAX_DIMS + 1];
    out[0] = p.batch_size;
    if (gf_tf_out_shape(ctx, p.transform, ndim, gf_ds_shape(ds), out + 1) != GF_OK) return NULL;
    gf_loader *ld = calloc(1, sizeof *ld);
    if (!ld) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_loader_new: out of memory");
        return NULL;
    }
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv, NULL);
    ld->ds = gf_ds_retain(ds);
    ld->p = p;
    ld->n = n;
    ld->nb = nb;
    ld->in_ndim = ndim;
    memcpy(ld->in_shape, gf_ds_shape(ds), (size_t)ndim * sizeof *ld->in_shape);
    ld->in_numel = gf_ds_sample_numel(ds);
    ld->out_numel = 1;
    for (int d = 1; d <= ndim; d++) ld->out_numel *= out[d];
    ld->perm = malloc((size_t)n * sizeof *ld->perm);
    ld->perm_epoch = -1;
    ld->held = -1;
    bool ok = ld->perm != NULL;
    /* per-step labels: y [batch, T], the layout of PyTorch's sequence-labelling targets */
    const int64_t yshape[2] = {p.batch_size, gf_ds_label_steps(ds)};
    for (int i = 0; i < N_SLOTS && ok; i++) {
        slot *s = &ld->slots[i];
        s->x = gf_tensor_new(ctx, GF_F32, ndim + 1, out);
        s->y = gf_tensor_new(ctx, gf_ds_n_classes(ds) > 0 ? GF_I64 : GF_F32,
                             gf_ds_label_steps(ds) > 0 ? 2 : 1, yshape);
        s->idx = malloc((size_t)p.batch_size * sizeof *s->idx);
        if (p.transform) s->raw = malloc((size_t)(p.batch_size * ld->in_numel) * sizeof *s->raw);
        ok = s->x && s->y && s->idx && (!p.transform || s->raw);
    }
    if (!ok) {
        if (gf_ctx_status(ctx) == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_loader_new: out of memory for batches of %lld",
                             (long long)p.batch_size);
        gf_loader_free(ld);
        return NULL;
    }
    if (start_worker(ctx, ld) != GF_OK) {
        gf_loader_free(ld);
        return NULL;
    }
    return ld;
}

void gf_loader_free(gf_loader *ld) {
    if (!ld) return;
    stop_worker(ld);
    for (int i = 0; i < N_SLOTS; i++) {
        gf_tensor_free(ld->slots[i].x);
        gf_tensor_free(ld->slots[i].y);
        free(ld->slots[i].raw);
        free(ld->slots[i].idx);
    }
    free(ld->perm);
    gf_ds_free(ld->ds);
    pthread_cond_destroy(&ld->cv);
    pthread_mutex_destroy(&ld->mu);
    free(ld);
}

static void set_rows(gf_tensor *t, int64_t n) {
    int64_t row = 1; /* from the other dimensions: the last batch's row count may be 0 */
    for (int d = 1; d < t->ndim; d++) row *= t->shape[d];
    t->numel = row * n;
    t->shape[0] = n;
}

bool gf_loader_next(gf_ctx *ctx, gf_loader *ld, gf_batch *b) {
    if (!ld || !b) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_loader_next: NULL loader or batch");
        return false;
    }
    memset(b, 0, sizeof *b);
    pthread_mutex_lock(&ld->mu);
    if (ld->held >= 0) {
        ld->slots[ld->held].state = SLOT_EMPTY;
        ld->held = -1;
        pthread_cond_broadcast(&ld->cv);
    }
    if (ld->failed) {
        pthread_mutex_unlock(&ld->mu);
        gf_ctx_set_error(ctx, ld->fail_status, "%s", ld->fail_msg);
        return false;
    }
    if (ld->cur_batch == ld->nb) {
        ld->cur_batch = 0;
        ld->cur_epoch++;
        pthread_mutex_unlock(&ld->mu);
        return false;
    }
    slot *s = &ld->slots[ld->next_slot];
    if (ld->thread_running) {
        while (s->state != SLOT_READY) pthread_cond_wait(&ld->cv, &ld->mu);
    } else {
        fill(ld, s, ld->cur_epoch, ld->cur_batch);
    }
    if (s->epoch != ld->cur_epoch || s->index != ld->cur_batch) { /* cannot happen */
        s->status = GF_ERR_STATE;
        snprintf(s->err, sizeof s->err, "prefetched batch %lld/%lld, expected %lld/%lld",
                 (long long)s->epoch, (long long)s->index, (long long)ld->cur_epoch,
                 (long long)ld->cur_batch);
    }
    if (s->status != GF_OK) {
        ld->failed = true;
        ld->fail_status = s->status;
        snprintf(ld->fail_msg, sizeof ld->fail_msg, "gf_loader: epoch %lld batch %lld: %s",
                 (long long)s->epoch, (long long)s->index, s->err);
        s->state = SLOT_EMPTY;
        pthread_mutex_unlock(&ld->mu);
        gf_ctx_set_error(ctx, ld->fail_status, "%s", ld->fail_msg);
        return false;
    }
    s->state = SLOT_HELD;
    ld->held = ld->next_slot;
    ld->next_slot = (ld->next_slot + 1) % N_SLOTS;
    ld->cur_batch++;
    pthread_mutex_unlock(&ld->mu);
    set_rows(s->x, s->n);
    set_rows(s->y, s->n);
    b->x = s->x;
    b->y = s->y;
    b->idx = s->idx;
    b->n = s->n;
    b->epoch = s->epoch;
    b->index = s->index;
    b->global_n = s->global_n;
    b->offset = s->offset;
    return true;
}

int64_t gf_loader_batches_per_epoch(const gf_loader *ld) { return ld ? ld->nb : 0; }
int64_t gf_loader_epoch(const gf_loader *ld) { return ld ? ld->cur_epoch : 0; }
int64_t gf_loader_batch_index(const gf_loader *ld) { return ld ? ld->cur_batch : 0; }

gf_status gf_loader_seek(gf_ctx *ctx, gf_loader *ld, int64_t epoch, int64_t batch) {
    if (!ld) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_loader_seek: NULL loader");
    if (epoch < 0 || batch < 0 || batch > ld->nb)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "gf_loader_seek: epoch %lld, batch %lld outside 0..%lld",
                                (long long)epoch, (long long)batch, (long long)ld->nb);
    stop_worker(ld);
    if (batch == ld->nb) { /* the end of an epoch is the start of the next */
        batch = 0;
        epoch++;
    }
    ld->cur_epoch = epoch;
    ld->cur_batch = batch;
    ld->failed = false;
    return start_worker(ctx, ld);
}

gf_status gf_loader_indices(gf_ctx *ctx, const gf_loader *ld, int64_t epoch, int64_t batch,
                            int64_t *idx, int64_t *count) {
    if (!ld || !idx || !count)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_loader_indices: NULL argument");
    if (epoch < 0 || batch < 0 || batch >= ld->nb)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "gf_loader_indices: epoch %lld, batch %lld outside 0..%lld",
                                (long long)epoch, (long long)batch, (long long)ld->nb - 1);
    int64_t *perm = malloc((size_t)ld->n * sizeof *perm);
    if (!perm) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_loader_indices: out of memory");
    make_perm(ld, epoch, perm);
    const int64_t B = ld->p.batch_size, start = batch * B;
    int64_t off;
    share_of(ld, ld->n - start < B ? ld->n - start : B, &off, count);
    memcpy(idx, perm + start + off, (size_t)*count * sizeof *idx);
    free(perm);
    return GF_OK;
}
