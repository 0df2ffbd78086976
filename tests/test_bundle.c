/* Bundles (graft/bundle.h). Files written by `graft train` before the bundle was in the library
 * (tests/fixtures/bundle: an mlp on a CSV table, a model spec on RGB images, both normalised)
 * load, predict what `graft predict` printed then (expected.json), and save back byte for byte.
 * A bundle made from a data spec round-trips; a delta loads through its base; hostile metadata
 * is refused naming the key; inputs that do not fit the model are refused naming both. */
#define _POSIX_C_SOURCE 200809L
#include "graft/graft.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static gf_ctx *ctx;
static char fx[1024], work[64];

static const char *fixture(const char *name) {
    static char path[4][1200];
    static int at;
    char *p = path[at++ % 4];
    snprintf(p, 1200, "%s/%s", fx, name);
    return p;
}

static const char *temp(const char *name) {
    static char path[4][200];
    static int at;
    char *p = path[at++ % 4];
    snprintf(p, 200, "%s/%s", work, name);
    return p;
}

/* Rows of probabilities p [n, k] against expected.json's entries key_0.. (NULL-terminated). */
static void expect_probs(const gf_bundle *b, const gf_tensor *p, const cJSON *want,
                         const char *const *keys) {
    for (int64_t i = 0; keys[i]; i++) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(want, keys[i]);
        const cJSON *probs = cJSON_GetObjectItemCaseSensitive(e, "probabilities");
        CHECK(e && p && i < p->shape[0] && cJSON_GetArraySize(probs) == p->shape[1]);
        if (!e || !p || i >= p->shape[0]) continue;
        int best = 0;
        for (int k = 0; k < (int)p->shape[1]; k++) {
            float v = gf_get_f32(p, i * p->shape[1] + k);
            if (v > gf_get_f32(p, i * p->shape[1] + best)) best = k;
            CHECK_NEAR(v, cJSON_GetArrayItem(probs, k)->valuedouble, 1e-5);
        }
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(e, "class");
        CHECK(cJSON_IsString(cls) && strcmp(gf_bundle_class_name(b, best), cls->valuestring) == 0);
    }
}

