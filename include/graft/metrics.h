/* graft metrics with scikit-learn's definitions: a confusion matrix accumulated over an
 * evaluation, and from it accuracy, balanced accuracy, precision / recall / F-beta per class
 * and micro / macro / weighted averages (zero_division as in sklearn 1.2); top-k accuracy from
 * scores; regression MSE, RMSE, MAE, R². Results are doubles; NaN marks an error. */
#ifndef GRAFT_METRICS_H
#define GRAFT_METRICS_H

#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- confusion matrix ------------------------------------------------------------------- */

/* counts[t * k + p]: examples of true class t predicted as p (sklearn's layout: rows true). */
typedef struct gf_confusion gf_confusion;

/* Returns a new zeroed k x k matrix (free with gf_confusion_free), or NULL (k < 1 or no
 * memory) with a context error. */
gf_confusion *gf_confusion_new(gf_ctx *ctx, int n_classes);
void gf_confusion_free(gf_confusion *cm);
void gf_confusion_reset(gf_confusion *cm);
int gf_confusion_classes(const gf_confusion *cm);
int64_t gf_confusion_total(const gf_confusion *cm);
/* Borrowed k*k counts, row-major. */
const int64_t *gf_confusion_counts(const gf_confusion *cm);

/* Adds n (true, predicted) pairs. A label outside 0..k-1 is an error naming its position;
 * nothing is added then. */
gf_status gf_confusion_add(gf_ctx *ctx, gf_confusion *cm, const int64_t *y_true,
                           const int64_t *y_pred, int64_t n);
/* Adds a batch of scores (logits or probabilities) [n, k] float32 with labels [n] int64: the
 * prediction is the first index of the largest score (numpy / torch argmax). */
gf_status gf_confusion_add_scores(gf_ctx *ctx, gf_confusion *cm, const gf_tensor *scores,
                                  const gf_tensor *labels);

/* accuracy_score: trace / total. NaN (and an error) when nothing was added. */
double gf_confusion_accuracy(gf_ctx *ctx, const gf_confusion *cm);
/* balanced_accuracy_score: mean recall over the classes that occur in y_true; adjusted:
 * rescaled so chance is 0 ((score - 1/m) / (1 - 1/m), m those classes). */
double gf_confusion_balanced_accuracy(gf_ctx *ctx, const gf_confusion *cm, bool adjusted);

typedef enum gf_average {
    GF_AVERAGE_MICRO,    /* from the summed tp, fp, fn */
    GF_AVERAGE_MACRO,    /* unweighted mean over the labels */
    GF_AVERAGE_WEIGHTED, /* mean weighted by support (true count) */
} gf_average;

typedef struct gf_prf_params {
    double beta; /* F-beta (default 1: F1) */
    /* The value of a 0/0 precision (no prediction of the class) or recall (no true example):
     * sklearn's zero_division: 0 (the default, also what "warn" gives) or 1. */
    double zero_division;
    /* Which labels count: false (default) = those present in y_true or y_pred, as sklearn with
     * labels=None; true = all 0..k-1, as sklearn with labels=range(k). */
    bool all_labels;
} gf_prf_params;

gf_prf_params gf_prf_default_params(void);

/* precision_recall_fscore_support(average=None) over all k classes (a class counts as
 * labels=range(k) would give it): arrays of k values each; any pointer may be NULL. */
gf_status gf_confusion_prf(gf_ctx *ctx, const gf_confusion *cm, const gf_prf_params *params,
                           double *precision, double *recall, double *fscore, int64_t *support);
/* The averaged precision, recall and F-beta (any pointer may be NULL). */
gf_status gf_confusion_prf_average(gf_ctx *ctx, const gf_confusion *cm, const gf_prf_params *params,
                                   gf_average average, double *precision, double *recall,
                                   double *fscore);

/* sklearn's classification_report as text (precision, recall, f1-score, support per class,
 * then accuracy, macro avg, weighted avg), digits decimals. names: k class names or NULL.
 * Writes at most cap bytes (always NUL-terminated); returns the length it needed. */
size_t gf_confusion_report(const gf_confusion *cm, const char *const *names, int digits, char *buf,
                           size_t cap);

/* ---- from scores --------------------------------------------------------------------------- */

/* top_k_accuracy_score: the fraction of rows whose true label is among the k highest scores
 * of scores [n, n_classes] (row-major). Ties as sklearn: among equal scores the higher class
 * index ranks first. k >= n_classes gives 1. NaN with an error for bad input. */
double gf_metrics_topk_accuracy(gf_ctx *ctx, const float *scores, const int64_t *labels, int64_t n,
                                int n_classes, int k);

/* ---- regression (sklearn, one output) ----------------------------------------------------- */

double gf_metrics_mse(gf_ctx *ctx, const float *y_true, const float *y_pred, int64_t n);
double gf_metrics_rmse(gf_ctx *ctx, const float *y_true, const float *y_pred, int64_t n);
double gf_metrics_mae(gf_ctx *ctx, const float *y_true, const float *y_pred, int64_t n);
/* r2_score: 1 - SS_res / SS_tot; a constant y_true gives 1 for a perfect prediction, else 0
 * (sklearn's force_finite). */
double gf_metrics_r2(gf_ctx *ctx, const float *y_true, const float *y_pred, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
