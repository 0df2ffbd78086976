/* Which ONNX nodes each module becomes (inference form): a walk of the module tree where every
 * layer built by src/nn maps to its op (Linear -> Gemm, Conv2d -> Conv, BatchNorm ->
 * BatchNormalization with the running statistics, Dropout -> nothing, ...), containers running
 * their children in order chain them, and the zoo's containers with their own forward
 * (BasicBlock, Bottleneck, MLP, the ResNets) are written out as that forward. Layers that change
 * the shape also run on the batch-of-one sample, so the attributes that depend on the input's
 * size (adaptive pooling, Flatten of some axes) are known. */
#include "import/onnx_export_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef bool (*ex_emit_fn)(ex_graph *g, const gf_module *m, const char *path,
                           const gf_nn_layer_view *v, ex_val *x);

static const char *show(const char *path) { return path[0] ? path : "(root)"; }

bool ex_refuse(ex_graph *g, const gf_module *m, const char *path, const char *why) {
    if (gf_ctx_status(g->ctx) == GF_OK)
        gf_ctx_set_error(g->ctx, GF_ERR_INVALID, "onnx export: module %s (%s): %s", show(path),
                         gf_module_type(m), why);
    return false;
}

#define refuse ex_refuse

/* x->t becomes m's output on the sample: the shape its ONNX nodes give. */
static bool run_sample(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    /* a leaf layer's forward in the run context changes nothing of the module (no gradients;
     * only shape-changing layers run here, never BatchNorm or Dropout) */
    gf_tensor *y = gf_module_forward(g->run, (gf_module *)m, x->t);
    if (!y) {
        char why[600];
        snprintf(why, sizeof why, "does not run on the sample: %s", gf_ctx_error(g->run));
        return refuse(g, m, path, why);
    }
    x->t = y;
    return true;
}

/* Sets x->name to the output of the last node emitted (NULL: failed). */
static bool next(ex_val *x, const char *name) {
    x->name = name;
    return name != NULL;
}

static const char *param(ex_graph *g, const char *path, const char *name, const gf_tensor *t) {
    char *full = ex_join(g, path, name);
    return full ? ex_initializer(g, full, t) : NULL;
}

static const char *const_scalar(ex_graph *g, const char *path, float v) {
    return ex_const_f32(g, path, 0, NULL, &v);
}

/* A float constant of shape dims[0..ndim) filled with v (non-affine normalisations). */
static const char *const_filled(ex_graph *g, const char *path, int ndim, const int64_t *dims,
                                float v) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    float *data = ex_alloc(g, sizeof *data * (size_t)n);
    if (!data) return NULL;
    for (int64_t i = 0; i < n; i++) data[i] = v;
    return ex_const_f32(g, path, ndim, dims, data);
}

/* ---- affine layers ----------------------------------------------------------------------------- */

/* Gemm(x, W, b, transB = 1) for x [N, in]; otherwise MatMul(x, Transpose(W)) + b. */
static bool emit_linear(ex_graph *g, const gf_module *m, const char *path,
                        const gf_nn_layer_view *v, ex_val *x) {
    const char *w = param(g, path, "weight", v->weight);
    const char *b = v->bias ? param(g, path, "bias", v->bias) : NULL;
    if (!w || (v->bias && !b)) return false;
    const int rank = x->t->ndim;
    if (!run_sample(g, m, path, x)) return false;
    if (rank == 2) {
        const char *in[3] = {x->name, w, b};
        Onnx__NodeProto *n = ex_node(g, path, "Gemm", b ? 3 : 2, in);
        return n && ex_attr_int(g, n, "transB", 1) && next(x, n->output[0]);
    }
    Onnx__NodeProto *t = ex_node(g, path, "Transpose", 1, &w);
    const char *y = t ? ex_binary(g, path, "MatMul", x->name, t->output[0]) : NULL;
    return next(x, b && y ? ex_binary(g, path, "Add", y, b) : y);
}

