/* The graft command line: one file per subcommand (cmd_*.c) over shared parts — options and
 * help (cli_opts.c), --data (cli_data.c, over the library's gf_ds_open), --model and weight
 * files (cli_model.c, over the library's bundles), the
 * training run with progress, Ctrl-C and checkpoints (cli_fit.c), output helpers (cli_util.c).
 * Exit codes: 0 success, 1 the run failed, 2 bad usage. */
#ifndef GRAFT_CLI_H
#define GRAFT_CLI_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "graft/graft.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };
/* A function that returns "go on" rather than an exit code. */
enum { CLI_CONTINUE = -1 };

/* ---- options -------------------------------------------------------------------------------- */

/* Option groups: a command accepts the options of the groups it names (a 64-bit set). */
#define G_COMMON (UINT64_C(1) << 0) /* --help --threads --seed --json --quiet */
#define G_DATA (UINT64_C(1) << 1) /* --data and how it is cut */
#define G_MODEL (UINT64_C(1) << 2) /* --model --hidden */
#define G_WEIGHTS (UINT64_C(1) << 3) /* --weights --base */
#define G_OPTIM (UINT64_C(1) << 4) /* --epochs --lr --optim --weight-decay --momentum --batch */
#define G_FT (UINT64_C(1) << 5) /* --from, freezing, heads, renames, LoRA */
#define G_DISTILL (UINT64_C(1) << 6) /* teacher and student */
#define G_PREDICT (UINT64_C(1) << 7) /* --input --top-k */
#define G_EVAL (UINT64_C(1) << 8) /* --part */
#define G_COMPARE (UINT64_C(1) << 9) /* strategies, label sweep, seeds */
#define G_DEMO (UINT64_C(1) << 10) /* --quick --no-cache */
#define G_REPORT (UINT64_C(1) << 11) /* --report */
#define G_LORA (UINT64_C(1) << 12) /* --lora-rank --lora-alpha --lora-targets */
#define G_MULTI (UINT64_C(1) << 13) /* --task */
#define G_SCHED (UINT64_C(1) << 14) /* --sched --warmup --clip-norm */
#define G_CKPT (UINT64_C(1) << 15) /* --patience --keep-best --checkpoint-dir --checkpoint-every --resume */
#define G_OUT (UINT64_C(1) << 16) /* --out */
#define G_LOSS (UINT64_C(1) << 17) /* --label-smoothing */
#define G_DATASRC (UINT64_C(1) << 18) /* --data */
#define G_LORA_FT (UINT64_C(1) << 19) /* --lora-dropout --lora-out (finetune only) */
#define G_STUDENT (UINT64_C(1) << 20) /* --student-model (distill only) */
#define G_TRAINDATA (UINT64_C(1) << 21) /* --per-class --augment (commands that train) */
#define G_LRFIND (UINT64_C(1) << 22) /* --start-lr --end-lr --num-it --no-stop-div (lr-find) */
#define G_EVALOUT (UINT64_C(1) << 23) /* --predictions (eval) */
#define G_DIST (UINT64_C(1) << 24) /* --dist-timeout --dist-bucket --dist-overlap --sync-bn (under mpirun) */
#define G_TASK (UINT64_C(1) << 25) /* --task classification|regression */
#define G_REGRESS (UINT64_C(1) << 26) /* --loss --huber-delta --target-scale --class-weight --missing --categorical (train, finetune) */
#define G_RUN (UINT64_C(1) << 27) /* --input --out --cut (graft run) */
#define G_TFJS (UINT64_C(1) << 28) /* --cut --input-size (TensorFlow.js models: finetune, inspect) */
#define G_PROBE (UINT64_C(1) << 32) /* --from --cuts --cut-sweep --input-size (probe) */
#define G_TEXT (UINT64_C(1) << 30) /* --tokenizer ... --vectors (text: data, train) */
#define G_EXPORT (UINT64_C(1) << 31) /* --input-shape --with-normalize (graft export) */
#define G_STREAM (UINT64_C(1) << 33) /* --stream --window --hop --threshold --background (predict) */
#define G_SPEECH (UINT64_C(1) << 34) /* --front --pool (a speech embedding: finetune, probe) */
/* What a training command takes. */
#define G_TRAIN (G_OPTIM | G_SCHED | G_CKPT | G_OUT | G_LOSS)

