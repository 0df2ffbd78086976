/* graft train: a classifier from scratch on any data spec, with a zoo model or a JSON model
 * spec, through gf_fit (progress, Ctrl-C, checkpoints, resume), then the test metrics. The
 * shared summary and JSON of a training run (used by finetune and distill too) live here. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

gf_ctx *cli_context(const cli_opts *o) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = o->threads;
    cp.seed = o->seed;
    cp.limits = o->limits;
    gf_ctx *ctx = gf_ctx_new(&cp);
    if (!ctx) cli_fail(o->cmd, "out of memory creating a context");
    return ctx;
}

int cli_check_train_paths(const cli_opts *o) {
    int rc = CLI_CONTINUE;
    if (o->out && (rc = cli_check_output(o->cmd, "--out", o->out)) != CLI_CONTINUE) return rc;
    if (o->checkpoint_dir &&
        (rc = cli_check_output_dir(o->cmd, "--checkpoint-dir", o->checkpoint_dir, NULL)) != CLI_CONTINUE)
        return rc;
    if (o->report && (rc = cli_check_output_dir(o->cmd, "--report", o->report, cli_report_files)) != CLI_CONTINUE)
        return rc;
    if (o->resume && !cli_is_dir(o->resume) &&
        (rc = cli_check_input(o->cmd, "--resume", o->resume)) != CLI_CONTINUE)
        return rc;
    if (o->checkpoint_every && !o->checkpoint_dir && !(o->resume && cli_is_dir(o->resume)))
        return cli_usage_error(o->cmd, "--checkpoint-every needs --checkpoint-dir");
    return CLI_CONTINUE;
}

/* The part the final numbers are measured on: test, else validation. */
gf_ds *cli_final_part(const cli_data *d, const char **name) {
    if (d->test) {
        *name = "test";
        return d->test;
    }
    if (d->val) {
        *name = "val";
        return d->val;
    }
    *name = "train";
    return d->train;
}

void cli_print_run(const cli_opts *o, const char *model_desc, const cli_data *d,
                   const cli_fit_out *f, const char *part, const cli_eval *ev, const char *out) {
    char desc[1024];
    cli_data_describe(d, desc, sizeof desc);
    printf("model     %s (%lld parameters, %lld trainable)\n", model_desc, (long long)f->total,
           (long long)f->trainable);
    printf("data      %s\n", desc);
    printf("training  %d epochs, %lld steps, %.1f s%s%s\n", f->res.epochs_run,
           (long long)f->res.steps, f->seconds, f->interrupted ? ", interrupted" : "",
           f->res.stopped_early ? ", stopped early" : "");
    if (f->res.restored_best) printf("          kept the weights of epoch %d\n", f->res.best_epoch);
    if (ev && ev->regression) {
        printf("\n%s part:\n", part);
        cli_regression_print(ev, stdout);
    } else if (ev && ev->cm) {
        printf("\n%s part:\n", part);
        cli_eval_print(ev, (const char *const *)d->class_names, stdout);
    }
    if (out) printf("\nweights   %s\n", out);
    if (f->checkpoint[0]) printf("checkpoint %s\n", f->checkpoint);
    (void)o;
}

