/* Reductions: ReduceSum / Mean / Max / Min / Prod / L1 / L2 / SumSquare / LogSum / LogSumExp
 * (axes from an attribute, or from an input: ReduceSum from opset 13, the rest from 18), ArgMax /
 * ArgMin, CumSum and TopK. Float reductions are compositions of recorded ops (min is -max(-x),
 * log-sum-exp is shifted by the maximum), so they carry gradients; TopK's values are a gather of
 * the input at its indices. */
#include "import/onnx_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The axes to reduce (n = 0 and *noop: return the input unchanged). */
static int reduce_axes(ox_exec *e, int *axes, bool *noop) {
    gf_tensor *x = e->in[0];
    int64_t ax[OX_MAX_LIST];
    int n;
    const bool from_input =
        !strcmp(e->node->op, "ReduceSum") ? e->node->opset >= 13 : e->node->opset >= 18;
    if (from_input) {
        n = e->n_in > 1 && e->in[1] ? ox_input_ints(e, 1, ax, OX_MAX_LIST) : 0;
    } else {
        const int64_t *v;
        n = ox_attr_ints(e->node, "axes", &v);
        if (n > OX_MAX_LIST) n = -1;
        else if (n) memcpy(ax, v, sizeof(int64_t) * (size_t)n);
    }
    if (n < 0) return -1;
    *noop = n == 0 && from_input && ox_attr_int(e->node, "noop_with_empty_axes", 0);
    bool seen[GF_MAX_DIMS] = {false};
    for (int i = 0; i < n; i++) {
        if (!ox_axis(e, ax[i], x->ndim, &axes[i])) return -1;
        if (seen[axes[i]])
            return ox_fail(e, GF_ERR_INVALID, "axis %lld appears twice", (long long)ax[i]), -1;
        seen[axes[i]] = true;
    }
    if (n == 0 && !*noop)
        for (int d = 0; d < x->ndim; d++) axes[n++] = d;
    return n;
}

bool ox_op_reduce(ox_exec *e) {
    gf_tensor *x = e->in[0];
    if (!ox_need(e, 0, GF_F32)) return false;
    int axes[GF_MAX_DIMS];
    bool noop;
    int n = reduce_axes(e, axes, &noop);
    if (n < 0) return false;
    if (noop) return (e->out[0] = x) != NULL;
    const bool keep = ox_attr_int(e->node, "keepdims", 1) != 0;
    const char *op = e->node->op + 6; /* after "Reduce" */
    gf_ctx *c = e->ctx;
    for (int i = 0; i < n && (!strcmp(op, "Max") || !strcmp(op, "Min")); i++)
        if (x->shape[axes[i]] == 0)
            return ox_fail(e, GF_ERR_SHAPE, "reducing the empty axis %d", axes[i]);
    gf_tensor *y;
    if (!strcmp(op, "Sum")) y = gf_sum(c, x, axes, n, keep);
    else if (!strcmp(op, "Mean")) y = gf_mean(c, x, axes, n, keep);
    else if (!strcmp(op, "Max")) y = gf_max(c, x, axes, n, keep);
    else if (!strcmp(op, "Min")) y = gf_neg(c, gf_max(c, gf_neg(c, x), axes, n, keep));
    else if (!strcmp(op, "Prod")) y = gf_prod(c, x, axes, n, keep);
    else if (!strcmp(op, "L1")) y = gf_sum(c, gf_abs(c, x), axes, n, keep);
    else if (!strcmp(op, "L2")) y = gf_sqrt(c, gf_sum(c, gf_mul(c, x, x), axes, n, keep));
    else if (!strcmp(op, "SumSquare")) y = gf_sum(c, gf_mul(c, x, x), axes, n, keep);
    else if (!strcmp(op, "LogSum")) y = gf_log(c, gf_sum(c, x, axes, n, keep));
    else if (!strcmp(op, "LogSumExp")) {
        gf_tensor *m = gf_max(c, x, axes, n, true);
        y = gf_add(c, gf_log(c, gf_sum(c, gf_exp(c, gf_sub(c, x, m)), axes, n, true)), m);
        if (y && !keep) {
            int64_t s[GF_MAX_DIMS];
            int nd = 0;
            bool red[GF_MAX_DIMS] = {false};
            for (int i = 0; i < n; i++) red[axes[i]] = true;
            for (int d = 0; d < x->ndim; d++)
                if (!red[d]) s[nd++] = x->shape[d];
            y = gf_reshape(c, y, nd, s);
        }
    } else {
        return ox_fail(e, GF_ERR_INVALID, "not a reduction");
    }
    return (e->out[0] = y) != NULL;
}

