/* Internal interface between the core (context, tape, arena) and the op files. Not
 * installed; ops include it to record nodes, reach gradient buffers and report errors. */
#ifndef GRAFT_INTERNAL_H
#define GRAFT_INTERNAL_H

#include "core/op_list.h"
#include "graft/autograd.h"
#include "graft/core.h"
#include "graft/tensor.h"

#include <string.h>

typedef enum gf_op {
#define GF_X_ENUM(E, n, r) GF_OP_##E,
    GF_OP_LIST(GF_X_ENUM)
#undef GF_X_ENUM
    GF_OP_COUNT
} gf_op;

/* One recorded op. in[] and saved live in the arena with the node. */
struct gf_node {
    gf_op op;
    int n_in;
    gf_tensor **in;
    gf_tensor *out;
    void *saved;   /* op-specific record (parameters, masks, statistics) */
    gf_node *prev; /* previous node on the tape */
    /* Set after the forward by gf_module_forward_children (docs/NN.md, "Memory"), never by
     * an op: out_private: no code outside the library holds `out`, so once this node's
     * backward has read out->grad, that buffer may be reused (an input's gradient written
     * over it). out_dead: in addition no backward reads out's values (nor those of any
     * tensor sharing its storage), so out's gradient may be placed in out's own storage. */
    bool out_private, out_dead;
    /* out_borrowed: out was written into storage the node did not allocate (a buffer
     * lent by the caller, ctx->out_loan), so a backward never recycles it (autograd.c). */
    bool out_borrowed;
    /* Set by the forward that made out (never by an op): out's storage is shared with other
     * tensors after out's forward readers are done, so before the backward of a node that
     * reads out's values (GF_BW_IN) runs, recompute(ctx, this node) writes them again,
     * exactly as the forward computed them. recompute_arg is the forward's. */
    void (*recompute)(gf_ctx *ctx, gf_node *n);
    const void *recompute_arg;
    /* Set by the forward that made out (never by an op) when out's values were never stored:
     * its one reader computes them plane by plane as it needs them (gf_deferred_act). */
    const struct gf_deferred_act *deferred;
};

typedef void (*gf_backward_fn)(gf_ctx *ctx, gf_node *node);
#define GF_X_DECL(E, n, r) void gf_bw_##n(gf_ctx *ctx, gf_node *node);
GF_OP_LIST(GF_X_DECL)
#undef GF_X_DECL

const char *gf_op_name(gf_op op);
/* The GF_BW_IN / GF_BW_OUT flags of op (src/core/op_list.h). */
unsigned gf_op_reads(gf_op op);

struct gf_ctx {
    gf_arena *arena;
    /* inside a gf_scratch_scope (a node's backward, a convolution's forward) under the memory
     * rules: gf_scratch allocates here (bw_arena), given back when the scope ends */
    gf_arena *bw_scratch, *bw_arena;
    gf_node *tape;       /* most recent node */
    int64_t tape_len;
    gf_rng rng;
    int n_threads;
    int64_t conv_chunk_floats; /* scratch budget of the conv kernels; 0: default */
    bool grad_enabled;
    bool inplace;              /* gf_ctx_set_inplace: the memory rules of docs/NN.md apply */
    /* The tensor the next ReLU module may overwrite (set by gf_module_forward_children for
     * one child call only, after checking the rules), else NULL. */
    gf_tensor *inplace_input;
    /* gf_ctx_set_batch_norm_sync: sums batch_norm's statistics over the processes of a job */
    gf_ctx_sum_fn bn_sum;
    void *bn_sum_user;
    /* set in every replica but the first (gf_replicas): the running statistics, shared by the
     * replicas, are the first one's to update */
    bool bn_skip_running;
    /* gf_backward_route_grads: persistent leaves whose gradients go to caller buffers (n = 0: none);
     * route_hint is where the last lookup hit (backward visits leaves in a repeating order). */
    int route_n, route_hint;
    gf_tensor **route_leaves;
    float **route_bufs;
    /* gf_backward_watch: leaves whose gradients the next backward reports final (n = 0: none) */
    int watch_n;
    gf_tensor **watch_leaves;
    gf_grad_ready_fn watch_ready;
    void *watch_user;
    /* during one backward: the arena gradient buffers it made, and which of them are free
     * again (their tensor's producer has run and no other tensor took the buffer); NULL
     * outside a backward (src/core/autograd.c) */
    struct gf_grad_pool *grad_pool;
    /* set by an inference forward for the next conv2d that records nothing: its output goes
     * through this map as it is produced (gf_conv_epilogue); the conv clears it */
    struct gf_conv_epilogue *conv_epilogue;
    /* set by a training forward for the next batch_norm: storage of at least out_loan_bytes
     * its output is written into instead of new arena memory (the node is then marked
     * out_borrowed); batch_norm clears it */
    void *out_loan;
    size_t out_loan_bytes;
    /* set with a loan for the same batch_norm: the ReLU / clamp after it, applied to each
     * output row while in cache (gf_bn_act); batch_norm clears it */
    struct gf_bn_act *bn_act;
    /* heap space an inference forward copies live outputs through while it rewinds the arena
     * (src/import/tfjs_forward.c), kept for the context's life so each forward reuses it */
    void *carry;
    size_t carry_cap;
    gf_limits limits;          /* every field set (gf_ctx_set_limits fills in defaults) */
    gf_status status;
    char error[512];
};

