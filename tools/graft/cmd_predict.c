/* graft predict: the top-k classes of images (files, or every image under a folder), audio
 * clips or CSV feature rows with their probabilities, read and normalised the way the model's training data
 * was (the library's bundle: gf_bundle_read, gf_bundle_predict); one line per input on stdout,
 * JSON, or a CSV file (--out) with a summary. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "io/io_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The files to read: those named, and the images under the folders named. */
typedef struct pred_files {
    int n, cap;
    char **path;  /* malloc'd copies */
    int n_dirs;   /* folders named */
} pred_files;

static bool files_push(pred_files *f, char *path) {
    if (!path) return false;
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 16;
        char **p = realloc(f->path, sizeof *p * (size_t)cap);
        if (!p) {
            free(path);
            return false;
        }
        f->path = p;
        f->cap = cap;
    }
    f->path[f->n++] = path;
    return true;
}

static void files_free(pred_files *f) {
    for (int i = 0; i < f->n; i++) free(f->path[i]);
    free(f->path);
}

/* Each input as files: a folder gives every image under it (walked like an image folder), or
 * when it holds none, every audio file. */
static int gather(gf_ctx *ctx, const cli_opts *o, const char *const *inputs, int n_in,
                  pred_files *f) {
    for (int i = 0; i < n_in; i++) {
        struct stat st;
        if (stat(inputs[i], &st) != 0)
            return cli_usage_error(o->cmd, "--input %s: %s", inputs[i], strerror(errno));
        if (!S_ISDIR(st.st_mode)) {
            if (!files_push(f, strdup(inputs[i]))) return cli_fail(o->cmd, "out of memory");
            continue;
        }
        char **paths = NULL;
        int64_t n = 0;
        gf_images_report rep;
        if (gf_images_list(ctx, inputs[i], o->follow_links, &paths, &n, &rep) != GF_OK)
            return cli_fail_ctx(o->cmd, ctx);
        if (n == 0 && gf_audio_available()) { /* no images: the audio files under it */
            free(paths);
            if (gf_audio_list(ctx, inputs[i], o->follow_links, &paths, &n, &rep) != GF_OK)
                return cli_fail_ctx(o->cmd, ctx);
        }
        if (rep.first_skipped[0])
            cli_log(o, "graft predict: note: %s: skipped %lld links or files reached twice; "
                       "first: %s\n", inputs[i],
                    (long long)(rep.links_outside + rep.links_inside + rep.links_broken +
                                rep.duplicates), rep.first_skipped);
        bool ok = n <= (int64_t)1 << 24;
        for (int64_t k = 0; k < n; k++)
            if (!ok || !files_push(f, paths[k])) {
                ok = false;
                free(paths[k]);
            }
        free(paths);
        if (!ok) return cli_fail(o->cmd, "%s: too many images, or out of memory", inputs[i]);
        if (n == 0)
            return cli_usage_error(o->cmd, "--input %s: a folder without image files (.jpg "
                                           ".jpeg .png .ppm .bmp .pgm) or audio files (.wav .flac "
                                           ".ogg), in it or below", inputs[i]);
        f->n_dirs++;
    }
    return CLI_CONTINUE;
}

typedef struct pred_input {
    const char *path;
    int64_t line; /* csv row's line, 0 for an image */
    int64_t row;  /* csv row's number in its file (1-based), 0 for an image */
} pred_input;

/* Every input as rows of the model's samples, prepared by the library as the training data
 * was (gf_bundle_read): x [n, F] and who each row came from. */
typedef struct pred_rows {
    int64_t n, F;
    float *x;
    pred_input *who;
    int64_t n_images, n_audio, n_csv_rows;
} pred_rows;

