/* CSV tables as datasets: an RFC 4180 record reader over the whole file in memory, column
 * selection by name or index, numeric features, and class labels encoded like sklearn's
 * LabelEncoder (sorted distinct values). Every rejection names file, line and column. */
#define _POSIX_C_SOURCE 200809L
#include "graft/csv.h"
#include "data/ds_internal.h"
#include "core/internal.h"
#include "io/io_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

gf_csv_params gf_csv_default_params(void) {
    gf_csv_params p;
    memset(&p, 0, sizeof p);
    p.header = GF_CSV_HEADER;
    p.delimiter = ',';
    p.target = GF_CSV_CLASSES;
    return p;
}

/* ---- records ------------------------------------------------------------------------------ */

typedef struct reader {
    const char *p, *end;
    char delim;
    int64_t line;     /* physical line of p, 1-based */
    int64_t rec_line; /* line where the current record starts */
    char *buf;        /* the record's unescaped fields, each NUL-terminated */
    size_t len, cap;
    size_t *off; /* start of each field in buf */
    int64_t nf, fcap;
} reader;

static bool put(reader *r, char c) {
    if (r->len == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        char *b = realloc(r->buf, cap);
        if (!b) return false;
        r->buf = b;
        r->cap = cap;
    }
    r->buf[r->len++] = c;
    return true;
}

static bool begin_field(reader *r) {
    if (r->nf == r->fcap) {
        int64_t cap = r->fcap ? 2 * r->fcap : 16;
        size_t *o = realloc(r->off, (size_t)cap * sizeof *o);
        if (!o) return false;
        r->off = o;
        r->fcap = cap;
    }
    r->off[r->nf++] = r->len;
    return true;
}

static char *field(const reader *r, int64_t j) { return r->buf + r->off[j]; }

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

typedef enum { REC_OK, REC_EOF, REC_NOMEM, REC_QUOTE, REC_NUL } rec_status;

/* Reads the next non-blank record. */
static rec_status next_record(reader *r) {
    for (;;) {
        if (r->p >= r->end) return REC_EOF;
        r->rec_line = r->line;
        r->len = 0;
        r->nf = 0;
        bool content = false; /* anything but whitespace: a quote, a delimiter, a character */
        if (!begin_field(r)) return REC_NOMEM;
        bool at_start = true;
        for (;;) {
            if (r->p >= r->end) break;
            char c = *r->p;
            if (c == '"' && at_start) {
                content = true;
                at_start = false;
                int64_t open_line = r->line;
                r->p++;
                for (;;) {
                    if (r->p >= r->end) {
                        r->rec_line = open_line;
                        return REC_QUOTE;
                    }
                    char q = *r->p;
                    if (q == '"') {
                        if (r->p + 1 < r->end && r->p[1] == '"') {
                            if (!put(r, '"')) return REC_NOMEM;
                            r->p += 2;
                            continue;
                        }
                        r->p++;
                        break;
                    }
                    if (q == '\0') return REC_NUL;
                    if (q == '\n') r->line++;
                    if (!put(r, q)) return REC_NOMEM;
                    r->p++;
                }
                continue;
            }
            if (c == r->delim) {
                content = true;
                if (!put(r, '\0') || !begin_field(r)) return REC_NOMEM;
                at_start = true;
                r->p++;
                continue;
            }
            if (c == '\n') {
                r->p++;
                r->line++;
                break;
            }
            if (c == '\r' && r->p + 1 < r->end && r->p[1] == '\n') {
                r->p += 2;
                r->line++;
                break;
            }
            if (c == '\0') return REC_NUL;
            if (!is_space(c)) content = true;
            /* leading spaces before a quote still count as "at start" of the field */
            if (!is_space(c)) at_start = false;
            if (!put(r, c)) return REC_NOMEM;
            r->p++;
        }
        if (!put(r, '\0')) return REC_NOMEM;
        if (content) return REC_OK;
    }
}

/* Trims surrounding whitespace in place (fields live in the reader's buffer). */
static char *trim(char *s) {
    while (is_space(*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1])) s[--n] = '\0';
    return s;
}

static const char *const missing_tokens[] = {"",     "NA",   "N/A",  "n/a",  "NaN",
                                             "nan",  "-nan", "-NaN", "NULL", "null",
                                             "None", "#N/A", "<NA>", "?",    NULL};

static bool is_missing(const char *s) {
    for (int i = 0; missing_tokens[i]; i++)
        if (strcmp(s, missing_tokens[i]) == 0) return true;
    return false;
}

/* Parses a whole (trimmed) field as a finite double. */
static bool parse_number(const char *s, double *out) {
    if (!*s) return false;
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || *e != '\0') return false;
    *out = v;
    return true;
}

/* ---- the distinct labels --------------------------------------------------------------- */

typedef struct label_set {
    char **keys; /* distinct label strings, in order of first appearance */
    int64_t n, cap;
    int64_t *slots; /* open addressing: index into keys + 1, 0 = empty */
    int64_t nslots;
} label_set;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Id of s (adding it when new), or -1 when out of memory. */
static int64_t label_id(label_set *ls, const char *s) {
    if (2 * (ls->n + 1) > ls->nslots) {
        int64_t ns = ls->nslots ? 2 * ls->nslots : 64;
        int64_t *slots = calloc((size_t)ns, sizeof *slots);
        if (!slots) return -1;
        for (int64_t i = 0; i < ls->n; i++) {
            uint64_t h = hash_str(ls->keys[i]) & (uint64_t)(ns - 1);
            while (slots[h]) h = (h + 1) & (uint64_t)(ns - 1);
            slots[h] = i + 1;
        }
        free(ls->slots);
        ls->slots = slots;
        ls->nslots = ns;
    }
    uint64_t h = hash_str(s) & (uint64_t)(ls->nslots - 1);
    while (ls->slots[h]) {
        if (strcmp(ls->keys[ls->slots[h] - 1], s) == 0) return ls->slots[h] - 1;
        h = (h + 1) & (uint64_t)(ls->nslots - 1);
    }
    if (ls->n == ls->cap) {
        int64_t cap = ls->cap ? 2 * ls->cap : 16;
        char **k = realloc(ls->keys, (size_t)cap * sizeof *k);
        if (!k) return -1;
        ls->keys = k;
        ls->cap = cap;
    }
    if (!(ls->keys[ls->n] = gf_ds_strdup(s))) return -1;
    ls->slots[h] = ls->n + 1;
    return ls->n++;
}

static void label_set_free(label_set *ls) {
    for (int64_t i = 0; i < ls->n; i++) free(ls->keys[i]);
    free(ls->keys);
    free(ls->slots);
}

typedef struct sort_item {
    int64_t id;
    double v;
    const char *s;
} sort_item;

static int cmp_num(const void *a, const void *b) {
    const sort_item *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id; /* first spelling first */
}

static int cmp_str(const void *a, const void *b) {
    const sort_item *x = a, *y = b;
    return strcmp(x->s, y->s);
}

/* ---- column selection ------------------------------------------------------------------- */

typedef struct table {
    const char *file;
    int64_t ncols;
    char **names; /* ncols column names */
    int64_t header_line;
} table;

static int64_t find_name(const table *t, const char *s, int64_t *second) {
    int64_t hit = -1;
    *second = -1;
    for (int64_t j = 0; j < t->ncols; j++)
        if (strcmp(t->names[j], s) == 0) {
            if (hit < 0)
                hit = j;
            else if (*second < 0)
                *second = j;
        }
    return hit;
}

/* Parses a whole string as a (possibly negative) integer. */
static bool parse_int(const char *s, int64_t *out) {
    if (!*s) return false;
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (*e != '\0' || errno) return false;
    *out = v;
    return true;
}

