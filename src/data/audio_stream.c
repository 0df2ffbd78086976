/* The audio front end (the features a model was trained on, include/graft/audio.h) and keyword
 * spotting over a stream: windows of the clip length slid over samples fed in chunks, each
 * classified, consecutive windows of one word merged into a detection. Needs only the mel
 * extractor, so it builds with or without the audio libraries (without them gf_mel_new fails
 * with its message). */
#define _POSIX_C_SOURCE 200809L
#include "graft/audio.h"
#include "core/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gf_audio_frontend gf_audio_frontend_default(void) {
    gf_audio_frontend fe;
    memset(&fe, 0, sizeof fe);
    fe.sample_rate = 16000;
    fe.clip_seconds = 1.0;
    fe.mel = gf_mel_default_params();
    return fe;
}

int64_t gf_audio_frontend_clip(const gf_audio_frontend *fe) {
    return (int64_t)llround(fe->clip_seconds * fe->sample_rate);
}

gf_status gf_audio_frontend_check(gf_ctx *ctx, const gf_audio_frontend *fe, const char *what) {
    what = what ? what : "audio front end";
    if (!fe) return ctx ? gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: NULL front end", what)
                        : GF_ERR_INVALID;
    const gf_mel_params *m = &fe->mel;
    const bool ok = fe->sample_rate >= 1000 && fe->sample_rate <= 384000 &&
                    fe->clip_seconds > 0 && fe->clip_seconds <= 600 &&
                    m->sample_rate == fe->sample_rate && m->n_fft >= 16 && m->n_fft <= 65536 &&
                    m->win_length >= 0 && m->win_length <= m->n_fft && m->hop_length >= 1 &&
                    m->hop_length <= 65536 && m->n_mels >= 1 && m->n_mels <= 1024 &&
                    m->f_min >= 0 && m->f_max >= 0 && m->f_max <= fe->sample_rate / 2.0 &&
                    (m->f_max == 0 || m->f_min < m->f_max) && isfinite(m->log_offset) &&
                    gf_audio_frontend_clip(fe) > m->n_fft / 2 &&
                    (unsigned)fe->align <= GF_AUDIO_ALIGN_ENERGY;
    if (ok || !ctx) return ok ? GF_OK : GF_ERR_INVALID;
    return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                            "%s: sample_rate %d (in [1000, 384000], the mel's %d), clip_seconds "
                            "%g (in (0, 600], more than n_fft / 2 samples), n_fft %d (in [16, "
                            "65536]), win_length %d (<= n_fft), hop_length %d, n_mels %d (in [1, "
                            "1024]), f_min %g and f_max %g (<= rate / 2), align %d (0 middle, 1 "
                            "energy): a setting out of range",
                            what, fe->sample_rate, m->sample_rate, fe->clip_seconds, m->n_fft,
                            m->win_length, m->hop_length, m->n_mels, m->f_min, m->f_max,
                            (int)fe->align);
}

void gf_audio_fit_aligned(const float *x, int64_t n, float *out, int64_t len, gf_audio_align align) {
    double e = 0, moment = 0;
    for (int64_t i = 0; align == GF_AUDIO_ALIGN_ENERGY && i < n; i++) {
        const double v = (double)x[i] * x[i];
        e += v;
        moment += v * (double)i;
    }
    if (!(e > 0)) { /* the middle, also for a silent file */
        gf_audio_fit(x, n, out, len);
        return;
    }
    /* out[j] = x[j - at]: the centre of energy lands on len / 2 */
    const int64_t at = len / 2 - (int64_t)floor(moment / e);
    const int64_t lo = at > 0 ? at : 0, hi = at + n < len ? at + n : len;
    memset(out, 0, sizeof(float) * (size_t)len);
    if (hi > lo) memcpy(out + lo, x + (lo - at), sizeof(float) * (size_t)(hi - lo));
}

const char *gf_audio_align_name(gf_audio_align align) {
    return align == GF_AUDIO_ALIGN_ENERGY ? "energy" : "middle";
}

