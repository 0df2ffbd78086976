/* Parameter groups from dotted parameter names (gf_optim_new_named): each spec's fnmatch
 * patterns pick its parameters, the rest go to a "default" group; every pattern must match, no
 * parameter may fall in two specs. */
#define _POSIX_C_SOURCE 200809L
#include "core/internal.h"
#include "optim/optim_internal.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>

enum { MAX_PATTERN = 256 };

/* Calls fn on each pattern of a ',' separated list (spaces around a pattern dropped); stops
 * when fn returns false. Returns the number of patterns seen, or -1 for one too long. */
typedef bool (*pattern_fn)(const char *pattern, void *user);
static int for_each_pattern(const char *list, pattern_fn fn, void *user) {
    int count = 0;
    const char *s = list;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ',') s++;
        if (!*s) break;
        const char *e = s;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t')) t--;
        size_t len = (size_t)(t - s);
        if (len >= MAX_PATTERN) return -1;
        char pat[MAX_PATTERN];
        memcpy(pat, s, len);
        pat[len] = '\0';
        count++;
        if (!fn(pat, user)) break;
        s = e;
    }
    return count;
}

typedef struct match_ctx {
    const gf_named_tensors *names;
    int spec;
    int *owner;         /* [n params] spec index or -1 */
    const gf_group_spec *specs;
    char (*pat_store)[MAX_PATTERN]; /* [n params] pattern that claimed each parameter */
    gf_ctx *ctx;
    const char *spec_label;
    bool failed;
} match_ctx;

static const char *spec_label(const gf_group_spec *sp) {
    return sp->name ? sp->name : (sp->patterns ? sp->patterns : "?");
}

static bool match_one(const char *pattern, void *user) {
    match_ctx *m = user;
    int hits = 0;
    for (int i = 0; i < m->names->n; i++) {
        if (fnmatch(pattern, m->names->items[i].name, 0) != 0) continue;
        hits++;
        if (m->owner[i] == m->spec) continue; /* two patterns of one spec: fine */
        if (m->owner[i] >= 0) {
            gf_ctx_set_error(m->ctx, GF_ERR_INVALID,
                             "optim: parameter '%s' falls in two groups: '%s' (pattern '%s') "
                             "and '%s' (pattern '%s')",
                             m->names->items[i].name, spec_label(&m->specs[m->owner[i]]),
                             m->pat_store[i], m->spec_label, pattern);
            m->failed = true;
            return false;
        }
        m->owner[i] = m->spec;
        snprintf(m->pat_store[i], MAX_PATTERN, "%s", pattern);
    }
    if (hits == 0) {
        /* name a few parameters so a typo is easy to see */
        char some[256] = "";
        size_t at = 0;
        for (int i = 0; i < m->names->n && i < 6 && at < sizeof some; i++)
            at += (size_t)snprintf(some + at, sizeof some - at, "%s%s", i ? ", " : "",
                                   m->names->items[i].name);
        gf_ctx_set_error(m->ctx, GF_ERR_INVALID,
                         "optim: group '%s': pattern '%s' matches no parameter (%d parameters: "
                         "%s%s)",
                         m->spec_label, pattern, m->names->n, some, m->names->n > 6 ? ", ..." : "");
        m->failed = true;
        return false;
    }
    return true;
}

gf_optim *gf_optim_new_named(gf_ctx *ctx, const gf_optim_params *defaults,
                             const gf_named_tensors *names, const gf_group_spec *specs,
                             int n_specs) {
    gf_optim_params def = defaults ? *defaults : gf_optim_default_params(GF_OPTIM_ADAM);
    if (gf_optim_check_params(ctx, &def) != GF_OK) return NULL;
    if (!names || names->n < 0 || (names->n > 0 && !names->items)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: NULL or malformed parameter list");
        return NULL;
    }
    if (n_specs < 0 || (n_specs > 0 && !specs)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: bad group spec list (n = %d)", n_specs);
        return NULL;
    }
    gf_optim *o = NULL;
    const int np = names->n;
    int *owner = malloc(sizeof(int) * (size_t)(np ? np : 1));
    char (*pat_store)[MAX_PATTERN] = malloc(sizeof *pat_store * (size_t)(np ? np : 1));
    gf_optim_group *groups = calloc((size_t)n_specs + 1, sizeof *groups);
    gf_tensor **tensors = malloc(sizeof *tensors * (size_t)(np ? np : 1));
    const char **pnames = malloc(sizeof *pnames * (size_t)(np ? np : 1));
    if (!owner || !pat_store || !groups || !tensors || !pnames) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "optim: out of memory");
        goto done;
    }
    if (np == 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: no parameters");
        goto done;
    }
    for (int i = 0; i < np; i++)
        if (!names->items[i].name || !names->items[i].tensor) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: parameter %d has no name or no tensor",
                             i);
            goto done;
        }
    for (int i = 0; i < np; i++) owner[i] = -1;
    for (int s = 0; s < n_specs; s++) {
        const gf_group_spec *sp = &specs[s];
        const char *label = spec_label(sp);
        if (sp->hp && sp->hp->kind != def.kind) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: group '%s' is %s but the optimizer is %s",
                             label, gf_optim_kind_name(sp->hp->kind), gf_optim_kind_name(def.kind));
            goto done;
        }
        match_ctx mc = {names, s, owner, specs, pat_store, ctx, label, false};
        int count = sp->patterns ? for_each_pattern(sp->patterns, match_one, &mc) : 0;
        if (mc.failed) goto done;
        if (count < 0) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: group '%s': a pattern is longer than %d "
                             "characters", label, MAX_PATTERN - 1);
            goto done;
        }
        if (count == 0) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: group '%s' has no patterns", label);
            goto done;
        }
    }
    /* Lay the tensors out group by group (module order within a group), the rest last. */
    int at = 0, n_groups = 0;
    for (int s = 0; s <= n_specs; s++) {
        int start = at;
        for (int i = 0; i < np; i++)
            if (owner[i] == (s < n_specs ? s : -1)) {
                tensors[at] = names->items[i].tensor;
                pnames[at] = names->items[i].name;
                at++;
            }
        if (at == start) continue; /* only the default group can be empty here */
        gf_optim_group *g = &groups[n_groups++];
        if (s < n_specs) {
            g->name = specs[s].name ? specs[s].name : specs[s].patterns;
            g->hp = specs[s].hp;
        } else {
            g->name = "default";
        }
        g->params = tensors + start;
        g->names = pnames + start;
        g->n = at - start;
    }
    o = gf_optim_new_groups(ctx, &def, groups, n_groups);
done:
    free(owner);
    free(pat_store);
    free(groups);
    free(tensors);
    free(pnames);
    return o;
}
