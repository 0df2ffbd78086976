/* graft nn: PyTorch-style modules (torch.nn). A module is a tree node holding named parameters,
 * named buffers and named children; its tensors carry PyTorch's state_dict names and order. */
#ifndef GRAFT_NN_H
#define GRAFT_NN_H

#include "graft/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- ownership, in one place -----------------------------------------------------------
 * - A constructor (gf_nn_*) returns a new module, or NULL with a context error naming the
 *   module and the bad values. The caller owns a module until it is added to a parent.
 * - gf_module_add / _append / _replace / gf_nn_sequential_of TAKE OWNERSHIP of the child:
 *   on failure they free it, except a child that already belongs to a tree (it has a parent,
 *   or it is an ancestor of the new parent), which is left where it is. A NULL child (a failed
 *   constructor) makes them return that error quietly, so a model can be built in a few
 *   calls and checked once.
 * - gf_module_free frees a module, all its descendants, their parameters and buffers (and
 *   the gradients of those). Freeing a module that still has a parent detaches it first.
 * - Parameters and buffers are persistent tensors owned by their module; pointers returned by
 *   lookups are borrowed and valid until the module is freed.
 * - gf_module_forward returns an arena tensor (valid until gf_ctx_reset), like every op.
 * - Modules start in training mode with every parameter requiring a gradient (as PyTorch). */

typedef struct gf_module gf_module;

/* A forward function: self is the module being run, user the pointer given at creation. */
typedef gf_tensor *(*gf_module_forward_fn)(gf_ctx *ctx, gf_module *self, gf_tensor *x,
                                           void *user);

/* Runs m on x. NULL (with a ctx error) on failure; the first failure inside a module tree is
 * reported with the innermost failing module's dotted path and type, e.g.
 * "module features.0 (Conv2d): expected input [N, 3, H, W], got [2, 5, 8, 8]". NULL m or x:
 * NULL, keeping an earlier error (or setting one when there is none). */
gf_tensor *gf_module_forward(gf_ctx *ctx, gf_module *m, gf_tensor *x);
void gf_module_free(gf_module *m);

/* "Linear", "Sequential", the name given to gf_nn_container, ... Never NULL for a module. */
const char *gf_module_type(const gf_module *m);
/* Sets training (true) or evaluation (false) mode on m and every descendant (torch's
 * module.train(mode) / module.eval()). Affects BatchNorm and Dropout. */
void gf_module_train(gf_module *m, bool training);
bool gf_module_is_training(const gf_module *m);
/* Pins m (only m, not its descendants) to evaluation mode: while pinned, gf_module_train
 * leaves it in eval mode (e.g. a BatchNorm whose statistics must not move; see transfer.h).
 * Unpinning restores the mode last asked of it by gf_module_train. */
void gf_module_pin_eval(gf_module *m, bool pinned);
bool gf_module_eval_pinned(const gf_module *m);

/* ---- sequences of different lengths ----------------------------------------------------
 * A batch of sequences is right-padded to a common length: x [N, T, ...] (or [T, N, ...] for a
 * module that is not batch_first), and lengths, an int64 vector [N] with values in [0, T],
 * says how many leading steps of each example are real (PyTorch's packed sequences and key
 * padding masks). A sequence module (LSTM, GRU, MultiheadAttention, TransformerEncoderLayer,
 * sequence pooling) uses the lengths: padded steps neither change its state nor are attended
 * to, and its output there is 0. */
typedef gf_tensor *(*gf_module_seq_forward_fn)(gf_ctx *ctx, gf_module *self, gf_tensor *x,
                                               gf_tensor *lengths, void *user);
/* Runs m on x with per-example lengths: a sequence module gets them; a container running its
 * children in order hands them to each child; any other module (Linear, Dropout, LayerNorm:
 * per position) runs as gf_module_forward. lengths NULL: gf_module_forward (every step real). */
gf_tensor *gf_module_forward_seq(gf_ctx *ctx, gf_module *m, gf_tensor *x, gf_tensor *lengths);
/* Makes m a sequence module (its plain forward still runs when no lengths are given). */
void gf_module_set_seq_forward(gf_module *m, gf_module_seq_forward_fn fn);
bool gf_module_is_seq(const gf_module *m);

