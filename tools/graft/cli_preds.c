/* eval's per-example predictions (gf_evaluate_ex's on_pred): --predictions FILE.csv, the
 * misclassified count and the most confidently wrong examples (fastai's top losses) in the text,
 * the JSON and the --report page. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "io/io_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/images.h"
#include "graft/report.h"

gf_status cli_report_eval(gf_ctx *ctx, gf_report *r, const char *part, const cli_eval *ev,
                          const char *const *names);

void cli_preds_add(const gf_eval_pred *p, void *user) {
    cli_preds *c = user;
    if (c->oom) return;
    if (c->n == c->cap) {
        int64_t cap = c->cap ? 2 * c->cap : 1024;
        gf_eval_pred *q = realloc(c->p, sizeof *q * (size_t)cap);
        if (!q) {
            c->oom = true;
            return;
        }
        c->p = q;
        c->cap = cap;
    }
    c->p[c->n++] = *p;
}

void cli_preds_free(cli_preds *c) {
    free(c->p);
    memset(c, 0, sizeof *c);
}

int64_t cli_preds_wrong(const cli_preds *c, int64_t *top, int cap, int *n_top) {
    int64_t wrong = 0;
    int k = 0;
    for (int64_t i = 0; i < c->n; i++) {
        const gf_eval_pred *p = &c->p[i];
        if (p->pred == p->label) continue;
        wrong++;
        /* insertion into the sorted top list (most confident first; ties: earlier first) */
        int at = k;
        while (at > 0 && c->p[top[at - 1]].score < p->score) at--;
        if (at >= cap) continue;
        if (k < cap) k++;
        memmove(top + at + 1, top + at, sizeof *top * (size_t)(k - 1 - at));
        top[at] = i;
    }
    *n_top = k;
    return wrong;
}

const char *cli_preds_source(const gf_ds *ds, const char *kind, int64_t index, char *buf,
                             size_t cap) {
    const char *path = gf_images_path(ds, index);
    if (path) return path;
    int64_t src = gf_ds_source_index(ds, index);
    if (strcmp(kind, "csv") == 0) snprintf(buf, cap, "row %lld", (long long)src + 1);
    else snprintf(buf, cap, "example %lld", (long long)src);
    return buf;
}

static const char *class_of(const cli_data *d, int64_t k, char *buf, size_t cap) {
    if (k >= 0 && k < d->n_classes && d->class_names) return d->class_names[k];
    snprintf(buf, cap, "%lld", (long long)k);
    return buf;
}

/* A CSV field, quoted when it holds a separator, a quote or a line end (RFC 4180). */
void cli_csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

bool cli_write_csv_text(int fd, void *arg) {
    const cli_csv_text *t = arg;
    return gf_write_all(fd, t->buf, t->len);
}

int cli_preds_write_csv(gf_ctx *ctx, const cli_opts *o, const cli_data *d, const gf_ds *ds,
                        const cli_preds *c) {
    if (c->oom) return cli_fail(o->cmd, "out of memory collecting the predictions");
    cli_csv_text t = {NULL, 0};
    FILE *f = open_memstream(&t.buf, &t.len);
    if (!f) return cli_fail(o->cmd, "out of memory");
    const bool images = strcmp(d->kind, "images") == 0, csv = strcmp(d->kind, "csv") == 0;
    fprintf(f, "index,%s,true_class,predicted_class,probability,correct\n",
            images ? "path" : csv ? "row" : "source_index");
    char a[32], b[32];
    for (int64_t i = 0; i < c->n; i++) {
        const gf_eval_pred *p = &c->p[i];
        fprintf(f, "%lld,", (long long)p->index);
        const char *path = images ? gf_images_path(ds, p->index) : NULL;
        if (path) cli_csv_field(f, path);
        else fprintf(f, "%lld", (long long)gf_ds_source_index(ds, p->index) + (csv ? 1 : 0));
        fputc(',', f);
        cli_csv_field(f, class_of(d, p->label, a, sizeof a));
        fputc(',', f);
        cli_csv_field(f, class_of(d, p->pred, b, sizeof b));
        fprintf(f, ",%.6f,%d\n", (double)p->score, p->pred == p->label);
    }
    bool ok = fclose(f) == 0 && t.buf;
    gf_status st = ok ? gf_atomic_write(ctx, o->predictions, cli_write_csv_text, &t) : GF_ERR_NOMEM;
    free(t.buf);
    if (st != GF_OK)
        return ok ? cli_fail(o->cmd, "writing %s: %s", o->predictions, gf_ctx_error(ctx))
                  : cli_fail(o->cmd, "out of memory");
    return CLI_CONTINUE;
}

enum { TOP_WRONG = 10 };

void cli_preds_print_wrong(const cli_data *d, const gf_ds *ds, const cli_preds *c, FILE *f) {
    int64_t top[TOP_WRONG];
    int k;
    if (gf_ds_label_steps(ds) > 0) return; /* tokens, not examples: the report has them */
    int64_t wrong = cli_preds_wrong(c, top, TOP_WRONG, &k);
    fprintf(f, "\nmisclassified    %lld of %lld\n", (long long)wrong, (long long)c->n);
    if (k == 0) return;
    fprintf(f, "most confidently wrong (true -> predicted, probability):\n");
    char src[64], a[32], b[32];
    for (int i = 0; i < k; i++) {
        const gf_eval_pred *p = &c->p[top[i]];
        fprintf(f, "  %-32s %s -> %s  %.4f\n", cli_preds_source(ds, d->kind, p->index, src, sizeof src),
                class_of(d, p->label, a, sizeof a), class_of(d, p->pred, b, sizeof b),
                (double)p->score);
    }
}

