/* graft predict --stream: keyword spotting over long recordings with a model trained on audio:
 * data (the library's gf_bundle_audio_stream): each file fed to the stream in chunks as a
 * recorder would deliver them, then the words detected with their times, as text or JSON. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { FEED_CHUNK = 4096 }; /* samples per feed: a quarter of a second at 16 kHz */

/* The class that means "no word": --background, else one named like silence or noise; -1. */
static int background_class(const cli_opts *o, const gf_bundle *b, int *out) {
    static const char *const names[] = {"_silence_", "_background_", "_background_noise_",
                                        "silence", "background", "noise", NULL};
    *out = -1;
    for (int k = 0; k < b->info.n_classes; k++) {
        const char *c = gf_bundle_class_name(b, k);
        if (o->background && c && strcmp(c, o->background) == 0) *out = k;
        for (int i = 0; !o->background && c && names[i]; i++)
            if (*out < 0 && strcasecmp(c, names[i]) == 0) *out = k;
    }
    if (o->background && *out < 0)
        return cli_usage_error(o->cmd, "--background %s: the model has no class of that name",
                               o->background);
    return CLI_CONTINUE;
}

/* One recording through a new stream; the detections stay in *s for the caller. */
static int run_file(gf_ctx *ctx, const cli_opts *o, gf_bundle *b, int background,
                    const char *path, gf_audio_stream **s, double *seconds) {
    gf_audio_params ap = gf_audio_default_params();
    ap.sample_rate = b->info.audio.sample_rate;
    ap.max_seconds = 4 * 3600; /* read whole: at most 4 hours (0.9 GB at 16 kHz) */
    int64_t n = 0;
    float *x = gf_audio_read(ctx, path, &ap, &n);
    if (!x) return cli_fail_ctx(o->cmd, ctx);
    *seconds = (double)n / ap.sample_rate;
    gf_audio_stream_params sp = gf_audio_stream_default_params();
    sp.window_s = o->window_s;
    sp.hop_s = o->hop_s;
    sp.threshold = (float)o->threshold;
    sp.background = background;
    *s = gf_bundle_audio_stream(ctx, b, &sp);
    gf_status st = *s ? GF_OK : gf_ctx_status(ctx);
    for (int64_t at = 0; st == GF_OK && at < n; at += FEED_CHUNK)
        st = gf_audio_stream_feed(ctx, *s, x + at, n - at < FEED_CHUNK ? n - at : FEED_CHUNK);
    if (st == GF_OK) st = gf_audio_stream_finish(ctx, *s);
    free(x);
    if (st != GF_OK) return cli_fail(o->cmd, "%s: %s", path, gf_ctx_error(ctx));
    return CLI_CONTINUE;
}

static void print_text(const gf_bundle *b, const char *path, double seconds,
                       const gf_audio_stream *s) {
    int64_t n = 0;
    const gf_audio_detection *d = gf_audio_stream_detections(s, &n);
    printf("%s: %.2f s, %lld windows, %lld detection%s\n", path, seconds,
           (long long)gf_audio_stream_windows(s), (long long)n, n == 1 ? "" : "s");
    for (int64_t i = 0; i < n; i++)
        printf("  %8.2f - %8.2f s  %-20s %.4f\n", d[i].start, d[i].end,
               gf_bundle_class_name(b, d[i].cls), d[i].prob);
}

static cJSON *json_file(const gf_bundle *b, const char *path, double seconds,
                        const gf_audio_stream *s) {
    int64_t n = 0;
    const gf_audio_detection *d = gf_audio_stream_detections(s, &n);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "input", path);
    cJSON_AddNumberToObject(e, "seconds", seconds);
    cJSON_AddNumberToObject(e, "windows", (double)gf_audio_stream_windows(s));
    cJSON *arr = cJSON_AddArrayToObject(e, "detections");
    for (int64_t i = 0; i < n; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "class", gf_bundle_class_name(b, d[i].cls));
        cJSON_AddNumberToObject(t, "index", d[i].cls);
        cJSON_AddNumberToObject(t, "start", d[i].start);
        cJSON_AddNumberToObject(t, "end", d[i].end);
        cJSON_AddNumberToObject(t, "probability", d[i].prob);
        cJSON_AddNumberToObject(t, "windows", d[i].windows);
        cJSON_AddItemToArray(arr, t);
    }
    return e;
}

int cli_predict_stream(gf_ctx *ctx, const cli_opts *o, gf_bundle *b, const char *const *inputs,
                       int n_in) {
    if (o->out) return cli_usage_error(o->cmd, "--out: not with --stream (use --json)");
    if (!b->info.has_audio)
        return cli_usage_error(o->cmd, "--stream: %s records no audio front end (graft.audio): "
                                       "train it on audio: data", o->weights);
    int background;
    int rc = background_class(o, b, &background);
    cJSON *root = o->json ? cJSON_CreateObject() : NULL, *files = NULL;
    if (root) {
        cJSON_AddStringToObject(root, "command", "predict");
        cJSON_AddStringToObject(root, "weights", o->weights);
        cJSON_AddStringToObject(root, "model", b->info.model);
        cJSON_AddBoolToObject(root, "stream", true);
        cJSON_AddNumberToObject(root, "hop", o->hop_s);
        cJSON_AddNumberToObject(root, "threshold", o->threshold);
        if (background >= 0)
            cJSON_AddStringToObject(root, "background", gf_bundle_class_name(b, background));
        files = cJSON_AddArrayToObject(root, "recordings");
    }
    for (int i = 0; rc == CLI_CONTINUE && i < n_in; i++) {
        gf_audio_stream *s = NULL;
        double seconds = 0;
        rc = run_file(ctx, o, b, background, inputs[i], &s, &seconds);
        if (rc == CLI_CONTINUE && root) cJSON_AddItemToArray(files, json_file(b, inputs[i], seconds, s));
        else if (rc == CLI_CONTINUE) print_text(b, inputs[i], seconds, s);
        gf_audio_stream_free(s);
    }
    if (rc != CLI_CONTINUE) {
        cJSON_Delete(root);
        return rc;
    }
    return root ? cli_json_print(root) : CLI_OK;
}
