/* Case runners for unary math, activations, softmax and reductions (fixtures/ops_act.json,
 * written by fixtures/gen_act.py). To add a case: add it to gen_act.py and rerun it; a new op
 * also needs a runner below and a row in gf_cases_act. */
#include <math.h>
#include <string.h>

#include "harness.h"

#define RUN(name) \
    static int name(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m)

static int one(gf_tensor *t, gf_tensor **out) {
    out[0] = t;
    return t ? 1 : -1;
}

/* The op's input: in[0], or its transpose (first and last axes) when "transposed" is set. */
static gf_tensor *input(gf_ctx *c, const cJSON *p, gf_tensor **in) {
    return case_bool(p, "transposed", false) ? gf_transpose(c, in[0], 0, -1) : in[0];
}

#define UNARY_RUNNER(fn)                                                                    \
    RUN(run_##fn) {                                                                         \
        (void)n, (void)m;                                                                   \
        return one(gf_##fn(c, input(c, p, in)), out);                                       \
    }
UNARY_RUNNER(exp)
UNARY_RUNNER(log)
UNARY_RUNNER(sqrt)
UNARY_RUNNER(relu)
UNARY_RUNNER(silu)
UNARY_RUNNER(sigmoid)
UNARY_RUNNER(tanh)

RUN(run_pow_scalar) {
    (void)n, (void)m;
    return one(gf_pow_scalar(c, input(c, p, in), (float)case_num(p, "exponent", 1)), out);
}
RUN(run_clamp) {
    (void)n, (void)m;
    float lo = (float)case_num(p, "lo", -INFINITY), hi = (float)case_num(p, "hi", INFINITY);
    return one(gf_clamp(c, input(c, p, in), lo, hi), out);
}
RUN(run_leaky_relu) {
    (void)n, (void)m;
    return one(gf_leaky_relu(c, input(c, p, in), (float)case_num(p, "slope", 0.01)), out);
}
RUN(run_elu) {
    (void)n, (void)m;
    return one(gf_elu(c, input(c, p, in), (float)case_num(p, "alpha", 1.0)), out);
}
RUN(run_gelu) {
    (void)n, (void)m;
    bool tanh_mode = strcmp(case_str(p, "approximate", "none"), "tanh") == 0;
    return one(gf_gelu(c, input(c, p, in), tanh_mode ? GF_GELU_TANH : GF_GELU_EXACT), out);
}
RUN(run_softplus) {
    (void)n, (void)m;
    return one(gf_softplus(c, input(c, p, in), (float)case_num(p, "beta", 1.0),
                           (float)case_num(p, "threshold", 20.0)),
               out);
}
RUN(run_softmax) {
    (void)n, (void)m;
    return one(gf_softmax(c, input(c, p, in), case_int(p, "axis", -1)), out);
}
RUN(run_log_softmax) {
    (void)n, (void)m;
    return one(gf_log_softmax(c, input(c, p, in), case_int(p, "axis", -1)), out);
}

/* "axes": list (empty or absent: all axes), "keepdim": bool. */
#define REDUCE_RUNNER(fn)                                                                   \
    RUN(run_##fn) {                                                                         \
        (void)n, (void)m;                                                                   \
        int axes[GF_MAX_DIMS];                                                              \
        int na = case_ints(p, "axes", axes, GF_MAX_DIMS);                                   \
        bool keep = case_bool(p, "keepdim", false);                                         \
        return one(gf_##fn(c, input(c, p, in), axes, na, keep), out);                       \
    }
REDUCE_RUNNER(sum)
REDUCE_RUNNER(mean)
REDUCE_RUNNER(max)

RUN(run_argmax) {
    (void)n, (void)m;
    bool keep = case_bool(p, "keepdim", false);
    return one(gf_argmax(c, input(c, p, in), case_int(p, "axis", 0), keep), out);
}

const gf_case_op gf_cases_act[] = {
    {"exp", run_exp, 0},
    {"log", run_log, 0},
    {"sqrt", run_sqrt, 0},
    {"pow_scalar", run_pow_scalar, 0},
    {"clamp", run_clamp, 0},
    {"relu", run_relu, 0},
    {"leaky_relu", run_leaky_relu, 0},
    {"elu", run_elu, 0},
    {"gelu", run_gelu, 0},
    {"silu", run_silu, 0},
    {"sigmoid", run_sigmoid, 0},
    {"tanh", run_tanh, 0},
    {"softplus", run_softplus, 0},
    {"softmax", run_softmax, 0},
    {"log_softmax", run_log_softmax, 0},
    {"sum", run_sum, 0},
    {"mean", run_mean, 0},
    {"max", run_max, 0},
    {"argmax", run_argmax, 0},
    {NULL, NULL, 0},
};
