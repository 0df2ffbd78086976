/* From a read graph to a module: the nodes the outputs (or the cut tensor) need, in
 * topological order (a cycle is an error), each matched to the op table at its opset;
 * initializers sorted into parameters, buffers and constants; nodes on constants evaluated once;
 * parameters registered under their names (nested at the dots); the forward that runs the nodes
 * with graft ops. */
#define _POSIX_C_SOURCE 200809L
#include "import/onnx_internal.h"
#include "nn/nn_access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gf_tensor *onnx_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user);
static int if_branch(gf_ctx *ctx, const ox_model *m, const ox_node *n, const gf_tensor *c);
static void onnx_free(void *user) { ox_model_free(user); }

/* ---- which nodes run, in which order --------------------------------------------------------- */

/* Marks in need[] every node the targets depend on (iterative: graphs can be deep). */
static bool mark_needed(gf_ctx *ctx, const ox_model *m, const int *targets, int n_t, char *need) {
    int *stack = malloc(sizeof(int) * (size_t)(m->n_nodes + n_t + 1));
    if (!stack) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", m->path), false;
    int sp = 0;
    for (int i = 0; i < n_t; i++) {
        int p = m->values[targets[i]].producer;
        if (p >= 0 && !need[p]) need[p] = 1, stack[sp++] = p;
    }
    while (sp > 0) {
        const ox_node *n = &m->nodes[stack[--sp]];
        for (int i = 0; i < n->n_in; i++) {
            if (n->in[i] < 0) continue;
            int p = m->values[n->in[i]].producer;
            if (p >= 0 && !need[p]) need[p] = 1, stack[sp++] = p;
        }
    }
    free(stack);
    return true;
}

/* Kahn's algorithm over the nodes list[0..n) (ascending; edges only between them), ties broken
 * by file order; a node left over sits on a cycle. local[] (one per node of the model, all -1)
 * is scratch, left all -1 again. The order goes to a new array in *order_out. */
static bool topo_sort(gf_ctx *ctx, const ox_model *m, const int *list, int n, int *local,
                      int **order_out) {
    int64_t n_edges = 0;
    for (int i = 0; i < n; i++) n_edges += m->nodes[list[i]].n_in;
    int *deg = calloc((size_t)n + 1, sizeof *deg);
    int *first = malloc(sizeof(int) * (size_t)(n + 1)); /* consumers of a node, linked */
    int *next = malloc(sizeof(int) * (size_t)(n_edges + 1));
    int *who = malloc(sizeof(int) * (size_t)(n_edges + 1));
    int *order = malloc(sizeof(int) * (size_t)(n + 1));
    bool ok = deg && first && next && who && order;
    if (!ok) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", m->path);
    for (int i = 0; i < n; i++) local[list[i]] = i;
    int e = 0, head = 0, tail = 0;
    for (int i = 0; ok && i < n; i++) first[i] = -1;
    for (int i = 0; ok && i < n; i++) {
        const ox_node *nd = &m->nodes[list[i]];
        for (int j = 0; j < nd->n_in; j++) {
            int p = nd->in[j] >= 0 ? m->values[nd->in[j]].producer : -1;
            if (p < 0 || local[p] < 0) continue;
            deg[i]++;
            who[e] = i, next[e] = first[local[p]], first[local[p]] = e++;
        }
    }
    for (int i = 0; ok && i < n; i++)
        if (deg[i] == 0) order[tail++] = i;
    while (ok && head < tail) /* order[] doubles as the queue, of local indices */
        for (int j = first[order[head++]]; j >= 0; j = next[j])
            if (--deg[who[j]] == 0) order[tail++] = who[j];
    for (int i = 0; ok && i < n; i++)
        if (deg[i] > 0) {
            char where[512];
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%sthe graph has a cycle through this node",
                             ox_node_where(m, &m->nodes[list[i]], where, sizeof where));
            ok = false;
            break;
        }
    for (int i = 0; ok && i < n; i++) order[i] = list[order[i]];
    for (int i = 0; i < n; i++) local[list[i]] = -1;
    free(deg), free(first), free(next), free(who);
    if (!ok) free(order), order = NULL;
    *order_out = order;
    return ok;
}

/* m->order: the nodes need[] marks, in topological order. */
static bool topo_order(gf_ctx *ctx, ox_model *m, const char *need) {
    int *list = malloc(sizeof(int) * (size_t)(m->n_nodes + 1));
    int *local = malloc(sizeof(int) * (size_t)(m->n_nodes + 1));
    int n = 0;
    bool ok = list && local;
    if (!ok) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", m->path);
    for (int k = 0; ok && k < m->n_nodes; k++) {
        local[k] = -1;
        if (need[k]) list[n++] = k;
    }
    free(m->order);
    m->order = NULL;
    m->n_order = 0;
    ok = ok && topo_sort(ctx, m, list, n, local, &m->order);
    if (ok) m->n_order = n;
    free(list), free(local);
    return ok;
}

