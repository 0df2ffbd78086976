/* Data parallelism inside the process (gf_replicas, gf_backward_route_grads, gf_fit's replicas):
 * the gradient of a batch split between replicas equals the one-context gradient (cnn-small
 * with cross entropy, an MLP with MSE, uneven slices, scaling, accumulation), a non-finite
 * slice changes no gradient, BatchNorm's batch statistics exchanged between the replicas,
 * which models may be replicated and why not, the RNG rule for
 * Dropout, gradient routing errors, and gf_fit: replicated runs reproducible and close to the
 * unreplicated run, explicit counts refused with a reason. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "graft/checkpoint.h"
#include "graft/graft.h"
#include "graft/nn.h"
#include "graft/optim.h"
#include "graft/train.h"
#include "graft/zoo.h"

enum { SIDE = 12, PIX = SIDE * SIDE, CLASSES = 4 };

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static float rndf(void) { /* xorshift64*: the test's own stream, in [-1, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint32_t u = (uint32_t)((rng_state * 0x2545f4914f6cdd1du) >> 32);
    return (float)(u >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
}

static gf_ctx *new_ctx(int threads) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = threads;
    cp.seed = 3;
    return gf_ctx_new(&cp);
}

static gf_module *small_cnn(gf_ctx *ctx, uint64_t seed) {
    gf_zoo_params p = gf_zoo_default_params();
    p.height = p.width = SIDE;
    p.num_classes = CLASSES;
    gf_rng rng;
    gf_rng_seed(&rng, seed);
    return gf_zoo_build(ctx, "cnn-small", &p, &rng);
}

/* flatten - linear - relu - [dropout] - linear */
static gf_module *small_mlp(gf_ctx *ctx, uint64_t seed, float dropout, int out) {
    gf_rng rng;
    gf_rng_seed(&rng, seed);
    gf_module *m = gf_nn_sequential(ctx);
    gf_module_append(ctx, m, gf_nn_flatten(ctx, 1, -1));
    gf_module_append(ctx, m, gf_nn_linear(ctx, &rng, PIX, 16, true));
    gf_module_append(ctx, m, gf_nn_relu(ctx));
    if (dropout > 0) gf_module_append(ctx, m, gf_nn_dropout(ctx, dropout));
    gf_module_append(ctx, m, gf_nn_linear(ctx, &rng, 16, out, true));
    return gf_ctx_status(ctx) == GF_OK ? m : NULL;
}

static gf_tensor *images(gf_ctx *ctx, int64_t n) {
    int64_t shape[4] = {n, 1, SIDE, SIDE};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, shape);
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = rndf();
    return x;
}

static gf_tensor *labels(gf_ctx *ctx, int64_t n) {
    gf_tensor *y = gf_tensor_new(ctx, GF_I64, 1, &n);
    for (int64_t i = 0; i < n; i++) gf_i64(y)[i] = (int64_t)((rndf() + 1.0f) * 2.0f) % CLASSES;
    return y;
}

/* Every trainable gradient of m, concatenated (zeros where a gradient has no buffer). */
static float *grads_of(gf_ctx *ctx, gf_module *m, int64_t *n) {
    gf_named_tensors *pl = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    int64_t total = 0;
    for (int i = 0; i < pl->n; i++) total += pl->items[i].tensor->numel;
    float *g = calloc((size_t)total, sizeof *g), *p = g;
    for (int i = 0; i < pl->n; i++) {
        const gf_tensor *t = pl->items[i].tensor;
        if (t->grad) memcpy(p, gf_f32(t->grad), sizeof(float) * (size_t)t->numel);
        p += t->numel;
    }
    gf_named_tensors_free(pl);
    *n = total;
    return g;
}

static double max_rel_diff(const float *a, const float *b, int64_t n) {
    double scale = 0, diff = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(a[i]) > scale) scale = fabs(a[i]);
        if (fabs(a[i] - b[i]) > diff) diff = fabs(a[i] - b[i]);
    }
    return diff / (scale > 0 ? scale : 1);
}

/* One-context reference: gradient of scale * loss, the loss and the correct count. */
static float *reference(gf_ctx *ctx, gf_module *m, const gf_loss_spec *loss, gf_tensor *x,
                        gf_tensor *y, float scale, double *lv, int64_t *correct, int64_t *n) {
    gf_module_zero_grad(m);
    gf_tensor *out = gf_module_forward(ctx, m, x);
    gf_tensor *l = gf_loss_compute(ctx, loss, out, y);
    CHECK(l != NULL);
    *lv = gf_get_f32(l, 0);
    *correct = gf_eval_batch_correct(loss, out, y, NULL);
    CHECK(gf_backward(ctx, gf_mul_scalar(ctx, l, scale)) == GF_OK);
    gf_ctx_reset(ctx);
    return grads_of(ctx, m, n);
}

/* Two replicas' step on (x, y) against the one-context reference: gradients within tol
 * (relative), the loss within tol, the correct counts equal. */
static void two_replicas_match(gf_ctx *ctx, gf_module *m, gf_tensor *x, gf_tensor *y, double tol,
                               const char *what) {
    double lv;
    int64_t correct, ng, ng2;
    float *ref = reference(ctx, m, NULL, x, y, 1.0f, &lv, &correct, &ng);
    gf_replicas *r = gf_replicas_new(ctx, m, 2);
    CHECK(r != NULL);
    gf_module_zero_grad(m);
    gf_replicas_out ro;
    CHECK(r && gf_replicas_step(ctx, r, NULL, x, y, 1.0f, &ro) == GF_OK);
    float *got = grads_of(ctx, m, &ng2);
    const double d = ng2 == ng ? max_rel_diff(ref, got, ng) : 1.0;
    if (d > tol) fprintf(stderr, "%s: max rel diff %g\n", what, d);
    CHECK(d <= tol && isfinite(ro.loss) && ro.correct == correct);
    CHECK_NEAR(ro.loss, lv, tol * (1 + fabs(lv)));
    free(ref);
    free(got);
    gf_replicas_free(r);
}

