/* torch.nn.MultiheadAttention, TransformerEncoderLayer and TransformerEncoder with PyTorch's
 * names, initialisation and forward, plus positions, pooling over time and a text classifier. */
#include "nn/nn_internal.h"

#include <math.h>
#include <stdlib.h>

/* ---- shared: sequence layout and lengths ------------------------------------------------ */

/* Axes of a [N, T, D] (batch_first) or [T, N, D] tensor. */
static int t_axis(bool batch_first) { return batch_first ? 1 : 0; }
static int n_axis(bool batch_first) { return batch_first ? 0 : 1; }

static bool check_seq3(gf_ctx *ctx, const char *what, const gf_tensor *x, int64_t d,
                       bool batch_first) {
    if (!gf_check_tensor(ctx, what, "input", x, GF_F32)) return false;
    if (x->ndim == 3 && (d <= 0 || x->shape[2] == d)) return true;
    char sx[GF_SHAPE_BUF];
    gf_shape_str(x, sx, sizeof sx);
    if (d > 0)
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: expected input %s with D = %lld, got %s", what,
                         batch_first ? "[N, T, D]" : "[T, N, D]", (long long)d, sx);
    else
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: expected input %s, got %s", what,
                         batch_first ? "[N, T, D]" : "[T, N, D]", sx);
    return false;
}

/* lengths must be int64 [N] with values in [0, T]. */
static bool check_lengths(gf_ctx *ctx, const char *what, const gf_tensor *lengths, int64_t n,
                          int64_t t) {
    if (lengths->dtype != GF_I64 || lengths->ndim != 1 || lengths->shape[0] != n) {
        char sl[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: lengths must be int64 [N] = [%lld], got %s", what,
                         (long long)n, gf_shape_str(lengths, sl, sizeof sl));
        return false;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t v = gf_get_i64(lengths, i);
        if (v < 0 || v > t) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: lengths[%lld] = %lld is outside [0, %lld]",
                             what, (long long)i, (long long)v, (long long)t);
            return false;
        }
    }
    return true;
}

/* 1 at real steps, 0 at padding: [N, T, 1] (batch_first) or [T, N, 1]; NULL on error. */
static gf_tensor *step_mask(gf_ctx *ctx, const char *what, const gf_tensor *x,
                            const gf_tensor *lengths, bool batch_first) {
    const int64_t t = x->shape[t_axis(batch_first)], n = x->shape[n_axis(batch_first)];
    if (!check_lengths(ctx, what, lengths, n, t)) return NULL;
    int64_t shape[3] = {x->shape[0], x->shape[1], 1};
    gf_tensor *m = gf_empty(ctx, GF_F32, 3, shape);
    if (!m) return NULL;
    float *pm = gf_f32(m);
    for (int64_t a = 0; a < shape[0]; a++)
        for (int64_t b = 0; b < shape[1]; b++) {
            int64_t ex = batch_first ? a : b, step = batch_first ? b : a;
            pm[a * shape[1] + b] = step < gf_get_i64(lengths, ex) ? 1.0f : 0.0f;
        }
    return m;
}

/* x with its padded steps set to 0 (a product with the step mask, so gradients stop there). */
static gf_tensor *zero_padding(gf_ctx *ctx, const char *what, gf_tensor *x,
                               const gf_tensor *lengths, bool batch_first) {
    if (!x || !lengths) return x;
    gf_tensor *m = step_mask(ctx, what, x, lengths, batch_first);
    return m ? gf_mul(ctx, x, m) : NULL;
}

/* ---- MultiheadAttention ------------------------------------------------------------------- */

typedef struct mha_cfg {
    int64_t embed_dim, num_heads;
    float dropout;
    bool batch_first;
} mha_cfg;

#define MHA_TYPE "MultiheadAttention"

