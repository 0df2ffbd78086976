/* The vocabulary of a training text and the encoding of text into padded ids
 * (include/graft/text.h): counting, torchtext's order (count, then the token's bytes), the JSON
 * form a bundle carries, and byte fallback. */
#define _POSIX_C_SOURCE 200809L
#include "graft/text.h"
#include "core/internal.h"
#include "data/text_internal.h"
#include "io/io_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gf_text_vocab {
    int refs;
    gf_text_params params;
    int64_t n, n_special; /* n_special: <pad>, <unk> and (byte fallback) the 256 byte tokens */
    char **tok;           /* [n] */
    int64_t *count;       /* [n] */
    int64_t total;
    gf_text_map map;      /* token -> id */
};

/* ---- the string map ----------------------------------------------------------------------- */

static uint64_t fnv(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

bool gf_text_map_init(gf_text_map *m, int64_t expect) {
    memset(m, 0, sizeof *m);
    m->cap = 64;
    while (m->cap < 2 * expect) m->cap *= 2;
    m->keys = calloc((size_t)m->cap, sizeof *m->keys);
    m->vals = malloc(sizeof *m->vals * (size_t)m->cap);
    return m->keys && m->vals;
}

void gf_text_map_free(gf_text_map *m) {
    for (int64_t i = 0; m->keys && i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static int64_t slot_of(const gf_text_map *m, const char *key, size_t len) {
    int64_t i = (int64_t)(fnv(key, len) & (uint64_t)(m->cap - 1));
    while (m->keys[i] && !(strncmp(m->keys[i], key, len) == 0 && m->keys[i][len] == '\0'))
        i = (i + 1) & (m->cap - 1);
    return i;
}

int64_t gf_text_map_get(const gf_text_map *m, const char *key, size_t len) {
    if (!m->keys) return -1;
    const int64_t i = slot_of(m, key, len);
    return m->keys[i] ? m->vals[i] : -1;
}

static bool grow(gf_text_map *m) {
    gf_text_map big = {0, 2 * m->cap, NULL, NULL};
    big.keys = calloc((size_t)big.cap, sizeof *big.keys);
    big.vals = malloc(sizeof *big.vals * (size_t)big.cap);
    if (!big.keys || !big.vals) {
        free(big.keys);
        free(big.vals);
        return false;
    }
    for (int64_t i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            const int64_t j = slot_of(&big, m->keys[i], strlen(m->keys[i]));
            big.keys[j] = m->keys[i];
            big.vals[j] = m->vals[i];
        }
    big.n = m->n;
    free(m->keys);
    free(m->vals);
    *m = big;
    return true;
}

int64_t gf_text_map_put(gf_text_map *m, const char *key, size_t len, int64_t val, bool *added) {
    *added = false;
    if (2 * (m->n + 1) > m->cap && !grow(m)) return -1;
    const int64_t i = slot_of(m, key, len);
    if (m->keys[i]) return i;
    char *k = malloc(len + 1);
    if (!k) return -1;
    memcpy(k, key, len);
    k[len] = '\0';
    m->keys[i] = k;
    m->vals[i] = val;
    m->n++;
    *added = true;
    return i;
}

char *gf_text_lower_str(const char *s) {
    const size_t len = strlen(s);
    char *out = malloc(len + 1); /* lower case is never longer here (İ -> i is shorter) */
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = gf_text_utf8_next((const unsigned char *)s, len, i, &cp);
        if (k < 0) { /* not UTF-8: kept as it is */
            out[o++] = s[i++];
            continue;
        }
        o += (size_t)gf_text_utf8_put(gf_text_lower(cp), out + o);
        i += (size_t)k;
    }
    out[o] = '\0';
    return out;
}

/* ---- building ----------------------------------------------------------------------------- */

typedef struct counter {
    gf_ctx *ctx;
    gf_text_map map; /* token -> index into counts */
    int64_t *counts, cap;
    int64_t max_distinct, total;
    const char *name;
    gf_status st;
} counter;

static bool count_token(void *user, const char *tok, size_t len) {
    counter *c = user;
    bool added;
    const int64_t slot = gf_text_map_put(&c->map, tok, len, c->map.n, &added);
    if (slot < 0) goto nomem;
    const int64_t k = c->map.vals[slot];
    if (added) {
        if (c->map.n > c->max_distinct) {
            c->st = gf_ctx_set_error(c->ctx, GF_ERR_FORMAT,
                             "%s: more than %lld distinct tokens (limit max_vocab)", c->name,
                             (long long)c->max_distinct);
            return false;
        }
        if (k >= c->cap) {
            int64_t cap = c->cap ? 2 * c->cap : 1024;
            int64_t *nc = realloc(c->counts, sizeof *nc * (size_t)cap);
            if (!nc) goto nomem;
            c->counts = nc;
            c->cap = cap;
        }
        c->counts[k] = 0;
    }
    c->counts[k]++;
    c->total++;
    return true;
nomem:
    c->st = gf_ctx_set_error(c->ctx, GF_ERR_NOMEM, "%s: out of memory counting tokens", c->name);
    return false;
}

typedef struct cand {
    const char *tok;
    int64_t count;
} cand;

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->tok, y->tok); /* byte order: code point order for UTF-8 */
}

