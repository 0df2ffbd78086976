/* libFuzzer target: any bytes given to the .npy reader must give a tensor whose shape matches
 * its element count and which writes back, or an error message — never a crash, a leak or a
 * read past the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static gf_ctx *ctx;
    if (!ctx) {
        gf_ctx_params p = gf_ctx_default_params();
        p.n_threads = 1;
        p.arena_bytes = 1 << 16;
        ctx = gf_ctx_new(&p);
    }
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    gf_tensor *t = gf_npy_read_memory(ctx, copy, size, "fuzz");
    if (t) {
        int64_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
        if (n != t->numel || (t->dtype != GF_F32 && t->dtype != GF_I64)) abort();
        for (int64_t i = 0; i < t->numel; i++)
            if (t->dtype == GF_F32) (void)gf_get_f32(t, i);
            else (void)gf_get_i64(t, i);
    } else if (!gf_ctx_error(ctx)[0]) {
        abort();
    }
    gf_tensor_free(t);
    gf_ctx_clear_error(ctx);
    free(copy);
    return 0;
}
