/* Sequence labelling from tagged text: the reader's tags and tokens (and every malformed form
 * of them, named by line), text:FILE opening into per-step labels [n, T] with -100 padding,
 * datasets, views and loaders carrying them, the taggers' output shape, and the evaluator
 * counting loss and accuracy per token (references computed here, in double, from the
 * logits). The loss against PyTorch: fixtures/ops_perstep.json. */
#define _POSIX_C_SOURCE 200809L
#include "graft/graft.h"
#include "graft/text.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gf_ctx *ctx;
static char dir[64];

static const char *write_file(const char *name, const char *text) {
    static char p[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    FILE *f = fopen(p[k], "wb");
    if (!f) return NULL;
    fputs(text, f);
    fclose(f);
    return p[k];
}

static gf_status parse(const char *text, gf_text_corpus *c) {
    gf_ctx_clear_error(ctx);
    return gf_text_parse(ctx, text, strlen(text), "tags.jsonl", NULL, c);
}

/* The reader: both forms, the tags as NUL-separated strings. */
static void test_read(void) {
    gf_text_corpus c;
    CHECK(parse("{\"tokens\": [\"The\", \"cat\", \"sat\"], \"tags\": [\"DET\", \"NOUN\", \"VERB\"]}\n"
                "\n"
                "{\"text\": \"a dog\", \"tags\": [\"DET\", \"NOUN\"], \"label\": 3}\n",
                &c) == GF_OK);
    CHECK(c.n == 2 && c.tagged && c.n_tags[0] == 3 && c.n_tags[1] == 2);
    CHECK(strcmp(c.texts[0], "The cat sat") == 0 && strcmp(c.texts[1], "a dog") == 0);
    CHECK(c.labels[0] == NULL && c.lines[1] == 3);
    const char *t = c.tags[0];
    CHECK(strcmp(t, "DET") == 0 && strcmp(t + 4, "NOUN") == 0 && strcmp(t + 9, "VERB") == 0);
    gf_text_corpus_free(&c);
    /* a JSON array holds tagged objects too */
    const char *arr = "[{\"tokens\": [\"x\"], \"tags\": [\"A\"]}]";
    CHECK(gf_text_parse(ctx, arr, strlen(arr), "tags.json", NULL, &c) == GF_OK && c.tagged &&
          c.n == 1);
    gf_text_corpus_free(&c);
    /* no tags key: per-sequence labels as before */
    CHECK(parse("{\"text\": \"x\", \"label\": \"a\"}\n", &c) == GF_OK && !c.tagged && !c.tags);
    gf_text_corpus_free(&c);
}

static void expect_bad(const char *text, const char *a, const char *b) {
    gf_text_corpus c;
    CHECK(parse(text, &c) == GF_ERR_FORMAT);
    CHECK(c.n == 0);
    if (!strstr(gf_ctx_error(ctx), a) || !strstr(gf_ctx_error(ctx), b)) {
        fprintf(stderr, "message '%s' lacks '%s' or '%s'\n", gf_ctx_error(ctx), a, b);
        CHECK(0);
    }
}

static void test_bad_records(void) {
    const char *ok = "{\"tokens\": [\"a\"], \"tags\": [\"X\"]}\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%s{\"tokens\": [\"a\", \"b\"], \"tags\": \"DET\"}\n", ok);
    expect_bad(buf, "tags.jsonl: line 2", "the tags are not an array of strings");
    snprintf(buf, sizeof buf, "%s%s{\"tokens\": [\"a\", \"b\", \"c\"], \"tags\": [\"X\", \"Y\"]}\n",
             ok, ok);
    expect_bad(buf, "line 3", "3 tokens but 2 tags");
    expect_bad("{\"tokens\": [\"a\", \"b\"], \"tags\": [\"X\", \"\"]}\n", "line 1", "tag 2 is empty");
    expect_bad("{\"tokens\": [\"a\", \"b\"], \"tags\": [\"X\", 7]}\n", "line 1",
               "tag 2 is not a string");
    expect_bad("{\"tokens\": [\"a b\"], \"tags\": [\"X\"]}\n", "line 1", "holds white space");
    expect_bad("{\"tokens\": \"a b\", \"tags\": [\"X\"]}\n", "line 1", "not an array");
    expect_bad("{\"tags\": [\"X\"]}\n", "line 1", "no text (nor tokens)");
    expect_bad("{\"text\": 5, \"tags\": [\"X\"]}\n", "line 1", "the text is not a string");
    expect_bad("{\"text\": \"\", \"tags\": []}\n", "line 1", "no tags");
    snprintf(buf, sizeof buf, "%s{\"text\": \"b\", \"label\": 1}\n", ok);
    expect_bad(buf, "line 2", "an entry without tags after tagged entries");
    expect_bad("{\"text\": \"b\", \"label\": 1}\n{\"tokens\": [\"a\"], \"tags\": [\"X\"]}\n",
               "line 2", "an entry with tags after entries without");
    /* a huge line stops at the record limit, before anything its size asks for */
    const size_t big = 3u << 20;
    char *huge = malloc(big + 128);
    CHECK(huge != NULL);
    if (!huge) return;
    int o = snprintf(huge, 64, "%s{\"tokens\": [\"", ok);
    memset(huge + o, 'a', big);
    snprintf(huge + o + big, 64 - 1, "\"], \"tags\": [\"X\"]}\n");
    gf_text_read_params rp = gf_text_read_default_params();
    rp.max_record_bytes = 1 << 20;
    gf_text_corpus c;
    gf_ctx_clear_error(ctx);
    CHECK(gf_text_parse(ctx, huge, strlen(huge), "huge.jsonl", &rp, &c) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(ctx), "huge.jsonl: line 2: a record longer than 1048576") != NULL);
    free(huge);
}

