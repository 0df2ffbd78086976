/* Ranking without training: LogME (You et al., ICML 2021) and H-score (Bao et al., ICIP 2019)
 * of a feature matrix for a labelling, and Spearman's rank correlation to compare such scores
 * with the accuracies they predict. Both scores work in double on a d x d symmetric matrix
 * eigendecomposed by LAPACK's dsyevd, which OpenBLAS carries. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/transfer.h"

/* LAPACK's symmetric eigensolver (Fortran symbol in OpenBLAS; the trailing lengths are the
 * hidden lengths of the two character arguments, as gfortran passes them). */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);

#define LOGME_EPS 1e-5

/* The checks both scores share. */
static gf_status check_args(gf_ctx *ctx, const char *op, const float *f, int64_t n, int64_t d,
                            const int64_t *labels, int n_classes, const double *out) {
    if (!f || !labels || !out)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s is NULL", op,
                                !f ? "features" : !labels ? "labels" : "out");
    if (n < 2 || d < 1 || d > GF_TRANSFER_SCORE_MAX_DIM || n_classes < 2)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: need n >= 2 examples, 1 <= d <= %d "
                                "features and >= 2 classes; got n %lld, d %lld, %d classes", op,
                                GF_TRANSFER_SCORE_MAX_DIM, (long long)n, (long long)d, n_classes);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= n_classes)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: example %lld has label %lld, "
                                    "outside [0, %d)", op, (long long)i, (long long)labels[i],
                                    n_classes);
    for (int64_t i = 0; i < n * d; i++)
        if (!isfinite(f[i]))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: feature %lld of example %lld is "
                                    "not finite", op, (long long)(i % d), (long long)(i / d));
    return GF_OK;
}

/* Eigendecomposition of the symmetric a [d, d] in place: w gets the eigenvalues (ascending),
 * row k of a the k-th eigenvector. */
static gf_status eigh(gf_ctx *ctx, const char *op, double *a, int d, double *w) {
    int lwork = -1, liwork = -1, info = 0, iq = 0;
    double wq = 0;
    dsyevd_("V", "U", &d, a, &d, w, &wq, &lwork, &iq, &liwork, &info, 1, 1);
    if (info != 0)
        return gf_ctx_set_error(ctx, GF_ERR_NUMERIC, "%s: dsyevd workspace query failed (%d)",
                                op, info);
    lwork = (int)wq + 1, liwork = iq + 1;
    double *work = malloc(sizeof *work * (size_t)lwork);
    int *iwork = malloc(sizeof *iwork * (size_t)liwork);
    if (work && iwork)
        dsyevd_("V", "U", &d, a, &d, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (!work || !iwork)
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory for a %d x %d "
                                "eigendecomposition", op, d, d);
    if (info != 0)
        return gf_ctx_set_error(ctx, GF_ERR_NUMERIC, "%s: the eigendecomposition of the %d x "
                                "%d matrix did not converge (dsyevd info %d)", op, d, d, info);
    return GF_OK;
}

/* ---- LogME ------------------------------------------------------------------------------------ */

typedef struct logme_work {
    const double *f;   /* [n, d] */
    const double *v;   /* eigenvectors, row k the k-th */
    const double *s;   /* eigenvalues of f^T f, clipped at 0 */
    int64_t n, d;
    double *y, *tmp, *coef, *m, *fm; /* [n], [d], [d], [d], [n] */
} logme_work;

