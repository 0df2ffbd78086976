/* The module tree: allocation and freeing, containers (Sequential and named ones), the
 * parameter/buffer registry with PyTorch's state_dict names and order, and lookups. */
#include "nn/nn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

gf_module *gf_module_alloc(gf_ctx *ctx, const char *type, gf_module_forward_fn forward) {
    gf_module *m = calloc(1, sizeof *m);
    if (!m) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", type);
        return NULL;
    }
    snprintf(m->type, sizeof m->type, "%s", type);
    m->training = true;
    m->train_requested = true;
    m->forward = forward;
    m->cfg.padding_idx = -1;
    return m;
}

/* ---- the name index (nn_internal.h) ------------------------------------------------------ */

static uint64_t name_hash(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static void index_put(gf_name_slot *tab, int cap, const char *name, gf_module *child) {
    size_t mask = (size_t)cap - 1, i = name_hash(name, strlen(name)) & mask;
    while (tab[i].name) i = (i + 1) & mask;
    tab[i] = (gf_name_slot){name, child};
}

static int total_names(const gf_module *m) { return m->n_children + m->n_params + m->n_buffers; }

/* Indexes every name of m at a load of at most 1/4, or drops the index when m has few names
 * or memory is short (lookups then scan, which is correct, only slower). */
static void index_rebuild(gf_module *m) {
    free(m->index);
    m->index = NULL;
    m->index_cap = m->index_n = 0;
    const int n = total_names(m);
    if (n < GF_NAME_INDEX_MIN || n > INT32_MAX / 8) return;
    int cap = 64;
    while (cap < 4 * n) cap *= 2;
    gf_name_slot *tab = calloc((size_t)cap, sizeof *tab);
    if (!tab) return;
    for (int i = 0; i < m->n_children; i++) index_put(tab, cap, m->children[i].name, m->children[i].m);
    for (int i = 0; i < m->n_params; i++) index_put(tab, cap, m->params[i].name, NULL);
    for (int i = 0; i < m->n_buffers; i++) index_put(tab, cap, m->buffers[i].name, NULL);
    m->index = tab;
    m->index_cap = cap;
    m->index_n = n;
}

/* Records a name just appended to m's children, parameters or buffers. */
static void index_add(gf_module *m, const char *name, gf_module *child) {
    if (m->index && 2 * (m->index_n + 1) <= m->index_cap) {
        index_put(m->index, m->index_cap, name, child);
        m->index_n++;
        return;
    }
    index_rebuild(m);
}

/* The index slot of the name s[0 .. len), or NULL. Only when m->index is set. */
static gf_name_slot *index_find(const gf_module *m, const char *s, size_t len) {
    size_t mask = (size_t)m->index_cap - 1, i = name_hash(s, len) & mask;
    for (; m->index[i].name; i = (i + 1) & mask)
        if (strncmp(m->index[i].name, s, len) == 0 && m->index[i].name[len] == '\0')
            return &m->index[i];
    return NULL;
}

/* The child named `name` of p is now `child` (replace, swap). */
static void index_set_child(gf_module *p, const char *name, gf_module *child) {
    gf_name_slot *slot = p->index ? index_find(p, name, strlen(name)) : NULL;
    if (slot) slot->child = child;
}

static void detach_from_parent(gf_module *m) {
    gf_module *p = m->parent;
    if (!p) return;
    for (int i = 0; i < p->n_children; i++) {
        if (p->children[i].m != m) continue;
        free(p->children[i].name);
        memmove(p->children + i, p->children + i + 1,
                sizeof *p->children * (size_t)(p->n_children - i - 1));
        p->n_children--;
        if (p->index) index_rebuild(p); /* O(n), as the memmove */
        break;
    }
    m->parent = NULL;
}

static void free_tree(gf_module *m) {
    for (int i = 0; i < m->n_children; i++) {
        free_tree(m->children[i].m);
        free(m->children[i].name);
    }
    for (int i = 0; i < m->n_params; i++) {
        gf_tensor_free(m->params[i].t);
        free(m->params[i].name);
    }
    for (int i = 0; i < m->n_buffers; i++) {
        gf_tensor_free(m->buffers[i].t);
        free(m->buffers[i].name);
    }
    if (m->user_free) m->user_free(m->user);
    free(m->children);
    free(m->params);
    free(m->buffers);
    free(m->index);
    free(m);
}

void gf_module_free(gf_module *m) {
    if (!m) return;
    detach_from_parent(m);
    free_tree(m);
}

const char *gf_module_type(const gf_module *m) { return m ? m->type : "(null)"; }
void *gf_module_user(const gf_module *m) { return m ? m->user : NULL; }

void gf_module_train(gf_module *m, bool training) {
    if (!m) return;
    m->train_requested = training;
    m->training = training && !m->eval_pinned;
    for (int i = 0; i < m->n_children; i++) gf_module_train(m->children[i].m, training);
}

bool gf_module_is_training(const gf_module *m) { return m && m->training; }

void gf_module_pin_eval(gf_module *m, bool pinned) {
    if (!m) return;
    m->eval_pinned = pinned;
    m->training = m->train_requested && !pinned;
}

bool gf_module_eval_pinned(const gf_module *m) { return m && m->eval_pinned; }

bool gf_module_train_requested(const gf_module *m) { return m && m->train_requested; }

gf_module_forward_fn gf_module_forward_of(const gf_module *m) { return m ? m->forward : NULL; }

gf_nn_affine gf_nn_affine_of(const gf_module *m) {
    const gf_layer_cfg *c = &m->cfg;
    gf_nn_affine a = {c->weight, c->bias, c->in, c->out, c->kh, c->kw, c->conv};
    return a;
}

gf_nn_layer_view gf_nn_layer_view_of(const gf_module *m) {
    const gf_layer_cfg *c = &m->cfg;
    gf_nn_layer_view v = {m->layer != 0, m->forward == gf_module_forward_children,
                          c->weight, c->bias, c->running_mean, c->running_var, c->in, c->out,
                          c->padding_idx, c->conv, c->pool, c->kh, c->kw, c->dim0, c->dim1,
                          {0}, c->f0, c->f1, c->approx, c->dims, c->track};
    memcpy(v.norm_shape, c->norm_shape, sizeof v.norm_shape);
    return v;
}

/* ---- forward -------------------------------------------------------------------------- */

static void module_path(const gf_module *m, char *buf, size_t n);

void gf_module_set_reentrant(gf_module *m, bool reentrant) {
    if (m) m->reentrant = reentrant;
}

/* Why m itself (not its children) cannot run in several threads at once, or NULL. A
 * BatchNorm on batch statistics can: the replicas exchange them (graft/train.h). */
static const char *not_replicable(const gf_module *m) {
    if (m->layer || m->forward == gf_module_forward_children || m->reentrant) return NULL;
    return "has its own forward function, not marked reentrant (gf_module_set_reentrant)";
}

bool gf_module_uses_batch_stats(const gf_module *m) {
    if (!m) return false;
    if (m->layer && strncmp(m->type, "BatchNorm", 9) == 0 && (m->training || !m->cfg.track))
        return true;
    for (int i = 0; i < m->n_children; i++)
        if (gf_module_uses_batch_stats(m->children[i].m)) return true;
    return false;
}

static const gf_module *first_unreplicable(const gf_module *m, const char **reason) {
    if ((*reason = not_replicable(m))) return m;
    for (int i = 0; i < m->n_children; i++) {
        const gf_module *bad = first_unreplicable(m->children[i].m, reason);
        if (bad) return bad;
    }
    return NULL;
}

bool gf_module_replicable(const gf_module *m, char *why, size_t why_len) {
    const char *reason = "is NULL";
    const gf_module *bad = m ? first_unreplicable(m, &reason) : NULL;
    if (m && !bad) return true;
    if (why && why_len > 0) {
        char path[256] = "";
        if (bad) module_path(bad, path, sizeof path);
        snprintf(why, why_len, "module %s%s(%s) %s", path, path[0] ? " " : "",
                 bad ? bad->type : "?", reason);
    }
    return false;
}

/* Writes m's dotted path from its root into buf ("" for a root). */
static void module_path(const gf_module *m, char *buf, size_t n) {
    const char *names[64];
    int k = 0;
    for (const gf_module *c = m; c->parent && k < 64; c = c->parent) {
        const gf_module *p = c->parent;
        for (int i = 0; i < p->n_children; i++)
            if (p->children[i].m == c) names[k++] = p->children[i].name;
    }
    size_t len = 0;
    buf[0] = '\0';
    for (int i = k - 1; i >= 0 && len < n; i--)
        len += (size_t)snprintf(buf + len, n - len, i == k - 1 ? "%s" : ".%s", names[i]);
}

#define MODULE_TAG "module "

static gf_tensor *forward_done(gf_ctx *ctx, const gf_module *m, gf_tensor *y, bool clean);

gf_tensor *gf_module_forward(gf_ctx *ctx, gf_module *m, gf_tensor *x) {
    if (!m || !x) {
        if (ctx->status == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "module forward: %s is NULL",
                             m ? "input" : "module");
        return NULL;
    }
    if (!m->forward) {
        gf_ctx_set_error(ctx, GF_ERR_STATE, "module forward: %s has no forward function", m->type);
        return NULL;
    }
    bool clean = ctx->status == GF_OK;
    return forward_done(ctx, m, m->forward(ctx, m, x, m->user), clean);
}

/* Finishes a module's forward: the innermost failing module names itself in the error (outer
 * ones see the tag and leave it); the result, or NULL once an error is set. */
static gf_tensor *forward_done(gf_ctx *ctx, const gf_module *m, gf_tensor *y, bool clean) {
    if (!y && ctx->status == GF_OK)
        gf_ctx_set_error(ctx, GF_ERR_STATE, "forward returned NULL without an error");
    if (clean && ctx->status != GF_OK && strncmp(ctx->error, MODULE_TAG, strlen(MODULE_TAG)) != 0) {
        char path[256], msg[sizeof ctx->error];
        module_path(m, path, sizeof path);
        memcpy(msg, ctx->error, sizeof msg);
        /* a long message is cut at the end: the cause stays readable */
        int len = snprintf(ctx->error, sizeof ctx->error, MODULE_TAG "%s%s(%s): ", path,
                           path[0] ? " " : "", m->type);
        if (len > 0 && (size_t)len < sizeof ctx->error) {
            size_t keep = strlen(msg), room = sizeof ctx->error - (size_t)len - 1;
            if (keep > room) keep = room;
            memcpy(ctx->error + len, msg, keep);
            ctx->error[(size_t)len + keep] = '\0';
        }
    }
    return clean && ctx->status != GF_OK ? NULL : y;
}

/* ---- sequences --------------------------------------------------------------------------- */

void gf_module_set_seq_forward(gf_module *m, gf_module_seq_forward_fn fn) {
    if (m) m->seq_forward = fn;
}

bool gf_module_is_seq(const gf_module *m) { return m && m->seq_forward; }

static bool check_lengths(gf_ctx *ctx, const gf_module *m, const gf_tensor *x,
                          const gf_tensor *lengths) {
    if (lengths->dtype == GF_I64 && lengths->ndim == 1 && x->ndim >= 1 &&
        gf_tensor_is_contiguous(lengths))
        return true;
    gf_ctx_set_error(ctx, GF_ERR_INVALID,
                     "module %s: sequence lengths must be a contiguous int64 vector [N]",
                     m->type);
    return false;
}

gf_tensor *gf_module_forward_seq(gf_ctx *ctx, gf_module *m, gf_tensor *x, gf_tensor *lengths) {
    if (!lengths || !m || !x) return gf_module_forward(ctx, m, x);
    if (!check_lengths(ctx, m, x, lengths)) return NULL;
    bool clean = ctx->status == GF_OK;
    if (m->seq_forward) return forward_done(ctx, m, m->seq_forward(ctx, m, x, lengths, m->user), clean);
    if (m->forward != gf_module_forward_children) return gf_module_forward(ctx, m, x);
    /* a container running its children in order hands the lengths to each */
    for (int i = 0; i < m->n_children && x; i++)
        x = gf_module_forward_seq(ctx, m->children[i].m, x, lengths);
    return forward_done(ctx, m, x, clean);
}

/* Runs the children in order and applies the memory rules of docs/NN.md ("Memory") to the
 * tensors passed between them. What is known about the current tensor x:
 *   own_header   x was returned by a GF_LAYER_LIB child of this call, so no code outside the
 *                library holds its header (the caller's input is never ours);
 *   own_storage  moreover its storage was allocated inside this call by a GF_LAYER_FRESH child
 *                (or a ReLU ran in place over such storage): only headers made inside the
 *                children reach it, and every node that can read it is newer than `since`.
 * Rule A (in place): a ReLU child may overwrite an own_storage x (contiguous) when no node
 *   since `since` reads the storage's values in its backward (gf_tape_spares).
 * Rule B (out_private): once a LIB child has consumed an own_header x and returned another
 *   tensor, x's gradient is read by nobody after x's producer's backward.
 * Rule C (out_dead): if further x's storage stays behind (the child returned fresh storage of
 *   its own) and no node since `since` reads it, x's gradient may live in x's storage. */
gf_tensor *gf_module_forward_children(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    const bool rules = ctx->inplace;
    bool own_header = false, own_storage = false;
    const gf_node *since = NULL, *start = ctx->tape;
    for (int i = 0; i < self->n_children && x; i++) {
        gf_module *c = self->children[i].m;
        const gf_node *before = ctx->tape;
        ctx->inplace_input = rules && own_storage && (c->layer & GF_LAYER_RELU) &&
                                     !x->persistent && gf_tensor_is_contiguous(x) &&
                                     gf_tape_spares(ctx, x, since)
                                 ? x
                                 : NULL;
        gf_tensor *y = gf_module_forward(ctx, c, x);
        ctx->inplace_input = NULL;
        const bool lib = c->layer & GF_LAYER_LIB, fresh = lib && (c->layer & GF_LAYER_FRESH);
        if (!y || y == x) {
            /* a library Identity (or eval Dropout) changes nothing we know; any other module
             * handing x back may have kept it */
            if (!lib) own_header = own_storage = false;
            x = y;
            continue;
        }
        const bool shared = y->data == x->data; /* the ReLU ran in place */
        gf_node *xn = x->node;
        if (rules && own_header && lib && xn && xn->out == x) {
            xn->out_private = true;
            xn->out_dead = own_storage && fresh && !shared && gf_tensor_is_contiguous(x) &&
                           gf_tape_spares(ctx, x, since);
        }
        own_header = lib;
        if (!(fresh && shared && own_storage)) {
            own_storage = fresh && !shared;
            since = before;
        }
        x = y;
    }
    /* the caller holds x: no storage it can reach is private (a Flatten's view, say) */
    if (rules && x) gf_tape_unmark_shared(ctx, start, x);
    return x;
}

/* ---- containers ------------------------------------------------------------------------ */

gf_module *gf_nn_sequential(gf_ctx *ctx) {
    return gf_module_alloc(ctx, "Sequential", gf_module_forward_children);
}

gf_module *gf_nn_sequential_of(gf_ctx *ctx, int n, gf_module *const *children) {
    if (n > 0 && !children) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "Sequential: %d children from a NULL array", n);
        return NULL;
    }
    gf_module *s = gf_nn_sequential(ctx);
    int i = 0;
    for (; s && i < n; i++)
        if (gf_module_append(ctx, s, children[i]) != GF_OK) {
            gf_module_free(s);
            s = NULL;
            i++;
            break;
        }
    for (; i < n; i++) gf_module_free(children[i]);
    return s;
}

