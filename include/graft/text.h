/* graft text: tokenisers (words, Unicode characters, UTF-8 bytes, with byte fallback), the
 * vocabulary of a training text (PyTorch/torchtext's order), encoding to padded token ids,
 * readers of labelled text (JSON arrays, JSON lines, CSV and TSV) and pretrained word vectors
 * in GloVe's text format. The data spec `text:FILE` (dataspec.h) is built from these. */
#ifndef GRAFT_TEXT_H
#define GRAFT_TEXT_H

#include "graft/nn.h"
#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The ids every vocabulary starts with. Sequences are right-padded with GF_TEXT_PAD. */
enum { GF_TEXT_PAD = 0, GF_TEXT_UNK = 1 };

/* Limits that apply unless a call's parameters give others (0 there means these). */
#define GF_TEXT_MAX_RECORD_BYTES ((int64_t)4 << 20) /* one line, JSON object or CSV record */
#define GF_TEXT_MAX_EXAMPLES ((int64_t)1 << 24)     /* examples of one file */
#define GF_TEXT_MAX_VOCAB ((int64_t)1 << 22)        /* distinct tokens counted, words of vectors */
#define GF_TEXT_MAX_LEN ((int64_t)1 << 20)          /* tokens per encoded example */
#define GF_TEXT_MAX_DIM ((int64_t)1 << 14)          /* values per word vector */

/* ---- tokenisers --------------------------------------------------------------------------- */

typedef enum gf_text_tokenizer {
    /* runs of letters and digits are words; every other visible character (punctuation,
     * symbols) is a token of its own; white space separates */
    GF_TEXT_WORD = 0,
    GF_TEXT_CHAR, /* every Unicode code point, spaces included */
    GF_TEXT_BYTE, /* every byte of the UTF-8 text, as the token "<0xHH>" */
} gf_text_tokenizer;

typedef struct gf_text_params {
    gf_text_tokenizer tokenizer; /* default GF_TEXT_WORD */
    bool lowercase;              /* Latin, Greek and Cyrillic capitals lower-cased first */
    /* word/char: the vocabulary holds the 256 byte tokens "<0x00>".."<0xFF>" (ids 2..257), and
     * a token not in it is spelled as its UTF-8 bytes instead of becoming <unk>: no input is
     * unrepresentable (SentencePiece's byte_fallback) */
    bool byte_fallback;
} gf_text_params;

gf_text_params gf_text_default_params(void);
/* "word", "char", "byte"; NULL for an unknown value. */
const char *gf_text_tokenizer_name(gf_text_tokenizer t);
/* The tokenizer of that name; GF_ERR_INVALID naming the known ones. */
gf_status gf_text_tokenizer_parse(gf_ctx *ctx, const char *name, gf_text_tokenizer *out);

/* Called once per token (len bytes, not NUL-terminated); returning false stops the
 * tokeniser, which then returns GF_OK: a callback that fails keeps its own error for its
 * caller. */
typedef bool (*gf_text_token_fn)(void *user, const char *tok, size_t len);

/* Splits len bytes of UTF-8 text into tokens (GF_TEXT_BYTE: "<0xHH>" strings), in order, up
 * to the first invalid byte (so a callback may see tokens before the error). Invalid UTF-8
 * (a bad lead or continuation byte, an overlong form, a surrogate, a code point above
 * U+10FFFF) and NUL bytes are GF_ERR_FORMAT naming where, line (1-based, counted from
 * first_line inside the text) and the byte offset in the text. where: the file or "text". */
gf_status gf_text_tokenize(gf_ctx *ctx, const gf_text_params *params, const char *text,
                           size_t len, const char *where, int64_t first_line,
                           gf_text_token_fn fn, void *user);

/* Tokens as strings: n malloc'd NUL-terminated tokens (free with gf_text_tokens_free). */
typedef struct gf_text_tokens {
    int64_t n;
    char **tok;
} gf_text_tokens;

gf_status gf_text_tokens_of(gf_ctx *ctx, const gf_text_params *params, const char *text,
                            gf_text_tokens *out);
void gf_text_tokens_free(gf_text_tokens *t);

/* Checks that len bytes are UTF-8 without NUL bytes: -1 when they are, else the offset of the
 * first bad byte. */
