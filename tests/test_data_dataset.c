/* The dataset interface: in-memory datasets (uint8 scaled like ToTensor, float32, regression),
 * the IDX wrapper, callback datasets, reference counting, channel statistics, and the batch
 * errors (bad index, bad shape, bad label). To add a case, add a function and call it in main. */
#include "data_helpers.h"

#include "graft/graft.h"
#include "graft/dataset.h"
#include "testutil.h"

static gf_ctx *ctx;

static void test_memory_u8(void) {
    /* 5 images [2, 2, 3], pixel = 10 * i + j */
    uint8_t px[5 * 12];
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 12; j++) px[i * 12 + j] = (uint8_t)(10 * i + j);
    const int64_t labels[5] = {1, 0, 2, 1, 0};
    static const char *const names[3] = {"a", "b", "c"};
    gf_ds_desc d = {0};
    d.ndim = 3;
    d.shape[0] = 2;
    d.shape[1] = 2;
    d.shape[2] = 3;
    d.n = 5;
    d.x_u8 = px;
    d.labels = labels;
    d.n_classes = 3;
    d.class_names = names;
    d.name = "toy";
    gf_ds *ds = gf_ds_from_memory(ctx, &d);
    CHECK(ds != NULL);
    if (!ds) return;
    px[0] = 255; /* the dataset holds a copy */
    CHECK(gf_ds_count(ds) == 5 && gf_ds_sample_numel(ds) == 12 && gf_ds_n_classes(ds) == 3);
    CHECK(strcmp(gf_ds_class_name(ds, 2), "c") == 0 && gf_ds_class_name(ds, 3) == NULL &&
          gf_ds_class_name(ds, -1) == NULL);
    CHECK(gf_ds_feature_name(ds, 0) == NULL);
    char desc[64];
    CHECK(strcmp(gf_ds_describe(ds, desc, sizeof desc), "toy: 5 x [2, 2, 3], 3 classes") == 0);
    /* a batch in any order, as [n, C, H, W] or flat [n, C*H*W] */
    const int64_t xs4[4] = {3, 2, 2, 3}, xs2[2] = {3, 12}, ys[1] = {3};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, xs4), *y = gf_tensor_new(ctx, GF_I64, 1, ys);
    gf_tensor *xf = gf_tensor_new(ctx, GF_F32, 2, xs2);
    const int64_t idx[3] = {4, 0, 4};
    CHECK(gf_ds_batch(ctx, ds, idx, 3, x, y) == GF_OK);
    CHECK(gf_ds_batch(ctx, ds, idx, 3, xf, NULL) == GF_OK);
    int bad = 0;
    for (int b = 0; b < 3; b++)
        for (int j = 0; j < 12; j++) {
            float want = (float)(10 * idx[b] + j) / 255.0f; /* ToTensor: x.float().div(255) */
            bad += gf_f32(x)[b * 12 + j] != want;
            bad += gf_f32(xf)[b * 12 + j] != want;
        }
    CHECK(bad == 0);
    CHECK(gf_i64(y)[0] == 0 && gf_i64(y)[1] == 1 && gf_i64(y)[2] == 0);
    /* errors: index out of range (names it), wrong shapes and dtypes */
    const int64_t oob[2] = {1, 5};
    CHECK(gf_ds_batch(ctx, ds, oob, 2, xf, NULL) != GF_OK);
    gf_ctx_clear_error(ctx);
    const int64_t xs2b[2] = {2, 12};
    gf_tensor *x2 = gf_tensor_new(ctx, GF_F32, 2, xs2b);
    CHECK(gf_ds_batch(ctx, ds, oob, 2, x2, NULL) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "index 5 (batch position 1) outside 0..4") != NULL);
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_batch(ctx, ds, idx, 3, x2, NULL) == GF_ERR_SHAPE);
    CHECK(strstr(gf_ctx_error(ctx), "[2, 12]") && strstr(gf_ctx_error(ctx), "[2, 2, 3]"));
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_batch(ctx, ds, idx, 3, x, xf) == GF_ERR_SHAPE); /* y must be int64 [3] */
    CHECK(strstr(gf_ctx_error(ctx), "int64") != NULL);
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_batch(ctx, ds, idx, 0, x, NULL) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    /* reference counting: a retained dataset survives one free */
    gf_ds *again = gf_ds_retain(ds);
    gf_ds_free(ds);
    CHECK(gf_ds_count(again) == 5 && gf_ds_label(again, 4) == 0);
    gf_ds_free(again);
    gf_tensor_free(x);
    gf_tensor_free(x2);
    gf_tensor_free(xf);
    gf_tensor_free(y);
}

