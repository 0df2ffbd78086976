/* safetensors reader and writer. Every field of a file is treated as hostile: sizes are
 * checked before use, arithmetic is overflow-checked, and each violation is reported with
 * the file and the tensor it concerns. */
#define _GNU_SOURCE
#include "io/io_internal.h"
#include "graft/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "graft's safetensors code assumes a little-endian host"
#endif

static const char *const st_names[GF_ST_DTYPE_COUNT] = {
    "BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F16", "BF16", "F32", "F64",
};
static const size_t st_sizes[GF_ST_DTYPE_COUNT] = {1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 2, 4, 8};

const char *gf_st_dtype_name(gf_st_dtype dt) {
    return dt >= 0 && dt < GF_ST_DTYPE_COUNT ? st_names[dt] : "?";
}
size_t gf_st_dtype_size(gf_st_dtype dt) { return dt >= 0 && dt < GF_ST_DTYPE_COUNT ? st_sizes[dt] : 0; }

bool gf_st_dtype_parse(const char *name, gf_st_dtype *out) {
    for (int i = 0; i < GF_ST_DTYPE_COUNT; i++)
        if (strcmp(name, st_names[i]) == 0) {
            *out = (gf_st_dtype)i;
            return true;
        }
    return false;
}

static bool is_float_dtype(gf_st_dtype dt) {
    return dt == GF_ST_F16 || dt == GF_ST_BF16 || dt == GF_ST_F32 || dt == GF_ST_F64;
}

/* ---- half precision ----------------------------------------------------------------- */

uint16_t gf_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, mag = x & 0x7fffffffu;
    if (mag > 0x7f800000u) return (uint16_t)(sign | 0x7e00u); /* NaN stays NaN */
    if (mag >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to infinity */
    if (mag < 0x38800000u) {
        /* half subnormal: value = units * 2^-24 with units = m * 2^(E-126), E <= 112 */
        if (mag < 0x33000000u) return (uint16_t)sign;
        uint32_t s = 126 - (mag >> 23);
        uint32_t m = (mag & 0x7fffffu) | 0x800000u;
        uint32_t units = m >> s, rem = m & ((1u << s) - 1), halfway = 1u << (s - 1);
        if (rem > halfway || (rem == halfway && (units & 1))) units++;
        return (uint16_t)(sign | units);
    }
    uint32_t h = (((mag >> 23) - 112) << 10) | ((mag & 0x7fffffu) >> 13);
    uint32_t rem = mag & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* carries into the exponent */
    return (uint16_t)(sign | h);
}

float gf_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu, x;
    if (e == 0) {
        float v = (float)m * (1.0f / 16777216.0f); /* exact: m * 2^-24 */
        memcpy(&x, &v, 4);
        x |= sign;
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t gf_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    uint32_t lsb = (x >> 16) & 1u;
    x += 0x7fffu + lsb;
    return (uint16_t)(x >> 16);
}

float gf_bf16_to_f32(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* ---- reading ------------------------------------------------------------------------- */

struct gf_st_file {
    char *label;
    const unsigned char *buf; /* whole file */
    size_t len;
    bool mapped;
    int n;
    gf_st_info *infos;
    const gf_st_info **by_name; /* infos sorted by name: gf_st_find in O(log n) */
    char **names;
    int n_meta;
    char **meta_keys, **meta_vals;
};

void gf_st_close(gf_st_file *f) {
    if (!f) return;
    if (f->mapped && f->buf) munmap((void *)f->buf, f->len);
    for (int i = 0; i < f->n; i++) free(f->names[i]);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->names);
    free(f->by_name);
    free(f->infos);
    free(f->meta_keys);
    free(f->meta_vals);
    free(f->label);
    free(f);
}

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF) and no NUL bytes. Returns the
 * offset of the first bad byte, or len when valid. */
