/* Bad input to the losses (cross_entropy_ex, nll_loss, l1/smooth_l1/huber, bce_with_logits,
 * kl_div) returns NULL with a message naming the op and the shapes or values at fault, records
 * nothing and aborts nothing; plus a few identities between the losses that hold exactly.
 * To add a check: one EXPECT_ERR line with the strings the message must contain. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"

static gf_tensor *i64s(gf_ctx *ctx, int ndim, const int64_t *shape, const int64_t *v) {
    gf_tensor *t = gf_empty(ctx, GF_I64, ndim, shape);
    memcpy(t->data, v, sizeof(int64_t) * (size_t)t->numel);
    return t;
}

static gf_tensor *f32s(gf_ctx *ctx, int ndim, const int64_t *shape, const float *v) {
    gf_tensor *t = gf_empty(ctx, GF_F32, ndim, shape);
    memcpy(t->data, v, sizeof(float) * (size_t)t->numel);
    return t;
}

static double item(const gf_tensor *t) { return t ? (double)gf_get_f32(t, 0) : NAN; }

/* Every loss forward + backward on inputs big enough to use several threads (and several
 * blocks of the deterministic sum). Returns a malloc'd array of the values and gradients. */
static float *run_big(int threads, size_t *len) {
    gf_ctx_params pp = gf_ctx_default_params();
    pp.n_threads = threads;
    gf_ctx *ctx = gf_ctx_new(&pp);
    gf_rng_seed(gf_ctx_rng(ctx), 42);
    const int64_t ls[4] = {128, 16, 8, 8}, n = 128 * 16 * 8 * 8;
    gf_tensor *x = gf_randn(ctx, 4, ls, 0, 3);
    gf_tensor *probs = gf_softmax(ctx, gf_randn(ctx, 4, ls, 0, 1), 1);
    gf_tensor *w = gf_randn(ctx, 1, (int64_t[]){16}, 1, 0.2f);
    gf_tensor *t = gf_empty(ctx, GF_I64, 3, (int64_t[]){128, 8, 8});
    for (int64_t i = 0; i < t->numel; i++) gf_i64(t)[i] = i % 13 == 5 ? -100 : (i * 7) % 16;
    gf_tensor *a = gf_randn(ctx, 1, &n, 0, 1), *b = gf_randn(ctx, 1, &n, 0, 1);
    gf_tensor *pw = gf_randn(ctx, 1, (int64_t[]){64}, 1, 0.3f);
    gf_tensor_set_requires_grad(x, true);
    gf_tensor_set_requires_grad(w, true);
    gf_tensor_set_requires_grad(a, true);
    gf_tensor_set_requires_grad(b, true);
    gf_tensor_set_requires_grad(pw, true);
    gf_ce_params cp = gf_ce_default_params();
    cp.label_smoothing = 0.1f;
    cp.weight = w;
    gf_tensor *a2 = gf_reshape(ctx, a, 2, (int64_t[]){n / 64, 64});
    gf_tensor *b2 = gf_reshape(ctx, b, 2, (int64_t[]){n / 64, 64});
    gf_tensor *l[10];
    l[0] = gf_cross_entropy_ex(ctx, x, t, &cp);
    cp.reduction = GF_REDUCE_SUM;
    l[1] = gf_cross_entropy_ex(ctx, x, probs, &cp);
    l[2] = gf_nll_loss(ctx, x, t, w, GF_REDUCE_MEAN, -100);
    l[3] = gf_l1_loss(ctx, a, b, GF_REDUCE_MEAN);
    l[4] = gf_smooth_l1_loss(ctx, a, b, GF_REDUCE_SUM, 0.5f);
    l[5] = gf_huber_loss(ctx, a, b, GF_REDUCE_MEAN, 0.8f);
    l[6] = gf_mse_loss(ctx, a, b, GF_REDUCE_MEAN);
    l[7] = gf_bce_with_logits(ctx, a2, gf_sigmoid(ctx, b2), NULL, pw, GF_REDUCE_MEAN);
    l[8] = gf_kl_div(ctx, gf_log_softmax(ctx, a2, 1), gf_softmax(ctx, b2, 1),
                     GF_REDUCE_BATCHMEAN, false);
    l[9] = gf_sum(ctx, gf_cross_entropy_ex(ctx, x, t, &(gf_ce_params){GF_REDUCE_NONE, -100,
                                                                     0.3f, w}),
                  NULL, 0, false);
    gf_tensor *tot = l[0];
    for (int i = 1; i < 10; i++) tot = gf_add(ctx, tot, l[i]);
    float *res = NULL;
    *len = 0;
    if (tot && gf_backward(ctx, tot) == GF_OK && x->grad && w->grad && a->grad && b->grad &&
        pw->grad) {
        *len = 10 + (size_t)n + 16 + 2 * (size_t)n + 64; /* values, x, w, a, b, pw grads */
        res = malloc(sizeof(float) * *len);
        float *r = res;
        for (int i = 0; i < 10; i++) *r++ = gf_get_f32(l[i], 0);
        const gf_tensor *gs[5] = {x->grad, w->grad, a->grad, b->grad, pw->grad};
        for (int k = 0; k < 5; k++) {
            memcpy(r, gs[k]->data, sizeof(float) * (size_t)gs[k]->numel);
            r += gs[k]->numel;
        }
    }
    if (!res) fprintf(stderr, "run_big(%d): %s\n", threads, gf_ctx_error(ctx));
    gf_ctx_free(ctx);
    return res;
}

