/* openWakeWord's melspectrogram.onnx and embedding_model.onnx (scripts/fetch-openwakeword.sh)
 * imported: they give ONNX Runtime's outputs (fixtures/openwakeword/, written by
 * gen_openwakeword.js with onnxruntime-node 1.30.0) within 1e-4 of each output's largest
 * value: the mel model on a one-second waveform, the embedding model on three windows of ONNX
 * Runtime's mel bands, and gf_speech_classifier's whole chain (graft's mel bands, windows,
 * embeddings) on the waveform in graft's [-1, 1] scale. Also: clips batched together give what
 * each gives alone, and the errors. Skipped (exit 77) when the models are not fetched. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graft/graft.h"

enum { N = 16000 };

/* The waveform of gen_openwakeword.js, on the int16 scale (integers). */
static void wave(float *x, int n) {
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < n; i++) {
        const double t = i / 16000.0;
        const double chirp = sin(2 * pi * (200 * t + 1400 * t * t));
        const double tone = sin(2 * pi * 440 * t);
        const double tick = (i % 1600) < 40 ? 1 : 0;
        x[i] = (float)round(6000 * chirp + 2500 * tone + 3000 * tick);
    }
}

/* Largest |got - ref| over the largest |ref|; prints both and the element-wise worst. */
static double rel_diff(const char *what, const float *got, const float *ref, int64_t n) {
    double dmax = 0, rmax = 0, elem = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - ref[i]);
        dmax = d > dmax ? d : dmax;
        rmax = fabs(ref[i]) > rmax ? fabs(ref[i]) : rmax;
        const double e = d / fmax(fabs(ref[i]), 1e-3);
        elem = e > elem ? e : elem;
    }
    const double r = dmax / (rmax > 0 ? rmax : 1);
    printf("%-28s max |diff| %.3g, largest |ref| %.4g: relative %.3g (element-wise %.3g)\n", what,
           dmax, rmax, r, elem);
    return r;
}

static gf_tensor *fixture(gf_ctx *ctx, const char *src, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/openwakeword/%s", src, name);
    gf_tensor *t = gf_npy_read(ctx, path);
    if (!t) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    return t;
}

static void test_mel(gf_ctx *ctx, const char *dir, const gf_tensor *ref) {
    char path[1200];
    snprintf(path, sizeof path, "%s/melspectrogram.onnx", dir);
    gf_module *mel = gf_onnx_load(ctx, path, NULL);
    CHECK(mel != NULL);
    if (!mel) return;
    const int64_t shape[2] = {1, N};
    gf_tensor *x = gf_empty(ctx, GF_F32, 2, shape);
    wave(gf_f32(x), N);
    gf_tensor *y = gf_module_forward(ctx, mel, x);
    CHECK(y && y->numel == ref->numel && y->ndim == 4 && y->shape[2] == 97);
    if (y && y->numel == ref->numel)
        CHECK(rel_diff("melspectrogram.onnx", gf_f32(y), gf_f32((gf_tensor *)ref), y->numel) < 1e-4);
    gf_module_free(mel);
}

/* Windows at frames 0, 8 and 16 of ONNX Runtime's mel bands, x / 10 + 2: [3, 76, 32, 1]. */
static gf_tensor *windows(gf_ctx *ctx, const gf_tensor *mel) {
    const int64_t shape[4] = {3, 76, 32, 1};
    gf_tensor *w = gf_empty(ctx, GF_F32, 4, shape);
    const float *m = gf_f32((gf_tensor *)mel);
    float *o = gf_f32(w);
    for (int k = 0; k < 3; k++)
        for (int f = 0; f < 76; f++)
            for (int b = 0; b < 32; b++)
                o[(k * 76 + f) * 32 + b] = m[(k * 8 + f) * 32 + b] / 10.0f + 2.0f;
    return w;
}

static void test_embedding(gf_ctx *ctx, const char *dir, const gf_tensor *mel, const gf_tensor *ref) {
    char path[1200];
    snprintf(path, sizeof path, "%s/embedding_model.onnx", dir);
    gf_module *emb = gf_onnx_load(ctx, path, NULL);
    CHECK(emb != NULL);
    if (!emb) return;
    gf_tensor *y = gf_module_forward(ctx, emb, windows(ctx, mel));
    CHECK(y && y->numel == 3 * 96 && y->ndim == 4 && y->shape[3] == 96);
    if (y && y->numel == ref->numel)
        CHECK(rel_diff("embedding_model.onnx", gf_f32(y), gf_f32((gf_tensor *)ref), y->numel) < 1e-4);
    gf_module_free(emb);
}

