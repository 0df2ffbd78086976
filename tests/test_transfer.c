/* Transfer primitives, part 1: freezing by pattern (frozen parameters stay bitwise unchanged under
 * AdamW while the rest train), blocks and "all but the last N", head replacement, the BatchNorm
 * policies, and SHA-256 known answers. To add a case: write a static void test_x(gf_ctx *) with
 * CHECKs and call it from main. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graft/graft.h"
#include "graft/transfer.h"

/* ---- helpers -------------------------------------------------------------------------------- */

typedef struct {
    gf_named_tensors *list;
    void **copy;
} snapshot;

static snapshot snap(gf_ctx *ctx, gf_module *m, gf_state_filter which) {
    snapshot s = {gf_module_named_tensors(ctx, m, which), NULL};
    s.copy = calloc((size_t)s.list->n, sizeof *s.copy);
    for (int i = 0; i < s.list->n; i++) {
        const gf_tensor *t = s.list->items[i].tensor;
        s.copy[i] = malloc((size_t)t->numel * gf_dtype_size(t->dtype) + 1);
        gf_copy_out(t, s.copy[i]);
    }
    return s;
}

static bool unchanged(const snapshot *s, int i) {
    const gf_tensor *t = s->list->items[i].tensor;
    return memcmp(s->copy[i], t->data, (size_t)t->numel * gf_dtype_size(t->dtype)) == 0;
}

static void snap_free(snapshot *s) {
    for (int i = 0; i < s->list->n; i++) free(s->copy[i]);
    free(s->copy);
    gf_named_tensors_free(s->list);
}

static gf_module *cnn_small(gf_ctx *ctx, uint64_t seed) {
    gf_zoo_params p = gf_zoo_default_params();
    p.height = p.width = 12;
    p.num_classes = 5;
    gf_rng r;
    gf_rng_seed(&r, seed);
    return gf_zoo_build(ctx, "cnn-small", &p, &r);
}

static gf_module *resnet_mini(gf_ctx *ctx, uint64_t seed) {
    gf_zoo_params p = gf_zoo_default_params();
    p.height = p.width = 8;
    p.num_classes = 5;
    gf_rng r;
    gf_rng_seed(&r, seed);
    return gf_zoo_build(ctx, "resnet-mini", &p, &r);
}

/* One cross-entropy step's forward and backward on a random batch. */
static void fwd_bwd(gf_ctx *ctx, gf_module *m, int n, int hw, int classes) {
    int64_t xs[4] = {n, 1, hw, hw}, ys[1] = {n};
    gf_tensor *x = gf_randn(ctx, 4, xs, 0.0f, 1.0f);
    gf_tensor *y = gf_zeros(ctx, GF_I64, 1, ys);
    for (int i = 0; i < n; i++) gf_i64(y)[i] = i % classes;
    gf_tensor *out = gf_module_forward(ctx, m, x);
    gf_tensor *loss = gf_cross_entropy(ctx, out, y, GF_REDUCE_MEAN, -100);
    CHECK(loss != NULL);
    if (loss) CHECK(gf_backward(ctx, loss) == GF_OK);
}

static gf_optim *adamw_over(gf_ctx *ctx, gf_module *m, gf_named_tensors **params) {
    *params = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    gf_tensor **ps = malloc(sizeof *ps * (size_t)(*params)->n);
    for (int i = 0; i < (*params)->n; i++) ps[i] = (*params)->items[i].tensor;
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAMW);
    op.lr = 1e-2;
    op.weight_decay = 0.1; /* decay must not touch frozen tensors either */
    gf_optim *opt = gf_optim_new(ctx, &op, ps, (*params)->n);
    free(ps);
    return opt;
}

/* ---- freezing ------------------------------------------------------------------------------- */