static void test_memory_f32_regression(void) {
    const float feats[3 * 2] = {1, 2, 3, 4, 5, 6};
    const float targets[3] = {0.5f, -1.5f, 2.0f};
    static const char *const fnames[2] = {"u", "v"};
    gf_ds_desc d = {0};
    d.ndim = 1;
    d.shape[0] = 2;
    d.n = 3;
    d.x_f32 = feats;
    d.targets = targets;
    d.feature_names = fnames;
    gf_ds *ds = gf_ds_from_memory(ctx, &d);
    CHECK(ds && gf_ds_n_classes(ds) == 0 && strcmp(gf_ds_feature_name(ds, 1), "v") == 0);
    if (!ds) return;
    const int64_t xs[2] = {2, 2}, ys[1] = {2};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 2, xs), *y = gf_tensor_new(ctx, GF_F32, 1, ys);
    const int64_t idx[2] = {2, 1};
    CHECK(gf_ds_batch(ctx, ds, idx, 2, x, y) == GF_OK);
    CHECK(gf_f32(x)[0] == 5 && gf_f32(x)[3] == 4 && gf_f32(y)[0] == 2.0f && gf_f32(y)[1] == -1.5f);
    CHECK(gf_ds_label(ds, 0) == -1);
    int64_t counts[1];
    CHECK(gf_ds_class_counts(ctx, ds, counts) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    char desc[64];
    CHECK(strstr(gf_ds_describe(ds, desc, sizeof desc), "regression") != NULL);
    /* channel stats of a table: per feature, population std */
    float mean[2], sd[2];
    CHECK(gf_ds_channel_stats(ctx, ds, mean, sd) == GF_OK);
    CHECK_NEAR(mean[0], 3.0, 1e-6);
    CHECK_NEAR(mean[1], 4.0, 1e-6);
    CHECK_NEAR(sd[0], sqrt(8.0 / 3.0), 1e-6);
    gf_tensor_free(x);
    gf_tensor_free(y);
    gf_ds_free(ds);
}

static void test_bad_descriptions(void) {
    const uint8_t px[4] = {0};
    const int64_t labels[2] = {0, 3};
    gf_ds_desc d = {0};
    d.ndim = 1;
    d.shape[0] = 2;
    d.n = 2;
    d.x_u8 = px;
    d.labels = labels;
    d.n_classes = 3;
    d.name = "bad";
    CHECK(gf_ds_from_memory(ctx, &d) == NULL && gf_ctx_status(ctx) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "bad: label 3 of example 1 outside 0..2") != NULL);
    gf_ctx_clear_error(ctx);
    d.n_classes = 4;
    d.shape[0] = 0;
    CHECK(gf_ds_from_memory(ctx, &d) == NULL && gf_ctx_status(ctx) == GF_ERR_SHAPE);
    gf_ctx_clear_error(ctx);
    d.shape[0] = 2;
    d.x_f32 = (const float *)px; /* both kinds of data */
    CHECK(gf_ds_from_memory(ctx, &d) == NULL && strstr(gf_ctx_error(ctx), "exactly one"));
    gf_ctx_clear_error(ctx);
    d.x_f32 = NULL;
    d.n_classes = 0; /* regression without targets */
    CHECK(gf_ds_from_memory(ctx, &d) == NULL);
    gf_ctx_clear_error(ctx);
    d.n_classes = 4;
    d.ndim = 5;
    CHECK(gf_ds_from_memory(ctx, &d) == NULL && gf_ctx_status(ctx) == GF_ERR_SHAPE);
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_from_memory(ctx, NULL) == NULL);
    gf_ctx_clear_error(ctx);
    gf_ds_free(NULL);
    CHECK(gf_ds_count(NULL) == 0 && gf_ds_label(NULL, 0) == -1);
}

/* An IDX dataset built by hand (what gf_dataset_load_idx returns), wrapped with ownership. */
static void test_idx_wrap(void) {
    gf_dataset *d = calloc(1, sizeof *d);
    d->n = 4;
    d->rows = 2;
    d->cols = 3;
    d->n_classes = 10;
    d->images = malloc(4 * 6);
    d->labels = malloc(4);
    for (int i = 0; i < 24; i++) d->images[i] = (uint8_t)(i * 10);
    for (int i = 0; i < 4; i++) d->labels[i] = (uint8_t)(9 - i);
    gf_ds *ds = gf_ds_from_idx(ctx, d, true, "fashion-mnist train");
    CHECK(ds != NULL);
    if (!ds) return;
    CHECK(gf_ds_ndim(ds) == 3 && gf_ds_shape(ds)[0] == 1 && gf_ds_shape(ds)[1] == 2 &&
          gf_ds_shape(ds)[2] == 3);
    CHECK(strcmp(gf_ds_class_name(ds, 9), "Ankle boot") == 0 && gf_ds_label(ds, 1) == 8);
    float x[6];
    int64_t i = 2, y;
    CHECK(gf_ds_read(ds, &i, 1, x, &y, NULL, 0) == GF_OK);
    CHECK(y == 7 && x[0] == 120.0f / 255.0f && x[5] == 170.0f / 255.0f);
    gf_ds_free(ds); /* frees d as well (ASan/valgrind would see a leak otherwise) */
    /* MNIST names, borrowed (not owned) dataset */
    gf_dataset d2 = {0};
    uint8_t img[2] = {0, 255}, lab[2] = {3, 0};
    d2.n = 2;
    d2.rows = 1;
    d2.cols = 1;
    d2.n_classes = 10;
    d2.images = img;
    d2.labels = lab;
    ds = gf_ds_from_idx(ctx, &d2, false, "mnist test");
    CHECK(ds && strcmp(gf_ds_class_name(ds, 3), "3 - three") == 0);
    gf_ds_free(ds);
    /* a label outside the classes: error; the owned dataset is freed anyway */
    gf_dataset *d3 = calloc(1, sizeof *d3);
    d3->n = 1;
    d3->rows = d3->cols = 1;
    d3->n_classes = 2;
    d3->images = calloc(1, 1);
    d3->labels = malloc(1);
    d3->labels[0] = 2;
    CHECK(gf_ds_from_idx(ctx, d3, true, "broken") == NULL && gf_ctx_status(ctx) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(ctx), "label 2 of example 0") != NULL);
    gf_ctx_clear_error(ctx);
    /* missing files: the IDX reader's error comes through */
    CHECK(gf_ds_load_named(ctx, "/nonexistent-folder/x", GF_DATASET_TRAIN) == NULL);
    CHECK(gf_ctx_status(ctx) != GF_OK);
    gf_ctx_clear_error(ctx);
}

