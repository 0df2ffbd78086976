/* Data parallelism inside one process (gf_replicas, graft/train.h): each thread runs the whole
 * forward, loss and backward of its slice of the batch in a context of its own, single-threaded,
 * with the model's gradients routed (gf_backward_route_grads) into per-replica buffers; one barrier
 * later the buffers are summed into the parameters' gradients. Compared with splitting every op
 * between the threads, a step has one synchronisation instead of dozens, and every kernel runs
 * at its single-thread speed. */
#include "core/internal.h"
#include "graft/autograd.h"
#include "graft/train.h"

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Floats between two parameters' buffers: each starts on its own cache line. */
#define GRAD_ALIGN 16
/* Doubles one replica hands over per exchange (a longer vector goes in several) */
#define SYNC_CHUNK 4096

/* The replicas of a step meet here to add up vectors (BatchNorm's batch statistics, whether
 * every loss is finite): each writes its part into its slot, waits for the others, and adds the
 * slots in replica order, so every replica gets the same bits. Two sets of slots alternate:
 * a set is written again only after the next meeting, which every replica reaches only once it
 * has read the set. A replica that stops (an error, or the end of its step) is counted in
 * `gone`, and a replica waiting for it gives up instead of waiting forever. */
typedef struct rep_sync {
    int n;                 /* replicas in this step */
    atomic_int arrived;    /* at the current meeting */
    atomic_uint gen;       /* meetings completed */
    atomic_int gone;       /* replicas whose step has ended */
    double *slots[2];      /* [n_max * SYNC_CHUNK] each */
} rep_sync;

typedef struct replica {
    gf_ctx *ctx;
    float *grads;      /* every routed gradient, at the offsets of gf_replicas.offset; all
                        * zero between steps (the reduction zeroes what it reads) */
    gf_rng seeded;     /* the RNG state this step started from */
    double loss;       /* mean over the slice */
    int64_t correct;
    int64_t n;         /* examples in the slice (0: idle this step) */
    double w;          /* the slice's share of the batch's mean loss */
    int index;
    unsigned phase;    /* exchanges this replica has taken part in (picks the slot set) */
    bool abandoned;    /* an exchange failed because another replica stopped */
    rep_sync *sync;
} replica;

struct gf_replicas {
    gf_module *model;
    int n;
    int n_params;
    gf_tensor **params;  /* trainable parameters, borrowed from the model */
    int64_t *offset;     /* of each parameter's gradient in a replica's buffer */
    int64_t total;       /* floats in a replica's buffer */
    replica *rep;
    rep_sync sync;
};

