/* Training-loop tests (gf_fit / gf_evaluate) on small synthetic problems: learning, early
 * stopping, keep-best, non-finite losses (stop and skip), gradient accumulation equal to a
 * larger batch, frozen parameters untouched, schedules stepped per epoch and per step,
 * callbacks that stop, and the argument checks.
 * To add a case: write a test_* function on a dataset from blobs() or regression() below and
 * call it from main. */
#include "graft/graft.h"
#include "graft/train.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

enum { F = 4, K = 3 };

/* n examples of K Gaussian blobs in F dimensions (class centres 3 apart); nan_at >= 0 puts a
 * NaN into that example. */
static gf_ds *blobs(gf_ctx *ctx, int64_t n, uint64_t seed, int64_t nan_at) {
    float *x = malloc(sizeof(float) * (size_t)(n * F));
    int64_t *y = malloc(sizeof(int64_t) * (size_t)n);
    gf_rng r;
    gf_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int64_t)gf_rng_below(&r, K);
        for (int j = 0; j < F; j++)
            x[i * F + j] = gf_rng_normal(&r) + (j == y[i] ? 3.0f : 0.0f);
    }
    if (nan_at >= 0) x[nan_at * F + 1] = NAN;
    return test_ds_take(ctx, "blobs", 1, (int64_t[]){F}, n, x, y, NULL, K);
}

/* y = x . w + 0.1 noise, a float target per example. */
static gf_ds *regression(gf_ctx *ctx, int64_t n, uint64_t seed) {
    float *x = malloc(sizeof(float) * (size_t)(n * F));
    float *t = malloc(sizeof(float) * (size_t)n);
    gf_rng r;
    gf_rng_seed(&r, seed);
    const float w[F] = {1.5f, -2.0f, 0.5f, 3.0f};
    for (int64_t i = 0; i < n; i++) {
        t[i] = 0.1f * gf_rng_normal(&r);
        for (int j = 0; j < F; j++) {
            x[i * F + j] = gf_rng_normal(&r);
            t[i] += w[j] * x[i * F + j];
        }
    }
    return test_ds_take(ctx, NULL, 1, (int64_t[]){F}, n, x, NULL, t, 0);
}

static gf_loader *loader(gf_ctx *ctx, gf_ds *ds, int64_t bs, bool shuffle) {
    gf_loader_params p = gf_loader_default_params();
    p.batch_size = bs;
    p.shuffle = shuffle;
    p.seed = 7;
    return gf_loader_new(ctx, ds, &p);
}

/* Linear(F, 16) -> ReLU -> Linear(16, out): 0.weight, 0.bias, 2.weight, 2.bias. */
static gf_module *mlp(gf_ctx *ctx, uint64_t seed, int64_t out) {
    gf_rng r;
    gf_rng_seed(&r, seed);
    gf_module *kids[] = {gf_nn_linear(ctx, &r, F, 16, true), gf_nn_relu(ctx),
                         gf_nn_linear(ctx, &r, 16, out, true)};
    return gf_nn_sequential_of(ctx, 3, kids);
}

static gf_optim *adam(gf_ctx *ctx, gf_module *m, double lr) {
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_ADAM);
    hp.lr = lr;
    return gf_train_optim_new(ctx, m, &hp, NULL, 0);
}

typedef struct log {
    int epochs, steps, stepped;
    double lr[32], val_acc[32], monitored[32];
    float *weights[32]; /* copies of 0.weight after each epoch (keep-best test) */
    gf_module *model;
    int stop_at_epoch, stop_at_batch;
} log_t;

static bool on_epoch(const gf_epoch_stats *s, void *user) {
    log_t *l = user;
    if (s->epoch <= 32) {
        l->lr[s->epoch - 1] = s->lr;
        l->val_acc[s->epoch - 1] = s->val_acc;
        l->monitored[s->epoch - 1] = s->monitored;
        if (l->model) {
            gf_tensor *w = gf_module_tensor(NULL, l->model, "0.weight");
            l->weights[s->epoch - 1] = malloc(sizeof(float) * (size_t)w->numel);
            memcpy(l->weights[s->epoch - 1], gf_f32(w), sizeof(float) * (size_t)w->numel);
        }
    }
    l->epochs++;
    return l->stop_at_epoch == 0 || s->epoch < l->stop_at_epoch;
}

