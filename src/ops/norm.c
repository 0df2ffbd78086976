/* Normalisation and regularisation ops: batch_norm (train/eval, running statistics), layer_norm
 * over trailing axes, and inverted dropout driven by the context RNG. Forward + backward. */
#include "core/internal.h"
#include "graft/ops.h"
#include "ops/ops_internal.h"
#include "kernels/vec.h"

#include <math.h>

/* Checks an optional per-channel vector (weight, bias, running statistics): f32, shape [C]. */
static bool check_vec(gf_ctx *ctx, const char *op, const char *arg, const gf_tensor *v,
                      int64_t c, const gf_tensor *x) {
    if (!v) return true;
    if (!gf_check_tensor(ctx, op, arg, v, GF_F32)) return false;
    if (v->ndim != 1 || v->shape[0] != c) {
        char sv[GF_SHAPE_BUF], sx[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: %s %s does not fit input %s (expected [%lld])",
                         op, arg, gf_shape_str(v, sv, sizeof sv), gf_shape_str(x, sx, sizeof sx),
                         (long long)c);
        return false;
    }
    return true;
}

/* ---- batch_norm ----------------------------------------------------------------------
 * x is viewed as [N, C, S] (S = product of the trailing dims); statistics are per channel
 * over the M = N*S elements. y = xhat * w + b with xhat = (x - mean) * invstd.
 * Backward (training, batch statistics depend on x):
 *   dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat))
 * Eval (running statistics are constants): dx = w * invstd * g. In both, dw = sum(g * xhat)
 * and db = sum(g) per channel. */

/* With a small spatial size ([N, C] inputs) channels go in blocks of BN_CB so each pass
 * reads whole cache lines; a channel's sums still run over (n, s) in order, so the result
 * does not depend on the blocking or the thread count. */
#define BN_CB 16
static int64_t bn_block(int64_t s) { return s >= 64 ? 1 : BN_CB; }

/* Row sums (gf_vec_bn_sums, kernels/vec.c): in double over 8 interleaved accumulators added in
 * a fixed tree, so they depend on the data only. */
static double bn_row_sum(const float *row, int64_t s) {
    double sum = 0.0;
    gf_vec_bn_sums(gf_vec_level(), row, NULL, s, 0.0, 0.0, &sum, NULL);
    return sum;
}

/* sum of (row[j] - mu)^2 */
static double bn_row_sq(const float *row, int64_t s, double mu) {
    double sq = 0.0;
    gf_vec_bn_sums(gf_vec_level(), row, NULL, s, mu, 0.0, NULL, &sq);
    return sq;
}

/* *sg += sum of g, *sgx += sum of g * (x - mu) * is */
static void bn_row_grad_sums(const float *row, const float *grow, int64_t s, double mu,
                             double is, double *sg, double *sgx) {
    double a = 0.0, b = 0.0;
    gf_vec_bn_sums(gf_vec_level(), row, grow, s, mu, is, &a, &b);
    *sg += a;
    *sgx += b;
}

typedef struct {
    int64_t n, c, s;
    bool training;
    bool synced;    /* statistics over every process of a job (gf_ctx_set_batch_norm_sync) */
    double count;   /* values per channel the statistics cover: n * s, or the job's total */
    double *mean;   /* [C]: batch mean (training) or running mean snapshot (eval) */
    double *invstd; /* [C]: 1 / sqrt(var + eps) with the variance used to normalise */
    /* set in the backward by the ReLU / clamp after it (gf_batch_norm_defer_mask): its bit
     * mask, applied here to each row of the output gradient in cache, or NULL */
    const uint8_t *grad_mask;
} bn_saved;

/* Sums v[0..k) over the job's processes through the context's hook; a hook that fails
 * without a message gets one. */
static gf_status bn_job_sum(gf_ctx *ctx, double *v, int64_t k) {
    gf_status st = ctx->bn_sum(ctx, v, (int)k, ctx->bn_sum_user);
    if (st != GF_OK && ctx->status == GF_OK)
        gf_ctx_set_error(ctx, st, "batch_norm: summing the statistics over the processes failed");
    return st == GF_OK ? GF_OK : (ctx->status != GF_OK ? ctx->status : st);
}

/* *s1 += sum of row, *s2 += sum of row^2, in one pass (gf_vec_bn_sums around 0) */
static void bn_row_moments(const float *row, int64_t s, double *s1, double *s2) {
    double a = 0.0, b = 0.0;
    gf_vec_bn_sums(gf_vec_level(), row, NULL, s, 0.0, 0.0, &a, &b);
    *s1 += a;
    *s2 += b;
}

