/* Case runners for the attention ops (fixtures/ops_attention.json, written by
 * fixtures/gen_attention.py). Params: "lengths" (key lengths per example, optional),
 * "causal", "scale" (0: 1 / sqrt(head size)); multi_head_attention also "num_heads" and
 * "batch_first". To add a case, add it to the generator and rerun it. */
#include "harness.h"

#include <string.h>

/* params' key lengths as an int64 arena tensor, or NULL when absent. */
static gf_tensor *key_lengths(gf_ctx *c, const cJSON *p) {
    int64_t v[GF_MAX_DIMS * 4];
    int n = case_i64s(p, "lengths", v, (int)(sizeof v / sizeof v[0]));
    if (n == 0) return NULL;
    int64_t shape = n;
    gf_tensor *t = gf_empty(c, GF_I64, 1, &shape);
    if (t) memcpy(t->data, v, sizeof(int64_t) * (size_t)n);
    return t;
}

static gf_attention_params params_of(gf_ctx *c, const cJSON *p) {
    gf_attention_params ap = gf_attention_default_params();
    ap.key_lengths = key_lengths(c, p);
    ap.causal = case_bool(p, "causal", false);
    ap.scale = (float)case_num(p, "scale", 0.0);
    return ap;
}

/* inputs: q, k, v. */
static int run_sdpa(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)m;
    if (n != 3) return -1;
    gf_attention_params ap = params_of(c, p);
    out[0] = gf_scaled_dot_product_attention(c, in[0], in[1], in[2], &ap, NULL);
    return out[0] ? 1 : -1;
}

static int run_mha(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)m;
    if (n != 3) return -1;
    gf_attention_params ap = params_of(c, p);
    out[0] = gf_multi_head_attention(c, in[0], in[1], in[2], case_int(p, "num_heads", 1),
                                     case_bool(p, "batch_first", true), &ap, NULL);
    return out[0] ? 1 : -1;
}

const gf_case_op gf_cases_attention[] = {
    {"scaled_dot_product_attention", run_sdpa, 0},
    {"multi_head_attention", run_mha, 0},
    {NULL, NULL, 0},
};
