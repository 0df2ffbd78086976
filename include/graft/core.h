/* graft core: status codes, the execution context (arena, tape, threads, RNG, error
 * message) and the seeded counter-based random generator. Every other module builds on it. */
#ifndef GRAFT_CORE_H
#define GRAFT_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GF_VERSION_MAJOR 0
#define GF_VERSION_MINOR 1
#define GF_VERSION_PATCH 0
#define GF_VERSION_STRING "0.1.0"

typedef enum gf_status {
    GF_OK = 0,
    GF_ERR_INVALID,   /* bad argument: NULL, out-of-range axis, bad option */
    GF_ERR_SHAPE,     /* shapes do not fit together */
    GF_ERR_DTYPE,     /* wrong element type */
    GF_ERR_NOMEM,     /* allocation failed */
    GF_ERR_IO,        /* file could not be opened, read or written */
    GF_ERR_FORMAT,    /* file content is malformed */
    GF_ERR_STATE,     /* call not valid in the current state (e.g. backward twice) */
    GF_ERR_NUMERIC,   /* NaN or Inf where a finite value is required */
    GF_STATUS_COUNT
} gf_status;

/* Short lowercase name of a status ("shape", "io", ...). Never NULL. */
const char *gf_status_name(gf_status s);

/* ---- random numbers ------------------------------------------------------------------
 * Philox4x32-10: a counter-based generator. The whole state is (key, counter, lane), so it is
 * cheap to save in a checkpoint and two generators with the same seed give the same stream. */
typedef struct gf_rng {
    uint64_t key;      /* derived from the seed */
    uint64_t counter;  /* number of 128-bit blocks consumed */
    uint32_t block[4]; /* current output block */
    uint32_t lane;     /* next unused word of block (4 = block exhausted) */
} gf_rng;