gf_module *gf_nn_container(gf_ctx *ctx, const char *type_name, gf_module_forward_fn forward,
                           void *user, void (*user_free)(void *)) {
    if (!type_name || !type_name[0]) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "container: type name is NULL or empty");
        if (user_free) user_free(user);
        return NULL;
    }
    gf_module *m = gf_module_alloc(ctx, type_name, forward ? forward : gf_module_forward_children);
    if (!m) {
        if (user_free) user_free(user);
        return NULL;
    }
    m->user = user;
    m->user_free = user_free;
    return m;
}

/* True when name is free in m: no child, parameter or buffer uses it. */
static bool name_free(const gf_module *m, const char *name) {
    if (m->index) return index_find(m, name, strlen(name)) == NULL;
    for (int i = 0; i < m->n_children; i++)
        if (!strcmp(m->children[i].name, name)) return false;
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return false;
    for (int i = 0; i < m->n_buffers; i++)
        if (!strcmp(m->buffers[i].name, name)) return false;
    return true;
}

static bool check_name(gf_ctx *ctx, const char *what, const gf_module *m, const char *name) {
    if (!name || !name[0] || strchr(name, '.')) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: invalid name \"%s\" in %s (must be non-empty "
                         "and contain no '.')", what, name ? name : "(null)", m->type);
        return false;
    }
    if (!name_free(m, name)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: name \"%s\" is already used in %s", what, name,
                         m->type);
        return false;
    }
    return true;
}

