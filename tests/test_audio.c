/* Audio: the reader (WAV PCM 16 / float / 8-bit, stereo downmix, FLAC, Ogg/Vorbis, written here
 * with libsndfile), resampling (a sine keeps its frequency), log-mel features against PyTorch
 * (fixtures/mel_torch.json from fixtures/gen_mel.py), SpecAugment's masks (statistics, fill,
 * determinism), waveform perturbation, clips aligned on their energy (positions worked out by
 * hand, a waveform stream's windows), the audio:DIR spec end to end on tones per class, and
 * hostile files (unknown encoding, zero length, absurd headers, text named .wav).
 * To add a reader case: call one_format() in test_formats with a libsndfile format. */
#include "data_helpers.h"

#include "graft/graft.h"
#include "testutil.h"

#include <math.h>
#ifdef GF_TEST_AUDIO
#include <sndfile.h>
#endif

static gf_ctx *ctx;

#ifdef GF_TEST_AUDIO
static const double PI = 3.14159265358979323846;

static float *sine(int64_t n, double freq, double rate, double amp) {
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(amp * sin(2 * PI * freq * (double)i / rate));
    return x;
}

/* Writes frames of interleaved x (channels each) with libsndfile; 0 on success. */
static int write_sf(const char *rel, int format, int channels, int rate, const float *x,
                    int64_t frames) {
    SF_INFO in = {0};
    in.samplerate = rate;
    in.channels = channels;
    in.format = format;
    SNDFILE *sf = sf_open(th_path(rel), SFM_WRITE, &in);
    if (!sf) {
        fprintf(stderr, "%s: %s\n", rel, sf_strerror(NULL));
        return -1;
    }
    sf_count_t w = sf_writef_float(sf, x, frames);
    sf_close(sf);
    return w == frames ? 0 : -1;
}

