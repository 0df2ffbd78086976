/* Convolution and pooling beyond the fixtures: bad arguments return NULL with a message naming
 * the op and the shapes; the chunked im2col path, the direct 1x1 path and the threaded kernels
 * agree with a naive double-precision convolution (forward, dX, dW, db) on shapes too large
 * for the fixtures; runs repeat bitwise; frozen inputs get no gradient buffer.
 * To add a check: add a CHECK / EXPECT_ERR / conv_vs_reference call in main. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "kernels/im2col.h"

static void errors(gf_ctx *ctx) {
    gf_tensor *x = gf_zeros(ctx, GF_F32, 4, (int64_t[]){2, 4, 5, 5});
    gf_tensor *w = gf_zeros(ctx, GF_F32, 4, (int64_t[]){6, 3, 3, 3});
    gf_tensor *w2 = gf_zeros(ctx, GF_F32, 4, (int64_t[]){6, 2, 3, 3});
    gf_tensor *w5 = gf_zeros(ctx, GF_F32, 4, (int64_t[]){5, 2, 3, 3});
    gf_tensor *wbig = gf_zeros(ctx, GF_F32, 4, (int64_t[]){6, 4, 7, 3});
    gf_tensor *b4 = gf_zeros(ctx, GF_F32, 1, (int64_t[]){4});
    gf_tensor *xi = gf_zeros(ctx, GF_I64, 4, (int64_t[]){2, 4, 5, 5});
    gf_tensor *x2 = gf_zeros(ctx, GF_F32, 2, (int64_t[]){4, 5});
    gf_conv_params p = gf_conv_default_params();

    EXPECT_ERR(ctx, gf_conv2d(ctx, x, w, NULL, &p), GF_ERR_SHAPE, "conv2d", "[2, 4, 5, 5]", "[6, 3, 3, 3]");
    EXPECT_ERR(ctx, gf_conv2d(ctx, xi, w2, NULL, &p), GF_ERR_DTYPE, "conv2d", "float32", "int64");
    EXPECT_ERR(ctx, gf_conv2d(ctx, NULL, w2, NULL, &p), GF_ERR_INVALID, "conv2d", "NULL");
    EXPECT_ERR(ctx, gf_conv2d(ctx, x, NULL, NULL, &p), GF_ERR_INVALID, "conv2d", "weight", "NULL");
    EXPECT_ERR(ctx, gf_conv2d(ctx, x2, w2, NULL, &p), GF_ERR_SHAPE, "conv2d", "[4, 5]", "[6, 2, 3, 3]");
    EXPECT_ERR(ctx, gf_conv2d(ctx, x, wbig, NULL, &p), GF_ERR_SHAPE, "conv2d", "[2, 4, 5, 5]", "[6, 4, 7, 3]");
    p.groups = 2;
    EXPECT_ERR(ctx, gf_conv2d(ctx, x, w2, b4, &p), GF_ERR_SHAPE, "conv2d", "bias", "[4]", "[6, 2, 3, 3]");
    EXPECT_ERR(ctx, gf_conv2d(ctx, x, w5, NULL, &p), GF_ERR_SHAPE, "conv2d", "groups 2",
               "[5, 2, 3, 3]", "[2, 4, 5, 5]");
    gf_ctx_clear_error(ctx);
    CHECK(gf_conv2d(ctx, x, w2, NULL, &p) != NULL && gf_ctx_status(ctx) == GF_OK);
    p.groups = 0;
    EXPECT_ERR(ctx, gf_conv2d(ctx, x, w2, NULL, &p), GF_ERR_INVALID, "conv2d", "groups");
    p = gf_conv_default_params();
    p.groups = 2;
    p.stride[1] = 0;
    EXPECT_ERR(ctx, gf_conv2d(ctx, x, w2, NULL, &p), GF_ERR_INVALID, "conv2d", "stride");
    p.stride[1] = 1;
    p.padding[0] = -1;
    EXPECT_ERR(ctx, gf_conv2d(ctx, x, w2, NULL, &p), GF_ERR_INVALID, "conv2d", "padding");
    p.padding[0] = 0;
    p.dilation[0] = 3; /* dilated kernel spans 7 rows of 5 */
    EXPECT_ERR(ctx, gf_conv2d(ctx, x, w2, NULL, &p), GF_ERR_SHAPE, "conv2d", "[2, 4, 5, 5]");

    gf_tensor *x1 = gf_zeros(ctx, GF_F32, 3, (int64_t[]){2, 4, 9});
    gf_tensor *w1 = gf_zeros(ctx, GF_F32, 3, (int64_t[]){3, 4, 3});
    gf_tensor *w1b = gf_zeros(ctx, GF_F32, 3, (int64_t[]){3, 3, 3});
    p = gf_conv_default_params();
    EXPECT_ERR(ctx, gf_conv1d(ctx, x1, w1b, NULL, &p), GF_ERR_SHAPE, "conv1d", "[2, 4, 9]", "[3, 3, 3]");
    EXPECT_ERR(ctx, gf_conv1d(ctx, x, w1, NULL, &p), GF_ERR_SHAPE, "conv1d", "[2, 4, 5, 5]", "[3, 4, 3]");
    gf_ctx_clear_error(ctx);
    gf_tensor *y1 = gf_conv1d(ctx, x1, w1, NULL, NULL); /* NULL params: the defaults */
    CHECK(y1 && y1->ndim == 3 && y1->shape[0] == 2 && y1->shape[1] == 3 && y1->shape[2] == 7);

    gf_pool_params pp = gf_pool_default_params(3);
    pp.padding[0] = 2;
    EXPECT_ERR(ctx, gf_max_pool2d(ctx, x, &pp), GF_ERR_INVALID, "max_pool2d", "half", "[2, 4, 5, 5]");
    EXPECT_ERR(ctx, gf_avg_pool2d(ctx, x, &pp), GF_ERR_INVALID, "avg_pool2d", "half");
    pp = gf_pool_default_params(0);
    EXPECT_ERR(ctx, gf_max_pool2d(ctx, x, &pp), GF_ERR_INVALID, "max_pool2d", "kernel");
    pp = gf_pool_default_params(6);
    EXPECT_ERR(ctx, gf_max_pool2d(ctx, x, &pp), GF_ERR_SHAPE, "max_pool2d", "[2, 4, 5, 5]", "too small");
    pp = gf_pool_default_params(2);
    pp.dilation[0] = 2;
    EXPECT_ERR(ctx, gf_avg_pool2d(ctx, x, &pp), GF_ERR_INVALID, "avg_pool2d", "dilation");
    pp.dilation[0] = 0;
    EXPECT_ERR(ctx, gf_max_pool2d(ctx, x, &pp), GF_ERR_INVALID, "max_pool2d", "dilation");
    EXPECT_ERR(ctx, gf_max_pool2d(ctx, x, NULL), GF_ERR_INVALID, "max_pool2d", "NULL");
    pp = gf_pool_default_params(2);
    EXPECT_ERR(ctx, gf_max_pool2d(ctx, x2, &pp), GF_ERR_SHAPE, "max_pool2d", "[4, 5]");
    EXPECT_ERR(ctx, gf_avg_pool2d(ctx, xi, &pp), GF_ERR_DTYPE, "avg_pool2d", "int64");
    EXPECT_ERR(ctx, gf_max_pool2d(ctx, NULL, &pp), GF_ERR_INVALID, "max_pool2d", "NULL");
    EXPECT_ERR(ctx, gf_adaptive_avg_pool2d(ctx, x, 0, 2), GF_ERR_INVALID, "adaptive_avg_pool2d",
               "0x2", "[2, 4, 5, 5]");
    EXPECT_ERR(ctx, gf_adaptive_avg_pool2d(ctx, x2, 1, 1), GF_ERR_SHAPE, "adaptive_avg_pool2d", "[4, 5]");

    /* an empty batch is valid (as in PyTorch) and gives an empty output */
    gf_ctx_clear_error(ctx);
    gf_tensor *x0 = gf_zeros(ctx, GF_F32, 4, (int64_t[]){0, 4, 5, 5});
    gf_tensor *y0 = gf_conv2d(ctx, x0, w2, NULL, &(gf_conv_params){{1, 1}, {1, 1}, {1, 1}, 2});
    CHECK(y0 && y0->shape[0] == 0 && y0->shape[1] == 6 && y0->shape[2] == 5 && y0->numel == 0);
    pp = gf_pool_default_params(2);
    y0 = gf_max_pool2d(ctx, x0, &pp);
    CHECK(y0 && y0->shape[0] == 0 && y0->shape[2] == 2 && gf_ctx_status(ctx) == GF_OK);

    /* the first error is kept; a NULL input downstream adds no new message */
    gf_ctx_clear_error(ctx);
    gf_tensor *bad = gf_conv2d(ctx, x, w, NULL, NULL);
    CHECK(gf_max_pool2d(ctx, bad, &pp) == NULL && strstr(gf_ctx_error(ctx), "conv2d") != NULL);
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
}