/* Grows a slot array to hold one more entry. */
static bool grow(void **arr, int n, int *cap, size_t elem) {
    if (n < *cap) return true;
    int nc = *cap ? *cap * 2 : 4;
    void *p = realloc(*arr, elem * (size_t)nc);
    if (!p) return false;
    *arr = p;
    *cap = nc;
    return true;
}

gf_status gf_module_add(gf_ctx *ctx, gf_module *parent, const char *name, gf_module *child) {
    const char *op = "module add";
    if (!child) {
        if (ctx->status == GF_OK) gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: child is NULL", op);
        return ctx->status;
    }
    /* A child that already belongs to a tree is not ours to free. */
    if (child->parent)
        return gf_ctx_set_error(ctx, GF_ERR_STATE, "%s: %s \"%s\" already has a parent", op,
                                child->type, name ? name : "(null)");
    for (const gf_module *a = parent; a; a = a->parent)
        if (a == child)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "%s: adding %s \"%s\" under itself would make a cycle", op,
                                    child->type, name ? name : "(null)");
    gf_status st;
    if (!parent) {
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: parent is NULL (adding %s)", op, child->type);
    } else if (!check_name(ctx, op, parent, name)) {
        st = ctx->status;
    } else {
        char *nm = dup_str(name);
        if (nm && grow((void **)&parent->children, parent->n_children, &parent->cap_children,
                       sizeof *parent->children)) {
            parent->children[parent->n_children++] = (gf_child){nm, child};
            child->parent = parent;
            index_add(parent, nm, child);
            return GF_OK;
        }
        free(nm);
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", op);
    }
    gf_module_free(child);
    return st;
}

