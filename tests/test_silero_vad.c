/* Silero VAD's silero_vad_legacy.onnx (scripts/fetch-silero-vad.sh) imported: its sample-rate
 * and batch choices are If nodes decided at run time (the rate is an int64 input). Every case of
 * fixtures/silero_vad/ref.json (ONNX Runtime 1.30.0's outputs, written by gen_silero_vad.js) is
 * run through gf_onnx_load and gf_onnx_run and compared within 1e-5 + 1e-4 |ref|: batches of 1
 * and 2, 16 kHz (then_branch) and 8 kHz (else_branch), given and zero states, and a stream of
 * three steps that feeds hn and cn back. Also: gradients reach the taken branch's parameters
 * only, and a model whose If branch is missing, renamed or cut short is refused with an error.
 * Skipped (exit 77) when the model is not fetched. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graft/graft.h"

static double worst_abs, worst_rel;

/* The formulas of gen_silero_vad.js: a waveform of batch rows and a state. */
static void wave(float *x, int batch, int n, int sr, int seed) {
    const double pi = 3.14159265358979323846;
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < n; i++) {
            const double t = (double)i / sr;
            const double v = 9000 * sin(2 * pi * (150 + 40 * seed + 60 * b) * t) +
                             4000 * sin(2 * pi * (700 + 90 * seed) * t + b) +
                             2500 * (double)(((i * 7 + seed * 13 + b * 5) % 23) - 11) / 11;
            x[b * n + i] = (float)(round(v) / 32768);
        }
}

static void state(float *x, int batch, int seed, double phase) {
    for (int j = 0; j < 2 * batch * 64; j++)
        x[j] = seed < 0 ? 0.0f : (float)(round(3000 * sin(0.37 * j + seed + phase)) / 8192);
}

static double sum(const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}

/* Compares got with the JSON array ref: |d| <= 1e-5 + 1e-4 |ref| everywhere. Keeps the largest
 * |d|, the largest |d| over the output's largest |ref|, and the largest |d| / (1e-5 + 1e-4 |ref|)
 * (at most 1 to pass). */
static double worst_tol;

static void compare(const char *what, const gf_tensor *got, const cJSON *ref) {
    const int n = cJSON_GetArraySize(ref);
    CHECK(got && got->numel == n);
    if (!got || got->numel != n) return;
    double dmax = 0, rmax = 0, tol = 0;
    for (int i = 0; i < n; i++) {
        const double r = cJSON_GetArrayItem(ref, i)->valuedouble;
        const double d = fabs((double)gf_get_f32(got, i) - r);
        dmax = d > dmax ? d : dmax;
        rmax = fabs(r) > rmax ? fabs(r) : rmax;
        tol = fmax(tol, d / (1e-5 + 1e-4 * fabs(r)));
    }
    const double rel = dmax / (rmax > 0 ? rmax : 1);
    worst_abs = fmax(worst_abs, dmax), worst_rel = fmax(worst_rel, rel);
    worst_tol = fmax(worst_tol, tol);
    if (tol > 1) fprintf(stderr, "%s: max |diff| %.3g, relative %.3g\n", what, dmax, rel);
    CHECK(tol <= 1);
}

/* Inputs in the model's order (input, sr, h, c), by name. */
static int slot_of(const gf_module *m, const char *name) {
    for (int i = 0; i < gf_onnx_num_inputs(m); i++)
        if (!strcmp(gf_onnx_input(m, i)->name, name)) return i;
    return -1;
}

/* One step: the four inputs (arena), the three outputs. */
static bool step(gf_ctx *ctx, gf_module *m, const float *x, int batch, int n, int64_t sr,
                 const float *h, const float *c, gf_tensor **out) {
    gf_tensor *in[4];
    const int64_t xs[2] = {batch, n}, hs[3] = {2, batch, 64};
    in[slot_of(m, "input")] = gf_empty(ctx, GF_F32, 2, xs);
    in[slot_of(m, "sr")] = gf_empty(ctx, GF_I64, 0, NULL);
    in[slot_of(m, "h")] = gf_empty(ctx, GF_F32, 3, hs);
    in[slot_of(m, "c")] = gf_empty(ctx, GF_F32, 3, hs);
    memcpy(gf_f32(in[slot_of(m, "input")]), x, sizeof(float) * (size_t)(batch * n));
    gf_i64(in[slot_of(m, "sr")])[0] = sr;
    memcpy(gf_f32(in[slot_of(m, "h")]), h, sizeof(float) * (size_t)(2 * batch * 64));
    memcpy(gf_f32(in[slot_of(m, "c")]), c, sizeof(float) * (size_t)(2 * batch * 64));
    int got = gf_onnx_run(ctx, m, 4, in, out, 3);
    if (got != 3) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    return got == 3;
}

