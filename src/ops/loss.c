/* Class losses over axis 1: cross_entropy (index or probability targets, class weights,
 * label smoothing, ignore_index) and nll_loss, forward + backward; plus the helpers the
 * elementwise losses in loss_elem.c share. */
#include "ops/loss_impl.h"

#include <math.h>

/* ---- shared helpers --------------------------------------------------------------------- */

#define SUM_BLOCK 4096

double gf_loss_sum(gf_ctx *ctx, const double *v, int64_t n) {
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

bool gf_loss_check_reduction(gf_ctx *ctx, const char *op, gf_reduction r, bool allow_batchmean) {
    if (r == GF_REDUCE_NONE || r == GF_REDUCE_MEAN || r == GF_REDUCE_SUM) return true;
    if (r == GF_REDUCE_BATCHMEAN && allow_batchmean) return true;
    if (r == GF_REDUCE_BATCHMEAN)
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s: reduction batchmean is only defined for kl_div (use none, mean or sum)",
                         op);
    else
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: unknown reduction %d", op, (int)r);
    return false;
}

gf_tensor *gf_loss_output(gf_ctx *ctx, gf_reduction r, int ndim, const int64_t *shape) {
    return r == GF_REDUCE_NONE ? gf_empty(ctx, GF_F32, ndim, shape) : gf_empty(ctx, GF_F32, 0, NULL);
}

/* ---- geometry and argument checks of the class losses ------------------------------------
 * Input [N, C, d1...] is viewed as [N, C, S] (S = d1 * ...): P = N*S positions, each with C
 * scores at stride S. [C] is PyTorch's unbatched form (N = S = 1). */

typedef struct {
    int64_t n, c, s;
} cls_geom;

static const float *class_scores(const float *px, const cls_geom *g, int64_t p) {
    return px + (p / g->s) * g->c * g->s + p % g->s; /* class k at [k * s] */
}

/* Index targets: target [N, d1...] (0-d for an unbatched [C] input). */
static bool index_geometry(gf_ctx *ctx, const char *op, const char *xname, const gf_tensor *x,
                           const gf_tensor *target, cls_geom *g) {
    bool unbatched = x->ndim == 1;
    bool fits = x->ndim >= 1 && target->ndim == x->ndim - 1;
    if (fits && !unbatched) {
        fits = target->shape[0] == x->shape[0];
        for (int i = 2; i < x->ndim && fits; i++) fits = target->shape[i - 1] == x->shape[i];
    }
    if (!fits) {
        char sx[GF_SHAPE_BUF], st[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "%s: target %s does not fit %s %s (expected %s [N, C, d1...] with target "
                         "[N, d1...])",
                         op, gf_shape_str(target, st, sizeof st), xname,
                         gf_shape_str(x, sx, sizeof sx), xname);
        return false;
    }
    g->n = unbatched ? 1 : x->shape[0];
    g->c = unbatched ? x->shape[0] : x->shape[1];
    g->s = unbatched ? 1 : gf_numel_of(x->ndim - 2, x->shape + 2);
    return true;
}

/* weight: NULL, or float32 [C]. */
static bool check_class_weight(gf_ctx *ctx, const char *op, const char *xname, const gf_tensor *x,
                               const gf_tensor *w, int64_t c) {
    if (!w) return true;
    if (!gf_check_tensor(ctx, op, "weight", w, GF_F32)) return false;
    if (w->ndim != 1 || w->shape[0] != c) {
        char sw[GF_SHAPE_BUF], sx[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "%s: weight %s must hold one value per class: [%lld] for %s %s", op,
                         gf_shape_str(w, sw, sizeof sw), (long long)c, xname,
                         gf_shape_str(x, sx, sizeof sx));
        return false;
    }
    return true;
}

