/* Model specs, part 2: the settings of a layer (keys, aliases, value kinds and ranges) and the
 * builder of each leaf layer type, with the type table. */
#define _POSIX_C_SOURCE 200809L
#include "spec_internal.h"

#include "io/io_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names, keys and values ------------------------------------------------------------- */

/* "Max_Pool2d" -> "maxpool2d". */
void spec_normalize_type(const char *in, char *out, size_t cap) {
    size_t k = 0;
    for (; *in && k + 1 < cap; in++)
        if (*in != '_' && *in != '-' && *in != ' ') out[k++] = (char)tolower((unsigned char)*in);
    out[k] = '\0';
}

static const char *const aliases[][2] = {
    {"in_features", "in"},   {"in_channels", "in"},     {"inplanes", "in"},
    {"out_features", "out"}, {"out_channels", "out"},   {"planes", "out"},
    {"kernel_size", "kernel"}, {"num_features", "features"}, {"normalized_shape", "shape"},
    {"output_size", "output"},
};

const char *spec_canonical_key(const char *k) {
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(k, aliases[i][0]) == 0) return aliases[i][1];
    return k;
}

const char *spec_show_path(const char *path) { return path[0] ? path : "(root)"; }


gf_module *spec_fail(spec_state *s, const char *path, const char *type, const char *fmt, ...) {
    if (gf_ctx_status(s->ctx) != GF_OK) return NULL;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (type)
        gf_ctx_set_error(s->ctx, GF_ERR_INVALID, "%s: at %s (%s): %s", s->label, spec_show_path(path),
                         type, msg);
    else
        gf_ctx_set_error(s->ctx, GF_ERR_INVALID, "%s: at %s: %s", s->label, spec_show_path(path), msg);
    return NULL;
}

/* The value under canonical key `key` (aliases included), or NULL. */
const cJSON *spec_get(const cJSON *node, const char *key) {
    for (const cJSON *c = node->child; c; c = c->next)
        if (strcmp(spec_canonical_key(c->string), key) == 0) return c;
    return NULL;
}

/* Every key of node must be "type" or one of the comma-separated canonical keys in allowed
 * (or, at the root, "input"); none may appear twice, also through an alias. */
bool spec_check_keys(spec_state *s, const cJSON *node, const char *path, const char *type,
                       const char *allowed, bool root) {
    for (const cJSON *c = node->child; c; c = c->next) {
        const char *k = spec_canonical_key(c->string);
        bool ok = strcmp(k, "type") == 0 || (root && strcmp(k, "input") == 0);
        if (!ok && allowed[0]) {
            size_t n = strlen(k);
            for (const char *a = allowed; *a;) {
                const char *e = strchr(a, ',');
                size_t len = e ? (size_t)(e - a) : strlen(a);
                if (len == n && strncmp(a, k, n) == 0) ok = true;
                a += len + (e ? 1 : 0);
            }
        }
        if (!ok) {
            spec_fail(s, path, type, "unknown key \"%s\" (%s takes: %s%s)", c->string, type,
                      allowed[0] ? allowed : "no settings", root ? "; the root also \"input\"" : "");
            return false;
        }
        for (const cJSON *d = node->child; d != c; d = d->next)
            if (strcmp(spec_canonical_key(d->string), k) == 0) {
                spec_fail(s, path, type, "key \"%s\" given twice (as \"%s\" and \"%s\")", k,
                          d->string, c->string);
                return false;
            }
    }
    return true;
}

/* An integer setting in [lo, hi]; absent: def (def < lo means "required"). */
bool spec_get_int(spec_state *s, const cJSON *node, const char *key, int64_t def, int64_t lo,
                  int64_t hi, const char *path, const char *type, int64_t *out) {
    const cJSON *v = spec_get(node, key);
    if (!v) {
        if (def < lo) {
            spec_fail(s, path, type, "\"%s\" is missing", key);
            return false;
        }
        *out = def;
        return true;
    }
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || d != floor(d) || d < (double)lo || d > (double)hi) {
        char *txt = cJSON_PrintUnformatted(v);
        spec_fail(s, path, type, "\"%s\" must be a whole number in [%lld, %lld], not %s", key,
                  (long long)lo, (long long)hi, txt ? txt : "?");
        cJSON_free(txt);
        return false;
    }
    *out = (int64_t)d;
    return true;
}

