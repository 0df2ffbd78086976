/* Folders of audio files as datasets of log-mel features (gf_audio_load_folder in
 * include/graft/audio.h): the image folders' walk with audio suffixes, then every file decoded,
 * fitted to one clip length and turned into [1, n_mels, frames] floats (or kept as the
 * waveform [1, samples]), in parallel. */
#define _POSIX_C_SOURCE 200809L
#include "core/internal.h"
#include "data/ds_internal.h"
#include "data/images_internal.h"
#include "data/audio_internal.h"
#include "graft/audio.h"

#include <math.h>
#include <stdatomic.h>
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
    /* no extractor: the waveform is the sample */
    gf_audio_fit_aligned(x, n, mel ? wave : out, clip, p->align);
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

gf_status gf_audio_list(gf_ctx *ctx, const char *root, bool follow_links, char ***paths,
                        int64_t *n, gf_images_report *report) {
    return gf_img_list_ext(ctx, root, follow_links, audio_exts, paths, n, report);
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

/* ---- training examples perturbed at every read ---------------------------------------------- */

typedef struct aug_src {
    gf_audio_frontend fe;
    gf_audio_perturb_params p;
    uint64_t seed;
    gf_mel *mel;
    int64_t n, clip, per;   /* examples, samples of a clip, features of an example */
    float *waves;           /* [n, clip] */
    int64_t *labels, *index; /* [n]: the label, the example's index in its folder */
    _Atomic int64_t *reads; /* [n]: reads so far */
} aug_src;

static uint64_t splitmix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static gf_status aug_read(void *user, const int64_t *idx, int64_t n, int64_t epoch, float *x,
                          void *y, char *err, size_t err_cap) {
    aug_src *s = user;
    for (int64_t k = 0; k < n; k++) {
        const int64_t i = idx[k];
        if (y) ((int64_t *)y)[k] = s->labels[i];
        if (!x) continue;
        /* the loader's epoch when known (the same draws in every process); else this
         * example's read count, which is the epoch when one loader reads it once per epoch */
        const int64_t reads = atomic_fetch_add(&s->reads[i], 1);
        const int64_t e = epoch >= 0 ? epoch : reads;
        const uint64_t seed = splitmix(splitmix(s->seed ^ (uint64_t)s->index[i]) + (uint64_t)e);
        int64_t m = 0;
        float *w = gf_audio_perturb(s->waves + i * s->clip, s->clip, s->fe.sample_rate, &s->p, seed,
                                    &m, err, err_cap);
        if (!w) return GF_ERR_NOMEM;
        gf_status st = GF_OK;
        if (s->mel) /* features, as the clean clips' */
            st = gf_audio_frontend_features(&s->fe, s->mel, w, m, x + k * s->per, err, err_cap);
        else /* the waveform itself, back to the clip length (speed changes it) */
            gf_audio_fit_aligned(w, m, x + k * s->per, s->clip, s->fe.align);
        free(w);
        if (st != GF_OK) return st;
    }
    return GF_OK;
}

static int64_t aug_label(void *user, int64_t i) { return ((const aug_src *)user)->labels[i]; }

static void aug_free(void *user) {
    aug_src *s = user;
    if (!s) return;
    gf_mel_free(s->mel);
    free(s->waves), free(s->labels), free(s->index), free(s->reads);
    free(s);
}

/* Every example's clip into s->waves (in parallel); the first failure by index goes to ctx. */
static gf_status aug_decode(gf_ctx *ctx, aug_src *s, const gf_ds *part, int n_threads) {
    gf_audio_params ap = gf_audio_default_params();
    ap.sample_rate = s->fe.sample_rate;
    int64_t bad = -1;
    char first[1024] = "";
    const int nt = n_threads > 0 ? n_threads : gf_ctx_threads(ctx);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
    for (int64_t i = 0; i < s->n; i++) {
        char err[1024];
        const char *path = gf_images_path(part, i);
        int64_t m = 0;
        float *x = path ? gf_audio_read_raw(path, &ap, &m, err, sizeof err) : NULL;
        if (x)
            gf_audio_fit_aligned(x, m, s->waves + i * s->clip, s->clip, s->fe.align);
        free(x);
        if (!x) {
#pragma omp critical(aug_decode)
            if (bad < 0 || i < bad) {
                bad = i;
                snprintf(first, sizeof first, "%s", path ? err : "audio: an example without a file");
            }
        }
    }
    if (bad >= 0) return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s (example %lld)", first, (long long)bad);
    return GF_OK;
}

gf_status gf_audio_augment_part(gf_ctx *ctx, gf_ds **part, const gf_audio_frontend *fe,
                                const gf_audio_perturb_params *p, uint64_t seed, int n_threads,
                                bool waveform) {
    if (!part || !*part) return GF_OK;
    const gf_ds *d = *part;
    aug_src *s = calloc(1, sizeof *s);
    const int64_t n = gf_ds_count(d);
    if (s) {
        s->fe = *fe, s->p = *p, s->seed = seed, s->n = n;
        s->clip = gf_audio_frontend_clip(fe);
        s->per = gf_ds_sample_numel(d);
        s->waves = malloc(sizeof(float) * (size_t)(s->clip * (n ? n : 1)));
        s->labels = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        s->index = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        s->reads = calloc((size_t)(n ? n : 1), sizeof *s->reads);
    }
    if (!s || !s->waves || !s->labels || !s->index || !s->reads) {
        aug_free(s);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "audio: out of memory for %lld training clips",
                                (long long)n);
    }
    for (int64_t i = 0; i < n; i++) {
        s->labels[i] = gf_ds_label(d, i);
        s->index[i] = gf_ds_source_index(d, i);
    }
    if (waveform && s->per != s->clip) {
        aug_free(s);
        return gf_ctx_set_error(ctx, GF_ERR_STATE, "audio: waveform samples of %lld values for "
                                "clips of %lld samples", (long long)gf_ds_sample_numel(d),
                                (long long)gf_audio_frontend_clip(fe));
    }
    if ((!waveform && !(s->mel = gf_mel_new(ctx, &fe->mel))) ||
        aug_decode(ctx, s, d, n_threads) != GF_OK) {
        aug_free(s);
        return gf_ctx_status(ctx);
    }
    const int nc = gf_ds_n_classes(d);
    const char **names = malloc(sizeof *names * (size_t)(nc ? nc : 1));
    if (!names) {
        aug_free(s);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "audio: out of memory");
    }
    for (int k = 0; k < nc; k++) names[k] = gf_ds_class_name(d, k);
    const gf_ds_source src = {NULL, aug_label, aug_free, aug_read};
    gf_ds *v = gf_ds_from_source(ctx, &src, s, n, gf_ds_ndim(d), gf_ds_shape(d), nc, names,
                                 "audio (perturbed every epoch)");
    free(names);
    if (!v) return gf_ctx_status(ctx);
    gf_ds_free(*part);
    *part = v;
    return GF_OK;
}