/* ---- naive reference ------------------------------------------------------------------- */

static void ref_conv(const gf_conv_geom *g, const float *x, const float *w, const float *b,
                     const float *dy, double *y, double *dx, double *dw, double *db) {
    int64_t cg = g->c / g->groups, og = g->o / g->groups;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t o = 0; o < g->o; o++) {
            int64_t gr = o / og;
            for (int64_t oy = 0; oy < g->oh; oy++)
                for (int64_t ox = 0; ox < g->ow; ox++) {
                    int64_t yi = ((n * g->o + o) * g->oh + oy) * g->ow + ox;
                    double s = b ? b[o] : 0.0, d = dy[yi];
                    for (int64_t ci = 0; ci < cg; ci++)
                        for (int64_t ky = 0; ky < g->kh; ky++)
                            for (int64_t kx = 0; kx < g->kw; kx++) {
                                int64_t iy = oy * g->sh - g->ph + ky * g->dh;
                                int64_t ix = ox * g->sw - g->pw + kx * g->dw;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                                int64_t c = gr * cg + ci;
                                int64_t xi = ((n * g->c + c) * g->h + iy) * g->w + ix;
                                int64_t wi = ((o * cg + ci) * g->kh + ky) * g->kw + kx;
                                s += (double)x[xi] * w[wi];
                                dx[xi] += (double)w[wi] * d;
                                dw[wi] += (double)x[xi] * d;
                            }
                    y[yi] = s;
                    db[o] += d;
                }
        }
}