/* An int or a [a, b] pair; absent: (def, def) (def < lo: required). */
static bool get_pair(spec_state *s, const cJSON *node, const char *key, int64_t def, int64_t lo,
                     int64_t hi, const char *path, const char *type, int out[2]) {
    const cJSON *v = spec_get(node, key);
    if (v && cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) != 2) {
            spec_fail(s, path, type, "\"%s\" must be a number or a list of two", key);
            return false;
        }
        for (int i = 0; i < 2; i++) {
            const cJSON *e = cJSON_GetArrayItem(v, i);
            double d = e->valuedouble;
            if (!cJSON_IsNumber(e) || d != floor(d) || d < (double)lo || d > (double)hi) {
                spec_fail(s, path, type, "\"%s\"[%d] must be a whole number in [%lld, %lld]", key,
                          i, (long long)lo, (long long)hi);
                return false;
            }
            out[i] = (int)d;
        }
        return true;
    }
    int64_t x;
    if (!spec_get_int(s, node, key, def, lo, hi, path, type, &x)) return false;
    out[0] = out[1] = (int)x;
    return true;
}

bool spec_get_out(spec_state *s, const cJSON *node, int64_t hi, const char *path,
                  const char *type, int64_t *out) {
    const cJSON *v = spec_get(node, "out");
    if (!v || !cJSON_IsString(v)) return spec_get_int(s, node, "out", 0, 1, hi, path, type, out);
    if (strcmp(v->valuestring, "classes") != 0) {
        spec_fail(s, path, type, "\"out\" must be a whole number or \"classes\", not \"%.40s\"",
                  v->valuestring);
        return false;
    }
    s->uses_classes = true;
    if (s->n_classes <= 0) {
        spec_fail(s, path, type, "\"out\" is \"classes\", the class count of the data, which is "
                  "not known here");
        return false;
    }
    if (s->n_classes > hi) {
        spec_fail(s, path, type, "\"out\" is \"classes\": %lld, more than %lld",
                  (long long)s->n_classes, (long long)hi);
        return false;
    }
    *out = s->n_classes;
    return true;
}

bool spec_get_vocab(spec_state *s, const cJSON *node, int64_t lo, int64_t hi, const char *path,
                    const char *type, int64_t *out) {
    const cJSON *v = spec_get(node, "num_embeddings");
    if (v && !cJSON_IsString(v)) return spec_get_int(s, node, "num_embeddings", 0, lo, hi, path, type, out);
    if (v && strcmp(v->valuestring, "vocab") != 0) {
        spec_fail(s, path, type, "\"num_embeddings\" must be a whole number or \"vocab\", not "
                  "\"%.40s\"", v->valuestring);
        return false;
    }
    if (s->vocab_size <= 0) {
        spec_fail(s, path, type, "\"num_embeddings\" is %s: the vocabulary size of text data, "
                  "which is not known here; give a number", v ? "\"vocab\"" : "left out");
        return false;
    }
    if (s->vocab_size < lo || s->vocab_size > hi) {
        spec_fail(s, path, type, "\"num_embeddings\" is the vocabulary size %lld, outside "
                  "[%lld, %lld]", (long long)s->vocab_size, (long long)lo, (long long)hi);
        return false;
    }
    *out = s->vocab_size;
    return true;
}

