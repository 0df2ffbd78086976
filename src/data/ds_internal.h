/* Internal layout of gf_ds shared by the dataset readers (csv.c, images.c), views (split.c)
 * and the interface (dataset.c). Not installed. */
#ifndef GRAFT_DS_INTERNAL_H
#define GRAFT_DS_INTERNAL_H

#include "graft/dataset.h"

typedef enum gf_ds_kind {
    GF_DS_ARRAY,  /* examples in one array (uint8 or float32) + labels or targets */
    GF_DS_VIEW,   /* a list of indices into a base (never itself a view) + label remap */
    GF_DS_SOURCE, /* user callbacks */
} gf_ds_kind;

struct gf_ds {
    int refs;
    gf_ds_kind kind;
    int64_t n;
    int ndim;
    int64_t shape[GF_DS_MAX_DIMS];
    int64_t numel;        /* product of shape */
    int n_classes;        /* 0: regression */
    int64_t label_steps;  /* > 0: labels per example (sequence labelling); 0: one */
    char **class_names;   /* n_classes strings, owned */
    char **feature_names; /* shape[0] strings when ndim == 1, owned; or NULL */
    char *name;           /* description ("csv iris.csv"), owned */

    /* GF_DS_ARRAY */
    const uint8_t *x_u8;        /* [n, numel] or NULL */
    const float *x_f32;         /* [n, numel] or NULL */
    const int64_t *labels;      /* [n] (classification) */
    const float *targets;       /* [n] (regression) */
    void *owned[4];             /* freed with free() */
    void (*owner_free)(void *); /* extra owner of borrowed arrays (IDX dataset) */
    void *owner;
    const char *paths;       /* image folders: n NUL-terminated file paths, back to back */
    const int64_t *path_off; /* [n] start of each path in paths */

    /* GF_DS_VIEW */
    gf_ds *base;    /* retained */
    int64_t *idx;   /* [n] indices into base, owned */
    int64_t *remap; /* [base->n_classes] base label -> view label, or NULL */

    /* GF_DS_SOURCE */
    gf_ds_source src;
    void *user;
};

/* A zeroed dataset with refs 1, the given shape and class count, default class names
 * ("0", "1", ...) when names is NULL, and a copy of name. NULL with a context error. */
gf_ds *gf_ds_alloc(gf_ctx *ctx, gf_ds_kind kind, int64_t n, int ndim, const int64_t *shape,
                   int n_classes, const char *const *names, const char *name);
/* Labels per example in a batch's y: label_steps, or 1. */
int64_t gf_ds_label_width(const gf_ds *ds);
/* Label of base example i (array or source), no checks. */
int64_t gf_ds_base_label(const gf_ds *ds, int64_t i);
/* strdup that returns NULL on failure (C11 has none). */
char *gf_ds_strdup(const char *s);
/* Every feature of the examples of ds in order, [n, F] (malloc'd; *n_out = n), or NULL with a
 * context error. */
float *gf_ds_read_all(gf_ctx *ctx, const gf_ds *ds, int64_t *n_out);
/* printf into a caller buffer that may be NULL. */
void gf_ds_errf(char *err, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

struct gf_ds_open_params;
struct gf_ds_parts;
/* csv: replaces the parts by views whose categorical features (parts->csv.categorical) are
 * one-hot encoded, filling parts->categorical and unseen (onehot.c). */
gf_status gf_ds_one_hot_parts(gf_ctx *ctx, const struct gf_ds_open_params *p,
                              struct gf_ds_parts *parts);

#endif
