/* The text data scripts/fetch-text.sh writes (skipped, exit 77, when it is not there): the
 * sentiment package's amazon.json as shipped reads as 1,000 labelled sentences and one entry
 * without a class; the converted files open as text: data; the SpamAssassin corpus and the
 * GloVe vectors read under the default limits, with the coverage of a training vocabulary. */
#define _POSIX_C_SOURCE 200809L
#include "graft/graft.h"
#include "graft/text.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static gf_ctx *ctx;
static char dir[4096];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const char *path_of(const char *name) {
    static char p[4][4200];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void test_raw_sentiment(void) {
    const char *files[] = {"sentiment/raw/amazon.json", "sentiment/raw/imdb.json",
                           "sentiment/raw/yelp.json"};
    for (int f = 0; f < 3; f++) {
        gf_text_read_params rp = gf_text_read_default_params();
        rp.label_field = "class";
        gf_text_corpus c;
        gf_ctx_clear_error(ctx);
        CHECK(gf_text_read(ctx, path_of(files[f]), &rp, &c) == GF_ERR_FORMAT);
        CHECK(strstr(gf_ctx_error(ctx), "an entry without a label") != NULL);
        rp.unlabelled = GF_TEXT_UNLABELLED_SKIP;
        CHECK(gf_text_read(ctx, path_of(files[f]), &rp, &c) == GF_OK);
        int64_t pos = 0;
        for (int64_t i = 0; i < c.n; i++) pos += strcmp(c.labels[i], "1") == 0;
        CHECK(c.n == 1000 && c.skipped == 1 && pos == 500);
        printf("%s: %lld labelled sentences, %lld skipped (line %lld)\n", files[f], (long long)c.n,
               (long long)c.skipped, (long long)c.first_skipped_line);
        gf_text_corpus_free(&c);
    }
}

static void test_sentiment_spec(void) {
    char spec[4300];
    snprintf(spec, sizeof spec, "text:%s", path_of("sentiment/all.jsonl"));
    gf_ds_open_params p = gf_ds_open_default_params();
    p.lowercase = true;
    p.val_fraction = 0.1;
    gf_ds_parts parts;
    double t0 = now();
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_OK);
    const double t_open = now() - t0;
    CHECK(parts.n_classes == 2 && strcmp(parts.class_names[0], "negative") == 0 &&
          gf_ds_count(parts.train) + gf_ds_count(parts.val) + gf_ds_count(parts.test) == 3000);
    printf("sentiment/all.jsonl: train %lld, val %lld, test %lld, vocabulary %lld, T %lld (%.3f s)\n",
           (long long)gf_ds_count(parts.train), (long long)gf_ds_count(parts.val),
           (long long)gf_ds_count(parts.test), (long long)gf_text_vocab_size(parts.vocab),
           (long long)parts.shape[0], t_open);
    /* GloVe: only the words the vocabulary can use, then the coverage */
    gf_text_vectors_params vp = gf_text_vectors_default_params();
    vp.only = parts.vocab;
    t0 = now();
    gf_text_vectors *vec = gf_text_vectors_load(ctx, path_of("glove/glove.6B.100d.50000.txt"), &vp);
    const double t_vec = now() - t0;
    CHECK(vec && gf_text_vectors_dim(vec) == 100);
    const int64_t V = gf_text_vocab_size(parts.vocab);
    gf_tensor *w = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){V, 100});
    gf_text_coverage c;
    CHECK(w && gf_text_vectors_fill(ctx, vec, parts.vocab, w, &c) == GF_OK);
    CHECK(c.found > c.words / 2 && c.covered_tokens > c.train_tokens / 2);
    printf("GloVe 6B 100-d (50,000 words; %lld kept, %.3f s): %lld of %lld words (%.1f%%), "
           "%lld of %lld training tokens (%.1f%%)\n", (long long)gf_text_vectors_count(vec), t_vec,
           (long long)c.found, (long long)c.words, 100.0 * (double)c.found / (double)c.words,
           (long long)c.covered_tokens, (long long)c.train_tokens,
           100.0 * (double)c.covered_tokens / (double)c.train_tokens);
    gf_tensor_free(w);
    gf_text_vectors_free(vec);
    gf_ds_parts_free(&parts);
}

static void test_spam(void) {
    char spec[4300];
    snprintf(spec, sizeof spec, "text:%s", path_of("spam-assassin.jsonl"));
    gf_ds_open_params p = gf_ds_open_default_params();
    p.lowercase = true;
    p.min_count = 2;
    p.max_vocab = 20000;
    p.max_len = 256;
    gf_ds_parts parts;
    const double t0 = now();
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_OK);
    const double t = now() - t0;
    int64_t counts[2] = {0, 0}, n = 0;
    gf_ds *const all[3] = {parts.train, parts.val, parts.test};
    for (int k = 0; k < 3; k++) {
        int64_t ck[2];
        if (!all[k]) continue;
        CHECK(gf_ds_class_counts(ctx, all[k], ck) == GF_OK);
        counts[0] += ck[0];
        counts[1] += ck[1];
        n += gf_ds_count(all[k]);
    }
    CHECK(n == 6046 && parts.n_classes == 2 && strcmp(parts.class_names[1], "spam") == 0 &&
          counts[0] == 4150 && counts[1] == 1896 && gf_text_vocab_size(parts.vocab) == 20000);
    printf("spam-assassin.jsonl: %lld messages (%lld ham, %lld spam), vocabulary %lld, T %lld "
           "(%.3f s)\n", (long long)n, (long long)counts[0], (long long)counts[1],
           (long long)gf_text_vocab_size(parts.vocab), (long long)parts.shape[0], t);
    gf_ds_parts_free(&parts);
}

int main(void) {
    if (!gf_text_data_dir(dir, sizeof dir)) {
        printf("test_text_data: no text data (run scripts/fetch-text.sh): skipped\n");
        return 77;
    }
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    ctx = gf_ctx_new(&cp);
    if (!ctx) return 1;
    test_raw_sentiment();
    test_sentiment_spec();
    test_spam();
    gf_ctx_free(ctx);
    return test_finish("test_text_data");
}
