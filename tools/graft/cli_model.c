/* Models named on the command line (a zoo name or a JSON model spec) and the weight files the
 * tool writes: the state_dict plus "graft.*" metadata (class names, input shape, normalisation,
 * the model's name or spec), so eval / predict / finetune rebuild the model from the file. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "graft/spec.h"

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void free_names(char **names, int n) {
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

void cli_meta_free(cli_meta *m) {
    free(m->model);
    free(m->spec);
    free_names(m->class_names, m->n_classes);
    free(m->norm_mean);
    free(m->norm_std);
    free_names(m->feature_names, m->n_features);
    free(m->lora);
    free(m->base);
    memset(m, 0, sizeof *m);
}

/* A JSON array of strings into a new array; -1 when malformed. */
static int read_names(const char *text, char ***out) {
    cJSON *a = cJSON_Parse(text);
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    if (n < 0) {
        cJSON_Delete(a);
        return -1;
    }
    char **names = calloc((size_t)(n ? n : 1), sizeof *names);
    for (int i = 0; names && i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsString(e) || !(names[i] = dup_str(e->valuestring))) {
            free_names(names, n);
            cJSON_Delete(a);
            return -1;
        }
    }
    cJSON_Delete(a);
    if (!names) return -1;
    *out = names;
    return n;
}

/* A JSON array of up to cap numbers; -1 when malformed. */
static int read_numbers(const cJSON *a, double *out, int cap) {
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    if (n < 0 || n > cap) return -1;
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(e)) return -1;
        out[i] = e->valuedouble;
    }
    return n;
}

bool cli_meta_read(const char *cmd, const gf_st_file *f, cli_meta *m) {
    memset(m, 0, sizeof *m);
    const char *path = gf_st_path(f), *v, *bad = NULL;
    m->model = dup_str(gf_st_metadata_get(f, "graft.model"));
    m->spec = dup_str(gf_st_metadata_get(f, "graft.spec"));
    m->lora = dup_str(gf_st_metadata_get(f, "graft.lora"));
    m->base = dup_str(gf_st_metadata_get(f, "graft.base"));
    m->is_delta = gf_st_metadata_get(f, "graft.base_sha256") != NULL;
    double num[64];
    if ((v = gf_st_metadata_get(f, "graft.hidden"))) {
        cJSON *a = cJSON_Parse(v);
        int n = read_numbers(a, num, 4);
        cJSON_Delete(a);
        if (n < 1) bad = "graft.hidden";
        for (int i = 0; i < n; i++) {
            if (!(num[i] >= 1 && num[i] <= (1 << 30))) bad = "graft.hidden";
            else m->hidden[i] = (int)num[i];
        }
    }
    if ((v = gf_st_metadata_get(f, "graft.input"))) {
        cJSON *a = cJSON_Parse(v);
        int n = read_numbers(a, num, GF_DS_MAX_DIMS);
        cJSON_Delete(a);
        if (n < 1) bad = "graft.input";
        m->in_ndim = n > 0 ? n : 0;
        for (int i = 0; i < m->in_ndim; i++) {
            /* a size from the file: in range before the conversion (out of range is undefined) */
            if (!(num[i] >= 1 && num[i] <= 2147483647.0)) bad = "graft.input";
            else m->in_shape[i] = (int64_t)num[i];
        }
    }
    if ((v = gf_st_metadata_get(f, "graft.classes"))) {
        int n = read_names(v, &m->class_names);
        if (n < 1) bad = "graft.classes";
        else m->n_classes = n;
    }
    if ((v = gf_st_metadata_get(f, "graft.features"))) {
        int n = read_names(v, &m->feature_names);
        if (n < 0) bad = "graft.features";
        else m->n_features = n;
    }
    if ((v = gf_st_metadata_get(f, "graft.normalize"))) {
        cJSON *o = cJSON_Parse(v);
        double sd[64];
        int a = read_numbers(cJSON_GetObjectItemCaseSensitive(o, "mean"), num, 64);
        int b = read_numbers(cJSON_GetObjectItemCaseSensitive(o, "std"), sd, 64);
        if (a < 1 || a != b) {
            bad = "graft.normalize";
        } else {
            m->norm_mean = malloc(sizeof(float) * (size_t)a);
            m->norm_std = malloc(sizeof(float) * (size_t)a);
            if (m->norm_mean && m->norm_std) {
                m->norm_channels = a;
                for (int i = 0; i < a; i++) {
                    m->norm_mean[i] = (float)num[i];
                    m->norm_std[i] = (float)sd[i];
                }
            }
        }
        cJSON_Delete(o);
    }
    if ((v = gf_st_metadata_get(f, "graft.image"))) {
        cJSON *o = cJSON_Parse(v);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "channels"),
                    *h = cJSON_GetObjectItemCaseSensitive(o, "height"),
                    *w = cJSON_GetObjectItemCaseSensitive(o, "width");
        if (!cJSON_IsNumber(c) || !cJSON_IsNumber(h) || !cJSON_IsNumber(w)) bad = "graft.image";
        else {
            m->image_channels = c->valueint;
            m->image_h = h->valueint;
            m->image_w = w->valueint;
        }
        cJSON_Delete(o);
    }
    if (bad) {
        cli_fail(cmd, "%s: metadata \"%s\" is malformed: %s", path, bad, gf_st_metadata_get(f, bad));
        cli_meta_free(m);
        return false;
    }
    return true;
}

