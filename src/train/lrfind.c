/* The learning-rate finder (fastai's lr_find): a short training run with an exponentially
 * growing learning rate, the smoothed loss recorded against it, stopped when the loss diverges,
 * the suggestions fastai 2.7 computes from the curve (valley, steep, minimum), and everything the
 * run touched put back. Written against the public API only, like the rest of src/train. */
#define _POSIX_C_SOURCE 200809L
#include "graft/autograd.h"
#include "train/train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gf_lr_find_params gf_lr_find_default_params(void) {
    gf_lr_find_params p;
    memset(&p, 0, sizeof p);
    p.start_lr = 1e-7;
    p.end_lr = 10.0;
    p.num_it = 100;
    p.stop_div = true;
    p.div_factor = 4.0;
    p.beta = 0.98;
    return p;
}

void gf_lr_find_result_free(gf_lr_find_result *r) {
    if (!r) return;
    free(r->lrs);
    free(r->losses);
    free(r->raw_losses);
    memset(r, 0, sizeof *r);
    r->i_valley = r->i_steep = r->i_min = -1;
    r->lr_valley = r->lr_steep = r->lr_min = r->lr_min_div10 = NAN;
}

/* fastai's valley: the longest run of decreasing losses (a longest decreasing subsequence
 * ending at each point), and the point two thirds of the way down it. */
static int suggest_valley(const double *loss, int n) {
    int *lds = malloc(sizeof *lds * (size_t)n);
    if (!lds) return -1;
    for (int i = 0; i < n; i++) lds[i] = 1;
    int max_start = 0, max_end = 0;
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++) {
            if (loss[i] < loss[j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
            if (lds[max_end] < lds[i]) {
                max_end = i;
                max_start = max_end - lds[max_end];
            }
        }
    free(lds);
    const double sections = (double)(max_end - max_start) / 3.0;
    int idx = max_start + (int)sections + (int)(sections / 2.0);
    if (idx < 0) idx = 0;
    if (idx >= n) idx = n - 1;
    return idx;
}

void gf_lr_find_suggest(gf_lr_find_result *r, int num_it) {
    r->i_valley = r->i_steep = r->i_min = -1;
    r->lr_valley = r->lr_steep = r->lr_min = r->lr_min_div10 = NAN;
    if (!r->lrs || !r->losses) return;
    /* fastai: lrs[num_it // 10 : -5], cut at the first NaN */
    int lo = num_it / 10, hi = r->n - 5;
    if (hi - lo < 2) {
        lo = 0;
        hi = r->n;
    }
    for (int i = lo; i < hi; i++)
        if (isnan(r->losses[i])) {
            hi = i;
            break;
        }
    const int n = hi - lo;
    if (n < 2) return;
    const double *lr = r->lrs + lo, *loss = r->losses + lo;
    int imin = 0, isteep = 0;
    double gmin = INFINITY;
    for (int i = 0; i < n; i++) {
        if (loss[i] < loss[imin]) imin = i;
        if (i + 1 < n) {
            double g = (loss[i + 1] - loss[i]) / (log(lr[i + 1]) - log(lr[i]));
            if (g < gmin) {
                gmin = g;
                isteep = i;
            }
        }
    }
    int iv = suggest_valley(loss, n);
    r->i_min = lo + imin;
    r->lr_min = lr[imin];
    r->lr_min_div10 = lr[imin] / 10.0;
    r->i_steep = lo + isteep;
    r->lr_steep = lr[isteep];
    if (iv >= 0) {
        r->i_valley = lo + iv;
        r->lr_valley = lr[iv];
    }
}

static gf_status check_params(gf_ctx *ctx, const gf_lr_find_params *p) {
    if (!(p->start_lr > 0) || !isfinite(p->start_lr))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "lr_find: start_lr %g is not > 0",
                                p->start_lr);
    if (!(p->end_lr > p->start_lr) || !isfinite(p->end_lr))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "lr_find: end_lr %g is not larger than start_lr %g", p->end_lr,
                                p->start_lr);
    if (p->num_it < 2)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "lr_find: num_it %d is not >= 2",
                                p->num_it);
    if (!(p->div_factor > 1))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "lr_find: div_factor %g is not > 1",
                                p->div_factor);
    if (!(p->beta >= 0 && p->beta < 1))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "lr_find: beta %g is not in [0, 1)",
                                p->beta);
    return GF_OK;
}

