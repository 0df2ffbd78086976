/* Folders of audio files as datasets of log-mel features (gf_audio_load_folder in
 * include/graft/audio.h): the image folders' walk with audio suffixes, then every file decoded,
 * fitted to one clip length and turned into [1, n_mels, frames] floats (or kept as the
 * waveform [1, samples]), in parallel. */
#define _POSIX_C_SOURCE 200809L
#include "core/internal.h"
#include "data/ds_internal.h"
#include "data/images_internal.h"
#include "graft/audio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const audio_exts[] = {".wav", ".flac", ".ogg", NULL};

gf_audio_folder_params gf_audio_folder_default_params(void) {
    gf_audio_folder_params p;
    memset(&p, 0, sizeof p);
    p.audio = gf_audio_default_params();
    p.clip_seconds = 1.0;
    p.mel = gf_mel_default_params();
    p.max_bytes = (int64_t)2 << 30;
    return p;
}

/* One file to features out[0..n_mels * frames); false with a message in err. */
static bool one_file(const char *path, const gf_audio_folder_params *p, const gf_mel *mel,
                     int64_t clip, float *wave, float *out, char *err, size_t cap) {
    int64_t n = 0;
    float *x = gf_audio_read_raw(path, &p->audio, &n, err, cap);
    if (!x) return false;
    gf_audio_fit(x, n, mel ? wave : out, clip); /* no extractor: the waveform is the sample */
    free(x);
    if (!mel) return true;
    char e2[256];
    if (gf_mel_compute(mel, wave, clip, out, e2, sizeof e2) != GF_OK) {
        snprintf(err, cap, "audio %s: %s", path, e2);
        return false;
    }
    return true;
}

/* Features of every file into feats (per floats each); the first failure by index goes to ctx. */
static gf_status decode_all(gf_ctx *ctx, const gf_img_tree *t, const gf_audio_folder_params *p,
                            const gf_mel *mel, int64_t clip, int64_t per, float *feats) {
    const int64_t n = t->n_files;
    char **errs = calloc((size_t)n, sizeof *errs);
    if (!errs) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "audio: out of memory");
    const int nt = p->n_threads > 0 ? p->n_threads : gf_ctx_threads(ctx);
    bool oom = false;
#pragma omp parallel num_threads(nt)
    {
        float *wave = malloc(sizeof(float) * (size_t)clip);
#pragma omp for schedule(dynamic, 4)
        for (int64_t i = 0; i < n; i++) {
            char err[1024];
            if (!wave) snprintf(err, sizeof err, "audio: out of memory for a clip");
            if (!wave || !one_file(t->files[i], p, mel, clip, wave, feats + i * per, err,
                                   sizeof err)) {
                errs[i] = gf_ds_strdup(err);
                if (!errs[i]) {
#pragma omp atomic write
                    oom = true;
                }
            }
        }
        free(wave);
    }
    gf_status s = oom ? gf_ctx_set_error(ctx, GF_ERR_NOMEM, "audio: out of memory") : GF_OK;
    for (int64_t i = 0; i < n && s == GF_OK; i++)
        if (errs[i])
            s = gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s (example %lld)", errs[i], (long long)i);
    for (int64_t i = 0; i < n; i++) free(errs[i]);
    free(errs);
    return s;
}

/* The dataset around features, labels and paths (taken). */
static gf_ds *make_ds(gf_ctx *ctx, const char *root, const gf_img_tree *t, const int64_t *shape,
                      float *feats, int64_t *labels, char *pool, int64_t *off, int ndim) {
    char **cn = malloc((size_t)t->n_classes * sizeof *cn);
    char desc[300];
    const char *b = strrchr(root, '/');
    snprintf(desc, sizeof desc, "audio %s", b ? b + 1 : root);
    for (int64_t k = 0; cn && k < t->n_classes; k++) cn[k] = strrchr(t->classes[k], '/') + 1;
    const int64_t wave_shape[2] = {1, shape[2]}; /* [1, samples] */
    gf_ds *ds = cn ? gf_ds_alloc(ctx, GF_DS_ARRAY, t->n_files, ndim, ndim == 3 ? shape : wave_shape,
                                 (int)t->n_classes,
                                 (const char *const *)cn, desc)
                   : NULL;
    if (!cn) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "audio: out of memory");
    free(cn);
    if (!ds) {
        free(feats), free(labels), free(pool), free(off);
        return NULL;
    }
    ds->owned[0] = feats;
    ds->x_f32 = feats;
    ds->owned[1] = labels;
    ds->labels = labels;
    ds->owned[2] = pool;
    ds->paths = pool;
    ds->owned[3] = off;
    ds->path_off = off;
    return ds;
}