/* Per channel, the sums of x and x^2 over this process's rows, into v[0..c) and v[c..2c). */
static void bn_local_moments(gf_ctx *ctx, const float *px, int64_t n, int64_t c, int64_t s,
                             double *v) {
#pragma omp parallel for num_threads(gf_threads_for(ctx, n * c * s)) schedule(static)
    for (int64_t ch = 0; ch < c; ch++) {
        double a = 0.0, b = 0.0;
        for (int64_t i = 0; i < n; i++) bn_row_moments(px + (i * c + ch) * s, s, &a, &b);
        v[ch] = a, v[c + ch] = b;
    }
}

/* From m values' sums of x and x^2: the mean, and the sum of squares around it, or false when
 * the mean is over about a thousand standard deviations (or the values are constant): in double
 * E[x^2] - mean^2 then loses digits, and the caller sums the centred squares in a second pass. */
static bool bn_moments(double sum, double sumsq, double m, double *mean, double *centred) {
    *mean = sum / m;
    const double var = sumsq / m - *mean * *mean;
    *centred = var > 0.0 ? var * m : 0.0;
    return var > 1e-6 * *mean * *mean;
}

/* Sums of (x - mean)^2 per channel over this process's rows into v[0..c) (the exact second
 * pass, for channels whose mean dwarfs their spread). */
static void bn_local_centred(gf_ctx *ctx, const float *px, int64_t n, int64_t c, int64_t s,
                             const double *mean, double *v) {
#pragma omp parallel for num_threads(gf_threads_for(ctx, n * c * s)) schedule(static)
    for (int64_t ch = 0; ch < c; ch++) {
        double sq = 0.0;
        for (int64_t i = 0; i < n; i++) sq += bn_row_sq(px + (i * c + ch) * s, s, mean[ch]);
        v[ch] = sq;
    }
}

/* Synchronised batch statistics: per channel the sums of x and x^2 and the value count, summed
 * over the processes (or replicas) in one exchange, give the whole job's mean and variance. In
 * double the difference E[x^2] - mean^2 keeps its digits unless the mean is over about a
 * thousand standard deviations; then (the same decision everywhere, from the same sums) the
 * centred squares are summed in a second pass and exchange. Updates the running statistics
 * like the local path, except in a replica told to leave them to the first. */
static bool bn_synced_stats(gf_ctx *ctx, const float *px, int64_t n, int64_t c, int64_t s,
                            float eps, float momentum, double *mean, double *invstd,
                            float *rm, int64_t rms, float *rv, int64_t rvs, double *count) {
    double *v = gf_scratch(ctx, sizeof(double) * (size_t)(2 * c + 1));
    if (!v) return false;
    bn_local_moments(ctx, px, n, c, s, v);
    v[2 * c] = (double)(n * s);
    if (bn_job_sum(ctx, v, 2 * c + 1) != GF_OK) return false;
    const double m = v[2 * c];
    if (!(m > 1.0)) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "batch_norm: expected more than 1 value per channel when training, got %g "
                         "in the whole job's batch (synchronised statistics)", m);
        return false;
    }
    bool exact = false;
    for (int64_t ch = 0; ch < c; ch++)
        exact = !bn_moments(v[ch], v[c + ch], m, &mean[ch], &v[c + ch]) || exact;
    if (exact) {
        bn_local_centred(ctx, px, n, c, s, mean, v + c);
        if (bn_job_sum(ctx, v + c, c) != GF_OK) return false;
    }
    const bool update = rm && !ctx->bn_skip_running;
    for (int64_t ch = 0; ch < c; ch++) {
        const double sq = v[c + ch];
        invstd[ch] = 1.0 / sqrt(sq / m + (double)eps);
        if (update) {
            rm[ch * rms] = (float)((1.0 - momentum) * rm[ch * rms] + momentum * mean[ch]);
            rv[ch * rvs] = (float)((1.0 - momentum) * rv[ch * rvs] + momentum * (sq / (m - 1.0)));
        }
    }
    *count = m;
    return true;
}

