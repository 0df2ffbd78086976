/* Loss functions: cross_entropy (log-softmax + NLL over class axis 1, ignore_index) and
 * mse_loss, each with none/mean/sum reduction. Forward + backward. */
#include "core/internal.h"

#include <math.h>

/* Sums are taken over fixed blocks (partial sums in parallel, then in block order) so the
 * result is the same for any thread count. */
#define SUM_BLOCK 4096

static double det_sum(gf_ctx *ctx, const double *v, int64_t n) {
    int64_t nb = (n + SUM_BLOCK - 1) / SUM_BLOCK;
    if (nb <= 1) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += v[i];
        return s;
    }
    double *part = gf_scratch(ctx, sizeof(double) * (size_t)nb);
    if (!part) return NAN;
#pragma omp parallel for num_threads(gf_threads_for(ctx, n)) schedule(static)
    for (int64_t b = 0; b < nb; b++) {
        int64_t e = (b + 1) * SUM_BLOCK < n ? (b + 1) * SUM_BLOCK : n;
        double s = 0;
        for (int64_t i = b * SUM_BLOCK; i < e; i++) s += v[i];
        part[b] = s;
    }
    double s = 0;
    for (int64_t b = 0; b < nb; b++) s += part[b];
    return s;
}

static bool check_reduction(gf_ctx *ctx, const char *op, gf_reduction r) {
    if (r == GF_REDUCE_NONE || r == GF_REDUCE_MEAN || r == GF_REDUCE_SUM) return true;
    gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: unknown reduction %d", op, (int)r);
    return false;
}

/* ---- cross_entropy -----------------------------------------------------------------------
 * logits viewed as [N, C, S] (S = product of d1...), target as [N, S]: P = N*S positions,
 * each with C class scores at stride S. loss_p = logsumexp(x_p) - x_p[t_p], 0 when ignored.
 * dloss_p/dx_p[c] = softmax(x_p)[c] - [c == t_p]; mean scales by 1/count(not ignored). */

typedef struct {
    int64_t n, c, s;
    gf_reduction reduction;
    int64_t ignore_index;
    double count;   /* non-ignored positions */
    int64_t *target; /* [P] copy */
    double *lse;    /* [P] logsumexp per position */
} ce_saved;

gf_tensor *gf_cross_entropy(gf_ctx *ctx, gf_tensor *logits, gf_tensor *target,
                            gf_reduction reduction, int64_t ignore_index) {
    const char *op = "cross_entropy";
    if (!gf_check_tensor(ctx, op, "logits", logits, GF_F32) ||
        !gf_check_tensor(ctx, op, "target", target, GF_I64) || !check_reduction(ctx, op, reduction))
        return NULL;
    char sl[GF_SHAPE_BUF], st[GF_SHAPE_BUF];
    /* [C] logits with a 0-d target is PyTorch's unbatched form: treated as N = 1 */
    bool unbatched = logits->ndim == 1;
    bool fits = logits->ndim >= 1 && target->ndim == logits->ndim - 1;
    if (fits && !unbatched) {
        fits = target->shape[0] == logits->shape[0];
        for (int i = 2; i < logits->ndim && fits; i++) fits = target->shape[i - 1] == logits->shape[i];
    }
    if (!fits) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "cross_entropy: target %s does not fit logits %s (expected logits [N, C, "
                         "d1...] with target [N, d1...])",
                         gf_shape_str(target, st, sizeof st), gf_shape_str(logits, sl, sizeof sl));
        return NULL;
    }
    int64_t n = unbatched ? 1 : logits->shape[0];
    int64_t c = unbatched ? logits->shape[0] : logits->shape[1];
    int64_t s = unbatched ? 1 : gf_numel_of(logits->ndim - 2, logits->shape + 2);
    int64_t np = n * s;
    const int64_t *pt = gf_contig_i64(ctx, target);
    if (!pt) return NULL;
    int64_t count = 0;
    for (int64_t p = 0; p < np; p++) {
        if (pt[p] == ignore_index) continue;
        if (pt[p] < 0 || pt[p] >= c) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID,
                             "cross_entropy: target %lld out of range for %lld classes (logits %s, "
                             "target %s, at flat position %lld)",
                             (long long)pt[p], (long long)c, gf_shape_str(logits, sl, sizeof sl),
                             gf_shape_str(target, st, sizeof st), (long long)p);
            return NULL;
        }
        count++;
    }
    const float *px = gf_contig_f32(ctx, logits);
    double *loss = gf_scratch(ctx, sizeof(double) * (size_t)(np ? np : 1));
    double *lse = gf_scratch(ctx, sizeof(double) * (size_t)(np ? np : 1));
    gf_tensor *out = reduction == GF_REDUCE_NONE ? gf_empty(ctx, GF_F32, target->ndim, target->shape)
                                                 : gf_empty(ctx, GF_F32, 0, NULL);
    if (!px || !loss || !lse || !out) return NULL;

