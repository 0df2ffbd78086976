/* LoRA adapters (include/graft/lora.h): per-layer parity with PEFT's math written out in torch
 * (outputs, gradients of lora_A, lora_B and the input, merged weights), merge/unmerge/unload,
 * target selection and its errors, training only the adapters, and PEFT-layout adapter files
 * (a file written from Python loads and reproduces its output; a file graft saves is checked by
 * tests/fixtures/gen_lora.py --check; broken files are refused with clear errors).
 *
 * To add a layer case: add a spec to gen_layers() in tests/fixtures/gen_lora.py and rerun it with
 * /usr/bin/python3; test_layers() below runs every case in fixtures/lora/layers.json. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graft/graft.h"
#include "graft/lora.h"

static char src[1024];

/* ---- helpers ---------------------------------------------------------------------------- */

static cJSON *load_json(const char *rel) {
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/lora/%s", src, rel);
    char *t = test_read_text(path);
    cJSON *j = t ? cJSON_Parse(t) : NULL;
    free(t);
    if (!j) fprintf(stderr, "cannot read %s (set GRAFT_SOURCE_DIR)\n", path);
    return j;
}

static bool write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fputs(text, f);
    return fclose(f) == 0;
}

static const cJSON *item(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static int shape_of(const cJSON *a, int64_t *s) {
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) s[n++] = (int64_t)e->valuedouble;
    return n;
}

/* A persistent tensor with the JSON array's values. */
static gf_tensor *tensor_of(gf_ctx *ctx, const cJSON *data, int nd, const int64_t *shape) {
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, nd, shape);
    int64_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, data) if (i < t->numel) gf_f32(t)[i++] = (float)e->valuedouble;
    CHECK(i == t->numel && cJSON_GetArraySize(data) == t->numel);
    return t;
}

/* Loads the JSON values into the model tensor `name` (shape taken from the tensor). */
static void load_named(gf_ctx *ctx, gf_module *m, const char *name, const cJSON *data) {
    gf_tensor *t = gf_module_tensor(ctx, m, name);
    CHECK(t != NULL);
    if (!t) return;
    int64_t i = 0;
    const cJSON *e;
    float *buf = malloc(sizeof(float) * (size_t)t->numel);
    cJSON_ArrayForEach(e, data) if (i < t->numel) buf[i++] = (float)e->valuedouble;
    CHECK(i == t->numel);
    CHECK(gf_module_load(ctx, m, name, GF_F32, t->ndim, t->shape, buf) == GF_OK);
    free(buf);
}

/* Max |got - want| over n values, counting a failure when any exceeds atol + rtol |want|. */
static double compare(const char *what, const float *got, const cJSON *want, int64_t n, double atol,
                      double rtol) {
    double worst = 0;
    int64_t i = 0, bad = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, want) {
        if (i >= n) break;
        double d = fabs((double)got[i] - e->valuedouble);
        if (d > worst) worst = d;
        if (!(d <= atol + rtol * fabs(e->valuedouble))) bad++;
        i++;
    }
    CHECK(i == n && cJSON_GetArraySize(want) == n);
    if (bad) fprintf(stderr, "%s: %lld of %lld values off (worst %g)\n", what, (long long)bad, (long long)n, worst);
    CHECK(bad == 0);
    return worst;
}

static gf_tensor *tensor_named(gf_module *m, const char *name) { return gf_module_tensor(NULL, m, name); }

/* ---- per-layer parity (fixtures/lora/layers.json) ------------------------------------------- */

/* Net { block: Sequential { 0: the layer } }, so the adapted path is "block.0". */
static gf_module *layer_model(gf_ctx *ctx, const cJSON *c, gf_rng *rng) {
    int64_t in = (int64_t)item(c, "inp")->valuedouble, out = (int64_t)item(c, "out")->valuedouble;
    bool bias = cJSON_IsTrue(item(c, "bias"));
    gf_module *layer;
    if (!strcmp(item(c, "kind")->valuestring, "linear")) {
        layer = gf_nn_linear(ctx, rng, in, out, bias);
    } else {
        gf_conv_params p = gf_conv_default_params();
        int64_t k[2], s[2], pad[2], dil[2];
        shape_of(item(c, "k"), k);
        shape_of(item(c, "stride"), s);
        shape_of(item(c, "padding"), pad);
        shape_of(item(c, "dilation"), dil);
        for (int i = 0; i < 2; i++) {
            p.stride[i] = (int)s[i];
            p.padding[i] = (int)pad[i];
            p.dilation[i] = (int)dil[i];
        }
        layer = gf_nn_conv2d(ctx, rng, in, out, (int)k[0], (int)k[1], &p, bias);
    }
    gf_module *net = gf_nn_container(ctx, "Net", NULL, NULL, NULL);
    gf_module *block = gf_nn_sequential(ctx);
    gf_module_append(ctx, block, layer);
    gf_module_add(ctx, net, "block", block);
    return net;
}

