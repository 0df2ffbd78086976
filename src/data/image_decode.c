/* Image decoders that take hostile files: libpng and libjpeg-turbo for PNG and JPEG (fuzzed
 * upstream), graft's own readers for binary PPM/PGM and BMP. The format is sniffed from the
 * first bytes. Every declared size passes check_size (pixel limit, side limit) and, for the raw
 * formats, a comparison with the file's length before any image-sized allocation, so a
 * 40-byte header cannot cost gigabytes. Nothing here prints: libpng's and libjpeg's message
 * hooks are replaced. */
#define _POSIX_C_SOURCE 200809L
#include "data/images_internal.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef GF_HAVE_IMAGE_CODECS
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#endif

typedef struct dec {
    FILE *f;
    const char *path;
    int64_t size; /* the file's length in bytes */
    int64_t max_pixels;
    bool header_only;
    uint8_t *rgb; /* the result, h * w * 3 */
    int h, w;
    char *err;
    size_t cap;
} dec;

static const char supported[] = "graft reads PNG, JPEG, binary PPM/PGM and BMP";

static bool dec_fail(dec *d, const char *fmt, ...) {
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(d->err, d->cap, "images: cannot decode %s (%s)", d->path, why);
    return false;
}

/* The declared size against the limits; w and h come straight from the header. */
static bool check_size(dec *d, const char *fmt, int64_t w, int64_t h) {
    if (w < 1 || h < 1)
        return dec_fail(d, "%s declares a size of %lldx%lld pixels", fmt, (long long)w,
                        (long long)h);
    if (w > GF_IMG_MAX_SIDE || h > GF_IMG_MAX_SIDE) {
        snprintf(d->err, d->cap, "images: %s: %s declares %lldx%lld pixels, a side longer than %d",
                 d->path, fmt, (long long)w, (long long)h, GF_IMG_MAX_SIDE);
        return false;
    }
    if (w * h > d->max_pixels) {
        snprintf(d->err, d->cap,
                 "images: %s: %s declares %lldx%lld = %lld pixels, more than the limit of %lld "
                 "(max_pixels; graft --max-image-pixels)",
                 d->path, fmt, (long long)w, (long long)h, (long long)(w * h),
                 (long long)d->max_pixels);
        return false;
    }
    d->w = (int)w;
    d->h = (int)h;
    return true;
}

/* A raw format's pixel bytes must be in the file before a buffer is made for them. */
static bool check_bytes(dec *d, const char *fmt, int64_t need, int64_t have, const char *what) {
    if (need <= have) return true;
    snprintf(d->err, d->cap,
             "images: %s: %s declares %dx%d pixels (%lld bytes of %s) but the file holds %lld "
             "(truncated?)",
             d->path, fmt, d->w, d->h, (long long)need, what, (long long)(have > 0 ? have : 0));
    return false;
}

/* h * w pixels of `room` bytes each, room >= 3 so the result can be compacted to RGB in place. */
static uint8_t *alloc_pixels(dec *d, int room) {
    uint8_t *p = malloc((size_t)d->h * (size_t)d->w * (size_t)room);
    if (!p)
        snprintf(d->err, d->cap, "images: %s: out of memory for %dx%d pixels", d->path, d->w,
                 d->h);
    return p;
}

/* In place, n bytes per pixel to RGB: 1 grey, 2 grey + alpha, 4 RGB + alpha. Growing (n < 3)
 * runs backwards and shrinking forwards, so no pixel is overwritten before it is read. */
static void to_rgb(uint8_t *px, size_t count, int n) {
    if (n == 4) {
        for (size_t i = 0; i < count; i++) memmove(px + 3 * i, px + 4 * i, 3);
    } else if (n < 3) {
        for (size_t i = count; i-- > 0;) {
            uint8_t v = px[i * (size_t)n];
            px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = v;
        }
    }
}

/* ---- PPM / PGM (P6 / P5) ------------------------------------------------------------------- */