int gf_audio_align_parse(const char *name, gf_audio_align *out) {
    if (!name || !out) return -1;
    if (strcmp(name, "middle") == 0) *out = GF_AUDIO_ALIGN_MIDDLE;
    else if (strcmp(name, "energy") == 0) *out = GF_AUDIO_ALIGN_ENERGY;
    else return -1;
    return 0;
}

gf_status gf_audio_frontend_features(const gf_audio_frontend *fe, const gf_mel *mel,
                                     const float *x, int64_t n, float *out, char *err,
                                     size_t err_cap) {
    const int64_t clip = gf_audio_frontend_clip(fe);
    float *wave = malloc(sizeof(float) * (size_t)clip);
    if (!wave) {
        if (err && err_cap) snprintf(err, err_cap, "audio: out of memory for a clip");
        return GF_ERR_NOMEM;
    }
    gf_audio_fit_aligned(x, n, wave, clip, fe->align);
    gf_status st = gf_mel_compute(mel, wave, clip, out, err, err_cap);
    free(wave);
    return st;
}

/* ---- streaming ------------------------------------------------------------------------------ */

struct gf_audio_stream {
    gf_audio_frontend fe;
    gf_audio_stream_params p;
    gf_mel *mel;
    int n_classes;
    gf_audio_classifier cls;
    int64_t win, hop;   /* samples */
    float *buf;         /* [win]: samples base .. base + len - 1 of the stream */
    int64_t len, base, fed, next; /* next: the index of the next window to classify */
    float *feats, *probs;
    gf_audio_detection *det; /* settled detections */
    int64_t n_det, cap_det;
    gf_audio_detection *cand; /* closed candidates that overlap one another, not yet settled */
    int64_t n_cand, cap_cand;
    double cand_end;          /* the latest end among them */
    double reach;             /* seconds a candidate reaches either side: 1.5 hops (at most a
                               * quarter window) */
    gf_audio_detection cur;  /* the detection in progress, when open */
    bool open, finished;
};

gf_audio_stream_params gf_audio_stream_default_params(void) {
    gf_audio_stream_params p = {0.0, 0.1, 0.5f, -1, false};
    return p;
}

void gf_audio_stream_free(gf_audio_stream *s) {
    if (!s) return;
    if (s->cls.free) s->cls.free(s->cls.user);
    gf_mel_free(s->mel);
    free(s->buf);
    free(s->feats);
    free(s->probs);
    free(s->det);
    free(s->cand);
    free(s);
}

static gf_status check_stream(gf_ctx *ctx, const gf_audio_frontend *fe, int n_classes,
                              const gf_audio_stream_params *p, const gf_audio_classifier *c) {
    if (gf_audio_frontend_check(ctx, fe, "audio stream") != GF_OK) return gf_ctx_status(ctx);
    const double win = p->window_s > 0 ? p->window_s : fe->clip_seconds;
    if (!c || !c->classify || n_classes < 1 || n_classes > (1 << 20) || !(p->window_s >= 0) ||
        p->window_s > 600 || !(p->hop_s > 0) || p->hop_s > 600 ||
        llround(p->hop_s * fe->sample_rate) < 1 || llround(win * fe->sample_rate) < 1 ||
        !(p->threshold >= 0 && p->threshold <= 1) || p->background < -1 ||
        p->background >= n_classes)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "audio stream: needs a classifier and classes (%d), window_s %g in "
                                "[0, 600], hop_s %g in (0, 600] (at least one sample), threshold "
                                "%g in [0, 1], background %d in [-1, classes)", n_classes,
                                p->window_s, p->hop_s, (double)p->threshold, p->background);
    return GF_OK;
}

