/* Core unit tests: Philox known answers, RNG properties, arena reuse over 100k steps,
 * thread setting, views sharing storage. Add a case: a new static function called from main. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"

static void test_philox_known_answers(void) {
    /* Random123's published known-answer vectors for Philox4x32-10 */
    const uint32_t c0[4] = {0, 0, 0, 0}, k0[2] = {0, 0};
    const uint32_t c1[4] = {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, k1[2] = {0xffffffff, 0xffffffff};
    const uint32_t c2[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, k2[2] = {0xa4093822, 0x299f31d0};
    const uint32_t e0[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
    const uint32_t e1[4] = {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd};
    const uint32_t e2[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
    uint32_t o[4];
    gf_philox4x32(c0, k0, o);
    CHECK(memcmp(o, e0, sizeof o) == 0);
    gf_philox4x32(c1, k1, o);
    CHECK(memcmp(o, e1, sizeof o) == 0);
    gf_philox4x32(c2, k2, o);
    CHECK(memcmp(o, e2, sizeof o) == 0);
}

static void test_rng_properties(void) {
    gf_rng a, b, c;
    gf_rng_seed(&a, 42);
    gf_rng_seed(&b, 42);
    gf_rng_seed(&c, 43);
    int same = 1, differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t x = gf_rng_u32(&a), y = gf_rng_u32(&b), z = gf_rng_u32(&c);
        same &= x == y;
        differ += x != z;
    }
    CHECK(same);
    CHECK(differ > 990);
    /* a saved state continues the same stream */
    gf_rng saved = a;
    uint32_t next = gf_rng_u32(&a);
    CHECK(gf_rng_u32(&saved) == next);

    double sum = 0, sq = 0;
    int n = 200000, below_ok = 1;
    for (int i = 0; i < n; i++) {
        float u = gf_rng_uniform(&a);
        below_ok &= u >= 0.0f && u < 1.0f;
        float g = gf_rng_normal(&a);
        sum += g;
        sq += (double)g * g;
    }
    CHECK(below_ok);
    CHECK_NEAR(sum / n, 0.0, 0.01);
    CHECK_NEAR(sq / n, 1.0, 0.02);
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) counts[gf_rng_below(&a, 7)]++;
    for (int k = 0; k < 7; k++) CHECK(counts[k] > 9500 && counts[k] < 10500);

    int64_t idx[100];
    for (int i = 0; i < 100; i++) idx[i] = i;
    gf_rng_shuffle(&a, idx, 100);
    int seen[100] = {0}, moved = 0;
    for (int i = 0; i < 100; i++) {
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    int perm = 1;
    for (int i = 0; i < 100; i++) perm &= seen[i] == 1;
    CHECK(perm);
    CHECK(moved > 80);
}

/* A small training-like step (linear, activation, loss-like reduction, backward) repeated
 * 100k times: the arena must settle on one block and the process must not grow. */
static long rss_pages(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss;
}

static void test_arena_steady_state(void) {
    gf_ctx_params p = gf_ctx_default_params();
    p.arena_bytes = 4096; /* start tiny so the arena must grow, then settle */
    p.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&p);
    gf_tensor *w = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){8, 16});
    gf_tensor *b = gf_tensor_new(ctx, GF_F32, 1, (int64_t[]){8});
    gf_tensor_set_requires_grad(w, true);
    gf_tensor_set_requires_grad(b, true);
    size_t cap_after_warmup = 0;
    long rss_after_warmup = 0;
    int ok = 1;
    for (int step = 0; step < 100000; step++) {
        gf_tensor *x = gf_rand(ctx, 2, (int64_t[]){4, 16}, -1, 1);
        gf_tensor *y = gf_linear(ctx, x, w, b);
        gf_tensor *z = gf_mul(ctx, y, y);
        gf_tensor *l = gf_affine(ctx, z, 0.5f, 0.0f);
        gf_tensor *s = gf_reshape(ctx, l, 1, (int64_t[]){-1});
        gf_tensor *loss = gf_slice(ctx, s, 0, 0, 1, 1);
        ok &= gf_backward(ctx, loss) == GF_OK;
        gf_ctx_reset(ctx);
        if (step == 100) {
            cap_after_warmup = gf_arena_capacity(gf_ctx_arena(ctx));
            rss_after_warmup = rss_pages();
        }
    }
    CHECK(ok);
    CHECK(gf_arena_capacity(gf_ctx_arena(ctx)) == cap_after_warmup);
