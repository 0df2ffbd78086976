/* IDX reader tests: error paths on crafted files in a temporary folder (each must return an
 * error that names the file, never crash), batch conversion, and the real Fashion-MNIST files
 * checked against checksums from an independent Python reader (fixtures/idx_checksums.json,
 * written by fixtures/gen_idx_checksums.py). To add an error case: craft the bytes with
 * idx_bytes(), write them with put_plain()/put_gz() and call expect_error(). */
#define _DEFAULT_SOURCE /* truncate, setenv */
#include "graft/graft.h"
#include "graft/data.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[256];
/* every file written, removed at the end */
static char created[64][512];
static int n_created = 0;

static void track(const char *path) {
    for (int i = 0; i < n_created; i++)
        if (strcmp(created[i], path) == 0) return;
    if (n_created < 64) snprintf(created[n_created++], sizeof created[0], "%s", path);
}

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* An IDX image in memory: magic (0, 0, type, ndim), big-endian dims, payload. */
static size_t idx_bytes(uint8_t *out, int type, int ndim, const uint32_t *dims,
                        const uint8_t *payload, size_t n) {
    size_t k = 0;
    out[k++] = 0;
    out[k++] = 0;
    out[k++] = (uint8_t)type;
    out[k++] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        out[k++] = (uint8_t)(dims[i] >> 24);
        out[k++] = (uint8_t)(dims[i] >> 16);
        out[k++] = (uint8_t)(dims[i] >> 8);
        out[k++] = (uint8_t)dims[i];
    }
    if (n) memcpy(out + k, payload, n);
    return k + n;
}

