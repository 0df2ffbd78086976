/* The ONNX importer on the models of tests/fuzz/corpus/onnx (written by
 * tests/fuzz/gen_onnx_corpus.py): parameters named and nested as the initializers are, values
 * against direct computations, gradients through an imported network (frozen parts get none),
 * cutting and a new head, runtime shape arithmetic, weights in Constant nodes and external files,
 * the limits, and every malformed file refused with a message naming the cause. Also the .npy
 * reader and writer. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/graft.h"
#include "import/onnx_internal.h"
#include "testutil.h"

static char corpus[4096], npy_dir[4096];

static const char *cpath(const char *name) {
    static char buf[8192];
    snprintf(buf, sizeof buf, "%s/%s", corpus, name);
    return buf;
}

/* The weights gen_onnx_corpus.py gives mlp.onnx. */
static float w1(int i, int j) { return (float)(((i * 7 + j * 3) % 11 - 5) / 10.0); }
static float b1(int i) { return (float)((i - 4) / 20.0); }
static float w2(int i, int j) { return (float)(((i * 5 + j) % 9 - 4) / 8.0); }
static const float b2[3] = {0.1f, -0.2f, 0.3f};

static void mlp_reference(const float *x, int n, float *y) {
    for (int r = 0; r < n; r++)
        for (int o = 0; o < 3; o++) {
            double acc = b2[o];
            for (int h = 0; h < 8; h++) {
                double v = b1(h);
                for (int j = 0; j < 4; j++) v += (double)w1(h, j) * x[r * 4 + j];
                acc += (double)w2(o, h) * (v > 0 ? v : 0);
            }
            y[r * 3 + o] = (float)acc;
        }
}

static gf_tensor *input(gf_ctx *ctx, int n) {
    int64_t s[2] = {n, 4};
    gf_tensor *x = gf_empty(ctx, GF_F32, 2, s);
    for (int i = 0; i < n * 4; i++) gf_f32(x)[i] = (float)((i * 37 % 17) - 8) / 5.0f;
    return x;
}

static void test_mlp(gf_ctx *ctx) {
    gf_module *m = gf_onnx_load(ctx, cpath("mlp.onnx"), NULL);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "%s\n", gf_ctx_error(ctx));
        return;
    }
    CHECK(gf_onnx_is_model(m) && !gf_module_is_training(m));
    CHECK(gf_onnx_num_inputs(m) == 1 && gf_onnx_num_outputs(m) == 1);
    const gf_onnx_value_info *in = gf_onnx_input(m, 0);
    CHECK(in && !strcmp(in->name, "x") && in->ndim == 2 && in->dims[0] == -1 &&
          in->dim_names[0] && !strcmp(in->dim_names[0], "batch") && in->dims[1] == 4 &&
          in->elem_type == GF_ONNX_FLOAT);
    /* state_dict names, nested at the dots */
    gf_named_tensors *nt = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    const char *want[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    CHECK(nt && nt->n == 4);
    for (int i = 0; nt && i < nt->n && i < 4; i++) CHECK(!strcmp(nt->items[i].name, want[i]));
    gf_named_tensors_free(nt);
    CHECK(gf_module_child(m, "fc1") != NULL);
    CHECK(gf_module_param_count(m, false) == 8 * 4 + 8 + 3 * 8 + 3);
    /* values */
    gf_tensor *x = input(ctx, 5), *y = gf_module_forward(ctx, m, x);
    float ref[15];
    mlp_reference(gf_f32(x), 5, ref);
    CHECK(y && y->ndim == 2 && y->shape[0] == 5 && y->shape[1] == 3);
    for (int i = 0; y && i < 15; i++) CHECK_NEAR(gf_get_f32(y, i), ref[i], 1e-5);
    /* gradients: fc1 frozen by pattern, fc2 trains; a finite-difference check of one weight */
    CHECK(gf_transfer_freeze(ctx, m, "fc1.*") == 2);
    gf_ctx_reset(ctx);
    x = input(ctx, 5);
    gf_tensor *loss =
        gf_sum(ctx, gf_mul(ctx, gf_module_forward(ctx, m, x), gf_module_forward(ctx, m, x)), NULL,
               0, false);
    CHECK(loss && gf_backward(ctx, loss) == GF_OK);
    gf_tensor *fc1w = gf_module_tensor(ctx, m, "fc1.weight"),
              *fc2w = gf_module_tensor(ctx, m, "fc2.weight");
    CHECK(fc1w && !fc1w->grad && !fc1w->requires_grad);
    CHECK(fc2w && fc2w->grad);
    if (fc2w && fc2w->grad) {
        float keep = gf_f32(fc2w)[5], eps = 1e-3f, ana = gf_f32(fc2w->grad)[5];
        double l[2];
        for (int k = 0; k < 2; k++) {
            gf_ctx_reset(ctx);
            bool was = gf_ctx_set_grad_enabled(ctx, false);
            gf_f32(fc2w)[5] = keep + (k ? -eps : eps);
            gf_tensor *o = gf_module_forward(ctx, m, input(ctx, 5));
            l[k] = gf_get_f32(gf_sum(ctx, gf_mul(ctx, o, o), NULL, 0, false), 0);
            gf_ctx_set_grad_enabled(ctx, was);
        }
        gf_f32(fc2w)[5] = keep;
        CHECK_NEAR(ana, (l[0] - l[1]) / (2 * eps), 2e-2 * fmax(1.0, fabs(ana)));
    }
    /* the node's name, op type and opset in a shape error */
    gf_ctx_reset(ctx);
    int64_t bad[2] = {2, 5};
    EXPECT_ERR(ctx, gf_module_forward(ctx, m, gf_zeros(ctx, GF_F32, 2, bad)), GF_ERR_SHAPE,
               "mlp.onnx", "node 'fc1'", "Gemm", "opset 13");
    gf_ctx_clear_error(ctx);
    int64_t s1[1] = {4};
    EXPECT_ERR(ctx, gf_module_forward(ctx, m, gf_zeros(ctx, GF_I64, 1, s1)), GF_ERR_DTYPE,
               "input 'x'", "float32", "int64");
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    gf_module_free(m);
}