/* Two files have the same bytes. */
static bool same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static void test_old_files(const cJSON *want) {
    gf_bundle *b = gf_bundle_load(ctx, fixture("table_mlp.safetensors"), NULL);
    CHECK(b != NULL);
    if (!b) return;
    const gf_bundle_info *m = &b->info;
    CHECK(strcmp(m->model, "mlp") == 0 && m->hidden[0] == 8 && m->hidden[1] == 0 && !m->spec);
    CHECK(m->in_ndim == 1 && m->in_shape[0] == 4 && m->n_classes == 3 && m->n_features == 4);
    CHECK(strcmp(m->class_names[1], "versicolor") == 0 && strcmp(m->feature_names[0], "f1") == 0);
    CHECK(m->norm_channels == 4 && m->image_channels == 0 && !m->is_delta);
    CHECK(strcmp(m->data, "csv:table.csv") == 0 && strcmp(m->command, "train") == 0);
    CHECK(strcmp(b->head, "head") == 0 && gf_bundle_class_name(b, 3) == NULL);
    int64_t *lines = NULL;
    gf_tensor *x = gf_bundle_read(ctx, b, fixture("rows.csv"), &lines); /* header, columns by name */
    CHECK(x && x->ndim == 2 && x->shape[0] == 2 && x->shape[1] == 4 && lines && lines[1] == 3);
    const char *rows[] = {"rows.csv:2", "rows.csv:3", NULL};
    expect_probs(b, gf_bundle_predict(ctx, b, x), want, rows);
    gf_tensor_free(x);
    free(lines);
    x = gf_bundle_read_csv(ctx, b, fixture("rows_plain.csv"), NULL); /* no header: in order */
    const char *plain[] = {"rows_plain.csv:1", "rows_plain.csv:2", NULL};
    expect_probs(b, gf_bundle_predict(ctx, b, x), want, plain);
    gf_tensor_free(x);
    gf_ctx_reset(ctx);
    EXPECT_ERR(ctx, gf_bundle_read(ctx, b, fixture("left.png"), NULL), GF_ERR_INVALID,
               "left.png is an image but the model takes rows of 4 features");
    gf_ctx_clear_error(ctx);
    /* saved again it is the same file, metadata order included */
    const char *extra[] = {"graft.epochs", "30"};
    CHECK(gf_bundle_save(ctx, b, temp("table.safetensors"), extra, 1) == GF_OK);
    CHECK(same_file(temp("table.safetensors"), fixture("table_mlp.safetensors")));
    gf_bundle_free(b);

    b = gf_bundle_load(ctx, fixture("shapes_spec.safetensors"), NULL);
    CHECK(b != NULL);
    if (!b) return;
    m = &b->info;
    CHECK(strcmp(m->model, "spec") == 0 && m->spec && strstr(m->spec, "\"Tiny\""));
    CHECK(m->in_ndim == 3 && m->in_shape[0] == 3 && m->image_channels == 3 && m->image_h == 12);
    CHECK(m->norm_channels == 3 && strcmp(b->head, "classifier.1") == 0);
    const char *imgs[] = {"left.png", "right.png"};
    for (int i = 0; i < 2; i++) {
        x = gf_bundle_read(ctx, b, fixture(imgs[i]), &lines);
        CHECK(x && x->ndim == 4 && x->shape[1] == 3 && x->shape[3] == 12 && lines == NULL);
        const char *key[] = {imgs[i], NULL};
        expect_probs(b, x ? gf_bundle_predict(ctx, b, x) : NULL, want, key);
        gf_tensor_free(x);
        gf_ctx_reset(ctx);
    }
    EXPECT_ERR(ctx, gf_bundle_read(ctx, b, fixture("rows.csv"), NULL), GF_ERR_INVALID,
               "rows.csv: the model takes images [3, 12, 12]; give an image file");
    gf_ctx_clear_error(ctx);
    b->max_image_pixels = 100;
    EXPECT_ERR(ctx, gf_bundle_read_image(ctx, b, fixture("left.png")), GF_ERR_FORMAT,
               "more than the limit of 100");
    gf_ctx_clear_error(ctx);
    const char *extra2[] = {"graft.epochs", "15"};
    CHECK(gf_bundle_save(ctx, b, temp("shapes.safetensors"), extra2, 1) == GF_OK);
    CHECK(same_file(temp("shapes.safetensors"), fixture("shapes_spec.safetensors")));
    gf_bundle_free(b);
    gf_ctx_clear_error(ctx);
}

