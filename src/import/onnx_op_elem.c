/* Elementwise ONNX ops. Float data runs through graft's recorded ops (gf_add, gf_unary,
 * gf_maximum, gf_where, ...) so gradients flow; integer and bool data (held as int64: shape
 * arithmetic, masks, comparisons' results) through the plain loops here, which never record.
 * Broadcasting is numpy's from opset 7; before it, a node broadcasts its second input only when
 * it says broadcast=1, aligned at its axis attribute. */
#include "import/onnx_internal.h"

#include <math.h>
#include <string.h>

/* ---- integer and mixed loops ----------------------------------------------------------------- */

typedef enum {
    EB_ADD, EB_SUB, EB_MUL, EB_DIV, EB_POW, EB_MOD, EB_FMOD, EB_AND, EB_OR, EB_XOR, EB_EQ, EB_LT,
    EB_LE, EB_GT, EB_GE, EB_MAX, EB_MIN, EB_SHL, EB_SHR
} eb_kind;

static int64_t ipow(int64_t a, int64_t b) {
    if (b < 0) return a == 1 ? 1 : a == -1 ? (b % 2 ? -1 : 1) : 0;
    uint64_t r = 1, x = (uint64_t)a;
    for (; b; b >>= 1, x *= x)
        if (b & 1) r *= x;
    return (int64_t)r;
}

/* One integer result; wrapping arithmetic (unsigned) so overflow is defined, and x / 0 = 0. */
static int64_t int_op(eb_kind k, int64_t a, int64_t b) {
    switch (k) {
    case EB_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case EB_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
    case EB_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case EB_DIV: return b == 0 ? 0 : (a == INT64_MIN && b == -1) ? a : a / b;
    case EB_POW: return ipow(a, b);
    case EB_MOD: case EB_FMOD: {
        if (b == 0 || (a == INT64_MIN && b == -1)) return 0;
        int64_t r = a % b;
        return k == EB_MOD && r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
    }
    case EB_AND: return (a != 0) & (b != 0);
    case EB_OR: return (a != 0) | (b != 0);
    case EB_XOR: return (a != 0) ^ (b != 0);
    case EB_EQ: return a == b;
    case EB_LT: return a < b;
    case EB_LE: return a <= b;
    case EB_GT: return a > b;
    case EB_GE: return a >= b;
    case EB_MAX: return a > b ? a : b;
    case EB_MIN: return a < b ? a : b;
    case EB_SHL: return b < 0 || b > 63 ? 0 : (int64_t)((uint64_t)a << b);
    case EB_SHR: return b < 0 || b > 63 ? 0 : (int64_t)((uint64_t)a >> b);
    }
    return 0;
}

/* A comparison or a float result that no gradient needs (Mod, a power of an integer base). */
static double float_op(eb_kind k, double a, double b) {
    switch (k) {
    case EB_EQ: return a == b;
    case EB_LT: return a < b;
    case EB_LE: return a <= b;
    case EB_GT: return a > b;
    case EB_GE: return a >= b;
    case EB_AND: return (a != 0) & (b != 0);
    case EB_OR: return (a != 0) | (b != 0);
    case EB_XOR: return (a != 0) ^ (b != 0);
    case EB_FMOD: return fmod(a, b);
    case EB_MOD: {
        double r = fmod(a, b);
        return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
    }
    case EB_POW: return pow(a, b);
    default: return 0;
    }
}

/* Applies k over a and b broadcast; out_dt: the result's dtype. Integer pairs compute in int64,
 * anything with a float in double. */