static bool on_step(const gf_step_stats *s, void *user) {
    log_t *l = user;
    l->steps++;
    l->stepped += s->stepped;
    return l->stop_at_batch == 0 || l->steps < l->stop_at_batch;
}

static void free_log(log_t *l) {
    for (int i = 0; i < 32; i++) free(l->weights[i]);
}

/* Learns the blobs; callbacks see every epoch and batch; per-epoch StepLR halves the lr. */
static void test_learns(gf_ctx *ctx) {
    gf_ds *tr = blobs(ctx, 240, 1, -1), *va = blobs(ctx, 90, 2, -1);
    gf_loader *lt = loader(ctx, tr, 32, true), *lv = loader(ctx, va, 50, false);
    gf_module *m = mlp(ctx, 3, K);
    gf_optim *o = adam(ctx, m, 0.02);
    gf_sched_params sp = gf_sched_default_params(GF_SCHED_STEP);
    sp.step_size = 2;
    sp.gamma = 0.5;
    gf_sched *s = gf_sched_new(ctx, o, &sp);
    CHECK(tr && va && lt && lv && m && o && s);
    double acc0;
    CHECK(gf_evaluate(ctx, m, NULL, lv, NULL, &acc0) == GF_OK);
    log_t lg;
    memset(&lg, 0, sizeof lg);
    gf_fit_params p = gf_fit_default_params();
    p.epochs = 8;
    p.on_epoch = on_epoch;
    p.on_step = on_step;
    p.user = &lg;
    gf_fit_result r;
    CHECK(gf_fit(ctx, m, NULL, o, s, lt, lv, &p, &r) == GF_OK);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    CHECK(r.epochs_run == 8 && lg.epochs == 8 && !r.stopped_early && !r.stopped_by_callback);
    CHECK(lg.steps == 8 * 8 && lg.stepped == 64 && r.steps == 64 && gf_optim_steps(o) == 64);
    CHECK(r.last.val_acc > 0.9 && r.last.train_acc > 0.85);
    CHECK(r.last.val_acc > acc0);
    CHECK(r.last.train_loss < 0.5 && isfinite(r.last.val_loss));
    CHECK(r.best_epoch >= 1 && r.best_metric == lg.monitored[r.best_epoch - 1]);
    /* StepLR per epoch: lr 0.02 for epochs 1-2 ... the stats report the lr after the step */
    CHECK(lg.lr[0] == 0.02 && lg.lr[1] == 0.01 && lg.lr[3] == 0.005 && lg.lr[7] == 0.00125);
    double loss, acc;
    CHECK(gf_evaluate(ctx, m, NULL, lv, &loss, &acc) == GF_OK);
    CHECK(acc == r.last.val_acc && loss == r.last.val_loss);
    CHECK(gf_module_is_training(m));
    gf_sched_free(s);
    gf_optim_free(o);
    gf_module_free(m);
    gf_loader_free(lt);
    gf_loader_free(lv);
    gf_ds_free(tr);
    gf_ds_free(va);
}