int cli_check_model_arg(const char *cmd, const char *option, const char *arg) {
    if (!arg || cli_is_zoo(arg) || cli_is_file(arg)) return CLI_CONTINUE;
    if (strchr(arg, '/') || strstr(arg, ".json"))
        return cli_usage_error(cmd, "%s %s: no such file", option, arg);
    return cli_usage_error(cmd, "unknown model '%s' (zoo: mlp, lenet, cnn-small, resnet-mini; or "
                                "a model spec file .json)", arg);
}

/* ---- building ------------------------------------------------------------------------------- */

bool cli_is_zoo(const char *arg) {
    for (const char *const *n = gf_zoo_names(); arg && *n; n++)
        if (strcmp(*n, arg) == 0) return true;
    return false;
}

void cli_model_free(cli_model *m) {
    gf_module_free(m->m);
    free(m->spec_text);
    free(m->spec_path);
    memset(m, 0, sizeof *m);
}

int cli_model_outputs(gf_ctx *ctx, const char *cmd, gf_module *m, int ndim, const int64_t *shape) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = gf_ctx_threads(ctx);
    gf_ctx *s = gf_ctx_new(&cp);
    if (!s) return cli_fail(cmd, "out of memory"), -1;
    gf_ctx_set_grad_enabled(s, false);
    int64_t full[GF_MAX_DIMS];
    full[0] = 1;
    for (int i = 0; i < ndim; i++) full[i + 1] = shape[i];
    bool was = gf_module_is_training(m);
    gf_module_train(m, false);
    gf_tensor *y = gf_module_forward(s, m, gf_zeros(s, GF_F32, ndim + 1, full));
    gf_module_train(m, was);
    int k = -1;
    char sh[64];
    gf_dims_str(ndim + 1, full, sh, sizeof sh);
    if (!y) cli_fail(cmd, "the model does not run on input %s: %s", sh, gf_ctx_error(s));
    else if (y->ndim != 2) {
        char ys[64];
        cli_fail(cmd, "the model maps %s to %s; a classifier must give [N, classes]", sh,
                 gf_shape_str(y, ys, sizeof ys));
    } else {
        k = (int)y->shape[1];
    }
    gf_ctx_free(s);
    return k;
}

/* A spec text minified through cJSON (so metadata holds one line). */
static char *minify(const char *text) {
    cJSON *j = cJSON_Parse(text);
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    char *r = dup_str(s);
    cJSON_free(s);
    return r;
}

