/* graft spec: models described in a small JSON file with PyTorch's layer names, built into a
 * module tree and checked by a dry forward pass, so a shape that cannot connect is reported
 * with the layer's path and both shapes before any training starts. docs/CLI.md has the format. */
#ifndef GRAFT_SPEC_H
#define GRAFT_SPEC_H

#include "graft/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the format, in short ----------------------------------------------------------------
 * A layer is an object {"type": T, ...settings}. T is a torch.nn class name, matched without
 * case and underscores ("Conv2d", "conv2d", "max_pool2d" are one type):
 *   linear        in, out, bias (true)
 *   conv2d        in, out, kernel (int or [h, w]), stride (1), padding (0), dilation (1),
 *                 groups (1), bias (true)
 *   conv1d        in, out, kernel, stride, padding, dilation, groups, bias (ints)
 *   batchnorm1d / batchnorm2d   features, eps (1e-5), momentum (0.1), affine (true),
 *                 track_running_stats (true)
 *   layernorm     shape (int or list), eps (1e-5), elementwise_affine (true)
 *   dropout       p (0.5)
 *   maxpool2d / avgpool2d       kernel, stride (= kernel), padding (0)
 *   adaptiveavgpool2d           output (int or [h, w])
 *   flatten       start_dim (1), end_dim (-1)
 *   identity, relu, silu, sigmoid, tanh
 *   leakyrelu     negative_slope (0.01);  elu  alpha (1);  gelu  approximate ("none"|"tanh")
 *   softplus      beta (1), threshold (20);  softmax / logsoftmax  dim (1)
 *   basicblock    in, out, stride (1): torchvision's ResNet BasicBlock
 *   multiheadattention  embed_dim, num_heads, dropout (0), bias (true), batch_first (true)
 *   transformerencoderlayer  d_model, nhead, dim_feedforward (2048), dropout (0.1),
 *                 activation ("relu"|"gelu"), layer_norm_eps (1e-5), norm_first, causal (false)
 *   transformerencoder  the layer's settings, num_layers, norm (false)
 *   positionalencoding  d_model, dropout (0.1), max_len (5000), kind ("sinusoidal"|"learned")
 *   seqpool       mode ("mean"|"max"|"last"|"first"): [T, D] -> [D]
 *   textclassifier  num_embeddings, d_model, nhead, num_layers, out, positions
 *                 ("sinusoidal"|"learned"|"none"), max_len, pool, and the layer's settings:
 *                 token ids [T] -> [out] (docs/NN.md)
 *   (the sequence layers are batch-first: batch_first may only be true; d_model / embed_dim
 *   may be left out when the input shape is known)
 *   sequential    children: a list (named "0", "1", ...) or an object (named by its keys)
 *   container     children: an object {name: layer} run in order; "name": the type name
 *                 shown in messages (default "Container"), like a custom nn.Module class
 * PyTorch's argument names are accepted as aliases: in_features / in_channels / inplanes
 * for "in", out_features / out_channels / planes for "out", kernel_size for "kernel",
 * num_features for "features", normalized_shape for "shape", output_size for "output".
 * "in" / "features" may be left out when the input shape is known: they are then taken from
 * the shape reaching the layer (as torch.nn.LazyLinear does). The root object may also hold
 * "input": the sample shape without the batch dimension, e.g. [1, 28, 28], or "data" (the
 * same as leaving it out: the shape of the data the model is built for, gf_spec_params).
 * "out" (linear, conv1d, conv2d, basicblock) may be "classes": the class count of that data
 * (gf_spec_params.n_classes), so one spec fits any classification data.
 * Unknown keys, unknown types, wrong value kinds and duplicate keys are errors that name the
 * layer's path and the key.
 * Limits (ctx's gf_limits), checked before anything is allocated: the text against json-nodes
 * and json-depth before it is parsed; each layer's weights from its settings (the model's
 * running total of parameter and buffer elements against params) and, with an input shape
 * known, its output per example against activation. A 100-byte spec declaring a
 * 10^9-channel convolution fails in microseconds, naming the layer. */

