/* Internals shared by the optimizer files (optim.c, kernels.c, groups.c, clip.c, state.c,
 * sched.c): the optimizer's layout and the update kernels. Not installed. */
#ifndef GRAFT_OPTIM_INTERNAL_H
#define GRAFT_OPTIM_INTERNAL_H

#include "graft/optim.h"

#include <stdbool.h>

/* The update rules and the schedules round exactly as PyTorch does: a * b + c must not become
 * an fma unless the code says fmaf. GCC contracts only outside ISO C mode (the build uses
 * -std=c11); clang contracts within expressions by default, so switch that off here, for every
 * file that includes this header. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* At most three state buffers per parameter (Adam with amsgrad, centered RMSprop with
 * momentum). Slot k of kind K holds gf_optim_buf_key(K, k). */
enum { GF_OPTIM_MAX_BUFS = 3 };

/* PyTorch's state name of buffer slot k for kind, or NULL when the kind has no such slot. */
const char *gf_optim_buf_key(gf_optim_kind kind, int k);

typedef struct gf_param_state {
    gf_tensor *p;
    char *name;
    int group;
    int64_t steps;                   /* torch's state['step'] */
    float *buf[GF_OPTIM_MAX_BUFS];   /* each numel floats, or NULL */
} gf_param_state;

typedef struct gf_optim_grp {
    char *name;
    gf_optim_params hp;
    int first, count;   /* its parameters: ps[first .. first + count) */
    double initial_lr;  /* torch's group['initial_lr'] (set by the first schedule); NAN: unset */
} gf_optim_grp;

struct gf_optim {
    gf_optim_kind kind;
    gf_optim_params defaults;
    int n;
    gf_param_state *ps;     /* grouped: group 0's parameters first */
    int n_groups;
    gf_optim_grp *groups;
    int64_t steps;
    size_t state_bytes;
};

/* Arguments of one update of one parameter (float32 scalars, as PyTorch's kernels get them). */
typedef struct gf_optim_kargs {
    int64_t n;
    float *p;
    const float *g;
    float *buf0, *buf1, *buf2; /* slots 0..2 as in gf_optim_buf_key */
    bool maximize, use_wd;
    float wd;
    /* SGD */
    float lr_neg, mom, one_minus_damp;
    bool first, nesterov;
    /* Adam / AdamW */
    float b1, b2, omb1, omb2, eps, step_neg, bc2_sqrt, decay;
    bool adamw;
    /* RMSprop (eps, lr_neg, mom above) */
    float alpha, one_minus_alpha;
    /* Adagrad (eps above) */
    float clr_neg;
} gf_optim_kargs;

/* Runs kind's update over a's elements with the context's threads (reference or fast kernel,
 * both rounding alike). */
void gf_optim_run_kernel(gf_ctx *ctx, gf_optim_kind kind, const gf_optim_kargs *a);

/* true: every step uses the portable reference kernels; false (default): the fastest the
 * CPU supports. Process-wide; not thread-safe against concurrent steps. For tests. */
void gf_optim_use_reference_kernels(bool on);

/* Numbers in state-list metadata (%.17g / %lld); the getters fail with GF_ERR_FORMAT naming
 * the key when it is missing or malformed. */
gf_status gf_state_set_f64(gf_ctx *ctx, gf_state_list *l, const char *key, double v);
gf_status gf_state_set_i64(gf_ctx *ctx, gf_state_list *l, const char *key, int64_t v);
gf_status gf_state_get_f64(gf_ctx *ctx, const gf_state_list *l, const char *key, double *out);
gf_status gf_state_get_i64(gf_ctx *ctx, const gf_state_list *l, const char *key, int64_t *out);

/* gf_optim_check_params, optionally accepting lr == 0 (states a schedule has annealed). */
gf_status gf_optim_check_params_ex(gf_ctx *ctx, const gf_optim_params *p, bool zero_lr_ok);

/* Frees every state buffer (the steps are kept; callers reset them). */
void gf_optim_clear_state(gf_optim *o);

#endif
