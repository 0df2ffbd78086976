/* Thumbnails in a report: each image encoded as a PNG (8-bit grey or RGB, written here with
 * zlib, so the page needs no image library) and embedded as a data: URI, so the page stays one
 * file. Images larger than a thumbnail are reduced by averaging whole blocks of pixels. */
#define _POSIX_C_SOURCE 200809L
#include "io/report_internal.h"
#include "core/internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { THUMB_MAX = 128, IMAGE_MAX_SIDE = 4096, IMAGES_MAX = 1000 };

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Appends one chunk (length, type, data, CRC of type and data) at *at. */
static void put_chunk(uint8_t *out, size_t *at, const char *type, const uint8_t *data, size_t n) {
    put_u32(out + *at, (uint32_t)n);
    memcpy(out + *at + 4, type, 4);
    if (n) memcpy(out + *at + 8, data, n);
    uLong crc = crc32(0L, out + *at + 4, (uInt)(n + 4));
    put_u32(out + *at + 8 + n, (uint32_t)crc);
    *at += 12 + n;
}

/* A PNG of rows [h, w * c] bytes (c 1: grey, 3: RGB), malloc'd, its size in *len; NULL when out
 * of memory. Every row has filter type 0 (none): thumbnails are small. */
static uint8_t *png_encode(const uint8_t *px, int c, int h, int w, size_t *len) {
    const size_t row = (size_t)w * (size_t)c + 1, raw_n = row * (size_t)h;
    uint8_t *raw = malloc(raw_n);
    uLongf z_n = compressBound((uLong)raw_n);
    uint8_t *z = malloc(z_n);
    uint8_t *out = raw && z ? malloc(8 + 25 + 12 + z_n + 12) : NULL;
    bool ok = out != NULL;
    for (int y = 0; ok && y < h; y++) {
        raw[(size_t)y * row] = 0;
        memcpy(raw + (size_t)y * row + 1, px + (size_t)y * (row - 1), row - 1);
    }
    ok = ok && compress2(z, &z_n, raw, (uLong)raw_n, 9) == Z_OK;
    size_t at = 0;
    if (ok) {
        static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        uint8_t ihdr[13];
        put_u32(ihdr, (uint32_t)w);
        put_u32(ihdr + 4, (uint32_t)h);
        ihdr[8] = 8;                  /* bits per sample */
        ihdr[9] = c == 1 ? 0 : 2;     /* grey or truecolour */
        ihdr[10] = ihdr[11] = ihdr[12] = 0; /* deflate, adaptive filtering, no interlace */
        memcpy(out, sig, 8);
        at = 8;
        put_chunk(out, &at, "IHDR", ihdr, 13);
        put_chunk(out, &at, "IDAT", z, z_n);
        put_chunk(out, &at, "IEND", NULL, 0);
    }
    free(raw);
    free(z);
    if (!ok) {
        free(out);
        return NULL;
    }
    *len = at;
    return out;
}

/* The image as interleaved bytes [h', w' * c], reduced by the whole factor f on each side
 * (block averages) so neither side exceeds THUMB_MAX; values clamped to [0, 1]. */
static uint8_t *thumb_pixels(const gf_report_image *im, int *h_out, int *w_out) {
    const int c = im->channels, f = (im->height > im->width ? im->height : im->width) > THUMB_MAX
                                        ? ((im->height > im->width ? im->height : im->width) +
                                           THUMB_MAX - 1) / THUMB_MAX
                                        : 1;
    const int h = im->height / f > 0 ? im->height / f : 1, w = im->width / f > 0 ? im->width / f : 1;
    uint8_t *px = malloc((size_t)h * (size_t)w * (size_t)c);
    for (int y = 0; px && y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                double s = 0;
                int m = 0;
                for (int dy = 0; dy < f && y * f + dy < im->height; dy++)
                    for (int dx = 0; dx < f && x * f + dx < im->width; dx++, m++) {
                        const float v = im->pixels[((size_t)k * (size_t)im->height +
                                                    (size_t)(y * f + dy)) * (size_t)im->width +
                                                   (size_t)(x * f + dx)];
                        s += isfinite(v) ? (v < 0 ? 0 : v > 1 ? 1 : v) : 0;
                    }
                px[((size_t)y * (size_t)w + (size_t)x) * (size_t)c + (size_t)k] =
                    (uint8_t)lround(255.0 * s / (m ? m : 1));
            }
    *h_out = h;
    *w_out = w;
    return px;
}

static void put_base64(gf_sb *b, const uint8_t *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        const uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                           (i + 2 < n ? p[i + 2] : 0);
        q[0] = tab[v >> 18 & 63];
        q[1] = tab[v >> 12 & 63];
        q[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? tab[v & 63] : '=';
        gf_sb_put(b, q, 4);
    }
}

/* One figure: the thumbnail (shown at least 64 pixels wide, pixel edges kept) and its caption. */
static bool add_figure(gf_sb *b, const gf_report_image *im) {
    int h, w;
    uint8_t *px = thumb_pixels(im, &h, &w);
    size_t len = 0;
    uint8_t *png = px ? png_encode(px, im->channels, h, w, &len) : NULL;
    free(px);
    if (!png) return false;
    const int scale = w < 64 ? (64 + w - 1) / w : 1;
    gf_sb_printf(b, "<figure><img width=\"%d\" height=\"%d\" alt=\"", w * scale, h * scale);
    gf_sb_esc(b, im->caption ? im->caption : "");
    gf_sb_puts(b, "\" src=\"data:image/png;base64,");
    put_base64(b, png, len);
    free(png);
    gf_sb_puts(b, "\"/><figcaption>");
    gf_sb_esc(b, im->caption ? im->caption : "");
    gf_sb_puts(b, "</figcaption></figure>\n");
    return true;
}

gf_status gf_report_add_images(gf_ctx *ctx, gf_report *r, const char *title, int n,
                               const gf_report_image *images) {
    static const char fn[] = "report images";
    if (gf_report_check(ctx, r, fn)) return gf_ctx_status(ctx);
    if (n < 0 || n > IMAGES_MAX || (n > 0 && !images))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %d images (0 to %d, and not NULL)", fn,
                                n, IMAGES_MAX);
    for (int i = 0; i < n; i++) {
        const gf_report_image *im = &images[i];
        if (!im->pixels || (im->channels != 1 && im->channels != 3) || im->height < 1 ||
            im->width < 1 || im->height > IMAGE_MAX_SIDE || im->width > IMAGE_MAX_SIDE)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "%s: image %d is [%d, %d, %d]%s: need 1 or 3 channels and "
                                    "sides of 1 to %d pixels",
                                    fn, i, im->channels, im->height, im->width,
                                    im->pixels ? "" : " without pixels", IMAGE_MAX_SIDE);
    }
    gf_sb b = {0};
    gf_sb_puts(&b, "<section class=\"card images\">\n");
    if (title && *title) {
        gf_sb_puts(&b, "<h3>");
        gf_sb_esc(&b, title);
        gf_sb_puts(&b, "</h3>\n");
    }
    gf_sb_puts(&b, "<div class=\"thumbs\">\n");
    for (int i = 0; i < n && !b.oom; i++)
        if (!add_figure(&b, &images[i])) b.oom = true;
    gf_sb_puts(&b, "</div>\n</section>\n");
    return gf_report_push(ctx, r, &b, fn);
}
