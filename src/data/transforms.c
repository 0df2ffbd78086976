/* Per-batch data transforms with torchvision's semantics. Each example is transformed on its
 * own with its own random stream (seed, example index), through two scratch buffers. */
#include "graft/transforms.h"
#include "core/internal.h"
#include "data/tf_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum tf_kind { TF_NORMALIZE, TF_CROP, TF_HFLIP, TF_AFFINE, TF_ERASE, TF_SPECAUG } tf_kind;

static const char *const tf_names[] = {"normalize", "random_crop", "hflip", "affine",
                                       "random_erasing", "specaugment"};

typedef struct tf_stage {
    tf_kind kind;
    int channels;                         /* normalize */
    float *mean, *sd;                     /* normalize: channels values each, owned */
    int h, w, pad;                        /* crop */
    float p;                              /* hflip, erase */
    float degrees, translate, s_lo, s_hi; /* affine */
    float a_lo, a_hi, r_lo, r_hi, value;  /* erase: area and aspect-ratio ranges */
    int n_fm, f_param, n_tm, t_param;     /* specaugment: mask counts and widths */
    bool zero;                            /* specaugment: 0 rather than the mean */
} tf_stage;

struct gf_tf {
    tf_stage *st;
    int n, cap;
};

gf_tf *gf_tf_new(gf_ctx *ctx) {
    gf_tf *tf = calloc(1, sizeof *tf);
    if (!tf) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_tf_new: out of memory");
    return tf;
}

void gf_tf_free(gf_tf *tf) {
    if (!tf) return;
    for (int i = 0; i < tf->n; i++) {
        free(tf->st[i].mean);
        free(tf->st[i].sd);
    }
    free(tf->st);
    free(tf);
}

int gf_tf_count(const gf_tf *tf) { return tf ? tf->n : 0; }

static tf_stage *add(gf_ctx *ctx, gf_tf *tf, tf_kind kind) {
    if (!tf) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_tf_%s: NULL pipeline", tf_names[kind]);
        return NULL;
    }
    if (tf->n == tf->cap) {
        int cap = tf->cap ? 2 * tf->cap : 4;
        tf_stage *s = realloc(tf->st, (size_t)cap * sizeof *s);
        if (!s) {
            gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_tf_%s: out of memory", tf_names[kind]);
            return NULL;
        }
        tf->st = s;
        tf->cap = cap;
    }
    tf_stage *s = &tf->st[tf->n];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    return s;
}

gf_status gf_tf_normalize(gf_ctx *ctx, gf_tf *tf, int channels, const float *mean,
                          const float *std) {
    if (channels < 1 || !mean || !std)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "gf_tf_normalize: need channels >= 1 (got %d) and mean, std",
                                channels);
    for (int c = 0; c < channels; c++)
        if (!(std[c] > 0) || !isfinite(std[c]) || !isfinite(mean[c]))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "gf_tf_normalize: channel %d: mean %g, std %g (std must be "
                                    "finite and > 0)",
                                    c, (double)mean[c], (double)std[c]);
    tf_stage *s = add(ctx, tf, TF_NORMALIZE);
    if (!s) return gf_ctx_status(ctx);
    float *m = malloc((size_t)channels * sizeof *m), *sd = malloc((size_t)channels * sizeof *sd);
    if (!m || !sd) {
        free(m);
        free(sd);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_tf_normalize: out of memory");
    }
    memcpy(m, mean, (size_t)channels * sizeof *m);
    memcpy(sd, std, (size_t)channels * sizeof *sd);
    s->channels = channels;
    s->mean = m;
    s->sd = sd; /* torchvision divides by std (no reciprocal), so do we: same rounding */
    tf->n++;
    return GF_OK;
}

gf_status gf_tf_random_crop(gf_ctx *ctx, gf_tf *tf, int height, int width, int padding) {
    if (height < 1 || width < 1 || padding < 0 || height > 65536 || width > 65536 ||
        padding > 65536)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "gf_tf_random_crop: size %dx%d must be >= 1 and padding %d >= 0",
                                height, width, padding);
    tf_stage *s = add(ctx, tf, TF_CROP);
    if (!s) return gf_ctx_status(ctx);
    s->h = height;
    s->w = width;
    s->pad = padding;
    tf->n++;
    return GF_OK;
}

