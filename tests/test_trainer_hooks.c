/* The hooks of graft's one trainer and its evaluator (graft/train.h): a batch loss sees each
 * batch's dataset indices in the loader's order and its rows of a per-example table; gf_fit
 * with several tasks (interleave and sum) gives bitwise the weights of the same loop written by
 * hand with gf_train_step; gf_evaluate_ex's confusion matrix, per-class and macro precision /
 * recall / F1, top-k, regression errors and per-example predictions against values computed
 * by hand on tiny datasets (the model is an Identity, so the inputs are the outputs).
 * To add a case: write a static void test_x(gf_ctx *) with CHECKs and call it from main. */
#include "graft/graft.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

enum { F = 4 };

/* n examples of k Gaussian blobs in F dimensions. */
static gf_ds *blobs(gf_ctx *ctx, int64_t n, int k, uint64_t seed) {
    float *x = malloc(sizeof(float) * (size_t)(n * F));
    int64_t *y = malloc(sizeof(int64_t) * (size_t)n);
    gf_rng r;
    gf_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int64_t)gf_rng_below(&r, (uint64_t)k);
        for (int j = 0; j < F; j++) x[i * F + j] = gf_rng_normal(&r) + (j == y[i] ? 2.0f : 0.0f);
    }
    return test_ds_take(ctx, NULL, 1, (int64_t[]){F}, n, x, y, NULL, k);
}

static gf_loader *loader(gf_ctx *ctx, gf_ds *ds, int64_t bs, bool shuffle, uint64_t seed) {
    gf_loader_params p = gf_loader_default_params();
    p.batch_size = bs;
    p.shuffle = shuffle;
    p.seed = seed;
    return gf_loader_new(ctx, ds, &p);
}

static gf_module *linear(gf_ctx *ctx, uint64_t seed, int64_t in, int64_t out) {
    gf_rng r;
    gf_rng_seed(&r, seed);
    return gf_nn_linear(ctx, &r, in, out, true);
}

/* Linear(F, 8) -> ReLU */
static gf_module *trunk(gf_ctx *ctx, uint64_t seed) {
    gf_module *kids[] = {linear(ctx, seed, F, 8), gf_nn_relu(ctx)};
    return gf_nn_sequential_of(ctx, 2, kids);
}

static gf_optim *adam(gf_ctx *ctx, gf_module *m) {
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_ADAM);
    hp.lr = 0.01;
    return gf_train_optim_new(ctx, m, &hp, NULL, 0);
}

/* Are all parameters of a and b bitwise equal? */
static bool same_params(gf_module *a, gf_module *b) {
    gf_named_tensors *x = gf_module_named_tensors(NULL, a, GF_STATE_PARAMS);
    gf_named_tensors *y = gf_module_named_tensors(NULL, b, GF_STATE_PARAMS);
    bool same = x && y && x->n == y->n && x->n > 0;
    for (int i = 0; same && i < x->n; i++)
        same = x->items[i].tensor->numel == y->items[i].tensor->numel &&
               memcmp(x->items[i].tensor->data, y->items[i].tensor->data,
                      sizeof(float) * (size_t)x->items[i].tensor->numel) == 0;
    gf_named_tensors_free(x);
    gf_named_tensors_free(y);
    return same;
}

/* ---- a batch loss sees the batch ---------------------------------------------------------- */

enum { N_SEEN = 64 };

typedef struct seen {
    gf_loader *ld;                  /* the training loader, to ask for its order */
    int train_calls, val_calls;
    int wrong_idx, wrong_extra, wrong_meta;
    const float *table;             /* the extra rows: [i, 100 + i] */
} seen;

