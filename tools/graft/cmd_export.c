/* graft export W.safetensors OUT.onnx [--input-shape D,D,...]: a model graft trained (a bundle:
 * the weights with the model's description) written as an ONNX model that ONNX Runtime, or
 * graft run, runs with the same outputs. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <string.h>
#include <sys/stat.h>

static bool has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int check_args(const cli_opts *o) {
    if (o->n_args != 2)
        return cli_usage_error(o->cmd, "give the weights file and the .onnx file to write "
                               "(graft export W.safetensors OUT.onnx)");
    int rc = cli_check_input(o->cmd, "weights", o->args[0]);
    if (rc != CLI_CONTINUE) return rc;
    if (!has_suffix(o->args[1], ".onnx"))
        return cli_usage_error(o->cmd, "'%s': the file to write must end in .onnx", o->args[1]);
    return cli_check_output(o->cmd, "output", o->args[1]);
}

static void report(const cli_opts *o, const gf_bundle *b, int ndim, const int64_t *shape) {
    const char *out = o->args[1];
    /* a text classifier's graph takes the token ids as int64 */
    const char *type = gf_module_type(b->model);
    const bool ids = !strcmp(type, "TextClassifier") || !strcmp(type, "EmbeddingBagClassifier");
    struct stat st;
    const long long bytes = stat(out, &st) == 0 ? (long long)st.st_size : -1;
    const int64_t params = gf_module_param_count(b->model, false);
    if (o->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "weights", o->args[0]);
        cJSON_AddStringToObject(root, "onnx", out);
        cJSON_AddNumberToObject(root, "opset", GF_ONNX_EXPORT_OPSET);
        cJSON_AddStringToObject(root, "input", "input");
        cJSON_AddStringToObject(root, "input_dtype", ids ? "int64" : "float32");
        cJSON_AddItemToObject(root, "sample_shape", cli_json_shape(ndim, shape));
        cJSON_AddStringToObject(root, "output", "output");
        cJSON_AddNumberToObject(root, "parameters", (double)params);
        cJSON_AddNumberToObject(root, "bytes", (double)bytes);
        cli_json_print(root);
        return;
    }
    char dims[128];
    gf_dims_str(ndim, shape, dims, sizeof dims);
    printf("wrote %s: ONNX opset %d, input \"input\" %s[batch, %s, output \"output\", "
           "%lld parameters, %lld bytes\n", out, GF_ONNX_EXPORT_OPSET, ids ? "int64 token ids " : "",
           dims + 1, (long long)params, bytes);
    if (b->info.norm_mean && o->with_normalize)
        cli_log(o, "graft export: the normalisation the file records (graft.normalize) is the "
                "graph's first nodes: the ONNX model takes inputs before normalisation\n");
    else if (b->info.norm_mean)
        cli_log(o, "graft export: the ONNX model takes inputs already normalised as the file "
                "records (graft.normalize), as graft run does; --with-normalize puts the "
                "normalisation into the graph\n");
}

int cmd_export(cli_opts *o) {
    int rc = check_args(o);
    if (rc != CLI_CONTINUE) return rc;
    gf_ctx *ctx = cli_context(o);
    if (!ctx) return CLI_FAILED;
    gf_bundle *b = gf_bundle_load(ctx, o->args[0], NULL);
    if (!b) {
        rc = cli_fail_ctx(o->cmd, ctx);
        gf_ctx_free(ctx);
        return rc;
    }
    gf_onnx_export_options eo = gf_onnx_export_default_options();
    if (o->with_normalize) {
        eo.norm_channels = b->info.norm_channels;
        eo.norm_mean = b->info.norm_mean;
        eo.norm_std = b->info.norm_std;
    }
    const int ndim = o->input_ndim ? o->input_ndim : b->info.in_ndim;
    const int64_t *shape = o->input_ndim ? o->input_shape : b->info.in_shape;
    if (ndim <= 0)
        rc = cli_fail(o->cmd, "%s records no sample shape (graft.input): give --input-shape",
                      o->args[0]);
    else if (o->with_normalize && !b->info.norm_mean)
        rc = cli_fail(o->cmd, "%s records no normalisation (graft.normalize) for "
                      "--with-normalize to put into the graph", o->args[0]);
    else if (gf_onnx_export(ctx, b->model, ndim, shape, o->args[1], &eo) != GF_OK)
        rc = cli_fail_ctx(o->cmd, ctx);
    else {
        report(o, b, ndim, shape);
        rc = CLI_OK;
    }
    gf_bundle_free(b);
    gf_ctx_free(ctx);
    return rc;
}
