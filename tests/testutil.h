/* Minimal checks for unit tests: each CHECK counts a pass or prints a failure with its
 * location; test_finish prints "N passed, M failed" and gives the exit status. */
#ifndef GRAFT_TESTUTIL_H
#define GRAFT_TESTUTIL_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

extern int gf_test_passed, gf_test_failed;

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (cond) gf_test_passed++;                                                         \
        else {                                                                              \
            gf_test_failed++;                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);        \
        }                                                                                   \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                               \
    do {                                                                                    \
        double a_ = (double)(a), b_ = (double)(b);                                          \
        if (fabs(a_ - b_) <= (tol)) gf_test_passed++;                                       \
        else {                                                                              \
            gf_test_failed++;                                                               \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %s = %.9g (tol %g)\n", __FILE__,    \
                    __LINE__, #a, a_, #b, b_, (double)(tol));                               \
        }                                                                                   \
    } while (0)

/* Evaluates expr (an API call returning a pointer) and checks it failed with `status` and a
 * context message containing every given substring. Needs <string.h> and graft.h. */
#define EXPECT_ERR(ctx, expr, status, ...)                                                  \
    do {                                                                                    \
        gf_ctx_clear_error(ctx);                                                            \
        void *r_ = (void *)(expr);                                                          \
        CHECK(r_ == NULL);                                                                  \
        CHECK(gf_ctx_status(ctx) == (status));                                              \
        const char *want_[] = {__VA_ARGS__};                                                \
        for (size_t i_ = 0; i_ < sizeof want_ / sizeof want_[0]; i_++) {                     \
            if (!strstr(gf_ctx_error(ctx), want_[i_])) {                                    \
                fprintf(stderr, "message '%s' lacks '%s'\n", gf_ctx_error(ctx), want_[i_]);   \
                CHECK(0);                                                                   \
            }                                                                               \
        }                                                                                   \
    } while (0)

/* Whole file as a NUL-terminated string (free with free), or NULL when unreadable. */
char *test_read_text(const char *path);
/* Parsed JSON file (free with cJSON_Delete), or NULL with a message on stderr. */
cJSON *test_read_json(const char *path);

/* A dataset of n float samples of shape [shape[0], ..., shape[ndim-1]] from x, with class
 * labels y (k classes) or, when y is NULL, float targets t; named name (may be NULL). Takes
 * x, y and t (gf_ds_from_memory copies them; they are freed here). NULL on error. */
struct gf_ctx;
struct gf_ds;
struct gf_ds *test_ds_take(struct gf_ctx *ctx, const char *name, int ndim, const int64_t *shape,
                           int64_t n, float *x, int64_t *y, float *t, int k);

/* Largest |a[i] - b[i]| / (atol + rtol |b[i]|) of tensor a against the JSON number array b
 * (<= 1 passes; infinity when the sizes differ); *maxabs gets the largest |a[i] - b[i]|. */
struct gf_tensor;
double test_worst_vs_json(const struct gf_tensor *a, const cJSON *b, double atol, double rtol,
                          double *maxabs);
/* Largest |a[i] - b[i]| of two tensors (infinity when their sizes differ). */
double test_max_abs_diff(const struct gf_tensor *a, const struct gf_tensor *b);

/* Removes path and everything under it (a test's temporary folder); 0 on success. */
int test_rm_tree(const char *path);

/* Prints the summary line and returns the process exit status. */
int test_finish(const char *name);

#endif
