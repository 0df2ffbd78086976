/* The weights manifest of a TensorFlow.js model: groups of weights, each stored in one or more
 * shard files read back to back, each weight float32 / int32 (or bool, complex64), possibly
 * quantised to uint8 / uint16 (value = q * scale + min) or float16. Every entry is checked
 * before a byte is allocated for it: the sizes it declares are bounded by the params limit. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "import/tfjs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void tj_manifest_free(tj_manifest *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) free(m->w[i].name);
    free(m->w);
    free(m->order);
    for (int g = 0; g < m->n_groups; g++) {
        for (int i = 0; i < m->groups[g].n_paths; i++) free(m->groups[g].paths[i]);
        free(m->groups[g].paths);
    }
    free(m->groups);
    memset(m, 0, sizeof *m);
}

/* Bytes per stored value of a dtype name; 0 when unknown. */
static int dtype_bytes(const char *d, bool *is_f32, bool *is_int) {
    static const struct { const char *name; int bytes; } t[] = {
        {"float32", 4}, {"int32", 4}, {"bool", 1}, {"complex64", 8}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (strcmp(d, t[i].name) == 0) {
            *is_f32 = i == 0;
            *is_int = i == 1;
            return t[i].bytes;
        }
    return 0;
}

/* The quantization object: dtype uint8 / uint16 (min and scale required, finite) or float16
 * (float32 weights only); original_dtype, when present, must be the weight's dtype. */
static gf_status read_quant(gf_ctx *ctx, const cJSON *q, tj_weight *w, const char *dtype,
                            bool is_int, const char *label, int *bytes) {
    const cJSON *qd = cJSON_GetObjectItemCaseSensitive(q, "dtype");
    const cJSON *od = cJSON_GetObjectItemCaseSensitive(q, "original_dtype");
    if (!cJSON_IsObject(q) || !cJSON_IsString(qd))
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weight %s: quantization needs a \"dtype\" "
                                "string (uint8, uint16 or float16)", label, w->name);
    if (od && (!cJSON_IsString(od) || strcmp(od->valuestring, dtype) != 0))
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weight %s: quantization original_dtype "
                                "%s, expected the weight's dtype %s", label, w->name,
                                cJSON_IsString(od) ? od->valuestring : "(not a string)", dtype);
    const char *s = qd->valuestring;
    if (strcmp(s, "float16") == 0) {
        if (!w->is_f32)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weight %s: float16 quantization "
                                    "needs dtype float32, found %s", label, w->name, dtype);
        w->q = TJ_Q_FLOAT16;
        *bytes = 2;
        return GF_OK;
    }
    if (strcmp(s, "uint8") != 0 && strcmp(s, "uint16") != 0)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weight %s: quantization dtype \"%s\", "
                                "expected uint8, uint16 or float16", label, w->name, s);
    if (!w->is_f32 && !is_int)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weight %s: %s quantization needs dtype "
                                "float32 or int32, found %s", label, w->name, s, dtype);
    const cJSON *mn = cJSON_GetObjectItemCaseSensitive(q, "min");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(q, "scale");
    if (!cJSON_IsNumber(mn) || !cJSON_IsNumber(sc) || !isfinite(mn->valuedouble) ||
        !isfinite(sc->valuedouble))
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weight %s: %s quantization needs finite "
                                "numbers \"min\" and \"scale\", found %s and %s", label, w->name,
                                s, mn ? (cJSON_IsNumber(mn) ? "a non-finite min" : "a non-number")
                                      : "no min",
                                sc ? (cJSON_IsNumber(sc) ? "a non-finite scale" : "a non-number")
                                   : "no scale");
    w->q = s[4] == '8' ? TJ_Q_UINT8 : TJ_Q_UINT16;
    w->q_min = mn->valuedouble;
    w->q_scale = sc->valuedouble;
    *bytes = w->q == TJ_Q_UINT8 ? 1 : 2;
    return GF_OK;
}

