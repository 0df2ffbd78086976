/* Named state lists (tensors + string metadata, the shape of a safetensors file) and the
 * optimizer's export/import through them: everything needed to continue training bitwise. */
#define _POSIX_C_SOURCE 200809L
#include "core/internal.h"
#include "optim/optim_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

struct gf_state_list {
    int n, cap;
    char **names;
    gf_tensor **tensors;
    bool *owned;
    int n_meta, cap_meta;
    char **keys, **values;
};

gf_state_list *gf_state_list_new(gf_ctx *ctx) {
    gf_state_list *l = calloc(1, sizeof *l);
    if (!l) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "state list: out of memory");
    return l;
}

void gf_state_list_free(gf_state_list *l) {
    if (!l) return;
    for (int i = 0; i < l->n; i++) {
        free(l->names[i]);
        if (l->owned[i]) gf_tensor_free(l->tensors[i]);
    }
    for (int i = 0; i < l->n_meta; i++) {
        free(l->keys[i]);
        free(l->values[i]);
    }
    free(l->names);
    free(l->tensors);
    free(l->owned);
    free(l->keys);
    free(l->values);
    free(l);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

gf_status gf_state_list_add(gf_ctx *ctx, gf_state_list *l, const char *name, gf_tensor *t,
                            bool take_ownership) {
    gf_status st = GF_OK;
    if (!l || !name || !*name || !t) {
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "state list: NULL list, tensor or empty name");
        goto fail;
    }
    if (gf_state_list_find(l, name)) {
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "state list: tensor '%s' added twice", name);
        goto fail;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **nn = realloc(l->names, sizeof *nn * (size_t)cap);
        if (nn) l->names = nn;
        gf_tensor **nt = realloc(l->tensors, sizeof *nt * (size_t)cap);
        if (nt) l->tensors = nt;
        bool *no = realloc(l->owned, sizeof *no * (size_t)cap);
        if (no) l->owned = no;
        if (!nn || !nt || !no) goto nomem;
        l->cap = cap;
    }
    char *copy = dup_str(name);
    if (!copy) goto nomem;
    l->names[l->n] = copy;
    l->tensors[l->n] = t;
    l->owned[l->n] = take_ownership;
    l->n++;
    return GF_OK;
nomem:
    st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "state list: out of memory");
fail:
    if (take_ownership) gf_tensor_free(t);
    return st;
}

gf_status gf_state_list_set_meta(gf_ctx *ctx, gf_state_list *l, const char *key,
                                 const char *value) {
    if (!l || !key || !*key || !value)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "state list: NULL list, key or value");
    char *v = dup_str(value);
    if (!v) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "state list: out of memory");
    for (int i = 0; i < l->n_meta; i++)
        if (strcmp(l->keys[i], key) == 0) {
            free(l->values[i]);
            l->values[i] = v;
            return GF_OK;
        }
    if (l->n_meta == l->cap_meta) {
        int cap = l->cap_meta ? 2 * l->cap_meta : 32;
        char **nk = realloc(l->keys, sizeof *nk * (size_t)cap);
        if (nk) l->keys = nk;
        char **nv = realloc(l->values, sizeof *nv * (size_t)cap);
        if (nv) l->values = nv;
        if (!nk || !nv) {
            free(v);
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "state list: out of memory");
        }
        l->cap_meta = cap;
    }
    char *k = dup_str(key);
    if (!k) {
        free(v);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "state list: out of memory");
    }
    l->keys[l->n_meta] = k;
    l->values[l->n_meta] = v;
    l->n_meta++;
    return GF_OK;
}