/* The replicas' gradient equals the one-context gradient, for several batch sizes (uneven
 * slices, fewer examples than replicas) and counts; a second step adds to the first. */
static void test_gradients_match(void) {
    gf_ctx *ctx = new_ctx(2);
    gf_module *m = small_cnn(ctx, 5);
    const int64_t sizes[] = {16, 7, 2};
    const int counts[] = {2, 3};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
            const int64_t n = sizes[si];
            gf_tensor *x = images(ctx, n), *y = labels(ctx, n);
            double lv;
            int64_t correct, ng;
            float *ref = reference(ctx, m, NULL, x, y, 0.5f, &lv, &correct, &ng);
            gf_replicas *r = gf_replicas_new(ctx, m, counts[ci]);
            CHECK(r && gf_replicas_count(r) == counts[ci]);
            gf_module_zero_grad(m);
            gf_replicas_out ro;
            CHECK(gf_replicas_step(ctx, r, NULL, x, y, 0.5f, &ro) == GF_OK);
            int64_t ng2;
            float *got = grads_of(ctx, m, &ng2);
            CHECK(ng2 == ng);
            const double d = max_rel_diff(ref, got, ng);
            if (d > 2e-6)
                fprintf(stderr, "n %lld, %d replicas: max rel diff %g\n", (long long)n,
                        counts[ci], d);
            CHECK(d <= 2e-6);
            CHECK_NEAR(ro.loss, lv, 1e-6 * (1 + fabs(lv)));
            CHECK(ro.correct == correct && correct >= 0);
            /* accumulation: a second identical step doubles the gradient */
            CHECK(gf_replicas_step(ctx, r, NULL, x, y, 0.5f, &ro) == GF_OK);
            float *twice = grads_of(ctx, m, &ng2);
            for (int64_t i = 0; i < ng; i++) got[i] *= 2.0f;
            CHECK(max_rel_diff(got, twice, ng) <= 1e-6);
            free(ref);
            free(got);
            free(twice);
            gf_replicas_free(r);
            gf_tensor_free(x);
            gf_tensor_free(y);
        }
    gf_module_free(m);
    gf_ctx_free(ctx);
}

/* MSE on float targets through an MLP: the same equality; accuracy does not apply (-1). */
static void test_mse_mlp(void) {
    gf_ctx *ctx = new_ctx(2);
    gf_module *m = small_mlp(ctx, 9, 0.0f, 3);
    const int64_t n = 11, ts[2] = {n, 3};
    gf_tensor *x = images(ctx, n), *t = gf_tensor_new(ctx, GF_F32, 2, ts);
    for (int64_t i = 0; i < t->numel; i++) gf_f32(t)[i] = rndf();
    gf_loss_spec mse = gf_loss_default(GF_LOSS_MSE);
    double lv;
    int64_t correct, ng;
    float *ref = reference(ctx, m, &mse, x, t, 1.0f, &lv, &correct, &ng);
    gf_replicas *r = gf_replicas_new(ctx, m, 2);
    gf_module_zero_grad(m);
    gf_replicas_out ro;
    CHECK(gf_replicas_step(ctx, r, &mse, x, t, 1.0f, &ro) == GF_OK);
    float *got = grads_of(ctx, m, &ng);
    CHECK(max_rel_diff(ref, got, ng) <= 2e-6);
    CHECK_NEAR(ro.loss, lv, 1e-6 * (1 + fabs(lv)));
    CHECK(ro.correct == -1 && correct == -1);
    free(ref);
    free(got);
    gf_replicas_free(r);
    gf_module_free(m);
    gf_tensor_free(x);
    gf_tensor_free(t);
    gf_ctx_free(ctx);
}

/* x[at] set to NaN: the step's loss says so and no gradient changes (not even the other
 * slices'). */
static void nan_step_changes_nothing(gf_ctx *ctx, gf_module *m, gf_replicas *r, gf_tensor *x,
                                     gf_tensor *y, int64_t at) {
    int64_t ng;
    gf_replicas_out ro;
    float *before = grads_of(ctx, m, &ng);
    gf_f32(x)[at] = NAN;
    CHECK(gf_replicas_step(ctx, r, NULL, x, y, 1.0f, &ro) == GF_OK);
    CHECK(!isfinite(ro.loss));
    float *after = grads_of(ctx, m, &ng);
    CHECK(memcmp(before, after, sizeof(float) * (size_t)ng) == 0);
    free(before);
    free(after);
}

/* A NaN in one slice: the loss says so and no gradient changes (not even the other slice's). */
static void test_nonfinite_slice(void) {
    gf_ctx *ctx = new_ctx(2);
    gf_module *m = small_cnn(ctx, 6);
    const int64_t n = 8;
    gf_tensor *x = images(ctx, n), *y = labels(ctx, n);
    gf_replicas *r = gf_replicas_new(ctx, m, 2);
    gf_replicas_out ro;
    gf_module_zero_grad(m);
    CHECK(gf_replicas_step(ctx, r, NULL, x, y, 1.0f, &ro) == GF_OK && isfinite(ro.loss));
    nan_step_changes_nothing(ctx, m, r, x, y, 7 * PIX + 3); /* the second slice's last image */
    gf_replicas_free(r);
    gf_module_free(m);
    gf_tensor_free(x);
    gf_tensor_free(y);
    gf_ctx_free(ctx);
}

