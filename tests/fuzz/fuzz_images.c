/* libFuzzer target for the image decoders (PNG, JPEG, PPM/PGM, BMP, and the formats refused by
 * name): any file gives either an image of the size the options promise, every byte readable,
 * or an error message — never a crash, a leak, a read out of bounds or a large allocation. The
 * pixel limit is 2^20 (a few MiB per image at most), so a header declaring gigabytes must be
 * refused before allocating, as the library promises. gf_images_read takes a path, so the input
 * goes through one scratch file per process. The last byte picks the options (channels,
 * resize, crop, a tiny pixel limit), leaving the first bytes, which choose the format, to the
 * fuzzer; decoders ignore bytes after the image, so the seeds stay valid. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graft/graft.h"
#include "graft/images.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[64];

static void remove_scratch(void) {
    if (scratch[0]) unlink(scratch);
}

static gf_images_params options(uint8_t opt) {
    gf_images_params p = gf_images_default_params();
    p.n_threads = 1;
    p.channels = (opt & 1) ? 1 : 3;
    switch ((opt >> 1) & 3) {
    case 1: p.resize = 7; break;
    case 2: p.resize_h = 5, p.resize_w = 9; break;
    case 3: p.resize = 1 + (opt >> 5); break;
    default: break;
    }
    if (opt & 0x08) p.crop_h = 4, p.crop_w = 6;
    p.max_pixels = (opt & 0x10) ? 64 : (int64_t)1 << 20;
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static gf_ctx *ctx;
    if (!ctx) {
        gf_ctx_params cp = gf_ctx_default_params();
        cp.n_threads = 1;
        cp.arena_bytes = 1 << 16;
        ctx = gf_ctx_new(&cp);
        snprintf(scratch, sizeof scratch, "/tmp/graft-fuzz-images-XXXXXX");
        int fd = mkstemp(scratch);
        if (fd < 0) abort();
        close(fd);
        atexit(remove_scratch);
    }
    FILE *f = fopen(scratch, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    const gf_images_params p = options(size ? data[size - 1] : 0);
    int h = -1, w = -1;
    uint8_t *px = gf_images_read(ctx, scratch, &p, &h, &w);
    if (px) {
        if (h < 1 || w < 1 || (int64_t)h * w > p.max_pixels) abort();
        if (p.crop_h && (h != p.crop_h || w != p.crop_w)) abort();
        if (p.resize_h && !p.crop_h && (h != p.resize_h || w != p.resize_w)) abort();
        unsigned sum = 0;
        for (size_t i = 0; i < (size_t)h * (size_t)w * (size_t)p.channels; i++) sum += px[i];
        (void)sum;
        free(px);
    } else if (gf_ctx_status(ctx) == GF_OK || gf_ctx_error(ctx)[0] == '\0') {
        abort(); /* a failure must say why */
    }
    gf_ctx_clear_error(ctx);
    return 0;
}