static size_t utf8_check(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c == 0) return i;
        if (c < 0x80) { i++; continue; }
        size_t n;
        unsigned min;
        if ((c & 0xe0) == 0xc0) { n = 1; min = 0x80; c &= 0x1f; }
        else if ((c & 0xf0) == 0xe0) { n = 2; min = 0x800; c &= 0x0f; }
        else if ((c & 0xf8) == 0xf0) { n = 3; min = 0x10000; c &= 0x07; }
        else return i;
        if (len - i <= n) return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            c = (c << 6) | (s[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return i;
        i += n + 1;
    }
    return len;
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static bool json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
}

static gf_status st_err(gf_ctx *ctx, const gf_st_file *f, const char *tensor, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static gf_status st_err(gf_ctx *ctx, const gf_st_file *f, const char *tensor, const char *fmt, ...) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (tensor)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: tensor '%s': %s", f->label, tensor, msg);
    return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: %s", f->label, msg);
}

static gf_status parse_tensor(gf_ctx *ctx, gf_st_file *f, const cJSON *item, gf_st_info *info) {
    const char *name = item->string;
    if (!cJSON_IsObject(item)) return st_err(ctx, f, name, "entry is not a JSON object");
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL, *e;
    cJSON_ArrayForEach(e, item) {
        if (strcmp(e->string, "dtype") == 0 && !dtype) dtype = e;
        else if (strcmp(e->string, "shape") == 0 && !shape) shape = e;
        else if (strcmp(e->string, "data_offsets") == 0 && !offs) offs = e;
        else return st_err(ctx, f, name, "unexpected or repeated field '%s'", e->string);
    }
    if (!cJSON_IsString(dtype)) return st_err(ctx, f, name, "missing or non-string 'dtype'");
    if (!gf_st_dtype_parse(dtype->valuestring, &info->dtype))
        return st_err(ctx, f, name, "unknown dtype '%.32s'", dtype->valuestring);
    if (!cJSON_IsArray(shape)) return st_err(ctx, f, name, "missing or non-array 'shape'");
    int nd = cJSON_GetArraySize(shape);
    if (nd > GF_MAX_DIMS)
        return st_err(ctx, f, name, "%d dimensions (graft supports at most %d)", nd, GF_MAX_DIMS);
    info->ndim = nd;
    uint64_t numel = 1, span = 1; /* span: product of the non-zero sizes (bounds strides) */
    int k = 0;
    cJSON_ArrayForEach(e, shape) {
        uint64_t d;
        if (!json_uint(e, &d)) return st_err(ctx, f, name, "shape entry %d is not a non-negative integer", k);
        if (d != 0 && span > (uint64_t)INT64_MAX / 16 / d)
            return st_err(ctx, f, name, "shape overflows: the element count exceeds 2^59");
        numel *= d;
        if (d != 0) span *= d;
        info->shape[k++] = (int64_t)d;
    }
    size_t es = gf_st_dtype_size(info->dtype);
    if (numel > UINT64_MAX / 16 / es) return st_err(ctx, f, name, "byte size overflows");
    info->numel = (int64_t)numel;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_uint(cJSON_GetArrayItem(offs, 0), &info->begin) ||
        !json_uint(cJSON_GetArrayItem(offs, 1), &info->end))
        return st_err(ctx, f, name, "'data_offsets' must be two non-negative integers");
    if (info->end < info->begin)
        return st_err(ctx, f, name, "data_offsets [%llu, %llu] end before they begin",
                      (unsigned long long)info->begin, (unsigned long long)info->end);
    uint64_t want = numel * es;
    if (info->end - info->begin != want)
        return st_err(ctx, f, name,
                      "data_offsets [%llu, %llu] hold %llu bytes, but shape and dtype %s need %llu",
                      (unsigned long long)info->begin, (unsigned long long)info->end,
                      (unsigned long long)(info->end - info->begin), st_names[info->dtype],
                      (unsigned long long)want);
    return GF_OK;
}

