/* ONNX ops that build a larger or rearranged tensor: Pad (constant, reflect, edge), Expand,
 * Tile, DepthToSpace / SpaceToDepth, Trilu, Compress, and the generators Range, EyeLike,
 * OneHot, NonZero. Repetition and mirroring are index tensors fed to gf_take, so float data
 * keeps its gradient and int64 data takes the same path. */
#include "import/onnx_internal.h"

#include <math.h>
#include <string.h>

typedef int64_t (*index_map)(int64_t j, int64_t dim, int64_t arg);

/* x with axis a replaced by count positions map(j) (each in [0, dim)). */
static gf_tensor *take_map(ox_exec *e, gf_tensor *x, int a, int64_t count, index_map map,
                           int64_t arg) {
    if (!x) return NULL;
    const int64_t rest = x->shape[a] ? x->numel / x->shape[a] : 0;
    if (count < 0 || (rest && count > INT64_MAX / rest) ||
        !ox_check_grow(e, count * rest, x->numel, "the output"))
        return NULL;
    gf_tensor *idx = gf_empty(e->ctx, GF_I64, 1, &count);
    if (!idx) return NULL;
    for (int64_t j = 0; j < count; j++) gf_i64(idx)[j] = map(j, x->shape[a], arg);
    return gf_take(e->ctx, x, idx, a);
}

static int64_t map_mod(int64_t j, int64_t dim, int64_t arg) { (void)arg; return j % dim; }
static int64_t map_zero(int64_t j, int64_t dim, int64_t arg) {
    (void)j, (void)dim, (void)arg;
    return 0;
}
static int64_t map_edge(int64_t j, int64_t dim, int64_t before) {
    int64_t i = j - before;
    return i < 0 ? 0 : i >= dim ? dim - 1 : i;
}
static int64_t map_reflect(int64_t j, int64_t dim, int64_t before) {
    int64_t i = j - before;
    if (dim == 1) return 0;
    const int64_t period = 2 * (dim - 1);
    i %= period;
    if (i < 0) i += period;
    return i < dim ? i : period - i;
}

/* ---- Pad ------------------------------------------------------------------------------------- */

/* The pads of every axis: attributes before opset 11, inputs (with opset 18's axes) after. */
static bool pad_amounts(ox_exec *e, int r, int64_t *pb, int64_t *pe, double *value) {
    int64_t p[2 * OX_MAX_LIST], ax[OX_MAX_LIST];
    int n, na = 0;
    *value = 0;
    if (e->node->opset < 11) {
        const int64_t *v;
        n = ox_attr_ints(e->node, e->node->opset < 2 ? "paddings" : "pads", &v);
        if (n > 2 * OX_MAX_LIST) return ox_fail(e, GF_ERR_INVALID, "%d pads", n);
        if (n) memcpy(p, v, sizeof(int64_t) * (size_t)n);
        *value = ox_attr_float(e->node, "value", 0.0f);
    } else {
        if ((n = ox_input_ints(e, 1, p, 2 * OX_MAX_LIST)) < 0) return false;
        if (e->n_in > 2 && e->in[2] && e->in[2]->numel && !ox_input_scalar(e, 2, value))
            return false;
        if (e->n_in > 3 && e->in[3] && (na = ox_input_ints(e, 3, ax, OX_MAX_LIST)) < 0)
            return false;
    }
    const int k = na ? na : r;
    if (n != 2 * k) return ox_fail(e, GF_ERR_INVALID, "%d pads for %d axes", n, k);
    for (int d = 0; d < r; d++) pb[d] = pe[d] = 0;
    for (int i = 0; i < k; i++) {
        int a = i;
        if (na && !ox_axis(e, ax[i], r, &a)) return false;
        pb[a] = p[i], pe[a] = p[i + k];
    }
    return true;
}

