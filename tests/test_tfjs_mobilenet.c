/* The real MobileNetV2 of nsfwjs@4.4.0 (an ImageNet trunk with nsfwjs's 5-way head, fetched and
 * decoded by scripts/fetch-mobilenet.sh): imported, it gives TensorFlow.js's outputs
 * (fixtures/tfjs_mobilenet_ref.json, written by gen_tfjs_mobilenet.js) after the stem, after
 * every inverted-residual block, at the trunk's output and at the model's output, within 1e-4
 * of each layer's largest value; inference without a graph equals the recorded forward bitwise,
 * and a training step gives bitwise the same gradients with the memory rules on and off.
 * Skipped (exit 77) when the model has not been fetched. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "graft/graft.h"
#include "tfjs_check.h"

/* $GRAFT_DATA_DIR/mobilenet-v2, else ${XDG_CACHE_HOME:-$HOME/.cache}/graft/mobilenet-v2 */
static void model_path(char *buf, size_t cap) {
    const char *d = getenv("GRAFT_DATA_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (d && *d) snprintf(buf, cap, "%s/mobilenet-v2/model.json", d);
    else if (x && *x) snprintf(buf, cap, "%s/graft/mobilenet-v2/model.json", x);
    else snprintf(buf, cap, "%s/.cache/graft/mobilenet-v2/model.json", h ? h : ".");
}

static void test_summary(gf_ctx *ctx, const char *model) {
    gf_tfjs_options o = gf_tfjs_default_options();
    o.cut = "out_relu";
    gf_tfjs_info *info = NULL;
    gf_module *m = gf_tfjs_load(ctx, model, &o, &info);
    CHECK(m && info);
    if (!m || !info) {
        fprintf(stderr, "%s\n", gf_ctx_error(ctx));
        return;
    }
    /* Keras's MobileNetV2(include_top=False): 2,257,984 weights, of which 34,112 are the
     * BatchNormalization statistics (buffers here) */
    CHECK(info->params == 2257984 - 34112);
    CHECK(info->n_layers == 162 && info->n_weights == 266 && info->weights_used == 260);
    CHECK(info->weights_quantized == 260);
    CHECK(info->out_ndim == 3 && info->out_shape[0] == 1280 && info->out_shape[1] == 7);
    CHECK(gf_module_tensor(ctx, m, "Conv1.weight") &&
          gf_module_tensor(ctx, m, "bn_Conv1.running_var"));
    CHECK(gf_module_tensor(ctx, m, "block_16_depthwise.weight")->shape[0] == 960);
    CHECK(gf_module_tensor(NULL, m, "dense_3.weight") == NULL); /* cut off */
    printf("mobilenet-v2 trunk: %lld parameters, %d of %d weights used\n", (long long)info->params,
           info->weights_used, info->n_weights);
    gf_tfjs_info_free(info);
    gf_module_free(m);
}

/* Inference without a graph (BatchNorm and ReLU6 in place, the arena rewound between blocks)
 * gives bitwise the outputs of the recorded forward, holding far less memory at once. */
static void test_lean_forward(gf_ctx *ctx, const char *model) {
    gf_tfjs_options o = gf_tfjs_default_options();
    o.cut = "out_relu";
    gf_module *m = gf_tfjs_load(ctx, model, &o, NULL);
    CHECK(m != NULL);
    if (!m) return;
    const int64_t xs[4] = {3, 3, 96, 80};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, xs);
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = (float)((i * 37 % 101) / 50.0 - 1.0);
    gf_arena *a = gf_ctx_arena(ctx);
    gf_ctx_reset(ctx);
    size_t base = gf_arena_used(a);
    gf_tensor *y = gf_module_forward(ctx, m, x); /* recorded: x requires no grad, weights do */
    size_t held_recorded = gf_arena_used(a) - base;
    float *ref = y ? malloc(sizeof(float) * (size_t)y->numel) : NULL;
    CHECK(y && ref && y->ndim == 4 && y->shape[1] == 1280);
    if (!ref) return;
    const int64_t n = y->numel;
    memcpy(ref, gf_f32(y), sizeof(float) * (size_t)n);
    gf_ctx_reset(ctx);
    bool grad = gf_ctx_set_grad_enabled(ctx, false);
    y = gf_module_forward(ctx, m, x);
    size_t held_lean = gf_arena_used(a) - base;
    CHECK(y && y->numel == n && memcmp(ref, gf_f32(y), sizeof(float) * (size_t)n) == 0);
    CHECK(held_lean * 2 < held_recorded);
    printf("mobilenet-v2 lean forward: %.1f MiB held at the end instead of %.1f MiB\n",
           (double)held_lean / 1048576.0, (double)held_recorded / 1048576.0);
    gf_ctx_set_grad_enabled(ctx, grad);
    gf_ctx_reset(ctx);
    free(ref);
    gf_tensor_free(x);
    gf_module_free(m);
}

