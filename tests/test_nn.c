#define _POSIX_C_SOURCE 200809L
/* Module system (include/graft/nn.h): whole-model parity with PyTorch (state_dict names and
 * shapes in order, outputs, parameter gradients, running statistics in train and eval mode),
 * initialisation statistics, train/eval recursion, freezing and counts, containers, errors.
 *
 * To add a model: build it in tests/fixtures/gen_nn.py (dump(...)), rerun the generator with
 * /usr/bin/python3, and add a builder for the same architecture to the `models` table below. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "graft/nn.h"
#include "graft/optim.h"

/* ---- fixture reading ------------------------------------------------------------------ */

static cJSON *load_fixture(const char *file) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", src ? src : ".", file);
    return test_read_json(path);
}

static int arr_len(const cJSON *a) { return a ? cJSON_GetArraySize(a) : 0; }

static float *arr_f32(const cJSON *a, int *n) {
    int k = arr_len(a);
    float *v = malloc(sizeof(float) * (size_t)(k ? k : 1));
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) v[i++] = (float)e->valuedouble;
    if (n) *n = k;
    return v;
}

static int arr_i64(const cJSON *a, int64_t *dst, int max) {
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (i < max) dst[i++] = (int64_t)e->valuedouble;
    return i;
}

/* Compares n values of t (any dtype) with the JSON array ref; |a - r| <= atol + rtol |r|. */
static bool close_to(const char *what, const gf_tensor *t, const cJSON *ref, double atol,
                     double rtol) {
    if (!t) {
        fprintf(stderr, "%s: tensor is NULL\n", what);
        return false;
    }
    if (arr_len(ref) != t->numel) {
        fprintf(stderr, "%s: %d reference values for %lld elements\n", what, arr_len(ref),
                (long long)t->numel);
        return false;
    }
    double worst = 0;
    int64_t at = -1, i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, ref) {
        double a = t->dtype == GF_I64 ? (double)gf_get_i64(t, i) : gf_get_f32(t, i);
        double err = fabs(a - e->valuedouble) - (atol + rtol * fabs(e->valuedouble));
        if (err > worst || !(a == a)) {
            worst = err > worst ? err : 1e30;
            at = i;
        }
        i++;
    }
    if (at >= 0)
        fprintf(stderr, "%s: element %lld = %.9g, expected %.9g\n", what, (long long)at,
                t->dtype == GF_I64 ? (double)gf_get_i64(t, at) : gf_get_f32(t, at),
                cJSON_GetArrayItem(ref, (int)at)->valuedouble);
    return at < 0;
}

/* ---- the fixture models, built in graft ------------------------------------------------- */

static gf_module *build_mlp(gf_ctx *ctx, gf_rng *rng) {
    gf_module *layers[] = {gf_nn_linear(ctx, rng, 6, 8, true), gf_nn_relu(ctx),
                           gf_nn_linear(ctx, rng, 8, 8, true), gf_nn_relu(ctx),
                           gf_nn_linear(ctx, rng, 8, 3, true)};
    return gf_nn_sequential_of(ctx, 5, layers);
}

static gf_conv_params conv_p(int stride, int pad, int groups) {
    gf_conv_params p = gf_conv_default_params();
    p.stride[0] = p.stride[1] = stride;
    p.padding[0] = p.padding[1] = pad;
    p.groups = groups;
    return p;
}

static gf_module *build_cnn(gf_ctx *ctx, gf_rng *rng) {
    gf_conv_params p1 = conv_p(1, 1, 1), p2 = conv_p(1, 1, 2), p3 = conv_p(1, 1, 8);
    gf_pool_params mp = gf_pool_default_params(2);
    gf_bn_params cumulative = gf_bn_default_params();
    cumulative.momentum = -1.0f; /* torch: momentum=None */
    gf_module *features[] = {
        gf_nn_conv2d(ctx, rng, 3, 4, 3, 3, &p1, true), gf_nn_batch_norm2d(ctx, 4, NULL),
        gf_nn_relu(ctx), gf_nn_max_pool2d(ctx, &mp),
        gf_nn_conv2d(ctx, rng, 4, 8, 3, 3, &p2, true), gf_nn_batch_norm2d(ctx, 8, &cumulative),
        gf_nn_relu(ctx), gf_nn_conv2d(ctx, rng, 8, 8, 3, 3, &p3, true),
        gf_nn_adaptive_avg_pool2d(ctx, 2, 2)};
    gf_module *classifier[] = {gf_nn_flatten(ctx, 1, -1), gf_nn_linear(ctx, rng, 32, 10, true),
                               gf_nn_relu(ctx), gf_nn_dropout(ctx, 0.0f),
                               gf_nn_linear(ctx, rng, 10, 3, true)};
    gf_module *m = gf_nn_container(ctx, "SmallCNN", NULL, NULL, NULL); /* children in order */
    gf_module_add(ctx, m, "features", gf_nn_sequential_of(ctx, 9, features));
    gf_module_add(ctx, m, "classifier", gf_nn_sequential_of(ctx, 5, classifier));
    if (gf_ctx_status(ctx) != GF_OK) {
        gf_module_free(m);
        return NULL;
    }
    return m;
}

/* TinyResNet.forward: relu(bn1(conv1(x))) -> layer1 -> avgpool -> flatten -> fc */
static gf_tensor *resnet_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    static const char *const trunk[] = {"conv1", "bn1", "relu", "layer1", "avgpool"};
    for (int i = 0; i < 5; i++) x = gf_module_forward(ctx, gf_module_child(self, trunk[i]), x);
    x = x ? gf_flatten(ctx, x, 1, -1) : NULL;
    return gf_module_forward(ctx, gf_module_child(self, "fc"), x);
}

static gf_module *build_resnet(gf_ctx *ctx, gf_rng *rng) {
    gf_conv_params p = conv_p(1, 1, 1);
    gf_module *m = gf_nn_container(ctx, "TinyResNet", resnet_forward, NULL, NULL);
    gf_module_add(ctx, m, "conv1", gf_nn_conv2d(ctx, rng, 3, 4, 3, 3, &p, false));
    gf_module_add(ctx, m, "bn1", gf_nn_batch_norm2d(ctx, 4, NULL));
    gf_module_add(ctx, m, "relu", gf_nn_relu(ctx));
    gf_module *blocks[] = {gf_nn_basic_block(ctx, rng, 4, 4, 1), gf_nn_basic_block(ctx, rng, 4, 8, 2)};
    gf_module_add(ctx, m, "layer1", gf_nn_sequential_of(ctx, 2, blocks));
    gf_module_add(ctx, m, "avgpool", gf_nn_adaptive_avg_pool2d(ctx, 1, 1));
    gf_module_add(ctx, m, "fc", gf_nn_linear(ctx, rng, 8, 5, true));
    if (gf_ctx_status(ctx) != GF_OK) {
        gf_module_free(m);
        return NULL;
    }
    return m;
}

typedef gf_module *(*builder)(gf_ctx *, gf_rng *);
static const struct {
    const char *name;
    builder build;
} models[] = {{"mlp", build_mlp}, {"cnn", build_cnn}, {"resnet", build_resnet}};

