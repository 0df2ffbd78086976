/* Model specs, part 3: the layers of text models: embedding (token ids [T] -> [T, dim]) and the
 * recurrent layers lstm and gru ([T, input_size] -> [T, D * hidden_size]), with PyTorch's
 * argument names. */
#include "spec_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* num_embeddings (a number, or the data's vocabulary), embedding_dim and padding_idx (null:
 * none; absent: pad_default). */
static bool embedding_settings(spec_state *s, const cJSON *n, const char *path, const char *type,
                               int64_t pad_default, int64_t *num, int64_t *dim, int64_t *pad) {
    if (!spec_get_vocab(s, n, 1, INT64_C(1) << 40, path, type, num) ||
        !spec_get_int(s, n, "embedding_dim", 0, 1, INT64_C(1) << 30, path, type, dim))
        return false;
    const cJSON *pv = spec_get(n, "padding_idx");
    if (pv && cJSON_IsNull(pv)) {
        *pad = -1; /* torch's None */
        return true;
    }
    return spec_get_int(s, n, "padding_idx", pad_default, -1, *num - 1, path, type, pad);
}

/* torch.nn.Embedding: ids of any sample shape (float32 whole numbers from a text dataset, or
 * int64) -> the same shape with a last axis of embedding_dim. */
gf_module *spec_build_embedding(spec_state *s, const cJSON *n, const char *path, const char *type,
                                const shape *cur) {
    int64_t num, dim, pad;
    if (!embedding_settings(s, n, path, type, -1, &num, &dim, &pad)) return NULL;
    snprintf(s->expect, sizeof s->expect, "token ids in [0, %lld)", (long long)num);
    int64_t act = cur->ndim >= 0 ? spec_mul(spec_numel(cur), dim) : -1;
    if (!spec_budget(s, path, type, spec_mul(num, dim), act)) return NULL;
    return gf_nn_embedding(s->ctx, s->rng, num, dim, pad);
}

/* torch.nn.EmbeddingBag on samples of token ids [T] -> [embedding_dim]: each sample is a bag
 * reduced by mode, its padding_idx ids left out (torch's default padding_idx is None; a text
 * dataset pads with 0, which is the default here). */
gf_module *spec_build_embedding_bag(spec_state *s, const cJSON *n, const char *path,
                                    const char *type, const shape *cur) {
    int64_t num, dim, pad;
    int mode;
    if (!embedding_settings(s, n, path, type, 0, &num, &dim, &pad) ||
        !spec_get_choice(s, n, "mode", "mean,sum,max", path, type, &mode))
        return NULL;
    snprintf(s->expect, sizeof s->expect, "token ids [T] in [0, %lld)", (long long)num);
    int64_t act = cur->ndim >= 0 ? spec_mul(spec_numel(cur), dim) : -1;
    if (!spec_budget(s, path, type, spec_mul(num, dim), act)) return NULL;
    return gf_nn_embedding_bag(s->ctx, s->rng, num, dim, (gf_nn_bag_mode)mode, pad);
}

/* The parameter count of a stack: per layer and direction G H (in + H) weights and 2 G H
 * biases, in = input_size below and D H above. */
static int64_t rnn_weights(int64_t gates, int64_t in, int64_t h, int64_t layers, int64_t dirs,
                           bool bias) {
    const int64_t gh = spec_mul(gates, h);
    int64_t total = 0;
    for (int64_t l = 0; l < layers; l++) {
        int64_t one = spec_add(spec_mul(gh, spec_add(l ? spec_mul(dirs, h) : in, h)),
                               bias ? spec_mul(2, gh) : 0);
        total = spec_add(total, spec_mul(dirs, one));
    }
    return total;
}

/* torch.nn.LSTM / GRU on samples [T, input_size]; the batch axis of a spec comes first, so
 * batch_first is true (false is refused rather than silently mixing time and batch). */
gf_module *spec_build_rnn(spec_state *s, const cJSON *n, const char *path, const char *type,
                          const shape *cur) {
    const bool lstm = strcmp(type, "lstm") == 0;
    int64_t in, hidden, layers;
    bool bias, batch_first, bidir;
    const cJSON *dv = spec_get(n, "dropout");
    if (spec_get(n, "input_size")) {
        if (!spec_get_int(s, n, "input_size", 0, 1, INT64_C(1) << 30, path, type, &in)) return NULL;
    } else if (cur->ndim == 2) {
        in = cur->d[1];
    } else {
        char sh[96];
        spec_shape_str(cur, true, sh, sizeof sh);
        return spec_fail(s, path, type, cur->ndim < 0
                             ? "\"input_size\" is missing (give it, or give the model an input "
                               "shape so it can be inferred)"
                             : "cannot infer \"input_size\" from the input %s (expected [N, T, "
                               "input_size])", sh);
    }
    if (!spec_get_int(s, n, "hidden_size", 0, 1, INT64_C(1) << 30, path, type, &hidden) ||
        !spec_get_int(s, n, "num_layers", 1, 1, 1024, path, type, &layers) ||
        !spec_get_bool(s, n, "bias", true, path, type, &bias) ||
        !spec_get_bool(s, n, "batch_first", true, path, type, &batch_first) ||
        !spec_get_bool(s, n, "bidirectional", false, path, type, &bidir))
        return NULL;
    if (!batch_first)
        return spec_fail(s, path, type, "\"batch_first\" must be true in a spec: the batch is the "
                         "first axis of every layer's input");
    if (dv && (!cJSON_IsNumber(dv) || !(dv->valuedouble >= 0 && dv->valuedouble <= 1)))
        return spec_fail(s, path, type, "\"dropout\" must be a number in [0, 1]");
    snprintf(s->expect, sizeof s->expect, "[N, T, %lld]", (long long)in);
    const int64_t dirs = bidir ? 2 : 1;
    int64_t act = cur->ndim == 2 ? spec_mul(cur->d[0], spec_mul(dirs, hidden)) : -1;
    if (!spec_budget(s, path, type, rnn_weights(lstm ? 4 : 3, in, hidden, layers, dirs, bias), act))
        return NULL;
    gf_nn_rnn_params p = gf_nn_rnn_default_params(in, hidden);
    p.num_layers = (int)layers;
    p.bias = bias;
    p.batch_first = true;
    p.dropout = dv ? (float)dv->valuedouble : 0.0f;
    p.bidirectional = bidir;
    return lstm ? gf_nn_lstm(s->ctx, s->rng, &p) : gf_nn_gru(s->ctx, s->rng, &p);
}
