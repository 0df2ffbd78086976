/* Index views over datasets: train/val/test splits (random or stratified, exact part sizes by
 * largest remainders), class subsets with relabelling, N per class. Views of views are
 * flattened onto the root dataset, composing indices and label maps. */
#define _POSIX_C_SOURCE 200809L
#include "graft/split.h"
#include "data/ds_internal.h"
#include "core/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gf_split_params gf_split_default_params(void) {
    gf_split_params p;
    memset(&p, 0, sizeof p);
    p.test_fraction = 0.2;
    p.shuffle = true;
    return p;
}

/* A view of ds: examples idx[0..n) (checked), labels through remap (ds label -> new label or
 * -1; NULL keeps them) into k classes named names (NULL: ds's names). */
static gf_ds *make_view(gf_ctx *ctx, gf_ds *ds, const int64_t *idx, int64_t n, const int64_t *remap,
                        int k, const char *const *names, const char *what) {
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= ds->n) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: index %lld (position %lld) outside 0..%lld",
                             what, (long long)idx[i], (long long)i, (long long)ds->n - 1);
            return NULL;
        }
    gf_ds *root = ds->kind == GF_DS_VIEW ? ds->base : ds;
    if (remap && ds->label_steps > 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s has per-step labels: classes cannot be "
                         "chosen from it", what, ds->name);
        return NULL;
    }
    char name[300];
    snprintf(name, sizeof name, "%s", ds->name);
    if (!strstr(name, " (view)")) snprintf(name, sizeof name, "%s (view)", ds->name);
    gf_ds *v = gf_ds_alloc(ctx, GF_DS_VIEW, n, ds->ndim, ds->shape, remap ? k : ds->n_classes,
                           remap ? names : (const char *const *)ds->class_names, name);
    if (!v) return NULL;
    v->label_steps = ds->label_steps;
    v->idx = malloc((size_t)(n > 0 ? n : 1) * sizeof *v->idx);
    if (!v->idx) goto nomem;
    for (int64_t i = 0; i < n; i++) v->idx[i] = ds->kind == GF_DS_VIEW ? ds->idx[idx[i]] : idx[i];
    if (ds->remap || remap) {
        v->remap = malloc((size_t)(root->n_classes > 0 ? root->n_classes : 1) * sizeof *v->remap);
        if (!v->remap) goto nomem;
        for (int b = 0; b < root->n_classes; b++) {
            int64_t mid = ds->remap ? ds->remap[b] : b;
            v->remap[b] = mid < 0 ? -1 : remap ? remap[mid] : mid;
        }
    }
    if (ds->feature_names) {
        v->feature_names = calloc((size_t)ds->shape[0], sizeof *v->feature_names);
        if (!v->feature_names) goto nomem;
        for (int64_t j = 0; j < ds->shape[0]; j++)
            if (!(v->feature_names[j] = gf_ds_strdup(ds->feature_names[j]))) goto nomem;
    }
    v->base = gf_ds_retain(root);
    return v;
nomem:
    gf_ds_free(v);
    gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", what);
    return NULL;
}

/* ---- concatenation ------------------------------------------------------------------------ */

/* The parts of a concatenation and where each starts. */
typedef struct concat {
    int n;
    gf_ds **parts;
    int64_t *start; /* [n + 1] */
} concat;

static void concat_free(void *user) {
    concat *c = user;
    for (int i = 0; i < c->n; i++) gf_ds_free(c->parts[i]);
    free(c->parts);
    free(c->start);
    free(c);
}

static int concat_part(const concat *c, int64_t i) {
    int q = 0;
    while (q + 1 < c->n && i >= c->start[q + 1]) q++;
    return q;
}

static int64_t concat_label(void *user, int64_t i) {
    const concat *c = user;
    int q = concat_part(c, i);
    return gf_ds_label(c->parts[q], i - c->start[q]);
}

