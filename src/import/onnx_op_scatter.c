/* Writing into tensors by index: ScatterElements (and the older Scatter), ScatterND, and
 * ReverseSequence. Without a reduction a scatter is where(written, updates taken at the last
 * index writing each position, data): gf_take and gf_where, so gradients reach both data and
 * updates. The add and mul reductions (opset 16) sum or multiply in place and carry no
 * gradient. */
#include "import/onnx_internal.h"

#include <string.h>

typedef enum { SC_NONE, SC_ADD, SC_MUL } sc_red;

static bool reduction(ox_exec *e, sc_red *r) {
    const char *s = ox_attr_str(e->node, "reduction", "none");
    *r = !strcmp(s, "add") ? SC_ADD : !strcmp(s, "mul") ? SC_MUL : SC_NONE;
    if (*r == SC_NONE && strcmp(s, "none"))
        return ox_fail(e, GF_ERR_INVALID, "reduction '%s' is not none, add or mul (min and max are "
                       "not supported)", s);
    return true;
}

/* dst[k] (flat offsets into data) receive updates' elements in order. */
static bool apply(ox_exec *e, sc_red red, const int64_t *dst, int64_t n) {
    gf_tensor *data = e->in[0], *upd = e->in[2];
    gf_ctx *c = e->ctx;
    if (red != SC_NONE || data->dtype != GF_F32) { /* in place on a copy; no gradient */
        gf_tensor *o = gf_empty(c, data->dtype, data->ndim, data->shape);
        if (!o) return false;
        gf_copy_out(data, o->data);
        for (int64_t k = 0; k < n; k++) {
            if (o->dtype == GF_F32) {
                float *p = gf_f32(o) + dst[k], u = gf_get_f32(upd, k);
                *p = red == SC_ADD ? *p + u : red == SC_MUL ? *p * u : u;
            } else {
                int64_t *p = gf_i64(o) + dst[k], u = gf_get_i64(upd, k);
                *p = red == SC_ADD ? *p + u : red == SC_MUL ? *p * u : u;
            }
        }
        return (e->out[0] = o) != NULL;
    }
    gf_tensor *mask = gf_zeros(c, GF_I64, data->ndim, data->shape);
    gf_tensor *src = gf_zeros(c, GF_I64, data->ndim, data->shape);
    if (!mask || !src) return false;
    for (int64_t k = 0; k < n; k++) gf_i64(mask)[dst[k]] = 1, gf_i64(src)[dst[k]] = k;
    gf_tensor *flat = gf_reshape(c, upd, 1, &upd->numel);
    gf_tensor *taken =
        flat && flat->numel ? gf_take(c, flat, gf_reshape(c, src, 1, &src->numel), 0) : NULL;
    if (!taken) return (e->out[0] = data) != NULL; /* nothing written */
    return (e->out[0] = gf_where(c, mask, gf_reshape(c, taken, data->ndim, data->shape), data)) !=
        NULL;
}

bool ox_op_scatter_elements(ox_exec *e) {
    gf_tensor *data = e->in[0], *idx = ox_as_i64(e, e->in[1]), *upd = e->in[2];
    sc_red red = SC_NONE;
    int a;
    if (!idx || !upd || !reduction(e, &red) ||
        !ox_axis(e, ox_attr_int(e->node, "axis", 0), data->ndim, &a))
        return false;
    bool fits = idx->ndim == data->ndim && upd->ndim == idx->ndim && upd->dtype == data->dtype;
    for (int d = 0; fits && d < idx->ndim; d++)
        fits = idx->shape[d] == upd->shape[d] && (d == a || idx->shape[d] <= data->shape[d]);
    if (!fits)
        return ox_fail(e, GF_ERR_SHAPE,
                       "indices and updates must have one shape, data's rank and "
                       "type, and no larger size outside the axis");
    int64_t *dst = gf_scratch(e->ctx, sizeof(int64_t) * (size_t)(idx->numel + 1)),
            pos[GF_MAX_DIMS] = {0};
    int64_t st[GF_MAX_DIMS];
    if (!dst) return false;
    gf_contiguous_strides(data->ndim, data->shape, st);
    for (int64_t k = 0; k < idx->numel; k++) {
        int64_t v = gf_get_i64(idx, k), dim = data->shape[a];
        if (v < -dim || v >= dim)
            return ox_fail(e, GF_ERR_INVALID, "index %lld out of range for axis %d of size %lld",
                           (long long)v, a, (long long)dim);
        dst[k] = 0;
        for (int d = 0; d < data->ndim; d++)
            dst[k] += (d == a ? (v < 0 ? v + dim : v) : pos[d]) * st[d];
        gf_index_next(idx->ndim, idx->shape, pos);
    }
    return apply(e, red, dst, idx->numel);
}