gf_tensor *gf_batch_norm(gf_ctx *ctx, gf_tensor *x, gf_tensor *weight, gf_tensor *bias,
                         gf_tensor *running_mean, gf_tensor *running_var, bool training,
                         float momentum, float eps) {
    const char *op = "batch_norm";
    if (!gf_check_tensor(ctx, op, "input", x, GF_F32)) return NULL;
    char sx[GF_SHAPE_BUF];
    if (x->ndim < 2) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "batch_norm: input %s must be [N, C, ...] (2 or more dimensions)",
                         gf_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    int64_t n = x->shape[0], c = x->shape[1], s = gf_numel_of(x->ndim - 2, x->shape + 2);
    int64_t m = n * s;
    if (!check_vec(ctx, op, "weight", weight, c, x) || !check_vec(ctx, op, "bias", bias, c, x) ||
        !check_vec(ctx, op, "running_mean", running_mean, c, x) ||
        !check_vec(ctx, op, "running_var", running_var, c, x))
        return NULL;
    if (!(eps >= 0.0f) || !isfinite(momentum)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "batch_norm: invalid eps %g or momentum %g",
                         (double)eps, (double)momentum);
        return NULL;
    }
    if ((running_mean == NULL) != (running_var == NULL)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "batch_norm: running_mean and running_var must both be given or both NULL");
        return NULL;
    }
    if (!training && !running_mean) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "batch_norm: evaluation mode needs running_mean and running_var");
        return NULL;
    }
    const bool synced = training && ctx->bn_sum;
    if (training && m == 1 && !synced) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "batch_norm: expected more than 1 value per channel when training, got input %s",
                         gf_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    /* a loan (ctx->out_loan, one batch_norm only) takes the output instead of new memory */
    const bool borrowed = ctx->out_loan && ctx->out_loan_bytes >= sizeof(float) * (size_t)x->numel;
    gf_tensor *out = borrowed ? gf_view_raw(ctx, GF_F32, x->ndim, x->shape, NULL, ctx->out_loan)
                              : gf_empty(ctx, GF_F32, x->ndim, x->shape);
    ctx->out_loan = NULL;
    ctx->out_loan_bytes = 0;
    gf_bn_act *act = ctx->bn_act && s % 8 == 0 ? ctx->bn_act : NULL;
    ctx->bn_act = NULL;
    double *mean = gf_scratch(ctx, sizeof(double) * (size_t)(c ? c : 1));
    double *invstd = gf_scratch(ctx, sizeof(double) * (size_t)(c ? c : 1));
    const float *px = gf_contig_f32(ctx, x);
    const float *pw = weight ? gf_contig_f32(ctx, weight) : NULL;
    const float *pb = bias ? gf_contig_f32(ctx, bias) : NULL;
    if (!out || !mean || !invstd || !px || (weight && !pw) || (bias && !pb)) return NULL;
    float *o = gf_f32(out);
    float *rm = running_mean ? gf_f32(running_mean) : NULL;
    float *rv = running_var ? gf_f32(running_var) : NULL;
    int64_t rms = running_mean ? running_mean->stride[0] : 0;
    int64_t rvs = running_var ? running_var->stride[0] : 0;
    bool update = training && rm && m > 0 && !ctx->bn_skip_running;
    double count = (double)m;
    if (synced && !bn_synced_stats(ctx, px, n, c, s, eps, momentum, mean, invstd, rm, rms, rv,
                                   rvs, &count))
        return NULL;

    int64_t cb = bn_block(s), nblk = (c + cb - 1) / cb;
    const int level = gf_vec_level();
