/* Multi-task learning with hard parameter sharing: the MultiTask module (a trunk and named
 * heads), its training in two modes (round-robin batches, or one step on the weighted sum of
 * the task losses: gf_fit with one loader per task) and the per-task report against
 * single-task baselines. */
#define _POSIX_C_SOURCE 200809L
#include "graft/multitask.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h" /* gf_ctx_prefix_error */
#include "graft/transfer.h"
#include "train/snapshot.h"

/* ---- the module -------------------------------------------------------------------------- */

#define MT_TYPE "MultiTask"

typedef struct mt_info {
    int64_t features; /* F: the trunk's output width (the old head's in_features) */
} mt_info;

static gf_tensor *mt_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return gf_module_forward(ctx, gf_module_child(self, "trunk"), x);
}

bool gf_mt_is(const gf_module *m) {
    return m && strcmp(gf_module_type(m), MT_TYPE) == 0 && gf_module_user(m) &&
           gf_module_child(m, "trunk") && gf_module_child(m, "heads");
}

int64_t gf_mt_features(const gf_module *mt) {
    return gf_mt_is(mt) ? ((const mt_info *)gf_module_user(mt))->features : -1;
}

gf_module *gf_mt_trunk(const gf_module *mt) {
    return gf_mt_is(mt) ? gf_module_child(mt, "trunk") : NULL;
}

int gf_mt_n_heads(const gf_module *mt) {
    return gf_mt_is(mt) ? gf_module_num_children(gf_module_child(mt, "heads")) : 0;
}

const char *gf_mt_head_name(const gf_module *mt, int i) {
    const char *name = NULL;
    if (!gf_mt_is(mt) || !gf_module_child_at(gf_module_child(mt, "heads"), i, &name)) return NULL;
    return name;
}

gf_module *gf_mt_head(const gf_module *mt, const char *name) {
    if (!gf_mt_is(mt) || !name || !name[0] || strchr(name, '.')) return NULL;
    return gf_module_child(gf_module_child(mt, "heads"), name);
}

gf_module *gf_mt_new(gf_ctx *ctx, gf_module *model, const char *head_path) {
    const char *op = "multitask";
    if (!model) {
        if (gf_ctx_status(ctx) == GF_OK) gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: NULL model", op);
        return NULL;
    }
    char def[256];
    if (!head_path && !(head_path = gf_transfer_default_head(ctx, model, def, sizeof def))) {
        gf_module_free(model);
        return NULL;
    }
    gf_module *old = gf_module_child(model, head_path);
    const gf_tensor *w = old ? gf_module_tensor(NULL, old, "weight") : NULL;
    if (!old || strcmp(gf_module_type(old), "Linear") != 0 || !w || w->ndim != 2) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: \"%s\" in %s is %s, not a Linear head", op,
                         head_path, gf_module_type(model), old ? gf_module_type(old) : "missing");
        gf_module_free(model);
        return NULL;
    }
    mt_info *info = malloc(sizeof *info);
    if (!info) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", op);
        gf_module_free(model);
        return NULL;
    }
    info->features = w->shape[1];
    if (gf_module_replace(ctx, model, head_path, gf_nn_identity(ctx)) != GF_OK) {
        free(info);
        gf_module_free(model);
        return NULL;
    }
    gf_module *mt = gf_nn_container(ctx, MT_TYPE, mt_forward, info, free); /* frees info on failure */
    if (!mt) {
        gf_module_free(model);
        return NULL;
    }
    gf_module_set_reentrant(mt, true);
    if (gf_module_add(ctx, mt, "trunk", model) != GF_OK ||
        gf_module_add(ctx, mt, "heads", gf_nn_container(ctx, "ModuleDict", NULL, NULL, NULL)) !=
            GF_OK) {
        gf_module_free(mt);
        return NULL;
    }
    return mt;
}