enum { CLI_MAX_LIST = 16 };

typedef struct cli_opts {
    const char *cmd;          /* "train", ... */
    /* common */
    int threads;              /* 0: all cores */
    uint64_t seed;
    bool json, quiet;
    /* data */
    const char *data;
    const char *classes;
    int64_t per_class;        /* 0: all */
    double split[3];          /* train, val, test fractions */
    bool split_given;
    double val;               /* < 0: not given */
    int64_t limit;            /* 0: none */
    const char *label_column, *features;
    int csv_header;           /* -1: found (sklearn's layout or a header); else gf_csv_header */
    int skip_lines;
    char delimiter;           /* 0: ',' */
    int image_size;           /* 0: keep */
    bool grayscale;
    int64_t max_image_pixels; /* 0: the library's default */
    bool follow_links;
    int sample_rate;          /* audio: 0: the library's default */
    double clip_seconds;      /* audio: 0: the library's default */
    int n_mels;               /* audio: 0: the library's default */
    bool waveform;            /* audio: samples are the waveform [1, samples], no features */
    const char *align;        /* --align: "middle" or "energy" (NULL: the command's default) */
    const char *augment;      /* NULL: none; "crop,flip", ... */
    const char *normalize;    /* "auto", "standard", "none" */
    int task_kind;            /* --task: gf_ds_task (GF_DS_TASK_AUTO: not given) */
    gf_loss_kind reg_loss;    /* --loss: GF_LOSS_MSE, GF_LOSS_L1, GF_LOSS_SMOOTH_L1 (huber) */
    bool reg_loss_given, huber;
    double huber_delta;       /* --huber-delta (default 1) */
    bool target_scale;        /* --target-scale standard (default) / none */
    bool class_weight_balanced; /* --class-weight balanced */
    int missing;              /* --missing: gf_ds_missing (default error) */
    bool categorical_error;   /* --categorical error (default auto: one-hot) */
    int max_categories;       /* --max-categories (0: the library's 64) */
    int64_t batch;
    /* model */
    const char *model;
    int hidden[4];
    bool hidden_given;
    /* weights */
    const char *weights, *base;
    /* training */
    int epochs;
    bool epochs_given;
    double lr;                /* <= 0: the optimizer's default */
    gf_optim_kind optim;
    double weight_decay;      /* < 0: the optimizer's default */
    double momentum;
    const char *sched;        /* "none", "cosine", "step", "onecycle" */
    int warmup;
    double label_smoothing, clip_norm;
    int patience;
    bool keep_best;
    const char *out, *checkpoint_dir, *resume, *report;
    int64_t checkpoint_every;
    /* fine-tuning */
    const char *from;
    const char *head;         /* "auto", "new", "keep" or a number */
    const char *freeze[CLI_MAX_LIST], *unfreeze[CLI_MAX_LIST];
    int n_freeze, n_unfreeze;
    int train_last;           /* < 0: not given */
    const char *bn_policy;
    double lr_trunk_factor;
    const char *strip_prefix;
    const char *rename[CLI_MAX_LIST];
    int n_rename;
    bool dry_run, strict, delta, verbose;
    gf_transfer_in_channels in_channels; /* --in-channels: adapt (0, the default) or error */
    const char *cut;          /* --cut: a layer, tensor or node to end the model at (TF.js, run) */
    int input_size;           /* --input-size: a TensorFlow.js model's input size (0: its own) */
    const char *cuts;         /* --cuts A,B,...: the layers graft probe cuts at */
    bool cut_sweep;           /* --cut-sweep: graft probe cuts at every block end */
    /* every --from in order (graft probe's candidates), with the --cuts and --cut given after
     * each (before the first: the first's); NULL: none given for it */
    const char *froms[CLI_MAX_LIST], *from_cuts[CLI_MAX_LIST], *from_cut[CLI_MAX_LIST];
    int n_from;
    const char *front;        /* --front: a speech embedding's mel model (NULL: beside --from) */
    const char *pool;         /* --pool: flat or mean (NULL: flat) */
    int lora_rank;            /* 0: no LoRA */
    double lora_alpha;        /* <= 0: the rank */
    double lora_dropout;
    const char *lora_targets, *lora_out;
    /* distillation */
    const char *teacher, *teacher_model, *student_model;
    double temperature, alpha;
    /* predict / eval */
    const char *input[CLI_MAX_LIST];
    int n_input;
    int top_k;
    const char *part;         /* eval: "test", "val", "train", "all" */
    /* compare / demo */
    const char *strategies, *labels, *seeds, *work_dir;
    bool details, quick, no_cache;
    /* multitask */
    const char *task[CLI_MAX_LIST];
    int n_task;
    const char *mt_mode;      /* "interleave", "sum" */
    bool no_baselines;
    gf_limits limits;         /* --max */
    /* lr-find */
    double start_lr, end_lr;
    int num_it;
    bool no_stop_div;
    /* eval */
    const char *predictions;  /* --predictions FILE.csv */
    /* training across processes (under mpirun) */
    double dist_timeout;      /* <= 0: the default (60 s) */
    double dist_bucket_mb;    /* <= 0: the default */
    int dist_overlap;         /* -1: the default, 0 off, 1 on */
    bool sync_bn;             /* --sync-bn: BatchNorm statistics over all ranks */
    /* text: data */
    const char *tokenizer;    /* --tokenizer word|char|bytes (NULL: word) */
    bool lowercase, byte_fallback, skip_unlabelled;
    int64_t min_count, max_vocab, max_len;
    const char *vectors;      /* --vectors FILE: GloVe text format */
    bool freeze_vectors;
    bool vectors_vocab;       /* --vectors-vocab: the vectors' words join the vocabulary */
    /* export */
    int64_t input_shape[8];   /* --input-shape: one example's shape; input_ndim 0: the file's */
    int input_ndim;
    bool with_normalize;      /* --with-normalize: graft export puts graft.normalize in the graph */
    /* predict --stream: keyword spotting */
    bool stream;
    double window_s, hop_s, threshold; /* window 0: the clip length */
    const char *background;            /* the class that means no word; NULL: found by name */
    /* arguments that are not options (inspect FILE, predict FILE...) */
    const char *args[CLI_MAX_LIST];
    int n_args;
} cli_opts;

