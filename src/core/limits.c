/* Limits on untrusted input (gf_limits): defaults, names for messages and command lines, and
 * the copy each context keeps. */
#include "core/internal.h"

#include <stdint.h>

static const char *const limit_names[] = {
    "params", "activation", "data-bytes", "gzip-ratio", "json-nodes", "json-depth",
    "header-bytes", "classes", NULL,
};

gf_limits gf_limits_default(void) {
    gf_limits l;
    l.model_params = INT64_C(1) << 28;     /* 1 GiB of float32 weights; VGG-16 has 138 M */
    l.model_activation = INT64_C(1) << 26; /* ResNet-50 at 224x224 peaks at 0.8 M per example */
    l.data_bytes = INT64_C(1) << 32;
    l.gzip_ratio = 100;                    /* MNIST's images inflate 4.8x, zeros 1000x */
    l.json_nodes = INT64_C(1) << 21;       /* about 190,000 tensors in a safetensors header */
    l.json_depth = 64;                     /* a safetensors header nests 3 deep */
    l.header_bytes = INT64_C(100000000);
    l.classes = 10000;
    return l;
}

const char *const *gf_limits_names(void) { return limit_names; }

/* The field behind name i of limit_names. */
static int64_t *field_of(gf_limits *l, int i) {
    int64_t *const f[] = {&l->model_params, &l->model_activation, &l->data_bytes,
                          &l->gzip_ratio, &l->json_nodes, &l->json_depth, &l->header_bytes,
                          &l->classes};
    return f[i];
}

bool gf_limits_set(gf_limits *l, const char *name, int64_t value) {
    if (!l || !name || value < 1) return false;
    for (int i = 0; limit_names[i]; i++) {
        const char *a = limit_names[i], *b = name;
        while (*a && (*a == *b || (*a == '-' && *b == '_'))) a++, b++;
        if (!*a && !*b) {
            *field_of(l, i) = value;
            return true;
        }
    }
    return false;
}

const gf_limits *gf_ctx_limits(const gf_ctx *ctx) { return &ctx->limits; }

void gf_ctx_set_limits(gf_ctx *ctx, const gf_limits *limits) {
    gf_limits d = gf_limits_default(), l = limits ? *limits : d;
    for (int i = 0; limit_names[i]; i++)
        if (*field_of(&l, i) <= 0) *field_of(&l, i) = *field_of(&d, i);
    ctx->limits = l;
}

bool gf_gzip_over_ratio(const gf_ctx *ctx, int64_t bytes, int64_t csize) {
    if (bytes <= GF_GZIP_RATIO_FLOOR || csize < 0) return false;
    return csize == 0 || (bytes - 1) / csize >= ctx->limits.gzip_ratio; /* > ratio * csize */
}
