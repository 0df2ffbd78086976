/* Internals shared by the bundle's two files: the metadata (bundle_info.c) and the model, its
 * weights and its inputs (bundle.c). Not installed. */
#ifndef GRAFT_BUNDLE_INTERNAL_H
#define GRAFT_BUNDLE_INTERNAL_H

#include "graft/bundle.h"

/* info's graft.* pairs in the order graft has always written them (version, command, model,
 * spec, hidden, data, input, classes, features, columns, normalize, image), then the n_extra pairs:
 * *kv gets 2 * *n malloc'd strings (gf_bundle_meta_free). */
gf_status gf_bundle_meta_pairs(gf_ctx *ctx, const gf_bundle_info *info, const char *const *extra,
                               int n_extra, char ***kv, int *n);
void gf_bundle_meta_free(char **kv, int n);
/* (x - mean) / std per channel in place for n samples of m's shape, as gf_tf_normalize computes
 * it (nothing without graft.normalize). */
gf_status gf_bundle_normalize(gf_ctx *ctx, const gf_bundle_info *m, float *x, int64_t n);
/* graft.audio: the front end as JSON (malloc'd, NULL when out of memory), and back (false when
 * a field is missing or out of range). */
char *gf_bundle_audio_to_json(const gf_audio_frontend *fe);
struct cJSON;
bool gf_bundle_audio_from_json(const struct cJSON *j, gf_audio_frontend *fe);
/* A copy of s (NULL for NULL). */
char *gf_bundle_strdup(const char *s);

#endif
