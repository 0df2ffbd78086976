/* The gradient exchange: gf_fit's hooks. The trainable gradients of an optimizer go into one
 * float buffer last parameter first, which is the order a backward makes them final in, and
 * the buffer is cut into buckets of bucket_bytes, each summed with MPI_Iallreduce. The layout
 * depends only on the model (the start-up checks compare the models), so every rank cuts the
 * same buckets and starts them in the same order.
 *
 * With overlap, gf_dist_grad_begin opens the exchange before the backward and watches it
 * (gf_backward_watch): each gradient is packed as soon as no node left can add to it, and a
 * bucket's allreduce starts once all of its gradients are packed, so the reduction of the last
 * layers' gradients runs while the first layers' are still being computed (PyTorch's DDP does
 * the same). gf_dist_grad_sync packs whatever is left, starts the remaining buckets, then a
 * small allreduce of doubles with the caller's stats, the stop flag and a presence value per
 * parameter, and waits for them all. A rank that skipped the backward (a non-finite loss)
 * packs everything in the sync: the collectives are the same on every rank either way. */
#define _POSIX_C_SOURCE 200809L
#include "dist/dist_internal.h"

#include <stdlib.h>
#include <string.h>

#include "graft/autograd.h"

static gf_status no_memory(gf_ctx *ctx, int64_t floats) {
    return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dist: out of memory for an exchange of %lld "
                            "gradient values", (long long)floats);
}

/* Grows *p to hold n items of size bytes (cap in items). */
static bool grow(void **p, int64_t *cap, int64_t n, size_t size) {
    if (n <= *cap) return true;
    void *q = realloc(*p, (size_t)n * size);
    if (!q) return false;
    *p = q;
    *cap = n;
    return true;
}

/* Room for `floats` floats, `stats` doubles, `reqs` requests, `params` parameters and
 * `buckets` buckets. The buffer never moves while an exchange is open (its size is set when
 * it opens), since allreduces in flight point into it. */
static gf_status reserve(gf_ctx *ctx, gf_dist *d, int64_t floats, int64_t stats, int64_t reqs,
                         int64_t params, int64_t buckets) {
    bool ok = grow((void **)&d->buf, &d->buf_cap, floats, sizeof *d->buf) &&
              grow((void **)&d->stats, &d->stats_cap, stats, sizeof *d->stats) &&
              grow((void **)&d->reqs, &d->reqs_cap, reqs, sizeof *d->reqs) &&
              grow((void **)&d->x_leaves, &d->leaves_cap, params, sizeof *d->x_leaves) &&
              grow((void **)&d->x_slots, &d->slots_cap, params, sizeof *d->x_slots) &&
              grow((void **)&d->x_pending, &d->pending_cap, buckets, sizeof *d->x_pending);
    return ok ? GF_OK : no_memory(ctx, floats);
}

static int64_t bucket_floats(const gf_dist *d) {
    const int64_t per = d->p.bucket_bytes / (int64_t)sizeof(float);
    return per > 0 ? per : 1;
}

/* Opens the exchange of opt's trainable gradients: the layout, the buckets' pending counts,
 * and the heartbeat that numbers it for the watchdog. */
static gf_status open_exchange(gf_ctx *ctx, gf_dist *d, gf_optim *opt, int n_stats) {
    int params = 0;
    int64_t total = 0;
    for (int i = 0; i < gf_optim_n_params(opt); i++) {
        const gf_tensor *p = gf_optim_param(opt, i);
        if (!p->requires_grad) continue;
        total += p->numel;
        params++;
    }
    const int64_t per = bucket_floats(d);
    const int buckets = (int)((total + per - 1) / per);
    gf_status st = reserve(ctx, d, total, n_stats + 1 + params, buckets + 1, params, buckets);
    if (st != GF_OK) return st;
    int k = 0;
    for (int i = 0; i < gf_optim_n_params(opt); i++) {
        gf_tensor *p = gf_optim_param(opt, i);
        if (p->requires_grad) d->x_leaves[k++] = p;
    }
    memset(d->x_pending, 0, sizeof *d->x_pending * (size_t)buckets);
    int64_t at = 0;
    for (int i = params - 1; i >= 0; i--) {
        const int64_t n = d->x_leaves[i]->numel;
        d->x_slots[i] = (dist_slot){at, false};
        if (n > 0)
            for (int64_t b = at / per; b <= (at + n - 1) / per; b++) d->x_pending[b]++;
        at += n;
    }
    d->x_opt = opt;
    d->x_params = params;
    d->x_total = total;
    d->x_buckets = buckets;
    d->x_started = d->x_nreq = 0;
    gf_dist_enter(d, "the gradient exchange");
    return GF_OK;
}

/* Starts the buckets that are complete, in order (early: during the backward). */
static gf_status start_ready(gf_ctx *ctx, gf_dist *d, bool early) {
    const int64_t per = bucket_floats(d);
    while (d->x_started < d->x_buckets && d->x_pending[d->x_started] == 0) {
        const int64_t at = (int64_t)d->x_started * per;
        const int64_t n = d->x_total - at < per ? d->x_total - at : per;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, d->buf + at, (int)n, MPI_FLOAT, MPI_SUM, d->comm,
                                &d->reqs[d->x_nreq++]);
        if (rc != MPI_SUCCESS) return gf_dist_mpi_error(ctx, d, "MPI_Iallreduce", rc);
        d->x_started++;
        d->st.buckets++;
        d->st.buckets_early += early;
    }
    return GF_OK;
}

