/* Transfer primitives, part 3: trunk features. The cached features fed to the head give the
 * model's own outputs bitwise; the cache leaves the caller's arena and the model's modes alone;
 * and an epoch of linear-probe training over cached features is timed against one that runs the
 * trunk every batch (printed, not asserted); the cut points inside a model and their outputs in
 * one pass. To add a case: write a static void test_x(gf_ctx *)
 * with CHECKs and call it from main. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graft/graft.h"
#include "graft/transfer.h"

static char src[1024];

static gf_ds *random_ds(gf_ctx *ctx, int64_t n, int hw, int classes, uint64_t seed) {
    gf_rng r;
    gf_rng_seed(&r, seed);
    float *x = malloc(sizeof(float) * (size_t)(n * hw * hw));
    int64_t *y = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n * hw * hw; i++) x[i] = gf_rng_normal(&r);
    for (int64_t i = 0; i < n; i++) y[i] = (int64_t)gf_rng_below(&r, (uint64_t)classes);
    return test_ds_take(ctx, "random", 3, (int64_t[]){1, hw, hw}, n, x, y, NULL, classes);
}

/* A batch [nb, sample...] of examples start..start+nb of ds as an arena tensor. */
static gf_tensor *batch_of(gf_ctx *ctx, const gf_ds *ds, int64_t start, int64_t nb, gf_tensor *y) {
    int64_t shape[5] = {nb};
    memcpy(shape + 1, gf_ds_shape(ds), sizeof(int64_t) * (size_t)gf_ds_ndim(ds));
    gf_tensor *x = gf_empty(ctx, GF_F32, gf_ds_ndim(ds) + 1, shape);
    int64_t *idx = malloc(sizeof *idx * (size_t)nb);
    for (int64_t i = 0; i < nb; i++) idx[i] = start + i;
    CHECK(gf_ds_batch(ctx, ds, idx, nb, x, y) == GF_OK);
    free(idx);
    return x;
}

