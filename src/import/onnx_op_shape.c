/* Shape ONNX ops: views and copies that move data without arithmetic (Reshape, Flatten,
 * Transpose, Squeeze/Unsqueeze, Slice, Split, Concat, Gather, Pad, Expand, Tile, DepthToSpace)
 * and the ops that make tensors from shapes (Shape, Size, ConstantOfShape, Range, EyeLike,
 * OneHot). Float data goes through graft's recorded ops (gf_reshape, gf_permute, gf_take,
 * gf_pad, ...); int64 data, mostly shapes, through the same ops where they take it, or here. */
#include "import/onnx_internal.h"

#include <math.h>
#include <string.h>

/* An attribute list before `since`, the input at idx from it on (the opsets where ONNX moved
 * a setting from attribute to input). Returns the count or -1. */
static int ints_attr_or_input(ox_exec *e, const char *attr, int since, int idx, int64_t *dst,
                              bool *given) {
    *given = false;
    if (e->node->opset < since) {
        const int64_t *v;
        int n = ox_attr_ints(e->node, attr, &v);
        if (n > OX_MAX_LIST)
            return ox_fail(e, GF_ERR_INVALID, "attribute %s lists %d values", attr, n), -1;
        *given = v != NULL;
        if (n) memcpy(dst, v, sizeof(int64_t) * (size_t)n);
        return n;
    }
    if (idx >= e->n_in || !e->in[idx]) return 0;
    *given = true;
    return ox_input_ints(e, idx, dst, OX_MAX_LIST);
}

bool ox_op_identity(ox_exec *e) { return (e->out[0] = e->in[0]) != NULL; }

/* ---- reshaping ------------------------------------------------------------------------------- */

bool ox_op_reshape(ox_exec *e) {
    gf_tensor *x = e->in[0];
    int64_t s[OX_MAX_LIST];
    bool given;
    int n = ints_attr_or_input(e, "shape", 5, 1, s, &given);
    if (n < 0) return false;
    if (n > GF_MAX_DIMS)
        return ox_fail(e, GF_ERR_SHAPE, "target shape of rank %d (at most %d)", n, GF_MAX_DIMS);
    const bool allowzero = ox_attr_int(e->node, "allowzero", 0) != 0;
    for (int i = 0; i < n; i++) {
        if (s[i] == 0 && !allowzero) {
            if (i >= x->ndim) return ox_fail(e, GF_ERR_SHAPE, "shape entry %d is 0 (copy) but the "
                                             "input has rank %d", i, x->ndim);
            s[i] = x->shape[i];
        } else if (s[i] < -1) {
            return ox_fail(e, GF_ERR_SHAPE, "shape entry %d is %lld", i, (long long)s[i]);
        }
    }
    int64_t known = 1; /* checked here: a file's shape may overflow a plain product */
    bool zero = false;
    for (int i = 0; i < n; i++)
        if (s[i] != -1) known = ox_mul(known, s[i]), zero |= s[i] == 0;
    if (!zero && known > x->numel) {
        char sx[GF_SHAPE_BUF];
        return ox_fail(e, GF_ERR_SHAPE,
                       "target shape needs more than the %lld elements of input %s",
                       (long long)x->numel, gf_shape_str(x, sx, sizeof sx));
    }
    return (e->out[0] = gf_reshape(e->ctx, x, n, s)) != NULL;
}

bool ox_op_flatten(ox_exec *e) {
    gf_tensor *x = e->in[0];
    int64_t axis = ox_attr_int(e->node, "axis", 1);
    if (axis < 0) axis += x->ndim;
    if (axis < 0 || axis > x->ndim)
        return ox_fail(e, GF_ERR_INVALID, "axis %lld is out of range for rank %d",
                       (long long)ox_attr_int(e->node, "axis", 1), x->ndim);
    int64_t s[2] = {gf_numel_of((int)axis, x->shape),
                    gf_numel_of(x->ndim - (int)axis, x->shape + axis)};
    return (e->out[0] = gf_reshape(e->ctx, x, 2, s)) != NULL;
}