gf_status gf_module_append(gf_ctx *ctx, gf_module *parent, gf_module *child) {
    char name[24];
    snprintf(name, sizeof name, "%d", parent ? parent->n_children : 0);
    return gf_module_add(ctx, parent, name, child);
}

int gf_module_num_children(const gf_module *m) { return m ? m->n_children : 0; }

gf_module *gf_module_child_at(const gf_module *m, int i, const char **name) {
    if (!m || i < 0 || i >= m->n_children) return NULL;
    if (name) *name = m->children[i].name;
    return m->children[i].m;
}

/* Child of m whose name is the first len characters of s. */
static gf_module *child_named(const gf_module *m, const char *s, size_t len) {
    if (m->index) {
        const gf_name_slot *slot = index_find(m, s, len);
        return slot ? slot->child : NULL;
    }
    for (int i = 0; i < m->n_children; i++)
        if (strlen(m->children[i].name) == len && !strncmp(m->children[i].name, s, len))
            return m->children[i].m;
    return NULL;
}

gf_module *gf_module_child(const gf_module *m, const char *path) {
    if (!m || !path) return NULL;
    const char *s = path;
    gf_module *cur = (gf_module *)m;
    while (cur) {
        const char *dot = strchr(s, '.');
        size_t len = dot ? (size_t)(dot - s) : strlen(s);
        cur = child_named(cur, s, len);
        if (!dot) return cur;
        s = dot + 1;
    }
    return NULL;
}

