/* libFuzzer target for the audio reader: the input goes through libsndfile's virtual I/O
 * (gf_audio_read_memory, graft's path for every file) and, when it decodes, through resampling
 * and the log-mel features. Any input gives either a clip of finite samples no longer than the
 * limit allows, or an error message — never a crash, a leak, a read out of bounds or an
 * allocation the header asked for but the bytes do not back. The last byte picks the output
 * rate; the limit is 4 seconds, so a header declaring hours must be refused before decoding. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "graft/graft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static gf_ctx *ctx;
    static gf_mel *mel;
    if (!ctx) {
        gf_ctx_params cp = gf_ctx_default_params();
        cp.n_threads = 1;
        cp.arena_bytes = 1 << 16;
        ctx = gf_ctx_new(&cp);
        mel = gf_mel_new(ctx, NULL); /* NULL without audio support: the reads fail too */
        gf_ctx_clear_error(ctx);
    }
    static const int rates[4] = {16000, 8000, 22050, 44100};
    gf_audio_params p = gf_audio_default_params();
    p.sample_rate = rates[size ? data[size - 1] & 3 : 0];
    p.max_seconds = 4.0;
    int64_t n = -1;
    float *x = gf_audio_read_memory(ctx, data, size, "fuzz", &p, &n);
    if (x) {
        /* resampling may add a few samples beyond the declared length's seconds */
        if (n < 1 || n > (int64_t)(p.max_seconds * p.sample_rate) + 64) abort();
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(x[i])) abort();
        if (mel && p.sample_rate == 16000 && n > 200) {
            float *f = malloc(sizeof(float) * 40 * (size_t)gf_mel_frames(mel, n));
            char err[256];
            if (!f || gf_mel_compute(mel, x, n, f, err, sizeof err) != GF_OK) abort();
            free(f);
        }
        free(x);
    } else if (gf_ctx_status(ctx) == GF_OK || gf_ctx_error(ctx)[0] == '\0') {
        abort(); /* a failure must say why */
    }
    gf_ctx_clear_error(ctx);
    return 0;
}
