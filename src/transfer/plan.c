/* Load plans: a weights load (renaming, strict, dry run) plus what training will do with each
 * tensor — trainable, frozen, BatchNorm statistics that move or stay — as a table or JSON. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "transfer/transfer_internal.h"

static const char *const role_names[] = {"trainable", "frozen", "stat moving", "stat fixed",
                                         "buffer", "-"};

const char *gf_tl_role_name(gf_tl_role r) {
    return (unsigned)r <= GF_TL_ROLE_NONE ? role_names[r] : "?";
}

void gf_tl_plan_free(gf_tl_plan *p) {
    if (!p) return;
    free(p->source);
    gf_load_report_free(p->report);
    free(p->roles);
    free(p);
}

/* Role of model key `name` (a buffer when is_buffer). */
static gf_tl_role role_of(const gf_module *m, const char *name, bool is_buffer) {
    const gf_tensor *t = gf_module_tensor(NULL, m, name);
    if (!t) return GF_TL_ROLE_NONE;
    if (!is_buffer) return t->requires_grad ? GF_TL_ROLE_TRAINABLE : GF_TL_ROLE_FROZEN;
    const gf_module *owner = m;
    const char *dot = strrchr(name, '.');
    if (dot) {
        char path[GF_TL_PATH_MAX];
        size_t len = (size_t)(dot - name);
        if (len >= sizeof path) return GF_TL_ROLE_BUFFER;
        memcpy(path, name, len);
        path[len] = '\0';
        owner = gf_module_child(m, path);
    }
    if (!owner || !gf_tl_is_bn(owner)) return GF_TL_ROLE_BUFFER;
    return gf_module_eval_pinned(owner) ? GF_TL_ROLE_STAT_FIXED : GF_TL_ROLE_STAT_MOVING;
}

static bool visit_bn_count(gf_module *m, const char *path, void *user) {
    (void)path;
    gf_tl_plan *p = user;
    if (!gf_tl_is_bn(m) || !gf_module_tensor(NULL, m, "running_mean")) return true;
    p->bn_layers++;
    if (gf_module_eval_pinned(m)) return true;
    p->bn_moving++;
    if (gf_module_param_count(m, false) > 0 && gf_module_param_count(m, true) == 0)
        p->bn_moving_frozen++;
    return true;
}

/* Fills roles and the summary from the model as it is now. */
static bool fill_plan(gf_ctx *ctx, gf_tl_plan *p, gf_module *m) {
    const gf_load_report *r = p->report;
    p->roles = calloc((size_t)(r->n ? r->n : 1), sizeof *p->roles);
    if (!p->roles) return false;
    for (int i = 0; i < r->n; i++)
        p->roles[i] = r->keys[i].status == GF_KEY_UNEXPECTED
                          ? GF_TL_ROLE_NONE
                          : role_of(m, r->keys[i].name, r->keys[i].is_buffer);
    p->params_total = gf_module_param_count(m, false);
    p->params_trainable = gf_module_param_count(m, true);
    gf_named_tensors *list = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    if (!list) return false;
    for (int i = 0; i < list->n; i++) {
        if (list->items[i].tensor->requires_grad) p->tensors_trainable++;
        else p->tensors_frozen++;
    }
    gf_named_tensors_free(list);
    gf_tl_walk(m, visit_bn_count, p);
    p->bn_stats_move = p->bn_moving > 0;
    return true;
}

gf_status gf_tl_load(gf_ctx *ctx, gf_module *m, const char *path, const gf_weights_options *opt,
                     gf_tl_plan **plan) {
    if (plan) *plan = NULL;
    gf_weights_options o = opt ? *opt : gf_weights_default_options();
    gf_load_report *r = NULL;
    gf_status st = gf_weights_load_with(ctx, m, path, &o, &r);
    if (!r) return st;
    if (!plan) {
        gf_load_report_free(r);
        return st;
    }
    gf_tl_plan *p = calloc(1, sizeof *p);
    if (p) {
        p->report = r;
        p->source = strdup(path);
        p->strict = o.strict;
        p->dry_run = o.dry_run;
        p->applied = r->applied;
    }
    if (!p || !p->source || !fill_plan(ctx, p, m)) {
        if (p) gf_tl_plan_free(p);
        else gf_load_report_free(r);
        if (st == GF_OK && gf_ctx_status(ctx) == GF_OK)
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "load plan for %s: out of memory", path);
        return st != GF_OK ? st : gf_ctx_status(ctx);
    }
    *plan = p;
    return st;
}

gf_status gf_tl_plan_load(gf_ctx *ctx, gf_module *m, const char *path,
                          const gf_weights_options *opt, gf_tl_plan **plan) {
    gf_weights_options o = opt ? *opt : gf_weights_default_options();
    o.dry_run = true;
    return gf_tl_load(ctx, m, path, &o, plan);
}

/* ---- output ------------------------------------------------------------------------------ */

static const char *plan_state(const gf_tl_plan *p) {
    if (p->applied) return "loaded";
    if (p->strict && (p->report->missing || p->report->unexpected || p->report->mismatched))
        return "refused (strict)";
    return p->dry_run ? "dry run, nothing loaded" : "not loaded";
}