cJSON *cli_run_json(const cli_opts *o, const char *model_name, const cli_data *d,
                    const cli_fit_out *f, const char *part, const cli_eval *ev, const char *out) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "command", o->cmd);
    cJSON *m = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(m, "name", model_name);
    cJSON_AddNumberToObject(m, "parameters", (double)f->total);
    cJSON_AddNumberToObject(m, "trainable", (double)f->trainable);
    cJSON *dj = cJSON_AddObjectToObject(root, "data");
    cJSON_AddStringToObject(dj, "spec", d->spec);
    cJSON_AddNumberToObject(dj, "train", (double)(d->train ? gf_ds_count(d->train) : 0));
    cJSON_AddNumberToObject(dj, "val", (double)(d->val ? gf_ds_count(d->val) : 0));
    cJSON_AddNumberToObject(dj, "test", (double)(d->test ? gf_ds_count(d->test) : 0));
    cJSON_AddItemToObject(dj, "shape", cli_json_shape(d->ndim, d->shape));
    cJSON_AddItemToObject(dj, "classes",
                          cli_json_names(d->n_classes, (const char *const *)d->class_names));
    cJSON *t = cJSON_AddObjectToObject(root, "training");
    cJSON_AddNumberToObject(t, "epochs_run", f->res.epochs_run);
    cJSON_AddNumberToObject(t, "steps", (double)f->res.steps);
    cJSON_AddNumberToObject(t, "seconds", f->seconds);
    cJSON_AddBoolToObject(t, "interrupted", f->interrupted);
    cJSON_AddBoolToObject(t, "stopped_early", f->res.stopped_early);
    cJSON_AddBoolToObject(t, "resumed", f->res.resumed);
    cJSON_AddNumberToObject(t, "best_epoch", f->res.best_epoch);
    cJSON_AddItemToObject(t, "history", cli_history_json(&f->hist));
    if (d->regression) cJSON_AddStringToObject(dj, "target", d->target_name ? d->target_name : "");
    if (ev && (ev->cm || ev->regression)) {
        cJSON *e = ev->regression ? cli_regression_json(ev)
                                  : cli_eval_json(ev, (const char *const *)d->class_names);
        cJSON_AddStringToObject(e, "part", part);
        cJSON_AddItemToObject(root, "eval", e);
    }
    if (out) cJSON_AddStringToObject(root, "out", out);
    else cJSON_AddNullToObject(root, "out");
    if (f->checkpoint[0]) cJSON_AddStringToObject(root, "checkpoint", f->checkpoint);
    else cJSON_AddNullToObject(root, "checkpoint");
    return root;
}

/* --vectors FILE: the text model's embedding (its child "embedding") from pretrained word
 * vectors, row by row through the data's vocabulary; --freeze-vectors keeps it fixed. */
static int load_vectors(gf_ctx *ctx, const cli_opts *o, cli_model *cm, const cli_data *d) {
    if (!o->vectors)
        return o->freeze_vectors ? cli_usage_error(o->cmd, "--freeze-vectors needs --vectors FILE")
                                 : CLI_CONTINUE;
    gf_module *emb = gf_module_child(cm->b->model, "embedding");
    if (!d->vocab || !emb)
        return cli_usage_error(o->cmd, "--vectors applies to a text model with an embedding "
                                       "(lstm, gru, transformer) on text: data");
    const double t0 = cli_now();
    gf_text_vectors_params vp = gf_text_vectors_default_params();
    vp.only = d->vocab; /* only the words this vocabulary can use are kept */
    gf_text_vectors *vec = gf_text_vectors_load(ctx, o->vectors, &vp);
    if (!vec) return cli_fail(o->cmd, "--vectors %s: %s", o->vectors, gf_ctx_error(ctx));
    gf_text_coverage cov;
    gf_status st = gf_text_vectors_fill_module(ctx, vec, d->vocab, emb, &cov);
    gf_text_vectors_free(vec);
    if (st != GF_OK) return cli_fail(o->cmd, "--vectors %s: %s", o->vectors, gf_ctx_error(ctx));
    if (o->freeze_vectors) gf_module_set_requires_grad(emb, false);
    cli_log(o, "graft train: --vectors %s: %lld of %lld vocabulary words have a vector (%.1f%%), "
               "covering %.1f%% of the training tokens (%.1f s)%s\n", o->vectors,
            (long long)cov.found, (long long)cov.words,
            cov.words ? 100.0 * (double)cov.found / (double)cov.words : 0.0,
            cov.train_tokens ? 100.0 * (double)cov.covered_tokens / (double)cov.train_tokens : 0.0,
            cli_now() - t0, o->freeze_vectors ? "; the embedding is frozen" : "");
    return CLI_CONTINUE;
}

