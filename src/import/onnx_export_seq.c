/* The sequence layers as ONNX nodes (inference form): LSTM and GRU as ONNX's LSTM / GRU ops
 * (PyTorch's gate blocks reordered into ONNX's, both directions stacked, layers chained through
 * Transpose + Reshape, batch_first through Transposes), MultiheadAttention and
 * TransformerEncoderLayer as primitive ops (MatMul, Softmax, LayerNormalization, ...), the
 * positions as a Gather of their table, SeqPool, and the TextClassifier around them. A text
 * classifier takes int64 token ids [N, T]; as graft's forward does, it counts each example's
 * non-zero ids as its length (in the graph: ReduceSum(Cast(ids != 0)) in float), and the layers inside it see
 * those lengths: ONNX's sequence_lens for the recurrent layers, an additive key-padding mask of
 * -1e9 in attention, zeros at the padded steps after each encoder layer, and the pooling over
 * the real steps only. */
#include "import/onnx_export_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- small node helpers ---------------------------------------------------------------------- */

static const char *ints(ex_graph *g, const char *path, int n, const int64_t *v) {
    return ex_const_i64(g, path, n, v);
}

static const char *fscalar(ex_graph *g, const char *path, float v) {
    return ex_const_f32(g, path, 0, NULL, &v);
}

static const char *op2(ex_graph *g, const char *path, const char *op, const char *a,
                       const char *b) {
    return ex_op(g, path, op, 2, (const char *[]){a, b});
}

static const char *cast(ex_graph *g, const char *path, const char *x, int to) {
    Onnx__NodeProto *n = x ? ex_node(g, path, "Cast", 1, &x) : NULL;
    return n && ex_attr_int(g, n, "to", to) ? n->output[0] : NULL;
}

static const char *transpose(ex_graph *g, const char *path, const char *x, int k,
                             const int64_t *perm) {
    Onnx__NodeProto *n = x ? ex_node(g, path, "Transpose", 1, &x) : NULL;
    return n && ex_attr_ints(g, n, "perm", k, perm) ? n->output[0] : NULL;
}

static const char *swap01(ex_graph *g, const char *path, const char *x) {
    return transpose(g, path, x, 3, (const int64_t[]){1, 0, 2});
}

static const char *reshape(ex_graph *g, const char *path, const char *x, int k,
                           const int64_t *shape) {
    return op2(g, path, "Reshape", x, ints(g, path, k, shape));
}

static const char *unsqueeze(ex_graph *g, const char *path, const char *x, int k,
                             const int64_t *axes) {
    return op2(g, path, "Unsqueeze", x, ints(g, path, k, axes));
}

/* ReduceSum (axes an input since opset 13) or ReduceMax / ReduceMean (an attribute in 17). */
static const char *reduce(ex_graph *g, const char *path, const char *op, const char *x,
                          int64_t axis) {
    const bool sum = strcmp(op, "ReduceSum") == 0;
    const char *in[2] = {x, sum ? ints(g, path, 1, &axis) : ""};
    Onnx__NodeProto *n = in[0] && in[1] ? ex_node(g, path, op, sum ? 2 : 1, in) : NULL;
    if (!n || !ex_attr_int(g, n, "keepdims", 0)) return NULL;
    if (!sum && !ex_attr_ints(g, n, "axes", 1, &axis)) return NULL;
    return n->output[0];
}

/* x[start:end] along axis. */
static const char *slice(ex_graph *g, const char *path, const char *x, int64_t start,
                         int64_t end, int64_t axis) {
    const char *in[4] = {x, ints(g, path, 1, &start), ints(g, path, 1, &end),
                         ints(g, path, 1, &axis)};
    return ex_op(g, path, "Slice", 4, in);
}

/* x->t becomes m's output on the sample (the shape its nodes give). */
static bool sample_fwd(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    gf_tensor *y = gf_module_forward(g->run, (gf_module *)m, x->t);
    if (!y) {
        char why[600];
        snprintf(why, sizeof why, "does not run on the sample: %s", gf_ctx_error(g->run));
        return ex_refuse(g, m, path, why);
    }
    x->t = y;
    return true;
}