bool ox_op_pad(ox_exec *e) {
    gf_tensor *x = e->in[0];
    const int r = x->ndim;
    int64_t pb[GF_MAX_DIMS], pe[GF_MAX_DIMS];
    double value;
    if (!pad_amounts(e, r, pb, pe, &value)) return false;
    const char *mode = ox_attr_str(e->node, "mode", "constant");
    int64_t total = 1;
    const int64_t big = (int64_t)1 << 40; /* pads beyond this cannot fit any limit */
    for (int d = 0; d < r; d++) {
        if (pb[d] < -big || pb[d] > big || pe[d] < -big || pe[d] > big)
            return ox_fail(e, GF_ERR_SHAPE, "pads %lld, %lld on axis %d are out of range",
                           (long long)pb[d], (long long)pe[d], d);
        int64_t s = x->shape[d] + pb[d] + pe[d];
        if (s < 0)
            return ox_fail(e, GF_ERR_SHAPE, "pads %lld, %lld crop axis %d of size %lld below 0",
                           (long long)pb[d], (long long)pe[d], d, (long long)x->shape[d]);
        total = ox_mul(total, s);
    }
    if (!ox_check_grow(e, total, x->numel, "the padded output")) return false;
    if (!strcmp(mode, "constant") && x->dtype == GF_F32) {
        int64_t pairs[2 * GF_MAX_DIMS];
        for (int k = 0; k < r; k++) pairs[2 * k] = pb[r - 1 - k], pairs[2 * k + 1] = pe[r - 1 - k];
        return (e->out[0] = gf_pad(e->ctx, x, pairs, 2 * r, (float)value)) != NULL;
    }
    bool reflect = !strcmp(mode, "reflect"), constant = !strcmp(mode, "constant");
    if (!reflect && !constant && strcmp(mode, "edge"))
        return ox_fail(e, GF_ERR_INVALID, "mode '%s' is not constant, reflect or edge", mode);
    gf_tensor *y = x;
    for (int d = 0; y && d < r; d++) {
        if (!pb[d] && !pe[d]) continue;
        if (x->shape[d] == 0)
            return ox_fail(e, GF_ERR_SHAPE, "cannot %s-pad the empty axis %d", mode, d);
        if (reflect && (pb[d] >= x->shape[d] || pe[d] >= x->shape[d]))
            return ox_fail(e, GF_ERR_SHAPE, "reflect pads %lld, %lld on axis %d of size %lld",
                           (long long)pb[d], (long long)pe[d], d, (long long)x->shape[d]);
        y = take_map(e, y, d, x->shape[d] + pb[d] + pe[d], reflect ? map_reflect : map_edge, pb[d]);
    }
    if (y && constant) { /* int64 data, constant mode: edge-pad, then overwrite the border */
        int64_t idx[GF_MAX_DIMS] = {0};
        for (int64_t i = 0; i < y->numel; i++) {
            bool border = false;
            for (int d = 0; d < r; d++)
                border |= idx[d] < pb[d] || idx[d] >= pb[d] + x->shape[d];
            if (border) gf_i64(y)[i] = (int64_t)value;
            gf_index_next(r, y->shape, idx);
        }
    }
    return (e->out[0] = y) != NULL;
}

/* ---- Expand, Tile ---------------------------------------------------------------------------- */

bool ox_op_expand(ox_exec *e) {
    gf_tensor *x = e->in[0];
    int64_t s[OX_MAX_LIST];
    int n = ox_input_ints(e, 1, s, OX_MAX_LIST);
    if (n < 0) return false;
    int r = n > x->ndim ? n : x->ndim;
    if (r > GF_MAX_DIMS)
        return ox_fail(e, GF_ERR_SHAPE, "output rank %d (at most %d)", r, GF_MAX_DIMS);
    int64_t xs[GF_MAX_DIMS], out[GF_MAX_DIMS], total = 1;
    for (int d = 0; d < r; d++) {
        int ix = d - (r - x->ndim), is = d - (r - n);
        xs[d] = ix >= 0 ? x->shape[ix] : 1;
        int64_t t = is >= 0 ? s[is] : 1;
        if (xs[d] != 1 && t != 1 && t != xs[d])
            return ox_fail(e, GF_ERR_SHAPE, "shape entry %d (%lld) does not broadcast with input "
                           "dimension %lld", is, (long long)t, (long long)xs[d]);
        if (t < 0) return ox_fail(e, GF_ERR_SHAPE, "shape entry %d is %lld", is, (long long)t);
        out[d] = xs[d] == 1 ? t : xs[d];
        total = ox_mul(total, out[d]);
    }
    if (!ox_check_grow(e, total, x->numel, "the output")) return false;
    gf_tensor *y = gf_reshape(e->ctx, x, r, xs);
    for (int d = 0; y && d < r; d++)
        if (xs[d] == 1 && out[d] != 1) y = take_map(e, y, d, out[d], map_zero, 0);
    return (e->out[0] = y) != NULL;
}