static int by_string(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* No metadata key twice: sorted, so a header of a million keys is not a trillion compares. */
static gf_status check_unique_keys(gf_ctx *ctx, gf_st_file *f) {
    char **keys = malloc(sizeof *keys * (size_t)(f->n_meta ? f->n_meta : 1));
    if (!keys) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", f->label);
    memcpy(keys, f->meta_keys, sizeof *keys * (size_t)f->n_meta);
    qsort(keys, (size_t)f->n_meta, sizeof *keys, by_string);
    gf_status st = GF_OK;
    for (int i = 1; i < f->n_meta && st == GF_OK; i++)
        if (strcmp(keys[i], keys[i - 1]) == 0)
            st = st_err(ctx, f, NULL, "metadata key '%s' appears twice", keys[i]);
    free(keys);
    return st;
}

static gf_status parse_metadata(gf_ctx *ctx, gf_st_file *f, const cJSON *meta) {
    if (!cJSON_IsObject(meta)) return st_err(ctx, f, NULL, "'__metadata__' is not an object");
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = calloc((size_t)n + 1, sizeof(char *));
    f->meta_vals = calloc((size_t)n + 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_vals) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", f->label);
    const cJSON *e;
    cJSON_ArrayForEach(e, meta) {
        if (!cJSON_IsString(e))
            return st_err(ctx, f, NULL, "metadata value for '%s' is not a string", e->string);
        f->meta_keys[f->n_meta] = strdup(e->string);
        f->meta_vals[f->n_meta] = strdup(e->valuestring);
        if (!f->meta_keys[f->n_meta] || !f->meta_vals[f->n_meta])
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", f->label);
        f->n_meta++;
    }
    return check_unique_keys(ctx, f);
}

static int by_offset(const void *a, const void *b) {
    const gf_st_info *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(const gf_st_info *const *)a)->name, (*(const gf_st_info *const *)b)->name);
}

/* The name index (after the infos are in their final order); no name twice. */
static gf_status index_names(gf_ctx *ctx, gf_st_file *f) {
    f->by_name = malloc(sizeof *f->by_name * (size_t)(f->n ? f->n : 1));
    if (!f->by_name) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", f->label);
    for (int i = 0; i < f->n; i++) f->by_name[i] = &f->infos[i];
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, by_name);
    for (int i = 1; i < f->n; i++)
        if (strcmp(f->by_name[i]->name, f->by_name[i - 1]->name) == 0)
            return st_err(ctx, f, f->by_name[i]->name, "name appears twice in the header");
    return GF_OK;
}

/* Offsets must tile the data section exactly: sorted, each beginning where the previous
 * ended, the last ending at the section's end. */
static gf_status check_layout(gf_ctx *ctx, gf_st_file *f, uint64_t data_len) {
    qsort(f->infos, (size_t)f->n, sizeof *f->infos, by_offset);
    gf_status st = index_names(ctx, f);
    if (st != GF_OK) return st;
    uint64_t at = 0;
    for (int i = 0; i < f->n; i++) {
        gf_st_info *t = &f->infos[i];
        if (t->end > data_len)
            return st_err(ctx, f, t->name, "data_offsets [%llu, %llu] go beyond the %llu-byte data section",
                          (unsigned long long)t->begin, (unsigned long long)t->end,
                          (unsigned long long)data_len);
        if (t->begin < at)
            return st_err(ctx, f, t->name, "data_offsets [%llu, %llu] overlap the previous tensor '%s'",
                          (unsigned long long)t->begin, (unsigned long long)t->end, f->infos[i - 1].name);
        if (t->begin > at)
            return st_err(ctx, f, t->name, "gap of %llu bytes before its data (offset %llu expected)",
                          (unsigned long long)(t->begin - at), (unsigned long long)at);
        at = t->end;
    }
    if (at != data_len)
        return st_err(ctx, f, NULL, "tensors cover %llu bytes but the data section has %llu",
                      (unsigned long long)at, (unsigned long long)data_len);
    return GF_OK;
}