/* ---- running one model in several threads (data parallelism: graft/train.h, gf_replicas) --
 * Marks a module made by gf_nn_container with its own forward function as reentrant: the
 * forward changes nothing but the context it is given (no module fields, no globals), so
 * several threads may run it at once, each with its own context. Built-in layers and
 * containers that run their children in order need no mark. */
void gf_module_set_reentrant(gf_module *m, bool reentrant);
/* True when m's forward, in the mode it is in now, may run in several threads at once on
 * different contexts and slices of a batch with the same result as on the whole batch (up to
 * float rounding): every module of the tree is a built-in layer, a container running its
 * children in order, or marked reentrant. A BatchNorm on batch statistics qualifies because
 * gf_replicas exchanges them between the replicas (see gf_module_uses_batch_stats). When false
 * and why is not NULL, why gets a message naming the first module that is not. */
bool gf_module_replicable(const gf_module *m, char *why, size_t why_len);
/* True when some BatchNorm of m's tree normalises with batch statistics in the mode it is in
 * now (training, or no running statistics): its output then depends on the whole batch. */
bool gf_module_uses_batch_stats(const gf_module *m);

/* ---- containers ------------------------------------------------------------------------ */

/* torch.nn.Sequential: runs children in order; gf_module_append names them "0", "1", ... */
gf_module *gf_nn_sequential(gf_ctx *ctx);
/* A Sequential holding children[0..n) (takes ownership of all of them, even on failure). */
gf_module *gf_nn_sequential_of(gf_ctx *ctx, int n, gf_module *const *children);
/* A container with children named by the caller (features, classifier, fc, ...). type_name
 * is copied (at most 47 characters). forward NULL: run the children in order. user is passed
 * to forward; user_free (may be NULL) is called on it when the module is freed. */
gf_module *gf_nn_container(gf_ctx *ctx, const char *type_name, gf_module_forward_fn forward,
                           void *user, void (*user_free)(void *));
/* User pointer given to gf_nn_container (NULL for built-in modules). */
void *gf_module_user(const gf_module *m);

/* Adds child under name (non-empty, no '.', not yet used in parent by a child, parameter or
 * buffer). The child must not already have a parent. Takes ownership of child. */
gf_status gf_module_add(gf_ctx *ctx, gf_module *parent, const char *name, gf_module *child);
/* Adds child named by the current number of children ("0", "1", ...). Takes ownership. */
gf_status gf_module_append(gf_ctx *ctx, gf_module *parent, gf_module *child);
/* Replaces the descendant at dotted path (e.g. "fc" or "layer1.0.downsample") with child,
 * keeping its name and position; the old module is freed. Takes ownership of child. */
gf_status gf_module_replace(gf_ctx *ctx, gf_module *root, const char *path, gf_module *child);
/* Like gf_module_replace, but returns the old module (now owned by the caller, detached)
 * instead of freeing it; NULL with a ctx error (child not taken: the caller still owns it)
 * when there is no such path or child already has a parent. */
gf_module *gf_module_swap(gf_ctx *ctx, gf_module *root, const char *path, gf_module *child);
/* Removes the descendant at path from its parent and returns it (now owned by the caller).
 * NULL with a ctx error when there is none. */
gf_module *gf_module_detach(gf_ctx *ctx, gf_module *root, const char *path);

int gf_module_num_children(const gf_module *m);
/* i-th child (borrowed) and, when name is not NULL, its name (borrowed). NULL if out of range. */
gf_module *gf_module_child_at(const gf_module *m, int i, const char **name);
/* Descendant at a dotted path ("features.0"), borrowed; NULL when there is none. */
gf_module *gf_module_child(const gf_module *m, const char *path);

/* ---- parameters and buffers ------------------------------------------------------------
 * Names are PyTorch's state_dict keys: "<child>.<child>.<name>". Order is torch's: a module's
 * own parameters (in registration order), then its buffers, then each child's in turn. */

/* Registers a persistent tensor as a parameter / buffer of m under name. Takes ownership of t
 * (freed on failure too). A parameter keeps t->requires_grad as set by the caller. */
