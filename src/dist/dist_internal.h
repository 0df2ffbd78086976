/* Internals of the dist layer (src/dist): the job's state, and the waiting with a deadline and
 * heartbeats that every collective goes through (watchdog.c). Not installed. */
#ifndef GRAFT_DIST_INTERNAL_H
#define GRAFT_DIST_INTERNAL_H

#include "graft/dist.h"

#include <mpi.h>

/* Where one trainable parameter's gradient goes in the exchange. */
typedef struct dist_slot {
    int64_t offset;  /* in the buffer */
    bool packed;
} dist_slot;

typedef struct dist_proc {
    int64_t pid;
    char host[56];
} dist_proc;

/* What one rank knows of another (or, on a rank other than 0, of rank 0): the last heartbeat. */
typedef struct dist_peer {
    int64_t buf[2];       /* receive buffer: the sender's exchange number and beat count */
    MPI_Request recv;     /* posted receive of the next heartbeat (MPI_REQUEST_NULL: none) */
    int64_t send_buf[2];
    MPI_Request send;     /* our last heartbeat to it, while not complete */
    double last_seen;     /* when its last heartbeat arrived (the start: when none did) */
    int64_t last_seq;     /* the exchange number it last said it was in (-1: none) */
} dist_peer;

struct gf_dist {
    gf_dist_params p;
    int rank, size;
    bool mpi;            /* MPI is in use (launched) */
    bool we_initialised; /* gf_dist_init called MPI_Init, so finalize calls MPI_Finalize */
    MPI_Comm comm;       /* collectives (a duplicate of MPI_COMM_WORLD) */
    MPI_Comm hb_comm;    /* heartbeats (another duplicate, so nothing else matches them) */
    dist_proc *procs;    /* [size] */
    char desc[96];       /* gf_dist_describe_rank's buffer */

    /* watchdog */
    int64_t seq;         /* collectives started on this rank (the same sequence on every rank) */
    const char *what;    /* the collective in progress, for messages */
    dist_peer *peers;    /* rank 0: [size] (its own unused); others: [1], rank 0 */
    double beat;         /* seconds between heartbeats while waiting */
    int64_t beats;

    /* gradient exchange: the trainable gradients of x_opt, last parameter first (the order the
     * backward makes them final in), at x_slots[i].offset in buf, summed in buckets of bucket_bytes
     * that start in order as soon as every gradient in them is packed */
    float *buf;
    double *stats;       /* the caller's stats, the stop flag, then one presence per parameter */
    MPI_Request *reqs;
    gf_tensor **x_leaves; /* [x_params]: the optimizer's trainable parameters, in its order */
    dist_slot *x_slots;  /* [x_params]: where each one's gradient goes */
    int *x_pending;      /* [x_buckets]: parameters in the bucket not packed yet */
    int64_t buf_cap, stats_cap, reqs_cap, leaves_cap, slots_cap, pending_cap; /* in items */
    gf_optim *x_opt;     /* the optimizer of the exchange in progress (NULL: none) */
    int x_params;
    int64_t x_total;     /* floats */
    int x_buckets, x_started, x_nreq;
    const volatile sig_atomic_t *stop_flag;
    bool stop_agreed;
    gf_dist_stats st;
};

/* Seconds from a monotonic clock. */
double gf_dist_now(void);
/* Posts the heartbeat receives (after the communicators exist). */
gf_status gf_dist_watch_start(gf_ctx *ctx, gf_dist *d);
/* Cancels the heartbeat receives and completes the sends (before MPI_Finalize). */
void gf_dist_watch_stop_all(gf_dist *d);
/* Starts collective number d->seq + 1 called `what`: a heartbeat to the watcher. */
void gf_dist_enter(gf_dist *d, const char *what);
/* Waits for reqs[0..n) while sending and reading heartbeats (ctx NULL: no message, only the
 * status). timeout > 0: fails after it
 * (rank 0) or after it plus the grace (others) with a message naming the silent ranks; <= 0:
 * waits as long as it takes. */
gf_status gf_dist_wait(gf_ctx *ctx, gf_dist *d, int n, MPI_Request *reqs, double timeout);
/* The start-up collectives' timeout: the ranks may read their data at different speeds. */
double gf_dist_startup_timeout(const gf_dist *d);
/* An MPI error code as a context error naming the call. */
gf_status gf_dist_mpi_error(gf_ctx *ctx, const gf_dist *d, const char *call, int code);

#endif
