/* The built-in architectures. Each builder only uses the public module API, so a user can
 * copy one as the start of their own model. */
#include "graft/zoo.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

gf_zoo_params gf_zoo_default_params(void) {
    gf_zoo_params p = {1, 28, 28, 10, {256, 128, 0, 0}, 10000, 256};
    return p;
}

static gf_conv_params conv_pad(int pad, int stride) {
    gf_conv_params c = gf_conv_default_params();
    c.padding[0] = c.padding[1] = pad;
    c.stride[0] = c.stride[1] = stride;
    return c;
}

/* A container whose children run in order; returns NULL (freeing it) on any error. */
static gf_module *finish(gf_ctx *ctx, gf_module *m) {
    if (gf_ctx_status(ctx) != GF_OK) {
        gf_module_free(m);
        return NULL;
    }
    return m;
}

static gf_tensor *mlp_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    x = gf_flatten(ctx, x, 1, -1);
    x = gf_module_forward(ctx, gf_module_child(self, "layers"), x);
    return gf_module_forward(ctx, gf_module_child(self, "head"), x);
}

static gf_module *build_mlp(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    gf_module *m = gf_nn_container(ctx, "MLP", mlp_forward, NULL, NULL);
    gf_module_set_reentrant(m, true);
    gf_module *layers = gf_nn_sequential(ctx);
    int64_t in = (int64_t)p->in_channels * p->height * p->width;
    for (int i = 0; i < 4 && p->hidden[i] > 0; i++) {
        gf_module_append(ctx, layers, gf_nn_linear(ctx, rng, in, p->hidden[i], true));
        gf_module_append(ctx, layers, gf_nn_relu(ctx));
        in = p->hidden[i];
    }
    gf_module_add(ctx, m, "layers", layers);
    gf_module_add(ctx, m, "head", gf_nn_linear(ctx, rng, in, p->num_classes, true));
    return finish(ctx, m);
}

/* Embedding(vocab, 128, padding_idx 0), sinusoidal positions, a 2-layer batch-first
 * TransformerEncoder (4 heads, feed-forward 256, dropout 0.1), mean pooling over the real
 * steps, Linear head: a text classifier of float token ids [N, seq_len]. */
static gf_module *transformer_of(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng,
                                 gf_nn_seq_pool_mode pool) {
    const int64_t d = 128;
    gf_nn_transformer_params tp = gf_nn_transformer_default_params(d, 4);
    tp.dim_feedforward = 256;
    tp.batch_first = true;
    gf_module *m = gf_nn_text_classifier(ctx, gf_nn_embedding(ctx, rng, p->vocab_size, d, 0),
                                         gf_nn_transformer_encoder(ctx, rng, &tp, 2, false),
                                         gf_nn_seq_pool(ctx, pool, true),
                                         gf_nn_linear(ctx, rng, d, p->num_classes, true));
    gf_module_add(ctx, m, "pos", gf_nn_positional_encoding(ctx, d, 0.1f, p->seq_len, true));
    return finish(ctx, m);
}

static gf_module *build_transformer(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    return transformer_of(ctx, p, rng, GF_NN_SEQ_POOL_MEAN);
}

/* The same encoder with the head at every step: a sequence labeller, [N, T, num_classes]. */
static gf_module *build_transformer_tagger(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    return transformer_of(ctx, p, rng, GF_NN_SEQ_POOL_NONE);
}

/* Embedding(vocab, 100, padding_idx 0) (GloVe's 100 dimensions), a bidirectional batch-first
 * LSTM or GRU of hidden size 128 with the lengths, mean pooling over the real steps, Linear
 * head: a text classifier of float token ids [N, seq_len]. */