static void test_cache_matches_model(gf_ctx *ctx) {
    gf_zoo_params p = gf_zoo_default_params();
    p.height = p.width = 12;
    p.num_classes = 5;
    gf_module *m = gf_zoo_build(ctx, "cnn-small", &p, NULL);
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/interop/cnn-small.safetensors", src);
    CHECK(gf_weights_load(ctx, m, path, &(gf_weights_load_options){true}, NULL) == GF_OK);
    gf_ds *ds = random_ds(ctx, 300, 12, 5, 1);

    gf_module_train(m, true);
    gf_tensor *keep = gf_full(ctx, 1, (int64_t[]){3}, 2.5f); /* must survive the call */
    gf_ds *f = gf_transfer_cache_features(ctx, m, NULL, ds, 64);
    CHECK(f != NULL);
    if (!f) {
        fprintf(stderr, "%s\n", gf_ctx_error(ctx));
        return;
    }
    CHECK(gf_f32(keep)[2] == 2.5f);
    CHECK(gf_module_is_training(m) && gf_module_is_training(gf_module_child(m, "features.0")));
    CHECK(gf_ds_count(f) == 300 && gf_ds_ndim(f) == 1 && gf_ds_shape(f)[0] == 128 &&
          gf_ds_n_classes(f) == 5);
    bool labels = true;
    for (int64_t i = 0; i < 300; i++) labels = labels && gf_ds_label(f, i) == gf_ds_label(ds, i);
    CHECK(labels);

    /* head(cached features) == model(x), bitwise, batch by batch */
    gf_module_train(m, false);
    gf_module *head = gf_module_child(m, "classifier.3");
    bool same = true, trunk_same = true;
    for (int64_t start = 0; start < 300; start += 64) {
        int64_t nb = 300 - start < 64 ? 300 - start : 64;
        gf_tensor *x = batch_of(ctx, ds, start, nb, NULL);
        gf_tensor *fx = batch_of(ctx, f, start, nb, NULL);
        gf_tensor *full = gf_module_forward(ctx, m, x);
        gf_tensor *via = gf_module_forward(ctx, head, fx);
        gf_tensor *tr = gf_transfer_trunk_forward(ctx, m, "classifier.3", x);
        same = same && full && via && full->numel == via->numel &&
               memcmp(full->data, via->data, sizeof(float) * (size_t)full->numel) == 0;
        trunk_same = trunk_same && tr && tr->numel == fx->numel &&
                     memcmp(tr->data, fx->data, sizeof(float) * (size_t)fx->numel) == 0;
        gf_ctx_reset(ctx);
    }
    CHECK(same);
    CHECK(trunk_same);
    /* the head is back in place, and is still the same module type */
    CHECK(strcmp(gf_module_type(gf_module_child(m, "classifier.3")), "Linear") == 0);

    /* errors */
    gf_ctx_clear_error(ctx);
    CHECK(gf_transfer_cache_features(ctx, m, "classifier.9", ds, 0) == NULL);
    CHECK(strstr(gf_ctx_error(ctx), "classifier.9") != NULL);
    gf_ctx_clear_error(ctx);
    int64_t bad_shape[4] = {2, 3, 12, 12}; /* 3 channels into a 1-channel model */
    gf_tensor *xb = gf_zeros(ctx, GF_F32, 4, bad_shape);
    CHECK(gf_transfer_trunk_forward(ctx, m, NULL, xb) == NULL && gf_ctx_status(ctx) == GF_ERR_SHAPE);
    CHECK(strcmp(gf_module_type(gf_module_child(m, "classifier.3")), "Linear") == 0);
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    gf_ds_free(f);
    gf_ds_free(ds);
    gf_module_free(m);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One epoch of head training; trunk != NULL: the features come from running it on ds. */
static void probe_epoch(gf_ctx *ctx, gf_module *m, gf_module *head, gf_optim *opt, const gf_ds *ds,
                        bool live, int64_t bs) {
    int64_t n = gf_ds_count(ds);
    for (int64_t start = 0; start < n; start += bs) {
        int64_t nb = n - start < bs ? n - start : bs;
        gf_tensor *y = gf_empty(ctx, GF_I64, 1, &nb);
        gf_tensor *x = batch_of(ctx, ds, start, nb, y);
        if (live) {
            bool was = gf_ctx_set_grad_enabled(ctx, false);
            x = gf_transfer_trunk_forward(ctx, m, NULL, x);
            gf_ctx_set_grad_enabled(ctx, was);
        }
        gf_optim_zero_grad(opt);
        gf_tensor *loss = gf_cross_entropy(ctx, gf_module_forward(ctx, head, x), y, GF_REDUCE_MEAN, -100);
        if (!loss || gf_backward(ctx, loss) != GF_OK || gf_optim_step(ctx, opt) != GF_OK) {
            CHECK(0);
            fprintf(stderr, "%s\n", gf_ctx_error(ctx));
            return;
        }
        gf_ctx_reset(ctx);
    }
}

static void test_probe_speed(gf_ctx *ctx) {
    gf_zoo_params p = gf_zoo_default_params(); /* 1x28x28, 10 classes */
    gf_module *m = gf_zoo_build(ctx, "cnn-small", &p, NULL);
    gf_ds *ds = random_ds(ctx, 1024, 28, 10, 2);
    CHECK(gf_transfer_freeze(ctx, m, "*") == 8);
    CHECK(gf_transfer_unfreeze(ctx, m, "classifier.3.*") == 2);
    gf_module_train(m, false);
    gf_module *head = gf_module_child(m, "classifier.3");
    gf_tensor *hp[2] = {gf_module_tensor(ctx, head, "weight"), gf_module_tensor(ctx, head, "bias")};
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAM);
    gf_optim *opt = gf_optim_new(ctx, &op, hp, 2);

    double t0 = now();
    probe_epoch(ctx, m, head, opt, ds, true, 128);
    double t_live = now() - t0;
    t0 = now();
    gf_ds *f = gf_transfer_cache_features(ctx, m, NULL, ds, 128);
    double t_cache = now() - t0;
    CHECK(f != NULL);
    double t_cached = 0;
    if (f) {
        t0 = now();
        for (int e = 0; e < 5; e++) probe_epoch(ctx, m, head, opt, f, false, 128);
        t_cached = (now() - t0) / 5;
    }
    printf("linear probe, cnn-small 1x28x28 -> 128 features, 1024 examples, batch 128, %d threads:\n"
           "  epoch running the trunk  %8.2f ms\n"
           "  building the cache       %8.2f ms (once)\n"
           "  epoch on cached features %8.2f ms  (%.0fx faster)\n",
           gf_ctx_threads(ctx), 1e3 * t_live, 1e3 * t_cache, 1e3 * t_cached,
           t_cached > 0 ? t_live / t_cached : 0.0);
    gf_ds_free(f);
    gf_optim_free(opt);
    gf_ds_free(ds);
    gf_module_free(m);
}

/* Largest |a - b| over the elements (in logical order); infinity when the sizes differ. */
static double max_diff(const gf_tensor *a, const gf_tensor *b) {
    if (a->numel != b->numel) return 1.0 / 0.0;
    double d = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double e = fabs((double)gf_get_f32(a, i) - (double)gf_get_f32(b, i));
        if (e > d) d = e;
    }
    return d;
}

/* The steps and block ends of cnn-small and resnet-mini; the outputs at cut points equal what
 * the modules give run by hand, nested paths and a model with its own forward included, and the
 * model is left as it was, also after an error. */