gf_audio_stream *gf_audio_stream_new(gf_ctx *ctx, const gf_audio_frontend *fe, int n_classes,
                                     const gf_audio_stream_params *params,
                                     const gf_audio_classifier *classifier) {
    const gf_audio_stream_params p = params ? *params : gf_audio_stream_default_params();
    const bool ok = check_stream(ctx, fe, n_classes, &p, classifier) == GF_OK;
    gf_audio_stream *s = ok ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        if (ok) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "audio stream: out of memory");
        if (classifier && classifier->free) classifier->free(classifier->user);
        return NULL;
    }
    s->cls = *classifier;
    s->fe = *fe;
    s->p = p;
    s->n_classes = n_classes;
    s->win = llround((p.window_s > 0 ? p.window_s : fe->clip_seconds) * fe->sample_rate);
    s->hop = llround(p.hop_s * fe->sample_rate);
    s->reach = fmin(1.5 * (double)s->hop, (double)s->win / 4) / fe->sample_rate;
    if (!p.waveform && !(s->mel = gf_mel_new(ctx, &fe->mel))) {
        gf_audio_stream_free(s);
        return NULL;
    }
    const int64_t clip = gf_audio_frontend_clip(fe);
    const int64_t F = p.waveform ? clip : (int64_t)fe->mel.n_mels * gf_mel_frames(s->mel, clip);
    s->buf = malloc(sizeof(float) * (size_t)s->win);
    s->feats = malloc(sizeof(float) * (size_t)F);
    s->probs = malloc(sizeof(float) * (size_t)n_classes);
    if (!s->buf || !s->feats || !s->probs) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "audio stream: out of memory for a window of %lld "
                         "samples", (long long)s->win);
        gf_audio_stream_free(s);
        return NULL;
    }
    return s;
}

/* Room for one more in *a (n used of *cap). */
static bool grow(gf_audio_detection **a, int64_t n, int64_t *cap) {
    if (n < *cap) return true;
    const int64_t c = *cap ? 2 * *cap : 16;
    gf_audio_detection *g = realloc(*a, sizeof *g * (size_t)c);
    if (!g) return false;
    *a = g;
    *cap = c;
    return true;
}

/* Whether two candidates, each widened by the reach on both sides, overlap. */
static bool overlap(const gf_audio_stream *s, const gf_audio_detection *a,
                    const gf_audio_detection *b) {
    return a->start - s->reach < b->end + s->reach && b->start - s->reach < a->end + s->reach;
}

/* The pending candidates (no later window can overlap them) to detections: the most probable
 * kept and those overlapping it dropped, repeatedly (non-maximum suppression); in time order. */
static gf_status settle(gf_ctx *ctx, gf_audio_stream *s) {
    int64_t n = s->n_cand;
    const int64_t first = s->n_det;
    while (n > 0) {
        int64_t best = 0;
        for (int64_t i = 1; i < n; i++)
            if (s->cand[i].prob > s->cand[best].prob) best = i; /* the earlier on a tie */
        if (!grow(&s->det, s->n_det, &s->cap_det))
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "audio stream: out of memory");
        const gf_audio_detection keep = s->cand[best];
        int64_t at = s->n_det++; /* in time order among this cluster's detections */
        while (at > first && s->det[at - 1].start > keep.start) s->det[at] = s->det[at - 1], at--;
        s->det[at] = keep;
        int64_t k = 0;
        for (int64_t i = 0; i < n; i++)
            if (i != best && !overlap(s, &s->cand[i], &keep)) s->cand[k++] = s->cand[i];
        n = k;
    }
    s->n_cand = 0;
    return GF_OK;
}

/* A closed candidate joins the cluster of those overlapping one another; a cluster that no
 * later window can reach is settled first. */
static gf_status push_candidate(gf_ctx *ctx, gf_audio_stream *s, const gf_audio_detection *d) {
    if (s->n_cand && d->start - s->reach >= s->cand_end + s->reach && settle(ctx, s) != GF_OK)
        return gf_ctx_status(ctx);
    if (!grow(&s->cand, s->n_cand, &s->cap_cand))
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "audio stream: out of memory");
    s->cand[s->n_cand++] = *d;
    s->cand_end = s->n_cand == 1 || d->end > s->cand_end ? d->end : s->cand_end;
    return GF_OK;
}

/* The window of n samples in buf starting at sample start: classified, and the candidate in
 * progress (the centres of its windows) extended, closed or opened. */
