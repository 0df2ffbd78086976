/* The job: joining it (MPI_Init only under a launcher), its ranks, leaving it, stopping it, and
 * the settings gf_fit and the loaders take from it. */
#define _POSIX_C_SOURCE 200809L
#include "dist/dist_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

gf_dist_params gf_dist_default_params(void) {
    gf_dist_params p;
    memset(&p, 0, sizeof p);
    p.timeout = 60.0;
    p.grace = -1.0;
    p.bucket_bytes = INT64_C(1) << 20;
    p.overlap = true;
    return p;
}

/* The world size a launcher announces, 0 when none did: Open MPI, MPICH's and Intel's Hydra
 * and PMI-2 launchers (srun included), PMIx. */
static int env_size(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE",
                                       "MPI_LOCALNRANKS", "SLURM_NTASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) {
            int n = atoi(v);
            /* srun sets SLURM_NTASKS for any step; only a PMI rank makes it an MPI launch */
            if (i == 4 && !getenv("PMI_RANK") && !getenv("PMIX_RANK")) continue;
            if (n >= 1) return n;
        }
    }
    if (getenv("PMIX_RANK") || getenv("PMI_RANK")) return 1; /* a launcher without a size */
    return 0;
}

bool gf_dist_launched(void) { return env_size() > 0; }
int gf_dist_launched_size(void) {
    int n = env_size();
    return n > 0 ? n : 1;
}

gf_status gf_dist_mpi_error(gf_ctx *ctx, const gf_dist *d, const char *call, int code) {
    char msg[MPI_MAX_ERROR_STRING] = "?";
    int len = 0;
    MPI_Error_string(code, msg, &len);
    return gf_ctx_set_error(ctx, GF_ERR_STATE, "dist: rank %d: %s failed: %s", d ? d->rank : -1,
                            call, msg);
}

/* MPI itself, the communicators, and every rank's pid and host for messages. */
static gf_status join(gf_ctx *ctx, gf_dist *d) {
    int inited = 0, rc;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return gf_dist_mpi_error(ctx, d, "MPI_Init_thread", rc);
        d->we_initialised = true;
    }
    d->mpi = true;
    /* errors come back as codes, to become context errors naming the call */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, &d->comm)) != MPI_SUCCESS ||
        (rc = MPI_Comm_dup(MPI_COMM_WORLD, &d->hb_comm)) != MPI_SUCCESS)
        return gf_dist_mpi_error(ctx, d, "MPI_Comm_dup", rc);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    d->procs = calloc((size_t)d->size, sizeof *d->procs);
    if (!d->procs) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dist: out of memory");
    gf_status st = gf_dist_watch_start(ctx, d);
    if (st != GF_OK) return st;
    dist_proc me;
    memset(&me, 0, sizeof me);
    me.pid = (int64_t)getpid();
    if (gethostname(me.host, sizeof me.host - 1) != 0) snprintf(me.host, sizeof me.host, "?");
    MPI_Request req;
    gf_dist_enter(d, "the start (every rank's process id and host)");
    rc = MPI_Iallgather(&me, (int)sizeof me, MPI_BYTE, d->procs, (int)sizeof me, MPI_BYTE,
                        d->comm, &req);
    if (rc != MPI_SUCCESS) return gf_dist_mpi_error(ctx, d, "MPI_Iallgather", rc);
    return gf_dist_wait(ctx, d, 1, &req, gf_dist_startup_timeout(d));
}

double gf_dist_startup_timeout(const gf_dist *d) { return 10 * d->p.timeout; }

gf_dist *gf_dist_init(gf_ctx *ctx, const gf_dist_params *p) {
    gf_dist *d = calloc(1, sizeof *d);
    if (!d) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dist: out of memory");
        return NULL;
    }
    d->p = p ? *p : gf_dist_default_params();
    if (!(d->p.timeout > 0) || d->p.bucket_bytes < 4) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "dist: timeout %g s must be > 0 and bucket_bytes "
                         "%lld >= 4", d->p.timeout, (long long)d->p.bucket_bytes);
        free(d);
        return NULL;
    }
    if (!(d->p.grace >= 0)) d->p.grace = d->p.timeout / 4 > 2.0 ? d->p.timeout / 4 : 2.0;
    d->comm = d->hb_comm = MPI_COMM_NULL;
    d->size = 1;
    /* not launched: a world of one, and MPI is never touched (it may not even start here) */
    if (gf_dist_launched() && join(ctx, d) != GF_OK) {
        gf_dist_finalize(d);
        return NULL;
    }
    return d;
}

