/* The fast kernels against their plain references: each must give bitwise the
 * same results (or, where the summation order legitimately differs, match a double-precision
 * reference), at every dispatch level this CPU has:
 *   - uint8 -> float batch conversion == (float)v / 255 (and Normalize), every byte value;
 *   - relu with a saved sign mask == relu and its y > 0 backward;
 *   - dropout masks == gf_philox4x32's words, and applying them == the scalar expression;
 *   - LayerNorm rows (sums and input gradient with a weight, the affine output) == their
 *     double expressions, the sums equal across levels;
 *   - tiled max pooling == the general kernel, values and argmax, with ties, -0, +-inf, NaN;
 *     its fresh backward == zero-fill + scatter, every element written;
 *   - im2col / col2im (contiguous-shift path) == a naive unfold / fold in the same order;
 *   - the one-input-channel direct convolution: levels agree bitwise, and the op (forward,
 *     dX, dW, db) matches a naive double convolution, at 1 and 3 threads;
 *   - 3x3 depthwise kernels: forward and dX (stride 1) == the generic per-plane kernels
 *     bitwise, dW against a double reference, at strides 1 and 2 and paddings 0..2; through
 *     conv2d (channel multipliers 1..3) against a double convolution at 1 and 3 threads;
 *   - Winograd F(2x2, 3x3) convolution: forward and dX (written and accumulated) match a
 *     double convolution on odd and even sizes 1..17, at both levels (bitwise equal) and two
 *     chunkings; through conv2d at 1 and 3 threads (bitwise equal); the dispatch predicates;
 *   - backward kernels writing a fresh gradient buffer == zero-fill + accumulate (signed
 *     zeros included) for the elementwise activations, max pooling and conv2d (im2col,
 *     Winograd, depthwise and direct pointwise dX).
 * (Comparisons are bitwise: memcmp, so NaN payloads and the sign of zero count.)
 * To add a check: write a function below and call it from main. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "graft/data.h"
#include "graft/graft.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "kernels/maxpool.h"
#include "kernels/vec.h"
#include "kernels/winograd.h"
#include "ops/ops_internal.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint32_t rnd(void) { /* xorshift64*: the tests' own stream, fixed */
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1du) >> 32);
}
static float rndf(void) { return (float)rnd() / 4294967296.0f * 2.0f - 1.0f; }

static float *falloc(int64_t n) { return malloc(sizeof(float) * (size_t)(n > 0 ? n : 1)); }

static bool same_bits(const float *a, const float *b, int64_t n) {
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

/* The dispatch levels to compare: the portable one and the CPU's best. */
static int levels[2], n_levels;

/* ---- dropout masks ---------------------------------------------------------------------------- */

/* gf_vec_dropout_mask at every level against gf_philox4x32 and gf_rng_uniform's u >= p, block
 * by block: counters across a 2^32 boundary, counts that are not a multiple of 8, p at a
 * threshold's edge (a multiple of 2^-24 and its float neighbours). */
static void dropout_masks(void) {
    const float ps[] = {0.1f, 0.5f, 1.0f / 3.0f, 0.999f, 0x1.000002p-24f, 0.25f, 0x1.fffffep-3f};
    const uint64_t starts[] = {0, 12345, (UINT64_C(1) << 32) - 5, UINT64_C(0xFFFFFFFFFFFFFFF0)};
    uint8_t got[4 * 41], want[4 * 41];
    for (size_t pi = 0; pi < sizeof ps / sizeof ps[0]; pi++)
        for (size_t si = 0; si < sizeof starts / sizeof starts[0]; si++)
            for (int64_t n = 1; n <= 41; n += n < 10 ? 1 : 7) {
                const uint32_t key[2] = {(uint32_t)rnd(), (uint32_t)rnd()};
                for (int64_t b = 0; b < n; b++) {
                    const uint64_t c = starts[si] + (uint64_t)b;
                    const uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), 0, 0};
                    uint32_t w[4];
                    gf_philox4x32(ctr, key, w);
                    for (int k = 0; k < 4; k++)
                        want[4 * b + k] = (float)(w[k] >> 8) * (1.0f / 16777216.0f) >= ps[pi];
                }
                const uint32_t thr = (uint32_t)ceil((double)ps[pi] * 16777216.0);
                for (int li = 0; li < n_levels; li++) {
                    memset(got, 7, sizeof got);
                    gf_vec_dropout_mask(levels[li], key, starts[si], n, thr, got);
                    CHECK(memcmp(got, want, (size_t)(4 * n)) == 0);
                    CHECK(got[4 * n] == 7); /* nothing written past the blocks asked for */
                }
            }
}

/* gf_vec_dropout_apply at every level == the scalar definition in each mode, bitwise: NaN,
 * infinities and -0 at dropped and kept positions, lengths around the vector width, in place. */
static void dropout_applied(void) {
    enum { N = 45 };
    float x[N], y0[N], want[N], got[N];
    uint8_t mask[N];
    const float special[] = {NAN, INFINITY, -INFINITY, -0.0f, 0.0f};
    for (int i = 0; i < N; i++) {
        x[i] = i % 9 == 4 ? special[(i / 9) % 5] : rndf() * 3.0f;
        y0[i] = i % 7 == 3 ? -0.0f : rndf();
        mask[i] = (uint8_t)(rnd() % 3 != 0);
    }
    const float scale = 1.0f / 0.9f;
    for (int mode = GF_DROPOUT_WRITE; mode <= GF_DROPOUT_ADD; mode++)
        for (int64_t n = 0; n <= N; n += n < 18 ? 1 : 9)
            for (int li = 0; li < n_levels; li++)
                for (int inplace = 0; inplace < 2; inplace++) {
                    for (int64_t i = 0; i < n; i++) {
                        const float t = mask[i] ? x[i] * scale : 0.0f;
                        want[i] = mode == GF_DROPOUT_WRITE ? t
                                                           : (mode == GF_DROPOUT_FRESH ? 0.0f : y0[i]) + t;
                    }
                    memcpy(got, inplace ? x : y0, sizeof got);
                    if (inplace && mode == GF_DROPOUT_ADD) continue; /* y is x: not a use */
                    gf_vec_dropout_apply(levels[li], inplace ? got : x, mask, scale, got, n,
                                         (gf_dropout_apply_mode)mode);
                    CHECK(same_bits(got, want, n));
                }
}

/* ---- batch norm with fixed statistics, clamped ------------------------------------------------- */

/* gf_vec_bn_eval equals its float expression then the clamp, bit for bit, at every level and
 * in place (NaN, infinities and signed zeros included, with and without bounds), and the
 * double expression within float rounding. */
static void bn_eval_rows(void) {
    enum { N = 203 };
    float x[N], want[N], got[N];
    for (int i = 0; i < N; i++) x[i] = rndf() * 8.0f;
    x[0] = NAN, x[1] = INFINITY, x[2] = -INFINITY, x[3] = -0.0f, x[4] = 0.0f, x[5] = 6.0f;
    const double mu = 0.37, is = 1.0 / sqrt(0.81 + 1e-3), w = 1.7, b = -0.25;
    const float bounds[3][2] = {{-INFINITY, INFINITY}, {0.0f, 6.0f}, {0.0f, INFINITY}};
    for (int k = 0; k < 3; k++)
        for (int64_t n = 1; n <= N; n += n < 20 ? 1 : 37) {
            const float lo = bounds[k][0], hi = bounds[k][1];
            const float m = (float)mu, a = (float)(is * w), c = (float)b;
            for (int64_t i = 0; i < n; i++) {
                float v = (x[i] - m) * a + c;
                v = v < lo ? lo : v;
                want[i] = v > hi ? hi : v;
                /* within float rounding of the double expression */
                const double d = (x[i] - mu) * is * w + b;
                if (isfinite(d) && d > lo && d < hi) CHECK(fabs(v - d) <= 1e-5 * (1.0 + fabs(d)));
            }
            for (int li = 0; li < n_levels; li++) {
                gf_vec_bn_eval(levels[li], x, got, n, mu, is, w, b, lo, hi);
                CHECK(same_bits(got, want, n));
                memcpy(got, x, sizeof(float) * (size_t)n);
                gf_vec_bn_eval(levels[li], got, got, n, mu, is, w, b, lo, hi);
                CHECK(same_bits(got, want, n));
            }
        }
    /* with the activation's mask in the same pass: the bits of the two passes it replaces */
    float sep[N];
    uint8_t want_mask[N / 8], mask[N / 8];
    for (int relu = 0; relu < 2; relu++)
        for (int64_t n = 8; n <= N; n += 8) {
            gf_vec_bn_eval(0, x, sep, n, mu, is, w, b, -INFINITY, INFINITY);
            if (relu) gf_vec_relu_mask_fwd(sep, sep, want_mask, 0, n);
            else gf_vec_clamp_mask_fwd(sep, sep, want_mask, 0, n, 0.0f, 6.0f);
            for (int li = 0; li < n_levels; li++) {
                memset(mask, 0xa5, sizeof mask);
                gf_vec_bn_eval_mask(levels[li], x, got, mask, n, mu, is, w, b, relu, 0.0f, 6.0f);
                CHECK(same_bits(got, sep, n) && memcmp(mask, want_mask, (size_t)n / 8) == 0);
            }
        }
}

/* gf_vec_bn_grad equals its scalar expression bit for bit (fresh or accumulating), and
 * gf_vec_bn_sums agrees across levels bit for bit and with a plain double sum closely. */
static void bn_grad_rows(void) {
    enum { N = 131 };
    float x[N], g[N], gx[N], want[N], base[N];
    for (int i = 0; i < N; i++) x[i] = rndf() * 3.0f, g[i] = rndf(), base[i] = rndf();
    const double mu = -0.2, is = 1.3, k = 0.7, mg = 0.01, mgx = -0.03;
    const float z = 0.0f;
    for (int fresh = 0; fresh < 2; fresh++)
        for (int64_t n = 1; n <= N; n += n < 12 ? 1 : 29) {
            for (int64_t j = 0; j < n; j++) {
                const double xhat = (x[j] - mu) * is;
                want[j] = (fresh ? z : base[j]) + (float)(k * (g[j] - mg - xhat * mgx));
            }
            double sums[2][6];
            for (int li = 0; li < n_levels; li++) {
                memcpy(gx, base, sizeof gx);
                gf_vec_bn_grad(levels[li], x, g, gx, n, mu, is, k, mg, mgx, fresh);
                CHECK(same_bits(gx, want, n));
                gf_vec_bn_sums(levels[li], x, g, n, mu, is, &sums[li][0], &sums[li][1]);
                gf_vec_bn_sums(levels[li], x, NULL, n, 0.0, 0.0, &sums[li][2], NULL);
                gf_vec_bn_sums(levels[li], x, NULL, n, mu, 0.0, NULL, &sums[li][3]);
                gf_vec_bn_sums(levels[li], x, NULL, n, mu, 0.0, &sums[li][4], &sums[li][5]);
            }
            double ref[6] = {0};
            for (int64_t j = 0; j < n; j++) {
                ref[0] += g[j], ref[1] += g[j] * ((x[j] - mu) * is);
                ref[2] += x[j], ref[3] += (x[j] - mu) * (x[j] - mu);
                ref[4] += x[j] - mu; /* one pass: both centred sums */
            }
            ref[5] = ref[3];
            for (int q = 0; q < 6; q++) {
                CHECK(fabs(sums[0][q] - ref[q]) <= 1e-12 * (1.0 + fabs(ref[q])) * (double)n);
                if (n_levels > 1) CHECK(memcmp(&sums[0][q], &sums[1][q], sizeof(double)) == 0);
            }
        }
}

