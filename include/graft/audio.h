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

/* Where a clip is cut from a file (or a file placed in a longer clip). */
typedef enum gf_audio_align {
    GF_AUDIO_ALIGN_MIDDLE = 0, /* the file's middle at the clip's middle (gf_audio_fit) */
    GF_AUDIO_ALIGN_ENERGY = 1  /* the file's centre of energy (the mean sample index weighted by
                                * the squared samples) at the clip's middle: a word is centred
                                * whatever silence the file has before or after it */
} gf_audio_align;

/* gf_audio_fit with the alignment: x[0..n) into out[0..len), zeros where x does not reach. A
 * silent file is aligned on its middle. */
void gf_audio_fit_aligned(const float *x, int64_t n, float *out, int64_t len, gf_audio_align align);
/* "middle" or "energy". */
const char *gf_audio_align_name(gf_audio_align align);
/* The alignment named (as gf_audio_align_name writes it): 0 and *out set, or -1. */
int gf_audio_align_parse(const char *name, gf_audio_align *out);

/* Waveform perturbation for training, decided by seed alone (pass a seed made of the example and
 * the epoch): speed first (resampling by a factor uniform in [speed_lo, speed_hi], so 1.1 is 10%
 * faster and higher, as sox's speed effect), then a time shift by a whole number of samples
 * uniform in [-shift_s, shift_s] seconds (later is positive; zeros come in, samples shifted out
 * are lost; the length is kept), then white noise at an SNR uniform in [snr_lo_db, snr_hi_db]
 * relative to the clip's power (a silent clip gets no noise). speed_lo == speed_hi == 1: no
 * speed change; shift_s 0: no shift; snr_lo_db > snr_hi_db: no noise. Returns a malloc'd array
 * of *n_out samples or NULL with a message in err. */
typedef struct gf_audio_perturb_params {
    double speed_lo, speed_hi; /* e.g. 0.9, 1.1; both in (0.25, 4] */
    double snr_lo_db, snr_hi_db; /* e.g. 10, 30 */
    double shift_s;            /* e.g. 0.1; in [0, 60] */
} gf_audio_perturb_params;
/* The perturbation `--augment noise,speed,shift` applies: speed 0.9 to 1.1, shift up to 0.1 s,
 * noise at 10 to 30 dB SNR; each part only when its name is set. */
gf_audio_perturb_params gf_audio_perturb_default_params(bool noise, bool speed, bool shift);
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

/* ---- the front end: what a model's features depend on ---------------------------------- */

/* How a file becomes a model's input: read at sample_rate (gf_audio_read), cropped or
 * zero-padded to clip_seconds about its middle or its centre of energy (gf_audio_fit_aligned), then log-mel features with mel (whose sample_rate
 * equals sample_rate) into [1, mel.n_mels, 1 + clip samples / hop]. A model trained on audio:
 * data records it (graft.audio) so prediction computes the same features. */
typedef struct gf_audio_frontend {
    int sample_rate;     /* Hz, in [1000, 384000] */
    double clip_seconds; /* in (0, 600] */
    gf_mel_params mel;
    gf_audio_align align; /* how a file is fitted to the clip (default middle) */
} gf_audio_frontend;

/* 16 kHz, 1 s clips, gf_mel_default_params (40 mels, n_fft 400, hop 160). */
gf_audio_frontend gf_audio_frontend_default(void);
/* Samples of one clip: round(clip_seconds * sample_rate). */
int64_t gf_audio_frontend_clip(const gf_audio_frontend *fe);
/* GF_OK, or GF_ERR_INVALID naming what (in `what`, e.g. a file's name) is out of range: the
 * rate, the clip length (longer than n_fft / 2 samples), the mel settings. */
gf_status gf_audio_frontend_check(gf_ctx *ctx, const gf_audio_frontend *fe, const char *what);
/* One clip of samples x[0..n) at fe->sample_rate to features out [n_mels, frames] as
 * training computed them: fitted to the clip length (gf_audio_fit_aligned with fe->align), then
 * mel (made from fe).
 * GF_OK or a status with a message in err. */
gf_status gf_audio_frontend_features(const gf_audio_frontend *fe, const gf_mel *mel,
                                     const float *x, int64_t n, float *out, char *err,
                                     size_t err_cap);

/* ---- streaming: keyword spotting over a long recording ------------------------------------ */

/* The classifier the stream runs on every window: classify turns features [n_mels, frames] (as
 * gf_audio_frontend_features gives them; the clip's samples with gf_audio_stream_params.waveform)
 * into probs[0..n_classes), GF_OK or a status with a message in err. */
typedef struct gf_audio_classifier {
    gf_status (*classify)(void *user, const float *features, float *probs, char *err,
                          size_t err_cap);
    void (*free)(void *user); /* optional: the stream releases user with it when it goes (also
                               * when gf_audio_stream_new fails) */
    void *user;
} gf_audio_classifier;

