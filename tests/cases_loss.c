/* Case runners for the losses of fixtures/ops_loss.json (written by fixtures/gen_loss.py) and
 * fixtures/ops_perstep.json (gen_perstep.py).
 * To add a case, add it to the generator with the params these runners read and rerun it; a
 * new op also needs a line in the table at the end. (mse_loss's runner is in cases_norm.c.) */
#include "harness.h"

static int one(gf_tensor *t, gf_tensor **out) {
    out[0] = t;
    return t ? 1 : -1;
}

static gf_reduction red_of(const cJSON *p) {
    return (gf_reduction)case_int(p, "reduction", GF_REDUCE_MEAN);
}

/* inputs: logits, target (int64 indices or float32 probabilities), [weight] */
static int run_cross_entropy_ex(gf_ctx *c, const cJSON *p, gf_tensor **in, int n,
                                gf_tensor **out, int m) {
    (void)m;
    gf_tensor *x = in[0];
    int perm[GF_MAX_DIMS];
    if (case_ints(p, "perm", perm, x->ndim) == x->ndim) x = gf_permute(c, x, perm);
    gf_ce_params cp = gf_ce_default_params();
    cp.reduction = red_of(p);
    cp.ignore_index = case_int(p, "ignore_index", -100);
    cp.label_smoothing = (float)case_num(p, "label_smoothing", 0.0);
    cp.weight = case_bool(p, "has_w", false) ? in[2] : NULL;
    if (n != (cp.weight ? 3 : 2)) return -1;
    return one(gf_cross_entropy_ex(c, x, in[1], &cp), out);
}

/* inputs: input, target, [weight] */
static int run_nll_loss(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out,
                        int m) {
    (void)m;
    gf_tensor *w = case_bool(p, "has_w", false) ? in[2] : NULL;
    if (n != (w ? 3 : 2)) return -1;
    return one(gf_nll_loss(c, in[0], in[1], w, red_of(p), case_int(p, "ignore_index", -100)),
               out);
}

static int run_l1_loss(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out,
                       int m) {
    (void)n, (void)m;
    return one(gf_l1_loss(c, in[0], in[1], red_of(p)), out);
}

static int run_smooth_l1_loss(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out,
                              int m) {
    (void)n, (void)m;
    return one(gf_smooth_l1_loss(c, in[0], in[1], red_of(p), (float)case_num(p, "beta", 1.0)), out);
}

static int run_huber_loss(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out,
                          int m) {
    (void)n, (void)m;
    return one(gf_huber_loss(c, in[0], in[1], red_of(p), (float)case_num(p, "delta", 1.0)), out);
}

/* inputs: input, target, [weight], [pos_weight] */
static int run_bce_with_logits(gf_ctx *c, const cJSON *p, gf_tensor **in, int n,
                               gf_tensor **out, int m) {
    (void)m;
    int k = 2;
    gf_tensor *w = case_bool(p, "has_w", false) ? in[k++] : NULL;
    gf_tensor *pw = case_bool(p, "has_pw", false) ? in[k++] : NULL;
    if (k != n) return -1;
    return one(gf_bce_with_logits(c, in[0], in[1], w, pw, red_of(p)), out);
}

static int run_kl_div(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out, int m) {
    (void)n, (void)m;
    return one(gf_kl_div(c, in[0], in[1], red_of(p), case_bool(p, "log_target", false)), out);
}

/* fixtures/ops_perstep.json (gen_perstep.py): the training loss of a sequence labeller,
 * logits [N, T, C] and labels [N, T] with padding -100, through gf_loss_compute.
 * inputs: logits, target */
static int run_loss_per_step(gf_ctx *c, const cJSON *p, gf_tensor **in, int n, gf_tensor **out,
                             int m) {
    (void)n, (void)m;
    gf_loss_spec l = gf_loss_default(GF_LOSS_CROSS_ENTROPY);
    l.label_smoothing = (float)case_num(p, "label_smoothing", 0.0);
    if (!gf_loss_per_step(in[0], in[1])) return -1;
    return one(gf_loss_compute(c, &l, in[0], in[1]), out);
}

const gf_case_op gf_cases_loss[] = {
    {"loss_per_step", run_loss_per_step, 0},
    {"cross_entropy_ex", run_cross_entropy_ex, 0},
    {"nll_loss", run_nll_loss, 0},
    {"l1_loss", run_l1_loss, 0},
    {"smooth_l1_loss", run_smooth_l1_loss, 0},
    {"huber_loss", run_huber_loss, 0},
    {"bce_with_logits", run_bce_with_logits, 0},
    {"kl_div", run_kl_div, 0},
    {NULL, NULL, 0},
};
