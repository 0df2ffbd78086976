/* The layers a TensorFlow.js model may hold: each class's settings read from its config (every
 * value checked for kind and range), then the output shape of every kept layer in order,
 * checking the weights the manifest holds for it and the params / activation limits before
 * anything is built. */
#define _POSIX_C_SOURCE 200809L
#include "import/tfjs_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TJ_SIZE_MAX = 1 << 16 }; /* kernels, strides, dilations and paddings */

/* ---- reading settings ------------------------------------------------------------------- */

/* An integer in [lo, hi] from v; false otherwise. */
static bool int_in(const cJSON *v, int64_t lo, int64_t hi, int64_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

/* key as a pair of integers in [lo, hi] (an int, or an array of two); def when absent or null
 * and def >= 0. */
static gf_status get_pair(gf_ctx *ctx, const tj_node *nd, const cJSON *cfg, const char *key,
                          int lo, int def, int out[2], const char *label) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    int64_t a, b;
    if ((!v || cJSON_IsNull(v)) && def >= 0) {
        out[0] = out[1] = def;
        return GF_OK;
    }
    if (int_in(v, lo, TJ_SIZE_MAX, &a)) {
        out[0] = out[1] = (int)a;
        return GF_OK;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 &&
        int_in(cJSON_GetArrayItem(v, 0), lo, TJ_SIZE_MAX, &a) &&
        int_in(cJSON_GetArrayItem(v, 1), lo, TJ_SIZE_MAX, &b)) {
        out[0] = (int)a;
        out[1] = (int)b;
        return GF_OK;
    }
    return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "%s: expected an integer or two from "
                          "%d to %d", key, lo, TJ_SIZE_MAX);
}

static gf_status get_bool(gf_ctx *ctx, const tj_node *nd, const cJSON *cfg, const char *key,
                          bool def, bool *out, const char *label) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v)) *out = def;
    else if (cJSON_IsBool(v)) *out = cJSON_IsTrue(v);
    else return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "%s: expected true or false", key);
    return GF_OK;
}

/* A finite number in [lo, hi]; def when absent or null (def NaN: required). */
static gf_status get_num(gf_ctx *ctx, const tj_node *nd, const cJSON *cfg, const char *key,
                         double lo, double hi, double def, double *out, const char *label) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    *out = 0;
    if ((!v || cJSON_IsNull(v)) && !isnan(def)) *out = def;
    else if (cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi)
        *out = v->valuedouble;
    else return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "%s: expected a number from %g to "
                               "%g", key, lo, hi);
    return GF_OK;
}

/* A string value, or def when absent or null. */
static const char *get_str(const cJSON *cfg, const char *key, const char *def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsString(v)) return v->valuestring;
    return !v || cJSON_IsNull(v) ? def : NULL;
}

/* An activation by Keras's name. */
static gf_status set_act(gf_ctx *ctx, tj_node *nd, const char *a, const char *label) {
    static const struct { const char *name; tj_act act; } t[] = {
        {"linear", TJ_A_LINEAR}, {"relu", TJ_A_RELU}, {"relu6", TJ_A_CLAMP},
        {"sigmoid", TJ_A_SIGMOID}, {"softmax", TJ_A_SOFTMAX}, {"tanh", TJ_A_TANH},
        {"elu", TJ_A_ELU}, {"softplus", TJ_A_SOFTPLUS}, {"swish", TJ_A_SWISH},
        {"silu", TJ_A_SWISH}};
    for (size_t i = 0; a && i < sizeof t / sizeof *t; i++)
        if (strcmp(a, t[i].name) == 0) {
            nd->act = t[i].act;
            nd->act_lo = 0.0f;
            nd->act_hi = 6.0f;
            return GF_OK;
        }
    return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "activation \"%.40s\", expected linear, "
                          "relu, relu6, sigmoid, softmax, tanh, elu, softplus or swish",
                          a ? a : "(not a string)");
}

/* padding "valid" | "same", data_format channels_last, and (when act_key) the activation. */
static gf_status common(gf_ctx *ctx, tj_node *nd, const cJSON *cfg, bool padding,
                        const char *act_key, const char *label) {
    const char *df = get_str(cfg, "data_format", "channels_last");
    if (!df || strcmp(df, "channels_last") != 0)
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "data_format \"%.40s\": only "
                              "channels_last is supported", df ? df : "(not a string)");
    if (padding) {
        const char *p = get_str(cfg, "padding", "valid");
        if (!p || (strcmp(p, "valid") != 0 && strcmp(p, "same") != 0))
            return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "padding \"%.40s\", expected "
                                  "valid or same", p ? p : "(not a string)");
        nd->same = p[0] == 's';
    }
    return act_key ? set_act(ctx, nd, get_str(cfg, act_key, "linear"), label) : GF_OK;
}

