/* Knowledge distillation (include/graft/distill.h): the loss and its gradient against PyTorch
 * (fixtures/lora/distill.json, written by tests/fixtures/gen_lora.py), a finite-difference check,
 * alpha = 0 being exactly plain cross-entropy training, argument errors, and the teacher-logit
 * cache (eval mode, no graph, BatchNorm statistics and the caller's context untouched, the
 * teacher run once however many epochs follow).
 *
 * To add a loss case: add a tuple to gen_distill() in gen_lora.py and rerun it with
 * /usr/bin/python3; test_parity() runs every case in the file. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "graft/distill.h"
#include "graft/graft.h"
#include "graft/loader.h"

static char src[1024];

static cJSON *load_json(const char *rel) {
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/lora/%s", src, rel);
    return test_read_json(path);
}

static const cJSON *item(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static gf_tensor *f32_of(gf_ctx *ctx, const cJSON *a, int64_t n, int64_t c) {
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){n, c});
    int64_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (i < t->numel) gf_f32(t)[i++] = (float)e->valuedouble;
    CHECK(i == n * c);
    return t;
}

/* ---- parity with torch ---------------------------------------------------------------------- */

static void test_parity(gf_ctx *ctx) {
    cJSON *doc = load_json("distill.json");
    CHECK(doc != NULL);
    if (!doc) return;
    const cJSON *c;
    int cases = 0;
    cJSON_ArrayForEach(c, item(doc, "cases")) {
        int64_t n = (int64_t)item(c, "n")->valuedouble, k = (int64_t)item(c, "c")->valuedouble;
        float T = (float)item(c, "T")->valuedouble, alpha = (float)item(c, "alpha")->valuedouble;
        gf_tensor *s = f32_of(ctx, item(c, "student"), n, k);
        gf_tensor *t = f32_of(ctx, item(c, "teacher"), n, k);
        gf_tensor *y = gf_tensor_new(ctx, GF_I64, 1, &n);
        int64_t i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, item(c, "labels")) gf_i64(y)[i++] = (int64_t)e->valuedouble;
        gf_tensor_set_requires_grad(s, true);
        gf_tensor_set_requires_grad(t, true); /* a constant all the same: no gradient may reach it */
        gf_tensor *loss = gf_distill_loss(ctx, s, t, y, T, alpha);
        CHECK(loss && loss->ndim == 0);
        if (!loss) {
            fprintf(stderr, "%s\n", gf_ctx_error(ctx));
            break;
        }
        double want = item(c, "loss")->valuedouble;
        CHECK_NEAR(gf_f32(loss)[0], want, 1e-5 + 1e-5 * fabs(want));
        CHECK(gf_backward(ctx, loss) == GF_OK);
        CHECK(s->grad != NULL && t->grad == NULL);
        i = 0;
        double worst = 0;
        cJSON_ArrayForEach(e, item(c, "grad")) {
            double d = fabs(gf_f32(s->grad)[i++] - e->valuedouble);
            worst = d > worst ? d : worst;
        }
        CHECK(i == n * k);
        if (worst > 1e-6) fprintf(stderr, "%s: gradient off by %g\n", item(c, "id")->valuestring, worst);
        CHECK(worst <= 1e-6);
        gf_ctx_reset(ctx);
        gf_tensor_free(s);
        gf_tensor_free(t);
        gf_tensor_free(y);
        cases++;
    }
    CHECK(cases >= 7);
    cJSON_Delete(doc);
}

/* ---- finite differences (independent of torch) --------------------------------------------------- */

static double loss_at(gf_ctx *ctx, gf_tensor *s, gf_tensor *t, gf_tensor *y, float T, float alpha) {
    bool prev = gf_ctx_set_grad_enabled(ctx, false);
    gf_tensor *l = gf_distill_loss(ctx, s, t, y, T, alpha);
    double v = l ? gf_f32(l)[0] : NAN;
    gf_ctx_set_grad_enabled(ctx, prev);
    gf_ctx_reset(ctx);
    return v;
}

