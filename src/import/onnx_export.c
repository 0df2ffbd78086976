/* Writing a module as an ONNX model: the protobuf messages of the graph (built from protobuf-c's
 * generated types, so the field numbers are onnx.proto's own), the pool they live in, and the
 * model around them — opset 17, one input with a symbolic batch dimension, one output —
 * packed by protobuf-c and written atomically. onnx_export_layers.c says which nodes each
 * module becomes. */
#define _POSIX_C_SOURCE 200809L
#include "import/onnx_export_internal.h"

#include "io/io_internal.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EX_IR_VERSION 8 /* the IR version of opset 17 (ONNX 1.12) */

/* ---- the pool ------------------------------------------------------------------------------ */

/* Room for one more element in the array *arr_ptr points at (any pointer type: read and
 * written through memcpy, so no pointer is accessed as another type). */
static bool ex_grow(ex_graph *g, void *arr_ptr, size_t elem, size_t *n, size_t *cap) {
    if (*n < *cap) return true;
    void *arr;
    memcpy(&arr, arr_ptr, sizeof arr);
    const size_t nc = *cap ? *cap * 2 : 64;
    void *p = realloc(arr, nc * elem);
    if (!p) {
        g->failed = true;
        gf_ctx_set_error(g->ctx, GF_ERR_NOMEM, "onnx export: out of memory");
        return false;
    }
    memcpy(arr_ptr, &p, sizeof p);
    *cap = nc;
    return true;
}

void *ex_alloc(ex_graph *g, size_t n) {
    if (g->failed || !ex_grow(g, &g->blocks, sizeof *g->blocks, &g->n_blocks, &g->cap_blocks))
        return NULL;
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        g->failed = true;
        gf_ctx_set_error(g->ctx, GF_ERR_NOMEM, "onnx export: out of memory (%zu bytes)", n);
        return NULL;
    }
    g->blocks[g->n_blocks++] = p;
    return p;
}

char *ex_strdup(ex_graph *g, const char *s) {
    size_t n = strlen(s) + 1;
    char *p = ex_alloc(g, n);
    if (p) memcpy(p, s, n);
    return p;
}

char *ex_join(ex_graph *g, const char *path, const char *name) {
    size_t n = strlen(path) + strlen(name) + 2;
    char *p = ex_alloc(g, n);
    if (p) snprintf(p, n, path[0] ? "%s.%s" : "%s%s", path, name);
    return p;
}

static void ex_graph_free(ex_graph *g) {
    for (size_t i = 0; i < g->n_blocks; i++) free(g->blocks[i]);
    free(g->blocks);
    free(g->nodes);
    free(g->inits);
    if (g->run) gf_ctx_free(g->run);
}

/* ---- nodes and attributes -------------------------------------------------------------------- */

Onnx__NodeProto *ex_node(ex_graph *g, const char *path, const char *op, int n_in,
                         const char *const *in) {
    for (int i = 0; i < n_in; i++)
        if (!in[i]) return NULL; /* an earlier step failed and said why */
    if (!ex_grow(g, &g->nodes, sizeof *g->nodes, &g->n_nodes, &g->cap_nodes)) return NULL;
    Onnx__NodeProto *n = ex_alloc(g, sizeof *n);
    char **ins = ex_alloc(g, sizeof *ins * (size_t)(n_in > 0 ? n_in : 1));
    char **outs = ex_alloc(g, sizeof *outs);
    Onnx__AttributeProto **attrs = ex_alloc(g, sizeof *attrs * EX_MAX_ATTRS);
    /* unique by the node's index, however long the path */
    const size_t len = (size_t)snprintf(NULL, 0, "/%s/%s_%zu", path, op, g->n_nodes) + 1;
    char *name = ex_alloc(g, len);
    if (!n || !ins || !outs || !attrs || !name) return NULL;
    snprintf(name, len, "/%s/%s_%zu", path, op, g->n_nodes);
    outs[0] = name;
    onnx__node_proto__init(n);
    for (int i = 0; i < n_in; i++)
        if (!(ins[i] = ex_strdup(g, in[i]))) return NULL;
    n->n_input = (size_t)n_in;
    n->input = ins;
    n->n_output = 1;
    n->output = outs;
    n->name = outs[0];
    n->op_type = ex_strdup(g, op);
    n->attribute = attrs;
    if (!n->op_type) return NULL;
    g->nodes[g->n_nodes++] = n;
    return n;
}

