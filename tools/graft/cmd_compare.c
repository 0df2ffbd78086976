/* graft compare: transfer strategies side by side (gf_compare_run) on the same data, budget and
 * seeds, optionally swept over the number of labels per class; a table, JSON and an HTML report.
 * The sweep and its report are shared with graft demo. */
#define _POSIX_C_SOURCE 200809L
#include "cli_compare.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cli_sweep_free(cli_sweep *sw) {
    for (int i = 0; i < sw->n; i++) gf_compare_result_free(sw->res[i]);
    memset(sw, 0, sizeof *sw);
}

/* One line per finished run (on a terminal, each epoch overwrites a transient line). */
static bool on_progress(gf_compare_strategy s, uint64_t seed, const gf_epoch_stats *e, void *user) {
    const cli_opts *o = user;
    static int tty = -1;
    if (tty < 0) tty = isatty(STDERR_FILENO);
    bool last = e->epoch >= e->epochs;
    if (!o->quiet && (last || tty)) {
        fprintf(stderr, "%s  %-18s seed %-3llu epoch %3d/%-3d loss %.4f", tty ? "\r\033[K" : "",
                gf_compare_strategy_name(s), (unsigned long long)seed, e->epoch, e->epochs,
                e->train_loss);
        if (!isnan(e->val_acc)) fprintf(stderr, "  val_acc %.4f", e->val_acc);
        fprintf(stderr, last ? "\n" : "");
        fflush(stderr);
    }
    return !cli_interrupted;
}

int cli_compare_sweep(gf_ctx *ctx, const cli_opts *o, gf_compare_params *p, cli_data *d,
                      cli_sweep *sw, int (*epochs_for)(int64_t n_train, const void *user),
                      const void *user) {
    const char *cmd = o->cmd;
    p->progress = on_progress;
    p->user = (void *)o;
    cli_install_sigint();
    for (int i = 0; i < sw->n; i++) {
        gf_ds *train = d->train;
        bool own = false;
        if (sw->labels[i] > 0) {
            train = gf_split_per_class(ctx, d->train, sw->labels[i], true, o->seed, true);
            if (!train) return cli_fail(cmd, "--labels %lld: %s", (long long)sw->labels[i],
                                        gf_ctx_error(ctx));
            own = true;
        }
        sw->n_train[i] = gf_ds_count(train);
        char wd[4200];
        const char *old_wd = p->work_dir;
        if (old_wd) {
            snprintf(wd, sizeof wd, "%s/labels-%lld", old_wd, (long long)sw->labels[i]);
            if (sw->labels[i] == 0) snprintf(wd, sizeof wd, "%s/all", old_wd);
            if (mkdir(old_wd, 0777) != 0 && errno != EEXIST) {
                if (own) gf_ds_free(train);
                return cli_fail(cmd, "--work-dir %s: %s", old_wd, strerror(errno));
            }
            if (mkdir(wd, 0777) != 0 && errno != EEXIST) {
                if (own) gf_ds_free(train);
                return cli_fail(cmd, "--work-dir %s: %s", wd, strerror(errno));
            }
            p->work_dir = wd;
        }
        int epochs = p->epochs;
        if (epochs_for) p->epochs = epochs_for(sw->n_train[i], user);
        if (!o->quiet) {
            if (sw->labels[i] > 0)
                fprintf(stderr, "graft %s: %lld labels per class (%lld training examples), %d "
                                "epochs\n", cmd, (long long)sw->labels[i],
                        (long long)sw->n_train[i], p->epochs);
            else
                fprintf(stderr, "graft %s: %lld training examples, %d epochs\n", cmd,
                        (long long)sw->n_train[i], p->epochs);
        }
        gf_status st = gf_compare_run(ctx, p, sw->strategies, sw->n_strategies, train, d->val,
                                      d->test, &sw->res[i]);
        sw->epochs[i] = p->epochs;
        p->epochs = epochs;
        p->work_dir = old_wd;
        if (own) gf_ds_free(train);
        if (st != GF_OK) {
            if (cli_interrupted) return cli_fail(cmd, "interrupted");
            return p->grad_sync ? cli_dist_fit_failed(ctx, cmd) : cli_fail(cmd, "%s", gf_ctx_error(ctx));
        }
    }
    return CLI_CONTINUE;
}

