/* graft data: readers that bring a dataset into memory in its compact form (uint8 pixels and
 * labels) and the per-batch conversion into float tensors. First reader: IDX (MNIST family). */
#ifndef GRAFT_DATA_H
#define GRAFT_DATA_H

#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- IDX files ------------------------------------------------------------------------
 * The format of MNIST and Fashion-MNIST: a 4-byte magic (0, 0, element type, ndim), ndim
 * big-endian uint32 sizes, then the elements in row-major order. Only unsigned bytes
 * (type 0x08) are read. Files may be plain or gzip-compressed (detected from the content). */

enum { GF_IDX_MAX_DIMS = 8 };
/* The default of the data-bytes limit (gf_limits.data_bytes): the largest payload accepted
 * from one file; larger headers are rejected as corrupt before anything is allocated. */
#define GF_IDX_MAX_BYTES ((int64_t)1 << 32)

typedef struct gf_idx {
    int ndim;
    int64_t dims[GF_IDX_MAX_DIMS];
    int64_t numel;  /* product of dims */
    uint8_t *data;  /* numel bytes, row-major; owned (gf_idx_free) */
    void *mapping;  /* NULL, or the private file mapping `data` lies in (from the cache) */
    size_t mapping_len;
} gf_idx;

/* Reads a whole IDX file. On success fills *out and returns GF_OK; the caller frees it with
 * gf_idx_free. On failure returns the status (GF_ERR_IO: cannot open or read; GF_ERR_FORMAT:
 * bad magic, unsupported type, absurd sizes, truncated or corrupt gzip data, trailing bytes;
 * GF_ERR_NOMEM), sets a context error that names the file, and leaves *out empty.
 * Limits (ctx's gf_limits): the declared payload may not exceed data-bytes; a gzip file whose
 * payload exceeds 64 MiB may not inflate more than gzip-ratio times its compressed size,
 * checked against the header before anything is allocated and again as the data streams.
 *
 * The decompressed cache: a gzip file whose payload is 1 MiB or more is, after a complete and
 * valid read, also written uncompressed (atomically) to
 * $GRAFT_CACHE_DIR/idx/ (default $XDG_CACHE_HOME/graft, else ~/.cache/graft), keyed by the
 * source's path, size, modification time and inode; later reads of the same unchanged source
 * map that file (private, copy-on-write) instead of inflating it again: Fashion-MNIST's
 * training images in ~0.1 ms instead of ~0.2 s. A cache file that is missing, unreadable or
 * does not match its own header is ignored (and rewritten); failing to write one is not an
 * error. GRAFT_IDX_CACHE=0 turns the cache off. */
gf_status gf_idx_read(gf_ctx *ctx, const char *path, gf_idx *out);
/* Frees the data and empties *x. NULL or an empty gf_idx is a no-op. */
void gf_idx_free(gf_idx *x);

/* ---- image classification datasets ---------------------------------------------------- */

typedef struct gf_dataset {
    int64_t n;          /* number of examples */
    int64_t rows, cols; /* image size; one channel */
    int n_classes;      /* 1 + the largest label */
    uint8_t *images;    /* [n, rows, cols] pixels 0..255; owned */
    uint8_t *labels;    /* [n] class indices; owned */
    void *images_mapping; /* NULL, or the file mapping `images` lies in (see gf_idx_read) */
    size_t images_mapping_len;
} gf_dataset;

typedef enum gf_dataset_split { GF_DATASET_TRAIN = 0, GF_DATASET_TEST = 1 } gf_dataset_split;

/* Loads an images file (IDX, 3 dimensions [n, rows, cols]) and a labels file (IDX, 1
 * dimension [n]) with the same n >= 1. Returns a new dataset (free with gf_dataset_free), or
 * NULL with a context error naming the offending file. */
gf_dataset *gf_dataset_load_idx(gf_ctx *ctx, const char *images_path, const char *labels_path);
void gf_dataset_free(gf_dataset *d);

/* The two file paths of a split of a named dataset. `name` is "fashion-mnist" or "mnist",
 * whose files are <dir>/<name>/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz with <dir> =
 * $GRAFT_DATA_DIR when set (if it holds the files directly rather than a <name> folder, that
 * works too), else /usr/share/datasets; or `name` contains a '/' and is itself the folder of
 * those four files. Writes NUL-terminated paths into the cap-byte buffers. Returns GF_OK, or
 * GF_ERR_INVALID for an unknown name / a path longer than cap. Does not check that the files
 * exist (loading does). */
gf_status gf_dataset_paths(gf_ctx *ctx, const char *name, gf_dataset_split split, char *images_path,
                           char *labels_path, size_t cap);
/* gf_dataset_paths + gf_dataset_load_idx, and for the MNIST family also checks the images
 * are 28x28 and the labels lie in 0..9. Returns a new dataset or NULL with a context error. */
gf_dataset *gf_dataset_load(gf_ctx *ctx, const char *name, gf_dataset_split split);

/* Fills a batch from examples idx[0..n): x[i] = (pixel / 255 - mean) / std (mean 0, std 1
 * give torchvision's ToTensor scaling to [0, 1]), and y[i] = label (y may be NULL).
 * x: float32, contiguous, shape[0] == n and n * rows * cols elements ([n, rows*cols] or
 * [n, 1, rows, cols]); y: int64, contiguous, n elements. The tensors are the caller's (arena
 * or persistent). Returns GF_OK, or an error for a bad shape, std <= 0 or an index outside
 * [0, d->n). */
gf_status gf_dataset_batch(gf_ctx *ctx, const gf_dataset *d, const int64_t *idx, int64_t n,
                           float mean, float std, gf_tensor *x, gf_tensor *y);

#ifdef __cplusplus
}
#endif
#endif
