/* A bundle's description as safetensors metadata: reading the graft.* keys of a file that may
 * be hostile (each value's JSON checked against the limits before cJSON builds it, every size
 * in range before use), and writing them in the order the graft tool always has, so files keep
 * their layout and older files still load. */
#define _POSIX_C_SOURCE 200809L
#include "bundle/bundle_internal.h"
#include "io/io_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *gf_bundle_strdup(const char *s) {
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

void gf_bundle_info_free(gf_bundle_info *info) {
    if (!info) return;
    free(info->model);
    free(info->spec);
    free(info->tfjs);
    free(info->speech);
    free(info->target_name);
    free(info->missing);
    free(info->impute);
    gf_csv_categories_free(info->categorical, info->n_categorical);
    free_names(info->class_names, info->n_classes);
    free_names(info->feature_names, info->n_features);
    free_names(info->column_names, info->n_columns);
    free(info->norm_mean);
    free(info->norm_std);
    free(info->data);
    free(info->command);
    free(info->base);
    gf_text_vocab_free(info->vocab);
    memset(info, 0, sizeof *info);
}

void gf_bundle_info_set_text(gf_bundle_info *info, gf_text_vocab *vocab) {
    if (!info) return;
    gf_text_vocab_retain(vocab);
    gf_text_vocab_free(info->vocab);
    info->vocab = vocab;
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct meta_reader {
    gf_ctx *ctx;
    const gf_st_file *f;
    const char *bad; /* the first malformed key */
} meta_reader;

/* The key's value parsed as JSON, or NULL (absent, or malformed: r->bad set). A value over the
 * json limits is an error of its own, with the limit's name. */
static cJSON *parse_key(meta_reader *r, const char *key, bool *limit_hit) {
    const char *v = gf_st_metadata_get(r->f, key);
    if (!v || r->bad || *limit_hit) return NULL;
    char what[64];
    snprintf(what, sizeof what, "metadata \"%s\"", key);
    if (gf_json_check(r->ctx, v, strlen(v), gf_st_path(r->f), what) != GF_OK) {
        *limit_hit = true;
        return NULL;
    }
    cJSON *j = cJSON_Parse(v);
    if (!j) r->bad = key;
    return j;
}

/* A JSON array of strings into a new array of at most max; -1 when malformed or longer. */
static int read_names(const cJSON *a, int max, char ***out) {
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    if (n < 0 || n > max) return -1;
    char **names = calloc((size_t)(n ? n : 1), sizeof *names);
    if (!names) return -1;
    int i = 0;
    for (const cJSON *e = a->child; e && i < n; e = e->next, i++)
        if (!cJSON_IsString(e) || !(names[i] = gf_bundle_strdup(e->valuestring))) {
            free_names(names, n);
            return -1;
        }
    *out = names;
    return n;
}

/* A JSON array of at most cap numbers; -1 when malformed. */
static int read_numbers(const cJSON *a, double *out, int cap) {
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    if (n < 0 || n > cap) return -1;
    int i = 0;
    for (const cJSON *e = a->child; e && i < n; e = e->next, i++) {
        if (!cJSON_IsNumber(e)) return -1;
        out[i] = e->valuedouble;
    }
    return n;
}

static void read_sizes(meta_reader *r, gf_bundle_info *m, bool *lim) {
    double num[GF_DS_MAX_DIMS > 4 ? GF_DS_MAX_DIMS : 4];
    cJSON *j = parse_key(r, "graft.hidden", lim);
    if (j) {
        int n = read_numbers(j, num, 4);
        if (n < 1) r->bad = "graft.hidden";
        for (int i = 0; i < n; i++) {
            if (!(num[i] >= 1 && num[i] <= (1 << 30))) r->bad = "graft.hidden";
            else m->hidden[i] = (int)num[i];
        }
        cJSON_Delete(j);
    }
    if ((j = parse_key(r, "graft.input", lim))) {
        int n = read_numbers(j, num, GF_DS_MAX_DIMS);
        if (n < 1) r->bad = "graft.input";
        m->in_ndim = n > 0 ? n : 0;
        for (int i = 0; i < m->in_ndim; i++) {
            /* a size from the file: in range before the conversion (out of range is undefined) */
            if (!(num[i] >= 1 && num[i] <= 2147483647.0)) r->bad = "graft.input";
            else m->in_shape[i] = (int64_t)num[i];
        }
        cJSON_Delete(j);
    }
    if ((j = parse_key(r, "graft.image", lim))) {
        const char *k[3] = {"channels", "height", "width"};
        int v[3] = {0, 0, 0};
        for (int i = 0; i < 3; i++) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, k[i]);
            if (!cJSON_IsNumber(e) || !(e->valuedouble >= 1 && e->valuedouble <= 65536))
                r->bad = "graft.image";
            else v[i] = (int)e->valuedouble;
        }
        if (!r->bad) {
            m->image_channels = v[0];
            m->image_h = v[1];
            m->image_w = v[2];
        }
        cJSON_Delete(j);
    }
}