bool ox_op_tile(ox_exec *e) {
    gf_tensor *x = e->in[0];
    int64_t rep[OX_MAX_LIST];
    int n = ox_input_ints(e, 1, rep, OX_MAX_LIST);
    if (n < 0) return false;
    if (n != x->ndim) return ox_fail(e, GF_ERR_INVALID, "%d repeats for rank %d", n, x->ndim);
    int64_t total = 1;
    for (int d = 0; d < n; d++) {
        if (rep[d] < 0)
            return ox_fail(e, GF_ERR_INVALID, "repeat %d is %lld", d, (long long)rep[d]);
        total = ox_mul(total, ox_mul(x->shape[d], rep[d]));
    }
    if (!ox_check_grow(e, total, x->numel, "the output")) return false;
    gf_tensor *y = x;
    for (int d = 0; y && d < n; d++)
        if (rep[d] != 1) y = x->shape[d] ? take_map(e, y, d, x->shape[d] * rep[d], map_mod, 0)
                                         : y;
    return (e->out[0] = y) != NULL;
}

/* ---- DepthToSpace, SpaceToDepth -------------------------------------------------------------- */

static bool blocks(ox_exec *e, bool to_space) {
    gf_tensor *x = e->in[0];
    int64_t b = ox_attr_int(e->node, "blocksize", 0);
    if (x->ndim != 4 || b < 1)
        return ox_fail(e, GF_ERR_SHAPE, "expected [N, C, H, W] and blocksize >= 1");
    int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], w = x->shape[3];
    gf_ctx *ctx = e->ctx;
    gf_tensor *y;
    if (to_space) {
        if (c % (b * b))
            return ox_fail(e, GF_ERR_SHAPE, "channels %lld not divisible by %lld", (long long)c,
                           (long long)(b * b));
        bool crd = !strcmp(ox_attr_str(e->node, "mode", "DCR"), "CRD");
        int64_t s1[6] = {n, b, b, c / (b * b), h, w}, s2[6] = {n, c / (b * b), b, b, h, w};
        static const int p1[6] = {0, 3, 4, 1, 5, 2}, p2[6] = {0, 1, 4, 2, 5, 3};
        y = gf_permute(ctx, gf_reshape(ctx, x, 6, crd ? s2 : s1), crd ? p2 : p1);
        int64_t o[4] = {n, c / (b * b), h * b, w * b};
        y = gf_reshape(ctx, y, 4, o);
    } else {
        if (h % b || w % b)
            return ox_fail(e, GF_ERR_SHAPE, "height and width not divisible by %lld", (long long)b);
        int64_t s[6] = {n, c, h / b, b, w / b, b};
        static const int p[6] = {0, 3, 5, 1, 2, 4};
        y = gf_permute(ctx, gf_reshape(ctx, x, 6, s), p);
        int64_t o[4] = {n, c * b * b, h / b, w / b};
        y = gf_reshape(ctx, y, 4, o);
    }
    return (e->out[0] = y) != NULL;
}

bool ox_op_depth_to_space(ox_exec *e) { return blocks(e, true); }
bool ox_op_space_to_depth(ox_exec *e) { return blocks(e, false); }

