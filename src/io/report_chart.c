/* The report's SVG charts: line charts (training curves, accuracy vs labels per class), grouped
 * bars and the confusion-matrix heat map. Coordinates are in the SVG's own units (its viewBox);
 * the page's CSS scales a chart to the column width. */
#include "io/report_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* matplotlib's tab10: distinct, familiar to anyone who has plotted a training curve */
static const char *const PALETTE[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
enum { N_PALETTE = sizeof PALETTE / sizeof PALETTE[0] };

enum { CHART_W = 900, CHART_H = 380, MAX_SERIES = 64, MAX_TICKS = 24, LEGEND_CHARS = 28 };
#define MAX_POINTS 1000000
#define CHAR_W 7.2 /* mean advance of a 12px DejaVu Sans character, for layout */

/* ---- axes ----------------------------------------------------------------------------------- */

typedef struct ticks {
    int n;
    double v[MAX_TICKS];
    int dec; /* decimals of the labels */
} ticks;

/* 1, 2 or 5 times a power of ten, near span / target. */
static double nice_step(double span, int target) {
    double raw = span / target;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

static int decimals_for(double step) {
    if (step >= 1) return 0;
    int d = (int)ceil(-log10(step) - 1e-9);
    return d > 9 ? 9 : d;
}

/* Multiples of step inside [lo, hi]. */
static void ticks_within(double lo, double hi, double step, ticks *t) {
    t->n = 0;
    t->dec = decimals_for(step);
    double first = ceil(lo / step - 1e-9) * step;
    for (int i = 0; t->n < MAX_TICKS; i++) {
        double v = first + i * step;
        if (v > hi + step * 1e-9) break;
        if (fabs(v) < step * 1e-9) v = 0;
        t->v[t->n++] = v;
    }
}

static void fmt_value(char *buf, size_t cap, double v, int dec, bool pct) {
    if (pct) {
        snprintf(buf, cap, "%.*f%%", dec >= 2 ? dec - 2 : 0, v * 100);
    } else if (v != 0 && (fabs(v) >= 1e6 || fabs(v) < 1e-4)) {
        snprintf(buf, cap, "%.3g", v);
    } else {
        snprintf(buf, cap, "%.*f", dec, v);
    }
}

/* An automatic value range [*lo, *hi] on multiples of *step around the data [lo, hi]. */
static void auto_range(double lo, double hi, bool zero, bool unit_cap, double *out_lo,
                       double *out_hi, double *step) {
    if (zero) {
        lo = fmin(lo, 0);
        hi = fmax(hi, 0);
    }
    bool cap = unit_cap && hi <= 1;
    if (!(hi > lo)) {
        double pad = lo != 0 ? fabs(lo) * 0.1 : 1;
        lo -= pad;
        hi += pad;
    } else { /* a little headroom so markers at the extremes do not sit on the frame */
        double pad = (hi - lo) * 0.03;
        lo = lo >= 0 && lo - pad < 0 ? 0 : lo - pad;
        hi += pad;
    }
    *step = nice_step(hi - lo, 5);
    *out_lo = floor(lo / *step + 1e-9) * *step;
    *out_hi = ceil(hi / *step - 1e-9) * *step;
    if (cap && *out_hi > 1) *out_hi = 1;
}

typedef struct frame {
    double left, right, top, bottom; /* plot area */
    double xlo, xhi, ylo, yhi;       /* data range at its edges (log10 of x on a log axis) */
    bool xlog;
} frame;

static double px(const frame *f, double x) {
    double v = f->xlog ? log10(x) : x;
    return f->left + (v - f->xlo) / (f->xhi - f->xlo) * (f->right - f->left);
}
static double py(const frame *f, double y) {
    return f->bottom - (y - f->ylo) / (f->yhi - f->ylo) * (f->bottom - f->top);
}

static void svg_open(gf_sb *b, bool wide, int w, int h, const char *title) {
    gf_sb_printf(b,
                 "<svg xmlns=\"http://www.w3.org/2000/svg\"%s viewBox=\"0 0 %d %d\" width=\"%d\" "
                 "height=\"%d\" role=\"img\" aria-label=\"",
                 wide ? " class=\"wide\"" : "", w, h, w, h);
    gf_sb_esc(b, title);
    gf_sb_puts(b, "\">\n<title>");
    gf_sb_esc(b, title);
    gf_sb_puts(b, "</title>\n");
}

static void card_open(gf_sb *b, const char *cls, const char *title) {
    gf_sb_printf(b, "<section class=\"card %s\">\n<h3>", cls);
    gf_sb_esc(b, title);
    gf_sb_puts(b, "</h3>\n");
}

/* Grid, frame, y tick labels and the axis labels. */
static void draw_axes(gf_sb *b, const frame *f, const ticks *yt, bool y_pct, const char *x_label,
                      const char *y_label, int h) {
    gf_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fbfcfd\"/>\n",
                 f->left, f->top, f->right - f->left, f->bottom - f->top);
    gf_sb_puts(b, "<g stroke=\"#e3e8ee\" stroke-width=\"1\">\n");
    for (int i = 0; i < yt->n; i++) {
        double y = py(f, yt->v[i]);
        gf_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", f->left, y,
                     f->right, y);
    }
    gf_sb_puts(b, "</g>\n<g font-size=\"12\" fill=\"#52606d\" text-anchor=\"end\">\n");
    for (int i = 0; i < yt->n; i++) {
        char lab[32];
        fmt_value(lab, sizeof lab, yt->v[i], yt->dec, y_pct);
        gf_sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", f->left - 8,
                     py(f, yt->v[i]) + 4, lab);
    }
    gf_sb_puts(b, "</g>\n");
    gf_sb_printf(b,
                 "<path d=\"M%.1f %.1f V%.1f H%.1f\" fill=\"none\" stroke=\"#8a97a6\" "
                 "stroke-width=\"1.2\"/>\n",
                 f->left, f->top, f->bottom, f->right);
    if (x_label && *x_label) {
        gf_sb_printf(b,
                     "<text x=\"%.1f\" y=\"%d\" font-size=\"13\" fill=\"#334155\" "
                     "text-anchor=\"middle\">",
                     (f->left + f->right) / 2, h - 12);
        gf_sb_esc(b, x_label);
        gf_sb_puts(b, "</text>\n");
    }
    if (y_label && *y_label) {
        gf_sb_printf(b,
                     "<text transform=\"translate(18 %.1f) rotate(-90)\" font-size=\"13\" "
                     "fill=\"#334155\" text-anchor=\"middle\">",
                     (f->top + f->bottom) / 2);
        gf_sb_esc(b, y_label);
        gf_sb_puts(b, "</text>\n");
    }
}

