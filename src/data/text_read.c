/* Labelled text files (include/graft/text.h): JSON arrays of objects, JSON lines, CSV and TSV,
 * read as a stream of records so that no size taken from the file is allocated before it is
 * checked against the limits: a 100 MB line stops at the record limit, not in malloc. */
#define _POSIX_C_SOURCE 200809L
#include "graft/text.h"
#include "core/internal.h"
#include "data/text_internal.h"
#include "io/io_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

gf_text_read_params gf_text_read_default_params(void) {
    gf_text_read_params p;
    memset(&p, 0, sizeof p);
    return p;
}

void gf_text_corpus_free(gf_text_corpus *c) {
    if (!c) return;
    for (int64_t i = 0; i < c->n; i++) {
        free(c->texts[i]);
        free(c->labels[i]);
        if (c->tags) free(c->tags[i]);
    }
    free(c->texts);
    free(c->labels);
    free(c->tags);
    free(c->n_tags);
    free(c->lines);
    memset(c, 0, sizeof *c);
}

/* ---- the byte stream ---------------------------------------------------------------------- */

typedef struct rd {
    gf_ctx *ctx;
    const char *name;
    FILE *f;
    const unsigned char *mem;
    size_t mem_len;
    unsigned char buf[1 << 16];
    size_t pos, len;
    int64_t line, offset, max_file, max_record, max_examples;
    int need, lo, hi; /* the UTF-8 decoder: continuation bytes still due, the next one's range */
    int64_t seq_off, seq_line; /* where the code point being decoded starts */
    int seq_byte;
    gf_status st;     /* the first error of this read (ctx may hold an older one) */
    char *rec; /* the current record, NUL-terminated */
    size_t rec_n, rec_cap;
    int64_t rec_line, rec_offset; /* where it starts */
    const gf_text_read_params *p;
    const char *text_field, *label_field, *tags_field, *tokens_field;
    gf_text_corpus *out;
    int64_t cap;
} rd;

