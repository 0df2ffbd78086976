/* The training loop (gf_fit) and evaluation, written only against graft's public API so a user
 * can copy this file and change the loop: batches from a loader, loss, backward, accumulation,
 * clipping, optimizer and schedule steps, validation, early stopping, keep-best, callbacks,
 * checkpoints and exact resume. */
#define _POSIX_C_SOURCE 200809L
#include "graft/graft.h"
#include "graft/train.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

gf_loss_spec gf_loss_default(gf_loss_kind kind) {
    gf_loss_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.beta = 1.0f;
    return s;
}

static const char *loss_name(gf_loss_kind k) {
    static const char *const names[GF_LOSS_KIND_COUNT] = {"cross_entropy", "mse", "l1",
                                                          "smooth_l1", "bce_with_logits", "custom"};
    return (k >= 0 && k < GF_LOSS_KIND_COUNT) ? names[k] : "?";
}

/* A float target of the output's numel but another shape ([N] for [N, 1]) is viewed as the
 * output's shape. */
static gf_tensor *match_target(gf_ctx *ctx, gf_tensor *out, gf_tensor *y) {
    if (y->dtype != GF_F32 || gf_same_shape(out, y) || out->numel != y->numel) return y;
    return gf_reshape(ctx, y, out->ndim, out->shape);
}

gf_tensor *gf_loss_compute(gf_ctx *ctx, const gf_loss_spec *loss, gf_tensor *out, gf_tensor *y) {
    gf_loss_spec ce = gf_loss_default(GF_LOSS_CROSS_ENTROPY);
    const gf_loss_spec *l = loss ? loss : &ce;
    if (!out || !y) {
        if (gf_ctx_status(ctx) == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss %s: NULL output or target",
                             loss_name(l->kind));
        return NULL;
    }
    switch (l->kind) {
    case GF_LOSS_CROSS_ENTROPY: {
        gf_ce_params p = gf_ce_default_params();
        p.label_smoothing = l->label_smoothing;
        return gf_cross_entropy_ex(ctx, out, y, &p);
    }
    case GF_LOSS_MSE: return gf_mse_loss(ctx, out, match_target(ctx, out, y), GF_REDUCE_MEAN);
    case GF_LOSS_L1: return gf_l1_loss(ctx, out, match_target(ctx, out, y), GF_REDUCE_MEAN);
    case GF_LOSS_SMOOTH_L1:
        return gf_smooth_l1_loss(ctx, out, match_target(ctx, out, y), GF_REDUCE_MEAN, l->beta);
    case GF_LOSS_BCE_WITH_LOGITS:
        return gf_bce_with_logits(ctx, out, match_target(ctx, out, y), NULL, NULL, GF_REDUCE_MEAN);
    case GF_LOSS_CUSTOM: {
        if (!l->fn) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss custom: no function given");
            return NULL;
        }
        gf_tensor *v = l->fn(ctx, out, y, l->user);
        if (v && v->numel != 1) {
            char s[64];
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "loss custom: returned %s, expected a scalar",
                             gf_shape_str(v, s, sizeof s));
            return NULL;
        }
        if (!v && gf_ctx_status(ctx) == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss custom: returned NULL");
        return v;
    }
    default:
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "loss: unknown kind %d", (int)l->kind);
        return NULL;
    }
}