static void read_normalize(meta_reader *r, gf_bundle_info *m, bool *lim) {
    cJSON *o = parse_key(r, "graft.normalize", lim);
    if (!o) return;
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(o, "mean"),
                *sd = cJSON_GetObjectItemCaseSensitive(o, "std");
    const int cap = 1 << 20; /* a table's feature count at most */
    int a = cJSON_IsArray(mean) ? cJSON_GetArraySize(mean) : -1;
    double *num = a >= 1 && a <= cap ? malloc(2 * sizeof(double) * (size_t)a) : NULL;
    if (!num || read_numbers(mean, num, a) != a || read_numbers(sd, num + a, a) != a ||
        cJSON_GetArraySize(sd) != a) {
        r->bad = "graft.normalize";
    } else {
        m->norm_mean = malloc(sizeof(float) * (size_t)a);
        m->norm_std = malloc(sizeof(float) * (size_t)a);
        if (m->norm_mean && m->norm_std) m->norm_channels = a;
        for (int i = 0; m->norm_channels && i < a; i++) {
            m->norm_mean[i] = (float)num[i];
            m->norm_std[i] = (float)num[a + i];
            if (!isfinite(m->norm_mean[i]) || !(m->norm_std[i] > 0) || !isfinite(m->norm_std[i]))
                r->bad = "graft.normalize";
        }
    }
    free(num);
    cJSON_Delete(o);
}

static void read_target(meta_reader *r, gf_bundle_info *m, bool *lim) {
    const char *task = gf_st_metadata_get(r->f, "graft.task");
    if (task && strcmp(task, "regression") != 0 && strcmp(task, "classification") != 0)
        r->bad = "graft.task";
    m->regression = task && strcmp(task, "regression") == 0;
    m->target_std = 1.0f;
    cJSON *o = parse_key(r, "graft.target", lim);
    if (!o) return;
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name"),
                *mean = cJSON_GetObjectItemCaseSensitive(o, "mean"),
                *sd = cJSON_GetObjectItemCaseSensitive(o, "std");
    if (!cJSON_IsNumber(mean) || !cJSON_IsNumber(sd) || !isfinite(mean->valuedouble) ||
        !(sd->valuedouble > 0) || !isfinite((float)sd->valuedouble) ||
        !isfinite((float)mean->valuedouble) || (nm && !cJSON_IsString(nm))) {
        r->bad = "graft.target";
    } else {
        m->target_mean = (float)mean->valuedouble;
        m->target_std = (float)sd->valuedouble;
        if (nm) m->target_name = gf_bundle_strdup(nm->valuestring);
    }
    cJSON_Delete(o);
}

static void read_missing(meta_reader *r, gf_bundle_info *m, bool *lim) {
    cJSON *o = parse_key(r, "graft.missing", lim);
    if (!o) return;
    const cJSON *how = cJSON_GetObjectItemCaseSensitive(o, "strategy"),
                *v = cJSON_GetObjectItemCaseSensitive(o, "values");
    const char *const ok[] = {"drop", "mean", "median", "zero"};
    bool known = false;
    for (int i = 0; i < 4 && cJSON_IsString(how); i++) known |= strcmp(how->valuestring, ok[i]) == 0;
    const int a = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    double *num = a > 0 && a <= (1 << 20) ? malloc(sizeof(double) * (size_t)a) : NULL;
    if (!known || (v && (!num || read_numbers(v, num, a) != a))) {
        r->bad = "graft.missing";
    } else {
        m->missing = gf_bundle_strdup(how->valuestring);
        if (num && (m->impute = malloc(sizeof(float) * (size_t)a))) {
            m->n_impute = a;
            for (int i = 0; i < a; i++) m->impute[i] = (float)num[i];
        }
    }
    free(num);
    cJSON_Delete(o);
}

