/* openWakeWord's speech front end as one graft module (graft/speech.h): the mel model run on
 * each clip, openWakeWord's transform and windows, the embedding model on every window, the
 * embeddings pooled into a new head. */
#define _POSIX_C_SOURCE 200809L
#include "graft/speech.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/onnx.h"
#include "graft/ops.h"

enum { SP_BANDS = 32, SP_EMBEDDING = 96 };

gf_speech_params gf_speech_default_params(void) {
    gf_speech_params p;
    memset(&p, 0, sizeof p);
    p.samples = 24000;
    p.scale = 32768.0f;
    p.window = 76;
    p.step = 8;
    p.pool = GF_SPEECH_POOL_FLAT;
    return p;
}

gf_speech_pool gf_speech_pool_parse(const char *name) {
    return !name                      ? GF_SPEECH_POOL_FLAT
           : strcmp(name, "mean") == 0 ? GF_SPEECH_POOL_MEAN
           : strcmp(name, "max") == 0  ? GF_SPEECH_POOL_MAX
                                       : GF_SPEECH_POOL_FLAT;
}

int gf_speech_default_dir(char *buf, size_t cap) {
    const char *d = getenv("GRAFT_DATA_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (d && *d) return snprintf(buf, cap, "%s/openwakeword", d);
    if (x && *x) return snprintf(buf, cap, "%s/graft/openwakeword", x);
    return snprintf(buf, cap, "%s/.cache/graft/openwakeword", h && *h ? h : ".");
}

/* What the forward needs besides the children. */
typedef struct sp_cfg {
    int64_t samples, frames, windows;
    float scale;
    int window, step;
    gf_speech_pool pool;
    int n_cuts;                   /* the embedding's cut points (gf_speech_forward_cuts) */
    bool whole[GF_SPEECH_MAX_CUTS]; /* cut k is the embedding's output: taken as it is */
} sp_cfg;

/* [B, F, 32] mel bands of x [B, samples] (already scaled), each clip through the model alone,
 * transformed x / 10 + 2. */
static gf_tensor *mel_bands(gf_ctx *ctx, gf_module *mel, gf_tensor *x, const sp_cfg *c) {
    const int64_t b = x->shape[0];
    gf_tensor **rows = malloc(sizeof *rows * (size_t)b);
    if (!rows) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "speech: out of memory for %lld clips", (long long)b);
        return NULL;
    }
    bool ok = true;
    for (int64_t i = 0; i < b && ok; i++) {
        gf_tensor *y = gf_module_forward(ctx, mel, gf_slice(ctx, x, 0, i, i + 1, 1));
        ok = y != NULL;
        if (ok && (y->ndim != 4 || y->shape[2] != c->frames || y->shape[3] != SP_BANDS)) {
            char s[96];
            gf_shape_str(y, s, sizeof s);
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "speech: the mel model gave %s for one clip "
                             "(expected [1, 1, %lld, %d])", s, (long long)c->frames, SP_BANDS);
            ok = false;
        }
        rows[i] = y;
    }
    gf_tensor *m = ok ? gf_concat(ctx, rows, (int)b, 0) : NULL;
    free(rows);
    const int64_t shape[3] = {b, c->frames, SP_BANDS};
    return m ? gf_affine(ctx, gf_reshape(ctx, m, 3, shape), 0.1f, 2.0f) : NULL;
}

/* [B * W, window, 32, 1]: the windows of m [B, F, 32], clip by clip, in time order. */
static gf_tensor *windows_of(gf_ctx *ctx, gf_tensor *m, const sp_cfg *c) {
    gf_tensor *w[256];
    const int64_t nw = c->windows;
    for (int64_t k = 0; k < nw; k++) {
        const int64_t at = k * c->step;
        w[k] = gf_slice(ctx, m, 1, at, at + c->window, 1);
    }
    gf_tensor *all = gf_concat(ctx, w, (int)nw, 1); /* [B, W * window, 32] */
    const int64_t shape[4] = {m ? m->shape[0] * nw : 0, c->window, SP_BANDS, 1};
    return all ? gf_reshape(ctx, all, 4, shape) : NULL;
}

