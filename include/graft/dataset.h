/* graft datasets: one interface (gf_ds) over every source of examples — in-memory arrays,
 * IDX files, CSV tables, image folders, index views (splits and subsets) and user callbacks.
 * A dataset keeps its compact form (uint8 pixels stay uint8) and converts per batch. */
#ifndef GRAFT_DATASET_H
#define GRAFT_DATASET_H

#include "graft/data.h"
#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A dataset: n examples, each a float array of a fixed "sample shape" (e.g. [C, H, W] for
 * images, [F] for a table row) and a label. Classification datasets (n_classes >= 1) have
 * int64 labels in [0, n_classes) and class names; regression datasets (n_classes == 0) have
 * one float target per example.
 *
 * Datasets are reference counted: views (splits, subsets, loaders) hold a reference to their
 * base, so the caller may free the base right after making its views. Create, retain and free
 * datasets from one thread; reading batches is safe from several threads at once (readers do
 * not modify the dataset), which is what the loader's prefetch thread does. */
typedef struct gf_ds gf_ds;

enum { GF_DS_MAX_DIMS = 4 };

/* ---- the interface --------------------------------------------------------------------- */

int64_t gf_ds_count(const gf_ds *ds);
/* The index of example i in the dataset it was cut from (a split, subset or class choice is a
 * view of its base: the base's index; any other dataset: i), or -1 when i is out of range. */
int64_t gf_ds_source_index(const gf_ds *ds, int64_t i);
/* Sample shape (without the batch dimension): gf_ds_ndim entries of gf_ds_shape. */
int gf_ds_ndim(const gf_ds *ds);
const int64_t *gf_ds_shape(const gf_ds *ds);
int64_t gf_ds_sample_numel(const gf_ds *ds);
/* Number of classes; 0 for a regression dataset. */
int gf_ds_n_classes(const gf_ds *ds);
/* Name of class k (borrowed, valid while ds lives); NULL when k is out of range. */
const char *gf_ds_class_name(const gf_ds *ds, int k);
/* Index of the class with this name, or -1. */
int gf_ds_class_index(const gf_ds *ds, const char *name);
/* Name of feature j (table columns; borrowed) or NULL when the dataset has no feature names. */
const char *gf_ds_feature_name(const gf_ds *ds, int64_t j);
/* Label of example i (classification), or -1 when i is out of range / ds is regression / ds
 * has per-step labels. */
int64_t gf_ds_label(const gf_ds *ds, int64_t i);

/* The target of a padding step among per-step labels: counted neither in the loss nor in the
 * accuracy (PyTorch's cross_entropy ignore_index default). */
#define GF_DS_IGNORE_LABEL (-100)
/* Labels per example: 0 for one label (or target) per example; T > 0 for a sequence-labelling
 * dataset, whose examples each have T per-step class labels, in [0, n_classes) or
 * GF_DS_IGNORE_LABEL, batched as int64 [n, T]. */
int64_t gf_ds_label_steps(const gf_ds *ds);
/* Number of examples of each class: counts[k] for k < n_classes (per-step labels: the steps of
 * each class, padding left out). */
gf_status gf_ds_class_counts(gf_ctx *ctx, const gf_ds *ds, int64_t *counts);

/* Fills a batch from examples idx[0..n): x gets the features (uint8 data scaled to [0, 1],
 * like torchvision's ToTensor), y the labels. x: float32, contiguous, shape[0] == n and
 * n * sample_numel elements (e.g. [n, C, H, W] or [n, C*H*W]). y (may be NULL): contiguous,
 * n elements (n * T with per-step labels), int64 for classification, float32 for
 * regression. The tensors are the caller's.
 * Returns GF_OK, or an error naming the bad index or shape. */
gf_status gf_ds_batch(gf_ctx *ctx, const gf_ds *ds, const int64_t *idx, int64_t n, gf_tensor *x,
                      gf_tensor *y);
/* Same into raw buffers: x holds n * sample_numel floats, y (may be NULL) n int64 labels
 * (n * T per-step labels) or n float targets. Writes no context: on error returns the status and a message in err
 * (err may be NULL). This is the form the loader's background thread uses. */
gf_status gf_ds_read(const gf_ds *ds, const int64_t *idx, int64_t n, float *x, void *y, char *err,
                     size_t err_cap);
/* Same, for epoch `epoch` of a training loop (gf_loader passes its epoch; gf_ds_read passes
 * -1: unknown). Only datasets whose examples change every epoch use it (audio with waveform
 * augmentation: gf_ds_source.read_epoch), so that an example's draws depend on the example and
 * the epoch alone, not on which process or in which order it is read. */
gf_status gf_ds_read_epoch(const gf_ds *ds, const int64_t *idx, int64_t n, int64_t epoch, float *x,
                           void *y, char *err, size_t err_cap);

