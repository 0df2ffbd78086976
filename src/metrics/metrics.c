/* Evaluation metrics with scikit-learn 1.2's definitions (checked against fixtures it wrote):
 * everything for classification comes from one confusion matrix; sums in double. */
#include "graft/metrics.h"
#include "core/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gf_confusion {
    int k;
    int64_t total;
    int64_t *c; /* [k, k]: rows true, columns predicted */
};

gf_confusion *gf_confusion_new(gf_ctx *ctx, int n_classes) {
    if (n_classes < 1 || n_classes > 100000) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_confusion_new: %d classes (need 1..100000)",
                         n_classes);
        return NULL;
    }
    gf_confusion *cm = calloc(1, sizeof *cm);
    if (cm) cm->c = calloc((size_t)n_classes * (size_t)n_classes, sizeof *cm->c);
    if (!cm || !cm->c) {
        free(cm);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_confusion_new: out of memory for %d classes",
                         n_classes);
        return NULL;
    }
    cm->k = n_classes;
    return cm;
}

void gf_confusion_free(gf_confusion *cm) {
    if (!cm) return;
    free(cm->c);
    free(cm);
}

void gf_confusion_reset(gf_confusion *cm) {
    if (!cm) return;
    memset(cm->c, 0, (size_t)cm->k * (size_t)cm->k * sizeof *cm->c);
    cm->total = 0;
}

int gf_confusion_classes(const gf_confusion *cm) { return cm ? cm->k : 0; }
int64_t gf_confusion_total(const gf_confusion *cm) { return cm ? cm->total : 0; }
const int64_t *gf_confusion_counts(const gf_confusion *cm) { return cm ? cm->c : NULL; }

gf_status gf_confusion_add(gf_ctx *ctx, gf_confusion *cm, const int64_t *y_true,
                           const int64_t *y_pred, int64_t n) {
    if (!cm || n < 0 || (n > 0 && (!y_true || !y_pred)))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_confusion_add: NULL argument or n < 0");
    for (int64_t i = 0; i < n; i++) {
        if (y_true[i] < 0 || y_true[i] >= cm->k || y_pred[i] < 0 || y_pred[i] >= cm->k)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "gf_confusion_add: position %lld: true %lld, predicted %lld: "
                                    "labels must be in 0..%d",
                                    (long long)i, (long long)y_true[i], (long long)y_pred[i],
                                    cm->k - 1);
    }
    for (int64_t i = 0; i < n; i++) cm->c[y_true[i] * cm->k + y_pred[i]]++;
    cm->total += n;
    return GF_OK;
}

gf_status gf_confusion_add_scores(gf_ctx *ctx, gf_confusion *cm, const gf_tensor *scores,
                                  const gf_tensor *labels) {
    if (!cm) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_confusion_add_scores: NULL matrix");
    if (!gf_check_tensor(ctx, "gf_confusion_add_scores", "scores", scores, GF_F32) ||
        !gf_check_tensor(ctx, "gf_confusion_add_scores", "labels", labels, GF_I64))
        return gf_ctx_status(ctx) ? gf_ctx_status(ctx) : GF_ERR_INVALID;
    char a[GF_SHAPE_BUF], b[GF_SHAPE_BUF];
    if (scores->ndim != 2 || scores->shape[1] != cm->k || labels->numel != scores->shape[0])
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                                "gf_confusion_add_scores: scores %s must be [n, %d] and labels %s "
                                "hold n values",
                                gf_shape_str(scores, a, sizeof a), cm->k,
                                gf_shape_str(labels, b, sizeof b));
    const int64_t n = scores->shape[0];
    int64_t *pred = malloc((size_t)(n > 0 ? n : 1) * sizeof *pred);
    int64_t *truth = malloc((size_t)(n > 0 ? n : 1) * sizeof *truth);
    if (!pred || !truth) {
        free(pred);
        free(truth);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_confusion_add_scores: out of memory");
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t best = 0;
        float bv = gf_get_f32(scores, i * cm->k);
        for (int64_t j = 1; j < cm->k; j++) {
            float v = gf_get_f32(scores, i * cm->k + j);
            if (v > bv || (isnan(v) && !isnan(bv))) { /* argmax: NaN counts as the maximum */
                bv = v;
                best = j;
            }
        }
        pred[i] = best;
        truth[i] = gf_get_i64(labels, i);
    }
    gf_status s = gf_confusion_add(ctx, cm, truth, pred, n);
    free(pred);
    free(truth);
    return s;
}

