/* The zoo's resnet18 / resnet34 / resnet50 are torchvision's: the state_dict keys, shapes and
 * order equal torchvision's (fixtures/resnet_zoo.json, written by gen_resnet_zoo.py), a
 * safetensors file written under torchvision's names loads strictly by name, and the outputs
 * (eval and training mode, input [2, 3, 64, 64]) are torchvision's within 1e-4. The weights
 * come from a deterministic recipe both sides compute (the script's docstring defines it),
 * because real ResNet weights are too big to commit. Also the Bottleneck block on its own,
 * the zoo's size checks and torchvision's initialisation. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graft/graft.h"

static char src[1024];

/* ---- the recipe (same as gen_resnet_zoo.py) ---------------------------------------------- */

static uint64_t fnv1a64(const char *s) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001B3ull;
    return h;
}

/* u(key, i) as a double: a 24-bit integer over 2^23, in [-1, 1). */
static double recipe_unit(uint64_t key_hash, int64_t i) {
    uint64_t z = key_hash + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)((int64_t)(z >> 40) - (1 << 23)) / (double)(1 << 23);
}

/* The recipe's (a, b) for one key; fc_in: fc's input features. */
static void recipe_affine(const char *key, int ndim, const int64_t *shape, const char *branch_end,
                          int64_t fc_in, double *a, double *b) {
    const char *dot = strrchr(key, '.');
    const char *leaf = dot ? dot + 1 : key;
    size_t mlen = dot ? (size_t)(dot - key) : 0;
    char module[256];
    snprintf(module, sizeof module, "%.*s", (int)mlen, key);
    const char *mdot = strrchr(module, '.');
    const char *mlast = mdot ? mdot + 1 : module;
    *a = 0.0;
    if (strcmp(key, "input") == 0) *b = 1.0;
    else if (ndim == 4) *b = sqrt(6.0 / (double)(shape[1] * shape[2] * shape[3]));
    else if (strcmp(module, "fc") == 0) *b = 1.0 / sqrt((double)fc_in);
    else if (strcmp(leaf, "weight") == 0) {
        bool last = strncmp(module, "layer", 5) == 0 && strcmp(mlast, branch_end) == 0;
        *a = last ? 0.3 : 1.0;
        *b = last ? 0.1 : 0.25;
    } else if (strcmp(leaf, "running_var") == 0) {
        *a = 1.0;
        *b = 0.5;
    } else {
        *b = 0.1; /* BatchNorm bias, running_mean */
    }
}

/* A new tensor of the given shape filled by the recipe (num_batches_tracked: int64 7). */
static gf_tensor *recipe_tensor(gf_ctx *ctx, const char *key, int ndim, const int64_t *shape,
                                bool is_int, const char *branch_end, int64_t fc_in) {
    gf_tensor *t = gf_tensor_new(ctx, is_int ? GF_I64 : GF_F32, ndim, shape);
    if (!t) return NULL;
    if (is_int) {
        for (int64_t i = 0; i < t->numel; i++) ((int64_t *)t->data)[i] = 7;
        return t;
    }
    double a, b;
    recipe_affine(key, ndim, shape, branch_end, fc_in, &a, &b);
    const double bf = (double)(float)b; /* the scale is a float32 */
    const uint64_t h = fnv1a64(key);
    float *d = gf_f32(t);
    for (int64_t i = 0; i < t->numel; i++) d[i] = (float)(a + bf * recipe_unit(h, i));
    return t;
}

/* ---- fixture helpers ----------------------------------------------------------------------- */

static int shape_of(const cJSON *arr, int64_t *shape) {
    int n = cJSON_GetArraySize(arr);
    for (int d = 0; d < n && d < GF_MAX_DIMS; d++)
        shape[d] = (int64_t)cJSON_GetArrayItem(arr, d)->valuedouble;
    return n;
}

