/* graft npy: numpy's .npy files (format versions 1.0, 2.0 and 3.0 read, 1.0 written), one
 * tensor per file, as `numpy.save` writes and `numpy.load` reads them. Files are untrusted: the
 * header is parsed strictly (a dict with exactly 'descr', 'fortran_order' and 'shape'), and the
 * data must be exactly as long as the shape and type say before anything is allocated. */
#ifndef GRAFT_NPY_H
#define GRAFT_NPY_H

#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads a .npy file as a new persistent tensor (free with gf_tensor_free). Float types (<f4,
 * <f8, <f2, big-endian ones too) become float32, integer and bool types int64. C order only
 * (a Fortran-order file is refused with a message saying so). The file may hold at most the
 * data-bytes limit. NULL with a context error naming the file and what is wrong. */
gf_tensor *gf_npy_read(gf_ctx *ctx, const char *path);
/* The same from memory; name is used in messages. */
gf_tensor *gf_npy_read_memory(gf_ctx *ctx, const void *data, size_t size, const char *name);
/* Writes t (any strides) as a version 1.0 file: '<f4' for float32, '<i8' for int64. The file
 * is replaced atomically (a temporary file renamed over it). */
gf_status gf_npy_write(gf_ctx *ctx, const char *path, const gf_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
