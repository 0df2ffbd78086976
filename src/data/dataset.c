/* The dataset interface: reference counting, batches, labels and class names over the three
 * kinds of dataset (arrays, index views, callbacks); in-memory and IDX constructors; stats. */
#include "data/ds_internal.h"
#include "core/internal.h"
#include "kernels/vec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *gf_ds_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void gf_ds_errf(char *err, size_t cap, const char *fmt, ...) {
    if (!err || cap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static void free_names(char **names, int64_t n) {
    if (!names) return;
    for (int64_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

gf_ds *gf_ds_alloc(gf_ctx *ctx, gf_ds_kind kind, int64_t n, int ndim, const int64_t *shape,
                   int n_classes, const char *const *names, const char *name) {
    if (ndim < 1 || ndim > GF_DS_MAX_DIMS || !shape) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "dataset: sample shape needs 1..%d dimensions, got %d",
                         GF_DS_MAX_DIMS, ndim);
        return NULL;
    }
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1 || shape[d] > ((int64_t)1 << 40) / numel) {
            char buf[GF_SHAPE_BUF];
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "dataset: bad sample shape %s",
                             gf_dims_str(ndim, shape, buf, sizeof buf));
            return NULL;
        }
        numel *= shape[d];
    }
    if (n < 0 || n_classes < 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "dataset: negative count (%lld examples, %d classes)",
                         (long long)n, n_classes);
        return NULL;
    }
    /* every reader passes here: the limit holds when data is opened, not after training */
    if (n_classes > gf_ctx_limits(ctx)->classes) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                         "%s: %d classes, more than the limit of %lld (limit classes)",
                         name ? name : "dataset", n_classes,
                         (long long)gf_ctx_limits(ctx)->classes);
        return NULL;
    }
    gf_ds *ds = calloc(1, sizeof *ds);
    if (!ds) goto nomem;
    ds->refs = 1;
    ds->kind = kind;
    ds->n = n;
    ds->ndim = ndim;
    memcpy(ds->shape, shape, (size_t)ndim * sizeof *shape);
    ds->numel = numel;
    ds->n_classes = n_classes;
    ds->name = gf_ds_strdup(name ? name : "dataset");
    if (!ds->name) goto nomem;
    if (n_classes > 0) {
        ds->class_names = calloc((size_t)n_classes, sizeof *ds->class_names);
        if (!ds->class_names) goto nomem;
        for (int k = 0; k < n_classes; k++) {
            char tmp[24];
            const char *s = names ? names[k] : NULL;
            if (!s) {
                snprintf(tmp, sizeof tmp, "%d", k);
                s = tmp;
            }
            if (!(ds->class_names[k] = gf_ds_strdup(s))) goto nomem;
        }
    }
    return ds;
nomem:
    gf_ds_free(ds);
    gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dataset: out of memory");
    return NULL;
}

gf_ds *gf_ds_retain(gf_ds *ds) {
    if (ds) ds->refs++;
    return ds;
}

void gf_ds_free(gf_ds *ds) {
    if (!ds || --ds->refs > 0) return;
    free_names(ds->class_names, ds->n_classes);
    free_names(ds->feature_names, ds->ndim == 1 ? ds->shape[0] : 0);
    free(ds->name);
    for (int i = 0; i < 4; i++) free(ds->owned[i]);
    if (ds->owner_free) ds->owner_free(ds->owner);
    gf_ds_free(ds->base);
    free(ds->idx);
    free(ds->remap);
    if (ds->kind == GF_DS_SOURCE && ds->src.free) ds->src.free(ds->user);
    free(ds);
}

/* ---- the interface ---------------------------------------------------------------------- */

int64_t gf_ds_count(const gf_ds *ds) { return ds ? ds->n : 0; }

int64_t gf_ds_source_index(const gf_ds *ds, int64_t i) {
    if (!ds || i < 0 || i >= ds->n) return -1;
    return ds->kind == GF_DS_VIEW ? ds->idx[i] : i;
}
int gf_ds_ndim(const gf_ds *ds) { return ds ? ds->ndim : 0; }
const int64_t *gf_ds_shape(const gf_ds *ds) { return ds ? ds->shape : NULL; }
int64_t gf_ds_sample_numel(const gf_ds *ds) { return ds ? ds->numel : 0; }
int gf_ds_n_classes(const gf_ds *ds) { return ds ? ds->n_classes : 0; }

