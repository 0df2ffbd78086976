/* Model specs: a JSON description of a module tree with PyTorch's layer names, built with the
 * public nn API and checked layer by layer with a dry forward pass on a zero batch. The settings
 * and leaf layers are in spec_layers.c. */
#define _POSIX_C_SOURCE 200809L
#include "spec_internal.h"
#include "io/io_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gf_spec_params gf_spec_default_params(void) {
    gf_spec_params p;
    memset(&p, 0, sizeof p);
    return p;
}

void gf_spec_summary_free(gf_spec_summary *s) {
    if (!s) return;
    free(s->layers);
    free(s);
}

/* ---- building ---------------------------------------------------------------------------------- */

static int add_layer(spec_state *s, const char *path, const char *type, int depth) {
    if (s->n_layers == s->cap_layers) {
        int cap = s->cap_layers ? 2 * s->cap_layers : 16;
        gf_spec_layer *l = realloc(s->layers, sizeof *l * (size_t)cap);
        if (!l) return -1;
        s->layers = l;
        s->cap_layers = cap;
    }
    gf_spec_layer *l = &s->layers[s->n_layers];
    memset(l, 0, sizeof *l);
    snprintf(l->path, sizeof l->path, "%s", path);
    snprintf(l->type, sizeof l->type, "%s", type);
    l->depth = depth;
    return s->n_layers++;
}

/* Runs leaf m on a zero batch [2, cur...] and moves cur to its output sample shape. */
static bool dry_run(spec_state *s, gf_module *m, const char *path, const char *type, shape *cur) {
    if (cur->ndim < 0 || !s->scratch) return true;
    char in[96];
    spec_shape_str(cur, true, in, sizeof in);
    if (cur->ndim + 1 > GF_MAX_DIMS) {
        spec_fail(s, path, type, "input %s has too many dimensions", in);
        return false;
    }
    int64_t full[GF_MAX_DIMS];
    full[0] = 2;
    for (int i = 0; i < cur->ndim; i++) full[i + 1] = cur->d[i];
    gf_ctx_clear_error(s->scratch);
    bool was = gf_module_is_training(m);
    gf_module_train(m, false);
    gf_tensor *x = gf_zeros(s->scratch, GF_F32, cur->ndim + 1, full);
    gf_tensor *y = x ? gf_module_forward(s->scratch, m, x) : NULL;
    gf_module_train(m, was);
    bool ok = true;
    if (!y) {
        /* the module's own message, without its "module (Type): " prefix */
        const char *why = gf_ctx_error(s->scratch);
        if (strncmp(why, "module ", 7) == 0) {
            const char *p = strstr(why, "): ");
            if (p) why = p + 3;
        }
        if (gf_ctx_status(s->ctx) == GF_OK) {
            if (s->expect[0])
                gf_ctx_set_error(s->ctx, GF_ERR_SHAPE,
                                 "%s: shapes do not connect at %s (%s): it gets %s but expects "
                                 "%s (%s)",
                                 s->label, spec_show_path(path), type, in, s->expect, why);
            else
                gf_ctx_set_error(s->ctx, GF_ERR_SHAPE,
                                 "%s: shapes do not connect at %s (%s): it gets %s: %s", s->label,
                                 spec_show_path(path), type, in, why);
        }
        ok = false;
    } else if (y->ndim < 1 || y->shape[0] != 2) {
        char out[96];
        gf_shape_str(y, out, sizeof out);
        spec_fail(s, path, type, "turns the batch %s into %s: the first axis must stay the batch",
                  in, out);
        ok = false;
    } else {
        cur->ndim = y->ndim - 1;
        for (int i = 1; i < y->ndim; i++) cur->d[i - 1] = y->shape[i];
    }
    gf_ctx_reset(s->scratch);
    return ok;
}

static void record_out(spec_state *s, int idx, const shape *cur, const gf_module *m) {
    if (idx < 0) return;
    gf_spec_layer *l = &s->layers[idx];
    l->out_ndim = cur->ndim < 0 ? 0 : cur->ndim;
    for (int i = 0; i < l->out_ndim; i++) l->out_shape[i] = cur->d[i];
    l->params = gf_module_param_count(m, false);
}