/* Conv with kernel_shape, strides, pads, dilations and group (1-d or 2-d). */
static bool emit_conv(ex_graph *g, const gf_module *m, const char *path,
                      const gf_nn_layer_view *v, ex_val *x) {
    const char *w = param(g, path, "weight", v->weight);
    const char *b = v->bias ? param(g, path, "bias", v->bias) : NULL;
    if (!w || (v->bias && !b) || !run_sample(g, m, path, x)) return false;
    const gf_conv_params *c = &v->conv;
    const int k = v->dims == 2 ? 2 : 1;
    const int64_t kernel[2] = {k == 2 ? v->kh : v->kw, v->kw};
    const int64_t strides[2] = {c->stride[0], c->stride[1]};
    const int64_t dil[2] = {c->dilation[0], c->dilation[1]};
    const int64_t pads[4] = {c->padding[0], k == 2 ? c->padding[1] : c->padding[0],
                             c->padding[0], c->padding[1]};
    const char *in[3] = {x->name, w, b};
    Onnx__NodeProto *n = ex_node(g, path, "Conv", b ? 3 : 2, in);
    return n && ex_attr_ints(g, n, "kernel_shape", k, kernel) &&
           ex_attr_ints(g, n, "strides", k, strides) && ex_attr_ints(g, n, "dilations", k, dil) &&
           ex_attr_ints(g, n, "pads", 2 * k, pads) && ex_attr_int(g, n, "group", c->groups) &&
           next(x, n->output[0]);
}

/* ---- normalisation --------------------------------------------------------------------------- */

/* BatchNormalization(x, scale, B, running_mean, running_var): inference form. */
static bool emit_batch_norm(ex_graph *g, const gf_module *m, const char *path,
                            const gf_nn_layer_view *v, ex_val *x) {
    if (!v->track || !v->running_mean || !v->running_var)
        return refuse(g, m, path, "normalises with the batch's statistics even in evaluation "
                      "(track_running_stats false): ONNX's BatchNormalization needs running ones");
    const int64_t c = v->in;
    const char *scale = v->weight ? param(g, path, "weight", v->weight)
                                  : const_filled(g, path, 1, &c, 1.0f);
    const char *bias = v->bias ? param(g, path, "bias", v->bias) : const_filled(g, path, 1, &c, 0.0f);
    const char *in[5] = {x->name, scale, bias, param(g, path, "running_mean", v->running_mean),
                         param(g, path, "running_var", v->running_var)};
    for (int i = 1; i < 5; i++)
        if (!in[i]) return false;
    Onnx__NodeProto *n = ex_node(g, path, "BatchNormalization", 5, in);
    return n && ex_attr_float(g, n, "epsilon", v->f0) && next(x, n->output[0]);
}

/* LayerNormalization(x, scale, bias, axis = -k). */
static bool emit_layer_norm(ex_graph *g, const gf_module *m, const char *path,
                            const gf_nn_layer_view *v, ex_val *x) {
    (void)m;
    const int k = v->dim0;
    const char *scale = v->weight ? param(g, path, "weight", v->weight)
                                  : const_filled(g, path, k, v->norm_shape, 1.0f);
    const char *bias = v->bias ? param(g, path, "bias", v->bias) : NULL;
    if (!scale || (v->bias && !bias)) return false;
    const char *in[3] = {x->name, scale, bias};
    Onnx__NodeProto *n = ex_node(g, path, "LayerNormalization", bias ? 3 : 2, in);
    return n && ex_attr_int(g, n, "axis", -k) && ex_attr_float(g, n, "epsilon", v->f0) &&
           next(x, n->output[0]);
}

/* ---- pooling, shapes ---------------------------------------------------------------------------- */

