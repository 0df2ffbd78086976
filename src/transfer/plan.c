/* Load plans: a weights load (renaming, strict, dry run, a first convolution adapted to the
 * model's input channels) plus what training will do with each tensor — trainable, frozen,
 * BatchNorm statistics that move or stay — as a table or JSON. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_access.h" /* a Conv2d's groups: only groups 1 reads every input channel */
#include "transfer/transfer_internal.h"

static const char *const role_names[] = {"trainable", "frozen", "stat moving", "stat fixed",
                                         "buffer", "-"};

const char *gf_transfer_role_name(gf_transfer_role r) {
    return (unsigned)r <= GF_TRANSFER_ROLE_NONE ? role_names[r] : "?";
}

void gf_transfer_plan_free(gf_transfer_plan *p) {
    if (!p) return;
    free(p->source);
    gf_weights_report_free(p->report);
    free(p->roles);
    free(p);
}

/* Role of model key `name` (a buffer when is_buffer). */
static gf_transfer_role role_of(const gf_module *m, const char *name, bool is_buffer) {
    const gf_tensor *t = gf_module_tensor(NULL, m, name);
    if (!t) return GF_TRANSFER_ROLE_NONE;
    if (!is_buffer) return t->requires_grad ? GF_TRANSFER_ROLE_TRAINABLE : GF_TRANSFER_ROLE_FROZEN;
    const gf_module *owner = m;
    const char *dot = strrchr(name, '.');
    if (dot) {
        char path[GF_TRANSFER_PATH_MAX];
        size_t len = (size_t)(dot - name);
        if (len >= sizeof path) return GF_TRANSFER_ROLE_BUFFER;
        memcpy(path, name, len);
        path[len] = '\0';
        owner = gf_module_child(m, path);
    }
    if (!owner || !gf_transfer_is_bn(owner)) return GF_TRANSFER_ROLE_BUFFER;
    return gf_module_eval_pinned(owner) ? GF_TRANSFER_ROLE_STAT_FIXED : GF_TRANSFER_ROLE_STAT_MOVING;
}

static bool visit_bn_count(gf_module *m, const char *path, void *user) {
    (void)path;
    gf_transfer_plan *p = user;
    if (!gf_transfer_is_bn(m) || !gf_module_tensor(NULL, m, "running_mean")) return true;
    p->bn_layers++;
    if (gf_module_eval_pinned(m)) return true;
    p->bn_moving++;
    if (gf_module_param_count(m, false) > 0 && gf_module_param_count(m, true) == 0)
        p->bn_moving_frozen++;
    return true;
}

/* Fills roles and the summary from the model as it is now. */
static bool fill_plan(gf_ctx *ctx, gf_transfer_plan *p, gf_module *m) {
    const gf_weights_report *r = p->report;
    p->roles = calloc((size_t)(r->n ? r->n : 1), sizeof *p->roles);
    if (!p->roles) return false;
    for (int i = 0; i < r->n; i++)
        p->roles[i] = r->keys[i].status == GF_WEIGHTS_KEY_UNEXPECTED
                          ? GF_TRANSFER_ROLE_NONE
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
    gf_transfer_walk(m, visit_bn_count, p);
    p->bn_stats_move = p->bn_moving > 0;
    return true;
}

/* ---- input channels ------------------------------------------------------------------------ */

static const char *const in_names[] = {"adapt", "error"};
_Static_assert(sizeof in_names / sizeof in_names[0] == GF_TRANSFER_IN_CHANNELS_COUNT, "in-channels names");

const char *gf_transfer_in_channels_name(gf_transfer_in_channels c) {
    return (unsigned)c < GF_TRANSFER_IN_CHANNELS_COUNT ? in_names[c] : "?";
}

bool gf_transfer_in_channels_parse(const char *name, gf_transfer_in_channels *out) {
    for (int i = 0; name && i < GF_TRANSFER_IN_CHANNELS_COUNT; i++)
        if (strcmp(name, in_names[i]) == 0) {
            *out = (gf_transfer_in_channels)i;
            return true;
        }
    return false;
}

