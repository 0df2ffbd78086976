/* graft predict: the top-k classes of single images or CSV feature rows with their
 * probabilities, read and normalised the way the model's training data was (the library's
 * bundle: gf_bundle_read, gf_bundle_predict). */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct pred_input {
    const char *path;
    int64_t line; /* csv row's line, 0 for an image */
} pred_input;

/* Every input as rows of the model's samples, prepared by the library as the training data
 * was (gf_bundle_read): x [n, F] and who each row came from. */
typedef struct pred_rows {
    int64_t n, F;
    float *x;
    pred_input *who;
} pred_rows;

static int read_inputs(gf_ctx *ctx, const cli_opts *o, const gf_bundle *b,
                       const char *const *inputs, int n_in, pred_rows *r) {
    for (int i = 0; i < n_in; i++) {
        int64_t *lines = NULL;
        gf_tensor *t = gf_bundle_read(ctx, b, inputs[i], &lines);
        if (!t) return cli_fail_ctx(o->cmd, ctx);
        const int64_t rows = t->shape[0];
        float *nx = realloc(r->x, sizeof(float) * (size_t)((r->n + rows) * r->F));
        pred_input *nw = realloc(r->who, sizeof *nw * (size_t)(r->n + rows));
        if (nx) r->x = nx;
        if (nw) r->who = nw;
        if (nx && nw) {
            memcpy(r->x + r->n * r->F, gf_f32(t), sizeof(float) * (size_t)(rows * r->F));
            for (int64_t k = 0; k < rows; k++)
                r->who[r->n + k] = (pred_input){inputs[i], lines ? lines[k] : 0};
            r->n += rows;
        }
        free(lines);
        gf_tensor_free(t);
        if (!nx || !nw) return cli_fail(o->cmd, "out of memory");
    }
    return CLI_CONTINUE;
}

/* The k most likely classes of one row, on stdout or into preds. */
static void report_row(const gf_bundle *b, const pred_input *who, const float *prob, int n_classes,
                       int k, int *order, cJSON *preds) {
    for (int c = 0; c < n_classes; c++) order[c] = c;
    for (int a = 0; a < k; a++) /* partial selection sort: k largest, ties to lower index */
        for (int c = a + 1; c < n_classes; c++)
            if (prob[order[c]] > prob[order[a]]) {
                int t = order[a];
                order[a] = order[c];
                order[c] = t;
            }
    char num[16];
    if (preds) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "input", who->path);
        if (who->line) cJSON_AddNumberToObject(e, "line", (double)who->line);
        else cJSON_AddNullToObject(e, "line");
        cJSON *top = cJSON_AddArrayToObject(e, "top");
        for (int a = 0; a < k; a++) {
            cJSON *t = cJSON_CreateObject();
            snprintf(num, sizeof num, "%d", order[a]);
            const char *name = gf_bundle_class_name(b, order[a]);
            cJSON_AddStringToObject(t, "class", name ? name : num);
            cJSON_AddNumberToObject(t, "index", order[a]);
            cJSON_AddNumberToObject(t, "probability", prob[order[a]]);
            cJSON_AddItemToArray(top, t);
        }
        cJSON_AddItemToArray(preds, e);
        return;
    }
    if (who->line) printf("%s line %lld\n", who->path, (long long)who->line);
    else printf("%s\n", who->path);
    for (int a = 0; a < k; a++) {
        snprintf(num, sizeof num, "%d", order[a]);
        const char *name = gf_bundle_class_name(b, order[a]);
        printf("  %d. %-24s %.4f\n", a + 1, name ? name : num, prob[order[a]]);
    }
}

/* Runs the model on each row alone (batches of one give the bits they always gave) and reports
 * its top-k. */
