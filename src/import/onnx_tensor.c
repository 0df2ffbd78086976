/* TensorProto to tensor: element types, the size checks made before any allocation, the four
 * places data can come from (raw_data, the typed repeated fields, external files) and the
 * conversions into the two dtypes graft holds (float32 for floating types, int64 for integers
 * and bools). External data must be a regular file inside the model's folder. */
#define _XOPEN_SOURCE 700
#include "import/onnx_pb.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- element types --------------------------------------------------------------------------- */

const char *gf_onnx_type_name(int t) {
    switch (t) {
    case GF_ONNX_FLOAT: return "float32";
    case GF_ONNX_UINT8: return "uint8";
    case GF_ONNX_INT8: return "int8";
    case GF_ONNX_UINT16: return "uint16";
    case GF_ONNX_INT16: return "int16";
    case GF_ONNX_INT32: return "int32";
    case GF_ONNX_INT64: return "int64";
    case GF_ONNX_STRING: return "string";
    case GF_ONNX_BOOL: return "bool";
    case GF_ONNX_FLOAT16: return "float16";
    case GF_ONNX_DOUBLE: return "float64";
    case GF_ONNX_UINT32: return "uint32";
    case GF_ONNX_UINT64: return "uint64";
    case 14: return "complex64";
    case 15: return "complex128";
    case GF_ONNX_BFLOAT16: return "bfloat16";
    default: return "?";
    }
}

bool gf_onnx_type_dtype(int t, gf_dtype *out) {
    gf_dtype d;
    switch (t) {
    case GF_ONNX_FLOAT: case GF_ONNX_DOUBLE: case GF_ONNX_FLOAT16: case GF_ONNX_BFLOAT16:
        d = GF_F32;
        break;
    case GF_ONNX_UINT8: case GF_ONNX_INT8: case GF_ONNX_UINT16: case GF_ONNX_INT16:
    case GF_ONNX_INT32: case GF_ONNX_INT64: case GF_ONNX_BOOL: case GF_ONNX_UINT32:
    case GF_ONNX_UINT64:
        d = GF_I64;
        break;
    default: return false;
    }
    if (out) *out = d;
    return true;
}

/* Bytes per element in raw_data (0: a type without a fixed size). */
static size_t raw_size(int t) {
    switch (t) {
    case GF_ONNX_UINT8: case GF_ONNX_INT8: case GF_ONNX_BOOL: return 1;
    case GF_ONNX_UINT16: case GF_ONNX_INT16: case GF_ONNX_FLOAT16: case GF_ONNX_BFLOAT16: return 2;
    case GF_ONNX_FLOAT: case GF_ONNX_INT32: case GF_ONNX_UINT32: return 4;
    case GF_ONNX_INT64: case GF_ONNX_UINT64: case GF_ONNX_DOUBLE: return 8;
    default: return 0;
    }
}

