/* Attention and the Transformer encoder against PyTorch (tests/fixtures/attention_parity.json,
 * written by tests/fixtures/gen_attention.py): outputs, attention weights, and the gradients of
 * every parameter and input; finite differences of the attention op (with key lengths, causal,
 * and with dropout under a fixed RNG state); pooling with lengths;
 * state_dict names; error messages; and a text classifier that learns a small task with gf_fit.
 * To add a parity case: add it to gen_attention.py's main() and rerun it; every case of a known
 * kind ("mha", "layer", "encoder", "pool") runs here. */
#include "testutil.h"

#include <graft/graft.h>
#include <graft/nn.h>
#include <graft/optim.h>
#include <graft/spec.h>
#include <graft/train.h>
#include <graft/zoo.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double TOL = 1e-4;

static cJSON *fixture(void) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/attention_parity.json", src ? src : ".");
    return test_read_json(path);
}

static const cJSON *item(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static double num(const cJSON *o, const char *k) { return item(o, k)->valuedouble; }
static bool flag(const cJSON *o, const char *k) { return cJSON_IsTrue(item(o, k)); }

/* |a - b| <= TOL (1 + |b|) for every element; prints the first miss. */
static void check_array(const char *id, const char *what, const float *a, const cJSON *want) {
    int i = 0, bad = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, want) {
        double d = fabs((double)a[i] - v->valuedouble);
        if (!(d <= TOL * (1.0 + fabs(v->valuedouble))) && !bad++)
            fprintf(stderr, "%s: %s[%d] = %.7g, torch %.7g\n", id, what, i, (double)a[i],
                    v->valuedouble);
        i++;
    }
    CHECK(bad == 0);
}

static gf_tensor *tensor_of(gf_ctx *ctx, const cJSON *shape, const cJSON *data, bool grad) {
    int64_t s[8];
    int nd = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, shape) s[nd++] = (int64_t)v->valuedouble;
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, nd, s);
    int i = 0;
    cJSON_ArrayForEach(v, data) gf_f32(t)[i++] = (float)v->valuedouble;
    gf_tensor_set_requires_grad(t, grad);
    return t;
}

static gf_tensor *lengths_of(gf_ctx *ctx, const cJSON *c) {
    const cJSON *l = item(c, "lengths");
    if (!cJSON_IsArray(l)) return NULL;
    int64_t n = cJSON_GetArraySize(l), v[16];
    for (int64_t i = 0; i < n; i++) v[i] = (int64_t)cJSON_GetArrayItem(l, (int)i)->valuedouble;
    return gf_tensor_from_data(ctx, GF_I64, 1, &n, v);
}

/* The state_dict names, shapes and order equal torch's; the values are loaded. */
static void load_state(gf_ctx *ctx, gf_module *m, const cJSON *c) {
    const char *id = item(c, "id")->valuestring;
    gf_named_tensors *nt = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    CHECK(nt && nt->n == cJSON_GetArraySize(item(c, "state")));
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, item(c, "state")) {
        const char *name = item(e, "name")->valuestring;
        if (nt && i < nt->n && strcmp(nt->items[i].name, name) != 0) {
            fprintf(stderr, "%s: state_dict key %d is %s, torch %s\n", id, i, nt->items[i].name, name);
            CHECK(0);
        }
        gf_tensor *src = tensor_of(ctx, item(e, "shape"), item(e, "data"), false);
        CHECK(gf_module_load(ctx, m, name, GF_F32, src->ndim, src->shape, src->data) == GF_OK);
        gf_tensor_free(src);
        i++;
    }
    gf_named_tensors_free(nt);
}

/* sum(out * gout) backward, then out and every gradient compared with torch's. */
static void check_grads(gf_ctx *ctx, const cJSON *c, gf_module *m, gf_tensor *out,
                        gf_tensor **inputs, int n_inputs) {
    const char *id = item(c, "id")->valuestring;
    CHECK(out != NULL);
    if (!out) {
        fprintf(stderr, "%s: %s\n", id, gf_ctx_error(ctx));
        return;
    }
    gf_tensor *gout = tensor_of(ctx, item(c, "out_shape"), item(c, "gout"), false);
    CHECK(gf_backward(ctx, gf_sum(ctx, gf_mul(ctx, out, gout), NULL, 0, false)) == GF_OK);
    gf_tensor_free(gout);
    check_array(id, "out", gf_f32(gf_contiguous(ctx, out)), item(c, "out"));
    for (int i = 0; i < n_inputs; i++) {
        const cJSON *in = cJSON_GetArrayItem(item(c, "inputs"), i);
        CHECK(inputs[i]->grad != NULL);
        if (inputs[i]->grad) check_array(id, item(in, "name")->valuestring, gf_f32(inputs[i]->grad), item(in, "grad"));
    }
    const cJSON *g;
    cJSON_ArrayForEach(g, item(c, "grads")) {
        gf_tensor *p = gf_module_tensor(ctx, m, item(g, "name")->valuestring);
        CHECK(p && p->grad);
        if (p && p->grad) check_array(id, item(g, "name")->valuestring, gf_f32(p->grad), item(g, "data"));
    }
}

