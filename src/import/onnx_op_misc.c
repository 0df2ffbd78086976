/* Smaller ONNX ops: the window generators (Hann, Hamming, Blackman), linear quantization
 * (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear: quantized values held as int64,
 * QDQ models then run in float), MaxUnpool, Det and Unique. MaxUnpool and Unique's values are
 * gathers of their input (differentiable); quantization, Det and the indices carry no
 * gradient. */
#include "import/onnx_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- windows --------------------------------------------------------------------------------- */

bool ox_op_window(ox_exec *e) {
    double n;
    if (!ox_input_scalar(e, 0, &n)) return false;
    if (n < 0 || n > 1e9 || !ox_check_numel(e, (int64_t)n, "the window")) return false;
    const int64_t size = (int64_t)n;
    const bool periodic = ox_attr_int(e->node, "periodic", 1) != 0;
    const double m = periodic ? (double)size : (double)(size - 1);
    gf_dtype dt;
    if (!gf_onnx_type_dtype((int)ox_attr_int(e->node, "output_datatype", GF_ONNX_FLOAT), &dt))
        return ox_fail(e, GF_ERR_DTYPE, "output_datatype is not a number type");
    gf_tensor *o = gf_empty(e->ctx, dt, 1, &size);
    if (!o) return false;
    const char *op = e->node->op;
    for (int64_t i = 0; i < size; i++) {
        double x = m > 0 ? 2 * 3.14159265358979323846 * (double)i / m : 0, v;
        if (!strcmp(op, "HannWindow")) v = 0.5 - 0.5 * cos(x);
        else if (!strcmp(op, "HammingWindow")) v = 25.0 / 46 - (1 - 25.0 / 46) * cos(x);
        else v = 0.42 - 0.5 * cos(x) + 0.08 * cos(2 * x);
        if (dt == GF_F32) gf_f32(o)[i] = (float)v;
        else gf_i64(o)[i] = (int64_t)v;
    }
    return (e->out[0] = o) != NULL;
}

/* ---- quantization ---------------------------------------------------------------------------- */

/* The integer range of the zero point's type (uint8 when none is given). */
static void qrange(ox_exec *e, int zp_input, double *lo, double *hi) {
    int id = zp_input < e->node->n_in ? e->node->in[zp_input] : -1;
    int t = id >= 0 ? e->m->values[id].elem : GF_ONNX_UINT8;
    *lo = t == GF_ONNX_INT8  ? -128
        : t == GF_ONNX_INT16 ? -32768
        : t == GF_ONNX_INT32 ? -2147483648.0
                             : 0;
    *hi = t == GF_ONNX_INT8 ? 127 : t == GF_ONNX_UINT16 ? 65535 : t == GF_ONNX_INT16 ? 32767
        : t == GF_ONNX_INT32 ? 2147483647.0 : 255;
}

/* Element i's position along the quantization axis (per-axis scales), or 0 (per tensor). */
static int64_t qchannel(const gf_tensor *x, const gf_tensor *scale, int axis, int64_t i) {
    if (scale->numel == 1) return 0;
    int64_t inner = gf_numel_of(x->ndim - axis - 1, x->shape + axis + 1);
    return (i / inner) % x->shape[axis];
}

