/* graft tensors: float32 and int64 arrays of up to 8 dimensions, row-major like PyTorch's
 * contiguous layout, with strided views. Persistent tensors (parameters, data) are malloc'd
 * and freed by their owner; tensors made by ops live in the context arena until reset. */
#ifndef GRAFT_TENSOR_H
#define GRAFT_TENSOR_H

#include "graft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gf_dtype { GF_F32 = 0, GF_I64 = 1 } gf_dtype;

enum { GF_MAX_DIMS = 8 };

typedef struct gf_node gf_node;

typedef struct gf_tensor {
    gf_dtype dtype;
    int ndim;
    int64_t shape[GF_MAX_DIMS];
    int64_t stride[GF_MAX_DIMS]; /* in elements; 0 in a broadcast dimension */
    int64_t numel;
    void *data;                  /* address of element [0,...,0] */
    struct gf_tensor *grad;      /* accumulated dL/dself, contiguous, same shape; or NULL */
    gf_node *node;               /* op that produced this tensor; NULL for a leaf */
    bool requires_grad;
    bool persistent;             /* malloc'd (outlives gf_ctx_reset); else arena */
    bool owns_data;              /* persistent and data was allocated with it */
} gf_tensor;

static inline float *gf_f32(const gf_tensor *t) { return (float *)t->data; }
static inline int64_t *gf_i64(const gf_tensor *t) { return (int64_t *)t->data; }

/* ---- persistent tensors (owner frees with gf_tensor_free) ---------------------------- */

/* New zero-filled contiguous tensor. NULL (and ctx error) on bad shape or no memory. */
gf_tensor *gf_tensor_new(gf_ctx *ctx, gf_dtype dt, int ndim, const int64_t *shape);
/* New tensor holding a copy of `data` (numel elements of dt). */
gf_tensor *gf_tensor_from_data(gf_ctx *ctx, gf_dtype dt, int ndim, const int64_t *shape,
                               const void *data);
/* New persistent tensor wrapping caller memory (not freed by gf_tensor_free). */
gf_tensor *gf_tensor_wrap(gf_ctx *ctx, gf_dtype dt, int ndim, const int64_t *shape, void *data);
/* Frees a persistent tensor, its data if owned, and its gradient. NULL is a no-op;
 * arena tensors are ignored (they go with gf_ctx_reset). */
void gf_tensor_free(gf_tensor *t);

/* requires_grad = false also frees the gradient buffer: a frozen tensor holds none. */
void gf_tensor_set_requires_grad(gf_tensor *t, bool requires_grad);
/* Sets the gradient to zero (keeps the buffer). */
void gf_tensor_zero_grad(gf_tensor *t);

/* ---- arena tensors (valid until gf_ctx_reset) ----------------------------------------- */

gf_tensor *gf_empty(gf_ctx *ctx, gf_dtype dt, int ndim, const int64_t *shape);
gf_tensor *gf_zeros(gf_ctx *ctx, gf_dtype dt, int ndim, const int64_t *shape);
gf_tensor *gf_full(gf_ctx *ctx, int ndim, const int64_t *shape, float value);
gf_tensor *gf_scalar(gf_ctx *ctx, float value);
/* Uniform in [lo, hi) / normal(mean, std) from the context RNG. */
gf_tensor *gf_rand(gf_ctx *ctx, int ndim, const int64_t *shape, float lo, float hi);
gf_tensor *gf_randn(gf_ctx *ctx, int ndim, const int64_t *shape, float mean, float std);

/* ---- inspection ---------------------------------------------------------------------- */

bool gf_tensor_is_contiguous(const gf_tensor *t);
bool gf_same_shape(const gf_tensor *a, const gf_tensor *b);
/* Writes "[2, 3, 4]" into buf (always NUL-terminated) and returns buf. */
char *gf_shape_str(const gf_tensor *t, char *buf, size_t n);
char *gf_dims_str(int ndim, const int64_t *shape, char *buf, size_t n);
const char *gf_dtype_name(gf_dtype dt);
size_t gf_dtype_size(gf_dtype dt);
/* Element at a flat row-major index of the logical shape (works for views). */
float gf_get_f32(const gf_tensor *t, int64_t flat_index);
int64_t gf_get_i64(const gf_tensor *t, int64_t flat_index);
/* Copies the logical contents of t into dst (numel elements), whatever its strides. */
void gf_copy_out(const gf_tensor *t, void *dst);
/* Copies numel elements from src into t (t may be a strided view). */
void gf_copy_in(gf_tensor *t, const void *src);

/* ---- named tensors ---------------------------------------------------------------------------
 * A list of tensors with dotted names: a module's parameters and buffers (state_dict order,
 * gf_module_named_tensors), and what an optimizer is built over (gf_optim_new_named). */
typedef struct gf_named_tensor {
    char *name;         /* full dotted name, owned by the list */
    gf_tensor *tensor;  /* borrowed (e.g. from a module) */
    bool is_buffer;     /* a module buffer rather than a parameter */
} gf_named_tensor;

typedef struct gf_named_tensors {
    int n;
    gf_named_tensor *items;
} gf_named_tensors;

/* Frees a list made by the library (the names, the items, the list), not the tensors. NULL:
 * no-op. */
void gf_named_tensors_free(gf_named_tensors *list);

#ifdef __cplusplus
}
#endif
#endif
