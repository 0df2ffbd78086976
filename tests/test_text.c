/* Text data (graft/text.h and the text:FILE data spec): tokens, vocabularies and encodings
 * against an independent Python reading of the same rules (fixtures/gen_text.py writes
 * fixtures/text/text_ref.json), the readers of JSON, JSON lines, CSV and TSV, the spec end to
 * end, word vectors and their coverage, and the errors: invalid UTF-8, missing labels, huge
 * lines, absurd sizes. To add a case of the Python reading, add it to gen_text.py and rerun it;
 * a case of its own gets a function here called from main. */
#define _POSIX_C_SOURCE 200809L
#include "graft/graft.h"
#include "graft/text.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gf_ctx *ctx;
static char dir[1100], work[64];
static cJSON *ref;

static const char *fixture(const char *name) {
    static char p[4][1300];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static const char *scratch(const char *name, const char *content, size_t len) {
    static char p[4][200];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", work, name);
    FILE *f = fopen(p[k], "wb");
    if (f) {
        fwrite(content, 1, len, f);
        fclose(f);
    }
    return p[k];
}

static gf_text_params params_of(const cJSON *o) {
    gf_text_params p = gf_text_default_params();
    CHECK(gf_text_tokenizer_parse(ctx, cJSON_GetObjectItem(o, "tokenizer")->valuestring,
                                  &p.tokenizer) == GF_OK);
    p.lowercase = cJSON_IsTrue(cJSON_GetObjectItem(o, "lowercase"));
    p.byte_fallback = cJSON_IsTrue(cJSON_GetObjectItem(o, "byte_fallback"));
    return p;
}

static const char **ref_texts(int *n) {
    const cJSON *t = cJSON_GetObjectItem(ref, "texts");
    *n = cJSON_GetArraySize(t);
    const char **out = malloc(sizeof *out * (size_t)*n);
    for (int i = 0; i < *n; i++) out[i] = cJSON_GetArrayItem(t, i)->valuestring;
    return out;
}

/* ---- tokens, vocabularies, encodings against Python ------------------------------------- */

static void test_tokens_ref(void) {
    int n;
    const char **texts = ref_texts(&n);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "tokens")) {
        const gf_text_params p = params_of(c);
        const cJSON *all = cJSON_GetObjectItem(c, "tokens");
        for (int i = 0; i < n; i++) {
            gf_text_tokens t;
            CHECK(gf_text_tokens_of(ctx, &p, texts[i], &t) == GF_OK);
            const cJSON *want = cJSON_GetArrayItem(all, i);
            bool same = t.n == cJSON_GetArraySize(want);
            for (int64_t j = 0; same && j < t.n; j++)
                same = strcmp(t.tok[j], cJSON_GetArrayItem(want, (int)j)->valuestring) == 0;
            if (!same) fprintf(stderr, "tokens of '%s' (%s) differ\n", texts[i], gf_text_tokenizer_name(p.tokenizer));
            CHECK(same);
            gf_text_tokens_free(&t);
        }
    }
    free(texts);
}

/* v holds exactly the tokens and counts of o. */
static bool same_vocab(const gf_text_vocab *v, const cJSON *o) {
    const cJSON *toks = cJSON_GetObjectItem(o, "tokens"), *counts = cJSON_GetObjectItem(o, "counts");
    bool same = gf_text_vocab_size(v) == cJSON_GetArraySize(toks) &&
                gf_text_vocab_total(v) == (int64_t)cJSON_GetObjectItem(o, "total")->valuedouble;
    for (int64_t i = 0; same && i < gf_text_vocab_size(v); i++) {
        same = strcmp(gf_text_vocab_token(v, i), cJSON_GetArrayItem(toks, (int)i)->valuestring) == 0 &&
               gf_text_vocab_count(v, i) == (int64_t)cJSON_GetArrayItem(counts, (int)i)->valuedouble &&
               gf_text_vocab_id(v, gf_text_vocab_token(v, i)) == i;
        if (!same)
            fprintf(stderr, "id %lld: '%s' x%lld, expected '%s' x%lld\n", (long long)i,
                    gf_text_vocab_token(v, i), (long long)gf_text_vocab_count(v, i),
                    cJSON_GetArrayItem(toks, (int)i)->valuestring,
                    (long long)cJSON_GetArrayItem(counts, (int)i)->valuedouble);
    }
    return same;
}

static bool same_encoding(const gf_text_vocab *v, const cJSON *o, const char **texts, int n) {
    const int64_t T = (int64_t)cJSON_GetObjectItem(o, "T")->valuedouble;
    bool same = true;
    for (int i = 0; i < n; i++) {
        int64_t ids[64], nt = -1;
        CHECK(gf_text_encode(ctx, v, texts[i], T, ids, &nt, "ref") == GF_OK);
        const cJSON *want = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "ids"), i);
        same = same && nt == (int64_t)cJSON_GetArrayItem(cJSON_GetObjectItem(o, "n_tokens"), i)->valuedouble;
        for (int64_t t = 0; t < T; t++) same = same && ids[t] == (int64_t)cJSON_GetArrayItem(want, (int)t)->valuedouble;
    }
    return same;
}

