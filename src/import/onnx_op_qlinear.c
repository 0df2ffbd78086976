/* Integer arithmetic on quantized tensors: MatMulInteger and QLinearMatMul multiply in int64
 * (exact), ConvInteger and QLinearConv convolve the zero-point-shifted values in float32
 * through gf_conv2d (exact while every sum stays below 2^24, as for 8-bit values and up to 256
 * products per output), then requantize: round(acc * a_scale * b_scale / y_scale) + y_zero,
 * halves to even, saturated to the zero point's type. No gradient. */
#include "import/onnx_internal.h"

#include <math.h>
#include <string.h>

/* The zero point of input idx at position k (per row / per channel when it has several). */
static int64_t zp_at(ox_exec *e, int idx, int64_t k) {
    gf_tensor *z = idx < e->n_in ? e->in[idx] : NULL;
    if (!z || !z->numel) return 0;
    return z->dtype == GF_I64 ? gf_get_i64(z, z->numel == 1 ? 0 : k)
                              : (int64_t)gf_get_f32(z, z->numel == 1 ? 0 : k);
}

/* (a - za) @ (b - zb) for a [.., M, K] and b [.., K, N] with equal batches (or 2-D b), exactly;
 * za per row of a or scalar, zb per column of b or scalar. */
static gf_tensor *int_matmul(ox_exec *e, gf_tensor *a, int za, gf_tensor *b, int zb) {
    if (!a || !b || a->ndim < 2 || b->ndim < 2 || a->shape[a->ndim - 1] != b->shape[b->ndim - 2] ||
        (b->ndim > 2 &&
         (b->ndim != a->ndim ||
          memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)(a->ndim - 2)))))
        return ox_fail(e, GF_ERR_SHAPE,
                       "expected A [..., M, K] and B [K, N] or [..., K, N] of the same batch"),
               NULL;
    const int64_t m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1], n = b->shape[b->ndim - 1];
    const int64_t batch = gf_numel_of(a->ndim - 2, a->shape);
    int64_t shape[GF_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[a->ndim - 1] = n;
    if (!ox_check_grow(e, ox_mul(ox_mul(batch, m), n), a->numel > b->numel ? a->numel : b->numel,
                       "the product"))
        return NULL;
    gf_tensor *o = gf_empty(e->ctx, GF_I64, a->ndim, shape);
    gf_tensor *ai = ox_as_i64(e, a), *bi = ox_as_i64(e, b);
    if (!o || !ai || !bi) return NULL;
    const int64_t *pa = gf_contig_i64(e->ctx, ai), *pb = gf_contig_i64(e->ctx, bi);
    if (!pa || !pb) return NULL;
    for (int64_t t = 0; t < batch; t++) {
        const int64_t *ab = pa + t * m * k, *bb = pb + (b->ndim > 2 ? t * k * n : 0);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                int64_t acc = 0, zai = zp_at(e, za, i), zbj = zp_at(e, zb, j);
                for (int64_t q = 0; q < k; q++)
                    acc += (ab[i * k + q] - zai) * (bb[q * n + j] - zbj);
                gf_i64(o)[(t * m + i) * n + j] = acc;
            }
    }
    return o;
}

bool ox_op_matmul_integer(ox_exec *e) {
    return (e->out[0] = int_matmul(e, e->in[0], 2, e->in[1], 3)) != NULL;
}

/* The range of the output zero point's type (uint8 when it has none). */
static void out_range(ox_exec *e, int zp_input, double *lo, double *hi) {
    int id = zp_input < e->node->n_in ? e->node->in[zp_input] : -1;
    int t = id >= 0 ? e->m->values[id].elem : GF_ONNX_UINT8;
    *lo = t == GF_ONNX_INT8 ? -128 : 0;
    *hi = t == GF_ONNX_INT8 ? 127 : 255;
}