bool spec_get_choice(spec_state *s, const cJSON *node, const char *key, const char *choices,
                     const char *path, const char *type, int *out) {
    const cJSON *v = spec_get(node, key);
    *out = 0;
    if (!v) return true;
    if (cJSON_IsString(v)) {
        size_t len = strlen(v->valuestring);
        int i = 0;
        for (const char *c = choices; *c; i++) {
            const char *e = strchr(c, ',');
            size_t cl = e ? (size_t)(e - c) : strlen(c);
            if (cl == len && strncmp(c, v->valuestring, len) == 0) {
                *out = i;
                return true;
            }
            c += cl + (e ? 1 : 0);
        }
    }
    spec_fail(s, path, type, "\"%s\" must be one of: %s", key, choices);
    return false;
}

bool spec_get_bool(spec_state *s, const cJSON *node, const char *key, bool def,
                   const char *path, const char *type, bool *out) {
    const cJSON *v = spec_get(node, key);
    if (!v) {
        *out = def;
        return true;
    }
    if (!cJSON_IsBool(v)) {
        spec_fail(s, path, type, "\"%s\" must be true or false", key);
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

bool spec_get_float(spec_state *s, const cJSON *node, const char *key, double def, double lo,
                    double hi, const char *path, const char *type, float *out) {
    const cJSON *v = spec_get(node, key);
    if (!v) {
        *out = (float)def;
        return true;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi)) {
        spec_fail(s, path, type, "\"%s\" must be a number in [%g, %g]", key, lo, hi);
        return false;
    }
    *out = (float)v->valuedouble;
    return true;
}

/* ---- shapes -------------------------------------------------------------------------------- */

void spec_shape_str(const shape *sh, bool batch, char *buf, size_t cap) {
    int64_t d[GF_MAX_DIMS + 1];
    int n = 0;
    if (batch) d[n++] = 2;
    for (int i = 0; i < sh->ndim && n <= GF_MAX_DIMS; i++) d[n++] = sh->d[i];
    gf_dims_str(n, d, buf, cap);
}

int64_t spec_mul(int64_t a, int64_t b) {
    if (a <= 0 || b <= 0) return 0;
    return a > INT64_MAX / b ? INT64_MAX : a * b;
}

int64_t spec_add(int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; }

int64_t spec_numel(const shape *sh) {
    if (sh->ndim < 0) return -1;
    int64_t n = 1;
    for (int i = 0; i < sh->ndim; i++) n = spec_mul(n, sh->d[i]);
    return n;
}

bool spec_budget(spec_state *s, const char *path, const char *type, int64_t weights,
                 int64_t out_numel) {
    const gf_limits *lim = gf_ctx_limits(s->ctx);
    s->weights = spec_add(s->weights, weights);
    if (s->weights > lim->model_params) {
        spec_fail(s, path, type,
                  "the model reaches %lld parameters here (this layer: %lld), more than the "
                  "limit of %lld " GF_LIMIT_HINT("params"),
                  (long long)s->weights, (long long)weights, (long long)lim->model_params);
        return false;
    }
    if (out_numel > lim->model_activation) {
        spec_fail(s, path, type,
                  "its output holds %lld values per example, more than the limit of %lld "
                  GF_LIMIT_HINT("activation"),
                  (long long)out_numel, (long long)lim->model_activation);
        return false;
    }
    return true;
}

/* Output size of a convolution or pooling axis; 0 when the window does not fit. */
static int64_t window_out(int64_t in, int k, int stride, int pad, int dil) {
    int64_t span = (int64_t)dil * (k - 1) + 1, room = in + 2 * (int64_t)pad;
    return room < span || stride < 1 ? 0 : (room - span) / stride + 1;
}

/* The sample size a left-out "in" takes: the channel axis (first sample dimension) for
 * convolutions and norms, the last one for Linear. */
static bool infer_in(spec_state *s, const cJSON *node, const char *key, const shape *cur,
                     bool last_axis, int min_ndim, const char *path, const char *type,
                     int64_t *out) {
    if (spec_get(node, key)) return spec_get_int(s, node, key, 0, 1, INT64_C(1) << 40, path, type, out);
    if (cur->ndim < 0) {
        spec_fail(s, path, type,
                  "\"%s\" is missing (give it, or give the model an input shape so it can be "
                  "inferred)", key);
        return false;
    }
    if (cur->ndim < min_ndim) {
        char sh[96];
        spec_shape_str(cur, true, sh, sizeof sh);
        spec_fail(s, path, type, "cannot infer \"%s\" from the input %s", key, sh);
        return false;
    }
    *out = last_axis ? cur->d[cur->ndim - 1] : cur->d[0];
    return true;
}

/* ---- leaf layers ------------------------------------------------------------------------------ */

static gf_module *b_linear(spec_state *s, const cJSON *n, const char *path, const char *type,
                           const shape *cur) {
    int64_t in, out;
    bool bias;
    if (!infer_in(s, n, "in", cur, true, 1, path, type, &in) ||
        !spec_get_out(s, n, INT64_C(1) << 40, path, type, &out) ||
        !spec_get_bool(s, n, "bias", true, path, type, &bias))
        return NULL;
    snprintf(s->expect, sizeof s->expect, "[N, ..., %lld]", (long long)in);
    int64_t rows = cur->ndim >= 1 && cur->d[cur->ndim - 1] > 0 ? spec_numel(cur) / cur->d[cur->ndim - 1] : -1;
    if (!spec_budget(s, path, type, spec_mul(in + bias, out), rows < 0 ? -1 : spec_mul(rows, out)))
        return NULL;
    return gf_nn_linear(s->ctx, s->rng, in, out, bias);
}

static gf_module *b_conv(spec_state *s, const cJSON *n, const char *path, const char *type,
                         const shape *cur) {
    bool two = strcmp(type, "conv2d") == 0;
    int64_t in, out, groups;
    int k[2], st[2], pad[2], dil[2];
    bool bias;
    if (!infer_in(s, n, "in", cur, false, two ? 3 : 2, path, type, &in) ||
        !spec_get_out(s, n, INT64_C(1) << 30, path, type, &out) ||
        !get_pair(s, n, "kernel", 0, 1, 1 << 16, path, type, k) ||
        !get_pair(s, n, "stride", 1, 1, 1 << 16, path, type, st) ||
        !get_pair(s, n, "padding", 0, 0, 1 << 16, path, type, pad) ||
        !get_pair(s, n, "dilation", 1, 1, 1 << 16, path, type, dil) ||
        !spec_get_int(s, n, "groups", 1, 1, INT64_C(1) << 30, path, type, &groups) ||
        !spec_get_bool(s, n, "bias", true, path, type, &bias))
        return NULL;
    gf_conv_params cp = gf_conv_default_params();
    for (int i = 0; i < 2; i++) {
        cp.stride[i] = st[i];
        cp.padding[i] = pad[i];
        cp.dilation[i] = dil[i];
    }
    cp.groups = (int)groups;
    snprintf(s->expect, sizeof s->expect, two ? "[N, %lld, H, W]" : "[N, %lld, L]", (long long)in);
    int64_t taps = spec_mul(in / groups > 0 ? in / groups : 1, two ? spec_mul(k[0], k[1]) : k[0]);
    int64_t act = -1; /* out x the output's spatial size, when the input's is known */
    if (cur->ndim == (two ? 3 : 2)) {
        act = spec_mul(out, window_out(cur->d[1], k[0], st[0], pad[0], dil[0]));
        if (two) act = spec_mul(act, window_out(cur->d[2], k[1], st[1], pad[1], dil[1]));
    }
    if (!spec_budget(s, path, type, spec_mul(out, taps + bias), act)) return NULL;
    return two ? gf_nn_conv2d(s->ctx, s->rng, in, out, k[0], k[1], &cp, bias)
               : gf_nn_conv1d(s->ctx, s->rng, in, out, k[0], &cp, bias);
}

static gf_module *b_batchnorm(spec_state *s, const cJSON *n, const char *path, const char *type,
                              const shape *cur) {
    bool two = strcmp(type, "batchnorm2d") == 0;
    int64_t f;
    gf_bn_params bp = gf_bn_default_params();
    if (!infer_in(s, n, "features", cur, false, 1, path, type, &f) ||
        !spec_get_float(s, n, "eps", bp.eps, 0, 1e3, path, type, &bp.eps) ||
        !spec_get_float(s, n, "momentum", bp.momentum, -1, 1, path, type, &bp.momentum) ||
        !spec_get_bool(s, n, "affine", true, path, type, &bp.affine) ||
        !spec_get_bool(s, n, "track_running_stats", true, path, type, &bp.track_running_stats))
        return NULL;
    snprintf(s->expect, sizeof s->expect, two ? "[N, %lld, H, W]" : "[N, %lld] or [N, %lld, L]",
             (long long)f, (long long)f);
    /* weight, bias, running mean and variance */
    if (!spec_budget(s, path, type, spec_mul(f, 2 * bp.affine + 2 * bp.track_running_stats), -1))
        return NULL;
    return two ? gf_nn_batch_norm2d(s->ctx, f, &bp) : gf_nn_batch_norm1d(s->ctx, f, &bp);
}

static gf_module *b_layernorm(spec_state *s, const cJSON *n, const char *path, const char *type,
                              const shape *cur) {
    (void)cur;
    int64_t dims[GF_MAX_DIMS];
    int nd = 0;
    const cJSON *v = spec_get(n, "shape");
    if (!v) return spec_fail(s, path, type, "\"shape\" is missing");
    if (cJSON_IsArray(v)) {
        nd = cJSON_GetArraySize(v);
        if (nd < 1 || nd > GF_MAX_DIMS - 1) return spec_fail(s, path, type, "\"shape\" must list 1 to 7 sizes");
        for (int i = 0; i < nd; i++) {
            const cJSON *e = cJSON_GetArrayItem(v, i);
            /* bounded before the conversion: a double beyond int64 is undefined behaviour */
            if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > 1099511627776.0 ||
                e->valuedouble != floor(e->valuedouble))
                return spec_fail(s, path, type, "\"shape\"[%d] must be a whole number in [1, 2^40]", i);
            dims[i] = (int64_t)e->valuedouble;
        }
    } else {
        int64_t x;
        if (!spec_get_int(s, n, "shape", 0, 1, INT64_C(1) << 40, path, type, &x)) return NULL;
        dims[nd++] = x;
    }
    float eps;
    bool aff;
    if (!spec_get_float(s, n, "eps", 1e-5, 0, 1e3, path, type, &eps) ||
        !spec_get_bool(s, n, "elementwise_affine", true, path, type, &aff))
        return NULL;
    char sh[80];
    gf_dims_str(nd, dims, sh, sizeof sh);
    snprintf(s->expect, sizeof s->expect, "[N, ..., %s", sh + 1);
    int64_t norm = 1;
    for (int i = 0; i < nd; i++) norm = spec_mul(norm, dims[i]);
    if (!spec_budget(s, path, type, aff ? spec_mul(norm, 2) : 0, -1)) return NULL;
    return gf_nn_layer_norm(s->ctx, nd, dims, eps, aff);
}