/* ---- parity ------------------------------------------------------------------------------ */

/* Names (and, for the state, shapes and dtypes) of the list equal the fixture's, in order. */
static bool same_names(const char *model, const gf_named_tensors *l, const cJSON *ref,
                       bool with_shapes) {
    if (!l || l->n != arr_len(ref)) {
        fprintf(stderr, "%s: %d names, fixture has %d\n", model, l ? l->n : -1, arr_len(ref));
        return false;
    }
    for (int i = 0; i < l->n; i++) {
        const cJSON *e = cJSON_GetArrayItem(ref, i);
        const char *name = with_shapes ? cJSON_GetObjectItem(e, "name")->valuestring : e->valuestring;
        if (strcmp(name, l->items[i].name) != 0) {
            fprintf(stderr, "%s: entry %d is \"%s\", torch has \"%s\"\n", model, i,
                    l->items[i].name, name);
            return false;
        }
        if (!with_shapes) continue;
        int64_t shape[GF_MAX_DIMS];
        int nd = arr_i64(cJSON_GetObjectItem(e, "shape"), shape, GF_MAX_DIMS);
        const gf_tensor *t = l->items[i].tensor;
        bool ok = nd == t->ndim;
        for (int d = 0; ok && d < nd; d++) ok = shape[d] == t->shape[d];
        const char *dt = cJSON_GetObjectItem(e, "dtype")->valuestring;
        ok = ok && (t->dtype == GF_I64) == (strcmp(dt, "i64") == 0);
        if (!ok) {
            char a[96], b[96];
            fprintf(stderr, "%s: \"%s\" is %s %s, torch has %s %s\n", model, name,
                    gf_dtype_name(t->dtype), gf_shape_str(t, a, sizeof a), dt,
                    gf_dims_str(nd, shape, b, sizeof b));
            return false;
        }
    }
    return true;
}

static void load_state(gf_ctx *ctx, gf_module *m, const cJSON *state) {
    const cJSON *e;
    cJSON_ArrayForEach(e, state) {
        int64_t shape[GF_MAX_DIMS];
        int nd = arr_i64(cJSON_GetObjectItem(e, "shape"), shape, GF_MAX_DIMS);
        const char *name = cJSON_GetObjectItem(e, "name")->valuestring;
        const cJSON *data = cJSON_GetObjectItem(e, "data");
        if (!strcmp(cJSON_GetObjectItem(e, "dtype")->valuestring, "i64")) {
            int64_t v[64];
            arr_i64(data, v, 64);
            CHECK(gf_module_load(ctx, m, name, GF_I64, nd, shape, v) == GF_OK);
        } else {
            float *v = arr_f32(data, NULL);
            CHECK(gf_module_load(ctx, m, name, GF_F32, nd, shape, v) == GF_OK);
            free(v);
        }
    }
}

static gf_tensor *fixture_tensor(gf_ctx *ctx, const cJSON *obj) {
    int64_t shape[GF_MAX_DIMS];
    int nd = arr_i64(cJSON_GetObjectItem(obj, "shape"), shape, GF_MAX_DIMS);
    float *v = arr_f32(cJSON_GetObjectItem(obj, "data"), NULL);
    gf_tensor *t = gf_tensor_from_data(ctx, GF_F32, nd, shape, v);
    free(v);
    return t;
}

/* One forward + backward in the module's current mode; compares output and every gradient. */
static void check_pass(gf_ctx *ctx, const char *tag, gf_module *m, gf_tensor *x, gf_tensor *gout,
                       const cJSON *ref) {
    const double atol = 1e-4, rtol = 1e-4;
    gf_module_zero_grad(m);
    gf_tensor *y = gf_module_forward(ctx, m, x);
    if (!y) fprintf(stderr, "%s: forward failed: %s\n", tag, gf_ctx_error(ctx));
    char what[256];
    snprintf(what, sizeof what, "%s output", tag);
    CHECK(close_to(what, y, cJSON_GetObjectItem(ref, "out"), atol, rtol));
    CHECK(y && gf_backward_with(ctx, y, gout) == GF_OK);
    const cJSON *g;
    int n = 0;
    cJSON_ArrayForEach(g, cJSON_GetObjectItem(ref, "grads")) {
        gf_tensor *p = gf_module_tensor(ctx, m, g->string);
        snprintf(what, sizeof what, "%s grad %s", tag, g->string);
        CHECK(p && p->grad && close_to(what, p->grad, g, atol, rtol));
        n++;
    }
    CHECK(n > 0);
    gf_ctx_reset(ctx);
}

static void test_parity(const cJSON *doc) {
    const cJSON *jm;
    int tested = 0;
    cJSON_ArrayForEach(jm, cJSON_GetObjectItem(doc, "models")) {
        const char *name = cJSON_GetObjectItem(jm, "name")->valuestring;
        builder build = NULL;
        for (size_t i = 0; i < sizeof models / sizeof *models; i++)
            if (!strcmp(models[i].name, name)) build = models[i].build;
        CHECK(build != NULL);
        if (!build) continue;
        gf_ctx *ctx = gf_ctx_new(NULL);
        gf_module *m = build(ctx, NULL);
        CHECK(m != NULL);
        if (!m) {
            fprintf(stderr, "%s: build failed: %s\n", name, gf_ctx_error(ctx));
            gf_ctx_free(ctx);
            continue;
        }
        /* names, shapes and order: state_dict, named_parameters, named_buffers */
        gf_named_tensors *all = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
        gf_named_tensors *params = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
        gf_named_tensors *bufs = gf_module_named_tensors(ctx, m, GF_STATE_BUFFERS);
        CHECK(same_names(name, all, cJSON_GetObjectItem(jm, "state"), true));
        CHECK(same_names(name, params, cJSON_GetObjectItem(jm, "parameters"), false));
        CHECK(same_names(name, bufs, cJSON_GetObjectItem(jm, "buffers"), false));
        gf_named_tensors_free(all);
        gf_named_tensors_free(params);
        gf_named_tensors_free(bufs);
        CHECK(gf_module_param_count(m, false) == (int64_t)cJSON_GetObjectItem(jm, "param_count")->valuedouble);

        load_state(ctx, m, cJSON_GetObjectItem(jm, "state"));
        gf_tensor *x = fixture_tensor(ctx, cJSON_GetObjectItem(jm, "input"));
        gf_tensor *gout = fixture_tensor(ctx, cJSON_GetObjectItem(jm, "gout"));
        char tag[64];

        /* train: batch statistics, running statistics updated once */
        gf_module_train(m, true);
        snprintf(tag, sizeof tag, "%s train", name);
        const cJSON *tr = cJSON_GetObjectItem(jm, "train");
        check_pass(ctx, tag, m, x, gout, tr);
        const cJSON *b;
        cJSON_ArrayForEach(b, cJSON_GetObjectItem(tr, "buffers")) {
            char what[256];
            snprintf(what, sizeof what, "%s buffer %s", name, b->string);
            CHECK(close_to(what, gf_module_tensor(ctx, m, b->string), b, 1e-5, 1e-5));
        }
        /* eval: running statistics (as updated above), nothing moves */
        gf_module_train(m, false);
        snprintf(tag, sizeof tag, "%s eval", name);
        check_pass(ctx, tag, m, x, gout, cJSON_GetObjectItem(jm, "eval"));
        cJSON_ArrayForEach(b, cJSON_GetObjectItem(tr, "buffers")) {
            char what[256];
            snprintf(what, sizeof what, "%s buffer %s after eval", name, b->string);
            CHECK(close_to(what, gf_module_tensor(ctx, m, b->string), b, 1e-5, 1e-5));
        }
        CHECK(gf_ctx_status(ctx) == GF_OK);
        if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s: %s\n", name, gf_ctx_error(ctx));
        gf_tensor_free(x);
        gf_tensor_free(gout);
        gf_module_free(m);
        gf_ctx_free(ctx);
        tested++;
    }
    CHECK(tested == 3);
}

