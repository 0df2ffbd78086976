/* The watchdog: every collective is nonblocking and waited for here, with a deadline. While a
 * rank waits it tells the others it is alive: each rank other than 0 sends rank 0 a heartbeat
 * (its exchange number) when it enters a collective and every `beat` seconds while it waits,
 * and rank 0 sends one to each of them. A rank that dies is noticed by the launcher, which
 * ends the job; a rank that is stopped or hangs sends nothing, the others' collective never
 * finishes, and after the timeout rank 0 fails naming the ranks it has not heard from. The
 * other ranks wait `grace` seconds longer, so rank 0's message comes first, and fail on their
 * own only when rank 0 is the silent one. The caller then stops the job (gf_dist_abort). */
#define _POSIX_C_SOURCE 200809L
#include "dist/dist_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { HB_TAG = 7 };

double gf_dist_now(void) { return gf_now_seconds(); }

static int n_peers(const gf_dist *d) { return d->rank == 0 ? d->size : 1; }
/* The rank a peer slot stands for. */
static int peer_rank(const gf_dist *d, int i) { return d->rank == 0 ? i : 0; }

static void post_recv(gf_dist *d, int i) {
    dist_peer *p = &d->peers[i];
    if (MPI_Irecv(p->buf, 2, MPI_INT64_T, peer_rank(d, i), HB_TAG, d->hb_comm, &p->recv) !=
        MPI_SUCCESS)
        p->recv = MPI_REQUEST_NULL;
}

gf_status gf_dist_watch_start(gf_ctx *ctx, gf_dist *d) {
    d->beat = d->p.timeout / 10 < 1.0 ? d->p.timeout / 10 : 1.0;
    if (d->beat < 0.05) d->beat = 0.05;
    if (d->size < 2) return GF_OK;
    d->peers = calloc((size_t)n_peers(d), sizeof *d->peers);
    if (!d->peers) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dist: out of memory");
    const double t = gf_dist_now();
    for (int i = 0; i < n_peers(d); i++) {
        dist_peer *p = &d->peers[i];
        p->recv = p->send = MPI_REQUEST_NULL;
        p->last_seen = t;
        p->last_seq = -1;
        if (peer_rank(d, i) != d->rank) post_recv(d, i);
    }
    return GF_OK;
}

/* Reads the heartbeats that arrived. */
static void poll_beats(gf_dist *d, double t) {
    for (int i = 0; i < n_peers(d); i++) {
        dist_peer *p = &d->peers[i];
        int got = 0;
        /* every heartbeat queued: each completed receive is posted again at once */
        while (p->recv != MPI_REQUEST_NULL && MPI_Test(&p->recv, &got, MPI_STATUS_IGNORE) ==
                                                   MPI_SUCCESS && got) {
            p->last_seen = t;
            p->last_seq = p->buf[0];
            post_recv(d, i);
        }
    }
}

/* A heartbeat to rank 0, or from rank 0 to every other rank: skipped towards a peer whose
 * last one is still in flight (a stopped rank does not take them). */
static void send_beats(gf_dist *d) {
    d->beats++;
    for (int i = 0; i < n_peers(d); i++) {
        dist_peer *p = &d->peers[i];
        if (peer_rank(d, i) == d->rank) continue;
        int done = 1;
        if (p->send != MPI_REQUEST_NULL) MPI_Test(&p->send, &done, MPI_STATUS_IGNORE);
        if (!done) continue;
        p->send_buf[0] = d->seq;
        p->send_buf[1] = d->beats;
        if (MPI_Isend(p->send_buf, 2, MPI_INT64_T, peer_rank(d, i), HB_TAG, d->hb_comm,
                      &p->send) != MPI_SUCCESS)
            p->send = MPI_REQUEST_NULL;
    }
}

void gf_dist_enter(gf_dist *d, const char *what) {
    d->seq++;
    d->what = what;
    if (d->size > 1 && d->peers) send_beats(d);
}

void gf_dist_watch_stop_all(gf_dist *d) {
    if (!d->peers) return;
    for (int i = 0; i < n_peers(d); i++) {
        dist_peer *p = &d->peers[i];
        if (p->recv != MPI_REQUEST_NULL) {
            MPI_Cancel(&p->recv);
            MPI_Wait(&p->recv, MPI_STATUS_IGNORE);
        }
        /* heartbeats are a few bytes: sent eagerly, they complete without the peer */
        if (p->send != MPI_REQUEST_NULL) MPI_Wait(&p->send, MPI_STATUS_IGNORE);
    }
    /* heartbeats that arrived after the last receive: taken, so none is left pending */
    int flag = 1;
    while (flag) {
        MPI_Status s;
        if (MPI_Iprobe(MPI_ANY_SOURCE, HB_TAG, d->hb_comm, &flag, &s) != MPI_SUCCESS) break;
        if (flag) {
            int64_t b[2];
            MPI_Recv(b, 2, MPI_INT64_T, s.MPI_SOURCE, HB_TAG, d->hb_comm, MPI_STATUS_IGNORE);
        }
    }
}

