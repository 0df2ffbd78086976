/* What graft probe puts before a candidate: gf_nn_input_adapter (the images fitted to a
 * model's input: grey repeated, colour averaged, a bilinear resize with half-pixel centres,
 * checked against the formula computed in double; nothing when the samples fit; refusals naming
 * both shapes) and gf_speech_forward_cuts (the stand-in speech models of
 * tests/fixtures/speech_standin: at the embedding's output it gives the classifier's pooled
 * embeddings, for every pooling; a cut inside is averaged per window then pooled; misuse
 * refused). */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"

/* out[i] of a half-pixel bilinear resize from n to m: the two sources and the weight of the
 * second (torch's align_corners=False, the source clamped at 0). */
static void src_of(int64_t i, int64_t n, int64_t m, int64_t *i0, int64_t *i1, double *l) {
    double s = ((double)i + 0.5) * (double)n / (double)m - 0.5;
    if (s < 0) s = 0;
    *i0 = (int64_t)floor(s);
    if (*i0 > n - 1) *i0 = n - 1;
    *i1 = *i0 + 1 < n ? *i0 + 1 : n - 1;
    *l = s - (double)*i0;
}

static void test_adapter_resize(gf_ctx *ctx) {
    const int64_t in[3] = {1, 4, 5}, want[3] = {3, 8, 6};
    gf_module *a = NULL;
    char note[128];
    CHECK(gf_nn_input_adapter(ctx, "m.onnx", in, want, true, &a, note, sizeof note) == GF_OK);
    CHECK(a != NULL);
    CHECK(strcmp(note, "1 -> 3 channels (repeated), 4x5 -> 8x6 (bilinear)") == 0);
    if (!a) return;
    gf_tensor *x = gf_empty(ctx, GF_F32, 4, (int64_t[]){2, 1, 4, 5});
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = (float)((i * 37) % 11) / 7.0f - 0.5f;
    gf_tensor *y = gf_module_forward(ctx, a, x);
    CHECK(y && y->ndim == 4 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 8 &&
          y->shape[3] == 6);
    if (y && y->numel == 2 * 3 * 8 * 6) {
        y = gf_contiguous(ctx, y);
        double worst = 0;
        for (int64_t b = 0; b < 2; b++)
            for (int64_t c = 0; c < 3; c++)
                for (int64_t h = 0; h < 8; h++)
                    for (int64_t w = 0; w < 6; w++) {
                        int64_t h0, h1, w0, w1;
                        double lh, lw;
                        src_of(h, 4, 8, &h0, &h1, &lh);
                        src_of(w, 5, 6, &w0, &w1, &lw);
                        const float *p = gf_f32(x) + b * 20;
                        double ref = (1 - lh) * ((1 - lw) * p[h0 * 5 + w0] + lw * p[h0 * 5 + w1]) +
                                     lh * ((1 - lw) * p[h1 * 5 + w0] + lw * p[h1 * 5 + w1]);
                        double d = fabs(ref - gf_f32(y)[((b * 3 + c) * 8 + h) * 6 + w]);
                        worst = d > worst ? d : worst;
                    }
        printf("adapter: 1x4x5 -> 3x8x6, largest difference from the formula %.3g\n", worst);
        CHECK(worst < 1e-6);
    }
    gf_module_free(a);
}

