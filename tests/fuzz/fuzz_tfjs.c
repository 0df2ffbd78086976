/* libFuzzer target for the TensorFlow.js importer (gf_tfjs_parse): any input gives either a
 * module within the context's limits that runs on an 8x8 image (or a feature vector), or an
 * error message — never a crash, a leak, a huge allocation or a long build from a short file.
 * Input: a 4-byte little-endian length L, then L bytes of model.json, then the weights (every
 * group's shards back to back). The limits are lowered so that what passes stays cheap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FUZZ_PARAMS = 1 << 18, FUZZ_ACTIVATION = 1 << 14 };

/* Runs m once on a small input of the file's channel count (skipped when too wide). */
static void run_once(gf_ctx *ctx, gf_module *m, const gf_tfjs_info *info) {
    int64_t shape[4] = {1, info->in_shape[0], 8, 8};
    int nd = info->in_ndim == 3 ? 4 : info->in_ndim + 1;
    if (info->in_ndim != 3) {
        for (int d = 0; d < info->in_ndim; d++)
            shape[d + 1] = info->in_shape[d] > 0 ? info->in_shape[d] : 4;
    }
    int64_t n = 1;
    for (int d = 0; d < nd; d++) n *= shape[d];
    if (n > FUZZ_ACTIVATION) return;
    gf_tensor *x = gf_full(ctx, nd, shape, 0.5f);
    bool grad = gf_ctx_set_grad_enabled(ctx, false);
    gf_module_forward(ctx, m, x);
    gf_ctx_set_grad_enabled(ctx, grad);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static gf_ctx *ctx;
    if (!ctx) {
        gf_ctx_params p = gf_ctx_default_params();
        p.n_threads = 1;
        p.arena_bytes = 1 << 16;
        p.limits.model_params = FUZZ_PARAMS;
        p.limits.model_activation = FUZZ_ACTIVATION;
        p.limits.json_nodes = 1 << 14;
        ctx = gf_ctx_new(&p);
    }
    if (size < 4) return 0;
    size_t len = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 |
                 (size_t)data[3] << 24;
    if (len > size - 4) len = size - 4;
    /* exact-size heap copies let ASan catch any read past the end */
    char *json = malloc(len ? len : 1);
    size_t wlen = size - 4 - len;
    uint8_t *w = malloc(wlen ? wlen : 1);
    if (!json || !w) {
        free(json);
        free(w);
        return 0;
    }
    memcpy(json, data + 4, len);
    memcpy(w, data + 4 + len, wlen);
    gf_tfjs_options o = gf_tfjs_default_options();
    o.in_h = o.in_w = 8;
    gf_tfjs_info *info = NULL;
    gf_module *m = gf_tfjs_parse(ctx, json, len, w, wlen, "fuzz.json", &o, &info);
    if (m) {
        if (gf_module_param_count(m, false) > FUZZ_PARAMS || !info) abort();
        run_once(ctx, m, info);
        gf_tfjs_info_free(info);
        gf_module_free(m);
    } else if (gf_ctx_status(ctx) == GF_OK || gf_ctx_error(ctx)[0] == '\0') {
        abort(); /* a failure must say why */
    }
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    free(json);
    free(w);
    return 0;
}
