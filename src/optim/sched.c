/* Learning-rate schedules: PyTorch 1.13's torch.optim.lr_scheduler, formula by formula. Each
 * expression keeps Python's evaluation order (left to right, int operands widened to double)
 * and uses the C library's cos and pow as Python's math module does, so the learning rates
 * equal PyTorch's bit for bit (tests/test_sched.c). Built in ISO C mode: no contraction of
 * a * b + c into an fma, which would change the rounding. */
#include "core/internal.h"
#include "graft/sched.h"
#include "optim/optim_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const double PI = 3.141592653589793; /* Python's math.pi */

struct gf_sched {
    gf_sched_params p;
    gf_optim *opt;
    int n_groups;
    double *base_lrs;   /* [n_groups] */
    double *last_lr;    /* [n_groups] */
    int64_t last_epoch;
    int64_t step_count;
    int64_t *milestones; /* MultiStepLR, sorted copy */
    /* OneCycleLR: per-group max and min lr (the initial one is base_lrs) */
    double *max_lrs, *min_lrs;
    bool use_beta1;
    /* ReduceLROnPlateau */
    double *plateau_min_lrs;
    double best;
    int64_t num_bad_epochs, cooldown_counter;
    /* SequentialLR */
    gf_sched **children;
    int n_children;
    int64_t *seq_milestones;
};

static const char *const kind_names[GF_SCHED_KIND_COUNT] = {
    "step", "multistep", "exponential", "cosine", "linear", "onecycle", "plateau", "sequential"};
static const char *const torch_names[GF_SCHED_KIND_COUNT] = {
    "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "OneCycleLR",
    "ReduceLROnPlateau", "SequentialLR"};

const char *gf_sched_kind_name(gf_sched_kind kind) {
    return (kind >= 0 && kind < GF_SCHED_KIND_COUNT) ? kind_names[kind] : "?";
}

bool gf_sched_kind_parse(const char *name, gf_sched_kind *out) {
    for (int k = 0; name && k < GF_SCHED_KIND_COUNT; k++)
        if (strcmp(name, kind_names[k]) == 0) {
            if (out) *out = (gf_sched_kind)k;
            return true;
        }
    return false;
}

gf_sched_params gf_sched_default_params(gf_sched_kind kind) {
    gf_sched_params p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.interval = kind == GF_SCHED_ONECYCLE ? GF_SCHED_PER_STEP : GF_SCHED_PER_EPOCH;
    p.step_size = 1;
    p.gamma = 0.1;
    p.t_max = 1;
    p.start_factor = 1.0 / 3;
    p.end_factor = 1.0;
    p.total_iters = 5;
    p.pct_start = 0.3;
    p.anneal = GF_ANNEAL_COS;
    p.cycle_momentum = true;
    p.base_momentum = 0.85;
    p.max_momentum = 0.95;
    p.div_factor = 25.0;
    p.final_div_factor = 1e4;
    p.factor = 0.1;
    p.patience = 10;
    p.threshold = 1e-4;
    p.eps = 1e-8;
    return p;
}

void gf_sched_free(gf_sched *s) {
    if (!s) return;
    for (int i = 0; i < s->n_children; i++) gf_sched_free(s->children[i]);
    free(s->children);
    free(s->seq_milestones);
    free(s->base_lrs);
    free(s->last_lr);
    free(s->milestones);
    free(s->max_lrs);
    free(s->min_lrs);
    free(s->plateau_min_lrs);
    free(s);
}

/* Python's a % b for b > 0 (never negative). */
static int64_t py_mod(int64_t a, int64_t b) {
    int64_t r = a % b;
    return r < 0 ? r + b : r;
}

static double group_lr(const gf_sched *s, int g) { return s->opt->groups[g].hp.lr; }

/* ---- the chainable forms (PyTorch's get_lr) ------------------------------------------------ */

