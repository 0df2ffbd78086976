/* Elementwise losses: mse_loss, l1_loss, smooth_l1_loss, huber_loss, bce_with_logits and
 * kl_div, forward + backward, each with PyTorch 1.13's values and gradient branch rules. */
#include "ops/loss_impl.h"

#include <math.h>

/* input and target: float32 of one shape. */
static bool check_pair(gf_ctx *ctx, const char *op, const gf_tensor *x, const gf_tensor *y) {
    if (!gf_check_tensor(ctx, op, "input", x, GF_F32) ||
        !gf_check_tensor(ctx, op, "target", y, GF_F32))
        return false;
    if (gf_same_shape(x, y)) return true;
    char sx[GF_SHAPE_BUF], sy[GF_SHAPE_BUF];
    gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: input %s and target %s must have the same shape", op,
                     gf_shape_str(x, sx, sizeof sx), gf_shape_str(y, sy, sizeof sy));
    return false;
}

/* Writes the reduced value of per-element losses v[n] (NONE: copies them) into out; MEAN
 * divides the sum by div. */
static void reduce_into(gf_ctx *ctx, gf_reduction red, const double *v, int64_t n, double div,
                        gf_tensor *out) {
    float *o = gf_f32(out);
    if (red == GF_REDUCE_NONE) {
        for (int64_t i = 0; i < n; i++) o[i] = (float)v[i];
        return;
    }
    double tot = gf_loss_sum(ctx, v, n);
    o[0] = (float)(red == GF_REDUCE_SUM ? tot : tot / div); /* 0/0: NaN, as PyTorch */
}

/* The upstream coefficient of element i: g[i] (NONE) or g[0] / div. */
static inline double upstream(const float *g, gf_reduction red, double div, int64_t i) {
    return red == GF_REDUCE_NONE ? g[i] : red == GF_REDUCE_SUM ? g[0] : g[0] / div;
}

/* ---- mse / l1 / smooth_l1 / huber: a function of d = input - target ----------------------
 * Backward branch rules are PyTorch's: smooth_l1's derivative is f(d) for the input and
 * f(-d) for the target with f(d) = d <= -beta ? -1 : d >= beta ? 1 : d / beta (so at beta =
 * 0, d = 0 both get -1, as PyTorch); huber's is h(d) = clamp(d, -delta, delta) and -h(d);
 * l1's sign(d) and -sign(d) (0 at d = 0). */

typedef enum { PW_MSE, PW_L1, PW_SMOOTH_L1, PW_HUBER } pw_kind;

typedef struct {
    pw_kind kind;
    gf_reduction reduction;
    double param; /* beta or delta */
} pw_saved;

static inline double pw_value(pw_kind k, double d, double prm) {
    double a = fabs(d);
    switch (k) {
    case PW_MSE: return d * d;
    case PW_L1: return a;
    case PW_SMOOTH_L1: return a < prm ? 0.5 * d * d / prm : a - 0.5 * prm;
    case PW_HUBER: return a < prm ? 0.5 * d * d : prm * (a - 0.5 * prm);
    }
    return NAN;
}

static inline double sl1_grad(double d, double beta) {
    return d <= -beta ? -1.0 : d >= beta ? 1.0 : d / beta;
}

/* d loss / d input (which = 0) or d loss / d target (which = 1). */
static inline double pw_grad(pw_kind k, double d, double prm, int which) {
    double s = which ? -1.0 : 1.0;
    switch (k) {
    case PW_MSE: return s * 2.0 * d;
    case PW_L1: return s * (double)((d > 0) - (d < 0));
    case PW_SMOOTH_L1: return sl1_grad(s * d, prm);
    case PW_HUBER: return s * (d < -prm ? -prm : d > prm ? prm : d);
    }
    return NAN;
}

static gf_tensor *pointwise_loss(gf_ctx *ctx, const char *op, gf_op opid, pw_kind kind,
                                 gf_tensor *x, gf_tensor *y, gf_reduction red, double prm) {
    if (!check_pair(ctx, op, x, y) || !gf_loss_check_reduction(ctx, op, red, false)) return NULL;
    int64_t n = x->numel;
    const float *px = gf_contig_f32(ctx, x), *py = gf_contig_f32(ctx, y);
    double *v = gf_scratch(ctx, sizeof(double) * (size_t)(n ? n : 1));
    gf_tensor *out = gf_loss_output(ctx, red, x->ndim, x->shape);
    if (!px || !py || !v || !out) return NULL;
#pragma omp parallel for num_threads(gf_threads_for(ctx, n)) schedule(static)
    for (int64_t i = 0; i < n; i++) v[i] = pw_value(kind, (double)px[i] - py[i], prm);
    reduce_into(ctx, red, v, n, (double)n, out);
    gf_tensor *in[2] = {x, y};
    if (gf_wants_grad(ctx, in, 2)) {
        gf_node *nd = gf_record(ctx, opid, out, in, 2, sizeof(pw_saved));
        if (!nd) return NULL;
        *(pw_saved *)nd->saved = (pw_saved){kind, red, prm};
    }
    return out;
}