/* IEEE half and bfloat16 to float (exact). */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | (man << 13);
    else if (exp) bits = sign | ((exp + 112) << 23) | (man << 13);
    else if (!man) bits = sign;
    else { /* subnormal: normalise */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static float bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Little-endian loads, whatever the host's order. */
static uint64_t le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Element i of raw little-endian data of type t into the tensor's storage. */
static void put_raw(gf_tensor *out, int t, const uint8_t *raw, int64_t i) {
    const size_t es = raw_size(t);
    const uint64_t v = le(raw + (size_t)i * es, es);
    switch (t) {
    case GF_ONNX_FLOAT: {
        uint32_t b = (uint32_t)v;
        float f;
        memcpy(&f, &b, 4);
        gf_f32(out)[i] = f;
        break;
    }
    case GF_ONNX_DOUBLE: { double d; memcpy(&d, &v, 8); gf_f32(out)[i] = (float)d; break; }
    case GF_ONNX_FLOAT16: gf_f32(out)[i] = half_to_float((uint16_t)v); break;
    case GF_ONNX_BFLOAT16: gf_f32(out)[i] = bf16_to_float((uint16_t)v); break;
    case GF_ONNX_INT8: gf_i64(out)[i] = (int8_t)v; break;
    case GF_ONNX_INT16: gf_i64(out)[i] = (int16_t)v; break;
    case GF_ONNX_INT32: gf_i64(out)[i] = (int32_t)v; break;
    case GF_ONNX_BOOL: gf_i64(out)[i] = v != 0; break;
    default: gf_i64(out)[i] = (int64_t)v; break; /* uint8/16/32, int64, uint64 (wraps) */
    }
}

/* Element i of the typed repeated field holding type t (ONNX stores the small integer types,
 * bool and the 16-bit floats' bits in int32_data, uint32 and uint64 in uint64_data). */
static void put_typed(gf_tensor *out, int t, const Onnx__TensorProto *tp, int64_t i) {
    switch (t) {
    case GF_ONNX_FLOAT: gf_f32(out)[i] = tp->float_data[i]; break;
    case GF_ONNX_DOUBLE: gf_f32(out)[i] = (float)tp->double_data[i]; break;
    case GF_ONNX_FLOAT16: gf_f32(out)[i] = half_to_float((uint16_t)tp->int32_data[i]); break;
    case GF_ONNX_BFLOAT16: gf_f32(out)[i] = bf16_to_float((uint16_t)tp->int32_data[i]); break;
    case GF_ONNX_INT64: gf_i64(out)[i] = tp->int64_data[i]; break;
    case GF_ONNX_UINT32: case GF_ONNX_UINT64: gf_i64(out)[i] = (int64_t)tp->uint64_data[i]; break;
    case GF_ONNX_BOOL: gf_i64(out)[i] = tp->int32_data[i] != 0; break;
    case GF_ONNX_UINT8: gf_i64(out)[i] = (uint8_t)tp->int32_data[i]; break;
    case GF_ONNX_INT8: gf_i64(out)[i] = (int8_t)tp->int32_data[i]; break;
    case GF_ONNX_UINT16: gf_i64(out)[i] = (uint16_t)tp->int32_data[i]; break;
    case GF_ONNX_INT16: gf_i64(out)[i] = (int16_t)tp->int32_data[i]; break;
    default: gf_i64(out)[i] = tp->int32_data[i]; break;
    }
}

/* How many values the typed field for type t holds. */
static size_t typed_count(int t, const Onnx__TensorProto *tp) {
    switch (t) {
    case GF_ONNX_FLOAT: return tp->n_float_data;
    case GF_ONNX_DOUBLE: return tp->n_double_data;
    case GF_ONNX_INT64: return tp->n_int64_data;
    case GF_ONNX_UINT32: case GF_ONNX_UINT64: return tp->n_uint64_data;
    default: return tp->n_int32_data;
    }
}

/* ---- external data --------------------------------------------------------------------------- */

/* True when location is a plain relative path without a ".." component. */
static bool safe_relative(const char *loc) {
    if (!loc[0] || loc[0] == '/') return false;
    for (const char *p = loc; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return false;
        p += n + (e ? 1 : 0);
    }
    return true;
}

/* Reads `bytes` bytes at offset of the external file named by tp into a new buffer. */
static uint8_t *read_external(gf_ctx *ctx, const Onnx__TensorProto *tp, const char *dir,
                              const char *what, size_t bytes) {
    const char *loc = NULL;
    int64_t offset = 0, length = -1;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *kv = tp->external_data[i];
        const char *k = kv->key ? kv->key : "", *v = kv->value ? kv->value : "";
        char *end;
        if (!strcmp(k, "location")) loc = v;
        else if (!strcmp(k, "offset") || !strcmp(k, "length")) {
            errno = 0;
            long long x = strtoll(v, &end, 10);
            if (errno || end == v || *end || x < 0) {
                gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: external data %s '%s' is not a "
                                 "byte count", what, k, v);
                return NULL;
            }
            *(k[0] == 'o' ? &offset : &length) = x;
        }
    }
    if (!dir) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: external data is only read from a model file "
                         "(it lies in the model's folder)", what);
        return NULL;
    }
    if (!loc || !safe_relative(loc)) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: external data location '%s' is not a relative "
                         "path inside the model's folder (absolute paths and '..' are refused)",
                         what, loc ? loc : "(none)");
        return NULL;
    }
    if (length >= 0 && (uint64_t)length != bytes) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: external data length %lld, but its dimensions "
                         "need %zu bytes", what, (long long)length, bytes);
        return NULL;
    }
    char full[PATH_MAX], real_dir[PATH_MAX], real_file[PATH_MAX];
    if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, loc) >= sizeof full ||
        !realpath(dir, real_dir) || !realpath(full, real_file)) {
        gf_ctx_set_error(ctx, GF_ERR_IO, "%s: cannot open external data '%s' in %s", what, loc,
                         dir);
        return NULL;
    }
    size_t rl = strlen(real_dir);
    if (strncmp(real_file, real_dir, rl) != 0 || (real_file[rl] != '/' && strcmp(real_dir, "/"))) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: external data '%s' leads outside the model's "
                         "folder (through a symbolic link) to %s", what, loc, real_file);
        return NULL;
    }
    FILE *f = fopen(real_file, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        if (f) fclose(f);
        gf_ctx_set_error(ctx, GF_ERR_IO, "%s: external data '%s' is not a readable regular file",
                         what, loc);
        return NULL;
    }
    if ((uint64_t)offset > (uint64_t)st.st_size ||
        bytes > (uint64_t)st.st_size - (uint64_t)offset) {
        fclose(f);
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: external data '%s' holds %lld bytes; %zu bytes "
                         "at offset %lld do not fit", what, loc, (long long)st.st_size, bytes,
                         (long long)offset);
        return NULL;
    }
    uint8_t *buf = malloc(bytes ? bytes : 1);
    bool ok = buf && fseeko(f, (off_t)offset, SEEK_SET) == 0 && fread(buf, 1, bytes, f) == bytes;
    fclose(f);
    if (!ok) {
        free(buf);
        gf_ctx_set_error(ctx, buf ? GF_ERR_IO : GF_ERR_NOMEM, "%s: cannot read %zu bytes of "
                         "external data '%s'", what, bytes, loc);
        return NULL;
    }
    return buf;
}

