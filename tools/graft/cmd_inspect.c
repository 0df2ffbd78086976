/* graft inspect FILE.safetensors|SPEC.json [--json]: names, dtypes, shapes, sizes, metadata and
 * the parameter total of a weights file, with what its metadata says about the model as the
 * library reads it (a bundle); or the layers of a model spec with their output shapes and
 * parameter counts. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdbool.h>
#include <string.h>

#include "graft/spec.h"

/* BatchNorm's running statistics and step count are buffers, not parameters (PyTorch's
 * state_dict names; graft writes the same). */
static bool is_buffer(const char *name) {
    static const char *const suffixes[] = {"running_mean", "running_var", "num_batches_tracked"};
    const char *last = strrchr(name, '.');
    last = last ? last + 1 : name;
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++)
        if (strcmp(last, suffixes[i]) == 0) return true;
    return false;
}

/* What a weights file says about its model, read as the library reads a bundle: one summary
 * for people, or an object for --json (null when the file describes no model). */
static void print_bundle(gf_ctx *ctx, const gf_st_file *f) {
    gf_bundle_info m;
    if (gf_bundle_info_read(ctx, f, &m) != GF_OK) {
        printf("\nbundle    not usable: %s\n", gf_ctx_error(ctx));
        gf_ctx_clear_error(ctx);
        return;
    }
    if (m.model || m.in_ndim) {
        char sh[96] = "(not recorded)", hid[64] = "";
        if (m.in_ndim) gf_dims_str(m.in_ndim, m.in_shape, sh, sizeof sh);
        for (int i = 0, at = 0; i < 4 && m.hidden[i]; i++)
            at += snprintf(hid + at, sizeof hid - (size_t)at, "%s%d", i ? ", " : " (hidden ",
                           m.hidden[i]);
        if (m.hidden[0]) strcat(hid, ")");
        printf("\nbundle    %s%s for samples %s, %d classes", m.model ? m.model : "(no model)",
               hid, sh, m.n_classes);
        for (int k = 0; k < m.n_classes && k < 10; k++)
            printf("%s%s", k ? ", " : ": ", m.class_names[k]);
        printf("%s\n", m.n_classes > 10 ? ", ..." : "");
        if (m.has_audio)
            printf("          audio read at %d Hz, %g s clips, %d mel bands (n_fft %d, hop %d)",
                   m.audio.sample_rate, m.audio.clip_seconds, m.audio.mel.n_mels,
                   m.audio.mel.n_fft, m.audio.mel.hop_length);
        else if (m.image_channels)
            printf("          images read as %d channel%s, %dx%d", m.image_channels,
                   m.image_channels == 1 ? "" : "s", m.image_h, m.image_w);
        else if (m.n_features) {
            printf("          CSV columns taken by name: ");
            for (int j = 0; j < m.n_features && j < 10; j++)
                printf("%s%s", j ? ", " : "", m.feature_names[j]);
            printf("%s", m.n_features > 10 ? ", ..." : "");
        }
        else
            printf("          inputs as they are");
        printf("%s\n", m.norm_channels ? "; normalised as in training" : "");
        for (int i = 0; i < m.n_categorical; i++)
            printf("          text column %s one-hot encoded: %lld categories\n",
                   m.categorical[i].column, (long long)m.categorical[i].n);
        if (m.is_delta) printf("          a delta against %s\n", m.base ? m.base : "(its base)");
    }
    gf_bundle_info_free(&m);
}

static cJSON *bundle_json(gf_ctx *ctx, const gf_st_file *f) {
    gf_bundle_info m;
    if (gf_bundle_info_read(ctx, f, &m) != GF_OK) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "error", gf_ctx_error(ctx));
        gf_ctx_clear_error(ctx);
        return e;
    }
    if (!m.model && !m.in_ndim) return cJSON_CreateNull();
    cJSON *b = cJSON_CreateObject();
    if (m.model) cJSON_AddStringToObject(b, "model", m.model);
    else cJSON_AddNullToObject(b, "model");
    cJSON_AddItemToObject(b, "input", cli_json_shape(m.in_ndim, m.in_shape));
    cJSON_AddItemToObject(b, "classes", cli_json_names(m.n_classes, (const char *const *)m.class_names));
    cJSON_AddBoolToObject(b, "normalized", m.norm_channels > 0);
    cJSON_AddBoolToObject(b, "delta", m.is_delta);
    gf_bundle_info_free(&m);
    return b;
}