static gf_tensor *seeing_ce(gf_ctx *ctx, gf_tensor *out, const gf_batch_info *b, void *user) {
    seen *s = user;
    if (!b->training) {
        s->val_calls++;
        if (b->extra) s->wrong_extra++; /* no extra rows outside training */
        return gf_cross_entropy(ctx, out, b->y, GF_REDUCE_MEAN, -100);
    }
    int64_t want[8], n = 0;
    gf_loader_indices(ctx, s->ld, b->epoch, b->batch, want, &n);
    if (n != b->n || memcmp(want, b->idx, sizeof(int64_t) * (size_t)n) != 0) s->wrong_idx++;
    /* gf_fit goes through the loader in order: the k-th call is batch k % 5 of epoch k / 5 */
    if (b->epoch != s->train_calls / 5 || b->batch != s->train_calls % 5 || b->task != 0 ||
        b->x->shape[0] != b->n || b->y->numel != b->n)
        s->wrong_meta++;
    if (!b->extra || b->extra->shape[0] != b->n || b->extra->shape[1] != 2) {
        s->wrong_extra++;
    } else {
        for (int64_t i = 0; i < b->n; i++)
            if (gf_f32(b->extra)[2 * i] != s->table[2 * b->idx[i]] ||
                gf_f32(b->extra)[2 * i + 1] != (float)(100 + b->idx[i]))
                s->wrong_extra++;
    }
    s->train_calls++;
    return gf_cross_entropy(ctx, out, b->y, GF_REDUCE_MEAN, -100);
}

static void test_batch_loss(gf_ctx *ctx) {
    gf_ds *train = blobs(ctx, 23, 3, 1), *val = blobs(ctx, 9, 3, 2);
    float table[2 * 23];
    for (int i = 0; i < 23; i++) table[2 * i] = (float)i, table[2 * i + 1] = (float)(100 + i);
    gf_module *m[2];
    seen s;
    memset(&s, 0, sizeof s);
    s.table = table;
    for (int v = 0; v < 2; v++) {
        m[v] = linear(ctx, 5, F, 3);
        gf_loader *tl = loader(ctx, train, 5, true, 3), *vl = loader(ctx, val, 4, false, 0);
        gf_optim *opt = adam(ctx, m[v]);
        gf_loss_spec loss = gf_loss_default(GF_LOSS_CROSS_ENTROPY);
        if (v == 1) { /* the same cross entropy, through a batch loss */
            loss = gf_loss_default(GF_LOSS_CUSTOM);
            loss.batch_fn = seeing_ce;
            loss.user = &s;
            loss.extra = table;
            loss.extra_width = 2;
            loss.extra_count = 23;
            s.ld = tl;
        }
        gf_fit_params fp = gf_fit_default_params();
        fp.epochs = 2;
        fp.replicas = 1; /* a custom loss never runs in replicas */
        gf_fit_result res;
        CHECK(gf_fit(ctx, m[v], &loss, opt, NULL, tl, vl, &fp, &res) == GF_OK);
        CHECK(res.steps == 10);
        gf_optim_free(opt);
        gf_loader_free(tl);
        gf_loader_free(vl);
    }
    CHECK(s.train_calls == 10 && s.val_calls == 2 * 3);
    CHECK(s.wrong_idx == 0 && s.wrong_extra == 0 && s.wrong_meta == 0);
    CHECK(same_params(m[0], m[1]));

    /* a batch loss needs the batch; extra rows are checked against the table */
    gf_loss_spec bl = gf_loss_default(GF_LOSS_CUSTOM);
    bl.batch_fn = seeing_ce;
    bl.user = &s;
    gf_tensor *out = gf_zeros(ctx, GF_F32, 2, (int64_t[]){2, 3});
    gf_tensor *y = gf_zeros(ctx, GF_I64, 1, (int64_t[]){2});
    EXPECT_ERR(ctx, gf_loss_compute(ctx, &bl, out, y), GF_ERR_INVALID, "gf_loss_compute_batch");
    bl.extra = table;
    bl.extra_width = 2;
    bl.extra_count = 23;
    const int64_t idx[2] = {3, 23};
    const gf_batch_info bi = {idx, 2, NULL, y, NULL, 0, 0, 0, true};
    EXPECT_ERR(ctx, gf_loss_compute_batch(ctx, &bl, out, &bi), GF_ERR_INVALID, "index 23",
               "outside the 23 extra rows");
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    gf_module_free(m[0]);
    gf_module_free(m[1]);
    gf_ds_free(train);
    gf_ds_free(val);
}

/* ---- several tasks: interleave and sum ----------------------------------------------------- */

/* Two tasks on one trunk, each with a head: A (3 classes, 23 examples, 6 batches of 4) and B
 * (2 classes, 10 examples, 3 batches). */
typedef struct two_tasks {
    gf_module *trunk, *head[2];
    gf_optim *topt, *hopt[2];
    gf_loader *ld[2];
} two_tasks;

