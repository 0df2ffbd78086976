/* The decoded ModelProto copied into the importer's graph (onnx_internal.h): opsets, values
 * by name (initializers, inputs, node outputs), nodes with their attributes, the declared
 * inputs and outputs. Names are checked here: a node output produced twice, a node reading a
 * name nothing produces, an output nothing produces are errors naming the tensor. */
#define _POSIX_C_SOURCE 200809L
#include "import/onnx_pb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dupstr(const char *s) {
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static bool nomem(gf_ctx *ctx, const ox_model *m) {
    gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", m->path);
    return false;
}

/* ---- values by name -------------------------------------------------------------------------- */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static uint64_t hash_key(const char *name, int scope) {
    return hash_str(name) ^ ((uint64_t)(unsigned)scope * 0x9e3779b97f4a7c15ull);
}

/* The value named name in exactly this scope, or -1. */
static int find_exact(const ox_model *m, int scope, const char *name) {
    if (!m->hash_cap || !name) return -1;
    for (uint64_t i = hash_key(name, scope) & (uint64_t)(m->hash_cap - 1);;
         i = (i + 1) & (uint64_t)(m->hash_cap - 1)) {
        int v = m->hash[i];
        if (!v) return -1;
        if (m->values[v - 1].scope == scope && !strcmp(m->values[v - 1].name, name)) return v - 1;
    }
}

int ox_value_find(const ox_model *m, const char *name) { return find_exact(m, 0, name); }

int ox_value_find_in(const ox_model *m, int scope, const char *name) {
    for (int s = scope, hops = 0; hops <= OX_MAX_IF_DEPTH; hops++) {
        int v = find_exact(m, s, name);
        if (v >= 0 || s <= 0 || s >= m->n_scopes) return v;
        s = m->scopes[s].parent;
    }
    return -1;
}

static bool hash_put(ox_model *m, int id) {
    if (2 * (m->n_values + 1) > m->hash_cap) {
        int cap = m->hash_cap ? 2 * m->hash_cap : 64;
        int *h = calloc((size_t)cap, sizeof *h);
        if (!h) return false;
        free(m->hash);
        m->hash = h;
        m->hash_cap = cap;
        for (int k = 0; k < id; k++) {
            uint64_t i = hash_key(m->values[k].name, m->values[k].scope) & (uint64_t)(cap - 1);
            while (h[i]) i = (i + 1) & (uint64_t)(cap - 1);
            h[i] = k + 1;
        }
    }
    uint64_t i = hash_key(m->values[id].name, m->values[id].scope) & (uint64_t)(m->hash_cap - 1);
    while (m->hash[i]) i = (i + 1) & (uint64_t)(m->hash_cap - 1);
    m->hash[i] = id + 1;
    return true;
}

/* A new value named name in scope; -1 with an error when out of memory. */
static int add_value(gf_ctx *ctx, ox_model *m, const char *name, ox_vkind kind, int scope) {
    if (m->n_values == m->cap_values) {
        int cap = m->cap_values ? 2 * m->cap_values : 64;
        ox_value *v = realloc(m->values, sizeof *v * (size_t)cap);
        if (!v) return nomem(ctx, m), -1;
        m->values = v;
        m->cap_values = cap;
    }
    ox_value *v = &m->values[m->n_values];
    memset(v, 0, sizeof *v);
    v->name = dupstr(name);
    v->kind = kind;
    v->scope = scope;
    v->producer = v->slot = -1;
    if (!v->name) return nomem(ctx, m), -1;
    if (!hash_put(m, m->n_values)) {
        free(v->name);
        return nomem(ctx, m), -1;
    }
    return m->n_values++;
}

/* ---- declared types -------------------------------------------------------------------------- */

static bool conv_info(const Onnx__ValueInfoProto *vi, gf_onnx_value_info *o) {
    memset(o, 0, sizeof *o);
    o->ndim = -1;
    if (!(o->name = dupstr(vi->name))) return false;
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) {
        o->is_tensor = !tp || tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET;
        return true;
    }
    o->is_tensor = true;
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    o->elem_type = tt->has_elem_type ? tt->elem_type : 0;
    if (!tt->shape || tt->shape->n_dim > GF_MAX_DIMS) return true;
    o->ndim = (int)tt->shape->n_dim;
    for (int i = 0; i < o->ndim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        o->dims[i] = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            d->dim_value >= 0)
            o->dims[i] = d->dim_value;
        else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                 !(o->dim_names[i] = dupstr(d->dim_param)))
            return false;
    }
    return true;
}