static void column_list(const table *t, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (int64_t j = 0; j < t->ncols && used + 8 < n; j++) {
        int w = snprintf(buf + used, n - used, "%s%s", j ? ", " : "", t->names[j]);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (used >= n) memcpy(buf + n - 4, "...", 4);
}

/* Resolves one token (name or index) into a column; -1 with an error. */
static int64_t resolve_one(gf_ctx *ctx, const table *t, const char *what, const char *tok) {
    int64_t second, j = find_name(t, tok, &second);
    if (j >= 0 && second >= 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "csv: %s: %s column name '%s' is ambiguous (columns %lld and %lld)",
                         t->file, what, tok, (long long)j + 1, (long long)second + 1);
        return -1;
    }
    if (j >= 0) return j;
    int64_t v;
    if (parse_int(tok, &v)) {
        if (v < 0) v += t->ncols;
        if (v >= 0 && v < t->ncols) return v;
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "csv: %s: %s column index %s outside the %lld columns", t->file, what, tok,
                         (long long)t->ncols);
        return -1;
    }
    char cols[256];
    column_list(t, cols, sizeof cols);
    gf_ctx_set_error(ctx, GF_ERR_INVALID, "csv: %s: no %s column named '%s' (columns: %s)", t->file,
                     what, tok, cols);
    return -1;
}

/* Parses the features spec into cols (ncols capacity); returns the count or -1. */
static int64_t resolve_features(gf_ctx *ctx, const table *t, const char *spec, int64_t label,
                                int64_t *cols) {
    int64_t nf = 0;
    if (!spec) {
        for (int64_t j = 0; j < t->ncols; j++)
            if (j != label) cols[nf++] = j;
        return nf;
    }
    char *copy = gf_ds_strdup(spec);
    if (!copy) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "csv: out of memory");
        return -1;
    }
    bool *used = calloc((size_t)t->ncols, sizeof *used);
    if (!used) {
        free(copy);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "csv: out of memory");
        return -1;
    }
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = trim(tok);
        int64_t lo, hi, second;
        char *dash = strchr(tok + 1, '-'); /* "2-5"; "-1" alone is an index */
        if (find_name(t, tok, &second) < 0 && dash && *tok) {
            *dash = '\0';
            if (!parse_int(trim(tok), &lo) || !parse_int(trim(dash + 1), &hi)) {
                *dash = '-';
                lo = hi = resolve_one(ctx, t, "feature", tok);
            } else {
                if (lo < 0) lo += t->ncols;
                if (hi < 0) hi += t->ncols;
                if (lo < 0 || hi >= t->ncols || lo > hi) {
                    gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                     "csv: %s: feature column range %s-%s is not an increasing "
                                     "range inside the %lld columns",
                                     t->file, tok, dash + 1, (long long)t->ncols);
                    lo = hi = -1;
                }
            }
        } else {
            lo = hi = resolve_one(ctx, t, "feature", tok);
        }
        if (lo < 0) {
            nf = -1;
            break;
        }
        for (int64_t j = lo; j <= hi; j++) {
            if (j == label || used[j]) {
                gf_ctx_set_error(ctx, GF_ERR_INVALID, "csv: %s: feature column %lld (%s) is %s",
                                 t->file, (long long)j + 1, t->names[j],
                                 j == label ? "the label column" : "listed twice");
                nf = -1;
                break;
            }
            used[j] = true;
            cols[nf++] = j;
        }
        if (nf < 0) break;
    }
    free(copy);
    free(used);
    if (nf == 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "csv: %s: no feature columns selected", t->file);
        return -1;
    }
    return nf;
}

/* ---- the reader -------------------------------------------------------------------------- */

typedef struct parse_state {
    reader rd;
    table t;
    int64_t *feat; /* selected feature columns */
    int64_t nfeat, label;
    float *x;   /* [rows, nfeat] */
    int64_t *y; /* [rows] label id (classes) */
    float *tgt; /* [rows] (regression) */
    int64_t rows, cap;
    label_set ls;
    int n_fixed;        /* fixed classes (n_classes or sklearn header) */
    bool allow_missing; /* a missing feature is NaN */
    char **fixed_names; /* n_fixed names (sklearn header) or NULL */
    /* categorical features: is_cat[k] marks feature k; cat[k] interns its values (training
     * read), or given[k] lists its categories (rows read: the value's index, -1 unseen) */
    bool *is_cat;
    label_set *cat;
    const gf_csv_category **given;
    int64_t max_cat;
} parse_state;

static void state_free(parse_state *s) {
    free(s->rd.buf);
    free(s->rd.off);
    if (s->t.names)
        for (int64_t j = 0; j < s->t.ncols; j++) free(s->t.names[j]);
    free(s->t.names);
    free(s->feat);
    free(s->x);
    free(s->y);
    free(s->tgt);
    label_set_free(&s->ls);
    for (int64_t k = 0; s->cat && k < s->nfeat; k++) label_set_free(&s->cat[k]);
    free(s->cat);
    free(s->is_cat);
    free(s->given);
    if (s->fixed_names)
        for (int k = 0; k < s->n_fixed; k++) free(s->fixed_names[k]);
    free(s->fixed_names);
}

static gf_status nomem(gf_ctx *ctx, const char *file) {
    return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "csv: %s: out of memory", file);
}

static gf_status record_error(gf_ctx *ctx, parse_state *s, rec_status rs) {
    if (rs == REC_NOMEM) return nomem(ctx, s->t.file);
    if (rs == REC_NUL)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "csv: %s:%lld: NUL byte (not a text file?)",
                                s->t.file, (long long)s->rd.line);
    return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "csv: %s:%lld: quoted field is never closed",
                            s->t.file, (long long)s->rd.rec_line);
}

/* Column names from the header record (or "0", "1", ... for ncols columns). */
static gf_status set_names(gf_ctx *ctx, parse_state *s, bool from_record, int64_t ncols) {
    s->t.ncols = ncols;
    s->t.names = calloc((size_t)ncols, sizeof *s->t.names);
    if (!s->t.names) return nomem(ctx, s->t.file);
    for (int64_t j = 0; j < ncols; j++) {
        char tmp[24];
        snprintf(tmp, sizeof tmp, "%lld", (long long)j);
        const char *nm = from_record ? trim(field(&s->rd, j)) : tmp;
        if (!(s->t.names[j] = gf_ds_strdup(nm))) return nomem(ctx, s->t.file);
    }
    return GF_OK;
}

/* sklearn's first line: n_samples, n_features, class names... */
static gf_status sklearn_header(gf_ctx *ctx, parse_state *s, int64_t *n_samples,
                                int64_t *n_features) {
    reader *r = &s->rd;
    if (r->nf < 2 || !parse_int(trim(field(r, 0)), n_samples) ||
        !parse_int(trim(field(r, 1)), n_features) || *n_samples < 0 || *n_features < 1)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "csv: %s:%lld: expected sklearn's header line "
                                "'n_samples,n_features,class names...'",
                                s->t.file, (long long)r->rec_line);
    if (*n_features > (1 << 20))
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "csv: %s:%lld: the header promises %lld features (more than 2^20)",
                                s->t.file, (long long)r->rec_line, (long long)*n_features);
    int64_t k = 0;
    for (int64_t j = 2; j < r->nf; j++)
        if (*trim(field(r, j))) k++;
    if (k > 1000000)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "csv: %s:%lld: %lld class names", s->t.file,
                                (long long)r->rec_line, (long long)k);
    if (k > 0) {
        s->fixed_names = calloc((size_t)k, sizeof *s->fixed_names);
        if (!s->fixed_names) return nomem(ctx, s->t.file);
        s->n_fixed = (int)k;
        int i = 0;
        for (int64_t j = 2; j < r->nf; j++) {
            const char *nm = trim(field(r, j)); /* trimmed in place above: the same test */
            if (*nm && !(s->fixed_names[i++] = gf_ds_strdup(nm))) return nomem(ctx, s->t.file);
        }
    }
    return GF_OK;
}