/* Graft's state_dict equals the fixture's key list: names, shapes, dtypes, order. */
static bool same_keys(const char *name, const gf_named_tensors *l, const cJSON *keys) {
    if (!l || l->n != cJSON_GetArraySize(keys)) {
        fprintf(stderr, "%s: %d keys, torchvision has %d\n", name, l ? l->n : -1,
                cJSON_GetArraySize(keys));
        return false;
    }
    for (int i = 0; i < l->n; i++) {
        const cJSON *k = cJSON_GetArrayItem(keys, i);
        const gf_tensor *t = l->items[i].tensor;
        int64_t shape[GF_MAX_DIMS];
        int nd = shape_of(cJSON_GetArrayItem(k, 1), shape);
        bool same = strcmp(cJSON_GetArrayItem(k, 0)->valuestring, l->items[i].name) == 0 &&
                    nd == t->ndim && (t->dtype == GF_I64) == (strcmp(cJSON_GetArrayItem(k, 2)->valuestring, "I64") == 0);
        for (int d = 0; same && d < nd; d++) same = shape[d] == t->shape[d];
        if (!same) {
            fprintf(stderr, "%s: key %d is %s, torchvision's is %s\n", name, i, l->items[i].name,
                    cJSON_GetArrayItem(k, 0)->valuestring);
            return false;
        }
    }
    return true;
}

/* Writes the recipe's tensors under the fixture's (torchvision's) names and order. */
static bool write_recipe_file(gf_ctx *ctx, const cJSON *m, const char *path) {
    const cJSON *keys = cJSON_GetObjectItem(m, "keys");
    const char *branch_end = cJSON_GetObjectItem(m, "branch_end")->valuestring;
    int n = cJSON_GetArraySize(keys);
    if (n <= 0) return false;
    int64_t fc_in = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *k = cJSON_GetArrayItem(keys, i);
        if (strcmp(cJSON_GetArrayItem(k, 0)->valuestring, "fc.weight") == 0)
            fc_in = (int64_t)cJSON_GetArrayItem(cJSON_GetArrayItem(k, 1), 1)->valuedouble;
    }
    gf_tensor **ts = calloc((size_t)n, sizeof *ts);
    gf_st_writer *w = gf_st_writer_new(ctx);
    bool ok = ts && w && fc_in > 0;
    for (int i = 0; ok && i < n; i++) {
        const cJSON *k = cJSON_GetArrayItem(keys, i);
        const char *key = cJSON_GetArrayItem(k, 0)->valuestring;
        bool is_int = strcmp(cJSON_GetArrayItem(k, 2)->valuestring, "I64") == 0;
        int64_t shape[GF_MAX_DIMS];
        int nd = shape_of(cJSON_GetArrayItem(k, 1), shape);
        ts[i] = recipe_tensor(ctx, key, nd, shape, is_int, branch_end, fc_in);
        ok = ts[i] && gf_st_writer_add(w, key, ts[i], is_int ? GF_ST_I64 : GF_ST_F32) == GF_OK;
    }
    ok = ok && gf_st_writer_save(w, path) == GF_OK;
    if (!ok) fprintf(stderr, "writing %s: %s\n", path, gf_ctx_error(ctx));
    gf_st_writer_free(w);
    for (int i = 0; ts && i < n; i++) gf_tensor_free(ts[i]);
    free(ts);
    return ok;
}

static double worst_diff(const gf_tensor *y, const cJSON *ref) {
    if (!y || y->numel != cJSON_GetArraySize(ref)) return INFINITY;
    double worst = 0;
    for (int64_t i = 0; i < y->numel; i++) {
        double d = fabs(gf_get_f32(y, i) - cJSON_GetArrayItem(ref, (int)i)->valuedouble);
        if (!(d <= worst)) worst = d;
    }
    return worst;
}

/* ---- parity with torchvision ----------------------------------------------------------------- */

