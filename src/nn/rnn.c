/* torch.nn.LSTM and torch.nn.GRU as modules: stacked layers, each direction one fused op
 * (src/ops/rnn.c), torch's parameter names, order and initialisation, lengths through
 * gf_module_forward_seq and explicit states through gf_nn_rnn_run. */
#include "nn/nn_internal.h"

#include <math.h>
#include <stdio.h>

static gf_tensor *rnn_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user);
static gf_tensor *rnn_run(gf_ctx *ctx, gf_module *m, gf_tensor *x, gf_tensor *lengths,
                          gf_tensor *h0, gf_tensor *c0, gf_tensor **h_n, gf_tensor **c_n);

gf_nn_rnn_params gf_nn_rnn_default_params(int64_t input_size, int64_t hidden_size) {
    gf_nn_rnn_params p = {input_size, hidden_size, 1, true, false, 0.0f, false};
    return p;
}

static bool is_lstm(const gf_module *m) { return strcmp(m->type, "LSTM") == 0; }

/* Parameter k (0 weight_ih, 1 weight_hh, 2 bias_ih, 3 bias_hh) of layer l, direction dir;
 * NULL for a bias the module does not have. */
static gf_tensor *param(const gf_module *m, int l, int dir, int k) {
    const gf_layer_cfg *c = &m->cfg;
    const int per = c->rnn.bias ? 4 : 2;
    if (k >= per) return NULL;
    return m->params[(l * c->rnn.dirs + dir) * per + k].t;
}

/* The [N, H] slice k of a state [L*D, N, H] (a view, so gradients reach the whole). */
static gf_tensor *state_at(gf_ctx *ctx, gf_tensor *s, int k) {
    if (!s) return NULL;
    return gf_reshape(ctx, gf_slice(ctx, s, 0, k, k + 1, 1), 2, s->shape + 1);
}

/* Checks x [N, T, I] (or [T, N, I]) and the states [L*D, N, H] against the module. */
static bool check_inputs(gf_ctx *ctx, const gf_module *m, const gf_tensor *x, const gf_tensor *h0,
                         const gf_tensor *c0) {
    const gf_layer_cfg *c = &m->cfg;
    char s[GF_SHAPE_BUF];
    const char *layout = c->rnn.batch_first ? "[N, T, %lld] (batch_first) or [T, %lld]"
                                            : "[T, N, %lld] or [T, %lld]";
    char want[64];
    snprintf(want, sizeof want, layout, (long long)c->in, (long long)c->in);
    if (!gf_check_tensor(ctx, m->type, "input", x, GF_F32)) return false;
    if (x->ndim != 3 || x->shape[2] != c->in) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "expected input %s, got %s (input_size=%lld)", want,
                         gf_shape_str(x, s, sizeof s), (long long)c->in);
        return false;
    }
    const int64_t n = x->shape[c->rnn.batch_first ? 0 : 1];
    const int64_t ws[3] = {(int64_t)c->rnn.layers * c->rnn.dirs, n, c->out};
    const gf_tensor *st[2] = {h0, c0};
    for (int i = 0; i < 2; i++) {
        const gf_tensor *t = st[i];
        if (!t) continue;
        bool ok = t->dtype == GF_F32 && t->ndim == 3;
        for (int j = 0; ok && j < 3; j++) ok = t->shape[j] == ws[j];
        if (!ok) {
            char w[GF_SHAPE_BUF];
            gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                             "%s is %s %s, expected float32 %s ([num_layers * directions, N, "
                             "hidden_size])", i ? "c0" : "h0", gf_dtype_name(t->dtype),
                             gf_shape_str(t, s, sizeof s), gf_dims_str(3, ws, w, sizeof w));
            return false;
        }
    }
    return true;
}

/* Stacks the [N, H] final states of every layer and direction into [L*D, N, H]. */
static gf_tensor *stack_states(gf_ctx *ctx, gf_tensor **parts, int k) {
    for (int i = 0; i < k; i++) {
        if (!parts[i]) return NULL;
        parts[i] = gf_reshape(ctx, parts[i], 3, (int64_t[]){1, parts[i]->shape[0], parts[i]->shape[1]});
        if (!parts[i]) return NULL;
    }
    return k == 1 ? parts[0] : gf_concat(ctx, parts, k, 0);
}