static gf_status rd_fail(rd *r, gf_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static gf_status rd_fail(rd *r, gf_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    gf_ctx_set_errorv(r->ctx, s, fmt, ap);
    va_end(ap);
    if (r->st == GF_OK) r->st = s;
    return s;
}

/* Checks byte c against the UTF-8 decoder state (the ranges of the Unicode standard's table
 * 3-7: no overlong forms, surrogates or code points above U+10FFFF; no NUL bytes either). */
static bool utf8_step(rd *r, int c) {
    if (r->need == 0) {
        r->lo = 0x80;
        r->hi = 0xBF;
        r->seq_off = r->offset;
        r->seq_line = r->line;
        r->seq_byte = c;
        if (c < 0x80) return c != 0;
        if (c >= 0xC2 && c <= 0xDF) r->need = 1;
        else if (c >= 0xE0 && c <= 0xEF) r->need = 2;
        else if (c >= 0xF0 && c <= 0xF4) r->need = 3;
        else return false;
        if (c == 0xE0) r->lo = 0xA0;
        if (c == 0xED) r->hi = 0x9F;
        if (c == 0xF0) r->lo = 0x90;
        if (c == 0xF4) r->hi = 0x8F;
        return true;
    }
    if (c < r->lo || c > r->hi) return false;
    r->need--;
    r->lo = 0x80;
    r->hi = 0xBF;
    return true;
}

/* The error at a bad byte c (-1: the end of the input), named at the code point's first byte. */
static int utf8_fail(rd *r, int c) {
    const int b = r->need ? r->seq_byte : c < 0 ? 0 : c;
    rd_fail(r, GF_ERR_FORMAT, "%s: line %lld: %s at byte %lld (0x%02X)", r->name,
            (long long)r->seq_line, c < 0 ? "UTF-8 cut short by the end of the input"
            : b ? "invalid UTF-8" : "a NUL byte", (long long)r->seq_off, b);
    return -1;
}

/* The next byte, or -1 at the end (or on an error, set in ctx: a read error, the file over
 * its size limit, invalid UTF-8). */
static int rd_get(rd *r) {
    if (r->pos == r->len) {
        if (!r->mem) {
            r->len = fread(r->buf, 1, sizeof r->buf, r->f);
            r->pos = 0;
        }
        if (r->pos == r->len) {
            if (!r->mem && ferror(r->f))
                rd_fail(r, GF_ERR_IO, "%s: read error: %s", r->name, strerror(errno));
            else if (r->need && r->st == GF_OK)
                utf8_fail(r, -1);
            return -1;
        }
    }
    if (r->offset >= r->max_file) {
        rd_fail(r, GF_ERR_FORMAT, "%s: larger than %lld bytes (limit data-bytes)",
                         r->name, (long long)r->max_file);
        return -1;
    }
    const int c = r->mem ? r->mem[r->pos] : r->buf[r->pos];
    if (!utf8_step(r, c)) return utf8_fail(r, c);
    r->pos++;
    r->offset++;
    if (c == '\n') r->line++;
    return c;
}

static int rd_peek(rd *r) {
    if (r->pos == r->len && !r->mem) {
        r->len = fread(r->buf, 1, sizeof r->buf, r->f);
        r->pos = 0;
    }
    return r->pos < r->len ? (r->mem ? r->mem[r->pos] : r->buf[r->pos]) : -1;
}

static void rec_start(rd *r) {
    r->rec_n = 0;
    r->rec_line = r->line;
    r->rec_offset = r->offset;
}

static bool rec_push(rd *r, int c) {
    if ((int64_t)r->rec_n + 1 > r->max_record) {
        rd_fail(r, GF_ERR_FORMAT,
                         "%s: line %lld: a record longer than %lld bytes (limit "
                         "max_record_bytes)", r->name, (long long)r->rec_line,
                         (long long)r->max_record);
        return false;
    }
    if (r->rec_n + 2 > r->rec_cap) {
        size_t cap = r->rec_cap ? 2 * r->rec_cap : 4096;
        if ((int64_t)cap > r->max_record + 2) cap = (size_t)r->max_record + 2;
        char *n = realloc(r->rec, cap);
        if (!n) {
            rd_fail(r, GF_ERR_NOMEM, "%s: out of memory", r->name);
            return false;
        }
        r->rec = n;
        r->rec_cap = cap;
    }
    r->rec[r->rec_n++] = (char)c;
    r->rec[r->rec_n] = '\0';
    return true;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Adds an entry (takes text and label, either may be NULL for out of memory: an error). */
static bool add_entry(rd *r, char *text, char *label, bool has_label) {
    gf_text_corpus *c = r->out;
    if (!text || (has_label && !label)) goto nomem;
    if (c->n >= r->max_examples) {
        free(text);
        free(label);
        rd_fail(r, GF_ERR_FORMAT, "%s: line %lld: more than %lld examples (limit "
                         "max_examples)", r->name, (long long)r->rec_line,
                         (long long)r->max_examples);
        return false;
    }
    if (c->n == r->cap) {
        int64_t cap = r->cap ? 2 * r->cap : 256;
        char **t = realloc(c->texts, sizeof *t * (size_t)cap);
        if (t) c->texts = t;
        char **l = t ? realloc(c->labels, sizeof *l * (size_t)cap) : NULL;
        if (l) c->labels = l;
        int64_t *ln = l ? realloc(c->lines, sizeof *ln * (size_t)cap) : NULL;
        if (ln) c->lines = ln;
        char **tg = ln ? realloc(c->tags, sizeof *tg * (size_t)cap) : NULL;
        if (tg) c->tags = tg;
        int64_t *nt = tg ? realloc(c->n_tags, sizeof *nt * (size_t)cap) : NULL;
        if (!nt) goto nomem;
        c->n_tags = nt;
        r->cap = cap;
    }
    c->tags[c->n] = NULL;
    c->n_tags[c->n] = 0;
    c->texts[c->n] = text;
    c->labels[c->n] = label;
    c->lines[c->n++] = r->rec_line;
    return true;
nomem:
    free(text);
    free(label);
    rd_fail(r, GF_ERR_NOMEM, "%s: out of memory", r->name);
    return false;
}

/* An entry without a label: an error, skipped, or kept, as the parameters say. */
static bool unlabelled(rd *r, char *text, const char *why) {
    if (r->p->unlabelled == GF_TEXT_UNLABELLED_KEEP) return add_entry(r, text, NULL, false);
    free(text);
    if (r->p->unlabelled == GF_TEXT_UNLABELLED_SKIP) {
        if (!r->out->skipped++) r->out->first_skipped_line = r->rec_line;
        return true;
    }
    rd_fail(r, GF_ERR_FORMAT, "%s: line %lld: %s (no label: give the label's "
                     "name, or skip unlabelled entries)", r->name, (long long)r->rec_line, why);
    return false;
}

/* ---- JSON --------------------------------------------------------------------------------- */

static bool is_ws(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool is_space_byte(char c) { return is_ws((unsigned char)c) || c == '\f' || c == '\v'; }

/* A JSON label as a string: strings as they are, numbers as JSON writes them, booleans. */
static char *json_label(const cJSON *l) {
    char num[64];
    if (cJSON_IsString(l)) return dup_n(l->valuestring, strlen(l->valuestring));
    if (cJSON_IsBool(l)) return dup_n(cJSON_IsTrue(l) ? "true" : "false", cJSON_IsTrue(l) ? 4 : 5);
    const double v = l->valuedouble;
    if (v == floor(v) && fabs(v) < 9e15) snprintf(num, sizeof num, "%lld", (long long)v);
    else snprintf(num, sizeof num, "%.17g", v);
    return dup_n(num, strlen(num));
}

/* The strings of a JSON array a (n of them, *bytes in all with their NULs) checked: what is
 * wrong with it (naming the element), or NULL. tokens: no white space in them either. */
static const char *string_array(const cJSON *a, bool tokens, int64_t *n, size_t *bytes,
                                char *why, size_t cap) {
    const char *what = tokens ? "token" : "tag";
    *n = 0;
    *bytes = 0;
    if (!cJSON_IsArray(a)) {
        snprintf(why, cap, "the %ss are not an array of strings", what);
        return why;
    }
    for (const cJSON *e = a->child; e; e = e->next, ++*n) {
        if (!cJSON_IsString(e) || !e->valuestring[0]) {
            snprintf(why, cap, "%s %lld is %s", what, (long long)*n + 1,
                     cJSON_IsString(e) ? "empty" : "not a string");
            return why;
        }
        for (const char *c = e->valuestring; tokens && *c; c++)
            if (is_space_byte(*c)) {
                snprintf(why, cap, "token %lld (\"%.40s\") holds white space", (long long)*n + 1,
                         e->valuestring);
                return why;
            }
        *bytes += strlen(e->valuestring) + 1;
    }
    return NULL;
}

/* The strings of a checked array back to back, each ended by sep (malloc'd), or NULL. */
static char *join(const cJSON *a, size_t bytes, char sep) {
    char *out = malloc(bytes ? bytes : 1), *o = out;
    if (!out) return NULL;
    out[0] = '\0';
    for (const cJSON *e = a->child; e; e = e->next) {
        const size_t len = strlen(e->valuestring);
        memcpy(o, e->valuestring, len);
        o[len] = sep;
        o += len + 1;
    }
    if (sep != '\0' && o > out) o[-1] = '\0';
    return out;
}

/* A tagged entry: its tags, and the text or the tokens joined by spaces. */
static bool tagged_entry(rd *r, const cJSON *o, const cJSON *tags) {
    char why[128];
    int64_t n_tags, n_tok;
    size_t tag_bytes, tok_bytes;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, r->text_field),
                *tok = cJSON_GetObjectItemCaseSensitive(o, r->tokens_field);
    const char *bad = string_array(tags, false, &n_tags, &tag_bytes, why, sizeof why);
    const char *key = r->tags_field;
    if (!bad && tok) {
        key = r->tokens_field;
        bad = string_array(tok, true, &n_tok, &tok_bytes, why, sizeof why);
        if (!bad && n_tok != n_tags) {
            snprintf(why, sizeof why, "%lld tokens but %lld tags", (long long)n_tok,
                     (long long)n_tags);
            bad = why;
        }
    } else if (!bad && (!t || !cJSON_IsString(t))) {
        key = r->text_field;
        bad = t ? "the text is not a string" : "no text (nor tokens)";
    }
    if (!bad && n_tags == 0) bad = "no tags (an entry needs at least one token)";
    if (bad)
        return rd_fail(r, GF_ERR_FORMAT, "%s: line %lld: %s (key \"%s\")", r->name,
                       (long long)r->rec_line, bad, key), false;
    char *text = tok ? join(tok, tok_bytes, ' ') : dup_n(t->valuestring, strlen(t->valuestring));
    char *block = join(tags, tag_bytes, '\0');
    if (!block) {
        free(text);
        text = NULL; /* add_entry reports it */
    }
    if (!add_entry(r, text, NULL, false)) {
        free(block);
        return false;
    }
    r->out->tags[r->out->n - 1] = block;
    r->out->n_tags[r->out->n - 1] = n_tags;
    return true;
}

/* The current record as one JSON object with a text and maybe a label (or tags). */
static bool json_entry(rd *r) {
    char what[64];
    snprintf(what, sizeof what, "line %lld", (long long)r->rec_line);
    const gf_status js = gf_json_check(r->ctx, r->rec, r->rec_n, r->name, what);
    if (js != GF_OK) {
        if (r->st == GF_OK) r->st = js;
        return false;
    }
    cJSON *o = cJSON_ParseWithLength(r->rec, r->rec_n);
    const char *bad = !o ? "not valid JSON" : !cJSON_IsObject(o) ? "not a JSON object" : NULL;
    const cJSON *t = bad ? NULL : cJSON_GetObjectItemCaseSensitive(o, r->text_field);
    const cJSON *l = bad ? NULL : cJSON_GetObjectItemCaseSensitive(o, r->label_field);
    const cJSON *tags = bad ? NULL : cJSON_GetObjectItemCaseSensitive(o, r->tags_field);
    if (tags && cJSON_IsNull(tags)) tags = NULL;
    if (!bad && r->out->n + r->out->skipped > 0 && r->out->tagged != (tags != NULL)) {
        bad = tags ? "an entry with tags after entries without"
                   : "an entry without tags after tagged entries";
    } else if (!bad && tags) {
        r->out->tagged = true;
        const bool ok = tagged_entry(r, o, tags);
        cJSON_Delete(o);
        return ok;
    }
    if (bad) (void)0; /* said below */
    else if (!t) bad = "no text";
    else if (!bad && !cJSON_IsString(t)) bad = "the text is not a string";
    else if (!bad && l && !cJSON_IsNull(l) && !cJSON_IsString(l) && !cJSON_IsNumber(l) &&
             !cJSON_IsBool(l))
        bad = "the label is not a string, a number or a boolean";
    bool ok = !bad;
    if (bad)
        rd_fail(r, GF_ERR_FORMAT, "%s: line %lld: %s (key \"%s\")", r->name,
                         (long long)r->rec_line, bad,
                         strncmp(bad, "the label", 9) == 0 ? r->label_field
                         : strncmp(bad, "an entry", 8) == 0 ? r->tags_field : r->text_field);
    else if (!l || cJSON_IsNull(l))
        ok = unlabelled(r, dup_n(t->valuestring, strlen(t->valuestring)), "an entry without a label");
    else
        ok = add_entry(r, dup_n(t->valuestring, strlen(t->valuestring)), json_label(l), true);
    cJSON_Delete(o);
    return ok;
}


/* JSON lines, or (plain) lines of text without labels. */
static gf_status read_jsonl(rd *r, bool plain) {
    for (;;) {
        rec_start(r);
        int c;
        bool blank = true;
        while ((c = rd_get(r)) >= 0 && c != '\n') {
            if (!is_ws(c)) blank = false;
            if (!rec_push(r, c)) return r->st;
        }
        if (r->st != GF_OK) return r->st;
        if (plain && r->rec_n && r->rec[r->rec_n - 1] == '\r') r->rec[--r->rec_n] = '\0';
        if (!blank && !(plain ? unlabelled(r, dup_n(r->rec, r->rec_n), "a line of text")
                              : json_entry(r)))
            return r->st;
        if (c < 0) return GF_OK;
    }
}

/* One element of the top-level array, from its '{' to the matching '}', into the record. */
static bool json_element(rd *r, int first) {
    rec_start(r);
    if (first != '{') {
        rd_fail(r, GF_ERR_FORMAT, "%s: line %lld: an element of the array is not "
                         "a JSON object", r->name, (long long)r->line);
        return false;
    }
    int depth = 0, c = first;
    bool in_str = false, esc = false;
    do {
        if (!rec_push(r, c)) return false;
        if (in_str) {
            if (esc) esc = false;
            else if (c == '\\') esc = true;
            else if (c == '"') in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
        if (depth == 0) return json_entry(r);
    } while ((c = rd_get(r)) >= 0);
    if (r->st == GF_OK)
        rd_fail(r, GF_ERR_FORMAT, "%s: line %lld: the object that starts here "
                         "never ends", r->name, (long long)r->rec_line);
    return false;
}

static int skip_ws(rd *r) {
    int c;
    while ((c = rd_get(r)) >= 0 && is_ws(c)) {
    }
    return c;
}

static gf_status read_json(rd *r) {
    int c = skip_ws(r);
    if (c != '[')
        return r->st != GF_OK ? r->st
               : rd_fail(r, GF_ERR_FORMAT, "%s: line %lld: not a JSON array (of "
                                  "objects with a text and a label)", r->name, (long long)r->line);
    c = skip_ws(r);
    if (c == ']') c = -2;
    while (c != -2) {
        if (!json_element(r, c)) return r->st;
        c = skip_ws(r);
        if (c == ']') break;
        if (c != ',')
            return r->st != GF_OK ? r->st
                   : rd_fail(r, GF_ERR_FORMAT, "%s: line %lld: expected ',' or "
                                      "']' after an element", r->name, (long long)r->line);
        c = skip_ws(r);
    }
    c = skip_ws(r);
    if (c >= 0)
        return rd_fail(r, GF_ERR_FORMAT, "%s: line %lld: text after the array",
                                r->name, (long long)r->line);
    return r->st;
}

/* ---- CSV and TSV ------------------------------------------------------------------------- */

/* One record into r->rec as fields separated by NUL bytes (*nf of them); false at the end of
 * the input (*nf == 0) or on an error. Quotes follow RFC 4180. */
static bool csv_record(rd *r, char delim, int64_t *nf) {
    *nf = 0;
    int c;
    do {
        rec_start(r);
        c = rd_get(r);
    } while (c == '\n' || c == '\r');
    if (c < 0) return false;
    bool quoted = false, field_start = true; /* a quote opens a field only at its start */
    *nf = 1;
    for (; c >= 0; c = rd_get(r)) {
        if (quoted) {
            if (c == '"' && rd_peek(r) == '"') c = rd_get(r);
            else if (c == '"') {
                quoted = false;
                continue;
            }
        } else if (c == '"' && field_start) {
            quoted = true;
            field_start = false;
            continue;
        } else if (c == delim) {
            if (!rec_push(r, 0)) return false;
            ++*nf;
            field_start = true;
            continue;
        } else if (c == '\n') {
            break;
        } else if (c == '\r' && rd_peek(r) == '\n') {
            continue;
        }
        field_start = false;
        if (!rec_push(r, c)) return false;
    }
    if (quoted) {
        if (r->st == GF_OK)
            rd_fail(r, GF_ERR_FORMAT, "%s: line %lld: a quoted field never ends", r->name,
                    (long long)r->rec_line);
        return false;
    }
    if (!rec_push(r, 0)) return false;
    r->rec_n--; /* the final NUL ends the last field */
    return r->st == GF_OK;
}

static const char *csv_field(const rd *r, int64_t j) {
    const char *s = r->rec;
    for (int64_t k = 0; k < j; k++) s += strlen(s) + 1;
    return s;
}

static int64_t csv_find(const rd *r, int64_t nf, const char *name) {
    for (int64_t j = 0; j < nf; j++)
        if (strcmp(csv_field(r, j), name) == 0) return j;
    return -1;
}

static gf_status read_csv(rd *r, char delim) {
    int64_t nf, hf;
    if (!csv_record(r, delim, &hf))
        return r->st != GF_OK ? r->st
               : rd_fail(r, GF_ERR_FORMAT, "%s: empty: no header line", r->name);
    const int64_t tj = csv_find(r, hf, r->text_field), lj = csv_find(r, hf, r->label_field);
    if (tj < 0 || (lj < 0 && r->p->unlabelled != GF_TEXT_UNLABELLED_KEEP))
        return rd_fail(r, GF_ERR_FORMAT, "%s: line %lld: the header has no column "
                                "\"%s\" (the %s)", r->name, (long long)r->rec_line,
                                tj < 0 ? r->text_field : r->label_field, tj < 0 ? "text" : "label");
    while (csv_record(r, delim, &nf)) {
            if (nf != hf)
            return rd_fail(r, GF_ERR_FORMAT, "%s: line %lld: %lld fields, the header "
                                    "has %lld", r->name, (long long)r->rec_line, (long long)nf,
                                    (long long)hf);
        const char *t = csv_field(r, tj), *l = lj >= 0 ? csv_field(r, lj) : "";
        char *text = dup_n(t, strlen(t));
        bool ok = l[0] ? add_entry(r, text, dup_n(l, strlen(l)), true)
                       : unlabelled(r, text, "an empty label");
        if (!ok) return r->st;
    }
    return r->st;
}

/* ---- the whole ---------------------------------------------------------------------------- */

static gf_text_format format_of(const char *name, const char *text, size_t len) {
    const char *dot = name ? strrchr(name, '.') : NULL;
    if (dot && strcmp(dot, ".json") == 0) return GF_TEXT_JSON;
    if (dot && (strcmp(dot, ".jsonl") == 0 || strcmp(dot, ".ndjson") == 0)) return GF_TEXT_JSONL;
    if (dot && strcmp(dot, ".csv") == 0) return GF_TEXT_CSV;
    if (dot && (strcmp(dot, ".tsv") == 0 || strcmp(dot, ".tab") == 0)) return GF_TEXT_TSV;
    if (dot && strcmp(dot, ".txt") == 0) return GF_TEXT_LINES;
    size_t i = 0;
    while (text && i < len && is_ws((unsigned char)text[i])) i++;
    if (text && i < len && text[i] == '[') return GF_TEXT_JSON;
    if (text && i < len && text[i] == '{') return GF_TEXT_JSONL;
    return GF_TEXT_CSV;
}

static gf_status run(gf_ctx *ctx, rd *r, const gf_text_read_params *params, gf_text_corpus *out) {
    const gf_text_read_params p = params ? *params : gf_text_read_default_params();
    r->p = &p;
    r->out = out;
    r->text_field = p.text_field ? p.text_field : "text";
    r->label_field = p.label_field ? p.label_field : "label";
    r->tags_field = p.tags_field ? p.tags_field : "tags";
    r->tokens_field = p.tokens_field ? p.tokens_field : "tokens";
    r->max_record = p.max_record_bytes > 0 ? p.max_record_bytes : GF_TEXT_MAX_RECORD_BYTES;
    r->max_examples = p.max_examples > 0 ? p.max_examples : GF_TEXT_MAX_EXAMPLES;
    r->line = 1;
    gf_status st;
    if ((unsigned)p.format > GF_TEXT_LINES || (unsigned)p.unlabelled > GF_TEXT_UNLABELLED_KEEP)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: format %d or unlabelled %d out of range",
                                r->name, (int)p.format, (int)p.unlabelled);
    /* a UTF-8 byte order mark is not part of the text */
    if (rd_peek(r) == 0xEF) {
        size_t save = r->pos;
        if (!(rd_get(r) == 0xEF && rd_get(r) == 0xBB && rd_get(r) == 0xBF)) {
            r->pos = save;
            r->offset = 0;
            r->need = 0;
        }
    }
    out->format = p.format;
    if (out->format == GF_TEXT_FORMAT_AUTO)
        out->format = format_of(r->name, (const char *)(r->mem ? r->mem : r->buf) + r->pos,
                                r->len - r->pos);
    switch (out->format) {
    case GF_TEXT_JSON: st = read_json(r); break;
    case GF_TEXT_JSONL: st = read_jsonl(r, false); break;
    case GF_TEXT_LINES: st = read_jsonl(r, true); break;
    case GF_TEXT_TSV: st = read_csv(r, '\t'); break;
    default: st = read_csv(r, ','); break;
    }
    if (st == GF_OK) st = r->st;
    if (!out->tagged) { /* per-sequence labels: no tags to keep */
        free(out->tags);
        free(out->n_tags);
        out->tags = NULL;
        out->n_tags = NULL;
    }
    free(r->rec);
    if (st != GF_OK) gf_text_corpus_free(out);
    return st;
}

gf_status gf_text_parse(gf_ctx *ctx, const char *text, size_t len, const char *name,
                        const gf_text_read_params *params, gf_text_corpus *out) {
    if (!out) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_text_parse: NULL output");
    memset(out, 0, sizeof *out);
    rd *r = calloc(1, sizeof *r);
    if (!r) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    r->ctx = ctx;
    r->name = name ? name : "text";
    r->mem = (const unsigned char *)(text ? text : "");
    r->len = r->mem_len = text ? len : 0;
    const int64_t lim = params && params->max_file_bytes > 0 ? params->max_file_bytes
                                                             : gf_ctx_limits(ctx)->data_bytes;
    r->max_file = lim;
    gf_status st = (int64_t)len > lim
                       ? gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: %zu bytes, more than %lld "
                                          "(limit data-bytes)", r->name, len, (long long)lim)
                       : run(ctx, r, params, out);
    free(r);
    return st;
}

gf_status gf_text_read(gf_ctx *ctx, const char *path, const gf_text_read_params *params,
                       gf_text_corpus *out) {
    if (!out) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_text_read: NULL output");
    memset(out, 0, sizeof *out);
    if (!path) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_text_read: NULL path");
    const int64_t lim = params && params->max_file_bytes > 0 ? params->max_file_bytes
                                                             : gf_ctx_limits(ctx)->data_bytes;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return gf_ctx_set_error(ctx, GF_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return gf_ctx_set_error(ctx, GF_ERR_IO, "%s: a folder, not a text file", path);
    if (S_ISREG(sb.st_mode) && sb.st_size > lim)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: %lld bytes, more than %lld (limit "
                                "data-bytes)", path, (long long)sb.st_size, (long long)lim);
    rd *r = calloc(1, sizeof *r);
    FILE *f = r ? fopen(path, "rb") : NULL;
    if (!f) {
        free(r);
        return r ? gf_ctx_set_error(ctx, GF_ERR_IO, "%s: cannot open: %s", path, strerror(errno))
                 : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    }
    r->ctx = ctx;
    r->name = path;
    r->f = f;
    r->max_file = lim;
    gf_status st = run(ctx, r, params, out);
    fclose(f);
    free(r);
    return st;
}
