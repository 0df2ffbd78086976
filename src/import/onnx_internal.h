/* Internal layout of an imported ONNX model, shared by the files of src/import: the graph as
 * read from the file (values, nodes, attributes), the op table and the helpers op functions
 * use. The protobuf structures never leave onnx_read.c and onnx_tensor.c: once a file is
 * decoded it is copied into these types and the decoded message is freed. */
#ifndef GRAFT_ONNX_INTERNAL_H
#define GRAFT_ONNX_INTERNAL_H

#include "core/internal.h"
#include "graft/onnx.h"

#include <stdarg.h>

/* The newest default-domain opset whose ops graft knows (ONNX 1.13); a model asking for a
 * newer one is refused rather than run with semantics graft may not have. */
enum { OX_MAX_OPSET = 18 };
/* Nesting of protobuf messages a file may use (ONNX models nest about 8 deep; subgraphs of
 * control-flow ops add a few levels each). Checked before decoding, which recurses. */
enum { OX_MAX_NESTING = 64 };
/* Longest list attribute or list-valued input an op reads (pads, shapes, axes). */
enum { OX_MAX_LIST = 64 };
/* Control flow: If branches nested at most this deep, at most this many branch graphs in a
 * model, and at most this many outputs of an If. */
enum { OX_MAX_IF_DEPTH = 16, OX_MAX_SUBGRAPHS = 4096, OX_MAX_IF_OUT = 4096 };

/* ONNX AttributeProto.AttributeType codes. */
enum {
    OX_A_FLOAT = 1, OX_A_INT = 2, OX_A_STRING = 3, OX_A_TENSOR = 4, OX_A_GRAPH = 5,
    OX_A_FLOATS = 6, OX_A_INTS = 7, OX_A_STRINGS = 8
};

typedef struct ox_attr {
    char *name;
    int type;        /* OX_A_*; other codes are kept but no op reads them */
    float f;
    int64_t i;
    char *s;         /* STRING, NUL-terminated */
    int n;           /* FLOATS / INTS / STRINGS: length */
    float *floats;
    int64_t *ints;
    char **strings;  /* STRINGS, each NUL-terminated */
    gf_tensor *t;    /* TENSOR: persistent, owned; NULL when its type cannot be held */
    int t_elem;      /* TENSOR: ONNX element type */
} ox_attr;

typedef struct ox_opdef ox_opdef;

typedef struct ox_node {
    char *name;      /* "" when the file gives none */
    char *op, *domain;
    int64_t opset;   /* version of its domain's opset */
    int n_in, n_out;
    int *in, *out;   /* value ids; -1: an omitted optional input or output */
    int n_attr;
    ox_attr *attr;
    const ox_opdef *def; /* NULL: unsupported */
    int scope;       /* the graph it belongs to: 0 the model's, else a branch (ox_scope) */
    int sub[2];      /* If: the scopes of then_branch and else_branch; -1: none (an If whose
                        condition was known at load time has its branch inlined) */
} ox_node;

/* A branch graph of an If node. Its nodes are in m->nodes with their scope set; names resolve
 * in the branch, then in the enclosing graphs (ONNX's lexical scoping). The If node's inputs
 * are its condition followed by every value of an enclosing graph that its branches read
 * (captured), so ordering and pruning the enclosing graph see those dependencies. */
typedef struct ox_scope {
    int parent;      /* enclosing scope */
    int node;        /* the If node */
    int depth;       /* 1 for a branch of a node of the model's graph */
    int n_out;
    int *out;        /* value ids of the branch outputs */
    int n_order;     /* the branch's nodes in topological order (once prepared) */
    int *order;
} ox_scope;

typedef enum { OX_V_INPUT, OX_V_PARAM, OX_V_CONST, OX_V_NODE } ox_vkind;

typedef struct ox_value {
    char *name;
    ox_vkind kind;
    int elem;        /* ONNX element type when known, else 0 */
    gf_tensor *t;    /* PARAM, CONST: the value (owned: see below) */
    int producer;    /* node index for OX_V_NODE, else -1 */
    int scope;       /* the graph that names it (0: the model's) */
    int slot;        /* OX_V_INPUT: position among the model's inputs */
    int uses;        /* nodes reading it */
    bool is_init;    /* an initializer of the graph (not a Constant node) */
    bool buffer;     /* PARAM registered as a buffer (BatchNormalization statistics) */
    bool owned;      /* t is the model's to free (false once a module holds it) */
} ox_value;