/* One layer, both directions: the output [.., D*H] and each direction's final states. */
static gf_tensor *run_layer(gf_ctx *ctx, const gf_module *m, int l, gf_tensor *x,
                            gf_tensor *lengths, gf_tensor *h0, gf_tensor *c0, gf_tensor **hs,
                            gf_tensor **cs) {
    const gf_layer_cfg *c = &m->cfg;
    gf_tensor *ys[2] = {NULL, NULL};
    for (int dir = 0; dir < c->rnn.dirs; dir++) {
        const int k = l * c->rnn.dirs + dir;
        gf_rnn_args a = {param(m, l, dir, 0), param(m, l, dir, 1), param(m, l, dir, 2),
                         param(m, l, dir, 3), state_at(ctx, h0, k), state_at(ctx, c0, k),
                         lengths, c->rnn.batch_first, dir == 1};
        if ((h0 && !a.h0) || (c0 && !a.c0)) return NULL;
        ys[dir] = is_lstm(m) ? gf_lstm_layer(ctx, x, &a, &hs[k], &cs[k])
                             : gf_gru_layer(ctx, x, &a, &hs[k]);
        if (!ys[dir]) return NULL;
    }
    return c->rnn.dirs == 1 ? ys[0] : gf_concat(ctx, ys, 2, 2);
}

/* t with a batch axis of 1 inserted at axis (a view); NULL stays NULL. */
static gf_tensor *add_batch_axis(gf_ctx *ctx, gf_tensor *t, int axis) {
    if (!t) return NULL;
    int64_t shape[3];
    for (int i = 0, j = 0; i < 3; i++) shape[i] = i == axis ? 1 : t->shape[j++];
    return gf_reshape(ctx, t, 3, shape);
}

/* torch's unbatched input: x [T, input_size] and states [L*D, H] run as a batch of one. */
static gf_tensor *run_unbatched(gf_ctx *ctx, gf_module *m, gf_tensor *x, gf_tensor *h0,
                                gf_tensor *c0, gf_tensor **h_n, gf_tensor **c_n) {
    const gf_layer_cfg *c = &m->cfg;
    const gf_tensor *st[2] = {h0, c0};
    for (int i = 0; i < 2; i++)
        if (st[i] && (st[i]->ndim != 2 || st[i]->dtype != GF_F32)) {
            char s[GF_SHAPE_BUF];
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s is %s with an unbatched input: expected "
                             "float32 [%d, %lld]", i ? "c0" : "h0",
                             gf_shape_str(st[i], s, sizeof s), c->rnn.layers * c->rnn.dirs,
                             (long long)c->out);
            return NULL;
        }
    gf_tensor *y = rnn_run(ctx, m, add_batch_axis(ctx, x, c->rnn.batch_first ? 0 : 1), NULL,
                           add_batch_axis(ctx, h0, 1), add_batch_axis(ctx, c0, 1), h_n, c_n);
    if (h_n && *h_n) *h_n = gf_reshape(ctx, *h_n, 2, (int64_t[]){(*h_n)->shape[0], c->out});
    if (c_n && *c_n) *c_n = gf_reshape(ctx, *c_n, 2, (int64_t[]){(*c_n)->shape[0], c->out});
    return y ? gf_reshape(ctx, y, 2, (int64_t[]){x->shape[0], y->shape[2]}) : NULL;
}

static gf_tensor *rnn_run(gf_ctx *ctx, gf_module *m, gf_tensor *x, gf_tensor *lengths,
                          gf_tensor *h0, gf_tensor *c0, gf_tensor **h_n, gf_tensor **c_n) {
    const gf_layer_cfg *c = &m->cfg;
    if (x && x->ndim == 2 && !lengths) return run_unbatched(ctx, m, x, h0, c0, h_n, c_n);
    if (!check_inputs(ctx, m, x, h0, c0)) return NULL;
    const int k = c->rnn.layers * c->rnn.dirs;
    gf_tensor **hs = gf_scratch(ctx, sizeof(gf_tensor *) * (size_t)k * 2);
    if (!hs) return NULL;
    gf_tensor **cs = hs + k;
    memset(hs, 0, sizeof(gf_tensor *) * (size_t)k * 2);
    for (int l = 0; l < c->rnn.layers && x; l++) {
        if (l > 0 && m->training && c->f0 > 0.0f) x = gf_dropout(ctx, x, c->f0, true);
        x = x ? run_layer(ctx, m, l, x, lengths, h0, c0, hs, cs) : NULL;
    }
    if (!x) return NULL;
    if (h_n && !(*h_n = stack_states(ctx, hs, k))) return NULL;
    if (c_n && is_lstm(m) && !(*c_n = stack_states(ctx, cs, k))) return NULL;
    return x;
}