int64_t gf_text_utf8_check(const char *text, size_t len);

/* ---- the vocabulary ----------------------------------------------------------------------- */

/* Token <-> id, built from training text: id 0 "<pad>", 1 "<unk>", with byte fallback (or the
 * byte tokenizer) the 256 byte tokens, then the tokens counted at least min_count times by
 * descending count, equal counts in byte order of the token (torchtext's
 * build_vocab_from_iterator), cut to max_size ids in all. The tokeniser settings travel with
 * it, so text is tokenised again exactly as in training. Immutable once built; reference
 * counted (gf_text_vocab_retain / _free), used from one thread at a time or read-only. */
typedef struct gf_text_vocab gf_text_vocab;

typedef struct gf_text_vocab_params {
    int64_t min_count; /* <= 1: every token seen */
    int64_t max_size;  /* > 0: at most this many ids, the special and byte tokens included;
                        * 0: no cut */
    int64_t max_distinct; /* distinct tokens counted before refusing; 0: GF_TEXT_MAX_VOCAB */
} gf_text_vocab_params;

gf_text_vocab_params gf_text_vocab_default_params(void);

/* Builds the vocabulary of n texts (NUL-terminated UTF-8). name: what messages call the texts
 * (a file). Errors: invalid UTF-8 (naming text index i as "NAME: example i+1"), more distinct
 * tokens than max_distinct, a max_size too small for the special (and byte) tokens. Counts of
 * tokens left out (min_count, max_size) are added to <unk>'s count. NULL with an error. */
gf_text_vocab *gf_text_vocab_build(gf_ctx *ctx, const gf_text_params *params,
                                   const gf_text_vocab_params *vp, const char *const *texts,
                                   int64_t n, const char *name);
/* A new vocabulary: v's ids, then each of the n words not in it yet (count 0), in order, until
 * it holds max_size ids (0: no cut). Words that are not valid UTF-8 or empty are skipped. So
 * pretrained vectors can give words never seen in training an id (and their vector): pass
 * the vectors' words (gf_text_vectors_word). NULL with an error (out of memory). */
gf_text_vocab *gf_text_vocab_extend(gf_ctx *ctx, const gf_text_vocab *v, const char *const *words,
                                    int64_t n, int64_t max_size);
gf_text_vocab *gf_text_vocab_retain(gf_text_vocab *v);
void gf_text_vocab_free(gf_text_vocab *v);

int64_t gf_text_vocab_size(const gf_text_vocab *v);
/* The id of a token, or -1 when it has none. */
int64_t gf_text_vocab_id(const gf_text_vocab *v, const char *token);
/* The token of an id (borrowed), or NULL out of range. */
const char *gf_text_vocab_token(const gf_text_vocab *v, int64_t id);
/* How often the token appeared in the training text (<unk>: the tokens left out). */
int64_t gf_text_vocab_count(const gf_text_vocab *v, int64_t id);
/* Tokens in the training text, all of them. */
int64_t gf_text_vocab_total(const gf_text_vocab *v);
/* The tokeniser settings it was built with. */
gf_text_params gf_text_vocab_text_params(const gf_text_vocab *v);
/* True for <pad>, <unk> and the byte tokens. */
bool gf_text_vocab_is_special(const gf_text_vocab *v, int64_t id);

/* JSON text (malloc'd): {"format": "graft.text", "version": 1, "tokenizer", "lowercase",
 * "byte_fallback", "total", "tokens": [...], "counts": [...]}. NULL with an error (ctx may be
 * NULL: no message). */
char *gf_text_vocab_to_json(gf_ctx *ctx, const gf_text_vocab *v);
/* The vocabulary a JSON text holds (checked: the json limits of ctx, the layout, ids 0 and 1,
 * unique tokens of valid UTF-8, the byte tokens where the settings need them). name: for
 * messages. NULL with GF_ERR_FORMAT naming name and what is wrong. */
gf_text_vocab *gf_text_vocab_from_json(gf_ctx *ctx, const char *json, size_t len,
                                       const char *name);

/* ---- encoding ----------------------------------------------------------------------------- */

