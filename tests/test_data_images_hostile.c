/* Image decoding and folder walking against hostile inputs: every decoder layout against the
 * pixels it encodes (the fuzz seeds, tests/fuzz/gen_images_corpus.py), every malicious seed
 * refused fast with an error naming the file and what was wrong, a decompression bomb refused
 * from its header without memory growing, resize sizes that overflow, and symbolic-link layouts
 * (self links, a link to the parent, links leaving the root, hard links) where each file must
 * count once under its own class. */
#include "data_helpers.h"

#include "graft/graft.h"
#include "graft/images.h"
#include "testutil.h"

#include <signal.h>
#include <sys/resource.h>
#include <time.h>

static gf_ctx *ctx;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long peak_rss_kb(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

static const char *seed(const char *name) {
    static char path[8][1024];
    static int at;
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char *p = path[at++ % 8];
    snprintf(p, 1024, "%s/tests/fuzz/corpus/images/%s", src ? src : ".", name);
    return p;
}

/* The seeds' pixel pattern (gen_images_corpus.py's pattern()). */
static void pattern(int x, int y, uint8_t rgb[3]) {
    rgb[0] = (uint8_t)((x * 37 + y * 11) & 255);
    rgb[1] = (uint8_t)((x * 5 + y * 53) & 255);
    rgb[2] = (uint8_t)((x * y * 3 + 7) & 255);
}

typedef enum { P_RGB, P_GRAY, P_GRAY16_1000, P_PAL8, P_PAL2, P_GRAY2, P_565 } layout;

static void expected(layout l, int x, int y, uint8_t o[3]) {
    uint8_t v[3];
    switch (l) {
    case P_RGB: pattern(x, y, o); return;
    case P_GRAY: pattern(x, y, v); o[0] = o[1] = o[2] = v[0]; return;
    case P_GRAY16_1000: /* stored as v * 1000 / 255 with maxval 1000, scaled back to 0..255 */
        pattern(x, y, v);
        o[0] = o[1] = o[2] = (uint8_t)(((v[0] * 1000 / 255) * 255 + 500) / 1000);
        return;
    case P_PAL8: pattern((x + 2 * y) % 8, 7 - (x + 2 * y) % 8, o); return;
    case P_PAL2: pattern((x + y) % 2, 7 - (x + y) % 2, o); return;
    case P_GRAY2: o[0] = o[1] = o[2] = (uint8_t)((x + y) % 4 * 85); return;
    case P_565:
        pattern(x, y, v);
        o[0] = (uint8_t)(((v[0] >> 3) * 255 + 15) / 31);
        o[1] = (uint8_t)(((v[1] >> 2) * 255 + 31) / 63);
        o[2] = (uint8_t)(((v[2] >> 3) * 255 + 15) / 31);
        return;
    }
}

/* Every lossless seed decodes to exactly the pixels it encodes. */
static void test_valid_seeds(void) {
    static const struct {
        const char *name;
        layout l;
    } cases[] = {
        {"valid_rgb.png", P_RGB},         {"valid_rgb_adam7.png", P_RGB},
        {"valid_gray.png", P_GRAY},       {"valid_gray16.png", P_GRAY},
        {"valid_gray_alpha.png", P_GRAY}, {"valid_rgba.png", P_RGB},
        {"valid_gray2.png", P_GRAY2},     {"valid_palette_trns.png", P_PAL8},
        {"valid.ppm", P_RGB},             {"valid_comment.ppm", P_RGB},
        {"valid.pgm", P_GRAY},            {"valid16.pgm", P_GRAY16_1000},
        {"valid24.bmp", P_RGB},           {"valid24_topdown.bmp", P_RGB},
        {"valid24_core.bmp", P_RGB},      {"valid32.bmp", P_RGB},
        {"valid32_v5.bmp", P_RGB},        {"valid565.bmp", P_565},
        {"valid8.bmp", P_PAL8},           {"valid4.bmp", P_PAL8},
        {"valid1.bmp", P_PAL2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int h = 0, w = 0;
        uint8_t *px = gf_images_read(ctx, seed(cases[i].name), NULL, &h, &w);
        if (!px) fprintf(stderr, "  %s: %s\n", cases[i].name, gf_ctx_error(ctx));
        CHECK(px && h == 5 && w == 7);
        if (!px || h != 5 || w != 7) {
            gf_ctx_clear_error(ctx);
            free(px);
            continue;
        }
        int bad = 0;
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 7; x++) {
                uint8_t want[3] = {0, 0, 0};
                expected(cases[i].l, x, y, want);
                for (int c = 0; c < 3; c++) bad += px[(c * 5 + y) * 7 + x] != want[c];
            }
        if (bad) fprintf(stderr, "  %s: %d samples differ\n", cases[i].name, bad);
        CHECK(bad == 0);
        free(px);
    }
    /* JPEG (lossy): the size, and grey stays grey */
    static const char *const jpegs[] = {"valid.jpg", "valid_progressive.jpg", "valid_gray.jpg",
                                        "valid_444.jpg"};
    for (int i = 0; i < 4; i++) {
        int h = 0, w = 0;
        uint8_t *px = gf_images_read(ctx, seed(jpegs[i]), NULL, &h, &w);
        CHECK(px && h == 24 && w == 32);
        if (px && i == 2) CHECK(memcmp(px, px + 24 * 32, 24 * 32) == 0);
        free(px);
    }
}

/* One malicious seed: refused within a quarter second, the message naming the file and each
 * given piece. */
static void refused(const char *name, const gf_images_params *p, const char *a, const char *b) {
    int h, w;
    double t0 = now();
    gf_ctx_clear_error(ctx);
    uint8_t *px = gf_images_read(ctx, seed(name), p, &h, &w);
    double dt = now() - t0;
    CHECK(px == NULL && gf_ctx_status(ctx) == GF_ERR_FORMAT);
    const char *msg = gf_ctx_error(ctx);
    bool ok = strstr(msg, name) && (!a || strstr(msg, a)) && (!b || strstr(msg, b));
    if (!ok) fprintf(stderr, "  %s: message '%s' lacks '%s' or '%s'\n", name, msg, a, b ? b : "");
    CHECK(ok);
    free(px);
    if (dt > 0.25) fprintf(stderr, "  %s took %.3f s to refuse\n", name, dt);
    CHECK(dt < 0.25);
    gf_ctx_clear_error(ctx);
}

static void test_hostile_seeds(void) {
    /* the 16-bit PGM with one data byte: stb_image read 7 bytes past its buffer */
    refused("bad_pgm16_one_byte.pgm", NULL, "declares 2x2 pixels (8 bytes", "holds 1");
    refused("bad_gif_huge.gif", NULL, "GIF is not supported", "PNG, JPEG");
    refused("bad_png_huge_ihdr.png", NULL, "26000x26000 = 676000000 pixels", "limit of 89478485");
    refused("bad_jpeg_huge_sof.jpg", NULL, "65000x65000", "limit of 89478485");
    refused("bad_bmp_huge.bmp", NULL, "2147483647x2147483647", "a side longer than 65536");
    refused("bad_bmp_short.bmp", NULL, "4000x4000 pixels (48000000 bytes", "holds 6");
    refused("bad_ppm_short.ppm", NULL, "5000x5000 pixels (75000000 bytes", "holds 64");
    refused("bad_ppm_zero.pgm", NULL, "size of 0x0", NULL);
    refused("bad_bmp_zero.bmp", NULL, "size of 0x3", NULL);
    refused("bad_bmp_rle.bmp", NULL, "RLE", NULL);
    refused("bad_bmp_offset.bmp", NULL, "offset 20", NULL);
    refused("bad_ppm_ascii.ppm", NULL, "P2/P3", "not supported");
    refused("bad_ppm_maxval.pgm", NULL, "maxval 70000", NULL);
    refused("bad_png_truncated.png", NULL, "truncated", NULL);
    refused("bad_png_zero.png", NULL, "PNG", NULL);
    refused("bad_truncated.jpg", NULL, "Premature end", NULL);
    refused("bad_empty.png", NULL, "empty", NULL);
    refused("bad_tiff.tif", NULL, "TIFF is not supported", NULL);
    /* a zero-size image with a resize (a division by zero, then an inf-to-int cast, before) */
    gf_images_params p = gf_images_default_params();
    p.resize = 8;
    p.crop_h = p.crop_w = 8;
    refused("bad_ppm_zero.pgm", &p, "size of 0x0", NULL);
    /* the bomb decodes under the default limit, not under 2^20 pixels */
    p = gf_images_default_params();
    p.max_pixels = 1 << 20;
    refused("bad_png_bomb.png", &p, "3000x3000 = 9000000 pixels", "limit of 1048576");
    /* the limit is inclusive and overridable */
    int h, w;
    p.max_pixels = 35;
    uint8_t *px = gf_images_read(ctx, seed("valid_rgb.png"), &p, &h, &w);
    CHECK(px != NULL);
    free(px);
    p.max_pixels = 34;
    refused("valid_rgb.png", &p, "7x5 = 35 pixels", "limit of 34");
    p.max_pixels = -1;
    EXPECT_ERR(ctx, gf_images_read(ctx, seed("valid_rgb.png"), &p, &h, &w), GF_ERR_INVALID,
               "max_pixels -1");
    gf_ctx_clear_error(ctx);
}

/* A w x h grey PNG of zeros written row by row (a 9500 x 9500 bomb is 90 MB inflated, ~90 KB
 * on disk; this process never holds it whole). */
static void write_zero_png(const char *rel, int w, int h) {
    FILE *f = fopen(th_path(rel), "wb");
    static const uint8_t sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    fwrite(sig, 1, 8, f);
    uint8_t ihdr[13] = {0};
    th_put32(ihdr, (uint32_t)w);
    th_put32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;
    th_chunk(f, "IHDR", ihdr, 13);
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit(&z, Z_BEST_SPEED);
    uint8_t *row = calloc((size_t)w + 1, 1), out[1 << 16];
    for (int y = 0; y <= h; y++) {
        z.next_in = row;
        z.avail_in = y < h ? (uInt)w + 1 : 0;
        int flush = y < h ? Z_NO_FLUSH : Z_FINISH, rc;
        do {
            z.next_out = out;
            z.avail_out = sizeof out;
            rc = deflate(&z, flush);
            if (sizeof out - z.avail_out) th_chunk(f, "IDAT", out, (uint32_t)(sizeof out - z.avail_out));
        } while (z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    }
    deflateEnd(&z);
    free(row);
    th_chunk(f, "IEND", NULL, 0);
    fclose(f);
}

/* 9500 x 9500 is over Pillow's default limit: refused from the header, in milliseconds, memory
 * flat (stb_image decoded all 270 MB of it). */
static void test_bomb(void) {
    write_zero_png("bomb.png", 9500, 9500);
    th_mkdir("bombs");
    th_mkdir("bombs/a");
    write_zero_png("bombs/a/bomb.png", 9500, 9500);
    const long rss0 = peak_rss_kb();
    int h, w;
    double t0 = now();
    EXPECT_ERR(ctx, gf_images_read(ctx, th_path("bomb.png"), NULL, &h, &w), GF_ERR_FORMAT,
               "bomb.png", "9500x9500 = 90250000 pixels", "limit of 89478485");
    EXPECT_ERR(ctx, gf_images_load_folder(ctx, th_path("bombs"), NULL), GF_ERR_FORMAT,
               "bombs/a/bomb.png", "9500x9500", "(example 0)");
    double dt = now() - t0;
    long grew = peak_rss_kb() - rss0;
    printf("  a 9500x9500 PNG bomb refused twice in %.1f ms, peak RSS +%ld KiB\n", 1e3 * dt, grew);
    CHECK(dt < 0.25);
    CHECK(grew < 32 * 1024);
    gf_ctx_clear_error(ctx);
}

/* Sizes after resize and crop: no overflow, and the pixel limit holds for them too. */
static void test_resize_limits(void) {
    uint8_t *line = calloc(65536, 1);
    th_write_png("line.png", line, 1, 65536, 1);
    free(line);
    gf_images_params p = gf_images_default_params();
    int h, w;
    /* 65536 on the short side of a 65536 x 1 image: a long side of 2^32 (an int overflow) */
    p.resize = 65536;
    EXPECT_ERR(ctx, gf_images_read(ctx, th_path("line.png"), &p, &h, &w), GF_ERR_FORMAT,
               "line.png", "4294967296", "more than 65536");
    /* a 7 x 5 image grown past the limit by the resize, and by the crop */
    p = gf_images_default_params();
    p.max_pixels = 5000;
    p.resize = 100;
    EXPECT_ERR(ctx, gf_images_read(ctx, seed("valid_rgb.png"), &p, &h, &w), GF_ERR_FORMAT,
               "140x100", "limit of 5000");
    p.resize = 0;
    p.crop_h = p.crop_w = 71;
    EXPECT_ERR(ctx, gf_images_read(ctx, seed("valid_rgb.png"), &p, &h, &w), GF_ERR_FORMAT,
               "71x71", "limit of 5000");
    p.crop_h = p.crop_w = 70;
    uint8_t *px = gf_images_read(ctx, seed("valid_rgb.png"), &p, &h, &w);
    CHECK(px && h == 70 && w == 70);
    free(px);
    gf_ctx_clear_error(ctx);
}

static void solid(const char *rel, uint8_t v) {
    uint8_t px[3 * 4 * 3];
    memset(px, v, sizeof px);
    th_write_png(rel, px, 3, 4, 3);
}

static void symlink_at(const char *target, const char *rel) {
    if (symlink(target, th_path(rel)) != 0) perror(rel);
}

/* The path of example i ends with want. */
static bool path_is(const gf_ds *ds, int64_t i, const char *want) {
    const char *p = gf_images_path(ds, i);
    size_t n = p ? strlen(p) : 0, m = strlen(want);
    return p && n > m && p[n - m - 1] == '/' && strcmp(p + n - m, want) == 0;
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "test_data_images_hostile: the folder walk did not end (loop)\n";
    if (write(2, msg, sizeof msg - 1)) {}
    _exit(1);
}

/* Two self links and a link to the parent in a class folder: each file once, under its own
 * class (followed, they made 2^32 paths, 34 samples out of 2, dog's images into cat). */
static void test_link_loops(void) {
    th_mkdir("loops");
    th_mkdir("loops/cat");
    th_mkdir("loops/dog");
    solid("loops/cat/a.png", 10);
    solid("loops/cat/b.png", 20);
    solid("loops/dog/c.png", 30);
    symlink_at(".", "loops/cat/self");
    symlink_at(".", "loops/cat/self2");
    symlink_at("..", "loops/cat/up");
    symlink_at("/nonexistent/graft/x.png", "loops/cat/broken.png");
    gf_images_report rep;
    gf_ds *ds = gf_images_load_folder_report(ctx, th_path("loops"), NULL, &rep);
    if (!ds) fprintf(stderr, "  %s\n", gf_ctx_error(ctx));
    CHECK(ds && gf_ds_count(ds) == 3);
    if (ds && gf_ds_count(ds) == 3) {
        CHECK(path_is(ds, 0, "cat/a.png") && path_is(ds, 1, "cat/b.png") &&
              path_is(ds, 2, "dog/c.png"));
        CHECK(gf_ds_label(ds, 0) == 0 && gf_ds_label(ds, 1) == 0 && gf_ds_label(ds, 2) == 1);
    }
    CHECK(rep.files == 3 && rep.links_inside == 3 && rep.links_broken == 1 &&
          rep.links_outside == 0 && rep.duplicates == 0);
    CHECK(strstr(rep.first_skipped, "loops/cat/") != NULL);
    gf_ds_free(ds);
    /* gf_images_load_folder (no report) walks the same way */
    ds = gf_images_load_folder(ctx, th_path("loops"), NULL);
    CHECK(ds && gf_ds_count(ds) == 3);
    gf_ds_free(ds);
}

/* Links leading outside the root: skipped unless follow_links; followed, a file reached three
 * ways counts once, and a link back into the root is still not followed. */
static void test_links_outside(void) {
    th_mkdir("ext");
    th_mkdir("ext/pool");
    solid("ext/pool/o.png", 40);
    th_mkdir("out");
    th_mkdir("out/cat");
    th_mkdir("out/dog");
    solid("out/cat/a.png", 10);
    solid("out/dog/c.png", 30);
    char target[600];
    snprintf(target, sizeof target, "%s", th_path("ext/pool"));
    symlink_at(target, "out/cat/pool");
    snprintf(target, sizeof target, "%s", th_path("ext/pool/o.png"));
    symlink_at(target, "out/cat/o1.png");
    symlink_at(target, "out/cat/o2.png");
    snprintf(target, sizeof target, "%s", th_path("out/dog"));
    symlink_at(target, "ext/pool/back");
    gf_images_report rep;
    gf_ds *ds = gf_images_load_folder_report(ctx, th_path("out"), NULL, &rep);
    CHECK(ds && gf_ds_count(ds) == 2 && rep.links_outside == 3 && rep.links_inside == 0);
    CHECK(strstr(rep.first_skipped, "outside the data folder") != NULL);
    gf_ds_free(ds);
    gf_images_params p = gf_images_default_params();
    p.follow_links = true;
    ds = gf_images_load_folder_report(ctx, th_path("out"), &p, &rep);
    CHECK(ds && gf_ds_count(ds) == 3);
    if (ds && gf_ds_count(ds) == 3)
        CHECK(path_is(ds, 0, "cat/a.png") && path_is(ds, 1, "cat/o1.png") &&
              path_is(ds, 2, "dog/c.png") && gf_ds_label(ds, 1) == 0);
    CHECK(rep.links_outside == 0 && rep.duplicates == 2 && rep.links_inside == 1);
    gf_ds_free(ds);
    /* a hard link into another class counts once, under the first class that has it */
    if (link(th_path("out/cat/a.png"), th_path("out/dog/hard.png")) == 0) {
        ds = gf_images_load_folder_report(ctx, th_path("out"), NULL, &rep);
        CHECK(ds && gf_ds_count(ds) == 2 && rep.duplicates == 1);
        CHECK(ds && path_is(ds, 0, "cat/a.png") && path_is(ds, 1, "dog/c.png"));
        gf_ds_free(ds);
    }
}

/* A class folder that is a link: an error either way unless it leads outside and links may be
 * followed (dropping it would silently renumber the classes). */
static void test_class_links(void) {
    th_mkdir("cls");
    th_mkdir("cls/a");
    solid("cls/a/x.png", 1);
    th_mkdir("ext2");
    solid("ext2/y.png", 2);
    char target[600];
    snprintf(target, sizeof target, "%s", th_path("ext2"));
    symlink_at(target, "cls/b");
    EXPECT_ERR(ctx, gf_images_load_folder(ctx, th_path("cls"), NULL), GF_ERR_FORMAT, "cls/b",
               "outside the data folder", "--follow-links");
    gf_images_params p = gf_images_default_params();
    p.follow_links = true;
    gf_ds *ds = gf_images_load_folder(ctx, th_path("cls"), &p);
    CHECK(ds && gf_ds_count(ds) == 2 && gf_ds_n_classes(ds) == 2);
    gf_ds_free(ds);
    remove(th_path("cls/b"));
    symlink_at("a", "cls/c");
    EXPECT_ERR(ctx, gf_images_load_folder(ctx, th_path("cls"), &p), GF_ERR_FORMAT, "cls/c",
               "inside the data folder");
    gf_ctx_clear_error(ctx);
}

int main(void) {
    ctx = gf_ctx_new(NULL);
    if (!gf_images_can_decode()) {
        printf("test_data_images_hostile: SKIPPED: graft was built without libpng/libjpeg\n");
        gf_ctx_free(ctx);
        return 77;
    }
    test_bomb(); /* first: the peak RSS must not have been raised by the other checks */
    test_valid_seeds();
    test_hostile_seeds();
    test_resize_limits();
    signal(SIGALRM, on_alarm);
    alarm(60);
    test_link_loops();
    test_links_outside();
    test_class_links();
    alarm(0);
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_free(ctx);
    return test_finish("test_data_images_hostile");
}
