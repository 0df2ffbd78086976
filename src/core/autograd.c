/* Reverse-mode autograd. The tape is the list of recorded nodes in creation order, which is
 * already a topological order; backward walks it from the newest node and calls each node's
 * backward when its output received a gradient. */
#include "core/internal.h"

#include <stdint.h>
#include <stdlib.h>

static const char *const op_names[GF_OP_COUNT] = {
#define GF_X_NAME(E, n, r) #n,
    GF_OP_LIST(GF_X_NAME)
#undef GF_X_NAME
};

static const gf_backward_fn backward_fns[GF_OP_COUNT] = {
#define GF_X_FN(E, n, r) gf_bw_##n,
    GF_OP_LIST(GF_X_FN)
#undef GF_X_FN
};

static const unsigned op_reads[GF_OP_COUNT] = {
#define GF_X_READS(E, n, r) r,
    GF_OP_LIST(GF_X_READS)
#undef GF_X_READS
};

_Static_assert(sizeof op_names / sizeof op_names[0] == GF_OP_COUNT, "op name table size");

const char *gf_op_name(gf_op op) { return (op >= 0 && op < GF_OP_COUNT) ? op_names[op] : "?"; }

/* An unknown op reads everything: the in-place rules then leave its tensors alone. */
unsigned gf_op_reads(gf_op op) {
    return (op >= 0 && op < GF_OP_COUNT) ? op_reads[op] : GF_BW_IN | GF_BW_OUT;
}

/* Byte range [*lo, *hi) that t's elements span (strides may be 0 or negative); false for an
 * empty tensor. */
static bool span_of(const gf_tensor *t, uintptr_t *lo, uintptr_t *hi) {
    if (!t || t->numel == 0) return false;
    const int64_t es = (int64_t)gf_dtype_size(t->dtype);
    int64_t min = 0, max = 0;
    for (int d = 0; d < t->ndim; d++) {
        const int64_t reach = (t->shape[d] - 1) * t->stride[d];
        if (reach < 0) min += reach;
        else max += reach;
    }
    *lo = (uintptr_t)t->data + (uintptr_t)(min * es);
    *hi = (uintptr_t)t->data + (uintptr_t)((max + 1) * es);
    return true;
}

static bool overlaps(const gf_tensor *t, uintptr_t lo, uintptr_t hi) {
    uintptr_t a, b;
    return span_of(t, &a, &b) && a < hi && lo < b;
}

bool gf_tape_spares(const gf_ctx *ctx, const gf_tensor *x, const gf_node *since) {
    uintptr_t lo, hi;
    if (!span_of(x, &lo, &hi)) return true;
    for (const gf_node *n = ctx->tape; n && n != since; n = n->prev) {
        const unsigned r = gf_op_reads(n->op);
        if ((r & GF_BW_OUT) && (!n->out || overlaps(n->out, lo, hi))) return false;
        if (r & GF_BW_IN)
            for (int i = 0; i < n->n_in; i++)
                if (overlaps(n->in[i], lo, hi)) return false;
    }
    return true;
}

bool gf_wants_grad(const gf_ctx *ctx, gf_tensor *const *in, int n_in) {
    if (!ctx->grad_enabled) return false;
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->requires_grad) return true;
    return false;
}

gf_node *gf_record(gf_ctx *ctx, gf_op op, gf_tensor *out, gf_tensor *const *in, int n_in,
                   size_t saved_bytes) {
    gf_node *n = gf_arena_alloc(ctx->arena, sizeof *n);
    gf_tensor **ins = gf_arena_alloc(ctx->arena, sizeof *ins * (size_t)(n_in ? n_in : 1));
    void *saved = saved_bytes ? gf_arena_alloc(ctx->arena, saved_bytes) : NULL;
    if (!n || !ins || (saved_bytes && !saved)) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory recording the graph",
                         gf_op_name(op));
        return NULL;
    }
    if (saved) memset(saved, 0, saved_bytes);
    for (int i = 0; i < n_in; i++) ins[i] = in[i];
    n->op = op;
    n->n_in = n_in;
    n->in = ins;
    n->out = out;
    n->saved = saved;
    n->prev = ctx->tape;
    n->out_private = n->out_dead = n->out_borrowed = false;
    n->recompute = NULL;
    n->recompute_arg = NULL;
    n->deferred = NULL;
    ctx->tape = n;
    ctx->tape_len++;
    out->node = n;
    out->requires_grad = true;
    return n;
}