static gf_status validate(gf_ctx *ctx, gf_st_file *f) {
    if (f->len < 8)
        return st_err(ctx, f, NULL, "file is %zu bytes, too short for the 8-byte header length", f->len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->buf[i];
    const uint64_t max_header = (uint64_t)gf_ctx_limits(ctx)->header_bytes;
    if (hlen > max_header)
        return st_err(ctx, f, NULL, "header length %llu exceeds the limit of %llu bytes " GF_LIMIT_HINT("header-bytes"),
                      (unsigned long long)hlen, (unsigned long long)max_header);
    if (hlen > f->len - 8)
        return st_err(ctx, f, NULL, "header length %llu goes beyond the end of the file (%zu bytes)",
                      (unsigned long long)hlen, f->len);
    if (hlen < 2) return st_err(ctx, f, NULL, "header of %llu bytes cannot hold a JSON object", (unsigned long long)hlen);
    const unsigned char *h = f->buf + 8;
    size_t bad = utf8_check(h, (size_t)hlen);
    if (bad != hlen)
        return st_err(ctx, f, NULL, "header is not valid UTF-8 (byte %zu)", bad);
    if (h[0] != '{') return st_err(ctx, f, NULL, "header does not start with '{'");
    if (gf_json_check(ctx, (const char *)h, (size_t)hlen, f->label, "header") != GF_OK)
        return GF_ERR_FORMAT;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)h, (size_t)hlen, &end, false);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return st_err(ctx, f, NULL, "header is not a valid JSON object");
    }
    for (const char *p = end; p < (const char *)h + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return st_err(ctx, f, NULL, "unexpected bytes after the header's JSON object");
        }
    int n_items = cJSON_GetArraySize(root);
    f->infos = calloc((size_t)n_items + 1, sizeof *f->infos);
    f->names = calloc((size_t)n_items + 1, sizeof *f->names);
    gf_status st = (f->infos && f->names) ? GF_OK
                                          : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", f->label);
    bool seen_meta = false;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (st != GF_OK) break;
        if (strcmp(item->string, "__metadata__") == 0) {
            if (seen_meta) st = st_err(ctx, f, NULL, "'__metadata__' appears twice");
            else st = parse_metadata(ctx, f, item);
            seen_meta = true;
            continue;
        }
        f->names[f->n] = strdup(item->string);
        if (!f->names[f->n]) {
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", f->label);
            break;
        }
        gf_st_info *info = &f->infos[f->n];
        info->name = f->names[f->n];
        f->n++;
        st = parse_tensor(ctx, f, item, info);
    }
    cJSON_Delete(root);
    if (st != GF_OK) return st;
    uint64_t data_len = f->len - 8 - hlen;
    st = check_layout(ctx, f, data_len);
    if (st != GF_OK) return st;
    for (int i = 0; i < f->n; i++) f->infos[i].data = f->buf + 8 + hlen + f->infos[i].begin;
    return GF_OK;
}

static gf_st_file *st_new(gf_ctx *ctx, const char *label) {
    gf_st_file *f = calloc(1, sizeof *f);
    if (f) f->label = strdup(label ? label : "(memory)");
    if (!f || !f->label) {
        free(f);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "safetensors: out of memory");
        return NULL;
    }
    return f;
}

gf_st_file *gf_st_open_memory(gf_ctx *ctx, const void *buf, size_t len, const char *label) {
    gf_st_file *f = st_new(ctx, label);
    if (!f) return NULL;
    f->buf = buf;
    f->len = len;
    if (validate(ctx, f) != GF_OK) {
        gf_st_close(f);
        return NULL;
    }
    return f;
}

