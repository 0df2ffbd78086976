/* Case runners for normalisation, dropout, embedding and losses (fixtures/ops_norm.json,
 * written by fixtures/gen_norm.py). To add a case, add it to the generator with the params
 * these runners read and rerun it; a new op also needs a line in the table at the end. */
#include "harness.h"

static int one(gf_tensor *t, gf_tensor **out) {
    out[0] = t;
    return t ? 1 : -1;
}

/* An arena copy of a fixture input, so an op that updates it in place (running statistics)
 * leaves the fixture's values for the next evaluation. */
static gf_tensor *clone(gf_ctx *c, const gf_tensor *t) {
    gf_tensor *r = gf_empty(c, t->dtype, t->ndim, t->shape);
    if (r) gf_copy_out(t, r->data);
    return r;
}

/* inputs: x, [weight], [bias], [running_mean, running_var] as the params say. Outputs: y and,
 * with running statistics, their values after the call. */
static int run_batch_norm(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out,
                          int m) {
    if (m < 3) return -1;
    int k = 1;
    gf_tensor *w = case_bool(p, "has_w", true) ? in[k++] : NULL;
    gf_tensor *b = case_bool(p, "has_b", true) ? in[k++] : NULL;
    gf_tensor *rm = NULL, *rv = NULL;
    if (case_bool(p, "stats", true)) {
        if (k + 2 > n) return -1;
        rm = clone(c, in[k++]);
        rv = clone(c, in[k++]);
        if (!rm || !rv) return -1;
    }
    if (k != n) return -1;
    gf_tensor *y = gf_batch_norm(c, in[0], w, b, rm, rv, case_bool(p, "training", true),
                                 (float)case_num(p, "momentum", 0.1), (float)case_num(p, "eps", 1e-5));
    if (!y) return -1;
    out[0] = y;
    if (!rm) return 1;
    out[1] = rm;
    out[2] = rv;
    return 3;
}

static int run_layer_norm(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out,
                          int m) {
    (void)m;
    int k = 1;
    gf_tensor *w = case_bool(p, "has_w", true) ? in[k++] : NULL;
    gf_tensor *b = case_bool(p, "has_b", true) ? in[k++] : NULL;
    if (k != n) return -1;
    return one(gf_layer_norm(c, in[0], case_int(p, "n_axes", 1), w, b,
                             (float)case_num(p, "eps", 1e-5)),
               out);
}

static int run_dropout(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out,
                       int m) {
    (void)n, (void)m;
    return one(gf_dropout(c, in[0], (float)case_num(p, "p", 0.5), case_bool(p, "training", true)),
               out);
}

static int run_embedding(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out,
                         int m) {
    (void)n, (void)m;
    return one(gf_embedding(c, in[0], in[1], case_int(p, "padding_idx", -1)), out);
}

static int run_cross_entropy(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out,
                             int m) {
    (void)n, (void)m;
    gf_tensor *x = in[0];
    int perm[GF_MAX_DIMS];
    if (case_ints(p, "perm", perm, x->ndim) == x->ndim) x = gf_permute(c, x, perm);
    return one(gf_cross_entropy(c, x, in[1], (gf_reduction)case_int(p, "reduction", 1),
                                case_int(p, "ignore_index", -100)),
               out);
}

static int run_mse_loss(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out,
                        int m) {
    (void)n, (void)m;
    return one(gf_mse_loss(c, in[0], in[1], (gf_reduction)case_int(p, "reduction", 1)), out);
}

const gf_case_op gf_cases_norm[] = {
    {"batch_norm", run_batch_norm, 0},       {"layer_norm", run_layer_norm, 0},
    {"dropout", run_dropout, 0},             {"embedding", run_embedding, 0},
    {"cross_entropy", run_cross_entropy, 0}, {"mse_loss", run_mse_loss, 0},
    {NULL, NULL, 0},
};
