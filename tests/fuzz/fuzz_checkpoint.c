/* libFuzzer target: any bytes given as a checkpoint must be refused with an error that changes
 * nothing (weights, optimizer, schedule, RNG, loader positions are compared before and after),
 * or restore; the same bytes as a gf_fit resume file must error or train on without a crash,
 * leak or overread. Seed corpus: corpus/checkpoint (see fuzz_checkpoint_setup.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_checkpoint_setup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The state a failed restore must leave alone: every state_dict tensor's bytes, the
 * optimizer's step count and group-0 lr, the schedule's epoch, the RNG, the loader positions. */
typedef struct fz_state {
    unsigned char *bytes;
    size_t n;
    int64_t steps, sched_epoch, pos[4];
    double lr;
    gf_rng rng;
} fz_state;

static void capture(gf_ctx *ctx, const fz_setup *s, fz_state *st) {
    memset(st, 0, sizeof *st);
    gf_named_tensors *l = gf_module_named_tensors(ctx, s->model, GF_STATE_ALL);
    for (int i = 0; l && i < l->n; i++) st->n += gf_dtype_size(l->items[i].tensor->dtype) * (size_t)l->items[i].tensor->numel;
    st->bytes = malloc(st->n ? st->n : 1);
    size_t at = 0;
    for (int i = 0; l && st->bytes && i < l->n; i++) {
        const gf_tensor *t = l->items[i].tensor;
        gf_copy_out(t, st->bytes + at);
        at += gf_dtype_size(t->dtype) * (size_t)t->numel;
    }
    gf_named_tensors_free(l);
    st->steps = gf_optim_steps(s->opt);
    st->lr = gf_optim_group_lr(s->opt, 0);
    st->sched_epoch = gf_sched_last_epoch(s->sched);
    st->rng = *gf_ctx_rng(ctx);
    st->pos[0] = gf_loader_epoch(s->train);
    st->pos[1] = gf_loader_batch_index(s->train);
    st->pos[2] = gf_loader_epoch(s->val);
    st->pos[3] = gf_loader_batch_index(s->val);
}

static bool same(const fz_state *a, const fz_state *b) {
    return a->n == b->n && a->bytes && b->bytes && memcmp(a->bytes, b->bytes, a->n) == 0 &&
           a->steps == b->steps && a->lr == b->lr && a->sched_epoch == b->sched_epoch &&
           a->rng.key == b->rng.key && a->rng.counter == b->rng.counter &&
           a->rng.lane == b->rng.lane && memcmp(a->rng.block, b->rng.block, sizeof a->rng.block) == 0 &&
           memcmp(a->pos, b->pos, sizeof a->pos) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static gf_ctx *ctx;
    static char path[64];
    if (!ctx) {
        gf_ctx_params p = gf_ctx_default_params();
        p.n_threads = 1;
        p.arena_bytes = 1 << 16;
        ctx = gf_ctx_new(&p);
        snprintf(path, sizeof path, "/tmp/graft-fuzz-ckpt-%ld.safetensors", (long)getpid());
    }
    uint8_t *copy = malloc(size ? size : 1); /* exact size: ASan sees any overread */
    if (!copy || !ctx) return 0;
    memcpy(copy, data, size);
    fz_setup s;
    if (!fz_setup_new(ctx, &s)) abort();
    gf_ckpt *ck = gf_ckpt_open_memory(ctx, copy, size, "fuzz");
    if (ck) {
        const gf_ckpt_progress *pr = gf_ckpt_get_progress(ck);
        (void)strlen(gf_ckpt_settings(ck));
        (void)pr;
        fz_state before, after;
        capture(ctx, &s, &before);
        gf_ckpt_parts parts;
        memset(&parts, 0, sizeof parts);
        parts.model = s.model;
        parts.opt = s.opt;
        parts.sched = s.sched;
        parts.rng = gf_ctx_rng(ctx);
        parts.train = s.train;
        parts.val = s.val;
        if (gf_ckpt_restore(ctx, ck, &parts) != GF_OK) {
            capture(ctx, &s, &after);
            if (!same(&before, &after)) {
                fprintf(stderr, "failed restore changed the state: %s\n", gf_ctx_error(ctx));
                abort();
            }
            free(after.bytes);
        }
        free(before.bytes);
        gf_ckpt_close(ck);
        gf_ctx_clear_error(ctx);
        /* the same bytes through gf_fit's resume (its own "fit.*" checks), on a fresh setup */
        fz_setup_free(&s);
        if (!fz_setup_new(ctx, &s)) abort();
        FILE *f = fopen(path, "wb");
        if (f && fwrite(copy, 1, size, f) == size && fclose(f) == 0) {
            f = NULL;
            gf_fit_params fp = fz_fit_params(3);
            fp.resume_from = path;
            gf_fit(ctx, s.model, NULL, s.opt, s.sched, s.train, s.val, &fp, NULL);
        }
        if (f) fclose(f);
        unlink(path);
    }
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    fz_setup_free(&s);
    free(copy);
    return 0;
}
