/* numpy .npy files: the magic and version, the header dict parsed by hand (no eval: only the
 * three keys numpy writes, a quoted descr, True/False and a tuple of integers), the data length
 * checked against the shape before allocating, elements converted from any endianness. Writing
 * produces what numpy.save writes for float32 and int64 arrays. */
#define _POSIX_C_SOURCE 200809L
#include "core/internal.h"
#include "graft/npy.h"
#include "io/io_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The element types read: numpy's type character, size, and whether it is a float or a bool. */
typedef struct npy_type {
    char kind; /* 'f', 'i', 'u', 'b' */
    int size;
    bool big;  /* big-endian data */
} npy_type;

typedef struct npy_header {
    npy_type type;
    bool fortran;
    int ndim;
    int64_t shape[GF_MAX_DIMS];
} npy_header;

static gf_status bad(gf_ctx *ctx, const char *name, const char *what) {
    return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: not a .npy file graft reads: %s", name, what);
}

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    return p;
}

/* descr: '<f4', '|b1', ... */
static bool parse_descr(const char *s, size_t n, npy_type *t) {
    if (n != 3 || (s[0] != '<' && s[0] != '>' && s[0] != '|' && s[0] != '=')) return false;
    t->big = s[0] == '>';
    t->kind = s[1];
    t->size = s[2] - '0';
    switch (t->kind) {
    case 'f': return t->size == 2 || t->size == 4 || t->size == 8;
    case 'i': case 'u': return t->size == 1 || t->size == 2 || t->size == 4 || t->size == 8;
    case 'b': return t->size == 1;
    default: return false;
    }
}

/* shape: "()", "(3,)", "(2, 3)": non-negative integers. */
static const char *parse_shape(const char *p, const char *end, npy_header *h) {
    if (p >= end || *p != '(') return NULL;
    p++;
    h->ndim = 0;
    for (;;) {
        p = skip_ws(p, end);
        if (p < end && *p == ')') return p + 1;
        if (p >= end || !isdigit((unsigned char)*p) || h->ndim == GF_MAX_DIMS) return NULL;
        int64_t v = 0;
        while (p < end && isdigit((unsigned char)*p)) {
            if (v > (INT64_MAX - 9) / 10) return NULL;
            v = v * 10 + (*p++ - '0');
        }
        h->shape[h->ndim++] = v;
        p = skip_ws(p, end);
        if (p < end && *p == ',') p++;
        else if (p >= end || *p != ')') return NULL;
    }
}

/* The header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } in any order,
 * each key exactly once. */
static bool parse_dict(const char *p, const char *end, npy_header *h) {
    bool seen[3] = {false, false, false};
    p = skip_ws(p, end);
    if (p >= end || *p++ != '{') return false;
    for (;;) {
        p = skip_ws(p, end);
        if (p < end && *p == '}') break;
        static const char *const keys[3] = {"'descr'", "'fortran_order'", "'shape'"};
        int k = -1;
        for (int i = 0; i < 3; i++)
            if ((size_t)(end - p) >= strlen(keys[i]) && !strncmp(p, keys[i], strlen(keys[i])))
                k = i;
        if (k < 0 || seen[k]) return false;
        seen[k] = true;
        p = skip_ws(p + strlen(keys[k]), end);
        if (p >= end || *p++ != ':') return false;
        p = skip_ws(p, end);
        if (k == 0) {
            const char *q =
                p < end && *p == '\'' ? memchr(p + 1, '\'', (size_t)(end - p - 1)) : NULL;
            if (!q || !parse_descr(p + 1, (size_t)(q - p - 1), &h->type)) return false;
            p = q + 1;
        } else if (k == 1) {
            if (end - p >= 4 && !strncmp(p, "True", 4)) h->fortran = true, p += 4;
            else if (end - p >= 5 && !strncmp(p, "False", 5)) h->fortran = false, p += 5;
            else return false;
        } else if (!(p = parse_shape(p, end, h))) {
            return false;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') p++;
        else if (p >= end || *p != '}') return false;
    }
    p = skip_ws(p + 1, end);
    while (p < end && (*p == '\n' || *p == ' ')) p++;
    return p == end && seen[0] && seen[1] && seen[2];
}

static uint64_t load(const uint8_t *p, int n, bool big) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[big ? n - 1 - i : i] << (8 * i);
    return v;
}

static float half_bits(uint16_t h) {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v = e == 0 ? ldexpf((float)m, -24)
        : e == 31    ? (m ? NAN : INFINITY)
                     : ldexpf((float)(m | 0x400), e - 25);
    return (h & 0x8000) ? -v : v;
}

static void convert(gf_tensor *t, const npy_type *ty, const uint8_t *src) {
    for (int64_t i = 0; i < t->numel; i++) {
        uint64_t v = load(src + i * ty->size, ty->size, ty->big);
        if (ty->kind == 'f') {
            float f;
            if (ty->size == 4) { uint32_t b = (uint32_t)v; memcpy(&f, &b, 4); }
            else if (ty->size == 8) { double d; memcpy(&d, &v, 8); f = (float)d; }
            else f = half_bits((uint16_t)v);
            gf_f32(t)[i] = f;
        } else if (ty->kind == 'i') { /* sign-extend from size bytes */
            int sh = 64 - 8 * ty->size;
            gf_i64(t)[i] = sh ? (int64_t)(v << sh) >> sh : (int64_t)v;
        } else {
            gf_i64(t)[i] = ty->kind == 'b' ? v != 0 : (int64_t)v;
        }
    }
}