static Onnx__AttributeProto *ex_attr(ex_graph *g, Onnx__NodeProto *n, const char *name,
                                     Onnx__AttributeProto__AttributeType type) {
    if (n->n_attribute >= EX_MAX_ATTRS) {
        gf_ctx_set_error(g->ctx, GF_ERR_STATE, "onnx export: node %s has more than %d "
                         "attributes", n->name, EX_MAX_ATTRS);
        return NULL;
    }
    Onnx__AttributeProto *a = ex_alloc(g, sizeof *a);
    if (!a) return NULL;
    onnx__attribute_proto__init(a);
    if (!(a->name = ex_strdup(g, name))) return NULL;
    a->has_type = true;
    a->type = type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

bool ex_attr_int(ex_graph *g, Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = ex_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a) return false;
    a->has_i = true;
    a->i = v;
    return true;
}

bool ex_attr_float(ex_graph *g, Onnx__NodeProto *n, const char *name, float v) {
    Onnx__AttributeProto *a = ex_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (!a) return false;
    a->has_f = true;
    a->f = v;
    return true;
}

bool ex_attr_str(ex_graph *g, Onnx__NodeProto *n, const char *name, const char *v) {
    Onnx__AttributeProto *a = ex_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    char *copy = a ? ex_strdup(g, v) : NULL;
    if (!copy) return false;
    a->has_s = true;
    a->s.len = strlen(copy);
    a->s.data = (uint8_t *)copy;
    return true;
}

bool ex_attr_ints(ex_graph *g, Onnx__NodeProto *n, const char *name, int count,
                  const int64_t *v) {
    Onnx__AttributeProto *a = ex_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *copy = a ? ex_alloc(g, sizeof *copy * (size_t)count) : NULL;
    if (!copy) return false;
    memcpy(copy, v, sizeof *copy * (size_t)count);
    a->n_ints = (size_t)count;
    a->ints = copy;
    return true;
}

const char *ex_unary(ex_graph *g, const char *path, const char *op, const char *x) {
    if (!x) return NULL;
    Onnx__NodeProto *n = ex_node(g, path, op, 1, &x);
    return n ? n->output[0] : NULL;
}

const char *ex_binary(ex_graph *g, const char *path, const char *op, const char *a,
                      const char *b) {
    if (!a || !b) return NULL;
    const char *in[2] = {a, b};
    Onnx__NodeProto *n = ex_node(g, path, op, 2, in);
    return n ? n->output[0] : NULL;
}

const char *ex_op(ex_graph *g, const char *path, const char *op, int n, const char *const *in) {
    for (int i = 0; i < n; i++)
        if (!in[i]) return NULL;
    Onnx__NodeProto *node = ex_node(g, path, op, n, in);
    return node ? node->output[0] : NULL;
}

/* ---- tensors: constants and initializers ------------------------------------------------------ */

static Onnx__TensorProto *ex_tensor(ex_graph *g, int ndim, const int64_t *dims, int elem) {
    Onnx__TensorProto *t = ex_alloc(g, sizeof *t);
    int64_t *d = ex_alloc(g, sizeof *d * (size_t)(ndim > 0 ? ndim : 1));
    if (!t || !d) return NULL;
    onnx__tensor_proto__init(t);
    if (ndim > 0) memcpy(d, dims, sizeof *d * (size_t)ndim);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->has_data_type = true;
    t->data_type = elem;
    return t;
}

static const char *ex_constant(ex_graph *g, const char *path, Onnx__TensorProto *t) {
    Onnx__NodeProto *n = t ? ex_node(g, path, "Constant", 0, NULL) : NULL;
    Onnx__AttributeProto *a =
        n ? ex_attr(g, n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR) : NULL;
    if (!a) return NULL;
    a->t = t;
    return n->output[0];
}

