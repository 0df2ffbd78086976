/* Bad input to activations, softmax and reductions returns NULL with a message naming the op
 * (and the shape where one is involved); edge cases (empty, 0-d) behave like PyTorch; and the
 * threaded kernels give bitwise the same results as one thread. Add a check with EXPECT_ERR. */
#include "testutil.h"

#include <string.h>

#include "graft/graft.h"

static void errors(gf_ctx *ctx) {
    gf_tensor *a = gf_zeros(ctx, GF_F32, 2, (int64_t[]){2, 3});
    gf_tensor *e = gf_zeros(ctx, GF_F32, 2, (int64_t[]){0, 3});
    gf_tensor *i = gf_zeros(ctx, GF_I64, 1, (int64_t[]){3});
    EXPECT_ERR(ctx, gf_exp(ctx, NULL), GF_ERR_INVALID, "exp", "NULL");
    EXPECT_ERR(ctx, gf_softplus(ctx, NULL, 1, 20), GF_ERR_INVALID, "softplus", "NULL");
    EXPECT_ERR(ctx, gf_relu(ctx, i), GF_ERR_DTYPE, "relu", "float32", "int64", "[3]");
    EXPECT_ERR(ctx, gf_gelu(ctx, a, (gf_gelu_approx)7), GF_ERR_INVALID, "gelu", "7");
    EXPECT_ERR(ctx, gf_softmax(ctx, a, 2), GF_ERR_INVALID, "softmax", "axis 2");
    EXPECT_ERR(ctx, gf_log_softmax(ctx, a, -3), GF_ERR_INVALID, "log_softmax", "axis -3");
    EXPECT_ERR(ctx, gf_log_softmax(ctx, i, 0), GF_ERR_DTYPE, "log_softmax", "int64");
    EXPECT_ERR(ctx, gf_sum(ctx, a, (int[]){2}, 1, false), GF_ERR_INVALID, "sum", "axis 2",
               "[2, 3]");
    EXPECT_ERR(ctx, gf_mean(ctx, a, (int[]){1, -1}, 2, true), GF_ERR_INVALID, "mean", "twice",
               "[2, 3]");
    EXPECT_ERR(ctx, gf_max(ctx, a, NULL, 1, false), GF_ERR_INVALID, "max", "[2, 3]");
    EXPECT_ERR(ctx, gf_sum(ctx, a, (int[]){0}, -1, false), GF_ERR_INVALID, "sum");
    EXPECT_ERR(ctx, gf_sum(ctx, i, NULL, 0, false), GF_ERR_DTYPE, "sum", "int64");
    EXPECT_ERR(ctx, gf_max(ctx, e, (int[]){0}, 1, false), GF_ERR_SHAPE, "max", "[0, 3]");
    EXPECT_ERR(ctx, gf_max(ctx, e, NULL, 0, false), GF_ERR_SHAPE, "max", "[0, 3]");
    EXPECT_ERR(ctx, gf_argmax(ctx, e, 0, false), GF_ERR_SHAPE, "argmax", "[0, 3]");
    EXPECT_ERR(ctx, gf_argmax(ctx, a, 5, false), GF_ERR_INVALID, "argmax", "axis 5");
    EXPECT_ERR(ctx, gf_argmax(ctx, NULL, 0, false), GF_ERR_INVALID, "argmax", "NULL");

    /* the first error is kept; a NULL input downstream adds no new message */
    gf_ctx_clear_error(ctx);
    gf_tensor *bad = gf_softmax(ctx, a, 9);
    CHECK(gf_sum(ctx, gf_relu(ctx, bad), NULL, 0, false) == NULL);
    CHECK(strstr(gf_ctx_error(ctx), "softmax") != NULL);
    gf_ctx_clear_error(ctx);
}

