/* Resize (opsets 10 to 18) and Upsample: nearest, linear and cubic interpolation with every
 * coordinate transformation mode, computed one axis at a time from the last to the first, as
 * ONNX's reference does. Each axis is a weighted sum of gf_take's of the input at the taps'
 * indices, so the result is differentiable in the input. Indices outside the input take the
 * edge's value (tf_crop_and_resize's outside positions take extrapolation_value). */
#include "import/onnx_internal.h"

#include <math.h>
#include <string.h>

enum { RZ_NEAREST, RZ_LINEAR, RZ_CUBIC };

typedef struct rz {
    int mode;
    const char *coord, *nearest;
    double a;       /* cubic coefficient */
    bool exclude;   /* exclude_outside */
    double extrap;
} rz;

/* Where output position o of an axis of length in -> out (scale) reads the input. */
static double source(const rz *z, int64_t o, int64_t in, int64_t out, double scale, double r0,
                     double r1) {
    const char *c = z->coord;
    const double x = (double)o, width = scale * (double)in;
    if (!strcmp(c, "align_corners")) return width == 1 ? 0 : x * (double)(in - 1) / (width - 1);
    if (!strcmp(c, "asymmetric")) return x / scale;
    if (!strcmp(c, "tf_half_pixel_for_nn")) return (x + 0.5) / scale;
    if (!strcmp(c, "pytorch_half_pixel")) return width == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
    if (!strcmp(c, "tf_crop_and_resize")) {
        double v = width == 1 ? (r1 - r0) * (double)(in - 1) / 2
                              : x * (r1 - r0) * (double)(in - 1) / (width - 1);
        return v + r0 * (double)(in - 1);
    }
    (void)out;
    return (x + 0.5) / scale - 0.5; /* half_pixel */
}

static int64_t nearest(const char *mode, double x) {
    double f = floor(x);
    if (!strcmp(mode, "floor")) return (int64_t)f;
    if (!strcmp(mode, "ceil")) return (int64_t)ceil(x);
    if (x - f == 0.5) return (int64_t)(strcmp(mode, "round_prefer_ceil") ? f : f + 1);
    return (int64_t)floor(x + 0.5);
}

static double cubic(double t, double a) {
    t = fabs(t);
    if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
    if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
    return 0;
}

/* x resized along axis d to out elements. */
static gf_tensor *resize_axis(ox_exec *e, gf_tensor *x, int d, int64_t out, double scale,
                              const rz *z, double r0, double r1) {
    gf_ctx *c = e->ctx;
    const int64_t in = x->shape[d];
    const int taps = z->mode == RZ_NEAREST ? 1 : z->mode == RZ_LINEAR ? 2 : 4;
    gf_tensor *idx[4], *w[4], *mask = NULL;
    int64_t ws[GF_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++) ws[k] = k == d ? out : 1;
    for (int j = 0; j < taps; j++) {
        idx[j] = gf_empty(c, GF_I64, 1, &out);
        w[j] = gf_empty(c, GF_F32, x->ndim, ws);
        if (!idx[j] || !w[j]) return NULL;
    }
    const bool crop = !strcmp(z->coord, "tf_crop_and_resize");
    if (crop && !(mask = gf_empty(c, GF_I64, x->ndim, ws))) return NULL;
    for (int64_t o = 0; o < out; o++) {
        double s = source(z, o, in, out, scale, r0, r1), cf[4] = {1, 0, 0, 0};
        int64_t i0 = z->mode == RZ_NEAREST ? nearest(z->nearest, s) : (int64_t)floor(s), first = i0;
        double r = s - floor(s);
        if (z->mode == RZ_LINEAR) cf[0] = 1 - r, cf[1] = r;
        if (z->mode == RZ_CUBIC) {
            first = i0 - 1;
            for (int j = 0; j < 4; j++) cf[j] = cubic(r + 1 - j, z->a);
        }
        double sum = 0;
        for (int j = 0; j < taps; j++) {
            int64_t p = first + j;
            if (z->exclude && (p < 0 || p >= in)) cf[j] = 0;
            sum += cf[j];
            gf_i64(idx[j])[o] = p < 0 ? 0 : p >= in ? in - 1 : p;
        }
        for (int j = 0; j < taps; j++)
            gf_f32(w[j])[o] = (float)(z->exclude && sum != 0 ? cf[j] / sum : cf[j]);
        if (mask) gf_i64(mask)[o] = s >= 0 && s <= (double)(in - 1);
    }
    gf_tensor *y = NULL;
    for (int j = 0; j < taps; j++) {
        gf_tensor *t = gf_take(c, x, idx[j], d);
        if (taps > 1) t = gf_mul(c, t, w[j]);
        y = y ? gf_add(c, y, t) : t;
    }
    if (y && mask) y = gf_where(c, mask, y, gf_full(c, 0, NULL, (float)z->extrap));
    return y;
}

