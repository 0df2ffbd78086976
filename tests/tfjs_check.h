/* Comparing an imported TensorFlow.js model with TensorFlow.js's own outputs (the fixtures of
 * tests/fixtures/gen_tfjs_*.js): the input pattern both sides compute, and one check per
 * recorded layer, reached by cutting the model at that layer. Shared by test_tfjs.c and
 * test_tfjs_mobilenet.c. */
#ifndef GRAFT_TEST_TFJS_CHECK_H
#define GRAFT_TEST_TFJS_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "testutil.h"

/* x [N, C, H, W] = ((53 n + 7 h + 13 w + 29 c) mod 97) / 96: gen_tfjs_lib.js's pattern, which
 * TensorFlow.js reads as [N, H, W, C]. */
static inline void tfjs_fill_pattern(gf_tensor *x) {
    const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++)
                    gf_f32(x)[((n * C + c) * H + h) * W + w] =
                        (float)((double)((53 * n + 7 * h + 13 * w + 29 * c) % 97) / 96.0);
}

/* The largest |got - want| over the recorded values of one layer (y in NHWC order): every
 * value, or the per-channel means, the largest magnitude and the samples; scale receives the
 * layer's largest magnitude. */
static inline double tfjs_layer_diff(const cJSON *e, const gf_tensor *y, double *scale) {
    const cJSON *vals = cJSON_GetObjectItem(e, "values");
    double d = 0, s = 0;
    const float *v = gf_f32(y);
    if (vals) {
        int64_t i = 0;
        for (const cJSON *x = vals->child; x; x = x->next, i++) {
            s = fmax(s, fabs(x->valuedouble));
            d = fmax(d, i < y->numel ? fabs(v[i] - x->valuedouble) : INFINITY);
        }
        if (i != y->numel) d = INFINITY;
        *scale = s;
        return d;
    }
    const cJSON *means = cJSON_GetObjectItem(e, "channel_mean");
    const int64_t C = cJSON_GetArraySize(means), per = C ? y->numel / C : 0;
    s = cJSON_GetObjectItem(e, "max_abs")->valuedouble;
    double got_max = 0;
    for (int64_t i = 0; i < y->numel; i++) got_max = fmax(got_max, fabs(v[i]));
    d = fabs(got_max - s);
    for (int64_t c = 0; c < C && per; c++) {
        double sum = 0;
        for (int64_t i = c; i < y->numel; i += C) sum += v[i];
        d = fmax(d, fabs(sum / (double)per - cJSON_GetArrayItem(means, (int)c)->valuedouble));
    }
    const cJSON *smp;
    cJSON_ArrayForEach(smp, cJSON_GetObjectItem(e, "samples")) {
        int64_t i = (int64_t)cJSON_GetArrayItem(smp, 0)->valuedouble;
        d = fmax(d, i < y->numel ? fabs(v[i] - cJSON_GetArrayItem(smp, 1)->valuedouble) : INFINITY);
    }
    *scale = s;
    return d;
}

/* One recorded layer: the model cut there, run on the pattern, compared. Returns the relative
 * difference (the largest difference over the layer's largest magnitude), or INFINITY when the
 * model did not load or run, or the shape differs. */
static inline double tfjs_check_layer(gf_ctx *ctx, const char *model, const cJSON *e,
                                      gf_tensor *x) {
    gf_tfjs_options o = gf_tfjs_default_options();
    o.cut = cJSON_GetObjectItem(e, "name")->valuestring;
    gf_module *m = gf_tfjs_load(ctx, model, &o, NULL);
    bool grad = gf_ctx_set_grad_enabled(ctx, false);
    gf_tensor *y = m ? gf_tfjs_to_nhwc(ctx, gf_module_forward(ctx, m, x)) : NULL;
    gf_ctx_set_grad_enabled(ctx, grad);
    double rel = INFINITY;
    const cJSON *shape = cJSON_GetObjectItem(e, "shape");
    bool same = y && y->ndim == cJSON_GetArraySize(shape);
    for (int d = 0; same && d < y->ndim; d++)
        same = y->shape[d] == (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
    if (same) {
        double scale = 0, diff = tfjs_layer_diff(e, y, &scale);
        rel = diff / fmax(scale, 1e-6);
    } else {
        fprintf(stderr, "layer %s: %s\n", o.cut, y ? "shape differs" : gf_ctx_error(ctx));
    }
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    gf_module_free(m);
    return rel;
}

/* Every layer of the reference file ref against model; each within tol (relative). Returns
 * the number of layers checked; *worst the largest relative difference. */
static inline int tfjs_check_reference(gf_ctx *ctx, const char *model, const char *ref,
                                       double tol, double *worst) {
    cJSON *doc = test_read_json(ref);
    CHECK(doc != NULL);
    if (!doc) return 0;
    const cJSON *in = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "input"), "shape");
    const int64_t xs[4] = {(int64_t)cJSON_GetArrayItem(in, 0)->valuedouble,
                           (int64_t)cJSON_GetArrayItem(in, 3)->valuedouble,
                           (int64_t)cJSON_GetArrayItem(in, 1)->valuedouble,
                           (int64_t)cJSON_GetArrayItem(in, 2)->valuedouble};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, xs);
    tfjs_fill_pattern(x);
    int n = 0;
    *worst = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(doc, "layers")) {
        double rel = tfjs_check_layer(ctx, model, e, x);
        if (!(rel <= tol))
            fprintf(stderr, "layer %s: relative difference %.3g (tolerance %g)\n",
                    cJSON_GetObjectItem(e, "name")->valuestring, rel, tol);
        CHECK(rel <= tol);
        *worst = fmax(*worst, rel);
        n++;
    }
    gf_tensor_free(x);
    cJSON_Delete(doc);
    return n;
}

#endif