static bool is_space(int c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The next header number, after whitespace and # comments; -1 when malformed. The single
 * whitespace byte after it is consumed, as the format wants between maxval and the pixels. */
static int64_t pnm_number(FILE *f) {
    int c = getc(f);
    for (;;) {
        if (c == '#')
            while (c != '\n' && c != '\r' && c != EOF) c = getc(f);
        else if (is_space(c))
            c = getc(f);
        else
            break;
    }
    int64_t v = 0;
    int digits = 0;
    for (; c >= '0' && c <= '9'; c = getc(f)) {
        if (++digits > 9) return -1;
        v = v * 10 + (c - '0');
    }
    return digits > 0 && is_space(c) ? v : -1;
}

static bool decode_pnm(dec *d, int type) {
    const char *fmt = type == '5' ? "PGM" : "PPM";
    const int ch = type == '5' ? 1 : 3;
    if (fseek(d->f, 2, SEEK_SET) != 0) return dec_fail(d, "%s: cannot seek", fmt);
    const int64_t w = pnm_number(d->f), h = w >= 0 ? pnm_number(d->f) : -1,
                  maxval = h >= 0 ? pnm_number(d->f) : -1;
    if (w < 0 || h < 0 || maxval < 0)
        return dec_fail(d, "%s header is malformed: expected width, height and maxval", fmt);
    if (maxval < 1 || maxval > 65535)
        return dec_fail(d, "%s maxval %lld is not in 1..65535", fmt, (long long)maxval);
    if (!check_size(d, fmt, w, h)) return false;
    const int bps = maxval > 255 ? 2 : 1;
    const long at = ftell(d->f);
    if (!check_bytes(d, fmt, w * h * ch * bps, d->size - at, "samples")) return false;
    if (d->header_only) return true;
    uint8_t *px = alloc_pixels(d, 3), *row = malloc((size_t)w * ch * bps);
    if (!px || !row) {
        free(px);
        free(row);
        return px ? dec_fail(d, "out of memory") : false;
    }
    const size_t n = (size_t)w * ch;
    for (int64_t y = 0; y < h; y++) {
        if (fread(row, (size_t)bps, n, d->f) != n) {
            free(px);
            free(row);
            return dec_fail(d, "%s: the file ends early (was it changed while read?)", fmt);
        }
        uint8_t *o = px + (size_t)y * (size_t)w * 3;
        for (size_t i = 0; i < n; i++) {
            uint32_t v = bps == 2 ? (uint32_t)row[2 * i] << 8 | row[2 * i + 1] : row[i];
            if (v > (uint32_t)maxval) v = (uint32_t)maxval;
            /* scaled to 0..255 as PIL does for maxval != 255 */
            uint8_t b = (uint8_t)((v * 255u + (uint32_t)maxval / 2) / (uint32_t)maxval);
            if (ch == 3)
                o[i] = b;
            else
                o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = b;
        }
    }
    free(row);
    d->rgb = px;
    return true;
}

/* ---- BMP ------------------------------------------------------------------------------------ */

typedef struct bmp_info {
    int64_t w, h, offset, pal_end;
    bool top_down;
    int bpp;
    uint32_t comp, mask[3];
    int shift[3];
    uint32_t max[3];
    uint8_t pal[256][3];
} bmp_info;

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | le16(p + 2) << 16; }

/* Channel masks (BI_BITFIELDS or the 16/32-bit defaults) as shift and maximum. */
static void bmp_masks(bmp_info *b) {
    for (int k = 0; k < 3; k++) {
        uint32_t m = b->mask[k];
        int s = 0;
        while (m && !(m & 1u)) {
            m >>= 1;
            s++;
        }
        b->shift[k] = s;
        b->max[k] = m;
    }
}