static void two_tasks_new(gf_ctx *ctx, two_tasks *t, gf_ds *const *ds) {
    t->trunk = trunk(ctx, 11);
    for (int j = 0; j < 2; j++) {
        t->head[j] = linear(ctx, 12 + (uint64_t)j, 8, j == 0 ? 3 : 2);
        t->hopt[j] = adam(ctx, t->head[j]);
        t->ld[j] = loader(ctx, ds[j], 4, true, 20 + (uint64_t)j);
    }
    t->topt = adam(ctx, t->trunk);
}

static void two_tasks_free(two_tasks *t) {
    gf_optim_free(t->topt);
    for (int j = 0; j < 2; j++) {
        gf_optim_free(t->hopt[j]);
        gf_loader_free(t->ld[j]);
        gf_module_free(t->head[j]);
    }
    gf_module_free(t->trunk);
}

static gf_tensor *head_forward(gf_ctx *ctx, gf_module *model, gf_tensor *x, void *user) {
    return gf_module_forward(ctx, user, gf_module_forward(ctx, model, x));
}

static const float weights[2] = {0.5f, 2.0f};

/* The loop gf_fit's tasks stand for, by hand: per step the tasks' batches by the policy, their
 * weighted losses summed, one backward, the trunk's and their heads' optimizer steps. */
static void by_hand(gf_ctx *ctx, two_tasks *t, gf_task_policy policy, int epochs) {
    gf_module_train(t->trunk, true);
    for (int e = 0; e < epochs; e++) {
        bool done[2] = {false, false};
        int remaining = 2, next = 0;
        for (;;) {
            gf_batch b[2];
            bool in[2] = {false, false};
            int n_in = 0;
            if (policy == GF_TASKS_INTERLEAVE) {
                while (n_in == 0 && remaining > 0) {
                    const int j = next;
                    next = (next + 1) % 2;
                    if (done[j]) continue;
                    if (gf_loader_next(ctx, t->ld[j], &b[j])) in[j] = true, n_in++;
                    else done[j] = true, remaining--;
                }
            } else {
                for (int j = 0; j < 2; j++) {
                    if (done[j]) continue;
                    if (gf_loader_next(ctx, t->ld[j], &b[j])) in[j] = true, n_in++;
                    else done[j] = true, remaining--;
                }
            }
            if (n_in == 0) break;
            gf_optim_zero_grad(t->topt);
            gf_tensor *total = NULL;
            gf_optim *opts[3] = {t->topt, NULL, NULL};
            int n_opts = 1;
            for (int j = 0; j < 2; j++) {
                if (!in[j]) continue;
                gf_optim_zero_grad(t->hopt[j]);
                gf_tensor *l = gf_loss_compute(ctx, NULL, head_forward(ctx, t->trunk, b[j].x,
                                                                       t->head[j]), b[j].y);
                gf_tensor *wl = gf_mul_scalar(ctx, l, weights[j]);
                total = total ? gf_add(ctx, total, wl) : wl;
                opts[n_opts++] = t->hopt[j];
            }
            CHECK(gf_train_step(ctx, total, opts, n_opts, NULL) == GF_OK);
            gf_ctx_reset(ctx);
        }
    }
}

typedef struct task_log {
    int64_t steps[2], trunk_steps;
    double loss[2];
    int callbacks, single_task_steps, several_task_steps;
} task_log;

static bool log_epoch(const gf_epoch_stats *s, void *user) {
    task_log *l = user;
    l->callbacks++;
    CHECK(s->n_tasks == 2 && s->task_loss && s->task_steps);
    for (int j = 0; j < 2; j++) l->steps[j] = s->task_steps[j], l->loss[j] = s->task_loss[j];
    l->trunk_steps = s->steps;
    return true;
}

static bool log_step(const gf_step_stats *s, void *user) {
    task_log *l = user;
    if (s->task >= 0) l->single_task_steps++;
    else l->several_task_steps++;
    return true;
}