void ox_info_clear(gf_onnx_value_info *o) {
    free(o->name);
    for (int i = 0; i < GF_MAX_DIMS; i++) free(o->dim_names[i]);
    memset(o, 0, sizeof *o);
}

/* ---- attributes ------------------------------------------------------------------------------ */

static int attr_type(const Onnx__AttributeProto *a) {
    if (a->has_type && a->type) return (int)a->type;
    /* files from before the type field: the one that is set */
    if (a->has_f) return OX_A_FLOAT;
    if (a->has_i) return OX_A_INT;
    if (a->has_s) return OX_A_STRING;
    if (a->t) return OX_A_TENSOR;
    if (a->g) return OX_A_GRAPH;
    if (a->n_floats) return OX_A_FLOATS;
    if (a->n_ints) return OX_A_INTS;
    if (a->n_strings) return OX_A_STRINGS;
    return 0;
}

static bool conv_attr(gf_ctx *ctx, const ox_model *m, const Onnx__AttributeProto *a, ox_attr *o,
                      const char *where) {
    memset(o, 0, sizeof *o);
    if (!(o->name = dupstr(a->name))) return nomem(ctx, m);
    o->type = attr_type(a);
    o->f = a->f;
    o->i = a->i;
    if (o->type == OX_A_STRING) {
        if (!(o->s = malloc(a->s.len + 1))) return nomem(ctx, m);
        if (a->s.len) memcpy(o->s, a->s.data, a->s.len);
        o->s[a->s.len] = '\0';
    } else if (o->type == OX_A_FLOATS || o->type == OX_A_INTS) {
        size_t n = o->type == OX_A_FLOATS ? a->n_floats : a->n_ints;
        if (n > (size_t)1 << 24) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: attribute '%s' lists %zu values", where,
                             o->name, n);
            return false;
        }
        o->n = (int)n;
        if (o->type == OX_A_FLOATS && n) {
            if (!(o->floats = malloc(sizeof(float) * n))) return nomem(ctx, m);
            memcpy(o->floats, a->floats, sizeof(float) * n);
        } else if (n) {
            if (!(o->ints = malloc(sizeof(int64_t) * n))) return nomem(ctx, m);
            memcpy(o->ints, a->ints, sizeof(int64_t) * n);
        }
    } else if (o->type == OX_A_STRINGS) {
        if (a->n_strings > 4096) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: attribute '%s' lists %zu strings", where,
                             o->name, a->n_strings);
            return false;
        }
        if (!(o->strings = calloc(a->n_strings + 1, sizeof *o->strings))) return nomem(ctx, m);
        for (size_t i = 0; i < a->n_strings; i++, o->n++) {
            if (!(o->strings[i] = malloc(a->strings[i].len + 1))) return nomem(ctx, m);
            if (a->strings[i].len) memcpy(o->strings[i], a->strings[i].data, a->strings[i].len);
            o->strings[i][a->strings[i].len] = '\0';
        }
    } else if (o->type == OX_A_TENSOR && a->t) {
        char what[512];
        snprintf(what, sizeof what, "%.400s: attribute '%.80s'", where, o->name);
        int elem = a->t->has_data_type ? a->t->data_type : 0;
        o->t_elem = elem;
        /* a string constant is read as unsupported when a node uses it, not refused here: the
         * model can still be inspected */
        if (gf_onnx_type_dtype(elem, NULL) &&
            !(o->t = ox_tensor_from_pb(ctx, a->t, m->dir, what, NULL)))
            return false;
    }
    return true;
}

/* ---- nodes ----------------------------------------------------------------------------------- */

static int64_t domain_opset(const Onnx__ModelProto *mp, const char *domain, int64_t dflt) {
    if (!domain[0] || !strcmp(domain, "ai.onnx")) return dflt;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (o->domain && !strcmp(o->domain, domain)) return o->has_version ? o->version : 1;
    }
    return 0;
}

