/* graft multitask: one trunk with a head per task (graft/multitask.h), trained on several data
 * specs of the same sample shape; each task's score is reported next to the task trained alone
 * so negative transfer shows. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/multitask.h"

static bool on_epoch(const gf_mt_epoch *e, void *user) {
    const cli_opts *o = user;
    if (!o->quiet) {
        fprintf(stderr, "%-12s epoch %d/%d", e->run, e->epoch, e->epochs);
        for (int i = 0; i < e->n_tasks; i++) {
            fprintf(stderr, "  %s loss %.4f", e->tasks[i], e->train_loss[i]);
            if (!isnan(e->val_score[i])) fprintf(stderr, " val %.4f", e->val_score[i]);
        }
        fprintf(stderr, "  %.1fs\n", e->seconds);
    }
    return !cli_interrupted;
}

/* The run's settings from the options. */
static gf_mt_params mt_params(cli_opts *o) {
    gf_mt_params p = gf_mt_default_params();
    gf_mt_mode_parse(o->mt_mode, &p.mode);
    p.epochs = o->epochs;
    p.batch_size = o->batch;
    p.seed = o->seed;
    p.optim = gf_optim_default_params(o->optim);
    if (o->lr > 0) p.optim.lr = o->lr;
    if (o->weight_decay >= 0) p.optim.weight_decay = o->weight_decay;
    p.optim.momentum = o->momentum;
    p.baselines = !o->no_baselines;
    p.on_epoch = on_epoch;
    p.user = o;
    return p;
}