static void draw_x_tick(gf_sb *b, const frame *f, double xpos, const char *label) {
    gf_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#8a97a6\"/>\n",
                 xpos, f->bottom, xpos, f->bottom + 5);
    gf_sb_printf(b,
                 "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"#52606d\" "
                 "text-anchor=\"middle\">%s</text>\n",
                 xpos, f->bottom + 19, label);
}

/* Legend entries to the right of the plot; returns nothing, draws at most what fits. */
typedef struct legend_item {
    const char *name;
    const char *color;
    bool dashed, marker, bar;
} legend_item;

static int legend_chars(const legend_item *it, int n) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        int c = gf_utf8_chars(it[i].name, strlen(it[i].name));
        if (c > m) m = c;
    }
    return m > LEGEND_CHARS ? LEGEND_CHARS : m;
}

static double legend_width(const legend_item *it, int n) {
    return n > 0 ? 40 + CHAR_W * legend_chars(it, n) : 0;
}

static void draw_legend(gf_sb *b, const frame *f, const legend_item *it, int n, double x) {
    if (n <= 0) return;
    int fit = (int)((f->bottom - f->top) / 21);
    if (fit < 1) fit = 1;
    int shown = n <= fit ? n : fit - 1;
    gf_sb_puts(b, "<g font-size=\"12\" fill=\"#1f2933\">\n");
    double y = f->top + 10;
    for (int i = 0; i < shown; i++, y += 21) {
        const legend_item *e = &it[i];
        if (e->bar) {
            gf_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"12\" rx=\"2\" "
                            "fill=\"%s\"/>\n", x + 5, y - 6, e->color);
        } else {
            gf_sb_printf(b,
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                         "stroke-width=\"2.4\"%s/>\n",
                         x, y, x + 24, y, e->color, e->dashed ? " stroke-dasharray=\"6 4\"" : "");
            if (e->marker)
                gf_sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.8\" fill=\"%s\" stroke=\"%s\" "
                                "stroke-width=\"1.4\"/>\n",
                             x + 12, y, e->dashed ? "#fff" : e->color, e->dashed ? e->color : "#fff");
        }
        gf_sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x + 31, y + 4);
        gf_sb_esc_n(b, e->name, strlen(e->name), LEGEND_CHARS);
        gf_sb_puts(b, "</text>\n");
    }
    if (shown < n)
        gf_sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#616e7c\">+%d more</text>\n", x + 31,
                     y + 4, n - shown);
    gf_sb_puts(b, "</g>\n");
}

