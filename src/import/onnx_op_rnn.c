/* The recurrent ONNX ops RNN, GRU and LSTM: forward, reverse and bidirectional, both layouts
 * (opset 14), initial states, per-batch sequence lengths, LSTM peepholes, GRU's
 * linear_before_reset, clipping and the activation functions by name. Each step is recorded
 * graft ops (gf_linear, gf_sigmoid, gf_tanh, gf_mul, gf_where ...), so gradients flow through
 * time into the weights. */
#include "import/onnx_internal.h"

#include <string.h>

enum { RNN_PLAIN, RNN_GRU, RNN_LSTM };

typedef struct act {
    const char *name;
    float alpha, beta;
} act;

typedef struct rnn {
    int kind, gates, dirs;
    int64_t seq, batch, hidden;
    act f[2][3];      /* per direction: f, g, h */
    float clip;       /* 0: none */
    bool lbr;         /* GRU linear_before_reset */
    gf_tensor *lens;  /* int64 [batch] or NULL */
} rnn;

static gf_tensor *activate(ox_exec *e, const act *a, gf_tensor *x) {
    gf_ctx *c = e->ctx;
    const char *n = a->name;
    if (!strcmp(n, "Sigmoid")) return gf_sigmoid(c, x);
    if (!strcmp(n, "Tanh")) return gf_tanh(c, x);
    if (!strcmp(n, "Relu")) return gf_relu(c, x);
    if (!strcmp(n, "LeakyRelu")) return gf_leaky_relu(c, x, a->alpha);
    if (!strcmp(n, "HardSigmoid")) return gf_hardsigmoid(c, x, a->alpha, a->beta);
    if (!strcmp(n, "Elu")) return gf_elu(c, x, a->alpha);
    if (!strcmp(n, "Softsign")) return gf_unary(c, x, GF_FN_SOFTSIGN, 0, 0);
    if (!strcmp(n, "Softplus")) return gf_softplus(c, x, 1.0f, 20.0f);
    if (!strcmp(n, "Affine")) return gf_affine(c, x, a->alpha, a->beta);
    if (!strcmp(n, "ScaledTanh"))
        return gf_mul_scalar(c, gf_tanh(c, gf_mul_scalar(c, x, a->beta)), a->alpha);
    return ox_fail(e, GF_ERR_INVALID, "activation '%s' is not supported", n), NULL;
}

/* The activations attribute (names, with activation_alpha / activation_beta consumed in order
 * by the functions that take them), or the op's defaults. */
static bool read_acts(ox_exec *e, rnn *r) {
    static const char *const dflt[3][3] = {
        {"Tanh"}, {"Sigmoid", "Tanh"}, {"Sigmoid", "Tanh", "Tanh"}};
    const int per = r->kind == RNN_PLAIN ? 1 : r->kind == RNN_GRU ? 2 : 3;
    const ox_attr *names = ox_attr_get(e->node, "activations");
    const ox_attr *al = ox_attr_get(e->node, "activation_alpha"),
                  *be = ox_attr_get(e->node, "activation_beta");
    if (names && (names->type != OX_A_STRINGS || names->n != per * r->dirs))
        return ox_fail(e, GF_ERR_INVALID, "activations must name %d functions", per * r->dirs);
    int ia = 0, ib = 0;
    for (int d = 0; d < r->dirs; d++)
        for (int k = 0; k < per; k++) {
            act *a = &r->f[d][k];
            a->name = names ? names->strings[d * per + k] : dflt[r->kind][k];
            const char *n = a->name;
            bool takes_a = !strcmp(n, "LeakyRelu") || !strcmp(n, "HardSigmoid") ||
                !strcmp(n, "Elu") || !strcmp(n, "Affine") || !strcmp(n, "ScaledTanh");
            bool takes_b =
                !strcmp(n, "HardSigmoid") || !strcmp(n, "Affine") || !strcmp(n, "ScaledTanh");
            a->alpha = !strcmp(n, "LeakyRelu") ? 0.01f : !strcmp(n, "HardSigmoid") ? 0.2f : 1.0f;
            a->beta = !strcmp(n, "HardSigmoid") ? 0.5f : !strcmp(n, "Affine") ? 0.0f : 1.0f;
            if (takes_a && al && al->type == OX_A_FLOATS && ia < al->n) a->alpha = al->floats[ia++];
            if (takes_b && be && be->type == OX_A_FLOATS && ib < be->n) a->beta = be->floats[ib++];
        }
    return true;
}