static gf_tensor *bcast_apply(ox_exec *e, eb_kind k, gf_tensor *a, gf_tensor *b, gf_dtype out_dt) {
    gf_bcast bc;
    if (!ox_check_bcast(e, a, b)) return NULL;
    if (!gf_broadcast(e->ctx, e->node->op, a, b, &bc)) return NULL;
    gf_tensor *o = gf_empty(e->ctx, out_dt, bc.ndim, bc.shape);
    if (!o) return NULL;
    const bool ints = a->dtype == GF_I64 && b->dtype == GF_I64;
    int64_t idx[GF_MAX_DIMS] = {0};
    for (int64_t i = 0; i < bc.numel; i++) {
        int64_t oa = 0, ob = 0;
        for (int d = 0; d < bc.ndim; d++) oa += idx[d] * bc.sa[d], ob += idx[d] * bc.sb[d];
        double r;
        if (ints) {
            int64_t v = int_op(k, gf_i64(a)[oa], gf_i64(b)[ob]);
            if (out_dt == GF_I64) gf_i64(o)[i] = v;
            else gf_f32(o)[i] = (float)v;
        } else {
            double x = a->dtype == GF_F32 ? gf_f32(a)[oa] : (double)gf_i64(a)[oa];
            double y = b->dtype == GF_F32 ? gf_f32(b)[ob] : (double)gf_i64(b)[ob];
            r = float_op(k, x, y);
            if (out_dt == GF_F32) gf_f32(o)[i] = (float)r;
            else
                gf_i64(o)[i] = isnan(r) ? 0
                    : fabs(r) < 9.2e18  ? (int64_t)r
                    : r > 0             ? INT64_MAX
                                        : INT64_MIN;
        }
        gf_index_next(bc.ndim, bc.shape, idx);
    }
    return o;
}

/* Before opset 7 the second input broadcasts only with broadcast=1, aligned at `axis`. */
static gf_tensor *legacy_b(ox_exec *e, gf_tensor *a, gf_tensor *b) {
    const ox_attr *ax = ox_attr_get(e->node, "axis");
    if (e->node->opset >= 7 || !a || !b || !ox_attr_int(e->node, "broadcast", 0) || !ax) return b;
    int64_t axis = ax->i < 0 ? ax->i + a->ndim : ax->i;
    if (axis < 0 || axis + b->ndim > a->ndim) {
        ox_fail(e, GF_ERR_SHAPE, "broadcast axis %lld does not fit %d- and %d-dimensional inputs",
                (long long)ax->i, a->ndim, b->ndim);
        return NULL;
    }
    int64_t shape[GF_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < axis; i++) shape[nd++] = 1;
    for (int i = 0; i < b->ndim; i++) shape[nd++] = b->shape[i];
    while (nd < a->ndim) shape[nd++] = 1;
    return gf_reshape(e->ctx, b, nd, shape);
}

/* ---- arithmetic ------------------------------------------------------------------------------ */

static bool arith(ox_exec *e, eb_kind k) {
    gf_tensor *a = e->in[0], *b = legacy_b(e, e->in[0], e->in[1]);
    if (!a || !b) return false;
    if (a->dtype == GF_I64 && b->dtype == GF_I64)
        return (e->out[0] = bcast_apply(e, k, a, b, GF_I64)) != NULL;
    if (a->dtype != b->dtype && k != EB_POW)
        return ox_fail(e, GF_ERR_DTYPE, "inputs of different types (a float and an integer)");
    if (!ox_check_bcast(e, a, b)) return false;
    gf_ctx *c = e->ctx;
    switch (k) {
    case EB_ADD: e->out[0] = gf_add(c, a, b); break;
    case EB_SUB: e->out[0] = gf_sub(c, a, b); break;
    case EB_MUL: e->out[0] = gf_mul(c, a, b); break;
    case EB_DIV: e->out[0] = gf_div(c, a, b); break;
    case EB_POW: /* the result takes the base's type */
        e->out[0] =
            a->dtype == GF_I64 ? bcast_apply(e, k, a, b, GF_I64) : gf_pow(c, a, ox_as_f32(e, b));
        break;
    default: e->out[0] = bcast_apply(e, k, a, b, GF_F32); break; /* Mod: no gradient */
    }
    return e->out[0] != NULL;
}

