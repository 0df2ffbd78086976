/* Shape ops: reshape, flatten, transpose, permute, slice (views sharing data), contiguous
 * copy, concat, split and constant pad. A view records where each of its elements sits in
 * the input's contiguous layout, which is all its backward needs. */
#include "core/internal.h"
#include "graft/ops.h"

typedef struct {
    int64_t lstride[GF_MAX_DIMS]; /* strides into the input's contiguous gradient */
    int64_t loffset;
} view_saved;

/* Makes the view tensor (data strides dstride, data offset doff elements) and records it. */
static gf_tensor *make_view(gf_ctx *ctx, gf_tensor *x, int ndim, const int64_t *shape,
                            const int64_t *dstride, int64_t doff, const int64_t *lstride,
                            int64_t loff) {
    char *base = (char *)x->data + doff * (int64_t)gf_dtype_size(x->dtype);
    gf_tensor *out = gf_view_raw(ctx, x->dtype, ndim, shape, dstride, base);
    if (!out) return NULL;
    if (x->dtype == GF_F32 && gf_wants_grad(ctx, &x, 1)) {
        gf_node *n = gf_record(ctx, GF_OP_VIEW, out, &x, 1, sizeof(view_saved));
        if (!n) return NULL;
        view_saved *s = n->saved;
        for (int i = 0; i < ndim; i++) s->lstride[i] = lstride[i];
        s->loffset = loff;
    }
    return out;
}

/* True when the view lists the input's elements in their contiguous order (a reshape or
 * flatten of contiguous data): its gradient is then the input's, element for element. */
static bool view_is_reshape(const gf_node *n) {
    const view_saved *s = n->saved;
    const gf_tensor *o = n->out;
    if (s->loffset != 0 || o->numel != n->in[0]->numel) return false;
    int64_t st[GF_MAX_DIMS];
    gf_contiguous_strides(o->ndim, o->shape, st);
    for (int d = 0; d < o->ndim; d++)
        if (o->shape[d] > 1 && s->lstride[d] != st[d]) return false;
    return true;
}

void gf_bw_view(gf_ctx *ctx, gf_node *n) {
    gf_tensor *in = n->in[0];
    const gf_tensor *o = n->out;
    /* A reshape inside a Sequential (Flatten before Linear): the input takes the output's
     * dead gradient buffer under its own shape instead of a zeroed copy. 0 + g keeps what
     * zero-fill and += gave (a -0 becomes +0). */
    if (o->grad && in->requires_grad && !in->grad && !in->persistent && n->out_private &&
        view_is_reshape(n)) {
        gf_tensor *g = gf_view_raw(ctx, GF_F32, in->ndim, in->shape, NULL, o->grad->data);
        if (!g) return;
        float *pg = gf_f32(g);
        for (int64_t i = 0; i < g->numel; i++) pg[i] = 0.0f + pg[i];
        in->grad = g;
        return;
    }
    float *gx = gf_grad_of(ctx, in);
    if (!gx) return;
    const view_saved *s = n->saved;
    const float *g = gf_f32(o->grad);
    if (o->numel == 0) return;
    if (o->ndim == 0) {
        gx[s->loffset] += g[0];
        return;
    }
    /* row by row along the last axis: a split or slice of the last axis (attention's
     * q / k / v) then adds contiguous runs */
    const int last = o->ndim - 1;
    const int64_t len = o->shape[last], ls = s->lstride[last];
    int64_t idx[GF_MAX_DIMS] = {0}, k = 0;
    do {
        int64_t off = s->loffset;
        for (int d = 0; d < last; d++) off += idx[d] * s->lstride[d];
        float *row = gx + off;
        if (ls == 1)
            for (int64_t j = 0; j < len; j++) row[j] += g[k + j];
        else
            for (int64_t j = 0; j < len; j++) row[j * ls] += g[k + j];
        k += len;
    } while (gf_index_next(last, o->shape, idx));
}

gf_tensor *gf_contiguous(gf_ctx *ctx, gf_tensor *x) {
    if (!x) {
        gf_check_tensor(ctx, "contiguous", "input", x, GF_F32);
        return NULL;
    }
    if (gf_tensor_is_contiguous(x)) return x;
    gf_tensor *out = gf_empty(ctx, x->dtype, x->ndim, x->shape);
    if (!out) return NULL;
    gf_copy_out(x, out->data);
    if (x->dtype == GF_F32 && gf_wants_grad(ctx, &x, 1) && !gf_record(ctx, GF_OP_COPY, out, &x, 1, 0))
        return NULL;
    return out;
}

void gf_bw_copy(gf_ctx *ctx, gf_node *n) {
    float *gx = gf_grad_of(ctx, n->in[0]);
    if (!gx) return;
    const float *g = gf_f32(n->out->grad);
    for (int64_t i = 0; i < n->out->numel; i++) gx[i] += g[i];
}

