/* The training layer's building blocks for hand-written loops: gf_optim_new_named (an optimizer
 * over named parameters, the list gf_train_optim_new builds from a module), gf_train_step
 * (backward, clipping, optimizer and schedule steps) bitwise equal to the same steps written
 * out, and gf_now_seconds. To add a case: write a test_* function and call it from main. */
#include "graft/graft.h"
#include "graft/train.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

enum { F = 4, K = 3, N = 8 };

/* Linear(F, 16) -> ReLU -> Linear(16, K), the same weights for the same seed. */
static gf_module *mlp(gf_ctx *ctx, uint64_t seed) {
    gf_rng r;
    gf_rng_seed(&r, seed);
    gf_module *kids[] = {gf_nn_linear(ctx, &r, F, 16, true), gf_nn_relu(ctx),
                         gf_nn_linear(ctx, &r, 16, K, true)};
    return gf_nn_sequential_of(ctx, 3, kids);
}

/* A fixed batch: x [N, F], labels [N] (persistent: free both). */
static void batch(gf_ctx *ctx, gf_tensor **x, gf_tensor **y, uint64_t seed) {
    gf_rng r;
    gf_rng_seed(&r, seed);
    float xs[N * F];
    int64_t ys[N];
    for (int i = 0; i < N * F; i++) xs[i] = gf_rng_normal(&r);
    for (int i = 0; i < N; i++) ys[i] = (int64_t)gf_rng_below(&r, K);
    *x = gf_tensor_from_data(ctx, GF_F32, 2, (int64_t[]){N, F}, xs);
    *y = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){N}, ys);
}

static gf_tensor *ce(gf_ctx *ctx, gf_module *m, gf_tensor *x, gf_tensor *y) {
    return gf_cross_entropy(ctx, gf_module_forward(ctx, m, x), y, GF_REDUCE_MEAN, -100);
}

static bool same_params(gf_ctx *ctx, gf_module *a, gf_module *b) {
    gf_named_tensors *la = gf_module_named_tensors(ctx, a, GF_STATE_ALL);
    gf_named_tensors *lb = gf_module_named_tensors(ctx, b, GF_STATE_ALL);
    bool same = la && lb && la->n == lb->n;
    for (int i = 0; same && i < la->n; i++) {
        const gf_tensor *ta = la->items[i].tensor, *tb = lb->items[i].tensor;
        same = ta->numel == tb->numel &&
               memcmp(ta->data, tb->data, gf_dtype_size(ta->dtype) * (size_t)ta->numel) == 0;
    }
    gf_named_tensors_free(la);
    gf_named_tensors_free(lb);
    return same;
}

/* gf_optim_new_named over a module's named parameters makes the optimizer gf_train_optim_new
 * makes: the same groups, names, order and hyperparameters. */
static void test_new_named_equals_module(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_module *m = mlp(ctx, 1);
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_ADAMW);
    gf_optim_params nodecay = hp;
    nodecay.weight_decay = 0.0;
    const gf_group_spec specs[] = {{"biases", "*.bias", &nodecay}};
    gf_optim *a = gf_train_optim_new(ctx, m, &hp, specs, 1);
    gf_named_tensors *names = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    gf_optim *b = names ? gf_optim_new_named(ctx, &hp, names, specs, 1) : NULL;
    gf_named_tensors_free(names); /* the optimizer copied the names */
    CHECK(a && b);
    if (a && b) {
        CHECK(gf_optim_n_groups(a) == 2 && gf_optim_n_groups(b) == 2);
        CHECK(gf_optim_n_params(a) == 4 && gf_optim_n_params(b) == 4);
        for (int g = 0; g < gf_optim_n_groups(a); g++) {
            CHECK(strcmp(gf_optim_group_name(a, g), gf_optim_group_name(b, g)) == 0);
            CHECK(gf_optim_group_params(a, g)->weight_decay ==
                  gf_optim_group_params(b, g)->weight_decay);
        }
        for (int i = 0; i < gf_optim_n_params(a); i++) {
            CHECK(gf_optim_param(a, i) == gf_optim_param(b, i));
            CHECK(strcmp(gf_optim_param_name(a, i), gf_optim_param_name(b, i)) == 0);
        }
        CHECK(strcmp(gf_optim_param_name(b, 0), "0.bias") == 0); /* the bias group first */
    }
    gf_optim_free(a);
    gf_optim_free(b);
    gf_module_free(m);
    gf_ctx_free(ctx);
}

/* A list built by hand (no module) and the errors of malformed ones. */
static void test_new_named_lists(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_tensor *w = gf_tensor_new(ctx, GF_F32, 1, (int64_t[]){3});
    gf_tensor_set_requires_grad(w, true);
    gf_named_tensor items[] = {{(char *)"w", w, false}};
    gf_named_tensors list = {1, items};
    gf_optim *o = gf_optim_new_named(ctx, NULL, &list, NULL, 0);
    CHECK(o && gf_optim_n_params(o) == 1 && strcmp(gf_optim_param_name(o, 0), "w") == 0);
    CHECK(o && strcmp(gf_optim_group_name(o, 0), "default") == 0);
    gf_optim_free(o);
    gf_named_tensors empty = {0, NULL};
    EXPECT_ERR(ctx, gf_optim_new_named(ctx, NULL, &empty, NULL, 0), GF_ERR_INVALID,
               "optim: no parameters");
    EXPECT_ERR(ctx, gf_optim_new_named(ctx, NULL, NULL, NULL, 0), GF_ERR_INVALID,
               "parameter list");
    gf_named_tensor unnamed[] = {{NULL, w, false}};
    gf_named_tensors bad = {1, unnamed};
    EXPECT_ERR(ctx, gf_optim_new_named(ctx, NULL, &bad, NULL, 0), GF_ERR_INVALID,
               "parameter 0 has no name");
    const gf_group_spec miss[] = {{NULL, "nothing*", NULL}};
    EXPECT_ERR(ctx, gf_optim_new_named(ctx, NULL, &list, miss, 1), GF_ERR_INVALID,
               "matches no parameter");
    gf_ctx_clear_error(ctx);
    gf_tensor_free(w);
    gf_ctx_free(ctx);
}