/* A bundle made from a data spec: saved, loaded, the same predictions. */
static void test_round_trip(void) {
    char spec[1300];
    snprintf(spec, sizeof spec, "csv:%s", fixture("table.csv"));
    gf_ds_parts d;
    CHECK(gf_ds_open(ctx, spec, NULL, &d) == GF_OK);
    gf_bundle_opts o = gf_bundle_default_opts();
    o.hidden[0] = 5;
    o.command = "test";
    gf_rng rng;
    gf_rng_seed(&rng, 3);
    gf_bundle *b = gf_bundle_new(ctx, &d, &o, &rng);
    CHECK(b && strcmp(b->info.model, "mlp") == 0 && b->info.hidden[0] == 5);
    CHECK(b && b->info.norm_channels == 4 && strcmp(b->info.data, spec) == 0);
    if (!b) {
        gf_ds_parts_free(&d);
        return;
    }
    CHECK(gf_bundle_save(ctx, b, temp("rt.safetensors"), NULL, 0) == GF_OK);
    gf_bundle *c = gf_bundle_load(ctx, temp("rt.safetensors"), NULL);
    CHECK(c && strcmp(c->info.command, "test") == 0 && c->info.n_classes == 3);
    gf_tensor *x = gf_bundle_read(ctx, b, fixture("rows.csv"), NULL);
    gf_tensor *p = gf_bundle_predict(ctx, b, x), *q = c ? gf_bundle_predict(ctx, c, x) : NULL;
    CHECK(p && q && p->numel == 6 && q->numel == 6);
    for (int i = 0; p && q && i < 6; i++) CHECK(gf_get_f32(p, i) == gf_get_f32(q, i));
    gf_tensor_free(x);
    gf_ctx_reset(ctx);

    /* a delta against the file: only the changed head, loaded through its base */
    gf_tensor *bias = gf_module_tensor(ctx, b->model, "head.bias");
    CHECK(bias != NULL);
    if (bias) gf_f32(bias)[0] += 1.0f;
    int n = 0;
    const char *extra[] = {"graft.base", temp("rt.safetensors")};
    CHECK(gf_bundle_save_delta(ctx, b, temp("rt.safetensors"), NULL, temp("delta.safetensors"),
                               extra, 1, &n) == GF_OK);
    CHECK(n == 1);
    gf_bundle *e = gf_bundle_load(ctx, temp("delta.safetensors"), NULL);
    CHECK(e && e->info.is_delta && strcmp(e->info.base, temp("rt.safetensors")) == 0);
    const gf_tensor *eb = e ? gf_module_tensor(ctx, e->model, "head.bias") : NULL;
    CHECK(eb && bias && gf_f32(eb)[0] == gf_f32(bias)[0]);
    CHECK(gf_bundle_save_delta(ctx, b, temp("rt.safetensors"), NULL, temp("delta2.safetensors"),
                               NULL, 0, NULL) == GF_OK);
    EXPECT_ERR(ctx, gf_bundle_load(ctx, temp("delta2.safetensors"), NULL), GF_ERR_INVALID,
               "is a delta checkpoint and records no base");
    gf_ctx_clear_error(ctx);
    gf_bundle_opts ob = gf_bundle_default_opts();
    ob.base = temp("rt.safetensors");
    gf_bundle *f = gf_bundle_load(ctx, temp("delta2.safetensors"), &ob);
    CHECK(f != NULL);
    ob.base = temp("nothing.safetensors");
    EXPECT_ERR(ctx, gf_bundle_load(ctx, temp("delta2.safetensors"), &ob), GF_ERR_IO,
               "is a delta against", "nothing.safetensors, which does not exist");
    gf_ctx_clear_error(ctx);
    gf_bundle_free(f);
    gf_bundle_free(e);
    gf_bundle_free(c);
    gf_bundle_free(b);
    gf_ds_parts_free(&d);
    gf_ctx_clear_error(ctx);
}

/* The output rows of a bundle's head. */
static int64_t linear_rows(const gf_bundle *b) {
    char w[160];
    snprintf(w, sizeof w, "%s.weight", b->head);
    const gf_tensor *t = gf_module_tensor(ctx, b->model, w);
    return t ? t->shape[0] : -1;
}