static void no_data(gf_sb *b, const frame *f) {
    gf_sb_printf(b,
                 "<text x=\"%.1f\" y=\"%.1f\" font-size=\"15\" fill=\"#8a97a6\" "
                 "text-anchor=\"middle\">no data</text>\n",
                 (f->left + f->right) / 2, (f->top + f->bottom) / 2);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- line charts ------------------------------------------------------------------------------ */

gf_report_axes gf_report_default_axes(void) {
    gf_report_axes a;
    memset(&a, 0, sizeof a);
    return a;
}

static double sx(const gf_report_series *s, int k) { return s->x ? s->x[k] : (double)(k + 1); }

static gf_status check_series(gf_ctx *ctx, const char *title, const gf_report_axes *ax,
                              const gf_report_series *series, int ns) {
    const char *t = title ? title : "";
    if (ns < 0 || ns > MAX_SERIES || (ns > 0 && !series))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "report chart '%s': %d series (need 0..%d and a series array)", t,
                                ns, MAX_SERIES);
    for (int i = 0; i < ns; i++) {
        const gf_report_series *s = &series[i];
        const char *name = s->name ? s->name : "";
        if (s->n < 0 || s->n > MAX_POINTS || (s->n > 0 && !s->y))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "report chart '%s': series %d '%s' has %d points and y %s "
                                    "(need 0..%d points and y values)",
                                    t, i, name, s->n, s->y ? "given" : "NULL", MAX_POINTS);
        for (int k = 0; k < s->n; k++) {
            double x = sx(s, k);
            if (!isfinite(x))
                return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                        "report chart '%s': series %d '%s': x[%d] is %g", t, i,
                                        name, k, x);
            if (ax->x_log && x <= 0)
                return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                        "report chart '%s': series %d '%s': x[%d] = %g on a log "
                                        "axis (must be > 0)",
                                        t, i, name, k, x);
        }
    }
    return GF_OK;
}

/* Colours and legend entries: one colour per group (first appearance), one per ungrouped
 * series; names[i] holds the fallback name of an unnamed series. */
static void assign_legend(const gf_report_axes *ax, const gf_report_series *series, int ns,
                          legend_item *leg, char (*names)[24]) {
    int color[MAX_SERIES], next = 0;
    for (int i = 0; i < ns; i++) {
        color[i] = -1;
        for (int j = 0; j < i && series[i].group; j++)
            if (series[j].group && strcmp(series[i].group, series[j].group) == 0) {
                color[i] = color[j];
                break;
            }
        if (color[i] < 0) color[i] = next++;
        snprintf(names[i], sizeof names[i], "series %d", i + 1);
        leg[i].name = series[i].name ? series[i].name : names[i];
        leg[i].color = PALETTE[color[i] % N_PALETTE];
        leg[i].dashed = series[i].dashed;
        leg[i].marker = ax->markers;
        leg[i].bar = false;
    }
}

/* The finite points' ranges (error bars included in y); a chart without data gets a unit box. */
typedef struct data_range {
    double xmin, xmax, ymin, ymax;
    int64_t n_pts;
    bool all_int; /* every x is a whole number */
} data_range;

static data_range range_of(const gf_report_series *series, int ns) {
    data_range r = {INFINITY, -INFINITY, INFINITY, -INFINITY, 0, true};
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < series[i].n; k++) {
            double x = sx(&series[i], k), y = series[i].y[k];
            if (!isfinite(y)) continue;
            double e = series[i].err && isfinite(series[i].err[k]) ? fabs(series[i].err[k]) : 0;
            r.xmin = fmin(r.xmin, x);
            r.xmax = fmax(r.xmax, x);
            r.ymin = fmin(r.ymin, y - e);
            r.ymax = fmax(r.ymax, y + e);
            r.all_int = r.all_int && x == floor(x);
            r.n_pts++;
        }
    if (r.n_pts == 0) r.xmin = 1, r.xmax = 2, r.ymin = 0, r.ymax = 1;
    return r;
}

/* The plot frame and y ticks from the data range, the axes' settings and the legend width. */
static void layout_frame(const gf_report_axes *ax, const data_range *r, double legend_w, frame *f,
                         ticks *yt) {
    memset(f, 0, sizeof *f);
    f->xlog = ax->x_log;
    double ystep;
    if (ax->y_lo < ax->y_hi) {
        f->ylo = ax->y_lo;
        f->yhi = ax->y_hi;
        ystep = nice_step(f->yhi - f->ylo, 5);
    } else {
        auto_range(r->ymin, r->ymax, ax->y_zero, ax->y_percent, &f->ylo, &f->yhi, &ystep);
    }
    ticks_within(f->ylo, f->yhi, ystep, yt);
    int ychars = 1;
    for (int i = 0; i < yt->n; i++) {
        char lab[32];
        fmt_value(lab, sizeof lab, yt->v[i], yt->dec, ax->y_percent);
        int c = (int)strlen(lab);
        if (c > ychars) ychars = c;
    }
    f->left = 38 + CHAR_W * ychars;
    f->right = CHART_W - 16 - (legend_w > 0 ? legend_w + 14 : 0);
    f->top = 14;
    f->bottom = CHART_H - 54;
    double xlo = f->xlog ? log10(r->xmin) : r->xmin, xhi = f->xlog ? log10(r->xmax) : r->xmax;
    bool pad = ax->markers || ax->x_ticks_at_data;
    if (!(xhi > xlo)) {
        double w = f->xlog ? 0.5 : (xlo != 0 ? fabs(xlo) * 0.1 : 1);
        xlo -= w;
        xhi += w;
    } else if (pad) {
        double w = (xhi - xlo) * 0.04;
        xlo -= w;
        xhi += w;
    }
    f->xlo = xlo;
    f->xhi = xhi;
}