const char *gf_ds_class_name(const gf_ds *ds, int k) {
    if (!ds || k < 0 || k >= ds->n_classes) return NULL;
    return ds->class_names[k];
}

int gf_ds_class_index(const gf_ds *ds, const char *name) {
    if (!ds || !name) return -1;
    for (int k = 0; k < ds->n_classes; k++)
        if (strcmp(ds->class_names[k], name) == 0) return k;
    return -1;
}

const char *gf_ds_feature_name(const gf_ds *ds, int64_t j) {
    if (!ds || !ds->feature_names || j < 0 || j >= ds->shape[0]) return NULL;
    return ds->feature_names[j];
}

int64_t gf_ds_base_label(const gf_ds *ds, int64_t i) {
    if (ds->kind == GF_DS_ARRAY) return ds->labels[i];
    if (ds->src.label) return ds->src.label(ds->user, i);
    int64_t y = -1;
    if (ds->src.read(ds->user, &i, 1, NULL, &y, NULL, 0) != GF_OK) return -1;
    return y;
}

int64_t gf_ds_label_steps(const gf_ds *ds) { return ds ? ds->label_steps : 0; }

int64_t gf_ds_label_width(const gf_ds *ds) { return ds->label_steps > 0 ? ds->label_steps : 1; }

int64_t gf_ds_label(const gf_ds *ds, int64_t i) {
    if (!ds || ds->n_classes == 0 || ds->label_steps > 0 || i < 0 || i >= ds->n) return -1;
    if (ds->kind != GF_DS_VIEW) return gf_ds_base_label(ds, i);
    int64_t y = gf_ds_base_label(ds->base, ds->idx[i]);
    if (ds->remap) y = (y >= 0 && y < ds->base->n_classes) ? ds->remap[y] : -1;
    return y;
}

/* The steps of each class over every example of a per-step dataset (padding left out). */
static gf_status step_counts(gf_ctx *ctx, const gf_ds *ds, int64_t *counts) {
    const int64_t t = ds->label_steps;
    int64_t *y = malloc(sizeof *y * (size_t)t);
    if (!y) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_ds_class_counts: out of memory");
    char err[256] = "";
    gf_status st = GF_OK;
    for (int64_t i = 0; i < ds->n && st == GF_OK; i++) {
        st = gf_ds_read(ds, &i, 1, NULL, y, err, sizeof err);
        for (int64_t j = 0; st == GF_OK && j < t; j++)
            if (y[j] >= 0 && y[j] < ds->n_classes) counts[y[j]]++;
    }
    free(y);
    return st == GF_OK ? GF_OK : gf_ctx_set_error(ctx, st, "gf_ds_class_counts: %s", err);
}

gf_status gf_ds_class_counts(gf_ctx *ctx, const gf_ds *ds, int64_t *counts) {
    if (!ds || !counts)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_ds_class_counts: NULL argument");
    if (ds->n_classes == 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "gf_ds_class_counts: %s is a regression dataset (no classes)",
                                ds->name);
    memset(counts, 0, (size_t)ds->n_classes * sizeof *counts);
    if (ds->label_steps > 0) return step_counts(ctx, ds, counts);
    for (int64_t i = 0; i < ds->n; i++) {
        int64_t y = gf_ds_label(ds, i);
        if (y < 0 || y >= ds->n_classes)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                    "%s: example %lld has label %lld outside 0..%d", ds->name,
                                    (long long)i, (long long)y, ds->n_classes - 1);
        counts[y]++;
    }
    return GF_OK;
}