int64_t gf_batch_correct(const gf_loss_spec *loss, const gf_tensor *out, const gf_tensor *y,
                         float *scratch) {
    const int64_t n = y->numel;
    if (out->ndim < 1 || out->shape[0] != n || n == 0) return -1;
    const float *o = gf_f32(out);
    if (!gf_tensor_is_contiguous(out)) {
        if (!scratch) return -1;
        gf_copy_out(out, scratch);
        o = scratch;
    }
    int64_t correct = 0;
    if (y->dtype == GF_I64 && out->ndim == 2) {
        const int64_t c = out->shape[1];
        for (int64_t i = 0; i < n; i++) {
            int64_t best = 0;
            for (int64_t j = 1; j < c; j++)
                if (o[i * c + j] > o[i * c + best]) best = j;
            correct += best == gf_get_i64(y, i);
        }
        return correct;
    }
    if (loss && loss->kind == GF_LOSS_BCE_WITH_LOGITS && y->dtype == GF_F32 && out->numel == n) {
        for (int64_t i = 0; i < n; i++) correct += (o[i] > 0.0f) == (gf_get_f32(y, i) >= 0.5f);
        return correct;
    }
    return -1;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Scratch for non-contiguous outputs in gf_batch_correct (grown on demand). */
typedef struct scratch {
    float *p;
    int64_t n;
} scratch;

static float *scratch_for(scratch *s, int64_t n) {
    if (n > s->n) {
        float *p = realloc(s->p, sizeof(float) * (size_t)n);
        if (!p) return NULL;
        s->p = p;
        s->n = n;
    }
    return s->p;
}

gf_status gf_evaluate(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, gf_loader *loader,
                      double *mean_loss, double *accuracy) {
    if (mean_loss) *mean_loss = NAN;
    if (accuracy) *accuracy = NAN;
    if (!model || !loader)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "evaluate: NULL model or loader");
    const bool was_training = gf_module_is_training(model);
    const bool had_grad = gf_ctx_set_grad_enabled(ctx, false);
    gf_module_train(model, false);
    double loss_sum = 0.0;
    int64_t count = 0, correct = 0;
    bool acc_ok = true;
    scratch sc = {NULL, 0};
    gf_batch b;
    gf_status st = GF_OK;
    while (gf_loader_next(ctx, loader, &b)) {
        gf_tensor *out = gf_module_forward(ctx, model, b.x);
        gf_tensor *l = gf_loss_compute(ctx, loss, out, b.y);
        if (!l) {
            st = gf_ctx_status(ctx);
            gf_ctx_reset(ctx);
            break;
        }
        loss_sum += (double)gf_get_f32(l, 0) * (double)b.n;
        count += b.n;
        int64_t c = acc_ok ? gf_batch_correct(loss, out, b.y, scratch_for(&sc, out->numel)) : -1;
        if (c < 0) acc_ok = false;
        else correct += c;
        gf_ctx_reset(ctx);
    }
    if (st == GF_OK) st = gf_ctx_status(ctx);
    free(sc.p);
    gf_module_train(model, was_training);
    gf_ctx_set_grad_enabled(ctx, had_grad);
    if (st != GF_OK) return st;
    if (mean_loss && count > 0) *mean_loss = loss_sum / (double)count;
    if (accuracy && count > 0 && acc_ok) *accuracy = (double)correct / (double)count;
    return GF_OK;
}

gf_fit_params gf_fit_default_params(void) {
    gf_fit_params p;
    memset(&p, 0, sizeof p);
    p.epochs = 10;
    p.accum_steps = 1;
    return p;
}

/* A copy of the model's parameters and buffers (keep-best). */
typedef struct snapshot {
    gf_named_tensors *list;
    void **data;
    bool taken;
} snapshot;

static gf_status snap_init(gf_ctx *ctx, snapshot *s, gf_module *m) {
    s->list = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    if (!s->list) return gf_ctx_status(ctx);
    s->data = calloc((size_t)(s->list->n ? s->list->n : 1), sizeof *s->data);
    if (!s->data) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "fit: out of memory (keep-best)");
    for (int i = 0; i < s->list->n; i++) {
        const gf_tensor *t = s->list->items[i].tensor;
        s->data[i] = malloc(gf_dtype_size(t->dtype) * (size_t)(t->numel ? t->numel : 1));
        if (!s->data[i])
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "fit: out of memory for the best weights");
    }
    return GF_OK;
}

static void snap_take(snapshot *s) {
    for (int i = 0; i < s->list->n; i++) gf_copy_out(s->list->items[i].tensor, s->data[i]);
    s->taken = true;
}

