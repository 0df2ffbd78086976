/* graft lr-find: fastai's learning-rate finder (gf_lr_find) on the model and data graft train
 * would use: a short sweep with an exponentially growing rate, the smoothed loss against it,
 * and the suggested rates (valley, steep, minimum/10). The weights and the optimizer are put
 * back afterwards and nothing is written unless --report asks. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/report.h"

static void print_sweep(const cli_opts *o, const char *model_desc, const cli_data *d,
                        const gf_lr_find_result *r) {
    char desc[1024];
    cli_data_describe(d, desc, sizeof desc);
    printf("model       %s\n", model_desc);
    printf("data        %s\n", desc);
    printf("optimizer   %s, batch %lld\n", gf_optim_kind_name(o->optim), (long long)o->batch);
    printf("sweep       %d of %d batches, lr %g .. %g", r->n, o->num_it,
           r->n ? r->lrs[0] : o->start_lr, r->n ? r->lrs[r->n - 1] : o->start_lr);
    if (r->diverged) printf(" (stopped: the smoothed loss passed 4x its minimum)");
    printf("\n\nsuggested learning rates:\n");
    if (!isfinite(r->lr_valley)) {
        printf("  (none: too few batches; raise --num-it)\n");
        return;
    }
    printf("  valley      %.3g   (fastai's default)\n", r->lr_valley);
    printf("  steep       %.3g   (steepest fall of the loss)\n", r->lr_steep);
    printf("  minimum/10  %.3g   (lowest loss at %.3g)\n", r->lr_min_div10, r->lr_min);
}

static cJSON *sweep_json(const cli_opts *o, const char *model_name, const cli_data *d,
                         const gf_lr_find_result *r) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "command", "lr-find");
    cJSON_AddStringToObject(root, "model", model_name);
    cJSON_AddStringToObject(root, "data", d->spec);
    cJSON_AddStringToObject(root, "optimizer", gf_optim_kind_name(o->optim));
    cli_json_add_num(root, "start_lr", o->start_lr);
    cli_json_add_num(root, "end_lr", o->end_lr);
    cJSON_AddNumberToObject(root, "num_it", o->num_it);
    cJSON_AddNumberToObject(root, "batches", r->n);
    cJSON_AddBoolToObject(root, "diverged", r->diverged);
    cJSON *s = cJSON_AddObjectToObject(root, "suggestions");
    cli_json_add_num(s, "valley", r->lr_valley);
    cli_json_add_num(s, "steep", r->lr_steep);
    cli_json_add_num(s, "minimum_div10", r->lr_min_div10);
    cli_json_add_num(s, "minimum", r->lr_min);
    cJSON *pts = cJSON_AddArrayToObject(root, "points");
    for (int i = 0; i < r->n; i++) {
        cJSON *p = cJSON_CreateObject();
        cli_json_add_num(p, "lr", r->lrs[i]);
        cli_json_add_num(p, "loss", r->losses[i]);
        cli_json_add_num(p, "raw_loss", r->raw_losses[i]);
        cJSON_AddItemToArray(pts, p);
    }
    return root;
}

/* The loss-vs-lr chart (log x) with the suggestions marked, and a table of them. */
static int sweep_report(gf_ctx *ctx, const cli_opts *o, const char *model_desc,
                        const cli_data *d, const gf_lr_find_result *r) {
    char title[2048], desc[1024];
    snprintf(title, sizeof title, "graft lr-find: %s on %s", model_desc, d->spec);
    cli_data_describe(d, desc, sizeof desc);
    const char *names[] = {"valley", "steep", "minimum/10"};
    const double lr[] = {r->lr_valley, r->lr_steep, r->lr_min_div10};
    const int at[] = {r->i_valley, r->i_steep, r->i_min};
    double px[3], py[3];
    char cells[3][3][48];
    const char *cellp[9];
    gf_report_series s[4] = {{"smoothed loss", NULL, r->lrs, r->losses, NULL, r->n, false}};
    int ns = 1;
    for (int k = 0; k < 3; k++) {
        snprintf(cells[k][0], sizeof cells[k][0], "%s", names[k]);
        snprintf(cells[k][1], sizeof cells[k][1], "%.3g", lr[k]);
        snprintf(cells[k][2], sizeof cells[k][2], "%.4f", at[k] >= 0 ? r->losses[at[k]] : NAN);
        for (int c = 0; c < 3; c++) cellp[k * 3 + c] = cells[k][c];
        if (at[k] < 0) continue;
        px[k] = r->lrs[at[k]]; /* minimum/10 is marked at the minimum it comes from */
        py[k] = r->losses[at[k]];
        s[ns++] = (gf_report_series){names[k], NULL, &px[k], &py[k], NULL, 1, false};
    }
    gf_report_axes ax = gf_report_default_axes();
    ax.title = "smoothed loss vs learning rate";
    ax.x_label = "learning rate (log scale)";
    ax.y_label = "loss";
    ax.x_log = true;
    char sweep[128];
    snprintf(sweep, sizeof sweep, "%d of %d batches, %g .. %g%s", r->n, o->num_it, o->start_lr,
             o->end_lr, r->diverged ? " (stopped: diverged)" : "");
    const char *kv[] = {"model", model_desc, "data", desc, "optimizer",
                        gf_optim_kind_name(o->optim), "sweep", sweep};
    const char *hdr[] = {"suggestion", "learning rate", "smoothed loss there"};
    gf_report *rep = gf_report_new(ctx, title);
    gf_status st = rep ? gf_report_add_pairs(ctx, rep, "run", 4, kv) : GF_ERR_NOMEM;
    if (st == GF_OK && r->n > 0) st = gf_report_add_line_chart(ctx, rep, &ax, s, ns);
    if (st == GF_OK && isfinite(r->lr_valley))
        st = gf_report_add_table(ctx, rep, "suggested learning rates", 3, hdr, 3, cellp);
    if (st == GF_OK) st = gf_report_write(ctx, rep, o->report);
    gf_report_free(rep);
    if (st != GF_OK) return cli_fail(o->cmd, "--report %s: %s", o->report, gf_ctx_error(ctx));
    cli_log(o, "graft lr-find: report written to %s/index.html\n", o->report);
    return CLI_CONTINUE;
}