void gf_rng_seed(gf_rng *r, uint64_t seed);
/* The raw Philox4x32-10 block function (exposed for known-answer tests). */
void gf_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
uint32_t gf_rng_u32(gf_rng *r);
uint64_t gf_rng_u64(gf_rng *r);
/* Uniform float in [0, 1) with 24 random bits. */
float gf_rng_uniform(gf_rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t gf_rng_below(gf_rng *r, uint64_t n);
/* Standard normal (Box-Muller; one value per call, nothing cached between calls). */
float gf_rng_normal(gf_rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void gf_rng_shuffle(gf_rng *r, int64_t *idx, int64_t n);

/* ---- arena ---------------------------------------------------------------------------
 * Bump allocator for one step's activations, gradients and graph nodes. Reset keeps the
 * memory; after a reset that found several chunks, they are replaced by one chunk of the
 * total size, so a steady training loop settles on a single block and never grows. */
typedef struct gf_arena gf_arena;

gf_arena *gf_arena_new(size_t initial_bytes);
void gf_arena_free(gf_arena *a);
/* 64-byte aligned, uninitialised; NULL when the system is out of memory. */
void *gf_arena_alloc(gf_arena *a, size_t bytes);
void gf_arena_reset(gf_arena *a);
size_t gf_arena_used(const gf_arena *a);      /* bytes handed out since the last reset */
size_t gf_arena_capacity(const gf_arena *a);  /* bytes reserved from the system */
size_t gf_arena_peak(const gf_arena *a);      /* largest `used` seen */

/* ---- context --------------------------------------------------------------------------
 * A context is one thread of training: it owns the arena, the autograd tape, the RNG, the
 * thread setting and the first error message. It is not shared between threads. */
typedef struct gf_ctx gf_ctx;

/* Limits on what untrusted input may make the library allocate or compute before the bytes
 * that justify it exist: every file reader and the model-spec builder check them and fail with
 * a message ending in "(limit NAME)" (NAME as in the field, without its prefix: "params",
 * "gzip-ratio"). A field <= 0 takes its default; INT64_MAX turns a limit off. The defaults
 * admit Fashion-MNIST, the scikit-learn tables and the zoo models with a wide margin. */
typedef struct gf_limits {
    int64_t model_params;     /* "params": parameters a model spec may declare (2^28) */
    int64_t model_activation; /* "activation": floats one layer's output may hold for one
                                 example, from the spec's shapes (2^26) */
    int64_t data_bytes;       /* "data-bytes": bytes of one data file once decompressed: an
                                 IDX payload, a CSV text (2^32) */
    int64_t gzip_ratio;       /* "gzip-ratio": decompressed / compressed size of a gzip data
                                 file, checked once it holds more than 64 MiB (100) */
    int64_t json_nodes;       /* "json-nodes": values in one JSON text (safetensors header,
                                 model spec), counted before it is parsed (2^21) */
    int64_t json_depth;       /* "json-depth": nesting of JSON arrays and objects (64) */
    int64_t header_bytes;     /* "header-bytes": length of a safetensors header (10^8, the
                                 reference implementation's) */
    int64_t classes;          /* "classes": classes of a dataset, checked when it is opened
                                 (10,000; a confusion matrix holds classes^2 counts) */
} gf_limits;

/* Every field at its default. */
gf_limits gf_limits_default(void);
/* Sets one limit by its NAME ("params", "data-bytes"; '_' may stand for '-'); false when the
 * name is unknown or value < 1. */
bool gf_limits_set(gf_limits *l, const char *name, int64_t value);
/* The names, NULL-terminated, in the order of the fields. */
const char *const *gf_limits_names(void);

typedef struct gf_ctx_params {
    int n_threads;        /* 0: the cores this process may use */
    uint64_t seed;        /* seeds the context RNG */
    size_t arena_bytes;   /* initial arena reservation; grows on demand */
    gf_limits limits;     /* zero fields: the defaults */
} gf_ctx_params;

gf_ctx_params gf_ctx_default_params(void);
/* Returns a new context (free with gf_ctx_free), or NULL when out of memory. */
gf_ctx *gf_ctx_new(const gf_ctx_params *params);
void gf_ctx_free(gf_ctx *ctx);
/* End of a step: drops the tape and every arena tensor. Persistent tensors (parameters) and
 * their gradients stay. The error message is kept; see gf_ctx_clear_error. */
void gf_ctx_reset(gf_ctx *ctx);

/* Threads used by kernels and by the BLAS (both are told the same count). n <= 0: default. */
void gf_ctx_set_threads(gf_ctx *ctx, int n);
int gf_ctx_threads(const gf_ctx *ctx);
/* Cores this process may run on (sched affinity), at least 1. */
int gf_available_cores(void);
/* Name of the BLAS threading model in use: "openmp", "pthreads", "sequential" or "unknown". */
const char *gf_blas_threading(void);
/* The OpenBLAS kernel chosen for this CPU ("haswell", "zen", "skylakex", ...; the environment
 * variable OPENBLAS_CORETYPE overrides the choice), and OpenBLAS's build configuration. Each
 * kernel rounds differently, so results are bitwise reproducible on one kernel only. */
const char *gf_blas_kernel(void);
const char *gf_blas_config(void);
/* Seconds on the monotonic clock (CLOCK_MONOTONIC): differences of two calls time a span, as
 * gf_fit's epoch seconds and the transfer reports do; the origin is unspecified. */
double gf_now_seconds(void);

/* The context's limits (contexts the library makes for a run inherit them). */
const gf_limits *gf_ctx_limits(const gf_ctx *ctx);
void gf_ctx_set_limits(gf_ctx *ctx, const gf_limits *limits);

gf_rng *gf_ctx_rng(gf_ctx *ctx);
gf_arena *gf_ctx_arena(gf_ctx *ctx);

/* Autograd recording. Returns the previous setting (so callers can restore it). */
bool gf_ctx_set_grad_enabled(gf_ctx *ctx, bool enabled);
bool gf_ctx_grad_enabled(const gf_ctx *ctx);

/* Memory-saving execution inside Sequential containers and other containers that run their
 * children in order (docs/NN.md, "Memory"): a ReLU overwrites the output of the layer before
 * it, and gradient buffers of tensors that never leave the container are reused. Only
 * provably unobservable tensors are touched, and every result is bitwise the same either
 * way. On by default; returns the previous setting. Applies to forwards run while set. */
bool gf_ctx_set_inplace(gf_ctx *ctx, bool enabled);
bool gf_ctx_inplace(const gf_ctx *ctx);

/* Synchronised BatchNorm (torch.nn.SyncBatchNorm) for training across processes: a hook that
 * replaces v[0..n) by its sum over every process of the job (graft/dist.h sets one) and returns
 * GF_OK, or an error with a context message. While a hook is set, batch_norm in training mode
 * sums its per-channel statistics (count, sum, centred squares) and, in backward, its gradient
 * sums over all processes, so every process normalises with the whole batch's mean and
 * variance, as one process with the whole batch would; the running statistics move alike
 * everywhere. Every process must then run the same batch_norm calls in the same order, each
 * with at least one example. NULL (the default): each process's own batch. */
typedef gf_status (*gf_ctx_sum_fn)(gf_ctx *ctx, double *v, int n, void *user);
void gf_ctx_set_batch_norm_sync(gf_ctx *ctx, gf_ctx_sum_fn sum, void *user);
bool gf_ctx_batch_norm_synced(const gf_ctx *ctx);

/* Errors: the first error since the last clear is kept; later ones are dropped so the
 * message names the root cause. Functions that return a tensor return NULL on error; a NULL
 * input makes an op return NULL without a new message, so a forward pass can be checked once
 * at the end. */
gf_status gf_ctx_status(const gf_ctx *ctx);
const char *gf_ctx_error(const gf_ctx *ctx); /* "" when no error */
void gf_ctx_clear_error(gf_ctx *ctx);
gf_status gf_ctx_set_error(gf_ctx *ctx, gf_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
gf_status gf_ctx_set_errorv(gf_ctx *ctx, gf_status s, const char *fmt, va_list ap);

#ifdef __cplusplus
}
#endif
#endif