/* LayerNorm's rows: gf_vec_norm_grad with a weight equals its scalar double expression bit
 * for bit (fresh or accumulating), gf_vec_norm_sums with a weight agrees across levels bit for
 * bit and with a plain double sum closely, and gf_vec_ln_row equals (float)((x - mu) is w + b)
 * in double bit for bit, with and without w and b. */
static void ln_rows(void) {
    enum { N = 133 };
    float x[N], g[N], w[N], b[N], gx[N], want[N], base[N], y[N], want_y[N];
    for (int i = 0; i < N; i++)
        x[i] = rndf() * 3.0f, g[i] = rndf(), w[i] = 1.0f + rndf(), b[i] = rndf(), base[i] = rndf();
    const double mu = 0.11, is = 0.9, mg = 0.02, mgx = -0.05;
    for (int64_t n = 1; n <= N; n += n < 12 ? 1 : 29)
        for (int fresh = 0; fresh < 2; fresh++) {
            double ref[2] = {0}, sums[2][2];
            for (int64_t j = 0; j < n; j++) {
                const double gw = (double)g[j] * w[j], xhat = (x[j] - mu) * is;
                want[j] = (fresh ? 0.0f : base[j]) + (float)(is * (gw - mg - xhat * mgx));
                ref[0] += gw, ref[1] += gw * xhat;
            }
            for (int li = 0; li < n_levels; li++) {
                memcpy(gx, base, sizeof gx);
                gf_vec_norm_grad(levels[li], x, g, w, gx, n, mu, is, is, mg, mgx, fresh);
                CHECK(same_bits(gx, want, n));
                gf_vec_norm_sums(levels[li], x, g, w, n, mu, is, &sums[li][0], &sums[li][1]);
                for (int q = 0; q < 2; q++)
                    CHECK(fabs(sums[li][q] - ref[q]) <= 1e-12 * (1.0 + fabs(ref[q])) * (double)n);
                for (int affine = 0; affine < 4; affine++) {
                    const float *pw = affine & 1 ? w : NULL, *pb = affine & 2 ? b : NULL;
                    for (int64_t j = 0; j < n; j++) {
                        double v = (x[j] - mu) * is;
                        if (pw) v *= pw[j];
                        if (pb) v += pb[j];
                        want_y[j] = (float)v;
                    }
                    gf_vec_ln_row(levels[li], x, pw, pb, y, n, mu, is);
                    CHECK(same_bits(y, want_y, n));
                }
            }
            if (n_levels > 1) CHECK(memcmp(sums[0], sums[1], sizeof sums[0]) == 0);
        }
}

/* gf_vec_clamp_mask_fwd: the clamp of gf_clamp and the mask lo <= x <= hi, bit for bit, from
 * any start (a multiple of 8) and in place; NaN, infinities, signed zeros and the bounds
 * themselves included. */
static void clamp_masks(void) {
    enum { N = 77 };
    float x[N], y[N], want[N];
    uint8_t mask[N / 8 + 1], wmask[N / 8 + 1];
    for (int i = 0; i < N; i++) x[i] = rndf() * 9.0f - 1.0f;
    x[1] = NAN, x[2] = INFINITY, x[3] = -INFINITY, x[4] = -0.0f, x[5] = 0.0f, x[6] = 6.0f;
    x[9] = -0.0f, x[12] = 6.0f, x[40] = NAN;
    const float bounds[2][2] = {{0.0f, 6.0f}, {-0.0f, INFINITY}};
    for (int k = 0; k < 2; k++)
        for (int64_t i0 = 0; i0 <= 16; i0 += 8)
            for (int64_t i1 = i0; i1 <= N; i1 += 5) {
                const float lo = bounds[k][0], hi = bounds[k][1];
                memset(wmask, 0, sizeof wmask);
                for (int64_t i = i0; i < i1; i++) {
                    const float c = x[i] < lo ? lo : x[i];
                    want[i] = c > hi ? hi : c;
                    wmask[i / 8] |= (uint8_t)(((x[i] >= lo) & (x[i] <= hi)) << (i % 8));
                }
                memset(mask, 0, sizeof mask);
                gf_vec_clamp_mask_fwd(x, y, mask, i0, i1, lo, hi);
                CHECK(same_bits(y + i0, want + i0, i1 - i0));
                CHECK(memcmp(mask, wmask, sizeof mask) == 0);
                memcpy(y, x, sizeof x);
                gf_vec_clamp_mask_fwd(y, y, mask, i0, i1, lo, hi);
                CHECK(same_bits(y + i0, want + i0, i1 - i0));
            }
}

/* ---- uint8 -> float ------------------------------------------------------------------------ */

static void u8_conversion(gf_ctx *ctx) {
    uint8_t src[256 + 37];
    float got[256 + 37], want[256 + 37];
    for (int v = 0; v < 256 + 37; v++) src[v] = (uint8_t)(v * 7 + 3); /* every byte value */
    const float mean = 0.2860f, std = 0.3530f; /* Fashion-MNIST's */
    for (int li = 0; li < n_levels; li++)
        for (int norm = 0; norm < 2; norm++)
            for (int64_t n = 1; n <= 256 + 37; n += n < 40 ? 1 : 53) {
                for (int64_t i = 0; i < n; i++) {
                    want[i] = (float)src[i] / 255.0f;
                    if (norm) want[i] = (want[i] - mean) / std;
                }
                gf_vec_u8_to_f32(levels[li], src, got, n, norm ? mean : 0.0f, norm ? std : 1.0f);
                CHECK(same_bits(got, want, n));
            }
    /* through gf_dataset_batch, in a shuffled order */
    gf_dataset d = {0};
    d.n = 50, d.rows = 5, d.cols = 7, d.n_classes = 3;
    d.images = malloc(50 * 35), d.labels = malloc(50);
    for (int i = 0; i < 50 * 35; i++) d.images[i] = (uint8_t)rnd();
    for (int i = 0; i < 50; i++) d.labels[i] = (uint8_t)(i % 3);
    int64_t idx[9] = {49, 3, 17, 0, 17, 22, 48, 1, 30};
    gf_tensor *x = gf_empty(ctx, GF_F32, 2, (int64_t[]){9, 35});
    CHECK(gf_dataset_batch(ctx, &d, idx, 9, mean, std, x, NULL) == GF_OK);
    bool ok = true;
    for (int i = 0; i < 9; i++)
        for (int k = 0; k < 35; k++) {
            float v = ((float)d.images[idx[i] * 35 + k] / 255.0f - mean) / std;
            ok = ok && memcmp(&v, gf_f32(x) + i * 35 + k, sizeof v) == 0;
        }
    CHECK(ok);
    free(d.images), free(d.labels);
    gf_ctx_reset(ctx);
}

static void lane_sum(void) {
    float x[300];
    for (int i = 0; i < 300; i++) x[i] = rndf() * 1000.0f;
    for (int64_t n = 0; n <= 300; n += n < 40 ? 1 : 37) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += x[i];
        CHECK_NEAR(gf_vec_sum(x, n), s, 1e-4 * 1000.0 * (double)(n + 1));
        CHECK(gf_vec_sum(x, n) == gf_vec_sum(x, n));
    }
}

/* ---- max pooling ------------------------------------------------------------------------------ */

/* Values from a small set, so windows hold ties, signed zeros, infinities and NaNs. */
static float nasty(void) {
    static const float vals[] = {-1.0f, 0.0f, -0.0f, 1.0f, 2.0f, 2.0f, 0.5f, -INFINITY, INFINITY};
    uint32_t r = rnd() % 40;
    if (r == 0) return NAN;
    if (r == 1) return -NAN;
    if (r < 12) return vals[r % 9];
    return rndf();
}

static void maxpool_tiled(void) {
    static const int ks[][2] = {{2, 2}, {2, 2}, {1, 1}, {3, 3}, {2, 3}, {3, 2}, {1, 2}, {4, 4}};
    for (int trial = 0; trial < 400; trial++) {
        const int *k = ks[trial % 8];
        gf_maxpool_geom g = {0};
        g.h = 1 + rnd() % 15, g.w = 1 + rnd() % 23;
        g.kh = g.sh = k[0], g.kw = g.sw = k[1], g.dh = g.dw = 1;
        g.oh = g.h / g.kh, g.ow = g.w / g.kw;
        if (g.oh < 1 || g.ow < 1) continue;
        CHECK(gf_maxpool_tiled(&g));
        const int64_t hw = g.h * g.w, per = g.oh * g.ow;
        float *x = falloc(hw), *y0 = falloc(per);
        float *y1 = falloc(per), *y2 = falloc(per);
        int32_t *a0 = malloc(sizeof(int32_t) * (size_t)per);
        int32_t *a1 = malloc(sizeof(int32_t) * (size_t)per);
        for (int64_t i = 0; i < hw; i++) x[i] = nasty();
        gf_maxpool_plane_ref(&g, x, y0, a0);
        gf_maxpool_plane_tiled(&g, x, y1, a1);
        gf_maxpool_plane_tiled(&g, x, y2, NULL); /* inference: no argmax */
        CHECK(same_bits(y0, y1, per) && same_bits(y0, y2, per));
        CHECK(memcmp(a0, a1, sizeof(int32_t) * (size_t)per) == 0);
        /* fresh backward (garbage-filled buffer) == zero-fill + scatter */
        float *dy = falloc(per), *gr = falloc(hw);
        float *gf = falloc(hw);
        for (int64_t i = 0; i < per; i++) dy[i] = rnd() % 5 == 0 ? -0.0f : rndf();
        memset(gr, 0, sizeof(float) * (size_t)hw);
        for (int64_t i = 0; i < per; i++) gr[a0[i]] += dy[i];
        memset(gf, 0xff, sizeof(float) * (size_t)hw);
        gf_maxpool_plane_bwd(&g, dy, a1, gf, true);
        CHECK(same_bits(gf, gr, hw));
        free(x), free(y0), free(y1), free(y2), free(a0), free(a1), free(dy), free(gr), free(gf);
    }
    /* geometries outside the fast path are recognised as such */
    gf_maxpool_geom g = {4, 4, 2, 2, 2, 2, 2, 2, 1, 0, 1, 1};
    CHECK(!gf_maxpool_tiled(&g));
    gf_maxpool_geom g2 = {4, 4, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1};
    CHECK(!gf_maxpool_tiled(&g2));
}