/* Copies parameter i's gradient (zeros when it has none) into its place. */
static void pack(gf_dist *d, int i) {
    dist_slot *s = &d->x_slots[i];
    const gf_tensor *p = d->x_leaves[i];
    float *dst = d->buf + s->offset;
    if (s->packed) return; /* packed during the backward */
    if (p->grad) memcpy(dst, gf_f32(p->grad), (size_t)p->numel * sizeof(float));
    else memset(dst, 0, (size_t)p->numel * sizeof(float));
    s->packed = true;
    if (p->numel == 0) return;
    const int64_t per = bucket_floats(d), at = s->offset;
    for (int64_t b = at / per; b <= (at + p->numel - 1) / per; b++) d->x_pending[b]--;
}

/* The backward's notice that parameter i's gradient is final: pack it, start what is
 * complete, and let the allreduces in flight progress (Open MPI moves them only inside MPI
 * calls). */
static gf_status on_grad_ready(gf_ctx *ctx, int i, void *user) {
    gf_dist *d = user;
    const double t0 = gf_dist_now();
    pack(d, i);
    gf_status st = start_ready(ctx, d, true);
    if (st == GF_OK && d->x_nreq > 0) {
        int flag;
        MPI_Testall(d->x_nreq, d->reqs, &flag, MPI_STATUSES_IGNORE);
    }
    d->st.seconds += gf_dist_now() - t0;
    return st;
}

gf_status gf_dist_grad_begin(gf_ctx *ctx, gf_optim *opt, void *user) {
    gf_dist *d = user;
    if (!d || !opt)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "dist: gradient exchange: NULL argument");
    if (d->size < 2) return GF_OK;
    if (d->x_opt)
        return gf_ctx_set_error(ctx, GF_ERR_STATE, "dist: a gradient exchange was begun and "
                                "not finished (gf_dist_grad_sync) before the next one");
    gf_status st = open_exchange(ctx, d, opt, 0);
    if (st != GF_OK) return st;
    return gf_backward_watch(ctx, d->x_params, d->x_leaves, on_grad_ready, d);
}

/* The sums back into the gradients; a parameter with a gradient on some rank gets one here. */
static gf_status unpack(gf_ctx *ctx, gf_dist *d, const double *presence) {
    for (int i = 0; i < d->x_params; i++) {
        gf_tensor *p = d->x_leaves[i];
        if (presence[i] < 0.5) continue;
        if (!p->grad && !(p->grad = gf_tensor_new(ctx, GF_F32, p->ndim, p->shape)))
            return gf_ctx_status(ctx);
        memcpy(gf_f32(p->grad), d->buf + d->x_slots[i].offset, (size_t)p->numel * sizeof(float));
    }
    return GF_OK;
}

/* Packs what the backward did not, starts the remaining buckets and then the stats. */
static gf_status start_rest(gf_ctx *ctx, gf_dist *d, const double *stats, int n_stats) {
    for (int i = d->x_params - 1; i >= 0; i--)
        pack(d, i);
    gf_status st = start_ready(ctx, d, false);
    if (st != GF_OK) return st;
    double *s = d->stats;
    if (n_stats > 0) memcpy(s, stats, (size_t)n_stats * sizeof *stats);
    s[n_stats] = d->stop_flag && *d->stop_flag ? 1.0 : 0.0;
    for (int i = 0; i < d->x_params; i++) s[n_stats + 1 + i] = d->x_leaves[i]->grad ? 1.0 : 0.0;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, s, n_stats + 1 + d->x_params, MPI_DOUBLE, MPI_SUM,
                            d->comm, &d->reqs[d->x_nreq++]);
    return rc == MPI_SUCCESS ? GF_OK : gf_dist_mpi_error(ctx, d, "MPI_Iallreduce", rc);
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
    gf_status st;
    if (d->x_opt && d->x_opt != opt)
        return gf_ctx_set_error(ctx, GF_ERR_STATE, "dist: the gradient exchange begun for one "
                                "optimizer was finished with another");
    /* the begun exchange reserved no room for the stats: the layout stays, the room grows */
    if (d->x_opt) st = reserve(ctx, d, d->x_total, n_stats + 1 + d->x_params, d->x_buckets + 1,
                               d->x_params, d->x_buckets);
    else st = open_exchange(ctx, d, opt, n_stats);
    if (st != GF_OK || (st = start_rest(ctx, d, stats, n_stats)) != GF_OK) return st;
    const double tw = gf_dist_now();
    if ((st = gf_dist_wait(ctx, d, d->x_nreq, d->reqs, d->p.timeout)) != GF_OK) return st;
    d->st.wait_seconds += gf_dist_now() - tw;
    d->x_opt = NULL;
    if ((st = unpack(ctx, d, d->stats + n_stats + 1)) != GF_OK) return st;
    if (n_stats > 0) memcpy(stats, d->stats, (size_t)n_stats * sizeof *stats);
    d->stop_agreed = d->stats[n_stats] > 0.5;
    d->st.exchanges++;
    d->st.bytes += d->x_total * (int64_t)sizeof(float);
    d->st.seconds += gf_dist_now() - t0;
    return GF_OK;
}