/* Adds a reference (returns ds) / drops one, freeing the dataset with the last. NULL: no-op. */
gf_ds *gf_ds_retain(gf_ds *ds);
void gf_ds_free(gf_ds *ds);

/* A short description: "csv iris.csv: 150 x [4], 3 classes". Always NUL-terminated. */
char *gf_ds_describe(const gf_ds *ds, char *buf, size_t n);

/* Per-channel mean and population standard deviation (ddof 0) of the batch values, over all
 * examples and positions: channel = the first sample dimension ([C, H, W] -> C channels;
 * a table row [F] -> F channels, like sklearn's StandardScaler). mean and std hold
 * gf_ds_shape(ds)[0] values. A constant channel gets std 1 (so normalising leaves it at 0,
 * as StandardScaler does). Computed in double over the whole dataset (views see only their
 * examples: compute on the training split). */
gf_status gf_ds_channel_stats(gf_ctx *ctx, const gf_ds *ds, float *mean, float *std);

/* ---- in-memory datasets ----------------------------------------------------------------- */

typedef struct gf_ds_desc {
    int ndim;                      /* sample dimensions, 1..GF_DS_MAX_DIMS */
    int64_t shape[GF_DS_MAX_DIMS]; /* sample shape */
    int64_t n;                     /* examples */
    const uint8_t *x_u8;           /* [n, shape...] bytes, scaled by 1/255 per batch; or */
    const float *x_f32;            /* [n, shape...] floats (exactly one of the two) */
    const int64_t *labels;         /* [n] in [0, n_classes) for classification; or */
    const float *targets;          /* [n] regression targets (n_classes must be 0) */
    int n_classes;
    /* > 0: labels holds label_steps per-step labels per example ([n, label_steps], each in
     * [0, n_classes) or GF_DS_IGNORE_LABEL); 0: one label per example */
    int64_t label_steps;
    const char *const *class_names;   /* n_classes names, or NULL for "0", "1", ... */
    const char *const *feature_names; /* shape[0] names when ndim == 1, or NULL */
    const char *name;                 /* shown by gf_ds_describe; may be NULL */
} gf_ds_desc;

/* Returns a new dataset holding copies of the arrays (free with gf_ds_free), or NULL with a
 * context error (bad shape, a label outside [0, n_classes) naming its index, ...). */
gf_ds *gf_ds_from_memory(gf_ctx *ctx, const gf_ds_desc *desc);

/* Wraps an IDX dataset (images [n, rows, cols], uint8 labels) as a gf_ds of sample shape
 * [1, rows, cols] with values pixel / 255. take_ownership: the gf_ds frees d with
 * gf_dataset_free when it is freed (also when this call fails); otherwise d must outlive it.
 * n_classes and class names: torchvision's names for a 10-class dataset named (in desc_name)
 * "mnist" or "fashion-mnist", else "0", "1", ... Returns NULL with a context error when a
 * label is outside [0, d->n_classes). */
gf_ds *gf_ds_from_idx(gf_ctx *ctx, gf_dataset *d, bool take_ownership, const char *desc_name);
/* gf_dataset_load(name, split) wrapped by gf_ds_from_idx: "mnist" or "fashion-mnist" (see
 * data.h for where the files are looked for). */
gf_ds *gf_ds_load_named(gf_ctx *ctx, const char *name, gf_dataset_split split);

/* ---- datasets from callbacks ------------------------------------------------------------ */

typedef struct gf_ds_source {
    /* Writes examples idx[0..n) (each index already checked to lie in [0, n)) into x
     * (n * sample_numel floats; NULL when only labels are wanted) and y (n int64 labels or
     * n float targets; NULL when not wanted). Called from any thread, possibly concurrently.
     * Returns GF_OK, or a status with a message written into err (err_cap bytes). */
    gf_status (*read)(void *user, const int64_t *idx, int64_t n, float *x, void *y, char *err,
                      size_t err_cap);
    /* Label of example i (optional: NULL means read() is called for it). */
    int64_t (*label)(void *user, int64_t i);
    /* Releases user (optional), called once with the last reference. */
    void (*free)(void *user);
    /* Optional instead of read (then read may be NULL): the same, told the epoch the examples
     * are read for (gf_ds_read_epoch; -1 when the caller does not know it). For sources whose
     * examples change every epoch, and for wrappers that pass the epoch on to another
     * dataset. */
    gf_status (*read_epoch)(void *user, const int64_t *idx, int64_t n, int64_t epoch, float *x,
                            void *y, char *err, size_t err_cap);
} gf_ds_source;

/* A dataset served by callbacks (read or read_epoch required): n examples of the given sample
 * shape. The new dataset owns
 * user (src->free is called on it when the dataset goes, and also when this call fails). */
gf_ds *gf_ds_from_source(gf_ctx *ctx, const gf_ds_source *src, void *user, int64_t n, int ndim,
                         const int64_t *shape, int n_classes, const char *const *class_names,
                         const char *name);

#ifdef __cplusplus
}
#endif
#endif