static int read_inputs(gf_ctx *ctx, const cli_opts *o, const gf_bundle *b, const pred_files *f,
                       pred_rows *r) {
    gf_csv_rows_params cp = gf_csv_rows_default_params();
    if (o->csv_header >= 0) cp.header = (gf_csv_header)o->csv_header;
    cp.skip_lines = o->skip_lines;
    if (o->delimiter) cp.delimiter = o->delimiter;
    for (int i = 0; i < f->n; i++) {
        int64_t *lines = NULL, unseen = 0;
        const bool image = gf_bundle_is_image_file(f->path[i]);
        const bool audio = !image && gf_bundle_is_audio_file(f->path[i]);
        gf_tensor *t = image       ? gf_bundle_read_image(ctx, b, f->path[i])
                       : audio     ? gf_bundle_read_audio(ctx, b, f->path[i])
                       : b->info.vocab ? gf_bundle_read_text_file(ctx, b, f->path[i], &lines)
                                       : gf_bundle_read_csv_counted(ctx, b, f->path[i], &cp,
                                                                    &lines, &unseen);
        if (!t) return cli_fail_ctx(o->cmd, ctx);
        if (unseen)
            cli_log(o, "graft %s: warning: %s: %lld text values are not among the categories the "
                       "model was trained with (encoded as all zeros)\n",
                    o->cmd, f->path[i], (long long)unseen);
        const int64_t rows = t->shape[0];
        float *nx = realloc(r->x, sizeof(float) * (size_t)((r->n + rows) * r->F));
        pred_input *nw = realloc(r->who, sizeof *nw * (size_t)(r->n + rows));
        if (nx) r->x = nx;
        if (nw) r->who = nw;
        if (nx && nw) {
            memcpy(r->x + r->n * r->F, gf_f32(t), sizeof(float) * (size_t)(rows * r->F));
            for (int64_t k = 0; k < rows; k++)
                r->who[r->n + k] = (pred_input){f->path[i], lines ? lines[k] : 0, lines ? k + 1 : 0};
            r->n += rows;
            if (image) r->n_images += rows;
            else if (audio) r->n_audio += rows;
            else r->n_csv_rows += rows;
        }
        free(lines);
        gf_tensor_free(t);
        if (!nx || !nw) return cli_fail(o->cmd, "out of memory");
    }
    return CLI_CONTINUE;
}

/* The k most likely classes of every row: top[i * k + a], p[i * k + a]. */
typedef struct pred_out {
    int k, n_classes;
    int *top;
    float *p;
} pred_out;

/* The k largest of prob into top / p (ties to the lower index). */
static void select_top(const float *prob, int n_classes, int k, int *order, int *top, float *p) {
    for (int c = 0; c < n_classes; c++) order[c] = c;
    for (int a = 0; a < k; a++) /* partial selection sort */
        for (int c = a + 1; c < n_classes; c++)
            if (prob[order[c]] > prob[order[a]]) {
                int t = order[a];
                order[a] = order[c];
                order[c] = t;
            }
    for (int a = 0; a < k; a++) {
        top[a] = order[a];
        p[a] = prob[order[a]];
    }
}

/* Runs the model on each row alone (batches of one give the bits they always gave). */
static int predict_rows(gf_ctx *ctx, const cli_opts *o, gf_bundle *b, const pred_rows *r,
                        pred_out *out) {
    const gf_bundle_info *m = &b->info;
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
        if (p && !prob) {
            out->n_classes = (int)p->shape[1];
            out->k = o->top_k < out->n_classes ? o->top_k : out->n_classes;
            prob = malloc(sizeof(float) * (size_t)out->n_classes);
            order = malloc(sizeof(int) * (size_t)out->n_classes);
            out->top = malloc(sizeof(int) * (size_t)(r->n * out->k));
            out->p = malloc(sizeof(float) * (size_t)(r->n * out->k));
        }
        if (!(ok = p && prob && order && out->top && out->p)) break;
        gf_copy_out(p, prob);
        gf_ctx_reset(ctx);
        select_top(prob, out->n_classes, out->k, order, out->top + i * out->k, out->p + i * out->k);
    }
    free(prob);
    free(order);
    if (!ok) return cli_fail(o->cmd, "%s", gf_ctx_error(ctx)[0] ? gf_ctx_error(ctx) : "out of memory");
    return CLI_CONTINUE;
}