static gf_module *build(spec_state *s, const cJSON *node, const char *path, int depth, bool root,
                        shape *cur);

static gf_module *build_container(spec_state *s, const cJSON *node, const char *path, int depth,
                                  const char *type, shape *cur) {
    const cJSON *ch = spec_get(node, "children");
    if (!ch) return spec_fail(s, path, type, "\"children\" is missing");
    bool named = strcmp(type, "container") == 0;
    if (named ? !cJSON_IsObject(ch) : !(cJSON_IsArray(ch) || cJSON_IsObject(ch)))
        return spec_fail(s, path, type, "\"children\" must be %s", named
                             ? "an object {\"name\": layer, ...}"
                             : "a list of layers or an object {\"name\": layer, ...}");
    if (!ch->child) return spec_fail(s, path, type, "\"children\" is empty");
    gf_module *m;
    if (named) {
        const cJSON *nm = spec_get(node, "name");
        if (nm && (!cJSON_IsString(nm) || !nm->valuestring[0]))
            return spec_fail(s, path, type, "\"name\" must be a non-empty string");
        m = gf_nn_container(s->ctx, nm ? nm->valuestring : "Container", NULL, NULL, NULL);
    } else {
        m = gf_nn_sequential(s->ctx);
    }
    if (!m) return NULL;
    int idx = add_layer(s, path, gf_module_type(m), depth);
    if (idx < 0) {
        gf_module_free(m);
        gf_ctx_set_error(s->ctx, GF_ERR_NOMEM, "%s: out of memory", s->label);
        return NULL;
    }
    int i = 0;
    for (const cJSON *c = ch->child; c; c = c->next, i++) {
        char name[64], sub[PATH_CAP];
        if (cJSON_IsArray(ch)) {
            snprintf(name, sizeof name, "%d", i);
        } else {
            if (!c->string[0] || strchr(c->string, '.') || strlen(c->string) >= sizeof name) {
                spec_fail(s, path, type, "child name \"%s\" must be non-empty, shorter than 64 "
                          "characters and free of '.'", c->string);
                gf_module_free(m);
                return NULL;
            }
            /* the children so far are in m, whose name lookup is hashed: linear overall */
            if (gf_module_child(m, c->string)) {
                spec_fail(s, path, type, "child name \"%s\" given twice", c->string);
                gf_module_free(m);
                return NULL;
            }
            snprintf(name, sizeof name, "%s", c->string);
        }
        if ((size_t)snprintf(sub, sizeof sub, path[0] ? "%s.%s" : "%s%s", path, name) >= sizeof sub) {
            spec_fail(s, path, type, "the model is nested too deeply (paths over %d characters)",
                      PATH_CAP - 1);
            gf_module_free(m);
            return NULL;
        }
        gf_module *child = build(s, c, sub, depth + 1, false, cur);
        if (!child) {
            gf_module_free(m);
            return NULL;
        }
        if (gf_module_add(s->ctx, m, name, child) != GF_OK) {
            gf_module_free(m);
            return NULL;
        }
    }
    record_out(s, idx, cur, m);
    return m;
}