static void test_cut(gf_ctx *ctx) {
    gf_onnx_options o = gf_onnx_default_options();
    o.cut = "r"; /* the ReLU's output: fc2 is dropped */
    gf_module *m = gf_onnx_load(ctx, cpath("mlp.onnx"), &o);
    CHECK(m != NULL);
    if (!m) return;
    CHECK(gf_onnx_num_outputs(m) == 1 && !strcmp(gf_onnx_output(m, 0)->name, "r"));
    CHECK(gf_module_param_count(m, false) == 8 * 4 + 8);
    CHECK(gf_module_tensor(NULL, m, "fc2.weight") == NULL);
    /* a new head on top, trained through the imported trunk */
    gf_module *head = gf_nn_linear(ctx, NULL, 8, 2, true);
    gf_module *net = gf_nn_sequential_of(ctx, 2, (gf_module *[]){m, head});
    CHECK(net != NULL);
    gf_tensor *y = gf_module_forward(ctx, net, input(ctx, 3));
    CHECK(y && y->shape[0] == 3 && y->shape[1] == 2);
    gf_tensor *loss = gf_sum(ctx, y, NULL, 0, false);
    CHECK(loss && gf_backward(ctx, loss) == GF_OK);
    CHECK(gf_module_tensor(ctx, net, "0.fc1.weight")->grad != NULL);
    CHECK(gf_module_tensor(ctx, net, "1.weight")->grad != NULL);
    gf_ctx_reset(ctx);
    gf_module_free(net);
    o.cut = "relu"; /* a node's name: its output */
    m = gf_onnx_load(ctx, cpath("mlp.onnx"), &o);
    CHECK(m && !strcmp(gf_onnx_output(m, 0)->name, "r"));
    gf_module_free(m);
    /* a cut needs only the inputs it reads */
    o.cut = "r";
    m = gf_onnx_load(ctx, cpath("two_inputs.onnx"), &o);
    CHECK(m && gf_onnx_num_inputs(m) == 1 && !strcmp(gf_onnx_input(m, 0)->name, "a"));
    const float av[2] = {-1.0f, 2.0f};
    gf_tensor *a = gf_tensor_from_data(ctx, GF_F32, 1, (int64_t[]){2}, av);
    y = m ? gf_module_forward(ctx, m, a) : NULL;
    CHECK(y && gf_get_f32(y, 0) == 0.0f && gf_get_f32(y, 1) == 2.0f);
    gf_tensor_free(a);
    gf_module_free(m);
    m = gf_onnx_load(ctx, cpath("two_inputs.onnx"), NULL);
    CHECK(m && gf_onnx_num_inputs(m) == 2);
    gf_module_free(m);
    gf_ctx_reset(ctx);
    o.cut = "nothing_here";
    EXPECT_ERR(ctx, gf_onnx_load(ctx, cpath("mlp.onnx"), &o), GF_ERR_INVALID, "cut 'nothing_here'",
               "'h'");
    gf_ctx_clear_error(ctx);
}