static int check_lrfind_opts(const cli_opts *o) {
    if (o->epochs_given)
        return cli_usage_error(o->cmd, "--epochs does not apply: the sweep runs --num-it batches");
    if (o->lr > 0)
        return cli_usage_error(o->cmd, "--lr does not apply: the sweep sets the rate (--start-lr, "
                                       "--end-lr)");
    if (!(o->end_lr > o->start_lr))
        return cli_usage_error(o->cmd, "--end-lr %g must be larger than --start-lr %g", o->end_lr,
                               o->start_lr);
    if (o->momentum > 0 && o->optim != GF_OPTIM_SGD && o->optim != GF_OPTIM_RMSPROP)
        return cli_usage_error(o->cmd, "--momentum applies to --optim sgd and rmsprop");
    if (o->report)
        return cli_check_output_dir(o->cmd, "--report", o->report, cli_report_files);
    return CLI_CONTINUE;
}

/* The sweep itself: loader, optimizer (a fine-tuning run's: the head's rate and the trunk's
 * factor), the loss training would use, gf_lr_find. */
static int run_sweep(gf_ctx *ctx, const cli_opts *o, gf_module *m, const cli_data *d,
                     const char *head, gf_lr_find_result *r) {
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = o->batch;
    lp.seed = o->seed;
    lp.transform = d->train_tf;
    cli_fit_setup fs = {.loss = gf_loss_default(GF_LOSS_CROSS_ENTROPY), .head = head,
                        .trunk_factor = head ? o->lr_trunk_factor : 1.0};
    fs.loss.label_smoothing = (float)o->label_smoothing;
    float *class_w = NULL;
    int rc = cli_class_weights(ctx, o, d, &class_w);
    if (rc != CLI_CONTINUE) return rc;
    fs.loss.class_weights = class_w;
    fs.loss.n_class_weights = class_w ? d->n_classes : 0;
    if (d->regression) fs.loss = cli_regression_loss(o);
    gf_loader *ld = gf_loader_new(ctx, d->train, &lp);
    gf_optim *opt = ld ? cli_make_optim(ctx, o, m, &fs) : NULL;
    gf_lr_find_params p = gf_lr_find_default_params();
    p.start_lr = o->start_lr;
    p.end_lr = o->end_lr;
    p.num_it = o->num_it;
    p.stop_div = !o->no_stop_div;
    gf_status st = opt ? gf_lr_find(ctx, m, &fs.loss, opt, ld, &p, r) : gf_ctx_status(ctx);
    gf_optim_free(opt);
    gf_loader_free(ld);
    free(class_w);
    if (st != GF_OK) return cli_fail(o->cmd, "the sweep failed: %s", gf_ctx_error(ctx));
    return CLI_CONTINUE;
}