static void run_case(gf_ctx *ctx, gf_module *m, const cJSON *cs) {
    const char *name = cJSON_GetObjectItem(cs, "name")->valuestring;
    const int batch = cJSON_GetObjectItem(cs, "batch")->valueint;
    const int n = cJSON_GetObjectItem(cs, "samples")->valueint;
    const int sr = cJSON_GetObjectItem(cs, "sr")->valueint;
    const int seed = cJSON_GetObjectItem(cs, "seed")->valueint;
    const int st = cJSON_GetObjectItem(cs, "state")->valueint;
    const int steps = cJSON_GetObjectItem(cs, "steps")->valueint;
    const cJSON *sums = cJSON_GetObjectItem(cs, "input_sums"), *outs = cJSON_GetObjectItem(cs, "out");
    float *x = malloc(sizeof(float) * (size_t)(batch * n));
    float *h = malloc(sizeof(float) * (size_t)(2 * batch * 64));
    float *c = malloc(sizeof(float) * (size_t)(2 * batch * 64));
    state(h, batch, st, 0), state(c, batch, st, 1.5);
    CHECK(sum(h, 2 * batch * 64) == cJSON_GetObjectItem(cs, "h_sum")->valuedouble);
    CHECK(sum(c, 2 * batch * 64) == cJSON_GetObjectItem(cs, "c_sum")->valuedouble);
    for (int k = 0; k < steps; k++) {
        wave(x, batch, n, sr, seed + k);
        CHECK(sum(x, batch * n) == cJSON_GetArrayItem(sums, k)->valuedouble);
        gf_tensor *o[3] = {NULL, NULL, NULL};
        CHECK(step(ctx, m, x, batch, n, sr, h, c, o));
        if (!o[0]) break;
        const cJSON *ref = cJSON_GetArrayItem(outs, k);
        char what[128];
        snprintf(what, sizeof what, "%s step %d output", name, k);
        compare(what, o[0], cJSON_GetObjectItem(ref, "output"));
        compare("hn", o[1], cJSON_GetObjectItem(ref, "hn"));
        compare("cn", o[2], cJSON_GetObjectItem(ref, "cn"));
        CHECK(o[0]->ndim == 2 && o[0]->shape[0] == batch && o[0]->shape[1] == 1);
        CHECK(o[1]->ndim == 3 && o[1]->shape[1] == batch && o[1]->shape[2] == 64);
        gf_copy_out(o[1], h), gf_copy_out(o[2], c); /* the state goes on */
        printf("%-20s step %d: speech %.6f (ONNX Runtime %.6f)\n", name, k, gf_get_f32(o[0], 0),
               cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "output"), 0)->valuedouble);
        gf_ctx_reset(ctx);
    }
    free(x), free(h), free(c);
}

/* The sum of the output's gradient reaches the parameters of the branch the rate picks only. */
static void check_grads(gf_ctx *ctx, gf_module *m, int sr, const char *used, const char *unused) {
    gf_module_zero_grad(m);
    float x[512], h[128], c[128];
    wave(x, 1, 512, sr, 7);
    state(h, 1, 1, 0), state(c, 1, 1, 1.5);
    gf_tensor *o[3] = {NULL, NULL, NULL};
    CHECK(step(ctx, m, x, 1, 512, sr, h, c, o));
    CHECK(o[0] && gf_backward(ctx, gf_sum(ctx, o[0], NULL, 0, false)) == GF_OK);
    const gf_tensor *a = gf_module_tensor(ctx, m, used), *b = gf_module_tensor(ctx, m, unused);
    CHECK(a && b && a->requires_grad && b->requires_grad);
    double ga = 0, gb = 0;
    for (int64_t i = 0; a && a->grad && i < a->numel; i++) ga += fabs(gf_get_f32(a->grad, i));
    for (int64_t i = 0; b && b->grad && i < b->numel; i++) gb += fabs(gf_get_f32(b->grad, i));
    printf("sr %d: |grad| %s %.4g, %s %.4g\n", sr, used, ga, unused, gb);
    CHECK(ga > 0 && isfinite(ga) && gb == 0);
    gf_ctx_reset(ctx);
}

/* Offset of the first occurrence of s in data, or -1. */
static long find_bytes(const uint8_t *data, size_t n, const char *s) {
    const size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(data + i, s, k)) return (long)i;
    return -1;
}

/* A changed copy of the model either loads and runs (or fails to run) or is refused with an
 * error; it never crashes (the sanitizer build runs this too). */
