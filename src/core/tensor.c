/* Tensor headers, storage and the shape helpers every op uses. */
#include "core/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

size_t gf_dtype_size(gf_dtype dt) { return dt == GF_I64 ? sizeof(int64_t) : sizeof(float); }
const char *gf_dtype_name(gf_dtype dt) { return dt == GF_I64 ? "int64" : "float32"; }

int64_t gf_numel_of(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

void gf_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s *= shape[i];
    }
}

char *gf_dims_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t k = 0;
    if (n == 0) return buf;
    buf[0] = '\0';
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

char *gf_shape_str(const gf_tensor *t, char *buf, size_t n) {
    if (!t) {
        snprintf(buf, n, "(null)");
        return buf;
    }
    return gf_dims_str(t->ndim, t->shape, buf, n);
}

/* Validates a shape: ndim in [0, 8], sizes >= 0, element count without overflow. */
static bool check_shape(gf_ctx *ctx, const char *what, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > GF_MAX_DIMS) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: %d dimensions (at most %d allowed)", what,
                         ndim, GF_MAX_DIMS);
        return false;
    }
    if (ndim > 0 && !shape) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: shape is NULL", what);
        return false;
    }
    /* strides are products of the trailing sizes, so bound the product of the non-zero
     * sizes too: a zero-element tensor may not carry overflowing strides */
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && n > INT64_MAX / 16 / shape[i])) {
            char b[GF_SHAPE_BUF];
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: invalid shape %s", what,
                             gf_dims_str(ndim, shape, b, sizeof b));
            return false;
        }
        if (shape[i] > 0) n *= shape[i];
    }
    return true;
}

static void init_header(gf_tensor *t, gf_dtype dt, int ndim, const int64_t *shape) {
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    gf_contiguous_strides(ndim, t->shape, t->stride);
    t->numel = gf_numel_of(ndim, t->shape);
}

static void *alloc_data(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, rounded ? rounded : 64);
}

gf_tensor *gf_tensor_new(gf_ctx *ctx, gf_dtype dt, int ndim, const int64_t *shape) {
    if (!check_shape(ctx, "gf_tensor_new", ndim, shape)) return NULL;
    gf_tensor *t = malloc(sizeof *t);
    if (!t) goto oom;
    init_header(t, dt, ndim, shape);
    size_t bytes = (size_t)t->numel * gf_dtype_size(dt);
    t->data = alloc_data(bytes);
    if (!t->data) {
        free(t);
        goto oom;
    }
    memset(t->data, 0, bytes);
    t->persistent = true;
    t->owns_data = true;
    return t;
oom:
    gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_tensor_new: out of memory");
    return NULL;
}

gf_tensor *gf_tensor_from_data(gf_ctx *ctx, gf_dtype dt, int ndim, const int64_t *shape,
                               const void *data) {
    gf_tensor *t = gf_tensor_new(ctx, dt, ndim, shape);
    if (!t) return NULL;
    if (!data) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_tensor_from_data: data is NULL");
        gf_tensor_free(t);
        return NULL;
    }
    memcpy(t->data, data, (size_t)t->numel * gf_dtype_size(dt));
    return t;
}

gf_tensor *gf_tensor_wrap(gf_ctx *ctx, gf_dtype dt, int ndim, const int64_t *shape,
                          void *data) {
    if (!check_shape(ctx, "gf_tensor_wrap", ndim, shape)) return NULL;
    if (!data) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_tensor_wrap: data is NULL");
        return NULL;
    }
    gf_tensor *t = malloc(sizeof *t);
    if (!t) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_tensor_wrap: out of memory");
        return NULL;
    }
    init_header(t, dt, ndim, shape);
    t->data = data;
    t->persistent = true;
    return t;
}

void gf_tensor_free(gf_tensor *t) {
    if (!t || !t->persistent) return;
    gf_tensor_free(t->grad);
    if (t->owns_data) free(t->data);
    free(t);
}

void gf_tensor_set_requires_grad(gf_tensor *t, bool requires_grad) {
    if (!t) return;
    t->requires_grad = requires_grad;
    if (!requires_grad && t->persistent) {
        gf_tensor_free(t->grad);
        t->grad = NULL;
    }
}

void gf_tensor_zero_grad(gf_tensor *t) {
    if (t && t->grad) memset(t->grad->data, 0, (size_t)t->grad->numel * sizeof(float));
}

/* ---- arena tensors ------------------------------------------------------------------ */

gf_tensor *gf_view_raw(gf_ctx *ctx, gf_dtype dt, int ndim, const int64_t *shape,
                       const int64_t *stride, void *data) {
    gf_tensor *t = gf_arena_alloc(ctx->arena, sizeof *t);
    if (!t) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory for a tensor header");
        return NULL;
    }
    init_header(t, dt, ndim, shape);
    if (stride)
        for (int i = 0; i < ndim; i++) t->stride[i] = stride[i];
    t->data = data;
    return t;
}

