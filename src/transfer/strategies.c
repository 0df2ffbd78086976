/* The strategies of gf_compare_run: how each one builds its model from the zoo and the
 * pretrained file, what it freezes, and how it trains (gf_fit over the public API). */
#define _POSIX_C_SOURCE 200809L
#include "compare_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/distill.h"
#include "graft/lora.h"
#include "graft/metrics.h"
#include "graft/transfer.h"

/* ---- model construction ------------------------------------------------------------------- */

/* A fresh zoo model with k outputs, initialised from rng. */
static gf_module *build_fresh(cmp_run *r, gf_rng *rng) {
    gf_zoo_params zp = r->p->zoo;
    zp.num_classes = r->k;
    return gf_zoo_build(r->ctx, r->p->model, &zp, rng);
}

/* A zoo model holding the pretrained weights with a new k-way head drawn from rng. Only the
 * head may be missing from the file or differ in shape; anything else is an error. */
static gf_module *build_pretrained(cmp_run *r, gf_rng *rng) {
    gf_ctx *ctx = r->ctx;
    gf_module *m = build_fresh(r, rng);
    if (!m) return NULL;
    /* the first convolution is adapted when the data's channels differ from the file's
     * (timm's rule, gf_transfer_adapt_input_conv): grey pretrained weights serve RGB data */
    gf_transfer_load_params lp = gf_transfer_load_default_params();
    lp.weights = r->p->load;
    lp.weights.strict = false;
    lp.weights.dry_run = false;
    gf_transfer_plan *plan = NULL;
    if (gf_transfer_load_with(ctx, m, r->p->pretrained, &lp, &plan) != GF_OK) goto fail;
    const gf_weights_report *rep = plan->report;
    size_t hl = strlen(r->head);
    for (int i = 0; i < rep->n; i++) {
        const gf_weights_key_report *kr = &rep->keys[i];
        if (kr->status == GF_WEIGHTS_KEY_LOADED) continue;
        bool in_head = strncmp(kr->name, r->head, hl) == 0 && kr->name[hl] == '.';
        if (in_head && (kr->status == GF_WEIGHTS_KEY_MISSING || kr->status == GF_WEIGHTS_KEY_SHAPE)) continue;
        gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                         "%s does not fit %s: key %s is %s (model %s, file %s); only the head "
                         "\"%s\" may be missing or differ",
                         r->p->pretrained, r->p->model, kr->name, gf_weights_key_status_name(kr->status),
                         kr->model_shape[0] ? kr->model_shape : "-",
                         kr->file_shape[0] ? kr->file_shape : "-", r->head);
        goto fail;
    }
    gf_transfer_plan_free(plan);
    plan = NULL;
    if (gf_transfer_replace_head(ctx, m, r->head, r->k, rng) != GF_OK) goto fail;
    return m;
fail:
    gf_transfer_plan_free(plan);
    gf_module_free(m);
    return NULL;
}

/* Bytes of parameters and of their gradient buffers. */
static size_t param_bytes(const gf_module *m) {
    gf_named_tensors *ps = gf_module_named_tensors(NULL, m, GF_STATE_PARAMS);
    size_t b = 0;
    for (int i = 0; ps && i < ps->n; i++) {
        const gf_tensor *t = ps->items[i].tensor;
        b += sizeof(float) * (size_t)t->numel;
        if (t->grad) b += sizeof(float) * (size_t)t->grad->numel;
    }
    gf_named_tensors_free(ps);
    return b;
}

static size_t ds_bytes(const gf_ds *ds) {
    return ds ? sizeof(float) * (size_t)(gf_ds_count(ds) * gf_ds_sample_numel(ds)) : 0;
}

/* ---- training ------------------------------------------------------------------------------ */

typedef struct fit_hook {
    cmp_run *r;
} fit_hook;

static bool on_epoch(const gf_epoch_stats *e, void *user) {
    cmp_run *r = ((fit_hook *)user)->r;
    gf_compare_trial *t = r->trial;
    t->train_loss[t->epochs] = e->train_loss;
    t->val_acc[t->epochs] = e->val_acc;
    t->epochs++;
    if (r->p->progress) {
        gf_epoch_stats s = *e;
        s.epoch = t->epochs;
        s.epochs = r->p->epochs;
        if (!r->p->progress(r->strategy, r->seed, &s, r->p->user)) {
            r->stopped = true;
            return false;
        }
    }
    return true;
}

