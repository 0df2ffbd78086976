/* What code outside src/nn may read of a module beyond the public API (graft/nn.h): the LoRA
 * layers and the teacher cache of src/transfer need a module's requested mode, its forward
 * function and a Linear's or Conv2d's settings. The module's layout itself stays private to
 * src/nn (nn_internal.h). Not installed. */
#ifndef GRAFT_NN_ACCESS_H
#define GRAFT_NN_ACCESS_H

#include "graft/nn.h"

/* The mode last set by gf_module_train on m or an ancestor (true for a new module), whatever
 * gf_module_pin_eval says; gf_module_is_training gives the effective mode. */
bool gf_module_train_requested(const gf_module *m);

/* The forward function m was made with: modules of one kind made elsewhere (LoRA layers) are
 * recognised by it. */
gf_module_forward_fn gf_module_forward_of(const gf_module *m);

/* The sizes, settings and tensors of a Linear or Conv2d layer made by src/nn; for any other
 * module the values its layer settings hold (zeroes and NULL tensors for containers). */
typedef struct gf_nn_affine {
    gf_tensor *weight, *bias; /* borrowed from the layer; bias NULL when it has none */
    int64_t in, out;          /* in/out features (Linear) or channels (Conv2d) */
    int kh, kw;               /* Conv2d kernel size */
    gf_conv_params conv;      /* Conv2d stride, padding, dilation, groups */
} gf_nn_affine;

gf_nn_affine gf_nn_affine_of(const gf_module *m);

/* What the ONNX exporter (src/import/onnx_export*.c) reads of a module: whether it is a layer
 * built by src/nn (its type name then says what it computes) or a container whose forward runs
 * its children in order, and the layer's settings and tensors (borrowed; NULL when absent). */
typedef struct gf_nn_layer_view {
    bool builtin;       /* a layer made by src/nn's constructors (not a container or user module) */
    bool runs_children; /* a container whose forward runs its children in order */
    gf_tensor *weight, *bias, *running_mean, *running_var;
    int64_t in, out, padding_idx;
    gf_conv_params conv; /* Conv1d / Conv2d */
    gf_pool_params pool; /* MaxPool2d / AvgPool2d */
    int kh, kw;          /* kernel size (conv), output size (adaptive pooling) */
    int dim0, dim1;      /* Flatten start/end, Softmax dim, LayerNorm axes */
    int64_t norm_shape[GF_MAX_DIMS];
    float f0, f1;        /* slope, alpha, beta/threshold, dropout p, eps */
    gf_gelu_approx approx;
    int dims;            /* 1 or 2: Conv1d/Conv2d, BatchNorm1d/BatchNorm2d */
    bool track;          /* BatchNorm track_running_stats */
} gf_nn_layer_view;

gf_nn_layer_view gf_nn_layer_view_of(const gf_module *m);

/* The settings of the sequence modules the ONNX exporter writes out: LSTM and GRU, and
 * MultiheadAttention, TransformerEncoderLayer, TransformerEncoder, PositionalEncoding,
 * LearnedPositionalEmbedding and SeqPool (made by src/nn/attention.c); known is false and the
 * rest zero for any other module. */
typedef struct gf_nn_seq_view {
    bool known;
    bool batch_first;
    int rnn_layers, rnn_dirs;      /* LSTM, GRU */
    bool rnn_bias;
    int64_t rnn_input, rnn_hidden;
    int64_t embed_dim, num_heads;  /* MultiheadAttention */
    gf_nn_activation activation;   /* TransformerEncoderLayer */
    bool norm_first, causal;
    int64_t max_len, d_model;      /* the positions */
    gf_tensor *table;              /* PositionalEncoding's pe [max_len, 1, D] or the learned
                                    * weight [max_len, D] (borrowed) */
    gf_nn_seq_pool_mode pool;      /* SeqPool */
} gf_nn_seq_view;

gf_nn_seq_view gf_nn_seq_view_of(const gf_module *m);

#endif