/* One command: name, one-line summary, option groups, description and examples for --help. */
typedef struct cli_command {
    const char *name;
    const char *summary;
    uint64_t groups;
    const char *usage;        /* "graft train --data SPEC [options]" */
    const char *description;  /* paragraphs */
    const char *examples;     /* lines */
    int max_args;             /* positional arguments accepted */
    int (*run)(cli_opts *o);
} cli_command;

extern const cli_command cli_commands[];
const cli_command *cli_find_command(const char *name);

/* The candidate nearest to word (edit distance, '_' and '-' alike, case ignored) when it is
 * near enough to be a typo of it (at most 1 edit for short words, a third of the length for
 * longer ones), else NULL. For "did you mean" hints. */
const char *cli_nearest(const char *word, const char *const *candidates, int n);

/* How the user can run this graft again: "graft" when PATH finds this binary, else its path
 * (relative to the working folder when inside it, like "build/graft", or "./graft" in it). */
void cli_self_command(char *buf, size_t cap);

/* Defaults for every field. */
void cli_opts_init(cli_opts *o, const char *cmd);
/* Parses argv (argv[0] = the command) with getopt_long against the command's groups. Returns
 * CLI_CONTINUE, CLI_OK (after --help) or CLI_USAGE (after printing the error). */
int cli_parse(const cli_command *c, int argc, char **argv, cli_opts *o);
void cli_print_help(const cli_command *c, FILE *f);
/* An option as --help shows it. */
typedef struct cli_option_info {
    const char *name;    /* "data" (without the dashes) */
    const char *metavar; /* "SPEC", "[=LIST]" (an optional value) or NULL */
    const char *help;
    bool has_arg;        /* takes a value (required or optional) */
    char short_name;     /* 'h', 'q', 'v' or 0 */
} cli_option_info;
/* fn(user, group title, NULL) when a group of options starts, then fn(user, title, option). */
typedef void (*cli_option_fn)(void *user, const char *group, const cli_option_info *opt);
/* The options of c in --help's order (the table --help, the man page and the bash completion
 * are written from). */
void cli_each_option(const cli_command *c, cli_option_fn fn, void *user);
/* The data specs --help lists: {spec, meaning} pairs, ending with {NULL, NULL}. */
extern const char *const cli_data_specs[][2];
/* `graft completion bash`: the bash completion script; `graft man`: the man page (roff). Both
 * written from the command and option tables. */