/* Name, shape (sizes >= 0, the element count within the params limit), dtype and
 * quantisation of one entry; *elems (running total) checked against the limit. */
static gf_status read_weight(gf_ctx *ctx, const cJSON *e, tj_weight *w, const char *label,
                             int64_t *elems) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsObject(e) || !cJSON_IsString(name) || !name->valuestring[0] ||
        strlen(name->valuestring) > 2 * TJ_NAME_MAX)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weightsManifest: an entry without a "
                                "\"name\" string of 1 to %d bytes", label, 2 * TJ_NAME_MAX);
    if (!(w->name = strdup(name->valuestring)))
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
    const int64_t max = gf_ctx_limits(ctx)->model_params;
    int nd = cJSON_GetArraySize(shape);
    if (!cJSON_IsArray(shape) || nd > GF_MAX_DIMS)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weight %s: \"shape\" must be an array of "
                                "at most %d sizes", label, w->name, GF_MAX_DIMS);
    w->ndim = nd;
    w->numel = 1;
    for (int d = 0; d < nd; d++) {
        const cJSON *v = cJSON_GetArrayItem(shape, d);
        double x = cJSON_IsNumber(v) ? v->valuedouble : -1;
        if (!(x >= 0 && x <= (double)max && x == floor(x)))
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weight %s: shape[%d] must be an "
                                    "integer from 0 to %lld " GF_LIMIT_HINT("params"), label,
                                    w->name, d, (long long)max);
        w->shape[d] = (int64_t)x;
        w->numel = w->shape[d] == 0 ? 0 : w->numel > max / w->shape[d] ? max + 1
                                                                         : w->numel * w->shape[d];
    }
    if (w->numel > max - *elems)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weight %s: the manifest's weights hold "
                                "more than %lld values " GF_LIMIT_HINT("params"), label, w->name,
                                (long long)max);
    *elems += w->numel;
    bool is_int = false;
    const char *ds = cJSON_IsString(dtype) ? dtype->valuestring : "(none)";
    int bytes = dtype_bytes(ds, &w->is_f32, &is_int);
    if (!bytes)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weight %s: dtype \"%s\", expected "
                                "float32, int32, bool or complex64", label, w->name, ds);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(e, "quantization");
    if (q && !cJSON_IsNull(q) && read_quant(ctx, q, w, ds, is_int, label, &bytes) != GF_OK)
        return gf_ctx_status(ctx);
    if (w->numel > INT64_MAX / 16) /* the params limit may be turned off (INT64_MAX) */
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weight %s holds %lld values, too many "
                                "to address", label, w->name, (long long)w->numel);
    w->bytes = w->numel * bytes;
    return GF_OK;
}

static const tj_manifest *sort_m;
static int by_name(const void *a, const void *b) {
    return strcmp(sort_m->w[*(const int *)a].name, sort_m->w[*(const int *)b].name);
}

/* One group: its paths (strings, at least one) and its weights, laid out from *offset. */
static gf_status read_group(gf_ctx *ctx, const cJSON *grp, int gi, tj_manifest *m,
                            const char *label, int64_t *elems) {
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(grp, "paths");
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(grp, "weights");
    if (!cJSON_IsObject(grp) || !cJSON_IsArray(paths) || !cJSON_IsArray(ws) ||
        cJSON_GetArraySize(paths) < 1)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weightsManifest[%d] needs \"paths\" (a "
                                "non-empty array) and \"weights\" (an array)", label, gi);
    tj_group *g = &m->groups[gi];
    int np = cJSON_GetArraySize(paths);
    if (!(g->paths = calloc((size_t)np, sizeof *g->paths)))
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
    for (const cJSON *p = paths->child; p; p = p->next) {
        if (!cJSON_IsString(p) || !p->valuestring[0])
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weightsManifest[%d].paths[%d] is "
                                    "not a non-empty string", label, gi, g->n_paths);
        if (!(g->paths[g->n_paths++] = strdup(p->valuestring)))
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
    }
    for (const cJSON *e = ws->child; e; e = e->next) {
        tj_weight *w = &m->w[m->n++];
        if (read_weight(ctx, e, w, label, elems) != GF_OK) return gf_ctx_status(ctx);
        w->offset = m->total_bytes;
        if (w->bytes > INT64_MAX / 2 - m->total_bytes)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weight %s: the manifest's weights "
                                    "need more bytes than can be addressed", label, w->name);
        m->total_bytes += w->bytes;
        g->bytes += w->bytes;
    }
    return GF_OK;
}

