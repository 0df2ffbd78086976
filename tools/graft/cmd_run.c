/* graft run MODEL --input NAME=FILE ... [--out DIR] [--cut NAME]: an ONNX model (or a model
 * graft trained, from its .safetensors file) run on tensors from .npy (or TensorProto .pb)
 * files, each output written as DIR/<name>.npy. And graft inspect MODEL.onnx: what the file
 * takes and gives, the ops it uses, its parameters and where it can be cut. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* "[batch, 3, 224, 224]" from declared dimensions (symbolic ones by name, unknown as ?). */
static void dims_text(const gf_onnx_value_info *v, char *buf, size_t cap) {
    if (v->ndim < 0) {
        snprintf(buf, cap, "(rank unknown)");
        return;
    }
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < v->ndim && at < cap; d++) {
        int w = v->dims[d] >= 0
            ? snprintf(buf + at, cap - at, "%s%lld", d ? ", " : "", (long long)v->dims[d])
            : snprintf(buf + at, cap - at, "%s%s", d ? ", " : "",
                       v->dim_names[d] ? v->dim_names[d] : "?");
        at += w > 0 ? (size_t)w : 0;
    }
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

static cJSON *value_json(const gf_onnx_value_info *v) {
    cJSON *o = cJSON_CreateObject(), *dims = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "name", v->name);
    cJSON_AddStringToObject(o, "dtype", v->elem_type ? gf_onnx_type_name(v->elem_type) : "?");
    for (int d = 0; d < v->ndim; d++)
        cJSON_AddItemToArray(dims, v->dims[d] >= 0 ? cJSON_CreateNumber((double)v->dims[d])
                                   : v->dim_names[d] ? cJSON_CreateString(v->dim_names[d])
                                                     : cJSON_CreateNull());
    if (v->ndim < 0) {
        cJSON_Delete(dims);
        cJSON_AddNullToObject(o, "shape");
    } else {
        cJSON_AddItemToObject(o, "shape", dims);
    }
    return o;
}

/* ---- graft inspect MODEL.onnx ---------------------------------------------------------------- */

static int inspect_json(const gf_onnx_info *info, const char *path) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", path);
    cJSON_AddStringToObject(root, "format", "onnx");
    cJSON_AddNumberToObject(root, "ir_version", (double)info->ir_version);
    cJSON_AddNumberToObject(root, "opset", (double)info->opset);
    cJSON_AddStringToObject(root, "producer", info->producer);
    cJSON *ins = cJSON_AddArrayToObject(root, "inputs"),
          *outs = cJSON_AddArrayToObject(root, "outputs");
    for (int i = 0; i < info->n_inputs; i++)
        cJSON_AddItemToArray(ins, value_json(&info->inputs[i]));
    for (int i = 0; i < info->n_outputs; i++)
        cJSON_AddItemToArray(outs, value_json(&info->outputs[i]));
    cJSON *ops = cJSON_AddArrayToObject(root, "ops");
    for (int i = 0; i < info->n_ops; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "op", info->ops[i].op);
        cJSON_AddStringToObject(o, "domain", info->ops[i].domain);
        cJSON_AddNumberToObject(o, "count", info->ops[i].count);
        cJSON_AddBoolToObject(o, "supported", info->ops[i].supported);
        cJSON_AddItemToArray(ops, o);
    }
    cJSON_AddNumberToObject(root, "nodes", info->n_nodes);
    cJSON_AddItemToObject(
        root, "unsupported",
        cli_json_names(info->n_unsupported, (const char *const *)info->unsupported));
    cJSON_AddNumberToObject(root, "parameters", (double)info->n_params);
    cJSON_AddNumberToObject(root, "parameter_tensors", info->n_param_tensors);
    cJSON_AddNumberToObject(root, "initializers", info->n_initializers);
    cJSON *cuts = cJSON_AddArrayToObject(root, "cut_points");
    for (int i = 0; i < info->n_cuts; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "tensor", info->cuts[i].tensor);
        cJSON_AddStringToObject(c, "node", info->cuts[i].node);
        cJSON_AddStringToObject(c, "op", info->cuts[i].op);
        cJSON_AddItemToArray(cuts, c);
    }
    return cli_json_print(root);
}

