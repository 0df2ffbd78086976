/* Case runners for arithmetic, matrix products and shape ops (fixtures/ops_core.json,
 * written by fixtures/gen_core.py). */
#include "harness.h"

static int one(gf_tensor *t, gf_tensor **out) {
    out[0] = t;
    return t ? 1 : -1;
}

static int run_add(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)p, (void)n, (void)m;
    return one(gf_add(c, in[0], in[1]), out);
}
static int run_sub(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)p, (void)n, (void)m;
    return one(gf_sub(c, in[0], in[1]), out);
}
static int run_mul(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)p, (void)n, (void)m;
    return one(gf_mul(c, in[0], in[1]), out);
}
static int run_div(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)p, (void)n, (void)m;
    return one(gf_div(c, in[0], in[1]), out);
}
static int run_pow(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)p, (void)n, (void)m;
    return one(gf_pow(c, in[0], in[1]), out);
}
static int run_affine(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)n, (void)m;
    return one(gf_affine(c, in[0], (float)case_num(p, "scale", 1), (float)case_num(p, "shift", 0)), out);
}
static int run_matmul(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)n, (void)m;
    gf_tensor *a = in[0], *b = in[1];
    /* "ta"/"tb": operand given pre-transposed; transposing back exercises strided sgemm */
    if (case_bool(p, "ta", false)) a = gf_transpose(c, a, -1, -2);
    if (case_bool(p, "tb", false)) b = gf_transpose(c, b, -1, -2);
    return one(gf_matmul(c, a, b), out);
}
static int run_linear(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)p, (void)m;
    return one(gf_linear(c, in[0], in[1], n > 2 ? in[2] : NULL), out);
}
static int run_reshape(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)n, (void)m;
    int64_t shape[GF_MAX_DIMS];
    int nd = case_i64s(p, "shape", shape, GF_MAX_DIMS);
    gf_tensor *x = in[0];
    if (case_bool(p, "transposed_input", false)) x = gf_transpose(c, x, 0, 1);
    return one(gf_reshape(c, x, nd, shape), out);
}
static int run_flatten(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)n, (void)m;
    return one(gf_flatten(c, in[0], case_int(p, "start", 0), case_int(p, "end", -1)), out);
}
static int run_transpose(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)n, (void)m;
    return one(gf_transpose(c, in[0], case_int(p, "a", 0), case_int(p, "b", 1)), out);
}
static int run_permute(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)n, (void)m;
    int perm[GF_MAX_DIMS];
    case_ints(p, "perm", perm, GF_MAX_DIMS);
    return one(gf_permute(c, in[0], perm), out);
}
static int run_slice(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)n, (void)m;
    gf_tensor *x = in[0];
    if (case_bool(p, "transposed_input", false)) x = gf_transpose(c, x, 0, -1);
    return one(gf_slice(c, x, case_int(p, "axis", 0), case_int(p, "start", 0),
                        case_int(p, "end", 1 << 30), case_int(p, "step", 1)), out);
}
static int run_contiguous(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)n, (void)m;
    int perm[GF_MAX_DIMS];
    case_ints(p, "perm", perm, GF_MAX_DIMS);
    gf_tensor *v = gf_permute(c, in[0], perm);
    gf_tensor *y = gf_contiguous(c, v);
    if (y && !gf_tensor_is_contiguous(y)) return -1;
    return one(y, out);
}
static int run_concat(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)m;
    return one(gf_concat(c, in, n, case_int(p, "axis", 0)), out);
}
static int run_split(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)n;
    int64_t sizes[16];
    int k = case_i64s(p, "sizes", sizes, 16);
    if (k > m) return -1;
    return gf_split(c, in[0], sizes, k, case_int(p, "axis", 0), out) == GF_OK ? k : -1;
}
static int run_pad(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)n, (void)m;
    int64_t pads[2 * GF_MAX_DIMS];
    int k = case_i64s(p, "pads", pads, 2 * GF_MAX_DIMS);
    return one(gf_pad(c, in[0], pads, k, (float)case_num(p, "value", 0)), out);
}

const gf_case_op gf_cases_core[] = {
    {"add", run_add, 0},         {"sub", run_sub, 0},
    {"mul", run_mul, 0},         {"div", run_div, 0},
    {"pow", run_pow, 0},         {"affine", run_affine, 0},
    {"matmul", run_matmul, 0},   {"linear", run_linear, 0},
    {"reshape", run_reshape, 0}, {"flatten", run_flatten, 0},
    {"transpose", run_transpose, 0}, {"permute", run_permute, 0},
    {"slice", run_slice, 0},     {"contiguous", run_contiguous, 0},
    {"concat", run_concat, 0},   {"split", run_split, 0},
    {"pad", run_pad, 0},         {NULL, NULL, 0},
};