bool ox_order_all(gf_ctx *ctx, ox_model *m) {
    char *need = malloc((size_t)m->n_nodes + 1);
    if (!need) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", m->path), false;
    memset(need, 1, (size_t)m->n_nodes + 1);
    bool ok = topo_order(ctx, m, need);
    free(need);
    return ok;
}

/* The cut option as a value id: a tensor name, else a node name's first output. */
static int find_cut(gf_ctx *ctx, const ox_model *m, const char *cut) {
    int id = ox_value_find(m, cut);
    for (int k = 0; id < 0 && k < m->n_nodes; k++)
        if (m->nodes[k].scope == 0 && !strcmp(m->nodes[k].name, cut)) {
            for (int o = 0; o < m->nodes[k].n_out && id < 0; o++) id = m->nodes[k].out[o];
            if (id < 0) break;
        }
    if (id < 0) {
        char names[256] = "";
        size_t at = 0;
        for (int k = 0, shown = 0; k < m->n_nodes && shown < 3; k++)
            if (m->nodes[k].scope == 0 && m->nodes[k].n_out > 0 && m->nodes[k].out[0] >= 0) {
                int w = snprintf(names + at, sizeof names - at, "%s'%.60s'", shown ? ", " : "",
                                 m->values[m->nodes[k].out[0]].name);
                if (w > 0 && (size_t)w < sizeof names - at) at += (size_t)w, shown++;
            }
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: cut '%s' is neither a tensor nor a node of the "
                         "model (tensors one can cut at: %s, ...; graft inspect lists them)",
                         m->path, cut, names);
    }
    return id;
}

/* ---- ops and arity --------------------------------------------------------------------------- */

/* Matches every node that will run to its op; an unsupported one is an error naming it and
 * counting the others. */
static bool match_ops(gf_ctx *ctx, ox_model *m, const int *order, int n_order) {
    int bad = 0, first = -1;
    const char *first_why = "";
    char others[256] = "";
    size_t at = 0;
    for (int i = 0; i < n_order; i++) {
        ox_node *n = &m->nodes[order[i]];
        const char *why = "";
        n->def = ox_op_find(n->domain, n->op, n->opset, &why);
        if (n->def) continue;
        if (bad++ == 0) first = order[i], first_why = why;
        else if (!strstr(others, n->op)) {
            int w = snprintf(others + at, sizeof others - at, "%s%s", at ? ", " : "", n->op);
            if (w > 0 && (size_t)w < sizeof others - at) at += (size_t)w;
        }
    }
    if (!bad) return true;
    char where[512];
    ox_node_where(m, &m->nodes[first], where, sizeof where);
    if (bad == 1)
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%sunsupported op: %s", where, first_why);
    else
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%sunsupported op: %s; %d more unsupported nodes "
                         "(%s; graft inspect lists them all)", where, first_why, bad - 1,
                         at ? others : "the same op");
    return false;
}

static bool check_arity(gf_ctx *ctx, const ox_model *m, const int *order, int n_order) {
    for (int i = 0; i < n_order; i++) {
        const ox_node *n = &m->nodes[order[i]];
        const ox_opdef *d = n->def;
        int present = 0;
        for (int k = 0; k < n->n_in && k < d->min_in; k++) present += n->in[k] >= 0;
        if (n->n_in < d->min_in || present < d->min_in || n->n_in > d->max_in ||
            n->n_out > d->max_out || n->n_out < 1) {
            char where[512];
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%sexpected %d to %d inputs (the first %d given) "
                             "and 1 to %d outputs, found %d inputs (%d of the first given) and %d "
                             "outputs", ox_node_where(m, n, where, sizeof where), d->min_in,
                             d->max_in, d->min_in, d->max_out, n->n_in, present, n->n_out);
            return false;
        }
        for (int k = 0; k < n->n_in; k++) {
            const ox_value *v = n->in[k] >= 0 ? &m->values[n->in[k]] : NULL;
            if (v && v->kind == OX_V_CONST && !v->t) {
                char where[512];
                gf_ctx_set_error(ctx, GF_ERR_DTYPE, "%sinput %d '%s' has element type %s, which "
                                 "graft cannot hold", ox_node_where(m, n, where, sizeof where), k,
                                 v->name, gf_onnx_type_name(v->elem));
                return false;
            }
        }
    }
    return true;
}