static void print_values(const char *title, int n, const gf_onnx_value_info *v) {
    printf("%s:\n", title);
    for (int i = 0; i < n; i++) {
        char dims[256];
        dims_text(&v[i], dims, sizeof dims);
        printf("  %-32s %-8s %s\n", v[i].name,
               v[i].elem_type ? gf_onnx_type_name(v[i].elem_type) : "?", dims);
    }
}

int cli_inspect_onnx(const cli_opts *o, gf_ctx *ctx, const char *path) {
    gf_onnx_info *info = gf_onnx_inspect(ctx, path);
    if (!info) return cli_fail_ctx(o->cmd, ctx);
    int rc = CLI_OK;
    if (o->json) {
        rc = inspect_json(info, path);
    } else {
        printf("%s: ONNX IR version %lld, opset %lld%s%s\n\n", path, (long long)info->ir_version,
               (long long)info->opset, info->producer[0] ? ", made by " : "", info->producer);
        print_values("inputs", info->n_inputs, info->inputs);
        print_values("outputs", info->n_outputs, info->outputs);
        printf("\nops (%d nodes):\n", info->n_nodes);
        for (int i = 0; i < info->n_ops; i++)
            printf("  %-32s %5d%s%s%s\n", info->ops[i].op, info->ops[i].count,
                   info->ops[i].domain[0] ? "  domain " : "", info->ops[i].domain,
                   info->ops[i].supported ? "" : "  (not supported)");
        printf("\nparameters: %lld in %d tensors (%d initializers in all)\n",
               (long long)info->n_params, info->n_param_tensors, info->n_initializers);
        if (info->n_unsupported) {
            printf("\ngraft cannot run %d node%s:\n", info->n_unsupported,
                   info->n_unsupported == 1 ? "" : "s");
            for (int i = 0; i < info->n_unsupported; i++) printf("  %s\n", info->unsupported[i]);
        } else {
            printf("graft runs every node\n");
        }
        printf("\ncut points (graft run --cut NAME; the tensor, or the node producing it):\n");
        for (int i = 0; i < info->n_cuts; i++)
            printf("  %-40s %-20s %s\n", info->cuts[i].tensor, info->cuts[i].op,
                   info->cuts[i].node);
    }
    gf_onnx_info_free(info);
    return rc;
}

/* ---- graft run ------------------------------------------------------------------------------- */

typedef struct run_model {
    gf_module *m;
    gf_bundle *b;
    int n_in, n_out;
    const char *in_name[CLI_MAX_LIST], *out_name[CLI_MAX_LIST];
} run_model;

static int load_model(const cli_opts *o, gf_ctx *ctx, const char *path, run_model *rm) {
    memset(rm, 0, sizeof *rm);
    if (ends_with(path, ".safetensors")) {
        if (o->cut) return cli_usage_error(o->cmd, "--cut applies to ONNX models");
        if (!(rm->b = gf_bundle_load(ctx, path, NULL))) return cli_fail_ctx(o->cmd, ctx);
        rm->m = rm->b->model;
        gf_module_train(rm->m, false);
        rm->n_in = rm->n_out = 1;
        rm->in_name[0] = "input";
        rm->out_name[0] = "output";
        return CLI_CONTINUE;
    }
    if (!ends_with(path, ".onnx"))
        return cli_usage_error(o->cmd, "'%s' is not an .onnx or .safetensors model", path);
    gf_onnx_options opt = gf_onnx_default_options();
    opt.cut = o->cut;
    if (!(rm->m = gf_onnx_load(ctx, path, &opt))) return cli_fail_ctx(o->cmd, ctx);
    rm->n_in = gf_onnx_num_inputs(rm->m);
    rm->n_out = gf_onnx_num_outputs(rm->m);
    if (rm->n_in > CLI_MAX_LIST || rm->n_out > CLI_MAX_LIST)
        return cli_fail(o->cmd,
                        "the model has %d inputs and %d outputs; graft run takes at most %d",
                        rm->n_in, rm->n_out, CLI_MAX_LIST);
    for (int i = 0; i < rm->n_in; i++) rm->in_name[i] = gf_onnx_input(rm->m, i)->name;
    for (int i = 0; i < rm->n_out; i++) rm->out_name[i] = gf_onnx_output(rm->m, i)->name;
    return CLI_CONTINUE;
}

static void free_model(run_model *rm) {
    if (rm->b) gf_bundle_free(rm->b);
    else gf_module_free(rm->m);
}