static gf_module *build_recurrent(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng, bool lstm,
                                  gf_nn_seq_pool_mode pool) {
    gf_nn_rnn_params rp = gf_nn_rnn_default_params(GF_ZOO_TEXT_EMBED, 128);
    rp.batch_first = true;
    rp.bidirectional = true;
    gf_module *m = gf_nn_text_classifier(
        ctx, gf_nn_embedding(ctx, rng, p->vocab_size, GF_ZOO_TEXT_EMBED, 0),
        lstm ? gf_nn_lstm(ctx, rng, &rp) : gf_nn_gru(ctx, rng, &rp),
        gf_nn_seq_pool(ctx, pool, true), gf_nn_linear(ctx, rng, 256, p->num_classes, true));
    return finish(ctx, m);
}

static gf_module *build_lstm(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    return build_recurrent(ctx, p, rng, true, GF_NN_SEQ_POOL_MEAN);
}

static gf_module *build_gru(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    return build_recurrent(ctx, p, rng, false, GF_NN_SEQ_POOL_MEAN);
}

/* The taggers: the same layers, the head at every step (pool none): [N, T, num_classes]. */
static gf_module *build_lstm_tagger(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    return build_recurrent(ctx, p, rng, true, GF_NN_SEQ_POOL_NONE);
}

static gf_module *build_gru_tagger(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    return build_recurrent(ctx, p, rng, false, GF_NN_SEQ_POOL_NONE);
}

/* EmbeddingBag(vocab, 100, mean, padding_idx 0) and a Linear head: the average of the words'
 * vectors, classified (fastText's model without n-grams), on float token ids [N, seq_len]. */
static gf_module *build_embedding_bag(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    gf_module *m = gf_nn_container(ctx, "EmbeddingBagClassifier", NULL, NULL, NULL);
    gf_module_add(ctx, m, "embedding", gf_nn_embedding_bag(ctx, rng, p->vocab_size, GF_ZOO_TEXT_EMBED,
                                                           GF_NN_BAG_MEAN, 0));
    gf_module_add(ctx, m, "fc", gf_nn_linear(ctx, rng, GF_ZOO_TEXT_EMBED, p->num_classes, true));
    return finish(ctx, m);
}

/* Spatial size after conv (k, pad, stride 1) then 2x2 max pooling. */
static int conv_pool(int size, int k, int pad) { return (size + 2 * pad - k + 1) / 2; }

static gf_module *build_features_classifier(gf_ctx *ctx, const char *type, gf_module *features,
                                            int n_fc, const int64_t *fc_sizes, gf_rng *rng) {
    gf_module *m = gf_nn_container(ctx, type, NULL, NULL, NULL);
    gf_module *cls = gf_nn_sequential(ctx);
    gf_module_append(ctx, cls, gf_nn_flatten(ctx, 1, -1));
    for (int i = 0; i + 1 < n_fc; i++) {
        if (i > 0) gf_module_append(ctx, cls, gf_nn_relu(ctx));
        gf_module_append(ctx, cls, gf_nn_linear(ctx, rng, fc_sizes[i], fc_sizes[i + 1], true));
    }
    gf_module_add(ctx, m, "features", features);
    gf_module_add(ctx, m, "classifier", cls);
    return finish(ctx, m);
}

static gf_module *build_cnn_small(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    gf_conv_params c = conv_pad(1, 1);
    gf_pool_params mp = gf_pool_default_params(2);
    int h = conv_pool(conv_pool(p->height, 3, 1), 3, 1), w = conv_pool(conv_pool(p->width, 3, 1), 3, 1);
    if (h < 1 || w < 1) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "cnn-small: input %dx%d is too small (needs at least 4x4)",
                         p->height, p->width);
        return NULL;
    }
    gf_module *f[] = {gf_nn_conv2d(ctx, rng, p->in_channels, 32, 3, 3, &c, true), gf_nn_relu(ctx),
                      gf_nn_max_pool2d(ctx, &mp), gf_nn_conv2d(ctx, rng, 32, 64, 3, 3, &c, true),
                      gf_nn_relu(ctx), gf_nn_max_pool2d(ctx, &mp)};
    int64_t fc[] = {64LL * h * w, 128, p->num_classes};
    return build_features_classifier(ctx, "CNNSmall", gf_nn_sequential_of(ctx, 6, f), 3, fc, rng);
}