static gf_tensor *rnn_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return rnn_run(ctx, self, x, NULL, NULL, NULL, NULL, NULL);
}

static gf_tensor *rnn_seq_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, gf_tensor *lengths,
                              void *user) {
    (void)user;
    return rnn_run(ctx, self, x, lengths, NULL, NULL, NULL, NULL);
}

gf_tensor *gf_nn_rnn_run(gf_ctx *ctx, gf_module *m, gf_tensor *x, gf_tensor *lengths,
                         gf_tensor *h0, gf_tensor *c0, gf_tensor **h_n, gf_tensor **c_n) {
    if (h_n) *h_n = NULL;
    if (c_n) *c_n = NULL;
    if (!m || m->forward != rnn_fwd) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "rnn run: module %s is not an LSTM or GRU",
                         m ? m->type : "NULL");
        return NULL;
    }
    if (!is_lstm(m) && c0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "GRU: c0 given, but a GRU has no cell state");
        return NULL;
    }
    if (!x) {
        if (gf_ctx_status(ctx) == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: input is NULL", m->type);
        return NULL;
    }
    gf_tensor *y = rnn_run(ctx, m, x, lengths, h0, c0, h_n, c_n);
    if (!y) gf_ctx_prefix_error(ctx, "module (%s): ", m->type);
    return y;
}

static gf_module *rnn_new(gf_ctx *ctx, gf_rng *rng, const char *type, int gates,
                          const gf_nn_rnn_params *p) {
    if (!p || p->input_size <= 0 || p->hidden_size <= 0 || p->num_layers < 1 ||
        p->num_layers > 1024 || !(p->dropout >= 0.0f && p->dropout <= 1.0f)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s(input_size=%lld, hidden_size=%lld, num_layers=%d, dropout=%g): sizes "
                         "must be > 0, num_layers in [1, 1024], dropout in [0, 1]", type,
                         p ? (long long)p->input_size : 0LL, p ? (long long)p->hidden_size : 0LL,
                         p ? p->num_layers : 0, p ? (double)p->dropout : 0.0);
        return NULL;
    }
    gf_module *m = gf_module_alloc(ctx, type, rnn_fwd);
    if (!m) return NULL;
    m->layer = GF_LAYER_LIB | GF_LAYER_FRESH;
    gf_module_set_seq_forward(m, rnn_seq_fwd);
    gf_layer_cfg *c = &m->cfg;
    c->in = p->input_size;
    c->out = p->hidden_size;
    c->f0 = p->dropout;
    c->rnn.layers = p->num_layers;
    c->rnn.dirs = p->bidirectional ? 2 : 1;
    c->rnn.batch_first = p->batch_first;
    c->rnn.bias = p->bias;
    const int64_t H = p->hidden_size, GH = gates * H;
    const float bound = 1.0f / sqrtf((float)H);
    for (int l = 0; l < c->rnn.layers; l++)
        for (int dir = 0; dir < c->rnn.dirs; dir++) {
            const int64_t in = l == 0 ? p->input_size : c->rnn.dirs * H;
            const char *sfx = dir ? "_reverse" : "";
            const char *kinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
            const int64_t shapes[4][2] = {{GH, in}, {GH, H}, {GH, 0}, {GH, 0}};
            for (int k = 0; k < (p->bias ? 4 : 2); k++) {
                char name[64];
                snprintf(name, sizeof name, "%s_l%d%s", kinds[k], l, sfx);
                /* torch's reset_parameters: every tensor U(-1/sqrt(H), 1/sqrt(H)) in order */
                gf_tensor *t = gf_module_new_param(ctx, m, name, k < 2 ? 2 : 1, shapes[k]);
                if (!t || gf_nn_init_uniform(ctx, t, rng, -bound, bound) != GF_OK) {
                    gf_module_free(m);
                    return NULL;
                }
            }
        }
    return m;
}

gf_module *gf_nn_lstm(gf_ctx *ctx, gf_rng *rng, const gf_nn_rnn_params *p) {
    return rnn_new(ctx, rng, "LSTM", 4, p);
}

gf_module *gf_nn_gru(gf_ctx *ctx, gf_rng *rng, const gf_nn_rnn_params *p) {
    return rnn_new(ctx, rng, "GRU", 3, p);
}
