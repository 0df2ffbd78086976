/* graft images: image-folder datasets in torchvision's ImageFolder layout (root/<class>/<file>,
 * classes sorted by name), decoded (PNG with libpng, JPEG with libjpeg-turbo, binary PPM/PGM and
 * BMP by graft), resized (bilinear) and centre-cropped to one size, kept as uint8 [N, C, H, W];
 * plus the resize / crop / grey conversion on their own. Files may be hostile: declared sizes
 * are checked against a pixel limit and the file's length before anything is allocated. */
#ifndef GRAFT_IMAGES_H
#define GRAFT_IMAGES_H

#include "graft/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gf_images_params {
    int channels;           /* 1: grayscale (ITU-R 601-2 luma, as PIL's convert("L")), 3: RGB.
                            * Default 3. Alpha is dropped. */
    int resize;             /* > 0: scale so the shorter side has this length, keeping the
                            * aspect ratio (torchvision Resize(int)); 0: no resize */
    int resize_h, resize_w; /* > 0 (both): scale to exactly this size (Resize((h, w)));
                            * overrides resize */
    int crop_h, crop_w;     /* > 0 (both): centre crop after resizing (CenterCrop((h, w))),
                            * zero-padded when the image is smaller */
    int n_threads;          /* decoding threads; 0: the context's count */
    int64_t max_pixels;     /* refuse an image whose header declares more pixels than this, or
                            * whose size after resize or crop would be larger, before decoding
                            * it (as Pillow's Image.MAX_IMAGE_PIXELS); 0: GF_IMAGES_MAX_PIXELS */
    bool follow_links;      /* gf_images_load_folder: follow symbolic links that lead outside
                            * root; default false (skipped and counted in gf_images_report) */
} gf_images_params;

/* Pillow's default Image.MAX_IMAGE_PIXELS (a 9459 x 9459 image; about 268 MB as RGB). */
#define GF_IMAGES_MAX_PIXELS INT64_C(89478485)

gf_images_params gf_images_default_params(void);

/* What gf_images_load_folder_report left out of the walk, for the caller to show. */
typedef struct gf_images_report {
    int64_t files;            /* image files loaded */
    int64_t links_outside;    /* symbolic links leading outside root, not followed */
    int64_t links_inside;     /* symbolic links to something inside root: not followed, what
                               * they point to is read where it lies (under its own class) */
    int64_t links_broken;     /* symbolic links to nothing */
    int64_t duplicates;       /* files and folders reached again (same device and inode: hard
                               * links, or links followed outside root) */
    char first_skipped[512];  /* the first of these, with why ("" when none) */
} gf_images_report;

/* True when graft was built with PNG and JPEG decoding (GRAFT_WITH_IMAGES, libpng and
 * libjpeg-turbo); without them PNG and JPEG files fail with a message saying so, PPM/PGM and BMP
 * still decode. */
bool gf_images_can_decode(void);

/* Loads every image under root/<class>/ (subfolders included, walked like torchvision: folders
 * sorted by path, files sorted by name) with one of torchvision's extensions .jpg .jpeg .png
 * .ppm .bmp .pgm .tif .tiff .webp (any case); the format is read from the file's first bytes,
 * and TIFF, WebP or anything but PNG, JPEG, binary PPM/PGM and BMP is reported as undecodable
 * rather than skipped. Class folders are sorted by byte order of their names (torchvision's
 * sorted()); class k is the k-th folder. Each file (device and inode) counts once; symbolic
 * links inside root are not followed (their targets are read where they lie), links leading
 * outside root only with follow_links; a class folder that is such a link is an error. Without
 * resize or crop every image must have the size of the first one. Errors name the file: an
 * unreadable or undecodable image, a size over max_pixels, an image of another size, a class
 * folder without images, a root without class folders. Returns a new dataset of sample shape
 * [C, H, W] (values pixel / 255 per batch), or NULL with a context error. */
gf_ds *gf_images_load_folder(gf_ctx *ctx, const char *root, const gf_images_params *params);

/* gf_images_load_folder that also fills *report (when not NULL) with what the walk skipped:
 * links not followed, files reached twice. Filled on failure too, as far as the walk got. */
gf_ds *gf_images_load_folder_report(gf_ctx *ctx, const char *root, const gf_images_params *params,
                                    gf_images_report *report);

/* The image files under root, subfolders included, as the image-folder reader walks a class
 * folder: folders sorted by path, each folder's files by name, the same extensions, each file
 * (device and inode) once, symbolic links as gf_images_load_folder treats them (follow_links).
 * *paths gets n malloc'd paths (free each, then the array); *report (may be NULL) what the walk
 * skipped. GF_OK (also for a folder without images: n 0), or an error naming root. */
gf_status gf_images_list(gf_ctx *ctx, const char *root, bool follow_links, char ***paths,
                         int64_t *n, gf_images_report *report);

/* Path of example i of an image-folder dataset or of a view of one (a split, subset or class
 * choice) (borrowed), or NULL (other kinds of dataset, out of range). */
const char *gf_images_path(const gf_ds *ds, int64_t i);

/* Decodes one image and applies the same channel conversion, resize and crop: returns a new
 * malloc'd uint8 [C, H, W] buffer (free with free()) and sets *h, *w; NULL with a context
 * error naming the file (an image over params->max_pixels is refused from its header). For
 * predicting on a single file the way the dataset was built. */
uint8_t *gf_images_read(gf_ctx *ctx, const char *path, const gf_images_params *params, int *h,
                        int *w);

/* Bilinear resize of an interleaved uint8 image [sh, sw, c] into [dh, dw, c]: pixel centres
 * aligned (align_corners = False) and, when shrinking, the triangle filter widened by the
 * scale, as PIL's BILINEAR and torchvision's antialias=True do (results within 1 of PIL). */
void gf_images_resize(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh, int dw);

#ifdef __cplusplus
}
#endif
#endif