/* A small keyword-spotting CNN for log-mel frames [C, n_mels, frames]: three 3x3 convolutions
 * (32, 64, 64 channels, no bias) each with BatchNorm and ReLU, 2x2 max pooling after the first
 * two, then an average over time only (the mel bands keep their place: which frequencies sound
 * is the word; any clip length works), dropout 0.2, fc. */
static gf_module *build_kws(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    if (p->height < 4 || p->width < 4) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "kws: input %dx%d is too small (needs at least 4x4)",
                         p->height, p->width);
        return NULL;
    }
    gf_conv_params c = conv_pad(1, 1);
    gf_pool_params mp = gf_pool_default_params(2);
    gf_module *f[] = {gf_nn_conv2d(ctx, rng, p->in_channels, 32, 3, 3, &c, false),
                      gf_nn_batch_norm2d(ctx, 32, NULL), gf_nn_relu(ctx), gf_nn_max_pool2d(ctx, &mp),
                      gf_nn_conv2d(ctx, rng, 32, 64, 3, 3, &c, false),
                      gf_nn_batch_norm2d(ctx, 64, NULL), gf_nn_relu(ctx), gf_nn_max_pool2d(ctx, &mp),
                      gf_nn_conv2d(ctx, rng, 64, 64, 3, 3, &c, false),
                      gf_nn_batch_norm2d(ctx, 64, NULL), gf_nn_relu(ctx)};
    gf_module *m = gf_nn_container(ctx, "KWS", NULL, NULL, NULL);
    gf_module_add(ctx, m, "features", gf_nn_sequential_of(ctx, 11, f));
    const int bands = p->height / 4; /* after the two poolings */
    gf_module_add(ctx, m, "pool", gf_nn_adaptive_avg_pool2d(ctx, bands, 1));
    gf_module_add(ctx, m, "flatten", gf_nn_flatten(ctx, 1, -1));
    gf_module_add(ctx, m, "dropout", gf_nn_dropout(ctx, 0.2f));
    gf_module_add(ctx, m, "fc", gf_nn_linear(ctx, rng, 64LL * bands, p->num_classes, true));
    return finish(ctx, m);
}

static gf_module *build_lenet(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    gf_conv_params c1 = conv_pad(2, 1), c2 = conv_pad(0, 1);
    gf_pool_params mp = gf_pool_default_params(2);
    int h = conv_pool(conv_pool(p->height, 5, 2), 5, 0), w = conv_pool(conv_pool(p->width, 5, 2), 5, 0);
    if (h < 1 || w < 1) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "lenet: input %dx%d is too small (needs at least 12x12)",
                         p->height, p->width);
        return NULL;
    }
    gf_module *f[] = {gf_nn_conv2d(ctx, rng, p->in_channels, 6, 5, 5, &c1, true), gf_nn_relu(ctx),
                      gf_nn_max_pool2d(ctx, &mp), gf_nn_conv2d(ctx, rng, 6, 16, 5, 5, &c2, true),
                      gf_nn_relu(ctx), gf_nn_max_pool2d(ctx, &mp)};
    int64_t fc[] = {16LL * h * w, 120, 84, p->num_classes};
    return build_features_classifier(ctx, "LeNet", gf_nn_sequential_of(ctx, 6, f), 4, fc, rng);
}

/* torchvision ResNet.forward without the initial max pool (small images). */
static gf_tensor *resnet_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    static const char *const trunk[] = {"conv1", "bn1", "relu", "layer1", "layer2", "layer3", "avgpool"};
    for (size_t i = 0; i < sizeof trunk / sizeof trunk[0]; i++)
        x = gf_module_forward(ctx, gf_module_child(self, trunk[i]), x);
    x = gf_flatten(ctx, x, 1, -1);
    return gf_module_forward(ctx, gf_module_child(self, "fc"), x);
}