gf_text_vocab_params gf_text_vocab_default_params(void) {
    gf_text_vocab_params p;
    memset(&p, 0, sizeof p);
    p.min_count = 1;
    return p;
}

static gf_text_vocab *vocab_alloc(const gf_text_params *p, int64_t n) {
    gf_text_vocab *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->refs = 1;
    v->params = *p;
    v->tok = calloc((size_t)(n > 0 ? n : 1), sizeof *v->tok);
    v->count = calloc((size_t)(n > 0 ? n : 1), sizeof *v->count);
    if (!v->tok || !v->count || !gf_text_map_init(&v->map, n)) {
        gf_text_vocab_free(v);
        return NULL;
    }
    return v;
}

/* Appends token tok (id v->n) with its count; false when out of memory or seen twice. */
static bool vocab_add(gf_text_vocab *v, const char *tok, int64_t count) {
    bool added;
    const size_t len = strlen(tok);
    if (gf_text_map_put(&v->map, tok, len, v->n, &added) < 0 || !added) return false;
    if (!(v->tok[v->n] = malloc(len + 1))) return false;
    memcpy(v->tok[v->n], tok, len + 1);
    v->count[v->n++] = count;
    return true;
}

static bool uses_bytes(const gf_text_params *p) {
    return p->tokenizer == GF_TEXT_BYTE || p->byte_fallback;
}

/* The vocabulary of the counted tokens c, in torchtext's order. */
static gf_text_vocab *vocab_of_counts(const gf_text_params *p, const gf_text_vocab_params *vp,
                                      counter *c) {
    const int64_t n_special = uses_bytes(p) ? 258 : 2;
    cand *cs = malloc(sizeof *cs * (size_t)(c->map.n ? c->map.n : 1));
    if (!cs) return NULL;
    int64_t k = 0, unk = 0, bytes[256] = {0};
    for (int64_t i = 0; i < c->map.cap; i++) {
        if (!c->map.keys[i]) continue;
        const char *t = c->map.keys[i];
        const int64_t cnt = c->counts[c->map.vals[i]];
        if (p->tokenizer == GF_TEXT_BYTE) bytes[strtol(t + 3, NULL, 16) & 255] = cnt;
        else if (cnt >= vp->min_count) cs[k++] = (cand){t, cnt};
        else unk += cnt;
    }
    qsort(cs, (size_t)k, sizeof *cs, cmp_cand);
    int64_t keep = k;
    if (vp->max_size > 0 && keep > vp->max_size - n_special) keep = vp->max_size - n_special;
    for (int64_t i = keep; i < k; i++) unk += cs[i].count;
    gf_text_vocab *v = vocab_alloc(p, n_special + keep);
    bool ok = v && vocab_add(v, "<pad>", 0) && vocab_add(v, "<unk>", unk);
    for (int b = 0; ok && n_special > 2 && b < 256; b++) {
        char t[8];
        gf_text_byte_token((unsigned char)b, t);
        ok = vocab_add(v, t, bytes[b]);
    }
    for (int64_t i = 0; ok && i < keep; i++) ok = vocab_add(v, cs[i].tok, cs[i].count);
    free(cs);
    if (!ok) {
        gf_text_vocab_free(v);
        return NULL;
    }
    v->n_special = n_special;
    v->total = c->total;
    return v;
}