/* Copies node k's names and attributes and creates its output values. Inputs are resolved
 * later (a file may list nodes out of order). */
static bool conv_node(gf_ctx *ctx, ox_model *m, const Onnx__ModelProto *mp,
                      const Onnx__NodeProto *np, int k, int scope) {
    ox_node *n = &m->nodes[k];
    n->scope = scope;
    n->sub[0] = n->sub[1] = -1;
    if (!(n->name = dupstr(np->name)) || !(n->op = dupstr(np->op_type)) ||
        !(n->domain = dupstr(np->domain)))
        return nomem(ctx, m);
    char where[512];
    ox_node_where(m, n, where, sizeof where);
    if (!n->op[0]) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%snode %d has no op_type", where, k);
        return false;
    }
    n->opset = domain_opset(mp, n->domain, m->opset);
    if (np->n_input > 4096 || np->n_output > 4096 || np->n_attribute > 4096) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s%zu inputs, %zu outputs, %zu attributes: too many",
                         where, np->n_input, np->n_output, np->n_attribute);
        return false;
    }
    n->n_in = (int)np->n_input;
    n->n_out = (int)np->n_output;
    n->in = malloc(sizeof(int) * (np->n_input + 1));
    n->out = malloc(sizeof(int) * (np->n_output + 1));
    n->attr = calloc(np->n_attribute + 1, sizeof *n->attr);
    if (!n->in || !n->out || !n->attr) return nomem(ctx, m);
    for (int i = 0; i < n->n_in; i++) n->in[i] = -1;
    for (size_t i = 0; i < np->n_attribute; i++) {
        n->n_attr++;
        if (!conv_attr(ctx, m, np->attribute[i], &n->attr[i], where)) return false;
    }
    for (int i = 0; i < n->n_out; i++) {
        const char *name = np->output[i] ? np->output[i] : "";
        n->out[i] = -1;
        if (!name[0]) continue;
        int prev = find_exact(m, scope, name);
        if (prev >= 0) {
            const ox_value *v = &m->values[prev];
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%stensor '%s' is produced twice (also %s)",
                             where, name,
                             v->kind == OX_V_NODE ? "by another node"
                             : v->kind == OX_V_INPUT ? "a graph input" : "an initializer");
            return false;
        }
        int id = add_value(ctx, m, name, OX_V_NODE, scope);
        if (id < 0) return false;
        m->values[id].producer = k;
        n->out[i] = id;
    }
    return true;
}

/* Every node's inputs by name, as its scope sees them; src[k] is node k's NodeProto. */
static bool resolve_inputs(gf_ctx *ctx, ox_model *m, const Onnx__NodeProto *const *src) {
    for (int k = 0; k < m->n_nodes; k++) {
        ox_node *n = &m->nodes[k];
        for (int i = 0; i < n->n_in; i++) {
            const char *name = src[k]->input[i] ? src[k]->input[i] : "";
            if (!name[0]) continue;
            n->in[i] = ox_value_find_in(m, n->scope, name);
            if (n->in[i] < 0) {
                char where[512];
                gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%sinput %d '%s' is not an initializer, a "
                                 "graph input or a node's output%s",
                                 ox_node_where(m, n, where, sizeof where), i, name,
                                 n->scope ? " (of this branch or an enclosing graph)" : "");
                return false;
            }
            m->values[n->in[i]].uses++;
        }
    }
    return true;
}

/* ---- the graph ------------------------------------------------------------------------------- */