static gf_status read_array(const gf_ds *ds, const int64_t *idx, int64_t n, float *x, void *y) {
    const int64_t m = ds->numel;
    if (x) {
        const int level = gf_vec_level();
        for (int64_t i = 0; i < n; i++) {
            float *dst = x + i * m;
            if (ds->x_u8) {
                /* a division, not a multiply by 1/255: bitwise what ToTensor gives; random
                 * examples from a large set: prefetch two ahead */
                if (i + 2 < n) gf_vec_prefetch(ds->x_u8 + idx[i + 2] * m, m);
                gf_vec_u8_to_f32(level, ds->x_u8 + idx[i] * m, dst, m, 0.0f, 1.0f);
            } else {
                memcpy(dst, ds->x_f32 + idx[i] * m, (size_t)m * sizeof *dst);
            }
        }
    }
    if (y) {
        const int64_t w = gf_ds_label_width(ds);
        if (ds->n_classes > 0)
            for (int64_t i = 0; i < n; i++)
                memcpy((int64_t *)y + i * w, ds->labels + idx[i] * w, sizeof(int64_t) * (size_t)w);
        else
            for (int64_t i = 0; i < n; i++) ((float *)y)[i] = ds->targets[idx[i]];
    }
    return GF_OK;
}

gf_status gf_ds_read(const gf_ds *ds, const int64_t *idx, int64_t n, float *x, void *y, char *err,
                     size_t err_cap) {
    return gf_ds_read_epoch(ds, idx, n, -1, x, y, err, err_cap);
}

gf_status gf_ds_read_epoch(const gf_ds *ds, const int64_t *idx, int64_t n, int64_t epoch, float *x,
                           void *y, char *err, size_t err_cap) {
    if (epoch < -1) epoch = -1;
    if (!ds || (!idx && n > 0) || n < 0) {
        gf_ds_errf(err, err_cap, "dataset read: NULL dataset or index list");
        return GF_ERR_INVALID;
    }
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= ds->n) {
            gf_ds_errf(err, err_cap, "%s: index %lld (batch position %lld) outside 0..%lld",
                       ds->name, (long long)idx[i], (long long)i, (long long)ds->n - 1);
            return GF_ERR_INVALID;
        }
    }
    if (ds->kind == GF_DS_ARRAY) return read_array(ds, idx, n, x, y);
    if (ds->kind == GF_DS_SOURCE) {
        if (n == 0) return GF_OK;
        gf_status s = ds->src.read_epoch
                          ? ds->src.read_epoch(ds->user, idx, n, epoch, x, y, err, err_cap)
                          : ds->src.read(ds->user, idx, n, x, y, err, err_cap);
        if (s == GF_OK && y && ds->n_classes > 0) {
            const int64_t w = gf_ds_label_width(ds);
            for (int64_t i = 0; i < n * w; i++) {
                int64_t v = ((int64_t *)y)[i];
                if ((v < 0 || v >= ds->n_classes) && !(w > 1 && v == GF_DS_IGNORE_LABEL)) {
                    gf_ds_errf(err, err_cap, "%s: example %lld has label %lld outside 0..%d",
                               ds->name, (long long)idx[i / w], (long long)v, ds->n_classes - 1);
                    return GF_ERR_FORMAT;
                }
            }
        }
        return s;
    }
    /* a view: translate the indices (in pieces, so no allocation) and remap the labels */
    enum { PIECE = 256 };
    int64_t tmp[PIECE];
    for (int64_t s0 = 0; s0 < n; s0 += PIECE) {
        int64_t m = n - s0 < PIECE ? n - s0 : PIECE;
        for (int64_t i = 0; i < m; i++) tmp[i] = ds->idx[idx[s0 + i]];
        float *xs = x ? x + s0 * ds->numel : NULL;
        void *ys = NULL;
        if (y)
            ys = ds->n_classes > 0 ? (void *)((int64_t *)y + s0 * gf_ds_label_width(ds))
                                   : (void *)((float *)y + s0);
        gf_status st = gf_ds_read_epoch(ds->base, tmp, m, epoch, xs, ys, err, err_cap);
        if (st != GF_OK) return st;
        if (ys && ds->remap) {
            int64_t *yl = ys;
            for (int64_t i = 0; i < m; i++) yl[i] = ds->remap[yl[i]];
        }
    }
    return GF_OK;
}

