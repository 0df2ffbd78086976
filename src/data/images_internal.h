/* Inside graft/images.h: the decoders (image_decode.c) and the folder walk (image_walk.c).
 * PNG goes through libpng and JPEG through libjpeg-turbo (both fuzzed upstream), binary PPM/PGM
 * and BMP through graft's own readers (fuzzed by tests/fuzz/fuzz_images.c). Every size a header
 * declares is checked before anything image-sized is allocated. */
#ifndef GRAFT_IMAGES_INTERNAL_H
#define GRAFT_IMAGES_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/images.h"

/* The longest side any decoder accepts (JPEG's own limit is 65535). */
#define GF_IMG_MAX_SIDE 65536

/* Opens path and reads its header; unless header_only, also its pixels as interleaved 8-bit RGB
 * into *rgb (malloc'd, h * w * 3 bytes). The format comes from the first bytes, not the name.
 * Refused before any image-sized allocation: more than max_pixels pixels, a zero or over-long
 * side, and (raw formats) more pixel bytes than the file holds. On failure returns false with a
 * message naming path in err (cap bytes). Thread-safe. */
bool gf_img_decode(const char *path, int64_t max_pixels, bool header_only, uint8_t **rgb, int *h,
                   int *w, char *err, size_t cap);

/* True when PNG and JPEG decoding were built in (GRAFT_WITH_IMAGES). */
bool gf_img_have_codecs(void);

/* The image files of an ImageFolder root: class folders sorted by name, the files of class k
 * are files[starts[k] .. starts[k + 1]). */
typedef struct gf_img_tree {
    char **classes; /* full paths */
    int64_t n_classes;
    char **files; /* full paths */
    int64_t n_files;
    int64_t *starts; /* [n_classes + 1] */
} gf_img_tree;

/* Walks root in torchvision's order, each file (device and inode) once; symbolic links leading
 * outside root are followed only with follow_links, links inside it never (what they point to
 * is read where it lies). What was skipped is counted in *rep. Errors in ctx. */
gf_status gf_img_walk(gf_ctx *ctx, const char *root, bool follow_links, gf_img_tree *tree,
                      gf_images_report *rep);
/* The same walk over the files whose names end in one of exts (NULL-terminated, any case): how
 * audio folders (.wav .flac .ogg) are read with the same order, link and duplicate rules. */
gf_status gf_img_walk_ext(gf_ctx *ctx, const char *root, bool follow_links,
                          const char *const *exts, gf_img_tree *tree, gf_images_report *rep);
void gf_img_tree_free(gf_img_tree *tree);
/* gf_images_list for the files whose names end in one of exts (NULL-terminated, any case). */
gf_status gf_img_list_ext(gf_ctx *ctx, const char *root, bool follow_links,
                          const char *const *exts, char ***paths, int64_t *n,
                          gf_images_report *report);

#endif