/* total: the elements of the initializers read so far (of every graph of the model). */
static bool conv_initializers(gf_ctx *ctx, ox_model *m, const Onnx__GraphProto *g, int scope,
                              int64_t *total) {
    if (g->n_sparse_initializer) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: sparse initializers are not supported", m->path);
        return false;
    }
    const int64_t lim = gf_ctx_limits(ctx)->model_params;
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *tp = g->initializer[i];
        const char *name = tp->name ? tp->name : "";
        char what[512];
        snprintf(what, sizeof what, "%s: initializer '%.300s'", m->path, name);
        if (!name[0] || find_exact(m, scope, name) >= 0) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: %s", what,
                             name[0] ? "appears twice" : "has no name");
            return false;
        }
        int id = add_value(ctx, m, name, OX_V_CONST, scope);
        if (id < 0) return false;
        ox_value *v = &m->values[id];
        v->is_init = true;
        v->elem = tp->has_data_type ? tp->data_type : 0;
        if (!gf_onnx_type_dtype(v->elem, NULL)) continue; /* refused when a node reads it */
        if (!(v->t = ox_tensor_from_pb(ctx, tp, m->dir, what, NULL))) return false;
        v->owned = true;
        *total += v->t->numel;
        if (*total > lim) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: initializers hold more than %lld elements "
                             "(limit params)", m->path, (long long)lim);
            return false;
        }
    }
    return true;
}

static bool conv_io(gf_ctx *ctx, ox_model *m, const Onnx__GraphProto *g) {
    m->in_ids = malloc(sizeof(int) * (g->n_input + 1));
    m->in_info = calloc(g->n_input + 1, sizeof *m->in_info);
    m->out_ids = malloc(sizeof(int) * (g->n_output + 1));
    m->out_info = calloc(g->n_output + 1, sizeof *m->out_info);
    if (!m->in_ids || !m->in_info || !m->out_ids || !m->out_info) return nomem(ctx, m);
    for (size_t i = 0; i < g->n_input; i++) {
        const char *name = g->input[i]->name ? g->input[i]->name : "";
        int id = ox_value_find(m, name);
        if (id >= 0 && m->values[id].is_init) continue; /* an initializer's overridable default */
        if (!name[0] || id >= 0) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: graph input '%s' %s", m->path, name,
                             name[0] ? "appears twice" : "has no name");
            return false;
        }
        if ((id = add_value(ctx, m, name, OX_V_INPUT, 0)) < 0) return false;
        if (!conv_info(g->input[i], &m->in_info[m->n_in])) return nomem(ctx, m);
        m->values[id].slot = m->n_in;
        m->values[id].elem = m->in_info[m->n_in].elem_type;
        m->in_ids[m->n_in++] = id;
    }
    return true;
}

static bool conv_outputs(gf_ctx *ctx, ox_model *m, const Onnx__GraphProto *g) {
    for (size_t i = 0; i < g->n_output; i++) {
        const char *name = g->output[i]->name ? g->output[i]->name : "";
        int id = ox_value_find(m, name);
        if (id < 0) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: graph output '%s' is produced by no node, "
                             "input or initializer", m->path, name);
            return false;
        }
        if (!conv_info(g->output[i], &m->out_info[m->n_out])) return nomem(ctx, m);
        m->out_ids[m->n_out++] = id;
    }
    return true;
}

/* ---- If branches ----------------------------------------------------------------------------- */

/* What reading the graphs of one model shares: the NodeProto of every node and the GraphProto
 * of every scope (names are resolved once all of them are read). */
typedef struct conv_state {
    const Onnx__ModelProto *mp;
    const Onnx__NodeProto **src;
    const Onnx__GraphProto **graphs;
    int64_t init_total;
} conv_state;

static bool is_if(const Onnx__NodeProto *np) {
    const char *d = np->domain ? np->domain : "";
    return np->op_type && !strcmp(np->op_type, "If") && (!d[0] || !strcmp(d, "ai.onnx"));
}

/* The graph attribute name of an If node (then_branch, else_branch), or NULL. */
static const Onnx__GraphProto *branch_of(const Onnx__NodeProto *np, const char *name) {
    for (size_t i = 0; i < np->n_attribute; i++) {
        const Onnx__AttributeProto *a = np->attribute[i];
        if (a->name && !strcmp(a->name, name) && a->g) return a->g;
    }
    return NULL;
}

/* Counts the nodes and branch graphs of g and the branches below it, refusing If branches
 * nested deeper than OX_MAX_IF_DEPTH and more than OX_MAX_SUBGRAPHS of them. */