static void test_cut_points(gf_ctx *ctx) {
    gf_zoo_params p = gf_zoo_default_params();
    p.height = p.width = 12;
    p.num_classes = 5;
    gf_module *m = gf_zoo_build(ctx, "cnn-small", &p, NULL);
    gf_transfer_points *pts = gf_transfer_points_of(ctx, m, NULL);
    CHECK(pts && pts->n == 9);
    char all[512] = "", ends[512] = "";
    for (int i = 0; pts && i < pts->n; i++) {
        snprintf(all + strlen(all), sizeof all - strlen(all), "%s ", pts->path[i]);
        if (pts->block_end[i])
            snprintf(ends + strlen(ends), sizeof ends - strlen(ends), "%s ", pts->path[i]);
    }
    CHECK(!strcmp(all, "features.0 features.1 features.2 features.3 features.4 features.5 "
                       "classifier.0 classifier.1 classifier.2 "));
    CHECK(!strcmp(ends, "features.1 features.2 features.4 features.5 classifier.2 "));
    gf_transfer_points_free(pts);

    gf_module_train(m, false);
    gf_ds *ds = random_ds(ctx, 4, 12, 5, 3);
    gf_tensor *x = batch_of(ctx, ds, 0, 4, gf_empty(ctx, GF_I64, 1, (int64_t[]){4}));
    const char *paths[4] = {"classifier.2", "features", "features.1", "features.5"};
    gf_tensor *outs[4];
    CHECK(gf_transfer_forward_points(ctx, m, x, paths, 4, outs) == GF_OK);
    gf_tensor *trunk = gf_transfer_trunk_forward(ctx, m, NULL, x);
    gf_tensor *f1 = gf_module_forward(ctx, gf_module_child(m, "features.1"),
                                      gf_module_forward(ctx, gf_module_child(m, "features.0"), x));
    gf_tensor *feats = gf_module_forward(ctx, gf_module_child(m, "features"), x);
    CHECK(trunk && f1 && feats && outs[0] && outs[1] && outs[2] && outs[3]);
    if (trunk && f1 && feats && outs[0] && outs[1] && outs[2] && outs[3]) {
        CHECK(max_diff(outs[0], trunk) == 0.0);
        CHECK(max_diff(outs[1], feats) == 0.0);
        CHECK(max_diff(outs[2], f1) == 0.0);
        CHECK(max_diff(outs[3], feats) == 0.0);
    }
    CHECK(!strcmp(gf_module_type(gf_module_child(m, "features")), "Sequential") &&
          !strcmp(gf_module_type(gf_module_child(m, "features.1")), "ReLU"));
    const char *bad[2] = {"features.2", "features.9"};
    CHECK(gf_transfer_forward_points(ctx, m, x, bad, 2, outs) == GF_ERR_INVALID &&
          strstr(gf_ctx_error(ctx), "\"features.9\""));
    gf_ctx_clear_error(ctx);
    const char *twice[2] = {"features.2", "features.2"};
    CHECK(gf_transfer_forward_points(ctx, m, x, twice, 2, outs) == GF_ERR_INVALID &&
          strstr(gf_ctx_error(ctx), "named twice"));
    gf_ctx_clear_error(ctx);
    CHECK(!strcmp(gf_module_type(gf_module_child(m, "features.2")), "MaxPool2d"));
    gf_tensor *again = gf_transfer_trunk_forward(ctx, m, NULL, x);
    CHECK(again && trunk && max_diff(again, trunk) == 0.0);
    gf_module_free(m);

    m = gf_zoo_build(ctx, "resnet-mini", &p, NULL); /* its own forward */
    gf_module_train(m, false);
    pts = gf_transfer_points_of(ctx, m, NULL);
    ends[0] = '\0';
    for (int i = 0; pts && i < pts->n; i++)
        if (pts->block_end[i])
            snprintf(ends + strlen(ends), sizeof ends - strlen(ends), "%s ", pts->path[i]);
    CHECK(pts && pts->n == 10 && !strcmp(ends, "relu layer1.0 layer1.1 layer2.0 layer2.1 layer3.0 "
                                               "layer3.1 avgpool "));
    gf_transfer_points_free(pts);
    const char *rp[2] = {"avgpool", "layer2.1"};
    CHECK(gf_transfer_forward_points(ctx, m, x, rp, 2, outs) == GF_OK);
    trunk = gf_transfer_trunk_forward(ctx, m, NULL, x);
    CHECK(outs[0] && outs[1] && trunk && outs[0]->numel == trunk->numel && outs[1]->ndim == 4 &&
          outs[1]->shape[1] == 32);
    if (outs[0] && trunk && outs[0]->numel == trunk->numel)
        for (int64_t i = 0; i < trunk->numel; i++) CHECK(gf_get_f32(outs[0], i) == gf_get_f32(trunk, i));
    gf_module_free(m);
    gf_ds_free(ds);
    gf_ctx_reset(ctx);
}

int main(void) {
    const char *s = getenv("GRAFT_SOURCE_DIR");
    snprintf(src, sizeof src, "%s", s ? s : ".");
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_cache_matches_model(ctx);
    test_cut_points(ctx);
    test_probe_speed(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_transfer_features");
}
