/* Text into tokens (include/graft/text.h): UTF-8 checked code point by code point, an optional
 * lower-casing of the Latin, Greek and Cyrillic alphabets, and the word, character and byte
 * tokenisers. No locale and no Unicode tables: the few ranges below are the whole rule. */
#define _POSIX_C_SOURCE 200809L
#include "graft/text.h"
#include "core/internal.h"
#include "data/text_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gf_text_params gf_text_default_params(void) {
    gf_text_params p;
    memset(&p, 0, sizeof p);
    p.tokenizer = GF_TEXT_WORD;
    return p;
}

static const char *const tok_names[] = {"word", "char", "byte"};

const char *gf_text_tokenizer_name(gf_text_tokenizer t) {
    return (unsigned)t <= GF_TEXT_BYTE ? tok_names[t] : NULL;
}

gf_status gf_text_tokenizer_parse(gf_ctx *ctx, const char *name, gf_text_tokenizer *out) {
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, tok_names[i]) == 0) {
            *out = (gf_text_tokenizer)i;
            return GF_OK;
        }
    return gf_ctx_set_error(ctx, GF_ERR_INVALID, "unknown tokenizer '%s' (known: word, char, byte)",
                            name ? name : "(null)");
}

/* ---- UTF-8 -------------------------------------------------------------------------------- */