bool ox_op_add(ox_exec *e) { return arith(e, EB_ADD); }
bool ox_op_sub(ox_exec *e) { return arith(e, EB_SUB); }
bool ox_op_mul(ox_exec *e) { return arith(e, EB_MUL); }
bool ox_op_div(ox_exec *e) { return arith(e, EB_DIV); }
bool ox_op_pow(ox_exec *e) { return arith(e, EB_POW); }
bool ox_op_mod(ox_exec *e) { return arith(e, ox_attr_int(e->node, "fmod", 0) ? EB_FMOD : EB_MOD); }

bool ox_op_bitshift(ox_exec *e) {
    const char *dir = ox_attr_str(e->node, "direction", "");
    if (strcmp(dir, "LEFT") && strcmp(dir, "RIGHT"))
        return ox_fail(e, GF_ERR_INVALID, "direction '%s' is not LEFT or RIGHT", dir);
    if (!ox_need(e, 0, GF_I64) || !ox_need(e, 1, GF_I64)) return false;
    e->out[0] = bcast_apply(e, dir[0] == 'L' ? EB_SHL : EB_SHR, e->in[0], e->in[1], GF_I64);
    return e->out[0] != NULL;
}

/* ---- comparisons and logic ------------------------------------------------------------------- */

bool ox_op_compare(ox_exec *e) {
    static const struct { const char *op; eb_kind k; } ops[] = {
        {"Equal", EB_EQ}, {"Less", EB_LT}, {"LessOrEqual", EB_LE}, {"Greater", EB_GT},
        {"GreaterOrEqual", EB_GE}, {"And", EB_AND}, {"Or", EB_OR}, {"Xor", EB_XOR},
    };
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (!strcmp(e->node->op, ops[i].op)) {
            gf_tensor *b = legacy_b(e, e->in[0], e->in[1]);
            return b && (e->out[0] = bcast_apply(e, ops[i].k, e->in[0], b, GF_I64)) != NULL;
        }
    return ox_fail(e, GF_ERR_INVALID, "not a comparison");
}

bool ox_op_logical(ox_exec *e) { return ox_op_compare(e); }

bool ox_op_not(ox_exec *e) {
    gf_tensor *x = ox_as_i64(e, e->in[0]);
    gf_tensor *o = x ? gf_empty(e->ctx, GF_I64, x->ndim, x->shape) : NULL;
    if (!o) return false;
    for (int64_t i = 0; i < x->numel; i++) gf_i64(o)[i] = gf_get_i64(x, i) == 0;
    return (e->out[0] = o) != NULL;
}

static bool float_test(ox_exec *e, bool nan_test) {
    if (!ox_need(e, 0, GF_F32)) return false;
    gf_tensor *x = e->in[0], *o = gf_empty(e->ctx, GF_I64, x->ndim, x->shape);
    if (!o) return false;
    bool neg = ox_attr_int(e->node, "detect_negative", 1),
         pos = ox_attr_int(e->node, "detect_positive", 1);
    for (int64_t i = 0; i < x->numel; i++) {
        float v = gf_get_f32(x, i);
        gf_i64(o)[i] = nan_test ? isnan(v) != 0 : isinf(v) && ((v > 0 && pos) || (v < 0 && neg));
    }
    return (e->out[0] = o) != NULL;
}

bool ox_op_isinf(ox_exec *e) { return float_test(e, false); }
bool ox_op_isnan(ox_exec *e) { return float_test(e, true); }