/* Runs of indices in one part go to that part's reader together. */
static gf_status concat_read(void *user, const int64_t *idx, int64_t n, int64_t epoch, float *x, void *y,
                             char *err, size_t err_cap) {
    const concat *c = user;
    const int64_t per = gf_ds_sample_numel(c->parts[0]);
    const bool cls = gf_ds_n_classes(c->parts[0]) > 0;
    int64_t local[256];
    for (int64_t i = 0; i < n;) {
        const int q = concat_part(c, idx[i]);
        int64_t m = 0;
        while (i + m < n && m < 256 && concat_part(c, idx[i + m]) == q) {
            local[m] = idx[i + m] - c->start[q];
            m++;
        }
        void *yq = !y    ? NULL
                   : cls ? (void *)((int64_t *)y + i * gf_ds_label_width(c->parts[0]))
                         : (void *)((float *)y + i);
        gf_status st = gf_ds_read_epoch(c->parts[q], local, m, epoch, x ? x + i * per : NULL, yq, err,
                                        err_cap);
        if (st != GF_OK) return st;
        i += m;
    }
    return GF_OK;
}

gf_ds *gf_split_concat(gf_ctx *ctx, gf_ds *const *parts, int n) {
    concat *c = calloc(1, sizeof *c);
    if (c) c->parts = calloc((size_t)(n > 0 ? n : 1), sizeof *c->parts);
    if (c) c->start = calloc((size_t)(n > 0 ? n : 1) + 1, sizeof *c->start);
    if (!c || !c->parts || !c->start) {
        if (c) concat_free(c);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_split_concat: out of memory");
        return NULL;
    }
    for (int i = 0; parts && i < n; i++) {
        gf_ds *d = parts[i];
        if (!d) continue;
        const gf_ds *first = c->n ? c->parts[0] : d;
        bool same = d->ndim == first->ndim && d->n_classes == first->n_classes &&
                    d->label_steps == first->label_steps;
        for (int k = 0; same && k < d->ndim; k++) same = d->shape[k] == first->shape[k];
        if (!same) {
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "gf_split_concat: part %d (%s) differs from %s in "
                             "sample shape or classes", i, d->name, first->name);
            concat_free(c);
            return NULL;
        }
        c->parts[c->n] = gf_ds_retain(d);
        c->start[c->n + 1] = c->start[c->n] + d->n;
        c->n++;
    }
    if (c->n == 0) {
        concat_free(c);
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_split_concat: no parts");
        return NULL;
    }
    const gf_ds *f = c->parts[0];
    char name[300];
    snprintf(name, sizeof name, "%s (all parts)", f->name);
    gf_ds_source src = {NULL, concat_label, concat_free, concat_read};
    const int64_t steps = f->label_steps;
    gf_ds *all = gf_ds_from_source(ctx, &src, c, c->start[c->n], f->ndim, f->shape, f->n_classes,
                                   (const char *const *)f->class_names, name);
    if (all) all->label_steps = steps;
    return all;
}