int cmd_multitask(cli_opts *o) {
    const char *cmd = o->cmd;
    if (o->n_task < 2) return cli_usage_error(cmd, "give at least two --task NAME=DATASPEC");
    if (o->data) return cli_usage_error(cmd, "--data does not apply: each --task names its data");
    if (o->augment) return cli_usage_error(cmd, "--augment is not used by multitask");
    if (strcmp(o->normalize, "standard") == 0)
        return cli_usage_error(cmd, "--normalize standard is not used by multitask");
    const char *model_arg = o->model ? o->model : "cnn-small";
    int rc;
    if ((rc = cli_check_model_arg(cmd, "--model", model_arg)) != CLI_CONTINUE) return rc;
    if (o->out && (rc = cli_check_output(cmd, "--out", o->out)) != CLI_CONTINUE) return rc;
    char names[CLI_MAX_LIST][64];
    for (int i = 0; i < o->n_task; i++) {
        const char *eq = strchr(o->task[i], '=');
        size_t n = (size_t)(eq - o->task[i]);
        if (n >= sizeof names[i] || memchr(o->task[i], '.', n))
            return cli_usage_error(cmd, "--task %s: the name must be shorter than 64 characters "
                                        "and have no '.'", o->task[i]);
        memcpy(names[i], o->task[i], n);
        names[i][n] = '\0';
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return cli_usage_error(cmd, "--task: the name '%s' is given twice", names[i]);
    }
    gf_ctx *ctx = cli_context(o);
    if (!ctx) return CLI_FAILED;
    cli_data d[CLI_MAX_LIST];
    memset(d, 0, sizeof d);
    int n_loaded = 0;
    cli_model cm = {0};
    gf_module *mt = NULL;
    gf_mt_result *res = NULL;
    gf_mt_task tasks[CLI_MAX_LIST];
    for (int i = 0; i < o->n_task; i++) {
        cli_opts to = *o;
        to.data = strchr(o->task[i], '=') + 1;
        to.normalize = "none";
        rc = cli_data_load(ctx, &to, &d[i]);
        if (rc != CLI_CONTINUE) goto out;
        n_loaded++;
        bool same = d[i].ndim == d[0].ndim;
        for (int k = 0; same && k < d[0].ndim; k++) same = d[i].shape[k] == d[0].shape[k];
        if (!same) {
            char a[64], b[64];
            gf_dims_str(d[0].ndim, d[0].shape, a, sizeof a);
            gf_dims_str(d[i].ndim, d[i].shape, b, sizeof b);
            rc = cli_fail(cmd, "task %s has samples %s but task %s has %s: the tasks share one "
                               "trunk and need one sample shape", names[0], a, names[i], b);
            goto out;
        }
        char desc[1024];
        cli_data_describe(&d[i], desc, sizeof desc);
        cli_log(o, "graft multitask: task %s: %s\n", names[i], desc);
    }
    rc = cli_model_build(ctx, o, model_arg, NULL, &d[0], d[0].n_classes, &cm);
    if (rc != CLI_CONTINUE) goto out;
    rc = CLI_FAILED;
    mt = gf_mt_new(ctx, cm.b->model, cm.b->head);
    cm.b->model = NULL; /* owned by mt now */
    for (int i = 0; mt && i < o->n_task; i++)
        if (gf_mt_add_head(ctx, mt, names[i], d[i].n_classes, NULL) != GF_OK) break;
    if (!mt || gf_ctx_status(ctx) != GF_OK) {
        cli_fail_ctx(cmd, ctx);
        goto out;
    }
    for (int i = 0; i < o->n_task; i++) {
        tasks[i] = gf_mt_task_default(names[i], d[i].train);
        tasks[i].val = d[i].val;
        tasks[i].test = d[i].test;
    }
    gf_mt_params p = mt_params(o);
    {   /* under mpirun: checks, rank 0's weights, each rank's share of every task's batches */
        gf_loader_params lp = gf_loader_default_params();
        gf_fit_params fp = gf_fit_default_params();
        if ((rc = cli_dist_prepare(ctx, o, mt, NULL, &lp, &fp)) != CLI_CONTINUE) goto out;
        rc = CLI_FAILED;
        p.shard_rank = lp.shard_rank;
        p.shard_count = lp.shard_count;
        p.grad_sync = fp.grad_sync;
        p.grad_begin = fp.grad_begin;
        p.grad_sync_user = fp.grad_sync_user;
    }
    cli_install_sigint();
    const double t0 = cli_now();
    if (gf_mt_fit(ctx, mt, tasks, o->n_task, &p, &res) != GF_OK) {
        rc = cli_interrupted ? cli_fail(cmd, "interrupted") : cli_dist_fit_failed(ctx, cmd);
        goto out;
    }
    if ((rc = cli_dist_after(ctx, o, mt, cli_now() - t0)) != CLI_CONTINUE) goto out;
    rc = CLI_FAILED;
    if (o->out) {
        cJSON *tj = cJSON_CreateArray();
        for (int i = 0; i < o->n_task; i++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "name", names[i]);
            cJSON_AddStringToObject(t, "data", d[i].spec);
            cJSON_AddItemToObject(t, "classes", cli_json_names(d[i].n_classes,
                                                               (const char *const *)d[i].class_names));
            cJSON_AddItemToArray(tj, t);
        }
        char *tasks_text = cJSON_PrintUnformatted(tj);
        cJSON_Delete(tj);
        /* a bundle of the MultiTask module: graft.command, graft.model and graft.input from
         * its description, the trunk and the tasks as extra keys */
        char kind[] = "multitask";
        gf_bundle b;
        memset(&b, 0, sizeof b);
        b.model = mt;
        b.info.command = kind;
        b.info.model = kind;
        b.info.in_ndim = d[0].ndim;
        memcpy(b.info.in_shape, d[0].shape, sizeof(int64_t) * (size_t)d[0].ndim);
        const char *extra[] = {"graft.trunk", model_arg, "graft.tasks", tasks_text ? tasks_text : "[]"};
        gf_status st = gf_bundle_save(ctx, &b, o->out, extra, 2);
        cJSON_free(tasks_text);
        if (st != GF_OK) {
            rc = cli_fail(cmd, "writing %s: %s", o->out, gf_ctx_error(ctx));
            goto out;
        }
    }
    if (o->json) {
        char *js = gf_mt_json(ctx, res);
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "command", "multitask");
        cJSON_AddStringToObject(root, "model", model_arg);
        cJSON_AddItemToObject(root, "result", js ? cJSON_Parse(js) : cJSON_CreateNull());
        free(js);
        if (o->out) cJSON_AddStringToObject(root, "out", o->out);
        else cJSON_AddNullToObject(root, "out");
        rc = cli_json_print(root);
    } else {
        printf("multitask: %s trunk, %d tasks, %s\n", model_arg, o->n_task, o->mt_mode);
        gf_mt_print(res, stdout);
        if (o->out) printf("\nweights   %s\n", o->out);
        rc = CLI_OK;
    }
out:
    gf_mt_result_free(res);
    gf_module_free(mt);
    cli_model_free(&cm);
    for (int i = 0; i < n_loaded; i++) cli_data_free(&d[i]);
    gf_ctx_free(ctx);
    return rc;
}