/* ---- initialisation ---------------------------------------------------------------------- */

static void moments(const gf_tensor *t, double *mean, double *var, double *absmax) {
    double s = 0, s2 = 0, mx = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = gf_get_f32(t, i);
        s += v;
        s2 += v * v;
        if (fabs(v) > mx) mx = fabs(v);
    }
    *mean = s / (double)t->numel;
    *var = s2 / (double)t->numel - *mean * *mean;
    *absmax = mx;
}

static void test_init(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_rng r1, r2;
    gf_rng_seed(&r1, 42);
    gf_rng_seed(&r2, 42);
    gf_module *a = gf_nn_linear(ctx, &r1, 256, 512, true);
    gf_module *b = gf_nn_linear(ctx, &r2, 256, 512, true);
    gf_tensor *w = gf_module_tensor(ctx, a, "weight"), *bias = gf_module_tensor(ctx, a, "bias");
    CHECK(w->shape[0] == 512 && w->shape[1] == 256 && bias->shape[0] == 512);
    CHECK(w->requires_grad && bias->requires_grad);
    double bound = 1.0 / 16.0, mean, var, mx;
    moments(w, &mean, &var, &mx);
    CHECK(mx <= bound && mx > 0.999 * bound);
    CHECK_NEAR(mean, 0.0, 5e-4);                    /* sd of the mean ~ 1e-4 */
    CHECK_NEAR(var / (bound * bound / 3.0), 1.0, 0.02);
    moments(bias, &mean, &var, &mx);
    CHECK(mx <= bound && mx > 0.9 * bound);
    /* same seed, same weights; the next draws differ */
    CHECK(memcmp(w->data, gf_module_tensor(ctx, b, "weight")->data, sizeof(float) * 512 * 256) == 0);
    CHECK(memcmp(bias->data, gf_module_tensor(ctx, b, "bias")->data, sizeof(float) * 512) == 0);
    gf_module *c = gf_nn_linear(ctx, &r1, 256, 512, true);
    CHECK(memcmp(w->data, gf_module_tensor(ctx, c, "weight")->data, sizeof(float) * 512 * 256) != 0);
    gf_module_free(a);
    gf_module_free(b);
    gf_module_free(c);

    /* conv fan_in = (in / groups) * kh * kw = 2 * 3 * 5 = 30 */
    gf_conv_params p = conv_p(1, 0, 4);
    gf_module *conv = gf_nn_conv2d(ctx, &r1, 8, 64, 3, 5, &p, true);
    gf_tensor *cw = gf_module_tensor(ctx, conv, "weight");
    CHECK(cw->ndim == 4 && cw->shape[0] == 64 && cw->shape[1] == 2 && cw->shape[2] == 3 &&
          cw->shape[3] == 5);
    CHECK(gf_nn_fan(cw, GF_FAN_IN) == 30 && gf_nn_fan(cw, GF_FAN_OUT) == 64 * 15);
    moments(cw, &mean, &var, &mx);
    bound = 1.0 / sqrt(30.0);
    CHECK(mx <= bound && mx > 0.99 * bound);
    CHECK_NEAR(var / (bound * bound / 3.0), 1.0, 0.06);
    moments(gf_module_tensor(ctx, conv, "bias"), &mean, &var, &mx);
    CHECK(mx <= bound);
    gf_module_free(conv);

    /* depthwise conv1d: weight [C, 1, k], fan_in = k */
    gf_conv_params p1 = conv_p(1, 1, 16);
    gf_module *dw = gf_nn_conv1d(ctx, &r1, 16, 16, 3, &p1, false);
    gf_tensor *dww = gf_module_tensor(ctx, dw, "weight");
    CHECK(dww->ndim == 3 && dww->shape[0] == 16 && dww->shape[1] == 1 && dww->shape[2] == 3);
    CHECK(gf_module_tensor(NULL, dw, "bias") == NULL);
    moments(dww, &mean, &var, &mx);
    CHECK(mx <= 1.0 / sqrt(3.0));
    gf_tensor *x = gf_rand(ctx, 3, (int64_t[]){2, 16, 9}, -1, 1);
    gf_tensor *y = gf_module_forward(ctx, dw, x);
    CHECK(y && y->ndim == 3 && y->shape[1] == 16 && y->shape[2] == 9);
    gf_module_free(dw);

    /* Embedding N(0, 1), padding row zero */
    gf_module *emb = gf_nn_embedding(ctx, &r1, 1000, 64, 3);
    gf_tensor *ew = gf_module_tensor(ctx, emb, "weight");
    moments(ew, &mean, &var, &mx);
    CHECK_NEAR(mean, 0.0, 0.02);
    CHECK_NEAR(var, 1.0, 0.03);
    float zero = 0;
    for (int j = 0; j < 64; j++) zero += fabsf(gf_f32(ew)[3 * 64 + j]);
    CHECK(zero == 0.0f);
    gf_tensor *idx = gf_tensor_from_data(ctx, GF_I64, 2, (int64_t[]){2, 2}, (int64_t[]){3, 5, 5, 0});
    gf_tensor *e = gf_module_forward(ctx, emb, idx);
    CHECK(e && e->ndim == 3 && e->shape[2] == 64 && gf_get_f32(e, 64 * 1) == gf_f32(ew)[5 * 64]);
    gf_tensor *go = gf_full(ctx, 3, (int64_t[]){2, 2, 64}, 1.0f);
    CHECK(gf_backward_with(ctx, e, go) == GF_OK);
    CHECK(gf_f32(ew->grad)[3 * 64] == 0.0f && gf_f32(ew->grad)[5 * 64] == 2.0f &&
          gf_f32(ew->grad)[0] == 1.0f);
    gf_tensor_free(idx);
    gf_module_free(emb);

    /* BatchNorm / LayerNorm defaults */
    gf_module *bn = gf_nn_batch_norm2d(ctx, 5, NULL);
    gf_tensor *nbt = gf_module_tensor(ctx, bn, "num_batches_tracked");
    CHECK(nbt && nbt->dtype == GF_I64 && nbt->ndim == 0 && gf_i64(nbt)[0] == 0);
    CHECK(gf_f32(gf_module_tensor(ctx, bn, "weight"))[4] == 1.0f);
    CHECK(gf_f32(gf_module_tensor(ctx, bn, "bias"))[4] == 0.0f);
    CHECK(gf_f32(gf_module_tensor(ctx, bn, "running_mean"))[4] == 0.0f);
    CHECK(gf_f32(gf_module_tensor(ctx, bn, "running_var"))[4] == 1.0f);
    CHECK(!gf_module_tensor(ctx, bn, "running_var")->requires_grad);
    gf_module_free(bn);
    gf_module *ln = gf_nn_layer_norm(ctx, 2, (int64_t[]){3, 4}, 1e-5f, true);
    gf_tensor *lw = gf_module_tensor(ctx, ln, "weight");
    CHECK(lw->ndim == 2 && lw->shape[1] == 4 && gf_f32(lw)[11] == 1.0f);
    CHECK(gf_f32(gf_module_tensor(ctx, ln, "bias"))[11] == 0.0f);
    x = gf_randn(ctx, 3, (int64_t[]){2, 3, 4}, 3.0f, 2.0f);
    y = gf_module_forward(ctx, ln, x);
    double s = 0;
    for (int i = 0; i < 12; i++) s += gf_get_f32(y, 12 + i);
    CHECK(y && fabs(s) < 1e-4);
    gf_module_free(ln);
    gf_ctx_reset(ctx);
    gf_ctx_free(ctx);
}