/* The ReLU (relu) or clamp to [lo, hi] that follows a training batch_norm, applied by it to
 * each output row right after normalising it, with the bit mask of gf_relu / gf_clamp's
 * recorded forward (mask, (numel + 7) / 8 bytes), when every row starts on a mask byte
 * (spatial size a multiple of 8). done: batch_norm applied it. defer: batch_norm computes
 * the statistics only and leaves the output, mask included, unwritten for its reader to
 * compute plane by plane (gf_deferred_act). */
typedef struct gf_bn_act {
    bool relu;
    float lo, hi;
    uint8_t *mask;
    bool done, defer;
} gf_bn_act;

/* An activation over a batch_norm's output (act applied by that batch_norm, act.defer) whose
 * values were never stored: its one reader, a depthwise convolution, computes each input plane
 * from the batch_norm's input and statistics when it needs it, in its forward (writing the
 * mask bits too) and again in its backward (ops/ops_internal.h, gf_act_planes). A training
 * forward sets it on the activation's node (src/import/tfjs_forward.c). */
typedef struct gf_deferred_act {
    const gf_node *bn;
    gf_bn_act act;
} gf_deferred_act;

/* Batch norm with fixed statistics and the clamp after it, applied by a convolution to each
 * output plane right after computing it, while it is in cache (an inference forward sets
 * ctx->conv_epilogue for one conv2d; src/import/tfjs_forward.c): channel c's value v becomes
 * clamp((float)((v - k[4c]) * k[4c + 1] * k[4c + 2] + k[4c + 3]), lo, hi), gf_vec_bn_eval's
 * expression, so bitwise what the separate passes give. done: the conv applied it. */
typedef struct gf_conv_epilogue {
    const double *k;
    float lo, hi;
    bool done;
} gf_conv_epilogue;

/* Writes to dst [N, C, *] what batch_norm node bn computed, clamped to [lo, hi] (what a
 * clamp or ReLU run over it gives: -INFINITY, INFINITY for none), bitwise, from its saved
 * input and statistics (a node whose output storage was shared, gf_node.recompute). false
 * with a context error when bn is not such a node or memory ran out. */
bool gf_batch_norm_recompute(gf_ctx *ctx, const gf_node *bn, float *dst, float lo, float hi);

/* For a module's forward that made every header it recorded itself and hands out only y
 * (an imported graph): marks the nodes newer than `before` whose output is not y and does not
 * share y's storage out_private, so the backward reuses their gradient buffers and storage
 * (docs/NN.md "Memory"). Nothing when the context's memory rules are off
 * (gf_ctx_set_inplace). */
void gf_tape_mark_private(gf_ctx *ctx, const gf_node *before, const gf_tensor *y);
/* Clears out_private and out_dead of the nodes newer than `before` whose output shares storage
 * with y: a caller holding y (a view of such an output) reads that storage after the
 * backward. */
void gf_tape_unmark_shared(gf_ctx *ctx, const gf_node *before, const gf_tensor *y);

/* Inflated sizes up to this pass the gzip-ratio limit: small files of zeros are normal. */
#define GF_GZIP_RATIO_FLOOR ((int64_t)64 << 20)
/* bytes inflated from csize compressed bytes (csize < 0: unknown, never over) exceed ctx's
 * gzip-ratio limit: a gzip bomb (1 MB of zeros inflates to 1 GB). */
