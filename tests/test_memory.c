/* Memory rules of containers (docs/NN.md, "Memory"; gf_ctx_set_inplace) and the compact
 * max-pool argmax: results bitwise equal with the rules on and off (whole training runs of
 * cnn-small, gradients of small networks built to hit each rule and each exception), the
 * rules applying exactly where they are allowed to, and the arena peak of one cnn-small
 * training step under a bound derived from its tensor sizes. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "graft/graft.h"
#include "graft/nn.h"
#include "graft/onnx.h"
#include "graft/tfjs.h"
#include "graft/optim.h"
#include "graft/zoo.h"
#include "kernels/maxpool.h"

static uint64_t rng_state = 0x243f6a8885a308d3u;
static uint32_t rnd(void) { /* xorshift64*: the test's own stream */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1du) >> 32);
}
static float rndf(void) { return (float)(rnd() >> 8) / (float)(1u << 24) * 2.0f - 1.0f; }

static bool same_bits(const void *a, const void *b, size_t bytes) {
    return memcmp(a, b, bytes) == 0;
}

/* ---- cnn-small: training runs and the arena peak ----------------------------------------- */

enum { BATCH = 64, STEPS = 4, IMG = 28 * 28 };

typedef struct {
    float *weights; /* every parameter, concatenated in state_dict order */
    int64_t n_weights;
    float losses[STEPS];
    size_t peak; /* arena peak over the run */
} run_result;

/* STEPS Adam steps of cnn-small on fixed pseudo-random batches, in a fresh context. */
static run_result train_cnn(bool inplace, int threads) {
    run_result r = {0};
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = threads;
    gf_ctx *ctx = gf_ctx_new(&cp);
    CHECK(gf_ctx_inplace(ctx)); /* the default */
    gf_ctx_set_inplace(ctx, inplace);
    gf_rng rng;
    gf_rng_seed(&rng, 11);
    gf_module *m = gf_zoo_build(ctx, "cnn-small", NULL, &rng);
    gf_named_tensors *pl = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    gf_tensor *params[16];
    for (int i = 0; i < pl->n; i++) {
        params[i] = pl->items[i].tensor;
        r.n_weights += params[i]->numel;
    }
    const int n_params = pl->n;
    gf_named_tensors_free(pl);
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_ADAM);
    gf_optim *opt = gf_optim_new(ctx, &hp, params, n_params);
    uint64_t saved_state = rng_state;
    rng_state = 0x9e3779b97f4a7c15u; /* the same batches in every run */
    for (int s = 0; s < STEPS && gf_ctx_status(ctx) == GF_OK; s++) {
        gf_tensor *x = gf_empty(ctx, GF_F32, 4, (int64_t[]){BATCH, 1, 28, 28});
        gf_tensor *y = gf_empty(ctx, GF_I64, 1, (int64_t[]){BATCH});
        for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = (float)(rnd() & 255) / 255.0f;
        for (int64_t i = 0; i < BATCH; i++) gf_i64(y)[i] = rnd() % 10;
        gf_optim_zero_grad(opt);
        gf_tensor *loss = gf_cross_entropy(ctx, gf_module_forward(ctx, m, x), y,
                                           GF_REDUCE_MEAN, -100);
        if (loss && gf_backward(ctx, loss) == GF_OK && gf_optim_step(ctx, opt) == GF_OK)
            r.losses[s] = gf_f32(loss)[0];
        gf_ctx_reset(ctx);
    }
    rng_state = saved_state;
    CHECK(gf_ctx_status(ctx) == GF_OK);
    r.weights = malloc(sizeof(float) * (size_t)r.n_weights);
    for (int i = 0, at = 0; i < n_params; at += (int)params[i]->numel, i++)
        memcpy(r.weights + at, params[i]->data, sizeof(float) * (size_t)params[i]->numel);
    r.peak = gf_arena_peak(gf_ctx_arena(ctx));
    gf_optim_free(opt);
    gf_module_free(m);
    gf_ctx_free(ctx);
    return r;
}