static gf_module *build(spec_state *s, const cJSON *node, const char *path, int depth, bool root,
                        shape *cur) {
    if (!cJSON_IsObject(node)) return spec_fail(s, path, NULL, "a layer must be an object {\"type\": ...}");
    const cJSON *t = spec_get(node, "type");
    if (!t) return spec_fail(s, path, NULL, "\"type\" is missing");
    if (!cJSON_IsString(t)) return spec_fail(s, path, NULL, "\"type\" must be a string");
    char type[TYPE_CAP];
    spec_normalize_type(t->valuestring, type, sizeof type);
    const type_def *def = spec_find_type(type);
    if (!def) {
        char known[512];
        size_t k = 0;
        const char *const *names = gf_spec_layer_types();
        for (size_t i = 0; names[i] && k < sizeof known; i++)
            k += (size_t)snprintf(known + k, sizeof known - k, i ? ", %s" : "%s", names[i]);
        return spec_fail(s, path, NULL, "unknown layer type \"%s\" (known: %s)", t->valuestring,
                         known);
    }
    if (!spec_check_keys(s, node, path, type, def->keys, root)) return NULL;
    if (!def->build) return build_container(s, node, path, depth, type, cur);

    s->expect[0] = '\0';
    gf_module *m = def->build(s, node, path, type, cur);
    if (!m) {
        /* a constructor's own message (bad values): say where */
        if (gf_ctx_status(s->ctx) != GF_OK && strncmp(gf_ctx_error(s->ctx), s->label,
                                                      strlen(s->label)) != 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", gf_ctx_error(s->ctx));
            gf_status st = gf_ctx_status(s->ctx);
            gf_ctx_clear_error(s->ctx);
            gf_ctx_set_error(s->ctx, st, "%s: at %s (%s): %s", s->label, spec_show_path(path), type,
                             msg);
        }
        return NULL;
    }
    int idx = add_layer(s, path, gf_module_type(m), depth);
    if (idx < 0) {
        gf_module_free(m);
        gf_ctx_set_error(s->ctx, GF_ERR_NOMEM, "%s: out of memory", s->label);
        return NULL;
    }
    if (!dry_run(s, m, path, type, cur)) {
        gf_module_free(m);
        return NULL;
    }
    record_out(s, idx, cur, m);
    return m;
}

/* The root's "input": a list of 1..7 positive sizes, or "data" (the data's shape, as when it
 * is left out). */
static bool read_input(spec_state *s, const cJSON *root, shape *sh) {
    const cJSON *v = cJSON_IsObject(root) ? spec_get(root, "input") : NULL;
    sh->ndim = -1;
    if (!v) return true;
    if (cJSON_IsString(v) && strcmp(v->valuestring, "data") == 0) {
        s->input_from_data = true;
        return true;
    }
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    if (n < 1 || n > GF_MAX_DIMS - 1) {
        spec_fail(s, "", NULL, "\"input\" must be the sample shape, a list of 1 to %d sizes such "
                  "as [1, 28, 28], or \"data\"", GF_MAX_DIMS - 1);
        return false;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble != floor(e->valuedouble) ||
            e->valuedouble > 1e9) {
            spec_fail(s, "", NULL, "\"input\"[%d] must be a whole number >= 1", i);
            return false;
        }
        sh->d[i] = (int64_t)e->valuedouble;
    }
    sh->ndim = n;
    return true;
}