static bool bmp_formats(dec *d, bmp_info *b) {
    const uint32_t c = b->comp;
    if (c == 1 || c == 2) return dec_fail(d, "RLE-compressed BMP is not supported");
    if (c == 4 || c == 5) return dec_fail(d, "BMP holding a JPEG or PNG is not supported");
    if (c != 0 && c != 3 && c != 6) return dec_fail(d, "BMP compression %u is unknown", c);
    const int p = b->bpp;
    bool ok = c == 0 ? (p == 1 || p == 4 || p == 8 || p == 16 || p == 24 || p == 32)
                     : (p == 16 || p == 32);
    if (!ok)
        return dec_fail(d, "BMP of %d bits per pixel with compression %u is not supported", p, c);
    return true;
}

/* Reads the file and info headers, masks and palette; leaves the pixels. */
static bool bmp_header(dec *d, bmp_info *b) {
    uint8_t hd[14 + 124 + 16];
    memset(hd, 0, sizeof hd);
    if (fread(hd, 1, 18, d->f) != 18) return dec_fail(d, "BMP header is truncated");
    const uint32_t hs = le32(hd + 14);
    if (hs != 12 && hs != 40 && hs != 52 && hs != 56 && hs != 108 && hs != 124)
        return dec_fail(d, "BMP header size %u is not 12, 40, 52, 56, 108 or 124", hs);
    /* BITFIELDS masks follow a 40-byte header; larger ones hold them */
    if (fread(hd + 18, 1, hs - 4, d->f) != hs - 4) return dec_fail(d, "BMP header is truncated");
    uint32_t n_pal = 0;
    if (hs == 12) {
        b->w = le16(hd + 18);
        b->h = le16(hd + 20);
        b->bpp = (int)le16(hd + 24);
    } else {
        b->w = (int32_t)le32(hd + 18);
        b->h = (int32_t)le32(hd + 22);
        b->bpp = (int)le16(hd + 28);
        b->comp = le32(hd + 30);
        n_pal = le32(hd + 46);
    }
    b->top_down = b->h < 0;
    if (b->top_down) b->h = -b->h;
    if (!bmp_formats(d, b)) return false;
    if (b->comp == 3 || b->comp == 6) {
        if (hs == 40 && fread(hd + 54, 1, b->comp == 6 ? 16 : 12, d->f) != (b->comp == 6 ? 16u : 12u))
            return dec_fail(d, "BMP masks are truncated");
        for (int k = 0; k < 3; k++) b->mask[k] = le32(hd + 54 + 4 * k);
    } else if (b->bpp == 16) {
        b->mask[0] = 0x7C00u, b->mask[1] = 0x03E0u, b->mask[2] = 0x001Fu;
    } else if (b->bpp == 32) {
        b->mask[0] = 0xFF0000u, b->mask[1] = 0xFF00u, b->mask[2] = 0xFFu;
    }
    bmp_masks(b);
    if (b->bpp <= 8) {
        const uint32_t most = 1u << b->bpp, entry = hs == 12 ? 3 : 4;
        if (n_pal == 0) n_pal = most;
        if (n_pal > most)
            return dec_fail(d, "BMP palette of %u colours for %d bits per pixel", n_pal, b->bpp);
        uint8_t e[4];
        for (uint32_t i = 0; i < n_pal; i++) {
            if (fread(e, 1, entry, d->f) != entry) return dec_fail(d, "BMP palette is truncated");
            b->pal[i][0] = e[2], b->pal[i][1] = e[1], b->pal[i][2] = e[0];
        }
    }
    b->pal_end = ftell(d->f);
    b->offset = le32(hd + 10);
    return true;
}

static uint8_t bmp_channel(const bmp_info *b, uint32_t v, int k) {
    if (!b->max[k]) return 0;
    uint64_t x = (v >> b->shift[k]) & b->max[k];
    return (uint8_t)((x * 255u + b->max[k] / 2) / b->max[k]);
}

