/* Regression on tables: the training loss of --loss (PyTorch's MSELoss, L1Loss, HuberLoss) and
 * the evaluation in the target's own units (MAE, RMSE and R² as scikit-learn defines them). */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* HuberLoss(delta) of outputs [N, 1] and targets [N] (mean over the examples). */
static gf_tensor *huber_fn(gf_ctx *ctx, gf_tensor *out, gf_tensor *y, void *user) {
    const double *delta = user;
    gf_tensor *t = gf_reshape(ctx, y, out->ndim, out->shape);
    return t ? gf_huber_loss(ctx, out, t, GF_REDUCE_MEAN, (float)*delta) : NULL;
}

gf_loss_spec cli_regression_loss(const cli_opts *o) {
    if (o->huber) {
        gf_loss_spec l = gf_loss_default(GF_LOSS_CUSTOM);
        l.fn = huber_fn;
        l.user = (void *)&o->huber_delta;
        return l;
    }
    return gf_loss_default(o->reg_loss_given ? o->reg_loss : GF_LOSS_MSE);
}

int cli_evaluate_regression(gf_ctx *ctx, const char *cmd, gf_module *m, const cli_data *d,
                            gf_ds *ds, const gf_tf *tf, int64_t batch, cli_eval *ev) {
    memset(ev, 0, sizeof *ev);
    ev->ctx = ctx;
    ev->regression = true;
    ev->loss = ev->accuracy = ev->precision = ev->recall = ev->f1 = NAN;
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = batch > 256 ? batch : 256;
    lp.shuffle = false;
    lp.transform = tf;
    gf_loader *ld = gf_loader_new(ctx, ds, &lp);
    if (!ld) return cli_fail_ctx(cmd, ctx);
    const gf_loss_spec mse = gf_loss_default(GF_LOSS_MSE);
    gf_eval_result r;
    gf_status st = gf_evaluate_ex(ctx, m, &mse, ld, NULL, &r);
    gf_loader_free(ld);
    if (st != GF_OK) {
        gf_eval_result_free(&r);
        return cli_fail(cmd, "evaluation: %s", gf_ctx_error(ctx));
    }
    /* the metrics of standardised targets, back in the target's units (R² is unchanged) */
    const double sd = d->target_scaled ? d->target_std : 1.0;
    ev->n = r.count;
    ev->mae = r.mae * sd;
    ev->rmse = r.rmse * sd;
    ev->r2 = r.r2;
    ev->loss = ev->rmse * ev->rmse;
    gf_eval_result_free(&r);
    return CLI_CONTINUE;
}

void cli_regression_print(const cli_eval *ev, FILE *f) {
    fprintf(f, "examples         %lld\n", (long long)ev->n);
    fprintf(f, "MSE              %.6g\n", ev->loss);
    fprintf(f, "MAE              %.6g\n", ev->mae);
    fprintf(f, "RMSE             %.6g\n", ev->rmse);
    fprintf(f, "R2               %.4f\n", ev->r2);
}

cJSON *cli_regression_json(const cli_eval *ev) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "examples", (double)ev->n);
    cli_json_add_num(o, "mse", ev->loss);
    cli_json_add_num(o, "mae", ev->mae);
    cli_json_add_num(o, "rmse", ev->rmse);
    cli_json_add_num(o, "r2", ev->r2);
    return o;
}

int cli_class_weights(gf_ctx *ctx, const cli_opts *o, const cli_data *d, float **out) {
    *out = NULL;
    if (!o->class_weight_balanced) return CLI_CONTINUE;
    if (d->regression)
        return cli_usage_error(o->cmd, "--class-weight applies to classes; %s has a regression "
                                       "target", d->spec);
    const int k = d->n_classes;
    int64_t *count = calloc((size_t)k, sizeof *count);
    float *w = malloc(sizeof(float) * (size_t)k);
    if (!count || !w || gf_ds_class_counts(ctx, d->train, count) != GF_OK) {
        free(count);
        free(w);
        return gf_ctx_status(ctx) != GF_OK ? cli_fail_ctx(o->cmd, ctx) : cli_fail(o->cmd, "out of memory");
    }
    const int64_t n = gf_ds_count(d->train);
    char line[1024];
    size_t at = 0;
    for (int c = 0; c < k; c++) {
        if (count[c] == 0) { /* scikit-learn refuses a class without examples too */
            cli_fail(o->cmd, "--class-weight balanced: class %s has no training examples",
                     d->class_names[c]);
            free(count);
            free(w);
            return CLI_FAILED;
        }
        w[c] = (float)((double)n / ((double)k * (double)count[c]));
        if (at < sizeof line)
            at += (size_t)snprintf(line + at, sizeof line - at, "%s%s %.6g", c ? ", " : "",
                                   d->class_names[c], w[c]);
    }
    free(count);
    cli_log(o, "graft %s: class weights (balanced): %s\n", o->cmd, line);
    *out = w;
    return CLI_CONTINUE;
}
