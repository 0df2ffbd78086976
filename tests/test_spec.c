/* Model specs (graft/spec.h): a spec equal to the zoo's cnn-small builds the same state_dict
 * names and shapes and draws the same initial weights; inferred "in" sizes; aliases; and every
 * error path names the layer path and the key or both shapes. To add a case: write a static
 * void test_x(gf_ctx *) with CHECKs and call it from main. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "graft/spec.h"

static gf_module *parse(gf_ctx *ctx, const char *text, int ndim, const int64_t *shape,
                        gf_spec_summary **sum) {
    gf_spec_params p = gf_spec_default_params();
    p.label = "net.json";
    p.in_ndim = ndim;
    for (int i = 0; i < ndim; i++) p.in_shape[i] = shape[i];
    return gf_spec_parse(ctx, text, strlen(text), &p, sum);
}

static const char *const cnn_spec =
    "{\"type\": \"container\", \"name\": \"CNNSmall\", \"input\": [1, 28, 28], \"children\": {"
    " \"features\": {\"type\": \"sequential\", \"children\": ["
    "   {\"type\": \"Conv2d\", \"in_channels\": 1, \"out_channels\": 32, \"kernel_size\": 3,"
    "    \"padding\": 1}, {\"type\": \"ReLU\"}, {\"type\": \"MaxPool2d\", \"kernel\": 2},"
    "   {\"type\": \"conv2d\", \"out\": 64, \"kernel\": 3, \"padding\": 1}, {\"type\": \"relu\"},"
    "   {\"type\": \"max_pool2d\", \"kernel\": 2}]},"
    " \"classifier\": {\"type\": \"sequential\", \"children\": ["
    "   {\"type\": \"flatten\"}, {\"type\": \"linear\", \"out\": 128}, {\"type\": \"relu\"},"
    "   {\"type\": \"linear\", \"in\": 128, \"out\": 10}]}}}";

/* The spec of cnn-small gives the zoo's names, shapes and (same seed) weights. */
static void test_matches_zoo(gf_ctx *ctx) {
    gf_rng a, b;
    gf_rng_seed(&a, 3);
    gf_rng_seed(&b, 3);
    gf_spec_params p = gf_spec_default_params();
    p.rng = &a;
    gf_spec_summary *sum = NULL;
    gf_module *m = gf_spec_parse(ctx, cnn_spec, strlen(cnn_spec), &p, &sum);
    gf_zoo_params zp = gf_zoo_default_params();
    gf_module *z = gf_zoo_build(ctx, "cnn-small", &zp, &b);
    CHECK(m && z && sum);
    if (!m || !z || !sum) {
        fprintf(stderr, "%s\n", gf_ctx_error(ctx));
        return;
    }
    CHECK(strcmp(gf_module_type(m), "CNNSmall") == 0);
    gf_named_tensors *tm = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    gf_named_tensors *tz = gf_module_named_tensors(ctx, z, GF_STATE_ALL);
    CHECK(tm->n == tz->n);
    for (int i = 0; i < tm->n && i < tz->n; i++) {
        CHECK(strcmp(tm->items[i].name, tz->items[i].name) == 0);
        CHECK(gf_same_shape(tm->items[i].tensor, tz->items[i].tensor));
        CHECK(memcmp(tm->items[i].tensor->data, tz->items[i].tensor->data,
                     (size_t)tm->items[i].tensor->numel * 4) == 0);
    }
    gf_named_tensors_free(tm);
    gf_named_tensors_free(tz);
    /* summary: pre-order, output shapes, parameter counts */
    CHECK(sum->in_ndim == 3 && sum->in_shape[0] == 1 && sum->in_shape[2] == 28);
    CHECK(sum->out_ndim == 1 && sum->out_shape[0] == 10);
    CHECK(sum->n_layers == 13);
    CHECK(strcmp(sum->layers[0].path, "") == 0 && sum->layers[0].depth == 0);
    CHECK(sum->layers[0].params == gf_module_param_count(z, false));
    CHECK(strcmp(sum->layers[1].path, "features") == 0);
    CHECK(strcmp(sum->layers[2].path, "features.0") == 0);
    CHECK(strcmp(sum->layers[2].type, "Conv2d") == 0);
    CHECK(sum->layers[2].out_ndim == 3 && sum->layers[2].out_shape[0] == 32 &&
          sum->layers[2].out_shape[1] == 28);
    CHECK(strcmp(sum->layers[10].path, "classifier.1") == 0);
    CHECK(sum->layers[10].params == 3136 * 128 + 128); /* "in" inferred from the flatten */
    gf_spec_summary_free(sum);
    gf_module_free(m);
    gf_module_free(z);
}