static gf_module *build_resnet_mini(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    gf_conv_params c = conv_pad(1, 1);
    gf_module *m = gf_nn_container(ctx, "ResNetMini", resnet_forward, NULL, NULL);
    gf_module_set_reentrant(m, true);
    gf_module_add(ctx, m, "conv1", gf_nn_conv2d(ctx, rng, p->in_channels, 16, 3, 3, &c, false));
    gf_module_add(ctx, m, "bn1", gf_nn_batch_norm2d(ctx, 16, NULL));
    gf_module_add(ctx, m, "relu", gf_nn_relu(ctx));
    static const int planes[3] = {16, 32, 64}, strides[3] = {1, 2, 2};
    int64_t in = 16;
    for (int l = 0; l < 3; l++) {
        char name[16];
        snprintf(name, sizeof name, "layer%d", l + 1);
        gf_module *blocks[] = {gf_nn_basic_block(ctx, rng, in, planes[l], strides[l]),
                               gf_nn_basic_block(ctx, rng, planes[l], planes[l], 1)};
        gf_module_add(ctx, m, name, gf_nn_sequential_of(ctx, 2, blocks));
        in = planes[l];
    }
    gf_module_add(ctx, m, "avgpool", gf_nn_adaptive_avg_pool2d(ctx, 1, 1));
    gf_module_add(ctx, m, "fc", gf_nn_linear(ctx, rng, 64, p->num_classes, true));
    return finish(ctx, m);
}

/* torchvision's resnet18 / resnet34 (BasicBlock) and resnet50 (Bottleneck). */
typedef struct resnet_cfg {
    const char *type; /* the container's type name */
    int blocks[4];    /* blocks per stage */
    bool bottleneck;
} resnet_cfg;

static const resnet_cfg resnet18_cfg = {"ResNet18", {2, 2, 2, 2}, false};
static const resnet_cfg resnet34_cfg = {"ResNet34", {3, 4, 6, 3}, false};
static const resnet_cfg resnet50_cfg = {"ResNet50", {3, 4, 6, 3}, true};

/* torchvision ResNet.forward (_forward_impl). */
static gf_tensor *resnet_tv_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    static const char *const trunk[] = {"conv1",  "bn1",    "relu",   "maxpool", "layer1",
                                        "layer2", "layer3", "layer4", "avgpool"};
    for (size_t i = 0; i < sizeof trunk / sizeof trunk[0]; i++)
        x = gf_module_forward(ctx, gf_module_child(self, trunk[i]), x);
    x = gf_flatten(ctx, x, 1, -1);
    return gf_module_forward(ctx, gf_module_child(self, "fc"), x);
}

/* torchvision's ResNet.__init__ ends by drawing every convolution again from
 * kaiming_normal_(mode="fan_out", nonlinearity="relu") in module order (BatchNorm is already
 * weight 1, bias 0; fc keeps Linear's default). */
static void resnet_tv_init(gf_ctx *ctx, gf_module *m, gf_rng *rng) {
    gf_named_tensors *l = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    for (int i = 0; l && i < l->n; i++)
        if (l->items[i].tensor->ndim == 4)
            gf_nn_init_kaiming_normal(ctx, l->items[i].tensor, rng, 0.0f, GF_FAN_OUT);
    gf_named_tensors_free(l);
}

