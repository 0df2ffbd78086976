/* Image folders: resize / grey / centre crop equal to PIL (torchvision on PIL images) pixel for
 * pixel (fixtures/images_pil.json from fixtures/gen_images.py), JPEG equal to PIL's decoder,
 * torchvision's class and file order, compact storage, and every bad input as an error naming
 * the file. To add a preprocessing case, add it to gen_images.py; folder cases go below.
 * Exits 77 (skipped) after the pure-pixel checks when graft was built without libpng/libjpeg. */
#include "data_helpers.h"

#include "graft/graft.h"
#include "graft/images.h"
#include "testutil.h"

#include <cjson/cJSON.h>

static gf_ctx *ctx;

static const cJSON *get(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static uint8_t *u8_array(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    uint8_t *v = malloc((size_t)(*n > 0 ? *n : 1));
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) v[i++] = (uint8_t)e->valueint;
    return v;
}

static int max_diff(const uint8_t *a, const uint8_t *b, int n) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > m) m = d;
    }
    return m;
}

static void test_resize_vs_pil(const cJSON *doc) {
    const int H = get(doc, "h")->valueint, W = get(doc, "w")->valueint;
    int n;
    uint8_t *src = u8_array(get(doc, "rgb"), &n);
    CHECK(n == H * W * 3);
    const cJSON *c;
    int cases = 0;
    cJSON_ArrayForEach(c, get(doc, "resize")) {
        const int h = get(c, "h")->valueint, w = get(c, "w")->valueint;
        int m;
        uint8_t *want = u8_array(get(c, "rgb"), &m);
        uint8_t *got = malloc((size_t)m);
        gf_images_resize(src, H, W, 3, got, h, w);
        int d = max_diff(got, want, m);
        if (d)
            fprintf(stderr, "  resize %dx%d -> %dx%d: max difference %d from PIL\n", H, W, h, w, d);
        CHECK(m == h * w * 3 && d == 0);
        free(want);
        free(got);
        cases++;
    }
    CHECK(cases >= 8);
    /* a resize to the same size is a copy */
    uint8_t *same = malloc((size_t)n);
    gf_images_resize(src, H, W, 3, same, H, W);
    CHECK(memcmp(same, src, (size_t)n) == 0);
    free(same);
    free(src);
}

/* The fixture image as a PNG, read back through every preprocessing case. */
static void test_pipeline_vs_pil(const cJSON *doc) {
    const int H = get(doc, "h")->valueint, W = get(doc, "w")->valueint;
    int n;
    uint8_t *src = u8_array(get(doc, "rgb"), &n);
    th_write_png("pil.png", src, H, W, 3);
    free(src);
    /* grey, no resize: PIL's convert("L") */
    gf_images_params p = gf_images_default_params();
    p.channels = 1;
    int h, w, m;
    uint8_t *got = gf_images_read(ctx, th_path("pil.png"), &p, &h, &w);
    uint8_t *want = u8_array(get(doc, "gray"), &m);
    CHECK(got && h == H && w == W && m == H * W && max_diff(got, want, m) == 0);
    free(got);
    free(want);
    const cJSON *c;
    cJSON_ArrayForEach(c, get(doc, "pipeline")) {
        p = gf_images_default_params();
        p.channels = get(c, "channels")->valueint;
        p.resize = get(c, "resize")->valueint;
        p.resize_h = cJSON_GetArrayItem(get(c, "resize_hw"), 0)->valueint;
        p.resize_w = cJSON_GetArrayItem(get(c, "resize_hw"), 1)->valueint;
        p.crop_h = cJSON_GetArrayItem(get(c, "crop"), 0)->valueint;
        p.crop_w = cJSON_GetArrayItem(get(c, "crop"), 1)->valueint;
        got = gf_images_read(ctx, th_path("pil.png"), &p, &h, &w);
        want = u8_array(get(c, "chw"), &m);
        CHECK(got != NULL);
        if (!got) {
            free(want);
            continue;
        }
        bool dims = h == get(c, "out_h")->valueint && w == get(c, "out_w")->valueint &&
                    m == p.channels * h * w;
        int d = dims ? max_diff(got, want, m) : -1;
        if (d)
            fprintf(stderr, "  pipeline ch %d resize %d / %dx%d crop %dx%d: %dx%d, diff %d\n",
                    p.channels, p.resize, p.resize_h, p.resize_w, p.crop_h, p.crop_w, h, w, d);
        CHECK(dims && d == 0);
        free(got);
        free(want);
    }
    /* JPEG: libjpeg-turbo with the ISLOW DCT, PIL's decoder, gives PIL's pixels */
    const cJSON *j = get(doc, "jpeg");
    const char *hex = get(j, "hex")->valuestring;
    size_t nb = strlen(hex) / 2;
    uint8_t *bytes = malloc(nb);
    for (size_t i = 0; i < nb; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        bytes[i] = (uint8_t)v;
    }
    th_write("sample.jpg", bytes, nb);
    free(bytes);
    p = gf_images_default_params();
    got = gf_images_read(ctx, th_path("sample.jpg"), &p, &h, &w);
    want = u8_array(get(j, "chw"), &m);
    CHECK(got && h == get(j, "h")->valueint && w == get(j, "w")->valueint && m == 3 * h * w);
    if (got) {
        int d = max_diff(got, want, m);
        printf("  jpeg: largest difference from PIL's decoder %d levels\n", d);
        CHECK(d == 0);
    }
    free(got);
    free(want);
}