static double anneal(gf_anneal a, double start, double end, double pct) {
    if (a == GF_ANNEAL_LINEAR) return (end - start) * pct + start;
    double cos_out = cos(PI * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
}

/* OneCycleLR.get_lr for group g; also sets the group's momentum / beta1. */
static gf_status onecycle_lr(gf_ctx *ctx, gf_sched *s, int g, double *out) {
    const gf_sched_params *p = &s->p;
    const int64_t step_num = s->last_epoch;
    if (step_num > p->total_steps)
        return gf_ctx_set_error(ctx, GF_ERR_STATE,
                                "OneCycleLR: tried to step %lld times; total_steps is %lld",
                                (long long)(step_num + 1), (long long)p->total_steps);
    const double T = (double)p->total_steps;
    /* phases: {end_step, start lr, end lr, start momentum, end momentum}; 0 initial, 1 max,
     * 2 min lr; momentum 0 max, 1 base */
    double ends[3], lr_from[3], lr_to[3];
    int mom_from[3], mom_to[3], n_phases;
    const double init = s->base_lrs[g], mx = s->max_lrs[g], mn = s->min_lrs[g];
    if (p->three_phase) {
        n_phases = 3;
        ends[0] = p->pct_start * T - 1;
        ends[1] = 2 * p->pct_start * T - 2;
        ends[2] = T - 1;
        lr_from[0] = init, lr_to[0] = mx, mom_from[0] = 0, mom_to[0] = 1;
        lr_from[1] = mx, lr_to[1] = init, mom_from[1] = 1, mom_to[1] = 0;
        lr_from[2] = init, lr_to[2] = mn, mom_from[2] = 0, mom_to[2] = 0;
    } else {
        n_phases = 2;
        ends[0] = p->pct_start * T - 1;
        ends[1] = T - 1;
        lr_from[0] = init, lr_to[0] = mx, mom_from[0] = 0, mom_to[0] = 1;
        lr_from[1] = mx, lr_to[1] = mn, mom_from[1] = 1, mom_to[1] = 0;
    }
    double start_step = 0;
    for (int i = 0; i < n_phases; i++) {
        const double end_step = ends[i];
        if ((double)step_num <= end_step || i == n_phases - 1) {
            if (end_step - start_step == 0.0)
                return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                        "OneCycleLR: phase %d of the schedule is empty (total_steps "
                                        "%lld, pct_start %g): division by zero",
                                        i, (long long)p->total_steps, p->pct_start);
            const double pct = ((double)step_num - start_step) / (end_step - start_step);
            *out = anneal(p->anneal, lr_from[i], lr_to[i], pct);
            if (p->cycle_momentum) {
                const double m[2] = {p->max_momentum, p->base_momentum};
                double mom = anneal(p->anneal, m[mom_from[i]], m[mom_to[i]], pct);
                if (s->use_beta1) s->opt->groups[g].hp.beta1 = mom;
                else s->opt->groups[g].hp.momentum = mom;
            }
            return GF_OK;
        }
        start_step = end_step;
    }
    return GF_OK; /* unreachable: the last phase always matches */
}

static gf_status chain_lr(gf_ctx *ctx, gf_sched *s, int g, double *out) {
    const gf_sched_params *p = &s->p;
    const int64_t L = s->last_epoch;
    const double lr = group_lr(s, g);
    switch (p->kind) {
    case GF_SCHED_STEP:
        *out = (L == 0 || L % p->step_size != 0) ? lr : lr * p->gamma;
        return GF_OK;
    case GF_SCHED_MULTISTEP: {
        int count = 0;
        for (int i = 0; i < p->n_milestones; i++) count += s->milestones[i] == L;
        *out = count == 0 ? lr : lr * pow(p->gamma, (double)count);
        return GF_OK;
    }
    case GF_SCHED_EXPONENTIAL: *out = L == 0 ? lr : lr * p->gamma; return GF_OK;
    case GF_SCHED_COSINE: {
        const double T = (double)p->t_max, e = p->eta_min, base = s->base_lrs[g];
        if (L == 0) *out = lr;
        else if (s->step_count == 1 && L > 0)
            *out = e + (base - e) * (1 + cos((double)L * PI / T)) / 2;
        else if (py_mod(L - 1 - p->t_max, 2 * p->t_max) == 0)
            *out = lr + (base - e) * (1 - cos(PI / T)) / 2;
        else
            *out = (1 + cos(PI * (double)L / T)) / (1 + cos(PI * (double)(L - 1) / T)) * (lr - e) + e;
        return GF_OK;
    }
    case GF_SCHED_LINEAR: {
        const double sf = p->start_factor, ef = p->end_factor;
        if (L == 0) *out = lr * sf;
        else if (L > p->total_iters) *out = lr;
        else
            *out = lr * (1. + (ef - sf) / ((double)p->total_iters * sf + (double)(L - 1) * (ef - sf)));
        return GF_OK;
    }
    case GF_SCHED_ONECYCLE: return onecycle_lr(ctx, s, g, out);
    default:
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "sched: %s has no chainable form",
                                gf_sched_kind_name(p->kind));
    }
}