gf_status gf_module_add_parameter(gf_ctx *ctx, gf_module *m, const char *name, gf_tensor *t);
gf_status gf_module_add_buffer(gf_ctx *ctx, gf_module *m, const char *name, gf_tensor *t);

typedef enum gf_state_filter {
    GF_STATE_PARAMS = 1,  /* named_parameters() */
    GF_STATE_BUFFERS = 2, /* named_buffers() */
    GF_STATE_ALL = 3      /* state_dict(): parameters and buffers interleaved per module */
} gf_state_filter;

/* New list of m's tensors in state_dict order (gf_named_tensors, graft/tensor.h; free with
 * gf_named_tensors_free; the tensors stay the module's). NULL with a ctx error on out-of-memory
 * or NULL m. */
gf_named_tensors *gf_module_named_tensors(gf_ctx *ctx, const gf_module *m, gf_state_filter which);

/* Parameter or buffer at a dotted name (borrowed), or NULL; when ctx is not NULL a miss sets
 * an error naming the key and the module type. */
gf_tensor *gf_module_tensor(gf_ctx *ctx, const gf_module *m, const char *name);
/* Copies data (numel elements of dt, contiguous) into the tensor at name after checking that
 * dtype and shape match exactly (load_state_dict for one key). */
gf_status gf_module_load(gf_ctx *ctx, gf_module *m, const char *name, gf_dtype dt, int ndim,
                         const int64_t *shape, const void *data);

/* Number of parameter elements (sum of numel), all or only those requiring a gradient. */
int64_t gf_module_param_count(const gf_module *m, bool trainable_only);
/* Sets requires_grad on every parameter of m and its descendants (false frees their gradient
 * buffers). For one tensor use gf_tensor_set_requires_grad(gf_module_tensor(...), ...). */
void gf_module_set_requires_grad(gf_module *m, bool requires_grad);
/* Zeroes the gradients of every parameter that has one. */
void gf_module_zero_grad(gf_module *m);

/* ---- initialisation (torch.nn.init) -----------------------------------------------------
 * Each fills a float32 tensor in place from rng (NULL: the context RNG) and returns GF_OK, or
 * an error for a NULL / non-f32 tensor or one whose fan cannot be computed. */
typedef enum gf_fan_mode { GF_FAN_IN = 0, GF_FAN_OUT = 1 } gf_fan_mode;
/* fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field (ndim >= 2). */
int64_t gf_nn_fan(const gf_tensor *t, gf_fan_mode mode);
gf_status gf_nn_init_uniform(gf_ctx *ctx, gf_tensor *t, gf_rng *rng, float lo, float hi);
gf_status gf_nn_init_normal(gf_ctx *ctx, gf_tensor *t, gf_rng *rng, float mean, float std);
gf_status gf_nn_init_constant(gf_ctx *ctx, gf_tensor *t, float value);
/* kaiming_uniform_ / kaiming_normal_ with the leaky_relu gain sqrt(2 / (1 + a^2)) (a = 0 is
 * relu's gain). Linear/Conv defaults are kaiming_uniform with a = sqrt(5): U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)). */
gf_status gf_nn_init_kaiming_uniform(gf_ctx *ctx, gf_tensor *t, gf_rng *rng, float a,
                                     gf_fan_mode mode);
gf_status gf_nn_init_kaiming_normal(gf_ctx *ctx, gf_tensor *t, gf_rng *rng, float a,
                                    gf_fan_mode mode);
/* xavier_uniform_: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)). */
gf_status gf_nn_init_xavier_uniform(gf_ctx *ctx, gf_tensor *t, gf_rng *rng, float gain);

/* ---- layers ------------------------------------------------------------------------------
 * rng (NULL: the context RNG) draws the initial weights exactly as PyTorch's defaults do
 * (weight first, then bias), so the same seed gives the same model. */

/* weight [out, in], bias [out]; y = x W^T + b over the last axis of x [*, in]. */
gf_module *gf_nn_linear(gf_ctx *ctx, gf_rng *rng, int64_t in_features, int64_t out_features,
                        bool bias);
/* weight [out, in/groups, kh, kw], bias [out]; p NULL: gf_conv_default_params(). groups must
 * divide both channel counts (groups == in == out is depthwise). */
