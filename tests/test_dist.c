/* Training across processes (graft/dist.h). Run alone it checks the loader's shares and the
 * world of one process; under `mpirun -np N` (ctest dist_np2, dist_np3) every rank also trains
 * each model twice, once alone on whole batches and once as one of N ranks on its shares, and
 * checks that the two agree within float32 rounding (the gradients are summed in another
 * order) and that every rank ends with bitwise the same weights: an MLP through an uneven and
 * an empty share, a non-finite batch skipped by all, accumulation with clipping and a frozen
 * layer, cnn-small with augmentation, a hand-written loop through gf_train_step. Then the
 * start-up checks, the weight comparison, sums and the agreed stop. */
#define _POSIX_C_SOURCE 200809L
#include "graft/dist.h"
#include "graft/graft.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static gf_dist *D;
static int R, N;            /* this rank, the ranks */
static int64_t flip_label = -1; /* make_ds changes this example's label */

/* ---- data -------------------------------------------------------------------------------- */

/* n examples of c x h x w with k classes given by a fixed random projection, so that there is
 * something to learn; example nan_at (>= 0) gets a NaN. */
static gf_ds *make_ds(gf_ctx *ctx, int64_t n, int c, int h, int w, int k, int64_t nan_at) {
    const int64_t numel = (int64_t)c * h * w, shape[3] = {c, h, w};
    float *x = malloc((size_t)(n * numel) * sizeof *x);
    int64_t *y = malloc((size_t)n * sizeof *y);
    if (!x || !y) return NULL;
    gf_rng rng;
    gf_rng_seed(&rng, 1234);
    for (int64_t i = 0; i < n * numel; i++) x[i] = gf_rng_normal(&rng);
    for (int64_t i = 0; i < n; i++) {
        double best = -1e30;
        y[i] = 0;
        for (int j = 0; j < k; j++) {
            double s = 0;
            for (int64_t f = 0; f < numel; f++) s += x[i * numel + f] * (((f * 7 + j * 13) % 5) - 2.0);
            if (s > best) {
                best = s;
                y[i] = j;
            }
        }
    }
    if (nan_at >= 0) x[nan_at * numel] = NAN;
    if (flip_label >= 0 && flip_label < n) y[flip_label] = (y[flip_label] + 1) % k;
    return test_ds_take(ctx, "synthetic", 3, shape, n, x, y, NULL, k);
}

/* ---- the loader's shares (every mode) -------------------------------------------------------- */

static gf_loader *loader(gf_ctx *ctx, gf_ds *ds, int64_t batch, int rank, int count,
                         const gf_tf *tf, bool prefetch) {
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = batch;
    lp.seed = 5;
    lp.prefetch = prefetch;
    lp.transform = tf;
    lp.shard_rank = rank;
    lp.shard_count = count;
    return gf_loader_new(ctx, ds, &lp);
}