static gf_tensor *custom_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_module_forward(ctx, gf_module_child(self, "body"), x);
}

static gf_tensor *sum_loss(gf_ctx *ctx, gf_tensor *out, gf_tensor *y, void *user) {
    (void)y;
    (void)user;
    return gf_sum(ctx, out, NULL, 0, false);
}

/* conv - BatchNorm2d - relu - flatten - linear */
static gf_module *bn_cnn(gf_ctx *ctx, uint64_t seed) {
    gf_rng rng;
    gf_rng_seed(&rng, seed);
    gf_module *m = gf_nn_sequential(ctx);
    gf_module_append(ctx, m, gf_nn_conv2d(ctx, &rng, 1, 6, 3, 3, NULL, true));
    gf_module_append(ctx, m, gf_nn_batch_norm2d(ctx, 6, NULL));
    gf_module_append(ctx, m, gf_nn_relu(ctx));
    gf_module_append(ctx, m, gf_nn_flatten(ctx, 1, -1));
    gf_module_append(ctx, m, gf_nn_linear(ctx, &rng, 6 * (SIDE - 2) * (SIDE - 2), CLASSES, true));
    return gf_ctx_status(ctx) == GF_OK ? m : NULL;
}

/* BatchNorm's running mean then variance, appended to a copy of its .grad-free state. */
static void running_stats(gf_module *m, float *out) {
    gf_module *bn = gf_module_child(m, "1");
    const gf_tensor *rm = gf_module_tensor(NULL, bn, "running_mean");
    const gf_tensor *rv = gf_module_tensor(NULL, bn, "running_var");
    memcpy(out, rm->data, sizeof(float) * 6);
    memcpy(out + 6, rv->data, sizeof(float) * 6);
}

static void set_running_stats(gf_module *m, const float *in) {
    gf_module *bn = gf_module_child(m, "1");
    memcpy(gf_module_tensor(NULL, bn, "running_mean")->data, in, sizeof(float) * 6);
    memcpy(gf_module_tensor(NULL, bn, "running_var")->data, in + 6, sizeof(float) * 6);
}

/* BatchNorm on batch statistics split between replicas: the replicas exchange the statistics,
 * so the gradient, the loss and the running statistics (moved once, not once per replica) are
 * the one-context ones up to rounding, for uneven slices and fewer examples than replicas; a
 * replica's error stops the step with that error instead of leaving the others waiting. */
static void test_batch_norm_sync(void) {
    gf_ctx *ctx = new_ctx(3);
    gf_module *m = bn_cnn(ctx, 11);
    CHECK(m && gf_module_uses_batch_stats(m));
    if (!m) return;
    float start[12], ref_stats[12], got_stats[12];
    running_stats(m, start);
    const int64_t sizes[] = {16, 7, 3};
    for (size_t si = 0; si < 3; si++)
        for (int count = 2; count <= 3; count++) {
            const int64_t n = sizes[si];
            gf_tensor *x = images(ctx, n), *y = labels(ctx, n);
            double lv;
            int64_t correct, ng, ng2;
            set_running_stats(m, start);
            float *ref = reference(ctx, m, NULL, x, y, 1.0f, &lv, &correct, &ng);
            running_stats(m, ref_stats);
            set_running_stats(m, start);
            gf_replicas *r = gf_replicas_new(ctx, m, count);
            CHECK(r != NULL);
            gf_module_zero_grad(m);
            gf_replicas_out ro;
            const int64_t *tracked =
                gf_i64(gf_module_tensor(NULL, gf_module_child(m, "1"), "num_batches_tracked"));
            const int64_t batches = *tracked;
            CHECK(r && gf_replicas_step(ctx, r, NULL, x, y, 1.0f, &ro) == GF_OK);
            CHECK(*tracked == batches + 1); /* counted once, not once per replica */
            running_stats(m, got_stats);
            float *got = grads_of(ctx, m, &ng2);
            const double d = max_rel_diff(ref, got, ng);
            const double ds = max_rel_diff(ref_stats, got_stats, 12);
            if (d > 1e-5 || ds > 1e-6)
                fprintf(stderr, "bn sync, n %lld, %d replicas: gradients %g, running stats %g\n",
                        (long long)n, count, d, ds);
            CHECK(ng2 == ng && d <= 1e-5 && ds <= 1e-6);
            CHECK(max_rel_diff(start, got_stats, 12) > 1e-3); /* they did move */
            CHECK_NEAR(ro.loss, lv, 1e-5 * (1 + fabs(lv)));
            CHECK(ro.correct == correct);
            /* the same step again: the same bits (the exchange adds in replica order) */
            set_running_stats(m, start);
            gf_module_zero_grad(m);
            CHECK(r && gf_replicas_step(ctx, r, NULL, x, y, 1.0f, &ro) == GF_OK);
            float *again = grads_of(ctx, m, &ng2);
            CHECK(memcmp(got, again, sizeof(float) * (size_t)ng) == 0);
            if (n == 16 && count == 2) {
                /* a bad target in the second slice: its error, and the first one does not hang */
                gf_i64(y)[n - 1] = CLASSES + 3;
                CHECK(r && gf_replicas_step(ctx, r, NULL, x, y, 1.0f, &ro) != GF_OK);
                CHECK(!strstr(gf_ctx_error(ctx), "another replica"));
                fprintf(stderr, "expected: %s\n", gf_ctx_error(ctx));
                gf_ctx_clear_error(ctx);
                gf_i64(y)[n - 1] = 0;
                /* a NaN there: no gradient changes, and the step still ends */
                if (r) nan_step_changes_nothing(ctx, m, r, x, y, (n - 1) * PIX);
            }
            free(ref);
            free(got);
            free(again);
            gf_replicas_free(r);
            gf_tensor_free(x);
            gf_tensor_free(y);
        }
    set_running_stats(m, start);
    gf_module_free(m);
    gf_ctx_free(ctx);
}

