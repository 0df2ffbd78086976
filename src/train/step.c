/* The update half of a training step: gf_train_step for loops written by hand (graft's own
 * training all runs through gf_fit) and the clipping-and-step that gf_fit runs after each
 * accumulation group. */
#include "graft/autograd.h"
#include "train/train_internal.h"

gf_status gf_train_update(gf_ctx *ctx, gf_optim *opt, const gf_step_params *p, double *grad_norm) {
    if (p->clip_norm > 0 &&
        gf_optim_clip_grad_norm(ctx, opt, p->clip_norm, 2.0, false, grad_norm) != GF_OK)
        return gf_ctx_status(ctx);
    if (p->clip_value > 0 && gf_optim_clip_grad_value(ctx, opt, p->clip_value) != GF_OK)
        return gf_ctx_status(ctx);
    if (gf_optim_step(ctx, opt) != GF_OK) return gf_ctx_status(ctx);
    return GF_OK;
}

gf_status gf_train_sched_step(gf_ctx *ctx, gf_sched *sched) {
    if (sched && gf_sched_get_interval(sched) == GF_SCHED_PER_STEP &&
        gf_sched_step(ctx, sched) != GF_OK)
        return gf_ctx_status(ctx);
    return GF_OK;
}

gf_status gf_train_step(gf_ctx *ctx, gf_tensor *loss, gf_optim *const *opts, int n_opts,
                        const gf_step_params *p) {
    const gf_step_params none = {.clip_norm = 0.0};
    if (!p) p = &none;
    if (gf_ctx_status(ctx) != GF_OK) return gf_ctx_status(ctx);
    if (n_opts < 0 || (n_opts > 0 && !opts))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "train step: bad optimizer list (n = %d)",
                                n_opts);
    for (int i = 0; i < n_opts; i++)
        if (!opts[i])
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "train step: optimizer %d is NULL", i);
    /* the first optimizer's exchange can start while the backward runs */
    if (n_opts > 0 && p->grad_sync && p->grad_begin &&
        p->grad_begin(ctx, opts[0], p->grad_sync_user) != GF_OK)
        return gf_ctx_status(ctx);
    if (gf_backward(ctx, loss) != GF_OK) return gf_ctx_status(ctx);
    for (int i = 0; i < n_opts; i++) {
        /* training across processes: the gradients summed over them before the update */
        if (p->grad_sync && p->grad_sync(ctx, opts[i], NULL, 0, p->grad_sync_user) != GF_OK)
            return gf_ctx_status(ctx);
        gf_status st = gf_train_update(ctx, opts[i], p, NULL);
        if (st != GF_OK) return st;
    }
    return gf_train_sched_step(ctx, p->sched);
}