static gf_status grow_rows(gf_ctx *ctx, parse_state *s) {
    int64_t cap = s->cap ? 2 * s->cap : 1024;
    float *x = realloc(s->x, (size_t)(cap * s->nfeat) * sizeof *x);
    if (!x) return nomem(ctx, s->t.file);
    s->x = x;
    if (s->tgt) {
        float *t = realloc(s->tgt, (size_t)cap * sizeof *t);
        if (!t) return nomem(ctx, s->t.file);
        s->tgt = t;
    }
    if (s->y) {
        int64_t *y = realloc(s->y, (size_t)cap * sizeof *y);
        if (!y) return nomem(ctx, s->t.file);
        s->y = y;
    }
    s->cap = cap;
    return GF_OK;
}

static gf_status field_error(gf_ctx *ctx, parse_state *s, int64_t col, const char *what,
                             const char *value) {
    if (!*value)
        return gf_ctx_set_error(
            ctx, GF_ERR_FORMAT, "csv: %s:%lld: column %lld (%s): %s (empty field)", s->t.file,
            (long long)s->rd.rec_line, (long long)col + 1, s->t.names[col], what);
    return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "csv: %s:%lld: column %lld (%s): %s '%.40s'",
                            s->t.file, (long long)s->rd.rec_line, (long long)col + 1,
                            s->t.names[col], what, value);
}

/* The fixed-class label of a field: a class name or an integer 0..k-1; -1 with an error. */
static int64_t fixed_label(gf_ctx *ctx, parse_state *s, const gf_csv_params *p, const char *v) {
    const char *const *names =
        s->fixed_names ? (const char *const *)s->fixed_names : p->class_names;
    if (names)
        for (int k = 0; k < s->n_fixed; k++)
            if (names[k] && strcmp(names[k], v) == 0) return k;
    double d;
    if (parse_number(v, &d) && d == floor(d) && d >= 0 && d < s->n_fixed) return (int64_t)d;
    gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                     "csv: %s:%lld: column %lld (%s): label '%.40s' outside the %d classes "
                     "(0..%d)",
                     s->t.file, (long long)s->rd.rec_line, (long long)s->label + 1,
                     s->t.names[s->label], v, s->n_fixed, s->n_fixed - 1);
    return -1;
}

/* A categorical value as its code: the id of its category (training read: in order of first
 * appearance, sorted later by encode_categories; rows read: its index among the given
 * categories, -1 when not there), or an error. */
static gf_status category_code(gf_ctx *ctx, parse_state *s, int64_t k, const char *v, float *out) {
    if (s->given && s->given[k]) {
        const gf_csv_category *c = s->given[k];
        *out = -1.0f;
        for (int64_t i = 0; i < c->n; i++)
            if (strcmp(c->values[i], v) == 0) *out = (float)i;
        return GF_OK;
    }
    int64_t id = label_id(&s->cat[k], v);
    if (id < 0) return nomem(ctx, s->t.file);
    if (s->cat[k].n > s->max_cat)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "csv: %s:%lld: column %lld (%s): more than %lld categories (a "
                                "text column that is not categorical? leave it out with "
                                "features, or raise max_categories)",
                                s->t.file, (long long)s->rd.rec_line, (long long)s->feat[k] + 1,
                                s->t.names[s->feat[k]], (long long)s->max_cat);
    *out = (float)id;
    return GF_OK;
}

/* The row's feature columns, as float32, into the next row of s->x. */
static gf_status read_features(gf_ctx *ctx, parse_state *s, const reader *r) {
    float *xr = s->x + s->rows * s->nfeat;
    for (int64_t k = 0; k < s->nfeat; k++) {
        int64_t col = s->feat[k];
        const char *v = trim(field(r, col));
        double d;
        if (is_missing(v) && s->allow_missing) {
            xr[k] = NAN;
            continue;
        }
        if (is_missing(v)) return field_error(ctx, s, col, "missing value", v);
        if (s->is_cat && s->is_cat[k]) {
            gf_status cs = category_code(ctx, s, k, v, &xr[k]);
            if (cs != GF_OK) return cs;
            continue;
        }
        if (!parse_number(v, &d)) return field_error(ctx, s, col, "not a number:", v);
        if (!isfinite(d) || fabs(d) > 3.4028234663852886e38)
            return field_error(ctx, s, col, "not a finite float32 number:", v);
        xr[k] = (float)d;
    }
    return GF_OK;
}

static gf_status parse_row(gf_ctx *ctx, parse_state *s, const gf_csv_params *p) {
    reader *r = &s->rd;
    if (r->nf != s->t.ncols) {
        if (s->t.header_line > 0)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                    "csv: %s:%lld: %lld fields, expected %lld (as in the header "
                                    "on line %lld)",
                                    s->t.file, (long long)r->rec_line, (long long)r->nf,
                                    (long long)s->t.ncols, (long long)s->t.header_line);
        return gf_ctx_set_error(
            ctx, GF_ERR_FORMAT, "csv: %s:%lld: %lld fields, expected %lld (as in the first row)",
            s->t.file, (long long)r->rec_line, (long long)r->nf, (long long)s->t.ncols);
    }
    if (s->rows == s->cap && grow_rows(ctx, s) != GF_OK) return GF_ERR_NOMEM;
    gf_status fs = read_features(ctx, s, r);
    if (fs != GF_OK) return fs;
    const char *lv = trim(field(r, s->label));
    if (is_missing(lv)) return field_error(ctx, s, s->label, "missing label", lv);
    if (p->target == GF_CSV_REGRESSION) {
        double d;
        if (!parse_number(lv, &d))
            return field_error(ctx, s, s->label, "target is not a number:", lv);
        if (!isfinite(d) || fabs(d) > 3.4028234663852886e38)
            return field_error(ctx, s, s->label, "target is not a finite float32 number:", lv);
        s->tgt[s->rows] = (float)d;
    } else if (s->n_fixed > 0) {
        int64_t y = fixed_label(ctx, s, p, lv);
        if (y < 0) return GF_ERR_FORMAT;
        s->y[s->rows] = y;
    } else {
        int64_t id = label_id(&s->ls, lv);
        if (id < 0) return nomem(ctx, s->t.file);
        s->y[s->rows] = id;
    }
    s->rows++;
    return GF_OK;
}

/* Sorts the distinct labels like LabelEncoder and rewrites ids into class indices. Returns the
 * class names (borrowed from the label set) in *names. */
static gf_status encode_labels(gf_ctx *ctx, parse_state *s, const char ***names, int *k_out) {
    int64_t n = s->ls.n;
    sort_item *items = calloc((size_t)n, sizeof *items);
    int64_t *cls = calloc((size_t)n, sizeof *cls);
    const char **nm = calloc((size_t)n, sizeof *nm);
    if (!items || !cls || !nm) {
        free(items);
        free(cls);
        free(nm);
        return nomem(ctx, s->t.file);
    }
    bool numeric = true;
    for (int64_t i = 0; i < n; i++) {
        items[i].id = i;
        items[i].s = s->ls.keys[i];
        if (!parse_number(items[i].s, &items[i].v) || !isfinite(items[i].v)) numeric = false;
    }
    if (n > 1) qsort(items, (size_t)n, sizeof *items, numeric ? cmp_num : cmp_str);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        /* numerically equal spellings ("1", "1.0") are one class, named by the first seen */
        if (i > 0 && numeric && items[i].v == items[i - 1].v) {
            cls[items[i].id] = k - 1;
            continue;
        }
        nm[k] = items[i].s;
        cls[items[i].id] = k++;
    }
    if (k > 1000000) {
        free(items);
        free(cls);
        free(nm);
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "csv: %s: %lld distinct labels in column %lld (%s): is it a "
                                "regression target?",
                                s->t.file, (long long)k, (long long)s->label + 1,
                                s->t.names[s->label]);
    }
    for (int64_t r = 0; r < s->rows; r++) s->y[r] = cls[s->y[r]];
    free(items);
    free(cls);
    *names = nm;
    *k_out = (int)k;
    return GF_OK;
}

/* The classes limit, when the data is opened: training would otherwise run for minutes before
 * the confusion matrix (k^2 counts) refuses them. */
