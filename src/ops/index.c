/* Indexing by int64 tensors: take (numpy.take along one axis, ONNX Gather: whole slices picked
 * by an index tensor of any shape) and gather (torch.gather, ONNX GatherElements: one element
 * per index position). Negative indices count from the end; an index out of range is an error
 * naming it. Both work on float32 (recorded, gradients scattered back) and int64 data (shape
 * arithmetic, never recorded). The backward adds in index order within each slice, one thread
 * per outer row, so the sums do not depend on the thread count. */
#include "core/internal.h"
#include "graft/ops.h"

/* Checks the indices against size and copies them normalised into the arena. */
static int64_t *norm_indices(gf_ctx *ctx, const char *op, const gf_tensor *idx, int64_t size,
                             const gf_tensor *x, int axis) {
    const int64_t *pi = gf_contig_i64(ctx, idx);
    int64_t *out = pi ? gf_scratch(ctx, sizeof(int64_t) * (size_t)(idx->numel + 1)) : NULL;
    if (!out) return NULL;
    for (int64_t i = 0; i < idx->numel; i++) {
        int64_t v = pi[i] < 0 ? pi[i] + size : pi[i];
        if (v < 0 || v >= size) {
            char sx[GF_SHAPE_BUF];
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: index %lld is out of range for axis %d "
                             "of size %lld (input %s)", op, (long long)pi[i], axis,
                             (long long)size, gf_shape_str(x, sx, sizeof sx));
            return NULL;
        }
        out[i] = v;
    }
    return out;
}

/* ---- take --------------------------------------------------------------------------------- */

typedef struct {
    int64_t outer, size, inner, n; /* rows before the axis, axis size, elements after, indices */
    int64_t *idx;
} take_saved;

gf_tensor *gf_take(gf_ctx *ctx, gf_tensor *x, gf_tensor *idx, int axis) {
    if (!gf_check_tensor(ctx, "take", "input", x, x ? x->dtype : GF_F32) ||
        !gf_check_tensor(ctx, "take", "indices", idx, GF_I64))
        return NULL;
    int a;
    if (!gf_check_axis(ctx, "take", x->ndim, axis, &a)) return NULL;
    if (x->ndim - 1 + idx->ndim > GF_MAX_DIMS) {
        char sx[GF_SHAPE_BUF], si[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "take: input %s with indices %s would have more than "
                         "%d dimensions", gf_shape_str(x, sx, sizeof sx),
                         gf_shape_str(idx, si, sizeof si), GF_MAX_DIMS);
        return NULL;
    }
    take_saved s = {gf_numel_of(a, x->shape), x->shape[a],
                    gf_numel_of(x->ndim - a - 1, x->shape + a + 1), idx->numel, NULL};
    if (!(s.idx = norm_indices(ctx, "take", idx, s.size, x, a))) return NULL;
    int64_t shape[GF_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < a; i++) shape[nd++] = x->shape[i];
    for (int i = 0; i < idx->ndim; i++) shape[nd++] = idx->shape[i];
    for (int i = a + 1; i < x->ndim; i++) shape[nd++] = x->shape[i];
    gf_tensor *out = gf_empty(ctx, x->dtype, nd, shape);
    const size_t es = gf_dtype_size(x->dtype);
    const char *px = x->dtype == GF_F32 ? (const char *)gf_contig_f32(ctx, x)
                                        : (const char *)gf_contig_i64(ctx, x);
    if (!out || !px) return NULL;
    char *o = out->data;
    const size_t row = es * (size_t)s.inner;
#pragma omp parallel for num_threads(gf_threads_for(ctx, out->numel)) schedule(static)
    for (int64_t r = 0; r < s.outer; r++)
        for (int64_t j = 0; j < s.n; j++)
            memcpy(o + ((size_t)(r * s.n + j)) * row, px + ((size_t)(r * s.size + s.idx[j])) * row,
                   row);
    if (x->dtype == GF_F32 && gf_wants_grad(ctx, &x, 1)) {
        gf_node *node = gf_record(ctx, GF_OP_TAKE, out, &x, 1, sizeof s);
        if (!node) return NULL;
        *(take_saved *)node->saved = s;
    }
    return out;
}