static gf_module *build_resnet(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng,
                               const resnet_cfg *cfg) {
    gf_conv_params c1 = conv_pad(3, 2);
    gf_pool_params mp = gf_pool_default_params(3);
    mp.stride[0] = mp.stride[1] = 2;
    mp.padding[0] = mp.padding[1] = 1;
    gf_module *m = gf_nn_container(ctx, cfg->type, resnet_tv_forward, NULL, NULL);
    gf_module_set_reentrant(m, true);
    gf_module_add(ctx, m, "conv1", gf_nn_conv2d(ctx, rng, p->in_channels, 64, 7, 7, &c1, false));
    gf_module_add(ctx, m, "bn1", gf_nn_batch_norm2d(ctx, 64, NULL));
    gf_module_add(ctx, m, "relu", gf_nn_relu(ctx));
    gf_module_add(ctx, m, "maxpool", gf_nn_max_pool2d(ctx, &mp));
    const int64_t expansion = cfg->bottleneck ? GF_BOTTLENECK_EXPANSION : 1;
    int64_t in = 64;
    for (int l = 0; l < 4; l++) {
        const int64_t planes = (int64_t)64 << l;
        gf_module *layer = gf_nn_sequential(ctx);
        for (int b = 0; b < cfg->blocks[l]; b++) {
            const int stride = b == 0 && l > 0 ? 2 : 1;
            gf_module_append(ctx, layer, cfg->bottleneck ? gf_nn_bottleneck(ctx, rng, in, planes, stride)
                                                         : gf_nn_basic_block(ctx, rng, in, planes, stride));
            in = planes * expansion;
        }
        char name[16];
        snprintf(name, sizeof name, "layer%d", l + 1);
        gf_module_add(ctx, m, name, layer);
    }
    gf_module_add(ctx, m, "avgpool", gf_nn_adaptive_avg_pool2d(ctx, 1, 1));
    gf_module_add(ctx, m, "fc", gf_nn_linear(ctx, rng, in, p->num_classes, true));
    if (gf_ctx_status(ctx) == GF_OK) resnet_tv_init(ctx, m, rng);
    return finish(ctx, m);
}

static gf_module *build_resnet18(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    return build_resnet(ctx, p, rng, &resnet18_cfg);
}
static gf_module *build_resnet34(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    return build_resnet(ctx, p, rng, &resnet34_cfg);
}
static gf_module *build_resnet50(gf_ctx *ctx, const gf_zoo_params *p, gf_rng *rng) {
    return build_resnet(ctx, p, rng, &resnet50_cfg);
}

/* a * b and a + b for sizes >= 0, saturating (hidden widths and image sizes come from files). */
static int64_t mul_sat(int64_t a, int64_t b) { return b != 0 && a > INT64_MAX / b ? INT64_MAX : a * b; }
static int64_t add_sat(int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; }

/* The weights and the widest activation (per example) a zoo model would allocate, from its
 * parameters alone; only the terms that grow with them (hidden widths, image size). */
/* A torchvision ResNet's parameters exactly, and its widest output per example: the stem's
 * 64 channels at half size or the first stage's 64 (256 with Bottlenecks) at a quarter. */
static void resnet_estimate(const resnet_cfg *cfg, const gf_zoo_params *p, int64_t *weights,
                            int64_t *act) {
    const int64_t e = cfg->bottleneck ? GF_BOTTLENECK_EXPANSION : 1;
    int64_t w = add_sat(mul_sat(p->in_channels, 64 * 49), 2 * 64), in = 64;
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < cfg->blocks[l]; b++) {
            const int64_t c = (int64_t)64 << l, out = c * e;
            /* convolutions, then two parameters per BatchNorm channel */
            w += cfg->bottleneck ? in * c + 9 * c * c + c * out + 2 * (c + c + out)
                                 : 9 * in * c + 9 * c * c + 2 * (c + c);
            if (b == 0 && (l > 0 || in != out)) w += in * out + 2 * out; /* downsample */
            in = out;
        }
    *weights = add_sat(w, mul_sat(in + 1, p->num_classes));
    const int64_t h1 = (p->height - 1) / 2 + 1, w1 = (p->width - 1) / 2 + 1;
    const int64_t h2 = (h1 - 1) / 2 + 1, w2 = (w1 - 1) / 2 + 1;
    const int64_t stem = mul_sat(64, mul_sat(h1, w1)), stage1 = mul_sat(64 * e, mul_sat(h2, w2));
    *act = stem > stage1 ? stem : stage1;
    const int64_t pix = mul_sat(mul_sat(p->in_channels, p->height), p->width);
    if (pix > *act) *act = pix;
}

static const resnet_cfg *resnet_of(const char *name) {
    return strcmp(name, "resnet18") == 0   ? &resnet18_cfg
           : strcmp(name, "resnet34") == 0 ? &resnet34_cfg
           : strcmp(name, "resnet50") == 0 ? &resnet50_cfg
                                           : NULL;
}

