/* The gradient exchange: gf_fit's hook. The trainable gradients are packed into one float
 * buffer in the optimizer's parameter order (the same on every rank: the start-up checks
 * compare the models), cut into buckets of bucket_bytes, and each bucket summed with
 * MPI_Iallreduce. With overlap, a bucket's allreduce starts as soon as it is packed and makes
 * progress while the next ones are packed. The stats gf_fit passes, and the stop flag, go in
 * a small allreduce of doubles beside them. */
#define _POSIX_C_SOURCE 200809L
#include "dist/dist_internal.h"

#include <stdlib.h>
#include <string.h>

/* Room for `floats` floats, `stats` doubles and `reqs` requests. */
static gf_status reserve(gf_ctx *ctx, gf_dist *d, int64_t floats, int stats, int reqs) {
    if (floats > d->buf_cap) {
        float *b = realloc(d->buf, (size_t)floats * sizeof *b);
        if (!b) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dist: out of memory for %lld "
                                        "gradient values", (long long)floats);
        d->buf = b;
        d->buf_cap = floats;
    }
    if (stats > d->stats_cap) {
        double *s = realloc(d->stats, (size_t)stats * sizeof *s);
        if (!s) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dist: out of memory");
        d->stats = s;
        d->stats_cap = stats;
    }
    if (reqs > d->reqs_cap) {
        MPI_Request *r = realloc(d->reqs, (size_t)reqs * sizeof *r);
        if (!r) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dist: out of memory");
        d->reqs = r;
        d->reqs_cap = reqs;
    }
    return GF_OK;
}

/* Trainable parameters of opt and their values: the gradients, then one presence value per
 * parameter (1 when it has a gradient here: a parameter no rank's batch reached keeps none,
 * as in one process). */
static void count(gf_optim *opt, int64_t *values, int *params) {
    *values = 0;
    *params = 0;
    for (int i = 0; i < gf_optim_n_params(opt); i++) {
        const gf_tensor *p = gf_optim_param(opt, i);
        if (!p->requires_grad) continue;
        *values += p->numel;
        (*params)++;
    }
    *values += *params;
}

/* Starts the allreduce of buf[from, to) as one or more buckets. */
static gf_status start_buckets(gf_ctx *ctx, gf_dist *d, int64_t from, int64_t to, int *nreq) {
    const int64_t per = d->p.bucket_bytes / (int64_t)sizeof(float);
    for (int64_t at = from; at < to; at += per) {
        const int64_t n = to - at < per ? to - at : per;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, d->buf + at, (int)n, MPI_FLOAT, MPI_SUM, d->comm,
                                &d->reqs[(*nreq)++]);
        if (rc != MPI_SUCCESS) return gf_dist_mpi_error(ctx, d, "MPI_Iallreduce", rc);
        d->st.buckets++;
    }
    return GF_OK;
}

/* Copies the gradients into the buffer, starting each bucket as soon as it is full when
 * overlapping (and letting the started ones progress), else all of them at the end. */
static gf_status pack_and_start(gf_ctx *ctx, gf_dist *d, gf_optim *opt, int64_t total,
                                int *nreq) {
    const int64_t per = d->p.bucket_bytes / (int64_t)sizeof(float);
    int64_t at = 0, started = 0;
    int k = 0, params = 0;
    for (int i = 0; i < gf_optim_n_params(opt); i++)
        params += gf_optim_param(opt, i)->requires_grad ? 1 : 0;
    float *presence = d->buf + (total - params);
    for (int i = 0; i < gf_optim_n_params(opt); i++) {
        const gf_tensor *p = gf_optim_param(opt, i);
        if (!p->requires_grad) continue;
        if (p->grad) memcpy(d->buf + at, gf_f32(p->grad), (size_t)p->numel * sizeof(float));
        else memset(d->buf + at, 0, (size_t)p->numel * sizeof(float));
        presence[k++] = p->grad ? 1.0f : 0.0f;
        at += p->numel;
        if (d->p.overlap && at - started >= per) {
            const int64_t upto = started + (at - started) / per * per;
            gf_status st = start_buckets(ctx, d, started, upto, nreq);
            if (st != GF_OK) return st;
            started = upto;
            int flag;
            MPI_Testall(*nreq, d->reqs, &flag, MPI_STATUSES_IGNORE); /* progress */
        }
    }
    return start_buckets(ctx, d, started, total, nreq);
}

/* The sums back into the gradients; a parameter with a gradient on some rank gets one here. */
static gf_status unpack(gf_ctx *ctx, gf_dist *d, gf_optim *opt, int64_t total, int params) {
    const float *presence = d->buf + (total - params);
    int64_t at = 0;
    int k = 0;
    for (int i = 0; i < gf_optim_n_params(opt); i++) {
        gf_tensor *p = gf_optim_param(opt, i);
        if (!p->requires_grad) continue;
        if (presence[k++] > 0.5f) {
            if (!p->grad && !(p->grad = gf_tensor_new(ctx, GF_F32, p->ndim, p->shape)))
                return gf_ctx_status(ctx);
            memcpy(gf_f32(p->grad), d->buf + at, (size_t)p->numel * sizeof(float));
        }
        at += p->numel;
    }
    return GF_OK;
}

gf_status gf_dist_grad_sync(gf_ctx *ctx, gf_optim *opt, double *stats, int n_stats, void *user) {
    gf_dist *d = user;
    if (!d || !opt || n_stats < 0 || (n_stats > 0 && !stats))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "dist: gradient exchange: NULL argument");
    const double t0 = gf_dist_now();
    if (d->size < 2) {
        d->stop_agreed = d->stop_flag && *d->stop_flag;
        return GF_OK;
    }
    int64_t total;
    int params;
    count(opt, &total, &params);
    const int64_t per = d->p.bucket_bytes / (int64_t)sizeof(float);
    const int buckets = (int)((total + per - 1) / per);
    gf_status st = reserve(ctx, d, total, n_stats + 1, buckets + 1);
    if (st != GF_OK) return st;
    /* the small one first: its values are ready, and its result is needed first */
    if (n_stats > 0) memcpy(d->stats, stats, (size_t)n_stats * sizeof *stats);
    d->stats[n_stats] = d->stop_flag && *d->stop_flag ? 1.0 : 0.0;
    gf_dist_enter(d, "the gradient exchange");
    int nreq = 0;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, d->stats, n_stats + 1, MPI_DOUBLE, MPI_SUM, d->comm,
                            &d->reqs[nreq++]);
    if (rc != MPI_SUCCESS) return gf_dist_mpi_error(ctx, d, "MPI_Iallreduce", rc);
    if ((st = pack_and_start(ctx, d, opt, total, &nreq)) != GF_OK) return st;
    const double tw = gf_dist_now();
    if ((st = gf_dist_wait(ctx, d, nreq, d->reqs, d->p.timeout)) != GF_OK) return st;
    d->st.wait_seconds += gf_dist_now() - tw;
    if ((st = unpack(ctx, d, opt, total, params)) != GF_OK) return st;
    if (n_stats > 0) memcpy(stats, d->stats, (size_t)n_stats * sizeof *stats);
    d->stop_agreed = d->stats[n_stats] > 0.5;
    d->st.exchanges++;
    d->st.bytes += (total - params) * (int64_t)sizeof(float);
    d->st.seconds += gf_dist_now() - t0;
    return GF_OK;
}