int64_t gf_tape_size(const gf_ctx *ctx) { return ctx->tape_len; }

void gf_tape_mark_private(gf_ctx *ctx, const gf_node *before, const gf_tensor *y) {
    if (!ctx->inplace) return;
    for (gf_node *n = ctx->tape; n && n != before; n = n->prev)
        if (n->out != y) n->out_private = true;
    gf_tape_unmark_shared(ctx, before, y);
}

void gf_tape_unmark_shared(gf_ctx *ctx, const gf_node *before, const gf_tensor *y) {
    uintptr_t lo, hi;
    if (!y || !span_of(y, &lo, &hi)) return;
    for (gf_node *n = ctx->tape; n && n != before; n = n->prev)
        if (n->out && overlaps(n->out, lo, hi)) n->out_private = n->out_dead = false;
}

/* The gradient buffers one backward allocates in the arena. Once a node's backward has read
 * its output's gradient, and that output is private to the library (out_private: nobody
 * reads the gradient afterwards) and none of the node's inputs took the buffer over, the
 * buffer is free for a later gradient of at most its size: the arena then holds about as
 * many gradients as are live at once on the backward's frontier instead of one per tensor.
 * Values are unaffected: a reused buffer is zeroed or written exactly as a fresh one. */
typedef struct {
    float *data;
    int64_t cap; /* floats */
    bool free;
} grad_slot;

typedef struct gf_grad_pool {
    grad_slot *slots;
    int n, cap;
} gf_grad_pool;

/* The smallest free buffer of at least numel floats (and at most twice that, so a small
 * gradient does not hold a large buffer others could use), taken; NULL when none. */
static float *pool_take(gf_grad_pool *p, int64_t numel) {
    int best = -1;
    for (int i = 0; i < p->n; i++)
        if (p->slots[i].free && p->slots[i].cap >= numel && p->slots[i].cap <= 2 * numel &&
            (best < 0 || p->slots[i].cap < p->slots[best].cap))
            best = i;
    if (best < 0) return NULL;
    p->slots[best].free = false;
    return p->slots[best].data;
}

static void pool_add(gf_grad_pool *p, float *data, int64_t cap, bool free_now) {
    if (p->n == p->cap) {
        int nc = p->cap ? 2 * p->cap : 64;
        grad_slot *s = realloc(p->slots, sizeof *s * (size_t)nc);
        if (!s) return; /* the buffer is simply not reused */
        p->slots = s, p->cap = nc;
    }
    p->slots[p->n++] = (grad_slot){data, cap, free_now};
}

/* After node n's backward: its output's gradient buffer is free when the output is private
 * and no input's gradient is that buffer (gf_take_out_grad, a reshape's hand-over). */
static void pool_release(gf_grad_pool *p, const gf_node *n, const gf_tensor *out) {
    if (!p || !n->out_private || !out->grad || out->grad->persistent) return;
    const void *d = out->grad->data;
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && n->in[i]->grad && n->in[i]->grad->data == d) return;
    for (int i = p->n - 1; i >= 0; i--)
        if (p->slots[i].data == d) {
            p->slots[i].free = true;
            return;
        }
}

/* Recycling: after node n's backward, the storage of its output joins the pool as a free
 * buffer when n allocated it (GF_OUT_OWN and no overlap with an input: not an in-place
 * variant; not borrowed, gf_node.out_borrowed), nobody outside the library holds it
 * (out_private), and neither its gradient nor an input's gradient lies in it. Every node that
 * could read those values was recorded after n, so its backward has run already: from here
 * on the storage holds nothing anyone reads, and later gradients (the early layers' large
 * ones) are placed in the activations of the layers already done. */