/* Patience: with an impossible min_delta nothing improves after epoch 1. Callbacks stop. */
static void test_early_stop(gf_ctx *ctx) {
    gf_ds *tr = blobs(ctx, 64, 4, -1), *va = blobs(ctx, 32, 5, -1);
    gf_loader *lt = loader(ctx, tr, 16, false), *lv = loader(ctx, va, 16, false);
    gf_module *m = mlp(ctx, 6, K);
    gf_optim *o = adam(ctx, m, 1e-3);
    gf_fit_params p = gf_fit_default_params();
    p.epochs = 20;
    p.patience = 2;
    p.min_delta = 10.0;
    gf_fit_result r;
    CHECK(gf_fit(ctx, m, NULL, o, NULL, lt, lv, &p, &r) == GF_OK);
    CHECK(r.stopped_early && r.epochs_run == 3 && r.best_epoch == 1 && r.last.bad_epochs == 2);
    /* monitor val accuracy (max): same logic the other way round */
    p.monitor = GF_MONITOR_VAL_ACC;
    p.min_delta = 2.0;
    CHECK(gf_fit(ctx, m, NULL, o, NULL, lt, lv, &p, &r) == GF_OK);
    CHECK(r.stopped_early && r.epochs_run == 3 && r.best_epoch == 1);
    /* the epoch callback stops after epoch 2, the step callback after 5 batches */
    log_t lg;
    memset(&lg, 0, sizeof lg);
    lg.stop_at_epoch = 2;
    p = gf_fit_default_params();
    p.on_epoch = on_epoch;
    p.user = &lg;
    CHECK(gf_fit(ctx, m, NULL, o, NULL, lt, lv, &p, &r) == GF_OK);
    CHECK(r.stopped_by_callback && r.epochs_run == 2 && lg.epochs == 2);
    memset(&lg, 0, sizeof lg);
    lg.stop_at_batch = 5;
    p.on_epoch = NULL;
    p.on_step = on_step;
    int64_t before = gf_optim_steps(o);
    CHECK(gf_fit(ctx, m, NULL, o, NULL, lt, NULL, &p, &r) == GF_OK);
    CHECK(r.stopped_by_callback && lg.steps == 5 && r.epochs_run == 1 && r.steps == 5); /* in epoch 2 */
    CHECK(gf_optim_steps(o) == before + 5);
    /* the loader was left mid-epoch: move it to the next epoch's start for the next user */
    gf_optim_free(o);
    gf_module_free(m);
    gf_loader_free(lt);
    gf_loader_free(lv);
    gf_ds_free(tr);
    gf_ds_free(va);
}

/* Keep-best: after epoch 2 the epoch callback spoils the weights (adds 3 to every parameter),
 * so epoch 2 stays the best; at the end the weights are exactly those after epoch 2. */
static bool spoil_after_2(const gf_epoch_stats *s, void *user) {
    log_t *l = user;
    on_epoch(s, user);
    if (s->epoch == 2) {
        gf_named_tensors *ps = gf_module_named_tensors(NULL, l->model, GF_STATE_PARAMS);
        for (int i = 0; ps && i < ps->n; i++)
            for (int64_t k = 0; k < ps->items[i].tensor->numel; k++)
                gf_f32(ps->items[i].tensor)[k] += 3.0f;
        gf_named_tensors_free(ps);
    }
    return true;
}

static void test_keep_best(gf_ctx *ctx) {
    gf_ds *tr = regression(ctx, 64, 8), *va = regression(ctx, 64, 9);
    gf_loader *lt = loader(ctx, tr, 16, false), *lv = loader(ctx, va, 64, false);
    gf_module *m = mlp(ctx, 10, 1);
    gf_optim *o = adam(ctx, m, 0.01);
    gf_loss_spec mse = gf_loss_default(GF_LOSS_MSE);
    log_t lg;
    memset(&lg, 0, sizeof lg);
    lg.model = m;
    gf_fit_params p = gf_fit_default_params();
    p.epochs = 5;
    p.restore_best = true;
    p.on_epoch = spoil_after_2;
    p.user = &lg;
    gf_fit_result r;
    CHECK(gf_fit(ctx, m, &mse, o, NULL, lt, lv, &p, &r) == GF_OK);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    CHECK(r.best_epoch == 2 && r.epochs_run == 5 && r.restored_best);
    CHECK(lg.monitored[1] < lg.monitored[0] && lg.monitored[4] > r.best_metric);
    gf_tensor *w = gf_module_tensor(NULL, m, "0.weight");
    CHECK(lg.weights[1] != NULL &&
          memcmp(lg.weights[1], gf_f32(w), sizeof(float) * (size_t)w->numel) == 0);
    double vl;
    CHECK(gf_evaluate(ctx, m, &mse, lv, &vl, NULL) == GF_OK && vl == r.best_metric);
    /* without restore_best the spoiled weights stay */
    free_log(&lg);
    memset(&lg, 0, sizeof lg);
    lg.model = m;
    p.restore_best = false;
    p.epochs = 3;
    CHECK(gf_fit(ctx, m, &mse, o, NULL, lt, lv, &p, &r) == GF_OK && !r.restored_best);
    CHECK(memcmp(lg.weights[2], gf_f32(w), sizeof(float) * (size_t)w->numel) == 0);
    gf_ctx_clear_error(ctx);
    free_log(&lg);
    gf_optim_free(o);
    gf_module_free(m);
    gf_loader_free(lt);
    gf_loader_free(lv);
    gf_ds_free(tr);
    gf_ds_free(va);
}