bool ox_op_where(ox_exec *e) {
    gf_tensor *c = ox_as_i64(e, e->in[0]), *a = e->in[1], *b = e->in[2];
    if (!c || !a || !b) return false;
    if (!ox_check_bcast(e, c, a) || !ox_check_bcast(e, a, b) || !ox_check_bcast(e, c, b))
        return false;
    if (a->dtype == GF_F32 && b->dtype == GF_F32)
        return (e->out[0] = gf_where(e->ctx, c, a, b)) != NULL;
    if (a->dtype != b->dtype) return ox_fail(e, GF_ERR_DTYPE, "X and Y have different types");
    const gf_tensor *t[3] = {c, a, b};
    int nd = 0;
    for (int k = 0; k < 3; k++) nd = t[k]->ndim > nd ? t[k]->ndim : nd;
    int64_t shape[GF_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        shape[d] = 1;
        for (int k = 0; k < 3; k++) {
            int i = d - (nd - t[k]->ndim);
            int64_t s = i >= 0 ? t[k]->shape[i] : 1;
            if (s != 1 && shape[d] != 1 && s != shape[d])
                return ox_fail(e, GF_ERR_SHAPE, "condition, X and Y cannot be broadcast together");
            if (s != 1) shape[d] = s;
        }
    }
    gf_tensor *o = gf_empty(e->ctx, GF_I64, nd, shape);
    if (!o) return false;
    int64_t idx[GF_MAX_DIMS] = {0};
    for (int64_t i = 0; i < o->numel; i++) {
        int64_t off[3] = {0, 0, 0};
        for (int k = 0; k < 3; k++)
            for (int d = 0; d < t[k]->ndim; d++)
                off[k] += (t[k]->shape[d] == 1 ? 0 : idx[d + nd - t[k]->ndim]) * t[k]->stride[d];
        gf_i64(o)[i] = gf_i64(c)[off[0]] ? gf_i64(a)[off[1]] : gf_i64(b)[off[2]];
        gf_index_next(nd, shape, idx);
    }
    return (e->out[0] = o) != NULL;
}

/* ---- unary functions ------------------------------------------------------------------------- */

static gf_tensor *int_unary(ox_exec *e, const char *op, gf_tensor *x) {
    gf_tensor *o = gf_empty(e->ctx, GF_I64, x->ndim, x->shape);
    if (!o) return NULL;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t v = gf_get_i64(x, i);
        if (!strcmp(op, "Neg")) v = (int64_t)(0 - (uint64_t)v);
        else if (!strcmp(op, "Abs")) v = v < 0 ? (int64_t)(0 - (uint64_t)v) : v;
        else if (!strcmp(op, "Sign")) v = (v > 0) - (v < 0);
        else if (!strcmp(op, "Relu")) v = v < 0 ? 0 : v;
        else if (strcmp(op, "Floor") && strcmp(op, "Ceil") && strcmp(op, "Round") &&
                 strcmp(op, "Identity")) {
            ox_fail(e, GF_ERR_DTYPE, "integer input: %s takes floats", op);
            return NULL;
        }
        gf_i64(o)[i] = v;
    }
    return o;
}

bool ox_op_unary(ox_exec *e) {
    static const struct { const char *op; int fn; } fns[] = {
        {"Neg", GF_FN_NEG}, {"Abs", GF_FN_ABS}, {"Reciprocal", GF_FN_RECIPROCAL},
        {"Floor", GF_FN_FLOOR}, {"Ceil", GF_FN_CEIL}, {"Round", GF_FN_ROUND}, {"Sign", GF_FN_SIGN},
        {"Sin", GF_FN_SIN}, {"Cos", GF_FN_COS}, {"Tan", GF_FN_TAN}, {"Asin", GF_FN_ASIN},
        {"Acos", GF_FN_ACOS}, {"Atan", GF_FN_ATAN}, {"Sinh", GF_FN_SINH}, {"Cosh", GF_FN_COSH},
        {"Asinh", GF_FN_ASINH}, {"Acosh", GF_FN_ACOSH}, {"Atanh", GF_FN_ATANH}, {"Erf", GF_FN_ERF},
        {"Softsign", GF_FN_SOFTSIGN}, {"Exp", -1}, {"Log", -2}, {"Sqrt", -3},
    };
    gf_tensor *x = e->in[0];
    const char *op = e->node->op;
    if (x->dtype == GF_I64) return (e->out[0] = int_unary(e, op, x)) != NULL;
    for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
        if (strcmp(op, fns[i].op)) continue;
        switch (fns[i].fn) {
        case -1: e->out[0] = gf_exp(e->ctx, x); break;
        case -2: e->out[0] = gf_log(e->ctx, x); break;
        case -3: e->out[0] = gf_sqrt(e->ctx, x); break;
        default: e->out[0] = gf_unary(e->ctx, x, (gf_unary_fn)fns[i].fn, 0, 0); break;
        }
        return e->out[0] != NULL;
    }
    return ox_fail(e, GF_ERR_INVALID, "not a unary function");
}