static void test_layer_case(gf_ctx *ctx, const cJSON *c) {
    const char *id = item(c, "id")->valuestring;
    fprintf(stderr, "layer case %s\n", id);
    bool conv = strcmp(item(c, "kind")->valuestring, "linear") != 0;
    bool has_bias = cJSON_IsTrue(item(c, "bias"));
    int r = (int)item(c, "r")->valuedouble;
    float alpha = (float)item(c, "alpha")->valuedouble;
    gf_rng rng;
    gf_rng_seed(&rng, 11);
    gf_module *net = layer_model(ctx, c, &rng);
    CHECK(gf_ctx_status(ctx) == GF_OK);
    load_named(ctx, net, "block.0.weight", item(c, "weight"));
    if (has_bias) load_named(ctx, net, "block.0.bias", item(c, "bias_data"));

    int64_t xs[8], ys[8];
    int xnd = shape_of(item(c, "x_shape"), xs), ynd = shape_of(item(c, "y_shape"), ys);
    gf_tensor *x = tensor_of(ctx, item(c, "x"), xnd, xs);
    gf_tensor_set_requires_grad(x, true);
    gf_tensor *gout = tensor_of(ctx, item(c, "gout"), ynd, ys);

    /* the base output, before any adapter */
    gf_tensor *y0 = gf_module_forward(ctx, net, x);
    CHECK(y0 != NULL);
    float *base_y = malloc(sizeof(float) * (size_t)y0->numel);
    gf_copy_out(y0, base_y);
    int64_t ny = y0->numel;
    gf_ctx_reset(ctx);

    gf_lora_params p = gf_lora_default_params();
    const char *targets[] = {"*.0"};
    p.targets = targets;
    p.n_targets = 1;
    p.r = r;
    p.alpha = alpha;
    CHECK(gf_lora_apply(ctx, net, &p, &rng) == GF_OK);
    CHECK(gf_lora_count(net) == 1);
    gf_module *L = gf_module_child(net, "block.0");
    CHECK(gf_lora_is_layer(L));
    CHECK(!strcmp(gf_module_type(L), conv ? "lora.Conv2d" : "lora.Linear"));
    int rr;
    float aa;
    bool merged;
    CHECK(gf_lora_layer_info(L, &rr, &aa, NULL, &merged) && rr == r && aa == alpha && !merged);

    /* PEFT's names, base first; base frozen, adapters trainable */
    gf_named_tensors *nt = gf_module_named_tensors(ctx, net, GF_STATE_ALL);
    const char *want[4] = {"block.0.weight", "block.0.bias", "block.0.lora_A.weight", "block.0.lora_B.weight"};
    int k = 0;
    for (int i = 0; i < 4; i++) {
        if (i == 1 && !has_bias) continue;
        CHECK(k < nt->n && !strcmp(nt->items[k].name, want[i]));
        k++;
    }
    CHECK(nt->n == k);
    gf_named_tensors_free(nt);
    gf_tensor *W = tensor_named(net, "block.0.weight");
    gf_tensor *A = tensor_named(net, "block.0.lora_A.weight"), *B = tensor_named(net, "block.0.lora_B.weight");
    CHECK(W && A && B && !W->requires_grad && A->requires_grad && B->requires_grad);
    CHECK(gf_module_param_count(net, true) == A->numel + B->numel);
    CHECK(A->shape[0] == r && B->shape[1] == r && B->shape[0] == W->shape[0]);
    if (conv) CHECK(A->ndim == 4 && A->shape[2] == W->shape[2] && A->shape[3] == W->shape[3] &&
                    B->ndim == 4 && B->shape[2] == 1 && B->shape[3] == 1);

    /* PEFT init: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), B = 0, so a
     * fresh adapter gives exactly the base output */
    double bound = 1.0 / sqrt((double)gf_nn_fan(A, GF_FAN_IN));
    bool in_bound = true, all_zero = true, b_zero = true;
    for (int64_t i = 0; i < A->numel; i++) {
        in_bound = in_bound && fabs(gf_f32(A)[i]) <= bound;
        all_zero = all_zero && gf_f32(A)[i] == 0.0f;
    }
    for (int64_t i = 0; i < B->numel; i++) b_zero = b_zero && gf_f32(B)[i] == 0.0f;
    CHECK(in_bound && !all_zero && b_zero);
    gf_tensor *yf = gf_module_forward(ctx, net, x);
    CHECK(yf && yf->numel == ny && memcmp(gf_f32(yf), base_y, sizeof(float) * (size_t)ny) == 0);
    gf_ctx_reset(ctx);

    /* parity of the forward and of the gradients */
    load_named(ctx, net, "block.0.lora_A.weight", item(c, "lora_A"));
    load_named(ctx, net, "block.0.lora_B.weight", item(c, "lora_B"));
    gf_module_zero_grad(net);
    gf_tensor_zero_grad(x);
    gf_tensor *y = gf_module_forward(ctx, net, x);
    CHECK(y && y->ndim == ynd);
    compare("y", gf_f32(y), item(c, "y"), ny, 1e-5, 1e-5);
    CHECK(gf_backward_with(ctx, y, gout) == GF_OK);
    CHECK(W->grad == NULL); /* frozen: no gradient buffer at all */
    CHECK(A->grad && B->grad && x->grad);
    if (A->grad && B->grad && x->grad) {
        compare("grad_A", gf_f32(A->grad), item(c, "grad_A"), A->numel, 1e-4, 1e-4);
        compare("grad_B", gf_f32(B->grad), item(c, "grad_B"), B->numel, 1e-4, 1e-4);
        compare("grad_x", gf_f32(x->grad), item(c, "grad_x"), x->numel, 1e-4, 1e-4);
    }
    gf_ctx_reset(ctx);

    /* merge: the weight becomes W + scaling B A and the output stays; twice is once */
    float *w0 = malloc(sizeof(float) * (size_t)W->numel);
    memcpy(w0, gf_f32(W), sizeof(float) * (size_t)W->numel);
    CHECK(gf_lora_merge(ctx, net) == GF_OK);
    CHECK(gf_lora_layer_info(L, NULL, NULL, NULL, &merged) && merged);
    compare("merged weight", gf_f32(W), item(c, "merged_weight"), W->numel, 1e-5, 1e-5);
    CHECK(gf_lora_merge(ctx, net) == GF_OK);
    compare("merged weight (merged twice)", gf_f32(W), item(c, "merged_weight"), W->numel, 1e-5, 1e-5);
    gf_module_zero_grad(net);
    y = gf_module_forward(ctx, net, x);
    CHECK(y != NULL);
    compare("merged y", gf_f32(y), item(c, "y"), ny, 1e-4, 1e-4);
    CHECK(gf_backward_with(ctx, y, gout) == GF_OK);
    double gsum = 0;
    for (int64_t i = 0; A->grad && i < A->numel; i++) gsum += fabs(gf_f32(A->grad)[i]);
    CHECK(gsum == 0.0); /* merged: the adapter is not in the graph */
    gf_ctx_reset(ctx);

    /* unmerge restores the base weight */
    CHECK(gf_lora_unmerge(ctx, net) == GF_OK);
    double dmax = 0;
    for (int64_t i = 0; i < W->numel; i++) dmax = fmax(dmax, fabs(gf_f32(W)[i] - w0[i]));
    CHECK(dmax <= 1e-6);
    y = gf_module_forward(ctx, net, x);
    compare("unmerged y", gf_f32(y), item(c, "y"), ny, 1e-5, 1e-5);
    gf_ctx_reset(ctx);

    /* merge_and_unload: a plain layer with the merged weight, same output, same names */
    int64_t w_numel = W->numel;
    CHECK(gf_lora_unload(ctx, net, true) == GF_OK); /* W, A, B are freed with the LoRA layer */
    gf_module *plain = gf_module_child(net, "block.0");
    CHECK(gf_lora_count(net) == 0 && !strcmp(gf_module_type(plain), conv ? "Conv2d" : "Linear"));
    compare("unloaded weight", gf_f32(tensor_named(net, "block.0.weight")), item(c, "merged_weight"),
            w_numel, 1e-5, 1e-5);
    y = gf_module_forward(ctx, net, x);
    compare("unloaded y", gf_f32(y), item(c, "y"), ny, 1e-4, 1e-4);
    gf_ctx_reset(ctx);

    free(w0);
    free(base_y);
    gf_tensor_free(x);
    gf_tensor_free(gout);
    gf_module_free(net);
}