static void test_vocab_ref(void) {
    int n;
    const char **texts = ref_texts(&n);
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItem(ref, "vocabs")) {
        const gf_text_params p = params_of(o);
        gf_text_vocab_params vp = gf_text_vocab_default_params();
        vp.min_count = (int64_t)cJSON_GetObjectItem(o, "min_count")->valuedouble;
        vp.max_size = (int64_t)cJSON_GetObjectItem(o, "max_size")->valuedouble;
        gf_text_vocab *v = gf_text_vocab_build(ctx, &p, &vp, texts, 14, "ref");
        CHECK(v != NULL);
        if (!v) {
            fprintf(stderr, "%s\n", gf_ctx_error(ctx));
            continue;
        }
        CHECK(same_vocab(v, o));
        CHECK(same_encoding(v, o, texts, n));
        /* the JSON form gives back the same vocabulary and settings */
        char *json = gf_text_vocab_to_json(ctx, v);
        gf_text_vocab *back = json ? gf_text_vocab_from_json(ctx, json, strlen(json), "json") : NULL;
        CHECK(back != NULL);
        if (back) {
            const gf_text_params q = gf_text_vocab_text_params(back);
            CHECK(q.tokenizer == p.tokenizer && q.lowercase == p.lowercase &&
                  q.byte_fallback == p.byte_fallback);
            CHECK(same_vocab(back, o));
            CHECK(same_encoding(back, o, texts, n));
        }
        gf_text_vocab_free(back);
        free(json);
        gf_text_vocab_free(v);
    }
    free(texts);
}

/* ---- tokeniser cases --------------------------------------------------------------------- */

/* The tokens of text joined by '|' equal want. */
static void tokens_are(const gf_text_params *p, const char *text, const char *want) {
    gf_text_tokens t;
    char got[512] = "";
    CHECK(gf_text_tokens_of(ctx, p, text, &t) == GF_OK);
    for (int64_t i = 0; i < t.n; i++) {
        if (i) strncat(got, "|", sizeof got - strlen(got) - 1);
        strncat(got, t.tok[i], sizeof got - strlen(got) - 1);
    }
    if (strcmp(got, want) != 0) fprintf(stderr, "tokens of '%s': '%s', expected '%s'\n", text, got, want);
    CHECK(strcmp(got, want) == 0);
    gf_text_tokens_free(&t);
}

static void test_tokenizer_cases(void) {
    gf_text_params w = gf_text_default_params(), lw = w, c = w, b = w;
    lw.lowercase = true;
    c.tokenizer = GF_TEXT_CHAR;
    b.tokenizer = GF_TEXT_BYTE;
    tokens_are(&w, "snake_case 3.5 e-mail", "snake|_|case|3|.|5|e|-|mail");
    tokens_are(&w, "caf\xC3\xA9 cafe\xCC\x81", "caf\xC3\xA9|cafe\xCC\x81"); /* a combining accent */
    tokens_are(&w, "a\xC2\xA0" "b\xE3\x80\x80" "c", "a|b|c");                 /* NBSP, ideographic space */
    tokens_are(&w, "I \xE2\x9D\xA4\xEF\xB8\x8F it", "I|\xE2\x9D\xA4\xEF\xB8\x8F|it"); /* heart + VS16 */
    tokens_are(&w, "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9!", /* man ZWJ woman: one token */
               "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9|!");
    tokens_are(&lw, "\xC4\xB0stanbul \xC3\x89T\xC3\x89 \xD0\x81\xD0\x96", /* İ É Ё Ж */
               "istanbul|\xC3\xA9t\xC3\xA9|\xD1\x91\xD0\xB6");
    tokens_are(&c, "a \xC3\xA9!", "a| |\xC3\xA9|!");
    tokens_are(&b, "\xC3\xA9", "<0xC3>|<0xA9>");
    tokens_are(&w, "", "");
    /* byte fallback: a word outside the vocabulary is spelled in bytes, never <unk> */
    gf_text_params bf = w;
    bf.byte_fallback = true;
    const char *train[] = {"good good bad"};
    gf_text_vocab *v = gf_text_vocab_build(ctx, &bf, NULL, train, 1, "t");
    CHECK(v && gf_text_vocab_size(v) == 260 && gf_text_vocab_id(v, "good") == 258 &&
          gf_text_vocab_id(v, "<0x41>") == 2 + 0x41 && gf_text_vocab_is_special(v, 257));
    int64_t ids[8], nt;
    CHECK(v && gf_text_encode(ctx, v, "good h\xC3\xA9", 8, ids, &nt, "t") == GF_OK);
    CHECK(nt == 4 && ids[0] == 258 && ids[1] == 2 + 'h' && ids[2] == 2 + 0xC3 && ids[3] == 2 + 0xA9 &&
          ids[4] == 0 && ids[7] == 0);
    gf_text_vocab_free(v);
    /* without it: <unk>; ties in byte order */
    const char *train2[] = {"b a c a b"};
    v = gf_text_vocab_build(ctx, &w, NULL, train2, 1, "t");
    CHECK(v && strcmp(gf_text_vocab_token(v, 2), "a") == 0 && strcmp(gf_text_vocab_token(v, 3), "b") == 0 &&
          strcmp(gf_text_vocab_token(v, 4), "c") == 0 && gf_text_vocab_id(v, "zz") == -1);
    CHECK(v && gf_text_encode(ctx, v, "a zz c", 2, ids, &nt, "t") == GF_OK && nt == 3 && ids[0] == 2 &&
          ids[1] == GF_TEXT_UNK);
    gf_tensor *x = v ? gf_text_encode_batch(ctx, v, (const char *[]){"c", "a b"}, 2, 3) : NULL;
    CHECK(x && x->shape[0] == 2 && x->shape[1] == 3 && gf_f32(x)[0] == 4 && gf_f32(x)[1] == 0 &&
          gf_f32(x)[3] == 2 && gf_f32(x)[4] == 3);
    gf_tensor_free(x);
    gf_text_vocab_free(v);
}

