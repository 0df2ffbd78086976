/* graft predict: the top-k classes of single images or CSV feature rows with their
 * probabilities, read and normalised the way the model's training data was. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_image(const char *path) {
    static const char *const ext[] = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pnm",
                                      ".gif", ".tga", ".psd", ".hdr"};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t e = strlen(ext[i]);
        if (n > e && strcasecmp(path + n - e, ext[i]) == 0) return true;
    }
    return false;
}

/* Rows of a CSV: rows x F floats appended to *x (realloc'd). A header naming the model's
 * features selects and orders columns by name; otherwise each row must hold exactly F numbers.
 * Returns the row count or -1 after printing. line_of[i] gets each row's line number. */
static int64_t read_csv_rows(const cli_opts *o, const char *path, const cli_meta *meta, int64_t F,
                             float **x, int64_t *n_x, int64_t **line_of) {
    size_t len;
    char *text = cli_read_file(path, (size_t)o->limits.data_bytes, &len);
    if (!text && errno == EFBIG)
        return cli_fail(o->cmd, "%s: more than %lld bytes (limit data-bytes)", path,
                        (long long)o->limits.data_bytes), -1;
    if (!text) return cli_fail(o->cmd, "%s: %s", path, strerror(errno)), -1;
    int *col = NULL; /* col[j]: the field holding feature j */
    int64_t rows = 0, line = 0;
    int n_fields_hdr = -1;
    char *save = NULL;
    for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t l = strlen(ln);
        if (l && ln[l - 1] == '\r') ln[--l] = '\0';
        bool blank = true;
        for (char *p = ln; *p; p++) blank &= isspace((unsigned char)*p) != 0;
        if (blank) continue;
        /* split into fields */
        char *fields[4096];
        int nf = 0;
        for (char *p = ln;; ) {
            if (nf == 4096) break;
            fields[nf++] = p;
            char *c = strchr(p, ',');
            if (!c) break;
            *c = '\0';
            p = c + 1;
        }
        bool numeric = true;
        double vals[4096];
        for (int i = 0; i < nf; i++) {
            char *end;
            errno = 0;
            vals[i] = strtod(fields[i], &end);
            while (*end && isspace((unsigned char)*end)) end++;
            if (end == fields[i] || *end || errno || !isfinite(vals[i])) numeric = false;
        }
        if (!numeric && rows == 0 && n_fields_hdr < 0) { /* the header */
            n_fields_hdr = nf;
            if (meta->feature_names && meta->n_features == F) {
                col = malloc(sizeof *col * (size_t)F);
                for (int64_t j = 0; col && j < F; j++) {
                    col[j] = -1;
                    for (int i = 0; i < nf; i++) {
                        char *s = fields[i];
                        while (isspace((unsigned char)*s) || *s == '"') s++;
                        size_t sl = strlen(s);
                        while (sl && (isspace((unsigned char)s[sl - 1]) || s[sl - 1] == '"')) sl--;
                        if (sl == strlen(meta->feature_names[j]) &&
                            strncmp(s, meta->feature_names[j], sl) == 0)
                            col[j] = i;
                    }
                    if (col[j] < 0) {
                        cli_fail(o->cmd, "%s: the header has no column \"%s\" (the model's "
                                         "features are the training data's columns)",
                                 path, meta->feature_names[j]);
                        free(col);
                        free(text);
                        return -1;
                    }
                }
            }
            continue;
        }
        if (!numeric) {
            cli_fail(o->cmd, "%s line %lld: a field is not a number", path, (long long)line);
            free(col);
            free(text);
            return -1;
        }
        if (!col && nf != F) {
            cli_fail(o->cmd, "%s line %lld: %d values, the model takes %lld features", path,
                     (long long)line, nf, (long long)F);
            free(col);
            free(text);
            return -1;
        }
        if (col && nf != n_fields_hdr) {
            cli_fail(o->cmd, "%s line %lld: %d fields but the header has %d", path,
                     (long long)line, nf, n_fields_hdr);
            free(col);
            free(text);
            return -1;
        }
        float *nx = realloc(*x, sizeof(float) * (size_t)((*n_x + 1) * F));
        int64_t *nl = realloc(*line_of, sizeof(int64_t) * (size_t)(*n_x + 1));
        if (nx) *x = nx;
        if (nl) *line_of = nl;
        if (!nx || !nl) {
            cli_fail(o->cmd, "out of memory");
            free(col);
            free(text);
            return -1;
        }
        for (int64_t j = 0; j < F; j++) (*x)[*n_x * F + j] = (float)vals[col ? col[j] : j];
        (*line_of)[*n_x] = line;
        (*n_x)++;
        rows++;
    }
    free(col);
    free(text);
    if (rows == 0) return cli_fail(o->cmd, "%s: no data rows", path), -1;
    return rows;
}