/* Accuracy of strategy s at sweep point i (NaN: not run). */
static const gf_compare_entry *entry(const cli_sweep *sw, int i, int s) {
    return sw->res[i] ? gf_compare_find(sw->res[i], sw->strategies[s]) : NULL;
}

void cli_sweep_print(const cli_sweep *sw, bool details, FILE *f) {
    for (int i = 0; i < sw->n; i++) {
        if (sw->labels[i] > 0)
            fprintf(f, "== %lld labels per class (%lld training examples, %d epochs)\n",
                    (long long)sw->labels[i], (long long)sw->n_train[i], sw->epochs[i]);
        gf_compare_print(sw->res[i], f, details);
        fputc('\n', f);
    }
    if (sw->n < 2) return;
    fprintf(f, "test accuracy by labels per class:\n%-20s", "strategy");
    for (int i = 0; i < sw->n; i++) fprintf(f, " %14lld", (long long)sw->labels[i]);
    fputc('\n', f);
    for (int s = 0; s < sw->n_strategies; s++) {
        fprintf(f, "%-20s", gf_compare_strategy_name(sw->strategies[s]));
        for (int i = 0; i < sw->n; i++) {
            const gf_compare_entry *e = entry(sw, i, s);
            char cell[32];
            if (!e) snprintf(cell, sizeof cell, "-");
            else if (e->n_trials > 1) snprintf(cell, sizeof cell, "%.4f±%.4f", e->acc_mean, e->acc_sd);
            else snprintf(cell, sizeof cell, "%.4f", e->acc_mean);
            fprintf(f, " %14s", cell);
        }
        fputc('\n', f);
    }
}

cJSON *cli_sweep_json(gf_ctx *ctx, const cli_sweep *sw) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < sw->n; i++) {
        cJSON *e = cJSON_CreateObject();
        if (sw->labels[i] > 0) cJSON_AddNumberToObject(e, "labels_per_class", (double)sw->labels[i]);
        else cJSON_AddNullToObject(e, "labels_per_class");
        cJSON_AddNumberToObject(e, "n_train", (double)sw->n_train[i]);
        cJSON_AddNumberToObject(e, "epochs", sw->epochs[i]);
        char *js = gf_compare_json(ctx, sw->res[i]);
        cJSON_AddItemToObject(e, "result", js ? cJSON_Parse(js) : cJSON_CreateNull());
        free(js);
        cJSON_AddItemToArray(a, e);
    }
    return a;
}