static void pool_recycle_output(gf_grad_pool *p, const gf_node *n, const gf_tensor *out) {
    if (!p || !n->out_private || n->out_borrowed || out->persistent ||
        !(gf_op_reads(n->op) & GF_OUT_OWN) || !gf_tensor_is_contiguous(out) ||
        out->dtype != GF_F32 || out->numel < 256)
        return;
    uintptr_t lo, hi;
    if (!span_of(out, &lo, &hi) || (out->grad && overlaps(out->grad, lo, hi))) return;
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && (overlaps(n->in[i], lo, hi) ||
                         (n->in[i]->grad && overlaps(n->in[i]->grad, lo, hi))))
            return;
    pool_add(p, gf_f32(out), out->numel, true);
}

/* A new uninitialised arena gradient buffer for t: t's own storage when its producer is
 * marked out_dead (no backward reads t's values any more, docs/NN.md "Memory"; the gradient
 * is contiguous over t's shape, so t must be too), else a free buffer of this backward's
 * pool, else fresh arena memory. */
static gf_tensor *new_arena_grad(gf_ctx *ctx, gf_tensor *t) {
    if (t->node && t->node->out == t && t->node->out_dead && t->dtype == GF_F32 &&
        gf_tensor_is_contiguous(t))
        return gf_view_raw(ctx, GF_F32, t->ndim, t->shape, NULL, t->data);
    gf_grad_pool *p = ctx->grad_pool;
    float *reuse = p ? pool_take(p, t->numel) : NULL;
    if (reuse) return gf_view_raw(ctx, GF_F32, t->ndim, t->shape, NULL, reuse);
    gf_tensor *g = gf_empty(ctx, GF_F32, t->ndim, t->shape);
    if (g && p) pool_add(p, gf_f32(g), g->numel, false);
    return g;
}

gf_status gf_backward_route_grads(gf_ctx *ctx, int n, gf_tensor *const *leaves, float *const *buffers) {
    if (n < 0 || (n > 0 && (!leaves || !buffers)))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "route_grads: %d leaves, arrays %s", n,
                                n < 0 ? "(negative count)" : "missing");
    for (int i = 0; i < n; i++)
        if (!leaves[i] || !leaves[i]->persistent || !buffers[i])
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "route_grads: leaf %d is %s", i,
                                    !leaves[i] ? "NULL" : !buffers[i] ? "without a buffer"
                                                                      : "not a persistent tensor");
    gf_tensor **l = NULL;
    float **b = NULL;
    if (n > 0) {
        l = malloc(sizeof *l * (size_t)n);
        b = malloc(sizeof *b * (size_t)n);
        if (!l || !b) {
            free(l);
            free(b);
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "route_grads: out of memory");
        }
        memcpy(l, leaves, sizeof *l * (size_t)n);
        memcpy(b, buffers, sizeof *b * (size_t)n);
    }
    free(ctx->route_leaves);
    free(ctx->route_bufs);
    ctx->route_leaves = l;
    ctx->route_bufs = b;
    ctx->route_n = n;
    ctx->route_hint = 0;
    return GF_OK;
}

/* The routed buffer of persistent t (gf_backward_route_grads), NULL with a ctx error when t is not
 * routed. */
static float *routed_grad(gf_ctx *ctx, const gf_tensor *t) {
    for (int k = 0; k < ctx->route_n; k++) {
        int i = (ctx->route_hint + k) % ctx->route_n;
        if (ctx->route_leaves[i] != t) continue;
        ctx->route_hint = i;
        return ctx->route_bufs[i];
    }
    char s[GF_SHAPE_BUF];
    gf_ctx_set_error(ctx, GF_ERR_STATE,
                     "backward: a persistent tensor %s requires a gradient but is not among the "
                     "%d whose gradients this context routes (gf_backward_route_grads)",
                     gf_shape_str(t, s, sizeof s), ctx->route_n);
    return NULL;
}

