/* graft onnx: ONNX models (.onnx files) as graft modules. The graph's float initializers become
 * named parameters (trainable, freezable by pattern like any module's), its nodes run in
 * topological order as graft ops, so gradients flow through an imported network; a cut name
 * makes any intermediate tensor the module's output, for a new head on top. docs/IMPORT.md
 * lists the supported ops, their opsets and what is refused.
 *
 * Files are untrusted: the file size, the decoded size and every tensor's element count are
 * checked against the context's limits (gf_limits: "data-bytes", "params", "activation")
 * before anything is allocated, and external data files must lie inside the model's folder.
 * Built without protobuf-c or onnx.proto, every function here fails with a message saying so
 * (gf_onnx_available() is false). */
#ifndef GRAFT_ONNX_H
#define GRAFT_ONNX_H

#include "graft/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True when this build can read ONNX files. */
bool gf_onnx_available(void);

typedef struct gf_onnx_options {
    /* A tensor name (a node output, an input or an initializer) or a node name (its first
     * output): the module's only output becomes that tensor, and every node it does not need
     * is dropped with the initializers only they used. NULL: the graph's outputs. */
    const char *cut;
    /* Several such names (n_cuts > 0, in place of cut): every one becomes an output of the
     * module, in this order, so one gf_onnx_run computes the tensors of several cut points
     * (graft probe); the nodes none of them needs are dropped. */
    const char *const *cuts;
    int n_cuts;
    /* Evaluates, once at load time, every node whose inputs are all constants (int64 shape
     * arithmetic such as Shape -> Gather -> Concat -> Reshape on constant inputs, folded
     * Constant weights' transposes). Default true. */
    bool fold_constants;
} gf_onnx_options;

gf_onnx_options gf_onnx_default_options(void);

/* Loads an ONNX model as a module, in evaluation mode (Dropout inactive; BatchNormalization
 * always normalises with its running statistics, ONNX's inference mode). Parameters and
 * buffers carry the initializers' names: a name with dots ("features.0.weight") is nested in
 * child containers as PyTorch's state_dict names are, so gf_transfer_freeze(ctx, m, "features.*")
 * works on an exported torchvision model. Running means and variances of BatchNormalization
 * are buffers; integer initializers are constants, not tensors of the module. Returns NULL
 * with a context error naming the file, the node, its op type and opset, and what was expected
 * and found; an unsupported op names the first one and counts the others (gf_onnx_inspect lists
 * them all). opt NULL: defaults. */
gf_module *gf_onnx_load(gf_ctx *ctx, const char *path, const gf_onnx_options *opt);
/* The same from a buffer (external data is refused: there is no folder). name is used in
 * messages. */
gf_module *gf_onnx_load_memory(gf_ctx *ctx, const void *data, size_t size, const char *name,
                               const gf_onnx_options *opt);

/* True when m was made by gf_onnx_load. */
bool gf_onnx_is_model(const gf_module *m);

/* ---- what a model takes and gives ----------------------------------------------------------- */

/* ONNX element types (TensorProto.DataType), the ones graft reads. FLOAT, DOUBLE, FLOAT16 and
 * BFLOAT16 values are held as float32; integer and bool values as int64. */
enum {
    GF_ONNX_FLOAT = 1, GF_ONNX_UINT8 = 2, GF_ONNX_INT8 = 3, GF_ONNX_UINT16 = 4,
    GF_ONNX_INT16 = 5, GF_ONNX_INT32 = 6, GF_ONNX_INT64 = 7, GF_ONNX_STRING = 8,
    GF_ONNX_BOOL = 9, GF_ONNX_FLOAT16 = 10, GF_ONNX_DOUBLE = 11, GF_ONNX_UINT32 = 12,
    GF_ONNX_UINT64 = 13, GF_ONNX_BFLOAT16 = 16
};
/* "float32", "int64", "bool", ...; "?" for an unknown code. */
const char *gf_onnx_type_name(int elem_type);
/* The graft dtype an ONNX element type is held in; false when graft cannot hold it (strings,
 * complex numbers, unknown codes). */
bool gf_onnx_type_dtype(int elem_type, gf_dtype *out);

typedef struct gf_onnx_value_info {
    char *name;
    int elem_type;               /* GF_ONNX_*; 0: not declared */
    int ndim;                    /* -1: rank not declared */
    int64_t dims[GF_MAX_DIMS];   /* -1: symbolic or unknown */
    char *dim_names[GF_MAX_DIMS];/* a symbolic dimension's name ("batch"), else NULL */
    bool is_tensor;              /* false: a sequence, map or optional value */
} gf_onnx_value_info;

/* The inputs a model's module takes (graph inputs without an initializer, in graph order) and
 * the outputs it gives (the graph's, or the cut tensor). Borrowed from m; n_* may be 0. */
int gf_onnx_num_inputs(const gf_module *m);
const gf_onnx_value_info *gf_onnx_input(const gf_module *m, int i);
int gf_onnx_num_outputs(const gf_module *m);
const gf_onnx_value_info *gf_onnx_output(const gf_module *m, int i);

/* Runs m on inputs in[0..n_in) (in gf_onnx_input order; float32 or int64 tensors as the model
 * declares them) and writes up to max_out outputs (arena tensors, valid until gf_ctx_reset) in
 * gf_onnx_output order. Returns the number of outputs, or -1 with a context error. The module's
 * plain forward (gf_module_forward) does the same for a model of one input and returns its
 * first output. */
int gf_onnx_run(gf_ctx *ctx, gf_module *m, int n_in, gf_tensor *const *in, gf_tensor **out,
                int max_out);