/* One training step (BatchNorm on batch statistics, every weight trainable) with the memory
 * rules on and off: the loss and every weight's gradient bitwise the same, the input's
 * gradient too, and a lower arena peak with the rules (ReLU6 in place, activations computed
 * again in the backward instead of kept, storage recycled). */
typedef struct {
    float loss;
    float *grads;
    int64_t n;
    size_t peak;
    int deferred; /* activations never stored: their depthwise readers computed them */
} step_result;

static step_result training_step(const char *model, bool rules) {
    step_result r = {0};
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_ctx_set_inplace(ctx, rules);
    gf_tfjs_options o = gf_tfjs_default_options();
    o.cut = "block_14_add";
    gf_module *m = gf_tfjs_load(ctx, model, &o, NULL);
    CHECK(m != NULL);
    if (!m) {
        gf_ctx_free(ctx);
        return r;
    }
    gf_module_train(m, true);
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, (int64_t[]){4, 3, 64, 48});
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = (float)((i * 29 % 97) / 48.0 - 1.0);
    gf_tensor_set_requires_grad(x, true);
    gf_ctx_reset(ctx);
    gf_arena *a = gf_ctx_arena(ctx);
    const size_t base = gf_arena_used(a);
    gf_tensor *y = gf_module_forward(ctx, m, x);
    for (const gf_node *n = ctx->tape; n; n = n->prev) r.deferred += n->deferred != NULL;
    gf_tensor *w = y ? gf_empty(ctx, GF_F32, y->ndim, y->shape) : NULL;
    for (int64_t i = 0; w && i < w->numel; i++) gf_f32(w)[i] = (float)((i * 13 % 31) / 15.0 - 1.0);
    gf_tensor *loss = w ? gf_sum(ctx, gf_mul(ctx, y, w), NULL, 0, false) : NULL;
    CHECK(loss && gf_backward(ctx, loss) == GF_OK);
    if (!loss || gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    r.peak = gf_arena_peak(a) - base;
    r.loss = loss ? gf_f32(loss)[0] : 0.0f;
    gf_named_tensors *pl = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    for (int i = 0; pl && i < pl->n; i++) r.n += pl->items[i].tensor->numel;
    r.n += x->numel;
    r.grads = calloc((size_t)r.n, sizeof(float));
    int64_t at = 0;
    for (int i = 0; pl && i < pl->n; i++) {
        const gf_tensor *p = pl->items[i].tensor;
        CHECK(p->grad != NULL);
        if (p->grad) memcpy(r.grads + at, p->grad->data, sizeof(float) * (size_t)p->numel);
        at += p->numel;
    }
    CHECK(x->grad != NULL);
    if (x->grad) memcpy(r.grads + at, x->grad->data, sizeof(float) * (size_t)x->numel);
    gf_named_tensors_free(pl);
    gf_tensor_free(x);
    gf_module_free(m);
    gf_ctx_free(ctx);
    return r;
}

static void test_training_memory(const char *model) {
    step_result on = training_step(model, true), off = training_step(model, false);
    CHECK(on.n > 0 && on.n == off.n && on.grads && off.grads);
    if (on.n > 0 && on.n == off.n && on.grads && off.grads) {
        CHECK(memcmp(&on.loss, &off.loss, sizeof on.loss) == 0);
        CHECK(memcmp(on.grads, off.grads, sizeof(float) * (size_t)on.n) == 0);
    }
    CHECK(on.peak * 10 < off.peak * 6); /* measured: about half */
    /* the stem's and blocks 1-6's expansions, read by depthwise convs (directly or through a
     * padding the conv applies), and blocks 0-5's depthwise outputs, read by their pointwise
     * projections (planes of 768 and 192 values image by image, of 48 all at once); past
     * that a plane (4x3) does not start on a mask byte */
    CHECK(on.deferred == 13 && off.deferred == 0);
    printf("mobilenet-v2 training step: arena peak %.1f MiB with the memory rules, %.1f MiB "
           "without; %d activations computed by the convolutions reading them\n",
           (double)on.peak / 1048576.0, (double)off.peak / 1048576.0, on.deferred);
    free(on.grads);
    free(off.grads);
}

int main(void) {
    char model[1200], ref[1200];
    model_path(model, sizeof model);
    if (access(model, R_OK) != 0) {
        printf("test_tfjs_mobilenet: skipped: %s not found (run scripts/fetch-mobilenet.sh)\n",
               model);
        return 77;
    }
    const char *s = getenv("GRAFT_SOURCE_DIR");
    snprintf(ref, sizeof ref, "%s/tests/fixtures/tfjs_mobilenet_ref.json", s ? s : ".");
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_summary(ctx, model);
    test_lean_forward(ctx, model);
    test_training_memory(model);
    double worst = 0;
    int n = tfjs_check_reference(ctx, model, ref, 1e-4, &worst);
    CHECK(n == 20);
    printf("mobilenet-v2: %d layers compared with TensorFlow.js, worst relative difference %.3g\n",
           n, worst);
    gf_ctx_free(ctx);
    return test_finish("test_tfjs_mobilenet");
}
