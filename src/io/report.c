/* The HTML report: each block is rendered to an HTML fragment when it is added, and the page is
 * those fragments in order inside one template with inline CSS. Charts are SVG written here. */
#define _GNU_SOURCE /* mkostemp */
#include "graft/report.h"
#include "io/report_internal.h"
#include "io/io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the string builder ------------------------------------------------------------------- */

static bool sb_reserve(gf_sb *b, size_t extra) {
    if (b->oom) return false;
    if (b->n + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void gf_sb_put(gf_sb *b, const char *s, size_t len) {
    if (!sb_reserve(b, len)) return;
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

void gf_sb_puts(gf_sb *b, const char *s) { gf_sb_put(b, s, strlen(s)); }

void gf_sb_printf(gf_sb *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int len = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (len < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)len < sizeof small) {
        gf_sb_put(b, small, (size_t)len);
        return;
    }
    if (!sb_reserve(b, (size_t)len)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 for an invalid byte. Rejects overlong
 * forms, surrogates and U+FFFE/U+FFFF (not allowed in XML). */
static int utf8_len(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        if (!(s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80)) return 0;
        if (c == 0xEF && s[1] == 0xBF && s[2] >= 0xBE) return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

int gf_utf8_chars(const char *s, size_t len) {
    int n = 0;
    for (size_t i = 0; i < len;) {
        int l = utf8_len((const unsigned char *)s + i);
        i += l && i + (size_t)l <= len ? (size_t)l : 1;
        n++;
    }
    return n;
}

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

void gf_sb_esc_n(gf_sb *b, const char *s, size_t len, int max_chars) {
    if (!s) return;
    int total = max_chars >= 0 ? gf_utf8_chars(s, len) : 0;
    int keep = max_chars >= 0 && total > max_chars ? (max_chars > 1 ? max_chars - 1 : 1) : -1;
    int chars = 0;
    for (size_t i = 0; i < len;) {
        if (keep >= 0 && chars == keep) {
            gf_sb_puts(b, "\xE2\x80\xA6"); /* … */
            return;
        }
        const unsigned char *u = (const unsigned char *)s + i;
        int l = utf8_len(u);
        chars++;
        if (l == 0 || i + (size_t)l > len) {
            gf_sb_puts(b, REPLACEMENT);
            i++;
            continue;
        }
        if (l > 1) {
            gf_sb_put(b, s + i, (size_t)l);
        } else {
            switch (*u) {
            case '&': gf_sb_puts(b, "&amp;"); break;
            case '<': gf_sb_puts(b, "&lt;"); break;
            case '>': gf_sb_puts(b, "&gt;"); break;
            case '"': gf_sb_puts(b, "&quot;"); break;
            case '\'': gf_sb_puts(b, "&#39;"); break;
            case '\t': case '\n': case '\r': gf_sb_put(b, s + i, 1); break;
            default:
                if (*u < 0x20 || *u == 0x7F) gf_sb_puts(b, REPLACEMENT);
                else gf_sb_put(b, s + i, 1);
            }
        }
        i += (size_t)l;
    }
}

void gf_sb_esc(gf_sb *b, const char *s) {
    if (s) gf_sb_esc_n(b, s, strlen(s), -1);
}

/* ---- the report ----------------------------------------------------------------------------- */

struct gf_report {
    char *title;
    int n, cap;
    char **html; /* rendered blocks */
    int next_id; /* for element ids (clip paths) that must be unique in the page */
};

gf_report *gf_report_new(gf_ctx *ctx, const char *title) {
    gf_report *r = calloc(1, sizeof *r);
    if (r) r->title = strdup(title && *title ? title : "graft report");
    if (!r || !r->title) {
        free(r);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "report: out of memory");
        return NULL;
    }
    return r;
}

void gf_report_free(gf_report *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) free(r->html[i]);
    free(r->html);
    free(r->title);
    free(r);
}

int gf_report_count(const gf_report *r) { return r ? r->n : 0; }

int gf_report_next_id(gf_report *r) { return r->next_id++; }

gf_status gf_report_check(gf_ctx *ctx, const gf_report *r, const char *fn) {
    if (!r) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: report is NULL", fn);
    return GF_OK;
}

/* Takes b's text as the next block (or frees it on failure). */
gf_status gf_report_push(gf_ctx *ctx, gf_report *r, gf_sb *b, const char *fn) {
    if (!b->oom && r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 16;
        char **h = realloc(r->html, (size_t)cap * sizeof *h);
        if (!h) b->oom = true;
        else {
            r->html = h;
            r->cap = cap;
        }
    }
    if (b->oom || !b->p) {
        free(b->p);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", fn);
    }
    r->html[r->n++] = b->p;
    b->p = NULL;
    return GF_OK;
}

static void card_open(gf_sb *b, const char *cls, const char *title) {
    gf_sb_printf(b, "<section class=\"card %s\">\n", cls);
    if (title && *title) {
        gf_sb_puts(b, "<h3>");
        gf_sb_esc(b, title);
        gf_sb_puts(b, "</h3>\n");
    }
}

/* ---- text ----------------------------------------------------------------------------------- */

gf_status gf_report_add_heading(gf_ctx *ctx, gf_report *r, const char *text) {
    if (gf_report_check(ctx, r, "report heading")) return gf_ctx_status(ctx);
    gf_sb b = {0};
    gf_sb_puts(&b, "<h2>");
    gf_sb_esc(&b, text ? text : "");
    gf_sb_puts(&b, "</h2>\n");
    return gf_report_push(ctx, r, &b, "report heading");
}

static bool blank_line(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

gf_status gf_report_add_text(gf_ctx *ctx, gf_report *r, const char *text) {
    if (gf_report_check(ctx, r, "report text")) return gf_ctx_status(ctx);
    if (!text) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "report text: text is NULL");
    gf_sb b = {0};
    gf_sb_puts(&b, "<div class=\"text\">\n");
    bool in_p = false;
    for (const char *s = text; *s;) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        if (blank_line(s, len)) {
            if (in_p) gf_sb_puts(&b, "</p>\n");
            in_p = false;
        } else {
            gf_sb_puts(&b, in_p ? "<br/>\n" : "<p>");
            in_p = true;
            gf_sb_esc_n(&b, s, len, -1);
        }
        s += len + (nl ? 1 : 0);
    }
    if (in_p) gf_sb_puts(&b, "</p>\n");
    gf_sb_puts(&b, "</div>\n");
    return gf_report_push(ctx, r, &b, "report text");
}

gf_status gf_report_add_pre(gf_ctx *ctx, gf_report *r, const char *title, const char *text) {
    if (gf_report_check(ctx, r, "report pre")) return gf_ctx_status(ctx);
    if (!text) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "report pre: text is NULL");
    gf_sb b = {0};
    card_open(&b, "pre", title);
    gf_sb_puts(&b, "<pre>");
    gf_sb_esc(&b, text);
    gf_sb_puts(&b, "</pre>\n</section>\n");
    return gf_report_push(ctx, r, &b, "report pre");
}

gf_status gf_report_add_pairs(gf_ctx *ctx, gf_report *r, const char *title, int n,
                              const char *const *kv) {
    if (gf_report_check(ctx, r, "report pairs")) return gf_ctx_status(ctx);
    if (n < 0 || (n > 0 && !kv))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "report pairs '%s': %d pairs and kv %s",
                                title ? title : "", n, kv ? "given" : "NULL");
    gf_sb b = {0};
    card_open(&b, "pairs", title);
    gf_sb_puts(&b, "<dl class=\"pairs\">\n");
    for (int i = 0; i < n; i++) {
        gf_sb_puts(&b, "<dt>");
        gf_sb_esc(&b, kv[2 * i] ? kv[2 * i] : "");
        gf_sb_puts(&b, "</dt><dd>");
        gf_sb_esc(&b, kv[2 * i + 1] ? kv[2 * i + 1] : "");
        gf_sb_puts(&b, "</dd>\n");
    }
    gf_sb_puts(&b, "</dl>\n</section>\n");
    return gf_report_push(ctx, r, &b, "report pairs");
}