static void test_finite_differences(gf_ctx *ctx) {
    const int64_t n = 3, k = 5;
    gf_tensor *s = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){n, k});
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){n, k});
    gf_tensor *y = gf_tensor_from_data(ctx, GF_I64, 1, &n, (int64_t[]){4, 0, 2});
    for (int64_t i = 0; i < n * k; i++) {
        gf_f32(s)[i] = sinf((float)i * 1.3f) * 2.0f;
        gf_f32(t)[i] = cosf((float)i * 0.9f) * 3.0f;
    }
    gf_tensor_set_requires_grad(s, true);
    const float Ts[] = {1.0f, 2.5f}, alphas[] = {0.4f, 1.0f};
    for (int a = 0; a < 2; a++) {
        gf_tensor_zero_grad(s);
        gf_tensor *l = gf_distill_loss(ctx, s, t, y, Ts[a], alphas[a]);
        CHECK(l && gf_backward(ctx, l) == GF_OK);
        gf_ctx_reset(ctx);
        double worst = 0;
        for (int64_t i = 0; i < n * k; i++) {
            float keep = gf_f32(s)[i], h = 1e-2f;
            gf_f32(s)[i] = keep + h;
            double up = loss_at(ctx, s, t, y, Ts[a], alphas[a]);
            gf_f32(s)[i] = keep - h;
            double down = loss_at(ctx, s, t, y, Ts[a], alphas[a]);
            gf_f32(s)[i] = keep;
            double fd = (up - down) / (2.0 * h);
            worst = fmax(worst, fabs(fd - gf_f32(s->grad)[i]));
        }
        if (worst > 2e-3) fprintf(stderr, "finite differences: off by %g\n", worst);
        CHECK(worst <= 2e-3);
    }
    gf_tensor_free(s);
    gf_tensor_free(t);
    gf_tensor_free(y);
}

/* ---- alpha = 0 at T = 1 is plain training, bitwise ---------------------------------------------- */

static void test_plain_equivalence(gf_ctx *ctx) {
    const int64_t shapes[][2] = {{4, 5}, {7, 3}, {1, 10}};
    for (int sc = 0; sc < 3; sc++) {
        int64_t n = shapes[sc][0], k = shapes[sc][1];
        gf_tensor *s1 = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){n, k});
        gf_tensor *s2 = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){n, k});
        gf_tensor *t = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){n, k});
        gf_tensor *y = gf_tensor_new(ctx, GF_I64, 1, &n);
        for (int64_t i = 0; i < n * k; i++) {
            gf_f32(s1)[i] = gf_f32(s2)[i] = sinf((float)(i * 7 + sc)) * 4.0f;
            gf_f32(t)[i] = cosf((float)(i * 3 + sc)) * 5.0f;
        }
        for (int64_t i = 0; i < n; i++) gf_i64(y)[i] = (i * 2 + sc) % k;
        gf_tensor_set_requires_grad(s1, true);
        gf_tensor_set_requires_grad(s2, true);
        /* both terms are computed; the soft one is weighted by 0 */
        /* (one backward consumes the whole tape: one graph at a time) */
        gf_tensor *ld = gf_distill_loss(ctx, s1, t, y, 1.0f, 0.0f);
        float vd = ld ? gf_f32(ld)[0] : NAN;
        CHECK(ld && gf_backward(ctx, ld) == GF_OK);
        gf_ctx_reset(ctx);
        gf_tensor *lc = gf_cross_entropy(ctx, s2, y, GF_REDUCE_MEAN, -100);
        float vc = lc ? gf_f32(lc)[0] : NAN;
        CHECK(lc && gf_backward(ctx, lc) == GF_OK);
        gf_ctx_reset(ctx);
        CHECK(memcmp(&vd, &vc, sizeof(float)) == 0);
        CHECK(s1->grad && s2->grad && memcmp(gf_f32(s1->grad), gf_f32(s2->grad), sizeof(float) * (size_t)(n * k)) == 0);
        /* the same without a teacher */
        gf_tensor_zero_grad(s1);
        ld = gf_distill_loss(ctx, s1, NULL, y, 1.0f, 0.0f);
        CHECK(ld && memcmp(gf_f32(ld), &vc, sizeof(float)) == 0);
        CHECK(gf_backward(ctx, ld) == GF_OK);
        CHECK(memcmp(gf_f32(s1->grad), gf_f32(s2->grad), sizeof(float) * (size_t)(n * k)) == 0);
        gf_ctx_reset(ctx);
        gf_tensor_free(s1);
        gf_tensor_free(s2);
        gf_tensor_free(t);
        gf_tensor_free(y);
    }
    /* a few steps of SGD: the two trajectories stay bitwise equal */
    gf_rng rng;
    gf_module *m[2];
    gf_optim *opt[2];
    for (int j = 0; j < 2; j++) {
        gf_rng_seed(&rng, 4);
        m[j] = gf_nn_linear(ctx, &rng, 6, 4, true);
        gf_tensor *ps[2] = {gf_module_tensor(ctx, m[j], "weight"), gf_module_tensor(ctx, m[j], "bias")};
        gf_optim_params op = gf_optim_default_params(GF_OPTIM_SGD);
        op.lr = 0.3;
        op.momentum = 0.9;
        opt[j] = gf_optim_new(ctx, &op, ps, 2);
    }
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){8, 6});
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){8, 4});
    gf_tensor *y = gf_tensor_new(ctx, GF_I64, 1, (int64_t[]){8});
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = sinf((float)i);
    for (int64_t i = 0; i < t->numel; i++) gf_f32(t)[i] = cosf((float)i * 2.0f);
    for (int64_t i = 0; i < 8; i++) gf_i64(y)[i] = i % 4;
    for (int step = 0; step < 10; step++) {
        for (int j = 0; j < 2; j++) {
            gf_optim_zero_grad(opt[j]);
            gf_tensor *z = gf_module_forward(ctx, m[j], x);
            gf_tensor *l = j == 0 ? gf_distill_loss(ctx, z, t, y, 1.0f, 0.0f)
                                  : gf_cross_entropy(ctx, z, y, GF_REDUCE_MEAN, -100);
            CHECK(l && gf_backward(ctx, l) == GF_OK && gf_optim_step(ctx, opt[j]) == GF_OK);
            gf_ctx_reset(ctx);
        }
    }
    gf_tensor *w0 = gf_module_tensor(ctx, m[0], "weight"), *w1 = gf_module_tensor(ctx, m[1], "weight");
    CHECK(memcmp(gf_f32(w0), gf_f32(w1), sizeof(float) * 24) == 0);
    for (int j = 0; j < 2; j++) {
        gf_optim_free(opt[j]);
        gf_module_free(m[j]);
    }
    gf_tensor_free(x);
    gf_tensor_free(t);
    gf_tensor_free(y);
}

