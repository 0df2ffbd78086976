/* Optimizers over persistent parameters in groups: construction and checks, lazily created
 * state, one step per call (PyTorch 1.13's single-tensor rules, see kernels.c for rounding),
 * and the accessors. Groups, clipping and state export live in groups.c, clip.c, state.c. */
#include "core/internal.h"
#include "optim/optim_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const kind_names[GF_OPTIM_KIND_COUNT] = {"sgd", "adam", "adamw", "rmsprop",
                                                              "adagrad"};

const char *gf_optim_kind_name(gf_optim_kind kind) {
    return (kind >= 0 && kind < GF_OPTIM_KIND_COUNT) ? kind_names[kind] : "?";
}

bool gf_optim_kind_parse(const char *name, gf_optim_kind *out) {
    for (int k = 0; name && k < GF_OPTIM_KIND_COUNT; k++)
        if (strcmp(name, kind_names[k]) == 0) {
            if (out) *out = (gf_optim_kind)k;
            return true;
        }
    return false;
}

const char *gf_optim_buf_key(gf_optim_kind kind, int k) {
    static const char *const keys[GF_OPTIM_KIND_COUNT][GF_OPTIM_MAX_BUFS] = {
        {"momentum_buffer", NULL, NULL},
        {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
        {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
        {"square_avg", "momentum_buffer", "grad_avg"},
        {"sum", NULL, NULL},
    };
    if (kind < 0 || kind >= GF_OPTIM_KIND_COUNT || k < 0 || k >= GF_OPTIM_MAX_BUFS) return NULL;
    return keys[kind][k];
}

gf_optim_params gf_optim_default_params(gf_optim_kind kind) {
    gf_optim_params p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.lr = (kind == GF_OPTIM_ADAM || kind == GF_OPTIM_ADAMW) ? 1e-3 : 1e-2;
    p.weight_decay = kind == GF_OPTIM_ADAMW ? 1e-2 : 0.0;
    p.beta1 = 0.9;
    p.beta2 = 0.999;
    p.eps = kind == GF_OPTIM_ADAGRAD ? 1e-10 : 1e-8;
    p.alpha = 0.99;
    return p;
}

/* PyTorch's constructor checks (and messages), plus lr > 0: a zero learning rate trains
 * nothing and is almost always a mistake (freeze the parameters instead). A schedule may still
 * bring an lr to 0 (cosine to eta_min 0), so an imported state may hold one (zero_lr_ok). */
gf_status gf_optim_check_params_ex(gf_ctx *ctx, const gf_optim_params *p, bool zero_lr_ok) {
    if (!p) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: NULL hyperparameters");
    if (p->kind < 0 || p->kind >= GF_OPTIM_KIND_COUNT)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: unknown optimizer kind %d",
                                (int)p->kind);
    const char *k = gf_optim_kind_name(p->kind);
#define BAD(cond, ...)                                                                     \
    if (cond) return gf_ctx_set_error(ctx, GF_ERR_INVALID, __VA_ARGS__)
#define NONNEG(field)                                                                      \
    BAD(!(p->field >= 0.0) || !isfinite(p->field), "optim %s: invalid " #field " %g (need a " \
        "finite value >= 0)", k, p->field)
    BAD(!(p->lr > 0.0 || (zero_lr_ok && p->lr == 0.0)) || !isfinite(p->lr),
        "optim %s: invalid learning rate %g (need a finite lr > 0)", k, p->lr);
    NONNEG(weight_decay);
    switch (p->kind) {
    case GF_OPTIM_SGD:
        NONNEG(momentum);
        BAD(!isfinite(p->dampening), "optim sgd: invalid dampening %g", p->dampening);
        BAD(p->nesterov && (p->momentum <= 0.0 || p->dampening != 0.0),
            "optim sgd: Nesterov momentum requires a momentum > 0 and zero dampening "
            "(momentum %g, dampening %g)", p->momentum, p->dampening);
        break;
    case GF_OPTIM_ADAM:
    case GF_OPTIM_ADAMW:
        NONNEG(eps);
        BAD(!(p->beta1 >= 0.0 && p->beta1 < 1.0), "optim %s: invalid beta1 %g (need [0, 1))", k,
            p->beta1);
        BAD(!(p->beta2 >= 0.0 && p->beta2 < 1.0), "optim %s: invalid beta2 %g (need [0, 1))", k,
            p->beta2);
        break;
    case GF_OPTIM_RMSPROP:
        NONNEG(eps);
        NONNEG(momentum);
        NONNEG(alpha);
        break;
    case GF_OPTIM_ADAGRAD:
        NONNEG(eps);
        NONNEG(lr_decay);
        NONNEG(initial_accumulator_value);
        break;
    default: break;
    }
#undef NONNEG
#undef BAD
    return GF_OK;
}

gf_status gf_optim_check_params(gf_ctx *ctx, const gf_optim_params *p) {
    return gf_optim_check_params_ex(ctx, p, false);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static bool check_tensor(gf_ctx *ctx, const gf_tensor *t, const char *name) {
    if (!t) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: parameter %s is NULL", name);
        return false;
    }
    if (t->dtype != GF_F32 || !t->persistent || !gf_tensor_is_contiguous(t)) {
        char s[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "optim: parameter %s %s must be a persistent contiguous float32 tensor "
                         "(got %s%s%s)",
                         name, gf_shape_str(t, s, sizeof s), gf_dtype_name(t->dtype),
                         t->persistent ? "" : ", arena",
                         gf_tensor_is_contiguous(t) ? "" : ", strided");
        return false;
    }
    return true;
}

void gf_optim_clear_state(gf_optim *o) {
    for (int i = 0; i < o->n; i++)
        for (int k = 0; k < GF_OPTIM_MAX_BUFS; k++) {
            free(o->ps[i].buf[k]);
            o->ps[i].buf[k] = NULL;
        }
    o->state_bytes = 0;
}

void gf_optim_free(gf_optim *opt) {
    if (!opt) return;
    if (opt->ps) {
        gf_optim_clear_state(opt);
        for (int i = 0; i < opt->n; i++) free(opt->ps[i].name);
    }
    if (opt->groups)
        for (int g = 0; g < opt->n_groups; g++) free(opt->groups[g].name);
    free(opt->ps);
    free(opt->groups);
    free(opt);
}

gf_optim *gf_optim_new_groups(gf_ctx *ctx, const gf_optim_params *defaults,
                              const gf_optim_group *groups, int n_groups) {
    gf_optim_params def = defaults ? *defaults : gf_optim_default_params(GF_OPTIM_ADAM);
    if (gf_optim_check_params(ctx, &def) != GF_OK) return NULL;
    if (n_groups < 1 || !groups) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: need at least one parameter group (got %d)",
                         n_groups);
        return NULL;
    }
    int total = 0;
    for (int g = 0; g < n_groups; g++) {
        const gf_optim_group *gr = &groups[g];
        char gname[64];
        snprintf(gname, sizeof gname, "group%d", g);
        const char *label = gr->name ? gr->name : gname;
        if (gr->n < 1 || !gr->params) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: group '%s' has no parameters (n = %d)",
                             label, gr->n);
            return NULL;
        }
        if (gr->hp) {
            if (gr->hp->kind != def.kind) {
                gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                 "optim: group '%s' is %s but the optimizer is %s", label,
                                 gf_optim_kind_name(gr->hp->kind), gf_optim_kind_name(def.kind));
                return NULL;
            }
            if (gf_optim_check_params(ctx, gr->hp) != GF_OK) return NULL;
        }
        if (total > INT32_MAX - gr->n) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: too many parameters");
            return NULL;
        }
        total += gr->n;
    }
    gf_optim *o = calloc(1, sizeof *o);
    if (o) {
        o->ps = calloc((size_t)total, sizeof *o->ps);
        o->groups = calloc((size_t)n_groups, sizeof *o->groups);
    }
    if (!o || !o->ps || !o->groups) {
        gf_optim_free(o);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "optim: out of memory");
        return NULL;
    }
    o->kind = def.kind;
    o->defaults = def;
    o->n_groups = n_groups;
    int at = 0;
    for (int g = 0; g < n_groups; g++) {
        const gf_optim_group *gr = &groups[g];
        gf_optim_grp *og = &o->groups[g];
        char gname[64];
        snprintf(gname, sizeof gname, "group%d", g);
        og->name = dup_str(gr->name ? gr->name : gname);
        og->hp = gr->hp ? *gr->hp : def;
        og->first = at;
        og->count = gr->n;
        og->initial_lr = NAN;
        if (!og->name) goto nomem;
        for (int j = 0; j < gr->n; j++, at++) {
            char num[32];
            snprintf(num, sizeof num, "%d", at);
            const char *pname = gr->names && gr->names[j] ? gr->names[j] : num;
            gf_param_state *s = &o->ps[at];
            o->n = at + 1;
            s->p = gr->params[j];
            s->group = g;
            s->name = dup_str(pname);
            if (!s->name) goto nomem;
            if (!check_tensor(ctx, s->p, pname)) goto fail;
            for (int q = 0; q < at; q++) {
                if (o->ps[q].p == s->p) {
                    gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                     "optim: parameter '%s' (group '%s') is the same tensor as "
                                     "parameter '%s' (group '%s')",
                                     pname, og->name, o->ps[q].name,
                                     o->groups[o->ps[q].group].name);
                    goto fail;
                }
                if (strcmp(o->ps[q].name, pname) == 0) {
                    gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                     "optim: parameter name '%s' appears twice (groups '%s' and "
                                     "'%s')",
                                     pname, o->groups[o->ps[q].group].name, og->name);
                    goto fail;
                }
            }
        }
    }
    return o;