/* The log evidence / n of one label column w->y (the authors' each_evidence). */
static double logme_class(logme_work *w) {
    const int64_t n = w->n, d = w->d;
    /* tmp = V^T (f^T y) */
    cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)d, 1.0, w->f, (int)d, w->y, 1, 0.0,
                w->coef, 1);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)d, 1.0, w->v, (int)d, w->coef, 1, 0.0,
                w->tmp, 1);
    double alpha = 1.0, beta = 1.0, lam = alpha / beta, alpha_de = 0, beta_de = 0;
    for (int it = 0; it < 11; it++) {
        double gamma = 0;
        for (int64_t k = 0; k < d; k++) {
            gamma += w->s[k] / (w->s[k] + lam);
            w->coef[k] = w->tmp[k] * beta / (alpha + beta * w->s[k]);
        }
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)d, (int)d, 1.0, w->v, (int)d, w->coef, 1,
                    0.0, w->m, 1);
        alpha_de = cblas_ddot((int)d, w->m, 1, w->m, 1);
        alpha = gamma / (alpha_de + LOGME_EPS);
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)d, 1.0, w->f, (int)d, w->m, 1, 0.0,
                    w->fm, 1);
        beta_de = 0;
        for (int64_t i = 0; i < n; i++) beta_de += (w->y[i] - w->fm[i]) * (w->y[i] - w->fm[i]);
        beta = ((double)n - gamma) / (beta_de + LOGME_EPS);
        double new_lam = alpha / beta;
        if (fabs(new_lam - lam) / lam < 0.01) break;
        lam = new_lam;
    }
    double logdet = 0;
    for (int64_t k = 0; k < d; k++) logdet += log(alpha + beta * w->s[k]);
    double ev = (double)d / 2.0 * log(alpha) + (double)n / 2.0 * log(beta) - 0.5 * logdet -
                beta / 2.0 * (beta_de + LOGME_EPS) - alpha / 2.0 * (alpha_de + LOGME_EPS) -
                (double)n / 2.0 * log(2.0 * 3.14159265358979323846);
    return ev / (double)n;
}

/* f as double [n, d], and its Gram matrix f^T f [d, d]; NULL when out of memory. */
static double *to_double(const float *f, int64_t n, int64_t d) {
    double *fd = malloc(sizeof *fd * (size_t)(n * d));
    if (fd)
        for (int64_t i = 0; i < n * d; i++) fd[i] = (double)f[i];
    return fd;
}

gf_status gf_transfer_logme(gf_ctx *ctx, const float *f, int64_t n, int64_t d,
                            const int64_t *labels, int n_classes, double *out) {
    const char *op = "LogME";
    if (check_args(ctx, op, f, n, d, labels, n_classes, out) != GF_OK) return gf_ctx_status(ctx);
    double *fd = to_double(f, n, d), *v = malloc(sizeof *v * (size_t)(d * d));
    double *s = malloc(sizeof *s * (size_t)d), *buf = malloc(sizeof *buf * (size_t)(2 * n + 3 * d));
    gf_status st = GF_OK;
    if (!fd || !v || !s || !buf) {
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory for %lld x %lld features",
                              op, (long long)n, (long long)d);
        goto done;
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)n, 1.0, fd, (int)d, 0.0, v,
                (int)d);
    /* row-major upper is column-major lower: tell LAPACK the other triangle */
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < i; j++) v[i * d + j] = v[j * d + i];
    if ((st = eigh(ctx, op, v, (int)d, s)) != GF_OK) goto done;
    for (int64_t k = 0; k < d; k++)
        if (s[k] < 0) s[k] = 0;
    logme_work w = {fd, v, s, n, d, buf, buf + n, buf + n + d, buf + n + 2 * d, buf + n + 3 * d};
    double sum = 0;
    for (int c = 0; c < n_classes; c++) {
        for (int64_t i = 0; i < n; i++) w.y[i] = labels[i] == c ? 1.0 : 0.0;
        sum += logme_class(&w);
    }
    *out = sum / n_classes;
done:
    free(fd);
    free(v);
    free(s);
    free(buf);
    return st;
}

/* ---- H-score ---------------------------------------------------------------------------------- */

/* The class means mu [n_classes, d] and the overall mean mean [d] of fd; counts per class. */
static void class_means(const double *fd, int64_t n, int64_t d, const int64_t *labels,
                        int n_classes, double *mu, double *mean, int64_t *count) {
    memset(mu, 0, sizeof *mu * (size_t)(n_classes * d));
    memset(mean, 0, sizeof *mean * (size_t)d);
    memset(count, 0, sizeof *count * (size_t)n_classes);
    for (int64_t i = 0; i < n; i++) {
        count[labels[i]]++;
        for (int64_t j = 0; j < d; j++) {
            mu[labels[i] * d + j] += fd[i * d + j];
            mean[j] += fd[i * d + j];
        }
    }
    for (int c = 0; c < n_classes; c++)
        for (int64_t j = 0; j < d && count[c]; j++) mu[c * d + j] /= (double)count[c];
    for (int64_t j = 0; j < d; j++) mean[j] /= (double)n;
}