static double max_rel_err(const float *got, const double *want, int64_t n) {
    double scale = 1e-3, worst = 0;
    for (int64_t i = 0; i < n; i++) scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / scale;
        worst = e > worst ? e : worst;
    }
    return worst;
}

static gf_tensor *randn_param(gf_ctx *ctx, int nd, const int64_t *shape) {
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, nd, shape);
    gf_tensor *r = gf_randn(ctx, nd, shape, 0.0f, 1.0f);
    memcpy(t->data, r->data, sizeof(float) * (size_t)t->numel);
    gf_tensor_set_requires_grad(t, true);
    return t;
}

/* Runs conv2d forward + backward twice with the given chunk budget (in floats; 0: default):
 * both runs must match the naive reference and each other bitwise. */
static void conv_vs_reference(gf_ctx *ctx, const char *what, gf_conv_geom g, int64_t budget) {
    gf_ctx_reset(ctx);
    gf_rng_seed(gf_ctx_rng(ctx), 7);
    int64_t xs[4] = {g.n, g.c, g.h, g.w}, ws[4] = {g.o, g.c / g.groups, g.kh, g.kw};
    gf_tensor *x = randn_param(ctx, 4, xs), *w = randn_param(ctx, 4, ws);
    gf_tensor *b = randn_param(ctx, 1, &g.o);
    gf_conv_params p = {{(int)g.sh, (int)g.sw}, {(int)g.ph, (int)g.pw}, {(int)g.dh, (int)g.dw},
                        (int)g.groups};
    g.oh = gf_conv_out_size(g.h, g.kh, g.sh, g.ph, g.dh);
    g.ow = gf_conv_out_size(g.w, g.kw, g.sw, g.pw, g.dw);
    int64_t ys[4] = {g.n, g.o, g.oh, g.ow};
    gf_tensor *dy = gf_randn(ctx, 4, ys, 0.0f, 1.0f);
    int64_t ny = g.n * g.o * g.oh * g.ow;
    double *y = calloc((size_t)ny, sizeof(double));
    double *dx = calloc((size_t)x->numel, sizeof(double));
    double *dw = calloc((size_t)w->numel, sizeof(double));
    double *db = calloc((size_t)g.o, sizeof(double));
    ref_conv(&g, gf_f32(x), gf_f32(w), gf_f32(b), gf_f32(dy), y, dx, dw, db);

    float *run_y[2], *run_dx[2];
    for (int rep = 0; rep < 2; rep++) {
        gf_conv_set_chunk_budget(ctx, budget);
        gf_tensor_zero_grad(x), gf_tensor_zero_grad(w), gf_tensor_zero_grad(b);
        gf_tensor *out = gf_conv2d(ctx, x, w, b, &p);
        CHECK(out != NULL);
        if (!out) break;
        CHECK(gf_backward_with(ctx, out, dy) == GF_OK);
        gf_conv_set_chunk_budget(ctx, 0);
        double ey = max_rel_err(gf_f32(out), y, ny), ex = max_rel_err(gf_f32(x->grad), dx, x->numel);
        double ew = max_rel_err(gf_f32(w->grad), dw, w->numel);
        double eb = max_rel_err(gf_f32(b->grad), db, g.o);
        if (ey > 1e-5 || ex > 1e-5 || ew > 1e-5 || eb > 1e-5)
            fprintf(stderr, "%s: relative errors y %.3g dx %.3g dw %.3g db %.3g\n", what, ey, ex,
                    ew, eb);
        CHECK(ey <= 1e-5 && ex <= 1e-5 && ew <= 1e-5 && eb <= 1e-5);
        run_y[rep] = malloc(sizeof(float) * (size_t)ny);
        run_dx[rep] = malloc(sizeof(float) * (size_t)x->numel);
        memcpy(run_y[rep], gf_f32(out), sizeof(float) * (size_t)ny);
        memcpy(run_dx[rep], gf_f32(x->grad), sizeof(float) * (size_t)x->numel);
    }
    /* same inputs, same threads: bitwise the same */
    CHECK(memcmp(run_y[0], run_y[1], sizeof(float) * (size_t)ny) == 0);
    CHECK(memcmp(run_dx[0], run_dx[1], sizeof(float) * (size_t)x->numel) == 0);
    for (int rep = 0; rep < 2; rep++) free(run_y[rep]), free(run_dx[rep]);
    free(y), free(dx), free(dw), free(db);
    gf_tensor_free(x), gf_tensor_free(w), gf_tensor_free(b);
    gf_ctx_reset(ctx);
}