static void test_freeze_adam(gf_ctx *ctx) {
    gf_module *m = cnn_small(ctx, 1);
    int64_t total = gf_module_param_count(m, false);
    CHECK(gf_transfer_freeze(ctx, m, "features.*") == 4);
    CHECK(gf_module_param_count(m, true) ==
          total - gf_module_param_count(gf_module_child(m, "features"), false));
    snapshot before = snap(ctx, m, GF_STATE_PARAMS);
    gf_named_tensors *params = NULL;
    gf_optim *opt = adamw_over(ctx, m, &params);
    CHECK(opt != NULL);
    for (int step = 0; step < 5; step++) {
        gf_optim_zero_grad(opt);
        fwd_bwd(ctx, m, 8, 12, 5);
        CHECK(gf_optim_step(ctx, opt) == GF_OK);
        gf_ctx_reset(ctx);
    }
    for (int i = 0; i < before.list->n; i++) {
        const char *name = before.list->items[i].name;
        const gf_tensor *t = before.list->items[i].tensor;
        bool frozen = strncmp(name, "features.", 9) == 0;
        CHECK(t->requires_grad == !frozen);
        if (frozen) {
            CHECK(unchanged(&before, i));               /* bitwise */
            CHECK(t->grad == NULL);                     /* no gradient buffer */
            CHECK(gf_optim_state(opt, i, "exp_avg") == NULL); /* no optimizer state */
            CHECK(gf_optim_param_steps(opt, i) == 0);
        } else {
            CHECK(!unchanged(&before, i));
            CHECK(gf_optim_param_steps(opt, i) == 5);
        }
    }
    /* unfreeze by another pattern: counts every match, frozen or not */
    CHECK(gf_transfer_unfreeze(ctx, m, "*.bias") == 4);
    CHECK(gf_module_tensor(ctx, m, "features.3.bias")->requires_grad);
    CHECK(!gf_module_tensor(ctx, m, "features.3.weight")->requires_grad);
    gf_optim_free(opt);
    gf_named_tensors_free(params);
    snap_free(&before);
    gf_module_free(m);
}

static void test_freeze_errors(gf_ctx *ctx) {
    gf_module *m = cnn_small(ctx, 2);
    gf_ctx_clear_error(ctx);
    CHECK(gf_transfer_freeze(ctx, m, "feature.*") == -1);
    CHECK(gf_ctx_status(ctx) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "\"feature.*\"") != NULL);
    CHECK(strstr(gf_ctx_error(ctx), "features.0.weight") != NULL);
    CHECK(strstr(gf_ctx_error(ctx), "8 in all") != NULL);
    gf_ctx_clear_error(ctx);
    CHECK(gf_transfer_unfreeze(ctx, m, "features.0.running_mean") == -1); /* buffers never match */
    gf_ctx_clear_error(ctx);
    CHECK(gf_transfer_freeze(ctx, m, NULL) == -1);
    gf_ctx_clear_error(ctx);
    CHECK(gf_transfer_freeze(ctx, NULL, "*") == -1);
    gf_ctx_clear_error(ctx);
    CHECK(gf_module_param_count(m, true) == gf_module_param_count(m, false)); /* nothing changed */
    gf_module_free(m);
}

static bool blocks_are(gf_ctx *ctx, gf_module *m, const char *const *want, int n) {
    gf_transfer_blocks *b = gf_transfer_blocks_of(ctx, m);
    bool ok = b && b->n == n;
    for (int i = 0; ok && i < n; i++) ok = strcmp(b->path[i], want[i]) == 0;
    if (!ok && b) {
        fprintf(stderr, "blocks:");
        for (int i = 0; i < b->n; i++) fprintf(stderr, " %s", b->path[i]);
        fprintf(stderr, "\n");
    }
    gf_transfer_blocks_free(b);
    return ok;
}

