/* graft eval: trained weights on a part of a dataset — loss, accuracy, macro precision / recall
 * / F1 (sklearn's definitions), the per-class report and the confusion matrix. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <string.h>

int cmd_eval(cli_opts *o) {
    if (!o->weights) return cli_usage_error(o->cmd, "--weights is required");
    int rc = cli_check_input(o->cmd, "--weights", o->weights);
    if (rc != CLI_CONTINUE) return rc;
    if (o->base && (rc = cli_check_input(o->cmd, "--base", o->base)) != CLI_CONTINUE) return rc;
    if ((rc = cli_check_model_arg(o->cmd, "--model", o->model)) != CLI_CONTINUE) return rc;
    if (o->predictions &&
        (rc = cli_check_output(o->cmd, "--predictions", o->predictions)) != CLI_CONTINUE)
        return rc;
    if (o->report &&
        (rc = cli_check_output_dir(o->cmd, "--report", o->report, cli_report_files)) != CLI_CONTINUE)
        return rc;
    gf_ctx *ctx = cli_context(o);
    if (!ctx) return CLI_FAILED;
    gf_bundle_info meta;
    cli_data d;
    cli_model cm = {0};
    cli_eval ev = {0};
    gf_tf *tf = NULL;
    gf_ds *all = NULL; /* --part all: every part together */
    cli_preds preds = {0};
    rc = cli_meta_open(ctx, o, o->weights, &meta);
    if (rc != CLI_CONTINUE) goto out_ctx;
    rc = cli_data_load_for(ctx, o, &meta, &d);
    if (rc != CLI_CONTINUE) goto out_meta;
    rc = CLI_FAILED;
    if (!cli_meta_fits_samples(o->cmd, o->weights, &meta, &d)) goto out_data;
    if (meta.n_classes && meta.n_classes != d.n_classes) {
        cli_fail(o->cmd, "%s was trained on %d classes but %s has %d (use --classes to pick them)",
                 o->weights, meta.n_classes, d.spec, d.n_classes);
        goto out_data;
    }
    for (int k = 0; meta.class_names && k < d.n_classes; k++)
        if (strcmp(meta.class_names[k], d.class_names[k]) != 0) {
            cli_log(o, "graft eval: note: class %d is \"%s\" in the weights but \"%s\" in the "
                       "data\n", k, meta.class_names[k], d.class_names[k]);
            break;
        }
    gf_ds *part = strcmp(o->part, "all") == 0 ? (all = gf_ds_parts_all(ctx, &d))
                                               : cli_data_part(&d, o->part);
    if (!part) {
        if (all || gf_ctx_status(ctx) != GF_OK) cli_fail_ctx(o->cmd, ctx);
        else cli_fail(o->cmd, "%s has no %s part (see --split, --val, --part)", d.spec, o->part);
        goto out_data;
    }
    rc = cli_model_build(ctx, o, o->model, &meta, &d, d.n_classes, &cm);
    if (rc != CLI_CONTINUE) goto out_data;
    rc = cli_load_weights(ctx, o, o->weights, o->base, &meta, &cm);
    if (rc != CLI_CONTINUE) goto out_model;
    /* the model's own normalisation, not statistics of this data */
    tf = gf_bundle_transform(ctx, &meta);
    if (gf_ctx_status(ctx) != GF_OK) {
        rc = cli_fail_ctx(o->cmd, ctx);
        goto out_model;
    }
    cli_log(o, "graft eval: %s (%s) on the %s part of %s (%lld examples)\n", o->weights, cm.b->info.model,
            o->part, d.spec, (long long)gf_ds_count(part));
    if (d.label_steps > 0 && (o->predictions || o->report)) {
        rc = cli_usage_error(o->cmd, "%s lists one prediction per example; %s has a tag per "
                             "token (the per-tag report and confusion matrix are printed)",
                             o->predictions ? "--predictions" : "--report", d.spec);
        goto out_model;
    }
    if (d.regression && (o->predictions || o->report)) {
        rc = cli_usage_error(o->cmd, "%s is for classifiers; %s holds a regression model",
                             o->predictions ? "--predictions" : "--report", o->weights);
        goto out_model;
    }
    if (d.regression) {
        rc = cli_evaluate_regression(ctx, o->cmd, cm.b->model, &d, part, tf, o->batch, &ev);
    } else {
        rc = cli_evaluate_preds(ctx, o->cmd, cm.b->model, part, tf, o->batch, &ev, cli_preds_add,
                                &preds);
        if (rc == CLI_CONTINUE && o->predictions)
            rc = cli_preds_write_csv(ctx, o, &d, part, &preds);
        if (rc == CLI_CONTINUE && o->report) rc = cli_preds_report(ctx, o, &d, part, &ev, &preds);
    }
    if (rc != CLI_CONTINUE) goto out_model;
    const char *const *names = (const char *const *)d.class_names;
    if (o->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "command", "eval");
        cJSON_AddStringToObject(root, "weights", o->weights);
        cJSON_AddStringToObject(root, "model", cm.b->info.model);
        cJSON_AddStringToObject(root, "data", d.spec);
        cJSON_AddStringToObject(root, "part", o->part);
        cJSON *e = ev.regression ? cli_regression_json(&ev) : cli_eval_json(&ev, names);
        for (cJSON *c = e->child; c;) {
            cJSON *next = c->next;
            cJSON_AddItemToObject(root, c->string, cJSON_DetachItemViaPointer(e, c));
            c = next;
        }
        cJSON_Delete(e);
        cJSON *w = ev.regression ? cJSON_CreateObject() : cli_preds_wrong_json(&d, part, &preds);
        for (cJSON *c = w->child; c;) {
            cJSON *next = c->next;
            cJSON_AddItemToObject(root, c->string, cJSON_DetachItemViaPointer(w, c));
            c = next;
        }
        cJSON_Delete(w);
        if (o->predictions) cJSON_AddStringToObject(root, "predictions", o->predictions);
        rc = cli_json_print(root);
    } else {
        printf("weights          %s (%s)\n", o->weights, cm.b->info.model);
        printf("data             %s, %s part\n", d.spec, o->part);
        if (ev.regression) {
            cli_regression_print(&ev, stdout);
        } else {
            cli_eval_print(&ev, names, stdout);
            cli_preds_print_wrong(&d, part, &preds, stdout);
        }
        if (o->predictions) printf("\npredictions      %s\n", o->predictions);
        rc = CLI_OK;
    }
out_model:
    cli_preds_free(&preds);
    gf_ds_free(all);
    cli_eval_free(&ev);
    gf_tf_free(tf);
    cli_model_free(&cm);
out_data:
    cli_data_free(&d);
out_meta:
    gf_bundle_info_free(&meta);
out_ctx:
    gf_ctx_free(ctx);
    return rc;
}