gf_transfer_load_params gf_transfer_load_default_params(void) {
    gf_transfer_load_params p;
    p.weights = gf_weights_default_options();
    p.in_channels = GF_TRANSFER_IN_CHANNELS_ADAPT;
    return p;
}

gf_status gf_transfer_adapt_input_conv(gf_ctx *ctx, const gf_tensor *src, gf_tensor *dst) {
    char a[64] = "NULL", b[64] = "NULL";
    if (src) gf_shape_str(src, a, sizeof a);
    if (dst) gf_shape_str(dst, b, sizeof b);
    if (!src || !dst || src->dtype != GF_F32 || dst->dtype != GF_F32 || src->ndim != 4 ||
        dst->ndim != 4 || src->shape[0] != dst->shape[0] || src->shape[2] != dst->shape[2] ||
        src->shape[3] != dst->shape[3] || !gf_tensor_is_contiguous(src) ||
        !gf_tensor_is_contiguous(dst))
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                                "adapt input conv: weights %s -> %s: both must be contiguous "
                                "float32 [O, C, kh, kw] with the same O, kh, kw", a, b);
    const int64_t O = src->shape[0], cf = src->shape[1], c = dst->shape[1];
    const int64_t k = src->shape[2] * src->shape[3];
    const float *s = gf_f32((gf_tensor *)src);
    float *d = gf_f32(dst);
    if (c == 1) { /* timm: conv_weight.sum(dim=1, keepdim=True) */
        for (int64_t o = 0; o < O; o++)
            for (int64_t j = 0; j < k; j++) {
                double sum = 0;
                for (int64_t i = 0; i < cf; i++) sum += s[(o * cf + i) * k + j];
                d[o * k + j] = (float)sum;
            }
        return GF_OK;
    }
    /* timm: repeat(1, ceil(C / C_file), 1, 1)[:, :C] * (C_file / C), the scale a float32 */
    const float scale = (float)((double)cf / (double)c);
    for (int64_t o = 0; o < O; o++)
        for (int64_t i = 0; i < c; i++)
            for (int64_t j = 0; j < k; j++) d[(o * c + i) * k + j] = s[(o * cf + i % cf) * k + j] * scale;
    return GF_OK;
}

/* The first convolution and its file entry when their input channels differ. */
typedef struct in_adapt {
    char key[GF_TRANSFER_PATH_MAX + 8]; /* the model's name of its weight */
    gf_module *conv;
    gf_tensor *weight;            /* the model's */
    const gf_st_info *info;       /* the file's, NULL when the channels agree or it is absent */
    int64_t file_c;               /* its input channels (0: nothing to adapt) */
} in_adapt;

static bool visit_first_conv(gf_module *m, const char *path, void *user) {
    in_adapt *a = user;
    if (strcmp(gf_module_type(m), "Conv2d") != 0 || gf_nn_affine_of(m).conv.groups != 1) return true;
    a->conv = m;
    snprintf(a->key, sizeof a->key, "%s%sweight", path, path[0] ? "." : "");
    return false;
}

/* Finds the model's first convolution and the file entry mapped to its weight; a->info stays
 * NULL unless only the input channels differ. */