static void cnn_small_training(void) {
    for (int threads = 1; threads <= 2; threads++) {
        run_result off = train_cnn(false, threads), on = train_cnn(true, threads);
        CHECK(on.n_weights == off.n_weights && on.n_weights > 0);
        CHECK(same_bits(on.weights, off.weights, sizeof(float) * (size_t)on.n_weights));
        CHECK(same_bits(on.losses, off.losses, sizeof on.losses));
        CHECK(on.losses[STEPS - 1] != 0.0f);
        /* The bound: the tensors one step has to hold at once, in floats per image. The
         * forward keeps conv1's output (32x28x28; the ReLU runs over it and later its gradient
         * lives there), pool1's (32x14x14, read by conv2's dW), conv2's (64x14x14, as conv1's)
         * and pool2's (64x7x7); backward adds pool1's and pool2's gradients. 1/8 of that again
         * covers the input batch, the relu masks and the pooling taps (~8% together), and
         * 6 MiB the scratch of the convolution kernels (column matrices of at most 1 MiB,
         * Winograd tiles: ~3.3 MB here), the classifier and the graph. Without the rules a
         * step holds every activation and gradient separately, ~49 MB on this network, so
         * the bound also shows that they applied. */
        const double per_image = 32 * 784 + 2 * 32 * 196 + 64 * 196 + 2 * 64 * 49;
        const double bound = 4.0 * BATCH * per_image * 1.125 + 6.0 * 1048576;
        fprintf(stderr, "cnn-small step, %d thread(s): arena peak %.2f MB (rules off: %.2f MB), "
                "bound %.2f MB\n", threads, (double)on.peak / 1e6, (double)off.peak / 1e6,
                bound / 1e6);
        CHECK((double)on.peak <= bound);
        CHECK(off.peak > 2 * on.peak);
        free(on.weights);
        free(off.weights);
    }
}

/* ---- small networks: each rule and each exception --------------------------------------- */

typedef gf_module *(*net_builder)(gf_ctx *ctx, gf_rng *rng);

static gf_conv_params pad1(void) {
    gf_conv_params c = gf_conv_default_params();
    c.padding[0] = c.padding[1] = 1;
    return c;
}

#define SEQ(...)                                                                            \
    gf_module *l[] = {__VA_ARGS__};                                                         \
    return gf_nn_sequential_of(ctx, (int)(sizeof l / sizeof l[0]), l)

/* input [4, 6] */
static gf_module *mlp(gf_ctx *ctx, gf_rng *rng) {
    SEQ(gf_nn_linear(ctx, rng, 6, 8, true), gf_nn_relu(ctx), gf_nn_linear(ctx, rng, 8, 5, true),
        gf_nn_relu(ctx), gf_nn_relu(ctx));
}
/* input [8, 64]: wide enough for the backward to recycle the first layer's storage; the
 * returned tensor is the last ReLU's, in place over the second Linear's output, whose
 * storage must then stay the caller's after the backward */
static gf_module *wide_mlp(gf_ctx *ctx, gf_rng *rng) {
    SEQ(gf_nn_linear(ctx, rng, 64, 64, true), gf_nn_relu(ctx), gf_nn_linear(ctx, rng, 64, 64, true),
        gf_nn_relu(ctx), gf_nn_flatten(ctx, 1, -1));
}
/* tanh's backward reads its output: the ReLU after it must not overwrite it */
static gf_module *tanh_relu(gf_ctx *ctx, gf_rng *rng) {
    SEQ(gf_nn_linear(ctx, rng, 6, 8, true), gf_nn_tanh(ctx), gf_nn_relu(ctx));
}
/* a ReLU on the container's own input, i.e. the caller's tensor */
static gf_module *relu_first(gf_ctx *ctx, gf_rng *rng) {
    SEQ(gf_nn_relu(ctx), gf_nn_linear(ctx, rng, 6, 3, true));
}
/* Flatten returns a view of its input: not storage the ReLU may take */
static gf_module *flatten_relu(gf_ctx *ctx, gf_rng *rng) {
    SEQ(gf_nn_linear(ctx, rng, 6, 8, true), gf_nn_flatten(ctx, 0, -1), gf_nn_relu(ctx));
}
/* a user container is not a library layer: its output is not ours */
static gf_module *container_relu(gf_ctx *ctx, gf_rng *rng) {
    gf_module *wrap = gf_nn_container(ctx, "Wrap", NULL, NULL, NULL);
    gf_module_append(ctx, wrap, gf_nn_linear(ctx, rng, 6, 8, true));
    SEQ(wrap, gf_nn_relu(ctx), gf_nn_linear(ctx, rng, 8, 2, true));
}
/* a user module that hands its input back may have kept it: what it saw, and that tensor's
 * gradient, must stay intact */
