/* graft audio: audio files (WAV, FLAC, Ogg/Vorbis through libsndfile) read to mono float32 at one
 * sample rate (libsamplerate), log-mel features equal to torchaudio's MelSpectrogram computed
 * with FFTW, and waveform perturbations (noise at an SNR, speed). Files may be hostile: declared
 * lengths, channel counts and rates are checked before anything clip-sized is allocated. */
#ifndef GRAFT_AUDIO_H
#define GRAFT_AUDIO_H

#include "graft/core.h"
#include "graft/images.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* True when graft was built with libsndfile, libsamplerate and FFTW (GRAFT_WITH_AUDIO); without
 * them every function below fails with a message saying so. */
bool gf_audio_available(void);

typedef struct gf_audio_params {
    int sample_rate;     /* output rate in Hz (default 16000), in [1000, 384000] */
    double max_seconds;  /* refuse a file declaring more than this many seconds (default 600) */
    int max_channels;    /* refuse more channels than this (default 64) */
} gf_audio_params;

gf_audio_params gf_audio_default_params(void);

/* Reads an audio file (WAV PCM 8/16/24/32-bit or float, FLAC, Ogg/Vorbis: whatever libsndfile
 * decodes, the format found from the file's bytes) as mono float32 at params->sample_rate:
 * channels averaged, then resampled with libsamplerate's SRC_SINC_MEDIUM_QUALITY (a 97 dB
 * stop band, fast enough to decode a dataset eagerly) when the file's
 * rate differs. Returns a malloc'd array of *n samples (the caller frees it), or NULL with a
 * context error naming the file: libsndfile's own message for what it cannot decode, zero
 * frames, more channels or seconds than the limits, a rate outside [1000, 384000] Hz, a sample
 * that is not a finite number (float files).
 * Thread-safe (one context per thread). params NULL: the defaults. */
float *gf_audio_read(gf_ctx *ctx, const char *path, const gf_audio_params *params, int64_t *n);
/* The same from size bytes in memory (name is used in messages). */
float *gf_audio_read_memory(gf_ctx *ctx, const void *data, size_t size, const char *name,
                            const gf_audio_params *params, int64_t *n);
/* Same as gf_audio_read without a context: message in err (err_cap bytes). */
float *gf_audio_read_raw(const char *path, const gf_audio_params *params, int64_t *n, char *err,
                         size_t err_cap);

/* Resamples x[0..n) from rate in_rate to out_rate (SRC_SINC_MEDIUM_QUALITY): a malloc'd array of
 * *n_out samples (about n * out_rate / in_rate), or NULL with a message in err. */
float *gf_audio_resample(const float *x, int64_t n, double in_rate, double out_rate,
                         int64_t *n_out, char *err, size_t err_cap);

/* Centre-crops or zero-pads x[0..n) to out[0..len): a longer clip loses (n - len) / 2 samples at
 * the start, a shorter one is centred between zeros. */
void gf_audio_fit(const float *x, int64_t n, float *out, int64_t len);

/* Waveform perturbation for training, decided by seed alone (pass a seed made of the example and
 * the epoch): speed first (resampling by a factor uniform in [speed_lo, speed_hi], so 1.1 is 10%
 * faster and higher, as sox's speed effect), then white noise at an SNR uniform in
 * [snr_lo_db, snr_hi_db] relative to the clip's power (a silent clip gets no noise). speed_lo ==
 * speed_hi == 1: no speed change; snr_lo_db > snr_hi_db: no noise. Returns a malloc'd array of
 * *n_out samples or NULL with a message in err. */
typedef struct gf_audio_perturb_params {
    double speed_lo, speed_hi; /* e.g. 0.9, 1.1; both in (0.25, 4] */
    double snr_lo_db, snr_hi_db; /* e.g. 10, 30 */
} gf_audio_perturb_params;
float *gf_audio_perturb(const float *x, int64_t n, double rate, const gf_audio_perturb_params *p,
                        uint64_t seed, int64_t *n_out, char *err, size_t err_cap);

