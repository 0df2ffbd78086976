/* Image folders as datasets (torchvision ImageFolder): walk (image_walk.c), decode
 * (image_decode.c), convert channels, resize with PIL's bilinear filter, centre-crop, store
 * uint8 [N, C, H, W]. Sizes after resize and crop are checked against the pixel limit too: a
 * small image must not become a huge one through a resize. */
#define _POSIX_C_SOURCE 200809L
#include "graft/images.h"
#include "data/images_internal.h"
#include "data/ds_internal.h"
#include "core/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gf_images_params gf_images_default_params(void) {
    gf_images_params p;
    memset(&p, 0, sizeof p);
    p.channels = 3;
    p.max_pixels = GF_IMAGES_MAX_PIXELS;
    return p;
}

bool gf_images_can_decode(void) { return gf_img_have_codecs(); }

/* ---- pixels ------------------------------------------------------------------------------ */

/* PIL's fixed-point precision for 8-bit resampling (Resample.c): coefficients carry 22 bits. */
#define PRECISION_BITS (32 - 8 - 2)

typedef struct coeffs {
    int ksize;   /* taps per output pixel */
    int *bounds; /* [out][2]: first input index, tap count */
    int *k;      /* [out][ksize] fixed-point weights */
} coeffs;

static double bilinear_filter(double x) {
    if (x < 0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* PIL's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter (support 1). */
static bool make_coeffs(int in, int out, coeffs *c) {
    double scale = (double)in / out;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    c->bounds = malloc((size_t)out * 2 * sizeof *c->bounds);
    c->k = malloc((size_t)out * (size_t)ksize * sizeof *c->k);
    double *pre = malloc((size_t)ksize * sizeof *pre);
    if (!c->bounds || !c->k || !pre) {
        free(pre);
        return false;
    }
    for (int xx = 0; xx < out; xx++) {
        double center = (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in) xmax = in;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = bilinear_filter((x + xmin - center + 0.5) * ss);
            pre[x] = w;
            ww += w;
        }
        int *kk = c->k + (size_t)xx * ksize;
        for (int x = 0; x < ksize; x++) {
            double w = x < xmax && ww != 0.0 ? pre[x] / ww : 0.0;
            kk[x] = w < 0 ? (int)(-0.5 + w * (1 << PRECISION_BITS))
                          : (int)(0.5 + w * (1 << PRECISION_BITS));
        }
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    free(pre);
    return true;
}

static uint8_t clip8(int64_t v) {
    v >>= PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* One separable pass: horizontal (along w) when horiz, else vertical. */
static void resample_pass(const uint8_t *src, int sh, int sw, int ch, uint8_t *dst, int dh, int dw,
                          const coeffs *c, bool horiz) {
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++)
            for (int k = 0; k < ch; k++) {
                int o = horiz ? x : y;
                int lo = c->bounds[2 * o], n = c->bounds[2 * o + 1];
                const int *kk = c->k + (size_t)o * c->ksize;
                int64_t ss = (int64_t)1 << (PRECISION_BITS - 1);
                for (int t = 0; t < n; t++) {
                    const uint8_t *px = horiz ? src + ((size_t)y * sw + (size_t)(lo + t)) * ch
                                              : src + ((size_t)(lo + t) * sw + (size_t)x) * ch;
                    ss += (int64_t)px[k] * kk[t];
                }
                dst[((size_t)y * dw + x) * ch + k] = clip8(ss);
            }
    (void)sh;
}

/* Returns false only when out of memory. */
static bool resize_impl(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh, int dw) {
    if (sh == dh && sw == dw) {
        memcpy(dst, src, (size_t)sh * sw * c);
        return true;
    }
    coeffs ch = {0}, cv = {0};
    uint8_t *tmp = NULL;
    bool ok = false;
    if (sw != dw && !make_coeffs(sw, dw, &ch)) goto out;
    if (sh != dh && !make_coeffs(sh, dh, &cv)) goto out;
    if (sw != dw && sh != dh) {
        /* horizontal first, then vertical, through a uint8 image as PIL does */
        tmp = malloc((size_t)sh * dw * c);
        if (!tmp) goto out;
        resample_pass(src, sh, sw, c, tmp, sh, dw, &ch, true);
        resample_pass(tmp, sh, dw, c, dst, dh, dw, &cv, false);
    } else if (sw != dw) {
        resample_pass(src, sh, sw, c, dst, dh, dw, &ch, true);
    } else {
        resample_pass(src, sh, sw, c, dst, dh, dw, &cv, false);
    }
    ok = true;
out:
    free(tmp);
    free(ch.bounds);
    free(ch.k);
    free(cv.bounds);
    free(cv.k);
    return ok;
}

void gf_images_resize(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh, int dw) {
    if (!src || !dst || sh < 1 || sw < 1 || dh < 1 || dw < 1 || c < 1) return;
    if (!resize_impl(src, sh, sw, c, dst, dh, dw)) memset(dst, 0, (size_t)dh * dw * c);
}

/* The sizes an image of h x w goes through: resized (rh x rw), then cropped (oh x ow). */
typedef struct plan {
    int rh, rw, oh, ow;
} plan;

/* torchvision's _compute_resized_output_size for an int size, then the crop; false with a
 * message when a side would pass GF_IMG_MAX_SIDE or an image the pixel limit. h, w >= 1 (the
 * decoders refuse empty images). */
static bool make_plan(const gf_images_params *p, int64_t max_px, int h, int w, const char *path,
                      plan *pl, char *err, size_t cap) {
    if (h < 1 || w < 1) {
        snprintf(err, cap, "images: %s: empty image (%dx%d)", path, w, h);
        return false;
    }
    pl->rh = h;
    pl->rw = w;
    if (p->resize_h > 0 && p->resize_w > 0) {
        pl->rh = p->resize_h;
        pl->rw = p->resize_w;
    } else if (p->resize > 0) {
        const int sshort = w <= h ? w : h, slong = w <= h ? h : w;
        const double nl = (double)p->resize * slong / sshort;
        if (!(nl < GF_IMG_MAX_SIDE + 1.0)) {
            snprintf(err, cap,
                     "images: %s: resizing %dx%d to %d on the shorter side gives a side of "
                     "%.0f pixels, more than %d",
                     path, w, h, p->resize, nl, GF_IMG_MAX_SIDE);
            return false;
        }
        const int nlong = nl < 1 ? 1 : (int)nl;
        pl->rw = w <= h ? p->resize : nlong;
        pl->rh = w <= h ? nlong : p->resize;
    }
    pl->oh = p->crop_h > 0 && p->crop_w > 0 ? p->crop_h : pl->rh;
    pl->ow = p->crop_h > 0 && p->crop_w > 0 ? p->crop_w : pl->rw;
    const int64_t rpx = (int64_t)pl->rh * pl->rw, opx = (int64_t)pl->oh * pl->ow;
    if (rpx > max_px || opx > max_px) {
        snprintf(err, cap,
                 "images: %s: resize/crop of %dx%d gives %dx%d pixels, more than the limit of "
                 "%lld (max_pixels; graft --max-image-pixels)",
                 path, w, h, rpx > max_px ? pl->rw : pl->ow, rpx > max_px ? pl->rh : pl->oh,
                 (long long)max_px);
        return false;
    }
    return true;
}

/* Start of a centre crop of `crop` out of `size` (negative: zero padding), as torchvision's
 * center_crop: pad (crop - size) // 2 before, then round((padded - crop) / 2) (half to even). */
static int crop_start(int size, int crop) {
    if (crop > size) return -((crop - size) / 2);
    return (int)rint((size - crop) / 2.0);
}

/* Converts an interleaved RGB image into the output: channels, resize, crop, CHW. */
static bool process(const uint8_t *rgb, int h, int w, const gf_images_params *p, const plan *pl,
                    uint8_t *out) {
    const int C = p->channels, rh = pl->rh, rw = pl->rw, oh = pl->oh, ow = pl->ow;
    uint8_t *conv = NULL, *res = NULL;
    const uint8_t *cur = rgb;
    bool ok = false;
    if (C == 1) {
        conv = malloc((size_t)h * w);
        if (!conv) goto out;
        for (size_t i = 0; i < (size_t)h * w; i++) {
            const uint8_t *px = rgb + 3 * i;
            /* PIL's L24: ITU-R 601-2 luma in 16-bit fixed point, rounded */
            conv[i] = (uint8_t)((px[0] * 19595u + px[1] * 38470u + px[2] * 7471u + 0x8000u) >> 16);
        }
        cur = conv;
    }
    if (rh != h || rw != w) {
        res = malloc((size_t)rh * rw * C);
        if (!res || !resize_impl(cur, h, w, C, res, rh, rw)) goto out;
        cur = res;
    }
    const int top = crop_start(rh, oh), left = crop_start(rw, ow);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                int sy = y + top, sx = x + left;
                out[((size_t)c * oh + y) * ow + x] = (sy >= 0 && sy < rh && sx >= 0 && sx < rw)
                                                         ? cur[((size_t)sy * rw + sx) * C + c]
                                                         : 0;
            }
    ok = true;
out:
    free(conv);
    free(res);
    return ok;
}

static bool check_params(gf_ctx *ctx, const gf_images_params *p, const char *where) {
    if ((p->channels != 1 && p->channels != 3) || p->resize < 0 || p->resize_h < 0 ||
        p->resize_w < 0 || (p->resize_h > 0) != (p->resize_w > 0) || p->crop_h < 0 ||
        p->crop_w < 0 || (p->crop_h > 0) != (p->crop_w > 0) || p->resize > 65536 ||
        p->resize_h > 65536 || p->resize_w > 65536 || p->crop_h > 65536 || p->crop_w > 65536 ||
        p->max_pixels < 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "images: %s: bad parameters (channels %d must be 1 or 3; resize %d, "
                         "resize %dx%d, crop %dx%d must be >= 0, <= 65536, given as pairs; "
                         "max_pixels %lld must be >= 0)",
                         where, p->channels, p->resize, p->resize_h, p->resize_w, p->crop_h,
                         p->crop_w, (long long)p->max_pixels);
        return false;
    }
    return true;
}

