/* The layer graph of a TensorFlow.js layers model: model_config's layers with their inbound
 * nodes (Functional / Model) or in sequence (Sequential), checked to run in the file's order,
 * and the part an output (the model's, or a cut) depends on. */
#define _POSIX_C_SOURCE 200809L
#include "import/tfjs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gf_status tj_layer_error(gf_ctx *ctx, gf_status s, const char *label, const tj_node *nd,
                         const char *fmt, ...) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gf_ctx_set_error(ctx, s, "%s: layer %s (%s): %s", label, nd->name, nd->cls, msg);
}

void tj_graph_free(tj_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n; i++) {
        free(g->nodes[i].name);
        free(g->nodes[i].cls);
        free(g->nodes[i].module);
        free(g->nodes[i].in);
    }
    free(g->nodes);
    free(g->order);
    free(g->model_name);
    free(g->class_name);
    memset(g, 0, sizeof *g);
}

static const tj_graph *sort_g;
static int by_name(const void *a, const void *b) {
    return strcmp(sort_g->nodes[*(const int *)a].name, sort_g->nodes[*(const int *)b].name);
}

int tj_graph_find(const tj_graph *g, const char *name) {
    int lo = 0, hi = g->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(g->nodes[g->order[mid]].name, name);
        if (c == 0) return g->order[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* Name, class and settings of one layer object. */
static gf_status read_layer(gf_ctx *ctx, const cJSON *l, int i, tj_node *nd, const char *label) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(l, "name");
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(l, "class_name");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(l, "config");
    if (!cJSON_IsString(name) && cJSON_IsObject(cfg))
        name = cJSON_GetObjectItemCaseSensitive(cfg, "name"); /* Sequential layers name it there */
    if (!cJSON_IsObject(l) || !cJSON_IsString(name) || !name->valuestring[0] ||
        strlen(name->valuestring) > TJ_NAME_MAX || !cJSON_IsString(cls) || !cJSON_IsObject(cfg))
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: layers[%d]: expected an object with "
                                "\"class_name\" (a string), \"config\" (an object) and a name of 1 "
                                "to %d bytes", label, i, TJ_NAME_MAX);
    if (!(nd->name = strdup(name->valuestring)) || !(nd->cls = strdup(cls->valuestring)))
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
    return tj_layer_settings(ctx, nd, cfg, label);
}

/* [name, node_index, tensor_index, kwargs] of one inbound tensor: the node index of name. */
static int inbound_ref(gf_ctx *ctx, const tj_graph *g, int i, const cJSON *ref, const char *label) {
    const tj_node *nd = &g->nodes[i];
    const cJSON *nm = cJSON_GetArrayItem(ref, 0), *ni = cJSON_GetArrayItem(ref, 1),
                *ti = cJSON_GetArrayItem(ref, 2);
    if (!cJSON_IsArray(ref) || !cJSON_IsString(nm)) {
        tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "inbound_nodes: expected [layer name, node "
                       "index, tensor index, kwargs] (Keras 2's format, as TensorFlow.js writes)");
        return -1;
    }
    if ((ni && (!cJSON_IsNumber(ni) || ni->valuedouble != 0)) ||
        (ti && (!cJSON_IsNumber(ti) || ti->valuedouble != 0))) {
        tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "reads output %g of call %g of layer "
                       "%.*s; only single-output layers called once are supported",
                       cJSON_IsNumber(ti) ? ti->valuedouble : -1.0,
                       cJSON_IsNumber(ni) ? ni->valuedouble : -1.0, TJ_NAME_MAX, nm->valuestring);
        return -1;
    }
    int j = tj_graph_find(g, nm->valuestring);
    if (j < 0)
        tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "reads layer \"%.*s\", which the model does "
                       "not have", TJ_NAME_MAX, nm->valuestring);
    else if (j >= i)
        tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "reads layer %s, which the file lists %s",
                       nm->valuestring, j == i ? "as itself" : "after it");
    return j < 0 || j >= i ? -1 : j;
}