/* A float step mask m2 [N, T] as [N, T, 1] (batch_first) or [T, N, 1]. */
static const char *mask3(ex_graph *g, const char *path, const char *m2, bool bf) {
    const char *m = bf ? m2 : transpose(g, path, m2, 2, (const int64_t[]){1, 0});
    return unsqueeze(g, path, m, 1, (const int64_t[]){2});
}

/* x with its padded steps set to 0, as graft's sequence layers leave them (no-op outside a
 * text classifier). */
static const char *zero_padding(ex_graph *g, const char *path, const char *x, bool bf) {
    if (!g->mask || !x) return x;
    return op2(g, path, "Mul", x, mask3(g, path, g->mask, bf));
}

static bool check_seq(ex_graph *g, const gf_module *m, const char *path, const ex_val *x,
                      bool bf) {
    if (x->t->ndim == 3) return true;
    return ex_refuse(g, m, path, bf ? "expects an input [N, T, D] (an unbatched input is not "
                                      "exported)"
                                    : "expects an input [T, N, D] (an unbatched input is not "
                                      "exported)");
}

/* ---- LSTM and GRU ------------------------------------------------------------------------------ */

/* ONNX's gate k is PyTorch's gate perm[k]: LSTM i, o, f, c from i, f, g, o; GRU z, r, h from
 * r, z, n. */
static const int lstm_perm[4] = {0, 3, 1, 2};
static const int gru_perm[3] = {1, 0, 2};

/* dst [G*H, cols] = src's gate blocks of H rows in ONNX's order. */
static void reorder(float *dst, const float *src, int gates, const int *perm, int64_t h,
                    int64_t cols) {
    for (int k = 0; k < gates; k++)
        memcpy(dst + (int64_t)k * h * cols, src + (int64_t)perm[k] * h * cols,
               sizeof(float) * (size_t)(h * cols));
}

/* Layer l's W [D, G*H, in] (kind 0), R [D, G*H, H] (1) or B [D, 2*G*H] (2) as the initializer
 * PATH.W_l<l> (R, B): every direction's PyTorch tensors, gates reordered. */