gf_status gf_mt_add_head_module(gf_ctx *ctx, gf_module *mt, const char *name, gf_module *head) {
    const char *op = "multitask add head";
    if (!head) {
        return gf_ctx_status(ctx) != GF_OK ? gf_ctx_status(ctx)
                                           : gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: NULL head", op);
    }
    gf_status st = GF_OK;
    if (!gf_mt_is(mt))
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: not a MultiTask module (gf_mt_new)", op);
    else if (!name || !name[0] || strchr(name, '.'))
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID,
                              "%s: task name \"%s\" must be non-empty without '.'", op,
                              name ? name : "(null)");
    else if (gf_mt_head(mt, name))
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: task \"%s\" already has a head", op, name);
    if (st != GF_OK) {
        gf_module_free(head);
        return st;
    }
    gf_module_train(head, gf_module_is_training(gf_mt_trunk(mt)));
    return gf_module_add(ctx, gf_module_child(mt, "heads"), name, head);
}

gf_status gf_mt_add_head(gf_ctx *ctx, gf_module *mt, const char *name, int64_t out_features,
                         gf_rng *rng) {
    if (!gf_mt_is(mt))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "multitask add head: not a MultiTask module (gf_mt_new)");
    if (out_features < 1)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "multitask add head: task \"%s\": out_features %lld must be >= 1",
                                name ? name : "(null)", (long long)out_features);
    return gf_mt_add_head_module(ctx, mt, name,
                                 gf_nn_linear(ctx, rng, gf_mt_features(mt), out_features, true));
}

/* "heads: a, b, c" into buf, for error messages. */
static const char *head_list(const gf_module *mt, char *buf, size_t cap) {
    size_t at = (size_t)snprintf(buf, cap, "heads:");
    for (int i = 0; i < gf_mt_n_heads(mt) && at + 4 < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s %s", i ? "," : "", gf_mt_head_name(mt, i));
    if (gf_mt_n_heads(mt) == 0) snprintf(buf + at, cap - at, " none");
    return buf;
}

gf_tensor *gf_mt_forward(gf_ctx *ctx, gf_module *mt, const char *task, gf_tensor *x) {
    if (!gf_mt_is(mt)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "multitask forward: not a MultiTask module");
        return NULL;
    }
    gf_module *head = gf_mt_head(mt, task);
    if (!head) {
        char hl[256];
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "multitask forward: no head for task \"%s\" (%s)",
                         task ? task : "(null)", head_list(mt, hl, sizeof hl));
        return NULL;
    }
    return gf_module_forward(ctx, head, gf_module_forward(ctx, gf_mt_trunk(mt), x));
}

/* ---- settings ---------------------------------------------------------------------------- */

static const char *const mode_names[GF_MT_MODE_COUNT] = {"interleave", "sum"};

const char *gf_mt_mode_name(gf_mt_mode m) {
    return (unsigned)m < GF_MT_MODE_COUNT ? mode_names[m] : "?";
}

bool gf_mt_mode_parse(const char *name, gf_mt_mode *out) {
    for (int i = 0; name && i < GF_MT_MODE_COUNT; i++)
        if (strcmp(name, mode_names[i]) == 0) {
            if (out) *out = (gf_mt_mode)i;
            return true;
        }
    return false;
}

gf_mt_task gf_mt_task_default(const char *name, gf_ds *train) {
    gf_mt_task t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.train = train;
    t.loss = gf_loss_default(GF_LOSS_CROSS_ENTROPY);
    t.weight = 1.0f;
    return t;
}

gf_mt_params gf_mt_default_params(void) {
    gf_mt_params p;
    memset(&p, 0, sizeof p);
    p.mode = GF_MT_INTERLEAVE;
    p.epochs = 10;
    p.batch_size = 64;
    p.optim = gf_optim_default_params(GF_OPTIM_ADAM);
    p.baselines = true;
    p.eval_batch = 64;
    return p;
}

/* ---- evaluation ---------------------------------------------------------------------------- */

static bool is_ce(const gf_mt_task *t) { return t->loss.kind == GF_LOSS_CROSS_ENTROPY; }

