/* CSV reader: column selection by name / index / range, LabelEncoder ordering of string and
 * numeric labels, quoting, CRLF, blank lines, skip_lines, no header, regression targets, fixed
 * classes, gzip; and every bad input as an error naming file, line and column. To add a case,
 * add a parse() call with the text and what it must give. */
#include "data_helpers.h"

#include "graft/graft.h"
#include "graft/csv.h"
#include "testutil.h"

#include <math.h>

static gf_ctx *ctx;

static gf_ds *parse(const char *text, const gf_csv_params *p) {
    return gf_csv_parse(ctx, text, strlen(text), "t.csv", p);
}

/* Features and label of example i of a classification dataset. */
static void row(const gf_ds *ds, int64_t i, float *out, int64_t *label) {
    int64_t y;
    CHECK(gf_ds_read(ds, &i, 1, out, &y, NULL, 0) == GF_OK);
    if (label) *label = y;
}

/* Expects a parse error with status st whose message contains every needle. */
static void expect_error(const char *text, const gf_csv_params *p, gf_status st, const char *n1,
                         const char *n2, const char *n3) {
    gf_ctx_clear_error(ctx);
    gf_ds *ds = parse(text, p);
    CHECK(ds == NULL);
    CHECK(gf_ctx_status(ctx) == st);
    const char *msg = gf_ctx_error(ctx);
    bool ok = strstr(msg, "t.csv") && (!n1 || strstr(msg, n1)) && (!n2 || strstr(msg, n2)) &&
              (!n3 || strstr(msg, n3));
    if (!ok) fprintf(stderr, "  message: %s\n  (wanted %s / %s / %s)\n", msg, n1, n2, n3);
    CHECK(ok);
    gf_ds_free(ds);
    gf_ctx_clear_error(ctx);
}

static void test_names_and_labels(void) {
    const char *text = "sepal,petal,species,weight\n"
                       "1.5,2,virginica,10\n"
                       "2.5,3,setosa,20\n"
                       "3.5,4,versicolor,30\n"
                       "4.5,5,setosa,40\n";
    gf_csv_params p = gf_csv_default_params();
    p.label = "species";
    p.features = "weight,sepal";
    gf_ds *ds = parse(text, &p);
    CHECK(ds != NULL);
    if (!ds) return;
    CHECK(gf_ds_count(ds) == 4 && gf_ds_ndim(ds) == 1 && gf_ds_shape(ds)[0] == 2);
    /* LabelEncoder: sorted distinct strings */
    CHECK(gf_ds_n_classes(ds) == 3);
    CHECK(strcmp(gf_ds_class_name(ds, 0), "setosa") == 0);
    CHECK(strcmp(gf_ds_class_name(ds, 1), "versicolor") == 0);
    CHECK(strcmp(gf_ds_class_name(ds, 2), "virginica") == 0);
    CHECK(gf_ds_class_index(ds, "versicolor") == 1 && gf_ds_class_index(ds, "rose") == -1);
    CHECK(strcmp(gf_ds_feature_name(ds, 0), "weight") == 0);
    CHECK(strcmp(gf_ds_feature_name(ds, 1), "sepal") == 0);
    CHECK(gf_ds_feature_name(ds, 2) == NULL);
    float x[2];
    int64_t y;
    row(ds, 0, x, &y);
    CHECK(x[0] == 10.0f && x[1] == 1.5f && y == 2);
    row(ds, 3, x, &y);
    CHECK(x[0] == 40.0f && x[1] == 4.5f && y == 0);
    CHECK(gf_ds_label(ds, 2) == 1);
    gf_ds_free(ds);

    /* label by index from the end, features by index range; default features: all but label */
    p = gf_csv_default_params();
    p.label = "-2";
    p.features = "0-1";
    ds = parse(text, &p);
    CHECK(ds && gf_ds_shape(ds)[0] == 2 && gf_ds_n_classes(ds) == 3);
    gf_ds_free(ds);
    p.features = NULL;
    ds = parse(text, &p);
    CHECK(ds && gf_ds_shape(ds)[0] == 3);
    if (ds) {
        float x3[3];
        row(ds, 1, x3, &y);
        CHECK(x3[0] == 2.5f && x3[1] == 3.0f && x3[2] == 20.0f && y == 0);
        CHECK(strcmp(gf_ds_feature_name(ds, 2), "weight") == 0);
    }
    gf_ds_free(ds);
}

