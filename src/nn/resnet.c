/* torchvision's ResNet BasicBlock, built only from public module calls: the same children,
 * names and forward as PyTorch, so its state_dict keys match a torchvision checkpoint. */
#include "nn/nn_internal.h"

/* relu(bn2(conv2(relu(bn1(conv1(x))))) + identity), identity = downsample(x) when present. */
static gf_tensor *block_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    gf_module *relu = gf_module_child(self, "relu");
    gf_tensor *out = gf_module_forward(ctx, gf_module_child(self, "conv1"), x);
    out = gf_module_forward(ctx, gf_module_child(self, "bn1"), out);
    out = gf_module_forward(ctx, relu, out);
    out = gf_module_forward(ctx, gf_module_child(self, "conv2"), out);
    out = gf_module_forward(ctx, gf_module_child(self, "bn2"), out);
    if (!out) return NULL;
    gf_module *ds = gf_module_child(self, "downsample");
    gf_tensor *identity = ds ? gf_module_forward(ctx, ds, x) : x;
    return gf_module_forward(ctx, relu, gf_add(ctx, out, identity));
}

gf_module *gf_nn_basic_block(gf_ctx *ctx, gf_rng *rng, int64_t inplanes, int64_t planes,
                             int stride) {
    if (inplanes <= 0 || planes <= 0 || stride <= 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "BasicBlock(inplanes=%lld, planes=%lld, stride=%d): all must be > 0",
                         (long long)inplanes, (long long)planes, stride);
        return NULL;
    }
    gf_module *m = gf_nn_container(ctx, "BasicBlock", block_fwd, NULL, NULL);
    if (!m) return NULL;
    gf_module_set_reentrant(m, true);
    gf_conv_params c1 = gf_conv_default_params();
    c1.stride[0] = c1.stride[1] = stride;
    c1.padding[0] = c1.padding[1] = 1;
    gf_conv_params c2 = gf_conv_default_params();
    c2.padding[0] = c2.padding[1] = 1;
    /* Children in torchvision's order (conv1, bn1, relu, conv2, bn2, downsample); weights are
     * drawn in that order from rng. */
    gf_module_add(ctx, m, "conv1", gf_nn_conv2d(ctx, rng, inplanes, planes, 3, 3, &c1, false));
    gf_module_add(ctx, m, "bn1", gf_nn_batch_norm2d(ctx, planes, NULL));
    gf_module_add(ctx, m, "relu", gf_nn_relu(ctx));
    gf_module_add(ctx, m, "conv2", gf_nn_conv2d(ctx, rng, planes, planes, 3, 3, &c2, false));
    gf_module_add(ctx, m, "bn2", gf_nn_batch_norm2d(ctx, planes, NULL));
    if (stride != 1 || inplanes != planes) {
        gf_conv_params cd = gf_conv_default_params();
        cd.stride[0] = cd.stride[1] = stride;
        gf_module *ds[2] = {gf_nn_conv2d(ctx, rng, inplanes, planes, 1, 1, &cd, false),
                            gf_nn_batch_norm2d(ctx, planes, NULL)};
        gf_module_add(ctx, m, "downsample", gf_nn_sequential_of(ctx, 2, ds));
    }
    if (gf_module_num_children(m) != (stride != 1 || inplanes != planes ? 6 : 5)) {
        gf_module_free(m);
        return NULL;
    }
    return m;
}

/* relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + identity), identity =
 * downsample(x) when present: torchvision's Bottleneck.forward. */
static gf_tensor *bottleneck_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    static const char *const branch[] = {"conv1", "bn1", "relu", "conv2", "bn2",
                                         "relu",  "conv3", "bn3"};
    gf_tensor *out = x;
    for (size_t i = 0; i < sizeof branch / sizeof branch[0]; i++)
        out = gf_module_forward(ctx, gf_module_child(self, branch[i]), out);
    if (!out) return NULL;
    gf_module *ds = gf_module_child(self, "downsample");
    gf_tensor *identity = ds ? gf_module_forward(ctx, ds, x) : x;
    return gf_module_forward(ctx, gf_module_child(self, "relu"), gf_add(ctx, out, identity));
}

gf_module *gf_nn_bottleneck(gf_ctx *ctx, gf_rng *rng, int64_t inplanes, int64_t planes,
                            int stride) {
    /* planes * 4 must stay a valid channel count (planes comes from spec files) */
    if (inplanes <= 0 || planes <= 0 || stride <= 0 || planes > INT64_MAX / 4) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "Bottleneck(inplanes=%lld, planes=%lld, stride=%d): all must be > 0",
                         (long long)inplanes, (long long)planes, stride);
        return NULL;
    }
    const int64_t out = planes * GF_BOTTLENECK_EXPANSION;
    gf_module *m = gf_nn_container(ctx, "Bottleneck", bottleneck_fwd, NULL, NULL);
    if (!m) return NULL;
    gf_module_set_reentrant(m, true);
    gf_conv_params c2 = gf_conv_default_params();
    c2.stride[0] = c2.stride[1] = stride; /* on the 3x3 convolution: ResNet v1.5 */
    c2.padding[0] = c2.padding[1] = 1;
    /* torchvision's order: conv1, bn1, conv2, bn2, conv3, bn3, relu, downsample; weights are
     * drawn in that order from rng */
    gf_module_add(ctx, m, "conv1", gf_nn_conv2d(ctx, rng, inplanes, planes, 1, 1, NULL, false));
    gf_module_add(ctx, m, "bn1", gf_nn_batch_norm2d(ctx, planes, NULL));
    gf_module_add(ctx, m, "conv2", gf_nn_conv2d(ctx, rng, planes, planes, 3, 3, &c2, false));
    gf_module_add(ctx, m, "bn2", gf_nn_batch_norm2d(ctx, planes, NULL));
    gf_module_add(ctx, m, "conv3", gf_nn_conv2d(ctx, rng, planes, out, 1, 1, NULL, false));
    gf_module_add(ctx, m, "bn3", gf_nn_batch_norm2d(ctx, out, NULL));
    gf_module_add(ctx, m, "relu", gf_nn_relu(ctx));
    const bool project = stride != 1 || inplanes != out;
    if (project) {
        gf_conv_params cd = gf_conv_default_params();
        cd.stride[0] = cd.stride[1] = stride;
        gf_module *ds[2] = {gf_nn_conv2d(ctx, rng, inplanes, out, 1, 1, &cd, false),
                            gf_nn_batch_norm2d(ctx, out, NULL)};
        gf_module_add(ctx, m, "downsample", gf_nn_sequential_of(ctx, 2, ds));
    }
    if (gf_module_num_children(m) != (project ? 8 : 7)) {
        gf_module_free(m);
        return NULL;
    }
    return m;
}