bool ox_op_scatter_nd(ox_exec *e) {
    gf_tensor *data = e->in[0], *idx = ox_as_i64(e, e->in[1]), *upd = e->in[2];
    sc_red red = SC_NONE;
    if (!idx || !upd || !reduction(e, &red)) return false;
    const int k = idx->ndim ? (int)idx->shape[idx->ndim - 1] : -1, q = idx->ndim;
    bool fits = q >= 1 && k >= 0 && k <= data->ndim && upd->dtype == data->dtype &&
        upd->ndim == q - 1 + data->ndim - k;
    for (int d = 0; fits && d < upd->ndim; d++)
        fits = upd->shape[d] == (d < q - 1 ? idx->shape[d] : data->shape[k + d - (q - 1)]);
    if (!fits)
        return ox_fail(e, GF_ERR_SHAPE, "updates must be indices.shape[:-1] + data.shape[k:]");
    const int64_t slice = gf_numel_of(data->ndim - k, data->shape + k),
                  n = q > 1 ? gf_numel_of(q - 1, idx->shape) : 1;
    int64_t *dst = gf_scratch(e->ctx, sizeof(int64_t) * (size_t)(n * slice + 1));
    if (!dst) return false;
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int j = 0; j < k; j++) {
            int64_t v = gf_get_i64(idx, i * k + j), dim = data->shape[j];
            if (v < -dim || v >= dim)
                return ox_fail(e, GF_ERR_INVALID,
                               "index %lld out of range for dimension %d of size %lld",
                               (long long)v, j, (long long)dim);
            off = off * dim + (v < 0 ? v + dim : v);
        }
        for (int64_t s = 0; s < slice; s++) dst[i * slice + s] = off * slice + s;
    }
    return apply(e, red, dst, n * slice);
}

/* ReverseSequence: the first sequence_lens[b] steps of each batch entry reversed, as a gather
 * along the time axis. */
bool ox_op_reverse_sequence(ox_exec *e) {
    gf_tensor *x = e->in[0], *lens = ox_as_i64(e, e->in[1]);
    int ta, ba;
    if (!lens || !ox_axis(e, ox_attr_int(e->node, "time_axis", 0), x->ndim, &ta) ||
        !ox_axis(e, ox_attr_int(e->node, "batch_axis", 1), x->ndim, &ba) || ta == ba || x->ndim < 2)
        return ox_fail(e, GF_ERR_INVALID, "time_axis and batch_axis must be two different axes");
    if (lens->numel != x->shape[ba])
        return ox_fail(e, GF_ERR_SHAPE, "sequence_lens has %lld values for a batch of %lld",
                       (long long)lens->numel, (long long)x->shape[ba]);
    gf_tensor *idx = gf_empty(e->ctx, GF_I64, x->ndim, x->shape);
    if (!idx) return false;
    int64_t pos[GF_MAX_DIMS] = {0};
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t t = pos[ta], len = gf_get_i64(lens, pos[ba]);
        if (len < 0 || len > x->shape[ta])
            return ox_fail(e, GF_ERR_INVALID, "sequence length %lld", (long long)len);
        gf_i64(idx)[i] = t < len ? len - 1 - t : t;
        gf_index_next(x->ndim, x->shape, pos);
    }
    return (e->out[0] = gf_gather(e->ctx, x, ta, idx)) != NULL;
}