bool gf_gzip_over_ratio(const gf_ctx *ctx, int64_t bytes, int64_t csize);

/* True when an op on these inputs must be recorded (grad mode on, some input requires grad).
 * NULL entries are skipped. */
bool gf_wants_grad(const gf_ctx *ctx, gf_tensor *const *in, int n_in);
/* Records a node producing `out` with a zeroed saved block of saved_bytes; marks out as
 * requiring grad. Returns NULL (with ctx error) when out of memory. Call only when
 * gf_wants_grad() is true. */
gf_node *gf_record(gf_ctx *ctx, gf_op op, gf_tensor *out, gf_tensor *const *in, int n_in,
                   size_t saved_bytes);

/* Makes node->out's gradient buffer t's gradient too and returns true, when node->out is
 * marked out_private (its gradient is read by nobody after this node's backward), t has no
 * gradient yet, t lives in the arena and has the same shape. The caller then computes t's
 * gradient in place over the output gradient, as a fresh buffer (0 + term per element, see
 * gf_grad_of_for_write). Saves one gradient buffer per elementwise op in a Sequential. */
bool gf_take_out_grad(gf_node *node, gf_tensor *t);

/* Contiguous float gradient buffer of t (allocated zeroed on first use: in the arena for
 * arena tensors, with malloc for persistent ones). NULL when t does not require grad, or on
 * out-of-memory (ctx error set). */
float *gf_grad_of(gf_ctx *ctx, gf_tensor *t);
/* gf_grad_of for a backward that writes every element of t's gradient in one pass. When t
 * has no gradient buffer yet (and lives in the arena) the new buffer is NOT zeroed and
 * *fresh is set: the caller must then store 0.0f + contribution into every element (bitwise
 * what zero-fill and += give, signed zeros included) instead of accumulating. Otherwise
 * *fresh is false and the caller accumulates (+=) as with gf_grad_of. */
float *gf_grad_of_for_write(gf_ctx *ctx, gf_tensor *t, bool *fresh);

/* True when no node recorded after `since` (NULL: the whole tape) reads, in its backward,
 * the values of a tensor whose storage overlaps x's elements (by the GF_BW_* flags). */
bool gf_tape_spares(const gf_ctx *ctx, const gf_tensor *x, const gf_node *since);

/* relu(x) written over x's own storage (x contiguous f32): the output is a new header on
 * x's data, recorded like gf_relu. Only for callers that have proved that x's values are
 * never read again (gf_module_forward_children); see docs/NN.md, "Memory". */
gf_tensor *gf_relu_inplace(gf_ctx *ctx, gf_tensor *x);
/* The same for clamp(x, lo, hi) (recorded like gf_clamp, with a saved mask). */
gf_tensor *gf_clamp_inplace(gf_ctx *ctx, gf_tensor *x, float lo, float hi);
/* A ReLU (relu) or clamp to [lo, hi] that has already run over x, with its bit mask made by
 * the same kernels (a batch_norm's gf_bn_act): records it in place as gf_relu_inplace /
 * gf_clamp_inplace would have, without another pass. */
gf_tensor *gf_act_inplace_done(gf_ctx *ctx, gf_tensor *x, bool relu, float lo, float hi,
                               uint8_t *mask);
/* In the backward of such an activation over batch_norm node bn's output: bn's backward is
 * to apply the activation's mask to its output gradient itself, row by row in cache (the
 * gradient buffer was handed over unmasked). false when bn cannot (not a batch_norm, rows not
 * on mask bytes, statistics synchronised over processes). */
bool gf_batch_norm_defer_mask(gf_node *bn, const uint8_t *mask);
/* Draws numel uniforms from r (the same values as numel gf_rng_uniform calls, in order; whole
 * Philox blocks in parallel) and writes mask[i] = (u_i >= p): dropout's keep mask. */
void gf_dropout_mask(gf_ctx *ctx, gf_rng *r, int64_t numel, float p, uint8_t *mask);