static bool count_graph(gf_ctx *ctx, const ox_model *m, const Onnx__GraphProto *g, int depth,
                        size_t *nodes, size_t *scopes) {
    *nodes += g->n_node;
    if (*nodes > (size_t)1 << 24) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: more than %zu nodes", m->path,
                         (size_t)1 << 24);
        return false;
    }
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *np = g->node[k];
        if (!is_if(np)) continue;
        for (int b = 0; b < 2; b++) {
            const Onnx__GraphProto *sg = branch_of(np, b ? "else_branch" : "then_branch");
            if (!sg) continue;
            const char *why = depth + 1 > OX_MAX_IF_DEPTH ? "If branches nested deeper than"
                              : ++*scopes > OX_MAX_SUBGRAPHS ? "more If branches than" : NULL;
            if (why) {
                gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: node '%.200s' (If): %s %d", m->path,
                                 np->name ? np->name : "", why,
                                 depth + 1 > OX_MAX_IF_DEPTH ? OX_MAX_IF_DEPTH
                                                             : OX_MAX_SUBGRAPHS);
                return false;
            }
            if (!count_graph(ctx, m, sg, depth + 1, nodes, scopes)) return false;
        }
    }
    return true;
}

static bool conv_graph(gf_ctx *ctx, ox_model *m, conv_state *cv, const Onnx__GraphProto *g,
                       int scope);

/* Reads the two branches of If node k into new scopes. */
static bool conv_branches(gf_ctx *ctx, ox_model *m, conv_state *cv, int k) {
    const Onnx__NodeProto *np = cv->src[k];
    for (int b = 0; b < 2; b++) {
        const char *name = b ? "else_branch" : "then_branch";
        const Onnx__GraphProto *sg = branch_of(np, name);
        char where[512];
        ox_node_where(m, &m->nodes[k], where, sizeof where);
        if (!sg) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%sthe graph attribute %s is missing", where,
                             name);
            return false;
        }
        if (sg->n_input) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s%s declares %zu inputs (an If branch takes "
                             "none)", where, name, sg->n_input);
            return false;
        }
        int id = m->n_scopes++;
        ox_scope *sc = &m->scopes[id];
        sc->parent = m->nodes[k].scope;
        sc->node = k;
        sc->depth = m->scopes[sc->parent].depth + 1;
        cv->graphs[id] = sg;
        m->nodes[k].sub[b] = id;
        if (!conv_graph(ctx, m, cv, sg, id)) return false;
    }
    return true;
}

/* The initializers and nodes of one graph (the model's, scope 0, or a branch). */
static bool conv_graph(gf_ctx *ctx, ox_model *m, conv_state *cv, const Onnx__GraphProto *g,
                       int scope) {
    if (!conv_initializers(ctx, m, g, scope, &cv->init_total)) return false;
    if (scope == 0 && !conv_io(ctx, m, g)) return false;
    for (size_t i = 0; i < g->n_node; i++) {
        int k = m->n_nodes++;
        cv->src[k] = g->node[i];
        if (!conv_node(ctx, m, cv->mp, g->node[i], k, scope)) return false;
        if (is_if(g->node[i]) && !conv_branches(ctx, m, cv, k)) return false;
    }
    return true;
}

/* Each branch's outputs by name, as many as its If node has. */
static bool branch_outputs(gf_ctx *ctx, ox_model *m, const conv_state *cv) {
    for (int s = 1; s < m->n_scopes; s++) {
        ox_scope *sc = &m->scopes[s];
        const ox_node *n = &m->nodes[sc->node];
        const Onnx__GraphProto *g = cv->graphs[s];
        char where[512];
        ox_node_where(m, n, where, sizeof where);
        const char *bname = n->sub[0] == s ? "then_branch" : "else_branch";
        if ((size_t)n->n_out != g->n_output) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s%s has %zu outputs, the node %d (a branch "
                             "gives one value per output of its If)", where, bname, g->n_output,
                             n->n_out);
            return false;
        }
        if (!(sc->out = malloc(sizeof(int) * (g->n_output + 1)))) return nomem(ctx, m);
        sc->n_out = (int)g->n_output;
        for (size_t i = 0; i < g->n_output; i++) {
            const char *name = g->output[i]->name ? g->output[i]->name : "";
            if ((sc->out[i] = ox_value_find_in(m, s, name)) < 0) {
                gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s%s output '%s' is produced by no node, "
                                 "initializer or enclosing graph", where, bname, name);
                return false;
            }
        }
    }
    return true;
}

