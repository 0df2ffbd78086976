/* graft learning-rate schedules (torch.optim.lr_scheduler): StepLR, MultiStepLR, ExponentialLR,
 * CosineAnnealingLR, LinearLR, OneCycleLR, ReduceLROnPlateau and SequentialLR ("warmup, then
 * the main schedule"), with PyTorch 1.13's formulas evaluated in the same order in double, so
 * the learning rates equal PyTorch's bit for bit. */
#ifndef GRAFT_SCHED_H
#define GRAFT_SCHED_H

#include "graft/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the schedules work (as in PyTorch):
 * - A schedule drives the learning rate of every parameter group of one optimizer. Creating
 *   one performs its initial step (epoch 0), which may already change the groups' lr (LinearLR
 *   multiplies by start_factor; OneCycleLR sets max_lr / div_factor).
 * - Each gf_sched_step advances one epoch (or one batch, for per-step schedules) and writes
 *   the new lr into every group. Call it after gf_optim_step.
 * - The chainable schedules (Step, MultiStep, Exponential, Cosine, Linear) compute the new lr
 *   from the group's current lr, exactly as PyTorch's get_lr(); they scale per-group lrs by
 *   the same factors. The first schedule created on an optimizer records each group's
 *   initial_lr (PyTorch's group['initial_lr']); base_lrs come from it.
 * - OneCycleLR also cycles momentum (SGD / RMSprop momentum, Adam / AdamW beta1) between
 *   max_momentum and base_momentum unless cycle_momentum is false. */

typedef enum gf_sched_kind {
    GF_SCHED_STEP = 0,     /* StepLR: lr *= gamma every step_size epochs */
    GF_SCHED_MULTISTEP,    /* MultiStepLR: lr *= gamma at each milestone */
    GF_SCHED_EXPONENTIAL,  /* ExponentialLR: lr *= gamma every epoch */
    GF_SCHED_COSINE,       /* CosineAnnealingLR(T_max, eta_min) */
    GF_SCHED_LINEAR,       /* LinearLR: factor start_factor -> end_factor over total_iters */
    GF_SCHED_ONECYCLE,     /* OneCycleLR */
    GF_SCHED_PLATEAU,      /* ReduceLROnPlateau: lr *= factor when a metric stops improving */
    GF_SCHED_SEQUENTIAL,   /* SequentialLR: made by gf_sched_sequential / gf_sched_warmup */
    GF_SCHED_KIND_COUNT
} gf_sched_kind;

/* When gf_fit steps a schedule: after every epoch, or after every optimizer step. */
typedef enum gf_sched_interval { GF_SCHED_PER_EPOCH = 0, GF_SCHED_PER_STEP } gf_sched_interval;

typedef enum gf_anneal { GF_ANNEAL_COS = 0, GF_ANNEAL_LINEAR } gf_anneal;

/* Settings; start from gf_sched_default_params(kind) (PyTorch's defaults). Fields of other
 * kinds are ignored. Arrays are copied at creation. */
typedef struct gf_sched_params {
    gf_sched_kind kind;
    gf_sched_interval interval;  /* PER_EPOCH; OneCycleLR: PER_STEP */
    /* StepLR, MultiStepLR, ExponentialLR */
    int64_t step_size;           /* StepLR, >= 1 */
    double gamma;                /* 0.1 */
    const int64_t *milestones;   /* MultiStepLR: n_milestones epochs (repeats multiply again) */
    int n_milestones;
    /* CosineAnnealingLR */
    int64_t t_max;               /* >= 1 */
    double eta_min;              /* 0 */
    /* LinearLR */
    double start_factor;         /* 1/3, in (0, 1] */
    double end_factor;           /* 1, in [0, 1] */
    int64_t total_iters;         /* 5 */
    /* OneCycleLR (three_phase false: warm up for pct_start of the steps, then anneal) */
    double max_lr;               /* for every group, unless max_lrs */
    const double *max_lrs;       /* one per group, or NULL */
    int64_t total_steps;         /* optimizer steps in the whole run (epochs x steps/epoch) */
    double pct_start;            /* 0.3 */
    gf_anneal anneal;            /* COS */
    bool cycle_momentum;         /* true */
    double base_momentum;        /* 0.85 */
    double max_momentum;         /* 0.95 */
    double div_factor;           /* 25: initial lr = max_lr / div_factor */
    double final_div_factor;     /* 1e4: final lr = initial lr / final_div_factor */
    bool three_phase;            /* false */
    /* ReduceLROnPlateau */
    bool mode_max;               /* false: "min" (a loss); true: "max" (an accuracy) */
    double factor;               /* 0.1, < 1 */
    int64_t patience;            /* 10 */
    double threshold;            /* 1e-4 */
    bool threshold_abs;          /* false: "rel" */
    int64_t cooldown;            /* 0 */
    double min_lr;               /* 0, for every group unless min_lrs */
    const double *min_lrs;       /* one per group, or NULL */
    double eps;                  /* 1e-8: smaller lr changes are ignored */
} gf_sched_params;

gf_sched_params gf_sched_default_params(gf_sched_kind kind);
/* "step", "multistep", "exponential", "cosine", "linear", "onecycle", "plateau",
 * "sequential"; "?" for an unknown kind. */
const char *gf_sched_kind_name(gf_sched_kind kind);
bool gf_sched_kind_parse(const char *name, gf_sched_kind *out);

typedef struct gf_sched gf_sched;

/* New schedule over opt's groups (opt is borrowed and must outlive it). Performs the initial
 * step. NULL with a context error for bad settings (naming the schedule and the value). Free
 * with gf_sched_free. Not for GF_SCHED_SEQUENTIAL. */
gf_sched *gf_sched_new(gf_ctx *ctx, gf_optim *opt, const gf_sched_params *p);
/* SequentialLR(opt, children, milestones): children[i] runs from milestones[i - 1] (at which
 * it restarts from its closed form at epoch 0) until milestones[i]. n >= 2 children made on
 * opt (not plateau or sequential) in the order they were created, n - 1 strictly increasing
 * milestones >= 1. Takes ownership of the children (freed on failure too). As PyTorch, resets
 * every group's lr to its initial_lr and re-runs the first child's initial step. */
gf_sched *gf_sched_sequential(gf_ctx *ctx, gf_optim *opt, gf_sched *const *children, int n,
                              const int64_t *milestones);
/* "Warmup, then main": LinearLR(start_factor -> 1 over warmup_iters) then `main` (created
 * after it, as a PyTorch user would), switching at warmup_iters. Interval: main's. */
gf_sched *gf_sched_warmup(gf_ctx *ctx, gf_optim *opt, int64_t warmup_iters,
                          double start_factor, const gf_sched_params *main);
void gf_sched_free(gf_sched *s);

/* One schedule step. ReduceLROnPlateau needs a metric: use gf_sched_step_metric. OneCycleLR
 * stepped past total_steps is GF_ERR_STATE. */
gf_status gf_sched_step(gf_ctx *ctx, gf_sched *s);
/* One step with the monitored metric (ignored by all schedules but ReduceLROnPlateau; NaN
 * counts as no improvement). */
gf_status gf_sched_step_metric(gf_ctx *ctx, gf_sched *s, double metric);

gf_sched_kind gf_sched_get_kind(const gf_sched *s);
gf_sched_interval gf_sched_get_interval(const gf_sched *s);
/* The lr the last step gave group g (PyTorch's get_last_lr()[g]). */
double gf_sched_last_lr(const gf_sched *s, int g);
/* PyTorch's last_epoch: the number of steps since creation (0 right after it). */
int64_t gf_sched_last_epoch(const gf_sched *s);

/* Appends the schedule's dynamic state under "sched." to l: kind, last_epoch, step_count,
 * base_lr.<g>, last_lr.<g>; plateau best, num_bad_epochs, cooldown_counter; a sequential
 * schedule its own and each child's under "sched.child.<i>.". The settings are not saved:
 * import into a schedule created with the same settings (after importing the optimizer). */
gf_status gf_sched_export(gf_ctx *ctx, const gf_sched *s, gf_state_list *l);
/* Restores what gf_sched_export wrote; a different kind or structure, a missing or unknown
 * "sched." key is an error that leaves s unchanged. */
gf_status gf_sched_import(gf_ctx *ctx, gf_sched *s, const gf_state_list *l);

#ifdef __cplusplus
}
#endif
#endif
