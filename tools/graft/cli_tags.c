/* graft predict with a sequence labeller (a text model giving one output per token, e.g. the
 * zoo's lstm-tagger): every text of the inputs tokenised as in training, and each token's most
 * likely tag, printed as token/TAG, as JSON, or written as a CSV of one row per token. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "io/io_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool cli_is_tagger(gf_ctx *ctx, gf_bundle *b) {
    const gf_bundle_info *m = &b->info;
    if (!m->vocab || m->in_ndim != 1 || m->in_shape[0] < 1) return false;
    if (gf_zoo_is_tagger(m->model)) return true;
    if (!m->spec) return false;
    /* a spec: one token through the model tells whether it gives a row per step */
    gf_tensor *x = gf_zeros(ctx, GF_F32, 2, (int64_t[]){1, m->in_shape[0]});
    if (x) gf_f32(x)[0] = (float)GF_TEXT_UNK;
    const bool grad = gf_ctx_set_grad_enabled(ctx, false), train = gf_module_is_training(b->model);
    gf_module_train(b->model, false);
    gf_tensor *y = x ? gf_module_forward(ctx, b->model, x) : NULL;
    const bool tagger = y && y->ndim == 3 && y->shape[1] == m->in_shape[0];
    gf_module_train(b->model, train);
    gf_ctx_set_grad_enabled(ctx, grad);
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    return tagger;
}

/* One text's tokens and their most likely tags (tag[i], prob[i] for the first n tokens; tokens
 * past the model's length get none). */
typedef struct tagged {
    gf_text_tokens toks;
    int64_t n; /* tokens tagged: min(tokens, T) */
    int *tag;
    float *prob;
} tagged;

static void tagged_free(tagged *t) {
    gf_text_tokens_free(&t->toks);
    free(t->tag);
    free(t->prob);
}

/* Tags text: the model on its ids [1, T], softmax over each step's scores. */
static gf_status tag_text(gf_ctx *ctx, gf_bundle *b, const char *text, const char *where,
                          tagged *out) {
    memset(out, 0, sizeof *out);
    const gf_text_vocab *v = b->info.vocab;
    const int64_t T = b->info.in_shape[0];
    const gf_text_params tp = gf_text_vocab_text_params(v);
    if (gf_text_tokens_of(ctx, &tp, text, &out->toks) != GF_OK) return gf_ctx_status(ctx);
    int64_t *ids = malloc(sizeof *ids * (size_t)T);
    gf_tensor *x = ids ? gf_empty(ctx, GF_F32, 2, (int64_t[]){1, T}) : NULL;
    if (!x || gf_text_encode(ctx, v, text, T, ids, NULL, where) != GF_OK) {
        free(ids);
        return gf_ctx_status(ctx) != GF_OK ? gf_ctx_status(ctx)
                                            : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    }
    for (int64_t t = 0; t < T; t++) gf_f32(x)[t] = (float)ids[t];
    free(ids);
    gf_tensor *y = gf_module_forward(ctx, b->model, x);
    if (!y) return gf_ctx_status(ctx);
    if (y->ndim != 3 || y->shape[1] != T || y->shape[2] != b->info.n_classes) {
        char sh[64];
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE, "the model gives %s for token ids [1, %lld]; "
                                "a tagger must give [1, %lld, %d] (a tag per token)",
                                gf_shape_str(y, sh, sizeof sh), (long long)T, (long long)T,
                                b->info.n_classes);
    }
    const int64_t c = y->shape[2];
    gf_tensor *yc = gf_contiguous(ctx, y);
    const float *s = yc ? gf_f32(yc) : NULL;
    out->n = out->toks.n < T ? out->toks.n : T;
    out->tag = malloc(sizeof *out->tag * (size_t)(out->n ? out->n : 1));
    out->prob = malloc(sizeof *out->prob * (size_t)(out->n ? out->n : 1));
    if (!s || !out->tag || !out->prob)
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    for (int64_t t = 0; t < out->n; t++) {
        const float *r = s + t * c;
        int best = 0;
        for (int j = 1; j < c; j++)
            if (r[j] > r[best]) best = j;
        double sum = 0;
        for (int j = 0; j < c; j++) sum += exp((double)r[j] - r[best]);
        out->tag[t] = best;
        out->prob[t] = (float)(1.0 / sum);
    }
    return GF_OK;
}

static const char *tag_name(const gf_bundle *b, int k) {
    const char *n = gf_bundle_class_name(b, k);
    return n ? n : "?";
}