/* ---- parameters, buffers, constants ---------------------------------------------------------- */

/* How the nodes of order[0..n) and of the branches of their If nodes use value v: in weight,
 * setting, buffer or other input slots (c[0..3]). An If node's own inputs are not counted: its
 * captured values are counted where its branches read them. */
static void slot_uses_in(const ox_model *m, const int *order, int n_order, int v, int c[4]) {
    for (int i = 0; i < n_order; i++) {
        const ox_node *n = &m->nodes[order[i]];
        if (!n->def) continue;
        if (n->sub[0] >= 0) {
            for (int b = 0; b < 2; b++) {
                const ox_scope *sc = &m->scopes[n->sub[b]];
                for (int k = 0; k < sc->n_out; k++) c[3] += sc->out[k] == v;
                slot_uses_in(m, sc->order, sc->n_order, v, c);
            }
            continue;
        }
        for (int k = 0; k < n->n_in; k++) {
            if (n->in[k] != v) continue;
            unsigned bit = k < 32 ? 1u << k : 0;
            if (n->def->weights & bit) c[0]++;
            else if (n->def->values & bit) c[1]++;
            else if (n->def->buffers & bit) c[2]++;
            else c[3]++;
        }
    }
}

static void slot_uses(const ox_model *m, int v, int *w, int *s, int *b, int *o) {
    int c[4] = {0, 0, 0, 0};
    slot_uses_in(m, m->order, m->n_order, v, c);
    *w = c[0], *s = c[1], *b = c[2], *o = c[3];
}

/* Float initializers become parameters (buffers when only BatchNormalization's statistics
 * read them), unless only settings read them (Clip's bounds, Resize's scales); float constants
 * made by Constant nodes or folding become parameters only where they are weights. */
void ox_classify(ox_model *m, bool initializers) {
    for (int v = 0; v < m->n_values; v++) {
        ox_value *x = &m->values[v];
        if (x->kind != OX_V_CONST || !x->t || x->t->dtype != GF_F32 || x->is_init != initializers)
            continue;
        int w, s, b, o;
        slot_uses(m, v, &w, &s, &b, &o);
        bool param = initializers ? (w + b + o > 0) : (w + b > 0);
        if (!param) continue;
        x->kind = OX_V_PARAM;
        x->buffer = w + o == 0;
    }
}

/* The branch an If takes for condition c (one number: nonzero takes then_branch): 0 or 1, or
 * -1 with an error. */
static int if_branch(gf_ctx *ctx, const ox_model *m, const ox_node *n, const gf_tensor *c) {
    char where[512], sh[GF_SHAPE_BUF];
    if (!c || c->numel != 1) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%sthe condition must hold one value, found %s",
                         ox_node_where(m, n, where, sizeof where),
                         c ? gf_shape_str(c, sh, sizeof sh) : "none");
        return -1;
    }
    double v = c->dtype == GF_I64 ? (double)gf_get_i64(c, 0) : (double)gf_get_f32(c, 0);
    return v != 0 ? 0 : 1;
}

/* An If whose condition is known at load time becomes its taken branch: the branch's nodes join
 * the enclosing order (before the If) and the If passes the branch's outputs through. */
static bool inline_if(gf_ctx *ctx, ox_model *m, ox_node *n, int b) {
    const ox_scope *sc = &m->scopes[n->sub[b]];
    int *in = malloc(sizeof(int) * (size_t)(sc->n_out + 1));
    if (!in) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", m->path), false;
    memcpy(in, sc->out, sizeof(int) * (size_t)sc->n_out);
    free(n->in);
    n->in = in;
    n->n_in = sc->n_out;
    n->sub[0] = n->sub[1] = -1;
    m->n_inlined++;
    return true;
}

/* Runs node n once when its inputs are all constants, keeping its outputs as constants
 * (*folded); otherwise leaves it to run at each forward. lc: the scratch context. */