gf_st_file *gf_st_open(gf_ctx *ctx, const char *path) {
    if (!path) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "safetensors: path is NULL");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        gf_ctx_set_error(ctx, GF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        gf_ctx_set_error(ctx, GF_ERR_IO, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    gf_st_file *f = st_new(ctx, path);
    if (!f) {
        close(fd);
        return NULL;
    }
    f->len = (size_t)sb.st_size;
    if (f->len > 0) {
        void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            gf_ctx_set_error(ctx, GF_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
            close(fd);
            gf_st_close(f);
            return NULL;
        }
        f->buf = m;
        f->mapped = true;
    } else {
        f->buf = (const unsigned char *)"";
    }
    close(fd);
    if (validate(ctx, f) != GF_OK) {
        gf_st_close(f);
        return NULL;
    }
    return f;
}

const char *gf_st_path(const gf_st_file *f) { return f->label; }
int gf_st_count(const gf_st_file *f) { return f->n; }
const gf_st_info *gf_st_get(const gf_st_file *f, int i) { return i >= 0 && i < f->n ? &f->infos[i] : NULL; }

const gf_st_info *gf_st_find(const gf_st_file *f, const char *name) {
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->by_name[mid]->name, name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

int gf_st_metadata_count(const gf_st_file *f) { return f->n_meta; }
const char *gf_st_metadata_key(const gf_st_file *f, int i) { return i >= 0 && i < f->n_meta ? f->meta_keys[i] : NULL; }
const char *gf_st_metadata_value(const gf_st_file *f, int i) { return i >= 0 && i < f->n_meta ? f->meta_vals[i] : NULL; }

const char *gf_st_metadata_get(const gf_st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

/* Element i of a raw little-endian buffer as double / int64. */
static double raw_f(const unsigned char *p, gf_st_dtype dt, int64_t i) {
    switch (dt) {
    case GF_ST_F16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return gf_f16_to_f32(v); }
    case GF_ST_BF16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return gf_bf16_to_f32(v); }
    case GF_ST_F32: { float v; memcpy(&v, p + 4 * i, 4); return v; }
    case GF_ST_F64: { double v; memcpy(&v, p + 8 * i, 8); return v; }
    default: return 0;
    }
}

static int64_t raw_i(const unsigned char *p, gf_st_dtype dt, int64_t i) {
    switch (dt) {
    case GF_ST_BOOL: return p[i] != 0;
    case GF_ST_U8: return p[i];
    case GF_ST_I8: return (int8_t)p[i];
    case GF_ST_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case GF_ST_U16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case GF_ST_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case GF_ST_U32: { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case GF_ST_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); return v; }
    case GF_ST_U64: { uint64_t v; memcpy(&v, p + 8 * i, 8); return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v; }
    default: return 0;
    }
}

gf_status gf_st_read_into(gf_ctx *ctx, const gf_st_file *f, const gf_st_info *info, gf_tensor *dst) {
    if (!f || !info || !dst) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "safetensors: NULL argument");
    char a[GF_SHAPE_BUF], b[GF_SHAPE_BUF];
    bool same = dst->ndim == info->ndim;
    for (int i = 0; same && i < info->ndim; i++) same = dst->shape[i] == info->shape[i];
    if (!same)
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: tensor '%s': file has shape %s, model expects %s",
                                f->label, info->name, gf_dims_str(info->ndim, info->shape, a, sizeof a),
                                gf_shape_str(dst, b, sizeof b));
    bool want_float = dst->dtype == GF_F32;
    if (want_float != is_float_dtype(info->dtype))
        return gf_ctx_set_error(ctx, GF_ERR_DTYPE, "%s: tensor '%s': file has %s, model expects %s",
                                f->label, info->name, st_names[info->dtype], gf_dtype_name(dst->dtype));
    const unsigned char *p = info->data;
    if (want_float && info->dtype == GF_ST_F32 && gf_tensor_is_contiguous(dst)) {
        memcpy(dst->data, p, (size_t)info->numel * 4);
        return GF_OK;
    }
    int64_t idx[GF_MAX_DIMS] = {0};
    if (info->numel == 0) return GF_OK;
    int64_t k = 0;
    do {
        int64_t off = 0;
        for (int d = 0; d < dst->ndim; d++) off += idx[d] * dst->stride[d];
        if (want_float) gf_f32(dst)[off] = (float)raw_f(p, info->dtype, k);
        else gf_i64(dst)[off] = raw_i(p, info->dtype, k);
        k++;
    } while (gf_index_next(dst->ndim, dst->shape, idx));
    return GF_OK;
}