static bool mha_check(gf_ctx *ctx, const mha_cfg *c, const gf_tensor *q, const gf_tensor *k,
                      const gf_tensor *v) {
    const char *what = MHA_TYPE;
    if (!check_seq3(ctx, what, q, c->embed_dim, c->batch_first) ||
        !check_seq3(ctx, what, k, c->embed_dim, c->batch_first) ||
        !check_seq3(ctx, what, v, c->embed_dim, c->batch_first))
        return false;
    const int na = n_axis(c->batch_first), ta = t_axis(c->batch_first);
    if (q->shape[na] == k->shape[na] && k->shape[na] == v->shape[na] &&
        k->shape[ta] == v->shape[ta])
        return true;
    char sq[GF_SHAPE_BUF], sk[GF_SHAPE_BUF], sv[GF_SHAPE_BUF];
    gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                     "%s: query %s, key %s and value %s must share the batch size, and key and "
                     "value the length",
                     what, gf_shape_str(q, sq, sizeof sq), gf_shape_str(k, sk, sizeof sk),
                     gf_shape_str(v, sv, sizeof sv));
    return false;
}

/* The input projections: one product when query, key and value are the same tensor (as
 * PyTorch), else one per row block of in_proj_weight. */
static bool mha_project(gf_ctx *ctx, gf_module *m, gf_tensor *query, gf_tensor *key,
                        gf_tensor *value, gf_tensor **qkv) {
    const int64_t e = ((const mha_cfg *)m->user)->embed_dim;
    gf_tensor *w = gf_module_tensor(ctx, m, "in_proj_weight");
    gf_tensor *b = gf_module_tensor(NULL, m, "in_proj_bias");
    if (!w) return false;
    if (query == key && key == value) {
        gf_tensor *all = gf_linear(ctx, query, w, b);
        return all && gf_split(ctx, all, (int64_t[]){e, e, e}, 3, -1, qkv) == GF_OK;
    }
    gf_tensor *in[3] = {query, key, value};
    for (int i = 0; i < 3; i++) {
        gf_tensor *wi = gf_slice(ctx, w, 0, i * e, (i + 1) * e, 1);
        gf_tensor *bi = b ? gf_slice(ctx, b, 0, i * e, (i + 1) * e, 1) : NULL;
        qkv[i] = gf_linear(ctx, in[i], wi, bi);
        if (!qkv[i]) return false;
    }
    return true;
}

static gf_tensor *mha_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user);

static gf_tensor *mha_run(gf_ctx *ctx, gf_module *m, gf_tensor *query, gf_tensor *key,
                          gf_tensor *value, gf_tensor *key_lengths, bool causal,
                          gf_tensor **weights) {
    if (!m || m->forward != mha_fwd) { /* e.g. a self_attn replaced by another module */
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "attention: module is %s, not a MultiheadAttention",
                         m ? m->type : "missing");
        return NULL;
    }
    const mha_cfg *c = m->user;
    if (!mha_check(ctx, c, query, key, value)) return NULL;
    gf_tensor *qkv[3];
    if (!mha_project(ctx, m, query, key, value, qkv)) return NULL;
    gf_attention_params ap = gf_attention_default_params();
    ap.key_lengths = key_lengths;
    ap.causal = causal;
    ap.dropout_p = c->dropout;
    ap.training = m->training;
    gf_tensor *w4 = NULL;
    gf_tensor *o = gf_multi_head_attention(ctx, qkv[0], qkv[1], qkv[2], c->num_heads,
                                           c->batch_first, &ap, weights ? &w4 : NULL);
    o = gf_module_forward(ctx, gf_module_child(m, "out_proj"), o);
    if (o && weights) *weights = gf_mean(ctx, w4, (int[]){1}, 1, false);
    return o;
}

static gf_tensor *mha_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    return mha_run(ctx, self, x, x, x, NULL, false, NULL);
}

static gf_tensor *mha_seq_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, gf_tensor *lengths,
                              void *user) {
    const mha_cfg *c = user;
    gf_tensor *y = mha_run(ctx, self, x, x, x, lengths, false, NULL);
    return zero_padding(ctx, MHA_TYPE, y, lengths, c->batch_first);
}

gf_tensor *gf_nn_multihead_attention_forward(gf_ctx *ctx, gf_module *mha, gf_tensor *query,
                                             gf_tensor *key, gf_tensor *value,
                                             gf_tensor *key_lengths, bool causal,
                                             gf_tensor **weights) {
    if (weights) *weights = NULL;
    return mha_run(ctx, mha, query, key, value, key_lengths, causal, weights);
}