bool ox_op_transpose(ox_exec *e) {
    gf_tensor *x = e->in[0];
    const int64_t *p;
    int n = ox_attr_ints(e->node, "perm", &p);
    int perm[GF_MAX_DIMS];
    if (p && n != x->ndim)
        return ox_fail(e, GF_ERR_INVALID, "perm has %d entries for an input of rank %d", n,
                       x->ndim);
    for (int i = 0; i < x->ndim; i++) perm[i] = p ? (int)p[i] : x->ndim - 1 - i;
    return (e->out[0] = gf_permute(e->ctx, x, perm)) != NULL;
}

bool ox_op_squeeze(ox_exec *e) {
    gf_tensor *x = e->in[0];
    int64_t ax[OX_MAX_LIST];
    bool given;
    int n = ints_attr_or_input(e, "axes", 13, 1, ax, &given);
    if (n < 0) return false;
    bool drop[GF_MAX_DIMS] = {false};
    for (int i = 0; i < n; i++) {
        int a;
        if (!ox_axis(e, ax[i], x->ndim, &a)) return false;
        if (x->shape[a] != 1)
            return ox_fail(e, GF_ERR_SHAPE, "axis %d has size %lld, not 1", a,
                           (long long)x->shape[a]);
        drop[a] = true;
    }
    int64_t s[GF_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < x->ndim; d++)
        if (!(n ? drop[d] : x->shape[d] == 1)) s[nd++] = x->shape[d];
    return (e->out[0] = gf_reshape(e->ctx, x, nd, s)) != NULL;
}

bool ox_op_unsqueeze(ox_exec *e) {
    gf_tensor *x = e->in[0];
    int64_t ax[OX_MAX_LIST];
    bool given;
    int n = ints_attr_or_input(e, "axes", 13, 1, ax, &given);
    if (n < 0) return false;
    const int r = x->ndim + n;
    if (r > GF_MAX_DIMS)
        return ox_fail(e, GF_ERR_SHAPE, "output rank %d (at most %d)", r, GF_MAX_DIMS);
    bool ins[GF_MAX_DIMS] = {false};
    for (int i = 0; i < n; i++) {
        int a;
        if (!ox_axis(e, ax[i], r, &a)) return false;
        if (ins[a]) return ox_fail(e, GF_ERR_INVALID, "axis %lld appears twice", (long long)ax[i]);
        ins[a] = true;
    }
    int64_t s[GF_MAX_DIMS];
    for (int d = 0, k = 0; d < r; d++) s[d] = ins[d] ? 1 : x->shape[k++];
    return (e->out[0] = gf_reshape(e->ctx, x, r, s)) != NULL;
}

/* ---- concat, split, slice -------------------------------------------------------------------- */

/* Concat of int64 tensors (shape lists), which gf_concat does not take. */
static gf_tensor *concat_i64(ox_exec *e, int a) {
    gf_tensor *x0 = e->in[0];
    int64_t shape[GF_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof shape);
    shape[a] = 0;
    for (int i = 0; i < e->n_in; i++) {
        gf_tensor *t = e->in[i];
        bool ok = t->ndim == x0->ndim;
        for (int d = 0; ok && d < t->ndim; d++) ok = d == a || t->shape[d] == x0->shape[d];
        if (!ok)
            return ox_fail(e, GF_ERR_SHAPE, "input %d does not match input 0 outside axis %d", i,
                           a),
                   NULL;
        shape[a] += t->shape[a];
    }
    gf_tensor *o = gf_empty(e->ctx, GF_I64, x0->ndim, shape);
    if (!o) return NULL;
    const int64_t outer = gf_numel_of(a, shape), ochunk = gf_numel_of(x0->ndim - a, shape + a);
    int64_t at = 0;
    for (int i = 0; i < e->n_in; i++) {
        const int64_t chunk = gf_numel_of(x0->ndim - a, e->in[i]->shape + a);
        const int64_t *p = gf_contig_i64(e->ctx, e->in[i]);
        if (!p) return NULL;
        for (int64_t r = 0; r < outer; r++)
            memcpy(gf_i64(o) + r * ochunk + at, p + r * chunk, sizeof(int64_t) * (size_t)chunk);
        at += chunk;
    }
    return o;
}

