/* Keyword spotting and the audio front end of a model: the stream's windows and times (a
 * classifier that hears tone bursts placed at known times, and one that answers a script, for
 * the merging and overlap rule), chunked feeding equal to feeding at once, graft.audio in a
 * bundle (written, read back, used to read a file as the training data was, refused when absent
 * or malformed), and the waveform perturbations: a shift measured on an impulse, speed on a
 * sine's period, noise as an SNR, every one decided by its seed, and the training part of
 * audio: data perturbed afresh at every read. */
#include "data_helpers.h"

#include "graft/graft.h"
#include "testutil.h"

#include <math.h>
#ifdef GF_TEST_AUDIO
#include <sndfile.h>
#endif

static gf_ctx *ctx;
static const double PI = 3.14159265358979323846;

static float *sine(int64_t n, double freq, double rate, double amp) {
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(amp * sin(2 * PI * freq * (double)i / rate));
    return x;
}

/* ---- the stream ---------------------------------------------------------------------------- */

/* Class 1 ("word") with 0.9 when at least 10 frames of the window's middle half (frames 25 to
 * 75 of 101) are loud, else class 0 with 0.9. */
static gf_status loud_middle(void *user, const float *f, float *probs, char *err, size_t cap) {
    (void)user, (void)err, (void)cap;
    int loud = 0;
    for (int t = 25; t <= 75; t++) {
        float m = -1e30f;
        for (int b = 0; b < 40; b++) m = fmaxf(m, f[b * 101 + t]);
        loud += m > 0.0f;
    }
    const bool word = loud >= 10;
    probs[0] = word ? 0.1f : 0.9f;
    probs[1] = word ? 0.9f : 0.1f;
    return GF_OK;
}

/* 10 s of silence with 1 kHz bursts at [2.0, 2.4) and [6.0, 6.3) s. */
static float *bursts(int64_t *n) {
    *n = 160000;
    float *x = calloc((size_t)*n, sizeof(float));
    float *s = sine(*n, 1000, 16000, 0.5);
    for (int64_t i = 32000; i < 38400; i++) x[i] = s[i];
    for (int64_t i = 96000; i < 100800; i++) x[i] = s[i];
    free(s);
    return x;
}

/* The stream over x fed in chunks of the sizes in chunk[] (cycled); its detections copied. */
static int64_t run_stream(const float *x, int64_t n, const int64_t *chunk, int n_chunk,
                          const gf_audio_stream_params *p, gf_audio_detection *out, int64_t *windows) {
    const gf_audio_frontend fe = gf_audio_frontend_default();
    const gf_audio_classifier cls = {loud_middle, NULL, NULL};
    gf_audio_stream *s = gf_audio_stream_new(ctx, &fe, 2, p, &cls);
    CHECK(s != NULL);
    if (!s) return -1;
    for (int64_t at = 0, k = 0; at < n; k++) {
        int64_t c = chunk[k % n_chunk];
        if (c > n - at) c = n - at;
        CHECK(gf_audio_stream_feed(ctx, s, x + at, c) == GF_OK);
        at += c;
    }
    CHECK(gf_audio_stream_finish(ctx, s) == GF_OK);
    int64_t nd = 0;
    const gf_audio_detection *d = gf_audio_stream_detections(s, &nd);
    for (int64_t i = 0; i < nd && i < 8; i++) out[i] = d[i];
    *windows = gf_audio_stream_windows(s);
    gf_audio_stream_free(s);
    return nd;
}