static bool check_nonempty(gf_ctx *ctx, const gf_confusion *cm, const char *fn) {
    if (!cm) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: NULL matrix", fn);
        return false;
    }
    if (cm->total == 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: no examples were added", fn);
        return false;
    }
    return true;
}

double gf_confusion_accuracy(gf_ctx *ctx, const gf_confusion *cm) {
    if (!check_nonempty(ctx, cm, "gf_confusion_accuracy")) return NAN;
    int64_t tp = 0;
    for (int t = 0; t < cm->k; t++) tp += cm->c[t * cm->k + t];
    return (double)tp / (double)cm->total;
}

static int64_t row_sum(const gf_confusion *cm, int t) {
    int64_t s = 0;
    for (int p = 0; p < cm->k; p++) s += cm->c[t * cm->k + p];
    return s;
}

static int64_t col_sum(const gf_confusion *cm, int p) {
    int64_t s = 0;
    for (int t = 0; t < cm->k; t++) s += cm->c[t * cm->k + p];
    return s;
}

double gf_confusion_balanced_accuracy(gf_ctx *ctx, const gf_confusion *cm, bool adjusted) {
    if (!check_nonempty(ctx, cm, "gf_confusion_balanced_accuracy")) return NAN;
    double sum = 0;
    int m = 0;
    for (int t = 0; t < cm->k; t++) {
        int64_t r = row_sum(cm, t);
        if (r == 0) continue; /* sklearn drops the NaN recall of a class absent from y_true */
        sum += (double)cm->c[t * cm->k + t] / (double)r;
        m++;
    }
    double score = sum / m;
    if (adjusted) {
        double chance = 1.0 / m;
        score = (score - chance) / (1.0 - chance);
    }
    return score;
}

gf_prf_params gf_prf_default_params(void) {
    gf_prf_params p;
    p.beta = 1.0;
    p.zero_division = 0.0;
    p.all_labels = false;
    return p;
}

/* sklearn 1.2: F from the (zero_division-substituted) precision and recall; a zero
 * denominator counts as 1. */
static double fbeta(double p, double r, double beta2) {
    double denom = beta2 * p + r;
    if (denom == 0.0) denom = 1.0;
    return (1.0 + beta2) * p * r / denom;
}

static bool check_prf(gf_ctx *ctx, const gf_confusion *cm, const gf_prf_params *p, const char *fn) {
    if (!check_nonempty(ctx, cm, fn)) return false;
    if (!(p->beta >= 0) || isinf(p->beta) || !isfinite(p->zero_division)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s: beta %g must be finite and >= 0, zero_division %g finite", fn,
                         p->beta, p->zero_division);
        return false;
    }
    return true;
}

gf_status gf_confusion_prf(gf_ctx *ctx, const gf_confusion *cm, const gf_prf_params *params,
                           double *precision, double *recall, double *fscore, int64_t *support) {
    gf_prf_params p = params ? *params : gf_prf_default_params();
    if (!check_prf(ctx, cm, &p, "gf_confusion_prf")) return gf_ctx_status(ctx);
    const double beta2 = p.beta * p.beta, zd = p.zero_division;
    for (int c = 0; c < cm->k; c++) {
        const int64_t tp = cm->c[c * cm->k + c], pred = col_sum(cm, c), truth = row_sum(cm, c);
        const double pr = pred > 0 ? (double)tp / (double)pred : zd;
        const double rc = truth > 0 ? (double)tp / (double)truth : zd;
        if (precision) precision[c] = pr;
        if (recall) recall[c] = rc;
        if (fscore) fscore[c] = fbeta(pr, rc, beta2);
        if (support) support[c] = truth;
    }
    return GF_OK;
}

