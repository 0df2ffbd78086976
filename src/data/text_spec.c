/* The data spec text:FILE (dataspec.h): the file's labelled texts become a labels-only pool
 * that the usual cuts (classes, stratified split, per-class, limits) run on; then the
 * vocabulary of the training part is built and every part becomes a view of the encoded
 * examples, with the same examples, labels and source indices as the cut made. */
#define _POSIX_C_SOURCE 200809L
#include "core/internal.h"
#include "data/text_internal.h"
#include "graft/split.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gf_text_source {
    gf_text_corpus corpus;
    int64_t *labels; /* [n] class of each entry (tagged: 0, one class for the cuts) */
    int64_t *tag_ids; /* tagged: the tags' classes, entry i's from tag_off[i] */
    int64_t *tag_off; /* [n] */
    int n_classes;
    char **class_names;
    char *path;
};

void gf_text_source_free(gf_text_source *s) {
    if (!s) return;
    gf_text_corpus_free(&s->corpus);
    free(s->labels);
    free(s->tag_ids);
    free(s->tag_off);
    for (int k = 0; s->class_names && k < s->n_classes; k++) free(s->class_names[k]);
    free(s->class_names);
    free(s->path);
    free(s);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The classes: the distinct labels in byte order, and each entry's index among them. */
static gf_status classes_of(gf_ctx *ctx, gf_text_source *s) {
    const gf_text_corpus *c = &s->corpus;
    gf_text_map m;
    const char **distinct = malloc(sizeof *distinct * (size_t)(c->n ? c->n : 1));
    s->labels = malloc(sizeof *s->labels * (size_t)(c->n ? c->n : 1));
    if (!distinct || !s->labels || !gf_text_map_init(&m, 64)) {
        free(distinct);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", s->path);
    }
    int64_t k = 0;
    gf_status st = GF_OK;
    for (int64_t i = 0; i < c->n && st == GF_OK; i++) {
        bool added;
        if (gf_text_map_put(&m, c->labels[i], strlen(c->labels[i]), k, &added) < 0)
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", s->path);
        else if (added) distinct[k++] = c->labels[i];
        if (k > gf_ctx_limits(ctx)->classes)
            st = gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: line %lld: more than %lld distinct "
                                  "labels (limit classes)", s->path, (long long)c->lines[i],
                                  (long long)gf_ctx_limits(ctx)->classes);
    }
    if (st == GF_OK) qsort(distinct, (size_t)k, sizeof *distinct, cmp_str);
    gf_text_map_free(&m);
    if (st == GF_OK && !(s->class_names = calloc((size_t)(k ? k : 1), sizeof *s->class_names)))
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", s->path);
    if (st == GF_OK) s->n_classes = (int)k;
    for (int64_t j = 0; st == GF_OK && j < k; j++)
        if (!(s->class_names[j] = malloc(strlen(distinct[j]) + 1)))
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", s->path);
        else
            memcpy(s->class_names[j], distinct[j], strlen(distinct[j]) + 1);
    for (int64_t i = 0; st == GF_OK && i < c->n; i++) { /* k is small: a binary search */
        const char *const *hit = bsearch(&c->labels[i], s->class_names, (size_t)k,
                                         sizeof *s->class_names, cmp_str);
        s->labels[i] = hit - (const char *const *)s->class_names;
    }
    free(distinct);
    return st;
}

/* The class names: copies of the n names. */
static gf_status set_class_names(gf_ctx *ctx, gf_text_source *s, const char *const *names,
                                 int64_t n) {
    if (!(s->class_names = calloc((size_t)(n ? n : 1), sizeof *s->class_names)))
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", s->path);
    s->n_classes = (int)n;
    for (int64_t j = 0; j < n; j++)
        if (!(s->class_names[j] = malloc(strlen(names[j]) + 1)))
            return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", s->path);
        else
            memcpy(s->class_names[j], names[j], strlen(names[j]) + 1);
    return GF_OK;
}