void cli_print_completion_bash(FILE *f);
void cli_print_man(FILE *f);
/* Every option name of the groups, one per line (graft CMD --list-options; used by tests). */
void cli_print_option_names(const cli_command *c, FILE *f);

/* Prints "graft CMD: MESSAGE" and a hint to --help on stderr; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prints "graft CMD: error: MESSAGE" on stderr; returns CLI_FAILED. */
int cli_fail(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The context's message as a failure. */
int cli_fail_ctx(const char *cmd, gf_ctx *ctx);
/* Logging on stderr unless --quiet. */
void cli_log(const cli_opts *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

bool cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
bool cli_parse_f64(const char *s, double lo, double hi, double *out);
/* "10,100,1000" into out (cap entries); returns the count or -1. */
int cli_parse_i64_list(const char *s, int64_t lo, int64_t hi, int64_t *out, int cap);

/* ---- files -------------------------------------------------------------------------------------- */

/* Checks a file named on the command line exists and is a regular file: else prints the usage
 * error (naming the option) and returns CLI_USAGE; CLI_CONTINUE when fine. */
int cli_check_input(const char *cmd, const char *option, const char *path);
/* Checks an output file before any work: its folder exists and is writable, the path does not
 * end in '/', and if it exists it is a regular file (graft replaces a file by renaming a new
 * one over it, which would turn a device, FIFO or link into a plain file). */
int cli_check_output(const char *cmd, const char *option, const char *path);
/* Checks an output folder: it exists and is writable, or its parent does; `files` (NULL or a
 * NULL-terminated list of names graft writes in it) pass cli_check_output's test. */
int cli_check_output_dir(const char *cmd, const char *option, const char *dir,
                         const char *const *files);
/* The files graft writes into a --report and a --lora-out folder. */
extern const char *const cli_report_files[], *const cli_lora_files[];
bool cli_is_dir(const char *path);
bool cli_is_file(const char *path);
/* A new malloc'd copy of a whole file (NUL-terminated, *len without it), or NULL (errno;
 * EFBIG past max bytes). */
char *cli_read_file(const char *path, size_t max, size_t *len);
/* The largest model spec file read (as gf_spec_load). */
#define CLI_SPEC_MAX_BYTES ((size_t)16 << 20)

/* ---- Ctrl-C --------------------------------------------------------------------------------- */

extern volatile sig_atomic_t cli_interrupted;
/* Installs the SIGINT handler: the first Ctrl-C sets cli_interrupted (the run stops after the
 * current step), a second one exits at once with status 130. */
void cli_install_sigint(void);

/* ---- JSON output ------------------------------------------------------------------------------ */

/* Prints root on stdout (formatted) and frees it; returns CLI_OK or CLI_FAILED. */
int cli_json_print(cJSON *root);
cJSON *cli_json_shape(int ndim, const int64_t *shape);
cJSON *cli_json_names(int n, const char *const *names);
/* A number, or null for NaN/Inf. */
cJSON *cli_json_num(double v);
void cli_json_add_num(cJSON *o, const char *key, double v);

/* ---- data ------------------------------------------------------------------------------------- */

/* --data opened and cut (gf_ds_open); d->spec is the --data value. */
typedef gf_ds_parts cli_data;

/* Loads --data and cuts it as the options say. Returns CLI_CONTINUE, or an exit code after
 * printing the error (CLI_USAGE for a malformed spec, a missing file or options that do not
 * apply to it, CLI_FAILED when reading or cutting the data failed). */
int cli_data_load(gf_ctx *ctx, const cli_opts *o, cli_data *d);
/* --train-last, --freeze and --unfreeze on m, in that order. CLI_CONTINUE or a usage error
 * (printed) naming the option. */
int cli_apply_freezing(gf_ctx *ctx, const cli_opts *o, gf_module *m);
/* A frozen trunk's features computed once: *fd becomes a shallow copy of d (names and spec
 * stay d's) whose parts hold the input of model's child "head" for every example, [features]
 * samples with no transforms; *seconds how long it took. `what` and `items` name the trunk
 * and the examples in the log line ("the embedding", "clips"). CLI_CONTINUE or the failure
 * (printed). Free the parts with cli_cached_free. */
int cli_cache_head_features(gf_ctx *ctx, const cli_opts *o, gf_module *model, const cli_data *d,
                            int64_t features, const char *what, const char *items, cli_data *fd,
                            double *seconds);
void cli_cached_free(cli_data *fd);
/* --out of a classifier that a file rebuilds (graft.model "tfjs" or "speech", with how to
 * rebuild it as JSON in graft.tfjs / graft.speech): model's weights, d's classes and shape,
 * graft.from. CLI_CONTINUE or the failure (printed). json may be NULL (out of memory). */
int cli_save_rebuilt(gf_ctx *ctx, const cli_opts *o, gf_module *model, const cli_data *d,
                     const char *kind, const char *json);
/* The same for data a trained model is run on: images are read as the weights say (graft.image)
 * unless --image-size or --grayscale say otherwise, and (eval) a split may leave no training
 * part. meta may be NULL. */
int cli_data_load_for(gf_ctx *ctx, const cli_opts *o, const gf_bundle_info *meta, cli_data *d);
void cli_data_free(cli_data *d);
/* "fashion-mnist: 54000 train / 6000 val / 10000 test, 10 classes, samples [1, 28, 28]" */
void cli_data_describe(const cli_data *d, char *buf, size_t cap);
/* d's part named `part` ("train", "val", "test"; borrowed), or NULL when that part is empty.
 * "all" is every part together: gf_ds_parts_all. */
gf_ds *cli_data_part(const cli_data *d, const char *part);

/* ---- models and weight files ------------------------------------------------------------------ */

/* A model named on the command line (a zoo name or a spec file) or by a weights file, built as
 * a bundle (graft/bundle.h). */
typedef struct cli_model {
    gf_bundle *b;            /* b->model, b->info.model ("mlp", ..., "spec"), b->head */
    char *spec_path;         /* the --model spec file, or NULL */
} cli_model;

/* Checks a --model value before any work: a zoo name or an existing file. */
int cli_check_model_arg(const char *cmd, const char *option, const char *arg);
/* True when arg names a zoo model. */
bool cli_is_zoo(const char *arg);
/* Builds the model named by arg (zoo name or spec file; NULL: the one meta names) for d's
 * samples (d NULL: meta's), with n_classes outputs (n_classes <= 0: the spec's own, or 10 for
 * the zoo); without meta, d's description is recorded for saving. Returns CLI_CONTINUE or an
 * exit code after printing the error. */
int cli_model_build(gf_ctx *ctx, const cli_opts *o, const char *arg, const gf_bundle_info *meta,
                    const cli_data *d, int n_classes, cli_model *out);
void cli_model_free(cli_model *m);
/* The model as the summaries name it: the spec file, or the zoo name / "spec". */
const char *cli_model_desc(const cli_model *m);

/* Saves the bundle with the metadata that eval / predict / finetune read back, describing d
 * (NULL: as it is). extra: n_extra more key/value pairs. */
int cli_save_weights(gf_ctx *ctx, const cli_opts *o, cli_model *cm, const cli_data *d,
                     const char *path, const char *const *extra, int n_extra);
/* The same as a delta against base (the tensors that differ, read through base_map). */
int cli_save_delta(gf_ctx *ctx, const cli_opts *o, cli_model *cm, const cli_data *d,
                   const char *base, const gf_weights_options *base_map, const char *path,
                   const char *const *extra, int n_extra, int *n_written);

/* True when d's samples have the shape the weights file `path` was trained on (files that
 * do not record it pass); otherwise prints both shapes and returns false. */
bool cli_meta_fits_samples(const char *cmd, const char *path, const gf_bundle_info *meta,
                           const cli_data *d);
/* Opens a weights file and reads its metadata. */
int cli_meta_open(gf_ctx *ctx, const cli_opts *o, const char *path, gf_bundle_info *meta);
/* Loads trained weights into cm: strictly (every key must fit), or for a delta checkpoint
 * through its base (base, else the path stored in the delta). */
int cli_load_weights(gf_ctx *ctx, const cli_opts *o, const char *path, const char *base,
                     const gf_bundle_info *meta, cli_model *cm);

/* ---- training --------------------------------------------------------------------------------- */

/* One epoch's numbers, kept for the summary, the JSON and the report. */
typedef struct cli_history {
    int n, cap;
    gf_epoch_stats *e;
} cli_history;

typedef struct cli_fit_setup {
    const char *head;         /* head path for --lr-trunk-factor (NULL: no groups) */
    double trunk_factor;      /* 1: one group */
    gf_loss_spec loss;
    const gf_fit_params *base;/* NULL: from the options */
} cli_fit_setup;

typedef struct cli_fit_out {
    gf_fit_result res;
    cli_history hist;
    bool interrupted;
    double seconds;
    int64_t trainable, total;
    char checkpoint[4352];    /* the last checkpoint written, or "" */
} cli_fit_out;

/* Trains cm->m on d->train (validating on d->val) as the options say: optimizer, schedule,
 * clipping, early stopping, checkpoints, --resume, progress on stderr, Ctrl-C. Returns
 * CLI_CONTINUE (also when interrupted: out->interrupted) or an exit code after printing. */
int cli_fit(gf_ctx *ctx, const cli_opts *o, gf_module *m, cli_data *d, const cli_fit_setup *s,
            cli_fit_out *out);
void cli_fit_out_free(cli_fit_out *f);
/* The optimizer of the options over every parameter of m (head group when s->head and a trunk
 * factor != 1), and the schedule (NULL for none; check the context status). */
gf_optim *cli_make_optim(gf_ctx *ctx, const cli_opts *o, gf_module *m, const cli_fit_setup *s);
gf_sched *cli_make_sched(gf_ctx *ctx, const cli_opts *o, gf_optim *opt, int64_t batches);
cJSON *cli_history_json(const cli_history *h);

/* Progress printing of a training run (cli_fit's callbacks). */
/* ---- training across processes (cli_dist.c, docs/DISTRIBUTED.md) ------------------------------ */

/* Joins the MPI job when a launcher started graft: train and finetune train as one of its
 * ranks (ranks other than 0 print nothing and write no files; --threads defaults to this
 * machine's cores shared between its ranks); other commands, and a graft built without MPI,
 * refuse to run as several processes. Returns CLI_CONTINUE or an exit code after printing. */
int cli_dist_begin(const cli_command *c, cli_opts *o);
/* Waits for every rank and leaves the job; returns rc. */
int cli_dist_end(int rc);
int cli_dist_size(void);
bool cli_dist_root(void);
/* For --version: the MPI library graft trains across processes with, or that it has none. */
const char *cli_dist_library(void);
/* Before gf_fit (loaders not yet made): the start-up checks, rank 0's weights to every rank (m
 * NULL: none, when the seeds draw the same models on every rank, as in compare),
 * this rank's share of the batches (lp), the gradient exchange and rank 0 alone checkpointing
 * (fp), the stop signals. Nothing in one process. Returns CLI_CONTINUE or an exit code. */
int cli_dist_prepare(gf_ctx *ctx, const cli_opts *o, gf_module *m, const cli_data *d,
                     gf_loader_params *lp, gf_fit_params *fp);
/* A failed gf_fit: printed (with the rank), and under several ranks the job is stopped. */
int cli_dist_fit_failed(gf_ctx *ctx, const char *cmd);
/* After gf_fit: every rank's weights compared and the exchange's cost logged. CLI_CONTINUE on
 * rank 0 (and in one process), CLI_OK on the others (their part is done), or a failure. */
int cli_dist_after(gf_ctx *ctx, const cli_opts *o, const gf_module *m, double seconds);
/* Ctrl-C: cli_interrupted in one process; under several ranks, the stop they agreed on at the
 * last gradient exchange (so all stop after the same step). */
bool cli_stop_requested(void);

/* Progress printing shared with loops that do not use gf_fit (distill). */
typedef struct cli_progress {
    const cli_opts *o;
    bool tty;
    int64_t batch_size, batches;
    double t_epoch, t_last_draw;
    int64_t done_in_epoch;
    double loss_ema;
} cli_progress;
void cli_progress_init(cli_progress *p, const cli_opts *o, int64_t batch_size, int64_t batches);
void cli_progress_step(cli_progress *p, int epoch, int epochs, int64_t batch, double loss);
void cli_progress_epoch(cli_progress *p, const gf_epoch_stats *s);
double cli_now(void);

/* The outcome of an evaluation pass. */
typedef struct cli_eval {
    int64_t n;
    int64_t tokens;            /* per-step labels: the steps scored (not padding); else 0 */
    double loss, accuracy, precision, recall, f1; /* macro averages */
    gf_confusion *cm;
    gf_ctx *ctx;               /* the context it was computed in (borrowed) */
    bool regression;           /* cli_evaluate_regression: loss is the MSE; no classes */
    double mae, rmse, r2;      /* in the target's units */
} cli_eval;

/* Runs m over ds (gf_evaluate_ex: eval mode, no autograd, tf applied; the loss is the summed
 * cross entropy over the examples) and fills ev. Returns CLI_CONTINUE or
 * CLI_FAILED after printing. */
int cli_evaluate(gf_ctx *ctx, const char *cmd, gf_module *m, gf_ds *ds, const gf_tf *tf,
                 int64_t batch, cli_eval *ev);
/* The same, handing each example's prediction to on_pred (NULL: none). */
int cli_evaluate_preds(gf_ctx *ctx, const char *cmd, gf_module *m, gf_ds *ds, const gf_tf *tf,
                       int64_t batch, cli_eval *ev, gf_eval_pred_fn on_pred, void *user);
void cli_eval_free(cli_eval *ev);
/* Accuracy, macro P/R/F1, the per-class report and the confusion matrix on stdout. */
void cli_eval_print(const cli_eval *ev, const char *const *names, FILE *f);
cJSON *cli_eval_json(const cli_eval *ev, const char *const *names);

/* ---- regression (cli_regress.c) ---------------------------------------------------------- */

/* The training loss of --loss: MSE (default), L1, or HuberLoss with --huber-delta. */
gf_loss_spec cli_regression_loss(const cli_opts *o);
/* Runs m over ds (a regression part of d) and fills ev with the MSE, MAE, RMSE and R² in the
 * target's units (d's target scaling undone). CLI_CONTINUE or CLI_FAILED after printing. */
int cli_evaluate_regression(gf_ctx *ctx, const char *cmd, gf_module *m, const cli_data *d,
                            gf_ds *ds, const gf_tf *tf, int64_t batch, cli_eval *ev);
void cli_regression_print(const cli_eval *ev, FILE *f);
/* --class-weight balanced: scikit-learn's n_samples / (n_classes * count_c) over d's training
 * part, logged, in a new array (*out, free it; NULL without the option). */
int cli_class_weights(gf_ctx *ctx, const cli_opts *o, const cli_data *d, float **out);
cJSON *cli_regression_json(const cli_eval *ev);

/* ---- shared by the commands (cmd_train.c, cli_report.c) ------------------------------------- */

/* A context with --threads and --seed; NULL after printing the error. */
gf_ctx *cli_context(const cli_opts *o);
/* Checks --out, --checkpoint-dir, --report, --resume before any work. */
int cli_check_train_paths(const cli_opts *o);
/* The part final numbers are measured on: test, else val, else train. */
gf_ds *cli_final_part(const cli_data *d, const char **name);
void cli_print_run(const cli_opts *o, const char *model_desc, const cli_data *d,
                   const cli_fit_out *f, const char *part, const cli_eval *ev, const char *out);
cJSON *cli_run_json(const cli_opts *o, const char *model_name, const cli_data *d,
                    const cli_fit_out *f, const char *part, const cli_eval *ev, const char *out);
/* Writes o->report/index.html for a training run. */
int cli_report_run(gf_ctx *ctx, const cli_opts *o, const char *model_desc, const cli_data *d,
                   const cli_fit_out *f, const char *part, const cli_eval *ev, const char *written);

/* ---- commands ----------------------------------------------------------------------------------- */

int cmd_train(cli_opts *o);
int cmd_finetune(cli_opts *o);
/* What runs on finetune's model instead of its training (lr-find --from): the model loaded,
 * its head chosen and frozen as finetune's options say, the data, the head's path. */
typedef int (*cli_ft_fn)(gf_ctx *ctx, const cli_opts *o, cli_model *cm, const cli_data *d,
                         const char *head);
/* finetune's setup for o->from and o->data, then fn; returns fn's result or the setup's error. */
int cli_finetune_with(cli_opts *o, cli_ft_fn fn);
int cmd_eval(cli_opts *o);
int cmd_predict(cli_opts *o);
/* predict --stream: keyword spotting over each recording with b's model (cli_stream.c). */
int cli_predict_stream(gf_ctx *ctx, const cli_opts *o, gf_bundle *b, const char *const *inputs,
                       int n_in);
/* True for a text bundle whose model gives a row per token (a sequence labeller). */
bool cli_is_tagger(gf_ctx *ctx, gf_bundle *b);
/* --json: the output object of graft predict ({command, weights, model, predictions: []}) and
 * in *preds its predictions array; NULL (and *preds NULL) without --json. cmd_predict.c. */
cJSON *cli_predict_json(const cli_opts *o, const gf_bundle *b, cJSON **preds);

/* predict with a sequence labeller: each text of the input files, token by token (cli_tags.c). */
int cli_predict_tags(gf_ctx *ctx, const cli_opts *o, gf_bundle *b, const char *const *inputs,
                     int n);
int cmd_distill(cli_opts *o);
int cmd_compare(cli_opts *o);
int cmd_demo(cli_opts *o);
int cmd_inspect(cli_opts *o);
int cmd_multitask(cli_opts *o);
int cmd_lrfind(cli_opts *o);
int cmd_probe(cli_opts *o);

/* ---- CSV output (cli_preds.c) ---------------------------------------------------------------- */

/* One CSV field, quoted when it holds a separator, a quote or a line end (RFC 4180). */
void cli_csv_field(FILE *f, const char *s);
/* A CSV file's text in memory, written by gf_atomic_write through cli_write_csv_text. */
typedef struct cli_csv_text {
    char *buf;
    size_t len;
} cli_csv_text;
bool cli_write_csv_text(int fd, void *arg);

/* ---- eval's predictions (cli_preds.c) -------------------------------------------------------- */

typedef struct cli_preds {
    gf_eval_pred *p;
    int64_t n, cap;
    bool oom;
} cli_preds;
/* gf_eval_pred_fn collecting into a cli_preds. */
void cli_preds_add(const gf_eval_pred *p, void *user);
void cli_preds_free(cli_preds *c);
/* Misclassified examples; top (cap entries) gets the most confidently wrong, most confident
 * first; *n_top their count. */
int64_t cli_preds_wrong(const cli_preds *c, int64_t *top, int cap, int *n_top);
/* Where example p->index of ds came from: its image path, or "row N" of a CSV (buf). */
const char *cli_preds_source(const gf_ds *ds, const char *kind, int64_t index, char *buf,
                             size_t cap);
/* --predictions FILE: every prediction as CSV, written atomically. */
int cli_preds_write_csv(gf_ctx *ctx, const cli_opts *o, const cli_data *d, const gf_ds *ds,
                        const cli_preds *c);
/* The misclassified count and the most confidently wrong examples: text, JSON, report. */
void cli_preds_print_wrong(const cli_data *d, const gf_ds *ds, const cli_preds *c, FILE *f);
cJSON *cli_preds_wrong_json(const cli_data *d, const gf_ds *ds, const cli_preds *c);
int cli_preds_report(gf_ctx *ctx, const cli_opts *o, const cli_data *d, const gf_ds *ds,
                     const cli_eval *ev, const cli_preds *c);
int cmd_run(cli_opts *o);
/* graft export W.safetensors OUT.onnx (cmd_export.c). */
int cmd_export(cli_opts *o);
/* graft inspect MODEL.onnx (cmd_run.c). */
int cli_inspect_onnx(const cli_opts *o, gf_ctx *ctx, const char *path);

/* ---- TensorFlow.js models (cli_tfjs.c) -------------------------------------------------------- */

/* True when path is a TensorFlow.js model.json (gf_tfjs_is_model_file). */
bool cli_is_tfjs(const char *path);
/* graft inspect model.json: inputs, outputs, layers with counts, parameters, cut names. */
int cli_tfjs_inspect(gf_ctx *ctx, const cli_opts *o, const char *path);
/* graft finetune --from model.json: the model cut (--cut), adapted to the data (channels, size),
 * a new head, freezing and the BN policy, training (a frozen trunk's features cached). */
int cli_tfjs_finetune(cli_opts *o);

/* ---- speech embeddings (cli_speech.c) ------------------------------------------------------- */

/* True when path names an .onnx file. */
bool cli_is_onnx(const char *path);
/* graft finetune --from embedding_model.onnx --data audio:DIR: openWakeWord's chain
 * (graft/speech.h) with a new head, frozen as asked; a frozen embedding's features cached. */
int cli_speech_finetune(cli_opts *o);

#endif
