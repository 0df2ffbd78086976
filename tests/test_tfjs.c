/* TensorFlow.js layers models: the tiny model of fixtures/tfjs/tiny (every supported layer kind,
 * weights quantised to uint8, uint16 and float16, two groups, a group over two shards, an unused
 * int32 weight) gives TensorFlow.js's own outputs (fixtures/tfjs_tiny_ref.json, written by
 * gen_tfjs_tiny.js) at every layer, each reached by cutting the model there, within 1e-4 of the
 * layer's largest value; the parameters carry the documented names, freeze by pattern and get
 * gradients; and malformed files (short shards, unknown dtypes, quantisation without min,
 * huge shapes, shard paths leaving the folder, unsupported layers) fail with messages naming
 * what is wrong. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/graft.h"
#include "tfjs_check.h"

static char src[1024], tiny[1200];

/* The tiny model's JSON text and its weights (the three shards back to back). */
typedef struct tiny_files {
    char *json;
    uint8_t *w;
    size_t wlen;
} tiny_files;

static uint8_t *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    *n = b ? fread(b, 1, (size_t)len, f) : 0;
    fclose(f);
    return b;
}

static bool tiny_read(tiny_files *t) {
    static const char *const shards[] = {"group1-shard1of2.bin", "group1-shard2of2.bin",
                                         "group2-shard1of1.bin"};
    char p[1400];
    snprintf(p, sizeof p, "%s/model.json", tiny);
    t->json = test_read_text(p);
    t->w = NULL;
    t->wlen = 0;
    for (int i = 0; i < 3; i++) {
        size_t n = 0;
        snprintf(p, sizeof p, "%s/%s", tiny, shards[i]);
        uint8_t *b = read_bytes(p, &n);
        uint8_t *nw = b ? realloc(t->w, t->wlen + n + 1) : NULL;
        if (!nw) {
            free(b);
            return false;
        }
        memcpy(nw + t->wlen, b, n);
        t->w = nw;
        t->wlen += n;
        free(b);
    }
    return t->json != NULL;
}

static void test_reference(gf_ctx *ctx) {
    char ref[1400], model[1400];
    snprintf(ref, sizeof ref, "%s/tests/fixtures/tfjs_tiny_ref.json", src);
    snprintf(model, sizeof model, "%s/model.json", tiny);
    double worst = 0;
    int layers = tfjs_check_reference(ctx, model, ref, 1e-4, &worst);
    CHECK(layers == 22);
    printf("tiny model: %d layers compared with TensorFlow.js, worst relative difference %.3g\n",
           layers, worst);
}

static void test_info_and_names(gf_ctx *ctx) {
    char model[1400];
    snprintf(model, sizeof model, "%s/model.json", tiny);
    gf_tfjs_info *info = NULL;
    gf_module *m = gf_tfjs_load(ctx, model, NULL, &info);
    CHECK(m && info);
    if (!m || !info) {
        fprintf(stderr, "%s\n", gf_ctx_error(ctx));
        return;
    }
    CHECK(gf_tfjs_is_model_file(model));
    CHECK(info->n_layers == 23 && info->n_weights == 24 && info->weights_used == 23);
    CHECK(info->weights_quantized == 5);
    CHECK(strcmp(info->class_name, "Model") == 0 && strcmp(info->model_name, "tiny") == 0);
    CHECK(strcmp(info->input_name, "img") == 0 && strcmp(info->output_name, "out") == 0);
    CHECK(info->in_ndim == 3 && info->in_shape[0] == 3 && info->in_shape[1] == 7 &&
          info->in_shape[2] == 9);
    CHECK(info->out_ndim == 1 && info->out_shape[0] == 3);
    CHECK(info->params == gf_module_param_count(m, false));
    CHECK(!gf_module_is_training(m));
    static const struct { const char *name; int ndim; int64_t shape[4]; } want[] = {
        {"c1.weight", 4, {6, 3, 3, 3}}, {"c1.bias", 1, {6}}, {"bn1.running_var", 1, {6}},
        {"dw.weight", 4, {12, 1, 3, 3}}, {"sep.depthwise.weight", 4, {3, 1, 3, 3}},
        {"sep.pointwise.weight", 4, {8, 3, 1, 1}}, {"sep.pointwise.bias", 1, {8}},
        {"d1.weight", 2, {7, 180}}, {"bn2.weight", 1, {32}}, {"out.weight", 2, {3, 32}}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        gf_tensor *t = gf_module_tensor(ctx, m, want[i].name);
        bool ok = t && t->ndim == want[i].ndim;
        for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == want[i].shape[d];
        if (!ok) fprintf(stderr, "parameter %s missing or misshaped\n", want[i].name);
        CHECK(ok);
    }
    gf_ctx_clear_error(ctx);
    for (int i = 0; i < info->n_layers; i++)
        if (strcmp(info->layers[i].name, "mp") == 0)
            CHECK(info->layers[i].out_ndim == 3 && info->layers[i].out_shape[0] == 20 &&
                  info->layers[i].out_shape[1] == 3 && info->layers[i].params == 0 &&
                  info->layers[i].module == NULL && strcmp(info->layers[i].inputs, "act") == 0);
    /* freezing by pattern reaches the imported names */
    CHECK(gf_transfer_freeze(ctx, m, "c1.*") == 2);
    CHECK(!gf_module_tensor(ctx, m, "c1.weight")->requires_grad);
    gf_tfjs_info_free(info);
    gf_module_free(m);
}