const char *ex_const_f32(ex_graph *g, const char *path, int ndim, const int64_t *dims,
                         const float *data) {
    size_t count = 1;
    for (int i = 0; i < ndim; i++) count *= (size_t)dims[i];
    Onnx__TensorProto *t = ex_tensor(g, ndim, dims, GF_ONNX_FLOAT);
    float *v = t ? ex_alloc(g, sizeof *v * count) : NULL;
    if (!v) return NULL;
    memcpy(v, data, sizeof *v * count);
    t->n_float_data = count;
    t->float_data = v;
    return ex_constant(g, path, t);
}

const char *ex_const_i64(ex_graph *g, const char *path, int n, const int64_t *v) {
    const int64_t dims[1] = {n};
    Onnx__TensorProto *t = ex_tensor(g, 1, dims, GF_ONNX_INT64);
    int64_t *copy = t ? ex_alloc(g, sizeof *copy * (size_t)n) : NULL;
    if (!copy) return NULL;
    memcpy(copy, v, sizeof *copy * (size_t)n);
    t->n_int64_data = (size_t)n;
    t->int64_data = copy;
    return ex_constant(g, path, t);
}

const char *ex_initializer(ex_graph *g, const char *name, const gf_tensor *t) {
    if (!t || t->dtype != GF_F32 || !gf_tensor_is_contiguous(t)) {
        gf_ctx_set_error(g->ctx, GF_ERR_INVALID, "onnx export: tensor %s is not a contiguous "
                         "float32 tensor", name);
        return NULL;
    }
    if (!ex_grow(g, &g->inits, sizeof *g->inits, &g->n_inits, &g->cap_inits)) return NULL;
    Onnx__TensorProto *p = ex_tensor(g, t->ndim, t->shape, GF_ONNX_FLOAT);
    if (!p || !(p->name = ex_strdup(g, name))) return NULL;
    /* raw_data is little-endian float32: graft's own layout on the machines it builds for */
    p->has_raw_data = true;
    p->raw_data.len = sizeof(float) * (size_t)t->numel;
    p->raw_data.data = (uint8_t *)gf_f32(t);
    g->inits[g->n_inits++] = p;
    return p->name;
}

/* ---- the model --------------------------------------------------------------------------------- */

gf_onnx_export_options gf_onnx_export_default_options(void) {
    gf_onnx_export_options o = {"input", "output", 0, 0, NULL, NULL};
    return o;
}

/* ValueInfo name: elem [batch, dims[1..ndim)]. */
static Onnx__ValueInfoProto *ex_value_info(ex_graph *g, const char *name, const gf_tensor *t,
                                           int64_t batch, int elem) {
    Onnx__ValueInfoProto *v = ex_alloc(g, sizeof *v);
    Onnx__TypeProto *tp = ex_alloc(g, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = ex_alloc(g, sizeof *tt);
    Onnx__TensorShapeProto *sh = ex_alloc(g, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dims = ex_alloc(g, sizeof *dims * (size_t)t->ndim);
    if (!v || !tp || !tt || !sh || !dims) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int d = 0; d < t->ndim; d++) {
        if (!(dims[d] = ex_alloc(g, sizeof *dims[d]))) return NULL;
        onnx__tensor_shape_proto__dimension__init(dims[d]);
        if (d == 0 && batch <= 0) {
            dims[d]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            if (!(dims[d]->dim_param = ex_strdup(g, "batch"))) return NULL;
        } else {
            dims[d]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dims[d]->dim_value = d == 0 ? batch : t->shape[d];
        }
    }
    sh->n_dim = (size_t)t->ndim;
    sh->dim = dims;
    tt->has_elem_type = true;
    tt->elem_type = elem;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    if (!(v->name = ex_strdup(g, name))) return NULL;
    v->type = tp;
    return v;
}

/* Names the final value out_name: renames the output of the node that made it, or adds an
 * Identity node when no node did (a model of Dropout and Identity only). */
static bool ex_name_output(ex_graph *g, const char *final, const char *out_name) {
    for (size_t i = g->n_nodes; i-- > 0;)
        if (strcmp(g->nodes[i]->output[0], final) == 0) {
            g->nodes[i]->output[0] = ex_strdup(g, out_name);
            return g->nodes[i]->output[0] != NULL;
        }
    Onnx__NodeProto *n = ex_node(g, "", "Identity", 1, &final);
    return n && (n->output[0] = ex_strdup(g, out_name)) != NULL;
}

/* Packs the graph with its input and output described; a malloc'd buffer or NULL. */
static void *ex_pack(ex_graph *g, Onnx__ValueInfoProto *in, Onnx__ValueInfoProto *out,
                     size_t *size) {
    Onnx__GraphProto graph;
    onnx__graph_proto__init(&graph);
    graph.name = "graft";
    graph.n_node = g->n_nodes;
    graph.node = g->nodes;
    graph.n_initializer = g->n_inits;
    graph.initializer = g->inits;
    graph.n_input = 1;
    graph.input = &in;
    graph.n_output = 1;
    graph.output = &out;
    Onnx__OperatorSetIdProto opset, *opsets[1] = {&opset};
    onnx__operator_set_id_proto__init(&opset);
    opset.domain = "";
    opset.has_version = true;
    opset.version = GF_ONNX_EXPORT_OPSET;
    Onnx__ModelProto model;
    onnx__model_proto__init(&model);
    model.has_ir_version = true;
    model.ir_version = EX_IR_VERSION;
    model.n_opset_import = 1;
    model.opset_import = opsets;
    model.producer_name = "graft";
    model.producer_version = GF_VERSION_STRING;
    model.graph = &graph;
    const size_t n = onnx__model_proto__get_packed_size(&model);
    if (n > (size_t)INT32_MAX) { /* protobuf's 2 GiB limit; external data is not written */
        gf_ctx_set_error(g->ctx, GF_ERR_INVALID, "onnx export: the model is %zu bytes, more than "
                         "the 2 GiB a protobuf file may hold", n);
        return NULL;
    }
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        gf_ctx_set_error(g->ctx, GF_ERR_NOMEM, "onnx export: out of memory (%zu bytes)", n);
        return NULL;
    }
    *size = onnx__model_proto__pack(&model, buf);
    return buf;
}