nomem:
    gf_ctx_set_error(ctx, GF_ERR_NOMEM, "optim: out of memory");
fail:
    gf_optim_free(o);
    return NULL;
}

gf_optim *gf_optim_new(gf_ctx *ctx, const gf_optim_params *p, gf_tensor *const *params, int n) {
    if (n < 1 || !params) {
        gf_optim_params def = p ? *p : gf_optim_default_params(GF_OPTIM_ADAM);
        if (gf_optim_check_params(ctx, &def) != GF_OK) return NULL;
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: bad parameter list (n = %d)", n);
        return NULL;
    }
    gf_optim_group g = {"default", NULL, params, NULL, n};
    return gf_optim_new_groups(ctx, p, &g, 1);
}

/* Whether parameter slot k is used under these hyperparameters. */
static bool needs_buf(const gf_optim_params *hp, int k) {
    switch (hp->kind) {
    case GF_OPTIM_SGD: return k == 0 && hp->momentum != 0.0;
    case GF_OPTIM_ADAM:
    case GF_OPTIM_ADAMW: return k < 2 || (k == 2 && hp->amsgrad);
    case GF_OPTIM_RMSPROP:
        return k == 0 || (k == 1 && hp->momentum > 0.0) || (k == 2 && hp->centered);
    case GF_OPTIM_ADAGRAD: return k == 0;
    default: return false;
    }
}