/* A NaN in example 37 (batch 5 of 8 with batches of 8): STOP names epoch and batch, SKIP
 * trains on the rest with finite weights. */
static void test_nonfinite(gf_ctx *ctx) {
    gf_ds *tr = blobs(ctx, 64, 11, 37);
    gf_loader *lt = loader(ctx, tr, 8, false);
    gf_module *m = mlp(ctx, 12, K);
    gf_optim *o = adam(ctx, m, 0.01);
    gf_fit_params p = gf_fit_default_params();
    p.epochs = 3;
    gf_fit_result r;
    CHECK(gf_fit(ctx, m, NULL, o, NULL, lt, NULL, &p, &r) == GF_ERR_NUMERIC);
    CHECK(strstr(gf_ctx_error(ctx), "epoch 1, batch 5 of 8") != NULL);
    CHECK(strstr(gf_ctx_error(ctx), "nan") && strstr(gf_ctx_error(ctx), "GF_NONFINITE_SKIP"));
    CHECK(r.steps == 4); /* batches 1-4 were trained */
    gf_ctx_clear_error(ctx);
    gf_loader_seek(ctx, lt, gf_loader_epoch(lt) + 1, 0);
    p.on_nonfinite = GF_NONFINITE_SKIP;
    log_t lg;
    memset(&lg, 0, sizeof lg);
    p.on_step = on_step;
    p.user = &lg;
    CHECK(gf_fit(ctx, m, NULL, o, NULL, lt, NULL, &p, &r) == GF_OK);
    CHECK(r.skipped == 3 && r.last.skipped == 1 && r.steps == 3 * 7 && lg.steps == 24);
    CHECK(isfinite(r.last.train_loss));
    gf_named_tensors *ps = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    bool finite = true;
    for (int i = 0; i < ps->n; i++)
        for (int64_t k = 0; k < ps->items[i].tensor->numel; k++)
            finite = finite && isfinite(gf_f32(ps->items[i].tensor)[k]);
    CHECK(finite);
    gf_named_tensors_free(ps);
    gf_optim_free(o);
    gf_module_free(m);
    gf_loader_free(lt);
    gf_ds_free(tr);
}

/* Accumulating 4 micro-batches of 8 equals batches of 32 (72 examples: the last group of one
 * batch of 8 against a last batch of 8), within float32 rounding of the summed gradients. */