/* Per-step targets with every target of the first slice ignored: that slice weighs nothing in
 * the loss but still feeds BatchNorm's statistics, so its rows get a gradient through them and
 * the replicas' gradient is still the one-context one. Model: Linear(5, 4) per step,
 * BatchNorm1d over the 6 steps, Linear(4, 3). */
static void test_batch_norm_ignored_slice(void) {
    gf_ctx *ctx = new_ctx(2);
    enum { T = 6, F = 5 };
    gf_rng rng;
    gf_rng_seed(&rng, 13);
    gf_module *m = gf_nn_sequential(ctx);
    gf_module_append(ctx, m, gf_nn_linear(ctx, &rng, F, 4, true));
    gf_module_append(ctx, m, gf_nn_batch_norm1d(ctx, T, NULL));
    gf_module_append(ctx, m, gf_nn_linear(ctx, &rng, 4, 3, true));
    const int64_t n = 6;
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 3, (int64_t[]){n, T, F});
    gf_tensor *y = gf_tensor_new(ctx, GF_I64, 2, (int64_t[]){n, T});
    CHECK(gf_ctx_status(ctx) == GF_OK);
    if (gf_ctx_status(ctx) != GF_OK) return;
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = rndf();
    for (int64_t i = 0; i < y->numel; i++)
        gf_i64(y)[i] = i < n / 2 * T ? GF_DS_IGNORE_LABEL : (int64_t)((rndf() + 1.0f) * 1.5f) % 3;
    two_replicas_match(ctx, m, x, y, 1e-5, "bn sync, ignored slice");
    gf_tensor_free(x);
    gf_tensor_free(y);
    gf_module_free(m);
    gf_ctx_free(ctx);
}

static gf_tensor *batch_total(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)self, (void)user;
    return gf_sum(ctx, x, NULL, 0, false);
}

/* gf_replicas_forward: the one-context outputs (BatchNorm on running statistics, and on batch
 * statistics exchanged between the replicas), rows joined in order for uneven slices; an output
 * that does not keep one row per example and a replica's own error are reported. */
static void test_forward(void) {
    gf_ctx *ctx = new_ctx(3);
    gf_module *m = bn_cnn(ctx, 21);
    float start[12];
    running_stats(m, start);
    for (int train = 0; train < 2; train++) {
        gf_module_train(m, train == 1);
        for (int count = 2; count <= 3; count++) {
            const int64_t n = 7;
            gf_tensor *x = images(ctx, n);
            gf_ctx_set_grad_enabled(ctx, false);
            set_running_stats(m, start);
            gf_tensor *ref = gf_module_forward(ctx, m, x);
            CHECK(ref && ref->ndim == 2 && ref->shape[0] == n);
            float *want = malloc(sizeof(float) * (size_t)ref->numel);
            memcpy(want, ref->data, sizeof(float) * (size_t)ref->numel);
            gf_ctx_reset(ctx);
            set_running_stats(m, start);
            gf_replicas *r = gf_replicas_new(ctx, m, count);
            gf_tensor *got = r ? gf_replicas_forward(ctx, r, x) : NULL;
            CHECK(got && got->ndim == 2 && got->shape[0] == n && got->shape[1] == CLASSES);
            const double d = got ? max_rel_diff(want, gf_f32(got), n * CLASSES) : 1.0;
            if (d > 1e-5) fprintf(stderr, "forward, %s, %d replicas: %g\n",
                                  train ? "batch statistics" : "running statistics", count, d);
            CHECK(d <= 1e-5);
            gf_ctx_reset(ctx);
            /* a replica's error: the input does not fit the first convolution */
            gf_tensor *bad = gf_zeros(ctx, GF_F32, 4, (int64_t[]){4, 2, SIDE, SIDE});
            CHECK(r && !gf_replicas_forward(ctx, r, bad));
            CHECK(strstr(gf_ctx_error(ctx), "Conv2d") && !strstr(gf_ctx_error(ctx), "another"));
            gf_ctx_clear_error(ctx);
            gf_ctx_reset(ctx);
            gf_ctx_set_grad_enabled(ctx, true);
            free(want);
            gf_replicas_free(r);
            gf_tensor_free(x);
        }
    }
    set_running_stats(m, start);
    gf_module_free(m);
    gf_module *t = gf_nn_container(ctx, "Total", batch_total, NULL, NULL);
    gf_module_set_reentrant(t, true);
    gf_replicas *r = gf_replicas_new(ctx, t, 2);
    gf_tensor *x = images(ctx, 4);
    CHECK(r && !gf_replicas_forward(ctx, r, x));
    CHECK(strstr(gf_ctx_error(ctx), "one row per example") != NULL);
    gf_ctx_clear_error(ctx);
    gf_replicas_free(r);
    gf_module_free(t);
    gf_tensor_free(x);
    gf_ctx_free(ctx);
}