static gf_status classify_window(gf_ctx *ctx, gf_audio_stream *s, int64_t start, int64_t n) {
    char err[512] = "";
    gf_status st = GF_OK;
    /* a whole window is fitted about its middle: sliding it is what finds the word; only a
     * recording shorter than one window is aligned as the training clips were */
    gf_audio_frontend fe = s->fe;
    if (n == s->win) fe.align = GF_AUDIO_ALIGN_MIDDLE;
    if (s->p.waveform)
        gf_audio_fit_aligned(s->buf, n, s->feats, gf_audio_frontend_clip(&fe), fe.align);
    else
        st = gf_audio_frontend_features(&fe, s->mel, s->buf, n, s->feats, err, sizeof err);
    if (st == GF_OK) st = s->cls.classify(s->cls.user, s->feats, s->probs, err, sizeof err);
    if (st != GF_OK)
        return gf_ctx_set_error(ctx, st, "audio stream: window at %.3f s: %s",
                                (double)start / s->fe.sample_rate, err[0] ? err : "failed");
    int top = 0;
    for (int k = 1; k < s->n_classes; k++)
        if (s->probs[k] > s->probs[top]) top = k;
    const float prob = s->probs[top];
    const bool active = top != s->p.background && prob >= s->p.threshold;
    const double t = ((double)start + (double)n / 2) / s->fe.sample_rate; /* the centre */
    if (s->open && (!active || top != s->cur.cls)) {
        s->open = false;
        if (push_candidate(ctx, s, &s->cur) != GF_OK) return gf_ctx_status(ctx);
    }
    if (active && s->open) {
        s->cur.end = t;
        s->cur.prob = prob > s->cur.prob ? prob : s->cur.prob;
        s->cur.windows++;
    } else if (active) {
        s->cur = (gf_audio_detection){top, t, t, prob, 1};
        s->open = true;
    }
    s->next++;
    /* the next window starts past the cluster and nothing open reaches back into it */
    const double next_t = ((double)(s->next * s->hop) + (double)s->win / 2) / s->fe.sample_rate;
    const double reach = s->cand_end + 2 * s->reach;
    if (s->n_cand && next_t >= reach && (!s->open || s->cur.start >= reach))
        return settle(ctx, s);
    return GF_OK;
}

gf_status gf_audio_stream_feed(gf_ctx *ctx, gf_audio_stream *s, const float *x, int64_t n) {
    if (!s || (!x && n) || n < 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_audio_stream_feed: NULL stream or samples");
    if (s->finished)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_audio_stream_feed: the stream is finished");
    while (n > 0) {
        if (s->fed < s->base) { /* a hop longer than the window: samples no window covers */
            const int64_t k = n < s->base - s->fed ? n : s->base - s->fed;
            x += k, n -= k, s->fed += k;
            continue;
        }
        const int64_t k = n < s->win - s->len ? n : s->win - s->len;
        memcpy(s->buf + s->len, x, sizeof(float) * (size_t)k);
        s->len += k, x += k, n -= k, s->fed += k;
        if (s->len < s->win) break;
        if (classify_window(ctx, s, s->base, s->win) != GF_OK) return gf_ctx_status(ctx);
        const int64_t keep = s->hop < s->win ? s->win - s->hop : 0;
        memmove(s->buf, s->buf + (s->win - keep), sizeof(float) * (size_t)keep);
        s->len = keep;
        s->base += s->hop;
    }
    return GF_OK;
}

gf_status gf_audio_stream_finish(gf_ctx *ctx, gf_audio_stream *s) {
    if (!s) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_audio_stream_finish: NULL stream");
    if (s->finished) return GF_OK;
    s->finished = true;
    if (s->next == 0 && s->len > 0 && classify_window(ctx, s, 0, s->len) != GF_OK)
        return gf_ctx_status(ctx);
    if (s->open) {
        s->open = false;
        if (push_candidate(ctx, s, &s->cur) != GF_OK) return gf_ctx_status(ctx);
    }
    return s->n_cand ? settle(ctx, s) : GF_OK;
}

const gf_audio_detection *gf_audio_stream_detections(const gf_audio_stream *s, int64_t *n) {
    if (n) *n = s ? s->n_det : 0;
    return s ? s->det : NULL;
}

int64_t gf_audio_stream_windows(const gf_audio_stream *s) { return s ? s->next : 0; }
