/* Matrix products through CBLAS sgemm: torch.matmul semantics (1-D, 2-D, batched with
 * broadcast batch dimensions) and linear (x w^T + b, PyTorch's Linear layout). */
#include "core/internal.h"
#include "graft/ops.h"

#include "kernels/gemm.h"

/* ---- matmul ------------------------------------------------------------------------- */

/* One matmul operand as sgemm sees it: a base pointer, a row-major matrix per batch (maybe
 * transposed, with leading dimension ld) and batch strides over the broadcast batch shape. */
typedef struct {
    const float *base;
    bool trans;
    int64_t ld;
    int64_t bstride[GF_MAX_DIMS];
} mm_operand;

typedef struct {
    int nbatch_dims;
    int64_t bshape[GF_MAX_DIMS];
    int64_t nbatch;
    int64_t m, k, n;
    bool a_vec, b_vec;          /* 1-D operands promoted to matrices */
    int64_t a_shape[GF_MAX_DIMS], b_shape[GF_MAX_DIMS]; /* promoted shapes */
    int a_nd, b_nd;
} mm_plan;

/* Describes a 2-D+ tensor (with promoted shape) as an sgemm operand when its last two strides
 * allow it; returns false when a contiguous copy is needed. */
static bool describe(const gf_tensor *t, int nd, const int64_t *shape, const int64_t *stride,
                     const mm_plan *p, mm_operand *op) {
    int64_t rows = shape[nd - 2], cols = shape[nd - 1];
    int64_t sr = stride[nd - 2], sc = stride[nd - 1];
    op->base = gf_f32(t);
    if ((sc == 1 || cols == 1) && (sr >= cols || rows == 1)) {
        op->trans = false;
        op->ld = rows == 1 ? (cols > 0 ? cols : 1) : sr;
    } else if ((sr == 1 || rows == 1) && (sc >= rows || cols == 1)) {
        op->trans = true;
        op->ld = cols == 1 ? (rows > 0 ? rows : 1) : sc;
    } else {
        return false;
    }
    if (op->ld < 1) op->ld = 1;
    for (int i = 0; i < p->nbatch_dims; i++) {
        int it = i - (p->nbatch_dims - (nd - 2));
        op->bstride[i] = (it >= 0 && shape[it] != 1) ? stride[it] : 0;
    }
    return true;
}

static bool plan_matmul(gf_ctx *ctx, const gf_tensor *a, const gf_tensor *b, mm_plan *p) {
    char sa[GF_SHAPE_BUF], sb[GF_SHAPE_BUF];
    if (a->ndim == 0 || b->ndim == 0) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "matmul: both arguments need at least 1 dimension, got %s and %s",
                         gf_shape_str(a, sa, sizeof sa), gf_shape_str(b, sb, sizeof sb));
        return false;
    }
    memset(p, 0, sizeof *p);
    p->a_vec = a->ndim == 1;
    p->b_vec = b->ndim == 1;
    p->a_nd = p->a_vec ? 2 : a->ndim;
    p->b_nd = p->b_vec ? 2 : b->ndim;
    if (p->a_vec) { p->a_shape[0] = 1; p->a_shape[1] = a->shape[0]; }
    else memcpy(p->a_shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    if (p->b_vec) { p->b_shape[0] = b->shape[0]; p->b_shape[1] = 1; }
    else memcpy(p->b_shape, b->shape, sizeof(int64_t) * (size_t)b->ndim);
    p->m = p->a_shape[p->a_nd - 2];
    p->k = p->a_shape[p->a_nd - 1];
    p->n = p->b_shape[p->b_nd - 1];
    if (p->b_shape[p->b_nd - 2] != p->k) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "matmul: inner dimensions differ: %s @ %s (%lld vs %lld)",
                         gf_shape_str(a, sa, sizeof sa), gf_shape_str(b, sb, sizeof sb),
                         (long long)p->k, (long long)p->b_shape[p->b_nd - 2]);
        return false;
    }
    int na = p->a_nd - 2, nb = p->b_nd - 2;
    p->nbatch_dims = na > nb ? na : nb;
    p->nbatch = 1;
    for (int i = 0; i < p->nbatch_dims; i++) {
        int ia = i - (p->nbatch_dims - na), ib = i - (p->nbatch_dims - nb);
        int64_t da = ia >= 0 ? p->a_shape[ia] : 1, db = ib >= 0 ? p->b_shape[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "matmul: batch dimensions of %s and %s cannot be broadcast",
                             gf_shape_str(a, sa, sizeof sa), gf_shape_str(b, sb, sizeof sb));
            return false;
        }
        p->bshape[i] = da == 1 ? db : da;
        p->nbatch *= p->bshape[i];
    }
    if (p->nbatch_dims + 2 > GF_MAX_DIMS) return false;
    return true;
}

