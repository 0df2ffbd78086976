/* Case runners for convolution and pooling (fixtures/ops_conv.json, written by
 * fixtures/gen_conv.py). To add a case, add it to gen_conv.py; a new op also needs a runner
 * here. "x_transposed": the fixture stores x with its last two axes swapped, and the runner
 * swaps them back so the op sees a strided view. */
#include "harness.h"

static int one(gf_tensor *t, gf_tensor **out) {
    out[0] = t;
    return t ? 1 : -1;
}

static gf_tensor *input_x(gf_ctx *c, const cJSON *p, gf_tensor *x) {
    return case_bool(p, "x_transposed", false) ? gf_transpose(c, x, -1, -2) : x;
}

static gf_conv_params conv_params(const cJSON *p) {
    gf_conv_params cp = gf_conv_default_params();
    case_ints(p, "stride", cp.stride, 2);
    case_ints(p, "padding", cp.padding, 2);
    case_ints(p, "dilation", cp.dilation, 2);
    cp.groups = case_int(p, "groups", 1);
    return cp;
}

static gf_pool_params pool_params(const cJSON *p) {
    gf_pool_params pp = gf_pool_default_params(1);
    case_ints(p, "kernel", pp.kernel, 2);
    pp.stride[0] = pp.stride[1] = 0; /* absent: PyTorch's default, the kernel size */
    case_ints(p, "stride", pp.stride, 2);
    case_ints(p, "padding", pp.padding, 2);
    case_ints(p, "dilation", pp.dilation, 2);
    pp.ceil_mode = case_bool(p, "ceil_mode", false);
    pp.count_include_pad = case_bool(p, "count_include_pad", true);
    return pp;
}

static int run_conv2d(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)m;
    gf_conv_params cp = conv_params(p);
    return one(gf_conv2d(c, input_x(c, p, in[0]), in[1], n > 2 ? in[2] : NULL, &cp), out);
}

static int run_conv1d(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)m;
    gf_conv_params cp = conv_params(p);
    return one(gf_conv1d(c, in[0], in[1], n > 2 ? in[2] : NULL, &cp), out);
}

static int run_max_pool2d(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)n, (void)m;
    gf_pool_params pp = pool_params(p);
    return one(gf_max_pool2d(c, input_x(c, p, in[0]), &pp), out);
}

static int run_avg_pool2d(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)n, (void)m;
    gf_pool_params pp = pool_params(p);
    return one(gf_avg_pool2d(c, input_x(c, p, in[0]), &pp), out);
}

static int run_adaptive_avg_pool2d(gf_ctx *c, const cJSON *p, gf_tensor **in, int n,
                                   gf_tensor **out, int m) {
    (void)n, (void)m;
    int size[2] = {1, 1};
    case_ints(p, "out", size, 2);
    return one(gf_adaptive_avg_pool2d(c, input_x(c, p, in[0]), size[0], size[1]), out);
}

const gf_case_op gf_cases_conv[] = {
    {"conv2d", run_conv2d, 0},
    {"conv1d", run_conv1d, 0},
    {"max_pool2d", run_max_pool2d, 0},
    {"avg_pool2d", run_avg_pool2d, 0},
    {"adaptive_avg_pool2d", run_adaptive_avg_pool2d, 0},
    {NULL, NULL, 0},
};