/* Output sizes and scales from the sizes or scales given (for axes, opset 18). */
static bool target(ox_exec *e, const gf_tensor *x, int si, int zi, int64_t *out, double *scale,
                   double *roi) {
    const int r = x->ndim;
    int64_t axes[GF_MAX_DIMS];
    const int64_t *av;
    int na = ox_attr_ints(e->node, "axes", &av);
    if (na > r) return ox_fail(e, GF_ERR_INVALID, "%d axes for rank %d", na, r);
    for (int i = 0; i < (na ? na : r); i++) {
        int a = i;
        if (na && !ox_axis(e, av[i], r, &a)) return false;
        axes[i] = a;
    }
    const int n = na ? na : r;
    for (int d = 0; d < r; d++) out[d] = x->shape[d], scale[d] = 1, roi[d] = 0, roi[d + r] = 1;
    gf_tensor *sc = si >= 0 && si < e->n_in ? e->in[si] : NULL,
              *sz = zi >= 0 && zi < e->n_in ? e->in[zi] : NULL;
    if (sz && sz->numel) {
        int64_t v[GF_MAX_DIMS];
        if (ox_input_ints(e, zi, v, GF_MAX_DIMS) != n)
            return ox_fail(e, GF_ERR_INVALID, "sizes must list %d values", n);
        for (int i = 0; i < n; i++) {
            int64_t a = axes[i];
            if (v[i] < 0) return ox_fail(e, GF_ERR_INVALID, "size %lld", (long long)v[i]);
            out[a] = v[i];
            scale[a] = x->shape[a] ? (double)v[i] / (double)x->shape[a] : 1;
        }
    } else if (sc && sc->numel) {
        if (sc->dtype != GF_F32 || sc->numel != n)
            return ox_fail(e, GF_ERR_INVALID, "scales must list %d floats", n);
        for (int i = 0; i < n; i++) {
            int64_t a = axes[i];
            double s = gf_get_f32(sc, i);
            if (!(s > 0) || s > 1e6) return ox_fail(e, GF_ERR_INVALID, "scale %g", s);
            scale[a] = s;
            out[a] = (int64_t)((double)x->shape[a] * s);
        }
    } else {
        return ox_fail(e, GF_ERR_INVALID, "neither scales nor sizes given");
    }
    gf_tensor *ri = e->node->opset >= 11 && e->n_in > 1 ? e->in[1] : NULL;
    if (ri && ri->numel) {
        if (ri->dtype != GF_F32 || ri->numel != 2 * n)
            return ox_fail(e, GF_ERR_INVALID, "roi must list %d floats", 2 * n);
        for (int i = 0; i < n; i++)
            roi[axes[i]] = gf_get_f32(ri, i), roi[axes[i] + r] = gf_get_f32(ri, i + n);
    }
    int64_t total = 1;
    for (int d = 0; d < r; d++)
        total = out[d] && total > INT64_MAX / out[d] ? INT64_MAX : total * out[d];
    return ox_check_grow(e, total, x->numel, "the resized output");
}

