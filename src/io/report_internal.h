/* Shared between the report's page builder (report.c) and its SVG charts (report_chart.c): a
 * growable string with HTML escaping, and how a rendered block joins the report. */
#ifndef GRAFT_REPORT_INTERNAL_H
#define GRAFT_REPORT_INTERNAL_H

#include "graft/report.h"

#include <stddef.h>

/* A growable NUL-terminated string; {0} is empty. After an allocation failure oom is set and
 * every later call does nothing. */
typedef struct gf_sb {
    char *p;
    size_t n, cap;
    bool oom;
} gf_sb;

void gf_sb_put(gf_sb *b, const char *s, size_t len);
void gf_sb_puts(gf_sb *b, const char *s);
void gf_sb_printf(gf_sb *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends s[0..len) escaped for HTML text and attribute values (&<>"' as references; control
 * characters and invalid UTF-8 as U+FFFD). max_chars >= 0: at most that many characters, the
 * last one an ellipsis when s is longer. */
void gf_sb_esc_n(gf_sb *b, const char *s, size_t len, int max_chars);
void gf_sb_esc(gf_sb *b, const char *s);
/* Characters (code points; an invalid byte counts as one) in s[0..len). */
int gf_utf8_chars(const char *s, size_t len);

/* GF_OK, or GF_ERR_INVALID naming fn when r is NULL. */
gf_status gf_report_check(gf_ctx *ctx, const gf_report *r, const char *fn);
/* Appends b's text as the next block (the report takes it; b is emptied) or frees it and
 * reports GF_ERR_NOMEM naming fn when b ran out of memory. */
gf_status gf_report_push(gf_ctx *ctx, gf_report *r, gf_sb *b, const char *fn);
/* A number unique within the report, for element ids. */
int gf_report_next_id(gf_report *r);

#endif
