/* The ops added for imported models (gf_unary's functions, gf_minimum / gf_maximum, gf_where,
 * gf_take, gf_gather, gf_prod, gf_max_pool_nd / gf_avg_pool_nd): forward values against direct
 * computations and every analytic gradient against central finite differences of
 * L = sum(out * r) for a fixed random r. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "testutil.h"

typedef gf_tensor *(*op_fn)(gf_ctx *ctx, gf_tensor **in, void *arg);

/* L = sum(f(in) * r), r drawn once per check (same seed each evaluation). */
static double objective(gf_ctx *ctx, op_fn f, gf_tensor **in, void *arg, gf_tensor **out_loss) {
    gf_tensor *y = f(ctx, in, arg);
    if (!y) return NAN;
    gf_rng r;
    gf_rng_seed(&r, 1234);
    gf_tensor *w = gf_empty(ctx, GF_F32, y->ndim, y->shape);
    for (int64_t i = 0; i < y->numel; i++) gf_f32(w)[i] = gf_rng_uniform(&r) * 2.0f - 1.0f;
    gf_tensor *l = gf_sum(ctx, gf_mul(ctx, y, w), NULL, 0, false);
    if (out_loss) *out_loss = l;
    return l ? (double)gf_get_f32(l, 0) : NAN;
}

/* Checks the gradient of every float input (requires_grad set) by central differences. */
static void gradcheck(const char *name, gf_ctx *ctx, op_fn f, gf_tensor **in, int n_in, void *arg,
                      double tol) {
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->requires_grad) gf_tensor_zero_grad(in[i]);
    gf_tensor *loss = NULL;
    objective(ctx, f, in, arg, &loss);
    CHECK(loss != NULL);
    if (!loss) {
        fprintf(stderr, "%s: %s\n", name, gf_ctx_error(ctx));
        gf_ctx_clear_error(ctx);
        return;
    }
    gf_status st = gf_backward(ctx, loss);
    if (st != GF_OK) fprintf(stderr, "%s: backward: %s\n", name, gf_ctx_error(ctx));
    CHECK(st == GF_OK);
    for (int i = 0; i < n_in; i++) {
        gf_tensor *t = in[i];
        if (!t || !t->requires_grad) continue;
        CHECK(t->grad != NULL);
        if (!t->grad) continue;
        for (int64_t k = 0; k < t->numel; k++) {
            float *p = gf_f32(t) + k, keep = *p;
            const float eps = 1e-3f * fmaxf(1.0f, fabsf(keep));
            bool was = gf_ctx_set_grad_enabled(ctx, false);
            *p = keep + eps;
            double up = objective(ctx, f, in, arg, NULL);
            *p = keep - eps;
            double down = objective(ctx, f, in, arg, NULL);
            *p = keep;
            gf_ctx_set_grad_enabled(ctx, was);
            double num = (up - down) / (2.0 * eps), ana = gf_f32(t->grad)[k];
            if (fabs(num - ana) > tol * fmax(1.0, fabs(num))) {
                fprintf(stderr, "%s: input %d element %lld: analytic %.6g, numeric %.6g\n", name, i,
                        (long long)k, ana, num);
                CHECK(0);
                return;
            }
        }
        gf_test_passed++;
    }
    gf_ctx_reset(ctx);
}

static gf_tensor *param(gf_ctx *ctx, int ndim, const int64_t *shape, const float *v,
                        uint64_t seed) {
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, ndim, shape);
    gf_rng r;
    gf_rng_seed(&r, seed);
    for (int64_t i = 0; i < t->numel; i++)
        gf_f32(t)[i] = v ? v[i] : gf_rng_uniform(&r) * 2.0f - 1.0f;
    gf_tensor_set_requires_grad(t, true);
    return t;
}

/* ---- unary functions ------------------------------------------------------------------------- */

typedef struct { gf_unary_fn fn; float a, b; } un_arg;
static gf_tensor *f_unary(gf_ctx *c, gf_tensor **in, void *arg) {
    un_arg *u = arg;
    return gf_unary(c, in[0], u->fn, u->a, u->b);
}

