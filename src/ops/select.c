/* Elementwise selection with broadcasting: minimum and maximum of two tensors and where(cond,
 * a, b). Gradients go to the selected operand; a tie of minimum / maximum sends half to each
 * (torch.minimum / torch.maximum). */
#include "core/internal.h"
#include "graft/ops.h"

#include <math.h>

/* ---- minimum / maximum ----------------------------------------------------------------- */

typedef struct {
    gf_bcast bc;
    bool is_max;
} mm_saved;

/* Offsets of output element k in a and b for a broadcast. */
static void bcast_offsets(const gf_bcast *bc, int64_t k, int64_t *oa, int64_t *ob) {
    int64_t a = 0, b = 0;
    for (int d = bc->ndim - 1; d >= 0; d--) {
        int64_t i = k % bc->shape[d];
        k /= bc->shape[d];
        a += i * bc->sa[d];
        b += i * bc->sb[d];
    }
    *oa = a;
    *ob = b;
}

static gf_tensor *minmax(gf_ctx *ctx, gf_tensor *a, gf_tensor *b, bool is_max) {
    const char *name = is_max ? "maximum" : "minimum";
    if (!gf_check_tensor(ctx, name, "a", a, GF_F32) || !gf_check_tensor(ctx, name, "b", b, GF_F32))
        return NULL;
    mm_saved s = {.is_max = is_max};
    if (!gf_broadcast(ctx, name, a, b, &s.bc)) return NULL;
    gf_tensor *out = gf_empty(ctx, GF_F32, s.bc.ndim, s.bc.shape);
    if (!out) return NULL;
    const float *pa = gf_f32(a), *pb = gf_f32(b);
    float *o = gf_f32(out);
    const int64_t n = s.bc.numel;
#pragma omp parallel for num_threads(gf_threads_for(ctx, 4 * n)) schedule(static)
    for (int64_t k = 0; k < n; k++) {
        int64_t ia, ib;
        bcast_offsets(&s.bc, k, &ia, &ib);
        float x = pa[ia], y = pb[ib];
        /* NaN wins, as torch.maximum and numpy.maximum */
        o[k] = isnan(x) || isnan(y) ? x + y : is_max ? (x > y ? x : y) : (x < y ? x : y);
    }
    gf_tensor *in[2] = {a, b};
    if (gf_wants_grad(ctx, in, 2)) {
        gf_node *node = gf_record(ctx, GF_OP_MINMAX, out, in, 2, sizeof s);
        if (!node) return NULL;
        *(mm_saved *)node->saved = s;
    }
    return out;
}

gf_tensor *gf_maximum(gf_ctx *ctx, gf_tensor *a, gf_tensor *b) { return minmax(ctx, a, b, true); }
gf_tensor *gf_minimum(gf_ctx *ctx, gf_tensor *a, gf_tensor *b) { return minmax(ctx, a, b, false); }

void gf_bw_minmax(gf_ctx *ctx, gf_node *node) {
    const mm_saved *s = node->saved;
    gf_tensor *a = node->in[0], *b = node->in[1];
    const int64_t n = s->bc.numel;
    float *ta = a->requires_grad ? gf_scratch_f32(ctx, n) : NULL;
    float *tb = b->requires_grad ? gf_scratch_f32(ctx, n) : NULL;
    if ((a->requires_grad && !ta) || (b->requires_grad && !tb)) return;
    const float *pa = gf_f32(a), *pb = gf_f32(b), *g = gf_f32(node->out->grad);
    for (int64_t k = 0; k < n; k++) {
        int64_t ia, ib;
        bcast_offsets(&s->bc, k, &ia, &ib);
        float x = pa[ia], y = pb[ib];
        float wa = x == y ? 0.5f : (s->is_max ? x > y : x < y) ? 1.0f : 0.0f;
        if (ta) ta[k] = g[k] * wa;
        if (tb) tb[k] = g[k] * (1.0f - wa);
    }
    float *ga = ta ? gf_grad_of(ctx, a) : NULL, *gb = tb ? gf_grad_of(ctx, b) : NULL;
    if (ga) gf_reduce_broadcast_add(s->bc.ndim, s->bc.shape, ta, a, ga);
    if (gb) gf_reduce_broadcast_add(s->bc.ndim, s->bc.shape, tb, b, gb);
}

/* ---- where ------------------------------------------------------------------------------- */

typedef struct {
    int ndim;
    int64_t shape[GF_MAX_DIMS];
    int64_t sc[GF_MAX_DIMS], sa[GF_MAX_DIMS], sb[GF_MAX_DIMS]; /* strides over the output */
    int64_t numel;
} where_geom;