typedef struct capture {
    int node, value;
} capture;

static int capture_cmp(const void *a, const void *b) {
    const capture *x = a, *y = b;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    return x->value < y->value ? -1 : x->value > y->value;
}

/* Adds (If, v) for every If whose branch, from scope s outwards, reads v from outside it. */
static bool capture_from(const ox_model *m, int s, int v, capture *c, size_t *n, size_t cap) {
    const int vd = m->scopes[m->values[v].scope].depth;
    for (; s > 0 && vd < m->scopes[s].depth; s = m->scopes[s].parent) {
        if (*n == cap) return false;
        c[(*n)++] = (capture){m->scopes[s].node, v};
    }
    return true;
}

/* Appends to each If node's inputs (after its condition) the values of enclosing graphs that
 * its branches read, each once. */
static bool capture_inputs(gf_ctx *ctx, ox_model *m) {
    if (m->n_scopes <= 1) return true;
    const size_t cap = (size_t)1 << 24;
    capture *c = malloc(sizeof *c * 1024);
    size_t n = 0, have = 1024;
    bool ok = c != NULL, full = false;
    for (int k = 0; ok && k < m->n_nodes + m->n_scopes; k++) {
        const bool is_node = k < m->n_nodes;
        const int s = is_node ? m->nodes[k].scope : k - m->n_nodes;
        const int cnt = is_node ? m->nodes[k].n_in : s > 0 ? m->scopes[s].n_out : 0;
        for (int i = 0; ok && !full && i < cnt && s > 0; i++) {
            int v = is_node ? m->nodes[k].in[i] : m->scopes[s].out[i];
            if (v < 0) continue;
            if (n + OX_MAX_IF_DEPTH >= have && have < cap) {
                capture *g = realloc(c, sizeof *c * have * 2);
                if (!(ok = g != NULL)) break;
                c = g, have *= 2;
            }
            full = !capture_from(m, s, v, c, &n, have);
        }
    }
    if (full) {
        free(c);
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: If branches read more than %zu values of "
                         "enclosing graphs", m->path, cap);
        return false;
    }
    if (!ok) return free(c), nomem(ctx, m);
    qsort(c, n, sizeof *c, capture_cmp);
    for (size_t i = 0; ok && i < n;) {
        size_t j = i, uniq = 0;
        for (; j < n && c[j].node == c[i].node; j++) uniq += j == i || c[j].value != c[j - 1].value;
        ox_node *nd = &m->nodes[c[i].node];
        int *in = malloc(sizeof(int) * ((size_t)nd->n_in + uniq + 1));
        if (!(ok = in != NULL)) break;
        memcpy(in, nd->in, sizeof(int) * (size_t)nd->n_in);
        for (size_t q = i; q < j; q++)
            if (q == i || c[q].value != c[q - 1].value) {
                in[nd->n_in++] = c[q].value;
                m->values[c[q].value].uses++;
            }
        free(nd->in);
        nd->in = in;
        i = j;
    }
    free(c);
    return ok || nomem(ctx, m);
}

/* ---- the model ------------------------------------------------------------------------------- */

