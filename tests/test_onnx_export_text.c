/* ONNX export of the text models: the zoo's lstm, gru, transformer, lstm-tagger and
 * embedding-bag, text classifiers with deeper encoders (2-layer LSTM, 2-layer bidirectional
 * GRU, a pre-norm GELU Transformer with learned positions and a final norm, a causal post-norm
 * one), and Sequentials of an Embedding, a bidirectional LSTM or a MultiheadAttention, SeqPool
 * and a Linear on float ids (no lengths there: every step counts), built here from fixed seeds,
 * on a batch of token ids padded to 8 steps with lengths 8, 5, 1, 3 and 0 (padding only):
 *   graft -> ONNX (gf_onnx_export) -> graft (gf_onnx_load, int64 ids)   == graft, 1e-5
 *   graft -> ONNX -> ONNX Runtime                                      == graft, 1e-4 relative
 * (tests/fixtures/onnx_export/text_ort_outputs.json, written by gen_onnx_export_ort.sh).
 * Usage: test_onnx_export_text                  the checks above
 *        test_onnx_export_text --export DIR     writes DIR/<model>.onnx and DIR/text_input.json
 *        test_onnx_export_text --ort FILE       ONNX Runtime's outputs from FILE instead */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "testutil.h"

#define N_EX 5
#define STEPS 8
#define VOCAB 40
#define CLASSES 3

static const int lengths[N_EX] = {8, 5, 1, 3, 0};

static const char *const names[] = {"zoo-lstm",        "zoo-gru",     "zoo-transformer",
                                    "zoo-lstm-tagger", "lstm-deep",   "gru-deep",
                                    "transformer-pre", "transformer-causal", "zoo-embedding-bag",
                                    "seq-lstm",        "seq-attention"};
/* the models from seq-lstm on are Sequentials on float ids: no lengths, every step counts */
#define FIRST_SEQUENTIAL 9
#define N_MODELS (int)(sizeof names / sizeof names[0])

static gf_module *rnn_classifier(gf_ctx *ctx, gf_rng *rng, bool lstm, int layers, bool bidir,
                                 gf_nn_seq_pool_mode pool) {
    gf_nn_rnn_params p = gf_nn_rnn_default_params(16, 12);
    p.num_layers = layers;
    p.bidirectional = bidir;
    p.batch_first = true;
    return gf_nn_text_classifier(ctx, gf_nn_embedding(ctx, rng, VOCAB, 16, 0),
                                 lstm ? gf_nn_lstm(ctx, rng, &p) : gf_nn_gru(ctx, rng, &p),
                                 gf_nn_seq_pool(ctx, pool, true),
                                 gf_nn_linear(ctx, rng, bidir ? 24 : 12, CLASSES, true));
}

static gf_module *transformer_pre(gf_ctx *ctx, gf_rng *rng) {
    gf_nn_transformer_params p = gf_nn_transformer_default_params(16, 2);
    p.dim_feedforward = 32;
    p.activation = GF_NN_ACT_GELU;
    p.norm_first = true;
    p.batch_first = true;
    gf_module *m = gf_nn_text_classifier(ctx, gf_nn_embedding(ctx, rng, VOCAB, 16, 0),
                                         gf_nn_transformer_encoder(ctx, rng, &p, 2, true),
                                         gf_nn_seq_pool(ctx, GF_NN_SEQ_POOL_FIRST, true),
                                         gf_nn_linear(ctx, rng, 16, CLASSES, true));
    if (m && gf_module_add(ctx, m, "pos", gf_nn_learned_positional_embedding(
                                              ctx, rng, STEPS, 16, 0.1f, true)) != GF_OK) {
        gf_module_free(m);
        return NULL;
    }
    return m;
}

/* post-norm ReLU layers with a causal mask, sinusoidal positions, the last real step */
static gf_module *transformer_causal(gf_ctx *ctx, gf_rng *rng) {
    gf_nn_transformer_params p = gf_nn_transformer_default_params(16, 4);
    p.dim_feedforward = 24;
    p.causal = true;
    p.batch_first = true;
    gf_module *m = gf_nn_text_classifier(ctx, gf_nn_embedding(ctx, rng, VOCAB, 16, 0),
                                         gf_nn_transformer_encoder(ctx, rng, &p, 1, false),
                                         gf_nn_seq_pool(ctx, GF_NN_SEQ_POOL_LAST, true),
                                         gf_nn_linear(ctx, rng, 16, CLASSES, true));
    if (m && gf_module_add(ctx, m, "pos", gf_nn_positional_encoding(ctx, 16, 0.1f, 32, true)) !=
                 GF_OK) {
        gf_module_free(m);
        return NULL;
    }
    return m;
}