gf_text_vocab *gf_text_vocab_build(gf_ctx *ctx, const gf_text_params *params,
                                   const gf_text_vocab_params *vparams, const char *const *texts,
                                   int64_t n, const char *name) {
    const gf_text_params p = params ? *params : gf_text_default_params();
    gf_text_vocab_params vp = vparams ? *vparams : gf_text_vocab_default_params();
    if (!name) name = "text";
    if (vp.min_count < 1) vp.min_count = 1;
    if (vp.max_distinct <= 0) vp.max_distinct = GF_TEXT_MAX_VOCAB;
    const int64_t n_special = uses_bytes(&p) ? 258 : 2;
    if ((unsigned)p.tokenizer > GF_TEXT_BYTE || n < 0 || (n > 0 && !texts) || vp.max_size < 0 ||
        (vp.max_size > 0 && vp.max_size <= n_special && p.tokenizer != GF_TEXT_BYTE)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s: vocabulary: max_size %lld leaves no room for tokens after the "
                         "%lld special ones (or a bad tokenizer %d, %lld texts)", name,
                         (long long)vp.max_size, (long long)n_special, (int)p.tokenizer,
                         (long long)n);
        return NULL;
    }
    counter c = {ctx, {0}, NULL, 0, vp.max_distinct, 0, name, GF_OK};
    gf_text_vocab *v = NULL;
    if (!gf_text_map_init(&c.map, 1024)) goto nomem;
    for (int64_t i = 0; i < n; i++) {
        char where[300];
        snprintf(where, sizeof where, "%s: example %lld", name, (long long)i + 1);
        if (gf_text_tokenize(ctx, &p, texts[i] ? texts[i] : "", texts[i] ? strlen(texts[i]) : 0,
                             where, 1, count_token, &c) != GF_OK ||
            c.st != GF_OK)
            goto done;
    }
    if (!(v = vocab_of_counts(&p, &vp, &c))) goto nomem;
    if (v->n == v->n_special && (p.tokenizer != GF_TEXT_BYTE || v->total == 0)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s: the vocabulary is empty: no token appears %lld time(s) or more in "
                         "%lld training text(s) (%lld tokens in all)", name,
                         (long long)vp.min_count, (long long)n, (long long)c.total);
        gf_text_vocab_free(v);
        v = NULL;
    }
    goto done;
nomem:
    gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory building the vocabulary", name);
done:
    gf_text_map_free(&c.map);
    free(c.counts);
    return v;
}

gf_text_vocab *gf_text_vocab_extend(gf_ctx *ctx, const gf_text_vocab *v, const char *const *words,
                                    int64_t n, int64_t max_size) {
    if (!v || n < 0 || (n > 0 && !words)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "vocabulary: nothing to extend (%lld words)",
                         (long long)n);
        return NULL;
    }
    int64_t cap = v->n + n;
    if (max_size > 0 && cap > max_size) cap = max_size > v->n ? max_size : v->n;
    gf_text_vocab *e = vocab_alloc(&v->params, cap);
    bool ok = e != NULL;
    for (int64_t i = 0; ok && i < v->n; i++) ok = vocab_add(e, v->tok[i], v->count[i]);
    for (int64_t i = 0; ok && i < n && e->n < cap; i++) {
        const char *w = words[i];
        const size_t len = w ? strlen(w) : 0;
        if (!len || gf_text_utf8_check(w, len) >= 0 || gf_text_map_get(&e->map, w, len) >= 0)
            continue;
        ok = vocab_add(e, w, 0);
    }
    if (!ok) {
        gf_text_vocab_free(e);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "vocabulary: out of memory adding %lld words",
                         (long long)n);
        return NULL;
    }
    e->n_special = v->n_special;
    e->total = v->total;
    return e;
}