static void pointwise_backward(gf_ctx *ctx, gf_node *nd) {
    const pw_saved *sv = nd->saved;
    gf_tensor *x = nd->in[0], *y = nd->in[1];
    float *gx = gf_grad_of(ctx, x), *gy = gf_grad_of(ctx, y);
    if (!gx && !gy) return;
    const float *px = gf_contig_f32(ctx, x), *py = gf_contig_f32(ctx, y);
    if (!px || !py) return;
    const float *g = gf_f32(nd->out->grad);
    int64_t n = x->numel;
#pragma omp parallel for num_threads(gf_threads_for(ctx, n)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double a = upstream(g, sv->reduction, (double)n, i), d = (double)px[i] - py[i];
        if (gx) gx[i] += (float)(a * pw_grad(sv->kind, d, sv->param, 0));
        if (gy) gy[i] += (float)(a * pw_grad(sv->kind, d, sv->param, 1));
    }
}

gf_tensor *gf_mse_loss(gf_ctx *ctx, gf_tensor *input, gf_tensor *target, gf_reduction reduction) {
    return pointwise_loss(ctx, "mse_loss", GF_OP_MSE_LOSS, PW_MSE, input, target, reduction, 0);
}

gf_tensor *gf_l1_loss(gf_ctx *ctx, gf_tensor *input, gf_tensor *target, gf_reduction reduction) {
    return pointwise_loss(ctx, "l1_loss", GF_OP_L1_LOSS, PW_L1, input, target, reduction, 0);
}

gf_tensor *gf_smooth_l1_loss(gf_ctx *ctx, gf_tensor *input, gf_tensor *target,
                             gf_reduction reduction, float beta) {
    if (!(beta >= 0.0f)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "smooth_l1_loss: beta must be >= 0, got %g",
                         (double)beta);
        return NULL;
    }
    return pointwise_loss(ctx, "smooth_l1_loss", GF_OP_SMOOTH_L1_LOSS, PW_SMOOTH_L1, input,
                          target, reduction, beta);
}

gf_tensor *gf_huber_loss(gf_ctx *ctx, gf_tensor *input, gf_tensor *target,
                         gf_reduction reduction, float delta) {
    if (!(delta > 0.0f)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "huber_loss: delta must be > 0, got %g",
                         (double)delta);
        return NULL;
    }
    return pointwise_loss(ctx, "huber_loss", GF_OP_HUBER_LOSS, PW_HUBER, input, target,
                          reduction, delta);
}

void gf_bw_mse_loss(gf_ctx *ctx, gf_node *nd) { pointwise_backward(ctx, nd); }
void gf_bw_l1_loss(gf_ctx *ctx, gf_node *nd) { pointwise_backward(ctx, nd); }
void gf_bw_smooth_l1_loss(gf_ctx *ctx, gf_node *nd) { pointwise_backward(ctx, nd); }
void gf_bw_huber_loss(gf_ctx *ctx, gf_node *nd) { pointwise_backward(ctx, nd); }

/* ---- bce_with_logits -----------------------------------------------------------------------
 * sp = log(1 + exp(-x)) = max(-x, 0) + log1p(exp(-|x|)),  lw = 1 + (pw - 1) y:
 *   loss = w ((1 - y) x + lw sp)
 *   d/dx = w (lw sigmoid(x) - pw y)      d/dy = w (-x + (pw - 1) sp)
 *   d/dw = (1 - y) x + lw sp             d/dpw = w y sp
 * (pw = 1, w = 1 when absent). weight and pos_weight are expanded to x's shape; their
 * gradients are summed back over the broadcast axes. */

typedef struct {
    gf_reduction reduction;
    const float *w, *pw; /* expanded to x's shape, or NULL */
} bce_saved;

