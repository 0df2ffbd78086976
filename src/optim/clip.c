/* Gradient clipping as torch.nn.utils: by the global norm over all gradients
 * (clip_grad_norm_, returning the total norm) and elementwise by value (clip_grad_value_). */
#include "core/internal.h"
#include "optim/optim_internal.h"

#include <math.h>
#include <stdlib.h>

enum { CHUNK = 1 << 16 };

/* Sum of |g|^p (p = 2: g^2; p = INFINITY: max |g|) in double over fixed chunks, each summed by
 * one thread and the chunk results combined in order: the same result for any thread count. */
static double grad_norm(gf_ctx *ctx, const float *g, int64_t n, double p) {
    const int64_t n_chunks = (n + CHUNK - 1) / CHUNK;
    double small[16];
    double *part = n_chunks <= 16 ? small : malloc(sizeof(double) * (size_t)n_chunks);
    if (!part) return NAN;
    int nt = gf_threads_for(ctx, n);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t c = 0; c < n_chunks; c++) {
        const int64_t lo = c * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
        double acc = 0.0;
        if (isinf(p)) {
            for (int64_t i = lo; i < hi; i++) {
                double a = fabs((double)g[i]);
                if (a > acc || isnan(a)) acc = a;
                if (isnan(acc)) break;
            }
        } else if (p == 2.0) {
            for (int64_t i = lo; i < hi; i++) acc += (double)g[i] * (double)g[i];
        } else if (p == 1.0) {
            for (int64_t i = lo; i < hi; i++) acc += fabs((double)g[i]);
        } else {
            for (int64_t i = lo; i < hi; i++) acc += pow(fabs((double)g[i]), p);
        }
        part[c] = acc;
    }
    double total = 0.0;
    for (int64_t c = 0; c < n_chunks; c++) {
        if (isinf(p)) total = (part[c] > total || isnan(part[c])) ? part[c] : total;
        else total += part[c];
    }
    if (part != small) free(part);
    if (isinf(p)) return total;
    if (p == 2.0) return sqrt(total);
    if (p == 1.0) return total;
    return pow(total, 1.0 / p);
}

gf_status gf_clip_grad_norm(gf_ctx *ctx, gf_tensor *const *tensors, int n, double max_norm,
                            double norm_type, bool error_if_nonfinite, double *total_norm) {
    if (total_norm) *total_norm = 0.0;
    if (n < 0 || (n > 0 && !tensors))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "clip_grad_norm: bad tensor list (n = %d)", n);
    if (!(norm_type > 0.0))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "clip_grad_norm: norm_type %g not supported (need > 0 or inf)",
                                norm_type);
    if (!(max_norm >= 0.0) || !isfinite(max_norm))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "clip_grad_norm: invalid max_norm %g (need a finite value >= 0)",
                                max_norm);
    /* PyTorch: the norm of the stacked float32 per-tensor norms, in float32. */
    double acc = 0.0;
    int count = 0;
    for (int i = 0; i < n; i++) {
        const gf_tensor *t = tensors[i];
        if (!t || !t->grad) continue;
        float ni = (float)grad_norm(ctx, gf_f32(t->grad), t->grad->numel, norm_type);
        count++;
        if (isinf(norm_type)) acc = (ni > acc || isnan(ni)) ? ni : acc;
        else if (norm_type == 2.0) acc += (double)ni * (double)ni;
        else if (norm_type == 1.0) acc += fabs((double)ni);
        else acc += pow(fabs((double)ni), norm_type);
    }
    if (count == 0) return GF_OK;
    float total = isinf(norm_type)    ? (float)acc
                  : norm_type == 2.0  ? (float)sqrt(acc)
                  : norm_type == 1.0  ? (float)acc
                                      : (float)pow(acc, 1.0 / norm_type);
    if (total_norm) *total_norm = total;
    if (error_if_nonfinite && !isfinite(total))
        return gf_ctx_set_error(ctx, GF_ERR_NUMERIC,
                                "clip_grad_norm: the total norm of order %g of the gradients is "
                                "%g, so it cannot be clipped (error_if_nonfinite)",
                                norm_type, (double)total);
    /* clip_coef = max_norm / (total + 1e-6), which torch evaluates as reciprocal() * max_norm,
     * then clamp(max=1) (NaN stays NaN); every gradient is multiplied, even by 1. */
    float coef = (1.0f / (total + 1e-6f)) * (float)max_norm;
    if (coef > 1.0f) coef = 1.0f;
    for (int i = 0; i < n; i++) {
        gf_tensor *t = tensors[i];
        if (!t || !t->grad) continue;
        float *g = gf_f32(t->grad);
        const int64_t m = t->grad->numel;
        int nt = gf_threads_for(ctx, m);
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t j = 0; j < m; j++) g[j] *= coef;
    }
    return GF_OK;
}

gf_status gf_clip_grad_value(gf_ctx *ctx, gf_tensor *const *tensors, int n, double clip_value) {
    if (n < 0 || (n > 0 && !tensors))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "clip_grad_value: bad tensor list (n = %d)",
                                n);
    if (!(clip_value >= 0.0))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "clip_grad_value: invalid clip_value %g (need >= 0)", clip_value);
    const float hi = (float)clip_value, lo = -hi;
    for (int i = 0; i < n; i++) {
        gf_tensor *t = tensors[i];
        if (!t || !t->grad) continue;
        float *g = gf_f32(t->grad);
        const int64_t m = t->grad->numel;
        int nt = gf_threads_for(ctx, m);
        /* torch.clamp: NaN stays NaN */
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t j = 0; j < m; j++) g[j] = g[j] < lo ? lo : (g[j] > hi ? hi : g[j]);
    }
    return GF_OK;
}

/* The optimizer's parameters that take part in a step (require grad, have a gradient). */
static gf_tensor **trainable(gf_ctx *ctx, const gf_optim *opt, int *n) {
    gf_tensor **list = malloc(sizeof *list * (size_t)(opt->n ? opt->n : 1));
    if (!list) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "clip: out of memory");
        return NULL;
    }
    int k = 0;
    for (int i = 0; i < opt->n; i++)
        if (opt->ps[i].p->requires_grad && opt->ps[i].p->grad) list[k++] = opt->ps[i].p;
    *n = k;
    return list;
}

gf_status gf_optim_clip_grad_norm(gf_ctx *ctx, gf_optim *opt, double max_norm, double norm_type,
                                  bool error_if_nonfinite, double *total_norm) {
    if (!opt) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "clip_grad_norm: NULL optimizer");
    int n;
    gf_tensor **list = trainable(ctx, opt, &n);
    if (!list) return ctx->status;
    gf_status s = gf_clip_grad_norm(ctx, list, n, max_norm, norm_type, error_if_nonfinite,
                                    total_norm);
    free(list);
    return s;
}

gf_status gf_optim_clip_grad_value(gf_ctx *ctx, gf_optim *opt, double clip_value) {
    if (!opt) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "clip_grad_value: NULL optimizer");
    int n;
    gf_tensor **list = trainable(ctx, opt, &n);
    if (!list) return ctx->status;
    gf_status s = gf_clip_grad_value(ctx, list, n, clip_value);
    free(list);
    return s;
}