static void test_unary(gf_ctx *ctx) {
    /* points away from each function's kinks and domain edges */
    const float pts[6] = {-0.83f, -0.41f, 0.27f, 0.55f, 0.72f, -0.16f};
    const float gt1[6] = {1.3f, 1.9f, 2.4f, 3.1f, 1.7f, 2.2f}; /* acosh's domain */
    const int64_t s[1] = {6};
    for (int fn = 0; fn < GF_FN_COUNT; fn++) {
        un_arg a = {(gf_unary_fn)fn, 0, 0};
        if (fn == GF_FN_HARDSIGMOID) a.a = 0.2f, a.b = 0.5f;
        if (fn == GF_FN_SELU) a.a = 1.6733f, a.b = 1.0507f;
        if (fn == GF_FN_CELU) a.a = 1.3f;
        if (fn == GF_FN_THRESHOLDED_RELU) a.a = 0.1f;
        if (fn == GF_FN_SHRINK) a.a = 0.2f, a.b = 0.3f;
        gf_tensor *x = param(ctx, 1, s, fn == GF_FN_ACOSH ? gt1 : pts, 0);
        char name[64];
        snprintf(name, sizeof name, "unary %s", gf_unary_fn_name(a.fn));
        gradcheck(name, ctx, f_unary, &x, 1, &a, 2e-2);
        gf_tensor_free(x);
    }
    /* forward values */
    const int64_t s4[1] = {4};
    const float v[4] = {-2.5f, -0.5f, 0.5f, 3.5f};
    gf_tensor *x = gf_tensor_from_data(ctx, GF_F32, 1, s4, v);
    gf_tensor *r = gf_unary(ctx, x, GF_FN_ROUND, 0, 0);
    CHECK(gf_get_f32(r, 0) == -2.0f && gf_get_f32(r, 1) == -0.0f && gf_get_f32(r, 2) == 0.0f &&
          gf_get_f32(r, 3) == 4.0f); /* halves to even */
    gf_tensor *h = gf_hardswish(ctx, x);
    CHECK_NEAR(gf_get_f32(h, 3), 3.5, 1e-6); /* hard sigmoid saturates at 1 above 3 */
    CHECK_NEAR(gf_get_f32(h, 0), -2.5 * (-2.5 / 6 + 0.5), 1e-6);
    gf_tensor *sg = gf_unary(ctx, x, GF_FN_SIGN, 0, 0);
    CHECK(gf_get_f32(sg, 0) == -1.0f && gf_get_f32(sg, 3) == 1.0f);
    gf_tensor *sh = gf_unary(ctx, x, GF_FN_SHRINK, 0.2f, 1.0f);
    CHECK_NEAR(gf_get_f32(sh, 0), -2.3, 1e-6);
    CHECK(gf_get_f32(sh, 1) == 0.0f);
    CHECK_NEAR(gf_get_f32(sh, 3), 3.3, 1e-6);
    gf_tensor_free(x);
    EXPECT_ERR(ctx, gf_unary(ctx, NULL, GF_FN_NEG, 0, 0), GF_ERR_INVALID, "neg");
    EXPECT_ERR(ctx, gf_unary(ctx, gf_scalar(ctx, 1), GF_FN_COUNT, 0, 0), GF_ERR_INVALID, "unknown");
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
}

/* ---- selection and indexing ------------------------------------------------------------------ */

static gf_tensor *f_max(gf_ctx *c, gf_tensor **in, void *arg) {
    (void)arg;
    return gf_maximum(c, in[0], in[1]);
}
static gf_tensor *f_min(gf_ctx *c, gf_tensor **in, void *arg) {
    (void)arg;
    return gf_minimum(c, in[0], in[1]);
}
static gf_tensor *f_where(gf_ctx *c, gf_tensor **in, void *arg) {
    return gf_where(c, arg, in[0], in[1]);
}
static gf_tensor *f_take(gf_ctx *c, gf_tensor **in, void *arg) { return gf_take(c, in[0], arg, 1); }
static gf_tensor *f_gather(gf_ctx *c, gf_tensor **in, void *arg) {
    return gf_gather(c, in[0], 0, arg);
}
static gf_tensor *f_prod(gf_ctx *c, gf_tensor **in, void *arg) {
    (void)arg;
    int axes[2] = {0, 2};
    return gf_prod(c, in[0], axes, 2, true);
}