/* ---- tables --------------------------------------------------------------------------------- */

/* "0.84", "-3", "16,645", "84.2%", "1e-3", "0.84 ± 0.02", "0.84 +/- 0.02": one or two
 * numbers. */
static bool numeric_cell(const char *cell) {
    if (!cell) return false;
    char buf[64]; /* without thousands separators */
    size_t n = 0;
    for (const char *c = cell; *c; c++) {
        if (n + 1 >= sizeof buf) return false;
        if (*c == ',' && c > cell && c[-1] >= '0' && c[-1] <= '9' && c[1] >= '0' && c[1] <= '9')
            continue;
        buf[n++] = *c;
    }
    buf[n] = '\0';
    const char *s = buf;
    for (int part = 0; part < 2; part++) {
        while (*s == ' ') s++;
        char *end;
        strtod(s, &end);
        if (end == s) return false;
        s = end;
        if (*s == '%') s++;
        while (*s == ' ') s++;
        if (!*s) return true;
        if (part == 1) return false;
        if (strncmp(s, "\xC2\xB1", 2) == 0) s += 2;
        else if (strncmp(s, "+/-", 3) == 0) s += 3;
        else return false;
    }
    return false;
}

gf_status gf_report_add_table(gf_ctx *ctx, gf_report *r, const char *title, int n_cols,
                              const char *const *header, int n_rows, const char *const *cells) {
    if (gf_report_check(ctx, r, "report table")) return gf_ctx_status(ctx);
    if (n_cols < 1 || n_rows < 0 || !header || (n_rows > 0 && !cells))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "report table '%s': %d columns, %d rows, header %s, cells %s",
                                title ? title : "", n_cols, n_rows, header ? "given" : "NULL",
                                cells ? "given" : "NULL");
    bool *num = calloc((size_t)n_cols, sizeof *num);
    if (!num) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "report table: out of memory");
    for (int j = 0; j < n_cols; j++) {
        int seen = 0, numeric = 0;
        for (int i = 0; i < n_rows; i++) {
            const char *c = cells[(size_t)i * (size_t)n_cols + (size_t)j];
            if (!c || !*c) continue;
            seen++;
            numeric += numeric_cell(c);
        }
        num[j] = seen > 0 && numeric == seen;
    }
    gf_sb b = {0};
    card_open(&b, "table", title);
    gf_sb_puts(&b, "<div class=\"scroll\"><table>\n<thead><tr>");
    for (int j = 0; j < n_cols; j++) {
        gf_sb_puts(&b, num[j] ? "<th class=\"num\">" : "<th>");
        gf_sb_esc(&b, header[j] ? header[j] : "");
        gf_sb_puts(&b, "</th>");
    }
    gf_sb_puts(&b, "</tr></thead>\n<tbody>\n");
    for (int i = 0; i < n_rows; i++) {
        gf_sb_puts(&b, "<tr>");
        for (int j = 0; j < n_cols; j++) {
            const char *c = cells[(size_t)i * (size_t)n_cols + (size_t)j];
            gf_sb_puts(&b, numeric_cell(c) ? "<td class=\"num\">" : "<td>");
            gf_sb_esc(&b, c ? c : "");
            gf_sb_puts(&b, "</td>");
        }
        gf_sb_puts(&b, "</tr>\n");
    }
    gf_sb_puts(&b, "</tbody>\n</table></div>\n</section>\n");
    free(num);
    return gf_report_push(ctx, r, &b, "report table");
}