/* ---- log-mel features ------------------------------------------------------------------ */

/* torchaudio.transforms.MelSpectrogram's settings; the defaults are its defaults with
 * sample_rate 16000, n_fft 400, hop 160 and n_mels 40: a periodic Hann window of win_length
 * samples centred in n_fft, center=True with reflect padding, power 2, an HTK mel scale without
 * normalisation from f_min to f_max; then log(mel + log_offset). */
typedef struct gf_mel_params {
    int sample_rate;  /* 16000 */
    int n_fft;        /* 400; in [16, 65536] */
    int win_length;   /* 0: n_fft */
    int hop_length;   /* 160 */
    int n_mels;       /* 40 */
    float f_min;      /* 0 */
    float f_max;      /* 0: sample_rate / 2 */
    float log_offset; /* 1e-6; < 0: no log (the power mel spectrogram) */
} gf_mel_params;

gf_mel_params gf_mel_default_params(void);

/* A feature extractor: the window, the filterbank and an FFTW plan made once. Creating a plan
 * touches FFTW's global planner, which is not thread safe: call gf_mel_new and gf_mel_free from
 * one thread at a time. gf_mel_compute may run on several threads at once on one extractor (it
 * executes the plan on its own buffers, which FFTW allows). */
typedef struct gf_mel gf_mel;

/* Returns a new extractor (gf_mel_free) or NULL with a context error naming the bad setting. */
gf_mel *gf_mel_new(gf_ctx *ctx, const gf_mel_params *params);
void gf_mel_free(gf_mel *mel);
int gf_mel_n_mels(const gf_mel *mel);
/* Frames for a clip of n samples: 1 + n / hop_length (center=True). */
int64_t gf_mel_frames(const gf_mel *mel, int64_t n);
/* Features of x[0..n) into out [n_mels, frames] (row-major). n must exceed n_fft / 2 (reflect
 * padding needs it, as in PyTorch). GF_OK, or a status with a message in err. */
gf_status gf_mel_compute(const gf_mel *mel, const float *x, int64_t n, float *out, char *err,
                         size_t err_cap);

/* ---- folders of audio files ----------------------------------------------------------- */

typedef struct gf_audio_folder_params {
    gf_audio_params audio;  /* rate and limits of each file (default gf_audio_default_params) */
    double clip_seconds;    /* every clip centre-cropped or zero-padded to this (default 1.0) */
    gf_mel_params mel;      /* the features (default gf_mel_default_params; its sample_rate is
                             * set to audio.sample_rate) */
    int64_t max_bytes;      /* refuse a folder whose features would take more (default 2 GiB) */
    bool follow_links;      /* as gf_images_params.follow_links */
    int n_threads;          /* decoding threads; 0: the context's count */
    bool waveform;          /* samples [1, clip samples]: the fitted waveform itself in [-1, 1],
                             * no features (mel is not used); for models with their own front
                             * end (graft/speech.h) */
} gf_audio_folder_params;

gf_audio_folder_params gf_audio_folder_default_params(void);

/* Every .wav .flac .ogg file (any case) under root/<class>/, walked as gf_images_load_folder
 * walks images (classes sorted by name, symbolic links and duplicates handled and reported the
 * same way), decoded eagerly to log-mel features: a new dataset (gf_ds_free) of float32 samples
 * [1, n_mels, frames] with frames = 1 + clip samples / hop_length ([1, 40, 101] by default), or
 * [1, clip samples] with params->waveform, or
 * NULL with a context error naming the file that failed. gf_images_path gives each example's
 * file. report (may be NULL) gets what the walk left out. */
gf_ds *gf_audio_load_folder(gf_ctx *ctx, const char *root, const gf_audio_folder_params *params,
                            gf_images_report *report);

#ifdef __cplusplus
}
#endif
#endif
