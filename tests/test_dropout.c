/* Dropout cannot be compared with PyTorch (different RNG), so its random path is checked
 * here: kept fraction ~ 1-p, kept values x/(1-p), same seed -> same mask for any thread count,
 * the mask follows the context RNG stream, gradient = mask/(1-p), finite differences, and the
 * identity / all-dropped edge cases. To add a check, add a block to main. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"

#define BIG (1 << 20)

/* A persistent tensor of n values in [0.5, 1.5) (never zero, so "kept" = "output != 0"). */
static gf_tensor *make_x(gf_ctx *ctx, int64_t n, bool grad) {
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 1, &n);
    gf_rng r;
    gf_rng_seed(&r, 5);
    for (int64_t i = 0; i < n; i++) gf_f32(x)[i] = 0.5f + gf_rng_uniform(&r);
    gf_tensor_set_requires_grad(x, grad);
    return x;
}

static double objective(const gf_tensor *y, const float *w) {
    double s = 0;
    for (int64_t i = 0; i < y->numel; i++) s += (double)gf_f32(y)[i] * w[i];
    return s;
}

int main(void) {
    gf_ctx_params pp = gf_ctx_default_params();
    pp.n_threads = 4;
    gf_ctx *ctx = gf_ctx_new(&pp);
    const float p = 0.3f;
    const double scale = 1.0 / (1.0 - p);
    gf_tensor *x = make_x(ctx, BIG, false);

    /* kept fraction and kept values */
    gf_rng_seed(gf_ctx_rng(ctx), 42);
    gf_tensor *y = gf_dropout(ctx, x, p, true);
    CHECK(y != NULL && y != x && gf_ctx_status(ctx) == GF_OK);
    uint8_t *mask = malloc(BIG);
    int64_t kept = 0, bad_value = 0;
    for (int64_t i = 0; i < BIG; i++) {
        float o = gf_f32(y)[i], xi = gf_f32(x)[i];
        mask[i] = o != 0.0f;
        kept += mask[i];
        if (mask[i] && fabs(o - xi * scale) > 1e-6 * xi * scale) bad_value++;
    }
    CHECK_NEAR((double)kept / BIG, 1.0 - p, 3e-3); /* ~7 standard deviations */
    CHECK(bad_value == 0);

    /* the mask is the context RNG's uniform stream in element order: u_i >= p keeps i */
    gf_rng ref;
    gf_rng_seed(&ref, 42);
    int64_t stream_mismatch = 0;
    for (int64_t i = 0; i < BIG; i++) stream_mismatch += mask[i] != (gf_rng_uniform(&ref) >= p);
    CHECK(stream_mismatch == 0);
    /* the RNG has advanced past exactly BIG draws */
    CHECK(gf_rng_u32(gf_ctx_rng(ctx)) == gf_rng_u32(&ref));

    /* same seed -> same mask, whatever the thread count; also starting mid-block */
    for (int threads = 1; threads <= 3; threads += 2) {
        gf_ctx_set_threads(ctx, threads);
        gf_rng_seed(gf_ctx_rng(ctx), 42);
        gf_tensor *y2 = gf_dropout(ctx, x, p, true);
        CHECK(y2 && memcmp(y2->data, y->data, sizeof(float) * BIG) == 0);
    }
    gf_ctx_set_threads(ctx, 4);
    gf_rng_seed(gf_ctx_rng(ctx), 9);
    gf_rng_seed(&ref, 9);
    (void)gf_rng_u32(gf_ctx_rng(ctx)); /* leave the RNG one word into a block */
    (void)gf_rng_u32(&ref);
    int64_t odd = BIG - 3; /* a length that ends mid-block too */
    gf_tensor *xo = gf_slice(ctx, x, 0, 0, odd, 1);
    gf_tensor *y3 = gf_dropout(ctx, xo, 0.5f, true);
    int64_t mid_mismatch = 0;
    for (int64_t i = 0; i < odd; i++)
        mid_mismatch += (gf_f32(y3)[i] != 0.0f) != (gf_rng_uniform(&ref) >= 0.5f);
    CHECK(mid_mismatch == 0);
    CHECK(gf_rng_u32(gf_ctx_rng(ctx)) == gf_rng_u32(&ref));
    /* a second call draws new numbers: a different mask */
    gf_rng_seed(gf_ctx_rng(ctx), 42);
    gf_tensor *ya = gf_dropout(ctx, x, p, true);
    gf_tensor *yb = gf_dropout(ctx, x, p, true);
    CHECK(ya && yb && memcmp(ya->data, yb->data, sizeof(float) * BIG) != 0);
    gf_ctx_reset(ctx);

    /* gradient = mask / (1 - p) */
    gf_tensor_free(x);
    x = make_x(ctx, BIG, true);
    gf_rng_seed(gf_ctx_rng(ctx), 42);
    y = gf_dropout(ctx, x, p, true);
    CHECK(y && y->requires_grad && gf_tape_size(ctx) == 1);
    gf_tensor *ones = gf_full(ctx, 1, (int64_t[]){BIG}, 1.0f);
    CHECK(gf_backward_with(ctx, y, ones) == GF_OK);
    int64_t bad_grad = 0;
    for (int64_t i = 0; i < BIG; i++) {
        float want = mask[i] ? (float)scale : 0.0f;
        if (fabsf(gf_f32(x->grad)[i] - want) > 1e-6f) bad_grad++;
    }
    CHECK(bad_grad == 0);
    gf_ctx_reset(ctx);
    gf_tensor_free(x);
    free(mask);

    /* finite differences on a small tensor, reseeding so every evaluation has one mask */
    enum { N = 37 };
    x = make_x(ctx, N, true);
    float w[N];
    gf_rng wr;
    gf_rng_seed(&wr, 3);
    for (int i = 0; i < N; i++) w[i] = gf_rng_normal(&wr);
    gf_rng_seed(gf_ctx_rng(ctx), 7);
    y = gf_dropout(ctx, x, 0.4f, true);
    gf_tensor *gw = gf_tensor_from_data(ctx, GF_F32, 1, (int64_t[]){N}, w);
    CHECK(gf_backward_with(ctx, y, gw) == GF_OK);
    gf_ctx_reset(ctx);
    bool prev = gf_ctx_set_grad_enabled(ctx, false);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        float orig = gf_f32(x)[i];
        const float h = 1e-2f;
        gf_f32(x)[i] = orig + h;
        gf_rng_seed(gf_ctx_rng(ctx), 7);
        double fp = objective(gf_dropout(ctx, x, 0.4f, true), w);
        gf_f32(x)[i] = orig - h;
        gf_rng_seed(gf_ctx_rng(ctx), 7);
        double fm = objective(gf_dropout(ctx, x, 0.4f, true), w);
        gf_f32(x)[i] = orig;
        gf_ctx_reset(ctx);
        double num = (fp - fm) / (2.0 * h), err = fabs(num - gf_f32(x->grad)[i]) / (1 + fabs(num));
        if (err > worst) worst = err;
    }
    gf_ctx_set_grad_enabled(ctx, prev);
    CHECK(worst < 1e-3);

    /* identity: eval or p == 0 returns x itself and records nothing */
    gf_tensor_zero_grad(x);
    int64_t tape = gf_tape_size(ctx);
    CHECK(gf_dropout(ctx, x, 0.5f, false) == x);
    CHECK(gf_dropout(ctx, x, 0.0f, true) == x);
    CHECK(gf_dropout(ctx, x, 1.0f, false) == x);
    CHECK(gf_tape_size(ctx) == tape);

    /* p == 1: zeros and a zero gradient */
    y = gf_dropout(ctx, x, 1.0f, true);
    CHECK(y != NULL);
    bool all_zero = true;
    for (int i = 0; i < N; i++) all_zero &= gf_f32(y)[i] == 0.0f;
    CHECK(all_zero);
    CHECK(gf_backward_with(ctx, y, gf_full(ctx, 1, (int64_t[]){N}, 1.0f)) == GF_OK);
    all_zero = true;
    for (int i = 0; i < N; i++) all_zero &= gf_f32(x->grad)[i] == 0.0f;
    CHECK(all_zero);

    gf_tensor_free(gw);
    gf_tensor_free(x);
    gf_ctx_free(ctx);
    return test_finish("test_dropout");
}