/* Models that cannot be built, weights that do not fit. */
static void test_build_errors(void) {
    gf_bundle_info info;
    memset(&info, 0, sizeof info);
    info.in_ndim = 1;
    info.in_shape[0] = 4;
    EXPECT_ERR(ctx, gf_bundle_build(ctx, &info, 3, NULL, NULL), GF_ERR_INVALID, "no model is named");
    gf_ctx_clear_error(ctx);
    gf_bundle_opts o = gf_bundle_default_opts();
    o.model = "cnn-small";
    EXPECT_ERR(ctx, gf_bundle_build(ctx, &info, 3, &o, NULL), GF_ERR_INVALID,
               "model cnn-small needs images [C, H, W]; the data's samples are [4]");
    gf_ctx_clear_error(ctx);
    o.model = "/nonexistent/net.json";
    EXPECT_ERR(ctx, gf_bundle_build(ctx, &info, 3, &o, NULL), GF_ERR_IO,
               "model spec /nonexistent/net.json: cannot read it");
    gf_ctx_clear_error(ctx);
    o.model = fixture("shapes_net.json"); /* its "input" is [3, 12, 12] */
    EXPECT_ERR(ctx, gf_bundle_build(ctx, &info, 3, &o, NULL), GF_ERR_SHAPE, "model spec", "shapes_net.json");
    gf_ctx_clear_error(ctx);
    info.in_ndim = 3;
    info.in_shape[0] = 3;
    info.in_shape[1] = info.in_shape[2] = 12;
    EXPECT_ERR(ctx, gf_bundle_build(ctx, &info, 7, &o, NULL), GF_ERR_SHAPE,
               "the model gives 3 outputs but the data has 7 classes");
    gf_ctx_clear_error(ctx);
    info.in_ndim = 0;
    o.model = "mlp";
    EXPECT_ERR(ctx, gf_bundle_build(ctx, &info, 3, &o, NULL), GF_ERR_INVALID,
               "sample shape is not known");
    gf_ctx_clear_error(ctx);
    /* the table's weights into an mlp of other widths */
    CHECK(gf_bundle_info_load(ctx, fixture("table_mlp.safetensors"), &info) == GF_OK);
    o = gf_bundle_default_opts();
    o.hidden[0] = 16;
    gf_bundle *b = gf_bundle_build(ctx, &info, info.n_classes, &o, NULL);
    CHECK(b && b->info.hidden[0] == 16);
    gf_weights_report *rep = NULL;
    gf_ctx_clear_error(ctx);
    CHECK(gf_bundle_load_weights(ctx, b, fixture("table_mlp.safetensors"), NULL, &rep) != GF_OK);
    CHECK(strstr(gf_ctx_error(ctx), "table_mlp.safetensors does not fit the model: ") != NULL);
    CHECK(rep && rep->mismatched == 3);
    gf_weights_report_free(rep);
    gf_bundle_free(b);
    gf_bundle_info_free(&info);
    gf_ctx_clear_error(ctx);
}

/* A file with one metadata pair over a tiny Linear: reading its description fails naming it. */
static void hostile(const char *key, const char *value, gf_status st, const char *want) {
    gf_module *m = gf_nn_linear(ctx, NULL, 2, 2, true);
    const char *meta[] = {key, value};
    CHECK(gf_weights_save(ctx, m, temp("h.safetensors"), meta, 1) == GF_OK);
    gf_module_free(m);
    gf_bundle_info info;
    gf_ctx_clear_error(ctx);
    CHECK(gf_bundle_info_load(ctx, temp("h.safetensors"), &info) == st);
    CHECK(info.model == NULL && info.n_classes == 0 && info.class_names == NULL);
    if (!strstr(gf_ctx_error(ctx), want)) {
        fprintf(stderr, "metadata %s: '%s' lacks '%s'\n", key, gf_ctx_error(ctx), want);
        CHECK(0);
    }
    gf_ctx_clear_error(ctx);
}

static void test_hostile_metadata(void) {
    hostile("graft.classes", "[1,2]", GF_ERR_FORMAT, "metadata \"graft.classes\" is malformed: [1,2]");
    hostile("graft.classes", "[]", GF_ERR_FORMAT, "\"graft.classes\" is malformed");
    hostile("graft.input", "[0]", GF_ERR_FORMAT, "\"graft.input\" is malformed");
    hostile("graft.input", "[1e300, 3]", GF_ERR_FORMAT, "\"graft.input\" is malformed");
    hostile("graft.input", "[1,1,1,1,1]", GF_ERR_FORMAT, "\"graft.input\" is malformed");
    hostile("graft.hidden", "[-3]", GF_ERR_FORMAT, "\"graft.hidden\" is malformed");
    hostile("graft.image", "{\"channels\": 3}", GF_ERR_FORMAT, "\"graft.image\" is malformed");
    hostile("graft.normalize", "{\"mean\": [0], \"std\": [0]}", GF_ERR_FORMAT,
            "\"graft.normalize\" is malformed");
    hostile("graft.normalize", "{\"mean\": [0, 1], \"std\": [1]}", GF_ERR_FORMAT,
            "\"graft.normalize\" is malformed");
    hostile("graft.features", "{}", GF_ERR_FORMAT, "\"graft.features\" is malformed");
    char deep[300];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    deep[200] = '\0';
    hostile("graft.classes", deep, GF_ERR_FORMAT, "(limit json-depth)");
    /* more classes than the limit, refused before the names are copied */
    char many[40000];
    size_t at = 0;
    many[at++] = '[';
    for (int i = 0; i < 10001; i++) at += (size_t)snprintf(many + at, sizeof many - at, "%s\"\"", i ? "," : "");
    many[at++] = ']';
    many[at] = '\0';
    hostile("graft.classes", many, GF_ERR_FORMAT, "names 10001 classes, more than the limit of 10000 (limit classes)");
    /* a file without a description is not a bundle */
    gf_module *m = gf_nn_linear(ctx, NULL, 2, 2, true);
    CHECK(gf_weights_save(ctx, m, temp("h.safetensors"), NULL, 0) == GF_OK);
    gf_module_free(m);
    EXPECT_ERR(ctx, gf_bundle_load(ctx, temp("h.safetensors"), NULL), GF_ERR_FORMAT,
               "does not record its input shape (graft.input)");
    gf_ctx_clear_error(ctx);
}