static gf_module *b_dropout(spec_state *s, const cJSON *n, const char *path, const char *type,
                            const shape *cur) {
    (void)cur;
    float p;
    if (!spec_get_float(s, n, "p", 0.5, 0, 1, path, type, &p)) return NULL;
    return gf_nn_dropout(s->ctx, p);
}

static gf_module *b_pool(spec_state *s, const cJSON *n, const char *path, const char *type,
                         const shape *cur) {
    int k[2], st[2], pad[2];
    if (!get_pair(s, n, "kernel", 0, 1, 1 << 16, path, type, k) ||
        !get_pair(s, n, "stride", 0, 0, 1 << 16, path, type, st) ||
        !get_pair(s, n, "padding", 0, 0, 1 << 16, path, type, pad))
        return NULL;
    gf_pool_params pp = gf_pool_default_params(k[0]);
    for (int i = 0; i < 2; i++) {
        pp.kernel[i] = k[i];
        pp.stride[i] = st[i] ? st[i] : k[i];
        pp.padding[i] = pad[i];
    }
    snprintf(s->expect, sizeof s->expect, "[N, C, H, W] with H >= %d, W >= %d", k[0] - 2 * pad[0],
             k[1] - 2 * pad[1]);
    if (cur->ndim == 3 &&
        !spec_budget(s, path, type, 0,
                     spec_mul(cur->d[0], spec_mul(window_out(cur->d[1], k[0], pp.stride[0], pad[0], 1),
                                                  window_out(cur->d[2], k[1], pp.stride[1], pad[1], 1)))))
        return NULL;
    return strcmp(type, "maxpool2d") == 0 ? gf_nn_max_pool2d(s->ctx, &pp)
                                          : gf_nn_avg_pool2d(s->ctx, &pp);
}

