/* graft weights: a module's state_dict to and from safetensors, matched by PyTorch's dotted
 * names. Every key is accounted for: loaded, missing from the file, unexpected in the file,
 * or mismatched in shape or kind; nothing is ignored silently. */
#ifndef GRAFT_WEIGHTS_H
#define GRAFT_WEIGHTS_H

#include <stdio.h>

#include "graft/nn.h"
#include "graft/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gf_key_status {
    GF_KEY_LOADED = 0,
    GF_KEY_MISSING,    /* in the model, not in the file */
    GF_KEY_UNEXPECTED, /* in the file, not in the model */
    GF_KEY_SHAPE,      /* in both, shapes differ */
    GF_KEY_KIND,       /* in both, float vs integer differ */
} gf_key_status;

const char *gf_key_status_name(gf_key_status s); /* "loaded", "missing", ... */

typedef struct gf_key_report {
    char *name;
    gf_key_status status;
    char model_shape[48]; /* "[64, 32, 3, 3]" or "" when absent */
    char file_shape[48];
    char file_dtype[8];   /* "F32", ... or "" */
} gf_key_report;

typedef struct gf_load_report {
    int n;
    gf_key_report *keys; /* model keys in state_dict order, then unexpected file keys */
    int loaded, missing, unexpected, mismatched;
} gf_load_report;

void gf_load_report_free(gf_load_report *r);
/* One line per key that was not loaded plus a summary line; `all` also lists loaded keys. */
void gf_load_report_print(const gf_load_report *r, FILE *out, bool all);

typedef struct gf_load_options {
    bool strict; /* any missing, unexpected or mismatched key is an error, and then nothing
                    is loaded (the model is left as it was) */
} gf_load_options;

/* Loads the tensors of an open file into m by name. With report != NULL a new report is
 * stored there (free with gf_load_report_free), on success and on a strict failure alike.
 * Non-strict: keys that fit are loaded, the rest are reported; returns GF_OK. */
gf_status gf_weights_load_file(gf_ctx *ctx, gf_module *m, const gf_st_file *f,
                               const gf_load_options *opt, gf_load_report **report);
/* Same, opening path first. */
gf_status gf_weights_load(gf_ctx *ctx, gf_module *m, const char *path,
                          const gf_load_options *opt, gf_load_report **report);

/* Writes m's state_dict (parameters and buffers, float32 as F32, int64 as I64) atomically.
 * meta: n_meta key/value pairs (meta[2i], meta[2i+1]) stored as __metadata__. */
gf_status gf_weights_save(gf_ctx *ctx, const gf_module *m, const char *path,
                          const char *const *meta, int n_meta);

#ifdef __cplusplus
}
#endif
#endif