/* A dataset served by callbacks: example i = [i, -i], label i % 3; fails on index 13. */
static int freed;
static gf_status src_read(void *user, const int64_t *idx, int64_t n, float *x, void *y, char *err,
                          size_t cap) {
    (void)user;
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] == 13) {
            snprintf(err, cap, "example 13 is unlucky");
            return GF_ERR_IO;
        }
        if (x) {
            x[2 * i] = (float)idx[i];
            x[2 * i + 1] = -(float)idx[i];
        }
        if (y) ((int64_t *)y)[i] = idx[i] % 3;
    }
    return GF_OK;
}
static void src_free(void *user) { freed += *(int *)user; }

static void test_source(void) {
    static int token = 1;
    gf_ds_source src = {src_read, NULL, src_free, NULL};
    const int64_t shape[1] = {2};
    gf_ds *ds = gf_ds_from_source(ctx, &src, &token, 20, 1, shape, 3, NULL, "callbacks");
    CHECK(ds != NULL);
    if (!ds) return;
    CHECK(gf_ds_label(ds, 5) == 2 && strcmp(gf_ds_class_name(ds, 1), "1") == 0);
    float x[4];
    int64_t y[2], idx[2] = {4, 7};
    CHECK(gf_ds_read(ds, idx, 2, x, y, NULL, 0) == GF_OK);
    CHECK(x[0] == 4 && x[3] == -7 && y[0] == 1 && y[1] == 1);
    idx[1] = 13;
    char err[128];
    CHECK(gf_ds_read(ds, idx, 2, x, y, err, sizeof err) == GF_ERR_IO && strstr(err, "unlucky"));
    int64_t counts[3];
    CHECK(gf_ds_class_counts(ctx, ds, counts) != GF_OK); /* label of 13 cannot be read */
    gf_ctx_clear_error(ctx);
    gf_ds_free(ds);
    CHECK(freed == 1);
    /* no read callback: error, and the user data is still released */
    gf_ds_source none = {NULL, NULL, src_free, NULL};
    CHECK(gf_ds_from_source(ctx, &none, &token, 1, 1, shape, 0, NULL, NULL) == NULL);
    CHECK(freed == 2);
    gf_ctx_clear_error(ctx);
}

static void test_stats_images(void) {
    /* 2 images [2, 1, 2]: channel 0 holds 0, 255, 0, 255; channel 1 holds 51 everywhere */
    const uint8_t px[8] = {0, 255, 51, 51, 0, 255, 51, 51};
    const int64_t labels[2] = {0, 0};
    gf_ds_desc d = {0};
    d.ndim = 3;
    d.shape[0] = 2;
    d.shape[1] = 1;
    d.shape[2] = 2;
    d.n = 2;
    d.x_u8 = px;
    d.labels = labels;
    d.n_classes = 1;
    gf_ds *ds = gf_ds_from_memory(ctx, &d);
    float mean[2], sd[2];
    CHECK(ds && gf_ds_channel_stats(ctx, ds, mean, sd) == GF_OK);
    CHECK_NEAR(mean[0], 0.5, 1e-7);
    CHECK_NEAR(sd[0], 0.5, 1e-7);
    CHECK_NEAR(mean[1], 0.2, 1e-7);
    CHECK(sd[1] == 1.0f); /* constant channel: std 1, as StandardScaler */
    gf_ds_free(ds);
}

int main(void) {
    ctx = gf_ctx_new(NULL);
    test_memory_u8();
    test_memory_f32_regression();
    test_bad_descriptions();
    test_idx_wrap();
    test_source();
    test_stats_images();
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_free(ctx);
    return test_finish("test_data_dataset");
}