static bool fold_node(gf_ctx *ctx, gf_ctx *lc, ox_model *m, ox_node *n, bool *folded) {
    bool all_const = !(n->def->flags & OX_RANDOM) && n->sub[0] < 0;
    for (int k = 0; all_const && k < n->n_in; k++)
        all_const = n->in[k] < 0 || m->values[n->in[k]].kind == OX_V_CONST;
    gf_tensor *ins[64], *outs[64] = {NULL};
    *folded = all_const && n->n_in <= 64 && n->n_out <= 64;
    if (!*folded) return true;
    for (int k = 0; k < n->n_in; k++) ins[k] = n->in[k] >= 0 ? m->values[n->in[k]].t : NULL;
    ox_exec e = {lc, m, n, n->n_in, n->n_out, ins, outs, false};
    bool ok = n->def->fn(&e) && gf_ctx_status(lc) == GF_OK;
    for (int o = 0; ok && o < n->n_out; o++) {
        if (n->out[o] < 0) continue;
        gf_tensor *t = outs[o];
        gf_tensor *c = t ? gf_tensor_new(lc, t->dtype, t->ndim, t->shape) : NULL;
        if (c) gf_copy_out(t, c->data);
        ok = c != NULL;
        m->values[n->out[o]].kind = OX_V_CONST;
        m->values[n->out[o]].t = c;
        m->values[n->out[o]].owned = c != NULL;
    }
    if (!ok) {
        char where[512];
        if (gf_ctx_status(lc) == GF_OK) gf_ctx_set_error(lc, GF_ERR_STATE, "produced no value");
        gf_ctx_set_error(ctx, gf_ctx_status(lc), "%s%s", ox_node_where(m, n, where, sizeof where),
                         gf_ctx_error(lc));
    }
    gf_ctx_reset(lc);
    return ok;
}

/* Folds the nodes of list[0..n) in order, appending those that still run to dst; an If whose
 * condition is a constant is inlined (its branch folded in turn, at most OX_MAX_IF_DEPTH
 * deep). */
static bool fold_list(gf_ctx *ctx, gf_ctx *lc, ox_model *m, const int *list, int n, int *dst,
                      int *kept) {
    for (int i = 0; i < n; i++) {
        ox_node *nd = &m->nodes[list[i]];
        if (nd->sub[0] >= 0 && nd->in[0] >= 0 && m->values[nd->in[0]].kind == OX_V_CONST) {
            int b = if_branch(ctx, m, nd, m->values[nd->in[0]].t);
            const ox_scope *sc = b >= 0 ? &m->scopes[nd->sub[b]] : NULL;
            if (!sc || !fold_list(ctx, lc, m, sc->order, sc->n_order, dst, kept) ||
                !inline_if(ctx, m, nd, b))
                return false;
        }
        bool folded;
        if (!fold_node(ctx, lc, m, nd, &folded)) return false;
        if (!folded) dst[(*kept)++] = list[i];
    }
    return true;
}

/* Runs every node whose inputs are all constants once, keeping its outputs as constants. */
static bool fold(gf_ctx *ctx, ox_model *m) {
    gf_ctx_params p = gf_ctx_default_params();
    p.n_threads = 1;
    p.limits = *gf_ctx_limits(ctx);
    gf_ctx *lc = gf_ctx_new(&p);
    int *dst = malloc(sizeof(int) * (size_t)(m->n_nodes + 1));
    if (!lc || !dst) {
        gf_ctx_free(lc), free(dst);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", m->path), false;
    }
    gf_ctx_set_grad_enabled(lc, false);
    int kept = 0;
    bool ok = fold_list(ctx, lc, m, m->order, m->n_order, dst, &kept);
    free(m->order);
    m->order = dst;
    m->n_order = kept;
    gf_ctx_free(lc);
    return ok;
}

/* Registers t under a dotted name: nested in child containers at the dots as a state_dict
 * names it, or, where that cannot be (an empty part, a part already a tensor), on the root with
 * the dots made '_'. Takes ownership of t. */
static gf_status register_tensor(gf_ctx *ctx, gf_module *root, const char *name, gf_tensor *t,
                                 bool buffer) {
    char buf[1024];
    size_t len = strlen(name);
    bool nest = len > 0 && len < sizeof buf && name[0] != '.' && name[len - 1] != '.' &&
                !strstr(name, "..");
    gf_module *cur = root;
    if (nest) {
        memcpy(buf, name, len + 1);
        char *part = buf, *dot;
        while (nest && (dot = strchr(part, '.'))) {
            *dot = '\0';
            gf_module *c = gf_module_child(cur, part);
            if (!c && !gf_module_tensor(NULL, cur, part)) {
                c = gf_nn_container(ctx, "OnnxScope", NULL, NULL, NULL);
                if (!c || gf_module_add(ctx, cur, part, c) != GF_OK)
                    return gf_tensor_free(t), ctx->status;
            }
            nest = c != NULL;
            cur = c ? c : cur;
            part = dot + 1;
        }
        if (nest && !gf_module_child(cur, part) && !gf_module_tensor(NULL, cur, part))
            return buffer ? gf_module_add_buffer(ctx, cur, part, t)
                          : gf_module_add_parameter(ctx, cur, part, t);
    }
    snprintf(buf, sizeof buf, "%s", len ? name : "_");
    for (char *p = buf; *p; p++)
        if (*p == '.') *p = '_';
    char uniq[1100];
    snprintf(uniq, sizeof uniq, "%s", buf);
    for (int k = 1; gf_module_child(root, uniq) || gf_module_tensor(NULL, root, uniq); k++)
        snprintf(uniq, sizeof uniq, "%s_%d", buf, k);
    return buffer ? gf_module_add_buffer(ctx, root, uniq, t)
                  : gf_module_add_parameter(ctx, root, uniq, t);
}