gf_module *gf_nn_multihead_attention(gf_ctx *ctx, gf_rng *rng, int64_t embed_dim,
                                     int64_t num_heads, float dropout, bool bias,
                                     bool batch_first) {
    if (embed_dim <= 0 || num_heads <= 0 || embed_dim % num_heads != 0 ||
        !(dropout >= 0.0f && dropout <= 1.0f)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "MultiheadAttention(embed_dim=%lld, num_heads=%lld, dropout=%g): sizes "
                         "must be > 0, embed_dim divisible by num_heads, dropout in [0, 1]",
                         (long long)embed_dim, (long long)num_heads, (double)dropout);
        return NULL;
    }
    mha_cfg *c = malloc(sizeof *c);
    if (!c) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "MultiheadAttention: out of memory");
        return NULL;
    }
    *c = (mha_cfg){embed_dim, num_heads, dropout, batch_first};
    gf_module *m = gf_nn_container(ctx, MHA_TYPE, mha_fwd, c, free);
    if (!m) {
        free(c);
        return NULL;
    }
    gf_module_set_reentrant(m, true);
    gf_module_set_seq_forward(m, mha_seq_fwd);
    /* PyTorch builds out_proj (drawing its weights) before _reset_parameters draws in_proj */
    gf_tensor *w = gf_module_new_param(ctx, m, "in_proj_weight", 2, (int64_t[]){3 * embed_dim, embed_dim});
    gf_tensor *b = bias ? gf_module_new_param(ctx, m, "in_proj_bias", 1, (int64_t[]){3 * embed_dim}) : NULL;
    gf_module *out = gf_nn_linear(ctx, rng, embed_dim, embed_dim, bias);
    gf_tensor *ob = out && bias ? gf_module_tensor(ctx, out, "bias") : NULL;
    if (gf_module_add(ctx, m, "out_proj", out) != GF_OK || !w || (bias && (!b || !ob)) ||
        gf_nn_init_xavier_uniform(ctx, w, rng, 1.0f) != GF_OK) {
        gf_module_free(m);
        return NULL;
    }
    if (b) gf_nn_init_constant(ctx, b, 0.0f);
    if (ob) gf_nn_init_constant(ctx, ob, 0.0f);
    return m;
}

/* ---- TransformerEncoderLayer and TransformerEncoder ------------------------------------------ */

typedef struct layer_cfg {
    gf_nn_activation activation;
    bool batch_first, norm_first, causal;
} layer_cfg;

#define LAYER_TYPE "TransformerEncoderLayer"

gf_nn_transformer_params gf_nn_transformer_default_params(int64_t d_model, int64_t nhead) {
    gf_nn_transformer_params p = {d_model, nhead, 2048, 0.1f, GF_NN_ACT_RELU, 1e-5f,
                                  false, false, false};
    return p;
}

static gf_tensor *run(gf_ctx *ctx, gf_module *m, const char *child, gf_tensor *x) {
    return gf_module_forward(ctx, gf_module_child(m, child), x);
}

/* dropout1(self_attn(x, x, x)) */
static gf_tensor *sa_block(gf_ctx *ctx, gf_module *self, gf_tensor *x, gf_tensor *lengths) {
    const layer_cfg *c = self->user;
    gf_module *sa = gf_module_child(self, "self_attn");
    return run(ctx, self, "dropout1", mha_run(ctx, sa, x, x, x, lengths, c->causal, NULL));
}

/* dropout2(linear2(dropout(activation(linear1(x))))) */
static gf_tensor *ff_block(gf_ctx *ctx, gf_module *self, gf_tensor *x) {
    const layer_cfg *c = self->user;
    gf_tensor *h = run(ctx, self, "linear1", x);
    h = c->activation == GF_NN_ACT_GELU ? gf_gelu(ctx, h, GF_GELU_EXACT) : gf_relu(ctx, h);
    h = run(ctx, self, "linear2", run(ctx, self, "dropout", h));
    return run(ctx, self, "dropout2", h);
}