gf_ds *gf_split_indices(gf_ctx *ctx, gf_ds *ds, const int64_t *idx, int64_t n) {
    if (!ds || (!idx && n > 0) || n < 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_split_indices: NULL dataset or index list");
        return NULL;
    }
    return make_view(ctx, ds, idx, n, NULL, 0, NULL, "gf_split_indices");
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Largest-remainder allocation of `total` over classes in proportion to counts[] (sum n),
 * at most cap[c] each. Ties: larger class, then lower label. */
static void allocate(int k, const int64_t *counts, int64_t n, int64_t total, const int64_t *cap,
                     int64_t *out) {
    int64_t given = 0;
    for (int c = 0; c < k; c++) {
        out[c] = n > 0 ? total * counts[c] / n : 0;
        if (out[c] > cap[c]) out[c] = cap[c];
        given += out[c];
    }
    while (given < total) {
        int best = -1;
        for (int c = 0; c < k; c++) {
            if (out[c] >= cap[c]) continue;
            if (best < 0) {
                best = c;
                continue;
            }
            /* remainder of c beyond what it got, compared exactly: total*counts - out*n */
            int64_t rc = total * counts[c] - out[c] * n, rb = total * counts[best] - out[best] * n;
            if (rc > rb || (rc == rb && counts[c] > counts[best])) best = c;
        }
        if (best < 0) break; /* every class full: cannot happen when total <= sum(cap) */
        out[best]++;
        given++;
    }
}

gf_status gf_split_dataset(gf_ctx *ctx, gf_ds *ds, const gf_split_params *params, gf_ds **train,
                           gf_ds **val, gf_ds **test) {
    gf_split_params p = params ? *params : gf_split_default_params();
    gf_ds **outs[3] = {train, val, test};
    for (int i = 0; i < 3; i++)
        if (outs[i]) *outs[i] = NULL;
    if (!ds) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_split_dataset: NULL dataset");
    const int64_t n = ds->n;
    const double top = p.allow_empty_train ? 1.0 : 0.0; /* fractions up to 1 are allowed */
    if (!(p.val_fraction >= 0 && (p.val_fraction < 1 || p.val_fraction <= top)) ||
        !(p.test_fraction >= 0 && (p.test_fraction < 1 || p.test_fraction <= top)) ||
        p.val_count < 0 || p.test_count < 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "gf_split_dataset: fractions (val %g, test %g) must be in [0, %s "
                                "and counts (val %lld, test %lld) >= 0",
                                p.val_fraction, p.test_fraction, p.allow_empty_train ? "1]" : "1)",
                                (long long)p.val_count, (long long)p.test_count);
    int64_t n_test = p.test_count > 0 ? p.test_count : (int64_t)ceil(p.test_fraction * (double)n);
    int64_t n_val = p.val_count > 0 ? p.val_count : (int64_t)ceil(p.val_fraction * (double)n);
    /* both rounded up: fractions adding up to 1 may ask for one example more than there is */
    if (p.allow_empty_train && n_test <= n && n_val + n_test == n + 1 && p.val_count == 0 &&
        p.val_fraction + p.test_fraction <= 1 + 1e-9)
        n_val--;
    if (p.allow_empty_train ? n_val + n_test > n : n_val + n_test >= n)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "gf_split_dataset: %s: val %lld + test %lld examples leave no "
                                "training examples out of %lld",
                                ds->name, (long long)n_val, (long long)n_test, (long long)n);
    if (p.stratify && ds->n_classes == 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "gf_split_dataset: %s: cannot stratify a regression dataset",
                                ds->name);
    p.stratify = p.stratify && ds->label_steps == 0; /* per-step labels: no class per example */
    int64_t *part = malloc((size_t)n * sizeof *part); /* which part each example goes to */
    int64_t *order = malloc((size_t)n * sizeof *order);
    int k = p.stratify ? ds->n_classes : 1;
    int64_t *counts = calloc((size_t)k, sizeof *counts), *cap = calloc((size_t)k, sizeof *cap);
    int64_t *nt = calloc((size_t)k, sizeof *nt), *nv = calloc((size_t)k, sizeof *nv);
    int64_t *start = calloc((size_t)k + 1, sizeof *start);
    gf_status st = GF_OK;
    if (!part || !order || !counts || !cap || !nt || !nv || !start) {
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_split_dataset: out of memory");
        goto out;
    }
    /* group the examples by class (one group when not stratified), dataset order inside */
    if (p.stratify) {
        if ((st = gf_ds_class_counts(ctx, ds, counts)) != GF_OK) goto out;
        for (int c = 0; c < k; c++) start[c + 1] = start[c] + counts[c];
        int64_t *fillp = calloc((size_t)k, sizeof *fillp);
        if (!fillp) {
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_split_dataset: out of memory");
            goto out;
        }
        for (int64_t i = 0; i < n; i++) {
            int64_t y = gf_ds_label(ds, i);
            order[start[y] + fillp[y]++] = i;
        }
        free(fillp);
    } else {
        counts[0] = n;
        start[1] = n;
        for (int64_t i = 0; i < n; i++) order[i] = i;
    }
    for (int c = 0; c < k; c++) cap[c] = counts[c];
    allocate(k, counts, n, n_test, cap, nt);
    for (int c = 0; c < k; c++) cap[c] = counts[c] - nt[c];
    allocate(k, counts, n, n_val, cap, nv);
    gf_rng r;
    gf_rng_seed(&r, p.seed);
    for (int c = 0; c < k; c++) {
        int64_t *g = order + start[c], m = counts[c];
        if (p.shuffle) {
            /* random: the first of a shuffled group are test, then val */
            gf_rng_shuffle(&r, g, m);
            for (int64_t i = 0; i < m; i++) part[g[i]] = i < nt[c] ? 2 : i < nt[c] + nv[c] ? 1 : 0;
        } else {
            /* in order: the last of a group are test, those before them val (sklearn) */
            for (int64_t i = 0; i < m; i++)
                part[g[i]] = i >= m - nt[c] ? 2 : i >= m - nt[c] - nv[c] ? 1 : 0;
        }
    }
    static const char *const what[3] = {"train", "val", "test"};
    for (int q = 0; q < 3 && st == GF_OK; q++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (part[i] == q) order[m++] = i; /* dataset order */
        if (!outs[q] || m == 0) continue;
        char where[64];
        snprintf(where, sizeof where, "gf_split_dataset (%s)", what[q]);
        *outs[q] = make_view(ctx, ds, order, m, NULL, 0, NULL, where);
        if (!*outs[q]) st = gf_ctx_status(ctx);
    }
    if (st != GF_OK)
        for (int q = 0; q < 3; q++)
            if (outs[q]) {
                gf_ds_free(*outs[q]);
                *outs[q] = NULL;
            }
out:
    free(part);
    free(order);
    free(counts);
    free(cap);
    free(nt);
    free(nv);
    free(start);
    return st;
}