static gf_conv_geom geom(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t k, int s,
                         int pad, int dil, int groups) {
    gf_conv_geom g;
    memset(&g, 0, sizeof g);
    g.n = n, g.c = c, g.h = h, g.w = w, g.o = o, g.kh = k, g.kw = k;
    g.sh = g.sw = s, g.ph = g.pw = pad, g.dh = g.dw = dil, g.groups = groups;
    return g;
}

/* Frozen tensors get no gradient buffer; nothing requiring grad records nothing. */
static void frozen(gf_ctx *ctx) {
    gf_ctx_reset(ctx);
    int64_t xs[4] = {2, 3, 6, 6}, ws[4] = {4, 3, 3, 3}, o = 4;
    gf_tensor *x = randn_param(ctx, 4, xs), *w = randn_param(ctx, 4, ws);
    gf_tensor *b = randn_param(ctx, 1, &o);
    gf_tensor_set_requires_grad(x, false);
    gf_tensor_set_requires_grad(w, false);
    gf_conv_params p = gf_conv_default_params();
    gf_tensor *y = gf_conv2d(ctx, x, w, b, &p);
    CHECK(y && gf_tape_size(ctx) == 1);
    gf_tensor *ones = gf_full(ctx, y->ndim, y->shape, 1.0f);
    CHECK(gf_backward_with(ctx, y, ones) == GF_OK);
    CHECK(x->grad == NULL && w->grad == NULL && b->grad != NULL);
    CHECK_NEAR(gf_f32(b->grad)[0], 2 * 4 * 4, 1e-4);
    gf_ctx_reset(ctx);
    gf_tensor_set_requires_grad(b, false);
    y = gf_conv2d(ctx, x, w, b, &p);
    CHECK(y && gf_tape_size(ctx) == 0 && !y->requires_grad);
    /* conv1d is one conv2d node, no views */
    gf_ctx_reset(ctx);
    gf_tensor_set_requires_grad(w, true);
    gf_tensor *x1 = gf_reshape(ctx, x, 3, (int64_t[]){2, 3, 36});
    gf_tensor *w1 = gf_tensor_new(ctx, GF_F32, 3, (int64_t[]){4, 3, 3});
    gf_tensor_set_requires_grad(w1, true);
    y = gf_conv1d(ctx, x1, w1, NULL, &p);
    CHECK(y && gf_tape_size(ctx) == 1);
    gf_tensor_free(x), gf_tensor_free(w), gf_tensor_free(b), gf_tensor_free(w1);
    gf_ctx_reset(ctx);
}