/* x ticks at the data's distinct x values (at most 16 labels). */
static void draw_x_ticks_at_data(gf_sb *b, const frame *f, const gf_report_series *series, int ns,
                                 int64_t n_pts) {
    double *xs = malloc((size_t)n_pts * sizeof *xs);
    if (!xs) {
        b->oom = true;
        return;
    }
    int64_t m = 0;
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < series[i].n; k++)
            if (isfinite(series[i].y[k])) xs[m++] = sx(&series[i], k);
    qsort(xs, (size_t)m, sizeof *xs, cmp_double);
    int64_t u = 0;
    for (int64_t i = 0; i < m; i++)
        if (u == 0 || xs[i] != xs[u - 1]) xs[u++] = xs[i];
    int64_t stride = (u + 15) / 16;
    for (int64_t i = 0; i < u; i += stride) {
        char lab[32];
        snprintf(lab, sizeof lab, "%g", xs[i]);
        draw_x_tick(b, f, px(f, xs[i]), lab);
    }
    free(xs);
}

static void draw_x_ticks(gf_sb *b, const frame *f, const gf_report_axes *ax,
                         const gf_report_series *series, int ns, const data_range *r) {
    gf_sb_puts(b, "<g>\n");
    if (ax->x_ticks_at_data && r->n_pts > 0) {
        draw_x_ticks_at_data(b, f, series, ns, r->n_pts);
    } else if (f->xlog) {
        double span = f->xhi - f->xlo;
        static const double mult[] = {1, 2, 5};
        for (int d = (int)floor(f->xlo); d <= (int)ceil(f->xhi); d++)
            for (int j = 0; j < 3; j++) {
                if (j > 0 && span > 2.5) break;
                double v = mult[j] * pow(10.0, d), lv = log10(v);
                if (lv < f->xlo - 1e-9 || lv > f->xhi + 1e-9) continue;
                char lab[32];
                snprintf(lab, sizeof lab, "%g", v);
                draw_x_tick(b, f, px(f, v), lab);
            }
    } else {
        double step = nice_step(f->xhi - f->xlo, 8);
        if (r->all_int && step < 1) step = 1;
        ticks xt;
        ticks_within(f->xlo, f->xhi, step, &xt);
        for (int i = 0; i < xt.n; i++) {
            char lab[32];
            fmt_value(lab, sizeof lab, xt.v[i], xt.dec, false);
            draw_x_tick(b, f, px(f, xt.v[i]), lab);
        }
    }
    gf_sb_puts(b, "</g>\n");
}

/* One series: error bars under a polyline per run of finite points, then markers (with the
 * value as a tooltip; isolated points always get one). */