gf_module *gf_nn_conv2d(gf_ctx *ctx, gf_rng *rng, int64_t in_channels, int64_t out_channels,
                        int kh, int kw, const gf_conv_params *p, bool bias);
/* weight [out, in/groups, k]; uses index 0 of p's stride/padding/dilation. */
gf_module *gf_nn_conv1d(gf_ctx *ctx, gf_rng *rng, int64_t in_channels, int64_t out_channels,
                        int kernel, const gf_conv_params *p, bool bias);

typedef struct gf_bn_params {
    float eps;                /* 1e-5 */
    float momentum;           /* 0.1; negative: None (cumulative average, 1/num_batches) */
    bool affine;              /* true: parameters weight [C] = 1, bias [C] = 0 */
    bool track_running_stats; /* true: buffers running_mean [C] = 0, running_var [C] = 1,
                                 num_batches_tracked (int64, shape []) = 0 */
} gf_bn_params;
gf_bn_params gf_bn_default_params(void);
/* Training: normalise with batch statistics and (when tracking) update the running ones and
 * add 1 to num_batches_tracked. Eval: use the running statistics (batch ones when not
 * tracking). 1d takes [N, C] or [N, C, L]; 2d takes [N, C, H, W]. p NULL: defaults. */
gf_module *gf_nn_batch_norm1d(gf_ctx *ctx, int64_t num_features, const gf_bn_params *p);
gf_module *gf_nn_batch_norm2d(gf_ctx *ctx, int64_t num_features, const gf_bn_params *p);
/* Normalises over the trailing n_axes axes of the given shape; weight = 1, bias = 0 of that
 * shape when elementwise_affine. */
gf_module *gf_nn_layer_norm(gf_ctx *ctx, int n_axes, const int64_t *normalized_shape,
                            float eps, bool elementwise_affine);
/* Zeroes elements with probability p (context RNG) in training, scaling the rest by
 * 1/(1-p); identity in evaluation. */
gf_module *gf_nn_dropout(gf_ctx *ctx, float p);
/* weight [num, dim] ~ N(0, 1); the row padding_idx is zeroed and gets no gradient.
 * padding_idx < 0: none (unlike torch, negative values do not count from the end). Input:
 * indices of any shape -> [*, dim], int64 or float32 holding whole numbers (a text dataset's
 * token ids). */
gf_module *gf_nn_embedding(gf_ctx *ctx, gf_rng *rng, int64_t num_embeddings,
                           int64_t embedding_dim, int64_t padding_idx);

/* torch.nn.EmbeddingBag's reductions. */
typedef enum gf_nn_bag_mode { GF_NN_BAG_MEAN = 0, GF_NN_BAG_SUM, GF_NN_BAG_MAX } gf_nn_bag_mode;
/* torch.nn.EmbeddingBag on a batch of bags of the same length: ids [N, T] (int64, or float32
 * whole numbers: a text dataset's padded token ids) -> [N, dim], each row's embeddings summed,
 * averaged or maxed over its ids other than padding_idx (those are left out of the count, as
 * in torch; a bag of padding only gives zeros). weight [num, dim] ~ N(0, 1), the padding row
 * zeroed. padding_idx < 0: none. The averaged-word-vectors classifier ("fastText") is this
 * with a Linear on top, and --vectors fills its weight like an Embedding's. */
gf_module *gf_nn_embedding_bag(gf_ctx *ctx, gf_rng *rng, int64_t num_embeddings,
                               int64_t embedding_dim, gf_nn_bag_mode mode, int64_t padding_idx);

gf_module *gf_nn_max_pool2d(gf_ctx *ctx, const gf_pool_params *p);
gf_module *gf_nn_avg_pool2d(gf_ctx *ctx, const gf_pool_params *p);
gf_module *gf_nn_adaptive_avg_pool2d(gf_ctx *ctx, int out_h, int out_w);
/* torch.nn.Flatten(start_dim, end_dim); PyTorch's default is (1, -1). */
gf_module *gf_nn_flatten(gf_ctx *ctx, int start_dim, int end_dim);
gf_module *gf_nn_identity(gf_ctx *ctx);

