/* graft probe's candidate models: a TensorFlow.js model.json, an ONNX model, a speech embedding
 * (openWakeWord's embedding_model.onnx on audio: data) or a graft bundle (.safetensors) opened
 * for the data, its cut points chosen (--cuts, else the block ends of a
 * sweep), and a batch run once through the frozen trunk giving the output at every cut point. */
#ifndef GRAFT_CLI_PROBE_H
#define GRAFT_CLI_PROBE_H

#include "cli.h"

#include "graft/onnx.h"
#include "graft/speech.h"
#include "graft/tfjs.h"

enum { CLI_PROBE_MAX_CUTS = 256 };

typedef enum { CLI_PROBE_TFJS, CLI_PROBE_ONNX, CLI_PROBE_BUNDLE, CLI_PROBE_SPEECH } cli_probe_kind;

typedef struct cli_probe_model {
    const char *path;          /* the --from, borrowed from the options */
    const char *cuts_arg;      /* its --cuts, --cut (NULL: not given) */
    const char *cut_arg;
    cli_probe_kind kind;
    gf_module *model;          /* TF.js: the classifier (input adapter, trunk, ...); ONNX: the
                                * graph cut at the cut points; bundle: the bundle's model; speech:
                                * the chain (mel, the embedding cut at the cut points), no head */
    gf_module *input;          /* ONNX: the images fitted to its input (gf_nn_input_adapter)
                                * or NULL */
    gf_speech_info speech;     /* speech: windows and frames of a clip */
    gf_bundle *bundle;
    gf_tf *norm;               /* a bundle's recorded normalisation, or NULL */
    gf_tfjs_info *tfjs;        /* TF.js: the trunk's layers */
    gf_onnx_info *onnx;        /* ONNX and speech: the file's tensors */
    gf_transfer_points *points;/* bundle: the model's steps */
    char end[160];             /* TF.js: the layer the trunk ends at */
    char adapter[4608];        /* what is done to the data first ("" when nothing) */
    char *cuts_copy;           /* --cuts, split in place */
    int n_cuts;
    const char *cut[CLI_PROBE_MAX_CUTS]; /* borrowed from the above */
} cli_probe_model;

/* Whether path is a speech embedding: an ONNX model whose one input is openWakeWord's
 * [batch, 76, 32, 1] mel windows. */
bool cli_probe_is_speech(gf_ctx *ctx, const char *path);
/* Opens pm->path (kind by its contents / extension) for the data d and chooses its cut points.
 * CLI_CONTINUE, or the exit code after a message naming the file (and the cut). */
int cli_probe_open(gf_ctx *ctx, const cli_opts *o, const cli_data *d, cli_probe_model *pm);
/* The outputs at pm's cut points for a batch x (arena tensors of w). */
gf_status cli_probe_forward(gf_ctx *w, cli_probe_model *pm, gf_tensor *x, gf_tensor **outs);
/* "TensorFlow.js", "ONNX", "bundle", "speech embedding". */
const char *cli_probe_kind_name(cli_probe_kind kind);
void cli_probe_model_free(cli_probe_model *pm);

#endif