static void pause_cpu(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits until every replica of the step has arrived; false when one stopped first. */
static bool sync_wait(rep_sync *s) {
    const unsigned gen = atomic_load(&s->gen);
    if (atomic_fetch_add(&s->arrived, 1) + 1 == s->n) {
        atomic_store(&s->arrived, 0);
        atomic_fetch_add(&s->gen, 1);
        return true;
    }
    for (unsigned spins = 0; atomic_load(&s->gen) == gen; spins++) {
        /* the meeting may have completed just before the last one left */
        if (atomic_load(&s->gone) > 0) return atomic_load(&s->gen) != gen;
        if (spins < 4096) pause_cpu();
        else sched_yield();
    }
    return true;
}

/* gf_ctx_sum_fn of a replica's context: v[0..n) summed over the replicas of the step. */
static gf_status replica_sum(gf_ctx *ctx, double *v, int n, void *user) {
    replica *rp = user;
    rep_sync *s = rp->sync;
    for (int off = 0; off < n; off += SYNC_CHUNK) {
        const int len = n - off < SYNC_CHUNK ? n - off : SYNC_CHUNK;
        double *set = s->slots[rp->phase++ & 1];
        memcpy(set + (size_t)rp->index * SYNC_CHUNK, v + off, sizeof(double) * (size_t)len);
        if (!sync_wait(s)) {
            rp->abandoned = true;
            return gf_ctx_set_error(ctx, GF_ERR_STATE,
                                    "replicas: another replica stopped with an error");
        }
        for (int j = 0; j < len; j++) {
            double acc = 0.0;
            for (int q = 0; q < s->n; q++) acc += set[(size_t)q * SYNC_CHUNK + j];
            v[off + j] = acc;
        }
    }
    return GF_OK;
}

static gf_status collect_params(gf_ctx *ctx, gf_replicas *r) {
    gf_named_tensors *list = gf_module_named_tensors(ctx, r->model, GF_STATE_PARAMS);
    if (!list) return gf_ctx_status(ctx);
    r->params = malloc(sizeof *r->params * (size_t)(list->n ? list->n : 1));
    r->offset = malloc(sizeof *r->offset * (size_t)(list->n ? list->n : 1));
    if (!r->params || !r->offset) {
        gf_named_tensors_free(list);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "replicas: out of memory");
    }
    for (int i = 0; i < list->n; i++) {
        gf_tensor *t = list->items[i].tensor;
        if (!t->requires_grad) continue;
        if (t->dtype != GF_F32) {
            gf_status s = gf_ctx_set_error(ctx, GF_ERR_DTYPE,
                                           "replicas: parameter %s is %s; only float32 "
                                           "parameters can require a gradient",
                                           list->items[i].name, gf_dtype_name(t->dtype));
            gf_named_tensors_free(list);
            return s;
        }
        r->params[r->n_params] = t;
        r->offset[r->n_params++] = r->total;
        r->total += (t->numel + GRAD_ALIGN - 1) / GRAD_ALIGN * GRAD_ALIGN;
    }
    gf_named_tensors_free(list);
    return GF_OK;
}

/* A single-threaded context for one replica, with ctx's settings; its gradient buffers come
 * with its first training step (replica_grads), so replicas that only run forwards have none. */
static gf_status replica_init(gf_ctx *ctx, gf_replicas *r, replica *rp) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = ctx->n_threads; /* gf_ctx_new tells the BLAS this count: keep ctx's */
    cp.limits = *gf_ctx_limits(ctx);
    rp->ctx = gf_ctx_new(&cp);
    if (!rp->ctx) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "replicas: out of memory");
    rp->ctx->n_threads = 1; /* its kernels run inside one thread of the replicas' team */
    rp->ctx->conv_chunk_floats = ctx->conv_chunk_floats;
    rp->index = (int)(rp - r->rep);
    rp->sync = &r->sync;
    /* BatchNorm with batch statistics normalises with the whole batch's (replica_sum) */
    gf_ctx_set_batch_norm_sync(rp->ctx, replica_sum, rp);
    rp->ctx->bn_skip_running = rp->index > 0;
    return GF_OK;
}

/* The replica's gradient buffers, routed as the backward's destination of the parameters'. */
static gf_status replica_grads(gf_ctx *ctx, gf_replicas *r, replica *rp) {
    if (rp->grads) return GF_OK;
    size_t bytes = sizeof(float) * (size_t)(r->total ? r->total : GRAD_ALIGN);
    rp->grads = aligned_alloc(64, bytes);
    float **bufs = malloc(sizeof *bufs * (size_t)(r->n_params ? r->n_params : 1));
    if (!rp->grads || !bufs) {
        free(bufs);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "replicas: out of memory");
    }
    memset(rp->grads, 0, bytes);
    for (int i = 0; i < r->n_params; i++) bufs[i] = rp->grads + r->offset[i];
    gf_status st = r->n_params ? gf_backward_route_grads(rp->ctx, r->n_params, r->params, bufs) : GF_OK;
    free(bufs);
    if (st != GF_OK) return gf_ctx_set_error(ctx, st, "replicas: %s", gf_ctx_error(rp->ctx));
    return GF_OK;
}

void gf_replicas_free(gf_replicas *r) {
    if (!r) return;
    for (int i = 0; r->rep && i < r->n; i++) {
        gf_ctx_free(r->rep[i].ctx);
        free(r->rep[i].grads);
    }
    free(r->rep);
    free(r->sync.slots[0]);
    free(r->sync.slots[1]);
    free(r->params);
    free(r->offset);
    free(r);
}