/* The shares of k ranks put together are the whole batch, in order, sizes as documented. */
static void test_shares(gf_ctx *ctx) {
    gf_ds *ds = make_ds(ctx, 200, 1, 6, 6, 3, -1);
    gf_tf *tf = gf_tf_new(ctx);
    CHECK(ds && tf && gf_tf_random_crop(ctx, tf, 6, 6, 1) == GF_OK &&
          gf_tf_hflip(ctx, tf, 0.5f) == GF_OK);
    for (int k = 1; k <= 3; k++) {
        gf_loader *whole = loader(ctx, ds, 64, 0, 0, tf, false);
        CHECK(whole != NULL);
        gf_loader *part[3];
        for (int r = 0; r < k; r++) part[r] = loader(ctx, ds, 64, r, k, tf, r == 1);
        gf_batch wb, pb;
        int64_t batches = 0;
        while (gf_loader_next(ctx, whole, &wb)) {
            int64_t at = 0;
            for (int r = 0; r < k; r++) {
                CHECK(part[r] && gf_loader_next(ctx, part[r], &pb));
                CHECK(pb.global_n == wb.n && pb.offset == at && pb.index == wb.index);
                const int64_t want = wb.n / k + (r < wb.n % k ? 1 : 0);
                CHECK(pb.n == want);
                CHECK(memcmp(pb.idx, wb.idx + at, (size_t)pb.n * sizeof *pb.idx) == 0);
                const int64_t row = 36;
                CHECK(memcmp(gf_f32(pb.x), gf_f32(wb.x) + at * row,
                             (size_t)(pb.n * row) * sizeof(float)) == 0); /* same augmentation */
                at += pb.n;
            }
            CHECK(at == wb.n);
            batches++;
        }
        CHECK(batches == 4);
        for (int r = 0; r < k; r++) {
            CHECK(!gf_loader_next(ctx, part[r], &pb)); /* the epoch ends together */
            gf_loader_free(part[r]);
        }
        gf_loader_free(whole);
    }
    /* 64 of 3 ranks: 22, 21, 21; a batch of 2 leaves the third rank an empty share */
    gf_ds *small = make_ds(ctx, 66, 1, 6, 6, 3, -1);
    gf_loader *l2 = loader(ctx, small, 64, 2, 3, NULL, true);
    gf_batch b;
    CHECK(l2 && gf_loader_next(ctx, l2, &b) && b.n == 21 && b.offset == 43);
    CHECK(l2 && gf_loader_next(ctx, l2, &b) && b.n == 0 && b.global_n == 2 && b.x->shape[0] == 0);
    int64_t idx[64], cnt = -1;
    CHECK(l2 && gf_loader_indices(ctx, l2, 0, 0, idx, &cnt) == GF_OK && cnt == 21);
    EXPECT_ERR(ctx, loader(ctx, small, 64, 3, 3, NULL, false), GF_ERR_INVALID, "share 3 of 3");
    gf_ctx_clear_error(ctx);
    gf_loader_free(l2);
    gf_tf_free(tf);
    gf_ds_free(small);
    gf_ds_free(ds);
}

/* ---- training: N ranks against one process -------------------------------------------------- */

typedef struct run_cfg {
    const char *name, *model;
    int c, h, w, k;
    int64_t n, batch, nan_at;
    int epochs, accum;
    gf_optim_kind optim;
    double lr, clip;
    bool freeze_first, augment;
    bool sync_bn; /* synchronised BatchNorm across the ranks */
    bool after_backward; /* the exchange starts after the backward (no overlap) */
} run_cfg;

/* Trains a fresh model initialised from init_seed; with d, as one of its ranks (rank 0's
 * initial weights, this rank's shares, the gradient exchange). */
static gf_module *train(gf_ctx *ctx, const run_cfg *c, gf_dist *d, uint64_t init_seed,
                        gf_fit_result *res) {
    gf_ds *ds = make_ds(ctx, c->n, c->c, c->h, c->w, c->k, c->nan_at);
    gf_zoo_params zp = gf_zoo_default_params();
    zp.in_channels = c->c;
    zp.height = c->h;
    zp.width = c->w;
    zp.num_classes = c->k;
    zp.hidden[0] = 16;
    zp.hidden[1] = 8;
    gf_rng rng;
    gf_rng_seed(&rng, init_seed);
    gf_module *m = gf_zoo_build(ctx, c->model, &zp, &rng);
    if (m && c->freeze_first) {
        gf_named_tensors *l = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
        for (int i = 0; l && i < l->n; i++)
            if (strncmp(l->items[i].name, "layers.0.", 9) == 0)
                gf_tensor_set_requires_grad(l->items[i].tensor, false);
        gf_named_tensors_free(l);
    }
    if (m && d) CHECK(gf_dist_broadcast_module(ctx, d, m) == GF_OK);
    gf_optim_params hp = gf_optim_default_params(c->optim);
    hp.lr = c->lr;
    if (c->optim == GF_OPTIM_SGD) hp.momentum = 0.9;
    gf_optim *opt = m ? gf_train_optim_new(ctx, m, &hp, NULL, 0) : NULL;
    gf_tf *tf = c->augment ? gf_tf_new(ctx) : NULL;
    if (tf) gf_tf_hflip(ctx, tf, 0.5f);
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = c->batch;
    lp.seed = 11;
    lp.transform = tf;
    gf_dist_shard_loader(d, &lp);
    gf_loader *ld = ds ? gf_loader_new(ctx, ds, &lp) : NULL;
    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = c->epochs;
    fp.accum_steps = c->accum;
    fp.clip_norm = c->clip;
    fp.on_nonfinite = GF_NONFINITE_SKIP;
    gf_dist_fit_params(d, &fp);
    if (c->after_backward) fp.grad_begin = NULL;
    if (d) gf_dist_sync_batch_norm(d, ctx, c->sync_bn);
    CHECK(opt && ld && gf_fit(ctx, m, NULL, opt, NULL, ld, NULL, &fp, res) == GF_OK);
    gf_dist_sync_batch_norm(d, ctx, false);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "rank %d: %s\n", R, gf_ctx_error(ctx));
    gf_loader_free(ld);
    gf_tf_free(tf);
    gf_optim_free(opt);
    gf_ds_free(ds);
    return m;
}