/* gf_evaluate_ex on two threads splits batches between replicas by default: the loss and
 * the accuracy of a whole pass are those of the unsplit run (replicas = 1). */
static void test_evaluate(void) {
    gf_ctx *ctx = new_ctx(2);
    const int64_t N = 50, shape[3] = {1, SIDE, SIDE};
    float *xs = malloc(sizeof(float) * (size_t)(N * PIX));
    int64_t *ys = malloc(sizeof(int64_t) * (size_t)N);
    for (int64_t i = 0; i < N * PIX; i++) xs[i] = rndf();
    for (int64_t i = 0; i < N; i++) ys[i] = (int64_t)((rndf() + 1.0f) * 2.0f) % CLASSES;
    gf_ds *ds = test_ds_take(ctx, "eval", 3, shape, N, xs, ys, NULL, CLASSES);
    gf_module *m = small_cnn(ctx, 4);
    gf_eval_result res[2];
    for (int k = 0; k < 2; k++) {
        gf_loader_params lp = gf_loader_default_params();
        lp.batch_size = 16;
        lp.shuffle = false;
        gf_loader *ld = gf_loader_new(ctx, ds, &lp);
        gf_eval_params ep = gf_eval_default_params();
        ep.replicas = k == 0 ? 0 : 1;
        CHECK(ld && gf_evaluate_ex(ctx, m, NULL, ld, &ep, &res[k]) == GF_OK);
        gf_loader_free(ld);
    }
    CHECK(res[0].count == N && res[1].count == N);
    CHECK_NEAR(res[0].loss, res[1].loss, 1e-6 * (1 + fabs(res[1].loss)));
    CHECK(res[0].accuracy == res[1].accuracy);
    gf_eval_params bad = gf_eval_default_params();
    bad.replicas = -2;
    gf_loader *ld = gf_loader_new(ctx, ds, NULL);
    gf_eval_result rr;
    CHECK(gf_evaluate_ex(ctx, m, NULL, ld, &bad, &rr) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "replicas -2") != NULL);
    gf_ctx_clear_error(ctx);
    for (int k = 0; k < 2; k++) gf_eval_result_free(&res[k]);
    gf_loader_free(ld);
    gf_module_free(m);
    gf_ds_free(ds);
    gf_ctx_free(ctx);
}

static gf_status fake_job_sum(gf_ctx *ctx, double *v, int n, void *user) {
    (void)ctx, (void)v, (void)n, (void)user;
    return GF_OK;
}

/* Which models may be replicated, and the reasons given when not. */
static void test_replicable(void) {
    gf_ctx *ctx = new_ctx(2);
    char why[384];
    gf_module *bn = gf_nn_sequential(ctx);
    gf_module_append(ctx, bn, gf_nn_conv2d(ctx, NULL, 1, 2, 3, 3, NULL, true));
    gf_module_append(ctx, bn, gf_nn_batch_norm2d(ctx, 2, NULL));
    /* batch statistics: the replicas exchange them */
    CHECK(gf_module_replicable(bn, why, sizeof why) && gf_module_uses_batch_stats(bn));
    gf_module_train(bn, false); /* running statistics */
    CHECK(gf_module_replicable(bn, NULL, 0) && !gf_module_uses_batch_stats(bn));
    gf_module_pin_eval(gf_module_child(bn, "1"), true);
    gf_module_train(bn, true); /* a pinned BatchNorm (frozen statistics, transfer.h) */
    CHECK(gf_module_replicable(bn, NULL, 0) && !gf_module_uses_batch_stats(bn));
    gf_module_pin_eval(gf_module_child(bn, "1"), false);
    gf_module_train(bn, true);
    /* statistics already summed over processes: the replicas cannot add their own exchange */
    gf_ctx_set_batch_norm_sync(ctx, fake_job_sum, NULL);
    EXPECT_ERR(ctx, gf_replicas_new(ctx, bn, 2), GF_ERR_INVALID, "batch statistics", "processes");
    gf_ctx_clear_error(ctx);
    gf_ctx_set_batch_norm_sync(ctx, NULL, NULL);
    gf_module_free(bn);

    gf_module *c = gf_nn_container(ctx, "Mine", custom_fwd, NULL, NULL);
    gf_module_add(ctx, c, "body", small_mlp(ctx, 1, 0.0f, CLASSES));
    CHECK(!gf_module_replicable(c, why, sizeof why));
    CHECK(strstr(why, "(Mine)") && strstr(why, "reentrant"));
    gf_module_set_reentrant(c, true);
    CHECK(gf_module_replicable(c, why, sizeof why));
    /* the library's own containers are marked */
    gf_module *zoo[3] = {gf_zoo_build(ctx, "mlp", NULL, NULL), small_cnn(ctx, 1),
                         gf_zoo_build(ctx, "resnet-mini", NULL, NULL)};
    CHECK(gf_module_replicable(zoo[0], NULL, 0) && gf_module_replicable(zoo[1], NULL, 0));
    CHECK(gf_module_replicable(zoo[2], NULL, 0) && gf_module_uses_batch_stats(zoo[2]));
    gf_module_train(zoo[2], false);
    CHECK(gf_module_replicable(zoo[2], NULL, 0) && !gf_module_uses_batch_stats(zoo[2]));
    for (int i = 0; i < 3; i++) gf_module_free(zoo[i]);
    CHECK(!gf_module_replicable(NULL, why, sizeof why));

    EXPECT_ERR(ctx, gf_replicas_new(ctx, c, 1), GF_ERR_INVALID, "count 1");
    gf_ctx_clear_error(ctx);
    gf_replicas *r = gf_replicas_new(ctx, c, 2);
    CHECK(r != NULL);
    gf_tensor *x = images(ctx, 4), *y = labels(ctx, 4);
    gf_loss_spec custom = gf_loss_default(GF_LOSS_CUSTOM);
    custom.fn = sum_loss;
    gf_replicas_out ro;
    CHECK(gf_replicas_step(ctx, r, &custom, x, y, 1.0f, &ro) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "custom loss") != NULL);
    gf_ctx_clear_error(ctx);
    gf_tensor *y3 = labels(ctx, 3);
    CHECK(gf_replicas_step(ctx, r, NULL, x, y3, 1.0f, &ro) == GF_ERR_SHAPE);
    CHECK(strstr(gf_ctx_error(ctx), "[4, 1, 12, 12]") && strstr(gf_ctx_error(ctx), "[3]"));
    gf_ctx_clear_error(ctx);
    gf_replicas_free(r);
    gf_module_free(c);
    gf_tensor_free(x);
    gf_tensor_free(y);
    gf_tensor_free(y3);
    gf_ctx_free(ctx);
}