/* The relu sign-mask kernels == the plain relu and its y > 0 backward, split at any byte. */
static void relu_mask(void) {
    enum { N = 1000 };
    float x[N], y[N], g[N], gx[N], want_y[N], want_f[N], want_a[N], acc[N];
    uint8_t mask[(N + 7) / 8];
    for (int i = 0; i < N; i++) {
        x[i] = nasty(), g[i] = rnd() % 5 == 0 ? 0.0f : rndf(), acc[i] = rndf();
        want_y[i] = x[i] < 0.0f ? 0.0f : x[i];
        float t = want_y[i] > 0.0f ? g[i] : 0.0f;
        want_f[i] = 0.0f + t;
        want_a[i] = acc[i] + t;
    }
    for (int64_t n = N - 7; n <= N; n++) {
        const int64_t split = (n / 3) & ~(int64_t)7; /* two calls, as two threads would */
        memset(y, 0xff, sizeof y);
        gf_vec_relu_mask_fwd(x, y, mask, 0, split);
        gf_vec_relu_mask_fwd(x, y, mask, split, n);
        CHECK(same_bits(y, want_y, n));
        bool bits = true;
        for (int64_t i = 0; i < n; i++) bits = bits && ((mask[i / 8] >> (i % 8)) & 1) == (x[i] > 0.0f);
        CHECK(bits);
        memset(gx, 0xff, sizeof gx);
        gf_vec_relu_mask_bwd(mask, g, gx, 0, split, true);
        gf_vec_relu_mask_bwd(mask, g, gx, split, n, true);
        CHECK(same_bits(gx, want_f, n));
        memcpy(gx, acc, sizeof gx);
        gf_vec_relu_mask_bwd(mask, g, gx, 0, split, false);
        gf_vec_relu_mask_bwd(mask, g, gx, split, n, false);
        CHECK(same_bits(gx, want_a, n));
    }
}

/* ---- im2col / col2im ---------------------------------------------------------------------------- */

static void naive_unfold(const gf_conv_geom *g, const float *x, float *col, bool fold) {
    for (int64_t i = 0; i < g->kh; i++)
        for (int64_t j = 0; j < g->kw; j++)
            for (int64_t oy = 0; oy < g->oh; oy++)
                for (int64_t ox = 0; ox < g->ow; ox++) {
                    int64_t iy = oy * g->sh - g->ph + i * g->dh, ix = ox * g->sw - g->pw + j * g->dw;
                    int64_t c = ((i * g->kw + j) * g->oh + oy) * g->ow + ox;
                    bool in = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
                    if (!fold) col[c] = in ? x[iy * g->w + ix] : 0.0f;
                    else if (in) ((float *)x)[iy * g->w + ix] += col[c];
                }
}

static void unfold_fold(void) {
    for (int trial = 0; trial < 300; trial++) {
        gf_conv_geom g = {0};
        g.n = 1, g.c = 1, g.o = 1, g.groups = 1;
        g.h = 1 + rnd() % 12, g.w = 1 + rnd() % 12;
        g.kh = 1 + rnd() % 4, g.kw = 1 + rnd() % 4;
        g.dh = 1 + rnd() % 2, g.dw = 1 + rnd() % 2;
        g.sh = g.sw = 1;
        if (trial % 3 == 0) g.sh = 1 + rnd() % 2, g.sw = 1 + rnd() % 2;
        /* mostly "same" padding (the contiguous-shift path) where the kernel allows it */
        g.ph = (g.dh * (g.kh - 1)) % 2 == 0 && trial % 4 ? g.dh * (g.kh - 1) / 2 : rnd() % 3;
        g.pw = (g.dw * (g.kw - 1)) % 2 == 0 && trial % 4 ? g.dw * (g.kw - 1) / 2 : rnd() % 3;
        g.oh = gf_conv_out_size(g.h, g.kh, g.sh, g.ph, g.dh);
        g.ow = gf_conv_out_size(g.w, g.kw, g.sw, g.pw, g.dw);
        if (g.oh < 1 || g.ow < 1) continue;
        const int64_t hw = g.h * g.w, nc = g.kh * g.kw * g.oh * g.ow;
        float *x = falloc(hw), *c0 = falloc(nc);
        float *c1 = falloc(nc);
        for (int64_t i = 0; i < hw; i++) x[i] = rndf();
        naive_unfold(&g, x, c0, false);
        memset(c1, 0xff, sizeof(float) * (size_t)nc);
        gf_im2col_plane(&g, x, c1, g.oh * g.ow);
        CHECK(same_bits(c0, c1, nc));
        /* fold: the same per-element order of additions, onto a nonzero start */
        float *x0 = falloc(hw), *x1 = falloc(hw);
        for (int64_t i = 0; i < nc; i++) c0[i] = c1[i] = rndf();
        for (int64_t i = 0; i < hw; i++) x0[i] = x1[i] = rndf();
        naive_unfold(&g, x0, c0, true);
        gf_col2im_plane_add(&g, c1, g.oh * g.ow, x1);
        CHECK(same_bits(x0, x1, hw));
        free(x), free(c0), free(c1), free(x0), free(x1);
    }
}

/* ---- one-input-channel direct convolution ----------------------------------------------------- */

static double max_rel_err(const float *got, const double *want, int64_t n) {
    double scale = 1e-3, worst = 0;
    for (int64_t i = 0; i < n; i++) scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / scale;
        worst = e > worst ? e : worst;
    }
    return worst;
}

static gf_tensor *param(gf_ctx *ctx, int nd, const int64_t *shape) {
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, nd, shape);
    for (int64_t i = 0; i < t->numel; i++) gf_f32(t)[i] = rndf();
    gf_tensor_set_requires_grad(t, true);
    return t;
}

/* conv2d with C = 1 (the direct path) at 1 and 3 threads vs a naive double convolution; the
 * kernel levels agree bitwise. */
static void conv_c1(int64_t n, int64_t h, int64_t w, int64_t o, int k, int s, int pad, int dil) {
    gf_conv_geom g = {0};
    g.n = n, g.c = 1, g.h = h, g.w = w, g.o = o, g.kh = g.kw = k, g.groups = 1;
    g.sh = g.sw = s, g.ph = g.pw = pad, g.dh = g.dw = dil;
    g.oh = gf_conv_out_size(h, k, s, pad, dil), g.ow = gf_conv_out_size(w, k, s, pad, dil);
    CHECK(gf_conv_c1_direct(&g));
    const int64_t P = g.oh * g.ow, kk = (int64_t)k * k, ny = n * o * P;
    float *xs = falloc(n * h * w), *ws = falloc(o * kk);
    float *bs = falloc(o), *dys = falloc(ny);
    for (int64_t i = 0; i < n * h * w; i++) xs[i] = rndf();
    for (int64_t i = 0; i < o * kk; i++) ws[i] = rndf();
    for (int64_t i = 0; i < o; i++) bs[i] = rndf();
    for (int64_t i = 0; i < ny; i++) dys[i] = rndf();
    /* reference */
    double *ry = calloc((size_t)ny, sizeof(double)), *rdx = calloc((size_t)(n * h * w), sizeof(double));
    double *rdw = calloc((size_t)(o * kk), sizeof(double)), *rdb = calloc((size_t)o, sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int64_t oc = 0; oc < o; oc++)
            for (int64_t p = 0; p < P; p++) {
                int64_t oy = p / g.ow, ox = p % g.ow, yi = (i * o + oc) * P + p;
                double acc = bs[oc], d = dys[yi];
                for (int64_t t = 0; t < kk; t++) {
                    int64_t iy = oy * s - pad + t / k * dil, ix = ox * s - pad + t % k * dil;
                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                    int64_t xi = (i * h + iy) * w + ix;
                    acc += (double)ws[oc * kk + t] * xs[xi];
                    rdx[xi] += (double)ws[oc * kk + t] * d;
                    rdw[oc * kk + t] += (double)xs[xi] * d;
                }
                ry[yi] = acc;
                rdb[oc] += d;
            }
    /* kernel levels, image 0 */
    float *col = falloc(kk * P);
    float *ya = falloc(o * P), *yb = falloc(o * P);
    float *pa = falloc(o * (kk + 1)), *pb = falloc(o * (kk + 1));
    gf_im2col_plane(&g, xs, col, P);
    gf_conv_c1_fwd(levels[0], &g, col, ws, bs, ya);
    gf_conv_c1_fwd(levels[n_levels - 1], &g, col, ws, bs, yb);
    CHECK(same_bits(ya, yb, o * P));
    gf_conv_c1_bwd_w(levels[0], &g, col, dys, pa);
    gf_conv_c1_bwd_w(levels[n_levels - 1], &g, col, dys, pb);
    CHECK(same_bits(pa, pb, o * (kk + 1)));
    /* the op */
    float *first_y = falloc(ny), *first_dw = falloc(o * kk);
    for (int threads = 1; threads <= 3; threads += 2) {
        gf_ctx_params cp = gf_ctx_default_params();
        cp.n_threads = threads;
        gf_ctx *ctx = gf_ctx_new(&cp);
        int64_t xsh[4] = {n, 1, h, w}, wsh[4] = {o, 1, k, k}, ysh[4] = {n, o, g.oh, g.ow};
        gf_tensor *x = param(ctx, 4, xsh), *wt = param(ctx, 4, wsh), *b = param(ctx, 1, &o);
        memcpy(x->data, xs, sizeof(float) * (size_t)x->numel);
        memcpy(wt->data, ws, sizeof(float) * (size_t)wt->numel);
        memcpy(b->data, bs, sizeof(float) * (size_t)o);
        gf_conv_params p = {{s, s}, {pad, pad}, {dil, dil}, 1};
        gf_tensor *y = gf_conv2d(ctx, x, wt, b, &p);
        gf_tensor *dy = gf_tensor_from_data(ctx, GF_F32, 4, ysh, dys);
        CHECK(y && dy && gf_backward_with(ctx, y, dy) == GF_OK);
        if (y && x->grad && wt->grad && b->grad) {
            double ey = max_rel_err(gf_f32(y), ry, ny), ex = max_rel_err(gf_f32(x->grad), rdx, x->numel);
            double ew = max_rel_err(gf_f32(wt->grad), rdw, o * kk);
            double eb = max_rel_err(gf_f32(b->grad), rdb, o);
            if (ey > 1e-5 || ex > 1e-5 || ew > 1e-5 || eb > 1e-5)
                fprintf(stderr, "conv c1 %lldx%lld k%d s%d p%d d%d: errors y %.3g dx %.3g "
                        "dw %.3g db %.3g\n", (long long)h, (long long)w, k, s, pad, dil, ey, ex,
                        ew, eb);
            CHECK(ey <= 1e-5 && ex <= 1e-5 && ew <= 1e-5 && eb <= 1e-5);
            if (threads == 1) {
                memcpy(first_y, gf_f32(y), sizeof(float) * (size_t)ny);
                memcpy(first_dw, gf_f32(wt->grad), sizeof(float) * (size_t)(o * kk));
            } else { /* thread-count independent */
                CHECK(same_bits(first_y, gf_f32(y), ny));
                CHECK(same_bits(first_dw, gf_f32(wt->grad), o * kk));
            }
        }
        gf_tensor_free(x), gf_tensor_free(wt), gf_tensor_free(b), gf_tensor_free(dy);
        gf_ctx_free(ctx);
    }
    free(xs), free(ws), free(bs), free(dys), free(ry), free(rdx), free(rdw), free(rdb);
    free(col), free(ya), free(yb), free(pa), free(pb), free(first_y), free(first_dw);
}