static gf_module *make_module(gf_ctx *ctx, ox_model *m) {
    gf_module *root = gf_nn_container(ctx, "OnnxModel", onnx_forward, m, onnx_free);
    if (!root) {
        ox_model_free(m);
        return NULL;
    }
    for (int v = 0; v < m->n_values; v++) {
        ox_value *x = &m->values[v];
        if (x->kind != OX_V_PARAM) continue;
        gf_tensor_set_requires_grad(x->t, !x->buffer);
        x->owned = false; /* the module holds it now, even if registering fails */
        if (register_tensor(ctx, root, x->name, x->t, x->buffer) != GF_OK) {
            x->t = NULL;
            gf_module_free(root); /* frees m and the tensors it still owns */
            return NULL;
        }
    }
    gf_module_set_reentrant(root, true);
    gf_module_train(root, false);
    return root;
}

/* ---- loading --------------------------------------------------------------------------------- */

/* After a cut: the graph inputs nothing that runs reads are dropped from the module's inputs
 * (a trunk cut from a model of several inputs may need only one). */
static void drop_unused_inputs(ox_model *m) {
    int kept = 0;
    for (int i = 0; i < m->n_in; i++) {
        int id = m->in_ids[i];
        bool used = false;
        for (int o = 0; o < m->n_out && !used; o++) used = id == m->out_ids[o];
        for (int k = 0; k < m->n_order && !used; k++) {
            const ox_node *n = &m->nodes[m->order[k]];
            for (int j = 0; j < n->n_in && !used; j++) used = n->in[j] == id;
        }
        if (!used) {
            ox_info_clear(&m->in_info[i]);
            m->values[id].slot = -1;
            continue;
        }
        m->in_ids[kept] = id;
        m->in_info[kept] = m->in_info[i];
        m->values[id].slot = kept++;
    }
    m->n_in = kept;
}

/* The cut tensors names[0..n) become the model's outputs, in that order. */
static bool set_cuts(gf_ctx *ctx, ox_model *m, const char *const *names, int n) {
    if (n > 4096)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %d cuts (at most 4096)", m->path, n),
               false;
    int *ids = malloc(sizeof(int) * (size_t)(n + 1));
    gf_onnx_value_info *info = calloc((size_t)n + 1, sizeof *info);
    bool ok = ids && info;
    for (int i = 0; ok && i < n; i++) {
        if (!names[i]) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: cut %d is NULL", m->path, i);
            ok = false;
            break;
        }
        if ((ids[i] = find_cut(ctx, m, names[i])) < 0) {
            ok = false;
            break;
        }
        info[i].name = strdup(m->values[ids[i]].name);
        info[i].ndim = -1;
        info[i].is_tensor = true;
        info[i].elem_type = m->values[ids[i]].elem;
        if (!info[i].name) ok = false;
    }
    if (!ids || !info || (!ok && gf_ctx_status(ctx) == GF_OK))
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", m->path);
    if (!ok) {
        for (int i = 0; info && i < n; i++) ox_info_clear(&info[i]);
        free(ids), free(info);
        return false;
    }
    for (int i = 0; i < m->n_out; i++) ox_info_clear(&m->out_info[i]);
    free(m->out_ids), free(m->out_info);
    m->out_ids = ids, m->out_info = info, m->n_out = n;
    return true;
}

/* Orders, matches and checks the nodes of the branches of the If nodes of order[0..n), and of
 * the Ifs inside them. start/by_scope: the nodes of each scope; local: topo_sort's scratch. */
static bool prepare_scopes(gf_ctx *ctx, ox_model *m, const int *order, int n, const int *start,
                           const int *by_scope, int *local) {
    for (int i = 0; i < n; i++) {
        const ox_node *nd = &m->nodes[order[i]];
        for (int b = 0; b < 2 && nd->sub[0] >= 0; b++) {
            const int s = nd->sub[b];
            ox_scope *sc = &m->scopes[s];
            const int cnt = start[s + 1] - start[s];
            if (!topo_sort(ctx, m, by_scope + start[s], cnt, local, &sc->order)) return false;
            sc->n_order = cnt;
            if (!match_ops(ctx, m, sc->order, cnt) || !check_arity(ctx, m, sc->order, cnt) ||
                !prepare_scopes(ctx, m, sc->order, cnt, start, by_scope, local))
                return false;
        }
    }
    return true;
}