/* One {"column", "at", "values"} entry; false when malformed. at must follow prev_end. */
static bool read_category(const cJSON *e, gf_csv_category *c, int64_t prev_end) {
    const cJSON *col = cJSON_GetObjectItemCaseSensitive(e, "column"),
                *at = cJSON_GetObjectItemCaseSensitive(e, "at"),
                *v = cJSON_GetObjectItemCaseSensitive(e, "values");
    if (!cJSON_IsString(col) || !cJSON_IsNumber(at) || at->valuedouble != floor(at->valuedouble) ||
        at->valuedouble < (double)prev_end || at->valuedouble >= (double)(1 << 20))
        return false;
    char **values = NULL;
    int n = read_names(v, 1 << 16, &values);
    if (n < 0) return false;
    c->values = values;
    c->n = n;
    c->at = (int64_t)at->valuedouble;
    return (c->column = gf_bundle_strdup(col->valuestring)) != NULL;
}

static void read_categorical(meta_reader *r, gf_bundle_info *m, bool *lim) {
    cJSON *o = parse_key(r, "graft.categorical", lim);
    if (!o) return;
    const int n = cJSON_IsArray(o) ? cJSON_GetArraySize(o) : -1;
    gf_csv_category *c = n > 0 && n <= (1 << 20) ? calloc((size_t)n, sizeof *c) : NULL;
    bool ok = c != NULL;
    int i = 0;
    for (const cJSON *e = o->child; ok && e && i < n; e = e->next, i++)
        ok = read_category(e, &c[i], i ? c[i - 1].at + c[i - 1].n : 0);
    if (!ok) {
        gf_csv_categories_free(c, n > 0 ? n : 0);
        r->bad = "graft.categorical";
    } else {
        m->categorical = c;
        m->n_categorical = n;
    }
    cJSON_Delete(o);
}

gf_status gf_bundle_info_read(gf_ctx *ctx, const gf_st_file *f, gf_bundle_info *m) {
    if (!m) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_bundle_info_read: NULL info");
    memset(m, 0, sizeof *m);
    if (!f) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_bundle_info_read: NULL file");
    meta_reader r = {ctx, f, NULL};
    bool lim = false;
    m->model = gf_bundle_strdup(gf_st_metadata_get(f, "graft.model"));
    m->spec = gf_bundle_strdup(gf_st_metadata_get(f, "graft.spec"));
    m->tfjs = gf_bundle_strdup(gf_st_metadata_get(f, "graft.tfjs"));
    m->speech = gf_bundle_strdup(gf_st_metadata_get(f, "graft.speech"));
    m->data = gf_bundle_strdup(gf_st_metadata_get(f, "graft.data"));
    m->command = gf_bundle_strdup(gf_st_metadata_get(f, "graft.command"));
    m->base = gf_bundle_strdup(gf_st_metadata_get(f, "graft.base"));
    m->is_delta = gf_st_metadata_get(f, "graft.base_sha256") != NULL;
    read_sizes(&r, m, &lim);
    cJSON *j = parse_key(&r, "graft.classes", &lim);
    if (j) {
        const int64_t max = gf_ctx_limits(ctx)->classes;
        const int count = cJSON_GetArraySize(j);
        if (count > max && !r.bad) {
            cJSON_Delete(j);
            gf_bundle_info_free(m);
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                    "%s: metadata \"graft.classes\" names %d classes, more than "
                                    "the limit of %lld " GF_LIMIT_HINT("classes"),
                                    gf_st_path(f), count, (long long)max);
        }
        int n = read_names(j, (int)max, &m->class_names);
        if (n < 1) r.bad = "graft.classes";
        else m->n_classes = n;
        cJSON_Delete(j);
    }
    if ((j = parse_key(&r, "graft.features", &lim))) {
        int n = read_names(j, 1 << 20, &m->feature_names);
        if (n < 0) r.bad = "graft.features";
        else m->n_features = n;
        cJSON_Delete(j);
    }
    if ((j = parse_key(&r, "graft.columns", &lim))) {
        int n = read_names(j, 1 << 20, &m->column_names);
        if (n < 0) r.bad = "graft.columns";
        else m->n_columns = n;
        cJSON_Delete(j);
    }
    read_normalize(&r, m, &lim);
    read_target(&r, m, &lim);
    read_missing(&r, m, &lim);
    read_categorical(&r, m, &lim);
    if ((j = parse_key(&r, "graft.audio", &lim))) {
        if (!(m->has_audio = gf_bundle_audio_from_json(j, &m->audio))) r.bad = "graft.audio";
        cJSON_Delete(j);
    }
    if (!r.bad && m->n_categorical && m->categorical[m->n_categorical - 1].at +
                                          m->categorical[m->n_categorical - 1].n > m->n_features)
        r.bad = "graft.categorical"; /* its features must be among graft.features */
    const char *text = gf_st_metadata_get(f, "graft.text");
    if (text && !lim && !r.bad) {
        char what[300];
        snprintf(what, sizeof what, "%s: metadata \"graft.text\"", gf_st_path(f));
        if (!(m->vocab = gf_text_vocab_from_json(ctx, text, strlen(text), what))) lim = true;
    }
    if (lim) {
        gf_bundle_info_free(m);
        return gf_ctx_status(ctx);
    }
    if (r.bad) {
        const char *bad = r.bad;
        gf_bundle_info_free(m);
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: metadata \"%s\" is malformed: %s",
                                gf_st_path(f), bad, gf_st_metadata_get(f, bad));
    }
    return GF_OK;
}