static void check_model(gf_ctx *ctx, const cJSON *doc, const char *name, const cJSON *m,
                        const char *dir) {
    const int k = cJSON_GetObjectItem(doc, "num_classes")->valueint;
    int64_t xshape[GF_MAX_DIMS];
    shape_of(cJSON_GetObjectItem(doc, "input_shape"), xshape);
    gf_zoo_params p = gf_zoo_default_params();
    p.in_channels = (int)xshape[1];
    p.height = (int)xshape[2];
    p.width = (int)xshape[3];
    p.num_classes = k;
    gf_rng rng;
    gf_rng_seed(&rng, 5);
    gf_module *model = gf_zoo_build(ctx, name, &p, &rng);
    CHECK(model != NULL);
    if (!model) {
        fprintf(stderr, "%s: %s\n", name, gf_ctx_error(ctx));
        return;
    }
    CHECK(strcmp(gf_zoo_head(name), "fc") == 0);
    gf_named_tensors *l = gf_module_named_tensors(ctx, model, GF_STATE_ALL);
    CHECK(same_keys(name, l, cJSON_GetObjectItem(m, "keys")));
    gf_named_tensors_free(l);
    CHECK(gf_module_param_count(model, false) == (int64_t)cJSON_GetObjectItem(m, "params")->valuedouble);

    /* the size check is exact: one parameter less than the model has is refused */
    gf_limits lim = gf_limits_default();
    lim.model_params = gf_module_param_count(model, false) - 1;
    gf_ctx_set_limits(ctx, &lim);
    EXPECT_ERR(ctx, gf_zoo_build(ctx, name, &p, NULL), GF_ERR_INVALID, name, "limit params");
    gf_ctx_clear_error(ctx);
    gf_ctx_set_limits(ctx, NULL);

    char path[1200];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    CHECK(write_recipe_file(ctx, m, path));
    gf_weights_load_options strict = {true};
    gf_weights_report *rep = NULL;
    CHECK(gf_weights_load(ctx, model, path, &strict, &rep) == GF_OK);
    CHECK(rep && rep->loaded == rep->n && rep->renamed == 0);
    gf_weights_report_free(rep);
    unlink(path);

    gf_tensor *x = recipe_tensor(ctx, "input", 4, xshape, false, "", 1);
    gf_module_train(model, false);
    double e = worst_diff(gf_module_forward(ctx, model, x), cJSON_GetObjectItem(m, "eval"));
    printf("%-9s eval  max |graft - torchvision| = %.3g\n", name, e);
    CHECK(e < 1e-4);
    gf_ctx_reset(ctx);
    gf_module_train(model, true); /* batch statistics */
    e = worst_diff(gf_module_forward(ctx, model, x), cJSON_GetObjectItem(m, "train"));
    printf("%-9s train max |graft - torchvision| = %.3g\n", name, e);
    CHECK(e < 1e-4);
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_reset(ctx);
    gf_tensor_free(x);
    gf_module_free(model);
}

static void test_torchvision_parity(gf_ctx *ctx) {
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/resnet_zoo.json", src);
    cJSON *doc = test_read_json(path);
    CHECK(doc != NULL);
    if (!doc) return;
    char dir[] = "/tmp/graft_resnet_zoo_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const cJSON *m;
    int n = 0;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(doc, "models")) {
        check_model(ctx, doc, m->string, m, dir);
        n++;
    }
    CHECK(n == 3);
    test_rm_tree(dir);
    cJSON_Delete(doc);
}

/* ---- the block, the zoo entries -------------------------------------------------------------- */

