/* ONNX export (gf_onnx_export) read back by graft's importer: for zoo models (mlp, lenet,
 * cnn-small, kws, resnet-mini) and specs that use every exported layer type (grouped, strided
 * and dilated convolutions, BatchNorm with non-trivial running statistics, pooling, Dropout,
 * LayerNorm, the activations, Bottleneck, Embedding), the loaded file's output equals the
 * module's own forward in evaluation mode on a batch of another size than the export's, and its
 * tensors carry the module's state_dict names. Also: the file written atomically, the symbolic
 * batch, the memory variant, and the refusals (an LSTM on an unbatched sequence named by path
 * and type, nothing written;
 * a bad sample shape). ONNX Runtime's and PyTorch's outputs on exported files are checked by
 * test_onnx_export_ort.c and test_onnx_export_torch.c. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/graft.h"
#include "testutil.h"

static char dir[256];

/* Every parameter and buffer of m filled with small deterministic values (variances > 0), so
 * BatchNorm's statistics matter. */
static void fill_state(gf_ctx *ctx, gf_module *m, uint64_t seed) {
    gf_named_tensors *nt = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    gf_rng rng;
    gf_rng_seed(&rng, seed);
    for (int i = 0; nt && i < nt->n; i++) {
        gf_tensor *t = nt->items[i].tensor;
        if (t->dtype != GF_F32) continue;
        const bool var = strstr(nt->items[i].name, "running_var") != NULL;
        for (int64_t k = 0; k < t->numel; k++) {
            float u = gf_rng_uniform(&rng) - 0.5f;
            gf_f32(t)[k] = var ? 0.5f + u : u * (t->ndim > 1 ? 0.8f : 0.4f);
        }
    }
    gf_named_tensors_free(nt);
}

static gf_tensor *random_input(gf_ctx *ctx, int64_t batch, int ndim, const int64_t *sample,
                               float ids) {
    int64_t shape[GF_MAX_DIMS] = {batch};
    for (int i = 0; i < ndim; i++) shape[i + 1] = sample[i];
    gf_tensor *x = gf_empty(ctx, GF_F32, ndim + 1, shape);
    for (int64_t i = 0; i < x->numel; i++)
        gf_f32(x)[i] = ids > 0 ? (float)((i * 7 + 3) % (int64_t)ids)
                               : (float)(((i * 37 + 11) % 101) - 50) / 25.0f;
    return x;
}

/* Is every state_dict name of m but num_batches_tracked a tensor of the loaded model, and the
 * other way round? */
static void check_names(gf_ctx *ctx, const gf_module *m, const gf_module *back, const char *what) {
    gf_named_tensors *a = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    gf_named_tensors *b = gf_module_named_tensors(ctx, back, GF_STATE_ALL);
    int want = 0, found = 0;
    for (int i = 0; a && i < a->n; i++) {
        if (strstr(a->items[i].name, "num_batches_tracked")) continue;
        want++;
        const gf_tensor *t = gf_module_tensor(NULL, back, a->items[i].name);
        if (t && t->numel == a->items[i].tensor->numel) found++;
        else fprintf(stderr, "%s: %s is not in the exported file\n", what, a->items[i].name);
    }
    CHECK(found == want);
    /* the importer makes parameters of every weight; the ones and zeros a non-affine
     * normalisation needs come from Constant nodes, named by node ("/4/Constant_4") */
    int extra = 0;
    for (int i = 0; b && i < b->n; i++)
        if (!gf_module_tensor(NULL, m, b->items[i].name) && !strchr(b->items[i].name, '/')) {
            fprintf(stderr, "%s: the file has %s, which the module has not\n", what,
                    b->items[i].name);
            extra++;
        }
    CHECK(b && extra == 0);
    gf_named_tensors_free(a);
    gf_named_tensors_free(b);
}

static double max_diff(const gf_tensor *a, const gf_tensor *b) {
    if (!a || !b || a->numel != b->numel) return INFINITY;
    double d = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double e = fabs((double)gf_get_f32(a, i) - (double)gf_get_f32(b, i));
        if (!(e <= d)) d = e;
    }
    return d;
}