static gf_status too_many_classes(gf_ctx *ctx, const parse_state *s, int64_t k) {
    const int64_t max = gf_ctx_limits(ctx)->classes;
    if (k <= max) return GF_OK;
    if (s->label < 0)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "csv: %s: %lld classes, more than the limit of %lld "
                                GF_LIMIT_HINT("classes"),
                                s->t.file, (long long)k, (long long)max);
    return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                            "csv: %s: %lld classes in column %lld (%s), more than the limit of "
                            "%lld (a regression target? see target) " GF_LIMIT_HINT("classes"),
                            s->t.file, (long long)k, (long long)s->label + 1,
                            s->t.names[s->label], (long long)max);
}

/* Skips n physical lines of the reader's text. */
static void skip_lines(reader *r, int n) {
    for (int i = 0; i < n && r->p < r->end; i++) {
        const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
        r->p = nl ? nl + 1 : r->end;
        r->line++;
    }
}

/* sklearn's layout or a header, from the first two records at p (a reader of its own). */
static gf_csv_header sniff(const char *p, const char *end, char delim) {
    reader r;
    memset(&r, 0, sizeof r);
    r.p = p;
    r.end = end;
    r.delim = delim;
    r.line = 1;
    gf_csv_header h = GF_CSV_HEADER;
    int64_t n_samples = -1, n_features = 0;
    if (next_record(&r) == REC_OK && r.nf >= 3 && parse_int(trim(field(&r, 0)), &n_samples) &&
        n_samples >= 0 && parse_int(trim(field(&r, 1)), &n_features) && n_features >= 1) {
        bool names = true; /* class names, not numbers: a header of numbered columns is not it */
        for (int64_t j = 2; j < r.nf; j++) {
            const char *v = trim(field(&r, j));
            double d;
            if (!*v || parse_number(v, &d)) names = false;
        }
        if (names && next_record(&r) == REC_OK && r.nf == n_features + 1) h = GF_CSV_SKLEARN_HEADER;
    }
    free(r.buf);
    free(r.off);
    return h;
}

gf_csv_header gf_csv_sniff_header(const char *text, size_t len, const gf_csv_params *params) {
    const gf_csv_params p = params ? *params : gf_csv_default_params();
    if (!text) return GF_CSV_HEADER;
    reader r;
    memset(&r, 0, sizeof r);
    r.p = text;
    r.end = text + len;
    skip_lines(&r, p.skip_lines);
    return sniff(r.p, r.end, p.delimiter ? p.delimiter : ',');
}

static bool valid_params(const gf_csv_params *p) {
    return p->delimiter != '"' && p->delimiter != '\n' && p->delimiter != '\r' &&
           p->skip_lines >= 0 && p->n_classes >= 0 &&
           (p->header == GF_CSV_HEADER || p->header == GF_CSV_NO_HEADER ||
            p->header == GF_CSV_SKLEARN_HEADER || p->header == GF_CSV_HEADER_AUTO) &&
           (p->target == GF_CSV_CLASSES || p->target == GF_CSV_REGRESSION);
}

/* sklearn's first line: the fixed classes and the column count it promises. */
static gf_status sklearn_head(gf_ctx *ctx, parse_state *s, const gf_csv_params *p,
                              int64_t *n_samples) {
    int64_t n_features = 0;
    s->t.header_line = s->rd.rec_line; /* its n_features + 1 fixes the column count */
    if (sklearn_header(ctx, s, n_samples, &n_features) != GF_OK) return gf_ctx_status(ctx);
    if (p->target == GF_CSV_CLASSES && s->n_fixed == 0)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "csv: %s:%lld: the sklearn header names no classes (a regression "
                                "file? use target = GF_CSV_REGRESSION)",
                                s->t.file, (long long)s->rd.rec_line);
    if (p->n_classes > 0 && p->n_classes != s->n_fixed)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "csv: %s:%lld: the header names %d classes, the parameters say %d",
                                s->t.file, (long long)s->rd.rec_line, s->n_fixed, p->n_classes);
    if (too_many_classes(ctx, s, s->n_fixed) != GF_OK) return gf_ctx_status(ctx);
    return set_names(ctx, s, false, n_features + 1);
}

/* The first record: the header (column names), sklearn's line, or (no header) the first data
 * row, left in the reader with *have_row set. Then the label and feature columns. */
static gf_status read_head(gf_ctx *ctx, parse_state *s, const gf_csv_params *p, bool *have_row,
                           int64_t *n_samples) {
    rec_status rs = next_record(&s->rd);
    if (rs == REC_EOF)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "csv: %s: no rows%s", s->t.file,
                                p->skip_lines ? " after the skipped lines" : "");
    if (rs != REC_OK) return record_error(ctx, s, rs);
    gf_status st;
    *have_row = false;
    if (p->header == GF_CSV_HEADER) {
        s->t.header_line = s->rd.rec_line;
        st = set_names(ctx, s, true, s->rd.nf);
    } else if (p->header == GF_CSV_SKLEARN_HEADER) {
        st = sklearn_head(ctx, s, p, n_samples);
    } else {
        st = set_names(ctx, s, false, s->rd.nf);
        *have_row = true;
    }
    if (st != GF_OK) return st;
    if (s->t.ncols < 2)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "csv: %s:%lld: %lld column(s): need a label and at least one "
                                "feature",
                                s->t.file, (long long)s->rd.rec_line, (long long)s->t.ncols);
    s->label = p->label ? resolve_one(ctx, &s->t, "label", p->label) : s->t.ncols - 1;
    if (s->label < 0) return gf_ctx_status(ctx);
    s->feat = malloc((size_t)s->t.ncols * sizeof *s->feat);
    if (!s->feat) return nomem(ctx, s->t.file);
    s->nfeat = resolve_features(ctx, &s->t, p->features, s->label, s->feat);
    if (s->nfeat < 0) return gf_ctx_status(ctx);
    if (p->target == GF_CSV_REGRESSION ? !(s->tgt = malloc(1)) : !(s->y = malloc(1)))
        return nomem(ctx, s->t.file);
    return GF_OK;
}

/* Every data row, then the row count sklearn's line promised. */
static gf_status read_rows(gf_ctx *ctx, parse_state *s, const gf_csv_params *p, bool have_row,
                           int64_t n_samples) {
    for (;;) {
        if (!have_row) {
            rec_status rs = next_record(&s->rd);
            if (rs == REC_EOF) break;
            if (rs != REC_OK) return record_error(ctx, s, rs);
        }
        have_row = false;
        if (parse_row(ctx, s, p) != GF_OK) return gf_ctx_status(ctx);
    }
    if (s->rows == 0)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "csv: %s: a header but no data rows", s->t.file);
    if (n_samples >= 0 && n_samples != s->rows)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "csv: %s: the header promises %lld rows, the file has %lld",
                                s->t.file, (long long)n_samples, (long long)s->rows);
    return GF_OK;
}

/* ---- categorical features -------------------------------------------------------------- */

void gf_csv_categories_free(gf_csv_category *c, int64_t n) {
    for (int64_t i = 0; c && i < n; i++) {
        for (int64_t j = 0; c[i].values && j < c[i].n; j++) free(c[i].values[j]);
        free(c[i].values);
        free(c[i].column);
    }
    free(c);
}

gf_status gf_csv_categories_copy(gf_ctx *ctx, const gf_csv_category *src, int64_t n,
                                 gf_csv_category **dst) {
    *dst = NULL;
    if (n <= 0 || !src) return GF_OK;
    gf_csv_category *c = calloc((size_t)n, sizeof *c);
    bool ok = c != NULL;
    for (int64_t i = 0; ok && i < n; i++) {
        c[i].at = src[i].at;
        c[i].column = gf_ds_strdup(src[i].column ? src[i].column : "");
        c[i].values = calloc((size_t)(src[i].n > 0 ? src[i].n : 1), sizeof *c[i].values);
        ok = c[i].column && c[i].values;
        for (int64_t j = 0; ok && j < src[i].n; j++, c[i].n++)
            ok = (c[i].values[j] = gf_ds_strdup(src[i].values[j] ? src[i].values[j] : "")) != NULL;
    }
    if (!ok) {
        gf_csv_categories_free(c, n);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "csv: out of memory copying categories");
    }
    *dst = c;
    return GF_OK;
}