/* Paths back to back and labels, for make_ds. */
static bool pack(const gf_img_tree *t, char **pool, int64_t **off, int64_t **labels) {
    size_t len = 0;
    for (int64_t i = 0; i < t->n_files; i++) len += strlen(t->files[i]) + 1;
    *pool = malloc(len);
    *off = malloc((size_t)t->n_files * sizeof **off);
    *labels = malloc((size_t)t->n_files * sizeof **labels);
    if (!*pool || !*off || !*labels) return false;
    for (int64_t k = 0; k < t->n_classes; k++)
        for (int64_t i = t->starts[k]; i < t->starts[k + 1]; i++) (*labels)[i] = k;
    size_t at = 0;
    for (int64_t i = 0; i < t->n_files; i++) {
        const size_t l = strlen(t->files[i]) + 1;
        memcpy(*pool + at, t->files[i], l);
        (*off)[i] = (int64_t)at;
        at += l;
    }
    return true;
}

static gf_ds *load(gf_ctx *ctx, const char *root, const gf_audio_folder_params *p,
                   const gf_mel *mel, gf_img_tree *t) {
    const int64_t clip = (int64_t)llround(p->clip_seconds * p->audio.sample_rate);
    const int bands = mel ? gf_mel_n_mels(mel) : 1;
    const int64_t frames = mel ? gf_mel_frames(mel, clip) : clip, per = frames * bands;
    if (per > 0 && (double)per * 4.0 * (double)t->n_files > (double)p->max_bytes) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "audio %s: %lld clips of [1, %d, %lld] features take "
                         "%.0f MB, more than max_bytes %lld", root, (long long)t->n_files,
                         bands, (long long)frames,
                         (double)per * 4.0 * (double)t->n_files / 1e6, (long long)p->max_bytes);
        return NULL;
    }
    char *pool = NULL;
    int64_t *off = NULL, *labels = NULL;
    float *feats = malloc(sizeof(float) * (size_t)(per * t->n_files));
    if (!feats || !pack(t, &pool, &off, &labels)) {
        free(feats), free(pool), free(off), free(labels);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "audio %s: out of memory for %lld clips", root,
                         (long long)t->n_files);
        return NULL;
    }
    if (decode_all(ctx, t, p, mel, clip, per, feats) != GF_OK) {
        free(feats), free(pool), free(off), free(labels);
        return NULL;
    }
    const int64_t shape[3] = {1, bands, frames};
    return make_ds(ctx, root, t, shape, feats, labels, pool, off, mel ? 3 : 2);
}

gf_ds *gf_audio_load_folder(gf_ctx *ctx, const char *root, const gf_audio_folder_params *params,
                            gf_images_report *report) {
    gf_audio_folder_params p = params ? *params : gf_audio_folder_default_params();
    gf_images_report local;
    gf_images_report *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    if (!root) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "audio: NULL root folder");
        return NULL;
    }
    p.mel.sample_rate = p.audio.sample_rate;
    const double clip = p.clip_seconds * p.audio.sample_rate;
    if (!(p.clip_seconds > 0) || p.clip_seconds > p.audio.max_seconds || p.max_bytes <= 0 ||
        clip <= p.mel.n_fft / 2) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "audio %s: clip_seconds %g must be in (0, "
                         "max_seconds %g] and longer than n_fft / 2 samples, max_bytes %lld > 0",
                         root, p.clip_seconds, p.audio.max_seconds, (long long)p.max_bytes);
        return NULL;
    }
    gf_mel *mel = p.waveform ? NULL : gf_mel_new(ctx, &p.mel);
    if (!mel && !p.waveform) return NULL;
    char *rc = gf_ds_strdup(root);
    gf_ds *ds = NULL;
    if (!rc) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "audio: out of memory");
    } else {
        for (size_t l = strlen(rc); l > 1 && rc[l - 1] == '/'; l--) rc[l - 1] = '\0';
        gf_img_tree t;
        if (gf_img_walk_ext(ctx, rc, p.follow_links, audio_exts, &t, rep) == GF_OK)
            ds = load(ctx, rc, &p, mel, &t);
        gf_img_tree_free(&t);
    }
    free(rc);
    gf_mel_free(mel);
    return ds;
}