/* Prepares the branches of the If nodes that run (their nodes listed by scope first). */
static bool prepare_branches(gf_ctx *ctx, ox_model *m) {
    if (m->n_scopes <= 1) return true;
    int *start = calloc((size_t)m->n_scopes + 2, sizeof *start);
    int *by_scope = malloc(sizeof(int) * (size_t)(m->n_nodes + 1));
    int *local = malloc(sizeof(int) * (size_t)(m->n_nodes + 1));
    bool ok = start && by_scope && local;
    if (!ok) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", m->path);
    for (int k = 0; ok && k < m->n_nodes; k++) start[m->nodes[k].scope + 1]++, local[k] = -1;
    for (int s = 0; ok && s < m->n_scopes; s++) start[s + 1] += start[s];
    for (int k = 0, *fill = start; ok && k < m->n_nodes; k++) /* ascending within a scope */
        by_scope[fill[m->nodes[k].scope]++] = k;
    for (int s = m->n_scopes; ok && s > 0; s--) start[s] = start[s - 1]; /* undo the fill */
    if (ok) start[0] = 0;
    ok = ok && prepare_scopes(ctx, m, m->order, m->n_order, start, by_scope, local);
    free(start), free(by_scope), free(local);
    return ok;
}

/* Whether a node of order[0..n) or of its branches draws random numbers (a Dropout told by an
 * input whether it trains may draw its mask). */
static bool any_random(const ox_model *m, const int *order, int n) {
    for (int i = 0; i < n; i++) {
        const ox_node *nd = &m->nodes[order[i]];
        if ((nd->def->flags & OX_RANDOM) ||
            (!strcmp(nd->op, "Dropout") && nd->n_in > 2 && nd->in[2] >= 0))
            return true;
        for (int b = 0; b < 2 && nd->sub[0] >= 0; b++)
            if (any_random(m, m->scopes[nd->sub[b]].order, m->scopes[nd->sub[b]].n_order))
                return true;
    }
    return false;
}

static bool prepare(gf_ctx *ctx, ox_model *m, const gf_onnx_options *opt) {
    for (int k = 0; k < m->n_nodes && m->opset < 1; k++)
        if (!m->nodes[k].domain[0] || !strcmp(m->nodes[k].domain, "ai.onnx")) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                             "%s: declares no opset for the default ONNX domain", m->path);
            return false;
        }
    if (m->opset > OX_MAX_OPSET) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: opset %lld is newer than graft's ONNX importer "
                         "knows (1 to %d)", m->path, (long long)m->opset, OX_MAX_OPSET);
        return false;
    }
    const char *one[1] = {opt->cut};
    const bool cut = opt->n_cuts > 0 || opt->cut;
    if (cut && !set_cuts(ctx, m, opt->n_cuts > 0 ? opt->cuts : one,
                         opt->n_cuts > 0 ? opt->n_cuts : 1))
        return false;
    char *need = calloc((size_t)m->n_nodes + 1, 1);
    if (!need) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", m->path), false;
    bool ok = mark_needed(ctx, m, m->out_ids, m->n_out, need) && topo_order(ctx, m, need) &&
              match_ops(ctx, m, m->order, m->n_order) &&
              check_arity(ctx, m, m->order, m->n_order) && prepare_branches(ctx, m);
    free(need);
    if (!ok) return false;
    if (cut) drop_unused_inputs(m);
    m->random = any_random(m, m->order, m->n_order);
    ox_classify(m, true);
    if (opt->fold_constants && !fold(ctx, m)) return false;
    if (m->n_inlined) { /* the initializers only a branch not taken read are no parameters */
        for (int v = 0; v < m->n_values; v++)
            if (m->values[v].is_init && m->values[v].kind == OX_V_PARAM)
                m->values[v].kind = OX_V_CONST, m->values[v].buffer = false;
        ox_classify(m, true);
    }
    ox_classify(m, false);
    return true;
}