void gf_bw_take(gf_ctx *ctx, gf_node *node) {
    float *gx = gf_grad_of(ctx, node->in[0]);
    if (!gx) return;
    const take_saved *s = node->saved;
    const float *g = gf_f32(node->out->grad);
#pragma omp parallel for num_threads(gf_threads_for(ctx, node->out->numel)) schedule(static)
    for (int64_t r = 0; r < s->outer; r++)
        for (int64_t j = 0; j < s->n; j++) {
            float *dst = gx + (r * s->size + s->idx[j]) * s->inner;
            const float *src = g + (r * s->n + j) * s->inner;
            for (int64_t i = 0; i < s->inner; i++) dst[i] += src[i];
        }
}

/* ---- gather -------------------------------------------------------------------------------- */

typedef struct {
    int64_t *src; /* per output element: flat offset in the input's contiguous layout */
} gather_saved;

gf_tensor *gf_gather(gf_ctx *ctx, gf_tensor *x, int axis, gf_tensor *idx) {
    if (!gf_check_tensor(ctx, "gather", "input", x, x ? x->dtype : GF_F32) ||
        !gf_check_tensor(ctx, "gather", "indices", idx, GF_I64))
        return NULL;
    int a;
    if (!gf_check_axis(ctx, "gather", x->ndim, axis, &a)) return NULL;
    char sx[GF_SHAPE_BUF], si[GF_SHAPE_BUF];
    bool fits = idx->ndim == x->ndim;
    for (int d = 0; fits && d < x->ndim; d++) fits = d == a || idx->shape[d] <= x->shape[d];
    if (!fits) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "gather: indices %s must have the rank of input %s "
                         "and no larger size outside axis %d", gf_shape_str(idx, si, sizeof si),
                         gf_shape_str(x, sx, sizeof sx), axis);
        return NULL;
    }
    int64_t *pi = norm_indices(ctx, "gather", idx, x->shape[a], x, a);
    gf_tensor *out = pi ? gf_empty(ctx, x->dtype, idx->ndim, idx->shape) : NULL;
    const void *px = !out ? NULL : x->dtype == GF_F32 ? (const void *)gf_contig_f32(ctx, x)
                                                      : (const void *)gf_contig_i64(ctx, x);
    if (!px) return NULL;
    int64_t cst[GF_MAX_DIMS], idx_pos[GF_MAX_DIMS] = {0};
    gf_contiguous_strides(x->ndim, x->shape, cst);
    for (int64_t k = 0; k < idx->numel; k++) {
        int64_t off = 0;
        for (int d = 0; d < x->ndim; d++) off += (d == a ? pi[k] : idx_pos[d]) * cst[d];
        pi[k] = off; /* reused: now the source offset */
        if (x->dtype == GF_F32) gf_f32(out)[k] = ((const float *)px)[off];
        else gf_i64(out)[k] = ((const int64_t *)px)[off];
        gf_index_next(idx->ndim, idx->shape, idx_pos);
    }
    if (x->dtype == GF_F32 && gf_wants_grad(ctx, &x, 1)) {
        gf_node *node = gf_record(ctx, GF_OP_GATHER, out, &x, 1, sizeof(gather_saved));
        if (!node) return NULL;
        ((gather_saved *)node->saved)->src = pi;
    }
    return out;
}

void gf_bw_gather(gf_ctx *ctx, gf_node *node) {
    float *gx = gf_grad_of(ctx, node->in[0]);
    if (!gx) return;
    const int64_t *src = ((const gather_saved *)node->saved)->src;
    const float *g = gf_f32(node->out->grad);
    for (int64_t k = 0; k < node->out->numel; k++) gx[src[k]] += g[k];
}