#pragma omp parallel for num_threads(gf_threads_for(ctx, x->numel)) schedule(static)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t c0 = blk * cb, c1 = c0 + cb < c ? c0 + cb : c;
        if (synced) {
            /* mean and invstd hold the job's statistics already */
        } else if (training) { /* as bn_synced_stats, for this batch alone */
            double acc[BN_CB] = {0}, sq[BN_CB] = {0};
            for (int64_t i = 0; i < n; i++)
                for (int64_t ch = c0; ch < c1; ch++)
                    bn_row_moments(px + (i * c + ch) * s, s, &acc[ch - c0], &sq[ch - c0]);
            for (int64_t ch = c0; ch < c1; ch++) {
                if (m == 0) {
                    mean[ch] = sq[ch - c0] = 0.0;
                } else if (!bn_moments(acc[ch - c0], sq[ch - c0], (double)m, &mean[ch],
                                       &sq[ch - c0])) {
                    sq[ch - c0] = 0.0;
                    for (int64_t i = 0; i < n; i++)
                        sq[ch - c0] += bn_row_sq(px + (i * c + ch) * s, s, mean[ch]);
                }
            }
            for (int64_t ch = c0; ch < c1; ch++) {
                double var = m ? sq[ch - c0] / (double)m : 0.0;
                invstd[ch] = 1.0 / sqrt(var + (double)eps);
                if (update) {
                    double unbiased = sq[ch - c0] / (double)(m - 1);
                    rm[ch * rms] = (float)((1.0 - momentum) * rm[ch * rms] + momentum * mean[ch]);
                    rv[ch * rvs] = (float)((1.0 - momentum) * rv[ch * rvs] + momentum * unbiased);
                }
            }
        } else {
            for (int64_t ch = c0; ch < c1; ch++) {
                mean[ch] = rm[ch * rms];
                invstd[ch] = 1.0 / sqrt((double)rv[ch * rvs] + (double)eps);
            }
        }
        for (int64_t i = 0; i < n && !(act && act->defer); i++)
            for (int64_t ch = c0; ch < c1; ch++) {
                const int64_t r = (i * c + ch) * s;
                const double w = pw ? pw[ch] : 1.0, b = pb ? pb[ch] : 0.0;
                if (act) /* the activation's bits, in the same pass (s % 8 == 0) */
                    gf_vec_bn_eval_mask(level, px + r, o + r, act->mask + r / 8, s, mean[ch],
                                        invstd[ch], w, b, act->relu, act->lo, act->hi);
                else
                    gf_vec_bn_eval(level, px + r, o + r, s, mean[ch], invstd[ch], w, b, -INFINITY,
                                   INFINITY);
            }
    }
    if (act) act->done = true;

    gf_tensor *in[3] = {x, weight, bias};
    if (gf_wants_grad(ctx, in, 3)) {
        gf_node *nd = gf_record(ctx, GF_OP_BATCH_NORM, out, in, 3, sizeof(bn_saved));
        if (!nd) return NULL;
        *(bn_saved *)nd->saved = (bn_saved){n, c, s, training, synced, count, mean, invstd, NULL};
        nd->out_borrowed = borrowed;
    }
    return out;
}

bool gf_batch_norm_recompute(gf_ctx *ctx, const gf_node *bn, float *dst, float lo, float hi) {
    if (!bn || bn->op != GF_OP_BATCH_NORM || !bn->saved) {
        gf_ctx_set_error(ctx, GF_ERR_STATE, "batch_norm recompute: not a batch_norm node");
        return false;
    }
    const bn_saved *sv = bn->saved;
    const gf_tensor *weight = bn->in[1], *bias = bn->in[2];
    const float *px = gf_contig_f32(ctx, bn->in[0]);
    const float *pw = weight ? gf_contig_f32(ctx, weight) : NULL;
    const float *pb = bias ? gf_contig_f32(ctx, bias) : NULL;
    if (!px || (weight && !pw) || (bias && !pb)) return false;
    const int64_t n = sv->n, c = sv->c, s = sv->s;
    const int level = gf_vec_level();
    /* the forward's expression and its clamp in one pass: the same bits (test_kernels) */
#pragma omp parallel for num_threads(gf_threads_for(ctx, n * c * s)) schedule(static)
    for (int64_t r = 0; r < n * c; r++) {
        const int64_t ch = r % c;
        gf_vec_bn_eval(level, px + r * s, dst + r * s, s, sv->mean[ch], sv->invstd[ch],
                       pw ? pw[ch] : 1.0, pb ? pb[ch] : 0.0, lo, hi);
    }
    return true;
}

bool gf_act_planes_of(gf_ctx *ctx, const gf_tensor *t, gf_act_planes *p) {
    const gf_deferred_act *d = t && t->node && t->node->out == t ? t->node->deferred : NULL;
    if (!d) return false;
    const gf_node *bn = d->bn;
    const bn_saved *sv = bn->saved;
    const gf_tensor *weight = bn->in[1], *bias = bn->in[2];
    *p = (gf_act_planes){gf_contig_f32(ctx, bn->in[0]), weight ? gf_contig_f32(ctx, weight) : NULL,
                         bias ? gf_contig_f32(ctx, bias) : NULL, sv->mean, sv->invstd, sv->c,
                         sv->s, d->act};
    return p->x && (!weight || p->w) && (!bias || p->b);
}

