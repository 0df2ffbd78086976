/* graft CSV reader: a table with numeric feature columns and a label column becomes a gf_ds
 * of sample shape [F] (float32). Class labels may be strings; they are mapped to indices in
 * sorted order, like sklearn's LabelEncoder. Plain or gzip-compressed files. */
#ifndef GRAFT_CSV_H
#define GRAFT_CSV_H

#include "graft/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gf_csv_header {
    GF_CSV_HEADER = 0, /* the first line (after skip_lines) names the columns */
    GF_CSV_NO_HEADER,  /* no header: columns are named "0", "1", ... */
    /* sklearn's bundled files (iris.csv, wine_data.csv, breast_cancer.csv): a first line
     * "n_samples,n_features,class_0,class_1,..." and no column names. The counts are checked
     * against the data, the class names name the integer labels 0..k-1, and a label outside
     * 0..k-1 is an error. Columns are named "0", "1", ... */
    GF_CSV_SKLEARN_HEADER,
    /* Either of the two above, read from the file: sklearn's layout when the first line (after
     * skip_lines) holds two whole numbers n_samples >= 0 and n_features >= 1 followed by at
     * least one name that is not a number, and the next line holds n_features + 1 fields;
     * otherwise GF_CSV_HEADER (gf_csv_detect_header). */
    GF_CSV_HEADER_AUTO,
} gf_csv_header;

typedef enum gf_csv_target {
    GF_CSV_CLASSES = 0, /* class labels (strings or numbers) -> int64 indices */
    GF_CSV_REGRESSION,  /* a numeric target -> float32, dataset with 0 classes */
} gf_csv_target;

/* A categorical feature column: a column of text values, one-hot encoded. In a gf_csv_info the
 * reader's feature `at` holds each row's category as its index into values (all the distinct
 * values of the file); in encoded features (gf_ds_parts, a bundle, gf_csv_rows_params) the
 * column becomes the n features at..at+n-1, named "column=value", 1 for the row's category. */
typedef struct gf_csv_category {
    char *column;   /* the column's name */
    int64_t at;     /* see above */
    int64_t n;      /* categories, sorted by byte order */
    char **values;
} gf_csv_category;

/* Categories a column may have unless gf_csv_params.max_categories says otherwise. */
#define GF_CSV_MAX_CATEGORIES 64

typedef struct gf_csv_params {
    gf_csv_header header; /* default GF_CSV_HEADER */
    int skip_lines;       /* lines skipped before the header or the data (default 0) */
    char delimiter;       /* default ',' */
    /* The label column: a column name, or an index (0-based; negative counts from the end).
     * A name is tried first. NULL: the last column. */
    const char *label;
    /* The feature columns, in this order: a comma-separated list of names, indices and index
     * ranges "2-5" (inclusive). NULL: every column but the label, in file order. */
    const char *features;
    gf_csv_target target; /* default GF_CSV_CLASSES */
    /* Fixed classes (optional). n_classes > 0: labels must be the integers 0..n_classes-1
     * (or one of class_names); anything else is an error naming the line. class_names
     * (n_classes entries, may be NULL) name them. n_classes == 0: the classes are the
     * distinct labels found, sorted like LabelEncoder (numerically when every label is a
     * number, else by byte order of the strings). */
    int n_classes;
    const char *const *class_names;
    /* A missing feature (an empty field or NA/N/A/NaN/null/None/?) is read as NaN instead of
     * being an error (default false). A missing label is an error either way. */
    bool allow_missing;
    /* A feature column whose values are more often text than numbers (missing ones aside) is
     * categorical (gf_csv_category; its missing values read as NaN when allow_missing)
     * (default false). A text value in a column of mostly numbers stays an error naming it. Columns named in categories (n_categories entries, may be NULL;
     * only their names are used) are categorical whatever they hold. More than max_categories
     * distinct values in one column (0: GF_CSV_MAX_CATEGORIES) is an error naming it. */
    bool categorical;
    int max_categories;
    const gf_csv_category *categories;
    int64_t n_categories;
} gf_csv_params;

gf_csv_params gf_csv_default_params(void);

/* Reads a CSV file (RFC 4180 quoting; CRLF or LF; blank lines skipped; gzip detected from the
 * content). Every feature must be a finite number; an empty field or NA/N/A/NaN/null/None is
 * a missing value. Errors name the file, the line (1-based, counting every physical line) and
 * the column (1-based and its name): a row with too few or too many fields, a non-numeric or
 * missing feature, a missing label, a label outside the fixed classes, an unknown column.
 * Returns a new dataset (free with gf_ds_free) or NULL with a context error. */
gf_ds *gf_csv_load(gf_ctx *ctx, const char *path, const gf_csv_params *params);
/* The same from text in memory (len bytes, need not be NUL-terminated); `name` stands for the
 * file name in messages. */
gf_ds *gf_csv_parse(gf_ctx *ctx, const char *text, size_t len, const char *name,
                    const gf_csv_params *params);

/* The layout of a table as the reader took it, for whoever must read more rows of it later
 * (a trained model's inputs). Owned by the struct (gf_csv_info_free). */
typedef struct gf_csv_info {
    gf_csv_header header;  /* the header kind read (GF_CSV_HEADER_AUTO resolved) */
    int64_t n_columns;     /* fields per row */
    char **column_names;   /* n_columns names: the header's, else "0", "1", ... */
    int64_t label_column;  /* 0-based */
    int64_t n_categorical; /* the categorical feature columns in feature order (their values */
    gf_csv_category *categorical; /* are the file's distinct values, sorted) */
} gf_csv_info;