static bool emit_pool(ex_graph *g, const gf_module *m, const char *path,
                      const gf_nn_layer_view *v, ex_val *x) {
    if (!run_sample(g, m, path, x)) return false;
    const gf_pool_params *p = &v->pool;
    const bool max = strcmp(gf_module_type(m), "MaxPool2d") == 0;
    const int64_t kernel[2] = {p->kernel[0], p->kernel[1]};
    const int64_t strides[2] = {p->stride[0] ? p->stride[0] : p->kernel[0],
                                p->stride[1] ? p->stride[1] : p->kernel[1]};
    const int64_t pads[4] = {p->padding[0], p->padding[1], p->padding[0], p->padding[1]};
    const int64_t dil[2] = {p->dilation[0], p->dilation[1]};
    Onnx__NodeProto *n = ex_node(g, path, max ? "MaxPool" : "AveragePool", 1, &x->name);
    bool ok = n && ex_attr_ints(g, n, "kernel_shape", 2, kernel) &&
              ex_attr_ints(g, n, "strides", 2, strides) && ex_attr_ints(g, n, "pads", 4, pads) &&
              ex_attr_int(g, n, "ceil_mode", p->ceil_mode);
    if (ok && max) ok = ex_attr_ints(g, n, "dilations", 2, dil);
    if (ok && !max) ok = ex_attr_int(g, n, "count_include_pad", p->count_include_pad);
    return ok && next(x, n->output[0]);
}

/* GlobalAveragePool for a 1x1 output; AveragePool of kernel = stride = input / output when the
 * input's size is a multiple of the output's (PyTorch's bins are then those windows). */
static bool emit_adaptive(ex_graph *g, const gf_module *m, const char *path,
                          const gf_nn_layer_view *v, ex_val *x) {
    if (x->t->ndim != 4) return refuse(g, m, path, "expects an input [N, C, H, W]");
    const int64_t h = x->t->shape[2], w = x->t->shape[3];
    if (!run_sample(g, m, path, x)) return false;
    if (v->kh == 1 && v->kw == 1) return next(x, ex_unary(g, path, "GlobalAveragePool", x->name));
    if (h % v->kh || w % v->kw) {
        char why[256];
        snprintf(why, sizeof why, "output size %dx%d from an input of %lldx%lld: ONNX has no "
                 "adaptive pooling, and the input is not a multiple of the output (export with "
                 "another sample size)", v->kh, v->kw, (long long)h, (long long)w);
        return refuse(g, m, path, why);
    }
    const int64_t k[2] = {h / v->kh, w / v->kw}, pads[4] = {0, 0, 0, 0};
    Onnx__NodeProto *n = ex_node(g, path, "AveragePool", 1, &x->name);
    return n && ex_attr_ints(g, n, "kernel_shape", 2, k) && ex_attr_ints(g, n, "strides", 2, k) &&
           ex_attr_ints(g, n, "pads", 4, pads) && next(x, n->output[0]);
}

/* Flatten(axis = 1) for PyTorch's default (1, -1); otherwise Reshape to [0 (kept) ..., -1,
 * the sizes after end_dim]. */
static bool emit_flatten(ex_graph *g, const gf_module *m, const char *path,
                         const gf_nn_layer_view *v, ex_val *x) {
    const int r = x->t->ndim;
    const int s = v->dim0 < 0 ? v->dim0 + r : v->dim0, e = v->dim1 < 0 ? v->dim1 + r : v->dim1;
    if (s == 0 && e > 0)
        return refuse(g, m, path, "start_dim 0 merges the batch dimension, which the exported "
                      "model keeps symbolic");
    gf_tensor *before = x->t;
    if (!run_sample(g, m, path, x)) return false;
    if (s >= e) return true; /* nothing merged: the same tensor */
    if (s == 1 && e == r - 1) {
        Onnx__NodeProto *n = ex_node(g, path, "Flatten", 1, &x->name);
        return n && ex_attr_int(g, n, "axis", 1) && next(x, n->output[0]);
    }
    int64_t shape[GF_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < s; i++) shape[k++] = 0;
    shape[k++] = -1;
    for (int i = e + 1; i < r; i++) shape[k++] = before->shape[i];
    return next(x, ex_binary(g, path, "Reshape", x->name, ex_const_i64(g, path, k, shape)));
}