static void test_text_errors(void) {
    gf_text_params w = gf_text_default_params();
    gf_text_tokens t;
    gf_ctx_clear_error(ctx);
    CHECK(gf_text_tokens_of(ctx, &w, "ok\nab\xC3(", &t) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(ctx), "line 2: invalid UTF-8 at byte 5 (0xC3)") != NULL);
    const char *bad[] = {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82", "\xFF"};
    for (int i = 0; i < 5; i++) {
        gf_ctx_clear_error(ctx);
        CHECK(gf_text_tokens_of(ctx, &w, bad[i], &t) == GF_ERR_FORMAT);
        CHECK(gf_text_utf8_check(bad[i], strlen(bad[i])) == 0);
    }
    CHECK(gf_text_utf8_check("a\0b", 3) == 1);
    /* an empty vocabulary, a max_size with no room */
    const char *empty[] = {"", "   "};
    EXPECT_ERR(ctx, gf_text_vocab_build(ctx, &w, NULL, empty, 2, "train.jsonl"), GF_ERR_INVALID,
               "train.jsonl", "the vocabulary is empty");
    gf_text_vocab_params vp = gf_text_vocab_default_params();
    vp.min_count = 5;
    const char *once[] = {"a b c"};
    EXPECT_ERR(ctx, gf_text_vocab_build(ctx, &w, &vp, once, 1, "t"), GF_ERR_INVALID, "empty",
               "5 time(s)");
    vp = gf_text_vocab_default_params();
    vp.max_size = 2;
    EXPECT_ERR(ctx, gf_text_vocab_build(ctx, &w, &vp, once, 1, "t"), GF_ERR_INVALID, "max_size 2");
    vp = gf_text_vocab_default_params();
    vp.max_distinct = 2;
    EXPECT_ERR(ctx, gf_text_vocab_build(ctx, &w, &vp, once, 1, "t"), GF_ERR_FORMAT,
               "more than 2 distinct tokens");
    /* malformed vocabularies */
    const char *js[] = {"{", "[]", "{\"format\":\"graft.text\",\"version\":1,\"tokenizer\":\"x\",\"tokens\":[\"<pad>\",\"<unk>\"]}",
                        "{\"format\":\"graft.text\",\"version\":1,\"tokenizer\":\"word\",\"tokens\":[\"<unk>\",\"<pad>\"]}",
                        "{\"format\":\"graft.text\",\"version\":1,\"tokenizer\":\"word\",\"tokens\":[\"<pad>\",\"<unk>\",\"a\",\"a\"]}",
                        "{\"format\":\"graft.text\",\"version\":1,\"tokenizer\":\"word\",\"byte_fallback\":true,\"tokens\":[\"<pad>\",\"<unk>\",\"a\"]}"};
    for (int i = 0; i < 6; i++)
        EXPECT_ERR(ctx, gf_text_vocab_from_json(ctx, js[i], strlen(js[i]), "meta"), GF_ERR_FORMAT,
                   "meta", "malformed");
    int64_t ids[4];
    gf_ctx_clear_error(ctx);
    const char *a[] = {"a"};
    gf_text_vocab *v = gf_text_vocab_build(ctx, &w, NULL, a, 1, "t");
    CHECK(gf_text_encode(ctx, v, "a", 0, ids, NULL, "t") == GF_ERR_INVALID);
    gf_text_vocab_free(v);
}

/* ---- readers ----------------------------------------------------------------------------- */