gf_status gf_tf_hflip(gf_ctx *ctx, gf_tf *tf, float p) {
    if (!(p >= 0 && p <= 1))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_tf_hflip: probability %g outside [0, 1]",
                                (double)p);
    tf_stage *s = add(ctx, tf, TF_HFLIP);
    if (!s) return gf_ctx_status(ctx);
    s->p = p;
    tf->n++;
    return GF_OK;
}

gf_status gf_tf_affine(gf_ctx *ctx, gf_tf *tf, float degrees, float translate, float scale_lo,
                       float scale_hi) {
    if (!(degrees >= 0 && degrees <= 180) || !(translate >= 0 && translate <= 1) ||
        !(scale_lo > 0 && scale_lo <= scale_hi && isfinite(scale_hi)))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "gf_tf_affine: degrees %g must be in [0, 180], translate %g in "
                                "[0, 1], scale range [%g, %g] positive and increasing",
                                (double)degrees, (double)translate, (double)scale_lo,
                                (double)scale_hi);
    tf_stage *s = add(ctx, tf, TF_AFFINE);
    if (!s) return gf_ctx_status(ctx);
    s->degrees = degrees;
    s->translate = translate;
    s->s_lo = scale_lo;
    s->s_hi = scale_hi;
    tf->n++;
    return GF_OK;
}

gf_status gf_tf_random_erasing(gf_ctx *ctx, gf_tf *tf, float p, float scale_lo, float scale_hi,
                               float ratio_lo, float ratio_hi, float value) {
    if (!(p >= 0 && p <= 1) || !(scale_lo >= 0 && scale_lo <= scale_hi && scale_hi <= 1) ||
        !(ratio_lo > 0 && ratio_lo <= ratio_hi && isfinite(ratio_hi)) || !isfinite(value))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "gf_tf_random_erasing: p %g must be in [0, 1], scale [%g, %g] "
                                "inside [0, 1] and increasing, ratio [%g, %g] positive and "
                                "increasing, value finite",
                                (double)p, (double)scale_lo, (double)scale_hi, (double)ratio_lo,
                                (double)ratio_hi);
    tf_stage *s = add(ctx, tf, TF_ERASE);
    if (!s) return gf_ctx_status(ctx);
    s->p = p;
    s->a_lo = scale_lo;
    s->a_hi = scale_hi;
    s->r_lo = ratio_lo;
    s->r_hi = ratio_hi;
    s->value = value;
    tf->n++;
    return GF_OK;
}

gf_status gf_tf_specaugment(gf_ctx *ctx, gf_tf *tf, int n_freq_masks, int freq_mask_param,
                            int n_time_masks, int time_mask_param, bool zero_masking) {
    if (n_freq_masks < 0 || n_freq_masks > 100 || n_time_masks < 0 || n_time_masks > 100 ||
        freq_mask_param < 0 || time_mask_param < 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "gf_tf_specaugment: mask counts %d and %d must be in [0, 100], "
                                "mask params %d and %d >= 0", n_freq_masks, n_time_masks,
                                freq_mask_param, time_mask_param);
    tf_stage *s = add(ctx, tf, TF_SPECAUG);
    if (!s) return gf_ctx_status(ctx);
    s->n_fm = n_freq_masks;
    s->f_param = freq_mask_param;
    s->n_tm = n_time_masks;
    s->t_param = time_mask_param;
    s->zero = zero_masking;
    tf->n++;
    return GF_OK;
}

/* ---- shapes ------------------------------------------------------------------------------- */