/* Exports m for the sample shape, loads the file back and compares outputs on a batch of 3. */
static void round_trip(gf_ctx *ctx, gf_module *m, const char *what, int ndim,
                       const int64_t *sample, float ids) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.onnx", dir, what);
    fill_state(ctx, m, 7);
    gf_module_train(m, false);
    gf_status st = gf_onnx_export(ctx, m, ndim, sample, path, NULL);
    CHECK(st == GF_OK);
    if (st != GF_OK) {
        fprintf(stderr, "%s: %s\n", what, gf_ctx_error(ctx));
        gf_ctx_clear_error(ctx);
        return;
    }
    gf_module *back = gf_onnx_load(ctx, path, NULL);
    CHECK(back != NULL);
    if (!back) {
        fprintf(stderr, "%s: %s\n", what, gf_ctx_error(ctx));
        gf_ctx_clear_error(ctx);
        return;
    }
    const gf_onnx_value_info *in = gf_onnx_input(back, 0);
    CHECK(in && !strcmp(in->name, "input") && in->ndim == ndim + 1 && in->dims[0] == -1 &&
          in->dim_names[0] && !strcmp(in->dim_names[0], "batch"));
    CHECK(!strcmp(gf_onnx_output(back, 0)->name, "output"));
    check_names(ctx, m, back, what);
    gf_ctx_set_grad_enabled(ctx, false);
    gf_tensor *x = random_input(ctx, 3, ndim, sample, ids);
    gf_tensor *want = gf_module_forward(ctx, m, x), *got = gf_module_forward(ctx, back, x);
    const double d = max_diff(want, got);
    printf("%-14s max |graft - graft(onnx)| = %.3g over %lld values\n", what, d,
           want ? (long long)want->numel : 0LL);
    CHECK(d <= 2e-5);
    gf_ctx_set_grad_enabled(ctx, true);
    gf_module_free(back);
    gf_ctx_reset(ctx);
}

static void zoo_case(gf_ctx *ctx, const char *name, int c, int h, int w) {
    gf_zoo_params p = gf_zoo_default_params();
    p.in_channels = c, p.height = h, p.width = w, p.num_classes = 5;
    p.hidden[0] = 24, p.hidden[1] = 12;
    gf_module *m = gf_zoo_build(ctx, name, &p, NULL);
    CHECK(m != NULL);
    if (!m) return;
    const int64_t sample[3] = {c, h, w};
    round_trip(ctx, m, name, 3, sample, 0);
    gf_module_free(m);
}

static void spec_case(gf_ctx *ctx, const char *what, const char *json, int ndim,
                      const int64_t *sample, float ids) {
    gf_spec_params sp = gf_spec_default_params();
    sp.in_ndim = ndim;
    memcpy(sp.in_shape, sample, sizeof(int64_t) * (size_t)ndim);
    gf_module *m = gf_spec_parse(ctx, json, strlen(json), &sp, NULL);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "%s: %s\n", what, gf_ctx_error(ctx));
        gf_ctx_clear_error(ctx);
        return;
    }
    round_trip(ctx, m, what, ndim, sample, ids);
    gf_module_free(m);
}