bool ox_op_concat(ox_exec *e) {
    for (int i = 0; i < e->n_in; i++)
        if (!e->in[i] || e->in[i]->dtype != e->in[0]->dtype)
            return ox_fail(e, GF_ERR_DTYPE, "input %d is missing or of another type", i);
    int a;
    if (!ox_axis(e, ox_attr_int(e->node, "axis", e->node->opset < 4 ? 1 : 0), e->in[0]->ndim, &a))
        return false;
    e->out[0] = e->in[0]->dtype == GF_F32 ? gf_concat(e->ctx, e->in, e->n_in, a) : concat_i64(e, a);
    return e->out[0] != NULL;
}

bool ox_op_split(ox_exec *e) {
    gf_tensor *x = e->in[0];
    int a;
    if (!ox_axis(e, ox_attr_int(e->node, "axis", 0), x->ndim, &a)) return false;
    int64_t sizes[OX_MAX_LIST];
    bool given;
    int n = ints_attr_or_input(e, "split", 13, 1, sizes, &given);
    if (n < 0) return false;
    if (e->n_out > OX_MAX_LIST) return ox_fail(e, GF_ERR_INVALID, "%d outputs", e->n_out);
    if (!given || n == 0) { /* equal parts; opset 18's num_outputs lets the last be smaller */
        n = e->n_out;
        int64_t part = (x->shape[a] + n - 1) / n;
        if (x->shape[a] % n && e->node->opset < 18)
            return ox_fail(e, GF_ERR_SHAPE,
                           "axis %d of size %lld does not split into %d equal parts", a,
                           (long long)x->shape[a], n);
        for (int i = 0; i < n; i++) {
            int64_t left = x->shape[a] - part * i;
            sizes[i] = left < part ? (left > 0 ? left : 0) : part;
        }
    }
    if (n != e->n_out)
        return ox_fail(e, GF_ERR_INVALID, "%d split sizes for %d outputs", n, e->n_out);
    return gf_split(e->ctx, x, sizes, n, a, e->out) == GF_OK;
}

/* x along axis a from start by step (< 0), count elements: a take of explicit indices. */
static gf_tensor *slice_backwards(ox_exec *e, gf_tensor *x, int a, int64_t start, int64_t step,
                                  int64_t count) {
    gf_tensor *idx = gf_empty(e->ctx, GF_I64, 1, &count);
    if (!idx) return NULL;
    for (int64_t i = 0; i < count; i++) gf_i64(idx)[i] = start + i * step;
    return gf_take(e->ctx, x, idx, a);
}

/* One axis of Slice, with ONNX's clamping (INT64_MAX / INT64_MIN ends are common). */
static gf_tensor *slice_axis(ox_exec *e, gf_tensor *x, int a, int64_t start, int64_t end,
                             int64_t step) {
    const int64_t dim = x->shape[a];
    if (step == 0) return ox_fail(e, GF_ERR_INVALID, "step 0 on axis %d", a), NULL;
    if (start < 0) start = start < -dim ? 0 : start + dim;
    if (end < 0) end = end < -dim ? -1 : end + dim;
    if (step > 0) {
        start = start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        if (end < start) end = start;
        return gf_slice(e->ctx, x, a, start, end, step);
    }
    start = start > dim - 1 ? dim - 1 : start;
    end = end > dim - 1 ? dim - 1 : end;
    int64_t count = start > end ? (start - end + (-step) - 1) / (-step) : 0;
    return slice_backwards(e, x, a, start, step, count);
}

bool ox_op_slice(ox_exec *e) {
    gf_tensor *x = e->in[0];
    int64_t st[OX_MAX_LIST], en[OX_MAX_LIST], ax[OX_MAX_LIST], sp[OX_MAX_LIST];
    int ns, ne, na, nsp = 0;
    bool g1, g2, ga, gs = false;
    if ((ns = ints_attr_or_input(e, "starts", 10, 1, st, &g1)) < 0 ||
        (ne = ints_attr_or_input(e, "ends", 10, 2, en, &g2)) < 0 ||
        (na = ints_attr_or_input(e, "axes", 10, 3, ax, &ga)) < 0)
        return false;
    if (e->node->opset >= 10 && e->n_in > 4 && e->in[4] &&
        (nsp = ox_input_ints(e, 4, sp, OX_MAX_LIST)) < 0)
        return false;
    gs = nsp > 0;
    if (ns != ne || (ga && na != ns) || (gs && nsp != ns))
        return ox_fail(e, GF_ERR_INVALID, "starts, ends, axes and steps differ in length (%d, %d, "
                       "%d, %d)", ns, ne, ga ? na : ns, gs ? nsp : ns);
    gf_tensor *y = x;
    for (int i = 0; y && i < ns; i++) {
        int a;
        if (!ox_axis(e, ga ? ax[i] : i, x->ndim, &a)) return false;
        y = slice_axis(e, y, a, st[i], en[i], gs ? sp[i] : 1);
    }
    return (e->out[0] = y) != NULL;
}