int cmd_train(cli_opts *o) {
    int rc = cli_check_train_paths(o);
    if (rc != CLI_CONTINUE) return rc;
    const char *model_arg = o->model ? o->model : "mlp";
    if ((rc = cli_check_model_arg(o->cmd, "--model", model_arg)) != CLI_CONTINUE) return rc;
    gf_ctx *ctx = cli_context(o);
    if (!ctx) return CLI_FAILED;
    cli_data d;
    cli_model cm = {0};
    cli_fit_out fo = {0};
    cli_eval ev = {0};
    rc = cli_data_load(ctx, o, &d);
    if (rc != CLI_CONTINUE) goto out_ctx;
    rc = cli_model_build(ctx, o, model_arg, NULL, &d, d.n_classes, &cm);
    if (rc != CLI_CONTINUE) goto out_data;
    if ((rc = load_vectors(ctx, o, &cm, &d)) != CLI_CONTINUE) goto out_model;
    char desc[1024];
    cli_data_describe(&d, desc, sizeof desc);
    cli_log(o, "graft train: %s (%lld parameters) on %s; %s, batch %lld, %d threads, seed %llu\n",
            cli_model_desc(&cm), (long long)gf_module_param_count(cm.b->model, false),
            desc, gf_optim_kind_name(o->optim), (long long)o->batch, gf_ctx_threads(ctx),
            (unsigned long long)o->seed);
    cli_fit_setup fs = {.loss = gf_loss_default(GF_LOSS_CROSS_ENTROPY)};
    fs.loss.label_smoothing = (float)o->label_smoothing;
    float *class_w = NULL;
    if ((rc = cli_class_weights(ctx, o, &d, &class_w)) != CLI_CONTINUE) goto out_model;
    fs.loss.class_weights = class_w;
    fs.loss.n_class_weights = class_w ? d.n_classes : 0;
    if (d.regression) fs.loss = cli_regression_loss(o);
    else if (o->reg_loss_given)
        cli_log(o, "graft train: note: --loss applies to a regression target; this data has "
                   "classes (cross entropy)\n");
    rc = cli_fit(ctx, o, cm.b->model, &d, &fs, &fo);
    free(class_w);
    if (rc != CLI_CONTINUE) goto out_model;
    const char *part;
    gf_ds *eval_ds = cli_final_part(&d, &part);
    rc = fo.interrupted ? CLI_CONTINUE /* leave quickly */
         : d.regression ? cli_evaluate_regression(ctx, o->cmd, cm.b->model, &d, eval_ds, d.eval_tf,
                                                  o->batch, &ev)
                        : cli_evaluate(ctx, o->cmd, cm.b->model, eval_ds, d.eval_tf, o->batch, &ev);
    if (rc != CLI_CONTINUE) goto out_model;
    const char *written = NULL;
    /* Ctrl-C keeps what was learned (like Keras' ModelCheckpoint): the weights of the last
     * step go to --out, so finished epochs are never thrown away */
    if (o->out && (!fo.interrupted || fo.res.steps > 0)) {
        char ep[32];
        snprintf(ep, sizeof ep, "%d", fo.res.epochs_run);
        const char *extra[] = {"graft.epochs", ep};
        rc = cli_save_weights(ctx, o, &cm, &d, o->out, extra, 1);
        if (rc != CLI_CONTINUE) goto out_model;
        written = o->out;
        if (fo.interrupted)
            cli_log(o, "graft train: interrupted after %lld steps (%d full epochs); wrote the "
                       "weights of the last step to %s\n", (long long)fo.res.steps,
                    fo.res.epochs_run, o->out);
    }
    if (o->report) {
        rc = cli_report_run(ctx, o, cli_model_desc(&cm), &d, &fo, part, &ev,
                            written);
        if (rc != CLI_CONTINUE) goto out_model;
    }
    if (o->json)
        rc = cli_json_print(cli_run_json(o, cm.b->info.model, &d, &fo, part, &ev, written));
    else {
        cli_print_run(o, cli_model_desc(&cm), &d, &fo, part, &ev, written);
        rc = CLI_OK;
    }
    if (fo.interrupted) rc = CLI_FAILED;
out_model:
    cli_eval_free(&ev);
    cli_fit_out_free(&fo);
    cli_model_free(&cm);
out_data:
    cli_data_free(&d);
out_ctx:
    gf_ctx_free(ctx);
    return rc;
}