/* The sample [1, sample_shape...] of zeros in the run context, after checking the shape. */
static gf_tensor *ex_sample(ex_graph *g, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim + 1 > GF_MAX_DIMS || (ndim > 0 && !shape)) {
        gf_ctx_set_error(g->ctx, GF_ERR_INVALID, "onnx export: a sample shape of %d dimensions "
                         "(1 to %d without the batch)", ndim, GF_MAX_DIMS - 1);
        return NULL;
    }
    int64_t full[GF_MAX_DIMS] = {1};
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) {
            gf_ctx_set_error(g->ctx, GF_ERR_INVALID, "onnx export: sample dimension %d is %lld "
                             "(must be > 0)", i, (long long)shape[i]);
            return NULL;
        }
        full[i + 1] = shape[i];
    }
    return gf_zeros(g->run, GF_F32, ndim + 1, full);
}

/* Sub(mean) and Div(std) on the input x, constants of shape [C, 1, ...] broadcast over the
 * batch and the other sample dimensions; x keeps its shape. */
static bool ex_normalize(ex_graph *g, const gf_onnx_export_options *o, ex_val *x) {
    const int C = o->norm_channels, nd = x->t->ndim - 1; /* the sample's dimensions */
    if (!o->norm_mean || !o->norm_std || nd < 1 || (C != 1 && C != x->t->shape[1])) {
        gf_ctx_set_error(g->ctx, GF_ERR_INVALID, "onnx export: a normalisation of %d channels "
                         "(mean %s, std %s) for samples of %lld channels", C,
                         o->norm_mean ? "given" : "missing", o->norm_std ? "given" : "missing",
                         nd < 1 ? 0LL : (long long)x->t->shape[1]);
        return false;
    }
    for (int c = 0; c < C; c++)
        if (!isfinite(o->norm_mean[c]) || !(o->norm_std[c] > 0) || !isfinite(o->norm_std[c])) {
            gf_ctx_set_error(g->ctx, GF_ERR_INVALID, "onnx export: channel %d's normalisation "
                             "(mean %g, std %g) is not a finite mean and a positive std", c,
                             (double)o->norm_mean[c], (double)o->norm_std[c]);
            return false;
        }
    int64_t dims[GF_MAX_DIMS];
    dims[0] = C;
    for (int i = 1; i < nd; i++) dims[i] = 1;
    const char *mean = ex_const_f32(g, "normalize", nd, dims, o->norm_mean);
    const char *sd = mean ? ex_const_f32(g, "normalize", nd, dims, o->norm_std) : NULL;
    const char *y = sd ? ex_binary(g, "normalize", "Sub", x->name, mean) : NULL;
    x->name = y ? ex_binary(g, "normalize", "Div", y, sd) : NULL;
    return x->name != NULL;
}