/* gf_csv_load / gf_csv_parse that also fill *info (zeroed first; may be NULL). */
gf_ds *gf_csv_load_info(gf_ctx *ctx, const char *path, const gf_csv_params *params,
                        gf_csv_info *info);
gf_ds *gf_csv_parse_info(gf_ctx *ctx, const char *text, size_t len, const char *name,
                         const gf_csv_params *params, gf_csv_info *info);
void gf_csv_info_free(gf_csv_info *info);
/* Frees n categories and the array. */
void gf_csv_categories_free(gf_csv_category *c, int64_t n);
/* A deep copy of n categories into *dst (NULL when n is 0); GF_OK or GF_ERR_NOMEM. */
gf_status gf_csv_categories_copy(gf_ctx *ctx, const gf_csv_category *src, int64_t n,
                                 gf_csv_category **dst);

/* What GF_CSV_HEADER_AUTO finds in text (skip_lines and delimiter of params, NULL: the
 * defaults): GF_CSV_SKLEARN_HEADER or GF_CSV_HEADER. Reads at most the first two records. */
gf_csv_header gf_csv_sniff_header(const char *text, size_t len, const gf_csv_params *params);
/* The same for a file (plain or gzip): GF_OK with *out set, or an error naming the file. */
gf_status gf_csv_detect_header(gf_ctx *ctx, const char *path, const gf_csv_params *params,
                               gf_csv_header *out);

/* ---- rows of features without a label (the inputs a trained model is asked about) ---------- */

typedef struct gf_csv_rows {
    int64_t n;           /* rows read */
    int64_t n_features;  /* values per row */
    float *x;            /* [n, n_features], malloc'd */
    int64_t *lines;      /* [n]: the (1-based, physical) line each row starts on, malloc'd */
    int64_t unseen;      /* categorical values not among the categories (encoded as zeros) */
} gf_csv_rows;

/* Reads rows of n_features numbers from a CSV file (plain or gzip, the same record reader and
 * limits as gf_csv_load, delimiter ','). The first record is a header when one of its fields
 * is not a finite number. With a header and names (n_features column names, e.g. the training
 * table's gf_ds_feature_name), the columns are taken by name in the order of names, wherever
 * they stand, and every row must have the header's field count; otherwise (no header, or no
 * names) every row holds exactly n_features numbers in order. Errors name the file, line and
 * column: a column missing from the header, a row of another length, a field that is missing,
 * not a number or not a finite float32; a file without data rows. Fills *out (free with
 * gf_csv_rows_free; zeroed on failure) and returns GF_OK, or the error status. */
gf_status gf_csv_load_rows(gf_ctx *ctx, const char *path, int64_t n_features,
                           const char *const *names, gf_csv_rows *out);
/* The same from text in memory (len bytes); `name` stands for the file name in messages. */
gf_status gf_csv_parse_rows(gf_ctx *ctx, const char *text, size_t len, const char *name,
                            int64_t n_features, const char *const *names, gf_csv_rows *out);
void gf_csv_rows_free(gf_csv_rows *rows);

/* How gf_csv_load_rows_with finds the features of a row. */
typedef struct gf_csv_rows_params {
    /* GF_CSV_HEADER_AUTO (default): sklearn's first line (as GF_CSV_HEADER_AUTO reads it) is
     * skipped; otherwise the first record is a header when it holds every one of names, or
     * when it is not a data row (a data row: all numbers, or n_columns fields whose feature
     * positions are numbers). GF_CSV_HEADER: the first record is a header; GF_CSV_NO_HEADER:
     * it is data; GF_CSV_SKLEARN_HEADER: it is sklearn's line, skipped. */
    gf_csv_header header;
    int skip_lines;                  /* lines skipped first (default 0) */
    char delimiter;                  /* default ',' */
    const char *const *names;        /* n_features feature names, or NULL */
    /* The table the features were taken from (may be 0 / NULL): its column count and names.
     * A row without a header that holds n_columns fields gives the columns of names (looked up
     * in column_names), so rows that still hold the label (or other columns) read as the
     * training table did; messages name the columns by these names. */
    int64_t n_columns;
    const char *const *column_names;
    bool allow_missing;              /* a missing feature is NaN, not an error (default false) */
    /* Categorical columns of the encoded features (n_categories, at and n within names): each
     * is read as the one text column `column` and one-hot encoded into its n features; a value
     * not among its categories (or missing, with allow_missing) gives zeros, counted in
     * gf_csv_rows.unseen (missing ones are not counted). */
    const gf_csv_category *categories;
    int64_t n_categories;
} gf_csv_rows_params;

gf_csv_rows_params gf_csv_rows_default_params(void);

/* Reads feature rows as gf_csv_load_rows does, the header and column layout as params say
 * (NULL: the defaults, which with no names read as gf_csv_load_rows without names). With a
 * header and names the columns are taken by name wherever they stand and the rest ignored;
 * without a header a row must hold n_features values, or (with the table's layout) n_columns
 * fields. Errors name the file, the line and the column (number and name). */
gf_status gf_csv_load_rows_with(gf_ctx *ctx, const char *path, int64_t n_features,
                                const gf_csv_rows_params *params, gf_csv_rows *out);
gf_status gf_csv_parse_rows_with(gf_ctx *ctx, const char *text, size_t len, const char *name,
                                 int64_t n_features, const gf_csv_rows_params *params,
                                 gf_csv_rows *out);

#ifdef __cplusplus
}
#endif
#endif