static gf_module *load_bytes(gf_ctx *ctx, const uint8_t *data, size_t size, const char *path,
                             const char *dir, const gf_onnx_options *opt) {
    gf_onnx_options dflt = gf_onnx_default_options();
    if (!opt) opt = &dflt;
    ox_model *m = ox_model_read(ctx, data, size, path, dir);
    if (!m) return NULL;
    if (!prepare(ctx, m, opt)) {
        ox_model_free(m);
        return NULL;
    }
    return make_module(ctx, m);
}

gf_onnx_options gf_onnx_default_options(void) {
    gf_onnx_options o = {NULL, NULL, 0, true};
    return o;
}

bool gf_onnx_available(void) { return true; }

/* The folder of path ("." for a bare file name). */
static char *folder_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) memcpy(d, path, n), d[n] = '\0';
    return d;
}

gf_module *gf_onnx_load(gf_ctx *ctx, const char *path, const gf_onnx_options *opt) {
    if (!path) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "onnx load: path is NULL");
        return NULL;
    }
    size_t size = 0;
    uint8_t *data = ox_read_file(ctx, path, &size);
    char *dir = data ? folder_of(path) : NULL;
    gf_module *mod = NULL;
    if (data && !dir) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
    else if (data) mod = load_bytes(ctx, data, size, path, dir, opt);
    free(data);
    free(dir);
    return mod;
}

gf_module *gf_onnx_load_memory(gf_ctx *ctx, const void *data, size_t size, const char *name,
                               const gf_onnx_options *opt) {
    if (!data && size) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "onnx load: data is NULL");
        return NULL;
    }
    return load_bytes(ctx, data ? data : "", size, name ? name : "(memory)", NULL, opt);
}

/* ---- running --------------------------------------------------------------------------------- */

static const ox_model *model_of(const gf_module *m) {
    return m && gf_module_forward_of(m) == onnx_forward ? gf_module_user(m) : NULL;
}

bool gf_onnx_is_model(const gf_module *m) { return model_of(m) != NULL; }
int gf_onnx_num_inputs(const gf_module *m) { return model_of(m) ? model_of(m)->n_in : 0; }
int gf_onnx_num_outputs(const gf_module *m) { return model_of(m) ? model_of(m)->n_out : 0; }

const gf_onnx_value_info *gf_onnx_input(const gf_module *m, int i) {
    const ox_model *x = model_of(m);
    return x && i >= 0 && i < x->n_in ? &x->in_info[i] : NULL;
}

const gf_onnx_value_info *gf_onnx_output(const gf_module *m, int i) {
    const ox_model *x = model_of(m);
    return x && i >= 0 && i < x->n_out ? &x->out_info[i] : NULL;
}

/* An input as the model declares it: its dtype. Declared shapes are not enforced: exporters fix
 * the batch size (and test files disagree with their own declarations); the nodes check the
 * shapes they need. */
static bool check_input(gf_ctx *ctx, const ox_model *m, int i, const gf_tensor *t) {
    const gf_onnx_value_info *vi = &m->in_info[i];
    if (!t) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: input %d '%s' is NULL", m->path, i,
                                    vi->name), false;
    gf_dtype dt;
    if (vi->elem_type && gf_onnx_type_dtype(vi->elem_type, &dt) && dt != t->dtype) {
        gf_ctx_set_error(ctx, GF_ERR_DTYPE, "%s: input '%s' is %s (held as %s), found a %s tensor",
                         m->path, vi->name, gf_onnx_type_name(vi->elem_type), gf_dtype_name(dt),
                         gf_dtype_name(t->dtype));
        return false;
    }
    return true;
}

static bool run_node(gf_ctx *ctx, const ox_model *m, const ox_node *n, gf_tensor **vals,
                     bool training);

/* An If whose condition is known only at run time: runs the nodes of the branch it takes and
 * gives that branch's outputs. */
static bool run_if(gf_ctx *ctx, const ox_model *m, const ox_node *n, gf_tensor **vals,
                   bool training) {
    int b = if_branch(ctx, m, n, vals[n->in[0]]);
    if (b < 0) return false;
    const ox_scope *sc = &m->scopes[n->sub[b]];
    for (int i = 0; i < sc->n_order; i++)
        if (!run_node(ctx, m, &m->nodes[sc->order[i]], vals, training)) return false;
    for (int k = 0; k < n->n_out; k++) {
        if (n->out[k] < 0) continue;
        if (!(vals[n->out[k]] = vals[sc->out[k]])) {
            char where[512];
            gf_ctx_set_error(ctx, GF_ERR_STATE, "%s%s output '%s' was not computed",
                             ox_node_where(m, n, where, sizeof where),
                             b ? "else_branch" : "then_branch", m->values[sc->out[k]].name);
            return false;
        }
    }
    return true;
}