/* Allocates the buffers this step needs (zeroed; Adagrad's sum filled with
 * initial_accumulator_value). *fresh gets a bit per buffer created now. */
static bool ensure_state(gf_ctx *ctx, gf_optim *o, gf_param_state *s, const gf_optim_params *hp,
                         unsigned *fresh) {
    *fresh = 0;
    for (int k = 0; k < GF_OPTIM_MAX_BUFS; k++) {
        if (s->buf[k] || !needs_buf(hp, k)) continue;
        size_t bytes = (size_t)s->p->numel * sizeof(float);
        s->buf[k] = calloc(1, bytes ? bytes : 1);
        if (!s->buf[k]) {
            char sh[GF_SHAPE_BUF];
            gf_ctx_set_error(ctx, GF_ERR_NOMEM,
                             "optim %s: out of memory for the state of parameter '%s' %s (%zu "
                             "bytes)",
                             gf_optim_kind_name(o->kind), s->name,
                             gf_shape_str(s->p, sh, sizeof sh), bytes);
            return false;
        }
        if (hp->kind == GF_OPTIM_ADAGRAD) {
            float v = (float)hp->initial_accumulator_value;
            for (int64_t i = 0; i < s->p->numel; i++) s->buf[k][i] = v;
        }
        o->state_bytes += bytes;
        *fresh |= 1u << k;
    }
    return true;
}