/* A Sequential root, named children of a sequential, shape from the caller. */
static void test_sequential(gf_ctx *ctx) {
    const char *s =
        "{\"type\": \"sequential\", \"children\": {\"body\": {\"type\": \"linear\", \"out\": 8},"
        " \"act\": {\"type\": \"gelu\", \"approximate\": \"tanh\"},"
        " \"norm\": {\"type\": \"LayerNorm\", \"normalized_shape\": [8]},"
        " \"drop\": {\"type\": \"dropout\", \"p\": 0.1},"
        " \"head\": {\"type\": \"linear\", \"in_features\": 8, \"out_features\": 3, \"bias\": false}}}";
    gf_spec_summary *sum = NULL;
    gf_module *m = parse(ctx, s, 1, (int64_t[]){5}, &sum);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "%s\n", gf_ctx_error(ctx));
        return;
    }
    CHECK(gf_module_tensor(NULL, m, "body.weight") && gf_module_tensor(NULL, m, "head.weight"));
    CHECK(gf_module_tensor(NULL, m, "head.bias") == NULL);
    CHECK(sum->out_ndim == 1 && sum->out_shape[0] == 3);
    gf_tensor *x = gf_rand(ctx, 2, (int64_t[]){4, 5}, -1, 1);
    gf_tensor *y = gf_module_forward(ctx, m, x);
    CHECK(y && y->ndim == 2 && y->shape[1] == 3);
    gf_ctx_reset(ctx);
    gf_spec_summary_free(sum);
    gf_module_free(m);

    /* no shape known: explicit sizes build, a left-out "in" is an error */
    m = parse(ctx, "{\"type\": \"linear\", \"in\": 4, \"out\": 2}", 0, NULL, &sum);
    CHECK(m && sum && sum->out_ndim == 0);
    gf_spec_summary_free(sum);
    gf_module_free(m);
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"linear\", \"out\": 2}", 0, NULL, NULL),
               GF_ERR_INVALID, "net.json", "(root) (linear)", "\"in\" is missing");
}

static void test_errors(gf_ctx *ctx) {
    int64_t img[3] = {1, 28, 28};
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"sequential\", \"children\": [{\"type\": \"conv3d\"}]}",
                          3, img, NULL),
               GF_ERR_INVALID, "net.json", "at 0", "unknown layer type \"conv3d\"", "conv2d");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"sequential\", \"children\": [{\"type\": \"relu\"},"
                               "{\"type\": \"conv2d\", \"out\": 4, \"kernel\": 3, \"paddin\": 1}]}",
                          3, img, NULL),
               GF_ERR_INVALID, "at 1 (conv2d)", "unknown key \"paddin\"", "padding");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"linear\", \"in\": 4, \"in_features\": 4, \"out\": 2}",
                          0, NULL, NULL),
               GF_ERR_INVALID, "given twice");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"linear\", \"in\": 4, \"out\": 2.5}", 0, NULL, NULL),
               GF_ERR_INVALID, "\"out\" must be a whole number");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"linear\", \"in\": 4, \"out\": 2, \"bias\": 1}", 0,
                          NULL, NULL),
               GF_ERR_INVALID, "\"bias\" must be true or false");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"linear\", \"in\": 4, \"out\": 2, \"input\": [4]}", 3,
                          img, NULL),
               GF_ERR_SHAPE, "[4]", "[1, 28, 28]");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"linear\" \"in\": 4}", 0, NULL, NULL), GF_ERR_FORMAT,
               "not valid JSON", "line 1");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"relu\"} x", 0, NULL, NULL), GF_ERR_FORMAT,
               "text after");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"sequential\", \"children\": []}", 0, NULL, NULL),
               GF_ERR_INVALID, "empty");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"container\", \"children\": [{\"type\": \"relu\"}]}", 0,
                          NULL, NULL),
               GF_ERR_INVALID, "must be an object");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"relu\", \"inputs\": [1]}", 0, NULL, NULL),
               GF_ERR_INVALID, "unknown key \"inputs\"");
    /* a constructor's own error gets the layer's path */
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"sequential\", \"children\": [{\"type\": \"conv2d\","
                               " \"in\": 3, \"out\": 4, \"kernel\": 3, \"groups\": 2}]}",
                          0, NULL, NULL),
               GF_ERR_INVALID, "at 0 (conv2d)", "groups");

    /* shapes that cannot connect: the layer path and both shapes */
    const char *bad =
        "{\"type\": \"container\", \"children\": {"
        " \"features\": {\"type\": \"sequential\", \"children\": ["
        "   {\"type\": \"conv2d\", \"in\": 1, \"out\": 16, \"kernel\": 3, \"padding\": 1},"
        "   {\"type\": \"maxpool2d\", \"kernel\": 2}]},"
        " \"classifier\": {\"type\": \"sequential\", \"children\": ["
        "   {\"type\": \"flatten\"}, {\"type\": \"linear\", \"in\": 6272, \"out\": 10}]}}}";
    EXPECT_ERR(ctx, parse(ctx, bad, 3, img, NULL), GF_ERR_SHAPE, "net.json",
               "shapes do not connect at classifier.1 (linear)", "[2, 3136]", "[N, ..., 6272]");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"sequential\", \"children\": ["
                               "{\"type\": \"conv2d\", \"in\": 3, \"out\": 4, \"kernel\": 3}]}",
                          3, img, NULL),
               GF_ERR_SHAPE, "at 0 (conv2d)", "[2, 1, 28, 28]", "[N, 3, H, W]");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"sequential\", \"children\": ["
                               "{\"type\": \"flatten\"}, {\"type\": \"batchnorm2d\"}]}",
                          3, img, NULL),
               GF_ERR_SHAPE, "at 1 (batchnorm2d)", "[2, 784]");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"maxpool2d\", \"kernel\": 40}", 3, img, NULL),
               GF_ERR_SHAPE, "(root) (maxpool2d)", "[2, 1, 28, 28]");
    EXPECT_ERR(ctx, gf_spec_load(ctx, "/nonexistent/net.json", NULL, NULL), GF_ERR_IO,
               "/nonexistent/net.json");
    CHECK(gf_spec_layer_types()[0] != NULL);
}