static gf_tensor *spy_kept;
static float spy_seen[64];
static gf_tensor *spy_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)ctx, (void)self, (void)user;
    spy_kept = x && x->numel <= 64 ? x : NULL;
    if (spy_kept) memcpy(spy_seen, x->data, sizeof(float) * (size_t)x->numel);
    return x;
}
static gf_module *spy_relu(gf_ctx *ctx, gf_rng *rng) {
    SEQ(gf_nn_linear(ctx, rng, 6, 8, true), gf_nn_container(ctx, "Spy", spy_forward, NULL, NULL),
        gf_nn_relu(ctx), gf_nn_linear(ctx, rng, 8, 2, true));
}
/* Identity and Dropout pass tensors through; Dropout in training makes fresh storage */
static gf_module *passthrough(gf_ctx *ctx, gf_rng *rng) {
    SEQ(gf_nn_linear(ctx, rng, 6, 8, true), gf_nn_identity(ctx), gf_nn_relu(ctx),
        gf_nn_dropout(ctx, 0.25f), gf_nn_relu(ctx), gf_nn_linear(ctx, rng, 8, 3, true));
}
/* input [2, 2, 6, 6]: batch norm (reads its input), pooling, flatten, nested Sequential */
static gf_module *convnet(gf_ctx *ctx, gf_rng *rng) {
    gf_conv_params c = pad1();
    gf_pool_params p = gf_pool_default_params(2);
    gf_module *inner[] = {gf_nn_linear(ctx, rng, 3 * 9, 4, true), gf_nn_relu(ctx)};
    SEQ(gf_nn_conv2d(ctx, rng, 2, 3, 3, 3, &c, true), gf_nn_batch_norm2d(ctx, 3, NULL),
        gf_nn_relu(ctx), gf_nn_max_pool2d(ctx, &p), gf_nn_relu(ctx), gf_nn_flatten(ctx, 1, -1),
        gf_nn_sequential_of(ctx, 2, inner), gf_nn_relu(ctx));
}
/* input [2, 2, 6]: conv1d and average pooling */
static gf_module *conv1d_net(gf_ctx *ctx, gf_rng *rng) {
    gf_conv_params c = gf_conv_default_params();
    c.padding[0] = c.padding[1] = 1;
    SEQ(gf_nn_conv1d(ctx, rng, 2, 3, 3, &c, true), gf_nn_relu(ctx), gf_nn_tanh(ctx),
        gf_nn_relu(ctx), gf_nn_flatten(ctx, 1, -1), gf_nn_linear(ctx, rng, 18, 2, false));
}

typedef struct {
    const char *name;
    net_builder build;
    int ndim;
    int64_t shape[4];
    int relu_child;   /* a ReLU child whose in-place use is checked (-1: none) */
    bool relu_inplace; /* what the rules must decide for it */
} net_case;

static const net_case nets[] = {
    {"mlp", mlp, 2, {4, 6}, 1, true},
    {"wide_mlp", wide_mlp, 2, {8, 64}, 3, true},
    {"tanh_relu", tanh_relu, 2, {4, 6}, 2, false},
    {"relu_first", relu_first, 2, {4, 6}, 0, false},
    {"flatten_relu", flatten_relu, 2, {4, 6}, 2, false},
    {"container_relu", container_relu, 2, {4, 6}, 1, false},
    {"spy_relu", spy_relu, 2, {4, 6}, 2, false},
    {"passthrough", passthrough, 2, {4, 6}, 2, true},
    {"convnet", convnet, 4, {2, 2, 6, 6}, 2, true},
    {"conv1d_net", conv1d_net, 3, {2, 2, 6}, 1, true},
};

typedef struct {
    float *out, *out_grad, *x_grad, *pgrad;
    int64_t n_out, n_x, n_p;
    bool relu_inplace;
    float spy_grad[64]; /* the gradient of the tensor the spy kept (zeros: none) */
} net_result;

/* The nth relu node recorded (0: the oldest): a ReLU child's node, found by its rank among
 * the relus of the forward (the rules act inside the container's loop, so the tape is the
 * only place to see what a child did). */
static gf_node *nth_relu_node(gf_ctx *ctx, int nth_from_oldest) {
    gf_node *list[64];
    int n = 0;
    for (gf_node *nd = ctx->tape; nd && n < 64; nd = nd->prev)
        if (nd->op == GF_OP_RELU) list[n++] = nd;
    return nth_from_oldest < n ? list[n - 1 - nth_from_oldest] : NULL;
}