/* ---- gathering ------------------------------------------------------------------------------- */

bool ox_op_gather(ox_exec *e) {
    int a;
    gf_tensor *idx = ox_as_i64(e, e->in[1]), *x = e->in[0];
    if (!idx || !ox_axis(e, ox_attr_int(e->node, "axis", 0), x->ndim, &a)) return false;
    int64_t rest = x->shape[a] ? x->numel / x->shape[a] : 0;
    if (!ox_check_grow(e, rest && idx->numel > INT64_MAX / rest ? INT64_MAX : rest * idx->numel,
                       x->numel > idx->numel ? x->numel : idx->numel, "the gathered output"))
        return false;
    return (e->out[0] = gf_take(e->ctx, e->in[0], idx, a)) != NULL;
}

bool ox_op_gather_elements(ox_exec *e) {
    int a;
    gf_tensor *idx = ox_as_i64(e, e->in[1]);
    if (!idx || !ox_axis(e, ox_attr_int(e->node, "axis", 0), e->in[0]->ndim, &a)) return false;
    if (idx->ndim != e->in[0]->ndim)
        return ox_fail(e, GF_ERR_SHAPE, "indices have rank %d, data rank %d", idx->ndim,
                       e->in[0]->ndim);
    return (e->out[0] = gf_gather(e->ctx, e->in[0], a, idx)) != NULL;
}

/* GatherND as a take of flat indices over data with the indexed axes merged. */
bool ox_op_gather_nd(ox_exec *e) {
    gf_tensor *x = e->in[0], *idx = ox_as_i64(e, e->in[1]);
    if (!idx) return false;
    const int b = (int)ox_attr_int(e->node, "batch_dims", 0);
    const int k = idx->ndim ? (int)idx->shape[idx->ndim - 1] : 0;
    if (b < 0 || idx->ndim < 1 || b >= idx->ndim || b + k > x->ndim)
        return ox_fail(e, GF_ERR_SHAPE, "batch_dims %d with indices of rank %d and data of rank %d",
                       b, idx->ndim, x->ndim);
    for (int d = 0; d < b; d++)
        if (idx->shape[d] != x->shape[d])
            return ox_fail(e, GF_ERR_SHAPE, "batch dimension %d differs", d);
    const int64_t batch = gf_numel_of(b, x->shape), cells = gf_numel_of(k, x->shape + b);
    const int64_t per = gf_numel_of(idx->ndim - 1 - b, idx->shape + b);
    int64_t shape[GF_MAX_DIMS], oshape[GF_MAX_DIMS];
    int nd = 0, ond = 0;
    shape[nd++] = batch * cells;
    for (int d = b + k; d < x->ndim; d++) shape[nd++] = x->shape[d];
    for (int d = 0; d < idx->ndim - 1; d++) oshape[ond++] = idx->shape[d];
    for (int d = b + k; d < x->ndim; d++) oshape[ond++] = x->shape[d];
    if (ond > GF_MAX_DIMS) return ox_fail(e, GF_ERR_SHAPE, "output rank %d", ond);
    int64_t n = batch * per;
    gf_tensor *flat = gf_empty(e->ctx, GF_I64, 1, &n);
    const int64_t *pi = flat ? gf_contig_i64(e->ctx, idx) : NULL;
    if (!pi) return false;
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int j = 0; j < k; j++) {
            int64_t dim = x->shape[b + j], v = pi[i * k + j];
            if (v < -dim || v >= dim)
                return ox_fail(e, GF_ERR_INVALID,
                               "index %lld out of range for "
                               "dimension %lld",
                               (long long)v, (long long)dim);
            off = off * dim + (v < 0 ? v + dim : v);
        }
        gf_i64(flat)[i] = (i / (per ? per : 1)) * cells + off;
    }
    gf_tensor *y = gf_take(e->ctx, gf_reshape(e->ctx, x, nd, shape), flat, 0);
    return (e->out[0] = gf_reshape(e->ctx, y, ond, oshape)) != NULL;
}