/* ---- modes, BatchNorm options, Dropout ---------------------------------------------------- */

static bool all_mode(const gf_module *m, bool training) {
    if (gf_module_is_training(m) != training) return false;
    for (int i = 0; i < gf_module_num_children(m); i++)
        if (!all_mode(gf_module_child_at(m, i, NULL), training)) return false;
    return true;
}

static void test_modes(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_module *m = build_resnet(ctx, NULL);
    CHECK(all_mode(m, true));
    gf_module_train(m, false);
    CHECK(all_mode(m, false));
    gf_module_train(gf_module_child(m, "layer1.1"), true); /* one subtree back to training */
    CHECK(gf_module_is_training(gf_module_child(m, "layer1.1.downsample.1")));
    CHECK(!gf_module_is_training(gf_module_child(m, "layer1.0.bn1")));
    CHECK(!gf_module_is_training(m));
    gf_module_train(m, true);
    CHECK(all_mode(m, true));

    /* num_batches_tracked counts training forwards only; eval changes no statistics */
    gf_tensor *x = gf_randn(ctx, 4, (int64_t[]){2, 3, 6, 6}, 0.5f, 2.0f);
    gf_module_forward(ctx, m, x);
    gf_module_forward(ctx, m, x);
    CHECK(gf_i64(gf_module_tensor(ctx, m, "layer1.1.downsample.1.num_batches_tracked"))[0] == 2);
    gf_tensor *rm = gf_module_tensor(ctx, m, "bn1.running_mean");
    float before = gf_f32(rm)[0];
    CHECK(before != 0.0f);
    gf_module_train(m, false);
    CHECK(gf_module_forward(ctx, m, x) != NULL);
    CHECK(gf_i64(gf_module_tensor(ctx, m, "bn1.num_batches_tracked"))[0] == 2);
    CHECK(gf_f32(rm)[0] == before);
    gf_module_free(m);

    /* track_running_stats = false: no buffers, batch statistics in both modes */
    gf_bn_params np = gf_bn_default_params();
    np.track_running_stats = false;
    gf_module *bn = gf_nn_batch_norm1d(ctx, 3, &np);
    gf_named_tensors *l = gf_module_named_tensors(ctx, bn, GF_STATE_ALL);
    CHECK(l->n == 2 && !strcmp(l->items[0].name, "weight") && !strcmp(l->items[1].name, "bias"));
    gf_named_tensors_free(l);
    gf_tensor *x2 = gf_randn(ctx, 2, (int64_t[]){5, 3}, 1.0f, 3.0f);
    gf_tensor *yt = gf_module_forward(ctx, bn, x2);
    gf_module_train(bn, false);
    gf_tensor *ye = gf_module_forward(ctx, bn, x2);
    bool same = yt && ye;
    for (int i = 0; same && i < 15; i++) same = gf_f32(yt)[i] == gf_f32(ye)[i];
    CHECK(same);
    gf_module_free(bn);
    /* affine = false: buffers only; 3-D input accepted by BatchNorm1d */
    np = gf_bn_default_params();
    np.affine = false;
    bn = gf_nn_batch_norm1d(ctx, 3, &np);
    CHECK(gf_module_param_count(bn, false) == 0);
    l = gf_module_named_tensors(ctx, bn, GF_STATE_ALL);
    CHECK(l->n == 3 && l->items[0].is_buffer && !strcmp(l->items[2].name, "num_batches_tracked"));
    gf_named_tensors_free(l);
    CHECK(gf_module_forward(ctx, bn, gf_randn(ctx, 3, (int64_t[]){2, 3, 4}, 0, 1)) != NULL);
    gf_module_free(bn);

    /* Dropout: training drops about p and scales by 1/(1-p); eval is the identity */
    gf_module *d = gf_nn_dropout(ctx, 0.25f);
    gf_tensor *ones = gf_full(ctx, 1, (int64_t[]){20000}, 1.0f);
    gf_tensor *y = gf_module_forward(ctx, d, ones);
    int64_t zeros = 0, scaled = 0;
    for (int64_t i = 0; i < 20000; i++) {
        float v = gf_f32(y)[i];
        zeros += v == 0.0f;
        scaled += fabsf(v - 1.0f / 0.75f) < 1e-6f;
    }
    CHECK(zeros + scaled == 20000);
    CHECK_NEAR((double)zeros / 20000.0, 0.25, 0.015);
    gf_module_train(d, false);
    y = gf_module_forward(ctx, d, ones);
    CHECK(y && gf_f32(y)[123] == 1.0f && gf_f32(y)[7] == 1.0f);
    gf_module_free(d);
    gf_ctx_reset(ctx);
    gf_ctx_free(ctx);
}

/* ---- freezing, counts, lookups, containers -------------------------------------------------- */

typedef struct {
    int freed;
    float scale;
} user_box;

static void box_free(void *p) { ((user_box *)p)->freed++; }

/* forward = scale * head(body(x)) */
static gf_tensor *scaled_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    gf_tensor *h = gf_module_forward(ctx, gf_module_child(self, "body"), x);
    h = gf_module_forward(ctx, gf_module_child(self, "head"), h);
    return h ? gf_mul_scalar(ctx, h, ((user_box *)user)->scale) : NULL;
}

