/* Internal layout of a module, shared by the files of src/nn: the tree (children, parent),
 * the registries of parameters and buffers, and the per-layer configuration. */
#ifndef GRAFT_NN_INTERNAL_H
#define GRAFT_NN_INTERNAL_H

#include "core/internal.h"
#include "graft/nn.h"
#include "nn/nn_access.h"

typedef struct gf_slot {
    char *name;   /* local name (no dots), malloc'd */
    gf_tensor *t; /* owned */
} gf_slot;

typedef struct gf_child {
    char *name;     /* malloc'd */
    gf_module *m;   /* owned */
} gf_child;

/* Per-layer settings; a layer uses the fields it needs. Tensor pointers are borrowed from
 * the module's own slots (NULL when the layer has no such tensor). */
typedef struct gf_layer_cfg {
    gf_tensor *weight, *bias, *running_mean, *running_var, *num_batches;
    int64_t in, out;            /* features / channels / num_embeddings, dim */
    int64_t padding_idx;        /* Embedding */
    gf_conv_params conv;        /* Conv1d / Conv2d */
    gf_pool_params pool;        /* MaxPool2d / AvgPool2d */
    int kh, kw;                 /* kernel size (conv), output size (adaptive pool) */
    int dim0, dim1;             /* Flatten start/end, Softmax dim, LayerNorm n_axes */
    int64_t norm_shape[GF_MAX_DIMS];
    float f0, f1;               /* slope, alpha, beta/threshold, dropout p, eps/momentum */
    gf_gelu_approx approx;
    int dims;                   /* 1 or 2: Conv1d/Conv2d, BatchNorm1d/BatchNorm2d */
    bool track;                 /* BatchNorm track_running_stats */
    struct { int layers, dirs; bool batch_first, bias; } rnn; /* LSTM / GRU */
} gf_layer_cfg;

/* What a layer built by src/nn promises about its forward; gf_module_forward_children uses
 * these to decide what it may overwrite or reuse (docs/NN.md, "Memory"). Modules made
 * elsewhere (containers, user layers, LoRA) have none and are never relied on.
 *   GF_LAYER_LIB   keeps no pointer to its input or output once its forward returns, and
 *                  returns either its input itself or a tensor header made in that call.
 *   GF_LAYER_FRESH a returned header other than the input has storage allocated in that call
 *                  (not a view of the input), or is a ReLU that ran in place over storage
 *                  the caller proved private.
 *   GF_LAYER_RELU  may run in place when ctx->inplace_input is its input. */
enum { GF_LAYER_LIB = 1u, GF_LAYER_FRESH = 2u, GF_LAYER_RELU = 4u };

struct gf_module {
    char type[48];
    unsigned layer;        /* GF_LAYER_* (0 for containers and user modules) */
    bool training;         /* effective mode: train_requested && !eval_pinned */
    bool train_requested;  /* the mode last set by gf_module_train (or true) */
    bool eval_pinned;      /* gf_module_pin_eval: stays in eval mode */
    bool reentrant;        /* gf_module_set_reentrant: a custom forward safe in many threads */
    gf_module *parent;
    gf_slot *params;
    int n_params, cap_params;
    gf_slot *buffers;
    int n_buffers, cap_buffers;
    gf_child *children;
    int n_children, cap_children;
    /* Hash index over the names of children, parameters and buffers, so adding the n-th name
     * and looking one up cost O(1), not O(n) (a spec of 500,000 layers took minutes): built
     * once a module holds GF_NAME_INDEX_MIN names, rebuilt when one is removed. Open
     * addressing, index_cap a power of two, at most half full; NULL below the threshold. */
    struct gf_name_slot *index;
    int index_cap, index_n;
    gf_module_forward_fn forward;
    gf_module_seq_forward_fn seq_forward; /* gf_module_set_seq_forward; NULL: per position */
    void *user;
    void (*user_free)(void *);
    gf_layer_cfg cfg;
};

enum { GF_NAME_INDEX_MIN = 16 };

typedef struct gf_name_slot {
    const char *name; /* borrowed from the child or slot it names; NULL: empty */
    gf_module *child; /* the child of that name, NULL for a parameter or buffer */
} gf_name_slot;

/* A bare module of the given type (training mode, no tensors, no children). NULL with a ctx
 * error when out of memory. */
gf_module *gf_module_alloc(gf_ctx *ctx, const char *type, gf_module_forward_fn forward);
/* New persistent f32 (or i64) tensor registered on m as a parameter (requires_grad = true) or
 * buffer; returns the tensor (borrowed) or NULL with a ctx error. */
gf_tensor *gf_module_new_param(gf_ctx *ctx, gf_module *m, const char *name, int ndim,
                               const int64_t *shape);
gf_tensor *gf_module_new_buffer(gf_ctx *ctx, gf_module *m, const char *name, gf_dtype dt,
                                int ndim, const int64_t *shape);
/* Runs the children in order (the default forward of containers). */
gf_tensor *gf_module_forward_children(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user);

#endif