/* The imported network is differentiable: a finite difference of sum(y^2) at the cut cat2
 * matches the gradient backward computes for one weight of each kind. */
static double loss_at(gf_ctx *ctx, gf_module *m, gf_tensor *x) {
    gf_tensor *y = gf_module_forward(ctx, m, x);
    gf_tensor *l = gf_sum(ctx, gf_mul(ctx, y, y), NULL, 0, false);
    return l ? gf_get_f32(l, 0) : NAN;
}

static void test_gradients(gf_ctx *ctx) {
    char model[1400];
    snprintf(model, sizeof model, "%s/model.json", tiny);
    gf_tfjs_options o = gf_tfjs_default_options();
    o.cut = "cat2";
    gf_module *m = gf_tfjs_load(ctx, model, &o, NULL);
    CHECK(m != NULL);
    if (!m) return;
    const int64_t xs[4] = {2, 3, 7, 9};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, xs);
    tfjs_fill_pattern(x);
    gf_tensor *y = gf_module_forward(ctx, m, x);
    gf_tensor *l = gf_sum(ctx, gf_mul(ctx, y, y), NULL, 0, false);
    CHECK(l && gf_backward(ctx, l) == GF_OK);
    static const char *const names[] = {"c1.weight", "dw.weight", "sep.pointwise.weight",
                                        "pw.bias", "d1.weight", "bn1.weight", "c2.weight"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        gf_tensor *p = gf_module_tensor(ctx, m, names[i]);
        if (!p || !p->grad) {
            CHECK(0);
            continue;
        }
        const int64_t k = p->numel / 3;
        const float g = gf_f32(p->grad)[k], h = 1e-2f, v = gf_f32(p)[k];
        gf_ctx_set_grad_enabled(ctx, false);
        gf_f32(p)[k] = v + h;
        double up = loss_at(ctx, m, x);
        gf_f32(p)[k] = v - h;
        double down = loss_at(ctx, m, x);
        gf_f32(p)[k] = v;
        gf_ctx_set_grad_enabled(ctx, true);
        double fd = (up - down) / (2 * h);
        bool ok = fabs(fd - g) <= 2e-2 * fmax(fabs(fd), 1e-1);
        if (!ok) fprintf(stderr, "%s[%lld]: backward %g, finite difference %g\n", names[i],
                         (long long)k, (double)g, fd);
        CHECK(ok);
    }
    /* training mode runs too (batch statistics, dropout) */
    gf_module_train(m, true);
    CHECK(gf_module_forward(ctx, m, x) != NULL);
    gf_ctx_reset(ctx);
    gf_tensor_free(x);
    gf_module_free(m);
}

/* gf_tfjs_forward_layers gives, in one pass, what the model cut at each layer gives (each cut
 * checked against TensorFlow.js by test_reference), bitwise; gf_tfjs_block_ends lists the
 * block ends of the tiny model. */
