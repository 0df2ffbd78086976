/* TensorFlow.js layers models as graft modules: model.json read under the JSON budgets, the
 * manifest and the layer graph checked, shapes inferred within the limits, the shards read, and
 * a root module ("TFJSModel") whose forward runs the graph over the child modules. */
#define _POSIX_C_SOURCE 200809L
#include "import/tfjs_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest model.json read: MobileNetV2's is 0.15 MB; the JSON budgets bound the rest. */
#define TJ_JSON_MAX ((size_t)64 << 20)

gf_tfjs_options gf_tfjs_default_options(void) {
    gf_tfjs_options o;
    memset(&o, 0, sizeof o);
    return o;
}

void gf_tfjs_info_free(gf_tfjs_info *info) {
    if (!info) return;
    for (int i = 0; i < info->n_layers; i++) {
        gf_tfjs_layer *l = &info->layers[i];
        free(l->name);
        free(l->class_name);
        free(l->module);
        free(l->inputs);
    }
    free(info->layers);
    free(info->source);
    free(info->model_name);
    free(info->class_name);
    free(info->format);
    free(info->generated_by);
    free(info->converted_by);
    free(info->input_name);
    free(info->output_name);
    free(info);
}

static void graph_free(void *p) {
    tj_graph_free(p);
    free(p);
}

/* The file's per-example shape [H, W, C] as graft's [C, H, W]; other ranks as they are. */
static void to_graft(int ndim, const int64_t *file, int *gnd, int64_t *g) {
    *gnd = ndim;
    for (int d = 0; d < ndim; d++) g[d] = file[d];
    if (ndim == 3) {
        g[0] = file[2];
        g[1] = file[0];
        g[2] = file[1];
    }
}

static char *dup_or_empty(const cJSON *v) {
    return strdup(cJSON_IsString(v) ? v->valuestring : "");
}

/* "a, b" from a node's inbound names. */
static char *inputs_of(const tj_graph *g, const tj_node *nd) {
    size_t n = 1;
    for (int k = 0; k < nd->n_in; k++) n += strlen(g->nodes[nd->in[k]].name) + 2;
    char *s = malloc(n);
    if (!s) return NULL;
    s[0] = '\0';
    for (int k = 0; k < nd->n_in; k++) {
        if (k) strcat(s, ", ");
        strcat(s, g->nodes[nd->in[k]].name);
    }
    return s;
}

static gf_status fill_layers(gf_tfjs_info *in, const tj_graph *g) {
    if (!(in->layers = calloc((size_t)g->n, sizeof *in->layers))) return GF_ERR_NOMEM;
    in->n_layers = g->n;
    for (int i = 0; i < g->n; i++) {
        const tj_node *nd = &g->nodes[i];
        gf_tfjs_layer *l = &in->layers[i];
        l->name = strdup(nd->name);
        l->class_name = strdup(nd->cls);
        l->module = nd->module ? strdup(nd->module) : NULL;
        l->inputs = inputs_of(g, nd);
        l->kept = nd->keep;
        l->params = nd->keep ? nd->params : 0;
        if (nd->keep) to_graft(nd->out_ndim, nd->out, &l->out_ndim, l->out_shape);
        if (!l->name || !l->class_name || !l->inputs || (nd->module && !l->module))
            return GF_ERR_NOMEM;
    }
    return GF_OK;
}