static void promoted_strides(const gf_tensor *t, bool vec, bool is_a, int64_t *stride) {
    if (!vec) {
        memcpy(stride, t->stride, sizeof(int64_t) * (size_t)t->ndim);
        return;
    }
    if (is_a) { stride[0] = 0; stride[1] = t->stride[0]; }
    else { stride[0] = t->stride[0]; stride[1] = 0; }
}

/* Gets both operands, copying an input to contiguous memory when its layout does not suit. */
static bool operands(gf_ctx *ctx, const gf_tensor *a, const gf_tensor *b, const mm_plan *p,
                     mm_operand *oa, mm_operand *ob) {
    int64_t st[GF_MAX_DIMS];
    const gf_tensor *ts[2] = {a, b};
    mm_operand *ops[2] = {oa, ob};
    for (int w = 0; w < 2; w++) {
        const gf_tensor *t = ts[w];
        bool vec = w == 0 ? p->a_vec : p->b_vec;
        int nd = w == 0 ? p->a_nd : p->b_nd;
        const int64_t *shape = w == 0 ? p->a_shape : p->b_shape;
        promoted_strides(t, vec, w == 0, st);
        if (describe(t, nd, shape, st, p, ops[w])) continue;
        const float *c = gf_contig_f32(ctx, t);
        if (!c) return false;
        gf_tensor tmp = *t;
        tmp.data = (void *)c;
        gf_contiguous_strides(t->ndim, t->shape, tmp.stride);
        promoted_strides(&tmp, vec, w == 0, st);
        describe(&tmp, nd, shape, st, p, ops[w]);
    }
    return true;
}

static int64_t batch_offset(const mm_plan *p, const int64_t *bstride, int64_t bi) {
    int64_t off = 0;
    for (int d = p->nbatch_dims - 1; d >= 0; d--) {
        off += (bi % p->bshape[d]) * bstride[d];
        bi /= p->bshape[d];
    }
    return off;
}

