/* graft splits and subsets: index views over a base dataset — train/val/test splits (random
 * or stratified, by fraction or count, reproducible by seed), subsets by class list with
 * labels remapped to 0..k-1, the first or a random N examples per class, any index list.
 * A view holds a reference to its base and copies nothing but indices. */
#ifndef GRAFT_SPLIT_H
#define GRAFT_SPLIT_H

#include "graft/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gf_split_params {
    double val_fraction, test_fraction; /* in [0, 1): sizes ceil(fraction * n) (sklearn's
                                         * train_test_split rounding for the held-out part) */
    int64_t val_count, test_count;      /* > 0: exact sizes, overriding the fractions */
    bool shuffle;  /* random split (default true); false: in dataset order — the last
                        * examples (of each class when stratified) go to test, those before
                        * them to val */
    bool stratify; /* keep the class proportions in every part (classification only; not
                    * for per-step labels, which have no class per example) */
    uint64_t seed; /* the shuffle's seed */
    bool allow_empty_train; /* val and test may take every example (fractions up to 1, their
                             * sum up to 1): for data cut to be evaluated, not trained on */
} gf_split_params;

/* Defaults: val 0, test 0.2, shuffle, not stratified, seed 0. */
gf_split_params gf_split_default_params(void);

/* Splits ds into train / val / test views. Each output pointer may be NULL (that part is not
 * returned); a part with no examples is returned as NULL. Each view lists its examples in
 * dataset order. Stratified: each class's share of a part is its share of ds, rounded so the
 * part sizes are exact (largest remainders; ties to the larger class, then the lower label).
 * Returns GF_OK, or an error (fractions out of range, parts larger than the dataset, a
 * stratified split of a regression dataset) with every output NULL. */
gf_status gf_split_dataset(gf_ctx *ctx, gf_ds *ds, const gf_split_params *params, gf_ds **train,
                           gf_ds **val, gf_ds **test);

/* The examples of parts[0..n) one after another (NULL entries skipped): every part must have
 * one sample shape and one class count (the first part's class names are kept). Returns a new
 * dataset (free with gf_ds_free; it holds a reference to each part) or NULL with a context
 * error naming the part that does not fit. */
gf_ds *gf_split_concat(gf_ctx *ctx, gf_ds *const *parts, int n);

/* A view of examples idx[0..n) of ds (in that order; repeats allowed), same classes. Returns
 * a new dataset (free with gf_ds_free) or NULL with a context error naming a bad index. */
gf_ds *gf_split_indices(gf_ctx *ctx, gf_ds *ds, const int64_t *idx, int64_t n);

/* The examples of the listed classes, relabelled 0..k-1 in increasing order of the original
 * label, keeping their class names. spec: comma-separated labels, ranges and class names:
 * "5-9", "0,2,4", "0-2,7", "cat,dog". Errors name the token that is not a class. */
gf_ds *gf_split_classes(gf_ctx *ctx, gf_ds *ds, const char *spec);

/* n_per_class examples of every class: the first ones in dataset order, or (random) a random
 * choice by seed, listed in dataset order. A class with fewer examples is an error naming it
 * (unless allow_fewer: then it gives all it has). */
gf_ds *gf_split_per_class(gf_ctx *ctx, gf_ds *ds, int64_t n_per_class, bool random, uint64_t seed,
                          bool allow_fewer);

/* At most n examples of ds chosen at random by seed, listed in dataset order (n <= 0 or ds no
 * larger: a new reference to ds itself). The choice draws from its own stream of the seed, so
 * a limit and a split made with one seed do not pick alike. Returns a new dataset (free with
 * gf_ds_free) or NULL with a context error. */
gf_ds *gf_split_limit(gf_ctx *ctx, gf_ds *ds, int64_t n, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