/* rows [from, from + n) of w [*, cols] (a view). */
static gf_tensor *rows(ox_exec *e, gf_tensor *w, int64_t from, int64_t n) {
    return gf_slice(e->ctx, w, 0, from, from + n, 1);
}

/* One direction: returns the outputs per step in ys[t] ([batch, H], zero past a sequence's end)
 * and the last states in *h, *cst. */
static bool run_dir(ox_exec *e, const rnn *r, int d, gf_tensor *x, gf_tensor **ys, gf_tensor **h,
                    gf_tensor **cst) {
    gf_ctx *c = e->ctx;
    const int64_t H = r->hidden, G = r->gates;
    gf_tensor *W = gf_reshape(c, gf_slice(c, e->in[1], 0, d, d + 1, 1), 2,
                              (int64_t[]){G * H, e->in[1]->shape[2]});
    gf_tensor *R = gf_reshape(c, gf_slice(c, e->in[2], 0, d, d + 1, 1), 2, (int64_t[]){G * H, H});
    gf_tensor *B = e->n_in > 3 && e->in[3]
        ? gf_reshape(c, gf_slice(c, e->in[3], 0, d, d + 1, 1), 1, (int64_t[]){2 * G * H})
        : NULL;
    gf_tensor *wb = B ? gf_slice(c, B, 0, 0, G * H, 1) : NULL,
              *rb = B ? gf_slice(c, B, 0, G * H, 2 * G * H, 1) : NULL;
    gf_tensor *P = r->kind == RNN_LSTM && e->n_in > 7 && e->in[7]
        ? gf_reshape(c, gf_slice(c, e->in[7], 0, d, d + 1, 1), 1, (int64_t[]){3 * H})
        : NULL;
    /* x W^T + Wb for every step at once: [seq * batch, G * H] */
    gf_tensor *xw =
        gf_linear(c, gf_reshape(c, x, 2, (int64_t[]){r->seq * r->batch, x->shape[2]}), W, wb);
    if (!xw || !R) return false;
    const bool rev =
        r->dirs == 2 ? d == 1 : !strcmp(ox_attr_str(e->node, "direction", "forward"), "reverse");
    for (int64_t s = 0; s < r->seq; s++) {
        int64_t t = rev ? r->seq - 1 - s : s;
        gf_tensor *xt = gf_slice(c, xw, 0, t * r->batch, (t + 1) * r->batch, 1);
        gf_tensor *gate[4], *hn, *cn = NULL;
        const act *f = r->f[d];
        if (r->kind == RNN_GRU) {
            gf_tensor *zr = gf_add(c, gf_slice(c, xt, 1, 0, 2 * H, 1),
                                   gf_linear(c, *h, rows(e, R, 0, 2 * H),
                                             rb ? gf_slice(c, rb, 0, 0, 2 * H, 1) : NULL));
            if (r->clip > 0) zr = gf_clamp(c, zr, -r->clip, r->clip);
            gf_tensor *z = activate(e, &f[0], gf_slice(c, zr, 1, 0, H, 1));
            gf_tensor *rr = activate(e, &f[0], gf_slice(c, zr, 1, H, 2 * H, 1));
            gf_tensor *rh = rows(e, R, 2 * H, H),
                      *rbh = rb ? gf_slice(c, rb, 0, 2 * H, 3 * H, 1) : NULL;
            gf_tensor *hh = r->lbr ? gf_mul(c, rr, gf_linear(c, *h, rh, rbh))
                                   : gf_linear(c, gf_mul(c, rr, *h), rh, rbh);
            gf_tensor *pre = gf_add(c, gf_slice(c, xt, 1, 2 * H, 3 * H, 1), hh);
            if (r->clip > 0) pre = gf_clamp(c, pre, -r->clip, r->clip);
            gf_tensor *cand = activate(e, &f[1], pre);
            hn = gf_add(c, gf_mul(c, gf_sub(c, gf_full(c, 0, NULL, 1.0f), z), cand),
                        gf_mul(c, z, *h));
        } else {
            gf_tensor *pre = gf_add(c, xt, gf_linear(c, *h, R, rb));
            if (r->clip > 0) pre = gf_clamp(c, pre, -r->clip, r->clip);
            if (r->kind == RNN_PLAIN) {
                hn = activate(e, &f[0], pre);
            } else { /* gates i, o, f, c */
                for (int k = 0; k < 4; k++) gate[k] = gf_slice(c, pre, 1, k * H, (k + 1) * H, 1);
                if (P) {
                    gate[0] = gf_add(c, gate[0], gf_mul(c, gf_slice(c, P, 0, 0, H, 1), *cst));
                    gate[2] =
                        gf_add(c, gate[2], gf_mul(c, gf_slice(c, P, 0, 2 * H, 3 * H, 1), *cst));
                }
                gf_tensor *it = activate(e, &f[0], gate[0]), *ft = activate(e, &f[0], gate[2]);
                cn = gf_add(c, gf_mul(c, ft, *cst), gf_mul(c, it, activate(e, &f[1], gate[3])));
                if (P) gate[1] = gf_add(c, gate[1], gf_mul(c, gf_slice(c, P, 0, H, 2 * H, 1), cn));
                hn = gf_mul(c, activate(e, &f[0], gate[1]), activate(e, &f[2], cn));
            }
        }
        if (!hn) return false;
        if (r->lens) { /* past a sequence's end: the state stays, the output is 0 */
            gf_tensor *m = gf_empty(c, GF_I64, 2, (int64_t[]){r->batch, 1});
            if (!m) return false;
            for (int64_t b = 0; b < r->batch; b++) gf_i64(m)[b] = t < gf_get_i64(r->lens, b);
            ys[t] = gf_where(c, m, hn, gf_full(c, 0, NULL, 0.0f));
            hn = gf_where(c, m, hn, *h);
            if (cn) cn = gf_where(c, m, cn, *cst);
        } else {
            ys[t] = hn;
        }
        *h = hn;
        if (cn) *cst = cn;
    }
    return *h != NULL;
}