bool ox_op_argmax(ox_exec *e) {
    gf_tensor *x = e->in[0];
    int a;
    if (!ox_axis(e, ox_attr_int(e->node, "axis", 0), x->ndim, &a)) return false;
    const bool keep = ox_attr_int(e->node, "keepdims", 1) != 0;
    const bool last = ox_attr_int(e->node, "select_last_index", 0) != 0;
    const bool is_max = !strcmp(e->node->op, "ArgMax");
    const int64_t len = x->shape[a], inner = gf_numel_of(x->ndim - a - 1, x->shape + a + 1);
    if (len == 0) return ox_fail(e, GF_ERR_SHAPE, "axis %d is empty", a);
    const int64_t outer = x->numel / (len * (inner ? inner : 1));
    int64_t s[GF_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < x->ndim; d++)
        if (d != a || keep) s[nd++] = d == a ? 1 : x->shape[d];
    gf_tensor *o = gf_empty(e->ctx, GF_I64, nd, s);
    if (!o) return false;
    for (int64_t r = 0; r < outer; r++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0;
            double bv = 0;
            for (int64_t j = 0; j < len; j++) {
                int64_t k = (r * len + j) * inner + i;
                double v = x->dtype == GF_F32 ? gf_get_f32(x, k) : (double)gf_get_i64(x, k);
                bool better = j == 0 ||
                    (is_max ? (v > bv || (last && v == bv)) : (v < bv || (last && v == bv)));
                if (better) best = j, bv = v;
            }
            gf_i64(o)[r * inner + i] = best;
        }
    return (e->out[0] = o) != NULL;
}

/* CumSum: for floats a product with a triangular matrix along the axis (recorded); for integers
 * a running sum. */
bool ox_op_cumsum(ox_exec *e) {
    gf_tensor *x = e->in[0];
    double axis_v;
    int a;
    if (!ox_input_scalar(e, 1, &axis_v) || !ox_axis(e, (int64_t)axis_v, x->ndim, &a)) return false;
    const bool excl = ox_attr_int(e->node, "exclusive", 0) != 0,
               rev = ox_attr_int(e->node, "reverse", 0) != 0;
    const int64_t len = x->shape[a];
    if (x->dtype == GF_F32) {
        int64_t ms[2] = {len, len};
        if (!ox_check_numel(e, len * len, "the cumulative-sum matrix")) return false;
        gf_tensor *m = gf_empty(e->ctx, GF_F32, 2, ms);
        if (!m) return false;
        for (int64_t i = 0; i < len; i++) /* out[j] = sum over i of x[i] m[i][j] */
            for (int64_t j = 0; j < len; j++)
                gf_f32(m)[i * len + j] = rev ? (excl ? i > j : i >= j) : (excl ? i < j : i <= j);
        gf_ctx *c = e->ctx;
        gf_tensor *t = gf_transpose(c, x, a, -1);
        return (e->out[0] = gf_transpose(c, gf_matmul(c, t, m), a, -1)) != NULL;
    }
    gf_tensor *o = gf_empty(e->ctx, GF_I64, x->ndim, x->shape);
    if (!o) return false;
    const int64_t inner = gf_numel_of(x->ndim - a - 1, x->shape + a + 1);
    const int64_t outer = len && inner ? x->numel / (len * inner) : 0;
    for (int64_t r = 0; r < outer; r++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t acc = 0;
            for (int64_t jj = 0; jj < len; jj++) {
                int64_t j = rev ? len - 1 - jj : jj, k = (r * len + j) * inner + i,
                        v = gf_get_i64(x, k);
                if (!excl) acc += v;
                gf_i64(o)[k] = acc;
                if (excl) acc += v;
            }
        }
    return (e->out[0] = o) != NULL;
}

/* ---- TopK ------------------------------------------------------------------------------------ */

typedef struct { double v; int64_t i; } kv;
static int by_desc(const void *a, const void *b) {
    const kv *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}
static int by_asc(const void *a, const void *b) {
    const kv *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

bool ox_op_topk(ox_exec *e) {
    gf_tensor *x = e->in[0];
    int64_t kk = ox_attr_int(e->node, "k", 0);
    int a;
    if (e->node->opset >= 10) {
        int64_t v[1];
        if (ox_input_ints(e, 1, v, 1) != 1)
            return ox_fail(e, GF_ERR_INVALID, "K must be one integer");
        kk = v[0];
    }
    if (!ox_axis(e, ox_attr_int(e->node, "axis", -1), x->ndim, &a)) return false;
    const int64_t len = x->shape[a];
    if (kk < 0 || kk > len)
        return ox_fail(e, GF_ERR_INVALID, "K %lld for an axis of %lld", (long long)kk,
                       (long long)len);
    const bool largest = ox_attr_int(e->node, "largest", 1) != 0;
    const int64_t inner = gf_numel_of(x->ndim - a - 1, x->shape + a + 1);
    const int64_t outer = len && inner ? x->numel / (len * inner) : 0;
    int64_t s[GF_MAX_DIMS];
    memcpy(s, x->shape, sizeof s);
    s[a] = kk;
    gf_tensor *idx = gf_empty(e->ctx, GF_I64, x->ndim, s);
    kv *buf = idx ? gf_scratch(e->ctx, sizeof(kv) * (size_t)(len + 1)) : NULL;
    if (!buf) return false;
    for (int64_t r = 0; r < outer; r++)
        for (int64_t i = 0; i < inner; i++) {
            for (int64_t j = 0; j < len; j++) {
                int64_t k = (r * len + j) * inner + i;
                buf[j].v = x->dtype == GF_F32 ? gf_get_f32(x, k) : (double)gf_get_i64(x, k);
                buf[j].i = j;
            }
            qsort(buf, (size_t)len, sizeof *buf, largest ? by_desc : by_asc);
            for (int64_t j = 0; j < kk; j++) gf_i64(idx)[(r * kk + j) * inner + i] = buf[j].i;
        }
    e->out[0] = gf_gather(e->ctx, x, a, idx);
    if (e->n_out > 1) e->out[1] = idx;
    return e->out[0] != NULL;
}
