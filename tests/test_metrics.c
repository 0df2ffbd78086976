/* Metrics against scikit-learn: every value in fixtures/metrics_sklearn.json (written by
 * fixtures/gen_metrics.py) must match to 1e-6, the classification report byte for byte; plus
 * error paths. To add a case, add it to gen_metrics.py and rerun it: this file reads them all. */
#include "graft/graft.h"
#include "graft/metrics.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-6

static const cJSON *get(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static int64_t *i64_array(const cJSON *a, int64_t *n) {
    *n = cJSON_GetArraySize(a);
    int64_t *v = malloc((size_t)(*n > 0 ? *n : 1) * sizeof *v);
    int64_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) v[i++] = (int64_t)e->valuedouble;
    return v;
}

static float *f32_array(const cJSON *a, int64_t *n) {
    *n = cJSON_GetArraySize(a);
    float *v = malloc((size_t)(*n > 0 ? *n : 1) * sizeof *v);
    int64_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) v[i++] = (float)e->valuedouble;
    return v;
}

/* Compares unless the fixture holds null (a NaN/inf in sklearn). */
static int n_checked;
static void near(const char *what, const char *name, double got, const cJSON *want) {
    if (!cJSON_IsNumber(want)) return;
    n_checked++;
    if (fabs(got - want->valuedouble) > TOL)
        fprintf(stderr, "  %s / %s: got %.12g, sklearn %.12g\n", name, what, got,
                want->valuedouble);
    CHECK_NEAR(got, want->valuedouble, TOL);
}

static void classification_case(gf_ctx *ctx, const cJSON *c) {
    const char *name = get(c, "name")->valuestring;
    const int k = get(c, "k")->valueint;
    int64_t n, n2;
    int64_t *yt = i64_array(get(c, "y_true"), &n), *yp = i64_array(get(c, "y_pred"), &n2);
    CHECK(n == n2);
    gf_confusion *cm = gf_confusion_new(ctx, k);
    CHECK(cm != NULL);
    CHECK(gf_confusion_add(ctx, cm, yt, yp, n) == GF_OK);
    /* confusion matrix, rows true */
    const int64_t *cnt = gf_confusion_counts(cm);
    int r = 0, bad = 0;
    const cJSON *row, *e;
    cJSON_ArrayForEach(row, get(c, "confusion")) {
        int col = 0;
        cJSON_ArrayForEach(e, row) bad += cnt[r * k + col++] != (int64_t)e->valuedouble;
        r++;
    }
    CHECK(r == k && bad == 0);
    near("accuracy", name, gf_confusion_accuracy(ctx, cm), get(c, "accuracy"));
    near("balanced_accuracy", name, gf_confusion_balanced_accuracy(ctx, cm, false),
         get(c, "balanced_accuracy"));
    near("balanced_accuracy_adjusted", name, gf_confusion_balanced_accuracy(ctx, cm, true),
         get(c, "balanced_accuracy_adjusted"));
    /* per class with labels = range(k) */
    double *p = malloc((size_t)k * sizeof *p), *rc = malloc((size_t)k * sizeof *rc),
           *f = malloc((size_t)k * sizeof *f);
    int64_t *s = malloc((size_t)k * sizeof *s);
    for (int zd = 0; zd <= 1; zd++) {
        gf_prf_params pp = gf_prf_default_params();
        pp.zero_division = zd;
        pp.all_labels = true;
        CHECK(gf_confusion_prf(ctx, cm, &pp, p, rc, f, s) == GF_OK);
        const cJSON *per = get(get(c, "per_class"), zd ? "1" : "0");
        for (int j = 0; j < k; j++) {
            near("precision[j]", name, p[j], cJSON_GetArrayItem(get(per, "precision"), j));
            near("recall[j]", name, rc[j], cJSON_GetArrayItem(get(per, "recall"), j));
            near("f1[j]", name, f[j], cJSON_GetArrayItem(get(per, "f1"), j));
            CHECK(s[j] == (int64_t)cJSON_GetArrayItem(get(per, "support"), j)->valuedouble);
        }
    }
    /* averages: both label sets, both zero_division values, three betas */
    const cJSON *a;
    cJSON_ArrayForEach(a, get(c, "averages")) {
        gf_prf_params pp = gf_prf_default_params();
        pp.all_labels = cJSON_IsTrue(get(a, "all_labels"));
        pp.zero_division = get(a, "zero_division")->valuedouble;
        pp.beta = get(a, "beta")->valuedouble;
        const char *avg = get(a, "average")->valuestring;
        gf_average av = strcmp(avg, "micro") == 0   ? GF_AVERAGE_MICRO
                        : strcmp(avg, "macro") == 0 ? GF_AVERAGE_MACRO
                                                    : GF_AVERAGE_WEIGHTED;
        double P, R, F;
        CHECK(gf_confusion_prf_average(ctx, cm, &pp, av, &P, &R, &F) == GF_OK);
        char what[96];
        snprintf(what, sizeof what, "%s zd=%g all=%d beta=%g", avg, pp.zero_division, pp.all_labels,
                 pp.beta);
        near(what, name, P, get(a, "precision"));
        near(what, name, R, get(a, "recall"));
        near(what, name, F, get(a, "fscore"));
    }
    /* the text report, byte for byte */
    const cJSON *names = get(c, "names");
    const char **nm = NULL;
    if (names) {
        nm = malloc((size_t)k * sizeof *nm);
        for (int j = 0; j < k; j++) nm[j] = cJSON_GetArrayItem(names, j)->valuestring;
    }
    char buf[8192];
    size_t len = gf_confusion_report(cm, nm, get(c, "report_digits")->valueint, buf, sizeof buf);
    const char *want = get(c, "report")->valuestring;
    CHECK(len == strlen(want));
    if (strcmp(buf, want) != 0)
        fprintf(stderr, "  %s report:\n%s\nsklearn:\n%s\n", name, buf, want);
    CHECK(strcmp(buf, want) == 0);
    /* the same through a too-small buffer: truncated, terminated, full length reported */
    char small[16];
    CHECK(gf_confusion_report(cm, nm, get(c, "report_digits")->valueint, small, sizeof small) ==
          len);
    CHECK(strlen(small) == sizeof small - 1);
    free(nm);
    free(p);
    free(rc);
    free(f);
    free(s);
    free(yt);
    free(yp);
    gf_confusion_free(cm);
}