bool ox_op_erf(ox_exec *e) { return ox_op_unary(e); }

static bool float_in(ox_exec *e) { return ox_need(e, 0, GF_F32); }

bool ox_op_relu(ox_exec *e) {
    if (e->in[0]->dtype == GF_I64) return (e->out[0] = int_unary(e, "Relu", e->in[0])) != NULL;
    return (e->out[0] = gf_relu(e->ctx, e->in[0])) != NULL;
}
bool ox_op_sigmoid(ox_exec *e) { return float_in(e) && (e->out[0] = gf_sigmoid(e->ctx, e->in[0])); }
bool ox_op_tanh(ox_exec *e) { return float_in(e) && (e->out[0] = gf_tanh(e->ctx, e->in[0])); }
bool ox_op_leaky_relu(ox_exec *e) {
    return float_in(e) &&
           (e->out[0] = gf_leaky_relu(e->ctx, e->in[0], ox_attr_float(e->node, "alpha", 0.01f)));
}
bool ox_op_elu(ox_exec *e) {
    return float_in(e) &&
        (e->out[0] = gf_elu(e->ctx, e->in[0], ox_attr_float(e->node, "alpha", 1.0f)));
}
bool ox_op_selu(ox_exec *e) {
    float a = ox_attr_float(e->node, "alpha", 1.67326319217681884765625f);
    float g = ox_attr_float(e->node, "gamma", 1.05070102214813232421875f);
    return float_in(e) && (e->out[0] = gf_unary(e->ctx, e->in[0], GF_FN_SELU, a, g));
}
bool ox_op_celu(ox_exec *e) {
    return float_in(e) &&
        (e->out[0] =
             gf_unary(e->ctx, e->in[0], GF_FN_CELU, ox_attr_float(e->node, "alpha", 1.0f), 0));
}
bool ox_op_hard_sigmoid(ox_exec *e) {
    float a = ox_attr_float(e->node, "alpha", 0.2f), b = ox_attr_float(e->node, "beta", 0.5f);
    return float_in(e) && (e->out[0] = gf_hardsigmoid(e->ctx, e->in[0], a, b));
}
bool ox_op_hard_swish(ox_exec *e) {
    return float_in(e) && (e->out[0] = gf_hardswish(e->ctx, e->in[0]));
}
bool ox_op_softplus(ox_exec *e) {
    /* ONNX's log(exp(x) + 1); past 20 that is x to within a float's precision */
    return float_in(e) && (e->out[0] = gf_softplus(e->ctx, e->in[0], 1.0f, 20.0f));
}
bool ox_op_softsign(ox_exec *e) { return ox_op_unary(e); }
bool ox_op_thresholded_relu(ox_exec *e) {
    return float_in(e) && (e->out[0] = gf_unary(e->ctx, e->in[0], GF_FN_THRESHOLDED_RELU,
                                                ox_attr_float(e->node, "alpha", 1.0f), 0));
}
bool ox_op_shrink(ox_exec *e) {
    float bias = ox_attr_float(e->node, "bias", 0.0f),
          lambd = ox_attr_float(e->node, "lambd", 0.5f);
    return float_in(e) && (e->out[0] = gf_unary(e->ctx, e->in[0], GF_FN_SHRINK, bias, lambd));
}
bool ox_op_gelu(ox_exec *e) {
    const char *ap = ox_attr_str(e->node, "approximate", "none");
    return float_in(e) &&
        (e->out[0] = gf_gelu(e->ctx, e->in[0], strcmp(ap, "tanh") ? GF_GELU_EXACT : GF_GELU_TANH));
}