static void test_tasks(gf_ctx *ctx) {
    gf_ds *ds[2] = {blobs(ctx, 23, 3, 31), blobs(ctx, 10, 2, 32)};
    for (int policy = 0; policy < GF_TASKS_POLICY_COUNT; policy++) {
        two_tasks a, b;
        two_tasks_new(ctx, &a, ds);
        two_tasks_new(ctx, &b, ds);
        gf_fit_task ft[2];
        for (int j = 0; j < 2; j++) {
            ft[j] = gf_fit_task_default(a.ld[j]);
            ft[j].name = j == 0 ? "a" : "b";
            ft[j].weight = weights[j];
            ft[j].forward = head_forward;
            ft[j].forward_user = a.head[j];
            ft[j].opt = a.hopt[j];
        }
        task_log lg;
        memset(&lg, 0, sizeof lg);
        gf_fit_params fp = gf_fit_default_params();
        fp.epochs = 2;
        fp.tasks = ft;
        fp.n_tasks = 2;
        fp.task_policy = (gf_task_policy)policy;
        fp.on_epoch = log_epoch;
        fp.on_step = log_step;
        fp.user = &lg;
        gf_fit_result res;
        CHECK(gf_fit(ctx, a.trunk, NULL, a.topt, NULL, NULL, NULL, &fp, &res) == GF_OK);
        by_hand(ctx, &b, (gf_task_policy)policy, 2);
        CHECK(same_params(a.trunk, b.trunk));
        CHECK(same_params(a.head[0], b.head[0]) && same_params(a.head[1], b.head[1]));
        CHECK(lg.callbacks == 2 && lg.steps[0] == 12 && lg.steps[1] == 6);
        CHECK(isfinite(lg.loss[0]) && isfinite(lg.loss[1]));
        const int64_t steps = policy == GF_TASKS_INTERLEAVE ? 18 : 12;
        CHECK(res.steps == steps && lg.trunk_steps == steps && res.last.task_loss == NULL);
        if (policy == GF_TASKS_INTERLEAVE) CHECK(lg.several_task_steps == 0);
        else CHECK(lg.several_task_steps == 6 && lg.single_task_steps == 6);
        two_tasks_free(&a);
        two_tasks_free(&b);
    }

    /* argument checks */
    two_tasks t;
    two_tasks_new(ctx, &t, ds);
    gf_fit_task ft[2] = {gf_fit_task_default(t.ld[0]), gf_fit_task_default(t.ld[1])};
    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = 1;
    fp.tasks = ft;
    fp.n_tasks = 2;
    gf_ctx_clear_error(ctx);
    CHECK(gf_fit(ctx, t.trunk, NULL, t.topt, NULL, t.ld[0], NULL, &fp, NULL) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "tasks bring their own loaders") != NULL);
    gf_ctx_clear_error(ctx);
    fp.checkpoint.dir = "/tmp";
    CHECK(gf_fit(ctx, t.trunk, NULL, t.topt, NULL, NULL, NULL, &fp, NULL) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "checkpoints") != NULL);
    gf_ctx_clear_error(ctx);
    fp.checkpoint.dir = NULL;
    ft[1].weight = 0;
    CHECK(gf_fit(ctx, t.trunk, NULL, t.topt, NULL, NULL, NULL, &fp, NULL) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "task 1") && strstr(gf_ctx_error(ctx), "weight"));
    gf_ctx_clear_error(ctx);
    two_tasks_free(&t);
    gf_ds_free(ds[0]);
    gf_ds_free(ds[1]);
}

/* ---- the evaluator -------------------------------------------------------------------------- */

typedef struct preds {
    int n;
    int64_t index[8], pred[8];
    float score[8], target[8];
} preds;

static void on_pred(const gf_eval_pred *p, void *user) {
    preds *s = user;
    if (s->n < 8) {
        s->index[s->n] = p->index;
        s->pred[s->n] = p->pred;
        s->score[s->n] = p->score;
        s->target[s->n] = p->target;
    }
    s->n++;
}