/* The distinct tags of every entry (tags[i] holds n_tags[i] back to back) in byte order. */
static gf_status file_tags(gf_ctx *ctx, gf_text_source *s) {
    const gf_text_corpus *c = &s->corpus;
    gf_text_map m;
    if (!gf_text_map_init(&m, 64)) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    const int64_t lim = gf_ctx_limits(ctx)->classes;
    gf_status st = GF_OK;
    for (int64_t i = 0; i < c->n && st == GF_OK; i++) {
        const char *t = c->tags[i];
        for (int64_t j = 0; j < c->n_tags[i] && st == GF_OK; j++, t += strlen(t) + 1) {
            bool added;
            if (gf_text_map_put(&m, t, strlen(t), m.n, &added) < 0)
                st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", s->path);
            else if (m.n > lim)
                st = gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: line %lld: more than %lld "
                                      "distinct tags (limit classes)", s->path,
                                      (long long)c->lines[i], (long long)lim);
        }
    }
    const char **names = st == GF_OK ? malloc(sizeof *names * (size_t)(m.n ? m.n : 1)) : NULL;
    if (st == GF_OK && !names) st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    for (int64_t k = 0, j = 0; st == GF_OK && k < m.cap; k++)
        if (m.keys[k]) names[j++] = m.keys[k];
    if (st == GF_OK) {
        qsort(names, (size_t)m.n, sizeof *names, cmp_str);
        st = set_class_names(ctx, s, names, m.n);
    }
    free(names);
    gf_text_map_free(&m);
    return st;
}

/* Tagged entries: the classes (the given tags, else the file's) and every tag's class. */
static gf_status tag_classes_of(gf_ctx *ctx, gf_text_source *s, const gf_ds_open_params *p) {
    const gf_text_corpus *c = &s->corpus;
    gf_status st = p->tag_names ? set_class_names(ctx, s, p->tag_names, p->n_tag_names)
                                : file_tags(ctx, s);
    int64_t total = 0;
    for (int64_t i = 0; i < c->n; i++) total += c->n_tags[i];
    gf_text_map m;
    s->tag_ids = malloc(sizeof *s->tag_ids * (size_t)(total ? total : 1));
    s->tag_off = malloc(sizeof *s->tag_off * (size_t)(c->n ? c->n : 1));
    s->labels = calloc((size_t)(c->n ? c->n : 1), sizeof *s->labels);
    if (st != GF_OK) return st;
    if (!s->tag_ids || !s->tag_off || !s->labels || !gf_text_map_init(&m, s->n_classes))
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", s->path);
    for (int k = 0; k < s->n_classes && st == GF_OK; k++) {
        bool added;
        if (gf_text_map_put(&m, s->class_names[k], strlen(s->class_names[k]), k, &added) < 0)
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", s->path);
    }
    for (int64_t i = 0, o = 0; i < c->n && st == GF_OK; i++) {
        s->tag_off[i] = o;
        const char *t = c->tags[i];
        for (int64_t j = 0; j < c->n_tags[i] && st == GF_OK; j++, t += strlen(t) + 1) {
            if ((s->tag_ids[o++] = gf_text_map_get(&m, t, strlen(t))) < 0)
                st = gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: line %lld: tag %lld \"%.60s\" is "
                                      "not among the model's %d tags", s->path,
                                      (long long)c->lines[i], (long long)j + 1, t, s->n_classes);
        }
    }
    gf_text_map_free(&m);
    return st;
}

/* What tagged text cannot take: a choice of classes, and byte fallback (a word spelled as
 * several ids would no longer line up with its tag). */
static gf_status tagged_settings(gf_ctx *ctx, const char *path, const gf_ds_open_params *p) {
    const bool bytes = p->vocab ? gf_text_vocab_text_params(p->vocab).byte_fallback
                                : p->byte_fallback;
    if (p->classes)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: tagged text (per-step labels): "
                                "classes applies to one label per text", path);
    if (bytes)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: tagged text (per-step labels): byte "
                                "fallback spells a word as several ids, which its one tag "
                                "would no longer line up with", path);
    return GF_OK;
}