static int64_t max_pixels(const gf_images_params *p) {
    return p->max_pixels > 0 ? p->max_pixels : GF_IMAGES_MAX_PIXELS;
}

/* The status a decoder message stands for. */
static gf_status err_status(const char *err) {
    return strstr(err, "cannot open") ? GF_ERR_IO
           : strstr(err, "out of memory") ? GF_ERR_NOMEM
                                          : GF_ERR_FORMAT;
}

/* Decodes path and runs it through the plan into dst, or a new buffer when dst is NULL: the
 * [C, oh, ow] pixels, or NULL with err. When want is given the image must come out at that size
 * (dst holds that much). */
static uint8_t *read_one(const char *path, const gf_images_params *p, const plan *want,
                         const char *first, uint8_t *dst, plan *got, char *err, size_t cap) {
    int h, w;
    uint8_t *rgb, *out = NULL;
    if (!gf_img_decode(path, max_pixels(p), false, &rgb, &h, &w, err, cap)) return NULL;
    if (!make_plan(p, max_pixels(p), h, w, path, got, err, cap)) {
        free(rgb);
        return NULL;
    }
    if (want && (got->oh != want->oh || got->ow != want->ow)) {
        snprintf(err, cap,
                 "images: %s is %dx%d (after resize/crop: %dx%d), the first image %s is %dx%d: "
                 "set a resize and crop to give every image one size",
                 path, w, h, got->ow, got->oh, first, want->ow, want->oh);
    } else {
        out = dst ? dst : malloc((size_t)got->oh * got->ow * p->channels);
        if (!out || !process(rgb, h, w, p, got, out)) {
            if (!dst) free(out);
            out = NULL;
            snprintf(err, cap, "images: %s: out of memory", path);
        }
    }
    free(rgb);
    return out;
}