gf_status gf_confusion_prf_average(gf_ctx *ctx, const gf_confusion *cm, const gf_prf_params *params,
                                   gf_average average, double *precision, double *recall,
                                   double *fscore) {
    gf_prf_params p = params ? *params : gf_prf_default_params();
    if (!check_prf(ctx, cm, &p, "gf_confusion_prf_average")) return gf_ctx_status(ctx);
    if (average != GF_AVERAGE_MICRO && average != GF_AVERAGE_MACRO &&
        average != GF_AVERAGE_WEIGHTED)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_confusion_prf_average: unknown average %d",
                                (int)average);
    const int k = cm->k;
    const double beta2 = p.beta * p.beta, zd = p.zero_division;
    double *pr = malloc((size_t)k * sizeof *pr), *rc = malloc((size_t)k * sizeof *rc);
    double *f = malloc((size_t)k * sizeof *f);
    int64_t *sup = malloc((size_t)k * sizeof *sup);
    if (!pr || !rc || !f || !sup) {
        free(pr);
        free(rc);
        free(f);
        free(sup);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_confusion_prf_average: out of memory");
    }
    gf_confusion_prf(ctx, cm, &p, pr, rc, f, sup);
    double P = 0, R = 0, F = 0;
    if (average == GF_AVERAGE_MICRO) {
        int64_t tp = 0, pred = 0, truth = 0;
        for (int c = 0; c < k; c++) {
            /* labels absent from both y_true and y_pred add nothing to the sums */
            tp += cm->c[c * k + c];
            pred += col_sum(cm, c);
            truth += row_sum(cm, c);
        }
        P = pred > 0 ? (double)tp / (double)pred : zd;
        R = truth > 0 ? (double)tp / (double)truth : zd;
        F = fbeta(P, R, beta2);
    } else {
        double wsum = 0;
        for (int c = 0; c < k; c++) {
            bool present = sup[c] > 0 || col_sum(cm, c) > 0;
            if (!p.all_labels && !present) continue;
            double w = average == GF_AVERAGE_WEIGHTED ? (double)sup[c] : 1.0;
            P += w * pr[c];
            R += w * rc[c];
            F += w * f[c];
            wsum += w;
        }
        if (wsum > 0) {
            P /= wsum;
            R /= wsum;
            F /= wsum;
        } else { /* weighted with no true example in the labels: sklearn's special case */
            double z = zd == 1.0 ? 1.0 : 0.0;
            P = R = F = z;
        }
    }
    if (precision) *precision = P;
    if (recall) *recall = R;
    if (fscore) *fscore = F;
    free(pr);
    free(rc);
    free(f);
    free(sup);
    return GF_OK;
}

/* ---- classification report ------------------------------------------------------------------- */

