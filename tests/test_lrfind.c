/* gf_lr_find (fastai's learning-rate finder): the rates are the geometric sequence, the smoothed
 * loss is fastai's debiased moving average, weights / optimizer state / rates / RNG / loader
 * position come back bitwise, the suggestions lie in the swept range, stop_div stops a
 * divergent sweep, bad parameters are refused, and fastai's suggestion rules on known curves.
 * To add a case: write a test_* function and call it from main. */
#include "graft/graft.h"
#include "graft/train.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { F = 4, K = 3, N = 96 };

static gf_module *mlp(gf_ctx *ctx, uint64_t seed) {
    gf_rng r;
    gf_rng_seed(&r, seed);
    gf_module *kids[] = {gf_nn_linear(ctx, &r, F, 16, true), gf_nn_relu(ctx),
                         gf_nn_linear(ctx, &r, 16, K, true)};
    return gf_nn_sequential_of(ctx, 3, kids);
}

/* A separable problem: the class is the index of the largest of the first K features. */
static gf_ds *dataset(gf_ctx *ctx) {
    static float x[N * F];
    static int64_t y[N];
    gf_rng r;
    gf_rng_seed(&r, 7);
    for (int i = 0; i < N; i++) {
        int best = 0;
        for (int j = 0; j < F; j++) {
            x[i * F + j] = gf_rng_normal(&r);
            if (j < K && x[i * F + j] > x[i * F + best]) best = j;
        }
        y[i] = best;
    }
    gf_ds_desc d;
    memset(&d, 0, sizeof d);
    d.ndim = 1;
    d.shape[0] = F;
    d.n = N;
    d.x_f32 = x;
    d.labels = y;
    d.n_classes = K;
    return gf_ds_from_memory(ctx, &d);
}

/* A copy of every tensor of m (parameters and buffers), to compare bitwise. */
static float *copy_all(gf_ctx *ctx, gf_module *m, int64_t *n) {
    gf_named_tensors *l = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    int64_t total = 0;
    for (int i = 0; l && i < l->n; i++) total += l->items[i].tensor->numel;
    float *c = malloc(sizeof(float) * (size_t)(total ? total : 1));
    int64_t at = 0;
    for (int i = 0; c && l && i < l->n; i++) {
        const gf_tensor *t = l->items[i].tensor;
        memcpy(c + at, t->data, sizeof(float) * (size_t)t->numel);
        at += t->numel;
    }
    gf_named_tensors_free(l);
    *n = total;
    return c;
}

typedef struct setup {
    gf_ctx *ctx;
    gf_ds *ds;
    gf_module *m;
    gf_optim *opt;
    gf_loader *ld;
} setup;

static setup make(gf_optim_kind kind, double lr) {
    setup s;
    s.ctx = gf_ctx_new(NULL);
    s.ds = dataset(s.ctx);
    s.m = mlp(s.ctx, 3);
    gf_optim_params hp = gf_optim_default_params(kind);
    hp.lr = lr;
    hp.momentum = kind == GF_OPTIM_SGD ? 0.9 : 0.0;
    s.opt = gf_train_optim_new(s.ctx, s.m, &hp, NULL, 0);
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 16; /* 6 batches per epoch: the sweep wraps into later epochs */
    s.ld = gf_loader_new(s.ctx, s.ds, &lp);
    return s;
}

static void unmake(setup *s) {
    gf_loader_free(s->ld);
    gf_optim_free(s->opt);
    gf_module_free(s->m);
    gf_ds_free(s->ds);
    gf_ctx_free(s->ctx);
}

/* The sweep's rates are start * (end/start)^(i/num_it), the smoothed losses fastai's debiased
 * EMA of the raw ones, and everything is put back bitwise. */
static void test_sweep_and_restore(void) {
    setup s = make(GF_OPTIM_ADAM, 3e-3);
    CHECK(s.opt && s.ld);
    /* one real step first, so the optimizer has moments to restore */
    gf_batch b;
    CHECK(gf_loader_next(s.ctx, s.ld, &b));
    gf_optim_zero_grad(s.opt);
    gf_tensor *l = gf_cross_entropy(s.ctx, gf_module_forward(s.ctx, s.m, b.x), b.y,
                                    GF_REDUCE_MEAN, -100);
    gf_optim *opts[1] = {s.opt};
    CHECK(gf_train_step(s.ctx, l, opts, 1, NULL) == GF_OK);
    gf_optim_zero_grad(s.opt);
    gf_ctx_reset(s.ctx);
    gf_module_train(s.m, false);

    int64_t nw;
    float *before = copy_all(s.ctx, s.m, &nw);
    const float *m1 = gf_optim_state(s.opt, 0, "exp_avg");
    CHECK(m1 != NULL);
    float m1_before = m1 ? m1[0] : 0.0f;
    const int64_t steps = gf_optim_steps(s.opt);
    const gf_rng rng = *gf_ctx_rng(s.ctx);
    const int64_t ep = gf_loader_epoch(s.ld), bi = gf_loader_batch_index(s.ld);

    gf_lr_find_params p = gf_lr_find_default_params();
    p.num_it = 20;
    p.start_lr = 1e-5;
    p.end_lr = 1e-1;
    p.stop_div = false;
    gf_lr_find_result r;
    CHECK(gf_lr_find(s.ctx, s.m, NULL, s.opt, s.ld, &p, &r) == GF_OK);
    CHECK(r.n == 20 && !r.diverged);
    for (int i = 0; i < r.n; i++) {
        double want = p.start_lr * pow(p.end_lr / p.start_lr, (double)i / 20.0);
        CHECK_NEAR(r.lrs[i], want, 1e-15 * want + 0.0);
    }
    double avg = 0;
    for (int i = 0; i < r.n; i++) {
        avg = 0.98 * avg + 0.02 * r.raw_losses[i];
        CHECK_NEAR(r.losses[i], avg / (1 - pow(0.98, i + 1)), 1e-12);
    }
    CHECK(r.losses[0] == r.raw_losses[0] || fabs(r.losses[0] - r.raw_losses[0]) < 1e-12);
    /* the suggestions are rates the sweep tried */
    CHECK(r.i_valley >= 0 && r.i_steep >= 0 && r.i_min >= 0);
    CHECK(r.lr_valley >= p.start_lr && r.lr_valley <= p.end_lr);
    CHECK(r.lr_steep >= p.start_lr && r.lr_steep <= p.end_lr);
    CHECK(r.lr_min == r.lrs[r.i_min] && r.lr_min_div10 == r.lr_min / 10);
    for (int i = 2; i < r.n - 5; i++) CHECK(r.losses[r.i_min] <= r.losses[i]);

    int64_t nw2;
    float *after = copy_all(s.ctx, s.m, &nw2);
    CHECK(nw == nw2 && before && after && memcmp(before, after, sizeof(float) * (size_t)nw) == 0);
    m1 = gf_optim_state(s.opt, 0, "exp_avg");
    CHECK(m1 && memcmp(&m1[0], &m1_before, sizeof(float)) == 0);
    CHECK(gf_optim_steps(s.opt) == steps);
    CHECK(gf_optim_group_lr(s.opt, 0) == 3e-3);
    CHECK(memcmp(gf_ctx_rng(s.ctx), &rng, sizeof rng) == 0);
    CHECK(gf_loader_epoch(s.ld) == ep && gf_loader_batch_index(s.ld) == bi);
    CHECK(!gf_module_is_training(s.m));
    free(before);
    free(after);
    gf_lr_find_result_free(&r);
    unmake(&s);
}