gf_status gf_module_replace(gf_ctx *ctx, gf_module *root, const char *path, gf_module *child) {
    if (!child) {
        if (ctx->status == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "module replace: new module is NULL");
        return ctx->status;
    }
    gf_module *old = gf_module_child(root, path);
    gf_status st = GF_OK;
    if (!old) {
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "module replace: no submodule \"%s\" in %s",
                              path ? path : "(null)", gf_module_type(root));
    } else if (child->parent) {
        return gf_ctx_set_error(ctx, GF_ERR_STATE, "module replace: new %s already has a parent",
                                child->type);
    } else {
        for (const gf_module *a = old->parent; a; a = a->parent)
            if (a == child)
                return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                        "module replace: %s would contain itself", child->type);
        gf_module *p = old->parent;
        for (int i = 0; i < p->n_children; i++)
            if (p->children[i].m == old) {
                p->children[i].m = child;
                child->parent = p;
                index_set_child(p, p->children[i].name, child);
                old->parent = NULL;
                free_tree(old);
                return GF_OK;
            }
    }
    gf_module_free(child);
    return st;
}

gf_module *gf_module_swap(gf_ctx *ctx, gf_module *root, const char *path, gf_module *child) {
    const char *op = "module swap";
    if (!child) {
        if (ctx->status == GF_OK) gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: new module is NULL", op);
        return NULL;
    }
    gf_module *old = gf_module_child(root, path);
    if (!old) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: no submodule \"%s\" in %s", op,
                         path ? path : "(null)", gf_module_type(root));
        return NULL;
    }
    if (child->parent) {
        gf_ctx_set_error(ctx, GF_ERR_STATE, "%s: new %s already has a parent", op, child->type);
        return NULL;
    }
    for (const gf_module *a = old->parent; a; a = a->parent)
        if (a == child) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s would contain itself", op, child->type);
            return NULL;
        }
    gf_module *p = old->parent;
    for (int i = 0; i < p->n_children; i++)
        if (p->children[i].m == old) {
            p->children[i].m = child;
            child->parent = p;
            index_set_child(p, p->children[i].name, child);
            old->parent = NULL;
            break;
        }
    return old;
}