/* ---- index targets: cross_entropy and nll_loss -------------------------------------------
 * lp = log_softmax(x) (cross_entropy) or x itself (nll_loss). For a non-ignored position p
 * with target t:  loss_p = (1 - eps) (-w_t lp_t) + eps / C (-sum_c w_c lp_c)   (eps = 0 for
 * nll_loss). MEAN divides by W = sum_p w_{t_p} (the count when unweighted).
 * Derivation of the backward, per position with upstream coefficient a (g_p, g or g / W):
 *   d(-lp_t)/dx_k = sm_k - [k == t]           d(-sum_c w_c lp_c)/dx_k = sm_k sum_c w_c - w_k
 * (sm = softmax(x); for nll_loss d(-lp_t)/dx_k = -[k == t]). For the weights:
 *   dV/dw_c = sum_p (1 - eps) [t_p == c] (-lp_pc) + eps / C (-lp_pc),   and for MEAN
 *   d(V / W)/dw_c = (dV/dw_c - (V / W) count_c) / W, count_c = #{p : t_p == c}. */

typedef struct {
    cls_geom g;
    gf_reduction reduction;
    bool from_logits;
    int64_t ignore_index;
    double eps;
    double total; /* V: the sum of the per-position losses */
    double denom; /* MEAN divisor W */
    int64_t n_valid; /* non-ignored positions */
    int64_t *target; /* [P] copy */
    double *lse;     /* [P] logsumexp per position (from_logits) */
    const float *w;  /* [C] contiguous weights, or NULL */
} cls_saved;