static void test_forward_layers(gf_ctx *ctx) {
    char model[1400];
    snprintf(model, sizeof model, "%s/model.json", tiny);
    gf_module *m = gf_tfjs_load(ctx, model, NULL, NULL);
    CHECK(m != NULL);
    if (!m) return;
    const int64_t xs[4] = {2, 3, 7, 9};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, xs);
    tfjs_fill_pattern(x);
    static const char *const names[] = {"cat", "c1", "gmp", "add", "out"};
    gf_tensor *outs[5] = {NULL};
    CHECK(gf_tfjs_forward_layers(ctx, m, x, names, 5, outs) == GF_OK);
    for (int k = 0; k < 5; k++) {
        gf_tfjs_options o = gf_tfjs_default_options();
        o.cut = names[k];
        gf_module *c = gf_tfjs_load(ctx, model, &o, NULL);
        gf_tensor *y = c ? gf_module_forward(ctx, c, x) : NULL;
        bool same = y && outs[k] && y->numel == outs[k]->numel && y->ndim == outs[k]->ndim;
        for (int64_t i = 0; same && i < y->numel; i++)
            same = gf_get_f32(y, i) == gf_get_f32(outs[k], i);
        if (!same) fprintf(stderr, "forward_layers: %s differs from the model cut there\n", names[k]);
        CHECK(same);
        gf_module_free(c);
    }
    const char *ends[16];
    int n = gf_tfjs_block_ends(ctx, m, ends, 16);
    static const char *const want[] = {"zp", "cat", "add", "act", "mp", "cat2", "out"};
    CHECK(n == 7);
    for (int k = 0; k < n && k < 7; k++) CHECK(strcmp(ends[k], want[k]) == 0);
    const char *bad[] = {"cat", "nope"};
    CHECK(gf_tfjs_forward_layers(ctx, m, x, bad, 2, outs) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "no layer \"nope\" in the model") != NULL);
    gf_ctx_clear_error(ctx);
    gf_module *id = gf_nn_identity(ctx);
    CHECK(gf_tfjs_forward_layers(ctx, id, x, names, 1, outs) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "not a TensorFlow.js import") != NULL);
    gf_ctx_clear_error(ctx);
    CHECK(gf_tfjs_block_ends(ctx, id, ends, 16) == -1);
    gf_ctx_clear_error(ctx);
    gf_module_free(id);
    gf_ctx_reset(ctx);
    gf_tensor_free(x);
    gf_module_free(m);
}

/* gf_tfjs_parse of the tiny model with its JSON changed by edit (a cJSON tree edit), expecting
 * a failure whose message holds want. */
typedef void (*json_edit)(cJSON *root);