static void topk_case(gf_ctx *ctx, const cJSON *c) {
    int64_t ns, n;
    float *scores = f32_array(get(c, "scores"), &ns);
    int64_t *y = i64_array(get(c, "labels"), &n);
    const int C = get(c, "n_classes")->valueint, k = get(c, "k")->valueint;
    CHECK(ns == n * C);
    char name[32];
    snprintf(name, sizeof name, "top-%d of %d", k, C);
    near("top-k", name, gf_metrics_topk_accuracy(ctx, scores, y, n, C, k), get(c, "value"));
    free(scores);
    free(y);
}

static void regression_case(gf_ctx *ctx, const cJSON *c) {
    const char *name = get(c, "name")->valuestring;
    int64_t n, n2;
    float *t = f32_array(get(c, "y_true"), &n), *p = f32_array(get(c, "y_pred"), &n2);
    CHECK(n == n2);
    near("mse", name, gf_metrics_mse(ctx, t, p, n), get(c, "mse"));
    near("rmse", name, gf_metrics_rmse(ctx, t, p, n), get(c, "rmse"));
    near("mae", name, gf_metrics_mae(ctx, t, p, n), get(c, "mae"));
    near("r2", name, gf_metrics_r2(ctx, t, p, n), get(c, "r2"));
    free(t);
    free(p);
}

static void test_fixtures(gf_ctx *ctx) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/metrics_sklearn.json", src ? src : ".");
    char *text = test_read_text(path);
    if (!text) fprintf(stderr, "cannot read %s (set GRAFT_SOURCE_DIR)\n", path);
    CHECK(text != NULL);
    if (!text) return;
    cJSON *doc = cJSON_Parse(text);
    free(text);
    CHECK(doc != NULL);
    if (!doc) return;
    const cJSON *c;
    int nc = 0, nt = 0, nr = 0;
    cJSON_ArrayForEach(c, get(doc, "classification")) {
        classification_case(ctx, c);
        nc++;
    }
    cJSON_ArrayForEach(c, get(doc, "topk")) {
        topk_case(ctx, c);
        nt++;
    }
    cJSON_ArrayForEach(c, get(doc, "regression")) {
        regression_case(ctx, c);
        nr++;
    }
    CHECK(nc >= 10 && nt >= 15 && nr >= 6);
    CHECK(gf_ctx_status(ctx) == GF_OK);
    printf("  sklearn %s: %d classification, %d top-k, %d regression cases, %d values compared\n",
           get(doc, "sklearn")->valuestring, nc, nt, nr, n_checked);
    cJSON_Delete(doc);
}

