/* libFuzzer target for the model-spec reader (JSON): any text gives either a module whose
 * every layer was built and dry-run on the given input shape, within the context's limits, or
 * an error message — never a crash, a leak, a huge allocation or a long build from a short
 * spec. The first byte picks the input shape (none, [1, 28, 28], [3, 8, 8] or [4]); the rest
 * is the spec. The limits are lowered so that what passes them stays cheap to build. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FUZZ_PARAMS = 1 << 20, FUZZ_ACTIVATION = 1 << 16 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static gf_ctx *ctx;
    if (!ctx) {
        gf_ctx_params p = gf_ctx_default_params();
        p.n_threads = 1;
        p.arena_bytes = 1 << 16;
        p.limits.model_params = FUZZ_PARAMS;
        p.limits.model_activation = FUZZ_ACTIVATION;
        p.limits.json_nodes = 1 << 12;
        ctx = gf_ctx_new(&p);
    }
    static const int64_t shapes[4][3] = {{0}, {1, 28, 28}, {3, 8, 8}, {4}};
    static const int ndims[4] = {0, 3, 3, 1};
    const int pick = size > 0 ? data[0] % 4 : 0;
    if (size > 0) {
        data++;
        size--;
    }
    gf_spec_params sp = gf_spec_default_params();
    sp.label = "fuzz.json";
    sp.in_ndim = ndims[pick];
    for (int i = 0; i < sp.in_ndim; i++) sp.in_shape[i] = shapes[pick][i];
    /* an exact-size heap copy lets ASan catch any read past the end */
    char *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    gf_spec_summary *sum = NULL;
    gf_module *m = gf_spec_parse(ctx, copy, size, &sp, &sum);
    if (m) {
        /* the estimate bounds what was built: parameters and buffers included */
        if (gf_module_param_count(m, false) > FUZZ_PARAMS) abort();
        if (!sum || sum->n_layers < 1) abort();
        for (int i = 0; i < sum->n_layers; i++) {
            int64_t n = 1;
            for (int d = 0; d < sum->layers[i].out_ndim; d++) n *= sum->layers[i].out_shape[d];
            if (sum->layers[i].out_ndim > 0 && n > FUZZ_ACTIVATION) abort();
        }
        gf_spec_summary_free(sum);
        gf_module_free(m);
    } else if (gf_ctx_status(ctx) == GF_OK || gf_ctx_error(ctx)[0] == '\0') {
        abort(); /* a failure must say why */
    }
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    free(copy);
    return 0;
}