static void test_stream_times(void) {
    int64_t n = 0, windows = 0, w2 = 0;
    float *x = bursts(&n);
    gf_audio_stream_params p = gf_audio_stream_default_params();
    p.background = 0;
    gf_audio_detection d[8], e[8];
    const int64_t whole[1] = {n};
    const int64_t nd = run_stream(x, n, whole, 1, &p, d, &windows);
    /* windows start every 0.1 s while a whole second fits: (10 - 1) / 0.1 + 1 */
    CHECK(windows == 91);
    CHECK(nd == 2);
    const double centre[2] = {2.2, 6.15};
    for (int i = 0; i < 2 && i < nd; i++) {
        CHECK(d[i].cls == 1 && fabsf(d[i].prob - 0.9f) < 1e-6f && d[i].windows >= 2);
        /* the windows that hear a burst in their middle lie symmetric about it */
        CHECK_NEAR((d[i].start + d[i].end) / 2, centre[i], 0.06);
        CHECK(d[i].start < centre[i] && d[i].end > centre[i]);
        /* starts and ends are window centres: 0.5 s past multiples of the hop */
        CHECK_NEAR((d[i].start - 0.5) * 10, round((d[i].start - 0.5) * 10), 1e-9);
        CHECK_NEAR((d[i].end - 0.5) * 10, round((d[i].end - 0.5) * 10), 1e-9);
    }
    /* chunks of any sizes give the same detections */
    const int64_t odd[5] = {1, 7, 160, 4099, 333};
    CHECK(run_stream(x, n, odd, 5, &p, e, &w2) == nd && w2 == windows);
    for (int i = 0; i < nd && i < 8; i++)
        CHECK(e[i].cls == d[i].cls && e[i].start == d[i].start && e[i].end == d[i].end &&
              e[i].prob == d[i].prob && e[i].windows == d[i].windows);
    /* a threshold above every probability detects nothing */
    p.threshold = 0.95f;
    CHECK(run_stream(x, n, whole, 1, &p, e, &w2) == 0);
    /* without a background class the silence is detected too, from the start */
    p = gf_audio_stream_default_params();
    CHECK(run_stream(x, n, whole, 1, &p, e, &w2) >= 1 && e[0].cls == 0 && e[0].start == 0.5);
    /* a hop of 0.25 s and a 0.5 s window: windows at 0, 0.25, ..., 9.5 */
    p.background = 0;
    p.hop_s = 0.25;
    p.window_s = 0.5;
    run_stream(x, n, odd, 5, &p, e, &w2);
    CHECK(w2 == 39);
    free(x);
}

/* Answers script[k] for the k-th window: class * 10 + probability tenths (0: background). */
typedef struct scripted {
    const int *script;
    int k;
} scripted;

static gf_status by_script(void *user, const float *f, float *probs, char *err, size_t cap) {
    (void)f, (void)err, (void)cap;
    scripted *s = user;
    const int v = s->script[s->k++];
    for (int c = 0; c < 3; c++) probs[c] = 0.0f;
    probs[v / 10] = v ? (float)(v % 10) / 10.0f : 1.0f;
    probs[v / 10 == 1 ? 2 : 1] = v ? 1.0f - probs[v / 10] : 0.0f;
    return GF_OK;
}

static void test_stream_rule(void) {
    /* 1.8 s: windows 0..8 over [0.1k, 0.1k + 1], centred at 0.1k + 0.5. Windows 1-2 hear word
     * 1 (0.6, 0.8), windows 4-5 word 2 (0.9), window 6 word 1 again (0.7): each near the next
     * (less than three hops apart); word 2 is the most probable: kept, the others dropped. */
    const int script[9] = {0, 16, 18, 0, 29, 29, 17, 0, 0};
    scripted sc = {script, 0};
    const gf_audio_frontend fe = gf_audio_frontend_default();
    gf_audio_stream_params p = gf_audio_stream_default_params();
    p.background = 0;
    const gf_audio_classifier cls = {by_script, NULL, &sc};
    gf_audio_stream *s = gf_audio_stream_new(ctx, &fe, 3, &p, &cls);
    float *x = calloc(28800, sizeof(float));
    CHECK(s && gf_audio_stream_feed(ctx, s, x, 25600) == GF_OK); /* windows 0..6 */
    int64_t n = 0;
    const gf_audio_detection *d = gf_audio_stream_detections(s, &n);
    CHECK(n == 0); /* a word is still heard: nothing is settled */
    CHECK(gf_audio_stream_feed(ctx, s, x, 3200) == GF_OK && gf_audio_stream_finish(ctx, s) == GF_OK);
    d = gf_audio_stream_detections(s, &n);
    CHECK(n == 1 && sc.k == 9 && gf_audio_stream_windows(s) == 9);
    if (n == 1) {
        CHECK(d[0].cls == 2 && d[0].windows == 2 && fabsf(d[0].prob - 0.9f) < 1e-6f);
        CHECK_NEAR(d[0].start, 0.9, 1e-9); /* the centres of windows 4 and 5 */
        CHECK_NEAR(d[0].end, 1.0, 1e-9);
    }
    EXPECT_ERR(ctx, (void *)(intptr_t)(gf_audio_stream_feed(ctx, s, x, 1) == GF_OK), GF_ERR_INVALID,
               "finished");
    gf_audio_stream_free(s);
    /* a recording shorter than a window is classified once, fitted as a training clip */
    const int short_script[1] = {28};
    sc = (scripted){short_script, 0};
    s = gf_audio_stream_new(ctx, &fe, 3, &p, &cls);
    CHECK(s && gf_audio_stream_feed(ctx, s, x, 8000) == GF_OK && gf_audio_stream_finish(ctx, s) == GF_OK);
    d = gf_audio_stream_detections(s, &n);
    CHECK(n == 1 && d[0].cls == 2 && d[0].start == 0.25 && d[0].end == 0.25 && sc.k == 1);
    gf_audio_stream_free(s);
    free(x);
    /* settings out of range are named */
    p.hop_s = 0;
    EXPECT_ERR(ctx, gf_audio_stream_new(ctx, &fe, 3, &p, &cls), GF_ERR_INVALID, "hop_s 0");
    p = gf_audio_stream_default_params();
    p.background = 3;
    EXPECT_ERR(ctx, gf_audio_stream_new(ctx, &fe, 3, &p, &cls), GF_ERR_INVALID, "background 3");
    gf_audio_frontend bad = fe;
    bad.mel.n_mels = 0;
    EXPECT_ERR(ctx, gf_audio_stream_new(ctx, &bad, 3, NULL, &cls), GF_ERR_INVALID, "n_mels 0");
    gf_ctx_clear_error(ctx);
}