int cli_model_build(gf_ctx *ctx, const cli_opts *o, const char *arg, const cli_meta *meta,
                    int ndim, const int64_t *shape, int n_classes, gf_rng *rng, cli_model *out) {
    const char *cmd = o->cmd;
    memset(out, 0, sizeof *out);
    const char *zoo = NULL, *spec_text = NULL;
    char *owned = NULL;
    int hidden[4] = {0};
    memcpy(hidden, o->hidden, sizeof hidden);
    if (arg) {
        if (cli_is_zoo(arg)) {
            zoo = arg;
        } else if (cli_is_file(arg)) {
            size_t len;
            owned = cli_read_file(arg, CLI_SPEC_MAX_BYTES, &len);
            if (!owned && errno == EFBIG)
                return cli_fail(cmd, "--model %s: a model spec may be at most 16 MiB", arg);
            if (!owned) return cli_fail(cmd, "--model %s: cannot read it", arg);
            spec_text = owned;
            out->spec_path = dup_str(arg);
        } else if (strchr(arg, '/') || strstr(arg, ".json")) {
            return cli_usage_error(cmd, "--model %s: no such file", arg);
        } else {
            return cli_usage_error(cmd, "unknown model '%s' (zoo: mlp, lenet, cnn-small, "
                                        "resnet-mini; or a model spec file .json)", arg);
        }
    } else if (meta && meta->model && strcmp(meta->model, "spec") == 0 && meta->spec) {
        spec_text = meta->spec;
    } else if (meta && meta->model && cli_is_zoo(meta->model)) {
        zoo = meta->model;
        if (meta->hidden[0] && !o->hidden_given) memcpy(hidden, meta->hidden, sizeof hidden);
    } else {
        return cli_usage_error(cmd, "--model is required (the weights file does not name its "
                                    "model)");
    }
    if (zoo) {
        gf_zoo_params zp = gf_zoo_default_params();
        if (ndim == 3) {
            zp.in_channels = (int)shape[0];
            zp.height = (int)shape[1];
            zp.width = (int)shape[2];
        } else if (ndim == 1 && strcmp(zoo, "mlp") == 0) {
            zp.in_channels = (int)shape[0];
            zp.height = zp.width = 1;
        } else {
            char sh[64];
            gf_dims_str(ndim, shape, sh, sizeof sh);
            return cli_usage_error(cmd, "model %s needs images [C, H, W]; the data's samples are "
                                        "%s (use mlp or a model spec)", zoo, sh);
        }
        zp.num_classes = n_classes > 0 ? n_classes : 10;
        if (strcmp(zoo, "mlp") == 0)
            for (int i = 0; i < 4; i++) zp.hidden[i] = hidden[i];
        out->m = gf_zoo_build(ctx, zoo, &zp, rng);
        if (!out->m) return cli_fail(cmd, "%s", gf_ctx_error(ctx));
        snprintf(out->name, sizeof out->name, "%s", zoo);
        snprintf(out->head, sizeof out->head, "%s", gf_zoo_head(zoo));
        memcpy(out->hidden, hidden, sizeof hidden);
        return CLI_CONTINUE;
    }
    gf_spec_params sp = gf_spec_default_params();
    char label[4200];
    snprintf(label, sizeof label, "model spec %s", out->spec_path ? out->spec_path : "(from the weights file)");
    sp.label = label;
    sp.in_ndim = ndim;
    for (int i = 0; i < ndim; i++) sp.in_shape[i] = shape[i];
    sp.rng = rng;
    gf_spec_summary *sum = NULL;
    out->m = gf_spec_parse(ctx, spec_text, strlen(spec_text), &sp, &sum);
    out->spec_text = out->m ? minify(spec_text) : NULL;
    free(owned);
    if (!out->m) {
        cli_model_free(out);
        return cli_fail(cmd, "%s", gf_ctx_error(ctx));
    }
    snprintf(out->name, sizeof out->name, "spec");
    int rc = CLI_CONTINUE;
    if (sum->out_ndim != 1) {
        char sh[64];
        gf_dims_str(sum->out_ndim, sum->out_shape, sh, sizeof sh);
        rc = cli_fail(cmd, "%s: the model's output samples are %s; a classifier must end in "
                           "[classes] (a Linear)", label, sh);
    } else if (n_classes > 0 && sum->out_shape[0] != n_classes) {
        rc = cli_fail(cmd, "%s: the model gives %lld outputs but the data has %d classes", label,
                      (long long)sum->out_shape[0], n_classes);
    } else if (!gf_tl_default_head(ctx, out->m, out->head, sizeof out->head)) {
        rc = cli_fail(cmd, "%s: %s", label, gf_ctx_error(ctx));
    }
    gf_spec_summary_free(sum);
    if (rc != CLI_CONTINUE) cli_model_free(out);
    return rc;
}

/* ---- saving ----------------------------------------------------------------------------------- */

typedef struct kv_list {
    int n;
    char *kv[64];
} kv_list;

static void kv_add(kv_list *l, const char *k, char *v_owned) {
    if (!v_owned || l->n + 2 > 64) {
        free(v_owned);
        return;
    }
    l->kv[l->n++] = dup_str(k);
    l->kv[l->n++] = v_owned;
}

static char *json_text(cJSON *j) {
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    char *r = dup_str(s);
    cJSON_free(s);
    return r;
}