float *gf_grad_of(gf_ctx *ctx, gf_tensor *t) {
    if (!t || !t->requires_grad) return NULL;
    if (t->persistent && ctx->route_n > 0) return routed_grad(ctx, t);
    if (!t->grad) {
        gf_tensor *g = t->persistent ? gf_tensor_new(ctx, GF_F32, t->ndim, t->shape)
                                     : new_arena_grad(ctx, t);
        if (!g) return NULL;
        if (!t->persistent) memset(g->data, 0, sizeof(float) * (size_t)g->numel);
        t->grad = g;
    }
    return gf_f32(t->grad);
}

float *gf_grad_of_for_write(gf_ctx *ctx, gf_tensor *t, bool *fresh) {
    *fresh = false;
    if (!t || !t->requires_grad) return NULL;
    if (!t->grad && !t->persistent) {
        gf_tensor *g = new_arena_grad(ctx, t);
        if (!g) return NULL;
        t->grad = g;
        *fresh = true;
        return gf_f32(g);
    }
    return gf_grad_of(ctx, t);
}

bool gf_take_out_grad(gf_node *node, gf_tensor *t) {
    gf_tensor *g = node->out->grad;
    if (!node->out_private || !t || !t->requires_grad || t->grad || t->persistent || !g ||
        g->persistent || g->numel != t->numel || g->ndim != t->ndim)
        return false;
    for (int d = 0; d < t->ndim; d++)
        if (g->shape[d] != t->shape[d]) return false;
    t->grad = g;
    return true;
}

gf_status gf_backward_watch(gf_ctx *ctx, int n, gf_tensor *const *leaves, gf_grad_ready_fn ready,
                            void *user) {
    if (n < 0 || (n > 0 && (!leaves || !ready)))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "backward watch: %d leaves, %s", n,
                                n < 0 ? "a negative count" : "leaves or callback missing");
    for (int i = 0; i < n; i++)
        if (!leaves[i])
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "backward watch: leaf %d is NULL", i);
    gf_tensor **l = NULL;
    if (n > 0) {
        if (!(l = malloc(sizeof *l * (size_t)n)))
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "backward watch: out of memory");
        memcpy(l, leaves, sizeof *l * (size_t)n);
    }
    free(ctx->watch_leaves);
    ctx->watch_leaves = l;
    ctx->watch_n = n;
    ctx->watch_ready = ready;
    ctx->watch_user = user;
    return GF_OK;
}

/* The watched leaves of one backward in the order they turn final. */
typedef struct watch_at {
    int64_t at; /* nodes run before the leaf is final */
    int i;      /* the leaf */
} watch_at;

typedef struct watch_plan {
    int n, next;
    watch_at *order; /* by at, then i */
    gf_tensor **leaves;
    gf_grad_ready_fn ready;
    void *user;
} watch_plan;

static int cmp_at(const void *a_, const void *b_) {
    const watch_at *a = a_, *b = b_;
    return a->at < b->at ? -1 : a->at > b->at ? 1 : a->i - b->i;
}

/* Index of leaf t in the open-addressing table slots[cap] (cap a power of two; -1: empty),
 * or the empty slot where it belongs. */
static int64_t slot_of(gf_tensor *const *leaves, const int *slots, int64_t cap, const gf_tensor *t) {
    int64_t h = (int64_t)(((uintptr_t)t >> 4) * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1);
    while (slots[h] >= 0 && leaves[slots[h]] != t) h = (h + 1) & (cap - 1);
    return h;
}

/* For each watched leaf, the node count after which no node left reads it: the walk goes from
 * the newest node, so the last hit is the oldest node that takes it as an input. */
