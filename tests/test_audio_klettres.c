/* Real recordings through the audio reader: Debian's klettres-data ships spoken letters as
 * Ogg/Vorbis (/usr/share/klettres/LANG/alpha/NAME.ogg, GPL-2+, read where installed, never copied
 * into graft). A few of them must decode to finite, non-silent mono clips at 16 kHz of a plausible
 * length, and a folder of them must load as audio: data. Skipped (77) without the package or
 * without audio support. */
#define _POSIX_C_SOURCE 200809L
#include "graft/graft.h"
#include "testutil.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ROOT "/usr/share/klettres"

static gf_ctx *ctx;

/* Up to max .ogg files of ROOT/<lang>/alpha, in name order. */
static int list_files(const char *lang, char files[][512], int max) {
    char dir[256];
    snprintf(dir, sizeof dir, ROOT "/%s/alpha", lang);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort), got = 0;
    for (int i = 0; i < n; i++) {
        const size_t l = strlen(names[i]->d_name);
        if (got < max && l > 4 && strcmp(names[i]->d_name + l - 4, ".ogg") == 0)
            snprintf(files[got++], 512, "%s/%s", dir, names[i]->d_name);
        free(names[i]);
    }
    free(names);
    return got;
}

static void check_file(const char *path) {
    int64_t n = 0;
    float *x = gf_audio_read(ctx, path, NULL, &n);
    CHECK(x != NULL);
    if (!x) {
        fprintf(stderr, "%s: %s\n", path, gf_ctx_error(ctx));
        gf_ctx_clear_error(ctx);
        return;
    }
    double power = 0, peak = 0;
    bool finite = true;
    for (int64_t i = 0; i < n; i++) {
        finite &= isfinite(x[i]);
        power += (double)x[i] * x[i];
        peak = fmax(peak, fabs(x[i]));
    }
    CHECK(finite);
    CHECK(n > 1600 && n < 16000 * 10); /* a spoken letter: 0.1 to 10 s */
    CHECK(power / (double)n > 1e-6);
    if (peak > 1.5) fprintf(stderr, "%s: peak %g\n", path, peak);
    CHECK(peak <= 1.5); /* Vorbis may overshoot full scale a little */
    free(x);
}

int main(void) {
    struct stat st;
    if (!gf_audio_available() || stat(ROOT "/en/alpha", &st) != 0) {
        printf("test_audio_klettres: skipped (needs klettres-data and audio support)\n");
        return 77;
    }
    ctx = gf_ctx_new(NULL);
    const char *langs[] = {"en", "fr", "de", "ar"};
    int total = 0;
    for (int l = 0; l < 4; l++) {
        char files[4][512];
        int n = list_files(langs[l], files, 4);
        for (int i = 0; i < n; i++) check_file(files[i]);
        total += n;
    }
    CHECK(total >= 4);
    /* ROOT/<lang>/ as a class folder each: alpha/ and any other subfolder walked inside it */
    gf_audio_folder_params p = gf_audio_folder_default_params();
    gf_images_report rep;
    gf_ds *ds = gf_audio_load_folder(ctx, ROOT "/en", &p, &rep);
    CHECK(ds != NULL);
    if (!ds) fprintf(stderr, "klettres en: %s\n", gf_ctx_error(ctx));
    if (ds) {
        CHECK(gf_ds_count(ds) > 20);
        CHECK(gf_ds_shape(ds)[1] == 40 && gf_ds_shape(ds)[2] == 101);
        printf("klettres en: %lld clips in %d classes\n", (long long)gf_ds_count(ds),
               gf_ds_n_classes(ds));
    }
    gf_ds_free(ds);
    gf_ctx_free(ctx);
    return test_finish("test_audio_klettres");
}