static void test_layers(gf_ctx *ctx) {
    cJSON *doc = load_json("layers.json");
    CHECK(doc != NULL);
    if (!doc) return;
    const cJSON *c;
    int n = 0;
    cJSON_ArrayForEach(c, item(doc, "cases")) {
        test_layer_case(ctx, c);
        n++;
    }
    CHECK(n >= 5);
    cJSON_Delete(doc);
}

/* ---- target selection and its errors ---------------------------------------------------------- */

/* Net { conv: Conv2d(2, 4, 3, pad 1), relu, flat, fc: Linear(100, 3) } (gen_lora.py's Net). */
static gf_module *small_net(gf_ctx *ctx, gf_rng *rng) {
    gf_conv_params p = gf_conv_default_params();
    p.padding[0] = p.padding[1] = 1;
    gf_module *net = gf_nn_container(ctx, "Net", NULL, NULL, NULL);
    gf_module_add(ctx, net, "conv", gf_nn_conv2d(ctx, rng, 2, 4, 3, 3, &p, true));
    gf_module_add(ctx, net, "relu", gf_nn_relu(ctx));
    gf_module_add(ctx, net, "flat", gf_nn_flatten(ctx, 1, -1));
    gf_module_add(ctx, net, "fc", gf_nn_linear(ctx, rng, 100, 3, true));
    return net;
}

static gf_status apply1(gf_ctx *ctx, gf_module *m, const char *target, int r, float alpha, float dropout) {
    gf_lora_params p = gf_lora_default_params();
    p.targets = &target;
    p.n_targets = 1;
    p.r = r;
    p.alpha = alpha;
    p.dropout = dropout;
    return gf_lora_apply(ctx, m, &p, NULL);
}

#define EXPECT_FAIL(ctx, call, status, ...)                                                     \
    do {                                                                                        \
        gf_ctx_clear_error(ctx);                                                                \
        CHECK((call) == (status));                                                              \
        const char *want_[] = {__VA_ARGS__};                                                    \
        for (size_t i_ = 0; i_ < sizeof want_ / sizeof *want_; i_++)                            \
            if (!strstr(gf_ctx_error(ctx), want_[i_])) {                                        \
                fprintf(stderr, "message '%s' lacks '%s'\n", gf_ctx_error(ctx), want_[i_]);     \
                CHECK(0);                                                                       \
            }                                                                                   \
        gf_ctx_clear_error(ctx);                                                                \
    } while (0)

static void test_targets(gf_ctx *ctx) {
    gf_rng rng;
    gf_rng_seed(&rng, 3);
    gf_module *net = small_net(ctx, &rng);
    CHECK(gf_ctx_status(ctx) == GF_OK);
    EXPECT_FAIL(ctx, apply1(ctx, net, "nothing*", 2, 4, 0), GF_ERR_INVALID, "nothing*", "matches no module");
    EXPECT_FAIL(ctx, apply1(ctx, net, "relu", 2, 4, 0), GF_ERR_INVALID, "\"relu\"", "ReLU", "Linear and Conv2d");
    EXPECT_FAIL(ctx, apply1(ctx, net, "*", 2, 4, 0), GF_ERR_INVALID, "relu (ReLU)");
    EXPECT_FAIL(ctx, apply1(ctx, net, "fc", 0, 4, 0), GF_ERR_INVALID, "r=0");
    EXPECT_FAIL(ctx, apply1(ctx, net, "fc", 2, -1, 0), GF_ERR_INVALID, "alpha=-1");
    EXPECT_FAIL(ctx, apply1(ctx, net, "fc", 2, 4, 1.0f), GF_ERR_INVALID, "dropout=1");
    EXPECT_FAIL(ctx, gf_lora_apply(ctx, NULL, NULL, NULL), GF_ERR_INVALID, "NULL");
    gf_lora_params none = gf_lora_default_params();
    EXPECT_FAIL(ctx, gf_lora_apply(ctx, net, &none, NULL), GF_ERR_INVALID, "no target");
    /* all or nothing: the first pattern is fine, the second fails, nothing changes */
    const char *two[] = {"fc", "flat"};
    gf_lora_params p = gf_lora_default_params();
    p.targets = two;
    p.n_targets = 2;
    gf_tensor *fc_w = tensor_named(net, "fc.weight");
    EXPECT_FAIL(ctx, gf_lora_apply(ctx, net, &p, NULL), GF_ERR_INVALID, "flat (Flatten)");
    CHECK(gf_lora_count(net) == 0 && tensor_named(net, "fc.weight") == fc_w && fc_w->requires_grad);

    /* glob: "c*" is conv only; [cf]* is both, in tree order whatever the pattern order */
    const char *globs[] = {"f[c]", "c*"};
    p.targets = globs;
    p.n_targets = 2;
    p.freeze_base = false;
    CHECK(gf_lora_apply(ctx, net, &p, NULL) == GF_OK);
    CHECK(gf_lora_count(net) == 2);
    EXPECT_FAIL(ctx, apply1(ctx, net, "fc", 2, 4, 0), GF_ERR_INVALID, "fc (lora.Linear)", "already has");
    EXPECT_FAIL(ctx, apply1(ctx, net, "fc.lora_A", 2, 4, 0), GF_ERR_INVALID, "fc.lora_A", "part of a LoRA layer");
    gf_module_free(net);

    /* unsupported layers */
    gf_conv_params g = gf_conv_default_params();
    g.groups = 2;
    gf_module *m = gf_nn_container(ctx, "M", NULL, NULL, NULL);
    gf_module_add(ctx, m, "dw", gf_nn_conv2d(ctx, &rng, 4, 4, 3, 3, &g, false));
    gf_module_add(ctx, m, "c1", gf_nn_conv1d(ctx, &rng, 4, 4, 3, NULL, false));
    CHECK(gf_ctx_status(ctx) == GF_OK);
    EXPECT_FAIL(ctx, apply1(ctx, m, "dw", 2, 4, 0), GF_ERR_INVALID, "dw (Conv2d)", "groups");
    EXPECT_FAIL(ctx, apply1(ctx, m, "c1", 2, 4, 0), GF_ERR_INVALID, "c1 (Conv1d)");
    gf_module_free(m);

    /* freeze_base: everything but the adapters is frozen; without it only the adapted layers */
    for (int fb = 0; fb < 2; fb++) {
        gf_rng_seed(&rng, 3);
        net = small_net(ctx, &rng);
        const char *t = "fc";
        p = gf_lora_default_params();
        p.targets = &t;
        p.n_targets = 1;
        p.r = 2;
        p.freeze_base = fb;
        CHECK(gf_lora_apply(ctx, net, &p, NULL) == GF_OK);
        CHECK(tensor_named(net, "conv.weight")->requires_grad == !fb);
        CHECK(!tensor_named(net, "fc.weight")->requires_grad && !tensor_named(net, "fc.bias")->requires_grad);
        CHECK(gf_module_param_count(net, true) == (fb ? 0 : 72 + 4) + 2 * 100 + 3 * 2);
        gf_module_free(net);
    }

    /* the same seed draws the same lora_A */
    float a0[200];
    for (int rep = 0; rep < 2; rep++) {
        gf_rng_seed(&rng, 5);
        net = small_net(ctx, &rng);
        gf_rng_seed(&rng, 9);
        const char *t = "fc";
        p.targets = &t;
        CHECK(gf_lora_apply(ctx, net, &p, &rng) == GF_OK);
        gf_tensor *A = tensor_named(net, "fc.lora_A.weight");
        if (rep == 0) memcpy(a0, gf_f32(A), sizeof a0);
        else CHECK(memcmp(a0, gf_f32(A), sizeof a0) == 0);
        gf_module_free(net);
    }
}