static bool quantize(ox_exec *e, bool de) {
    gf_tensor *x = e->in[0], *sc = e->in[1], *zp = e->n_in > 2 ? e->in[2] : NULL;
    if (!sc || sc->dtype != GF_F32) return ox_fail(e, GF_ERR_DTYPE, "scale must be float");
    int a = 0;
    if (sc->numel > 1 && !ox_axis(e, ox_attr_int(e->node, "axis", 1), x->ndim, &a)) return false;
    if (sc->numel > 1 && (sc->ndim != 1 || sc->numel != x->shape[a]))
        return ox_fail(e, GF_ERR_SHAPE, "per-axis scale of %lld values for an axis of %lld",
                       (long long)sc->numel, (long long)x->shape[a]);
    if (zp && zp->numel != sc->numel)
        return ox_fail(e, GF_ERR_SHAPE, "zero point and scale differ in size");
    double lo, hi;
    qrange(e, 2, &lo, &hi);
    gf_tensor *o = gf_empty(e->ctx, de ? GF_F32 : GF_I64, x->ndim, x->shape);
    if (!o) return false;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t c = qchannel(x, sc, a, i);
        double s = gf_get_f32(sc, c), z = zp ? (double)gf_get_i64(ox_as_i64(e, zp), c) : 0;
        if (de) {
            double v = x->dtype == GF_F32 ? gf_get_f32(x, i) : (double)gf_get_i64(x, i);
            gf_f32(o)[i] = (float)((v - z) * s);
        } else {
            double q =
                (double)nearbyintf(gf_get_f32(x, i) / (float)s) + z; /* in float, halves to even */
            gf_i64(o)[i] = (int64_t)(q < lo ? lo : q > hi ? hi : q);
        }
    }
    return (e->out[0] = o) != NULL;
}

bool ox_op_quantize(ox_exec *e) { return ox_need(e, 0, GF_F32) && quantize(e, false); }
bool ox_op_dequantize(ox_exec *e) { return quantize(e, true); }

bool ox_op_dynamic_quantize(ox_exec *e) {
    gf_tensor *x = e->in[0];
    if (!ox_need(e, 0, GF_F32)) return false;
    double mn = 0, mx = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        double v = gf_get_f32(x, i);
        mn = v < mn ? v : mn, mx = v > mx ? v : mx;
    }
    const float scale = (float)((mx - mn) / 255.0);
    double zpd = scale ? nearbyint(-mn / scale) : 0;
    const int64_t zp = (int64_t)(zpd < 0 ? 0 : zpd > 255 ? 255 : zpd);
    gf_tensor *y = gf_empty(e->ctx, GF_I64, x->ndim, x->shape),
              *s = gf_empty(e->ctx, GF_F32, 0, NULL);
    gf_tensor *z = gf_empty(e->ctx, GF_I64, 0, NULL);
    if (!y || !s || !z) return false;
    for (int64_t i = 0; i < x->numel; i++) {
        double q = scale ? (double)nearbyintf(gf_get_f32(x, i) / scale) + (double)zp : (double)zp;
        gf_i64(y)[i] = (int64_t)(q < 0 ? 0 : q > 255 ? 255 : q);
    }
    gf_f32(s)[0] = scale, gf_i64(z)[0] = zp;
    e->out[0] = y;
    if (e->n_out > 1) e->out[1] = s;
    if (e->n_out > 2) e->out[2] = z;
    return true;
}

/* ---- MaxUnpool ------------------------------------------------------------------------------- */