/* What the sweep changes and puts back. */
typedef struct lr_saved {
    gf_snapshot weights;
    gf_state_list *optim;  /* a copy of gf_optim_export's state */
    double *group_lr;      /* each group's rate */
    gf_rng rng;
    int64_t epoch, batch;  /* the loader's position */
    bool training;
} lr_saved;

static gf_status save_state(gf_ctx *ctx, gf_module *model, gf_optim *opt, gf_loader *train,
                            lr_saved *s) {
    if (gf_snapshot_init(ctx, &s->weights, model, "lr_find: out of memory copying the weights") !=
        GF_OK)
        return gf_ctx_status(ctx);
    gf_snapshot_take(&s->weights);
    const int ng = gf_optim_n_groups(opt);
    s->group_lr = malloc(sizeof *s->group_lr * (size_t)(ng > 0 ? ng : 1));
    if (!s->group_lr)
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "lr_find: out of memory saving the rates");
    for (int g = 0; g < ng; g++) s->group_lr[g] = gf_optim_group_lr(opt, g);
    s->rng = *gf_ctx_rng(ctx);
    s->epoch = gf_loader_epoch(train);
    s->batch = gf_loader_batch_index(train);
    s->training = gf_module_is_training(model);
    gf_state_list *live = gf_state_list_new(ctx);
    s->optim = gf_state_list_new(ctx);
    if (!live || !s->optim || gf_optim_export(ctx, opt, live) != GF_OK) {
        gf_state_list_free(live);
        return gf_ctx_status(ctx) != GF_OK ? gf_ctx_status(ctx) : GF_ERR_NOMEM;
    }
    /* the exported tensors are views of the live buffers: copy them */
    gf_status st = GF_OK;
    for (int i = 0; i < gf_state_list_count(live) && st == GF_OK; i++) {
        const gf_tensor *t = gf_state_list_tensor(live, i);
        gf_tensor *c = gf_tensor_from_data(ctx, t->dtype, t->ndim, t->shape, t->data);
        st = c ? gf_state_list_add(ctx, s->optim, gf_state_list_name(live, i), c, true)
               : gf_ctx_status(ctx);
    }
    for (int i = 0; i < gf_state_list_meta_count(live) && st == GF_OK; i++)
        st = gf_state_list_set_meta(ctx, s->optim, gf_state_list_meta_key(live, i),
                                    gf_state_list_meta_value(live, i));
    gf_state_list_free(live);
    return st;
}

/* Puts everything back; keeps the first error (an earlier one wins). */
static gf_status restore_state(gf_ctx *ctx, gf_module *model, gf_optim *opt, gf_loader *train,
                               lr_saved *s, gf_status st) {
    char msg[512] = "";
    if (st != GF_OK) snprintf(msg, sizeof msg, "%s", gf_ctx_error(ctx));
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    gf_optim_zero_grad(opt);
    if (s->weights.taken) gf_snapshot_restore(&s->weights);
    gf_status rs = GF_OK;
    if (s->optim && gf_optim_import(ctx, opt, s->optim) != GF_OK) rs = gf_ctx_status(ctx);
    if (s->group_lr)
        for (int g = 0; g < gf_optim_n_groups(opt); g++) gf_optim_set_group_lr(opt, g, s->group_lr[g]);
    *gf_ctx_rng(ctx) = s->rng;
    if (rs == GF_OK && gf_loader_seek(ctx, train, s->epoch, s->batch) != GF_OK)
        rs = gf_ctx_status(ctx);
    gf_module_train(model, s->training);
    gf_snapshot_free(&s->weights);
    gf_state_list_free(s->optim);
    free(s->group_lr);
    if (st != GF_OK) {
        gf_ctx_clear_error(ctx);
        return gf_ctx_set_error(ctx, st, "%s", msg);
    }
    return rs;
}

static gf_status alloc_result(gf_ctx *ctx, int n, gf_lr_find_result *out) {
    out->lrs = malloc(sizeof(double) * (size_t)n);
    out->losses = malloc(sizeof(double) * (size_t)n);
    out->raw_losses = malloc(sizeof(double) * (size_t)n);
    if (!out->lrs || !out->losses || !out->raw_losses)
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "lr_find: out of memory for %d points", n);
    return GF_OK;
}