/* ---- dropout acts on the adapter input only, in training mode ---------------------------------- */

/* The targets graft adapts when none are named: every Linear and Conv2d but the head. */
static void test_default_targets(gf_ctx *ctx) {
    gf_zoo_params zp = gf_zoo_default_params();
    gf_module *cnn = gf_zoo_build(ctx, "cnn-small", &zp, NULL);
    int n = -1;
    char **t = gf_lora_default_targets(ctx, cnn, NULL, &n); /* the head: classifier.3 */
    CHECK(t && n == 3 && t[3] == NULL);
    if (t && n == 3)
        CHECK(strcmp(t[0], "features.0") == 0 && strcmp(t[1], "features.3") == 0 &&
              strcmp(t[2], "classifier.1") == 0);
    gf_lora_targets_free(t);
    t = gf_lora_default_targets(ctx, cnn, "features.0", &n);
    CHECK(t && n == 3 && strcmp(t[2], "classifier.3") == 0);
    gf_lora_params lp = gf_lora_default_params();
    lp.targets = (const char *const *)t;
    lp.n_targets = n;
    CHECK(gf_lora_apply(ctx, cnn, &lp, NULL) == GF_OK && gf_lora_count(cnn) == 3);
    gf_lora_targets_free(t);
    gf_module_free(cnn);
    gf_module *lin = gf_nn_linear(ctx, NULL, 4, 2, true); /* the head alone: nothing to adapt */
    t = gf_lora_default_targets(ctx, lin, "", &n);
    CHECK(t && n == 0 && t[0] == NULL);
    gf_lora_targets_free(t);
    gf_module_free(lin);
    gf_lora_targets_free(NULL);
}

static void test_dropout(gf_ctx *ctx) {
    gf_rng rng;
    gf_rng_seed(&rng, 2);
    gf_module *net = gf_nn_container(ctx, "Net", NULL, NULL, NULL);
    gf_module_add(ctx, net, "fc", gf_nn_linear(ctx, &rng, 32, 8, true));
    CHECK(apply1(ctx, net, "fc", 4, 4, 0.5f) == GF_OK);
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){16, 32});
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = cosf((float)i);
    float ev[128], tr[128];
    /* B = 0: the adapter adds nothing, so training mode changes nothing (the base is not dropped) */
    gf_module_train(net, false);
    gf_copy_out(gf_module_forward(ctx, net, x), ev);
    gf_module_train(net, true);
    gf_copy_out(gf_module_forward(ctx, net, x), tr);
    CHECK(memcmp(ev, tr, sizeof ev) == 0);
    gf_ctx_reset(ctx);
    /* B != 0: training mode drops adapter inputs, eval mode does not */
    gf_nn_init_constant(ctx, tensor_named(net, "fc.lora_B.weight"), 0.5f);
    gf_module_train(net, false);
    gf_copy_out(gf_module_forward(ctx, net, x), ev);
    float ev2[128];
    gf_copy_out(gf_module_forward(ctx, net, x), ev2);
    CHECK(memcmp(ev, ev2, sizeof ev) == 0);
    gf_module_train(net, true);
    gf_copy_out(gf_module_forward(ctx, net, x), tr);
    CHECK(memcmp(ev, tr, sizeof ev) != 0);
    gf_ctx_reset(ctx);
    gf_tensor_free(x);
    gf_module_free(net);
}

/* ---- training only the adapters --------------------------------------------------------------- */