/* ---- 3x3 depthwise kernels --------------------------------------------------------------------- */

/* One plane: the vectorised forward and dX equal the generic kernels bitwise (onto a nonzero
 * start), at every level; dW matches a double reference and the levels agree bitwise. */
static void dw3_plane(int64_t h, int64_t w, int64_t s_h, int64_t s_w, int64_t ph, int64_t pw,
                      int64_t end) {
    gf_conv_geom g = {0};
    g.n = 1, g.c = 2, g.o = 2, g.groups = 2, g.h = h, g.w = w, g.kh = g.kw = 3;
    g.sh = s_h, g.sw = s_w, g.ph = ph, g.pw = pw, g.dh = g.dw = 1;
    /* end: extra padding after the end (gf_conv2d_padded's geometry) */
    g.oh = gf_conv_out_size(h + end, 3, s_h, ph, 1), g.ow = gf_conv_out_size(w + end, 3, s_w, pw, 1);
    if (g.oh < 1 || g.ow < 1) return;
    CHECK(gf_dwconv3_fits(&g));
    const int64_t hw = h * w, P = g.oh * g.ow;
    float *x = falloc(hw), *k = falloc(9), *dy = falloc(P), *y0 = falloc(P), *y1 = falloc(P);
    float *dx0 = falloc(hw), *dx1 = falloc(hw);
    for (int64_t i = 0; i < hw; i++) x[i] = rndf(), dx0[i] = rndf();
    for (int64_t i = 0; i < 9; i++) k[i] = rndf();
    for (int64_t i = 0; i < P; i++) dy[i] = rndf(), y0[i] = rndf();
    double ref[9] = {0}, dk0[9] = {0};
    for (int64_t oy = 0; oy < g.oh; oy++)
        for (int64_t ox = 0; ox < g.ow; ox++)
            for (int64_t t = 0; t < 9; t++) {
                int64_t iy = oy * s_h - ph + t / 3, ix = ox * s_w - pw + t % 3;
                if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                    ref[t] += (double)x[iy * w + ix] * dy[oy * g.ow + ox];
            }
    memcpy(y1, y0, sizeof(float) * (size_t)P);
    memcpy(dx1, dx0, sizeof(float) * (size_t)hw);
    gf_dwconv_plane(&g, x, k, y0);
    gf_dwconv_plane_bwd_x(&g, dy, k, dx0);
    float *ys = falloc(P), *dxs = falloc(hw);
    for (int l = 0; l < n_levels; l++) {
        memcpy(ys, y1, sizeof(float) * (size_t)P);
        gf_dwconv3_plane(levels[l], &g, x, k, ys);
        CHECK(same_bits(ys, y0, P));
        if (gf_dwconv3_bwd_x_fits(&g)) {
            memcpy(dxs, dx1, sizeof(float) * (size_t)hw);
            gf_dwconv3_plane_bwd_x(levels[l], &g, dy, k, dxs);
            CHECK(same_bits(dxs, dx0, hw));
        }
        double dk[9] = {0};
        gf_dwconv3_plane_bwd_w(levels[l], &g, x, dy, dk);
        float dkf[9], rf[9];
        for (int t = 0; t < 9; t++) dkf[t] = (float)dk[t], rf[t] = (float)dk0[t];
        if (l == 0) memcpy(dk0, dk, sizeof dk);
        else CHECK(same_bits(dkf, rf, 9));
        CHECK(max_rel_err(dkf, ref, 9) <= 1e-5);
    }
    free(x), free(k), free(dy), free(y0), free(y1), free(dx0), free(dx1), free(ys), free(dxs);
}

static void dw3_planes(void) {
    for (int trial = 0; trial < 400; trial++)
        dw3_plane(1 + rnd() % 40, 1 + rnd() % 40, 1 + rnd() % 2, 1 + rnd() % 2, rnd() % 3,
                  rnd() % 3, rnd() % 2);
    for (int trial = 0; trial < 40; trial++) /* padding wider than the output */
        dw3_plane(1 + rnd() % 6, 1 + rnd() % 6, 1 + rnd() % 2, 1 + rnd() % 2, rnd() % 6, rnd() % 6,
                  0);
    dw3_plane(112, 112, 1, 1, 1, 1, 0); /* MobileNetV2's layers */
    dw3_plane(113, 113, 2, 2, 0, 0, 0);
    dw3_plane(48, 48, 2, 2, 0, 0, 1); /* its ZeroPadding2D applied by the conv */
    dw3_plane(7, 7, 1, 1, 1, 1, 0);
}

/* Eight planes at once (small planes): the forward pass from the bias and dX equal the
 * generic per-plane kernels bitwise, at every level; dW matches a double reference and the
 * levels agree bitwise. */
static void dw3x8_planes(int64_t h, int64_t w, int64_t s_h, int64_t s_w, int64_t ph, int64_t pw,
                         int64_t end) {
    gf_conv_geom g = {0};
    g.n = 1, g.c = 8, g.o = 8, g.groups = 8, g.h = h, g.w = w, g.kh = g.kw = 3;
    g.sh = s_h, g.sw = s_w, g.ph = ph, g.pw = pw, g.dh = g.dw = 1;
    /* end: extra padding after the end (gf_conv2d_padded's geometry) */
    g.oh = gf_conv_out_size(h + end, 3, s_h, ph, 1), g.ow = gf_conv_out_size(w + end, 3, s_w, pw, 1);
    if (g.oh < 1 || g.ow < 1 || !gf_dwconv3x8_fits(&g)) return;
    const int64_t hw = h * w, P = g.oh * g.ow;
    float *x = falloc(8 * hw), *k = falloc(72), *b = falloc(8), *dy = falloc(8 * P);
    float *y0 = falloc(8 * P), *ys = falloc(8 * P), *dx0 = falloc(8 * hw), *dx1 = falloc(8 * hw);
    float *dxs = falloc(8 * hw), *work = falloc(gf_dwconv3x8_work(&g));
    for (int64_t i = 0; i < 8 * hw; i++) x[i] = rndf(), dx0[i] = rndf();
    for (int64_t i = 0; i < 72; i++) k[i] = rndf();
    for (int64_t i = 0; i < 8; i++) b[i] = rndf();
    for (int64_t i = 0; i < 8 * P; i++) dy[i] = rndf();
    double ref[72] = {0};
    memcpy(dx1, dx0, sizeof(float) * (size_t)(8 * hw));
    for (int64_t l = 0; l < 8; l++) {
        for (int64_t p = 0; p < P; p++) y0[l * P + p] = b[l];
        gf_dwconv_plane(&g, x + l * hw, k + l * 9, y0 + l * P);
        gf_dwconv_plane_bwd_x(&g, dy + l * P, k + l * 9, dx0 + l * hw);
        for (int64_t p = 0; p < P; p++)
            for (int64_t t = 0; t < 9; t++) {
                int64_t iy = p / g.ow * s_h - ph + t / 3, ix = p % g.ow * s_w - pw + t % 3;
                if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                    ref[l * 9 + t] += (double)x[l * hw + iy * w + ix] * dy[l * P + p];
            }
    }
    float dkf[2][72];
    for (int lv = 0; lv < n_levels; lv++) {
        gf_dwconv3x8(levels[lv], &g, x, k, lv ? NULL : b, ys, work);
        if (lv) /* without a bias: the plain kernels from zeros */
            for (int64_t l = 0; l < 8; l++) {
                float *z = falloc(P);
                memset(z, 0, sizeof(float) * (size_t)P);
                gf_dwconv_plane(&g, x + l * hw, k + l * 9, z);
                CHECK(same_bits(ys + l * P, z, P));
                free(z);
            }
        else CHECK(same_bits(ys, y0, 8 * P));
        memcpy(dxs, dx1, sizeof(float) * (size_t)(8 * hw));
        gf_dwconv3x8_bwd_x(levels[lv], &g, dy, k, dxs, work);
        CHECK(same_bits(dxs, dx0, 8 * hw));
        double dk[72] = {0};
        gf_dwconv3x8_bwd_w(levels[lv], &g, x, dy, dk, work);
        for (int t = 0; t < 72; t++) dkf[lv][t] = (float)dk[t];
        CHECK(max_rel_err(dkf[lv], ref, 72) <= 1e-5);
        if (lv) CHECK(same_bits(dkf[lv], dkf[0], 72));
    }
    free(x), free(k), free(b), free(dy), free(y0), free(ys), free(dx0), free(dx1), free(dxs);
    free(work);
}