/* The largest difference between two models' tensors, relative to the largest value. */
static double max_diff(gf_ctx *ctx, const gf_module *a, const gf_module *b) {
    gf_named_tensors *la = gf_module_named_tensors(ctx, a, GF_STATE_ALL);
    gf_named_tensors *lb = gf_module_named_tensors(ctx, b, GF_STATE_ALL);
    double diff = la && lb && la->n == lb->n ? 0.0 : INFINITY, big = 1.0;
    for (int i = 0; diff < INFINITY && i < la->n; i++) {
        const gf_tensor *x = la->items[i].tensor, *y = lb->items[i].tensor;
        if (x->dtype != GF_F32) continue;
        for (int64_t j = 0; j < x->numel; j++) {
            double dx = fabs((double)gf_f32(x)[j] - (double)gf_f32(y)[j]);
            if (!(dx <= diff)) diff = dx; /* NaN too */
            if (fabs(gf_f32(x)[j]) > big) big = fabs(gf_f32(x)[j]);
        }
    }
    gf_named_tensors_free(la);
    gf_named_tensors_free(lb);
    return diff / big;
}

static double check_equivalent(gf_ctx *ctx, const run_cfg *c, double tol) {
    gf_fit_result rr, rd;
    gf_module *ref = train(ctx, c, NULL, 42, &rr);
    /* every rank starts from other random weights: rank 0's must reach them all */
    gf_module *dm = train(ctx, c, D, 42 + 1000u * (unsigned)R, &rd);
    const double diff = ref && dm ? max_diff(ctx, ref, dm) : INFINITY;
    uint64_t h = 0;
    CHECK(dm && gf_dist_same_weights(ctx, D, dm, &h) == GF_OK);
    CHECK(diff <= tol);
    CHECK(rd.steps == rr.steps && rd.skipped == rr.skipped);
    CHECK_NEAR(rd.last.train_loss, rr.last.train_loss, 1e-4);
    CHECK_NEAR(rd.last.train_acc, rr.last.train_acc, 1e-9);
    if (R == 0 || diff > tol)
        printf("rank %d/%d %-26s steps %lld skipped %lld, max |w - w1| / max|w| = %.3g (tol %g), "
               "weights %016llx\n", R, N, c->name, (long long)rd.steps, (long long)rd.skipped,
               diff, tol, (unsigned long long)h);
    gf_module_free(ref);
    gf_module_free(dm);
    gf_ctx_clear_error(ctx);
    return diff;
}

/* A model with BatchNorm: with synchronised statistics N ranks train what one process does
 * (running statistics included); with each rank's own statistics they do not. */
static void test_sync_batch_norm(gf_ctx *ctx) {
    run_cfg bn = {"resnet-mini, sync-bn", "resnet-mini", 3, 8, 8, 3, 96, 32, -1, 2, 1,
                  GF_OPTIM_SGD, 0.05, 0, false, false, true, false};
    check_equivalent(ctx, &bn, 1e-5); /* SGD: Adam turns rounding on near-zero gradients into
                                       * whole steps (1.6e-3 after 6 steps here) */
    if (N < 2) return;
    run_cfg local = bn;
    local.name = "resnet-mini, per-rank bn";
    local.sync_bn = false;
    gf_fit_result rr, rd;
    gf_module *ref = train(ctx, &local, NULL, 42, &rr);
    gf_module *dm = train(ctx, &local, D, 42 + 1000u * (unsigned)R, &rd);
    const double diff = ref && dm ? max_diff(ctx, ref, dm) : 0.0;
    CHECK(diff > 1e-3); /* the check above would catch statistics that stayed per rank */
    if (R == 0) printf("rank %d/%d %-26s max |w - w1| / max|w| = %.3g (differs, as it should)\n",
                       R, N, local.name, diff);
    gf_module_free(ref);
    gf_module_free(dm);
    gf_ctx_clear_error(ctx);
}