/* Which relu (counted among the ReLU children, in order) child `child` is. */
static int relu_index(gf_module *net, int child) {
    int k = 0;
    for (int i = 0; i < child; i++)
        if (!strcmp(gf_module_type(gf_module_child_at(net, i, NULL)), "ReLU")) k++;
    return k;
}

static net_result run_net(const net_case *nc, bool inplace, bool grad, bool training) {
    net_result r = {0};
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_ctx_set_inplace(ctx, inplace);
    gf_rng rng;
    gf_rng_seed(&rng, 5);
    gf_module *net = nc->build(ctx, &rng);
    CHECK(net != NULL);
    if (!net) {
        gf_ctx_free(ctx);
        return r;
    }
    gf_module_train(net, training);
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, nc->ndim, nc->shape);
    uint64_t saved = rng_state;
    rng_state = 0x853c49e6748fea9bu;
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = rndf();
    float *x_copy = malloc(sizeof(float) * (size_t)x->numel);
    memcpy(x_copy, x->data, sizeof(float) * (size_t)x->numel);
    gf_tensor_set_requires_grad(x, true);
    gf_ctx_set_grad_enabled(ctx, grad);
    spy_kept = NULL;
    gf_tensor *out = gf_module_forward(ctx, net, x);
    CHECK(out != NULL);
    if (out) {
        CHECK(same_bits(x->data, x_copy, sizeof(float) * (size_t)x->numel)); /* never ours */
        r.n_out = out->numel;
        r.out = malloc(sizeof(float) * (size_t)out->numel);
        gf_copy_out(out, r.out);
        /* no node whose output shares the returned tensor's storage is private: the backward
         * would recycle storage the caller still reads */
        const char *o0 = out->data, *o1 = o0 + sizeof(float) * (size_t)out->numel;
        for (gf_node *nd = ctx->tape; nd; nd = nd->prev) {
            const char *a = nd->out->data, *b = a + sizeof(float) * (size_t)nd->out->numel;
            if (a < o1 && o0 < b) CHECK(!nd->out_private);
        }
        if (grad && nc->relu_child >= 0) {
            gf_node *nd = nth_relu_node(ctx, relu_index(net, nc->relu_child));
            CHECK(nd != NULL);
            if (nd) r.relu_inplace = nd->out->data == nd->in[0]->data;
        }
    }
    if (out && grad) {
        gf_tensor *g = gf_empty(ctx, GF_F32, out->ndim, out->shape);
        for (int64_t i = 0; i < g->numel; i++) gf_f32(g)[i] = rndf();
        CHECK(gf_backward_with(ctx, out, g) == GF_OK);
        /* the returned tensor is the caller's: its gradient stays readable and exact, and its
         * values too (no storage it reaches was recycled for a gradient) */
        CHECK(out->grad && same_bits(out->grad->data, g->data, sizeof(float) * (size_t)g->numel));
        float *again = malloc(sizeof(float) * (size_t)out->numel);
        gf_copy_out(out, again);
        CHECK(same_bits(again, r.out, sizeof(float) * (size_t)out->numel));
        free(again);
        r.out_grad = malloc(sizeof(float) * (size_t)g->numel);
        memcpy(r.out_grad, g->data, sizeof(float) * (size_t)g->numel);
        r.n_x = x->numel;
        r.x_grad = malloc(sizeof(float) * (size_t)x->numel);
        memcpy(r.x_grad, x->grad->data, sizeof(float) * (size_t)x->numel);
        gf_named_tensors *pl = gf_module_named_tensors(ctx, net, GF_STATE_PARAMS);
        for (int i = 0; i < pl->n; i++) r.n_p += pl->items[i].tensor->numel;
        r.pgrad = malloc(sizeof(float) * (size_t)(r.n_p ? r.n_p : 1));
        for (int i = 0, at = 0; i < pl->n; at += (int)pl->items[i].tensor->numel, i++) {
            gf_tensor *t = pl->items[i].tensor;
            CHECK(t->grad != NULL);
            if (t->grad) memcpy(r.pgrad + at, t->grad->data, sizeof(float) * (size_t)t->numel);
        }
        gf_named_tensors_free(pl);
    }
    if (spy_kept) {
        CHECK(same_bits(spy_kept->data, spy_seen, sizeof(float) * (size_t)spy_kept->numel));
        if (spy_kept->grad)
            memcpy(r.spy_grad, spy_kept->grad->data, sizeof(float) * (size_t)spy_kept->numel);
    }
    rng_state = saved;
    CHECK(gf_ctx_status(ctx) == GF_OK);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s: %s\n", nc->name, gf_ctx_error(ctx));
    free(x_copy);
    gf_tensor_free(x);
    gf_module_free(net);
    gf_ctx_free(ctx);
    return r;
}