/* Task t's output: its head over the trunk. */
static gf_tensor *task_forward(gf_ctx *ctx, gf_module *mt, gf_tensor *x, void *user) {
    return gf_mt_forward(ctx, mt, ((const gf_mt_task *)user)->name, x);
}

gf_status gf_mt_evaluate(gf_ctx *ctx, gf_module *mt, const gf_mt_task *task, gf_ds *ds,
                         int64_t batch, double *mean_loss, double *accuracy) {
    if (mean_loss) *mean_loss = NAN;
    if (accuracy) *accuracy = NAN;
    if (!gf_mt_is(mt) || !task || !ds || batch < 1)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "multitask evaluate: NULL or bad module, task or data");
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = batch;
    lp.shuffle = false;
    gf_loader *ld = gf_loader_new(ctx, ds, &lp);
    if (!ld) return gf_ctx_status(ctx);
    gf_eval_params ep = gf_eval_default_params();
    ep.basic = true;
    ep.forward = task_forward;
    ep.forward_user = (void *)task;
    gf_eval_result r;
    gf_status st = gf_evaluate_ex(ctx, mt, &task->loss, ld, &ep, &r);
    gf_loader_free(ld);
    if (st == GF_OK) {
        if (mean_loss) *mean_loss = r.loss;
        if (accuracy && is_ce(task) && gf_ds_n_classes(ds) > 0) *accuracy = r.accuracy;
    }
    gf_eval_result_free(&r);
    return st;
}

/* The task's score on ds: accuracy for cross entropy, else the mean loss. */
static gf_status score_on(gf_ctx *ctx, gf_module *mt, const gf_mt_task *t, gf_ds *ds,
                          int64_t batch, double *score) {
    double loss, acc;
    gf_status st = gf_mt_evaluate(ctx, mt, t, ds, batch, &loss, &acc);
    *score = is_ce(t) ? acc : loss;
    return st;
}

/* ---- training ------------------------------------------------------------------------------ */

/* One run over a subset of the tasks: task indices sel[0..m). Curves go to loss_curve /
 * val_curve ([epochs * m], may be NULL), head steps to head_steps[m]. */
typedef struct mt_run {
    gf_ctx *ctx;
    gf_module *mt;
    const gf_mt_task *tasks;
    const int *sel;
    int m;
    const gf_mt_params *p;
    const char *label;
    double *loss_curve, *val_curve;
    int64_t *head_steps, trunk_steps;
    /* the epoch callback's working state */
    const char **names;
    double *vs;
    gf_status st;       /* a validation error inside the callback */
    bool stopped;       /* p->on_epoch asked to stop */
} mt_run;

/* gf_fit's epoch callback: each task's validation score, the curves, the head steps and
 * p->on_epoch. */
static bool mt_on_epoch(const gf_epoch_stats *es, void *user) {
    mt_run *r = user;
    const gf_mt_params *p = r->p;
    const double t0 = gf_now_seconds();
    const int e = es->epoch - 1;
    for (int j = 0; j < r->m; j++) {
        const gf_mt_task *t = &r->tasks[r->sel[j]];
        r->vs[j] = NAN;
        if (t->val && (r->st = score_on(r->ctx, r->mt, t, t->val, p->eval_batch, &r->vs[j])) !=
                          GF_OK)
            return false;
        if (r->loss_curve) r->loss_curve[e * r->m + j] = es->task_loss[j];
        if (r->val_curve) r->val_curve[e * r->m + j] = r->vs[j];
        r->head_steps[j] = es->task_steps[j];
    }
    r->trunk_steps = es->steps;
    if (p->on_epoch) {
        gf_mt_epoch me = {r->label, es->epoch, p->epochs, r->m, r->names, es->task_loss, r->vs,
                          es->seconds + (gf_now_seconds() - t0)};
        if (!p->on_epoch(&me, p->user)) {
            r->stopped = true;
            return false;
        }
    }
    return true;
}

/* The run through gf_fit: one loader, head optimizer and loss per task, the trunk's optimizer
 * as gf_fit's own, the tasks interleaved or summed by p->mode. */