static gf_tensor *layer_seq_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, gf_tensor *lengths,
                                void *user) {
    const layer_cfg *c = user;
    if (!check_seq3(ctx, LAYER_TYPE, x, 0, c->batch_first)) return NULL;
    if (c->norm_first) {
        x = gf_add(ctx, x, sa_block(ctx, self, run(ctx, self, "norm1", x), lengths));
        x = gf_add(ctx, x, ff_block(ctx, self, run(ctx, self, "norm2", x)));
    } else {
        x = run(ctx, self, "norm1", gf_add(ctx, x, sa_block(ctx, self, x, lengths)));
        x = run(ctx, self, "norm2", gf_add(ctx, x, ff_block(ctx, self, x)));
    }
    return zero_padding(ctx, LAYER_TYPE, x, lengths, c->batch_first);
}

static gf_tensor *layer_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    return layer_seq_fwd(ctx, self, x, NULL, user);
}

static bool transformer_params_ok(gf_ctx *ctx, const char *type, const gf_nn_transformer_params *p) {
    if (p && p->d_model > 0 && p->nhead > 0 && p->d_model % p->nhead == 0 &&
        p->dim_feedforward > 0 && p->dropout >= 0.0f && p->dropout <= 1.0f &&
        p->layer_norm_eps > 0.0f &&
        (p->activation == GF_NN_ACT_RELU || p->activation == GF_NN_ACT_GELU))
        return true;
    if (!p) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: parameters are NULL", type);
        return false;
    }
    gf_ctx_set_error(ctx, GF_ERR_INVALID,
                     "%s(d_model=%lld, nhead=%lld, dim_feedforward=%lld, dropout=%g, "
                     "layer_norm_eps=%g): sizes must be > 0, d_model divisible by nhead, dropout "
                     "in [0, 1], activation relu or gelu",
                     type, (long long)p->d_model, (long long)p->nhead,
                     (long long)p->dim_feedforward, (double)p->dropout, (double)p->layer_norm_eps);
    return false;
}

gf_module *gf_nn_transformer_encoder_layer(gf_ctx *ctx, gf_rng *rng,
                                           const gf_nn_transformer_params *p) {
    if (!transformer_params_ok(ctx, LAYER_TYPE, p)) return NULL;
    layer_cfg *c = malloc(sizeof *c);
    if (!c) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, LAYER_TYPE ": out of memory");
        return NULL;
    }
    *c = (layer_cfg){p->activation, p->batch_first, p->norm_first, p->causal};
    gf_module *m = gf_nn_container(ctx, LAYER_TYPE, layer_fwd, c, free);
    if (!m) {
        free(c);
        return NULL;
    }
    gf_module_set_reentrant(m, true);
    gf_module_set_seq_forward(m, layer_seq_fwd);
    const int64_t d = p->d_model;
    /* PyTorch's order of construction (and of drawing weights) */
    gf_module_add(ctx, m, "self_attn",
                  gf_nn_multihead_attention(ctx, rng, d, p->nhead, p->dropout, true, p->batch_first));
    gf_module_add(ctx, m, "linear1", gf_nn_linear(ctx, rng, d, p->dim_feedforward, true));
    gf_module_add(ctx, m, "dropout", gf_nn_dropout(ctx, p->dropout));
    gf_module_add(ctx, m, "linear2", gf_nn_linear(ctx, rng, p->dim_feedforward, d, true));
    gf_module_add(ctx, m, "norm1", gf_nn_layer_norm(ctx, 1, &d, p->layer_norm_eps, true));
    gf_module_add(ctx, m, "norm2", gf_nn_layer_norm(ctx, 1, &d, p->layer_norm_eps, true));
    gf_module_add(ctx, m, "dropout1", gf_nn_dropout(ctx, p->dropout));
    gf_module_add(ctx, m, "dropout2", gf_nn_dropout(ctx, p->dropout));
    if (gf_module_num_children(m) != 8) {
        gf_module_free(m);
        return NULL;
    }
    return m;
}

typedef struct encoder_cfg {
    bool batch_first;
} encoder_cfg;

static gf_tensor *encoder_seq_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, gf_tensor *lengths,
                                  void *user) {
    const encoder_cfg *c = user;
    x = gf_module_forward_seq(ctx, gf_module_child(self, "layers"), x, lengths);
    gf_module *norm = gf_module_child(self, "norm");
    if (!norm) return x;
    return zero_padding(ctx, "TransformerEncoder", gf_module_forward(ctx, norm, x), lengths,
                        c->batch_first);
}