/* ---- perturbations ------------------------------------------------------------------------- */

static void test_perturb_parts(void) {
    const int64_t n = 16000;
    float *imp = calloc((size_t)n, sizeof(float));
    imp[8000] = 1.0f;
    const gf_audio_perturb_params shift = gf_audio_perturb_default_params(false, false, true);
    char err[256];
    int64_t m = 0, lo = 0, hi = 0;
    bool moved_both = true;
    for (uint64_t seed = 1; seed <= 60; seed++) { /* the impulse moves by at most 0.1 s */
        float *y = gf_audio_perturb(imp, n, 16000, &shift, seed, &m, err, sizeof err);
        int64_t at = -1, ones = 0;
        for (int64_t i = 0; y && i < m; i++)
            if (y[i] != 0) at = i, ones++;
        CHECK(y && m == n && ones == 1 && llabs(at - 8000) <= 1600);
        lo = at - 8000 < lo ? at - 8000 : lo;
        hi = at - 8000 > hi ? at - 8000 : hi;
        free(y);
    }
    moved_both = lo < -400 && hi > 400; /* earlier and later, over much of the range */
    CHECK(moved_both);
    free(imp);
    /* speed 0.9 to 1.1 measured on a 1 kHz sine's period; noise 10 to 30 dB measured */
    float *x = sine(n, 1000, 16000, 0.5);
    const gf_audio_perturb_params sp = gf_audio_perturb_default_params(false, true, false);
    const gf_audio_perturb_params np = gf_audio_perturb_default_params(true, false, false);
    double fmin = 1e9, fmax = 0, smin = 1e9, smax = 0;
    for (uint64_t seed = 1; seed <= 30; seed++) {
        float *y = gf_audio_perturb(x, n, 16000, &sp, seed, &m, err, sizeof err);
        const double f = y ? 1000.0 * (double)n / (double)m : 0; /* the length says the speed */
        int64_t first = -1, last = -1, count = 0; /* and the period says it again */
        for (int64_t i = 1001; y && i < m - 1000; i++)
            if (y[i - 1] < 0 && y[i] >= 0) {
                if (first < 0) first = i;
                last = i, count++;
            }
        const double fc = count > 1 ? (double)(count - 1) * 16000.0 / (double)(last - first) : 0;
        CHECK(fc >= 899 && fc <= 1101 && fabs(fc - f) < 2);
        fmin = fmin < fc ? fmin : fc;
        fmax = fmax > fc ? fmax : fc;
        free(y);
        y = gf_audio_perturb(x, n, 16000, &np, seed, &m, err, sizeof err);
        double sig = 0, noise = 0;
        for (int64_t i = 0; y && i < n; i++) {
            sig += (double)x[i] * x[i];
            noise += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        }
        const double snr = 10 * log10(sig / noise);
        CHECK(y && snr > 9.7 && snr < 30.3);
        smin = smin < snr ? smin : snr;
        smax = smax > snr ? smax : snr;
        free(y);
    }
    CHECK(fmax - fmin > 100 && smax - smin > 10); /* spread over the ranges */
    const gf_audio_perturb_params all = gf_audio_perturb_default_params(true, true, true);
    int64_t m2 = 0, m3 = 0;
    float *a = gf_audio_perturb(x, n, 16000, &all, 9, &m, err, sizeof err);
    float *b = gf_audio_perturb(x, n, 16000, &all, 9, &m2, err, sizeof err);
    float *c = gf_audio_perturb(x, n, 16000, &all, 10, &m3, err, sizeof err);
    CHECK(a && b && c && m == m2 && memcmp(a, b, sizeof(float) * (size_t)m) == 0);
    CHECK(c && (m3 != m || memcmp(a, c, sizeof(float) * (size_t)m) != 0));
    free(a), free(b), free(c);
    gf_audio_perturb_params bad = shift;
    bad.shift_s = -1;
    CHECK(gf_audio_perturb(x, n, 16000, &bad, 1, &m, err, sizeof err) == NULL);
    CHECK(strstr(err, "shift_s") != NULL);
    free(x);
}

