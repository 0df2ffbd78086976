/* --data SPEC and the options that cut it, handed to the library's gf_ds_open (graft/dataspec.h):
 * the options become gf_ds_open_params, a spec the library refuses before reading anything is a
 * usage error, and what image folder walks skipped is shown as a note. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdlib.h>
#include <string.h>

void cli_data_free(cli_data *d) { gf_ds_parts_free(d); }

void cli_data_describe(const cli_data *d, char *buf, size_t cap) {
    char sh[64];
    gf_dims_str(d->ndim, d->shape, sh, sizeof sh);
    char what[160];
    if (d->regression)
        snprintf(what, sizeof what, "regression target %s", d->target_name ? d->target_name : "");
    else if (d->label_steps > 0)
        snprintf(what, sizeof what, "%d tags (a class per token)", d->n_classes);
    else
        snprintf(what, sizeof what, "%d classes", d->n_classes);
    snprintf(buf, cap, "%s: %lld train / %lld val / %lld test, %s, samples %s", d->spec,
             (long long)(d->train ? gf_ds_count(d->train) : 0),
             (long long)(d->val ? gf_ds_count(d->val) : 0),
             (long long)(d->test ? gf_ds_count(d->test) : 0), what, sh);
}

gf_ds *cli_data_part(const cli_data *d, const char *part) {
    if (strcmp(part, "train") == 0) return d->train;
    if (strcmp(part, "val") == 0) return d->val;
    return strcmp(part, "test") == 0 ? d->test : NULL;
}

/* What an image folder's walk left out, on stderr: links not followed change what is trained on,
 * so they are never skipped in silence. */
static void note_skipped(const cli_opts *o, const char *spec, const gf_images_report *r) {
    if (!r->first_skipped[0]) return;
    char what[512] = "";
    size_t at = 0;
    const struct {
        int64_t n;
        const char *one, *many;
    } parts[4] = {
        {r->links_outside, "1 symbolic link leading outside the folder (--follow-links follows it)",
         " symbolic links leading outside the folder (--follow-links follows them)"},
        {r->links_inside, "1 symbolic link inside the folder (its target is read where it lies)",
         " symbolic links inside the folder (their targets are read where they lie)"},
        {r->links_broken, "1 broken symbolic link", " broken symbolic links"},
        {r->duplicates, "1 file or folder reached twice (same inode)",
         " files or folders reached twice (same inode)"},
    };
    for (int i = 0; i < 4 && at < sizeof what; i++) {
        if (!parts[i].n) continue;
        if (parts[i].n == 1)
            at += (size_t)snprintf(what + at, sizeof what - at, "%s%s", at ? ", " : "",
                                   parts[i].one);
        else
            at += (size_t)snprintf(what + at, sizeof what - at, "%s%lld%s", at ? ", " : "",
                                   (long long)parts[i].n, parts[i].many);
    }
    cli_log(o, "graft %s: note: %s: skipped %s; first: %s\n", o->cmd, spec, what,
            r->first_skipped);
}

/* The options that belong to one kind of data, refused for another in the options' own words
 * (the library names its fields). */
static int check_kind_options(const cli_opts *o) {
    const char *kind = gf_ds_spec_kind(o->data);
    const bool csv = kind && strcmp(kind, "csv") == 0, img = kind && strcmp(kind, "images") == 0;
    const bool text = kind && strcmp(kind, "text") == 0;
    const bool audio = kind && strcmp(kind, "audio") == 0;
    if ((o->tokenizer || o->lowercase || o->byte_fallback || o->min_count || o->max_vocab ||
         o->max_len || o->skip_unlabelled) && !text)
        return cli_usage_error(o->cmd, "--tokenizer, --lowercase, --byte-fallback, --min-count, "
                                       "--max-vocab, --max-len and --skip-unlabelled apply to "
                                       "text: data");
    if ((o->label_column && !csv && !text) || (o->features && !csv))
        return cli_usage_error(o->cmd, "--label-column and --features apply to csv: data "
                                       "(--label-column also to text: data)");
    if ((o->csv_header >= 0 || o->skip_lines || o->delimiter) && !csv)
        return cli_usage_error(o->cmd, "--csv-header, --skip-lines and --delimiter apply to csv: "
                                       "data");
    if ((o->image_size || o->grayscale) && !img)
        return cli_usage_error(o->cmd, "--image-size and --grayscale apply to images: data");
    if (o->follow_links && !img && !audio)
        return cli_usage_error(o->cmd, "--follow-links applies to images: and audio: data");
    if ((o->sample_rate || o->clip_seconds > 0 || o->n_mels || o->waveform || o->align) &&
        !audio)
        return cli_usage_error(o->cmd, "--sample-rate, --clip-seconds, --n-mels, --waveform and "
                                       "--align apply to audio: data");
    if (o->max_image_pixels && !img)
        return cli_usage_error(o->cmd, "--max-image-pixels applies to images: data");
    if (o->augment && csv)
        return cli_usage_error(o->cmd, "--augment applies to image data (samples [C, H, W]); this "
                                       "data has samples of 1 dimension(s)");
    return CLI_CONTINUE;
}