static void test_readers(void) {
    gf_text_read_params rp = gf_text_read_default_params();
    gf_text_corpus c;
    CHECK(gf_text_read(ctx, fixture("reviews.jsonl"), &rp, &c) == GF_OK);
    CHECK(c.n == 20 && c.format == GF_TEXT_JSONL && strcmp(c.labels[0], "pos") == 0 &&
          strcmp(c.texts[1], "Terrible. It broke after 2 days...") == 0 && c.lines[19] == 20);
    gf_text_corpus_free(&c);
    /* a JSON array with the sentiment package's layout: "class" 0/1 and one entry without */
    rp.label_field = "class";
    gf_ctx_clear_error(ctx);
    CHECK(gf_text_read(ctx, fixture("reviews.json"), &rp, &c) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(ctx), "reviews.json: line 22: an entry without a label") != NULL);
    rp.unlabelled = GF_TEXT_UNLABELLED_SKIP;
    CHECK(gf_text_read(ctx, fixture("reviews.json"), &rp, &c) == GF_OK);
    CHECK(c.n == 20 && c.skipped == 1 && c.first_skipped_line == 22 &&
          strcmp(c.labels[0], "1") == 0 && strcmp(c.labels[1], "0") == 0 && c.lines[1] == 3);
    gf_text_corpus_free(&c);
    rp.unlabelled = GF_TEXT_UNLABELLED_KEEP;
    CHECK(gf_text_read(ctx, fixture("reviews.json"), &rp, &c) == GF_OK && c.n == 21 && !c.labels[20]);
    gf_text_corpus_free(&c);
    /* CSV and TSV: quotes, a comma and a line break inside a field, CRLF */
    const char *files[] = {"reviews.csv", "reviews.tsv"};
    for (int k = 0; k < 2; k++) {
        rp = gf_text_read_default_params();
        rp.text_field = "review";
        CHECK(gf_text_read(ctx, fixture(files[k]), &rp, &c) == GF_OK);
        CHECK(c.n == 21 && c.format == (k ? GF_TEXT_TSV : GF_TEXT_CSV) &&
              strcmp(c.texts[0], "Great phone, great battery!") == 0 &&
              strcmp(c.texts[20], "She said \"wow\",\nthen left") == 0 && c.lines[20] == 22 &&
              strcmp(c.labels[20], "pos") == 0);
        gf_text_corpus_free(&c);
    }
    rp = gf_text_read_default_params();
    EXPECT_ERR(ctx, (void *)(intptr_t)(gf_text_read(ctx, fixture("reviews.csv"), &rp, &c) == GF_OK),
               GF_ERR_FORMAT, "reviews.csv: line 1: the header has no column \"text\"");
    /* a quote inside an unquoted field is a character; after a closing quote, the rest joins */
    const char *q = "text,label\n5\" screen,x\n\"a\"b,y\n";
    CHECK(gf_text_parse(ctx, q, strlen(q), "q.csv", &rp, &c) == GF_OK);
    CHECK(c.n == 2 && strcmp(c.texts[0], "5\" screen") == 0 && strcmp(c.texts[1], "ab") == 0);
    gf_text_corpus_free(&c);
    /* numbers and booleans as labels; blank lines */
    const char *jl = "{\"text\":\"a\",\"label\":2}\n\n{\"text\":\"b\",\"label\":true}\r\n{\"text\":\"c\",\"label\":0.5}\n";
    CHECK(gf_text_parse(ctx, jl, strlen(jl), "x.jsonl", &rp, &c) == GF_OK);
    CHECK(c.n == 3 && strcmp(c.labels[0], "2") == 0 && strcmp(c.labels[1], "true") == 0 &&
          strcmp(c.labels[2], "0.5") == 0 && c.lines[2] == 4);
    gf_text_corpus_free(&c);
}

/* gf_text_parse of text fails with status and a message holding want. */
static void parse_fails(const char *name, const char *text, size_t len, const gf_text_read_params *rp,
                        gf_status status, const char *want) {
    gf_text_corpus c;
    gf_ctx_clear_error(ctx);
    const gf_status st = gf_text_parse(ctx, text, len, name, rp, &c);
    const bool ok = st == status && strstr(gf_ctx_error(ctx), want) && c.n == 0 && !c.texts;
    if (!ok) fprintf(stderr, "%s: status %d, '%s', expected '%s'\n", name, st, gf_ctx_error(ctx), want);
    CHECK(ok);
}