static gf_tensor **case_inputs(gf_ctx *ctx, const cJSON *c, int *n) {
    static gf_tensor *in[3];
    *n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, item(c, "inputs")) in[(*n)++] = tensor_of(ctx, item(e, "shape"), item(e, "data"), true);
    return in;
}

static void run_mha(gf_ctx *ctx, const cJSON *c) {
    gf_module *m = gf_nn_multihead_attention(ctx, NULL, (int64_t)num(c, "embed_dim"),
                                             (int64_t)num(c, "num_heads"), 0.0f, flag(c, "bias"),
                                             flag(c, "batch_first"));
    CHECK(m != NULL);
    load_state(ctx, m, c);
    int n;
    gf_tensor **in = case_inputs(ctx, c, &n);
    gf_tensor *len = lengths_of(ctx, c), *w = NULL;
    gf_tensor *q = in[0], *k = n == 3 ? in[1] : q, *v = n == 3 ? in[2] : q;
    gf_tensor *out = gf_nn_multihead_attention_forward(ctx, m, q, k, v, len, flag(c, "causal"), &w);
    CHECK(w != NULL);
    if (w) check_array(item(c, "id")->valuestring, "weights", gf_f32(w), item(c, "weights"));
    check_grads(ctx, c, m, out, in, n);
    for (int i = 0; i < n; i++) gf_tensor_free(in[i]);
    gf_tensor_free(len);
    gf_module_free(m);
    gf_ctx_reset(ctx);
}

static gf_nn_transformer_params layer_params(const cJSON *c) {
    gf_nn_transformer_params p = gf_nn_transformer_default_params((int64_t)num(c, "d_model"),
                                                                  (int64_t)num(c, "nhead"));
    p.dim_feedforward = (int64_t)num(c, "dim_feedforward");
    p.dropout = 0.0f;
    p.activation = strcmp(item(c, "activation")->valuestring, "gelu") == 0 ? GF_NN_ACT_GELU : GF_NN_ACT_RELU;
    p.batch_first = flag(c, "batch_first");
    p.norm_first = flag(c, "norm_first");
    return p;
}

static void run_layer(gf_ctx *ctx, const cJSON *c, bool encoder) {
    gf_nn_transformer_params p = layer_params(c);
    gf_module *m = encoder ? gf_nn_transformer_encoder(ctx, NULL, &p, (int)num(c, "num_layers"), true)
                           : gf_nn_transformer_encoder_layer(ctx, NULL, &p);
    CHECK(m != NULL);
    load_state(ctx, m, c);
    int n;
    gf_tensor **in = case_inputs(ctx, c, &n);
    gf_tensor *len = lengths_of(ctx, c);
    check_grads(ctx, c, m, gf_module_forward_seq(ctx, m, in[0], len), in, 1);
    gf_tensor_free(in[0]);
    gf_tensor_free(len);
    gf_module_free(m);
    gf_ctx_reset(ctx);
}

static void run_pool(gf_ctx *ctx, const cJSON *c) {
    static const char *const modes[] = {"mean", "max", "last", "first"};
    gf_nn_seq_pool_mode mode = GF_NN_SEQ_POOL_MEAN;
    for (int i = 0; i < 4; i++)
        if (strcmp(item(c, "mode")->valuestring, modes[i]) == 0) mode = (gf_nn_seq_pool_mode)i;
    CHECK(strcmp(gf_nn_seq_pool_mode_name(mode), item(c, "mode")->valuestring) == 0);
    gf_module *m = gf_nn_seq_pool(ctx, mode, true);
    int n;
    gf_tensor **in = case_inputs(ctx, c, &n);
    gf_tensor *len = lengths_of(ctx, c);
    check_grads(ctx, c, m, gf_module_forward_seq(ctx, m, in[0], len), in, 1);
    /* without lengths every step is real: the mean is the plain mean over time */
    if (mode == GF_NN_SEQ_POOL_MEAN) {
        gf_tensor *all = gf_module_forward(ctx, m, in[0]);
        gf_tensor *ref = gf_mean(ctx, in[0], (int[]){1}, 1, false);
        CHECK(all && ref && all->ndim == 2);
        for (int64_t i = 0; all && ref && i < all->numel; i++) CHECK_NEAR(gf_f32(all)[i], gf_f32(ref)[i], 1e-6);
    }
    gf_tensor_free(in[0]);
    gf_tensor_free(len);
    gf_module_free(m);
    gf_ctx_reset(ctx);
}