/* ---- the page ------------------------------------------------------------------------------- */

/* No '<' or '&' in here: the page stays well-formed XML. */
static const char CSS[] =
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:#f3f5f8;color:#1f2933;"
    "font:15px/1.5 \"DejaVu Sans\",\"Liberation Sans\",system-ui,-apple-system,\"Segoe UI\","
    "Roboto,Arial,sans-serif}\n"
    ".wrap{max-width:1000px;margin:0 auto;padding:0 22px}\n"
    "header{background:#1f2d3d;color:#fff;padding:22px 0 18px;border-bottom:4px solid #1f77b4}\n"
    "header h1{margin:0;font-size:25px;font-weight:600;letter-spacing:.2px}\n"
    "header p{margin:4px 0 0;color:#aebccb;font-size:13px}\n"
    "main{padding:12px 0 28px}\n"
    "h2{font-size:19px;font-weight:600;margin:26px 0 8px;padding-bottom:4px;"
    "border-bottom:2px solid #d6dde6;color:#1f2d3d}\n"
    ".text p{margin:8px 0;max-width:820px}\n"
    ".card{background:#fff;border:1px solid #dce2ea;border-radius:8px;padding:14px 18px 12px;"
    "margin:14px 0;box-shadow:0 1px 2px rgba(16,24,40,.06)}\n"
    ".card h3{margin:0 0 6px;font-size:15px;font-weight:600;color:#334155}\n"
    ".card p.cap{margin:0 0 8px;color:#616e7c;font-size:13px}\n"
    "svg{display:block;max-width:100%;height:auto;margin:0 auto}\n"
    "svg.wide{width:100%}\n"
    ".scroll{overflow-x:auto}\n"
    "table{border-collapse:collapse;width:100%;font-size:14px}\n"
    "th{text-align:left;background:#eef2f6;font-weight:600;color:#334155;"
    "border-bottom:2px solid #cfd8e3;padding:7px 12px;white-space:nowrap}\n"
    "td{padding:6px 12px;border-bottom:1px solid #e6ebf1}\n"
    "tbody tr:nth-child(even){background:#f9fafc}\n"
    "th.num,td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "pre{margin:0;background:#f6f8fa;border:1px solid #e1e6eb;border-radius:6px;"
    "padding:10px 12px;overflow-x:auto;"
    "font:13px/1.45 \"DejaVu Sans Mono\",ui-monospace,Menlo,Consolas,monospace}\n"
    "dl.pairs{display:grid;grid-template-columns:max-content 1fr;gap:3px 22px;margin:0}\n"
    "dl.pairs dt{color:#616e7c}\n"
    "dl.pairs dd{margin:0;font-variant-numeric:tabular-nums}\n"
    "footer{color:#7b8794;font-size:12px;padding-bottom:26px}\n"
    ".thumbs{display:flex;flex-wrap:wrap;gap:14px}\n"
    ".thumbs figure{margin:0;max-width:180px;font-size:12px;color:#616e7c}\n"
    ".thumbs img{display:block;image-rendering:pixelated;border:1px solid #dce2ea}\n";

char *gf_report_html(gf_ctx *ctx, const gf_report *r) {
    if (gf_report_check(ctx, r, "report html")) return NULL;
    gf_sb b = {0};
    gf_sb_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
                   "<meta name=\"generator\" content=\"graft " GF_VERSION_STRING "\"/>\n<title>");
    gf_sb_esc(&b, r->title);
    gf_sb_printf(&b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", CSS);
    gf_sb_puts(&b, "<header><div class=\"wrap\"><h1>");
    gf_sb_esc(&b, r->title);
    gf_sb_puts(&b, "</h1><p>graft " GF_VERSION_STRING " report</p></div></header>\n"
                   "<main class=\"wrap\">\n");
    for (int i = 0; i < r->n; i++) gf_sb_puts(&b, r->html[i]);
    gf_sb_puts(&b, "</main>\n<footer class=\"wrap\">Written by graft " GF_VERSION_STRING
                   ". One self-contained file: no scripts, no network.</footer>\n"
                   "</body>\n</html>\n");
    if (b.oom || !b.p) {
        free(b.p);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "report html: out of memory");
        return NULL;
    }
    return b.p;
}