static void test_select(gf_ctx *ctx) {
    const int64_t sa[2] = {3, 4}, sb[1] = {4};
    gf_tensor *in[2] = {param(ctx, 2, sa, NULL, 1), param(ctx, 1, sb, NULL, 2)};
    gradcheck("maximum (broadcast)", ctx, f_max, in, 2, NULL, 2e-2);
    gradcheck("minimum (broadcast)", ctx, f_min, in, 2, NULL, 2e-2);
    gf_tensor *y = gf_maximum(ctx, in[0], in[1]);
    CHECK(y && y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 4);
    CHECK(gf_get_f32(y, 5) == fmaxf(gf_get_f32(in[0], 5), gf_get_f32(in[1], 1)));
    gf_ctx_reset(ctx);
    /* where with a [3, 1] condition */
    const int64_t sc[2] = {3, 1};
    const int64_t cv[3] = {1, 0, 1};
    gf_tensor *cond = gf_tensor_from_data(ctx, GF_I64, 2, sc, cv);
    gradcheck("where", ctx, f_where, in, 2, cond, 2e-2);
    y = gf_where(ctx, cond, in[0], in[1]);
    CHECK(gf_get_f32(y, 4) == gf_get_f32(in[1], 0) && gf_get_f32(y, 8) == gf_get_f32(in[0], 8));
    gf_tensor_free(cond);
    gf_ctx_reset(ctx);
    /* take along axis 1 with repeated and negative indices of shape [2, 2] */
    const int64_t si[2] = {2, 2}, iv[4] = {3, -4, 1, 3};
    gf_tensor *idx = gf_tensor_from_data(ctx, GF_I64, 2, si, iv);
    gradcheck("take", ctx, f_take, in, 1, idx, 2e-2);
    y = gf_take(ctx, in[0], idx, 1);
    CHECK(y && y->ndim == 3 && y->shape[1] == 2 && y->shape[2] == 2);
    CHECK(gf_get_f32(y, 1) == gf_get_f32(in[0], 0) &&
          gf_get_f32(y, 4 + 3) == gf_get_f32(in[0], 4 + 3));
    EXPECT_ERR(ctx, gf_take(ctx, in[0], idx, 5), GF_ERR_INVALID, "take");
    gf_tensor_free(idx);
    /* gather along axis 0 */
    const int64_t gi_s[2] = {2, 4}, gv[8] = {2, 0, 1, -1, 0, 0, 2, 1};
    gf_tensor *gidx = gf_tensor_from_data(ctx, GF_I64, 2, gi_s, gv);
    gradcheck("gather", ctx, f_gather, in, 1, gidx, 2e-2);
    y = gf_gather(ctx, in[0], 0, gidx);
    CHECK(gf_get_f32(y, 0) == gf_get_f32(in[0], 8) && gf_get_f32(y, 3) == gf_get_f32(in[0], 11));
    const int64_t bad_v[8] = {3, 0, 0, 0, 0, 0, 0, 0};
    gf_tensor *bad = gf_tensor_from_data(ctx, GF_I64, 2, gi_s, bad_v);
    EXPECT_ERR(ctx, gf_gather(ctx, in[0], 0, bad), GF_ERR_INVALID, "index 3 is out of range");
    gf_tensor_free(bad);
    gf_tensor_free(gidx);
    /* int64 data is taken too, never recorded */
    const int64_t lv[4] = {10, 20, 30, 40}, one = 2, pick[2] = {3, 0};
    gf_tensor *li = gf_tensor_from_data(ctx, GF_I64, 1, sb, lv),
              *pi = gf_tensor_from_data(ctx, GF_I64, 1, &one, pick);
    y = gf_take(ctx, li, pi, 0);
    CHECK(y && y->dtype == GF_I64 && gf_i64(y)[0] == 40 && gf_i64(y)[1] == 10);
    gf_tensor_free(li), gf_tensor_free(pi);
    gf_tensor_free(in[0]), gf_tensor_free(in[1]);
    gf_ctx_reset(ctx);
    /* prod over two axes, with a zero in one row (the gradient there is the others' product) */
    const int64_t sp[3] = {2, 3, 2};
    gf_tensor *x = param(ctx, 3, sp, NULL, 3);
    gf_f32(x)[4] = 0.0f;
    gradcheck("prod", ctx, f_prod, &x, 1, NULL, 2e-2);
    y = gf_prod(ctx, x, (int[]){0, 2}, 2, true);
    CHECK(y && y->ndim == 3 && y->shape[0] == 1 && y->shape[1] == 3 && y->shape[2] == 1);
    double want = (double)gf_f32(x)[0] * gf_f32(x)[1] * gf_f32(x)[6] * gf_f32(x)[7];
    CHECK_NEAR(gf_get_f32(y, 0), want, 1e-6);
    CHECK(gf_get_f32(y, 2) == 0.0f);
    gf_tensor_free(x);
    gf_ctx_reset(ctx);
}

