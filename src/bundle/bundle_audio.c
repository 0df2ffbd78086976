/* A bundle of a model trained on audio: its front end as graft.audio, audio files read as the
 * training clips were, and keyword spotting with its model (include/graft/bundle.h). */
#define _POSIX_C_SOURCE 200809L
#include "bundle/bundle_internal.h"
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *gf_bundle_audio_to_json(const gf_audio_frontend *fe) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const gf_mel_params *m = &fe->mel;
    cJSON_AddNumberToObject(o, "sample_rate", fe->sample_rate);
    cJSON_AddNumberToObject(o, "clip_seconds", fe->clip_seconds);
    cJSON_AddNumberToObject(o, "n_fft", m->n_fft);
    cJSON_AddNumberToObject(o, "win_length", m->win_length ? m->win_length : m->n_fft);
    cJSON_AddNumberToObject(o, "hop_length", m->hop_length);
    cJSON_AddNumberToObject(o, "n_mels", m->n_mels);
    cJSON_AddNumberToObject(o, "f_min", m->f_min);
    cJSON_AddNumberToObject(o, "f_max", m->f_max > 0 ? m->f_max : fe->sample_rate / 2.0);
    cJSON_AddNumberToObject(o, "log_offset", m->log_offset);
    cJSON_AddStringToObject(o, "align", gf_audio_align_name(fe->align));
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return t;
}

/* The number under key, when it is one in [lo, hi]. */
static bool number(const cJSON *j, const char *key, double lo, double hi, double *out) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(e) || !(e->valuedouble >= lo && e->valuedouble <= hi)) return false;
    *out = e->valuedouble;
    return true;
}

bool gf_bundle_audio_from_json(const cJSON *j, gf_audio_frontend *fe) {
    double v[9];
    if (!cJSON_IsObject(j) || !number(j, "sample_rate", 1000, 384000, &v[0]) ||
        !number(j, "clip_seconds", 1e-6, 600, &v[1]) || !number(j, "n_fft", 16, 65536, &v[2]) ||
        !number(j, "win_length", 1, 65536, &v[3]) || !number(j, "hop_length", 1, 65536, &v[4]) ||
        !number(j, "n_mels", 1, 1024, &v[5]) || !number(j, "f_min", 0, 192000, &v[6]) ||
        !number(j, "f_max", 0, 192000, &v[7]) || !number(j, "log_offset", -1e30, 1e30, &v[8]))
        return false;
    for (int i = 0; i < 6; i++)
        if (i != 1 && v[i] != floor(v[i])) return false;
    gf_audio_frontend f = gf_audio_frontend_default();
    /* written since clips could be aligned on their energy: absent, the file's middle */
    const cJSON *align = cJSON_GetObjectItemCaseSensitive(j, "align");
    if (align &&
        (!cJSON_IsString(align) || gf_audio_align_parse(align->valuestring, &f.align) != 0))
        return false;
    f.sample_rate = (int)v[0];
    f.clip_seconds = v[1];
    f.mel = (gf_mel_params){(int)v[0], (int)v[2], (int)v[3], (int)v[4], (int)v[5], (float)v[6],
                            (float)v[7], (float)v[8]};
    if (gf_audio_frontend_check(NULL, &f, NULL) != GF_OK) return false;
    *fe = f;
    return true;
}

bool gf_bundle_is_audio_file(const char *path) {
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (!dot || strchr(dot, '/')) return false;
    return strcasecmp(dot, ".wav") == 0 || strcasecmp(dot, ".flac") == 0 ||
           strcasecmp(dot, ".ogg") == 0;
}

/* The model takes the front end's features [1, n_mels, frames]: GF_OK, or an error. */
static gf_status check_audio_model(gf_ctx *ctx, const gf_bundle *b, const char *path,
                                   int64_t frames) {
    const gf_bundle_info *m = &b->info;
    if (!m->has_audio)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s is audio but the model records no audio "
                                "front end (graft.audio: written when a model is trained on "
                                "audio: data); its samples are not known to be log-mel features",
                                path);
    if (m->in_ndim != 3 || m->in_shape[0] != 1 || m->in_shape[1] != m->audio.mel.n_mels ||
        m->in_shape[2] != frames) {
        char sh[64];
        gf_dims_str(m->in_ndim, m->in_shape, sh, sizeof sh);
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "bundle: graft.audio gives features [1, %d, "
                                "%lld], graft.input is %s", m->audio.mel.n_mels,
                                (long long)frames, sh);
    }
    return GF_OK;
}

/* The model takes the clip's samples [1, clip] (a speech embedding with its own front end),
 * not log-mel features. */
static bool takes_waveform(const gf_bundle_info *m) {
    return m->has_audio && m->in_ndim == 2 && m->in_shape[0] == 1 &&
           m->in_shape[1] == gf_audio_frontend_clip(&m->audio);
}

/* [1, 1, clip]: the file read at the front end's rate and fitted as the training clips were. */
static gf_tensor *read_waveform(gf_ctx *ctx, const gf_bundle *b, const char *path) {
    const gf_audio_frontend *fe = &b->info.audio;
    gf_audio_params ap = gf_audio_default_params();
    ap.sample_rate = fe->sample_rate;
    int64_t n = 0;
    float *wave = gf_audio_read(ctx, path, &ap, &n);
    const int64_t shape[3] = {1, 1, gf_audio_frontend_clip(fe)};
    gf_tensor *x = wave ? gf_tensor_new(ctx, GF_F32, 3, shape) : NULL;
    if (x) gf_audio_fit_aligned(wave, n, gf_f32(x), shape[2], fe->align);
    if (x && gf_bundle_normalize(ctx, &b->info, gf_f32(x), 1) != GF_OK) {
        gf_tensor_free(x);
        x = NULL;
    }
    free(wave);
    return x;
}

