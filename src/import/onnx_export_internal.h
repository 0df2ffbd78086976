/* What the two files of the ONNX exporter share: onnx_export.c builds the protobuf messages
 * (nodes, attributes, constants, initializers, the model) and writes them; onnx_export_layers.c
 * walks the module tree and says which nodes each module becomes. Every message, string and
 * array of one export lives in the graph's pool and is freed at once with it; initializers
 * point at the parameters' own data (borrowed, never copied). */
#ifndef GRAFT_ONNX_EXPORT_INTERNAL_H
#define GRAFT_ONNX_EXPORT_INTERNAL_H

#include <onnx/onnx.pb-c.h>

#include "core/internal.h"
#include "graft/onnx.h"
#include "nn/nn_access.h"

/* A value of the graph being built: its name, and a tensor of the shape it has for a batch of
 * one (computed by running the layers that change shapes on zeros), for the layers whose
 * attributes depend on the input's size. */
typedef struct ex_val {
    const char *name;
    gf_tensor *t; /* an arena tensor of the graph's run context */
} ex_val;

typedef struct ex_graph {
    gf_ctx *ctx;  /* errors go here */
    gf_ctx *run;  /* runs the shape-changing layers on the sample (no gradients) */
    void **blocks;
    size_t n_blocks, cap_blocks;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    bool failed;  /* an allocation failed (ctx has the error) */
    int in_elem;  /* the graph input's ONNX element type: FLOAT, or INT64 for token ids (the
                   * sample is then int64 too) */
    /* inside a text classifier: each example's real steps (float [N], the non-zero ids) and
     * the float step mask [N, T] (1 at real steps); NULL elsewhere (every step is real) */
    const char *lengths, *mask;
} ex_graph;

/* Zeroed memory owned by the graph's pool; NULL (g->failed, ctx error) when out of memory. */
void *ex_alloc(ex_graph *g, size_t n);
char *ex_strdup(ex_graph *g, const char *s);
/* "a.b" from a path and a child's name ("b" when path is empty). */
char *ex_join(ex_graph *g, const char *path, const char *name);

/* A node op_type(in[0..n_in)) with one output, named after the module path and the node's
 * index ("/features.0/Conv_3"): returns the node (its output name is output[0]), or NULL. */
Onnx__NodeProto *ex_node(ex_graph *g, const char *path, const char *op, int n_in,
                         const char *const *in);
/* Attributes of a node (at most EX_MAX_ATTRS per node). */
#define EX_MAX_ATTRS 8
bool ex_attr_int(ex_graph *g, Onnx__NodeProto *n, const char *name, int64_t v);
bool ex_attr_float(ex_graph *g, Onnx__NodeProto *n, const char *name, float v);
bool ex_attr_ints(ex_graph *g, Onnx__NodeProto *n, const char *name, int count,
                  const int64_t *v);
bool ex_attr_str(ex_graph *g, Onnx__NodeProto *n, const char *name, const char *v);

/* The output name of a one-input node op(x) with no attributes; NULL on failure. */
const char *ex_unary(ex_graph *g, const char *path, const char *op, const char *x);
/* The output name of op(a, b). */
const char *ex_binary(ex_graph *g, const char *path, const char *op, const char *a,
                      const char *b);
/* A Constant node holding a float tensor of shape dims[0..ndim) (ndim 0: a scalar) or an int64
 * vector [n]; returns its output name. */
const char *ex_const_f32(ex_graph *g, const char *path, int ndim, const int64_t *dims,
                         const float *data);
const char *ex_const_i64(ex_graph *g, const char *path, int n, const int64_t *v);
/* Adds the module's tensor t (float32, contiguous) as the initializer `name`, its data
 * borrowed; returns name (pooled) or NULL. */
const char *ex_initializer(ex_graph *g, const char *name, const gf_tensor *t);

/* A node with no attributes op(in[0..n)); returns its output name or NULL. */
const char *ex_op(ex_graph *g, const char *path, const char *op, int n, const char *const *in);

/* Emits the nodes of m's child `name` (at path.name) on *x. */
bool ex_child(ex_graph *g, const gf_module *m, const char *path, const char *name, ex_val *x);
/* Sets the context error "module PATH (TYPE): why" (unless one is set); returns false. */
bool ex_refuse(ex_graph *g, const gf_module *m, const char *path, const char *why);

/* The sequence layers (onnx_export_seq.c): LSTM and GRU as ONNX's LSTM / GRU nodes, the
 * Transformer encoder and attention as primitive ops, positions, pooling over time and the
 * text classifier around them (int64 token ids in). */
bool ex_rnn(ex_graph *g, const gf_module *m, const char *path, ex_val *x);
bool ex_embedding_bag(ex_graph *g, const gf_module *m, const char *path,
                      const gf_nn_layer_view *v, ex_val *x);
bool ex_seq_container(ex_graph *g, const gf_module *m, const char *path, ex_val *x);
/* True for the types ex_seq_container writes. */
bool ex_is_seq_container(const char *type);

/* Whether the exported graph of root m takes int64 token ids: a text classifier (TextClassifier,
 * the zoo's EmbeddingBagClassifier). */
bool ex_takes_ids(const gf_module *m);

/* Emits the nodes of module m (at dotted path) applied to *x, and sets *x to its output. False
 * with a context error naming the module's path and type when it cannot be exported. */
bool ex_module(ex_graph *g, const gf_module *m, const char *path, ex_val *x);

#endif