gf_tensor *gf_st_load(gf_ctx *ctx, const gf_st_file *f, const gf_st_info *info) {
    if (!f || !info) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "safetensors: NULL argument");
        return NULL;
    }
    gf_tensor *t = gf_tensor_new(ctx, is_float_dtype(info->dtype) ? GF_F32 : GF_I64, info->ndim, info->shape);
    if (!t) return NULL;
    if (gf_st_read_into(ctx, f, info, t) != GF_OK) {
        gf_tensor_free(t);
        return NULL;
    }
    return t;
}

/* ---- writing ------------------------------------------------------------------------- */

typedef struct {
    char *name;
    const gf_tensor *t;
    gf_st_dtype as;
} st_entry;

struct gf_st_writer {
    gf_ctx *ctx;
    st_entry *e;
    int n, cap;
    int *slots; /* open-addressing set of entry index + 1 by name (0: empty), n <= cap/2 */
    int n_slots;
    char **mkeys, **mvals;
    int n_meta, cap_meta;
};

gf_st_writer *gf_st_writer_new(gf_ctx *ctx) {
    gf_st_writer *w = calloc(1, sizeof *w);
    if (!w) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "safetensors writer: out of memory");
    else w->ctx = ctx;
    return w;
}

void gf_st_writer_free(gf_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->e[i].name);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->mkeys[i]);
        free(w->mvals[i]);
    }
    free(w->e);
    free(w->slots);
    free(w->mkeys);
    free(w->mvals);
    free(w);
}

static bool writable_as(gf_dtype dt, gf_st_dtype as) {
    if (dt == GF_F32) return as == GF_ST_F32 || as == GF_ST_F16 || as == GF_ST_BF16;
    return as == GF_ST_I64 || as == GF_ST_I32 || as == GF_ST_U8 || as == GF_ST_BOOL;
}

static size_t name_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return (size_t)h;
}

/* The slot of name: the one holding it, or the empty one where it would go. */
static int *find_slot(gf_st_writer *w, const char *name) {
    size_t mask = (size_t)w->n_slots - 1, i = name_hash(name) & mask;
    while (w->slots[i] && strcmp(w->e[w->slots[i] - 1].name, name) != 0) i = (i + 1) & mask;
    return &w->slots[i];
}

/* Doubles the name set: adding the n-th tensor checks its name in O(1), not against all. */
static bool grow_slots(gf_st_writer *w) {
    int n = w->n_slots ? 2 * w->n_slots : 64;
    int *slots = calloc((size_t)n, sizeof *slots);
    if (!slots) return false;
    free(w->slots);
    w->slots = slots;
    w->n_slots = n;
    for (int i = 0; i < w->n; i++) *find_slot(w, w->e[i].name) = i + 1;
    return true;
}

gf_status gf_st_writer_add(gf_st_writer *w, const char *name, const gf_tensor *t, gf_st_dtype as) {
    gf_ctx *ctx = w->ctx;
    if (!name || !*name || !t)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "safetensors writer: empty name or NULL tensor");
    if (strcmp(name, "__metadata__") == 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "safetensors writer: '__metadata__' is reserved");
    if (utf8_check((const unsigned char *)name, strlen(name)) != strlen(name))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "safetensors writer: name is not valid UTF-8");
    if (!writable_as(t->dtype, as))
        return gf_ctx_set_error(ctx, GF_ERR_DTYPE, "safetensors writer: tensor '%s' (%s) cannot be stored as %s",
                                name, gf_dtype_name(t->dtype), gf_st_dtype_name(as));
    if (w->n + 1 > w->n_slots / 2 && !grow_slots(w))
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "safetensors writer: out of memory");
    int *slot = find_slot(w, name);
    if (*slot)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "safetensors writer: tensor '%s' added twice", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_entry *e = realloc(w->e, sizeof *e * (size_t)cap);
        if (!e) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "safetensors writer: out of memory");
        w->e = e;
        w->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "safetensors writer: out of memory");
    w->e[w->n++] = (st_entry){copy, t, as};
    *slot = w->n;
    return GF_OK;
}