/* Conv2D, DepthwiseConv2D, SeparableConv2D. */
static gf_status conv_settings(gf_ctx *ctx, tj_node *nd, const cJSON *cfg, const char *label) {
    int k[2], s[2], d[2];
    int64_t v = 1;
    if (get_pair(ctx, nd, cfg, "kernel_size", 1, -1, k, label) != GF_OK ||
        get_pair(ctx, nd, cfg, "strides", 1, 1, s, label) != GF_OK ||
        get_pair(ctx, nd, cfg, "dilation_rate", 1, 1, d, label) != GF_OK ||
        get_bool(ctx, nd, cfg, "use_bias", true, &nd->bias, label) != GF_OK ||
        common(ctx, nd, cfg, true, "activation", label) != GF_OK)
        return gf_ctx_status(ctx);
    nd->kh = k[0], nd->kw = k[1], nd->sh = s[0], nd->sw = s[1], nd->dh = d[0], nd->dw = d[1];
    if ((s[0] > 1 || s[1] > 1) && (d[0] > 1 || d[1] > 1))
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "strides > 1 with dilation_rate > 1 "
                              "(Keras refuses it too)");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(cfg, "filters");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cfg, "depth_multiplier");
    const cJSON *grp = cJSON_GetObjectItemCaseSensitive(cfg, "groups");
    if (nd->kind != TJ_DWCONV && !int_in(f, 1, INT32_MAX, &nd->filters))
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "filters: expected an integer >= 1");
    if (nd->kind != TJ_CONV && m && !cJSON_IsNull(m) && !int_in(m, 1, INT32_MAX, &v))
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "depth_multiplier: expected an "
                              "integer >= 1");
    int64_t groups = 1;
    if (grp && !cJSON_IsNull(grp) && !int_in(grp, 1, 1, &groups))
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "groups: only 1 is supported");
    nd->mult = v;
    return GF_OK;
}

/* ZeroPadding2D: an int, [sym_h, sym_w] or [[top, bottom], [left, right]]. */
static gf_status zeropad_settings(gf_ctx *ctx, tj_node *nd, const cJSON *cfg, const char *label) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(cfg, "padding");
    int64_t v[4];
    const cJSON *a = cJSON_GetArrayItem(p, 0), *b = cJSON_GetArrayItem(p, 1);
    if (int_in(p, 0, TJ_SIZE_MAX, &v[0])) {
        v[1] = v[2] = v[3] = v[0];
    } else if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 2 && int_in(a, 0, TJ_SIZE_MAX, &v[0]) &&
               int_in(b, 0, TJ_SIZE_MAX, &v[2])) {
        v[1] = v[0];
        v[3] = v[2];
    } else if (!(cJSON_IsArray(p) && cJSON_GetArraySize(p) == 2 && cJSON_GetArraySize(a) == 2 &&
                 cJSON_GetArraySize(b) == 2 &&
                 int_in(cJSON_GetArrayItem(a, 0), 0, TJ_SIZE_MAX, &v[0]) &&
                 int_in(cJSON_GetArrayItem(a, 1), 0, TJ_SIZE_MAX, &v[1]) &&
                 int_in(cJSON_GetArrayItem(b, 0), 0, TJ_SIZE_MAX, &v[2]) &&
                 int_in(cJSON_GetArrayItem(b, 1), 0, TJ_SIZE_MAX, &v[3]))) {
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "padding: expected an integer, [h, "
                              "w] or [[top, bottom], [left, right]] from 0 to %d", TJ_SIZE_MAX);
    }
    for (int i = 0; i < 4; i++) nd->pad[i] = (int)v[i];
    return common(ctx, nd, cfg, false, NULL, label);
}

/* ReLU (max_value, negative_slope, threshold 0), LeakyReLU (alpha), Softmax (axis -1). */
static gf_status relu_settings(gf_ctx *ctx, tj_node *nd, const cJSON *cfg, const char *label) {
    double mx, slope, th;
    if (strcmp(nd->cls, "LeakyReLU") == 0) {
        if (get_num(ctx, nd, cfg, "alpha", 0, 1e6, 0.3, &slope, label) != GF_OK)
            return gf_ctx_status(ctx);
        nd->act = TJ_A_LEAKY;
        nd->act_slope = (float)slope;
        return GF_OK;
    }
    if (get_num(ctx, nd, cfg, "max_value", 0, 1e30, INFINITY, &mx, label) != GF_OK ||
        get_num(ctx, nd, cfg, "negative_slope", 0, 1e6, 0, &slope, label) != GF_OK ||
        get_num(ctx, nd, cfg, "threshold", -1e30, 1e30, 0, &th, label) != GF_OK)
        return gf_ctx_status(ctx);
    if (th != 0 || (slope != 0 && isfinite(mx)))
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "threshold %g with negative_slope %g "
                              "and max_value %g: supported are threshold 0 with a max_value or a "
                              "negative_slope, not both", th, slope, mx);
    nd->act = slope != 0 ? TJ_A_LEAKY : isfinite(mx) ? TJ_A_CLAMP : TJ_A_RELU;
    nd->act_slope = (float)slope;
    nd->act_lo = 0.0f;
    nd->act_hi = (float)mx;
    return GF_OK;
}