/* The context RNG moves only when a replica draws (Dropout in training mode), and then the
 * same start gives the same step. */
static void test_rng_rule(void) {
    gf_ctx *ctx = new_ctx(2);
    gf_tensor *x = images(ctx, 8), *y = labels(ctx, 8);
    gf_replicas_out ro;
    for (int dropout = 0; dropout < 2; dropout++) {
        gf_module *m = small_mlp(ctx, 2, dropout ? 0.5f : 0.0f, CLASSES);
        gf_replicas *r = gf_replicas_new(ctx, m, 2);
        gf_rng start = *gf_ctx_rng(ctx);
        gf_module_zero_grad(m);
        CHECK(gf_replicas_step(ctx, r, NULL, x, y, 1.0f, &ro) == GF_OK);
        const bool moved = memcmp(&start, gf_ctx_rng(ctx), sizeof start) != 0;
        CHECK(moved == (dropout == 1));
        int64_t ng;
        float *first = grads_of(ctx, m, &ng);
        *gf_ctx_rng(ctx) = start; /* the same start: bitwise the same step */
        gf_module_zero_grad(m);
        CHECK(gf_replicas_step(ctx, r, NULL, x, y, 1.0f, &ro) == GF_OK);
        float *again = grads_of(ctx, m, &ng);
        CHECK(memcmp(first, again, sizeof(float) * (size_t)ng) == 0);
        if (dropout) { /* and the next step draws new masks */
            gf_module_zero_grad(m);
            CHECK(gf_replicas_step(ctx, r, NULL, x, y, 1.0f, &ro) == GF_OK);
            float *next = grads_of(ctx, m, &ng);
            CHECK(memcmp(first, next, sizeof(float) * (size_t)ng) != 0);
            free(next);
            gf_module_train(m, false); /* evaluation mode: no draws, no move */
            start = *gf_ctx_rng(ctx);
            CHECK(gf_replicas_step(ctx, r, NULL, x, y, 1.0f, &ro) == GF_OK);
            CHECK(memcmp(&start, gf_ctx_rng(ctx), sizeof start) == 0);
        }
        free(first);
        free(again);
        gf_replicas_free(r);
        gf_module_free(m);
    }
    gf_tensor_free(x);
    gf_tensor_free(y);
    gf_ctx_free(ctx);
}

/* gf_backward_route_grads: routed leaves fill the caller's buffers and not .grad; an unrouted
 * trainable leaf is an error naming its shape; bad arguments are refused. */
static void test_routing(void) {
    gf_ctx *ctx = new_ctx(1);
    const int64_t s2[2] = {2, 3}, s1[1] = {3};
    gf_tensor *a = gf_tensor_new(ctx, GF_F32, 2, s2), *b = gf_tensor_new(ctx, GF_F32, 1, s1);
    for (int i = 0; i < 6; i++) gf_f32(a)[i] = (float)i;
    gf_tensor_set_requires_grad(a, true);
    gf_tensor_set_requires_grad(b, true);
    float ga[6] = {0}, gb[3] = {0};
    gf_tensor *leaves[2] = {a, b};
    float *bufs[2] = {ga, gb};
    CHECK(gf_backward_route_grads(ctx, 2, leaves, bufs) == GF_OK);
    gf_tensor *l = gf_sum(ctx, gf_mul(ctx, gf_add(ctx, a, b), a), NULL, 0, false);
    CHECK(gf_backward(ctx, l) == GF_OK);
    for (int i = 0; i < 6; i++) CHECK(ga[i] == 2.0f * (float)i); /* d/da (a + b) a = 2a + b */
    CHECK(gb[0] == 0.0f + 3.0f && gb[1] == 1.0f + 4.0f && gb[2] == 2.0f + 5.0f);
    CHECK(a->grad == NULL && b->grad == NULL);
    gf_ctx_reset(ctx);
    CHECK(gf_backward_route_grads(ctx, 1, leaves, bufs) == GF_OK); /* b no longer routed */
    l = gf_sum(ctx, gf_add(ctx, a, b), NULL, 0, false);
    CHECK(gf_backward(ctx, l) == GF_ERR_STATE);
    CHECK(strstr(gf_ctx_error(ctx), "[3]") && strstr(gf_ctx_error(ctx), "not among"));
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    gf_tensor *arena = gf_zeros(ctx, GF_F32, 1, s1);
    gf_tensor *bad[1] = {arena};
    CHECK(gf_backward_route_grads(ctx, 1, bad, bufs) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "not a persistent") != NULL);
    gf_ctx_clear_error(ctx);
    CHECK(gf_backward_route_grads(ctx, -1, NULL, NULL) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_backward_route_grads(ctx, 0, NULL, NULL) == GF_OK); /* cleared: .grad again */
    gf_ctx_reset(ctx);
    CHECK(gf_backward(ctx, gf_sum(ctx, b, NULL, 0, false)) == GF_OK && b->grad);
    gf_tensor_free(a);
    gf_tensor_free(b);
    gf_ctx_free(ctx);
}

