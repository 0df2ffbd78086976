/* graft report: a self-contained HTML page (one file, inline CSS and SVG, no JavaScript, no
 * network) with line charts, accuracy vs labels-per-class, confusion-matrix heat maps, tables
 * and text. `graft compare`, `graft demo` and `graft train --report DIR` write one. */
#ifndef GRAFT_REPORT_H
#define GRAFT_REPORT_H

#include "graft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A report is a title and a list of blocks in the order they were added. Every add copies what
 * it is given (the caller may free its arrays and strings right after) and renders the block at
 * once, so an error names the block while the caller still knows what it passed. Strings are
 * UTF-8; they are escaped for HTML (control characters become U+FFFD). A failed add leaves the
 * report as it was. */
typedef struct gf_report gf_report;

/* Returns a new report (free with gf_report_free), or NULL with a ctx error (no memory). A NULL
 * or empty title becomes "graft report". */
gf_report *gf_report_new(gf_ctx *ctx, const char *title);
void gf_report_free(gf_report *r);
/* Number of blocks added so far. */
int gf_report_count(const gf_report *r);

/* ---- text ----------------------------------------------------------------------------------- */

/* A section heading (h2). */
gf_status gf_report_add_heading(gf_ctx *ctx, gf_report *r, const char *text);
/* Free text: paragraphs separated by blank lines; single newlines are kept as line breaks. */
gf_status gf_report_add_text(gf_ctx *ctx, gf_report *r, const char *text);
/* A monospaced block kept as it is (a load plan, a model summary); title may be NULL. */
gf_status gf_report_add_pre(gf_ctx *ctx, gf_report *r, const char *title, const char *text);
/* A list of settings: n key/value pairs kv[2i], kv[2i+1] shown as a two-column grid. */
gf_status gf_report_add_pairs(gf_ctx *ctx, gf_report *r, const char *title, int n,
                              const char *const *kv);

/* ---- tables --------------------------------------------------------------------------------- */

/* A table with n_cols columns: header[0..n_cols) and cells row-major [n_rows * n_cols] (a NULL
 * cell is empty). Cells that read as numbers ("0.8421", "84.2%", "1.2e-3", "0.84 ± 0.02") are
 * right-aligned in tabular figures. title may be NULL. */
gf_status gf_report_add_table(gf_ctx *ctx, gf_report *r, const char *title, int n_cols,
                              const char *const *header, int n_rows, const char *const *cells);

/* ---- line charts ---------------------------------------------------------------------------- */

typedef struct gf_report_series {
    const char *name;   /* legend text */
    const char *group;  /* series with the same group share a colour, e.g. one strategy's train
                         * and validation curves; NULL: a colour of its own */
    const double *x;    /* n values; NULL: 1, 2, ..., n (epochs) */
    const double *y;    /* n values; a non-finite value leaves a gap in the line */
    const double *err;  /* optional half-widths of error bars at each point (NULL: none) */
    int n;
    bool dashed;        /* drawn dashed (validation curves) */
} gf_report_series;

typedef struct gf_report_axes {
    const char *title;
    const char *x_label, *y_label;
    bool x_log;           /* log10 x axis (every x must be > 0) */
    bool x_ticks_at_data; /* x ticks at the values the series hold instead of round numbers */
    bool y_percent;       /* y tick labels as percentages of 1 (0.85 -> 85%) */
    bool y_zero;          /* the y range includes 0 */
    bool markers;         /* a dot at every point (always drawn for isolated points) */
    double y_lo, y_hi;    /* a fixed y range when y_lo < y_hi (points outside are clipped);
                           * otherwise the range covers the data (and its error bars) */
} gf_report_axes;

/* No title or labels, linear axes, automatic range, no markers. */
gf_report_axes gf_report_default_axes(void);

/* A line chart of series[0..n_series) (at most 64, each at most 1,000,000 points). Errors
 * (GF_ERR_INVALID, naming the chart and the series): a NULL y with n > 0, n < 0, an x <= 0 on
 * a log axis, a non-finite x. A chart whose series hold no finite point is drawn empty with
 * "no data". */
gf_status gf_report_add_line_chart(gf_ctx *ctx, gf_report *r, const gf_report_axes *axes,
                                   const gf_report_series *series, int n_series);

/* ---- accuracy vs labels per class ----------------------------------------------------------- */

typedef enum gf_report_acc_style {
    GF_REPORT_ACC_AUTO = 0, /* lines on a log axis with 3 or more label counts, else bars */
    GF_REPORT_ACC_LINES,
    GF_REPORT_ACC_BARS      /* grouped bars: one group per label count, one bar per strategy */
} gf_report_acc_style;

/* Test accuracy of each strategy at each labels-per-class setting: acc[s * n_points + i] is
 * strategy s at labels_per_class[i] (a fraction in [0, 1]; NaN: not run), acc_std the same
 * layout (NULL: none) for error bars over seeds. title NULL: "accuracy vs labels per class". */
gf_status gf_report_add_accuracy_chart(gf_ctx *ctx, gf_report *r, const char *title,
                                       int n_points, const int64_t *labels_per_class,
                                       int n_strategies, const char *const *strategies,
                                       const double *acc, const double *acc_std,
                                       gf_report_acc_style style);

/* ---- confusion matrix ----------------------------------------------------------------------- */

/* A heat map of counts[t * k + p] (rows true class, columns predicted; sklearn's layout, as
 * gf_confusion_counts gives). Colour shows each cell's share of its row (the recall of the
 * true class on the diagonal); the cell shows the count; a last column gives each row's recall.
 * class_names NULL: "0", "1", ... Errors: k outside 1..200, a negative count. */
gf_status gf_report_add_confusion(gf_ctx *ctx, gf_report *r, const char *title, int k,
                                  const int64_t *counts, const char *const *class_names);

/* ---- images --------------------------------------------------------------------------------- */

/* An image for gf_report_add_images: pixels [channels, height, width] (PyTorch's CHW layout) of
 * float values in [0, 1] (others are clamped, non-finite ones are 0), 1 (grey) or 3 (RGB)
 * channels, and a caption (may be NULL). */
typedef struct gf_report_image {
    int channels, height, width;
    const float *pixels;
    const char *caption;
} gf_report_image;

/* A row of thumbnails with captions: each image a PNG embedded in the page as a data: URI (the
 * page stays one file, with no network), reduced by averaging whole blocks of pixels when a
 * side is over 128, shown at least 64 pixels wide with its pixel edges kept. Errors
 * (GF_ERR_INVALID naming the image): n outside 0..1000, channels other than 1 or 3, a side
 * outside 1..4096, NULL pixels. title may be NULL. */
gf_status gf_report_add_images(gf_ctx *ctx, gf_report *r, const char *title, int n,
                               const gf_report_image *images);

/* ---- output --------------------------------------------------------------------------------- */

/* The whole page as a new NUL-terminated string (free with free()), or NULL with a ctx error.
 * The page is also well-formed XML (void elements self-closed), so it can be checked by an XML
 * parser. */
char *gf_report_html(gf_ctx *ctx, const gf_report *r);

/* Writes the page to dir/index.html atomically (a temporary file beside it, fsync, rename: a
 * reader sees the old page or the new one, never a part). dir is created when it does not
 * exist (its parent must). Errors (GF_ERR_IO, naming the path and the system's reason): a
 * missing parent, dir not a directory, no permission, an index.html that is not a regular
 * file (a link, FIFO or device is never replaced); the previous index.html is then left as
 * it was. */
gf_status gf_report_write(gf_ctx *ctx, const gf_report *r, const char *dir);

#ifdef __cplusplus
}
#endif
#endif