static gf_tensor *encoder_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    return encoder_seq_fwd(ctx, self, x, NULL, user);
}

/* Every layer is built from the same generator state, so all start equal, as PyTorch's
 * deep copies of one layer do; rng ends where building one layer leaves it. */
static gf_module *encoder_layers(gf_ctx *ctx, gf_rng *rng, const gf_nn_transformer_params *p,
                                 int num_layers) {
    gf_rng *r = rng ? rng : gf_ctx_rng(ctx);
    const gf_rng start = *r;
    gf_rng after = start;
    gf_module *layers = gf_nn_sequential(ctx);
    for (int i = 0; i < num_layers && layers; i++) {
        gf_rng each = start;
        if (gf_module_append(ctx, layers, gf_nn_transformer_encoder_layer(ctx, &each, p)) != GF_OK) {
            gf_module_free(layers);
            return NULL;
        }
        if (i == 0) after = each;
    }
    *r = after;
    return layers;
}

gf_module *gf_nn_transformer_encoder(gf_ctx *ctx, gf_rng *rng, const gf_nn_transformer_params *p,
                                     int num_layers, bool final_norm) {
    if (!transformer_params_ok(ctx, "TransformerEncoder", p)) return NULL;
    if (num_layers < 1) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "TransformerEncoder(num_layers=%d): must be >= 1",
                         num_layers);
        return NULL;
    }
    encoder_cfg *c = malloc(sizeof *c);
    if (!c) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "TransformerEncoder: out of memory");
        return NULL;
    }
    c->batch_first = p->batch_first;
    gf_module *m = gf_nn_container(ctx, "TransformerEncoder", encoder_fwd, c, free);
    if (!m) {
        free(c);
        return NULL;
    }
    gf_module_set_reentrant(m, true);
    gf_module_set_seq_forward(m, encoder_seq_fwd);
    bool ok = gf_module_add(ctx, m, "layers", encoder_layers(ctx, rng, p, num_layers)) == GF_OK;
    if (ok && final_norm)
        ok = gf_module_add(ctx, m, "norm",
                           gf_nn_layer_norm(ctx, 1, &p->d_model, p->layer_norm_eps, true)) == GF_OK;
    if (!ok) {
        gf_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- positions ------------------------------------------------------------------------------ */

typedef struct pos_cfg {
    int64_t max_len, d_model;
    bool batch_first;
} pos_cfg;

/* x + table[:T] (table [max_len, ..., D] viewed as [T, 1, D] or [1, T, D]), then dropout. */
static gf_tensor *pos_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    const pos_cfg *c = user;
    if (!check_seq3(ctx, self->type, x, c->d_model, c->batch_first)) return NULL;
    const int64_t t = x->shape[t_axis(c->batch_first)];
    if (t > c->max_len) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: sequence length %lld exceeds max_len %lld",
                         self->type, (long long)t, (long long)c->max_len);
        return NULL;
    }
    gf_tensor *table = self->n_buffers ? self->buffers[0].t : self->params[0].t;
    int64_t shape[3] = {c->batch_first ? 1 : t, c->batch_first ? t : 1, c->d_model};
    gf_tensor *pe = gf_reshape(ctx, gf_slice(ctx, table, 0, 0, t, 1), 3, shape);
    return run(ctx, self, "dropout", gf_add(ctx, x, pe));
}

static gf_module *pos_new(gf_ctx *ctx, const char *type, int64_t max_len, int64_t d_model,
                          float dropout, bool batch_first) {
    if (max_len <= 0 || d_model <= 0 || !(dropout >= 0.0f && dropout <= 1.0f)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "%s(d_model=%lld, max_len=%lld, dropout=%g): sizes must be > 0, dropout "
                         "in [0, 1]",
                         type, (long long)d_model, (long long)max_len, (double)dropout);
        return NULL;
    }
    pos_cfg *c = malloc(sizeof *c);
    if (!c) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", type);
        return NULL;
    }
    *c = (pos_cfg){max_len, d_model, batch_first};
    gf_module *m = gf_nn_container(ctx, type, pos_fwd, c, free);
    if (!m) {
        free(c);
        return NULL;
    }
    gf_module_set_reentrant(m, true);
    return m;
}