static void snap_restore(snapshot *s) {
    for (int i = 0; i < s->list->n; i++) gf_copy_in(s->list->items[i].tensor, s->data[i]);
}

static void snap_free(snapshot *s) {
    for (int i = 0; s->list && s->data && i < s->list->n; i++) free(s->data[i]);
    free(s->data);
    gf_named_tensors_free(s->list);
}

/* Multiplies every gradient of the optimizer's trainable parameters by f. */
static void scale_grads(gf_optim *opt, float f) {
    for (int i = 0; i < gf_optim_n_params(opt); i++) {
        gf_tensor *p = gf_optim_param(opt, i);
        if (!p->requires_grad || !p->grad) continue;
        float *g = gf_f32(p->grad);
        for (int64_t k = 0; k < p->grad->numel; k++) g[k] *= f;
    }
}

static const char *monitor_name(gf_monitor m) {
    switch (m) {
    case GF_MONITOR_VAL_LOSS: return "val_loss";
    case GF_MONITOR_VAL_ACC: return "val_acc";
    case GF_MONITOR_TRAIN_LOSS: return "train_loss";
    case GF_MONITOR_TRAIN_ACC: return "train_acc";
    default: return "auto";
    }
}

/* One optimizer step from the accumulated gradients of `used` of `group` batches. */
static gf_status apply_step(gf_ctx *ctx, gf_optim *opt, gf_sched *sched, const gf_fit_params *p,
                            int used, double *grad_norm) {
    *grad_norm = NAN;
    if (p->accum_steps > 1 && used != p->accum_steps)
        scale_grads(opt, (float)p->accum_steps / (float)used);
    if (p->clip_norm > 0 &&
        gf_optim_clip_grad_norm(ctx, opt, p->clip_norm, 2.0, false, grad_norm) != GF_OK)
        return gf_ctx_status(ctx);
    if (p->clip_value > 0 && gf_optim_clip_grad_value(ctx, opt, p->clip_value) != GF_OK)
        return gf_ctx_status(ctx);
    if (gf_optim_step(ctx, opt) != GF_OK) return gf_ctx_status(ctx);
    if (sched && gf_sched_get_interval(sched) == GF_SCHED_PER_STEP &&
        gf_sched_step(ctx, sched) != GF_OK)
        return gf_ctx_status(ctx);
    return GF_OK;
}

/* ---- checkpoints ------------------------------------------------------------------------------
 * A gf_fit checkpoint is gf_ckpt_parts (weights, optimizer, schedule, context RNG, loader
 * positions, progress, settings) plus, as extra entries, the running sums of the epoch in
 * progress and the run's counters ("fit.*" metadata) and the keep-best weights
 * ("fit.best.<state_dict name>"). Checkpoints are written only right after an optimizer step
 * or at an epoch's end, where no gradient is pending. */

typedef struct run_sums {
    double loss_sum;              /* sum over this epoch's finite batches of loss x examples */
    int64_t seen, correct;        /* their examples and correct predictions */
    bool acc_ok;                  /* accuracy applies */
    int64_t batches, skipped;     /* batches of this epoch, skipped ones among them */
    int64_t steps, skipped_total; /* the run's optimizer steps and skipped batches */
} run_sums;

static void sums_new_epoch(run_sums *s) {
    s->loss_sum = 0.0;
    s->seen = s->correct = s->batches = s->skipped = 0;
    s->acc_ok = true;
}

static const char *nonfinite_name(gf_nonfinite n) { return n == GF_NONFINITE_SKIP ? "skip" : "stop"; }