/* text:FILE with tags: per-step labels, padding -100, the classes the sorted tags. */
static void test_open(void) {
    gf_ctx_clear_error(ctx); /* the errors tested before are sticky */
    const char *path = write_file("t.jsonl",
                                  "{\"tokens\": [\"the\", \"cat\", \"sat\"], \"tags\": [\"D\", \"N\", \"V\"]}\n"
                                  "{\"text\": \"a dog\", \"tags\": [\"D\", \"N\"]}\n"
                                  "{\"tokens\": [\"dogs\", \"sat\", \"down\", \"here\"], "
                                  "\"tags\": [\"N\", \"V\", \"A\", \"A\"]}\n"
                                  "{\"text\": \"run\", \"tags\": [\"V\"]}\n");
    char spec[200];
    snprintf(spec, sizeof spec, "text:%s", path);
    gf_ds_open_params p = gf_ds_open_default_params();
    p.test_fraction = 0.25;
    p.max_len = 4;
    gf_ds_parts parts;
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_OK);
    CHECK(parts.label_steps == 4 && parts.shape[0] == 4 && parts.n_classes == 4);
    CHECK(parts.n_classes == 4 && strcmp(parts.class_names[0], "A") == 0 &&
          strcmp(parts.class_names[3], "V") == 0);
    CHECK(gf_ds_count(parts.train) == 3 && gf_ds_count(parts.test) == 1);
    CHECK(gf_ds_label_steps(parts.train) == 4 && gf_ds_label(parts.train, 0) == -1);
    gf_ds *all = gf_ds_parts_all(ctx, &parts);
    CHECK(all && gf_ds_label_steps(all) == 4 && gf_ds_count(all) == 4);
    /* every example's labels against its tags, by the text it came from */
    int64_t counts[4];
    CHECK(all && gf_ds_class_counts(ctx, all, counts) == GF_OK);
    CHECK(counts[0] == 2 && counts[1] == 2 && counts[2] == 3 && counts[3] == 3);
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 4;
    lp.shuffle = false;
    gf_loader *ld = all ? gf_loader_new(ctx, all, &lp) : NULL;
    gf_batch b;
    CHECK(ld && gf_loader_next(ctx, ld, &b));
    if (ld && b.y) {
        CHECK(b.y->dtype == GF_I64 && b.y->ndim == 2 && b.y->shape[0] == 4 && b.y->shape[1] == 4);
        for (int64_t i = 0; i < 4; i++) {
            const float *x = gf_f32(b.x) + i * 4;
            const int64_t *y = gf_i64(b.y) + i * 4;
            int64_t n = 0;
            while (n < 4 && x[n] != 0.0f) n++;
            for (int64_t t = 0; t < 4; t++) CHECK((t < n) == (y[t] != GF_DS_IGNORE_LABEL));
            const char *first = gf_text_vocab_token(parts.vocab, (int64_t)x[0]);
            if (first && strcmp(first, "dogs") == 0)
                CHECK(n == 4 && y[0] == 2 && y[1] == 3 && y[2] == 0 && y[3] == 0);
            if (first && strcmp(first, "a") == 0)
                CHECK(n == 2 && y[0] == 1 && y[1] == 2);
        }
    }
    gf_loader_free(ld);
    gf_ds_free(all);
    /* a model's tags replace the file's: the same classes in the model's order */
    const char *const mine[] = {"V", "N", "D", "A", "X"};
    p.tag_names = mine;
    p.n_tag_names = 5;
    p.vocab = parts.vocab;
    gf_ds_parts again;
    CHECK(gf_ds_open(ctx, spec, &p, &again) == GF_OK);
    CHECK(again.n_classes == 5 && strcmp(again.class_names[0], "V") == 0);
    gf_ds_parts_free(&again);
    p.n_tag_names = 2; /* V and N only: D is unknown */
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_open(ctx, spec, &p, &again) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(ctx), "line 1: tag 1 \"D\" is not among the model's 2 tags") != NULL);
    gf_ds_parts_free(&again);
    gf_ds_parts_free(&parts);
}