static void print_table(gf_ctx *ctx, const gf_st_file *f) {
    int64_t total = 0, buffers = 0;
    uint64_t bytes = 0;
    size_t w = 4;
    for (int i = 0; i < gf_st_count(f); i++) {
        size_t n = strlen(gf_st_get(f, i)->name);
        if (n > w) w = n;
    }
    if (w > 60) w = 60;
    printf("%-*s  %-5s  %-20s  %12s\n", (int)w, "name", "dtype", "shape", "bytes");
    for (int i = 0; i < gf_st_count(f); i++) {
        const gf_st_info *t = gf_st_get(f, i);
        char shape[96];
        gf_dims_str(t->ndim, t->shape, shape, sizeof shape);
        printf("%-*s  %-5s  %-20s  %12llu\n", (int)w, t->name, gf_st_dtype_name(t->dtype), shape,
               (unsigned long long)(t->end - t->begin));
        *(is_buffer(t->name) ? &buffers : &total) += t->numel;
        bytes += t->end - t->begin;
    }
    if (gf_st_metadata_count(f)) {
        printf("\nmetadata:\n");
        for (int i = 0; i < gf_st_metadata_count(f); i++)
            printf("  %s = %s\n", gf_st_metadata_key(f, i), gf_st_metadata_value(f, i));
    }
    print_bundle(ctx, f);
    printf("\n%d tensors, %lld parameters", gf_st_count(f), (long long)total);
    if (buffers) printf(", %lld buffer values (BatchNorm statistics)", (long long)buffers);
    printf(", %llu bytes of data\n", (unsigned long long)bytes);
}

static int print_json(gf_ctx *ctx, const gf_st_file *f) {
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "tensors");
    int64_t total = 0, buffers = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < gf_st_count(f); i++) {
        const gf_st_info *t = gf_st_get(f, i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "dtype", gf_st_dtype_name(t->dtype));
        cJSON_AddItemToObject(o, "shape", cli_json_shape(t->ndim, t->shape));
        cJSON_AddNumberToObject(o, "numel", (double)t->numel);
        cJSON_AddNumberToObject(o, "bytes", (double)(t->end - t->begin));
        cJSON_AddBoolToObject(o, "buffer", is_buffer(t->name));
        cJSON_AddItemToArray(arr, o);
        *(is_buffer(t->name) ? &buffers : &total) += t->numel;
        bytes += t->end - t->begin;
    }
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    for (int i = 0; i < gf_st_metadata_count(f); i++)
        cJSON_AddStringToObject(meta, gf_st_metadata_key(f, i), gf_st_metadata_value(f, i));
    cJSON_AddItemToObject(root, "bundle", bundle_json(ctx, f));
    cJSON_AddNumberToObject(root, "tensor_count", gf_st_count(f));
    cJSON_AddNumberToObject(root, "parameters", (double)total);
    cJSON_AddNumberToObject(root, "buffers", (double)buffers);
    cJSON_AddNumberToObject(root, "bytes", (double)bytes);
    return cli_json_print(root);
}