gf_text_vocab *gf_text_vocab_retain(gf_text_vocab *v) {
    if (v) v->refs++;
    return v;
}

void gf_text_vocab_free(gf_text_vocab *v) {
    if (!v || --v->refs > 0) return;
    for (int64_t i = 0; v->tok && i < v->n; i++) free(v->tok[i]);
    free(v->tok);
    free(v->count);
    gf_text_map_free(&v->map);
    free(v);
}

int64_t gf_text_vocab_size(const gf_text_vocab *v) { return v ? v->n : 0; }

int64_t gf_text_vocab_id(const gf_text_vocab *v, const char *token) {
    return v && token ? gf_text_map_get(&v->map, token, strlen(token)) : -1;
}

const char *gf_text_vocab_token(const gf_text_vocab *v, int64_t id) {
    return v && id >= 0 && id < v->n ? v->tok[id] : NULL;
}

int64_t gf_text_vocab_count(const gf_text_vocab *v, int64_t id) {
    return v && id >= 0 && id < v->n ? v->count[id] : 0;
}

int64_t gf_text_vocab_total(const gf_text_vocab *v) { return v ? v->total : 0; }

gf_text_params gf_text_vocab_text_params(const gf_text_vocab *v) {
    return v ? v->params : gf_text_default_params();
}

bool gf_text_vocab_is_special(const gf_text_vocab *v, int64_t id) {
    return v && id >= 0 && id < v->n_special;
}

/* ---- JSON --------------------------------------------------------------------------------- */

char *gf_text_vocab_to_json(gf_ctx *ctx, const gf_text_vocab *v) {
    if (!v) {
        if (ctx) gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_text_vocab_to_json: NULL vocabulary");
        return NULL;
    }
    cJSON *o = cJSON_CreateObject(), *toks = cJSON_CreateArray(), *counts = cJSON_CreateArray();
    bool ok = o && toks && counts;
    if (ok) {
        cJSON_AddStringToObject(o, "format", "graft.text");
        cJSON_AddNumberToObject(o, "version", 1);
        cJSON_AddStringToObject(o, "tokenizer", gf_text_tokenizer_name(v->params.tokenizer));
        cJSON_AddBoolToObject(o, "lowercase", v->params.lowercase);
        cJSON_AddBoolToObject(o, "byte_fallback", v->params.byte_fallback);
        cJSON_AddNumberToObject(o, "total", (double)v->total);
    }
    for (int64_t i = 0; ok && i < v->n; i++) {
        cJSON *t = cJSON_CreateString(v->tok[i]), *c = cJSON_CreateNumber((double)v->count[i]);
        ok = t && c;
        if (t) cJSON_AddItemToArray(toks, t);
        if (c) cJSON_AddItemToArray(counts, c);
    }
    if (ok) {
        cJSON_AddItemToObject(o, "tokens", toks);
        cJSON_AddItemToObject(o, "counts", counts);
        toks = counts = NULL;
    }
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    cJSON_Delete(toks);
    cJSON_Delete(counts);
    char *r = s ? malloc(strlen(s) + 1) : NULL;
    if (r) memcpy(r, s, strlen(s) + 1);
    cJSON_free(s);
    if (!r && ctx) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "vocabulary: out of memory writing JSON");
    return r;
}