gf_status gf_ds_batch(gf_ctx *ctx, const gf_ds *ds, const int64_t *idx, int64_t n, gf_tensor *x,
                      gf_tensor *y) {
    if (!ds || (!idx && n > 0) || !x)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_ds_batch: NULL dataset, index list or x");
    if (n < 1)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_ds_batch: empty batch (n = %lld)",
                                (long long)n);
    char sb[GF_SHAPE_BUF];
    if (x->dtype != GF_F32 || !gf_tensor_is_contiguous(x) || x->ndim < 1 || x->shape[0] != n ||
        x->numel != n * ds->numel) {
        char db[GF_SHAPE_BUF];
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                                "gf_ds_batch: x must be contiguous float32 with %lld rows of %s "
                                "(%lld elements), got %s %s",
                                (long long)n, gf_dims_str(ds->ndim, ds->shape, db, sizeof db),
                                (long long)(n * ds->numel), gf_dtype_name(x->dtype),
                                gf_shape_str(x, sb, sizeof sb));
    }
    gf_dtype ydt = ds->n_classes > 0 ? GF_I64 : GF_F32;
    const int64_t ny = n * gf_ds_label_width(ds);
    if (y && (y->dtype != ydt || !gf_tensor_is_contiguous(y) || y->numel != ny))
        return gf_ctx_set_error(
            ctx, GF_ERR_SHAPE, "gf_ds_batch: y must be contiguous %s with %lld elements, got %s %s",
            gf_dtype_name(ydt), (long long)ny, gf_dtype_name(y->dtype),
            gf_shape_str(y, sb, sizeof sb));
    char err[256] = "";
    gf_status s = gf_ds_read(ds, idx, n, gf_f32(x), y ? y->data : NULL, err, sizeof err);
    if (s != GF_OK) gf_ctx_set_error(ctx, s, "gf_ds_batch: %s", err);
    return s;
}

char *gf_ds_describe(const gf_ds *ds, char *buf, size_t n) {
    if (!buf || n == 0) return buf;
    if (!ds) {
        snprintf(buf, n, "(no dataset)");
        return buf;
    }
    char sh[GF_SHAPE_BUF];
    gf_dims_str(ds->ndim, ds->shape, sh, sizeof sh);
    if (ds->label_steps > 0)
        snprintf(buf, n, "%s: %lld x %s, %d classes per step", ds->name, (long long)ds->n, sh,
                 ds->n_classes);
    else if (ds->n_classes > 0)
        snprintf(buf, n, "%s: %lld x %s, %d classes", ds->name, (long long)ds->n, sh,
                 ds->n_classes);
    else
        snprintf(buf, n, "%s: %lld x %s, regression", ds->name, (long long)ds->n, sh);
    return buf;
}

gf_status gf_ds_channel_stats(gf_ctx *ctx, const gf_ds *ds, float *mean, float *std) {
    if (!ds || !mean || !std)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_ds_channel_stats: NULL argument");
    if (ds->n < 1)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_ds_channel_stats: %s is empty", ds->name);
    const int64_t C = ds->shape[0], per = ds->numel / C; /* values per channel per example */
    const int64_t B = 256;
    float *x = malloc((size_t)(B * ds->numel) * sizeof *x);
    int64_t *idx = malloc((size_t)B * sizeof *idx);
    double *acc = calloc((size_t)C, sizeof *acc), *mu = calloc((size_t)C, sizeof *mu);
    gf_status s = GF_OK;
    if (!x || !idx || !acc || !mu) {
        s = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_ds_channel_stats: out of memory");
        goto done;
    }
    char err[256] = "";
    /* two passes (mean, then squared deviations): stable for features far from zero */
    for (int pass = 0; pass < 2 && s == GF_OK; pass++) {
        memset(acc, 0, (size_t)C * sizeof *acc);
        for (int64_t s0 = 0; s0 < ds->n; s0 += B) {
            int64_t m = ds->n - s0 < B ? ds->n - s0 : B;
            for (int64_t i = 0; i < m; i++) idx[i] = s0 + i;
            if ((s = gf_ds_read(ds, idx, m, x, NULL, err, sizeof err)) != GF_OK) {
                gf_ctx_set_error(ctx, s, "gf_ds_channel_stats: %s", err);
                break;
            }
            for (int64_t i = 0; i < m; i++)
                for (int64_t c = 0; c < C; c++) {
                    const float *p = x + i * ds->numel + c * per;
                    double a = 0;
                    if (pass == 0)
                        for (int64_t j = 0; j < per; j++) a += p[j];
                    else
                        for (int64_t j = 0; j < per; j++) a += (p[j] - mu[c]) * (p[j] - mu[c]);
                    acc[c] += a;
                }
        }
        const double count = (double)ds->n * (double)per;
        for (int64_t c = 0; c < C && s == GF_OK; c++) {
            if (pass == 0) {
                mu[c] = acc[c] / count;
                mean[c] = (float)mu[c];
            } else {
                double sd = sqrt(acc[c] / count);
                std[c] = sd > 0 && isfinite(sd) ? (float)sd : 1.0f;
                if (!isfinite(mu[c]))
                    s = gf_ctx_set_error(
                        ctx, GF_ERR_NUMERIC,
                        "gf_ds_channel_stats: %s: channel %lld has a non-finite mean", ds->name,
                        (long long)c);
            }
        }
    }
done:
    free(x);
    free(idx);
    free(acc);
    free(mu);
    return s;
}

