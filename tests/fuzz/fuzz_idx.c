/* libFuzzer target for the IDX reader (plain or gzip): any file content gives either a
 * consistent gf_idx (dims multiply to numel, every byte readable) or an error message — never
 * a crash, a leak or a huge allocation before the bytes exist. gf_idx_read takes a path, so the
 * input goes through one scratch file per process. An input that starts with "GZ:" is gzipped
 * (the rest) before it is written: mutations of raw gzip bytes rarely survive the CRC, so this
 * is how the fuzzer reaches the reader's gzip paths (header against compressed size, the
 * ratio watched as the data streams) with IDX content of its choosing. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "graft/graft.h"
#include "graft/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[64];

static void remove_scratch(void) {
    if (scratch[0]) unlink(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static gf_ctx *ctx;
    if (!ctx) {
        gf_ctx_params p = gf_ctx_default_params();
        p.n_threads = 1;
        p.arena_bytes = 1 << 16;
        ctx = gf_ctx_new(&p);
        snprintf(scratch, sizeof scratch, "/tmp/graft-fuzz-idx-XXXXXX");
        int fd = mkstemp(scratch);
        if (fd < 0) abort();
        close(fd);
        atexit(remove_scratch);
        /* a gzip bomb of 1 MiB or more would otherwise land in the user's cache */
        setenv("GRAFT_IDX_CACHE", "0", 1);
    }
    if (size >= 3 && memcmp(data, "GZ:", 3) == 0) {
        gzFile g = gzopen(scratch, "wb");
        if (!g) abort();
        if (size > 3 && gzwrite(g, data + 3, (unsigned)(size - 3)) != (int)(size - 3)) abort();
        gzclose(g);
    } else {
        FILE *f = fopen(scratch, "wb");
        if (!f) abort();
        if (size && fwrite(data, 1, size, f) != size) abort();
        fclose(f);
    }
    gf_idx x;
    memset(&x, 0xA5, sizeof x); /* the reader must set every field it promises */
    if (gf_idx_read(ctx, scratch, &x) == GF_OK) {
        int64_t n = 1;
        if (x.ndim < 0 || x.ndim > GF_IDX_MAX_DIMS) abort();
        for (int d = 0; d < x.ndim; d++) n *= x.dims[d];
        if (n != x.numel) abort();
        unsigned sum = 0;
        for (int64_t i = 0; i < x.numel; i++) sum += x.data[i];
        (void)sum;
        gf_idx_free(&x);
    } else if (gf_ctx_error(ctx)[0] == '\0') {
        abort();
    }
    gf_ctx_clear_error(ctx);
    return 0;
}