static void bmp_row(const bmp_info *b, const uint8_t *row, uint8_t *o) {
    for (int64_t x = 0; x < b->w; x++, o += 3) {
        if (b->bpp <= 8) {
            const int64_t bit = x * b->bpp;
            const unsigned idx = (row[bit / 8] >> (8 - b->bpp - bit % 8)) & ((1u << b->bpp) - 1);
            memcpy(o, b->pal[idx], 3);
        } else if (b->bpp == 24) {
            o[0] = row[3 * x + 2], o[1] = row[3 * x + 1], o[2] = row[3 * x];
        } else {
            uint32_t v = b->bpp == 16 ? le16(row + 2 * x) : le32(row + 4 * x);
            for (int k = 0; k < 3; k++) o[k] = bmp_channel(b, v, k);
        }
    }
}

static bool decode_bmp(dec *d) {
    bmp_info b;
    memset(&b, 0, sizeof b);
    if (!bmp_header(d, &b) || !check_size(d, "BMP", b.w, b.h)) return false;
    if (b.offset < b.pal_end)
        return dec_fail(d, "BMP pixel data offset %lld points into its header",
                        (long long)b.offset);
    const int64_t stride = (b.w * b.bpp + 31) / 32 * 4, rowbytes = (b.w * b.bpp + 7) / 8;
    if (!check_bytes(d, "BMP", stride * (b.h - 1) + rowbytes, d->size - b.offset, "pixels"))
        return false;
    if (d->header_only) return true;
    uint8_t *px = alloc_pixels(d, 3), *row = malloc((size_t)stride);
    if (!px || !row || fseek(d->f, (long)b.offset, SEEK_SET) != 0) {
        free(px);
        free(row);
        return px ? dec_fail(d, "out of memory or cannot seek") : false;
    }
    for (int64_t r = 0; r < b.h; r++) {
        const size_t n = (size_t)(r < b.h - 1 ? stride : rowbytes);
        if (fread(row, 1, n, d->f) != n) {
            free(px);
            free(row);
            return dec_fail(d, "BMP: the file ends early (was it changed while read?)");
        }
        const int64_t y = b.top_down ? r : b.h - 1 - r;
        bmp_row(&b, row, px + (size_t)y * (size_t)b.w * 3);
    }
    free(row);
    d->rgb = px;
    return true;
}

/* ---- PNG (libpng) and JPEG (libjpeg-turbo) -------------------------------------------------- */

#ifdef GF_HAVE_IMAGE_CODECS
static void png_on_error(png_structp png, png_const_charp msg) {
    dec_fail(png_get_error_ptr(png), "PNG: %s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void png_on_read(png_structp png, png_bytep buf, size_t n) {
    dec *d = png_get_io_ptr(png);
    if (fread(buf, 1, n, d->f) != n) png_error(png, "the file ends early (truncated)");
}

/* After png_read_info: the transformations to 8-bit samples, then the pixels. */
static void png_pixels(dec *d, png_structp png, png_infop info, uint8_t *volatile *px,
                       png_bytep *volatile *rows) {
    const int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    /* the high byte of 16-bit samples, as PIL and stb_image keep */
    if (depth == 16) png_set_strip_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const int ch = png_get_channels(png, info);
    if (ch < 1 || ch > 4 || png_get_rowbytes(png, info) != (size_t)d->w * (size_t)ch)
        png_error(png, "unexpected row layout after conversion to 8 bits");
    *px = alloc_pixels(d, ch > 3 ? ch : 3);
    *rows = malloc((size_t)d->h * sizeof **rows);
    if (!*px || !*rows) {
        if (*px) dec_fail(d, "out of memory");
        png_longjmp(png, 1);
    }
    for (int y = 0; y < d->h; y++) (*rows)[y] = *px + (size_t)y * (size_t)d->w * (size_t)ch;
    png_read_image(png, *rows);
    to_rgb(*px, (size_t)d->w * (size_t)d->h, ch);
}

static bool decode_png(dec *d) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d, png_on_error,
                                             png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return dec_fail(d, "out of memory");
    }
    uint8_t *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    volatile bool ok = false;
    if (setjmp(png_jmpbuf(png)) == 0) {
        png_set_read_fn(png, d, png_on_read);
        /* the size checks are check_size's, with the declared size in the message */
        png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);
        /* text and ICC chunks inflate into at most 8 MiB: no decompression bomb there */
        png_set_chunk_malloc_max(png, (png_alloc_size_t)8 << 20);
        png_read_info(png, info);
        if (!check_size(d, "PNG", png_get_image_width(png, info), png_get_image_height(png, info)))
            png_longjmp(png, 1);
        if (!d->header_only) png_pixels(d, png, info, &px, &rows);
        ok = true;
    }
    free(rows);
    if (ok) d->rgb = px;
    else free(px);
    png_destroy_read_struct(&png, &info, NULL);
    return ok;
}