/* PyTorch's _get_closed_form_lr (used when a SequentialLR restarts a child at epoch 0);
 * OneCycleLR has none and uses get_lr. */
static gf_status closed_lr(gf_ctx *ctx, gf_sched *s, int g, double *out) {
    const gf_sched_params *p = &s->p;
    const int64_t L = s->last_epoch;
    const double base = s->base_lrs[g];
    switch (p->kind) {
    case GF_SCHED_STEP: *out = base * pow(p->gamma, (double)(L / p->step_size)); return GF_OK;
    case GF_SCHED_MULTISTEP: {
        int count = 0; /* bisect_right(sorted milestones, L) */
        for (int i = 0; i < p->n_milestones; i++) count += s->milestones[i] <= L;
        *out = base * pow(p->gamma, (double)count);
        return GF_OK;
    }
    case GF_SCHED_EXPONENTIAL: *out = base * pow(p->gamma, (double)L); return GF_OK;
    case GF_SCHED_COSINE:
        *out = p->eta_min + (base - p->eta_min) * (1 + cos(PI * (double)L / (double)p->t_max)) / 2;
        return GF_OK;
    case GF_SCHED_LINEAR: {
        const int64_t m = p->total_iters < L ? p->total_iters : L;
        *out = base * (p->start_factor + (p->end_factor - p->start_factor) * (double)m /
                                             (double)p->total_iters);
        return GF_OK;
    }
    default: return chain_lr(ctx, s, g, out);
    }
}

/* _LRScheduler.step(epoch): epoch < 0 means None (chainable form). All groups' new values are
 * computed before any is written, as PyTorch does. */
static gf_status lr_step(gf_ctx *ctx, gf_sched *s, int64_t epoch) {
    s->step_count++;
    double small[8];
    double *v = s->n_groups <= 8 ? small : malloc(sizeof(double) * (size_t)s->n_groups);
    if (!v) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "sched: out of memory");
    gf_status st = GF_OK;
    if (epoch < 0) s->last_epoch++;
    else s->last_epoch = epoch;
    for (int g = 0; g < s->n_groups && st == GF_OK; g++)
        st = epoch < 0 ? chain_lr(ctx, s, g, &v[g]) : closed_lr(ctx, s, g, &v[g]);
    if (st == GF_OK)
        for (int g = 0; g < s->n_groups; g++) {
            s->opt->groups[g].hp.lr = v[g];
            s->last_lr[g] = v[g];
        }
    if (v != small) free(v);
    return st;
}

/* _initial_step: step counts back to 0, then one step (last_epoch -1 -> 0 for a new
 * schedule). */
static gf_status initial_step(gf_ctx *ctx, gf_sched *s) {
    s->step_count = 0;
    return lr_step(ctx, s, -1);
}

/* ---- construction --------------------------------------------------------------------------- */