static void test_training(gf_ctx *ctx) {
    /* 194 examples in batches of 64: 64, 64, 64, 2 (with 3 ranks: 22/21/21 and 1/1/0) */
    run_cfg mlp = {"mlp adam", "mlp", 1, 4, 5, 4, 194, 64, -1, 2, 1, GF_OPTIM_ADAM, 1e-2, 0,
                   false, false, false, false};
    check_equivalent(ctx, &mlp, 1e-5);
    run_cfg nan = mlp;
    nan.name = "mlp sgd, one nan example";
    nan.optim = GF_OPTIM_SGD;
    nan.lr = 0.05;
    nan.nan_at = 77;
    check_equivalent(ctx, &nan, 1e-5);
    run_cfg ft = mlp;
    ft.name = "frozen layer, accum, clip";
    ft.freeze_first = true;
    ft.accum = 2;
    ft.clip = 0.5;
    ft.batch = 32;
    check_equivalent(ctx, &ft, 1e-5);
    run_cfg cnn = {"cnn-small, hflip", "cnn-small", 1, 8, 8, 3, 96, 32, -1, 1, 1, GF_OPTIM_ADAM,
                   1e-3, 0, false, true, false, false};
    check_equivalent(ctx, &cnn, 5e-5); /* Adam turns rounding into larger steps */
}

/* Starting the buckets during the backward changes when they are summed, not what: the same
 * weights bit for bit as summing them all after it. */
static void test_overlap(gf_ctx *ctx) {
    if (N < 2) return;
    run_cfg cnn = {"cnn-small, overlap", "cnn-small", 1, 8, 8, 3, 96, 32, -1, 1, 2,
                   GF_OPTIM_ADAM, 1e-3, 0, false, false, false, false};
    gf_fit_result r1, r2;
    const gf_dist_stats s0 = gf_dist_get_stats(D);
    gf_module *a = train(ctx, &cnn, D, 5, &r1);
    const gf_dist_stats s1 = gf_dist_get_stats(D);
    cnn.after_backward = true;
    gf_module *b = train(ctx, &cnn, D, 5, &r2);
    const gf_dist_stats s2 = gf_dist_get_stats(D);
    CHECK(a && b && max_diff(ctx, a, b) == 0.0);
    /* with overlap every bucket of a group's last backward starts in it (the 4 KiB buckets
     * of cnn-small's gradient: many); without, none does */
    const int64_t early = s1.buckets_early - s0.buckets_early;
    CHECK(early > 0 && early == s1.buckets - s0.buckets);
    CHECK(s2.buckets_early == s1.buckets_early && s2.buckets > s1.buckets);
    if (R == 0)
        printf("rank %d/%d %-26s %lld of %lld buckets started during the backward; the same "
               "weights without overlap\n", R, N, "cnn-small, overlap", (long long)early,
               (long long)(s1.buckets - s0.buckets));
    gf_module_free(a);
    gf_module_free(b);
    gf_ctx_clear_error(ctx);
}