#pragma omp parallel for num_threads(gf_threads_for(ctx, logits->numel)) schedule(static)
    for (int64_t p = 0; p < np; p++) {
        int64_t i = p / s, j = p % s;
        const float *xp = px + i * c * s + j; /* class k at xp[k * s] */
        float mx = -INFINITY;
        for (int64_t k = 0; k < c; k++)
            if (xp[k * s] > mx) mx = xp[k * s];
        double se = 0;
        for (int64_t k = 0; k < c; k++) se += exp((double)xp[k * s] - mx);
        double lg = log(se);
        lse[p] = mx + lg;
        /* (max - x_t) + log(sum) keeps precision when the logits are large */
        loss[p] = pt[p] == ignore_index ? 0.0 : ((double)mx - xp[pt[p] * s]) + lg;
    }
    float *o = gf_f32(out);
    if (reduction == GF_REDUCE_NONE) {
        for (int64_t p = 0; p < np; p++) o[p] = (float)loss[p];
    } else {
        double tot = det_sum(ctx, loss, np);
        if (reduction == GF_REDUCE_MEAN) tot /= (double)count; /* 0/0 = NaN, as PyTorch */
        o[0] = (float)tot;
    }

    if (gf_wants_grad(ctx, &logits, 1)) {
        int64_t *tcopy = gf_scratch(ctx, sizeof(int64_t) * (size_t)(np ? np : 1));
        if (!tcopy) return NULL;
        memcpy(tcopy, pt, sizeof(int64_t) * (size_t)np);
        gf_node *nd = gf_record(ctx, GF_OP_CROSS_ENTROPY, out, &logits, 1, sizeof(ce_saved));
        if (!nd) return NULL;
        *(ce_saved *)nd->saved =
            (ce_saved){n, c, s, reduction, ignore_index, (double)count, tcopy, lse};
    }
    return out;
}

void gf_bw_cross_entropy(gf_ctx *ctx, gf_node *nd) {
    gf_tensor *logits = nd->in[0];
    float *gx = gf_grad_of(ctx, logits);
    if (!gx) return;
    const ce_saved *sv = nd->saved;
    const float *px = gf_contig_f32(ctx, logits);
    if (!px) return;
    const float *g = gf_f32(nd->out->grad);
    int64_t c = sv->c, s = sv->s, np = sv->n * sv->s;
    double gscale = 0;
    if (sv->reduction == GF_REDUCE_SUM) gscale = g[0];
    else if (sv->reduction == GF_REDUCE_MEAN) gscale = sv->count > 0 ? g[0] / sv->count : 0.0;

#pragma omp parallel for num_threads(gf_threads_for(ctx, logits->numel)) schedule(static)
    for (int64_t p = 0; p < np; p++) {
        int64_t t = sv->target[p];
        if (t == sv->ignore_index) continue;
        double gp = sv->reduction == GF_REDUCE_NONE ? g[p] : gscale;
        int64_t i = p / s, j = p % s;
        const float *xp = px + i * c * s + j;
        float *gp_out = gx + i * c * s + j;
        for (int64_t k = 0; k < c; k++) {
            double sm = exp((double)xp[k * s] - sv->lse[p]);
            gp_out[k * s] += (float)(gp * (sm - (k == t ? 1.0 : 0.0)));
        }
    }
}