/* One gf_fit run for the tests below. */
typedef struct fit_opts {
    int replicas;
    bool bn;              /* a BatchNorm2d appended to cnn-small's features */
    bool custom;          /* a custom loss */
    float dropout;        /* > 0: an MLP with Dropout instead of cnn-small */
    const char *ckpt_dir; /* checkpoints after every step there */
    int stop_after;       /* > 0: the step callback stops after this many batches */
    const char *resume;   /* resume_from */
    int threads;          /* context threads (0: 2) */
} fit_opts;

static bool stop_cb(const gf_step_stats *s, void *user) {
    int *left = user;
    (void)s;
    return *left <= 0 || --*left > 0;
}

/* Trains for 2 epochs on fixed data; returns the final weights (caller frees), the status and
 * the context's message. */
static float *fit_run(const fit_opts *o, gf_status *st, char *err, size_t err_len, int64_t *n) {
    gf_ctx *ctx = new_ctx(o->threads > 0 ? o->threads : 2);
    const int64_t N = 96, shape[3] = {1, SIDE, SIDE};
    uint64_t saved = rng_state;
    rng_state = 77; /* the same data in every run */
    float *xs = malloc(sizeof(float) * (size_t)(N * PIX));
    int64_t *ys = malloc(sizeof(int64_t) * (size_t)N);
    for (int64_t i = 0; i < N * PIX; i++) xs[i] = rndf();
    for (int64_t i = 0; i < N; i++) ys[i] = (int64_t)((rndf() + 1.0f) * 2.0f) % CLASSES;
    rng_state = saved;
    gf_ds *ds = test_ds_take(ctx, "fit", 3, shape, N, xs, ys, NULL, CLASSES);
    gf_module *m = o->dropout > 0 ? small_mlp(ctx, 4, o->dropout, CLASSES) : small_cnn(ctx, 4);
    if (o->bn)
        gf_module_append(ctx, gf_module_child(m, "features"), gf_nn_batch_norm2d(ctx, 64, NULL));
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 16;
    lp.seed = 8;
    gf_loader *ld = gf_loader_new(ctx, ds, &lp);
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAM);
    gf_optim *opt = gf_train_optim_new(ctx, m, &op, NULL, 0);
    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = 2;
    fp.replicas = o->replicas;
    fp.checkpoint.dir = o->ckpt_dir;
    fp.checkpoint.every_steps = o->ckpt_dir ? 1 : 0;
    int left = o->stop_after;
    fp.on_step = stop_cb;
    fp.user = &left;
    fp.resume_from = o->resume;
    gf_loss_spec l = gf_loss_default(o->custom ? GF_LOSS_CUSTOM : GF_LOSS_CROSS_ENTROPY);
    l.fn = sum_loss;
    *st = gf_fit(ctx, m, &l, opt, NULL, ld, NULL, &fp, NULL);
    snprintf(err, err_len, "%s", gf_ctx_error(ctx));
    gf_named_tensors *pl = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    int64_t total = 0;
    for (int i = 0; i < pl->n; i++) total += pl->items[i].tensor->numel;
    float *w = malloc(sizeof(float) * (size_t)total), *p = w;
    for (int i = 0; i < pl->n; i++) {
        memcpy(p, pl->items[i].tensor->data, sizeof(float) * (size_t)pl->items[i].tensor->numel);
        p += pl->items[i].tensor->numel;
    }
    *n = total;
    gf_named_tensors_free(pl);
    gf_optim_free(opt);
    gf_loader_free(ld);
    gf_module_free(m);
    gf_ds_free(ds);
    gf_ctx_free(ctx);
    return w;
}

/* gf_fit with replicas: two runs bitwise equal, close to the unreplicated run; explicit
 * counts refused with the reason; automatic ones fall back. */