/* t broadcast to x's shape without enlarging it: a contiguous array of x->numel values. */
static const float *expand_to(gf_ctx *ctx, const char *op, const char *name, const gf_tensor *t,
                              const gf_tensor *x) {
    bool fits = t->ndim <= x->ndim;
    for (int i = 0; fits && i < t->ndim; i++) {
        int64_t dt = t->shape[t->ndim - 1 - i], dx = x->shape[x->ndim - 1 - i];
        fits = dt == dx || dt == 1;
    }
    if (!fits) {
        char st[GF_SHAPE_BUF], sx[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: %s %s does not broadcast to input %s", op, name,
                         gf_shape_str(t, st, sizeof st), gf_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    const float *pt = gf_contig_f32(ctx, t);
    if (!pt || t->numel == x->numel) return pt;
    float *e = gf_scratch_f32(ctx, x->numel ? x->numel : 1);
    if (!e) return NULL;
    int64_t ts[GF_MAX_DIMS], st[GF_MAX_DIMS], idx[GF_MAX_DIMS] = {0};
    gf_contiguous_strides(t->ndim, t->shape, ts);
    for (int i = 0; i < x->ndim; i++) {
        int it = i - (x->ndim - t->ndim);
        st[i] = (it >= 0 && t->shape[it] != 1) ? ts[it] : 0;
    }
    for (int64_t k = 0; k < x->numel; k++) {
        int64_t off = 0;
        for (int i = 0; i < x->ndim; i++) off += idx[i] * st[i];
        e[k] = pt[off];
        gf_index_next(x->ndim, x->shape, idx);
    }
    return e;
}

static inline double softplus_neg(double x) { /* log(1 + exp(-x)) */
    return (x < 0 ? -x : 0.0) + log1p(exp(-fabs(x)));
}

gf_tensor *gf_bce_with_logits(gf_ctx *ctx, gf_tensor *input, gf_tensor *target,
                              gf_tensor *weight, gf_tensor *pos_weight, gf_reduction reduction) {
    const char *op = "bce_with_logits";
    if (!check_pair(ctx, op, input, target) || !gf_loss_check_reduction(ctx, op, reduction, false))
        return NULL;
    if ((weight && !gf_check_tensor(ctx, op, "weight", weight, GF_F32)) ||
        (pos_weight && !gf_check_tensor(ctx, op, "pos_weight", pos_weight, GF_F32)))
        return NULL;
    const float *pw = weight ? expand_to(ctx, op, "weight", weight, input) : NULL;
    const float *ppw = pos_weight ? expand_to(ctx, op, "pos_weight", pos_weight, input) : NULL;
    if ((weight && !pw) || (pos_weight && !ppw)) return NULL;
    int64_t n = input->numel;
    const float *px = gf_contig_f32(ctx, input), *py = gf_contig_f32(ctx, target);
    double *v = gf_scratch(ctx, sizeof(double) * (size_t)(n ? n : 1));
    gf_tensor *out = gf_loss_output(ctx, reduction, input->ndim, input->shape);
    if (!px || !py || !v || !out) return NULL;
#pragma omp parallel for num_threads(gf_threads_for(ctx, n)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double x = px[i], y = py[i];
        double lw = ppw ? 1.0 + ((double)ppw[i] - 1.0) * y : 1.0;
        double l = (1.0 - y) * x + lw * softplus_neg(x);
        v[i] = pw ? l * pw[i] : l;
    }
    reduce_into(ctx, reduction, v, n, (double)n, out);
    gf_tensor *in[4] = {input, target, weight, pos_weight};
    if (gf_wants_grad(ctx, in, 4)) {
        gf_node *nd = gf_record(ctx, GF_OP_BCE_WITH_LOGITS, out, in, 4, sizeof(bce_saved));
        if (!nd) return NULL;
        *(bce_saved *)nd->saved = (bce_saved){reduction, pw, ppw};
    }
    return out;
}

void gf_bw_bce_with_logits(gf_ctx *ctx, gf_node *nd) {
    const bce_saved *sv = nd->saved;
    gf_tensor *x = nd->in[0], *y = nd->in[1], *weight = nd->in[2], *pos_weight = nd->in[3];
    float *gx = gf_grad_of(ctx, x), *gy = gf_grad_of(ctx, y);
    float *gw = gf_grad_of(ctx, weight), *gpw = gf_grad_of(ctx, pos_weight);
    if (!gx && !gy && !gw && !gpw) return;
    const float *px = gf_contig_f32(ctx, x), *py = gf_contig_f32(ctx, y);
    int64_t n = x->numel;
    /* per-element partials of the weights, summed over broadcast axes afterwards */
    float *tw = gw ? gf_scratch_f32(ctx, n ? n : 1) : NULL;
    float *tpw = gpw ? gf_scratch_f32(ctx, n ? n : 1) : NULL;
    if (!px || !py || (gw && !tw) || (gpw && !tpw)) return;
    const float *g = gf_f32(nd->out->grad), *pw = sv->w, *ppw = sv->pw;
#pragma omp parallel for num_threads(gf_threads_for(ctx, n)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double a = upstream(g, sv->reduction, (double)n, i);
        double xv = px[i], yv = py[i], w = pw ? pw[i] : 1.0, p = ppw ? ppw[i] : 1.0;
        double sp = softplus_neg(xv), lw = 1.0 + (p - 1.0) * yv;
        if (gx) {
            double sig = xv >= 0 ? 1.0 / (1.0 + exp(-xv)) : exp(xv) / (1.0 + exp(xv));
            gx[i] += (float)(a * w * (lw * sig - p * yv));
        }
        if (gy) gy[i] += (float)(a * w * (-xv + (p - 1.0) * sp));
        if (tw) tw[i] = (float)(a * ((1.0 - yv) * xv + lw * sp));
        if (tpw) tpw[i] = (float)(a * w * yv * sp);
    }
    if (tw) gf_reduce_broadcast_add(x->ndim, x->shape, tw, weight, gw);
    if (tpw) gf_reduce_broadcast_add(x->ndim, x->shape, tpw, pos_weight, gpw);
}

