/* The execution context: arena, tape, RNG, thread count and the first error message. */
#define _GNU_SOURCE
#include "core/internal.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <cblas.h>

static const char *const status_names[GF_STATUS_COUNT] = {
    "ok", "invalid argument", "shape", "dtype", "out of memory", "io", "format", "state",
    "numeric",
};

const char *gf_status_name(gf_status s) {
    return (s >= 0 && s < GF_STATUS_COUNT) ? status_names[s] : "unknown";
}

int gf_available_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

const char *gf_blas_threading(void) {
#ifdef GF_HAVE_OPENBLAS
    switch (openblas_get_parallel()) {
    case 0: return "sequential";
    case 1: return "pthreads";
    case 2: return "openmp";
    }
#endif
    return "unknown";
}

const char *gf_blas_kernel(void) {
#ifdef GF_HAVE_OPENBLAS
    const char *name = openblas_get_corename();
    if (name && name[0]) return name;
#endif
    return "unknown";
}

const char *gf_blas_config(void) {
#ifdef GF_HAVE_OPENBLAS
    const char *c = openblas_get_config();
    if (c && c[0]) return c;
#endif
    return "unknown";
}

gf_ctx_params gf_ctx_default_params(void) {
    gf_ctx_params p = {0};
    p.n_threads = 0;
    p.seed = 0;
    p.arena_bytes = (size_t)16 << 20;
    p.limits = gf_limits_default();
    return p;
}

gf_ctx *gf_ctx_new(const gf_ctx_params *params) {
    gf_ctx_params p = params ? *params : gf_ctx_default_params();
    gf_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->arena = gf_arena_new(p.arena_bytes);
    if (!ctx->arena) {
        free(ctx);
        return NULL;
    }
    ctx->grad_enabled = true;
    ctx->inplace = true;
    gf_rng_seed(&ctx->rng, p.seed);
    gf_ctx_set_threads(ctx, p.n_threads);
    gf_ctx_set_limits(ctx, &p.limits);
    return ctx;
}

void gf_ctx_free(gf_ctx *ctx) {
    if (!ctx) return;
    gf_arena_free(ctx->arena);
    gf_arena_free(ctx->bw_arena);
    free(ctx->route_leaves);
    free(ctx->route_bufs);
    free(ctx->watch_leaves);
    free(ctx->carry);
    free(ctx);
}

void gf_ctx_reset(gf_ctx *ctx) {
    gf_arena_reset(ctx->arena);
    if (ctx->bw_arena) gf_arena_reset(ctx->bw_arena); /* one chunk for the next step's scratch */
    ctx->tape = NULL;
    ctx->tape_len = 0;
    ctx->inplace_input = NULL;
    ctx->out_loan = NULL;
    ctx->out_loan_bytes = 0;
    ctx->bn_act = NULL;
}

void gf_ctx_set_threads(gf_ctx *ctx, int n) {
    if (n <= 0) n = gf_available_cores();
    ctx->n_threads = n;
    /* OpenBLAS always runs on one thread: graft shares a product's tiles over its own threads
     * (kernels/gemm.c), since OpenBLAS's threading changes the bits with the thread count */
#ifdef GF_HAVE_OPENBLAS
    openblas_set_num_threads(1);
#endif
}

int gf_ctx_threads(const gf_ctx *ctx) { return ctx->n_threads; }

int gf_thread_index(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int gf_threads_for(const gf_ctx *ctx, int64_t work) {
    if (ctx->n_threads <= 1 || work < 32768) return 1;
    int64_t by_work = work / 16384;
    return by_work < ctx->n_threads ? (int)by_work : ctx->n_threads;
}

gf_rng *gf_ctx_rng(gf_ctx *ctx) { return &ctx->rng; }
gf_arena *gf_ctx_arena(gf_ctx *ctx) { return ctx->arena; }

bool gf_ctx_set_grad_enabled(gf_ctx *ctx, bool enabled) {
    bool prev = ctx->grad_enabled;
    ctx->grad_enabled = enabled;
    return prev;
}

bool gf_ctx_grad_enabled(const gf_ctx *ctx) { return ctx->grad_enabled; }

bool gf_ctx_set_inplace(gf_ctx *ctx, bool enabled) {
    bool prev = ctx->inplace;
    ctx->inplace = enabled;
    return prev;
}

bool gf_ctx_inplace(const gf_ctx *ctx) { return ctx->inplace; }

void gf_ctx_set_batch_norm_sync(gf_ctx *ctx, gf_ctx_sum_fn sum, void *user) {
    ctx->bn_sum = sum;
    ctx->bn_sum_user = sum ? user : NULL;
}

bool gf_ctx_batch_norm_synced(const gf_ctx *ctx) { return ctx->bn_sum != NULL; }

gf_status gf_ctx_status(const gf_ctx *ctx) { return ctx->status; }
const char *gf_ctx_error(const gf_ctx *ctx) { return ctx->error; }

void gf_ctx_clear_error(gf_ctx *ctx) {
    ctx->status = GF_OK;
    ctx->error[0] = '\0';
}

gf_status gf_ctx_set_errorv(gf_ctx *ctx, gf_status s, const char *fmt, va_list ap) {
    if (ctx->status == GF_OK && s != GF_OK) {
        ctx->status = s;
        vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    }
    return s;
}

gf_status gf_ctx_prefix_error(gf_ctx *ctx, const char *fmt, ...) {
    char prefix[4400], msg[sizeof ctx->error];
    gf_status st = ctx->status;
    snprintf(msg, sizeof msg, "%s", ctx->error);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    gf_ctx_clear_error(ctx);
    return gf_ctx_set_error(ctx, st == GF_OK ? GF_ERR_INVALID : st, "%s%s", prefix, msg);
}

gf_status gf_ctx_set_error(gf_ctx *ctx, gf_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    gf_ctx_set_errorv(ctx, s, fmt, ap);
    va_end(ap);
    return s;
}
