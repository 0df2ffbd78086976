/* graft images: image-folder datasets in torchvision's ImageFolder layout (root/<class>/<file>,
 * classes sorted by name), decoded with stb_image, resized (bilinear) and centre-cropped to one
 * size, kept as uint8 [N, C, H, W]; plus the resize / crop / grey conversion on their own. */
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
} gf_images_params;

gf_images_params gf_images_default_params(void);

/* True when graft was built with stb_image (otherwise every decoding call fails with a message
 * saying so). */
bool gf_images_can_decode(void);

/* Loads every image under root/<class>/ (subfolders included, walked like torchvision: folders
 * sorted by path, files sorted by name) with one of torchvision's extensions .jpg .jpeg .png
 * .ppm .bmp .pgm .tif .tiff .webp (any case); stb_image decodes all but .tif/.tiff/.webp, which
 * are reported as undecodable rather than skipped. Class folders are sorted
 * by byte order of their names (torchvision's sorted()); class k is the k-th folder. Without
 * resize or crop every image must have the size of the first one. Errors name the file: an
 * unreadable or undecodable image, an image of another size, a class folder without images, a
 * root without class folders. Returns a new dataset of sample shape [C, H, W] (values
 * pixel / 255 per batch), or NULL with a context error. */
gf_ds *gf_images_load_folder(gf_ctx *ctx, const char *root, const gf_images_params *params);

/* Path of example i of an image-folder dataset (borrowed), or NULL (other kinds of dataset,
 * out of range, or a view: ask its base). */
const char *gf_images_path(const gf_ds *ds, int64_t i);

/* Decodes one image and applies the same channel conversion, resize and crop: returns a new
 * malloc'd uint8 [C, H, W] buffer (free with free()) and sets *h, *w; NULL with a context
 * error naming the file. For predicting on a single file the way the dataset was built. */
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