/* ---- argument errors ---------------------------------------------------------------------------- */

static void test_errors(gf_ctx *ctx) {
    gf_tensor *s = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){4, 5});
    gf_tensor *t6 = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){4, 6});
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){4, 5});
    gf_tensor *y = gf_tensor_new(ctx, GF_I64, 1, (int64_t[]){4});
    gf_tensor *y3 = gf_tensor_new(ctx, GF_I64, 1, (int64_t[]){3});
    gf_tensor *yf = gf_tensor_new(ctx, GF_F32, 1, (int64_t[]){4});
    gf_tensor *s1 = gf_tensor_new(ctx, GF_F32, 1, (int64_t[]){5});
    EXPECT_ERR(ctx, gf_distill_loss(ctx, s, t6, y, 2, 0.5f), GF_ERR_SHAPE, "distill_loss", "[4, 5]", "[4, 6]");
    EXPECT_ERR(ctx, gf_distill_loss(ctx, s, t, y, 0, 0.5f), GF_ERR_INVALID, "T=0");
    EXPECT_ERR(ctx, gf_distill_loss(ctx, s, t, y, NAN, 0.5f), GF_ERR_INVALID, "T=nan");
    EXPECT_ERR(ctx, gf_distill_loss(ctx, s, t, y, 2, 1.5f), GF_ERR_INVALID, "alpha=1.5");
    EXPECT_ERR(ctx, gf_distill_loss(ctx, s, NULL, y, 2, 0.5f), GF_ERR_INVALID, "teacher_logits is NULL");
    EXPECT_ERR(ctx, gf_distill_loss(ctx, s, t, NULL, 2, 0.5f), GF_ERR_INVALID, "labels is NULL");
    EXPECT_ERR(ctx, gf_distill_loss(ctx, s, t, y3, 2, 0.5f), GF_ERR_SHAPE, "labels [3]", "[4, 5]");
    EXPECT_ERR(ctx, gf_distill_loss(ctx, s, t, yf, 2, 0.5f), GF_ERR_DTYPE, "labels");
    EXPECT_ERR(ctx, gf_distill_loss(ctx, s1, t, y, 2, 0.5f), GF_ERR_SHAPE, "[N, C]", "[5]");
    EXPECT_ERR(ctx, gf_distill_loss(ctx, NULL, t, y, 2, 0.5f), GF_ERR_INVALID, "student_logits");
    gf_ctx_clear_error(ctx);
    /* alpha = 1 needs no labels: pure soft targets; T^2 KL of equal logits is 0 */
    gf_tensor *l = gf_distill_loss(ctx, s, t, NULL, 3, 1.0f);
    CHECK(l && fabsf(gf_f32(l)[0]) < 1e-7f);
    gf_ctx_reset(ctx);
    gf_tensor *ts[] = {s, t6, t, y, y3, yf, s1};
    for (int i = 0; i < 7; i++) gf_tensor_free(ts[i]);
}

