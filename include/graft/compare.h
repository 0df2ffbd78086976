/* graft compare: runs transfer strategies (scratch, linear probe, full fine-tune, fine-tune with
 * frozen BatchNorm statistics, fastai-style two-phase fine-tune, LoRA, distillation) on the same
 * target data, seeds and budget, and reports accuracy, macro-F1, cost and curves side by side.
 * Built only on the public API (src/transfer/compare.c, strategies.c); docs/COMPARE.md. */
#ifndef GRAFT_COMPARE_H
#define GRAFT_COMPARE_H

#include <stdio.h>

#include "graft/dataset.h"
#include "graft/optim.h"
#include "graft/train.h"
#include "graft/weights.h"
#include "graft/zoo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- strategies ------------------------------------------------------------------------------
 * Every strategy starts from the zoo model p->model; all but scratch (and distill from scratch)
 * load p->pretrained first and replace the head with a new Linear of the target's class count
 * (initialised from the run's seed). "Trunk" = every parameter outside the head. */
typedef enum gf_compare_strategy {
    GF_COMPARE_SCRATCH = 0,       /* "scratch": a fresh model (seeded init), all trained */
    GF_COMPARE_PROBE,             /* "probe": the trunk's features cached once
                                   * (gf_transfer_cache_features), only the head trained on them */
    GF_COMPARE_FINETUNE,          /* "finetune": every parameter trained; BatchNorm as PyTorch
                                   * (train-all: statistics move) */
    GF_COMPARE_FINETUNE_FROZEN_BN,/* "finetune-frozen-bn": every parameter but BatchNorm trained,
                                   * BatchNorm under GF_TRANSFER_BN_FREEZE_STATS; for a model without
                                   * BatchNorm this is finetune (the result's note says so) */
    GF_COMPARE_FASTAI,            /* "fastai": fastai's fine_tune: the head alone for
                                   * fastai_frozen_epochs (one-cycle, pct_start 0.99), then all
                                   * layers with discriminative learning rates (trunk lr = head
                                   * lr / fastai_lr_div, two parameter groups) and one-cycle
                                   * (div 5) at half the learning rate; BatchNorm trains
                                   * (train_bn) throughout. Same total epochs as the others. */
    GF_COMPARE_LORA,              /* "lora": LoRA adapters on the trunk's Linear/Conv2d layers,
                                   * the new head trainable, everything else frozen */
    GF_COMPARE_DISTILL,           /* "distill": a student (from scratch, or from the pretrained
                                   * model with distill_from_pretrained) trained with
                                   * gf_distill_loss against p->teacher's cached logits; needs a
                                   * teacher */
    GF_COMPARE_STRATEGY_COUNT
} gf_compare_strategy;

/* "scratch", "probe", "finetune", "finetune-frozen-bn", "fastai", "lora", "distill"; "?". */
const char *gf_compare_strategy_name(gf_compare_strategy s);
bool gf_compare_strategy_parse(const char *name, gf_compare_strategy *out);
/* Parses a comma-separated list ("scratch,probe,finetune"; "all": every strategy but distill,
 * plus distill when with_distill) into out (cap entries). Returns the count, or -1 with a ctx
 * error naming the unknown token, a repeat, or too many. */
int gf_compare_strategies_parse(gf_ctx *ctx, const char *list, bool with_distill,
                                gf_compare_strategy *out, int cap);

/* ---- settings ------------------------------------------------------------------------------ */

/* Called after every epoch of every run (strategy, seed, gf_fit's stats; for fastai the epochs
 * of both phases are numbered on). Return false to stop the whole comparison (gf_compare_run
 * then returns GF_ERR_STATE "stopped by the progress callback"). */
typedef bool (*gf_compare_progress_fn)(gf_compare_strategy s, uint64_t seed,
                                       const gf_epoch_stats *e, void *user);

typedef struct gf_compare_params {
    /* the model */
    const char *model;            /* zoo name ("cnn-small") */
    gf_zoo_params zoo;            /* input shape (and mlp widths); num_classes is ignored: the
                                   * target data gives it */
    const char *pretrained;       /* safetensors of the source model, loaded by name through
                                   * `load` (non-strict: only the head may be missing or differ
                                   * in shape, anything else is an error). Required by every
                                   * strategy but scratch and distill from scratch. */
    gf_weights_options load;      /* renaming for pretrained (and the delta's base map) */
    const char *head;             /* the head's dotted path; NULL: gf_zoo_head(model) */
    /* the budget: the same for every strategy */
    int epochs;                   /* 30 */
    int64_t batch_size;           /* 64 */
    gf_optim_params optim;        /* Adam lr 1e-3 */
    const uint64_t *seeds;        /* n_seeds seeds (copied); NULL: one seed, 0. A seed drives the
                                   * new head / scratch init, the adapters' init, the loader's
                                   * shuffle and the context RNG. */
    int n_seeds;
    int n_threads;                /* 0: the caller's context's count */
    int64_t eval_batch;           /* 64: batch size for evaluation and caches (its activations set
                                   * the arena size: 256 needed ~4x the training step's) */
    /* fastai */
    int fastai_frozen_epochs;     /* 1 (fastai's freeze_epochs); < epochs */
    double fastai_lr_div;         /* 10: trunk lr = head lr / this (fastai's lr_mult is 100,
                                   * spread over more layer groups than two) */
    /* lora */
    int lora_r;                   /* 8 */
    float lora_alpha;             /* 16 */
    const char *const *lora_targets; /* n_lora_targets glob patterns; NULL: every Linear and
                                   * Conv2d module except the head */
    int n_lora_targets;
    /* distill */
    const char *teacher;          /* safetensors of a teacher for the target's classes; NULL: no
                                   * distill (listing it is an error) */
    const char *teacher_model;    /* its zoo name; NULL: model */
    float distill_T;              /* 4 */
    float distill_alpha;          /* 0.7: weight of the soft (teacher) term */
    bool distill_from_pretrained; /* false: the student starts from scratch */
    /* output */
    const char *work_dir;         /* where delta checkpoints are written and kept as
                                   * <strategy>-seed<seed>.delta.safetensors; NULL: a temporary
                                   * folder, removed afterwards */
    gf_compare_progress_fn progress; /* may be NULL */
    void *user;
    /* Training across processes (graft/dist.h: gf_dist_shard_loader and gf_dist_fit_params set
     * these): every process runs the same comparison, trains on its share shard_rank of
     * shard_count of each batch (0 of 0: all of it), and gf_fit sums the gradients over the
     * processes through grad_sync (NULL: one process). The models start alike on every process
     * since the seeds draw them; validation and test run whole on each. */
    int shard_rank, shard_count;
    gf_grad_sync_fn grad_sync;
    gf_grad_begin_fn grad_begin; /* optional: gf_fit_params.grad_begin */
    void *grad_sync_user;
} gf_compare_params;

gf_compare_params gf_compare_default_params(void);

/* ---- results ------------------------------------------------------------------------------- */

/* One strategy trained with one seed. */
typedef struct gf_compare_trial {
    uint64_t seed;
    double accuracy;              /* on the test data, the model after the last epoch */
    double macro_f1;              /* sklearn's f1_score(average="macro") on the test data */
    double seconds;               /* wall time: setup, caches and training (not the test pass
                                   * or the delta file) */
    int epochs;                   /* curve length */
    double *train_loss;           /* [epochs] mean training loss of each epoch */
    double *val_acc;              /* [epochs] validation accuracy after each epoch; NaN
                                   * without validation data (never used for selection) */
    int64_t *confusion;           /* [k * k] test confusion matrix, rows = true class */
    size_t arena_peak;            /* bytes: peak of the run's own context arena (one step's
                                   * activations, gradients and graph) */
    size_t state_bytes;           /* bytes held for training at the end: parameters, gradient
                                   * buffers, optimizer state, feature / teacher-logit caches */
    long rss_delta_kb;            /* growth of the process's getrusage ru_maxrss during the
                                   * run: 0 when an earlier run had already set a higher mark */
    int64_t delta_bytes;          /* file size of gf_transfer_delta_save against p->pretrained; -1
                                   * without a pretrained file */
    int delta_tensors;            /* tensors in that delta; -1 without one */
} gf_compare_trial;

typedef struct gf_compare_entry {
    gf_compare_strategy strategy;
    const char *name;             /* gf_compare_strategy_name */
    char note[256];               /* what the strategy did, or "" */
    int64_t params_total;         /* parameter elements of the trained model */
    int64_t params_trainable;     /* of them, trained (fastai: in its second phase; probe: the
                                   * head; lora: adapters + head) */
    int n_trials;
    gf_compare_trial *trials;     /* one per seed, in seed order */
    double acc_mean, acc_sd;      /* over the trials; sd: sample standard deviation (n - 1),
                                   * 0 for one trial */
    double f1_mean, f1_sd;
    double seconds_mean;
    size_t peak_bytes;            /* max over trials of arena_peak + state_bytes */
    int64_t *confusion;           /* [k * k] summed over the trials */
} gf_compare_entry;

typedef struct gf_compare_result {
    char *model, *pretrained, *teacher;  /* copies; pretrained / teacher may be NULL */
    int n_classes;
    char **class_names;           /* n_classes */
    int64_t n_train, n_val, n_test;
    int epochs;
    int64_t batch_size;
    gf_optim_params optim;
    int n_threads;
    int n_seeds;
    uint64_t *seeds;
    int64_t base_bytes;           /* size of the pretrained file, -1 without one */
    double seconds;               /* the whole comparison, test passes included */
    int n;
    gf_compare_entry *entries;    /* in the order the strategies were given */
} gf_compare_result;

void gf_compare_result_free(gf_compare_result *r);
/* The entry of strategy s, or NULL when it was not run. */
const gf_compare_entry *gf_compare_find(const gf_compare_result *r, gf_compare_strategy s);

/* Runs strategies[0..n) on train (validation curves on val, may be NULL; scores on test) for
 * every seed. Each run gets a fresh context (p->n_threads threads, seeded), so runs do not
 * disturb each other or the caller's arena. Datasets are borrowed; their class counts must
 * agree. Returns GF_OK and a new result in *out (free with gf_compare_result_free), or an error
 * naming the strategy and seed that failed (*out NULL). */
gf_status gf_compare_run(gf_ctx *ctx, const gf_compare_params *p,
                         const gf_compare_strategy *strategies, int n, gf_ds *train, gf_ds *val,
                         gf_ds *test, gf_compare_result **out);

/* The human table: one line per strategy (accuracy and macro-F1 as mean ± sd, trainable
 * parameters, seconds, peak memory, delta size), then the notes. details: also each
 * strategy's per-seed numbers, curves and summed confusion matrix. */
void gf_compare_print(const gf_compare_result *r, FILE *out, bool details);
/* The result as JSON: {"model", "pretrained", "teacher", "classes", "n_train", "n_val",
 * "n_test", "budget": {"epochs", "batch_size", "optimizer", "lr"}, "threads", "seeds",
 * "base_bytes", "seconds", "memory": (how peak memory is measured), "strategies": [{"name",
 * "note", "params_total", "params_trainable", "accuracy": {"mean", "sd", "trials"},
 * "macro_f1": {...}, "seconds": {...}, "peak_bytes", "delta_bytes", "delta_tensors",
 * "trials": [{"seed", "accuracy", "macro_f1", "seconds", "arena_peak_bytes", "state_bytes",
 * "rss_delta_kb", "delta_bytes", "delta_tensors", "train_loss": [...], "val_acc": [...],
 * "confusion": [[...]]}], "confusion": [[...]] (summed)}]}. NaN is written as null. Returns a
 * new string (free with free()) or NULL with a ctx error. */
char *gf_compare_json(gf_ctx *ctx, const gf_compare_result *r);
gf_status gf_compare_write_json(gf_ctx *ctx, const gf_compare_result *r, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
