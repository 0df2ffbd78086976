/* Hostile files and paths (docs/SECURITY.md): outputs that are not regular files are never
 * replaced, stale temporary files of an output are cleaned, headers that promise more than their
 * bytes justify (gzip bombs, 10^9-channel layers, node-heavy JSON, 10^5 classes) fail in
 * milliseconds with "(limit NAME)", escaped NULs in names are refused, and every limit can be
 * raised through gf_limits. To add a case: a static void test_x(gf_ctx *) called from main. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "graft/graft.h"

static char dir[256];

static const char *at(const char *name) {
    static char buf[16][512];
    static int k;
    k = (k + 1) % 16;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void put(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n);
    if (f) fclose(f);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The context's error contains want (and the call failed). */
static void expect_msg(gf_ctx *ctx, gf_status got, const char *want) {
    CHECK(got != GF_OK);
    if (!strstr(gf_ctx_error(ctx), want)) {
        fprintf(stderr, "message '%s' lacks '%s'\n", gf_ctx_error(ctx), want);
        CHECK(0);
    }
    gf_ctx_clear_error(ctx);
}

/* A one-tensor writer. */
static gf_st_writer *small_writer(gf_ctx *ctx, gf_tensor **t) {
    int64_t shape[1] = {4};
    *t = gf_tensor_new(ctx, GF_F32, 1, shape);
    gf_st_writer *w = gf_st_writer_new(ctx);
    CHECK(w && *t && gf_st_writer_add(w, "w", *t, GF_ST_F32) == GF_OK);
    return w;
}

/* ---- outputs that are not regular files ---------------------------------------------------- */