/* ---- Trilu, Compress ------------------------------------------------------------------------- */

bool ox_op_trilu(ox_exec *e) {
    gf_tensor *x = e->in[0];
    double k = 0;
    if (e->n_in > 1 && e->in[1] && !ox_input_scalar(e, 1, &k)) return false;
    if (x->ndim < 2) return ox_fail(e, GF_ERR_SHAPE, "input of rank %d (at least 2)", x->ndim);
    const bool upper = ox_attr_int(e->node, "upper", 1) != 0;
    const int64_t rows = x->shape[x->ndim - 2], cols = x->shape[x->ndim - 1];
    int64_t ms[2] = {rows, cols};
    gf_tensor *mask = gf_empty(e->ctx, x->dtype, 2, ms);
    if (!mask) return false;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            bool keep = upper ? (double)(j - i) >= k : (double)(j - i) <= k;
            if (x->dtype == GF_F32) gf_f32(mask)[i * cols + j] = keep;
            else gf_i64(mask)[i * cols + j] = keep;
        }
    if (x->dtype == GF_F32) return (e->out[0] = gf_mul(e->ctx, x, mask)) != NULL;
    gf_tensor *o = gf_empty(e->ctx, GF_I64, x->ndim, x->shape);
    if (!o) return false;
    for (int64_t i = 0; i < x->numel; i++)
        gf_i64(o)[i] = gf_get_i64(x, i) * gf_i64(mask)[i % (rows * cols)];
    return (e->out[0] = o) != NULL;
}

bool ox_op_compress(ox_exec *e) {
    gf_tensor *x = e->in[0], *c = ox_as_i64(e, e->in[1]);
    if (!c) return false;
    const ox_attr *ax = ox_attr_get(e->node, "axis");
    int a = 0;
    if (!ax) x = gf_reshape(e->ctx, x, 1, &x->numel);
    else if (!ox_axis(e, ax->i, x->ndim, &a)) return false;
    if (!x || c->ndim != 1 || c->numel > x->shape[a])
        return ox_fail(e, GF_ERR_SHAPE, "condition of %lld values for an axis of %lld",
                       (long long)(c ? c->numel : 0), (long long)(x ? x->shape[a] : 0));
    int64_t n = 0;
    for (int64_t i = 0; i < c->numel; i++) n += gf_get_i64(c, i) != 0;
    gf_tensor *idx = gf_empty(e->ctx, GF_I64, 1, &n);
    if (!idx) return false;
    for (int64_t i = 0, k = 0; i < c->numel; i++)
        if (gf_get_i64(c, i)) gf_i64(idx)[k++] = i;
    return (e->out[0] = gf_take(e->ctx, x, idx, a)) != NULL;
}

/* ---- generators ------------------------------------------------------------------------------ */

bool ox_op_range(ox_exec *e) {
    double s, l, d;
    if (!ox_input_scalar(e, 0, &s) || !ox_input_scalar(e, 1, &l) || !ox_input_scalar(e, 2, &d))
        return false;
    if (d == 0 || !isfinite(s) || !isfinite(l) || !isfinite(d))
        return ox_fail(e, GF_ERR_INVALID, "range %g to %g by %g", s, l, d);
    double cnt = ceil((l - s) / d);
    int64_t n = cnt > 0 ? (cnt < 9e18 ? (int64_t)cnt : INT64_MAX) : 0;
    if (!ox_check_numel(e, n, "the range")) return false;
    gf_tensor *o = gf_empty(e->ctx, e->in[0]->dtype, 1, &n);
    if (!o) return false;
    for (int64_t i = 0; i < n; i++) {
        if (o->dtype == GF_F32) gf_f32(o)[i] = (float)s + (float)i * (float)d;
        else gf_i64(o)[i] = (int64_t)s + i * (int64_t)d;
    }
    return (e->out[0] = o) != NULL;
}