static void test_numeric_labels(void) {
    /* numeric labels sort numerically ("10" after "2"); "1" and "1.0" are one class */
    const char *text = "a,b,label\n0,0,10\n1,1,2\n2,2,1\n3,3,1.0\n4,4,-3\n";
    gf_ds *ds = parse(text, NULL); /* default: label = last column */
    CHECK(ds && gf_ds_n_classes(ds) == 4);
    if (!ds) return;
    CHECK(strcmp(gf_ds_class_name(ds, 0), "-3") == 0);
    CHECK(strcmp(gf_ds_class_name(ds, 1), "1") == 0);
    CHECK(strcmp(gf_ds_class_name(ds, 2), "2") == 0);
    CHECK(strcmp(gf_ds_class_name(ds, 3), "10") == 0);
    CHECK(gf_ds_label(ds, 0) == 3 && gf_ds_label(ds, 1) == 2 && gf_ds_label(ds, 2) == 1 &&
          gf_ds_label(ds, 3) == 1 && gf_ds_label(ds, 4) == 0);
    int64_t counts[4];
    CHECK(gf_ds_class_counts(ctx, ds, counts) == GF_OK);
    CHECK(counts[0] == 1 && counts[1] == 2 && counts[2] == 1 && counts[3] == 1);
    gf_ds_free(ds);
    /* mixed: then every label is a string, sorted by bytes ("10" < "2" < "cat") */
    ds = parse("a,l\n1,2\n2,10\n3,cat\n", NULL);
    CHECK(ds && gf_ds_n_classes(ds) == 3);
    if (ds) CHECK(strcmp(gf_ds_class_name(ds, 0), "10") == 0 && gf_ds_label(ds, 2) == 2);
    gf_ds_free(ds);
}

static void test_syntax(void) {
    /* quotes with delimiters, doubled quotes and a line break inside; CRLF; blank lines;
     * spaces around numbers; no final newline */
    const char *text = "\"x, first\",\"y \"\"q\"\"\",name\r\n"
                       "\r\n"
                       " 1.25 , -2e3 ,\"a, b\"\r\n"
                       "\n"
                       "\"3\",4,\"multi\nline\"\r\n"
                       "   \n"
                       "5,6,\"a, b\"";
    gf_ds *ds = parse(text, NULL);
    CHECK(ds && gf_ds_count(ds) == 3 && gf_ds_n_classes(ds) == 2);
    if (!ds) return;
    CHECK(strcmp(gf_ds_feature_name(ds, 0), "x, first") == 0);
    CHECK(strcmp(gf_ds_feature_name(ds, 1), "y \"q\"") == 0);
    CHECK(strcmp(gf_ds_class_name(ds, 0), "a, b") == 0);
    CHECK(strcmp(gf_ds_class_name(ds, 1), "multi\nline") == 0);
    float x[2];
    int64_t y;
    row(ds, 0, x, &y);
    CHECK(x[0] == 1.25f && x[1] == -2000.0f && y == 0);
    row(ds, 1, x, &y);
    CHECK(x[0] == 3.0f && x[1] == 4.0f && y == 1);
    gf_ds_free(ds);

    /* a column named by the features spec with a name that is also an index wins as a name */
    gf_csv_params p = gf_csv_default_params();
    p.features = "1";
    p.label = "0";
    ds = parse("0,1,2\n5,6,7\n", &p);
    CHECK(ds && gf_ds_shape(ds)[0] == 1);
    if (ds) {
        row(ds, 0, x, &y);
        CHECK(x[0] == 6.0f);
    }
    gf_ds_free(ds);

    /* semicolons */
    p = gf_csv_default_params();
    p.delimiter = ';';
    ds = parse("a;b\n1,5;x\n", &p);
    CHECK(ds == NULL); /* "1,5" is not a number: locale-free, '.' only */
    gf_ctx_clear_error(ctx);
    ds = parse("a;b\n1.5;x\n", &p);
    CHECK(ds && gf_ds_count(ds) == 1);
    gf_ds_free(ds);
}