gf_status gf_st_writer_set_metadata(gf_st_writer *w, const char *key, const char *value) {
    gf_ctx *ctx = w->ctx;
    if (!key || !value) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "safetensors writer: NULL metadata");
    if (utf8_check((const unsigned char *)key, strlen(key)) != strlen(key) ||
        utf8_check((const unsigned char *)value, strlen(value)) != strlen(value))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "safetensors writer: metadata '%s' is not valid UTF-8", key);
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->mkeys[i], key) == 0) {
            char *v = strdup(value);
            if (!v) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "safetensors writer: out of memory");
            free(w->mvals[i]);
            w->mvals[i] = v;
            return GF_OK;
        }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? 2 * w->cap_meta : 8;
        char **k = realloc(w->mkeys, sizeof *k * (size_t)cap);
        if (k) w->mkeys = k;
        char **v = realloc(w->mvals, sizeof *v * (size_t)cap);
        if (v) w->mvals = v;
        if (!k || !v) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "safetensors writer: out of memory");
        w->cap_meta = cap;
    }
    w->mkeys[w->n_meta] = strdup(key);
    w->mvals[w->n_meta] = strdup(value);
    if (!w->mkeys[w->n_meta] || !w->mvals[w->n_meta]) {
        free(w->mkeys[w->n_meta]);
        free(w->mvals[w->n_meta]);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "safetensors writer: out of memory");
    }
    w->n_meta++;
    return GF_OK;
}

/* Byte range [lo, hi) a tensor's elements occupy. */
static void extent(const gf_tensor *t, uintptr_t *lo, uintptr_t *hi) {
    int64_t min = 0, max = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] == 0) { *lo = *hi = (uintptr_t)t->data; return; }
        int64_t span = (t->shape[d] - 1) * t->stride[d];
        if (span < 0) min += span;
        else max += span;
    }
    size_t es = gf_dtype_size(t->dtype);
    *lo = (uintptr_t)t->data + (uintptr_t)(min * (int64_t)es);
    *hi = (uintptr_t)t->data + (uintptr_t)((max + 1) * (int64_t)es);
}

/* Streams one tensor's elements, converted to its stored dtype, through a small buffer. */
static bool write_tensor(int fd, const st_entry *e) {
    unsigned char buf[1 << 15];
    size_t es = gf_st_dtype_size(e->as), used = 0;
    const gf_tensor *t = e->t;
    if (t->numel == 0) return true;
    if (e->as == GF_ST_F32 && gf_tensor_is_contiguous(t)) return gf_write_all(fd, t->data, (size_t)t->numel * 4);
    if (e->as == GF_ST_I64 && gf_tensor_is_contiguous(t)) return gf_write_all(fd, t->data, (size_t)t->numel * 8);
    for (int64_t i = 0; i < t->numel; i++) {
        unsigned char *p = buf + used;
        if (t->dtype == GF_F32) {
            float v = gf_get_f32(t, i);
            uint16_t h = e->as == GF_ST_F16 ? gf_f32_to_f16(v) : gf_f32_to_bf16(v);
            if (e->as == GF_ST_F32) memcpy(p, &v, 4);
            else memcpy(p, &h, 2);
        } else {
            int64_t v = gf_get_i64(t, i);
            int32_t v32 = (int32_t)v;
            uint8_t v8 = e->as == GF_ST_BOOL ? (v != 0) : (uint8_t)v;
            if (e->as == GF_ST_I64) memcpy(p, &v, 8);
            else if (e->as == GF_ST_I32) memcpy(p, &v32, 4);
            else *p = v8;
        }
        used += es;
        if (used + 8 > sizeof buf) {
            if (!gf_write_all(fd, buf, used)) return false;
            used = 0;
        }
    }
    return gf_write_all(fd, buf, used);
}