static void test_training(gf_ctx *ctx) {
    gf_rng rng;
    gf_rng_seed(&rng, 21);
    gf_module *net = gf_nn_container(ctx, "Net", NULL, NULL, NULL);
    gf_module_add(ctx, net, "fc1", gf_nn_linear(ctx, &rng, 6, 16, true));
    gf_module_add(ctx, net, "norm", gf_nn_layer_norm(ctx, 1, (int64_t[]){16}, 1e-5f, true));
    gf_module_add(ctx, net, "act", gf_nn_tanh(ctx));
    gf_module_add(ctx, net, "fc2", gf_nn_linear(ctx, &rng, 16, 3, true));
    const char *t = "fc*";
    gf_lora_params p = gf_lora_default_params();
    p.targets = &t;
    p.n_targets = 1;
    p.r = 4;
    p.alpha = 8;
    p.dropout = 0.1f;
    CHECK(gf_lora_apply(ctx, net, &p, &rng) == GF_OK);

    gf_named_tensors *all = gf_module_named_tensors(ctx, net, GF_STATE_PARAMS);
    gf_tensor *train[8];
    float *before[16];
    int nt = 0;
    for (int i = 0; i < all->n; i++) {
        gf_tensor *x = all->items[i].tensor;
        before[i] = malloc(sizeof(float) * (size_t)x->numel);
        memcpy(before[i], gf_f32(x), sizeof(float) * (size_t)x->numel);
        if (x->requires_grad) train[nt++] = x;
        CHECK(x->requires_grad == (strstr(all->items[i].name, "lora_") != NULL));
    }
    CHECK(nt == 4);
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAM);
    op.lr = 0.05;
    gf_optim *opt = gf_optim_new(ctx, &op, train, nt);

    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){12, 6});
    gf_tensor *y = gf_tensor_new(ctx, GF_I64, 1, (int64_t[]){12});
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = sinf((float)i * 0.7f) * 2.0f;
    for (int64_t i = 0; i < 12; i++) gf_i64(y)[i] = (i * 5 + 1) % 3;
    float first = 0, last = 0;
    gf_module_train(net, true);
    for (int step = 0; step < 60; step++) {
        gf_optim_zero_grad(opt);
        gf_tensor *loss = gf_cross_entropy(ctx, gf_module_forward(ctx, net, x), y, GF_REDUCE_MEAN, -100);
        CHECK(loss && gf_backward(ctx, loss) == GF_OK && gf_optim_step(ctx, opt) == GF_OK);
        if (!loss) break;
        if (step == 0) first = gf_f32(loss)[0];
        last = gf_f32(loss)[0];
        gf_ctx_reset(ctx);
    }
    CHECK(last < 0.6f * first);
    for (int i = 0; i < all->n; i++) {
        gf_tensor *w = all->items[i].tensor;
        bool same = memcmp(before[i], gf_f32(w), sizeof(float) * (size_t)w->numel) == 0;
        CHECK(same == !w->requires_grad); /* frozen bitwise unchanged, adapters moved */
        if (!w->requires_grad) CHECK(w->grad == NULL);
        free(before[i]);
    }
    gf_named_tensors_free(all);
    gf_optim_free(opt);
    gf_tensor_free(x);
    gf_tensor_free(y);
    gf_module_free(net);
}

/* ---- PEFT adapter files ------------------------------------------------------------------------ */

/* The Net of gen_lora.py with base.safetensors loaded (strict) and in eval mode. */
static gf_module *fixture_net(gf_ctx *ctx) {
    gf_rng rng;
    gf_rng_seed(&rng, 1);
    gf_module *net = small_net(ctx, &rng);
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/lora/base.safetensors", src);
    gf_weights_load_options strict = {true};
    CHECK(gf_weights_load(ctx, net, path, &strict, NULL) == GF_OK);
    gf_module_train(net, false);
    return net;
}

static gf_tensor *model_input(gf_ctx *ctx, const cJSON *ref) {
    int64_t s[4];
    int nd = shape_of(item(ref, "input_shape"), s);
    return tensor_of(ctx, item(ref, "input"), nd, s);
}

static void run_python_check(const char *dir) {
    char cmd[3000];
    if (access("/usr/bin/python3", X_OK) != 0) {
        printf("PyTorch check skipped: /usr/bin/python3 not found\n");
        return;
    }
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/fixtures/gen_lora.py --check %s", src, dir);
    int rc = system(cmd);
    int code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    if (code == 77) printf("PyTorch check skipped: python3-torch is not installed\n");
    else CHECK(code == 0);
}