gf_status gf_bundle_info_load(gf_ctx *ctx, const char *path, gf_bundle_info *info) {
    if (info) memset(info, 0, sizeof *info);
    gf_st_file *f = gf_st_open(ctx, path);
    if (!f) return gf_ctx_status(ctx);
    gf_status st = gf_bundle_info_read(ctx, f, info);
    gf_st_close(f);
    return st;
}

/* ---- copying ------------------------------------------------------------------------------- */

static bool copy_names(char ***dst, char *const *src, int n) {
    if (!src) return true;
    *dst = calloc((size_t)(n ? n : 1), sizeof **dst);
    for (int i = 0; *dst && i < n; i++)
        if (!((*dst)[i] = gf_bundle_strdup(src[i] ? src[i] : ""))) return false;
    return *dst != NULL;
}

static bool copy_floats(float **dst, const float *src, int n) {
    if (!src || n < 1) return true;
    if (!(*dst = malloc(sizeof(float) * (size_t)n))) return false;
    memcpy(*dst, src, sizeof(float) * (size_t)n);
    return true;
}

static bool copy_str(char **dst, const char *src) {
    return !src || (*dst = gf_bundle_strdup(src)) != NULL;
}

static bool copy_categories(gf_ctx *ctx, gf_bundle_info *dst, const gf_bundle_info *src) {
    if (gf_csv_categories_copy(ctx, src->categorical, src->n_categorical, &dst->categorical))
        return false;
    dst->n_categorical = dst->categorical ? src->n_categorical : 0;
    return true;
}

gf_status gf_bundle_info_copy(gf_ctx *ctx, gf_bundle_info *dst, const gf_bundle_info *src) {
    memset(dst, 0, sizeof *dst);
    if (!src) return GF_OK;
    *dst = *src; /* the scalars; every pointer is copied below */
    dst->model = dst->spec = dst->tfjs = dst->data = dst->command = dst->base = NULL;
    dst->speech = NULL;
    dst->target_name = NULL;
    dst->missing = NULL;
    dst->impute = NULL;
    dst->categorical = NULL;
    dst->n_categorical = 0;
    dst->class_names = dst->feature_names = dst->column_names = NULL;
    dst->norm_mean = dst->norm_std = NULL;
    dst->vocab = gf_text_vocab_retain(src->vocab);
    bool ok = copy_categories(ctx, dst, src) && copy_str(&dst->model, src->model) &&
              copy_str(&dst->spec, src->spec) &&
              copy_str(&dst->tfjs, src->tfjs) && copy_str(&dst->speech, src->speech) &&
              copy_str(&dst->data, src->data) && copy_str(&dst->command, src->command) &&
              copy_str(&dst->base, src->base) && copy_str(&dst->target_name, src->target_name) &&
              copy_str(&dst->missing, src->missing) &&
              copy_floats(&dst->impute, src->impute, src->n_impute) &&
              copy_names(&dst->class_names, src->class_names, src->n_classes) &&
              copy_names(&dst->feature_names, src->feature_names, src->n_features) &&
              copy_names(&dst->column_names, src->column_names, src->n_columns) &&
              copy_floats(&dst->norm_mean, src->norm_mean, src->norm_channels) &&
              copy_floats(&dst->norm_std, src->norm_std, src->norm_channels);
    if (ok) return GF_OK;
    gf_bundle_info_free(dst);
    return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "bundle: out of memory copying its description");
}