gf_module *gf_nn_positional_encoding(gf_ctx *ctx, int64_t d_model, float dropout,
                                     int64_t max_len, bool batch_first) {
    gf_module *m = pos_new(ctx, "PositionalEncoding", max_len, d_model, dropout, batch_first);
    if (!m) return NULL;
    gf_tensor *pe = gf_module_new_buffer(ctx, m, "pe", GF_F32, 3, (int64_t[]){max_len, 1, d_model});
    if (!pe || gf_module_add(ctx, m, "dropout", gf_nn_dropout(ctx, dropout)) != GF_OK) {
        gf_module_free(m);
        return NULL;
    }
    /* in float32 as the tutorial computes it: div = exp(2i * (-ln(10000) / d)) */
    float *v = gf_f32(pe);
    const float f = -logf(10000.0f) / (float)d_model;
    for (int64_t i = 0; 2 * i < d_model; i++) {
        const float div = expf((float)(2 * i) * f);
        for (int64_t pos = 0; pos < max_len; pos++) {
            v[pos * d_model + 2 * i] = sinf((float)pos * div);
            if (2 * i + 1 < d_model) v[pos * d_model + 2 * i + 1] = cosf((float)pos * div);
        }
    }
    return m;
}

gf_module *gf_nn_learned_positional_embedding(gf_ctx *ctx, gf_rng *rng, int64_t max_len,
                                              int64_t d_model, float dropout, bool batch_first) {
    gf_module *m = pos_new(ctx, "LearnedPositionalEmbedding", max_len, d_model, dropout, batch_first);
    if (!m) return NULL;
    gf_tensor *w = gf_module_new_param(ctx, m, "weight", 2, (int64_t[]){max_len, d_model});
    if (!w || gf_nn_init_normal(ctx, w, rng, 0.0f, 1.0f) != GF_OK ||
        gf_module_add(ctx, m, "dropout", gf_nn_dropout(ctx, dropout)) != GF_OK) {
        gf_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- pooling over time ------------------------------------------------------------------------ */

typedef struct pool_cfg {
    gf_nn_seq_pool_mode mode;
    bool batch_first;
} pool_cfg;

const char *gf_nn_seq_pool_mode_name(gf_nn_seq_pool_mode mode) {
    static const char *const names[] = {"mean", "max", "last", "first", "none"};
    return mode >= GF_NN_SEQ_POOL_MEAN && mode <= GF_NN_SEQ_POOL_NONE ? names[mode] : NULL;
}

/* mean over real steps: sum(x * mask) / max(length, 1) */
static gf_tensor *pool_mean(gf_ctx *ctx, gf_tensor *x, gf_tensor *mask, const gf_tensor *lengths,
                            int ta) {
    const int64_t n = lengths->shape[0];
    gf_tensor *count = gf_empty(ctx, GF_F32, 2, (int64_t[]){n, 1});
    if (!count) return NULL;
    for (int64_t i = 0; i < n; i++) {
        int64_t l = gf_get_i64(lengths, i);
        gf_f32(count)[i] = (float)(l > 0 ? l : 1);
    }
    return gf_div(ctx, gf_sum(ctx, gf_mul(ctx, x, mask), (int[]){ta}, 1, false), count);
}

/* max over real steps (step 0 kept for a length of 0) */
static gf_tensor *pool_max(gf_ctx *ctx, gf_tensor *x, const gf_tensor *mask, int ta) {
    gf_tensor *cond = gf_empty(ctx, GF_I64, 3, mask->shape);
    if (!cond) return NULL;
    const int64_t rows = mask->shape[0], cols = mask->shape[1];
    for (int64_t a = 0; a < rows; a++)
        for (int64_t b = 0; b < cols; b++)
            gf_i64(cond)[a * cols + b] = gf_f32(mask)[a * cols + b] != 0.0f || (ta ? b : a) == 0;
    gf_tensor *masked = gf_where(ctx, cond, x, gf_scalar(ctx, -INFINITY));
    return gf_max(ctx, masked, (int[]){ta}, 1, false);
}

/* x at step max(length - 1, 0) of each example */
static gf_tensor *pool_last(gf_ctx *ctx, gf_tensor *x, const gf_tensor *lengths, bool bf) {
    const int64_t n = lengths->shape[0], d = x->shape[2];
    int64_t shape[3] = {bf ? n : 1, bf ? 1 : n, d};
    gf_tensor *idx = gf_empty(ctx, GF_I64, 3, shape);
    if (!idx) return NULL;
    for (int64_t i = 0; i < n; i++) {
        int64_t l = gf_get_i64(lengths, i);
        for (int64_t j = 0; j < d; j++) gf_i64(idx)[i * d + j] = l > 0 ? l - 1 : 0;
    }
    return gf_reshape(ctx, gf_gather(ctx, x, t_axis(bf), idx), 2, (int64_t[]){n, d});
}

static gf_tensor *pool_seq_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, gf_tensor *lengths,
                               void *user) {
    const pool_cfg *c = user;
    const bool bf = c->batch_first;
    if (!check_seq3(ctx, "SeqPool", x, 0, bf)) return NULL;
    const int ta = t_axis(bf);
    const int64_t n = x->shape[n_axis(bf)], t = x->shape[ta], d = x->shape[2];
    if (t == 0) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "SeqPool: input has no time steps");
        return NULL;
    }
    if (c->mode == GF_NN_SEQ_POOL_NONE) return bf ? x : gf_transpose(ctx, x, 0, 1);
    if (c->mode == GF_NN_SEQ_POOL_FIRST)
        return gf_reshape(ctx, gf_slice(ctx, x, ta, 0, 1, 1), 2, (int64_t[]){n, d});
    if (!lengths) { /* every step real */
        gf_tensor *all = gf_empty(ctx, GF_I64, 1, &n);
        if (!all) return NULL;
        for (int64_t i = 0; i < n; i++) gf_i64(all)[i] = t;
        lengths = all;
    }
    gf_tensor *mask = step_mask(ctx, "SeqPool", x, lengths, bf);
    if (!mask) return NULL;
    (void)self;
    switch (c->mode) {
    case GF_NN_SEQ_POOL_MEAN: return pool_mean(ctx, x, mask, lengths, ta);
    case GF_NN_SEQ_POOL_MAX: return pool_max(ctx, x, mask, ta);
    default: return pool_last(ctx, x, lengths, bf);
    }
}