gf_status cli_sweep_report(gf_ctx *ctx, gf_report *r, const cli_sweep *sw) {
    int ns = sw->n_strategies, np = sw->n;
    const char *names[GF_COMPARE_STRATEGY_COUNT];
    for (int s = 0; s < ns; s++) names[s] = gf_compare_strategy_name(sw->strategies[s]);
    gf_status st = GF_OK;
    if (np > 1) {
        double acc[GF_COMPARE_STRATEGY_COUNT * CLI_MAX_LIST], sd[GF_COMPARE_STRATEGY_COUNT * CLI_MAX_LIST];
        for (int s = 0; s < ns; s++)
            for (int i = 0; i < np; i++) {
                const gf_compare_entry *e = entry(sw, i, s);
                acc[s * np + i] = e ? e->acc_mean : NAN;
                sd[s * np + i] = e ? e->acc_sd : NAN;
            }
        st = gf_report_add_accuracy_chart(ctx, r, "test accuracy vs labels per class", np,
                                          sw->labels, ns, names, acc, sd, GF_REPORT_ACC_AUTO);
    }
    for (int i = 0; st == GF_OK && i < np; i++) {
        const gf_compare_result *res = sw->res[i];
        char title[128];
        if (sw->labels[i] > 0)
            snprintf(title, sizeof title, "%lld labels per class (%lld training examples, %d epochs)",
                     (long long)sw->labels[i], (long long)sw->n_train[i], sw->epochs[i]);
        else
            snprintf(title, sizeof title, "%lld training examples, %d epochs",
                     (long long)sw->n_train[i], sw->epochs[i]);
        st = gf_report_add_heading(ctx, r, title);
        const char *hdr[] = {"strategy", "accuracy", "macro F1", "trainable parameters",
                             "seconds", "delta size", "note"};
        char *cells[GF_COMPARE_STRATEGY_COUNT * 7];
        int rows = 0;
        for (int s = 0; s < res->n; s++, rows++) {
            const gf_compare_entry *e = &res->entries[s];
            char buf[7][300];
            snprintf(buf[0], sizeof buf[0], "%s", e->name);
            if (e->n_trials > 1) {
                snprintf(buf[1], sizeof buf[1], "%.4f ± %.4f", e->acc_mean, e->acc_sd);
                snprintf(buf[2], sizeof buf[2], "%.4f ± %.4f", e->f1_mean, e->f1_sd);
            } else {
                snprintf(buf[1], sizeof buf[1], "%.4f", e->acc_mean);
                snprintf(buf[2], sizeof buf[2], "%.4f", e->f1_mean);
            }
            snprintf(buf[3], sizeof buf[3], "%lld", (long long)e->params_trainable);
            snprintf(buf[4], sizeof buf[4], "%.1f", e->seconds_mean);
            int64_t db = e->n_trials ? e->trials[0].delta_bytes : -1;
            if (db >= 0) snprintf(buf[5], sizeof buf[5], "%.1f KB", (double)db / 1024.0);
            else snprintf(buf[5], sizeof buf[5], "-");
            snprintf(buf[6], sizeof buf[6], "%s", e->note);
            for (int c = 0; c < 7; c++) {
                cells[rows * 7 + c] = malloc(strlen(buf[c]) + 1);
                if (cells[rows * 7 + c]) strcpy(cells[rows * 7 + c], buf[c]);
            }
        }
        if (st == GF_OK)
            st = gf_report_add_table(ctx, r, NULL, 7, hdr, rows, (const char *const *)cells);
        for (int c = 0; c < rows * 7; c++) free(cells[c]);
        /* curves of the first seed: training loss and validation accuracy per strategy */
        gf_report_series loss[GF_COMPARE_STRATEGY_COUNT], va[GF_COMPARE_STRATEGY_COUNT];
        int nl = 0, nv = 0;
        for (int s = 0; s < res->n; s++) {
            const gf_compare_entry *e = &res->entries[s];
            if (!e->n_trials || e->trials[0].epochs < 1) continue;
            const gf_compare_trial *t = &e->trials[0];
            loss[nl++] = (gf_report_series){e->name, e->name, NULL, t->train_loss, NULL, t->epochs, false};
            bool any = false;
            for (int k = 0; k < t->epochs; k++) any |= isfinite(t->val_acc[k]);
            if (any) va[nv++] = (gf_report_series){e->name, e->name, NULL, t->val_acc, NULL, t->epochs, true};
        }
        gf_report_axes ax = gf_report_default_axes();
        ax.title = "training loss per epoch";
        ax.x_label = "epoch";
        ax.y_label = "loss";
        ax.markers = true;
        if (st == GF_OK && nl) st = gf_report_add_line_chart(ctx, r, &ax, loss, nl);
        ax.title = "validation accuracy per epoch";
        ax.y_label = "accuracy";
        ax.y_percent = true;
        if (st == GF_OK && nv) st = gf_report_add_line_chart(ctx, r, &ax, va, nv);
        /* the confusion matrix of the best strategy */
        int best = -1;
        for (int s = 0; s < res->n; s++)
            if (best < 0 || res->entries[s].acc_mean > res->entries[best].acc_mean) best = s;
        if (st == GF_OK && best >= 0) {
            char ct[160];
            snprintf(ct, sizeof ct, "confusion matrix of %s (best here; summed over seeds)",
                     res->entries[best].name);
            st = gf_report_add_confusion(ctx, r, ct, res->n_classes, res->entries[best].confusion,
                                         (const char *const *)res->class_names);
        }
    }
    return st;
}

