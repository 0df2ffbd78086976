/* libFuzzer target: any bytes given to the CSV reader must give a dataset whose every example
 * reads back (and, read as rows to predict on, rows in increasing line order), or an error
 * message — never a crash, a leak or a read past the input. The first
 * byte picks the options (header mode, delimiter, target kind, fixed classes, skip_lines,
 * column selection; bit 0x80 with no fixed classes: text columns one-hot encoded) so every
 * path of the reader is reached. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "graft/csv.h"
#include "graft/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static gf_ctx *ctx;
    if (!ctx) {
        gf_ctx_params p = gf_ctx_default_params();
        p.n_threads = 1;
        p.arena_bytes = 1 << 16;
        p.limits.classes = 100; /* reachable within the fuzzer's input size */
        ctx = gf_ctx_new(&p);
    }
    uint8_t opt = size > 0 ? data[0] : 0;
    if (size > 0) {
        data++;
        size--;
    }
    gf_csv_params p = gf_csv_default_params();
    p.header = (gf_csv_header)(opt % 3);
    p.delimiter = (opt & 0x04) ? ';' : ',';
    p.target = (opt & 0x08) ? GF_CSV_REGRESSION : GF_CSV_CLASSES;
    if ((opt & 0x30) == 0x10 && p.target == GF_CSV_CLASSES) p.n_classes = 3;
    if ((opt & 0x30) == 0x20) p.label = "0";
    if ((opt & 0x30) == 0x30) p.features = "0-1,-2";
    p.skip_lines = (opt & 0x40) ? 1 : 0;
    static const char *const names[3] = {"a", "b", "c"};
    if (opt & 0x80) p.class_names = p.n_classes ? names : NULL;
    p.categorical = (opt & 0x80) && !p.n_classes;
    p.max_categories = 8;
    /* an exact-size heap copy lets ASan catch any read past the end */
    char *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    gf_csv_info info;
    gf_ds *ds = gf_csv_parse_info(ctx, copy, size, "fuzz.csv", &p, &info);
    if (ds) {
        /* a categorical feature holds its category's index (or NaN, never here: no missing) */
        for (int64_t c = 0; c < info.n_categorical; c++)
            if (info.categorical[c].n < 1 || info.categorical[c].n > 8 ||
                info.categorical[c].at < 0 || info.categorical[c].at >= gf_ds_sample_numel(ds))
                abort();
        const int64_t n = gf_ds_count(ds), m = gf_ds_sample_numel(ds);
        float *x = malloc((size_t)m * sizeof *x);
        int64_t y;
        for (int64_t i = 0; x && i < n && i < 4096; i++) {
            if (gf_ds_read(ds, &i, 1, x, &y, NULL, 0) != GF_OK) abort();
            if (gf_ds_n_classes(ds) > 0 && (y < 0 || y >= gf_ds_n_classes(ds))) abort();
            if (gf_ds_n_classes(ds) > 100) abort();
        }
        for (int k = 0; k < gf_ds_n_classes(ds); k++)
            if (!gf_ds_class_name(ds, k)) abort();
        char desc[128];
        gf_ds_describe(ds, desc, sizeof desc);
        for (int64_t i = 0; x && i < n && i < 4096; i++) {
            if (gf_ds_read(ds, &i, 1, x, NULL, NULL, 0) != GF_OK) abort();
            for (int64_t c = 0; c < info.n_categorical; c++) {
                const float v = x[info.categorical[c].at];
                if (!(v >= 0 && v < (float)info.categorical[c].n)) abort();
            }
        }
        free(x);
        gf_ds_free(ds);
        gf_csv_info_free(&info);
    } else if (gf_ctx_status(ctx) == GF_OK || gf_ctx_error(ctx)[0] == '\0') {
        abort(); /* a failure must say why */
    }
    gf_ctx_clear_error(ctx);
    /* the same bytes as rows to predict on: by position, or by the header's names */
    gf_csv_rows rows;
    int64_t nf = 1 + (opt & 0x03) % 3; /* at most the three names */
    gf_csv_rows_params rp = gf_csv_rows_default_params();
    rp.names = (opt & 0x04) ? names : NULL;
    /* a model's categorical column b (features 1..2, "b=x" and "b=y") */
    static const char *const encoded[3] = {"a", "b=x", "b=y"};
    static char vx[] = "x", vy[] = "y";
    static char *values[2] = {vx, vy};
    const gf_csv_category cat = {(char *)"b", 1, 2, values};
    if (opt & 0x80) {
        nf = 3;
        rp.names = encoded;
        rp.categories = &cat;
        rp.n_categories = 1;
        rp.allow_missing = (opt & 0x40) != 0;
    }
    if (gf_csv_parse_rows_with(ctx, copy, size, "fuzz.csv", nf, &rp, &rows) == GF_OK) {
        if (rows.n < 1 || rows.n_features != nf || !rows.x || !rows.lines) abort();
        for (int64_t i = 0; i < rows.n; i++)
            if (rows.lines[i] < 1 || (i && rows.lines[i] <= rows.lines[i - 1])) abort();
    } else if (rows.x || rows.lines || gf_ctx_error(ctx)[0] == '\0') {
        abort();
    }
    gf_csv_rows_free(&rows);
    gf_ctx_clear_error(ctx);
    free(copy);
    return 0;
}