static void draw_series(gf_sb *b, const frame *f, const gf_report_axes *ax,
                        const gf_report_series *s, const legend_item *leg, int ydec) {
    const char *c = leg->color;
    /* error bars first, under the line */
    if (s->err) {
        gf_sb_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-opacity=\"0.65\" "
                        "stroke-width=\"1.4\" d=\"", c);
        for (int k = 0; k < s->n; k++) {
            double y = s->y[k], e = s->err[k];
            if (!isfinite(y) || !isfinite(e) || e == 0) continue;
            double x = px(f, sx(s, k)), y1 = py(f, y - fabs(e)), y2 = py(f, y + fabs(e));
            gf_sb_printf(b, "M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f", x, y1, y2, x - 4,
                         y1, x + 4, x - 4, y2, x + 4);
        }
        gf_sb_puts(b, "\"/>\n");
    }
    /* one polyline per run of finite points */
    for (int k = 0; k < s->n;) {
        while (k < s->n && !isfinite(s->y[k])) k++;
        int start = k;
        while (k < s->n && isfinite(s->y[k])) k++;
        if (k - start >= 2) {
            gf_sb_printf(b,
                         "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.2\" "
                         "stroke-linejoin=\"round\" stroke-linecap=\"round\"%s points=\"",
                         c, s->dashed ? " stroke-dasharray=\"7 5\"" : "");
            for (int j = start; j < k; j++)
                gf_sb_printf(b, "%s%.1f,%.1f", j > start ? " " : "", px(f, sx(s, j)),
                             py(f, s->y[j]));
            gf_sb_puts(b, "\"/>\n");
        }
    }
    /* markers (with the value as a tooltip); isolated points always get one */
    bool all = ax->markers && s->n <= 500;
    for (int k = 0; k < s->n; k++) {
        if (!isfinite(s->y[k])) continue;
        bool isolated = (k == 0 || !isfinite(s->y[k - 1])) &&
                        (k == s->n - 1 || !isfinite(s->y[k + 1]));
        if (!all && !isolated) continue;
        gf_sb_printf(b,
                     "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\" stroke=\"%s\" "
                     "stroke-width=\"1.5\"><title>",
                     px(f, sx(s, k)), py(f, s->y[k]), s->dashed ? "#fff" : c,
                     s->dashed ? c : "#fff");
        gf_sb_esc(b, leg->name);
        char v[32];
        fmt_value(v, sizeof v, s->y[k], ydec + 2, ax->y_percent);
        gf_sb_printf(b, ": x = %g, y = %s", sx(s, k), v);
        if (s->err && isfinite(s->err[k])) {
            fmt_value(v, sizeof v, fabs(s->err[k]), ydec + 2, ax->y_percent);
            gf_sb_printf(b, " \xC2\xB1 %s", v);
        }
        gf_sb_puts(b, "</title></circle>\n");
    }
}

/* Draws a validated line chart into b. */
static void render_lines(gf_sb *b, int id, const gf_report_axes *ax,
                         const gf_report_series *series, int ns) {
    const char *title = ax->title && *ax->title ? ax->title : "chart";
    legend_item leg[MAX_SERIES];
    char names[MAX_SERIES][24];
    assign_legend(ax, series, ns, leg, names);
    const data_range r = range_of(series, ns);
    frame f;
    ticks yt;
    layout_frame(ax, &r, legend_width(leg, ns), &f, &yt);

    svg_open(b, true, CHART_W, CHART_H, title);
    gf_sb_printf(b,
                 "<defs><clipPath id=\"gfclip%d\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                 "height=\"%.1f\"/></clipPath></defs>\n",
                 id, f.left - 5, f.top - 5, f.right - f.left + 10, f.bottom - f.top + 10);
    draw_axes(b, &f, &yt, ax->y_percent, ax->x_label, ax->y_label, CHART_H);
    draw_x_ticks(b, &f, ax, series, ns, &r);
    if (r.n_pts == 0) no_data(b, &f);
    gf_sb_printf(b, "<g clip-path=\"url(#gfclip%d)\">\n", id);
    for (int i = 0; i < ns; i++) draw_series(b, &f, ax, &series[i], &leg[i], yt.dec);
    gf_sb_puts(b, "</g>\n");
    draw_legend(b, &f, leg, ns, f.right + 16);
    gf_sb_puts(b, "</svg>\n");
}

gf_status gf_report_add_line_chart(gf_ctx *ctx, gf_report *r, const gf_report_axes *axes,
                                   const gf_report_series *series, int n_series) {
    if (gf_report_check(ctx, r, "report line chart")) return gf_ctx_status(ctx);
    gf_report_axes ax = axes ? *axes : gf_report_default_axes();
    if (check_series(ctx, ax.title, &ax, series, n_series)) return gf_ctx_status(ctx);
    gf_sb b = {0};
    card_open(&b, "chart", ax.title && *ax.title ? ax.title : "chart");
    render_lines(&b, gf_report_next_id(r), &ax, series, n_series);
    gf_sb_puts(&b, "</section>\n");
    return gf_report_push(ctx, r, &b, "report line chart");
}

/* ---- accuracy vs labels per class ------------------------------------------------------------ */

