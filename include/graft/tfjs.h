/* graft tfjs: TensorFlow.js layers models (a model.json of format "layers-model" with its binary
 * weight shards) imported as a graft module. The network becomes a normal module built from
 * graft's layers and ops (Conv2d with groups for depthwise convolutions, BatchNorm2d, Linear,
 * clamp for ReLU6, pad, add, concat, pooling), so it trains, freezes by pattern and takes a new
 * head like any other; docs/TFJS.md lists the layers and the names.
 *
 *     gf_tfjs_options o = gf_tfjs_default_options();
 *     o.cut = "out_relu";                                  // the trunk, without the old head
 *     gf_module *trunk = gf_tfjs_load(ctx, "mobilenet-v2/model.json", &o, NULL);
 *     gf_tensor *y = gf_module_forward(ctx, trunk, x);     // x [N, 3, 224, 224] -> [N, 1280, 7, 7]
 *
 * Layout: TensorFlow.js computes in NHWC with HWIO kernels; the module computes in graft's NCHW
 * with OIHW weights, converted at load. Its input and 4-D outputs are NCHW: the same numbers
 * as TensorFlow.js's, transposed (gf_tfjs_to_nhwc / gf_tfjs_from_nhwc convert). Flatten,
 * Reshape and Dense read their inputs in TensorFlow.js's order, so a flattened feature vector
 * has the file's element order.
 *
 * Names: each layer with weights becomes a child module named after the layer ('.' becomes
 * '_'), with PyTorch's parameter names: Conv1/kernel -> Conv1.weight, Conv1/bias ->
 * Conv1.bias; bn_Conv1/gamma, beta, moving_mean, moving_variance -> bn_Conv1.weight, .bias,
 * .running_mean, .running_var; a SeparableConv2D s -> s.depthwise.weight, s.pointwise.weight,
 * s.pointwise.bias. Layers without weights (activations, padding, pooling, Add, Concatenate,
 * Flatten, Dropout, Reshape) are steps of the root module's forward, not modules.
 *
 * Files are untrusted: the JSON is checked against the context's json-nodes and json-depth
 * limits before it is parsed; shapes, weight sizes and the parameter total (limit params) and
 * each layer's output per example (limit activation) before anything is allocated for them;
 * shard paths must stay inside the model's folder; shards shorter than the manifest, unknown
 * dtypes, quantisation without min and scale, and shapes that do not connect are errors naming
 * the file, the layer or weight, the field, and what was expected and found. */
#ifndef GRAFT_TFJS_H
#define GRAFT_TFJS_H

#include "graft/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gf_tfjs_options {
    /* A layer name: the module ends there, its output is that layer's output, and only the
     * layers it depends on are built (their weights alone are read). NULL: the model's own
     * output (a model with several outputs then needs a cut). */
    const char *cut;
    /* Input height and width to infer the layers' shapes with (the summary and the activation
     * limit); 0: the file's input shape; ignored for a model whose input is not an image. The
     * module itself takes any size its layers allow. */
    int64_t in_h, in_w;
} gf_tfjs_options;

/* cut NULL, the file's input size. */
gf_tfjs_options gf_tfjs_default_options(void);

/* One layer of the file, in the file's order. */
typedef struct gf_tfjs_layer {
    char *name;                       /* the layer's name in the file */
    char *class_name;                 /* "Conv2D", "ReLU", ... */
    char *module;                     /* its child module in the graft model ("Conv1"), NULL for
                                       * a layer without weights or not kept */
    char *inputs;                     /* the layers it reads, comma-separated ("" for the input) */
    int out_ndim;                     /* its output per example in graft's layout ([C, H, W] for
                                       * images, [F] for vectors), -1 for a size the file leaves
                                       * open; out_ndim 0 for a layer not kept */
    int64_t out_shape[GF_MAX_DIMS];
    int64_t params;                   /* parameter elements (BatchNorm statistics not counted) */
    bool kept;                        /* in the module: on the path to its output */
} gf_tfjs_layer;

/* What a model.json holds and what the import made of it. Strings are owned by the struct. */
typedef struct gf_tfjs_info {
    char *source;                     /* the model.json path, or the label given */
    char *model_name;                 /* modelTopology's config.name, or "" */
    char *class_name;                 /* "Functional", "Model" or "Sequential" */
    char *format, *generated_by, *converted_by; /* "" when the file has none */
    char *input_name;                 /* the input layer */
    char *output_name;                /* the module's output layer (the cut, else the model's) */
    int in_ndim;                      /* the module's input per example, graft's layout
                                       * ([3, 224, 224]); -1 for a size the file leaves open */
    int64_t in_shape[GF_MAX_DIMS];
    int out_ndim;                     /* the module's output per example, graft's layout */
    int64_t out_shape[GF_MAX_DIMS];
    int n_layers;
    gf_tfjs_layer *layers;
    int n_weights;                    /* weights in the manifest */
    int weights_used;                 /* of them, loaded into the module */
    int weights_quantized;            /* of them, stored quantised (uint8, uint16, float16) */
    int64_t weight_bytes;             /* bytes of all shards that the manifest describes */
    int64_t params;                   /* parameter elements of the module */
} gf_tfjs_info;

void gf_tfjs_info_free(gf_tfjs_info *info);