static const char *rnn_tensor(ex_graph *g, const gf_module *m, const char *path,
                              const gf_nn_seq_view *v, int l, int kind, int gates,
                              const int *perm) {
    const int64_t H = v->rnn_hidden, D = v->rnn_dirs, GH = gates * H;
    const int64_t cols = kind == 0 ? (l == 0 ? v->rnn_input : D * H) : kind == 1 ? H : 1;
    const int64_t dims[3] = {D, kind == 2 ? 2 * GH : GH, cols};
    gf_tensor *t = gf_empty(g->run, GF_F32, kind == 2 ? 2 : 3, dims);
    if (!t) return ex_refuse(g, m, path, "out of memory"), NULL;
    static const char *const torch[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    for (int dir = 0; dir < D; dir++)
        for (int part = 0; part < (kind == 2 ? 2 : 1); part++) {
            char name[64];
            snprintf(name, sizeof name, "%s_l%d%s", torch[kind == 2 ? 2 + part : kind], l,
                     dir ? "_reverse" : "");
            const gf_tensor *src = gf_module_tensor(NULL, m, name);
            if (!src || src->dtype != GF_F32 || !gf_tensor_is_contiguous(src) ||
                src->numel != GH * cols) {
                char why[160];
                snprintf(why, sizeof why, "has no float32 %s of %lld values", name,
                         (long long)(GH * cols));
                return ex_refuse(g, m, path, why), NULL;
            }
            float *dst = gf_f32(t) + dir * (kind == 2 ? 2 * GH : GH * cols) + part * GH;
            reorder(dst, gf_f32(src), gates, perm, H, cols);
        }
    char name[32];
    snprintf(name, sizeof name, "%c_l%d", "WRB"[kind], l);
    const char *full = ex_join(g, path, name);
    return full ? ex_initializer(g, full, t) : NULL;
}

/* ONNX LSTM / GRU per layer on [T, N, in]: Y [T, D, N, H] -> Transpose [T, N, D, H] ->
 * Reshape [T, N, D*H], the next layer's input. Lengths (inside a text classifier) become
 * sequence_lens, so the reverse direction starts at each example's last real step and the
 * outputs past it are 0, as graft's (and PyTorch's packed sequences) are. */
bool ex_rnn(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    const gf_nn_seq_view v = gf_nn_seq_view_of(m);
    const bool lstm = strcmp(gf_module_type(m), "LSTM") == 0;
    if (!v.known) return ex_refuse(g, m, path, "is not graft's LSTM or GRU");
    if (!check_seq(g, m, path, x, v.batch_first) || !sample_fwd(g, m, path, x)) return false;
    const int gates = lstm ? 4 : 3;
    const char *h = v.batch_first ? swap01(g, path, x->name) : x->name;
    const char *lens = g->lengths ? cast(g, path, g->lengths, GF_ONNX_INT32) : "";
    for (int l = 0; l < v.rnn_layers && h && lens; l++) {
        const int *perm = lstm ? lstm_perm : gru_perm;
        const char *in[5] = {h, rnn_tensor(g, m, path, &v, l, 0, gates, perm),
                             rnn_tensor(g, m, path, &v, l, 1, gates, perm),
                             v.rnn_bias ? rnn_tensor(g, m, path, &v, l, 2, gates, perm) : "",
                             lens};
        const int n_in = lens[0] ? 5 : v.rnn_bias ? 4 : 3;
        Onnx__NodeProto *n = in[1] && in[2] && in[3] ? ex_node(g, path, lstm ? "LSTM" : "GRU",
                                                               n_in, in) : NULL;
        if (!n || !ex_attr_int(g, n, "hidden_size", v.rnn_hidden)) return false;
        if (v.rnn_dirs == 2 && !ex_attr_str(g, n, "direction", "bidirectional")) return false;
        if (!lstm && !ex_attr_int(g, n, "linear_before_reset", 1)) return false;
        h = transpose(g, path, n->output[0], 4, (const int64_t[]){0, 2, 1, 3});
        h = reshape(g, path, h, 3, (const int64_t[]){0, 0, -1});
    }
    x->name = v.batch_first ? swap01(g, path, h) : h;
    return x->name != NULL;
}

/* ---- attention and the encoder ------------------------------------------------------------------- */

/* Multi-head self-attention of mha on x ([N, T, E] batch_first, else [T, N, E]): the input
 * projection, heads [N, h, T, dh], softmax(q k^T / sqrt(dh) + masks) v, out_proj. */
static const char *attention(ex_graph *g, const gf_module *mha, const char *path, const char *x,
                             const gf_tensor *xt, bool causal) {
    const gf_nn_seq_view v = gf_nn_seq_view_of(mha);
    if (strcmp(gf_module_type(mha), "MultiheadAttention") != 0 || !v.known)
        return ex_refuse(g, mha, path, "is not graft's MultiheadAttention"), NULL;
    const bool bf = v.batch_first;
    const int64_t E = v.embed_dim, nh = v.num_heads, dh = E / nh, T = xt->shape[bf ? 1 : 0];
    const gf_tensor *w = gf_module_tensor(NULL, mha, "in_proj_weight");
    const gf_tensor *b = gf_module_tensor(NULL, mha, "in_proj_bias");
    const char *wn = ex_initializer(g, ex_join(g, path, "in_proj_weight"), w);
    const char *bn = b ? ex_initializer(g, ex_join(g, path, "in_proj_bias"), b) : NULL;
    if (!wn || (b && !bn)) return NULL;
    const char *xb = bf ? x : swap01(g, path, x);
    const char *qkv = op2(g, path, "MatMul", xb, transpose(g, path, wn, 2, (const int64_t[]){1, 0}));
    if (bn) qkv = op2(g, path, "Add", qkv, bn);
    const int64_t heads[4] = {0, 0, nh, dh};
    const char *q = reshape(g, path, slice(g, path, qkv, 0, E, 2), 4, heads);
    const char *k = reshape(g, path, slice(g, path, qkv, E, 2 * E, 2), 4, heads);
    const char *vv = reshape(g, path, slice(g, path, qkv, 2 * E, 3 * E, 2), 4, heads);
    q = transpose(g, path, q, 4, (const int64_t[]){0, 2, 1, 3});
    k = transpose(g, path, k, 4, (const int64_t[]){0, 2, 3, 1});
    vv = transpose(g, path, vv, 4, (const int64_t[]){0, 2, 1, 3});
    const char *s = op2(g, path, "Mul", op2(g, path, "MatMul", q, k),
                        fscalar(g, path, 1.0f / sqrtf((float)dh)));
    if (g->mask) { /* keys past each example's length: -1e9, [N, 1, 1, T] */
        const char *neg = op2(g, path, "Mul", op2(g, path, "Sub", g->mask, fscalar(g, path, 1.0f)),
                              fscalar(g, path, 1e9f));
        s = op2(g, path, "Add", s, unsqueeze(g, path, neg, 2, (const int64_t[]){1, 2}));
    }
    if (causal) { /* a query sees no later key */
        float *c = ex_alloc(g, sizeof *c * (size_t)(T * T));
        if (!c) return NULL;
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = 0; j < T; j++) c[i * T + j] = j > i ? -1e9f : 0.0f;
        s = op2(g, path, "Add", s, ex_const_f32(g, path, 2, (const int64_t[]){T, T}, c));
    }
    Onnx__NodeProto *sm = s ? ex_node(g, path, "Softmax", 1, &s) : NULL;
    if (!sm || !ex_attr_int(g, sm, "axis", -1)) return NULL;
    const char *o = op2(g, path, "MatMul", sm->output[0], vv);
    o = transpose(g, path, o, 4, (const int64_t[]){0, 2, 1, 3});
    ex_val ov = {reshape(g, path, o, 3, (const int64_t[]){0, 0, E}), (gf_tensor *)xt};
    if (!ov.name || !ex_child(g, mha, path, "out_proj", &ov)) return NULL;
    return bf ? ov.name : swap01(g, path, ov.name);
}