/* The inbound edges of layer i from its inbound_nodes (one call). */
static gf_status read_inbound(gf_ctx *ctx, tj_graph *g, int i, const cJSON *l, const char *label) {
    tj_node *nd = &g->nodes[i];
    const cJSON *ib = cJSON_GetObjectItemCaseSensitive(l, "inbound_nodes");
    int calls = cJSON_IsArray(ib) ? cJSON_GetArraySize(ib) : -1;
    if (nd->kind == TJ_INPUT) return GF_OK;
    if (calls != 1)
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "inbound_nodes: expected one call "
                              "of the layer, found %d%s", calls,
                              calls > 1 ? " (shared layers are not supported)" : "");
    const cJSON *call = cJSON_GetArrayItem(ib, 0);
    if (cJSON_IsObject(call))
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "inbound_nodes in Keras 3's format "
                              "are not supported (TensorFlow.js writes Keras 2's)");
    int n = cJSON_IsArray(call) ? cJSON_GetArraySize(call) : 0;
    if (n < 1)
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "inbound_nodes: a call without "
                              "inputs");
    if (!(nd->in = calloc((size_t)n, sizeof *nd->in)))
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
    for (const cJSON *ref = call->child; ref; ref = ref->next) {
        int j = inbound_ref(ctx, g, i, ref, label);
        if (j < 0) return gf_ctx_status(ctx);
        nd->in[nd->n_in++] = j;
    }
    return GF_OK;
}

/* Sequential: an InputLayer first, made from the first layer's batch_input_shape when the file
 * has none (Keras names it "<first layer>_input"), then each layer reads the one before. */
static gf_status chain_sequential(gf_ctx *ctx, tj_graph *g, const cJSON *first_cfg,
                                  const char *label) {
    if (g->n < 2 || g->nodes[1].kind != TJ_INPUT) {
        tj_node *in = &g->nodes[0];
        char nm[TJ_NAME_MAX + 8];
        snprintf(nm, sizeof nm, "%s_input", g->n > 1 ? g->nodes[1].name : "sequential");
        if (!(in->name = strdup(nm)) || !(in->cls = strdup("InputLayer")))
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
        if (tj_layer_settings(ctx, in, first_cfg, label) != GF_OK) return gf_ctx_status(ctx);
    } else { /* the file's own InputLayer: drop the empty slot */
        memmove(&g->nodes[0], &g->nodes[1], sizeof *g->nodes * (size_t)(g->n - 1));
        memset(&g->nodes[--g->n], 0, sizeof *g->nodes);
    }
    for (int i = 1; i < g->n; i++) {
        tj_node *nd = &g->nodes[i];
        if (nd->kind == TJ_INPUT)
            return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "an InputLayer inside a "
                                  "Sequential model");
        if (!(nd->in = malloc(sizeof *nd->in)))
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
        nd->in[0] = i - 1;
        nd->n_in = 1;
    }
    g->input = 0;
    return GF_OK;
}

/* The one input layer named by config.input_layers. */
static gf_status find_input(gf_ctx *ctx, tj_graph *g, const cJSON *cfg, const char *label) {
    const cJSON *il = cJSON_GetObjectItemCaseSensitive(cfg, "input_layers");
    const cJSON *ref = cJSON_GetArrayItem(il, 0), *nm = cJSON_GetArrayItem(ref, 0);
    if (!cJSON_IsArray(il) || cJSON_GetArraySize(il) != 1 || !cJSON_IsString(nm))
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: config.input_layers: expected one input "
                                "[name, 0, 0], found %d", label,
                                cJSON_IsArray(il) ? cJSON_GetArraySize(il) : 0);
    g->input = tj_graph_find(g, nm->valuestring);
    if (g->input < 0 || g->nodes[g->input].kind != TJ_INPUT)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: config.input_layers names \"%.*s\", "
                                "which is not an InputLayer of the model", label, TJ_NAME_MAX,
                                nm->valuestring);
    return GF_OK;
}

/* Sorts the name index and refuses duplicate names. */
static gf_status index_names(gf_ctx *ctx, tj_graph *g, const char *label) {
    for (int i = 0; i < g->n; i++) g->order[i] = i;
    sort_g = g; /* qsort has no context argument in C11; the import runs one sort at a time */
    qsort(g->order, (size_t)g->n, sizeof *g->order, by_name);
    sort_g = NULL;
    for (int i = 1; i < g->n; i++)
        if (strcmp(g->nodes[g->order[i - 1]].name, g->nodes[g->order[i]].name) == 0)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: two layers are named %s", label,
                                    g->nodes[g->order[i]].name);
    return GF_OK;
}

