/* Pretrained word vectors (include/graft/text.h): GloVe's text format read line by line under
 * the limits, and an Embedding's weight filled from them by vocabulary, with what it covered. */
#define _POSIX_C_SOURCE 200809L
#include "graft/text.h"
#include "core/internal.h"
#include "data/text_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct gf_text_vectors {
    int64_t n, dim, cap;
    char **words;
    float *data; /* [cap, dim] */
    gf_text_map map;
};

gf_text_vectors_params gf_text_vectors_default_params(void) {
    gf_text_vectors_params p;
    memset(&p, 0, sizeof p);
    return p;
}

void gf_text_vectors_free(gf_text_vectors *v) {
    if (!v) return;
    for (int64_t i = 0; i < v->n; i++) free(v->words[i]);
    free(v->words);
    free(v->data);
    gf_text_map_free(&v->map);
    free(v);
}

int64_t gf_text_vectors_count(const gf_text_vectors *v) { return v ? v->n : 0; }
int64_t gf_text_vectors_dim(const gf_text_vectors *v) { return v ? v->dim : 0; }

const char *gf_text_vectors_word(const gf_text_vectors *v, int64_t i) {
    return v && i >= 0 && i < v->n ? v->words[i] : NULL;
}

const float *gf_text_vectors_get(const gf_text_vectors *v, const char *word) {
    const int64_t i = v && word ? gf_text_map_get(&v->map, word, strlen(word)) : -1;
    return i >= 0 ? v->data + i * v->dim : NULL;
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct vec_reader {
    gf_ctx *ctx;
    const char *name;
    gf_text_vectors_params p;
    gf_text_vectors *v;
    gf_text_map wanted; /* with p.only: its tokens and their lower-case forms */
    int64_t line;
    float *row;         /* [max_dim] */
} vec_reader;

static gf_status line_error(vec_reader *r, const char *fmt, const char *detail) {
    return gf_ctx_set_error(r->ctx, GF_ERR_FORMAT, "%s: line %lld: %s%s", r->name,
                            (long long)r->line, fmt, detail ? detail : "");
}

/* Adds word with the r->v->dim values of r->row (a word seen before keeps its vector). */
static gf_status add_word(vec_reader *r, const char *word, size_t wlen) {
    gf_text_vectors *v = r->v;
    if (r->p.only && gf_text_map_get(&r->wanted, word, wlen) < 0) return GF_OK;
    if (gf_text_map_get(&v->map, word, wlen) >= 0) return GF_OK;
    if (v->n >= r->p.max_words)
        return gf_ctx_set_error(r->ctx, GF_ERR_FORMAT, "%s: line %lld: more than %lld words "
                                "(limit max_words)", r->name, (long long)r->line,
                                (long long)r->p.max_words);
    if (v->n == v->cap) {
        int64_t cap = v->cap ? 2 * v->cap : 1024;
        if (cap > r->p.max_words) cap = r->p.max_words;
        char **w = realloc(v->words, sizeof *w * (size_t)cap);
        if (w) v->words = w;
        float *d = w ? realloc(v->data, sizeof *d * (size_t)(cap * v->dim)) : NULL;
        if (!d) return gf_ctx_set_error(r->ctx, GF_ERR_NOMEM, "%s: out of memory", r->name);
        v->data = d;
        v->cap = cap;
    }
    bool added;
    char *w = malloc(wlen + 1);
    if (!w || gf_text_map_put(&v->map, word, wlen, v->n, &added) < 0) {
        free(w);
        return gf_ctx_set_error(r->ctx, GF_ERR_NOMEM, "%s: out of memory", r->name);
    }
    memcpy(w, word, wlen);
    w[wlen] = '\0';
    v->words[v->n] = w;
    memcpy(v->data + v->n * v->dim, r->row, sizeof(float) * (size_t)v->dim);
    v->n++;
    return GF_OK;
}

/* One line "word v1 ... vD" (len bytes, no line end). */
static gf_status vec_line(vec_reader *r, char *s, size_t len) {
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\r')) s[--len] = '\0';
    if (!len) return GF_OK;
    const int64_t bad = gf_text_utf8_check(s, len);
    if (bad >= 0) {
        char at[48];
        snprintf(at, sizeof at, " at byte %lld of the line", (long long)bad);
        return line_error(r, s[bad] ? "invalid UTF-8" : "a NUL byte", at);
    }
    int64_t fields = 1;
    for (size_t i = 0; i < len; i++) fields += s[i] == ' ';
    if (r->v->dim == 0) {
        char *e1, *e2;
        long long a = strtoll(s, &e1, 10), b = *e1 == ' ' ? strtoll(e1 + 1, &e2, 10) : 0;
        if (fields == 2 && *e1 == ' ' && *e2 == '\0' && a >= 0 && b > 0) return GF_OK; /* "N D" */
        if (fields - 1 > r->p.max_dim || fields < 2)
            return line_error(r, fields < 2 ? "a word without values" : "more values than the "
                              "limit max_dim", NULL);
        r->v->dim = fields - 1;
    }
    const int64_t D = r->v->dim;
    if (fields - 1 < D) {
        char msg[96];
        snprintf(msg, sizeof msg, "%lld values, the first line has %lld", (long long)fields - 1,
                 (long long)D);
        return line_error(r, msg, NULL);
    }
    /* the values are the last D fields: a word may hold spaces (GloVe 840B has such words) */
    char *p = s + len;
    for (int64_t k = 0; k < D; k++) {
        while (p > s && p[-1] != ' ') p--;
        char *end;
        errno = 0;
        const float x = strtof(p, &end);
        if (end == p || *end != '\0' || !isfinite(x)) return line_error(r, "a value that is not a "
                                                                        "finite number: ", p);
        r->row[D - 1 - k] = x;
        if (p == s) return line_error(r, "no word before the values", NULL);
        *--p = '\0';
    }
    const size_t wlen = (size_t)(p - s);
    if (wlen == 0) return line_error(r, "an empty word", NULL);
    return add_word(r, s, wlen);
}

/* Reads lines from f (or the memory text) into the reader. */
static gf_status vec_stream(vec_reader *r, FILE *f, const char *text, size_t len) {
    char *buf = NULL;
    size_t n = 0, cap = 0, at = 0;
    int64_t total = 0;
    gf_status st = GF_OK;
    r->line = 1;
    for (;;) {
        const int c = f ? getc(f) : at < len ? (unsigned char)text[at++] : EOF;
        if (c != EOF && ++total > r->p.max_file_bytes) {
            st = gf_ctx_set_error(r->ctx, GF_ERR_FORMAT, "%s: larger than %lld bytes (limit "
                                  "data-bytes)", r->name, (long long)r->p.max_file_bytes);
            break;
        }
        if (c == EOF || c == '\n') {
            if (buf) buf[n] = '\0';
            if (n && (st = vec_line(r, buf, n)) != GF_OK) break;
            n = 0;
            r->line++;
            if (c == EOF) break;
            continue;
        }
        if ((int64_t)n + 1 > r->p.max_record_bytes) {
            st = gf_ctx_set_error(r->ctx, GF_ERR_FORMAT, "%s: line %lld: longer than %lld bytes "
                                  "(limit max_record_bytes)", r->name, (long long)r->line,
                                  (long long)r->p.max_record_bytes);
            break;
        }
        if (n + 2 > cap) {
            size_t nc = cap ? 2 * cap : 4096;
            char *nb = realloc(buf, nc);
            if (!nb) {
                st = gf_ctx_set_error(r->ctx, GF_ERR_NOMEM, "%s: out of memory", r->name);
                break;
            }
            buf = nb;
            cap = nc;
        }
        buf[n++] = (char)c;
    }
    if (st == GF_OK && f && ferror(f))
        st = gf_ctx_set_error(r->ctx, GF_ERR_IO, "%s: read error", r->name);
    if (st == GF_OK && r->v->n == 0 && !r->p.only)
        st = gf_ctx_set_error(r->ctx, GF_ERR_FORMAT, "%s: no word vectors", r->name);
    free(buf);
    return st;
}

/* The words a vocabulary could use. */
static bool wanted_words(gf_text_map *m, const gf_text_vocab *only) {
    const int64_t V = gf_text_vocab_size(only);
    if (!gf_text_map_init(m, 2 * V)) return false;
    for (int64_t i = 0; i < V; i++) {
        const char *t = gf_text_vocab_token(only, i);
        char *low = gf_text_lower_str(t);
        bool added;
        const bool ok = low && gf_text_map_put(m, t, strlen(t), i, &added) >= 0 &&
                        gf_text_map_put(m, low, strlen(low), i, &added) >= 0;
        free(low);
        if (!ok) return false;
    }
    return true;
}

static gf_text_vectors *vec_read(gf_ctx *ctx, FILE *f, const char *text, size_t len,
                                 const char *name, const gf_text_vectors_params *params) {
    vec_reader r = {ctx, name ? name : "vectors", params ? *params : gf_text_vectors_default_params(),
                    NULL, {0}, 0, NULL};
    if (r.p.max_words <= 0) r.p.max_words = GF_TEXT_MAX_VOCAB;
    if (r.p.max_dim <= 0) r.p.max_dim = GF_TEXT_MAX_DIM;
    if (r.p.max_file_bytes <= 0) r.p.max_file_bytes = gf_ctx_limits(ctx)->data_bytes;
    if (r.p.max_record_bytes <= 0) r.p.max_record_bytes = GF_TEXT_MAX_RECORD_BYTES;
    r.v = calloc(1, sizeof *r.v);
    r.row = malloc(sizeof(float) * (size_t)r.p.max_dim);
    gf_status st = r.v && r.row && gf_text_map_init(&r.v->map, 1024) &&
                   (!r.p.only || wanted_words(&r.wanted, r.p.only))
                       ? vec_stream(&r, f, text, len)
                       : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", r.name);
    free(r.row);
    if (r.wanted.keys) gf_text_map_free(&r.wanted);
    if (st != GF_OK) {
        gf_text_vectors_free(r.v);
        return NULL;
    }
    return r.v;
}

gf_text_vectors *gf_text_vectors_parse(gf_ctx *ctx, const char *text, size_t len,
                                       const char *name, const gf_text_vectors_params *params) {
    return vec_read(ctx, NULL, text ? text : "", text ? len : 0, name, params);
}

gf_text_vectors *gf_text_vectors_load(gf_ctx *ctx, const char *path,
                                      const gf_text_vectors_params *params) {
    struct stat sb;
    if (!path || stat(path, &sb) != 0 || S_ISDIR(sb.st_mode)) {
        gf_ctx_set_error(ctx, GF_ERR_IO, "%s: %s", path ? path : "(null)",
                         !path ? "no path" : S_ISDIR(sb.st_mode) ? "a folder, not a vectors file"
                                                                  : strerror(errno));
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        gf_ctx_set_error(ctx, GF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    gf_text_vectors *v = vec_read(ctx, f, NULL, 0, path, params);
    fclose(f);
    return v;
}

/* ---- filling an embedding ---------------------------------------------------------------- */

gf_status gf_text_vectors_fill(gf_ctx *ctx, const gf_text_vectors *vec, const gf_text_vocab *v,
                               gf_tensor *w, gf_text_coverage *cov) {
    if (!vec || !v || !w)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_text_vectors_fill: NULL %s",
                                !vec ? "vectors" : !v ? "vocabulary" : "weight");
    const int64_t V = gf_text_vocab_size(v), D = vec->dim;
    if (w->dtype != GF_F32 || w->ndim != 2 || w->shape[0] != V || w->shape[1] != D ||
        !gf_tensor_is_contiguous(w)) {
        char sb[64];
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE, "word vectors: the embedding weight must be "
                                "float32 [%lld, %lld] (vocabulary x vector size), found %s %s",
                                (long long)V, (long long)D, gf_dtype_name(w->dtype),
                                gf_shape_str(w, sb, sizeof sb));
    }
    gf_text_coverage c = {V, 0, 0, 0, gf_text_vocab_total(v), 0};
    float *out = gf_f32(w);
    for (int64_t id = 0; id < V; id++) {
        if (gf_text_vocab_is_special(v, id)) continue;
        c.words++;
        const char *tok = gf_text_vocab_token(v, id);
        const float *x = gf_text_vectors_get(vec, tok);
        if (!x) {
            char *low = gf_text_lower_str(tok);
            if (!low) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "word vectors: out of memory");
            x = gf_text_vectors_get(vec, low);
            free(low);
            c.found_lower += x != NULL;
        }
        if (!x) continue;
        memcpy(out + id * D, x, sizeof(float) * (size_t)D);
        c.found++;
        c.covered_tokens += gf_text_vocab_count(v, id);
    }
    if (cov) *cov = c;
    return GF_OK;
}