static void test_parity(gf_ctx *ctx, const cJSON *root) {
    int ran = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, item(root, "cases")) {
        const char *kind = item(c, "kind")->valuestring;
        if (strcmp(kind, "mha") == 0) run_mha(ctx, c);
        else if (strcmp(kind, "layer") == 0) run_layer(ctx, c, false);
        else if (strcmp(kind, "encoder") == 0) run_layer(ctx, c, true);
        else if (strcmp(kind, "pool") == 0) run_pool(ctx, c);
        else continue;
        ran++;
        if (gf_ctx_status(ctx) != GF_OK) {
            fprintf(stderr, "%s: %s\n", item(c, "id")->valuestring, gf_ctx_error(ctx));
            gf_ctx_clear_error(ctx);
        }
    }
    CHECK(ran >= 14);
    /* the tutorial's PositionalEncoding table */
    const cJSON *pe = item(root, "positional_encoding");
    gf_module *m = gf_nn_positional_encoding(ctx, (int64_t)num(pe, "d_model"), 0.0f,
                                             (int64_t)num(pe, "max_len"), false);
    gf_tensor *t = gf_module_tensor(ctx, m, "pe");
    CHECK(t && t->ndim == 3 && t->shape[1] == 1);
    if (t) check_array("positional_encoding", "pe", gf_f32(t), item(pe, "data"));
    gf_module_free(m);
}

/* ---- finite differences of the attention op -------------------------------------------------- */

/* Each forward starts from the same RNG state, so a dropout mask is the same in every run. */
static gf_rng fd_rng;

static double attn_loss(gf_ctx *ctx, gf_tensor **qkv, const gf_attention_params *p, const gf_tensor *g) {
    *gf_ctx_rng(ctx) = fd_rng;
    gf_tensor *o = gf_scaled_dot_product_attention(ctx, qkv[0], qkv[1], qkv[2], p, NULL);
    double s = 0.0;
    for (int64_t i = 0; o && i < o->numel; i++) s += (double)gf_f32(o)[i] * gf_f32(g)[i];
    gf_ctx_reset(ctx);
    return s;
}

static void test_finite_differences(gf_ctx *ctx) {
    gf_rng r;
    gf_rng_seed(&r, 3);
    gf_tensor *qkv[3] = {gf_tensor_new(ctx, GF_F32, 4, (int64_t[]){2, 2, 3, 4}),
                         gf_tensor_new(ctx, GF_F32, 4, (int64_t[]){2, 2, 4, 4}),
                         gf_tensor_new(ctx, GF_F32, 4, (int64_t[]){2, 2, 4, 3})};
    gf_tensor *g = gf_tensor_new(ctx, GF_F32, 4, (int64_t[]){2, 2, 3, 3});
    gf_tensor *len = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){2}, (int64_t[]){4, 2});
    for (int j = 0; j < 3; j++) {
        for (int64_t i = 0; i < qkv[j]->numel; i++) gf_f32(qkv[j])[i] = gf_rng_normal(&r);
        gf_tensor_set_requires_grad(qkv[j], true);
    }
    for (int64_t i = 0; i < g->numel; i++) gf_f32(g)[i] = gf_rng_normal(&r);
    fd_rng = *gf_ctx_rng(ctx);
    for (int mode = 0; mode < 3; mode++) { /* plain, causal, with dropout (training) */
        gf_attention_params p = gf_attention_default_params();
        p.key_lengths = len;
        p.causal = mode == 1;
        p.training = mode == 2;
        p.dropout_p = mode == 2 ? 0.3f : 0.0f;
        for (int j = 0; j < 3; j++) gf_tensor_zero_grad(qkv[j]);
        *gf_ctx_rng(ctx) = fd_rng;
        gf_tensor *o = gf_scaled_dot_product_attention(ctx, qkv[0], qkv[1], qkv[2], &p, NULL);
        CHECK(gf_backward(ctx, gf_sum(ctx, gf_mul(ctx, o, g), NULL, 0, false)) == GF_OK);
        gf_ctx_reset(ctx);
        int bad = 0;
        for (int j = 0; j < 3; j++)
            for (int64_t i = 0; i < qkv[j]->numel; i++) {
                float *x = gf_f32(qkv[j]) + i, x0 = *x;
                const float h = 1e-2f;
                *x = x0 + h;
                double up = attn_loss(ctx, qkv, &p, g);
                *x = x0 - h;
                double dn = attn_loss(ctx, qkv, &p, g);
                *x = x0;
                double fd = (up - dn) / (2.0 * h), an = gf_f32(qkv[j]->grad)[i];
                if (fabs(fd - an) > 5e-3 * (1.0 + fabs(fd)) && !bad++)
                    fprintf(stderr, "attention fd: input %d [%lld] analytic %g, numeric %g\n", j,
                            (long long)i, an, fd);
            }
        CHECK(bad == 0);
    }
    /* masked keys get no gradient: example 1 has 2 real keys of 4 ([B, H, Lk, E] = [2, 2, 4, 4]) */
    for (int64_t h = 0; h < 2; h++)
        for (int64_t i = 2 * 4; i < 4 * 4; i++) CHECK(gf_f32(qkv[1]->grad)[(2 + h) * 16 + i] == 0.0f);
    for (int j = 0; j < 3; j++) gf_tensor_free(qkv[j]);
    gf_tensor_free(g);
    gf_tensor_free(len);
}