/* Frequency from the rising zero crossings of x[from .. to). */
static double crossing_freq(const float *x, int64_t from, int64_t to, double rate) {
    int64_t first = -1, last = -1, count = 0;
    for (int64_t i = from + 1; i < to; i++)
        if (x[i - 1] < 0 && x[i] >= 0) {
            if (first < 0) first = i;
            last = i, count++;
        }
    return count > 1 ? (double)(count - 1) * rate / (double)(last - first) : 0;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void one_format(const char *rel, int format, int channels, double tol) {
    const int64_t n = 4000;
    float *mono = sine(n, 440, 16000, 0.5);
    float *x = malloc(sizeof(float) * (size_t)(n * channels));
    for (int64_t i = 0; i < n; i++) /* right = half the left, inverted: the mean is mono / 4 */
        for (int c = 0; c < channels; c++) x[i * channels + c] = c == 0 ? mono[i] : -0.5f * mono[i];
    if (channels == 2)
        for (int64_t i = 0; i < n; i++) mono[i] *= 0.25f;
    if (write_sf(rel, format, channels, 16000, x, n) != 0) {
        fprintf(stderr, "%s: this libsndfile cannot write it; skipped\n", rel);
    } else {
        int64_t got = 0;
        float *y = gf_audio_read(ctx, th_path(rel), NULL, &got);
        CHECK(y != NULL);
        if (!y) fprintf(stderr, "%s: %s\n", rel, gf_ctx_error(ctx));
        const bool lossy = (format & SF_FORMAT_SUBMASK) == SF_FORMAT_VORBIS;
        CHECK(lossy ? llabs(got - n) < 800 : got == n);
        if (y && !lossy) {
            const double d = max_diff(y, mono, n);
            CHECK(d <= tol);
            if (d > tol) fprintf(stderr, "%s: max difference %g (tol %g)\n", rel, d, tol);
        }
        if (y && lossy) CHECK_NEAR(crossing_freq(y, 0, got, 16000), 440, 5);
        free(y);
    }
    free(mono);
    free(x);
}

static void test_formats(void) {
    th_mkdir("fmt");
    one_format("fmt/pcm16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 1.0 / 32768 + 1e-7);
    one_format("fmt/float.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1, 0);
    one_format("fmt/u8.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 1, 1.0 / 128 + 1e-7);
    one_format("fmt/pcm24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 1, 1e-6);
    one_format("fmt/stereo.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 2, 1.0 / 32768 + 1e-7);
    one_format("fmt/a.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1, 1.0 / 32768 + 1e-7);
    one_format("fmt/stereo.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 2, 1.0 / 32768 + 1e-7);
    one_format("fmt/a.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 1, 0);
}

/* A 44.1 kHz 1 kHz sine read at 16 kHz keeps its frequency, amplitude and duration. */
static void test_resample(void) {
    const int64_t n = 22050;
    float *x = sine(n, 1000, 44100, 0.5);
    CHECK(write_sf("fmt/44k.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1, 44100, x, n) == 0);
    int64_t got = 0;
    float *y = gf_audio_read(ctx, th_path("fmt/44k.wav"), NULL, &got);
    CHECK(y != NULL);
    CHECK(llabs(got - 8000) <= 2);
    if (y) {
        CHECK_NEAR(crossing_freq(y, 1000, 7000, 16000), 1000, 0.5);
        float peak = 0;
        for (int64_t i = 1000; i < 7000; i++) peak = fmaxf(peak, fabsf(y[i]));
        CHECK_NEAR(peak, 0.5, 0.01);
    }
    free(y);
    char err[256];
    int64_t m = 0;
    float *z = gf_audio_resample(x, n, 44100, 8000, &m, err, sizeof err);
    CHECK(z && llabs(m - 4000) <= 2);
    if (z) CHECK_NEAR(crossing_freq(z, 500, 3500, 8000), 1000, 0.5);
    free(z);
    CHECK(gf_audio_resample(x, 0, 44100, 8000, &m, err, sizeof err) == NULL);
    CHECK(gf_audio_resample(x, 2, 45152, 16000, &m, err, sizeof err) == NULL); /* to nothing */
    CHECK(strstr(err, "give no samples") != NULL);
    free(x);
}

/* Log-mel against torch.stft + melscale_fbanks in float64: graft's float32 FFT must agree to
 * 2e-3 on the log scale (a relative error of 0.2% in each band's energy). Measured: 1.2e-3 in the
 * chirps' quietest bands (float32 rounding of the loud bins leaks into them), 1e-6 elsewhere. */
static void test_mel_parity(void) {
    char path[1024];
    const char *src = getenv("GRAFT_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/fixtures/mel_torch.json", src ? src : "..");
    cJSON *doc = test_read_json(path);
    CHECK(doc != NULL);
    if (!doc) return;
    const cJSON *c;
    double worst = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, "cases")) {
        gf_mel_params p = gf_mel_default_params();
        p.n_fft = cJSON_GetObjectItem(c, "n_fft")->valueint;
        p.n_mels = cJSON_GetObjectItem(c, "n_mels")->valueint;
        p.hop_length = cJSON_GetObjectItem(c, "hop")->valueint;
        const cJSON *jx = cJSON_GetObjectItem(c, "x"), *jy = cJSON_GetObjectItem(c, "y");
        const int64_t n = cJSON_GetArraySize(jx), ny = cJSON_GetArraySize(jy);
        float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)ny);
        for (int64_t i = 0; i < n; i++) x[i] = (float)cJSON_GetArrayItem(jx, (int)i)->valuedouble;
        gf_mel *mel = gf_mel_new(ctx, &p);
        CHECK(mel != NULL);
        const int64_t T = gf_mel_frames(mel, n);
        CHECK(T == cJSON_GetArrayItem(cJSON_GetObjectItem(c, "shape"), 1)->valueint);
        CHECK(T * p.n_mels == ny);
        char err[256];
        if (mel && T * p.n_mels == ny && gf_mel_compute(mel, x, n, y, err, sizeof err) == GF_OK) {
            double d = 0;
            for (int64_t i = 0; i < ny; i++)
                d = fmax(d, fabs(y[i] - cJSON_GetArrayItem(jy, (int)i)->valuedouble));
            worst = fmax(worst, d);
            printf("mel %s: max |difference| %.3g\n", cJSON_GetObjectItem(c, "name")->valuestring,
                   d);
            CHECK(d <= 2e-3);
        } else {
            CHECK(0);
        }
        gf_mel_free(mel);
        free(x);
        free(y);
    }
    printf("log-mel vs PyTorch: max |difference| %.3g\n", worst);
    cJSON_Delete(doc);
}

static void test_mel_errors(void) {
    gf_mel_params p = gf_mel_default_params();
    p.n_fft = 8;
    EXPECT_ERR(ctx, gf_mel_new(ctx, &p), GF_ERR_INVALID, "n_fft 8");
    p = gf_mel_default_params();
    p.f_max = 9000;
    EXPECT_ERR(ctx, gf_mel_new(ctx, &p), GF_ERR_INVALID, "f_max 9000");
    gf_mel *mel = gf_mel_new(ctx, NULL);
    float x[201] = {0}, out[40 * 3];
    char err[256];
    CHECK(gf_mel_compute(mel, x, 200, out, err, sizeof err) == GF_ERR_SHAPE);
    CHECK(strstr(err, "200 samples") != NULL);
    CHECK(gf_mel_compute(mel, x, 201, out, err, sizeof err) == GF_OK);
    CHECK(gf_mel_frames(mel, 16000) == 101);
    gf_mel_free(mel);
}

#endif /* GF_TEST_AUDIO */

/* SpecAugment: the mask widths follow torchaudio's floor(u * param) (mean (param - 1) / 2 for an
 * integer param), bands span the whole other axis, the mean fill is the example's mean, and one
 * seed gives one result. Needs no audio library. */
static void test_specaugment(void) {
    enum { B = 400, F = 40, T = 101 };
    gf_tf *tf = gf_tf_new(ctx);
    CHECK(gf_tf_specaugment(ctx, tf, 1, 8, 1, 20, true) == GF_OK);
    float *x = malloc(sizeof(float) * B * F * T), *y = malloc(sizeof(float) * B * F * T);
    for (int64_t i = 0; i < (int64_t)B * F * T; i++) x[i] = 1.0f;
    const int64_t shape[3] = {1, F, T};
    char err[256];
    CHECK(gf_tf_apply_raw(tf, B, 3, shape, x, y, 7, err, sizeof err) == GF_OK);
    double rows = 0, cols = 0;
    bool bands = true;
    for (int b = 0; b < B; b++) {
        const float *e = y + (int64_t)b * F * T;
        for (int f = 0; f < F; f++) { /* a row all zero is a frequency mask */
            int z = 0;
            for (int t = 0; t < T; t++) z += e[f * T + t] == 0;
            rows += z == T;
        }
        for (int t = 0; t < T; t++) {
            int z = 0;
            for (int f = 0; f < F; f++) z += e[f * T + t] == 0;
            cols += z == F;
        }
        int zeros = 0;
        for (int i = 0; i < F * T; i++) zeros += e[i] == 0;
        int r = 0, c = 0; /* every zero lies in a masked row or column */
        for (int f = 0; f < F; f++) {
            int z = 0;
            for (int t = 0; t < T; t++) z += e[f * T + t] == 0;
            r += z == T;
        }
        for (int t = 0; t < T; t++) {
            int z = 0;
            for (int f = 0; f < F; f++) z += e[f * T + t] == 0;
            c += z == F;
        }
        bands &= zeros == r * T + c * F - r * c;
    }
    CHECK(bands);
    CHECK_NEAR(rows / B, 3.5, 0.35); /* E floor(8u) = 3.5 */
    CHECK_NEAR(cols / B, 9.5, 0.8);  /* E floor(20u) = 9.5 */
    float *y2 = malloc(sizeof(float) * B * F * T);
    CHECK(gf_tf_apply_raw(tf, B, 3, shape, x, y2, 7, err, sizeof err) == GF_OK);
    CHECK(memcmp(y, y2, sizeof(float) * B * F * T) == 0);
    CHECK(gf_tf_apply_raw(tf, B, 3, shape, x, y2, 8, err, sizeof err) == GF_OK);
    CHECK(memcmp(y, y2, sizeof(float) * B * F * T) != 0);
    gf_tf_free(tf);
    /* the mean fill: a ramp's masked values equal its mean before masking */
    tf = gf_tf_new(ctx);
    CHECK(gf_tf_specaugment(ctx, tf, 2, 8, 2, 20, false) == GF_OK);
    for (int i = 0; i < F * T; i++) x[i] = (float)i;
    CHECK(gf_tf_apply_raw(tf, 1, 3, shape, x, y, 3, err, sizeof err) == GF_OK);
    const float mean = (float)(F * T - 1) / 2;
    bool ok = true;
    for (int i = 0; i < F * T; i++) ok &= y[i] == x[i] || y[i] == mean;
    CHECK(ok);
    const int64_t small[3] = {1, 6, 30};
    CHECK(gf_tf_apply_raw(tf, 1, 3, small, x, y, 3, err, sizeof err) == GF_ERR_SHAPE);
    CHECK(strstr(err, "specaugment") != NULL);
    CHECK(gf_tf_specaugment(ctx, tf, -1, 8, 2, 20, false) == GF_ERR_INVALID);
    gf_tf_free(tf);
    free(x), free(y), free(y2);
}

#ifdef GF_TEST_AUDIO

static void test_perturb(void) {
    const int64_t n = 16000;
    float *x = sine(n, 1000, 16000, 0.5);
    gf_audio_perturb_params p = {1.1, 1.1, 1, 0, 0}; /* speed only */
    char err[256];
    int64_t m = 0;
    float *y = gf_audio_perturb(x, n, 16000, &p, 1, &m, err, sizeof err);
    CHECK(y && llabs(m - (int64_t)(n / 1.1)) <= 2);
    if (y) CHECK_NEAR(crossing_freq(y, 1000, m - 1000, 16000), 1100, 1);
    free(y);
    p = (gf_audio_perturb_params){1, 1, 20, 20, 0}; /* noise only, 20 dB */
    y = gf_audio_perturb(x, n, 16000, &p, 2, &m, err, sizeof err);
    CHECK(y && m == n);
    double sig = 0, noise = 0;
    for (int64_t i = 0; y && i < n; i++) {
        sig += (double)x[i] * x[i];
        noise += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
    }
    CHECK_NEAR(10 * log10(sig / noise), 20, 0.3);
    float *y2 = gf_audio_perturb(x, n, 16000, &p, 2, &m, err, sizeof err);
    CHECK(y && y2 && memcmp(y, y2, sizeof(float) * (size_t)n) == 0);
    free(y), free(y2);
    p.speed_lo = 0.1;
    CHECK(gf_audio_perturb(x, n, 16000, &p, 2, &m, err, sizeof err) == NULL);
    free(x);
}

/* A tone file per example: class low (300-500 Hz) or high (3-4 kHz), 0.6 to 1.4 s at 22050 or
 * 16000 Hz, so cropping, padding and resampling all happen. */
static void tone_file(const char *rel, bool high, int k) {
    const int rate = k % 2 ? 22050 : 16000;
    const int64_t n = (int64_t)(rate * (0.6 + 0.2 * (k % 5)));
    float *x = sine(n, (high ? 3000 : 300) + 50.0 * k, rate, 0.3);
    CHECK(write_sf(rel, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, rate, x, n) == 0);
    free(x);
}

static void test_audio_spec(void) {
    const char *parts[] = {"train", "test"};
    th_mkdir("sp");
    for (int s = 0; s < 2; s++) {
        char d[128];
        snprintf(d, sizeof d, "sp/%s", parts[s]);
        th_mkdir(d);
        for (int c = 0; c < 2; c++) {
            char cd[160], f[200];
            snprintf(cd, sizeof cd, "%s/%s", d, c ? "high" : "low");
            th_mkdir(cd);
            for (int k = 0; k < (s ? 3 : 6); k++) {
                snprintf(f, sizeof f, "%s/%d.wav", cd, k);
                tone_file(f, c == 1, k + 7 * s);
            }
            snprintf(f, sizeof f, "%s/notes.txt", cd); /* not audio: skipped */
            th_write_str(f, "x");
        }
    }
    char spec[600];
    snprintf(spec, sizeof spec, "audio:%s", th_path("sp"));
    gf_ctx_clear_error(ctx);
    gf_ds_open_params p = gf_ds_open_default_params();
    p.augment = "specaugment";
    gf_ds_parts parts_out;
    gf_status st = gf_ds_open(ctx, spec, &p, &parts_out);
    CHECK(st == GF_OK);
    if (st != GF_OK) fprintf(stderr, "audio spec: %s\n", gf_ctx_error(ctx));
    if (st == GF_OK) {
        CHECK(strcmp(parts_out.kind, "audio") == 0);
        CHECK(parts_out.own_test);
        CHECK(parts_out.ndim == 3 && parts_out.shape[0] == 1 && parts_out.shape[1] == 40 &&
              parts_out.shape[2] == 101);
        CHECK(parts_out.n_classes == 2 && strcmp(parts_out.class_names[0], "high") == 0);
        CHECK(gf_ds_count(parts_out.train) == 12 && gf_ds_count(parts_out.test) == 6);
        CHECK(parts_out.train_tf != NULL);
        float *x = malloc(sizeof(float) * 40 * 101);
        int64_t y = -1, idx = 0;
        CHECK(gf_ds_read(parts_out.test, &idx, 1, x, &y, NULL, 0) == GF_OK);
        double lowb = -1e30, highb = -1e30; /* a high tone: its loudest band is high */
        for (int m = 0; m < 40; m++) {
            double *b = m < 20 ? &lowb : &highb;
            *b = fmax(*b, x[m * 101 + 50]);
        }
        CHECK(y == 0 && highb > lowb + 5);
        free(x);
    }
    gf_ds_parts_free(&parts_out);
    p.augment = "crop";
    CHECK(gf_ds_check_spec(ctx, spec, &p) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "specaugment") != NULL);
    p.augment = NULL;
    p.clip_seconds = 0.5;
    gf_ctx_clear_error(ctx);
    p.n_mels = 32;
    CHECK(gf_ds_open(ctx, spec, &p, &parts_out) == GF_OK);
    CHECK(parts_out.shape[1] == 32 && parts_out.shape[2] == 51);
    gf_ds_parts_free(&parts_out);
    p = gf_ds_open_default_params();
    p.sample_rate = 8000;
    snprintf(spec, sizeof spec, "images:%s", th_path("sp"));
    CHECK(gf_ds_check_spec(ctx, spec, &p) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "audio: data") != NULL);
}

/* A canonical 44-byte WAV header; the test breaks one field at a time. */
static void wav_header(uint8_t *h, int tag, int channels, uint32_t rate, int bits, uint32_t data) {
    const uint32_t block = (uint32_t)(channels * bits / 8);
    memcpy(h, "RIFF", 4);
    const uint32_t v[] = {36 + data, 16, rate, rate * block, data};
    memcpy(h + 4, &v[0], 4);
    memcpy(h + 8, "WAVEfmt ", 8);
    memcpy(h + 16, &v[1], 4);
    const uint16_t t16 = (uint16_t)tag, c16 = (uint16_t)channels, b16 = (uint16_t)block,
                   bits16 = (uint16_t)bits;
    memcpy(h + 20, &t16, 2);
    memcpy(h + 22, &c16, 2);
    memcpy(h + 24, &v[2], 4);
    memcpy(h + 28, &v[3], 4);
    memcpy(h + 32, &b16, 2);
    memcpy(h + 34, &bits16, 2);
    memcpy(h + 36, "data", 4);
    memcpy(h + 40, &v[4], 4);
}

static void test_hostile(void) {
    uint8_t f[44 + 64] = {0};
    int64_t n = 0;
    th_mkdir("bad");
    wav_header(f, 0x1234, 1, 16000, 16, 64); /* an encoding nobody knows */
    th_write("bad/tag.wav", f, sizeof f);
    EXPECT_ERR(ctx, gf_audio_read(ctx, th_path("bad/tag.wav"), NULL, &n), GF_ERR_FORMAT,
               "bad/tag.wav", "cannot decode");
    wav_header(f, 1, 1, 16000, 16, 0); /* zero length */
    th_write("bad/empty.wav", f, 44);
    EXPECT_ERR(ctx, gf_audio_read(ctx, th_path("bad/empty.wav"), NULL, &n), GF_ERR_FORMAT,
               "bad/empty.wav");
    wav_header(f, 1, 1, 16000, 16, 0xFFFFFF00u); /* a huge data chunk over 64 bytes */
    th_write("bad/huge.wav", f, sizeof f);
    float *x = gf_audio_read(ctx, th_path("bad/huge.wav"), NULL, &n);
    CHECK(x ? n <= 32 : strstr(gf_ctx_error(ctx), "huge.wav") != NULL);
    free(x);
    wav_header(f, 1, 2000, 16000, 16, 64); /* 2000 channels */
    th_write("bad/chan.wav", f, sizeof f);
    EXPECT_ERR(ctx, gf_audio_read(ctx, th_path("bad/chan.wav"), NULL, &n), GF_ERR_FORMAT,
               "chan.wav");
    wav_header(f, 1, 1, 100, 16, 64); /* 100 Hz */
    th_write("bad/rate.wav", f, sizeof f);
    EXPECT_ERR(ctx, gf_audio_read(ctx, th_path("bad/rate.wav"), NULL, &n), GF_ERR_FORMAT,
               "rate.wav", "100 Hz");
    float nan_clip[64] = {0};
    nan_clip[10] = NAN;
    CHECK(write_sf("bad/nan.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1, 16000, nan_clip, 64) == 0);
    EXPECT_ERR(ctx, gf_audio_read(ctx, th_path("bad/nan.wav"), NULL, &n), GF_ERR_FORMAT,
               "nan.wav", "sample 10 is not a finite number");
    th_write_str("bad/text.wav", "this is not a sound file at all, only words\n");
    EXPECT_ERR(ctx, gf_audio_read(ctx, th_path("bad/text.wav"), NULL, &n), GF_ERR_FORMAT,
               "text.wav", "cannot decode");
    EXPECT_ERR(ctx, gf_audio_read(ctx, th_path("bad/none.wav"), NULL, &n), GF_ERR_FORMAT,
               "none.wav", "cannot open");
    CHECK(mkfifo(th_path("bad/fifo.wav"), 0600) == 0); /* would block a plain open */
    EXPECT_ERR(ctx, gf_audio_read(ctx, th_path("bad/fifo.wav"), NULL, &n), GF_ERR_FORMAT,
               "fifo.wav", "not a regular file");
    gf_audio_params ap = gf_audio_default_params();
    ap.max_seconds = 0.5; /* fmt/pcm16.wav is 0.25 s, fmt/44k.wav 0.5 s: over at 0.2 */
    ap.max_seconds = 0.2;
    EXPECT_ERR(ctx, gf_audio_read(ctx, th_path("fmt/pcm16.wav"), &ap, &n), GF_ERR_FORMAT,
               "limit of 0.2 s");
    ap = gf_audio_default_params();
    ap.sample_rate = 10;
    EXPECT_ERR(ctx, gf_audio_read(ctx, th_path("fmt/pcm16.wav"), &ap, &n), GF_ERR_FORMAT,
               "sample_rate 10");
    EXPECT_ERR(ctx, gf_audio_read_memory(ctx, "RIFF", 4, "four.wav", NULL, &n), GF_ERR_FORMAT,
               "four.wav");
    /* a class folder of broken audio fails naming the file */
    th_mkdir("badset");
    th_mkdir("badset/a");
    th_write_str("badset/a/x.wav", "not audio");
    EXPECT_ERR(ctx, gf_audio_load_folder(ctx, th_path("badset"), NULL, NULL), GF_ERR_FORMAT,
               "x.wav", "example 0");
    th_mkdir("badset/b");
    EXPECT_ERR(ctx, gf_audio_load_folder(ctx, th_path("badset"), NULL, NULL), GF_ERR_FORMAT,
               "holds no audio files");
}

#endif /* GF_TEST_AUDIO */

/* The zoo's keyword spotter on log-mel frames: names, the head's size from the mel bands, any
 * clip length (time is averaged), and a check that learns two tone-like classes. */
static void test_kws_zoo(void) {
    gf_ctx_clear_error(ctx);
    gf_zoo_params zp = gf_zoo_default_params();
    zp.in_channels = 1;
    zp.height = 40;
    zp.width = 101;
    zp.num_classes = 10;
    gf_rng rng;
    gf_rng_seed(&rng, 4);
    gf_module *m = gf_zoo_build(ctx, "kws", &zp, &rng);
    if (!m) fprintf(stderr, "kws: %s\n", gf_ctx_error(ctx));
    CHECK(m && strcmp(gf_zoo_head("kws"), "fc") == 0);
    if (!m) return;
    CHECK(gf_module_tensor(ctx, m, "features.1.running_mean") != NULL);
    gf_tensor *fw = gf_module_tensor(ctx, m, "fc.weight");
    CHECK(fw && fw->shape[0] == 10 && fw->shape[1] == 64 * 10);
    gf_module_train(m, false);
    const int64_t frames[2] = {101, 51};
    for (int k = 0; k < 2; k++) {
        int64_t shape[4] = {2, 1, 40, frames[k]};
        gf_tensor *x = gf_zeros(ctx, GF_F32, 4, shape);
        for (int64_t i = 0; x && i < x->numel; i++) gf_f32(x)[i] = (float)((i * 7919) % 13) / 13.0f;
        gf_tensor *y = x ? gf_module_forward(ctx, m, x) : NULL;
        CHECK(y && y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 10);
        gf_ctx_reset(ctx);
    }
    gf_module_free(m);
    zp.height = 3;
    EXPECT_ERR(ctx, gf_zoo_build(ctx, "kws", &zp, NULL), GF_ERR_SHAPE, "kws", "too small");
    gf_ctx_clear_error(ctx);
}

/* A waveform stream's classifier: records the window it gets, answers class 1. */
static gf_status record_window(void *user, const float *features, float *probs, char *err,
                               size_t err_cap) {
    (void)err, (void)err_cap;
    memcpy(user, features, sizeof(float) * 20);
    probs[0] = 0.25f, probs[1] = 0.75f;
    return GF_OK;
}

/* gf_audio_fit_aligned against positions worked out by hand, the names, and a waveform stream
 * handing its classifier the aligned window. */
static void test_align(void) {
    /* energy 1 at 4 and 4 at 5: the centre 4.8, floor 4, goes to 6 / 2 = 3: out[j] = x[j + 1] */
    const float x[12] = {0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0};
    float out[8];
    gf_audio_fit_aligned(x, 12, out, 6, GF_AUDIO_ALIGN_ENERGY);
    const float want[6] = {0, 0, 0, 1, 2, 0};
    CHECK(memcmp(out, want, sizeof want) == 0);
    gf_audio_fit_aligned(x, 12, out, 6, GF_AUDIO_ALIGN_MIDDLE); /* x[3..9) */
    const float mid[6] = {0, 1, 2, 0, 0, 0};
    CHECK(memcmp(out, mid, sizeof mid) == 0);
    /* a short file with its energy at its start: placed so that sample lands at 8 / 2 = 4 */
    const float s[4] = {3, 0, 0, 0};
    gf_audio_fit_aligned(s, 4, out, 8, GF_AUDIO_ALIGN_ENERGY);
    const float late[8] = {0, 0, 0, 0, 3, 0, 0, 0};
    CHECK(memcmp(out, late, sizeof late) == 0);
    /* energy at the very end of a long file: the clip runs past it, zeros after */
    const float e[6] = {0, 0, 0, 0, 0, 5};
    gf_audio_fit_aligned(e, 6, out, 4, GF_AUDIO_ALIGN_ENERGY);
    const float end[4] = {0, 0, 5, 0};
    CHECK(memcmp(out, end, sizeof end) == 0);
    /* silence: the middle, as gf_audio_fit */
    const float z[6] = {0};
    float ref[4];
    gf_audio_fit_aligned(z, 6, out, 4, GF_AUDIO_ALIGN_ENERGY);
    gf_audio_fit(z, 6, ref, 4);
    CHECK(memcmp(out, ref, sizeof ref) == 0);
    gf_audio_align a = GF_AUDIO_ALIGN_MIDDLE;
    CHECK(gf_audio_align_parse("energy", &a) == 0 && a == GF_AUDIO_ALIGN_ENERGY);
    CHECK(strcmp(gf_audio_align_name(a), "energy") == 0);
    CHECK(gf_audio_align_parse("centre", &a) == -1 && a == GF_AUDIO_ALIGN_ENERGY);

    /* a stream of 20-sample windows (1000 Hz, 20 ms: more than n_fft / 2) */
    gf_audio_frontend fe = gf_audio_frontend_default();
    fe.sample_rate = fe.mel.sample_rate = 1000;
    fe.clip_seconds = 0.02;
    fe.mel.n_fft = 16, fe.mel.hop_length = 4, fe.mel.n_mels = 4, fe.mel.f_max = 0;
    fe.align = GF_AUDIO_ALIGN_ENERGY;
    gf_audio_stream_params p = gf_audio_stream_default_params();
    p.waveform = true;
    p.hop_s = 0.02;
    float got[20] = {0};
    const gf_audio_classifier cls = {record_window, NULL, got};
    gf_audio_stream *st = gf_audio_stream_new(ctx, &fe, 2, &p, &cls);
    CHECK(st != NULL);
    const float w[20] = {7};
    if (st) { /* a whole window as it is: sliding finds the word */
        CHECK(gf_audio_stream_feed(ctx, st, w, 20) == GF_OK);
        CHECK(gf_audio_stream_windows(st) == 1);
        CHECK(memcmp(got, w, sizeof w) == 0);
    }
    gf_audio_stream_free(st);
    /* a recording shorter than a window: aligned as training clips, the energy at 0 goes to 10 */
    st = gf_audio_stream_new(ctx, &fe, 2, &p, &cls);
    CHECK(st != NULL);
    if (st) {
        CHECK(gf_audio_stream_feed(ctx, st, w, 12) == GF_OK);
        CHECK(gf_audio_stream_finish(ctx, st) == GF_OK);
        CHECK(gf_audio_stream_windows(st) == 1);
        float moved[20] = {0};
        moved[10] = 7;
        CHECK(memcmp(got, moved, sizeof moved) == 0);
    }
    gf_audio_stream_free(st);
    fe.align = (gf_audio_align)7;
    CHECK(gf_audio_frontend_check(NULL, &fe, NULL) == GF_ERR_INVALID);
}

int main(void) {
    ctx = gf_ctx_new(NULL);
    test_specaugment();
    test_align();
    test_kws_zoo();
#ifdef GF_TEST_AUDIO
    CHECK(gf_audio_available());
    test_formats();
    test_resample();
    test_mel_parity();
    test_mel_errors();
    test_perturb();
    test_audio_spec();
    test_hostile();
#else
    int64_t n = 0;
    EXPECT_ERR(ctx, gf_audio_read(ctx, "x.wav", NULL, &n), GF_ERR_INVALID,
               "built without audio support");
#endif
    gf_ctx_free(ctx);
    return test_finish("test_audio");
}
