/* --report DIR for train / finetune / distill: an HTML page (graft/report.h) with the run's
 * settings, loss and accuracy curves, the evaluation table and the confusion matrix. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "graft/report.h"

static void curve(const cli_history *h, size_t offset, double *out) {
    for (int i = 0; i < h->n; i++) out[i] = *(const double *)((const char *)&h->e[i] + offset);
}

/* Loss and accuracy charts of a run's epochs. */
gf_status cli_report_curves(gf_ctx *ctx, gf_report *r, const cli_history *h) {
    if (h->n == 0) return GF_OK;
    double *v = malloc(sizeof(double) * 4 * (size_t)h->n);
    if (!v) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "report: out of memory");
    double *tl = v, *vl = v + h->n, *ta = v + 2 * h->n, *va = v + 3 * h->n;
    curve(h, offsetof(gf_epoch_stats, train_loss), tl);
    curve(h, offsetof(gf_epoch_stats, val_loss), vl);
    curve(h, offsetof(gf_epoch_stats, train_acc), ta);
    curve(h, offsetof(gf_epoch_stats, val_acc), va);
    gf_report_series loss[2] = {{"train loss", "loss", NULL, tl, NULL, h->n, false},
                                {"validation loss", "loss", NULL, vl, NULL, h->n, true}};
    gf_report_series acc[2] = {{"train accuracy", "acc", NULL, ta, NULL, h->n, false},
                               {"validation accuracy", "acc", NULL, va, NULL, h->n, true}};
    gf_report_axes ax = gf_report_default_axes();
    ax.title = "loss per epoch";
    ax.x_label = "epoch";
    ax.y_label = "cross-entropy";
    ax.markers = h->n < 30;
    bool has_val = false;
    for (int i = 0; i < h->n; i++) has_val |= isfinite(vl[i]);
    gf_status st = gf_report_add_line_chart(ctx, r, &ax, loss, has_val ? 2 : 1);
    ax.title = "accuracy per epoch";
    ax.y_label = "accuracy";
    ax.y_percent = true;
    if (st == GF_OK) st = gf_report_add_line_chart(ctx, r, &ax, acc, has_val ? 2 : 1);
    free(v);
    return st;
}

gf_status cli_report_eval(gf_ctx *ctx, gf_report *r, const char *part, const cli_eval *ev,
                          const char *const *names) {
    char n[32], a[32], p[32], rc[32], f1[32], l[32], title[64];
    snprintf(n, sizeof n, "%lld", (long long)ev->n);
    snprintf(l, sizeof l, "%.4f", ev->loss);
    snprintf(a, sizeof a, "%.4f", ev->accuracy);
    snprintf(p, sizeof p, "%.4f", ev->precision);
    snprintf(rc, sizeof rc, "%.4f", ev->recall);
    snprintf(f1, sizeof f1, "%.4f", ev->f1);
    const char *hdr[] = {"examples", "loss", "accuracy", "macro precision", "macro recall",
                         "macro F1"};
    const char *cells[] = {n, l, a, p, rc, f1};
    snprintf(title, sizeof title, "%s part", part);
    gf_status st = gf_report_add_table(ctx, r, title, 6, hdr, 1, cells);
    snprintf(title, sizeof title, "confusion matrix (%s part)", part);
    if (st == GF_OK)
        st = gf_report_add_confusion(ctx, r, title, gf_confusion_classes(ev->cm),
                                     gf_confusion_counts(ev->cm), names);
    return st;
}

int cli_report_run(gf_ctx *ctx, const cli_opts *o, const char *model_desc, const cli_data *d,
                   const cli_fit_out *f, const char *part, const cli_eval *ev, const char *written) {
    char title[2048], desc[1024], lr[32], batch[32], epochs[32], seed[32], threads[32], params[64];
    snprintf(title, sizeof title, "graft %s: %s on %s", o->cmd, model_desc, d->spec);
    cli_data_describe(d, desc, sizeof desc);
    snprintf(lr, sizeof lr, "%g", o->lr > 0 ? o->lr : gf_optim_default_params(o->optim).lr);
    snprintf(batch, sizeof batch, "%lld", (long long)o->batch);
    snprintf(epochs, sizeof epochs, "%d of %d (%.1f s)", f->res.epochs_run, o->epochs, f->seconds);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    snprintf(threads, sizeof threads, "%d", gf_ctx_threads(ctx));
    snprintf(params, sizeof params, "%lld (%lld trainable)", (long long)f->total,
             (long long)f->trainable);
    const char *kv[] = {"model", model_desc, "parameters", params, "data", desc,
                        "optimizer", gf_optim_kind_name(o->optim), "learning rate", lr,
                        "schedule", o->sched, "batch", batch, "epochs", epochs, "seed", seed,
                        "threads", threads, "weights", written ? written : "(not saved)"};
    gf_report *r = gf_report_new(ctx, title);
    gf_status st = r ? gf_report_add_pairs(ctx, r, "run", 11, kv) : GF_ERR_NOMEM;
    if (st == GF_OK) st = cli_report_curves(ctx, r, &f->hist);
    if (st == GF_OK && ev && ev->cm)
        st = cli_report_eval(ctx, r, part, ev, (const char *const *)d->class_names);
    if (st == GF_OK) st = gf_report_write(ctx, r, o->report);
    gf_report_free(r);
    if (st != GF_OK) return cli_fail(o->cmd, "--report %s: %s", o->report, gf_ctx_error(ctx));
    cli_log(o, "graft %s: report written to %s/index.html\n", o->cmd, o->report);
    return CLI_CONTINUE;
}