static void zoo_estimate(const char *name, const gf_zoo_params *p, int64_t *weights, int64_t *act) {
    const int64_t pix = mul_sat(mul_sat(p->in_channels, p->height), p->width);
    const int64_t hw = mul_sat(p->height, p->width);
    const resnet_cfg *rc = resnet_of(name);
    if (rc) {
        resnet_estimate(rc, p, weights, act);
        return;
    }
    *weights = 0;
    *act = pix;
    if (strncmp(name, "transformer", 11) == 0) { /* embedding and positions, 2 layers, head */
        *weights = add_sat(mul_sat(add_sat(p->vocab_size, p->seq_len), 128),
                           add_sat(2 * (4 * 128 * 129 + 2 * 128 * 257 + 4 * 128),
                                   mul_sat(p->num_classes, 129)));
        *act = mul_sat(p->seq_len, add_sat(256, mul_sat(p->seq_len, 4)));
        return;
    }
    if (strncmp(name, "lstm", 4) == 0 || strncmp(name, "gru", 3) == 0) { /* 2 directions */
        const int64_t gates = strncmp(name, "lstm", 4) == 0 ? 4 : 3;
        *weights = add_sat(mul_sat(p->vocab_size, GF_ZOO_TEXT_EMBED),
                           add_sat(2 * gates * 128 * (GF_ZOO_TEXT_EMBED + 128 + 2),
                                   mul_sat(p->num_classes, 257)));
        *act = mul_sat(p->seq_len, 2 * gates * 128);
        return;
    }
    if (strcmp(name, "embedding-bag") == 0) {
        *weights = mul_sat(add_sat(p->vocab_size, p->num_classes), GF_ZOO_TEXT_EMBED + 1);
        *act = mul_sat(p->seq_len, GF_ZOO_TEXT_EMBED);
        return;
    }
    if (strcmp(name, "kws") == 0) { /* 32 channels at full size; fixed weights but the first */
        *weights = add_sat(mul_sat(p->in_channels, 32 * 9),
                           9 * (32 * 64 + 64 * 64) + 2 * (32 + 64 + 64) +
                               mul_sat(64 * (p->height / 4) + 1, p->num_classes));
        *act = mul_sat(32, hw);
        return;
    }
    if (strcmp(name, "mlp") == 0) {
        int64_t in = pix;
        for (int i = 0; i < 4 && p->hidden[i] > 0; i++) {
            *weights = add_sat(*weights, mul_sat(in + 1, p->hidden[i]));
            if (p->hidden[i] > *act) *act = p->hidden[i];
            in = p->hidden[i];
        }
        *weights = add_sat(*weights, mul_sat(in + 1, p->num_classes));
        return;
    }
    /* lenet 6, cnn-small 32, resnet-mini 16 channels at full size; the first convolution and
     * the dense layers over the pooled image grow with the input */
    const int64_t wide = strcmp(name, "lenet") == 0 ? 6 : strcmp(name, "cnn-small") == 0 ? 32 : 16;
    if (mul_sat(wide, hw) > *act) *act = mul_sat(wide, hw);
    *weights = add_sat(add_sat(mul_sat(p->in_channels, 32 * 25), mul_sat(hw, 64 * 128 / 16)),
                       mul_sat(p->num_classes, 129));
}

/* The context's params and activation limits, before anything is allocated. */
static bool zoo_fits(gf_ctx *ctx, const char *name, const gf_zoo_params *p) {
    int64_t w, act;
    zoo_estimate(name, p, &w, &act);
    const gf_limits *lim = gf_ctx_limits(ctx);
    if (w > lim->model_params)
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "model '%s': about %lld parameters for input %dx%dx%d, hidden widths and "
                         "%d classes, more than the limit of %lld (limit params)",
                         name, (long long)w, p->in_channels, p->height, p->width, p->num_classes,
                         (long long)lim->model_params);
    else if (act > lim->model_activation)
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "model '%s': layers of %lld values per example for input %dx%dx%d, more "
                         "than the limit of %lld (limit activation)",
                         name, (long long)act, p->in_channels, p->height, p->width,
                         (long long)lim->model_activation);
    return gf_ctx_status(ctx) == GF_OK;
}

