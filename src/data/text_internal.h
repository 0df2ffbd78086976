/* Internals shared by the text files of src/data (tokenize.c, text.c, text_read.c,
 * text_vectors.c, text_spec.c) and the data spec (dataspec.c). Not installed. */
#ifndef GRAFT_TEXT_INTERNAL_H
#define GRAFT_TEXT_INTERNAL_H

#include "graft/dataspec.h"
#include "graft/text.h"

/* The code point at s[i] (len bytes in all) into *cp: its length in bytes, or -1 for invalid
 * UTF-8 or a NUL byte. */
int gf_text_utf8_next(const unsigned char *s, size_t len, size_t i, uint32_t *cp);
/* Writes cp as UTF-8 (1..4 bytes) into out; returns the length. */
int gf_text_utf8_put(uint32_t cp, char *out);
/* The error for a bad byte at text[off]: "WHERE: line L: invalid UTF-8 at byte OFF (0xHH)". */
gf_status gf_text_utf8_error(gf_ctx *ctx, const char *where, int64_t first_line, const char *text,
                             int64_t off);
uint32_t gf_text_lower(uint32_t cp);
/* "<0xHH>" into out (7 bytes with the NUL). */
void gf_text_byte_token(unsigned char byte, char out[8]);
/* s lower-cased (malloc'd), or NULL when out of memory; s must be valid UTF-8. */
char *gf_text_lower_str(const char *s);

/* A string -> int64 map (open addressing, FNV-1a); keys are copied. */
typedef struct gf_text_map {
    int64_t n, cap; /* cap: a power of two */
    char **keys;
    int64_t *vals;
} gf_text_map;

bool gf_text_map_init(gf_text_map *m, int64_t expect);
void gf_text_map_free(gf_text_map *m);
/* The value of key (len bytes), or -1. */
int64_t gf_text_map_get(const gf_text_map *m, const char *key, size_t len);
/* The slot of key, added with value val when absent (*added true); -1 when out of memory. */
int64_t gf_text_map_put(gf_text_map *m, const char *key, size_t len, int64_t val, bool *added);

/* ---- the data spec text:FILE -------------------------------------------------------------- */

/* What load gives to encode: the file's texts, kept until the parts are encoded. */
typedef struct gf_text_source gf_text_source;

/* Reads the file of text:FILE into *pool (a labels-only dataset of shape [1]; class names the
 * labels sorted as strings) and *src (free with gf_text_source_free). */
gf_status gf_text_spec_load(gf_ctx *ctx, const char *path, const gf_ds_open_params *p,
                            gf_ds **pool, gf_text_source **src);
/* Once the parts are cut: the vocabulary of the training part, the sample length T, and the
 * parts replaced by views of the encoded examples (same examples, labels and source indices).
 * Sets out->vocab. */
gf_status gf_text_spec_encode(gf_ctx *ctx, const gf_ds_open_params *p, gf_text_source *src,
                              gf_ds_parts *out);
void gf_text_source_free(gf_text_source *src);
/* The text: settings of p that are out of range, as an error naming spec; GF_OK. */
gf_status gf_text_spec_check(gf_ctx *ctx, const char *spec, const gf_ds_open_params *p,
                             bool is_text);

#endif