bool ox_op_max_unpool(ox_exec *e) {
    gf_tensor *x = e->in[0], *idx = ox_as_i64(e, e->in[1]);
    if (!ox_need(e, 0, GF_F32) || !idx || idx->numel != x->numel || x->ndim < 3)
        return ox_fail(e, GF_ERR_SHAPE, "X [N, C, ...] and I of one shape expected");
    const int nsp = x->ndim - 2;
    const int64_t *ks, *st, *pa;
    int nk = ox_attr_ints(e->node, "kernel_shape", &ks), ns = ox_attr_ints(e->node, "strides", &st);
    int np = ox_attr_ints(e->node, "pads", &pa);
    if (nk != nsp || (st && ns != nsp) || (pa && np != 2 * nsp))
        return ox_fail(e, GF_ERR_INVALID, "kernel_shape, strides and pads must fit %d spatial axes",
                       nsp);
    /* the indices count positions in the default output; output_shape may pad it at the end */
    int64_t dflt[GF_MAX_DIMS] = {x->shape[0], x->shape[1]}, shape[GF_MAX_DIMS];
    for (int i = 0; i < nsp; i++) {
        int64_t s = st ? st[i] : 1, p = pa ? pa[i] + pa[i + nsp] : 0;
        if (s < 1 || s > (1 << 20) || ks[i] < 1 || ks[i] > (1 << 20) || p < 0 || p > (1 << 20))
            return ox_fail(e, GF_ERR_INVALID, "kernel, stride or pads out of range on axis %d", i);
        dflt[2 + i] = (x->shape[2 + i] - 1) * s + ks[i] - p;
    }
    memcpy(shape, dflt, sizeof shape);
    if (e->n_in > 2 && e->in[2] && ox_input_ints(e, 2, shape, GF_MAX_DIMS) != x->ndim)
        return ox_fail(e, GF_ERR_SHAPE, "output_shape must have rank %d", x->ndim);
    int64_t total = 1, dtotal = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (shape[d] < (d < 2 ? shape[d] : dflt[d]) || (d < 2 && shape[d] != dflt[d]) ||
            dflt[d] < 1)
            return ox_fail(e, GF_ERR_SHAPE, "output_shape dimension %d (%lld) is smaller than the "
                           "unpooled size %lld", d, (long long)shape[d], (long long)dflt[d]);
        total = ox_mul(total, shape[d]), dtotal = ox_mul(dtotal, dflt[d]);
    }
    if (!ox_check_grow(e, total, x->numel, "the unpooled output")) return false;
    gf_tensor *mask = gf_zeros(e->ctx, GF_I64, x->ndim, shape),
              *src = gf_zeros(e->ctx, GF_I64, x->ndim, shape);
    if (!mask || !src) return false;
    for (int64_t k = 0; k < idx->numel; k++) {
        int64_t p = gf_get_i64(idx, k), q = 0, rest = p;
        if (p < 0 || p >= dtotal)
            return ox_fail(e, GF_ERR_INVALID, "index %lld outside the output of %lld elements",
                           (long long)p, (long long)dtotal);
        int64_t coord[GF_MAX_DIMS];
        for (int d = x->ndim - 1; d >= 0; d--) coord[d] = rest % dflt[d], rest /= dflt[d];
        for (int d = 0; d < x->ndim; d++) q = q * shape[d] + coord[d];
        gf_i64(mask)[q] = 1, gf_i64(src)[q] = k;
    }
    gf_ctx *c = e->ctx;
    gf_tensor *vals =
        gf_reshape(c, gf_take(c, gf_reshape(c, x, 1, &x->numel), gf_reshape(c, src, 1, &total), 0),
                   x->ndim, shape);
    return (e->out[0] = gf_where(c, mask, vals, gf_full(c, 0, NULL, 0.0f))) != NULL;
}

/* ---- Det ------------------------------------------------------------------------------------- */

bool ox_op_det(ox_exec *e) {
    gf_tensor *x = e->in[0];
    if (!ox_need(e, 0, GF_F32) || x->ndim < 2 || x->shape[x->ndim - 1] != x->shape[x->ndim - 2])
        return ox_fail(e, GF_ERR_SHAPE, "expected [..., M, M]");
    const int64_t m = x->shape[x->ndim - 1], count = gf_numel_of(x->ndim - 2, x->shape);
    gf_tensor *o = gf_empty(e->ctx, GF_F32, x->ndim - 2, x->shape);
    double *a = o ? gf_scratch(e->ctx, sizeof(double) * (size_t)(m * m + 1)) : NULL;
    if (!a) return false;
    for (int64_t b = 0; b < count; b++) { /* LU with partial pivoting, in double */
        for (int64_t i = 0; i < m * m; i++) a[i] = gf_get_f32(x, b * m * m + i);
        double det = 1;
        for (int64_t col = 0; col < m && det != 0; col++) {
            int64_t piv = col;
            for (int64_t r = col + 1; r < m; r++)
                if (fabs(a[r * m + col]) > fabs(a[piv * m + col])) piv = r;
            if (a[piv * m + col] == 0) { det = 0; break; }
            if (piv != col) {
                for (int64_t k = 0; k < m; k++) {
                    double t = a[col * m + k];
                    a[col * m + k] = a[piv * m + k], a[piv * m + k] = t;
                }
                det = -det;
            }
            det *= a[col * m + col];
            for (int64_t r = col + 1; r < m; r++) {
                double f = a[r * m + col] / a[col * m + col];
                for (int64_t k = col; k < m; k++) a[r * m + k] -= f * a[col * m + k];
            }
        }
        gf_f32(o)[b] = (float)det;
    }
    return (e->out[0] = o) != NULL;
}