gf_status tj_graph_read(gf_ctx *ctx, const cJSON *mc, const char *label, tj_graph *g) {
    memset(g, 0, sizeof *g);
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(mc, "class_name");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(mc, "config");
    const char *c = cJSON_IsString(cls) ? cls->valuestring : "(none)";
    bool seq = strcmp(c, "Sequential") == 0;
    if (!seq && strcmp(c, "Functional") != 0 && strcmp(c, "Model") != 0)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: model_config class_name \"%.40s\", "
                                "expected Functional, Model or Sequential", label, c);
    const cJSON *layers =
        cJSON_IsArray(cfg) ? cfg : cJSON_GetObjectItemCaseSensitive(cfg, "layers");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(cfg, "name");
    int n = cJSON_GetArraySize(layers);
    if (!cJSON_IsArray(layers) || n < 1)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: model_config.config.layers: expected a "
                                "non-empty array of layers", label);
    g->class_name = strdup(c);
    g->model_name = strdup(cJSON_IsString(nm) ? nm->valuestring : "");
    g->nodes = calloc((size_t)n + 1, sizeof *g->nodes);
    g->order = calloc((size_t)n + 1, sizeof *g->order);
    if (!g->class_name || !g->model_name || !g->nodes || !g->order)
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
    g->n = seq ? n + 1 : n; /* Sequential: slot 0 for an input layer */
    int i = seq ? 1 : 0;
    for (const cJSON *l = layers->child; l; l = l->next, i++)
        if (read_layer(ctx, l, i - (seq ? 1 : 0), &g->nodes[i], label) != GF_OK)
            return gf_ctx_status(ctx);
    if (seq) {
        const cJSON *first = cJSON_GetObjectItemCaseSensitive(layers->child, "config");
        if (chain_sequential(ctx, g, first, label) != GF_OK) return gf_ctx_status(ctx);
        return index_names(ctx, g, label);
    }
    if (index_names(ctx, g, label) != GF_OK) return gf_ctx_status(ctx);
    i = 0;
    for (const cJSON *l = layers->child; l; l = l->next, i++)
        if (read_inbound(ctx, g, i, l, label) != GF_OK) return gf_ctx_status(ctx);
    return find_input(ctx, g, cfg, label);
}

/* Up to 8 layer names for a message: "a, b, c, ...". */
static void some_names(const tj_graph *g, char *buf, size_t cap) {
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < g->n && i < 8 && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", g->nodes[i].name);
    if (g->n > 8 && at < cap) snprintf(buf + at, cap - at, ", ... (%d layers)", g->n);
}

/* The model's own single output: config.output_layers, or a Sequential's last layer. */
static int model_output(gf_ctx *ctx, const tj_graph *g, const cJSON *mc, const char *label) {
    if (strcmp(g->class_name, "Sequential") == 0) return g->n - 1;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(mc, "config");
    const cJSON *ol = cJSON_GetObjectItemCaseSensitive(cfg, "output_layers");
    const cJSON *nm = cJSON_GetArrayItem(cJSON_GetArrayItem(ol, 0), 0);
    int n = cJSON_IsArray(ol) ? cJSON_GetArraySize(ol) : 0;
    if (n != 1 || !cJSON_IsString(nm)) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: config.output_layers: expected one output, "
                         "found %d (choose one with a cut at a layer name)", label, n);
        return -1;
    }
    int o = tj_graph_find(g, nm->valuestring);
    if (o < 0)
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: config.output_layers names \"%.*s\", which the "
                         "model does not have", label, TJ_NAME_MAX, nm->valuestring);
    return o;
}

gf_status tj_graph_select(gf_ctx *ctx, tj_graph *g, const cJSON *mc, const char *cut,
                          const char *label) {
    if (cut) {
        g->output = tj_graph_find(g, cut);
        if (g->output < 0) {
            char names[512];
            some_names(g, names, sizeof names);
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: cut at \"%s\": the model has no "
                                    "layer of that name (layers: %s)", label, cut, names);
        }
    } else if ((g->output = model_output(ctx, g, mc, label)) < 0) {
        return gf_ctx_status(ctx);
    }
    /* every inbound index is smaller than its reader's, so one backward sweep marks them */
    g->nodes[g->output].keep = true;
    for (int i = g->output; i >= 0; i--) {
        if (!g->nodes[i].keep) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++) g->nodes[g->nodes[i].in[k]].keep = true;
        if (g->nodes[i].kind == TJ_INPUT && i != g->input)
            return tj_layer_error(ctx, GF_ERR_FORMAT, label, &g->nodes[i], "a second input "
                                  "layer; models with several inputs are not supported");
    }
    if (!g->nodes[g->input].keep)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: layer %s does not depend on the input "
                                "%s", label, g->nodes[g->output].name, g->nodes[g->input].name);
    return GF_OK;
}