gf_tensor *gf_npy_read_memory(gf_ctx *ctx, const void *data, size_t size, const char *name) {
    const uint8_t *p = data;
    if (!name) name = "(memory)";
    if (!p || size < 10 || memcmp(p, "\x93NUMPY", 6))
        return bad(ctx, name, "no \\x93NUMPY magic"), NULL;
    const int major = p[6];
    if (major < 1 || major > 3) return bad(ctx, name, "format version is not 1, 2 or 3"), NULL;
    size_t hl = major == 1 ? (size_t)load(p + 8, 2, false)
        : size >= 12       ? (size_t)load(p + 8, 4, false)
                           : SIZE_MAX;
    size_t start = major == 1 ? 10 : 12;
    if (hl > size - start || hl > ((size_t)1 << 20))
        return bad(ctx, name, "the header is longer than the file (or 1 MiB)"), NULL;
    npy_header h = {0};
    if (!parse_dict((const char *)p + start, (const char *)p + start + hl, &h))
        return bad(ctx, name,
                   "the header is not {'descr': ..., 'fortran_order': ..., 'shape': (...)} "
                   "with a number or bool type such as '<f4', '<i8', '|b1' and at most 8 "
                   "dimensions"),
               NULL;
    if (h.fortran && h.ndim > 1)
        return bad(ctx, name, "Fortran order (save a C-contiguous array: numpy.ascontiguousarray)"),
               NULL;
    int64_t numel = 1; /* -1: past INT64_MAX, refused below (unless a dimension is 0) */
    bool empty = false;
    for (int i = 0; i < h.ndim; i++) {
        empty |= h.shape[i] == 0;
        numel =
            numel < 0 || (h.shape[i] && numel > INT64_MAX / h.shape[i]) ? -1 : numel * h.shape[i];
    }
    if (empty) numel = 0;
    const size_t body = size - start - hl;
    if (numel < 0 || (uint64_t)numel > body / (size_t)h.type.size ||
        (size_t)numel * (size_t)h.type.size != body) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                         "%s: the shape needs %lld elements of %d bytes, the file "
                         "holds %zu bytes of data",
                         name, (long long)numel, h.type.size, body);
        return NULL;
    }
    gf_tensor *t = gf_tensor_new(ctx, h.type.kind == 'f' ? GF_F32 : GF_I64, h.ndim, h.shape);
    if (t) convert(t, &h.type, p + start + hl);
    return t;
}

gf_tensor *gf_npy_read(gf_ctx *ctx, const char *path) {
    if (!path) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "npy: path is NULL");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        gf_ctx_set_error(ctx, GF_ERR_IO, "%s: cannot open (%s)", path,
                         f ? "not a regular file" : strerror(errno));
        if (f) fclose(f);
        return NULL;
    }
    const int64_t lim = gf_ctx_limits(ctx)->data_bytes;
    if ((int64_t)st.st_size > lim) {
        fclose(f);
        gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                         "%s: %lld bytes, more than %lld " GF_LIMIT_HINT("data-bytes"), path,
                         (long long)st.st_size, (long long)lim);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    bool ok = buf && fread(buf, 1, n, f) == n;
    fclose(f);
    gf_tensor *t = NULL;
    if (!ok)
        gf_ctx_set_error(ctx, buf ? GF_ERR_IO : GF_ERR_NOMEM, "%s: cannot read %zu bytes", path, n);
    else t = gf_npy_read_memory(ctx, buf, n, path);
    free(buf);
    return t;
}

/* ---- writing --------------------------------------------------------------------------------- */

typedef struct npy_out {
    const gf_tensor *t;
} npy_out;

static bool write_npy(int fd, void *arg) {
    const gf_tensor *t = ((npy_out *)arg)->t;
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     t->dtype == GF_F32 ? "<f4" : "<i8");
    for (int i = 0; i < t->ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)t->shape[i],
                      i + 1 < t->ndim ? " " : "");
    if (t->ndim > 1) n--; /* numpy writes (2, 3) but (3,) */
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* magic (6) + version (2) + length (2) + dict, padded with spaces to a multiple of 64 and
     * ended by a newline, as numpy aligns it */
    size_t total = 10 + (size_t)n + 1, pad = (64 - total % 64) % 64;
    uint8_t head[512];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    size_t hl = (size_t)n + pad + 1;
    head[8] = (uint8_t)(hl & 0xff), head[9] = (uint8_t)(hl >> 8);
    memcpy(head + 10, dict, (size_t)n);
    memset(head + 10 + n, ' ', pad);
    head[10 + n + pad] = '\n';
    if (!gf_write_all(fd, head, 10 + hl)) return false;
    uint8_t buf[8192];
    size_t at = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        uint64_t v;
        if (t->dtype == GF_F32) {
            float f = gf_get_f32(t, i);
            uint32_t b;
            memcpy(&b, &f, 4);
            v = b;
        } else {
            v = (uint64_t)gf_get_i64(t, i);
        }
        const size_t es = t->dtype == GF_F32 ? 4 : 8;
        for (size_t k = 0; k < es; k++) buf[at++] = (uint8_t)(v >> (8 * k));
        if (at + 8 > sizeof buf) {
            if (!gf_write_all(fd, buf, at)) return false;
            at = 0;
        }
    }
    return gf_write_all(fd, buf, at);
}

gf_status gf_npy_write(gf_ctx *ctx, const char *path, const gf_tensor *t) {
    if (!path || !t)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "npy write: %s is NULL",
                                path ? "tensor" : "path");
    npy_out o = {t};
    return gf_atomic_write(ctx, path, write_npy, &o);
}