static void test_params(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_module *mlp = build_mlp(ctx, NULL);
    int64_t total = 6 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3;
    CHECK(gf_module_param_count(mlp, false) == total);
    CHECK(gf_module_param_count(mlp, true) == total);
    gf_tensor *w0 = gf_module_tensor(ctx, mlp, "0.weight");
    gf_tensor_set_requires_grad(w0, false);
    CHECK(gf_module_param_count(mlp, false) == total);
    CHECK(gf_module_param_count(mlp, true) == total - 48);
    /* a frozen tensor gets no gradient; the others do */
    gf_tensor *x = gf_randn(ctx, 2, (int64_t[]){3, 6}, 0, 1);
    gf_tensor *y = gf_module_forward(ctx, mlp, x);
    CHECK(gf_backward_with(ctx, y, gf_full(ctx, 2, (int64_t[]){3, 3}, 1.0f)) == GF_OK);
    CHECK(w0->grad == NULL && gf_module_tensor(ctx, mlp, "0.bias")->grad != NULL);
    gf_module_zero_grad(mlp);
    CHECK(gf_f32(gf_module_tensor(ctx, mlp, "4.weight")->grad)[0] == 0.0f);
    gf_module_set_requires_grad(gf_module_child(mlp, "2"), false);
    CHECK(gf_module_param_count(mlp, true) == total - 48 - 72);
    CHECK(gf_module_tensor(ctx, mlp, "2.weight")->grad == NULL);
    gf_module_set_requires_grad(mlp, true);
    CHECK(gf_module_param_count(mlp, true) == total);
    CHECK(strcmp(gf_module_type(gf_module_child(mlp, "3")), "ReLU") == 0);
    gf_module_free(mlp);
    gf_ctx_reset(ctx);

    /* a named container with a user forward and user data freed with it */
    user_box box = {0, 2.0f};
    gf_module *net = gf_nn_container(ctx, "Scaled", scaled_forward, &box, box_free);
    CHECK(gf_module_add(ctx, net, "body", gf_nn_linear(ctx, NULL, 4, 5, true)) == GF_OK);
    CHECK(gf_module_add(ctx, net, "head", gf_nn_tanh(ctx)) == GF_OK);
    CHECK(gf_module_user(net) == &box);
    x = gf_randn(ctx, 2, (int64_t[]){2, 4}, 0, 1);
    y = gf_module_forward(ctx, net, x);
    gf_tensor *ref = gf_mul_scalar(ctx, gf_tanh(ctx, gf_linear(ctx, x,
                                   gf_module_tensor(ctx, net, "body.weight"),
                                   gf_module_tensor(ctx, net, "body.bias"))), 2.0f);
    CHECK(y && ref && gf_get_f32(y, 7) == gf_get_f32(ref, 7));
    /* replace the head (transfer: a new classifier), detach the body */
    CHECK(gf_module_replace(ctx, net, "head", gf_nn_linear(ctx, NULL, 5, 7, false)) == GF_OK);
    gf_named_tensors *l = gf_module_named_tensors(ctx, net, GF_STATE_PARAMS);
    CHECK(l->n == 3 && !strcmp(l->items[2].name, "head.weight"));
    gf_named_tensors_free(l);
    y = gf_module_forward(ctx, net, x);
    CHECK(y && y->shape[1] == 7);
    gf_module *body = gf_module_detach(ctx, net, "body");
    CHECK(body && gf_module_num_children(net) == 1 && gf_module_child(net, "body") == NULL);
    CHECK(gf_module_param_count(body, false) == 25);
    gf_module_free(body);
    gf_module_free(net);
    CHECK(box.freed == 1);

    /* Sequential naming and appending; activations as modules match the ops */
    gf_module *seq = gf_nn_sequential(ctx);
    gf_module *acts[] = {gf_nn_leaky_relu(ctx, 0.1f), gf_nn_elu(ctx, 1.0f),
                         gf_nn_gelu(ctx, GF_GELU_TANH), gf_nn_silu(ctx), gf_nn_sigmoid(ctx),
                         gf_nn_softplus(ctx, 2.0f, 20.0f), gf_nn_log_softmax(ctx, 1),
                         gf_nn_softmax(ctx, -1), gf_nn_identity(ctx)};
    for (int i = 0; i < 9; i++) CHECK(gf_module_append(ctx, seq, acts[i]) == GF_OK);
    const char *nm = NULL;
    CHECK(gf_module_child_at(seq, 8, &nm) && !strcmp(nm, "8"));
    x = gf_randn(ctx, 2, (int64_t[]){3, 5}, 0, 1);
    y = gf_module_forward(ctx, seq, x);
    ref = gf_leaky_relu(ctx, x, 0.1f);
    ref = gf_elu(ctx, ref, 1.0f);
    ref = gf_gelu(ctx, ref, GF_GELU_TANH);
    ref = gf_silu(ctx, ref);
    ref = gf_sigmoid(ctx, ref);
    ref = gf_softplus(ctx, ref, 2.0f, 20.0f);
    ref = gf_softmax(ctx, gf_log_softmax(ctx, ref, 1), -1);
    bool same = y && ref;
    for (int i = 0; same && i < 15; i++) same = gf_f32(y)[i] == gf_f32(ref)[i];
    CHECK(same);
    gf_module_free(seq);

    /* pooling modules */
    gf_pool_params pp = gf_pool_default_params(2);
    gf_module *pools[] = {gf_nn_avg_pool2d(ctx, &pp), gf_nn_max_pool2d(ctx, &pp),
                          gf_nn_flatten(ctx, 1, -1)};
    seq = gf_nn_sequential_of(ctx, 3, pools);
    y = gf_module_forward(ctx, seq, gf_randn(ctx, 4, (int64_t[]){2, 3, 8, 8}, 0, 1));
    CHECK(y && y->ndim == 2 && y->shape[1] == 3 * 2 * 2);
    gf_module_free(seq);
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_reset(ctx);
    gf_ctx_free(ctx);
}

/* ---- errors ------------------------------------------------------------------------------ */

/* The context failed with a message containing every one of the given strings; clears it. */
static bool failed_with(gf_ctx *ctx, const char *a, const char *b) {
    const char *msg = gf_ctx_error(ctx);
    bool ok = gf_ctx_status(ctx) != GF_OK && strstr(msg, a) && (!b || strstr(msg, b));
    if (!ok) fprintf(stderr, "unexpected error message: \"%s\" (wanted \"%s\", \"%s\")\n", msg, a,
                     b ? b : "");
    gf_ctx_clear_error(ctx);
    return ok;
}