static char *floats_json(const float *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return json_text(a);
}

static void build_meta(const cli_opts *o, const cli_model *cm, const cli_data *d,
                       const char *const *extra, int n_extra, kv_list *l) {
    memset(l, 0, sizeof *l);
    kv_add(l, "graft.version", dup_str(GF_VERSION_STRING));
    kv_add(l, "graft.command", dup_str(o->cmd));
    kv_add(l, "graft.model", dup_str(cm->name));
    if (cm->spec_text) kv_add(l, "graft.spec", dup_str(cm->spec_text));
    if (strcmp(cm->name, "mlp") == 0) {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < 4 && cm->hidden[i] > 0; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(cm->hidden[i]));
        kv_add(l, "graft.hidden", json_text(a));
    }
    if (d) {
        kv_add(l, "graft.data", dup_str(d->spec));
        kv_add(l, "graft.input", json_text(cli_json_shape(d->ndim, d->shape)));
        kv_add(l, "graft.classes",
               json_text(cli_json_names(d->n_classes, (const char *const *)d->class_names)));
        if (d->feature_names)
            kv_add(l, "graft.features",
                   json_text(cli_json_names((int)d->shape[0], (const char *const *)d->feature_names)));
        if (d->norm_mean) {
            cJSON *n = cJSON_CreateObject();
            char *mean = floats_json(d->norm_mean, d->norm_channels);
            char *std = floats_json(d->norm_std, d->norm_channels);
            cJSON_AddRawToObject(n, "mean", mean ? mean : "[]"); /* copies */
            cJSON_AddRawToObject(n, "std", std ? std : "[]");
            free(mean);
            free(std);
            kv_add(l, "graft.normalize", json_text(n));
        }
        if (d->image_channels) {
            cJSON *im = cJSON_CreateObject();
            cJSON_AddNumberToObject(im, "channels", d->image_channels);
            cJSON_AddNumberToObject(im, "height", d->image_h);
            cJSON_AddNumberToObject(im, "width", d->image_w);
            kv_add(l, "graft.image", json_text(im));
        }
    }
    for (int i = 0; i + 1 < 2 * n_extra; i += 2) kv_add(l, extra[i], dup_str(extra[i + 1]));
}

static void kv_free(kv_list *l) {
    for (int i = 0; i < l->n; i++) free(l->kv[i]);
    l->n = 0;
}

int cli_save_weights(gf_ctx *ctx, const cli_opts *o, const cli_model *cm, const cli_data *d,
                     const char *path, const char *const *extra, int n_extra) {
    kv_list l;
    build_meta(o, cm, d, extra, n_extra, &l);
    gf_status st = gf_weights_save(ctx, cm->m, path, (const char *const *)l.kv, l.n / 2);
    kv_free(&l);
    return st == GF_OK ? CLI_CONTINUE : cli_fail(o->cmd, "writing %s: %s", path, gf_ctx_error(ctx));
}

int cli_add_metadata(gf_ctx *ctx, const cli_opts *o, const cli_model *cm, const cli_data *d,
                     const char *path, const char *const *extra, int n_extra) {
    gf_st_file *f = gf_st_open(ctx, path);
    gf_state_list *sl = f ? gf_state_list_from_file(ctx, f, NULL) : NULL;
    gf_st_close(f);
    if (!sl) return cli_fail(o->cmd, "%s: %s", path, gf_ctx_error(ctx));
    kv_list l;
    build_meta(o, cm, d, extra, n_extra, &l);
    gf_status st = GF_OK;
    for (int i = 0; st == GF_OK && i < l.n; i += 2)
        st = gf_state_list_set_meta(ctx, sl, l.kv[i], l.kv[i + 1]);
    kv_free(&l);
    gf_st_writer *w = st == GF_OK ? gf_st_writer_new(ctx) : NULL;
    if (w && gf_state_list_to_writer(ctx, sl, w) == GF_OK) st = gf_st_writer_save(w, path);
    else st = GF_ERR_NOMEM;
    gf_st_writer_free(w);
    gf_state_list_free(sl);
    return st == GF_OK ? CLI_CONTINUE : cli_fail(o->cmd, "writing %s: %s", path, gf_ctx_error(ctx));
}

/* ---- reading trained weights ------------------------------------------------------------------ */

