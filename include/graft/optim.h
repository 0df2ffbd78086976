/* graft optimizers (torch.optim): SGD, Adam, AdamW, RMSprop and Adagrad with PyTorch 1.13's
 * update rules step for step, parameter groups, gradient clipping, and a named export of the
 * complete optimizer state (for checkpoints). */
#ifndef GRAFT_OPTIM_H
#define GRAFT_OPTIM_H

#include "graft/safetensors.h"
#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gf_optim_kind {
    GF_OPTIM_SGD = 0, /* torch.optim.SGD */
    GF_OPTIM_ADAM,    /* torch.optim.Adam: weight decay is an L2 term added to the gradient */
    GF_OPTIM_ADAMW,   /* torch.optim.AdamW: weight decay shrinks the parameter directly */
    GF_OPTIM_RMSPROP, /* torch.optim.RMSprop */
    GF_OPTIM_ADAGRAD, /* torch.optim.Adagrad */
    GF_OPTIM_KIND_COUNT
} gf_optim_kind;

/* Hyperparameters of one parameter group. Doubles, like the Python floats PyTorch computes its
 * scalars with. Fields that do not apply to `kind` are ignored. Start from
 * gf_optim_default_params(kind). */
typedef struct gf_optim_params {
    gf_optim_kind kind;
    double lr;           /* > 0 */
    double weight_decay; /* >= 0 */
    bool maximize;       /* ascend instead of descend */
    /* SGD and RMSprop */
    double momentum;
    /* SGD */
    double dampening;
    bool nesterov;       /* needs momentum > 0 and dampening == 0 */
    /* Adam / AdamW */
    double beta1, beta2;
    bool amsgrad;        /* normalise by the running maximum of the second moment */
    /* Adam, AdamW, RMSprop, Adagrad */
    double eps;
    /* RMSprop */
    double alpha;        /* smoothing constant of the squared-gradient average */
    bool centered;       /* normalise by the estimated variance (subtract the mean's square) */
    /* Adagrad */
    double lr_decay;     /* step size lr / (1 + (t - 1) lr_decay) */
    double initial_accumulator_value;
} gf_optim_params;

/* PyTorch's defaults: SGD lr 0.01 (PyTorch has no default; this is a common choice),
 * momentum 0; Adam lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0; AdamW the same with
 * weight_decay 1e-2; RMSprop lr 1e-2, alpha 0.99, eps 1e-8; Adagrad lr 1e-2, lr_decay 0,
 * initial_accumulator_value 0, eps 1e-10. */
gf_optim_params gf_optim_default_params(gf_optim_kind kind);
/* "sgd", "adam", "adamw", "rmsprop", "adagrad"; "?" for an unknown kind. */
const char *gf_optim_kind_name(gf_optim_kind kind);
/* The kind with that name (case-sensitive); false when there is none. */
bool gf_optim_kind_parse(const char *name, gf_optim_kind *out);
/* Checks hyperparameters with PyTorch's rules (and lr > 0); GF_ERR_INVALID with a message
 * naming the optimizer and the bad value. */
gf_status gf_optim_check_params(gf_ctx *ctx, const gf_optim_params *p);

typedef struct gf_optim gf_optim;

/* New optimizer with one group over params[0..n) (persistent, contiguous float32 tensors, each
 * at most once; the list is copied, the tensors are borrowed and must outlive the optimizer).
 * The parameters are named "0", "1", ... (as in torch's state_dict). State is created lazily:
 * a parameter gets its buffers at the first step where it requires grad and has a gradient,
 * so frozen or unused parameters cost nothing. Returns NULL with a context error for bad
 * hyperparameters or parameters. Free with gf_optim_free. */
gf_optim *gf_optim_new(gf_ctx *ctx, const gf_optim_params *p, gf_tensor *const *params, int n);

/* ---- parameter groups ----------------------------------------------------------------------
 * Each group has its own hyperparameters (all of them, as in torch's param_groups): the usual
 * use is a smaller learning rate for a pretrained trunk than for a new head (discriminative
 * fine-tuning), or no weight decay for biases and norms. */
typedef struct gf_optim_group {
    const char *name;          /* label in messages and exports; NULL: "group<i>" */
    const gf_optim_params *hp; /* NULL: the optimizer's defaults; kind must equal theirs */
    gf_tensor *const *params;  /* n parameters */
    const char *const *names;  /* their names, unique in the optimizer; NULL: "0", "1", ...
                                * numbered across all groups */
    int n;                     /* >= 1 */
} gf_optim_group;

/* New optimizer over groups[0..n_groups) (names and lists are copied). A tensor or a name in
 * two groups, an empty group, or bad hyperparameters in any group is an error. */
