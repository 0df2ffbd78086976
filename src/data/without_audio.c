/* The audio API in a build without libsndfile, libsamplerate or FFTW (GRAFT_WITH_AUDIO off or
 * the libraries missing): every call fails with a message saying what to install, so programs
 * and the graft tool link and explain themselves. */
#include "core/internal.h"
#include "data/audio_internal.h"
#include "graft/audio.h"

#include <stdio.h>
#include <string.h>

#define MISSING "this graft was built without audio support (install libsndfile1-dev, " \
                "libsamplerate0-dev and libfftw3-dev, then rebuild)"

bool gf_audio_available(void) { return false; }

gf_audio_params gf_audio_default_params(void) {
    gf_audio_params p = {16000, 600.0, 64};
    return p;
}

float *gf_audio_read(gf_ctx *ctx, const char *path, const gf_audio_params *params, int64_t *n) {
    (void)params;
    if (n) *n = 0;
    gf_ctx_set_error(ctx, GF_ERR_INVALID, "audio %s: %s", path ? path : "", MISSING);
    return NULL;
}

float *gf_audio_read_memory(gf_ctx *ctx, const void *data, size_t size, const char *name,
                            const gf_audio_params *params, int64_t *n) {
    (void)data, (void)size, (void)params;
    if (n) *n = 0;
    gf_ctx_set_error(ctx, GF_ERR_INVALID, "audio %s: %s", name ? name : "", MISSING);
    return NULL;
}

float *gf_audio_read_raw(const char *path, const gf_audio_params *params, int64_t *n, char *err,
                         size_t err_cap) {
    (void)params;
    if (n) *n = 0;
    if (err && err_cap) snprintf(err, err_cap, "audio %s: %s", path ? path : "", MISSING);
    return NULL;
}

float *gf_audio_resample(const float *x, int64_t n, double in_rate, double out_rate,
                         int64_t *n_out, char *err, size_t err_cap) {
    (void)x, (void)n, (void)in_rate, (void)out_rate, (void)n_out;
    if (err && err_cap) snprintf(err, err_cap, "audio resample: %s", MISSING);
    return NULL;
}

void gf_audio_fit(const float *x, int64_t n, float *out, int64_t len) {
    if (n >= len) {
        memcpy(out, x + (n - len) / 2, sizeof(float) * (size_t)len);
        return;
    }
    memset(out, 0, sizeof(float) * (size_t)len);
    memcpy(out + (len - n) / 2, x, sizeof(float) * (size_t)n);
}

float *gf_audio_perturb(const float *x, int64_t n, double rate, const gf_audio_perturb_params *p,
                        uint64_t seed, int64_t *n_out, char *err, size_t err_cap) {
    (void)x, (void)n, (void)rate, (void)p, (void)seed, (void)n_out;
    if (err && err_cap) snprintf(err, err_cap, "audio perturb: %s", MISSING);
    return NULL;
}

gf_audio_perturb_params gf_audio_perturb_default_params(bool noise, bool speed, bool shift) {
    gf_audio_perturb_params p = {1, 1, 1, 0, 0};
    if (speed) p.speed_lo = 0.9, p.speed_hi = 1.1;
    if (noise) p.snr_lo_db = 10, p.snr_hi_db = 30;
    if (shift) p.shift_s = 0.1;
    return p;
}

gf_mel_params gf_mel_default_params(void) {
    gf_mel_params p = {16000, 400, 0, 160, 40, 0.0f, 0.0f, 1e-6f};
    return p;
}

gf_mel *gf_mel_new(gf_ctx *ctx, const gf_mel_params *params) {
    (void)params;
    gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_mel_new: %s", MISSING);
    return NULL;
}

void gf_mel_free(gf_mel *mel) { (void)mel; }
int gf_mel_n_mels(const gf_mel *mel) { (void)mel; return 0; }
int64_t gf_mel_frames(const gf_mel *mel, int64_t n) { (void)mel, (void)n; return 0; }

gf_status gf_mel_compute(const gf_mel *mel, const float *x, int64_t n, float *out, char *err,
                         size_t err_cap) {
    (void)mel, (void)x, (void)n, (void)out;
    if (err && err_cap) snprintf(err, err_cap, "mel: %s", MISSING);
    return GF_ERR_INVALID;
}

gf_audio_folder_params gf_audio_folder_default_params(void) {
    gf_audio_folder_params p;
    memset(&p, 0, sizeof p);
    p.audio = gf_audio_default_params();
    p.clip_seconds = 1.0;
    p.mel = gf_mel_default_params();
    p.max_bytes = (int64_t)2 << 30;
    return p;
}

gf_ds *gf_audio_load_folder(gf_ctx *ctx, const char *root, const gf_audio_folder_params *params,
                            gf_images_report *report) {
    (void)params;
    if (report) memset(report, 0, sizeof *report);
    gf_ctx_set_error(ctx, GF_ERR_INVALID, "audio %s: %s", root ? root : "", MISSING);
    return NULL;
}

gf_status gf_audio_augment_part(gf_ctx *ctx, gf_ds **part, const gf_audio_frontend *fe,
                                const gf_audio_perturb_params *p, uint64_t seed, int n_threads) {
    (void)part, (void)fe, (void)p, (void)seed, (void)n_threads;
    return gf_ctx_set_error(ctx, GF_ERR_INVALID, "audio augmentation: %s", MISSING);
}

gf_status gf_audio_list(gf_ctx *ctx, const char *root, bool follow_links, char ***paths,
                        int64_t *n, gf_images_report *report) {
    (void)follow_links;
    if (paths) *paths = NULL;
    if (n) *n = 0;
    if (report) memset(report, 0, sizeof *report);
    return gf_ctx_set_error(ctx, GF_ERR_INVALID, "audio %s: %s", root ? root : "", MISSING);
}
