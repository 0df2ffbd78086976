/* Internals of the TensorFlow.js importer (src/import/tfjs*.c): the weights manifest, the
 * layer graph read from modelTopology, and the forward that runs it. Not installed. */
#ifndef GRAFT_TFJS_INTERNAL_H
#define GRAFT_TFJS_INTERNAL_H

#include <cjson/cJSON.h>

#include "graft/tfjs.h"
#include "io/io_internal.h"

/* Longest layer or weight name accepted (module paths elsewhere are at most 127 bytes). */
#define TJ_NAME_MAX 120

/* ---- the weights manifest (tfjs_manifest.c) --------------------------------------------- */

typedef enum tj_qtype { TJ_Q_NONE = 0, TJ_Q_UINT8, TJ_Q_UINT16, TJ_Q_FLOAT16 } tj_qtype;

typedef struct tj_weight {
    char *name;
    int ndim;
    int64_t shape[GF_MAX_DIMS];
    int64_t numel;
    bool is_f32;          /* dtype float32 (else int32, bool or complex64: never a layer's) */
    tj_qtype q;
    double q_min, q_scale;
    int64_t offset, bytes; /* in the concatenated weight data */
    bool used;
} tj_weight;

typedef struct tj_group {
    int n_paths;
    char **paths;
    int64_t bytes;        /* what its weights need */
} tj_group;

typedef struct tj_manifest {
    int n;
    tj_weight *w;
    int *order;           /* indices of w sorted by name, for lookups */
    int n_groups;
    tj_group *groups;
    int64_t total_bytes;
} tj_manifest;

/* Reads weightsManifest (an array of groups) into m, checking every entry: names, shapes
 * against the params limit, dtypes, quantisation fields. label names the file. */
gf_status tj_manifest_read(gf_ctx *ctx, const cJSON *wm, const char *label, tj_manifest *m);
void tj_manifest_free(tj_manifest *m);
/* The weight named exactly name, else one whose name ends in "/" name (a scope prefix), else
 * NULL. */
tj_weight *tj_manifest_find(const tj_manifest *m, const char *name);
/* Reads the shards of every group from dir (the model.json's folder) into a new buffer of
 * m->total_bytes: exactly the bytes each group's weights need, from its shards in order.
 * Shard paths must be relative and stay inside dir. */
uint8_t *tj_manifest_read_shards(gf_ctx *ctx, const tj_manifest *m, const char *dir,
                                 const char *label);
/* Decodes weight w of data (dequantising) into out (w->numel floats). */
void tj_weight_decode(const tj_weight *w, const uint8_t *data, float *out);

/* ---- the layer graph (tfjs_graph.c) ----------------------------------------------------- */

typedef enum tj_kind {
    TJ_INPUT = 0, TJ_CONV, TJ_DWCONV, TJ_SEPCONV, TJ_DENSE, TJ_BN, TJ_ACT, TJ_ZEROPAD, TJ_ADD,
    TJ_CONCAT, TJ_MAXPOOL, TJ_AVGPOOL, TJ_GAP, TJ_GMP, TJ_FLATTEN, TJ_DROPOUT, TJ_RESHAPE
} tj_kind;

typedef enum tj_act {
    TJ_A_LINEAR = 0, TJ_A_RELU, TJ_A_CLAMP, TJ_A_LEAKY, TJ_A_SIGMOID, TJ_A_SOFTMAX, TJ_A_TANH,
    TJ_A_ELU, TJ_A_SOFTPLUS, TJ_A_SWISH
} tj_act;

typedef struct tj_node {
    char *name, *cls;
    char *module;               /* child module name, or NULL */
    tj_kind kind;
    int n_in;
    int *in;                    /* indices of the inbound nodes */
    /* convolutions and pooling: kernel, strides, dilation, 'same' padding */
    int kh, kw, sh, sw, dh, dw;
    bool same;
    int64_t filters, mult;      /* Conv2D/SeparableConv2D filters; depth_multiplier */
    int64_t units;              /* Dense */
    bool bias;
    int pad[4];                 /* ZeroPadding2D: top, bottom, left, right */
    tj_act act;                 /* fused activation or the Activation / ReLU layer's */
    float act_lo, act_hi, act_slope;
    float eps, momentum;        /* BatchNormalization (momentum in PyTorch's sense) */
    bool center, scale;
    int axis;                   /* Concatenate: the file's axis, >= 1 (0 is the batch) */
    float rate;                 /* Dropout */
    bool keepdims;              /* global pooling */
    int r_ndim;                 /* Reshape target, the file's layout */
    int64_t r_shape[GF_MAX_DIMS];
    /* output per example, the file's layout (NHWC); -1: unknown */
    int out_ndim;
    int64_t out[GF_MAX_DIMS];
    int64_t params;
    bool keep;
} tj_node;

typedef struct tj_graph {
    int n;
    tj_node *nodes;
    int *order;                 /* node indices sorted by name */
    int input, output;
    char *model_name, *class_name;
} tj_graph;

/* Reads the layers of model_config (Functional/Model with inbound_nodes, or Sequential) into
 * g: kinds, settings and inbound edges; no shapes yet. */
gf_status tj_graph_read(gf_ctx *ctx, const cJSON *model_config, const char *label, tj_graph *g);
/* Marks the nodes the output (cut, else the model's output) depends on. */
gf_status tj_graph_select(gf_ctx *ctx, tj_graph *g, const cJSON *model_config, const char *cut,
                          const char *label);
void tj_graph_free(tj_graph *g);
/* Index of the node called name, or -1. */
int tj_graph_find(const tj_graph *g, const char *name);

/* ---- settings of one layer (tfjs_layers.c) ---------------------------------------------- */

/* Fills node's kind and settings from class_name and config. */
gf_status tj_layer_settings(gf_ctx *ctx, tj_node *nd, const cJSON *config, const char *label);
/* Output shapes and parameter counts of the kept nodes in order, checking the weights the
 * manifest holds for each (shapes) and the limits. */
gf_status tj_infer_shapes(gf_ctx *ctx, tj_graph *g, const tj_manifest *m, const char *label);

/* ---- building (tfjs_build.c) and running (tfjs_forward.c) ------------------------------- */

/* The child modules of the kept nodes with their weights from data, added to root. */
gf_status tj_build_modules(gf_ctx *ctx, gf_module *root, tj_graph *g, tj_manifest *m,
                           const uint8_t *data, const char *label);
/* The root module's forward (user: the tj_graph). */
gf_tensor *tj_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user);
/* The graph of m, a module gf_tfjs_load made; NULL with an error naming op otherwise. */
const tj_graph *tj_graph_of(gf_ctx *ctx, const gf_module *m, const char *op);
/* TensorFlow's 'same' padding along one axis: total = max((ceil(in / s) - 1) s + k - in, 0),
 * the odd pixel after (bottom / right). */
void tj_same_pads(int64_t in, int k, int s, int64_t *before, int64_t *after);

/* Error helpers: "LABEL: layer NAME (CLASS): " prefixes. */
gf_status tj_layer_error(gf_ctx *ctx, gf_status s, const char *label, const tj_node *nd,
                         const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

#endif
