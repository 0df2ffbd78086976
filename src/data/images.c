/* Image folders as datasets (torchvision ImageFolder): walk, decode with stb_image, convert
 * channels, resize with PIL's bilinear filter, centre-crop, store uint8 [N, C, H, W]. */
#define _POSIX_C_SOURCE 200809L
#include "graft/images.h"
#include "data/ds_internal.h"
#include "core/internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#ifdef GF_HAVE_STB
#include <stb/stb_image.h>
#endif

gf_images_params gf_images_default_params(void) {
    gf_images_params p;
    memset(&p, 0, sizeof p);
    p.channels = 3;
    return p;
}

bool gf_images_can_decode(void) {
#ifdef GF_HAVE_STB
    return true;
#else
    return false;
#endif
}

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

#ifdef GF_HAVE_STB /* the decoding pipeline (without stb only the resize above is useful) */
/* The size after resizing (torchvision's _compute_resized_output_size for an int size). */
static void resized_size(const gf_images_params *p, int h, int w, int *oh, int *ow) {
    if (p->resize_h > 0 && p->resize_w > 0) {
        *oh = p->resize_h;
        *ow = p->resize_w;
    } else if (p->resize > 0) {
        int sshort = w <= h ? w : h, slong = w <= h ? h : w;
        int nlong = (int)((double)p->resize * slong / sshort);
        if (nlong < 1) nlong = 1;
        *ow = w <= h ? p->resize : nlong;
        *oh = w <= h ? nlong : p->resize;
    } else {
        *oh = h;
        *ow = w;
    }
}

static void final_size(const gf_images_params *p, int h, int w, int *oh, int *ow) {
    resized_size(p, h, w, oh, ow);
    if (p->crop_h > 0 && p->crop_w > 0) {
        *oh = p->crop_h;
        *ow = p->crop_w;
    }
}

/* Start of a centre crop of `crop` out of `size` (negative: zero padding), as torchvision's
 * center_crop: pad (crop - size) // 2 before, then round((padded - crop) / 2) (half to even). */
static int crop_start(int size, int crop) {
    if (crop > size) return -((crop - size) / 2);
    return (int)rint((size - crop) / 2.0);
}

/* Converts an interleaved RGB image into the output: channels, resize, crop, CHW. */
static bool process(const uint8_t *rgb, int h, int w, const gf_images_params *p, uint8_t *out,
                    int oh, int ow) {
    const int C = p->channels;
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
    int rh, rw;
    resized_size(p, h, w, &rh, &rw);
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
#endif

static bool check_params(gf_ctx *ctx, const gf_images_params *p, const char *where) {
    if ((p->channels != 1 && p->channels != 3) || p->resize < 0 || p->resize_h < 0 ||
        p->resize_w < 0 || (p->resize_h > 0) != (p->resize_w > 0) || p->crop_h < 0 ||
        p->crop_w < 0 || (p->crop_h > 0) != (p->crop_w > 0) || p->resize > 65536 ||
        p->resize_h > 65536 || p->resize_w > 65536 || p->crop_h > 65536 || p->crop_w > 65536) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "images: %s: bad parameters (channels %d must be 1 or 3; resize %d, "
                         "resize %dx%d, crop %dx%d must be >= 0, <= 65536, given as pairs)",
                         where, p->channels, p->resize, p->resize_h, p->resize_w, p->crop_h,
                         p->crop_w);
        return false;
    }
    return true;
}

#ifdef GF_HAVE_STB
/* Decodes path as RGB; NULL with a message in err. */
static uint8_t *decode_rgb(const char *path, int *h, int *w, char *err, size_t cap) {
    int c = 0;
    uint8_t *px = stbi_load(path, w, h, &c, 3);
    if (!px) {
        FILE *f = fopen(path, "rb");
        if (!f) {
            snprintf(err, cap, "images: cannot open %s: %s", path, strerror(errno));
        } else {
            fclose(f);
            const char *why = stbi_failure_reason();
            snprintf(err, cap, "images: cannot decode %s (%s)", path, why ? why : "unknown format");
        }
        return NULL;
    }
    if (*w < 1 || *h < 1 || *w > 65536 || *h > 65536) {
        snprintf(err, cap, "images: %s: unusable size %dx%d", path, *w, *h);
        stbi_image_free(px);
        return NULL;
    }
    return px;
}
#endif

