/* Audio files to mono float32 at one rate (include/graft/audio.h): libsndfile decodes (its own
 * fuzzed readers for WAV, FLAC, Ogg/Vorbis), libsamplerate resamples. The buffer grows with the
 * frames actually decoded, never with a header's claim, so a lying header costs nothing. */
#define _POSIX_C_SOURCE 200809L
#include "graft/audio.h"
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <samplerate.h>
#include <sndfile.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MIN_RATE = 1000, MAX_RATE = 384000, CHUNK = 4096 };

bool gf_audio_available(void) { return true; }

gf_audio_params gf_audio_default_params(void) {
    gf_audio_params p = {16000, 600.0, 64};
    return p;
}

static void errf(char *err, size_t cap, const char *fmt, ...) {
    if (!err || !cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* ---- libsndfile's virtual I/O over a memory block ----------------------------------------- */

typedef struct mem_file {
    const unsigned char *data;
    sf_count_t size, pos;
} mem_file;

static sf_count_t mem_len(void *u) { return ((mem_file *)u)->size; }

static sf_count_t mem_seek(sf_count_t off, int whence, void *u) {
    mem_file *m = u;
    sf_count_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->size : 0;
    if (off > m->size - base || base + off < 0) return -1; /* no overflow: size is small */
    m->pos = base + off;
    return m->pos;
}

static sf_count_t mem_read(void *ptr, sf_count_t n, void *u) {
    mem_file *m = u;
    sf_count_t left = m->size - m->pos;
    if (n > left) n = left;
    if (n <= 0) return 0;
    memcpy(ptr, m->data + m->pos, (size_t)n);
    m->pos += n;
    return n;
}

static sf_count_t mem_write(const void *ptr, sf_count_t n, void *u) {
    (void)ptr, (void)n, (void)u;
    return 0;
}

static sf_count_t mem_tell(void *u) { return ((mem_file *)u)->pos; }

/* ---- decoding ----------------------------------------------------------------------------- */

static bool check_params(const gf_audio_params *p, const char *name, char *err, size_t cap) {
    if (p->sample_rate < MIN_RATE || p->sample_rate > MAX_RATE || !(p->max_seconds > 0) ||
        p->max_seconds > 86400 || p->max_channels < 1 || p->max_channels > 1024) {
        errf(err, cap, "audio %s: sample_rate %d must be in [%d, %d], max_seconds %g in (0, 86400], "
             "max_channels %d in [1, 1024]", name, p->sample_rate, MIN_RATE, MAX_RATE,
             p->max_seconds, p->max_channels);
        return false;
    }
    return true;
}

/* The header's claims against the limits, before anything is allocated. */
static bool check_info(const SF_INFO *in, const gf_audio_params *p, const char *name, char *err,
                       size_t cap) {
    if (in->channels < 1 || in->channels > p->max_channels) {
        errf(err, cap, "audio %s: %d channels (expected 1 to %d)", name, in->channels,
             p->max_channels);
        return false;
    }
    if (in->samplerate < MIN_RATE || in->samplerate > MAX_RATE) {
        errf(err, cap, "audio %s: sample rate %d Hz (expected %d to %d)", name, in->samplerate,
             MIN_RATE, MAX_RATE);
        return false;
    }
    if (in->frames <= 0) {
        errf(err, cap, "audio %s: no audio frames (zero length)", name);
        return false;
    }
    if ((double)in->frames > p->max_seconds * in->samplerate) {
        errf(err, cap, "audio %s: declares %lld frames = %.1f s at %d Hz, more than the limit of "
             "%g s", name, (long long)in->frames, (double)in->frames / in->samplerate,
             in->samplerate, p->max_seconds);
        return false;
    }
    return true;
}

/* Every frame, channels averaged: a malloc'd array of *n floats. The array grows as frames are
 * decoded (up to the declared count), so memory follows the file's real content. */
static float *decode_mono(SNDFILE *sf, const SF_INFO *in, const char *name, int64_t *n, char *err,
                          size_t cap) {
    const int C = in->channels;
    float *chunk = malloc(sizeof(float) * (size_t)CHUNK * (size_t)C);
    int64_t have = 0, room = in->frames < CHUNK ? in->frames : CHUNK;
    float *out = malloc(sizeof(float) * (size_t)room);
    bool ok = chunk && out;
    while (ok) {
        sf_count_t got = sf_readf_float(sf, chunk, CHUNK);
        if (got <= 0) break;
        if (have + got > in->frames) got = in->frames - have; /* never past the declared end */
        if (have + got > room) {
            int64_t r = room * 2 > have + got ? room * 2 : have + got;
            if (r > in->frames) r = in->frames;
            float *grown = realloc(out, sizeof(float) * (size_t)r);
            if (!(ok = grown != NULL)) break;
            out = grown, room = r;
        }
        for (sf_count_t f = 0; f < got && ok; f++) {
            double s = 0;
            for (int c = 0; c < C; c++) s += chunk[f * C + c];
            out[have + f] = (float)(s / C);
            if (!isfinite(out[have + f])) { /* a float file's NaN or Inf, never a number */
                free(chunk), free(out);
                errf(err, cap, "audio %s: sample %lld is not a finite number", name,
                     (long long)(have + f));
                return NULL;
            }
        }
        have += got;
        if (have >= in->frames) break;
    }
    free(chunk);
    if (!ok) {
        free(out);
        errf(err, cap, "audio %s: out of memory for %lld frames", name, (long long)room);
        return NULL;
    }
    if (sf_error(sf) != SF_ERR_NO_ERROR || have == 0) {
        errf(err, cap, "audio %s: %s", name,
             have == 0 ? "no audio frames could be decoded (zero length)" : sf_strerror(sf));
        free(out);
        return NULL;
    }
    *n = have;
    return out;
}

float *gf_audio_resample(const float *x, int64_t n, double in_rate, double out_rate,
                         int64_t *n_out, char *err, size_t err_cap) {
    if (!x || n <= 0 || !n_out || !(in_rate > 0) || !(out_rate > 0) || n > (int64_t)1 << 40) {
        errf(err, err_cap, "audio resample: need samples, n %lld > 0 and positive rates (%g, %g)",
             (long long)n, in_rate, out_rate);
        return NULL;
    }
    const double ratio = out_rate / in_rate;
    if (!src_is_valid_ratio(ratio) || n * ratio > (double)((int64_t)1 << 40)) {
        errf(err, err_cap, "audio resample: ratio %g out of range", ratio);
        return NULL;
    }
    const int64_t cap = (int64_t)ceil((double)n * ratio) + 64;
    float *out = malloc(sizeof(float) * (size_t)cap);
    if (!out) {
        errf(err, err_cap, "audio resample: out of memory for %lld samples", (long long)cap);
        return NULL;
    }
    SRC_DATA d;
    memset(&d, 0, sizeof d);
    d.data_in = x;
    d.input_frames = (long)n;
    d.data_out = out;
    d.output_frames = (long)cap;
    d.src_ratio = ratio;
    int e = src_simple(&d, SRC_SINC_MEDIUM_QUALITY, 1);
    if (e != 0) {
        free(out);
        errf(err, err_cap, "audio resample: libsamplerate: %s", src_strerror(e));
        return NULL;
    }
    if (d.output_frames_gen <= 0) { /* a clip of a few samples can resample to none */
        free(out);
        errf(err, err_cap, "audio resample: %lld samples at %g Hz give no samples at %g Hz (too "
             "short)", (long long)n, in_rate, out_rate);
        return NULL;
    }
    *n_out = d.output_frames_gen;
    return out;
}

/* Reads an opened file to mono at p->sample_rate; closes sf. */
static float *read_open(SNDFILE *sf, const SF_INFO *in, const gf_audio_params *p, const char *name,
                        int64_t *n, char *err, size_t cap) {
    float *mono = NULL;
    int64_t m = 0;
    if (check_info(in, p, name, err, cap)) mono = decode_mono(sf, in, name, &m, err, cap);
    sf_close(sf);
    if (!mono || in->samplerate == p->sample_rate) {
        if (mono) *n = m;
        return mono;
    }
    char e2[256];
    float *res = gf_audio_resample(mono, m, in->samplerate, p->sample_rate, n, e2, sizeof e2);
    free(mono);
    if (!res) errf(err, cap, "audio %s: %s", name, e2);
    return res;
}

float *gf_audio_read_raw(const char *path, const gf_audio_params *params, int64_t *n, char *err,
                         size_t err_cap) {
    const gf_audio_params p = params ? *params : gf_audio_default_params();
    if (!path || !n) {
        errf(err, err_cap, "gf_audio_read: NULL path or length");
        return NULL;
    }
    *n = 0;
    if (!check_params(&p, path, err, err_cap)) return NULL;
    /* opened without blocking and checked to be a regular file first: a FIFO or device named
     * x.wav would otherwise hang the read or never end */
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        errf(err, err_cap, "audio %s: cannot open: %s", path,
             fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0) close(fd);
        return NULL;
    }
    SF_INFO in;
    memset(&in, 0, sizeof in);
    SNDFILE *sf = sf_open_fd(fd, SFM_READ, &in, 1); /* closes fd, also when it fails */
    if (!sf) { /* libsndfile keeps a failed open's reason in one global: when threads fail at
                * once the reason may be another file's, the path named is always this one */
        errf(err, err_cap, "audio %s: cannot decode: %s", path, sf_strerror(NULL));
        return NULL;
    }
    return read_open(sf, &in, &p, path, n, err, err_cap);
}

float *gf_audio_read(gf_ctx *ctx, const char *path, const gf_audio_params *params, int64_t *n) {
    char err[1024];
    float *x = gf_audio_read_raw(path, params, n, err, sizeof err);
    if (!x) gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s", err);
    return x;
}

float *gf_audio_read_memory(gf_ctx *ctx, const void *data, size_t size, const char *name,
                            const gf_audio_params *params, int64_t *n) {
    const gf_audio_params p = params ? *params : gf_audio_default_params();
    char err[1024];
    name = name ? name : "(memory)";
    if (!n || (!data && size)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_audio_read_memory %s: NULL data or length", name);
        return NULL;
    }
    *n = 0;
    if (!check_params(&p, name, err, sizeof err)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s", err);
        return NULL;
    }
    mem_file m = {data, (sf_count_t)size, 0};
    SF_VIRTUAL_IO io = {mem_len, mem_seek, mem_read, mem_write, mem_tell};
    SF_INFO in;
    memset(&in, 0, sizeof in);
    SNDFILE *sf = sf_open_virtual(&io, SFM_READ, &in, &m);
    float *x = NULL;
    if (!sf)
        snprintf(err, sizeof err, "audio %s: cannot decode: %s", name, sf_strerror(NULL));
    else
        x = read_open(sf, &in, &p, name, n, err, sizeof err);
    if (!x) gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s", err);
    return x;
}

/* ---- shaping and perturbing --------------------------------------------------------------- */

void gf_audio_fit(const float *x, int64_t n, float *out, int64_t len) {
    if (n >= len) {
        memcpy(out, x + (n - len) / 2, sizeof(float) * (size_t)len);
        return;
    }
    const int64_t left = (len - n) / 2;
    memset(out, 0, sizeof(float) * (size_t)len);
    memcpy(out + left, x, sizeof(float) * (size_t)n);
}

static double uniform(gf_rng *r, double lo, double hi) {
    return lo + (hi - lo) * (double)gf_rng_uniform(r);
}

gf_audio_perturb_params gf_audio_perturb_default_params(bool noise, bool speed, bool shift) {
    gf_audio_perturb_params p = {1, 1, 1, 0, 0};
    if (speed) p.speed_lo = 0.9, p.speed_hi = 1.1;
    if (noise) p.snr_lo_db = 10, p.snr_hi_db = 30;
    if (shift) p.shift_s = 0.1;
    return p;
}

/* Moves y[0..n) by a whole number of samples uniform in [-max, max] (later: positive), zeros
 * coming in. */
static void shift(float *y, int64_t n, int64_t max, gf_rng *r) {
    const int64_t k = (int64_t)gf_rng_below(r, (uint64_t)(2 * max + 1)) - max;
    if (k == 0) return;
    if (k >= n || -k >= n) {
        memset(y, 0, sizeof(float) * (size_t)n);
    } else if (k > 0) {
        memmove(y + k, y, sizeof(float) * (size_t)(n - k));
        memset(y, 0, sizeof(float) * (size_t)k);
    } else {
        memmove(y, y - k, sizeof(float) * (size_t)(n + k));
        memset(y + n + k, 0, sizeof(float) * (size_t)(-k));
    }
}

float *gf_audio_perturb(const float *x, int64_t n, double rate, const gf_audio_perturb_params *p,
                        uint64_t seed, int64_t *n_out, char *err, size_t err_cap) {
    if (!x || n <= 0 || !p || !n_out || !(rate > 0) || !(p->speed_lo > 0.25) ||
        !(p->speed_hi <= 4) || !(p->speed_lo <= p->speed_hi) || !(p->shift_s >= 0) ||
        p->shift_s > 60) {
        errf(err, err_cap, "audio perturb: need samples, a positive rate, 0.25 < speed_lo <= "
             "speed_hi <= 4 and shift_s in [0, 60]");
        return NULL;
    }
    gf_rng r;
    gf_rng_seed(&r, seed);
    const double speed = uniform(&r, p->speed_lo, p->speed_hi);
    float *y;
    if (speed != 1.0) { /* played faster: the same samples taken as rate * speed */
        y = gf_audio_resample(x, n, rate * speed, rate, n_out, err, err_cap);
    } else {
        y = malloc(sizeof(float) * (size_t)n);
        if (y) memcpy(y, x, sizeof(float) * (size_t)n), *n_out = n;
        else errf(err, err_cap, "audio perturb: out of memory");
    }
    if (y && p->shift_s > 0) shift(y, *n_out, (int64_t)floor(p->shift_s * rate), &r);
    if (!y || p->snr_lo_db > p->snr_hi_db) return y;
    double power = 0;
    for (int64_t i = 0; i < *n_out; i++) power += (double)y[i] * y[i];
    power /= (double)(*n_out > 0 ? *n_out : 1);
    const double snr = uniform(&r, p->snr_lo_db, p->snr_hi_db);
    const float sd = (float)sqrt(power / pow(10.0, snr / 10.0));
    for (int64_t i = 0; power > 0 && i < *n_out; i++) y[i] += sd * gf_rng_normal(&r);
    return y;
}
