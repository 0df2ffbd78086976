/* One-hot encoding of a table's categorical columns for gf_ds_open: the categories come from
 * the training part (or a trained model), and every part becomes a view whose text columns
 * are expanded into one feature per category, so the split never sees categories it lacks. */
#define _POSIX_C_SOURCE 200809L
#include "graft/dataspec.h"
#include "data/ds_internal.h"
#include "core/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How one raw feature becomes encoded ones. */
typedef struct onehot_col {
    int64_t width;  /* -1: a plain feature copied; else the categories */
    int64_t n_code; /* codes the reader gave (the file's distinct values) */
    int64_t *slot;  /* [n_code]: code -> category, -1 when not among them; NULL for plain */
} onehot_col;

typedef struct onehot_src {
    gf_ds *inner;
    int64_t n_raw, n_out;
    onehot_col *cols; /* [n_raw], borrowed from the shared plan */
} onehot_src;

static void onehot_row(const onehot_src *s, const float *raw, float *out) {
    int64_t f = 0;
    for (int64_t k = 0; k < s->n_raw; k++) {
        const onehot_col *c = &s->cols[k];
        if (c->width < 0) {
            out[f++] = raw[k];
            continue;
        }
        memset(out + f, 0, sizeof(float) * (size_t)c->width);
        const float v = raw[k];
        if (!isnan(v) && v >= 0 && v < (float)c->n_code && c->slot[(int64_t)v] >= 0)
            out[f + c->slot[(int64_t)v]] = 1.0f;
        f += c->width;
    }
}

static gf_status onehot_read(void *user, const int64_t *idx, int64_t n, int64_t epoch, float *x, void *y,
                             char *err, size_t err_cap) {
    const onehot_src *s = user;
    float *raw = x ? malloc(sizeof(float) * (size_t)(n * s->n_raw > 0 ? n * s->n_raw : 1)) : NULL;
    if (x && !raw) {
        gf_ds_errf(err, err_cap, "one-hot encoding: out of memory");
        return GF_ERR_NOMEM;
    }
    gf_status st = gf_ds_read_epoch(s->inner, idx, n, epoch, raw, y, err, err_cap);
    for (int64_t i = 0; st == GF_OK && x && i < n; i++)
        onehot_row(s, raw + i * s->n_raw, x + i * s->n_out);
    free(raw);
    return st;
}

static int64_t onehot_label(void *user, int64_t i) {
    return gf_ds_label(((const onehot_src *)user)->inner, i);
}

static void onehot_free(void *user) {
    onehot_src *s = user;
    gf_ds_free(s->inner);
    for (int64_t k = 0; k < s->n_raw; k++) free(s->cols[k].slot);
    free(s->cols);
    free(s);
}

/* The categories of file column c: a trained model's (given), or the codes the training part
 * holds, in code order (the file's values are sorted, so the kept ones stay sorted). */