static void dw3x8_all(void) {
    for (int trial = 0; trial < 300; trial++)
        dw3x8_planes(1 + rnd() % 50, 1 + rnd() % 50, 1 + rnd() % 2, 1 + rnd() % 2, rnd() % 3,
                     rnd() % 3, rnd() % 2);
    for (int trial = 0; trial < 40; trial++) /* padding wider than the output */
        dw3x8_planes(1 + rnd() % 5, 1 + rnd() % 5, 1 + rnd() % 2, 1 + rnd() % 2, rnd() % 5,
                     rnd() % 5, 0);
    dw3x8_planes(3, 3, 1, 1, 1, 1, 0); /* MobileNetV2's small layers */
    dw3x8_planes(6, 6, 1, 1, 1, 1, 0);
    dw3x8_planes(7, 7, 2, 2, 0, 0, 0);
    dw3x8_planes(12, 12, 1, 1, 1, 1, 0);
    dw3x8_planes(12, 12, 2, 2, 0, 0, 1); /* its ZeroPadding2D applied by the conv */
    dw3x8_planes(6, 6, 2, 2, 0, 0, 1);
    dw3x8_planes(16, 16, 1, 1, 1, 1, 0);
    dw3x8_planes(48, 48, 1, 1, 1, 1, 0);
    dw3x8_planes(48, 48, 2, 2, 1, 1, 0);
}

/* Depthwise conv2d (groups = C, channel multiplier m) through the op at 1 and 3 threads vs a
 * naive double convolution: y, dX, dW, db; bitwise the same at both thread counts. */
static void dw_op(int64_t n, int64_t c, int64_t m, int64_t h, int64_t w, int s, int pad) {
    const int64_t o = c * m, oh = gf_conv_out_size(h, 3, s, pad, 1);
    const int64_t ow = gf_conv_out_size(w, 3, s, pad, 1), P = oh * ow, ny = n * o * P;
    float *xs = falloc(n * c * h * w), *ws = falloc(o * 9), *bs = falloc(o), *dys = falloc(ny);
    for (int64_t i = 0; i < n * c * h * w; i++) xs[i] = rndf();
    for (int64_t i = 0; i < o * 9; i++) ws[i] = rndf();
    for (int64_t i = 0; i < o; i++) bs[i] = rndf();
    for (int64_t i = 0; i < ny; i++) dys[i] = rndf();
    double *ry = calloc((size_t)ny, sizeof(double)), *rdx = calloc((size_t)(n * c * h * w), sizeof(double));
    double *rdw = calloc((size_t)(o * 9), sizeof(double)), *rdb = calloc((size_t)o, sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int64_t oc = 0; oc < o; oc++)
            for (int64_t p = 0; p < P; p++) {
                int64_t oy = p / ow, ox = p % ow, yi = (i * o + oc) * P + p;
                double acc = bs[oc], d = dys[yi];
                for (int64_t t = 0; t < 9; t++) {
                    int64_t iy = oy * s - pad + t / 3, ix = ox * s - pad + t % 3;
                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                    int64_t xi = ((i * c + oc / m) * h + iy) * w + ix;
                    acc += (double)ws[oc * 9 + t] * xs[xi];
                    rdx[xi] += (double)ws[oc * 9 + t] * d;
                    rdw[oc * 9 + t] += (double)xs[xi] * d;
                }
                ry[yi] = acc;
                rdb[oc] += d;
            }
    float *first[3] = {falloc(ny), falloc(n * c * h * w), falloc(o * 9)};
    for (int threads = 1; threads <= 3; threads += 2) {
        gf_ctx_params cp = gf_ctx_default_params();
        cp.n_threads = threads;
        gf_ctx *ctx = gf_ctx_new(&cp);
        int64_t xsh[4] = {n, c, h, w}, wsh[4] = {o, 1, 3, 3}, ysh[4] = {n, o, oh, ow};
        gf_tensor *x = param(ctx, 4, xsh), *wt = param(ctx, 4, wsh), *b = param(ctx, 1, &o);
        memcpy(x->data, xs, sizeof(float) * (size_t)x->numel);
        memcpy(wt->data, ws, sizeof(float) * (size_t)wt->numel);
        memcpy(b->data, bs, sizeof(float) * (size_t)o);
        gf_conv_params p = {{s, s}, {pad, pad}, {1, 1}, (int)c};
        gf_tensor *y = gf_conv2d(ctx, x, wt, b, &p);
        gf_tensor *dy = gf_tensor_from_data(ctx, GF_F32, 4, ysh, dys);
        CHECK(y && dy && gf_backward_with(ctx, y, dy) == GF_OK);
        if (y && x->grad && wt->grad && b->grad) {
            double ey = max_rel_err(gf_f32(y), ry, ny), ex = max_rel_err(gf_f32(x->grad), rdx, x->numel);
            double ew = max_rel_err(gf_f32(wt->grad), rdw, o * 9), eb = max_rel_err(gf_f32(b->grad), rdb, o);
            if (ey > 1e-5 || ex > 1e-5 || ew > 1e-5 || eb > 1e-5)
                fprintf(stderr, "depthwise %lldx%lld m%lld s%d p%d: errors y %.3g dx %.3g dw %.3g "
                        "db %.3g\n", (long long)h, (long long)w, (long long)m, s, pad, ey, ex, ew, eb);
            CHECK(ey <= 1e-5 && ex <= 1e-5 && ew <= 1e-5 && eb <= 1e-5);
            const float *got[3] = {gf_f32(y), gf_f32(x->grad), gf_f32(wt->grad)};
            const int64_t len[3] = {ny, x->numel, o * 9};
            for (int q = 0; q < 3; q++) {
                if (threads == 1) memcpy(first[q], got[q], sizeof(float) * (size_t)len[q]);
                else CHECK(same_bits(first[q], got[q], len[q]));
            }
        }
        gf_tensor_free(x), gf_tensor_free(wt), gf_tensor_free(b), gf_tensor_free(dy);
        gf_ctx_free(ctx);
    }
    free(xs), free(ws), free(bs), free(dys), free(ry), free(rdx), free(rdw), free(rdb);
    free(first[0]), free(first[1]), free(first[2]);
}

/* ---- Winograd F(2x2, 3x3) ---------------------------------------------------------------------- */

/* Naive 3x3, pad-1, stride-1 convolution in double: y = conv(x, w) + b (b may be NULL) and
 * dx = the adjoint applied to dy, for x [n, c, h, w], w [o, c, 3, 3], y and dy [n, o, h, w]. */
static void ref_conv3(int64_t n, int64_t c, int64_t o, int64_t h, int64_t w, const float *x,
                      const float *k, const float *b, const float *dy, double *y, double *dx) {
    memset(dx, 0, sizeof(double) * (size_t)(n * c * h * w));
    for (int64_t i = 0; i < n; i++)
        for (int64_t oc = 0; oc < o; oc++)
            for (int64_t oy = 0; oy < h; oy++)
                for (int64_t ox = 0; ox < w; ox++) {
                    const int64_t yi = ((i * o + oc) * h + oy) * w + ox;
                    double acc = b ? b[oc] : 0.0;
                    for (int64_t ic = 0; ic < c; ic++)
                        for (int64_t t = 0; t < 9; t++) {
                            int64_t iy = oy - 1 + t / 3, ix = ox - 1 + t % 3;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                            const int64_t xi = ((i * c + ic) * h + iy) * w + ix;
                            const double kv = k[(oc * c + ic) * 9 + t];
                            acc += kv * x[xi];
                            dx[xi] += kv * dy[yi];
                        }
                    y[yi] = acc;
                }
}

/* Tolerance of the Winograd results, relative to the largest reference value (max_rel_err),
 * as for the direct kernels above. Winograd rounds differently, not much worse: its channel
 * sums are 9x shorter than im2col's, but it forms them from transformed values up to ~4x
 * (B^T d B) and 2.25x (G g G^T) the size of the inputs, and A^T M A adds 9 such sums before
 * the cancellation that brings them back to the output's size. Measured against this double
 * reference: at most 3e-7 on the shapes below (im2col + OpenBLAS sgemm on the same data:
 * 3e-7..7e-7), growing to ~9e-7 with 512 input channels (im2col: ~4e-7). 1e-5 leaves a
 * margin of 10x over that, while an indexing or transform mistake gives errors of order 1. */
#define WINO_TOL 1e-5

/* gf_wino_conv directly, both dispatch levels (bitwise equal) and two chunkings, forward
 * (flip = false) and input gradient (flip = true, written fresh and accumulated) against
 * the double reference. */
static void wino_kernel(gf_ctx *ctx, int64_t n, int64_t c, int64_t o, int64_t h, int64_t w,
                        bool bias) {
    const int64_t nx = n * c * h * w, ny = n * o * h * w;
    float *x = falloc(nx), *k = falloc(o * c * 9), *b = falloc(o), *dy = falloc(ny);
    for (int64_t i = 0; i < nx; i++) x[i] = rndf();
    for (int64_t i = 0; i < o * c * 9; i++) k[i] = rndf();
    for (int64_t i = 0; i < o; i++) b[i] = rndf();
    for (int64_t i = 0; i < ny; i++) dy[i] = rndf();
    double *ry = malloc(sizeof(double) * (size_t)ny), *rdx = malloc(sizeof(double) * (size_t)nx);
    double *racc = malloc(sizeof(double) * (size_t)nx);
    ref_conv3(n, c, o, h, w, x, k, bias ? b : NULL, dy, ry, rdx);
    float *y[2], *dx[2], *acc = falloc(nx), *start = falloc(nx);
    for (int64_t i = 0; i < nx; i++) start[i] = rndf(), racc[i] = start[i] + rdx[i];
    const int64_t tw = (w + 1) / 2;
    /* the default budget (whole images per chunk here), then 2 tile rows per chunk, which
     * splits images between chunks whenever (h + 1) / 2 is odd */
    const int64_t budgets[2] = {0, 2 * 16 * (c + o) * tw};
    double worst = 0;
    for (int bi = 0; bi < 2; bi++) {
        gf_conv_set_chunk_budget(ctx, budgets[bi]);
        for (int li = 0; li < n_levels; li++) {
            y[li] = falloc(ny), dx[li] = falloc(nx);
            memset(y[li], 0xff, sizeof(float) * (size_t)ny); /* every element must be written */
            memset(dx[li], 0xff, sizeof(float) * (size_t)nx);
            memcpy(acc, start, sizeof(float) * (size_t)nx);
            CHECK(gf_wino_conv(ctx, levels[li], n, c, o, h, w, x, k, false, bias ? b : NULL,
                               y[li], false));
            CHECK(gf_wino_conv(ctx, levels[li], n, o, c, h, w, dy, k, true, NULL, dx[li], false));
            CHECK(gf_wino_conv(ctx, levels[li], n, o, c, h, w, dy, k, true, NULL, acc, true));
            gf_ctx_reset(ctx);
            double e[3] = {max_rel_err(y[li], ry, ny), max_rel_err(dx[li], rdx, nx),
                           max_rel_err(acc, racc, nx)};
            for (int j = 0; j < 3; j++) worst = e[j] > worst ? e[j] : worst;
            if (!(e[0] <= WINO_TOL && e[1] <= WINO_TOL && e[2] <= WINO_TOL))
                fprintf(stderr, "winograd n%lld c%lld o%lld %lldx%lld bias %d budget %lld: "
                        "errors y %.3g dx %.3g dx+= %.3g\n", (long long)n, (long long)c,
                        (long long)o, (long long)h, (long long)w, bias, (long long)budgets[bi],
                        e[0], e[1], e[2]);
            CHECK(e[0] <= WINO_TOL && e[1] <= WINO_TOL && e[2] <= WINO_TOL);
        }
        if (n_levels == 2) {
            CHECK(same_bits(y[0], y[1], ny));
            CHECK(same_bits(dx[0], dx[1], nx));
        }
        for (int li = 0; li < n_levels; li++) free(y[li]), free(dx[li]);
    }
    gf_conv_set_chunk_budget(ctx, 0);
    if (getenv("GRAFT_TEST_VERBOSE"))
        printf("winograd n%lld c%lld o%lld %lldx%lld: worst error %.3g\n", (long long)n,
               (long long)c, (long long)o, (long long)h, (long long)w, worst);
    free(x), free(k), free(b), free(dy), free(ry), free(rdx), free(racc), free(acc), free(start);
}