static gf_status check_params(gf_ctx *ctx, const gf_optim *opt, const gf_sched_params *p) {
    const char *k = (p->kind >= 0 && p->kind < GF_SCHED_KIND_COUNT) ? torch_names[p->kind] : "?";
#define BAD(cond, ...)                                                                     \
    if (cond) return gf_ctx_set_error(ctx, GF_ERR_INVALID, __VA_ARGS__)
    BAD(p->kind < 0 || p->kind >= GF_SCHED_KIND_COUNT, "sched: unknown schedule kind %d",
        (int)p->kind);
    BAD(p->kind == GF_SCHED_SEQUENTIAL,
        "sched: make a SequentialLR with gf_sched_sequential or gf_sched_warmup");
    BAD(p->interval != GF_SCHED_PER_EPOCH && p->interval != GF_SCHED_PER_STEP,
        "%s: unknown interval %d", k, (int)p->interval);
    switch (p->kind) {
    case GF_SCHED_STEP:
        BAD(p->step_size < 1, "StepLR: step_size %lld must be >= 1", (long long)p->step_size);
        /* fallthrough */
    case GF_SCHED_EXPONENTIAL:
        BAD(!isfinite(p->gamma) || !(p->gamma > 0), "%s: invalid gamma %g (need > 0)", k, p->gamma);
        break;
    case GF_SCHED_MULTISTEP:
        BAD(!isfinite(p->gamma) || !(p->gamma > 0), "%s: invalid gamma %g (need > 0)", k, p->gamma);
        BAD(p->n_milestones < 1 || !p->milestones, "MultiStepLR: no milestones (n = %d)",
            p->n_milestones);
        for (int i = 0; i < p->n_milestones; i++)
            BAD(p->milestones[i] < 1, "MultiStepLR: milestone %lld must be >= 1",
                (long long)p->milestones[i]);
        break;
    case GF_SCHED_COSINE:
        BAD(p->t_max < 1, "CosineAnnealingLR: T_max %lld must be >= 1", (long long)p->t_max);
        BAD(!isfinite(p->eta_min) || p->eta_min < 0, "CosineAnnealingLR: invalid eta_min %g",
            p->eta_min);
        break;
    case GF_SCHED_LINEAR:
        BAD(!(p->start_factor > 0 && p->start_factor <= 1.0),
            "LinearLR: start_factor %g must be in (0, 1]", p->start_factor);
        BAD(!(p->end_factor >= 0 && p->end_factor <= 1.0),
            "LinearLR: end_factor %g must be in [0, 1]", p->end_factor);
        BAD(p->total_iters < 1, "LinearLR: total_iters %lld must be >= 1",
            (long long)p->total_iters);
        break;
    case GF_SCHED_ONECYCLE:
        BAD(p->total_steps < 1, "OneCycleLR: total_steps %lld must be >= 1 (epochs x steps per "
            "epoch)", (long long)p->total_steps);
        BAD(!(p->pct_start >= 0 && p->pct_start <= 1), "OneCycleLR: pct_start %g must be in "
            "[0, 1]", p->pct_start);
        BAD(p->anneal != GF_ANNEAL_COS && p->anneal != GF_ANNEAL_LINEAR,
            "OneCycleLR: unknown anneal strategy %d", (int)p->anneal);
        BAD(!(p->div_factor > 0) || !isfinite(p->div_factor), "OneCycleLR: invalid div_factor %g",
            p->div_factor);
        BAD(!(p->final_div_factor > 0) || !isfinite(p->final_div_factor),
            "OneCycleLR: invalid final_div_factor %g", p->final_div_factor);
        for (int g = 0; g < opt->n_groups; g++) {
            double m = p->max_lrs ? p->max_lrs[g] : p->max_lr;
            BAD(!(m > 0) || !isfinite(m), "OneCycleLR: invalid max_lr %g for group %d ('%s')", m,
                g, opt->groups[g].name);
        }
        if (p->cycle_momentum) {
            BAD(opt->kind == GF_OPTIM_ADAGRAD,
                "OneCycleLR: optimizer must support momentum with `cycle_momentum` option "
                "enabled (adagrad has neither momentum nor betas; set cycle_momentum false)");
            BAD(!(p->base_momentum >= 0 && p->base_momentum < 1) ||
                    !(p->max_momentum >= 0 && p->max_momentum < 1),
                "OneCycleLR: momenta must be in [0, 1) (base %g, max %g)", p->base_momentum,
                p->max_momentum);
        }
        break;
    case GF_SCHED_PLATEAU:
        BAD(!(p->factor < 1.0) || !(p->factor >= 0), "ReduceLROnPlateau: factor %g should be < 1.0 "
            "(and >= 0)", p->factor);
        BAD(p->patience < 0, "ReduceLROnPlateau: patience %lld must be >= 0",
            (long long)p->patience);
        BAD(p->cooldown < 0, "ReduceLROnPlateau: cooldown %lld must be >= 0",
            (long long)p->cooldown);
        BAD(!isfinite(p->threshold) || p->threshold < 0,
            "ReduceLROnPlateau: invalid threshold %g", p->threshold);
        BAD(!(p->eps >= 0), "ReduceLROnPlateau: invalid eps %g", p->eps);
        for (int g = 0; g < opt->n_groups; g++) {
            double m = p->min_lrs ? p->min_lrs[g] : p->min_lr;
            BAD(!(m >= 0) || !isfinite(m), "ReduceLROnPlateau: invalid min_lr %g for group %d", m,
                g);
        }
        break;
    default: break;
    }
#undef BAD
    return GF_OK;
}

