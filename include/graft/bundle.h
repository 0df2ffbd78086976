/* graft bundle: a trained classifier in one safetensors file — the weights together with what it
 * takes to use them: the model (a zoo name and its widths, or a model spec), the class names,
 * the sample shape and the preprocessing of the training data (normalisation statistics, the
 * image size and channels, a table's column names), kept as "graft.*" metadata. `graft train`,
 * `finetune`, `distill` and `demo` write bundles and `eval`, `predict` and `finetune` read
 * them; a C program does both with these functions:
 *
 *     gf_bundle *b = gf_bundle_load(ctx, "model.safetensors", NULL);
 *     gf_tensor *x = gf_bundle_read(ctx, b, "cat.png", NULL);   // read and normalised as trained
 *     gf_tensor *p = gf_bundle_predict(ctx, b, x);              // [1, classes] probabilities
 *
 * The metadata keys (docs/CLI.md, "Weight files"):
 *   graft.model      a zoo name, or "spec"          graft.spec       the model spec, minified JSON
 *   graft.hidden     mlp widths, [256,128]          graft.input      the sample shape, [1,28,28]
 *   graft.classes    class names in label order     graft.features   a table's feature columns
 *   graft.columns    every column of the training table, in file order (with the label's)
 *   graft.normalize  {"mean": [...], "std": [...]}  graft.image      {"channels","height","width"}
 *   graft.missing    a table's missing features: {"strategy", "values"} (mean, median, zero
 *                    fill values of the training part, filled in by gf_bundle_read_csv)
 *   graft.categorical  a table's one-hot encoded text columns: [{"column", "at", "values"}]
 *                    (gf_csv_category: the features at..at+n-1 are "column=value")
 *   graft.task       "regression" (absent: classes)
 *   graft.target     a regression target: {"name", "mean", "std"}, predictions are
 *                    output * std + mean
 *   graft.text       text data: the vocabulary and tokeniser settings (gf_text_vocab_to_json)
 *   graft.audio      audio data: the front end (gf_audio_frontend) as {"sample_rate",
 *                    "clip_seconds", "n_fft", "win_length", "hop_length", "n_mels", "f_min",
 *                    "f_max", "log_offset", "align"} ("align": "middle" or "energy",
 *                    gf_audio_align; absent: middle)
 *   graft.speech     a classifier on a speech embedding: how to rebuild it (graft/speech.h)
 *   graft.data, graft.command, graft.version        provenance
 *   graft.base, graft.base_map, graft.base_sha256   a delta (gf_transfer_delta_save) and its base */
#ifndef GRAFT_BUNDLE_H
#define GRAFT_BUNDLE_H

#include "graft/audio.h"
#include "graft/csv.h"
#include "graft/dataspec.h"
#include "graft/nn.h"
#include "graft/safetensors.h"
#include "graft/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a bundle records besides its tensors. Strings and arrays are malloc'd and owned by the
 * struct (gf_bundle_info_free); fields not recorded are NULL / 0. */
typedef struct gf_bundle_info {
    char *model;                 /* graft.model: zoo name ("mlp", "cnn-small", ...), "spec" or
                                  * "tfjs" */
    char *spec;                  /* graft.spec: the model spec when model is "spec" */
    char *tfjs;                  /* graft.tfjs when model is "tfjs": a classifier on a
                                  * TensorFlow.js trunk (graft/tfjs.h), as JSON {"from": the
                                  * model.json's path, "cut", "input_size", "adapt_channels"} */
    char *speech;                /* graft.speech when model is "speech": a classifier on
                                  * openWakeWord's speech embedding (graft/speech.h), as JSON
                                  * {"from": embedding_model.onnx, "front": melspectrogram.onnx,
                                  * "pool": "flat", "mean" or "max"}; the clip is graft.input
                                  * [1, N] */
    int hidden[4];               /* graft.hidden: the mlp's hidden widths, 0-terminated */
    int in_ndim;                 /* graft.input: the sample shape (no batch dimension) */
    int64_t in_shape[GF_DS_MAX_DIMS];
    int n_classes;               /* graft.classes */
    char **class_names;
    int n_features;              /* graft.features */
    char **feature_names;
    int n_columns;               /* graft.columns: the training table's columns in file order,
                                  * the label's included (how to read rows that still hold it) */
    char **column_names;
    int norm_channels;           /* graft.normalize: per channel (shape[0]) of the input */
    float *norm_mean, *norm_std;
    int image_channels, image_h, image_w; /* graft.image: how an image file is read */
    char *missing;               /* graft.missing: "drop", "mean", "median", "zero" or NULL */
    int n_impute;                /* its fill values, one per feature (mean, median, zero) */
    float *impute;
    int n_categorical;           /* graft.categorical: the one-hot encoded text columns */
    gf_csv_category *categorical;
    bool regression;             /* graft.task "regression": one output, no classes */
    char *target_name;           /* graft.target: the target column, its scaling (the */
    float target_mean, target_std; /* model's output times std plus mean; 0 and 1 unscaled) */
    char *data;                  /* graft.data: the data spec trained on */
    char *command;               /* graft.command: the command that wrote the file */
    char *base;                  /* graft.base: the base file of a delta */
    bool is_delta;               /* graft.base_sha256 is there: the file holds only the tensors
                                  * that differ from its base */
    gf_text_vocab *vocab;        /* graft.text: text data's vocabulary and tokeniser settings
                                  * (owned: one reference), or NULL */
    bool has_audio;              /* graft.audio: how audio files become the model's input */
    gf_audio_frontend audio;
} gf_bundle_info;