/* Loaders for a run: the training data shuffled by the run's seed, validation in order. */
static gf_status make_loaders(cmp_run *r, gf_ds *train, gf_ds *val, gf_loader **tl,
                              gf_loader **vl) {
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = r->p->batch_size;
    lp.seed = r->seed;
    lp.shard_rank = r->p->shard_rank;
    lp.shard_count = r->p->shard_count;
    *tl = gf_loader_new(r->ctx, train, &lp);
    *vl = NULL;
    if (!*tl) return gf_ctx_status(r->ctx);
    if (val) { /* the training batch size, so the arena peak measures the training step */
        lp.shuffle = false;
        lp.shard_rank = lp.shard_count = 0; /* every process validates on all of it */
        *vl = gf_loader_new(r->ctx, val, &lp);
        if (!*vl) return gf_ctx_status(r->ctx);
    }
    return GF_OK;
}

/* gf_fit for `epochs` epochs, recording the curves. */
static gf_status fit(cmp_run *r, gf_module *m, const gf_loss_spec *loss, gf_optim *opt,
                     gf_sched *sched, gf_loader *tl, gf_loader *vl, int epochs) {
    fit_hook h = {r};
    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = epochs;
    fp.on_epoch = on_epoch;
    fp.user = &h;
    fp.grad_sync = r->p->grad_sync;
    fp.grad_begin = r->p->grad_begin;
    fp.grad_sync_user = r->p->grad_sync_user;
    gf_fit_result res;
    gf_status st = gf_fit(r->ctx, m, loss, opt, sched, tl, vl, &fp, &res);
    if (st == GF_OK && r->stopped)
        st = gf_ctx_set_error(r->ctx, GF_ERR_STATE, "stopped by the progress callback");
    return st;
}

/* The usual run: one optimizer over the model's trainable parameters, p->epochs epochs. */
static gf_status train_all(cmp_run *r, const gf_loss_spec *loss) {
    gf_loader *tl = NULL, *vl = NULL;
    gf_optim *opt = NULL;
    gf_status st = make_loaders(r, r->train, r->val, &tl, &vl);
    if (st == GF_OK) {
        opt = gf_train_optim_new(r->ctx, r->model, &r->p->optim, NULL, 0);
        st = opt ? GF_OK : gf_ctx_status(r->ctx);
    }
    r->params_trainable = gf_module_param_count(r->model, true);
    if (st == GF_OK) st = fit(r, r->model, loss, opt, NULL, tl, vl, r->p->epochs);
    r->state_bytes += param_bytes(r->model) + (opt ? gf_optim_state_bytes(opt) : 0);
    gf_optim_free(opt);
    gf_loader_free(tl);
    gf_loader_free(vl);
    return st;
}

/* ---- the strategies ----------------------------------------------------------------------- */

static gf_status s_scratch(cmp_run *r, gf_rng *rng) {
    if (!(r->model = build_fresh(r, rng))) return gf_ctx_status(r->ctx);
    return train_all(r, NULL);
}

static gf_status s_finetune(cmp_run *r, gf_rng *rng, bool frozen_bn) {
    if (!(r->model = build_pretrained(r, rng))) return gf_ctx_status(r->ctx);
    int n_bn = gf_transfer_set_bn_policy(r->ctx, r->model,
                                   frozen_bn ? GF_TRANSFER_BN_FREEZE_STATS : GF_TRANSFER_BN_TRAIN_ALL, NULL);
    if (n_bn < 0) return gf_ctx_status(r->ctx);
    if (frozen_bn && n_bn == 0)
        snprintf(r->note, sizeof r->note,
                 "%s has no BatchNorm layer: the same computation as finetune", r->p->model);
    else if (frozen_bn)
        snprintf(r->note, sizeof r->note,
                 "%d BatchNorm layers in eval mode with frozen statistics and affine (freeze-stats)",
                 n_bn);
    else if (n_bn > 0)
        snprintf(r->note, sizeof r->note, "%d BatchNorm layers train as in PyTorch (train-all)",
                 n_bn);
    return train_all(r, NULL);
}