static gf_sched *alloc_sched(gf_ctx *ctx, gf_optim *opt, const gf_sched_params *p) {
    gf_sched *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->p = *p;
    s->p.milestones = NULL;
    s->p.max_lrs = NULL;
    s->p.min_lrs = NULL;
    s->opt = opt;
    s->n_groups = opt->n_groups;
    s->base_lrs = calloc((size_t)s->n_groups, sizeof(double));
    s->last_lr = calloc((size_t)s->n_groups, sizeof(double));
    if (!s->base_lrs || !s->last_lr) goto nomem;
    return s;
nomem:
    gf_sched_free(s);
    gf_ctx_set_error(ctx, GF_ERR_NOMEM, "sched: out of memory");
    return NULL;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

gf_sched *gf_sched_new(gf_ctx *ctx, gf_optim *opt, const gf_sched_params *params) {
    if (!opt || !params) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "sched: NULL optimizer or settings");
        return NULL;
    }
    if (check_params(ctx, opt, params) != GF_OK) return NULL;
    gf_sched *s = alloc_sched(ctx, opt, params);
    if (!s) return NULL;
    const gf_sched_params *p = params;
    const int G = s->n_groups;
    if (p->kind == GF_SCHED_PLATEAU) {
        /* not an _LRScheduler: no initial step, no initial_lr */
        s->plateau_min_lrs = calloc((size_t)G, sizeof(double));
        if (!s->plateau_min_lrs) goto nomem;
        for (int g = 0; g < G; g++) {
            s->plateau_min_lrs[g] = p->min_lrs ? p->min_lrs[g] : p->min_lr;
            s->last_lr[g] = group_lr(s, g);
            s->base_lrs[g] = group_lr(s, g);
        }
        s->best = p->mode_max ? -INFINITY : INFINITY;
        return s;
    }
    if (p->kind == GF_SCHED_MULTISTEP) {
        s->milestones = malloc(sizeof(int64_t) * (size_t)p->n_milestones);
        if (!s->milestones) goto nomem;
        memcpy(s->milestones, p->milestones, sizeof(int64_t) * (size_t)p->n_milestones);
        qsort(s->milestones, (size_t)p->n_milestones, sizeof(int64_t), cmp_i64);
    }
    if (p->kind == GF_SCHED_ONECYCLE) {
        s->max_lrs = calloc((size_t)G, sizeof(double));
        s->min_lrs = calloc((size_t)G, sizeof(double));
        if (!s->max_lrs || !s->min_lrs) goto nomem;
        for (int g = 0; g < G; g++) {
            gf_optim_grp *gr = &opt->groups[g];
            s->max_lrs[g] = p->max_lrs ? p->max_lrs[g] : p->max_lr;
            gr->initial_lr = s->max_lrs[g] / p->div_factor; /* set, not setdefault */
            s->min_lrs[g] = gr->initial_lr / p->final_div_factor;
        }
        if (p->cycle_momentum) {
            s->use_beta1 = opt->kind == GF_OPTIM_ADAM || opt->kind == GF_OPTIM_ADAMW;
            for (int g = 0; g < G; g++) {
                if (s->use_beta1) opt->groups[g].hp.beta1 = p->max_momentum;
                else opt->groups[g].hp.momentum = p->max_momentum;
            }
        }
    }
    for (int g = 0; g < G; g++) {
        gf_optim_grp *gr = &opt->groups[g];
        if (isnan(gr->initial_lr)) gr->initial_lr = gr->hp.lr; /* setdefault */
        s->base_lrs[g] = gr->initial_lr;
    }
    s->last_epoch = -1;
    if (initial_step(ctx, s) != GF_OK) {
        gf_sched_free(s);
        return NULL;
    }
    return s;
nomem:
    gf_sched_free(s);
    gf_ctx_set_error(ctx, GF_ERR_NOMEM, "sched: out of memory");
    return NULL;
}

