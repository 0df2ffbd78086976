/* Which parameters train: freezing by glob over dotted names, blocks and "all but the last N",
 * head replacement and the BatchNorm policy. Only the public nn API is used. */
#define _POSIX_C_SOURCE 200809L
#include "graft/transfer.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "transfer/transfer_internal.h"

/* ---- module walks ------------------------------------------------------------------------ */

static bool walk_rec(gf_module *m, char *path, size_t cap, size_t len, gf_transfer_visit_fn fn,
                     void *user) {
    if (!fn(m, path, user)) return false;
    for (int i = 0; i < gf_module_num_children(m); i++) {
        const char *name;
        gf_module *c = gf_module_child_at(m, i, &name);
        int w = snprintf(path + len, cap - len, len ? ".%s" : "%s", name);
        if (w < 0 || (size_t)w >= cap - len) continue; /* a path longer than cap: skipped */
        if (!walk_rec(c, path, cap, len + (size_t)w, fn, user)) return false;
        path[len] = '\0';
    }
    return true;
}

void gf_transfer_walk(gf_module *m, gf_transfer_visit_fn fn, void *user) {
    char path[GF_TRANSFER_PATH_MAX] = "";
    if (m) walk_rec(m, path, sizeof path, 0, fn, user);
}

bool gf_transfer_is_bn(const gf_module *m) {
    const char *t = gf_module_type(m);
    return strcmp(t, "BatchNorm1d") == 0 || strcmp(t, "BatchNorm2d") == 0;
}

/* ---- freezing by pattern ----------------------------------------------------------------- */

/* Appends up to 6 names of list to buf, then the count. */
static void some_names(const gf_named_tensors *list, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < list->n && i < 6 && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", list->items[i].name);
    if (len < cap)
        snprintf(buf + len, cap - len, "%s%d in all", list->n > 6 ? ", ... " : list->n ? "; " : "",
                 list->n);
}

static int set_by_pattern(gf_ctx *ctx, gf_module *m, const char *pattern, bool trainable) {
    const char *op = trainable ? "unfreeze" : "freeze";
    if (!m || !pattern) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s is NULL", op, m ? "pattern" : "module");
        return -1;
    }
    gf_named_tensors *list = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    if (!list) return -1;
    int hits = 0;
    for (int i = 0; i < list->n; i++)
        if (fnmatch(pattern, list->items[i].name, 0) == 0) {
            gf_tensor_set_requires_grad(list->items[i].tensor, trainable);
            hits++;
        }
    if (hits == 0) {
        char names[400];
        some_names(list, names, sizeof names);
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s: pattern \"%s\" matches no parameter of %s (parameters: %s)", op,
                         pattern, gf_module_type(m), names);
        hits = -1;
    }
    gf_named_tensors_free(list);
    return hits;
}

int gf_transfer_freeze(gf_ctx *ctx, gf_module *m, const char *pattern) {
    return set_by_pattern(ctx, m, pattern, false);
}

int gf_transfer_unfreeze(gf_ctx *ctx, gf_module *m, const char *pattern) {
    return set_by_pattern(ctx, m, pattern, true);
}

/* ---- blocks ------------------------------------------------------------------------------ */

static bool grow_paths(gf_transfer_blocks *b, int *cap) {
    if (b->n < *cap) return true;
    int nc = *cap ? *cap * 2 : 8;
    char **p = realloc(b->path, sizeof *p * (size_t)nc);
    if (!p) return false;
    b->path = p;
    *cap = nc;
    return true;
}

static bool collect_blocks(const gf_module *m, const char *prefix, gf_transfer_blocks *b, int *cap) {
    for (int i = 0; i < gf_module_num_children(m); i++) {
        const char *name;
        const gf_module *c = gf_module_child_at(m, i, &name);
        size_t n = strlen(prefix) + strlen(name) + 2;
        char *path = malloc(n);
        if (!path) return false;
        snprintf(path, n, "%s%s%s", prefix, prefix[0] ? "." : "", name);
        if (strcmp(gf_module_type(c), "Sequential") == 0) {
            bool ok = collect_blocks(c, path, b, cap);
            free(path);
            if (!ok) return false;
        } else if (gf_module_param_count(c, false) > 0) {
            if (!grow_paths(b, cap)) {
                free(path);
                return false;
            }
            b->path[b->n++] = path;
        } else {
            free(path);
        }
    }
    return true;
}

gf_transfer_blocks *gf_transfer_blocks_of(gf_ctx *ctx, const gf_module *m) {
    if (!m) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "blocks: module is NULL");
        return NULL;
    }
    gf_transfer_blocks *b = calloc(1, sizeof *b);
    int cap = 0;
    if (!b || !collect_blocks(m, "", b, &cap)) {
        gf_transfer_blocks_free(b);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "blocks: out of memory");
        return NULL;
    }
    return b;
}

void gf_transfer_blocks_free(gf_transfer_blocks *b) {
    if (!b) return;
    for (int i = 0; i < b->n; i++) free(b->path[i]);
    free(b->path);
    free(b);
}

int gf_transfer_freeze_all_but(gf_ctx *ctx, gf_module *m, int n_last) {
    if (!m || n_last < 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "freeze all but the last %d blocks: %s", n_last,
                         m ? "the count must be >= 0" : "module is NULL");
        return -1;
    }
    gf_transfer_blocks *b = gf_transfer_blocks_of(ctx, m);
    if (!b) return -1;
    gf_module_set_requires_grad(m, false);
    for (int i = b->n - n_last < 0 ? 0 : b->n - n_last; i < b->n; i++)
        gf_module_set_requires_grad(gf_module_child(m, b->path[i]), true);
    gf_transfer_blocks_free(b);
    gf_named_tensors *list = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    if (!list) return -1;
    int frozen = 0;
    for (int i = 0; i < list->n; i++) frozen += !list->items[i].tensor->requires_grad;
    gf_named_tensors_free(list);
    return frozen;
}

