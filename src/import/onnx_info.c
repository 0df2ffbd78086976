/* Looking into an ONNX file without building a module (gf_onnx_inspect): declared inputs and
 * outputs, op types with counts and whether graft runs them, every node graft cannot run (all
 * of them, not just the first), parameter counts and the tensors one can cut at. Also the
 * reader of single serialized tensors (gf_onnx_read_tensor). */
#define _POSIX_C_SOURCE 200809L
#include "import/onnx_pb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool copy_info(gf_onnx_value_info *dst, const gf_onnx_value_info *src) {
    *dst = *src;
    dst->name = strdup(src->name ? src->name : "");
    for (int i = 0; i < GF_MAX_DIMS; i++)
        dst->dim_names[i] = src->dim_names[i] ? strdup(src->dim_names[i]) : NULL;
    bool ok = dst->name != NULL;
    for (int i = 0; i < GF_MAX_DIMS; i++) ok &= !src->dim_names[i] || dst->dim_names[i];
    return ok;
}

/* Counts op types in order of first use; records each node graft cannot run. */
static bool list_ops(gf_onnx_info *info, const ox_model *m) {
    info->ops = calloc((size_t)m->n_nodes + 1, sizeof *info->ops);
    info->unsupported = calloc((size_t)m->n_nodes + 1, sizeof *info->unsupported);
    if (!info->ops || !info->unsupported) return false;
    for (int i = 0; i < m->n_order; i++) {
        const ox_node *n = &m->nodes[m->order[i]];
        const char *why = "";
        const ox_opdef *d = ox_op_find(n->domain, n->op, n->opset, &why);
        int k = 0;
        while (k < info->n_ops &&
               (strcmp(info->ops[k].op, n->op) || strcmp(info->ops[k].domain, n->domain)))
            k++;
        if (k == info->n_ops) {
            gf_onnx_op_use *u = &info->ops[info->n_ops++];
            if (!(u->op = strdup(n->op)) || !(u->domain = strdup(n->domain))) return false;
            u->supported = d != NULL;
        }
        info->ops[k].count++;
        if (d) continue;
        char line[512], where[512];
        snprintf(line, sizeof line, "%s%s", ox_node_where(m, n, where, sizeof where), why);
        if (!(info->unsupported[info->n_unsupported++] = strdup(line))) return false;
    }
    return true;
}

/* Readers after which a layer is not yet complete: activations, normalisation, dropout. */
static bool continues_layer(const char *op) {
    static const char *const ops[] = {
        "Relu", "Clip", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Elu",
        "Selu", "Celu", "Gelu", "Tanh", "Softplus", "Mish", "BatchNormalization", "Dropout",
        "InstanceNormalization", "LayerNormalization", NULL};
    for (int i = 0; ops[i]; i++)
        if (!strcmp(op, ops[i])) return true;
    return false;
}

/* A Max or Min of one computed value and constants: an activation too (a clip, as TensorFlow's
 * tf.math.maximum(x, c) after a LeakyReLU in openWakeWord's speech embedding). */
static bool clips(const ox_model *m, const ox_node *nd, const bool *feat) {
    if (strcmp(nd->op, "Max") != 0 && strcmp(nd->op, "Min") != 0) return false;
    int computed = 0;
    for (int k = 0; k < nd->n_in; k++) computed += nd->in[k] >= 0 && feat[nd->in[k]];
    (void)m;
    return computed == 1;
}

/* end[i] for the node at position i of m->order: its first output ends a block
 * (gf_onnx_cut_point.block_end). feat marks the values computed from the inputs that are not
 * shape arithmetic; last[i] is the last position reading an output of position i. */