static bool run_node(gf_ctx *ctx, const ox_model *m, const ox_node *n, gf_tensor **vals,
                     bool training) {
    if (n->sub[0] >= 0) return run_if(ctx, m, n, vals, training);
    gf_tensor **ins = gf_scratch(ctx, sizeof *ins * (size_t)(n->n_in + 1));
    gf_tensor **outs = gf_scratch(ctx, sizeof *outs * (size_t)(n->n_out + 1));
    if (!ins || !outs) return false;
    for (int k = 0; k < n->n_in; k++) ins[k] = n->in[k] >= 0 ? vals[n->in[k]] : NULL;
    for (int k = 0; k < n->n_out; k++) outs[k] = NULL;
    ox_exec e = {ctx, m, n, n->n_in, n->n_out, ins, outs, training};
    bool ok = n->def->fn(&e) && gf_ctx_status(ctx) == GF_OK;
    for (int k = 0; ok && k < n->n_out; k++) {
        if (n->out[k] < 0) continue;
        if (!outs[k]) {
            gf_ctx_set_error(ctx, GF_ERR_STATE, "output %d was not computed", k);
            ok = false;
        }
        vals[n->out[k]] = outs[k];
    }
    if (!ok) {
        char where[512];
        if (gf_ctx_status(ctx) == GF_OK) gf_ctx_set_error(ctx, GF_ERR_STATE, "failed");
        gf_ctx_prefix_error(ctx, "%s", ox_node_where(m, n, where, sizeof where));
    }
    return ok;
}

static int run_graph(gf_ctx *ctx, const ox_model *m, bool training, int n_in,
                     gf_tensor *const *in, gf_tensor **out, int max_out) {
    if (gf_ctx_status(ctx) != GF_OK) return -1;
    if (n_in != m->n_in || (n_in && !in)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: the model takes %d input%s, %d given", m->path,
                         m->n_in, m->n_in == 1 ? "" : "s", n_in);
        return -1;
    }
    gf_tensor **vals = gf_scratch(ctx, sizeof *vals * (size_t)(m->n_values + 1));
    if (!vals) return -1;
    for (int v = 0; v < m->n_values; v++) {
        const ox_value *x = &m->values[v];
        vals[v] = x->kind == OX_V_PARAM || x->kind == OX_V_CONST ? x->t : NULL;
    }
    for (int i = 0; i < m->n_in; i++) {
        if (!check_input(ctx, m, i, in[i])) return -1;
        vals[m->in_ids[i]] = in[i];
    }
    for (int i = 0; i < m->n_order; i++)
        if (!run_node(ctx, m, &m->nodes[m->order[i]], vals, training)) return -1;
    int n = 0;
    for (int i = 0; i < m->n_out && n < max_out; i++) {
        if (!vals[m->out_ids[i]]) {
            gf_ctx_set_error(ctx, GF_ERR_STATE, "%s: output '%s' was not computed", m->path,
                             m->values[m->out_ids[i]].name);
            return -1;
        }
        out[n++] = vals[m->out_ids[i]];
    }
    return n;
}

int gf_onnx_run(gf_ctx *ctx, gf_module *mod, int n_in, gf_tensor *const *in, gf_tensor **out,
                int max_out) {
    const ox_model *m = model_of(mod);
    if (!m || (max_out > 0 && !out)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "onnx run: %s", m ? "out is NULL"
                         : "the module was not made by gf_onnx_load");
        return -1;
    }
    return run_graph(ctx, m, gf_module_is_training(mod), n_in, in, out, max_out);
}

static gf_tensor *onnx_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    const ox_model *m = user;
    gf_tensor *out = NULL;
    if (m->n_in != 1) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: the model takes %d inputs; run it with "
                         "gf_onnx_run", m->path, m->n_in);
        return NULL;
    }
    const gf_node *before = ctx->tape;
    if (run_graph(ctx, m, gf_module_is_training(self), 1, &x, &out, 1) != 1) return NULL;
    gf_tape_mark_private(ctx, before, out);
    return out;
}

/* If, as the op table runs it: only an If whose branch was inlined at load time (it passes the
 * branch's outputs through); one decided at run time is run by run_if. */
bool ox_op_if(ox_exec *e) {
    if (e->node->sub[0] >= 0)
        return ox_fail(e, GF_ERR_STATE, "an If decided at run time runs inside its graph only");
    if (e->n_in != e->n_out)
        return ox_fail(e, GF_ERR_STATE, "%d branch outputs for %d outputs", e->n_in, e->n_out);
    for (int k = 0; k < e->n_out; k++) e->out[k] = e->in[k];
    return true;
}