/* Progressive JPEGs may hold any number of scans, each a full pass over the coefficients:
 * libjpeg-turbo's own fuzzers stop at 500, as does this. */
#define JPEG_MAX_SCANS 500

typedef struct jpeg_guard {
    struct jpeg_error_mgr pub;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    dec *d;
} jpeg_guard;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_guard *g = (jpeg_guard *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    g->pub.format_message(cinfo, msg);
    dec_fail(g->d, "JPEG: %s", msg);
    longjmp(g->jump, 1);
}

/* Warnings are ignored, as PIL ignores them, except the end of the data: a truncated file is an
 * error rather than an image padded with grey. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_on_error(cinfo);
}

static void jpeg_on_output(j_common_ptr cinfo) { (void)cinfo; }

static void jpeg_on_progress(j_common_ptr cinfo) {
    jpeg_guard *g = (jpeg_guard *)cinfo->err;
    if (cinfo->is_decompressor &&
        ((j_decompress_ptr)cinfo)->input_scan_number > JPEG_MAX_SCANS) {
        dec_fail(g->d, "JPEG: more than %d scans", JPEG_MAX_SCANS);
        longjmp(g->jump, 1);
    }
}

/* Adobe's inverted CMYK to RGB (r = c * k / 255), as PIL's CMYK;I and stb_image do. */
static void cmyk_to_rgb(uint8_t *px, size_t count) {
    for (size_t i = 0; i < count; i++) {
        uint8_t *p = px + 4 * i;
        for (int k = 0; k < 3; k++) p[k] = (uint8_t)((p[k] * p[3] + 127) / 255);
    }
}

static bool decode_jpeg(dec *d) {
    struct jpeg_decompress_struct cinfo;
    jpeg_guard g;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&g, 0, sizeof g);
    g.d = d;
    cinfo.err = jpeg_std_error(&g.pub);
    g.pub.error_exit = jpeg_on_error;
    g.pub.emit_message = jpeg_on_message;
    g.pub.output_message = jpeg_on_output;
    g.progress.progress_monitor = jpeg_on_progress;
    uint8_t *volatile px = NULL;
    if (setjmp(g.jump)) {
        free(px);
        jpeg_destroy_decompress(&cinfo);
        return false;
    }
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &g.progress;
    jpeg_stdio_src(&cinfo, d->f);
    jpeg_read_header(&cinfo, TRUE);
    if (!check_size(d, "JPEG", cinfo.image_width, cinfo.image_height)) longjmp(g.jump, 1);
    if (!d->header_only) {
        const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
        cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
        jpeg_start_decompress(&cinfo);
        const int n = cinfo.output_components;
        if (n != (cmyk ? 4 : 3) || (int)cinfo.output_width != d->w ||
            (int)cinfo.output_height != d->h) {
            dec_fail(d, "JPEG: unexpected output layout");
            longjmp(g.jump, 1);
        }
        px = alloc_pixels(d, n);
        if (!px) longjmp(g.jump, 1);
        while (cinfo.output_scanline < cinfo.output_height) {
            JSAMPROW row = px + (size_t)cinfo.output_scanline * (size_t)d->w * (size_t)n;
            jpeg_read_scanlines(&cinfo, &row, 1);
        }
        if (cmyk) cmyk_to_rgb(px, (size_t)d->w * (size_t)d->h);
        to_rgb(px, (size_t)d->w * (size_t)d->h, n);
    }
    jpeg_destroy_decompress(&cinfo);
    d->rgb = px;
    return true;
}