static void test_reader_errors(void) {
    gf_text_read_params rp = gf_text_read_default_params();
    const char *t;
#define FAILS(name, text, status, want) parse_fails(name, text, strlen(text), &rp, status, want)
    FAILS("a.jsonl", "{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"b\"}\n", GF_ERR_FORMAT,
          "a.jsonl: line 2: an entry without a label");
    FAILS("a.jsonl", "{\"label\":\"x\"}\n", GF_ERR_FORMAT, "a.jsonl: line 1: no text (key \"text\")");
    FAILS("a.jsonl", "{\"text\":3,\"label\":\"x\"}\n", GF_ERR_FORMAT, "the text is not a string");
    FAILS("a.jsonl", "{\"text\":\"a\",\"label\":[1]}\n", GF_ERR_FORMAT, "line 1: the label is not");
    FAILS("a.jsonl", "\n\n{\"text\":\"a\",\"label\":\"x\"\n", GF_ERR_FORMAT, "line 3: not valid JSON");
    FAILS("a.jsonl", "[1]\n", GF_ERR_FORMAT, "not a JSON object");
    FAILS("a.jsonl", "{\"text\":\"a\\u0000b\",\"label\":\"x\"}\n", GF_ERR_FORMAT, "a.jsonl: line 1 has an escaped NUL");
    FAILS("a.json", "[{\"text\":\"a\",\"label\":\"x\"},\n 7]", GF_ERR_FORMAT, "line 2: an element of the array is not");
    FAILS("a.json", "[{\"text\":\"a\",\"label\":\"x\"} {", GF_ERR_FORMAT, "expected ',' or ']'");
    FAILS("a.json", "[{\"text\":\"a\",\"label\":\"x\"}] x", GF_ERR_FORMAT, "text after the array");
    FAILS("a.json", "[{\"text\":\"a}", GF_ERR_FORMAT, "never ends");
    FAILS("a.json", "{}", GF_ERR_FORMAT, "not a JSON array");
    FAILS("a.csv", "text,label\n\"a,x\n", GF_ERR_FORMAT, "line 2: a quoted field never ends");
    FAILS("a.csv", "text,label\na,b,c\n", GF_ERR_FORMAT, "line 2: 3 fields, the header has 2");
    FAILS("a.csv", "text,label\na,\n", GF_ERR_FORMAT, "line 2: an empty label");
    FAILS("a.csv", "", GF_ERR_FORMAT, "no header line");
    FAILS("a.csv", "text,label\n5\" screen,x\n\"a\"b,\n", GF_ERR_FORMAT, "line 3: an empty label");
    /* invalid UTF-8 names the file, the line and the byte */
    t = "{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"b\xE9t\",\"label\":\"x\"}\n";
    FAILS("bad.jsonl", t, GF_ERR_FORMAT, "bad.jsonl: line 2: invalid UTF-8 at byte 35 (0xE9)");
    FAILS("bad.csv", "text,label\nok,x\nb\xC3,x\n", GF_ERR_FORMAT, "bad.csv: line 3: invalid UTF-8 at byte 17 (0xC3)");
    FAILS("bad.csv", "text,label\nok,x\nb\xF0\x9F", GF_ERR_FORMAT, "cut short");
    parse_fails("nul.csv", "text,label\na\0b,x\n", 17, &rp, GF_ERR_FORMAT, "line 2: a NUL byte at byte 12");
    /* limits */
    rp.max_examples = 2;
    FAILS("a.jsonl", "{\"text\":\"a\",\"label\":1}\n{\"text\":\"a\",\"label\":1}\n{\"text\":\"a\",\"label\":1}\n",
          GF_ERR_FORMAT, "line 3: more than 2 examples (limit max_examples)");
    rp = gf_text_read_default_params();
    rp.max_file_bytes = 10;
    FAILS("a.jsonl", "{\"text\":\"a\",\"label\":1}\n", GF_ERR_FORMAT, "limit data-bytes");
    rp = gf_text_read_default_params();
    rp.max_record_bytes = 16;
    FAILS("a.jsonl", "{\"text\":\"a\",\"label\":1}\n", GF_ERR_FORMAT, "line 1: a record longer than 16 bytes");
#undef FAILS
}

/* A line of 100 MB stops at the record limit (4 MiB) with an error, long before memory. */
static void test_huge_line(void) {
    char path[200];
    snprintf(path, sizeof path, "%s/huge.jsonl", work);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    char *chunk = malloc(1 << 20);
    memset(chunk, 'a', 1 << 20);
    fputs("{\"text\":\"", f);
    for (int i = 0; i < 100; i++) fwrite(chunk, 1, 1 << 20, f);
    fputs("\",\"label\":1}\n", f);
    fclose(f);
    free(chunk);
    gf_text_corpus c;
    gf_ctx_clear_error(ctx);
    CHECK(gf_text_read(ctx, path, NULL, &c) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(ctx), "huge.jsonl: line 1: a record longer than 4194304 bytes") != NULL);
    remove(path);
    /* and a file over the data-bytes limit is refused before it is read */
    gf_text_read_params rp = gf_text_read_default_params();
    rp.max_file_bytes = 5;
    gf_ctx_clear_error(ctx);
    CHECK(gf_text_read(ctx, fixture("reviews.jsonl"), &rp, &c) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(ctx), "bytes, more than 5 (limit data-bytes)") != NULL);
}

/* ---- the data spec ------------------------------------------------------------------------ */