static gf_status plan_watch(gf_ctx *ctx, const gf_node *tape, watch_plan *w) {
    int64_t cap = 16;
    while (cap < 2 * (int64_t)w->n) cap *= 2;
    int *slots = malloc(sizeof *slots * (size_t)cap);
    w->order = malloc(sizeof *w->order * (size_t)w->n);
    if (!slots || !w->order) {
        free(slots);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "backward watch: out of memory");
    }
    for (int64_t h = 0; h < cap; h++) slots[h] = -1;
    for (int i = 0; i < w->n; i++) {
        const int64_t h = slot_of(w->leaves, slots, cap, w->leaves[i]);
        if (slots[h] < 0) slots[h] = i; /* a leaf listed twice: found under its first index */
        w->order[i] = (watch_at){0, i};
    }
    int64_t pos = 0;
    for (const gf_node *n = tape; n; n = n->prev) {
        pos++;
        for (int k = 0; k < n->n_in; k++) {
            if (!n->in[k]) continue;
            const int64_t h = slot_of(w->leaves, slots, cap, n->in[k]);
            if (slots[h] >= 0) w->order[slots[h]].at = pos;
        }
    }
    for (int i = 0; i < w->n; i++) { /* a duplicate turns final with its first */
        const int first = slots[slot_of(w->leaves, slots, cap, w->leaves[i])];
        w->order[i].at = w->order[first].at;
    }
    free(slots);
    qsort(w->order, (size_t)w->n, sizeof *w->order, cmp_at);
    return GF_OK;
}

/* Tells the leaves that are final once `done` nodes have run. */
static void fire_ready(gf_ctx *ctx, watch_plan *w, int64_t done) {
    while (w->next < w->n && w->order[w->next].at <= done && ctx->status == GF_OK)
        w->ready(ctx, w->order[w->next++].i, w->user);
}

/* Takes ctx's watch for this backward (clearing it there). */
static gf_status take_watch(gf_ctx *ctx, watch_plan *w) {
    memset(w, 0, sizeof *w);
    w->n = ctx->watch_n;
    w->leaves = ctx->watch_leaves;
    w->ready = ctx->watch_ready;
    w->user = ctx->watch_user;
    ctx->watch_n = 0;
    ctx->watch_leaves = NULL;
    return w->n > 0 ? plan_watch(ctx, ctx->tape, w) : GF_OK;
}

static void drop_watch(watch_plan *w) {
    free(w->leaves);
    free(w->order);
}

/* A backward that failed before running keeps no watch for the next one. */
static gf_status clear_watch(gf_ctx *ctx, gf_status st) {
    free(ctx->watch_leaves);
    ctx->watch_leaves = NULL;
    ctx->watch_n = 0;
    return st;
}

/* Before node n's backward: the inputs whose values it reads and whose storage their producer
 * shares (gf_node.recompute) are written again. Their producers, older than n, have not run
 * yet. */
static void recompute_inputs(gf_ctx *ctx, const gf_node *n) {
    if (!(gf_op_reads(n->op) & GF_BW_IN)) return;
    for (int i = 0; i < n->n_in && ctx->status == GF_OK; i++) {
        gf_tensor *t = n->in[i];
        if (t && t->node && t->node->recompute && t->node->out == t)
            t->node->recompute(ctx, t->node);
    }
}

/* Runs every node's backward from the newest, then drops the tape: a graph is consumed by
 * one backward (as in PyTorch without retain_graph); its nodes are marked so a second
 * backward through them is an error rather than a silent no-op. Watched leaves are told as
 * they turn final. */