gf_replicas *gf_replicas_new(gf_ctx *ctx, gf_module *model, int n) {
    if (ctx->status != GF_OK) return NULL;
    char why[384];
    if (n < 2) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "replicas: count %d, must be >= 2", n);
        return NULL;
    }
    if (!gf_module_replicable(model, why, sizeof why)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "replicas: the model cannot run in several "
                         "threads at once: %s", why);
        return NULL;
    }
    if (ctx->bn_sum && gf_module_uses_batch_stats(model)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "replicas: the model normalises with batch "
                         "statistics, which this context already synchronises across processes; "
                         "replicas cannot synchronise them too");
        return NULL;
    }
    gf_replicas *r = calloc(1, sizeof *r);
    if (!r) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "replicas: out of memory");
        return NULL;
    }
    r->model = model;
    r->n = n;
    r->rep = calloc((size_t)n, sizeof *r->rep);
    for (int k = 0; k < 2; k++)
        r->sync.slots[k] = malloc(sizeof(double) * SYNC_CHUNK * (size_t)n);
    if (!r->rep || !r->sync.slots[0] || !r->sync.slots[1]) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "replicas: out of memory");
        gf_replicas_free(r);
        return NULL;
    }
    if (collect_params(ctx, r) != GF_OK) {
        gf_replicas_free(r);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (replica_init(ctx, r, &r->rep[i]) != GF_OK) {
            gf_replicas_free(r);
            return NULL;
        }
    return r;
}

int gf_replicas_count(const gf_replicas *r) { return r ? r->n : 0; }