static gf_status s_probe(cmp_run *r, gf_rng *rng) {
    gf_ctx *ctx = r->ctx;
    if (!(r->model = build_pretrained(r, rng))) return gf_ctx_status(ctx);
    char pat[300];
    snprintf(pat, sizeof pat, "%s.*", r->head);
    if (gf_transfer_freeze(ctx, r->model, "*") < 0 || gf_transfer_unfreeze(ctx, r->model, pat) < 0 ||
        gf_transfer_set_bn_policy(ctx, r->model, GF_TRANSFER_BN_FREEZE_STATS, NULL) < 0)
        return gf_ctx_status(ctx);
    r->params_trainable = gf_module_param_count(r->model, true);
    gf_ds *ftrain = gf_transfer_cache_features(ctx, r->model, r->head, r->train, r->p->eval_batch);
    gf_ds *fval = ftrain && r->val
                      ? gf_transfer_cache_features(ctx, r->model, r->head, r->val, r->p->eval_batch)
                      : NULL;
    gf_loader *tl = NULL, *vl = NULL;
    gf_optim *opt = NULL;
    gf_module *head = gf_module_child(r->model, r->head);
    gf_status st = (!ftrain || (r->val && !fval)) ? gf_ctx_status(ctx) : GF_OK;
    if (st == GF_OK) st = make_loaders(r, ftrain, fval, &tl, &vl);
    if (st == GF_OK) {
        opt = gf_train_optim_new(ctx, head, &r->p->optim, NULL, 0);
        st = opt ? GF_OK : gf_ctx_status(ctx);
    }
    if (st == GF_OK) st = fit(r, head, NULL, opt, NULL, tl, vl, r->p->epochs);
    snprintf(r->note, sizeof r->note,
             "trunk features cached once (%lld x %lld), the head trained on them",
             ftrain ? (long long)gf_ds_count(ftrain) : 0LL,
             ftrain ? (long long)gf_ds_sample_numel(ftrain) : 0LL);
    r->state_bytes += param_bytes(r->model) + (opt ? gf_optim_state_bytes(opt) : 0) +
                      ds_bytes(ftrain) + ds_bytes(fval);
    gf_optim_free(opt);
    gf_loader_free(tl);
    gf_loader_free(vl);
    gf_ds_free(ftrain);
    gf_ds_free(fval);
    return st;
}

static gf_sched *one_cycle(cmp_run *r, gf_optim *opt, const double *max_lrs, int64_t steps,
                           double pct_start, double div_factor) {
    gf_sched_params sp = gf_sched_default_params(GF_SCHED_ONECYCLE);
    sp.max_lrs = max_lrs;
    sp.total_steps = steps;
    sp.pct_start = pct_start;
    sp.div_factor = div_factor;
    return gf_sched_new(r->ctx, opt, &sp);
}

/* fastai's Learner.fine_tune(epochs - k, base_lr, freeze_epochs = k) with two layer groups:
 *   freeze(); fit_one_cycle(k, slice(base_lr), pct_start = 0.99)
 *   base_lr /= 2; unfreeze(); fit_one_cycle(epochs - k, slice(base_lr / div, base_lr),
 *                                           pct_start = 0.3, div = 5)
 * BatchNorm layers keep training in the frozen phase (fastai's train_bn). */