/* Gather(weight, ids) along axis 0, the float ids cast to int64 first. */
static bool emit_embedding(ex_graph *g, const gf_module *m, const char *path,
                           const gf_nn_layer_view *v, ex_val *x) {
    const char *w = param(g, path, "weight", v->weight);
    const bool cast = x->t->dtype == GF_F32;
    if (!w || !run_sample(g, m, path, x)) return false;
    const char *ids = x->name;
    if (cast) {
        Onnx__NodeProto *c = ex_node(g, path, "Cast", 1, &ids);
        if (!c || !ex_attr_int(g, c, "to", GF_ONNX_INT64)) return false;
        ids = c->output[0];
    }
    Onnx__NodeProto *n = ex_node(g, path, "Gather", 2, (const char *[]){w, ids});
    return n && ex_attr_int(g, n, "axis", 0) && next(x, n->output[0]);
}

static bool emit_rnn(ex_graph *g, const gf_module *m, const char *path,
                     const gf_nn_layer_view *v, ex_val *x) {
    (void)v;
    return ex_rnn(g, m, path, x);
}

static bool emit_identity(ex_graph *g, const gf_module *m, const char *path,
                          const gf_nn_layer_view *v, ex_val *x) {
    (void)g, (void)m, (void)path, (void)v, (void)x;
    return true; /* Dropout in inference, Identity: no node */
}

/* ---- activations --------------------------------------------------------------------------------- */

static bool emit_plain(ex_graph *g, const gf_module *m, const char *path,
                       const gf_nn_layer_view *v, ex_val *x) {
    (void)v;
    static const char *const ops[][2] = {{"ReLU", "Relu"}, {"Sigmoid", "Sigmoid"}, {"Tanh", "Tanh"}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(gf_module_type(m), ops[i][0]) == 0) return next(x, ex_unary(g, path, ops[i][1], x->name));
    return refuse(g, m, path, "no ONNX op for this activation");
}

/* LeakyRelu(alpha), Elu(alpha). */
static bool emit_alpha(ex_graph *g, const gf_module *m, const char *path,
                       const gf_nn_layer_view *v, ex_val *x) {
    const bool leaky = strcmp(gf_module_type(m), "LeakyReLU") == 0;
    Onnx__NodeProto *n = ex_node(g, path, leaky ? "LeakyRelu" : "Elu", 1, &x->name);
    return n && ex_attr_float(g, n, "alpha", v->f0) && next(x, n->output[0]);
}

static bool emit_silu(ex_graph *g, const gf_module *m, const char *path,
                      const gf_nn_layer_view *v, ex_val *x) {
    (void)m, (void)v;
    return next(x, ex_binary(g, path, "Mul", x->name, ex_unary(g, path, "Sigmoid", x->name)));
}

/* Opset 17 has no Gelu: exact 0.5 x (1 + erf(x / sqrt 2)), as torch.onnx writes it; tanh
 * 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))). */
static bool emit_gelu(ex_graph *g, const gf_module *m, const char *path,
                      const gf_nn_layer_view *v, ex_val *x) {
    (void)m;
    const char *in = x->name, *inner;
    if (v->approx == GF_GELU_TANH) {
        const char *x3 = ex_binary(g, path, "Mul", ex_binary(g, path, "Mul", in, in), in);
        const char *s = ex_binary(g, path, "Add", in,
                                  ex_binary(g, path, "Mul", x3, const_scalar(g, path, 0.044715f)));
        inner = ex_unary(g, path, "Tanh", ex_binary(g, path, "Mul", s,
                                                    const_scalar(g, path, 0.7978845608f)));
    } else {
        inner = ex_unary(g, path, "Erf", ex_binary(g, path, "Div", in,
                                                   const_scalar(g, path, 1.4142135381f)));
    }
    const char *one = ex_binary(g, path, "Add", inner, const_scalar(g, path, 1.0f));
    const char *y = ex_binary(g, path, "Mul", in, one);
    return next(x, ex_binary(g, path, "Mul", y, const_scalar(g, path, 0.5f)));
}

