/* torch.nn.init: uniform, normal, constant, kaiming and xavier fills of float32 tensors from a
 * seeded gf_rng, drawing values in the tensor's row-major order. */
#include "nn/nn_internal.h"

#include <math.h>
#include <stdlib.h>

int64_t gf_nn_fan(const gf_tensor *t, gf_fan_mode mode) {
    if (!t || t->ndim < 2) return -1;
    int64_t receptive = gf_numel_of(t->ndim - 2, t->shape + 2);
    return (mode == GF_FAN_OUT ? t->shape[0] : t->shape[1]) * receptive;
}

static bool check_f32(gf_ctx *ctx, const char *op, const gf_tensor *t) {
    return gf_check_tensor(ctx, op, "tensor", t, GF_F32);
}

typedef enum { DIST_UNIFORM, DIST_NORMAL } dist_kind;

/* Fills t with a draws from U(a, b) or N(a, b) in row-major order (any strides). */
static gf_status fill(gf_ctx *ctx, const char *op, gf_tensor *t, gf_rng *rng, dist_kind kind,
                      double a, double b) {
    if (!rng) rng = gf_ctx_rng(ctx);
    bool contig = gf_tensor_is_contiguous(t);
    float *buf = contig ? gf_f32(t) : malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (!buf) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", op);
    for (int64_t i = 0; i < t->numel; i++) {
        double v = kind == DIST_UNIFORM ? a + (b - a) * (double)gf_rng_uniform(rng)
                                        : a + b * (double)gf_rng_normal(rng);
        buf[i] = (float)v;
    }
    if (!contig) {
        gf_copy_in(t, buf);
        free(buf);
    }
    return GF_OK;
}

gf_status gf_nn_init_uniform(gf_ctx *ctx, gf_tensor *t, gf_rng *rng, float lo, float hi) {
    if (!check_f32(ctx, "init uniform", t)) return ctx->status;
    if (!(lo <= hi))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "init uniform: lo %g > hi %g", (double)lo,
                                (double)hi);
    return fill(ctx, "init uniform", t, rng, DIST_UNIFORM, lo, hi);
}

gf_status gf_nn_init_normal(gf_ctx *ctx, gf_tensor *t, gf_rng *rng, float mean, float std) {
    if (!check_f32(ctx, "init normal", t)) return ctx->status;
    if (!(std >= 0.0f))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "init normal: std %g is negative", (double)std);
    return fill(ctx, "init normal", t, rng, DIST_NORMAL, mean, std);
}

gf_status gf_nn_init_constant(gf_ctx *ctx, gf_tensor *t, float value) {
    if (!check_f32(ctx, "init constant", t)) return ctx->status;
    if (gf_tensor_is_contiguous(t)) {
        for (int64_t i = 0; i < t->numel; i++) gf_f32(t)[i] = value;
        return GF_OK;
    }
    float *buf = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (!buf) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "init constant: out of memory");
    for (int64_t i = 0; i < t->numel; i++) buf[i] = value;
    gf_copy_in(t, buf);
    free(buf);
    return GF_OK;
}

/* fan of t for the given mode, or an error naming op and the shape. */
static int64_t fan_or_error(gf_ctx *ctx, const char *op, const gf_tensor *t, gf_fan_mode mode) {
    int64_t fan = gf_nn_fan(t, mode);
    if (fan <= 0) {
        char s[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "%s: cannot compute fan of a tensor %s (needs 2+ dimensions, none 0)", op,
                         gf_shape_str(t, s, sizeof s));
    }
    return fan;
}

gf_status gf_nn_init_kaiming_uniform(gf_ctx *ctx, gf_tensor *t, gf_rng *rng, float a,
                                     gf_fan_mode mode) {
    const char *op = "init kaiming_uniform";
    if (!check_f32(ctx, op, t)) return ctx->status;
    int64_t fan = fan_or_error(ctx, op, t, mode);
    if (fan <= 0) return ctx->status;
    double gain = sqrt(2.0 / (1.0 + (double)a * a));
    double bound = sqrt(3.0) * gain / sqrt((double)fan);
    return fill(ctx, op, t, rng, DIST_UNIFORM, -bound, bound);
}

gf_status gf_nn_init_kaiming_normal(gf_ctx *ctx, gf_tensor *t, gf_rng *rng, float a,
                                    gf_fan_mode mode) {
    const char *op = "init kaiming_normal";
    if (!check_f32(ctx, op, t)) return ctx->status;
    int64_t fan = fan_or_error(ctx, op, t, mode);
    if (fan <= 0) return ctx->status;
    double gain = sqrt(2.0 / (1.0 + (double)a * a));
    return fill(ctx, op, t, rng, DIST_NORMAL, 0.0, gain / sqrt((double)fan));
}

gf_status gf_nn_init_xavier_uniform(gf_ctx *ctx, gf_tensor *t, gf_rng *rng, float gain) {
    const char *op = "init xavier_uniform";
    if (!check_f32(ctx, op, t)) return ctx->status;
    int64_t fi = fan_or_error(ctx, op, t, GF_FAN_IN);
    if (fi <= 0) return ctx->status;
    int64_t fo = gf_nn_fan(t, GF_FAN_OUT);
    double bound = (double)gain * sqrt(6.0 / (double)(fi + fo));
    return fill(ctx, op, t, rng, DIST_UNIFORM, -bound, bound);
}