static void update(gf_ctx *ctx, const gf_optim_params *hp, gf_param_state *s, unsigned fresh) {
    gf_optim_kargs a;
    memset(&a, 0, sizeof a);
    a.n = s->p->numel;
    a.p = gf_f32(s->p);
    a.g = gf_f32(s->p->grad);
    a.maximize = hp->maximize;
    a.use_wd = hp->weight_decay != 0.0;
    a.wd = (float)hp->weight_decay;
    a.eps = (float)hp->eps;
    a.lr_neg = (float)-hp->lr;
    const double t = (double)s->steps + 1.0; /* this update's step number */
    switch (hp->kind) {
    case GF_OPTIM_SGD:
        a.buf0 = hp->momentum != 0.0 ? s->buf[0] : NULL;
        a.first = (fresh & 1u) != 0; /* torch: momentum_buffer was None */
        a.mom = (float)hp->momentum;
        a.one_minus_damp = (float)(1.0 - hp->dampening);
        a.nesterov = hp->nesterov;
        break;
    case GF_OPTIM_ADAM:
    case GF_OPTIM_ADAMW: {
        /* Bias corrections in double, as PyTorch computes them with Python floats. */
        const double bc1 = 1.0 - pow(hp->beta1, t), bc2 = 1.0 - pow(hp->beta2, t);
        a.buf0 = s->buf[0];
        a.buf1 = s->buf[1];
        a.buf2 = hp->amsgrad ? s->buf[2] : NULL;
        a.step_neg = (float)-(hp->lr / bc1);
        a.bc2_sqrt = (float)sqrt(bc2);
        a.b1 = (float)hp->beta1;
        a.b2 = (float)hp->beta2;
        a.omb1 = (float)(1.0 - hp->beta1);
        a.omb2 = (float)(1.0 - hp->beta2);
        a.decay = (float)(1.0 - hp->lr * hp->weight_decay);
        a.adamw = hp->kind == GF_OPTIM_ADAMW;
        break;
    }
    case GF_OPTIM_RMSPROP:
        a.buf0 = s->buf[0];
        a.buf1 = hp->momentum > 0.0 ? s->buf[1] : NULL;
        a.buf2 = hp->centered ? s->buf[2] : NULL;
        a.alpha = (float)hp->alpha;
        a.one_minus_alpha = (float)(1.0 - hp->alpha);
        a.mom = (float)hp->momentum;
        break;
    case GF_OPTIM_ADAGRAD:
        a.buf0 = s->buf[0];
        a.clr_neg = (float)-(hp->lr / (1.0 + (t - 1.0) * hp->lr_decay));
        break;
    default: return;
    }
    gf_optim_run_kernel(ctx, hp->kind, &a);
}

gf_status gf_optim_step(gf_ctx *ctx, gf_optim *opt) {
    if (!opt) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: step on a NULL optimizer");
    for (int i = 0; i < opt->n; i++) {
        gf_param_state *s = &opt->ps[i];
        if (!s->p->requires_grad || !s->p->grad) continue;
        const gf_optim_params *hp = &opt->groups[s->group].hp;
        unsigned fresh;
        if (!ensure_state(ctx, opt, s, hp, &fresh)) return ctx->status;
        update(ctx, hp, s, fresh);
        s->steps++;
    }
    opt->steps++;
    return GF_OK;
}