/* The settings of a vocabulary's JSON, or a message in *bad. */
static bool json_settings(const cJSON *o, gf_text_params *p, double *total, const char **bad) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "format"),
                *ver = cJSON_GetObjectItemCaseSensitive(o, "version"),
                *tk = cJSON_GetObjectItemCaseSensitive(o, "tokenizer"),
                *lc = cJSON_GetObjectItemCaseSensitive(o, "lowercase"),
                *bf = cJSON_GetObjectItemCaseSensitive(o, "byte_fallback"),
                *tot = cJSON_GetObjectItemCaseSensitive(o, "total");
    *p = gf_text_default_params();
    if (!cJSON_IsString(f) || strcmp(f->valuestring, "graft.text") != 0)
        return *bad = "\"format\" is not \"graft.text\"", false;
    if (!cJSON_IsNumber(ver) || ver->valuedouble != 1)
        return *bad = "\"version\" is not 1", false;
    int t = -1;
    for (int i = 0; cJSON_IsString(tk) && i < 3; i++)
        if (strcmp(tk->valuestring, gf_text_tokenizer_name((gf_text_tokenizer)i)) == 0) t = i;
    if (t < 0) return *bad = "\"tokenizer\" is not word, char or byte", false;
    if ((lc && !cJSON_IsBool(lc)) || (bf && !cJSON_IsBool(bf)))
        return *bad = "\"lowercase\" or \"byte_fallback\" is not a boolean", false;
    p->tokenizer = (gf_text_tokenizer)t;
    p->lowercase = cJSON_IsTrue(lc);
    p->byte_fallback = cJSON_IsTrue(bf);
    *total = cJSON_IsNumber(tot) ? tot->valuedouble : 0;
    if (!(*total >= 0 && *total <= 9e15)) return *bad = "\"total\" is out of range", false;
    return true;
}

/* The tokens and counts of a vocabulary's JSON into v; false with a message in *bad. */
static bool json_tokens(const cJSON *toks, const cJSON *counts, gf_text_vocab *v,
                        const char **bad) {
    const cJSON *t = toks->child, *c = counts ? counts->child : NULL;
    for (int64_t i = 0; t; i++, t = t->next, c = c ? c->next : NULL) {
        if (!cJSON_IsString(t) || gf_text_utf8_check(t->valuestring, strlen(t->valuestring)) >= 0 ||
            !t->valuestring[0])
            return *bad = "a token is not a non-empty UTF-8 string", false;
        const double cnt = c && cJSON_IsNumber(c) ? c->valuedouble : 0;
        if (!(cnt >= 0 && cnt <= 9e15)) return *bad = "a count is out of range", false;
        if (i < v->n_special) {
            char want[8];
            if (i > 1) gf_text_byte_token((unsigned char)(i - 2), want);
            const char *w = i == 0 ? "<pad>" : i == 1 ? "<unk>" : want;
            if (strcmp(t->valuestring, w) != 0)
                return *bad = "the first tokens are not <pad>, <unk> (and the 256 byte tokens)",
                       false;
        }
        if (!vocab_add(v, t->valuestring, (int64_t)cnt))
            return *bad = "a token is given twice (or out of memory)", false;
    }
    return true;
}