#ifdef GF_TEST_AUDIO

/* Tones as words: class low (300 Hz and up) and high (3 kHz and up), 0.6 to 1.4 s. */
static void tone_folder(void) {
    const char *parts[] = {"train", "test"};
    th_mkdir("kw");
    for (int s = 0; s < 2; s++)
        for (int c = 0; c < 2; c++) {
            char d[160], f[200];
            snprintf(d, sizeof d, "kw/%s", parts[s]);
            th_mkdir(d);
            snprintf(d, sizeof d, "kw/%s/%s", parts[s], c ? "high" : "low");
            th_mkdir(d);
            for (int k = 0; k < (s ? 2 : 4); k++) {
                const int rate = k % 2 ? 22050 : 16000, kk = k + 5 * s;
                const int64_t n = (int64_t)(rate * (0.6 + 0.2 * (kk % 5)));
                float *x = sine(n, (c ? 3000 : 300) + 50.0 * kk, rate, 0.3);
                SF_INFO in = {0};
                in.samplerate = rate;
                in.channels = 1;
                in.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
                snprintf(f, sizeof f, "%s/%d.wav", d, k);
                SNDFILE *sf = sf_open(th_path(f), SFM_WRITE, &in);
                CHECK(sf && sf_writef_float(sf, x, n) == n);
                if (sf) sf_close(sf);
                free(x);
            }
        }
}