gf_sched *gf_sched_sequential(gf_ctx *ctx, gf_optim *opt, gf_sched *const *children, int n,
                              const int64_t *milestones) {
    gf_sched *s = NULL;
    int i;
    if (!opt || n < 2 || !children || !milestones) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "SequentialLR: need an optimizer, at least 2 schedules and n - 1 "
                         "milestones (got %d schedules)", n);
        goto fail;
    }
    for (i = 0; i < n; i++) {
        if (!children[i]) {
            if (gf_ctx_status(ctx) == GF_OK)
                gf_ctx_set_error(ctx, GF_ERR_INVALID, "SequentialLR: schedule %d is NULL", i);
            goto fail;
        }
        if (children[i]->opt != opt) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "SequentialLR: schedule %d belongs to another "
                             "optimizer", i);
            goto fail;
        }
        if (children[i]->p.kind == GF_SCHED_PLATEAU || children[i]->p.kind == GF_SCHED_SEQUENTIAL) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "SequentialLR: schedule %d is %s, which cannot "
                             "be sequenced", i, torch_names[children[i]->p.kind]);
            goto fail;
        }
    }
    for (i = 0; i < n - 1; i++)
        if (milestones[i] < 1 || (i > 0 && milestones[i] <= milestones[i - 1])) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "SequentialLR: milestones must be >= 1 and "
                             "strictly increasing (milestone %d is %lld)", i,
                             (long long)milestones[i]);
            goto fail;
        }
    gf_sched_params p = gf_sched_default_params(GF_SCHED_SEQUENTIAL);
    p.interval = children[n - 1]->p.interval;
    s = alloc_sched(ctx, opt, &p);
    if (!s) goto fail;
    s->children = calloc((size_t)n, sizeof *s->children);
    s->seq_milestones = malloc(sizeof(int64_t) * (size_t)(n - 1));
    if (!s->children || !s->seq_milestones) {
        gf_sched_free(s);
        s = NULL;
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "SequentialLR: out of memory");
        goto fail;
    }
    memcpy(s->seq_milestones, milestones, sizeof(int64_t) * (size_t)(n - 1));
    for (i = 0; i < n; i++) s->children[i] = children[i];
    s->n_children = n;
    s->last_epoch = 0;
    for (int g = 0; g < s->n_groups; g++) {
        opt->groups[g].hp.lr = opt->groups[g].initial_lr;
        s->base_lrs[g] = opt->groups[g].initial_lr;
    }
    for (i = 0; i < n; i++) s->children[i]->last_epoch -= 1;
    if (initial_step(ctx, s->children[0]) != GF_OK) {
        gf_sched_free(s);
        return NULL;
    }
    memcpy(s->last_lr, s->children[0]->last_lr, sizeof(double) * (size_t)s->n_groups);
    return s;
fail:
    for (i = 0; children && i < n; i++) gf_sched_free(children[i]);
    return NULL;
}

gf_sched *gf_sched_warmup(gf_ctx *ctx, gf_optim *opt, int64_t warmup_iters,
                          double start_factor, const gf_sched_params *main) {
    if (!main) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "sched warmup: NULL main schedule");
        return NULL;
    }
    gf_sched_params w = gf_sched_default_params(GF_SCHED_LINEAR);
    w.interval = main->interval;
    w.start_factor = start_factor;
    w.end_factor = 1.0;
    w.total_iters = warmup_iters;
    gf_sched *kids[2];
    kids[0] = gf_sched_new(ctx, opt, &w);
    if (!kids[0]) return NULL;
    kids[1] = gf_sched_new(ctx, opt, main);
    if (!kids[1]) {
        gf_sched_free(kids[0]);
        return NULL;
    }
    return gf_sched_sequential(ctx, opt, kids, 2, &warmup_iters);
}

/* ---- stepping --------------------------------------------------------------------------------- */

static bool is_better(const gf_sched *s, double a) {
    const gf_sched_params *p = &s->p;
    const double best = s->best;
    if (!p->mode_max && !p->threshold_abs) return a < best * (1. - p->threshold);
    if (!p->mode_max) return a < best - p->threshold;
    if (!p->threshold_abs) return a > best * (p->threshold + 1.);
    return a > best + p->threshold;
}

static gf_status plateau_step(gf_sched *s, double current) {
    s->last_epoch += 1;
    if (is_better(s, current)) {
        s->best = current;
        s->num_bad_epochs = 0;
    } else {
        s->num_bad_epochs += 1;
    }
    if (s->cooldown_counter > 0) {
        s->cooldown_counter -= 1;
        s->num_bad_epochs = 0; /* ignore any bad epochs in cooldown */
    }
    if (s->num_bad_epochs > s->p.patience) {
        for (int g = 0; g < s->n_groups; g++) {
            double old_lr = group_lr(s, g);
            double new_lr = fmax(old_lr * s->p.factor, s->plateau_min_lrs[g]);
            if (old_lr - new_lr > s->p.eps) s->opt->groups[g].hp.lr = new_lr;
        }
        s->cooldown_counter = s->p.cooldown;
        s->num_bad_epochs = 0;
    }
    for (int g = 0; g < s->n_groups; g++) s->last_lr[g] = group_lr(s, g);
    return GF_OK;
}