static void render_bars(gf_sb *b, const char *title, int np, const int64_t *lpc, int ns,
                        const char *const *names, const double *acc, const double *sd) {
    legend_item leg[MAX_SERIES];
    for (int s = 0; s < ns; s++)
        leg[s] = (legend_item){names[s] ? names[s] : "?", PALETTE[s % N_PALETTE], false, false,
                               true};
    double hi = 0;
    for (int i = 0; i < ns * np; i++)
        if (isfinite(acc[i])) hi = fmax(hi, acc[i] + (sd && isfinite(sd[i]) ? fabs(sd[i]) : 0));
    frame f = {0};
    double step;
    auto_range(0, hi > 0 ? hi : 1, true, true, &f.ylo, &f.yhi, &step);
    ticks yt;
    ticks_within(f.ylo, f.yhi, step, &yt);
    double lw = legend_width(leg, ns);
    f.left = 38 + CHAR_W * 4;
    f.right = CHART_W - 16 - (lw > 0 ? lw + 14 : 0);
    f.top = 22; /* room for value labels */
    f.bottom = CHART_H - 54;
    f.xlo = 0;
    f.xhi = np;

    svg_open(b, true, CHART_W, CHART_H, title);
    draw_axes(b, &f, &yt, true, "labels per class", "test accuracy", CHART_H);
    double band = (f.right - f.left) / np, bw = band * 0.78 / ns;
    for (int i = 0; i < np; i++) {
        double x0 = f.left + band * i + band * 0.11;
        char lab[32];
        snprintf(lab, sizeof lab, "%lld", (long long)lpc[i]);
        draw_x_tick(b, &f, f.left + band * (i + 0.5), lab);
        for (int s = 0; s < ns; s++) {
            double a = acc[(size_t)s * np + i], e = sd ? sd[(size_t)s * np + i] : NAN;
            if (!isfinite(a)) continue;
            double x = x0 + bw * s + 1, w = fmax(bw - 2, 1), ytop = py(&f, fmin(a, f.yhi));
            gf_sb_printf(b,
                         "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"2\" "
                         "fill=\"%s\"><title>",
                         x, ytop, w, f.bottom - ytop, leg[s].color);
            gf_sb_esc(b, leg[s].name);
            gf_sb_printf(b, ", %lld per class: %.2f%%", (long long)lpc[i], a * 100);
            if (isfinite(e)) gf_sb_printf(b, " \xC2\xB1 %.2f%%", fabs(e) * 100);
            gf_sb_puts(b, "</title></rect>\n");
            double label_y = ytop - 5;
            if (isfinite(e) && e != 0) {
                double y1 = py(&f, fmax(a - fabs(e), 0)), y2 = py(&f, fmin(a + fabs(e), f.yhi));
                double cx = x + w / 2;
                gf_sb_printf(b,
                             "<path fill=\"none\" stroke=\"#1f2933\" stroke-width=\"1.3\" "
                             "d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\"/>\n",
                             cx, y1, y2, cx - 4, y1, cx + 4, cx - 4, y2, cx + 4);
                label_y = y2 - 5;
            }
            if (bw >= 34)
                gf_sb_printf(b,
                             "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#334155\" "
                             "text-anchor=\"middle\">%.1f</text>\n",
                             x + w / 2, label_y, a * 100);
        }
    }
    draw_legend(b, &f, leg, ns, f.right + 16);
    gf_sb_puts(b, "</svg>\n");
}

gf_status gf_report_add_accuracy_chart(gf_ctx *ctx, gf_report *r, const char *title,
                                       int n_points, const int64_t *labels_per_class,
                                       int n_strategies, const char *const *strategies,
                                       const double *acc, const double *acc_std,
                                       gf_report_acc_style style) {
    const char *fn = "report accuracy chart";
    if (gf_report_check(ctx, r, fn)) return gf_ctx_status(ctx);
    const char *t = title && *title ? title : "accuracy vs labels per class";
    if (n_points < 1 || n_points > 1000 || n_strategies < 1 || n_strategies > MAX_SERIES ||
        !labels_per_class || !strategies || !acc)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "%s '%s': %d points, %d strategies (need 1..1000 and 1..%d, "
                                "with labels_per_class, strategies and acc given)",
                                fn, t, n_points, n_strategies, MAX_SERIES);
    for (int i = 0; i < n_points; i++)
        if (labels_per_class[i] < 1)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s '%s': labels_per_class[%d] = %lld "
                                    "(must be >= 1)", fn, t, i, (long long)labels_per_class[i]);
    if (style == GF_REPORT_ACC_AUTO) style = n_points >= 3 ? GF_REPORT_ACC_LINES : GF_REPORT_ACC_BARS;
    if (style != GF_REPORT_ACC_LINES && style != GF_REPORT_ACC_BARS)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s '%s': unknown style %d", fn, t, (int)style);
    gf_sb b = {0};
    card_open(&b, "chart", t);
    if (style == GF_REPORT_ACC_BARS) {
        render_bars(&b, t, n_points, labels_per_class, n_strategies, strategies, acc, acc_std);
    } else {
        double *x = malloc((size_t)n_points * sizeof *x);
        if (!x) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", fn);
        for (int i = 0; i < n_points; i++) x[i] = (double)labels_per_class[i];
        gf_report_series s[MAX_SERIES];
        for (int k = 0; k < n_strategies; k++)
            s[k] = (gf_report_series){strategies[k], NULL, x, acc + (size_t)k * n_points,
                                      acc_std ? acc_std + (size_t)k * n_points : NULL, n_points,
                                      false};
        gf_report_axes ax = gf_report_default_axes();
        ax.title = t;
        ax.x_label = "labels per class (log scale)";
        ax.y_label = "test accuracy";
        ax.x_log = true;
        ax.x_ticks_at_data = true;
        ax.y_percent = true;
        ax.markers = true;
        render_lines(&b, gf_report_next_id(r), &ax, s, n_strategies);
        free(x);
    }
    gf_sb_puts(&b, "</section>\n");
    return gf_report_push(ctx, r, &b, fn);
}