static bool check_any(gf_ctx *ctx, const char *op, const gf_tensor *x) {
    return gf_check_tensor(ctx, op, "input", x, x ? x->dtype : GF_F32);
}

gf_tensor *gf_reshape(gf_ctx *ctx, gf_tensor *x, int ndim, const int64_t *shape) {
    if (!check_any(ctx, "reshape", x)) return NULL;
    char sx[GF_SHAPE_BUF], ss[GF_SHAPE_BUF];
    if (ndim < 0 || ndim > GF_MAX_DIMS || (ndim > 0 && !shape)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "reshape: invalid target rank %d", ndim);
        return NULL;
    }
    int64_t s[GF_MAX_DIMS];
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1 && infer < 0) infer = i;
        else if (s[i] < 0) {
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "reshape: invalid target shape %s for input %s",
                             gf_dims_str(ndim, shape, ss, sizeof ss), gf_shape_str(x, sx, sizeof sx));
            return NULL;
        } else known *= s[i];
    }
    if (infer >= 0) {
        if (known == 0 || x->numel % known) {
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "reshape: cannot infer -1 in %s for input %s",
                             gf_dims_str(ndim, shape, ss, sizeof ss), gf_shape_str(x, sx, sizeof sx));
            return NULL;
        }
        s[infer] = x->numel / known;
        known *= s[infer];
    }
    if (known != x->numel) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "reshape: input %s has %lld elements, target shape %s has %lld",
                         gf_shape_str(x, sx, sizeof sx), (long long)x->numel,
                         gf_dims_str(ndim, shape, ss, sizeof ss), (long long)known);
        return NULL;
    }
    gf_tensor *c = gf_contiguous(ctx, x);
    if (!c) return NULL;
    int64_t st[GF_MAX_DIMS];
    gf_contiguous_strides(ndim, s, st);
    return make_view(ctx, c, ndim, s, st, 0, st, 0);
}

gf_tensor *gf_flatten(gf_ctx *ctx, gf_tensor *x, int start_axis, int end_axis) {
    if (!check_any(ctx, "flatten", x)) return NULL;
    if (x->ndim == 0) return gf_reshape(ctx, x, 1, (int64_t[]){1});
    int s, e;
    if (!gf_check_axis(ctx, "flatten", x->ndim, start_axis, &s) ||
        !gf_check_axis(ctx, "flatten", x->ndim, end_axis, &e))
        return NULL;
    if (s > e) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "flatten: start axis %d is after end axis %d",
                         start_axis, end_axis);
        return NULL;
    }
    int64_t shape[GF_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < s; i++) shape[nd++] = x->shape[i];
    int64_t m = 1;
    for (int i = s; i <= e; i++) m *= x->shape[i];
    shape[nd++] = m;
    for (int i = e + 1; i < x->ndim; i++) shape[nd++] = x->shape[i];
    return gf_reshape(ctx, x, nd, shape);
}

gf_tensor *gf_permute(gf_ctx *ctx, gf_tensor *x, const int *perm) {
    if (!check_any(ctx, "permute", x)) return NULL;
    if (!perm && x->ndim > 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "permute: perm is NULL");
        return NULL;
    }
    int64_t cst[GF_MAX_DIMS], shape[GF_MAX_DIMS], dst[GF_MAX_DIMS], lst[GF_MAX_DIMS];
    gf_contiguous_strides(x->ndim, x->shape, cst);
    bool seen[GF_MAX_DIMS] = {false};
    for (int i = 0; i < x->ndim; i++) {
        int a;
        if (!gf_check_axis(ctx, "permute", x->ndim, perm[i], &a)) return NULL;
        if (seen[a]) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "permute: axis %d appears twice", perm[i]);
            return NULL;
        }
        seen[a] = true;
        shape[i] = x->shape[a];
        dst[i] = x->stride[a];
        lst[i] = cst[a];
    }
    return make_view(ctx, x, x->ndim, shape, dst, 0, lst, 0);
}

gf_tensor *gf_transpose(gf_ctx *ctx, gf_tensor *x, int axis0, int axis1) {
    if (!check_any(ctx, "transpose", x)) return NULL;
    int a, b;
    if (!gf_check_axis(ctx, "transpose", x->ndim, axis0, &a) ||
        !gf_check_axis(ctx, "transpose", x->ndim, axis1, &b))
        return NULL;
    int perm[GF_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) perm[i] = i;
    perm[a] = b;
    perm[b] = a;
    return gf_permute(ctx, x, perm);
}