static void test_bottleneck(gf_ctx *ctx) {
    gf_module *b = gf_nn_bottleneck(ctx, NULL, 16, 8, 2);
    CHECK(b != NULL && strcmp(gf_module_type(b), "Bottleneck") == 0);
    static const char *const names[] = {"conv1", "bn1", "conv2", "bn2", "conv3",
                                        "bn3",   "relu", "downsample"};
    CHECK(gf_module_num_children(b) == 8);
    for (int i = 0; i < 8; i++) {
        const char *nm = NULL;
        gf_module_child_at(b, i, &nm);
        CHECK(nm && strcmp(nm, names[i]) == 0);
    }
    gf_tensor *w2 = gf_module_tensor(ctx, b, "conv2.weight");
    gf_tensor *w3 = gf_module_tensor(ctx, b, "conv3.weight");
    gf_tensor *wd = gf_module_tensor(ctx, b, "downsample.0.weight");
    CHECK(w2 && w2->shape[0] == 8 && w2->shape[1] == 8 && w2->shape[2] == 3);
    CHECK(w3 && w3->shape[0] == 32 && w3->shape[1] == 8);
    CHECK(wd && wd->shape[0] == 32 && wd->shape[1] == 16 && wd->shape[2] == 1);
    CHECK(gf_module_tensor(NULL, b, "conv1.bias") == NULL); /* no biases */
    int64_t xs[4] = {2, 16, 9, 9};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, xs);
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
    gf_tensor *y = gf_module_forward(ctx, b, x);
    CHECK(y && y->ndim == 4 && y->shape[1] == 32 && y->shape[2] == 5 && y->shape[3] == 5);
    /* marked reentrant; training-mode BatchNorm has its statistics exchanged by replicas */
    CHECK(gf_module_replicable(b, NULL, 0) && gf_module_uses_batch_stats(b));
    gf_module_train(b, false);
    CHECK(gf_module_replicable(b, NULL, 0) && !gf_module_uses_batch_stats(b));
    gf_ctx_reset(ctx);
    gf_tensor_free(x);
    gf_module_free(b);
    /* same width in and out (4 * planes), stride 1: no downsample */
    b = gf_nn_bottleneck(ctx, NULL, 32, 8, 1);
    CHECK(b && gf_module_num_children(b) == 7 && !gf_module_child(b, "downsample"));
    gf_module_free(b);
    EXPECT_ERR(ctx, gf_nn_bottleneck(ctx, NULL, 16, 0, 1), GF_ERR_INVALID, "Bottleneck", "planes=0");
    EXPECT_ERR(ctx, gf_nn_bottleneck(ctx, NULL, 16, 4, 0), GF_ERR_INVALID, "stride=0");
    gf_ctx_clear_error(ctx);
}

/* The spec type: "out" is planes, the block gives 4 * planes channels, "in" is inferred. */
static void test_spec_bottleneck(gf_ctx *ctx) {
    const char *text =
        "{\"type\": \"sequential\", \"input\": [3, 8, 8], \"children\": ["
        "{\"type\": \"conv2d\", \"out\": 16, \"kernel\": 3, \"padding\": 1, \"bias\": false},"
        "{\"type\": \"bottleneck\", \"planes\": 8, \"stride\": 2},"
        "{\"type\": \"Bottleneck\", \"out\": 8},"
        "{\"type\": \"adaptiveavgpool2d\", \"output\": 1}, {\"type\": \"flatten\"},"
        "{\"type\": \"linear\", \"out\": 5}]}";
    gf_module *m = gf_spec_parse(ctx, text, strlen(text), NULL, NULL);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "spec: %s\n", gf_ctx_error(ctx));
        return;
    }
    CHECK(strcmp(gf_module_type(gf_module_child(m, "1")), "Bottleneck") == 0);
    gf_tensor *w = gf_module_tensor(ctx, m, "1.conv1.weight");
    CHECK(w && w->shape[0] == 8 && w->shape[1] == 16);
    CHECK(gf_module_tensor(NULL, m, "1.downsample.0.weight") != NULL);
    CHECK(gf_module_tensor(NULL, m, "2.downsample.0.weight") == NULL); /* 32 in, 32 out */
    w = gf_module_tensor(ctx, m, "5.weight");
    CHECK(w && w->shape[1] == 32);
    gf_module_free(m);
    const char *huge = "{\"type\": \"sequential\", \"input\": [3, 8, 8], \"children\": ["
                       "{\"type\": \"bottleneck\", \"out\": 1000000}]}";
    EXPECT_ERR(ctx, gf_spec_parse(ctx, huge, strlen(huge), NULL, NULL), GF_ERR_INVALID,
               "bottleneck", "limit params");
    gf_ctx_clear_error(ctx);
}