static const char *const conv_spec =
    "{\"type\": \"sequential\", \"children\": ["
    "{\"type\": \"conv2d\", \"in\": 2, \"out\": 6, \"kernel\": 3, \"padding\": 1},"
    "{\"type\": \"batchnorm2d\", \"features\": 6},"
    "{\"type\": \"leakyrelu\", \"negative_slope\": 0.1},"
    "{\"type\": \"conv2d\", \"in\": 6, \"out\": 6, \"kernel\": 3, \"stride\": 2, \"padding\": 2,"
    " \"dilation\": 2, \"groups\": 3, \"bias\": false},"
    "{\"type\": \"batchnorm2d\", \"features\": 6, \"affine\": false},"
    "{\"type\": \"elu\", \"alpha\": 0.7},"
    "{\"type\": \"maxpool2d\", \"kernel\": 3, \"stride\": 2, \"padding\": 1},"
    "{\"type\": \"conv2d\", \"in\": 6, \"out\": 4, \"kernel\": [1, 3], \"padding\": [0, 1]},"
    "{\"type\": \"silu\"},"
    "{\"type\": \"avgpool2d\", \"kernel\": 2, \"stride\": 1, \"padding\": 1},"
    "{\"type\": \"adaptiveavgpool2d\", \"output\": 2},"
    "{\"type\": \"flatten\"},"
    "{\"type\": \"dropout\", \"p\": 0.5},"
    "{\"type\": \"linear\", \"in\": 16, \"out\": 12},"
    "{\"type\": \"batchnorm1d\", \"features\": 12},"
    "{\"type\": \"gelu\"},"
    "{\"type\": \"linear\", \"in\": 12, \"out\": 10},"
    "{\"type\": \"gelu\", \"approximate\": \"tanh\"},"
    "{\"type\": \"layernorm\", \"shape\": 10},"
    "{\"type\": \"softplus\", \"beta\": 2, \"threshold\": 1},"
    "{\"type\": \"linear\", \"in\": 10, \"out\": 8, \"bias\": false},"
    "{\"type\": \"tanh\"}, {\"type\": \"identity\"},"
    "{\"type\": \"linear\", \"in\": 8, \"out\": 6}, {\"type\": \"softplus\"},"
    "{\"type\": \"sigmoid\"}, {\"type\": \"linear\", \"in\": 6, \"out\": 3},"
    "{\"type\": \"logsoftmax\", \"dim\": 1}]}";

static const char *const block_spec =
    "{\"type\": \"container\", \"name\": \"Net\", \"children\": {"
    "\"stem\": {\"type\": \"conv2d\", \"in\": 3, \"out\": 8, \"kernel\": 3, \"padding\": 1},"
    "\"block\": {\"type\": \"bottleneck\", \"in\": 8, \"out\": 4, \"stride\": 2},"
    "\"basic\": {\"type\": \"basicblock\", \"in\": 16, \"out\": 16, \"stride\": 1},"
    "\"pool\": {\"type\": \"adaptiveavgpool2d\", \"output\": 1},"
    "\"flat\": {\"type\": \"flatten\"},"
    "\"fc\": {\"type\": \"linear\", \"in\": 16, \"out\": 4},"
    "\"soft\": {\"type\": \"softmax\", \"dim\": -1}}}";

/* Conv1d over [C, L], LayerNorm over two axes, Flatten of the last two axes only. */
static const char *const seq_spec =
    "{\"type\": \"sequential\", \"children\": ["
    "{\"type\": \"conv1d\", \"in\": 3, \"out\": 4, \"kernel\": 3, \"stride\": 2, \"padding\": 1},"
    "{\"type\": \"layernorm\", \"shape\": [4, 5], \"elementwise_affine\": false},"
    "{\"type\": \"relu\"},"
    "{\"type\": \"linear\", \"in\": 5, \"out\": 6},"
    "{\"type\": \"flatten\", \"start_dim\": 1, \"end_dim\": 2},"
    "{\"type\": \"linear\", \"in\": 24, \"out\": 2}]}";

static const char *const embed_spec =
    "{\"type\": \"sequential\", \"children\": ["
    "{\"type\": \"embedding\", \"num_embeddings\": 11, \"embedding_dim\": 4, \"padding_idx\": 0},"
    "{\"type\": \"flatten\"}, {\"type\": \"linear\", \"in\": 24, \"out\": 3}]}";