uint8_t *gf_images_read(gf_ctx *ctx, const char *path, const gf_images_params *params, int *h,
                        int *w) {
    gf_images_params p = params ? *params : gf_images_default_params();
    if (!path || !h || !w) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_images_read: NULL argument");
        return NULL;
    }
    if (!check_params(ctx, &p, path)) return NULL;
#ifdef GF_HAVE_STB
    char err[512];
    int ih, iw;
    uint8_t *rgb = decode_rgb(path, &ih, &iw, err, sizeof err);
    if (!rgb) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s", err);
        return NULL;
    }
    int oh, ow;
    final_size(&p, ih, iw, &oh, &ow);
    uint8_t *out = malloc((size_t)oh * ow * p.channels);
    if (!out || !process(rgb, ih, iw, &p, out, oh, ow)) {
        free(out);
        out = NULL;
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: %s: out of memory", path);
    } else {
        *h = oh;
        *w = ow;
    }
    stbi_image_free(rgb);
    return out;
#else
    gf_ctx_set_error(ctx, GF_ERR_INVALID,
                     "images: cannot decode %s: graft was built without stb_image (libstb-dev)",
                     path);
    return NULL;
#endif
}

/* ---- the folder walk --------------------------------------------------------------------- */

typedef struct strlist {
    char **s;
    int64_t n, cap;
} strlist;

static bool sl_push(strlist *l, char *s) {
    if (!s) return false;
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 16;
        char **p = realloc(l->s, (size_t)cap * sizeof *p);
        if (!p) {
            free(s);
            return false;
        }
        l->s = p;
        l->cap = cap;
    }
    l->s[l->n++] = s;
    return true;
}

static void sl_free(strlist *l) {
    for (int64_t i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    l->s = NULL;
    l->n = l->cap = 0;
}

static int cmp_strp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 2);
    if (!s) return NULL;
    memcpy(s, a, na);
    s[na] = '/';
    memcpy(s + na + 1, b, nb + 1);
    return s;
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *const extensions[] = {".jpg", ".jpeg", ".png",  ".ppm",  ".bmp",
                                         ".pgm", ".tif",  ".tiff", ".webp", NULL};

static bool has_image_ext(const char *name) {
    size_t n = strlen(name);
    for (int i = 0; extensions[i]; i++) {
        size_t e = strlen(extensions[i]);
        if (n > e && strcasecmp(name + n - e, extensions[i]) == 0) return true;
    }
    return false;
}

/* Entries of dir: subfolders into dirs (full paths), image files into files (names). */
static gf_status list_dir(gf_ctx *ctx, const char *dir, strlist *dirs, strlist *files) {
    errno = 0;
    DIR *d = opendir(dir);
    if (!d)
        return gf_ctx_set_error(ctx, GF_ERR_IO, "images: cannot open folder %s: %s", dir,
                                strerror(errno));
    struct dirent *e;
    gf_status s = GF_OK;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *full = join(dir, e->d_name);
        if (!full) {
            s = GF_ERR_NOMEM;
            break;
        }
        if (is_dir(full)) {
            if (dirs && !sl_push(dirs, full))
                s = GF_ERR_NOMEM;
            else if (!dirs)
                free(full);
        } else {
            free(full);
            if (files && has_image_ext(e->d_name) && !sl_push(files, gf_ds_strdup(e->d_name)))
                s = GF_ERR_NOMEM;
        }
        if (s != GF_OK) break;
    }
    closedir(d);
    if (s == GF_ERR_NOMEM) gf_ctx_set_error(ctx, s, "images: %s: out of memory", dir);
    return s;
}

/* All image files under class_dir, in torchvision's order: sorted(os.walk(...)) visits the
 * folders by sorted path, and each folder's files in sorted order. */