/* A hand-written loop: the loss weighted by share / batch, the exchange in gf_step_params. */
static void test_train_step(gf_ctx *ctx) {
    gf_ds *ds = make_ds(ctx, 64, 1, 4, 5, 4, -1);
    float w[2][4 * 20];
    for (int pass = 0; pass < 2; pass++) {
        gf_dist *d = pass ? D : NULL;
        gf_rng rng;
        gf_rng_seed(&rng, 3);
        gf_module *m = gf_nn_sequential(ctx);
        gf_module_append(ctx, m, gf_nn_flatten(ctx, 1, -1));
        gf_module_append(ctx, m, gf_nn_linear(ctx, &rng, 20, 4, false));
        gf_optim_params hp = gf_optim_default_params(GF_OPTIM_SGD);
        hp.lr = 0.1;
        gf_optim *opt = gf_train_optim_new(ctx, m, &hp, NULL, 0);
        gf_loader_params lp = gf_loader_default_params();
        lp.batch_size = 16;
        gf_dist_shard_loader(d, &lp);
        gf_loader *ld = gf_loader_new(ctx, ds, &lp);
        gf_step_params sp = {.clip_norm = 0.0};
        gf_dist_step_params(d, &sp);
        gf_batch b;
        while (opt && ld && gf_loader_next(ctx, ld, &b)) {
            gf_optim_zero_grad(opt);
            gf_tensor *y = gf_module_forward(ctx, m, b.x);
            gf_tensor *l = gf_cross_entropy(ctx, y, b.y, GF_REDUCE_MEAN, -100);
            l = gf_mul_scalar(ctx, l, (float)b.n / (float)b.global_n);
            CHECK(gf_train_step(ctx, l, &opt, 1, &sp) == GF_OK);
            if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
            gf_ctx_reset(ctx);
        }
        gf_named_tensors *l = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
        CHECK(l && l->n == 1 && l->items[0].tensor->numel == 80);
        if (l) memcpy(w[pass], gf_f32(l->items[0].tensor), sizeof w[pass]);
        gf_named_tensors_free(l);
        gf_loader_free(ld);
        gf_optim_free(opt);
        gf_module_free(m);
    }
    double diff = 0;
    for (int i = 0; i < 80; i++) diff = fmax(diff, fabs(w[0][i] - w[1][i]));
    CHECK(diff < 1e-6);
    gf_ds_free(ds);
}

/* ---- the checks around training ------------------------------------------------------------- */

static void test_checks(gf_ctx *ctx) {
    gf_dist_item same[2] = {gf_dist_item_text("command", "train"), gf_dist_item_text("batch", "64")};
    CHECK(gf_dist_check_same(ctx, D, same, 2) == GF_OK);
    gf_dist_item other[2] = {same[0], gf_dist_item_text("batch", R == N - 1 ? "32" : "64")};
    gf_status st = gf_dist_check_same(ctx, D, other, 2);
    char want[64];
    snprintf(want, sizeof want, "rank %d (pid", N - 1);
    if (N > 1)
        CHECK(st == GF_ERR_INVALID && strstr(gf_ctx_error(ctx), want) &&
              strstr(gf_ctx_error(ctx), "different batch than rank 0: 32 (rank 0: 64)"));
    else
        CHECK(st == GF_OK);
    gf_ctx_clear_error(ctx);
    /* data: one label changed on the last rank */
    gf_ds *a = make_ds(ctx, 50, 1, 2, 2, 3, -1);
    flip_label = R == N - 1 ? 7 : -1;
    gf_ds *b = make_ds(ctx, 50, 1, 2, 2, 3, -1);
    flip_label = -1;
    gf_dist_item da = gf_dist_item_dataset(ctx, "training data", a);
    gf_dist_item db = gf_dist_item_dataset(ctx, "training data", b);
    CHECK(strstr(da.text, "50 examples, labels ") != NULL);
    CHECK(gf_dist_check_same(ctx, D, &da, 1) == GF_OK);
    st = gf_dist_check_same(ctx, D, &db, 1);
    CHECK(N > 1 ? st == GF_ERR_INVALID && strstr(gf_ctx_error(ctx), "different training data")
                : st == GF_OK);
    gf_ctx_clear_error(ctx);
    gf_ds_free(a);
    gf_ds_free(b);
    /* the weights: the last rank's differ in one value */
    gf_rng rng;
    gf_rng_seed(&rng, 9);
    gf_module *m = gf_nn_linear(ctx, &rng, 3, 2, true);
    uint64_t h0 = 0, h1 = 1;
    CHECK(gf_dist_same_weights(ctx, D, m, &h0) == GF_OK);
    if (R == N - 1) {
        gf_named_tensors *l = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
        if (l) gf_f32(l->items[0].tensor)[0] += 1e-3f;
        gf_named_tensors_free(l);
    }
    st = gf_dist_same_weights(ctx, D, m, &h1);
    snprintf(want, sizeof want, "rank(s) %d differ", N - 1);
    CHECK(N > 1 ? st == GF_ERR_STATE && strstr(gf_ctx_error(ctx), want) != NULL : st == GF_OK);
    CHECK(R == N - 1 ? h1 != h0 : h1 == h0);
    gf_ctx_clear_error(ctx);
    gf_module_free(m);
    double v[2] = {R + 1.0, 1.0};
    CHECK(gf_dist_sum(ctx, D, v, 2) == GF_OK && v[0] == N * (N + 1) / 2.0 && v[1] == N);
    CHECK(gf_dist_barrier(ctx, D) == GF_OK);
}