/* ---- confusion matrix ------------------------------------------------------------------------ */

/* ColorBrewer "Blues" (9 classes), interpolated linearly: t in [0, 1]. */
static void blues(double t, char out[8]) {
    static const unsigned char stops[9][3] = {{247, 251, 255}, {222, 235, 247}, {198, 219, 239},
                                              {158, 202, 225}, {107, 174, 214}, {66, 146, 198},
                                              {33, 113, 181},  {8, 81, 156},    {8, 48, 107}};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double p = t * 8;
    int i = (int)p;
    if (i > 7) i = 7;
    double u = p - i;
    int c[3];
    for (int j = 0; j < 3; j++) c[j] = (int)lround(stops[i][j] + u * (stops[i + 1][j] - stops[i][j]));
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

gf_status gf_report_add_confusion(gf_ctx *ctx, gf_report *r, const char *title, int k,
                                  const int64_t *counts, const char *const *class_names) {
    const char *fn = "report confusion matrix";
    if (gf_report_check(ctx, r, fn)) return gf_ctx_status(ctx);
    const char *t = title && *title ? title : "confusion matrix";
    if (k < 1 || k > 200 || !counts)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s '%s': %d classes, counts %s (need 1..200 "
                                "classes and counts)", fn, t, k, counts ? "given" : "NULL");
    int64_t total = 0, trace = 0;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) {
            int64_t c = counts[(size_t)i * k + j];
            if (c < 0)
                return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s '%s': count[%d][%d] = %lld < 0",
                                        fn, t, i, j, (long long)c);
            total += c;
            if (i == j) trace += c;
        }
    char(*num)[16] = malloc((size_t)k * sizeof *num);
    if (!num) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", fn);
    const char **name = malloc((size_t)k * sizeof *name);
    if (!name) {
        free(num);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", fn);
    }
    enum { NAME_CHARS = 18 };
    int maxc = 1;
    for (int i = 0; i < k; i++) {
        snprintf(num[i], sizeof num[i], "%d", i);
        name[i] = class_names && class_names[i] ? class_names[i] : num[i];
        int c = gf_utf8_chars(name[i], strlen(name[i]));
        if (c > maxc) maxc = c;
    }
    if (maxc > NAME_CHARS) maxc = NAME_CHARS;

    /* geometry: cells, class names left and (rotated) below, recall column, colour bar */
    double cs = floor(560.0 / k);
    cs = cs > 60 ? 60 : cs < 4 ? 4 : cs;
    int font = cs >= 16 ? 12 : cs >= 10 ? 9 : 0; /* 0: no class names (thinned below) */
    int name_step = 1; /* small cells: name every 2nd, 5th, ... class (12px apart at least) */
    static const int steps[] = {1, 2, 5, 10, 20, 50};
    for (int i = 0; i < 6 && steps[i] * cs < 12; i++) name_step = steps[i + 1 < 6 ? i + 1 : i];
    if (!font) font = 9;
    double name_w = CHAR_W * (font / 12.0) * maxc;
    double x0 = 30 + name_w + 10, y0 = 26, side = cs * k;
    double recall_x = x0 + side + 12, bar_x = recall_x + 58;
    int W = (int)ceil(bar_x + 16 + 52), H = (int)ceil(y0 + side + 8 + name_w * 0.66 + 36);
    if (H < (int)(y0 + side + 60)) H = (int)(y0 + side + 60);

    gf_sb b = {0};
    card_open(&b, "chart confusion", t);
    gf_sb_printf(&b, "<p class=\"cap\">%lld examples, accuracy %.2f%%. Rows: true class; "
                     "columns: predicted. Colour: share of the row.</p>\n",
                 (long long)total, total ? 100.0 * trace / total : 0.0);
    svg_open(&b, false, W, H, t);
    /* cells */
    for (int i = 0; i < k; i++) {
        int64_t row = 0;
        for (int j = 0; j < k; j++) row += counts[(size_t)i * k + j];
        for (int j = 0; j < k; j++) {
            int64_t c = counts[(size_t)i * k + j];
            double share = row ? (double)c / row : 0;
            char col[8];
            blues(share, col);
            double x = x0 + j * cs, y = y0 + i * cs;
            gf_sb_printf(&b,
                         "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
                         "stroke=\"#fff\" stroke-width=\"%s\"><title>",
                         x, y, cs, cs, col, cs >= 10 ? "1" : "0.3");
            gf_sb_esc(&b, name[i]);
            gf_sb_puts(&b, " predicted as ");
            gf_sb_esc(&b, name[j]);
            gf_sb_printf(&b, ": %lld (%.1f%% of the row)</title></rect>\n", (long long)c,
                         share * 100);
            char txt[24];
            int len = snprintf(txt, sizeof txt, "%lld", (long long)c);
            double fs = fmin(13, (cs - 6) / (0.62 * len));
            if (fs >= 7.5)
                gf_sb_printf(&b,
                             "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.1f\" fill=\"%s\" "
                             "text-anchor=\"middle\"%s>%s</text>\n",
                             x + cs / 2, y + cs / 2 + fs * 0.36, fs,
                             c == 0 ? "#a3b1c2" : share > 0.5 ? "#ffffff" : "#1f2933",
                             i == j ? " font-weight=\"bold\"" : "", txt);
        }
    }
    gf_sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                     "stroke=\"#8a97a6\"/>\n", x0, y0, side, side);
    /* class names: rows at the left, columns below (rotated) */
    gf_sb_printf(&b, "<g font-size=\"%d\" fill=\"#334155\">\n", font);
    for (int i = 0; i < k; i += name_step) {
        gf_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", x0 - 6,
                     y0 + (i + 0.5) * cs + font * 0.35);
        gf_sb_esc_n(&b, name[i], strlen(name[i]), NAME_CHARS);
        gf_sb_puts(&b, "</text>\n");
        double cx = x0 + (i + 0.5) * cs, cy = y0 + side + 8;
        gf_sb_printf(&b, "<text transform=\"translate(%.1f %.1f) rotate(-40)\" "
                         "text-anchor=\"end\">", cx + font * 0.3, cy);
        gf_sb_esc_n(&b, name[i], strlen(name[i]), NAME_CHARS);
        gf_sb_puts(&b, "</text>\n");
    }
    gf_sb_puts(&b, "</g>\n");
    gf_sb_printf(&b,
                 "<text transform=\"translate(%.1f %.1f) rotate(-90)\" font-size=\"13\" "
                 "fill=\"#334155\" text-anchor=\"middle\">true class</text>\n"
                 "<text x=\"%.1f\" y=\"%d\" font-size=\"13\" fill=\"#334155\" "
                 "text-anchor=\"middle\">predicted class</text>\n",
                 x0 - 22 - 0.88 * name_w, y0 + side / 2,
                 x0 + side / 2, H - 10);
    /* recall per row */
    gf_sb_printf(&b, "<g font-size=\"%d\" fill=\"#334155\" text-anchor=\"end\">\n"
                     "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">recall</text>\n",
                 font, recall_x + 44, y0 - 8);
    for (int i = 0; i < k; i += name_step) {
        int64_t row = 0;
        for (int j = 0; j < k; j++) row += counts[(size_t)i * k + j];
        double y = y0 + (i + 0.5) * cs + font * 0.35;
        if (row)
            gf_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">%.1f%%</text>\n", recall_x + 44, y,
                         100.0 * counts[(size_t)i * k + i] / row);
        else
            gf_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">&#8211;</text>\n", recall_x + 44, y);
    }
    gf_sb_puts(&b, "</g>\n");
    /* colour bar: 20 steps, 100% at the top */
    double step_h = side / 20;
    for (int s = 0; s < 20; s++) {
        char col[8];
        blues((19 - s + 0.5) / 20.0, col);
        gf_sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.2f\" fill=\"%s\"/>\n",
                     bar_x, y0 + s * step_h, step_h + 0.3, col);
    }
    gf_sb_printf(&b,
                 "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.1f\" fill=\"none\" "
                 "stroke=\"#8a97a6\"/>\n<g font-size=\"11\" fill=\"#52606d\">\n"
                 "<text x=\"%.1f\" y=\"%.1f\">100%%</text>\n<text x=\"%.1f\" y=\"%.1f\">50%%</text>\n"
                 "<text x=\"%.1f\" y=\"%.1f\">0%%</text>\n</g>\n",
                 bar_x, y0, side, bar_x + 19, y0 + 8, bar_x + 19, y0 + side / 2 + 4, bar_x + 19,
                 y0 + side);
    gf_sb_puts(&b, "</svg>\n</section>\n");
    free(num);
    free(name);
    return gf_report_push(ctx, r, &b, fn);
}
