/* The small training setup the checkpoint fuzzer restores into (fuzz_checkpoint.c), shared
 * with test_checkpoint.c, which checks the seed corpus against it and rewrites the corpus
 * when GRAFT_WRITE_CORPUS=1 (run from tests/: it writes fuzz/corpus/checkpoint/). */
#ifndef GRAFT_FUZZ_CHECKPOINT_SETUP_H
#define GRAFT_FUZZ_CHECKPOINT_SETUP_H

#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"

typedef struct fz_setup {
    gf_ds *ds;
    gf_loader *train, *val;
    gf_module *model; /* Linear(3, 4) -> BatchNorm1d(4) -> ReLU -> Linear(4, 2) */
    gf_optim *opt;    /* Adam, lr 0.01 */
    gf_sched *sched;  /* LinearLR warmup over 2 steps, then cosine (T_max 6), per step */
} fz_setup;

static void fz_setup_free(fz_setup *s) {
    gf_sched_free(s->sched);
    gf_optim_free(s->opt);
    gf_module_free(s->model);
    gf_loader_free(s->train);
    gf_loader_free(s->val);
    gf_ds_free(s->ds);
    memset(s, 0, sizeof *s);
}

/* 10 examples of 3 features, 2 classes; batches of 4 (3 per epoch), no prefetch thread. */
static bool fz_setup_new(gf_ctx *ctx, fz_setup *s) {
    memset(s, 0, sizeof *s);
    float x[30];
    int64_t y[10];
    for (int i = 0; i < 10; i++) {
        y[i] = i % 2;
        for (int j = 0; j < 3; j++) x[i * 3 + j] = (float)((i * 7 + j * 3) % 5) * 0.25f - 0.5f + (float)y[i];
    }
    gf_ds_desc d;
    memset(&d, 0, sizeof d);
    d.ndim = 1;
    d.shape[0] = 3;
    d.n = 10;
    d.x_f32 = x;
    d.labels = y;
    d.n_classes = 2;
    d.name = "fuzz";
    s->ds = gf_ds_from_memory(ctx, &d);
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 4;
    lp.seed = 3;
    lp.prefetch = false;
    s->train = s->ds ? gf_loader_new(ctx, s->ds, &lp) : NULL;
    lp.shuffle = false;
    s->val = s->ds ? gf_loader_new(ctx, s->ds, &lp) : NULL;
    gf_rng r;
    gf_rng_seed(&r, 5);
    gf_module *kids[] = {gf_nn_linear(ctx, &r, 3, 4, true), gf_nn_batch_norm1d(ctx, 4, NULL),
                         gf_nn_relu(ctx), gf_nn_linear(ctx, &r, 4, 2, true)};
    s->model = gf_nn_sequential_of(ctx, 4, kids);
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_ADAM);
    hp.lr = 0.01;
    s->opt = s->model ? gf_train_optim_new(ctx, s->model, &hp, NULL, 0) : NULL;
    gf_sched_params cos = gf_sched_default_params(GF_SCHED_COSINE);
    cos.t_max = 6;
    cos.interval = GF_SCHED_PER_STEP;
    s->sched = s->opt ? gf_sched_warmup(ctx, s->opt, 2, 0.5, &cos) : NULL;
    if (!s->train || !s->val || !s->sched) {
        fz_setup_free(s);
        return false;
    }
    return true;
}

/* gf_fit's settings for the corpus runs and the fuzzer's resumes (they must agree). */
static gf_fit_params fz_fit_params(int epochs) {
    gf_fit_params p = gf_fit_default_params();
    p.epochs = epochs;
    p.restore_best = true;
    p.clip_norm = 1.0;
    return p;
}

#endif