static gf_status sequential_step(gf_ctx *ctx, gf_sched *s) {
    s->last_epoch += 1;
    int idx = 0; /* bisect_right(milestones, last_epoch) */
    while (idx < s->n_children - 1 && s->seq_milestones[idx] <= s->last_epoch) idx++;
    gf_sched *c = s->children[idx];
    gf_status st = (idx > 0 && s->seq_milestones[idx - 1] == s->last_epoch) ? lr_step(ctx, c, 0)
                                                                            : lr_step(ctx, c, -1);
    memcpy(s->last_lr, c->last_lr, sizeof(double) * (size_t)s->n_groups);
    return st;
}

gf_status gf_sched_step(gf_ctx *ctx, gf_sched *s) {
    if (!s) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "sched: step on a NULL schedule");
    if (s->p.kind == GF_SCHED_PLATEAU)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "ReduceLROnPlateau: step needs the monitored metric "
                                "(gf_sched_step_metric)");
    if (s->p.kind == GF_SCHED_SEQUENTIAL) return sequential_step(ctx, s);
    return lr_step(ctx, s, -1);
}

gf_status gf_sched_step_metric(gf_ctx *ctx, gf_sched *s, double metric) {
    if (!s) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "sched: step on a NULL schedule");
    if (s->p.kind == GF_SCHED_PLATEAU) return plateau_step(s, metric);
    return gf_sched_step(ctx, s);
}

gf_sched_kind gf_sched_get_kind(const gf_sched *s) { return s->p.kind; }
gf_sched_interval gf_sched_get_interval(const gf_sched *s) { return s->p.interval; }
double gf_sched_last_lr(const gf_sched *s, int g) {
    return (s && g >= 0 && g < s->n_groups) ? s->last_lr[g] : NAN;
}
int64_t gf_sched_last_epoch(const gf_sched *s) { return s ? s->last_epoch : 0; }

/* ---- export / import ------------------------------------------------------------------------ */

static gf_status export_one(gf_ctx *ctx, const gf_sched *s, gf_state_list *l, const char *pre) {
    char key[256];
#define KEY(...) (snprintf(key, sizeof key, __VA_ARGS__), key)
#define TRY(x)                                                                             \
    if ((x) != GF_OK) return ctx->status
    TRY(gf_state_list_set_meta(ctx, l, KEY("%skind", pre), gf_sched_kind_name(s->p.kind)));
    TRY(gf_state_set_i64(ctx, l, KEY("%slast_epoch", pre), s->last_epoch));
    TRY(gf_state_set_i64(ctx, l, KEY("%sstep_count", pre), s->step_count));
    for (int g = 0; g < s->n_groups; g++) {
        TRY(gf_state_set_f64(ctx, l, KEY("%sbase_lr.%d", pre, g), s->base_lrs[g]));
        TRY(gf_state_set_f64(ctx, l, KEY("%slast_lr.%d", pre, g), s->last_lr[g]));
    }
    if (s->p.kind == GF_SCHED_PLATEAU) {
        TRY(gf_state_set_f64(ctx, l, KEY("%sbest", pre), s->best));
        TRY(gf_state_set_i64(ctx, l, KEY("%snum_bad_epochs", pre), s->num_bad_epochs));
        TRY(gf_state_set_i64(ctx, l, KEY("%scooldown_counter", pre), s->cooldown_counter));
    }
    if (s->p.kind == GF_SCHED_SEQUENTIAL) {
        TRY(gf_state_set_i64(ctx, l, KEY("%sn_children", pre), s->n_children));
        for (int i = 0; i < s->n_children; i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%schild.%d.", pre, i);
            TRY(export_one(ctx, s->children[i], l, sub));
        }
    }
#undef TRY
#undef KEY
    return GF_OK;
}

gf_status gf_sched_export(gf_ctx *ctx, const gf_sched *s, gf_state_list *l) {
    if (!s || !l) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "sched export: NULL argument");
    return export_one(ctx, s, l, "sched.");
}

/* Parsed dynamic state of one schedule (no pointers into the schedule: nothing changes until
 * the whole tree parsed). */
typedef struct parsed {
    int64_t last_epoch, step_count, num_bad_epochs, cooldown_counter;
    double best;
    double *base_lrs, *last_lr;
} parsed;

