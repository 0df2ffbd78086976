/* gf_fit's side of checkpoints: the run's settings a resumed run must match, the "fit.*"
 * entries (the epoch's running sums, the run's counters, the keep-best weights) written beside
 * gf_ckpt_parts, and the all-or-nothing resume from such a file. The layout is in
 * docs/CHECKPOINTS.md. */
#define _POSIX_C_SOURCE 200809L
#include "train/train_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gf_run_sums_new_epoch(gf_run_sums *s) {
    s->loss_sum = 0.0;
    s->seen = s->correct = s->batches = s->skipped = 0;
    s->acc_ok = true;
}

const char *gf_monitor_name(gf_monitor m) {
    switch (m) {
    case GF_MONITOR_VAL_LOSS: return "val_loss";
    case GF_MONITOR_VAL_ACC: return "val_acc";
    case GF_MONITOR_TRAIN_LOSS: return "train_loss";
    case GF_MONITOR_TRAIN_ACC: return "train_acc";
    default: return "auto";
    }
}

static const char *nonfinite_name(gf_nonfinite n) { return n == GF_NONFINITE_SKIP ? "skip" : "stop"; }

cJSON *gf_fit_settings_json(const gf_ctx *ctx, const gf_fit_params *p, gf_monitor mon,
                            const gf_loss_spec *loss, const gf_optim *opt, const gf_sched *sched,
                            const gf_loader *train, const gf_loader *val) {
    gf_loss_spec ce = gf_loss_default(GF_LOSS_CROSS_ENTROPY);
    const gf_loss_spec *l = loss ? loss : &ce;
    cJSON *o = cJSON_CreateObject(), *ls = cJSON_CreateObject(), *ck = cJSON_CreateObject();
    bool ok = o && ls && ck;
    if (ok) {
        cJSON_AddStringToObject(o, "loop", "gf_fit");
        cJSON_AddNumberToObject(o, "epochs", p->epochs);
        cJSON_AddNumberToObject(o, "accum_steps", p->accum_steps);
        cJSON_AddNumberToObject(o, "clip_norm", p->clip_norm);
        cJSON_AddNumberToObject(o, "clip_value", p->clip_value);
        cJSON_AddStringToObject(o, "on_nonfinite", nonfinite_name(p->on_nonfinite));
        cJSON_AddStringToObject(o, "monitor", gf_monitor_name(mon));
        cJSON_AddNumberToObject(o, "min_delta", p->min_delta);
        cJSON_AddNumberToObject(o, "patience", p->patience);
        cJSON_AddBoolToObject(o, "restore_best", p->restore_best);
        cJSON_AddStringToObject(ls, "kind", gf_loss_kind_name(l->kind));
        cJSON_AddNumberToObject(ls, "label_smoothing", l->label_smoothing);
        cJSON_AddNumberToObject(ls, "beta", l->beta);
        cJSON_AddItemToObject(o, "loss", ls);
        ls = NULL;
        cJSON_AddNumberToObject(o, "batches_per_epoch", (double)gf_loader_batches_per_epoch(train));
        cJSON_AddBoolToObject(o, "validation", val != NULL);
        cJSON_AddStringToObject(o, "optimizer", gf_optim_kind_name(gf_optim_get_kind(opt)));
        cJSON_AddNumberToObject(o, "groups", gf_optim_n_groups(opt));
        if (sched) cJSON_AddStringToObject(o, "schedule", gf_sched_kind_name(gf_sched_get_kind(sched)));
        else cJSON_AddNullToObject(o, "schedule");
        cJSON_AddNumberToObject(o, "threads", gf_ctx_threads(ctx));
        cJSON_AddNumberToObject(ck, "every_steps", (double)p->checkpoint.every_steps);
        cJSON_AddBoolToObject(ck, "every_epoch", p->checkpoint.every_epoch);
        cJSON_AddNumberToObject(ck, "keep_last", p->checkpoint.keep_last);
        cJSON_AddNumberToObject(ck, "keep_best", p->checkpoint.keep_best);
        cJSON_AddItemToObject(o, "checkpoint", ck);
        ck = NULL;
    }
    cJSON_Delete(ls);
    cJSON_Delete(ck);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The settings a resumed run must share with its checkpoint (they change the numbers). */
static gf_status check_settings(gf_ctx *ctx, const char *path, const char *stored, const cJSON *now) {
    static const char *const must[] = {"loop", "accum_steps", "clip_norm", "clip_value",
                                       "on_nonfinite", "monitor", "min_delta", "restore_best",
                                       "loss", "batches_per_epoch", "validation", "optimizer",
                                       "groups", "schedule"};
    cJSON *old = cJSON_Parse(stored);
    gf_status st = GF_OK;
    for (size_t i = 0; i < sizeof must / sizeof must[0] && st == GF_OK; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(old, must[i]);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(now, must[i]);
        char *sa = a ? cJSON_PrintUnformatted(a) : NULL, *sb = b ? cJSON_PrintUnformatted(b) : NULL;
        if (!sa || !sb || strcmp(sa, sb) != 0)
            st = gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                  "fit resume: %s was written with %s = %.100s, this run has %.100s",
                                  path, must[i], sa ? sa : "(missing)", sb ? sb : "(missing)");
        free(sa);
        free(sb);
    }
    cJSON_Delete(old);
    return st;
}