/* The dispatch predicates: the benchmark layer takes Winograd both ways; other geometries,
 * too few channels, small images and (for dX) a fan-in of 8 or more do not. */
static void wino_dispatch(void) {
    gf_conv_geom g = {0};
    g.n = 2, g.c = 32, g.o = 64, g.h = g.w = 14, g.kh = g.kw = 3, g.groups = 1;
    g.sh = g.sw = g.ph = g.pw = g.dh = g.dw = 1, g.oh = g.ow = 14;
    CHECK(gf_wino_fwd(&g) && gf_wino_dx(&g));
    gf_conv_geom t = g;
    t.sh = 2, t.oh = 7;
    CHECK(!gf_wino_fwd(&t) && !gf_wino_dx(&t));
    t = g, t.ph = 0, t.oh = 12;
    CHECK(!gf_wino_fwd(&t) && !gf_wino_dx(&t));
    t = g, t.dw = 2, t.ow = 12;
    CHECK(!gf_wino_fwd(&t) && !gf_wino_dx(&t));
    t = g, t.kh = t.kw = 5, t.ph = t.pw = 2;
    CHECK(!gf_wino_fwd(&t) && !gf_wino_dx(&t));
    t = g, t.groups = 2;
    CHECK(!gf_wino_fwd(&t) && !gf_wino_dx(&t));
    t = g, t.c = 4;
    CHECK(!gf_wino_fwd(&t) && !gf_wino_dx(&t));
    t = g, t.h = t.oh = 5;
    CHECK(!gf_wino_fwd(&t) && !gf_wino_dx(&t));
    t = g, t.c = 8;
    CHECK(gf_wino_fwd(&t) && !gf_wino_dx(&t));
}

/* conv2d where it dispatches to Winograd (forward and dX; dW and db stay on im2col), at 1
 * and 3 threads: within tolerance of the double reference, and the same bits either way. */
static void wino_op(int64_t n, int64_t c, int64_t o, int64_t h, int64_t w, bool bias) {
    gf_conv_geom g = {0};
    g.n = n, g.c = c, g.h = h, g.w = w, g.o = o, g.kh = g.kw = 3, g.groups = 1;
    g.sh = g.sw = g.ph = g.pw = g.dh = g.dw = 1, g.oh = h, g.ow = w;
    CHECK(gf_wino_fwd(&g) && gf_wino_dx(&g));
    const int64_t nx = n * c * h * w, ny = n * o * h * w, nw = o * c * 9;
    float *xs = falloc(nx), *ws = falloc(nw), *bs = falloc(o), *dys = falloc(ny);
    for (int64_t i = 0; i < nx; i++) xs[i] = rndf();
    for (int64_t i = 0; i < nw; i++) ws[i] = rndf();
    for (int64_t i = 0; i < o; i++) bs[i] = rndf();
    for (int64_t i = 0; i < ny; i++) dys[i] = rndf();
    double *ry = malloc(sizeof(double) * (size_t)ny), *rdx = malloc(sizeof(double) * (size_t)nx);
    ref_conv3(n, c, o, h, w, xs, ws, bias ? bs : NULL, dys, ry, rdx);
    double *rdw = calloc((size_t)nw, sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int64_t oc = 0; oc < o; oc++)
            for (int64_t p = 0; p < h * w; p++)
                for (int64_t ic = 0; ic < c; ic++)
                    for (int64_t t = 0; t < 9; t++) {
                        int64_t iy = p / w - 1 + t / 3, ix = p % w - 1 + t % 3;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                        rdw[(oc * c + ic) * 9 + t] += (double)xs[((i * c + ic) * h + iy) * w + ix] *
                                                      dys[(i * o + oc) * h * w + p];
                    }
    float *first_y = falloc(ny), *first_dx = falloc(nx), *first_dw = falloc(nw);
    for (int threads = 1; threads <= 3; threads += 2) {
        gf_ctx_params cp = gf_ctx_default_params();
        cp.n_threads = threads;
        gf_ctx *ctx = gf_ctx_new(&cp);
        int64_t xsh[4] = {n, c, h, w}, wsh[4] = {o, c, 3, 3}, ysh[4] = {n, o, h, w};
        gf_tensor *x = param(ctx, 4, xsh), *wt = param(ctx, 4, wsh), *b = param(ctx, 1, &o);
        memcpy(x->data, xs, sizeof(float) * (size_t)nx);
        memcpy(wt->data, ws, sizeof(float) * (size_t)nw);
        memcpy(b->data, bs, sizeof(float) * (size_t)o);
        gf_conv_params p = gf_conv_default_params();
        p.padding[0] = p.padding[1] = 1;
        gf_tensor *y = gf_conv2d(ctx, x, wt, bias ? b : NULL, &p);
        gf_tensor *dy = gf_tensor_from_data(ctx, GF_F32, 4, ysh, dys);
        CHECK(y && dy && gf_backward_with(ctx, y, dy) == GF_OK);
        if (y && x->grad && wt->grad) {
            double ey = max_rel_err(gf_f32(y), ry, ny), ex = max_rel_err(gf_f32(x->grad), rdx, nx);
            double ew = max_rel_err(gf_f32(wt->grad), rdw, nw);
            if (!(ey <= WINO_TOL && ex <= WINO_TOL && ew <= 1e-5))
                fprintf(stderr, "conv2d winograd n%lld c%lld o%lld %lldx%lld: errors y %.3g "
                        "dx %.3g dw %.3g\n", (long long)n, (long long)c, (long long)o,
                        (long long)h, (long long)w, ey, ex, ew);
            CHECK(ey <= WINO_TOL && ex <= WINO_TOL && ew <= 1e-5);
            if (threads == 1) {
                memcpy(first_y, gf_f32(y), sizeof(float) * (size_t)ny);
                memcpy(first_dx, gf_f32(x->grad), sizeof(float) * (size_t)nx);
                memcpy(first_dw, gf_f32(wt->grad), sizeof(float) * (size_t)nw);
            } else { /* thread-count independent, dW's row-split products included */
                CHECK(same_bits(first_y, gf_f32(y), ny));
                CHECK(same_bits(first_dx, gf_f32(x->grad), nx));
                CHECK(same_bits(first_dw, gf_f32(wt->grad), nw));
            }
        }
        gf_tensor_free(x), gf_tensor_free(wt), gf_tensor_free(b), gf_tensor_free(dy);
        gf_ctx_free(ctx);
    }
    free(xs), free(ws), free(bs), free(dys), free(ry), free(rdx), free(rdw);
    free(first_y), free(first_dx), free(first_dw);
}

/* ---- fresh gradient buffers ------------------------------------------------------------------- */

typedef gf_tensor *(*unary_fn)(gf_ctx *, gf_tensor *);
static gf_tensor *op_relu(gf_ctx *c, gf_tensor *x) { return gf_relu(c, x); }
static gf_tensor *op_leaky(gf_ctx *c, gf_tensor *x) { return gf_leaky_relu(c, x, 0.1f); }
static gf_tensor *op_leaky_neg(gf_ctx *c, gf_tensor *x) { return gf_leaky_relu(c, x, -0.3f); }
/* d/dx x^-1 < 0 turns a +0 upstream gradient into a -0 term, which a fresh buffer must store
 * as 0 + (-0) = +0, as accumulation does (a gradient buffer never holds -0) */
static gf_tensor *op_recip(gf_ctx *c, gf_tensor *x) { return gf_pow_scalar(c, x, -1.0f); }
static gf_tensor *op_elu(gf_ctx *c, gf_tensor *x) { return gf_elu(c, x, 0.7f); }
static gf_tensor *op_clamp(gf_ctx *c, gf_tensor *x) { return gf_clamp(c, x, -0.5f, 0.25f); }
static gf_tensor *op_softplus(gf_ctx *c, gf_tensor *x) { return gf_softplus(c, x, 2.0f, 1.0f); }
static gf_tensor *op_gelu(gf_ctx *c, gf_tensor *x) { return gf_gelu(c, x, GF_GELU_TANH); }
static gf_tensor *op_tanh(gf_ctx *c, gf_tensor *x) { return gf_tanh(c, x); }
static gf_tensor *op_pool(gf_ctx *c, gf_tensor *x) {
    gf_pool_params pp = gf_pool_default_params(2);
    return gf_max_pool2d(c, x, &pp);
}
static gf_tensor *op_pool_overlap(gf_ctx *c, gf_tensor *x) {
    gf_pool_params pp = gf_pool_default_params(3);
    pp.stride[0] = pp.stride[1] = 2;
    pp.padding[0] = pp.padding[1] = 1;
    return gf_max_pool2d(c, x, &pp);
}
static gf_tensor *conv_w;
static int conv_stride = 1;
static gf_tensor *op_conv(gf_ctx *c, gf_tensor *x) {
    gf_conv_params p = gf_conv_default_params();
    p.padding[0] = p.padding[1] = conv_w->shape[2] / 2;
    p.stride[0] = p.stride[1] = conv_stride;
    p.groups = x->shape[1] / conv_w->shape[1];
    return gf_conv2d(c, x, conv_w, NULL, &p);
}