static gf_tensor *read_tensor(gf_ctx *ctx, const char *path) {
    if (ends_with(path, ".pb")) return gf_onnx_read_tensor(ctx, path, NULL, NULL);
    return gf_npy_read(ctx, path);
}

/* Matches each --input to a model input ("NAME=FILE", or FILE alone for a model of one input)
 * and reads it. */
static int read_inputs(const cli_opts *o, gf_ctx *ctx, const run_model *rm, gf_tensor **in) {
    char names[512] = "";
    for (int i = 0, at = 0; i < rm->n_in && at < (int)sizeof names - 1; i++)
        at +=
            snprintf(names + at, sizeof names - (size_t)at, "%s%s", i ? ", " : "", rm->in_name[i]);
    for (int k = 0; k < o->n_input; k++) {
        const char *spec = o->input[k], *eq = strchr(spec, '='), *file = spec;
        int slot = -1;
        for (int i = 0; eq && i < rm->n_in; i++)
            if (strlen(rm->in_name[i]) == (size_t)(eq - spec) &&
                !strncmp(spec, rm->in_name[i], (size_t)(eq - spec)))
                slot = i, file = eq + 1;
        /* a model of one input takes a bare file name (which may hold '=') */
        if (slot < 0 && rm->n_in == 1 && (!eq || cli_is_file(spec))) slot = 0;
        if (slot < 0 && rm->n_in == 1)
            return cli_usage_error(o->cmd,
                                   "--input %s: '%.*s' is not the model's input (it takes %s)",
                                   spec, (int)(eq - spec), spec, names);
        if (slot < 0)
            return cli_usage_error(o->cmd,
                                   "--input %s: give NAME=FILE with NAME one of the model's "
                                   "inputs: %s",
                                   spec, names);
        if (in[slot])
            return cli_usage_error(o->cmd, "--input: '%s' is given twice", rm->in_name[slot]);
        int rc = cli_check_input(o->cmd, "--input", file);
        if (rc != CLI_CONTINUE) return rc;
        if (!(in[slot] = read_tensor(ctx, file))) return cli_fail_ctx(o->cmd, ctx);
    }
    for (int i = 0; i < rm->n_in; i++)
        if (!in[i])
            return cli_usage_error(o->cmd, "no --input for '%s' (the model takes %s)",
                                   rm->in_name[i], names);
    return CLI_CONTINUE;
}

/* graft's own models take float32, a text model its token ids as float32: an int64 input (the
 * token ids the ONNX export of a text model takes) is converted, exactly below 2^24. The int64
 * tensor is freed; the float32 one lives in the context's arena. */
static int ids_as_float(const cli_opts *o, gf_ctx *ctx, gf_tensor **in) {
    gf_tensor *t = *in;
    if (t->dtype != GF_I64) return CLI_CONTINUE;
    gf_tensor *f = gf_empty(ctx, GF_F32, t->ndim, t->shape);
    if (!f) return cli_fail_ctx(o->cmd, ctx);
    for (int64_t i = 0; i < t->numel; i++) gf_f32(f)[i] = (float)gf_get_i64(t, i);
    gf_tensor_free(t);
    *in = f;
    return CLI_CONTINUE;
}

/* An output name as a file name: letters, digits, '.', '_', '-' kept, the rest '_'. */
static void file_name(const char *name, char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < cap; p++)
        out[n++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'
            ? *p
            : '_';
    out[n] = '\0';
    if (!n || !strcmp(out, ".") || !strcmp(out, "..")) snprintf(out, cap, "output");
}

static int write_outputs(const cli_opts *o, gf_ctx *ctx, const run_model *rm, gf_tensor **out,
                         char files[][512]) {
    struct stat st;
    if (stat(o->out, &st) != 0 && mkdir(o->out, 0777) != 0)
        return cli_fail(o->cmd, "--out %s: cannot make the folder: %s", o->out, strerror(errno));
    char dir[384];
    snprintf(dir, sizeof dir, "%s", o->out);
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--) dir[n - 1] = '\0';
    for (int i = 0; i < rm->n_out; i++) {
        char base[100];
        file_name(rm->out_name[i], base, sizeof base);
        snprintf(files[i], 512, "%s/%s.npy", dir, base);
        for (int j = 0, k = 1; j < i; j++) /* two names that map to one file: number them */
            if (!strcmp(files[i], files[j]))
                snprintf(files[i], 512, "%s/%s_%d.npy", dir, base, k++), j = -1;
        if (gf_npy_write(ctx, files[i], out[i]) != GF_OK) return cli_fail_ctx(o->cmd, ctx);
    }
    return CLI_CONTINUE;
}