static void test_bundle_audio(void) {
    tone_folder();
    char spec[600];
    snprintf(spec, sizeof spec, "audio:%s", th_path("kw"));
    gf_ds_open_params p = gf_ds_open_default_params();
    p.n_mels = 32;
    p.clip_seconds = 0.8;
    p.align = GF_AUDIO_ALIGN_ENERGY; /* so predict's reading below must align as training did */
    gf_ds_parts d;
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(d.has_audio && d.audio.sample_rate == 16000 && d.audio.clip_seconds == 0.8 &&
          d.audio.mel.n_mels == 32 && d.audio.mel.hop_length == 160 &&
          d.audio.align == GF_AUDIO_ALIGN_ENERGY);
    CHECK(d.ndim == 3 && d.shape[1] == 32 && d.shape[2] == 81);
    gf_bundle_opts o = gf_bundle_default_opts();
    o.model = "kws";
    gf_bundle *b = gf_bundle_new(ctx, &d, &o, NULL);
    CHECK(b && b->info.has_audio);
    const char *path = th_path("kw.safetensors");
    char saved[4200];
    snprintf(saved, sizeof saved, "%s", path);
    CHECK(b && gf_bundle_save(ctx, b, saved, NULL, 0) == GF_OK);
    gf_bundle_free(b);
    /* read back: every setting the features depend on */
    gf_bundle_info info;
    CHECK(gf_bundle_info_load(ctx, saved, &info) == GF_OK);
    const gf_mel_params *m = &info.audio.mel;
    CHECK(info.has_audio && info.audio.sample_rate == 16000 && info.audio.clip_seconds == 0.8 &&
          info.audio.align == GF_AUDIO_ALIGN_ENERGY);
    CHECK(m->sample_rate == 16000 && m->n_fft == 400 && m->win_length == 400 &&
          m->hop_length == 160 && m->n_mels == 32 && m->f_min == 0 && m->f_max == 8000 &&
          m->log_offset == d.audio.mel.log_offset);
    /* the same data opened with the model's front end: the same shape whatever else is asked */
    gf_ds_open_params p2 = gf_ds_open_default_params();
    p2.audio = &info.audio;
    gf_ds_parts d2;
    CHECK(gf_ds_open(ctx, spec, &p2, &d2) == GF_OK && d2.shape[1] == 32 && d2.shape[2] == 81);
    gf_ds_parts_free(&d2);
    gf_bundle_info_free(&info);
    /* a file read for prediction equals the training pipeline's features of the same file */
    b = gf_bundle_load(ctx, saved, NULL);
    CHECK(b != NULL);
    const char *file = gf_images_path(d.test, 3);
    gf_tensor *x = b && file ? gf_bundle_read_audio(ctx, b, file) : NULL;
    float *want = malloc(sizeof(float) * 32 * 81);
    int64_t idx = 3;
    CHECK(gf_ds_read(d.test, &idx, 1, want, NULL, NULL, 0) == GF_OK);
    CHECK(x && x->ndim == 4 && x->shape[2] == 32 && x->shape[3] == 81);
    CHECK(x && memcmp(gf_f32(x), want, sizeof(float) * 32 * 81) == 0);
    gf_tensor *same = b && file ? gf_bundle_read(ctx, b, file, NULL) : NULL;
    CHECK(same && memcmp(gf_f32(same), want, sizeof(float) * 32 * 81) == 0);
    gf_tensor_free(x), gf_tensor_free(same);
    free(want);
    /* without graft.audio: a clear error naming the file and the key */
    if (b) {
        b->info.has_audio = false;
        EXPECT_ERR(ctx, gf_bundle_read_audio(ctx, b, file), GF_ERR_INVALID, "graft.audio", file);
        EXPECT_ERR(ctx, gf_bundle_audio_stream(ctx, b, NULL), GF_ERR_INVALID, "graft.audio");
        const char *extra[2] = {"graft.audio", "{\"sample_rate\": 16000, \"n_mels\": 0}"};
        gf_ctx_clear_error(ctx);
        CHECK(gf_bundle_save(ctx, b, th_path("bad-audio.safetensors"), extra, 1) == GF_OK);
        gf_bundle_info bi;
        EXPECT_ERR(ctx, (void *)(intptr_t)(gf_bundle_info_load(ctx, th_path("bad-audio.safetensors"),
                                                                &bi) == GF_OK),
                   GF_ERR_FORMAT, "graft.audio", "malformed");
        /* every setting right but an alignment this version does not know */
        extra[1] = "{\"sample_rate\": 16000, \"clip_seconds\": 0.8, \"n_fft\": 400, "
                   "\"win_length\": 400, \"hop_length\": 160, \"n_mels\": 32, \"f_min\": 0, "
                   "\"f_max\": 8000, \"log_offset\": 1e-6, \"align\": \"left\"}";
        CHECK(gf_bundle_save(ctx, b, th_path("bad-align.safetensors"), extra, 1) == GF_OK);
        EXPECT_ERR(ctx, (void *)(intptr_t)(gf_bundle_info_load(ctx, th_path("bad-align.safetensors"),
                                                                &bi) == GF_OK),
                   GF_ERR_FORMAT, "graft.audio", "malformed");
        extra[1] = "{\"sample_rate\": 16000, \"clip_seconds\": 0.8, \"n_fft\": 400, "
                   "\"win_length\": 400, \"hop_length\": 160, \"n_mels\": 32, \"f_min\": 0, "
                   "\"f_max\": 8000, \"log_offset\": 1e-6}"; /* written before align: middle */
        CHECK(gf_bundle_save(ctx, b, th_path("old-audio.safetensors"), extra, 1) == GF_OK);
        memset(&bi, 0, sizeof bi);
        CHECK(gf_bundle_info_load(ctx, th_path("old-audio.safetensors"), &bi) == GF_OK &&
              bi.has_audio && bi.audio.align == GF_AUDIO_ALIGN_MIDDLE);
        gf_bundle_info_free(&bi);
    }
    gf_bundle_free(b);
    gf_ds_parts_free(&d);
    /* the audio files under a folder, as predict lists them: by folder, then name */
    char **paths = NULL;
    int64_t np = 0;
    CHECK(gf_audio_list(ctx, th_path("kw/test"), false, &paths, &np, NULL) == GF_OK && np == 4);
    for (int64_t i = 0; i < np; i++) {
        CHECK(strstr(paths[i], i < 2 ? "kw/test/high/" : "kw/test/low/") != NULL);
        free(paths[i]);
    }
    free(paths);
    gf_ctx_clear_error(ctx);
}