static void test_modes(void) {
    /* skip_lines + no header: columns are "0", "1", ... */
    gf_csv_params p = gf_csv_default_params();
    p.skip_lines = 2;
    p.header = GF_CSV_NO_HEADER;
    p.label = "0";
    gf_ds *ds = parse("# a comment line\nanother, with, commas\nb,1,2\na,3,4\n", &p);
    CHECK(ds && gf_ds_count(ds) == 2 && gf_ds_shape(ds)[0] == 2);
    if (ds) {
        CHECK(strcmp(gf_ds_feature_name(ds, 0), "1") == 0);
        CHECK(gf_ds_label(ds, 0) == 1 && gf_ds_label(ds, 1) == 0);
    }
    gf_ds_free(ds);

    /* regression: float targets, 0 classes, y as float32 */
    p = gf_csv_default_params();
    p.target = GF_CSV_REGRESSION;
    p.label = "price";
    ds = parse("size,price,rooms\n50,100.5,2\n80,-3.25,3\n", &p);
    CHECK(ds && gf_ds_n_classes(ds) == 0 && gf_ds_shape(ds)[0] == 2);
    if (ds) {
        int64_t idx[2] = {1, 0};
        float x[4], t[2];
        CHECK(gf_ds_read(ds, idx, 2, x, t, NULL, 0) == GF_OK);
        CHECK(t[0] == -3.25f && t[1] == 100.5f && x[0] == 80 && x[1] == 3 && x[2] == 50);
        CHECK(gf_ds_label(ds, 0) == -1);
    }
    gf_ds_free(ds);

    /* fixed classes: names or integer labels, both accepted */
    static const char *const names[3] = {"low", "mid", "high"};
    p = gf_csv_default_params();
    p.n_classes = 3;
    p.class_names = names;
    ds = parse("v,c\n1,high\n2,0\n3,1.0\n4,mid\n", &p);
    CHECK(ds && gf_ds_n_classes(ds) == 3);
    if (ds) {
        CHECK(gf_ds_label(ds, 0) == 2 && gf_ds_label(ds, 1) == 0 && gf_ds_label(ds, 2) == 1 &&
              gf_ds_label(ds, 3) == 1);
        CHECK(strcmp(gf_ds_class_name(ds, 2), "high") == 0);
    }
    gf_ds_free(ds);

    /* sklearn's bundled layout */
    p = gf_csv_default_params();
    p.header = GF_CSV_SKLEARN_HEADER;
    ds = parse("3,2,red,green\n1,2,0\n3,4,1\n5,6,1\n", &p);
    CHECK(ds && gf_ds_count(ds) == 3 && gf_ds_n_classes(ds) == 2 && gf_ds_shape(ds)[0] == 2);
    if (ds) CHECK(strcmp(gf_ds_class_name(ds, 1), "green") == 0 && gf_ds_label(ds, 2) == 1);
    gf_ds_free(ds);
    p.target = GF_CSV_REGRESSION; /* sklearn regression files name no classes */
    ds = parse("2,1,,\n1,0.5\n3,1.5\n", &p);
    CHECK(ds && gf_ds_n_classes(ds) == 0);
    gf_ds_free(ds);
}

static void test_gzip_file(void) {
    const char *text = "f1,f2,label\n1,2,b\n3,4,a\n5,6,b\n";
    gzFile g = gzopen(th_path("data.csv.gz"), "wb");
    gzwrite(g, text, (unsigned)strlen(text));
    gzclose(g);
    gf_ds *ds = gf_csv_load(ctx, th_path("data.csv.gz"), NULL);
    CHECK(ds && gf_ds_count(ds) == 3 && gf_ds_n_classes(ds) == 2 && gf_ds_label(ds, 0) == 1);
    char desc[128];
    if (ds) CHECK(strstr(gf_ds_describe(ds, desc, sizeof desc), "data.csv.gz: 3 x [2], 2 classes"));
    gf_ds_free(ds);
    th_write_str("plain.csv", text);
    ds = gf_csv_load(ctx, th_path("plain.csv"), NULL);
    CHECK(ds && gf_ds_count(ds) == 3);
    gf_ds_free(ds);
    /* a cut-off gzip file is an error, not a short dataset */
    FILE *f = fopen(th_path("data.csv.gz"), "rb");
    uint8_t buf[256];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    th_write("cut.csv.gz", buf, n - 6);
    ds = gf_csv_load(ctx, th_path("cut.csv.gz"), NULL);
    CHECK(ds == NULL && gf_ctx_status(ctx) == GF_ERR_FORMAT &&
          strstr(gf_ctx_error(ctx), "cut.csv.gz"));
    gf_ctx_clear_error(ctx);
    ds = gf_csv_load(ctx, th_path("missing.csv"), NULL);
    CHECK(ds == NULL && gf_ctx_status(ctx) == GF_ERR_IO &&
          strstr(gf_ctx_error(ctx), "missing.csv"));
    gf_ctx_clear_error(ctx);
    th_write_str("empty.csv", "");
    ds = gf_csv_load(ctx, th_path("empty.csv"), NULL);
    CHECK(ds == NULL && strstr(gf_ctx_error(ctx), "empty"));
    gf_ctx_clear_error(ctx);
}