/* Several cut points as outputs of one module (graph order or not), each the tensor the single
 * cut gives; an unknown one names itself. */
static void test_cuts(gf_ctx *ctx) {
    gf_onnx_options o = gf_onnx_default_options();
    const char *names[3] = {"r", "h", "fc2"}; /* a tensor, a tensor before it, a node's name */
    o.cuts = names;
    o.n_cuts = 3;
    o.cut = "y"; /* ignored: cuts wins */
    gf_module *m = gf_onnx_load(ctx, cpath("mlp.onnx"), &o);
    CHECK(m && gf_onnx_num_outputs(m) == 3);
    if (!m) return;
    CHECK(!strcmp(gf_onnx_output(m, 0)->name, "r") && !strcmp(gf_onnx_output(m, 1)->name, "h") &&
          !strcmp(gf_onnx_output(m, 2)->name, "y"));
    gf_tensor *x = input(ctx, 3), *outs[3] = {NULL};
    CHECK(gf_onnx_run(ctx, m, 1, &x, outs, 3) == 3);
    float ref[9];
    mlp_reference(gf_f32(x), 3, ref);
    for (int i = 0; outs[0] && outs[1] && i < 24; i++) {
        const float h = gf_get_f32(outs[1], i);
        CHECK(gf_get_f32(outs[0], i) == (h > 0 ? h : 0));
    }
    for (int i = 0; outs[2] && i < 9; i++) CHECK(fabsf(gf_get_f32(outs[2], i) - ref[i]) < 1e-5f);
    o.n_cuts = 1; /* one of them: only what it needs */
    gf_module *one = gf_onnx_load(ctx, cpath("mlp.onnx"), &o);
    CHECK(one && gf_onnx_num_outputs(one) == 1 && gf_module_tensor(NULL, one, "fc2.weight") == NULL);
    gf_module_free(one);
    gf_module_free(m);
    gf_ctx_reset(ctx);
    const char *bad[2] = {"r", "nowhere"};
    o.cuts = bad;
    o.n_cuts = 2;
    EXPECT_ERR(ctx, gf_onnx_load(ctx, cpath("mlp.onnx"), &o), GF_ERR_INVALID, "cut 'nowhere'");
    gf_ctx_clear_error(ctx);
}

/* The block ends of a residual net exported by PyTorch (tests/fixtures/onnx_export/blocks.onnx:
 * stem conv, ReLU, two BasicBlock-like blocks, global pooling, flatten, fc): where the graph is
 * a chain again and the layer is complete, before the classifier; and of the mlp: the ReLU
 * feeding the last Gemm. */
static void test_block_ends(gf_ctx *ctx, const char *src) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tests/fixtures/onnx_export/blocks.onnx", src);
    gf_onnx_info *info = gf_onnx_inspect(ctx, path);
    CHECK(info != NULL);
    char ends[1024] = "";
    for (int i = 0; info && i < info->n_cuts; i++)
        if (info->cuts[i].block_end)
            snprintf(ends + strlen(ends), sizeof ends - strlen(ends), "%s ", info->cuts[i].tensor);
    CHECK(!strcmp(ends, "/act/Relu_output_0 /block1/relu_1/Relu_output_0 "
                        "/block2/relu_1/Relu_output_0 /pool/GlobalAveragePool_output_0 "));
    if (strcmp(ends, "/act/Relu_output_0 /block1/relu_1/Relu_output_0 "
                     "/block2/relu_1/Relu_output_0 /pool/GlobalAveragePool_output_0 "))
        fprintf(stderr, "block ends: %s\n", ends);
    gf_onnx_info_free(info);
    info = gf_onnx_inspect(ctx, cpath("mlp.onnx"));
    CHECK(info && info->n_cuts == 3 && !info->cuts[0].block_end && info->cuts[1].block_end &&
          !info->cuts[2].block_end);
    gf_onnx_info_free(info);
}