/* ---- Unique ---------------------------------------------------------------------------------- */

typedef struct {
    const gf_tensor *x;
    int64_t len, inner; /* slice = len consecutive blocks of inner */
    int axis_given;
} uq_ctx;

static _Thread_local const uq_ctx *uq_cur;

/* Slices i and j compared element by element (the axis's slices, or single elements). */
static int uq_cmp_items(int64_t i, int64_t j) {
    const uq_ctx *u = uq_cur;
    const int64_t dim = u->x->shape[u->axis_given >= 0 ? u->axis_given : 0];
    for (int64_t o = 0; o < u->len; o++)
        for (int64_t k = 0; k < u->inner; k++) {
            int64_t pi = (o * dim + i) * u->inner + k, pj = (o * dim + j) * u->inner + k;
            double a = u->x->dtype == GF_F32 ? gf_get_f32(u->x, pi) : (double)gf_get_i64(u->x, pi);
            double b = u->x->dtype == GF_F32 ? gf_get_f32(u->x, pj) : (double)gf_get_i64(u->x, pj);
            if (a != b) return a < b ? -1 : 1;
        }
    return 0;
}

static int uq_cmp(const void *a, const void *b) {
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    int c = uq_cmp_items(i, j);
    return c ? c : (i < j ? -1 : i > j);
}

static int by_value(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

bool ox_op_unique(ox_exec *e) {
    gf_tensor *x = e->in[0];
    const ox_attr *ax = ox_attr_get(e->node, "axis");
    int a = 0;
    if (!ax) x = gf_reshape(e->ctx, x, 1, &x->numel);
    else if (!ox_axis(e, ax->i, x->ndim, &a)) return false;
    if (!x) return false;
    uq_ctx u = {x, gf_numel_of(a, x->shape), gf_numel_of(x->ndim - a - 1, x->shape + a + 1), a};
    const int64_t n = x->shape[a];
    int64_t *order = gf_scratch(e->ctx, sizeof(int64_t) * (size_t)(3 * n + 1)), *first = order + n,
            *inv = first + n;
    if (!order) return false;
    for (int64_t i = 0; i < n; i++) order[i] = i;
    uq_cur = &u;
    qsort(order, (size_t)n, sizeof *order, uq_cmp); /* by value, then position: stable */
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) { /* first[k]: the first position of the k-th distinct value */
        if (i == 0 || uq_cmp_items(order[i], order[i - 1])) first[k++] = order[i];
        inv[order[i]] = k - 1;
    }
    if (!ox_attr_int(e->node, "sorted", 1)) { /* by first occurrence: renumber */
        int64_t *by_pos = gf_scratch(e->ctx, sizeof(int64_t) * (size_t)(2 * k + 1)),
                *rank = by_pos + k;
        if (!by_pos) return false;
        memcpy(by_pos, first, sizeof(int64_t) * (size_t)k);
        qsort(by_pos, (size_t)k, sizeof *by_pos, by_value); /* the first positions, ascending */
        for (int64_t r = 0; r < k; r++) { /* old rank of the value first seen at by_pos[r] */
            rank[inv[by_pos[r]]] = r;
        }
        for (int64_t i = 0; i < n; i++) inv[i] = rank[inv[i]];
        memcpy(first, by_pos, sizeof(int64_t) * (size_t)k);
    }
    gf_tensor *fi = ox_i64_vec(e, k, first), *iv = ox_i64_vec(e, n, inv),
              *cnt = gf_zeros(e->ctx, GF_I64, 1, &k);
    if (!fi || !iv || !cnt) return false;
    for (int64_t i = 0; i < n; i++) gf_i64(cnt)[inv[i]]++;
    e->out[0] = gf_take(e->ctx, x, fi, a);
    if (e->n_out > 1) e->out[1] = fi;
    if (e->n_out > 2) e->out[2] = iv;
    if (e->n_out > 3) e->out[3] = cnt;
    return e->out[0] != NULL;
}