typedef struct gf_audio_stream_params {
    double window_s;  /* window length in seconds; 0: the front end's clip length */
    double hop_s;     /* step between window starts (default 0.1 s) */
    float threshold;  /* a window detects its most likely class when its probability is at
                       * least this (default 0.5) */
    int background;   /* a class that means "no word" (silence, noise), never detected; -1:
                       * none (default) */
    bool waveform;    /* the classifier gets each window fitted to the clip (clip samples),
                       * not log-mel features: for models with their own front end
                       * (graft/speech.h) */
} gf_audio_stream_params;

gf_audio_stream_params gf_audio_stream_default_params(void);

/* One word heard: the class; start and end, in seconds from the start of the recording, the
 * centres of the first and the last window that heard it (the word is about the middle); the
 * highest window probability; the windows. */
typedef struct gf_audio_detection {
    int cls;
    double start, end;
    float prob;
    int windows;
} gf_audio_detection;

/* Keyword spotting over samples fed as they arrive. Windows of window_s start every hop_s
 * (window k covers samples [k * hop, k * hop + window), hop = round(hop_s * rate)); each is
 * classified as soon as its last sample has been fed, through a buffer of one window. The
 * rule: a window whose top class is not the background class and has probability >= threshold
 * is active; consecutive active windows of one class make a candidate (from the centre of the
 * first window to the centre of the last, the highest probability); candidates less than three
 * hops apart (at most two windows between them; a quarter window when that is less) are
 * resolved by non-maximum suppression: the most probable is kept and those near it are dropped,
 * and so on (the earlier on a tie). So a word heard as two candidates (a window or two between
 * them below the threshold, or of another class) is kept once, and words with a little more
 * than that between the windows that hear them are kept apart. A whole window is fitted to the
 * clip about its middle whatever the front end's align (sliding the window is what finds the
 * word); a recording shorter than one window is classified once, fitted as training fitted
 * clips, align included (gf_audio_stream_finish). Feeding in chunks of any sizes gives the
 * same detections as feeding all at once. */
typedef struct gf_audio_stream gf_audio_stream;

/* A new stream (gf_audio_stream_free) for n_classes classes, or NULL with a context error
 * naming the bad setting. The classifier is called from the feeding thread. */
gf_audio_stream *gf_audio_stream_new(gf_ctx *ctx, const gf_audio_frontend *fe, int n_classes,
                                     const gf_audio_stream_params *params,
                                     const gf_audio_classifier *classifier);
/* Feeds n samples (mono, at the front end's rate) and classifies every window they complete.
 * GF_OK, or the classifier's status with its message in the context. */
gf_status gf_audio_stream_feed(gf_ctx *ctx, gf_audio_stream *s, const float *x, int64_t n);
/* Ends the recording: closes the detection in progress (and classifies a recording shorter
 * than one window). Feeding after it is an error. */
gf_status gf_audio_stream_finish(gf_ctx *ctx, gf_audio_stream *s);
/* The detections settled so far, in time order (borrowed, valid until the next call on s); *n
 * their count. A detection is settled, and never changes, once no later window can reach it;
 * gf_audio_stream_finish settles the rest. */
const gf_audio_detection *gf_audio_stream_detections(const gf_audio_stream *s, int64_t *n);
/* Windows classified so far. */
int64_t gf_audio_stream_windows(const gf_audio_stream *s);
void gf_audio_stream_free(gf_audio_stream *s);

/* ---- folders of audio files ----------------------------------------------------------- */

typedef struct gf_audio_folder_params {
    gf_audio_params audio;  /* rate and limits of each file (default gf_audio_default_params) */
    double clip_seconds;    /* every clip cropped or zero-padded to this (default 1.0), about
                             * the file's middle or its centre of energy (align) */
    gf_mel_params mel;      /* the features (default gf_mel_default_params; its sample_rate is
                             * set to audio.sample_rate) */
    int64_t max_bytes;      /* refuse a folder whose features would take more (default 2 GiB) */
    bool follow_links;      /* as gf_images_params.follow_links */
    int n_threads;          /* decoding threads; 0: the context's count */
    gf_audio_align align;   /* how each file is fitted to the clip (default middle) */
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
/* The audio files (.wav .flac .ogg, any case) under root, subfolders included, as
 * gf_images_list lists images (the same order, links and duplicates handled the same way):
 * *paths gets n malloc'd paths (free each, then the array). GF_OK, or an error naming root. */
gf_status gf_audio_list(gf_ctx *ctx, const char *root, bool follow_links, char ***paths,
                        int64_t *n, gf_images_report *report);

#ifdef __cplusplus
}
#endif
#endif
