/* graft optimizers: SGD (momentum, dampening, Nesterov, weight decay) and Adam / AdamW over a
 * list of persistent parameter tensors, with PyTorch 1.13's update rules step for step. */
#ifndef GRAFT_OPTIM_H
#define GRAFT_OPTIM_H

#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gf_optim_kind {
    GF_OPTIM_SGD = 0, /* torch.optim.SGD */
    GF_OPTIM_ADAM,    /* torch.optim.Adam: weight decay is an L2 term added to the gradient */
    GF_OPTIM_ADAMW,   /* torch.optim.AdamW: weight decay shrinks the parameter directly */
    GF_OPTIM_KIND_COUNT
} gf_optim_kind;

/* Hyperparameters. Doubles, like the Python floats PyTorch computes its scalars with. Fields
 * that do not apply to `kind` are ignored. Start from gf_optim_default_params(kind). */
typedef struct gf_optim_params {
    gf_optim_kind kind;
    double lr;
    double weight_decay;
    bool maximize;    /* ascend instead of descend */
    /* SGD */
    double momentum;
    double dampening;
    bool nesterov;    /* needs momentum > 0 and dampening == 0 */
    /* Adam / AdamW */
    double beta1, beta2;
    double eps;
    bool amsgrad;     /* normalise by the running maximum of the second moment */
} gf_optim_params;

/* PyTorch's defaults: SGD lr 0.01 (PyTorch has no default; this is a common choice),
 * momentum 0; Adam lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0; AdamW the same
 * with weight_decay 1e-2. */
gf_optim_params gf_optim_default_params(gf_optim_kind kind);
/* "sgd", "adam", "adamw"; "?" for an unknown kind. */
const char *gf_optim_kind_name(gf_optim_kind kind);

typedef struct gf_optim gf_optim;

/* New optimizer over params[0..n) (persistent, contiguous float32 tensors, each at most once;
 * the list is copied, the tensors are borrowed and must outlive the optimizer). State is
 * created lazily: a parameter gets its buffers at the first step where it requires grad and
 * has a gradient, so frozen or unused parameters cost nothing. Returns NULL with a context
 * error for bad hyperparameters or parameters. Free with gf_optim_free. */
gf_optim *gf_optim_new(gf_ctx *ctx, const gf_optim_params *p, gf_tensor *const *params, int n);
void gf_optim_free(gf_optim *opt);

/* One update of every parameter that requires grad and has a gradient buffer; the others
 * are skipped (no state, no decay). Uses the context's threads. Returns GF_OK, or
 * GF_ERR_NOMEM (context error set) when state could not be allocated. */
gf_status gf_optim_step(gf_ctx *ctx, gf_optim *opt);
/* Zeroes the gradients of all parameters (keeps the buffers; PyTorch's set_to_none=False). */
void gf_optim_zero_grad(gf_optim *opt);

/* ---- inspection ----------------------------------------------------------------------- */
const gf_optim_params *gf_optim_get_params(const gf_optim *opt);
/* Changes the learning rate used by later steps (for schedules). */
void gf_optim_set_lr(gf_optim *opt, double lr);
int gf_optim_n_params(const gf_optim *opt);
gf_tensor *gf_optim_param(const gf_optim *opt, int i);
/* Number of gf_optim_step calls so far. */
int64_t gf_optim_steps(const gf_optim *opt);
/* Updates applied to parameter i (PyTorch's state['step']); 0 while it has no state. */
int64_t gf_optim_param_steps(const gf_optim *opt, int i);
/* State buffer `key` of parameter i, with the parameter's numel elements, or NULL when it has
 * none (yet). Keys are PyTorch's state names: "momentum_buffer" (SGD with momentum),
 * "exp_avg", "exp_avg_sq", "max_exp_avg_sq" (Adam/AdamW; the last with amsgrad). Borrowed:
 * valid until gf_optim_free; each step updates it in place. */
const float *gf_optim_state(const gf_optim *opt, int i, const char *key);
/* Bytes of optimizer state allocated so far. */
size_t gf_optim_state_bytes(const gf_optim *opt);

#ifdef __cplusplus
}
#endif
#endif