/* Which features are categorical: those p names, and (p->categorical) those whose values are
 * more often text than numbers (missing ones aside), found by a first pass over the data
 * records (a reader of its own from the text's start; the head record is skipped unless it is
 * data). A column of numbers with a stray word stays numeric, so the word is the reader's
 * error naming its line: a typo must not turn a measurement into categories. */
static gf_status find_categorical(gf_ctx *ctx, parse_state *s, const gf_csv_params *p,
                                  const char *text, bool have_row) {
    s->is_cat = calloc((size_t)s->nfeat, sizeof *s->is_cat);
    s->cat = calloc((size_t)s->nfeat, sizeof *s->cat);
    if (!s->is_cat || !s->cat) return nomem(ctx, s->t.file);
    s->max_cat = p->max_categories > 0 ? p->max_categories : GF_CSV_MAX_CATEGORIES;
    for (int64_t k = 0; k < s->nfeat; k++)
        for (int64_t i = 0; p->categories && i < p->n_categories; i++)
            if (p->categories[i].column &&
                strcmp(p->categories[i].column, s->t.names[s->feat[k]]) == 0)
                s->is_cat[k] = true;
    if (!p->categorical) return GF_OK;
    reader r;
    memset(&r, 0, sizeof r);
    r.p = text;
    r.end = s->rd.end;
    r.delim = s->rd.delim;
    r.line = 1;
    skip_lines(&r, p->skip_lines);
    int64_t *words = calloc((size_t)s->nfeat, sizeof *words);
    if (!words) return nomem(ctx, s->t.file);
    rec_status rs = have_row ? REC_OK : next_record(&r);
    while (rs == REC_OK && (rs = next_record(&r)) == REC_OK)
        for (int64_t k = 0; k < s->nfeat; k++) {
            double d;
            const char *v = s->feat[k] < r.nf ? trim(field(&r, s->feat[k])) : "";
            if (!is_missing(v)) words[k] += parse_number(v, &d) ? -1 : 1;
        }
    for (int64_t k = 0; k < s->nfeat; k++) s->is_cat[k] = s->is_cat[k] || words[k] > 0;
    free(words);
    free(r.buf);
    free(r.off);
    /* the main pass reports a record error with its line */
    return rs == REC_NOMEM ? nomem(ctx, s->t.file) : GF_OK;
}

/* Sorts each categorical feature's values by byte order, rewrites the codes to match and
 * records the categories in *out (n_out of them, in feature order). */
static gf_status encode_categories(gf_ctx *ctx, parse_state *s, gf_csv_category **out,
                                   int64_t *n_out) {
    int64_t m = 0;
    for (int64_t k = 0; s->is_cat && k < s->nfeat; k++) m += s->is_cat[k];
    *out = NULL;
    *n_out = 0;
    if (m == 0) return GF_OK;
    gf_csv_category *c = calloc((size_t)m, sizeof *c);
    if (!c) return nomem(ctx, s->t.file);
    gf_status st = GF_OK;
    for (int64_t k = 0, i = 0; st == GF_OK && k < s->nfeat; k++) {
        if (!s->is_cat[k]) continue;
        const label_set *ls = &s->cat[k];
        sort_item *items = calloc((size_t)(ls->n ? ls->n : 1), sizeof *items);
        float *slot = calloc((size_t)(ls->n ? ls->n : 1), sizeof *slot);
        c[i].at = k;
        c[i].column = gf_ds_strdup(s->t.names[s->feat[k]]);
        c[i].values = calloc((size_t)(ls->n ? ls->n : 1), sizeof *c[i].values);
        if (!items || !slot || !c[i].column || !c[i].values) st = nomem(ctx, s->t.file);
        for (int64_t j = 0; st == GF_OK && j < ls->n; j++) {
            items[j].id = j;
            items[j].s = ls->keys[j];
        }
        if (st == GF_OK && ls->n > 1) qsort(items, (size_t)ls->n, sizeof *items, cmp_str);
        for (int64_t j = 0; st == GF_OK && j < ls->n; j++, c[i].n++) {
            slot[items[j].id] = (float)j;
            if (!(c[i].values[j] = gf_ds_strdup(items[j].s))) st = nomem(ctx, s->t.file);
        }
        for (int64_t r = 0; st == GF_OK && r < s->rows; r++) {
            float *v = &s->x[r * s->nfeat + k];
            if (!isnan(*v)) *v = slot[(int64_t)*v];
        }
        free(items);
        free(slot);
        i++;
    }
    if (st != GF_OK) {
        gf_csv_categories_free(c, m);
        return st;
    }
    *out = c;
    *n_out = m;
    return GF_OK;
}

/* The dataset of the rows read, the arrays handed over; k classes named names. */
static gf_ds *make_dataset(gf_ctx *ctx, parse_state *s, const gf_csv_params *p,
                           const char *const *names, int k) {
    char desc[300];
    const char *base = strrchr(s->t.file, '/');
    snprintf(desc, sizeof desc, "csv %s", base ? base + 1 : s->t.file);
    const int64_t shape[1] = {s->nfeat};
    gf_ds *ds = gf_ds_alloc(ctx, GF_DS_ARRAY, s->rows, 1, shape, k, names, desc);
    if (!ds) return NULL;
    ds->feature_names = calloc((size_t)s->nfeat, sizeof *ds->feature_names);
    for (int64_t j = 0; ds->feature_names && j < s->nfeat; j++)
        if (!(ds->feature_names[j] = gf_ds_strdup(s->t.names[s->feat[j]]))) {
            gf_ds_free(ds);
            nomem(ctx, s->t.file);
            return NULL;
        }
    if (!ds->feature_names) {
        gf_ds_free(ds);
        nomem(ctx, s->t.file);
        return NULL;
    }
    /* hand the arrays over, trimmed to size */
    float *x = realloc(s->x, (size_t)(s->rows * s->nfeat) * sizeof *x);
    if (x) s->x = x;
    ds->owned[0] = s->x;
    ds->x_f32 = s->x;
    s->x = NULL;
    if (p->target == GF_CSV_CLASSES) {
        ds->owned[1] = s->y;
        ds->labels = s->y;
        s->y = NULL;
    } else {
        ds->owned[1] = s->tgt;
        ds->targets = s->tgt;
        s->tgt = NULL;
    }
    return ds;
}

void gf_csv_info_free(gf_csv_info *info) {
    if (!info) return;
    gf_csv_categories_free(info->categorical, info->n_categorical);
    for (int64_t j = 0; info->column_names && j < info->n_columns; j++) free(info->column_names[j]);
    free(info->column_names);
    memset(info, 0, sizeof *info);
}

static gf_status fill_info(gf_ctx *ctx, const parse_state *s, gf_csv_header header,
                           gf_csv_info *info) {
    info->header = header;
    info->label_column = s->label;
    info->column_names = calloc((size_t)s->t.ncols, sizeof *info->column_names);
    if (!info->column_names) return nomem(ctx, s->t.file);
    info->n_columns = s->t.ncols;
    for (int64_t j = 0; j < s->t.ncols; j++)
        if (!(info->column_names[j] = gf_ds_strdup(s->t.names[j]))) {
            gf_csv_info_free(info);
            return nomem(ctx, s->t.file);
        }
    return GF_OK;
}