gf_status tj_manifest_read(gf_ctx *ctx, const cJSON *wm, const char *label, tj_manifest *m) {
    memset(m, 0, sizeof *m);
    if (!cJSON_IsArray(wm))
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: \"weightsManifest\" must be an array of "
                                "weight groups", label);
    int ng = cJSON_GetArraySize(wm), nw = 0;
    for (const cJSON *g = wm->child; g; g = g->next)
        nw += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(g, "weights"));
    m->groups = calloc((size_t)(ng ? ng : 1), sizeof *m->groups);
    m->w = calloc((size_t)(nw ? nw : 1), sizeof *m->w);
    m->order = calloc((size_t)(nw ? nw : 1), sizeof *m->order);
    if (!m->groups || !m->w || !m->order)
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
    int64_t elems = 0;
    for (const cJSON *g = wm->child; g; g = g->next) {
        m->n_groups++;
        if (read_group(ctx, g, m->n_groups - 1, m, label, &elems) != GF_OK)
            return gf_ctx_status(ctx);
    }
    for (int i = 0; i < m->n; i++) m->order[i] = i;
    sort_m = m; /* qsort has no context argument in C11; the import runs one sort at a time */
    qsort(m->order, (size_t)m->n, sizeof *m->order, by_name);
    sort_m = NULL;
    for (int i = 1; i < m->n; i++)
        if (strcmp(m->w[m->order[i - 1]].name, m->w[m->order[i]].name) == 0)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: weight %s appears twice in the "
                                    "manifest", label, m->w[m->order[i]].name);
    return GF_OK;
}

tj_weight *tj_manifest_find(const tj_manifest *m, const char *name) {
    int lo = 0, hi = m->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(m->w[m->order[mid]].name, name);
        if (c == 0) return &m->w[m->order[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    /* converters may prefix a scope ("model/Conv1/kernel"); one pass, only on a miss */
    size_t n = strlen(name);
    for (int i = 0; i < m->n; i++) {
        size_t l = strlen(m->w[i].name);
        if (l > n && m->w[i].name[l - n - 1] == '/' && strcmp(m->w[i].name + l - n, name) == 0)
            return &m->w[i];
    }
    return NULL;
}

/* IEEE 754 half to float, exactly (subnormals, infinities, NaN). */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: normalise */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400u));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void tj_weight_decode(const tj_weight *w, const uint8_t *data, float *out) {
    const uint8_t *p = data + w->offset;
    for (int64_t i = 0; i < w->numel; i++) {
        if (w->q == TJ_Q_UINT8) {
            /* TensorFlow.js computes v * scale + min in double, then stores a float */
            out[i] = (float)((double)p[i] * w->q_scale + w->q_min);
        } else if (w->q == TJ_Q_UINT16 || w->q == TJ_Q_FLOAT16) {
            uint16_t v = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)); /* little-endian files */
            out[i] = w->q == TJ_Q_FLOAT16 ? half_to_float(v)
                                          : (float)((double)v * w->q_scale + w->q_min);
        } else {
            uint32_t b = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                         (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            memcpy(&out[i], &b, sizeof b);
        }
    }
}

/* dir/rel when rel is a relative path without ".." components that resolves (links followed)
 * to a regular file inside dir's resolved path; else NULL with an error. */
