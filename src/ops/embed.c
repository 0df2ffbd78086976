/* Embedding lookup: rows of a weight table [V, D] gathered by indices of any shape (int64, or
 * float32 holding whole numbers: token ids straight from a dataset).
 * The backward scatters gradients into the rows deterministically (no atomics). */
#include "core/internal.h"
#include "graft/ops.h"

#include <math.h>

typedef struct {
    int64_t n;        /* number of indices */
    int64_t *idx;     /* [n] copy of the indices taken at forward time */
    int64_t padding;  /* row that gets no gradient, or -1 */
} embed_saved;

/* Token ids stored as float32 (a dataset's samples) as int64; NULL with an error naming the
 * first id that is not a whole number (NaN and infinities included) or does not fit int64,
 * with its position. The range against the vocabulary is checked by the caller. */
static const int64_t *ids_from_f32(gf_ctx *ctx, const gf_tensor *idx) {
    const float *src = gf_contig_f32(ctx, idx);
    int64_t *dst = gf_scratch(ctx, sizeof(int64_t) * (size_t)(idx->numel ? idx->numel : 1));
    if (!src || !dst) return NULL;
    for (int64_t i = 0; i < idx->numel; i++) {
        float v = src[i];
        if (!(v == floorf(v)) || !(fabsf(v) < 9.2e18f)) {
            char si[GF_SHAPE_BUF];
            gf_ctx_set_error(ctx, GF_ERR_INVALID,
                             "embedding: float32 index %g at flat position %lld of indices %s is "
                             "not a whole number (token ids must be integers)",
                             (double)v, (long long)i, gf_shape_str(idx, si, sizeof si));
            return NULL;
        }
        dst[i] = (int64_t)v;
    }
    return dst;
}

gf_tensor *gf_embedding(gf_ctx *ctx, gf_tensor *weight, gf_tensor *idx, int64_t padding_idx) {
    const char *op = "embedding";
    if (!gf_check_tensor(ctx, op, "weight", weight, GF_F32) ||
        !gf_check_tensor(ctx, op, "indices", idx, idx && idx->dtype == GF_F32 ? GF_F32 : GF_I64))
        return NULL;
    char sw[GF_SHAPE_BUF], si[GF_SHAPE_BUF];
    if (weight->ndim != 2) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "embedding: weight %s must be [V, D] (indices %s)",
                         gf_shape_str(weight, sw, sizeof sw), gf_shape_str(idx, si, sizeof si));
        return NULL;
    }
    if (idx->ndim + 1 > GF_MAX_DIMS) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "embedding: indices %s have too many dimensions for weight %s (at most %d)",
                         gf_shape_str(idx, si, sizeof si), gf_shape_str(weight, sw, sizeof sw),
                         GF_MAX_DIMS - 1);
        return NULL;
    }
    int64_t v = weight->shape[0], d = weight->shape[1], n = idx->numel;
    if (padding_idx >= v) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "embedding: padding_idx %lld out of range for vocabulary size %lld",
                         (long long)padding_idx, (long long)v);
        return NULL;
    }
    const int64_t *pi = idx->dtype == GF_F32 ? ids_from_f32(ctx, idx) : gf_contig_i64(ctx, idx);
    if (!pi) return NULL;
    for (int64_t i = 0; i < n; i++) {
        if (pi[i] < 0 || pi[i] >= v) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID,
                             "embedding: index %lld out of range for vocabulary size %lld "
                             "(weight %s, at flat position %lld of indices %s)",
                             (long long)pi[i], (long long)v, gf_shape_str(weight, sw, sizeof sw),
                             (long long)i, gf_shape_str(idx, si, sizeof si));
            return NULL;
        }
    }
    int64_t oshape[GF_MAX_DIMS];
    memcpy(oshape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
    oshape[idx->ndim] = d;
    gf_tensor *out = gf_empty(ctx, GF_F32, idx->ndim + 1, oshape);
    const float *pw = gf_contig_f32(ctx, weight);
    if (!out || !pw) return NULL;
    float *o = gf_f32(out);
#pragma omp parallel for num_threads(gf_threads_for(ctx, n * d)) schedule(static)
    for (int64_t i = 0; i < n; i++) memcpy(o + i * d, pw + pi[i] * d, sizeof(float) * (size_t)d);

    if (gf_wants_grad(ctx, &weight, 1)) {
        int64_t *copy = gf_scratch(ctx, sizeof(int64_t) * (size_t)(n ? n : 1));
        if (!copy) return NULL;
        memcpy(copy, pi, sizeof(int64_t) * (size_t)n);
        gf_node *nd = gf_record(ctx, GF_OP_EMBEDDING, out, &weight, 1, sizeof(embed_saved));
        if (!nd) return NULL;
        *(embed_saved *)nd->saved = (embed_saved){n, copy, padding_idx < 0 ? -1 : padding_idx};
    }
    return out;
}

/* Groups the positions by row (a counting sort, stable in position order), then each row
 * sums its positions' gradients in that order, one thread per row: the result does not
 * depend on the thread count. */
void gf_bw_embedding(gf_ctx *ctx, gf_node *nd) {
    gf_tensor *weight = nd->in[0];
    float *gw = gf_grad_of(ctx, weight);
    if (!gw) return;
    const embed_saved *sv = nd->saved;
    int64_t v = weight->shape[0], d = weight->shape[1], n = sv->n;
    const float *g = gf_f32(nd->out->grad);
    int64_t *start = gf_scratch(ctx, sizeof(int64_t) * (size_t)(v + 1));
    int64_t *order = gf_scratch(ctx, sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!start || !order) return;
    memset(start, 0, sizeof(int64_t) * (size_t)(v + 1));
    for (int64_t i = 0; i < n; i++) start[sv->idx[i] + 1]++;
    for (int64_t r = 0; r < v; r++) start[r + 1] += start[r];
    for (int64_t i = 0; i < n; i++) order[start[sv->idx[i]]++] = i;
    /* start[r] now holds the end of row r's run; the run begins at start[r - 1] */
#pragma omp parallel for num_threads(gf_threads_for(ctx, n * d)) schedule(dynamic, 64)
    for (int64_t r = 0; r < v; r++) {
        if (r == sv->padding) continue;
        int64_t b = r ? start[r - 1] : 0, e = start[r];
        float *dst = gw + r * d;
        for (int64_t k = b; k < e; k++) {
            const float *src = g + order[k] * d;
            for (int64_t j = 0; j < d; j++) dst[j] += src[j];
        }
    }
}