static cJSON *layer_named(cJSON *root, const char *name) {
    cJSON *ls = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "modelTopology"),
                                                        "config"), "layers");
    cJSON *l;
    cJSON_ArrayForEach(l, ls) if (strcmp(cJSON_GetObjectItem(l, "name")->valuestring, name) == 0)
        return l;
    return NULL;
}
static cJSON *weight_named(cJSON *root, const char *name) {
    cJSON *g, *w;
    cJSON_ArrayForEach(g, cJSON_GetObjectItem(root, "weightsManifest"))
        cJSON_ArrayForEach(w, cJSON_GetObjectItem(g, "weights"))
            if (strcmp(cJSON_GetObjectItem(w, "name")->valuestring, name) == 0) return w;
    return NULL;
}
static void e_dtype(cJSON *r) {
    cJSON_ReplaceItemInObject(weight_named(r, "pw/kernel"), "dtype", cJSON_CreateString("float64"));
}
static void e_qmin(cJSON *r) {
    cJSON *q = cJSON_GetObjectItem(weight_named(r, "c1/kernel"), "quantization");
    cJSON_DeleteItemFromObject(q, "min");
}
static void e_qdtype(cJSON *r) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(weight_named(r, "c1/kernel"), "quantization"),
                              "dtype", cJSON_CreateString("int4"));
}
static void e_orig_dtype(cJSON *r) {
    cJSON *q = cJSON_GetObjectItem(weight_named(r, "dw/depthwise_kernel"), "quantization");
    cJSON_ReplaceItemInObject(q, "original_dtype", cJSON_CreateString("int32"));
}
static void e_scale(cJSON *r) {
    cJSON *q = cJSON_GetObjectItem(weight_named(r, "c1/kernel"), "quantization");
    cJSON_ReplaceItemInObject(q, "scale", cJSON_CreateString("0.1"));
}
static void e_huge(cJSON *r) {
    cJSON *s = cJSON_GetObjectItem(weight_named(r, "pw/kernel"), "shape");
    cJSON_ReplaceItemInArray(s, 2, cJSON_CreateNumber(1e6));
    cJSON_ReplaceItemInArray(s, 3, cJSON_CreateNumber(1e6));
}
static void e_kernel_shape(cJSON *r) {
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(weight_named(r, "pw/kernel"), "shape"), 3,
                             cJSON_CreateNumber(21));
}
static void e_missing_weight(cJSON *r) {
    cJSON_ReplaceItemInObject(weight_named(r, "d1/bias"), "name", cJSON_CreateString("d9/bias"));
}
static void e_class(cJSON *r) {
    cJSON_ReplaceItemInObject(layer_named(r, "act"), "class_name", cJSON_CreateString("LSTM"));
}
static void e_format(cJSON *r) {
    cJSON_ReplaceItemInObject(r, "format", cJSON_CreateString("graph-model"));
}
static void e_dup(cJSON *r) {
    cJSON_ReplaceItemInObject(layer_named(r, "act"), "name", cJSON_CreateString("add"));
}
static void e_shared(cJSON *r) {
    cJSON *ib = cJSON_GetObjectItem(layer_named(r, "act"), "inbound_nodes");
    cJSON_AddItemToArray(ib, cJSON_Duplicate(cJSON_GetArrayItem(ib, 0), true));
}
static void e_keras3(cJSON *r) {
    cJSON *ib = cJSON_GetObjectItem(layer_named(r, "act"), "inbound_nodes");
    cJSON_ReplaceItemInArray(ib, 0, cJSON_CreateObject());
}
static void e_forward_ref(cJSON *r) {
    cJSON *ref = cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetObjectItem(layer_named(r, "zp"),
                                                                           "inbound_nodes"), 0), 0);
    cJSON_ReplaceItemInArray(ref, 0, cJSON_CreateString("out"));
}
static void e_padding(cJSON *r) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(layer_named(r, "c1"), "config"), "padding",
                              cJSON_CreateString("causal"));
}
static void e_channels_first(cJSON *r) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(layer_named(r, "c1"), "config"), "data_format",
                              cJSON_CreateString("channels_first"));
}