typedef struct ox_model {
    char *path;      /* the file, for messages */
    char *dir;       /* its folder, for external data; NULL: external data is refused */
    int64_t ir_version, opset;
    char *producer;
    int n_values, cap_values;
    ox_value *values;
    int *hash;       /* open addressing over value names: value id + 1, 0 empty */
    int hash_cap;
    int n_nodes;
    ox_node *nodes;
    int n_order;     /* nodes that run, in topological order */
    int *order;
    int n_scopes;    /* scopes[0] stands for the model's graph (its order is m->order) */
    ox_scope *scopes;
    int n_in, n_out;
    int *in_ids, *out_ids;
    gf_onnx_value_info *in_info, *out_info;
    bool random;     /* a node draws random numbers */
    int n_inlined;   /* If nodes decided at load time */
    int64_t decoded_bytes; /* what decoding allocated (for tests) */
} ox_model;

/* ---- reading (onnx_read.c, onnx_tensor.c) ---------------------------------------------------- */

/* Decodes a whole file's bytes into a new model (graph as in the file, nothing run or pruned).
 * dir: folder for external data (NULL: refused). NULL with a ctx error. */
ox_model *ox_model_read(gf_ctx *ctx, const uint8_t *data, size_t size, const char *path,
                        const char *dir);
void ox_model_free(ox_model *m);
/* Reads a file into memory after checking its size against the data-bytes limit. */
uint8_t *ox_read_file(gf_ctx *ctx, const char *path, size_t *size);
/* Frees a value info's strings and zeroes it. */
void ox_info_clear(gf_onnx_value_info *o);
/* Value id of name in the model's graph, or -1. */
int ox_value_find(const ox_model *m, const char *name);
/* Value id of name as a node of scope sees it (the scope, then the enclosing ones), or -1. */
int ox_value_find_in(const ox_model *m, int scope, const char *name);

/* "file: node 'name' (Op, opset N): " into buf, for messages about one node. */
const char *ox_node_where(const ox_model *m, const ox_node *n, char *buf, size_t cap);

/* ---- the op table (onnx_ops.c) --------------------------------------------------------------- */

typedef struct ox_exec {
    gf_ctx *ctx;
    const ox_model *m;
    const ox_node *node;
    int n_in, n_out;
    gf_tensor **in;   /* NULL for an omitted optional input */
    gf_tensor **out;  /* filled by the op; out[k] of an omitted output may stay NULL */
    bool training;    /* the module is in training mode */
} ox_exec;

typedef bool (*ox_fn)(ox_exec *e);

enum {
    OX_RANDOM = 1u,   /* draws random numbers: never folded at load time */
};

struct ox_opdef {
    const char *op;
    int since;           /* the first opset version graft runs */
    int min_in, max_in;  /* inputs: required, allowed */
    int max_out;
    unsigned weights;    /* bitmask of inputs whose float initializers are parameters */
    unsigned values;     /* bitmask of inputs read as settings (Clip bounds, Resize scales):
                            their float initializers stay constants */
    unsigned buffers;    /* bitmask of inputs whose float initializers are buffers */
    ox_fn fn;
    unsigned flags;
};

/* Puts every node into m->order (topological, the whole graph): for listing a file. */
bool ox_order_all(gf_ctx *ctx, ox_model *m);
/* Sorts the float constants into parameters, buffers and constants by how the nodes of
 * m->order (their def set) read them: initializers (true) or Constant / folded values (false). */
void ox_classify(ox_model *m, bool initializers);
/* The definition of op in domain at opset (NULL: unsupported; *why says why). */
const ox_opdef *ox_op_find(const char *domain, const char *op, int64_t opset, const char **why);
/* Every op type the table knows, NULL-terminated (for the docs test). */
const char *const *ox_op_names(void);

/* ---- helpers for op functions (onnx_util.c) ------------------------------------------------- */