static gf_status find_in_adapt(gf_ctx *ctx, gf_module *m, const gf_st_file *f,
                               const gf_weights_options *o, in_adapt *a) {
    memset(a, 0, sizeof *a);
    gf_transfer_walk(m, visit_first_conv, a);
    if (!a->conv || !(a->weight = gf_module_tensor(NULL, m, a->key)) || a->weight->ndim != 4)
        return GF_OK;
    char name[GF_TRANSFER_PATH_MAX + 8];
    for (int i = 0; i < gf_st_count(f); i++) {
        const gf_st_info *t = gf_st_get(f, i);
        if (gf_weights_map_key(ctx, o, t->name, name, sizeof name) != GF_OK) return gf_ctx_status(ctx);
        if (strcmp(name, a->key) != 0) continue;
        const int64_t *w = a->weight->shape;
        bool is_float = t->dtype == GF_ST_F16 || t->dtype == GF_ST_BF16 ||
                        t->dtype == GF_ST_F32 || t->dtype == GF_ST_F64;
        if (is_float && t->ndim == 4 && t->shape[0] == w[0] && t->shape[1] != w[1] &&
            t->shape[1] > 0 && t->shape[2] == w[2] && t->shape[3] == w[3]) {
            a->info = t;
            a->file_c = t->shape[1];
        }
        break;
    }
    return GF_OK;
}

/* The adapted key counts as fitting: loaded, or (dry run) loadable. */
static void mark_adapted(gf_weights_report *r, const in_adapt *a) {
    for (int i = 0; i < r->n; i++)
        if (r->keys[i].status == GF_WEIGHTS_KEY_SHAPE && strcmp(r->keys[i].name, a->key) == 0) {
            r->keys[i].status = GF_WEIGHTS_KEY_LOADED;
            r->mismatched--;
            r->loaded++;
            return;
        }
}

/* Reads the file's weight, adapts it into the model's. */
static gf_status apply_adapted(gf_ctx *ctx, const gf_st_file *f, const in_adapt *a) {
    gf_tensor *src = gf_st_load(ctx, f, a->info);
    if (!src) return gf_ctx_status(ctx);
    gf_status st = gf_transfer_adapt_input_conv(ctx, src, a->weight);
    gf_tensor_free(src);
    return st;
}

static gf_status adapted_refusal(gf_ctx *ctx, const char *path, const gf_weights_report *r) {
    for (int i = 0; i < r->n; i++) {
        const gf_weights_key_report *k = &r->keys[i];
        if (k->status == GF_WEIGHTS_KEY_LOADED) continue;
        return gf_ctx_set_error(ctx, k->status == GF_WEIGHTS_KEY_SHAPE ? GF_ERR_SHAPE : GF_ERR_FORMAT,
                                "%s: strict load refused: '%s' is %s (model %s, file %s; %d "
                                "missing, %d unexpected, %d mismatched in all); nothing was "
                                "loaded", path, k->name, gf_weights_key_status_name(k->status),
                                k->model_shape[0] ? k->model_shape : "-",
                                k->file_shape[0] ? k->file_shape : "-", r->missing,
                                r->unexpected, r->mismatched);
    }
    return GF_OK;
}

/* The load when the first convolution's channels differ and adapting is asked: a non-strict
 * dry run says what fits (the adapted key counting as fitting), then, unless that refuses a
 * strict load or only a plan is asked, the non-strict load and the adapted weights. */
static gf_status load_adapting(gf_ctx *ctx, gf_module *m, const gf_st_file *f, const char *path,
                               const gf_weights_options *o, const in_adapt *a,
                               gf_weights_report **r) {
    gf_weights_options probe = *o;
    probe.strict = false;
    probe.dry_run = true;
    gf_status st = gf_weights_load_file_with(ctx, m, f, &probe, r);
    if (st != GF_OK || !*r) return st;
    mark_adapted(*r, a);
    if (o->strict && ((*r)->missing || (*r)->unexpected || (*r)->mismatched))
        return adapted_refusal(ctx, path, *r);
    if (o->dry_run) return GF_OK;
    gf_weights_report_free(*r);
    *r = NULL;
    probe.dry_run = false;
    st = gf_weights_load_file_with(ctx, m, f, &probe, r);
    if (st == GF_OK) st = apply_adapted(ctx, f, a);
    if (*r) {
        mark_adapted(*r, a);
        (*r)->applied = st == GF_OK;
    }
    return st;
}