gf_status gf_text_vectors_fill_module(gf_ctx *ctx, const gf_text_vectors *vec,
                                      const gf_text_vocab *v, gf_module *embedding,
                                      gf_text_coverage *cov) {
    gf_tensor *w = embedding ? gf_module_tensor(ctx, embedding, "weight") : NULL;
    if (!w)
        return gf_ctx_status(ctx) != GF_OK
                   ? gf_ctx_status(ctx)
                   : gf_ctx_set_error(ctx, GF_ERR_INVALID, "word vectors: no embedding weight");
    return gf_text_vectors_fill(ctx, vec, v, w, cov);
}

/* ---- where the fetched data is ------------------------------------------------------------ */

static bool dir_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

bool gf_text_data_dir(char *buf, size_t n) {
    const char *d = getenv("GRAFT_DATA_DIR"), *xdg = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    char p[4200];
    if (d && *d) {
        snprintf(p, sizeof p, "%s/text", d);
        if (dir_exists(p) && strlen(p) < n) return snprintf(buf, n, "%s", p), true;
    }
    if (xdg && *xdg) snprintf(p, sizeof p, "%s/graft/text", xdg);
    else if (home && *home) snprintf(p, sizeof p, "%s/.cache/graft/text", home);
    else return false;
    if (!dir_exists(p) || strlen(p) >= n) return false;
    snprintf(buf, n, "%s", p);
    return true;
}