static void test_accumulation(gf_ctx *ctx) {
    gf_ds *tr = blobs(ctx, 72, 13, -1);
    gf_module *ma = mlp(ctx, 14, K), *mb = mlp(ctx, 14, K);
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_SGD);
    hp.lr = 0.2;
    hp.momentum = 0.9;
    gf_optim *oa = gf_train_optim_new(ctx, ma, &hp, NULL, 0);
    gf_optim *ob = gf_train_optim_new(ctx, mb, &hp, NULL, 0);
    gf_loader *la = loader(ctx, tr, 8, false), *lb = loader(ctx, tr, 32, false);
    gf_fit_params p = gf_fit_default_params();
    p.epochs = 3;
    p.accum_steps = 4;
    gf_fit_result ra, rb;
    CHECK(gf_fit(ctx, ma, NULL, oa, NULL, la, NULL, &p, &ra) == GF_OK);
    p.accum_steps = 1;
    CHECK(gf_fit(ctx, mb, NULL, ob, NULL, lb, NULL, &p, &rb) == GF_OK);
    CHECK(ra.steps == 9 && rb.steps == 9);
    CHECK_NEAR(ra.last.train_loss, rb.last.train_loss, 1e-5);
    gf_named_tensors *a = gf_module_named_tensors(ctx, ma, GF_STATE_PARAMS);
    gf_named_tensors *b = gf_module_named_tensors(ctx, mb, GF_STATE_PARAMS);
    double max_diff = 0;
    for (int i = 0; i < a->n; i++)
        for (int64_t k = 0; k < a->items[i].tensor->numel; k++) {
            double d = fabs(gf_f32(a->items[i].tensor)[k] - gf_f32(b->items[i].tensor)[k]);
            if (d > max_diff) max_diff = d;
        }
    printf("  accumulation 4 x 8 vs 32: max weight difference %.3g after 9 steps\n", max_diff);
    CHECK(max_diff < 1e-5);
    gf_named_tensors_free(a);
    gf_named_tensors_free(b);
    gf_optim_free(oa);
    gf_optim_free(ob);
    gf_module_free(ma);
    gf_module_free(mb);
    gf_loader_free(la);
    gf_loader_free(lb);
    gf_ds_free(tr);
}

/* Frozen first layer: bitwise unchanged, no gradient, no optimizer state; clipping and a
 * per-step OneCycle run alongside. */
static void test_frozen(gf_ctx *ctx) {
    gf_ds *tr = blobs(ctx, 96, 15, -1);
    gf_loader *lt = loader(ctx, tr, 16, true);
    gf_module *m = mlp(ctx, 16, K);
    gf_tensor *w = gf_module_tensor(NULL, m, "0.weight"), *b = gf_module_tensor(NULL, m, "0.bias");
    gf_tensor_set_requires_grad(w, false);
    gf_tensor_set_requires_grad(b, false);
    float *w0 = malloc(sizeof(float) * (size_t)w->numel), *b0 = malloc(sizeof(float) * 16);
    memcpy(w0, gf_f32(w), sizeof(float) * (size_t)w->numel);
    memcpy(b0, gf_f32(b), sizeof(float) * 16);
    gf_tensor *h = gf_module_tensor(NULL, m, "2.weight");
    float h0 = gf_f32(h)[0];
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_ADAMW);
    gf_optim *o = gf_train_optim_new(ctx, m, &hp, NULL, 0);
    gf_sched_params sp = gf_sched_default_params(GF_SCHED_ONECYCLE);
    sp.max_lr = 0.05;
    sp.total_steps = 4 * 6;
    gf_sched *s = gf_sched_new(ctx, o, &sp);
    gf_fit_params p = gf_fit_default_params();
    p.epochs = 4;
    p.clip_norm = 0.5;
    p.clip_value = 0.1;
    log_t lg;
    memset(&lg, 0, sizeof lg);
    p.on_step = on_step;
    p.user = &lg;
    gf_fit_result r;
    CHECK(gf_fit(ctx, m, NULL, o, s, lt, NULL, &p, &r) == GF_OK);
    CHECK(memcmp(w0, gf_f32(w), sizeof(float) * (size_t)w->numel) == 0);
    CHECK(memcmp(b0, gf_f32(b), sizeof(float) * 16) == 0);
    CHECK(w->grad == NULL && b->grad == NULL);
    CHECK(gf_optim_state(o, gf_optim_find_param(o, "0.weight"), "exp_avg") == NULL);
    CHECK(gf_optim_state(o, gf_optim_find_param(o, "2.weight"), "exp_avg") != NULL);
    CHECK(gf_f32(h)[0] != h0);
    CHECK(gf_sched_last_epoch(s) == 24);
    /* one more epoch would step OneCycle past total_steps: an error, not a crash */
    p.epochs = 1;
    CHECK(gf_fit(ctx, m, NULL, o, s, lt, NULL, &p, &r) == GF_ERR_STATE);
    CHECK(strstr(gf_ctx_error(ctx), "OneCycleLR") != NULL);
    gf_ctx_clear_error(ctx);
    free(w0);
    free(b0);
    gf_sched_free(s);
    gf_optim_free(o);
    gf_module_free(m);
    gf_loader_free(lt);
    gf_ds_free(tr);
}