/* A context error unless x is clips [N, 1, samples] (or [N, samples]). */
static bool clips_fit(gf_ctx *ctx, const gf_tensor *x, const sp_cfg *c) {
    if (x && x->ndim >= 2 && x->ndim <= 3 && x->shape[x->ndim - 1] == c->samples &&
        (x->ndim == 2 || x->shape[1] == 1))
        return true;
    char s[96] = "NULL";
    if (x) gf_shape_str(x, s, sizeof s);
    gf_ctx_set_error(ctx, GF_ERR_SHAPE, "speech: expected clips [N, 1, %lld] (waveforms of "
                     "%lld samples), got %s", (long long)c->samples, (long long)c->samples, s);
    return false;
}

/* The embedding's input for clips x: [B * W, window, 32, 1], the windows of each clip's mel
 * bands in time order. */
static gf_tensor *embedding_input(gf_ctx *ctx, gf_module *self, gf_tensor *x, const sp_cfg *c) {
    if (!clips_fit(ctx, x, c)) return NULL;
    const int64_t flat[2] = {x->shape[0], c->samples};
    gf_tensor *wave = gf_mul_scalar(ctx, gf_reshape(ctx, x, 2, flat), c->scale);
    gf_tensor *m = wave ? mel_bands(ctx, gf_module_child(self, "mel"), wave, c) : NULL;
    return m ? windows_of(ctx, m, c) : NULL;
}

/* e [B * W, ...] (per window, in time order) pooled over each clip's windows: [B, F]. */
static gf_tensor *pool_windows(gf_ctx *ctx, gf_tensor *e, int64_t b, const sp_cfg *c) {
    if (!e) return NULL;
    const int64_t per[3] = {b, c->windows, e->numel / (b * c->windows)};
    gf_tensor *z = gf_reshape(ctx, e, 3, per);
    const int axis = 1;
    const int64_t f[2] = {b, c->windows * per[2]};
    return c->pool == GF_SPEECH_POOL_MEAN  ? gf_mean(ctx, z, &axis, 1, false)
           : c->pool == GF_SPEECH_POOL_MAX ? gf_max(ctx, z, &axis, 1, false)
                                           : gf_reshape(ctx, z, 2, f);
}

static gf_tensor *speech_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    const sp_cfg *c = user;
    if (c->n_cuts) {
        gf_ctx_set_error(ctx, GF_ERR_STATE, "speech: the embedding is cut at %d points: run it "
                         "with gf_speech_forward_cuts", c->n_cuts);
        return NULL;
    }
    gf_tensor *win = embedding_input(ctx, self, x, c);
    gf_tensor *e = win ? gf_module_forward(ctx, gf_module_child(self, "trunk"), win) : NULL;
    gf_tensor *z = e ? pool_windows(ctx, e, x->shape[0], c) : NULL;
    gf_module *head = gf_module_child(self, "head");
    return head && z ? gf_module_forward(ctx, head, z) : z;
}

