/* Internals shared by the files of the training layer (src/train): the loss names a
 * checkpoint's settings record, the scratch behind gf_eval_batch_correct, the weight snapshot
 * behind keep-best, and the checkpoint side of gf_fit (resume.c) that fit.c drives. Not
 * installed. Like fit.c itself, all of it is written against the public API only. */
#ifndef GRAFT_TRAIN_INTERNAL_H
#define GRAFT_TRAIN_INTERNAL_H

#include "graft/train.h"
#include "train/snapshot.h"

#include <cjson/cJSON.h>

/* "cross_entropy", "mse", "l1", "smooth_l1", "bce_with_logits", "custom"; "?" otherwise. */
const char *gf_loss_kind_name(gf_loss_kind k);
/* "auto", "val_loss", "val_acc", "train_loss", "train_acc". */
const char *gf_monitor_name(gf_monitor m);

/* gf_loss_compute with the given reduction (MEAN: gf_loss_compute itself). */
gf_tensor *gf_loss_compute_reduce(gf_ctx *ctx, const gf_loss_spec *loss, gf_tensor *out,
                                  gf_tensor *y, gf_reduction red);

/* Scratch for non-contiguous outputs in gf_eval_batch_correct (grown on demand; free p). */
typedef struct gf_train_scratch {
    float *p;
    int64_t n;
} gf_train_scratch;

/* At least n floats of s, or NULL when they cannot be allocated. */
float *gf_train_scratch_for(gf_train_scratch *s, int64_t n);

/* The update gf_fit and gf_train_step share (step.c): the clipping p asks for and a step of
 * opt; *grad_norm (may be NULL) gets the total norm before clipping when p->clip_norm > 0. */
gf_status gf_train_update(gf_ctx *ctx, gf_optim *opt, const gf_step_params *p, double *grad_norm);
/* A step of sched when it is per step (NULL: none). */
gf_status gf_train_sched_step(gf_ctx *ctx, gf_sched *sched);

/* ---- gf_fit's checkpoints (resume.c) -----------------------------------------------------------
 * A gf_fit checkpoint is gf_ckpt_parts (weights, optimizer, schedule, context RNG, loader
 * positions, progress, settings) plus, as extra entries, the running sums of the epoch in
 * progress and the run's counters ("fit.*" metadata) and the keep-best weights
 * ("fit.best.<state_dict name>"). Checkpoints are written only right after an optimizer step
 * or at an epoch's end, where no gradient is pending. */

typedef struct gf_run_sums {
    double loss_sum;              /* sum over this epoch's finite batches of loss x examples */
    int64_t seen, correct;        /* their examples and correct predictions */
    bool acc_ok;                  /* accuracy applies */
    int64_t batches, skipped;     /* batches of this epoch, skipped ones among them */
    int64_t steps, skipped_total; /* the run's optimizer steps and skipped batches */
} gf_run_sums;

/* Zeroes the epoch's sums (not the run's counters). */
void gf_run_sums_new_epoch(gf_run_sums *s);

typedef struct gf_fit_io {    /* what checkpoints need from gf_fit's arguments */
    gf_ckpt_parts parts;      /* model, opt, sched, rng, loaders, settings */
    const gf_fit_params *p;
    gf_snapshot *snap;        /* the keep-best weights (snap->list NULL: not kept) */
    bool maximize;
} gf_fit_io;

/* The run's settings as JSON (a new cJSON object; NULL when out of memory). */
cJSON *gf_fit_settings_json(const gf_ctx *ctx, const gf_fit_params *p, gf_monitor mon,
                            const gf_loss_spec *loss, const gf_optim *opt, const gf_sched *sched,
                            const gf_loader *train, const gf_loader *val);
/* Continues from io->p->resume_from: checks it belongs to this run (now: this run's settings)
 * and restores everything, or nothing. */
gf_status gf_fit_resume(gf_ctx *ctx, gf_fit_io *io, const cJSON *now, gf_ckpt_progress *prog,
                        gf_run_sums *sums);
/* Writes a regular checkpoint (regular) and/or a keep-best copy (best) of the current state. */
gf_status gf_fit_save(gf_ctx *ctx, gf_fit_io *io, const gf_ckpt_progress *prog,
                      const gf_run_sums *s, bool regular, bool best, gf_fit_result *res);

#endif
