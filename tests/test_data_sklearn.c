/* The CSV files that Debian's python3-sklearn ships (iris, wine, breast_cancer, digits) load
 * through graft's CSV reader and agree with sklearn's own loaders: sizes, class names and
 * counts, first and last rows, per-feature mean and std (reference values in
 * fixtures/metrics_sklearn.json, written by fixtures/gen_metrics.py). The files are read from
 * $GRAFT_SKLEARN_DATA, else /usr/lib/python3/dist-packages/sklearn/datasets/data; when they
 * are not installed the test says so and exits 77 (ctest: skipped). */
#include "data_helpers.h"

#include "graft/graft.h"
#include "graft/csv.h"
#include "testutil.h"

#include <cjson/cJSON.h>

static const cJSON *get(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static void check_dataset(gf_ctx *ctx, const char *dir, const cJSON *ref) {
    const char *name = get(ref, "name")->valuestring;
    gf_csv_params p = gf_csv_default_params();
    const char *file;
    if (strcmp(name, "digits") == 0) {
        /* digits.csv.gz: no header at all, 64 pixel columns then the digit */
        file = "digits.csv.gz";
        p.header = GF_CSV_NO_HEADER;
        p.label = "-1";
    } else {
        /* "n_samples,n_features,class names..." then rows ending in the integer class */
        file = strcmp(name, "iris") == 0   ? "iris.csv"
               : strcmp(name, "wine") == 0 ? "wine_data.csv"
                                           : "breast_cancer.csv";
        p.header = GF_CSV_SKLEARN_HEADER;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    gf_ds *ds = gf_csv_load(ctx, path, &p);
    if (!ds) fprintf(stderr, "  %s: %s\n", name, gf_ctx_error(ctx));
    CHECK(ds != NULL);
    if (!ds) return;
    const int64_t n = (int64_t)get(ref, "n")->valuedouble;
    const int F = get(ref, "n_features")->valueint;
    CHECK(gf_ds_count(ds) == n && gf_ds_ndim(ds) == 1 && gf_ds_shape(ds)[0] == F);
    const int K = cJSON_GetArraySize(get(ref, "class_names"));
    CHECK(gf_ds_n_classes(ds) == K);
    int64_t counts[16] = {0};
    CHECK(K <= 16 && gf_ds_class_counts(ctx, ds, counts) == GF_OK);
    for (int k = 0; k < K && k < 16; k++) {
        CHECK(strcmp(gf_ds_class_name(ds, k),
                     cJSON_GetArrayItem(get(ref, "class_names"), k)->valuestring) == 0);
        CHECK(counts[k] == (int64_t)cJSON_GetArrayItem(get(ref, "class_counts"), k)->valuedouble);
    }
    /* first and last rows, exactly as float32 */
    float *x = malloc((size_t)F * sizeof *x);
    int64_t y;
    const char *rows[2] = {"first_row", "last_row"}, *labels[2] = {"first_label", "last_label"};
    for (int r = 0; r < 2; r++) {
        int64_t i = r == 0 ? 0 : n - 1;
        CHECK(gf_ds_read(ds, &i, 1, x, &y, NULL, 0) == GF_OK);
        CHECK(y == get(ref, labels[r])->valueint);
        int bad = 0;
        for (int j = 0; j < F; j++)
            bad += x[j] != (float)cJSON_GetArrayItem(get(ref, rows[r]), j)->valuedouble;
        CHECK(bad == 0);
    }
    /* every value went through: per-feature mean and std agree with numpy on the float64 data */
    float *mean = malloc((size_t)F * sizeof *mean), *sd = malloc((size_t)F * sizeof *sd);
    CHECK(gf_ds_channel_stats(ctx, ds, mean, sd) == GF_OK);
    double worst = 0;
    for (int j = 0; j < F; j++) {
        double m = cJSON_GetArrayItem(get(ref, "mean"), j)->valuedouble;
        double s = cJSON_GetArrayItem(get(ref, "std"), j)->valuedouble;
        double em = fabs(mean[j] - m) / (fabs(m) + 1e-3),
               es = s > 0 ? fabs(sd[j] - s) / s : fabs(sd[j] - 1.0);
        if (em > worst) worst = em;
        if (es > worst) worst = es;
    }
    CHECK(worst < 1e-5);
    printf("  %-13s %5lld x %2d, %2d classes, stats within %.1e of sklearn\n", name, (long long)n,
           F, K, worst);
    free(x);
    free(mean);
    free(sd);
    gf_ds_free(ds);
}

int main(void) {
    const char *dir = getenv("GRAFT_SKLEARN_DATA");
    if (!dir) dir = "/usr/lib/python3/dist-packages/sklearn/datasets/data";
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/iris.csv", dir);
    FILE *f = fopen(probe, "rb");
    if (!f) {
        printf("test_data_sklearn: SKIPPED: %s not found (install python3-sklearn or set "
               "GRAFT_SKLEARN_DATA)\n",
               probe);
        return 77;
    }
    fclose(f);
    char *text = th_fixture("metrics_sklearn.json");
    CHECK(text != NULL);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(doc != NULL);
    gf_ctx *ctx = gf_ctx_new(NULL);
    const cJSON *ref;
    int count = 0;
    if (doc) cJSON_ArrayForEach(ref, get(doc, "datasets")) {
            check_dataset(ctx, dir, ref);
            count++;
        }
    CHECK(count == 4);
    CHECK(gf_ctx_status(ctx) == GF_OK);
    cJSON_Delete(doc);
    gf_ctx_free(ctx);
    return test_finish("test_data_sklearn");
}