static void test_shapes_and_constants(gf_ctx *ctx) {
    gf_module *m = gf_onnx_load(ctx, cpath("shape_subgraph.onnx"), NULL);
    CHECK(m && gf_module_param_count(m, false) == 0);
    int64_t s[3] = {5, 2, 3};
    gf_tensor *x = gf_empty(ctx, GF_F32, 3, s);
    for (int i = 0; i < 30; i++) gf_f32(x)[i] = (float)i;
    gf_tensor *y = m ? gf_module_forward(ctx, m, x) : NULL;
    CHECK(y && y->ndim == 2 && y->shape[0] == 5 && y->shape[1] == 6 && gf_get_f32(y, 29) == 29.0f);
    gf_module_free(m);
    gf_ctx_reset(ctx);
    /* weights held by a Constant node: W is a parameter (a MatMul weight), b stays a constant */
    m = gf_onnx_load(ctx, cpath("constant_weights.onnx"), NULL);
    CHECK(m && gf_module_param_count(m, false) == 6 && gf_module_tensor(NULL, m, "W"));
    int64_t sx[2] = {1, 3};
    const float xv[3] = {1, 2, 3};
    gf_tensor *xw = gf_tensor_wrap(ctx, GF_F32, 2, sx, (void *)xv);
    y = m ? gf_module_forward(ctx, m, xw) : NULL;
    CHECK(y && fabsf(gf_get_f32(y, 0) - (1 + 1 - 1.5f + 0.5f)) < 1e-6f &&
          fabsf(gf_get_f32(y, 1) - (-1 + 4 + 0.75f - 0.5f)) < 1e-6f);
    gf_tensor_free(xw);
    gf_module_free(m);
    gf_ctx_reset(ctx);
    /* external data next to the model */
    m = gf_onnx_load(ctx, cpath("external.onnx"), NULL);
    CHECK(m != NULL);
    int64_t s4[1] = {4};
    const float ones[4] = {1, 1, 1, 1};
    xw = gf_tensor_wrap(ctx, GF_F32, 1, s4, (void *)ones);
    y = m ? gf_module_forward(ctx, m, xw) : NULL;
    CHECK(y && gf_get_f32(y, 0) == 1.0f && gf_get_f32(y, 3) == 4.0f);
    gf_tensor_free(xw);
    gf_module_free(m);
    gf_ctx_reset(ctx);
}

/* A small network through many op families (gen_onnx_corpus.py's many_ops): its output shape,
 * and the gradient of a convolution weight against finite differences through all of them. */
static void test_many_ops(gf_ctx *ctx) {
    gf_module *m = gf_onnx_load(ctx, cpath("many_ops.onnx"), NULL);
    CHECK(m != NULL);
    if (!m) return;
    CHECK(gf_module_tensor(NULL, m, "bn.running_mean") &&
          gf_module_param_count(m, false) == 54 + 3 + 6);
    gf_named_tensors *bufs = gf_module_named_tensors(ctx, m, GF_STATE_BUFFERS);
    CHECK(bufs && bufs->n == 2);
    gf_named_tensors_free(bufs);
    int64_t s[4] = {1, 2, 5, 5};
    gf_tensor *w = gf_module_tensor(ctx, m, "conv.weight");
    double l[2] = {0, 0};
    float ana = 0;
    for (int pass = 0; pass < 3; pass++) {
        gf_ctx_reset(ctx);
        if (pass) gf_f32(w)[7] += pass == 1 ? 1e-3f : -2e-3f;
        bool was = gf_ctx_set_grad_enabled(ctx, pass == 0);
        gf_tensor *x = gf_empty(ctx, GF_F32, 4, s);
        for (int i = 0; i < 50; i++) gf_f32(x)[i] = (float)((i * 29) % 13 - 6) / 4.0f;
        gf_tensor *y = gf_module_forward(ctx, m, x);
        CHECK(y && y->ndim == 2 && y->shape[0] == 1 && y->shape[1] == 4);
        gf_tensor *wt = gf_empty(ctx, GF_F32, 2, (int64_t[]){1, 4});
        for (int i = 0; i < 4; i++) gf_f32(wt)[i] = (float)(i + 1);
        gf_tensor *loss = gf_sum(ctx, gf_mul(ctx, y, wt), NULL, 0, false);
        if (pass == 0) {
            CHECK(loss && gf_backward(ctx, loss) == GF_OK && w->grad);
            ana = w->grad ? gf_f32(w->grad)[7] : 0;
        } else {
            l[pass - 1] = loss ? gf_get_f32(loss, 0) : 0;
        }
        gf_ctx_set_grad_enabled(ctx, was);
    }
    gf_f32(w)[7] += 1e-3f;
    CHECK_NEAR(ana, (l[0] - l[1]) / 2e-3, 2e-2 * fmax(1.0, fabs(ana)));
    gf_ctx_reset(ctx);
    gf_module_free(m);
}