gf_tensor *gf_bundle_read_audio(gf_ctx *ctx, const gf_bundle *b, const char *path) {
    if (!b || !path) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_bundle_read_audio: no bundle or path");
        return NULL;
    }
    const gf_audio_frontend *fe = &b->info.audio;
    if (!b->info.has_audio) {
        check_audio_model(ctx, b, path, 0);
        return NULL;
    }
    if (takes_waveform(&b->info)) return read_waveform(ctx, b, path);
    gf_mel *mel = gf_mel_new(ctx, &fe->mel);
    if (!mel) return NULL;
    const int64_t frames = gf_mel_frames(mel, gf_audio_frontend_clip(fe));
    gf_tensor *x = NULL;
    gf_audio_params ap = gf_audio_default_params();
    ap.sample_rate = fe->sample_rate;
    int64_t n = 0;
    float *wave = check_audio_model(ctx, b, path, frames) == GF_OK
                      ? gf_audio_read(ctx, path, &ap, &n) : NULL;
    const int64_t shape[4] = {1, 1, fe->mel.n_mels, frames};
    if (wave && (x = gf_tensor_new(ctx, GF_F32, 4, shape))) {
        char err[512];
        gf_status st = gf_audio_frontend_features(fe, mel, wave, n, gf_f32(x), err, sizeof err);
        if (st != GF_OK) gf_ctx_set_error(ctx, st, "audio %s: %s", path, err);
        if (st != GF_OK || gf_bundle_normalize(ctx, &b->info, gf_f32(x), 1) != GF_OK) {
            gf_tensor_free(x);
            x = NULL;
        }
    }
    free(wave);
    gf_mel_free(mel);
    return x;
}

/* ---- streaming ------------------------------------------------------------------------------ */

typedef struct bundle_cls {
    gf_bundle *b;
    gf_ctx *ctx;    /* the model's own: its arena is reset after every window */
    int64_t per;    /* features of a window */
} bundle_cls;

static gf_status bundle_classify(void *user, const float *features, float *probs, char *err,
                                 size_t err_cap) {
    bundle_cls *c = user;
    const gf_bundle_info *m = &c->b->info;
    int64_t shape[GF_MAX_DIMS] = {1};
    for (int i = 0; i < m->in_ndim && i + 1 < GF_MAX_DIMS; i++) shape[i + 1] = m->in_shape[i];
    gf_tensor *x = gf_empty(c->ctx, GF_F32, 1 + m->in_ndim, shape);
    if (x) memcpy(x->data, features, sizeof(float) * (size_t)c->per);
    gf_tensor *p = x && gf_bundle_normalize(c->ctx, m, gf_f32(x), 1) == GF_OK
                       ? gf_bundle_predict(c->ctx, c->b, x) : NULL;
    if (p) gf_copy_out(p, probs);
    gf_status st = p ? GF_OK : gf_ctx_status(c->ctx) != GF_OK ? gf_ctx_status(c->ctx) : GF_ERR_NOMEM;
    if (!p && err && err_cap) snprintf(err, err_cap, "%s", gf_ctx_error(c->ctx));
    gf_ctx_reset(c->ctx);
    gf_ctx_clear_error(c->ctx);
    return st;
}

static void bundle_cls_free(void *user) {
    bundle_cls *c = user;
    if (!c) return;
    gf_ctx_free(c->ctx);
    free(c);
}

gf_audio_stream *gf_bundle_audio_stream(gf_ctx *ctx, gf_bundle *b,
                                        const gf_audio_stream_params *params) {
    if (!b || !b->model) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_bundle_audio_stream: no bundle or model");
        return NULL;
    }
    const gf_audio_frontend *fe = &b->info.audio;
    const int64_t frames = 1 + gf_audio_frontend_clip(fe) / (fe->mel.hop_length > 0 ? fe->mel.hop_length : 1);
    const bool wave = takes_waveform(&b->info);
    if (!wave && check_audio_model(ctx, b, "the stream", frames) != GF_OK) return NULL;
    if (b->info.n_classes < 1 || b->info.regression) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_bundle_audio_stream: the model has no classes");
        return NULL;
    }
    bundle_cls *c = calloc(1, sizeof *c);
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = gf_ctx_threads(ctx);
    cp.limits = *gf_ctx_limits(ctx);
    if (c) c->ctx = gf_ctx_new(&cp);
    if (!c || !c->ctx) {
        bundle_cls_free(c);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_bundle_audio_stream: out of memory");
        return NULL;
    }
    c->b = b;
    c->per = wave ? gf_audio_frontend_clip(fe) : (int64_t)fe->mel.n_mels * frames;
    const gf_audio_classifier cls = {bundle_classify, bundle_cls_free, c};
    gf_audio_stream_params sp = params ? *params : gf_audio_stream_default_params();
    sp.waveform = wave;
    return gf_audio_stream_new(ctx, fe, b->info.n_classes, &sp, &cls);
}