/* PRelu: relu(x) - slope * relu(-x). Before opset 7, and in files that rely on it, a [C] slope
 * applies per channel (axis 1). */
bool ox_op_prelu(ox_exec *e) {
    gf_tensor *x = e->in[0], *s = e->in[1];
    if (!float_in(e) || !ox_need(e, 1, GF_F32)) return false;
    if (s->ndim == 1 && x->ndim > 2 && s->shape[0] == x->shape[1] &&
        s->shape[0] != x->shape[x->ndim - 1]) {
        int64_t shape[GF_MAX_DIMS];
        shape[0] = s->shape[0];
        for (int d = 1; d < x->ndim - 1; d++) shape[d] = 1;
        s = gf_reshape(e->ctx, s, x->ndim - 1, shape);
    }
    if (!ox_check_bcast(e, x, s)) return false;
    gf_ctx *c = e->ctx;
    e->out[0] = gf_sub(c, gf_relu(c, x), gf_mul(c, s, gf_relu(c, gf_neg(c, x))));
    return e->out[0] != NULL;
}

/* Clip: bounds from attributes before opset 11, from optional inputs after. */
bool ox_op_clip(ox_exec *e) {
    gf_tensor *x = e->in[0];
    double lo = -INFINITY, hi = INFINITY;
    if (e->node->opset < 11) {
        lo = ox_attr_float(e->node, "min", -INFINITY);
        hi = ox_attr_float(e->node, "max", INFINITY);
    } else {
        if (e->n_in > 1 && e->in[1] && !ox_input_scalar(e, 1, &lo)) return false;
        if (e->n_in > 2 && e->in[2] && !ox_input_scalar(e, 2, &hi)) return false;
    }
    if (x->dtype == GF_F32) return (e->out[0] = gf_clamp(e->ctx, x, (float)lo, (float)hi)) != NULL;
    gf_tensor *o = gf_empty(e->ctx, GF_I64, x->ndim, x->shape);
    if (!o) return false;
    for (int64_t i = 0; i < x->numel; i++) {
        double v = (double)gf_get_i64(x, i);
        gf_i64(o)[i] = v < lo ? (int64_t)lo : v > hi ? (int64_t)hi : gf_get_i64(x, i);
    }
    return (e->out[0] = o) != NULL;
}

/* ---- variadic: Max, Min, Sum, Mean ----------------------------------------------------------- */

static bool variadic(ox_exec *e, eb_kind k, bool mean) {
    gf_tensor *acc = e->in[0];
    for (int i = 1; acc && i < e->n_in; i++) {
        gf_tensor *b = e->in[i];
        if (!b) return ox_fail(e, GF_ERR_INVALID, "input %d is missing", i);
        if (acc->dtype != b->dtype) return ox_fail(e, GF_ERR_DTYPE, "inputs of different types");
        if (!ox_check_bcast(e, acc, b)) return false;
        if (acc->dtype == GF_I64) acc = bcast_apply(e, k, acc, b, GF_I64);
        else if (k == EB_ADD) acc = gf_add(e->ctx, acc, b);
        else acc = k == EB_MAX ? gf_maximum(e->ctx, acc, b) : gf_minimum(e->ctx, acc, b);
    }
    if (acc && mean && e->n_in > 1) {
        if (acc->dtype != GF_F32) return ox_fail(e, GF_ERR_DTYPE, "Mean takes floats");
        acc = gf_mul_scalar(e->ctx, acc, 1.0f / (float)e->n_in);
    }
    return (e->out[0] = acc) != NULL;
}

bool ox_op_minmax(ox_exec *e) {
    return variadic(e, e->node->op[1] == 'a' ? EB_MAX : EB_MIN, false);
}
bool ox_op_sum(ox_exec *e) { return variadic(e, EB_ADD, false); }
bool ox_op_mean(ox_exec *e) { return variadic(e, EB_ADD, true); }