/* ---- shapes as tensors ----------------------------------------------------------------------- */

bool ox_op_shape(ox_exec *e) {
    gf_tensor *x = e->in[0];
    int64_t r = x->ndim, s = ox_attr_int(e->node, "start", 0), en = ox_attr_int(e->node, "end", r);
    if (s < 0) s += r;
    if (en < 0) en += r;
    s = s < 0 ? 0 : s > r ? r : s;
    en = en < 0 ? 0 : en > r ? r : en;
    return (e->out[0] = ox_i64_vec(e, en > s ? en - s : 0, x->shape + s)) != NULL;
}

bool ox_op_size(ox_exec *e) {
    gf_tensor *o = ox_i64_empty(e, 0, NULL);
    if (o) gf_i64(o)[0] = e->in[0]->numel;
    return (e->out[0] = o) != NULL;
}

bool ox_op_constant_of_shape(ox_exec *e) {
    int64_t s[OX_MAX_LIST];
    int n = ox_input_ints(e, 0, s, OX_MAX_LIST);
    if (n < 0) return false;
    if (n > GF_MAX_DIMS) return ox_fail(e, GF_ERR_SHAPE, "rank %d (at most %d)", n, GF_MAX_DIMS);
    int64_t numel = 1;
    for (int i = 0; i < n; i++) {
        if (s[i] < 0) return ox_fail(e, GF_ERR_SHAPE, "dimension %d is %lld", i, (long long)s[i]);
        numel = ox_mul(numel, s[i]);
    }
    if (!ox_check_numel(e, numel, "the output")) return false;
    const ox_attr *v = ox_attr_get(e->node, "value");
    const gf_tensor *val = v && v->type == OX_A_TENSOR ? v->t : NULL;
    if (v && (!val || val->numel != 1))
        return ox_fail(e, GF_ERR_INVALID, "value must hold one number");
    gf_tensor *o = gf_empty(e->ctx, val ? val->dtype : GF_F32, n, s);
    if (!o) return false;
    for (int64_t i = 0; i < numel; i++) {
        if (o->dtype == GF_F32) gf_f32(o)[i] = val ? gf_get_f32(val, 0) : 0.0f;
        else gf_i64(o)[i] = gf_get_i64(val, 0);
    }
    return (e->out[0] = o) != NULL;
}

bool ox_op_constant(ox_exec *e) {
    const ox_node *n = e->node;
    for (int i = 0; i < n->n_attr; i++) {
        const ox_attr *a = &n->attr[i];
        if (!strcmp(a->name, "value") && a->type == OX_A_TENSOR) {
            if (!a->t)
                return ox_fail(e, GF_ERR_DTYPE, "value of type %s", gf_onnx_type_name(a->t_elem));
            e->out[0] = gf_view_raw(e->ctx, a->t->dtype, a->t->ndim, a->t->shape, NULL, a->t->data);
        } else if (!strcmp(a->name, "value_float") || !strcmp(a->name, "value_int")) {
            bool f = a->name[6] == 'f';
            if ((e->out[0] = gf_empty(e->ctx, f ? GF_F32 : GF_I64, 0, NULL))) {
                if (f) gf_f32(e->out[0])[0] = a->f;
                else gf_i64(e->out[0])[0] = a->i;
            }
        } else if (!strcmp(a->name, "value_floats") || !strcmp(a->name, "value_ints")) {
            bool f = a->name[6] == 'f';
            int64_t len = a->n;
            if ((e->out[0] = gf_empty(e->ctx, f ? GF_F32 : GF_I64, 1, &len)) && len)
                memcpy(e->out[0]->data, f ? (void *)a->floats : (void *)a->ints,
                       (size_t)len * (f ? sizeof(float) : sizeof(int64_t)));
        } else {
            continue;
        }
        return e->out[0] != NULL;
    }
    return ox_fail(e, GF_ERR_INVALID, "no value, value_float(s) or value_int(s) attribute (sparse "
                   "and string constants are not supported)");
}

/* ---- casts ----------------------------------------------------------------------------------- */