static gf_status out_shape(const gf_tf *tf, int ndim, const int64_t *in, int64_t *out, char *err,
                           size_t cap) {
    if (ndim < 1 || ndim > GF_MAX_DIMS) {
        snprintf(err, cap, "transforms: sample shape has %d dimensions", ndim);
        return GF_ERR_SHAPE;
    }
    for (int d = 0; d < ndim; d++) out[d] = in[d];
    for (int i = 0; tf && i < tf->n; i++) {
        const tf_stage *s = &tf->st[i];
        char sb[GF_SHAPE_BUF];
        if (s->kind == TF_NORMALIZE) {
            if (s->channels != 1 && s->channels != out[0]) {
                snprintf(err, cap,
                         "transforms: stage %d (normalize) has %d channels, the sample %s has "
                         "%lld",
                         i, s->channels, gf_dims_str(ndim, out, sb, sizeof sb), (long long)out[0]);
                return GF_ERR_SHAPE;
            }
            continue;
        }
        if (ndim != 3) {
            snprintf(err, cap, "transforms: stage %d (%s) needs images [C, H, W], the sample is %s",
                     i, tf_names[s->kind], gf_dims_str(ndim, out, sb, sizeof sb));
            return GF_ERR_SHAPE;
        }
        if (s->kind == TF_SPECAUG && (s->f_param > out[1] || s->t_param > out[2])) {
            snprintf(err, cap, "transforms: stage %d (specaugment) masks up to %d bins and %d "
                     "frames of %s", i, s->f_param, s->t_param,
                     gf_dims_str(ndim, out, sb, sizeof sb));
            return GF_ERR_SHAPE;
        }
        if (s->kind == TF_CROP) {
            if (out[1] + 2 * s->pad < s->h || out[2] + 2 * s->pad < s->w) {
                snprintf(err, cap,
                         "transforms: stage %d (random_crop) cuts %dx%d from %s padded by %d", i,
                         s->h, s->w, gf_dims_str(ndim, out, sb, sizeof sb), s->pad);
                return GF_ERR_SHAPE;
            }
            out[1] = s->h;
            out[2] = s->w;
        }
    }
    return GF_OK;
}

gf_status gf_tf_out_shape(gf_ctx *ctx, const gf_tf *tf, int ndim, const int64_t *in, int64_t *out) {
    char err[256];
    if (!in || !out) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_tf_out_shape: NULL shape");
    gf_status s = out_shape(tf, ndim, in, out, err, sizeof err);
    if (s != GF_OK) gf_ctx_set_error(ctx, s, "%s", err);
    return s;
}

/* ---- one example --------------------------------------------------------------------------- */

/* Stream of example i of a batch: a key from (seed, i) through splitmix64. */
static void example_rng(gf_rng *r, uint64_t seed, int64_t i) {
    uint64_t z = seed ^ ((uint64_t)i * 0xD1B54A32D192ED03ull);
    gf_rng_seed(r, z);
}

static float uniform_in(gf_rng *r, float lo, float hi) {
    return lo + (hi - lo) * gf_rng_uniform(r);
}

static void normalize(const tf_stage *s, float *x, int64_t C, int64_t per) {
    for (int64_t c = 0; c < C; c++) {
        const float m = s->mean[s->channels == 1 ? 0 : c];
        const float sd = s->sd[s->channels == 1 ? 0 : c];
        float *p = x + c * per;
        for (int64_t j = 0; j < per; j++) p[j] = (p[j] - m) / sd;
    }
}

static void crop(const tf_stage *s, const float *x, float *y, int64_t C, int64_t H, int64_t W,
                 gf_rng *r) {
    const int64_t top = (int64_t)gf_rng_below(r, (uint64_t)(H + 2 * s->pad - s->h + 1)) - s->pad;
    const int64_t left = (int64_t)gf_rng_below(r, (uint64_t)(W + 2 * s->pad - s->w + 1)) - s->pad;
    for (int64_t c = 0; c < C; c++)
        for (int64_t i = 0; i < s->h; i++) {
            float *dst = y + (c * s->h + i) * s->w;
            const int64_t sy = top + i;
            for (int64_t j = 0; j < s->w; j++) {
                const int64_t sx = left + j;
                dst[j] = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? x[(c * H + sy) * W + sx] : 0.0f;
            }
        }
}

static void hflip(const tf_stage *s, float *x, int64_t C, int64_t H, int64_t W, gf_rng *r) {
    if (!(gf_rng_uniform(r) < s->p)) return;
    for (int64_t row = 0; row < C * H; row++) {
        float *p = x + row * W;
        for (int64_t a = 0, b = W - 1; a < b; a++, b--) {
            float t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
    }
}

static float sample_bilinear(const float *img, int64_t H, int64_t W, float sx, float sy) {
    const float fx0 = floorf(sx), fy0 = floorf(sy);
    if (fx0 < -1.0f || fy0 < -1.0f || fx0 > (float)W || fy0 > (float)H) return 0.0f;
    const int64_t x0 = (int64_t)fx0, y0 = (int64_t)fy0;
    const float ax = sx - fx0, ay = sy - fy0;
    float v = 0.0f;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            const int64_t yy = y0 + dy, xx = x0 + dx;
            if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
            const float w = (dx ? ax : 1.0f - ax) * (dy ? ay : 1.0f - ay);
            v += w * img[yy * W + xx];
        }
    return v;
}