static bool emit_mha(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    const gf_nn_seq_view v = gf_nn_seq_view_of(m);
    if (!check_seq(g, m, path, x, v.batch_first)) return false;
    x->name = zero_padding(g, path, attention(g, m, path, x->name, x->t, false), v.batch_first);
    return x->name != NULL;
}

/* linear2(activation(linear1(x))) (the dropouts are left out). */
static const char *feed_forward(ex_graph *g, const gf_module *m, const char *path,
                                const gf_nn_seq_view *v, ex_val h) {
    if (!ex_child(g, m, path, "linear1", &h)) return NULL;
    if (v->activation == GF_NN_ACT_GELU) { /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
        const char *e = ex_unary(g, path, "Erf", op2(g, path, "Div", h.name,
                                                     fscalar(g, path, 1.4142135381f)));
        const char *y = op2(g, path, "Mul", h.name, op2(g, path, "Add", e, fscalar(g, path, 1.0f)));
        h.name = op2(g, path, "Mul", y, fscalar(g, path, 0.5f));
    } else {
        h.name = ex_unary(g, path, "Relu", h.name);
    }
    return h.name && ex_child(g, m, path, "linear2", &h) ? h.name : NULL;
}

/* norm_first: x + sa(norm1(x)), then + ff(norm2(.)); else norm1(x + sa(x)), norm2(. + ff(.)). */
static bool emit_encoder_layer(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    const gf_nn_seq_view v = gf_nn_seq_view_of(m);
    const gf_module *sa = gf_module_child(m, "self_attn");
    const char *sa_path = ex_join(g, path, "self_attn");
    if (!sa || !sa_path) return sa ? false : ex_refuse(g, m, path, "has no self_attn");
    if (!check_seq(g, m, path, x, v.batch_first)) return false;
    ex_val h = *x;
    if (v.norm_first) {
        ex_val n1 = h;
        if (!ex_child(g, m, path, "norm1", &n1)) return false;
        h.name = op2(g, path, "Add", h.name, attention(g, sa, sa_path, n1.name, x->t, v.causal));
        ex_val n2 = h;
        if (!h.name || !ex_child(g, m, path, "norm2", &n2)) return false;
        h.name = op2(g, path, "Add", h.name, feed_forward(g, m, path, &v, n2));
    } else {
        h.name = op2(g, path, "Add", h.name, attention(g, sa, sa_path, h.name, x->t, v.causal));
        if (!h.name || !ex_child(g, m, path, "norm1", &h)) return false;
        h.name = op2(g, path, "Add", h.name, feed_forward(g, m, path, &v, h));
        if (!h.name || !ex_child(g, m, path, "norm2", &h)) return false;
    }
    x->name = zero_padding(g, path, h.name, v.batch_first);
    return x->name != NULL;
}