gf_text_vocab *gf_text_vocab_from_json(gf_ctx *ctx, const char *json, size_t len,
                                       const char *name) {
    if (!name) name = "vocabulary";
    if (!json) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: no JSON text", name);
        return NULL;
    }
    if (gf_json_check(ctx, json, len, name, "the vocabulary") != GF_OK) return NULL;
    cJSON *o = cJSON_ParseWithLength(json, len);
    const char *bad = NULL;
    gf_text_params p;
    double total = 0;
    gf_text_vocab *v = NULL;
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(o, "tokens"),
                *counts = cJSON_GetObjectItemCaseSensitive(o, "counts");
    const int n = cJSON_IsArray(toks) ? cJSON_GetArraySize(toks) : -1;
    if (!o) bad = "not valid JSON";
    else if (!json_settings(o, &p, &total, &bad)) (void)0; /* bad says why */
    else if (n < 2 || n > GF_TEXT_MAX_VOCAB)
        bad = "\"tokens\" is not an array of 2 to 4194304 tokens";
    else if (counts && (!cJSON_IsArray(counts) || cJSON_GetArraySize(counts) != n))
        bad = "\"counts\" is not an array as long as \"tokens\"";
    else if (uses_bytes(&p) && n < 258)
        bad = "the byte tokens are missing";
    else if (!(v = vocab_alloc(&p, n)))
        bad = "out of memory";
    if (v && !bad) {
        v->n_special = uses_bytes(&p) ? 258 : 2;
        v->total = (int64_t)total;
        json_tokens(toks, counts, v, &bad);
    }
    cJSON_Delete(o);
    if (bad) {
        gf_text_vocab_free(v);
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: the vocabulary is malformed: %s", name, bad);
        return NULL;
    }
    return v;
}

/* ---- encoding ----------------------------------------------------------------------------- */

typedef struct encoder {
    const gf_text_vocab *v;
    int64_t *ids, T, n;
    bool count_all; /* read past T to count every id */
} encoder;

static void emit(encoder *e, int64_t id) {
    if (e->n < e->T) e->ids[e->n] = id;
    e->n++;
}

static bool encode_token(void *user, const char *tok, size_t len) {
    encoder *e = user;
    const int64_t id = gf_text_map_get(&e->v->map, tok, len);
    if (id >= 0) emit(e, id);
    else if (e->v->params.byte_fallback && e->v->n_special == 258)
        for (size_t i = 0; i < len; i++) emit(e, 2 + (unsigned char)tok[i]);
    else emit(e, GF_TEXT_UNK);
    return e->count_all || e->n < e->T;
}

gf_status gf_text_encode(gf_ctx *ctx, const gf_text_vocab *v, const char *text, int64_t T,
                         int64_t *ids, int64_t *n_tokens, const char *where) {
    if (!v || !ids || T < 1 || T > GF_TEXT_MAX_LEN)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "gf_text_encode: length %lld outside 1..%lld (or no vocabulary "
                                "or output)", (long long)T, (long long)GF_TEXT_MAX_LEN);
    encoder e = {v, ids, T, 0, n_tokens != NULL};
    if (!text) text = "";
    gf_status st = gf_text_tokenize(ctx, &v->params, text, strlen(text), where ? where : "text",
                                    1, encode_token, &e);
    if (st != GF_OK) return st;
    for (int64_t i = e.n; i < T; i++) ids[i] = GF_TEXT_PAD;
    if (n_tokens) *n_tokens = e.n;
    return GF_OK;
}

gf_tensor *gf_text_encode_batch(gf_ctx *ctx, const gf_text_vocab *v, const char *const *texts,
                                int64_t n, int64_t T) {
    if (n < 1 || !texts || T < 1 || T > GF_TEXT_MAX_LEN) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_text_encode_batch: %lld texts of length %lld "
                         "(need at least one, length 1..%lld)", (long long)n, (long long)T,
                         (long long)GF_TEXT_MAX_LEN);
        return NULL;
    }
    int64_t *ids = malloc(sizeof *ids * (size_t)T);
    gf_tensor *x = ids ? gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){n, T}) : NULL;
    if (!x) {
        free(ids);
        if (gf_ctx_status(ctx) == GF_OK) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    float *out = gf_f32(x);
    for (int64_t i = 0; i < n; i++) {
        char where[48];
        snprintf(where, sizeof where, "text %lld", (long long)i + 1);
        if (gf_text_encode(ctx, v, texts[i], T, ids, NULL, where) != GF_OK) {
            gf_tensor_free(x);
            free(ids);
            return NULL;
        }
        for (int64_t t = 0; t < T; t++) out[i * T + t] = (float)ids[t];
    }
    free(ids);
    return x;
}