static const char *const sum_keys[] = {"fit.loss_sum", "fit.seen",  "fit.correct",
                                       "fit.acc_ok",   "fit.batches", "fit.skipped",
                                       "fit.steps",    "fit.skipped_total"};
enum { N_SUM_KEYS = sizeof sum_keys / sizeof sum_keys[0] };

static bool parse_count(const char *s, int64_t *out) {
    if (!s || *s < '0' || *s > '9') return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v >= (1LL << 53)) return false; /* increments can never overflow */
    *out = v;
    return true;
}

/* Reads the "fit.*" sums of an open checkpoint; every "fit." key must be one of them. */
static gf_status read_sums(gf_ctx *ctx, const gf_st_file *f, gf_run_sums *s) {
    const char *path = gf_st_path(f);
    for (int i = 0; i < gf_st_metadata_count(f); i++) {
        const char *k = gf_st_metadata_key(f, i);
        bool known = strncmp(k, "fit.", 4) != 0;
        for (int j = 0; j < N_SUM_KEYS && !known; j++) known = strcmp(k, sum_keys[j]) == 0;
        if (!known)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "fit resume: %s: unknown metadata '%.200s'",
                                    path, k);
    }
    const char *v[N_SUM_KEYS];
    for (int j = 0; j < N_SUM_KEYS; j++)
        if (!(v[j] = gf_st_metadata_get(f, sum_keys[j])))
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "fit resume: %s: missing metadata '%s' "
                                    "(not written by gf_fit?)", path, sum_keys[j]);
    char *end;
    s->loss_sum = strtod(v[0], &end);
    bool ok = *v[0] && !*end && isfinite(s->loss_sum);
    ok = ok && parse_count(v[1], &s->seen) && parse_count(v[2], &s->correct) &&
         s->correct <= s->seen;
    ok = ok && (!strcmp(v[3], "true") || !strcmp(v[3], "false"));
    s->acc_ok = ok && !strcmp(v[3], "true");
    ok = ok && parse_count(v[4], &s->batches) && parse_count(v[5], &s->skipped) &&
         s->skipped <= s->batches && parse_count(v[6], &s->steps) &&
         parse_count(v[7], &s->skipped_total) && s->skipped <= s->skipped_total;
    if (!ok)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "fit resume: %s: malformed 'fit.*' sums "
                                "(loss_sum %.40s, seen %.24s, correct %.24s, acc_ok %.8s, "
                                "batches %.24s, skipped %.24s, steps %.24s, skipped_total %.24s)",
                                path, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
    return GF_OK;
}

/* The keep-best weights "fit.best.<name>": all of the model's state_dict or none, each with
 * the tensor's dtype and shape. *present says which. */
static gf_status check_best(gf_ctx *ctx, const gf_st_file *f, const gf_snapshot *snap,
                            bool *present) {
    const char *path = gf_st_path(f);
    int n = 0;
    for (int i = 0; i < gf_st_count(f); i++) {
        const char *name = gf_st_get(f, i)->name;
        if (strncmp(name, "fit.", 4) != 0) continue;
        if (strncmp(name, "fit.best.", 9) != 0 || !snap->list)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "fit resume: %s: unexpected tensor '%.200s'",
                                    path, name);
        n++;
    }
    *present = n > 0;
    if (!n) return GF_OK;
    char key[512];
    for (int i = 0; i < snap->list->n; i++) {
        const gf_tensor *t = snap->list->items[i].tensor;
        snprintf(key, sizeof key, "fit.best.%s", snap->list->items[i].name);
        const gf_st_info *info = gf_st_find(f, key);
        bool same = info && info->ndim == t->ndim &&
                    info->dtype == (t->dtype == GF_F32 ? GF_ST_F32 : GF_ST_I64);
        for (int d = 0; same && d < t->ndim; d++) same = info->shape[d] == t->shape[d];
        if (!same)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "fit resume: %s: best weights '%s' %s",
                                    path, key, info ? "differ in dtype or shape from the model's"
                                                    : "missing");
    }
    if (n != snap->list->n)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "fit resume: %s: %d best-weight tensors, the "
                                "model has %d", path, n, snap->list->n);
    return GF_OK;
}