int gf_text_utf8_next(const unsigned char *s, size_t len, size_t i, uint32_t *cp) {
    const unsigned c = s[i];
    if (c == 0) return -1;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) n = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, v = c & 0x07, min = 0x10000;
    else return -1;
    if (i + (size_t)n > len) return -1;
    for (int k = 1; k < n; k++) {
        if ((s[i + k] & 0xC0) != 0x80) return -1;
        v = (v << 6) | (s[i + k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return -1;
    *cp = v;
    return n;
}

int64_t gf_text_utf8_check(const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        if (s[i] && s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int k = gf_text_utf8_next(s, len, i, &cp);
        if (k < 0) return (int64_t)i;
        i += (size_t)k;
    }
    return -1;
}

int gf_text_utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

gf_status gf_text_utf8_error(gf_ctx *ctx, const char *where, int64_t first_line, const char *text,
                             int64_t off) {
    int64_t line = first_line;
    for (int64_t i = 0; i < off; i++) line += text[i] == '\n';
    const unsigned char b = (unsigned char)text[off];
    return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                            "%s: line %lld: %s at byte %lld (0x%02X)", where, (long long)line,
                            b ? "invalid UTF-8" : "a NUL byte", (long long)off, b);
}

/* ---- character classes -------------------------------------------------------------------- */

uint32_t gf_text_lower(uint32_t c) {
    if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c == 0x130) return 'i';
    if (c == 0x178) return 0xFF;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return c | 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c + (c & 1);
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

static bool is_space(uint32_t c) {
    return c == ' ' || (c >= 9 && c <= 13) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200B) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

/* Combining marks, variation selectors, joiners and emoji modifiers: part of the token before. */
static bool is_mark(uint32_t c) {
    return (c >= 0x300 && c <= 0x36F) || (c >= 0x1AB0 && c <= 0x1AFF) ||
           (c >= 0x1DC0 && c <= 0x1DFF) || (c >= 0x20D0 && c <= 0x20FF) ||
           (c >= 0xFE00 && c <= 0xFE0F) || (c >= 0xFE20 && c <= 0xFE2F) || c == 0x200C ||
           c == 0x200D || (c >= 0x1F3FB && c <= 0x1F3FF) || (c >= 0xE0020 && c <= 0xE007F);
}

/* Punctuation and symbols: ASCII's, Latin-1's, the general punctuation, currency, arrows,
 * mathematical and technical symbols, shapes, dingbats, CJK and full-width punctuation,
 * emoji. Everything else that is not space is part of a word. */
static bool is_punct(uint32_t c) {
    if (c < 0x80) return !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                           (c >= 'A' && c <= 'Z'));
    if (c >= 0xA1 && c <= 0xBF)
        return !(c == 0xAA || c == 0xB5 || c == 0xBA || c == 0xB2 || c == 0xB3 || c == 0xB9 ||
                 (c >= 0xBC && c <= 0xBE));
    return c == 0xD7 || c == 0xF7 || (c >= 0x2010 && c <= 0x2027) ||
           (c >= 0x2030 && c <= 0x205E) || (c >= 0x20A0 && c <= 0x20CF) ||
           (c >= 0x2190 && c <= 0x2BFF) || (c >= 0x3001 && c <= 0x3004) ||
           (c >= 0x3008 && c <= 0x303F) || (c >= 0xFF01 && c <= 0xFF0F) ||
           (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
           (c >= 0xFF5B && c <= 0xFF65) || (c >= 0x1F000 && c <= 0x1FAFF);
}

/* ---- tokenisers --------------------------------------------------------------------------- */

/* The token being built and where tokens go. */
typedef struct tokenizer {
    gf_ctx *ctx;
    char *p;
    size_t n, cap;
    gf_text_token_fn fn;
    void *user;
    bool stop;     /* the callback asked to stop */
    gf_status st;  /* an error of the tokeniser itself */
} tokenizer;

static void put(tokenizer *t, uint32_t cp) {
    if (t->n + 4 > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        char *np = realloc(t->p, cap);
        if (!np) {
            t->st = gf_ctx_set_error(t->ctx, GF_ERR_NOMEM, "tokenizer: out of memory");
            return;
        }
        t->p = np;
        t->cap = cap;
    }
    t->n += (size_t)gf_text_utf8_put(cp, t->p + t->n);
}

static void flush(tokenizer *t) {
    if (t->n && !t->stop && t->st == GF_OK && !t->fn(t->user, t->p, t->n)) t->stop = true;
    t->n = 0;
}

void gf_text_byte_token(unsigned char byte, char out[8]) {
    static const char hex[] = "0123456789ABCDEF";
    memcpy(out, "<0x", 3);
    out[3] = hex[byte >> 4];
    out[4] = hex[byte & 15];
    out[5] = '>';
    out[6] = '\0';
}

/* The word tokeniser's step for code point cp; *cur: what the token being built is. */
static void word_step(tokenizer *t, uint32_t cp, bool joined, int *cur) {
    enum { NONE, WORD, SYMBOL };
    if (is_space(cp)) {
        flush(t);
        *cur = NONE;
    } else if ((is_mark(cp) || joined) && *cur != NONE) {
        put(t, cp);
    } else if (is_punct(cp)) {
        flush(t);
        put(t, cp);
        *cur = SYMBOL;
    } else {
        if (*cur != WORD) flush(t);
        put(t, cp);
        *cur = WORD;
    }
}

gf_status gf_text_tokenize(gf_ctx *ctx, const gf_text_params *params, const char *text,
                           size_t len, const char *where, int64_t first_line,
                           gf_text_token_fn fn, void *user) {
    const gf_text_params p = params ? *params : gf_text_default_params();
    if (!where) where = "text";
    if ((unsigned)p.tokenizer > GF_TEXT_BYTE || !fn || (len && !text))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: tokenizer %d is not a tokenizer (or "
                                "no text or callback)", where, (int)p.tokenizer);
    const unsigned char *s = (const unsigned char *)text;
    tokenizer t = {ctx, NULL, 0, 0, fn, user, false, GF_OK};
    int cur = 0;
    bool joined = false; /* the last code point was a zero-width joiner */
    for (size_t i = 0; i < len && t.st == GF_OK && !t.stop;) {
        uint32_t cp;
        const int k = gf_text_utf8_next(s, len, i, &cp);
        if (k < 0) {
            t.st = gf_text_utf8_error(ctx, where, first_line, text, (int64_t)i);
            break;
        }
        if (p.lowercase) cp = gf_text_lower(cp);
        if (p.tokenizer == GF_TEXT_BYTE) {
            char one[4];
            const int m = gf_text_utf8_put(cp, one);
            for (int j = 0; j < m && !t.stop; j++) {
                char tok[8];
                gf_text_byte_token((unsigned char)one[j], tok);
                t.stop = !fn(user, tok, 6);
            }
        } else if (p.tokenizer == GF_TEXT_CHAR) {
            put(&t, cp);
            flush(&t);
        } else {
            word_step(&t, cp, joined, &cur);
        }
        joined = cp == 0x200D;
        i += (size_t)k;
    }
    flush(&t);
    free(t.p);
    return t.st;
}

/* ---- tokens as strings -------------------------------------------------------------------- */

typedef struct tok_list {
    gf_ctx *ctx;
    gf_text_tokens *t;
    int64_t cap;
    gf_status st;
} tok_list;

static bool list_add(void *user, const char *tok, size_t len) {
    tok_list *l = user;
    if (l->t->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 16;
        char **nt = realloc(l->t->tok, sizeof *nt * (size_t)cap);
        if (!nt) goto nomem;
        l->t->tok = nt;
        l->cap = cap;
    }
    char *s = malloc(len + 1);
    if (!s) goto nomem;
    memcpy(s, tok, len);
    s[len] = '\0';
    l->t->tok[l->t->n++] = s;
    return true;
nomem:
    l->st = gf_ctx_set_error(l->ctx, GF_ERR_NOMEM, "tokenizer: out of memory");
    return false;
}

gf_status gf_text_tokens_of(gf_ctx *ctx, const gf_text_params *params, const char *text,
                            gf_text_tokens *out) {
    if (!out) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_text_tokens_of: NULL output");
    memset(out, 0, sizeof *out);
    if (!text) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_text_tokens_of: NULL text");
    tok_list l = {ctx, out, 0, GF_OK};
    gf_status st = gf_text_tokenize(ctx, params, text, strlen(text), "text", 1, list_add, &l);
    if (st == GF_OK) st = l.st;
    if (st != GF_OK) gf_text_tokens_free(out);
    return st;
}

void gf_text_tokens_free(gf_text_tokens *t) {
    if (!t) return;
    for (int64_t i = 0; i < t->n; i++) free(t->tok[i]);
    free(t->tok);
    memset(t, 0, sizeof *t);
}
