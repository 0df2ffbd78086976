/* Batch transforms: exact results where the answer is known (normalise, flip, identity affine,
 * 90-degree rotation, padded crop = a shifted window of the zero-padded image, erased
 * rectangle inside torchvision's ranges), reproducibility by seed, and the errors. To add a
 * case, build a pipeline, apply it to a known batch and check what must come out. */
#include "data_helpers.h"

#include "graft/graft.h"
#include "graft/transforms.h"
#include "testutil.h"

static gf_ctx *ctx;

/* A batch [B, C, H, W] with x = 1 + b * 1000 + c * 100 + h * 10 + w (no zeros). */
static gf_tensor *ramp(int64_t B, int64_t C, int64_t H, int64_t W) {
    const int64_t s[4] = {B, C, H, W};
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, 4, s);
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++)
                    gf_f32(t)[((b * C + c) * H + h) * W + w] =
                        (float)(1 + b * 1000 + c * 100 + h * 10 + w);
    return t;
}

static float at(const gf_tensor *t, int64_t b, int64_t c, int64_t h, int64_t w) {
    return gf_f32(t)[((b * t->shape[1] + c) * t->shape[2] + h) * t->shape[3] + w];
}

static void test_normalize(void) {
    gf_tf *tf = gf_tf_new(ctx);
    const float mean[2] = {100, 200}, sd[2] = {2, 4};
    CHECK(gf_tf_normalize(ctx, tf, 2, mean, sd) == GF_OK && gf_tf_count(tf) == 1);
    gf_tensor *x = ramp(2, 2, 2, 3);
    gf_tensor *y = gf_tf_apply(ctx, tf, x, 0);
    CHECK(y && gf_same_shape(x, y));
    int bad = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t c = (i / 6) % 2;
        bad += gf_f32(y)[i] != (gf_f32(x)[i] - mean[c]) / sd[c];
    }
    CHECK(bad == 0);
    /* one channel's values for all; a table row [F] has F channels */
    gf_tf *one = gf_tf_new(ctx);
    CHECK(gf_tf_normalize(ctx, one, 1, mean, sd) == GF_OK);
    y = gf_tf_apply(ctx, one, x, 0);
    CHECK(y && gf_f32(y)[7] == (gf_f32(x)[7] - 100) / 2);
    const int64_t ts[2] = {2, 2};
    gf_tensor *tab = gf_tensor_new(ctx, GF_F32, 2, ts);
    gf_f32(tab)[0] = 102;
    gf_f32(tab)[1] = 208;
    y = gf_tf_apply(ctx, tf, tab, 0);
    CHECK(y && gf_f32(y)[0] == 1 && gf_f32(y)[1] == 2);
    /* a 3-channel pipeline on 2 channels names the stage and the shape */
    const float m3[3] = {0, 0, 0}, s3[3] = {1, 1, 1};
    gf_tf *three = gf_tf_new(ctx);
    gf_tf_normalize(ctx, three, 3, m3, s3);
    CHECK(gf_tf_apply(ctx, three, x, 0) == NULL && gf_ctx_status(ctx) == GF_ERR_SHAPE);
    CHECK(strstr(gf_ctx_error(ctx), "normalize") && strstr(gf_ctx_error(ctx), "[2, 2, 3]"));
    gf_ctx_clear_error(ctx);
    const float s0[1] = {0};
    CHECK(gf_tf_normalize(ctx, three, 1, m3, s0) == GF_ERR_INVALID && gf_tf_count(three) == 1);
    gf_ctx_clear_error(ctx);
    gf_tf_free(tf);
    gf_tf_free(one);
    gf_tf_free(three);
    gf_tensor_free(x);
    gf_tensor_free(tab);
    gf_ctx_reset(ctx);
}