static gf_module *b_adaptive(spec_state *s, const cJSON *n, const char *path, const char *type,
                             const shape *cur) {
    int o[2];
    if (!get_pair(s, n, "output", 0, 1, 1 << 16, path, type, o)) return NULL;
    snprintf(s->expect, sizeof s->expect, "[N, C, H, W]");
    if (cur->ndim == 3 && !spec_budget(s, path, type, 0, spec_mul(cur->d[0], spec_mul(o[0], o[1]))))
        return NULL;
    return gf_nn_adaptive_avg_pool2d(s->ctx, o[0], o[1]);
}

static gf_module *b_flatten(spec_state *s, const cJSON *n, const char *path, const char *type,
                            const shape *cur) {
    (void)cur;
    int64_t a, b;
    if (!spec_get_int(s, n, "start_dim", 1, -GF_MAX_DIMS, GF_MAX_DIMS - 1, path, type, &a) ||
        !spec_get_int(s, n, "end_dim", -1, -GF_MAX_DIMS, GF_MAX_DIMS - 1, path, type, &b))
        return NULL;
    return gf_nn_flatten(s->ctx, (int)a, (int)b);
}

static gf_module *b_simple(spec_state *s, const cJSON *n, const char *path, const char *type,
                           const shape *cur) {
    (void)n, (void)path, (void)cur;
    if (strcmp(type, "identity") == 0) return gf_nn_identity(s->ctx);
    if (strcmp(type, "relu") == 0) return gf_nn_relu(s->ctx);
    if (strcmp(type, "silu") == 0) return gf_nn_silu(s->ctx);
    if (strcmp(type, "sigmoid") == 0) return gf_nn_sigmoid(s->ctx);
    return gf_nn_tanh(s->ctx);
}