/* The run's settings as JSON (a new cJSON object; NULL when out of memory). */
static cJSON *settings_json(const gf_ctx *ctx, const gf_fit_params *p, gf_monitor mon,
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
        cJSON_AddStringToObject(o, "monitor", monitor_name(mon));
        cJSON_AddNumberToObject(o, "min_delta", p->min_delta);
        cJSON_AddNumberToObject(o, "patience", p->patience);
        cJSON_AddBoolToObject(o, "restore_best", p->restore_best);
        cJSON_AddStringToObject(ls, "kind", loss_name(l->kind));
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
static gf_status read_sums(gf_ctx *ctx, const gf_st_file *f, run_sums *s) {
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
static gf_status check_best(gf_ctx *ctx, const gf_st_file *f, const snapshot *snap, bool *present) {
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

typedef struct fit_io {       /* what checkpoints need from gf_fit's arguments */
    gf_ckpt_parts parts;      /* model, opt, sched, rng, loaders, settings */
    const gf_fit_params *p;
    snapshot *snap;
    bool maximize;
} fit_io;

/* Continues from io->p->resume_from: checks it belongs to this run and restores everything,
 * or nothing. */
static gf_status resume(gf_ctx *ctx, fit_io *io, const cJSON *now, gf_ckpt_progress *prog,
                        run_sums *sums) {
    const gf_fit_params *p = io->p;
    gf_ckpt *ck = gf_ckpt_open(ctx, p->resume_from);
    if (!ck) return gf_ctx_status(ctx);
    const gf_st_file *f = gf_ckpt_file(ck);
    const int64_t nb = gf_loader_batches_per_epoch(io->parts.train);
    gf_ckpt_progress pr = *gf_ckpt_get_progress(ck);
    run_sums s;
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

/* Writes a regular checkpoint (regular) and/or a keep-best copy (best) of the current state. */
static gf_status save(gf_ctx *ctx, fit_io *io, const gf_ckpt_progress *prog, const run_sums *s,
                      bool regular, bool best, gf_fit_result *res) {
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

/* ---- the loop ---------------------------------------------------------------------------- */

/* A regular checkpoint after the current batch of `epoch` (1-based), before its end. */
static gf_status save_mid_epoch(gf_ctx *ctx, fit_io *io, int epoch, double best, int bad_epochs,
                                gf_ckpt_progress *prog, run_sums *sums, gf_fit_result *res) {
    prog->epoch = epoch - 1;
    prog->batch = sums->batches;
    prog->best_metric = best;
    prog->best_epoch = res->best_epoch;
    prog->bad_epochs = bad_epochs;
    prog->metric = NAN;
    sums->steps = res->steps;
    sums->skipped_total = res->skipped;
    return save(ctx, io, prog, sums, true, false, res);
}

/* The replicas gf_fit runs with (*out NULL: none), by gf_fit_params.replicas. */
static gf_status make_replicas(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, int want,
                               gf_replicas **out) {
    *out = NULL;
    if (want == 1) return GF_OK;
    const bool custom = loss && loss->kind == GF_LOSS_CUSTOM;
    char why[384];
    if (want == 0) {
        if (gf_ctx_threads(ctx) < 2 || custom || !gf_module_replicable(model, why, sizeof why))
            return GF_OK;
        want = gf_ctx_threads(ctx);
    } else if (custom) {
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: replicas %d with a custom loss (it "
                                "need not be a mean over examples); use 0 or 1", want);
    }
    *out = gf_replicas_new(ctx, model, want);
    return *out ? GF_OK : gf_ctx_status(ctx);
}

/* Forward, loss and backward of one batch, the gradient of scale * loss added to the
 * parameters' only when the loss is finite: in the replicas when there are enough examples for
 * them, else in ctx. *lv: the batch's mean loss; *correct: as gf_batch_correct (-1 also when
 * sc is NULL: accuracy no longer counted). */
static gf_status forward_backward(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss,
                                  gf_replicas *rep, const gf_batch *b, float scale, scratch *sc,
                                  double *lv, int64_t *correct) {
    if (rep && b->n >= 2 * gf_replicas_count(rep)) {
        gf_replicas_out ro;
        gf_status st = gf_replicas_step(ctx, rep, loss, b->x, b->y, scale, &ro);
        *lv = ro.loss;
        *correct = sc ? ro.correct : -1;
        return st;
    }
    gf_tensor *out = gf_module_forward(ctx, model, b->x);
    gf_tensor *l = gf_loss_compute(ctx, loss, out, b->y);
    if (!l) return gf_ctx_status(ctx);
    *lv = (double)gf_get_f32(l, 0);
    *correct = sc ? gf_batch_correct(loss, out, b->y, scratch_for(sc, out->numel)) : -1;
    if (!isfinite(*lv)) return GF_OK;
    gf_tensor *scaled = scale != 1.0f ? gf_mul_scalar(ctx, l, scale) : l;
    if (!scaled) return gf_ctx_status(ctx);
    return gf_backward(ctx, scaled);
}

gf_status gf_fit(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, gf_optim *opt,
                 gf_sched *sched, gf_loader *train, gf_loader *val, const gf_fit_params *params,
                 gf_fit_result *result) {
    gf_fit_params p = params ? *params : gf_fit_default_params();
    gf_fit_result res;
    memset(&res, 0, sizeof res);
    res.best_metric = NAN;
    if (result) *result = res;
    if (gf_ctx_status(ctx) != GF_OK) return gf_ctx_status(ctx); /* an earlier error stands */
    if (!model || !opt || !train)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: NULL model, optimizer or train loader");
    if (p.epochs < 1 || p.accum_steps < 1 || p.patience < 0 || !(p.clip_norm >= 0) ||
        !(p.clip_value >= 0) || !(p.min_delta >= 0))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "fit: invalid settings (epochs %d >= 1, accum_steps %d >= 1, "
                                "patience %d >= 0, clip_norm %g, clip_value %g, min_delta %g >= 0)",
                                p.epochs, p.accum_steps, p.patience, p.clip_norm, p.clip_value,
                                p.min_delta);
    const gf_ckpt_policy *cp = &p.checkpoint;
    if (cp->dir && (cp->every_steps < 0 || cp->keep_last < 0 || cp->keep_best < 0))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "fit: invalid checkpoint settings (every_steps %lld, keep_last %d, "
                                "keep_best %d: none may be negative)",
                                (long long)cp->every_steps, cp->keep_last, cp->keep_best);
    gf_monitor mon = p.monitor;
    if (mon == GF_MONITOR_AUTO) mon = val ? GF_MONITOR_VAL_LOSS : GF_MONITOR_TRAIN_LOSS;
    if (!val && (mon == GF_MONITOR_VAL_LOSS || mon == GF_MONITOR_VAL_ACC))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: monitor %s needs a validation loader",
                                monitor_name(mon));
    const bool maximize = mon == GF_MONITOR_VAL_ACC || mon == GF_MONITOR_TRAIN_ACC;

    if (p.replicas < 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "fit: replicas %d, must be >= 0", p.replicas);
    snapshot snap = {NULL, NULL, false};
    scratch sc = {NULL, 0};
    gf_replicas *rep = NULL;
    cJSON *settings = NULL;
    char *settings_text = NULL;
    gf_status st = GF_OK;
    if (p.restore_best && (st = snap_init(ctx, &snap, model)) != GF_OK) goto done;

    const int64_t n_batches = gf_loader_batches_per_epoch(train);
    const bool checkpointing = cp->dir != NULL;
    fit_io io;
    memset(&io, 0, sizeof io);
    io.parts.model = model;
    io.parts.opt = opt;
    io.parts.sched = sched;
    io.parts.rng = gf_ctx_rng(ctx);
    io.parts.train = train;
    io.parts.val = val;
    io.p = &p;
    io.snap = &snap;
    io.maximize = maximize;
    if (checkpointing || p.resume_from) {
        settings = settings_json(ctx, &p, mon, loss, opt, sched, train, val);
        settings_text = settings ? cJSON_PrintUnformatted(settings) : NULL;
        if (!settings_text) {
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "fit: out of memory (settings)");
            goto done;
        }
        io.parts.settings = settings_text;
    }
    /* where the run starts: epoch first_epoch, after `sums.batches` of its batches */
    gf_ckpt_progress prog = gf_ckpt_progress_init();
    run_sums sums;
    memset(&sums, 0, sizeof sums);
    sums_new_epoch(&sums);
    if (p.resume_from) {
        if ((st = resume(ctx, &io, settings, &prog, &sums)) != GF_OK) goto done;
        res.resumed = true;
        res.epochs_run = (int)prog.epoch;
        res.best_epoch = (int)prog.best_epoch;
        res.best_metric = prog.best_metric;
        res.steps = sums.steps;
        res.skipped = sums.skipped_total;
    }
    if (checkpointing && (st = gf_ckpt_clean_temp(ctx, cp->dir, cp->prefix, NULL)) != GF_OK)
        goto done;
    const int first_epoch = (int)prog.epoch + 1;
    double best = prog.best_metric;
    int bad_epochs = (int)prog.bad_epochs;
    gf_module_train(model, true);
    if ((st = make_replicas(ctx, model, loss, p.replicas, &rep)) != GF_OK) goto done;
    if (res.resumed && prog.batch == 0 && p.patience > 0 && bad_epochs >= p.patience)
        res.stopped_early = true; /* the checkpoint is the end of a run that stopped early */
    for (int epoch = first_epoch; epoch <= p.epochs && !res.stopped_early; epoch++) {
        const double t0 = now_seconds();
        gf_epoch_stats es;
        memset(&es, 0, sizeof es);
        es.epoch = epoch;
        es.epochs = p.epochs;
        if (epoch != first_epoch) sums_new_epoch(&sums);
        /* a checkpoint after the epoch's last batch resumes straight into its end */
        bool stop = false, batches_done = sums.batches == n_batches;
        int micro = 0, used = 0; /* batches in the current accumulation group / with gradients */
        int64_t saved_at = -1;   /* the batch count of this epoch's last step checkpoint */
        gf_optim_zero_grad(opt);
        gf_batch b;
        /* a stop asked for mid-group waits for the group's step, so a checkpoint never has to
         * hold half-accumulated gradients */
        while (!(stop && micro == 0) && !batches_done && gf_loader_next(ctx, train, &b)) {
            gf_step_stats ss;
            memset(&ss, 0, sizeof ss);
            ss.epoch = epoch;
            ss.batch = b.index;
            ss.batches = n_batches;
            ss.lr = gf_optim_group_lr(opt, 0);
            ss.grad_norm = NAN;
            sums.batches++;
            double lv = NAN;
            int64_t c = -1;
            if ((st = forward_backward(ctx, model, loss, rep, &b, 1.0f / (float)p.accum_steps,
                                       sums.acc_ok ? &sc : NULL, &lv, &c)) != GF_OK) {
                gf_ctx_reset(ctx);
                goto done;
            }
            ss.loss = lv;
            if (!isfinite(lv)) {
                if (p.on_nonfinite == GF_NONFINITE_STOP) {
                    gf_ctx_reset(ctx);
                    st = gf_ctx_set_error(ctx, GF_ERR_NUMERIC,
                                          "fit: the training loss is %s at epoch %d, batch %lld of "
                                          "%lld (after %lld optimizer steps); set on_nonfinite to "
                                          "GF_NONFINITE_SKIP to skip such batches",
                                          isnan(lv) ? "nan" : "inf", epoch,
                                          (long long)b.index + 1, (long long)n_batches,
                                          (long long)(res.steps));
                    goto done;
                }
                ss.skipped = true;
                sums.skipped++;
                res.skipped++;
            } else {
                sums.loss_sum += lv * (double)b.n;
                sums.seen += b.n;
                if (c < 0) sums.acc_ok = false;
                else sums.correct += c;
                used++;
            }
            gf_ctx_reset(ctx);
            micro++;
            if (micro == p.accum_steps || b.index == n_batches - 1) {
                if (used > 0) {
                    if ((st = apply_step(ctx, opt, sched, &p, used, &ss.grad_norm)) != GF_OK)
                        goto done;
                    ss.stepped = true;
                    res.steps++;
                }
                gf_optim_zero_grad(opt);
                micro = used = 0;
                if (ss.stepped && checkpointing && cp->every_steps > 0 &&
                    gf_optim_steps(opt) % cp->every_steps == 0) {
                    if ((st = save_mid_epoch(ctx, &io, epoch, best, bad_epochs, &prog, &sums,
                                             &res)) != GF_OK)
                        goto done;
                    saved_at = sums.batches;
                }
            }
            ss.step = res.steps;
            if (p.on_step && !p.on_step(&ss, p.user)) {
                stop = true;
                res.stopped_by_callback = true;
            }
        }
        if ((st = gf_ctx_status(ctx)) != GF_OK) goto done; /* a loader error */
        if (stop && sums.batches < n_batches) {
            /* stopped mid-epoch: no end-of-epoch work; the checkpoint is this very batch, so a
             * resumed run continues with the next one */
            if (checkpointing && saved_at != sums.batches &&
                (st = save_mid_epoch(ctx, &io, epoch, best, bad_epochs, &prog, &sums, &res)) !=
                    GF_OK)
                goto done;
            res.epochs_run = epoch - 1;
            break;
        }
        es.batches = sums.batches;
        es.skipped = sums.skipped;
        es.steps = gf_optim_steps(opt);
        es.train_loss = sums.seen > 0 ? sums.loss_sum / (double)sums.seen : NAN;
        es.train_acc = (sums.seen > 0 && sums.acc_ok) ? (double)sums.correct / (double)sums.seen
                                                      : NAN;
        es.val_loss = es.val_acc = NAN;
        if (val && (st = gf_evaluate(ctx, model, loss, val, &es.val_loss, &es.val_acc)) != GF_OK)
            goto done;
        switch (mon) {
        case GF_MONITOR_VAL_LOSS: es.monitored = es.val_loss; break;
        case GF_MONITOR_VAL_ACC: es.monitored = es.val_acc; break;
        case GF_MONITOR_TRAIN_ACC: es.monitored = es.train_acc; break;
        default: es.monitored = es.train_loss; break;
        }
        if (sched && gf_sched_get_interval(sched) == GF_SCHED_PER_EPOCH &&
            (st = gf_sched_step_metric(ctx, sched, es.monitored)) != GF_OK)
            goto done;
        const double m = es.monitored;
        es.improved = !isnan(m) && (isnan(best) || (maximize ? m > best + p.min_delta
                                                             : m < best - p.min_delta));
        if (es.improved) {
            best = m;
            bad_epochs = 0;
            res.best_epoch = epoch;
            res.best_metric = m;
            if (p.restore_best) snap_take(&snap);
        } else {
            bad_epochs++;
        }
        es.bad_epochs = bad_epochs;
        es.lr = gf_optim_group_lr(opt, 0);
        es.seconds = now_seconds() - t0;
        res.epochs_run = epoch;
        res.last = es;
        if (p.on_epoch && !p.on_epoch(&es, p.user)) res.stopped_by_callback = true;
        if (checkpointing && (cp->every_epoch || cp->keep_best > 0)) {
            prog.epoch = epoch;
            prog.batch = 0;
            prog.best_metric = best;
            prog.best_epoch = res.best_epoch;
            prog.bad_epochs = bad_epochs;
            prog.metric = m;
            sums_new_epoch(&sums);
            sums.steps = res.steps;
            sums.skipped_total = res.skipped;
            if ((st = save(ctx, &io, &prog, &sums, cp->every_epoch, cp->keep_best > 0, &res)) !=
                GF_OK)
                goto done;
        }
        if (res.stopped_by_callback) break;
        if (p.patience > 0 && bad_epochs >= p.patience) res.stopped_early = true;
    }
    if (p.restore_best && snap.taken) {
        snap_restore(&snap);
        res.restored_best = true;
    }
done:
    gf_replicas_free(rep);
    snap_free(&snap);
    free(sc.p);
    cJSON_Delete(settings);
    free(settings_text);
    if (result) *result = res;
    return st;
}
