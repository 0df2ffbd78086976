/* Elementwise binary arithmetic with PyTorch broadcasting: add, sub, mul, div, pow, and the
 * fused affine a*scale+shift. Forward and backward of each op live here. */
#include "core/internal.h"
#include "graft/ops.h"

#include <math.h>

typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_POW } bin_kind;

static const char *const bin_names[] = {"add", "sub", "mul", "div", "pow"};
static const gf_op bin_ops[] = {GF_OP_ADD, GF_OP_SUB, GF_OP_MUL, GF_OP_DIV, GF_OP_POW};

/* Iterates the broadcast output in row-major order, evaluating EXPR with x = a element and
 * y = b element, writing dst[k]. The innermost dimension runs as a plain strided loop. */
#define BCAST_LOOP(bc, pa, pb, dst, EXPR)                                                    \
    do {                                                                                    \
        int nd_ = (bc)->ndim;                                                               \
        int64_t inner_ = nd_ ? (bc)->shape[nd_ - 1] : 1;                                    \
        int64_t ia_ = nd_ ? (bc)->sa[nd_ - 1] : 0, ib_ = nd_ ? (bc)->sb[nd_ - 1] : 0;       \
        int64_t idx_[GF_MAX_DIMS] = {0};                                                    \
        for (int64_t k0_ = 0; k0_ < (bc)->numel; k0_ += inner_) {                           \
            int64_t oa_ = 0, ob_ = 0;                                                       \
            for (int d_ = 0; d_ < nd_ - 1; d_++) {                                          \
                oa_ += idx_[d_] * (bc)->sa[d_];                                             \
                ob_ += idx_[d_] * (bc)->sb[d_];                                             \
            }                                                                               \
            const float *ra_ = (pa) + oa_, *rb_ = (pb) + ob_;                               \
            float *rd_ = (dst) + k0_;                                                       \
            for (int64_t j_ = 0; j_ < inner_; j_++) {                                       \
                float x = ra_[j_ * ia_], y = rb_[j_ * ib_];                                 \
                (void)x;                                                                    \
                (void)y;                                                                    \
                rd_[j_] = (EXPR);                                                           \
            }                                                                               \
            if (nd_ <= 1) break;                                                            \
            gf_index_next(nd_ - 1, (bc)->shape, idx_);                                      \
        }                                                                                   \
    } while (0)

static bool plain_same(const gf_bcast *bc, const gf_tensor *a, const gf_tensor *b) {
    return a->numel == bc->numel && b->numel == bc->numel && gf_tensor_is_contiguous(a) &&
           gf_tensor_is_contiguous(b);
}

static void bin_forward(gf_ctx *ctx, bin_kind k, const gf_bcast *bc, const gf_tensor *a,
                        const gf_tensor *b, float *o) {
    const float *pa = gf_f32(a), *pb = gf_f32(b);
    if (plain_same(bc, a, b)) {
        int64_t n = bc->numel;
        int nt = gf_threads_for(ctx, n);
        switch (k) {
        case BIN_ADD:
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t i = 0; i < n; i++) o[i] = pa[i] + pb[i];
            return;
        case BIN_SUB:
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t i = 0; i < n; i++) o[i] = pa[i] - pb[i];
            return;
        case BIN_MUL:
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t i = 0; i < n; i++) o[i] = pa[i] * pb[i];
            return;
        case BIN_DIV:
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t i = 0; i < n; i++) o[i] = pa[i] / pb[i];
            return;
        case BIN_POW:
            break;
        }
    }
    switch (k) {
    case BIN_ADD: BCAST_LOOP(bc, pa, pb, o, x + y); break;
    case BIN_SUB: BCAST_LOOP(bc, pa, pb, o, x - y); break;
    case BIN_MUL: BCAST_LOOP(bc, pa, pb, o, x * y); break;
    case BIN_DIV: BCAST_LOOP(bc, pa, pb, o, x / y); break;
    case BIN_POW: BCAST_LOOP(bc, pa, pb, o, powf(x, y)); break;
    }
}

static gf_tensor *binary(gf_ctx *ctx, bin_kind k, gf_tensor *a, gf_tensor *b) {
    const char *name = bin_names[k];
    if (!gf_check_tensor(ctx, name, "a", a, GF_F32) || !gf_check_tensor(ctx, name, "b", b, GF_F32))
        return NULL;
    gf_bcast bc;
    if (!gf_broadcast(ctx, name, a, b, &bc)) return NULL;
    gf_tensor *out = gf_empty(ctx, GF_F32, bc.ndim, bc.shape);
    if (!out) return NULL;
    bin_forward(ctx, k, &bc, a, b, gf_f32(out));
    gf_tensor *in[2] = {a, b};
    if (gf_wants_grad(ctx, in, 2)) {
        gf_node *n = gf_record(ctx, bin_ops[k], out, in, 2, sizeof(gf_bcast));
        if (!n) return NULL;
        *(gf_bcast *)n->saved = bc;
    }
    return out;
}

gf_tensor *gf_add(gf_ctx *ctx, gf_tensor *a, gf_tensor *b) { return binary(ctx, BIN_ADD, a, b); }
gf_tensor *gf_sub(gf_ctx *ctx, gf_tensor *a, gf_tensor *b) { return binary(ctx, BIN_SUB, a, b); }
gf_tensor *gf_mul(gf_ctx *ctx, gf_tensor *a, gf_tensor *b) { return binary(ctx, BIN_MUL, a, b); }
gf_tensor *gf_div(gf_ctx *ctx, gf_tensor *a, gf_tensor *b) { return binary(ctx, BIN_DIV, a, b); }
gf_tensor *gf_pow(gf_ctx *ctx, gf_tensor *a, gf_tensor *b) { return binary(ctx, BIN_POW, a, b); }

