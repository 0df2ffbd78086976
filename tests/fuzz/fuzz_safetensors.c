/* libFuzzer target: any byte string given to the safetensors reader must produce either a
 * valid file whose every tensor loads and whose graft.* metadata reads as a bundle's description
 * (or is refused with a reason), or an error — never a crash, leak or overread. */
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
        /* low enough for inputs of the fuzzer's size to reach the JSON budget */
        p.limits.json_nodes = 1 << 12;
        p.limits.json_depth = 16;
        ctx = gf_ctx_new(&p);
    }
    /* an exact-size heap copy lets ASan catch any read past the end */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    gf_st_file *f = gf_st_open_memory(ctx, copy, size, "fuzz");
    if (f) {
        for (int i = 0; i < gf_st_count(f); i++) {
            const gf_st_info *info = gf_st_get(f, i);
            if (info->numel > (1 << 20)) continue; /* a valid but huge tensor: skip the copy */
            gf_tensor *t = gf_st_load(ctx, f, info);
            gf_tensor_free(t);
        }
        for (int i = 0; i < gf_st_metadata_count(f); i++)
            (void)strlen(gf_st_metadata_value(f, i));
        /* the graft.* description, as gf_bundle_load reads it: whole, or empty with a reason */
        gf_bundle_info m;
        gf_ctx_clear_error(ctx);
        if (gf_bundle_info_read(ctx, f, &m) == GF_OK) {
            if ((m.n_classes && !m.class_names) || m.in_ndim < 0 || m.in_ndim > GF_DS_MAX_DIMS ||
                (m.norm_channels && (!m.norm_mean || !m.norm_std)))
                abort();
            for (int k = 0; k < m.n_classes; k++) (void)strlen(m.class_names[k]);
            /* graft.audio is taken only when every setting is in range */
            if (m.has_audio && gf_audio_frontend_check(NULL, &m.audio, NULL) != GF_OK) abort();
        } else if (m.model || m.class_names || m.norm_mean || !gf_ctx_error(ctx)[0]) {
            abort();
        }
        gf_bundle_info_free(&m);
        gf_st_close(f);
    }
    gf_ctx_clear_error(ctx);
    free(copy);
    return 0;
}