static gf_module *b_param_act(spec_state *s, const cJSON *n, const char *path, const char *type,
                              const shape *cur) {
    (void)cur;
    float a, b;
    if (strcmp(type, "leakyrelu") == 0)
        return spec_get_float(s, n, "negative_slope", 0.01, -1e6, 1e6, path, type, &a)
                   ? gf_nn_leaky_relu(s->ctx, a) : NULL;
    if (strcmp(type, "elu") == 0)
        return spec_get_float(s, n, "alpha", 1.0, -1e6, 1e6, path, type, &a) ? gf_nn_elu(s->ctx, a)
                                                                          : NULL;
    if (strcmp(type, "softplus") == 0)
        return spec_get_float(s, n, "beta", 1.0, 1e-6, 1e6, path, type, &a) &&
                       spec_get_float(s, n, "threshold", 20.0, 0, 1e6, path, type, &b)
                   ? gf_nn_softplus(s->ctx, a, b) : NULL;
    if (strcmp(type, "gelu") == 0) {
        const cJSON *v = spec_get(n, "approximate");
        gf_gelu_approx g = GF_GELU_EXACT;
        if (v) {
            if (cJSON_IsString(v) && strcmp(v->valuestring, "none") == 0) g = GF_GELU_EXACT;
            else if (cJSON_IsString(v) && strcmp(v->valuestring, "tanh") == 0) g = GF_GELU_TANH;
            else return spec_fail(s, path, type, "\"approximate\" must be \"none\" or \"tanh\"");
        }
        return gf_nn_gelu(s->ctx, g);
    }
    int64_t dim; /* softmax, logsoftmax */
    if (!spec_get_int(s, n, "dim", 1, -GF_MAX_DIMS, GF_MAX_DIMS - 1, path, type, &dim)) return NULL;
    return strcmp(type, "softmax") == 0 ? gf_nn_softmax(s->ctx, (int)dim)
                                        : gf_nn_log_softmax(s->ctx, (int)dim);
}