static void test_spec(void) {
    char spec[1400];
    snprintf(spec, sizeof spec, "text:%s", fixture("reviews.jsonl"));
    CHECK(strcmp(gf_ds_spec_kind(spec), "text") == 0);
    gf_ds_open_params p = gf_ds_open_default_params();
    p.test_fraction = 0.25;
    p.val_fraction = 0.25;
    p.seed = 3;
    gf_ds_parts parts;
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_OK);
    if (!parts.train) {
        fprintf(stderr, "%s\n", gf_ctx_error(ctx));
        return;
    }
    CHECK(strcmp(parts.kind, "text") == 0 && parts.n_classes == 2 &&
          strcmp(parts.class_names[0], "neg") == 0 && strcmp(parts.class_names[1], "pos") == 0);
    CHECK(gf_ds_count(parts.train) == 10 && gf_ds_count(parts.val) == 5 && gf_ds_count(parts.test) == 5);
    int64_t counts[2];
    CHECK(gf_ds_class_counts(ctx, parts.train, counts) == GF_OK && counts[0] + counts[1] == 10 &&
          counts[0] >= 4 && counts[1] >= 4); /* stratified: the classes are 10 and 10 */
    /* the vocabulary is the training part's alone, and each sample is its text encoded */
    gf_text_corpus c;
    CHECK(gf_text_read(ctx, fixture("reviews.jsonl"), NULL, &c) == GF_OK);
    const int64_t ntr = gf_ds_count(parts.train), T = parts.shape[0];
    const char **tr = malloc(sizeof *tr * (size_t)ntr);
    int64_t longest = 0, nt, ids[300];
    for (int64_t i = 0; i < ntr; i++) tr[i] = c.texts[gf_ds_source_index(parts.train, i)];
    gf_text_vocab *v = gf_text_vocab_build(ctx, NULL, NULL, tr, ntr, "train");
    CHECK(v && parts.vocab && gf_text_vocab_size(v) == gf_text_vocab_size(parts.vocab));
    for (int64_t i = 0; v && i < gf_text_vocab_size(v); i++)
        CHECK(strcmp(gf_text_vocab_token(v, i), gf_text_vocab_token(parts.vocab, i)) == 0);
    for (int64_t i = 0; i < ntr; i++) {
        CHECK(gf_text_encode(ctx, v, tr[i], 1, ids, &nt, "t") == GF_OK);
        if (nt > longest) longest = nt;
    }
    CHECK(parts.ndim == 1 && T == longest);
    gf_ds *const all[3] = {parts.train, parts.val, parts.test};
    float x[300];
    int64_t y;
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < gf_ds_count(all[k]); i++) {
            const int64_t src = gf_ds_source_index(all[k], i);
            CHECK(gf_ds_read(all[k], &i, 1, x, &y, NULL, 0) == GF_OK);
            CHECK(gf_text_encode(ctx, parts.vocab, c.texts[src], T, ids, NULL, "t") == GF_OK);
            bool same = strcmp(parts.class_names[y], c.labels[src]) == 0;
            for (int64_t t = 0; t < T; t++) same = same && x[t] == (float)ids[t];
            CHECK(same);
        }
    free(tr);
    gf_text_vocab_free(v);
    /* a given length and vocabulary; evaluation without a training part */
    gf_text_vocab *keep = gf_text_vocab_retain(parts.vocab);
    gf_ds_parts_free(&parts);
    p = gf_ds_open_default_params();
    p.vocab = keep;
    p.max_len = 5;
    p.test_fraction = 1.0;
    p.allow_empty_train = true;
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_OK && !parts.train && parts.shape[0] == 5 &&
          gf_ds_count(parts.test) == 20 && parts.vocab == keep);
    gf_ds_parts_free(&parts);
    gf_text_vocab_free(keep);
    gf_text_corpus_free(&c);
}

static void test_spec_options(void) {
    char spec[1400];
    snprintf(spec, sizeof spec, "text:%s", fixture("reviews.json"));
    gf_ds_open_params p = gf_ds_open_default_params();
    p.label_column = "class";
    gf_ds_parts parts;
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(ctx), "line 22: an entry without a label") != NULL);
    p.skip_unlabelled = true;
    p.tokenizer = GF_TEXT_CHAR;
    p.lowercase = true;
    p.min_count = 2;
    p.max_vocab = 20;
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_OK);
    CHECK(parts.text_skipped == 1 && parts.n_classes == 2 && strcmp(parts.class_names[1], "1") == 0 &&
          gf_text_vocab_size(parts.vocab) == 20 &&
          gf_text_vocab_text_params(parts.vocab).tokenizer == GF_TEXT_CHAR && parts.shape[0] <= 256);
    gf_ds_parts_free(&parts);
    /* CSV with a text column of another name; classes and per_class */
    snprintf(spec, sizeof spec, "text:%s", fixture("reviews.csv"));
    p = gf_ds_open_default_params();
    p.text_column = "review";
    p.classes = "pos";
    p.max_len = 7;
    p.test_fraction = 0.3;
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_OK);
    CHECK(parts.n_classes == 1 && parts.shape[0] == 7 && gf_ds_count(parts.train) + gf_ds_count(parts.test) == 11);
    gf_ds_parts_free(&parts);
}

/* gf_ds_check_spec refuses with a message holding want. */
static void refused(const char *spec, const gf_ds_open_params *p, const char *want) {
    gf_ctx_clear_error(ctx);
    const gf_status st = gf_ds_check_spec(ctx, spec, p);
    const bool ok = st == GF_ERR_INVALID && strstr(gf_ctx_error(ctx), want);
    if (!ok) fprintf(stderr, "%s: '%s', expected '%s'\n", spec, gf_ctx_error(ctx), want);
    CHECK(ok);
}