static void free_result(net_result *r) {
    free(r->out), free(r->out_grad), free(r->x_grad), free(r->pgrad);
}

static void small_networks(void) {
    for (size_t k = 0; k < sizeof nets / sizeof nets[0]; k++) {
        const net_case *nc = &nets[k];
        for (int mode = 0; mode < 3; mode++) { /* train + grad, eval + grad, no grad */
            const bool grad = mode < 2, training = mode == 0;
            net_result off = run_net(nc, false, grad, training);
            net_result on = run_net(nc, true, grad, training);
            const int before = gf_test_failed;
            CHECK(on.n_out == off.n_out && on.n_out > 0);
            CHECK(on.out && off.out &&
                  same_bits(on.out, off.out, sizeof(float) * (size_t)on.n_out));
            if (grad) {
                CHECK(same_bits(on.x_grad, off.x_grad, sizeof(float) * (size_t)on.n_x));
                CHECK(on.n_p == off.n_p &&
                      same_bits(on.pgrad, off.pgrad, sizeof(float) * (size_t)on.n_p));
                CHECK(same_bits(on.spy_grad, off.spy_grad, sizeof on.spy_grad));
                if (nc->relu_child >= 0) {
                    CHECK(!off.relu_inplace);
                    CHECK(on.relu_inplace == nc->relu_inplace);
                }
            }
            if (gf_test_failed != before)
                fprintf(stderr, "  in network %s, mode %d\n", nc->name, mode);
            free_result(&on);
            free_result(&off);
        }
    }
}

/* A frozen first layer records nothing, so neither does the ReLU after it (it still runs in
 * place); the trainable rest gets the same gradients either way. */
static void frozen_trunk(void) {
    float grads[2][8 * 3 + 3];
    for (int inplace = 0; inplace < 2; inplace++) {
        gf_ctx *ctx = gf_ctx_new(NULL);
        gf_ctx_set_inplace(ctx, inplace);
        gf_rng rng;
        gf_rng_seed(&rng, 9);
        gf_module *l[] = {gf_nn_linear(ctx, &rng, 6, 8, true), gf_nn_relu(ctx),
                          gf_nn_linear(ctx, &rng, 8, 3, true)};
        gf_module *net = gf_nn_sequential_of(ctx, 3, l);
        gf_module_set_requires_grad(gf_module_child_at(net, 0, NULL), false);
        gf_tensor *x = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){5, 6});
        for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = (float)((i * 7) % 11) - 5.0f;
        gf_tensor *out = gf_module_forward(ctx, net, x);
        gf_tensor *s = gf_sum(ctx, gf_mul(ctx, out, out), NULL, 0, false);
        CHECK(gf_backward(ctx, s) == GF_OK);
        gf_tensor *w = gf_module_tensor(ctx, net, "2.weight");
        gf_tensor *b = gf_module_tensor(ctx, net, "2.bias");
        memcpy(grads[inplace], w->grad->data, sizeof(float) * 24);
        memcpy(grads[inplace] + 24, b->grad->data, sizeof(float) * 3);
        CHECK(gf_ctx_status(ctx) == GF_OK);
        gf_tensor_free(x);
        gf_module_free(net);
        gf_ctx_free(ctx);
    }
    CHECK(same_bits(grads[0], grads[1], sizeof grads[0]));
}

/* Under no-grad (inference) the ReLU after a Linear runs in place: the output's storage is
 * the Linear's, and the arena holds one activation less. */