/* The packed-heads op equals the [B, H, L, E] op on the same heads (values and gradients), in
 * both layouts, and gives the same bits at 1 and 2 threads. */
static void test_layouts(gf_ctx *ctx) {
    for (int bf = 0; bf < 2; bf++) {
        const int64_t n = 3, l = 5, e = 8, h = 2, dh = 4;
        int64_t shape[3] = {bf ? n : l, bf ? l : n, e};
        gf_tensor *q = gf_tensor_new(ctx, GF_F32, 3, shape);
        for (int64_t i = 0; i < q->numel; i++) gf_f32(q)[i] = sinf((float)i * 0.37f);
        gf_tensor_set_requires_grad(q, true);
        gf_tensor *len = gf_tensor_from_data(ctx, GF_I64, 1, &n, (int64_t[]){5, 2, 4});
        gf_attention_params ap = gf_attention_default_params();
        ap.key_lengths = len;
        ap.causal = bf;
        float got[120], ref[120], g1[120];
        for (int threads = 1; threads <= 2; threads++) {
            gf_ctx_set_threads(ctx, threads);
            gf_tensor *o = gf_multi_head_attention(ctx, q, q, q, h, bf, &ap, NULL);
            CHECK(o && o->numel == 120);
            if (!o) return;
            if (threads == 1) memcpy(got, o->data, sizeof got);
            else CHECK(memcmp(got, o->data, sizeof got) == 0);
            CHECK(gf_backward(ctx, gf_sum(ctx, gf_mul(ctx, o, o), NULL, 0, false)) == GF_OK);
            gf_ctx_reset(ctx);
        }
        memcpy(g1, gf_f32(q->grad), sizeof g1); /* twice the gradient: two backwards */
        gf_tensor_zero_grad(q);
        /* the same heads as [N, H, L, Dh] views */
        int64_t split[4] = {shape[0], shape[1], h, dh};
        static const int to_bf[4] = {0, 2, 1, 3}, to_sf[4] = {1, 2, 0, 3};
        static const int back_bf[4] = {0, 2, 1, 3}, back_sf[4] = {2, 0, 1, 3};
        gf_tensor *q4 = gf_permute(ctx, gf_reshape(ctx, q, 4, split), bf ? to_bf : to_sf);
        gf_tensor *o4 = gf_scaled_dot_product_attention(ctx, q4, q4, q4, &ap, NULL);
        gf_tensor *o3 = gf_reshape(ctx, gf_contiguous(ctx, gf_permute(ctx, o4, bf ? back_bf : back_sf)), 3, shape);
        CHECK(o3 != NULL);
        if (!o3) return;
        memcpy(ref, o3->data, sizeof ref);
        CHECK(gf_backward(ctx, gf_sum(ctx, gf_mul(ctx, o3, o3), NULL, 0, false)) == GF_OK);
        for (int i = 0; i < 120; i++) {
            CHECK_NEAR(got[i], ref[i], 1e-5);
            CHECK_NEAR(g1[i], 2.0f * gf_f32(q->grad)[i], 1e-4);
        }
        gf_ctx_reset(ctx);
        gf_tensor_free(q);
        gf_tensor_free(len);
    }
    gf_ctx_set_threads(ctx, 2);
}

/* ---- dropout, names, errors --------------------------------------------------------------------- */