/* torchvision's constructor: convolutions kaiming_normal_(fan_out), BatchNorm 1 and 0. */
static void test_init_and_shapes(gf_ctx *ctx) {
    gf_zoo_params p = gf_zoo_default_params(); /* 1 channel, 10 classes */
    gf_rng rng;
    gf_rng_seed(&rng, 11);
    gf_module *m = gf_zoo_build(ctx, "resnet18", &p, &rng);
    CHECK(m != NULL);
    if (!m) return;
    gf_tensor *w = gf_module_tensor(ctx, m, "conv1.weight");
    CHECK(w && w->shape[0] == 64 && w->shape[1] == 1 && w->shape[2] == 7);
    gf_tensor *fc = gf_module_tensor(ctx, m, "fc.weight");
    CHECK(fc && fc->shape[0] == 10 && fc->shape[1] == 512);
    /* layer1.0.conv1: 64 x 64 x 3 x 3, fan_out 576: std sqrt(2/576) = 0.0589 */
    gf_tensor *c = gf_module_tensor(ctx, m, "layer1.0.conv1.weight");
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < c->numel; i++) {
        s += gf_f32(c)[i];
        s2 += (double)gf_f32(c)[i] * gf_f32(c)[i];
    }
    double mean = s / (double)c->numel, sd = sqrt(s2 / (double)c->numel - mean * mean);
    CHECK_NEAR(sd, sqrt(2.0 / 576.0), 0.002);
    CHECK_NEAR(mean, 0.0, 0.002);
    gf_tensor *g = gf_module_tensor(ctx, m, "layer4.1.bn2.weight");
    gf_tensor *bb = gf_module_tensor(ctx, m, "layer4.1.bn2.bias");
    CHECK(g && bb && gf_f32(g)[0] == 1.0f && gf_f32(g)[511] == 1.0f && gf_f32(bb)[7] == 0.0f);
    /* the same seed, the same model */
    gf_rng_seed(&rng, 11);
    gf_module *again = gf_zoo_build(ctx, "resnet18", &p, &rng);
    gf_tensor *c2 = again ? gf_module_tensor(ctx, again, "layer1.0.conv1.weight") : NULL;
    CHECK(c2 && memcmp(c->data, c2->data, (size_t)c->numel * sizeof(float)) == 0);
    gf_module_free(again);
    /* any input size: the average pool is adaptive */
    int64_t xs[4] = {1, 1, 33, 47};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, xs);
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = (float)(i % 13) / 13.0f;
    gf_module_train(m, false);
    gf_tensor *y = gf_module_forward(ctx, m, x);
    CHECK(y && y->ndim == 2 && y->shape[0] == 1 && y->shape[1] == 10);
    gf_ctx_reset(ctx);
    gf_tensor_free(x);
    /* "freeze all but the last N" counts torchvision's blocks */
    gf_transfer_blocks *blk = gf_transfer_blocks_of(ctx, m);
    CHECK(blk && blk->n == 2 + 8 + 1 && strcmp(blk->path[2], "layer1.0") == 0 &&
          strcmp(blk->path[10], "fc") == 0);
    gf_transfer_blocks_free(blk);
    gf_module_free(m);
    const char *const *names = gf_zoo_names();
    int found = 0;
    for (; *names; names++)
        found += strcmp(*names, "resnet18") == 0 || strcmp(*names, "resnet34") == 0 ||
                 strcmp(*names, "resnet50") == 0;
    CHECK(found == 3);
    /* a huge image is refused before anything is allocated, naming the model */
    p.height = p.width = 1 << 15;
    EXPECT_ERR(ctx, gf_zoo_build(ctx, "resnet50", &p, NULL), GF_ERR_INVALID, "resnet50",
               "limit activation");
    gf_ctx_clear_error(ctx);
}

int main(void) {
    const char *s = getenv("GRAFT_SOURCE_DIR");
    snprintf(src, sizeof src, "%s", s ? s : ".");
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_bottleneck(ctx);
    test_init_and_shapes(ctx);
    test_spec_bottleneck(ctx);
    test_torchvision_parity(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_resnet_zoo");
}