/* The ids of text, truncated to T and right-padded with GF_TEXT_PAD: ids[T]. A token without
 * an id is <unk>, or its bytes with byte fallback. *n_tokens (may be NULL): ids before the cut
 * (counting them reads the whole text; without it the text is read up to T ids, and invalid
 * UTF-8 after them goes unseen). Errors: invalid UTF-8 (where names the source), T outside
 * 1..GF_TEXT_MAX_LEN. */
gf_status gf_text_encode(gf_ctx *ctx, const gf_text_vocab *v, const char *text, int64_t T,
                         int64_t *ids, int64_t *n_tokens, const char *where);
/* n texts as a new persistent float32 tensor [n, T] of ids (the samples of text data;
 * gf_tensor_free), or NULL with an error naming the text. */
gf_tensor *gf_text_encode_batch(gf_ctx *ctx, const gf_text_vocab *v, const char *const *texts,
                                int64_t n, int64_t T);

/* ---- labelled text files ------------------------------------------------------------------ */

typedef enum gf_text_format {
    GF_TEXT_FORMAT_AUTO = 0, /* by extension: .json, .jsonl/.ndjson, .csv, .tsv/.tab, .txt */
    GF_TEXT_JSON,            /* one JSON array of objects */
    GF_TEXT_JSONL,           /* one JSON object per line (blank lines skipped) */
    GF_TEXT_CSV,             /* RFC 4180 with a header line naming the columns */
    GF_TEXT_TSV,             /* the same with tabs */
    GF_TEXT_LINES,           /* .txt: every non-blank line a text, without a label */
} gf_text_format;

typedef enum gf_text_unlabelled {
    GF_TEXT_UNLABELLED_ERROR = 0, /* an entry without a label is an error naming its line */
    GF_TEXT_UNLABELLED_SKIP,      /* left out, and counted in gf_text_corpus.skipped */
    GF_TEXT_UNLABELLED_KEEP,      /* kept with a NULL label (text to predict on) */
} gf_text_unlabelled;

typedef struct gf_text_read_params {
    gf_text_format format;
    const char *text_field;  /* the text's key or column (NULL: "text") */
    const char *label_field; /* the label's (NULL: "label"); a label is a string, a number
                              * (written as JSON writes it) or a boolean; null or an empty CSV
                              * field is no label */
    gf_text_unlabelled unlabelled;
    /* Sequence labelling (JSON and JSON lines only): an entry whose tags key holds an array
     * of tags (non-empty strings), one per token, is tagged; its text is the text key's
     * string, or the tokens key's array of tokens (non-empty strings without white space, as
     * many as the tags) joined by single spaces. Tagged entries need no label; a file's
     * entries are all tagged or none. NULL: "tags" and "tokens". */
    const char *tags_field;
    const char *tokens_field;
    int64_t max_file_bytes;   /* 0: the context's data-bytes limit */
    int64_t max_record_bytes; /* 0: GF_TEXT_MAX_RECORD_BYTES */
    int64_t max_examples;     /* 0: GF_TEXT_MAX_EXAMPLES */
} gf_text_read_params;

gf_text_read_params gf_text_read_default_params(void);

/* What a file holds; everything malloc'd, owned by the struct (gf_text_corpus_free). */
typedef struct gf_text_corpus {
    int64_t n;
    char **texts;         /* [n] UTF-8 */
    char **labels;        /* [n]; an entry is NULL only with GF_TEXT_UNLABELLED_KEEP */
    int64_t *lines;       /* [n] the 1-based line each entry starts on */
    /* tagged files (tagged true): each entry's n_tags[i] tags, NUL-terminated strings back to
     * back in tags[i]; else both NULL */
    bool tagged;
    char **tags;
    int64_t *n_tags;
    int64_t skipped;      /* GF_TEXT_UNLABELLED_SKIP: entries left out */
    int64_t first_skipped_line;
    gf_text_format format; /* as read (AUTO resolved) */
} gf_text_corpus;

/* Reads a labelled text file. Streams it: sizes are checked before anything is allocated for
 * them (the file against max_file_bytes, each record against max_record_bytes, the count
 * against max_examples). Errors (GF_ERR_FORMAT, GF_ERR_IO) name the file and the line: a
 * record that is not valid JSON, not an object, a missing text or label (with
 * GF_TEXT_UNLABELLED_ERROR), a text that is not a string, tags that are not an array of
 * non-empty strings, tokens and tags of different counts, tagged and untagged entries in one
 * file, invalid UTF-8 (and the byte
 * offset), a CSV header without the columns, a row with another field count, an unclosed
 * quote. Fills *out (zeroed first, empty on failure). */