/* Sequential(Embedding, LSTM (bidirectional) or MultiheadAttention, SeqPool, Linear). */
static gf_module *sequential(gf_ctx *ctx, gf_rng *rng, bool lstm) {
    gf_module *m = gf_nn_sequential(ctx);
    gf_module_append(ctx, m, gf_nn_embedding(ctx, rng, VOCAB, 16, 0));
    gf_nn_rnn_params p = gf_nn_rnn_default_params(16, 8);
    p.batch_first = true;
    p.bidirectional = true;
    gf_module_append(ctx, m, lstm ? gf_nn_lstm(ctx, rng, &p)
                                  : gf_nn_multihead_attention(ctx, rng, 16, 2, 0.0f, true, true));
    gf_module_append(ctx, m, gf_nn_seq_pool(ctx, lstm ? GF_NN_SEQ_POOL_MAX : GF_NN_SEQ_POOL_MEAN,
                                            true));
    gf_module_append(ctx, m, gf_nn_linear(ctx, rng, 16, CLASSES, true));
    if (m && gf_module_num_children(m) != 4) {
        gf_module_free(m);
        return NULL;
    }
    return m;
}

static gf_module *build(gf_ctx *ctx, int i) {
    gf_rng rng;
    gf_rng_seed(&rng, 1000 + (uint64_t)i);
    gf_module *m = NULL;
    if (i < 4 || i == 8) {
        gf_zoo_params zp = gf_zoo_default_params();
        zp.vocab_size = VOCAB;
        zp.seq_len = STEPS;
        zp.num_classes = CLASSES;
        static const char *const zoo[] = {"lstm", "gru", "transformer", "lstm-tagger"};
        m = gf_zoo_build(ctx, i == 8 ? "embedding-bag" : zoo[i], &zp, &rng);
    } else if (i == 4) {
        m = rnn_classifier(ctx, &rng, true, 2, false, GF_NN_SEQ_POOL_MAX);
    } else if (i == 5) {
        m = rnn_classifier(ctx, &rng, false, 2, true, GF_NN_SEQ_POOL_LAST);
    } else if (i == 6) {
        m = transformer_pre(ctx, &rng);
    } else if (i == 7) {
        m = transformer_causal(ctx, &rng);
    } else {
        m = sequential(ctx, &rng, i == 9);
    }
    if (m) gf_module_train(m, false);
    else fprintf(stderr, "%s: %s\n", names[i], gf_ctx_error(ctx));
    return m;
}

/* The batch: ids in [1, VOCAB) up to each length, 0 after; as float (graft) and int64 (ONNX). */
static void make_ids(gf_ctx *ctx, gf_tensor **xf, gf_tensor **xi) {
    const int64_t shape[2] = {N_EX, STEPS};
    *xf = gf_zeros(ctx, GF_F32, 2, shape);
    *xi = gf_zeros(ctx, GF_I64, 2, shape);
    uint64_t s = 12345;
    for (int i = 0; i < N_EX; i++)
        for (int t = 0; t < lengths[i]; t++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            const int64_t id = 1 + (int64_t)((s >> 33) % (VOCAB - 1));
            gf_f32(*xf)[i * STEPS + t] = (float)id;
            gf_i64(*xi)[i * STEPS + t] = id;
        }
}