gf_module *gf_nn_relu(gf_ctx *ctx);
gf_module *gf_nn_leaky_relu(gf_ctx *ctx, float negative_slope);    /* torch: 0.01 */
gf_module *gf_nn_elu(gf_ctx *ctx, float alpha);                    /* torch: 1.0 */
gf_module *gf_nn_gelu(gf_ctx *ctx, gf_gelu_approx approximate);    /* torch: exact */
gf_module *gf_nn_silu(gf_ctx *ctx);
gf_module *gf_nn_sigmoid(gf_ctx *ctx);
gf_module *gf_nn_tanh(gf_ctx *ctx);
gf_module *gf_nn_softplus(gf_ctx *ctx, float beta, float threshold); /* torch: 1, 20 */
gf_module *gf_nn_softmax(gf_ctx *ctx, int dim);
gf_module *gf_nn_log_softmax(gf_ctx *ctx, int dim);

/* torchvision's ResNet BasicBlock (expansion 1): children conv1 (3x3, stride, no bias), bn1,
 * relu, conv2 (3x3, no bias), bn2 and, when stride != 1 or inplanes != planes, downsample =
 * Sequential(1x1 conv with stride and no bias, BatchNorm2d). Forward:
 * relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x) or x). Default PyTorch init. */
gf_module *gf_nn_basic_block(gf_ctx *ctx, gf_rng *rng, int64_t inplanes, int64_t planes,
                             int stride);

/* torchvision's ResNet Bottleneck (expansion 4, the stride on the 3x3 convolution as in
 * ResNet v1.5): children conv1 (1x1, inplanes -> planes), bn1, conv2 (3x3, stride, padding 1),
 * bn2, conv3 (1x1, planes -> 4 * planes), bn3, relu, all convolutions without bias, and, when
 * stride != 1 or inplanes != 4 * planes, downsample = Sequential(1x1 conv with stride,
 * BatchNorm2d). Forward: relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) +
 * downsample(x) or x). Output channels: 4 * planes. Default PyTorch init. */
#define GF_BOTTLENECK_EXPANSION 4
gf_module *gf_nn_bottleneck(gf_ctx *ctx, gf_rng *rng, int64_t inplanes, int64_t planes,
                            int stride);

/* ---- recurrent layers (src/nn/rnn.c) -------------------------------------------------------
 * torch.nn.LSTM and torch.nn.GRU. Parameters per layer k and direction, in torch's names and
 * order: weight_ih_l{k} [G*H, in], weight_hh_l{k} [G*H, H], bias_ih_l{k}, bias_hh_l{k} [G*H]
 * (G = 4 for LSTM, 3 for GRU; in = input_size for k = 0, D*H above; the reverse direction's
 * names end in _reverse), all drawn from U(-1/sqrt(H), 1/sqrt(H)) in that order.
 * gf_module_forward takes x [N, T, input_size] (batch_first) or [T, N, input_size] and gives
 * the last layer's outputs [N, T, D*H] or [T, N, D*H] (D = 2 when bidirectional: forward
 * and reverse halves side by side); an unbatched x [T, input_size] gives [T, D*H] (states
 * then [num_layers * D, H]), as torch. gf_module_forward_seq uses lengths as
 * pack_padded_sequence does (graft/ops.h, gf_lstm_layer): outputs at padded steps are 0.
 * Dropout (training mode only) applies to the outputs of every layer but the last. */
typedef struct gf_nn_rnn_params {
    int64_t input_size, hidden_size;
    int num_layers;     /* 1 */
    bool bias;          /* true */
    bool batch_first;   /* false, as torch */
    float dropout;      /* 0 */
    bool bidirectional; /* false */
} gf_nn_rnn_params;
/* torch's defaults for the given sizes. */
gf_nn_rnn_params gf_nn_rnn_default_params(int64_t input_size, int64_t hidden_size);
gf_module *gf_nn_lstm(gf_ctx *ctx, gf_rng *rng, const gf_nn_rnn_params *p);
gf_module *gf_nn_gru(gf_ctx *ctx, gf_rng *rng, const gf_nn_rnn_params *p);
/* Runs an LSTM or GRU module with explicit states: lengths (int64 [N]), h0 and c0 (LSTM only)
 * [num_layers * D, N, H] may each be NULL (all steps real, zero states). Returns the output
 * sequence; *h_n and *c_n (when not NULL) get the final states [num_layers * D, N, H] in
 * torch's order (layer by layer, forward before reverse); *c_n is NULL for a GRU. */