/* Scores -> argmax predictions (first of equal maxima), and the tensor checks. */
static void test_scores(gf_ctx *ctx) {
    gf_confusion *cm = gf_confusion_new(ctx, 3);
    const float s[4 * 3] = {0.1f, 0.7f, 0.2f, 2, 2, 1, -1, -3, -0.5f, 0, 0, 0};
    const int64_t y[4] = {1, 1, 2, 0};
    const int64_t ds[2] = {4, 3}, dy[1] = {4};
    gf_tensor *ts = gf_tensor_from_data(ctx, GF_F32, 2, ds, s);
    gf_tensor *ty = gf_tensor_from_data(ctx, GF_I64, 1, dy, y);
    CHECK(gf_confusion_add_scores(ctx, cm, ts, ty) == GF_OK);
    const int64_t *c = gf_confusion_counts(cm);
    /* predictions: 1, 0 (tie -> first), 2, 0 (all equal -> first) */
    CHECK(c[1 * 3 + 1] == 1 && c[1 * 3 + 0] == 1 && c[2 * 3 + 2] == 1 && c[0] == 1);
    CHECK(gf_confusion_total(cm) == 4);
    CHECK_NEAR(gf_confusion_accuracy(ctx, cm), 0.75, 1e-12);
    /* wrong shapes and dtypes are errors that name the shapes */
    const int64_t d3[1] = {3};
    gf_tensor *short_y = gf_tensor_new(ctx, GF_I64, 1, d3);
    CHECK(gf_confusion_add_scores(ctx, cm, ts, short_y) == GF_ERR_SHAPE);
    CHECK(strstr(gf_ctx_error(ctx), "[4, 3]") && strstr(gf_ctx_error(ctx), "[3]"));
    gf_ctx_clear_error(ctx);
    CHECK(gf_confusion_add_scores(ctx, cm, ts, ts) != GF_OK);
    gf_ctx_clear_error(ctx);
    CHECK(gf_confusion_total(cm) == 4);
    gf_confusion_reset(cm);
    CHECK(gf_confusion_total(cm) == 0);
    gf_tensor_free(ts);
    gf_tensor_free(ty);
    gf_tensor_free(short_y);
    gf_confusion_free(cm);
}

static void test_errors(gf_ctx *ctx) {
    CHECK(gf_confusion_new(ctx, 0) == NULL && gf_ctx_status(ctx) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    gf_confusion *cm = gf_confusion_new(ctx, 3);
    /* empty matrix: NaN with a message, never a division by zero */
    CHECK(isnan(gf_confusion_accuracy(ctx, cm)));
    CHECK(strstr(gf_ctx_error(ctx), "no examples") != NULL);
    gf_ctx_clear_error(ctx);
    CHECK(gf_confusion_prf(ctx, cm, NULL, NULL, NULL, NULL, NULL) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    /* a label outside the classes names its position and adds nothing */
    const int64_t t[3] = {0, 1, 2}, p[3] = {0, 3, 1};
    CHECK(gf_confusion_add(ctx, cm, t, p, 3) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "position 1") != NULL);
    CHECK(gf_confusion_total(cm) == 0);
    gf_ctx_clear_error(ctx);
    const int64_t neg[1] = {-1};
    CHECK(gf_confusion_add(ctx, cm, neg, t, 1) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_confusion_add(ctx, cm, t, t, 3) == GF_OK);
    gf_prf_params bad = gf_prf_default_params();
    bad.beta = -1;
    double P;
    CHECK(gf_confusion_prf_average(ctx, cm, &bad, GF_AVERAGE_MACRO, &P, NULL, NULL) ==
          GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_confusion_prf_average(ctx, cm, NULL, (gf_average)7, &P, NULL, NULL) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    /* top-k: label out of range, bad k */
    const float sc[2 * 3] = {1, 2, 3, 3, 2, 1};
    const int64_t yl[2] = {0, 5};
    CHECK(isnan(gf_metrics_topk_accuracy(ctx, sc, yl, 2, 3, 1)));
    CHECK(strstr(gf_ctx_error(ctx), "position 1") != NULL);
    gf_ctx_clear_error(ctx);
    CHECK(isnan(gf_metrics_topk_accuracy(ctx, sc, t, 2, 3, 0)));
    gf_ctx_clear_error(ctx);
    /* regression: empty input */
    const float a[1] = {1};
    CHECK(isnan(gf_metrics_mse(ctx, a, a, 0)) && gf_ctx_status(ctx) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(isnan(gf_metrics_r2(ctx, NULL, a, 1)));
    gf_ctx_clear_error(ctx);
    char buf[64];
    gf_confusion_reset(cm);
    CHECK(gf_confusion_report(cm, NULL, 2, buf, sizeof buf) > 0 && strstr(buf, "no examples"));
    gf_confusion_free(cm);
    gf_confusion_free(NULL);
}

int main(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_fixtures(ctx);
    test_scores(ctx);
    test_errors(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_metrics");
}