static bool emit_encoder(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    const gf_nn_seq_view v = gf_nn_seq_view_of(m);
    if (!ex_child(g, m, path, "layers", x)) return false;
    if (!gf_module_child(m, "norm")) return true;
    if (!ex_child(g, m, path, "norm", x)) return false;
    x->name = zero_padding(g, path, x->name, v.batch_first);
    return x->name != NULL;
}

/* ---- positions, pooling ---------------------------------------------------------------------------- */

/* x + table[0:T]: a Gather of the table (initializer PATH.pe or PATH.weight) at 0..T-1. */
static bool emit_positions(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    const gf_nn_seq_view v = gf_nn_seq_view_of(m);
    if (!v.known || !v.table) return ex_refuse(g, m, path, "has no position table");
    if (!check_seq(g, m, path, x, v.batch_first)) return false;
    const int64_t T = x->t->shape[v.batch_first ? 1 : 0], D = v.d_model;
    if (!sample_fwd(g, m, path, x)) return false;
    const bool sinus = strcmp(gf_module_type(m), "PositionalEncoding") == 0;
    const char *table = ex_initializer(g, ex_join(g, path, sinus ? "pe" : "weight"), v.table);
    int64_t *steps = ex_alloc(g, sizeof *steps * (size_t)T);
    if (!table || !steps) return false;
    for (int64_t i = 0; i < T; i++) steps[i] = i;
    Onnx__NodeProto *n = ex_node(g, path, "Gather", 2, (const char *[]){table, ints(g, path, T, steps)});
    if (!n || !ex_attr_int(g, n, "axis", 0)) return false;
    const int64_t bf_shape[2] = {T, D}, tf_shape[3] = {T, 1, D};
    const char *pe = v.batch_first ? reshape(g, path, n->output[0], 2, bf_shape)
                                   : reshape(g, path, n->output[0], 3, tf_shape);
    x->name = op2(g, path, "Add", x->name, pe);
    return x->name != NULL;
}