static gf_status run_backward(gf_ctx *ctx) {
    watch_plan w;
    if (take_watch(ctx, &w) != GF_OK) {
        drop_watch(&w);
        return ctx->status;
    }
    gf_node *n = ctx->tape;
    ctx->tape = NULL;
    ctx->tape_len = 0;
    int64_t done = 0;
    gf_grad_pool pool = {0};
    ctx->grad_pool = ctx->inplace ? &pool : NULL;
    if (w.n > 0) fire_ready(ctx, &w, 0);
    for (; n; n = n->prev) {
        gf_tensor *out = n->out;
        n->out = NULL;
        if (out->grad && ctx->status == GF_OK) {
            gf_node cur = *n;
            cur.out = out;
            /* A node's scratch (columns, copies, partial sums) is dead once its backward
             * returns: under the memory rules it comes from the scratch arena, given back node
             * by node, so the step holds the largest node's scratch instead of the sum
             * (gradients stay in ctx->arena). */
            const gf_scratch_scope sc = gf_scratch_scope_begin(ctx);
            recompute_inputs(ctx, &cur);
            backward_fns[n->op](ctx, &cur);
            gf_scratch_scope_end(ctx, sc);
            pool_release(ctx->grad_pool, &cur, out);
            pool_recycle_output(ctx->grad_pool, &cur, out);
        }
        if (w.n > 0) fire_ready(ctx, &w, ++done);
    }
    if (ctx->bw_arena) gf_arena_reset(ctx->bw_arena); /* one chunk for the next step's scratch */
    ctx->grad_pool = NULL;
    free(pool.slots);
    drop_watch(&w);
    return ctx->status;
}

static gf_status backward_many(gf_ctx *ctx, int n, gf_tensor *const *outs,
                               const gf_tensor *const *grad_outs) {
    if (ctx->status != GF_OK) return ctx->status;
    if (n < 1 || !outs || !grad_outs)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "backward: no outputs given");
    for (int k = 0; k < n; k++) {
        gf_tensor *out = outs[k];
        const gf_tensor *grad_out = grad_outs[k];
        if (!gf_check_tensor(ctx, "backward", "output", out, GF_F32) ||
            !gf_check_tensor(ctx, "backward", "grad_out", grad_out, GF_F32))
            return ctx->status;
        if (!gf_same_shape(out, grad_out)) {
            char a[GF_SHAPE_BUF], b[GF_SHAPE_BUF];
            return gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                                    "backward: grad_out shape %s does not match output shape %s",
                                    gf_shape_str(grad_out, b, sizeof b),
                                    gf_shape_str(out, a, sizeof a));
        }
        if (!out->requires_grad)
            return gf_ctx_set_error(ctx, GF_ERR_STATE,
                                    "backward: output %d does not require grad (no tensor "
                                    "requiring grad reached it, or grad mode was off)", k);
        if (out->node && !out->node->out)
            return gf_ctx_set_error(ctx, GF_ERR_STATE,
                                    "backward: this graph was already used by a backward pass "
                                    "(run the forward again)");
    }
    for (int k = 0; k < n; k++) {
        float *g = gf_grad_of(ctx, outs[k]);
        if (!g) return ctx->status;
        const float *go = gf_contig_f32(ctx, grad_outs[k]);
        if (!go) return ctx->status;
        for (int64_t i = 0; i < outs[k]->numel; i++) g[i] += go[i];
    }
    return run_backward(ctx);
}

gf_status gf_backward_many(gf_ctx *ctx, int n, gf_tensor *const *outs,
                           const gf_tensor *const *grad_outs) {
    return clear_watch(ctx, backward_many(ctx, n, outs, grad_outs));
}

gf_status gf_backward_with(gf_ctx *ctx, gf_tensor *out, const gf_tensor *grad_out) {
    return gf_backward_many(ctx, 1, &out, &grad_out);
}

static gf_status backward_scalar(gf_ctx *ctx, gf_tensor *loss) {
    if (ctx->status != GF_OK) return ctx->status;
    if (!gf_check_tensor(ctx, "backward", "loss", loss, GF_F32)) return ctx->status;
    if (loss->numel != 1) {
        char b[GF_SHAPE_BUF];
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                                "backward: loss must have one element, got shape %s "
                                "(use gf_backward_with for a non-scalar output)",
                                gf_shape_str(loss, b, sizeof b));
    }
    gf_tensor *one = gf_full(ctx, loss->ndim, loss->shape, 1.0f);
    if (!one) return ctx->status;
    return gf_backward_with(ctx, loss, one);
}

gf_status gf_backward(gf_ctx *ctx, gf_tensor *loss) {
    return clear_watch(ctx, backward_scalar(ctx, loss));
}