static void test_errors(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    CHECK(gf_nn_linear(ctx, NULL, 0, 5, true) == NULL);
    CHECK(failed_with(ctx, "Linear", "in_features=0"));
    gf_conv_params p = conv_p(1, 0, 3);
    CHECK(gf_nn_conv2d(ctx, NULL, 4, 6, 3, 3, &p, true) == NULL);
    CHECK(failed_with(ctx, "in_channels must be divisible by groups", "groups=3"));
    CHECK(gf_nn_conv2d(ctx, NULL, 6, 4, 3, 3, &p, true) == NULL);
    CHECK(failed_with(ctx, "out_channels must be divisible by groups", "out_channels=4"));
    CHECK(gf_nn_conv2d(ctx, NULL, 3, 4, 0, 3, NULL, true) == NULL);
    CHECK(failed_with(ctx, "Conv2d", "kernel size must be > 0"));
    CHECK(gf_nn_conv1d(ctx, NULL, 3, 0, 3, NULL, true) == NULL);
    CHECK(failed_with(ctx, "Conv1d", "out_channels=0"));
    CHECK(gf_nn_batch_norm2d(ctx, 0, NULL) == NULL);
    CHECK(failed_with(ctx, "BatchNorm2d", "num_features=0"));
    CHECK(gf_nn_dropout(ctx, 1.5f) == NULL);
    CHECK(failed_with(ctx, "Dropout", "p=1.5"));
    CHECK(gf_nn_embedding(ctx, NULL, 10, 4, 10) == NULL);
    CHECK(failed_with(ctx, "Embedding", "padding_idx=10"));
    CHECK(gf_nn_layer_norm(ctx, 1, (int64_t[]){0}, 1e-5f, true) == NULL);
    CHECK(failed_with(ctx, "LayerNorm", "[0]"));
    CHECK(gf_nn_basic_block(ctx, NULL, 4, 4, 0) == NULL);
    CHECK(failed_with(ctx, "BasicBlock", "stride=0"));
    gf_pool_params pp = gf_pool_default_params(0);
    CHECK(gf_nn_max_pool2d(ctx, &pp) == NULL);
    CHECK(failed_with(ctx, "MaxPool2d", "kernel_size=(0, 0)"));
    /* a failed constructor inside a Sequential: NULL, first error kept, nothing leaks */
    gf_module *parts[] = {gf_nn_relu(ctx), gf_nn_linear(ctx, NULL, 3, -1, true), gf_nn_relu(ctx)};
    CHECK(gf_nn_sequential_of(ctx, 3, parts) == NULL);
    CHECK(failed_with(ctx, "Linear", "out_features=-1"));

    /* forward errors name the module path and type */
    gf_module *cnn = build_cnn(ctx, NULL);
    gf_tensor *x = gf_randn(ctx, 4, (int64_t[]){2, 5, 8, 8}, 0, 1);
    CHECK(gf_module_forward(ctx, cnn, x) == NULL);
    CHECK(failed_with(ctx, "module features.0 (Conv2d)", "[2, 5, 8, 8]"));
    gf_module *mlp = build_mlp(ctx, NULL);
    CHECK(gf_module_forward(ctx, mlp, gf_randn(ctx, 2, (int64_t[]){2, 5}, 0, 1)) == NULL);
    CHECK(failed_with(ctx, "module 0 (Linear): input [2, 5]", "in_features=6"));
    gf_module *bn = gf_nn_batch_norm2d(ctx, 3, NULL);
    CHECK(gf_module_forward(ctx, bn, gf_randn(ctx, 3, (int64_t[]){2, 3, 4}, 0, 1)) == NULL);
    CHECK(failed_with(ctx, "module (BatchNorm2d)", "expected 4D input (got 3D input)"));
    CHECK(gf_module_forward(ctx, mlp, NULL) == NULL);
    CHECK(failed_with(ctx, "input is NULL", NULL));

    /* registry errors */
    CHECK(gf_module_add(ctx, mlp, "0", gf_nn_relu(ctx)) != GF_OK);
    CHECK(failed_with(ctx, "\"0\" is already used", "Sequential"));
    CHECK(gf_module_add(ctx, mlp, "a.b", gf_nn_relu(ctx)) != GF_OK);
    CHECK(failed_with(ctx, "invalid name \"a.b\"", NULL));
    CHECK(gf_module_add(ctx, cnn, "again", gf_module_child(mlp, "1")) == GF_ERR_STATE);
    CHECK(failed_with(ctx, "already has a parent", NULL));
    CHECK(gf_module_add(ctx, gf_module_child(cnn, "features"), "loop", cnn) != GF_OK);
    CHECK(failed_with(ctx, "cycle", NULL));
    CHECK(gf_module_tensor(ctx, cnn, "features.1.running_avg") == NULL);
    CHECK(failed_with(ctx, "no parameter or buffer \"features.1.running_avg\"", "SmallCNN"));
    CHECK(gf_module_tensor(ctx, cnn, "nothing.weight") == NULL);
    CHECK(failed_with(ctx, "nothing.weight", NULL));
    float v[3] = {0};
    CHECK(gf_module_load(ctx, cnn, "features.1.weight", GF_F32, 1, (int64_t[]){3}, v) == GF_ERR_SHAPE);
    CHECK(failed_with(ctx, "size mismatch for \"features.1.weight\"", "[3]"));
    CHECK(gf_module_load(ctx, cnn, "features.1.num_batches_tracked", GF_F32, 0, NULL, v) == GF_ERR_DTYPE);
    CHECK(failed_with(ctx, "int64", NULL));
    CHECK(gf_module_replace(ctx, cnn, "classifier.9", gf_nn_relu(ctx)) != GF_OK);
    CHECK(failed_with(ctx, "no submodule \"classifier.9\"", NULL));
    CHECK(gf_module_detach(ctx, cnn, "x.y") == NULL);
    CHECK(failed_with(ctx, "no submodule \"x.y\"", NULL));
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, 1, (int64_t[]){2});
    CHECK(gf_module_add_parameter(ctx, mlp, "1", t) != GF_OK); /* name of a child; t freed */
    CHECK(failed_with(ctx, "already used", NULL));
    t = gf_tensor_new(ctx, GF_F32, 1, (int64_t[]){2});
    CHECK(gf_module_add_parameter(ctx, mlp, "scale", t) == GF_OK);
    gf_named_tensors *l = gf_module_named_tensors(ctx, mlp, GF_STATE_ALL);
    CHECK(l->n == 7 && !strcmp(l->items[0].name, "scale")); /* own tensors come first */
    gf_named_tensors_free(l);
    gf_module_free(gf_module_child(cnn, "classifier")); /* detaches from its parent first */
    CHECK(gf_module_num_children(cnn) == 1);
    gf_module_free(cnn);
    gf_module_free(mlp);
    gf_module_free(bn);
    gf_ctx_reset(ctx);
    gf_ctx_free(ctx);
}

/* ---- the example of docs/NN.md (keep the two in step) ------------------------------------ */