gf_optim *gf_optim_new_groups(gf_ctx *ctx, const gf_optim_params *defaults,
                              const gf_optim_group *groups, int n_groups);

/* Groups of named parameters chosen by name. */
typedef struct gf_group_spec {
    const char *name;          /* group label (NULL: the patterns) */
    /* fnmatch(3) patterns separated by ',' (spaces around them ignored), matched against the
     * dotted parameter names; '*' also matches '.': "layer4.*,fc.*", "*.bias", "*bn*". */
    const char *patterns;
    const gf_optim_params *hp; /* NULL: the defaults */
} gf_group_spec;

/* New optimizer over the named parameters params->items[0..n) (e.g. a module's
 * gf_module_named_tensors(..., GF_STATE_PARAMS); frozen ones included: they carry no state
 * until they are unfrozen). The names (copied) are the parameters' names in the optimizer and
 * its exports; the tensors are borrowed. specs[i] becomes group i, holding the parameters its
 * patterns match; the parameters no spec matches form a last group "default" with the defaults
 * (omitted when empty). Errors (GF_ERR_INVALID, naming the spec and the pattern or parameter):
 * an empty list, a pattern that matches no parameter, a parameter matched by two specs, an
 * empty pattern list, bad hyperparameters. The same over a module: gf_train_optim_new
 * (graft/train.h). */
gf_optim *gf_optim_new_named(gf_ctx *ctx, const gf_optim_params *defaults,
                             const gf_named_tensors *params, const gf_group_spec *specs,
                             int n_specs);

void gf_optim_free(gf_optim *opt);

/* One update of every parameter that requires grad and has a gradient buffer, with its group's
 * hyperparameters; the others are skipped (no state, no decay). Uses the context's threads.
 * Returns GF_OK, or GF_ERR_NOMEM (context error set) when state could not be allocated. */
gf_status gf_optim_step(gf_ctx *ctx, gf_optim *opt);
/* Zeroes the gradients of all parameters (keeps the buffers; PyTorch's set_to_none=False). */
void gf_optim_zero_grad(gf_optim *opt);

/* ---- inspection and control ------------------------------------------------------------ */
gf_optim_kind gf_optim_get_kind(const gf_optim *opt);
/* Hyperparameters of group 0 (of the only group for gf_optim_new). */
const gf_optim_params *gf_optim_get_params(const gf_optim *opt);
/* Sets the learning rate of every group. */
void gf_optim_set_lr(gf_optim *opt, double lr);

int gf_optim_n_groups(const gf_optim *opt);
const char *gf_optim_group_name(const gf_optim *opt, int g);
/* Group g's hyperparameters (borrowed; schedules change lr and momentum / beta1 in place). */
const gf_optim_params *gf_optim_group_params(const gf_optim *opt, int g);
/* Replaces group g's hyperparameters after checking them (the kind cannot change). */
gf_status gf_optim_set_group_params(gf_ctx *ctx, gf_optim *opt, int g, const gf_optim_params *p);
double gf_optim_group_lr(const gf_optim *opt, int g);
void gf_optim_set_group_lr(gf_optim *opt, int g, double lr);
/* Parameters of group g are gf_optim_param(opt, first .. first + count - 1). */
int gf_optim_group_first(const gf_optim *opt, int g);
int gf_optim_group_count(const gf_optim *opt, int g);

int gf_optim_n_params(const gf_optim *opt);
gf_tensor *gf_optim_param(const gf_optim *opt, int i);
const char *gf_optim_param_name(const gf_optim *opt, int i);
int gf_optim_param_group(const gf_optim *opt, int i);
/* Index of the parameter with that name, or -1. */
int gf_optim_find_param(const gf_optim *opt, const char *name);
/* Number of gf_optim_step calls so far. */
int64_t gf_optim_steps(const gf_optim *opt);
/* Updates applied to parameter i (PyTorch's state['step']); 0 while it has no state. */
int64_t gf_optim_param_steps(const gf_optim *opt, int i);
/* State buffer `key` of parameter i, with the parameter's numel elements, or NULL when it has
 * none (yet). Keys are PyTorch's state names: SGD "momentum_buffer"; Adam/AdamW "exp_avg",
 * "exp_avg_sq", "max_exp_avg_sq" (amsgrad); RMSprop "square_avg", "momentum_buffer"
 * (momentum > 0), "grad_avg" (centered); Adagrad "sum". Borrowed: valid until gf_optim_free;
 * each step updates it in place. */
const float *gf_optim_state(const gf_optim *opt, int i, const char *key);
/* Bytes of optimizer state allocated so far. */
size_t gf_optim_state_bytes(const gf_optim *opt);

