/* graft zoo: the built-in architectures by name (mlp, lenet, cnn-small, resnet-mini, resnet18,
 * resnet34, resnet50, transformer), each with the parameter names a PyTorch module of the same structure
 * has, so weight files move between graft and PyTorch unchanged. tests/fixtures/gen_interop.py
 * holds the PyTorch twins of the small ones; the resnets are torchvision's
 * (tests/fixtures/gen_resnet_zoo.py). */
#ifndef GRAFT_ZOO_H
#define GRAFT_ZOO_H

#include "graft/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gf_zoo_params {
    int in_channels;   /* 1 */
    int height, width; /* 28 x 28 */
    int num_classes;   /* 10 */
    int hidden[4];     /* mlp only: hidden widths, 0-terminated; default 256, 128 */
    int64_t vocab_size; /* text models (transformer, lstm, gru, embedding-bag): token ids 0 .. vocab_size-1 (0 = <pad>); 10000 */
    int64_t seq_len;    /* text models: the longest sequence (positions table); 256 */
} gf_zoo_params;

gf_zoo_params gf_zoo_default_params(void);

/* Builds the named model with PyTorch's default initialisation drawn from rng (NULL: the
 * context RNG). Returns a new module (free with gf_module_free) or NULL with an error naming
 * the model (unknown name, input too small for the architecture...). Models take images
 * [N, C, H, W] (the mlp flattens them) and return logits [N, num_classes].
 *   mlp          layers = Sequential(Linear, ReLU, ...), head = Linear
 *   lenet        features = Sequential(conv5x5(6, pad 2), ReLU, MaxPool2, conv5x5(16), ReLU,
 *                MaxPool2), classifier = Sequential(Flatten, Linear(120), ReLU, Linear(84),
 *                ReLU, Linear)
 *   cnn-small    features = Sequential(conv3x3(32, pad 1), ReLU, MaxPool2, conv3x3(64, pad 1),
 *                ReLU, MaxPool2), classifier = Sequential(Flatten, Linear(128), ReLU, Linear)
 *   resnet-mini  torchvision ResNet layout: conv1 (3x3, 16, no bias), bn1, relu, layer1..3 of
 *                two BasicBlocks each (16, 32 stride 2, 64 stride 2), avgpool, fc
 *   resnet18, resnet34, resnet50
 *                torchvision.models.resnet18/34/50 module for module: conv1 (7x7, 64, stride 2,
 *                padding 3, no bias, in_channels inputs), bn1, relu, maxpool (3x3, stride 2,
 *                padding 1), layer1..layer4 (64, 128, 256, 512 planes; the first block of
 *                layer2..4 with stride 2) of BasicBlocks (2-2-2-2, 3-4-6-3) or Bottlenecks
 *                (3-4-6-3, expansion 4), avgpool (adaptive, 1x1), fc (num_classes outputs), so
 *                a torchvision state_dict loads by name as it is. Any input size works
 *                (height and width only size the limit checks). Convolutions start from
 *                kaiming_normal_(fan_out, relu) as torchvision's constructor leaves them.
 *   transformer  a text classifier (gf_nn_text_classifier) of float32 token ids [N, seq_len]
 *                right-padded with 0: embedding = Embedding(vocab_size, 128, padding_idx 0),
 *                pos = PositionalEncoding (sinusoidal, dropout 0.1, max_len seq_len),
 *                encoder = TransformerEncoder of 2 batch-first layers (d_model 128, 4 heads,
 *                dim_feedforward 256, dropout 0.1, relu, post-norm), pool = mean over the
 *                real steps, fc = Linear(128, num_classes). in_channels, height and width are
 *                not used.
 *   lstm, gru    text classifiers of the same input: embedding = Embedding(vocab_size, 100,
 *                padding_idx 0) (GloVe's 100 dimensions, so pretrained vectors load into it),
 *                encoder = a bidirectional batch-first LSTM / GRU (hidden 128, 1 layer) run
 *                with the lengths, pool = mean over the real steps, fc = Linear(256,
 *                num_classes).
 *   kws          keyword spotting on log-mel frames [C, n_mels, frames] (audio: data):
 *                features = Sequential(conv3x3(32, no bias), BatchNorm2d, ReLU, MaxPool2,
 *                conv3x3(64), BatchNorm2d, ReLU, MaxPool2, conv3x3(64), BatchNorm2d, ReLU),
 *                pool (adaptive average to [height / 4, 1]: over time only, so any clip
 *                length works), flatten, dropout (0.2), fc = Linear(64 * (height / 4),
 *                num_classes).
 *   lstm-tagger, gru-tagger, transformer-tagger
 *                sequence labellers of the same input: lstm, gru and transformer with pool
 *                = none, so fc applies at every step: logits [N, seq_len, num_classes] (one
 *                class per token; train them on tagged text, docs/TEXT.md). */
gf_module *gf_zoo_build(gf_ctx *ctx, const char *name, const gf_zoo_params *p, gf_rng *rng);

/* Dotted name of the model's final classifier layer ("head", "classifier.5",
 * "classifier.3", "fc" for the resnets), or NULL for an unknown model. */
const char *gf_zoo_head(const char *name);
/* True for the text classifiers (transformer, lstm, gru, embedding-bag): float32 token ids [N, seq_len]. */
bool gf_zoo_is_text(const char *name);
/* True for the sequence labellers (lstm-tagger, gru-tagger, transformer-tagger): logits
 * [N, seq_len, num_classes]. */
bool gf_zoo_is_tagger(const char *name);
/* The embedding width of the zoo's lstm and gru. */
#define GF_ZOO_TEXT_EMBED 100
/* Names of the built-in models, NULL-terminated. */
const char *const *gf_zoo_names(void);

#ifdef __cplusplus
}
#endif
#endif