static int doc_example(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_rng rng;
    gf_rng_seed(&rng, 7); /* same seed => same initial weights */

    gf_conv_params c = gf_conv_default_params();
    c.padding[0] = c.padding[1] = 1;
    gf_pool_params pool = gf_pool_default_params(2);
    gf_module *features[] = {gf_nn_conv2d(ctx, &rng, 1, 8, 3, 3, &c, true),
                             gf_nn_batch_norm2d(ctx, 8, NULL), gf_nn_relu(ctx),
                             gf_nn_max_pool2d(ctx, &pool)};
    gf_module *classifier[] = {gf_nn_flatten(ctx, 1, -1), gf_nn_dropout(ctx, 0.1f),
                               gf_nn_linear(ctx, &rng, 8 * 4 * 4, 3, true)};
    gf_module *net = gf_nn_container(ctx, "Net", NULL, NULL, NULL); /* runs children in order */
    gf_module_add(ctx, net, "features", gf_nn_sequential_of(ctx, 4, features));
    gf_module_add(ctx, net, "classifier", gf_nn_sequential_of(ctx, 3, classifier));
    if (gf_ctx_status(ctx) != GF_OK) { /* one check covers every constructor above */
        fprintf(stderr, "graft: %s\n", gf_ctx_error(ctx));
        return 1;
    }

    gf_named_tensors *params = gf_module_named_tensors(ctx, net, GF_STATE_PARAMS);
    gf_tensor *list[16];
    for (int i = 0; i < params->n; i++) list[i] = params->items[i].tensor;
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAM);
    op.lr = 1e-2;
    gf_optim *opt = gf_optim_new(ctx, &op, list, params->n);
    CHECK(params->n == 6 && !strcmp(params->items[5].name, "classifier.2.bias"));
    gf_named_tensors_free(params); /* the tensors stay the module's */

    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, (int64_t[]){6, 1, 8, 8});
    gf_tensor *y = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){6},
                                       (int64_t[]){0, 1, 2, 0, 1, 2});
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = (float)((i * 7 + i / 64) % 5) - 2.0f;

    float first = 0, last = 0;
    gf_module_train(net, true); /* BatchNorm batch stats, Dropout on */
    for (int step = 0; step < 20; step++) {
        gf_optim_zero_grad(opt);
        gf_tensor *logits = gf_module_forward(ctx, net, x);
        gf_tensor *loss = gf_cross_entropy(ctx, logits, y, GF_REDUCE_MEAN, -100);
        if (!loss || gf_backward(ctx, loss) != GF_OK || gf_optim_step(ctx, opt) != GF_OK) {
            fprintf(stderr, "graft: %s\n", gf_ctx_error(ctx));
            break;
        }
        if (step == 0) first = gf_f32(loss)[0];
        last = gf_f32(loss)[0];
        gf_ctx_reset(ctx); /* frees this step's activations */
    }
    gf_module_train(net, false); /* running stats, no dropout */
    gf_tensor *eval_logits = gf_module_forward(ctx, net, x);
    CHECK(eval_logits && eval_logits->shape[0] == 6 && eval_logits->shape[1] == 3);
    CHECK(last < 0.5f * first);
    CHECK(gf_i64(gf_module_tensor(ctx, net, "features.1.num_batches_tracked"))[0] == 20);

    gf_optim_free(opt);
    gf_tensor_free(x);
    gf_tensor_free(y);
    gf_module_free(net); /* frees every child and parameter */
    gf_ctx_free(ctx);
    return 0;
}

/* ---- synchronised BatchNorm: two "processes" as two threads ------------------------------
 * Each thread runs batch_norm (training) forward and backward on its half of a batch with the
 * sum hook of gf_ctx_set_batch_norm_sync adding the two threads' values; outputs, input
 * gradients and running statistics must be those of one context on the whole batch. */
typedef struct sync_pair {
    pthread_barrier_t bar;
    double *slot[2];
} sync_pair;

typedef struct sync_rank {
    sync_pair *pair;
    int rank;
    const float *x, *g; /* this half: [H, C, S] */
    int64_t h, c, s;
    float *y, *gx, *rm, *rv, *gw;
    int failed;
} sync_rank;

static __thread int sync_rank_id;

static gf_status pair_sum(gf_ctx *ctx, double *v, int n, void *user) {
    (void)ctx;
    sync_pair *p = user;
    p->slot[sync_rank_id] = v;
    pthread_barrier_wait(&p->bar);
    double *other = p->slot[1 - sync_rank_id];
    double tmp[64];
    for (int i = 0; i < n && i < 64; i++) tmp[i] = v[i] + other[i];
    pthread_barrier_wait(&p->bar); /* both have read before either writes */
    for (int i = 0; i < n && i < 64; i++) v[i] = tmp[i];
    return n <= 64 ? GF_OK : GF_ERR_INVALID;
}

static int bn_step(gf_ctx *ctx, gf_tensor *tx, gf_tensor *w, gf_tensor *b, gf_tensor *m,
                   gf_tensor *v, gf_tensor *tg, float *y, float *gx, float *gw, float *rm,
                   float *rv, const float *x, const float *g);

/* Forward and backward of batch_norm with weight, bias and running statistics on x [n, c, s];
 * y, gx, gw get the output and gradients; rm, rv the running statistics after the update. */
static int bn_run(gf_ctx *ctx, const float *x, const float *g, int64_t n, int64_t c, int64_t s,
                  float *y, float *gx, float *gw, float *rm, float *rv) {
    int64_t xs[3] = {n, c, s}, cs[1] = {c};
    gf_tensor *tx = gf_tensor_new(ctx, GF_F32, 3, xs), *w = gf_tensor_new(ctx, GF_F32, 1, cs);
    gf_tensor *b = gf_tensor_new(ctx, GF_F32, 1, cs), *m = gf_tensor_new(ctx, GF_F32, 1, cs);
    gf_tensor *v = gf_tensor_new(ctx, GF_F32, 1, cs), *tg = gf_tensor_new(ctx, GF_F32, 3, xs);
    gf_tensor *all[6] = {tx, w, b, m, v, tg};
    int rc = bn_step(ctx, tx, w, b, m, v, tg, y, gx, gw, rm, rv, x, g);
    for (int i = 0; i < 6; i++) gf_tensor_free(all[i]);
    gf_ctx_reset(ctx);
    return rc;
}

static int bn_step(gf_ctx *ctx, gf_tensor *tx, gf_tensor *w, gf_tensor *b, gf_tensor *m,
                   gf_tensor *v, gf_tensor *tg, float *y, float *gx, float *gw, float *rm,
                   float *rv, const float *x, const float *g) {
    if (!tx || !w || !b || !m || !v || !tg) return 1;
    const int64_t n = tx->shape[0], c = tx->shape[1], s = tx->shape[2];
    memcpy(gf_f32(tx), x, sizeof(float) * (size_t)(n * c * s));
    memcpy(gf_f32(tg), g, sizeof(float) * (size_t)(n * c * s));
    for (int64_t i = 0; i < c; i++) {
        gf_f32(w)[i] = 0.5f + 0.25f * (float)i;
        gf_f32(b)[i] = 0.1f * (float)i;
        gf_f32(m)[i] = 0.0f;
        gf_f32(v)[i] = 1.0f;
    }
    gf_tensor_set_requires_grad(tx, true);
    gf_tensor_set_requires_grad(w, true);
    gf_tensor *out = gf_batch_norm(ctx, tx, w, b, m, v, true, 0.1f, 1e-5f);
    gf_tensor *loss = out ? gf_sum(ctx, gf_mul(ctx, out, tg), NULL, 0, false) : NULL;
    if (!loss || gf_backward(ctx, loss) != GF_OK) return 1;
    memcpy(y, gf_f32(out), sizeof(float) * (size_t)(n * c * s));
    memcpy(gx, gf_f32(tx->grad), sizeof(float) * (size_t)(n * c * s));
    memcpy(gw, gf_f32(w->grad), sizeof(float) * (size_t)c);
    memcpy(rm, gf_f32(m), sizeof(float) * (size_t)c);
    memcpy(rv, gf_f32(v), sizeof(float) * (size_t)c);
    return 0;
}