gf_status gf_text_spec_load(gf_ctx *ctx, const char *path, const gf_ds_open_params *p,
                            gf_ds **pool, gf_text_source **out) {
    gf_text_source *s = calloc(1, sizeof *s);
    if (!s || !(s->path = malloc(strlen(path) + 1))) {
        free(s);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(s->path, path, strlen(path) + 1);
    *out = s;
    gf_text_read_params rp = gf_text_read_default_params();
    rp.text_field = p->text_column;
    rp.label_field = p->label_column;
    rp.unlabelled = p->skip_unlabelled ? GF_TEXT_UNLABELLED_SKIP : GF_TEXT_UNLABELLED_ERROR;
    gf_status st = gf_text_read(ctx, path, &rp, &s->corpus);
    if (st == GF_OK && s->corpus.n == 0)
        st = gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: no labelled examples (%lld skipped)", path,
                              (long long)s->corpus.skipped);
    const bool tagged = st == GF_OK && s->corpus.tagged;
    if (st == GF_OK && tagged && (st = tagged_settings(ctx, path, p)) == GF_OK)
        st = tag_classes_of(ctx, s, p);
    else if (st == GF_OK && !tagged)
        st = classes_of(ctx, s);
    if (st != GF_OK) return st;
    float *zeros = calloc((size_t)s->corpus.n, sizeof *zeros); /* samples come later */
    if (!zeros) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
    char name[300];
    snprintf(name, sizeof name, "text %s", path);
    /* tagged: one class for the cuts, so the split is a seeded random one */
    static const char *const one[] = {"tagged"};
    gf_ds_desc d = {.ndim = 1, .shape = {1}, .n = s->corpus.n, .x_f32 = zeros,
                    .labels = s->labels, .n_classes = tagged ? 1 : s->n_classes,
                    .class_names = tagged ? one : (const char *const *)s->class_names,
                    .name = name};
    *pool = gf_ds_from_memory(ctx, &d);
    free(zeros);
    return *pool ? GF_OK : gf_ctx_status(ctx);
}

/* The texts of part (by source index), borrowed from s. */
static const char **part_texts(const gf_text_source *s, const gf_ds *part, int64_t *n) {
    *n = gf_ds_count(part);
    const char **t = malloc(sizeof *t * (size_t)(*n ? *n : 1));
    for (int64_t i = 0; t && i < *n; i++) t[i] = s->corpus.texts[gf_ds_source_index(part, i)];
    return t;
}

/* T: max_len, else the longest training example in tokens (byte fallback included), capped
 * at 256; without a training part, max_len must be given. */
static gf_status sample_length(gf_ctx *ctx, const gf_ds_open_params *p, const gf_text_source *s,
                               const gf_text_vocab *v, const gf_ds *train, int64_t *T) {
    if (p->max_len > 0) {
        *T = p->max_len;
        return GF_OK;
    }
    if (!train)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: without a training part the sample "
                                "length must be given (max_len)", s->path);
    int64_t longest = 1, one, n;
    for (int64_t i = 0; i < gf_ds_count(train); i++) {
        const int64_t j = gf_ds_source_index(train, i);
        char where[300];
        snprintf(where, sizeof where, "%s: line %lld", s->path, (long long)s->corpus.lines[j]);
        if (gf_text_encode(ctx, v, s->corpus.texts[j], 1, &one, &n, where) != GF_OK)
            return gf_ctx_status(ctx);
        if (n > longest) longest = n;
    }
    *T = longest < 256 ? longest : 256;
    return GF_OK;
}

/* Entry i's tags as the labels of its first T steps, GF_DS_IGNORE_LABEL after its n_tok
 * tokens; false with an error when the tokeniser found another number of tokens. */