static gf_tensor *pool_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    return pool_seq_fwd(ctx, self, x, NULL, user);
}

gf_module *gf_nn_seq_pool(gf_ctx *ctx, gf_nn_seq_pool_mode mode, bool batch_first) {
    if (!gf_nn_seq_pool_mode_name(mode)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "SeqPool: unknown mode %d (mean, max, last, first)",
                         (int)mode);
        return NULL;
    }
    pool_cfg *c = malloc(sizeof *c);
    if (!c) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "SeqPool: out of memory");
        return NULL;
    }
    *c = (pool_cfg){mode, batch_first};
    gf_module *m = gf_nn_container(ctx, "SeqPool", pool_fwd, c, free);
    if (!m) {
        free(c);
        return NULL;
    }
    gf_module_set_reentrant(m, true);
    gf_module_set_seq_forward(m, pool_seq_fwd);
    return m;
}

/* ---- the text classifier ---------------------------------------------------------------------- */

/* ids [N, T] float32 -> int64 ids, and lengths = non-zero ids per row. */
static bool token_ids(gf_ctx *ctx, gf_tensor *x, gf_tensor **ids, gf_tensor **lengths) {
    const char *what = "TextClassifier";
    if (!gf_check_tensor(ctx, what, "input", x, GF_F32)) return false;
    if (x->ndim != 2) {
        char sx[GF_SHAPE_BUF];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: expected token ids [N, T], got %s", what,
                         gf_shape_str(x, sx, sizeof sx));
        return false;
    }
    const int64_t n = x->shape[0], t = x->shape[1];
    const float *px = gf_contig_f32(ctx, x);
    *ids = gf_empty(ctx, GF_I64, 2, x->shape);
    *lengths = gf_empty(ctx, GF_I64, 1, &n);
    if (!px || !*ids || !*lengths) return false;
    for (int64_t i = 0; i < n; i++) {
        int64_t len = 0;
        for (int64_t j = 0; j < t; j++) {
            float v = px[i * t + j];
            if (!(v >= 0.0f && v < 9.0e15f) || v != floorf(v)) {
                gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                 "%s: token id %g at [%lld, %lld] is not a whole number >= 0",
                                 what, (double)v, (long long)i, (long long)j);
                return false;
            }
            gf_i64(*ids)[i * t + j] = (int64_t)v;
            len += v != 0.0f;
        }
        gf_i64(*lengths)[i] = len;
    }
    return true;
}