bool gf_img_have_codecs(void) { return true; }
#else
static bool decode_png(dec *d) {
    return dec_fail(d, "PNG: graft was built without libpng (GRAFT_WITH_IMAGES=OFF)");
}

static bool decode_jpeg(dec *d) {
    return dec_fail(d, "JPEG: graft was built without libjpeg (GRAFT_WITH_IMAGES=OFF)");
}

bool gf_img_have_codecs(void) { return false; }
#endif

/* ---- the format ----------------------------------------------------------------------------- */

static const char *unsupported_name(const uint8_t *m, size_t n) {
    if (n >= 4 && memcmp(m, "GIF8", 4) == 0) return "GIF";
    if (n >= 4 && (memcmp(m, "II*\0", 4) == 0 || memcmp(m, "MM\0*", 4) == 0)) return "TIFF";
    if (n >= 12 && memcmp(m, "RIFF", 4) == 0 && memcmp(m + 8, "WEBP", 4) == 0) return "WebP";
    if (n >= 4 && memcmp(m, "8BPS", 4) == 0) return "PSD";
    if (n >= 2 && memcmp(m, "#?", 2) == 0) return "Radiance HDR";
    if (n >= 2 && m[0] == 'P' && (m[1] == '1' || m[1] == '4')) return "PBM (P1/P4)";
    if (n >= 2 && m[0] == 'P' && (m[1] == '2' || m[1] == '3')) return "ASCII PGM/PPM (P2/P3)";
    if (n >= 2 && m[0] == 'P' && m[1] == '7') return "PAM (P7)";
    return NULL;
}

static bool decode_any(dec *d, const uint8_t *m, size_t n) {
    if (n == 0) return dec_fail(d, "the file is empty");
    if (n >= 8 && memcmp(m, "\x89PNG\r\n\x1a\n", 8) == 0) return decode_png(d);
    if (n >= 3 && m[0] == 0xFF && m[1] == 0xD8 && m[2] == 0xFF) return decode_jpeg(d);
    if (n >= 2 && m[0] == 'P' && (m[1] == '5' || m[1] == '6')) return decode_pnm(d, m[1]);
    if (n >= 2 && m[0] == 'B' && m[1] == 'M') return decode_bmp(d);
    const char *other = unsupported_name(m, n);
    if (other) return dec_fail(d, "%s is not supported: %s", other, supported);
    return dec_fail(d, "unknown format, first bytes %02x %02x %02x %02x: %s", m[0],
                    n > 1 ? m[1] : 0, n > 2 ? m[2] : 0, n > 3 ? m[3] : 0, supported);
}

bool gf_img_decode(const char *path, int64_t max_pixels, bool header_only, uint8_t **rgb, int *h,
                   int *w, char *err, size_t cap) {
    dec d;
    memset(&d, 0, sizeof d);
    d.path = path;
    d.max_pixels = max_pixels;
    d.header_only = header_only;
    d.err = err;
    d.cap = cap;
    if (rgb) *rgb = NULL;
    d.f = fopen(path, "rb");
    if (!d.f) {
        snprintf(err, cap, "images: cannot open %s: %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    bool ok = false;
    /* a FIFO or device named like an image would block or never end */
    if (fstat(fileno(d.f), &st) != 0 || !S_ISREG(st.st_mode)) {
        dec_fail(&d, "not a regular file");
    } else {
        d.size = (int64_t)st.st_size;
        uint8_t magic[12] = {0};
        size_t n = fread(magic, 1, sizeof magic, d.f);
        rewind(d.f);
        ok = decode_any(&d, magic, n);
    }
    fclose(d.f);
    if (!ok) return false;
    *h = d.h;
    *w = d.w;
    if (rgb) *rgb = d.rgb;
    else free(d.rgb);
    return true;
}