int gf_state_list_count(const gf_state_list *l) { return l ? l->n : 0; }
const char *gf_state_list_name(const gf_state_list *l, int i) {
    return l && i >= 0 && i < l->n ? l->names[i] : NULL;
}
gf_tensor *gf_state_list_tensor(const gf_state_list *l, int i) {
    return l && i >= 0 && i < l->n ? l->tensors[i] : NULL;
}
gf_tensor *gf_state_list_find(const gf_state_list *l, const char *name) {
    for (int i = 0; l && name && i < l->n; i++)
        if (strcmp(l->names[i], name) == 0) return l->tensors[i];
    return NULL;
}
int gf_state_list_meta_count(const gf_state_list *l) { return l ? l->n_meta : 0; }
const char *gf_state_list_meta_key(const gf_state_list *l, int i) {
    return l && i >= 0 && i < l->n_meta ? l->keys[i] : NULL;
}
const char *gf_state_list_meta_value(const gf_state_list *l, int i) {
    return l && i >= 0 && i < l->n_meta ? l->values[i] : NULL;
}
const char *gf_state_list_get_meta(const gf_state_list *l, const char *key) {
    for (int i = 0; l && key && i < l->n_meta; i++)
        if (strcmp(l->keys[i], key) == 0) return l->values[i];
    return NULL;
}

gf_status gf_state_list_to_writer(gf_ctx *ctx, const gf_state_list *l, gf_st_writer *w) {
    if (!l || !w) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "state list: NULL list or writer");
    for (int i = 0; i < l->n; i++) {
        gf_st_dtype as = l->tensors[i]->dtype == GF_F32 ? GF_ST_F32 : GF_ST_I64;
        if (gf_st_writer_add(w, l->names[i], l->tensors[i], as) != GF_OK) return ctx->status;
    }
    for (int i = 0; i < l->n_meta; i++)
        if (gf_st_writer_set_metadata(w, l->keys[i], l->values[i]) != GF_OK) return ctx->status;
    return GF_OK;
}

static bool has_prefix(const char *s, const char *prefix) {
    return !prefix || strncmp(s, prefix, strlen(prefix)) == 0;
}

gf_state_list *gf_state_list_from_file(gf_ctx *ctx, const gf_st_file *f, const char *prefix) {
    if (!f) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "state list: NULL file");
        return NULL;
    }
    gf_state_list *l = gf_state_list_new(ctx);
    if (!l) return NULL;
    for (int i = 0; i < gf_st_count(f); i++) {
        const gf_st_info *info = gf_st_get(f, i);
        if (!has_prefix(info->name, prefix)) continue;
        gf_tensor *t = gf_st_load(ctx, f, info);
        if (!t || gf_state_list_add(ctx, l, info->name, t, true) != GF_OK) goto fail;
    }
    for (int i = 0; i < gf_st_metadata_count(f); i++) {
        const char *k = gf_st_metadata_key(f, i);
        if (!has_prefix(k, prefix)) continue;
        if (gf_state_list_set_meta(ctx, l, k, gf_st_metadata_value(f, i)) != GF_OK) goto fail;
    }
    return l;
fail:
    gf_state_list_free(l);
    return NULL;
}

/* ---- numbers in metadata (shared with sched.c) ------------------------------------------- */

gf_status gf_state_set_f64(gf_ctx *ctx, gf_state_list *l, const char *key, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", v);
    return gf_state_list_set_meta(ctx, l, key, buf);
}

gf_status gf_state_set_i64(gf_ctx *ctx, gf_state_list *l, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return gf_state_list_set_meta(ctx, l, key, buf);
}

/* Parses the whole of key's value as a double ("inf", "nan" accepted); error when missing or
 * malformed. */
gf_status gf_state_get_f64(gf_ctx *ctx, const gf_state_list *l, const char *key, double *out) {
    const char *s = gf_state_list_get_meta(l, key);
    if (!s) return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "state: missing '%s'", key);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || (errno == ERANGE && isfinite(v) && v != 0.0))
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "state: '%s' = '%s' is not a number", key, s);
    *out = v;
    return GF_OK;
}

gf_status gf_state_get_i64(gf_ctx *ctx, const gf_state_list *l, const char *key, int64_t *out) {
    const char *s = gf_state_list_get_meta(l, key);
    if (!s) return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "state: missing '%s'", key);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno == ERANGE)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "state: '%s' = '%s' is not an integer", key,
                                s);
    *out = (int64_t)v;
    return GF_OK;
}

