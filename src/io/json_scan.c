/* A budget check over JSON text before cJSON parses it: cJSON spends about 64 bytes and a
 * malloc per value, so a 100 MB header of "[[],[],...]" costs gigabytes and tens of seconds
 * before anything can reject it. This scan costs one pass and no memory. */
#include "io/io_internal.h"

#include <stdio.h>

typedef struct scan {
    int64_t nodes, depth;
    int64_t nul_at; /* offset of the first "\u0000" escape, or -1 */
} scan;

/* At s[i] == '"': skips the string; returns the offset after its closing quote (len when it
 * never closes: cJSON reports that). */
static size_t skip_string(const char *s, size_t i, size_t len, scan *sc) {
    for (i++; i < len; i++) {
        if (s[i] == '"') return i + 1;
        if (s[i] != '\\') continue;
        if (i + 5 < len && s[i + 1] == 'u' && s[i + 2] == '0' && s[i + 3] == '0' &&
            s[i + 4] == '0' && s[i + 5] == '0' && sc->nul_at < 0)
            sc->nul_at = (int64_t)i;
        i++; /* the escaped character */
    }
    return len;
}

gf_status gf_json_check(gf_ctx *ctx, const char *text, size_t len, const char *label,
                        const char *what) {
    const gf_limits *lim = gf_ctx_limits(ctx);
    /* every value but the root is the first of a non-empty array or object, or follows a ','
     * outside strings: exactly the nodes cJSON would allocate, for valid JSON */
    scan sc = {1, 0, -1};
    for (size_t i = 0; i < len;) {
        const char c = text[i];
        if (c == '"') {
            i = skip_string(text, i, len, &sc);
            continue;
        }
        if (c == '[' || c == '{') {
            size_t j = i + 1;
            while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\n' || text[j] == '\r'))
                j++;
            if (j < len && text[j] != ']' && text[j] != '}') sc.nodes++;
            if (++sc.depth > lim->json_depth)
                return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                        "%s: %s nests arrays and objects deeper than %lld levels "
                                        "(at byte %zu) " GF_LIMIT_HINT("json-depth"),
                                        label, what, (long long)lim->json_depth, i);
        } else if (c == ']' || c == '}') {
            if (sc.depth > 0) sc.depth--;
        } else if (c == ',') {
            sc.nodes++;
        }
        if (sc.nodes > lim->json_nodes)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                    "%s: %s holds more than %lld values (counted up to byte %zu "
                                    "of %zu) " GF_LIMIT_HINT("json-nodes"),
                                    label, what, (long long)lim->json_nodes, i, len);
        i++;
    }
    if (sc.nul_at >= 0)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "%s: %s has an escaped NUL character (\\u0000) in a string at "
                                "byte %lld; names and values cannot contain NUL",
                                label, what, (long long)sc.nul_at);
    return GF_OK;
}