static bool ex_graph_init(ex_graph *g, gf_ctx *ctx) {
    memset(g, 0, sizeof *g);
    g->ctx = ctx;
    g->in_elem = GF_ONNX_FLOAT;
    gf_ctx_params p = gf_ctx_default_params();
    p.n_threads = 1;
    p.limits = *gf_ctx_limits(ctx);
    if (!(g->run = gf_ctx_new(&p))) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "onnx export: out of memory");
        return false;
    }
    gf_ctx_set_grad_enabled(g->run, false);
    return true;
}

bool ex_takes_ids(const gf_module *m) {
    const char *type = gf_module_type(m);
    return strcmp(type, "TextClassifier") == 0 || strcmp(type, "EmbeddingBagClassifier") == 0;
}

void *gf_onnx_export_memory(gf_ctx *ctx, const gf_module *m, int ndim,
                            const int64_t *sample_shape, const gf_onnx_export_options *opt,
                            size_t *size) {
    gf_onnx_export_options o = opt ? *opt : gf_onnx_export_default_options();
    if (!o.input_name || !o.input_name[0]) o.input_name = "input";
    if (!o.output_name || !o.output_name[0]) o.output_name = "output";
    if (!m || !size) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "onnx export: no module or no size to return");
        return NULL;
    }
    ex_graph g;
    if (!ex_graph_init(&g, ctx)) return NULL;
    void *buf = NULL;
    gf_tensor *sample = ex_sample(&g, ndim, sample_shape);
    ex_val x = {o.input_name, sample};
    /* the text classifiers take the token ids as they are: int64 [batch, time] */
    if (ex_takes_ids(m)) {
        g.in_elem = GF_ONNX_INT64;
        x.t = sample ? gf_zeros(g.run, GF_I64, sample->ndim, sample->shape) : NULL;
    }
    if (sample && !x.t) sample = NULL; /* out of memory: the run context says so */
    if (sample && g.in_elem != GF_ONNX_FLOAT && o.norm_channels != 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "onnx export: a text classifier takes token ids: "
                         "there is no normalisation to write before it");
        sample = NULL;
    }
    Onnx__ValueInfoProto *in =
        sample ? ex_value_info(&g, o.input_name, sample, o.batch, g.in_elem) : NULL;
    if (in && (o.norm_channels == 0 || ex_normalize(&g, &o, &x)) && ex_module(&g, m, "", &x) &&
        ex_name_output(&g, x.name, o.output_name)) {
        Onnx__ValueInfoProto *out =
            ex_value_info(&g, o.output_name, x.t, o.batch, GF_ONNX_FLOAT);
        if (out) buf = ex_pack(&g, in, out, size);
    }
    if (!buf && gf_ctx_status(ctx) == GF_OK)
        gf_ctx_set_error(ctx, GF_ERR_STATE, "onnx export: failed (%s)", gf_ctx_error(g.run));
    ex_graph_free(&g);
    return buf;
}

typedef struct ex_write_job {
    const void *data;
    size_t size;
} ex_write_job;

static bool ex_write(int fd, void *arg) {
    const ex_write_job *j = arg;
    return gf_write_all(fd, j->data, j->size);
}

gf_status gf_onnx_export(gf_ctx *ctx, const gf_module *m, int ndim, const int64_t *sample_shape,
                         const char *path, const gf_onnx_export_options *opt) {
    if (!path || !path[0])
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "onnx export: no output path");
    size_t size = 0;
    void *buf = gf_onnx_export_memory(ctx, m, ndim, sample_shape, opt, &size);
    if (!buf) {
        /* say which file was not written */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", gf_ctx_error(ctx));
        gf_status st = gf_ctx_status(ctx);
        gf_ctx_clear_error(ctx);
        return gf_ctx_set_error(ctx, st, "%s: not written: %s", path, msg);
    }
    ex_write_job job = {buf, size};
    gf_status st = gf_atomic_write(ctx, path, ex_write, &job);
    free(buf);
    return st;
}