gf_ds *gf_csv_parse_info(gf_ctx *ctx, const char *text, size_t len, const char *name,
                         const gf_csv_params *params, gf_csv_info *info) {
    if (info) memset(info, 0, sizeof *info);
    gf_csv_params p = params ? *params : gf_csv_default_params();
    const char *file = name ? name : "(memory)";
    if (!text && len > 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "csv: %s: NULL text", file);
        return NULL;
    }
    if (p.delimiter == '\0') p.delimiter = ',';
    if (!valid_params(&p)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "csv: %s: bad parameters (delimiter, skip_lines, n_classes, header or "
                         "target out of range)",
                         file);
        return NULL;
    }
    if (p.target == GF_CSV_REGRESSION && p.n_classes > 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "csv: %s: n_classes given for a regression target",
                         file);
        return NULL;
    }
    parse_state s;
    memset(&s, 0, sizeof s);
    s.allow_missing = p.allow_missing;
    s.t.file = file;
    s.rd.p = text;
    s.rd.end = text + len;
    s.rd.delim = p.delimiter;
    s.rd.line = 1;
    s.label = -1;
    gf_ds *ds = NULL;
    const char **auto_names = NULL;
    int64_t n_samples = -1;
    if (p.target == GF_CSV_CLASSES && p.n_classes > 0) s.n_fixed = p.n_classes;
    skip_lines(&s.rd, p.skip_lines);
    if (p.header == GF_CSV_HEADER_AUTO) p.header = sniff(s.rd.p, s.rd.end, p.delimiter);
    bool have_row = false;
    gf_csv_category *cats = NULL;
    int64_t n_cats = 0;
    if (read_head(ctx, &s, &p, &have_row, &n_samples) != GF_OK ||
        ((p.categorical || p.n_categories > 0) &&
         find_categorical(ctx, &s, &p, text, have_row) != GF_OK) ||
        read_rows(ctx, &s, &p, have_row, n_samples) != GF_OK ||
        encode_categories(ctx, &s, &cats, &n_cats) != GF_OK)
        goto done;
    int k = 0;
    const char *const *names = NULL;
    if (p.target == GF_CSV_CLASSES) {
        if (s.n_fixed > 0) {
            k = s.n_fixed;
            names = s.fixed_names ? (const char *const *)s.fixed_names : p.class_names;
        } else {
            if (encode_labels(ctx, &s, &auto_names, &k) != GF_OK) goto done;
            names = auto_names;
        }
        if (too_many_classes(ctx, &s, k) != GF_OK) goto done;
    }
    ds = make_dataset(ctx, &s, &p, names, k);
    if (ds && info && fill_info(ctx, &s, p.header, info) != GF_OK) {
        gf_ds_free(ds);
        ds = NULL;
    }
    if (ds && info) {
        info->categorical = cats;
        info->n_categorical = n_cats;
        cats = NULL;
    }
done:
    gf_csv_categories_free(cats, n_cats);
    free(auto_names);
    state_free(&s);
    return ds;
}

gf_ds *gf_csv_parse(gf_ctx *ctx, const char *text, size_t len, const char *name,
                    const gf_csv_params *params) {
    return gf_csv_parse_info(ctx, text, len, name, params, NULL);
}

/* The text read so far is over the data-bytes limit, or inflates more than the gzip-ratio
 * limit allows: checked as it streams, before the buffer doubles again. */
static gf_status csv_too_big(gf_ctx *ctx, gzFile f, const char *path, size_t len) {
    const gf_limits *lim = gf_ctx_limits(ctx);
    if ((int64_t)len > lim->data_bytes)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "csv: %s: more than %lld bytes of text " GF_LIMIT_HINT("data-bytes"),
                                path, (long long)lim->data_bytes);
    const z_off_t c = gzoffset(f);
    if (!gzdirect(f) && gf_gzip_over_ratio(ctx, (int64_t)len, (int64_t)c))
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "csv: %s: inflated %zu bytes from %lld compressed bytes, more than "
                                "%lld times as many (a gzip bomb?) " GF_LIMIT_HINT("gzip-ratio"),
                                path, len, (long long)c, (long long)lim->gzip_ratio);
    return GF_OK;
}

/* The whole text of a plain or gzip file, NUL-terminated (*len without it); NULL with an error
 * naming path. Checked against data-bytes and gzip-ratio as it streams. */
static char *read_text(gf_ctx *ctx, const char *path, size_t *len_out) {
    if (!path) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "csv: NULL path");
        return NULL;
    }
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        gf_ctx_set_error(ctx, GF_ERR_IO, "csv: cannot open %s: %s", path,
                         errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    bool ok = false;
    for (;;) {
        if (!buf) {
            gf_ctx_set_error(ctx, GF_ERR_NOMEM, "csv: %s: out of memory", path);
            goto out;
        }
        if (len + 1 >= cap) { /* room for the terminating NUL too */
            char *b = cap < ((size_t)1 << 40) ? realloc(buf, 2 * cap) : NULL;
            if (!b) {
                gf_ctx_set_error(ctx, GF_ERR_NOMEM, "csv: %s: out of memory", path);
                goto out;
            }
            buf = b;
            cap *= 2;
        }
        size_t room = cap - len - 1;
        size_t want = room > (1u << 30) ? (1u << 30) : room;
        int got = gzread(f, buf + len, (unsigned)want);
        if (got < 0) {
            int err;
            const char *msg = gzerror(f, &err);
            gf_ctx_set_error(ctx, err == Z_ERRNO ? GF_ERR_IO : GF_ERR_FORMAT,
                             "csv: %s: read error: %s", path,
                             err == Z_ERRNO ? strerror(errno) : msg);
            goto out;
        }
        if (got == 0) break;
        len += (size_t)got;
        if (csv_too_big(ctx, f, path, len) != GF_OK) goto out;
    }
    {
        int err = Z_OK;
        gzerror(f, &err);
        if (err != Z_OK && err != Z_STREAM_END) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "csv: %s: truncated or corrupt gzip data", path);
            goto out;
        }
    }
    if (len == 0) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "csv: %s: empty file", path);
        goto out;
    }
    buf[len] = '\0';
    *len_out = len;
    ok = true;
out:
    gzclose(f);
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

gf_ds *gf_csv_load_info(gf_ctx *ctx, const char *path, const gf_csv_params *params,
                        gf_csv_info *info) {
    if (info) memset(info, 0, sizeof *info);
    size_t len = 0;
    char *buf = read_text(ctx, path, &len);
    gf_ds *ds = buf ? gf_csv_parse_info(ctx, buf, len, path, params, info) : NULL;
    free(buf);
    return ds;
}

gf_ds *gf_csv_load(gf_ctx *ctx, const char *path, const gf_csv_params *params) {
    return gf_csv_load_info(ctx, path, params, NULL);
}

/* ---- feature rows without a label (what a trained model is asked about) ------------------ */

void gf_csv_rows_free(gf_csv_rows *rows) {
    if (!rows) return;
    free(rows->x);
    free(rows->lines);
    memset(rows, 0, sizeof *rows);
}

gf_csv_rows_params gf_csv_rows_default_params(void) {
    gf_csv_rows_params p;
    memset(&p, 0, sizeof p);
    p.header = GF_CSV_HEADER_AUTO;
    p.delimiter = ',';
    return p;
}

/* True when every field of the record is a finite number (a data row, not a header). */
static bool all_numbers(reader *r) {
    for (int64_t j = 0; j < r->nf; j++) {
        double d;
        if (!parse_number(trim(field(r, j)), &d) || !isfinite(d)) return false;
    }
    return true;
}

/* True when the n fields at cols are finite numbers. */
static bool numbers_at(reader *r, const int64_t *cols, int64_t n) {
    for (int64_t k = 0; k < n; k++) {
        double d;
        if (cols[k] >= r->nf || !parse_number(trim(field(r, cols[k])), &d) || !isfinite(d))
            return false;
    }
    return true;
}

/* How many of the n names the record holds as a field. */
static int64_t names_held(reader *r, const char *const *names, int64_t n) {
    int64_t held = 0;
    for (int64_t k = 0; k < n; k++) {
        bool found = false;
        for (int64_t j = 0; j < r->nf && !found; j++)
            found = names[k] && strcmp(trim(field(r, j)), names[k]) == 0;
        held += found;
    }
    return held;
}