gf_status gf_speech_forward_cuts(gf_ctx *ctx, gf_module *m, gf_tensor *x, gf_tensor **outs,
                                 int n) {
    const sp_cfg *c = m && gf_module_type(m) && strcmp(gf_module_type(m), "SpeechClassifier") == 0
                          ? gf_module_user(m) : NULL;
    if (!c || !outs || c->n_cuts < 1 || n != c->n_cuts)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_speech_forward_cuts: %s", !c || !outs
                                ? "not a speech classifier (or NULL outs)"
                                : "the classifier was built without cut points (or another "
                                  "number of them)");
    gf_tensor *win = embedding_input(ctx, m, x, c);
    gf_tensor *raw[GF_SPEECH_MAX_CUTS];
    const int got = win ? gf_onnx_run(ctx, gf_module_child(m, "trunk"), 1, &win, raw, n) : -1;
    if (got < 0) return gf_ctx_status(ctx);
    if (got != n)
        return gf_ctx_set_error(ctx, GF_ERR_STATE, "speech: the embedding gave %d outputs for %d "
                                "cut points", got, n);
    static const int hw[2] = {2, 3};
    for (int k = 0; k < n; k++) {
        gf_tensor *t = raw[k];
        if (!c->whole[k] && t->ndim == 4) t = gf_mean(ctx, t, hw, 2, false); /* [C, H, W] -> C */
        if (!(outs[k] = pool_windows(ctx, t, x->shape[0], c))) return gf_ctx_status(ctx);
    }
    return GF_OK;
}

/* The frames the mel model gives for one clip, from a trial run in a context of its own. */
static int64_t mel_frames(gf_ctx *ctx, gf_module *mel, const char *path, int64_t samples) {
    gf_ctx *tmp = gf_ctx_new(NULL);
    if (!tmp) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "speech: out of memory");
        return -1;
    }
    const int64_t shape[2] = {1, samples};
    gf_tensor *y = gf_module_forward(tmp, mel, gf_zeros(tmp, GF_F32, 2, shape));
    int64_t frames = -1;
    if (!y)
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: running it on %lld samples: %s", path,
                         (long long)samples, gf_ctx_error(tmp));
    else if (y->ndim != 4 || y->shape[0] != 1 || y->shape[1] != 1 || y->shape[3] != SP_BANDS)
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: not openWakeWord's mel model: it gives [%lld, "
                         "%lld, ..., %lld] for one clip (expected [1, 1, frames, %d])", path,
                         (long long)y->shape[0], (long long)(y->ndim > 1 ? y->shape[1] : 0),
                         (long long)y->shape[y->ndim - 1], SP_BANDS);
    else
        frames = y->shape[2];
    gf_ctx_free(tmp);
    return frames;
}

/* melspectrogram.onnx beside the embedding model. */
static void sibling(const char *path, const char *name, char *buf, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(buf, cap, "%.*s/%s", (int)(slash - path), path, name);
    else snprintf(buf, cap, "%s", name);
}

static gf_status check_params(gf_ctx *ctx, const char *path, const gf_speech_params *p) {
    if (p->n_cuts < 0 || p->n_cuts > GF_SPEECH_MAX_CUTS || (p->n_cuts && !p->cuts) ||
        (p->n_cuts && p->n_classes))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "speech classifier: %s: %d cut points (at "
                                "most %d, and no head with them: n_classes %d)",
                                path ? path : "NULL", p->n_cuts, GF_SPEECH_MAX_CUTS, p->n_classes);
    if (!path || p->samples <= 0 || p->window <= 0 || p->step <= 0 || p->n_classes < 0 ||
        !(p->scale > 0) || (unsigned)p->pool > GF_SPEECH_POOL_MAX)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "speech classifier: %s (samples %lld, "
                                "window %d, step %d, n_classes %d, scale %g: all > 0, classes "
                                ">= 0)", path ? "bad settings" : "no embedding model path",
                                (long long)p->samples, p->window, p->step, p->n_classes,
                                (double)p->scale);
    return GF_OK;
}

/* c->whole[k]: cut k is the embedding's own output (its [1, 1, 96] per window is the
 * embedding, taken as it is; any other [C, H, W] is averaged over H and W). */