gf_status gf_bundle_info_set_data(gf_ctx *ctx, gf_bundle_info *info, const gf_ds_parts *d) {
    if (!info || !d || d->ndim < 1 || d->ndim > GF_DS_MAX_DIMS)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_bundle_info_set_data: no data");
    free(info->data);
    free_names(info->class_names, info->n_classes);
    free_names(info->feature_names, info->n_features);
    free_names(info->column_names, info->n_columns);
    free(info->norm_mean);
    free(info->norm_std);
    info->data = NULL;
    info->class_names = info->feature_names = info->column_names = NULL;
    info->norm_mean = info->norm_std = NULL;
    info->n_classes = d->n_classes;
    info->n_features = d->feature_names ? (int)d->shape[0] : 0;
    info->n_columns = d->feature_names && d->csv.column_names ? (int)d->csv.n_columns : 0;
    info->norm_channels = d->norm_mean ? d->norm_channels : 0;
    info->in_ndim = d->ndim;
    memset(info->in_shape, 0, sizeof info->in_shape);
    memcpy(info->in_shape, d->shape, sizeof(int64_t) * (size_t)d->ndim);
    info->image_channels = d->image_channels;
    info->image_h = d->image_h;
    info->image_w = d->image_w;
    static const char *const how[] = {NULL, "drop", "mean", "median", "zero"};
    free(info->target_name);
    free(info->missing);
    free(info->impute);
    info->target_name = info->missing = NULL;
    info->impute = NULL;
    info->n_impute = d->impute ? (int)d->shape[0] : 0;
    gf_csv_categories_free(info->categorical, info->n_categorical);
    info->categorical = NULL;
    info->n_categorical = 0;
    if (gf_csv_categories_copy(ctx, d->categorical, d->n_categorical, &info->categorical) != GF_OK) {
        gf_bundle_info_free(info);
        return gf_ctx_status(ctx);
    }
    info->n_categorical = info->categorical ? (int)d->n_categorical : 0;
    info->regression = d->regression;
    gf_bundle_info_set_text(info, d->vocab);
    info->has_audio = d->has_audio;
    info->audio = d->audio;
    info->target_mean = d->regression && d->target_scaled ? d->target_mean : 0.0f;
    info->target_std = d->regression && d->target_scaled ? d->target_std : 1.0f;
    bool ok = copy_str(&info->data, d->spec) && copy_str(&info->target_name, d->target_name) &&
              ((unsigned)d->missing > GF_DS_MISSING_ZERO || copy_str(&info->missing, how[d->missing])) &&
              copy_floats(&info->impute, d->impute, info->n_impute) &&
              copy_names(&info->class_names, d->class_names, d->n_classes) &&
              copy_names(&info->feature_names, d->feature_names, info->n_features) &&
              copy_names(&info->column_names, d->csv.column_names, info->n_columns) &&
              copy_floats(&info->norm_mean, d->norm_mean, info->norm_channels) &&
              copy_floats(&info->norm_std, d->norm_std, info->norm_channels);
    if (ok) return GF_OK;
    gf_bundle_info_free(info);
    return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "bundle: out of memory recording the data");
}

/* ---- writing ------------------------------------------------------------------------------- */

typedef struct kv_list {
    int n, cap;
    char **kv;
    bool failed;
} kv_list;

/* Takes v (malloc'd; NULL means out of memory). */
static void kv_add(kv_list *l, const char *k, char *v) {
    if (l->n + 2 > l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        char **nkv = realloc(l->kv, sizeof *nkv * (size_t)cap);
        if (!nkv) {
            free(v);
            l->failed = true;
            return;
        }
        l->kv = nkv;
        l->cap = cap;
    }
    char *key = gf_bundle_strdup(k);
    if (!key || !v) {
        free(key);
        free(v);
        l->failed = true;
        return;
    }
    l->kv[l->n++] = key;
    l->kv[l->n++] = v;
}

/* cJSON's unformatted text of j (deleted), in malloc'd memory. */
static char *json_text(cJSON *j) {
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    char *r = gf_bundle_strdup(s);
    cJSON_free(s);
    return r;
}

static cJSON *numbers_json(int n, const int64_t *i64, const float *f32) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(i64 ? (double)i64[i] : (double)f32[i]));
    return a;
}

static cJSON *names_json(int n, char *const *names) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        char num[24];
        snprintf(num, sizeof num, "%d", i);
        cJSON_AddItemToArray(a, cJSON_CreateString(names && names[i] ? names[i] : num));
    }
    return a;
}