/* The header's column for each of the n names (the first column of that name). */
static gf_status header_columns(gf_ctx *ctx, parse_state *s, const char *const *names, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        int64_t second, col = names[j] ? find_name(&s->t, names[j], &second) : -1;
        if (col < 0) {
            char cols[256];
            column_list(&s->t, cols, sizeof cols);
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                    "csv: %s:%lld: the header has no column \"%s\" (columns: %s)",
                                    s->t.file, (long long)s->t.header_line,
                                    names[j] ? names[j] : "(null)", cols);
        }
        s->feat[j] = col;
    }
    return GF_OK;
}

/* Column names for messages up to n columns: a header shorter than the rows names the rest by
 * number. */
static gf_status pad_names(gf_ctx *ctx, parse_state *s, int64_t n) {
    if (s->t.ncols >= n) return GF_OK;
    char **names = realloc(s->t.names, (size_t)n * sizeof *names);
    if (!names) return nomem(ctx, s->t.file);
    s->t.names = names;
    for (; s->t.ncols < n; s->t.ncols++) {
        char tmp[24];
        snprintf(tmp, sizeof tmp, "%lld", (long long)s->t.ncols);
        if (!(names[s->t.ncols] = gf_ds_strdup(tmp))) return nomem(ctx, s->t.file);
    }
    return GF_OK;
}

/* Names for messages from a list (n of them; NULL entries by number). */
static gf_status copy_names_from(gf_ctx *ctx, parse_state *s, const char *const *names, int64_t n) {
    if (!(s->t.names = calloc((size_t)n, sizeof *s->t.names))) return nomem(ctx, s->t.file);
    s->t.ncols = n;
    for (int64_t j = 0; j < n; j++) {
        char tmp[24];
        snprintf(tmp, sizeof tmp, "%lld", (long long)j);
        if (!(s->t.names[j] = gf_ds_strdup(names && names[j] ? names[j] : tmp)))
            return nomem(ctx, s->t.file);
    }
    return GF_OK;
}

/* How the rows of one file are read. */
typedef struct rows_read {
    const gf_csv_rows_params *p;
    int64_t *layout;  /* where each feature stood in the training table, or NULL */
    bool by_name;     /* a header picked the columns */
    int64_t want_nf;  /* fields per row */
} rows_read;

/* One data record into row s->rows of s->x: the selected columns, each a finite float32. */
static gf_status parse_feature_row(gf_ctx *ctx, parse_state *s, const rows_read *rr,
                                   int64_t **lines) {
    reader *r = &s->rd;
    if (rr->by_name && r->nf != s->t.ncols)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "csv: %s:%lld: %lld fields, expected %lld (as in the header on "
                                "line %lld)",
                                s->t.file, (long long)r->rec_line, (long long)r->nf,
                                (long long)s->t.ncols, (long long)s->t.header_line);
    if (!rr->by_name && r->nf != rr->want_nf) {
        if (rr->layout)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                    "csv: %s:%lld: %lld fields, expected %lld (the columns of "
                                    "the table the model was trained on)",
                                    s->t.file, (long long)r->rec_line, (long long)r->nf,
                                    (long long)rr->want_nf);
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "csv: %s:%lld: %lld values, expected the %lld features%s",
                                s->t.file, (long long)r->rec_line, (long long)r->nf,
                                (long long)s->nfeat,
                                rr->p->n_columns > 0 ? " (or the training table's columns)"
                                : rr->p->names       ? " (a header naming them picks them from "
                                                       "wider rows)"
                                                     : "");
    }
    if (s->rows == s->cap) {
        if (grow_rows(ctx, s) != GF_OK) return GF_ERR_NOMEM;
        int64_t *l = realloc(*lines, (size_t)s->cap * sizeof *l);
        if (!l) return nomem(ctx, s->t.file);
        *lines = l;
    }
    gf_status fs = read_features(ctx, s, r);
    if (fs != GF_OK) return fs;
    (*lines)[s->rows++] = r->rec_line;
    return GF_OK;
}

/* Where each of the names stood in the training table (p's layout), or NULL. */
static int64_t *find_layout(const gf_csv_rows_params *p, int64_t n, bool *nomem_out) {
    *nomem_out = false;
    if (!p->names || !p->column_names || p->n_columns <= n) return NULL;
    int64_t *lay = malloc((size_t)n * sizeof *lay);
    if (!lay) {
        *nomem_out = true;
        return NULL;
    }
    for (int64_t k = 0; k < n; k++) {
        lay[k] = -1;
        for (int64_t j = 0; j < p->n_columns && lay[k] < 0; j++)
            if (p->names[k] && p->column_names[j] && strcmp(p->names[k], p->column_names[j]) == 0)
                lay[k] = j;
        if (lay[k] < 0) {
            free(lay);
            return NULL;
        }
    }
    return lay;
}

/* The first record (in the reader when *have_row): a header, sklearn's line or data; sets how
 * the rows are read. */
static gf_status rows_head(gf_ctx *ctx, parse_state *s, rows_read *rr, bool *have_row) {
    const gf_csv_rows_params *p = rr->p;
    const int64_t F = s->nfeat;
    gf_csv_header h = p->header;
    if (h == GF_CSV_HEADER_AUTO && sniff(s->rd.p, s->rd.end, s->rd.delim) == GF_CSV_SKLEARN_HEADER)
        h = GF_CSV_SKLEARN_HEADER;
    rec_status rs = next_record(&s->rd);
    if (rs == REC_OK && h == GF_CSV_SKLEARN_HEADER) rs = next_record(&s->rd); /* not data */
    if (rs != REC_OK && rs != REC_EOF) return record_error(ctx, s, rs);
    *have_row = rs == REC_OK;
    bool header = *have_row && h == GF_CSV_HEADER;
    if (*have_row && h == GF_CSV_HEADER_AUTO) {
        /* a row of the training table's width that names none of its columns is data, also
         * when a feature is not a number (the error then names that column) */
        const bool wide = rr->layout && s->rd.nf == p->n_columns;
        const int64_t held = p->names ? names_held(&s->rd, p->names, F) : 0;
        const bool data = all_numbers(&s->rd) || (wide && (held == 0 || numbers_at(&s->rd, rr->layout, F)));
        header = (p->names && held == F) || !data;
    }
    if (header) {
        s->t.header_line = s->rd.rec_line;
        *have_row = false;
        gf_status st = set_names(ctx, s, true, s->rd.nf);
        rr->by_name = p->names != NULL;
        if (st != GF_OK || rr->by_name) return st == GF_OK ? header_columns(ctx, s, p->names, F) : st;
        for (int64_t j = 0; j < F; j++) s->feat[j] = j;
        rr->want_nf = F;
        return pad_names(ctx, s, F);
    }
    /* no header: the training table's layout when the first row has its column count */
    const bool layout = rr->layout && *have_row && s->rd.nf == p->n_columns;
    rr->want_nf = layout ? p->n_columns : F;
    for (int64_t j = 0; j < F; j++) s->feat[j] = layout ? rr->layout[j] : j;
    if (!layout) {
        free(rr->layout);
        rr->layout = NULL;
    }
    return layout ? copy_names_from(ctx, s, p->column_names, p->n_columns)
                  : copy_names_from(ctx, s, p->names, F);
}

/* The columns behind n encoded features (p's names and categories): one per plain feature and
 * one per categorical column, whose categories go to given[k]. *raw is malloc'd (borrowed
 * strings), *given too; GF_OK, or an error when the categories do not fit the names. */