static void sgemm(gf_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                  const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                  int64_t ldc) {
    if (m == 0 || n == 0) return;
    gf_gemm(ctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

typedef struct {
    mm_plan plan;
} mm_saved;

gf_tensor *gf_matmul(gf_ctx *ctx, gf_tensor *a, gf_tensor *b) {
    if (!gf_check_tensor(ctx, "matmul", "a", a, GF_F32) || !gf_check_tensor(ctx, "matmul", "b", b, GF_F32))
        return NULL;
    mm_plan p;
    if (!plan_matmul(ctx, a, b, &p)) return NULL;
    int64_t oshape[GF_MAX_DIMS];
    int ond = 0;
    for (int i = 0; i < p.nbatch_dims; i++) oshape[ond++] = p.bshape[i];
    if (!p.a_vec) oshape[ond++] = p.m;
    if (!p.b_vec) oshape[ond++] = p.n;
    gf_tensor *out = gf_empty(ctx, GF_F32, ond, oshape);
    if (!out) return NULL;
    mm_operand oa, ob;
    if (!operands(ctx, a, b, &p, &oa, &ob)) return NULL;
    float *o = gf_f32(out);
    if (p.k == 0) memset(o, 0, sizeof(float) * (size_t)out->numel);
    else
        for (int64_t bi = 0; bi < p.nbatch; bi++)
            sgemm(ctx, oa.trans, ob.trans, p.m, p.n, p.k, 1.0f, oa.base + batch_offset(&p, oa.bstride, bi),
                  oa.ld, ob.base + batch_offset(&p, ob.bstride, bi), ob.ld, 0.0f,
                  o + bi * p.m * p.n, p.n);
    gf_tensor *in[2] = {a, b};
    if (gf_wants_grad(ctx, in, 2)) {
        gf_node *n = gf_record(ctx, GF_OP_MATMUL, out, in, 2, sizeof(mm_saved));
        if (!n) return NULL;
        ((mm_saved *)n->saved)->plan = p;
    }
    return out;
}

/* For C = A B per batch: dA += dC B^T and dB += A^T dC. A gradient buffer is contiguous over
 * the input's own (unbroadcast) shape, so broadcast batches accumulate into one slot. */
void gf_bw_matmul(gf_ctx *ctx, gf_node *n) {
    const mm_plan *p = &((mm_saved *)n->saved)->plan;
    gf_tensor *a = n->in[0], *b = n->in[1];
    mm_operand oa, ob;
    if (!operands(ctx, a, b, p, &oa, &ob)) return;
    const float *g = gf_f32(n->out->grad);
    int na = p->a_nd - 2, nb = p->b_nd - 2;
    float *ga = gf_grad_of(ctx, a);
    if (ga) {
        int64_t gst[GF_MAX_DIMS], bst[GF_MAX_DIMS];
        gf_contiguous_strides(p->a_nd, p->a_shape, gst);
        for (int i = 0; i < p->nbatch_dims; i++) {
            int it = i - (p->nbatch_dims - na);
            bst[i] = (it >= 0 && p->a_shape[it] != 1) ? gst[it] : 0;
        }
        for (int64_t bi = 0; bi < p->nbatch; bi++)
            sgemm(ctx, false, !ob.trans, p->m, p->k, p->n, 1.0f, g + bi * p->m * p->n, p->n,
                  ob.base + batch_offset(p, ob.bstride, bi), ob.ld, 1.0f,
                  ga + batch_offset(p, bst, bi), p->k);
    }
    float *gb = gf_grad_of(ctx, b);
    if (gb) {
        int64_t gst[GF_MAX_DIMS], bst[GF_MAX_DIMS];
        gf_contiguous_strides(p->b_nd, p->b_shape, gst);
        for (int i = 0; i < p->nbatch_dims; i++) {
            int it = i - (p->nbatch_dims - nb);
            bst[i] = (it >= 0 && p->b_shape[it] != 1) ? gst[it] : 0;
        }
        for (int64_t bi = 0; bi < p->nbatch; bi++)
            sgemm(ctx, !oa.trans, false, p->k, p->n, p->m, 1.0f,
                  oa.base + batch_offset(p, oa.bstride, bi), oa.ld, g + bi * p->m * p->n, p->n,
                  1.0f, gb + batch_offset(p, bst, bi), p->n);
    }
}

/* ---- linear ------------------------------------------------------------------------- */

gf_tensor *gf_linear(gf_ctx *ctx, gf_tensor *x, gf_tensor *w, gf_tensor *b) {
    if (!gf_check_tensor(ctx, "linear", "input", x, GF_F32) ||
        !gf_check_tensor(ctx, "linear", "weight", w, GF_F32))
        return NULL;
    if (b && !gf_check_tensor(ctx, "linear", "bias", b, GF_F32)) return NULL;
    char sx[GF_SHAPE_BUF], sw[GF_SHAPE_BUF], sbias[GF_SHAPE_BUF];
    if (x->ndim < 1 || w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[1]) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "linear: input %s does not fit weight %s (expected input [..., %lld])",
                         gf_shape_str(x, sx, sizeof sx), gf_shape_str(w, sw, sizeof sw),
                         w->ndim == 2 ? (long long)w->shape[1] : -1LL);
        return NULL;
    }
    int64_t out_f = w->shape[0], in_f = w->shape[1];
    if (b && (b->ndim != 1 || b->shape[0] != out_f)) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "linear: bias %s does not fit weight %s (expected [%lld])",
                         gf_shape_str(b, sbias, sizeof sbias), gf_shape_str(w, sw, sizeof sw),
                         (long long)out_f);
        return NULL;
    }
    int64_t oshape[GF_MAX_DIMS];
    memcpy(oshape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    oshape[x->ndim - 1] = out_f;
    gf_tensor *out = gf_empty(ctx, GF_F32, x->ndim, oshape);
    if (!out) return NULL;
    const float *px = gf_contig_f32(ctx, x), *pw = gf_contig_f32(ctx, w);
    if (!px || !pw) return NULL;
    int64_t m = in_f ? x->numel / in_f : gf_numel_of(x->ndim - 1, x->shape);
    float *o = gf_f32(out);
    if (b) {
        const float *pb = gf_contig_f32(ctx, b);
        if (!pb) return NULL;
        for (int64_t i = 0; i < m; i++) memcpy(o + i * out_f, pb, sizeof(float) * (size_t)out_f);
    }
    if (in_f > 0)
        sgemm(ctx, false, true, m, out_f, in_f, 1.0f, px, in_f, pw, in_f, b ? 1.0f : 0.0f, o, out_f);
    else if (!b)
        memset(o, 0, sizeof(float) * (size_t)out->numel);
    gf_tensor *in[3] = {x, w, b};
    if (gf_wants_grad(ctx, in, 3)) {
        if (!gf_record(ctx, GF_OP_LINEAR, out, in, 3, 0)) return NULL;
    }
    return out;
}

/* y = x W^T + b: dx += dy W, dW += dy^T x, db += column sums of dy. */
void gf_bw_linear(gf_ctx *ctx, gf_node *n) {
    gf_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    int64_t out_f = w->shape[0], in_f = w->shape[1];
    int64_t m = n->out->numel / (out_f ? out_f : 1);
    const float *g = gf_f32(n->out->grad);
    if (out_f == 0) return;
    float *gx = gf_grad_of(ctx, x);
    if (gx && in_f) {
        const float *pw = gf_contig_f32(ctx, w);
        if (!pw) return;
        sgemm(ctx, false, false, m, in_f, out_f, 1.0f, g, out_f, pw, in_f, 1.0f, gx, in_f);
    }
    float *gw = gf_grad_of(ctx, w);
    if (gw && in_f) {
        const float *px = gf_contig_f32(ctx, x);
        if (!px) return;
        sgemm(ctx, true, false, out_f, in_f, m, 1.0f, g, out_f, px, in_f, 1.0f, gw, in_f);
    }
    float *gb = gf_grad_of(ctx, b);
    if (gb)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < out_f; j++) gb[j] += g[i * out_f + j];
}