/* Sleeps a little longer each time a wait goes on: the first tests spin (a collective on one
 * machine takes microseconds), then the waiting rank leaves its core to the others, which
 * matters when ranks share cores. */
static void backoff(unsigned *round) {
    if (*round < 64) {
        (*round)++;
        return;
    }
    long ns = 20000L << ((*round - 64) / 16 < 6 ? (*round - 64) / 16 : 6); /* 20 us .. 1.3 ms */
    (*round)++;
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

/* Rank 0's message: the ranks it has not heard from for longer than half the timeout (or has
 * not seen reach this collective), with their pid and host. */
static gf_status fail_root(gf_ctx *ctx, gf_dist *d, double t, double waited, double timeout) {
    char names[768] = "";
    size_t len = 0;
    int silent = 0;
    for (int pass = 0; pass < 2 && silent == 0; pass++)
        for (int r = 1; r < d->size; r++) {
            const dist_peer *p = &d->peers[r];
            bool missing = pass == 0 ? t - p->last_seen > timeout / 2 : p->last_seq < d->seq;
            if (!missing || len >= sizeof names - 1) continue;
            silent++;
            len += (size_t)snprintf(names + len, sizeof names - len,
                                    "%srank %d (%s) silent for %.0f s, last at exchange %lld",
                                    silent > 1 ? "; " : "", r, gf_dist_describe_rank(d, r),
                                    t - p->last_seen, (long long)p->last_seq);
        }
    if (silent == 0)
        return gf_ctx_set_error(ctx, GF_ERR_STATE,
                                "dist: rank 0 waited %.0f s for %s (exchange %lld, timeout %g s): "
                                "every rank reached it and answers, yet it did not finish",
                                waited, d->what, (long long)d->seq, timeout);
    return gf_ctx_set_error(ctx, GF_ERR_STATE,
                            "dist: rank 0 waited %.0f s for %s (exchange %lld, timeout %g s): "
                            "%s: stopped, hung or dead; stopping the job",
                            waited, d->what, (long long)d->seq, timeout, names);
}

/* The message of a rank other than 0: rank 0 is silent, or it answers and should have
 * stopped the job itself. */
static gf_status fail_other(gf_ctx *ctx, gf_dist *d, double t, double waited, double timeout) {
    const dist_peer *p = &d->peers[0];
    if (t - p->last_seen > timeout / 2)
        return gf_ctx_set_error(ctx, GF_ERR_STATE,
                                "dist: rank %d waited %.0f s for %s (exchange %lld, timeout %g s "
                                "+ %g s): rank 0 (%s) silent for %.0f s, last at exchange %lld: "
                                "stopped, hung or dead; stopping the job",
                                d->rank, waited, d->what, (long long)d->seq, timeout,
                                d->p.grace, gf_dist_describe_rank(d, 0), t - p->last_seen,
                                (long long)p->last_seq);
    return gf_ctx_set_error(ctx, GF_ERR_STATE,
                            "dist: rank %d waited %.0f s for %s (exchange %lld, timeout %g s + "
                            "%g s); rank 0 answers but did not stop the job: some other rank "
                            "is missing; stopping the job",
                            d->rank, waited, d->what, (long long)d->seq, timeout,
                            d->p.grace);
}

gf_status gf_dist_wait(gf_ctx *ctx, gf_dist *d, int n, MPI_Request *reqs, double timeout) {
    const double t0 = gf_dist_now();
    const bool deadline = timeout > 0;
    const double limit = d->rank == 0 ? timeout : timeout + d->p.grace;
    double next_beat = t0 + d->beat;
    unsigned round = 0;
    for (;;) {
        int done = 0;
        int rc = MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return ctx ? gf_dist_mpi_error(ctx, d, "MPI_Testall", rc) : GF_ERR_STATE;
        if (done) return GF_OK;
        if (d->size < 2 || !d->peers) {
            backoff(&round);
            continue;
        }
        const double t = gf_dist_now();
        poll_beats(d, t);
        if (t >= next_beat) {
            send_beats(d);
            next_beat = t + d->beat;
        }
        if (deadline && t - t0 > limit) {
            if (!ctx) return GF_ERR_STATE;
            return d->rank == 0 ? fail_root(ctx, d, t, t - t0, timeout)
                                : fail_other(ctx, d, t, t - t0, timeout);
        }
        backoff(&round);
    }
}