/* ---- gradient clipping (torch.nn.utils) ---------------------------------------------------
 * Over the tensors that have a gradient (NULL entries and tensors without one are skipped). */

/* clip_grad_norm_: total = the norm_type-norm of the per-tensor norms (norm_type > 0, or
 * INFINITY for the largest |g|); every gradient is multiplied by min(1, max_norm /
 * (total + 1e-6)) computed in float32 as PyTorch does. *total_norm (may be NULL) gets the
 * total before clipping (0 with no gradients). error_if_nonfinite: a NaN/Inf total is
 * GF_ERR_NUMERIC and nothing is changed; otherwise the gradients are scaled anyway (and become
 * NaN), as in PyTorch. */
gf_status gf_clip_grad_norm(gf_ctx *ctx, gf_tensor *const *tensors, int n, double max_norm,
                            double norm_type, bool error_if_nonfinite, double *total_norm);
/* clip_grad_value_: clamps every gradient element into [-clip_value, clip_value]. */
gf_status gf_clip_grad_value(gf_ctx *ctx, gf_tensor *const *tensors, int n, double clip_value);
/* The same over the optimizer's parameters that require grad. */
gf_status gf_optim_clip_grad_norm(gf_ctx *ctx, gf_optim *opt, double max_norm, double norm_type,
                                  bool error_if_nonfinite, double *total_norm);
gf_status gf_optim_clip_grad_value(gf_ctx *ctx, gf_optim *opt, double clip_value);

/* ---- named state (checkpoints) -------------------------------------------------------------
 * A state list holds named float32/int64 tensors and string key/value metadata: the shape of a
 * safetensors file (tensors + __metadata__), so a checkpoint is one write. Numbers in
 * metadata are printed with %.17g (doubles round-trip exactly). */
typedef struct gf_state_list gf_state_list;

gf_state_list *gf_state_list_new(gf_ctx *ctx);
/* Frees the list, the tensors it owns and the names. NULL: no-op. */
void gf_state_list_free(gf_state_list *l);
/* Adds a tensor under a new name (a duplicate name is an error). take_ownership: the list frees
 * t (also when this call fails); otherwise t is borrowed and must outlive the list's use. */
gf_status gf_state_list_add(gf_ctx *ctx, gf_state_list *l, const char *name, gf_tensor *t,
                            bool take_ownership);
/* Sets metadata key to value (both copied; an existing key is overwritten). */
gf_status gf_state_list_set_meta(gf_ctx *ctx, gf_state_list *l, const char *key,
                                 const char *value);
int gf_state_list_count(const gf_state_list *l);
const char *gf_state_list_name(const gf_state_list *l, int i);
gf_tensor *gf_state_list_tensor(const gf_state_list *l, int i);
gf_tensor *gf_state_list_find(const gf_state_list *l, const char *name);
int gf_state_list_meta_count(const gf_state_list *l);
const char *gf_state_list_meta_key(const gf_state_list *l, int i);
const char *gf_state_list_meta_value(const gf_state_list *l, int i);
const char *gf_state_list_get_meta(const gf_state_list *l, const char *key);

/* Adds every tensor (float32 as F32, int64 as I64, borrowed until the writer is saved) and
 * every metadata pair of l to a safetensors writer. */
gf_status gf_state_list_to_writer(gf_ctx *ctx, const gf_state_list *l, gf_st_writer *w);
/* A new list with the tensors (copied) and metadata of an open file whose names start with
 * prefix (NULL or "": all). */
gf_state_list *gf_state_list_from_file(gf_ctx *ctx, const gf_st_file *f, const char *prefix);

/* Appends the optimizer's complete state to l:
 *   metadata  optim.kind, optim.steps, optim.n_groups,
 *             optim.group.<g>.name / .params (comma-separated names) / .<hyperparameter>
 *             (every field of gf_optim_params) / .initial_lr (once a schedule set it),
 *             optim.step.<param>  (for each parameter with state)
 *   tensors   optim.state.<param>.<key>   (borrowed views of the live buffers: valid until the
 *             next step or gf_optim_free; copy or write them before)
 * Parameters are named by gf_optim_param_name. */
gf_status gf_optim_export(gf_ctx *ctx, const gf_optim *opt, gf_state_list *l);
/* Restores a state exported by gf_optim_export into an optimizer of the same kind, groups and
 * parameter names and shapes (its state is replaced; hyperparameters, steps and buffers come
 * from l). Every "optim." entry of l must be understood; any mismatch or unknown key is an
 * error that leaves opt unchanged. Entries outside "optim." are ignored. */
gf_status gf_optim_import(gf_ctx *ctx, gf_optim *opt, const gf_state_list *l);

#ifdef __cplusplus
}
#endif
#endif