static gf_status s_fastai(cmp_run *r, gf_rng *rng) {
    gf_ctx *ctx = r->ctx;
    const gf_compare_params *p = r->p;
    if (!(r->model = build_pretrained(r, rng))) return gf_ctx_status(ctx);
    char pat[300];
    snprintf(pat, sizeof pat, "%s.*", r->head);
    if (gf_transfer_freeze(ctx, r->model, "*") < 0 || gf_transfer_unfreeze(ctx, r->model, pat) < 0 ||
        gf_transfer_set_bn_policy(ctx, r->model, GF_TRANSFER_BN_TRAIN_AFFINE, NULL) < 0 ||
        gf_transfer_set_bn_policy(ctx, r->model, GF_TRANSFER_BN_TRAIN_ALL, NULL) < 0)
        return gf_ctx_status(ctx);
    const double lr = p->optim.lr, div = p->fastai_lr_div;
    gf_optim_params head_hp = p->optim, trunk_hp = p->optim;
    trunk_hp.lr = lr / div;
    gf_group_spec spec = {"head", pat, &head_hp};
    gf_loader *tl = NULL, *vl = NULL;
    gf_sched *sched = NULL;
    gf_optim *opt = NULL;
    gf_status st = make_loaders(r, r->train, r->val, &tl, &vl);
    if (st == GF_OK) {
        opt = gf_train_optim_new(ctx, r->model, &trunk_hp, &spec, 1); /* head, then "default" */
        st = opt ? GF_OK : gf_ctx_status(ctx);
    }
    const int k = p->fastai_frozen_epochs;
    const int64_t nb = tl ? gf_loader_batches_per_epoch(tl) : 0;
    int64_t head_only = gf_module_param_count(r->model, true);
    if (st == GF_OK) {
        const double lrs1[2] = {lr, lr / div};
        sched = one_cycle(r, opt, lrs1, (int64_t)k * nb, 0.99, 25.0);
        st = sched ? fit(r, r->model, NULL, opt, sched, tl, vl, k) : gf_ctx_status(ctx);
        gf_sched_free(sched);
        sched = NULL;
    }
    if (st == GF_OK && gf_transfer_unfreeze(ctx, r->model, "*") < 0) st = gf_ctx_status(ctx);
    r->params_trainable = gf_module_param_count(r->model, true);
    if (st == GF_OK) {
        const double lrs2[2] = {lr / 2, lr / 2 / div};
        sched = one_cycle(r, opt, lrs2, (int64_t)(p->epochs - k) * nb, 0.3, 5.0);
        st = sched ? fit(r, r->model, NULL, opt, sched, tl, vl, p->epochs - k)
                   : gf_ctx_status(ctx);
        gf_sched_free(sched);
    }
    snprintf(r->note, sizeof r->note,
             "head only (%lld parameters) for %d epoch%s, one-cycle to lr %g; then all layers "
             "for %d, one-cycle to %g (head) / %g (trunk)",
             (long long)head_only, k, k == 1 ? "" : "s", lr, p->epochs - k, lr / 2, lr / 2 / div);
    r->state_bytes += param_bytes(r->model) + (opt ? gf_optim_state_bytes(opt) : 0);
    gf_optim_free(opt);
    gf_loader_free(tl);
    gf_loader_free(vl);
    return st;
}

/* gf_lora_default_targets, with none found an error naming the model. */
static char **default_lora_targets(cmp_run *r, int *n) {
    char **t = gf_lora_default_targets(r->ctx, r->model, r->head, n);
    if (t && *n == 0) {
        gf_lora_targets_free(t);
        gf_ctx_set_error(r->ctx, GF_ERR_INVALID,
                         "lora: %s has no Linear or Conv2d layer outside the head", r->p->model);
        return NULL;
    }
    return t;
}

static gf_status s_lora(cmp_run *r, gf_rng *rng) {
    gf_ctx *ctx = r->ctx;
    const gf_compare_params *p = r->p;
    if (!(r->model = build_pretrained(r, rng))) return gf_ctx_status(ctx);
    char **auto_t = NULL;
    gf_lora_params lp = gf_lora_default_params();
    lp.r = p->lora_r;
    lp.alpha = p->lora_alpha;
    lp.freeze_base = true;
    if (p->lora_targets) {
        lp.targets = p->lora_targets;
        lp.n_targets = p->n_lora_targets;
    } else {
        if (!(auto_t = default_lora_targets(r, &lp.n_targets))) return gf_ctx_status(ctx);
        lp.targets = (const char *const *)auto_t;
    }
    char pat[300];
    snprintf(pat, sizeof pat, "%s.*", r->head);
    gf_status st = gf_lora_apply(ctx, r->model, &lp, rng);
    if (st == GF_OK && gf_transfer_unfreeze(ctx, r->model, pat) < 0) st = gf_ctx_status(ctx);
    if (st == GF_OK) {
        char list[160] = "";
        size_t at = 0;
        for (int i = 0; i < lp.n_targets && at + 2 < sizeof list; i++)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "",
                                   lp.targets[i]);
        snprintf(r->note, sizeof r->note,
                 "r %d, alpha %g on %d layer%s (%s); the head trains in full", lp.r,
                 (double)lp.alpha, gf_lora_count(r->model), gf_lora_count(r->model) == 1 ? "" : "s",
                 list);
    }
    gf_lora_targets_free(auto_t);
    if (st != GF_OK) return st;
    return train_all(r, NULL);
}