/* The initial state input idx ([dirs, batch, H]; layout 1: [batch, dirs, H]) for direction d,
 * or zeros. */
static gf_tensor *initial(ox_exec *e, const rnn *r, int idx, int d, bool layout1) {
    gf_ctx *c = e->ctx;
    int64_t s[2] = {r->batch, r->hidden};
    if (idx >= e->n_in || !e->in[idx]) return gf_zeros(c, GF_F32, 2, s);
    gf_tensor *t = e->in[idx];
    if (t->ndim != 3)
        return ox_fail(e, GF_ERR_SHAPE, "input %d: expected a 3-D initial state", idx), NULL;
    return gf_reshape(c, gf_slice(c, t, layout1 ? 1 : 0, d, d + 1, 1), 2, s);
}

static bool recurrent(ox_exec *e, int kind) {
    gf_ctx *c = e->ctx;
    rnn r = {.kind = kind, .gates = kind == RNN_PLAIN ? 1 : kind == RNN_GRU ? 3 : 4};
    for (int i = 0; i < 3; i++)
        if (!ox_need(e, i, GF_F32)) return false;
    const bool layout1 = ox_attr_int(e->node, "layout", 0) != 0;
    gf_tensor *x = layout1 ? gf_transpose(c, e->in[0], 0, 1) : e->in[0];
    const char *dir = ox_attr_str(e->node, "direction", "forward");
    r.dirs = !strcmp(dir, "bidirectional") ? 2 : 1;
    if (r.dirs == 1 && strcmp(dir, "forward") && strcmp(dir, "reverse"))
        return ox_fail(e, GF_ERR_INVALID, "direction '%s'", dir);
    if (!x || x->ndim != 3 || e->in[1]->ndim != 3 || e->in[2]->ndim != 3)
        return ox_fail(e, GF_ERR_SHAPE, "X, W and R must be 3-D");
    r.seq = x->shape[0], r.batch = x->shape[1];
    r.hidden = ox_attr_int(e->node, "hidden_size", e->in[2]->shape[2]);
    if (e->in[1]->shape[0] != r.dirs || e->in[1]->shape[1] != r.gates * r.hidden ||
        e->in[2]->shape[1] != r.gates * r.hidden || e->in[2]->shape[2] != r.hidden ||
        e->in[1]->shape[2] != x->shape[2])
        return ox_fail(e, GF_ERR_SHAPE,
                       "W and R do not fit %d direction(s), %d gates and hidden size %lld", r.dirs,
                       r.gates, (long long)r.hidden);
    r.clip = ox_attr_float(e->node, "clip", 0.0f);
    r.lbr = ox_attr_int(e->node, "linear_before_reset", 0) != 0;
    if (ox_attr_int(e->node, "input_forget", 0))
        return ox_fail(e, GF_ERR_INVALID, "input_forget is not supported");
    if (e->n_in > 4 && e->in[4] && !(r.lens = ox_as_i64(e, e->in[4]))) return false;
    if (r.lens && r.lens->numel != r.batch)
        return ox_fail(e, GF_ERR_SHAPE, "sequence_lens must hold one length per batch entry");
    if (!read_acts(e, &r)) return false;
    gf_tensor **ys = gf_scratch(c, sizeof *ys * (size_t)(r.seq + 1)), *hs[2], *cs[2], *ycat[2];
    if (!ys) return false;
    for (int d = 0; d < r.dirs; d++) {
        gf_tensor *h = initial(e, &r, 5, d, layout1), *cst = initial(e, &r, 6, d, layout1);
        if (!h || !cst || !run_dir(e, &r, d, x, ys, &h, &cst)) return false;
        for (int64_t t = 0; t < r.seq; t++)
            ys[t] = gf_reshape(c, ys[t], 4, (int64_t[]){1, 1, r.batch, r.hidden});
        ycat[d] = r.seq ? gf_concat(c, ys, (int)r.seq, 0) : NULL;
        hs[d] = gf_reshape(c, h, 3, (int64_t[]){1, r.batch, r.hidden});
        cs[d] = gf_reshape(c, cst, 3, (int64_t[]){1, r.batch, r.hidden});
    }
    gf_tensor *y = r.dirs == 2 ? gf_concat(c, ycat, 2, 1) : ycat[0];
    gf_tensor *yh = r.dirs == 2 ? gf_concat(c, hs, 2, 0) : hs[0],
              *yc = r.dirs == 2 ? gf_concat(c, cs, 2, 0) : cs[0];
    if (layout1) { /* [batch, seq, dirs, H] and [batch, dirs, H] */
        y = y ? gf_permute(c, y, (int[]){2, 0, 1, 3}) : NULL;
        yh = gf_transpose(c, yh, 0, 1), yc = gf_transpose(c, yc, 0, 1);
    }
    e->out[0] = y;
    if (e->n_out > 1) e->out[1] = yh;
    if (e->n_out > 2) e->out[2] = yc;
    return (e->node->out[0] < 0 || y) && yh;
}

bool ox_op_rnn(ox_exec *e) { return recurrent(e, RNN_PLAIN); }
bool ox_op_gru(ox_exec *e) { return recurrent(e, RNN_GRU); }
bool ox_op_lstm(ox_exec *e) { return recurrent(e, RNN_LSTM); }