/* What the tokeniser finds must line up with the tags; choices that cannot are refused. */
static void test_open_bad(void) {
    gf_ctx_clear_error(ctx); /* the errors tested before are sticky */
    const char *path = write_file("m.jsonl", "{\"text\": \"a b\", \"tags\": [\"X\", \"Y\"]}\n"
                                             "{\"text\": \"don't stop\", \"tags\": [\"X\", \"Y\"]}\n");
    char spec[200];
    snprintf(spec, sizeof spec, "text:%s", path);
    gf_ds_open_params p = gf_ds_open_default_params();
    p.test_fraction = 0;
    gf_ds_parts parts;
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(ctx), "m.jsonl: line 2: 2 tags but the word tokeniser finds 4 "
                                    "tokens") != NULL);
    gf_ds_parts_free(&parts);
    p.byte_fallback = true;
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "byte fallback") != NULL);
    gf_ds_parts_free(&parts);
    p.byte_fallback = false;
    p.classes = "X";
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "classes applies to one label per text") != NULL);
    gf_ds_parts_free(&parts);
}

/* Fixed logits for the evaluator: [n, T, C] from the batch's first example index on. */
static const float LOGITS[2][3][3] = {{{2.0f, 0.5f, -1.0f}, {0.1f, 0.2f, 0.3f}, {1.0f, 1.0f, 5.0f}},
                                      {{-1.0f, 3.0f, 0.0f}, {0.7f, -0.2f, 0.4f}, {0.0f, 0.0f, 0.0f}}};
static const int64_t LABELS[2][3] = {{0, 1, GF_DS_IGNORE_LABEL}, {1, 2, GF_DS_IGNORE_LABEL}};

static gf_tensor *fixed_forward(gf_ctx *c, gf_module *m, gf_tensor *x, void *user) {
    (void)m, (void)user;
    const int64_t n = x->shape[0];
    gf_tensor *y = gf_empty(c, GF_F32, 3, (int64_t[]){n, 3, 3});
    if (y) {
        for (int64_t i = 0; i < n; i++) {
            const int64_t e = (int64_t)gf_f32(x)[i * 3]; /* the example's first "id" */
            memcpy(gf_f32(y) + i * 9, LOGITS[e], sizeof LOGITS[e]);
        }
    }
    return y;
}