static void test_adapter_cases(gf_ctx *ctx) {
    gf_module *a = (gf_module *)1;
    char note[128] = "x";
    /* the samples fit (a size left open keeps the data's): no adapter */
    CHECK(gf_nn_input_adapter(ctx, "m", (int64_t[]){3, 28, 28}, (int64_t[]){3, 0, 0}, true,
                                    &a, note, sizeof note) == GF_OK);
    CHECK(a == NULL && note[0] == '\0');
    /* colour to one channel: the mean, the size kept */
    CHECK(gf_nn_input_adapter(ctx, "m", (int64_t[]){3, 2, 2}, (int64_t[]){1, -1, -1}, true,
                                    &a, note, sizeof note) == GF_OK);
    CHECK(a && strcmp(note, "3 -> 1 channels (averaged), 2x2 -> 2x2 (bilinear)") == 0);
    if (a) {
        gf_tensor *x = gf_empty(ctx, GF_F32, 4, (int64_t[]){1, 3, 2, 2});
        for (int i = 0; i < 12; i++) gf_f32(x)[i] = (float)i;
        gf_tensor *y = gf_contiguous(ctx, gf_module_forward(ctx, a, x));
        CHECK(y && y->numel == 4 && gf_f32(y)[0] == 4.0f && gf_f32(y)[3] == 7.0f);
        gf_module_free(a);
    }
    /* what cannot be fitted */
    gf_ctx_clear_error(ctx);
    CHECK(gf_nn_input_adapter(ctx, "m.onnx", (int64_t[]){2, 28, 28}, (int64_t[]){3, 32, 32},
                                    true, &a, note, sizeof note) == GF_ERR_INVALID);
    CHECK(a == NULL && strstr(gf_ctx_error(ctx), "m.onnx reads 3 channels, the data's samples are "
                                                 "[2, 28, 28]"));
    gf_ctx_clear_error(ctx);
    CHECK(gf_nn_input_adapter(ctx, "m", (int64_t[]){1, 28, 28}, (int64_t[]){224, 224, 3},
                                    true, &a, note, sizeof note) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_nn_input_adapter(ctx, "m", (int64_t[]){1, 28, 28}, (int64_t[]){3, 28, 28},
                                    false, &a, note, sizeof note) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
}

/* At the stand-in embedding's output ("output", [windows, 96] per clip) the cut classifier
 * gives what the classifier without cuts gives; at "mean" ([windows, 32]) the pooling over the
 * windows of that tensor. */
static void test_speech_cuts(gf_ctx *ctx, const char *dir) {
    char path[1200], mel[1200];
    snprintf(path, sizeof path, "%s/embedding_model.onnx", dir);
    snprintf(mel, sizeof mel, "%s/melspectrogram.onnx", dir);
    const gf_speech_pool pools[3] = {GF_SPEECH_POOL_FLAT, GF_SPEECH_POOL_MEAN, GF_SPEECH_POOL_MAX};
    gf_tensor *x = gf_empty(ctx, GF_F32, 3, (int64_t[]){2, 1, 16000});
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = 0.3f * sinf(0.01f * (float)(i * (i % 7 + 1)));
    for (int k = 0; k < 3; k++) {
        gf_speech_params p = gf_speech_default_params();
        p.samples = 16000;
        p.mel_path = mel;
        p.pool = pools[k];
        gf_speech_info info;
        gf_module *whole = gf_speech_classifier(ctx, path, &p, NULL, &info);
        const char *cuts[2] = {"mean", "output"};
        p.cuts = cuts;
        p.n_cuts = 2;
        gf_speech_info ci;
        gf_module *cut = gf_speech_classifier(ctx, path, &p, NULL, &ci);
        CHECK(whole && cut);
        if (!whole || !cut) {
            fprintf(stderr, "%s\n", gf_ctx_error(ctx));
            gf_module_free(whole), gf_module_free(cut);
            return;
        }
        CHECK(ci.windows == info.windows);
        gf_tensor *ref = gf_contiguous(ctx, gf_module_forward(ctx, whole, x)), *outs[2] = {0};
        CHECK(gf_speech_forward_cuts(ctx, cut, x, outs, 2) == GF_OK);
        const int64_t per = k == 0 ? info.windows : 1;
        CHECK(outs[1] && ref && outs[1]->shape[0] == 2 && outs[1]->shape[1] == 96 * per);
        CHECK(outs[0] && outs[0]->ndim == 2 && outs[0]->shape[1] == 32 * per);
        if (outs[1] && ref && outs[1]->numel == ref->numel) {
            gf_tensor *o = gf_contiguous(ctx, outs[1]);
            bool same = true;
            for (int64_t i = 0; i < ref->numel; i++) same = same && gf_f32(o)[i] == gf_f32(ref)[i];
            CHECK(same);
        }
        /* the plain forward is refused with cuts; cuts with a head are refused */
        gf_ctx_clear_error(ctx);
        EXPECT_ERR(ctx, gf_module_forward(ctx, cut, x), GF_ERR_STATE, "gf_speech_forward_cuts");
        gf_ctx_clear_error(ctx);
        CHECK(gf_speech_forward_cuts(ctx, whole, x, outs, 2) == GF_ERR_INVALID);
        gf_ctx_clear_error(ctx);
        p.n_classes = 3;
        gf_rng rng;
        gf_rng_seed(&rng, 0);
        EXPECT_ERR(ctx, gf_speech_classifier(ctx, path, &p, &rng, NULL), GF_ERR_INVALID,
                   "no head with them");
        gf_ctx_clear_error(ctx);
        gf_module_free(whole);
        gf_module_free(cut);
        gf_ctx_reset(ctx);
        x = gf_empty(ctx, GF_F32, 3, (int64_t[]){2, 1, 16000});
        for (int64_t i = 0; i < x->numel; i++)
            gf_f32(x)[i] = 0.3f * sinf(0.01f * (float)(i * (i % 7 + 1)));
    }
}

int main(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_adapter_resize(ctx);
    test_adapter_cases(ctx);
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/speech_standin", src ? src : ".");
    if (gf_onnx_available()) test_speech_cuts(ctx, dir);
    else printf("test_probe_inputs: no ONNX import: the speech cuts are not checked\n");
    gf_ctx_free(ctx);
    return test_finish("test_probe_inputs");
}