static gf_tensor *text_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    gf_tensor *ids, *lengths;
    if (!token_ids(ctx, x, &ids, &lengths)) return NULL;
    gf_tensor *h = run(ctx, self, "embedding", ids);
    if (gf_module_child(self, "pos")) h = run(ctx, self, "pos", h);
    h = gf_module_forward_seq(ctx, gf_module_child(self, "encoder"), h, lengths);
    h = gf_module_forward_seq(ctx, gf_module_child(self, "pool"), h, lengths);
    return run(ctx, self, "fc", h);
}

gf_module *gf_nn_text_classifier(gf_ctx *ctx, gf_module *embedding, gf_module *encoder,
                                 gf_module *pool, gf_module *head) {
    gf_module *m = gf_nn_container(ctx, "TextClassifier", text_fwd, NULL, NULL);
    if (m) gf_module_set_reentrant(m, true);
    gf_module *parts[4] = {embedding, encoder, pool, head};
    static const char *const names[4] = {"embedding", "encoder", "pool", "fc"};
    bool ok = m != NULL;
    for (int i = 0; i < 4; i++) {
        if (!m) { /* the container failed: the parts are still ours to free */
            if (parts[i] && !parts[i]->parent) gf_module_free(parts[i]);
            continue;
        }
        ok = gf_module_add(ctx, m, names[i], parts[i]) == GF_OK && ok;
    }
    if (!ok) {
        gf_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- what the ONNX exporter reads (nn_access.h) ------------------------------------------------ */

gf_nn_seq_view gf_nn_seq_view_of(const gf_module *m) {
    gf_nn_seq_view v;
    memset(&v, 0, sizeof v);
    if (!m) return v;
    if (m->layer && (strcmp(m->type, "LSTM") == 0 || strcmp(m->type, "GRU") == 0)) {
        const gf_layer_cfg *c = &m->cfg;
        v.known = true;
        v.batch_first = c->rnn.batch_first;
        v.rnn_layers = c->rnn.layers;
        v.rnn_dirs = c->rnn.dirs;
        v.rnn_bias = c->rnn.bias;
        v.rnn_input = c->in;
        v.rnn_hidden = c->out;
    } else if (m->forward == mha_fwd) {
        const mha_cfg *c = m->user;
        v = (gf_nn_seq_view){.known = true, .batch_first = c->batch_first,
                             .embed_dim = c->embed_dim, .num_heads = c->num_heads};
    } else if (m->forward == layer_fwd) {
        const layer_cfg *c = m->user;
        v = (gf_nn_seq_view){.known = true, .batch_first = c->batch_first,
                             .activation = c->activation, .norm_first = c->norm_first,
                             .causal = c->causal};
    } else if (m->forward == encoder_fwd) {
        v = (gf_nn_seq_view){.known = true,
                             .batch_first = ((const encoder_cfg *)m->user)->batch_first};
    } else if (m->forward == pos_fwd) {
        const pos_cfg *c = m->user;
        v = (gf_nn_seq_view){.known = true, .batch_first = c->batch_first,
                             .max_len = c->max_len, .d_model = c->d_model,
                             .table = m->n_buffers ? m->buffers[0].t : m->params[0].t};
    } else if (m->forward == pool_fwd) {
        const pool_cfg *c = m->user;
        v = (gf_nn_seq_view){.known = true, .batch_first = c->batch_first, .pool = c->mode};
    }
    return v;
}
