/* Model specs, part 3: the sequence layers (MultiheadAttention, TransformerEncoderLayer,
 * TransformerEncoder, PositionalEncoding, SeqPool) and the TextClassifier block. A spec runs
 * batches of samples [T, D], so these layers are batch-first. */
#include "spec_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- settings ------------------------------------------------------------------------------ */

/* One of the comma-separated words in `choices`, as its index; absent: 0 (the first). */

/* batch_first must be true: a spec's batches are [N, T, D]. */
static bool a_batch_first(spec_state *s, const cJSON *n, const char *path, const char *type) {
    bool bf;
    if (!spec_get_bool(s, n, "batch_first", true, path, type, &bf)) return false;
    if (!bf) spec_fail(s, path, type, "\"batch_first\" must be true: a spec runs batches [N, T, D]");
    return bf;
}

/* The model width: the setting `key`, or the last axis of a known [T, D] input. */
static bool a_width(spec_state *s, const cJSON *n, const char *key, const shape *cur,
                    const char *path, const char *type, int64_t *out) {
    if (spec_get(n, key) || cur->ndim < 1) /* required when the input shape is not known */
        return spec_get_int(s, n, key, 0, 1, INT64_C(1) << 30, path, type, out);
    *out = cur->d[cur->ndim - 1];
    snprintf(s->expect, sizeof s->expect, "[N, T, %lld]", (long long)*out);
    return true;
}

/* Values one example holds at once in an attention layer on [T, D]: the larger of its
 * output and its heads' [T, T] weights (-1: the input shape is not known). */
static int64_t attn_act(const shape *cur, int64_t heads) {
    if (cur->ndim < 1) return -1;
    const int64_t t = cur->d[0], w = spec_mul(heads, spec_mul(t, t)), n = spec_numel(cur);
    return w > n ? w : n;
}

/* Elements of one layer's weights (in_proj, out_proj, two linears, two LayerNorms). */
static int64_t layer_weights(int64_t d, int64_t ff) {
    return spec_add(spec_add(spec_mul(4 * d, d + 1), spec_mul(2 * ff, d)), spec_add(ff, 5 * d));
}

static bool layer_settings(spec_state *s, const cJSON *n, const shape *cur, const char *path,
                           const char *type, gf_nn_transformer_params *p) {
    int64_t d, heads, ff;
    int act;
    if (!a_width(s, n, "d_model", cur, path, type, &d) ||
        !spec_get_int(s, n, "nhead", 0, 1, INT64_C(1) << 20, path, type, &heads) ||
        !spec_get_int(s, n, "dim_feedforward", 2048, 1, INT64_C(1) << 30, path, type, &ff))
        return false;
    *p = gf_nn_transformer_default_params(d, heads);
    p->dim_feedforward = ff;
    if (!spec_get_float(s, n, "dropout", 0.1, 0, 1, path, type, &p->dropout) ||
        !spec_get_choice(s, n, "activation", "relu,gelu", path, type, &act) ||
        !spec_get_float(s, n, "layer_norm_eps", 1e-5, 1e-30, 1e3, path, type, &p->layer_norm_eps) ||
        !spec_get_bool(s, n, "norm_first", false, path, type, &p->norm_first) ||
        !spec_get_bool(s, n, "causal", false, path, type, &p->causal) || !a_batch_first(s, n, path, type))
        return false;
    p->activation = act ? GF_NN_ACT_GELU : GF_NN_ACT_RELU;
    p->batch_first = true;
    snprintf(s->expect, sizeof s->expect, "[N, T, %lld]", (long long)d);
    return true;
}

/* ---- builders ------------------------------------------------------------------------------ */

gf_module *spec_b_mha(spec_state *s, const cJSON *n, const char *path, const char *type,
                      const shape *cur) {
    int64_t e, heads;
    float p;
    bool bias;
    if (!a_width(s, n, "embed_dim", cur, path, type, &e) ||
        !spec_get_int(s, n, "num_heads", 0, 1, INT64_C(1) << 20, path, type, &heads) ||
        !spec_get_float(s, n, "dropout", 0.0, 0, 1, path, type, &p) ||
        !spec_get_bool(s, n, "bias", true, path, type, &bias) || !a_batch_first(s, n, path, type))
        return NULL;
    snprintf(s->expect, sizeof s->expect, "[N, T, %lld]", (long long)e);
    if (!spec_budget(s, path, type, spec_mul(4 * e, e + bias), attn_act(cur, heads))) return NULL;
    return gf_nn_multihead_attention(s->ctx, s->rng, e, heads, p, bias, true);
}

gf_module *spec_b_encoder_layer(spec_state *s, const cJSON *n, const char *path,
                                const char *type, const shape *cur) {
    gf_nn_transformer_params p;
    if (!layer_settings(s, n, cur, path, type, &p) ||
        !spec_budget(s, path, type, layer_weights(p.d_model, p.dim_feedforward),
                     attn_act(cur, p.nhead)))
        return NULL;
    return gf_nn_transformer_encoder_layer(s->ctx, s->rng, &p);
}