static void test_peft_files(gf_ctx *ctx, const char *tmp) {
    cJSON *ref = load_json("model.json");
    CHECK(ref != NULL);
    if (!ref) return;
    char adir[1200];
    snprintf(adir, sizeof adir, "%s/tests/fixtures/lora/peft_adapter", src);
    gf_tensor *x = model_input(ctx, ref);
    int64_t nout = cJSON_GetArraySize(item(ref, "output"));

    /* a PEFT file onto a plain model: layers made at conv and fc, output as in torch */
    gf_module *net = fixture_net(ctx);
    gf_tensor *y = gf_module_forward(ctx, net, x);
    compare("base output", gf_f32(y), item(ref, "base_output"), nout, 1e-5, 1e-5);
    gf_ctx_reset(ctx);
    CHECK(gf_lora_load(ctx, net, adir) == GF_OK);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    CHECK(gf_lora_count(net) == 2);
    int r;
    float alpha, dropout;
    CHECK(gf_lora_layer_info(gf_module_child(net, "conv"), &r, &alpha, &dropout, NULL));
    CHECK(r == 2 && alpha == 5.0f && dropout == 0.1f);
    CHECK(!tensor_named(net, "conv.weight")->requires_grad && tensor_named(net, "conv.lora_A.weight")->requires_grad);
    CHECK(gf_module_param_count(net, true) == 2 * 2 * 9 + 4 * 2 + 2 * 100 + 3 * 2);
    y = gf_module_forward(ctx, net, x);
    compare("adapted output", gf_f32(y), item(ref, "output"), nout, 1e-5, 1e-5);
    gf_ctx_reset(ctx);

    /* the base file still loads by name into the adapted model; only the lora keys are missing */
    char bpath[1200];
    snprintf(bpath, sizeof bpath, "%s/tests/fixtures/lora/base.safetensors", src);
    gf_weights_report *rep = NULL;
    CHECK(gf_weights_load(ctx, net, bpath, NULL, &rep) == GF_OK);
    CHECK(rep && rep->loaded == 4 && rep->missing == 4 && rep->unexpected == 0 && rep->mismatched == 0);
    gf_weights_report_free(rep);

    /* train the adapters a little (dropout on), then save them; PyTorch checks the saved file */
    gf_named_tensors *ps = gf_module_named_tensors(ctx, net, GF_STATE_PARAMS);
    gf_tensor *tr[8];
    int nt = 0;
    for (int i = 0; i < ps->n; i++)
        if (ps->items[i].tensor->requires_grad) tr[nt++] = ps->items[i].tensor;
    gf_named_tensors_free(ps);
    CHECK(nt == 4);
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_SGD);
    op.lr = 0.1;
    gf_optim *opt = gf_optim_new(ctx, &op, tr, nt);
    gf_tensor *lab = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){2}, (int64_t[]){2, 0});
    gf_module_train(net, true);
    for (int s = 0; s < 3; s++) {
        gf_optim_zero_grad(opt);
        gf_tensor *loss = gf_cross_entropy(ctx, gf_module_forward(ctx, net, x), lab, GF_REDUCE_MEAN, -100);
        CHECK(loss && gf_backward(ctx, loss) == GF_OK && gf_optim_step(ctx, opt) == GF_OK);
        gf_ctx_reset(ctx);
    }
    gf_optim_free(opt);
    gf_tensor_free(lab);
    gf_module_train(net, false);
    gf_tensor *yt = gf_module_forward(ctx, net, x);
    float trained[16];
    CHECK(yt && yt->numel == nout && nout <= 16);
    gf_copy_out(yt, trained);
    double moved = 0;
    const cJSON *e;
    int64_t i = 0;
    cJSON_ArrayForEach(e, item(ref, "output")) moved = fmax(moved, fabs(trained[i++] - e->valuedouble));
    CHECK(moved > 1e-3); /* the adapters did change */
    gf_ctx_reset(ctx);

    char sdir[1300], path[1400];
    snprintf(sdir, sizeof sdir, "%s/saved", tmp);
    CHECK(gf_lora_save(ctx, net, sdir, "graft-test-net") == GF_OK);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "output");
    for (int64_t k = 0; k < nout; k++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(trained[k]));
    char *txt = cJSON_PrintUnformatted(o);
    snprintf(path, sizeof path, "%s/graft_output.json", sdir);
    CHECK(write_text(path, txt));
    cJSON_free(txt);
    cJSON_Delete(o);
    snprintf(path, sizeof path, "%s/adapter_config.json", sdir);
    char *cfg_text = test_read_text(path);
    cJSON *cfg = cfg_text ? cJSON_Parse(cfg_text) : NULL;
    free(cfg_text);
    CHECK(cfg && !strcmp(item(cfg, "peft_type")->valuestring, "LORA") && item(cfg, "r")->valuedouble == 2 &&
          item(cfg, "lora_alpha")->valuedouble == 5 && item(cfg, "lora_dropout")->valuedouble == 0.1 &&
          !strcmp(item(cfg, "bias")->valuestring, "none") && cJSON_IsFalse(item(cfg, "fan_in_fan_out")) &&
          !strcmp(item(cfg, "base_model_name_or_path")->valuestring, "graft-test-net") &&
          cJSON_GetArraySize(item(cfg, "target_modules")) == 2);
    cJSON_Delete(cfg);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", sdir);
    gf_st_file *sf = gf_st_open(ctx, path);
    CHECK(sf && gf_st_count(sf) == 4 && gf_st_find(sf, "base_model.model.conv.lora_A.weight") &&
          gf_st_find(sf, "base_model.model.fc.lora_B.weight") && gf_st_metadata_get(sf, "format") &&
          !strcmp(gf_st_metadata_get(sf, "format"), "pt"));
    gf_st_close(sf);
    run_python_check(sdir);

    /* saved adapters load back onto a fresh base: bitwise the trained output */
    gf_module *again = fixture_net(ctx);
    CHECK(gf_lora_load(ctx, again, sdir) == GF_OK);
    y = gf_module_forward(ctx, again, x);
    CHECK(y && memcmp(gf_f32(y), trained, sizeof(float) * (size_t)nout) == 0);
    gf_ctx_reset(ctx);
    /* ... and onto a model that already has matching adapters (loaded into them) */
    CHECK(gf_lora_load(ctx, again, adir) == GF_OK && gf_lora_count(again) == 2);
    y = gf_module_forward(ctx, again, x);
    compare("reloaded output", gf_f32(y), item(ref, "output"), nout, 1e-5, 1e-5);
    gf_ctx_reset(ctx);
    /* merged layers are refused until unmerged */
    CHECK(gf_lora_merge(ctx, again) == GF_OK);
    EXPECT_FAIL(ctx, gf_lora_load(ctx, again, sdir), GF_ERR_STATE, "merged");
    y = gf_module_forward(ctx, again, x);
    compare("merged output", gf_f32(y), item(ref, "output"), nout, 1e-4, 1e-4);
    gf_ctx_reset(ctx);
    /* unload (not merged) gives back the base model */
    CHECK(gf_lora_unload(ctx, again, false) == GF_OK && gf_lora_count(again) == 0);
    y = gf_module_forward(ctx, again, x);
    compare("unloaded base output", gf_f32(y), item(ref, "base_output"), nout, 1e-5, 1e-5);
    gf_ctx_reset(ctx);
    gf_module_free(again);

    /* settings that one config cannot hold */
    gf_module *mixed = fixture_net(ctx);
    CHECK(apply1(ctx, mixed, "conv", 2, 4, 0) == GF_OK && apply1(ctx, mixed, "fc", 3, 4, 0) == GF_OK);
    EXPECT_FAIL(ctx, gf_lora_save(ctx, mixed, sdir, NULL), GF_ERR_STATE, "conv (r=2", "fc (r=3");
    gf_module_free(mixed);
    gf_module *plain = fixture_net(ctx);
    EXPECT_FAIL(ctx, gf_lora_save(ctx, plain, sdir, NULL), GF_ERR_STATE, "no LoRA layer");
    gf_module_free(plain);

    gf_tensor_free(x);
    gf_module_free(net);
    cJSON_Delete(ref);
}

