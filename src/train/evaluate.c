/* gf_evaluate: one pass over a loader in evaluation mode without gradients, the mean loss and
 * the accuracy. */
#include "train/train_internal.h"

#include <math.h>
#include <stdlib.h>

float *gf_train_scratch_for(gf_train_scratch *s, int64_t n) {
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
    gf_train_scratch sc = {NULL, 0};
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
        int64_t c = acc_ok
                        ? gf_batch_correct(loss, out, b.y, gf_train_scratch_for(&sc, out->numel))
                        : -1;
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