/* op(x) backward with an upstream gradient holding zeros: the input's gradient written fresh
 * (the input is an arena tensor, as inside a network) == accumulated into zeros (the input
 * is a persistent tensor, whose buffer starts zeroed), bit for bit. */
static int64_t fresh_c = 4, fresh_h = 9, fresh_w = 7; /* the input's channels and plane */
static void fresh_vs_accumulate(gf_ctx *ctx, const char *name, unary_fn op) {
    int64_t shape[4] = {3, fresh_c, fresh_h, fresh_w};
    gf_tensor *xp = gf_tensor_new(ctx, GF_F32, 4, shape);
    for (int64_t i = 0; i < xp->numel; i++) { /* ties and signed zeros, all finite */
        float v = nasty();
        gf_f32(xp)[i] = v == v && fabsf(v) < INFINITY ? v : rndf();
    }
    gf_tensor_set_requires_grad(xp, true);
    gf_tensor *zero = gf_zeros(ctx, GF_F32, 4, shape);
    gf_tensor *xa = gf_add(ctx, xp, zero); /* an arena tensor requiring grad */
    gf_tensor *ya = op(ctx, xa);
    CHECK(ya != NULL);
    if (!ya) return;
    gf_tensor *g = gf_empty(ctx, GF_F32, ya->ndim, ya->shape);
    for (int64_t i = 0; i < g->numel; i++) gf_f32(g)[i] = rnd() % 4 == 0 ? 0.0f : rndf();
    CHECK(gf_backward_with(ctx, ya, g) == GF_OK && xa->grad != NULL);
    float *fresh = malloc(sizeof(float) * (size_t)xa->numel);
    memcpy(fresh, gf_f32(xa->grad), sizeof(float) * (size_t)xa->numel);
    gf_tensor_zero_grad(xp);
    gf_tensor *yp = op(ctx, xp);
    CHECK(yp && gf_backward_with(ctx, yp, g) == GF_OK && xp->grad != NULL);
    bool same = xp->grad && same_bits(fresh, gf_f32(xp->grad), xp->numel);
    if (!same) fprintf(stderr, "%s: fresh gradient differs from accumulated\n", name);
    CHECK(same);
    free(fresh);
    gf_tensor_free(xp);
    gf_ctx_reset(ctx);
}

/* ---- thread-count independent products ------------------------------------------------------ */

/* gf_gemm against a double reference, and bit for bit the same at 1, 2, 3 and 5 threads, for
 * every transpose combination and shapes that give one tile, a row grid, a column grid and
 * ragged edges; beta 0 overwrites a NaN-filled C. */
static void gemm_threads(int64_t m, int64_t n, int64_t k, bool ta, bool tb, float beta) {
    int64_t lda = ta ? m : k, ldb = tb ? k : n;
    float *a = falloc(m * k), *b = falloc(k * n), *c0 = falloc(m * n), *c = falloc(m * n);
    float *first = falloc(m * n);
    for (int64_t i = 0; i < m * k; i++) a[i] = rndf();
    for (int64_t i = 0; i < k * n; i++) b[i] = rndf();
    for (int64_t i = 0; i < m * n; i++) c0[i] = beta == 0.0f ? NAN : rndf();
    double worst = 0.0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = beta == 0.0f ? 0.0 : (double)beta * c0[i * n + j];
            for (int64_t p = 0; p < k; p++)
                s += 0.5 * (double)(ta ? a[p * lda + i] : a[i * lda + p]) *
                     (tb ? b[j * ldb + p] : b[p * ldb + j]);
            first[i * n + j] = (float)s;
        }
    const int counts[4] = {1, 2, 3, 5};
    float *ref = falloc(m * n);
    memcpy(ref, first, sizeof(float) * (size_t)(m * n));
    for (int t = 0; t < 4; t++) {
        gf_ctx_params cp = gf_ctx_default_params();
        cp.n_threads = counts[t];
        gf_ctx *ctx = gf_ctx_new(&cp);
        memcpy(c, c0, sizeof(float) * (size_t)(m * n));
        gf_gemm(ctx, ta, tb, m, n, k, 0.5f, a, lda, b, ldb, beta, c, n);
        if (t == 0) {
            for (int64_t i = 0; i < m * n; i++) {
                double e = fabs((double)c[i] - ref[i]) / (1.0 + fabs((double)ref[i]));
                if (!(e <= worst)) worst = e; /* NaN makes worst NaN */
            }
            memcpy(first, c, sizeof(float) * (size_t)(m * n));
        } else if (!same_bits(first, c, m * n)) {
            fprintf(stderr, "gemm %lldx%lldx%lld ta%d tb%d: %d threads differ from 1\n",
                    (long long)m, (long long)n, (long long)k, ta, tb, counts[t]);
            CHECK(false);
        }
        gf_ctx_free(ctx);
    }
    if (!(worst <= 1e-5))
        fprintf(stderr, "gemm %lldx%lldx%lld: error %.3g\n", (long long)m, (long long)n,
                (long long)k, worst);
    CHECK(worst <= 1e-5);
    free(a), free(b), free(c0), free(c), free(first), free(ref);
}

static void gemm_tiles(void) {
    int64_t tm, tn;
    gf_gemm_tiles(8, 8, 8, &tm, &tn); /* small: one tile */
    CHECK(tm == 8 && tn == 8);
    gf_gemm_tiles(300, 190, 257, &tm, &tn); /* rows cut in slices of a multiple of 32 */
    CHECK(tm < 300 && tm % 32 == 0 && tn == 190);
    gf_gemm_tiles(37, 1000, 300, &tm, &tn); /* columns cut */
    CHECK(tm == 37 && tn < 1000 && tn % 32 == 0);
    /* no slice narrower than 128: each one repacks the whole other operand */
    CHECK(tm >= 128 || tm == 37);
    gf_gemm_tiles(128, 256, 784, &tm, &tn); /* the MLP's first layer: two 128-wide tiles */
    CHECK(tm == 128 && tn == 128);
    gf_gemm_tiles(128, 200, 784, &tm, &tn); /* too narrow to cut */
    CHECK(tm == 128 && tn == 200);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_threads(300, 190, 257, ta, tb, 0.0f);
            gemm_threads(37, 1000, 300, ta, tb, 1.0f);
        }
    gemm_threads(1000, 33, 300, false, false, 0.25f);
    gemm_threads(5, 7, 3, true, false, 0.0f);
    gemm_threads(64, 784, 64, true, false, 1.0f);
}

/* A 1x1 convolution on planes of >= 256 positions (one image per thread, dW summed in fixed
 * groups of images): y, dX and dW at 1, 2 and 3 threads bitwise the same, and within 1e-5 of
 * a double reference. */
static void pointwise_threads(void) {
    const int64_t n = 6, c = 16, o = 24, h = 20, w = 20, P = h * w;
    for (int groups = 1; groups <= 2; groups++) {
        const int64_t cg = c / groups, og = o / groups;
        float *first[3] = {NULL, NULL, NULL};
        double *ry = calloc((size_t)(n * o * P), sizeof(double));
        double *rdw = calloc((size_t)(o * cg), sizeof(double));
        for (int threads = 1; threads <= 3; threads++) {
            gf_ctx_params cp = gf_ctx_default_params();
            cp.n_threads = threads;
            gf_ctx *ctx = gf_ctx_new(&cp);
            rng_state = 77; /* the same tensors at every thread count */
            gf_tensor *x = param(ctx, 4, (int64_t[]){n, c, h, w});
            gf_tensor *wt = param(ctx, 4, (int64_t[]){o, cg, 1, 1});
            gf_tensor *dy = gf_empty(ctx, GF_F32, 4, (int64_t[]){n, o, h, w});
            for (int64_t i = 0; i < dy->numel; i++) gf_f32(dy)[i] = rndf();
            gf_conv_params p = gf_conv_default_params();
            p.groups = groups;
            gf_tensor *y = gf_conv2d(ctx, x, wt, NULL, &p);
            CHECK(y && gf_backward_with(ctx, y, dy) == GF_OK);
            if (threads == 1)
                for (int64_t i = 0; i < n; i++)
                    for (int64_t oc = 0; oc < o; oc++)
                        for (int64_t k = 0; k < cg; k++) {
                            const int64_t ic = oc / og * cg + k;
                            for (int64_t q = 0; q < P; q++) {
                                const double xv = gf_f32(x)[(i * c + ic) * P + q];
                                ry[(i * o + oc) * P + q] += gf_f32(wt)[oc * cg + k] * xv;
                                rdw[oc * cg + k] += gf_f32(dy)[(i * o + oc) * P + q] * xv;
                            }
                        }
            const float *now[3] = {gf_f32(y), gf_f32(x->grad), gf_f32(wt->grad)};
            const int64_t len[3] = {n * o * P, n * c * P, o * cg};
            CHECK(max_rel_err(now[0], ry, len[0]) <= 1e-5 && max_rel_err(now[2], rdw, len[2]) <= 1e-5);
            for (int k = 0; k < 3; k++) {
                if (threads == 1) {
                    first[k] = falloc(len[k]);
                    memcpy(first[k], now[k], sizeof(float) * (size_t)len[k]);
                } else {
                    CHECK(same_bits(first[k], now[k], len[k]));
                }
            }
            gf_tensor_free(x), gf_tensor_free(wt);
            gf_ctx_free(ctx);
        }
        for (int k = 0; k < 3; k++) free(first[k]);
        free(ry), free(rdw);
    }
}

/* The gradients of gf_conv2d_padded (recorded) against those of gf_pad then gf_conv2d: dX,
 * dW and db within float rounding (dW skips the padded zeros' terms, so its sums may round
 * differently). */
