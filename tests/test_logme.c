/* Ranking without training: gf_transfer_logme and gf_transfer_hscore against the authors'
 * numpy code and gf_transfer_spearman against scipy (tests/fixtures/gen_logme.py writes
 * logme_ref.json), then properties: a score rises as the features carry the label, does not
 * depend on the order of the examples, and bad arguments are errors naming what was wrong. */
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "testutil.h"

static char src[1024];

/* One fixture case's features and labels (new arrays). */
static int64_t read_case(const cJSON *c, float **f, int64_t **y, int64_t *d, int *k) {
    int64_t n = (int64_t)cJSON_GetObjectItem(c, "n")->valuedouble;
    *d = (int64_t)cJSON_GetObjectItem(c, "d")->valuedouble;
    *k = cJSON_GetObjectItem(c, "classes")->valueint;
    *f = malloc(sizeof **f * (size_t)(n * *d));
    *y = malloc(sizeof **y * (size_t)n);
    int64_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "features")) (*f)[i++] = (float)v->valuedouble;
    CHECK(i == n * *d);
    i = 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "labels")) (*y)[i++] = (int64_t)v->valuedouble;
    CHECK(i == n);
    return n;
}

static void test_reference(gf_ctx *ctx) {
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/logme_ref.json", src);
    cJSON *root = test_read_json(path);
    CHECK(root != NULL);
    if (!root) return;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        float *f;
        int64_t *y, d;
        int k;
        int64_t n = read_case(c, &f, &y, &d, &k);
        double lm = NAN, hs = NAN;
        CHECK(gf_transfer_logme(ctx, f, n, d, y, k, &lm) == GF_OK);
        double want = cJSON_GetObjectItem(c, "logme")->valuedouble;
        CHECK_NEAR(lm, want, 1e-9 + 1e-9 * fabs(want));
        const cJSON *h = cJSON_GetObjectItem(c, "hscore");
        if (cJSON_IsNumber(h)) {
            CHECK(gf_transfer_hscore(ctx, f, n, d, y, k, &hs) == GF_OK);
            CHECK_NEAR(hs, h->valuedouble, 1e-8 + 1e-8 * fabs(h->valuedouble));
        }
        free(f);
        free(y);
    }
    const cJSON *sp = cJSON_GetObjectItem(root, "spearman");
    double a[16], b[16];
    int na = 0, nb = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(sp, "a")) a[na++] = c->valuedouble;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(sp, "b")) b[nb++] = c->valuedouble;
    CHECK(na == nb);
    CHECK_NEAR(gf_transfer_spearman(a, b, na), cJSON_GetObjectItem(sp, "rho")->valuedouble, 1e-12);
    cJSON_Delete(root);
}

/* Two classes, d features of which the first carries the label with weight w. */
static void make(float *f, int64_t *y, int64_t n, int64_t d, float w, uint64_t seed) {
    gf_rng rng;
    gf_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++) {
        y[i] = i % 2;
        for (int64_t j = 0; j < d; j++) f[i * d + j] = gf_rng_normal(&rng);
        f[i * d] += w * (y[i] ? 1.0f : -1.0f);
    }
}

static void test_properties(gf_ctx *ctx) {
    enum { N = 200, D = 5 };
    float f[N * D], g[N * D];
    int64_t y[N], yg[N];
    double prev_l = -INFINITY, prev_h = -INFINITY;
    for (int s = 0; s < 4; s++) {
        make(f, y, N, D, 0.75f * (float)s, 7);
        double l, h;
        CHECK(gf_transfer_logme(ctx, f, N, D, y, 2, &l) == GF_OK);
        CHECK(gf_transfer_hscore(ctx, f, N, D, y, 2, &h) == GF_OK);
        CHECK(l > prev_l && h > prev_h && isfinite(l) && isfinite(h));
        prev_l = l, prev_h = h;
    }
    /* the examples in reverse order: the same scores */
    for (int64_t i = 0; i < N; i++) {
        memcpy(g + i * D, f + (N - 1 - i) * D, sizeof(float) * D);
        yg[i] = y[N - 1 - i];
    }
    double l2, h2;
    CHECK(gf_transfer_logme(ctx, g, N, D, yg, 2, &l2) == GF_OK);
    CHECK(gf_transfer_hscore(ctx, g, N, D, yg, 2, &h2) == GF_OK);
    CHECK_NEAR(l2, prev_l, 1e-9);
    CHECK_NEAR(h2, prev_h, 1e-9);
    double r[4] = {1, 2, 3, 4}, q[4] = {10, 20, 30, 40}, c[4] = {1, 1, 1, 1};
    CHECK_NEAR(gf_transfer_spearman(r, q, 4), 1.0, 1e-12);
    CHECK(isnan(gf_transfer_spearman(r, c, 4)));
}

static void expect(gf_ctx *ctx, gf_status st, const char *want) {
    CHECK(st == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), want) != NULL);
    if (!strstr(gf_ctx_error(ctx), want))
        fprintf(stderr, "message '%s' lacks '%s'\n", gf_ctx_error(ctx), want);
    gf_ctx_clear_error(ctx);
}

static void test_errors(gf_ctx *ctx) {
    float f[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    int64_t y[4] = {0, 1, 0, 1}, bad[4] = {0, 1, 2, 1};
    double out;
    expect(ctx, gf_transfer_logme(ctx, NULL, 4, 2, y, 2, &out), "features is NULL");
    expect(ctx, gf_transfer_logme(ctx, f, 4, 2, bad, 2, &out), "example 2 has label 2");
    expect(ctx, gf_transfer_hscore(ctx, f, 4, 2, y, 1, &out), "1 classes");
    expect(ctx, gf_transfer_hscore(ctx, f, 1, 2, y, 2, &out), "n 1");
    f[5] = NAN;
    expect(ctx, gf_transfer_logme(ctx, f, 4, 2, y, 2, &out), "feature 1 of example 2");
}

int main(void) {
    const char *s = getenv("GRAFT_SOURCE_DIR");
    snprintf(src, sizeof src, "%s", s ? s : ".");
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_reference(ctx);
    test_properties(ctx);
    test_errors(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_logme");
}