/* x rounded to the nearest float16 / bfloat16 value (ties to even), as a float. */
static float round_half(float x) {
    if (!isfinite(x)) return x;
    float a = fabsf(x);
    if (a >= 65520.0f) return copysignf(INFINITY, x);
    if (a < 6.103515625e-05f) return copysignf(nearbyintf(a * 16777216.0f) / 16777216.0f, x);
    int ex;
    frexpf(a, &ex);
    float q = ldexpf(1.0f, ex - 11); /* spacing of halves in [2^(ex-1), 2^ex) */
    return copysignf(nearbyintf(a / q) * q, x);
}

static float round_bf16(float x) {
    if (!isfinite(x)) return x;
    uint32_t b;
    memcpy(&b, &x, 4);
    b += 0x7fff + ((b >> 16) & 1);
    b &= 0xffff0000u;
    memcpy(&x, &b, 4);
    return x;
}

static int64_t wrap_int(int64_t v, int to) {
    switch (to) {
    case GF_ONNX_UINT8: return (uint8_t)v;
    case GF_ONNX_INT8: return (int8_t)v;
    case GF_ONNX_UINT16: return (uint16_t)v;
    case GF_ONNX_INT16: return (int16_t)v;
    case GF_ONNX_UINT32: return (uint32_t)v;
    case GF_ONNX_INT32: return (int32_t)v;
    case GF_ONNX_BOOL: return v != 0;
    default: return v;
    }
}

static bool cast_to(ox_exec *e, int to) {
    gf_tensor *x = e->in[0];
    gf_dtype dt;
    if (!gf_onnx_type_dtype(to, &dt))
        return ox_fail(e, GF_ERR_DTYPE, "cast to %s (%d) is not supported", gf_onnx_type_name(to),
                       to);
    if (dt == GF_F32) {
        if (to == GF_ONNX_FLOAT || to == GF_ONNX_DOUBLE)
            return (e->out[0] = ox_as_f32(e, x)) != NULL;
        gf_tensor *f = ox_as_f32(e, x), *o = f ? gf_empty(e->ctx, GF_F32, x->ndim, x->shape) : NULL;
        if (!o) return false;
        for (int64_t i = 0; i < x->numel; i++) {
            float v = gf_get_f32(f, i);
            gf_f32(o)[i] = to == GF_ONNX_FLOAT16 ? round_half(v) : round_bf16(v);
        }
        return (e->out[0] = o) != NULL;
    }
    gf_tensor *o = gf_empty(e->ctx, GF_I64, x->ndim, x->shape);
    if (!o) return false;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t v;
        if (x->dtype == GF_F32) {
            float f = gf_get_f32(x, i);
            v = to == GF_ONNX_BOOL ? f != 0.0f : isnan(f) ? 0 : fabsf(f) < 9.2e18f ? (int64_t)f
                : f > 0 ? INT64_MAX : INT64_MIN;
        } else {
            v = gf_get_i64(x, i);
        }
        gf_i64(o)[i] = wrap_int(v, to);
    }
    return (e->out[0] = o) != NULL;
}

bool ox_op_cast(ox_exec *e) {
    const ox_attr *a = ox_attr_get(e->node, "to");
    if (!a) return ox_fail(e, GF_ERR_INVALID, "no 'to' attribute");
    if (a->type == OX_A_STRING) { /* opset 1 named the type */
        static const char *const names[] = {"",        "FLOAT",  "UINT8",  "INT8",   "UINT16",
                                            "INT16",   "INT32",  "INT64",  "STRING", "BOOL",
                                            "FLOAT16", "DOUBLE", "UINT32", "UINT64"};
        for (int t = 1; t < 14; t++)
            if (!strcmp(a->s, names[t])) return cast_to(e, t);
        return ox_fail(e, GF_ERR_DTYPE, "cast to '%s' is not supported", a->s);
    }
    return cast_to(e, (int)a->i);
}

bool ox_op_cast_like(ox_exec *e) {
    int id = e->node->in[1];
    int elem = id >= 0 ? e->m->values[id].elem : 0;
    if (!elem) elem = e->in[1]->dtype == GF_F32 ? GF_ONNX_FLOAT : GF_ONNX_INT64;
    return cast_to(e, elem);
}