/* Loads path (a model.json) and its shards (the manifest's paths, relative to the model.json's
 * folder, read in manifest order) into a new module in evaluation mode (BatchNorm uses the
 * file's moving statistics, Dropout is off: TensorFlow.js's predict), every parameter
 * requiring a gradient. opt NULL: the defaults. info (may be NULL) receives a new summary
 * (gf_tfjs_info_free). NULL with a context error naming the file, the layer or weight, the
 * field, and what was expected and found. */
gf_module *gf_tfjs_load(gf_ctx *ctx, const char *path, const gf_tfjs_options *opt,
                        gf_tfjs_info **info);

/* The same from memory: json (len bytes, the model.json text) and weights (wlen bytes: every
 * weight group's shards concatenated, in manifest order, each group exactly as long as its
 * weights need, as TensorFlow.js writes them; only the last may run on). label names the model
 * in messages (NULL: "model.json"). */
gf_module *gf_tfjs_parse(gf_ctx *ctx, const char *json, size_t len, const uint8_t *weights,
                         size_t wlen, const char *label, const gf_tfjs_options *opt,
                         gf_tfjs_info **info);

/* ---- a classifier on an imported trunk -----------------------------------------------------
 * What `graft finetune --from model.json` trains and what gf_bundle_load rebuilds from the file
 * it writes: a container "TFJSClassifier" with the children `input` (only when the data's
 * samples differ from the model's input: 1 channel -> C repeated or C -> 1 averaged, as timm's
 * adapt_input_conv; height and width resized bilinearly with half-pixel centres), `trunk` (the
 * import, cut), `pool` (global average pooling, for a trunk giving [C, H, W]), `flatten` and
 * `head` (a new Linear to n_classes, PyTorch's initialisation from rng). */
typedef struct gf_tfjs_classifier_params {
    const char *cut;        /* a layer name; NULL or "": the input of the model's last Dense
                             * layer (its classifier), else the model's output */
    int input_size;         /* > 0: images are resized to input_size x input_size; 0: to the
                             * model's own input size (kept when the model leaves it open) */
    int data_ndim;          /* the data's samples: [C, H, W] images or [F] vectors */
    int64_t data_shape[GF_MAX_DIMS];
    int n_classes;          /* the head's outputs (>= 1) */
    bool adapt_channels;    /* false: data with another channel count than the model is an
                             * error (default true) */
} gf_tfjs_classifier_params;

gf_tfjs_classifier_params gf_tfjs_classifier_default_params(void);

/* What gf_tfjs_classifier built. */
typedef struct gf_tfjs_classifier_info {
    char cut[160];          /* the cut used */
    bool cut_default;       /* the rule chose it (params.cut was not given) */
    char adapter[256];      /* what the input adapter does; "" when there is none */
    gf_tfjs_info *trunk;    /* the trunk's summary (free with gf_tfjs_info_free) */
} gf_tfjs_classifier_info;

/* The classifier on path (a model.json) in training mode, or NULL with a context error:
 * GF_ERR_INVALID for data the model cannot take (sample rank, channels without adapt_channels)
 * or a cut whose output is neither [C, H, W] nor [F]; the loader's errors for the file. info
 * (may be NULL) is filled on success; the caller frees info->trunk. */
gf_module *gf_tfjs_classifier(gf_ctx *ctx, const char *path, const gf_tfjs_classifier_params *p,
                              gf_rng *rng, gf_tfjs_classifier_info *info);

/* ---- several cut points in one pass ----------------------------------------------------------
 * Runs m (a module from gf_tfjs_load or gf_tfjs_parse) on x once and puts the outputs of the n
 * layers named in names (the file's layer names, each on the path to m's output) in outs:
 * arena tensors in the layout of gf_module_forward's output (NCHW images). The layers after the
 * last one named are not run. GF_ERR_INVALID naming the layer for a name the model lacks or
 * that m does not compute, or for a module that is not an import. */
gf_status gf_tfjs_forward_layers(gf_ctx *ctx, gf_module *m, gf_tensor *x,
                                 const char *const *names, int n, gf_tensor **outs);

/* The block ends of m (a module from gf_tfjs_load) in the file's order: the layers after which
 * the network is a chain again (no later layer reads a layer before it) that are an Add or
 * Concatenate, are read by several layers, are read by a 1 x 1 stride-1 convolution widening
 * the channels, a pooling or a Flatten layer (where a block or a head starts), or are m's
 * output. For MobileNetV2: block_1_project_BN, block_2_add, ..., block_16_project_BN, out_relu
 * (docs/TFJS.md). Writes at most cap names (borrowed from m) and returns the count, or -1 with
 * a context error when m is not an import. */
int gf_tfjs_block_ends(gf_ctx *ctx, const gf_module *m, const char **names, int cap);

/* True when the file at path looks like a TensorFlow.js model: a JSON object with a
 * "modelTopology" key in its first 64 KiB (TensorFlow.js writes it first). Reads at most that
 * much; gf_tfjs_load checks the rest. */
bool gf_tfjs_is_model_file(const char *path);

/* Layout conversion: a 4-D tensor [N, C, H, W] to [N, H, W, C] and back (arena tensors,
 * contiguous, differentiable); tensors of other ranks are returned as they are. */
gf_tensor *gf_tfjs_to_nhwc(gf_ctx *ctx, gf_tensor *x);
gf_tensor *gf_tfjs_from_nhwc(gf_ctx *ctx, gf_tensor *x);

#ifdef __cplusplus
}
#endif
#endif