/* ---- teacher-logit cache -------------------------------------------------------------------------- */

static int teacher_calls;

static gf_tensor *counting_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    teacher_calls++;
    return gf_module_forward(ctx, gf_module_child(self, "net"), x);
}

/* Counting { net: Sequential(Linear(4, 8), BatchNorm1d(8), Dropout(0.5), ReLU, Linear(8, 3)) } */
static gf_module *make_teacher(gf_ctx *ctx, gf_rng *rng) {
    gf_module *parts[] = {gf_nn_linear(ctx, rng, 4, 8, true), gf_nn_batch_norm1d(ctx, 8, NULL),
                          gf_nn_dropout(ctx, 0.5f), gf_nn_relu(ctx), gf_nn_linear(ctx, rng, 8, 3, true)};
    gf_module *t = gf_nn_container(ctx, "Counting", counting_forward, NULL, NULL);
    gf_module_add(ctx, t, "net", gf_nn_sequential_of(ctx, 5, parts));
    return t;
}

static gf_ds *make_ds(gf_ctx *ctx, float *x, int64_t *labels, int64_t n) {
    for (int64_t i = 0; i < n * 4; i++) x[i] = sinf((float)i * 0.37f) * 2.0f;
    for (int64_t i = 0; i < n; i++) labels[i] = (i * 7) % 3;
    gf_ds_desc d;
    memset(&d, 0, sizeof d);
    d.ndim = 1;
    d.shape[0] = 4;
    d.n = n;
    d.x_f32 = x;
    d.labels = labels;
    d.n_classes = 3;
    return gf_ds_from_memory(ctx, &d);
}