/* The summary of what was imported. */
static gf_tfjs_info *make_info(gf_ctx *ctx, const cJSON *root, const tj_graph *g,
                               const tj_manifest *m, const gf_module *mod, const char *label) {
    gf_tfjs_info *in = calloc(1, sizeof *in);
    if (!in) goto oom;
    in->source = strdup(label);
    in->model_name = strdup(g->model_name);
    in->class_name = strdup(g->class_name);
    in->format = dup_or_empty(cJSON_GetObjectItemCaseSensitive(root, "format"));
    in->generated_by = dup_or_empty(cJSON_GetObjectItemCaseSensitive(root, "generatedBy"));
    in->converted_by = dup_or_empty(cJSON_GetObjectItemCaseSensitive(root, "convertedBy"));
    in->input_name = strdup(g->nodes[g->input].name);
    in->output_name = strdup(g->nodes[g->output].name);
    const tj_node *i0 = &g->nodes[g->input], *o = &g->nodes[g->output];
    to_graft(i0->out_ndim, i0->out, &in->in_ndim, in->in_shape);
    to_graft(o->out_ndim, o->out, &in->out_ndim, in->out_shape);
    in->n_weights = m->n;
    for (int i = 0; i < m->n; i++) {
        in->weights_used += m->w[i].used;
        in->weights_quantized += m->w[i].used && m->w[i].q != TJ_Q_NONE;
    }
    in->weight_bytes = m->total_bytes;
    in->params = gf_module_param_count(mod, false);
    if (!in->source || !in->model_name || !in->class_name || !in->format || !in->generated_by ||
        !in->converted_by || !in->input_name || !in->output_name || fill_layers(in, g) != GF_OK)
        goto oom;
    return in;
oom:
    gf_tfjs_info_free(in);
    gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
    return NULL;
}

/* Where the weights come from: a folder of shards, or bytes in memory. */
typedef struct tj_source {
    const char *label, *dir;
    const uint8_t *weights;
    size_t wlen;
} tj_source;

/* The topology's model_config (converters nest it; TensorFlow.js's own save does not). */
static const cJSON *model_config(gf_ctx *ctx, const cJSON *root, const char *label) {
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (cJSON_IsString(fmt) && strcmp(fmt->valuestring, "layers-model") != 0) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: format \"%.40s\": only TensorFlow.js layers "
                         "models (\"layers-model\") are supported%s", label, fmt->valuestring,
                         strcmp(fmt->valuestring, "graph-model") == 0
                             ? " (a graph model holds a TensorFlow graph, not Keras layers)" : "");
        return NULL;
    }
    const cJSON *topo = cJSON_GetObjectItemCaseSensitive(root, "modelTopology");
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(topo, "model_config");
    if (!cJSON_IsObject(topo) || (mc && !cJSON_IsObject(mc))) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: expected an object \"modelTopology\" (with "
                         "\"model_config\" or \"class_name\" and \"config\")", label);
        return NULL;
    }
    return mc ? mc : topo;
}

/* The graph of the parsed file, selected, with the input size asked for and shapes inferred. */
static gf_status read_graph(gf_ctx *ctx, const cJSON *root, const gf_tfjs_options *o,
                            const char *label, tj_graph *g, tj_manifest *m) {
    const cJSON *mc = model_config(ctx, root, label);
    if (!mc || tj_manifest_read(ctx, cJSON_GetObjectItemCaseSensitive(root, "weightsManifest"),
                                label, m) != GF_OK ||
        tj_graph_read(ctx, mc, label, g) != GF_OK ||
        tj_graph_select(ctx, g, mc, o->cut, label) != GF_OK)
        return gf_ctx_status(ctx);
    tj_node *in = &g->nodes[g->input];
    if (o->in_h > 0 && in->out_ndim == 3) in->out[0] = o->in_h;
    if (o->in_w > 0 && in->out_ndim == 3) in->out[1] = o->in_w;
    return tj_infer_shapes(ctx, g, m, label);
}

/* The module of a parsed file, its weights read from src. */
static gf_module *build(gf_ctx *ctx, const cJSON *root, const gf_tfjs_options *o,
                        const tj_source *src, gf_tfjs_info **info) {
    tj_manifest m;
    tj_graph *g = calloc(1, sizeof *g);
    memset(&m, 0, sizeof m);
    if (!g) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", src->label);
        return NULL;
    }
    gf_module *mod = NULL;
    uint8_t *owned = NULL;
    const uint8_t *data = src->weights;
    if (read_graph(ctx, root, o, src->label, g, &m) != GF_OK) goto fail;
    if (src->dir && !(data = owned = tj_manifest_read_shards(ctx, &m, src->dir, src->label)))
        goto fail;
    if (!src->dir && (int64_t)src->wlen < m.total_bytes) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: the weights hold %zu bytes, the manifest's "
                         "weights need %lld", src->label, src->wlen, (long long)m.total_bytes);
        goto fail;
    }
    mod = gf_nn_container(ctx, "TFJSModel", tj_forward, g, graph_free);
    g = NULL; /* the module's now, even on failure */
    if (!mod) goto fail;
    gf_module_set_reentrant(mod, true);
    tj_graph *gm = gf_module_user(mod);
    if (tj_build_modules(ctx, mod, gm, &m, data, src->label) != GF_OK) goto fail;
    gf_module_train(mod, false);
    if (info && !(*info = make_info(ctx, root, gm, &m, mod, src->label))) goto fail;
    free(owned);
    tj_manifest_free(&m);
    return mod;