static void test_spec_errors(void) {
    char spec[1400], csv[1400];
    snprintf(spec, sizeof spec, "text:%s", fixture("reviews.jsonl"));
    snprintf(csv, sizeof csv, "csv:%s", fixture("reviews.csv"));
    gf_ds_open_params p = gf_ds_open_default_params();
    p.max_len = (int64_t)1 << 40;
    refused(spec, &p, "max_len 1099511627776 in [0, 1048576]");
    p = gf_ds_open_default_params();
    p.max_vocab = -1;
    refused(spec, &p, "a text setting out of range");
    p = gf_ds_open_default_params();
    p.tokenizer = (gf_text_tokenizer)7;
    refused(spec, &p, "tokenizer 7");
    p = gf_ds_open_default_params();
    p.normalize = GF_DS_NORMALIZE_STANDARD;
    refused(spec, &p, "normalize and augment do not apply");
    p = gf_ds_open_default_params();
    p.lowercase = true;
    refused(csv, &p, "apply to text: data");
    refused("text:/nonexistent/x.jsonl", NULL, "No such file");
    p = gf_ds_open_default_params();
    p.label_column = "nope";
    gf_ds_parts parts;
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_ERR_FORMAT &&
          strstr(gf_ctx_error(ctx), "line 1: an entry without a label"));
    /* a file of empty texts has an empty vocabulary */
    const char *jl = "{\"text\":\"\",\"label\":\"a\"}\n{\"text\":\" \",\"label\":\"b\"}\n"
                     "{\"text\":\"\",\"label\":\"a\"}\n{\"text\":\" \",\"label\":\"b\"}\n";
    snprintf(spec, sizeof spec, "text:%s", scratch("empty.jsonl", jl, strlen(jl)));
    p = gf_ds_open_default_params();
    p.test_fraction = 0.5;
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_ERR_INVALID &&
          strstr(gf_ctx_error(ctx), "(training part): the vocabulary is empty"));
}

/* ---- word vectors ------------------------------------------------------------------------- */

static void test_vectors(void) {
    gf_text_vectors *vec = gf_text_vectors_load(ctx, fixture("vectors.txt"), NULL);
    CHECK(vec && gf_text_vectors_count(vec) == 7 && gf_text_vectors_dim(vec) == 4);
    const float *g = gf_text_vectors_get(vec, "great");
    CHECK(g && g[0] == 0.5f && g[1] == -1.0f && g[3] == 2.0f); /* the first of two kept */
    CHECK(gf_text_vectors_get(vec, "Great") == NULL && strcmp(gf_text_vectors_word(vec, 4), ",") == 0);
    /* coverage and the filled weight against the Python reading */
    int n;
    const char **texts = ref_texts(&n);
    gf_text_vocab *v = gf_text_vocab_build(ctx, NULL, NULL, texts, 14, "ref");
    const cJSON *cov = cJSON_GetObjectItem(ref, "coverage");
    const int64_t V = gf_text_vocab_size(v);
    gf_module *emb = gf_nn_embedding(ctx, NULL, V, 4, 0);
    gf_tensor *w = gf_module_tensor(ctx, emb, "weight");
    memset(gf_f32(w), 0, sizeof(float) * (size_t)(V * 4));
    gf_text_coverage c;
    CHECK(gf_text_vectors_fill_module(ctx, vec, v, emb, &c) == GF_OK);
#define COV(f) CHECK(c.f == (int64_t)cJSON_GetObjectItem(cov, #f)->valuedouble)
    COV(vocab_size);
    COV(words);
    COV(found);
    COV(found_lower);
    COV(train_tokens);
    COV(covered_tokens);
#undef COV
    const cJSON *want = cJSON_GetObjectItem(cov, "weight");
    bool same = cJSON_GetArraySize(want) == V;
    for (int64_t i = 0; same && i < V; i++)
        for (int j = 0; j < 4; j++)
            same = same && gf_f32(w)[i * 4 + j] == (float)cJSON_GetArrayItem(cJSON_GetArrayItem(want, (int)i), j)->valuedouble;
    CHECK(same);
    /* only the words the vocabulary can use */
    gf_text_vectors_params vp = gf_text_vectors_default_params();
    vp.only = v;
    gf_text_vectors *few = gf_text_vectors_load(ctx, fixture("vectors.txt"), &vp);
    CHECK(few && gf_text_vectors_count(few) == 6 && gf_text_vectors_get(few, "awful") &&
          !gf_text_vectors_get(few, "zebra"));
    gf_text_vectors_free(few);
    /* a weight of the wrong shape */
    gf_tensor *small = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){3, 3});
    gf_ctx_clear_error(ctx);
    CHECK(gf_text_vectors_fill(ctx, vec, v, small, NULL) == GF_ERR_SHAPE &&
          strstr(gf_ctx_error(ctx), "found float32 [3, 3]"));
    gf_tensor_free(small);
    gf_module_free(emb);
    gf_text_vocab_free(v);
    gf_text_vectors_free(vec);
    free(texts);
}

static void vectors_fail(const char *text, const gf_text_vectors_params *p, const char *want) {
    gf_ctx_clear_error(ctx);
    gf_text_vectors *v = gf_text_vectors_parse(ctx, text, strlen(text), "g.txt", p);
    const bool ok = !v && strstr(gf_ctx_error(ctx), want);
    if (!ok) fprintf(stderr, "vectors '%s': '%s', expected '%s'\n", text, gf_ctx_error(ctx), want);
    CHECK(ok);
    gf_text_vectors_free(v);
}