gf_tensor *gf_nn_rnn_run(gf_ctx *ctx, gf_module *m, gf_tensor *x, gf_tensor *lengths,
                         gf_tensor *h0, gf_tensor *c0, gf_tensor **h_n, gf_tensor **c_n);
/* ---- attention, the Transformer encoder, positions, pooling over time -----------------------
 * (src/nn/attention.c.) Sequence layouts: batch_first [N, T, D], otherwise [T, N, D], as in
 * PyTorch. Run with gf_module_forward_seq and lengths, each of these treats steps at or after
 * an example's length as padding: keys there are masked, and the output there is 0. */

/* torch.nn.MultiheadAttention(embed_dim, num_heads, dropout, bias, batch_first): parameters
 * in_proj_weight [3E, E] (xavier_uniform), in_proj_bias [3E] (zeros; with bias), child
 * out_proj = Linear(E, E) (default init, bias zeroed). Its module forward is self-attention
 * on x; its seq forward turns lengths into the key padding mask. embed_dim must be divisible
 * by num_heads. */
gf_module *gf_nn_multihead_attention(gf_ctx *ctx, gf_rng *rng, int64_t embed_dim,
                                     int64_t num_heads, float dropout, bool bias,
                                     bool batch_first);
/* mha(query, key, value, key_padding_mask, need_weights, attn_mask) with query [N, Lq, E]
 * and key, value [N, Lk, E] (or [L, N, E] when not batch_first). key_lengths (int64 [N] or
 * NULL) masks keys j >= key_lengths[n]; causal masks keys j > i. weights (may be NULL: PyTorch's
 * need_weights=False) receives the attention weights averaged over heads [N, Lq, Lk], an arena
 * tensor without gradient. Padded queries are not zeroed here (the output is PyTorch's). */
gf_tensor *gf_nn_multihead_attention_forward(gf_ctx *ctx, gf_module *mha, gf_tensor *query,
                                             gf_tensor *key, gf_tensor *value,
                                             gf_tensor *key_lengths, bool causal,
                                             gf_tensor **weights);

typedef enum gf_nn_activation { GF_NN_ACT_RELU = 0, GF_NN_ACT_GELU = 1 } gf_nn_activation;
typedef struct gf_nn_transformer_params {
    int64_t d_model, nhead;
    int64_t dim_feedforward;     /* 2048 */
    float dropout;               /* 0.1 */
    gf_nn_activation activation; /* relu */
    float layer_norm_eps;        /* 1e-5 */
    bool batch_first;            /* false */
    bool norm_first;             /* false: post-norm */
    bool causal;                 /* false; true: every forward masks later steps (src_mask =
                                    a square subsequent mask) */
} gf_nn_transformer_params;
/* PyTorch's defaults for TransformerEncoderLayer(d_model, nhead). */
gf_nn_transformer_params gf_nn_transformer_default_params(int64_t d_model, int64_t nhead);
/* torch.nn.TransformerEncoderLayer: children self_attn, linear1 (d_model -> dim_feedforward),
 * dropout, linear2, norm1, norm2, dropout1, dropout2. Post-norm: x = norm1(x + sa(x)),
 * x = norm2(x + ff(x)); pre-norm (norm_first): x = x + sa(norm1(x)), x = x + ff(norm2(x));
 * sa = dropout1(self_attn), ff = dropout2(linear2(dropout(activation(linear1)))). */
gf_module *gf_nn_transformer_encoder_layer(gf_ctx *ctx, gf_rng *rng,
                                           const gf_nn_transformer_params *p);
/* torch.nn.TransformerEncoder(layer, num_layers, norm): layers.0 .. layers.<n-1>, each
 * starting from the same weights (PyTorch deep-copies one layer), and with final_norm a
 * LayerNorm(d_model) child norm applied last. */
gf_module *gf_nn_transformer_encoder(gf_ctx *ctx, gf_rng *rng, const gf_nn_transformer_params *p,
                                     int num_layers, bool final_norm);