/* Reads the graft.* metadata of an open file into *info (zeroed first; missing keys stay
 * empty). Checks each value before using it (JSON size against the context's limits, sizes in
 * range, the class count against the classes limit): GF_ERR_FORMAT naming the file, the key and
 * the value, with *info left empty. */
gf_status gf_bundle_info_read(gf_ctx *ctx, const gf_st_file *f, gf_bundle_info *info);
/* The same from a path (gf_st_open and its checks). */
gf_status gf_bundle_info_load(gf_ctx *ctx, const char *path, gf_bundle_info *info);
/* Records the data a model is trained on: sample shape, class and feature names, normalisation,
 * image settings and spec of data (replacing info's; on failure info is left empty). */
gf_status gf_bundle_info_set_data(gf_ctx *ctx, gf_bundle_info *info, const gf_ds_parts *data);
/* Records a text vocabulary (and its tokeniser settings) as graft.text, replacing info's
 * (vocab NULL: none); the info takes a reference. gf_bundle_info_set_data does it for text
 * data; gf_bundle_info_read gives it back in info->vocab. */
void gf_bundle_info_set_text(gf_bundle_info *info, gf_text_vocab *vocab);
/* A deep copy of src into *dst (zeroed first). */
gf_status gf_bundle_info_copy(gf_ctx *ctx, gf_bundle_info *dst, const gf_bundle_info *src);
void gf_bundle_info_free(gf_bundle_info *info);

typedef struct gf_bundle_opts {
    const char *model;        /* a zoo name or a model spec file (.json): the model to build,
                               * in place of the one the file names (gf_bundle_new: NULL is
                               * "mlp") */
    int hidden[4];            /* mlp widths, 0-terminated; hidden[0] == 0: the file's, else the
                               * zoo's (256, 128) */
    const char *base;         /* loading a delta: its base file; NULL: the path the delta
                               * records (graft.base) */
    const char *command;      /* recorded as graft.command; NULL: keep the file's */
    int64_t max_image_pixels; /* gf_bundle_read_image's pixel limit; 0: GF_IMAGES_MAX_PIXELS */
} gf_bundle_opts;

gf_bundle_opts gf_bundle_default_opts(void);

/* A classifier with its description. The fields are the caller's to read; model may be taken
 * (set it to NULL: gf_bundle_free then leaves it) or changed in place (a new head, adapters). */
typedef struct gf_bundle {
    gf_module *model;
    gf_bundle_info info;
    char head[128];           /* dotted path of the classifier head ("classifier.3", "head") */
    int64_t max_image_pixels;
} gf_bundle;