/* ---- pooling --------------------------------------------------------------------------------- */

static gf_tensor *f_maxnd(gf_ctx *c, gf_tensor **in, void *arg) {
    return gf_max_pool_nd(c, in[0], arg, NULL);
}
static gf_tensor *f_avgnd(gf_ctx *c, gf_tensor **in, void *arg) {
    return gf_avg_pool_nd(c, in[0], arg);
}

static void test_pool(gf_ctx *ctx) {
    /* 1-D, 2-D and 3-D, uneven pads, dilation, ceil mode, both divisors */
    const int64_t s1[3] = {2, 2, 7}, s2[4] = {1, 2, 5, 6}, s3[5] = {1, 1, 4, 5, 3};
    gf_pool_nd_params p1 = {1, {3}, {2}, {2}, {1}, {2}, true, false};
    gf_pool_nd_params p2 = {2, {3, 2}, {2, 2}, {1, 1}, {0, 1}, {2, 0}, false, true};
    gf_pool_nd_params p3 = {3, {2, 3, 2}, {1, 2, 1}, {1, 1, 1}, {1, 1, 0}, {0, 1, 1}, true, false};
    const int64_t *shapes[3] = {s1, s2, s3};
    gf_pool_nd_params *ps[3] = {&p1, &p2, &p3};
    for (int k = 0; k < 3; k++) {
        gf_tensor *x = param(ctx, k + 3, shapes[k], NULL, 10 + (uint64_t)k);
        char name[64];
        snprintf(name, sizeof name, "max_pool_nd %dd", k + 1);
        ps[k]->count_include_pad = false;
        gradcheck(name, ctx, f_maxnd, &x, 1, ps[k], 2e-2);
        snprintf(name, sizeof name, "avg_pool_nd %dd", k + 1);
        gradcheck(name, ctx, f_avgnd, &x, 1, ps[k], 2e-2);
        ps[k]->count_include_pad = true;
        snprintf(name, sizeof name, "avg_pool_nd %dd count_include_pad", k + 1);
        gradcheck(name, ctx, f_avgnd, &x, 1, ps[k], 2e-2);
        gf_tensor_free(x);
    }
    /* values: 1-D [0..6], kernel 3, stride 2, pads 1/2, ceil: windows [-1,1] [1,3] [3,5] [5,7] */
    const int64_t s[3] = {1, 1, 7};
    const float v[7] = {0, 1, 2, 3, 4, 5, 6};
    gf_tensor *x = gf_tensor_from_data(ctx, GF_F32, 3, s, v), *idx = NULL;
    gf_pool_nd_params p = {1, {3}, {2}, {1}, {1}, {2}, true, false};
    gf_tensor *m = gf_max_pool_nd(ctx, x, &p, &idx);
    CHECK(m && m->shape[2] == 4 && gf_get_f32(m, 0) == 1 && gf_get_f32(m, 3) == 6);
    CHECK(idx && gf_i64(idx)[3] == 6);
    gf_tensor *a = gf_avg_pool_nd(ctx, x, &p);
    CHECK_NEAR(gf_get_f32(a, 0), 0.5, 1e-6);  /* (0 + 1) / 2 inside the input */
    CHECK_NEAR(gf_get_f32(a, 3), 5.5, 1e-6);  /* (5 + 6) / 2 */
    p.count_include_pad = true;
    a = gf_avg_pool_nd(ctx, x, &p);
    CHECK_NEAR(gf_get_f32(a, 0), 1.0 / 3, 1e-6); /* the left pad counts */
    CHECK_NEAR(gf_get_f32(a, 3), 11.0 / 3, 1e-6); /* one right pad inside the padded input */
    p.kernel[0] = 20;
    EXPECT_ERR(ctx, gf_max_pool_nd(ctx, x, &p, NULL), GF_ERR_SHAPE, "too small");
    gf_tensor_free(x);
    gf_ctx_reset(ctx);
}

int main(void) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    test_unary(ctx);
    test_select(ctx);
    test_pool(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_onnx_ops");
}