/* External data through a symbolic link that leaves the folder is refused; one inside is fine. */
static void test_symlinks(gf_ctx *ctx) {
    char dir[] = "/tmp/graft-onnx-XXXXXX", model[4200], link[4200], target[4200], inside[4200];
    if (!mkdtemp(dir)) return;
    snprintf(model, sizeof model, "%s/sub", dir);
    mkdir(model, 0700);
    snprintf(target, sizeof target, "%s/outside.bin", dir);
    FILE *f = fopen(target, "wb");
    const float w[4] = {1, 2, 3, 4};
    if (f) fwrite(w, 4, 4, f), fclose(f);
    snprintf(model, sizeof model, "%s/sub/external.onnx", dir);
    size_t n = 0;
    FILE *in = fopen(cpath("external.onnx"), "rb");
    char buf[4096];
    if (in) n = fread(buf, 1, sizeof buf, in), fclose(in);
    if ((f = fopen(model, "wb"))) fwrite(buf, 1, n, f), fclose(f);
    snprintf(link, sizeof link, "%s/sub/external.bin", dir);
    CHECK(symlink(target, link) == 0);
    EXPECT_ERR(ctx, gf_onnx_load(ctx, model, NULL), GF_ERR_FORMAT,
               "leads outside the model's folder");
    gf_ctx_clear_error(ctx);
    unlink(link);
    snprintf(inside, sizeof inside, "%s/sub/real.bin", dir);
    if ((f = fopen(inside, "wb"))) fwrite(w, 4, 4, f), fclose(f);
    CHECK(symlink("real.bin", link) == 0);
    gf_module *m = gf_onnx_load(ctx, model, NULL);
    CHECK(m != NULL);
    gf_module_free(m);
    unlink(link), unlink(inside), unlink(model), unlink(target);
    snprintf(model, sizeof model, "%s/sub", dir);
    rmdir(model), rmdir(dir);
}

/* Whether any node that runs is an If decided at run time. */
static bool runtime_if(const gf_module *m) {
    const ox_model *x = gf_module_user(m);
    for (int i = 0; i < x->n_order; i++)
        if (x->nodes[x->order[i]].sub[0] >= 0) return true;
    return false;
}

/* If nodes (gen_onnx_corpus.py's if_const and if_runtime): conditions known at load time
 * inlined (nested too), conditions of run time taking either branch, branches reading the
 * enclosing graph's values and giving them back, gradients through the branch taken. */