static void test_flip(void) {
    gf_tensor *x = ramp(3, 2, 2, 5);
    gf_tf *all = gf_tf_new(ctx), *none = gf_tf_new(ctx);
    gf_tf_hflip(ctx, all, 1.0f);
    gf_tf_hflip(ctx, none, 0.0f);
    gf_tensor *y = gf_tf_apply(ctx, all, x, 9), *z = gf_tf_apply(ctx, none, x, 9);
    int bad = 0;
    for (int64_t b = 0; b < 3; b++)
        for (int64_t c = 0; c < 2; c++)
            for (int64_t h = 0; h < 2; h++)
                for (int64_t w = 0; w < 5; w++) {
                    bad += at(y, b, c, h, w) != at(x, b, c, h, 4 - w);
                    bad += at(z, b, c, h, w) != at(x, b, c, h, w);
                }
    CHECK(bad == 0);
    /* p = 0.5 over many examples: about half flipped, the same ones for the same seed */
    gf_tf *half = gf_tf_new(ctx);
    gf_tf_hflip(ctx, half, 0.5f);
    gf_tensor *many = ramp(400, 1, 1, 2);
    gf_tensor *h1 = gf_tf_apply(ctx, half, many, 123), *h2 = gf_tf_apply(ctx, half, many, 123);
    gf_tensor *h3 = gf_tf_apply(ctx, half, many, 124);
    int flipped = 0, differ = 0;
    for (int64_t b = 0; b < 400; b++) {
        flipped += gf_f32(h1)[2 * b] != gf_f32(many)[2 * b];
        differ += gf_f32(h1)[2 * b] != gf_f32(h3)[2 * b];
    }
    CHECK(memcmp(gf_f32(h1), gf_f32(h2), 800 * sizeof(float)) == 0);
    CHECK(flipped > 150 && flipped < 250);
    CHECK(differ > 100);
    CHECK(gf_tf_hflip(ctx, half, 1.5f) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    gf_tf_free(all);
    gf_tf_free(none);
    gf_tf_free(half);
    gf_tensor_free(x);
    gf_tensor_free(many);
    gf_ctx_reset(ctx);
}

/* Every output of a padded random crop is a window of the zero-padded input. */
static void test_crop(void) {
    const int64_t B = 64, C = 2, H = 5, W = 6;
    gf_tensor *x = ramp(B, C, H, W);
    gf_tf *tf = gf_tf_new(ctx);
    CHECK(gf_tf_random_crop(ctx, tf, 4, 4, 2) == GF_OK);
    int64_t os[3];
    CHECK(gf_tf_out_shape(ctx, tf, 3, x->shape + 1, os) == GF_OK && os[0] == 2 && os[1] == 4 &&
          os[2] == 4);
    gf_tensor *y = gf_tf_apply(ctx, tf, x, 77);
    CHECK(y && y->shape[0] == B && y->shape[2] == 4 && y->shape[3] == 4);
    int matched = 0, offsets_seen = 0;
    bool seen[8][8] = {{false}};
    for (int64_t b = 0; b < B && y; b++) {
        int found = 0;
        for (int64_t top = -2; top <= H + 2 - 4; top++)
            for (int64_t left = -2; left <= W + 2 - 4; left++) {
                bool ok = true;
                for (int64_t c = 0; c < C && ok; c++)
                    for (int64_t i = 0; i < 4 && ok; i++)
                        for (int64_t j = 0; j < 4 && ok; j++) {
                            int64_t sy = top + i, sx = left + j;
                            float want =
                                sy >= 0 && sy < H && sx >= 0 && sx < W ? at(x, b, c, sy, sx) : 0.0f;
                            ok = at(y, b, c, i, j) == want;
                        }
                if (ok) {
                    found++;
                    if (!seen[top + 2][left + 2]) offsets_seen++;
                    seen[top + 2][left + 2] = true;
                }
            }
        matched += found == 1;
    }
    CHECK(matched == B);
    CHECK(offsets_seen >= 15); /* 6 x 7 = 42 possible windows; 64 draws reach many */
    /* too large a crop, and a crop of a table row */
    gf_tf *big = gf_tf_new(ctx);
    gf_tf_random_crop(ctx, big, 10, 4, 2);
    CHECK(gf_tf_apply(ctx, big, x, 0) == NULL && strstr(gf_ctx_error(ctx), "random_crop"));
    gf_ctx_clear_error(ctx);
    const int64_t ts[2] = {2, 3};
    gf_tensor *tab = gf_tensor_new(ctx, GF_F32, 2, ts);
    CHECK(gf_tf_apply(ctx, tf, tab, 0) == NULL && strstr(gf_ctx_error(ctx), "needs images"));
    gf_ctx_clear_error(ctx);
    CHECK(gf_tf_random_crop(ctx, tf, 0, 4, 0) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    gf_tf_free(tf);
    gf_tf_free(big);
    gf_tensor_free(x);
    gf_tensor_free(tab);
    gf_ctx_reset(ctx);
}

static void test_affine(void) {
    gf_tensor *x = ramp(2, 3, 5, 5);
    /* identity: no angle, shift or scale */
    gf_tf *id = gf_tf_new(ctx);
    CHECK(gf_tf_affine(ctx, id, 0, 0, 1, 1) == GF_OK);
    gf_tensor *y = gf_tf_apply(ctx, id, x, 3);
    CHECK(y && memcmp(gf_f32(y), gf_f32(x), (size_t)x->numel * sizeof(float)) == 0);
    /* a rotation keeps the centre pixel */
    gf_tf *rot = gf_tf_new(ctx);
    CHECK(gf_tf_affine(ctx, rot, 10, 0, 1, 1) == GF_OK);
    gf_tensor *r = gf_tf_apply(ctx, rot, x, 5);
    int centre_kept = 0;
    for (int64_t b = 0; b < 2; b++)
        for (int64_t c = 0; c < 3; c++)
            centre_kept += fabsf(at(r, b, c, 2, 2) - at(x, b, c, 2, 2)) < 1e-3f;
    CHECK(centre_kept == 6);
    gf_tf *tr = gf_tf_new(ctx);
    CHECK(gf_tf_affine(ctx, tr, 0, 0.2f, 1, 1) == GF_OK); /* shift by round(U(-1, 1)) pixels */
    gf_tensor *many = ramp(50, 1, 5, 5);
    gf_tensor *t = gf_tf_apply(ctx, tr, many, 8);
    int shifted_ok = 0;
    for (int64_t b = 0; b < 50; b++) {
        bool any = false;
        for (int64_t dy = -1; dy <= 1 && !any; dy++)
            for (int64_t dx = -1; dx <= 1 && !any; dx++) {
                bool ok = true;
                for (int64_t i = 0; i < 5 && ok; i++)
                    for (int64_t j = 0; j < 5 && ok; j++) {
                        int64_t si = i - dy, sj = j - dx;
                        float want =
                            si >= 0 && si < 5 && sj >= 0 && sj < 5 ? at(many, b, 0, si, sj) : 0.0f;
                        ok = fabsf(at(t, b, 0, i, j) - want) < 1e-3f;
                    }
                any = ok;
            }
        shifted_ok += any;
    }
    CHECK(shifted_ok == 50);
    CHECK(gf_tf_affine(ctx, tr, 200, 0, 1, 1) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_tf_affine(ctx, tr, 0, 0, 2, 1) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    gf_tf_free(id);
    gf_tf_free(rot);
    gf_tf_free(tr);
    gf_tensor_free(x);
    gf_tensor_free(many);
    gf_ctx_reset(ctx);
}

/* The direction and size of a rotation. White box: example 0 of a batch draws from a stream
 * seeded with the batch seed itself, and the affine stage draws its angle first, as
 * uniform(-degrees, degrees); so the angle of each seed is known here. A bright pixel 4 to the
 * right of the centre must land at angle theta counter-clockwise on screen (y points down). */
static void test_rotation_direction(void) {
    const int64_t s[4] = {1, 1, 9, 9};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, s);
    gf_f32(x)[4 * 9 + 8] = 1.0f; /* row 4 (centre), column 8 */
    gf_tf *rot = gf_tf_new(ctx);
    gf_tf_affine(ctx, rot, 90, 0, 1, 1);
    int good = 0;
    for (uint64_t seed = 0; seed < 20; seed++) {
        gf_rng r;
        gf_rng_seed(&r, seed);
        const double theta = (-90.0 + 180.0 * gf_rng_uniform(&r)) * 3.14159265358979 / 180.0;
        gf_tensor *y = gf_tf_apply(ctx, rot, x, seed);
        double m = 0, mx = 0, my = 0;
        for (int i = 0; i < 81; i++) {
            m += gf_f32(y)[i];
            mx += gf_f32(y)[i] * (i % 9);
            my += gf_f32(y)[i] * (i / 9);
        }
        const double ex = 4 + 4 * cos(theta), ey = 4 - 4 * sin(theta);
        bool ok = m > 0.5 && fabs(mx / m - ex) < 0.5 && fabs(my / m - ey) < 0.5;
        if (!ok)
            fprintf(stderr, "  rotation by %.1f deg: spot at (%.2f, %.2f), expected (%.2f, %.2f)\n",
                    theta * 180 / 3.14159265358979, mx / m, my / m, ex, ey);
        good += ok;
    }
    CHECK(good == 20);
    gf_tf_free(rot);
    gf_tensor_free(x);
    gf_ctx_reset(ctx);
}

static void test_erasing(void) {
    gf_tensor *x = ramp(100, 3, 10, 12);
    gf_tf *tf = gf_tf_new(ctx);
    CHECK(gf_tf_random_erasing(ctx, tf, 1.0f, 0.02f, 0.33f, 0.3f, 3.3f, -7.0f) == GF_OK);
    gf_tensor *y = gf_tf_apply(ctx, tf, x, 1);
    int erased = 0, good = 0;
    for (int64_t b = 0; b < 100; b++) {
        /* the erased cells form one rectangle, the same in every channel */
        int64_t r0 = 99, r1 = -1, c0 = 99, c1 = -1, cnt = 0;
        for (int64_t i = 0; i < 10; i++)
            for (int64_t j = 0; j < 12; j++)
                if (at(y, b, 0, i, j) == -7.0f) {
                    cnt++;
                    r0 = i < r0 ? i : r0;
                    r1 = i > r1 ? i : r1;
                    c0 = j < c0 ? j : c0;
                    c1 = j > c1 ? j : c1;
                }
        if (cnt == 0) continue; /* 10 failed tries leave the image */
        erased++;
        int64_t h = r1 - r0 + 1, w = c1 - c0 + 1;
        bool rect = cnt == h * w && h < 10 && w < 12;
        for (int64_t c = 1; c < 3 && rect; c++)
            for (int64_t i = 0; i < 10 && rect; i++)
                for (int64_t j = 0; j < 12 && rect; j++) {
                    bool in = i >= r0 && i <= r1 && j >= c0 && j <= c1;
                    rect = in ? at(y, b, c, i, j) == -7.0f : at(y, b, c, i, j) == at(x, b, c, i, j);
                }
        /* area within the scale range (rounding of h and w widens it a little) */
        double frac = (double)cnt / 120.0;
        good += rect && frac > 0.005 && frac < 0.45;
    }
    CHECK(erased > 80 && good == erased);
    gf_tf *off = gf_tf_new(ctx);
    gf_tf_random_erasing(ctx, off, 0.0f, 0.02f, 0.33f, 0.3f, 3.3f, 0.0f);
    gf_tensor *z = gf_tf_apply(ctx, off, x, 1);
    CHECK(z && memcmp(gf_f32(z), gf_f32(x), (size_t)x->numel * sizeof(float)) == 0);
    CHECK(gf_tf_random_erasing(ctx, off, 0.5f, 0.5f, 0.2f, 0.3f, 3.3f, 0) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    gf_tf_free(tf);
    gf_tf_free(off);
    gf_tensor_free(x);
    gf_ctx_reset(ctx);
}

/* A whole pipeline is reproducible by seed and an example's result does not depend on the
 * rest of the batch; the raw form matches the tensor form. */
static void test_pipeline(void) {
    gf_tf *tf = gf_tf_new(ctx);
    const float mean[3] = {0.5f, 0.4f, 0.3f}, sd[3] = {0.2f, 0.25f, 0.3f};
    gf_tf_random_crop(ctx, tf, 6, 6, 1);
    gf_tf_hflip(ctx, tf, 0.5f);
    gf_tf_affine(ctx, tf, 15, 0.1f, 0.9f, 1.1f);
    gf_tf_normalize(ctx, tf, 3, mean, sd);
    gf_tf_random_erasing(ctx, tf, 0.5f, 0.02f, 0.33f, 0.3f, 3.3f, 0.0f);
    CHECK(gf_tf_count(tf) == 5);
    gf_tensor *x = ramp(8, 3, 7, 7);
    gf_tensor *a = gf_tf_apply(ctx, tf, x, 42), *b = gf_tf_apply(ctx, tf, x, 42);
    gf_tensor *c = gf_tf_apply(ctx, tf, x, 43);
    CHECK(a && b && c && a->shape[2] == 6 && a->shape[3] == 6);
    const size_t bytes = (size_t)a->numel * sizeof(float);
    CHECK(memcmp(gf_f32(a), gf_f32(b), bytes) == 0);
    CHECK(memcmp(gf_f32(a), gf_f32(c), bytes) != 0);
    float *raw = malloc(bytes);
    CHECK(gf_tf_apply_raw(tf, 8, 3, x->shape + 1, gf_f32(x), raw, 42, NULL, 0) == GF_OK);
    CHECK(memcmp(raw, gf_f32(a), bytes) == 0);
    /* the first 3 examples alone transform as they did in the batch of 8 */
    CHECK(gf_tf_apply_raw(tf, 3, 3, x->shape + 1, gf_f32(x), raw, 42, NULL, 0) == GF_OK);
    CHECK(memcmp(raw, gf_f32(a), bytes * 3 / 8) == 0);
    free(raw);
    /* an empty pipeline copies */
    gf_tf *empty = gf_tf_new(ctx);
    gf_tensor *e = gf_tf_apply(ctx, empty, x, 0);
    CHECK(e && memcmp(gf_f32(e), gf_f32(x), (size_t)x->numel * sizeof(float)) == 0);
    CHECK(gf_tf_apply(ctx, tf, NULL, 0) == NULL);
    gf_ctx_clear_error(ctx);
    const int64_t one[1] = {3};
    gf_tensor *flat = gf_tensor_new(ctx, GF_F32, 1, one);
    CHECK(gf_tf_apply(ctx, tf, flat, 0) == NULL && gf_ctx_status(ctx) == GF_ERR_SHAPE);
    gf_ctx_clear_error(ctx);
    gf_tf_free(tf);
    gf_tf_free(empty);
    gf_tf_free(NULL);
    gf_tensor_free(x);
    gf_tensor_free(flat);
    gf_ctx_reset(ctx);
}

int main(void) {
    ctx = gf_ctx_new(NULL);
    test_normalize();
    test_flip();
    test_crop();
    test_affine();
    test_rotation_direction();
    test_erasing();
    test_pipeline();
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_free(ctx);
    return test_finish("test_data_transforms");
}
