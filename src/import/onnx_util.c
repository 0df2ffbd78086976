/* Helpers shared by the op functions: attributes with their defaults, list- and scalar-valued
 * inputs (shapes, axes, pads) read with their sizes checked, dtype conversions, axes, and the
 * activation limit on tensors whose size a file decides. */
#include "import/onnx_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

bool ox_fail(ox_exec *e, gf_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    gf_ctx_set_errorv(e->ctx, s, fmt, ap);
    va_end(ap);
    return false;
}

const ox_attr *ox_attr_get(const ox_node *n, const char *name) {
    for (int i = 0; i < n->n_attr; i++)
        if (!strcmp(n->attr[i].name, name)) return &n->attr[i];
    return NULL;
}

int64_t ox_attr_int(const ox_node *n, const char *name, int64_t dflt) {
    const ox_attr *a = ox_attr_get(n, name);
    return a && a->type == OX_A_INT ? a->i : dflt;
}

float ox_attr_float(const ox_node *n, const char *name, float dflt) {
    const ox_attr *a = ox_attr_get(n, name);
    if (a && a->type == OX_A_FLOAT) return a->f;
    if (a && a->type == OX_A_INT) return (float)a->i; /* some exporters write 0 for 0.0 */
    return dflt;
}

const char *ox_attr_str(const ox_node *n, const char *name, const char *dflt) {
    const ox_attr *a = ox_attr_get(n, name);
    return a && a->type == OX_A_STRING ? a->s : dflt;
}

int ox_attr_ints(const ox_node *n, const char *name, const int64_t **vals) {
    const ox_attr *a = ox_attr_get(n, name);
    if (!a || a->type != OX_A_INTS) {
        *vals = NULL;
        return 0;
    }
    *vals = a->ints;
    return a->n;
}

bool ox_need(ox_exec *e, int idx, gf_dtype dt) {
    if (idx >= e->n_in || !e->in[idx])
        return ox_fail(e, GF_ERR_INVALID, "input %d is missing", idx);
    if (e->in[idx]->dtype != dt) {
        char s[GF_SHAPE_BUF];
        return ox_fail(e, GF_ERR_DTYPE, "input %d: expected %s, found %s tensor %s", idx,
                       dt == GF_F32 ? "a float" : "an integer",
                       e->in[idx]->dtype == GF_F32 ? "a float" : "an integer",
                       gf_shape_str(e->in[idx], s, sizeof s));
    }
    return true;
}

int ox_input_ints(ox_exec *e, int idx, int64_t *dst, int cap) {
    if (!ox_need(e, idx, GF_I64)) return -1;
    const gf_tensor *t = e->in[idx];
    char s[GF_SHAPE_BUF];
    if (t->ndim > 1 || t->numel > cap) {
        ox_fail(e, GF_ERR_SHAPE, "input %d: expected a list of at most %d integers, found %s",
                idx, cap, gf_shape_str(t, s, sizeof s));
        return -1;
    }
    for (int64_t i = 0; i < t->numel; i++) dst[i] = gf_get_i64(t, i);
    return (int)t->numel;
}

bool ox_input_scalar(ox_exec *e, int idx, double *out) {
    if (idx >= e->n_in || !e->in[idx])
        return ox_fail(e, GF_ERR_INVALID, "input %d is missing", idx);
    const gf_tensor *t = e->in[idx];
    if (t->numel != 1) {
        char s[GF_SHAPE_BUF];
        return ox_fail(e, GF_ERR_SHAPE, "input %d: expected one value, found %s", idx,
                       gf_shape_str(t, s, sizeof s));
    }
    *out = t->dtype == GF_F32 ? (double)gf_get_f32(t, 0) : (double)gf_get_i64(t, 0);
    return true;
}

gf_tensor *ox_as_f32(ox_exec *e, gf_tensor *t) {
    if (!t || t->dtype == GF_F32) return t;
    gf_tensor *o = gf_empty(e->ctx, GF_F32, t->ndim, t->shape);
    const int64_t *p = o ? gf_contig_i64(e->ctx, t) : NULL;
    if (!p) return NULL;
    for (int64_t i = 0; i < t->numel; i++) gf_f32(o)[i] = (float)p[i];
    return o;
}

gf_tensor *ox_as_i64(ox_exec *e, gf_tensor *t) {
    if (!t || t->dtype == GF_I64) return t;
    gf_tensor *o = gf_empty(e->ctx, GF_I64, t->ndim, t->shape);
    const float *p = o ? gf_contig_f32(e->ctx, t) : NULL;
    if (!p) return NULL;
    for (int64_t i = 0; i < t->numel; i++) {
        float v = p[i];
        /* C leaves NaN and out-of-range conversions undefined; saturate instead */
        gf_i64(o)[i] = isnan(v) ? 0 : v >= 9.2233720368547758e18f ? INT64_MAX
                     : v <= -9.2233720368547758e18f ? INT64_MIN : (int64_t)v;
    }
    return o;
}

bool ox_axis(ox_exec *e, int64_t axis, int rank, int *out) {
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank)
        return ox_fail(e, GF_ERR_INVALID, "axis %lld is out of range for rank %d", (long long)axis,
                       rank);
    *out = (int)a;
    return true;
}

bool ox_check_numel(ox_exec *e, int64_t numel, const char *what) {
    const int64_t lim = gf_ctx_limits(e->ctx)->model_activation;
    if (numel < 0 || numel > lim)
        return ox_fail(e, GF_ERR_SHAPE, "%s would hold %lld elements, more than %lld (limit "
                       "activation)", what, (long long)numel, (long long)lim);
    return true;
}

bool ox_check_grow(ox_exec *e, int64_t numel, int64_t largest_input, const char *what) {
    if (numel >= 0 && numel <= largest_input) return true;
    return ox_check_numel(e, numel, what);
}

bool ox_check_bcast(ox_exec *e, const gf_tensor *a, const gf_tensor *b) {
    if (!a || !b) return true; /* the op reports the missing input */
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t numel = 1;
    for (int d = 0; d < nd; d++) {
        int ia = d - (nd - a->ndim), ib = d - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        int64_t s = da == 1 ? db : da;
        if (s == 0) return true;
        numel = numel > INT64_MAX / s ? INT64_MAX : numel * s;
    }
    return ox_check_grow(e, numel, a->numel > b->numel ? a->numel : b->numel,
                         "the broadcast result");
}

gf_tensor *ox_full(ox_exec *e, int ndim, const int64_t *shape, float v) {
    return gf_full(e->ctx, ndim, shape, v);
}

gf_tensor *ox_i64_vec(ox_exec *e, int64_t n, const int64_t *vals) {
    gf_tensor *t = gf_empty(e->ctx, GF_I64, 1, &n);
    if (t && n) memcpy(t->data, vals, sizeof(int64_t) * (size_t)n);
    return t;
}

gf_tensor *ox_i64_empty(ox_exec *e, int ndim, const int64_t *shape) {
    return gf_empty(e->ctx, GF_I64, ndim, shape);
}