static void test_if(gf_ctx *ctx) {
    const float w[3] = {2, 3, 4}, bias[3] = {0.5f, -0.5f, 1.0f}, off[3] = {1, 2, 3};
    gf_module *m = gf_onnx_load(ctx, cpath("if_const.onnx"), NULL);
    CHECK(m != NULL);
    if (!m) return (void)fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    CHECK(!runtime_if(m)); /* both Ifs inlined */
    CHECK(gf_module_tensor(NULL, m, "one") == NULL); /* else_branch's: not a parameter */
    CHECK(gf_module_param_count(m, false) == 6);     /* w and the taken branch's bias */
    gf_tensor *xs = gf_empty(ctx, GF_F32, 2, (int64_t[]){2, 3});
    for (int i = 0; i < 6; i++) gf_f32(xs)[i] = (float)((i * 37 % 17) - 8) / 5.0f;
    gf_tensor *y = gf_module_forward(ctx, m, xs);
    CHECK(y && y->numel == 6);
    for (int i = 0; y && i < 6; i++)
        CHECK_NEAR(gf_get_f32(y, i), gf_get_f32(xs, i) * w[i % 3] + bias[i % 3], 1e-6);
    CHECK(y && gf_backward(ctx, gf_sum(ctx, y, NULL, 0, false)) == GF_OK);
    gf_tensor *wt = gf_module_tensor(ctx, m, "w"), *bt = gf_module_tensor(ctx, m, "bias");
    CHECK(wt && wt->grad && bt && bt->grad);
    for (int j = 0; wt && wt->grad && j < 3; j++)
        CHECK_NEAR(gf_get_f32(wt->grad, j), gf_get_f32(xs, j) + gf_get_f32(xs, 3 + j), 1e-6);
    gf_ctx_reset(ctx);
    gf_module_free(m);

    m = gf_onnx_load(ctx, cpath("if_runtime.onnx"), NULL);
    CHECK(m != NULL && gf_onnx_num_outputs(m) == 2);
    if (!m) return (void)fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    CHECK(runtime_if(m));
    for (int sign = 1; sign >= -1; sign -= 2) {
        gf_module_zero_grad(m);
        float v[6];
        for (int i = 0; i < 6; i++) v[i] = sign * (0.5f + 0.25f * (float)i);
        gf_tensor *in = gf_tensor_from_data(ctx, GF_F32, 2, (int64_t[]){2, 3}, v), *o[2];
        CHECK(gf_onnx_run(ctx, m, 1, &in, o, 2) == 2);
        if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
        double s = 0;
        for (int i = 0; i < 6; i++) s += v[i];
        for (int i = 0; o[0] && i < 6; i++)
            CHECK_NEAR(gf_get_f32(o[0], i), sign > 0 ? v[i] * w[i % 3] : v[i] - off[i % 3], 1e-6);
        CHECK(o[1] && o[1]->numel == 1);
        if (o[1]) CHECK_NEAR(gf_get_f32(o[1], 0), sign > 0 ? s : -s, 1e-5);
        CHECK(o[0] && gf_backward(ctx, gf_sum(ctx, o[0], NULL, 0, false)) == GF_OK);
        gf_tensor *wt2 = gf_module_tensor(ctx, m, "w"), *ot = gf_module_tensor(ctx, m, "off");
        CHECK(wt2 && ot); /* the enclosing graph's and the branch's own initializer: parameters */
        if (wt2 && ot && sign > 0)
            CHECK(wt2->grad && !ot->grad && gf_get_f32(wt2->grad, 1) == v[1] + v[4]);
        if (wt2 && ot && sign < 0) /* w's gradient was zeroed and stays so */
            CHECK(wt2->grad && gf_get_f32(wt2->grad, 1) == 0 && ot->grad &&
                  gf_get_f32(ot->grad, 2) == -2);
        gf_tensor_free(in);
        gf_ctx_reset(ctx);
    }
    gf_module_free(m);
}