static void conv_padded_grads(gf_ctx *ctx, gf_tensor *x, gf_tensor *w, gf_tensor *b,
                              const gf_conv_params *p, const int *k, const int64_t pads[4]) {
    gf_tensor *leaf[3] = {x, w, b};
    float *first[3] = {NULL, NULL, NULL};
    const uint64_t start = rng_state;
    for (int way = 0; way < 2; way++) {
        rng_state = start; /* the same r both ways */
        for (int j = 0; j < 3; j++) {
            leaf[j]->grad = NULL;
            gf_tensor_set_requires_grad(leaf[j], true);
        }
        gf_tensor *y = way ? gf_conv2d_padded(ctx, x, w, b, p, pads)
                           : gf_conv2d(ctx, gf_pad(ctx, x, (int64_t[]){k[6], k[7], k[4], k[5]}, 4, 0.0f),
                                       w, b, p);
        gf_tensor *r = y ? gf_empty(ctx, GF_F32, y->ndim, y->shape) : NULL;
        for (int64_t i = 0; r && i < r->numel; i++) gf_f32(r)[i] = rndf();
        CHECK(r && gf_backward(ctx, gf_sum(ctx, gf_mul(ctx, y, r), NULL, 0, false)) == GF_OK);
        for (int j = 0; j < 3; j++) {
            CHECK(leaf[j]->grad != NULL);
            if (!leaf[j]->grad) continue;
            if (!way) {
                first[j] = falloc(leaf[j]->numel);
                memcpy(first[j], leaf[j]->grad->data, sizeof(float) * (size_t)leaf[j]->numel);
            } else if (first[j]) {
                const float *g = gf_f32(leaf[j]->grad);
                double worst = 0.0;
                for (int64_t i = 0; i < leaf[j]->numel; i++) {
                    const double d = fabs((double)g[i] - first[j][i]) / (1.0 + fabs(first[j][i]));
                    worst = d > worst ? d : worst;
                }
                CHECK(worst <= 1e-5);
            }
        }
    }
    for (int j = 0; j < 3; j++) {
        free(first[j]);
        leaf[j]->grad = NULL;
        gf_tensor_set_requires_grad(leaf[j], false);
    }
}

/* gf_conv2d_padded equals gf_pad then gf_conv2d bit for bit (finite weights, outputs from a
 * +0 or a bias start), on every conv path: plain, 1x1, depthwise plane by plane and 8
 * channels at a time, strides 1 and 2, pads on one side only or both. */
static void conv_padded(gf_ctx *ctx) {
    const int cases[][8] = { /* c, groups, k, stride, top, bottom, left, right */
        {3, 1, 3, 2, 0, 1, 0, 1}, {8, 8, 3, 2, 0, 1, 0, 1}, {16, 16, 3, 2, 1, 1, 0, 2},
        {5, 5, 3, 1, 2, 0, 0, 1}, {4, 1, 1, 1, 0, 1, 1, 0}, {8, 8, 3, 1, 1, 1, 1, 1},
        {6, 2, 3, 2, 1, 0, 2, 1}, {24, 24, 3, 2, 0, 1, 0, 1}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int size = 5; size <= 14; size += 9) {
            const int *k = cases[ci];
            const int64_t c = k[0], o = k[1] == 1 ? 7 : c;
            gf_tensor *x = gf_empty(ctx, GF_F32, 4, (int64_t[]){2, c, size, size + 1});
            gf_tensor *w = gf_empty(ctx, GF_F32, 4, (int64_t[]){o, c / k[1], k[2], k[2]});
            gf_tensor *b = gf_empty(ctx, GF_F32, 1, &o);
            for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = rndf();
            for (int64_t i = 0; i < w->numel; i++) gf_f32(w)[i] = rndf();
            for (int64_t i = 0; i < o; i++) gf_f32(b)[i] = rndf();
            gf_conv_params p = gf_conv_default_params();
            p.stride[0] = p.stride[1] = k[3], p.groups = k[1];
            const int64_t pads[4] = {k[4], k[5], k[6], k[7]};
            for (int bias = 0; bias < 2; bias++) {
                gf_tensor *ref = gf_conv2d(ctx, gf_pad(ctx, x, (int64_t[]){k[6], k[7], k[4], k[5]}, 4,
                                                       0.0f), w, bias ? b : NULL, &p);
                gf_tensor *got = gf_conv2d_padded(ctx, x, w, bias ? b : NULL, &p, pads);
                CHECK(ref && got && gf_same_shape(ref, got));
                if (ref && got && gf_same_shape(ref, got))
                    CHECK(same_bits(gf_f32(ref), gf_f32(got), ref->numel));
            }
            conv_padded_grads(ctx, x, w, b, &p, k, pads);
        }
    /* refused: pads < 0, or a conv with padding of its own */
    gf_tensor *x = gf_zeros(ctx, GF_F32, 4, (int64_t[]){1, 1, 4, 4});
    gf_tensor *w = gf_zeros(ctx, GF_F32, 4, (int64_t[]){1, 1, 3, 3});
    gf_conv_params p = gf_conv_default_params();
    CHECK(!gf_conv2d_padded(ctx, x, w, NULL, &p, (int64_t[]){0, -1, 0, 0}));
    gf_ctx_clear_error(ctx);
    p.padding[0] = 1;
    CHECK(!gf_conv2d_padded(ctx, x, w, NULL, &p, (int64_t[]){0, 1, 0, 0}));
    gf_ctx_clear_error(ctx);
}

int main(void) {
    levels[0] = GF_VEC_PORTABLE;
    n_levels = 1;
    if (gf_vec_level() != GF_VEC_PORTABLE) levels[n_levels++] = gf_vec_level();
    printf("test_kernels: dispatch levels compared: %d\n", n_levels);
    gf_ctx *ctx = gf_ctx_new(NULL);
    u8_conversion(ctx);
    conv_padded(ctx);
    pointwise_threads();
    dropout_masks();
    dropout_applied();
    ln_rows();
    lane_sum();
    maxpool_tiled();
    relu_mask();
    unfold_fold();
    gemm_tiles();
    conv_c1(3, 28, 28, 32, 3, 1, 1, 1);  /* the benchmark CNN's first layer */
    conv_c1(2, 9, 11, 6, 3, 1, 0, 1);    /* no padding, channels not a multiple of 4 */
    conv_c1(2, 13, 10, 5, 5, 2, 2, 1);   /* stride 2 */
    conv_c1(1, 12, 12, 3, 3, 1, 2, 2);   /* dilation, same padding */
    conv_c1(2, 4, 3, 7, 2, 1, 0, 1);     /* fewer than 8 positions */
    /* Winograd: odd and even sizes 1..17, channels not multiples of 8 (the kernel itself
     * takes any count; the op dispatches from 8), batch 1 and several, bias or not */
    wino_kernel(ctx, 1, 3, 5, 1, 1, true);    /* one output: a tile that is mostly padding */
    wino_kernel(ctx, 2, 9, 11, 17, 16, false);
    wino_kernel(ctx, 3, 13, 10, 5, 7, true);
    wino_kernel(ctx, 1, 8, 8, 2, 3, false);
    wino_kernel(ctx, 2, 17, 9, 14, 14, true);
    wino_kernel(ctx, 1, 5, 12, 16, 17, true);
    wino_kernel(ctx, 4, 12, 20, 9, 1, false); /* one column */
    wino_kernel(ctx, 2, 10, 6, 1, 12, true);  /* one row */
    wino_kernel(ctx, 5, 11, 13, 3, 4, true);
    wino_kernel(ctx, 1, 40, 24, 15, 15, true);
    wino_dispatch();
    dw3_planes();
    dw_op(2, 5, 1, 17, 19, 1, 1);  /* odd sizes, "same" padding */
    dw_op(3, 4, 2, 15, 22, 2, 1);  /* stride 2, channel multiplier 2 */
    dw_op(2, 3, 3, 9, 30, 2, 0);   /* stride 2, no padding */
    dw_op(1, 6, 1, 11, 8, 1, 0);   /* stride 1, no padding */
    dw_op(2, 7, 1, 28, 28, 1, 2);  /* padding 2 */
    dw3x8_all();
    bn_eval_rows();
    clamp_masks();
    bn_grad_rows();
    dw_op(3, 16, 1, 6, 6, 1, 1);   /* small planes, 8 channels at a time */
    dw_op(2, 24, 1, 7, 5, 2, 1);   /* the same with stride 2 (dX per plane) */
    dw_op(2, 12, 1, 4, 4, 1, 0);   /* 12 channels: plane by plane */
    wino_op(3, 9, 10, 7, 9, true);
    wino_op(1, 12, 17, 16, 11, false);
    wino_op(2, 32, 64, 14, 14, true);         /* the benchmark CNN's second layer */
    fresh_vs_accumulate(ctx, "relu", op_relu);
    fresh_vs_accumulate(ctx, "leaky_relu", op_leaky);
    fresh_vs_accumulate(ctx, "leaky_relu, negative slope", op_leaky_neg);
    fresh_vs_accumulate(ctx, "pow_scalar -1", op_recip);
    fresh_vs_accumulate(ctx, "elu", op_elu);
    fresh_vs_accumulate(ctx, "clamp", op_clamp);
    fresh_vs_accumulate(ctx, "softplus", op_softplus);
    fresh_vs_accumulate(ctx, "gelu", op_gelu);
    fresh_vs_accumulate(ctx, "tanh", op_tanh);
    fresh_vs_accumulate(ctx, "max_pool2d", op_pool);
    fresh_vs_accumulate(ctx, "max_pool2d overlapping", op_pool_overlap);
    int64_t wsh[4] = {5, 4, 3, 3};
    conv_w = param(ctx, 4, wsh);
    fresh_vs_accumulate(ctx, "conv2d", op_conv);
    const int64_t per_image = 4 * 9 * 63 + 5 * 63; /* column matrix + product, floats */
    gf_conv_set_chunk_budget(ctx, per_image); /* chunks of 1 image */
    fresh_vs_accumulate(ctx, "conv2d 1-image chunks", op_conv);
    gf_conv_set_chunk_budget(ctx, 2 * per_image); /* chunks of 2 and 1 */
    fresh_vs_accumulate(ctx, "conv2d 2-image chunks", op_conv);
    gf_conv_set_chunk_budget(ctx, 0);
    gf_tensor_free(conv_w);
    fresh_c = 9; /* enough channels for the Winograd input gradient */
    int64_t wsh9[4] = {10, 9, 3, 3};
    conv_w = param(ctx, 4, wsh9);
    fresh_vs_accumulate(ctx, "conv2d winograd", op_conv);
    gf_tensor_free(conv_w);
    /* depthwise: 8 channels at a time (stride 1), plane by plane (stride 2, 9 channels) */
    const int dw_cs[2] = {8, 9};
    for (int k = 0; k < 2; k++) {
        fresh_c = dw_cs[k], conv_stride = 1 + k;
        conv_w = param(ctx, 4, (int64_t[]){fresh_c, 1, 3, 3});
        fresh_vs_accumulate(ctx, k ? "depthwise stride 2" : "depthwise 8 channels", op_conv);
        gf_tensor_free(conv_w);
    }
    /* a 1x1 convolution on planes of 256: the direct per-image products (beta 0 when fresh) */
    fresh_c = 4, fresh_h = fresh_w = 16, conv_stride = 1;
    conv_w = param(ctx, 4, (int64_t[]){5, 4, 1, 1});
    fresh_vs_accumulate(ctx, "pointwise direct", op_conv);
    gf_tensor_free(conv_w);
    gf_ctx_free(ctx);
    return test_finish("test_kernels");
}