static int predict_rows(gf_ctx *ctx, const cli_opts *o, gf_bundle *b, const pred_rows *r) {
    const gf_bundle_info *m = &b->info;
    cJSON *root = o->json ? cJSON_CreateObject() : NULL, *preds = NULL;
    if (root) {
        cJSON_AddStringToObject(root, "command", "predict");
        cJSON_AddStringToObject(root, "weights", o->weights);
        cJSON_AddStringToObject(root, "model", m->model);
        preds = cJSON_AddArrayToObject(root, "predictions");
    }
    float *prob = NULL;
    int *order = NULL;
    bool ok = true;
    for (int64_t i = 0; ok && i < r->n; i++) {
        int64_t shape[GF_MAX_DIMS];
        shape[0] = 1;
        for (int d = 0; d < m->in_ndim; d++) shape[d + 1] = m->in_shape[d];
        gf_tensor *in = gf_empty(ctx, GF_F32, m->in_ndim + 1, shape);
        if (in) memcpy(in->data, r->x + i * r->F, sizeof(float) * (size_t)r->F);
        gf_tensor *p = in ? gf_bundle_predict(ctx, b, in) : NULL;
        const int n_classes = p ? (int)p->shape[1] : 0;
        if (p && !prob) {
            prob = malloc(sizeof(float) * (size_t)n_classes);
            order = malloc(sizeof(int) * (size_t)n_classes);
        }
        if (!(ok = p && prob && order)) break;
        gf_copy_out(p, prob);
        gf_ctx_reset(ctx);
        report_row(b, &r->who[i], prob, n_classes, o->top_k < n_classes ? o->top_k : n_classes,
                   order, preds);
    }
    free(prob);
    free(order);
    if (!ok) {
        cJSON_Delete(root);
        return cli_fail(o->cmd, "%s", gf_ctx_error(ctx)[0] ? gf_ctx_error(ctx) : "out of memory");
    }
    return root ? cli_json_print(root) : CLI_OK;
}

int cmd_predict(cli_opts *o) {
    if (!o->weights) return cli_usage_error(o->cmd, "--weights is required");
    const char *inputs[2 * CLI_MAX_LIST];
    int n_in = 0;
    for (int i = 0; i < o->n_input; i++) inputs[n_in++] = o->input[i];
    for (int i = 0; i < o->n_args; i++) inputs[n_in++] = o->args[i];
    if (n_in == 0) return cli_usage_error(o->cmd, "no input: give --input FILE (an image or a CSV)");
    int rc = cli_check_input(o->cmd, "--weights", o->weights);
    for (int i = 0; rc == CLI_CONTINUE && i < n_in; i++) rc = cli_check_input(o->cmd, "--input", inputs[i]);
    if (rc == CLI_CONTINUE && o->base) rc = cli_check_input(o->cmd, "--base", o->base);
    if (rc == CLI_CONTINUE) rc = cli_check_model_arg(o->cmd, "--model", o->model);
    if (rc != CLI_CONTINUE) return rc;
    gf_ctx *ctx = cli_context(o);
    if (!ctx) return CLI_FAILED;
    gf_bundle_info meta;
    cli_model cm = {0};
    pred_rows rows = {0, 0, NULL, NULL};
    rc = cli_meta_open(ctx, o, o->weights, &meta);
    if (rc != CLI_CONTINUE) goto out_ctx;
    if (!meta.in_ndim) {
        rc = cli_fail(o->cmd, "%s does not record its input shape (graft.input): use weights "
                              "written by graft train / finetune / distill", o->weights);
        goto out_meta;
    }
    rc = cli_model_build(ctx, o, o->model, &meta, NULL, meta.n_classes, &cm);
    if (rc == CLI_CONTINUE) rc = cli_load_weights(ctx, o, o->weights, o->base, &meta, &cm);
    if (rc != CLI_CONTINUE) goto out_model;
    rows.F = 1;
    for (int i = 0; i < meta.in_ndim; i++) rows.F *= meta.in_shape[i];
    rc = read_inputs(ctx, o, cm.b, inputs, n_in, &rows);
    if (rc == CLI_CONTINUE) rc = predict_rows(ctx, o, cm.b, &rows);
out_model:
    free(rows.x);
    free(rows.who);
    cli_model_free(&cm);
out_meta:
    gf_bundle_info_free(&meta);
out_ctx:
    gf_ctx_free(ctx);
    return rc;
}