/* One batch at rate lr (group 0's; the others keep their ratio): forward, loss, backward, step.
 * *lv: the batch's loss (a non-finite loss takes no step). */
static gf_status sweep_batch(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss,
                             gf_optim *opt, gf_loader *train, const gf_lr_find_params *p,
                             const double *base_lr, double lr, double *lv) {
    gf_batch b;
    if (!gf_loader_next(ctx, train, &b)) { /* end of an epoch: continue with the next */
        if (gf_ctx_status(ctx) != GF_OK || !gf_loader_next(ctx, train, &b))
            return gf_ctx_status(ctx) != GF_OK
                       ? gf_ctx_status(ctx)
                       : gf_ctx_set_error(ctx, GF_ERR_STATE, "lr_find: the loader gave no batch");
    }
    for (int g = 0; g < gf_optim_n_groups(opt); g++)
        gf_optim_set_group_lr(opt, g, base_lr[0] > 0 ? lr * base_lr[g] / base_lr[0] : lr);
    gf_optim_zero_grad(opt);
    gf_tensor *o = p->forward ? p->forward(ctx, model, b.x, p->forward_user)
                              : gf_module_forward(ctx, model, b.x);
    const gf_batch_info bi = {b.idx, b.n, b.x, b.y, NULL, 0, b.epoch, b.index, true};
    gf_tensor *l = o ? gf_loss_compute_batch(ctx, loss, o, &bi) : NULL;
    if (!l) return gf_ctx_status(ctx) != GF_OK ? gf_ctx_status(ctx) : GF_ERR_INVALID;
    *lv = (double)gf_get_f32(l, 0);
    if (!isfinite(*lv)) return GF_OK;
    const gf_step_params sp = {.clip_norm = p->clip_norm};
    gf_optim *opts[1] = {opt};
    return gf_train_step(ctx, l, opts, 1, &sp);
}

gf_status gf_lr_find(gf_ctx *ctx, gf_module *model, const gf_loss_spec *loss, gf_optim *opt,
                     gf_loader *train, const gf_lr_find_params *p, gf_lr_find_result *out) {
    const gf_lr_find_params def = gf_lr_find_default_params();
    const gf_loss_spec ce = gf_loss_default(GF_LOSS_CROSS_ENTROPY);
    if (!p) p = &def;
    if (!loss) loss = &ce;
    if (out) {
        memset(out, 0, sizeof *out);
        gf_lr_find_result_free(out);
    }
    if (gf_ctx_status(ctx) != GF_OK) return gf_ctx_status(ctx);
    if (!model || !opt || !train || !out)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "lr_find: NULL %s",
                                !model ? "model" : !opt ? "optimizer" : !train ? "loader" : "result");
    if (check_params(ctx, p) != GF_OK || alloc_result(ctx, p->num_it, out) != GF_OK)
        return gf_ctx_status(ctx);
    lr_saved s;
    memset(&s, 0, sizeof s);
    gf_status st = save_state(ctx, model, opt, train, &s);
    if (st != GF_OK) { /* restore only what was saved whole */
        gf_state_list_free(s.optim);
        s.optim = NULL;
    }
    gf_module_train(model, true);
    double avg = 0.0, best = INFINITY;
    const double ratio = p->end_lr / p->start_lr;
    for (int i = 0; st == GF_OK && i < p->num_it; i++) {
        const double lr = p->start_lr * pow(ratio, (double)i / (double)p->num_it);
        double lv = NAN;
        st = sweep_batch(ctx, model, loss, opt, train, p, s.group_lr, lr, &lv);
        gf_ctx_reset(ctx);
        if (st != GF_OK) break;
        avg = p->beta * avg + (1.0 - p->beta) * lv;
        const double smooth = avg / (1.0 - pow(p->beta, (double)(i + 1)));
        out->lrs[i] = lr;
        out->raw_losses[i] = lv;
        out->losses[i] = smooth;
        out->n = i + 1;
        if (smooth < best) best = smooth;
        if (p->stop_div && (!isfinite(smooth) || smooth > p->div_factor * best)) {
            out->diverged = true;
            break;
        }
    }
    st = restore_state(ctx, model, opt, train, &s, st);
    if (st == GF_OK) gf_lr_find_suggest(out, p->num_it);
    return st;
}