gf_module *gf_module_detach(gf_ctx *ctx, gf_module *root, const char *path) {
    gf_module *m = gf_module_child(root, path);
    if (!m) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "module detach: no submodule \"%s\" in %s",
                         path ? path : "(null)", gf_module_type(root));
        return NULL;
    }
    detach_from_parent(m);
    return m;
}

/* ---- parameters and buffers ------------------------------------------------------------- */

static gf_status add_slot(gf_ctx *ctx, gf_module *m, const char *name, gf_tensor *t,
                          bool buffer) {
    const char *op = buffer ? "add buffer" : "add parameter";
    if (!t) {
        if (ctx->status == GF_OK) gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: tensor is NULL", op);
        return ctx->status;
    }
    gf_status st = GF_OK;
    if (!m) {
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: module is NULL", op);
    } else if (!t->persistent || t->node) {
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID,
                              "%s: \"%s\" in %s must be a persistent leaf tensor (gf_tensor_new)",
                              op, name ? name : "(null)", m->type);
        return st; /* an arena tensor is not ours to free */
    } else if (!buffer && t->dtype != GF_F32) {
        st = gf_ctx_set_error(ctx, GF_ERR_DTYPE, "%s: parameter \"%s\" in %s must be float32",
                              op, name ? name : "(null)", m->type);
    } else if (check_name(ctx, op, m, name)) {
        gf_slot **arr = buffer ? &m->buffers : &m->params;
        int *n = buffer ? &m->n_buffers : &m->n_params;
        int *cap = buffer ? &m->cap_buffers : &m->cap_params;
        char *nm = dup_str(name);
        if (nm && grow((void **)arr, *n, cap, sizeof **arr)) {
            (*arr)[(*n)++] = (gf_slot){nm, t};
            index_add(m, nm, NULL);
            return GF_OK;
        }
        free(nm);
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", op);
    } else {
        st = ctx->status;
    }
    gf_tensor_free(t);
    return st;
}