static void put_plain(const char *path, const void *data, size_t n) {
    track(path);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    if (n) CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static void put_gz(const char *path, const void *data, size_t n) {
    track(path);
    gzFile f = gzopen(path, "wb6");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(gzwrite(f, data, (unsigned)n) == (int)n);
    gzclose(f);
}

static size_t get_plain(const char *path, uint8_t *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* Reading `path` must fail with status s, a message containing the path and `needle`, and
 * leave the output empty. */
static void expect_error(gf_ctx *ctx, const char *path, gf_status s, const char *needle) {
    gf_idx x;
    gf_ctx_clear_error(ctx);
    gf_status got = gf_idx_read(ctx, path, &x);
    const char *msg = gf_ctx_error(ctx);
    bool ok = got == s && gf_ctx_status(ctx) == s && strstr(msg, path) &&
              (!needle || strstr(msg, needle)) && x.data == NULL && x.ndim == 0;
    if (!ok)
        fprintf(stderr, "expect_error(%s, %s, \"%s\"): got status %s, message \"%s\"\n", path,
                gf_status_name(s), needle ? needle : "", gf_status_name(got), msg);
    else printf("  %s\n", msg);
    CHECK(ok);
    gf_ctx_clear_error(ctx);
}

static uint8_t big_payload[300000];
static uint8_t filebuf[400000];

static void test_good_files(gf_ctx *ctx) {
    /* 3 images of 2x4 and their labels, gzip and plain */
    uint8_t pix[24], lab[3] = {2, 0, 7};
    for (int i = 0; i < 24; i++) pix[i] = (uint8_t)(i * 11);
    uint32_t di[] = {3, 2, 4}, dl[] = {3};
    size_t n = idx_bytes(filebuf, 0x08, 3, di, pix, 24);
    put_gz(tmp_path("img.gz"), filebuf, n);
    put_plain(tmp_path("img.raw"), filebuf, n);
    n = idx_bytes(filebuf, 0x08, 1, dl, lab, 3);
    put_gz(tmp_path("lab.gz"), filebuf, n);
    put_plain(tmp_path("lab.raw"), filebuf, n);

    gf_idx x;
    CHECK(gf_idx_read(ctx, tmp_path("img.raw"), &x) == GF_OK);
    CHECK(x.ndim == 3 && x.dims[0] == 3 && x.dims[1] == 2 && x.dims[2] == 4 && x.numel == 24);
    CHECK(x.data && memcmp(x.data, pix, 24) == 0);
    gf_idx_free(&x);
    CHECK(x.data == NULL && x.ndim == 0);
    gf_idx_free(&x); /* twice is harmless */
    gf_idx_free(NULL);

    gf_dataset *d = gf_dataset_load_idx(ctx, tmp_path("img.gz"), tmp_path("lab.gz"));
    CHECK(d != NULL);
    if (!d) return;
    CHECK(d->n == 3 && d->rows == 2 && d->cols == 4 && d->n_classes == 8);
    CHECK(memcmp(d->images, pix, 24) == 0 && memcmp(d->labels, lab, 3) == 0);

    /* batch [2, 8] of examples 2 and 0, plain scaling */
    int64_t idx[2] = {2, 0};
    int64_t sx[] = {2, 8}, sy[] = {2};
    gf_tensor *bx = gf_empty(ctx, GF_F32, 2, sx), *by = gf_empty(ctx, GF_I64, 1, sy);
    CHECK(gf_dataset_batch(ctx, d, idx, 2, 0.0f, 1.0f, bx, by) == GF_OK);
    CHECK_NEAR(gf_f32(bx)[0], (float)pix[16] / 255.0f, 0);
    CHECK_NEAR(gf_f32(bx)[15], (float)pix[7] / 255.0f, 0);
    CHECK(gf_i64(by)[0] == 7 && gf_i64(by)[1] == 2);
    /* [2, 1, 2, 4] with normalisation, no labels */
    int64_t s4[] = {2, 1, 2, 4};
    gf_tensor *b4 = gf_empty(ctx, GF_F32, 4, s4);
    CHECK(gf_dataset_batch(ctx, d, idx, 2, 0.5f, 0.25f, b4, NULL) == GF_OK);
    CHECK_NEAR(gf_f32(b4)[3], ((float)pix[19] / 255.0f - 0.5f) / 0.25f, 1e-6);
    /* errors: index out of range, wrong x shape, wrong dtype, bad std */
    int64_t bad[2] = {0, 3};
    gf_ctx_clear_error(ctx);
    CHECK(gf_dataset_batch(ctx, d, bad, 2, 0, 1, bx, by) == GF_ERR_INVALID &&
          strstr(gf_ctx_error(ctx), "index 3"));
    gf_ctx_clear_error(ctx);
    int64_t sw[] = {2, 7};
    CHECK(gf_dataset_batch(ctx, d, idx, 2, 0, 1, gf_empty(ctx, GF_F32, 2, sw), by) ==
              GF_ERR_SHAPE &&
          strstr(gf_ctx_error(ctx), "[2, 7]"));
    gf_ctx_clear_error(ctx);
    CHECK(gf_dataset_batch(ctx, d, idx, 2, 0, 1, by, by) == GF_ERR_DTYPE);
    gf_ctx_clear_error(ctx);
    CHECK(gf_dataset_batch(ctx, d, idx, 2, 0, 0.0f, bx, by) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_dataset_batch(ctx, d, idx, 2, 0, 1, bx, bx) == GF_ERR_DTYPE);
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    gf_dataset_free(d);
    gf_dataset_free(NULL);
}

static void test_bad_files(gf_ctx *ctx) {
    uint32_t di[] = {100, 30, 100};
    for (size_t i = 0; i < sizeof big_payload; i++)
        big_payload[i] = (uint8_t)((i * 2654435761u) >> 13); /* poorly compressible */
    size_t n = idx_bytes(filebuf, 0x08, 3, di, big_payload, sizeof big_payload);
    put_gz(tmp_path("good.gz"), filebuf, n);
    static uint8_t gz[420000];
    size_t gzn = get_plain(tmp_path("good.gz"), gz, sizeof gz);
    CHECK(gzn > 1000);

    expect_error(ctx, tmp_path("does-not-exist.gz"), GF_ERR_IO, "No such file");
    put_plain(tmp_path("empty.gz"), "", 0);
    expect_error(ctx, tmp_path("empty.gz"), GF_ERR_FORMAT, "empty");
    expect_error(ctx, tmpdir, GF_ERR_IO, NULL); /* a folder */

    /* gzip stream cut in the middle, and cut just before its 8-byte trailer */
    put_plain(tmp_path("cut.gz"), gz, gzn / 2);
    expect_error(ctx, tmp_path("cut.gz"), GF_ERR_FORMAT, "truncated gzip");
    put_plain(tmp_path("notrailer.gz"), gz, gzn - 8);
    expect_error(ctx, tmp_path("notrailer.gz"), GF_ERR_FORMAT, "truncated gzip");
    put_plain(tmp_path("tiny.gz"), gz, 12); /* inside the gzip header */
    expect_error(ctx, tmp_path("tiny.gz"), GF_ERR_FORMAT, NULL);

    /* corrupt compressed bytes; corrupt CRC in the trailer */
    static uint8_t bad[420000];
    memcpy(bad, gz, gzn);
    for (size_t i = gzn / 3; i < gzn / 3 + 64; i++) bad[i] ^= 0x5a;
    put_plain(tmp_path("corrupt.gz"), bad, gzn);
    expect_error(ctx, tmp_path("corrupt.gz"), GF_ERR_FORMAT, "corrupt gzip");
    memcpy(bad, gz, gzn);
    bad[gzn - 6] ^= 0xff;
    put_plain(tmp_path("badcrc.gz"), bad, gzn);
    expect_error(ctx, tmp_path("badcrc.gz"), GF_ERR_FORMAT, "corrupt gzip");
    memcpy(bad, gz, gzn);
    bad[3] = 0xE0; /* reserved gzip flag bits */
    put_plain(tmp_path("badflags.gz"), bad, gzn);
    expect_error(ctx, tmp_path("badflags.gz"), GF_ERR_FORMAT, NULL);

    /* headers */
    uint8_t hdr[64];
    uint32_t d1[] = {4};
    n = idx_bytes(hdr, 0x08, 1, d1, (const uint8_t *)"abcd", 4);
    hdr[0] = 0x12;
    put_gz(tmp_path("magic.gz"), hdr, n);
    expect_error(ctx, tmp_path("magic.gz"), GF_ERR_FORMAT, "not an IDX file");
    put_plain(tmp_path("text.idx"), "hello, world\n", 13);
    expect_error(ctx, tmp_path("text.idx"), GF_ERR_FORMAT, "not an IDX file");
    n = idx_bytes(hdr, 0x0C, 1, d1, (const uint8_t *)"abcdabcdabcdabcd", 16);
    put_gz(tmp_path("int32.gz"), hdr, n);
    expect_error(ctx, tmp_path("int32.gz"), GF_ERR_FORMAT, "int32");
    n = idx_bytes(hdr, 0x07, 1, d1, (const uint8_t *)"abcd", 4);
    put_gz(tmp_path("type7.gz"), hdr, n);
    expect_error(ctx, tmp_path("type7.gz"), GF_ERR_FORMAT, "not an IDX file");
    n = idx_bytes(hdr, 0x08, 0, NULL, NULL, 0);
    put_gz(tmp_path("ndim0.gz"), hdr, n);
    expect_error(ctx, tmp_path("ndim0.gz"), GF_ERR_FORMAT, "0 dimensions");
    uint32_t d9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    n = idx_bytes(hdr, 0x08, 9, d9, (const uint8_t *)"a", 1);
    put_gz(tmp_path("ndim9.gz"), hdr, n);
    expect_error(ctx, tmp_path("ndim9.gz"), GF_ERR_FORMAT, "9 dimensions");
    uint32_t d28[] = {10, 28, 28};
    idx_bytes(hdr, 0x08, 3, d28, NULL, 0);
    put_plain(tmp_path("shorthdr.idx"), hdr, 6);
    expect_error(ctx, tmp_path("shorthdr.idx"), GF_ERR_FORMAT, "ends early");
    uint32_t huge[] = {4000000000u, 4000000000u, 4000000000u};
    n = idx_bytes(hdr, 0x08, 3, huge, NULL, 0);
    put_gz(tmp_path("huge.gz"), hdr, n);
    expect_error(ctx, tmp_path("huge.gz"), GF_ERR_FORMAT, "absurd");
    uint32_t large[] = {1000000, 28, 28}; /* under the cap, but the bytes are not there */
    n = idx_bytes(hdr, 0x08, 3, large, (const uint8_t *)"xyz", 3);
    put_plain(tmp_path("promise.idx"), hdr, n);
    expect_error(ctx, tmp_path("promise.idx"), GF_ERR_FORMAT, "ends early");
    /* compressed, the same promise is refused from the header: 784 MB from 36 bytes */
    put_gz(tmp_path("promise.gz"), hdr, n);
    expect_error(ctx, tmp_path("promise.gz"), GF_ERR_FORMAT, "(limit gzip-ratio)");

    /* payload shorter / longer than the header says */
    uint32_t d3[] = {3};
    n = idx_bytes(hdr, 0x08, 1, d3, (const uint8_t *)"ab", 2);
    put_plain(tmp_path("short.idx"), hdr, n);
    expect_error(ctx, tmp_path("short.idx"), GF_ERR_FORMAT, "ends early");
    n = idx_bytes(hdr, 0x08, 1, d3, (const uint8_t *)"abcd", 4);
    put_gz(tmp_path("long.gz"), hdr, n);
    expect_error(ctx, tmp_path("long.gz"), GF_ERR_FORMAT, "unexpected bytes");

    gf_idx x;
    gf_ctx_clear_error(ctx);
    CHECK(gf_idx_read(ctx, NULL, &x) == GF_ERR_INVALID && x.data == NULL);
    gf_ctx_clear_error(ctx);
    CHECK(gf_idx_read(ctx, tmp_path("long.gz"), NULL) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
}

static void expect_load_error(gf_ctx *ctx, const char *img, const char *lab, gf_status s,
                              const char *named, const char *needle) {
    gf_ctx_clear_error(ctx);
    gf_dataset *d = gf_dataset_load_idx(ctx, img, lab);
    const char *msg = gf_ctx_error(ctx);
    bool ok = !d && gf_ctx_status(ctx) == s && strstr(msg, named) && strstr(msg, needle);
    if (!ok) fprintf(stderr, "load(%s, %s): message \"%s\"\n", img, lab, msg);
    else printf("  %s\n", msg);
    CHECK(ok);
    gf_dataset_free(d);
    gf_ctx_clear_error(ctx);
}

static void test_dataset_errors(gf_ctx *ctx) {
    uint8_t buf[256], pix[48] = {0}, lab[4] = {1, 2, 3, 4};
    uint32_t di[] = {3, 4, 4}, dl3[] = {3}, dl4[] = {4}, d2[] = {3, 16}, dl2[] = {3, 1};
    uint32_t d0[] = {0, 4, 4}, dl0[] = {0};
    put_gz(tmp_path("i3.gz"), buf, idx_bytes(buf, 8, 3, di, pix, 48));
    put_gz(tmp_path("l3.gz"), buf, idx_bytes(buf, 8, 1, dl3, lab, 3));
    put_gz(tmp_path("l4.gz"), buf, idx_bytes(buf, 8, 1, dl4, lab, 4));
    put_gz(tmp_path("i2d.gz"), buf, idx_bytes(buf, 8, 2, d2, pix, 48));
    put_gz(tmp_path("l2d.gz"), buf, idx_bytes(buf, 8, 2, dl2, lab, 3));
    put_gz(tmp_path("i0.gz"), buf, idx_bytes(buf, 8, 3, d0, NULL, 0));
    put_gz(tmp_path("l0.gz"), buf, idx_bytes(buf, 8, 1, dl0, NULL, 0));

    expect_load_error(ctx, tmp_path("i3.gz"), tmp_path("l4.gz"), GF_ERR_FORMAT, "l4.gz",
                      "3 images");
    expect_load_error(ctx, tmp_path("i3.gz"), tmp_path("l4.gz"), GF_ERR_FORMAT, "i3.gz",
                      "4 labels");
    expect_load_error(ctx, tmp_path("i2d.gz"), tmp_path("l3.gz"), GF_ERR_FORMAT, "i2d.gz",
                      "3 dimensions");
    expect_load_error(ctx, tmp_path("i3.gz"), tmp_path("l2d.gz"), GF_ERR_FORMAT, "l2d.gz",
                      "1 dimension");
    expect_load_error(ctx, tmp_path("i0.gz"), tmp_path("l0.gz"), GF_ERR_FORMAT, "i0.gz",
                      "empty");
    expect_load_error(ctx, tmp_path("i3.gz"), tmp_path("missing.gz"), GF_ERR_IO,
                      "missing.gz", "cannot open");
    expect_load_error(ctx, tmp_path("missing.gz"), tmp_path("l3.gz"), GF_ERR_IO,
                      "missing.gz", "cannot open");
    /* labels file passed as images and vice versa */
    expect_load_error(ctx, tmp_path("l3.gz"), tmp_path("i3.gz"), GF_ERR_FORMAT, "l3.gz",
                      "3 dimensions");

    /* named datasets: unknown name, GRAFT_DATA_DIR (root with a folder per dataset, or the
     * folder itself), MNIST-family checks on size and label range */
    char ip[1024], lp[1024];
    gf_ctx_clear_error(ctx);
    CHECK(gf_dataset_paths(ctx, "cifar-11", GF_DATASET_TRAIN, ip, lp, sizeof ip) ==
              GF_ERR_INVALID &&
          strstr(gf_ctx_error(ctx), "cifar-11"));
    gf_ctx_clear_error(ctx);
    CHECK(gf_dataset_paths(ctx, "fashion-mnist", GF_DATASET_TRAIN, ip, lp, 10) ==
          GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    char *old = getenv("GRAFT_DATA_DIR") ? strdup(getenv("GRAFT_DATA_DIR")) : NULL;
    unsetenv("GRAFT_DATA_DIR");
    CHECK(gf_dataset_paths(ctx, "fashion-mnist", GF_DATASET_TEST, ip, lp, sizeof ip) == GF_OK);
    CHECK(strcmp(ip, "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") == 0);
    CHECK(strcmp(lp, "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz") == 0);
    CHECK(gf_dataset_paths(ctx, "/data/x", GF_DATASET_TRAIN, ip, lp, sizeof ip) == GF_OK);
    CHECK(strcmp(lp, "/data/x/train-labels-idx1-ubyte.gz") == 0);

    setenv("GRAFT_DATA_DIR", tmpdir, 1);
    CHECK(gf_dataset_paths(ctx, "mnist", GF_DATASET_TRAIN, ip, lp, sizeof ip) == GF_OK);
    CHECK(strcmp(ip, tmp_path("mnist/train-images-idx3-ubyte.gz")) == 0);
    /* 5 images of 28x28 with a label 10: rejected for mnist, accepted from a folder path */
    static uint8_t img[5 * 784 + 64];
    static uint8_t imgpix[5 * 784];
    uint8_t lab5[5] = {0, 1, 10, 3, 4};
    uint32_t d28[] = {5, 28, 28}, d5[] = {5};
    put_gz(tmp_path("train-images-idx3-ubyte.gz"), img, idx_bytes(img, 8, 3, d28, imgpix, 5 * 784));
    put_gz(tmp_path("train-labels-idx1-ubyte.gz"), buf, idx_bytes(buf, 8, 1, d5, lab5, 5));
    gf_dataset *d = gf_dataset_load(ctx, "mnist", GF_DATASET_TRAIN); /* files directly in dir */
    CHECK(!d && strstr(gf_ctx_error(ctx), "label 10") &&
          strstr(gf_ctx_error(ctx), "train-labels-idx1-ubyte.gz"));
    gf_ctx_clear_error(ctx);
    char folder[600];
    snprintf(folder, sizeof folder, "%s/", tmpdir);
    d = gf_dataset_load(ctx, folder, GF_DATASET_TRAIN);
    CHECK(d && d->n == 5 && d->n_classes == 11);
    gf_dataset_free(d);
    gf_ctx_clear_error(ctx);
    d = gf_dataset_load(ctx, "mnist", GF_DATASET_TEST); /* no t10k files there */
    CHECK(!d && gf_ctx_status(ctx) == GF_ERR_IO && strstr(gf_ctx_error(ctx), "t10k-images"));
    gf_ctx_clear_error(ctx);
    if (old) setenv("GRAFT_DATA_DIR", old, 1);
    else unsetenv("GRAFT_DATA_DIR");
    free(old);
}

static uint64_t fnv1a(const uint8_t *p, int64_t n) {
    uint64_t h = 14695981039346656037ull;
    for (int64_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* The real Fashion-MNIST: must be installed (CI installs it); a missing file fails. With
 * `cached`, the images must come from the decompressed cache (a mapping). */
static void test_fashion_mnist(gf_ctx *ctx, bool cached) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/idx_checksums.json", src ? src : ".");
    FILE *f = fopen(path, "rb");
    static char text[8192];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = '\0';
    cJSON *doc = cJSON_Parse(text);
    if (!doc) fprintf(stderr, "cannot read %s (set GRAFT_SOURCE_DIR)\n", path);
    CHECK(doc != NULL);
    if (!doc) return;
    const cJSON *splits = cJSON_GetObjectItemCaseSensitive(doc, "splits");
    for (int s = 0; s < 2; s++) {
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(splits, s == 0 ? "train" : "test");
        gf_ctx_clear_error(ctx);
        gf_dataset *d = gf_dataset_load(ctx, "fashion-mnist", s == 0 ? GF_DATASET_TRAIN
                                                                    : GF_DATASET_TEST);
        if (!d) {
            fprintf(stderr,
                    "FAIL: Fashion-MNIST is required for this test and could not be loaded: "
                    "%s\n(install it under /usr/share/datasets/fashion-mnist or set "
                    "GRAFT_DATA_DIR)\n",
                    gf_ctx_error(ctx));
            CHECK(d != NULL);
            continue;
        }
        CHECK(d->n == (int64_t)cJSON_GetObjectItemCaseSensitive(want, "count")->valuedouble);
        CHECK(d->n == (s == 0 ? 60000 : 10000));
        CHECK(d->rows == 28 && d->cols == 28 && d->n_classes == 10);
        CHECK((d->images_mapping != NULL) == cached);
        int64_t counts[10] = {0};
        for (int64_t i = 0; i < d->n; i++) counts[d->labels[i]]++;
        const cJSON *cc = cJSON_GetObjectItemCaseSensitive(want, "class_counts");
        for (int c = 0; c < 10; c++) {
            CHECK(counts[c] == (s == 0 ? 6000 : 1000));
            CHECK(counts[c] == (int64_t)cJSON_GetArrayItem(cc, c)->valuedouble);
        }
        uint64_t sum = 0;
        int64_t npix = d->n * d->rows * d->cols;
        for (int64_t i = 0; i < npix; i++) sum += d->images[i];
        CHECK(sum == (uint64_t)cJSON_GetObjectItemCaseSensitive(want, "pixel_sum")->valuedouble);
        uint64_t hp = fnv1a(d->images, npix), hl = fnv1a(d->labels, d->n);
        const char *wp = cJSON_GetObjectItemCaseSensitive(want, "pixel_fnv1a64")->valuestring;
        const char *wl = cJSON_GetObjectItemCaseSensitive(want, "label_fnv1a64")->valuestring;
        CHECK(hp == strtoull(wp, NULL, 10));
        CHECK(hl == strtoull(wl, NULL, 10));
        printf("  %s%s: %lld images, pixel sum %llu, fnv1a pixels %llu labels %llu\n",
               s == 0 ? "train" : "test", cached ? " (cached)" : "", (long long)d->n, (unsigned long long)sum,
               (unsigned long long)hp, (unsigned long long)hl);
        gf_dataset_free(d);
    }
    cJSON_Delete(doc);
}

/* ---- the decompressed cache ------------------------------------------------------------- */

static int64_t file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* The one cache file of `stem` in the cache folder (path into out); how many there are. */
static int find_cache(const char *stem, char *out, size_t cap) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/cache/idx", tmpdir);
    DIR *dp = opendir(dir);
    int n = 0;
    for (struct dirent *e; dp && (e = readdir(dp));) {
        if (strncmp(e->d_name, stem, strlen(stem)) != 0) continue;
        if (n++ == 0) snprintf(out, cap, "%s/%s", dir, e->d_name);
    }
    if (dp) closedir(dp);
    return n;
}

static void remove_cache(void) {
    char cmd[800];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/cache'", tmpdir);
    CHECK(system(cmd) == 0);
}

/* A gzip file of 1 MiB or more is cached uncompressed after its first read and mapped from
 * the cache afterwards (same bytes); a damaged cache file is ignored and rewritten; a changed
 * source gets a new cache file; small files and GRAFT_IDX_CACHE=0 bypass the cache; plain
 * (uncompressed) sources are never copied. */
static void test_cache(gf_ctx *ctx) {
    static uint8_t pay[1100 * 32 * 32], file[1100 * 32 * 32 + 16];
    for (size_t i = 0; i < sizeof pay; i++) pay[i] = (uint8_t)((i * 2654435761u) >> 13);
    const uint32_t dims[3] = {1100, 32, 32};
    const size_t n = idx_bytes(file, 0x08, 3, dims, pay, sizeof pay);
    const char *src = tmp_path("big-idx3-ubyte.gz");
    put_gz(src, file, n);
    char cpath[1200] = "";
    gf_idx x;
    CHECK(gf_idx_read(ctx, src, &x) == GF_OK && x.mapping == NULL);
    CHECK(x.numel == (int64_t)sizeof pay && memcmp(x.data, pay, sizeof pay) == 0);
    gf_idx_free(&x);
    CHECK(find_cache("big-idx3-ubyte-", cpath, sizeof cpath) == 1);
    CHECK(file_size(cpath) == (int64_t)n);
    CHECK(gf_idx_read(ctx, src, &x) == GF_OK && x.mapping != NULL);
    CHECK(x.ndim == 3 && x.dims[0] == 1100 && x.dims[2] == 32 && x.numel == (int64_t)sizeof pay);
    CHECK(memcmp(x.data, pay, sizeof pay) == 0);
    x.data[0] ^= 1; /* private mapping: writable, and the file does not change */
    gf_idx_free(&x);
    CHECK(x.data == NULL && x.mapping == NULL);
    /* damaged cache files: cut short, a wrong header, empty */
    for (int k = 0; k < 3; k++) {
        CHECK(truncate(cpath, k == 0 ? (off_t)(n - 1) : k == 1 ? (off_t)n : 0) == 0);
        if (k == 1) {
            FILE *f = fopen(cpath, "r+b");
            CHECK(f != NULL);
            if (f) {
                fputc(0x0D, f), fputc(0x0D, f); /* not an IDX magic any more */
                fclose(f);
            }
        }
        CHECK(gf_idx_read(ctx, src, &x) == GF_OK && x.mapping == NULL); /* from the source */
        CHECK(x.numel == (int64_t)sizeof pay && memcmp(x.data, pay, sizeof pay) == 0);
        gf_idx_free(&x);
        CHECK(file_size(cpath) == (int64_t)n); /* rewritten */
    }
    CHECK(gf_idx_read(ctx, src, &x) == GF_OK && x.mapping != NULL);
    CHECK(x.data[0] == pay[0]);
    gf_idx_free(&x);
    /* a dataset whose images come from the cache frees its mapping */
    const uint32_t ldims[1] = {1100};
    static uint8_t labels[1100], lfile[1100 + 8];
    for (int i = 0; i < 1100; i++) labels[i] = (uint8_t)(i % 7);
    const char *lab = tmp_path("big-labels.gz");
    put_gz(lab, lfile, idx_bytes(lfile, 0x08, 1, ldims, labels, sizeof labels));
    gf_dataset *d = gf_dataset_load_idx(ctx, src, lab);
    CHECK(d && d->images_mapping != NULL && d->n == 1100 && d->n_classes == 7);
    CHECK(d && memcmp(d->images, pay, sizeof pay) == 0 && d->labels[13] == 13 % 7);
    gf_dataset_free(d);
    /* the source changes: a new cache file, the new bytes */
    pay[5] ^= 0xFF;
    CHECK(idx_bytes(file, 0x08, 3, dims, pay, sizeof pay) == n);
    sleep(1); /* a different modification time even where its resolution is a second */
    put_gz(src, file, n);
    CHECK(gf_idx_read(ctx, src, &x) == GF_OK && x.mapping == NULL && x.data[5] == pay[5]);
    gf_idx_free(&x);
    CHECK(find_cache("big-idx3-ubyte-", cpath, sizeof cpath) == 2);
    CHECK(gf_idx_read(ctx, src, &x) == GF_OK && x.mapping != NULL && x.data[5] == pay[5]);
    gf_idx_free(&x);
    /* off: never mapped, nothing written */
    remove_cache();
    setenv("GRAFT_IDX_CACHE", "0", 1);
    CHECK(gf_idx_read(ctx, src, &x) == GF_OK && x.mapping == NULL);
    gf_idx_free(&x);
    CHECK(find_cache("big-idx3-ubyte-", cpath, sizeof cpath) == 0);
    unsetenv("GRAFT_IDX_CACHE");
    /* small gzip files and plain files are not cached */
    const char *plain = tmp_path("big-plain-idx3-ubyte");
    put_plain(plain, file, n);
    CHECK(gf_idx_read(ctx, plain, &x) == GF_OK && x.mapping == NULL);
    gf_idx_free(&x);
    CHECK(gf_idx_read(ctx, lab, &x) == GF_OK && x.mapping == NULL);
    gf_idx_free(&x);
    CHECK(find_cache("big-", cpath, sizeof cpath) == 0);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/graft_idx_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    /* the decompressed cache goes to the temporary folder, not the user's */
    char cache[512];
    snprintf(cache, sizeof cache, "%s/cache", tmpdir);
    setenv("GRAFT_CACHE_DIR", cache, 1);
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_good_files(ctx);
    test_bad_files(ctx);
    test_dataset_errors(ctx);
    test_cache(ctx);
    remove_cache();
    test_fashion_mnist(ctx, false);
    test_fashion_mnist(ctx, true); /* now from the cache */
    remove_cache();
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_free(ctx);
    for (int i = 0; i < n_created; i++) unlink(created[i]);
    if (rmdir(tmpdir) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish("test_idx");
}