/* ---- the optimizer ----------------------------------------------------------------------- */

/* Every field of gf_optim_params except kind, by name. */
typedef struct hp_field {
    const char *name;
    bool is_bool;
    size_t offset;
} hp_field;

#define F(name) {#name, false, offsetof(gf_optim_params, name)}
#define B(name) {#name, true, offsetof(gf_optim_params, name)}
static const hp_field hp_fields[] = {
    F(lr),    F(weight_decay), B(maximize), F(momentum), F(dampening), B(nesterov),
    F(beta1), F(beta2),        B(amsgrad),  F(eps),      F(alpha),     B(centered),
    F(lr_decay), F(initial_accumulator_value),
};
#undef F
#undef B
enum { N_HP_FIELDS = sizeof hp_fields / sizeof hp_fields[0] };

static gf_status set_key(gf_ctx *ctx, gf_state_list *l, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static gf_status set_key(gf_ctx *ctx, gf_state_list *l, const char *value, const char *fmt, ...) {
    char key[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    return gf_state_list_set_meta(ctx, l, key, value);
}

static void fmt_f64(char *buf, size_t n, double v) { snprintf(buf, n, "%.17g", v); }

gf_status gf_optim_export(gf_ctx *ctx, const gf_optim *opt, gf_state_list *l) {
    if (!opt || !l) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim export: NULL argument");
    char v[64];
#define TRY(x)                                                                             \
    if ((x) != GF_OK) return ctx->status
    TRY(gf_state_list_set_meta(ctx, l, "optim.kind", gf_optim_kind_name(opt->kind)));
    TRY(gf_state_set_i64(ctx, l, "optim.steps", opt->steps));
    TRY(gf_state_set_i64(ctx, l, "optim.n_groups", opt->n_groups));
    for (int g = 0; g < opt->n_groups; g++) {
        const gf_optim_grp *gr = &opt->groups[g];
        TRY(set_key(ctx, l, gr->name, "optim.group.%d.name", g));
        size_t len = 1;
        for (int i = gr->first; i < gr->first + gr->count; i++) len += strlen(opt->ps[i].name) + 1;
        char *plist = malloc(len);
        if (!plist) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "optim export: out of memory");
        plist[0] = '\0';
        for (int i = gr->first, at = 0; i < gr->first + gr->count; i++)
            at += snprintf(plist + at, len - (size_t)at, "%s%s", i > gr->first ? "," : "",
                           opt->ps[i].name);
        gf_status s = set_key(ctx, l, plist, "optim.group.%d.params", g);
        free(plist);
        TRY(s);
        for (int f = 0; f < N_HP_FIELDS; f++) {
            const char *base = (const char *)&gr->hp + hp_fields[f].offset;
            if (hp_fields[f].is_bool) snprintf(v, sizeof v, "%s", *(const bool *)base ? "true" : "false");
            else fmt_f64(v, sizeof v, *(const double *)base);
            TRY(set_key(ctx, l, v, "optim.group.%d.%s", g, hp_fields[f].name));
        }
        if (!isnan(gr->initial_lr)) {
            fmt_f64(v, sizeof v, gr->initial_lr);
            TRY(set_key(ctx, l, v, "optim.group.%d.initial_lr", g));
        }
    }
    for (int i = 0; i < opt->n; i++) {
        const gf_param_state *s = &opt->ps[i];
        bool any = s->steps > 0;
        for (int k = 0; k < GF_OPTIM_MAX_BUFS; k++) any = any || s->buf[k];
        if (!any) continue;
        snprintf(v, sizeof v, "%lld", (long long)s->steps);
        TRY(set_key(ctx, l, v, "optim.step.%s", s->name));
        for (int k = 0; k < GF_OPTIM_MAX_BUFS; k++) {
            if (!s->buf[k]) continue;
            char name[1024];
            snprintf(name, sizeof name, "optim.state.%s.%s", s->name,
                     gf_optim_buf_key(opt->kind, k));
            gf_tensor *t = gf_tensor_wrap(ctx, GF_F32, s->p->ndim, s->p->shape, s->buf[k]);
            if (!t) return ctx->status;
            TRY(gf_state_list_add(ctx, l, name, t, true));
        }
    }
#undef TRY
    return GF_OK;
}

static bool parse_bool(const char *s, bool *out) {
    if (s && strcmp(s, "true") == 0) *out = true;
    else if (s && strcmp(s, "false") == 0) *out = false;
    else return false;
    return true;
}

/* The buffer slot of a key name for kind, or -1. */
static int slot_of(gf_optim_kind kind, const char *key) {
    for (int k = 0; k < GF_OPTIM_MAX_BUFS; k++) {
        const char *name = gf_optim_buf_key(kind, k);
        if (name && strcmp(name, key) == 0) return k;
    }
    return -1;
}

/* Splits "optim.state.<param>.<key>" into a parameter index and a slot (param names may hold
 * dots; keys do not). */
static bool parse_state_name(const gf_optim *o, const char *name, int *param, int *slot) {
    const char *rest = name + strlen("optim.state.");
    const char *dot = strrchr(rest, '.');
    if (!dot || dot == rest) return false;
    char pname[1024];
    size_t len = (size_t)(dot - rest);
    if (len >= sizeof pname) return false;
    memcpy(pname, rest, len);
    pname[len] = '\0';
    *param = gf_optim_find_param(o, pname);
    *slot = slot_of(o->kind, dot + 1);
    return *param >= 0 && *slot >= 0;
}

/* What an import parses before it changes anything: the optimizer is replaced only when all of
 * it fits. */
typedef struct import_plan {
    gf_optim_params *hps;  /* per group */
    double *init_lr;       /* per group */
    int64_t *psteps;       /* per parameter */
    const gf_tensor **bufs; /* [parameter][slot], tensors of the state list */
} import_plan;

static void import_plan_free(import_plan *pl) {
    free(pl->hps);
    free(pl->init_lr);
    free(pl->psteps);
    free(pl->bufs);
}

/* The comma-separated parameter names of group g, as export writes them, equal the state's. */
static gf_status import_check_group_params(gf_ctx *ctx, const gf_optim *opt, const gf_state_list *l,
                                           int g) {
    const gf_optim_grp *gr = &opt->groups[g];
    char key[64];
    snprintf(key, sizeof key, "optim.group.%d.params", g);
    const char *plist = gf_state_list_get_meta(l, key);
    size_t len = 1;
    for (int i = gr->first; i < gr->first + gr->count; i++) len += strlen(opt->ps[i].name) + 1;
    char *mine = malloc(len);
    if (!mine) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "optim import: out of memory");
    mine[0] = '\0';
    for (int i = gr->first, at = 0; i < gr->first + gr->count; i++)
        at += snprintf(mine + at, len - (size_t)at, "%s%s", i > gr->first ? "," : "",
                       opt->ps[i].name);
    bool same = plist && strcmp(plist, mine) == 0;
    free(mine);
    if (!same)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "optim import: group %d ('%s') holds other parameters in the state "
                                "(%.200s)",
                                g, gr->name, plist ? plist : "none");
    return GF_OK;
}

