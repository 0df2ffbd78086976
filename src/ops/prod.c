/* Product over axes (torch.prod over several dims, ONNX ReduceProd). The reduced axes are
 * moved last (a permute and a contiguous copy, both recorded), so the recorded op itself
 * multiplies rows. Its backward is the product of the other elements of the row, from prefix
 * and suffix products: exact where the row holds zeros, unlike dividing the product by x. */
#include "core/internal.h"
#include "graft/ops.h"

typedef struct {
    int64_t rows, len;
} prod_saved;

/* x contiguous [rows * len] -> [rows]; out_shape is the shape to give the result. */
static gf_tensor *prod_rows(gf_ctx *ctx, gf_tensor *x, int64_t rows, int64_t len, int ndim,
                            const int64_t *out_shape) {
    gf_tensor *out = gf_empty(ctx, GF_F32, ndim, out_shape);
    const float *px = out ? gf_contig_f32(ctx, x) : NULL;
    if (!px) return NULL;
    float *o = gf_f32(out);
    for (int64_t r = 0; r < rows; r++) {
        float p = 1.0f;
        for (int64_t j = 0; j < len; j++) p *= px[r * len + j];
        o[r] = p;
    }
    if (gf_wants_grad(ctx, &x, 1)) {
        gf_node *n = gf_record(ctx, GF_OP_PROD, out, &x, 1, sizeof(prod_saved));
        if (!n) return NULL;
        *(prod_saved *)n->saved = (prod_saved){rows, len};
    }
    return out;
}

void gf_bw_prod(gf_ctx *ctx, gf_node *n) {
    float *gx = gf_grad_of(ctx, n->in[0]);
    const float *px = gx ? gf_contig_f32(ctx, n->in[0]) : NULL;
    const prod_saved *s = n->saved;
    float *suffix = px ? gf_scratch_f32(ctx, s->len + 1) : NULL;
    if (!suffix) return;
    const float *g = gf_f32(n->out->grad);
    for (int64_t r = 0; r < s->rows; r++) {
        const float *row = px + r * s->len;
        suffix[s->len] = 1.0f;
        for (int64_t j = s->len - 1; j >= 0; j--) suffix[j] = suffix[j + 1] * row[j];
        float prefix = 1.0f;
        for (int64_t j = 0; j < s->len; j++) {
            gx[r * s->len + j] += g[r] * prefix * suffix[j + 1];
            prefix *= row[j];
        }
    }
}

gf_tensor *gf_prod(gf_ctx *ctx, gf_tensor *x, const int *axes, int n_axes, bool keepdim) {
    if (!gf_check_tensor(ctx, "prod", "input", x, GF_F32)) return NULL;
    if (n_axes < 0 || n_axes > x->ndim || (n_axes && !axes)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "prod: invalid axis list (%d axes)", n_axes);
        return NULL;
    }
    bool red[GF_MAX_DIMS] = {false};
    for (int i = 0; i < n_axes; i++) {
        int a;
        if (!gf_check_axis(ctx, "prod", x->ndim, axes[i], &a)) return NULL;
        red[a] = true;
    }
    if (n_axes == 0)
        for (int d = 0; d < x->ndim; d++) red[d] = true;
    int perm[GF_MAX_DIMS], np = 0, nd = 0;
    int64_t rows = 1, len = 1, shape[GF_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        if (!red[d]) perm[np++] = d, rows *= x->shape[d];
    for (int d = 0; d < x->ndim; d++)
        if (red[d]) perm[np++] = d, len *= x->shape[d];
    for (int d = 0; d < x->ndim; d++)
        if (!red[d] || keepdim) shape[nd++] = red[d] ? 1 : x->shape[d];
    gf_tensor *t = gf_contiguous(ctx, gf_permute(ctx, x, perm));
    return t ? prod_rows(ctx, t, rows, len, nd, shape) : NULL;
}