static void note_in_channels(gf_transfer_plan *p, const in_adapt *a, gf_transfer_in_channels mode) {
    p->in_channels = mode;
    if (!a->file_c) return;
    p->in_from = a->file_c;
    p->in_to = a->weight->shape[1];
    p->in_adapted = mode == GF_TRANSFER_IN_CHANNELS_ADAPT;
    const char *how = !p->in_adapted ? "not adapted (in-channels error)"
                      : p->in_to == 1 ? "summed (timm's rule)"
                                      : "repeated and scaled (timm's rule)";
    snprintf(p->in_note, sizeof p->in_note, "%.180s: %lld -> %lld input channels, %s", a->key,
             (long long)p->in_from, (long long)p->in_to, how);
}

/* ---- loading with a plan ------------------------------------------------------------------ */

gf_status gf_transfer_load_with(gf_ctx *ctx, gf_module *m, const char *path,
                          const gf_transfer_load_params *lp, gf_transfer_plan **plan) {
    if (plan) *plan = NULL;
    gf_transfer_load_params d = gf_transfer_load_default_params();
    if (!lp) lp = &d;
    if (!m || !path) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "load: NULL %s", m ? "path" : "module");
    if ((unsigned)lp->in_channels >= GF_TRANSFER_IN_CHANNELS_COUNT)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "load %s: in_channels %d is not adapt or error",
                                path, (int)lp->in_channels);
    const gf_weights_options o = lp->weights;
    gf_st_file *f = gf_st_open(ctx, path);
    if (!f) return gf_ctx_status(ctx);
    in_adapt a;
    gf_weights_report *r = NULL;
    gf_status st = find_in_adapt(ctx, m, f, &o, &a);
    if (st == GF_OK)
        st = a.info && lp->in_channels == GF_TRANSFER_IN_CHANNELS_ADAPT
                 ? load_adapting(ctx, m, f, path, &o, &a, &r)
                 : gf_weights_load_file_with(ctx, m, f, &o, &r);
    gf_st_close(f);
    a.info = NULL; /* it was the file's */
    if (!r) return st;
    if (!plan) {
        gf_weights_report_free(r);
        return st;
    }
    gf_transfer_plan *p = calloc(1, sizeof *p);
    if (p) {
        p->report = r;
        p->source = strdup(path);
        p->strict = o.strict;
        p->dry_run = o.dry_run;
        p->applied = r->applied;
    }
    if (!p || !p->source || !fill_plan(ctx, p, m)) {
        if (p) gf_transfer_plan_free(p);
        else gf_weights_report_free(r);
        if (st == GF_OK && gf_ctx_status(ctx) == GF_OK)
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "load plan for %s: out of memory", path);
        return st != GF_OK ? st : gf_ctx_status(ctx);
    }
    note_in_channels(p, &a, lp->in_channels);
    *plan = p;
    return st;
}

gf_status gf_transfer_load(gf_ctx *ctx, gf_module *m, const char *path, const gf_weights_options *opt,
                     gf_transfer_plan **plan) {
    gf_transfer_load_params p = gf_transfer_load_default_params();
    if (opt) p.weights = *opt;
    return gf_transfer_load_with(ctx, m, path, &p, plan);
}

gf_status gf_transfer_plan_load_with(gf_ctx *ctx, gf_module *m, const char *path,
                               const gf_transfer_load_params *lp, gf_transfer_plan **plan) {
    gf_transfer_load_params p = lp ? *lp : gf_transfer_load_default_params();
    p.weights.dry_run = true;
    return gf_transfer_load_with(ctx, m, path, &p, plan);
}

gf_status gf_transfer_plan_load(gf_ctx *ctx, gf_module *m, const char *path,
                          const gf_weights_options *opt, gf_transfer_plan **plan) {
    gf_transfer_load_params p = gf_transfer_load_default_params();
    if (opt) p.weights = *opt;
    return gf_transfer_plan_load_with(ctx, m, path, &p, plan);
}