static void load_changed(gf_ctx *ctx, const uint8_t *data, size_t n) {
    gf_ctx_clear_error(ctx);
    gf_module *m = gf_onnx_load_memory(ctx, data, n, "changed.onnx", NULL);
    if (!m) {
        CHECK(gf_ctx_status(ctx) != GF_OK && gf_ctx_error(ctx)[0]);
        return;
    }
    float x[512], h[128] = {0}, c[128] = {0};
    wave(x, 1, 512, 16000, 1);
    gf_tensor *o[3];
    if (slot_of(m, "input") >= 0 && slot_of(m, "sr") >= 0 && slot_of(m, "h") >= 0 &&
        slot_of(m, "c") >= 0 && gf_onnx_num_inputs(m) == 4 && !step(ctx, m, x, 1, 512, 16000, h, c, o))
        CHECK(gf_ctx_status(ctx) != GF_OK);
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    gf_module_free(m);
}

static void test_broken(gf_ctx *ctx, const char *path) {
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    const size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(n), *copy = malloc(n);
    CHECK(fread(data, 1, n, f) == n);
    fclose(f);
    const long at = find_bytes(data, n, "then_branch");
    CHECK(at > 0);
    if (at <= 0) return free(data), free(copy);
    /* the branch renamed: missing */
    memcpy(copy, data, n);
    copy[at + 10] = 'X';
    EXPECT_ERR(ctx, gf_onnx_load_memory(ctx, copy, n, "renamed.onnx", NULL), GF_ERR_FORMAT,
               "(If, opset 16)", "the graph attribute then_branch is missing");
    /* cut short inside the branch, and at points all through the file */
    EXPECT_ERR(ctx, gf_onnx_load_memory(ctx, data, (size_t)at + 4000, "short.onnx", NULL),
               GF_ERR_FORMAT, "short.onnx");
    for (int k = 1; k < 24; k++) load_changed(ctx, data, n * (size_t)k / 24);
    /* bytes of the branch changed, one at a time */
    for (int k = 0; k < 48; k++) {
        memcpy(copy, data, n);
        const size_t pos = (size_t)at + 12 + (size_t)k * 997 % 60000;
        if (pos >= n) continue;
        copy[pos] ^= (uint8_t)(0x55 + k);
        load_changed(ctx, copy, n);
    }
    free(data), free(copy);
}

int main(void) {
    char dir[1100], path[1200];
    const char *env = getenv("GRAFT_DATA_DIR"), *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (env && env[0]) snprintf(dir, sizeof dir, "%s", env);
    else if (xdg && xdg[0]) snprintf(dir, sizeof dir, "%s/graft", xdg);
    else snprintf(dir, sizeof dir, "%s/.cache/graft", home ? home : ".");
    snprintf(path, sizeof path, "%s/silero-vad/silero_vad_legacy.onnx", dir);
    if (!gf_onnx_available() || access(path, R_OK) != 0) {
        printf("test_silero_vad: skipped: %s not found or no ONNX import (run "
               "scripts/fetch-silero-vad.sh)\n", path);
        return 77;
    }
    const char *s = getenv("GRAFT_SOURCE_DIR");
    char ref_path[1200];
    snprintf(ref_path, sizeof ref_path, "%s/tests/fixtures/silero_vad/ref.json", s ? s : ".");
    cJSON *ref = test_read_json(ref_path);
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_module *m = gf_onnx_load(ctx, path, NULL);
    if (!m) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    CHECK(ref && m);
    if (ref && m) {
        CHECK(gf_onnx_num_inputs(m) == 4 && gf_onnx_num_outputs(m) == 3);
        CHECK(slot_of(m, "input") >= 0 && slot_of(m, "sr") >= 0 && slot_of(m, "h") >= 0 &&
              slot_of(m, "c") >= 0);
        const cJSON *cases = cJSON_GetObjectItem(ref, "cases");
        int rates[2] = {0, 0};
        for (int i = 0; i < cJSON_GetArraySize(cases); i++) {
            const cJSON *cs = cJSON_GetArrayItem(cases, i);
            rates[cJSON_GetObjectItem(cs, "sr")->valueint == 8000]++;
            run_case(ctx, m, cs);
        }
        CHECK(rates[0] > 0 && rates[1] > 0); /* both branches of the rate's If */
        printf("against ONNX Runtime %s: max |diff| %.3g, relative to the output's largest "
               "value %.3g, of the tolerance 1e-5 + 1e-4 |ref| %.3g\n",
               cJSON_GetObjectItem(ref, "onnxruntime")->valuestring, worst_abs, worst_rel,
               worst_tol);
        check_grads(ctx, m, 16000, "model.decoder.decoder.1.weight",
                    "model_8k.decoder.decoder.1.weight");
        check_grads(ctx, m, 8000, "model_8k.decoder.decoder.1.weight",
                    "model.decoder.decoder.1.weight");
        test_broken(ctx, path);
    }
    gf_module_free(m);
    cJSON_Delete(ref);
    gf_ctx_free(ctx);
    return test_finish("test_silero_vad");
}