gf_status gf_fit_resume(gf_ctx *ctx, gf_fit_io *io, const cJSON *now, gf_ckpt_progress *prog,
                        gf_run_sums *sums) {
    const gf_fit_params *p = io->p;
    gf_ckpt *ck = gf_ckpt_open(ctx, p->resume_from);
    if (!ck) return gf_ctx_status(ctx);
    const gf_st_file *f = gf_ckpt_file(ck);
    const int64_t nb = gf_loader_batches_per_epoch(io->parts.train);
    gf_ckpt_progress pr = *gf_ckpt_get_progress(ck);
    gf_run_sums s;
    bool best_present = false;
    gf_status st = check_settings(ctx, p->resume_from, gf_ckpt_settings(ck), now);
    if (st == GF_OK && (pr.batch > nb || pr.epoch + (pr.batch > 0) > p->epochs))
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit resume: %s is at epoch %lld batch %lld; "
                              "this run has %d epochs of %lld batches", p->resume_from,
                              (long long)pr.epoch, (long long)pr.batch, p->epochs, (long long)nb);
    if (st == GF_OK) st = read_sums(ctx, f, &s);
    if (st == GF_OK && s.batches != pr.batch)
        st = gf_ctx_set_error(ctx, GF_ERR_FORMAT, "fit resume: %s: 'fit.batches' %lld differs from "
                              "'graft.batch' %lld", p->resume_from, (long long)s.batches,
                              (long long)pr.batch);
    if (st == GF_OK) st = check_best(ctx, f, io->snap, &best_present);
    if (st == GF_OK && io->snap->list && pr.best_epoch > 0 && !best_present)
        st = gf_ctx_set_error(ctx, GF_ERR_FORMAT, "fit resume: %s: best epoch %lld but no "
                              "'fit.best.*' weights", p->resume_from, (long long)pr.best_epoch);
    if (st == GF_OK) st = gf_ckpt_restore(ctx, ck, &io->parts);
    if (st == GF_OK) {
        *prog = pr;
        *sums = s;
        for (int i = 0; best_present && i < io->snap->list->n; i++) {
            char key[512];
            const gf_tensor *t = io->snap->list->items[i].tensor;
            snprintf(key, sizeof key, "fit.best.%s", io->snap->list->items[i].name);
            memcpy(io->snap->data[i], gf_st_find(f, key)->data,
                   gf_dtype_size(t->dtype) * (size_t)t->numel);
        }
        io->snap->taken = best_present;
    }
    gf_ckpt_close(ck);
    return st;
}

gf_status gf_fit_save(gf_ctx *ctx, gf_fit_io *io, const gf_ckpt_progress *prog,
                      const gf_run_sums *s, bool regular, bool best, gf_fit_result *res) {
    gf_state_list *x = gf_state_list_new(ctx);
    if (!x) return gf_ctx_status(ctx);
    char v[40];
    const int64_t nums[N_SUM_KEYS] = {0, s->seen, s->correct, 0, s->batches, s->skipped,
                                      s->steps, s->skipped_total};
    gf_status st = GF_OK;
    for (int j = 0; j < N_SUM_KEYS && st == GF_OK; j++) {
        if (j == 0) snprintf(v, sizeof v, "%.17g", s->loss_sum);
        else if (j == 3) snprintf(v, sizeof v, "%s", s->acc_ok ? "true" : "false");
        else snprintf(v, sizeof v, "%lld", (long long)nums[j]);
        st = gf_state_list_set_meta(ctx, x, sum_keys[j], v);
    }
    for (int i = 0; st == GF_OK && io->snap->taken && i < io->snap->list->n; i++) {
        const gf_tensor *t = io->snap->list->items[i].tensor;
        char key[512];
        snprintf(key, sizeof key, "fit.best.%s", io->snap->list->items[i].name);
        gf_tensor *w = gf_tensor_wrap(ctx, t->dtype, t->ndim, t->shape, io->snap->data[i]);
        st = w ? gf_state_list_add(ctx, x, key, w, true) : gf_ctx_status(ctx);
    }
    gf_ckpt_parts parts = io->parts;
    parts.progress = *prog;
    parts.extra = x;
    /* the keep-best copy first: a crash between the two writes resumes from before this epoch
     * end, which then writes both again */
    bool saved = false;
    if (st == GF_OK && best)
        st = gf_ckpt_write_best(ctx, &io->p->checkpoint, &parts, io->maximize, &saved);
    res->checkpoints += saved;
    if (st == GF_OK && regular) {
        st = gf_ckpt_write(ctx, &io->p->checkpoint, &parts, NULL, 0);
        if (st == GF_OK) res->checkpoints++;
    }
    gf_state_list_free(x);
    return st;
}