gf_tensor *gf_slice(gf_ctx *ctx, gf_tensor *x, int axis, int64_t start, int64_t end,
                    int64_t step) {
    if (!check_any(ctx, "slice", x)) return NULL;
    int a;
    if (!gf_check_axis(ctx, "slice", x->ndim, axis, &a)) return NULL;
    int64_t size = x->shape[a];
    if (start < 0) start += size;
    if (end < 0) end += size;
    if (end > size) end = size;
    if (step < 1 || start < 0 || start > size || end < start) {
        char sx[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "slice: range [%lld:%lld:%lld] is invalid for axis %d of %s",
                         (long long)start, (long long)end, (long long)step, axis,
                         gf_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    /* a step past the axis takes one element at most, as the axis' size does: clamped, so the
     * strides below cannot overflow (a file may give any step) */
    if (step > size) step = size > 0 ? size : 1;
    int64_t cst[GF_MAX_DIMS], shape[GF_MAX_DIMS], dst[GF_MAX_DIMS];
    gf_contiguous_strides(x->ndim, x->shape, cst);
    memcpy(shape, x->shape, sizeof shape);
    memcpy(dst, x->stride, sizeof dst);
    shape[a] = (end - start + step - 1) / step;
    dst[a] = x->stride[a] * step;
    int64_t lst[GF_MAX_DIMS];
    memcpy(lst, cst, sizeof lst);
    lst[a] = cst[a] * step;
    return make_view(ctx, x, x->ndim, shape, dst, start * x->stride[a], lst, start * cst[a]);
}

gf_status gf_split(gf_ctx *ctx, gf_tensor *x, const int64_t *sizes, int n, int axis,
                   gf_tensor **out) {
    if (!check_any(ctx, "split", x)) return ctx->status;
    int a;
    if (!gf_check_axis(ctx, "split", x->ndim, axis, &a)) return ctx->status;
    if (n < 1 || !sizes || !out)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "split: need n >= 1 sizes and an output array");
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] < 0) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "split: size %d is negative", i);
        total += sizes[i];
    }
    if (total != x->shape[a]) {
        char sx[GF_SHAPE_BUF];
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                                "split: sizes sum to %lld but axis %d of %s has %lld",
                                (long long)total, axis, gf_shape_str(x, sx, sizeof sx),
                                (long long)x->shape[a]);
    }
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        out[i] = gf_slice(ctx, x, a, at, at + sizes[i], 1);
        if (!out[i]) return ctx->status;
        at += sizes[i];
    }
    return GF_OK;
}

/* ---- concat ------------------------------------------------------------------------- */

typedef struct {
    int axis;
} concat_saved;

/* Rows before the axis (outer), elements from the axis on (per-input chunk). */
static void outer_inner(const gf_tensor *t, int axis, int64_t *outer, int64_t *chunk) {
    *outer = gf_numel_of(axis, t->shape);
    *chunk = gf_numel_of(t->ndim - axis, t->shape + axis);
}

gf_tensor *gf_concat(gf_ctx *ctx, gf_tensor *const *xs, int n, int axis) {
    if (!xs || n < 1) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "concat: need at least one tensor");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!gf_check_tensor(ctx, "concat", "input", xs[i], GF_F32)) return NULL;
    int a;
    if (!gf_check_axis(ctx, "concat", xs[0]->ndim, axis, &a)) return NULL;
    int64_t shape[GF_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[a] = 0;
    for (int i = 0; i < n; i++) {
        bool ok = xs[i]->ndim == xs[0]->ndim;
        for (int d = 0; ok && d < xs[0]->ndim; d++)
            if (d != a && xs[i]->shape[d] != xs[0]->shape[d]) ok = false;
        if (!ok) {
            char s0[GF_SHAPE_BUF], si[GF_SHAPE_BUF];
            gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                             "concat: tensor %d has shape %s, which does not match %s outside axis %d",
                             i, gf_shape_str(xs[i], si, sizeof si), gf_shape_str(xs[0], s0, sizeof s0), axis);
            return NULL;
        }
        shape[a] += xs[i]->shape[a];
    }
    gf_tensor *out = gf_empty(ctx, GF_F32, xs[0]->ndim, shape);
    if (!out) return NULL;
    int64_t outer, out_chunk;
    outer_inner(out, a, &outer, &out_chunk);
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        int64_t o_, chunk;
        outer_inner(xs[i], a, &o_, &chunk);
        const float *p = gf_contig_f32(ctx, xs[i]);
        if (!p) return NULL;
        for (int64_t r = 0; r < outer; r++)
            memcpy(gf_f32(out) + r * out_chunk + at, p + r * chunk, sizeof(float) * (size_t)chunk);
        at += chunk;
    }
    if (gf_wants_grad(ctx, xs, n)) {
        gf_node *node = gf_record(ctx, GF_OP_CONCAT, out, xs, n, sizeof(concat_saved));
        if (!node) return NULL;
        ((concat_saved *)node->saved)->axis = a;
    }
    return out;
}

