/* Cut points inside a model: the steps a sweep probes (gf_transfer_points_of) and the outputs
 * of any modules in one forward pass (gf_transfer_forward_points), for graft probe on bundles. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "transfer/transfer_internal.h"

/* ---- the steps ----------------------------------------------------------------------------- */

typedef struct {
    gf_transfer_points *p;
    int cap;
    const gf_module **mods;
    const gf_module *head;
    bool at_head, oom;
} steps;

static bool push(steps *s, const gf_module *m, char *path) {
    if (s->p->n == s->cap) {
        int nc = s->cap ? 2 * s->cap : 16;
        char **pp = realloc(s->p->path, sizeof *pp * (size_t)nc);
        if (pp) s->p->path = pp;
        bool *pb = pp ? realloc(s->p->block_end, sizeof *pb * (size_t)nc) : NULL;
        if (pb) s->p->block_end = pb;
        const gf_module **pm = pb ? realloc(s->mods, sizeof *pm * (size_t)nc) : NULL;
        if (pm) s->mods = pm;
        if (!pm) {
            free(path);
            return !(s->oom = true);
        }
        s->cap = nc;
    }
    s->mods[s->p->n] = m;
    s->p->block_end[s->p->n] = false;
    s->p->path[s->p->n++] = path;
    return true;
}

static bool collect(steps *s, const gf_module *m, const char *prefix) {
    for (int i = 0; i < gf_module_num_children(m) && !s->at_head; i++) {
        const char *name;
        const gf_module *c = gf_module_child_at(m, i, &name);
        size_t len = strlen(prefix) + strlen(name) + 2;
        char *path = malloc(len);
        if (!path) return !(s->oom = true);
        snprintf(path, len, "%s%s%s", prefix, prefix[0] ? "." : "", name);
        if (c == s->head) {
            free(path);
            s->at_head = true;
        } else if (strcmp(gf_module_type(c), "Sequential") == 0) {
            bool ok = collect(s, c, path);
            free(path);
            if (!ok) return false;
        } else if (!push(s, c, path)) {
            return false;
        }
    }
    return true;
}

/* Modules after which a layer is not complete yet. */
static bool continues_layer(const gf_module *m) {
    static const char *const types[] = {"ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid",
                                        "Tanh", "Softplus", "BatchNorm1d", "BatchNorm2d",
                                        "Dropout", NULL};
    for (int i = 0; types[i]; i++)
        if (strcmp(gf_module_type(m), types[i]) == 0) return true;
    return false;
}

gf_transfer_points *gf_transfer_points_of(gf_ctx *ctx, const gf_module *m, const char *head_path) {
    char def[GF_TRANSFER_PATH_MAX];
    if (!m) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "cut points: module is NULL");
        return NULL;
    }
    if (!head_path && !(head_path = gf_transfer_default_head(ctx, m, def, sizeof def))) return NULL;
    steps s = {.head = gf_module_child(m, head_path)};
    if (!s.head) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "cut points: no module \"%s\" in %s", head_path,
                         gf_module_type(m));
        return NULL;
    }
    if (!(s.p = calloc(1, sizeof *s.p)) || !collect(&s, m, "")) {
        gf_transfer_points_free(s.p);
        free(s.mods);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "cut points: out of memory");
        return NULL;
    }
    for (int i = 0; i < s.p->n; i++)
        s.p->block_end[i] = strcmp(gf_module_type(s.mods[i]), "Flatten") != 0 &&
                            !(i + 1 < s.p->n && continues_layer(s.mods[i + 1]));
    free(s.mods);
    return s.p;
}

void gf_transfer_points_free(gf_transfer_points *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) free(p->path[i]);
    free(p->path);
    free(p->block_end);
    free(p);
}

/* ---- the outputs ---------------------------------------------------------------------------- */

/* The wrapper's forward: the wrapped module's, its output kept in *user. */
static gf_tensor *keep_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    gf_tensor *y = gf_module_forward(ctx, gf_module_child(self, "inner"), x);
    *(gf_tensor **)user = y;
    return y;
}

static int depth(const char *path) {
    int d = 0;
    for (; *path; path++) d += *path == '.';
    return d;
}

/* Puts back the wrapped modules order[0..n) (wrapped in that order: undone in reverse). */
static void unwrap(gf_ctx *ctx, gf_module *m, const char *const *paths, const int *order, int n) {
    for (int k = n - 1; k >= 0; k--) {
        const char *path = paths[order[k]];
        gf_module *w = gf_module_child(m, path);
        gf_module *inner = gf_module_detach(ctx, w, "inner");
        gf_module_free(gf_module_swap(ctx, m, path, inner));
    }
}

/* Wraps the modules at paths, deepest first (a module inside another named one is found by
 * its path before the outer one is wrapped); order gets the wrapping order. Returns how many
 * were wrapped; fewer than n after an error. */
static int wrap(gf_ctx *ctx, gf_module *m, const char *const *paths, int n, gf_tensor **outs,
                int *order) {
    for (int k = 0; k < n; k++) order[k] = k;
    for (int a = 1; a < n; a++) /* insertion sort by depth, deepest first, stable */
        for (int b = a; b > 0 && depth(paths[order[b]]) > depth(paths[order[b - 1]]); b--) {
            int t = order[b];
            order[b] = order[b - 1], order[b - 1] = t;
        }
    for (int k = 0; k < n; k++) {
        const char *path = paths[order[k]];
        for (int j = 0; j < k; j++)
            if (strcmp(paths[order[j]], path) == 0) {
                gf_ctx_set_error(ctx, GF_ERR_INVALID, "cut points: \"%s\" is named twice", path);
                return k;
            }
        if (!path[0] || !gf_module_child(m, path)) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "cut points: no module \"%s\" in %s", path,
                             gf_module_type(m));
            return k;
        }
        gf_module *w = gf_nn_container(ctx, "CutPoint", keep_forward, &outs[order[k]], NULL);
        gf_module *inner = w ? gf_module_swap(ctx, m, path, w) : NULL;
        if (!inner) {
            gf_module_free(w);
            return k;
        }
        if (gf_module_add(ctx, w, "inner", inner) != GF_OK) { /* cannot fail: a fresh container */
            gf_module_free(gf_module_swap(ctx, m, path, inner));
            return k;
        }
    }
    return n;
}

gf_status gf_transfer_forward_points(gf_ctx *ctx, gf_module *m, gf_tensor *x,
                                     const char *const *paths, int n, gf_tensor **outs) {
    if (!m || !x || n < 1 || !paths || !outs)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "cut points: %s",
                                !m ? "module is NULL" : !x ? "input is NULL"
                                : n < 1 ? "no path given" : "paths or outs is NULL");
    for (int k = 0; k < n; k++)
        if (!paths[k]) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "cut points: path %d is NULL", k);
    int *order = malloc(sizeof(int) * (size_t)n);
    if (!order) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "cut points: out of memory");
    for (int k = 0; k < n; k++) outs[k] = NULL;
    int wrapped = wrap(ctx, m, paths, n, outs, order);
    if (wrapped == n) gf_module_forward(ctx, m, x);
    unwrap(ctx, m, paths, order, wrapped);
    free(order);
    for (int k = 0; k < n && gf_ctx_status(ctx) == GF_OK; k++)
        if (!outs[k])
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "cut points: the forward of %s does not run "
                             "\"%s\"", gf_module_type(m), paths[k]);
    return gf_ctx_status(ctx);
}