static gf_status plan_column(gf_ctx *ctx, const gf_ds_open_params *p, const gf_ds_parts *out,
                             const gf_csv_category *c, const float *tx, int64_t tn, int64_t F,
                             onehot_col *col, gf_csv_category *res) {
    col->n_code = c->n;
    col->slot = malloc(sizeof(int64_t) * (size_t)(c->n > 0 ? c->n : 1));
    res->column = gf_ds_strdup(c->column);
    res->values = calloc((size_t)(c->n > 0 ? c->n : 1), sizeof *res->values);
    if (!col->slot || !res->column || !res->values)
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", out->spec);
    const gf_csv_category *g = NULL;
    for (int64_t i = 0; i < p->n_categories && !g; i++)
        if (p->categories[i].column && strcmp(p->categories[i].column, c->column) == 0)
            g = &p->categories[i];
    if (p->n_categories > 0 && !g)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "%s: column %s holds text, but the model takes it as a number",
                                out->spec, c->column);
    if (g) {
        free(res->values);
        res->values = calloc((size_t)(g->n > 0 ? g->n : 1), sizeof *res->values);
        for (int64_t j = 0; res->values && j < g->n; j++)
            if (!(res->values[res->n++] = gf_ds_strdup(g->values[j]))) break;
        if (!res->values || res->n != g->n)
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", out->spec);
        for (int64_t v = 0; v < c->n; v++) {
            col->slot[v] = -1;
            for (int64_t j = 0; j < g->n && col->slot[v] < 0; j++)
                if (strcmp(c->values[v], g->values[j]) == 0) col->slot[v] = j;
        }
        col->width = g->n;
        return GF_OK;
    }
    if (!out->train)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "%s: column %s holds text and there is no training part to take "
                                "its categories from", out->spec, c->column);
    for (int64_t v = 0; v < c->n; v++) col->slot[v] = -1;
    for (int64_t i = 0; i < tn; i++) {
        const float v = tx[i * F + c->at];
        if (!isnan(v)) col->slot[(int64_t)v] = 0;
    }
    col->width = 0;
    for (int64_t v = 0; v < c->n; v++) {
        if (col->slot[v] < 0) continue;
        col->slot[v] = col->width++;
        if (!(res->values[res->n++] = gf_ds_strdup(c->values[v])))
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", out->spec);
    }
    return GF_OK;
}

/* Values of part ds whose category is not among the kept ones. */
static gf_status count_unseen(gf_ctx *ctx, const gf_ds *ds, const onehot_col *cols, int64_t F,
                              int64_t *unseen) {
    if (!ds) return GF_OK;
    int64_t n = 0;
    float *x = gf_ds_read_all(ctx, ds, &n);
    if (!x) return gf_ctx_status(ctx);
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < F; k++) {
            const float v = x[i * F + k];
            if (cols[k].width >= 0 && !isnan(v) && cols[k].slot[(int64_t)v] < 0) (*unseen)++;
        }
    free(x);
    return GF_OK;
}

/* Replaces *ds by its encoded view (names: n_out feature names, copied). */
static gf_status onehot_part(gf_ctx *ctx, gf_ds_parts *out, gf_ds **ds, const onehot_col *cols,
                             int64_t F, int64_t n_out, char **names) {
    if (!*ds) return GF_OK;
    onehot_src *s = calloc(1, sizeof *s);
    onehot_col *c = s ? calloc((size_t)F, sizeof *c) : NULL;
    bool ok = c != NULL;
    for (int64_t k = 0; ok && k < F; k++) {
        c[k] = cols[k];
        c[k].slot = NULL;
        if (cols[k].width < 0) continue;
        c[k].slot = malloc(sizeof(int64_t) * (size_t)(cols[k].n_code > 0 ? cols[k].n_code : 1));
        if ((ok = c[k].slot != NULL))
            memcpy(c[k].slot, cols[k].slot, sizeof(int64_t) * (size_t)cols[k].n_code);
    }
    if (!ok) {
        for (int64_t k = 0; c && k < F; k++) free(c[k].slot);
        free(c);
        free(s);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", out->spec);
    }
    s->inner = *ds;
    s->n_raw = F;
    s->n_out = n_out;
    s->cols = c;
    const int nc = gf_ds_n_classes(*ds);
    const char **cn = calloc((size_t)(nc > 0 ? nc : 1), sizeof *cn);
    for (int k = 0; cn && k < nc; k++) cn[k] = gf_ds_class_name(*ds, k);
    const gf_ds_source src = {NULL, nc > 0 ? onehot_label : NULL, onehot_free, onehot_read};
    /* the source owns s (and the inner part) from here, also when it fails */
    gf_ds *v = NULL;
    if (cn) v = gf_ds_from_source(ctx, &src, s, gf_ds_count(*ds), 1, &n_out, nc, cn, "one-hot");
    else onehot_free(s);
    free(cn);
    *ds = v;
    if (!v) return gf_ctx_status(ctx) ? gf_ctx_status(ctx)
                                      : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    v->feature_names = calloc((size_t)n_out, sizeof *v->feature_names);
    for (int64_t j = 0; v->feature_names && j < n_out; j++)
        if (!(v->feature_names[j] = gf_ds_strdup(names[j])))
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", out->spec);
    return v->feature_names ? GF_OK : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory",
                                                       out->spec);
}

