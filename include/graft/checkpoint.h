/* graft checkpoints: one safetensors file with everything a training run needs to continue
 * bitwise (weights, optimizer and schedule state, the context RNG, the data position, the loop's
 * counters, the run's settings), and a directory of them with keep-last-N / keep-best-K rotation.
 * The file layout is described in docs/CHECKPOINTS.md. */
#ifndef GRAFT_CHECKPOINT_H
#define GRAFT_CHECKPOINT_H

#include "graft/loader.h"
#include "graft/nn.h"
#include "graft/sched.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The layout version written as "graft.checkpoint.version"; files of other versions are refused. */
#define GF_CKPT_VERSION 1

/* Where a run is. Epochs and batches count from the start of the run (not of the loader):
 * (epoch E, batch 0) is the boundary after epoch E with its end-of-epoch work (validation,
 * schedule step, keep-best) done; (E, b) with b >= 1 is inside epoch E + 1 after b batches
 * and an optimizer step; (E, batches_per_epoch) is after the last batch of epoch E + 1 but
 * before its end-of-epoch work. */
typedef struct gf_ckpt_progress {
    int64_t epoch;       /* "graft.epoch": epochs completed */
    int64_t batch;       /* "graft.batch": batches of epoch + 1 trained */
    int64_t global_step; /* "graft.global_step": optimizer steps (gf_optim_steps) */
    double best_metric;  /* "graft.best_metric": best monitored value so far; NaN: none */
    int64_t best_epoch;  /* "graft.best_epoch": its epoch (1-based); 0: none */
    int64_t bad_epochs;  /* "graft.bad_epochs": epochs since the last improvement (patience) */
    double metric;       /* "graft.metric": the monitored value of epoch `epoch` at an epoch
                          * boundary (keep-best ranks by it); NaN inside an epoch */
} gf_ckpt_progress;

/* A progress with zero counts and NaN metrics. */
gf_ckpt_progress gf_ckpt_progress_init(void);

/* What goes into a checkpoint and what a restore fills. model is required; every other part
 * may be NULL (not saved / not restored). All are borrowed. */
typedef struct gf_ckpt_parts {
    gf_module *model;     /* tensors "model.<state_dict name>" (parameters and buffers, F32/I64) */
    gf_optim *opt;        /* "optim.*" (gf_optim_export: metadata and F32 moment tensors) */
    gf_sched *sched;      /* "sched.*" metadata (gf_sched_export) */
    gf_rng *rng;          /* "graft.rng": usually gf_ctx_rng(ctx) (dropout's generator) */
    gf_loader *train;     /* "graft.loader.train": the next batch (gf_loader_epoch / _batch_index) */
    gf_loader *val;       /* "graft.loader.val" */
    gf_ckpt_progress progress; /* saved as "graft.*" numbers; a restore does not write it here:
                                * read it with gf_ckpt_get_progress */
    const char *settings; /* "graft.settings": a JSON object describing the run (NULL: "{}") */
    /* Further tensors and metadata of the caller (e.g. gf_fit's "fit.*"); names must not start
     * with "model.", "optim.", "sched." or "graft.". Saved only; read them back from
     * gf_ckpt_file. NULL: none. */
    const gf_state_list *extra;
} gf_ckpt_parts;

/* Writes parts to path atomically (a temporary file beside it, fsync, rename): a crash at any
 * moment leaves either the old file or the complete new one. GF_ERR_INVALID for a NULL model
 * or a reserved extra name, GF_ERR_IO with the path and the system's reason. */
gf_status gf_ckpt_save(gf_ctx *ctx, const char *path, const gf_ckpt_parts *parts);

/* ---- reading ----------------------------------------------------------------------------- */

typedef struct gf_ckpt gf_ckpt;

/* Opens a checkpoint and validates its structure: a valid safetensors file, version
 * GF_CKPT_VERSION, every "graft." key known and well-formed (numbers, the RNG state, loader
 * positions, settings JSON), model tensors F32/I64, no tensor under a reserved prefix other
 * than "model." and "optim.state.", the optimizer's step count equal to graft.global_step.
 * NULL with a context error naming the file and the key. Close with gf_ckpt_close. */
gf_ckpt *gf_ckpt_open(gf_ctx *ctx, const char *path);
/* The same over bytes in memory (not copied: they must outlive the handle); label names it. */
gf_ckpt *gf_ckpt_open_memory(gf_ctx *ctx, const void *buf, size_t len, const char *label);
void gf_ckpt_close(gf_ckpt *ck);