static void test_malformed(gf_ctx *ctx) {
    static const struct { const char *file; gf_status st; const char *msg; } cases[] = {
        {"bad_truncated.onnx", GF_ERR_FORMAT, "not a valid ModelProto"},
        {"bad_garbage.onnx", GF_ERR_FORMAT, "not a valid ModelProto"},
        {"bad_empty.onnx", GF_ERR_FORMAT, "holds no graph"},
        {"bad_cycle.onnx", GF_ERR_FORMAT, "cycle"},
        {"bad_missing_initializer.onnx", GF_ERR_FORMAT, "'bias' is not an initializer"},
        {"bad_huge_dims.onnx", GF_ERR_SHAPE, "(limit params)"},
        {"bad_wrong_types.onnx", GF_ERR_FORMAT, "raw_data holds 10 bytes"},
        {"bad_string_initializer.onnx", GF_ERR_DTYPE, "element type string"},
        {"bad_unsupported_ops.onnx", GF_ERR_INVALID, "node 'fancy1' (FancyOp, opset 13)"},
        {"bad_external_dotdot.onnx", GF_ERR_FORMAT, "'..' are refused"},
        {"bad_external_absolute.onnx", GF_ERR_FORMAT, "absolute paths"},
        {"bad_external_missing.onnx", GF_ERR_IO, "no_such_file.bin"},
        {"bad_deep_nesting.onnx", GF_ERR_FORMAT, "nested too deep"},
        {"bad_opset.onnx", GF_ERR_INVALID, "opset 99"},
        {"bad_if_missing_branch.onnx", GF_ERR_FORMAT, "node 'lonely' (If, opset 16): the graph "
                                                      "attribute else_branch is missing"},
        {"bad_if_outputs.onnx", GF_ERR_FORMAT, "node 'uneven' (If, opset 16): then_branch has 2 "
                                               "outputs, the node 1"},
        {"bad_if_deep.onnx", GF_ERR_FORMAT, "(If): If branches nested deeper than 16"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        EXPECT_ERR(ctx, gf_onnx_load(ctx, cpath(cases[i].file), NULL), cases[i].st, cases[i].file,
                   cases[i].msg);
        gf_ctx_clear_error(ctx);
    }
    EXPECT_ERR(ctx, gf_onnx_load(ctx, cpath("no_such.onnx"), NULL), GF_ERR_IO, "cannot open");
    gf_ctx_clear_error(ctx);
    /* every unsupported node at once */
    gf_onnx_info *info = gf_onnx_inspect(ctx, cpath("bad_unsupported_ops.onnx"));
    CHECK(info && info->n_unsupported == 3 && info->n_ops == 3 && info->n_nodes == 4);
    if (info) {
        CHECK(strstr(info->unsupported[1], "StringNormalizer") &&
              strstr(info->unsupported[2], "fancy2"));
        CHECK(info->ops[0].supported && !info->ops[1].supported && info->ops[1].count == 2);
        CHECK(info->n_cuts == 4 && !strcmp(info->cuts[0].tensor, "a"));
    }
    gf_onnx_info_free(info);
    info = gf_onnx_inspect(ctx, cpath("mlp.onnx"));
    CHECK(info && info->n_params == 67 && info->n_param_tensors == 4 && info->opset == 13 &&
          !info->random && !strcmp(info->producer, "graft-test") && info->n_inputs == 1);
    gf_onnx_info_free(info);
    /* limits: the file size and the parameters */
    gf_limits l = gf_limits_default();
    l.model_params = 40;
    gf_ctx_set_limits(ctx, &l);
    EXPECT_ERR(ctx, gf_onnx_load(ctx, cpath("mlp.onnx"), NULL), GF_ERR_FORMAT, "(limit params)");
    l = gf_limits_default();
    l.data_bytes = 100;
    gf_ctx_set_limits(ctx, &l);
    EXPECT_ERR(ctx, gf_onnx_load(ctx, cpath("mlp.onnx"), NULL), GF_ERR_FORMAT,
               "(limit data-bytes)");
    gf_ctx_set_limits(ctx, NULL);
    gf_ctx_clear_error(ctx);
    /* from memory: no folder, so no external data */
    const char *p = cpath("external.onnx");
    FILE *f = fopen(p, "rb");
    char buf[1024];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    EXPECT_ERR(ctx, gf_onnx_load_memory(ctx, buf, n, "mem", NULL), GF_ERR_FORMAT,
               "only read from a model file");
    gf_ctx_clear_error(ctx);
}

static void test_npy(gf_ctx *ctx) {
    char p[8192];
    snprintf(p, sizeof p, "%s/f4_2x3.npy", npy_dir);
    gf_tensor *t = gf_npy_read(ctx, p);
    CHECK(t && t->dtype == GF_F32 && t->ndim == 2 && t->shape[1] == 3 && gf_get_f32(t, 5) == 6.0f);
    gf_tensor_free(t);
    snprintf(p, sizeof p, "%s/i8_4.npy", npy_dir);
    t = gf_npy_read(ctx, p);
    CHECK(t && t->dtype == GF_I64 && t->numel == 4 && gf_get_i64(t, 3) == -4);
    gf_tensor_free(t);
    snprintf(p, sizeof p, "%s/f8_scalar.npy", npy_dir);
    t = gf_npy_read(ctx, p);
    CHECK(t && t->ndim == 0 && gf_get_f32(t, 0) == 2.5f);
    gf_tensor_free(t);
    snprintf(p, sizeof p, "%s/b1_3.npy", npy_dir);
    t = gf_npy_read(ctx, p);
    CHECK(t && t->dtype == GF_I64 && gf_get_i64(t, 0) == 1 && gf_get_i64(t, 1) == 0);
    gf_tensor_free(t);
    static const struct { const char *f, *msg; } bad[] = {
        {"bad_short.npy", "the shape needs 6 elements"}, {"bad_descr.npy", "the header is not"},
        {"bad_fortran.npy", "Fortran order"}, {"bad_huge.npy", "the shape needs"},
        {"bad_magic.npy", "magic"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(p, sizeof p, "%s/%s", npy_dir, bad[i].f);
        EXPECT_ERR(ctx, gf_npy_read(ctx, p), GF_ERR_FORMAT, bad[i].f, bad[i].msg);
        gf_ctx_clear_error(ctx);
    }
    /* round trip of a strided view and of int64, as numpy writes them */
    char dir[] = "/tmp/graft-npy-XXXXXX";
    if (!mkdtemp(dir)) return;
    snprintf(p, sizeof p, "%s/a.npy", dir);
    int64_t s[2] = {2, 3};
    gf_tensor *a = gf_empty(ctx, GF_F32, 2, s);
    for (int i = 0; i < 6; i++) gf_f32(a)[i] = (float)i * 0.5f - 1;
    gf_tensor *at = gf_transpose(ctx, a, 0, 1);
    CHECK(gf_npy_write(ctx, p, at) == GF_OK);
    t = gf_npy_read(ctx, p);
    CHECK(t && t->shape[0] == 3 && t->shape[1] == 2 && gf_get_f32(t, 1) == gf_get_f32(at, 1) &&
          gf_get_f32(t, 4) == gf_get_f32(at, 4));
    gf_tensor_free(t);
    FILE *f = fopen(p, "rb");
    unsigned char head[10] = {0};
    if (f) {
        CHECK(fread(head, 1, 10, f) == 10);
        fclose(f);
    }
    CHECK(!memcmp(head, "\x93NUMPY\x01\x00", 8) && (10 + head[8] + 256 * head[9]) % 64 == 0);
    const int64_t iv[3] = {INT64_MIN, 0, INT64_MAX}, n3 = 3;
    gf_tensor *it = gf_tensor_from_data(ctx, GF_I64, 1, &n3, iv);
    CHECK(gf_npy_write(ctx, p, it) == GF_OK);
    t = gf_npy_read(ctx, p);
    CHECK(t && t->dtype == GF_I64 && gf_get_i64(t, 0) == INT64_MIN &&
          gf_get_i64(t, 2) == INT64_MAX);
    gf_tensor_free(t), gf_tensor_free(it);
    unlink(p), rmdir(dir);
    gf_ctx_reset(ctx);
}

/* docs/IMPORT.md's op table names every op the importer runs. */
static void test_docs_list_ops(void) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/IMPORT.md", src ? src : "..");
    char *doc = test_read_text(path);
    CHECK(doc != NULL);
    for (const char *const *op = ox_op_names(); doc && *op; op++) {
        char want[80];
        snprintf(want, sizeof want, "`%s`", *op);
        if (!strstr(doc, want)) fprintf(stderr, "docs/IMPORT.md does not list %s\n", *op);
        CHECK(strstr(doc, want) != NULL);
    }
    free(doc);
}

int main(void) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    snprintf(corpus, sizeof corpus, "%s/tests/fuzz/corpus/onnx", src ? src : "..");
    snprintf(npy_dir, sizeof npy_dir, "%s/tests/fuzz/corpus/npy", src ? src : "..");
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    test_npy(ctx);
    if (!gf_onnx_available()) {
        printf("test_onnx: built without ONNX support; only the .npy tests ran\n");
        gf_ctx_free(ctx);
        return test_finish("test_onnx");
    }
    test_mlp(ctx);
    test_cut(ctx);
    test_cuts(ctx);
    test_block_ends(ctx, src ? src : "..");
    test_shapes_and_constants(ctx);
    test_many_ops(ctx);
    test_symlinks(ctx);
    test_if(ctx);
    test_malformed(ctx);
    test_docs_list_ops();
    gf_ctx_free(ctx);
    return test_finish("test_onnx");
}