static bool mark_block_ends(const ox_model *m, bool *end) {
    const int n = m->n_order;
    bool *feat = calloc((size_t)m->n_values + 1, sizeof *feat);
    int *pos = malloc(sizeof(int) * (size_t)(m->n_nodes + 1));
    int *last = malloc(sizeof(int) * (size_t)(n + 1)), *lone = malloc(sizeof(int) * (size_t)(n + 1));
    bool ok = feat && pos && last && lone;
    int last_input = -1, stop = n; /* stop: the last Gemm / MatMul reading features */
    for (int i = 0; ok && i < n; i++) pos[m->order[i]] = i, last[i] = -1, lone[i] = -1;
    for (int v = 0; ok && v < m->n_values; v++) feat[v] = m->values[v].kind == OX_V_INPUT;
    for (int i = 0; ok && i < n; i++) {
        const ox_node *nd = &m->nodes[m->order[i]];
        bool reads = false;
        for (int k = 0; k < nd->n_in; k++) {
            int v = nd->in[k];
            if (v < 0 || !feat[v]) continue;
            reads = true;
            int p = m->values[v].producer;
            if (p < 0) {
                last_input = i;
                continue;
            }
            int at = pos[p];
            lone[at] = last[at] < 0 ? i : last[at] == i ? lone[at] : -2; /* -2: several */
            last[at] = i;
        }
        const bool shape = !strcmp(nd->op, "Shape") || !strcmp(nd->op, "Size");
        for (int o = 0; o < nd->n_out; o++)
            if (nd->out[o] >= 0) feat[nd->out[o]] = reads && !shape;
        if (reads && (!strcmp(nd->op, "Gemm") || !strcmp(nd->op, "MatMul"))) stop = i;
    }
    int reach = last_input; /* the last position reading anything computed so far */
    for (int i = 0; ok && i < n; i++) {
        const ox_node *nd = &m->nodes[m->order[i]];
        const int v = nd->n_out > 0 ? nd->out[0] : -1;
        const int r = lone[i] >= 0 ? lone[i] : -1;
        bool output = false;
        for (int o = 0; o < m->n_out && v >= 0; o++) output |= m->out_ids[o] == v;
        end[i] = v >= 0 && feat[v] && i < stop && reach <= i && (last[i] > i || output) &&
                 strcmp(nd->op, "Flatten") != 0 && /* its input, pooled, is the same features */
                 !(r >= 0 && (continues_layer(m->nodes[m->order[r]].op) ||
                              clips(m, &m->nodes[m->order[r]], feat)));
        if (last[i] > reach) reach = last[i];
    }
    free(feat), free(pos), free(last), free(lone);
    return ok;
}

static bool list_cuts(gf_onnx_info *info, const ox_model *m) {
    int n = 0;
    for (int i = 0; i < m->n_order; i++) n += m->nodes[m->order[i]].n_out;
    info->cuts = calloc((size_t)n + 1, sizeof *info->cuts);
    bool *end = calloc((size_t)m->n_order + 1, sizeof *end);
    if (!info->cuts || !end || !mark_block_ends(m, end)) return free(end), false;
    for (int i = 0; i < m->n_order; i++) {
        const ox_node *nd = &m->nodes[m->order[i]];
        for (int o = 0; o < nd->n_out && nd->scope == 0; o++) { /* not inside If branches */
            if (nd->out[o] < 0) continue;
            gf_onnx_cut_point *c = &info->cuts[info->n_cuts++];
            c->block_end = o == 0 && end[i];
            c->tensor = strdup(m->values[nd->out[o]].name);
            c->node = strdup(nd->name);
            c->op = strdup(nd->op);
            if (!c->tensor || !c->node || !c->op) return free(end), false;
        }
    }
    free(end);
    return true;
}