void gf_act_planes_rows(const gf_act_planes *p, int level, int64_t r0, int64_t count, float *dst,
                        bool with_mask) {
    const int64_t s = p->s;
    for (int64_t r = r0; r < r0 + count; r++) {
        const int64_t ch = r % p->c;
        const double w = p->w ? p->w[ch] : 1.0, b = p->b ? p->b[ch] : 0.0;
        float *y = dst + (r - r0) * s;
        if (with_mask) /* batch_norm's call for the row, bitwise */
            gf_vec_bn_eval_mask(level, p->x + r * s, y, p->act.mask + r * s / 8, s, p->mean[ch],
                                p->invstd[ch], w, b, p->act.relu, p->act.lo, p->act.hi);
        else /* the recompute's, the same bits (test_kernels) */
            gf_vec_bn_eval(level, p->x + r * s, y, s, p->mean[ch], p->invstd[ch], w, b,
                           p->act.lo, p->act.hi);
    }
}

static const float *bn_grad_row(const bn_saved *sv, const float *g, int64_t e, float *row);

/* Backward of synchronised statistics: the per-channel sums of g and g * xhat are summed over
 * the processes (each process's g is already its share of the job's loss), and dx uses the
 * job's sums and value count. dw and db stay this process's sums: the gradient exchange adds
 * them up with every other parameter's. rows: a row of scratch per thread for a deferred mask. */
static void bn_backward_synced(gf_ctx *ctx, const bn_saved *sv, const float *px,
                               const float *pw, const float *g, float *gx, bool fresh,
                               float *gw, float *gb, float *rows) {
    const int64_t n = sv->n, c = sv->c, s = sv->s;
    const int level = gf_vec_level(), nt = gf_threads_for(ctx, n * c * s);
    double *v = gf_scratch(ctx, sizeof(double) * (size_t)(2 * c + 1));
    if (!v) return;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t ch = 0; ch < c; ch++) {
        float *row = rows ? rows + gf_thread_index() * s : NULL;
        double sg = 0.0, sgx = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const int64_t r = (i * c + ch) * s;
            bn_row_grad_sums(px + r, bn_grad_row(sv, g, r, row), s, sv->mean[ch],
                             sv->invstd[ch], &sg, &sgx);
        }
        v[ch] = sg;
        v[c + ch] = sgx;
        if (gw) gw[ch] += (float)sgx;
        if (gb) gb[ch] += (float)sg;
    }
    if (!gx || bn_job_sum(ctx, v, 2 * c) != GF_OK) return;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < n * c; r++) {
        const int64_t ch = r % c;
        float *row = rows ? rows + gf_thread_index() * s : NULL;
        const double is = sv->invstd[ch], k = (pw ? pw[ch] : 1.0) * is;
        gf_vec_bn_grad(level, px + r * s, bn_grad_row(sv, g, r * s, row), gx + r * s, s,
                       sv->mean[ch], is, k, v[ch] / sv->count, v[c + ch] / sv->count, fresh);
    }
}

bool gf_batch_norm_defer_mask(gf_node *bn, const uint8_t *mask) {
    if (!bn || bn->op != GF_OP_BATCH_NORM || !bn->saved || !mask) return false;
    bn_saved *sv = bn->saved;
    if (sv->s % 8 != 0) return false;
    sv->grad_mask = mask;
    return true;
}

/* The output gradient's row starting at element e: g's own, or with a deferred mask what the
 * activation's backward would have written there (the same kernel, into row, in cache). */
static const float *bn_grad_row(const bn_saved *sv, const float *g, int64_t e, float *row) {
    if (!sv->grad_mask) return g + e;
    gf_vec_relu_mask_bwd(sv->grad_mask + e / 8, g + e, row, 0, sv->s, true);
    return row;
}