static gf_status run_train(mt_run *r) {
    gf_ctx *ctx = r->ctx;
    const gf_mt_params *p = r->p;
    const int m = r->m;
    gf_fit_task *ft = calloc((size_t)m, sizeof *ft);
    r->names = calloc((size_t)m, sizeof *r->names);
    r->vs = calloc((size_t)m, sizeof *r->vs);
    gf_optim *topt = NULL;
    gf_status st = GF_OK;
    if (!ft || !r->names || !r->vs) {
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "multitask: out of memory");
        goto out;
    }
    for (int j = 0; j < m; j++) {
        const gf_mt_task *t = &r->tasks[r->sel[j]];
        r->names[j] = t->name;
        gf_loader_params lp = gf_loader_default_params();
        lp.batch_size = p->batch_size;
        lp.seed = p->seed + (uint64_t)r->sel[j];
        lp.shard_rank = p->shard_rank;
        lp.shard_count = p->shard_count;
        ft[j] = gf_fit_task_default(gf_loader_new(ctx, t->train, &lp));
        ft[j].name = t->name;
        ft[j].loss = t->loss;
        ft[j].weight = t->weight;
        ft[j].forward = task_forward;
        ft[j].forward_user = (void *)t;
        if (!ft[j].loader ||
            !(ft[j].opt = gf_train_optim_new(ctx, gf_mt_head(r->mt, t->name), &p->optim, NULL, 0))) {
            st = gf_ctx_status(ctx);
            goto out;
        }
    }
    if (!(topt = gf_train_optim_new(ctx, gf_mt_trunk(r->mt), &p->optim, NULL, 0))) {
        st = gf_ctx_status(ctx);
        goto out;
    }
    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = p->epochs;
    fp.tasks = ft;
    fp.n_tasks = m;
    fp.task_policy = p->mode == GF_MT_SUM ? GF_TASKS_SUM : GF_TASKS_INTERLEAVE;
    fp.on_epoch = mt_on_epoch;
    fp.user = r;
    fp.grad_sync = p->grad_sync;
    fp.grad_begin = p->grad_begin;
    fp.grad_sync_user = p->grad_sync_user;
    st = gf_fit(ctx, r->mt, NULL, topt, NULL, NULL, NULL, &fp, NULL);
    if (st != GF_OK) gf_ctx_prefix_error(ctx, "multitask %s: ", r->label);
    else if (r->st != GF_OK) st = r->st;
    else if (r->stopped) st = gf_ctx_set_error(ctx, GF_ERR_STATE, "multitask: stopped by the callback");
out:
    gf_optim_free(topt);
    for (int j = 0; ft && j < m; j++) {
        gf_optim_free(ft[j].opt);
        gf_loader_free(ft[j].loader);
    }
    free(ft);
    free(r->names);
    free(r->vs);
    r->names = NULL;
    r->vs = NULL;
    return st;
}

void gf_mt_result_free(gf_mt_result *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) {
        free(r->tasks[i].name);
        free(r->tasks[i].train_loss);
        free(r->tasks[i].val_score);
    }
    free(r->tasks);
    free(r);
}

static gf_status check_tasks(gf_ctx *ctx, gf_module *mt, const gf_mt_task *tasks, int n,
                             const gf_mt_params *p) {
    const char *op = "multitask fit";
    if (!gf_mt_is(mt))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: not a MultiTask module (gf_mt_new)", op);
    if (!tasks || n < 1 || !p)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: no tasks (n = %d) or NULL params", op, n);
    if (p->epochs < 1 || p->batch_size < 1 || p->eval_batch < 1 ||
        (unsigned)p->mode >= GF_MT_MODE_COUNT)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "%s: epochs %d, batch_size %lld, eval_batch %lld must be >= 1 and "
                                "mode %d known", op, p->epochs, (long long)p->batch_size,
                                (long long)p->eval_batch, (int)p->mode);
    if (gf_optim_check_params(ctx, &p->optim) != GF_OK) return gf_ctx_status(ctx);
    for (int i = 0; i < n; i++) {
        const gf_mt_task *t = &tasks[i];
        char hl[256];
        if (!t->name || !gf_mt_head(mt, t->name))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: task %d \"%s\" has no head (%s)", op,
                                    i, t->name ? t->name : "(null)", head_list(mt, hl, sizeof hl));
        for (int j = 0; j < i; j++)
            if (strcmp(tasks[j].name, t->name) == 0)
                return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: task \"%s\" listed twice", op,
                                        t->name);
        if (!t->train)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: task \"%s\" has no training data",
                                    op, t->name);
        if (!(t->weight > 0) || !isfinite(t->weight))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: task \"%s\": weight %g must be > 0",
                                    op, t->name, (double)t->weight);
    }
    return GF_OK;
}

