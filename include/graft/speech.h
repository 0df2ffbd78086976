/* graft speech: openWakeWord's speech front end as a pretrained backbone. Two ONNX models
 * (scripts/fetch-openwakeword.sh installs them):
 *   melspectrogram.onnx   a 16 kHz waveform on the int16 scale -> [frames, 32] mel bands
 *                         (10 ms hop; 97 frames for one second)
 *   embedding_model.onnx  Google's speech embedding: 76 mel frames [76, 32, 1] -> 96 numbers
 * run as openWakeWord runs them: the mel bands transformed x / 10 + 2, windows of 76 frames
 * every 8 frames, one embedding per window. gf_speech_classifier puts a new head on the
 * embeddings of a clip; the whole chain is one graft module (the imports are ordinary
 * parameters: frozen, fine-tuned or cut like any). docs/SPEECH.md. */
#ifndef GRAFT_SPEECH_H
#define GRAFT_SPEECH_H

#include "graft/nn.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How the windows' embeddings reach the head. */
typedef enum gf_speech_pool {
    GF_SPEECH_POOL_FLAT, /* concatenated in time order: [windows * 96] (openWakeWord's heads) */
    GF_SPEECH_POOL_MEAN, /* averaged over the windows: [96] */
    GF_SPEECH_POOL_MAX   /* the largest of each number over the windows: [96] */
} gf_speech_pool;

/* "flat", "mean" or "max" (NULL or another name: flat). */
gf_speech_pool gf_speech_pool_parse(const char *name);

typedef struct gf_speech_params {
    const char *mel_path; /* melspectrogram.onnx; NULL: the one beside the embedding model */
    int64_t samples;      /* the clip's length at 16 kHz (default 24000: 1.5 s, 9 windows) */
    float scale;          /* each sample is multiplied by this before the mel model (default
                           * 32768: graft's [-1, 1] samples to openWakeWord's int16 scale) */
    int window, step;     /* mel frames per embedding and between embeddings (76, 8) */
    gf_speech_pool pool;  /* default GF_SPEECH_POOL_FLAT */
    int n_classes;        /* > 0: a new Linear head to n_classes; 0: no head (the module gives
                           * the pooled embeddings) */
    /* n_cuts > 0 (no head then): tensors or nodes of the embedding model (graft inspect lists
     * them) given by gf_speech_forward_cuts instead of the embedding; the module's plain forward
     * is refused. */
    const char *const *cuts;
    int n_cuts;
} gf_speech_params;

enum { GF_SPEECH_MAX_CUTS = 256 };

gf_speech_params gf_speech_default_params(void);

/* What gf_speech_classifier built. */
typedef struct gf_speech_info {
    int64_t frames;       /* mel frames of one clip */
    int64_t windows;      /* embeddings of one clip */
    int64_t features;     /* the head's inputs (windows * 96 flat, else 96) */
    int64_t embedding;    /* numbers per embedding (96) */
} gf_speech_info;

/* The folder of the fetched models: $GRAFT_DATA_DIR/openwakeword, else
 * ${XDG_CACHE_HOME:-$HOME/.cache}/graft/openwakeword (no trailing slash). Returns the length
 * written (snprintf's), < cap when it fits. */
int gf_speech_default_dir(char *buf, size_t cap);

/* The classifier: a container "SpeechClassifier" of samples [1, samples] (one channel of a
 * waveform in [-1, 1], as audio:DIR data with its waveform setting gives them) with the
 * children `mel` (melspectrogram.onnx: frozen, it has nothing to learn), `trunk`
 * (embedding_model.onnx, trainable) and `head` (a new Linear, PyTorch's initialisation from
 * rng; absent when n_classes is 0). The mel model runs on each clip alone: it clips its
 * decibels at 80 below the loudest value of its whole input, so clips batched together would
 * change one another. Training mode leaves the imports as they are (they have no Dropout nor
 * batch statistics). Returns NULL with a context error naming the file and what was wrong (a
 * clip too short for one window, a model of another shape). info may be NULL. */
gf_module *gf_speech_classifier(gf_ctx *ctx, const char *embedding_path,
                                const gf_speech_params *p, gf_rng *rng, gf_speech_info *info);

/* The features of clips x [N, 1, samples] at the cut points of m (a gf_speech_classifier built
 * with p.cuts; n must be p.n_cuts): outs[k] is [N, F_k], each window's output at cut k
 * averaged over its positions (a [C, H, W] output to C; the embedding's own output, [1, 1, 96]
 * per window, and any other shape taken as they are, flattened) and then pooled over the clip's
 * windows as p.pool says (flat: concatenated in time order, F_k = windows * C). At the
 * embedding's output this is what the classifier without cuts gives. Arena tensors of ctx. */
gf_status gf_speech_forward_cuts(gf_ctx *ctx, gf_module *m, gf_tensor *x, gf_tensor **outs,
                                 int n);

#ifdef __cplusplus
}
#endif
#endif