/* Rows [lo, hi) of a contiguous tensor, as a header in ctx's arena. */
static gf_tensor *rows_of(gf_ctx *ctx, const gf_tensor *t, int64_t lo, int64_t hi) {
    int64_t shape[GF_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = hi - lo;
    const int64_t row = t->shape[0] > 0 ? t->numel / t->shape[0] : 0;
    char *base = (char *)t->data + (size_t)(lo * row) * gf_dtype_size(t->dtype);
    return gf_view_raw(ctx, t->dtype, t->ndim, shape, NULL, base);
}

/* One replica's forward, loss and backward of rows [lo, hi): gradients of
 * scale * rp->w * (slice mean) into its buffers. synced: the replicas exchange BatchNorm
 * statistics, so every one runs its forward and, unless some loss is not finite (which they
 * agree on first), its backward. */
static void replica_run(replica *rp, gf_module *model, const gf_loss_spec *loss,
                        const gf_tensor *x, const gf_tensor *y, int64_t lo, int64_t hi,
                        float scale, bool synced) {
    gf_ctx *c = rp->ctx;
    rp->loss = NAN;
    rp->correct = -1;
    if (rp->w == 0.0 && !synced) { /* every target of the slice ignored: it adds nothing */
        rp->loss = 0.0;
        return;
    }
    gf_tensor *out = gf_module_forward(c, model, rows_of(c, x, lo, hi));
    gf_tensor *ys = rows_of(c, y, lo, hi);
    gf_tensor *l = gf_loss_compute(c, loss, out, ys);
    if (!l) return;
    rp->loss = rp->w == 0.0 ? 0.0 : (double)gf_get_f32(l, 0);
    rp->correct = gf_eval_batch_correct(loss, out, ys, gf_scratch_f32(c, out->numel));
    double bad = isfinite(rp->loss) ? 0.0 : 1.0;
    if (synced && replica_sum(c, &bad, 1, rp) != GF_OK) return;
    if (bad > 0.0) return;
    /* with weight 0 (synced) the slice's rows still get a gradient through the statistics */
    gf_tensor *seed = gf_full(c, l->ndim, l->shape, scale * (float)rp->w);
    if (seed) gf_backward_with(c, l, seed);
}

/* Thread t of nt takes its share of every parameter: adds the replicas' buffers into the
 * parameters' gradients (grads NULL: does not), summing the replicas in a fixed order
 * (reproducible), and zeroes the buffers for the next step in the same pass. */
static void reduce_share(gf_replicas *r, float *const *grads, int used, int t, int nt) {
    for (int p = 0; p < r->n_params; p++) {
        const int64_t numel = r->params[p]->numel;
        const int64_t lo = numel * t / nt, hi = numel * (t + 1) / nt, off = r->offset[p];
        float *b0 = r->rep[0].grads + off, *g = grads ? grads[p] : NULL;
        if (g && used == 2) { /* the common case in one pass */
            float *b1 = r->rep[1].grads + off;
            for (int64_t i = lo; i < hi; i++) {
                g[i] += b0[i] + b1[i];
                b0[i] = b1[i] = 0.0f;
            }
            continue;
        }
        for (int k = 0; k < used; k++) {
            float *b = r->rep[k].grads + off;
            if (g)
                for (int64_t i = lo; i < hi; i++) g[i] += b[i];
            memset(b + lo, 0, sizeof(float) * (size_t)(hi - lo));
        }
    }
}

static bool rng_moved(const gf_rng *a, const gf_rng *b) {
    return a->counter != b->counter || a->lane != b->lane || a->key != b->key;
}

/* Class targets per position (int64 [n, d1...]): the positions of rows [lo, hi) that count,
 * those not labelled GF_DS_IGNORE_LABEL. */
static int64_t counted(const gf_tensor *y, int64_t lo, int64_t hi) {
    const int64_t row = y->numel / y->shape[0];
    int64_t c = 0;
    for (int64_t i = lo * row; i < hi * row; i++) c += gf_i64(y)[i] != GF_DS_IGNORE_LABEL;
    return c;
}

/* Each replica's share of the mean: its examples' (hi - lo) / n, or for cross entropy over
 * positions (a mean over the positions not ignored) its counted positions' share. */
static void slice_weights(gf_replicas *r, const gf_loss_spec *loss, const gf_tensor *y,
                          int64_t n, int used) {
    const bool positions = (!loss || loss->kind == GF_LOSS_CROSS_ENTROPY) && y->ndim >= 2 &&
                           y->dtype == GF_I64;
    const int64_t all = positions ? counted(y, 0, n) : n;
    for (int k = 0; k < used; k++) {
        const int64_t lo = n * k / used, hi = n * (k + 1) / used;
        r->rep[k].w = all == 0    ? (double)(hi - lo) / (double)n /* all ignored: NaN as one */
                      : positions ? (double)counted(y, lo, hi) / (double)all
                                  : (double)(hi - lo) / (double)n;
    }
}

/* What each replica does in a step: forward, loss and backward of its slice (grad), or the
 * forward alone into outs[k]. */
typedef struct team_job {
    gf_module *model;
    const gf_loss_spec *loss;
    const gf_tensor *x, *y;
    int64_t n;
    float scale;
    bool synced, grad;
    gf_tensor **outs;
} team_job;

static void job_run(gf_replicas *r, const team_job *j, int k, int used) {
    const int64_t lo = j->n * k / used, hi = j->n * (k + 1) / used;
    if (j->grad) {
        replica_run(&r->rep[k], j->model, j->loss, j->x, j->y, lo, hi, j->scale, j->synced);
        return;
    }
    gf_ctx *c = r->rep[k].ctx;
    gf_tensor *y = gf_module_forward(c, j->model, rows_of(c, j->x, lo, hi));
    j->outs[k] = y && !gf_tensor_is_contiguous(y) ? gf_contiguous(c, y) : y;
}

/* Runs the job of each of the `used` replicas, each in a thread of one team; false, having run
 * none, when replicas that meet got fewer threads than replicas (one thread running two would
 * wait for itself). */
static bool run_team(gf_replicas *r, const team_job *j, int used) {
    bool short_team = false;
#pragma omp parallel num_threads(used)
    {
#ifdef _OPENMP
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        const int t = 0, nt = 1;
#endif
        if (j->synced && nt < used) {
            if (t == 0) short_team = true;
        } else {
            for (int k = t; k < used; k += nt) {
                job_run(r, j, k, used);
                atomic_fetch_add(&r->sync.gone, 1);
            }
        }
    }
    return !short_team;
}

/* Each of the `used` replicas set up for a step over n examples: ctx's settings, an RNG seeded
 * from *seeds (a copy of ctx's, which advances only if the replicas draw), its slice's size, and
 * the exchange reset. */
static void prepare(gf_ctx *ctx, gf_replicas *r, int64_t n, int used, bool grad, gf_rng *seeds) {
    *seeds = ctx->rng;
    for (int k = 0; k < used; k++) {
        replica *rp = &r->rep[k];
        rp->ctx->inplace = ctx->inplace;
        rp->ctx->grad_enabled = grad;
        gf_rng_seed(&rp->ctx->rng, gf_rng_u64(seeds));
        rp->seeded = rp->ctx->rng;
        rp->n = n * (k + 1) / used - n * k / used;
        rp->phase = 0;
        rp->abandoned = false;
    }
    r->sync.n = used;
    atomic_store(&r->sync.arrived, 0);
    atomic_store(&r->sync.gone, 0);
}

/* The first replica error into ctx: the error that stopped a replica, not the ones it made the
 * others give up with; or short_team's. */
static gf_status first_error(gf_ctx *ctx, gf_replicas *r, int used, bool short_team) {
    if (short_team)
        return gf_ctx_set_error(ctx, GF_ERR_STATE, "replicas: %d replicas exchange BatchNorm "
                                "statistics and need as many threads; OpenMP gave fewer (inside "
                                "another parallel region?)", used);
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < used; k++) {
            replica *rp = &r->rep[k];
            if (rp->ctx->status != GF_OK && (pass == 1 || !rp->abandoned))
                return gf_ctx_set_error(ctx, rp->ctx->status, "%s", gf_ctx_error(rp->ctx));
        }
    return GF_OK;
}