static const char *class_name(const gf_bundle *b, int k, char *num, size_t cap) {
    const char *name = gf_bundle_class_name(b, k);
    if (name) return name;
    snprintf(num, cap, "%d", k);
    return num;
}

/* A regression target's name, as the weights record it. */
static const char *target_name(const gf_bundle *b) {
    return b->info.target_name && b->info.target_name[0] ? b->info.target_name : "prediction";
}

cJSON *cli_predict_json(const cli_opts *o, const gf_bundle *b, cJSON **preds) {
    cJSON *root = o->json ? cJSON_CreateObject() : NULL;
    *preds = NULL;
    if (root) {
        cJSON_AddStringToObject(root, "command", "predict");
        cJSON_AddStringToObject(root, "weights", o->weights);
        cJSON_AddStringToObject(root, "model", b->info.model);
        *preds = cJSON_AddArrayToObject(root, "predictions");
    }
    return root;
}

/* One line (or JSON entry) per input: the top-k classes, or a regression's predicted value. */
static int print_each(const cli_opts *o, const gf_bundle *b, const pred_rows *r,
                      const pred_out *po) {
    char num[16];
    cJSON *preds, *root = cli_predict_json(o, b, &preds);
    for (int64_t i = 0; i < r->n; i++) {
        const pred_input *who = &r->who[i];
        const int *top = po->top + i * po->k;
        const float *p = po->p + i * po->k;
        if (!root) {
            if (who->line) printf("%s line %lld\n", who->path, (long long)who->line);
            else printf("%s\n", who->path);
            if (b->info.regression) {
                printf("  %-24s %.6g\n", target_name(b), p[0]);
                continue;
            }
            for (int a = 0; a < po->k; a++)
                printf("  %d. %-24s %.4f\n", a + 1, class_name(b, top[a], num, sizeof num), p[a]);
            continue;
        }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "input", who->path);
        if (who->line) cJSON_AddNumberToObject(e, "line", (double)who->line);
        else cJSON_AddNullToObject(e, "line");
        if (b->info.regression) {
            cJSON_AddNumberToObject(e, "prediction", p[0]);
            cJSON_AddItemToArray(preds, e);
            continue;
        }
        cJSON *arr = cJSON_AddArrayToObject(e, "top");
        for (int a = 0; a < po->k; a++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "class", class_name(b, top[a], num, sizeof num));
            cJSON_AddNumberToObject(t, "index", top[a]);
            cJSON_AddNumberToObject(t, "probability", p[a]);
            cJSON_AddItemToArray(arr, t);
        }
        cJSON_AddItemToArray(preds, e);
    }
    return root ? cli_json_print(root) : CLI_OK;
}

/* The predictions as a CSV file: input, row, class, probability, then class_2, probability_2
 * ... up to the top k. */
static int write_csv(gf_ctx *ctx, const cli_opts *o, const gf_bundle *b, const pred_rows *r,
                     const pred_out *po) {
    cli_csv_text t = {NULL, 0};
    FILE *f = open_memstream(&t.buf, &t.len);
    if (!f) return cli_fail(o->cmd, "out of memory");
    char num[16];
    const bool reg = b->info.regression;
    fputs(reg ? "input,row,prediction" : "input,row,class,probability", f);
    for (int a = 1; !reg && a < po->k; a++) fprintf(f, ",class_%d,probability_%d", a + 1, a + 1);
    fputc('\n', f);
    for (int64_t i = 0; i < r->n; i++) {
        cli_csv_field(f, r->who[i].path);
        if (r->who[i].row) fprintf(f, ",%lld", (long long)r->who[i].row);
        else fputc(',', f);
        if (reg) fprintf(f, ",%.9g", po->p[i * po->k]);
        for (int a = 0; !reg && a < po->k; a++) {
            fputc(',', f);
            cli_csv_field(f, class_name(b, po->top[i * po->k + a], num, sizeof num));
            fprintf(f, ",%.6f", po->p[i * po->k + a]);
        }
        fputc('\n', f);
    }
    bool ok = fclose(f) == 0 && t.buf;
    gf_status st = ok ? gf_atomic_write(ctx, o->out, cli_write_csv_text, &t) : GF_ERR_NOMEM;
    free(t.buf);
    if (st != GF_OK) return ok ? cli_fail(o->cmd, "writing %s: %s", o->out, gf_ctx_error(ctx))
                               : cli_fail(o->cmd, "out of memory");
    return CLI_CONTINUE;
}