static void check_model(gf_ctx *ctx, int i, const cJSON *ort, double *worst_back,
                        double *worst_ort) {
    gf_module *m = build(ctx, i);
    CHECK(m != NULL);
    if (!m) return;
    gf_tensor *xf, *xi;
    make_ids(ctx, &xf, &xi);
    gf_tensor *y = gf_module_forward(ctx, m, xf);
    const int64_t sample[1] = {STEPS};
    size_t size = 0;
    void *buf = y ? gf_onnx_export_memory(ctx, m, 1, sample, NULL, &size) : NULL;
    gf_module *back = buf ? gf_onnx_load_memory(ctx, buf, size, names[i], NULL) : NULL;
    gf_tensor *by = back ? gf_module_forward(ctx, back, i < FIRST_SEQUENTIAL ? xi : xf) : NULL;
    const double d_back = test_max_abs_diff(y, by);
    CHECK(d_back <= 1e-5);
    double d_ort = INFINITY;
    const cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(ort, "models"), names[i]);
    CHECK(o != NULL);
    if (o)
        CHECK(test_worst_vs_json(y, cJSON_GetObjectItem(o, "graft_onnx_output"), 1e-6, 1e-4,
                                 &d_ort) <= 1.0);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s: %s\n", names[i], gf_ctx_error(ctx));
    gf_ctx_clear_error(ctx);
    printf("%-16s max |graft(export) - graft| %.3g, |ORT(export) - graft| %.3g\n", names[i],
           d_back, d_ort);
    if (!(d_back <= *worst_back)) *worst_back = d_back;
    if (!(d_ort <= *worst_ort)) *worst_ort = d_ort;
    gf_module_free(back);
    free(buf);
    gf_module_free(m);
    gf_ctx_reset(ctx);
}

static int export_all(gf_ctx *ctx, const char *dir) {
    int failed = 0;
    char path[4200];
    for (int i = 0; i < N_MODELS; i++) {
        gf_module *m = build(ctx, i);
        const int64_t sample[1] = {STEPS};
        snprintf(path, sizeof path, "%s/%s.onnx", dir, names[i]);
        if (!m || gf_onnx_export(ctx, m, 1, sample, path, NULL) != GF_OK) {
            fprintf(stderr, "%s: %s\n", names[i], gf_ctx_error(ctx));
            failed = 1;
        }
        gf_module_free(m);
        gf_ctx_reset(ctx);
    }
    gf_tensor *xf, *xi;
    make_ids(ctx, &xf, &xi);
    snprintf(path, sizeof path, "%s/text_input.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f, "{\"shape\": [%d, %d], \"ids\": [", N_EX, STEPS);
    for (int64_t k = 0; k < xi->numel; k++)
        fprintf(f, "%s%lld", k ? ", " : "", (long long)gf_i64(xi)[k]);
    fprintf(f, "], \"models\": [");
    for (int i = 0; i < N_MODELS; i++) fprintf(f, "%s\"%s\"", i ? ", " : "", names[i]);
    fprintf(f, "], \"float_input\": [");
    for (int i = FIRST_SEQUENTIAL; i < N_MODELS; i++)
        fprintf(f, "%s\"%s\"", i > FIRST_SEQUENTIAL ? ", " : "", names[i]);
    fprintf(f, "]}\n");
    return fclose(f) == 0 ? failed : 1;
}

int main(int argc, char **argv) {
    if (!gf_onnx_available()) {
        printf("test_onnx_export_text: skipped (built without ONNX support)\n");
        return 77;
    }
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char ort_path[4200];
    snprintf(ort_path, sizeof ort_path, "%s/tests/fixtures/onnx_export/text_ort_outputs.json",
             src ? src : ".");
    if (argc == 3 && !strcmp(argv[1], "--ort")) snprintf(ort_path, sizeof ort_path, "%s", argv[2]);
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    gf_ctx_set_grad_enabled(ctx, false);
    int rc;
    if (argc == 3 && !strcmp(argv[1], "--export")) {
        rc = export_all(ctx, argv[2]);
    } else {
        cJSON *ort = test_read_json(ort_path);
        CHECK(ort != NULL);
        if (ort) printf("ONNX Runtime %s (%s)\n",
                        cJSON_GetStringValue(cJSON_GetObjectItem(ort, "onnxruntime")), ort_path);
        double wb = 0, wo = 0;
        for (int i = 0; i < N_MODELS; i++) check_model(ctx, i, ort, &wb, &wo);
        printf("all: max |graft(export) - graft| %.3g, max |ORT(export) - graft| %.3g\n", wb, wo);
        cJSON_Delete(ort);
        rc = test_finish("test_onnx_export_text");
    }
    gf_ctx_free(ctx);
    return rc;
}