static void inference_inplace(void) {
    size_t used[2];
    float outs[2][4 * 16];
    for (int inplace = 0; inplace < 2; inplace++) {
        gf_ctx *ctx = gf_ctx_new(NULL);
        gf_ctx_set_inplace(ctx, inplace);
        gf_ctx_set_grad_enabled(ctx, false);
        gf_rng rng;
        gf_rng_seed(&rng, 3);
        gf_module *l[] = {gf_nn_linear(ctx, &rng, 6, 4096, true), gf_nn_relu(ctx),
                          gf_nn_linear(ctx, &rng, 4096, 16, true)};
        gf_module *net = gf_nn_sequential_of(ctx, 3, l);
        gf_tensor *x = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){4, 6});
        for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = (float)(i % 5) - 2.0f;
        gf_tensor *out = gf_module_forward(ctx, net, x);
        CHECK(out != NULL);
        if (out) memcpy(outs[inplace], out->data, sizeof outs[inplace]);
        used[inplace] = gf_arena_used(gf_ctx_arena(ctx));
        gf_tensor_free(x);
        gf_module_free(net);
        gf_ctx_free(ctx);
    }
    CHECK(same_bits(outs[0], outs[1], sizeof outs[0]));
    CHECK(used[0] - used[1] >= 4 * 4096 * sizeof(float)); /* the ReLU's [4, 4096] output */
}

/* ---- max pooling taps ------------------------------------------------------------------- */

static float nasty(void) {
    static const float vals[] = {-1.0f, 0.0f, -0.0f, 1.0f, 2.0f, 2.0f, -INFINITY, INFINITY};
    uint32_t r = rnd() % 40;
    if (r == 0) return NAN;
    if (r < 10) return vals[r % 8];
    return rndf();
}

/* The tap kernels against the int32 ones: the same outputs bit for bit, each tap naming the
 * element the int32 argmax names, the same input gradients (fresh and accumulated). */
static void check_taps(const gf_maxpool_geom *g, bool tiled) {
    const int64_t hw = g->h * g->w, per = g->oh * g->ow;
    float *x = malloc(sizeof(float) * (size_t)hw), *y0 = malloc(sizeof(float) * (size_t)per);
    float *y1 = malloc(sizeof(float) * (size_t)per), *y2 = malloc(sizeof(float) * (size_t)per);
    int32_t *arg = malloc(sizeof(int32_t) * (size_t)per);
    uint8_t *tap = malloc((size_t)per), *tap2 = malloc((size_t)per);
    float *dy = malloc(sizeof(float) * (size_t)per);
    float *g0 = malloc(sizeof(float) * (size_t)hw), *g1 = malloc(sizeof(float) * (size_t)hw);
    for (int64_t i = 0; i < hw; i++) x[i] = nasty();
    for (int64_t i = 0; i < per; i++) dy[i] = rnd() % 5 == 0 ? -0.0f : rndf();
    gf_maxpool_plane_ref(g, x, y0, arg);
    gf_maxpool_plane_ref_taps(g, x, y1, tap);
    CHECK(same_bits(y0, y1, sizeof(float) * (size_t)per));
    if (tiled) {
        gf_maxpool_plane_tiled_taps(g, x, y2, tap2);
        CHECK(same_bits(y0, y2, sizeof(float) * (size_t)per));
        CHECK(same_bits(tap, tap2, (size_t)per));
        gf_maxpool_plane_tiled_taps(g, x, y2, NULL);
        CHECK(same_bits(y0, y2, sizeof(float) * (size_t)per));
    }
    bool named = true;
    for (int64_t oy = 0, k = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++, k++) {
            int64_t iy = oy * g->sh - g->ph + tap[k] / g->kw * g->dh;
            int64_t ix = ox * g->sw - g->pw + tap[k] % g->kw * g->dw;
            named &= tap[k] < g->kh * g->kw && iy * g->w + ix == arg[k];
        }
    CHECK(named);
    for (int fresh = 0; fresh < 2; fresh++) {
        for (int64_t i = 0; i < hw; i++) g0[i] = g1[i] = fresh ? NAN : (float)(i % 3);
        gf_maxpool_plane_bwd(g, dy, arg, g0, fresh);
        gf_maxpool_plane_bwd_taps(g, dy, tap, g1, fresh);
        CHECK(same_bits(g0, g1, sizeof(float) * (size_t)hw));
    }
    free(x), free(y0), free(y1), free(y2), free(arg), free(tap), free(tap2), free(dy), free(g0),
        free(g1);
}