/* The training part with noise, speed and shift: fresh features at every read (epoch),
 * the same sequence for the same seed, val and test untouched, labels kept. */
static void test_augment_part(void) {
    char spec[600];
    snprintf(spec, sizeof spec, "audio:%s", th_path("kw"));
    gf_ds_open_params p = gf_ds_open_default_params();
    p.augment = "noise,speed,shift";
    p.seed = 5;
    gf_ds_parts a, b, c;
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_open(ctx, spec, &p, &a) == GF_OK);
    CHECK(gf_ds_open(ctx, spec, &p, &b) == GF_OK);
    p.augment = NULL;
    CHECK(gf_ds_open(ctx, spec, &p, &c) == GF_OK);
    const int64_t F = 40 * 101;
    float *x = malloc(sizeof(float) * 4 * F);
    int64_t idx[2] = {0, 5}, ya[2], yc[2];
    CHECK(gf_ds_read(a.train, idx, 2, x, ya, NULL, 0) == GF_OK);           /* epoch 0 */
    CHECK(gf_ds_read(a.train, idx, 2, x + 2 * F, NULL, NULL, 0) == GF_OK);  /* epoch 1 */
    CHECK(gf_ds_read(c.train, idx, 2, NULL, yc, NULL, 0) == GF_OK);
    CHECK(ya[0] == yc[0] && ya[1] == yc[1]);
    CHECK(memcmp(x, x + 2 * F, sizeof(float) * (size_t)F) != 0);
    float *y = malloc(sizeof(float) * 2 * F);
    CHECK(gf_ds_read(b.train, idx, 2, y, NULL, NULL, 0) == GF_OK); /* the other's epoch 0 */
    CHECK(memcmp(x, y, sizeof(float) * 2 * (size_t)F) == 0);
    CHECK(gf_ds_read(c.train, idx, 2, y, NULL, NULL, 0) == GF_OK); /* clean features differ */
    CHECK(memcmp(x, y, sizeof(float) * (size_t)F) != 0);
    int64_t t = 1;
    CHECK(gf_ds_read(a.test, &t, 1, x, NULL, NULL, 0) == GF_OK);
    CHECK(gf_ds_read(c.test, &t, 1, y, NULL, NULL, 0) == GF_OK);
    CHECK(memcmp(x, y, sizeof(float) * (size_t)F) == 0);
    free(x), free(y);
    gf_ds_parts_free(&a), gf_ds_parts_free(&b), gf_ds_parts_free(&c);
    p.augment = "noise,crop";
    EXPECT_ERR(ctx, (void *)(intptr_t)(gf_ds_check_spec(ctx, spec, &p) == GF_OK), GF_ERR_INVALID,
               "crop", "noise, speed, shift");
    gf_ctx_clear_error(ctx);
}

/* Features of example i in epoch e by every loader of `count` shards, into feat[e][i]. */
static void loader_features(gf_ds *ds, int count, float *feat, int64_t F, int64_t n) {
    for (int r = 0; r < (count ? count : 1); r++) {
        gf_loader_params lp = gf_loader_default_params();
        lp.batch_size = 4;
        lp.seed = 9;
        lp.shard_rank = r;
        lp.shard_count = count;
        gf_loader *ld = gf_loader_new(ctx, ds, &lp);
        CHECK(ld != NULL);
        gf_batch b;
        for (int e = 0; ld && e < 2; e++)
            while (gf_loader_next(ctx, ld, &b))
                for (int64_t k = 0; k < b.n; k++)
                    memcpy(feat + (b.epoch * n + b.idx[k]) * F, gf_f32(b.x) + k * F,
                           sizeof(float) * (size_t)F);
        gf_loader_free(ld);
    }
}

/* The draws of an example depend on it and the loader's epoch only: two processes reading
 * their shares of each batch see what one reading all of them does (training under mpirun),
 * and a second read of the same epoch gives the same features. */