/* ---- subsets by class ----------------------------------------------------------------------- */

static bool parse_label(const char *s, int64_t *v) {
    if (!*s) return false;
    char *e;
    long long x = strtoll(s, &e, 10);
    if (*e) return false;
    *v = x;
    return true;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    return s;
}

gf_ds *gf_split_classes(gf_ctx *ctx, gf_ds *ds, const char *spec) {
    if (!ds || !spec) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_split_classes: NULL dataset or class list");
        return NULL;
    }
    const int K = ds->n_classes;
    if (K == 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_split_classes: %s is a regression dataset",
                         ds->name);
        return NULL;
    }
    bool *keep = calloc((size_t)K, sizeof *keep);
    int64_t *remap = malloc((size_t)K * sizeof *remap), *idx = NULL;
    const char **names = malloc((size_t)K * sizeof *names);
    char *copy = gf_ds_strdup(spec);
    gf_ds *v = NULL;
    if (!keep || !remap || !names || !copy) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_split_classes: out of memory");
        goto out;
    }
    char *save = NULL;
    int ntok = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = trim(tok);
        ntok++;
        int64_t lo, hi;
        int named = gf_ds_class_index(ds, tok);
        char *dash = *tok ? strchr(tok + 1, '-') : NULL;
        if (named >= 0) {
            lo = hi = named;
        } else if (parse_label(tok, &lo)) {
            hi = lo;
        } else if (dash) {
            *dash = '\0';
            if (!parse_label(trim(tok), &lo) || !parse_label(trim(dash + 1), &hi)) {
                *dash = '-';
                lo = hi = -1;
            }
        } else {
            lo = hi = -1;
        }
        if (lo < 0 || hi >= K || lo > hi) {
            if (dash) *dash = '-';
            gf_ctx_set_error(ctx, GF_ERR_INVALID,
                             "gf_split_classes: '%s' in \"%s\" is not a class name, a label in "
                             "0..%d or an increasing range of them",
                             tok, spec, K - 1);
            goto out;
        }
        for (int64_t c = lo; c <= hi; c++) keep[c] = true;
    }
    if (ntok == 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_split_classes: empty class list \"%s\"", spec);
        goto out;
    }
    int k = 0;
    for (int c = 0; c < K; c++) {
        remap[c] = keep[c] ? k : -1;
        if (keep[c]) names[k++] = ds->class_names[c];
    }
    idx = malloc((size_t)(ds->n > 0 ? ds->n : 1) * sizeof *idx);
    if (!idx) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_split_classes: out of memory");
        goto out;
    }
    int64_t m = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        int64_t y = gf_ds_label(ds, i);
        if (y >= 0 && y < K && keep[y]) idx[m++] = i;
    }
    if (m == 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "gf_split_classes: %s has no examples of classes \"%s\"", ds->name, spec);
        goto out;
    }
    v = make_view(ctx, ds, idx, m, remap, k, names, "gf_split_classes");