typedef struct gf_spec_params {
    const char *label;      /* names the spec in messages (a file path); NULL: "model spec" */
    /* Sample shape of the data the model will see (without the batch dimension), or
     * in_ndim 0 to use the spec's "input" (and no shape check when it has none). When both
     * are given they must agree. */
    int in_ndim;
    int64_t in_shape[GF_MAX_DIMS];
    gf_rng *rng;            /* draws the initial weights; NULL: the context RNG */
    int64_t n_classes;      /* what "out": "classes" stands for; 0: not known (such a layer is
                             * then an error naming it) */
    int64_t vocab_size;     /* what "num_embeddings": "vocab" (or leaving it out) stands for:
                             * the text data's vocabulary size; 0: not known */
} gf_spec_params;

gf_spec_params gf_spec_default_params(void);

/* One module of the built tree, in pre-order (the root first, with path ""). */
typedef struct gf_spec_layer {
    char path[128];         /* dotted module path */
    char type[48];          /* gf_module_type */
    int depth;              /* 0 for the root */
    int out_ndim;           /* output sample shape; 0 when no input shape was known */
    int64_t out_shape[GF_MAX_DIMS];
    int64_t params;         /* parameter elements of this module and its descendants */
} gf_spec_layer;

typedef struct gf_spec_summary {
    int in_ndim;                     /* 0: no input shape known */
    int64_t in_shape[GF_MAX_DIMS];
    int out_ndim;                    /* the model's output sample shape, e.g. [10] */
    int64_t out_shape[GF_MAX_DIMS];
    int n_layers;
    gf_spec_layer *layers;
    bool input_from_data;            /* "input" is "data" */
    bool uses_classes;               /* some "out" is "classes" */
} gf_spec_summary;

void gf_spec_summary_free(gf_spec_summary *s);

/* Builds the model described by text (len bytes of JSON, need not be NUL-terminated). With an
 * input shape known, every layer is run on a zero batch of 2 as it is built (in evaluation
 * mode, without autograd, in a scratch context: ctx's arena is untouched), which fills in
 * left-out "in" sizes and reports a shape that cannot connect as
 *   "model spec net.json: shapes do not connect at classifier.1 (linear): it gets [2, 3136]
 *    but expects [N, 6272]".
 * Returns a new module (free with gf_module_free) in training mode, or NULL with a ctx error.
 * summary (may be NULL) receives a new summary (free with gf_spec_summary_free). */
gf_module *gf_spec_parse(gf_ctx *ctx, const char *text, size_t len, const gf_spec_params *p,
                         gf_spec_summary **summary);
/* The same from a file (p->label NULL: the path names it). */
gf_module *gf_spec_load(gf_ctx *ctx, const char *path, const gf_spec_params *p,
                        gf_spec_summary **summary);

/* The spec text as built with p: minified, its "input" set to p's input shape (when p gives
 * one), every "out": "classes" replaced by p->n_classes and every "num_embeddings": "vocab"
 * (or left out) of an embedding layer by p->vocab_size, so the text describes the model
 * on its own (what a weights file stores). Returns a new string (free with free()), or NULL
 * with a ctx error (invalid JSON, "classes" with no class count). */
char *gf_spec_resolve(gf_ctx *ctx, const char *text, size_t len, const gf_spec_params *p);
/* The spec text (minified) with the "out" of the layer at module path (dotted, as in
 * state_dict names: "fc", "classifier.4") set to out: the spec of the model after its head
 * was replaced. NULL with a ctx error when path names no layer of the spec. */
char *gf_spec_set_out(gf_ctx *ctx, const char *text, size_t len, const char *path, int64_t out);

/* The layer type names understood, NULL-terminated (lowercase, as listed above). */
const char *const *gf_spec_layer_types(void);

#ifdef __cplusplus
}
#endif
#endif