gf_tensor *gf_replicas_forward(gf_ctx *ctx, gf_replicas *r, gf_tensor *x) {
    if (ctx->status != GF_OK) return NULL;
    if (!r || !x) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "replicas forward: NULL %s", !r ? "replicas" : "input");
        return NULL;
    }
    const int64_t n = x->ndim > 0 ? x->shape[0] : 0;
    if (n < 1) {
        char a[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "replicas forward: input %s has no examples in its "
                         "first dimension", gf_shape_str(x, a, sizeof a));
        return NULL;
    }
    if (!gf_tensor_is_contiguous(x) && !(x = gf_contiguous(ctx, x))) return NULL;
    const int used = n < r->n ? (int)n : r->n;
    gf_rng seeds;
    prepare(ctx, r, n, used, false, &seeds);
    const bool synced = gf_module_uses_batch_stats(r->model);
    gf_tensor **outs = gf_scratch(ctx, sizeof *outs * (size_t)used);
    if (!outs) return NULL;
    const team_job job = {r->model, NULL, x, NULL, n, 0.0f, synced, false, outs};
    const bool full_team = run_team(r, &job, used);
    gf_tensor *out = NULL;
    if (first_error(ctx, r, used, !full_team) == GF_OK) {
        const gf_tensor *o0 = outs[0];
        int64_t shape[GF_MAX_DIMS];
        memcpy(shape, o0->shape, sizeof shape);
        shape[0] = n;
        bool fits = o0->ndim >= 1;
        for (int k = 0; k < used && fits; k++) {
            const gf_tensor *o = outs[k];
            fits = o->ndim == o0->ndim && o->dtype == o0->dtype && o->shape[0] == r->rep[k].n &&
                   memcmp(o->shape + 1, o0->shape + 1, sizeof(int64_t) * (size_t)(o0->ndim - 1)) == 0;
        }
        if (!fits) {
            char a[GF_SHAPE_BUF];
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "replicas forward: the model's output %s for a "
                             "slice of %lld examples does not keep one row per example",
                             gf_shape_str(o0, a, sizeof a), (long long)r->rep[0].n);
        } else if ((out = gf_empty(ctx, o0->dtype, o0->ndim, shape))) {
            char *dst = out->data;
            for (int k = 0; k < used; k++) {
                const size_t bytes = gf_dtype_size(outs[k]->dtype) * (size_t)outs[k]->numel;
                memcpy(dst, outs[k]->data, bytes);
                dst += bytes;
            }
        }
    }
    bool drew = false;
    for (int k = 0; k < used; k++) {
        replica *rp = &r->rep[k];
        gf_ctx_clear_error(rp->ctx);
        drew = drew || rng_moved(&rp->ctx->rng, &rp->seeded);
        gf_ctx_reset(rp->ctx);
    }
    if (out && drew) ctx->rng = seeds;
    return out;
}