static void test_cache(gf_ctx *ctx) {
    gf_rng rng;
    gf_rng_seed(&rng, 8);
    gf_module *teacher = make_teacher(ctx, &rng);
    float xs[10 * 4];
    int64_t labels[10];
    gf_ds *ds = make_ds(ctx, xs, labels, 10);
    CHECK(teacher && ds);
    /* give the BatchNorm statistics that are not the defaults, in training mode */
    gf_tensor *warm = gf_tensor_from_data(ctx, GF_F32, 2, (int64_t[]){10, 4}, xs);
    for (int i = 0; i < 3; i++) {
        CHECK(gf_module_forward(ctx, teacher, warm) != NULL);
        gf_ctx_reset(ctx);
    }
    gf_tensor *rm = gf_module_tensor(ctx, teacher, "net.1.running_mean");
    gf_tensor *nb = gf_module_tensor(ctx, teacher, "net.1.num_batches_tracked");
    float rm0[8];
    memcpy(rm0, gf_f32(rm), sizeof rm0);
    int64_t nb0 = gf_i64(nb)[0];
    /* mixed modes that must come back as they were: the dropout alone in eval */
    gf_module_train(gf_module_child(teacher, "net.2"), false);
    /* the caller's context: an arena tensor, a tape and the RNG must survive */
    gf_tensor *keep = gf_full(ctx, 1, (int64_t[]){3}, 2.5f);
    gf_tensor *leaf = gf_tensor_new(ctx, GF_F32, 1, (int64_t[]){3});
    gf_tensor_set_requires_grad(leaf, true);
    gf_tensor *taped = gf_mul_scalar(ctx, leaf, 2.0f);
    int64_t tape0 = gf_tape_size(ctx);
    gf_rng rng0 = *gf_ctx_rng(ctx);
    teacher_calls = 0;

    gf_teacher_cache *c = gf_teacher_cache_build(ctx, teacher, ds, 4);
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "%s\n", gf_ctx_error(ctx));
        return;
    }
    CHECK(teacher_calls == 3); /* 4 + 4 + 2 */
    CHECK(gf_teacher_cache_count(c) == 10 && gf_teacher_cache_classes(c) == 3);
    CHECK(memcmp(rm0, gf_f32(rm), sizeof rm0) == 0 && gf_i64(nb)[0] == nb0);
    CHECK(gf_module_is_training(teacher) && gf_module_is_training(gf_module_child(teacher, "net.1")) &&
          !gf_module_is_training(gf_module_child(teacher, "net.2")));
    CHECK(gf_f32(keep)[1] == 2.5f && gf_tape_size(ctx) == tape0 && taped->node != NULL);
    CHECK(memcmp(&rng0, gf_ctx_rng(ctx), sizeof rng0) == 0);
    CHECK(gf_ctx_status(ctx) == GF_OK);

    /* each row is the eval-mode logits of that example */
    gf_module_train(teacher, false);
    bool prev = gf_ctx_set_grad_enabled(ctx, false);
    gf_tensor *ref = gf_module_forward(ctx, teacher, warm);
    gf_ctx_set_grad_enabled(ctx, prev);
    double worst = 0;
    for (int64_t i = 0; i < 10; i++)
        for (int64_t k = 0; k < 3; k++) worst = fmax(worst, fabs(gf_teacher_cache_row(c, i)[k] - gf_f32(ref)[i * 3 + k]));
    CHECK(worst <= 1e-5);
    CHECK(gf_teacher_cache_row(c, 10) == NULL && gf_teacher_cache_row(c, -1) == NULL);
    gf_tensor *g = gf_teacher_cache_gather(ctx, c, (int64_t[]){9, 0, 3}, 3);
    CHECK(g && g->ndim == 2 && g->shape[0] == 3 && g->shape[1] == 3 && !g->requires_grad);
    CHECK(g && memcmp(gf_f32(g), gf_teacher_cache_row(c, 9), 12) == 0 &&
          memcmp(gf_f32(g) + 6, gf_teacher_cache_row(c, 3), 12) == 0);
    EXPECT_ERR(ctx, gf_teacher_cache_gather(ctx, c, (int64_t[]){2, 10}, 2), GF_ERR_INVALID, "index 10", "[0, 10)");
    gf_ctx_reset(ctx);
    gf_tensor_free(leaf);

    /* errors: a teacher that does not fit the samples; bad arguments */
    gf_module *wrong = gf_nn_linear(ctx, &rng, 5, 3, true);
    EXPECT_ERR(ctx, gf_teacher_cache_build(ctx, wrong, ds, 4), GF_ERR_SHAPE, "teacher cache", "examples 0..3",
               "in_features=5");
    gf_module_free(wrong);
    gf_module *flat = gf_nn_identity(ctx); /* [n, 4] is fine as logits; a 3-D output is not */
    gf_teacher_cache *c2 = gf_teacher_cache_build(ctx, flat, ds, 16);
    CHECK(c2 && gf_teacher_cache_classes(c2) == 4 && gf_teacher_cache_row(c2, 7)[2] == xs[7 * 4 + 2]);
    gf_teacher_cache_free(c2);
    gf_module_free(flat);
    EXPECT_ERR(ctx, gf_teacher_cache_build(ctx, teacher, ds, 0), GF_ERR_INVALID, "batch_size 0");
    EXPECT_ERR(ctx, gf_teacher_cache_build(ctx, NULL, ds, 4), GF_ERR_INVALID, "teacher NULL");
    gf_ctx_clear_error(ctx);

    /* distil a smaller student from the cache for several epochs: the teacher is not run again */
    teacher_calls = 0;
    gf_module *student = gf_nn_linear(ctx, &rng, 4, 3, true);
    gf_tensor *ps[2] = {gf_module_tensor(ctx, student, "weight"), gf_module_tensor(ctx, student, "bias")};
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAM);
    op.lr = 0.05;
    gf_optim *opt = gf_optim_new(ctx, &op, ps, 2);
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 4;
    lp.seed = 3;
    gf_loader *ld = gf_loader_new(ctx, ds, &lp);
    gf_batch b;
    double first = -1, last = 0;
    for (int epoch = 0; epoch < 40; epoch++) {
        double sum = 0;
        while (gf_loader_next(ctx, ld, &b)) {
            gf_optim_zero_grad(opt);
            gf_tensor *z = gf_module_forward(ctx, student, b.x);
            gf_tensor *l = gf_distill_loss(ctx, z, gf_teacher_cache_gather(ctx, c, b.idx, b.n), NULL, 2.0f, 1.0f);
            CHECK(l && gf_backward(ctx, l) == GF_OK && gf_optim_step(ctx, opt) == GF_OK);
            if (l) sum += gf_f32(l)[0];
            gf_ctx_reset(ctx);
        }
        if (first < 0) first = sum;
        last = sum;
    }
    CHECK(gf_ctx_status(ctx) == GF_OK);
    CHECK(last < 0.5 * first);
    CHECK(teacher_calls == 0);
    gf_loader_free(ld);
    gf_optim_free(opt);
    gf_module_free(student);
    gf_teacher_cache_free(c);
    gf_tensor_free(warm);
    gf_ds_free(ds);
    gf_module_free(teacher);
}

