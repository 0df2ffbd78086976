/* libFuzzer target: any bytes given to the ONNX importer must load as a module or be refused with
 * a message; a loaded model is then run on small inputs made from its declared shapes (symbolic
 * and unknown dimensions 2, at most 4096 elements each), and must give outputs or an error — never
 * a crash, a leak, a read past the input or an allocation the limits do not allow. The limits are
 * lowered so that inputs of the fuzzer's size reach them.  Loaded again with a cut at its first
 * output, the pruning path runs too. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An input for the declared value: zeros and small integers (valid indices for most ops). */
static gf_tensor *make_input(gf_ctx *ctx, const gf_onnx_value_info *vi) {
    gf_dtype dt = GF_F32;
    if (vi->elem_type && !gf_onnx_type_dtype(vi->elem_type, &dt)) return NULL;
    int64_t shape[GF_MAX_DIMS], numel = 1;
    int nd = vi->ndim < 0 ? 1 : vi->ndim;
    for (int d = 0; d < nd; d++) {
        shape[d] = vi->ndim < 0 || vi->dims[d] < 0 ? 2 : vi->dims[d];
        if (shape[d] > 4096 || (shape[d] && numel > 4096 / shape[d])) return NULL;
        numel *= shape[d];
    }
    gf_tensor *t = gf_tensor_new(ctx, dt, nd, shape);
    for (int64_t i = 0; t && i < t->numel; i++) {
        if (dt == GF_F32) gf_f32(t)[i] = (float)(i % 7) * 0.25f - 0.5f;
        else gf_i64(t)[i] = i % 2;
    }
    return t;
}

static void run(gf_ctx *ctx, gf_module *m) {
    gf_tensor *in[16] = {NULL}, *out[16];
    int n = gf_onnx_num_inputs(m);
    bool ok = n <= 16;
    for (int i = 0; ok && i < n; i++) ok = (in[i] = make_input(ctx, gf_onnx_input(m, i))) != NULL;
    if (ok) {
        int k = gf_onnx_run(ctx, m, n, in, out, 16);
        for (int i = 0; i < k; i++)
            if (!out[i] || out[i]->numel < 0) abort();
        if (k < 0 && !gf_ctx_error(ctx)[0]) abort(); /* a failure always says why */
    }
    for (int i = 0; i < 16; i++) gf_tensor_free(in[i]);
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static gf_ctx *ctx;
    if (!ctx) {
        gf_ctx_params p = gf_ctx_default_params();
        p.n_threads = 1;
        p.arena_bytes = 1 << 16;
        p.limits.model_params = 1 << 16;
        p.limits.model_activation = 1 << 16;
        p.limits.data_bytes = 1 << 22;
        ctx = gf_ctx_new(&p);
    }
    /* an exact-size heap copy lets ASan catch any read past the end */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    gf_module *m = gf_onnx_load_memory(ctx, copy, size, "fuzz", NULL);
    if (!m && !gf_ctx_error(ctx)[0]) abort();
    if (m) {
        run(ctx, m);
        /* cut at an output the model names: its first output's name, when it has one */
        const gf_onnx_value_info *o = gf_onnx_output(m, 0);
        char *cut = o && o->name ? strdup(o->name) : NULL;
        gf_module_free(m);
        gf_onnx_options opt = gf_onnx_default_options();
        opt.cut = cut;
        opt.fold_constants = size % 2 == 0;
        gf_ctx_clear_error(ctx);
        if (cut && (m = gf_onnx_load_memory(ctx, copy, size, "fuzz", &opt))) {
            run(ctx, m);
            gf_module_free(m);
        }
        free(cut);
    }
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    free(copy);
    return 0;
}