#ifndef __SANITIZE_ADDRESS__ /* ASan's quarantine holds freed memory: RSS says nothing there */
    CHECK(rss_pages() - rss_after_warmup < 64); /* < 256 KiB drift (allocator noise) */
#else
    (void)rss_after_warmup;
#endif
    CHECK(gf_arena_used(gf_ctx_arena(ctx)) == 0);
    gf_tensor_free(w);
    gf_tensor_free(b);
    gf_ctx_free(ctx);
}

static void test_threads(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    CHECK(gf_ctx_threads(ctx) == gf_available_cores());
    gf_ctx_set_threads(ctx, 1);
    CHECK(gf_ctx_threads(ctx) == 1);
    gf_ctx_set_threads(ctx, 0);
    CHECK(gf_ctx_threads(ctx) == gf_available_cores());
    CHECK(strcmp(gf_blas_threading(), "openmp") == 0);
    /* results do not depend on the thread count */
    gf_rng_seed(gf_ctx_rng(ctx), 7);
    gf_tensor *a = gf_rand(ctx, 2, (int64_t[]){300, 257}, -1, 1);
    gf_tensor *b = gf_rand(ctx, 2, (int64_t[]){257, 190}, -1, 1);
    gf_ctx_set_threads(ctx, 1);
    gf_tensor *c1 = gf_add(ctx, gf_matmul(ctx, a, b), a ? gf_slice(ctx, a, 1, 0, 190, 1) : NULL);
    gf_ctx_set_threads(ctx, 2);
    gf_tensor *c2 = gf_add(ctx, gf_matmul(ctx, a, b), a ? gf_slice(ctx, a, 1, 0, 190, 1) : NULL);
    CHECK(c1 && c2 && memcmp(c1->data, c2->data, sizeof(float) * (size_t)c1->numel) == 0);
    gf_ctx_free(ctx);
}

static void test_views_share_storage(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    float vals[6] = {0, 1, 2, 3, 4, 5};
    gf_tensor *x = gf_tensor_from_data(ctx, GF_F32, 2, (int64_t[]){2, 3}, vals);
    gf_tensor *t = gf_transpose(ctx, x, 0, 1);
    CHECK(t->data == x->data && !gf_tensor_is_contiguous(t));
    CHECK(t->shape[0] == 3 && t->shape[1] == 2);
    CHECK(gf_get_f32(t, 1) == 3.0f); /* t[0][1] = x[1][0] */
    gf_tensor *s = gf_slice(ctx, x, 1, 1, 3, 1);
    CHECK(s->data == gf_f32(x) + 1);
    gf_f32(x)[4] = 40.0f;
    CHECK(gf_get_f32(s, 2) == 40.0f); /* s[1][0] is x[1][1] */
    gf_tensor *r = gf_reshape(ctx, x, 1, (int64_t[]){6});
    CHECK(r->data == x->data);
    gf_tensor *rt = gf_reshape(ctx, t, 1, (int64_t[]){6}); /* needs a copy */
    CHECK(rt->data != x->data && gf_get_f32(rt, 1) == 3.0f);
    int64_t labels[3] = {2, 0, 1};
    gf_tensor *l = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){3}, labels);
    CHECK(l->dtype == GF_I64 && gf_get_i64(l, 0) == 2);
    gf_tensor *l2 = gf_slice(ctx, l, 0, 1, 3, 1);
    CHECK(l2 && gf_get_i64(l2, 1) == 1);
    gf_tensor *big = gf_tensor_new(ctx, GF_F32, 8, (int64_t[]){1, 2, 1, 2, 1, 2, 1, 2});
    CHECK(big && big->numel == 16);
    gf_tensor *too_big = gf_tensor_new(ctx, GF_F32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1});
    CHECK(!too_big && gf_ctx_status(ctx) == GF_ERR_SHAPE);
    gf_tensor_free(big);
    gf_tensor_free(l);
    gf_tensor_free(x);
    gf_ctx_free(ctx);
}

int main(void) {
    test_philox_known_answers();
    test_rng_properties();
    test_threads();
    test_views_share_storage();
    test_arena_steady_state();
    return test_finish("test_core");
}