/* ---- output ------------------------------------------------------------------------------ */

static const char *plan_state(const gf_transfer_plan *p) {
    if (p->applied) return "loaded";
    if (p->strict && (p->report->missing || p->report->unexpected || p->report->mismatched))
        return "refused (strict)";
    return p->dry_run ? "dry run, nothing loaded" : "not loaded";
}

void gf_transfer_plan_print(const gf_transfer_plan *p, FILE *out, bool all) {
    const gf_weights_report *r = p->report;
    fprintf(out, "load plan: %s (%s)\n", p->source, plan_state(p));
    fprintf(out, "  %-14s %-11s %s\n", "status", "role", "name");
    for (int i = 0; i < r->n; i++) {
        const gf_weights_key_report *k = &r->keys[i];
        if (k->status == GF_WEIGHTS_KEY_LOADED && !all) continue;
        fprintf(out, "  %-14s %-11s %s", gf_weights_key_status_name(k->status), gf_transfer_role_name(p->roles[i]),
                k->name);
        if (k->file_name) fprintf(out, "  <- %s", k->file_name);
        if (k->status == GF_WEIGHTS_KEY_SHAPE || k->status == GF_WEIGHTS_KEY_KIND)
            fprintf(out, "  (model %s, file %s %s)", k->model_shape, k->file_dtype, k->file_shape);
        else if (k->status == GF_WEIGHTS_KEY_LOADED && k->file_ndim >= 0 &&
                 strcmp(k->model_shape, k->file_shape) != 0) /* the adapted first convolution */
            fprintf(out, "  %s (adapted from file %s)", k->model_shape, k->file_shape);
        else if (k->status == GF_WEIGHTS_KEY_UNEXPECTED)
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
    if (p->in_note[0]) fprintf(out, "  input channels: %s\n", p->in_note);
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

char *gf_transfer_plan_json(gf_ctx *ctx, const gf_transfer_plan *p) {
    if (!p) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "plan json: plan is NULL");
        return NULL;
    }
    const gf_weights_report *r = p->report;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "source", p->source);
    cJSON_AddBoolToObject(o, "strict", p->strict);
    cJSON_AddBoolToObject(o, "dry_run", p->dry_run);
    cJSON_AddBoolToObject(o, "applied", p->applied);
    cJSON *keys = cJSON_AddArrayToObject(o, "keys");
    for (int i = 0; keys && i < r->n; i++) {
        const gf_weights_key_report *k = &r->keys[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", k->name);
        cJSON_AddItemToObject(e, "file_name", str_or_null(k->file_name));
        cJSON_AddStringToObject(e, "status", gf_weights_key_status_name(k->status));
        cJSON_AddStringToObject(e, "role", gf_transfer_role_name(p->roles[i]));
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
    cJSON *ic = cJSON_AddObjectToObject(o, "in_channels");
    if (ic) {
        cJSON_AddStringToObject(ic, "mode", gf_transfer_in_channels_name(p->in_channels));
        cJSON_AddNumberToObject(ic, "from", (double)p->in_from);
        cJSON_AddNumberToObject(ic, "to", (double)p->in_to);
        cJSON_AddBoolToObject(ic, "adapted", p->in_adapted);
        cJSON_AddStringToObject(ic, "note", p->in_note);
    }
    char *text = (keys && s && ic) ? cJSON_Print(o) : NULL;
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

gf_status gf_transfer_plan_write_json(gf_ctx *ctx, const gf_transfer_plan *p, FILE *out) {
    if (!out) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "plan json: output is NULL");
    char *s = gf_transfer_plan_json(ctx, p);
    if (!s) return gf_ctx_status(ctx);
    bool ok = fputs(s, out) >= 0 && fputc('\n', out) != EOF;
    free(s);
    return ok ? GF_OK : gf_ctx_set_error(ctx, GF_ERR_IO, "plan json: write failed");
}