/* Settings shared by compare and demo: model, budget, LoRA, distillation, seeds. */
int cli_compare_params(gf_ctx *ctx, const cli_opts *o, const cli_data *d, const char *model,
                       gf_compare_params *p, uint64_t *seeds, cli_sweep *sw,
                       const char *default_strategies) {
    const char *cmd = o->cmd;
    *p = gf_compare_default_params();
    p->model = model;
    p->zoo.in_channels = (int)d->shape[0];
    p->zoo.height = (int)d->shape[1];
    p->zoo.width = (int)d->shape[2];
    p->pretrained = o->from;
    for (int i = 0; i < 4; i++) p->zoo.hidden[i] = o->hidden[i];
    p->epochs = o->epochs;
    p->batch_size = o->batch;
    p->optim = gf_optim_default_params(o->optim);
    if (o->lr > 0) p->optim.lr = o->lr;
    if (o->weight_decay >= 0) p->optim.weight_decay = o->weight_decay;
    p->optim.momentum = o->momentum;
    p->n_threads = o->threads;
    p->work_dir = o->work_dir;
    if (o->lora_rank) p->lora_r = o->lora_rank;
    static char *targets[CLI_MAX_LIST];
    static int n_targets = 0;
    for (int i = 0; i < n_targets; i++) free(targets[i]);
    n_targets = 0;
    if (o->lora_targets) {
        char *copy = strdup(o->lora_targets), *save = NULL;
        for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && n_targets < CLI_MAX_LIST;
             t = strtok_r(NULL, ",", &save))
            targets[n_targets++] = strdup(t);
        free(copy);
        p->lora_targets = (const char *const *)targets;
        p->n_lora_targets = n_targets;
    }
    if (o->lora_alpha > 0) p->lora_alpha = (float)o->lora_alpha;
    p->teacher = o->teacher;
    p->teacher_model = o->teacher_model;
    p->distill_T = (float)o->temperature;
    p->distill_alpha = (float)o->alpha;
    int64_t sv[CLI_MAX_LIST];
    int n = o->seeds ? cli_parse_i64_list(o->seeds, 0, INT64_MAX, sv, CLI_MAX_LIST) : 0;
    if (n <= 0) {
        seeds[0] = o->seed;
        n = 1;
    } else {
        for (int i = 0; i < n; i++) seeds[i] = (uint64_t)sv[i];
    }
    p->seeds = seeds;
    p->n_seeds = n;
    int ns = gf_compare_strategies_parse(ctx, o->strategies ? o->strategies : default_strategies,
                                         o->teacher != NULL, sw->strategies,
                                         GF_COMPARE_STRATEGY_COUNT);
    if (ns < 0) return cli_usage_error(cmd, "--strategies: %s", gf_ctx_error(ctx));
    sw->n_strategies = ns;
    for (int i = 0; i < ns; i++)
        if (sw->strategies[i] == GF_COMPARE_DISTILL && !o->teacher)
            return cli_usage_error(cmd, "--strategies: distill needs --teacher (a model of the "
                                        "target's classes)");
    return CLI_CONTINUE;
}

int cli_check_strategy_epochs(const cli_opts *o, const char *default_strategies) {
    const char *list = o->strategies ? o->strategies : default_strategies;
    if (!o->epochs_given || o->epochs >= 2 || !list) return CLI_CONTINUE;
    for (const char *t = list; *t;) {
        size_t n = strcspn(t, ",");
        if ((n == 6 && strncmp(t, "fastai", 6) == 0) || (n == 3 && strncmp(t, "all", 3) == 0))
            return cli_usage_error(o->cmd, "--epochs %d: the fastai strategy needs at least 2 "
                                           "epochs (1 with the head only, then all layers); give "
                                           "--epochs 2 or more, or leave fastai out of "
                                           "--strategies", o->epochs);
        t += n + (t[n] == ',');
    }
    return CLI_CONTINUE;
}

/* Under mpirun: the start-up checks, then every run of the comparison trains on this rank's
 * share of each batch and sums the gradients over the ranks. Nothing in one process. */
static int compare_across_ranks(gf_ctx *ctx, const cli_opts *o, const cli_data *d,
                                gf_compare_params *p) {
    if (o->sync_bn) /* each run has a context of its own, which the hook does not reach */
        return cli_usage_error(o->cmd, "--sync-bn applies to train, finetune and distill");
    gf_loader_params lp = gf_loader_default_params();
    gf_fit_params fp = gf_fit_default_params();
    int rc = cli_dist_prepare(ctx, o, NULL, d, &lp, &fp);
    if (rc != CLI_CONTINUE) return rc;
    p->shard_rank = lp.shard_rank;
    p->shard_count = lp.shard_count;
    p->grad_sync = fp.grad_sync;
    p->grad_begin = fp.grad_begin;
    p->grad_sync_user = fp.grad_sync_user;
    return CLI_CONTINUE;
}