gf_module *spec_b_encoder(spec_state *s, const cJSON *n, const char *path, const char *type,
                          const shape *cur) {
    gf_nn_transformer_params p;
    int64_t layers;
    bool norm;
    if (!layer_settings(s, n, cur, path, type, &p) ||
        !spec_get_int(s, n, "num_layers", 0, 1, 1 << 16, path, type, &layers) ||
        !spec_get_bool(s, n, "norm", false, path, type, &norm))
        return NULL;
    int64_t w = spec_add(spec_mul(layers, layer_weights(p.d_model, p.dim_feedforward)),
                         norm ? 2 * p.d_model : 0);
    if (!spec_budget(s, path, type, w, attn_act(cur, p.nhead))) return NULL;
    return gf_nn_transformer_encoder(s->ctx, s->rng, &p, (int)layers, norm);
}

gf_module *spec_b_positional(spec_state *s, const cJSON *n, const char *path, const char *type,
                             const shape *cur) {
    int64_t d, max_len;
    float p;
    int kind;
    if (!a_width(s, n, "d_model", cur, path, type, &d) ||
        !spec_get_float(s, n, "dropout", 0.1, 0, 1, path, type, &p) ||
        !spec_get_int(s, n, "max_len", 5000, 1, INT64_C(1) << 30, path, type, &max_len) ||
        !spec_get_choice(s, n, "kind", "sinusoidal,learned", path, type, &kind) ||
        !a_batch_first(s, n, path, type))
        return NULL;
    snprintf(s->expect, sizeof s->expect, "[N, T <= %lld, %lld]", (long long)max_len, (long long)d);
    if (!spec_budget(s, path, type, spec_mul(max_len, d), spec_numel(cur))) return NULL;
    return kind ? gf_nn_learned_positional_embedding(s->ctx, s->rng, max_len, d, p, true)
                : gf_nn_positional_encoding(s->ctx, d, p, max_len, true);
}

gf_module *spec_b_seqpool(spec_state *s, const cJSON *n, const char *path, const char *type,
                          const shape *cur) {
    int mode;
    if (!spec_get_choice(s, n, "mode", "mean,max,last,first,none", path, type, &mode) ||
        !a_batch_first(s, n, path, type))
        return NULL;
    snprintf(s->expect, sizeof s->expect, "[N, T, D]");
    if (!spec_budget(s, path, type, 0, cur->ndim == 2 ? cur->d[1] : -1)) return NULL;
    return gf_nn_seq_pool(s->ctx, (gf_nn_seq_pool_mode)mode, true);
}

/* embedding -> pos -> TransformerEncoder -> SeqPool -> Linear, on float token ids [N, T]. */
gf_module *spec_b_text_classifier(spec_state *s, const cJSON *n, const char *path,
                                  const char *type, const shape *cur) {
    int64_t vocab, layers, out, max_len;
    int pos, pool;
    gf_nn_transformer_params p;
    const shape none = {-1, {0}};
    if (!spec_get_vocab(s, n, 2, INT64_C(1) << 30, path, type, &vocab) ||
        !layer_settings(s, n, &none, path, type, &p) ||
        !spec_get_int(s, n, "num_layers", 0, 1, 1 << 16, path, type, &layers) ||
        !spec_get_choice(s, n, "positions", "sinusoidal,learned,none", path, type, &pos) ||
        !spec_get_int(s, n, "max_len", cur->ndim == 1 ? cur->d[0] : 512, 1, INT64_C(1) << 30, path, type,
               &max_len) ||
        !spec_get_choice(s, n, "pool", "mean,max,last,first,none", path, type, &pool) ||
        !spec_get_out(s, n, INT64_C(1) << 30, path, type, &out))
        return NULL;
    const int64_t d = p.d_model;
    snprintf(s->expect, sizeof s->expect, "token ids [N, T <= %lld]", (long long)max_len);
    int64_t w = spec_add(spec_add(spec_mul(vocab, d), pos < 2 ? spec_mul(max_len, d) : 0),
                         spec_add(spec_mul(layers, layer_weights(d, p.dim_feedforward)),
                                  spec_mul(out, d + 1)));
    const int64_t act = attn_act(cur, p.nhead);
    if (!spec_budget(s, path, type, w, act > out ? act : out)) return NULL;
    gf_module *m = gf_nn_text_classifier(s->ctx, gf_nn_embedding(s->ctx, s->rng, vocab, d, 0),
                                         gf_nn_transformer_encoder(s->ctx, s->rng, &p, (int)layers, false),
                                         gf_nn_seq_pool(s->ctx, (gf_nn_seq_pool_mode)pool, true),
                                         gf_nn_linear(s->ctx, s->rng, d, out, true));
    gf_module *pm = pos == 0   ? gf_nn_positional_encoding(s->ctx, d, p.dropout, max_len, true)
                    : pos == 1 ? gf_nn_learned_positional_embedding(s->ctx, s->rng, max_len, d,
                                                                    p.dropout, true)
                               : NULL;
    if (!m || (pos < 2 && (!pm || gf_module_add(s->ctx, m, "pos", pm) != GF_OK))) {
        if (pm && !m) gf_module_free(pm);
        gf_module_free(m);
        return NULL;
    }
    return m;
}