int main(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_tensor *logits = gf_randn(ctx, 2, (int64_t[]){2, 4}, 0, 1);
    gf_tensor *t2 = i64s(ctx, 1, (int64_t[]){2}, (int64_t[]){1, 3});
    gf_tensor *w4 = gf_full(ctx, 1, (int64_t[]){4}, 0.5f);
    gf_tensor *w3 = gf_full(ctx, 1, (int64_t[]){3}, 1.0f);
    gf_tensor *probs = gf_full(ctx, 2, (int64_t[]){2, 4}, 0.25f);
    gf_ce_params cp = gf_ce_default_params();
    CHECK(cp.reduction == GF_REDUCE_MEAN && cp.ignore_index == -100 &&
          cp.label_smoothing == 0.0f && cp.weight == NULL);
    gf_tensor_set_requires_grad(logits, true); /* so a call that got too far would record */
    int64_t tape0 = gf_tape_size(ctx);

    /* ---- cross_entropy_ex ---- */
    gf_tensor *t_bad = i64s(ctx, 1, (int64_t[]){2}, (int64_t[]){1, 7});
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, logits, t_bad, &cp), GF_ERR_INVALID,
               "cross_entropy", "target 7", "4 classes", "[2, 4]");
    gf_tensor *t_len = i64s(ctx, 1, (int64_t[]){3}, (int64_t[]){0, 1, 2});
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, logits, t_len, &cp), GF_ERR_SHAPE, "cross_entropy",
               "[3]", "[2, 4]");
    gf_tensor *p_bad = gf_full(ctx, 2, (int64_t[]){2, 3}, 0.3f);
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, logits, p_bad, &cp), GF_ERR_SHAPE, "cross_entropy",
               "probability target", "[2, 3]", "[2, 4]");
    cp.weight = w3;
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, logits, t2, &cp), GF_ERR_SHAPE, "cross_entropy",
               "weight [3]", "[4]", "[2, 4]");
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, logits, probs, &cp), GF_ERR_SHAPE, "cross_entropy",
               "weight [3]", "[2, 4]");
    cp.weight = t2;
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, logits, t2, &cp), GF_ERR_DTYPE, "cross_entropy",
               "weight", "int64");
    cp = gf_ce_default_params();
    cp.label_smoothing = -0.1f;
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, logits, t2, &cp), GF_ERR_INVALID, "cross_entropy",
               "label_smoothing", "-0.1");
    cp.label_smoothing = 1.5f;
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, logits, probs, &cp), GF_ERR_INVALID,
               "cross_entropy", "label_smoothing", "1.5");
    cp.label_smoothing = NAN;
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, logits, t2, &cp), GF_ERR_INVALID, "cross_entropy",
               "label_smoothing", "nan");
    cp = gf_ce_default_params();
    cp.ignore_index = 0;
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, logits, probs, &cp), GF_ERR_INVALID,
               "cross_entropy", "ignore_index 0", "probability");
    cp = gf_ce_default_params();
    cp.reduction = GF_REDUCE_BATCHMEAN;
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, logits, t2, &cp), GF_ERR_INVALID, "cross_entropy",
               "batchmean");
    cp.reduction = (gf_reduction)9;
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, logits, t2, &cp), GF_ERR_INVALID, "cross_entropy",
               "reduction 9");
    cp = gf_ce_default_params();
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, NULL, t2, &cp), GF_ERR_INVALID, "cross_entropy",
               "logits", "NULL");
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, logits, NULL, &cp), GF_ERR_INVALID, "cross_entropy",
               "target", "NULL");
    EXPECT_ERR(ctx, gf_cross_entropy_ex(ctx, t2, t2, &cp), GF_ERR_DTYPE, "cross_entropy",
               "logits", "int64");
    /* the simple form keeps requiring int64 targets */
    EXPECT_ERR(ctx, gf_cross_entropy(ctx, logits, probs, GF_REDUCE_MEAN, -100), GF_ERR_DTYPE,
               "cross_entropy", "target", "int64");

    /* ---- nll_loss ---- */
    EXPECT_ERR(ctx, gf_nll_loss(ctx, logits, t_bad, NULL, GF_REDUCE_SUM, -100), GF_ERR_INVALID,
               "nll_loss", "target 7", "4 classes");
    gf_tensor *t_neg = i64s(ctx, 1, (int64_t[]){2}, (int64_t[]){-2, 0});
    EXPECT_ERR(ctx, gf_nll_loss(ctx, logits, t_neg, NULL, GF_REDUCE_SUM, -100), GF_ERR_INVALID,
               "nll_loss", "target -2");
    EXPECT_ERR(ctx, gf_nll_loss(ctx, logits, t_len, NULL, GF_REDUCE_MEAN, -100), GF_ERR_SHAPE,
               "nll_loss", "[3]", "[2, 4]");
    EXPECT_ERR(ctx, gf_nll_loss(ctx, logits, t2, w3, GF_REDUCE_MEAN, -100), GF_ERR_SHAPE,
               "nll_loss", "weight [3]", "[4]");
    EXPECT_ERR(ctx, gf_nll_loss(ctx, logits, probs, NULL, GF_REDUCE_MEAN, -100), GF_ERR_DTYPE,
               "nll_loss", "target", "int64");
    EXPECT_ERR(ctx, gf_nll_loss(ctx, logits, t2, NULL, GF_REDUCE_BATCHMEAN, -100),
               GF_ERR_INVALID, "nll_loss", "batchmean");
    gf_tensor *l3 = gf_randn(ctx, 3, (int64_t[]){2, 4, 3}, 0, 1);
    gf_tensor *t23 = gf_zeros(ctx, GF_I64, 2, (int64_t[]){2, 4});
    EXPECT_ERR(ctx, gf_nll_loss(ctx, l3, t23, NULL, GF_REDUCE_NONE, -100), GF_ERR_SHAPE,
               "nll_loss", "[2, 4]", "[2, 4, 3]");

    /* ---- l1 / smooth_l1 / huber: no broadcasting, parameters checked ---- */
    gf_tensor *a = gf_randn(ctx, 2, (int64_t[]){3, 2}, 0, 1);
    gf_tensor *b = gf_randn(ctx, 2, (int64_t[]){3, 2}, 0, 1);
    gf_tensor *b1 = gf_randn(ctx, 2, (int64_t[]){3, 1}, 0, 1);
    gf_tensor_set_requires_grad(a, true);
    EXPECT_ERR(ctx, gf_l1_loss(ctx, a, b1, GF_REDUCE_MEAN), GF_ERR_SHAPE, "l1_loss", "[3, 2]",
               "[3, 1]");
    EXPECT_ERR(ctx, gf_smooth_l1_loss(ctx, a, b1, GF_REDUCE_MEAN, 1.0f), GF_ERR_SHAPE,
               "smooth_l1_loss", "[3, 2]", "[3, 1]");
    EXPECT_ERR(ctx, gf_huber_loss(ctx, b1, a, GF_REDUCE_SUM, 1.0f), GF_ERR_SHAPE, "huber_loss",
               "[3, 1]", "[3, 2]");
    EXPECT_ERR(ctx, gf_smooth_l1_loss(ctx, a, b, GF_REDUCE_MEAN, -1.0f), GF_ERR_INVALID,
               "smooth_l1_loss", "beta", "-1");
    EXPECT_ERR(ctx, gf_smooth_l1_loss(ctx, a, b, GF_REDUCE_MEAN, NAN), GF_ERR_INVALID,
               "smooth_l1_loss", "beta");
    EXPECT_ERR(ctx, gf_huber_loss(ctx, a, b, GF_REDUCE_MEAN, 0.0f), GF_ERR_INVALID, "huber_loss",
               "delta", "0");
    EXPECT_ERR(ctx, gf_l1_loss(ctx, a, t2, GF_REDUCE_MEAN), GF_ERR_DTYPE, "l1_loss", "target",
               "int64");
    EXPECT_ERR(ctx, gf_l1_loss(ctx, a, NULL, GF_REDUCE_MEAN), GF_ERR_INVALID, "l1_loss", "NULL");
    EXPECT_ERR(ctx, gf_l1_loss(ctx, a, b, GF_REDUCE_BATCHMEAN), GF_ERR_INVALID, "l1_loss",
               "batchmean");
    EXPECT_ERR(ctx, gf_mse_loss(ctx, a, b, (gf_reduction)-2), GF_ERR_INVALID, "mse_loss",
               "reduction -2");

    /* ---- bce_with_logits ---- */
    gf_tensor *y = gf_full(ctx, 2, (int64_t[]){3, 2}, 0.5f);
    gf_tensor *pw5 = gf_full(ctx, 1, (int64_t[]){5}, 2.0f);
    gf_tensor *w_big = gf_full(ctx, 3, (int64_t[]){2, 3, 2}, 1.0f);
    EXPECT_ERR(ctx, gf_bce_with_logits(ctx, a, b1, NULL, NULL, GF_REDUCE_MEAN), GF_ERR_SHAPE,
               "bce_with_logits", "[3, 2]", "[3, 1]");
    EXPECT_ERR(ctx, gf_bce_with_logits(ctx, a, y, NULL, pw5, GF_REDUCE_MEAN), GF_ERR_SHAPE,
               "bce_with_logits", "pos_weight [5]", "[3, 2]");
    EXPECT_ERR(ctx, gf_bce_with_logits(ctx, a, y, w_big, NULL, GF_REDUCE_MEAN), GF_ERR_SHAPE,
               "bce_with_logits", "weight [2, 3, 2]", "[3, 2]");
    EXPECT_ERR(ctx, gf_bce_with_logits(ctx, a, y, t2, NULL, GF_REDUCE_MEAN), GF_ERR_DTYPE,
               "bce_with_logits", "weight", "int64");
    EXPECT_ERR(ctx, gf_bce_with_logits(ctx, a, y, NULL, NULL, (gf_reduction)5), GF_ERR_INVALID,
               "bce_with_logits", "reduction 5");

    /* ---- kl_div ---- */
    EXPECT_ERR(ctx, gf_kl_div(ctx, a, b1, GF_REDUCE_BATCHMEAN, false), GF_ERR_SHAPE, "kl_div",
               "[3, 2]", "[3, 1]");
    EXPECT_ERR(ctx, gf_kl_div(ctx, a, y, (gf_reduction)4, false), GF_ERR_INVALID, "kl_div",
               "reduction 4");
    EXPECT_ERR(ctx, gf_kl_div(ctx, NULL, y, GF_REDUCE_SUM, false), GF_ERR_INVALID, "kl_div",
               "input", "NULL");
    CHECK(gf_tape_size(ctx) == tape0); /* failed calls record nothing */

    /* ---- identities that hold exactly (up to float rounding) ---- */
    gf_ctx_clear_error(ctx);
    /* one-hot probability targets == index targets */
    float oh[8] = {0, 1, 0, 0, 0, 0, 0, 1};
    gf_tensor *onehot = f32s(ctx, 2, (int64_t[]){2, 4}, oh);
    cp = gf_ce_default_params();
    cp.label_smoothing = 0.2f;
    double ce_idx = item(gf_cross_entropy_ex(ctx, logits, t2, &cp));
    double ce_prob = item(gf_cross_entropy_ex(ctx, logits, onehot, &cp));
    CHECK_NEAR(ce_idx, ce_prob, 1e-5);
    /* unit weights change nothing; the simple form equals the full one */
    cp.label_smoothing = 0.0f;
    gf_tensor *ones4 = gf_full(ctx, 1, (int64_t[]){4}, 1.0f);
    double ce_plain = item(gf_cross_entropy(ctx, logits, t2, GF_REDUCE_MEAN, -100));
    cp.weight = ones4;
    CHECK_NEAR(item(gf_cross_entropy_ex(ctx, logits, t2, &cp)), ce_plain, 1e-6);
    /* a constant weight cancels in the weighted mean */
    cp.weight = w4;
    CHECK_NEAR(item(gf_cross_entropy_ex(ctx, logits, t2, &cp)), ce_plain, 1e-6);
    /* cross_entropy == nll_loss(log_softmax) */
    gf_tensor *lsm = gf_log_softmax(ctx, logits, 1);
    CHECK_NEAR(item(gf_nll_loss(ctx, lsm, t2, NULL, GF_REDUCE_MEAN, -100)), ce_plain, 1e-6);
    /* smooth_l1 with beta 0 == l1; huber(delta) == delta * smooth_l1(beta = delta) */
    CHECK_NEAR(item(gf_smooth_l1_loss(ctx, a, b, GF_REDUCE_SUM, 0.0f)),
               item(gf_l1_loss(ctx, a, b, GF_REDUCE_SUM)), 1e-6);
    CHECK_NEAR(item(gf_huber_loss(ctx, a, b, GF_REDUCE_MEAN, 0.7f)),
               0.7 * item(gf_smooth_l1_loss(ctx, a, b, GF_REDUCE_MEAN, 0.7f)), 1e-6);
    /* kl_div batchmean == sum / N; log_target with log(target) == the plain form */
    gf_tensor *q = gf_softmax(ctx, b, 1), *lq = gf_log_softmax(ctx, b, 1);
    gf_tensor *lp = gf_log_softmax(ctx, a, 1);
    double kl_sum = item(gf_kl_div(ctx, lp, q, GF_REDUCE_SUM, false));
    CHECK_NEAR(item(gf_kl_div(ctx, lp, q, GF_REDUCE_BATCHMEAN, false)), kl_sum / 3.0, 1e-6);
    CHECK_NEAR(item(gf_kl_div(ctx, lp, lq, GF_REDUCE_SUM, true)), kl_sum, 1e-5);
    CHECK(kl_sum >= -1e-6); /* a divergence is never negative */
    /* bce: pos_weight 1 changes nothing; stable at |x| = 200 */
    gf_tensor *ones = gf_full(ctx, 0, NULL, 1.0f);
    CHECK_NEAR(item(gf_bce_with_logits(ctx, a, y, NULL, ones, GF_REDUCE_SUM)),
               item(gf_bce_with_logits(ctx, a, y, NULL, NULL, GF_REDUCE_SUM)), 1e-6);
    float xs[2] = {200.0f, -200.0f}, ys[2] = {0.0f, 1.0f};
    gf_tensor *bx = f32s(ctx, 1, (int64_t[]){2}, xs), *by = f32s(ctx, 1, (int64_t[]){2}, ys);
    CHECK_NEAR(item(gf_bce_with_logits(ctx, bx, by, NULL, NULL, GF_REDUCE_MEAN)), 200.0, 1e-3);
    CHECK(gf_ctx_status(ctx) == GF_OK);

    /* ---- weight gradients (PyTorch has none for nll_loss): d sum(-w_t x_t) / dw_c ---- */
    float xv[6] = {-1.0f, -2.0f, -3.0f, -0.5f, -1.5f, -2.5f};
    gf_tensor *x23 = f32s(ctx, 2, (int64_t[]){2, 3}, xv);
    gf_tensor *w = gf_full(ctx, 1, (int64_t[]){3}, 2.0f);
    gf_tensor_set_requires_grad(w, true);
    gf_tensor *tt = i64s(ctx, 1, (int64_t[]){2}, (int64_t[]){2, 2});
    gf_tensor *nl = gf_nll_loss(ctx, x23, tt, w, GF_REDUCE_SUM, -100);
    CHECK_NEAR(item(nl), 2.0 * (3.0 + 2.5), 1e-6);
    CHECK(gf_backward(ctx, nl) == GF_OK);
    CHECK(w->grad != NULL);
    if (w->grad) {
        CHECK_NEAR(gf_get_f32(w->grad, 0), 0.0, 1e-7);
        CHECK_NEAR(gf_get_f32(w->grad, 2), 5.5, 1e-6);
    }

    /* every target ignored: MEAN is NaN, as PyTorch; the gradients stay 0 (the weights' too) */
    gf_tensor *all_ign = i64s(ctx, 1, (int64_t[]){2}, (int64_t[]){-100, -100});
    gf_tensor *w2 = gf_full(ctx, 1, (int64_t[]){3}, 1.5f);
    gf_tensor_set_requires_grad(w2, true);
    gf_tensor_set_requires_grad(x23, true);
    cp = gf_ce_default_params();
    cp.weight = w2;
    cp.label_smoothing = 0.1f;
    gf_tensor *ln = gf_cross_entropy_ex(ctx, x23, all_ign, &cp);
    CHECK(ln && isnan(item(ln)));
    CHECK(ln && gf_backward(ctx, ln) == GF_OK);
    for (int i = 0; i < 3; i++) CHECK(w2->grad && gf_get_f32(w2->grad, i) == 0.0f);
    for (int i = 0; i < 6; i++) CHECK(x23->grad && gf_get_f32(x23->grad, i) == 0.0f);

    /* a failed loss downstream of another failed op keeps the first message */
    gf_ctx_clear_error(ctx);
    gf_tensor *bad = gf_l1_loss(ctx, a, b1, GF_REDUCE_MEAN);
    CHECK(gf_kl_div(ctx, bad, bad, GF_REDUCE_SUM, false) == NULL);
    CHECK(strstr(gf_ctx_error(ctx), "l1_loss") != NULL);

    gf_ctx_free(ctx);

    /* the same values and gradients, bit for bit, for any thread count */
    size_t n1 = 0, n4 = 0;
    float *r1 = run_big(1, &n1), *r4 = run_big(4, &n4);
    CHECK(r1 && r4 && n1 == n4 && n1 > 0);
    if (r1 && r4 && n1 == n4) CHECK(memcmp(r1, r4, sizeof(float) * n1) == 0);
    if (r1) CHECK(isfinite(r1[0]) && isfinite(r1[1]) && isfinite(r1[7]) && isfinite(r1[8]));
    free(r1);
    free(r4);
    return test_finish("test_errors_loss");
}