static bool conv_model(gf_ctx *ctx, ox_model *m, const Onnx__ModelProto *mp) {
    m->ir_version = mp->has_ir_version ? mp->ir_version : 0;
    size_t pl = strlen(mp->producer_name ? mp->producer_name : "") +
                strlen(mp->producer_version ? mp->producer_version : "") + 2;
    if (!(m->producer = malloc(pl))) return nomem(ctx, m);
    snprintf(m->producer, pl, "%s%s%s", mp->producer_name ? mp->producer_name : "",
             mp->producer_version && mp->producer_version[0] ? " " : "",
             mp->producer_version ? mp->producer_version : "");
    m->opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const char *d = mp->opset_import[i]->domain ? mp->opset_import[i]->domain : "";
        if (!d[0] || !strcmp(d, "ai.onnx")) m->opset = mp->opset_import[i]->version;
    }
    if (m->opset < 0 && m->ir_version < 3) m->opset = 1; /* before opset_import: version 1 */
    if (m->opset < 0) m->opset = 0; /* only other domains: refused when a default op runs */
    const Onnx__GraphProto *g = mp->graph;
    if (!g) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: holds no graph", m->path);
        return false;
    }
    size_t n_nodes = 0, n_scopes = 1;
    if (!count_graph(ctx, m, g, 0, &n_nodes, &n_scopes)) return false;
    conv_state cv = {mp, calloc(n_nodes + 1, sizeof *cv.src),
                     calloc(n_scopes + 1, sizeof *cv.graphs), 0};
    m->nodes = calloc(n_nodes + 1, sizeof *m->nodes);
    m->scopes = calloc(n_scopes + 1, sizeof *m->scopes);
    bool ok = cv.src && cv.graphs && m->nodes && m->scopes;
    if (!ok) nomem(ctx, m);
    if (ok) {
        m->n_scopes = 1;
        m->scopes[0].parent = -1;
        cv.graphs[0] = g;
        ok = conv_graph(ctx, m, &cv, g, 0) && resolve_inputs(ctx, m, cv.src) &&
             branch_outputs(ctx, m, &cv) && capture_inputs(ctx, m) && conv_outputs(ctx, m, g);
    }
    free(cv.src);
    free(cv.graphs);
    return ok;
}

ox_model *ox_model_read(gf_ctx *ctx, const uint8_t *data, size_t size, const char *path,
                        const char *dir) {
    ox_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = dupstr(path)) || (dir && !(m->dir = dupstr(dir)))) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
        ox_model_free(m);
        return NULL;
    }
    ox_pb *pb = ox_pb_decode(ctx, &onnx__model_proto__descriptor, data, size, path);
    if (!pb) {
        ox_model_free(m);
        return NULL;
    }
    m->decoded_bytes = ox_pb_bytes(pb);
    bool ok = conv_model(ctx, m, (const Onnx__ModelProto *)ox_pb_msg(pb));
    ox_pb_free(pb);
    if (!ok) {
        ox_model_free(m);
        return NULL;
    }
    return m;
}

void ox_model_free(ox_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_values; i++) {
        free(m->values[i].name);
        if (m->values[i].owned) gf_tensor_free(m->values[i].t);
    }
    for (int k = 0; k < m->n_nodes; k++) {
        ox_node *n = &m->nodes[k];
        for (int a = 0; a < n->n_attr; a++) {
            free(n->attr[a].name);
            free(n->attr[a].s);
            free(n->attr[a].floats);
            free(n->attr[a].ints);
            for (int k = 0; n->attr[a].strings && k < n->attr[a].n; k++)
                free(n->attr[a].strings[k]);
            free(n->attr[a].strings);
            gf_tensor_free(n->attr[a].t);
        }
        free(n->attr);
        free(n->in);
        free(n->out);
        free(n->name);
        free(n->op);
        free(n->domain);
    }
    for (int i = 0; i < m->n_in; i++) ox_info_clear(&m->in_info[i]);
    for (int i = 0; i < m->n_out; i++) ox_info_clear(&m->out_info[i]);
    free(m->in_info);
    free(m->out_info);
    free(m->in_ids);
    free(m->out_ids);
    for (int s = 0; m->scopes && s < m->n_scopes; s++) {
        free(m->scopes[s].out);
        free(m->scopes[s].order);
    }
    free(m->scopes);
    free(m->nodes);
    free(m->values);
    free(m->hash);
    free(m->order);
    free(m->producer);
    free(m->path);
    free(m->dir);
    free(m);
}

const char *ox_node_where(const ox_model *m, const ox_node *n, char *buf, size_t cap) {
    int k = (int)(n - m->nodes);
    if (n->name && n->name[0])
        snprintf(buf, cap, "%s: node '%.200s' (%s, opset %lld): ", m->path, n->name,
                 n->op ? n->op : "?", (long long)n->opset);
    else
        snprintf(buf, cap, "%s: node #%d (%s, opset %lld): ", m->path, k, n->op ? n->op : "?",
                 (long long)n->opset);
    return buf;
}