/* Softplus for beta 1 and threshold >= 20 (above it softplus(x) and x agree in float32);
 * otherwise torch's form: where(beta x > threshold, x, softplus(beta x) / beta). */
static bool emit_softplus(ex_graph *g, const gf_module *m, const char *path,
                          const gf_nn_layer_view *v, ex_val *x) {
    (void)m;
    if (v->f0 == 1.0f && v->f1 >= 20.0f) return next(x, ex_unary(g, path, "Softplus", x->name));
    const char *bx = ex_binary(g, path, "Mul", x->name, const_scalar(g, path, v->f0));
    const char *sp = ex_binary(g, path, "Div", ex_unary(g, path, "Softplus", bx),
                               const_scalar(g, path, v->f0));
    const char *big = ex_binary(g, path, "Greater", bx, const_scalar(g, path, v->f1));
    if (!sp || !big) return false;
    Onnx__NodeProto *n = ex_node(g, path, "Where", 3, (const char *[]){big, x->name, sp});
    return n && next(x, n->output[0]);
}

static bool emit_softmax(ex_graph *g, const gf_module *m, const char *path,
                         const gf_nn_layer_view *v, ex_val *x) {
    const bool log = strcmp(gf_module_type(m), "LogSoftmax") == 0;
    Onnx__NodeProto *n = ex_node(g, path, log ? "LogSoftmax" : "Softmax", 1, &x->name);
    return n && ex_attr_int(g, n, "axis", v->dim0) && next(x, n->output[0]);
}

/* ---- the table of layers ------------------------------------------------------------------------ */

static const struct {
    const char *type;
    ex_emit_fn fn;
} layers[] = {
    {"Linear", emit_linear},       {"Conv1d", emit_conv},
    {"Conv2d", emit_conv},         {"BatchNorm1d", emit_batch_norm},
    {"BatchNorm2d", emit_batch_norm}, {"LayerNorm", emit_layer_norm},
    {"Dropout", emit_identity},    {"Identity", emit_identity},
    {"MaxPool2d", emit_pool},      {"AvgPool2d", emit_pool},
    {"AdaptiveAvgPool2d", emit_adaptive}, {"Flatten", emit_flatten},
    {"Embedding", emit_embedding}, {"ReLU", emit_plain},
    {"Sigmoid", emit_plain},       {"Tanh", emit_plain},
    {"LeakyReLU", emit_alpha},     {"ELU", emit_alpha},
    {"SiLU", emit_silu},           {"GELU", emit_gelu},
    {"Softplus", emit_softplus},   {"Softmax", emit_softmax},
    {"LogSoftmax", emit_softmax},  {"LSTM", emit_rnn},
    {"GRU", emit_rnn},             {"EmbeddingBag", ex_embedding_bag},
};

/* ---- containers ----------------------------------------------------------------------------------- */

bool ex_child(ex_graph *g, const gf_module *m, const char *path, const char *name,
              ex_val *x) {
    const gf_module *c = gf_module_child(m, name);
    if (!c) {
        char why[160];
        snprintf(why, sizeof why, "has no child \"%s\", which its forward runs", name);
        return refuse(g, m, path, why);
    }
    const char *sub = ex_join(g, path, name);
    return sub && ex_module(g, c, sub, x);
}

static bool emit_children(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    for (int i = 0; i < gf_module_num_children(m); i++) {
        const char *name;
        const gf_module *c = gf_module_child_at(m, i, &name);
        const char *sub = ex_join(g, path, name);
        if (!sub || !ex_module(g, c, sub, x)) return false;
    }
    return true;
}

static bool emit_list(ex_graph *g, const gf_module *m, const char *path,
                      const char *const *names, int n, ex_val *x) {
    for (int i = 0; i < n; i++)
        if (!ex_child(g, m, path, names[i], x)) return false;
    return true;
}