void gf_tl_plan_print(const gf_tl_plan *p, FILE *out, bool all) {
    const gf_load_report *r = p->report;
    fprintf(out, "load plan: %s (%s)\n", p->source, plan_state(p));
    fprintf(out, "  %-14s %-11s %s\n", "status", "role", "name");
    for (int i = 0; i < r->n; i++) {
        const gf_key_report *k = &r->keys[i];
        if (k->status == GF_KEY_LOADED && !all) continue;
        fprintf(out, "  %-14s %-11s %s", gf_key_status_name(k->status), gf_tl_role_name(p->roles[i]),
                k->name);
        if (k->file_name) fprintf(out, "  <- %s", k->file_name);
        if (k->status == GF_KEY_SHAPE || k->status == GF_KEY_KIND)
            fprintf(out, "  (model %s, file %s %s)", k->model_shape, k->file_dtype, k->file_shape);
        else if (k->status == GF_KEY_UNEXPECTED)
            fprintf(out, "  (file %s %s)", k->file_dtype, k->file_shape);
        else
            fprintf(out, "  %s", k->model_shape);
        fputc('\n', out);
    }
    fprintf(out, "  %d loaded, %d missing, %d unexpected, %d mismatched, %d renamed", r->loaded,
            r->missing, r->unexpected, r->mismatched, r->renamed);
    for (int i = 0; i < r->n && !all; i++)
        if (r->keys[i].file_name) { /* the table above may have left the renamed keys out */
            fprintf(out, " (e.g. %s <- %s)", r->keys[i].name, r->keys[i].file_name);
            break;
        }
    fputc('\n', out);
    fprintf(out, "  parameters: %lld of %lld trainable (%d tensors trainable, %d frozen)\n",
            (long long)p->params_trainable, (long long)p->params_total, p->tensors_trainable,
            p->tensors_frozen);
    if (p->bn_layers == 0)
        fprintf(out, "  BatchNorm statistics: none in the model\n");
    else if (!p->bn_stats_move)
        fprintf(out, "  BatchNorm statistics: fixed (all %d layers pinned to eval mode)\n",
                p->bn_layers);
    else
        fprintf(out, "  BatchNorm statistics: WILL MOVE in training mode in %d of %d layers%s\n",
                p->bn_moving, p->bn_layers,
                p->bn_moving_frozen ? " (some of them have frozen affine parameters)" : "");
}

static cJSON *shape_json(int ndim, const int64_t *dims) {
    if (ndim < 0) return cJSON_CreateNull();
    cJSON *a = cJSON_CreateArray();
    for (int d = 0; a && d < ndim; d++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)dims[d]));
    return a;
}

static cJSON *str_or_null(const char *s) {
    return s && s[0] ? cJSON_CreateString(s) : cJSON_CreateNull();
}

char *gf_tl_plan_json(gf_ctx *ctx, const gf_tl_plan *p) {
    if (!p) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "plan json: plan is NULL");
        return NULL;
    }
    const gf_load_report *r = p->report;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "source", p->source);
    cJSON_AddBoolToObject(o, "strict", p->strict);
    cJSON_AddBoolToObject(o, "dry_run", p->dry_run);
    cJSON_AddBoolToObject(o, "applied", p->applied);
    cJSON *keys = cJSON_AddArrayToObject(o, "keys");
    for (int i = 0; keys && i < r->n; i++) {
        const gf_key_report *k = &r->keys[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", k->name);
        cJSON_AddItemToObject(e, "file_name", str_or_null(k->file_name));
        cJSON_AddStringToObject(e, "status", gf_key_status_name(k->status));
        cJSON_AddStringToObject(e, "role", gf_tl_role_name(p->roles[i]));
        cJSON_AddItemToObject(e, "model_shape", shape_json(k->model_ndim, k->model_dims));
        cJSON_AddItemToObject(e, "file_shape", shape_json(k->file_ndim, k->file_dims));
        cJSON_AddItemToObject(e, "file_dtype", str_or_null(k->file_dtype));
        cJSON_AddItemToArray(keys, e);
    }
    cJSON *s = cJSON_AddObjectToObject(o, "summary");
    if (s) {
        cJSON_AddNumberToObject(s, "loaded", r->loaded);
        cJSON_AddNumberToObject(s, "missing", r->missing);
        cJSON_AddNumberToObject(s, "unexpected", r->unexpected);
        cJSON_AddNumberToObject(s, "mismatched", r->mismatched);
        cJSON_AddNumberToObject(s, "renamed", r->renamed);
        cJSON_AddNumberToObject(s, "params_total", (double)p->params_total);
        cJSON_AddNumberToObject(s, "params_trainable", (double)p->params_trainable);
        cJSON_AddNumberToObject(s, "tensors_trainable", p->tensors_trainable);
        cJSON_AddNumberToObject(s, "tensors_frozen", p->tensors_frozen);
        cJSON_AddNumberToObject(s, "bn_layers", p->bn_layers);
        cJSON_AddNumberToObject(s, "bn_moving", p->bn_moving);
        cJSON_AddNumberToObject(s, "bn_moving_frozen", p->bn_moving_frozen);
        cJSON_AddBoolToObject(s, "bn_stats_move", p->bn_stats_move);
    }
    char *text = (keys && s) ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "plan json: out of memory");
        return NULL;
    }
    /* cJSON allocates with malloc unless hooks were installed; hand back a plain malloc copy
     * so callers can always free() it */
    char *copy = strdup(text);
    cJSON_free(text);
    if (!copy) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "plan json: out of memory");
    return copy;
}

gf_status gf_tl_plan_write_json(gf_ctx *ctx, const gf_tl_plan *p, FILE *out) {
    if (!out) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "plan json: output is NULL");
    char *s = gf_tl_plan_json(ctx, p);
    if (!s) return gf_ctx_status(ctx);
    bool ok = fputs(s, out) >= 0 && fputc('\n', out) != EOF;
    free(s);
    return ok ? GF_OK : gf_ctx_set_error(ctx, GF_ERR_IO, "plan json: write failed");
}