static void test_errors(void) {
    gf_csv_params p = gf_csv_default_params();
    /* ragged rows: too few, too many */
    expect_error("a,b,c\n1,2,x\n3,4\n", NULL, GF_ERR_FORMAT, "t.csv:3:", "2 fields, expected 3",
                 "header on line 1");
    expect_error("a,b,c\n1,2,x\n3,4,y,5\n", NULL, GF_ERR_FORMAT, "t.csv:3:", "4 fields", NULL);
    /* non-numeric feature, named by line and column */
    expect_error("a,b,c\n1,2,x\n\n3,abc,y\n", NULL, GF_ERR_FORMAT, "t.csv:4:", "column 2 (b)",
                 "not a number: 'abc'");
    expect_error("a,b,c\n1,2x,y\n", NULL, GF_ERR_FORMAT, "column 2 (b)", "'2x'", NULL);
    /* missing values: empty, NA, ? */
    expect_error("a,b,c\n1,,x\n", NULL, GF_ERR_FORMAT, "t.csv:2:", "column 2 (b)", "missing value");
    expect_error("a,b,c\n1,2,x\nNA,2,y\n", NULL, GF_ERR_FORMAT, "t.csv:3:", "column 1 (a)",
                 "missing value 'NA'");
    expect_error("a,b,c\n1,?,x\n", NULL, GF_ERR_FORMAT, "missing value '?'", NULL, NULL);
    expect_error("a,b,c\n1,2,\n", NULL, GF_ERR_FORMAT, "column 3 (c)", "missing label", NULL);
    /* non-finite numbers */
    expect_error("a,b,c\n1,inf,x\n", NULL, GF_ERR_FORMAT, "column 2 (b)", "finite", NULL);
    expect_error("a,b,c\n1,1e39,x\n", NULL, GF_ERR_FORMAT, "finite float32", NULL, NULL);
    /* label outside the fixed classes */
    p.n_classes = 3;
    expect_error("a,c\n1,2\n2,3\n", &p, GF_ERR_FORMAT,
                 "t.csv:3:", "label '3' outside the 3 classes", "column 2 (c)");
    expect_error("a,c\n1,-1\n", &p, GF_ERR_FORMAT, "label '-1'", NULL, NULL);
    expect_error("a,c\n1,two\n", &p, GF_ERR_FORMAT, "label 'two'", NULL, NULL);
    p = gf_csv_default_params();
    p.header = GF_CSV_SKLEARN_HEADER;
    expect_error("2,1,a,b\n1,0\n1,2\n", &p, GF_ERR_FORMAT, "t.csv:3:", "label '2' outside", NULL);
    expect_error("3,1,a,b\n1,0\n1,1\n", &p, GF_ERR_FORMAT, "promises 3 rows, the file has 2", NULL,
                 NULL);
    expect_error("x,1,a,b\n1,0\n", &p, GF_ERR_FORMAT, "t.csv:1:", "sklearn's header", NULL);
    expect_error("2,1,,\n1,0\n1,1\n", &p, GF_ERR_FORMAT, "names no classes", NULL, NULL);
    /* columns that do not exist, ambiguous or overlapping selections */
    p = gf_csv_default_params();
    p.label = "kind";
    expect_error("a,b,c\n1,2,x\n", &p, GF_ERR_INVALID, "no label column named 'kind'",
                 "columns: a, b, c", NULL);
    p.label = "7";
    expect_error("a,b,c\n1,2,x\n", &p, GF_ERR_INVALID, "index 7 outside the 3 columns", NULL, NULL);
    p.label = "a";
    expect_error("a,b,a\n1,2,3\n", &p, GF_ERR_INVALID, "'a' is ambiguous (columns 1 and 3)", NULL,
                 NULL);
    p = gf_csv_default_params();
    p.features = "a,c";
    expect_error("a,b,c\n1,2,3\n", &p, GF_ERR_INVALID, "column 3 (c) is the label column", NULL,
                 NULL);
    p.features = "a,a";
    expect_error("a,b,c\n1,2,3\n", &p, GF_ERR_INVALID, "listed twice", NULL, NULL);
    p.features = "1-0";
    expect_error("a,b,c\n1,2,3\n", &p, GF_ERR_INVALID, "increasing range", NULL, NULL);
    p.features = "zz";
    expect_error("a,b,c\n1,2,3\n", &p, GF_ERR_INVALID, "no feature column named 'zz'", NULL, NULL);
    /* structure: no data, one column, unterminated quote, NUL byte */
    expect_error("a,b,c\n", NULL, GF_ERR_FORMAT, "no data rows", NULL, NULL);
    expect_error("\n\n", NULL, GF_ERR_FORMAT, "no rows", NULL, NULL);
    expect_error("a\n1\n", NULL, GF_ERR_FORMAT, "need a label and at least one feature", NULL,
                 NULL);
    expect_error("a,b\n1,\"x\n2,y\n", NULL, GF_ERR_FORMAT, "t.csv:2:", "never closed", NULL);
    gf_ctx_clear_error(ctx);
    static const char nul[] = "a,b\n1,x\n2\0,y\n";
    CHECK(gf_csv_parse(ctx, nul, sizeof nul - 1, "t.csv", NULL) == NULL);
    CHECK(strstr(gf_ctx_error(ctx), "t.csv:3: NUL byte") != NULL);
    gf_ctx_clear_error(ctx);
    /* bad parameters */
    p = gf_csv_default_params();
    p.delimiter = '"';
    expect_error("a,b\n1,2\n", &p, GF_ERR_INVALID, "bad parameters", NULL, NULL);
    p = gf_csv_default_params();
    p.target = GF_CSV_REGRESSION;
    p.n_classes = 2;
    expect_error("a,b\n1,2\n", &p, GF_ERR_INVALID, "regression", NULL, NULL);
    p = gf_csv_default_params();
    p.target = GF_CSV_REGRESSION;
    expect_error("a,b\n1,up\n", &p, GF_ERR_FORMAT, "target is not a number: 'up'", NULL, NULL);
    CHECK(gf_csv_parse(ctx, NULL, 3, "t.csv", NULL) == NULL &&
          gf_ctx_status(ctx) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_csv_load(ctx, NULL, NULL) == NULL);
    gf_ctx_clear_error(ctx);
}