static void test_refuses_non_regular(gf_ctx *ctx) {
    gf_tensor *t;
    gf_st_writer *w = small_writer(ctx, &t);
    put(at("target.bin"), "keep", 4);
    CHECK(symlink(at("target.bin"), at("link.safetensors")) == 0);
    CHECK(mkfifo(at("fifo.safetensors"), 0600) == 0);
    CHECK(mkdir(at("folder.safetensors"), 0700) == 0);
    expect_msg(ctx, gf_st_writer_save(w, at("link.safetensors")), "is a symbolic link");
    expect_msg(ctx, gf_st_writer_save(w, at("fifo.safetensors")), "is a FIFO");
    expect_msg(ctx, gf_st_writer_save(w, at("folder.safetensors")), "is a folder");
    expect_msg(ctx, gf_st_writer_save(w, at("new/")), "ends with '/'");
    struct stat st;
    CHECK(lstat(at("link.safetensors"), &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(lstat(at("fifo.safetensors"), &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK(lstat(at("target.bin"), &st) == 0 && st.st_size == 4);
    /* a character device (as root: the repro replaced /dev/null) */
    if (mknod(at("null.safetensors"), S_IFCHR | 0666, makedev(1, 3)) == 0) {
        expect_msg(ctx, gf_st_writer_save(w, at("null.safetensors")), "is a character device");
        CHECK(lstat(at("null.safetensors"), &st) == 0 && S_ISCHR(st.st_mode));
        unlink(at("null.safetensors"));
    }
    /* a regular file is replaced as before */
    put(at("plain.safetensors"), "old", 3);
    CHECK(gf_st_writer_save(w, at("plain.safetensors")) == GF_OK);
    CHECK(lstat(at("plain.safetensors"), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 3);
    gf_st_writer_free(w);
    gf_tensor_free(t);

    /* the report's index.html: refused before the page is rendered */
    CHECK(mkdir(at("report"), 0700) == 0);
    CHECK(mkfifo(at("report/index.html"), 0600) == 0);
    gf_report *r = gf_report_new(ctx, "t");
    CHECK(r && gf_report_add_text(ctx, r, "x") == GF_OK);
    expect_msg(ctx, gf_report_write(ctx, r, at("report")), "is a FIFO");
    CHECK(lstat(at("report/index.html"), &st) == 0 && S_ISFIFO(st.st_mode));
    gf_report_free(r);
}

/* ---- stale temporary files ---------------------------------------------------------------- */

static void make_old(const char *path) {
    struct timespec ts[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
    CHECK(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) == 0);
}

static void test_cleans_stale_temps(gf_ctx *ctx) {
    gf_tensor *t;
    gf_st_writer *w = small_writer(ctx, &t);
    const char *stale = at("out.safetensors.tmp.Ab3xY9"), *fresh = at("out.safetensors.tmp.Qw3rT7"),
               *longer = at("out.safetensors.tmp.Ab3xY9z"), *other = at("other.safetensors.tmp.Ab3xY9"),
               *link = at("out.safetensors.tmp.L1nk00"), *sub = at("out.safetensors.tmp.D1r000");
    put(stale, "x", 1);
    put(fresh, "x", 1);
    put(longer, "x", 1);
    put(other, "x", 1);
    CHECK(symlink(at("target.bin"), link) == 0);
    CHECK(mkdir(sub, 0700) == 0);
    make_old(stale);
    make_old(longer);
    make_old(other);
    make_old(link);
    make_old(sub);
    CHECK(gf_st_writer_save(w, at("out.safetensors")) == GF_OK);
    CHECK(access(stale, F_OK) != 0);  /* the killed writer's file: gone */
    CHECK(access(fresh, F_OK) == 0);  /* newer than this process: maybe a writer at work */
    CHECK(access(longer, F_OK) == 0); /* not the pattern */
    CHECK(access(other, F_OK) == 0);  /* another output's */
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode)); /* not a regular file */
    CHECK(lstat(sub, &st) == 0 && S_ISDIR(st.st_mode));
    gf_st_writer_free(w);
    gf_tensor_free(t);
}

/* ---- safetensors headers ---------------------------------------------------------------- */

/* A file in memory: 8-byte length, the header, data bytes of zeros. */
static unsigned char *st_file(const char *header, size_t data, size_t *len) {
    size_t h = strlen(header);
    unsigned char *b = calloc(1, 8 + h + data + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    *len = 8 + h + data;
    return b;
}

static void test_safetensors_headers(gf_ctx *ctx) {
    size_t len;
    unsigned char *b = st_file("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, &len);
    EXPECT_ERR(ctx, gf_st_open_memory(ctx, b, len, "nul.safetensors"), GF_ERR_FORMAT, "nul.safetensors",
               "\\u0000");
    free(b);
    b = st_file("{\"__metadata__\":{\"k\":\"v\\u0000w\"}}", 0, &len);
    EXPECT_ERR(ctx, gf_st_open_memory(ctx, b, len, "meta.safetensors"), GF_ERR_FORMAT, "\\u0000");
    free(b);
    /* an escaped backslash before u0000 is not a NUL */
    b = st_file("{\"__metadata__\":{\"k\":\"\\\\u0000\"}}", 0, &len);
    gf_st_file *f = gf_st_open_memory(ctx, b, len, "ok.safetensors");
    CHECK(f && strcmp(gf_st_metadata_get(f, "k"), "\\u0000") == 0);
    gf_st_close(f);
    gf_ctx_clear_error(ctx);
    free(b);

    /* 7 MB of empty arrays: rejected by the count, before cJSON builds 2.4 M nodes */
    size_t n = 7u << 20;
    char *h = malloc(n + 64);
    size_t k = (size_t)sprintf(h, "{\"__metadata__\":{},\"x\":[");
    while (k < n) {
        memcpy(h + k, "[],", 3);
        k += 3;
    }
    strcpy(h + k, "[]]}");
    b = st_file(h, 0, &len);
    double t0 = now();
    EXPECT_ERR(ctx, gf_st_open_memory(ctx, b, len, "nodes.safetensors"), GF_ERR_FORMAT,
               "nodes.safetensors", "(limit json-nodes)");
    CHECK(now() - t0 < 1.0);
    /* the limit can be raised: then the header parses and fails for what it is */
    gf_limits lim = *gf_ctx_limits(ctx), big = lim;
    CHECK(gf_limits_set(&big, "json-nodes", INT64_C(1) << 23));
    gf_ctx_set_limits(ctx, &big);
    EXPECT_ERR(ctx, gf_st_open_memory(ctx, b, len, "nodes.safetensors"), GF_ERR_FORMAT, "tensor 'x'");
    gf_ctx_set_limits(ctx, &lim);
    free(b);
    /* depth */
    k = (size_t)sprintf(h, "{\"x\":");
    for (int i = 0; i < 100; i++) h[k++] = '[';
    for (int i = 0; i < 100; i++) h[k++] = ']';
    strcpy(h + k, "}");
    b = st_file(h, 0, &len);
    EXPECT_ERR(ctx, gf_st_open_memory(ctx, b, len, "deep.safetensors"), GF_ERR_FORMAT, "(limit json-depth)");
    free(b);
    free(h);
    /* the header length limit */
    gf_limits small = lim;
    small.header_bytes = 16;
    gf_ctx_set_limits(ctx, &small);
    b = st_file("{\"__metadata__\":{\"k\":\"a longer value\"}}", 0, &len);
    EXPECT_ERR(ctx, gf_st_open_memory(ctx, b, len, "long.safetensors"), GF_ERR_FORMAT, "(limit header-bytes)");
    gf_ctx_set_limits(ctx, &lim);
    gf_ctx_clear_error(ctx);
    free(b);
}

/* ---- IDX gzip bombs ------------------------------------------------------------------------ */

static void gz_zeros(gzFile g, size_t n) {
    static const unsigned char zero[1 << 16];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof zero ? n - done : sizeof zero;
        CHECK(gzwrite(g, zero, (unsigned)k) == (int)k);
        done += k;
    }
}

static void test_idx_bombs(gf_ctx *ctx) {
    setenv("GRAFT_IDX_CACHE", "0", 1);
    /* the header promises 1 GB; the file holds a few kilobytes of gzip */
    const unsigned char head[] = {0, 0, 8, 3, 0, 0, 3, 0xe8, 0, 0, 3, 0xe8, 0, 0, 3, 0xe8};
    gzFile g = gzopen(at("bomb.gz"), "wb9");
    CHECK(g != NULL);
    gzwrite(g, head, sizeof head);
    gz_zeros(g, 1 << 20);
    gzclose(g);
    gf_idx x;
    double t0 = now();
    expect_msg(ctx, gf_idx_read(ctx, at("bomb.gz"), &x), "(limit gzip-ratio)");
    CHECK(now() - t0 < 1.0);
    /* an honest header, but 80 MB of zeros hide before 1 MB of noise: the file as a whole
     * inflates 70x, the zeros 1000x; caught as it streams, once past 64 MiB */
    const unsigned char head2[] = {0, 0, 8, 1, 0x05, 0x10, 0, 0}; /* 81 MiB */
    g = gzopen(at("hidden.gz"), "wb1");
    gzwrite(g, head2, sizeof head2);
    gz_zeros(g, (size_t)80 << 20);
    uint32_t r = 12345;
    for (int i = 0; i < (1 << 20); i++) {
        r = r * 1103515245u + 12345u;
        unsigned char c = (unsigned char)(r >> 24);
        gzwrite(g, &c, 1);
    }
    gzclose(g);
    struct stat st;
    CHECK(stat(at("hidden.gz"), &st) == 0 && st.st_size > (81 << 20) / 100); /* the header passes */
    expect_msg(ctx, gf_idx_read(ctx, at("hidden.gz"), &x), "inflated");
    gf_limits lim = *gf_ctx_limits(ctx), big = lim;
    big.gzip_ratio = 100000;
    gf_ctx_set_limits(ctx, &big);
    CHECK(gf_idx_read(ctx, at("hidden.gz"), &x) == GF_OK && x.numel == (int64_t)81 << 20);
    gf_idx_free(&x);
    gf_ctx_clear_error(ctx);
    gf_ctx_set_limits(ctx, &lim);
    /* the declared size against data-bytes */
    gf_limits small = lim;
    small.data_bytes = 1000;
    gf_ctx_set_limits(ctx, &small);
    const unsigned char head3[] = {0, 0, 8, 1, 0, 0, 0x10, 0};
    put(at("big.idx"), head3, sizeof head3);
    expect_msg(ctx, gf_idx_read(ctx, at("big.idx"), &x), "(limit data-bytes)");
    gf_ctx_set_limits(ctx, &lim);
    unlink(at("hidden.gz"));
}

/* ---- CSV ------------------------------------------------------------------------------------- */

static void test_csv_limits(gf_ctx *ctx) {
    /* 12,000 distinct labels: refused when the file is opened, naming it and the count */
    const int n = 12000;
    char *text = malloc((size_t)n * 24 + 16), *p = text;
    p += sprintf(p, "x,label\n");
    for (int i = 0; i < n; i++) p += sprintf(p, "%d,c%d\n", i, i);
    put(at("classes.csv"), text, (size_t)(p - text));
    EXPECT_ERR(ctx, gf_csv_load(ctx, at("classes.csv"), NULL), GF_ERR_FORMAT, "classes.csv", "12000 classes",
               "(limit classes)");
    gf_limits lim = *gf_ctx_limits(ctx), big = lim;
    CHECK(gf_limits_set(&big, "classes", 20000));
    gf_ctx_set_limits(ctx, &big);
    gf_ds *ds = gf_csv_load(ctx, at("classes.csv"), NULL);
    CHECK(ds && gf_ds_n_classes(ds) == n);
    gf_ds_free(ds);
    gf_ctx_set_limits(ctx, &lim);
    free(text);
    /* a gzip bomb of a CSV: checked as it inflates */
    gzFile g = gzopen(at("bomb.csv.gz"), "wb9");
    gzwrite(g, "a,b\n", 4);
    static char rows[1 << 16];
    for (size_t i = 0; i < sizeof rows; i += 4) memcpy(rows + i, "1,2\n", 4);
    for (int i = 0; i < 1100; i++) gzwrite(g, rows, sizeof rows); /* 70 MB */
    gzclose(g);
    EXPECT_ERR(ctx, gf_csv_load(ctx, at("bomb.csv.gz"), NULL), GF_ERR_FORMAT, "bomb.csv.gz",
               "(limit gzip-ratio)");
    unlink(at("bomb.csv.gz"));
}

/* ---- model specs -------------------------------------------------------------------------- */

static gf_module *spec(gf_ctx *ctx, const char *text, int ndim, const int64_t *shape) {
    gf_spec_params p = gf_spec_default_params();
    p.label = "evil.json";
    p.in_ndim = ndim;
    for (int i = 0; i < ndim; i++) p.in_shape[i] = shape[i];
    return gf_spec_parse(ctx, text, strlen(text), &p, NULL);
}

static void test_spec_limits(gf_ctx *ctx) {
    /* the 97-byte spec that cost 34 s and 7.8 GB */
    const char *conv = "{\"type\":\"sequential\",\"children\":[{\"type\":\"conv2d\",\"in\":1,"
                       "\"out\":1000000000,\"kernel\":1}]}";
    double t0 = now();
    EXPECT_ERR(ctx, spec(ctx, conv, 0, NULL), GF_ERR_INVALID, "evil.json", "at 0 (conv2d)", "(limit params)");
    CHECK(now() - t0 < 0.5);
    const char *lin = "{\"type\":\"sequential\",\"children\":[{\"type\":\"flatten\"},"
                      "{\"type\":\"linear\",\"out\":100000},{\"type\":\"linear\",\"out\":100000}]}";
    const int64_t img[3] = {1, 28, 28};
    EXPECT_ERR(ctx, spec(ctx, lin, 3, img), GF_ERR_INVALID, "at 2 (linear)", "(limit params)");
    /* small weights, a huge output: 10^5 channels over 28x28 */
    const char *wide = "{\"type\":\"conv2d\",\"in\":1,\"out\":100000,\"kernel\":1}";
    EXPECT_ERR(ctx, spec(ctx, wide, 3, img), GF_ERR_INVALID, "(limit activation)");
    const char *pad = "{\"type\":\"maxpool2d\",\"kernel\":1,\"padding\":60000}";
    EXPECT_ERR(ctx, spec(ctx, pad, 3, img), GF_ERR_INVALID, "(maxpool2d)", "(limit activation)");
    const char *input = "{\"type\":\"relu\",\"input\":[1000,1000,1000]}";
    EXPECT_ERR(ctx, spec(ctx, input, 0, NULL), GF_ERR_INVALID, "the input [1000, 1000, 1000]",
               "(limit activation)");
    EXPECT_ERR(ctx, spec(ctx, "{\"type\":\"sequential\",\"children\":{\"a\\u0000b\":{\"type\":\"relu\"}}}", 0, NULL),
               GF_ERR_FORMAT, "\\u0000");
    /* raised, the same spec builds */
    gf_limits lim = *gf_ctx_limits(ctx), big = lim;
    CHECK(gf_limits_set(&big, "activation", INT64_C(1) << 27));
    gf_ctx_set_limits(ctx, &big);
    const int64_t one[3] = {1, 2, 2};
    gf_module *m = spec(ctx, wide, 3, one);
    CHECK(m != NULL);
    gf_module_free(m);
    gf_ctx_set_limits(ctx, &lim);
    /* a hostile zoo model (mlp widths from a weights file) */
    gf_zoo_params zp = gf_zoo_default_params();
    zp.hidden[0] = 1 << 30;
    EXPECT_ERR(ctx, gf_zoo_build(ctx, "mlp", &zp, NULL), GF_ERR_INVALID, "(limit params)");
    gf_ctx_clear_error(ctx);
}

static void test_limit_names(void) {
    gf_limits l = gf_limits_default();
    CHECK(gf_limits_set(&l, "gzip_ratio", 7) && l.gzip_ratio == 7);
    CHECK(gf_limits_set(&l, "params", 9) && l.model_params == 9);
    CHECK(!gf_limits_set(&l, "gzip", 7) && !gf_limits_set(&l, "params", 0));
    int n = 0;
    for (const char *const *s = gf_limits_names(); *s; s++) n++;
    CHECK(n == 8);
    /* a context made from zeroed params gets the defaults */
    gf_ctx_params p;
    memset(&p, 0, sizeof p);
    gf_ctx *c = gf_ctx_new(&p);
    CHECK(c && gf_ctx_limits(c)->classes == gf_limits_default().classes);
    gf_ctx_free(c);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/graft-hostile-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    test_refuses_non_regular(ctx);
    test_cleans_stale_temps(ctx);
    test_safetensors_headers(ctx);
    test_idx_bombs(ctx);
    test_csv_limits(ctx);
    test_spec_limits(ctx);
    test_limit_names();
    gf_ctx_free(ctx);
    test_rm_tree(dir);
    return test_finish("test_hostile");
}