/* Seven examples whose inputs are the scores of 3 classes. */
static void test_eval_classes(gf_ctx *ctx) {
    static const float x[7][3] = {{2, 1, 0}, {0, 3, 1}, {1, 0, 2}, {0, 0, 5},
                                  {4, 1, 1}, {1, 2, 0}, {3, 0, 1}};
    static const int64_t y[7] = {0, 1, 1, 2, 2, 1, 0};
    float *xs = malloc(sizeof x);
    int64_t *ys = malloc(sizeof y);
    memcpy(xs, x, sizeof x);
    memcpy(ys, y, sizeof y);
    gf_ds *ds = test_ds_take(ctx, NULL, 1, (int64_t[]){3}, 7, xs, ys, NULL, 3);
    gf_module *id = gf_nn_identity(ctx);
    gf_loader *ld = loader(ctx, ds, 3, false, 0); /* batches of 3, 3, 1 */
    preds pr;
    memset(&pr, 0, sizeof pr);
    gf_eval_params p = gf_eval_default_params();
    p.top_k = 2;
    p.on_pred = on_pred;
    p.pred_user = &pr;
    gf_eval_result r;
    CHECK(gf_evaluate_ex(ctx, id, NULL, ld, &p, &r) == GF_OK);
    /* predictions 0 1 2 2 0 1 0: confusion (rows true) [2 0 0; 0 2 1; 1 0 1] */
    static const int64_t cm[9] = {2, 0, 0, 0, 2, 1, 1, 0, 1};
    CHECK(r.count == 7 && r.n_classes == 3 && r.confusion);
    CHECK(r.confusion && memcmp(gf_confusion_counts(r.confusion), cm, sizeof cm) == 0);
    CHECK(r.accuracy == 5.0 / 7.0);
    /* class 0: P 2/3 R 1 F1 0.8; class 1: P 1 R 2/3 F1 0.8; class 2: P 1/2 R 1/2 F1 1/2 */
    const double P[3] = {2.0 / 3, 1, 0.5}, R[3] = {1, 2.0 / 3, 0.5}, F1[3] = {0.8, 0.8, 0.5};
    const int64_t sup[3] = {2, 3, 2};
    for (int c = 0; c < 3 && r.precision; c++) {
        CHECK_NEAR(r.precision[c], P[c], 1e-12);
        CHECK_NEAR(r.recall[c], R[c], 1e-12);
        CHECK_NEAR(r.f1[c], F1[c], 1e-12);
        CHECK(r.support[c] == sup[c]);
    }
    CHECK_NEAR(r.macro_precision, 13.0 / 18, 1e-12);
    CHECK_NEAR(r.macro_recall, 13.0 / 18, 1e-12);
    CHECK_NEAR(r.macro_f1, 0.7, 1e-12);
    /* top-2 misses only example 2 (label 1, scores 1 0 2); example 4's tie 1 = 1 ranks class 2 */
    CHECK(r.top_k == 2 && r.top_k_accuracy == 6.0 / 7.0);
    /* mean cross entropy: -log softmax(x)[y], in double */
    double ce = 0;
    for (int i = 0; i < 7; i++) {
        double s = 0;
        for (int c = 0; c < 3; c++) s += exp(x[i][c]);
        ce += log(s) - x[i][y[i]];
    }
    CHECK_NEAR(r.loss, ce / 7, 1e-6);
    CHECK(isnan(r.mae) && isnan(r.r2));
    /* the predictions, in order, with the softmax probability of the predicted class */
    CHECK(pr.n == 7 && pr.index[3] == 3 && pr.pred[3] == 2 && pr.pred[4] == 0);
    CHECK_NEAR(pr.score[3], exp(5.0) / (2 + exp(5.0)), 1e-6);
    CHECK(isnan(pr.target[0]));
    gf_eval_result_free(&r);

    /* the summed loss over the count is the same mean up to rounding; basic: loss and
     * accuracy only; n_classes that do not fit the outputs; gf_evaluate */
    p = gf_eval_default_params();
    p.loss_reduction = GF_REDUCE_SUM;
    CHECK(gf_evaluate_ex(ctx, id, NULL, ld, &p, &r) == GF_OK);
    CHECK_NEAR(r.loss, ce / 7, 1e-6);
    gf_eval_result_free(&r);
    p = gf_eval_default_params();
    p.basic = true;
    CHECK(gf_evaluate_ex(ctx, id, NULL, ld, &p, &r) == GF_OK);
    CHECK(r.accuracy == 5.0 / 7.0 && !r.confusion && !r.f1 && isnan(r.macro_f1));
    gf_eval_result_free(&r);
    double loss = 0, acc = 0;
    CHECK(gf_evaluate(ctx, id, NULL, ld, &loss, &acc) == GF_OK);
    CHECK_NEAR(loss, ce / 7, 1e-6);
    CHECK(acc == 5.0 / 7.0);
    p.basic = false;
    p.n_classes = 4;
    CHECK(gf_evaluate_ex(ctx, id, NULL, ld, &p, &r) == GF_ERR_SHAPE);
    CHECK(strstr(gf_ctx_error(ctx), "the model gives [3, 3] for 4 classes") != NULL);
    gf_eval_result_free(&r);
    gf_ctx_clear_error(ctx);
    gf_loader_free(ld);
    gf_module_free(id);
    gf_ds_free(ds);
}