/* "input": "data" and "out": "classes": one spec for any data, resolved to numbers for the
 * file that stores it; a replaced head's size set by path. */
static void test_from_data(gf_ctx *ctx) {
    const char *net =
        "{\"type\": \"container\", \"input\": \"data\", \"children\": {"
        " \"features\": {\"type\": \"sequential\", \"children\": ["
        "   {\"type\": \"conv2d\", \"out\": 4, \"kernel\": 3, \"padding\": 1}]},"
        " \"head\": {\"type\": \"sequential\", \"children\": ["
        "   {\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": \"classes\"}]}}}";
    gf_spec_params p = gf_spec_default_params();
    p.in_ndim = 3;
    p.in_shape[0] = 3;
    p.in_shape[1] = p.in_shape[2] = 8;
    p.n_classes = 5;
    gf_spec_summary *sum = NULL;
    gf_module *m = gf_spec_parse(ctx, net, strlen(net), &p, &sum);
    CHECK(m && sum && sum->input_from_data && sum->uses_classes);
    CHECK(sum && sum->out_ndim == 1 && sum->out_shape[0] == 5 && sum->in_shape[0] == 3);
    const gf_tensor *w = m ? gf_module_tensor(ctx, m, "head.1.weight") : NULL;
    CHECK(w && w->shape[0] == 5 && w->shape[1] == 4 * 8 * 8);
    gf_module_free(m);
    gf_spec_summary_free(sum);
    char *text = gf_spec_resolve(ctx, net, strlen(net), &p);
    CHECK(text && strstr(text, "\"input\":[3,8,8]") && strstr(text, "\"out_features\":5") &&
          !strstr(text, "classes") && !strstr(text, "data"));
    /* the resolved text builds the same model on its own */
    m = text ? gf_spec_parse(ctx, text, strlen(text), NULL, &sum) : NULL;
    CHECK(m && sum && !sum->input_from_data && !sum->uses_classes && sum->out_shape[0] == 5);
    gf_module_free(m);
    gf_spec_summary_free(sum);
    char *head = text ? gf_spec_set_out(ctx, text, strlen(text), "head.1", 7) : NULL;
    CHECK(head && strstr(head, "\"out_features\":7") && strstr(head, "\"input\":[3,8,8]"));
    free(head);
    EXPECT_ERR(ctx, gf_spec_set_out(ctx, text ? text : "{}", text ? strlen(text) : 2, "head.5", 2),
               GF_ERR_INVALID, "no layer with an \"out\" at head.5");
    EXPECT_ERR(ctx, gf_spec_set_out(ctx, text ? text : "{}", text ? strlen(text) : 2, "features", 2),
               GF_ERR_INVALID, "at features");
    free(text);
    /* without the data: no shapes, and "classes" is an error naming the layer */
    int64_t img[3] = {3, 8, 8};
    EXPECT_ERR(ctx, parse(ctx, net, 3, img, NULL), GF_ERR_INVALID, "at head.1 (linear)",
               "\"classes\", the class count of the data, which is not known here");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"linear\", \"in\": 4, \"out\": \"klasses\"}", 0, NULL,
                          NULL),
               GF_ERR_INVALID, "\"out\" must be a whole number or \"classes\", not \"klasses\"");
    EXPECT_ERR(ctx, parse(ctx, "{\"type\": \"relu\", \"input\": \"dta\"}", 0, NULL, NULL),
               GF_ERR_INVALID, "or \"data\"");
    sum = NULL;
    m = parse(ctx, "{\"type\": \"relu\", \"input\": \"data\"}", 0, NULL, &sum);
    CHECK(m && sum && sum->in_ndim == 0 && sum->input_from_data);
    gf_module_free(m);
    gf_spec_summary_free(sum);
}

int main(void) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    test_matches_zoo(ctx);
    test_sequential(ctx);
    test_errors(ctx);
    test_from_data(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_spec");
}