static gf_status parse_one(gf_ctx *ctx, const gf_sched *s, const gf_state_list *l,
                           const char *pre, parsed *out, int *at) {
    char key[256];
#define KEY(...) (snprintf(key, sizeof key, __VA_ARGS__), key)
    parsed *me = &out[(*at)++];
    const char *kind = gf_state_list_get_meta(l, KEY("%skind", pre));
    if (!kind || strcmp(kind, gf_sched_kind_name(s->p.kind)) != 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "sched import: '%s' is %s, the schedule is %s",
                                key, kind ? kind : "missing", gf_sched_kind_name(s->p.kind));
    if (gf_state_get_i64(ctx, l, KEY("%slast_epoch", pre), &me->last_epoch) != GF_OK ||
        gf_state_get_i64(ctx, l, KEY("%sstep_count", pre), &me->step_count) != GF_OK)
        return ctx->status;
    for (int g = 0; g < s->n_groups; g++)
        if (gf_state_get_f64(ctx, l, KEY("%sbase_lr.%d", pre, g), &me->base_lrs[g]) != GF_OK ||
            gf_state_get_f64(ctx, l, KEY("%slast_lr.%d", pre, g), &me->last_lr[g]) != GF_OK)
            return ctx->status;
    if (s->p.kind == GF_SCHED_PLATEAU &&
        (gf_state_get_f64(ctx, l, KEY("%sbest", pre), &me->best) != GF_OK ||
         gf_state_get_i64(ctx, l, KEY("%snum_bad_epochs", pre), &me->num_bad_epochs) != GF_OK ||
         gf_state_get_i64(ctx, l, KEY("%scooldown_counter", pre), &me->cooldown_counter) != GF_OK))
        return ctx->status;
    if (s->p.kind == GF_SCHED_SEQUENTIAL) {
        int64_t nc;
        if (gf_state_get_i64(ctx, l, KEY("%sn_children", pre), &nc) != GF_OK) return ctx->status;
        if (nc != s->n_children)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "sched import: '%s' is %lld, the "
                                    "schedule has %d", key, (long long)nc, s->n_children);
        for (int i = 0; i < s->n_children; i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%schild.%d.", pre, i);
            if (parse_one(ctx, s->children[i], l, sub, out, at) != GF_OK) return ctx->status;
        }
    }
#undef KEY
    return GF_OK;
}

static void apply_one(gf_sched *s, const parsed *in, int *at) {
    const parsed *me = &in[(*at)++];
    s->last_epoch = me->last_epoch;
    s->step_count = me->step_count;
    memcpy(s->base_lrs, me->base_lrs, sizeof(double) * (size_t)s->n_groups);
    memcpy(s->last_lr, me->last_lr, sizeof(double) * (size_t)s->n_groups);
    if (s->p.kind == GF_SCHED_PLATEAU) {
        s->best = me->best;
        s->num_bad_epochs = me->num_bad_epochs;
        s->cooldown_counter = me->cooldown_counter;
    }
    for (int i = 0; i < s->n_children; i++) apply_one(s->children[i], in, at);
}

static int count_nodes(const gf_sched *s) {
    int n = 1;
    for (int i = 0; i < s->n_children; i++) n += count_nodes(s->children[i]);
    return n;
}

gf_status gf_sched_import(gf_ctx *ctx, gf_sched *s, const gf_state_list *l) {
    if (!s || !l) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "sched import: NULL argument");
    const int nodes = count_nodes(s);
    parsed *ps = calloc((size_t)nodes, sizeof *ps);
    double *lrs = calloc((size_t)nodes * 2 * (size_t)s->n_groups, sizeof *lrs);
    gf_state_list *expect = gf_state_list_new(ctx);
    gf_status st = GF_OK;
    if (!ps || !lrs || !expect) {
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "sched import: out of memory");
        goto done;
    }
    for (int i = 0; i < nodes; i++) {
        ps[i].base_lrs = lrs + (size_t)i * 2 * (size_t)s->n_groups;
        ps[i].last_lr = ps[i].base_lrs + s->n_groups;
    }
    /* the keys this schedule writes are the keys it understands */
    if ((st = gf_sched_export(ctx, s, expect)) != GF_OK) goto done;
    for (int i = 0; i < gf_state_list_meta_count(l); i++) {
        const char *k = gf_state_list_meta_key(l, i);
        if (strncmp(k, "sched.", 6) == 0 && !gf_state_list_get_meta(expect, k)) {
            st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "sched import: unknown entry '%s' for a "
                                  "%s schedule", k, gf_sched_kind_name(s->p.kind));
            goto done;
        }
    }
    int at = 0;
    if ((st = parse_one(ctx, s, l, "sched.", ps, &at)) != GF_OK) goto done;
    at = 0;
    apply_one(s, ps, &at);
done:
    gf_state_list_free(expect);
    free(ps);
    free(lrs);
    return st;
}
