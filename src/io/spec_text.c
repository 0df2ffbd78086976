/* Model specs as text: the spec a weights file stores must describe the model as saved, not as
 * written — "input": "data" and "out": "classes" resolved to the numbers the model was built
 * with, and the head's size after a new head replaced it. */
#define _POSIX_C_SOURCE 200809L
#include "spec_internal.h"
#include "io/io_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The JSON of a spec text, checked against the context's JSON limits first. */
static cJSON *parse_text(gf_ctx *ctx, const char *text, size_t len) {
    if (!text) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "model spec: no text");
        return NULL;
    }
    if (gf_json_check(ctx, text, len, "model spec", "the JSON") != GF_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "model spec: not a JSON object");
    }
    return j && cJSON_IsObject(j) ? j : NULL;
}

/* The minified text of j (deleted), malloc'd. */
static char *print_text(gf_ctx *ctx, cJSON *j) {
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    char *r = NULL;
    if (t) {
        size_t n = strlen(t) + 1;
        if ((r = malloc(n))) memcpy(r, t, n);
    }
    cJSON_free(t);
    if (!r) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "model spec: out of memory");
    return r;
}

/* The member of obj whose canonical key is key (aliases included), or NULL. */
static cJSON *member(cJSON *obj, const char *key) {
    for (cJSON *c = obj->child; c; c = c->next)
        if (c->string && strcmp(spec_canonical_key(c->string), key) == 0) return c;
    return NULL;
}

/* Puts item under obj's key, in place of the member written under any alias of it (keeping
 * that spelling and position), else at the end. */
static bool put_member(cJSON *obj, const char *key, cJSON *item) {
    cJSON *old = member(obj, key);
    if (!item) return false;
    if (old) return cJSON_ReplaceItemInObjectCaseSensitive(obj, old->string, item) != 0;
    return cJSON_AddItemToObject(obj, key, item) != 0;
}

static bool set_number(cJSON *obj, const char *key, double v) {
    return put_member(obj, key, cJSON_CreateNumber(v));
}

/* Every layer's "out": "classes" under node into n (depth bounded by the JSON limits). */
static bool resolve_classes(cJSON *node, int64_t n) {
    if (!cJSON_IsObject(node)) return true;
    cJSON *out = member(node, "out");
    if (out && cJSON_IsString(out) && strcmp(out->valuestring, "classes") == 0 &&
        !set_number(node, "out", (double)n))
        return false;
    cJSON *ch = member(node, "children");
    for (cJSON *c = ch ? ch->child : NULL; c; c = c->next)
        if (!resolve_classes(c, n)) return false;
    return true;
}

/* Every embedding layer's "num_embeddings": "vocab" (or left out) under node into n. */
static bool resolve_vocab(cJSON *node, int64_t n) {
    if (!cJSON_IsObject(node)) return true;
    cJSON *t = member(node, "type");
    char type[64] = "";
    if (t && cJSON_IsString(t)) spec_normalize_type(t->valuestring, type, sizeof type);
    if (strcmp(type, "embedding") == 0 || strcmp(type, "embeddingbag") == 0 ||
        strcmp(type, "textclassifier") == 0) {
        cJSON *v = member(node, "num_embeddings");
        if ((!v || cJSON_IsString(v)) && !set_number(node, "num_embeddings", (double)n)) return false;
    }
    cJSON *ch = member(node, "children");
    for (cJSON *c = ch ? ch->child : NULL; c; c = c->next)
        if (!resolve_vocab(c, n)) return false;
    return true;
}

char *gf_spec_resolve(gf_ctx *ctx, const char *text, size_t len, const gf_spec_params *p) {
    const gf_spec_params q = p ? *p : gf_spec_default_params();
    cJSON *j = parse_text(ctx, text, len);
    if (!j) return NULL;
    bool ok = true;
    if (q.in_ndim > 0 && q.in_ndim < GF_MAX_DIMS) {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; a && i < q.in_ndim; i++)
            ok = ok && cJSON_AddItemToArray(a, cJSON_CreateNumber((double)q.in_shape[i]));
        ok = ok && put_member(j, "input", a);
    }
    if (ok && q.n_classes > 0) ok = resolve_classes(j, q.n_classes);
    if (ok && q.vocab_size > 0) ok = resolve_vocab(j, q.vocab_size);
    if (!ok) {
        cJSON_Delete(j);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "model spec: out of memory");
        return NULL;
    }
    return print_text(ctx, j);
}

/* The layer object at a dotted module path: each step a child of "children", by index in a
 * list or by name in an object. A block (a layer without "children", such as textclassifier)
 * builds modules of its own: a path into them is the block's. */
static cJSON *find_layer(cJSON *root, const char *path) {
    cJSON *node = root;
    const char *p = path;
    while (node && *p && member(node, "children")) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char name[64];
        if (n == 0 || n >= sizeof name) return NULL;
        memcpy(name, p, n);
        name[n] = '\0';
        cJSON *ch = member(node, "children"), *next = NULL;
        if (ch && cJSON_IsArray(ch)) {
            char *end;
            long k = strtol(name, &end, 10);
            if (*end == '\0' && k >= 0) next = cJSON_GetArrayItem(ch, (int)k);
        } else if (ch && cJSON_IsObject(ch)) {
            next = cJSON_GetObjectItemCaseSensitive(ch, name);
        }
        node = cJSON_IsObject(next) ? next : NULL;
        p += n + (dot ? 1 : 0);
    }
    return node;
}

char *gf_spec_set_out(gf_ctx *ctx, const char *text, size_t len, const char *path, int64_t out) {
    cJSON *j = parse_text(ctx, text, len);
    if (!j) return NULL;
    cJSON *layer = path && *path ? find_layer(j, path) : NULL;
    if (!layer || !member(layer, "out")) {
        cJSON_Delete(j);
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "model spec: no layer with an \"out\" at %s",
                         path && *path ? path : "(root)");
        return NULL;
    }
    if (!set_number(layer, "out", (double)out)) {
        cJSON_Delete(j);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "model spec: out of memory");
        return NULL;
    }
    return print_text(ctx, j);
}