gf_status gf_replicas_step(gf_ctx *ctx, gf_replicas *r, const gf_loss_spec *loss, gf_tensor *x,
                           gf_tensor *y, float scale, gf_replicas_out *out) {
    out->loss = NAN;
    out->correct = -1;
    if (ctx->status != GF_OK) return ctx->status;
    if (!r || !x || !y)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "replicas step: NULL %s",
                                !r ? "replicas" : !x ? "input" : "target");
    if (loss && loss->kind == GF_LOSS_CUSTOM)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "replicas step: a custom loss cannot be split between replicas "
                                "(it need not be a mean over examples)");
    const int64_t n = x->ndim > 0 ? x->shape[0] : 0;
    if (n < 1 || y->ndim < 1 || y->shape[0] != n) {
        char a[GF_SHAPE_BUF], b[GF_SHAPE_BUF];
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                                "replicas step: input %s and target %s need the same number of "
                                "examples (>= 1) in their first dimension",
                                gf_shape_str(x, a, sizeof a), gf_shape_str(y, b, sizeof b));
    }
    if (!gf_tensor_is_contiguous(x)) x = gf_contiguous(ctx, x);
    if (!gf_tensor_is_contiguous(y)) y = gf_contiguous(ctx, y);
    float **grads = gf_scratch(ctx, sizeof *grads * (size_t)(r->n_params ? r->n_params : 1));
    if (!x || !y || !grads) return ctx->status;
    for (int p = 0; p < r->n_params; p++)
        if (!(grads[p] = gf_grad_of(ctx, r->params[p])))
            return ctx->status ? ctx->status
                               : gf_ctx_set_error(ctx, GF_ERR_STATE,
                                                  "replicas step: a parameter no longer requires "
                                                  "a gradient (freeze before gf_replicas_new)");
    const int used = n < r->n ? (int)n : r->n;
    for (int k = 0; k < used; k++)
        if (replica_grads(ctx, r, &r->rep[k]) != GF_OK) return ctx->status;
    gf_rng seeds;
    prepare(ctx, r, n, used, true, &seeds);
    slice_weights(r, loss, y, n, used);
    const bool synced = gf_module_uses_batch_stats(r->model);
    const team_job job = {r->model, loss, x, y, n, scale, synced, true, NULL};
    const bool full_team = run_team(r, &job, used);
    bool ok = full_team;
    for (int k = 0; k < used; k++)
        ok = ok && r->rep[k].ctx->status == GF_OK && isfinite(r->rep[k].loss);
#pragma omp parallel num_threads(used)
    {
#ifdef _OPENMP
        reduce_share(r, ok ? grads : NULL, used, omp_get_thread_num(), omp_get_num_threads());
#else
        reduce_share(r, ok ? grads : NULL, used, 0, 1);
#endif
    }
    double sum = 0.0;
    int64_t correct = 0;
    bool drew = false;
    const gf_status failed = first_error(ctx, r, used, !full_team);
    for (int k = 0; k < used; k++) {
        replica *rp = &r->rep[k];
        gf_ctx_clear_error(rp->ctx);
        sum += rp->loss * rp->w;
        if (correct >= 0) correct = rp->correct >= 0 ? correct + rp->correct : -1;
        drew = drew || rng_moved(&rp->ctx->rng, &rp->seeded);
        gf_ctx_reset(rp->ctx);
    }
    if (failed != GF_OK) return failed;
    if (drew) ctx->rng = seeds;
    out->loss = sum; /* NaN or Inf when a slice's loss is */
    out->correct = correct;
    return GF_OK;
}
