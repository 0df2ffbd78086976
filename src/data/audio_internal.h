/* Audio data, internal: the training part of audio: data perturbed afresh at every read
 * (gf_ds_open's --augment noise, speed, shift). Not installed. */
#ifndef GRAFT_AUDIO_INTERNAL_H
#define GRAFT_AUDIO_INTERNAL_H

#include "graft/audio.h"

/* Replaces *part (examples of an audio folder: gf_images_path names each file) by a dataset of
 * the same examples, labels and classes whose features are computed at every read from the
 * files' clips (decoded once, fitted to the clip length), perturbed by p first (gf_audio_perturb)
 * with a seed made of seed, the example's index in its folder and the epoch it is read for
 * (gf_ds_read_epoch; without one, how many times that example was read before): fresh every
 * epoch, the same for the same seed. waveform: the samples are the perturbed clips fitted to
 * the clip length again ([1, clip]) instead of their log-mel features. GF_OK, or a context
 * error naming the file that failed. */
gf_status gf_audio_augment_part(gf_ctx *ctx, gf_ds **part, const gf_audio_frontend *fe,
                                const gf_audio_perturb_params *p, uint64_t seed, int n_threads,
                                bool waveform);

#endif
