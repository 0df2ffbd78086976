/* libFuzzer target: any bytes given to the text readers (JSON, JSON lines, CSV, TSV, lines;
 * tagged entries with their tags and tokens too),
 * the tokenisers, the vocabulary's JSON and the GloVe reader must give a result whose every
 * part checks out (ids inside the vocabulary, lines in order, vectors of the first line's
 * size) or an error message — never a crash, a leak or a read past the input. The first byte
 * picks the options (format, unlabelled entries, tokenizer, lower case, byte fallback). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "graft/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Each failure must say why. */
static void failed_with_message(gf_ctx *ctx) {
    if (gf_ctx_status(ctx) == GF_OK || gf_ctx_error(ctx)[0] == '\0') abort();
    gf_ctx_clear_error(ctx);
}

/* A tagged entry's tags: n_tags non-empty strings back to back. */
static void check_tags(const gf_text_corpus *c, int64_t i) {
    if (!c->tags || !c->n_tags || !c->tags[i] || c->n_tags[i] < 1) abort();
    const char *t = c->tags[i];
    for (int64_t j = 0; j < c->n_tags[i]; j++, t += strlen(t) + 1)
        if (!t[0]) abort();
}

static void check_corpus(gf_ctx *ctx, const gf_text_corpus *c, const gf_text_params *tp,
                         gf_text_unlabelled how) {
    if (!c->tagged && (c->tags || c->n_tags)) abort();
    for (int64_t i = 0; i < c->n; i++) {
        if (!c->texts[i] ||
            (!c->tagged && !c->labels[i] && how != GF_TEXT_UNLABELLED_KEEP))
            abort();
        if (c->tagged) check_tags(c, i);
        if (c->lines[i] < 1 || (i && c->lines[i] < c->lines[i - 1])) abort();
    }
    if (c->n == 0) return;
    gf_text_vocab_params vp = gf_text_vocab_default_params();
    vp.max_distinct = 4096;
    gf_text_vocab *v = gf_text_vocab_build(ctx, tp, &vp, (const char *const *)c->texts, c->n, "fuzz");
    if (!v) {
        failed_with_message(ctx);
        return;
    }
    int64_t ids[16], nt;
    for (int64_t i = 0; i < c->n && i < 256; i++) {
        if (gf_text_encode(ctx, v, c->texts[i], 16, ids, &nt, "fuzz") != GF_OK) abort();
        for (int t = 0; t < 16; t++)
            if (ids[t] < 0 || ids[t] >= gf_text_vocab_size(v) || (t >= nt && ids[t] != 0)) abort();
    }
    char *json = gf_text_vocab_to_json(ctx, v);
    gf_text_vocab *back = json ? gf_text_vocab_from_json(ctx, json, strlen(json), "fuzz") : NULL;
    if (!back || gf_text_vocab_size(back) != gf_text_vocab_size(v)) abort();
    gf_text_vocab_free(back);
    free(json);
    gf_text_vocab_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static gf_ctx *ctx;
    if (!ctx) {
        gf_ctx_params p = gf_ctx_default_params();
        p.n_threads = 1;
        p.arena_bytes = 1 << 16;
        ctx = gf_ctx_new(&p);
    }
    uint8_t opt = size > 0 ? data[0] : 0;
    if (size > 0) {
        data++;
        size--;
    }
    /* an exact-size heap copy lets ASan catch any read past the end */
    char *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    gf_text_read_params rp = gf_text_read_default_params();
    rp.format = (gf_text_format)((opt & 7) % 6);
    rp.unlabelled = (gf_text_unlabelled)((opt >> 3) % 3);
    rp.max_record_bytes = 4096;
    rp.max_examples = 1000;
    gf_text_params tp = gf_text_default_params();
    tp.tokenizer = (gf_text_tokenizer)((opt >> 5) % 3);
    tp.lowercase = (opt & 0x80) != 0;
    tp.byte_fallback = (opt & 0x04) != 0;
    gf_text_corpus c;
    if (gf_text_parse(ctx, copy, size, "fuzz", &rp, &c) == GF_OK) check_corpus(ctx, &c, &tp, rp.unlabelled);
    else if (c.n || c.texts) abort();
    else failed_with_message(ctx);
    gf_text_corpus_free(&c);
    /* the bytes as text: tokenised exactly when they are UTF-8 without NUL bytes */
    gf_text_tokens t;
    char *z = malloc(size + 1);
    if (z) {
        memcpy(z, data, size);
        z[size] = '\0';
        const bool utf8 = gf_text_utf8_check(z, size) < 0;
        const gf_status st = gf_text_tokens_of(ctx, &tp, z, &t);
        if (utf8 != (st == GF_OK) && strlen(z) == size) abort();
        if (st == GF_OK) gf_text_tokens_free(&t);
        else failed_with_message(ctx);
        free(z);
    }
    /* as word vectors and as a vocabulary */
    gf_text_vectors_params vp = gf_text_vectors_default_params();
    vp.max_words = 512;
    vp.max_dim = 64;
    vp.max_record_bytes = 4096;
    gf_text_vectors *v = gf_text_vectors_parse(ctx, copy, size, "fuzz", &vp);
    if (v) {
        if (gf_text_vectors_count(v) < 1 || gf_text_vectors_dim(v) < 1 || gf_text_vectors_dim(v) > 64)
            abort();
        for (int64_t i = 0; i < gf_text_vectors_count(v); i++)
            if (gf_text_vectors_get(v, gf_text_vectors_word(v, i)) == NULL) abort();
        gf_text_vectors_free(v);
    } else {
        failed_with_message(ctx);
    }
    gf_text_vocab *voc = gf_text_vocab_from_json(ctx, copy, size, "fuzz");
    if (voc) {
        for (int64_t i = 0; i < gf_text_vocab_size(voc); i++)
            if (gf_text_vocab_id(voc, gf_text_vocab_token(voc, i)) != i) abort();
        gf_text_vocab_free(voc);
    } else {
        failed_with_message(ctx);
    }
    free(copy);
    return 0;
}