void gf_bw_batch_norm(gf_ctx *ctx, gf_node *nd) {
    const bn_saved *sv = nd->saved;
    gf_tensor *x = nd->in[0], *weight = nd->in[1], *bias = nd->in[2];
    bool fresh = false; /* gx written (0 + term), not added to */
    float *gx = gf_grad_of_for_write(ctx, x, &fresh);
    float *gw = gf_grad_of(ctx, weight);
    float *gb = gf_grad_of(ctx, bias);
    if (!gx && !gw && !gb) return;
    const float *px = gf_contig_f32(ctx, x);
    const float *pw = weight ? gf_contig_f32(ctx, weight) : NULL;
    if (!px || (weight && !pw)) return;
    const float *g = gf_f32(nd->out->grad);
    int64_t n = sv->n, c = sv->c, s = sv->s, m = n * s;
    const int level = gf_vec_level(), nt = gf_threads_for(ctx, x->numel);
    if (sv->synced) {
        float *rows = sv->grad_mask ? gf_scratch_f32(ctx, nt * s) : NULL;
        if (!sv->grad_mask || rows) bn_backward_synced(ctx, sv, px, pw, g, gx, fresh, gw, gb, rows);
        return;
    }

    int64_t cb = bn_block(s), nblk = (c + cb - 1) / cb;
    /* a deferred mask: a block's masked gradient rows, kept (in cache) for the second pass */
    const int64_t per = (c < cb ? c : cb) * n * s;
    float *masked = sv->grad_mask ? gf_scratch_f32(ctx, nt * per) : NULL;
    if (sv->grad_mask && !masked) return;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t c0 = blk * cb, c1 = c0 + cb < c ? c0 + cb : c;
        float *mine = masked ? masked + gf_thread_index() * per : NULL;
        double sum_g[BN_CB] = {0}, sum_gx[BN_CB] = {0};
        for (int64_t i = 0; i < n; i++)
            for (int64_t ch = c0; ch < c1; ch++) {
                const int64_t r = (i * c + ch) * s;
                float *row = mine ? mine + ((ch - c0) * n + i) * s : NULL;
                bn_row_grad_sums(px + r, bn_grad_row(sv, g, r, row), s, sv->mean[ch],
                                 sv->invstd[ch], &sum_g[ch - c0], &sum_gx[ch - c0]);
            }
        for (int64_t ch = c0; ch < c1; ch++) {
            if (gw) gw[ch] += (float)sum_gx[ch - c0];
            if (gb) gb[ch] += (float)sum_g[ch - c0];
        }
        if (!gx) continue;
        for (int64_t i = 0; i < n; i++)
            for (int64_t ch = c0; ch < c1; ch++) {
                double mu = sv->mean[ch], is = sv->invstd[ch];
                double k = (pw ? pw[ch] : 1.0) * is, mg = 0, mgx = 0;
                if (sv->training && m > 0) {
                    mg = sum_g[ch - c0] / (double)m;
                    mgx = sum_gx[ch - c0] / (double)m;
                }
                const int64_t r = (i * c + ch) * s;
                const float *gr = mine ? mine + ((ch - c0) * n + i) * s : g + r;
                gf_vec_bn_grad(level, px + r, gr, gx + r, s, mu, is, k, mg, mgx, fresh);
            }
    }
}

/* ---- layer_norm ----------------------------------------------------------------------
 * x viewed as [R, D] with D = product of the last n_axes dims; each row is normalised.
 * gxhat = g * w;  dx = invstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)),
 * dw = sum over rows of g * xhat, db = sum over rows of g. */

typedef struct {
    int64_t r, d;
    double *mean, *invstd; /* [R] */
} ln_saved;

gf_tensor *gf_layer_norm(gf_ctx *ctx, gf_tensor *x, int n_axes, gf_tensor *weight,
                         gf_tensor *bias, float eps) {
    const char *op = "layer_norm";
    if (!gf_check_tensor(ctx, op, "input", x, GF_F32)) return NULL;
    if ((weight && !gf_check_tensor(ctx, op, "weight", weight, GF_F32)) ||
        (bias && !gf_check_tensor(ctx, op, "bias", bias, GF_F32)))
        return NULL;
    char sx[GF_SHAPE_BUF], sp[GF_SHAPE_BUF], sn[GF_SHAPE_BUF];
    if (n_axes < 1 || n_axes > x->ndim) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "layer_norm: cannot normalise over the last %d axes of input %s", n_axes,
                         gf_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    if (!(eps >= 0.0f)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "layer_norm: invalid eps %g", (double)eps);
        return NULL;
    }
    const int64_t *nshape = x->shape + (x->ndim - n_axes);
    gf_tensor *params[2] = {weight, bias};
    const char *pname[2] = {"weight", "bias"};
    for (int k = 0; k < 2; k++) {
        gf_tensor *t = params[k];
        if (t && (t->ndim != n_axes ||
                  memcmp(t->shape, nshape, sizeof(int64_t) * (size_t)n_axes) != 0)) {
            gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                             "layer_norm: %s %s does not match the normalised shape %s of input %s",
                             pname[k], gf_shape_str(t, sp, sizeof sp),
                             gf_dims_str(n_axes, nshape, sn, sizeof sn),
                             gf_shape_str(x, sx, sizeof sx));
            return NULL;
        }
    }
    int64_t d = gf_numel_of(n_axes, nshape);
    int64_t r = d ? x->numel / d : gf_numel_of(x->ndim - n_axes, x->shape);
    gf_tensor *out = gf_empty(ctx, GF_F32, x->ndim, x->shape);
    double *mean = gf_scratch(ctx, sizeof(double) * (size_t)(r ? r : 1));
    double *invstd = gf_scratch(ctx, sizeof(double) * (size_t)(r ? r : 1));
    const float *px = gf_contig_f32(ctx, x);
    const float *pw = weight ? gf_contig_f32(ctx, weight) : NULL;
    const float *pb = bias ? gf_contig_f32(ctx, bias) : NULL;
    if (!out || !mean || !invstd || !px || (weight && !pw) || (bias && !pb)) return NULL;
    float *o = gf_f32(out);
    const int level = gf_vec_level();