static void error_position(const char *text, size_t len, const char *at, int *line, int *col) {
    *line = 1;
    *col = 1;
    if (!at || at < text || at > text + len) return;
    for (const char *p = text; p < at; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

gf_module *gf_spec_parse(gf_ctx *ctx, const char *text, size_t len, const gf_spec_params *p,
                         gf_spec_summary **summary) {
    if (summary) *summary = NULL;
    gf_spec_params dp = gf_spec_default_params();
    if (!p) p = &dp;
    spec_state s = {.ctx = ctx, .label = p->label ? p->label : "model spec", .rng = p->rng,
                    .n_classes = p->n_classes, .vocab_size = p->vocab_size};
    if (!ctx) return NULL;
    if (!text) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: no text", s.label);
        return NULL;
    }
    if (p->in_ndim < 0 || p->in_ndim > GF_MAX_DIMS - 1) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: input shape with %d dimensions", s.label,
                         p->in_ndim);
        return NULL;
    }
    if (gf_json_check(ctx, text, len, s.label, "the JSON") != GF_OK) return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        int line, col;
        error_position(text, len, end ? end : cJSON_GetErrorPtr(), &line, &col);
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: not valid JSON (line %d, column %d)", s.label,
                         line, col);
        return NULL;
    }
    for (const char *q = end; q && q < text + len; q++)
        if (!isspace((unsigned char)*q) && *q != '\0') {
            int line, col;
            error_position(text, len, q, &line, &col);
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: text after the JSON value (line %d, column %d)",
                             s.label, line, col);
            cJSON_Delete(root);
            return NULL;
        }

    gf_module *m = NULL;
    shape cur;
    if (!read_input(&s, root, &cur)) goto done;
    if (p->in_ndim > 0) {
        shape given = {.ndim = p->in_ndim};
        for (int i = 0; i < p->in_ndim; i++) given.d[i] = p->in_shape[i];
        bool same = cur.ndim == given.ndim;
        for (int i = 0; same && i < cur.ndim; i++) same = cur.d[i] == given.d[i];
        if (cur.ndim >= 0 && !same) {
            char a[96], b[96];
            spec_shape_str(&cur, false, a, sizeof a);
            spec_shape_str(&given, false, b, sizeof b);
            gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                             "%s: the spec's \"input\" is %s but the data's samples are %s",
                             s.label, a, b);
            goto done;
        }
        cur = given;
    }
    if (spec_numel(&cur) > gf_ctx_limits(ctx)->model_activation) {
        char a[96];
        spec_shape_str(&cur, false, a, sizeof a);
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s: the input %s holds %lld values per example, more than the limit of "
                         "%lld " GF_LIMIT_HINT("activation"),
                         s.label, a, (long long)spec_numel(&cur),
                         (long long)gf_ctx_limits(ctx)->model_activation);
        goto done;
    }
    if (cur.ndim >= 0) {
        gf_ctx_params cp = gf_ctx_default_params();
        cp.n_threads = gf_ctx_threads(ctx);
        s.scratch = gf_ctx_new(&cp);
        if (!s.scratch) {
            gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", s.label);
            goto done;
        }
        gf_ctx_set_grad_enabled(s.scratch, false);
    }
    shape in = cur;
    m = build(&s, root, "", 0, true, &cur);
    if (m && summary) {
        gf_spec_summary *sum = calloc(1, sizeof *sum);
        if (!sum) {
            gf_module_free(m);
            m = NULL;
            gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", s.label);
            goto done;
        }
        sum->in_ndim = in.ndim < 0 ? 0 : in.ndim;
        memcpy(sum->in_shape, in.d, sizeof in.d);
        sum->out_ndim = cur.ndim < 0 ? 0 : cur.ndim;
        memcpy(sum->out_shape, cur.d, sizeof cur.d);
        sum->n_layers = s.n_layers;
        sum->layers = s.layers;
        sum->input_from_data = s.input_from_data;
        sum->uses_classes = s.uses_classes;
        s.layers = NULL;
        *summary = sum;
    }
done:
    free(s.layers);
    gf_ctx_free(s.scratch);
    cJSON_Delete(root);
    return m;
}

char *gf_spec_read_text(gf_ctx *ctx, const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        gf_ctx_set_error(ctx, GF_ERR_IO, "model spec %s: cannot read it: %s", path, strerror(errno));
        return NULL;
    }
    const size_t max = (size_t)16 << 20;
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
        if (n > max) { /* a huge file, or a device that never ends */
            free(buf);
            fclose(f);
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "model spec %s: a model spec may be at most 16 MiB",
                             path);
            return NULL;
        }
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (!buf) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "model spec %s: out of memory", path);
        return NULL;
    }
    if (bad) {
        free(buf);
        gf_ctx_set_error(ctx, GF_ERR_IO, "model spec %s: read error", path);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

gf_module *gf_spec_load(gf_ctx *ctx, const char *path, const gf_spec_params *p,
                        gf_spec_summary **summary) {
    if (summary) *summary = NULL;
    if (!ctx) return NULL;
    if (!path) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "model spec: no path");
        return NULL;
    }
    size_t len = 0;
    char *buf = gf_spec_read_text(ctx, path, &len);
    if (!buf) return NULL;
    gf_spec_params q = p ? *p : gf_spec_default_params();
    if (!q.label) q.label = path;
    char label[4200];
    if (!p || !p->label) {
        snprintf(label, sizeof label, "model spec %s", path);
        q.label = label;
    }
    gf_module *m = gf_spec_parse(ctx, buf, len, &q, summary);
    free(buf);
    return m;
}