static gf_status walk_class(gf_ctx *ctx, const char *class_dir, strlist *out) {
    strlist dirs = {0}, pending = {0};
    gf_status s = GF_OK;
    if (!sl_push(&pending, gf_ds_strdup(class_dir)) || !sl_push(&dirs, gf_ds_strdup(class_dir))) {
        s = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: out of memory");
        goto out;
    }
    /* collect every folder (depth-limited: a symlink loop must end) */
    const size_t base_len = strlen(class_dir);
    while (pending.n > 0 && s == GF_OK) {
        char *dir = pending.s[--pending.n];
        int depth = 0;
        for (const char *c = dir + base_len; *c; c++) depth += *c == '/';
        strlist sub = {0};
        s = list_dir(ctx, dir, depth < 32 ? &sub : NULL, NULL);
        for (int64_t i = 0; i < sub.n && s == GF_OK; i++) {
            if (!sl_push(&dirs, gf_ds_strdup(sub.s[i])) ||
                !sl_push(&pending, gf_ds_strdup(sub.s[i])))
                s = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: out of memory");
        }
        sl_free(&sub);
        free(dir);
    }
    if (s != GF_OK) goto out;
    qsort(dirs.s, (size_t)dirs.n, sizeof *dirs.s, cmp_strp);
    for (int64_t i = 0; i < dirs.n && s == GF_OK; i++) {
        strlist files = {0};
        s = list_dir(ctx, dirs.s[i], NULL, &files);
        if (s == GF_OK && files.n > 1) qsort(files.s, (size_t)files.n, sizeof *files.s, cmp_strp);
        for (int64_t j = 0; j < files.n && s == GF_OK; j++)
            if (!sl_push(out, join(dirs.s[i], files.s[j])))
                s = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: out of memory");
        sl_free(&files);
    }
out:
    sl_free(&dirs);
    sl_free(&pending);
    return s;
}

/* stands for a message that could not be allocated */
static char oom_marker[1];

const char *gf_images_path(const gf_ds *ds, int64_t i) {
    if (!ds || ds->kind != GF_DS_ARRAY || !ds->paths || i < 0 || i >= ds->n) return NULL;
    return ds->paths + ds->path_off[i];
}

gf_ds *gf_images_load_folder(gf_ctx *ctx, const char *root, const gf_images_params *params) {
    gf_images_params p = params ? *params : gf_images_default_params();
    if (!root) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "images: NULL root folder");
        return NULL;
    }
    if (!check_params(ctx, &p, root)) return NULL;
    /* "data/pets/" and "data/pets" name the same folder: keep paths free of "//" */
    char *root_copy = gf_ds_strdup(root);
    if (!root_copy) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: out of memory");
        return NULL;
    }
    for (size_t l = strlen(root_copy); l > 1 && root_copy[l - 1] == '/'; l--)
        root_copy[l - 1] = '\0';
    root = root_copy;
    strlist classes = {0}, files = {0};
    int64_t *labels = NULL, *off = NULL;
    char *pool = NULL, **errs = NULL;
    uint8_t *pix = NULL;
    gf_ds *ds = NULL;
    if (!is_dir(root)) {
        gf_ctx_set_error(ctx, GF_ERR_IO, "images: %s is not a readable folder", root);
        goto out;
    }
    if (list_dir(ctx, root, &classes, NULL) != GF_OK) goto out;
    if (classes.n == 0) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                         "images: %s has no class folders (expected root/<class>/<image>)", root);
        goto out;
    }
    if (classes.n > 100000) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "images: %s has %lld class folders", root,
                         (long long)classes.n);
        goto out;
    }
    qsort(classes.s, (size_t)classes.n, sizeof *classes.s, cmp_strp);
    /* labels grow with files: remember where each class starts */
    int64_t *starts = calloc((size_t)classes.n + 1, sizeof *starts);
    if (!starts) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: out of memory");
        goto out;
    }
    for (int64_t k = 0; k < classes.n; k++) {
        starts[k] = files.n;
        if (walk_class(ctx, classes.s[k], &files) != GF_OK) break;
        if (files.n == starts[k]) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                             "images: class folder %s holds no image files (.jpg .jpeg .png .ppm "
                             ".bmp .pgm .tif .tiff .webp)",
                             classes.s[k]);
            break;
        }
    }
    starts[classes.n] = files.n;
    if (gf_ctx_status(ctx) != GF_OK) {
        free(starts);
        goto out;
    }
    const int64_t n = files.n;
    labels = malloc((size_t)n * sizeof *labels);
    off = malloc((size_t)n * sizeof *off);
    size_t pool_len = 0;
    for (int64_t i = 0; i < n; i++) pool_len += strlen(files.s[i]) + 1;
    pool = malloc(pool_len);
    if (!labels || !off || !pool) {
        free(starts);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: out of memory");
        goto out;
    }
    for (int64_t k = 0; k < classes.n; k++)
        for (int64_t i = starts[k]; i < starts[k + 1]; i++) labels[i] = k;
    free(starts);
    size_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t len = strlen(files.s[i]) + 1;
        memcpy(pool + at, files.s[i], len);
        off[i] = (int64_t)at;
        at += len;
    }