gf_tensor *gf_empty(gf_ctx *ctx, gf_dtype dt, int ndim, const int64_t *shape) {
    if (!check_shape(ctx, "gf_empty", ndim, shape)) return NULL;
    int64_t n = gf_numel_of(ndim, shape);
    void *data = gf_arena_alloc(ctx->arena, (size_t)n * gf_dtype_size(dt));
    if (!data) {
        char b[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory for a %s tensor %s",
                         gf_dtype_name(dt), gf_dims_str(ndim, shape, b, sizeof b));
        return NULL;
    }
    return gf_view_raw(ctx, dt, ndim, shape, NULL, data);
}

gf_tensor *gf_zeros(gf_ctx *ctx, gf_dtype dt, int ndim, const int64_t *shape) {
    gf_tensor *t = gf_empty(ctx, dt, ndim, shape);
    if (t) memset(t->data, 0, (size_t)t->numel * gf_dtype_size(dt));
    return t;
}

gf_tensor *gf_full(gf_ctx *ctx, int ndim, const int64_t *shape, float value) {
    gf_tensor *t = gf_empty(ctx, GF_F32, ndim, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++) gf_f32(t)[i] = value;
    return t;
}

gf_tensor *gf_scalar(gf_ctx *ctx, float value) { return gf_full(ctx, 0, NULL, value); }

gf_tensor *gf_rand(gf_ctx *ctx, int ndim, const int64_t *shape, float lo, float hi) {
    gf_tensor *t = gf_empty(ctx, GF_F32, ndim, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            gf_f32(t)[i] = lo + (hi - lo) * gf_rng_uniform(&ctx->rng);
    return t;
}

gf_tensor *gf_randn(gf_ctx *ctx, int ndim, const int64_t *shape, float mean, float std) {
    gf_tensor *t = gf_empty(ctx, GF_F32, ndim, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            gf_f32(t)[i] = mean + std * gf_rng_normal(&ctx->rng);
    return t;
}

void *gf_scratch(gf_ctx *ctx, size_t bytes) {
    void *p = gf_arena_alloc(ctx->bw_scratch ? ctx->bw_scratch : ctx->arena, bytes);
    if (!p) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory (%zu bytes of scratch)", bytes);
    return p;
}

gf_scratch_scope gf_scratch_scope_begin(gf_ctx *ctx) {
    gf_scratch_scope s = {0};
    if (!ctx->inplace || ctx->bw_scratch) return s;
    if (!ctx->bw_arena) ctx->bw_arena = gf_arena_new((size_t)1 << 20);
    if (!ctx->bw_arena) return s; /* then the step's arena, as without the rules */
    s.arena = ctx->bw_arena;
    s.mark = gf_arena_get_mark(s.arena);
    ctx->bw_scratch = s.arena;
    return s;
}

void gf_scratch_scope_end(gf_ctx *ctx, gf_scratch_scope s) {
    if (!s.arena) return;
    ctx->bw_scratch = NULL;
    gf_arena_rewind(s.arena, s.mark);
}

float *gf_scratch_f32(gf_ctx *ctx, int64_t n) { return gf_scratch(ctx, (size_t)n * sizeof(float)); }

float *gf_scratch_zero_f32(gf_ctx *ctx, int64_t n) {
    float *p = gf_scratch_f32(ctx, n);
    if (p) memset(p, 0, (size_t)n * sizeof(float));
    return p;
}

/* ---- inspection and copies ------------------------------------------------------------ */

bool gf_tensor_is_contiguous(const gf_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

bool gf_same_shape(const gf_tensor *a, const gf_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

static int64_t offset_of(const gf_tensor *t, int64_t flat) {
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (flat % t->shape[d]) * t->stride[d];
        flat /= t->shape[d];
    }
    return off;
}

float gf_get_f32(const gf_tensor *t, int64_t flat) { return gf_f32(t)[offset_of(t, flat)]; }
int64_t gf_get_i64(const gf_tensor *t, int64_t flat) { return gf_i64(t)[offset_of(t, flat)]; }

/* Strided element copy between a view and a dense buffer (dir 0: view -> dense). */
static void strided_copy(const gf_tensor *t, void *dense, int dir) {
    size_t es = gf_dtype_size(t->dtype);
    if (t->numel == 0) return;
    if (gf_tensor_is_contiguous(t)) {
        if (dir == 0) memcpy(dense, t->data, (size_t)t->numel * es);
        else memcpy(t->data, dense, (size_t)t->numel * es);
        return;
    }
    int64_t idx[GF_MAX_DIMS] = {0};
    int64_t k = 0;
    char *base = t->data, *d = dense;
    do {
        int64_t off = 0;
        for (int i = 0; i < t->ndim; i++) off += idx[i] * t->stride[i];
        if (dir == 0) memcpy(d + k * es, base + off * (int64_t)es, es);
        else memcpy(base + off * (int64_t)es, d + k * es, es);
        k++;
    } while (gf_index_next(t->ndim, t->shape, idx));
}

void gf_copy_out(const gf_tensor *t, void *dst) { strided_copy(t, dst, 0); }
void gf_copy_in(gf_tensor *t, const void *src) { strided_copy(t, (void *)src, 1); }

const float *gf_contig_f32(gf_ctx *ctx, const gf_tensor *t) {
    if (gf_tensor_is_contiguous(t)) return gf_f32(t);
    float *p = gf_scratch_f32(ctx, t->numel);
    if (p) gf_copy_out(t, p);
    return p;
}

const int64_t *gf_contig_i64(gf_ctx *ctx, const gf_tensor *t) {
    if (gf_tensor_is_contiguous(t)) return gf_i64(t);
    int64_t *p = gf_scratch(ctx, (size_t)t->numel * sizeof(int64_t));
    if (p) gf_copy_out(t, p);
    return p;
}

/* ---- checks ------------------------------------------------------------------------- */

bool gf_check_tensor(gf_ctx *ctx, const char *op, const char *arg, const gf_tensor *t,
                     gf_dtype dt) {
    if (!t) {
        if (ctx->status == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s is NULL", op, arg);
        return false;
    }
    if (t->dtype != dt) {
        char b[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_DTYPE, "%s: %s must be %s, got %s tensor %s", op, arg,
                         gf_dtype_name(dt), gf_dtype_name(t->dtype),
                         gf_shape_str(t, b, sizeof b));
        return false;
    }
    return true;
}

bool gf_check_axis(gf_ctx *ctx, const char *op, int ndim, int axis, int *out) {
    int a = axis < 0 ? axis + ndim : axis;
    if (a < 0 || a >= ndim) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s: axis %d out of range for a %d-dimensional tensor", op, axis, ndim);
        return false;
    }
    *out = a;
    return true;
}

bool gf_broadcast(gf_ctx *ctx, const char *op, const gf_tensor *a, const gf_tensor *b,
                  gf_bcast *bc) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    bc->ndim = nd;
    bc->numel = 1;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[GF_SHAPE_BUF], sb[GF_SHAPE_BUF];
            gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                             "%s: shapes %s and %s cannot be broadcast (dimension %d: %lld vs %lld)",
                             op, gf_shape_str(a, sa, sizeof sa), gf_shape_str(b, sb, sizeof sb),
                             i, (long long)da, (long long)db);
            return false;
        }
        bc->shape[i] = da == 1 ? db : da;
        bc->sa[i] = (ia >= 0 && da != 1) ? a->stride[ia] : 0;
        bc->sb[i] = (ib >= 0 && db != 1) ? b->stride[ib] : 0;
        bc->numel *= bc->shape[i];
    }
    return true;
}