void gf_optim_zero_grad(gf_optim *opt) {
    if (!opt) return;
    for (int i = 0; i < opt->n; i++) gf_tensor_zero_grad(opt->ps[i].p);
}

/* ---- accessors ----------------------------------------------------------------------------- */

static bool group_ok(const gf_optim *o, int g) { return o && g >= 0 && g < o->n_groups; }
static bool param_ok(const gf_optim *o, int i) { return o && i >= 0 && i < o->n; }

gf_optim_kind gf_optim_get_kind(const gf_optim *opt) { return opt->kind; }
const gf_optim_params *gf_optim_get_params(const gf_optim *opt) { return &opt->groups[0].hp; }
void gf_optim_set_lr(gf_optim *opt, double lr) {
    for (int g = 0; opt && g < opt->n_groups; g++) opt->groups[g].hp.lr = lr;
}
int gf_optim_n_groups(const gf_optim *opt) { return opt ? opt->n_groups : 0; }
const char *gf_optim_group_name(const gf_optim *opt, int g) {
    return group_ok(opt, g) ? opt->groups[g].name : NULL;
}
const gf_optim_params *gf_optim_group_params(const gf_optim *opt, int g) {
    return group_ok(opt, g) ? &opt->groups[g].hp : NULL;
}
gf_status gf_optim_set_group_params(gf_ctx *ctx, gf_optim *opt, int g, const gf_optim_params *p) {
    if (!group_ok(opt, g))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: no parameter group %d", g);
    if (gf_optim_check_params(ctx, p) != GF_OK) return ctx->status;
    if (p->kind != opt->kind)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "optim: group '%s' cannot change kind from %s to %s",
                                opt->groups[g].name, gf_optim_kind_name(opt->kind),
                                gf_optim_kind_name(p->kind));
    opt->groups[g].hp = *p;
    return GF_OK;
}
double gf_optim_group_lr(const gf_optim *opt, int g) {
    return group_ok(opt, g) ? opt->groups[g].hp.lr : NAN;
}
void gf_optim_set_group_lr(gf_optim *opt, int g, double lr) {
    if (group_ok(opt, g)) opt->groups[g].hp.lr = lr;
}
int gf_optim_group_first(const gf_optim *opt, int g) {
    return group_ok(opt, g) ? opt->groups[g].first : -1;
}
int gf_optim_group_count(const gf_optim *opt, int g) {
    return group_ok(opt, g) ? opt->groups[g].count : 0;
}
int gf_optim_n_params(const gf_optim *opt) { return opt ? opt->n : 0; }
gf_tensor *gf_optim_param(const gf_optim *opt, int i) {
    return param_ok(opt, i) ? opt->ps[i].p : NULL;
}
const char *gf_optim_param_name(const gf_optim *opt, int i) {
    return param_ok(opt, i) ? opt->ps[i].name : NULL;
}
int gf_optim_param_group(const gf_optim *opt, int i) {
    return param_ok(opt, i) ? opt->ps[i].group : -1;
}
int gf_optim_find_param(const gf_optim *opt, const char *name) {
    for (int i = 0; opt && name && i < opt->n; i++)
        if (strcmp(opt->ps[i].name, name) == 0) return i;
    return -1;
}
int64_t gf_optim_steps(const gf_optim *opt) { return opt ? opt->steps : 0; }
size_t gf_optim_state_bytes(const gf_optim *opt) { return opt ? opt->state_bytes : 0; }
int64_t gf_optim_param_steps(const gf_optim *opt, int i) {
    return param_ok(opt, i) ? opt->ps[i].steps : 0;
}

const float *gf_optim_state(const gf_optim *opt, int i, const char *key) {
    if (!param_ok(opt, i) || !key) return NULL;
    for (int k = 0; k < GF_OPTIM_MAX_BUFS; k++) {
        const char *name = gf_optim_buf_key(opt->kind, k);
        if (name && strcmp(name, key) == 0) return opt->ps[i].buf[k];
    }
    return NULL;
}