/* Builds the untrained classifier info describes — the zoo model info->model (the mlp with
 * info->hidden) or the spec info->spec, with opts->model / ->hidden in their place — for
 * samples of shape info->in_shape (a spec without it: the spec's "input"). n_classes > 0: a
 * zoo model gets that many outputs and a spec must give that many (and its "out": "classes"
 * means that many); <= 0: the zoo's 10, or whatever the spec gives ("classes": info's class
 * count). rng (NULL: the context RNG) draws the initial weights. The bundle keeps a copy of
 * info with the model as built: a spec's text resolved ("input" and "classes" as numbers,
 * gf_spec_resolve) and the sample shape it gave. Errors: no model named, no sample shape, a
 * zoo convolution net on samples that are not [C, H, W] ("model cnn-small needs images ..."),
 * the spec's own errors (naming the layer), a spec that does not end in [classes]. Returns a
 * new bundle (gf_bundle_free) or NULL. */
/* A regression bundle (info->regression) with n_classes <= 0 gets one output. */
gf_bundle *gf_bundle_build(gf_ctx *ctx, const gf_bundle_info *info, int n_classes,
                           const gf_bundle_opts *opts, gf_rng *rng);
/* A fresh classifier for data: opts->model (NULL: "mlp") for data's sample shape and classes,
 * with data's description (gf_bundle_info_set_data) recorded. */
gf_bundle *gf_bundle_new(gf_ctx *ctx, const gf_ds_parts *data, const gf_bundle_opts *opts,
                         gf_rng *rng);
/* Loads the weights of path into b->model: every tensor must fit (strict: a missing,
 * unexpected or mismatched key loads nothing; "PATH does not fit the model: ...", the details
 * in *report when report is not NULL, free with gf_weights_report_free); a delta (graft.base_sha256)
 * through its base (base, else its graft.base), whose SHA-256 must match, with the key renaming
 * it was written with (graft.base_map). */
gf_status gf_bundle_load_weights(gf_ctx *ctx, gf_bundle *b, const char *path, const char *base,
                                 gf_weights_report **report);
/* gf_bundle_info_load + gf_bundle_build (the classes the file records) +
 * gf_bundle_load_weights: the trained classifier of a file written by gf_bundle_save or
 * `graft train`. opts may be NULL. NULL with a context error. */
gf_bundle *gf_bundle_load(gf_ctx *ctx, const char *path, const gf_bundle_opts *opts);

/* Writes b->model's state_dict with b->info as graft.* metadata (and graft.version), then
 * n_extra more key/value pairs (extra[2i], extra[2i + 1]), atomically. A spec model's stored
 * spec gets the head's output size of the model as it stands (a head replaced since the build,
 * gf_transfer_replace_head, is described as saved). */
gf_status gf_bundle_save(gf_ctx *ctx, const gf_bundle *b, const char *path,
                         const char *const *extra, int n_extra);
/* The same as a delta against base (gf_transfer_delta_save: the tensors that differ from base, read
 * through base_map, tied to it by SHA-256), with the metadata added; *n_written (may be NULL)
 * gets the tensor count. */
gf_status gf_bundle_save_delta(gf_ctx *ctx, const gf_bundle *b, const char *base,
                               const gf_weights_options *base_map, const char *path,
                               const char *const *extra, int n_extra, int *n_written);
void gf_bundle_free(gf_bundle *b);

/* Name of class k (borrowed), or NULL when k is out of range or the file names no classes. */
const char *gf_bundle_class_name(const gf_bundle *b, int k);
/* The recorded normalisation as a transform (free with gf_tf_free); NULL when there is none
 * (check gf_ctx_status for an error). */
gf_tf *gf_bundle_transform(gf_ctx *ctx, const gf_bundle_info *info);

/* True when path names an image by its extension (.png .jpg .jpeg .bmp .pgm .ppm .pnm, and
 * .gif .tga .psd .hdr, which the decoder refuses by name), any case. */
bool gf_bundle_is_image_file(const char *path);
/* One image file as the model's input, prepared as the training images were: decoded, turned
 * to the recorded channels (graft.image, else the sample shape), resized so the shorter side
 * fits and centre-cropped to the sample's height and width, scaled to [0, 1], normalised.
 * Returns a new persistent tensor [1, C, H, W] (gf_tensor_free), or NULL with an error (a model
 * that does not take images names its sample shape; the decoder's errors name the file). */
gf_tensor *gf_bundle_read_image(gf_ctx *ctx, const gf_bundle *b, const char *path);
/* The feature rows of a CSV file as the model's inputs (gf_csv_load_rows_with the recorded
 * feature and column names: a header selects and orders the columns by name; rows without one
 * hold the features, or every column of the training table, whose feature columns are taken;
 * sklearn's first line is skipped), normalised: a new persistent tensor [n, F]. lines (may be
 * NULL) receives a malloc'd array of each row's line number. */