bool cli_meta_fits_samples(const char *cmd, const char *path, const cli_meta *meta,
                           const cli_data *d) {
    if (!meta->in_ndim) return true;
    bool same = meta->in_ndim == d->ndim;
    for (int i = 0; same && i < d->ndim; i++) same = meta->in_shape[i] == d->shape[i];
    if (same) return true;
    char a[64], b[64];
    gf_dims_str(meta->in_ndim, meta->in_shape, a, sizeof a);
    gf_dims_str(d->ndim, d->shape, b, sizeof b);
    cli_fail(cmd, "%s was trained on samples %s but %s has samples %s%s", path, a, d->spec, b,
             d->ndim == 3 ? " (see --grayscale and --image-size)" : "");
    return false;
}

int cli_meta_open(gf_ctx *ctx, const cli_opts *o, const char *path, cli_meta *meta) {
    memset(meta, 0, sizeof *meta);
    gf_st_file *f = gf_st_open(ctx, path);
    if (!f) return cli_fail(o->cmd, "%s", gf_ctx_error(ctx));
    bool ok = cli_meta_read(o->cmd, f, meta);
    gf_st_close(f);
    return ok ? CLI_CONTINUE : CLI_FAILED;
}

/* The key renaming a delta's base was loaded with ("graft.base_map" metadata). */
typedef struct base_map {
    gf_weights_options wo;
    gf_key_rule rules[CLI_MAX_LIST];
    char *strings[CLI_MAX_LIST + 1];
    int n_strings;
} base_map;

static void base_map_read(const char *text, base_map *bm) {
    memset(bm, 0, sizeof *bm);
    bm->wo = gf_weights_default_options();
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(j, "strip_prefix");
    const cJSON *rn = cJSON_GetObjectItemCaseSensitive(j, "rename");
    if (cJSON_IsString(sp)) bm->wo.strip_prefix = bm->strings[bm->n_strings++] = dup_str(sp->valuestring);
    for (const cJSON *e = cJSON_IsArray(rn) ? rn->child : NULL; e && bm->wo.n_rules < CLI_MAX_LIST;
         e = e->next)
        if (cJSON_IsString(e)) {
            char *s = bm->strings[bm->n_strings++] = dup_str(e->valuestring);
            bm->rules[bm->wo.n_rules++] = (gf_key_rule){s, NULL};
        }
    bm->wo.rules = bm->rules;
    cJSON_Delete(j);
}

static void base_map_free(base_map *bm) {
    for (int i = 0; i < bm->n_strings; i++) free(bm->strings[i]);
}

int cli_load_weights(gf_ctx *ctx, const cli_opts *o, const char *path, const char *base,
                     const cli_meta *meta, gf_module *m) {
    if (meta->is_delta) {
        const char *b = base ? base : meta->base;
        if (!b)
            return cli_usage_error(o->cmd, "%s is a delta checkpoint; give the file it was "
                                           "written against with --base", path);
        if (!cli_is_file(b))
            return cli_usage_error(o->cmd, "%s is a delta against %s, which does not exist (give "
                                           "it with --base)", path, b);
        gf_st_file *f = gf_st_open(ctx, path);
        base_map bm;
        base_map_read(f ? gf_st_metadata_get(f, "graft.base_map") : NULL, &bm);
        gf_st_close(f);
        gf_status st = gf_tl_delta_load(ctx, m, b, &bm.wo, path);
        base_map_free(&bm);
        return st == GF_OK ? CLI_CONTINUE : cli_fail(o->cmd, "%s", gf_ctx_error(ctx));
    }
    gf_weights_options wo = gf_weights_default_options();
    wo.strict = true;
    gf_load_report *rep = NULL;
    gf_status st = gf_weights_load_with(ctx, m, path, &wo, &rep);
    if (st != GF_OK) {
        cli_fail(o->cmd, "%s does not fit the model: %s", path, gf_ctx_error(ctx));
        if (rep) gf_load_report_print(rep, stderr, false);
        gf_load_report_free(rep);
        return CLI_FAILED;
    }
    gf_load_report_free(rep);
    return CLI_CONTINUE;
}

gf_tf *cli_meta_tf(gf_ctx *ctx, const cli_meta *meta) {
    if (!meta->norm_mean) return NULL;
    gf_tf *tf = gf_tf_new(ctx);
    if (tf && gf_tf_normalize(ctx, tf, meta->norm_channels, meta->norm_mean, meta->norm_std) != GF_OK) {
        gf_tf_free(tf);
        return NULL;
    }
    return tf;
}