/* ---- the head ---------------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t cap;
    bool found, too_long;
} last_linear;

static bool visit_linear(gf_module *m, const char *path, void *user) {
    last_linear *s = user;
    if (path[0] && strcmp(gf_module_type(m), "Linear") == 0) {
        s->too_long = strlen(path) >= s->cap;
        if (!s->too_long) memcpy(s->buf, path, strlen(path) + 1);
        s->found = true;
    }
    return true;
}

const char *gf_transfer_default_head(gf_ctx *ctx, const gf_module *m, char *buf, size_t cap) {
    if (!m || !buf || cap == 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "default head: NULL module or buffer");
        return NULL;
    }
    last_linear s = {buf, cap, false, false};
    gf_transfer_walk((gf_module *)m, visit_linear, &s);
    if (!s.found || s.too_long) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "default head: %s", s.found
                         ? "the path of the last Linear is longer than the buffer"
                         : "the model has no Linear layer; give the head's path");
        return NULL;
    }
    return buf;
}

gf_status gf_transfer_replace_head(gf_ctx *ctx, gf_module *m, const char *head_path,
                             int64_t out_features, gf_rng *rng) {
    const char *op = "replace head";
    char def[GF_TRANSFER_PATH_MAX];
    if (!m) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: module is NULL", op);
    if (!head_path && !(head_path = gf_transfer_default_head(ctx, m, def, sizeof def)))
        return gf_ctx_status(ctx);
    gf_module *old = gf_module_child(m, head_path);
    if (!old || !head_path[0])
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: no module \"%s\" in %s", op, head_path,
                                gf_module_type(m));
    if (strcmp(gf_module_type(old), "Linear") != 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: \"%s\" is a %s, not a Linear", op,
                                head_path, gf_module_type(old));
    if (out_features < 1)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: out_features %lld must be >= 1", op,
                                (long long)out_features);
    const gf_tensor *w = gf_module_tensor(NULL, old, "weight");
    if (!w || w->ndim != 2)
        return gf_ctx_set_error(ctx, GF_ERR_STATE, "%s: Linear \"%s\" has no 2-D weight", op,
                                head_path);
    bool has_bias = gf_module_tensor(NULL, old, "bias") != NULL;
    gf_module *head = gf_nn_linear(ctx, rng, w->shape[1], out_features, has_bias);
    if (!head) return gf_ctx_status(ctx);
    gf_module_train(head, gf_module_is_training(old));
    return gf_module_replace(ctx, m, head_path, head);
}

/* ---- BatchNorm policy -------------------------------------------------------------------- */

static const char *const bn_names[GF_TRANSFER_BN_POLICY_COUNT] = {"freeze-stats", "train-affine",
                                                            "train-all"};

const char *gf_transfer_bn_policy_name(gf_transfer_bn_policy p) {
    return (unsigned)p < GF_TRANSFER_BN_POLICY_COUNT ? bn_names[p] : "?";
}

bool gf_transfer_bn_policy_parse(const char *name, gf_transfer_bn_policy *out) {
    for (int i = 0; name && i < GF_TRANSFER_BN_POLICY_COUNT; i++)
        if (strcmp(name, bn_names[i]) == 0) {
            if (out) *out = (gf_transfer_bn_policy)i;
            return true;
        }
    return false;
}

typedef struct {
    gf_transfer_bn_policy policy;
    const char *scope;
    int applied, seen;
    char seen_names[300];
    size_t len;
} bn_state;

static bool visit_bn(gf_module *m, const char *path, void *user) {
    bn_state *s = user;
    if (!gf_transfer_is_bn(m)) return true;
    if (s->seen < 6 && s->len < sizeof s->seen_names)
        s->len += (size_t)snprintf(s->seen_names + s->len, sizeof s->seen_names - s->len, "%s%s",
                                   s->seen ? ", " : "", path[0] ? path : "(root)");
    s->seen++;
    if (s->scope && fnmatch(s->scope, path, 0) != 0) return true;
    s->applied++;
    gf_module_pin_eval(m, s->policy != GF_TRANSFER_BN_TRAIN_ALL);
    if (s->policy != GF_TRANSFER_BN_TRAIN_ALL)
        gf_module_set_requires_grad(m, s->policy == GF_TRANSFER_BN_TRAIN_AFFINE);
    return true;
}

int gf_transfer_set_bn_policy(gf_ctx *ctx, gf_module *m, gf_transfer_bn_policy policy, const char *scope) {
    if (!m || (unsigned)policy >= GF_TRANSFER_BN_POLICY_COUNT) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "BatchNorm policy: %s",
                         m ? "unknown policy (freeze-stats, train-affine or train-all)"
                           : "module is NULL");
        return -1;
    }
    bn_state s = {policy, scope, 0, 0, "", 0};
    gf_transfer_walk(m, visit_bn, &s);
    if (scope && s.applied == 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "BatchNorm policy %s: scope \"%s\" matches no BatchNorm layer of %s "
                         "(layers: %s%s%d in all)", gf_transfer_bn_policy_name(policy), scope,
                         gf_module_type(m), s.seen_names, s.seen > 6 ? ", ... " : s.seen ? "; " : "",
                         s.seen);
        return -1;
    }
    return s.applied;
}