static void *sync_thread(void *arg) {
    sync_rank *r = arg;
    sync_rank_id = r->rank;
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    if (!ctx) { r->failed = 1; return NULL; }
    gf_ctx_set_batch_norm_sync(ctx, pair_sum, r->pair);
    r->failed = bn_run(ctx, r->x, r->g, r->h, r->c, r->s, r->y, r->gx, r->gw, r->rm, r->rv);
    if (r->failed) fprintf(stderr, "sync thread %d: %s\n", r->rank, gf_ctx_error(ctx));
    gf_ctx_free(ctx);
    return NULL;
}

static gf_status failing_sum(gf_ctx *ctx, double *v, int n, void *user) {
    (void)ctx, (void)v, (void)n, (void)user;
    return GF_ERR_IO;
}

static void test_sync_batch_norm(void) {
    enum { N = 6, C = 3, S = 5, H = N / 2, NCS = N * C * S };
    float x[NCS], g[NCS], y[NCS], gx[NCS], gw[C], rm[C], rv[C];
    float y2[NCS], gx2[NCS], gw2[2][C], rm2[2][C], rv2[2][C];
    gf_rng rng;
    gf_rng_seed(&rng, 7);
    for (int i = 0; i < NCS; i++) {
        x[i] = 3.0f * gf_rng_uniform(&rng) - 1.0f + 0.5f * (float)(i % C);
        g[i] = gf_rng_uniform(&rng) - 0.5f;
    }
    gf_ctx *ctx = gf_ctx_new(NULL);
    CHECK(ctx && !gf_ctx_batch_norm_synced(ctx));
    CHECK(ctx && bn_run(ctx, x, g, N, C, S, y, gx, gw, rm, rv) == 0);
    sync_pair pair;
    pthread_barrier_init(&pair.bar, NULL, 2);
    sync_rank r[2];
    pthread_t t[2];
    for (int k = 0; k < 2; k++) {
        r[k] = (sync_rank){&pair, k, x + k * H * C * S, g + k * H * C * S, H, C, S,
                           y2 + k * H * C * S, gx2 + k * H * C * S, rm2[k], rv2[k], gw2[k], 0};
        pthread_create(&t[k], NULL, sync_thread, &r[k]);
    }
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
    pthread_barrier_destroy(&pair.bar);
    CHECK(!r[0].failed && !r[1].failed);
    double dy = 0, dgx = 0, dst = 0, dgw = 0;
    for (int i = 0; i < NCS; i++) {
        dy = fmax(dy, fabs(y[i] - y2[i]));
        dgx = fmax(dgx, fabs(gx[i] - gx2[i]));
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < C; i++) dst = fmax(dst, fmax(fabs(rm[i] - rm2[k][i]), fabs(rv[i] - rv2[k][i])));
    for (int i = 0; i < C; i++) dgw = fmax(dgw, fabs(gw[i] - (gw2[0][i] + gw2[1][i])));
    CHECK(dy < 1e-5 && dgx < 1e-5 && dst < 1e-6 && dgw < 1e-5);
    /* the halves on their own (no hook) normalise differently: the check above can fail */
    float yl[NCS], gxl[NCS], gwl[C], rml[C], rvl[C];
    CHECK(ctx && bn_run(ctx, x, g, H, C, S, yl, gxl, gwl, rml, rvl) == 0);
    double dl = 0;
    for (int i = 0; i < H * C * S; i++) dl = fmax(dl, fabs(yl[i] - y[i]));
    CHECK(dl > 1e-3);
    /* a hook that fails stops the forward with a message */
    gf_ctx_set_batch_norm_sync(ctx, failing_sum, NULL);
    CHECK(gf_ctx_batch_norm_synced(ctx));
    EXPECT_ERR(ctx, bn_run(ctx, x, g, N, C, S, yl, gxl, gwl, rml, rvl) == 0 ? ctx : NULL, GF_ERR_IO,
               "over the processes");
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    gf_ctx_set_batch_norm_sync(ctx, NULL, NULL);
    CHECK(!gf_ctx_batch_norm_synced(ctx));
    gf_ctx_free(ctx);
}

/* Batch statistics from one pass of x and x^2 (in double) against two-pass ones computed here:
 * channels with means of 0, 50 and 1e6 (a million standard deviations, where the sums of
 * squares keep no digits of the variance and the statistics take the centred second pass). */
static void test_batch_norm_large_mean(void) {
    enum { N = 6, C = 3, S = 5, NCS = N * C * S };
    const double centre[C] = {0.0, 50.0, 1e6}, spread[C] = {1.0, 2.0, 1.0};
    float x[NCS], g[NCS], y[NCS], gx[NCS], gw[C], rm[C], rv[C];
    gf_rng rng;
    gf_rng_seed(&rng, 17);
    for (int i = 0; i < NCS; i++) {
        const int ch = (i / S) % C;
        x[i] = (float)(centre[ch] + spread[ch] * (2.0 * gf_rng_uniform(&rng) - 1.0));
        g[i] = gf_rng_uniform(&rng) - 0.5f;
    }
    gf_ctx *ctx = gf_ctx_new(NULL);
    CHECK(ctx && bn_run(ctx, x, g, N, C, S, y, gx, gw, rm, rv) == 0);
    double worst = 0.0;
    for (int ch = 0; ch < C; ch++) {
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < S; j++) mean += x[(i * C + ch) * S + j];
        mean /= N * S;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < S; j++) var += pow(x[(i * C + ch) * S + j] - mean, 2);
        /* the running variance moved by 0.1 of the unbiased one (from 1) */
        const double rv_want = 0.9 + 0.1 * var / (N * S - 1);
        worst = fmax(worst, fabs(rv[ch] - rv_want) / rv_want);
        var /= N * S;
        for (int i = 0; i < N && ch < 2; i++) /* at 1e6 the float normalisation itself rounds */
            for (int j = 0; j < S; j++) {
                const int k = (i * C + ch) * S + j;
                const double want = (x[k] - mean) / sqrt(var + 1e-5) * (0.5 + 0.25 * ch) + 0.1 * ch;
                worst = fmax(worst, fabs(y[k] - want));
            }
    }
    if (worst > 1e-5) fprintf(stderr, "batch norm, large means: worst difference %g\n", worst);
    CHECK(worst <= 1e-5);
    gf_ctx_free(ctx);
}

int main(void) {
    test_batch_norm_large_mean();
    cJSON *doc = load_fixture("nn_models.json");
    CHECK(doc != NULL);
    if (doc) test_parity(doc);
    cJSON_Delete(doc);
    test_init();
    test_modes();
    test_params();
    test_errors();
    test_sync_batch_norm();
    CHECK(doc_example() == 0);
    return test_finish("test_nn");
}