/* ---- writing a module as an ONNX file --------------------------------------------------------
 * The module's inference form as an ONNX graph (opset GF_ONNX_EXPORT_OPSET, IR version 8):
 * Dropout left out, BatchNorm with its running statistics. One float input [batch, sample...]
 * whose first dimension is symbolic ("batch"), one float output. Parameters and BatchNorm
 * statistics become initializers named as the module's state_dict (features.0.weight,
 * bn1.running_mean; num_batches_tracked is left out), the weights as they are (Gemm with
 * transB, Conv's [out, in/groups, kh, kw]), so the file loads back into the same names.
 * Exported: Sequential and containers running their children in order; Linear, Conv1d, Conv2d
 * (stride, padding, dilation, groups), BatchNorm1d/2d (tracking running statistics),
 * LayerNorm, Dropout, Identity, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (to 1x1, or to a size
 * dividing the input's), Flatten, Embedding, ReLU, LeakyReLU, ELU, GELU, SiLU, Sigmoid, Tanh,
 * Softplus, Softmax, LogSoftmax; the zoo's BasicBlock, Bottleneck, MLP and ResNet containers.
 * Any other module (LSTM, attention, a container with its own forward) is refused with an
 * error naming its path and type. docs/IMPORT.md ("Export") has the op each becomes. */
#define GF_ONNX_EXPORT_OPSET 17

typedef struct gf_onnx_export_options {
    const char *input_name;  /* "input" */
    const char *output_name; /* "output" */
    int64_t batch;           /* 0: a symbolic batch dimension "batch"; > 0: that fixed size */
    /* The input normalisation as the model's first nodes, Sub(mean) then Div(std) over the
     * sample's first dimension (the channels; norm_channels 1: one value for all), the same
     * float arithmetic as gf_tf_normalize, so the file takes inputs before normalisation
     * (images scaled to [0, 1]). norm_channels 0: none, the inputs come normalised. */
    int norm_channels;
    const float *norm_mean, *norm_std;
} gf_onnx_export_options;

gf_onnx_export_options gf_onnx_export_default_options(void);

/* Writes m as an ONNX model to path, atomically (the old file, if any, stays on failure).
 * sample_shape [ndim] is one example's shape, without the batch dimension ([1, 28, 28] for
 * MNIST images, [F] for a table): sizes the convolutions and pooling see are fixed by it. The
 * module is only read (its mode and tensors stay as they are). opt NULL: defaults. */
gf_status gf_onnx_export(gf_ctx *ctx, const gf_module *m, int ndim, const int64_t *sample_shape,
                         const char *path, const gf_onnx_export_options *opt);
/* The same into a new buffer (free it with free()); *size gets its length. NULL with a context
 * error. */
void *gf_onnx_export_memory(gf_ctx *ctx, const gf_module *m, int ndim,
                            const int64_t *sample_shape, const gf_onnx_export_options *opt,
                            size_t *size);

/* ---- looking into a file without building it ----------------------------------------------- */

typedef struct gf_onnx_op_use {
    char *op;       /* op_type */
    char *domain;   /* "" for the default domain */
    int count;      /* nodes */
    bool supported; /* graft runs it at this opset */
} gf_onnx_op_use;

typedef struct gf_onnx_cut_point {
    char *tensor;   /* the name to give as gf_onnx_options.cut */
    char *node;     /* the node producing it (may be "") */
    char *op;       /* its op type */
    /* A block end: a float tensor computed from the inputs after which the graph is a chain
     * again (no later node reads a node output computed before it), which is read by a later
     * node that is not an activation (Relu, Clip, Sigmoid, HardSwish, ..., or a Max or Min of
     * it and constants), a BatchNormalization or a Dropout — where a layer or a residual block is complete; not a
     * Flatten's output (its input, pooled, is the same features); and not past the input of the last Gemm or MatMul (the classifier), when there is one.
     * The points graft probe's --cut-sweep cuts at (docs/TRANSFER.md). */
    bool block_end;
} gf_onnx_cut_point;

typedef struct gf_onnx_info {
    int64_t ir_version;
    int64_t opset;                 /* of the default domain */
    char *producer;                /* "pytorch 2.1.0", or "" */
    int n_inputs, n_outputs;
    gf_onnx_value_info *inputs, *outputs;
    int n_ops;                     /* distinct op types, in order of first use */
    gf_onnx_op_use *ops;
    int n_nodes;
    int n_unsupported;             /* nodes graft cannot run */
    char **unsupported;            /* one line per such node: op, node name, opset, reason */
    int64_t n_params;              /* elements of the initializers that become parameters (not
                                      buffers such as BatchNorm statistics, nor settings) */
    int n_param_tensors;
    int n_initializers;
    int n_cuts;                    /* node outputs in topological order */
    gf_onnx_cut_point *cuts;
    bool random;                   /* uses random numbers (Dropout in training, Random*) */
} gf_onnx_info;

/* Reads path and describes it; works for models with unsupported ops (they are listed, all of
 * them). NULL with a context error for a file that cannot be read or decoded. */
gf_onnx_info *gf_onnx_inspect(gf_ctx *ctx, const char *path);
void gf_onnx_info_free(gf_onnx_info *info);

/* ---- single tensors ------------------------------------------------------------------------- */

/* Reads a serialized TensorProto (the input_N.pb / output_N.pb files of ONNX's test data) as a
 * new persistent tensor (free with gf_tensor_free). *name (when not NULL) receives a malloc'd
 * copy of its name ("" when it has none); *elem_type its ONNX type. NULL with a context error. */
gf_tensor *gf_onnx_read_tensor(gf_ctx *ctx, const char *path, char **name, int *elem_type);

#ifdef __cplusplus
}
#endif
#endif