/* InputLayer: batch_input_shape (or batch_shape) [null, ...]; null sizes stay unknown. */
static gf_status input_settings(gf_ctx *ctx, tj_node *nd, const cJSON *cfg, const char *label) {
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(cfg, "batch_input_shape");
    if (!bs) bs = cJSON_GetObjectItemCaseSensitive(cfg, "batch_shape");
    int n = cJSON_GetArraySize(bs);
    if (!cJSON_IsArray(bs) || n < 2 || n > 4)
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "batch_input_shape: expected [null, "
                              "...] with 1 to 3 sizes per example");
    nd->out_ndim = n - 1;
    for (int d = 1; d < n; d++) {
        const cJSON *v = cJSON_GetArrayItem(bs, d);
        if (cJSON_IsNull(v)) nd->out[d - 1] = -1;
        else if (!int_in(v, 1, INT32_MAX, &nd->out[d - 1]))
            return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "batch_input_shape[%d]: expected "
                                  "null or an integer >= 1", d);
    }
    if (nd->out[nd->out_ndim - 1] < 0)
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "batch_input_shape: the last size "
                              "(channels or features) must be given");
    nd->kind = TJ_INPUT;
    return GF_OK;
}

/* Reshape's target_shape, Concatenate's axis, Dropout's rate, pooling's sizes. */
static gf_status misc_settings(gf_ctx *ctx, tj_node *nd, const cJSON *cfg, const char *label) {
    double r;
    int p[2], s[2];
    switch (nd->kind) {
    case TJ_CONCAT:
        if (get_num(ctx, nd, cfg, "axis", -4, 3, -1, &r, label) != GF_OK) return gf_ctx_status(ctx);
        nd->axis = (int)r;
        return GF_OK;
    case TJ_DROPOUT: {
        const cJSON *ns = cJSON_GetObjectItemCaseSensitive(cfg, "noise_shape");
        if (ns && !cJSON_IsNull(ns))
            return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "noise_shape is not supported");
        if (get_num(ctx, nd, cfg, "rate", 0, 0.999999, NAN, &r, label) != GF_OK)
            return gf_ctx_status(ctx);
        nd->rate = (float)r;
        return GF_OK;
    }
    case TJ_RESHAPE: {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, "target_shape");
        int n = cJSON_GetArraySize(t), unknown = 0;
        if (!cJSON_IsArray(t) || n < 1 || n > 3)
            return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "target_shape: expected 1 to 3 "
                                  "sizes");
        nd->r_ndim = n;
        for (int d = 0; d < n; d++) {
            const cJSON *v = cJSON_GetArrayItem(t, d);
            if (!int_in(v, -1, INT32_MAX, &nd->r_shape[d]) || nd->r_shape[d] == 0 ||
                (nd->r_shape[d] < 0 && ++unknown > 1))
                return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "target_shape[%d]: expected "
                                      "a size >= 1 (or one -1)", d);
        }
        return GF_OK;
    }
    case TJ_MAXPOOL:
    case TJ_AVGPOOL:
        if (get_pair(ctx, nd, cfg, "pool_size", 1, 2, p, label) != GF_OK ||
            get_pair(ctx, nd, cfg, "strides", 1, 0, s, label) != GF_OK ||
            common(ctx, nd, cfg, true, NULL, label) != GF_OK)
            return gf_ctx_status(ctx);
        nd->kh = p[0], nd->kw = p[1], nd->dh = nd->dw = 1;
        nd->sh = s[0] ? s[0] : p[0], nd->sw = s[1] ? s[1] : p[1];
        return GF_OK;
    case TJ_GAP:
    case TJ_GMP:
        if (get_bool(ctx, nd, cfg, "keepdims", false, &nd->keepdims, label) != GF_OK)
            return gf_ctx_status(ctx);
        return common(ctx, nd, cfg, false, NULL, label);
    default:
        return common(ctx, nd, cfg, false, NULL, label);
    }
}