#ifdef GF_HAVE_STB
    /* the output size: fixed by the parameters, else set by the first image */
    int ih, iw, ic, oh, ow;
    if (!stbi_info(files.s[0], &iw, &ih, &ic)) {
        char err[512];
        int h0, w0;
        uint8_t *px = decode_rgb(files.s[0], &h0, &w0, err, sizeof err);
        if (px) stbi_image_free(px); /* info failed but decoding worked: unlikely */
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s (example 0)",
                         px ? "images: cannot read size" : err);
        goto out;
    }
    final_size(&p, ih, iw, &oh, &ow);
    const int64_t per = (int64_t)p.channels * oh * ow;
    if (per > ((int64_t)1 << 62) / (n > 0 ? n : 1)) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: %s: %lld images of %dx%d are too many", root,
                         (long long)n, oh, ow);
        goto out;
    }
    pix = malloc((size_t)(n * per));
    errs = calloc((size_t)n, sizeof *errs);
    if (!pix || !errs) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: %s: out of memory for %lld images of %dx%dx%d",
                         root, (long long)n, p.channels, oh, ow);
        goto out;
    }
    const int nt = p.n_threads > 0 ? p.n_threads : gf_ctx_threads(ctx);
    /* each image is decoded into its own slot; failures are collected and the first (lowest
     * index) is reported, so the message does not depend on thread timing */
#pragma omp parallel for schedule(dynamic, 4) num_threads(nt)
    for (int64_t i = 0; i < n; i++) {
        char err[512];
        int h, w;
        uint8_t *rgb = decode_rgb(files.s[i], &h, &w, err, sizeof err);
        if (rgb) {
            int fh, fw;
            final_size(&p, h, w, &fh, &fw);
            if (fh != oh || fw != ow)
                snprintf(err, sizeof err,
                         "images: %s is %dx%d (after resize/crop: %dx%d), the first image %s is "
                         "%dx%d: set a resize and crop to give every image one size",
                         files.s[i], w, h, fw, fh, files.s[0], ow, oh);
            else if (!process(rgb, h, w, &p, pix + i * per, oh, ow))
                snprintf(err, sizeof err, "images: %s: out of memory", files.s[i]);
            else
                err[0] = '\0';
            stbi_image_free(rgb);
        }
        if (err[0]) errs[i] = gf_ds_strdup(err);
        if (err[0] && !errs[i]) errs[i] = oom_marker;
    }
    for (int64_t i = 0; i < n; i++) {
        if (!errs[i]) continue;
        if (errs[i] == oom_marker)
            gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: out of memory (example %lld)",
                             (long long)i);
        else
            gf_ctx_set_error(ctx, strstr(errs[i], "cannot open") ? GF_ERR_IO : GF_ERR_FORMAT,
                             "%s (example %lld)", errs[i], (long long)i);
        break;
    }
    if (gf_ctx_status(ctx) != GF_OK) goto out;
    {
        const char *const *names = NULL;
        char **cn = malloc((size_t)classes.n * sizeof *cn);
        if (!cn) {
            gf_ctx_set_error(ctx, GF_ERR_NOMEM, "images: out of memory");
            goto out;
        }
        for (int64_t k = 0; k < classes.n; k++) cn[k] = strrchr(classes.s[k], '/') + 1;
        names = (const char *const *)cn;
        char desc[300];
        const char *b = strrchr(root, '/');
        snprintf(desc, sizeof desc, "images %s", b ? b + 1 : root);
        const int64_t shape[3] = {p.channels, oh, ow};
        ds = gf_ds_alloc(ctx, GF_DS_ARRAY, n, 3, shape, (int)classes.n, names, desc);
        free(cn);
        if (!ds) goto out;
        ds->owned[0] = pix;
        ds->x_u8 = pix;
        ds->owned[1] = labels;
        ds->labels = labels;
        ds->owned[2] = pool;
        ds->paths = pool;
        ds->owned[3] = off;
        ds->path_off = off;
        pix = NULL;
        labels = off = NULL;
        pool = NULL;
    }
#else
    gf_ctx_set_error(ctx, GF_ERR_INVALID,
                     "images: cannot decode %s: graft was built without stb_image (libstb-dev)",
                     files.s[0]);
#endif
out:
    if (errs)
        for (int64_t i = 0; i < files.n; i++)
            if (errs[i] != oom_marker) free(errs[i]);
    free(errs);
    sl_free(&classes);
    sl_free(&files);
    free(root_copy);
    free(labels);
    free(off);
    free(pool);
    free(pix);
    return ds;
}