/* acc * multiplier(channel) + zero point, rounded half to even and saturated. */
static gf_tensor *requantize(ox_exec *e, gf_tensor *acc, const float *mult, int64_t n_mult,
                             int channel_axis, int y_zp) {
    double lo, hi;
    out_range(e, y_zp, &lo, &hi);
    gf_tensor *o = acc ? gf_empty(e->ctx, GF_I64, acc->ndim, acc->shape) : NULL;
    if (!o) return NULL;
    const int64_t inner = channel_axis >= 0
        ? gf_numel_of(acc->ndim - channel_axis - 1, acc->shape + channel_axis + 1)
        : 1;
    const int64_t z = zp_at(e, y_zp, 0);
    for (int64_t i = 0; i < acc->numel; i++) {
        int64_t ch = n_mult > 1 ? (i / inner) % acc->shape[channel_axis] : 0;
        double v = acc->dtype == GF_I64 ? (double)gf_get_i64(acc, i) : (double)gf_get_f32(acc, i);
        double q = nearbyint(v * (double)mult[ch]) + (double)z;
        gf_i64(o)[i] = (int64_t)(q < lo ? lo : q > hi ? hi : q);
    }
    return o;
}

bool ox_op_qlinear_matmul(ox_exec *e) {
    /* a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp */
    if (!ox_need(e, 1, GF_F32) || !ox_need(e, 4, GF_F32) || !ox_need(e, 6, GF_F32) ||
        e->in[1]->numel != 1 || e->in[4]->numel != 1 || e->in[6]->numel != 1)
        return ox_fail(e, GF_ERR_SHAPE, "QLinearMatMul takes scalar scales");
    float mult = gf_get_f32(e->in[1], 0) * gf_get_f32(e->in[4], 0) / gf_get_f32(e->in[6], 0);
    gf_tensor *acc = int_matmul(e, e->in[0], 2, e->in[3], 5);
    return (e->out[0] = requantize(e, acc, &mult, 1, -1, 7)) != NULL;
}

/* The convolution of (x - x_zp) by (w - w_zp) in float32 (per output channel w_zp). */
static gf_tensor *shifted_conv(ox_exec *e, int xi, int xz, int wi, int wz, gf_tensor *bias) {
    gf_tensor *x = ox_as_f32(e, e->in[xi]), *w = ox_as_f32(e, e->in[wi]);
    if (!x || !w || w->ndim < 3)
        return ox_fail(e, GF_ERR_SHAPE, "expected X and W of a convolution"), NULL;
    gf_tensor *xs = gf_empty(e->ctx, GF_F32, x->ndim, x->shape),
              *ws = gf_empty(e->ctx, GF_F32, w->ndim, w->shape);
    if (!xs || !ws) return NULL;
    const int64_t per = w->numel / w->shape[0];
    for (int64_t i = 0; i < x->numel; i++)
        gf_f32(xs)[i] = gf_get_f32(x, i) - (float)zp_at(e, xz, 0);
    for (int64_t i = 0; i < w->numel; i++)
        gf_f32(ws)[i] = gf_get_f32(w, i) - (float)zp_at(e, wz, i / per);
    gf_tensor *ins[3] = {xs, ws, bias}, *out = NULL;
    ox_exec c = *e; /* the same node: its convolution attributes */
    c.in = ins, c.n_in = bias ? 3 : 2;
    c.out = &out, c.n_out = 1;
    return ox_op_conv(&c) ? out : NULL;
}

bool ox_op_conv_integer(ox_exec *e) {
    gf_tensor *y = shifted_conv(e, 0, 2, 1, 3, NULL);
    return (e->out[0] = y ? ox_as_i64(e, y) : NULL) != NULL;
}

bool ox_op_qlinear_conv(ox_exec *e) {
    /* x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B (int32) */
    if (!ox_need(e, 1, GF_F32) || !ox_need(e, 4, GF_F32) || !ox_need(e, 6, GF_F32)) return false;
    gf_tensor *ws = e->in[4], *b = e->n_in > 8 ? ox_as_f32(e, e->in[8]) : NULL;
    const int64_t o = e->in[3]->shape[0];
    if (e->in[1]->numel != 1 || e->in[6]->numel != 1 || (ws->numel != 1 && ws->numel != o))
        return ox_fail(e, GF_ERR_SHAPE,
                       "scales must be scalars (w_scale: one per output channel or one)");
    float *mult = gf_scratch_f32(e->ctx, o + 1);
    if (!mult) return false;
    for (int64_t c = 0; c < o; c++)
        mult[c] = gf_get_f32(e->in[1], 0) * gf_get_f32(ws, ws->numel == 1 ? 0 : c) /
            gf_get_f32(e->in[6], 0);
    gf_tensor *acc = shifted_conv(e, 0, 2, 3, 5, b);
    return (e->out[0] = requantize(e, acc, mult, o, 1, 7)) != NULL;
}