/* Adds the partial gradient EXPR (evaluated per output element, with g = upstream grad,
 * x/y = inputs, z = output) into input t's gradient, summing over broadcast dimensions. */
#define BW_PARTIAL(ctx, node, t, EXPR)                                                      \
    do {                                                                                    \
        float *gt_ = gf_grad_of(ctx, t);                                                    \
        if (!gt_) break;                                                                    \
        const gf_bcast *bc_ = (node)->saved;                                                \
        float *tmp_ = gf_scratch_f32(ctx, bc_->numel);                                      \
        if (!tmp_) return;                                                                  \
        const float *g_ = gf_f32((node)->out->grad), *z_ = gf_f32((node)->out);             \
        float *dst_ = tmp_;                                                                 \
        const float *pa_ = gf_f32((node)->in[0]), *pb_ = gf_f32((node)->in[1]);             \
        /* first materialise x/y per element, then combine with g and z */                  \
        float *xs_ = gf_scratch_f32(ctx, bc_->numel), *ys_ = gf_scratch_f32(ctx, bc_->numel); \
        if (!xs_ || !ys_) return;                                                           \
        BCAST_LOOP(bc_, pa_, pb_, xs_, x);                                                  \
        BCAST_LOOP(bc_, pa_, pb_, ys_, y);                                                  \
        for (int64_t i_ = 0; i_ < bc_->numel; i_++) {                                       \
            float g = g_[i_], z = z_[i_], x = xs_[i_], y = ys_[i_];                         \
            (void)z;                                                                        \
            (void)x;                                                                        \
            (void)y;                                                                        \
            dst_[i_] = (EXPR);                                                              \
        }                                                                                   \
        gf_reduce_broadcast_add(bc_->ndim, bc_->shape, tmp_, t, gt_);                       \
    } while (0)

/* Gradient of a (or b) when it is simply +/- the upstream gradient. */
static void bw_passthrough(gf_ctx *ctx, gf_node *n, gf_tensor *t, float sign) {
    float *gt = gf_grad_of(ctx, t);
    if (!gt) return;
    const gf_bcast *bc = n->saved;
    const float *g = gf_f32(n->out->grad);
    if (sign > 0) {
        gf_reduce_broadcast_add(bc->ndim, bc->shape, g, t, gt);
        return;
    }
    float *tmp = gf_scratch_f32(ctx, bc->numel);
    if (!tmp) return;
    for (int64_t i = 0; i < bc->numel; i++) tmp[i] = -g[i];
    gf_reduce_broadcast_add(bc->ndim, bc->shape, tmp, t, gt);
}

void gf_bw_add(gf_ctx *ctx, gf_node *n) {
    bw_passthrough(ctx, n, n->in[0], 1);
    bw_passthrough(ctx, n, n->in[1], 1);
}

void gf_bw_sub(gf_ctx *ctx, gf_node *n) {
    bw_passthrough(ctx, n, n->in[0], 1);
    bw_passthrough(ctx, n, n->in[1], -1);
}

void gf_bw_mul(gf_ctx *ctx, gf_node *n) {
    BW_PARTIAL(ctx, n, n->in[0], g * y);
    BW_PARTIAL(ctx, n, n->in[1], g * x);
}

void gf_bw_div(gf_ctx *ctx, gf_node *n) {
    BW_PARTIAL(ctx, n, n->in[0], g / y);
    BW_PARTIAL(ctx, n, n->in[1], -g * x / (y * y));
}

/* d(x^y)/dx = y x^(y-1); d(x^y)/dy = x^y log x (PyTorch returns 0 where x == 0 and y >= 0). */
void gf_bw_pow(gf_ctx *ctx, gf_node *n) {
    BW_PARTIAL(ctx, n, n->in[0], y == 0.0f ? 0.0f : g * y * powf(x, y - 1.0f));
    BW_PARTIAL(ctx, n, n->in[1], (x == 0.0f && y >= 0.0f) ? 0.0f : g * z * logf(x));
}

/* ---- affine: a * scale + shift ------------------------------------------------------ */

typedef struct {
    float scale, shift;
} affine_saved;

gf_tensor *gf_affine(gf_ctx *ctx, gf_tensor *a, float scale, float shift) {
    if (!gf_check_tensor(ctx, "affine", "a", a, GF_F32)) return NULL;
    gf_tensor *out = gf_empty(ctx, GF_F32, a->ndim, a->shape);
    if (!out) return NULL;
    const float *pa = gf_contig_f32(ctx, a);
    if (!pa) return NULL;
    float *o = gf_f32(out);
    int64_t n = a->numel;
#pragma omp parallel for num_threads(gf_threads_for(ctx, n)) schedule(static)
    for (int64_t i = 0; i < n; i++) o[i] = pa[i] * scale + shift;
    if (gf_wants_grad(ctx, &a, 1)) {
        gf_node *node = gf_record(ctx, GF_OP_AFFINE, out, &a, 1, sizeof(affine_saved));
        if (!node) return NULL;
        *(affine_saved *)node->saved = (affine_saved){scale, shift};
    }
    return out;
}

gf_tensor *gf_add_scalar(gf_ctx *ctx, gf_tensor *a, float s) { return gf_affine(ctx, a, 1.0f, s); }
gf_tensor *gf_mul_scalar(gf_ctx *ctx, gf_tensor *a, float s) { return gf_affine(ctx, a, s, 0.0f); }

void gf_bw_affine(gf_ctx *ctx, gf_node *n) {
    float *ga = gf_grad_of(ctx, n->in[0]);
    if (!ga) return;
    float scale = ((affine_saved *)n->saved)->scale;
    const float *g = gf_f32(n->out->grad);
    for (int64_t i = 0; i < n->out->numel; i++) ga[i] += g[i] * scale;
}