/* BatchNormalization: epsilon, momentum, center, scale and one axis. */
static gf_status bn_settings(gf_ctx *ctx, tj_node *nd, const cJSON *cfg, const char *label) {
    double eps, mom, ax = -1;
    if (get_num(ctx, nd, cfg, "epsilon", 0, 1e3, 1e-3, &eps, label) != GF_OK ||
        get_num(ctx, nd, cfg, "momentum", 0, 1, 0.99, &mom, label) != GF_OK ||
        get_bool(ctx, nd, cfg, "center", true, &nd->center, label) != GF_OK ||
        get_bool(ctx, nd, cfg, "scale", true, &nd->scale, label) != GF_OK)
        return gf_ctx_status(ctx);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(cfg, "axis");
    if (cJSON_IsArray(a) && cJSON_GetArraySize(a) == 1) a = cJSON_GetArrayItem(a, 0);
    if (a && cJSON_IsNumber(a)) ax = a->valuedouble;
    if (a && !(cJSON_IsNumber(a) && ax == floor(ax) && ax >= -4 && ax <= 3))
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "axis: expected one integer from -4 "
                              "to 3");
    nd->axis = (int)ax;
    nd->eps = (float)eps;
    nd->momentum = (float)(1.0 - mom); /* Keras's momentum weighs the old value */
    return GF_OK;
}

static const struct { const char *cls; tj_kind kind; } classes[] = {
    {"InputLayer", TJ_INPUT}, {"Conv2D", TJ_CONV}, {"DepthwiseConv2D", TJ_DWCONV},
    {"SeparableConv2D", TJ_SEPCONV}, {"Dense", TJ_DENSE}, {"BatchNormalization", TJ_BN},
    {"ReLU", TJ_ACT}, {"LeakyReLU", TJ_ACT}, {"Activation", TJ_ACT}, {"Softmax", TJ_ACT},
    {"ZeroPadding2D", TJ_ZEROPAD}, {"Add", TJ_ADD}, {"Concatenate", TJ_CONCAT},
    {"MaxPooling2D", TJ_MAXPOOL}, {"AveragePooling2D", TJ_AVGPOOL},
    {"GlobalAveragePooling2D", TJ_GAP}, {"GlobalMaxPooling2D", TJ_GMP}, {"Flatten", TJ_FLATTEN},
    {"Dropout", TJ_DROPOUT}, {"Reshape", TJ_RESHAPE}};

gf_status tj_layer_settings(gf_ctx *ctx, tj_node *nd, const cJSON *cfg, const char *label) {
    size_t i = 0, n = sizeof classes / sizeof *classes;
    while (i < n && strcmp(nd->cls, classes[i].cls) != 0) i++;
    if (i == n)
        return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "class not supported (supported: "
                              "Conv2D, DepthwiseConv2D, SeparableConv2D, Dense, "
                              "BatchNormalization, ReLU, LeakyReLU, Activation, Softmax, "
                              "ZeroPadding2D, Add, Concatenate, MaxPooling2D, AveragePooling2D, "
                              "GlobalAveragePooling2D, GlobalMaxPooling2D, Flatten, Dropout, "
                              "Reshape, InputLayer)");
    nd->kind = classes[i].kind;
    switch (nd->kind) {
    case TJ_INPUT: return input_settings(ctx, nd, cfg, label);
    case TJ_CONV:
    case TJ_DWCONV:
    case TJ_SEPCONV: return conv_settings(ctx, nd, cfg, label);
    case TJ_DENSE:
        if (!int_in(cJSON_GetObjectItemCaseSensitive(cfg, "units"), 1, INT32_MAX, &nd->units))
            return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "units: expected an integer >= 1");
        if (get_bool(ctx, nd, cfg, "use_bias", true, &nd->bias, label) != GF_OK)
            return gf_ctx_status(ctx);
        return set_act(ctx, nd, get_str(cfg, "activation", "linear"), label);
    case TJ_BN: return bn_settings(ctx, nd, cfg, label);
    case TJ_ACT:
        if (strcmp(nd->cls, "Activation") == 0)
            return set_act(ctx, nd, get_str(cfg, "activation", NULL), label);
        if (strcmp(nd->cls, "Softmax") == 0) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(cfg, "axis");
            if (a && !cJSON_IsNull(a) && !(cJSON_IsNumber(a) && a->valuedouble == -1))
                return tj_layer_error(ctx, GF_ERR_FORMAT, label, nd, "axis: only -1 is supported");
            nd->act = TJ_A_SOFTMAX;
            return GF_OK;
        }
        return relu_settings(ctx, nd, cfg, label);
    case TJ_ZEROPAD: return zeropad_settings(ctx, nd, cfg, label);
    default: return misc_settings(ctx, nd, cfg, label);
    }
}