#pragma omp parallel for num_threads(gf_threads_for(ctx, x->numel)) schedule(static)
    for (int64_t i = 0; i < r; i++) {
        const float *row = px + i * d;
        const double mu = d ? bn_row_sum(row, d) / (double)d : 0.0;
        const double sq = bn_row_sq(row, d, mu);
        const double is = 1.0 / sqrt((d ? sq / (double)d : 0.0) + (double)eps);
        mean[i] = mu;
        invstd[i] = is;
        gf_vec_ln_row(level, row, pw, pb, o + i * d, d, mu, is);
    }

    gf_tensor *in[3] = {x, weight, bias};
    if (gf_wants_grad(ctx, in, 3)) {
        gf_node *nd = gf_record(ctx, GF_OP_LAYER_NORM, out, in, 3, sizeof(ln_saved));
        if (!nd) return NULL;
        *(ln_saved *)nd->saved = (ln_saved){r, d, mean, invstd};
    }
    return out;
}

void gf_bw_layer_norm(gf_ctx *ctx, gf_node *nd) {
    const ln_saved *sv = nd->saved;
    gf_tensor *x = nd->in[0], *weight = nd->in[1], *bias = nd->in[2];
    bool fresh;
    float *gx = gf_grad_of_for_write(ctx, x, &fresh);
    float *gw = gf_grad_of(ctx, weight);
    float *gb = gf_grad_of(ctx, bias);
    if (!gx && !gw && !gb) return;
    const float *px = gf_contig_f32(ctx, x);
    const float *pw = weight ? gf_contig_f32(ctx, weight) : NULL;
    if (!px || (weight && !pw)) return;
    const float *g = gf_f32(nd->out->grad);
    int64_t r = sv->r, d = sv->d;
    int nt = gf_threads_for(ctx, x->numel);

    if (gw || gb) { /* column blocks summing rows in order: one thread owns each column */
        enum { CB = 64 };
        int64_t nblk = (d + CB - 1) / CB;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t blk = 0; blk < nblk; blk++) {
            int64_t j0 = blk * CB, j1 = j0 + CB < d ? j0 + CB : d;
            double sw[CB] = {0}, sb[CB] = {0};
            for (int64_t i = 0; i < r; i++) {
                const float *row = px + i * d, *grow = g + i * d;
                double mu = sv->mean[i], is = sv->invstd[i];
                for (int64_t j = j0; j < j1; j++) {
                    sw[j - j0] += grow[j] * ((row[j] - mu) * is);
                    sb[j - j0] += grow[j];
                }
            }
            for (int64_t j = j0; j < j1; j++) {
                if (gw) gw[j] += (float)sw[j - j0];
                if (gb) gb[j] += (float)sb[j - j0];
            }
        }
    }
    if (!gx) return;
    const int level = gf_vec_level();
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < r; i++) {
        const float *row = px + i * d, *grow = g + i * d;
        const double mu = sv->mean[i], is = sv->invstd[i];
        double sg = 0, sgx = 0;
        gf_vec_norm_sums(level, row, grow, pw, d, mu, is, &sg, &sgx);
        gf_vec_norm_grad(level, row, grow, pw, gx + i * d, d, mu, is, is, sg / (double)d,
                         sgx / (double)d, fresh);
    }
}

/* ---- dropout ----------------------------------------------------------------------------
 * Element i is kept when its uniform draw u_i >= p and then scaled by 1/(1-p). The draws are
 * the context RNG's stream in element order; whole Philox blocks are generated in parallel
 * straight from their counters, which yields exactly the sequential stream. */