uint8_t *gf_images_read(gf_ctx *ctx, const char *path, const gf_images_params *params, int *h,
                        int *w) {
    gf_images_params p = params ? *params : gf_images_default_params();
    if (!path || !h || !w) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_images_read: NULL argument");
        return NULL;
    }
    if (!check_params(ctx, &p, path)) return NULL;
    char err[768];
    plan pl;
    uint8_t *out = read_one(path, &p, NULL, NULL, NULL, &pl, err, sizeof err);
    if (!out) {
        gf_ctx_set_error(ctx, err_status(err), "%s", err);
        return NULL;
    }
    *h = pl.oh;
    *w = pl.ow;
    return out;
}

/* ---- the folder ---------------------------------------------------------------------------- */

/* stands for a message that could not be allocated */
static char oom_marker[1];

const char *gf_images_path(const gf_ds *ds, int64_t i) {
    if (ds && ds->kind == GF_DS_VIEW && i >= 0 && i < ds->n) { /* a view is never of a view */
        i = ds->idx[i];
        ds = ds->base;
    }
    if (!ds || ds->kind != GF_DS_ARRAY || !ds->paths || i < 0 || i >= ds->n) return NULL;
    return ds->paths + ds->path_off[i];
}

/* The paths back to back (the dataset keeps them for gf_images_path) and the labels. */
static bool pack_paths(const gf_img_tree *t, char **pool, int64_t **off, int64_t **labels) {
    const int64_t n = t->n_files;
    size_t len = 0;
    for (int64_t i = 0; i < n; i++) len += strlen(t->files[i]) + 1;
    *pool = malloc(len);
    *off = malloc((size_t)n * sizeof **off);
    *labels = malloc((size_t)n * sizeof **labels);
    if (!*pool || !*off || !*labels) return false;
    for (int64_t k = 0; k < t->n_classes; k++)
        for (int64_t i = t->starts[k]; i < t->starts[k + 1]; i++) (*labels)[i] = k;
    size_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t l = strlen(t->files[i]) + 1;
        memcpy(*pool + at, t->files[i], l);
        (*off)[i] = (int64_t)at;
        at += l;
    }
    return true;
}

