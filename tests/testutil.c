#define _XOPEN_SOURCE 700 /* nftw */
#include "testutil.h"
#include "graft/dataset.h"
#include "graft/graft.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gf_test_passed = 0, gf_test_failed = 0;

int test_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, gf_test_passed, gf_test_failed);
    return gf_test_failed == 0 && gf_test_passed > 0 ? 0 : 1;
}

char *test_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = '\0';
    fclose(f);
    return buf;
}

cJSON *test_read_json(const char *path) {
    char *text = test_read_text(path);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    if (!j) fprintf(stderr, "%s: %s (set GRAFT_SOURCE_DIR to the source tree)\n", path,
                    text ? "not valid JSON" : "cannot read");
    free(text);
    return j;
}

gf_ds *test_ds_take(gf_ctx *ctx, const char *name, int ndim, const int64_t *shape, int64_t n,
                    float *x, int64_t *y, float *t, int k) {
    gf_ds_desc d;
    memset(&d, 0, sizeof d);
    d.ndim = ndim;
    for (int i = 0; i < ndim; i++) d.shape[i] = shape[i];
    d.n = n;
    d.x_f32 = x;
    if (y) {
        d.labels = y;
        d.n_classes = k;
    } else {
        d.targets = t;
    }
    d.name = name;
    gf_ds *ds = gf_ds_from_memory(ctx, &d);
    free(x);
    free(y);
    free(t);
    return ds;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int test_rm_tree(const char *path) { return nftw(path, remove_one, 8, FTW_DEPTH | FTW_PHYS); }

double test_worst_vs_json(const gf_tensor *a, const cJSON *b, double atol, double rtol,
                          double *maxabs) {
    *maxabs = INFINITY;
    if (!a || !cJSON_IsArray(b) || cJSON_GetArraySize(b) != a->numel) return INFINITY;
    double w = 0, m = 0;
    int64_t i = 0;
    for (const cJSON *v = b->child; v; v = v->next, i++) {
        const double d = fabs((double)gf_get_f32(a, i) - v->valuedouble);
        const double r = d / (atol + rtol * fabs(v->valuedouble));
        if (!(r <= w)) w = r;
        if (!(d <= m)) m = d;
    }
    *maxabs = m;
    return w;
}

double test_max_abs_diff(const gf_tensor *a, const gf_tensor *b) {
    if (!a || !b || a->numel != b->numel) return INFINITY;
    double m = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        const double d = fabs((double)gf_get_f32(a, i) - (double)gf_get_f32(b, i));
        if (!(d <= m)) m = d;
    }
    return m;
}