/* The first summary line: how many inputs of each kind. */
static void print_counts(const cli_opts *o, const pred_rows *r) {
    printf("predicted %lld inputs (%lld images, ", (long long)r->n, (long long)r->n_images);
    if (r->n_audio) printf("%lld audio clips, ", (long long)r->n_audio);
    printf("%lld CSV rows) with %s; wrote %s\n", (long long)r->n_csv_rows, o->weights, o->out);
}

/* After --out with a regression model: how many inputs, and the predictions' range. */
static int print_regression_summary(const cli_opts *o, const gf_bundle *b, const pred_rows *r,
                                    const pred_out *po) {
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (int64_t i = 0; i < r->n; i++) {
        const double v = po->p[i * po->k];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
    }
    const double mean = r->n ? sum / (double)r->n : NAN;
    if (o->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "command", "predict");
        cJSON_AddStringToObject(root, "weights", o->weights);
        cJSON_AddStringToObject(root, "model", b->info.model);
        cJSON_AddStringToObject(root, "out", o->out);
        cJSON_AddStringToObject(root, "target", target_name(b));
        cJSON_AddNumberToObject(root, "images", (double)r->n_images);
        cJSON_AddNumberToObject(root, "audio", (double)r->n_audio);
        cJSON_AddNumberToObject(root, "csv_rows", (double)r->n_csv_rows);
        cli_json_add_num(root, "mean", mean);
        cli_json_add_num(root, "min", lo);
        cli_json_add_num(root, "max", hi);
        return cli_json_print(root);
    }
    print_counts(o, r);
    printf("%s: mean %.6g, min %.6g, max %.6g\n", target_name(b), mean, lo, hi);
    return CLI_OK;
}

/* After --out: how many inputs went where, and how many of each class came out on top. */
static int print_summary(const cli_opts *o, const gf_bundle *b, const pred_rows *r,
                         const pred_out *po) {
    if (b->info.regression) return print_regression_summary(o, b, r, po);
    int64_t *count = calloc((size_t)po->n_classes, sizeof *count);
    if (!count) return cli_fail(o->cmd, "out of memory");
    for (int64_t i = 0; i < r->n; i++) count[po->top[i * po->k]]++;
    char num[16];
    if (o->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "command", "predict");
        cJSON_AddStringToObject(root, "weights", o->weights);
        cJSON_AddStringToObject(root, "model", b->info.model);
        cJSON_AddStringToObject(root, "out", o->out);
        cJSON_AddNumberToObject(root, "images", (double)r->n_images);
        cJSON_AddNumberToObject(root, "audio", (double)r->n_audio);
        cJSON_AddNumberToObject(root, "csv_rows", (double)r->n_csv_rows);
        cJSON *c = cJSON_AddObjectToObject(root, "predicted");
        for (int k = 0; k < po->n_classes; k++)
            cJSON_AddNumberToObject(c, class_name(b, k, num, sizeof num), (double)count[k]);
        free(count);
        return cli_json_print(root);
    }
    print_counts(o, r);
    printf("most likely class:\n");
    for (int k = 0; k < po->n_classes; k++)
        if (count[k]) printf("  %-24s %lld\n", class_name(b, k, num, sizeof num), (long long)count[k]);
    free(count);
    return CLI_OK;
}