gf_status gf_mt_fit(gf_ctx *ctx, gf_module *mt, const gf_mt_task *tasks, int n,
                    const gf_mt_params *p, gf_mt_result **out) {
    if (out) *out = NULL;
    if (gf_ctx_status(ctx) != GF_OK) return gf_ctx_status(ctx); /* an earlier error stands */
    if (check_tasks(ctx, mt, tasks, n, p) != GF_OK) return gf_ctx_status(ctx);
    gf_mt_result *res = calloc(1, sizeof *res);
    int *sel = malloc(sizeof(int) * (size_t)n);
    int64_t *hsteps = calloc((size_t)n, sizeof *hsteps);
    double *lc = malloc(sizeof(double) * (size_t)(n * p->epochs));
    double *vc = malloc(sizeof(double) * (size_t)(n * p->epochs));
    gf_snapshot snap = {NULL, NULL, false};
    gf_status st = GF_OK;
    if (!res || !sel || !hsteps || !lc || !vc ||
        !(res->tasks = calloc((size_t)n, sizeof *res->tasks))) {
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "multitask: out of memory");
        goto done;
    }
    res->mode = p->mode;
    res->epochs = p->epochs;
    res->n = n;
    for (int i = 0; i < n; i++) {
        gf_mt_task_result *tr = &res->tasks[i];
        size_t len = strlen(tasks[i].name) + 1;
        tr->name = malloc(len);
        tr->train_loss = malloc(sizeof(double) * (size_t)p->epochs);
        tr->val_score = malloc(sizeof(double) * (size_t)p->epochs);
        if (!tr->name || !tr->train_loss || !tr->val_score) {
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "multitask: out of memory");
            goto done;
        }
        memcpy(tr->name, tasks[i].name, len);
        tr->higher_is_better = is_ce(&tasks[i]);
        tr->metric = tr->higher_is_better ? "accuracy" : "loss";
        tr->baseline = tr->gain = NAN;
        tr->score = NAN;
        tr->epochs = p->epochs;
    }
    const gf_rng rng0 = *gf_ctx_rng(ctx);
    if (p->baselines) {
        /* every run starts from the same weights */
        if ((st = gf_snapshot_init(ctx, &snap, mt, "multitask: out of memory")) != GF_OK)
            goto done;
        gf_snapshot_take(&snap);
        const double t0 = gf_now_seconds();
        for (int i = 0; i < n && st == GF_OK; i++) {
            int one = i;
            int64_t steps = 0;
            mt_run r = {ctx, mt, tasks, &one, 1, p, tasks[i].name, NULL, NULL, &steps, 0,
                        NULL, NULL, GF_OK, false};
            *gf_ctx_rng(ctx) = rng0;
            gf_snapshot_restore(&snap);
            if ((st = run_train(&r)) != GF_OK) break;
            gf_ds *ds = tasks[i].test ? tasks[i].test : tasks[i].val ? tasks[i].val : tasks[i].train;
            st = score_on(ctx, mt, &tasks[i], ds, p->eval_batch, &res->tasks[i].baseline);
        }
        res->baseline_seconds = gf_now_seconds() - t0;
        if (st != GF_OK) goto done;
        gf_snapshot_restore(&snap);
        *gf_ctx_rng(ctx) = rng0;
    }
    for (int i = 0; i < n; i++) sel[i] = i;
    mt_run r = {ctx, mt, tasks, sel, n, p, "multi-task", lc, vc, hsteps, 0, NULL, NULL, GF_OK,
                false};
    const double t0 = gf_now_seconds();
    if ((st = run_train(&r)) != GF_OK) goto done;
    res->seconds = gf_now_seconds() - t0;
    res->steps = r.trunk_steps;
    for (int i = 0; i < n && st == GF_OK; i++) {
        gf_mt_task_result *tr = &res->tasks[i];
        tr->steps = hsteps[i];
        for (int e = 0; e < p->epochs; e++) {
            tr->train_loss[e] = lc[e * n + i];
            tr->val_score[e] = vc[e * n + i];
        }
        gf_ds *ds = tasks[i].test ? tasks[i].test : tasks[i].val ? tasks[i].val : tasks[i].train;
        st = score_on(ctx, mt, &tasks[i], ds, p->eval_batch, &tr->score);
        if (p->baselines)
            tr->gain = tr->higher_is_better ? tr->score - tr->baseline : tr->baseline - tr->score;
    }