static void test_augment_shards(void) {
    char spec[600];
    snprintf(spec, sizeof spec, "audio:%s", th_path("kw"));
    gf_ds_open_params p = gf_ds_open_default_params();
    p.augment = "noise,speed,shift";
    p.seed = 5;
    gf_ds_parts a, b;
    CHECK(gf_ds_open(ctx, spec, &p, &a) == GF_OK);
    CHECK(gf_ds_open(ctx, spec, &p, &b) == GF_OK);
    const int64_t F = 40 * 101, n = gf_ds_count(a.train);
    float *one = calloc((size_t)(2 * n * F), sizeof(float));
    float *two = calloc((size_t)(2 * n * F), sizeof(float));
    loader_features(a.train, 0, one, F, n);
    loader_features(b.train, 2, two, F, n);
    CHECK(memcmp(one, two, sizeof(float) * (size_t)(2 * n * F)) == 0);
    CHECK(memcmp(one, one + n * F, sizeof(float) * (size_t)F) != 0); /* epochs differ */
    int filled = 1;
    for (int64_t i = 0; i < 2 * n; i++) filled &= one[i * F] != 0.0f;
    CHECK(filled); /* every example of both epochs came */
    int64_t i0 = 0;
    CHECK(gf_ds_read_epoch(a.train, &i0, 1, 1, two, NULL, NULL, 0) == GF_OK);
    CHECK(memcmp(two, one + n * F, sizeof(float) * (size_t)F) == 0); /* read again: the same */

    free(one), free(two);
    gf_ds_parts_free(&a), gf_ds_parts_free(&b);
}

/* Waveform samples (for a speech embedding) take noise, speed and shift too: [1, clip] samples,
 * fresh every epoch, the clean ones without augmentation; specaugment is refused for them. */
static void test_augment_waveform(void) {
    char spec[600];
    snprintf(spec, sizeof spec, "audio:%s", th_path("kw"));
    gf_ds_open_params p = gf_ds_open_default_params();
    p.waveform = true;
    p.augment = "noise,speed,shift";
    p.seed = 5;
    gf_ds_parts a, c;
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_open(ctx, spec, &p, &a) == GF_OK);
    p.augment = NULL;
    CHECK(gf_ds_open(ctx, spec, &p, &c) == GF_OK);
    const int64_t F = 16000;
    CHECK(a.ndim == 2 && a.shape[0] == 1 && a.shape[1] == F);
    float *x = malloc(sizeof(float) * 3 * F);
    int64_t i0 = 2;
    CHECK(gf_ds_read_epoch(a.train, &i0, 1, 0, x, NULL, NULL, 0) == GF_OK);
    CHECK(gf_ds_read_epoch(a.train, &i0, 1, 1, x + F, NULL, NULL, 0) == GF_OK);
    CHECK(gf_ds_read(c.train, &i0, 1, x + 2 * F, NULL, NULL, 0) == GF_OK);
    CHECK(memcmp(x, x + F, sizeof(float) * (size_t)F) != 0);     /* epochs differ */
    CHECK(memcmp(x, x + 2 * F, sizeof(float) * (size_t)F) != 0); /* and differ from clean */
    double e0 = 0, e2 = 0;
    for (int64_t t = 0; t < F; t++) e0 += (double)x[t] * x[t], e2 += (double)x[2 * F + t] * x[2 * F + t];
    CHECK(e2 > 0 && e0 > 0.1 * e2 && e0 < 10 * e2); /* still the clip, at about its energy */
    CHECK(gf_ds_read_epoch(a.train, &i0, 1, 1, x + 2 * F, NULL, NULL, 0) == GF_OK);
    CHECK(memcmp(x + F, x + 2 * F, sizeof(float) * (size_t)F) == 0); /* the same epoch again */
    free(x);
    gf_ds_parts_free(&a), gf_ds_parts_free(&c);
    p.augment = "specaugment";
    EXPECT_ERR(ctx, (void *)(intptr_t)(gf_ds_open(ctx, spec, &p, &a) == GF_OK), GF_ERR_INVALID,
               "specaugment", "waveform");
    gf_ctx_clear_error(ctx);
}

#endif /* GF_TEST_AUDIO */

int main(void) {
    ctx = gf_ctx_new(NULL);
    if (!gf_audio_available()) {
        gf_ctx_free(ctx);
        fprintf(stderr, "test_audio_kws: graft was built without audio; skipped\n");
        return 77;
    }
    test_stream_times();
    test_stream_rule();
    test_perturb_parts();
#ifdef GF_TEST_AUDIO
    test_bundle_audio();
    test_augment_part();
    test_augment_shards();
    test_augment_waveform();
#endif
    gf_ctx_free(ctx);
    return test_finish("test_audio_kws");
}