gf_tensor *gf_bundle_read_csv(gf_ctx *ctx, const gf_bundle *b, const char *path,
                              int64_t **lines);
/* The same with how the file is laid out (params: header, skip_lines, delimiter; NULL: the
 * defaults; its names and columns are ignored: the bundle's are used). */
gf_tensor *gf_bundle_read_csv_with(gf_ctx *ctx, const gf_bundle *b, const char *path,
                                   const gf_csv_rows_params *params, int64_t **lines);
/* gf_bundle_read_csv_with that also gives (*unseen, may be NULL) how many text values were not
 * among their column's categories (graft.categorical; encoded as zeros). */
gf_tensor *gf_bundle_read_csv_counted(gf_ctx *ctx, const gf_bundle *b, const char *path,
                                      const gf_csv_rows_params *params, int64_t **lines,
                                      int64_t *unseen);
/* Texts as the model's input, tokenised as the training text was (the recorded vocabulary and
 * settings, graft.text) and cut or padded to the sample length: a new persistent tensor
 * [n, T] of ids. An error for a bundle without a vocabulary, or invalid UTF-8 (naming the
 * text). */
gf_tensor *gf_bundle_read_texts(gf_ctx *ctx, const gf_bundle *b, const char *const *texts,
                                int64_t n);
/* The texts of a file (gf_text_read: .txt one per line, .jsonl/.json objects with "text", .csv
 * and .tsv with a "text" column; labels, when present, are ignored) as gf_bundle_read_texts
 * gives them; lines (may be NULL) receives a malloc'd array of each text's line. */
gf_tensor *gf_bundle_read_text_file(gf_ctx *ctx, const gf_bundle *b, const char *path,
                                    int64_t **lines);
/* True when path names an audio file by its extension (.wav .flac .ogg), any case. */
bool gf_bundle_is_audio_file(const char *path);
/* One audio file as the model's input, prepared as the training clips were (graft.audio):
 * decoded to mono at the recorded rate, cropped or zero-padded to the clip length (about the
 * file's middle or its centre of energy, as recorded), log-mel features, normalised: a new
 * persistent tensor [1, 1, n_mels, frames]; for a model that takes the waveform (graft.input
 * [1, clip samples]: a speech embedding, graft.speech) the fitted clip [1, 1, samples]. An
 * error for a bundle without graft.audio (naming the file and the key) or whose graft.input
 * is not the front end's shape; the decoder's errors name the file. */
gf_tensor *gf_bundle_read_audio(gf_ctx *ctx, const gf_bundle *b, const char *path);
/* Keyword spotting with the bundle's model (graft/audio.h, gf_audio_stream): a stream whose
 * windows are turned into features (or fitted waveforms, for a model that takes them: the
 * params' waveform is set from the bundle) as the training clips were, normalised and
 * classified by b->model (in evaluation mode, on a context of its own with ctx's threads and
 * limits, so ctx's arena tensors are untouched). b must outlive the stream. params NULL: the defaults. */
gf_audio_stream *gf_bundle_audio_stream(gf_ctx *ctx, gf_bundle *b,
                                        const gf_audio_stream_params *params);
/* gf_bundle_read_audio for an audio file of a bundle with graft.audio, gf_bundle_read_image
 * for an image file (gf_bundle_is_image_file), gf_bundle_read_text_file
 * for a bundle of text data, else gf_bundle_read_csv; for an image *lines is set to NULL. */
gf_tensor *gf_bundle_read(gf_ctx *ctx, const gf_bundle *b, const char *path, int64_t **lines);
/* Class probabilities (softmax of the logits) for a batch x (a regression bundle: the
 * predictions [n, 1] in the target's units, output * std + mean) [n, sample...] as prepared by
 * gf_bundle_read: the model runs in evaluation mode without autograd (both restored after).
 * Returns an arena tensor [n, classes], or NULL with an error (a model whose output is not
 * [n, classes], or not the recorded class count). */
gf_tensor *gf_bundle_predict(gf_ctx *ctx, gf_bundle *b, const gf_tensor *x);

#ifdef __cplusplus
}
#endif
#endif