/* Sets a ctx error (the node is named by the caller's prefix); returns false. */
bool ox_fail(ox_exec *e, gf_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
const ox_attr *ox_attr_get(const ox_node *n, const char *name);
int64_t ox_attr_int(const ox_node *n, const char *name, int64_t dflt);
float ox_attr_float(const ox_node *n, const char *name, float dflt);
const char *ox_attr_str(const ox_node *n, const char *name, const char *dflt);
/* An INTS attribute: its length (0 when absent) and values. */
int ox_attr_ints(const ox_node *n, const char *name, const int64_t **vals);
/* An input holding a list of integers (a shape, axes, pads): at most cap values into dst;
 * returns the count, or -1 with an error (not int64, longer than cap, more than 1-D). */
int ox_input_ints(ox_exec *e, int idx, int64_t *dst, int cap);
/* An input holding one number (float or int, any rank of one element). false with an error. */
bool ox_input_scalar(ox_exec *e, int idx, double *out);
/* Requires input idx to be present and of dtype dt. */
bool ox_need(ox_exec *e, int idx, gf_dtype dt);
/* A float32 copy of an int64 tensor (no gradient), or t itself when it is float32. */
gf_tensor *ox_as_f32(ox_exec *e, gf_tensor *t);
gf_tensor *ox_as_i64(ox_exec *e, gf_tensor *t);
/* Normalises axis into [0, rank) (negative from the end); false with an error. */
bool ox_axis(ox_exec *e, int64_t axis, int rank, int *out);
/* Refuses a tensor of numel elements that a node would make from values in the file (a
 * ConstantOfShape, Expand, Tile, Range): more than the activation limit. */
bool ox_check_numel(ox_exec *e, int64_t numel, const char *what);
/* a * b for element counts: INT64_MAX when either is negative or the product overflows (any
 * check against a limit then refuses it). */
static inline int64_t ox_mul(int64_t a, int64_t b) {
    if (a < 0 || b < 0) return INT64_MAX;
    return b && a > INT64_MAX / b ? INT64_MAX : a * b;
}

/* Refuses an output of numel elements that is larger than both the activation limit and the
 * largest input it is made from (broadcasting, padding: sizes a file can blow up). */
bool ox_check_grow(ox_exec *e, int64_t numel, int64_t largest_input, const char *what);
/* ox_check_grow for the broadcast of a and b. */
bool ox_check_bcast(ox_exec *e, const gf_tensor *a, const gf_tensor *b);
/* A float constant of the given shape filled with v (arena). */
gf_tensor *ox_full(ox_exec *e, int ndim, const int64_t *shape, float v);
/* An int64 arena tensor of shape [n] holding vals. */
gf_tensor *ox_i64_vec(ox_exec *e, int64_t n, const int64_t *vals);
/* An int64 scalar/list output of rank ndim. */
gf_tensor *ox_i64_empty(ox_exec *e, int ndim, const int64_t *shape);

/* ---- the op functions, by family (onnx_op_*.c), for the table -------------------------------- */
#define OX_OP_FUNCTIONS(X)                                                                 \
    /* onnx_op_elem.c */                                                                   \
    X(add) X(sub) X(mul) X(div) X(pow) X(mod) X(bitshift) X(compare) X(logical) X(not)      \
    X(isinf) X(isnan) X(where) X(unary) X(erf) X(relu) X(sigmoid) X(tanh) X(leaky_relu)     \
    X(elu) X(selu) X(celu) X(hard_sigmoid) X(hard_swish) X(softplus) X(softsign)            \
    X(thresholded_relu) X(shrink) X(gelu) X(prelu) X(clip) X(minmax) X(sum) X(mean)          \
    /* onnx_op_shape.c */                                                                  \
    X(identity) X(reshape) X(flatten) X(transpose) X(squeeze) X(unsqueeze) X(concat)        \
    X(split) X(slice) X(gather) X(gather_elements) X(gather_nd) X(shape) X(size)            \
    X(constant_of_shape) X(constant) X(cast) X(cast_like)                                   \
    /* onnx_op_make.c */                                                                   \
    X(pad) X(expand) X(tile) X(depth_to_space) X(space_to_depth) X(trilu) X(compress)       \
    X(range) X(eye_like) X(one_hot) X(nonzero)                                              \
    /* onnx_op_conv.c */                                                                   \
    X(conv) X(conv_transpose) X(max_pool) X(average_pool) X(global_pool)                    \
    /* onnx_op_nn.c */                                                                     \
    X(gemm) X(matmul) X(batch_norm) X(instance_norm) X(layer_norm) X(mvn) X(lrn)            \
    X(dropout) X(softmax) X(hardmax) X(nll_loss) X(sce_loss)                                \
    /* onnx_op_reduce.c */                                                                 \
    X(reduce) X(argmax) X(cumsum) X(topk)                                                   \
    /* onnx_op_resize.c */                                                                 \
    X(resize) X(upsample)                                                                   \
    /* onnx_op_scatter.c */                                                                \
    X(scatter_elements) X(scatter_nd) X(reverse_sequence)                                   \
    /* onnx_op_rnn.c */                                                                    \
    X(rnn) X(gru) X(lstm)                                                                   \
    /* onnx_op_misc.c */                                                                   \
    X(window) X(quantize) X(dequantize) X(dynamic_quantize) X(max_unpool) X(det) X(unique)  \
    /* onnx_op_einsum.c, onnx_op_grid.c, onnx_op_detect.c */                               \
    X(einsum) X(grid_sample) X(nms)                                                         \
    /* onnx_op_qlinear.c */                                                                \
    X(matmul_integer) X(qlinear_matmul) X(conv_integer) X(qlinear_conv)                    \
    /* onnx_model.c: If (run by the graph runner; the function passes an inlined branch's    \
       outputs through) */                                                                 \
    X(if)
#define OX_DECL(name) bool ox_op_##name(ox_exec *e);
OX_OP_FUNCTIONS(OX_DECL)
#undef OX_DECL

#endif
