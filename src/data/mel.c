/* Log-mel features (include/graft/audio.h) equal to torchaudio's MelSpectrogram: torch.stft with
 * center=True and reflect padding, a periodic Hann window, |X|^2, an HTK triangular filterbank
 * built as melscale_fbanks builds it, then log(mel + offset). One FFTW plan per extractor. */
#define _POSIX_C_SOURCE 200809L
#include "graft/audio.h"
#include "core/internal.h"

#include <fftw3.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gf_mel {
    gf_mel_params p;
    int n_freqs;      /* n_fft / 2 + 1 */
    float *window;    /* [n_fft]: the win_length Hann window centred in n_fft, zeros around */
    float *fb;        /* [n_mels, n_freqs] filterbank (torchaudio's [n_freqs, n_mels] transposed) */
    int *lo, *hi;     /* [n_mels]: the bins where filter m is non-zero are lo[m] .. hi[m] - 1 */
    fftwf_plan plan;  /* r2c of n_fft, made on aligned buffers, executed on each call's own */
};

gf_mel_params gf_mel_default_params(void) {
    gf_mel_params p = {16000, 400, 0, 160, 40, 0.0f, 0.0f, 1e-6f};
    return p;
}

static double hz_to_mel(double f) { return 2595.0 * log10(1.0 + f / 700.0); }
static double mel_to_hz(double m) { return 700.0 * (pow(10.0, m / 2595.0) - 1.0); }

/* torchaudio.functional.melscale_fbanks(n_freqs, f_min, f_max, n_mels, sr, None, "htk"): bin k
 * sits at k * (sr // 2) / (n_freqs - 1) Hz; filter m rises from f[m] to f[m+1] and falls to
 * f[m+2], with f the n_mels + 2 points evenly spaced in mel. */
static void filterbank(gf_mel *m) {
    const gf_mel_params *p = &m->p;
    const int M = p->n_mels, F = m->n_freqs;
    double *f = malloc(sizeof(double) * (size_t)(M + 2));
    const double m_lo = hz_to_mel(p->f_min), m_hi = hz_to_mel(p->f_max);
    for (int i = 0; f && i < M + 2; i++) f[i] = mel_to_hz(m_lo + (m_hi - m_lo) * i / (M + 1));
    for (int j = 0; f && j < M; j++) {
        m->lo[j] = F, m->hi[j] = 0;
        for (int k = 0; k < F; k++) {
            const double hz = (double)(p->sample_rate / 2) * k / (F - 1);
            const double down = (hz - f[j]) / (f[j + 1] - f[j]);
            const double up = (f[j + 2] - hz) / (f[j + 2] - f[j + 1]);
            const double w = fmax(0.0, fmin(down, up));
            m->fb[(size_t)j * F + k] = (float)w;
            if (w > 0) {
                if (k < m->lo[j]) m->lo[j] = k;
                m->hi[j] = k + 1;
            }
        }
        if (m->lo[j] > m->hi[j]) m->lo[j] = m->hi[j] = 0; /* an empty filter: all zero */
    }
    free(f);
}

static gf_status check(gf_ctx *ctx, const gf_mel_params *p) {
    const int win = p->win_length ? p->win_length : p->n_fft;
    const float f_max = p->f_max > 0 ? p->f_max : (float)(p->sample_rate / 2);
    if (p->sample_rate < 1000 || p->sample_rate > 384000 || p->n_fft < 16 || p->n_fft > 65536 ||
        win < 1 || win > p->n_fft || p->hop_length < 1 || p->hop_length > 65536 ||
        p->n_mels < 1 || p->n_mels > 1024 || !(p->f_min >= 0) || !(f_max > p->f_min) ||
        f_max > p->sample_rate / 2.0f + 1e-3f || !isfinite(p->log_offset) ||
        (p->log_offset == 0))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "gf_mel_new: sample_rate %d in [1000, 384000], n_fft %d in [16, "
                                "65536], win_length %d in [1, n_fft], hop_length %d in [1, 65536], "
                                "n_mels %d in [1, 1024], 0 <= f_min %g < f_max %g <= sample_rate / "
                                "2, log_offset %g finite and not 0",
                                p->sample_rate, p->n_fft, win, p->hop_length, p->n_mels,
                                (double)p->f_min, (double)f_max, (double)p->log_offset);
    return GF_OK;
}