/* ReduceLROnPlateau per epoch on the monitored value; a regression reports NaN accuracy. */
static void test_plateau(gf_ctx *ctx) {
    gf_ds *tr = regression(ctx, 48, 17);
    gf_loader *lt = loader(ctx, tr, 16, false);
    gf_module *m = mlp(ctx, 18, 1);
    gf_optim *o = adam(ctx, m, 1e-3);
    gf_sched_params sp = gf_sched_default_params(GF_SCHED_PLATEAU);
    sp.patience = 0;
    sp.threshold = 10.0; /* rel: better means < best * (1 - 10): never, so it reduces every epoch */
    sp.factor = 0.5;
    gf_sched *s = gf_sched_new(ctx, o, &sp);
    gf_loss_spec l1 = gf_loss_default(GF_LOSS_SMOOTH_L1);
    log_t lg;
    memset(&lg, 0, sizeof lg);
    gf_fit_params p = gf_fit_default_params();
    p.epochs = 3;
    p.on_epoch = on_epoch;
    p.user = &lg;
    gf_fit_result r;
    CHECK(gf_fit(ctx, m, &l1, o, s, lt, NULL, &p, &r) == GF_OK);
    CHECK(lg.lr[0] == 5e-4 && lg.lr[1] == 2.5e-4 && lg.lr[2] == 1.25e-4);
    CHECK(isnan(r.last.train_acc) && isnan(r.last.val_loss));
    gf_sched_free(s);
    gf_optim_free(o);
    gf_module_free(m);
    gf_loader_free(lt);
    gf_ds_free(tr);
}

static gf_tensor *bad_loss(gf_ctx *ctx, gf_tensor *out, gf_tensor *y, void *user) {
    (void)ctx;
    (void)y;
    (void)user;
    return out; /* not a scalar */
}

static gf_tensor *sum_loss(gf_ctx *ctx, gf_tensor *out, gf_tensor *y, void *user) {
    (void)y;
    *(int *)user += 1;
    return gf_mean(ctx, gf_mul(ctx, out, out), NULL, 0, false);
}