/* ---- the conversion -------------------------------------------------------------------------- */

/* Checks the dimensions and returns the element count, or -1 with an error. */
static int64_t check_dims(gf_ctx *ctx, const Onnx__TensorProto *tp, const char *what) {
    if (tp->n_dims > GF_MAX_DIMS) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: %zu dimensions; graft holds at most %d", what,
                         tp->n_dims, GF_MAX_DIMS);
        return -1;
    }
    const int64_t lim = gf_ctx_limits(ctx)->model_params;
    int64_t numel = 1;
    bool zero = false;
    for (size_t i = 0; i < tp->n_dims; i++) {
        int64_t d = tp->dims[i];
        if (d < 0) {
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: dimension %zu is %lld", what, i, (long long)d);
            return -1;
        }
        if (d == 0) zero = true;
        else if (numel > lim / d) numel = lim + 1;
        else numel *= d;
    }
    if (!zero && numel > lim) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: declares more than %lld elements (limit params)",
                         what, (long long)lim);
        return -1;
    }
    return zero ? 0 : numel;
}

gf_tensor *ox_tensor_from_pb(gf_ctx *ctx, const Onnx__TensorProto *tp, const char *dir,
                             const char *what, int *elem) {
    const int t = tp->has_data_type ? tp->data_type : 0;
    if (elem) *elem = t;
    gf_dtype dt;
    if (!gf_onnx_type_dtype(t, &dt)) {
        gf_ctx_set_error(ctx, GF_ERR_DTYPE, "%s: element type %s (%d) is not supported (graft "
                         "holds numbers and bools)", what, gf_onnx_type_name(t), t);
        return NULL;
    }
    if (tp->segment) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: segmented tensors are not supported", what);
        return NULL;
    }
    const int64_t numel = check_dims(ctx, tp, what);
    if (numel < 0) return NULL;
    const size_t es = raw_size(t), need = (size_t)numel * es;
    const bool external = tp->has_data_location &&
                          tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    uint8_t *ext = NULL;
    const uint8_t *raw = NULL;
    if (external) {
        if (!(ext = read_external(ctx, tp, dir, what, need))) return NULL;
        raw = ext;
    } else if (tp->has_raw_data) {
        if (tp->raw_data.len != need) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: raw_data holds %zu bytes, its dimensions "
                             "need %zu", what, tp->raw_data.len, need);
            return NULL;
        }
        raw = tp->raw_data.data;
    } else if (typed_count(t, tp) != (size_t)numel) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: holds %zu values, its dimensions need %lld",
                         what, typed_count(t, tp), (long long)numel);
        return NULL;
    }
    int64_t shape[GF_MAX_DIMS];
    for (size_t i = 0; i < tp->n_dims; i++) shape[i] = tp->dims[i];
    gf_tensor *out = gf_tensor_new(ctx, dt, (int)tp->n_dims, shape);
    if (out) {
        for (int64_t i = 0; i < numel; i++) {
            if (raw) put_raw(out, t, raw, i);
            else put_typed(out, t, tp, i);
        }
    }
    free(ext);
    return out;
}