static bool step_labels(gf_ctx *ctx, const gf_text_source *s, const gf_text_vocab *v, int64_t i,
                        int64_t n_tok, int64_t T, int64_t *out) {
    const int64_t n_tags = s->corpus.n_tags[i];
    if (n_tok != n_tags) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: line %lld: %lld tags but the %s tokeniser "
                         "finds %lld tokens in the text (one tag per token)", s->path,
                         (long long)s->corpus.lines[i], (long long)n_tags,
                         gf_text_tokenizer_name(gf_text_vocab_text_params(v).tokenizer),
                         (long long)n_tok);
        return false;
    }
    for (int64_t t = 0; t < T; t++)
        out[t] = t < n_tags ? s->tag_ids[s->tag_off[i] + t] : GF_DS_IGNORE_LABEL;
    return true;
}

/* Every entry encoded: a dataset [n, T] with the entries' labels (tagged: per-step). */
static gf_ds *encode_all(gf_ctx *ctx, const gf_text_source *s, const gf_text_vocab *v, int64_t T) {
    const int64_t n = s->corpus.n;
    if ((double)n * (double)T * sizeof(float) > (double)gf_ctx_limits(ctx)->data_bytes) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %lld examples of %lld tokens take more than "
                         "%lld bytes (limit data-bytes)", s->path, (long long)n, (long long)T,
                         (long long)gf_ctx_limits(ctx)->data_bytes);
        return NULL;
    }
    const bool tagged = s->corpus.tagged;
    float *x = malloc(sizeof *x * (size_t)(n * T));
    int64_t *ids = malloc(sizeof *ids * (size_t)T);
    int64_t *steps = tagged ? malloc(sizeof *steps * (size_t)(n * T)) : NULL;
    gf_ds *ds = NULL;
    if (!x || !ids || (tagged && !steps)) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory encoding", s->path);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        char where[300];
        int64_t n_tok;
        snprintf(where, sizeof where, "%s: line %lld", s->path, (long long)s->corpus.lines[i]);
        if (gf_text_encode(ctx, v, s->corpus.texts[i], T, ids, tagged ? &n_tok : NULL, where) !=
            GF_OK)
            goto done;
        for (int64_t t = 0; t < T; t++) x[i * T + t] = (float)ids[t];
        if (tagged && !step_labels(ctx, s, v, i, n_tok, T, steps + i * T)) goto done;
    }
    char name[300];
    snprintf(name, sizeof name, "text %s", s->path);
    gf_ds_desc d = {.ndim = 1, .shape = {T}, .n = n, .x_f32 = x,
                    .labels = tagged ? steps : s->labels, .n_classes = s->n_classes,
                    .class_names = (const char *const *)s->class_names, .name = name,
                    .label_steps = tagged ? T : 0};
    ds = gf_ds_from_memory(ctx, &d);
done:
    free(x);
    free(ids);
    free(steps);
    return ds;
}

/* The part as the same examples of enc (and the same classes). */
static gf_status rebase(gf_ctx *ctx, const gf_ds_open_params *p, gf_ds *enc, gf_ds **part) {
    const bool tagged = gf_ds_label_steps(enc) > 0; /* the cuts saw one class */
    if (!*part) return GF_OK;
    const int64_t n = gf_ds_count(*part);
    int64_t *idx = malloc(sizeof *idx * (size_t)(n ? n : 1));
    if (!idx) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) idx[i] = gf_ds_source_index(*part, i);
    gf_ds *v = gf_split_indices(ctx, enc, idx, n);
    free(idx);
    if (v && p->classes) {
        gf_ds *c = gf_split_classes(ctx, v, p->classes);
        gf_ds_free(v);
        v = c;
    }
    if (!v) return gf_ctx_status(ctx);
    for (int64_t i = 0; i < n && !tagged; i++)
        if (gf_ds_label(v, i) != gf_ds_label(*part, i)) { /* an invariant of the cuts */
            gf_ds_free(v);
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "text: example %lld changed its label "
                                    "when encoded", (long long)i);
        }
    gf_ds_free(*part);
    *part = v;
    return GF_OK;
}