/* Group g's hyperparameters and initial learning rate into the plan. */
static gf_status import_group(gf_ctx *ctx, const gf_optim *opt, const gf_state_list *l, int g,
                              import_plan *pl) {
    if (import_check_group_params(ctx, opt, l, g) != GF_OK) return ctx->status;
    char key[128];
    pl->hps[g].kind = opt->kind;
    for (int f = 0; f < N_HP_FIELDS; f++) {
        snprintf(key, sizeof key, "optim.group.%d.%s", g, hp_fields[f].name);
        char *base = (char *)&pl->hps[g] + hp_fields[f].offset;
        if (hp_fields[f].is_bool) {
            if (!parse_bool(gf_state_list_get_meta(l, key), (bool *)base))
                return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                        "optim import: '%s' missing or not true/false", key);
        } else if (gf_state_get_f64(ctx, l, key, (double *)base) != GF_OK) {
            return ctx->status;
        }
    }
    if (gf_optim_check_params_ex(ctx, &pl->hps[g], true) != GF_OK) return ctx->status;
    snprintf(key, sizeof key, "optim.group.%d.initial_lr", g);
    pl->init_lr[g] = NAN;
    if (gf_state_list_get_meta(l, key) && gf_state_get_f64(ctx, l, key, &pl->init_lr[g]) != GF_OK)
        return ctx->status;
    return GF_OK;
}