fail:
    gf_module_free(mod);
    if (g) graph_free(g);
    free(owned);
    tj_manifest_free(&m);
    return NULL;
}

static gf_module *import(gf_ctx *ctx, const char *json, size_t len, const gf_tfjs_options *opt,
                         const tj_source *src, gf_tfjs_info **info) {
    if (info) *info = NULL;
    gf_tfjs_options o = opt ? *opt : gf_tfjs_default_options();
    if (!json || (!src->dir && !src->weights && src->wlen)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: no model text or weights given", src->label);
        return NULL;
    }
    if (gf_json_check(ctx, json, len, src->label, "the model.json") != GF_OK) return NULL;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: not a JSON object (a TensorFlow.js model.json "
                         "holds {\"modelTopology\": ..., \"weightsManifest\": [...]})", src->label);
        cJSON_Delete(root);
        return NULL;
    }
    gf_module *m = build(ctx, root, &o, src, info);
    cJSON_Delete(root);
    return m;
}

gf_module *gf_tfjs_parse(gf_ctx *ctx, const char *json, size_t len, const uint8_t *weights,
                         size_t wlen, const char *label, const gf_tfjs_options *opt,
                         gf_tfjs_info **info) {
    tj_source src = {label ? label : "model.json", NULL, weights, wlen};
    return import(ctx, json, len, opt, &src, info);
}

/* The whole file, at most TJ_JSON_MAX bytes. */
static char *read_text(gf_ctx *ctx, const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 1 << 16;
    if (!f) {
        gf_ctx_set_error(ctx, GF_ERR_IO, "%s: cannot read it: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        char *nb = n + 1 >= cap || !buf ? realloc(buf, cap *= 2) : buf;
        if (!nb) {
            gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        buf = nb;
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n > TJ_JSON_MAX) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: a model.json may be at most %zu MiB", path,
                             TJ_JSON_MAX >> 20);
            break;
        }
        if (got == 0) {
            if (ferror(f)) gf_ctx_set_error(ctx, GF_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (gf_ctx_status(ctx) != GF_OK) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

gf_module *gf_tfjs_load(gf_ctx *ctx, const char *path, const gf_tfjs_options *opt,
                        gf_tfjs_info **info) {
    if (info) *info = NULL;
    if (!path) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_tfjs_load: no path given");
        return NULL;
    }
    size_t len = 0;
    char *text = read_text(ctx, path, &len);
    char *dir = strdup(path);
    if (!text || !dir) {
        if (text) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
        free(text);
        free(dir);
        return NULL;
    }
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = '\0';
    else strcpy(dir, ".");
    tj_source src = {path, dir, NULL, 0};
    gf_module *m = import(ctx, text, len, opt, &src, info);
    free(text);
    free(dir);
    return m;
}

bool gf_tfjs_is_model_file(const char *path) {
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) return false;
    const size_t cap = (size_t)1 << 16;
    char *buf = malloc(cap + 1);
    size_t n = buf ? fread(buf, 1, cap, f) : 0;
    fclose(f);
    if (!buf) return false;
    buf[n] = '\0';
    size_t i = 0;
    while (i < n && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')) i++;
    bool yes = i < n && buf[i] == '{' && strstr(buf + i, "\"modelTopology\"") != NULL;
    free(buf);
    return yes;
}