static void test_dropout_and_names(gf_ctx *ctx) {
    gf_module *m = gf_nn_multihead_attention(ctx, NULL, 8, 2, 0.5f, true, true);
    gf_tensor *x = gf_randn(ctx, 3, (int64_t[]){2, 5, 8}, 0.0f, 1.0f);
    gf_module_train(m, false);
    gf_tensor *a = gf_module_forward(ctx, m, x), *b = gf_module_forward(ctx, m, x);
    gf_module_train(m, true);
    gf_tensor *c = gf_module_forward(ctx, m, x);
    CHECK(a && b && c && memcmp(a->data, b->data, sizeof(float) * 80) == 0);
    CHECK(c && memcmp(a->data, c->data, sizeof(float) * 80) != 0);
    gf_module_free(m);
    gf_ctx_reset(ctx);

    gf_nn_transformer_params p = gf_nn_transformer_default_params(8, 2);
    gf_module *enc = gf_nn_transformer_encoder(ctx, NULL, &p, 2, false);
    gf_named_tensors *nt = gf_module_named_tensors(ctx, enc, GF_STATE_ALL);
    static const char *const want[] = {
        "layers.0.self_attn.in_proj_weight", "layers.0.self_attn.in_proj_bias",
        "layers.0.self_attn.out_proj.weight", "layers.0.self_attn.out_proj.bias",
        "layers.0.linear1.weight", "layers.0.linear1.bias", "layers.0.linear2.weight",
        "layers.0.linear2.bias", "layers.0.norm1.weight", "layers.0.norm1.bias",
        "layers.0.norm2.weight", "layers.0.norm2.bias", "layers.1.self_attn.in_proj_weight"};
    CHECK(nt && nt->n == 24);
    for (int i = 0; nt && i < 13; i++) CHECK(strcmp(nt->items[i].name, want[i]) == 0);
    /* deep copies: every layer starts with the same weights; out_proj's bias starts at 0 */
    gf_tensor *w0 = gf_module_tensor(ctx, enc, "layers.0.linear1.weight");
    gf_tensor *w1 = gf_module_tensor(ctx, enc, "layers.1.linear1.weight");
    CHECK(w0 && w1 && memcmp(w0->data, w1->data, sizeof(float) * (size_t)w0->numel) == 0);
    CHECK(w0 && w0->shape[0] == 2048);
    gf_tensor *ob = gf_module_tensor(ctx, enc, "layers.1.self_attn.out_proj.bias");
    CHECK(ob && gf_f32(ob)[0] == 0.0f && gf_f32(ob)[7] == 0.0f);
    gf_named_tensors_free(nt);
    CHECK(gf_module_replicable(enc, NULL, 0));
    gf_module_free(enc);
}

static void test_errors(gf_ctx *ctx) {
    EXPECT_ERR(ctx, gf_nn_multihead_attention(ctx, NULL, 10, 3, 0.0f, true, true), GF_ERR_INVALID,
               "embed_dim=10", "num_heads=3", "divisible");
    gf_nn_transformer_params p = gf_nn_transformer_default_params(6, 4);
    EXPECT_ERR(ctx, gf_nn_transformer_encoder_layer(ctx, NULL, &p), GF_ERR_INVALID,
               "TransformerEncoderLayer(d_model=6, nhead=4", "divisible");
    EXPECT_ERR(ctx, gf_nn_seq_pool(ctx, (gf_nn_seq_pool_mode)9, true), GF_ERR_INVALID, "SeqPool", "mode 9");

    gf_module *m = gf_nn_multihead_attention(ctx, NULL, 8, 2, 0.0f, true, true);
    gf_tensor *x = gf_randn(ctx, 3, (int64_t[]){2, 5, 7}, 0.0f, 1.0f);
    EXPECT_ERR(ctx, gf_module_forward(ctx, m, x), GF_ERR_SHAPE, "MultiheadAttention",
               "[N, T, D] with D = 8", "[2, 5, 7]");
    gf_tensor *y = gf_randn(ctx, 3, (int64_t[]){2, 5, 8}, 0.0f, 1.0f);
    gf_tensor *len = gf_zeros(ctx, GF_I64, 1, (int64_t[]){2});
    gf_i64(len)[0] = 6;
    EXPECT_ERR(ctx, gf_module_forward_seq(ctx, m, y, len), GF_ERR_INVALID, "key_lengths[0] = 6",
               "[0, 5]");
    gf_module_free(m);
    gf_tensor *q = gf_randn(ctx, 4, (int64_t[]){1, 2, 3, 4}, 0.0f, 1.0f);
    gf_tensor *k = gf_randn(ctx, 4, (int64_t[]){1, 2, 3, 5}, 0.0f, 1.0f);
    EXPECT_ERR(ctx, gf_scaled_dot_product_attention(ctx, q, k, k, NULL, NULL), GF_ERR_SHAPE,
               "scaled_dot_product_attention", "query [1, 2, 3, 4], key [1, 2, 3, 5]");

    gf_nn_transformer_params lp = gf_nn_transformer_default_params(8, 2);
    lp.batch_first = true;
    gf_module *layer = gf_nn_transformer_encoder_layer(ctx, NULL, &lp);
    CHECK(gf_module_replace(ctx, layer, "self_attn", gf_nn_identity(ctx)) == GF_OK);
    EXPECT_ERR(ctx, gf_module_forward(ctx, layer, y), GF_ERR_INVALID, "TransformerEncoderLayer",
               "Identity, not a MultiheadAttention");
    gf_module_free(layer);
    gf_zoo_params zp = gf_zoo_default_params();
    zp.vocab_size = 1;
    EXPECT_ERR(ctx, gf_zoo_build(ctx, "transformer", &zp, NULL), GF_ERR_INVALID, "vocab_size 1");

    gf_module *pe = gf_nn_positional_encoding(ctx, 8, 0.0f, 4, true);
    EXPECT_ERR(ctx, gf_module_forward(ctx, pe, y), GF_ERR_SHAPE, "sequence length 5 exceeds max_len 4");
    gf_module_free(pe);

    gf_module *tc = gf_nn_text_classifier(ctx, gf_nn_embedding(ctx, NULL, 10, 8, 0), gf_nn_identity(ctx),
                                          gf_nn_seq_pool(ctx, GF_NN_SEQ_POOL_MEAN, true),
                                          gf_nn_linear(ctx, NULL, 8, 2, true));
    gf_tensor *ids = gf_full(ctx, 2, (int64_t[]){2, 3}, 1.5f);
    EXPECT_ERR(ctx, gf_module_forward(ctx, tc, ids), GF_ERR_INVALID, "token id 1.5 at [0, 0]");
    gf_module_free(tc);
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
}