/* A solid w x h image of value v with c channels. */
static void solid_png(const char *rel, int h, int w, int c, uint8_t v) {
    uint8_t *px = malloc((size_t)h * w * c);
    for (int i = 0; i < h * w * c; i++) px[i] = c == 4 && i % 4 == 3 ? 128 : v;
    th_write_png(rel, px, h, w, c);
    free(px);
}

static void test_folder(void) {
    th_mkdir("root");
    th_mkdir("root/cat");
    th_mkdir("root/ant");
    th_mkdir("root/dog");
    th_mkdir("root/dog/a");
    th_mkdir("root/dog/a-b");
    th_mkdir("root/dog/a/sub");
    solid_png("root/cat/b.png", 3, 4, 3, 20);
    solid_png("root/cat/a.PNG", 3, 4, 1, 10); /* grey file, upper-case extension */
    th_write_str("root/cat/notes.txt", "not an image");
    solid_png("root/ant/x.png", 3, 4, 4, 30); /* RGBA: alpha dropped */
    solid_png("root/dog/z.png", 3, 4, 3, 40);
    solid_png("root/dog/a/n.png", 3, 4, 3, 50);
    solid_png("root/dog/a-b/m.png", 3, 4, 3, 60);
    solid_png("root/dog/a/sub/k.png", 3, 4, 3, 70);
    solid_png("root/stray.png", 3, 4, 3, 99); /* files directly in root are not a class */
    gf_ds *ds = gf_images_load_folder(ctx, th_path("root"), NULL);
    if (!ds) fprintf(stderr, "  %s\n", gf_ctx_error(ctx));
    CHECK(ds != NULL);
    if (!ds) return;
    CHECK(gf_ds_count(ds) == 7 && gf_ds_n_classes(ds) == 3);
    CHECK(gf_ds_ndim(ds) == 3 && gf_ds_shape(ds)[0] == 3 && gf_ds_shape(ds)[1] == 3 &&
          gf_ds_shape(ds)[2] == 4);
    CHECK(strcmp(gf_ds_class_name(ds, 0), "ant") == 0 &&
          strcmp(gf_ds_class_name(ds, 1), "cat") == 0 &&
          strcmp(gf_ds_class_name(ds, 2), "dog") == 0);
    /* torchvision's order: sorted(os.walk()) sorts folders by path, so "dog/a-b" comes before
     * "dog/a/sub" ('-' < '/'), files sorted inside each folder */
    static const char *const order[7] = {"ant/x.png",      "cat/a.PNG",   "cat/b.png",
                                         "dog/z.png",      "dog/a/n.png", "dog/a-b/m.png",
                                         "dog/a/sub/k.png"};
    static const int value[7] = {30, 10, 20, 40, 50, 60, 70}, label[7] = {0, 1, 1, 2, 2, 2, 2};
    for (int i = 0; i < 7; i++) {
        const char *pth = gf_images_path(ds, i);
        bool ok = pth && strlen(pth) > strlen(order[i]) &&
                  strcmp(pth + strlen(pth) - strlen(order[i]), order[i]) == 0;
        if (!ok)
            fprintf(stderr, "  example %d: %s, expected .../%s\n", i, pth ? pth : "(null)",
                    order[i]);
        CHECK(ok);
        CHECK(gf_ds_label(ds, i) == label[i]);
    }
    CHECK(gf_images_path(ds, 7) == NULL);
    /* a trailing slash on the root names the same folder */
    char slash[600];
    snprintf(slash, sizeof slash, "%s/", th_path("root"));
    gf_ds *again = gf_images_load_folder(ctx, slash, NULL);
    CHECK(again && gf_ds_count(again) == 7 && !strstr(gf_images_path(again, 0), "//"));
    gf_ds_free(again);
    /* batches: pixel / 255 as float, [n, 3, 3, 4] */
    const int64_t xs[4] = {7, 3, 3, 4}, ys[1] = {7};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, xs), *y = gf_tensor_new(ctx, GF_I64, 1, ys);
    int64_t idx[7] = {6, 5, 4, 3, 2, 1, 0};
    CHECK(gf_ds_batch(ctx, ds, idx, 7, x, y) == GF_OK);
    int bad = 0;
    for (int b = 0; b < 7; b++) {
        for (int j = 0; j < 36; j++) bad += gf_f32(x)[b * 36 + j] != (float)value[6 - b] / 255.0f;
        bad += gf_i64(y)[b] != label[6 - b];
    }
    CHECK(bad == 0);
    gf_ds_free(ds);

    /* grey and a fixed size: mixed sizes are fine once resized and cropped */
    solid_png("root/cat/wide.png", 5, 11, 3, 200);
    gf_images_params p = gf_images_default_params();
    p.channels = 1;
    p.resize = 3;
    p.crop_h = 3;
    p.crop_w = 3;
    ds = gf_images_load_folder(ctx, th_path("root"), &p);
    CHECK(ds && gf_ds_count(ds) == 8 && gf_ds_shape(ds)[0] == 1 && gf_ds_shape(ds)[1] == 3 &&
          gf_ds_shape(ds)[2] == 3);
    if (ds) {
        float v[9];
        int64_t i = 3; /* cat/wide.png: a solid image stays solid */
        CHECK(gf_ds_read(ds, &i, 1, v, NULL, NULL, 0) == GF_OK);
        CHECK(v[0] == 200.0f / 255.0f && v[8] == 200.0f / 255.0f);
    }
    gf_ds_free(ds);
    gf_tensor_free(x);
    gf_tensor_free(y);
    /* without a resize the sizes must agree: the message names both files */
    ds = gf_images_load_folder(ctx, th_path("root"), NULL);
    CHECK(ds == NULL && gf_ctx_status(ctx) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(ctx), "cat/wide.png is 11x5") &&
          strstr(gf_ctx_error(ctx), "ant/x.png"));
    CHECK(strstr(gf_ctx_error(ctx), "(example 3)") != NULL);
    gf_ctx_clear_error(ctx);
    remove(th_path("root/cat/wide.png"));
}