/* ---- in-memory datasets --------------------------------------------------------------- */

gf_ds *gf_ds_from_memory(gf_ctx *ctx, const gf_ds_desc *desc) {
    if (!desc) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_ds_from_memory: NULL description");
        return NULL;
    }
    const gf_ds_desc *d = desc;
    const char *nm = d->name ? d->name : "memory";
    if ((d->x_u8 == NULL) == (d->x_f32 == NULL)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "gf_ds_from_memory: %s: give exactly one of x_u8, x_f32", nm);
        return NULL;
    }
    if (d->n_classes > 0 ? !d->labels : (d->n_classes < 0 || !d->targets)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "gf_ds_from_memory: %s: classification needs labels and n_classes >= 1, "
                         "regression targets and n_classes == 0 (n_classes = %d)",
                         nm, d->n_classes);
        return NULL;
    }
    if (d->n < 1) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_ds_from_memory: %s: no examples (n = %lld)", nm,
                         (long long)d->n);
        return NULL;
    }
    if (d->label_steps < 0 || (d->label_steps > 0 && d->n_classes < 1) ||
        d->label_steps > ((int64_t)1 << 40) / d->n) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_ds_from_memory: %s: label_steps %lld (per-step "
                         "labels need classes and fewer than 2^40 labels in all)", nm,
                         (long long)d->label_steps);
        return NULL;
    }
    gf_ds *ds =
        gf_ds_alloc(ctx, GF_DS_ARRAY, d->n, d->ndim, d->shape, d->n_classes, d->class_names, nm);
    if (!ds) return NULL;
    ds->label_steps = d->label_steps;
    const int64_t w = gf_ds_label_width(ds);
    if (d->n_classes > 0) {
        for (int64_t i = 0; i < d->n * w; i++)
            if ((d->labels[i] < 0 || d->labels[i] >= d->n_classes) &&
                !(w > 1 && d->labels[i] == GF_DS_IGNORE_LABEL)) {
                char step[40] = "";
                if (w > 1) snprintf(step, sizeof step, " (step %lld)", (long long)(i % w));
                gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                 "gf_ds_from_memory: %s: label %lld of example %lld%s outside "
                                 "0..%d", nm, (long long)d->labels[i], (long long)(i / w), step,
                                 d->n_classes - 1);
                gf_ds_free(ds);
                return NULL;
            }
    }
    size_t xbytes = (size_t)(d->n * ds->numel) * (d->x_u8 ? 1 : sizeof(float));
    size_t ybytes = (size_t)(d->n * w) * (d->n_classes > 0 ? sizeof(int64_t) : sizeof(float));
    void *x = malloc(xbytes), *y = malloc(ybytes);
    ds->owned[0] = x;
    ds->owned[1] = y;
    if (!x || !y) goto nomem;
    memcpy(x, d->x_u8 ? (const void *)d->x_u8 : (const void *)d->x_f32, xbytes);
    memcpy(y, d->n_classes > 0 ? (const void *)d->labels : (const void *)d->targets, ybytes);
    if (d->x_u8)
        ds->x_u8 = x;
    else
        ds->x_f32 = x;
    if (d->n_classes > 0)
        ds->labels = y;
    else
        ds->targets = y;
    if (d->feature_names && d->ndim == 1) {
        ds->feature_names = calloc((size_t)d->shape[0], sizeof *ds->feature_names);
        if (!ds->feature_names) goto nomem;
        for (int64_t j = 0; j < d->shape[0]; j++)
            if (!(ds->feature_names[j] =
                      gf_ds_strdup(d->feature_names[j] ? d->feature_names[j] : "")))
                goto nomem;
    }
    return ds;