/* Broadcasts three shapes; false with an error naming them. */
static bool where_setup(gf_ctx *ctx, const gf_tensor *c, const gf_tensor *a, const gf_tensor *b,
                        where_geom *g) {
    const gf_tensor *t[3] = {c, a, b};
    int nd = 0;
    for (int i = 0; i < 3; i++) nd = t[i]->ndim > nd ? t[i]->ndim : nd;
    g->ndim = nd;
    g->numel = 1;
    int64_t *st[3] = {g->sc, g->sa, g->sb};
    for (int d = 0; d < nd; d++) {
        int64_t size = 1;
        for (int i = 0; i < 3; i++) {
            int k = d - (nd - t[i]->ndim);
            int64_t s = k >= 0 ? t[i]->shape[k] : 1;
            if (s != 1 && size != 1 && s != size) {
                char s0[GF_SHAPE_BUF], s1[GF_SHAPE_BUF], s2[GF_SHAPE_BUF];
                gf_ctx_set_error(ctx, GF_ERR_SHAPE, "where: shapes %s, %s and %s cannot be "
                                 "broadcast", gf_shape_str(c, s0, sizeof s0),
                                 gf_shape_str(a, s1, sizeof s1), gf_shape_str(b, s2, sizeof s2));
                return false;
            }
            if (s != 1) size = s;
        }
        g->shape[d] = size;
        g->numel *= size;
        for (int i = 0; i < 3; i++) {
            int k = d - (nd - t[i]->ndim);
            st[i][d] = k >= 0 && t[i]->shape[k] != 1 ? t[i]->stride[k] : 0;
        }
    }
    return true;
}

static void where_offsets(const where_geom *g, int64_t k, int64_t *oc, int64_t *oa, int64_t *ob) {
    int64_t c = 0, a = 0, b = 0;
    for (int d = g->ndim - 1; d >= 0; d--) {
        int64_t i = k % g->shape[d];
        k /= g->shape[d];
        c += i * g->sc[d], a += i * g->sa[d], b += i * g->sb[d];
    }
    *oc = c, *oa = a, *ob = b;
}

gf_tensor *gf_where(gf_ctx *ctx, gf_tensor *cond, gf_tensor *a, gf_tensor *b) {
    if (!gf_check_tensor(ctx, "where", "condition", cond, GF_I64) ||
        !gf_check_tensor(ctx, "where", "a", a, GF_F32) ||
        !gf_check_tensor(ctx, "where", "b", b, GF_F32))
        return NULL;
    where_geom g;
    if (!where_setup(ctx, cond, a, b, &g)) return NULL;
    gf_tensor *out = gf_empty(ctx, GF_F32, g.ndim, g.shape);
    if (!out) return NULL;
    const int64_t *pc = gf_i64(cond);
    const float *pa = gf_f32(a), *pb = gf_f32(b);
    float *o = gf_f32(out);
#pragma omp parallel for num_threads(gf_threads_for(ctx, 4 * g.numel)) schedule(static)
    for (int64_t k = 0; k < g.numel; k++) {
        int64_t ic, ia, ib;
        where_offsets(&g, k, &ic, &ia, &ib);
        o[k] = pc[ic] ? pa[ia] : pb[ib];
    }
    gf_tensor *in[3] = {cond, a, b};
    if (gf_wants_grad(ctx, in + 1, 2)) {
        gf_node *node = gf_record(ctx, GF_OP_WHERE, out, in, 3, sizeof g);
        if (!node) return NULL;
        *(where_geom *)node->saved = g;
    }
    return out;
}

void gf_bw_where(gf_ctx *ctx, gf_node *node) {
    const where_geom *g = node->saved;
    const int64_t *pc = gf_i64(node->in[0]);
    const float *gy = gf_f32(node->out->grad);
    for (int side = 1; side <= 2; side++) {
        gf_tensor *t = node->in[side];
        if (!t->requires_grad) continue;
        float *tmp = gf_scratch_f32(ctx, g->numel), *gt = tmp ? gf_grad_of(ctx, t) : NULL;
        if (!gt) return;
        for (int64_t k = 0; k < g->numel; k++) {
            int64_t ic, ia, ib;
            where_offsets(g, k, &ic, &ia, &ib);
            tmp[k] = (pc[ic] != 0) == (side == 1) ? gy[k] : 0.0f;
        }
        gf_reduce_broadcast_add(g->ndim, g->shape, tmp, t, gt);
    }
}
