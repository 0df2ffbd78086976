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

typedef enum gf_weights_key_status {
    GF_WEIGHTS_KEY_LOADED = 0,
    GF_WEIGHTS_KEY_MISSING,    /* in the model, not in the file */
    GF_WEIGHTS_KEY_UNEXPECTED, /* in the file, not in the model */
    GF_WEIGHTS_KEY_SHAPE,      /* in both, shapes differ */
    GF_WEIGHTS_KEY_KIND,       /* in both, float vs integer differ */
} gf_weights_key_status;

const char *gf_weights_key_status_name(gf_weights_key_status s); /* "loaded", "missing", ... */

typedef struct gf_weights_key_report {
    char *name;           /* the model's name (for an unexpected key: the file key after renaming) */
    gf_weights_key_status status;
    char model_shape[48]; /* "[64, 32, 3, 3]" or "" when absent */
    char file_shape[48];
    char file_dtype[8];   /* "F32", ... or "" */
    /* added with key renaming (gf_weights_options); zero / NULL in the plain loaders */
    char *file_name;      /* the key as stored in the file when renaming changed it, else NULL */
    bool is_buffer;       /* a model key that is a buffer (running_mean, ...) */
    int model_ndim, file_ndim;          /* -1 when absent */
    int64_t model_dims[GF_MAX_DIMS], file_dims[GF_MAX_DIMS];
} gf_weights_key_report;

typedef struct gf_weights_report {
    int n;
    gf_weights_key_report *keys; /* model keys in state_dict order, then unexpected file keys */
    int loaded, missing, unexpected, mismatched;
    int renamed;         /* keys whose file name differs from the name used */
    bool applied;        /* false for a dry run and for a refused strict load */
} gf_weights_report;

void gf_weights_report_free(gf_weights_report *r);
/* One line per key that was not loaded plus a summary line; `all` also lists loaded keys. */
void gf_weights_report_print(const gf_weights_report *r, FILE *out, bool all);

typedef struct gf_weights_load_options {
    bool strict; /* any missing, unexpected or mismatched key is an error, and then nothing
                    is loaded (the model is left as it was) */
} gf_weights_load_options;

/* Loads the tensors of an open file into m by name. With report != NULL a new report is
 * stored there (free with gf_weights_report_free), on success and on a strict failure alike.
 * Non-strict: keys that fit are loaded, the rest are reported; returns GF_OK. */
gf_status gf_weights_load_file(gf_ctx *ctx, gf_module *m, const gf_st_file *f,
                               const gf_weights_load_options *opt, gf_weights_report **report);
/* Same, opening path first. */
gf_status gf_weights_load(gf_ctx *ctx, gf_module *m, const char *path,
                          const gf_weights_load_options *opt, gf_weights_report **report);

/* ---- key renaming, dry runs ------------------------------------------------------------
 * Checkpoints from elsewhere name their tensors differently ("module.features.0.weight" from
 * DataParallel, "encoder." for "features.", ...). Every file key is mapped to a model name by,
 * in this order: removing strip_prefix (keys that do not start with it are left as they are),
 * applying each rule in turn (each rule rewrites the first match of its POSIX extended regular
 * expression in the current name; a rule that does not match leaves the name alone), then
 * prepending add_prefix. Two file keys mapping to one name is an error naming both. */
typedef struct gf_weights_key_rule {
    /* pattern: a POSIX extended regex (regcomp with REG_EXTENDED). replacement: the text put
     * in place of the match, where \0 is the whole match, \1..\9 the groups and \\ a
     * backslash. replacement NULL: pattern is instead a sed-style "s/REGEX/REPLACEMENT/"
     * (any delimiter after the s; a backslash escapes the delimiter). */
    const char *pattern;
    const char *replacement;
} gf_weights_key_rule;

typedef struct gf_weights_options {
    bool strict;              /* as gf_weights_load_options.strict */
    bool dry_run;             /* compute the report only; load nothing (a strict dry run still
                                 fails on a missing/unexpected/mismatched key) */
    const char *strip_prefix; /* e.g. "module."; NULL or "": none */
    const gf_weights_key_rule *rules; /* n_rules rules, applied in order */
    int n_rules;
    const char *add_prefix;   /* NULL or "": none */
} gf_weights_options;

/* Non-strict, not a dry run, no renaming. */
gf_weights_options gf_weights_default_options(void);

/* Maps one file key through the options' renaming into out (cap bytes). Returns GF_OK, or an
 * error naming a bad rule (regcomp's message) or a result longer than cap. */
gf_status gf_weights_map_key(gf_ctx *ctx, const gf_weights_options *opt, const char *key,
                             char *out, size_t cap);

/* gf_weights_load_file / gf_weights_load with renaming and dry runs. The report (when report
 * is not NULL; free with gf_weights_report_free) is stored on success, on a strict refusal and on
 * a dry run alike; it is not stored when a rule is invalid or two keys collide. opt NULL: the
 * defaults. */
gf_status gf_weights_load_file_with(gf_ctx *ctx, gf_module *m, const gf_st_file *f,
                                    const gf_weights_options *opt, gf_weights_report **report);
gf_status gf_weights_load_with(gf_ctx *ctx, gf_module *m, const char *path,
                               const gf_weights_options *opt, gf_weights_report **report);

/* Writes m's state_dict (parameters and buffers, float32 as F32, int64 as I64) atomically.
 * meta: n_meta key/value pairs (meta[2i], meta[2i+1]) stored as __metadata__. */
gf_status gf_weights_save(gf_ctx *ctx, const gf_module *m, const char *path,
                          const char *const *meta, int n_meta);

#ifdef __cplusplus
}
#endif
#endif