/* Decodes every file into its slot of pix; the first failure (lowest index, whatever the thread
 * timing) goes into ctx. */
static gf_status decode_all(gf_ctx *ctx, const gf_img_tree *t, const gf_images_params *p,
                            const plan *want, uint8_t *pix) {
    const int64_t n = t->n_files, per = (int64_t)p->channels * want->oh * want->ow;
    char **errs = calloc((size_t)n, sizeof *errs);
    if (!errs) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: out of memory");
    const int nt = p->n_threads > 0 ? p->n_threads : gf_ctx_threads(ctx);
#pragma omp parallel for schedule(dynamic, 4) num_threads(nt)
    for (int64_t i = 0; i < n; i++) {
        char err[768];
        plan got;
        if (!read_one(t->files[i], p, want, t->files[0], pix + i * per, &got, err, sizeof err)) {
            errs[i] = gf_ds_strdup(err);
            if (!errs[i]) errs[i] = oom_marker;
        }
    }
    gf_status s = GF_OK;
    for (int64_t i = 0; i < n && s == GF_OK; i++) {
        if (errs[i] == oom_marker)
            s = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: out of memory (example %lld)",
                                 (long long)i);
        else if (errs[i])
            s = gf_ctx_set_error(ctx, err_status(errs[i]), "%s (example %lld)", errs[i],
                                 (long long)i);
    }
    for (int64_t i = 0; i < n; i++)
        if (errs[i] != oom_marker) free(errs[i]);
    free(errs);
    return s;
}