/* The note that the table was read in scikit-learn's layout, which --csv-header changes. */
static void note_sklearn(const cli_opts *o, const cli_data *d) {
    if (o->csv_header >= 0 || d->csv.header != GF_CSV_SKLEARN_HEADER) return;
    char names[256] = "";
    size_t at = 0;
    for (int k = 0; k < d->n_classes && at < sizeof names; k++)
        at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", k ? ", " : "",
                               d->class_names[k]);
    const int64_t rows = (d->train ? gf_ds_count(d->train) : 0) +
                         (d->val ? gf_ds_count(d->val) : 0) + (d->test ? gf_ds_count(d->test) : 0);
    cli_log(o, "graft %s: note: %s reads as scikit-learn's layout (first line: %lld rows, %lld "
               "features, the classes %s); --csv-header first reads that line as column names\n",
            o->cmd, d->spec, (long long)rows, (long long)d->shape[0], names);
}

/* The library's error in the command line's words: an option to set, not a parameter. */
static int fail_open(const cli_opts *o, gf_ctx *ctx) {
    const char *e = gf_ctx_error(ctx);
    if (strstr(e, ": missing value '"))
        return cli_fail(o->cmd, "%s (--missing drop, mean, median or zero handles it)", e);
    if (o->categorical_error && strstr(e, ": not a number: '"))
        return cli_fail(o->cmd, "%s (--categorical auto one-hot encodes text columns)", e);
    if (strstr(e, ": not a number: '"))
        return cli_fail(o->cmd, "%s (a word in a column of numbers; columns of text are one-hot "
                                "encoded)", e);
    const char *mc = strstr(e, "raise max_categories)");
    if (mc)
        return cli_fail(o->cmd, "%.*sraise --max-categories)", (int)(mc - e), e);
    const char *lib = strstr(e, ": set a resize and crop to give every image one size");
    if (lib)
        return cli_fail(o->cmd, "%.*s: give --image-size N to resize and centre-crop every image "
                                "to N x N", (int)(lib - e), e);
    return cli_fail_ctx(o->cmd, ctx);
}

/* Reads images as a trained model's weights say (graft.image) unless the options say. */
static void image_settings(const cli_opts *o, const gf_bundle_info *meta, gf_ds_open_params *p) {
    if (!meta || !meta->image_channels || o->image_size || o->grayscale) return;
    const char *kind = gf_ds_spec_kind(o->data);
    if (!kind || strcmp(kind, "images") != 0) return;
    p->grayscale = meta->image_channels == 1;
    if (meta->image_h == meta->image_w) p->image_size = meta->image_h;
    else {
        p->image_height = meta->image_h;
        p->image_width = meta->image_w;
    }
    cli_log(o, "graft %s: note: images read as the weights were trained (graft.image): %s, "
               "resized and centre-cropped to %dx%d (--image-size and --grayscale change it)\n",
            o->cmd, meta->image_channels == 1 ? "grey" : "RGB", meta->image_w, meta->image_h);
}

/* Audio as the weights' front end (graft.audio) computes features; eval of weights without one
 * on audio is refused (their features are not known). */
static int audio_settings(const cli_opts *o, const gf_bundle_info *meta, gf_ds_open_params *p) {
    const char *w = o->weights ? o->weights : o->from ? o->from : "the weights";
    const char *kind = gf_ds_spec_kind(o->data);
    if (!meta || !kind || strcmp(kind, "audio") != 0) return CLI_CONTINUE;
    if (!meta->has_audio) {
        if (strcmp(o->cmd, "eval") != 0) return CLI_CONTINUE;
        return cli_usage_error(o->cmd, "%s records no audio front end (graft.audio, written "
                                       "when a model is trained on audio: data): the features "
                                       "it was trained on are not known", w);
    }
    if (o->sample_rate || o->clip_seconds > 0 || o->n_mels || o->align)
        return cli_usage_error(o->cmd, "--sample-rate, --clip-seconds, --n-mels and --align: %s "
                                       "was trained on features of its own (graft.audio: %d Hz, "
                                       "%g s clips, %d mel bands, aligned on the %s), which are "
                                       "used", w, meta->audio.sample_rate,
                               meta->audio.clip_seconds, meta->audio.mel.n_mels,
                               meta->audio.align == GF_AUDIO_ALIGN_ENERGY ? "energy" : "middle");
    p->audio = &meta->audio;
    return CLI_CONTINUE;
}