/* One text's tags as text (token/TAG ...), a JSON entry, or CSV rows. */
static void emit(const cli_opts *o, const gf_bundle *b, const char *path, int64_t line,
                 const tagged *t, cJSON *preds, FILE *csv) {
    if (csv) {
        for (int64_t i = 0; i < t->n; i++) {
            cli_csv_field(csv, path);
            fprintf(csv, ",%lld,%lld,", (long long)line, (long long)i + 1);
            cli_csv_field(csv, t->toks.tok[i]);
            fputc(',', csv);
            cli_csv_field(csv, tag_name(b, t->tag[i]));
            fprintf(csv, ",%.6f\n", (double)t->prob[i]);
        }
        return;
    }
    if (preds) {
        cJSON *e = cJSON_CreateObject(), *a = cJSON_CreateArray();
        cJSON_AddStringToObject(e, "input", path);
        cJSON_AddNumberToObject(e, "line", (double)line);
        for (int64_t i = 0; i < t->n; i++) {
            cJSON *k = cJSON_CreateObject();
            cJSON_AddStringToObject(k, "token", t->toks.tok[i]);
            cJSON_AddStringToObject(k, "tag", tag_name(b, t->tag[i]));
            cJSON_AddNumberToObject(k, "probability", t->prob[i]);
            cJSON_AddItemToArray(a, k);
        }
        cJSON_AddItemToObject(e, "tokens", a);
        cJSON_AddNumberToObject(e, "untagged", (double)(t->toks.n - t->n));
        cJSON_AddItemToArray(preds, e);
        return;
    }
    (void)o;
    printf("%s line %lld\n ", path, (long long)line);
    for (int64_t i = 0; i < t->n; i++) printf(" %s/%s", t->toks.tok[i], tag_name(b, t->tag[i]));
    if (t->toks.n > t->n)
        printf("  (%lld more tokens past the model's %lld)", (long long)(t->toks.n - t->n),
               (long long)t->n);
    putchar('\n');
}

/* Every text of one input file, tagged. */
static int tag_file(gf_ctx *ctx, const cli_opts *o, gf_bundle *b, const char *path,
                    cJSON *preds, FILE *csv, int64_t *n_texts) {
    gf_text_read_params rp = gf_text_read_default_params();
    rp.unlabelled = GF_TEXT_UNLABELLED_KEEP;
    gf_text_corpus c;
    if (gf_text_read(ctx, path, &rp, &c) != GF_OK) return cli_fail_ctx(o->cmd, ctx);
    int rc = CLI_CONTINUE;
    for (int64_t i = 0; i < c.n && rc == CLI_CONTINUE; i++) {
        char where[300];
        snprintf(where, sizeof where, "%s: line %lld", path, (long long)c.lines[i]);
        tagged t;
        if (tag_text(ctx, b, c.texts[i], where, &t) != GF_OK) rc = cli_fail_ctx(o->cmd, ctx);
        else emit(o, b, path, c.lines[i], &t, preds, csv);
        tagged_free(&t);
        gf_ctx_reset(ctx);
        ++*n_texts;
    }
    gf_text_corpus_free(&c);
    return rc;
}

int cli_predict_tags(gf_ctx *ctx, const cli_opts *o, gf_bundle *b, const char *const *inputs,
                     int n) {
    cJSON *preds, *root = cli_predict_json(o, b, &preds);
    cli_csv_text text = {NULL, 0};
    FILE *csv = o->out ? open_memstream(&text.buf, &text.len) : NULL;
    if (o->out && !csv) return cli_fail(o->cmd, "out of memory");
    if (csv) fputs("input,line,position,token,tag,probability\n", csv);
    const bool grad = gf_ctx_set_grad_enabled(ctx, false), train = gf_module_is_training(b->model);
    gf_module_train(b->model, false);
    int rc = CLI_CONTINUE;
    int64_t n_texts = 0;
    for (int i = 0; i < n && rc == CLI_CONTINUE; i++)
        rc = tag_file(ctx, o, b, inputs[i], preds, csv, &n_texts);
    gf_module_train(b->model, train);
    gf_ctx_set_grad_enabled(ctx, grad);
    if (csv && fclose(csv) != 0 && rc == CLI_CONTINUE) rc = cli_fail(o->cmd, "out of memory");
    if (rc == CLI_CONTINUE && o->out &&
        gf_atomic_write(ctx, o->out, cli_write_csv_text, &text) != GF_OK)
        rc = cli_fail(o->cmd, "writing %s: %s", o->out, gf_ctx_error(ctx));
    free(text.buf);
    if (rc != CLI_CONTINUE) {
        cJSON_Delete(root);
        return rc;
    }
    if (root) {
        if (o->out) cJSON_AddStringToObject(root, "out", o->out);
        return cli_json_print(root);
    }
    if (o->out) printf("tagged %lld texts with %s; wrote %s\n", (long long)n_texts, o->weights,
                       o->out);
    return CLI_OK;
}