/* Empty and 0-d inputs, argmax without gradient. */
static void edges(gf_ctx *ctx) {
    gf_tensor *e = gf_zeros(ctx, GF_F32, 2, (int64_t[]){0, 3});
    gf_tensor *s = gf_sum(ctx, e, (int[]){0}, 1, false), *m = gf_mean(ctx, e, (int[]){0}, 1, true);
    CHECK(s && s->ndim == 1 && s->shape[0] == 3 && gf_f32(s)[2] == 0.0f);
    CHECK(m && m->ndim == 2 && m->shape[0] == 1 && isnan(gf_f32(m)[0]));
    gf_tensor *mx = gf_max(ctx, e, (int[]){1}, 1, false); /* the reduced axis is not empty */
    CHECK(mx && mx->ndim == 1 && mx->shape[0] == 0);
    CHECK(gf_softmax(ctx, e, 0) != NULL && gf_exp(ctx, e) != NULL);

    gf_tensor *x = gf_tensor_from_data(ctx, GF_F32, 0, NULL, (float[]){3.5f});
    gf_tensor_set_requires_grad(x, true);
    gf_tensor *y = gf_softmax(ctx, x, -1), *ly = gf_log_softmax(ctx, x, 0);
    CHECK(y && y->ndim == 0 && gf_f32(y)[0] == 1.0f && gf_f32(ly)[0] == 0.0f);
    gf_tensor *am = gf_argmax(ctx, x, 0, true);
    CHECK(am && am->dtype == GF_I64 && am->ndim == 0 && gf_i64(am)[0] == 0 && !am->requires_grad);
    gf_tensor *sx = gf_sum(ctx, x, (int[]){0}, 1, true);
    CHECK(sx && sx->ndim == 0 && gf_backward(ctx, sx) == GF_OK);
    CHECK(x->grad && gf_f32(x->grad)[0] == 1.0f);
    gf_tensor_free(x);
    gf_ctx_reset(ctx);
    CHECK(gf_ctx_status(ctx) == GF_OK);
}

/* Runs forward and backward of several ops on large inputs (so the kernels split over
 * threads) and returns sum_k <out_k, w_k> plus the input gradient in gx. */
static void big_run(gf_ctx *ctx, const float *xd, float *out_sums, float *gx) {
    int64_t shape[2] = {300, 700};
    gf_tensor *x = gf_tensor_from_data(ctx, GF_F32, 2, shape, xd);
    gf_tensor_set_requires_grad(x, true);
    gf_tensor *ys[] = {
        gf_sum(ctx, gf_gelu(ctx, x, GF_GELU_EXACT), (int[]){0}, 1, false),
        gf_mean(ctx, gf_softmax(ctx, x, 0), (int[]){1}, 1, false),
        gf_sum(ctx, gf_log_softmax(ctx, x, 1), (int[]){0}, 1, true),
        gf_sum(ctx, gf_max(ctx, gf_silu(ctx, x), (int[]){-1}, 1, false), NULL, 0, false),
    };
    gf_tensor *tot = NULL;
    for (int k = 0; k < 4; k++) {
        gf_tensor *r = gf_sum(ctx, ys[k], NULL, 0, false);
        out_sums[k] = r ? gf_f32(r)[0] : NAN;
        tot = tot ? gf_add(ctx, tot, gf_mul_scalar(ctx, r, (float)(k + 1))) : r;
    }
    CHECK(gf_backward(ctx, tot) == GF_OK);
    memcpy(gx, gf_f32(x->grad), sizeof(float) * 300 * 700);
    gf_tensor_free(x);
    gf_ctx_reset(ctx);
}

static void threads(void) {
    enum { N = 300 * 700 };
    static float xd[N], g1[N], g4[N];
    gf_rng r;
    gf_rng_seed(&r, 5);
    for (int i = 0; i < N; i++) xd[i] = 3.0f * gf_rng_normal(&r);
    float s1[4], s4[4];
    gf_ctx_params p = gf_ctx_default_params();
    p.n_threads = 1;
    gf_ctx *c1 = gf_ctx_new(&p);
    p.n_threads = 4;
    gf_ctx *c4 = gf_ctx_new(&p);
    big_run(c1, xd, s1, g1);
    big_run(c4, xd, s4, g4);
    CHECK(memcmp(s1, s4, sizeof s1) == 0);
    CHECK(memcmp(g1, g4, sizeof g1) == 0);
    /* softmax over axis 0 sums to 1 per column, so the mean over axis 1 sums to 1 */
    CHECK_NEAR(s1[1], 1.0, 1e-4);
    gf_ctx_free(c1);
    gf_ctx_free(c4);
}

int main(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    errors(ctx);
    edges(ctx);
    gf_ctx_free(ctx);
    threads();
    return test_finish("test_errors_act");
}