/* ---- kl_div --------------------------------------------------------------------------------
 * loss = xlogy(t, t) - t x            d/dx = -t,       d/dt = xlogy(t != 0, t) + t / t - x
 * log_target: loss = e^t (t - x)      d/dx = -e^t,     d/dt = e^t (t - x + 1)
 * (d/dt is NaN at t = 0 without log_target, as PyTorch's xlogy gradient). */

typedef struct {
    gf_reduction reduction;
    bool log_target;
    double div; /* MEAN: numel; BATCHMEAN: size of axis 0 */
} kl_saved;

static inline double xlogy_self(double t) { return isnan(t) ? NAN : t == 0 ? 0.0 : t * log(t); }

gf_tensor *gf_kl_div(gf_ctx *ctx, gf_tensor *input, gf_tensor *target, gf_reduction reduction,
                     bool log_target) {
    const char *op = "kl_div";
    if (!check_pair(ctx, op, input, target) || !gf_loss_check_reduction(ctx, op, reduction, true))
        return NULL;
    int64_t n = input->numel;
    double div = (double)n;
    gf_reduction red = reduction;
    if (red == GF_REDUCE_BATCHMEAN) { /* the sum over axis 0's size; 0-d: the sum (PyTorch) */
        red = input->ndim == 0 ? GF_REDUCE_SUM : GF_REDUCE_MEAN;
        if (input->ndim > 0) div = (double)input->shape[0];
    }
    const float *px = gf_contig_f32(ctx, input), *pt = gf_contig_f32(ctx, target);
    double *v = gf_scratch(ctx, sizeof(double) * (size_t)(n ? n : 1));
    gf_tensor *out = gf_loss_output(ctx, red, input->ndim, input->shape);
    if (!px || !pt || !v || !out) return NULL;
#pragma omp parallel for num_threads(gf_threads_for(ctx, n)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double x = px[i], t = pt[i];
        v[i] = log_target ? exp(t) * (t - x) : xlogy_self(t) - t * x;
    }
    reduce_into(ctx, red, v, n, div, out);
    gf_tensor *in[2] = {input, target};
    if (gf_wants_grad(ctx, in, 2)) {
        gf_node *nd = gf_record(ctx, GF_OP_KL_DIV, out, in, 2, sizeof(kl_saved));
        if (!nd) return NULL;
        *(kl_saved *)nd->saved = (kl_saved){red, log_target, div};
    }
    return out;
}

void gf_bw_kl_div(gf_ctx *ctx, gf_node *nd) {
    const kl_saved *sv = nd->saved;
    gf_tensor *x = nd->in[0], *t = nd->in[1];
    float *gx = gf_grad_of(ctx, x), *gt = gf_grad_of(ctx, t);
    if (!gx && !gt) return;
    const float *px = gf_contig_f32(ctx, x), *pt = gf_contig_f32(ctx, t);
    if (!px || !pt) return;
    const float *g = gf_f32(nd->out->grad);
    int64_t n = x->numel;
#pragma omp parallel for num_threads(gf_threads_for(ctx, n)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double a = upstream(g, sv->reduction, sv->div, i), xv = px[i], tv = pt[i];
        if (sv->log_target) {
            double e = exp(tv);
            if (gx) gx[i] += (float)(-a * e);
            if (gt) gt[i] += (float)(a * e * (tv - xv + 1.0));
        } else {
            if (gx) gx[i] += (float)(-a * tv);
            if (gt) gt[i] += (float)(a * ((tv != 0 ? log(tv) : 0.0) + tv / tv - xv));
        }
    }
}