/* The model of the weights (or --model); the sample shape from the file, else the spec. */
static int open_model(gf_ctx *ctx, const cli_opts *o, gf_bundle_info *meta, cli_model *cm) {
    int rc = cli_meta_open(ctx, o, o->weights, meta);
    if (rc != CLI_CONTINUE) return rc;
    if (o->task_kind && (o->task_kind == GF_DS_TASK_REGRESSION) != meta->regression)
        return cli_usage_error(o->cmd, "--task: %s was trained for %s", o->weights,
                               meta->regression ? "regression" : "classification");
    const bool spec = o->model ? !cli_is_zoo(o->model) : meta->spec != NULL;
    if (!meta->in_ndim && !spec)
        return cli_fail(o->cmd, "%s does not record its input shape (graft.input): use weights "
                                "written by graft train / finetune / distill, or give --model a "
                                "model spec with \"input\"", o->weights);
    rc = cli_model_build(ctx, o, o->model, meta, NULL, meta->n_classes, cm);
    if (rc == CLI_CONTINUE) rc = cli_load_weights(ctx, o, o->weights, o->base, meta, cm);
    return rc;
}

int cmd_predict(cli_opts *o) {
    if (!o->weights) return cli_usage_error(o->cmd, "--weights is required");
    const char *inputs[2 * CLI_MAX_LIST];
    int n_in = 0;
    for (int i = 0; i < o->n_input; i++) inputs[n_in++] = o->input[i];
    for (int i = 0; i < o->n_args; i++) inputs[n_in++] = o->args[i];
    if (n_in == 0)
        return cli_usage_error(o->cmd, "no input: give --input FILE (an image, a folder of images, "
                                       "an audio file or a CSV)");
    if (!o->stream && (o->window_s > 0 || o->background || o->hop_s != 0.1 || o->threshold != 0.5))
        return cli_usage_error(o->cmd, "--window, --hop, --threshold and --background apply to "
                                       "--stream");
    int rc = cli_check_input(o->cmd, "--weights", o->weights);
    if (rc == CLI_CONTINUE && o->base) rc = cli_check_input(o->cmd, "--base", o->base);
    if (rc == CLI_CONTINUE) rc = cli_check_model_arg(o->cmd, "--model", o->model);
    if (rc == CLI_CONTINUE && o->out) rc = cli_check_output(o->cmd, "--out", o->out);
    if (rc != CLI_CONTINUE) return rc;
    gf_ctx *ctx = cli_context(o);
    if (!ctx) return CLI_FAILED;
    gf_bundle_info meta;
    memset(&meta, 0, sizeof meta);
    cli_model cm = {0};
    pred_files files = {0};
    pred_rows rows = {0};
    pred_out po = {0};
    rc = o->stream ? CLI_CONTINUE : gather(ctx, o, inputs, n_in, &files);
    if (rc == CLI_CONTINUE) rc = open_model(ctx, o, &meta, &cm);
    const bool tags = rc == CLI_CONTINUE && !o->stream && cli_is_tagger(ctx, cm.b);
    if (tags) {
        rc = cli_predict_tags(ctx, o, cm.b, (const char *const *)files.path, files.n);
    } else if (rc == CLI_CONTINUE && o->stream) {
        rc = cli_predict_stream(ctx, o, cm.b, inputs, n_in);
    } else if (rc == CLI_CONTINUE) {
        rows.F = 1;
        for (int i = 0; i < cm.b->info.in_ndim; i++) rows.F *= cm.b->info.in_shape[i];
        rc = read_inputs(ctx, o, cm.b, &files, &rows);
    }
    if (rc == CLI_CONTINUE && !o->stream && !tags) rc = predict_rows(ctx, o, cm.b, &rows, &po);
    if (rc == CLI_CONTINUE && o->out && (rc = write_csv(ctx, o, cm.b, &rows, &po)) == CLI_CONTINUE)
        rc = print_summary(o, cm.b, &rows, &po);
    else if (rc == CLI_CONTINUE && !o->stream)
        rc = print_each(o, cm.b, &rows, &po);
    free(po.top);
    free(po.p);
    free(rows.x);
    free(rows.who);
    files_free(&files);
    cli_model_free(&cm);
    gf_bundle_info_free(&meta);
    gf_ctx_free(ctx);
    return rc;
}