static void print_outputs(const cli_opts *o, const run_model *rm, gf_tensor **out,
                          char files[][512]) {
    if (o->json) {
        cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "outputs");
        cJSON_AddStringToObject(root, "model", o->args[0]);
        for (int i = 0; i < rm->n_out; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", rm->out_name[i]);
            cJSON_AddStringToObject(e, "dtype", out[i]->dtype == GF_F32 ? "float32" : "int64");
            cJSON_AddItemToObject(e, "shape", cli_json_shape(out[i]->ndim, out[i]->shape));
            if (o->out) cJSON_AddStringToObject(e, "file", files[i]);
            else cJSON_AddNullToObject(e, "file");
            cJSON *vals = cJSON_AddArrayToObject(e, "first_values");
            for (int64_t k = 0; k < out[i]->numel && k < 8; k++)
                cJSON_AddItemToArray(vals,
                                     out[i]->dtype == GF_F32
                                         ? cli_json_num(gf_get_f32(out[i], k))
                                         : cJSON_CreateNumber((double)gf_get_i64(out[i], k)));
            cJSON_AddItemToArray(arr, e);
        }
        cli_json_print(root);
        return;
    }
    for (int i = 0; i < rm->n_out; i++) {
        char sh[96];
        gf_shape_str(out[i], sh, sizeof sh);
        printf("%-24s %-7s %-20s", rm->out_name[i], out[i]->dtype == GF_F32 ? "float32" : "int64",
               sh);
        if (o->out) printf(" -> %s", files[i]);
        else
            for (int64_t k = 0; k < out[i]->numel && k < 6; k++)
                if (out[i]->dtype == GF_F32)
                    printf("%s%.6g", k ? " " : " ", (double)gf_get_f32(out[i], k));
                else printf("%s%lld", k ? " " : " ", (long long)gf_get_i64(out[i], k));
        printf("%s\n", !o->out && out[i]->numel > 6 ? " ..." : "");
    }
}

int cmd_run(cli_opts *o) {
    if (o->n_args == 0) return cli_usage_error(o->cmd, "no model given");
    const char *path = o->args[0];
    int rc = cli_check_input(o->cmd, "model", path);
    if (rc != CLI_CONTINUE) return rc;
    if (o->n_input == 0) return cli_usage_error(o->cmd, "no --input given");
    if (o->out && (rc = cli_check_output_dir(o->cmd, "--out", o->out, NULL)) != CLI_CONTINUE)
        return rc;
    gf_ctx *ctx = cli_context(o);
    if (!ctx) return CLI_FAILED;
    run_model rm;
    gf_tensor *in[CLI_MAX_LIST] = {NULL}, *out[CLI_MAX_LIST] = {NULL};
    static char files[CLI_MAX_LIST][512];
    rc = load_model(o, ctx, path, &rm);
    if (rc == CLI_CONTINUE) rc = read_inputs(o, ctx, &rm, in);
    if (rc == CLI_CONTINUE && rm.b) rc = ids_as_float(o, ctx, &in[0]);
    if (rc == CLI_CONTINUE) {
        gf_ctx_set_grad_enabled(ctx, false);
        int n = rm.b ? ((out[0] = gf_module_forward(ctx, rm.m, in[0])) ? 1 : -1)
                     : gf_onnx_run(ctx, rm.m, rm.n_in, in, out, CLI_MAX_LIST);
        if (n != rm.n_out) rc = cli_fail_ctx(o->cmd, ctx);
    }
    if (rc == CLI_CONTINUE && o->out) rc = write_outputs(o, ctx, &rm, out, files);
    if (rc == CLI_CONTINUE) {
        print_outputs(o, &rm, out, files);
        rc = CLI_OK;
    }
    for (int i = 0; i < CLI_MAX_LIST; i++) gf_tensor_free(in[i]);
    if (rm.m) free_model(&rm);
    gf_ctx_free(ctx);
    return rc;
}