typedef struct {
    uint8_t *mask; /* [numel] 1 = kept */
    float scale;   /* 1 / (1 - p) */
} dropout_saved;

static inline float u32_to_uniform(uint32_t v) { return (float)(v >> 8) * (1.0f / 16777216.0f); }

void gf_dropout_mask(gf_ctx *ctx, gf_rng *r, int64_t numel, float p, uint8_t *mask) {
    int64_t i = 0;
    while (i < numel && r->lane < 4) { /* finish the block already started */
        mask[i] = u32_to_uniform(gf_rng_u32(r)) >= p;
        i++;
    }
    const int64_t nblocks = (numel - i) / 4, chunk = 1024; /* blocks per task */
    const uint64_t base = r->counter;
    const uint32_t key[2] = {(uint32_t)r->key, (uint32_t)(r->key >> 32)};
    /* u >= p  <=>  (w >> 8) >= p 2^24, exactly: u is (w >> 8) 2^-24 */
    const uint32_t thr = (uint32_t)ceil((double)p * 16777216.0);
    const int level = gf_vec_level();
    uint8_t *mb = mask + i;
#pragma omp parallel for num_threads(gf_threads_for(ctx, nblocks * 4)) schedule(static)
    for (int64_t b = 0; b < nblocks; b += chunk)
        gf_vec_dropout_mask(level, key, base + (uint64_t)b, nblocks - b < chunk ? nblocks - b : chunk,
                            thr, mb + 4 * b);
    r->counter += (uint64_t)nblocks;
    for (i += nblocks * 4; i < numel; i++) mask[i] = u32_to_uniform(gf_rng_u32(r)) >= p;
}

/* gf_vec_dropout_apply over the threads, in blocks of whole vectors */
static void dropout_run(gf_ctx *ctx, const float *x, const uint8_t *mask, float scale, float *y,
                        int64_t n, gf_dropout_apply_mode mode) {
    const int level = gf_vec_level();
    const int64_t block = 16384;
#pragma omp parallel for num_threads(gf_threads_for(ctx, n)) schedule(static)
    for (int64_t i = 0; i < n; i += block)
        gf_vec_dropout_apply(level, x + i, mask + i, scale, y + i, n - i < block ? n - i : block,
                             mode);
}

gf_tensor *gf_dropout(gf_ctx *ctx, gf_tensor *x, float p, bool training) {
    if (!gf_check_tensor(ctx, "dropout", "input", x, GF_F32)) return NULL;
    if (!(p >= 0.0f && p <= 1.0f)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "dropout: probability %g is outside [0, 1]",
                         (double)p);
        return NULL;
    }
    if (!training || p == 0.0f) return x;
    gf_tensor *out = gf_empty(ctx, GF_F32, x->ndim, x->shape);
    uint8_t *mask = gf_scratch(ctx, (size_t)(x->numel ? x->numel : 1));
    const float *px = gf_contig_f32(ctx, x);
    if (!out || !mask || !px) return NULL;
    int64_t numel = x->numel;
    float scale;
    if (p == 1.0f) { /* everything dropped: zeros, zero gradient, no draws needed */
        scale = 0.0f;
        memset(mask, 0, (size_t)numel);
    } else {
        scale = 1.0f / (1.0f - p);
        gf_dropout_mask(ctx, gf_ctx_rng(ctx), numel, p, mask);
    }
    dropout_run(ctx, px, mask, scale, gf_f32(out), numel, GF_DROPOUT_WRITE);
    if (gf_wants_grad(ctx, &x, 1)) {
        gf_node *nd = gf_record(ctx, GF_OP_DROPOUT, out, &x, 1, sizeof(dropout_saved));
        if (!nd) return NULL;
        *(dropout_saved *)nd->saved = (dropout_saved){mask, scale};
    }
    return out;
}

void gf_bw_dropout(gf_ctx *ctx, gf_node *nd) {
    gf_tensor *in = nd->in[0];
    if (!in->requires_grad) return;
    bool fresh = true;
    /* a private output's gradient is dead after this: the input's is computed over it */
    float *gx = gf_take_out_grad(nd, in) ? gf_f32(in->grad) : gf_grad_of_for_write(ctx, in, &fresh);
    if (!gx) return;
    const dropout_saved *sv = nd->saved;
    dropout_run(ctx, gf_f32(nd->out->grad), sv->mask, sv->scale, gx, nd->out->numel,
                fresh ? GF_DROPOUT_FRESH : GF_DROPOUT_ADD);
}