/* v (consumed) with the vectors' words after its own. */
static gf_text_vocab *with_vectors_words(gf_ctx *ctx, gf_text_vocab *v, const gf_text_vectors *vec,
                                         int64_t max_size) {
    const int64_t n = gf_text_vectors_count(vec);
    const char **words = malloc(sizeof *words * (size_t)(n > 0 ? n : 1));
    gf_text_vocab *e = NULL;
    if (!words) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "vocabulary: out of memory");
    for (int64_t i = 0; words && i < n; i++) words[i] = gf_text_vectors_word(vec, i);
    if (words) e = gf_text_vocab_extend(ctx, v, words, n, max_size);
    free(words);
    gf_text_vocab_free(v);
    return e;
}

gf_status gf_text_spec_encode(gf_ctx *ctx, const gf_ds_open_params *p, gf_text_source *s,
                              gf_ds_parts *out) {
    gf_text_vocab *v = NULL;
    out->text_skipped = s->corpus.skipped;
    if (p->vocab) {
        v = gf_text_vocab_retain((gf_text_vocab *)p->vocab);
    } else if (out->train) {
        gf_text_params tp = gf_text_default_params();
        tp.tokenizer = p->tokenizer;
        tp.lowercase = p->lowercase;
        tp.byte_fallback = p->byte_fallback;
        gf_text_vocab_params vp = gf_text_vocab_default_params();
        vp.min_count = p->min_count > 0 ? p->min_count : 1;
        vp.max_size = p->max_vocab;
        int64_t n;
        const char **texts = part_texts(s, out->train, &n);
        if (!texts) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", s->path);
        char name[300];
        snprintf(name, sizeof name, "%s (training part)", s->path);
        v = gf_text_vocab_build(ctx, &tp, &vp, texts, n, name);
        free(texts);
        if (v && p->vocab_vectors) v = with_vectors_words(ctx, v, p->vocab_vectors, p->max_vocab);
    } else {
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: without a training part the vocabulary "
                                "must be given (a trained model's)", s->path);
    }
    if (!v) return gf_ctx_status(ctx);
    out->vocab = v;
    int64_t T = 0;
    gf_status st = sample_length(ctx, p, s, v, out->train, &T);
    gf_ds *enc = st == GF_OK ? encode_all(ctx, s, v, T) : NULL;
    if (!enc) return gf_ctx_status(ctx);
    if ((st = rebase(ctx, p, enc, &out->train)) == GF_OK &&
        (st = rebase(ctx, p, enc, &out->val)) == GF_OK)
        st = rebase(ctx, p, enc, &out->test);
    out->label_steps = gf_ds_label_steps(enc);
    gf_ds_free(enc);
    return st;
}

gf_status gf_text_spec_check(gf_ctx *ctx, const char *spec, const gf_ds_open_params *p,
                             bool is_text) {
    const bool any = p->text_column || p->tokenizer != GF_TEXT_WORD || p->lowercase ||
                     p->byte_fallback || p->min_count || p->max_vocab || p->max_len ||
                     p->skip_unlabelled || p->vocab;
    if (!is_text)
        return any ? gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                      "data spec %s: text_column, tokenizer, lowercase, "
                                      "byte_fallback, min_count, max_vocab, max_len, "
                                      "skip_unlabelled and vocab apply to text: data", spec)
                   : GF_OK;
    if ((unsigned)p->tokenizer > GF_TEXT_BYTE || p->min_count < 0 || p->max_vocab < 0 ||
        p->max_vocab > GF_TEXT_MAX_VOCAB || p->max_len < 0 || p->max_len > GF_TEXT_MAX_LEN)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "data spec %s: a text setting out of range (tokenizer %d, "
                                "min_count %lld >= 0, max_vocab %lld in [0, %lld], max_len %lld "
                                "in [0, %lld])", spec, (int)p->tokenizer, (long long)p->min_count,
                                (long long)p->max_vocab, (long long)GF_TEXT_MAX_VOCAB,
                                (long long)p->max_len, (long long)GF_TEXT_MAX_LEN);
    if (p->normalize == GF_DS_NORMALIZE_STANDARD || p->augment)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "data spec %s: text: samples are token ids; "
                                "normalize and augment do not apply", spec);
    if (p->features)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "data spec %s: features applies to csv: "
                                "data; text: has text_column", spec);
    return GF_OK;
}