gf_status gf_text_read(gf_ctx *ctx, const char *path, const gf_text_read_params *params,
                       gf_text_corpus *out);
/* The same from len bytes in memory (format AUTO: by name's extension, else JSON lines when
 * the text starts with '{', JSON when '[', else CSV). */
gf_status gf_text_parse(gf_ctx *ctx, const char *text, size_t len, const char *name,
                        const gf_text_read_params *params, gf_text_corpus *out);
void gf_text_corpus_free(gf_text_corpus *c);

/* ---- pretrained word vectors ------------------------------------------------------------- */

/* Word vectors as GloVe's text files hold them ("word v1 ... vD" per line; a first line "N D",
 * word2vec's and fastText's, is skipped). Owned; gf_text_vectors_free. */
typedef struct gf_text_vectors gf_text_vectors;

typedef struct gf_text_vectors_params {
    int64_t max_words;        /* 0: GF_TEXT_MAX_VOCAB */
    int64_t max_dim;          /* 0: GF_TEXT_MAX_DIM */
    int64_t max_file_bytes;   /* 0: the context's data-bytes limit */
    int64_t max_record_bytes; /* 0: GF_TEXT_MAX_RECORD_BYTES */
    /* keep only the words this vocabulary could use: its tokens and their lower-case forms
     * (NULL: every word) */
    const gf_text_vocab *only;
} gf_text_vectors_params;

gf_text_vectors_params gf_text_vectors_default_params(void);

/* Reads a GloVe text file. Errors name the file and the line: a line with another number of
 * values than the first, a value that is not a finite number, invalid UTF-8, more words or
 * values than the limits. A word given twice keeps its first vector. NULL with an error. */
gf_text_vectors *gf_text_vectors_load(gf_ctx *ctx, const char *path,
                                      const gf_text_vectors_params *params);
gf_text_vectors *gf_text_vectors_parse(gf_ctx *ctx, const char *text, size_t len,
                                       const char *name, const gf_text_vectors_params *params);
void gf_text_vectors_free(gf_text_vectors *v);
int64_t gf_text_vectors_count(const gf_text_vectors *v);
int64_t gf_text_vectors_dim(const gf_text_vectors *v);
/* Word i (borrowed) or NULL; the vector of a word (dim floats, borrowed) or NULL. */
const char *gf_text_vectors_word(const gf_text_vectors *v, int64_t i);
const float *gf_text_vectors_get(const gf_text_vectors *v, const char *word);

/* What gf_text_vectors_fill found. */
typedef struct gf_text_coverage {
    int64_t vocab_size;     /* ids of the vocabulary */
    int64_t words;          /* of them, words (not <pad>, <unk> or byte tokens) */
    int64_t found;          /* words given a vector (found_lower of them by lower case) */
    int64_t found_lower;
    int64_t train_tokens;   /* tokens in the training text */
    int64_t covered_tokens; /* of them, tokens whose word got a vector */
} gf_text_coverage;

/* Copies the vector of every vocabulary word into its row of weight [V, D] (float32,
 * contiguous, V = the vocabulary size, D = the vectors' dim), trying the word as it is, then
 * lower-cased. Rows of specials and of words without a vector keep their values (an
 * Embedding's initialisation; the padding row stays zero). cov may be NULL. Errors name the
 * shapes: expected [V, D], found .... */
gf_status gf_text_vectors_fill(gf_ctx *ctx, const gf_text_vectors *vec, const gf_text_vocab *v,
                               gf_tensor *weight, gf_text_coverage *cov);
/* The same into the "weight" of an Embedding module (gf_nn_embedding). */
gf_status gf_text_vectors_fill_module(gf_ctx *ctx, const gf_text_vectors *vec,
                                      const gf_text_vocab *v, gf_module *embedding,
                                      gf_text_coverage *cov);

/* The folder scripts/fetch-text.sh fills: $GRAFT_DATA_DIR/text when that exists, else
 * $XDG_CACHE_HOME/graft/text or ~/.cache/graft/text. Writes it into buf; false when none
 * exists. */
bool gf_text_data_dir(char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