/* SeqPool over the real steps (the mask of a text classifier; every step outside one). */
static bool emit_seq_pool(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    const gf_nn_seq_view v = gf_nn_seq_view_of(m);
    const bool bf = v.batch_first;
    const int64_t ta = bf ? 1 : 0;
    if (!check_seq(g, m, path, x, bf)) return false;
    const int64_t T = x->t->shape[ta];
    if (!sample_fwd(g, m, path, x)) return false;
    const char *in = x->name, *y = NULL;
    switch (v.pool) {
    case GF_NN_SEQ_POOL_NONE: y = bf ? in : swap01(g, path, in); break;
    case GF_NN_SEQ_POOL_FIRST:
        y = op2(g, path, "Squeeze", slice(g, path, in, 0, 1, ta), ints(g, path, 1, &ta));
        break;
    case GF_NN_SEQ_POOL_MEAN:
        if (!g->mask) {
            y = reduce(g, path, "ReduceMean", in, ta);
            break;
        }
        y = op2(g, path, "Div",
                reduce(g, path, "ReduceSum", op2(g, path, "Mul", in, mask3(g, path, g->mask, bf)), ta),
                unsqueeze(g, path, op2(g, path, "Max", g->lengths, fscalar(g, path, 1.0f)), 1,
                          (const int64_t[]){1}));
        break;
    case GF_NN_SEQ_POOL_MAX: {
        const char *cond = NULL;
        if (g->mask) { /* the real steps, and step 0 for a length of 0 */
            float *first = ex_alloc(g, sizeof *first * (size_t)T);
            if (!first) return false;
            first[0] = 1.0f;
            const char *m2 = op2(g, path, "Max", g->mask, ex_const_f32(g, path, 1, &T, first));
            cond = cast(g, path, mask3(g, path, m2, bf), GF_ONNX_BOOL);
        }
        const char *masked = cond ? ex_op(g, path, "Where", 3, (const char *[]){cond, in,
                                          fscalar(g, path, -INFINITY)}) : in;
        y = reduce(g, path, "ReduceMax", masked, ta);
        break;
    }
    default: { /* last: the step max(length - 1, 0), as a one-hot mask summed */
        if (!g->mask) {
            y = op2(g, path, "Squeeze", slice(g, path, in, T - 1, T, ta), ints(g, path, 1, &ta));
            break;
        }
        float *steps = ex_alloc(g, sizeof *steps * (size_t)T);
        if (!steps) return false;
        for (int64_t i = 0; i < T; i++) steps[i] = (float)i;
        const char *last = op2(g, path, "Max", op2(g, path, "Sub", g->lengths, fscalar(g, path, 1.0f)),
                               fscalar(g, path, 0.0f));
        const char *hot = op2(g, path, "Equal", ex_const_f32(g, path, 1, &T, steps),
                              unsqueeze(g, path, last, 1, (const int64_t[]){1}));
        const char *h3 = mask3(g, path, cast(g, path, hot, GF_ONNX_FLOAT), bf);
        y = reduce(g, path, "ReduceSum", op2(g, path, "Mul", in, h3), ta);
    }
    }
    x->name = y;
    return y != NULL;
}

/* ---- EmbeddingBag ------------------------------------------------------------------------------- */

/* Gather of the ids [N, T] (Cast to int64 from float ids), then the sum, mean or max over the
 * ids other than padding_idx: Mul by the kept mask and ReduceSum, Div by max(count, 1); or
 * Where(kept, e, -inf), ReduceMax, and 0 for a bag of padding only. */
bool ex_embedding_bag(ex_graph *g, const gf_module *m, const char *path,
                      const gf_nn_layer_view *v, ex_val *x) {
    if (x->t->ndim != 2) return ex_refuse(g, m, path, "expects bags of ids [N, T]");
    const bool float_ids = x->t->dtype == GF_F32;
    const char *w = ex_initializer(g, ex_join(g, path, "weight"), v->weight);
    if (!w || !sample_fwd(g, m, path, x)) return false;
    const char *ids = float_ids ? cast(g, path, x->name, GF_ONNX_INT64) : x->name;
    Onnx__NodeProto *n = ids ? ex_node(g, path, "Gather", 2, (const char *[]){w, ids}) : NULL;
    if (!n || !ex_attr_int(g, n, "axis", 0)) return false;
    const char *e = n->output[0];
    const int64_t pad = v->padding_idx, axis2 = 2;
    const char *keep = ex_unary(g, path, "Not", op2(g, path, "Equal", ids, ints(g, path, 1, &pad)));
    const char *keep3 = unsqueeze(g, path, keep, 1, &axis2);
    const char *count = reduce(g, path, "ReduceSum", cast(g, path, keep, GF_ONNX_FLOAT), 1);
    const char *count2 = unsqueeze(g, path, count, 1, (const int64_t[]){1}); /* [N, 1] */
    if (v->dim0 == GF_NN_BAG_MAX) {
        const char *masked = ex_op(g, path, "Where", 3, (const char *[]){keep3, e,
                                   fscalar(g, path, -INFINITY)});
        const char *any = op2(g, path, "Greater", count2, fscalar(g, path, 0.0f));
        x->name = ex_op(g, path, "Where", 3, (const char *[]){any,
                        reduce(g, path, "ReduceMax", masked, 1), fscalar(g, path, 0.0f)});
        return x->name != NULL;
    }
    const char *s = reduce(g, path, "ReduceSum",
                           op2(g, path, "Mul", e, cast(g, path, keep3, GF_ONNX_FLOAT)), 1);
    x->name = v->dim0 == GF_NN_BAG_SUM
                  ? s
                  : op2(g, path, "Div", s, op2(g, path, "Max", count2, fscalar(g, path, 1.0f)));
    return x->name != NULL;
}