/* The whole chain on the waveform in [-1, 1]: the three windows' embeddings, in order. */
static void test_chain(gf_ctx *ctx, const char *dir, const gf_tensor *ref) {
    char path[1200];
    snprintf(path, sizeof path, "%s/embedding_model.onnx", dir);
    gf_speech_params p = gf_speech_default_params();
    p.samples = N;
    gf_speech_info info;
    gf_module *m = gf_speech_classifier(ctx, path, &p, NULL, &info);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "%s\n", gf_ctx_error(ctx));
        return;
    }
    CHECK(info.frames == 97 && info.windows == 3 && info.features == 288 && info.embedding == 96);
    CHECK(gf_module_child(m, "head") == NULL);
    CHECK(gf_module_param_count(gf_module_child(m, "mel"), true) == 0); /* frozen */
    const int64_t shape[3] = {2, 1, N};
    gf_tensor *x = gf_empty(ctx, GF_F32, 3, shape);
    float *v = gf_f32(x);
    wave(v, N);
    for (int i = 0; i < N; i++) {
        v[i] /= 32768.0f;
        v[N + i] = 0.01f * v[i]; /* a quiet copy: batched, it must not be clipped by the first */
    }
    gf_tensor *y = gf_module_forward(ctx, m, x);
    CHECK(y && y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 288);
    if (y && y->numel == 2 * ref->numel) {
        CHECK(rel_diff("waveform -> 3 embeddings", gf_f32(y), gf_f32((gf_tensor *)ref), 288) < 1e-4);
        gf_tensor *one = gf_module_forward(ctx, m, gf_slice(ctx, x, 0, 1, 2, 1));
        CHECK(one && one->numel == 288);
        if (one && one->numel == 288) /* the same up to the rounding of another batch size */
            CHECK(rel_diff("quiet clip, alone/batched", gf_f32(gf_contiguous(ctx, one)),
                           gf_f32(y) + 288, 288) < 1e-5);
    }
    gf_ctx_clear_error(ctx);
    EXPECT_ERR(ctx, gf_module_forward(ctx, m, gf_zeros(ctx, GF_F32, 3, (int64_t[]){1, 1, 100})),
               GF_ERR_SHAPE, "expected clips [N, 1, 16000]", "[1, 1, 100]");
    gf_module_free(m);
    p.samples = 8000; /* 47 frames: not one window */
    EXPECT_ERR(ctx, gf_speech_classifier(ctx, path, &p, NULL, NULL), GF_ERR_INVALID,
               "8000 samples gives 47 mel frames, fewer than one window of 76");
    p = gf_speech_default_params();
    p.mel_path = "/nonexistent/melspectrogram.onnx";
    EXPECT_ERR(ctx, gf_speech_classifier(ctx, path, &p, NULL, NULL), GF_ERR_IO,
               "/nonexistent/melspectrogram.onnx");
}

/* A head on the mean of the embeddings, and the defaults' clip (1.5 s, 9 windows). */
static void test_head(gf_ctx *ctx, const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/embedding_model.onnx", dir);
    gf_speech_params p = gf_speech_default_params();
    p.n_classes = 10;
    p.pool = GF_SPEECH_POOL_MEAN;
    gf_rng rng;
    gf_rng_seed(&rng, 1);
    gf_ctx_clear_error(ctx);
    gf_speech_info info;
    gf_module *m = gf_speech_classifier(ctx, path, &p, &rng, &info);
    CHECK(m != NULL);
    if (!m) return;
    printf("1.5 s: %lld mel frames, %lld windows\n", (long long)info.frames, (long long)info.windows);
    CHECK(info.frames == 147 && info.windows == 9 && info.features == 96);
    const gf_tensor *w = gf_module_tensor(ctx, m, "head.weight");
    CHECK(w && w->shape[0] == 10 && w->shape[1] == 96);
    gf_tensor *y = gf_module_forward(ctx, m, gf_zeros(ctx, GF_F32, 2, (int64_t[]){3, 24000}));
    CHECK(y && y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 10);
    gf_module_free(m);
}

int main(void) {
    char dir[1100], probe[1200];
    gf_speech_default_dir(dir, sizeof dir);
    snprintf(probe, sizeof probe, "%s/embedding_model.onnx", dir);
    if (!gf_onnx_available() || access(probe, R_OK) != 0) {
        printf("test_openwakeword: skipped: %s not found or no ONNX import (run "
               "scripts/fetch-openwakeword.sh)\n", probe);
        return 77;
    }
    const char *s = getenv("GRAFT_SOURCE_DIR");
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_tensor *mel = fixture(ctx, s ? s : ".", "mel.npy");
    gf_tensor *emb = fixture(ctx, s ? s : ".", "embedding.npy");
    CHECK(mel && emb);
    if (mel && emb) {
        test_mel(ctx, dir, mel);
        test_embedding(ctx, dir, mel, emb);
        test_chain(ctx, dir, emb);
        test_head(ctx, dir);
    }
    gf_tensor_free(mel);
    gf_tensor_free(emb);
    gf_ctx_free(ctx);
    return test_finish("test_openwakeword");
}