/* Every optim.* metadata key must be one import reads; per-parameter step counts go to the plan. */
static gf_status import_meta_keys(gf_ctx *ctx, const gf_optim *opt, const gf_state_list *l,
                                  import_plan *pl) {
    for (int i = 0; i < gf_state_list_meta_count(l); i++) {
        const char *k = gf_state_list_meta_key(l, i);
        if (!has_prefix(k, "optim.")) continue;
        if (!strcmp(k, "optim.kind") || !strcmp(k, "optim.steps") || !strcmp(k, "optim.n_groups"))
            continue;
        int g, used = 0;
        if (sscanf(k, "optim.group.%d.%n", &g, &used) == 1 && used > 0 && g >= 0 &&
            g < opt->n_groups) {
            const char *field = k + used;
            bool known = !strcmp(field, "name") || !strcmp(field, "params") ||
                         !strcmp(field, "initial_lr");
            for (int f = 0; f < N_HP_FIELDS && !known; f++)
                known = !strcmp(field, hp_fields[f].name);
            if (known) continue;
        } else if (has_prefix(k, "optim.step.")) {
            int p = gf_optim_find_param(opt, k + strlen("optim.step."));
            if (p < 0)
                return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                        "optim import: '%s' names no parameter of the optimizer", k);
            if (gf_state_get_i64(ctx, l, k, &pl->psteps[p]) != GF_OK) return ctx->status;
            if (pl->psteps[p] < 0)
                return gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim import: '%s' is negative", k);
            continue;
        }
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim import: unknown entry '%s'", k);
    }
    return GF_OK;
}

/* The optim.state.* tensors into the plan's slots, each checked against its parameter; state
 * without a step count (or the reverse) means a damaged file. */
static gf_status import_state_tensors(gf_ctx *ctx, const gf_optim *opt, const gf_state_list *l,
                                      import_plan *pl) {
    for (int i = 0; i < gf_state_list_count(l); i++) {
        const char *name = gf_state_list_name(l, i);
        if (!has_prefix(name, "optim.")) continue;
        int p, slot;
        if (!has_prefix(name, "optim.state.") || !parse_state_name(opt, name, &p, &slot))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "optim import: tensor '%s' is not state of a %s parameter",
                                    name, gf_optim_kind_name(opt->kind));
        const gf_tensor *t = gf_state_list_tensor(l, i);
        if (t->dtype != GF_F32 || !gf_same_shape(t, opt->ps[p].p) ||
            !gf_tensor_is_contiguous(t)) {
            char a[GF_SHAPE_BUF], b[GF_SHAPE_BUF];
            return gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                                    "optim import: '%s' is %s %s, the parameter '%s' is float32 %s",
                                    name, gf_dtype_name(t->dtype), gf_shape_str(t, a, sizeof a),
                                    opt->ps[p].name, gf_shape_str(opt->ps[p].p, b, sizeof b));
        }
        pl->bufs[(size_t)p * GF_OPTIM_MAX_BUFS + (size_t)slot] = t;
    }
    char key[1024];
    for (int p = 0; p < opt->n; p++) {
        bool any = false;
        for (int k = 0; k < GF_OPTIM_MAX_BUFS; k++)
            any = any || pl->bufs[(size_t)p * GF_OPTIM_MAX_BUFS + k];
        snprintf(key, sizeof key, "optim.step.%s", opt->ps[p].name);
        if (any && !gf_state_list_get_meta(l, key))
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "optim import: state of '%s' without '%s'",
                                    opt->ps[p].name, key);
    }
    return GF_OK;
}