static gf_module *b_basicblock(spec_state *s, const cJSON *n, const char *path, const char *type,
                               const shape *cur) {
    int64_t in, out, stride;
    if (!infer_in(s, n, "in", cur, false, 3, path, type, &in) ||
        !spec_get_out(s, n, INT64_C(1) << 30, path, type, &out) ||
        !spec_get_int(s, n, "stride", 1, 1, 1 << 16, path, type, &stride))
        return NULL;
    snprintf(s->expect, sizeof s->expect, "[N, %lld, H, W]", (long long)in);
    /* two 3x3 convolutions and their BatchNorms, a 1x1 projection when the shape changes */
    int64_t w = spec_add(spec_mul(out, spec_mul(in + out, 9)), spec_mul(out, 8));
    if (stride != 1 || in != out) w = spec_add(w, spec_mul(out, in + 4));
    int64_t act = -1;
    if (cur->ndim == 3)
        act = spec_mul(out, spec_mul(window_out(cur->d[1], 3, (int)stride, 1, 1),
                                     window_out(cur->d[2], 3, (int)stride, 1, 1)));
    if (!spec_budget(s, path, type, w, act)) return NULL;
    return gf_nn_basic_block(s->ctx, s->rng, in, out, (int)stride);
}

static gf_module *b_bottleneck(spec_state *s, const cJSON *n, const char *path, const char *type,
                               const shape *cur) {
    int64_t in, planes, stride;
    if (!infer_in(s, n, "in", cur, false, 3, path, type, &in) ||
        !spec_get_int(s, n, "out", 0, 1, INT64_C(1) << 30, path, type, &planes) ||
        !spec_get_int(s, n, "stride", 1, 1, 1 << 16, path, type, &stride))
        return NULL;
    snprintf(s->expect, sizeof s->expect, "[N, %lld, H, W]", (long long)in);
    /* "out" is torchvision's planes: the block gives 4 * planes channels. 1x1, 3x3 and 1x1
     * convolutions, three BatchNorms (4 values a channel), a 1x1 projection when the shape
     * changes */
    const int64_t out = planes * GF_BOTTLENECK_EXPANSION;
    int64_t w = spec_add(spec_mul(planes, spec_add(in, spec_add(spec_mul(planes, 9), out))),
                         spec_mul(4, spec_add(spec_mul(planes, 2), out)));
    if (stride != 1 || in != out) w = spec_add(w, spec_mul(out, in + 4));
    int64_t act = -1;
    if (cur->ndim == 3) {
        /* the widest of conv1's output at the input size and the block's output */
        int64_t mid = spec_mul(planes, spec_mul(cur->d[1], cur->d[2]));
        act = spec_mul(out, spec_mul(window_out(cur->d[1], 3, (int)stride, 1, 1),
                                     window_out(cur->d[2], 3, (int)stride, 1, 1)));
        if (mid > act) act = mid;
    }
    if (!spec_budget(s, path, type, w, act)) return NULL;
    return gf_nn_bottleneck(s->ctx, s->rng, in, planes, (int)stride);
}

/* ---- the type table ------------------------------------------------------------------------- */