static char *shard_path(gf_ctx *ctx, const char *dir, const char *rel, const char *label) {
    bool dotdot = false;
    for (const char *s = rel; *s; s = strchr(s, '/') ? strchr(s, '/') + 1 : s + strlen(s))
        if (s[0] == '.' && s[1] == '.' && (s[2] == '/' || s[2] == '\0')) dotdot = true;
    if (rel[0] == '/' || dotdot || strchr(rel, '\\')) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: shard path \"%s\" leaves the model's folder "
                         "(expected a relative path without \"..\")", label, rel);
        return NULL;
    }
    char *full = malloc(strlen(dir) + strlen(rel) + 2), *rdir = NULL, *rfull = NULL;
    if (!full) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", label);
        return NULL;
    }
    sprintf(full, "%s/%s", dir, rel);
    rdir = realpath(dir, NULL);
    rfull = realpath(full, NULL);
    size_t n = rdir ? strlen(rdir) : 0;
    bool inside = rdir && rfull && strncmp(rfull, rdir, n) == 0 &&
                  (rfull[n] == '/' || (n == 1 && rdir[0] == '/'));
    if (!rfull)
        gf_ctx_set_error(ctx, GF_ERR_IO, "%s: shard %s: %s", label, full, strerror(errno));
    else if (!inside)
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: shard path \"%s\" resolves to %s, outside the "
                         "model's folder %s", label, rel, rfull, rdir ? rdir : dir);
    free(rdir);
    free(rfull);
    if (gf_ctx_status(ctx) != GF_OK) {
        free(full);
        return NULL;
    }
    return full;
}

/* Reads up to want bytes of one shard into dst; *got receives what it held (at most want). */
static gf_status read_shard(gf_ctx *ctx, const char *path, uint8_t *dst, int64_t want,
                            int64_t *got, const char *label) {
    *got = 0;
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        gf_status s = gf_ctx_set_error(ctx, GF_ERR_IO, "%s: shard %s: %s", label, path,
                                       fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0) close(fd);
        return s;
    }
    while (*got < want) {
        size_t chunk = (size_t)(want - *got > (1 << 24) ? (1 << 24) : want - *got);
        ssize_t r = read(fd, dst + *got, chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            gf_status s = gf_ctx_set_error(ctx, GF_ERR_IO, "%s: shard %s: %s", label, path,
                                           strerror(errno));
            close(fd);
            return s;
        }
        if (r == 0) break;
        *got += r;
    }
    close(fd);
    return GF_OK;
}

uint8_t *tj_manifest_read_shards(gf_ctx *ctx, const tj_manifest *m, const char *dir,
                                 const char *label) {
    uint8_t *buf = malloc((size_t)(m->total_bytes ? m->total_bytes : 1));
    if (!buf) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory for %lld bytes of weights", label,
                         (long long)m->total_bytes);
        return NULL;
    }
    int64_t at = 0;
    for (int g = 0; g < m->n_groups; g++) {
        const tj_group *grp = &m->groups[g];
        int64_t have = 0;
        for (int i = 0; i < grp->n_paths && have < grp->bytes; i++) {
            char *p = shard_path(ctx, dir, grp->paths[i], label);
            int64_t got = 0;
            gf_status s = p ? read_shard(ctx, p, buf + at + have, grp->bytes - have, &got, label)
                            : gf_ctx_status(ctx);
            free(p);
            if (s != GF_OK) {
                free(buf);
                return NULL;
            }
            have += got;
        }
        if (have < grp->bytes) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: the shards of weight group %d (%s%s) hold "
                             "%lld bytes, the manifest's weights need %lld", label, g + 1,
                             grp->paths[0], grp->n_paths > 1 ? ", ..." : "", (long long)have,
                             (long long)grp->bytes);
            free(buf);
            return NULL;
        }
        at += grp->bytes;
    }
    return buf;
}