/* The underlying file (borrowed; for extra tensors and metadata). */
const gf_st_file *gf_ckpt_file(const gf_ckpt *ck);
const gf_ckpt_progress *gf_ckpt_get_progress(const gf_ckpt *ck);
/* The settings JSON text (borrowed). */
const char *gf_ckpt_settings(const gf_ckpt *ck);
/* Which parts the file holds. */
bool gf_ckpt_has_optim(const gf_ckpt *ck);
bool gf_ckpt_has_sched(const gf_ckpt *ck);
bool gf_ckpt_has_rng(const gf_ckpt *ck);
bool gf_ckpt_has_loader(const gf_ckpt *ck, bool val);

/* Restores the parts given (non-NULL) from ck, all or nothing: it first checks that each is in
 * the file and fits (every model key present with its shape and dtype and no unexpected
 * "model." tensor; the optimizer's kind, groups, names and shapes; the schedule's kind and
 * structure; loader positions within a loader with as many batches per epoch), and on any
 * error (the message names the file, the key, expected and found) nothing is changed. Parts
 * the file holds but parts leaves NULL are ignored (weights only: parts with just the model).
 * parts->progress, settings and extra are not used. */
gf_status gf_ckpt_restore(gf_ctx *ctx, const gf_ckpt *ck, const gf_ckpt_parts *parts);

/* ---- a directory of checkpoints ------------------------------------------------------------
 * Regular checkpoints are "<dir>/<prefix>-e<epoch:06>-b<batch:09>.safetensors" (epoch and
 * batch as in gf_ckpt_progress, so names sort in run order); keep-best copies are
 * "<dir>/<prefix>-best-e<epoch:06>.safetensors". Files being written are
 * "<name>.tmp.XXXXXX" and never match these patterns. One writer per (dir, prefix). */
typedef struct gf_ckpt_policy {
    const char *dir;     /* NULL: no checkpoints. Created (one level) when missing. */
    const char *prefix;  /* NULL: "ckpt". No '/'. */
    int64_t every_steps; /* > 0: after every every_steps-th optimizer step */
    bool every_epoch;    /* at the end of every epoch */
    int keep_last;       /* > 0: keep only the newest keep_last regular checkpoints; 0: all */
    int keep_best;       /* > 0: also keep the keep_best best epochs by the monitored value */
} gf_ckpt_policy;

typedef struct gf_ckpt_entry {
    char *path;          /* owned by the list */
    int64_t epoch, batch;
    bool best;           /* a keep-best copy */
} gf_ckpt_entry;

typedef struct gf_ckpt_list {
    int n;
    gf_ckpt_entry *items; /* regular checkpoints oldest first, then keep-best copies by epoch */
} gf_ckpt_list;

/* The checkpoints of (dir, prefix) by name (files are not opened). NULL with a context error
 * when dir cannot be read. Free with gf_ckpt_list_free. */
gf_ckpt_list *gf_ckpt_list_dir(gf_ctx *ctx, const char *dir, const char *prefix);
void gf_ckpt_list_free(gf_ckpt_list *l);
/* Path of the newest regular checkpoint into out (cap bytes). GF_ERR_IO naming the directory
 * and the pattern when there is none. */
gf_status gf_ckpt_latest(gf_ctx *ctx, const char *dir, const char *prefix, char *out, size_t cap);

/* Saves a regular checkpoint named by parts->progress under the policy, then deletes the oldest
 * regular ones beyond keep_last. written (may be NULL) gets the path (cap bytes). */
gf_status gf_ckpt_write(gf_ctx *ctx, const gf_ckpt_policy *pol, const gf_ckpt_parts *parts,
                        char *written, size_t cap);
/* Keep-best at an epoch boundary: when parts->progress.metric is a number that ranks among the
 * keep_best best of the existing keep-best copies (strictly better than the worst when there
 * are keep_best already; maximize: larger is better), saves a copy for this epoch and deletes
 * the copies that fall out. *saved (may be NULL) says whether a copy was written. No-op when
 * keep_best is 0. */
gf_status gf_ckpt_write_best(gf_ctx *ctx, const gf_ckpt_policy *pol, const gf_ckpt_parts *parts,
                             bool maximize, bool *saved);
/* Deletes "<prefix>-*.safetensors.tmp.*" files that a killed writer left in dir; *removed (may
 * be NULL) gets their number. */
gf_status gf_ckpt_clean_temp(gf_ctx *ctx, const char *dir, const char *prefix, int *removed);

#ifdef __cplusplus
}
#endif
#endif