/* ---- mse_loss ----------------------------------------------------------------------------
 * (input - target)^2 elementwise; d/dinput = 2 (input - target) g (g / numel for mean),
 * d/dtarget = the negation. */

typedef struct {
    gf_reduction reduction;
} mse_saved;

gf_tensor *gf_mse_loss(gf_ctx *ctx, gf_tensor *input, gf_tensor *target, gf_reduction reduction) {
    const char *op = "mse_loss";
    if (!gf_check_tensor(ctx, op, "input", input, GF_F32) ||
        !gf_check_tensor(ctx, op, "target", target, GF_F32) || !check_reduction(ctx, op, reduction))
        return NULL;
    if (!gf_same_shape(input, target)) {
        char si[GF_SHAPE_BUF], st[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "mse_loss: input %s and target %s must have the same shape",
                         gf_shape_str(input, si, sizeof si), gf_shape_str(target, st, sizeof st));
        return NULL;
    }
    int64_t n = input->numel;
    const float *pa = gf_contig_f32(ctx, input), *pb = gf_contig_f32(ctx, target);
    gf_tensor *out = reduction == GF_REDUCE_NONE ? gf_empty(ctx, GF_F32, input->ndim, input->shape)
                                                 : gf_empty(ctx, GF_F32, 0, NULL);
    if (!pa || !pb || !out) return NULL;
    float *o = gf_f32(out);
    int nt = gf_threads_for(ctx, n);
    if (reduction == GF_REDUCE_NONE) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            float d = pa[i] - pb[i];
            o[i] = d * d;
        }
    } else {
        double *sq = gf_scratch(ctx, sizeof(double) * (size_t)(n ? n : 1));
        if (!sq) return NULL;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            double d = (double)pa[i] - pb[i];
            sq[i] = d * d;
        }
        double tot = det_sum(ctx, sq, n);
        if (reduction == GF_REDUCE_MEAN) tot /= (double)n; /* empty: NaN, as PyTorch */
        o[0] = (float)tot;
    }
    gf_tensor *in[2] = {input, target};
    if (gf_wants_grad(ctx, in, 2)) {
        gf_node *nd = gf_record(ctx, GF_OP_MSE_LOSS, out, in, 2, sizeof(mse_saved));
        if (!nd) return NULL;
        ((mse_saved *)nd->saved)->reduction = reduction;
    }
    return out;
}

void gf_bw_mse_loss(gf_ctx *ctx, gf_node *nd) {
    gf_tensor *input = nd->in[0], *target = nd->in[1];
    float *ga = gf_grad_of(ctx, input);
    float *gb = gf_grad_of(ctx, target);
    if (!ga && !gb) return;
    const float *pa = gf_contig_f32(ctx, input), *pb = gf_contig_f32(ctx, target);
    if (!pa || !pb) return;
    gf_reduction red = ((const mse_saved *)nd->saved)->reduction;
    const float *g = gf_f32(nd->out->grad);
    int64_t n = input->numel;
    float k = 2.0f;
    if (red == GF_REDUCE_SUM) k = 2.0f * g[0];
    else if (red == GF_REDUCE_MEAN) k = (float)(2.0 * g[0] / (double)n);
#pragma omp parallel for num_threads(gf_threads_for(ctx, n)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float d = (pa[i] - pb[i]) * (red == GF_REDUCE_NONE ? k * g[i] : k);
        if (ga) ga[i] += d;
        if (gb) gb[i] -= d;
    }
}