static void test_evaluate(void) {
    gf_ctx_clear_error(ctx); /* the errors tested before are sticky */
    float x[6] = {0, 1, 1, 1, 1, 1};
    int64_t y[6];
    memcpy(y, LABELS, sizeof y);
    gf_ds_desc d = {.ndim = 1, .shape = {3}, .n = 2, .x_f32 = x, .labels = y, .n_classes = 3,
                    .label_steps = 3, .name = "tags"};
    gf_ds *ds = gf_ds_from_memory(ctx, &d);
    CHECK(ds && gf_ds_label_steps(ds) == 3);
    /* the reference: log-softmax in double over the 4 labelled steps */
    double loss = 0;
    int correct = 0;
    for (int e = 0; e < 2; e++)
        for (int t = 0; t < 2; t++) {
            const float *s = LOGITS[e][t];
            double m = fmax(s[0], fmax(s[1], s[2])), z = 0;
            for (int j = 0; j < 3; j++) z += exp(s[j] - m);
            loss -= s[LABELS[e][t]] - m - log(z);
            int best = 0;
            for (int j = 1; j < 3; j++)
                if (s[j] > s[best]) best = j;
            correct += best == LABELS[e][t];
        }
    CHECK(correct == 2); /* steps (0,0) and (1,0) */
    gf_module *model = gf_nn_identity(ctx);
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 1; /* two batches of one: the token mean is over both, not per batch */
    lp.shuffle = false;
    gf_loader *ld = ds ? gf_loader_new(ctx, ds, &lp) : NULL;
    gf_eval_params ep = gf_eval_default_params();
    ep.forward = fixed_forward;
    ep.top_k = 2;
    gf_eval_result r;
    CHECK(ld && gf_evaluate_ex(ctx, model, NULL, ld, &ep, &r) == GF_OK);
    CHECK(r.count == 2 && r.scored == 4);
    CHECK_NEAR(r.loss, loss / 4, 1e-6);
    CHECK_NEAR(r.accuracy, 0.5, 1e-12);
    CHECK(r.n_classes == 3 && r.support && r.support[0] == 1 && r.support[1] == 2 &&
          r.support[2] == 1);
    gf_eval_result_free(&r);
    ep.basic = true;
    ep.loss_reduction = GF_REDUCE_SUM;
    CHECK(gf_evaluate_ex(ctx, model, NULL, ld, &ep, &r) == GF_OK);
    CHECK_NEAR(r.loss, loss / 4, 1e-6);
    CHECK_NEAR(r.accuracy, 0.5, 1e-12);
    gf_eval_result_free(&r);
    gf_loader_free(ld);
    gf_module_free(model);
    /* a view keeps the labels of its examples */
    gf_ds *v = ds ? gf_split_indices(ctx, ds, (int64_t[]){1}, 1) : NULL;
    int64_t got[3] = {0};
    CHECK(v && gf_ds_label_steps(v) == 3 && gf_ds_read(v, (int64_t[]){0}, 1, NULL, got, NULL, 0) == GF_OK);
    CHECK(got[0] == 1 && got[1] == 2 && got[2] == GF_DS_IGNORE_LABEL);
    gf_ds_free(v);
    /* the cuts: no class per example, so a split is not stratified and per-class refused */
    gf_split_params sp = gf_split_default_params();
    sp.stratify = true;
    sp.test_fraction = 0.5;
    gf_ds *tr = NULL, *te = NULL;
    CHECK(ds && gf_split_dataset(ctx, ds, &sp, &tr, NULL, &te) == GF_OK);
    CHECK(gf_ds_count(tr) == 1 && gf_ds_count(te) == 1 && gf_ds_label_steps(te) == 3);
    gf_ds_free(tr);
    gf_ds_free(te);
    gf_ctx_clear_error(ctx);
    CHECK(ds && gf_split_per_class(ctx, ds, 1, true, 0, true) == NULL);
    CHECK(strstr(gf_ctx_error(ctx), "per-step labels") != NULL);
    gf_ctx_clear_error(ctx);
    /* a label outside the classes (other than the ignore target) is refused */
    y[1] = 3;
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_from_memory(ctx, &d) == NULL && strstr(gf_ctx_error(ctx), "step 1") != NULL);
    gf_ds_free(ds);
}

/* The zoo's taggers give a row of tag scores per step. */
static void test_taggers(void) {
    gf_ctx_clear_error(ctx); /* the errors tested before are sticky */
    const char *names[] = {"lstm-tagger", "gru-tagger", "transformer-tagger"};
    for (int i = 0; i < 3; i++) {
        gf_zoo_params zp = gf_zoo_default_params();
        zp.vocab_size = 20;
        zp.seq_len = 6;
        zp.num_classes = 5;
        gf_module *m = gf_zoo_build(ctx, names[i], &zp, NULL);
        CHECK(m && gf_zoo_is_tagger(names[i]) && gf_zoo_is_text(names[i]));
        gf_tensor *x = gf_zeros(ctx, GF_F32, 2, (int64_t[]){2, 6});
        if (x) for (int t = 0; t < 4; t++) gf_f32(x)[t] = (float)(t + 2);
        gf_tensor *y = m && x ? gf_module_forward(ctx, m, x) : NULL;
        CHECK(y && y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 6 && y->shape[2] == 5);
        gf_module_free(m);
        gf_ctx_reset(ctx);
    }
    CHECK(!gf_zoo_is_tagger("lstm"));
}

int main(void) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    ctx = gf_ctx_new(&cp);
    snprintf(dir, sizeof dir, "/tmp/graft-tags-XXXXXX");
    if (!ctx || !mkdtemp(dir)) return 1;
    test_read();
    test_bad_records();
    test_open();
    test_open_bad();
    test_evaluate();
    test_taggers();
    test_rm_tree(dir);
    gf_ctx_free(ctx);
    return test_finish("test_text_tags");
}