/* Regression (MSE, L1) and binary cross entropy with one logit. */
static void test_eval_regression(gf_ctx *ctx) {
    /* predictions 1 2 3 4, targets 1.5 2 2 5: errors -0.5 0 1 -1 */
    float *xs = malloc(sizeof(float) * 4), *ts = malloc(sizeof(float) * 4);
    memcpy(xs, (float[]){1, 2, 3, 4}, sizeof(float) * 4);
    memcpy(ts, (float[]){1.5f, 2, 2, 5}, sizeof(float) * 4);
    gf_ds *ds = test_ds_take(ctx, NULL, 1, (int64_t[]){1}, 4, xs, NULL, ts, 0);
    gf_module *id = gf_nn_identity(ctx);
    gf_loader *ld = loader(ctx, ds, 3, false, 0);
    preds pr;
    memset(&pr, 0, sizeof pr);
    gf_eval_params p = gf_eval_default_params();
    p.on_pred = on_pred;
    p.pred_user = &pr;
    gf_eval_result r;
    gf_loss_spec mse = gf_loss_default(GF_LOSS_MSE);
    CHECK(gf_evaluate_ex(ctx, id, &mse, ld, &p, &r) == GF_OK);
    /* MAE 2.5 / 4; MSE 2.25 / 4, RMSE 0.75; mean target 2.625, SS_tot 7.6875, R² 1 - 2.25 / 7.6875 */
    CHECK(r.count == 4);
    CHECK_NEAR(r.loss, 0.5625, 1e-7); /* batch means (of 3, then 1) times their sizes */
    CHECK(r.mae == 0.625 && r.rmse == 0.75);
    CHECK_NEAR(r.r2, 1.0 - 2.25 / 7.6875, 1e-12);
    CHECK(isnan(r.accuracy) && !r.confusion && r.n_classes == 0);
    CHECK(pr.n == 4 && pr.score[2] == 3.0f && pr.target[3] == 5.0f && pr.pred[0] == -1);
    gf_eval_result_free(&r);
    gf_loss_spec l1 = gf_loss_default(GF_LOSS_L1);
    CHECK(gf_evaluate_ex(ctx, id, &l1, ld, NULL, &r) == GF_OK);
    CHECK(r.loss == 0.625 && r.mae == 0.625);
    gf_eval_result_free(&r);
    /* the same numbers as one-logit binary cross entropy with targets 1 1 0 0... */
    gf_loader_free(ld);
    gf_ds_free(ds);
    xs = malloc(sizeof(float) * 4);
    ts = malloc(sizeof(float) * 4);
    memcpy(xs, (float[]){2, -1, 0.5f, -3}, sizeof(float) * 4);
    memcpy(ts, (float[]){1, 1, 0, 0}, sizeof(float) * 4);
    ds = test_ds_take(ctx, NULL, 1, (int64_t[]){1}, 4, xs, NULL, ts, 0);
    ld = loader(ctx, ds, 4, false, 0);
    gf_loss_spec bce = gf_loss_default(GF_LOSS_BCE_WITH_LOGITS);
    CHECK(gf_evaluate_ex(ctx, id, &bce, ld, NULL, &r) == GF_OK);
    /* ...predict 1 0 1 0: confusion [1 1; 1 1], accuracy 1/2, no regression errors */
    static const int64_t cm[4] = {1, 1, 1, 1};
    CHECK(r.n_classes == 2 && r.confusion &&
          memcmp(gf_confusion_counts(r.confusion), cm, sizeof cm) == 0);
    CHECK(r.accuracy == 0.5 && isnan(r.mae));
    gf_eval_result_free(&r);
    gf_loader_free(ld);
    gf_module_free(id);
    gf_ds_free(ds);
}

int main(void) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 2;
    gf_ctx *ctx = gf_ctx_new(&cp);
    test_batch_loss(ctx);
    test_tasks(ctx);
    test_eval_classes(ctx);
    test_eval_regression(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_trainer_hooks");
}