/* The task: --task, else what the weights were trained for (their target scaling with it),
 * else found from the data. */
static int task_settings(const cli_opts *o, const gf_bundle_info *meta, gf_ds_open_params *p) {
    p->task = (gf_ds_task)o->task_kind;
    p->standardize_target = o->target_scale;
    p->missing = (gf_ds_missing)o->missing;
    p->categorical = o->categorical_error ? GF_DS_CATEGORICAL_ERROR : GF_DS_CATEGORICAL_AUTO;
    p->max_categories = o->max_categories;
    /* commands without --task (distill, compare, multitask) work on classes */
    if (strcmp(o->cmd, "train") != 0 && strcmp(o->cmd, "finetune") != 0 &&
        strcmp(o->cmd, "eval") != 0 && strcmp(o->cmd, "lr-find") != 0)
        p->task = GF_DS_TASK_CLASSIFICATION;
    if (!meta || (!meta->regression && !meta->n_classes)) return CLI_CONTINUE;
    const gf_ds_task trained = meta->regression ? GF_DS_TASK_REGRESSION : GF_DS_TASK_CLASSIFICATION;
    if (p->task != GF_DS_TASK_AUTO && p->task != trained)
        return cli_usage_error(o->cmd, "--task %s: the weights were trained for %s",
                               p->task == GF_DS_TASK_REGRESSION ? "regression" : "classification",
                               meta->regression ? "regression" : "classification");
    const char *kind = gf_ds_spec_kind(o->data);
    if (!kind || strcmp(kind, "csv") != 0) return CLI_CONTINUE;
    p->task = trained;
    static const char *const modes[] = {"error", "drop", "mean", "median", "zero"};
    for (int k = 1; meta->missing && k < 5; k++)
        if (strcmp(meta->missing, modes[k]) == 0) p->missing = (gf_ds_missing)k;
    p->impute = meta->impute;
    p->n_impute = meta->n_impute;
    p->categories = meta->categorical;
    p->n_categories = meta->n_categorical;
    if (meta->regression) {
        p->target_mean = meta->target_mean;
        p->target_std = meta->target_std > 0 ? meta->target_std : 1.0f;
    }
    return CLI_CONTINUE;
}

/* The one-line warning that a numeric label column was taken as a regression target. */
static void note_task(const cli_opts *o, const cli_data *d) {
    const int64_t rows = (d->train ? gf_ds_count(d->train) : 0) +
                         (d->val ? gf_ds_count(d->val) : 0) + (d->test ? gf_ds_count(d->test) : 0);
    if (d->dropped)
        cli_log(o, "graft %s: note: left out %lld rows with a missing feature value (--missing "
                   "drop)\n", o->cmd, (long long)d->dropped);
    if (d->unseen)
        cli_log(o, "graft %s: warning: %lld text values are not among the categories learnt from "
                   "the training data (encoded as all zeros)\n", o->cmd, (long long)d->unseen);
    if (!d->task_detected) return;
    cli_log(o, "graft %s: warning: the label column %s holds %lld distinct numbers in %lld rows: "
               "taken as a regression target (--task classification reads it as classes)\n",
            o->cmd, d->target_name ? d->target_name : "", (long long)d->target_distinct,
            (long long)rows);
}

/* --vectors-vocab: the words of --vectors, for the vocabulary built from the training part. */
static gf_text_vectors *vocab_vectors(gf_ctx *ctx, const cli_opts *o) {
    gf_text_vectors_params vp = gf_text_vectors_default_params();
    vp.max_words = o->max_vocab;
    gf_text_vectors *v = gf_text_vectors_load(ctx, o->vectors, &vp);
    if (!v) cli_fail(o->cmd, "--vectors %s: %s", o->vectors, gf_ctx_error(ctx));
    return v;
}

/* A speech classifier's bundle (graft.model "speech") takes waveforms of the length it was
 * trained on. */