/* Copies of the plan's buffers first (allocation can fail), then the swap. */
static gf_status import_apply(gf_ctx *ctx, gf_optim *opt, const import_plan *pl, int64_t steps) {
    const size_t n_bufs = (size_t)opt->n * GF_OPTIM_MAX_BUFS;
    float **fresh = calloc(n_bufs, sizeof *fresh);
    if (!fresh) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "optim import: out of memory");
    size_t bytes_total = 0;
    for (size_t j = 0; j < n_bufs; j++) {
        if (!pl->bufs[j]) continue;
        size_t bytes = (size_t)pl->bufs[j]->numel * sizeof(float);
        fresh[j] = malloc(bytes ? bytes : 1);
        if (!fresh[j]) {
            for (size_t q = 0; q < j; q++) free(fresh[q]);
            free(fresh);
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "optim import: out of memory (%zu bytes)",
                                    bytes);
        }
        memcpy(fresh[j], pl->bufs[j]->data, bytes);
        bytes_total += bytes;
    }
    gf_optim_clear_state(opt);
    for (int p = 0; p < opt->n; p++) {
        opt->ps[p].steps = pl->psteps[p];
        for (int k = 0; k < GF_OPTIM_MAX_BUFS; k++)
            opt->ps[p].buf[k] = fresh[(size_t)p * GF_OPTIM_MAX_BUFS + k];
    }
    for (int g = 0; g < opt->n_groups; g++) {
        opt->groups[g].hp = pl->hps[g];
        opt->groups[g].initial_lr = pl->init_lr[g];
    }
    opt->steps = steps;
    opt->state_bytes = bytes_total;
    free(fresh);
    return GF_OK;
}

gf_status gf_optim_import(gf_ctx *ctx, gf_optim *opt, const gf_state_list *l) {
    if (!opt || !l) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim import: NULL argument");
    const char *kind = gf_state_list_get_meta(l, "optim.kind");
    if (!kind) return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "optim import: no 'optim.kind' entry");
    if (strcmp(kind, gf_optim_kind_name(opt->kind)) != 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "optim import: the state is for %s, the optimizer is %s", kind,
                                gf_optim_kind_name(opt->kind));
    int64_t steps, n_groups;
    if (gf_state_get_i64(ctx, l, "optim.steps", &steps) != GF_OK ||
        gf_state_get_i64(ctx, l, "optim.n_groups", &n_groups) != GF_OK)
        return ctx->status;
    if (n_groups != opt->n_groups || steps < 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "optim import: the state has %lld groups, the optimizer %d",
                                (long long)n_groups, opt->n_groups);
    import_plan pl = {
        .hps = calloc((size_t)opt->n_groups, sizeof *pl.hps),
        .init_lr = calloc((size_t)opt->n_groups, sizeof *pl.init_lr),
        .psteps = calloc((size_t)opt->n, sizeof *pl.psteps),
        .bufs = calloc((size_t)opt->n * GF_OPTIM_MAX_BUFS, sizeof *pl.bufs),
    };
    gf_status st = GF_OK;
    if (!pl.hps || !pl.init_lr || !pl.psteps || !pl.bufs)
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "optim import: out of memory");
    for (int g = 0; g < opt->n_groups && st == GF_OK; g++) st = import_group(ctx, opt, l, g, &pl);
    if (st == GF_OK) st = import_meta_keys(ctx, opt, l, &pl);
    if (st == GF_OK) st = import_state_tensors(ctx, opt, l, &pl);
    if (st == GF_OK) st = import_apply(ctx, opt, &pl, steps);
    import_plan_free(&pl);
    return st;
}