typedef struct sbuf {
    char *buf;
    size_t cap, len;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void sb_printf(sbuf *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *dst = s->buf && s->len < s->cap ? s->buf + s->len : NULL;
    size_t room = dst ? s->cap - s->len : 0;
    int w = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    if (w > 0) s->len += (size_t)w;
}

size_t gf_confusion_report(const gf_confusion *cm, const char *const *names, int digits, char *buf,
                           size_t cap) {
    sbuf s = {buf, cap, 0};
    if (buf && cap) buf[0] = '\0';
    if (!cm || cm->total == 0) {
        sb_printf(&s, "(no examples)\n");
        return s.len;
    }
    if (digits < 0) digits = 0;
    if (digits > 12) digits = 12;
    const int k = cm->k;
    gf_prf_params p = gf_prf_default_params();
    double *pr = malloc((size_t)k * sizeof *pr), *rc = malloc((size_t)k * sizeof *rc);
    double *f = malloc((size_t)k * sizeof *f);
    int64_t *sup = malloc((size_t)k * sizeof *sup);
    if (!pr || !rc || !f || !sup) {
        sb_printf(&s, "(out of memory)\n");
        goto out;
    }
    gf_confusion_prf(NULL, cm, &p, pr, rc, f, sup);
    /* the width of the first column: the longest name shown, at least "weighted avg" */
    int width = 12;
    char tmp[32];
    for (int c = 0; c < k; c++) {
        if (sup[c] == 0 && col_sum(cm, c) == 0) continue;
        const char *nm = names && names[c] ? names[c] : (snprintf(tmp, sizeof tmp, "%d", c), tmp);
        int l = (int)strlen(nm);
        if (l > width) width = l;
    }
    if (width < digits) width = digits;
    sb_printf(&s, "%*s  %9s %9s %9s %9s\n\n", width, "", "precision", "recall", "f1-score",
              "support");
    for (int c = 0; c < k; c++) {
        if (sup[c] == 0 && col_sum(cm, c) == 0) continue;
        const char *nm = names && names[c] ? names[c] : (snprintf(tmp, sizeof tmp, "%d", c), tmp);
        sb_printf(&s, "%*s  %9.*f %9.*f %9.*f %9lld\n", width, nm, digits, pr[c], digits, rc[c],
                  digits, f[c], (long long)sup[c]);
    }
    sb_printf(&s, "\n");
    double acc = gf_confusion_accuracy(NULL, cm);
    sb_printf(&s, "%*s  %9s %9s %9.*f %9lld\n", width, "accuracy", "", "", digits, acc,
              (long long)cm->total);
    static const char *const avg_names[2] = {"macro avg", "weighted avg"};
    const gf_average avgs[2] = {GF_AVERAGE_MACRO, GF_AVERAGE_WEIGHTED};
    for (int a = 0; a < 2; a++) {
        double P, R, F;
        gf_confusion_prf_average(NULL, cm, &p, avgs[a], &P, &R, &F);
        sb_printf(&s, "%*s  %9.*f %9.*f %9.*f %9lld\n", width, avg_names[a], digits, P, digits, R,
                  digits, F, (long long)cm->total);
    }
out:
    free(pr);
    free(rc);
    free(f);
    free(sup);
    return s.len;
}

/* ---- from scores ---------------------------------------------------------------------------- */

double gf_metrics_topk_accuracy(gf_ctx *ctx, const float *scores, const int64_t *labels, int64_t n,
                                int n_classes, int k) {
    if (!scores || !labels || n < 1 || n_classes < 1 || k < 1) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "gf_metrics_topk_accuracy: need scores, labels, n >= 1 (%lld), classes "
                         ">= 1 (%d), k >= 1 (%d)",
                         (long long)n, n_classes, k);
        return NAN;
    }
    int64_t hits = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t y = labels[i];
        if (y < 0 || y >= n_classes) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID,
                             "gf_metrics_topk_accuracy: label %lld at position %lld outside 0..%d",
                             (long long)y, (long long)i, n_classes - 1);
            return NAN;
        }
        const float *row = scores + i * n_classes;
        const float sy = row[y];
        /* rank of y in sklearn's order: a stable ascending argsort, reversed, so a class ranks
         * above y when its score is higher, or equal with a higher index */
        int64_t above = 0;
        for (int j = 0; j < n_classes; j++)
            if (row[j] > sy || (row[j] == sy && j > y)) above++;
        if (above < k) hits++;
    }
    return (double)hits / (double)n;
}

/* ---- regression ------------------------------------------------------------------------------ */

static bool check_reg(gf_ctx *ctx, const float *t, const float *p, int64_t n, const char *fn) {
    if (!t || !p || n < 1) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: need y_true, y_pred and n >= 1 (got %lld)", fn,
                         (long long)n);
        return false;
    }
    return true;
}

double gf_metrics_mse(gf_ctx *ctx, const float *y_true, const float *y_pred, int64_t n) {
    if (!check_reg(ctx, y_true, y_pred, n, "gf_metrics_mse")) return NAN;
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)y_true[i] - (double)y_pred[i];
        s += d * d;
    }
    return s / (double)n;
}

double gf_metrics_rmse(gf_ctx *ctx, const float *y_true, const float *y_pred, int64_t n) {
    if (!check_reg(ctx, y_true, y_pred, n, "gf_metrics_rmse")) return NAN;
    return sqrt(gf_metrics_mse(ctx, y_true, y_pred, n));
}

double gf_metrics_mae(gf_ctx *ctx, const float *y_true, const float *y_pred, int64_t n) {
    if (!check_reg(ctx, y_true, y_pred, n, "gf_metrics_mae")) return NAN;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)y_true[i] - (double)y_pred[i]);
    return s / (double)n;
}

double gf_metrics_r2(gf_ctx *ctx, const float *y_true, const float *y_pred, int64_t n) {
    if (!check_reg(ctx, y_true, y_pred, n, "gf_metrics_r2")) return NAN;
    double mean = 0;
    for (int64_t i = 0; i < n; i++) mean += y_true[i];
    mean /= (double)n;
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)y_true[i] - (double)y_pred[i], e = (double)y_true[i] - mean;
        num += d * d;
        den += e * e;
    }
    if (den != 0.0) return 1.0 - num / den;
    return num != 0.0 ? 0.0 : 1.0;
}
