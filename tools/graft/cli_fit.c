/* The training run shared by train / finetune / distill: loaders, optimizer (with a slower trunk
 * when asked), schedule, gf_fit with progress on stderr, Ctrl-C, checkpoints and resume; and the
 * evaluation (the library's gf_evaluate_ex: loss, accuracy, macro P/R/F1, confusion matrix)
 * shared by every command, with its printing. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- history ------------------------------------------------------------------------------ */

static void hist_push(cli_history *h, const gf_epoch_stats *s) {
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 16;
        gf_epoch_stats *e = realloc(h->e, sizeof *e * (size_t)cap);
        if (!e) return;
        h->e = e;
        h->cap = cap;
    }
    h->e[h->n++] = *s;
}

cJSON *cli_history_json(const cli_history *h) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < h->n; i++) {
        const gf_epoch_stats *s = &h->e[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "epoch", s->epoch);
        cli_json_add_num(o, "train_loss", s->train_loss);
        cli_json_add_num(o, "train_acc", s->train_acc);
        cli_json_add_num(o, "val_loss", s->val_loss);
        cli_json_add_num(o, "val_acc", s->val_acc);
        cli_json_add_num(o, "lr", s->lr);
        cli_json_add_num(o, "seconds", s->seconds);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

void cli_fit_out_free(cli_fit_out *f) {
    free(f->hist.e);
    memset(f, 0, sizeof *f);
}

/* ---- callbacks ------------------------------------------------------------------------------ */

typedef struct fit_user {
    cli_progress prog;
    cli_fit_out *out;
    int epochs;
} fit_user;

static bool on_step(const gf_step_stats *s, void *user) {
    fit_user *u = user;
    cli_progress_step(&u->prog, s->epoch, u->epochs, s->batch, s->loss);
    return !cli_stop_requested();
}

static bool on_epoch(const gf_epoch_stats *s, void *user) {
    fit_user *u = user;
    hist_push(&u->out->hist, s);
    cli_progress_epoch(&u->prog, s);
    return !cli_stop_requested();
}

/* ---- optimizer and schedule ------------------------------------------------------------------ */

gf_optim *cli_make_optim(gf_ctx *ctx, const cli_opts *o, gf_module *m, const cli_fit_setup *s) {
    gf_optim_params hp = gf_optim_default_params(o->optim);
    if (o->lr > 0) hp.lr = o->lr;
    if (o->weight_decay >= 0) hp.weight_decay = o->weight_decay;
    hp.momentum = o->momentum;
    if (s->head && s->trunk_factor != 1.0) {
        gf_optim_params trunk = hp;
        trunk.lr = hp.lr * s->trunk_factor;
        char pat[160];
        snprintf(pat, sizeof pat, "%s.*", s->head);
        gf_group_spec spec = {"head", pat, &hp};
        return gf_train_optim_new(ctx, m, &trunk, &spec, 1);
    }
    return gf_train_optim_new(ctx, m, &hp, NULL, 0);
}

gf_sched *cli_make_sched(gf_ctx *ctx, const cli_opts *o, gf_optim *opt, int64_t batches) {
    gf_sched_params sp;
    if (strcmp(o->sched, "cosine") == 0) {
        sp = gf_sched_default_params(GF_SCHED_COSINE);
        sp.t_max = o->epochs - o->warmup > 0 ? o->epochs - o->warmup : 1;
    } else if (strcmp(o->sched, "step") == 0) {
        sp = gf_sched_default_params(GF_SCHED_STEP);
        sp.step_size = o->epochs / 3 > 0 ? o->epochs / 3 : 1;
    } else if (strcmp(o->sched, "onecycle") == 0) {
        sp = gf_sched_default_params(GF_SCHED_ONECYCLE);
        int ng = gf_optim_n_groups(opt);
        double *mx = malloc(sizeof *mx * (size_t)ng);
        if (!mx) return NULL;
        for (int g = 0; g < ng; g++) mx[g] = gf_optim_group_lr(opt, g);
        sp.max_lrs = mx;
        sp.total_steps = (int64_t)o->epochs * batches;
        gf_sched *s = gf_sched_new(ctx, opt, &sp);
        free(mx);
        return s;
    } else if (o->warmup > 0) {
        sp = gf_sched_default_params(GF_SCHED_LINEAR);
        sp.start_factor = 0.1;
        sp.total_iters = o->warmup;
        return gf_sched_new(ctx, opt, &sp);
    } else {
        return NULL;
    }
    if (o->warmup > 0) return gf_sched_warmup(ctx, opt, o->warmup, 0.1, &sp);
    return gf_sched_new(ctx, opt, &sp);
}

/* ---- the run -------------------------------------------------------------------------------------- */

int cli_fit(gf_ctx *ctx, const cli_opts *o, gf_module *m, cli_data *d, const cli_fit_setup *s,
            cli_fit_out *out) {
    const char *cmd = o->cmd;
    memset(out, 0, sizeof *out);
    if (strcmp(o->sched, "onecycle") == 0 && o->warmup > 0)
        return cli_usage_error(cmd, "--warmup does not combine with --sched onecycle (it warms up "
                                    "by itself)");
    if (o->momentum > 0 && o->optim != GF_OPTIM_SGD && o->optim != GF_OPTIM_RMSPROP)
        return cli_usage_error(cmd, "--momentum applies to --optim sgd and rmsprop");
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = o->batch;
    lp.seed = o->seed;
    lp.transform = d->train_tf;
    gf_fit_params fp = s->base ? *s->base : gf_fit_default_params();
    /* under mpirun: checks, rank 0's weights, this rank's share of every batch */
    int rc = cli_dist_prepare(ctx, o, m, d, &lp, &fp);
    if (rc != CLI_CONTINUE) return rc;
    gf_loader *train = gf_loader_new(ctx, d->train, &lp), *val = NULL;
    lp.shuffle = false;
    lp.transform = d->eval_tf;
    lp.shard_rank = lp.shard_count = 0; /* every rank validates on all of it */
    if (train && d->val) val = gf_loader_new(ctx, d->val, &lp);
    gf_optim *opt = train ? cli_make_optim(ctx, o, m, s) : NULL;
    gf_sched *sched = NULL;
    rc = CLI_FAILED;
    if (!opt) {
        cli_fail_ctx(cmd, ctx);
        goto done;
    }
    sched = cli_make_sched(ctx, o, opt, gf_loader_batches_per_epoch(train));
    if (gf_ctx_status(ctx) != GF_OK) {
        cli_fail_ctx(cmd, ctx);
        goto done;
    }
    out->total = gf_module_param_count(m, false);
    out->trainable = gf_module_param_count(m, true);

    fp.epochs = o->epochs;
    fp.clip_norm = o->clip_norm;
    fp.patience = o->patience;
    fp.restore_best = o->keep_best;
    fit_user fu;
    memset(&fu, 0, sizeof fu);
    fu.out = out;
    fu.epochs = o->epochs;
    cli_progress_init(&fu.prog, o, o->batch, gf_loader_batches_per_epoch(train));
    fp.on_step = on_step;
    fp.on_epoch = on_epoch;
    fp.user = &fu;
    const char *ckdir = o->checkpoint_dir;
    char resume[4352] = "";
    if (o->resume) {
        if (cli_is_dir(o->resume)) {
            if (gf_ckpt_latest(ctx, o->resume, "ckpt", resume, sizeof resume) != GF_OK) {
                cli_fail_ctx(cmd, ctx);
                goto done;
            }
            if (!ckdir) ckdir = o->resume;
        } else {
            snprintf(resume, sizeof resume, "%s", o->resume);
        }
        fp.resume_from = resume;
        cli_log(o, "graft %s: resuming from %s\n", cmd, resume);
    }
    if (ckdir && cli_dist_root()) {
        fp.checkpoint.dir = ckdir;
        fp.checkpoint.prefix = "ckpt";
        fp.checkpoint.every_epoch = true;
        fp.checkpoint.every_steps = o->checkpoint_every;
        fp.checkpoint.keep_last = 3;
    }
    double t0 = cli_now();
    cli_install_sigint();
    gf_status st = gf_fit(ctx, m, &s->loss, opt, sched, train, val, &fp, &out->res);
    out->seconds = cli_now() - t0;
    out->interrupted = cli_stop_requested();
    if (st != GF_OK) {
        if (fu.prog.tty) fprintf(stderr, "\n");
        cli_dist_fit_failed(ctx, cmd);
        goto done;
    }
    if ((rc = cli_dist_after(ctx, o, m, out->seconds)) != CLI_CONTINUE) goto done;
    rc = CLI_FAILED;
    if (ckdir && out->res.checkpoints > 0 &&
        gf_ckpt_latest(ctx, ckdir, "ckpt", out->checkpoint, sizeof out->checkpoint) != GF_OK) {
        out->checkpoint[0] = '\0';
        gf_ctx_clear_error(ctx);
    }
    if (out->interrupted) {
        if (out->checkpoint[0])
            cli_log(o, "graft %s: interrupted; checkpoint %s (continue with --resume %s)\n", cmd,
                    out->checkpoint, ckdir);
        else
            cli_log(o, "graft %s: interrupted (no checkpoint: --checkpoint-dir was not given)\n",
                    cmd);
    }
    if (out->res.stopped_early && !o->quiet)
        fprintf(stderr, "graft %s: stopped early after epoch %d (no improvement for %d epochs)\n",
                cmd, out->res.epochs_run, o->patience);
    if (out->res.restored_best && !o->quiet)
        fprintf(stderr, "graft %s: kept the weights of epoch %d\n", cmd, out->res.best_epoch);
    gf_module_train(m, false);
    rc = CLI_CONTINUE;
done:
    gf_sched_free(sched);
    gf_optim_free(opt);
    gf_loader_free(train);
    gf_loader_free(val);
    return rc;
}

/* ---- evaluation ------------------------------------------------------------------------------ */

void cli_eval_free(cli_eval *ev) {
    gf_confusion_free(ev->cm);
    memset(ev, 0, sizeof *ev);
}

int cli_evaluate(gf_ctx *ctx, const char *cmd, gf_module *m, gf_ds *ds, const gf_tf *tf,
                 int64_t batch, cli_eval *ev) {
    return cli_evaluate_preds(ctx, cmd, m, ds, tf, batch, ev, NULL, NULL);
}

int cli_evaluate_preds(gf_ctx *ctx, const char *cmd, gf_module *m, gf_ds *ds, const gf_tf *tf,
                       int64_t batch, cli_eval *ev, gf_eval_pred_fn on_pred, void *user) {
    memset(ev, 0, sizeof *ev);
    ev->ctx = ctx;
    ev->loss = ev->accuracy = ev->precision = ev->recall = ev->f1 = NAN;
    const int k = gf_ds_n_classes(ds);
    if (k < 1) return cli_fail(cmd, "evaluation: the data has no class labels");
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = batch > 256 ? batch : 256;
    lp.shuffle = false;
    lp.transform = tf;
    gf_loader *ld = gf_loader_new(ctx, ds, &lp);
    if (!ld) return cli_fail_ctx(cmd, ctx);
    gf_eval_params ep = gf_eval_default_params();
    ep.n_classes = k;
    ep.loss_reduction = GF_REDUCE_SUM; /* the summed cross entropy over the examples */
    ep.on_pred = on_pred;
    ep.pred_user = user;
    gf_eval_result r;
    gf_status st = gf_evaluate_ex(ctx, m, NULL, ld, &ep, &r);
    gf_loader_free(ld);
    if (st == GF_OK && !r.confusion)
        st = gf_ctx_set_error(ctx, GF_ERR_STATE, "no confusion matrix (no examples?)");
    if (st != GF_OK) {
        gf_eval_result_free(&r);
        return cli_fail(cmd, "evaluation: %s", gf_ctx_error(ctx));
    }
    ev->n = r.count;
    ev->tokens = gf_ds_label_steps(ds) > 0 ? r.scored : 0;
    ev->loss = r.loss;
    ev->accuracy = r.accuracy;
    ev->precision = r.macro_precision;
    ev->recall = r.macro_recall;
    ev->f1 = r.macro_f1;
    ev->cm = r.confusion; /* taken from the result */
    r.confusion = NULL;
    gf_eval_result_free(&r);
    return CLI_CONTINUE;
}

void cli_eval_print(const cli_eval *ev, const char *const *names, FILE *f) {
    int k = gf_confusion_classes(ev->cm);
    fprintf(f, "examples         %lld\n", (long long)ev->n);
    if (ev->tokens > 0) /* per-step labels: loss and accuracy are per token, padding left out */
        fprintf(f, "tokens           %lld (loss, accuracy and the report count tokens)\n",
                (long long)ev->tokens);
    fprintf(f, "loss             %.4f\n", ev->loss);
    fprintf(f, "accuracy         %.4f\n", ev->accuracy);
    fprintf(f, "macro precision  %.4f\n", ev->precision);
    fprintf(f, "macro recall     %.4f\n", ev->recall);
    fprintf(f, "macro F1         %.4f\n\n", ev->f1);
    size_t need = gf_confusion_report(ev->cm, names, 4, NULL, 0);
    char *rep = malloc(need + 1);
    if (rep) {
        gf_confusion_report(ev->cm, names, 4, rep, need + 1);
        fputs(rep, f);
        free(rep);
    }
    /* the confusion matrix: rows true, columns predicted (class indices; names at the left) */
    const int64_t *c = gf_confusion_counts(ev->cm);
    int64_t mx = 1;
    for (int i = 0; i < k * k; i++)
        if (c[i] > mx) mx = c[i];
    int w = 1;
    for (int64_t v = mx; v >= 10; v /= 10) w++;
    if (w < 3) w = 3;
    int nw = 5;
    for (int i = 0; i < k; i++) {
        int l = names && names[i] ? (int)strlen(names[i]) : 3;
        if (l > nw) nw = l;
    }
    if (nw > 24) nw = 24;
    fprintf(f, "\nconfusion matrix (rows: true class, columns: predicted class)\n%*s ", nw + 5, "");
    for (int j = 0; j < k; j++) fprintf(f, " %*d", w, j);
    fputc('\n', f);
    for (int i = 0; i < k; i++) {
        fprintf(f, "%3d %-*.*s |", i, nw, nw, names && names[i] ? names[i] : "");
        for (int j = 0; j < k; j++) fprintf(f, " %*lld", w, (long long)c[i * k + j]);
        fputc('\n', f);
    }
}

cJSON *cli_eval_json(const cli_eval *ev, const char *const *names) {
    int k = gf_confusion_classes(ev->cm);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "examples", (double)ev->n);
    if (ev->tokens > 0) cJSON_AddNumberToObject(o, "tokens", (double)ev->tokens);
    cli_json_add_num(o, "loss", ev->loss);
    cli_json_add_num(o, "accuracy", ev->accuracy);
    cli_json_add_num(o, "macro_precision", ev->precision);
    cli_json_add_num(o, "macro_recall", ev->recall);
    cli_json_add_num(o, "macro_f1", ev->f1);
    cJSON_AddItemToObject(o, "classes", cli_json_names(k, names));
    double *p = malloc(sizeof(double) * 3 * (size_t)k);
    int64_t *sup = malloc(sizeof(int64_t) * (size_t)k);
    if (p && sup) {
        gf_prf_params pp = gf_prf_default_params();
        pp.all_labels = true;
        gf_confusion_prf(ev->ctx, ev->cm, &pp, p, p + k, p + 2 * k, sup);
        cJSON *pc = cJSON_AddArrayToObject(o, "per_class");
        for (int i = 0; i < k; i++) {
            cJSON *e = cJSON_CreateObject();
            char num[16];
            snprintf(num, sizeof num, "%d", i);
            cJSON_AddStringToObject(e, "name", names && names[i] ? names[i] : num);
            cli_json_add_num(e, "precision", p[i]);
            cli_json_add_num(e, "recall", p[k + i]);
            cli_json_add_num(e, "f1", p[2 * k + i]);
            cJSON_AddNumberToObject(e, "support", (double)sup[i]);
            cJSON_AddItemToArray(pc, e);
        }
    }
    free(p);
    free(sup);
    const int64_t *c = gf_confusion_counts(ev->cm);
    cJSON *cm = cJSON_AddArrayToObject(o, "confusion");
    for (int i = 0; i < k; i++) {
        cJSON *row = cJSON_CreateArray();
        for (int j = 0; j < k; j++) cJSON_AddItemToArray(row, cJSON_CreateNumber((double)c[i * k + j]));
        cJSON_AddItemToArray(cm, row);
    }
    return o;
}