static void affine(const tf_stage *s, const float *x, float *y, int64_t C, int64_t H, int64_t W,
                   gf_rng *r) {
    const float angle =
        uniform_in(r, -s->degrees, s->degrees) * (float)(3.14159265358979323846 / 180.0);
    const float tx = rintf(uniform_in(r, -s->translate * (float)W, s->translate * (float)W));
    const float ty = rintf(uniform_in(r, -s->translate * (float)H, s->translate * (float)H));
    const float sc = uniform_in(r, s->s_lo, s->s_hi);
    const float cs = cosf(angle) / sc, sn = sinf(angle) / sc;
    const float cx = 0.5f * (float)(W - 1), cy = 0.5f * (float)(H - 1);
    /* inverse map: src = c + R(-angle) (dst - c - t) / scale, with y pointing down */
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++) {
            const float dx = (float)j - cx - tx, dy = (float)i - cy - ty;
            const float sx = cx + cs * dx - sn * dy, sy = cy + sn * dx + cs * dy;
            for (int64_t c = 0; c < C; c++)
                y[(c * H + i) * W + j] = sample_bilinear(x + c * H * W, H, W, sx, sy);
        }
}

static void erase(const tf_stage *s, float *x, int64_t C, int64_t H, int64_t W, gf_rng *r) {
    if (!(gf_rng_uniform(r) < s->p)) return;
    const double area = (double)H * (double)W;
    const double lr0 = log(s->r_lo), lr1 = log(s->r_hi);
    for (int attempt = 0; attempt < 10; attempt++) {
        const double ea = area * uniform_in(r, s->a_lo, s->a_hi);
        const double ar = exp(lr0 + (lr1 - lr0) * gf_rng_uniform(r));
        const int64_t h = (int64_t)llround(sqrt(ea * ar)), w = (int64_t)llround(sqrt(ea / ar));
        if (!(h < H && w < W)) continue;
        const int64_t i0 = (int64_t)gf_rng_below(r, (uint64_t)(H - h + 1));
        const int64_t j0 = (int64_t)gf_rng_below(r, (uint64_t)(W - w + 1));
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = i0; i < i0 + h; i++)
                for (int64_t j = j0; j < j0 + w; j++) x[(c * H + i) * W + j] = s->value;
        return;
    }
}

/* torchaudio's mask_along_axis on axis length L: [start, end) of one mask. */
static void mask_span(gf_rng *r, int param, int64_t L, int64_t *start, int64_t *end) {
    const float value = gf_rng_uniform(r) * (float)param;
    const float min_value = gf_rng_uniform(r) * ((float)L - value);
    *start = (int64_t)min_value;
    *end = *start + (int64_t)value;
}

static void specaugment(const tf_stage *s, float *x, int64_t C, int64_t F, int64_t T, gf_rng *r) {
    float fill = 0.0f;
    if (!s->zero) {
        double sum = 0;
        for (int64_t i = 0; i < C * F * T; i++) sum += x[i];
        fill = (float)(sum / (double)(C * F * T));
    }
    for (int m = 0; m < s->n_fm + s->n_tm; m++) {
        const bool freq = m < s->n_fm;
        int64_t a, b;
        mask_span(r, freq ? s->f_param : s->t_param, freq ? F : T, &a, &b);
        for (int64_t c = 0; c < C; c++)
            for (int64_t f = freq ? a : 0; f < (freq ? b : F); f++)
                for (int64_t t = freq ? 0 : a; t < (freq ? T : b); t++) x[(c * F + f) * T + t] = fill;
    }
}

/* Runs every stage on one example in a (capacity cap), using b as the second buffer; returns
 * the buffer holding the result. */
