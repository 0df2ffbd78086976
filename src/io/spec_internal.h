/* Internals of the model-spec parser shared by src/io/spec.c (building, dry runs, the entry
 * points) and src/io/spec_layers.c (settings, leaf layers, the type table). */
#ifndef GRAFT_SPEC_INTERNAL_H
#define GRAFT_SPEC_INTERNAL_H

#include <cjson/cJSON.h>

#include "graft/spec.h"

enum { PATH_CAP = 128, TYPE_CAP = 32, EXPECT_CAP = 96 };

typedef struct shape {
    int ndim; /* sample dimensions; -1: unknown */
    int64_t d[GF_MAX_DIMS];
} shape;

typedef struct spec_state {
    gf_ctx *ctx;
    gf_ctx *scratch; /* dry runs; NULL when no input shape is known */
    const char *label;
    gf_rng *rng;
    gf_spec_layer *layers;
    int n_layers, cap_layers;
    int64_t weights;         /* parameter and buffer elements of the leaves built so far */
    char expect[EXPECT_CAP]; /* what the leaf being built expects, for the error message */
    int64_t n_classes;       /* what "out": "classes" stands for; 0: not known */
    int64_t vocab_size;      /* what "num_embeddings": "vocab" stands for; 0: not known */
    bool uses_classes, input_from_data;
} spec_state;

/* ---- settings (spec_layers.c) ---- */

/* "Max_Pool2d" -> "maxpool2d". */
void spec_normalize_type(const char *in, char *out, size_t cap);
/* An alias ("in_features") to its canonical key ("in"). */
const char *spec_canonical_key(const char *k);
/* "(root)" for the empty path. */
const char *spec_show_path(const char *path);
/* Sets "LABEL: at PATH (TYPE): MESSAGE" (the first error only); returns NULL. */
gf_module *spec_fail(spec_state *s, const char *path, const char *type, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* The value under a canonical key (aliases included), or NULL. */
/* Settings of a layer under canonical key `key`, checked, with a message naming the layer:
 * a whole number in [lo, hi] (absent: def; def < lo means required), a boolean, a number in
 * [lo, hi]. */
bool spec_get_int(spec_state *s, const cJSON *node, const char *key, int64_t def, int64_t lo,
                  int64_t hi, const char *path, const char *type, int64_t *out);
bool spec_get_bool(spec_state *s, const cJSON *node, const char *key, bool def,
                   const char *path, const char *type, bool *out);
bool spec_get_float(spec_state *s, const cJSON *node, const char *key, double def, double lo,
                    double hi, const char *path, const char *type, float *out);
const cJSON *spec_get(const cJSON *node, const char *key);
/* Every key must be "type", one of the comma-separated allowed ones, or (root) "input"; none
 * twice. */
bool spec_check_keys(spec_state *s, const cJSON *node, const char *path, const char *type,
                     const char *allowed, bool root);
/* "out": a whole number in [1, hi], or "classes" (s->n_classes). */
bool spec_get_out(spec_state *s, const cJSON *node, int64_t hi, const char *path,
                  const char *type, int64_t *out);
/* A string among the comma-separated choices: *out its index (absent: 0). */
bool spec_get_choice(spec_state *s, const cJSON *node, const char *key, const char *choices,
                     const char *path, const char *type, int *out);
/* "num_embeddings": a whole number in [lo, hi], or "vocab" or left out (s->vocab_size). */
bool spec_get_vocab(spec_state *s, const cJSON *node, int64_t lo, int64_t hi, const char *path,
                    const char *type, int64_t *out);
/* "[2, 1, 28, 28]" (batch: with a leading 2). */
void spec_shape_str(const shape *sh, bool batch, char *buf, size_t cap);

/* ---- limits (spec_layers.c): checked from the settings, before a layer allocates ---- */

/* a * b, saturating at INT64_MAX (sizes in a spec may reach 2^40 each). */
int64_t spec_mul(int64_t a, int64_t b);
/* a + b for a, b >= 0, saturating. */
int64_t spec_add(int64_t a, int64_t b);
/* Elements of one example of shape sh (saturating); -1 when the shape is unknown. */
int64_t spec_numel(const shape *sh);
/* Adds a leaf's weights (parameter and buffer elements) to the model's total and checks it
 * against the params limit, and out_numel (floats of one example's output; < 0: unknown)
 * against the activation limit; false with an error naming the layer. */
bool spec_budget(spec_state *s, const char *path, const char *type, int64_t weights,
                 int64_t out_numel);

/* ---- layer types (spec_layers.c) ---- */

/* Builds a leaf layer from its settings; may read cur (left-out sizes) and set s->expect. */
typedef gf_module *(*leaf_fn)(spec_state *s, const cJSON *node, const char *path, const char *type,
                              const shape *cur);

typedef struct type_def {
    const char *name;
    const char *keys; /* canonical settings, comma-separated */
    leaf_fn build;    /* NULL: a container */
} type_def;

/* ---- text layers (spec_rnn.c): embedding, lstm, gru ---- */
gf_module *spec_build_embedding(spec_state *s, const cJSON *node, const char *path,
                                const char *type, const shape *cur);
gf_module *spec_build_embedding_bag(spec_state *s, const cJSON *node, const char *path,
                                    const char *type, const shape *cur);
gf_module *spec_build_rnn(spec_state *s, const cJSON *node, const char *path, const char *type,
                          const shape *cur);
/* The sequence layers and the text classifier block (spec_attention.c). */
gf_module *spec_b_mha(spec_state *s, const cJSON *n, const char *path, const char *type,
                      const shape *cur);
gf_module *spec_b_encoder_layer(spec_state *s, const cJSON *n, const char *path,
                                const char *type, const shape *cur);
gf_module *spec_b_encoder(spec_state *s, const cJSON *n, const char *path, const char *type,
                          const shape *cur);
gf_module *spec_b_positional(spec_state *s, const cJSON *n, const char *path, const char *type,
                             const shape *cur);
gf_module *spec_b_seqpool(spec_state *s, const cJSON *n, const char *path, const char *type,
                          const shape *cur);
gf_module *spec_b_text_classifier(spec_state *s, const cJSON *n, const char *path,
                                  const char *type, const shape *cur);

/* The type of a normalised name, or NULL. */
const type_def *spec_find_type(const char *name);

#endif