cJSON *cli_preds_wrong_json(const cli_data *d, const gf_ds *ds, const cli_preds *c) {
    int64_t top[TOP_WRONG];
    int k;
    if (gf_ds_label_steps(ds) > 0) return cJSON_CreateObject(); /* per token: no examples */
    int64_t wrong = cli_preds_wrong(c, top, TOP_WRONG, &k);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "misclassified", (double)wrong);
    cJSON *a = cJSON_AddArrayToObject(o, "top_wrong");
    char src[64], x[32], y[32];
    for (int i = 0; i < k; i++) {
        const gf_eval_pred *p = &c->p[top[i]];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "index", (double)p->index);
        cJSON_AddStringToObject(e, "source", cli_preds_source(ds, d->kind, p->index, src, sizeof src));
        cJSON_AddStringToObject(e, "true", class_of(d, p->label, x, sizeof x));
        cJSON_AddStringToObject(e, "predicted", class_of(d, p->pred, y, sizeof y));
        cli_json_add_num(e, "probability", p->score);
        cJSON_AddItemToArray(a, e);
    }
    return o;
}

/* Thumbnails of the top losses of image data (samples [1 or 3, H, W] as read, before
 * normalisation), captioned "true -> predicted (probability)". Data of other samples adds
 * nothing. */
static gf_status wrong_images(gf_ctx *ctx, gf_report *r, const cli_data *d, const gf_ds *ds,
                              const cli_preds *c, const int64_t *top, int k) {
    if (k == 0 || gf_ds_ndim(ds) != 3 || (gf_ds_shape(ds)[0] != 1 && gf_ds_shape(ds)[0] != 3))
        return GF_OK;
    const int64_t *sh = gf_ds_shape(ds), numel = gf_ds_sample_numel(ds);
    float *x = malloc(sizeof(float) * (size_t)(numel * k));
    gf_report_image im[TOP_WRONG];
    char caps[TOP_WRONG][160], err[256] = "";
    gf_status st = x ? GF_OK : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    for (int i = 0; st == GF_OK && i < k; i++) {
        const gf_eval_pred *p = &c->p[top[i]];
        char a[32], b[32], src[64];
        if (gf_ds_read(ds, &p->index, 1, x + i * numel, NULL, err, sizeof err) != GF_OK)
            st = gf_ctx_set_error(ctx, GF_ERR_IO, "%s", err);
        snprintf(caps[i], sizeof caps[i], "%s: %s -> %s (%.4f)",
                 cli_preds_source(ds, d->kind, p->index, src, sizeof src),
                 class_of(d, p->label, a, sizeof a), class_of(d, p->pred, b, sizeof b),
                 (double)p->score);
        im[i] = (gf_report_image){(int)sh[0], (int)sh[1], (int)sh[2], x + i * numel, caps[i]};
    }
    if (st == GF_OK) st = gf_report_add_images(ctx, r, "most confidently wrong: the images", k, im);
    free(x);
    return st;
}

int cli_preds_report(gf_ctx *ctx, const cli_opts *o, const cli_data *d, const gf_ds *ds,
                     const cli_eval *ev, const cli_preds *c) {
    int64_t top[TOP_WRONG];
    int k;
    int64_t wrong = cli_preds_wrong(c, top, TOP_WRONG, &k);
    char title[2048], cells[TOP_WRONG][4][160], text[128];
    const char *cellp[TOP_WRONG * 4];
    snprintf(title, sizeof title, "graft eval: %s on %s (%s part)", o->weights, d->spec, o->part);
    snprintf(text, sizeof text, "%lld of %lld examples misclassified.", (long long)wrong,
             (long long)c->n);
    for (int i = 0; i < k; i++) {
        const gf_eval_pred *p = &c->p[top[i]];
        char a[32], b[32], src[64];
        snprintf(cells[i][0], sizeof cells[i][0], "%s",
                 cli_preds_source(ds, d->kind, p->index, src, sizeof src));
        snprintf(cells[i][1], sizeof cells[i][1], "%s", class_of(d, p->label, a, sizeof a));
        snprintf(cells[i][2], sizeof cells[i][2], "%s", class_of(d, p->pred, b, sizeof b));
        snprintf(cells[i][3], sizeof cells[i][3], "%.4f", (double)p->score);
        for (int j = 0; j < 4; j++) cellp[i * 4 + j] = cells[i][j];
    }
    const char *hdr[] = {"example", "true class", "predicted", "probability"};
    gf_report *r = gf_report_new(ctx, title);
    gf_status st = r ? cli_report_eval(ctx, r, o->part, ev, (const char *const *)d->class_names)
                     : GF_ERR_NOMEM;
    if (st == GF_OK) st = gf_report_add_heading(ctx, r, "top losses");
    if (st == GF_OK) st = gf_report_add_text(ctx, r, text);
    if (st == GF_OK && k > 0)
        st = gf_report_add_table(ctx, r, "most confidently wrong", 4, hdr, k, cellp);
    if (st == GF_OK) st = wrong_images(ctx, r, d, ds, c, top, k);
    if (st == GF_OK) st = gf_report_write(ctx, r, o->report);
    gf_report_free(r);
    if (st != GF_OK) return cli_fail(o->cmd, "--report %s: %s", o->report, gf_ctx_error(ctx));
    cli_log(o, "graft eval: report written to %s/index.html\n", o->report);
    return CLI_CONTINUE;
}