int cmd_compare(cli_opts *o) {
    const char *cmd = o->cmd;
    const char *model = o->model ? o->model : "cnn-small";
    if (!cli_is_zoo(model))
        return cli_usage_error(cmd, "--model %s: compare takes a zoo model (mlp, lenet, "
                                    "cnn-small, resnet-mini, resnet18, resnet34, resnet50)", model);
    int rc = cli_check_strategy_epochs(o, o->from ? "scratch,probe,finetune,fastai,lora" : "scratch");
    if (rc != CLI_CONTINUE) return rc;
    if (o->from && (rc = cli_check_input(cmd, "--pretrained", o->from)) != CLI_CONTINUE) return rc;
    if (o->teacher && (rc = cli_check_input(cmd, "--teacher", o->teacher)) != CLI_CONTINUE) return rc;
    if (o->report && (rc = cli_check_output_dir(cmd, "--report", o->report, cli_report_files)) != CLI_CONTINUE) return rc;
    if (o->work_dir && (rc = cli_check_output_dir(cmd, "--work-dir", o->work_dir, NULL)) != CLI_CONTINUE)
        return rc;
    if (o->augment) return cli_usage_error(cmd, "--augment is not used by compare");
    gf_ctx *ctx = cli_context(o);
    if (!ctx) return CLI_FAILED;
    cli_data d;
    cli_sweep sw;
    memset(&sw, 0, sizeof sw);
    rc = cli_data_load(ctx, o, &d);
    if (rc != CLI_CONTINUE) goto out_ctx;
    if (d.ndim != 3 || !d.test) {
        rc = d.ndim != 3 ? cli_fail(cmd, "compare needs image data ([C, H, W] samples)")
                         : cli_fail(cmd, "%s has no test part (see --split)", d.spec);
        goto out_data;
    }
    gf_compare_params p;
    uint64_t seeds[CLI_MAX_LIST];
    rc = cli_compare_params(ctx, o, &d, model, &p, seeds, &sw,
                            o->from ? "scratch,probe,finetune,fastai,lora" : "scratch");
    if (rc != CLI_CONTINUE) goto out_data;
    if ((rc = compare_across_ranks(ctx, o, &d, &p)) != CLI_CONTINUE) goto out_data;
    sw.n = 1;
    if (o->labels) sw.n = cli_parse_i64_list(o->labels, 1, INT64_C(1) << 40, sw.labels, CLI_MAX_LIST);
    rc = cli_compare_sweep(ctx, o, &p, &d, &sw, NULL, NULL);
    if (rc != CLI_CONTINUE) goto out_data;
    if (o->report) {
        char title[1024];
        snprintf(title, sizeof title, "graft compare: %s on %s", model, d.spec);
        gf_report *r = gf_report_new(ctx, title);
        char desc[1024];
        cli_data_describe(&d, desc, sizeof desc);
        const char *kv[] = {"model", model, "pretrained", o->from ? o->from : "(none)", "data", desc};
        gf_status st = r ? gf_report_add_pairs(ctx, r, "setup", 3, kv) : GF_ERR_NOMEM;
        if (st == GF_OK) st = cli_sweep_report(ctx, r, &sw);
        if (st == GF_OK) st = gf_report_write(ctx, r, o->report);
        gf_report_free(r);
        if (st != GF_OK) {
            rc = cli_fail(cmd, "--report %s: %s", o->report, gf_ctx_error(ctx));
            goto out_data;
        }
        cli_log(o, "graft compare: report written to %s/index.html\n", o->report);
    }
    if (o->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "command", "compare");
        cJSON_AddStringToObject(root, "model", model);
        cJSON_AddStringToObject(root, "data", d.spec);
        if (o->from) cJSON_AddStringToObject(root, "pretrained", o->from);
        else cJSON_AddNullToObject(root, "pretrained");
        cJSON_AddItemToObject(root, "sweep", cli_sweep_json(ctx, &sw));
        rc = cli_json_print(root);
    } else {
        cli_sweep_print(&sw, o->details, stdout);
        rc = CLI_OK;
    }
out_data:
    cli_sweep_free(&sw);
    cli_data_free(&d);
out_ctx:
    gf_ctx_free(ctx);
    return rc;
}