/* The PyTorch tutorial's PositionalEncoding: buffer pe [max_len, 1, d_model] of sines (even
 * features) and cosines (odd) of pos / 10000^(2i / d_model), added to x, then child dropout. */
gf_module *gf_nn_positional_encoding(gf_ctx *ctx, int64_t d_model, float dropout,
                                     int64_t max_len, bool batch_first);
/* Learned positions: parameter weight [max_len, d_model] ~ N(0, 1) (an Embedding of the
 * positions 0 .. T-1), added to x, then child dropout. */
gf_module *gf_nn_learned_positional_embedding(gf_ctx *ctx, gf_rng *rng, int64_t max_len,
                                              int64_t d_model, float dropout, bool batch_first);

/* Pooling over time, [N, T, D] (batch_first) or [T, N, D] -> [N, D], using the lengths:
 * MEAN over the real steps (0 for a length of 0), MAX over the real steps, LAST the last real
 * step, FIRST step 0 (a CLS token). MAX and LAST read step 0 for a length of 0. NONE keeps
 * every step ([N, T, D] batch_first, else [T, N, D] as [N, T, D]), so that a head after it
 * gives one output per step (a sequence labeller). */
typedef enum gf_nn_seq_pool_mode {
    GF_NN_SEQ_POOL_MEAN = 0,
    GF_NN_SEQ_POOL_MAX,
    GF_NN_SEQ_POOL_LAST,
    GF_NN_SEQ_POOL_FIRST,
    GF_NN_SEQ_POOL_NONE
} gf_nn_seq_pool_mode;
gf_module *gf_nn_seq_pool(gf_ctx *ctx, gf_nn_seq_pool_mode mode, bool batch_first);
/* "mean", "max", "last", "first", "none"; NULL when out of range. */
const char *gf_nn_seq_pool_mode_name(gf_nn_seq_pool_mode mode);

/* A text classifier: children embedding, encoder, pool, fc (takes ownership of all four;
 * add a positional module afterwards with gf_module_add(ctx, m, "pos", pos)). Its forward
 * takes float32 token ids [N, T], right-padded with 0, computes lengths = the count of
 * non-zero ids per row and runs fc(pool(encoder(pos(embedding(ids)), lengths), lengths)),
 * the encoder and pool batch_first through gf_module_forward_seq. Ids must be whole numbers
 * >= 0. Reentrant (replicable across threads). With a GF_NN_SEQ_POOL_NONE pool it is a
 * sequence labeller: fc applies at every step, [N, T, C]. */
gf_module *gf_nn_text_classifier(gf_ctx *ctx, gf_module *embedding, gf_module *encoder,
                                 gf_module *pool, gf_module *head);

/* ---- fitting images to a model's input ----------------------------------------------------- */

enum { GF_NN_ADAPT_MAX_CHANNELS = 16 };

/* A module fitting image samples in = [C, H, W] to a model's input want = [C', H', W'] (a
 * want[0] <= 0 keeps the data's channels; want[1] or want[2] <= 0 keeps the data's size): the
 * channels as timm's adapt_input_conv fits weights (1 -> C': repeated; C -> 1: the mean; only
 * when adapt_channels), then the height and width resized bilinearly (half-pixel centres, as
 * TensorFlow's resize_bilinear with half_pixel_centers and PyTorch's align_corners=False).
 * Its forward takes [N, C, H, W]. *adapter is the new module (the caller's; reentrant) or NULL
 * when the samples already fit; note (when not NULL) says what it does ("1 -> 3 channels
 * (repeated), 28x28 -> 96x96 (bilinear)", or ""). GF_ERR_INVALID with a context error naming
 * `what` and both shapes for what cannot be fitted (2 channels into 3, more than
 * GF_NN_ADAPT_MAX_CHANNELS). gf_tfjs_classifier and graft probe use it. */
gf_status gf_nn_input_adapter(gf_ctx *ctx, const char *what, const int64_t in[3],
                              const int64_t want[3], bool adapt_channels, gf_module **adapter,
                              char *note, size_t note_cap);

#ifdef __cplusplus
}
#endif
#endif