/* The encoded features' names and where each categorical column starts (res[i].at). */
static char **encoded_names(const gf_ds *ds, const onehot_col *cols, int64_t F, int64_t n_out,
                            gf_csv_category *res) {
    char **names = calloc((size_t)n_out, sizeof *names);
    for (int64_t k = 0, f = 0, i = 0; names && k < F; k++) {
        const char *nm = gf_ds_feature_name(ds, k);
        if (cols[k].width < 0) {
            if (!(names[f++] = gf_ds_strdup(nm ? nm : ""))) goto nomem;
            continue;
        }
        res[i].at = f;
        for (int64_t j = 0; j < res[i].n; j++) {
            const size_t len = strlen(res[i].column) + strlen(res[i].values[j]) + 2;
            if (!(names[f] = malloc(len))) goto nomem;
            snprintf(names[f++], len, "%s=%s", res[i].column, res[i].values[j]);
        }
        i++;
    }
    return names;
nomem:
    for (int64_t j = 0; j < n_out; j++) free(names[j]);
    free(names);
    return NULL;
}

gf_status gf_ds_one_hot_parts(gf_ctx *ctx, const gf_ds_open_params *p, gf_ds_parts *out) {
    const gf_csv_category *cats = out->csv.categorical;
    const int64_t m = out->csv.n_categorical;
    if (m == 0) return GF_OK;
    const gf_ds *any = out->train ? out->train : out->val ? out->val : out->test;
    const int64_t F = gf_ds_sample_numel(any);
    onehot_col *cols = calloc((size_t)F, sizeof *cols);
    gf_csv_category *res = calloc((size_t)m, sizeof *res);
    float *tx = NULL;
    int64_t tn = 0, n_out = F;
    char **names = NULL;
    gf_status st = cols && res ? GF_OK : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    for (int64_t k = 0; st == GF_OK && k < F; k++) cols[k].width = -1;
    if (st == GF_OK && out->train && p->n_categories == 0 && !(tx = gf_ds_read_all(ctx, out->train, &tn)))
        st = gf_ctx_status(ctx);
    for (int64_t i = 0; st == GF_OK && i < m; i++) {
        st = plan_column(ctx, p, out, &cats[i], tx, tn, F, &cols[cats[i].at], &res[i]);
        n_out += st == GF_OK ? cols[cats[i].at].width - 1 : 0;
    }
    free(tx);
    if (st == GF_OK && n_out < 1)
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: no features once encoded (text columns "
                              "without values in the training part)", out->spec);
    if (st == GF_OK && !(names = encoded_names(any, cols, F, n_out, res)))
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", out->spec);
    out->unseen = 0;
    if (st == GF_OK && p->n_categories > 0) st = count_unseen(ctx, out->train, cols, F, &out->unseen);
    if (st == GF_OK) st = count_unseen(ctx, out->val, cols, F, &out->unseen);
    if (st == GF_OK) st = count_unseen(ctx, out->test, cols, F, &out->unseen);
    gf_ds **parts[3] = {&out->train, &out->val, &out->test};
    for (int i = 0; st == GF_OK && i < 3; i++)
        st = onehot_part(ctx, out, parts[i], cols, F, n_out, names);
    for (int64_t j = 0; names && j < n_out; j++) free(names[j]);
    free(names);
    for (int64_t k = 0; cols && k < F; k++) free(cols[k].slot);
    free(cols);
    if (st != GF_OK) {
        gf_csv_categories_free(res, m);
        return st;
    }
    out->categorical = res;
    out->n_categorical = m;
    return GF_OK;
}