static void test_vector_errors(void) {
    gf_text_vectors_params p = gf_text_vectors_default_params();
    vectors_fail("a 1 2\nb 3\n", &p, "g.txt: line 2: 1 values, the first line has 2");
    vectors_fail("a 1 nan\n", &p, "line 1: a value that is not a finite number: nan");
    vectors_fail("a 1 x2\n", &p, "not a finite number: x2");
    vectors_fail("a 1 2\n1 2\n", &p, "line 2: 1 values");
    vectors_fail("", &p, "no word vectors");
    vectors_fail("a\n", &p, "a word without values");
    vectors_fail("a 1\nb\xFF 2\n", &p, "line 2: invalid UTF-8 at byte 1 of the line");
    p.max_words = 1;
    vectors_fail("a 1\nb 2\n", &p, "more than 1 words (limit max_words)");
    p = gf_text_vectors_default_params();
    p.max_dim = 2;
    vectors_fail("a 1 2 3\n", &p, "limit max_dim");
    p = gf_text_vectors_default_params();
    p.max_record_bytes = 8;
    vectors_fail("abc 1.0 2.0 3.0\n", &p, "line 1: longer than 8 bytes");
    /* word2vec's first line, CRLF and a word with a space (GloVe 840B) */
    const char *ok = "2 2\r\nhello 1 2\r\nnew york 3 4\r\n";
    gf_text_vectors *v = gf_text_vectors_parse(ctx, ok, strlen(ok), "w.txt", NULL);
    CHECK(v && gf_text_vectors_count(v) == 2 && gf_text_vectors_get(v, "new york") &&
          gf_text_vectors_get(v, "new york")[1] == 4.0f);
    gf_text_vectors_free(v);
}

/* ---- a trained model's bundle keeps the vocabulary ----------------------------------------- */

static void test_bundle(void) {
    char spec[1400], out[200];
    snprintf(spec, sizeof spec, "text:%s", fixture("reviews.jsonl"));
    snprintf(out, sizeof out, "%s/model.safetensors", work);
    gf_ds_open_params p = gf_ds_open_default_params();
    p.byte_fallback = true;
    p.lowercase = true;
    gf_ds_parts parts;
    gf_ctx_clear_error(ctx);
    CHECK(gf_ds_open(ctx, spec, &p, &parts) == GF_OK);
    gf_bundle *b = gf_bundle_new(ctx, &parts, NULL, NULL);
    CHECK(b && b->info.vocab == parts.vocab && gf_bundle_save(ctx, b, out, NULL, 0) == GF_OK);
    gf_bundle *back = gf_bundle_load(ctx, out, NULL);
    CHECK(back && back->info.vocab && back->info.in_shape[0] == parts.shape[0]);
    if (back && back->info.vocab) {
        const gf_text_params q = gf_text_vocab_text_params(back->info.vocab);
        CHECK(q.byte_fallback && q.lowercase && q.tokenizer == GF_TEXT_WORD &&
              gf_text_vocab_size(back->info.vocab) == gf_text_vocab_size(parts.vocab));
        const char *texts[] = {"GREAT battery \xC3\xBC" "ber", "meh"};
        gf_tensor *x = gf_bundle_read_texts(ctx, back, texts, 2);
        int64_t ids[300];
        CHECK(x && gf_text_encode(ctx, parts.vocab, texts[0], parts.shape[0], ids, NULL, "t") == GF_OK);
        bool same = x != NULL;
        for (int64_t t = 0; same && t < parts.shape[0]; t++) same = gf_f32(x)[t] == (float)ids[t];
        CHECK(same);
        gf_tensor_free(x);
        /* a .txt file, one text per line */
        int64_t *lines = NULL;
        const char *txt = scratch("new.txt", "great battery\n\nawful\r\n", 22);
        x = gf_bundle_read(ctx, back, txt, &lines);
        CHECK(x && x->shape[0] == 2 && lines && lines[0] == 1 && lines[1] == 3);
        gf_tensor_free(x);
        free(lines);
    }
    gf_bundle_free(back);
    gf_bundle_free(b);
    gf_ds_parts_free(&parts);
    /* a malformed graft.text is an error naming the file and the key */
    gf_ctx_clear_error(ctx);
    gf_bundle_info info;
    memset(&info, 0, sizeof info);
    CHECK(gf_bundle_info_load(ctx, out, &info) == GF_OK && info.vocab);
    gf_bundle_info_free(&info);
}

int main(void) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/tests/fixtures/text", src ? src : ".");
    snprintf(work, sizeof work, "/tmp/graft_text_XXXXXX");
    if (!mkdtemp(work)) return 1;
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    ctx = gf_ctx_new(&cp);
    ref = test_read_json(fixture("text_ref.json"));
    if (!ctx || !ref) return 1;
    test_tokens_ref();
    test_vocab_ref();
    test_tokenizer_cases();
    test_text_errors();
    test_readers();
    test_reader_errors();
    test_huge_line();
    test_spec();
    test_spec_options();
    test_spec_errors();
    test_vectors();
    test_vector_errors();
    test_bundle();
    cJSON_Delete(ref);
    gf_ctx_free(ctx);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", work);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", work);
    return test_finish("test_text");
}