/* ---- broken adapter files ------------------------------------------------------------------------ */

/* Writes dir/adapter_config.json from the fixture's config with `edit` applied. */
static void write_config(const char *dir, void (*edit)(cJSON *)) {
    cJSON *cfg = load_json("peft_adapter/adapter_config.json");
    if (edit) edit(cfg);
    char path[1400];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    char *t = cJSON_Print(cfg);
    CHECK(write_text(path, t));
    cJSON_free(t);
    cJSON_Delete(cfg);
}

/* Writes dir/adapter_model.safetensors from the fixture's tensors: drop one key, rename one. */
static void write_weights(gf_ctx *ctx, const char *dir, const char *drop, const char *extra_key) {
    char path[1400];
    snprintf(path, sizeof path, "%s/tests/fixtures/lora/peft_adapter/adapter_model.safetensors", src);
    gf_st_file *f = gf_st_open(ctx, path);
    gf_st_writer *w = gf_st_writer_new(ctx);
    gf_tensor *ts[8];
    int n = 0;
    for (int i = 0; f && i < gf_st_count(f); i++) {
        const gf_st_info *in = gf_st_get(f, i);
        ts[n] = gf_st_load(ctx, f, in);
        if (!drop || strcmp(in->name, drop)) gf_st_writer_add(w, in->name, ts[n], GF_ST_F32);
        n++;
        if (extra_key && i == 0) { /* a copy: the writer refuses overlapping tensors */
            ts[n] = gf_st_load(ctx, f, in);
            gf_st_writer_add(w, extra_key, ts[n++], GF_ST_F32);
        }
    }
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    CHECK(gf_st_writer_save(w, path) == GF_OK);
    gf_st_writer_free(w);
    for (int i = 0; i < n; i++) gf_tensor_free(ts[i]);
    gf_st_close(f);
}

static void set_ia3(cJSON *c) { cJSON_ReplaceItemInObject(c, "peft_type", cJSON_CreateString("IA3")); }
static void set_typo(cJSON *c) { cJSON_AddNumberToObject(c, "lora_alpah", 16); }
static void set_dora(cJSON *c) { cJSON_ReplaceItemInObject(c, "use_dora", cJSON_CreateTrue()); }
static void set_r3(cJSON *c) { cJSON_ReplaceItemInObject(c, "r", cJSON_CreateNumber(3)); }
static void set_bias_all(cJSON *c) { cJSON_ReplaceItemInObject(c, "bias", cJSON_CreateString("all")); }
static void no_r(cJSON *c) { cJSON_DeleteItemFromObject(c, "r"); }
static void conv_only(cJSON *c) {
    const char *t[] = {"conv"};
    cJSON_ReplaceItemInObject(c, "target_modules", cJSON_CreateStringArray(t, 1));
}
static void regex_both(cJSON *c) { cJSON_ReplaceItemInObject(c, "target_modules", cJSON_CreateString("(conv|fc)")); }
static void regex_c(cJSON *c) { cJSON_ReplaceItemInObject(c, "target_modules", cJSON_CreateString("c.*")); }
static void suffix_style(cJSON *c) {
    const char *t[] = {"q_proj", "fc", "conv"};
    cJSON_ReplaceItemInObject(c, "target_modules", cJSON_CreateStringArray(t, 3));
}

/* A failed load leaves the model exactly as it was: no LoRA layer, base trainable as before. */
static void expect_untouched(gf_module *net, const float *fc0) {
    CHECK(gf_lora_count(net) == 0);
    gf_tensor *w = tensor_named(net, "fc.weight");
    CHECK(w && w->requires_grad && tensor_named(net, "conv.weight")->requires_grad);
    CHECK(w && memcmp(gf_f32(w), fc0, sizeof(float) * 300) == 0);
}