typedef struct pred_input {
    const char *path;
    int64_t line; /* csv row's line, 0 for an image */
} pred_input;

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
    cli_meta meta;
    cli_model cm = {0};
    float *x = NULL;
    int64_t n_x = 0, *lines = NULL;
    pred_input *who = NULL;
    gf_tf *tf = NULL;
    rc = cli_meta_open(ctx, o, o->weights, &meta);
    if (rc != CLI_CONTINUE) goto out_ctx;
    rc = CLI_FAILED;
    if (!meta.in_ndim) {
        cli_fail(o->cmd, "%s does not record its input shape (graft.input): use weights written "
                         "by graft train / finetune / distill", o->weights);
        goto out_meta;
    }
    int64_t F = 1;
    for (int i = 0; i < meta.in_ndim; i++) F *= meta.in_shape[i];
    rc = cli_model_build(ctx, o, o->model, &meta, meta.in_ndim, meta.in_shape, meta.n_classes,
                         NULL, &cm);
    if (rc != CLI_CONTINUE) goto out_meta;
    rc = cli_load_weights(ctx, o, o->weights, o->base, &meta, cm.m);
    if (rc != CLI_CONTINUE) goto out_model;
    rc = CLI_FAILED;
    int n_classes = meta.n_classes ? meta.n_classes : cli_model_outputs(ctx, o->cmd, cm.m, meta.in_ndim, meta.in_shape);
    if (n_classes < 1) goto out_model;

    /* read every input into x [n_x, F] */
    for (int i = 0; i < n_in; i++) {
        int64_t before = n_x;
        if (is_image(inputs[i])) {
            if (meta.in_ndim != 3) {
                cli_fail(o->cmd, "%s is an image but the model takes rows of %lld features",
                         inputs[i], (long long)F);
                goto out_model;
            }
            gf_images_params ip = gf_images_default_params();
            ip.channels = (int)meta.in_shape[0];
            int h = (int)meta.in_shape[1], w = (int)meta.in_shape[2];
            ip.resize = h < w ? h : w;
            ip.crop_h = h;
            ip.crop_w = w;
            if (o->max_image_pixels) ip.max_pixels = o->max_image_pixels;
            int gh, gw;
            uint8_t *px = gf_images_read(ctx, inputs[i], &ip, &gh, &gw);
            if (!px) {
                cli_fail(o->cmd, "%s", gf_ctx_error(ctx));
                goto out_model;
            }
            float *nx = realloc(x, sizeof(float) * (size_t)((n_x + 1) * F));
            if (!nx) {
                free(px);
                cli_fail(o->cmd, "out of memory");
                goto out_model;
            }
            x = nx;
            for (int64_t j = 0; j < F; j++) x[n_x * F + j] = (float)px[j] / 255.0f;
            free(px);
            n_x++;
            int64_t *nl = realloc(lines, sizeof(int64_t) * (size_t)n_x);
            if (!nl) goto out_model;
            lines = nl;
            lines[n_x - 1] = 0;
        } else {
            if (meta.in_ndim != 1) {
                char sh[64];
                gf_dims_str(meta.in_ndim, meta.in_shape, sh, sizeof sh);
                cli_fail(o->cmd, "%s: the model takes images %s; give an image file (.png, .jpg, "
                                 ".bmp, .pgm, ...)", inputs[i], sh);
                goto out_model;
            }
            if (read_csv_rows(o, inputs[i], &meta, F, &x, &n_x, &lines) < 0) goto out_model;
        }
        pred_input *nw = realloc(who, sizeof *who * (size_t)n_x);
        if (!nw) goto out_model;
        who = nw;
        for (int64_t r = before; r < n_x; r++) who[r] = (pred_input){inputs[i], lines[r]};
    }

    /* run the model in batches; softmax; top-k */
    tf = cli_meta_tf(ctx, &meta);
    int k = o->top_k < n_classes ? o->top_k : n_classes;
    cJSON *root = o->json ? cJSON_CreateObject() : NULL, *preds = NULL;
    if (root) {
        cJSON_AddStringToObject(root, "command", "predict");
        cJSON_AddStringToObject(root, "weights", o->weights);
        cJSON_AddStringToObject(root, "model", cm.name);
        preds = cJSON_AddArrayToObject(root, "predictions");
    }
    gf_ctx_set_grad_enabled(ctx, false);
    gf_module_train(cm.m, false);
    float *prob = malloc(sizeof(float) * (size_t)n_classes);
    int *order = malloc(sizeof(int) * (size_t)n_classes);
    bool ok = prob && order;
    for (int64_t r = 0; ok && r < n_x; r++) {
        int64_t shape[GF_MAX_DIMS];
        shape[0] = 1;
        for (int i = 0; i < meta.in_ndim; i++) shape[i + 1] = meta.in_shape[i];
        gf_tensor *in = gf_empty(ctx, GF_F32, meta.in_ndim + 1, shape);
        if (in) memcpy(in->data, x + r * F, sizeof(float) * (size_t)F);
        if (in && tf) in = gf_tf_apply(ctx, tf, in, 0);
        gf_tensor *y = gf_module_forward(ctx, cm.m, in);
        gf_tensor *p = y ? gf_softmax(ctx, y, 1) : NULL;
        if (!p || p->numel != n_classes) {
            ok = false;
            if (gf_ctx_status(ctx) == GF_OK)
                gf_ctx_set_error(ctx, GF_ERR_SHAPE, "the model gives %lld outputs for %d classes",
                                 (long long)(p ? p->numel : 0), n_classes);
            break;
        }
        gf_copy_out(p, prob);
        gf_ctx_reset(ctx);
        for (int c = 0; c < n_classes; c++) order[c] = c;
        for (int a = 0; a < k; a++) /* partial selection sort: k largest, ties to lower index */
            for (int b = a + 1; b < n_classes; b++)
                if (prob[order[b]] > prob[order[a]]) {
                    int t = order[a];
                    order[a] = order[b];
                    order[b] = t;
                }
        char num[16];
        if (root) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "input", who[r].path);
            if (who[r].line) cJSON_AddNumberToObject(e, "line", (double)who[r].line);
            else cJSON_AddNullToObject(e, "line");
            cJSON *top = cJSON_AddArrayToObject(e, "top");
            for (int a = 0; a < k; a++) {
                cJSON *t = cJSON_CreateObject();
                snprintf(num, sizeof num, "%d", order[a]);
                cJSON_AddStringToObject(t, "class", meta.class_names ? meta.class_names[order[a]] : num);
                cJSON_AddNumberToObject(t, "index", order[a]);
                cJSON_AddNumberToObject(t, "probability", prob[order[a]]);
                cJSON_AddItemToArray(top, t);
            }
            cJSON_AddItemToArray(preds, e);
        } else {
            if (who[r].line) printf("%s line %lld\n", who[r].path, (long long)who[r].line);
            else printf("%s\n", who[r].path);
            for (int a = 0; a < k; a++) {
                snprintf(num, sizeof num, "%d", order[a]);
                printf("  %d. %-24s %.4f\n", a + 1,
                       meta.class_names ? meta.class_names[order[a]] : num, prob[order[a]]);
            }
        }
    }
    free(prob);
    free(order);
    if (!ok) {
        cJSON_Delete(root);
        rc = cli_fail(o->cmd, "%s", gf_ctx_error(ctx)[0] ? gf_ctx_error(ctx) : "out of memory");
        goto out_model;
    }
    rc = root ? cli_json_print(root) : CLI_OK;
out_model:
    gf_tf_free(tf);
    free(x);
    free(lines);
    free(who);
    cli_model_free(&cm);
out_meta:
    cli_meta_free(&meta);
out_ctx:
    gf_ctx_free(ctx);
    return rc;
}