static void maxpool_taps(void) {
    for (int trial = 0; trial < 600; trial++) {
        gf_maxpool_geom g = {0};
        g.kh = 1 + rnd() % 4, g.kw = 1 + rnd() % 4;
        const bool tiled = trial % 2 == 0;
        if (tiled) {
            g.sh = g.kh, g.sw = g.kw, g.dh = g.dw = 1;
            g.h = g.kh + rnd() % 14, g.w = g.kw + rnd() % 22;
            g.oh = g.h / g.kh, g.ow = g.w / g.kw;
            CHECK(gf_maxpool_tiled(&g));
        } else {
            g.sh = 1 + rnd() % 3, g.sw = 1 + rnd() % 3;
            g.dh = 1 + rnd() % 2, g.dw = 1 + rnd() % 2;
            g.ph = rnd() % (g.kh / 2 + 1), g.pw = rnd() % (g.kw / 2 + 1);
            g.h = g.dh * (g.kh - 1) + 1 + rnd() % 9, g.w = g.dw * (g.kw - 1) + 1 + rnd() % 9;
            g.oh = (g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
            g.ow = (g.w + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
        }
        CHECK(gf_maxpool_taps_fit(&g));
        check_taps(&g, tiled);
    }
    /* the largest windows that fit a byte: 256 taps, the last one is tap 255 */
    gf_maxpool_geom big = {32, 32, 2, 2, 16, 16, 16, 16, 0, 0, 1, 1};
    CHECK(gf_maxpool_taps_fit(&big));
    check_taps(&big, true);
    gf_maxpool_geom over = {17, 16, 1, 1, 17, 16, 17, 16, 0, 0, 1, 1};
    CHECK(!gf_maxpool_taps_fit(&over));
}

/* Windows over 256 taps keep int32 indices: the op still agrees with a global max. */
static void maxpool_big_window(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, (int64_t[]){1, 2, 17, 17});
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = rndf();
    gf_f32(x)[17 * 17 + 200] = 5.0f; /* the winner of plane 1 */
    gf_tensor_set_requires_grad(x, true);
    gf_pool_params p = gf_pool_default_params(17);
    gf_tensor *y = gf_max_pool2d(ctx, x, &p);
    CHECK(y && y->numel == 2 && gf_f32(y)[1] == 5.0f);
    CHECK(gf_backward(ctx, gf_sum(ctx, y, NULL, 0, false)) == GF_OK);
    CHECK(x->grad && gf_f32(x->grad)[17 * 17 + 200] == 1.0f && gf_f32(x->grad)[17 * 17] == 0.0f);
    gf_tensor_free(x);
    gf_ctx_free(ctx);
}

/* ---- imported graphs: gradient buffers reused during the backward ---------------------- */

typedef struct {
    float *grads; /* every parameter's gradient, then the input's */
    int64_t n;
    size_t peak;
} graph_grads;

/* One forward and backward of an imported model (train mode) on x [shape], loss = sum of the
 * output times a fixed pattern; with the memory rules on or off. */
static graph_grads imported_backward(const char *path, bool tfjs, bool inplace, int ndim,
                                     const int64_t *shape) {
    graph_grads r = {0};
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    gf_ctx_set_inplace(ctx, inplace);
    gf_module *m = tfjs ? gf_tfjs_load(ctx, path, NULL, NULL) : gf_onnx_load(ctx, path, NULL);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "%s: %s\n", path, gf_ctx_error(ctx));
        gf_ctx_free(ctx);
        return r;
    }
    gf_module_train(m, true);
    gf_named_tensors *pl = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, ndim, shape);
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = (float)((i * 37 + 11) % 23) / 11.0f - 1.0f;
    gf_tensor_set_requires_grad(x, true);
    gf_tensor *y = gf_module_forward(ctx, m, x);
    if (tfjs && y) { /* layer r1 (ReLU 6 after a depthwise conv) ran over its input iff on */
        int shared = 0;
        for (gf_node *n = ctx->tape; n; n = n->prev)
            shared += n->op == GF_OP_CLAMP && n->out->data == n->in[0]->data;
        CHECK(shared == (inplace ? 1 : 0));
    }
    gf_tensor *w = y ? gf_empty(ctx, GF_F32, y->ndim, y->shape) : NULL;
    if (w)
        for (int64_t i = 0; i < w->numel; i++) gf_f32(w)[i] = (float)(i % 7) - 3.0f;
    gf_tensor *loss = w ? gf_sum(ctx, gf_mul(ctx, y, w), NULL, 0, false) : NULL;
    CHECK(loss && gf_backward(ctx, loss) == GF_OK);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s: %s\n", path, gf_ctx_error(ctx));
    r.peak = gf_arena_peak(gf_ctx_arena(ctx));
    for (int i = 0; i < pl->n; i++) r.n += pl->items[i].tensor->numel;
    r.n += x->numel;
    r.grads = calloc((size_t)r.n, sizeof(float));
    int64_t at = 0;
    for (int i = 0; i < pl->n; i++) {
        const gf_tensor *p = pl->items[i].tensor;
        if (p->grad) memcpy(r.grads + at, p->grad->data, sizeof(float) * (size_t)p->numel);
        at += p->numel;
    }
    if (x->grad) memcpy(r.grads + at, x->grad->data, sizeof(float) * (size_t)x->numel);
    CHECK(x->grad != NULL);
    gf_named_tensors_free(pl);
    gf_tensor_free(x);
    gf_module_free(m);
    gf_ctx_free(ctx);
    return r;
}