static void test_fit(void) {
    gf_status st;
    char err[512];
    int64_t n1, n2, n3;
    fit_opts o = {0};
    o.replicas = 1;
    float *one = fit_run(&o, &st, err, sizeof err, &n1);
    CHECK(st == GF_OK);
    o.replicas = 2;
    float *two = fit_run(&o, &st, err, sizeof err, &n2);
    CHECK(st == GF_OK);
    o.replicas = 0; /* auto: 2 threads */
    float *again = fit_run(&o, &st, err, sizeof err, &n3);
    CHECK(st == GF_OK && n1 == n2 && n2 == n3);
    CHECK(memcmp(two, again, sizeof(float) * (size_t)n2) == 0);
    const double d = max_rel_diff(one, two, n1);
    if (d > 1e-4) fprintf(stderr, "fit: replicated vs not, max rel diff %g\n", d);
    CHECK(d <= 1e-4 && d > 0); /* the same run up to float rounding, which does differ */
    /* without replicas the run does not depend on the thread count, bit for bit */
    for (int threads = 1; threads <= 3; threads += 2) {
        fit_opts single = {.replicas = 1, .threads = threads};
        float *w = fit_run(&single, &st, err, sizeof err, &n3);
        CHECK(st == GF_OK && n3 == n1 && memcmp(w, one, sizeof(float) * (size_t)n1) == 0);
        free(w);
    }
    free(one);
    free(two);
    free(again);
    /* BatchNorm on batch statistics: the replicas exchange them, so the run stays close */
    fit_opts bn = {.replicas = 1, .bn = true};
    float *bn1 = fit_run(&bn, &st, err, sizeof err, &n1);
    CHECK(st == GF_OK);
    bn.replicas = 0; /* auto: 2 threads, 2 replicas */
    float *w = fit_run(&bn, &st, err, sizeof err, &n2);
    float *w2 = fit_run(&bn, &st, err, sizeof err, &n3);
    CHECK(st == GF_OK && n1 == n2 && n2 == n3 && memcmp(w, w2, sizeof(float) * (size_t)n2) == 0);
    /* looser than above: through batch statistics Adam turns rounding on near-zero gradients
     * into whole steps (test_batch_norm_sync checks one step's gradient at 1e-5) */
    const double dbn = max_rel_diff(bn1, w, n1);
    if (dbn > 1e-2) fprintf(stderr, "fit with BatchNorm: replicated vs not, max rel diff %g\n", dbn);
    CHECK(dbn <= 1e-2 && dbn > 0);
    free(bn1);
    free(w);
    free(w2);
    fit_opts custom = {.replicas = 3, .custom = true};
    w = fit_run(&custom, &st, err, sizeof err, &n1);
    CHECK(st == GF_ERR_INVALID && strstr(err, "custom loss"));
    free(w);
    custom.replicas = 0;
    w = fit_run(&custom, &st, err, sizeof err, &n1);
    CHECK(st == GF_OK);
    free(w);
    fit_opts neg = {.replicas = -1};
    w = fit_run(&neg, &st, err, sizeof err, &n1);
    CHECK(st == GF_ERR_INVALID && strstr(err, "replicas -1"));
    free(w);
}

/* Dropout with replicas: stopped mid-epoch (Ctrl-C in the CLI) and resumed from the
 * checkpoint of that batch, the run ends bitwise where the uninterrupted one does. */
static void test_fit_resume(void) {
    char dir[] = "/tmp/graft_replicas_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    gf_status st;
    char err[512], latest[1024];
    int64_t n1, n2;
    fit_opts o = {.replicas = 2, .dropout = 0.3f};
    float *whole = fit_run(&o, &st, err, sizeof err, &n1);
    CHECK(st == GF_OK);
    o.ckpt_dir = dir;
    o.stop_after = 4; /* inside the first epoch (6 batches) */
    float *part = fit_run(&o, &st, err, sizeof err, &n2);
    CHECK(st == GF_OK && memcmp(whole, part, sizeof(float) * (size_t)n1) != 0);
    gf_ctx *ctx = new_ctx(1);
    CHECK(gf_ckpt_latest(ctx, dir, NULL, latest, sizeof latest) == GF_OK);
    CHECK(strstr(latest, "b000000004") != NULL);
    gf_ctx_free(ctx);
    o.stop_after = 0;
    o.resume = latest;
    float *resumed = fit_run(&o, &st, err, sizeof err, &n2);
    CHECK(st == GF_OK && n1 == n2);
    CHECK(memcmp(whole, resumed, sizeof(float) * (size_t)n1) == 0);
    free(whole);
    free(part);
    free(resumed);
    CHECK(test_rm_tree(dir) == 0);
}

/* A sequence labeller's batch: the loss is a mean over the tokens, so slices with more
 * tokens weigh more. Rows of very different lengths (the first slice has 7 tokens, the second
 * 2) give the one-context gradient only when each slice weighs by its tokens. */
static void test_per_step(void) {
    gf_ctx *ctx = new_ctx(2);
    gf_zoo_params zp = gf_zoo_default_params();
    zp.vocab_size = 12;
    zp.seq_len = 5;
    zp.num_classes = 3;
    gf_rng rng;
    gf_rng_seed(&rng, 7);
    gf_module *m = gf_zoo_build(ctx, "gru-tagger", &zp, &rng);
    CHECK(m != NULL);
    if (!m) return;
    const int64_t n = 4, t = 5, len[4] = {5, 2, 1, 1};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){n, t});
    gf_tensor *y = gf_tensor_new(ctx, GF_I64, 2, (int64_t[]){n, t});
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < t; j++) {
            const bool real = j < len[i];
            gf_f32(x)[i * t + j] = real ? (float)(2 + (i * 7 + j * 3) % 10) : 0.0f;
            gf_i64(y)[i * t + j] = real ? (i + j) % 3 : GF_DS_IGNORE_LABEL;
        }
    /* per-step accuracy counts tokens (gf_eval_batch_step_correct): correct is -1 */
    two_replicas_match(ctx, m, x, y, 2e-6, "per-step replicas");
    gf_tensor_free(x);
    gf_tensor_free(y);
    gf_module_free(m);
    gf_ctx_free(ctx);
}

int main(void) {
    test_gradients_match();
    test_per_step();
    test_mse_mlp();
    test_nonfinite_slice();
    test_batch_norm_sync();
    test_batch_norm_ignored_slice();
    test_forward();
    test_evaluate();
    test_replicable();
    test_rng_rule();
    test_routing();
    test_fit();
    test_fit_resume();
    return test_finish("test_replicas");
}