/* ---- a text classifier learns with gf_fit ------------------------------------------------------ */

enum { VOCAB = 24, SEQ = 10 };

/* Class 1 when token 5 occurs in the sequence, else 0; lengths 3..10, right-padded with 0. */
static gf_ds *keyword_data(gf_ctx *ctx, int64_t n, uint64_t seed) {
    float *x = calloc((size_t)(n * SEQ), sizeof(float));
    int64_t *y = malloc(sizeof(int64_t) * (size_t)n);
    gf_rng r;
    gf_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        int64_t len = 3 + (int64_t)gf_rng_below(&r, SEQ - 2);
        y[i] = (int64_t)gf_rng_below(&r, 2);
        for (int64_t j = 0; j < len; j++) {
            int64_t t = 2 + (int64_t)gf_rng_below(&r, VOCAB - 2);
            x[i * SEQ + j] = (float)(t == 5 ? 6 : t);
        }
        if (y[i]) x[i * SEQ + (int64_t)gf_rng_below(&r, (uint64_t)len)] = 5.0f;
    }
    return test_ds_take(ctx, "keyword", 1, (int64_t[]){SEQ}, n, x, y, NULL, 2);
}

static gf_loader *loader(gf_ctx *ctx, gf_ds *ds, bool shuffle) {
    gf_loader_params p = gf_loader_default_params();
    p.batch_size = 32;
    p.shuffle = shuffle;
    p.seed = 5;
    return gf_loader_new(ctx, ds, &p);
}

static void test_text_classifier(gf_ctx *ctx) {
    gf_rng rng;
    gf_rng_seed(&rng, 11);
    gf_nn_transformer_params tp = gf_nn_transformer_default_params(16, 2);
    tp.dim_feedforward = 32;
    tp.batch_first = true;
    tp.dropout = 0.0f;
    gf_module *m = gf_nn_text_classifier(ctx, gf_nn_embedding(ctx, &rng, VOCAB, 16, 0),
                                         gf_nn_transformer_encoder(ctx, &rng, &tp, 1, false),
                                         gf_nn_seq_pool(ctx, GF_NN_SEQ_POOL_MAX, true),
                                         gf_nn_linear(ctx, &rng, 16, 2, true));
    CHECK(m && gf_module_add(ctx, m, "pos", gf_nn_positional_encoding(ctx, 16, 0.0f, SEQ, true)) == GF_OK);
    char why[256];
    CHECK(gf_module_replicable(m, why, sizeof why));
    gf_ds *tr = keyword_data(ctx, 384, 1), *va = keyword_data(ctx, 200, 2);
    gf_loader *lt = loader(ctx, tr, true), *lv = loader(ctx, va, false);
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAM);
    op.lr = 3e-3;
    gf_optim *o = gf_train_optim_new(ctx, m, &op, NULL, 0);
    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = 8;
    gf_fit_result res;
    CHECK(gf_fit(ctx, m, NULL, o, NULL, lt, lv, &fp, &res) == GF_OK);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "text classifier: %s\n", gf_ctx_error(ctx));
    printf("text classifier: val accuracy %.3f after %d epochs (chance 0.5)\n", res.last.val_acc,
           res.epochs_run);
    CHECK(res.last.val_acc > 0.8);
    gf_optim_free(o);
    gf_loader_free(lt);
    gf_loader_free(lv);
    gf_ds_free(tr);
    gf_ds_free(va);
    gf_module_free(m);
}