static gf_status raw_columns(gf_ctx *ctx, const char *file, const gf_csv_rows_params *p, int64_t n,
                             const char ***raw, const gf_csv_category ***given, int64_t *n_raw) {
    *raw = calloc((size_t)n + (size_t)p->n_categories, sizeof **raw);
    *given = calloc((size_t)n + (size_t)p->n_categories, sizeof **given);
    if (!*raw || !*given) return nomem(ctx, file);
    int64_t k = 0, f = 0, ci = 0;
    while (f < n || ci < p->n_categories) {
        const gf_csv_category *c = ci < p->n_categories ? &p->categories[ci] : NULL;
        if (c && c->at == f) {
            if (c->n < 0 || c->at + c->n > n || !c->column)
                return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                        "csv: %s: categorical column %lld (at %lld, %lld "
                                        "categories) does not fit the %lld features",
                                        file, (long long)ci, (long long)c->at, (long long)c->n,
                                        (long long)n);
            (*given)[k] = c;
            (*raw)[k++] = c->column;
            f += c->n;
            ci++;
        } else if (f < n && (!c || c->at > f)) {
            (*raw)[k++] = p->names ? p->names[f] : NULL;
            f++;
        } else {
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "csv: %s: categorical column %s starts at feature %lld, out "
                                    "of order or past the %lld features",
                                    file, c && c->column ? c->column : "(null)",
                                    c ? (long long)c->at : -1LL, (long long)n);
        }
    }
    *n_raw = k;
    return GF_OK;
}

/* Rows of n_raw read columns (a categorical one holds its category's index, -1 unseen, NaN
 * missing) one-hot encoded into rows of n features; returns the new array or NULL. */
static float *expand_rows(const float *x, int64_t rows, int64_t n_raw,
                          const gf_csv_category *const *given, int64_t n, int64_t *unseen) {
    float *o = calloc((size_t)(rows * n > 0 ? rows * n : 1), sizeof *o);
    for (int64_t r = 0; o && r < rows; r++) {
        float *orow = o + r * n;
        for (int64_t k = 0, f = 0; k < n_raw; k++) {
            const float v = x[r * n_raw + k];
            if (!given[k]) {
                orow[f++] = v;
                continue;
            }
            if (v >= 0) orow[f + (int64_t)v] = 1.0f;
            else if (!isnan(v)) (*unseen)++;
            f += given[k]->n;
        }
    }
    return o;
}

static gf_status parse_rows(gf_ctx *ctx, const char *text, size_t len, const char *name,
                            int64_t n_features, const gf_csv_rows_params *params,
                            const gf_csv_category *const *given, gf_csv_rows *out);

/* gf_csv_parse_rows_with for encoded features with categorical columns: the raw columns are
 * read, then one-hot encoded. */
static gf_status parse_rows_categorical(gf_ctx *ctx, const char *text, size_t len,
                                        const char *file, int64_t n_features,
                                        const gf_csv_rows_params *p, gf_csv_rows *out) {
    const char **raw = NULL;
    const gf_csv_category **given = NULL;
    int64_t n_raw = 0;
    gf_status st = raw_columns(ctx, file, p, n_features, &raw, &given, &n_raw);
    gf_csv_rows_params q = *p;
    q.names = p->names ? raw : NULL;
    q.categories = NULL;
    q.n_categories = 0;
    if (st == GF_OK) st = parse_rows(ctx, text, len, file, n_raw, &q, given, out);
    if (st == GF_OK) {
        float *x = expand_rows(out->x, out->n, n_raw, given, n_features, &out->unseen);
        if (!x) {
            gf_csv_rows_free(out);
            st = nomem(ctx, file);
        } else {
            free(out->x);
            out->x = x;
            out->n_features = n_features;
        }
    }
    free(raw);
    free(given);
    return st;
}

gf_status gf_csv_parse_rows_with(gf_ctx *ctx, const char *text, size_t len, const char *name,
                                 int64_t n_features, const gf_csv_rows_params *params,
                                 gf_csv_rows *out) {
    const char *file = name ? name : "(memory)";
    if (!out) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "csv: %s: NULL output", file);
    memset(out, 0, sizeof *out);
    if (params && params->n_categories > 0 && params->categories && n_features >= 1 &&
        n_features <= (1 << 20))
        return parse_rows_categorical(ctx, text, len, file, n_features, params, out);
    return parse_rows(ctx, text, len, file, n_features, params, NULL, out);
}

/* The rows reader; given (NULL, or n_features entries): the categories of categorical columns. */
static gf_status parse_rows(gf_ctx *ctx, const char *text, size_t len, const char *name,
                            int64_t n_features, const gf_csv_rows_params *params,
                            const gf_csv_category *const *given, gf_csv_rows *out) {
    const char *file = name;
    gf_csv_rows_params p = params ? *params : gf_csv_rows_default_params();
    if (p.delimiter == '\0') p.delimiter = ',';
    if ((!text && len > 0) || n_features < 1 || n_features > (1 << 20) || p.skip_lines < 0 ||
        p.n_columns < 0 || p.delimiter == '"' || p.delimiter == '\n' || p.delimiter == '\r' ||
        (p.header != GF_CSV_HEADER && p.header != GF_CSV_NO_HEADER &&
         p.header != GF_CSV_SKLEARN_HEADER && p.header != GF_CSV_HEADER_AUTO))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "csv: %s: NULL text, %lld features (need 1 to 2^20) or bad "
                                "parameters (delimiter, skip_lines, header, n_columns)",
                                file, (long long)n_features);
    parse_state s;
    memset(&s, 0, sizeof s);
    s.allow_missing = p.allow_missing;
    s.t.file = file;
    s.rd.p = text;
    s.rd.end = text + len;
    s.rd.delim = p.delimiter;
    s.rd.line = 1;
    s.nfeat = n_features;
    skip_lines(&s.rd, p.skip_lines);
    int64_t *lines = NULL;
    bool oom = false, have_row = false;
    rows_read rr = {&p, find_layout(&p, n_features, &oom), false, n_features};
    gf_status st = GF_OK;
    s.feat = malloc((size_t)n_features * sizeof *s.feat);
    if (given) {
        s.is_cat = calloc((size_t)n_features, sizeof *s.is_cat);
        s.given = malloc((size_t)n_features * sizeof *s.given);
        for (int64_t k = 0; s.is_cat && s.given && k < n_features; k++)
            s.is_cat[k] = (s.given[k] = given[k]) != NULL;
        oom = oom || !s.is_cat || !s.given;
    }
    if (!s.feat || oom) st = nomem(ctx, file);
    else st = rows_head(ctx, &s, &rr, &have_row);
    while (st == GF_OK) {
        if (!have_row) {
            rec_status rs = next_record(&s.rd);
            if (rs == REC_EOF) break;
            if (rs != REC_OK) {
                st = record_error(ctx, &s, rs);
                break;
            }
        }
        have_row = false;
        st = parse_feature_row(ctx, &s, &rr, &lines);
    }
    if (st == GF_OK && s.rows == 0)
        st = gf_ctx_set_error(ctx, GF_ERR_FORMAT, "csv: %s: no data rows", file);
    if (st == GF_OK) {
        out->n = s.rows;
        out->n_features = n_features;
        out->x = s.x;
        out->lines = lines;
        s.x = NULL;
    } else {
        free(lines);
    }
    free(rr.layout);
    state_free(&s);
    return st;
}

gf_status gf_csv_parse_rows(gf_ctx *ctx, const char *text, size_t len, const char *name,
                            int64_t n_features, const char *const *names, gf_csv_rows *out) {
    gf_csv_rows_params p = gf_csv_rows_default_params();
    p.names = names;
    return gf_csv_parse_rows_with(ctx, text, len, name, n_features, &p, out);
}

gf_status gf_csv_load_rows_with(gf_ctx *ctx, const char *path, int64_t n_features,
                                const gf_csv_rows_params *params, gf_csv_rows *out) {
    if (out) memset(out, 0, sizeof *out);
    size_t len = 0;
    char *buf = read_text(ctx, path, &len);
    if (!buf) return gf_ctx_status(ctx);
    gf_status st = gf_csv_parse_rows_with(ctx, buf, len, path, n_features, params, out);
    free(buf);
    return st;
}

gf_status gf_csv_load_rows(gf_ctx *ctx, const char *path, int64_t n_features,
                           const char *const *names, gf_csv_rows *out) {
    gf_csv_rows_params p = gf_csv_rows_default_params();
    p.names = names;
    return gf_csv_load_rows_with(ctx, path, n_features, &p, out);
}