static gf_status s_distill(cmp_run *r, gf_rng *rng) {
    gf_ctx *ctx = r->ctx;
    const gf_compare_params *p = r->p;
    gf_zoo_params zp = p->zoo;
    zp.num_classes = r->k;
    const char *tname = p->teacher_model ? p->teacher_model : p->model;
    gf_module *teacher = gf_zoo_build(ctx, tname, &zp, NULL);
    if (!teacher) return gf_ctx_status(ctx);
    gf_weights_load_options strict = {true};
    gf_teacher_cache *cache = NULL;
    if (gf_weights_load(ctx, teacher, p->teacher, &strict, NULL) == GF_OK)
        cache = gf_teacher_cache_build(ctx, teacher, r->train, p->eval_batch);
    gf_module_free(teacher);
    if (!cache) return gf_ctx_status(ctx);
    r->model = p->distill_from_pretrained ? build_pretrained(r, rng) : build_fresh(r, rng);
    gf_loader *tl = NULL, *vl = NULL;
    gf_optim *opt = NULL;
    gf_status st = r->model ? make_loaders(r, r->train, r->val, &tl, &vl) : gf_ctx_status(ctx);
    if (st == GF_OK) {
        opt = gf_train_optim_new(ctx, r->model, &p->optim, NULL, 0);
        if (!opt) st = gf_ctx_status(ctx);
    }
    r->params_trainable = r->model ? gf_module_param_count(r->model, true) : 0;
    /* the cache is over r->train, the training loader's dataset */
    const gf_distill_spec ds = {cache, NULL, p->distill_T, p->distill_alpha};
    const gf_loss_spec loss = gf_distill_loss_spec(&ds);
    if (st == GF_OK) st = fit(r, r->model, &loss, opt, NULL, tl, vl, p->epochs);
    snprintf(r->note, sizeof r->note,
             "student %s from %s, teacher %s (logits cached), T %g, alpha %g", p->model,
             p->distill_from_pretrained ? "the pretrained model" : "scratch", tname,
             (double)p->distill_T, (double)p->distill_alpha);
    r->state_bytes += (r->model ? param_bytes(r->model) : 0) +
                      (opt ? gf_optim_state_bytes(opt) : 0) +
                      sizeof(float) * (size_t)(gf_teacher_cache_count(cache) *
                                               gf_teacher_cache_classes(cache));
    gf_optim_free(opt);
    gf_loader_free(tl);
    gf_loader_free(vl);
    gf_teacher_cache_free(cache);
    return st;
}

gf_status gf_cmp_train(cmp_run *r) {
    gf_rng rng;
    gf_rng_seed(&rng, r->seed);
    switch (r->strategy) {
    case GF_COMPARE_SCRATCH: return s_scratch(r, &rng);
    case GF_COMPARE_PROBE: return s_probe(r, &rng);
    case GF_COMPARE_FINETUNE: return s_finetune(r, &rng, false);
    case GF_COMPARE_FINETUNE_FROZEN_BN: return s_finetune(r, &rng, true);
    case GF_COMPARE_FASTAI: return s_fastai(r, &rng);
    case GF_COMPARE_LORA: return s_lora(r, &rng);
    case GF_COMPARE_DISTILL: return s_distill(r, &rng);
    default:
        return gf_ctx_set_error(r->ctx, GF_ERR_INVALID, "compare: unknown strategy %d",
                                (int)r->strategy);
    }
}

gf_status gf_cmp_evaluate(gf_ctx *ctx, gf_module *model, gf_ds *ds, int k, int64_t batch,
                          double *accuracy, double *macro_f1, int64_t *confusion) {
    *accuracy = *macro_f1 = NAN;
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = batch;
    lp.shuffle = false;
    gf_loader *ld = gf_loader_new(ctx, ds, &lp);
    if (!ld) return gf_ctx_status(ctx);
    gf_eval_params ep = gf_eval_default_params();
    ep.n_classes = k;
    gf_eval_result er;
    gf_status st = gf_evaluate_ex(ctx, model, NULL, ld, &ep, &er);
    gf_loader_free(ld);
    if (st == GF_OK && !er.confusion)
        st = gf_ctx_set_error(ctx, GF_ERR_STATE, "compare: no confusion matrix from the evaluation");
    if (st == GF_OK) {
        *accuracy = er.accuracy;
        *macro_f1 = er.macro_f1;
        memcpy(confusion, gf_confusion_counts(er.confusion), sizeof(int64_t) * (size_t)(k * k));
    }
    gf_eval_result_free(&er);
    return st;
}
