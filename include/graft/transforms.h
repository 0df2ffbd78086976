/* graft transforms: a pipeline of per-batch data transforms (normalise, random crop with zero
 * padding, horizontal flip, small affine, random erasing) with torchvision's semantics, and
 * SpecAugment's time and frequency masks on spectrograms with torchaudio's. Random
 * choices come from one seed per batch, split into one stream per example, so a batch
 * transforms the same way whatever the thread count and whether it was prefetched. */
#ifndef GRAFT_TRANSFORMS_H
#define GRAFT_TRANSFORMS_H

#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A pipeline; stages run in the order they were added. Build it once, then apply it to many
 * batches (applying does not modify it, so threads may share it). */
typedef struct gf_tf gf_tf;

/* Returns a new empty pipeline (free with gf_tf_free), or NULL when out of memory. */
gf_tf *gf_tf_new(gf_ctx *ctx);
void gf_tf_free(gf_tf *tf);
int gf_tf_count(const gf_tf *tf);

/* Each adder returns GF_OK or GF_ERR_INVALID (bad parameter, message names it).
 *
 * Normalize: x[c] = (x[c] - mean[c]) / std[c] over channel c = the first sample dimension
 * ([C, H, W] images; a table row [F] has F channels). channels == 1 applies to every channel.
 * std > 0. gf_ds_channel_stats computes mean and std from a dataset. */
gf_status gf_tf_normalize(gf_ctx *ctx, gf_tf *tf, int channels, const float *mean,
                          const float *std);
/* RandomCrop((height, width), padding): pads every side with `padding` zeros, then cuts a
 * height x width window at a uniformly random place. Images [C, H, W] only. */
gf_status gf_tf_random_crop(gf_ctx *ctx, gf_tf *tf, int height, int width, int padding);
/* RandomHorizontalFlip(p): mirrors left-right with probability p. Images only. */
gf_status gf_tf_hflip(gf_ctx *ctx, gf_tf *tf, float p);
/* RandomAffine(degrees, translate=(t, t), scale=(scale_lo, scale_hi)): rotation by an angle
 * uniform in [-degrees, degrees] (positive = counter-clockwise on screen) about the image
 * centre, scaling by a factor uniform in [scale_lo, scale_hi], then a shift of
 * round(uniform(-t * W, t * W)) pixels across and likewise down; bilinear sampling, zero
 * outside. 0 <= degrees <= 180, 0 <= t <= 1, 0 < scale_lo <= scale_hi. Images only. */
gf_status gf_tf_affine(gf_ctx *ctx, gf_tf *tf, float degrees, float translate, float scale_lo,
                       float scale_hi);
/* RandomErasing(p, scale=(scale_lo, scale_hi), ratio=(ratio_lo, ratio_hi), value): with
 * probability p, fills a rectangle of area fraction in [scale_lo, scale_hi] and log-uniform
 * aspect ratio in [ratio_lo, ratio_hi] with `value` in every channel (up to 10 tries to find
 * one that fits, as torchvision; none fitting leaves the image). Usually after normalize.
 * torchvision's defaults: 0.5, 0.02, 0.33, 0.3, 3.3, 0. Images only. */
gf_status gf_tf_random_erasing(gf_ctx *ctx, gf_tf *tf, float p, float scale_lo, float scale_hi,
                               float ratio_lo, float ratio_hi, float value);

/* SpecAugment on spectrograms [C, F, T] (C channels of F frequency bins by T frames), as
 * torchaudio.transforms.SpecAugment(n_time_masks, time_mask_param, n_freq_masks,
 * freq_mask_param, iid_masks=False, p=1, zero_masking): first n_freq_masks masks along F, then
 * n_time_masks along T, each torchaudio's mask_along_axis: width w = u * param and start
 * floor(v * (size - w)) for u, v uniform in [0, 1), bins [start, start + floor(w)) set in every
 * channel to 0 (zero_masking) or to the example's mean before any mask. params >= 0, at most the
 * axis length (checked when the shape is known). Spectrogram samples only (3 dimensions). */
gf_status gf_tf_specaugment(gf_ctx *ctx, gf_tf *tf, int n_freq_masks, int freq_mask_param,
                            int n_time_masks, int time_mask_param, bool zero_masking);

/* Sample shape after the pipeline for input sample shape in[0..ndim) (the crop changes H, W).
 * GF_ERR_SHAPE (with a message naming the stage) when a stage does not fit the shape. */
gf_status gf_tf_out_shape(gf_ctx *ctx, const gf_tf *tf, int ndim, const int64_t *in, int64_t *out);

/* Applies the pipeline to a batch x [B, sample...] (float32, any strides). seed decides every
 * random choice (example i uses a stream derived from seed and i). Returns a new arena tensor
 * [B, out sample...] or NULL with a context error. */
gf_tensor *gf_tf_apply(gf_ctx *ctx, const gf_tf *tf, const gf_tensor *x, uint64_t seed);

/* The same on raw buffers, for threads without a context: x holds B samples of shape
 * in[0..ndim) (read only), out B samples of the output shape. Returns GF_OK or a status with
 * a message in err (may be NULL). */
gf_status gf_tf_apply_raw(const gf_tf *tf, int64_t B, int ndim, const int64_t *in, const float *x,
                          float *out, uint64_t seed, char *err, size_t err_cap);

#ifdef __cplusplus
}
#endif
#endif