gf_mel *gf_mel_new(gf_ctx *ctx, const gf_mel_params *params) {
    const gf_mel_params p0 = params ? *params : gf_mel_default_params();
    if (check(ctx, &p0) != GF_OK) return NULL;
    gf_mel *m = calloc(1, sizeof *m);
    if (!m) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_mel_new: out of memory");
        return NULL;
    }
    m->p = p0;
    if (!m->p.win_length) m->p.win_length = m->p.n_fft;
    if (!(m->p.f_max > 0)) m->p.f_max = (float)(m->p.sample_rate / 2);
    const int N = m->p.n_fft, M = m->p.n_mels;
    m->n_freqs = N / 2 + 1;
    m->window = calloc((size_t)N, sizeof(float));
    m->fb = malloc(sizeof(float) * (size_t)M * (size_t)m->n_freqs);
    m->lo = malloc(sizeof(int) * (size_t)M);
    m->hi = malloc(sizeof(int) * (size_t)M);
    float *in = fftwf_malloc(sizeof(float) * (size_t)N);
    fftwf_complex *out = fftwf_malloc(sizeof(fftwf_complex) * (size_t)m->n_freqs);
    if (m->window && m->fb && m->lo && m->hi && in && out)
        m->plan = fftwf_plan_dft_r2c_1d(N, in, out, FFTW_ESTIMATE);
    fftwf_free(in);
    fftwf_free(out);
    if (!m->plan) {
        gf_mel_free(m);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "gf_mel_new: out of memory for n_fft %d", N);
        return NULL;
    }
    /* torch.hann_window(win_length, periodic=True), zero-padded on both sides to n_fft as
     * torch.stft pads a shorter window */
    const int W = m->p.win_length, left = (N - W) / 2;
    for (int i = 0; i < W; i++) m->window[left + i] = (float)(0.5 - 0.5 * cos(6.283185307179586476925 * i / W));
    filterbank(m);
    return m;
}

void gf_mel_free(gf_mel *m) {
    if (!m) return;
    if (m->plan) fftwf_destroy_plan(m->plan);
    free(m->window);
    free(m->fb);
    free(m->lo);
    free(m->hi);
    free(m);
}

int gf_mel_n_mels(const gf_mel *m) { return m ? m->p.n_mels : 0; }

int64_t gf_mel_frames(const gf_mel *m, int64_t n) {
    return m && n > 0 ? 1 + n / m->p.hop_length : 0;
}

/* Sample j of the clip padded by pad on each side with reflection (numpy's "reflect": the
 * edge sample is not repeated); pad < n keeps it one reflection deep. */
static float reflected(const float *x, int64_t n, int64_t j) {
    if (j < 0) return x[-j];
    if (j >= n) return x[2 * (n - 1) - j];
    return x[j];
}

/* w[lo..hi) . p[lo..hi) in float, as torchaudio's float32 product, in 8 lanes the compiler
 * can vectorise (a single running sum cannot be reordered). */
static float filter_sum(const float *w, const float *p, int lo, int hi) {
    float acc[8] = {0};
    int k = lo;
    for (; k + 8 <= hi; k += 8)
        for (int l = 0; l < 8; l++) acc[l] += w[k + l] * p[k + l];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; k < hi; k++) s += w[k] * p[k];
    return s;
}

gf_status gf_mel_compute(const gf_mel *m, const float *x, int64_t n, float *out, char *err,
                         size_t err_cap) {
    if (!m || !x || !out) {
        if (err && err_cap) snprintf(err, err_cap, "gf_mel_compute: NULL extractor or buffer");
        return GF_ERR_INVALID;
    }
    const int N = m->p.n_fft, F = m->n_freqs, M = m->p.n_mels, hop = m->p.hop_length;
    if (n <= N / 2) {
        if (err && err_cap)
            snprintf(err, err_cap, "mel: a clip of %lld samples is too short for n_fft %d (reflect "
                     "padding needs more than %d)", (long long)n, N, N / 2);
        return GF_ERR_SHAPE;
    }
    float *in = fftwf_malloc(sizeof(float) * (size_t)N);
    fftwf_complex *spec = fftwf_malloc(sizeof(fftwf_complex) * (size_t)F);
    float *power = malloc(sizeof(float) * (size_t)F);
    if (!in || !spec || !power) {
        fftwf_free(in), fftwf_free(spec), free(power);
        if (err && err_cap) snprintf(err, err_cap, "mel: out of memory for n_fft %d", N);
        return GF_ERR_NOMEM;
    }
    const int64_t T = gf_mel_frames(m, n);
    for (int64_t t = 0; t < T; t++) {
        const int64_t start = t * hop - N / 2;
        if (start >= 0 && start + N <= n) { /* inside the clip: a loop the compiler vectorises */
            const float *xs = x + start;
            for (int i = 0; i < N; i++) in[i] = m->window[i] * xs[i];
        } else {
            for (int i = 0; i < N; i++) in[i] = m->window[i] * reflected(x, n, start + i);
        }
        fftwf_execute_dft_r2c(m->plan, in, spec);
        for (int k = 0; k < F; k++) power[k] = spec[k][0] * spec[k][0] + spec[k][1] * spec[k][1];
        for (int j = 0; j < M; j++) {
            const float s = filter_sum(m->fb + (size_t)j * F, power, m->lo[j], m->hi[j]);
            out[(size_t)j * T + t] = s;
        }
    }
    if (m->p.log_offset > 0)
        for (int64_t i = 0; i < (int64_t)M * T; i++) out[i] = logf(out[i] + m->p.log_offset);
    fftwf_free(in), fftwf_free(spec), free(power);
    return GF_OK;
}