static gf_tensor *class_loss(gf_ctx *ctx, const char *op, bool from_logits, gf_tensor *x,
                             gf_tensor *target, gf_tensor *weight, gf_reduction red,
                             int64_t ignore_index, double eps) {
    const char *xname = from_logits ? "logits" : "input";
    cls_geom g;
    if (!index_geometry(ctx, op, xname, x, target, &g) ||
        !check_class_weight(ctx, op, xname, x, weight, g.c))
        return NULL;
    int64_t np = g.n * g.s, c = g.c;
    const int64_t *pt = gf_contig_i64(ctx, target);
    if (!pt) return NULL;
    int64_t n_valid = 0;
    for (int64_t p = 0; p < np; p++) {
        if (pt[p] != ignore_index) n_valid++;
        if (pt[p] == ignore_index || (pt[p] >= 0 && pt[p] < c)) continue;
        char sx[GF_SHAPE_BUF], st[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s: target %lld out of range for %lld classes (%s %s, target %s, at flat "
                         "position %lld; ignore_index %lld)",
                         op, (long long)pt[p], (long long)c, xname, gf_shape_str(x, sx, sizeof sx),
                         gf_shape_str(target, st, sizeof st), (long long)p,
                         (long long)ignore_index);
        return NULL;
    }
    const float *px = gf_contig_f32(ctx, x);
    const float *pw = weight ? gf_contig_f32(ctx, weight) : NULL;
    size_t pb = sizeof(double) * (size_t)(np ? np : 1);
    double *loss = gf_scratch(ctx, pb), *wt = gf_scratch(ctx, pb);
    double *lse = from_logits ? gf_scratch(ctx, pb) : NULL;
    gf_tensor *out = gf_loss_output(ctx, red, target->ndim, target->shape);
    if (!px || (weight && !pw) || !loss || !wt || (from_logits && !lse) || !out) return NULL;

    double k_nll = 1.0 - eps, k_smooth = eps / (double)c;
#pragma omp parallel for num_threads(gf_threads_for(ctx, x->numel)) schedule(static)
    for (int64_t p = 0; p < np; p++) {
        const float *xp = class_scores(px, &g, p);
        int64_t t = pt[p], s = g.s;
        double mx = 0, lg = 0; /* lp_k = (x_k - mx) - lg keeps precision for large logits */
        if (from_logits) {
            float m = -INFINITY;
            for (int64_t k = 0; k < c; k++)
                if (xp[k * s] > m) m = xp[k * s];
            double se = 0;
            for (int64_t k = 0; k < c; k++) se += exp((double)xp[k * s] - m);
            mx = m;
            lg = log(se);
            lse[p] = mx + lg;
        }
        if (t == ignore_index) {
            loss[p] = wt[p] = 0.0;
            continue;
        }
        double wt_p = pw ? pw[t] : 1.0;
        double v = -wt_p * (((double)xp[t * s] - mx) - lg);
        if (eps > 0) {
            double sm = 0;
            for (int64_t k = 0; k < c; k++)
                sm -= (pw ? pw[k] : 1.0) * (((double)xp[k * s] - mx) - lg);
            v = k_nll * v + k_smooth * sm;
        }
        loss[p] = v;
        wt[p] = wt_p;
    }
    float *o = gf_f32(out);
    double total = 0, denom = 0;
    if (red == GF_REDUCE_NONE) {
        for (int64_t p = 0; p < np; p++) o[p] = (float)loss[p];
    } else {
        total = gf_loss_sum(ctx, loss, np);
        denom = gf_loss_sum(ctx, wt, np); /* the count of non-ignored when unweighted */
        o[0] = (float)(red == GF_REDUCE_MEAN ? total / denom : total); /* 0/0: NaN, as PyTorch */
    }

    gf_tensor *in[2] = {x, weight};
    if (gf_wants_grad(ctx, in, 2)) {
        int64_t *tcopy = gf_scratch(ctx, sizeof(int64_t) * (size_t)(np ? np : 1));
        if (!tcopy) return NULL;
        memcpy(tcopy, pt, sizeof(int64_t) * (size_t)np);
        gf_node *nd = gf_record(ctx, from_logits ? GF_OP_CROSS_ENTROPY : GF_OP_NLL_LOSS, out, in,
                                2, sizeof(cls_saved));
        if (!nd) return NULL;
        *(cls_saved *)nd->saved =
            (cls_saved){g, red, from_logits, ignore_index, eps, total, denom, n_valid, tcopy, lse, pw};
    }
    return out;
}

static void class_loss_backward(gf_ctx *ctx, gf_node *nd) {
    const cls_saved *sv = nd->saved;
    gf_tensor *x = nd->in[0], *weight = nd->in[1];
    float *gx = gf_grad_of(ctx, x);
    float *gw = gf_grad_of(ctx, weight);
    if (!gx && !gw) return;
    const float *px = gf_contig_f32(ctx, x);
    if (!px) return;
    const float *g = gf_f32(nd->out->grad), *pw = sv->w;
    cls_geom geo = sv->g;
    int64_t c = geo.c, s = geo.s, np = geo.n * geo.s;
    bool none = sv->reduction == GF_REDUCE_NONE;
    /* upstream coefficient per position; MEAN: g / W (inf for W = 0, as PyTorch, but only
     * non-ignored positions use it) */
    double gs = none ? 0.0 : sv->reduction == GF_REDUCE_SUM ? g[0] : g[0] / sv->denom;
    double k_nll = 1.0 - sv->eps, k_smooth = sv->eps / (double)c;
    double wsum = 0;
    for (int64_t k = 0; k < c; k++) wsum += pw ? pw[k] : 1.0;

    if (gx) {
#pragma omp parallel for num_threads(gf_threads_for(ctx, x->numel)) schedule(static)
        for (int64_t p = 0; p < np; p++) {
            int64_t t = sv->target[p];
            if (t == sv->ignore_index) continue;
            double a = none ? g[p] : gs;
            double wt = pw ? pw[t] : 1.0;
            int64_t off = (p / s) * c * s + p % s;
            const float *xp = px + off;
            float *gp = gx + off;
            if (!sv->from_logits) { /* nll_loss: only the target's score */
                gp[t * s] += (float)(-a * wt);
                continue;
            }
            for (int64_t k = 0; k < c; k++) {
                double sm = exp((double)xp[k * s] - sv->lse[p]);
                double d = k_nll * wt * (sm - (k == t ? 1.0 : 0.0));
                if (sv->eps > 0) d += k_smooth * (sm * wsum - (pw ? pw[k] : 1.0));
                gp[k * s] += (float)(a * d);
            }
        }
    }
    /* every target ignored: no position reaches the weights (nor the input), so their
     * gradient stays 0, although the MEAN itself is 0/0 */
    if (gw && sv->n_valid > 0) { /* one class per iteration: summed by one thread, in order */
#pragma omp parallel for num_threads(gf_threads_for(ctx, x->numel)) schedule(static)
        for (int64_t k = 0; k < c; k++) {
            double dv = 0, cnt = 0;
            for (int64_t p = 0; p < np; p++) {
                int64_t t = sv->target[p];
                if (t == sv->ignore_index) continue;
                double xk = px[(p / s) * c * s + k * s + p % s];
                double nlp = -(sv->from_logits ? xk - sv->lse[p] : xk); /* -lp_pk */
                double a = none ? g[p] : 1.0;
                double term = k_smooth * nlp;
                if (t == k) {
                    term += k_nll * nlp;
                    cnt += a;
                }
                dv += a * term;
            }
            double d;
            if (none) d = dv;
            else if (sv->reduction == GF_REDUCE_SUM) d = g[0] * dv;
            else d = g[0] * (dv - sv->total / sv->denom * cnt) / sv->denom;
            gw[k] += (float)d;
        }
    }
}

void gf_bw_cross_entropy(gf_ctx *ctx, gf_node *nd) { class_loss_backward(ctx, nd); }
void gf_bw_nll_loss(gf_ctx *ctx, gf_node *nd) { class_loss_backward(ctx, nd); }

/* ---- probability targets: cross_entropy_prob ---------------------------------------------
 * tt = (1 - eps) target + eps / C;  loss_p = -sum_k w_k tt_pk lp_pk;  MEAN divides by P.
 *   dloss_p/dx_pk = sm_pk sum_j w_j tt_pj - w_k tt_pk
 *   dloss_p/dtarget_pk = -(1 - eps) w_k lp_pk,    dloss_p/dw_k = -tt_pk lp_pk. */

typedef struct {
    cls_geom g;
    gf_reduction reduction;
    double eps;
    double *lse; /* [P] */
} prob_saved;

static gf_tensor *cross_entropy_prob(gf_ctx *ctx, gf_tensor *x, gf_tensor *target,
                                     gf_tensor *weight, gf_reduction red, double eps) {
    const char *op = "cross_entropy";
    if (!gf_same_shape(x, target) || x->ndim < 1) {
        char sx[GF_SHAPE_BUF], st[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                         "%s: probability target %s must have the shape of logits %s (float32 "
                         "targets are class probabilities; class indices are int64)",
                         op, gf_shape_str(target, st, sizeof st), gf_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    bool unbatched = x->ndim == 1;
    cls_geom g = {unbatched ? 1 : x->shape[0], unbatched ? x->shape[0] : x->shape[1],
                  unbatched ? 1 : gf_numel_of(x->ndim - 2, x->shape + 2)};
    if (!check_class_weight(ctx, op, "logits", x, weight, g.c)) return NULL;
    int64_t np = g.n * g.s, c = g.c, s = g.s;
    /* NONE: the logits' shape without the class axis */
    int64_t oshape[GF_MAX_DIMS];
    int ond = unbatched ? 0 : x->ndim - 1;
    if (!unbatched) {
        oshape[0] = x->shape[0];
        for (int i = 2; i < x->ndim; i++) oshape[i - 1] = x->shape[i];
    }
    const float *px = gf_contig_f32(ctx, x), *ptg = gf_contig_f32(ctx, target);
    const float *pw = weight ? gf_contig_f32(ctx, weight) : NULL;
    size_t pb = sizeof(double) * (size_t)(np ? np : 1);
    double *loss = gf_scratch(ctx, pb), *lse = gf_scratch(ctx, pb);
    gf_tensor *out = gf_loss_output(ctx, red, ond, oshape);
    if (!px || !ptg || (weight && !pw) || !loss || !lse || !out) return NULL;

    double k_t = 1.0 - eps, k_u = eps / (double)c;
#pragma omp parallel for num_threads(gf_threads_for(ctx, x->numel)) schedule(static)
    for (int64_t p = 0; p < np; p++) {
        int64_t off = (p / s) * c * s + p % s;
        const float *xp = px + off, *tp = ptg + off;
        float m = -INFINITY;
        for (int64_t k = 0; k < c; k++)
            if (xp[k * s] > m) m = xp[k * s];
        double se = 0;
        for (int64_t k = 0; k < c; k++) se += exp((double)xp[k * s] - m);
        double lg = log(se), v = 0;
        lse[p] = m + lg;
        for (int64_t k = 0; k < c; k++) {
            double tt = eps > 0 ? k_t * tp[k * s] + k_u : (double)tp[k * s];
            v -= (pw ? pw[k] : 1.0) * tt * (((double)xp[k * s] - m) - lg);
        }
        loss[p] = v;
    }
    float *o = gf_f32(out);
    if (red == GF_REDUCE_NONE) {
        for (int64_t p = 0; p < np; p++) o[p] = (float)loss[p];
    } else {
        double tot = gf_loss_sum(ctx, loss, np);
        o[0] = (float)(red == GF_REDUCE_MEAN ? tot / (double)np : tot); /* P = 0: NaN */
    }
    gf_tensor *in[3] = {x, target, weight};
    if (gf_wants_grad(ctx, in, 3)) {
        gf_node *nd = gf_record(ctx, GF_OP_CROSS_ENTROPY_PROB, out, in, 3, sizeof(prob_saved));
        if (!nd) return NULL;
        *(prob_saved *)nd->saved = (prob_saved){g, red, eps, lse};
    }
    return out;
}

void gf_bw_cross_entropy_prob(gf_ctx *ctx, gf_node *nd) {
    const prob_saved *sv = nd->saved;
    gf_tensor *x = nd->in[0], *target = nd->in[1], *weight = nd->in[2];
    float *gx = gf_grad_of(ctx, x), *gt = gf_grad_of(ctx, target), *gw = gf_grad_of(ctx, weight);
    if (!gx && !gt && !gw) return;
    const float *px = gf_contig_f32(ctx, x), *ptg = gf_contig_f32(ctx, target);
    const float *pw = weight ? gf_contig_f32(ctx, weight) : NULL;
    if (!px || !ptg || (weight && !pw)) return;
    const float *g = gf_f32(nd->out->grad);
    int64_t c = sv->g.c, s = sv->g.s, np = sv->g.n * sv->g.s;
    bool none = sv->reduction == GF_REDUCE_NONE;
    double gs = none ? 0.0 : sv->reduction == GF_REDUCE_SUM ? g[0] : g[0] / (double)np;
    double eps = sv->eps, k_t = 1.0 - eps, k_u = eps / (double)c;
#define TT(tp, k) (eps > 0 ? k_t * (tp)[(k) * s] + k_u : (double)(tp)[(k) * s])
    if (gx || gt) {
#pragma omp parallel for num_threads(gf_threads_for(ctx, x->numel)) schedule(static)
        for (int64_t p = 0; p < np; p++) {
            int64_t off = (p / s) * c * s + p % s;
            const float *xp = px + off, *tp = ptg + off;
            double a = none ? g[p] : gs, lse = sv->lse[p];
            if (gx) {
                double wtt = 0; /* sum_j w_j tt_pj */
                for (int64_t k = 0; k < c; k++) wtt += (pw ? pw[k] : 1.0) * TT(tp, k);
                for (int64_t k = 0; k < c; k++) {
                    double sm = exp((double)xp[k * s] - lse);
                    gx[off + k * s] += (float)(a * (sm * wtt - (pw ? pw[k] : 1.0) * TT(tp, k)));
                }
            }
            if (gt)
                for (int64_t k = 0; k < c; k++)
                    gt[off + k * s] +=
                        (float)(-a * k_t * (pw ? pw[k] : 1.0) * ((double)xp[k * s] - lse));
        }
    }
    if (gw) {
#pragma omp parallel for num_threads(gf_threads_for(ctx, x->numel)) schedule(static)
        for (int64_t k = 0; k < c; k++) {
            double d = 0;
            for (int64_t p = 0; p < np; p++) {
                int64_t off = (p / s) * c * s + p % s;
                double a = none ? g[p] : gs;
                d -= a * TT(ptg + off, k) * ((double)px[off + k * s] - sv->lse[p]);
            }
            gw[k] += (float)d;
        }
    }
#undef TT
}

/* ---- public entry points ------------------------------------------------------------------ */

gf_ce_params gf_ce_default_params(void) {
    return (gf_ce_params){GF_REDUCE_MEAN, -100, 0.0f, NULL};
}

gf_tensor *gf_cross_entropy_ex(gf_ctx *ctx, gf_tensor *logits, gf_tensor *target,
                               const gf_ce_params *p) {
    const char *op = "cross_entropy";
    gf_ce_params d = gf_ce_default_params();
    if (!p) p = &d;
    if (!gf_check_tensor(ctx, op, "logits", logits, GF_F32) ||
        !gf_loss_check_reduction(ctx, op, p->reduction, false))
        return NULL;
    if (!target) {
        gf_check_tensor(ctx, op, "target", target, GF_I64);
        return NULL;
    }
    double eps = p->label_smoothing;
    if (!(eps >= 0.0 && eps <= 1.0)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: label_smoothing must be in [0, 1], got %g", op,
                         eps);
        return NULL;
    }
    if (target->dtype == GF_I64)
        return class_loss(ctx, op, true, logits, target, p->weight, p->reduction, p->ignore_index,
                          eps);
    if (target->dtype != GF_F32) {
        char st[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_DTYPE,
                         "%s: target must be int64 class indices or float32 probabilities, got "
                         "%s tensor %s",
                         op, gf_dtype_name(target->dtype), gf_shape_str(target, st, sizeof st));
        return NULL;
    }
    if (p->ignore_index >= 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s: ignore_index %lld is not supported with probability targets (use a "
                         "negative value, e.g. the default -100)",
                         op, (long long)p->ignore_index);
        return NULL;
    }
    return cross_entropy_prob(ctx, logits, target, p->weight, p->reduction, eps);
}

gf_tensor *gf_cross_entropy(gf_ctx *ctx, gf_tensor *logits, gf_tensor *target,
                            gf_reduction reduction, int64_t ignore_index) {
    const char *op = "cross_entropy";
    if (!gf_check_tensor(ctx, op, "logits", logits, GF_F32) ||
        !gf_check_tensor(ctx, op, "target", target, GF_I64) ||
        !gf_loss_check_reduction(ctx, op, reduction, false))
        return NULL;
    return class_loss(ctx, op, true, logits, target, NULL, reduction, ignore_index, 0.0);
}

gf_tensor *gf_nll_loss(gf_ctx *ctx, gf_tensor *input, gf_tensor *target, gf_tensor *weight,
                       gf_reduction reduction, int64_t ignore_index) {
    const char *op = "nll_loss";
    if (!gf_check_tensor(ctx, op, "input", input, GF_F32) ||
        !gf_check_tensor(ctx, op, "target", target, GF_I64) ||
        !gf_loss_check_reduction(ctx, op, reduction, false))
        return NULL;
    return class_loss(ctx, op, false, input, target, weight, reduction, ignore_index, 0.0);
}