/* Pointer to t's elements in contiguous order: t->data itself, or an arena copy. */
const float *gf_contig_f32(gf_ctx *ctx, const gf_tensor *t);
const int64_t *gf_contig_i64(gf_ctx *ctx, const gf_tensor *t);
/* A point in an arena's allocations: gf_arena_rewind gives back everything allocated after it
 * (chunks added since are freed), as if it had never been handed out; anything still pointing
 * there must be dead or copied first. gf_arena_since tells whether p was handed out after m.
 * The next reset makes the arena one chunk as large as the step's peak, so a step that rewinds
 * reuses its memory without new chunks. */
typedef struct gf_arena_mark {
    void *chunk;
    size_t chunk_used, used;
} gf_arena_mark;
gf_arena_mark gf_arena_get_mark(const gf_arena *a);
bool gf_arena_since(const gf_arena *a, gf_arena_mark m, const void *p);
void gf_arena_rewind(gf_arena *a, gf_arena_mark m);
/* Where allocations made after rewinding to m start, one after the other, when m lies in the
 * arena's newest chunk (so rewinding frees no chunk); else NULL. */
const void *gf_arena_mark_addr(const gf_arena *a, gf_arena_mark m);

/* Uninitialised / zeroed arena scratch. NULL with ctx error on out-of-memory. */
float *gf_scratch_f32(gf_ctx *ctx, int64_t n);
float *gf_scratch_zero_f32(gf_ctx *ctx, int64_t n);
void *gf_scratch(gf_ctx *ctx, size_t bytes);

/* A stretch whose scratch is dead when it ends (one node's backward, a convolution's forward):
 * under the memory rules gf_scratch then takes it from the scratch arena (ctx->bw_arena, made
 * on first use; docs/NN.md rule F) and the end gives it back, so a step holds the largest
 * stretch's scratch instead of the sum. Nested in another scope it does nothing: the outer
 * one's end covers it. */
typedef struct gf_scratch_scope {
    gf_arena *arena; /* NULL: nothing to give back */
    gf_arena_mark mark;
} gf_scratch_scope;
gf_scratch_scope gf_scratch_scope_begin(gf_ctx *ctx);
void gf_scratch_scope_end(gf_ctx *ctx, gf_scratch_scope s);

/* An arena tensor header that views `data` with the given shape and strides. */
gf_tensor *gf_view_raw(gf_ctx *ctx, gf_dtype dt, int ndim, const int64_t *shape,
                       const int64_t *stride, void *data);
void gf_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
int64_t gf_numel_of(int ndim, const int64_t *shape);

/* Argument checks: each sets a message "op: ..." and returns false on failure. A NULL
 * tensor with an error already set fails quietly (the first error is the cause). */
bool gf_check_tensor(gf_ctx *ctx, const char *op, const char *arg, const gf_tensor *t,
                     gf_dtype dt);
/* Normalises axis (negative from the end) into [0, ndim). */
bool gf_check_axis(gf_ctx *ctx, const char *op, int ndim, int axis, int *out);

/* Broadcast of two shapes: out shape and each input's strides over it (0 where broadcast). */
typedef struct gf_bcast {
    int ndim;
    int64_t shape[GF_MAX_DIMS];
    int64_t sa[GF_MAX_DIMS];
    int64_t sb[GF_MAX_DIMS];
    int64_t numel;
} gf_bcast;
bool gf_broadcast(gf_ctx *ctx, const char *op, const gf_tensor *a, const gf_tensor *b,
                  gf_bcast *bc);
/* Adds g (contiguous over out_shape) into dst (contiguous over t's shape), summing over the
 * dimensions where t was broadcast. */
void gf_reduce_broadcast_add(int out_ndim, const int64_t *out_shape, const float *g,
                             const gf_tensor *t, float *dst);

/* Walks a multi-index over shape; returns false after the last element. */
static inline bool gf_index_next(int ndim, const int64_t *shape, int64_t *idx) {
    for (int d = ndim - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) return true;
        idx[d] = 0;
    }
    return false;
}

/* Threads to use for `work` elementwise operations (1 below a size where forking costs more
 * than it saves). */
int gf_threads_for(const gf_ctx *ctx, int64_t work);
/* This thread's number in the enclosing parallel region (0 outside one): the slot of its
 * per-thread scratch. */
int gf_thread_index(void);

#define GF_SHAPE_BUF 96

/* Puts a formatted prefix before the context's message, keeping its status (GF_ERR_INVALID
 * when there was none): a caller names the step that failed in front of the callee's words. */
gf_status gf_ctx_prefix_error(gf_ctx *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