static void test_blocks(gf_ctx *ctx) {
    gf_module *r = resnet_mini(ctx, 3);
    static const char *const rb[] = {"conv1", "bn1", "layer1.0", "layer1.1", "layer2.0",
                                     "layer2.1", "layer3.0", "layer3.1", "fc"};
    CHECK(blocks_are(ctx, r, rb, 9));
    /* all but the last 2: layer3.1 and fc train */
    int frozen = gf_transfer_freeze_all_but(ctx, r, 2);
    gf_named_tensors *l = gf_module_named_tensors(ctx, r, GF_STATE_PARAMS);
    int want_frozen = 0;
    bool ok = true;
    for (int i = 0; i < l->n; i++) {
        bool train = strncmp(l->items[i].name, "layer3.1.", 9) == 0 || strncmp(l->items[i].name, "fc.", 3) == 0;
        want_frozen += !train;
        ok = ok && l->items[i].tensor->requires_grad == train;
    }
    CHECK(ok);
    CHECK(frozen == want_frozen);
    gf_named_tensors_free(l);
    CHECK(gf_transfer_freeze_all_but(ctx, r, 100) == 0);
    CHECK(gf_module_param_count(r, true) == gf_module_param_count(r, false));
    CHECK(gf_transfer_freeze_all_but(ctx, r, 0) > 0 && gf_module_param_count(r, true) == 0);
    gf_ctx_clear_error(ctx);
    CHECK(gf_transfer_freeze_all_but(ctx, r, -1) == -1 && gf_ctx_status(ctx) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    gf_module_free(r);

    gf_module *c = cnn_small(ctx, 3);
    static const char *const cb[] = {"features.0", "features.3", "classifier.1", "classifier.3"};
    CHECK(blocks_are(ctx, c, cb, 4));
    gf_module_free(c);
    gf_zoo_params p = gf_zoo_default_params();
    gf_module *mlp = gf_zoo_build(ctx, "mlp", &p, NULL);
    static const char *const mb[] = {"layers.0", "layers.2", "head"};
    CHECK(blocks_are(ctx, mlp, mb, 3));
    gf_module_free(mlp);
    gf_module *lenet = gf_zoo_build(ctx, "lenet", &p, NULL);
    static const char *const lb[] = {"features.0", "features.3", "classifier.1", "classifier.3",
                                     "classifier.5"};
    CHECK(blocks_are(ctx, lenet, lb, 5));
    gf_module_free(lenet);
}

/* ---- the head --------------------------------------------------------------------------------- */

static void test_head(gf_ctx *ctx) {
    /* the default head is the zoo's head for every built-in model */
    for (const char *const *nm = gf_zoo_names(); *nm; nm++) {
        gf_zoo_params p = gf_zoo_default_params();
        gf_module *m = gf_zoo_build(ctx, *nm, &p, NULL);
        char buf[128];
        const char *h = gf_transfer_default_head(ctx, m, buf, sizeof buf);
        CHECK(h && strcmp(h, gf_zoo_head(*nm)) == 0);
        gf_module_free(m);
    }

    gf_module *m = cnn_small(ctx, 4);
    gf_named_tensors *before = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    int n_before = before->n;
    char **names = malloc(sizeof *names * (size_t)n_before);
    for (int i = 0; i < n_before; i++) names[i] = strdup(before->items[i].name);
    gf_named_tensors_free(before);
    float old_w0 = gf_f32(gf_module_tensor(ctx, m, "classifier.3.weight"))[0];
    CHECK(gf_transfer_freeze(ctx, m, "*") == 8);
    gf_module_train(m, false);

    gf_rng r1, r2;
    gf_rng_seed(&r1, 77);
    gf_rng_seed(&r2, 77);
    CHECK(gf_transfer_replace_head(ctx, m, NULL, 7, &r1) == GF_OK);
    /* same names in the same order, new shape, PyTorch default init from the rng */
    gf_named_tensors *after = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    bool same = after->n == n_before;
    for (int i = 0; same && i < n_before; i++) same = strcmp(after->items[i].name, names[i]) == 0;
    CHECK(same);
    gf_named_tensors_free(after);
    gf_tensor *w = gf_module_tensor(ctx, m, "classifier.3.weight");
    gf_tensor *b = gf_module_tensor(ctx, m, "classifier.3.bias");
    CHECK(w && w->ndim == 2 && w->shape[0] == 7 && w->shape[1] == 128 && b && b->shape[0] == 7);
    CHECK(w->requires_grad && b->requires_grad); /* the new head trains; the rest stays frozen */
    CHECK(gf_module_param_count(m, true) == 7 * 128 + 7);
    CHECK(gf_f32(w)[0] != old_w0);
    gf_module *ref = gf_nn_linear(ctx, &r2, 128, 7, true);
    CHECK(memcmp(gf_module_tensor(ctx, ref, "weight")->data, w->data, sizeof(float) * 7 * 128) == 0);
    CHECK(memcmp(gf_module_tensor(ctx, ref, "bias")->data, b->data, sizeof(float) * 7) == 0);
    CHECK(!gf_module_is_training(gf_module_child(m, "classifier.3"))); /* took the old mode */
    gf_module_free(ref);
    /* the model runs with the new head */
    int64_t xs[4] = {2, 1, 12, 12};
    gf_tensor *y = gf_module_forward(ctx, m, gf_randn(ctx, 4, xs, 0, 1));
    CHECK(y && y->shape[1] == 7);
    gf_ctx_reset(ctx);

    EXPECT_ERR(ctx, (void *)(intptr_t)(gf_transfer_replace_head(ctx, m, "classifier.9", 3, NULL) == GF_OK),
               GF_ERR_INVALID, "classifier.9");
    EXPECT_ERR(ctx, (void *)(intptr_t)(gf_transfer_replace_head(ctx, m, "features.0", 3, NULL) == GF_OK),
               GF_ERR_INVALID, "features.0", "Conv2d", "not a Linear");
    EXPECT_ERR(ctx, (void *)(intptr_t)(gf_transfer_replace_head(ctx, m, NULL, 0, NULL) == GF_OK),
               GF_ERR_INVALID, "out_features");
    gf_ctx_clear_error(ctx);
    for (int i = 0; i < n_before; i++) free(names[i]);
    free(names);
    gf_module_free(m);
}

/* ---- BatchNorm policies ---------------------------------------------------------------------- */

static void test_bn_policy(gf_ctx *ctx) {
    gf_transfer_bn_policy p;
    CHECK(gf_transfer_bn_policy_parse("train-affine", &p) && p == GF_TRANSFER_BN_TRAIN_AFFINE);
    CHECK(!gf_transfer_bn_policy_parse("freeze", &p));
    CHECK(strcmp(gf_transfer_bn_policy_name(GF_TRANSFER_BN_DEFAULT), "freeze-stats") == 0);

    gf_module *m = resnet_mini(ctx, 5);
    gf_module *bn1 = gf_module_child(m, "bn1");
    /* freeze-stats: pinned to eval, affine frozen, statistics bitwise fixed in training mode */
    CHECK(gf_transfer_set_bn_policy(ctx, m, GF_TRANSFER_BN_FREEZE_STATS, NULL) == 15);
    gf_module_train(m, true);
    CHECK(gf_module_is_training(m) && !gf_module_is_training(bn1) && gf_module_eval_pinned(bn1));
    CHECK(gf_module_is_training(gf_module_child(m, "conv1")));
    CHECK(!gf_module_tensor(ctx, m, "bn1.weight")->requires_grad);
    CHECK(!gf_module_tensor(ctx, m, "layer2.0.downsample.1.bias")->requires_grad);
    snapshot bufs = snap(ctx, m, GF_STATE_BUFFERS);
    for (int i = 0; i < 3; i++) {
        fwd_bwd(ctx, m, 4, 8, 5);
        gf_ctx_reset(ctx);
    }
    bool all_same = true;
    for (int i = 0; i < bufs.list->n; i++) all_same = all_same && unchanged(&bufs, i);
    CHECK(all_same);
    CHECK(gf_module_tensor(ctx, m, "bn1.weight")->grad == NULL);

    /* train-affine: still pinned, weight and bias get gradients, statistics still fixed */
    CHECK(gf_transfer_set_bn_policy(ctx, m, GF_TRANSFER_BN_TRAIN_AFFINE, NULL) == 15);
    CHECK(gf_module_tensor(ctx, m, "bn1.weight")->requires_grad);
    gf_module_zero_grad(m);
    fwd_bwd(ctx, m, 4, 8, 5);
    gf_ctx_reset(ctx);
    gf_tensor *g = gf_module_tensor(ctx, m, "bn1.weight")->grad;
    double gsum = 0;
    for (int i = 0; g && i < 16; i++) gsum += fabs(gf_f32(g)[i]);
    CHECK(g != NULL && gsum > 0);
    all_same = true;
    for (int i = 0; i < bufs.list->n; i++) all_same = all_same && unchanged(&bufs, i);
    CHECK(all_same);

    /* train-all on layer3 only: its statistics move (also with its weights frozen), the rest not */
    CHECK(gf_transfer_freeze(ctx, m, "layer3.*") > 0);
    CHECK(gf_transfer_set_bn_policy(ctx, m, GF_TRANSFER_BN_TRAIN_ALL, "layer3.*") == 5);
    CHECK(gf_module_is_training(gf_module_child(m, "layer3.0.bn1")));
    CHECK(!gf_module_is_training(bn1));
    fwd_bwd(ctx, m, 4, 8, 5);
    gf_ctx_reset(ctx);
    for (int i = 0; i < bufs.list->n; i++) {
        bool in3 = strncmp(bufs.list->items[i].name, "layer3.", 7) == 0;
        if (in3 != !unchanged(&bufs, i)) {
            fprintf(stderr, "BN buffer %s: moved=%d\n", bufs.list->items[i].name, !unchanged(&bufs, i));
            CHECK(0);
        }
    }
    CHECK(gf_i64(gf_module_tensor(ctx, m, "layer3.1.bn2.num_batches_tracked"))[0] == 1);
    /* unpinning restores the mode asked of the layer */
    gf_module_train(m, false);
    CHECK(!gf_module_is_training(gf_module_child(m, "layer3.0.bn1")));
    gf_module_train(m, true);
    gf_module_pin_eval(bn1, false);
    CHECK(gf_module_is_training(bn1));

    gf_ctx_clear_error(ctx);
    CHECK(gf_transfer_set_bn_policy(ctx, m, GF_TRANSFER_BN_FREEZE_STATS, "layer9.*") == -1);
    CHECK(strstr(gf_ctx_error(ctx), "layer9.*") && strstr(gf_ctx_error(ctx), "bn1"));
    gf_ctx_clear_error(ctx);
    CHECK(gf_transfer_set_bn_policy(ctx, m, (gf_transfer_bn_policy)9, NULL) == -1);
    gf_ctx_clear_error(ctx);
    snap_free(&bufs);
    gf_module_free(m);

    /* a model without BatchNorm: the policy is a no-op */
    gf_module *c = cnn_small(ctx, 5);
    CHECK(gf_transfer_set_bn_policy(ctx, c, GF_TRANSFER_BN_DEFAULT, NULL) == 0);
    gf_module_free(c);
}

/* ---- SHA-256 ------------------------------------------------------------------------------------ */

/* Hashes data through a file, as delta checkpoints hash their base. */
static bool sha_is(gf_ctx *ctx, const void *data, size_t n, const char *hex) {
    char path[] = "/tmp/graft_sha_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "wb");
    if (n) fwrite(data, 1, n, f);
    fclose(f);
    char h[65] = "";
    bool ok = gf_transfer_sha256_file(ctx, path, h) == GF_OK && strcmp(h, hex) == 0;
    if (!ok) fprintf(stderr, "sha256: %s, expected %s\n", h, hex);
    unlink(path);
    return ok;
}

static void test_sha256(gf_ctx *ctx) {
    CHECK(sha_is(ctx, "", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK(sha_is(ctx, "abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *s448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(sha_is(ctx, s448, strlen(s448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    char *mil = malloc(1000000);
    memset(mil, 'a', 1000000);
    CHECK(sha_is(ctx, mil, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    char path[] = "/tmp/graft_sha_missing_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    char hex[65];
    CHECK(gf_transfer_sha256_file(ctx, path, hex) == GF_ERR_IO && strstr(gf_ctx_error(ctx), path));
    gf_ctx_clear_error(ctx);
    free(mil);
}

int main(void) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.seed = 11;
    gf_ctx *ctx = gf_ctx_new(&cp);
    test_freeze_adam(ctx);
    test_freeze_errors(ctx);
    test_blocks(ctx);
    test_head(ctx);
    test_bn_policy(ctx);
    test_sha256(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_transfer");
}