gf_status gf_module_add_parameter(gf_ctx *ctx, gf_module *m, const char *name, gf_tensor *t) {
    return add_slot(ctx, m, name, t, false);
}

gf_status gf_module_add_buffer(gf_ctx *ctx, gf_module *m, const char *name, gf_tensor *t) {
    if (t) gf_tensor_set_requires_grad(t, false);
    return add_slot(ctx, m, name, t, true);
}

gf_tensor *gf_module_new_param(gf_ctx *ctx, gf_module *m, const char *name, int ndim,
                               const int64_t *shape) {
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, ndim, shape);
    if (!t) return NULL;
    gf_tensor_set_requires_grad(t, true);
    return add_slot(ctx, m, name, t, false) == GF_OK ? t : NULL;
}

gf_tensor *gf_module_new_buffer(gf_ctx *ctx, gf_module *m, const char *name, gf_dtype dt,
                                int ndim, const int64_t *shape) {
    gf_tensor *t = gf_tensor_new(ctx, dt, ndim, shape);
    if (!t) return NULL;
    return add_slot(ctx, m, name, t, true) == GF_OK ? t : NULL;
}

/* ---- named lists ------------------------------------------------------------------------ */

typedef struct {
    gf_named_tensors *list;
    int cap;
    bool oom;
} collect_state;

static void collect_one(collect_state *cs, const char *prefix, const char *name, gf_tensor *t,
                        bool buffer) {
    if (cs->oom) return;
    gf_named_tensors *l = cs->list;
    if (!grow((void **)&l->items, l->n, &cs->cap, sizeof *l->items)) {
        cs->oom = true;
        return;
    }
    size_t n = strlen(prefix) + strlen(name) + 1;
    char *full = malloc(n);
    if (!full) {
        cs->oom = true;
        return;
    }
    snprintf(full, n, "%s%s", prefix, name);
    l->items[l->n++] = (gf_named_tensor){full, t, buffer};
}

static void collect(collect_state *cs, const gf_module *m, const char *prefix,
                    gf_state_filter which) {
    if (which & GF_STATE_PARAMS)
        for (int i = 0; i < m->n_params; i++)
            collect_one(cs, prefix, m->params[i].name, m->params[i].t, false);
    if (which & GF_STATE_BUFFERS)
        for (int i = 0; i < m->n_buffers; i++)
            collect_one(cs, prefix, m->buffers[i].name, m->buffers[i].t, true);
    for (int i = 0; i < m->n_children && !cs->oom; i++) {
        size_t n = strlen(prefix) + strlen(m->children[i].name) + 2;
        char *sub = malloc(n);
        if (!sub) {
            cs->oom = true;
            return;
        }
        snprintf(sub, n, "%s%s.", prefix, m->children[i].name);
        collect(cs, m->children[i].m, sub, which);
        free(sub);
    }
}