/* gf_atomic_write's callback: the page. */
static bool write_html(int fd, void *arg) {
    const char *html = arg;
    return gf_write_all(fd, html, strlen(html));
}

gf_status gf_report_write(gf_ctx *ctx, const gf_report *r, const char *dir) {
    if (gf_report_check(ctx, r, "report write")) return gf_ctx_status(ctx);
    if (!dir || !*dir) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "report write: no directory");
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0777) != 0)
            return gf_ctx_set_error(ctx, GF_ERR_IO, "report: cannot create directory %s: %s", dir,
                                    strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        return gf_ctx_set_error(ctx, GF_ERR_IO, "report: %s exists and is not a directory", dir);
    }
    size_t dlen = strlen(dir);
    char *path = malloc(dlen + 16);
    if (!path) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "report write: out of memory");
    snprintf(path, dlen + 16, "%s/index.html", dir);
    /* before the page is rendered: a FIFO or link there is refused without work */
    gf_status status = gf_check_replaceable(ctx, path);
    char *html = status == GF_OK ? gf_report_html(ctx, r) : NULL;
    if (status == GF_OK && !html) status = gf_ctx_status(ctx);
    if (status == GF_OK) status = gf_atomic_write(ctx, path, write_html, html);
    free(html);
    free(path);
    return status;
}