/* ---- the text classifier ----------------------------------------------------------------------------- */

/* ids [N, T] -> embedding -> pos -> encoder -> pool -> fc, the lengths and the step mask
 * computed from the ids for the layers inside. */
static bool emit_text(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    if (x->t->ndim != 2) return ex_refuse(g, m, path, "expects token ids [N, T]");
    const int64_t T = x->t->shape[1];
    const char *ids = x->t->dtype == GF_I64 ? x->name : cast(g, path, x->name, GF_ONNX_INT64);
    const int64_t zero = 0, axis1 = 1;
    /* float throughout: exact for lengths below 2^24, and every runtime reduces floats */
    const char *nz = ex_unary(g, path, "Not", op2(g, path, "Equal", ids, ints(g, path, 1, &zero)));
    const char *sum_in[2] = {cast(g, path, nz, GF_ONNX_FLOAT), ints(g, path, 1, &axis1)};
    Onnx__NodeProto *sum = sum_in[0] && sum_in[1] ? ex_node(g, path, "ReduceSum", 2, sum_in) : NULL;
    float *steps = ex_alloc(g, sizeof *steps * (size_t)T);
    if (!sum || !steps || !ex_attr_int(g, sum, "keepdims", 0)) return false;
    for (int64_t i = 0; i < T; i++) steps[i] = (float)i;
    const char *lengths = sum->output[0];
    const char *valid = op2(g, path, "Less", ex_const_f32(g, path, 1, &T, steps),
                            unsqueeze(g, path, lengths, 1, &axis1));
    const char *mask = cast(g, path, valid, GF_ONNX_FLOAT);
    gf_tensor *sample = gf_zeros(g->run, GF_I64, 2, (const int64_t[]){1, T});
    if (!mask || !sample) return sample ? false : ex_refuse(g, m, path, "out of memory");
    const char *outer_len = g->lengths, *outer_mask = g->mask;
    g->lengths = lengths;
    g->mask = mask;
    ex_val h = {ids, sample};
    bool ok = ex_child(g, m, path, "embedding", &h) &&
              (!gf_module_child(m, "pos") || ex_child(g, m, path, "pos", &h)) &&
              ex_child(g, m, path, "encoder", &h) && ex_child(g, m, path, "pool", &h);
    g->lengths = outer_len;
    g->mask = outer_mask;
    ok = ok && ex_child(g, m, path, "fc", &h);
    if (ok) *x = h;
    return ok;
}

static const struct {
    const char *type;
    bool (*fn)(ex_graph *, const gf_module *, const char *, ex_val *);
} seq_containers[] = {
    {"TextClassifier", emit_text},
    {"MultiheadAttention", emit_mha},
    {"TransformerEncoderLayer", emit_encoder_layer},
    {"TransformerEncoder", emit_encoder},
    {"PositionalEncoding", emit_positions},
    {"LearnedPositionalEmbedding", emit_positions},
    {"SeqPool", emit_seq_pool},
};

bool ex_is_seq_container(const char *type) {
    for (size_t i = 0; i < sizeof seq_containers / sizeof seq_containers[0]; i++)
        if (strcmp(seq_containers[i].type, type) == 0) return true;
    return false;
}

bool ex_seq_container(ex_graph *g, const gf_module *m, const char *path, ex_val *x) {
    const char *type = gf_module_type(m);
    for (size_t i = 0; i < sizeof seq_containers / sizeof seq_containers[0]; i++)
        if (strcmp(seq_containers[i].type, type) == 0) return seq_containers[i].fn(g, m, path, x);
    return ex_refuse(g, m, path, "is not a sequence module the exporter knows");
}
