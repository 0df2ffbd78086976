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
/* A copy of s (NULL for NULL). */
char *gf_bundle_strdup(const char *s);

#endif