/* ---- the example in docs/LORA_DISTILL.md (keep the two in step) ------------------------------------ */

static int doc_example(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_rng rng;
    gf_rng_seed(&rng, 1);
    float x[64 * 4];
    int64_t y[64];
    for (int i = 0; i < 64 * 4; i++) x[i] = sinf((float)i * 0.61f);
    for (int i = 0; i < 64; i++) y[i] = (x[4 * i] + x[4 * i + 1] > 0) + (x[4 * i + 2] > 0.5f);
    gf_ds_desc d = {.ndim = 1, .shape = {4}, .n = 64, .x_f32 = x, .labels = y, .n_classes = 3};
    gf_ds *ds = gf_ds_from_memory(ctx, &d);

    gf_module *t_parts[] = {gf_nn_linear(ctx, &rng, 4, 32, true), gf_nn_relu(ctx),
                            gf_nn_linear(ctx, &rng, 32, 3, true)};
    gf_module *teacher = gf_nn_sequential_of(ctx, 3, t_parts); /* (trained elsewhere) */
    gf_module *student = gf_nn_linear(ctx, &rng, 4, 3, true);
    if (gf_ctx_status(ctx) != GF_OK) return 1;

    /* the teacher runs once, in eval mode, over the whole dataset */
    gf_teacher_cache *cache = gf_teacher_cache_build(ctx, teacher, ds, 32);
    if (!cache) return 1;

    gf_tensor *params[] = {gf_module_tensor(ctx, student, "weight"), gf_module_tensor(ctx, student, "bias")};
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAM);
    gf_optim *opt = gf_optim_new(ctx, &op, params, 2);
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 16;
    gf_loader *ld = gf_loader_new(ctx, ds, &lp);
    gf_batch b;
    for (int epoch = 0; epoch < 3; epoch++) {
        while (gf_loader_next(ctx, ld, &b)) {
            gf_optim_zero_grad(opt);
            gf_tensor *logits = gf_module_forward(ctx, student, b.x);
            gf_tensor *soft = gf_teacher_cache_gather(ctx, cache, b.idx, b.n); /* [n, 3], constant */
            gf_tensor *loss = gf_distill_loss(ctx, logits, soft, b.y, 4.0f, 0.7f); /* T = 4 */
            if (!loss || gf_backward(ctx, loss) != GF_OK || gf_optim_step(ctx, opt) != GF_OK) return 1;
            gf_ctx_reset(ctx);
        }
    }
    int ok = gf_ctx_status(ctx) == GF_OK;

    gf_loader_free(ld);
    gf_optim_free(opt);
    gf_teacher_cache_free(cache);
    gf_module_free(student);
    gf_module_free(teacher);
    gf_ds_free(ds);
    gf_ctx_free(ctx);
    return ok ? 0 : 1;
}

int main(void) {
    const char *s = getenv("GRAFT_SOURCE_DIR");
    snprintf(src, sizeof src, "%s", s ? s : ".");
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_parity(ctx);
    test_finite_differences(ctx);
    test_plain_equivalence(ctx);
    test_errors(ctx);
    test_cache(ctx);
    gf_ctx_free(ctx);
    CHECK(doc_example() == 0);
    return test_finish("test_distill");
}