done:
    gf_snapshot_free(&snap);
    free(sel);
    free(hsteps);
    free(lc);
    free(vc);
    if (st != GF_OK || !out) gf_mt_result_free(res);
    else *out = res;
    return st;
}

/* ---- report -------------------------------------------------------------------------------- */

void gf_mt_print(const gf_mt_result *r, FILE *out) {
    if (!r || !out) return;
    fprintf(out, "multi-task (%s, %d epochs, %lld trunk steps, %.1f s; baselines %.1f s)\n",
            gf_mt_mode_name(r->mode), r->epochs, (long long)r->steps, r->seconds,
            r->baseline_seconds);
    fprintf(out, "%-16s %-9s %11s %11s %9s\n", "task", "metric", "multi-task", "alone", "gain");
    for (int i = 0; i < r->n; i++) {
        const gf_mt_task_result *t = &r->tasks[i];
        fprintf(out, "%-16s %-9s %11.4f %11.4f %+9.4f%s\n", t->name, t->metric, t->score,
                t->baseline, t->gain, t->gain < 0 ? "  negative transfer" : "");
    }
}

static cJSON *num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

char *gf_mt_json(gf_ctx *ctx, const gf_mt_result *r) {
    if (!r) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "multitask json: NULL result");
        return NULL;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "mode", gf_mt_mode_name(r->mode));
    cJSON_AddNumberToObject(root, "epochs", r->epochs);
    cJSON_AddNumberToObject(root, "steps", (double)r->steps);
    cJSON_AddNumberToObject(root, "seconds", r->seconds);
    cJSON_AddNumberToObject(root, "baseline_seconds", r->baseline_seconds);
    cJSON *arr = cJSON_AddArrayToObject(root, "tasks");
    for (int i = 0; arr && i < r->n; i++) {
        const gf_mt_task_result *t = &r->tasks[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "metric", t->metric);
        cJSON_AddBoolToObject(o, "higher_is_better", t->higher_is_better);
        cJSON_AddItemToObject(o, "score", num(t->score));
        cJSON_AddItemToObject(o, "baseline", num(t->baseline));
        cJSON_AddItemToObject(o, "gain", num(t->gain));
        cJSON_AddBoolToObject(o, "negative_transfer", t->gain < 0);
        cJSON_AddNumberToObject(o, "steps", (double)t->steps);
        cJSON *tl = cJSON_AddArrayToObject(o, "train_loss");
        cJSON *vs = cJSON_AddArrayToObject(o, "val_score");
        for (int e = 0; e < t->epochs; e++) {
            cJSON_AddItemToArray(tl, num(t->train_loss[e]));
            cJSON_AddItemToArray(vs, num(t->val_score[e]));
        }
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "multitask json: out of memory");
    return s;
}