static void test_malformed_json(gf_ctx *ctx, const tiny_files *t) {
    static const struct { json_edit edit; const char *want[3]; } cases[] = {
        {e_dtype, {"weight pw/kernel", "dtype \"float64\"", "expected float32"}},
        {e_qmin, {"weight c1/kernel", "\"min\"", "no min"}},
        {e_qdtype, {"c1/kernel", "\"int4\"", "uint8, uint16 or float16"}},
        {e_orig_dtype, {"dw/depthwise_kernel", "original_dtype int32", "float32"}},
        {e_scale, {"c1/kernel", "\"scale\"", "a non-number"}},
        {e_huge, {"pw/kernel", "limit params", NULL}},
        {e_kernel_shape,
         {"layer pw (Conv2D)", "expected float32 [1, 1, 20, 20]", "[1, 1, 20, 21]"}},
        {e_missing_weight, {"layer d1 (Dense)", "d1/bias", "not in the weights manifest"}},
        {e_class, {"layer act (LSTM)", "class not supported", NULL}},
        {e_format, {"graph-model", "layers-model", NULL}},
        {e_dup, {"two layers are named add", NULL, NULL}},
        {e_shared, {"layer act", "found 2", "shared layers"}},
        {e_keras3, {"layer act", "Keras 3", NULL}},
        {e_forward_ref, {"layer zp", "reads layer out", "after it"}},
        {e_padding, {"layer c1 (Conv2D)", "padding \"causal\"", "valid or same"}},
        {e_channels_first, {"layer c1", "channels_first", "channels_last"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cJSON *root = cJSON_Parse(t->json);
        cases[i].edit(root);
        char *text = cJSON_PrintUnformatted(root);
        gf_ctx_clear_error(ctx);
        gf_module *m =
            gf_tfjs_parse(ctx, text, strlen(text), t->w, t->wlen, "bad.json", NULL, NULL);
        bool ok = m == NULL && strstr(gf_ctx_error(ctx), "bad.json");
        for (int k = 0; k < 3 && cases[i].want[k]; k++)
            ok = ok && strstr(gf_ctx_error(ctx), cases[i].want[k]);
        if (!ok) fprintf(stderr, "case %zu: got '%s'\n", i, gf_ctx_error(ctx));
        CHECK(ok);
        gf_module_free(m);
        cJSON_free(text);
        cJSON_Delete(root);
    }
    /* weights shorter than the manifest; text that is not a model */
    EXPECT_ERR(ctx, gf_tfjs_parse(ctx, t->json, strlen(t->json), t->w, t->wlen - 1, "short.json",
                                  NULL, NULL),
               GF_ERR_FORMAT, "short.json", "hold", "need");
    EXPECT_ERR(ctx, gf_tfjs_parse(ctx, "[1, 2]", 6, NULL, 0, "arr.json", NULL, NULL), GF_ERR_FORMAT,
               "arr.json", "not a JSON object");
    char deep[300];
    memset(deep, '[', 200);
    deep[200] = '\0';
    EXPECT_ERR(ctx, gf_tfjs_parse(ctx, deep, 200, NULL, 0, "deep.json", NULL, NULL), GF_ERR_FORMAT,
               "deep.json", "limit json-depth");
    gf_tfjs_options o = gf_tfjs_default_options();
    o.cut = "nope";
    EXPECT_ERR(ctx, gf_tfjs_parse(ctx, t->json, strlen(t->json), t->w, t->wlen, "cut.json", &o,
                                  NULL),
               GF_ERR_INVALID, "cut at \"nope\"", "img, zp");
    /* the activation limit, checked before anything is built */
    gf_limits lim = *gf_ctx_limits(ctx), small = lim;
    small.model_activation = 100;
    gf_ctx_set_limits(ctx, &small);
    EXPECT_ERR(ctx, gf_tfjs_parse(ctx, t->json, strlen(t->json), t->w, t->wlen, "act.json", NULL,
                                  NULL),
               GF_ERR_FORMAT, "layer zp", "limit activation");
    gf_ctx_set_limits(ctx, &lim);
    gf_ctx_clear_error(ctx);
}

/* A Sequential model without an InputLayer (the first layer's batch_input_shape makes one), and
 * the tiny model with its topology nested under model_config as Keras's converter writes it. */
static void test_sequential_and_nesting(gf_ctx *ctx, const tiny_files *t) {
    static const char seq[] =
        "{\"modelTopology\": {\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", "
        "\"layers\": [{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 2, "
        "\"activation\": \"relu\", \"batch_input_shape\": [null, 3]}}, {\"class_name\": "
        "\"Dense\", \"config\": {\"name\": \"e\", \"units\": 1, \"activation\": \"sigmoid\", "
        "\"use_bias\": false}}]}}, \"weightsManifest\": [{\"paths\": [\"w.bin\"], \"weights\": "
        "[{\"name\": \"d/kernel\", \"shape\": [3, 2], \"dtype\": \"float32\"}, {\"name\": "
        "\"d/bias\", \"shape\": [2], \"dtype\": \"float32\"}, {\"name\": \"e/kernel\", "
        "\"shape\": [2, 1], \"dtype\": \"float32\"}]}]}";
    const float w[10] = {0.5f, -1, 0.25f, 2, -0.5f, 1, 0.1f, -0.2f, 1.5f, -1};
    gf_tfjs_info *info = NULL;
    gf_module *m = gf_tfjs_parse(ctx, seq, strlen(seq), (const uint8_t *)w, sizeof w, "seq.json",
                                 NULL, &info);
    CHECK(m && info && info->n_layers == 3 && strcmp(info->input_name, "d_input") == 0);
    const int64_t xs[2] = {1, 3};
    gf_tensor *x = gf_full(ctx, 2, xs, 1.0f);
    if (x) gf_f32(x)[1] = 2, gf_f32(x)[2] = 3;
    gf_tensor *y = m ? gf_module_forward(ctx, m, x) : NULL;
    /* relu([-0.4, 5.8]) . [1.5, -1] = -5.8 */
    CHECK(y && y->numel == 1);
    if (y) CHECK_NEAR(gf_get_f32(y, 0), 1.0 / (1.0 + exp(5.8)), 1e-6);
    gf_tfjs_info_free(info);
    gf_module_free(m);
    gf_ctx_reset(ctx);
    cJSON *root = cJSON_Parse(t->json), *topo = cJSON_DetachItemFromObject(root, "modelTopology");
    cJSON *outer = cJSON_AddObjectToObject(root, "modelTopology");
    cJSON_AddStringToObject(outer, "keras_version", "2.2.4");
    cJSON_AddItemToObject(outer, "model_config", topo);
    char *text = cJSON_PrintUnformatted(root);
    m = gf_tfjs_parse(ctx, text, strlen(text), t->w, t->wlen, "nested.json", NULL, NULL);
    CHECK(m != NULL);
    gf_module_free(m);
    cJSON_free(text);
    cJSON_Delete(root);
    gf_ctx_clear_error(ctx);
}

/* A copy of the tiny model in a temporary folder, with one shard changed by `tweak`. */
static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static void test_shard_files(gf_ctx *ctx, const tiny_files *t) {
    char dir[] = "/tmp/graft_tfjs_XXXXXX", p[256], sub[300];
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    snprintf(sub, sizeof sub, "%s/model", dir);
    mkdir(sub, 0700);
    snprintf(p, sizeof p, "%s/model/group1-shard1of2.bin", dir);
    write_file(p, t->w, 101);
    snprintf(p, sizeof p, "%s/model/group1-shard2of2.bin", dir);
    size_t g1 = 101 + 2253;
    write_file(p, t->w + 101, g1 - 101);
    snprintf(p, sizeof p, "%s/model/group2-shard1of1.bin", dir);
    write_file(p, t->w + g1, t->wlen - g1 - 10); /* 10 bytes short */
    snprintf(p, sizeof p, "%s/model/model.json", dir);
    write_file(p, t->json, strlen(t->json));
    EXPECT_ERR(ctx, gf_tfjs_load(ctx, p, NULL, NULL), GF_ERR_FORMAT, p, "weight group 2",
               "group2-shard1of1.bin");
    /* paths leaving the folder: "..", absolute, and a link pointing out */
    static const char *const bad[] = {"../outside.bin", "/etc/passwd", "link.bin"};
    char target[300];
    snprintf(target, sizeof target, "%s/outside.bin", dir);
    write_file(target, t->w, t->wlen);
    snprintf(sub, sizeof sub, "%s/model/link.bin", dir);
    CHECK(symlink(target, sub) == 0);
    for (int i = 0; i < 3; i++) {
        cJSON *root = cJSON_Parse(t->json);
        cJSON *g0 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "weightsManifest"), 0);
        cJSON *paths = cJSON_GetObjectItem(g0, "paths");
        cJSON_ReplaceItemInArray(paths, 0, cJSON_CreateString(bad[i]));
        char *text = cJSON_PrintUnformatted(root);
        write_file(p, text, strlen(text));
        EXPECT_ERR(ctx, gf_tfjs_load(ctx, p, NULL, NULL), GF_ERR_FORMAT, bad[i],
                   i < 2 ? "leaves the model's folder" : "outside the model's folder");
        cJSON_free(text);
        cJSON_Delete(root);
    }
    EXPECT_ERR(ctx, gf_tfjs_load(ctx, "/nonexistent/model.json", NULL, NULL), GF_ERR_IO,
               "/nonexistent/model.json");
    gf_ctx_clear_error(ctx);
    test_rm_tree(dir);
}

int main(void) {
    const char *s = getenv("GRAFT_SOURCE_DIR");
    snprintf(src, sizeof src, "%s", s ? s : ".");
    snprintf(tiny, sizeof tiny, "%s/tests/fixtures/tfjs/tiny", src);
    gf_ctx *ctx = gf_ctx_new(NULL);
    tiny_files t;
    CHECK(tiny_read(&t));
    test_reference(ctx);
    test_info_and_names(ctx);
    test_gradients(ctx);
    test_forward_layers(ctx);
    if (t.json && t.w) {
        test_malformed_json(ctx, &t);
        test_sequential_and_nesting(ctx, &t);
        test_shard_files(ctx, &t);
    }
    free(t.json);
    free(t.w);
    gf_ctx_free(ctx);
    return test_finish("test_tfjs");
}