bool ox_op_eye_like(ox_exec *e) {
    gf_tensor *x = e->in[0];
    if (x->ndim != 2) return ox_fail(e, GF_ERR_SHAPE, "input of rank %d (must be 2)", x->ndim);
    const ox_attr *dt = ox_attr_get(e->node, "dtype");
    gf_dtype d = x->dtype;
    if (dt && !gf_onnx_type_dtype((int)dt->i, &d))
        return ox_fail(e, GF_ERR_DTYPE, "dtype %s is not supported", gf_onnx_type_name((int)dt->i));
    const int64_t k = ox_attr_int(e->node, "k", 0);
    gf_tensor *o = gf_zeros(e->ctx, d, 2, x->shape);
    if (!o) return false;
    for (int64_t i = 0; i < x->shape[0]; i++) {
        int64_t j = i + k;
        if (j < 0 || j >= x->shape[1]) continue;
        if (d == GF_F32) gf_f32(o)[i * x->shape[1] + j] = 1.0f;
        else gf_i64(o)[i * x->shape[1] + j] = 1;
    }
    return (e->out[0] = o) != NULL;
}

bool ox_op_one_hot(ox_exec *e) {
    gf_tensor *idx = e->in[0], *vals = e->in[2];
    double depth;
    if (!ox_input_scalar(e, 1, &depth) || !vals) return false;
    if (vals->numel != 2 || depth < 1 || depth > 1e9)
        return ox_fail(e, GF_ERR_INVALID, "depth %g and %lld values (need 2)", depth,
                       (long long)vals->numel);
    const int64_t dep = (int64_t)depth, r = idx->ndim + 1;
    if (r > GF_MAX_DIMS) return ox_fail(e, GF_ERR_SHAPE, "output rank %lld", (long long)r);
    int a;
    if (!ox_axis(e, ox_attr_int(e->node, "axis", -1), (int)r, &a)) return false;
    int64_t shape[GF_MAX_DIMS];
    for (int d = 0, k = 0; d < r; d++) shape[d] = d == a ? dep : idx->shape[k++];
    int64_t total = 1;
    for (int d = 0; d < r; d++) total = ox_mul(total, shape[d]);
    if (!ox_check_numel(e, total, "the output")) return false;
    gf_tensor *o = gf_empty(e->ctx, vals->dtype, (int)r, shape);
    if (!o) return false;
    const int64_t inner = gf_numel_of((int)r - a - 1, shape + a + 1);
    for (int64_t i = 0; i < o->numel; i++) {
        int64_t pos = (i / inner) % dep, src = (i / (inner * dep)) * inner + i % inner;
        double v = idx->dtype == GF_F32 ? gf_get_f32(idx, src) : (double)gf_get_i64(idx, src);
        int64_t h = (int64_t)v < 0 ? (int64_t)v + dep : (int64_t)v;
        int on = h == pos;
        if (o->dtype == GF_F32) gf_f32(o)[i] = gf_get_f32(vals, on);
        else gf_i64(o)[i] = gf_get_i64(vals, on);
    }
    return (e->out[0] = o) != NULL;
}

bool ox_op_nonzero(ox_exec *e) {
    gf_tensor *x = e->in[0];
    int64_t nnz = 0;
    for (int64_t i = 0; i < x->numel; i++)
        nnz += x->dtype == GF_F32 ? gf_get_f32(x, i) != 0.0f : gf_get_i64(x, i) != 0;
    int64_t shape[2] = {x->ndim, nnz};
    gf_tensor *o = gf_empty(e->ctx, GF_I64, 2, shape);
    if (!o) return false;
    int64_t idx[GF_MAX_DIMS] = {0}, k = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        if (x->dtype == GF_F32 ? gf_get_f32(x, i) != 0.0f : gf_get_i64(x, i) != 0) {
            for (int d = 0; d < x->ndim; d++) gf_i64(o)[d * nnz + k] = idx[d];
            k++;
        }
        gf_index_next(x->ndim, x->shape, idx);
    }
    return (e->out[0] = o) != NULL;
}