void gf_reduce_broadcast_add(int out_ndim, const int64_t *out_shape, const float *g,
                             const gf_tensor *t, float *dst) {
    int64_t n = gf_numel_of(out_ndim, out_shape);
    if (t->numel == n) { /* no broadcasting happened: same element order */
        for (int64_t i = 0; i < n; i++) dst[i] += g[i];
        return;
    }
    /* strides of t's contiguous gradient over the output shape (0 in broadcast dims) */
    int64_t ts[GF_MAX_DIMS], st[GF_MAX_DIMS];
    gf_contiguous_strides(t->ndim, t->shape, ts);
    for (int i = 0; i < out_ndim; i++) {
        int it = i - (out_ndim - t->ndim);
        st[i] = (it >= 0 && t->shape[it] != 1) ? ts[it] : 0;
    }
    int64_t idx[GF_MAX_DIMS] = {0};
    int last = out_ndim - 1;
    int64_t inner = out_ndim ? out_shape[last] : 1;
    for (int64_t k = 0; k < n; k += inner) {
        int64_t off = 0;
        for (int i = 0; i < last; i++) off += idx[i] * st[i];
        float *d = dst + off;
        const float *gg = g + k;
        if (out_ndim == 0 || st[last] == 0) {
            float s = 0;
            for (int64_t j = 0; j < inner; j++) s += gg[j];
            d[0] += s;
        } else {
            for (int64_t j = 0; j < inner; j++) d[j] += gg[j];
        }
        if (out_ndim <= 1) break;
        gf_index_next(last, out_shape, idx);
    }
}

void gf_named_tensors_free(gf_named_tensors *list) {
    if (!list) return;
    for (int i = 0; i < list->n; i++) free(list->items[i].name);
    free(list->items);
    free(list);
}