static void add_data_keys(kv_list *l, const gf_bundle_info *m) {
    if (m->data) kv_add(l, "graft.data", gf_bundle_strdup(m->data));
    if (m->in_ndim) kv_add(l, "graft.input", json_text(numbers_json(m->in_ndim, m->in_shape, NULL)));
    if (m->n_classes) kv_add(l, "graft.classes", json_text(names_json(m->n_classes, m->class_names)));
    if (m->feature_names)
        kv_add(l, "graft.features", json_text(names_json(m->n_features, m->feature_names)));
    if (m->column_names)
        kv_add(l, "graft.columns", json_text(names_json(m->n_columns, m->column_names)));
    if (m->norm_mean) {
        cJSON *n = cJSON_CreateObject();
        cJSON_AddItemToObject(n, "mean", numbers_json(m->norm_channels, NULL, m->norm_mean));
        cJSON_AddItemToObject(n, "std", numbers_json(m->norm_channels, NULL, m->norm_std));
        kv_add(l, "graft.normalize", json_text(n));
    }
    if (m->missing) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "strategy", m->missing);
        if (m->impute) cJSON_AddItemToObject(t, "values", numbers_json(m->n_impute, NULL, m->impute));
        kv_add(l, "graft.missing", json_text(t));
    }
    if (m->categorical) {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; a && i < m->n_categorical; i++) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "column", m->categorical[i].column);
            cJSON_AddNumberToObject(c, "at", (double)m->categorical[i].at);
            cJSON_AddItemToObject(c, "values",
                                  names_json((int)m->categorical[i].n, m->categorical[i].values));
            cJSON_AddItemToArray(a, c);
        }
        kv_add(l, "graft.categorical", json_text(a));
    }
    if (m->regression) {
        kv_add(l, "graft.task", gf_bundle_strdup("regression"));
        cJSON *t = cJSON_CreateObject();
        if (m->target_name) cJSON_AddStringToObject(t, "name", m->target_name);
        cJSON_AddNumberToObject(t, "mean", m->target_mean);
        cJSON_AddNumberToObject(t, "std", m->target_std > 0 ? m->target_std : 1.0);
        kv_add(l, "graft.target", json_text(t));
    }
    if (m->vocab) {
        char *t = gf_text_vocab_to_json(NULL, m->vocab);
        if (t) kv_add(l, "graft.text", t);
        else l->failed = true;
    }
    if (m->has_audio) {
        char *t = gf_bundle_audio_to_json(&m->audio);
        if (t) kv_add(l, "graft.audio", t);
        else l->failed = true;
    }
    if (m->image_channels) {
        cJSON *im = cJSON_CreateObject();
        cJSON_AddNumberToObject(im, "channels", m->image_channels);
        cJSON_AddNumberToObject(im, "height", m->image_h);
        cJSON_AddNumberToObject(im, "width", m->image_w);
        kv_add(l, "graft.image", json_text(im));
    }
}

gf_status gf_bundle_meta_pairs(gf_ctx *ctx, const gf_bundle_info *m, const char *const *extra,
                               int n_extra, char ***kv, int *n) {
    kv_list l = {0, 0, NULL, false};
    kv_add(&l, "graft.version", gf_bundle_strdup(GF_VERSION_STRING));
    if (m->command) kv_add(&l, "graft.command", gf_bundle_strdup(m->command));
    if (m->model) kv_add(&l, "graft.model", gf_bundle_strdup(m->model));
    if (m->spec) kv_add(&l, "graft.spec", gf_bundle_strdup(m->spec));
    if (m->tfjs) kv_add(&l, "graft.tfjs", gf_bundle_strdup(m->tfjs));
    if (m->speech) kv_add(&l, "graft.speech", gf_bundle_strdup(m->speech));
    if (m->model && strcmp(m->model, "mlp") == 0) {
        int k = 0;
        while (k < 4 && m->hidden[k] > 0) k++;
        int64_t h[4] = {m->hidden[0], m->hidden[1], m->hidden[2], m->hidden[3]};
        kv_add(&l, "graft.hidden", json_text(numbers_json(k, h, NULL)));
    }
    add_data_keys(&l, m);
    for (int i = 0; i + 1 < 2 * n_extra; i += 2) kv_add(&l, extra[i], gf_bundle_strdup(extra[i + 1]));
    if (l.failed) {
        gf_bundle_meta_free(l.kv, l.n / 2);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "bundle: out of memory writing the metadata");
    }
    *kv = l.kv;
    *n = l.n / 2;
    return GF_OK;
}

void gf_bundle_meta_free(char **kv, int n) {
    for (int i = 0; kv && i < 2 * n; i++) free(kv[i]);
    free(kv);
}