/* gf_train_step equals backward, clip_grad_norm_, the optimizer step and a per-step schedule's
 * step written out, bit for bit, over several steps. */
static void test_train_step_equals_manual(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_module *ma = mlp(ctx, 2), *mb = mlp(ctx, 2);
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_SGD);
    hp.lr = 0.1;
    hp.momentum = 0.9;
    gf_optim *oa = gf_train_optim_new(ctx, ma, &hp, NULL, 0);
    gf_optim *ob = gf_train_optim_new(ctx, mb, &hp, NULL, 0);
    gf_sched_params sp = gf_sched_default_params(GF_SCHED_COSINE);
    sp.interval = GF_SCHED_PER_STEP;
    sp.t_max = 10;
    gf_sched *sa = oa ? gf_sched_new(ctx, oa, &sp) : NULL;
    gf_sched *sb = ob ? gf_sched_new(ctx, ob, &sp) : NULL;
    CHECK(ma && mb && oa && ob && sa && sb);
    const gf_step_params step = {.clip_norm = 0.5, .sched = sb};
    for (int s = 0; s < 4 && gf_ctx_status(ctx) == GF_OK; s++) {
        gf_tensor *x, *y;
        batch(ctx, &x, &y, 10 + (uint64_t)s);
        gf_optim_zero_grad(oa);
        gf_tensor *la = ce(ctx, ma, x, y);
        CHECK(gf_backward(ctx, la) == GF_OK);
        CHECK(gf_optim_clip_grad_norm(ctx, oa, 0.5, 2.0, false, NULL) == GF_OK);
        CHECK(gf_optim_step(ctx, oa) == GF_OK);
        CHECK(gf_sched_step(ctx, sa) == GF_OK);
        gf_optim_zero_grad(ob);
        gf_tensor *lb = ce(ctx, mb, x, y);
        CHECK(gf_train_step(ctx, lb, &ob, 1, &step) == GF_OK);
        gf_ctx_reset(ctx);
        gf_tensor_free(x);
        gf_tensor_free(y);
    }
    CHECK(gf_ctx_status(ctx) == GF_OK);
    CHECK(same_params(ctx, ma, mb));
    CHECK(gf_sched_last_epoch(sb) == 4 && gf_optim_group_lr(oa, 0) == gf_optim_group_lr(ob, 0));
    gf_sched_free(sa);
    gf_sched_free(sb);
    gf_optim_free(oa);
    gf_optim_free(ob);
    gf_module_free(ma);
    gf_module_free(mb);
    gf_ctx_free(ctx);
}

/* The schedule of gf_step_params is stepped per step only; a per-epoch one is left alone. */
static void test_train_step_schedule(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_module *m = mlp(ctx, 3);
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_SGD);
    gf_optim *o = gf_train_optim_new(ctx, m, &hp, NULL, 0);
    gf_sched_params sp = gf_sched_default_params(GF_SCHED_STEP);
    sp.step_size = 1;
    gf_sched *per_epoch = gf_sched_new(ctx, o, &sp);
    CHECK(m && o && per_epoch);
    gf_tensor *x, *y;
    batch(ctx, &x, &y, 5);
    const gf_step_params p = {.sched = per_epoch};
    gf_optim_zero_grad(o);
    gf_tensor *l = ce(ctx, m, x, y);
    CHECK(gf_train_step(ctx, l, &o, 1, &p) == GF_OK);
    CHECK(gf_sched_last_epoch(per_epoch) == 0);
    CHECK(gf_optim_steps(o) == 1);
    gf_ctx_reset(ctx);
    gf_tensor_free(x);
    gf_tensor_free(y);
    gf_sched_free(per_epoch);
    gf_optim_free(o);
    gf_module_free(m);
    gf_ctx_free(ctx);
}

static void test_train_step_errors(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_module *m = mlp(ctx, 4);
    gf_optim *o = gf_train_optim_new(ctx, m, NULL, NULL, 0);
    gf_tensor *x, *y;
    batch(ctx, &x, &y, 6);
    gf_tensor *l = ce(ctx, m, x, y);
    CHECK(gf_train_step(ctx, l, &o, -1, NULL) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "bad optimizer list") != NULL);
    gf_ctx_clear_error(ctx);
    gf_optim *none[] = {NULL};
    CHECK(gf_train_step(ctx, l, none, 1, NULL) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "optimizer 0 is NULL") != NULL);
    gf_ctx_clear_error(ctx);
    CHECK(gf_train_step(ctx, NULL, &o, 1, NULL) != GF_OK);
    CHECK(gf_optim_steps(o) == 0);
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    gf_tensor_free(x);
    gf_tensor_free(y);
    gf_optim_free(o);
    gf_module_free(m);
    gf_ctx_free(ctx);
}

static void test_now_seconds(void) {
    double a = gf_now_seconds(), b = gf_now_seconds();
    CHECK(isfinite(a) && b >= a);
}

int main(void) {
    test_new_named_equals_module();
    test_new_named_lists();
    test_train_step_equals_manual();
    test_train_step_schedule();
    test_train_step_errors();
    test_now_seconds();
    return test_finish("test_train_step");
}