/* The sweep on a built model, then the report and the suggestions. */
static int sweep_and_print(gf_ctx *ctx, const cli_opts *o, cli_model *cm, const cli_data *d,
                           const char *head) {
    gf_lr_find_result r;
    memset(&r, 0, sizeof r);
    cli_log(o, "graft lr-find: %s%s%s on %s: %d batches of %lld, lr %g .. %g\n",
            cli_model_desc(cm), o->from ? " from " : "", o->from ? o->from : "", d->spec,
            o->num_it, (long long)o->batch, o->start_lr, o->end_lr);
    int rc = run_sweep(ctx, o, cm->b->model, d, head, &r);
    if (rc == CLI_CONTINUE && o->report)
        rc = sweep_report(ctx, o, cli_model_desc(cm), d, &r);
    if (rc == CLI_CONTINUE && o->json) {
        rc = cli_json_print(sweep_json(o, cm->b->info.model, d, &r));
    } else if (rc == CLI_CONTINUE) {
        print_sweep(o, cli_model_desc(cm), d, &r);
        rc = CLI_OK;
    }
    gf_lr_find_result_free(&r);
    return rc;
}

/* --from: finetune's model and freezing, swept. */
static int lrfind_from(cli_opts *o) {
    int rc = cli_check_input(o->cmd, "--from", o->from);
    if (rc != CLI_CONTINUE) return rc;
    if (o->dry_run || o->delta)
        return cli_usage_error(o->cmd, "%s does not apply: lr-find writes no weights",
                               o->dry_run ? "--dry-run" : "--delta");
    if (cli_is_tfjs(o->from))
        return cli_usage_error(o->cmd, "--from: a TensorFlow.js model.json is not swept; give "
                                       "a .safetensors file");
    if ((rc = cli_check_model_arg(o->cmd, "--model", o->model)) != CLI_CONTINUE) return rc;
    return cli_finetune_with(o, sweep_and_print);
}

int cmd_lrfind(cli_opts *o) {
    int rc = check_lrfind_opts(o);
    if (rc != CLI_CONTINUE) return rc;
    if (o->from) return lrfind_from(o);
    if (o->dry_run || o->delta || o->n_freeze || o->n_unfreeze || o->train_last >= 0 ||
        o->bn_policy || o->strip_prefix || o->n_rename || o->strict || strcmp(o->head, "auto"))
        return cli_usage_error(o->cmd, "the fine-tuning options (--freeze, --head, --train-last, "
                                       "--rename, ...) need --from");
    const char *model_arg = o->model ? o->model : "mlp";
    if ((rc = cli_check_model_arg(o->cmd, "--model", model_arg)) != CLI_CONTINUE) return rc;
    gf_ctx *ctx = cli_context(o);
    if (!ctx) return CLI_FAILED;
    cli_data d;
    cli_model cm = {0};
    rc = cli_data_load(ctx, o, &d);
    if (rc != CLI_CONTINUE) goto out_ctx;
    rc = cli_model_build(ctx, o, model_arg, NULL, &d, d.n_classes, &cm);
    if (rc == CLI_CONTINUE) rc = sweep_and_print(ctx, o, &cm, &d, NULL);
    cli_model_free(&cm);
    cli_data_free(&d);
out_ctx:
    gf_ctx_free(ctx);
    return rc;
}