static void test_errors(gf_ctx *ctx) {
    gf_ds *tr = blobs(ctx, 32, 19, -1);
    gf_loader *lt = loader(ctx, tr, 8, false);
    gf_module *m = mlp(ctx, 20, K);
    gf_optim *o = adam(ctx, m, 1e-3);
    gf_fit_params p = gf_fit_default_params();
    gf_fit_result r;
    gf_ctx_clear_error(ctx);
    CHECK(gf_fit(ctx, NULL, NULL, o, NULL, lt, NULL, &p, &r) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    p.epochs = 0;
    CHECK(gf_fit(ctx, m, NULL, o, NULL, lt, NULL, &p, &r) == GF_ERR_INVALID &&
          strstr(gf_ctx_error(ctx), "epochs 0"));
    gf_ctx_clear_error(ctx);
    p = gf_fit_default_params();
    p.monitor = GF_MONITOR_VAL_ACC;
    CHECK(gf_fit(ctx, m, NULL, o, NULL, lt, NULL, &p, &r) == GF_ERR_INVALID &&
          strstr(gf_ctx_error(ctx), "val_acc needs a validation loader"));
    gf_ctx_clear_error(ctx);
    p = gf_fit_default_params();
    p.epochs = 1;
    gf_loss_spec bad = gf_loss_default(GF_LOSS_CUSTOM);
    bad.fn = bad_loss;
    CHECK(gf_fit(ctx, m, &bad, o, NULL, lt, NULL, &p, &r) == GF_ERR_SHAPE &&
          strstr(gf_ctx_error(ctx), "expected a scalar"));
    gf_ctx_clear_error(ctx);
    gf_loader_seek(ctx, lt, gf_loader_epoch(lt) + 1, 0);
    /* a custom loss that works; no accuracy for float targets... labels are int64 here */
    int calls = 0;
    gf_loss_spec ok = gf_loss_default(GF_LOSS_CUSTOM);
    ok.fn = sum_loss;
    ok.user = &calls;
    CHECK(gf_fit(ctx, m, &ok, o, NULL, lt, NULL, &p, &r) == GF_OK && calls == 4);
    /* MSE on class labels: the loss op names the problem */
    gf_loss_spec mse = gf_loss_default(GF_LOSS_MSE);
    CHECK(gf_fit(ctx, m, &mse, o, NULL, lt, NULL, &p, &r) != GF_OK);
    CHECK(strlen(gf_ctx_error(ctx)) > 0);
    gf_ctx_clear_error(ctx);
    /* an error already in the context is returned, nothing runs */
    gf_ctx_set_error(ctx, GF_ERR_IO, "earlier");
    int64_t steps = gf_optim_steps(o);
    CHECK(gf_fit(ctx, m, NULL, o, NULL, lt, NULL, &p, &r) == GF_ERR_IO && gf_optim_steps(o) == steps);
    gf_ctx_clear_error(ctx);
    CHECK(gf_evaluate(ctx, NULL, NULL, lt, NULL, NULL) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    gf_optim_free(o);
    gf_module_free(m);
    gf_loader_free(lt);
    gf_ds_free(tr);
}

/* ---- the example of docs/TRAINING.md (keep the two in step) ------------------------------ */
static bool print_epoch(const gf_epoch_stats *s, void *user) {
    (void)user;
    printf("  epoch %d/%d  loss %.4f  val_loss %.4f  val_acc %.3f  lr %.2e%s\n", s->epoch,
           s->epochs, s->train_loss, s->val_loss, s->val_acc, s->lr, s->improved ? "  *" : "");
    return true; /* false would stop training */
}

static int doc_example(gf_ctx *ctx, gf_module *model, gf_ds *train_ds, gf_ds *val_ds) {
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 32;
    gf_loader *train = gf_loader_new(ctx, train_ds, &lp);
    lp.shuffle = false;
    gf_loader *val = gf_loader_new(ctx, val_ds, &lp);

    /* discriminative learning rates: the head 10x the trunk; no weight decay on biases */
    gf_optim_params trunk = gf_optim_default_params(GF_OPTIM_ADAMW);
    trunk.lr = 1e-3;
    gf_optim_params head = trunk, no_decay = trunk;
    head.lr = 1e-2;
    no_decay.weight_decay = 0;
    gf_group_spec groups[] = {{"head", "head.*", &head}, {"bias", "layers.*.bias", &no_decay}};
    gf_optim *opt = gf_train_optim_new(ctx, model, &trunk, groups, 2); /* + "default" group */

    /* 2 epochs of linear warmup from 0.1x, then cosine annealing over 8, stepped per epoch */
    gf_sched_params cosine = gf_sched_default_params(GF_SCHED_COSINE);
    cosine.t_max = 8;
    gf_sched *sched = gf_sched_warmup(ctx, opt, 2, 0.1, &cosine);

    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = 10;
    fp.clip_norm = 1.0;      /* clip_grad_norm_(max_norm=1) before each step */
    fp.patience = 3;         /* early stopping on val_loss */
    fp.restore_best = true;  /* end with the best epoch's weights */
    fp.on_epoch = print_epoch;
    gf_fit_result res;
    gf_status st = gf_fit(ctx, model, NULL /* cross entropy */, opt, sched, train, val, &fp, &res);
    if (st != GF_OK) fprintf(stderr, "graft: %s\n", gf_ctx_error(ctx));

    /* optimizer + schedule state into one safetensors file (a checkpoint adds the weights) */
    gf_state_list *state = gf_state_list_new(ctx);
    gf_optim_export(ctx, opt, state);
    gf_sched_export(ctx, sched, state);
    gf_st_writer *w = gf_st_writer_new(ctx);
    gf_state_list_to_writer(ctx, state, w);
    if (st == GF_OK) st = gf_st_writer_save(w, "train_state.safetensors");
    gf_st_writer_free(w);
    gf_state_list_free(state); /* after the save: the list borrows the optimizer's buffers */

    gf_sched_free(sched);
    gf_optim_free(opt);
    gf_loader_free(train);
    gf_loader_free(val);
    return st == GF_OK ? 0 : 1;
}
/* ---- end of the example ----------------------------------------------------------------- */

/* Runs the example, then resumes from its file into fresh objects: same groups and state. */
static void test_doc_example(gf_ctx *ctx) {
    gf_zoo_params zp = gf_zoo_default_params();
    zp.height = 1;
    zp.width = F;
    zp.num_classes = K;
    zp.hidden[0] = 16;
    zp.hidden[1] = 0;
    gf_rng r;
    gf_rng_seed(&r, 21);
    gf_module *m = gf_zoo_build(ctx, "mlp", &zp, &r);
    gf_ds *tr = blobs(ctx, 200, 22, -1), *va = blobs(ctx, 60, 23, -1);
    CHECK(m && tr && va);
    CHECK(doc_example(ctx, m, tr, va) == 0);
    gf_st_file *f = gf_st_open(ctx, "train_state.safetensors");
    gf_state_list *l = f ? gf_state_list_from_file(ctx, f, NULL) : NULL;
    CHECK(l != NULL);
    gf_optim_params trunk = gf_optim_default_params(GF_OPTIM_ADAMW);
    gf_group_spec groups[] = {{"head", "head.*", NULL}, {"bias", "layers.*.bias", NULL}};
    gf_optim *opt = gf_train_optim_new(ctx, m, &trunk, groups, 2);
    CHECK(opt && gf_optim_n_groups(opt) == 3 &&
          strcmp(gf_optim_group_name(opt, 2), "default") == 0);
    gf_sched_params cosine = gf_sched_default_params(GF_SCHED_COSINE);
    cosine.t_max = 8;
    gf_sched *s = gf_sched_warmup(ctx, opt, 2, 0.1, &cosine);
    CHECK(gf_optim_import(ctx, opt, l) == GF_OK && gf_sched_import(ctx, s, l) == GF_OK);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    CHECK(gf_optim_group_params(opt, 1)->weight_decay == 0.0);
    CHECK(gf_optim_steps(opt) > 0 && gf_sched_last_epoch(s) >= 1);
    /* the cosine reached eta_min = 0 at the last epoch; the schedule's base lrs keep the 10x */
    CHECK(gf_optim_group_lr(opt, 0) == 0.0 && gf_optim_group_lr(opt, 2) == 0.0);
    gf_state_list *again = gf_state_list_new(ctx);
    CHECK(gf_sched_export(ctx, s, again) == GF_OK);
    CHECK(strcmp(gf_state_list_get_meta(again, "sched.base_lr.0"), "0.01") == 0);
    CHECK(strcmp(gf_state_list_get_meta(again, "sched.base_lr.2"), "0.001") == 0);
    gf_state_list_free(again);
    gf_sched_free(s);
    gf_optim_free(opt);
    gf_state_list_free(l);
    gf_st_close(f);
    remove("train_state.safetensors");
    gf_module_free(m);
    gf_ds_free(tr);
    gf_ds_free(va);
}

int main(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_learns(ctx);
    test_early_stop(ctx);
    test_keep_best(ctx);
    test_nonfinite(ctx);
    test_accumulation(ctx);
    test_frozen(ctx);
    test_plateau(ctx);
    test_errors(ctx);
    test_doc_example(ctx);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "left error: %s\n", gf_ctx_error(ctx));
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_free(ctx);
    return test_finish("test_train");
}