static float *run_example(const gf_tf *tf, int ndim, const int64_t *in, float *a, float *b,
                          gf_rng *r) {
    int64_t shape[GF_MAX_DIMS];
    for (int d = 0; d < ndim; d++) shape[d] = in[d];
    for (int k = 0; k < tf->n; k++) {
        const tf_stage *s = &tf->st[k];
        const int64_t C = shape[0];
        int64_t per = 1;
        for (int d = 1; d < ndim; d++) per *= shape[d];
        const int64_t H = ndim == 3 ? shape[1] : 1, W = ndim == 3 ? shape[2] : 1;
        float *t;
        switch (s->kind) {
        case TF_NORMALIZE: normalize(s, a, C, per); break;
        case TF_HFLIP: hflip(s, a, C, H, W, r); break;
        case TF_ERASE: erase(s, a, C, H, W, r); break;
        case TF_SPECAUG: specaugment(s, a, C, H, W, r); break;
        case TF_CROP:
            crop(s, a, b, C, H, W, r);
            shape[1] = s->h;
            shape[2] = s->w;
            t = a, a = b, b = t;
            break;
        case TF_AFFINE:
            affine(s, a, b, C, H, W, r);
            t = a, a = b, b = t;
            break;
        }
    }
    return a;
}

gf_status gf_tf_apply_raw(const gf_tf *tf, int64_t B, int ndim, const int64_t *in, const float *x,
                          float *out, uint64_t seed, char *err, size_t err_cap) {
    return gf_tf_apply_raw_at(tf, B, 0, ndim, in, x, out, seed, err, err_cap);
}

gf_status gf_tf_apply_raw_at(const gf_tf *tf, int64_t B, int64_t first, int ndim,
                             const int64_t *in, const float *x, float *out, uint64_t seed,
                             char *err, size_t err_cap) {
    char tmp[256];
    if (!err) {
        err = tmp;
        err_cap = sizeof tmp;
    }
    if (!in || (B > 0 && (!x || !out)) || B < 0) {
        snprintf(err, err_cap, "transforms: NULL buffer or negative batch");
        return GF_ERR_INVALID;
    }
    int64_t os[GF_MAX_DIMS];
    gf_status st = out_shape(tf, ndim, in, os, err, err_cap);
    if (st != GF_OK) return st;
    int64_t in_numel = 1, out_numel = 1, cap = 1;
    for (int d = 0; d < ndim; d++) {
        in_numel *= in[d];
        out_numel *= os[d];
    }
    /* largest intermediate: the input or any crop's output */
    cap = in_numel;
    for (int k = 0; tf && k < tf->n; k++)
        if (tf->st[k].kind == TF_CROP) {
            int64_t m = in[0] * (int64_t)tf->st[k].h * tf->st[k].w;
            if (m > cap) cap = m;
        }
    float *buf = malloc((size_t)(2 * cap) * sizeof *buf);
    if (!buf) {
        snprintf(err, err_cap, "transforms: out of memory for %lld floats", (long long)(2 * cap));
        return GF_ERR_NOMEM;
    }
    for (int64_t i = 0; i < B; i++) {
        memcpy(buf, x + i * in_numel, (size_t)in_numel * sizeof *buf);
        float *res = buf;
        if (tf && tf->n > 0) {
            gf_rng r;
            example_rng(&r, seed, first + i);
            res = run_example(tf, ndim, in, buf, buf + cap, &r);
        }
        memcpy(out + i * out_numel, res, (size_t)out_numel * sizeof *out);
    }
    free(buf);
    return GF_OK;
}

gf_tensor *gf_tf_apply(gf_ctx *ctx, const gf_tf *tf, const gf_tensor *x, uint64_t seed) {
    if (!gf_check_tensor(ctx, "gf_tf_apply", "x", x, GF_F32)) return NULL;
    if (x->ndim < 2) {
        char sb[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "gf_tf_apply: x must be a batch [B, ...], got %s",
                         gf_shape_str(x, sb, sizeof sb));
        return NULL;
    }
    int64_t os[GF_MAX_DIMS];
    os[0] = x->shape[0];
    if (gf_tf_out_shape(ctx, tf, x->ndim - 1, x->shape + 1, os + 1) != GF_OK) return NULL;
    const float *src = gf_contig_f32(ctx, x);
    gf_tensor *y = src ? gf_empty(ctx, GF_F32, x->ndim, os) : NULL;
    if (!y) return NULL;
    char err[256];
    gf_status s = gf_tf_apply_raw(tf, x->shape[0], x->ndim - 1, x->shape + 1, src, gf_f32(y), seed,
                                  err, sizeof err);
    if (s != GF_OK) {
        gf_ctx_set_error(ctx, s, "gf_tf_apply: %s", err);
        return NULL;
    }
    return y;
}