static bool fill(gf_onnx_info *info, const ox_model *m) {
    info->ir_version = m->ir_version;
    info->opset = m->opset;
    info->n_nodes = m->n_nodes;
    if (!(info->producer = strdup(m->producer ? m->producer : ""))) return false;
    info->inputs = calloc((size_t)m->n_in + 1, sizeof *info->inputs);
    info->outputs = calloc((size_t)m->n_out + 1, sizeof *info->outputs);
    if (!info->inputs || !info->outputs) return false;
    for (int i = 0; i < m->n_in; i++, info->n_inputs++)
        if (!copy_info(&info->inputs[i], &m->in_info[i])) return false;
    for (int i = 0; i < m->n_out; i++, info->n_outputs++)
        if (!copy_info(&info->outputs[i], &m->out_info[i])) return false;
    for (int v = 0; v < m->n_values; v++) {
        const ox_value *x = &m->values[v];
        if (!x->is_init) continue;
        info->n_initializers++;
        if (x->kind == OX_V_PARAM && !x->buffer)
            info->n_params += x->t->numel, info->n_param_tensors++;
    }
    for (int i = 0; i < m->n_order; i++) {
        const ox_node *n = &m->nodes[m->order[i]];
        const char *why;
        const ox_opdef *d = ox_op_find(n->domain, n->op, n->opset, &why);
        if ((d && (d->flags & OX_RANDOM)) || (!d && strstr(why, "random")) ||
            (!strcmp(n->op, "Dropout") && n->n_in > 2 && n->in[2] >= 0))
            info->random = true;
    }
    return list_ops(info, m) && list_cuts(info, m);
}

gf_onnx_info *gf_onnx_inspect(gf_ctx *ctx, const char *path) {
    if (!path) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "onnx inspect: path is NULL");
        return NULL;
    }
    size_t size = 0;
    uint8_t *data = ox_read_file(ctx, path, &size);
    if (!data) return NULL;
    char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
    if (dir && slash) *(slash == dir ? slash + 1 : slash) = '\0';
    else if (dir) strcpy(dir, ".");
    ox_model *m = dir ? ox_model_read(ctx, data, size, path, dir) : NULL;
    free(data);
    free(dir);
    if (!m || !ox_order_all(ctx, m)) {
        ox_model_free(m);
        return NULL;
    }
    for (int i = 0; i < m->n_order; i++) { /* which initializers the module would train */
        ox_node *n = &m->nodes[m->order[i]];
        const char *why;
        n->def = ox_op_find(n->domain, n->op, n->opset, &why);
    }
    ox_classify(m, true);
    gf_onnx_info *info = calloc(1, sizeof *info);
    if (!info || !fill(info, m)) {
        gf_onnx_info_free(info);
        ox_model_free(m);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    ox_model_free(m);
    return info;
}

void gf_onnx_info_free(gf_onnx_info *info) {
    if (!info) return;
    for (int i = 0; i < info->n_inputs; i++) ox_info_clear(&info->inputs[i]);
    for (int i = 0; i < info->n_outputs; i++) ox_info_clear(&info->outputs[i]);
    for (int i = 0; i < info->n_ops; i++) free(info->ops[i].op), free(info->ops[i].domain);
    for (int i = 0; i < info->n_unsupported; i++) free(info->unsupported[i]);
    for (int i = 0; i < info->n_cuts; i++)
        free(info->cuts[i].tensor), free(info->cuts[i].node), free(info->cuts[i].op);
    free(info->inputs), free(info->outputs), free(info->ops), free(info->unsupported);
    free(info->cuts), free(info->producer), free(info);
}

gf_tensor *gf_onnx_read_tensor(gf_ctx *ctx, const char *path, char **name, int *elem_type) {
    if (name) *name = NULL;
    if (!path) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "onnx tensor: path is NULL");
        return NULL;
    }
    size_t size = 0;
    uint8_t *data = ox_read_file(ctx, path, &size);
    if (!data) return NULL;
    ox_pb *pb = ox_pb_decode(ctx, &onnx__tensor_proto__descriptor, data, size, path);
    free(data);
    if (!pb) return NULL;
    const Onnx__TensorProto *tp = (const Onnx__TensorProto *)ox_pb_msg(pb);
    char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
    if (dir && slash) *(slash == dir ? slash + 1 : slash) = '\0';
    else if (dir) strcpy(dir, ".");
    gf_tensor *t = dir ? ox_tensor_from_pb(ctx, tp, dir, path, elem_type) : NULL;
    if (!dir) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
    if (t && name && !(*name = strdup(tp->name ? tp->name : ""))) {
        gf_tensor_free(t);
        t = NULL;
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
    }
    free(dir);
    ox_pb_free(pb);
    return t;
}