static const type_def types[] = {
    {"linear", "in,out,bias", b_linear},
    {"conv2d", "in,out,kernel,stride,padding,dilation,groups,bias", b_conv},
    {"conv1d", "in,out,kernel,stride,padding,dilation,groups,bias", b_conv},
    {"batchnorm1d", "features,eps,momentum,affine,track_running_stats", b_batchnorm},
    {"batchnorm2d", "features,eps,momentum,affine,track_running_stats", b_batchnorm},
    {"layernorm", "shape,eps,elementwise_affine", b_layernorm},
    {"dropout", "p", b_dropout},
    {"maxpool2d", "kernel,stride,padding", b_pool},
    {"avgpool2d", "kernel,stride,padding", b_pool},
    {"adaptiveavgpool2d", "output", b_adaptive},
    {"flatten", "start_dim,end_dim", b_flatten},
    {"identity", "", b_simple},
    {"relu", "", b_simple},
    {"silu", "", b_simple},
    {"sigmoid", "", b_simple},
    {"tanh", "", b_simple},
    {"leakyrelu", "negative_slope", b_param_act},
    {"elu", "alpha", b_param_act},
    {"gelu", "approximate", b_param_act},
    {"softplus", "beta,threshold", b_param_act},
    {"softmax", "dim", b_param_act},
    {"logsoftmax", "dim", b_param_act},
    {"basicblock", "in,out,stride", b_basicblock},
    {"bottleneck", "in,out,stride", b_bottleneck},
    {"embedding", "num_embeddings,embedding_dim,padding_idx", spec_build_embedding},
    {"embeddingbag", "num_embeddings,embedding_dim,mode,padding_idx", spec_build_embedding_bag},
    {"lstm", "input_size,hidden_size,num_layers,bias,batch_first,dropout,bidirectional",
     spec_build_rnn},
    {"gru", "input_size,hidden_size,num_layers,bias,batch_first,dropout,bidirectional",
     spec_build_rnn},
    {"multiheadattention", "embed_dim,num_heads,dropout,bias,batch_first", spec_b_mha},
    {"transformerencoderlayer",
     "d_model,nhead,dim_feedforward,dropout,activation,layer_norm_eps,batch_first,norm_first,causal",
     spec_b_encoder_layer},
    {"transformerencoder",
     "d_model,nhead,dim_feedforward,dropout,activation,layer_norm_eps,batch_first,norm_first,causal,"
     "num_layers,norm",
     spec_b_encoder},
    {"positionalencoding", "d_model,dropout,max_len,kind,batch_first", spec_b_positional},
    {"seqpool", "mode,batch_first", spec_b_seqpool},
    {"textclassifier",
     "num_embeddings,d_model,nhead,dim_feedforward,dropout,activation,layer_norm_eps,batch_first,"
     "norm_first,causal,num_layers,positions,max_len,pool,out",
     spec_b_text_classifier},
    {"sequential", "children", NULL},
    {"container", "children,name", NULL},
};
#define N_TYPES (sizeof types / sizeof types[0])

static const char *const type_names[] = {
    "linear", "conv2d", "conv1d", "batchnorm1d", "batchnorm2d", "layernorm", "dropout",
    "maxpool2d", "avgpool2d", "adaptiveavgpool2d", "flatten", "identity", "relu", "silu",
    "sigmoid", "tanh", "leakyrelu", "elu", "gelu", "softplus", "softmax", "logsoftmax",
    "basicblock", "bottleneck", "embedding", "embeddingbag", "lstm", "gru", "multiheadattention",
    "transformerencoderlayer", "transformerencoder", "positionalencoding", "seqpool",
    "textclassifier", "sequential", "container", NULL};
_Static_assert(sizeof type_names / sizeof type_names[0] == N_TYPES + 1, "spec type name list");

const char *const *gf_spec_layer_types(void) { return type_names; }

const type_def *spec_find_type(const char *name) {
    for (size_t i = 0; i < N_TYPES; i++)
        if (strcmp(types[i].name, name) == 0) return &types[i];
    return NULL;
}

