/* Autograd semantics: accumulation, no_grad, frozen parameters, graph reuse errors. */
#include "testutil.h"

#include <string.h>

#include "graft/graft.h"

static gf_tensor *param(gf_ctx *ctx, int ndim, const int64_t *shape, bool trainable) {
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, ndim, shape);
    for (int64_t i = 0; i < t->numel; i++) gf_f32(t)[i] = 0.1f * (float)(i % 7) - 0.3f;
    gf_tensor_set_requires_grad(t, trainable);
    return t;
}

/* loss = sum over rows of mean((x W^T)^2) built from public ops */
static gf_tensor *forward(gf_ctx *ctx, gf_tensor *x, gf_tensor *w1, gf_tensor *w2) {
    gf_tensor *h = gf_linear(ctx, x, w1, NULL);
    gf_tensor *y = gf_linear(ctx, h, w2, NULL);
    gf_tensor *sq = gf_mul(ctx, y, y);
    gf_tensor *flat = gf_reshape(ctx, sq, 1, (int64_t[]){-1});
    gf_tensor *ones = gf_full(ctx, 2, (int64_t[]){flat ? flat->numel : 1, 1}, 1.0f);
    return gf_matmul(ctx, flat, ones); /* [1] */
}

static void test_accumulate(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_tensor *w1 = param(ctx, 2, (int64_t[]){5, 4}, true);
    gf_tensor *w2 = param(ctx, 2, (int64_t[]){3, 5}, true);
    gf_tensor *x = param(ctx, 2, (int64_t[]){2, 4}, false);
    CHECK(w1->grad == NULL);
    CHECK(gf_backward(ctx, forward(ctx, x, w1, w2)) == GF_OK);
    gf_ctx_reset(ctx);
    float g1[20];
    memcpy(g1, w1->grad->data, sizeof g1);
    CHECK(gf_backward(ctx, forward(ctx, x, w1, w2)) == GF_OK);
    gf_ctx_reset(ctx);
    int doubled = 1;
    for (int i = 0; i < 20; i++) doubled &= gf_f32(w1->grad)[i] == 2 * g1[i];
    CHECK(doubled);
    gf_tensor_zero_grad(w1);
    CHECK(gf_f32(w1->grad)[3] == 0.0f);
    /* the input x is frozen: it gets no gradient buffer */
    CHECK(x->grad == NULL);
    gf_tensor_free(w1);
    gf_tensor_free(w2);
    gf_tensor_free(x);
    gf_ctx_free(ctx);
}

static void test_frozen_trunk(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_tensor *w1 = param(ctx, 2, (int64_t[]){5, 4}, false); /* frozen trunk */
    gf_tensor *w2 = param(ctx, 2, (int64_t[]){3, 5}, true);  /* trainable head */
    gf_tensor *x = param(ctx, 2, (int64_t[]){2, 4}, false);
    gf_tensor *h = gf_linear(ctx, x, w1, NULL);
    CHECK(!h->requires_grad && h->node == NULL); /* nothing recorded below the head */
    CHECK(gf_tape_size(ctx) == 0);
    gf_tensor *y = gf_linear(ctx, h, w2, NULL);
    CHECK(y->requires_grad && gf_tape_size(ctx) == 1);
    gf_tensor *l = gf_matmul(ctx, gf_reshape(ctx, y, 1, (int64_t[]){-1}),
                             gf_full(ctx, 1, (int64_t[]){6}, 1.0f));
    CHECK(gf_backward(ctx, l) == GF_OK);
    CHECK(w1->grad == NULL && w2->grad != NULL);
    /* unfreezing then freezing again frees the buffer */
    gf_tensor_set_requires_grad(w2, false);
    CHECK(w2->grad == NULL);
    gf_tensor_free(w1);
    gf_tensor_free(w2);
    gf_tensor_free(x);
    gf_ctx_free(ctx);
}

static void test_no_grad_and_reuse(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_tensor *w1 = param(ctx, 2, (int64_t[]){5, 4}, true);
    gf_tensor *w2 = param(ctx, 2, (int64_t[]){3, 5}, true);
    gf_tensor *x = param(ctx, 2, (int64_t[]){2, 4}, false);
    bool prev = gf_ctx_set_grad_enabled(ctx, false);
    CHECK(prev == true);
    gf_tensor *l = forward(ctx, x, w1, w2);
    CHECK(l && !l->requires_grad && gf_tape_size(ctx) == 0);
    CHECK(gf_backward(ctx, l) == GF_ERR_STATE); /* nothing to differentiate */
    CHECK(strstr(gf_ctx_error(ctx), "does not require grad") != NULL);
    gf_ctx_clear_error(ctx);
    gf_ctx_set_grad_enabled(ctx, true);
    gf_ctx_reset(ctx);
    l = forward(ctx, x, w1, w2);
    CHECK(gf_backward(ctx, l) == GF_OK);
    CHECK(gf_backward(ctx, l) == GF_ERR_STATE); /* the graph is consumed */
    CHECK(strstr(gf_ctx_error(ctx), "already used") != NULL);
    gf_ctx_clear_error(ctx);
    gf_tensor *y = gf_linear(ctx, x, w1, NULL);
    CHECK(gf_backward(ctx, y) == GF_ERR_SHAPE); /* not a scalar */
    CHECK(strstr(gf_ctx_error(ctx), "[2, 5]") != NULL);
    gf_tensor_free(w1);
    gf_tensor_free(w2);
    gf_tensor_free(x);
    gf_ctx_free(ctx);
}

/* A tensor used twice receives the sum of both paths' gradients. */
static void test_fan_out(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_tensor *a = param(ctx, 1, (int64_t[]){3}, true);
    gf_tensor *y = gf_mul(ctx, a, a);            /* a^2 */
    gf_tensor *z = gf_add(ctx, y, a);            /* a^2 + a */
    gf_tensor *ones = gf_full(ctx, 1, (int64_t[]){3}, 1.0f);
    CHECK(gf_backward_with(ctx, z, ones) == GF_OK);
    int ok = 1;
    for (int i = 0; i < 3; i++) ok &= fabsf(gf_f32(a->grad)[i] - (2 * gf_f32(a)[i] + 1)) < 1e-6f;
    CHECK(ok);
    gf_tensor_free(a);
    gf_ctx_free(ctx);
}

int main(void) {
    test_accumulate();
    test_frozen_trunk();
    test_no_grad_and_reuse();
    test_fan_out();
    return test_finish("test_autograd");
}