/* SGD with momentum up to a rate of 1e4 blows up: stop_div ends the sweep early, with the last
 * smoothed loss above 4x the minimum; the weights still come back. */
static void test_stop_div(void) {
    setup s = make(GF_OPTIM_SGD, 0.1);
    int64_t nw;
    float *before = copy_all(s.ctx, s.m, &nw);
    gf_lr_find_params p = gf_lr_find_default_params();
    p.num_it = 60;
    p.start_lr = 1e-3;
    p.end_lr = 1e4;
    gf_lr_find_result r;
    CHECK(gf_lr_find(s.ctx, s.m, NULL, s.opt, s.ld, &p, &r) == GF_OK);
    CHECK(r.diverged && r.n < 60);
    if (r.n > 0) {
        double best = INFINITY;
        for (int i = 0; i < r.n - 1; i++) best = fmin(best, r.losses[i]);
        double last = r.losses[r.n - 1];
        CHECK(!isfinite(last) || last > 4 * fmin(best, last));
    }
    int64_t nw2;
    float *after = copy_all(s.ctx, s.m, &nw2);
    CHECK(before && after && memcmp(before, after, sizeof(float) * (size_t)nw) == 0);
    free(before);
    free(after);
    gf_lr_find_result_free(&r);
    /* the same sweep without stop_div runs every batch */
    p.stop_div = false;
    p.num_it = 30;
    CHECK(gf_lr_find(s.ctx, s.m, NULL, s.opt, s.ld, &p, &r) == GF_OK);
    CHECK(r.n == 30 && !r.diverged);
    gf_lr_find_result_free(&r);
    unmake(&s);
}

static void test_bad_params(void) {
    setup s = make(GF_OPTIM_SGD, 0.1);
    gf_lr_find_params p = gf_lr_find_default_params();
    gf_lr_find_result r;
    p.end_lr = p.start_lr;
    CHECK(gf_lr_find(s.ctx, s.m, NULL, s.opt, s.ld, &p, &r) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(s.ctx), "end_lr") != NULL);
    gf_ctx_clear_error(s.ctx);
    p = gf_lr_find_default_params();
    p.num_it = 1;
    CHECK(gf_lr_find(s.ctx, s.m, NULL, s.opt, s.ld, &p, &r) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(s.ctx), "num_it") != NULL);
    gf_ctx_clear_error(s.ctx);
    gf_lr_find_result_free(&r);
    unmake(&s);
}

/* fastai 2.7's suggestion functions on a known curve (values from running them in Python:
 * valley index 6, steep index 4, minimum index 12 over the points [1, n - 5)). */
static void test_suggest_rules(void) {
    enum { M = 20 };
    double lrs[M], losses[M] = {2.0, 2.0, 1.99, 1.98, 1.95, 1.6, 1.5, 1.4, 1.3, 1.2,
                                1.1, 1.05, 1.0, 1.1, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0};
    for (int i = 0; i < M; i++) lrs[i] = 1e-5 * pow(10, i / 4.0);
    gf_lr_find_result r;
    memset(&r, 0, sizeof r);
    r.lrs = lrs;
    r.losses = losses;
    r.n = M;
    gf_lr_find_suggest(&r, 10); /* points [1, 15) */
    CHECK(r.i_min == 12);
    CHECK(r.i_steep == 4);      /* 1.95 -> 1.6: the largest fall per log step */
    /* the longest decreasing run ends at slice index 11 with length 12: fastai's max_start is
     * 11 - 12 = -1, sections = 4, idx = -1 + 4 + 2 = 5 in the slice, 6 here */
    CHECK(r.i_valley == 6);
    CHECK(r.lr_valley == lrs[r.i_valley] && r.lr_steep == lrs[r.i_steep]);
}

int main(void) {
    test_sweep_and_restore();
    test_stop_div();
    test_bad_params();
    test_suggest_rules();
    return test_finish("test_lrfind");
}