/* The dataset around pixels, labels and paths (taken on success). */
static gf_ds *make_ds(gf_ctx *ctx, const char *root, const gf_img_tree *t, int C, const plan *pl,
                      uint8_t **pix, int64_t **labels, char **pool, int64_t **off) {
    char **cn = malloc((size_t)t->n_classes * sizeof *cn);
    if (!cn) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: out of memory");
        return NULL;
    }
    for (int64_t k = 0; k < t->n_classes; k++) cn[k] = strrchr(t->classes[k], '/') + 1;
    char desc[300];
    const char *b = strrchr(root, '/');
    snprintf(desc, sizeof desc, "images %s", b ? b + 1 : root);
    const int64_t shape[3] = {C, pl->oh, pl->ow};
    gf_ds *ds = gf_ds_alloc(ctx, GF_DS_ARRAY, t->n_files, 3, shape, (int)t->n_classes,
                            (const char *const *)cn, desc);
    free(cn);
    if (!ds) return NULL;
    ds->owned[0] = *pix;
    ds->x_u8 = *pix;
    ds->owned[1] = *labels;
    ds->labels = *labels;
    ds->owned[2] = *pool;
    ds->paths = *pool;
    ds->owned[3] = *off;
    ds->path_off = *off;
    *pix = NULL;
    *labels = *off = NULL;
    *pool = NULL;
    return ds;
}

gf_ds *gf_images_load_folder_report(gf_ctx *ctx, const char *root, const gf_images_params *params,
                                    gf_images_report *report) {
    gf_images_params p = params ? *params : gf_images_default_params();
    gf_images_report local;
    gf_images_report *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    if (!root) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "images: NULL root folder");
        return NULL;
    }
    if (!check_params(ctx, &p, root)) return NULL;
    /* "data/pets/" and "data/pets" name the same folder: keep paths free of "//" */
    char *rc = gf_ds_strdup(root);
    if (!rc) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: out of memory");
        return NULL;
    }
    for (size_t l = strlen(rc); l > 1 && rc[l - 1] == '/'; l--) rc[l - 1] = '\0';
    gf_img_tree t;
    int64_t *labels = NULL, *off = NULL;
    char *pool = NULL, err[768];
    uint8_t *pix = NULL;
    gf_ds *ds = NULL;
    if (gf_img_walk(ctx, rc, p.follow_links, &t, rep) != GF_OK) goto out;
    if (!pack_paths(&t, &pool, &off, &labels)) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: out of memory");
        goto out;
    }
    /* the output size: fixed by the parameters, else set by the first image's header */
    int ih, iw;
    plan pl;
    if (!gf_img_decode(t.files[0], max_pixels(&p), true, NULL, &ih, &iw, err, sizeof err) ||
        !make_plan(&p, max_pixels(&p), ih, iw, t.files[0], &pl, err, sizeof err)) {
        gf_ctx_set_error(ctx, err_status(err), "%s (example 0)", err);
        goto out;
    }
    const int64_t n = t.n_files, per = (int64_t)p.channels * pl.oh * pl.ow;
    if (per > ((int64_t)1 << 62) / n) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: %s: %lld images of %dx%d are too many", rc,
                         (long long)n, pl.ow, pl.oh);
        goto out;
    }
    pix = malloc((size_t)(n * per));
    if (!pix) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: %s: out of memory for %lld images of %dx%dx%d",
                         rc, (long long)n, p.channels, pl.oh, pl.ow);
        goto out;
    }
    if (decode_all(ctx, &t, &p, &pl, pix) == GF_OK)
        ds = make_ds(ctx, rc, &t, p.channels, &pl, &pix, &labels, &pool, &off);
out:
    gf_img_tree_free(&t);
    free(rc);
    free(labels);
    free(off);
    free(pool);
    free(pix);
    return ds;
}

gf_ds *gf_images_load_folder(gf_ctx *ctx, const char *root, const gf_images_params *params) {
    return gf_images_load_folder_report(ctx, root, params, NULL);
}