static bool resize(ox_exec *e, const rz *z, int si, int zi) {
    gf_tensor *x = e->in[0];
    if (!ox_need(e, 0, GF_F32)) return false;
    int64_t out[GF_MAX_DIMS];
    double scale[GF_MAX_DIMS], roi[2 * GF_MAX_DIMS];
    if (!target(e, x, si, zi, out, scale, roi)) return false;
    gf_tensor *y = x;
    const bool crop = !strcmp(z->coord, "tf_crop_and_resize");
    for (int d = x->ndim - 1; y && d >= 0; d--)
        if (out[d] != x->shape[d] || scale[d] != 1 || crop)
            y = resize_axis(e, y, d, out[d], scale[d], z, roi[d], roi[d + x->ndim]);
    return (e->out[0] = y) != NULL;
}

static int mode_of(ox_exec *e, const char *m) {
    if (!strcmp(m, "nearest")) return RZ_NEAREST;
    if (!strcmp(m, "linear") || !strcmp(m, "bilinear")) return RZ_LINEAR;
    if (!strcmp(m, "cubic")) return RZ_CUBIC;
    return ox_fail(e, GF_ERR_INVALID, "mode '%s' is not nearest, linear or cubic", m), -1;
}

bool ox_op_resize(ox_exec *e) {
    const ox_node *n = e->node;
    rz z = {0};
    if ((z.mode = mode_of(e, ox_attr_str(n, "mode", "nearest"))) < 0) return false;
    if (n->opset < 11) { /* Resize-10: Upsample's rules */
        z.coord = "asymmetric", z.nearest = "floor";
        return resize(e, &z, 1, -1);
    }
    z.coord = ox_attr_str(n, "coordinate_transformation_mode", "half_pixel");
    z.nearest = ox_attr_str(n, "nearest_mode", "round_prefer_floor");
    z.a = ox_attr_float(n, "cubic_coeff_a", -0.75f);
    z.exclude = ox_attr_int(n, "exclude_outside", 0) != 0;
    z.extrap = ox_attr_float(n, "extrapolation_value", 0.0f);
    if (ox_attr_int(n, "antialias", 0))
        return ox_fail(e, GF_ERR_INVALID, "antialias is not supported");
    const char *kar = ox_attr_str(n, "keep_aspect_ratio_policy", "stretch");
    if (strcmp(kar, "stretch"))
        return ox_fail(e, GF_ERR_INVALID, "keep_aspect_ratio_policy '%s' is not supported", kar);
    static const char *const coords[] = {"half_pixel",           "pytorch_half_pixel",
                                         "align_corners",        "asymmetric",
                                         "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    bool known = false;
    for (size_t i = 0; i < sizeof coords / sizeof *coords; i++)
        known |= !strcmp(coords[i], z.coord);
    if (!known)
        return ox_fail(e, GF_ERR_INVALID, "coordinate_transformation_mode '%s' is unknown",
                       z.coord);
    return resize(e, &z, 2, 3);
}

bool ox_op_upsample(ox_exec *e) {
    rz z = {0};
    if ((z.mode = mode_of(e, ox_attr_str(e->node, "mode", "nearest"))) < 0) return false;
    z.coord = "asymmetric", z.nearest = "floor";
    if (e->node->opset >= 9) return resize(e, &z, 1, -1);
    /* opsets 7 and 8: the scales are an attribute */
    const ox_attr *s = ox_attr_get(e->node, "scales");
    if (!s || s->type != OX_A_FLOATS || s->n != e->in[0]->ndim)
        return ox_fail(e, GF_ERR_INVALID, "scales must list one float per axis");
    int64_t n = s->n;
    gf_tensor *sc = gf_empty(e->ctx, GF_F32, 1, &n);
    if (!sc) return false;
    memcpy(sc->data, s->floats, sizeof(float) * (size_t)n);
    gf_tensor *ins[2] = {e->in[0], sc};
    ox_exec e2 = *e;
    e2.in = ins, e2.n_in = 2;
    bool ok = resize(&e2, &z, 1, -1);
    e->out[0] = e2.out[0];
    return ok;
}