static void test_models(gf_ctx *ctx) {
    zoo_case(ctx, "mlp", 1, 8, 8);
    zoo_case(ctx, "lenet", 1, 16, 16);
    zoo_case(ctx, "cnn-small", 1, 12, 12);
    zoo_case(ctx, "kws", 1, 16, 12);
    zoo_case(ctx, "resnet-mini", 3, 16, 16);
    zoo_case(ctx, "resnet18", 3, 32, 32);
    spec_case(ctx, "spec-layers", conv_spec, 3, (const int64_t[]){2, 10, 11}, 0);
    spec_case(ctx, "spec-blocks", block_spec, 3, (const int64_t[]){3, 10, 10}, 0);
    spec_case(ctx, "spec-seq", seq_spec, 2, (const int64_t[]){3, 10}, 0);
    spec_case(ctx, "spec-embed", embed_spec, 1, (const int64_t[]){6}, 11);
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_refusals(gf_ctx *ctx) {
    char path[512];
    snprintf(path, sizeof path, "%s/refused.onnx", dir);
    gf_nn_rnn_params rp = gf_nn_rnn_default_params(4, 5);
    gf_module *seq = gf_nn_sequential(ctx);
    gf_module_append(ctx, seq, gf_nn_linear(ctx, NULL, 4, 4, true));
    gf_module_append(ctx, seq, gf_nn_lstm(ctx, NULL, &rp));
    /* an LSTM on [N, 4]: an unbatched sequence [T, 4] to graft, which ONNX's LSTM has not */
    const int64_t sample[1] = {4};
    gf_ctx_clear_error(ctx);
    CHECK(gf_onnx_export(ctx, seq, 1, sample, path, NULL) != GF_OK);
    CHECK(strstr(gf_ctx_error(ctx), "module 1 (LSTM)") != NULL);
    CHECK(strstr(gf_ctx_error(ctx), "unbatched") != NULL);
    CHECK(strstr(gf_ctx_error(ctx), path) != NULL);
    CHECK(!exists(path));
    /* a bad sample shape */
    size_t size = 1;
    const int64_t bad[2] = {3, 0};
    EXPECT_ERR(ctx, gf_onnx_export_memory(ctx, seq, 2, bad, NULL, &size), GF_ERR_INVALID,
               "sample dimension 1 is 0");
    /* the linear alone exports; a wrong width fails on the sample, naming the layer */
    gf_module *lin = gf_module_detach(ctx, seq, "0");
    EXPECT_ERR(ctx, gf_onnx_export_memory(ctx, lin, 1, (const int64_t[]){5}, NULL, &size),
               GF_ERR_INVALID, "module (root) (Linear)", "does not run on the sample");
    gf_ctx_clear_error(ctx);
    void *buf = gf_onnx_export_memory(ctx, lin, 1, (const int64_t[]){4}, NULL, &size);
    CHECK(buf && size > 0);
    gf_module *back = buf ? gf_onnx_load_memory(ctx, buf, size, "memory", NULL) : NULL;
    CHECK(back && gf_module_tensor(NULL, back, "weight") && gf_module_tensor(NULL, back, "bias"));
    gf_module_free(back);
    free(buf);
    /* a fixed batch and other names */
    gf_onnx_export_options eo = gf_onnx_export_default_options();
    eo.batch = 2, eo.input_name = "x", eo.output_name = "logits";
    buf = gf_onnx_export_memory(ctx, lin, 1, (const int64_t[]){4}, &eo, &size);
    back = buf ? gf_onnx_load_memory(ctx, buf, size, "memory", NULL) : NULL;
    CHECK(back && !strcmp(gf_onnx_input(back, 0)->name, "x") &&
          gf_onnx_input(back, 0)->dims[0] == 2 && !strcmp(gf_onnx_output(back, 0)->name, "logits"));
    gf_module_free(back);
    free(buf);
    /* the old file stays when an export fails */
    CHECK(gf_onnx_export(ctx, lin, 1, (const int64_t[]){4}, path, NULL) == GF_OK);
    struct stat before, after;
    CHECK(stat(path, &before) == 0);
    CHECK(gf_onnx_export(ctx, seq, 1, sample, path, NULL) != GF_OK);
    CHECK(stat(path, &after) == 0 && after.st_size == before.st_size);
    gf_ctx_clear_error(ctx);
    gf_module_free(lin);
    gf_module_free(seq);
}

int main(void) {
    if (!gf_onnx_available()) {
        printf("test_onnx_export: skipped (built without ONNX support)\n");
        return 77;
    }
    snprintf(dir, sizeof dir, "/tmp/graft-onnx-export-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    test_models(ctx);
    test_refusals(ctx);
    gf_ctx_free(ctx);
    test_rm_tree(dir);
    return test_finish("test_onnx_export");
}