nomem:
    gf_ds_free(ds);
    gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_ds_from_memory: %s: out of memory", nm);
    return NULL;
}

/* ---- IDX (MNIST family) ------------------------------------------------------------------ */

static const char *const mnist_names[10] = {"0 - zero",  "1 - one",  "2 - two", "3 - three",
                                            "4 - four",  "5 - five", "6 - six", "7 - seven",
                                            "8 - eight", "9 - nine"};
static const char *const fashion_names[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                              "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};

static void idx_owner_free(void *p) { gf_dataset_free(p); }

gf_ds *gf_ds_from_idx(gf_ctx *ctx, gf_dataset *d, bool take_ownership, const char *desc_name) {
    if (!d) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_ds_from_idx: NULL dataset");
        return NULL;
    }
    const char *nm = desc_name ? desc_name : "idx";
    const char *const *names = NULL;
    if (d->n_classes == 10 && strstr(nm, "fashion-mnist"))
        names = fashion_names;
    else if (d->n_classes == 10 && strstr(nm, "mnist"))
        names = mnist_names;
    const int64_t shape[3] = {1, d->rows, d->cols};
    int64_t *labels = NULL;
    gf_ds *ds = gf_ds_alloc(ctx, GF_DS_ARRAY, d->n, 3, shape, d->n_classes, names, nm);
    if (!ds) goto fail;
    labels = malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof *labels);
    if (!labels) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_ds_from_idx: %s: out of memory", nm);
        goto fail;
    }
    for (int64_t i = 0; i < d->n; i++) {
        labels[i] = d->labels[i];
        if (labels[i] >= d->n_classes) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                             "gf_ds_from_idx: %s: label %lld of example %lld outside 0..%d", nm,
                             (long long)labels[i], (long long)i, d->n_classes - 1);
            goto fail;
        }
    }
    ds->owned[0] = labels;
    ds->labels = labels;
    ds->x_u8 = d->images;
    if (take_ownership) {
        ds->owner = d;
        ds->owner_free = idx_owner_free;
    }
    return ds;
fail:
    free(labels);
    gf_ds_free(ds);
    if (take_ownership) gf_dataset_free(d);
    return NULL;
}

gf_ds *gf_ds_load_named(gf_ctx *ctx, const char *name, gf_dataset_split split) {
    if (!name) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_ds_load_named: NULL name");
        return NULL;
    }
    gf_dataset *d = gf_dataset_load(ctx, name, split);
    if (!d) return NULL;
    char desc[512];
    snprintf(desc, sizeof desc, "%s %s", name, split == GF_DATASET_TRAIN ? "train" : "test");
    return gf_ds_from_idx(ctx, d, true, desc);
}

/* ---- callbacks --------------------------------------------------------------------------- */

gf_ds *gf_ds_from_source(gf_ctx *ctx, const gf_ds_source *src, void *user, int64_t n, int ndim,
                         const int64_t *shape, int n_classes, const char *const *class_names,
                         const char *name) {
    if (!src || (!src->read && !src->read_epoch)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_ds_from_source: a read (or read_epoch) callback "
                         "is required");
        if (src && src->free) src->free(user);
        return NULL;
    }
    gf_ds *ds = gf_ds_alloc(ctx, GF_DS_SOURCE, n, ndim, shape, n_classes, class_names,
                            name ? name : "source");
    if (!ds) {
        if (src->free) src->free(user);
        return NULL;
    }
    ds->src = *src;
    ds->user = user;
    return ds;
}