/* Max pooling sends each gradient to the window's winner; ties go to the first. */
static void pool_ties(gf_ctx *ctx) {
    gf_ctx_reset(ctx);
    float xv[16] = {1, 1, 0, 0, 1, 1, 0, 2, 5, 3, 4, 4, 3, 5, 4, 4};
    gf_tensor *x = gf_tensor_from_data(ctx, GF_F32, 4, (int64_t[]){1, 1, 4, 4}, xv);
    gf_tensor_set_requires_grad(x, true);
    gf_pool_params pp = gf_pool_default_params(2);
    gf_tensor *y = gf_max_pool2d(ctx, x, &pp);
    CHECK(y && gf_f32(y)[0] == 1 && gf_f32(y)[1] == 2 && gf_f32(y)[2] == 5 && gf_f32(y)[3] == 4);
    gf_tensor *ones = gf_full(ctx, 4, y->shape, 1.0f);
    CHECK(gf_backward_with(ctx, y, ones) == GF_OK);
    const float want[16] = {1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0};
    for (int i = 0; i < 16; i++) CHECK_NEAR(gf_f32(x->grad)[i], want[i], 0);
    gf_tensor_free(x);
    gf_ctx_reset(ctx);
}

int main(void) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 4;
    gf_ctx *ctx = gf_ctx_new(&cp);
    errors(ctx);
    /* general path: one chunk, chunks of one image, chunks of 2 with a remainder of 1 */
    gf_conv_geom g = geom(5, 6, 13, 11, 8, 3, 2, 1, 1, 2);
    int64_t per_image = g.c * g.kh * g.kw * 7 * 6 + g.o * 7 * 6;
    conv_vs_reference(ctx, "general, one chunk", g, 0);
    conv_vs_reference(ctx, "general, 1-image chunks", g, 1);
    conv_vs_reference(ctx, "general, 2-image chunks", g, 2 * per_image);
    conv_vs_reference(ctx, "dilated depthwise", geom(3, 4, 12, 12, 8, 3, 1, 2, 2, 4), 0);
    conv_vs_reference(ctx, "depthwise stride 2", geom(2, 6, 15, 14, 6, 5, 2, 2, 1, 6), 0);
    conv_vs_reference(ctx, "large plane", geom(2, 3, 40, 37, 5, 5, 1, 2, 1, 1), 0);
    /* 1x1 stride 1: direct per-image sgemm (plane >= 256) and the batched path (small plane) */
    conv_vs_reference(ctx, "1x1 direct", geom(3, 4, 16, 17, 6, 1, 1, 0, 1, 2), 0);
    conv_vs_reference(ctx, "1x1 batched", geom(4, 8, 4, 3, 6, 1, 1, 0, 1, 1), 0);
    frozen(ctx);
    pool_ties(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_errors_conv");
}