/* A model spec: build it (with its "input" shape when it has one) and list the layers. */
static int inspect_spec(gf_ctx *ctx, const cli_opts *o, const char *path) {
    gf_spec_summary *sum = NULL;
    gf_module *m = gf_spec_load(ctx, path, NULL, &sum);
    if (!m) {
        cli_fail(o->cmd, "%s", gf_ctx_error(ctx));
        if (strstr(gf_ctx_error(ctx), "input shape"))
            fprintf(stderr, "(add the sample shape to the spec's root, e.g. \"input\": [1, 28, 28])\n");
        return CLI_FAILED;
    }
    int64_t total = gf_module_param_count(m, false);
    int rc = CLI_OK;
    if (o->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "spec", path);
        cJSON_AddStringToObject(root, "type", gf_module_type(m));
        if (sum->in_ndim) cJSON_AddItemToObject(root, "input", cli_json_shape(sum->in_ndim, sum->in_shape));
        else cJSON_AddNullToObject(root, "input");
        if (sum->in_ndim) cJSON_AddItemToObject(root, "output", cli_json_shape(sum->out_ndim, sum->out_shape));
        else cJSON_AddNullToObject(root, "output");
        cJSON_AddNumberToObject(root, "parameters", (double)total);
        cJSON *ls = cJSON_AddArrayToObject(root, "layers");
        for (int i = 0; i < sum->n_layers; i++) {
            const gf_spec_layer *l = &sum->layers[i];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "path", l->path);
            cJSON_AddStringToObject(e, "type", l->type);
            cJSON_AddNumberToObject(e, "depth", l->depth);
            if (sum->in_ndim) cJSON_AddItemToObject(e, "output", cli_json_shape(l->out_ndim, l->out_shape));
            cJSON_AddNumberToObject(e, "parameters", (double)l->params);
            cJSON_AddItemToArray(ls, e);
        }
        rc = cli_json_print(root);
    } else {
        char sh[96];
        printf("%-34s  %-18s  %-18s  %10s\n", "layer", "type", "output", "parameters");
        for (int i = 0; i < sum->n_layers; i++) {
            const gf_spec_layer *l = &sum->layers[i];
            char name[160];
            snprintf(name, sizeof name, "%*s%s", 2 * l->depth, "", l->path[0] ? l->path : "(model)");
            if (sum->in_ndim) {
                gf_dims_str(l->out_ndim, l->out_shape, sh, sizeof sh);
            } else {
                snprintf(sh, sizeof sh, "?");
            }
            printf("%-34s  %-18s  %-18s  %10lld\n", name, l->type, sh, (long long)l->params);
        }
        if (sum->in_ndim) {
            char in[96];
            gf_dims_str(sum->in_ndim, sum->in_shape, in, sizeof in);
            gf_dims_str(sum->out_ndim, sum->out_shape, sh, sizeof sh);
            printf("\ninput %s -> output %s, %lld parameters\n", in, sh, (long long)total);
        } else {
            printf("\n%lld parameters (no \"input\" in the spec: shapes are checked when data is "
                   "given)\n", (long long)total);
        }
    }
    gf_spec_summary_free(sum);
    gf_module_free(m);
    return rc;
}

int cmd_inspect(cli_opts *o) {
    if (o->n_args == 0) return cli_usage_error(o->cmd, "no file given");
    const char *path = o->args[0];
    int rc = cli_check_input(o->cmd, "file", path);
    if (rc != CLI_CONTINUE) return rc;
    gf_ctx *ctx = cli_context(o);
    if (!ctx) return CLI_FAILED;
    size_t n = strlen(path);
    if (cli_is_tfjs(path)) {
        rc = cli_tfjs_inspect(ctx, o, path);
    } else if (o->cut || o->input_size) {
        rc = cli_usage_error(o->cmd, "--cut and --input-size apply to a TensorFlow.js model.json");
    } else if (n > 5 && strcmp(path + n - 5, ".json") == 0) {
        rc = inspect_spec(ctx, o, path);
    } else if (n > 5 && strcmp(path + n - 5, ".onnx") == 0) {
        rc = cli_inspect_onnx(o, ctx, path);
    } else {
        gf_st_file *f = gf_st_open(ctx, path);
        if (!f) rc = cli_fail(o->cmd, "%s", gf_ctx_error(ctx));
        else {
            rc = o->json ? print_json(ctx, f) : (print_table(ctx, f), CLI_OK);
            gf_st_close(f);
        }
    }
    gf_ctx_free(ctx);
    return rc;
}