out:
    free(keep);
    free(remap);
    free(names);
    free(copy);
    free(idx);
    return v;
}

gf_ds *gf_split_per_class(gf_ctx *ctx, gf_ds *ds, int64_t n_per_class, bool random, uint64_t seed,
                          bool allow_fewer) {
    if (!ds || n_per_class < 1) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "gf_split_per_class: need a dataset and n_per_class >= 1 (got %lld)",
                         (long long)n_per_class);
        return NULL;
    }
    const int K = ds->n_classes;
    if (K == 0 || ds->label_steps > 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_split_per_class: %s %s", ds->name,
                         K == 0 ? "is a regression dataset"
                                : "has per-step labels (no class per example)");
        return NULL;
    }
    int64_t *counts = calloc((size_t)K, sizeof *counts),
            *start = calloc((size_t)K + 1, sizeof *start);
    int64_t *order = malloc((size_t)(ds->n > 0 ? ds->n : 1) * sizeof *order);
    int64_t *fillp = calloc((size_t)K, sizeof *fillp);
    int64_t *pick = malloc((size_t)(ds->n > 0 ? ds->n : 1) * sizeof *pick);
    gf_ds *v = NULL;
    if (!counts || !start || !order || !fillp || !pick) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_split_per_class: out of memory");
        goto out;
    }
    if (gf_ds_class_counts(ctx, ds, counts) != GF_OK) goto out;
    for (int c = 0; c < K; c++) {
        if (counts[c] < n_per_class && !allow_fewer) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID,
                             "gf_split_per_class: %s: class %d (%s) has %lld examples, %lld asked",
                             ds->name, c, ds->class_names[c], (long long)counts[c],
                             (long long)n_per_class);
            goto out;
        }
        start[c + 1] = start[c] + counts[c];
    }
    for (int64_t i = 0; i < ds->n; i++) {
        int64_t y = gf_ds_label(ds, i);
        order[start[y] + fillp[y]++] = i;
    }
    gf_rng r;
    gf_rng_seed(&r, seed);
    int64_t m = 0;
    for (int c = 0; c < K; c++) {
        int64_t *g = order + start[c], take = counts[c] < n_per_class ? counts[c] : n_per_class;
        if (random) gf_rng_shuffle(&r, g, counts[c]);
        for (int64_t i = 0; i < take; i++) pick[m++] = g[i];
    }
    if (m > 1) qsort(pick, (size_t)m, sizeof *pick, cmp_i64);
    v = make_view(ctx, ds, pick, m, NULL, 0, NULL, "gf_split_per_class");
out:
    free(counts);
    free(start);
    free(order);
    free(fillp);
    free(pick);
    return v;
}

gf_ds *gf_split_limit(gf_ctx *ctx, gf_ds *ds, int64_t n, uint64_t seed) {
    if (!ds) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_split_limit: NULL dataset");
        return NULL;
    }
    const int64_t total = ds->n;
    if (n <= 0 || total <= n) return gf_ds_retain(ds);
    int64_t *idx = malloc((size_t)total * sizeof *idx);
    char *keep = calloc((size_t)total, 1);
    if (!idx || !keep) {
        free(idx);
        free(keep);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_split_limit: out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < total; i++) idx[i] = i;
    /* its own stream, so a limit and a split with one seed do not pick alike */
    gf_rng r;
    gf_rng_seed(&r, seed ^ 0x6c696d6974ULL);
    gf_rng_shuffle(&r, idx, total);
    for (int64_t i = 0; i < n; i++) keep[idx[i]] = 1;
    int64_t k = 0;
    for (int64_t i = 0; i < total; i++)
        if (keep[i]) idx[k++] = i;
    free(keep);
    gf_ds *v = gf_split_indices(ctx, ds, idx, n);
    free(idx);
    return v;
}