/* Rows to predict on: a header selects columns by name, no header means position. */
static void test_rows(void) {
    const char *names[3] = {"f1", "f2", "f3"};
    gf_csv_rows r;
    static const char by_name[] = "f3, \"f1\",other,f2\r\n\n3,1,x,2\n6,4,,5\n";
    CHECK(gf_csv_parse_rows(ctx, by_name, sizeof by_name - 1, "r.csv", 3, names, &r) == GF_OK);
    CHECK(r.n == 2 && r.n_features == 3);
    if (r.n == 2) {
        CHECK(r.x[0] == 1 && r.x[1] == 2 && r.x[2] == 3 && r.x[3] == 4 && r.x[5] == 6);
        CHECK(r.lines[0] == 3 && r.lines[1] == 4); /* physical lines, blank ones counted */
    }
    gf_csv_rows_free(&r);
    CHECK(r.x == NULL && r.n == 0);
    static const char plain[] = "1,2,3\n4,5,6e-1\n";
    CHECK(gf_csv_parse_rows(ctx, plain, sizeof plain - 1, "r.csv", 3, names, &r) == GF_OK);
    CHECK(r.n == 2 && r.lines[0] == 1 && fabsf(r.x[5] - 0.6f) == 0);
    gf_csv_rows_free(&r);
    /* a header but no names: by position */
    static const char header[] = "a,b,c\n7,8,9\n";
    CHECK(gf_csv_parse_rows(ctx, header, sizeof header - 1, "r.csv", 3, NULL, &r) == GF_OK);
    CHECK(r.n == 1 && r.x[0] == 7 && r.lines[0] == 2);
    gf_csv_rows_free(&r);
    const struct {
        const char *text, *want;
        const char *const *names;
    } bad[] = {
        {"a,b\n1,2\n", "r.csv:1: the header has no column \"f1\" (columns: a, b)", names},
        {"1,2\n", "r.csv:1: 2 values, expected the 3 features", NULL},
        {"f1,f2,f3\n1,2\n", "r.csv:2: 2 fields, expected 3 (as in the header on line 1)", names},
        {"f1,f2,f3\n1,x,3\n", "r.csv:2: column 2 (f2): not a number: 'x'", names},
        {"f1,f2,f3\n1,NA,3\n", "column 2 (f2): missing value", names},
        {"1,2,1e39\n", "column 3 (2): not a finite float32 number", NULL},
        {"f1,f2,f3\n", "r.csv: no data rows", names},
        {"a\n1,2,x\n", "r.csv:2: column 3 (2): not a number: 'x'", NULL}, /* a short header */
        {"", "r.csv: no data rows", names},
        {"1,\"2\n", "never closed", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gf_ctx_clear_error(ctx);
        memset(&r, 0xff, sizeof r);
        CHECK(gf_csv_parse_rows(ctx, bad[i].text, strlen(bad[i].text), "r.csv", 3, bad[i].names,
                                &r) == GF_ERR_FORMAT);
        CHECK(r.x == NULL && r.lines == NULL && r.n == 0);
        if (!strstr(gf_ctx_error(ctx), bad[i].want)) {
            fprintf(stderr, "rows case %zu: '%s' lacks '%s'\n", i, gf_ctx_error(ctx), bad[i].want);
            CHECK(0);
        }
    }
    gf_ctx_clear_error(ctx);
    CHECK(gf_csv_parse_rows(ctx, "1", 1, "r.csv", 0, NULL, &r) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_csv_load_rows(ctx, "/nonexistent/rows.csv", 3, NULL, &r) == GF_ERR_IO);
    CHECK(strstr(gf_ctx_error(ctx), "/nonexistent/rows.csv") != NULL);
    gf_ctx_clear_error(ctx);
}

/* scikit-learn's layout found from the file (GF_CSV_HEADER_AUTO), with the table's layout in
 * gf_csv_info; a header that only looks like it is left a header. */
static void test_sklearn_auto(void) {
    /* as iris.csv: the count line has as many fields as a row */
    static const char iris[] = "3,2,setosa,versicolor,virginica\n1,2,0\n3,4,2\n5,6,1\n";
    gf_csv_params p = gf_csv_default_params();
    CHECK(gf_csv_sniff_header(iris, sizeof iris - 1, NULL) == GF_CSV_SKLEARN_HEADER);
    p.header = GF_CSV_HEADER_AUTO;
    gf_csv_info info;
    memset(&info, 0xff, sizeof info);
    gf_ds *ds = gf_csv_parse_info(ctx, iris, sizeof iris - 1, "t.csv", &p, &info);
    CHECK(ds && gf_ds_count(ds) == 3 && gf_ds_n_classes(ds) == 3);
    CHECK(ds && strcmp(gf_ds_class_name(ds, 2), "virginica") == 0 &&
          strcmp(gf_ds_feature_name(ds, 0), "0") == 0 && gf_ds_label(ds, 1) == 2);
    CHECK(info.header == GF_CSV_SKLEARN_HEADER && info.n_columns == 3 && info.label_column == 2);
    CHECK(info.column_names && strcmp(info.column_names[2], "2") == 0);
    gf_csv_info_free(&info);
    CHECK(info.column_names == NULL && info.n_columns == 0);
    gf_ds_free(ds);
    /* as wine_data.csv: more features than class names; after skipped lines, ';' */
    static const char wine[] = "# a comment\n2;3;a;b\n1;2;3;1\n4;5;6;0\n";
    p.skip_lines = 1;
    p.delimiter = ';';
    CHECK(gf_csv_sniff_header(wine, sizeof wine - 1, &p) == GF_CSV_SKLEARN_HEADER);
    ds = gf_csv_parse_info(ctx, wine, sizeof wine - 1, "t.csv", &p, &info);
    CHECK(ds && gf_ds_count(ds) == 2 && gf_ds_shape(ds)[0] == 3 && info.header == GF_CSV_SKLEARN_HEADER);
    CHECK(ds && strcmp(gf_ds_class_name(ds, 1), "b") == 0 && gf_ds_label(ds, 0) == 1);
    gf_csv_info_free(&info);
    gf_ds_free(ds);
    /* headers that are not it: numbered columns, a names line, a second line of other width */
    static const char *const not_sk[] = {"1,2,3\n4,5,6\n", "a,b,c\n1,2,x\n",
                                         "3,2,x,y\n1,2,3,4\n", "3,0,a,b\n1,a\n"};
    p = gf_csv_default_params();
    for (size_t i = 0; i < sizeof not_sk / sizeof not_sk[0]; i++)
        CHECK(gf_csv_sniff_header(not_sk[i], strlen(not_sk[i]), &p) == GF_CSV_HEADER);
    p.header = GF_CSV_HEADER_AUTO;
    ds = gf_csv_parse_info(ctx, "a,b,c\n1,2,x\n", 12, "t.csv", &p, &info);
    CHECK(ds && info.header == GF_CSV_HEADER && strcmp(info.column_names[0], "a") == 0);
    gf_csv_info_free(&info);
    gf_ds_free(ds);
    CHECK(gf_csv_parse_info(ctx, "x\n", 2, "t.csv", &p, &info) == NULL && info.column_names == NULL);
    gf_ctx_clear_error(ctx);
}

/* Rows read with the training table's layout: a header by name, rows that still hold the label
 * by position, scikit-learn's first line skipped, errors naming the column. */
static void test_rows_layout(void) {
    const char *names[2] = {"b", "d"}, *cols[4] = {"a", "b", "c", "d"};
    gf_csv_rows_params p = gf_csv_rows_default_params();
    p.names = names;
    p.n_columns = 4;
    p.column_names = cols;
    gf_csv_rows r;
    static const char wide[] = "1,2,cat,4\n5,6,dog,8\n"; /* no header, a text label at c */
    CHECK(gf_csv_parse_rows_with(ctx, wide, sizeof wide - 1, "r.csv", 2, &p, &r) == GF_OK);
    CHECK(r.n == 2 && r.x[0] == 2 && r.x[1] == 4 && r.x[2] == 6 && r.x[3] == 8 && r.lines[1] == 2);
    gf_csv_rows_free(&r);
    static const char narrow[] = "2,4\n";                     /* just the features */
    CHECK(gf_csv_parse_rows_with(ctx, narrow, sizeof narrow - 1, "r.csv", 2, &p, &r) == GF_OK);
    CHECK(r.n == 1 && r.x[0] == 2 && r.x[1] == 4);
    gf_csv_rows_free(&r);
    static const char named[] = "d,x,b\n4,zz,2\n";           /* a header: by name */
    CHECK(gf_csv_parse_rows_with(ctx, named, sizeof named - 1, "r.csv", 2, &p, &r) == GF_OK);
    CHECK(r.n == 1 && r.x[0] == 2 && r.x[1] == 4);
    gf_csv_rows_free(&r);
    static const char sk[] = "1,3,p,q\n1,2,0,4\n";           /* scikit-learn's line skipped */
    CHECK(gf_csv_parse_rows_with(ctx, sk, sizeof sk - 1, "r.csv", 2, &p, &r) == GF_OK);
    CHECK(r.n == 1 && r.lines[0] == 2 && r.x[0] == 2 && r.x[1] == 4);
    gf_csv_rows_free(&r);
    p.delimiter = '\t';
    p.skip_lines = 1;
    static const char tab[] = "junk\n1\t2\tcat\t4\n";
    CHECK(gf_csv_parse_rows_with(ctx, tab, sizeof tab - 1, "r.csv", 2, &p, &r) == GF_OK);
    CHECK(r.n == 1 && r.lines[0] == 2 && r.x[1] == 4);
    gf_csv_rows_free(&r);
    p = gf_csv_rows_default_params();
    p.names = names;
    p.n_columns = 4;
    p.column_names = cols;
    const struct {
        const char *text, *want;
    } bad[] = {
        {"1,x,cat,4\n", "r.csv:1: column 2 (b): not a number: 'x'"},
        {"1,2,cat,4\n1,2,3\n", "r.csv:2: 3 fields, expected 4 (the columns of the table"},
        {"1,2,3\n", "r.csv:1: 3 values, expected the 2 features (or the training table's columns)"},
        {"b,c\n1,2\n", "r.csv:1: the header has no column \"d\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gf_ctx_clear_error(ctx);
        CHECK(gf_csv_parse_rows_with(ctx, bad[i].text, strlen(bad[i].text), "r.csv", 2, &p, &r) ==
              GF_ERR_FORMAT);
        CHECK(r.x == NULL && r.n == 0);
        if (!strstr(gf_ctx_error(ctx), bad[i].want)) {
            fprintf(stderr, "layout case %zu: '%s' lacks '%s'\n", i, gf_ctx_error(ctx), bad[i].want);
            CHECK(0);
        }
    }
    gf_ctx_clear_error(ctx);
    p.header = (gf_csv_header)9;
    CHECK(gf_csv_parse_rows_with(ctx, "1,2\n", 4, "r.csv", 2, &p, &r) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
}

/* Text feature columns: found, their values sorted, codes rewritten to match; a limit on their
 * count; columns named categorical whatever they hold. */
static void test_categorical(void) {
    const char *text = "n,color,label\n1,red,a\n2,blue,b\n3,red,a\n4,,b\n";
    gf_csv_params p = gf_csv_default_params();
    expect_error(text, &p, GF_ERR_FORMAT, "t.csv:2: column 2 (color): not a number: 'red'", NULL,
                 NULL);
    p.categorical = true;
    p.allow_missing = true;
    gf_csv_info info;
    gf_ds *ds = gf_csv_parse_info(ctx, text, strlen(text), "t.csv", &p, &info);
    CHECK(ds != NULL && info.n_categorical == 1);
    if (!ds || info.n_categorical != 1) return;
    const gf_csv_category *c = &info.categorical[0];
    CHECK(strcmp(c->column, "color") == 0 && c->at == 1 && c->n == 2);
    CHECK(strcmp(c->values[0], "blue") == 0 && strcmp(c->values[1], "red") == 0);
    float x[2];
    int64_t y;
    row(ds, 0, x, &y);
    CHECK(x[0] == 1 && x[1] == 1); /* red */
    row(ds, 1, x, &y);
    CHECK(x[0] == 2 && x[1] == 0); /* blue */
    row(ds, 3, x, &y);
    CHECK(x[0] == 4 && isnan(x[1])); /* missing */
    gf_ds_free(ds);
    gf_csv_info_free(&info);
    p.max_categories = 1;
    expect_error(text, &p, GF_ERR_FORMAT, "t.csv:3: column 2 (color): more than 1 categories",
                 "max_categories", NULL);
    /* a word among numbers is a typo, not a category */
    p.max_categories = 0;
    expect_error("a,b,label\n1,2,x\n3,oops,y\n4,5,x\n", &p, GF_ERR_FORMAT,
                 "t.csv:3: column 2 (b): not a number: 'oops'", NULL, NULL);
    /* named: categorical although every value is a number, sorted as text */
    p.max_categories = 0;
    const gf_csv_category named = {"n", 0, 0, NULL};
    p.categories = &named;
    p.n_categories = 1;
    const char *nums = "n,color,label\n10,red,a\n9,blue,b\n10,red,a\n";
    ds = gf_csv_parse_info(ctx, nums, strlen(nums), "t.csv", &p, &info);
    CHECK(ds && info.n_categorical == 2 && info.categorical[0].n == 2);
    if (ds && info.n_categorical == 2) {
        CHECK(strcmp(info.categorical[0].values[0], "10") == 0);
        row(ds, 1, x, &y);
        CHECK(x[0] == 1 && x[1] == 0);
    }
    gf_ds_free(ds);
    gf_csv_info_free(&info);
}

/* Rows for a model with a categorical column: read by the column's name, one-hot encoded, a
 * value the model never saw as zeros and counted. */
static void test_rows_categorical(void) {
    const char *names[3] = {"n", "color=blue", "color=red"};
    char *values[2] = {"blue", "red"};
    const gf_csv_category cat = {"color", 1, 2, values};
    gf_csv_rows_params p = gf_csv_rows_default_params();
    p.names = names;
    p.categories = &cat;
    p.n_categories = 1;
    gf_csv_rows r;
    static const char text[] = "color,n\nred,5\ngreen,6\nblue,7\n";
    CHECK(gf_csv_parse_rows_with(ctx, text, sizeof text - 1, "r.csv", 3, &p, &r) == GF_OK);
    CHECK(r.n == 3 && r.n_features == 3 && r.unseen == 1);
    const float want[9] = {5, 0, 1, 6, 0, 0, 7, 1, 0};
    for (int i = 0; r.x && i < 9; i++) CHECK(r.x[i] == want[i]);
    gf_csv_rows_free(&r);
    static const char missing[] = "color,n\n,5\n";
    gf_ctx_clear_error(ctx);
    CHECK(gf_csv_parse_rows_with(ctx, missing, sizeof missing - 1, "r.csv", 3, &p, &r) ==
          GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(ctx), "r.csv:2: column 1 (color): missing value") != NULL);
    gf_ctx_clear_error(ctx);
    p.allow_missing = true; /* zeros, not counted as unseen */
    CHECK(gf_csv_parse_rows_with(ctx, missing, sizeof missing - 1, "r.csv", 3, &p, &r) == GF_OK);
    CHECK(r.n == 1 && r.unseen == 0 && r.x[0] == 5 && r.x[1] == 0 && r.x[2] == 0);
    gf_csv_rows_free(&r);
    const gf_csv_category past = {"color", 2, 2, values}; /* features 2..3 of 3 */
    p.categories = &past;
    CHECK(gf_csv_parse_rows_with(ctx, text, sizeof text - 1, "r.csv", 3, &p, &r) ==
          GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "does not fit the 3 features") != NULL);
    gf_ctx_clear_error(ctx);
}

int main(void) {
    ctx = gf_ctx_new(NULL);
    test_categorical();
    test_rows_categorical();
    test_sklearn_auto();
    test_rows_layout();
    test_names_and_labels();
    test_numeric_labels();
    test_syntax();
    test_modes();
    test_gzip_file();
    test_errors();
    test_rows();
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_free(ctx);
    return test_finish("test_data_csv");
}