static void test_zoo(gf_ctx *ctx) {
    gf_zoo_params p = gf_zoo_default_params();
    p.vocab_size = 50;
    p.seq_len = 12;
    p.num_classes = 3;
    gf_module *m = gf_zoo_build(ctx, "transformer", &p, NULL);
    CHECK(m != NULL);
    CHECK(strcmp(gf_zoo_head("transformer"), "fc") == 0);
    gf_tensor *x = gf_zeros(ctx, GF_F32, 2, (int64_t[]){4, 12});
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3 + 2 * i; j++) gf_f32(x)[i * 12 + j] = (float)(1 + (i * 7 + j) % 49);
    gf_module_train(m, false);
    gf_tensor *y = gf_module_forward(ctx, m, x);
    CHECK(y && y->ndim == 2 && y->shape[0] == 4 && y->shape[1] == 3);
    CHECK(gf_module_tensor(ctx, m, "encoder.layers.1.self_attn.in_proj_weight") != NULL);
    CHECK(gf_module_tensor(ctx, m, "embedding.weight")->shape[0] == 50);
    gf_module_free(m);
    gf_ctx_reset(ctx);
}

/* The zoo's recurrent text classifiers: torch's names for a bidirectional LSTM / GRU, lengths
 * taken from the ids (more padding changes nothing), and the keyword task learned. */
static void test_zoo_recurrent(gf_ctx *ctx) {
    const char *names[2] = {"lstm", "gru"};
    for (int k = 0; k < 2; k++) {
        gf_zoo_params p = gf_zoo_default_params();
        p.vocab_size = VOCAB;
        p.seq_len = 20;
        p.num_classes = 2;
        CHECK(gf_zoo_is_text(names[k]) && !gf_zoo_is_text("mlp"));
        gf_rng rng;
        gf_rng_seed(&rng, 3);
        gf_module *m = gf_zoo_build(ctx, names[k], &p, &rng);
        CHECK(m && strcmp(gf_zoo_head(names[k]), "fc") == 0);
        if (!m) continue;
        const int64_t gates = k == 0 ? 4 : 3;
        gf_tensor *w = gf_module_tensor(ctx, m, "encoder.weight_ih_l0_reverse");
        CHECK(w && w->shape[0] == gates * 128 && w->shape[1] == GF_ZOO_TEXT_EMBED);
        CHECK(gf_module_tensor(ctx, m, "fc.weight")->shape[1] == 256);
        CHECK(gf_module_replicable(m, NULL, 0));
        gf_module_train(m, false);
        float ids[3][6] = {{3, 4, 5, 0, 0, 0}, {7, 8, 9, 10, 11, 12}, {2, 0, 0, 0, 0, 0}};
        gf_tensor *a = gf_zeros(ctx, GF_F32, 2, (int64_t[]){3, 6});
        gf_tensor *b = gf_zeros(ctx, GF_F32, 2, (int64_t[]){3, 20});
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 6; j++) gf_f32(a)[i * 6 + j] = gf_f32(b)[i * 20 + j] = ids[i][j];
        gf_tensor *ya = gf_module_forward(ctx, m, a), *yb = gf_module_forward(ctx, m, b);
        double d = ya && yb ? 0.0 : 1.0;
        for (int i = 0; ya && yb && i < 6; i++) d = fmax(d, fabs(gf_f32(ya)[i] - gf_f32(yb)[i]));
        CHECK(d < 1e-5); /* the padding is masked, however long */
        gf_ctx_reset(ctx);
        gf_module_train(m, true);
        gf_ds *tr = keyword_data(ctx, 384, 1), *va = keyword_data(ctx, 200, 2);
        gf_loader *lt = loader(ctx, tr, true), *lv = loader(ctx, va, false);
        gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAM);
        op.lr = 3e-3;
        gf_optim *o = gf_train_optim_new(ctx, m, &op, NULL, 0);
        gf_fit_params fp = gf_fit_default_params();
        fp.epochs = 6;
        gf_fit_result res;
        CHECK(gf_fit(ctx, m, NULL, o, NULL, lt, lv, &fp, &res) == GF_OK);
        printf("zoo %s: val accuracy %.3f after %d epochs (chance 0.5)\n", names[k],
               res.last.val_acc, res.epochs_run);
        CHECK(res.last.val_acc > 0.8);
        gf_optim_free(o);
        gf_loader_free(lt);
        gf_loader_free(lv);
        gf_ds_free(tr);
        gf_ds_free(va);
        gf_module_free(m);
        gf_ctx_clear_error(ctx);
    }
}

/* ---- model specs ----------------------------------------------------------------------------- */

static gf_module *spec(gf_ctx *ctx, const char *text, int ndim, const int64_t *shape,
                       int64_t classes, gf_spec_summary **sum) {
    gf_spec_params p = gf_spec_default_params();
    p.label = "net.json";
    p.in_ndim = ndim;
    for (int i = 0; i < ndim; i++) p.in_shape[i] = shape[i];
    p.n_classes = classes;
    return gf_spec_parse(ctx, text, strlen(text), &p, sum);
}