void gf_bw_concat(gf_ctx *ctx, gf_node *n) {
    int a = ((concat_saved *)n->saved)->axis;
    int64_t outer, out_chunk, at = 0;
    outer_inner(n->out, a, &outer, &out_chunk);
    const float *g = gf_f32(n->out->grad);
    for (int i = 0; i < n->n_in; i++) {
        int64_t o_, chunk;
        outer_inner(n->in[i], a, &o_, &chunk);
        float *gi = gf_grad_of(ctx, n->in[i]);
        if (gi)
            for (int64_t r = 0; r < outer; r++)
                for (int64_t j = 0; j < chunk; j++) gi[r * chunk + j] += g[r * out_chunk + at + j];
        at += chunk;
    }
}

/* ---- pad ---------------------------------------------------------------------------- */

typedef struct {
    int64_t before[GF_MAX_DIMS]; /* per axis, may be negative (crop) */
} pad_saved;

/* Visits every output element that comes from the input: out index = in index + before.
 * Row by row along the last axis: the rows of x (every index but the last) that land inside
 * the output, each copied (to_out) or added back as one run of the last axis. */
static void pad_map(const gf_tensor *x, const gf_tensor *out, const int64_t *before,
                    float *outp, const float *inp, bool to_out) {
    const int nd = x->ndim;
    int64_t ost[GF_MAX_DIMS], ist[GF_MAX_DIMS];
    gf_contiguous_strides(nd, out->shape, ost);
    gf_contiguous_strides(nd, x->shape, ist);
    if (x->numel == 0 || out->numel == 0) return;
    if (nd == 0) {
        if (to_out) outp[0] = inp[0];
        else ((float *)inp)[0] += outp[0];
        return;
    }
    /* the run of the last axis inside the output: input columns [lo, hi) */
    const int64_t w = x->shape[nd - 1], b = before[nd - 1], ow = out->shape[nd - 1];
    const int64_t lo = b < 0 ? -b : 0, hi = w + b > ow ? ow - b : w;
    if (lo >= hi) return;
    int64_t idx[GF_MAX_DIMS] = {0};
    do {
        int64_t oo = lo + b, io = lo; /* the last axis is contiguous */
        bool inside = true;
        for (int d = 0; d < nd - 1; d++) {
            int64_t od = idx[d] + before[d];
            if (od < 0 || od >= out->shape[d]) { inside = false; break; }
            oo += od * ost[d];
            io += idx[d] * ist[d];
        }
        if (!inside) continue;
        if (to_out) {
            memcpy(outp + oo, inp + io, sizeof(float) * (size_t)(hi - lo));
        } else {
            float *gi = (float *)inp + io;
            const float *go = outp + oo;
            for (int64_t j = 0; j < hi - lo; j++) gi[j] += go[j];
        }
    } while (gf_index_next(nd - 1, x->shape, idx));
}

gf_tensor *gf_pad(gf_ctx *ctx, gf_tensor *x, const int64_t *pads, int n_pads, float value) {
    if (!gf_check_tensor(ctx, "pad", "input", x, GF_F32)) return NULL;
    if (n_pads < 0 || n_pads % 2 || n_pads / 2 > x->ndim || (n_pads && !pads)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "pad: %d pad values for a %d-dimensional input (need an even count, at most %d)",
                         n_pads, x->ndim, 2 * x->ndim);
        return NULL;
    }
    pad_saved s = {{0}};
    int64_t shape[GF_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    for (int k = 0; k < n_pads / 2; k++) {
        int d = x->ndim - 1 - k;
        s.before[d] = pads[2 * k];
        shape[d] = x->shape[d] + pads[2 * k] + pads[2 * k + 1];
        if (shape[d] < 0) {
            char sx[GF_SHAPE_BUF];
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "pad: padding (%lld, %lld) crops axis %d of %s below zero",
                             (long long)pads[2 * k], (long long)pads[2 * k + 1], d,
                             gf_shape_str(x, sx, sizeof sx));
            return NULL;
        }
    }
    gf_tensor *out = gf_full(ctx, x->ndim, shape, value);
    if (!out) return NULL;
    const float *px = gf_contig_f32(ctx, x);
    if (!px) return NULL;
    pad_map(x, out, s.before, gf_f32(out), px, true);
    if (gf_wants_grad(ctx, &x, 1)) {
        gf_node *n = gf_record(ctx, GF_OP_PAD, out, &x, 1, sizeof s);
        if (!n) return NULL;
        *(pad_saved *)n->saved = s;
    }
    return out;
}

void gf_bw_pad(gf_ctx *ctx, gf_node *n) {
    float *gx = gf_grad_of(ctx, n->in[0]);
    if (!gx) return;
    pad_map(n->in[0], n->out, ((pad_saved *)n->saved)->before, gf_f32(n->out->grad), gx, false);
}