/* tr(pinv(cov_f) cov_g) from the eigendecomposition (v, s) of cov_f: the sum over kept
 * eigenvalues of (v_k^T cov_g v_k) / s_k, cov_g = sum_c n_c (mu_c - mean)(mu_c - mean)^T / (n-1). */
static double hscore_trace(const double *v, const double *s, int64_t d, const double *mu,
                           const double *mean, const int64_t *count, int n_classes, int64_t n) {
    double smax = 0;
    for (int64_t k = 0; k < d; k++) smax = fmax(smax, fabs(s[k]));
    double tr = 0;
    for (int64_t k = 0; k < d; k++) {
        if (fabs(s[k]) <= 1e-15 * smax) continue;
        double q = 0;
        for (int c = 0; c < n_classes; c++) {
            double p = 0;
            for (int64_t j = 0; j < d; j++) p += v[k * d + j] * (mu[c * d + j] - mean[j]);
            q += (double)count[c] * p * p;
        }
        tr += q / ((double)(n - 1) * s[k]);
    }
    return tr;
}

gf_status gf_transfer_hscore(gf_ctx *ctx, const float *f, int64_t n, int64_t d,
                             const int64_t *labels, int n_classes, double *out) {
    const char *op = "H-score";
    if (check_args(ctx, op, f, n, d, labels, n_classes, out) != GF_OK) return gf_ctx_status(ctx);
    double *fd = to_double(f, n, d), *v = malloc(sizeof *v * (size_t)(d * d));
    double *s = malloc(sizeof *s * (size_t)d), *mean = malloc(sizeof *mean * (size_t)d);
    double *mu = malloc(sizeof *mu * (size_t)(n_classes * d));
    int64_t *count = malloc(sizeof *count * (size_t)n_classes);
    gf_status st = GF_OK;
    if (!fd || !v || !s || !mean || !mu || !count) {
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory for %lld x %lld features",
                              op, (long long)n, (long long)d);
        goto done;
    }
    class_means(fd, n, d, labels, n_classes, mu, mean, count);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) fd[i * d + j] -= mean[j];
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)n, 1.0 / (double)(n - 1), fd,
                (int)d, 0.0, v, (int)d);
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < i; j++) v[i * d + j] = v[j * d + i];
    if ((st = eigh(ctx, op, v, (int)d, s)) != GF_OK) goto done;
    *out = hscore_trace(v, s, d, mu, mean, count, n_classes, n);
done:
    free(fd);
    free(v);
    free(s);
    free(mean);
    free(mu);
    free(count);
    return st;
}

/* ---- Spearman --------------------------------------------------------------------------------- */

/* Average ranks (1-based) of x into r. */
static void ranks(const double *x, int n, double *r) {
    for (int i = 0; i < n; i++) {
        int less = 0, equal = 0;
        for (int j = 0; j < n; j++) {
            less += x[j] < x[i];
            equal += x[j] == x[i];
        }
        r[i] = less + (equal + 1) / 2.0;
    }
}

double gf_transfer_spearman(const double *a, const double *b, int n) {
    if (!a || !b || n < 2) return NAN;
    double *ra = malloc(sizeof *ra * (size_t)n), *rb = malloc(sizeof *rb * (size_t)n);
    double r = NAN;
    if (ra && rb) {
        ranks(a, n, ra);
        ranks(b, n, rb);
        double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < n; i++) ma += ra[i] / n, mb += rb[i] / n;
        for (int i = 0; i < n; i++) {
            sab += (ra[i] - ma) * (rb[i] - mb);
            saa += (ra[i] - ma) * (ra[i] - ma);
            sbb += (rb[i] - mb) * (rb[i] - mb);
        }
        if (saa > 0 && sbb > 0) r = sab / sqrt(saa * sbb);
    }
    free(ra);
    free(rb);
    return r;
}