static char *build_header(gf_st_writer *w, size_t *len) {
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && w->n_meta) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (int i = 0; ok && i < w->n_meta; i++) ok = cJSON_AddStringToObject(m, w->mkeys[i], w->mvals[i]) != NULL;
    }
    uint64_t at = 0;
    for (int i = 0; ok && i < w->n; i++) {
        const gf_tensor *t = w->e[i].t;
        cJSON *o = cJSON_AddObjectToObject(root, w->e[i].name);
        ok = o && cJSON_AddStringToObject(o, "dtype", gf_st_dtype_name(w->e[i].as));
        cJSON *shape = ok ? cJSON_AddArrayToObject(o, "shape") : NULL;
        for (int d = 0; shape && d < t->ndim; d++)
            ok = ok && cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        uint64_t bytes = (uint64_t)t->numel * gf_st_dtype_size(w->e[i].as);
        cJSON *offs = ok ? cJSON_AddArrayToObject(o, "data_offsets") : NULL;
        ok = ok && offs && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)at)) &&
             cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(at + bytes)));
        at += bytes;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) return NULL;
    size_t n = strlen(json), padded = (n + 7) / 8 * 8; /* data starts 8-byte aligned */
    char *h = realloc(json, padded + 1);
    if (!h) {
        free(json);
        return NULL;
    }
    memset(h + n, ' ', padded - n);
    h[padded] = '\0';
    *len = padded;
    return h;
}

typedef struct span {
    uintptr_t lo, hi;
    int i;
} span;

static int by_lo(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
    return x->i - y->i;
}

/* 1 with two entries (*a < *b) whose bytes overlap, 0 when none do, -1 out of memory. Sorted
 * by start, each span needs comparing only with the furthest-reaching one before it: O(n log
 * n) for a state_dict of a million tensors. Empty tensors hold no bytes and share nothing. */
static int find_overlap(const gf_st_writer *w, int *a, int *b) {
    span *s = malloc(sizeof *s * (size_t)(w->n ? w->n : 1));
    if (!s) return -1;
    int m = 0;
    for (int i = 0; i < w->n; i++) {
        extent(w->e[i].t, &s[m].lo, &s[m].hi);
        s[m].i = i;
        if (s[m].lo < s[m].hi) m++;
    }
    qsort(s, (size_t)m, sizeof *s, by_lo);
    int found = 0, top = -1;
    for (int k = 0; k < m && !found; k++) {
        if (top >= 0 && s[k].lo < s[top].hi) {
            *a = s[top].i < s[k].i ? s[top].i : s[k].i;
            *b = s[top].i < s[k].i ? s[k].i : s[top].i;
            found = 1;
        } else if (top < 0 || s[k].hi > s[top].hi) {
            top = k;
        }
    }
    free(s);
    return found;
}

typedef struct save_job {
    gf_st_writer *w;
    char *header;
    size_t hlen;
} save_job;

/* The whole file: header length, header, every tensor's data (gf_atomic_write's callback). */
static bool write_file(int fd, void *arg) {
    const save_job *job = arg;
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)((uint64_t)job->hlen >> (8 * i));
    bool ok = gf_write_all(fd, lenbuf, 8) && gf_write_all(fd, job->header, job->hlen);
    for (int i = 0; ok && i < job->w->n; i++) ok = write_tensor(fd, &job->w->e[i]);
    return ok;
}

gf_status gf_st_writer_save(gf_st_writer *w, const char *path) {
    gf_ctx *ctx = w->ctx;
    if (!path || !*path) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "safetensors writer: empty path");
    int a, b;
    int shared = find_overlap(w, &a, &b);
    if (shared < 0) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
    if (shared)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "%s: tensors '%s' and '%s' share memory; save a copy of one", path,
                                w->e[a].name, w->e[b].name);
    save_job job = {w, NULL, 0};
    job.header = build_header(w, &job.hlen);
    if (!job.header) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory building the header", path);
    gf_status st = gf_atomic_write(ctx, path, write_file, &job);
    free(job.header);
    return st;
}