static void speech_settings(const gf_bundle_info *meta, gf_ds_open_params *p) {
    if (!meta || !meta->model || strcmp(meta->model, "speech") != 0 || meta->in_ndim != 2) return;
    p->waveform = true;
    const int rate = p->sample_rate > 0 ? p->sample_rate : 16000;
    p->clip_seconds = (double)meta->in_shape[1] / rate;
}

int cli_data_load(gf_ctx *ctx, const cli_opts *o, cli_data *d) {
    return cli_data_load_for(ctx, o, NULL, d);
}

int cli_data_load_for(gf_ctx *ctx, const cli_opts *o, const gf_bundle_info *meta, cli_data *d) {
    memset(d, 0, sizeof *d);
    if (!o->data) return cli_usage_error(o->cmd, "--data is required (e.g. --data fashion-mnist)");
    int rc = check_kind_options(o);
    if (rc != CLI_CONTINUE) return rc;
    gf_ds_open_params p = gf_ds_open_default_params();
    p.classes = o->classes;
    p.val_fraction = o->val >= 0 ? o->val : o->split[1];
    p.test_fraction = o->split[2];
    p.per_class = o->per_class;
    p.limit = o->limit;
    p.seed = o->seed;
    p.normalize = strcmp(o->normalize, "standard") == 0 ? GF_DS_NORMALIZE_STANDARD
                  : strcmp(o->normalize, "none") == 0   ? GF_DS_NORMALIZE_NONE
                                                        : GF_DS_NORMALIZE_AUTO;
    p.augment = o->augment;
    p.label_column = o->label_column;
    p.features = o->features;
    p.image_size = o->image_size;
    p.grayscale = o->grayscale;
    p.max_image_pixels = o->max_image_pixels;
    p.follow_links = o->follow_links;
    p.sample_rate = o->sample_rate;
    p.clip_seconds = o->clip_seconds;
    p.n_mels = o->n_mels;
    p.waveform = o->waveform;
    if (o->align) gf_audio_align_parse(o->align, &p.align);
    speech_settings(meta, &p);
    if (o->csv_header >= 0) p.csv_header = (gf_csv_header)o->csv_header;
    p.csv_skip_lines = o->skip_lines;
    p.csv_delimiter = o->delimiter;
    p.allow_empty_train = strcmp(o->cmd, "eval") == 0; /* eval --split 0,0,1 */
    image_settings(o, meta, &p);
    if (o->tokenizer)
        p.tokenizer = strcmp(o->tokenizer, "word") == 0   ? GF_TEXT_WORD
                      : strcmp(o->tokenizer, "char") == 0 ? GF_TEXT_CHAR
                                                          : GF_TEXT_BYTE;
    p.lowercase = o->lowercase;
    p.byte_fallback = o->byte_fallback;
    p.min_count = o->min_count;
    p.max_vocab = o->max_vocab;
    p.max_len = o->max_len;
    p.skip_unlabelled = o->skip_unlabelled;
    if (meta && meta->vocab && meta->in_ndim == 1) { /* text as the weights were trained on */
        p.vocab = meta->vocab;
        p.max_len = meta->in_shape[0];
        p.tag_names = (const char *const *)meta->class_names; /* tagged text: the model's tags */
        p.n_tag_names = meta->n_classes;
    }
    if ((rc = task_settings(o, meta, &p)) != CLI_CONTINUE ||
        (rc = audio_settings(o, meta, &p)) != CLI_CONTINUE)
        return rc;
    if (gf_ds_check_spec(ctx, o->data, &p) != GF_OK) return cli_usage_error(o->cmd, "%s", gf_ctx_error(ctx));
    gf_text_vectors *words = NULL;
    if (o->vectors_vocab && !o->vectors) return cli_usage_error(o->cmd, "--vectors-vocab needs --vectors FILE");
    if (o->vectors_vocab && !p.vocab && !(words = vocab_vectors(ctx, o))) return CLI_FAILED;
    p.vocab_vectors = words;
    gf_status st = gf_ds_open(ctx, o->data, &p, d);
    gf_text_vectors_free(words);
    for (int i = 0; i < 3; i++) note_skipped(o, o->data, &d->skipped[i]);
    if (st != GF_OK) {
        cli_data_free(d);
        return fail_open(o, ctx);
    }
    note_sklearn(o, d);
    note_task(o, d);
    if (d->own_test && o->split_given && o->split[2] > 0)
        cli_log(o, "graft %s: note: %s has its own test set; --split's test part is not used\n",
                o->cmd, o->data);
    return CLI_CONTINUE;
}