static void test_bad_files(gf_ctx *ctx, const char *tmp) {
    char dir[1300];
    snprintf(dir, sizeof dir, "%s/bad", tmp);
    CHECK(mkdir(dir, 0777) == 0);
    gf_module *net = fixture_net(ctx);
    gf_module_train(net, true);
    float fc0[300];
    memcpy(fc0, gf_f32(tensor_named(net, "fc.weight")), sizeof fc0);

    struct {
        void (*edit)(cJSON *);
        const char *drop, *extra;
        gf_status st;
        const char *msg1, *msg2;
    } cases[] = {
        {set_ia3, NULL, NULL, GF_ERR_FORMAT, "peft_type is IA3", "adapter_config.json"},
        {set_typo, NULL, NULL, GF_ERR_FORMAT, "unknown key \"lora_alpah\"", ""},
        {set_dora, NULL, NULL, GF_ERR_FORMAT, "\"use_dora\"", "does not support"},
        {set_bias_all, NULL, NULL, GF_ERR_FORMAT, "bias must be \"none\"", ""},
        {no_r, NULL, NULL, GF_ERR_FORMAT, "missing \"r\"", ""},
        {set_r3, NULL, NULL, GF_ERR_SHAPE, "'base_model.model.", "r=3"},
        {NULL, "base_model.model.fc.lora_B.weight", NULL, GF_ERR_FORMAT, "fc has lora_A but no lora_B", ""},
        {NULL, NULL, "base_model.model.nope.lora_A.weight", GF_ERR_INVALID, "module 'nope'", ""},
        {NULL, NULL, "base_model.model.fc.bias", GF_ERR_FORMAT, "unexpected key 'base_model.model.fc.bias'", ""},
        {NULL, NULL, "base_model.model.relu.lora_A.weight", GF_ERR_INVALID, "relu (ReLU)", ""},
        {conv_only, NULL, NULL, GF_ERR_FORMAT, "module fc", "target_modules"},
        {regex_c, NULL, NULL, GF_ERR_FORMAT, "module fc", "target_modules"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_config(dir, cases[i].edit);
        write_weights(ctx, dir, cases[i].drop, cases[i].extra);
        EXPECT_FAIL(ctx, gf_lora_load(ctx, net, dir), cases[i].st, cases[i].msg1, cases[i].msg2);
        expect_untouched(net, fc0);
    }
    /* shape mismatch: the r=3 message names both shapes */
    write_config(dir, set_r3);
    write_weights(ctx, dir, NULL, NULL);
    EXPECT_FAIL(ctx, gf_lora_load(ctx, net, dir), GF_ERR_SHAPE, "has shape [2, 2, 3, 3]", "expects [3, 2, 3, 3]");
    /* missing files */
    char nodir[1400];
    snprintf(nodir, sizeof nodir, "%s/missing", tmp);
    EXPECT_FAIL(ctx, gf_lora_load(ctx, net, nodir), GF_ERR_IO, "adapter_config.json");
    snprintf(nodir, sizeof nodir, "%s/adapter_model.safetensors", dir);
    remove(nodir);
    write_config(dir, NULL);
    EXPECT_FAIL(ctx, gf_lora_load(ctx, net, dir), GF_ERR_IO, "adapter_model.safetensors");
    expect_untouched(net, fc0);

    /* target_modules as a regular expression, and PEFT's suffix rule with an unused entry */
    write_weights(ctx, dir, NULL, NULL);
    write_config(dir, regex_both);
    CHECK(gf_lora_load(ctx, net, dir) == GF_OK && gf_lora_count(net) == 2);
    CHECK(gf_lora_unload(ctx, net, false) == GF_OK);
    write_config(dir, suffix_style);
    CHECK(gf_lora_load(ctx, net, dir) == GF_OK && gf_lora_count(net) == 2);
    /* a model whose adapters differ from the file's */
    gf_module *other = fixture_net(ctx);
    CHECK(apply1(ctx, other, "conv", 2, 4, 0) == GF_OK);
    EXPECT_FAIL(ctx, gf_lora_load(ctx, other, dir), GF_ERR_STATE, "fc has adapter weights but no LoRA layer");
    gf_module_free(other);
    other = fixture_net(ctx);
    const char *both[] = {"conv", "fc"};
    gf_lora_params p = gf_lora_default_params();
    p.targets = both;
    p.n_targets = 2;
    p.r = 3;
    CHECK(gf_lora_apply(ctx, other, &p, NULL) == GF_OK);
    EXPECT_FAIL(ctx, gf_lora_load(ctx, other, dir), GF_ERR_SHAPE, "conv (lora.Conv2d) has r=3, the file r=2");
    gf_module_free(other);
    gf_module_free(net);
}

/* ---- the example in docs/LORA_DISTILL.md (keep the two in step) ------------------------------------ */

static int doc_example(const char *tmp) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_rng rng;
    gf_rng_seed(&rng, 7);
    gf_zoo_params zp = gf_zoo_default_params();
    zp.height = zp.width = 12;
    zp.num_classes = 4;
    gf_module *net = gf_zoo_build(ctx, "cnn-small", &zp, &rng); /* features.0/3, classifier.1/3 */
    /* ... load pretrained weights here: gf_weights_load(ctx, net, "cnn.safetensors", NULL, NULL) */

    /* every matched module must be a Linear or Conv2d: "classifier.*" would also match the
     * Flatten at classifier.0 and be refused with an error naming it */
    const char *targets[] = {"features.[03]", "classifier.[13]"};
    gf_lora_params lp = gf_lora_default_params();     /* r 8, alpha 8, freeze_base */
    lp.targets = targets;
    lp.n_targets = 2;
    lp.r = 4;
    lp.alpha = 8.0f;                                  /* scaling = alpha / r = 2 */
    if (gf_lora_apply(ctx, net, &lp, &rng) != GF_OK) {
        fprintf(stderr, "graft: %s\n", gf_ctx_error(ctx));
        return 1;
    }
    if (gf_lora_count(net) != 4) return 1;

    /* only the adapters train: hand exactly those to the optimizer */
    gf_named_tensors *ps = gf_module_named_tensors(ctx, net, GF_STATE_PARAMS);
    gf_tensor *train[16];
    int n = 0;
    for (int i = 0; i < ps->n; i++)
        if (ps->items[i].tensor->requires_grad) train[n++] = ps->items[i].tensor;
    gf_named_tensors_free(ps);
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAM);
    gf_optim *opt = gf_optim_new(ctx, &op, train, n);

    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, (int64_t[]){4, 1, 12, 12});
    gf_tensor *y = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){4}, (int64_t[]){0, 1, 2, 3});
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = (float)((i * 13) % 7) / 7.0f;
    for (int step = 0; step < 5; step++) {
        gf_optim_zero_grad(opt);
        gf_tensor *loss = gf_cross_entropy(ctx, gf_module_forward(ctx, net, x), y, GF_REDUCE_MEAN, -100);
        if (!loss || gf_backward(ctx, loss) != GF_OK || gf_optim_step(ctx, opt) != GF_OK) return 1;
        gf_ctx_reset(ctx);
    }

    char dir[1300];
    snprintf(dir, sizeof dir, "%s/doc_adapter", tmp);
    if (gf_lora_save(ctx, net, dir, "cnn-small") != GF_OK) return 1; /* PEFT's two files */
    gf_lora_merge(ctx, net);                 /* W += scaling B A: inference at base cost */
    gf_lora_unload(ctx, net, true);          /* plain Conv2d / Linear layers again */
    int layers = gf_lora_count(net);

    gf_optim_free(opt);
    gf_tensor_free(x);
    gf_tensor_free(y);
    gf_module_free(net);
    gf_ctx_free(ctx);
    return layers == 0 ? 0 : 1;
}

int main(void) {
    const char *s = getenv("GRAFT_SOURCE_DIR");
    snprintf(src, sizeof src, "%s", s ? s : ".");
    char tmp[] = "/tmp/graft_lora_XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_layers(ctx);
    test_targets(ctx);
    test_default_targets(ctx);
    test_dropout(ctx);
    test_training(ctx);
    test_peft_files(ctx, tmp);
    test_bad_files(ctx, tmp);
    CHECK(gf_ctx_status(ctx) == GF_OK);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "left-over error: %s\n", gf_ctx_error(ctx));
    gf_ctx_free(ctx);
    CHECK(doc_example(tmp) == 0);
    char rm[1200];
    snprintf(rm, sizeof rm, "rm -rf %s", tmp);
    if (system(rm) != 0) return 1;
    return test_finish("test_lora");
}