static gf_status mark_whole(gf_ctx *ctx, const char *path, const gf_speech_params *p, sp_cfg *c) {
    gf_onnx_info *info = gf_onnx_inspect(ctx, path);
    if (!info) return gf_ctx_status(ctx);
    for (int k = 0; k < p->n_cuts; k++) {
        const char *tensor = p->cuts[k];
        for (int i = 0; i < info->n_cuts; i++)
            if (info->cuts[i].node[0] && strcmp(info->cuts[i].node, p->cuts[k]) == 0)
                tensor = info->cuts[i].tensor;
        for (int o = 0; o < info->n_outputs; o++)
            c->whole[k] = c->whole[k] || strcmp(info->outputs[o].name, tensor) == 0;
    }
    c->n_cuts = p->n_cuts;
    gf_onnx_info_free(info);
    return GF_OK;
}

/* Loads both models into m; fills c's frames and windows. */
static gf_status add_models(gf_ctx *ctx, gf_module *m, const char *path, const gf_speech_params *p,
                            sp_cfg *c) {
    char mel_path[4096];
    if (p->mel_path) snprintf(mel_path, sizeof mel_path, "%s", p->mel_path);
    else sibling(path, "melspectrogram.onnx", mel_path, sizeof mel_path);
    gf_module *mel = gf_onnx_load(ctx, mel_path, NULL);
    if (!mel) return GF_ERR_IO;
    if (gf_module_add(ctx, m, "mel", mel) != GF_OK) return GF_ERR_INVALID;
    gf_module_set_requires_grad(mel, false);
    if ((c->frames = mel_frames(ctx, mel, mel_path, p->samples)) < 0) return GF_ERR_INVALID;
    if (c->frames < p->window)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "speech: a clip of %lld samples gives %lld "
                                "mel frames, fewer than one window of %d (%lld samples at least)",
                                (long long)p->samples, (long long)c->frames, p->window,
                                (long long)(p->samples + (p->window - c->frames) * 160));
    c->windows = (c->frames - p->window) / p->step + 1;
    if (c->windows > 256)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "speech: %lld windows per clip, at most "
                                "256 (a shorter clip or a longer step)", (long long)c->windows);
    if (p->n_cuts && mark_whole(ctx, path, p, c) != GF_OK) return GF_ERR_INVALID;
    gf_onnx_options opt = gf_onnx_default_options();
    opt.cuts = p->cuts;
    opt.n_cuts = p->n_cuts;
    gf_module *trunk = gf_onnx_load(ctx, path, p->n_cuts ? &opt : NULL);
    if (!trunk) return GF_ERR_IO;
    return gf_module_add(ctx, m, "trunk", trunk);
}

gf_module *gf_speech_classifier(gf_ctx *ctx, const char *embedding_path,
                                const gf_speech_params *params, gf_rng *rng, gf_speech_info *info) {
    gf_speech_params p = params ? *params : gf_speech_default_params();
    if (check_params(ctx, embedding_path, &p) != GF_OK) return NULL;
    sp_cfg *c = calloc(1, sizeof *c);
    if (!c) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "speech: out of memory");
        return NULL;
    }
    c->samples = p.samples, c->scale = p.scale, c->window = p.window, c->step = p.step;
    c->pool = p.pool;
    gf_module *m = gf_nn_container(ctx, "SpeechClassifier", speech_forward, c, free);
    if (!m) {
        free(c);
        return NULL;
    }
    const int64_t feats = p.pool != GF_SPEECH_POOL_FLAT ? SP_EMBEDDING : 0;
    gf_status st = add_models(ctx, m, embedding_path, &p, c);
    if (st == GF_OK && p.n_classes > 0) {
        const int64_t in = feats ? feats : c->windows * SP_EMBEDDING;
        gf_module *head = gf_nn_linear(ctx, rng, in, p.n_classes, true);
        st = head ? gf_module_add(ctx, m, "head", head) : GF_ERR_NOMEM;
    }
    if (st != GF_OK) {
        gf_module_free(m);
        return NULL;
    }
    gf_module_set_reentrant(m, true);
    if (info)
        *info = (gf_speech_info){c->frames, c->windows, feats ? feats : c->windows * SP_EMBEDDING,
                                 SP_EMBEDDING};
    return m;
}
