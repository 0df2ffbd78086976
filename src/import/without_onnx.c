/* The ONNX API in a build without protobuf-c or onnx.proto: every call fails with a message
 * that says what to install, so programs and the graft tool link and explain themselves. */
#include "core/internal.h"
#include "graft/onnx.h"
#include "import/onnx_internal.h"

#include <stdlib.h>

#define MISSING "this graft was built without ONNX support (install protobuf-c-compiler, " \
                "libprotobuf-c-dev and libonnx-dev, then rebuild)"

bool gf_onnx_available(void) { return false; }

gf_onnx_options gf_onnx_default_options(void) {
    gf_onnx_options o = {NULL, NULL, 0, true};
    return o;
}

gf_module *gf_onnx_load(gf_ctx *ctx, const char *path, const gf_onnx_options *opt) {
    (void)opt;
    gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s", path ? path : "onnx load", MISSING);
    return NULL;
}

gf_module *gf_onnx_load_memory(gf_ctx *ctx, const void *data, size_t size, const char *name,
                               const gf_onnx_options *opt) {
    (void)data, (void)size, (void)opt;
    gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s", name ? name : "onnx load", MISSING);
    return NULL;
}

bool gf_onnx_is_model(const gf_module *m) { (void)m; return false; }
int gf_onnx_num_inputs(const gf_module *m) { (void)m; return 0; }
int gf_onnx_num_outputs(const gf_module *m) { (void)m; return 0; }
const gf_onnx_value_info *gf_onnx_input(const gf_module *m, int i) {
    (void)m, (void)i;
    return NULL;
}
const gf_onnx_value_info *gf_onnx_output(const gf_module *m, int i) {
    (void)m, (void)i;
    return NULL;
}

int gf_onnx_run(gf_ctx *ctx, gf_module *m, int n_in, gf_tensor *const *in, gf_tensor **out,
                int max_out) {
    (void)m, (void)n_in, (void)in, (void)out, (void)max_out;
    gf_ctx_set_error(ctx, GF_ERR_INVALID, "onnx run: %s", MISSING);
    return -1;
}

const char *gf_onnx_type_name(int elem_type) { (void)elem_type; return "?"; }
bool gf_onnx_type_dtype(int elem_type, gf_dtype *out) { (void)elem_type, (void)out; return false; }

gf_onnx_info *gf_onnx_inspect(gf_ctx *ctx, const char *path) {
    gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s", path ? path : "onnx inspect", MISSING);
    return NULL;
}

void gf_onnx_info_free(gf_onnx_info *info) { free(info); }

gf_tensor *gf_onnx_read_tensor(gf_ctx *ctx, const char *path, char **name, int *elem_type) {
    (void)elem_type;
    if (name) *name = NULL;
    gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s", path ? path : "onnx tensor", MISSING);
    return NULL;
}

gf_onnx_export_options gf_onnx_export_default_options(void) {
    gf_onnx_export_options o = {"input", "output", 0};
    return o;
}

gf_status gf_onnx_export(gf_ctx *ctx, const gf_module *m, int ndim, const int64_t *sample_shape,
                         const char *path, const gf_onnx_export_options *opt) {
    (void)m, (void)ndim, (void)sample_shape, (void)opt;
    return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s", path ? path : "onnx export", MISSING);
}

void *gf_onnx_export_memory(gf_ctx *ctx, const gf_module *m, int ndim,
                            const int64_t *sample_shape, const gf_onnx_export_options *opt,
                            size_t *size) {
    (void)m, (void)ndim, (void)sample_shape, (void)opt;
    if (size) *size = 0;
    gf_ctx_set_error(ctx, GF_ERR_INVALID, "onnx export: %s", MISSING);
    return NULL;
}

const char *const *ox_op_names(void) {
    static const char *const none[] = {NULL};
    return none;
}