void gf_dist_finalize(gf_dist *d) {
    if (!d) return;
    if (d->mpi && d->comm != MPI_COMM_NULL) {
        /* every rank here before anyone leaves, however long rank 0 takes for its results */
        if (d->size > 1) {
            MPI_Request req;
            gf_dist_enter(d, "the end (waiting for every rank to finish)");
            if (MPI_Ibarrier(d->comm, &req) == MPI_SUCCESS) gf_dist_wait(NULL, d, 1, &req, 0);
        }
        gf_dist_watch_stop_all(d);
        MPI_Comm_free(&d->hb_comm);
        MPI_Comm_free(&d->comm);
    }
    if (d->we_initialised) MPI_Finalize();
    free(d->procs);
    free(d->peers);
    free(d->buf);
    free(d->stats);
    free(d->reqs);
    free(d->x_slots);
    free(d->x_leaves);
    free(d->x_pending);
    free(d);
}

void gf_dist_abort(gf_dist *d, int code) {
    if (d && d->mpi) MPI_Abort(d->comm != MPI_COMM_NULL ? d->comm : MPI_COMM_WORLD, code);
}

int gf_dist_rank(const gf_dist *d) { return d ? d->rank : 0; }
int gf_dist_size(const gf_dist *d) { return d ? d->size : 1; }

const char *gf_dist_describe_rank(const gf_dist *d, int rank) {
    if (!d || !d->procs || rank < 0 || rank >= d->size) return "?";
    gf_dist *m = (gf_dist *)d; /* the description buffer only */
    snprintf(m->desc, sizeof m->desc, "pid %lld on %s", (long long)d->procs[rank].pid,
             d->procs[rank].host);
    return m->desc;
}

void gf_dist_shard_loader(const gf_dist *d, gf_loader_params *lp) {
    if (!lp) return;
    lp->shard_rank = d && d->size > 1 ? d->rank : 0;
    lp->shard_count = d && d->size > 1 ? d->size : 0;
}

void gf_dist_fit_params(gf_dist *d, gf_fit_params *fp) {
    if (!fp || !d || d->size < 2) return;
    fp->grad_sync = gf_dist_grad_sync;
    fp->grad_begin = d->p.overlap ? gf_dist_grad_begin : NULL;
    fp->grad_sync_user = d;
}

void gf_dist_step_params(gf_dist *d, gf_step_params *sp) {
    if (!sp || !d || d->size < 2) return;
    sp->grad_sync = gf_dist_grad_sync;
    sp->grad_begin = d->p.overlap ? gf_dist_grad_begin : NULL;
    sp->grad_sync_user = d;
}

void gf_dist_watch_stop(gf_dist *d, const volatile sig_atomic_t *flag) {
    if (d) d->stop_flag = flag;
}

bool gf_dist_stop_agreed(const gf_dist *d) {
    if (!d) return false;
    /* one process agrees with itself at once */
    if (d->size < 2) return d->stop_flag && *d->stop_flag;
    return d->stop_agreed;
}

gf_dist_stats gf_dist_get_stats(const gf_dist *d) {
    gf_dist_stats s;
    memset(&s, 0, sizeof s);
    return d ? d->st : s;
}

gf_status gf_dist_sum(gf_ctx *ctx, gf_dist *d, double *v, int n) {
    if (!d || n < 0 || (n > 0 && !v))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "dist: sum of %d values: NULL argument", n);
    if (d->size < 2 || n == 0) return GF_OK;
    MPI_Request req;
    gf_dist_enter(d, "a sum over the ranks");
    int rc = MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, d->comm, &req);
    if (rc != MPI_SUCCESS) return gf_dist_mpi_error(ctx, d, "MPI_Iallreduce", rc);
    return gf_dist_wait(ctx, d, 1, &req, d->p.timeout);
}

static gf_status batch_norm_sum(gf_ctx *ctx, double *v, int n, void *user) {
    return gf_dist_sum(ctx, user, v, n);
}

void gf_dist_sync_batch_norm(gf_dist *d, gf_ctx *ctx, bool on) {
    if (ctx) gf_ctx_set_batch_norm_sync(ctx, on && d ? batch_norm_sum : NULL, d);
}

gf_status gf_dist_barrier(gf_ctx *ctx, gf_dist *d) {
    if (!d) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "dist: barrier: NULL job");
    if (d->size < 2) return GF_OK;
    MPI_Request req;
    gf_dist_enter(d, "a barrier");
    int rc = MPI_Ibarrier(d->comm, &req);
    if (rc != MPI_SUCCESS) return gf_dist_mpi_error(ctx, d, "MPI_Ibarrier", rc);
    return gf_dist_wait(ctx, d, 1, &req, d->p.timeout);
}
