/* The HTML report: the page is well-formed (every tag closed, every '&' an entity), user text is
 * escaped everywhere it appears, each chart has the elements it should, bad input is refused
 * without changing the report, and the write is atomic with clear errors. To add a case: write
 * a static void test_x(gf_ctx *) with CHECKs and call it from main.
 * `test_report --write DIR` writes the sample report (tests/report/test_report_chromium.sh
 * renders it in a headless browser). */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/graft.h"
#include "graft/report.h"

#include <stdint.h>
#include <zlib.h>

/* ---- a small well-formedness checker -------------------------------------------------------- */

/* Checks that tags nest and close, attribute values are quoted, text holds no '<' and every '&'
 * starts one of the references the report writes. Returns NULL or a description of the first
 * problem (static buffer). */
static const char *xml_problem(const char *s) {
    static char msg[256];
    char stack[128][24];
    int depth = 0;
    const char *p = s;
    if (strncmp(p, "<!DOCTYPE html>", 15) == 0) p += 15;
    while (*p) {
        if (*p == '&') {
            static const char *const ent[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
            bool ok = false;
            for (int i = 0; i < 5; i++) ok = ok || strncmp(p, ent[i], strlen(ent[i])) == 0;
            if (!ok && p[1] == '#') {
                const char *q = p + 2;
                while (*q >= '0' && *q <= '9') q++;
                ok = q > p + 2 && *q == ';';
            }
            if (!ok) {
                snprintf(msg, sizeof msg, "bare '&' at offset %ld: %.30s", (long)(p - s), p);
                return msg;
            }
            p++;
            continue;
        }
        if (*p != '<') {
            p++;
            continue;
        }
        bool closing = p[1] == '/';
        const char *n = p + 1 + closing;
        size_t len = 0;
        while (n[len] && (n[len] == '-' || n[len] == ':' || (n[len] >= 'a' && n[len] <= 'z') ||
                          (n[len] >= 'A' && n[len] <= 'Z') || (n[len] >= '0' && n[len] <= '9')))
            len++;
        if (len == 0 || len >= sizeof stack[0]) {
            snprintf(msg, sizeof msg, "'<' in text at offset %ld: %.30s", (long)(p - s), p);
            return msg;
        }
        const char *q = n + len;
        char quote = 0;
        while (*q && (quote || *q != '>')) {
            if (quote && *q == quote) quote = 0;
            else if (!quote && (*q == '"' || *q == '\'')) quote = *q;
            else if (!quote && *q == '=' && q[1] != '"' && q[1] != '\'') {
                snprintf(msg, sizeof msg, "unquoted attribute at offset %ld", (long)(q - s));
                return msg;
            } else if (!quote && *q == '<') {
                snprintf(msg, sizeof msg, "'<' inside a tag at offset %ld", (long)(q - s));
                return msg;
            }
            q++;
        }
        if (!*q) return "unterminated tag";
        bool self = q[-1] == '/';
        if (closing) {
            if (depth == 0 || strlen(stack[depth - 1]) != len || strncmp(stack[depth - 1], n, len)) {
                snprintf(msg, sizeof msg, "</%.*s> at offset %ld closes <%s>", (int)len, n,
                         (long)(p - s), depth ? stack[depth - 1] : "(nothing)");
                return msg;
            }
            depth--;
        } else if (!self) {
            if (depth == 128) return "nesting too deep";
            memcpy(stack[depth], n, len);
            stack[depth++][len] = '\0';
        }
        p = q + 1;
    }
    if (depth) {
        snprintf(msg, sizeof msg, "<%s> never closed", stack[depth - 1]);
        return msg;
    }
    return NULL;
}

/* Occurrences of the element <name ...> (or <name>). */
static int count_tag(const char *html, const char *name) {
    int n = 0;
    size_t len = strlen(name);
    for (const char *p = html; (p = strchr(p, '<')); p++)
        if (strncmp(p + 1, name, len) == 0 && strchr(" >/\n", p[1 + len])) n++;
    return n;
}

static int count_str(const char *html, const char *needle) {
    int n = 0;
    for (const char *p = html; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* The last block's HTML: everything after the previous page's blocks (the report renders
 * blocks in order, so the difference of two pages is the block). */
static char *page(gf_ctx *ctx, gf_report *r) {
    char *h = gf_report_html(ctx, r);
    CHECK(h != NULL);
    const char *bad = h ? xml_problem(h) : "no page";
    if (bad) fprintf(stderr, "page not well-formed: %s\n", bad);
    CHECK(bad == NULL);
    return h;
}

/* ---- the sample report ---------------------------------------------------------------------- */

static const char *const FASHION[] = {"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
static const char *const STRATEGIES[] = {"linear probe", "fine-tune head", "fine-tune all",
                                         "from scratch"};

static gf_report *sample_report(gf_ctx *ctx) {
    gf_report *r = gf_report_new(ctx, "graft compare \xE2\x80\x94 Fashion-MNIST classes 5-9");
    gf_report_add_text(ctx, r,
                       "Four ways to learn classes 5-9 from a model pretrained on classes 0-4, "
                       "with 50 labels per class.\nCurves are the mean over 3 seeds; the test "
                       "set is the 5000 test images of those classes.");
    const char *kv[] = {"model", "cnn-small", "optimizer", "adamw, lr 1e-3, weight decay 1e-2",
                        "epochs", "20 (patience 5)", "batch", "32", "seeds", "0, 1, 2",
                        "threads", "2"};
    gf_report_add_pairs(ctx, r, "settings", 6, kv);
    gf_report_add_heading(ctx, r, "training");
    enum { E = 20 };
    double loss[8][E], acc[8][E];
    gf_report_series ls[8], as[8];
    static char names[8][48];
    for (int s = 0; s < 4; s++)
        for (int v = 0; v < 2; v++) {
            int i = 2 * s + v;
            double start = 1.6 - 0.15 * s, floor_ = 0.12 + 0.08 * s + 0.18 * v;
            for (int e = 0; e < E; e++) {
                double d = exp(-(e + 1) / (3.0 + s));
                loss[i][e] = floor_ + (start - floor_) * d + (v ? 0.004 * e * s : 0);
                acc[i][e] = 0.97 - 0.05 * s - 0.04 * v - 0.5 * d;
            }
            snprintf(names[i], sizeof names[i], "%s (%s)", STRATEGIES[s], v ? "val" : "train");
            ls[i] = (gf_report_series){names[i], STRATEGIES[s], NULL, loss[i], NULL, E, v == 1};
            as[i] = (gf_report_series){names[i], STRATEGIES[s], NULL, acc[i], NULL, E, v == 1};
        }
    gf_report_axes ax = gf_report_default_axes();
    ax.title = "loss per epoch";
    ax.x_label = "epoch";
    ax.y_label = "cross-entropy loss";
    ax.y_zero = true;
    gf_report_add_line_chart(ctx, r, &ax, ls, 8);
    ax.title = "accuracy per epoch";
    ax.y_label = "accuracy";
    ax.y_zero = false;
    ax.y_percent = true;
    gf_report_add_line_chart(ctx, r, &ax, as, 8);

    gf_report_add_heading(ctx, r, "labels per class");
    int64_t lpc[5] = {1, 5, 10, 50, 100};
    double a[4 * 5] = {0.46, 0.71, 0.78, 0.86, 0.885, 0.44, 0.69, 0.77, 0.87, 0.9,
                       0.38, 0.64, 0.75, 0.89, 0.93, 0.27, 0.48, 0.6, 0.78, 0.85};
    double sd[4 * 5];
    for (int i = 0; i < 20; i++) sd[i] = 0.06 / sqrt(1 + i % 5 * 3);
    gf_report_add_accuracy_chart(ctx, r, NULL, 5, lpc, 4, STRATEGIES, a, sd, GF_REPORT_ACC_AUTO);
    int64_t lpc2[2] = {10, 50};
    double a2[8] = {0.78, 0.86, 0.77, 0.87, 0.75, 0.89, 0.6, 0.78};
    double s2[8] = {0.02, 0.01, 0.025, 0.012, 0.03, 0.01, 0.04, 0.02};
    gf_report_add_accuracy_chart(ctx, r, "accuracy at 10 and 50 labels per class", 2, lpc2, 4,
                                 STRATEGIES, a2, s2, GF_REPORT_ACC_AUTO);

    gf_report_add_heading(ctx, r, "results");
    const char *header[] = {"strategy", "trainable params", "epochs", "test accuracy",
                            "macro F1", "time (s)"};
    const char *cells[] = {"linear probe",   "645",    "14", "86.0 \xC2\xB1 0.6%", "0.858", "1.9",
                           "fine-tune head", "16,645", "17", "87.0 \xC2\xB1 0.4%", "0.869", "3.2",
                           "fine-tune all",  "421,642", "20", "89.0 \xC2\xB1 0.5%", "0.889", "9.8",
                           "from scratch",   "421,642", "20", "78.0 \xC2\xB1 1.1%", "0.776", "9.5"};
    gf_report_add_table(ctx, r, "test set, mean \xC2\xB1 std over 3 seeds", 6, header, 4, cells);
    int64_t cm[25] = {951, 0, 31, 2, 16,  1, 902, 3, 90, 4,  28, 1, 941, 1, 29,
                      3, 61, 4, 927, 5,   12, 2, 45, 3, 938};
    gf_report_add_confusion(ctx, r, "confusion matrix: fine-tune all, seed 0", 5, cm, FASHION);
    gf_report_add_pre(ctx, r, "load plan",
                      "load plan: pretrained.safetensors\n"
                      "  shape mismatch trainable   classifier.3.weight  (model [5, 128], file F32 [10, 128])\n"
                      "  shape mismatch trainable   classifier.3.bias    (model [5], file F32 [10])\n"
                      "  6 loaded, 0 missing, 0 unexpected, 2 mismatched\n");
    return r;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_sample(gf_ctx *ctx) {
    gf_report *r = sample_report(ctx);
    CHECK(gf_ctx_status(ctx) == GF_OK);
    if (gf_ctx_status(ctx)) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    CHECK(gf_report_count(r) == 12);
    char *h = page(ctx, r);
    if (h) {
        CHECK(count_tag(h, "svg") == 5);         /* 2 curves, 2 accuracy charts, 1 heat map */
        CHECK(count_tag(h, "polyline") == 8 + 8 + 4);
        CHECK(count_tag(h, "table") == 1);
        CHECK(count_tag(h, "tr") == 5);
        CHECK(count_tag(h, "script") == 0);
        CHECK(strstr(h, "http://") == strstr(h, "http://www.w3.org/2000/svg")); /* no links */
        CHECK(strstr(h, "src=") == NULL && strstr(h, "href=") == NULL);
        CHECK(count_str(h, "stroke-dasharray") >= 8); /* the validation curves (and legend) */
        CHECK(count_str(h, "<td class=\"num\">") == 4 * 5);
    }
    free(h);
    gf_report_free(r);
}

static void test_escaping(gf_ctx *ctx) {
    const char *evil = "<b>&\"x\"'</b>";
    const char *esc = "&lt;b&gt;&amp;&quot;x&quot;&#39;&lt;/b&gt;";
    gf_report *r = gf_report_new(ctx, evil);
    gf_report_add_heading(ctx, r, evil);
    gf_report_add_text(ctx, r, evil);
    gf_report_add_pre(ctx, r, evil, evil);
    const char *kv[] = {evil, evil};
    gf_report_add_pairs(ctx, r, evil, 1, kv);
    const char *row[] = {evil, evil};
    gf_report_add_table(ctx, r, evil, 2, row, 1, row);
    double y[3] = {1, 2, 3};
    gf_report_series s = {evil, evil, NULL, y, NULL, 3, false};
    gf_report_axes ax = gf_report_default_axes();
    ax.title = ax.x_label = ax.y_label = evil;
    ax.markers = true;
    gf_report_add_line_chart(ctx, r, &ax, &s, 1);
    const char *names[] = {evil, evil};
    int64_t cm[4] = {1, 2, 3, 4}, lpc[1] = {5};
    double acc[1] = {0.5};
    gf_report_add_confusion(ctx, r, evil, 2, cm, names);
    gf_report_add_accuracy_chart(ctx, r, evil, 1, lpc, 1, names, acc, NULL, GF_REPORT_ACC_BARS);
    CHECK(gf_ctx_status(ctx) == GF_OK);
    char *h = page(ctx, r);
    if (h) {
        CHECK(strstr(h, "<b>") == NULL);
        CHECK(strstr(h, "\"x\"") == NULL);
        /* title (2) heading, text, pre (2), pairs (3), table (3), chart card + svg title +
         * aria-label + axis labels (2) + legend + 3 marker titles, confusion card + svg (2) +
         * 2 cells x 4 tooltips... : at least 25 */
        CHECK(count_str(h, esc) >= 25);
    }
    free(h);
    gf_report_free(r);

    /* control characters and invalid UTF-8 become U+FFFD; valid UTF-8 stays */
    r = gf_report_new(ctx, "x");
    gf_report_add_text(ctx, r, "a\x01" "b\xff" "c \xC3\xA9t\xC3\xA9 \xED\xA0\x80");
    h = page(ctx, r);
    if (h) {
        CHECK(strstr(h, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c \xC3\xA9t\xC3\xA9 \xEF\xBF\xBD") != NULL);
        CHECK(strchr(h, '\x01') == NULL);
    }
    free(h);
    gf_report_free(r);
}

static void test_elements(gf_ctx *ctx) {
    gf_report *r = gf_report_new(ctx, NULL);
    /* gaps: a NaN splits a series into runs; a lone point gets a marker */
    double y1[6] = {1, 2, NAN, 3, 4, 5}, y2[4] = {NAN, 2, NAN, 1};
    gf_report_series s[2] = {{"a", NULL, NULL, y1, NULL, 6, false}, {"b", NULL, NULL, y2, NULL, 4, true}};
    gf_report_add_line_chart(ctx, r, NULL, s, 2);
    char *h = page(ctx, r);
    if (h) {
        CHECK(strstr(h, "<h1>graft report</h1>") != NULL); /* the default title */
        CHECK(count_tag(h, "polyline") == 2);
        CHECK(count_tag(h, "circle") == 2);                /* b's two isolated points */
        CHECK(count_tag(h, "clipPath") == 1);
        CHECK(strstr(h, "series 1") == NULL);              /* names were given */
    }
    free(h);
    gf_report_free(r);

    /* markers everywhere, error bars, a fixed range, a log axis */
    r = gf_report_new(ctx, "t");
    double x[4] = {1, 10, 100, 1000}, y[4] = {0.5, 0.6, 0.7, 0.8}, e[4] = {0.01, 0, NAN, 0.02};
    gf_report_series one = {"only", NULL, x, y, e, 4, false};
    gf_report_axes ax = gf_report_default_axes();
    ax.x_log = ax.markers = ax.y_percent = true;
    ax.y_lo = 0;
    ax.y_hi = 1;
    gf_report_add_line_chart(ctx, r, &ax, &one, 1);
    h = page(ctx, r);
    if (h) {
        CHECK(count_tag(h, "circle") == 4 + 1);            /* + the legend's marker */
        CHECK(count_str(h, ">100%</text>") == 1);
        CHECK(count_str(h, ">1000</text>") == 1);          /* decade ticks */
        CHECK(count_str(h, "H") > 0);
    }
    free(h);
    gf_report_free(r);

    /* an empty chart says so; an empty report is still a page */
    r = gf_report_new(ctx, "empty");
    h = page(ctx, r);
    free(h);
    gf_report_series none = {"nothing", NULL, NULL, y2, NULL, 1, false};
    gf_report_add_line_chart(ctx, r, NULL, &none, 1);
    gf_report_add_line_chart(ctx, r, NULL, NULL, 0);
    h = page(ctx, r);
    if (h) CHECK(count_str(h, ">no data</text>") == 2);
    free(h);
    gf_report_free(r);

    /* confusion: k*k cells + frame + 20 colour steps + bar frame; recall per row */
    r = gf_report_new(ctx, "cm");
    int64_t cm[9] = {5, 1, 0, 0, 0, 0, 2, 2, 6};
    gf_report_add_confusion(ctx, r, NULL, 3, cm, NULL);
    h = page(ctx, r);
    if (h) {
        CHECK(count_tag(h, "rect") == 9 + 1 + 20 + 1);
        CHECK(count_str(h, ">83.3%</text>") == 1);         /* row 0: 5 of 6 */
        CHECK(count_str(h, ">&#8211;</text>") == 1);       /* row 1 has no examples */
        CHECK(count_str(h, ">60.0%</text>") == 1);
        CHECK(strstr(h, "accuracy 68.75%") != NULL);       /* 11 of 16 */
    }
    free(h);
    gf_report_free(r);

    /* many classes: no numbers in cells, still well-formed */
    r = gf_report_new(ctx, "cm100");
    int64_t *big = calloc(100 * 100, sizeof *big);
    for (int i = 0; i < 100; i++) big[i * 100 + i] = 7, big[i * 100 + (i + 1) % 100] = 3;
    gf_report_add_confusion(ctx, r, NULL, 100, big, NULL);
    free(big);
    h = page(ctx, r);
    if (h) CHECK(count_tag(h, "rect") == 100 * 100 + 22);
    free(h);
    gf_report_free(r);

    /* bars: one rect per finite value; long legend names are cut with an ellipsis */
    r = gf_report_new(ctx, "bars");
    const char *strat[] = {"a strategy with a very long name indeed, longer than the legend", "b"};
    int64_t lpc[2] = {1, 10};
    double acc[4] = {0.4, 0.8, NAN, 0.9};
    gf_report_add_accuracy_chart(ctx, r, NULL, 2, lpc, 2, strat, acc, NULL, GF_REPORT_ACC_AUTO);
    h = page(ctx, r);
    if (h) {
        CHECK(count_str(h, "</title></rect>") == 3);
        CHECK(strstr(h, "\xE2\x80\xA6</text>") != NULL);
        CHECK(count_str(h, ">90.0</text>") == 1);
    }
    free(h);
    gf_report_free(r);
}

static void test_errors(gf_ctx *ctx) {
    gf_report *r = gf_report_new(ctx, "errors");
    double y[2] = {1, 2}, xneg[2] = {0, 1}, xnan[2] = {1, NAN};
    gf_report_series bad_n = {"s", NULL, NULL, y, NULL, -1, false};
    gf_report_series no_y = {"s", NULL, NULL, NULL, NULL, 2, false};
    gf_report_series neg = {"s", NULL, xneg, y, NULL, 2, false};
    gf_report_series nanx = {"s", NULL, xnan, y, NULL, 2, false};
    gf_report_axes ax = gf_report_default_axes();
    ax.title = "curves";

#define EXPECT_FAIL(expr, ...)                                                                \
    do {                                                                                      \
        gf_ctx_clear_error(ctx);                                                              \
        CHECK((expr) == GF_ERR_INVALID);                                                      \
        const char *want_[] = {__VA_ARGS__};                                                  \
        for (size_t i_ = 0; i_ < sizeof want_ / sizeof want_[0]; i_++)                        \
            if (!strstr(gf_ctx_error(ctx), want_[i_])) {                                      \
                fprintf(stderr, "message '%s' lacks '%s'\n", gf_ctx_error(ctx), want_[i_]);   \
                CHECK(0);                                                                     \
            }                                                                                 \
        CHECK(gf_report_count(r) == 0);                                                       \
    } while (0)

    EXPECT_FAIL(gf_report_add_line_chart(ctx, r, &ax, &bad_n, 1), "curves", "-1 points");
    EXPECT_FAIL(gf_report_add_line_chart(ctx, r, &ax, &no_y, 1), "curves", "y NULL");
    EXPECT_FAIL(gf_report_add_line_chart(ctx, r, &ax, NULL, 2), "curves", "2 series");
    EXPECT_FAIL(gf_report_add_line_chart(ctx, r, &ax, &nanx, 1), "x[1] is nan");
    ax.x_log = true;
    EXPECT_FAIL(gf_report_add_line_chart(ctx, r, &ax, &neg, 1), "x[0] = 0 on a log axis");
    int64_t lpc[2] = {0, 5};
    const char *names[] = {"s"};
    EXPECT_FAIL(gf_report_add_accuracy_chart(ctx, r, "acc", 2, lpc, 1, names, y, NULL, 0),
                "acc", "labels_per_class[0] = 0");
    EXPECT_FAIL(gf_report_add_accuracy_chart(ctx, r, "acc", 2, lpc + 1, 1, names, NULL, NULL, 0),
                "acc");
    EXPECT_FAIL(gf_report_add_accuracy_chart(ctx, r, "acc", 1, lpc + 1, 1, names, y, NULL, 7),
                "unknown style 7");
    int64_t cm[4] = {1, -2, 3, 4};
    EXPECT_FAIL(gf_report_add_confusion(ctx, r, "cm", 2, cm, NULL), "cm", "count[0][1] = -2");
    EXPECT_FAIL(gf_report_add_confusion(ctx, r, "cm", 0, cm, NULL), "0 classes");
    EXPECT_FAIL(gf_report_add_confusion(ctx, r, "cm", 201, cm, NULL), "201 classes");
    const char *hdr[] = {"a"};
    EXPECT_FAIL(gf_report_add_table(ctx, r, "tab", 0, hdr, 0, NULL), "tab", "0 columns");
    EXPECT_FAIL(gf_report_add_table(ctx, r, "tab", 1, hdr, 2, NULL), "cells NULL");
    EXPECT_FAIL(gf_report_add_pairs(ctx, r, "kv", 2, NULL), "kv");
    EXPECT_FAIL(gf_report_add_text(ctx, r, NULL), "text is NULL");
    EXPECT_FAIL(gf_report_add_heading(ctx, NULL, "x"), "report is NULL");
    gf_ctx_clear_error(ctx);
    CHECK(gf_report_html(ctx, NULL) == NULL && gf_ctx_status(ctx) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    gf_report_free(r);
    gf_report_free(NULL);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_write(gf_ctx *ctx) {
    char base[] = "/tmp/graft_report_XXXXXX";
    if (!mkdtemp(base)) {
        CHECK(0);
        return;
    }
    char dir[256], file[300], path[300];
    snprintf(dir, sizeof dir, "%s/out", base);
    snprintf(path, sizeof path, "%s/index.html", dir);

    gf_report *r = gf_report_new(ctx, "first");
    CHECK(gf_report_write(ctx, r, dir) == GF_OK);      /* creates the directory */
    char *want = gf_report_html(ctx, r), *got = slurp(path);
    CHECK(want && got && strcmp(want, got) == 0);
    CHECK(dir_entries(dir) == 1);                       /* no temporary file left */
    free(want);
    free(got);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);

    gf_report_add_text(ctx, r, "second version");
    CHECK(gf_report_write(ctx, r, dir) == GF_OK);       /* replaces it */
    got = slurp(path);
    CHECK(got && strstr(got, "second version"));
    CHECK(dir_entries(dir) == 1);
    free(got);

    /* a missing parent, a file where the directory should be */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no/such/dir", base);
    gf_ctx_clear_error(ctx);
    CHECK(gf_report_write(ctx, r, missing) == GF_ERR_IO);
    CHECK(strstr(gf_ctx_error(ctx), missing) && strstr(gf_ctx_error(ctx), "No such file"));
    snprintf(file, sizeof file, "%s/afile", base);
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    gf_ctx_clear_error(ctx);
    CHECK(gf_report_write(ctx, r, file) == GF_ERR_IO);
    CHECK(strstr(gf_ctx_error(ctx), "not a directory") != NULL);
    gf_ctx_clear_error(ctx);
    CHECK(gf_report_write(ctx, r, "") == GF_ERR_INVALID);

    /* a directory that cannot be written: the old page stays */
    gf_report *other = gf_report_new(ctx, "other");
    gf_ctx_clear_error(ctx);
    if (geteuid() != 0) {
        chmod(dir, 0555);
        CHECK(gf_report_write(ctx, other, dir) == GF_ERR_IO);
        CHECK(strstr(gf_ctx_error(ctx), path) && strstr(gf_ctx_error(ctx), "Permission denied"));
        got = slurp(path);
        CHECK(got && strstr(got, "second version"));
        free(got);
        chmod(dir, 0755);
    } else { /* root writes anywhere permissions say no; /proc refuses new files even to root */
        CHECK(gf_report_write(ctx, other, "/proc") == GF_ERR_IO);
        CHECK(strstr(gf_ctx_error(ctx), "/proc/index.html") != NULL);
    }
    gf_ctx_clear_error(ctx);
    gf_report_free(other);
    gf_report_free(r);
    unlink(path);
    unlink(file);
    rmdir(dir);
    CHECK(rmdir(base) == 0);
}

/* ---- thumbnails ------------------------------------------------------------------------------ */

static int b64_value(char c) {
    const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(tab, c) : NULL;
    return p ? (int)(p - tab) : -1;
}

/* The bytes of the first data:image/png URI after *at in html (malloc'd, *n), moving *at past it. */
static unsigned char *next_png(const char **at, size_t *n) {
    const char *p = strstr(*at, "data:image/png;base64,");
    if (!p) return NULL;
    p += strlen("data:image/png;base64,");
    size_t len = strcspn(p, "\"");
    unsigned char *out = malloc(len / 4 * 3 + 3);
    size_t k = 0;
    for (size_t i = 0; out && i + 3 < len; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) v[j] = p[i + j] == '=' ? 0 : b64_value(p[i + j]);
        if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) break;
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[k++] = (unsigned char)(w >> 16);
        if (p[i + 2] != '=') out[k++] = (unsigned char)(w >> 8);
        if (p[i + 3] != '=') out[k++] = (unsigned char)w;
    }
    *n = k;
    *at = p + len;
    return out;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Images as PNG data: URIs: the header's size and colour type, the pixels (8-bit, rounded from
 * [0, 1], clamped) inflated from IDAT, a large image reduced by block averages, bad images
 * refused. */
static void test_images(gf_ctx *ctx) {
    /* [3, 2, 3]: channel planes; -1 and 2 clamp, NaN is 0 */
    const float rgb[18] = {0, 0.5f, 1, -1, 2, NAN,          /* R */
                           1, 1, 1, 0, 0, 0,                /* G */
                           0.2f, 0.4f, 0.6f, 0.8f, 1, 0};   /* B */
    float *big = malloc(sizeof(float) * 300 * 300);
    for (int i = 0; big && i < 300 * 300; i++) big[i] = (float)((i / 300 / 3 + i % 300 / 3) % 2);
    gf_report_image im[2] = {{3, 2, 3, rgb, "a <small> one"}, {1, 300, 300, big, "big"}};
    gf_report *r = gf_report_new(ctx, "images");
    CHECK(gf_report_add_images(ctx, r, "thumbnails", 2, im) == GF_OK);
    char *html = gf_report_html(ctx, r);
    CHECK(html != NULL && xml_problem(html) == NULL);
    CHECK(html && strstr(html, "alt=\"a &lt;small&gt; one\"") && strstr(html, "width=\"66\" height=\"44\""));
    CHECK(html && strstr(html, "width=\"100\" height=\"100\""));
    const char *at = html ? html : "";
    const unsigned char want[18] = {0, 255, 51, 128, 255, 102, 255, 255, 153,
                                    0, 0, 204, 255, 0, 255, 0, 0, 0};
    for (int k = 0; k < 2; k++) {
        size_t n = 0;
        unsigned char *png = next_png(&at, &n);
        CHECK(png && n > 33 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0 &&
              memcmp(png + 12, "IHDR", 4) == 0);
        if (!png || n <= 33) {
            free(png);
            continue;
        }
        const uint32_t w = be32(png + 16), h = be32(png + 20);
        CHECK(k == 0 ? w == 3 && h == 2 && png[25] == 2 : w == 100 && h == 100 && png[25] == 0);
        const size_t idat_n = be32(png + 33);
        CHECK(memcmp(png + 37, "IDAT", 4) == 0 && 41 + idat_n <= n);
        uLongf raw_n = (uLongf)(h * (1 + w * (k ? 1 : 3)));
        unsigned char *raw = malloc(raw_n);
        CHECK(raw && uncompress(raw, &raw_n, png + 41, (uLong)idat_n) == Z_OK);
        if (raw && k == 0) /* rows: filter byte 0, then R G B per pixel */
            for (int y = 0; y < 2; y++)
                CHECK(raw[y * 10] == 0 && memcmp(raw + y * 10 + 1, want + y * 9, 9) == 0);
        if (raw && k == 1) /* 3x3 blocks of the checkerboard: each one value */
            CHECK(raw[0] == 0 && raw[1] == 0 && raw[2] == 255 && raw[101 + 1] == 255);
        free(raw);
        free(png);
    }
    free(html);
    gf_report_image bad = {2, 4, 4, rgb, NULL};
    gf_ctx_clear_error(ctx);
    CHECK(gf_report_add_images(ctx, r, NULL, 1, &bad) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "image 0 is [2, 4, 4]") != NULL);
    bad = (gf_report_image){1, 4, 4, NULL, NULL};
    gf_ctx_clear_error(ctx);
    CHECK(gf_report_add_images(ctx, r, NULL, 1, &bad) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "without pixels") != NULL);
    CHECK(gf_report_count(r) == 1);
    gf_ctx_clear_error(ctx);
    gf_report_free(r);
    free(big);
}

int main(int argc, char **argv) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    if (argc == 3 && strcmp(argv[1], "--write") == 0) {
        gf_report *r = sample_report(ctx);
        gf_status st = gf_ctx_status(ctx) ? gf_ctx_status(ctx) : gf_report_write(ctx, r, argv[2]);
        if (st) fprintf(stderr, "test_report: %s\n", gf_ctx_error(ctx));
        gf_report_free(r);
        gf_ctx_free(ctx);
        return st ? 1 : 0;
    }
    test_sample(ctx);
    test_escaping(ctx);
    test_elements(ctx);
    test_errors(ctx);
    test_write(ctx);
    test_images(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_report");
}