static void expect_error(const char *root, const gf_images_params *p, gf_status st, const char *n1,
                         const char *n2) {
    gf_ctx_clear_error(ctx);
    gf_ds *ds = gf_images_load_folder(ctx, root, p);
    CHECK(ds == NULL && gf_ctx_status(ctx) == st);
    bool ok = (!n1 || strstr(gf_ctx_error(ctx), n1)) && (!n2 || strstr(gf_ctx_error(ctx), n2));
    if (!ok || gf_ctx_status(ctx) != st)
        fprintf(stderr, "  message: %s (wanted %s / %s)\n", gf_ctx_error(ctx), n1, n2);
    CHECK(ok);
    gf_ds_free(ds);
    gf_ctx_clear_error(ctx);
}

static void test_errors(void) {
    /* an undecodable image names the file and its index */
    th_mkdir("bad");
    th_mkdir("bad/one");
    th_mkdir("bad/two");
    solid_png("bad/one/a.png", 2, 2, 3, 1);
    th_write_str("bad/two/broken.png", "this is not a png");
    expect_error(th_path("bad"), NULL, GF_ERR_FORMAT, "cannot decode", "two/broken.png");
    expect_error(th_path("bad"), NULL, GF_ERR_FORMAT, "(example 1)", NULL);
    remove(th_path("bad/two/broken.png"));
    /* a truncated PNG too */
    solid_png("bad/two/cut.png", 8, 8, 3, 5);
    FILE *f = fopen(th_path("bad/two/cut.png"), "rb");
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    th_write("bad/two/cut.png", buf, n / 2);
    expect_error(th_path("bad"), NULL, GF_ERR_FORMAT, "two/cut.png", NULL);
    remove(th_path("bad/two/cut.png"));
    /* an extension torchvision lists but graft cannot decode: reported, not skipped */
    th_write_str("bad/two/scan.tiff", "II*\0");
    expect_error(th_path("bad"), NULL, GF_ERR_FORMAT, "two/scan.tiff", NULL);
    remove(th_path("bad/two/scan.tiff"));
    /* an empty class folder (only a non-image file in it) */
    th_write_str("bad/two/readme.txt", "x");
    expect_error(th_path("bad"), NULL, GF_ERR_FORMAT, "class folder",
                 "bad/two holds no image files");
    /* no class folders, no root, a file as root */
    th_mkdir("flat");
    solid_png("flat/a.png", 2, 2, 3, 1);
    expect_error(th_path("flat"), NULL, GF_ERR_FORMAT, "no class folders", NULL);
    expect_error(th_path("nowhere"), NULL, GF_ERR_IO, "nowhere", NULL);
    expect_error(th_path("flat/a.png"), NULL, GF_ERR_IO, "not a readable folder", NULL);
    /* bad parameters */
    gf_images_params p = gf_images_default_params();
    p.channels = 2;
    expect_error(th_path("bad"), &p, GF_ERR_INVALID, "channels 2", NULL);
    p = gf_images_default_params();
    p.crop_h = 4;
    expect_error(th_path("bad"), &p, GF_ERR_INVALID, "pairs", NULL);
    expect_error(NULL, NULL, GF_ERR_INVALID, "NULL", NULL);
    /* a single file */
    int h, w;
    CHECK(gf_images_read(ctx, th_path("nope.png"), NULL, &h, &w) == NULL);
    CHECK(gf_ctx_status(ctx) == GF_ERR_FORMAT || gf_ctx_status(ctx) == GF_ERR_IO);
    CHECK(strstr(gf_ctx_error(ctx), "cannot open") && strstr(gf_ctx_error(ctx), "nope.png"));
    gf_ctx_clear_error(ctx);
}

int main(void) {
    ctx = gf_ctx_new(NULL);
    char *text = th_fixture("images_pil.json");
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(doc != NULL);
    if (doc) test_resize_vs_pil(doc);
    if (!gf_images_can_decode()) {
        printf(
            "test_data_images: SKIPPED the decoding checks: graft was built without libpng/libjpeg\n");
        cJSON_Delete(doc);
        gf_ctx_free(ctx);
        return gf_test_failed ? 1 : 77;
    }
    if (doc) test_pipeline_vs_pil(doc);
    test_folder();
    test_errors();
    CHECK(gf_ctx_status(ctx) == GF_OK);
    cJSON_Delete(doc);
    gf_ctx_free(ctx);
    return test_finish("test_data_images");
}