/* torchvision's BasicBlock / Bottleneck: relu(branch(x) + downsample(x) or x). */
static bool emit_block(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    static const char *const basic[] = {"conv1", "bn1", "relu", "conv2", "bn2"};
    static const char *const bottle[] = {"conv1", "bn1", "relu", "conv2", "bn2",
                                         "relu",  "conv3", "bn3"};
    const bool b = strcmp(gf_module_type(m), "Bottleneck") == 0;
    ex_val identity = *x;
    if (!emit_list(g, m, path, b ? bottle : basic, b ? 8 : 5, x)) return false;
    if (gf_module_child(m, "downsample") && !ex_child(g, m, path, "downsample", &identity))
        return false;
    if (!next(x, ex_binary(g, path, "Add", x->name, identity.name))) return false;
    return ex_child(g, m, path, "relu", x);
}

/* Flatten(axis 1) of the input (the MLP) or before fc (the ResNets). */
static bool flatten1(ex_graph *g, const char *path, ex_val *x) {
    gf_tensor *t = gf_flatten(g->run, x->t, 1, -1);
    Onnx__NodeProto *n = t ? ex_node(g, path, "Flatten", 1, &x->name) : NULL;
    x->t = t;
    return n && ex_attr_int(g, n, "axis", 1) && next(x, n->output[0]);
}

/* The zoo's MLP (flatten, layers, head) and ResNets (trunk, flatten, fc). */
static bool emit_zoo(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    static const char *const mini[] = {"conv1", "bn1", "relu", "layer1", "layer2", "layer3",
                                       "avgpool"};
    static const char *const tv[] = {"conv1",  "bn1",    "relu",   "maxpool", "layer1",
                                     "layer2", "layer3", "layer4", "avgpool"};
    const char *type = gf_module_type(m);
    if (strcmp(type, "MLP") == 0)
        return flatten1(g, path, x) && ex_child(g, m, path, "layers", x) &&
               ex_child(g, m, path, "head", x);
    const bool is_mini = strcmp(type, "ResNetMini") == 0;
    return emit_list(g, m, path, is_mini ? mini : tv, is_mini ? 7 : 9, x) &&
           flatten1(g, path, x) && ex_child(g, m, path, "fc", x);
}

static const struct {
    const char *type;
    bool (*fn)(ex_graph *, const gf_module *, const char *, ex_val *);
} containers[] = {
    {"BasicBlock", emit_block}, {"Bottleneck", emit_block}, {"MLP", emit_zoo},
    {"ResNetMini", emit_zoo},   {"ResNet18", emit_zoo},     {"ResNet34", emit_zoo},
    {"ResNet50", emit_zoo},
};

bool ex_module(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    if (g->failed || !x->name || !x->t) return false;
    const gf_nn_layer_view v = gf_nn_layer_view_of(m);
    const char *type = gf_module_type(m);
    if (v.runs_children) return emit_children(g, m, path, x);
    if (v.builtin) {
        for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
            if (strcmp(layers[i].type, type) == 0) return layers[i].fn(g, m, path, &v, x);
    } else {
        for (size_t i = 0; i < sizeof containers / sizeof containers[0]; i++)
            if (strcmp(containers[i].type, type) == 0) return containers[i].fn(g, m, path, x);
        if (ex_is_seq_container(type)) return ex_seq_container(g, m, path, x);
    }
    return refuse(g, m, path, "graft does not export this module type to ONNX (exported: "
                  "Sequential and containers running their children in order, Linear, Conv1d, "
                  "Conv2d, BatchNorm1d/2d, LayerNorm, Dropout, Identity, MaxPool2d, AvgPool2d, "
                  "AdaptiveAvgPool2d, Flatten, Embedding, EmbeddingBag, the activations, LSTM, GRU, "
                  "MultiheadAttention, TransformerEncoder(Layer), the positions, SeqPool, "
                  "TextClassifier, BasicBlock, Bottleneck and the zoo's MLP and ResNets; see "
                  "docs/IMPORT.md, \"Export\")");
}
