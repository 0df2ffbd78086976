/* Bad input to batch_norm, layer_norm, dropout, embedding, cross_entropy and mse_loss returns
 * NULL with a message naming the op and the shapes or values at fault; nothing aborts. To add
 * a check: one EXPECT_ERR line with the strings the message must contain. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "graft/graft.h"

static gf_tensor *i64s(gf_ctx *ctx, int ndim, const int64_t *shape, const int64_t *v) {
    gf_tensor *t = gf_empty(ctx, GF_I64, ndim, shape);
    memcpy(t->data, v, sizeof(int64_t) * (size_t)t->numel);
    return t;
}

int main(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_tensor *x = gf_randn(ctx, 2, (int64_t[]){4, 3}, 0, 1);
    gf_tensor *x4 = gf_randn(ctx, 4, (int64_t[]){2, 3, 2, 2}, 0, 1);
    gf_tensor *v3 = gf_full(ctx, 1, (int64_t[]){3}, 1.0f);
    gf_tensor *v5 = gf_full(ctx, 1, (int64_t[]){5}, 1.0f);
    gf_tensor *rm = gf_zeros(ctx, GF_F32, 1, (int64_t[]){3});
    gf_tensor *rv = gf_full(ctx, 1, (int64_t[]){3}, 1.0f);
    gf_tensor *ix = gf_zeros(ctx, GF_I64, 2, (int64_t[]){4, 3});

    /* batch_norm */
    EXPECT_ERR(ctx, gf_batch_norm(ctx, NULL, NULL, NULL, rm, rv, true, 0.1f, 1e-5f),
               GF_ERR_INVALID, "batch_norm", "NULL");
    EXPECT_ERR(ctx, gf_batch_norm(ctx, ix, NULL, NULL, rm, rv, true, 0.1f, 1e-5f), GF_ERR_DTYPE,
               "batch_norm", "float32", "int64");
    EXPECT_ERR(ctx, gf_batch_norm(ctx, v3, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f),
               GF_ERR_SHAPE, "batch_norm", "[3]");
    EXPECT_ERR(ctx, gf_batch_norm(ctx, x4, v5, NULL, rm, rv, true, 0.1f, 1e-5f), GF_ERR_SHAPE,
               "batch_norm", "weight", "[5]", "[2, 3, 2, 2]");
    EXPECT_ERR(ctx, gf_batch_norm(ctx, x, NULL, NULL, v5, v5, true, 0.1f, 1e-5f), GF_ERR_SHAPE,
               "batch_norm", "running_mean", "[5]", "[4, 3]");
    EXPECT_ERR(ctx, gf_batch_norm(ctx, x, NULL, NULL, NULL, NULL, false, 0.1f, 1e-5f),
               GF_ERR_INVALID, "batch_norm", "running");
    EXPECT_ERR(ctx, gf_batch_norm(ctx, x, NULL, NULL, rm, NULL, true, 0.1f, 1e-5f),
               GF_ERR_INVALID, "batch_norm", "running_var");
    gf_tensor *one_per_ch = gf_randn(ctx, 2, (int64_t[]){1, 3}, 0, 1);
    EXPECT_ERR(ctx, gf_batch_norm(ctx, one_per_ch, NULL, NULL, rm, rv, true, 0.1f, 1e-5f),
               GF_ERR_SHAPE, "batch_norm", "more than 1 value per channel", "[1, 3]");
    CHECK(gf_f32(rm)[0] == 0.0f && gf_f32(rv)[0] == 1.0f); /* failed calls change nothing */
    /* eval: works with one sample and leaves the running statistics alone */
    gf_ctx_clear_error(ctx);
    CHECK(gf_batch_norm(ctx, one_per_ch, v3, NULL, rm, rv, false, 0.1f, 1e-5f) != NULL);
    CHECK(gf_f32(rm)[1] == 0.0f && gf_f32(rv)[1] == 1.0f);

    /* layer_norm */
    EXPECT_ERR(ctx, gf_layer_norm(ctx, x, 3, NULL, NULL, 1e-5f), GF_ERR_INVALID, "layer_norm",
               "3", "[4, 3]");
    EXPECT_ERR(ctx, gf_layer_norm(ctx, x, 0, NULL, NULL, 1e-5f), GF_ERR_INVALID, "layer_norm");
    EXPECT_ERR(ctx, gf_layer_norm(ctx, x, 1, v5, NULL, 1e-5f), GF_ERR_SHAPE, "layer_norm",
               "weight", "[5]", "[3]", "[4, 3]");
    EXPECT_ERR(ctx, gf_layer_norm(ctx, x4, 2, NULL, v3, 1e-5f), GF_ERR_SHAPE, "layer_norm",
               "bias", "[3]", "[2, 2]", "[2, 3, 2, 2]");
    EXPECT_ERR(ctx, gf_layer_norm(ctx, x, 1, ix, NULL, 1e-5f), GF_ERR_DTYPE, "layer_norm",
               "weight", "int64");
    EXPECT_ERR(ctx, gf_layer_norm(ctx, NULL, 1, NULL, NULL, 1e-5f), GF_ERR_INVALID,
               "layer_norm", "NULL");

    /* dropout */
    EXPECT_ERR(ctx, gf_dropout(ctx, x, 1.5f, true), GF_ERR_INVALID, "dropout", "1.5", "[0, 1]");
    EXPECT_ERR(ctx, gf_dropout(ctx, x, -0.1f, false), GF_ERR_INVALID, "dropout", "-0.1");
    EXPECT_ERR(ctx, gf_dropout(ctx, x, NAN, true), GF_ERR_INVALID, "dropout", "nan");
    EXPECT_ERR(ctx, gf_dropout(ctx, ix, 0.5f, true), GF_ERR_DTYPE, "dropout", "int64");

    /* embedding: the message names the bad index and the vocabulary size */
    gf_tensor *w = gf_randn(ctx, 2, (int64_t[]){10, 4}, 0, 1);
    gf_tensor *bad_idx = i64s(ctx, 2, (int64_t[]){2, 2}, (int64_t[]){1, 2, 17, 3});
    EXPECT_ERR(ctx, gf_embedding(ctx, w, bad_idx, -1), GF_ERR_INVALID, "embedding", "index 17",
               "vocabulary size 10");
    gf_tensor *neg_idx = i64s(ctx, 1, (int64_t[]){2}, (int64_t[]){0, -1});
    EXPECT_ERR(ctx, gf_embedding(ctx, w, neg_idx, -1), GF_ERR_INVALID, "embedding", "index -1",
               "10");
    gf_tensor *good_idx = i64s(ctx, 1, (int64_t[]){2}, (int64_t[]){0, 9});
    EXPECT_ERR(ctx, gf_embedding(ctx, w, good_idx, 10), GF_ERR_INVALID, "embedding",
               "padding_idx 10", "10");
    /* float32 ids must hold whole numbers (a text dataset's token ids) */
    EXPECT_ERR(ctx, gf_embedding(ctx, w, x, -1), GF_ERR_INVALID, "embedding", "float32 index",
               "not a whole number");
    EXPECT_ERR(ctx, gf_embedding(ctx, v5, good_idx, -1), GF_ERR_SHAPE, "embedding", "[5]");

    /* cross_entropy */
    gf_tensor *logits = gf_randn(ctx, 2, (int64_t[]){3, 5}, 0, 1);
    gf_tensor *t_bad = i64s(ctx, 1, (int64_t[]){3}, (int64_t[]){0, 5, 1});
    EXPECT_ERR(ctx, gf_cross_entropy(ctx, logits, t_bad, GF_REDUCE_MEAN, -100), GF_ERR_INVALID,
               "cross_entropy", "target 5", "5 classes");
    gf_tensor *t_neg = i64s(ctx, 1, (int64_t[]){3}, (int64_t[]){0, -3, 1});
    EXPECT_ERR(ctx, gf_cross_entropy(ctx, logits, t_neg, GF_REDUCE_SUM, -100), GF_ERR_INVALID,
               "cross_entropy", "target -3", "5 classes");
    gf_tensor *t_ign = i64s(ctx, 1, (int64_t[]){3}, (int64_t[]){0, -3, 1});
    gf_ctx_clear_error(ctx); /* -3 is fine when it is the ignore_index */
    CHECK(gf_cross_entropy(ctx, logits, t_ign, GF_REDUCE_MEAN, -3) != NULL);
    gf_tensor *t_len = i64s(ctx, 1, (int64_t[]){4}, (int64_t[]){0, 1, 2, 3});
    EXPECT_ERR(ctx, gf_cross_entropy(ctx, logits, t_len, GF_REDUCE_MEAN, -100), GF_ERR_SHAPE,
               "cross_entropy", "[4]", "[3, 5]");
    EXPECT_ERR(ctx, gf_cross_entropy(ctx, logits, logits, GF_REDUCE_MEAN, -100), GF_ERR_DTYPE,
               "cross_entropy", "target", "int64");
    gf_tensor *t3 = i64s(ctx, 1, (int64_t[]){3}, (int64_t[]){0, 1, 2});
    EXPECT_ERR(ctx, gf_cross_entropy(ctx, logits, t3, (gf_reduction)7, -100), GF_ERR_INVALID,
               "cross_entropy", "reduction 7");
    gf_tensor *l3 = gf_randn(ctx, 3, (int64_t[]){2, 4, 3}, 0, 1);
    gf_tensor *t23 = gf_zeros(ctx, GF_I64, 2, (int64_t[]){2, 4});
    EXPECT_ERR(ctx, gf_cross_entropy(ctx, l3, t23, GF_REDUCE_NONE, -100), GF_ERR_SHAPE,
               "cross_entropy", "[2, 4]", "[2, 4, 3]");

    /* mse_loss: both shapes named, no broadcasting */
    gf_tensor *y = gf_randn(ctx, 2, (int64_t[]){4, 1}, 0, 1);
    EXPECT_ERR(ctx, gf_mse_loss(ctx, x, y, GF_REDUCE_MEAN), GF_ERR_SHAPE, "mse_loss", "[4, 3]",
               "[4, 1]");
    EXPECT_ERR(ctx, gf_mse_loss(ctx, x, ix, GF_REDUCE_MEAN), GF_ERR_DTYPE, "mse_loss", "int64");
    EXPECT_ERR(ctx, gf_mse_loss(ctx, x, x, (gf_reduction)-1), GF_ERR_INVALID, "mse_loss",
               "reduction");
    EXPECT_ERR(ctx, gf_mse_loss(ctx, x, NULL, GF_REDUCE_SUM), GF_ERR_INVALID, "mse_loss",
               "NULL");

    /* a failed op downstream of another keeps the first message */
    gf_ctx_clear_error(ctx);
    gf_tensor *e = gf_embedding(ctx, w, bad_idx, -1);
    gf_tensor *l = gf_mse_loss(ctx, e, e, GF_REDUCE_MEAN);
    CHECK(l == NULL && strstr(gf_ctx_error(ctx), "embedding") != NULL);

    gf_ctx_free(ctx);
    return test_finish("test_errors_norm");
}