typedef gf_module *(*zoo_builder)(gf_ctx *, const gf_zoo_params *, gf_rng *);

static const struct {
    const char *name, *head;
    zoo_builder build;
} zoo[] = {
    {"mlp", "head", build_mlp},
    {"lenet", "classifier.5", build_lenet},
    {"cnn-small", "classifier.3", build_cnn_small},
    {"resnet-mini", "fc", build_resnet_mini},
    {"resnet18", "fc", build_resnet18},
    {"resnet34", "fc", build_resnet34},
    {"resnet50", "fc", build_resnet50},
    {"transformer", "fc", build_transformer},
    {"lstm", "fc", build_lstm},
    {"gru", "fc", build_gru},
    {"embedding-bag", "fc", build_embedding_bag},
    {"lstm-tagger", "fc", build_lstm_tagger},
    {"gru-tagger", "fc", build_gru_tagger},
    {"transformer-tagger", "fc", build_transformer_tagger},
    {"kws", "fc", build_kws},
};
#define ZOO_COUNT (sizeof zoo / sizeof zoo[0])

static const char *const zoo_names[] = {"mlp",      "lenet",    "cnn-small", "resnet-mini",
                                        "resnet18", "resnet34", "resnet50",  "transformer",
                                        "lstm",     "gru",      "embedding-bag", "kws",
                                        "lstm-tagger", "gru-tagger", "transformer-tagger", NULL};
_Static_assert(sizeof zoo_names / sizeof zoo_names[0] == ZOO_COUNT + 1, "zoo name list");

const char *const *gf_zoo_names(void) { return zoo_names; }

bool gf_zoo_is_text(const char *name) {
    return name && (strcmp(name, "transformer") == 0 || strcmp(name, "lstm") == 0 ||
                    strcmp(name, "gru") == 0 || strcmp(name, "embedding-bag") == 0 ||
                    gf_zoo_is_tagger(name));
}

bool gf_zoo_is_tagger(const char *name) {
    return name && (strcmp(name, "lstm-tagger") == 0 || strcmp(name, "gru-tagger") == 0 ||
                    strcmp(name, "transformer-tagger") == 0);
}

const char *gf_zoo_head(const char *name) {
    for (size_t i = 0; name && i < ZOO_COUNT; i++)
        if (strcmp(zoo[i].name, name) == 0) return zoo[i].head;
    return NULL;
}

gf_module *gf_zoo_build(gf_ctx *ctx, const char *name, const gf_zoo_params *p, gf_rng *rng) {
    gf_zoo_params d = gf_zoo_default_params();
    if (!p) p = &d;
    if (gf_zoo_is_text(name) && (p->vocab_size < 2 || p->seq_len < 1 || p->num_classes < 1)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "model '%s': vocab_size %lld (at least 2: <pad> and <unk>), "
                         "seq_len %lld and class count %d must be positive", name,
                         (long long)p->vocab_size, (long long)p->seq_len, p->num_classes);
        return NULL;
    }
    if (p->in_channels < 1 || p->height < 1 || p->width < 1 || p->num_classes < 1) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID,
                         "model '%s': invalid input %dx%dx%d or class count %d", name ? name : "(null)",
                         p->in_channels, p->height, p->width, p->num_classes);
        return NULL;
    }
    for (size_t i = 0; name && i < ZOO_COUNT; i++)
        if (strcmp(zoo[i].name, name) == 0) return zoo_fits(ctx, name, p) ? zoo[i].build(ctx, p, rng) : NULL;
    gf_ctx_set_error(ctx, GF_ERR_INVALID,
                     "unknown model '%s' (built-in models: mlp, lenet, cnn-small, resnet-mini, "
                     "resnet18, resnet34, resnet50, transformer, lstm, gru, embedding-bag, kws, "
                     "lstm-tagger, gru-tagger, transformer-tagger)",
                     name ? name : "(null)");
    return NULL;
}