/* The same gradients, bit for bit, with the buffers reused (rules on) as without, and a lower
 * arena peak. */
static void imported_graphs(void) {
    const char *dir = getenv("GRAFT_SOURCE_DIR");
    char onnx[1200], tfjs[1200];
    snprintf(onnx, sizeof onnx, "%s/tests/fixtures/onnx_export/blocks.onnx", dir ? dir : ".");
    snprintf(tfjs, sizeof tfjs, "%s/tests/fixtures/tfjs/tiny/model.json", dir ? dir : ".");
    const char *paths[2] = {onnx, tfjs};
    const int64_t shapes[2][4] = {{2, 3, 12, 12}, {2, 3, 7, 9}};
    for (int k = 0; k < 2; k++) {
        graph_grads on = imported_backward(paths[k], k == 1, true, 4, shapes[k]);
        graph_grads off = imported_backward(paths[k], k == 1, false, 4, shapes[k]);
        CHECK(on.n > 0 && on.n == off.n);
        if (on.n > 0 && on.n == off.n)
            CHECK(same_bits(on.grads, off.grads, sizeof(float) * (size_t)on.n));
        fprintf(stderr, "%s backward: arena peak %.1f KB (rules off: %.1f KB)\n",
                k ? "TensorFlow.js tiny" : "ONNX blocks", (double)on.peak / 1e3,
                (double)off.peak / 1e3);
        CHECK(on.peak < off.peak);
        free(on.grads), free(off.grads);
    }
}

/* A convolution's forward scratch (its column matrices) is given back when it returns under
 * the rules: the step's arena grows by the output and the node only, and the output is the
 * same bits either way. 3x3 stride 2 (no Winograd, no direct 1x1 path): columns of
 * 8 * 9 * 49 floats per image. */
static void conv_forward_scratch(void) {
    float out[2][4 * 16 * 49];
    size_t grew[2];
    for (int rules = 0; rules < 2; rules++) {
        gf_ctx_params cp = gf_ctx_default_params();
        cp.n_threads = 1;
        gf_ctx *ctx = gf_ctx_new(&cp);
        gf_ctx_set_inplace(ctx, rules == 1);
        rng_state = 99;
        gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, (int64_t[]){4, 8, 15, 15});
        gf_tensor *w = gf_tensor_new(ctx, GF_F32, 4, (int64_t[]){16, 8, 3, 3});
        for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = rndf();
        for (int64_t i = 0; i < w->numel; i++) gf_f32(w)[i] = rndf();
        gf_tensor_set_requires_grad(w, true);
        gf_conv_params p = gf_conv_default_params();
        p.stride[0] = p.stride[1] = 2;
        const size_t before = gf_arena_used(gf_ctx_arena(ctx));
        gf_tensor *y = gf_conv2d(ctx, x, w, NULL, &p);
        CHECK(y && y->numel == 4 * 16 * 49);
        grew[rules] = gf_arena_used(gf_ctx_arena(ctx)) - before;
        if (y) memcpy(out[rules], gf_f32(y), sizeof out[rules]);
        gf_tensor_free(x);
        gf_tensor_free(w);
        gf_ctx_free(ctx);
    }
    CHECK(same_bits(out[0], out[1], sizeof out[0]));
    const size_t output = sizeof(float) * 4 * 16 * 49, cols = sizeof(float) * 4 * 8 * 9 * 49;
    fprintf(stderr, "conv forward: the arena grew %zu bytes (rules off: %zu; output %zu)\n",
            grew[1], grew[0], output);
    CHECK(grew[1] < output + 4096 && grew[0] >= output + cols);
}

int main(void) {
    conv_forward_scratch();
    maxpool_taps();
    maxpool_big_window();
    small_networks();
    frozen_trunk();
    inference_inplace();
    cnn_small_training();
    imported_graphs();
    return test_finish("test_memory");
}