gf_named_tensors *gf_module_named_tensors(gf_ctx *ctx, const gf_module *m, gf_state_filter which) {
    if (!m) {
        if (ctx->status == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "named tensors: module is NULL");
        return NULL;
    }
    collect_state cs = {calloc(1, sizeof(gf_named_tensors)), 0, false};
    if (!cs.list) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "named tensors: out of memory");
        return NULL;
    }
    collect(&cs, m, "", which);
    if (cs.oom) {
        gf_named_tensors_free(cs.list);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "named tensors: out of memory");
        return NULL;
    }
    return cs.list;
}

gf_tensor *gf_module_tensor(gf_ctx *ctx, const gf_module *m, const char *name) {
    const gf_module *owner = m;
    const char *leaf = name;
    const char *dot = name ? strrchr(name, '.') : NULL;
    if (m && dot) {
        /* owner path = name[0 .. dot) */
        size_t len = (size_t)(dot - name);
        char path[512];
        owner = NULL;
        if (len < sizeof path) {
            memcpy(path, name, len);
            path[len] = '\0';
            owner = gf_module_child(m, path);
        }
        leaf = dot + 1;
    }
    if (owner && leaf) {
        for (int i = 0; i < owner->n_params; i++)
            if (!strcmp(owner->params[i].name, leaf)) return owner->params[i].t;
        for (int i = 0; i < owner->n_buffers; i++)
            if (!strcmp(owner->buffers[i].name, leaf)) return owner->buffers[i].t;
    }
    if (ctx)
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "module: no parameter or buffer \"%s\" in %s",
                         name ? name : "(null)", gf_module_type(m));
    return NULL;
}

gf_status gf_module_load(gf_ctx *ctx, gf_module *m, const char *name, gf_dtype dt, int ndim,
                         const int64_t *shape, const void *data) {
    gf_tensor *t = gf_module_tensor(ctx, m, name);
    if (!t) return ctx->status;
    char have[GF_SHAPE_BUF], got[GF_SHAPE_BUF];
    if (t->dtype != dt)
        return gf_ctx_set_error(ctx, GF_ERR_DTYPE, "module load: \"%s\" is %s, data is %s", name,
                                gf_dtype_name(t->dtype), gf_dtype_name(dt));
    bool same = ndim == t->ndim;
    for (int i = 0; same && i < ndim; i++) same = shape[i] == t->shape[i];
    if (!same)
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                                "module load: size mismatch for \"%s\": data %s, module %s", name,
                                gf_dims_str(ndim, shape, got, sizeof got),
                                gf_shape_str(t, have, sizeof have));
    if (!data) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "module load: data for \"%s\" is NULL", name);
    gf_copy_in(t, data);
    return GF_OK;
}

int64_t gf_module_param_count(const gf_module *m, bool trainable_only) {
    if (!m) return 0;
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (!trainable_only || m->params[i].t->requires_grad) n += m->params[i].t->numel;
    for (int i = 0; i < m->n_children; i++) n += gf_module_param_count(m->children[i].m, trainable_only);
    return n;
}

void gf_module_set_requires_grad(gf_module *m, bool requires_grad) {
    if (!m) return;
    for (int i = 0; i < m->n_params; i++) gf_tensor_set_requires_grad(m->params[i].t, requires_grad);
    for (int i = 0; i < m->n_children; i++) gf_module_set_requires_grad(m->children[i].m, requires_grad);
}

void gf_module_zero_grad(gf_module *m) {
    if (!m) return;
    for (int i = 0; i < m->n_params; i++) gf_tensor_zero_grad(m->params[i].t);
    for (int i = 0; i < m->n_children; i++) gf_module_zero_grad(m->children[i].m);
}