static void test_helpers(void) {
    CHECK(gf_bundle_is_image_file("a/b.PNG") && gf_bundle_is_image_file("x.jpeg"));
    CHECK(gf_bundle_is_image_file("x.gif") && !gf_bundle_is_image_file("x.csv"));
    CHECK(!gf_bundle_is_image_file(".png") && !gf_bundle_is_image_file(NULL));
    gf_bundle_info info;
    CHECK(gf_bundle_info_load(ctx, fixture("shapes_spec.safetensors"), &info) == GF_OK);
    gf_tf *tf = gf_bundle_transform(ctx, &info);
    CHECK(tf && gf_tf_count(tf) == 1);
    gf_tf_free(tf);
    gf_bundle_info copy;
    CHECK(gf_bundle_info_copy(ctx, &copy, &info) == GF_OK);
    CHECK(copy.spec != info.spec && strcmp(copy.spec, info.spec) == 0 &&
          copy.norm_std[2] == info.norm_std[2] && strcmp(copy.class_names[2], "right") == 0);
    gf_bundle_info_free(&copy);
    gf_bundle_info_free(&info);
    CHECK(info.model == NULL && gf_bundle_transform(ctx, &info) == NULL);
    gf_bundle_free(NULL);
    gf_bundle_info_free(NULL);
}

/* A spec model whose head was replaced saves a spec of the model as it stands, and loads; a
 * spec gives the sample shape a file does not record. */
static void test_spec_as_saved(void) {
    gf_bundle_info info;
    memset(&info, 0, sizeof info); /* no graft.input: the spec's "input" [3, 12, 12] */
    gf_bundle_opts o = gf_bundle_default_opts();
    o.model = fixture("shapes_net.json");
    gf_bundle *b = gf_bundle_build(ctx, &info, 3, &o, NULL);
    CHECK(b && b->info.in_ndim == 3 && b->info.in_shape[0] == 3 && b->info.in_shape[2] == 12);
    if (!b) return;
    CHECK(strcmp(b->head, "classifier.1") == 0);
    CHECK(gf_transfer_replace_head(ctx, b->model, b->head, 5, NULL) == GF_OK);
    CHECK(gf_bundle_save(ctx, b, temp("head5.safetensors"), NULL, 0) == GF_OK);
    gf_bundle_info saved;
    CHECK(gf_bundle_info_load(ctx, temp("head5.safetensors"), &saved) == GF_OK);
    CHECK(saved.spec && strstr(saved.spec, "{\"type\":\"linear\",\"out\":5}") &&
          strstr(saved.spec, "\"input\":[3,12,12]"));
    CHECK(b->info.spec && strstr(b->info.spec, "\"out\":3}")); /* the bundle's own: untouched */
    gf_bundle_info_free(&saved);
    gf_bundle *c = gf_bundle_load(ctx, temp("head5.safetensors"), NULL);
    CHECK(c && linear_rows(c) == 5);
    gf_bundle_free(c);
    /* the same through a delta against the file before the change */
    gf_bundle_free(b);
    b = gf_bundle_build(ctx, &info, 3, &o, NULL);
    CHECK(b && gf_bundle_save(ctx, b, temp("head3.safetensors"), NULL, 0) == GF_OK);
    CHECK(b && gf_transfer_replace_head(ctx, b->model, b->head, 4, NULL) == GF_OK);
    const char *extra[] = {"graft.base", temp("head3.safetensors")};
    CHECK(b && gf_bundle_save_delta(ctx, b, temp("head3.safetensors"), NULL,
                                    temp("head4.safetensors"), extra, 1, NULL) == GF_OK);
    c = gf_bundle_load(ctx, temp("head4.safetensors"), NULL);
    CHECK(c && linear_rows(c) == 4);
    gf_bundle_free(c);
    gf_bundle_free(b);
    gf_ctx_clear_error(ctx);
    /* a zoo model needs the recorded shape */
    o.model = "cnn-small";
    EXPECT_ERR(ctx, gf_bundle_build(ctx, &info, 3, &o, NULL), GF_ERR_INVALID,
               "sample shape is not known (graft.input)");
    gf_ctx_clear_error(ctx);
}