static void test_spec(gf_ctx *ctx) {
    gf_spec_summary *sum = NULL;
    const char *seq = "{\"type\": \"sequential\", \"children\": ["
                      "{\"type\": \"PositionalEncoding\", \"dropout\": 0.0, \"max_len\": 16},"
                      "{\"type\": \"MultiheadAttention\", \"num_heads\": 2},"
                      "{\"type\": \"TransformerEncoder\", \"nhead\": 4, \"num_layers\": 2,"
                      " \"dim_feedforward\": 32, \"activation\": \"gelu\", \"norm\": true},"
                      "{\"type\": \"TransformerEncoderLayer\", \"nhead\": 2, \"norm_first\": true,"
                      " \"dim_feedforward\": 16},"
                      "{\"type\": \"SeqPool\", \"mode\": \"max\"},"
                      "{\"type\": \"linear\", \"out\": \"classes\"}]}";
    gf_module *m = spec(ctx, seq, 2, (int64_t[]){6, 8}, 3, &sum);
    CHECK(m && sum);
    if (!m) fprintf(stderr, "spec: %s\n", gf_ctx_error(ctx));
    if (sum) {
        CHECK(sum->out_ndim == 1 && sum->out_shape[0] == 3);
        CHECK(sum->layers[1].out_ndim == 2 && sum->layers[1].out_shape[0] == 6 &&
              sum->layers[1].out_shape[1] == 8);
    }
    CHECK(m && gf_module_tensor(NULL, m, "1.in_proj_weight") && gf_module_tensor(NULL, m, "2.norm.weight") &&
          gf_module_tensor(NULL, m, "2.layers.1.linear1.weight")->shape[0] == 32 &&
          gf_module_tensor(NULL, m, "0.pe"));
    gf_spec_summary_free(sum);
    gf_module_free(m);

    const char *tc = "{\"type\": \"TextClassifier\", \"num_embeddings\": 30, \"d_model\": 16,"
                     " \"nhead\": 2, \"num_layers\": 1, \"dim_feedforward\": 24,"
                     " \"positions\": \"learned\", \"out\": \"classes\"}";
    sum = NULL;
    m = spec(ctx, tc, 1, (int64_t[]){12}, 4, &sum);
    CHECK(m && sum && sum->out_ndim == 1 && sum->out_shape[0] == 4);
    if (!m) fprintf(stderr, "spec: %s\n", gf_ctx_error(ctx));
    CHECK(m && gf_module_tensor(NULL, m, "pos.weight") && gf_module_tensor(NULL, m, "pos.weight")->shape[0] == 12);
    gf_spec_summary_free(sum);
    gf_module_free(m);

    EXPECT_ERR(ctx, spec(ctx, "{\"type\": \"MultiheadAttention\", \"num_heads\": 3}", 2,
                         (int64_t[]){5, 8}, 0, NULL),
               GF_ERR_INVALID, "net.json", "(multiheadattention)", "embed_dim=8", "divisible");
    EXPECT_ERR(ctx, spec(ctx, "{\"type\": \"SeqPool\", \"batch_first\": false}", 2,
                         (int64_t[]){5, 8}, 0, NULL),
               GF_ERR_INVALID, "\"batch_first\" must be true");
    EXPECT_ERR(ctx, spec(ctx, "{\"type\": \"SeqPool\", \"mode\": \"median\"}", 2,
                         (int64_t[]){5, 8}, 0, NULL),
               GF_ERR_INVALID, "\"mode\" must be one of: mean,max,last,first");
    EXPECT_ERR(ctx, spec(ctx, "{\"type\": \"TransformerEncoderLayer\", \"nhead\": 2}", 0, NULL, 0, NULL),
               GF_ERR_INVALID, "\"d_model\" is missing");
    EXPECT_ERR(ctx, spec(ctx, "{\"type\": \"TransformerEncoderLayer\", \"d_model\": 6, \"nhead\": 2}", 2,
                         (int64_t[]){5, 8}, 0, NULL),
               GF_ERR_SHAPE, "shapes do not connect", "[2, 5, 8]", "[N, T, 6]");
    EXPECT_ERR(ctx, spec(ctx, "{\"type\": \"PositionalEncoding\", \"max_len\": 4}", 2,
                         (int64_t[]){5, 8}, 0, NULL),
               GF_ERR_SHAPE, "exceeds max_len 4");
    gf_ctx_clear_error(ctx);
}

int main(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_ctx_set_threads(ctx, 2);
    cJSON *root = fixture();
    CHECK(root != NULL);
    if (root) test_parity(ctx, root);
    cJSON_Delete(root);
    test_finite_differences(ctx);
    test_layouts(ctx);
    test_dropout_and_names(ctx);
    test_errors(ctx);
    test_zoo(ctx);
    test_zoo_recurrent(ctx);
    test_spec(ctx);
    test_text_classifier(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_attention");
}