static volatile sig_atomic_t stop_flag;

/* The last rank asks to stop after step 3: all stop after the same step. */
static bool stop_after_3(const gf_step_stats *s, void *user) {
    (void)user;
    if (R == N - 1 && s->step == 3) stop_flag = 1;
    return !gf_dist_stop_agreed(D);
}

static void test_stop(gf_ctx *ctx) {
    gf_ds *ds = make_ds(ctx, 300, 1, 4, 5, 4, -1);
    gf_rng rng;
    gf_rng_seed(&rng, 3);
    gf_module *m = gf_nn_sequential(ctx);
    gf_module_append(ctx, m, gf_nn_flatten(ctx, 1, -1));
    gf_module_append(ctx, m, gf_nn_linear(ctx, &rng, 20, 4, true));
    gf_optim *opt = gf_train_optim_new(ctx, m, NULL, NULL, 0);
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 16;
    gf_dist_shard_loader(D, &lp);
    gf_loader *ld = gf_loader_new(ctx, ds, &lp);
    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = 3;
    fp.on_step = stop_after_3;
    gf_dist_fit_params(D, &fp);
    gf_dist_watch_stop(D, &stop_flag);
    gf_fit_result res;
    CHECK(gf_fit(ctx, m, NULL, opt, NULL, ld, NULL, &fp, &res) == GF_OK);
    /* the flag travels with the next exchange: one more step with several ranks */
    CHECK(res.stopped_by_callback && res.steps == (N > 1 ? 4 : 3));
    double steps = (double)res.steps;
    CHECK(gf_dist_sum(ctx, D, &steps, 1) == GF_OK && steps == N * (double)res.steps);
    gf_dist_watch_stop(D, NULL);
    gf_loader_free(ld);
    gf_optim_free(opt);
    gf_module_free(m);
    gf_ds_free(ds);
}

int main(void) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    gf_dist_params dp = gf_dist_default_params();
    dp.bucket_bytes = 4096; /* several buckets even for these small models */
    D = gf_dist_init(ctx, &dp);
    if (!D) {
        fprintf(stderr, "test_dist: %s\n", gf_ctx_error(ctx));
        return 1;
    }
    R = gf_dist_rank(D);
    N = gf_dist_size(D);
    CHECK(N == gf_dist_launched_size() && R >= 0 && R < N);
    if (N == 1) {
        CHECK(!gf_dist_launched() || gf_dist_launched_size() == 1);
        gf_fit_params fp = gf_fit_default_params();
        gf_dist_fit_params(D, &fp);
        CHECK(fp.grad_sync == NULL); /* one process trains as it always does */
    }
    test_shares(ctx);
    test_training(ctx);
    test_sync_batch_norm(ctx);
    test_overlap(ctx);
    test_train_step(ctx);
    test_checks(ctx);
    test_stop(ctx);
    gf_dist_stats s = gf_dist_get_stats(D);
    CHECK(N == 1 || (s.exchanges > 0 && s.buckets > s.exchanges && s.bytes > 0));
    char name[32];
    snprintf(name, sizeof name, "test_dist rank %d/%d", R, N);
    int rc = test_finish(name);
    gf_dist_finalize(D);
    gf_ctx_free(ctx);
    return rc;
}