/* A table's columns are recorded, so rows that still hold the label read as the training table
 * did. */
static void test_columns(void) {
    char spec[1300];
    snprintf(spec, sizeof spec, "csv:%s", fixture("table.csv"));
    gf_ds_parts d;
    CHECK(gf_ds_open(ctx, spec, NULL, &d) == GF_OK);
    CHECK(d.csv.header == GF_CSV_HEADER && d.csv.n_columns == 5 && d.csv.label_column == 4);
    gf_bundle *b = gf_bundle_new(ctx, &d, NULL, NULL);
    CHECK(b && b->info.n_columns == 5 && strcmp(b->info.column_names[4], "species") == 0);
    CHECK(b && gf_bundle_save(ctx, b, temp("cols.safetensors"), NULL, 0) == GF_OK);
    gf_bundle *c = gf_bundle_load(ctx, temp("cols.safetensors"), NULL);
    CHECK(c && c->info.n_columns == 5 && strcmp(c->info.column_names[0], "f1") == 0);
    FILE *f = fopen(temp("labelled.csv"), "w");
    if (f) {
        fputs("0,0,5,10,setosa\n4,0,1,10,virginica\n", f); /* rows_plain.csv with labels */
        fclose(f);
    }
    gf_tensor *x = c ? gf_bundle_read(ctx, c, temp("labelled.csv"), NULL) : NULL;
    gf_tensor *y = c ? gf_bundle_read(ctx, c, fixture("rows_plain.csv"), NULL) : NULL;
    CHECK(x && y && x->numel == 8 && y->numel == 8);
    for (int i = 0; x && y && i < 8; i++) CHECK(gf_get_f32(x, i) == gf_get_f32(y, i));
    gf_tensor_free(x);
    gf_tensor_free(y);
    gf_bundle_free(c);
    gf_bundle_free(b);
    gf_ds_parts_free(&d);
    gf_ctx_clear_error(ctx);
}

int main(void) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    snprintf(fx, sizeof fx, "%s/tests/fixtures/bundle", src ? src : ".");
    snprintf(work, sizeof work, "/tmp/graft-test-bundle-XXXXXX");
    if (!mkdtemp(work)) return 1;
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    ctx = gf_ctx_new(&cp);
    cJSON *want = test_read_json(fixture("expected.json"));
    CHECK(want != NULL);
    test_old_files(want);
    test_round_trip();
    test_build_errors();
    test_hostile_metadata();
    test_helpers();
    test_spec_as_saved();
    test_columns();
    CHECK(gf_ctx_status(ctx) == GF_OK);
    cJSON_Delete(want);
    gf_ctx_free(ctx);
    test_rm_tree(work);
    return test_finish("test_bundle");
}
