/* graft transfer: the primitives of transfer learning — freezing by name, replacing the head,
 * an explicit BatchNorm policy, partial loads with a plan, delta checkpoints against a base file
 * and cached trunk features for linear probes. Everything is built on the public nn, weights
 * and dataset APIs. docs/TRANSFER.md walks through them. */
#ifndef GRAFT_TRANSFER_H
#define GRAFT_TRANSFER_H

#include <stdio.h>

#include "graft/dataset.h"
#include "graft/nn.h"
#include "graft/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- freezing ------------------------------------------------------------------------------
 * Frozen = requires_grad false: the parameter loses its gradient buffer, the backward pass does
 * no work for it and optimizers skip it (no state, no decay, no momentum). Buffers are never
 * trainable and are not matched. Patterns are fnmatch(3) globs with no flags over the full
 * dotted parameter names: '*' also crosses dots, so "features.*" selects every parameter under
 * features and "*.bias" every bias. */

/* Freezes / unfreezes every parameter of m whose name matches pattern. Returns the number of
 * parameter tensors matched (already frozen ones included), or -1 with a ctx error naming the
 * pattern and a few existing names when it matches nothing. */
int gf_transfer_freeze(gf_ctx *ctx, gf_module *m, const char *pattern);
int gf_transfer_unfreeze(gf_ctx *ctx, gf_module *m, const char *pattern);

/* Blocks: the unit of "freeze all but the last N". The blocks of m are its children in order,
 * where a child that is a Sequential is replaced by its own children (recursively), and only
 * modules holding at least one parameter count. resnet-mini: conv1, bn1, layer1.0, layer1.1,
 * layer2.0, layer2.1, layer3.0, layer3.1, fc; cnn-small: features.0, features.3, classifier.1,
 * classifier.3; mlp: layers.0, layers.2, head. */
typedef struct gf_transfer_blocks {
    int n;
    char **path; /* dotted module paths, owned by the list */
} gf_transfer_blocks;

/* New list (free with gf_transfer_blocks_free); NULL with a ctx error for a NULL m or out of memory. */
gf_transfer_blocks *gf_transfer_blocks_of(gf_ctx *ctx, const gf_module *m);
void gf_transfer_blocks_free(gf_transfer_blocks *b);

/* Makes the last n_last blocks trainable and freezes every other parameter of m (the earlier
 * blocks and parameters held directly by m). n_last >= the number of blocks: all trainable;
 * 0: all frozen. Returns the number of parameter tensors now frozen, or -1 with a ctx error
 * (n_last < 0, NULL m). */
int gf_transfer_freeze_all_but(gf_ctx *ctx, gf_module *m, int n_last);

/* ---- the head ------------------------------------------------------------------------------- */

/* Dotted path of the last Linear module of m in state_dict order (for the zoo models this is
 * gf_zoo_head(name)) written into buf; returns buf, or NULL with a ctx error when m has none. */
const char *gf_transfer_default_head(gf_ctx *ctx, const gf_module *m, char *buf, size_t cap);

/* Replaces the Linear at head_path (NULL: gf_transfer_default_head) with a new Linear of the same
 * in_features and bias setting, out_features outputs and PyTorch's default initialisation drawn
 * from rng (NULL: the context RNG). It keeps the name and position (so its parameters keep
 * their state_dict names), requires grad and takes the old head's training mode. Errors: no
 * module at the path, not a Linear, out_features < 1. */
gf_status gf_transfer_replace_head(gf_ctx *ctx, gf_module *m, const char *head_path,
                             int64_t out_features, gf_rng *rng);

/* ---- BatchNorm policy ------------------------------------------------------------------------
 * Applies to the BatchNorm1d/2d layers of m whose dotted path matches scope (fnmatch; NULL:
 * all of them):
 *   GF_TRANSFER_BN_FREEZE_STATS  each layer is pinned to eval mode (gf_module_pin_eval: it normalises
 *                          with its running statistics and never updates them or
 *                          num_batches_tracked, whatever gf_module_train says) and its weight
 *                          and bias are frozen: the layer is a fixed per-channel affine map,
 *                          like torchvision's FrozenBatchNorm2d. The default.
 *   GF_TRANSFER_BN_TRAIN_AFFINE  pinned to eval mode as above, weight and bias made trainable (also
 *                          in blocks that are otherwise frozen).
 *   GF_TRANSFER_BN_TRAIN_ALL     unpinned: the layers follow gf_module_train like PyTorch, so their
 *                          statistics move in training mode even when their parameters are
 *                          frozen; requires_grad is left as it is.
 * Pins stay until changed: later freeze/unfreeze calls change requires_grad only. */
typedef enum gf_transfer_bn_policy {
    GF_TRANSFER_BN_FREEZE_STATS = 0,
    GF_TRANSFER_BN_TRAIN_AFFINE,
    GF_TRANSFER_BN_TRAIN_ALL,
    GF_TRANSFER_BN_POLICY_COUNT
} gf_transfer_bn_policy;

#define GF_TRANSFER_BN_DEFAULT GF_TRANSFER_BN_FREEZE_STATS

/* "freeze-stats", "train-affine", "train-all"; "?" otherwise. */
const char *gf_transfer_bn_policy_name(gf_transfer_bn_policy p);
/* Parses one of those names; false when unknown. */
bool gf_transfer_bn_policy_parse(const char *name, gf_transfer_bn_policy *out);

/* Returns the number of BatchNorm layers the policy was applied to (0 for a model without
 * any when scope is NULL), or -1 with a ctx error: bad policy, or a scope matching no
 * BatchNorm layer (the message names the scope and lists the layers). */
int gf_transfer_set_bn_policy(gf_ctx *ctx, gf_module *m, gf_transfer_bn_policy policy, const char *scope);

/* ---- load plans ------------------------------------------------------------------------------
 * A load through gf_weights_load_with (renaming, strict, dry run) plus what training will do
 * with each tensor. Roles describe the model at the time of the call: freeze and set the BN
 * policy first, then plan. */
typedef enum gf_transfer_role {
    GF_TRANSFER_ROLE_TRAINABLE = 0, /* parameter, requires grad */
    GF_TRANSFER_ROLE_FROZEN,        /* parameter, frozen */
    GF_TRANSFER_ROLE_STAT_MOVING,   /* BatchNorm buffer updated in training mode (layer not pinned) */
    GF_TRANSFER_ROLE_STAT_FIXED,    /* BatchNorm buffer of a pinned layer: never changes */
    GF_TRANSFER_ROLE_BUFFER,        /* any other buffer */
    GF_TRANSFER_ROLE_NONE           /* unexpected key: not in the model */
} gf_transfer_role;

const char *gf_transfer_role_name(gf_transfer_role r); /* "trainable", "frozen", "stat moving", ... */

/* Pretrained weights whose first convolution reads another number of channels than the
 * model's (a grey model for RGB data, an RGB one for grey data). The first convolution is the
 * model's first Conv2d with groups 1 in state_dict order; it is adapted when the file holds
 * its weight (after renaming) as [O, C_file, kh, kw] and the model as [O, C, kh, kw], every
 * size but C equal. The rule is timm's adapt_input_conv (timm states it for 3-channel files;
 * here C_file stands for the 3):
 *   C == 1   the sum over the file's C_file channels;
 *   else     the file's channels repeated ceil(C / C_file) times, cut to C, scaled by
 *            C_file / C (so a constant image gives the same response as before).
 * The bias, when there is one, is unchanged. */
typedef enum gf_transfer_in_channels {
    GF_TRANSFER_IN_CHANNELS_ADAPT = 0, /* adapt as above (the default) */
    GF_TRANSFER_IN_CHANNELS_ERROR,     /* leave it a mismatched key like any other */
    GF_TRANSFER_IN_CHANNELS_COUNT
} gf_transfer_in_channels;

/* "adapt", "error"; "?" otherwise. */
const char *gf_transfer_in_channels_name(gf_transfer_in_channels c);
/* Parses one of those names; false when unknown. */
bool gf_transfer_in_channels_parse(const char *name, gf_transfer_in_channels *out);

/* Writes the rule's result for the float32 weight src [O, C_file, kh, kw] into the float32
 * tensor dst [O, C, kh, kw] (both contiguous, every size but C equal). Errors name both
 * shapes. */
gf_status gf_transfer_adapt_input_conv(gf_ctx *ctx, const gf_tensor *src, gf_tensor *dst);

typedef struct gf_transfer_load_params {
    gf_weights_options weights;   /* renaming, strict, dry run */
    gf_transfer_in_channels in_channels; /* GF_TRANSFER_IN_CHANNELS_ADAPT */
} gf_transfer_load_params;

/* gf_weights_default_options() and GF_TRANSFER_IN_CHANNELS_ADAPT. */
gf_transfer_load_params gf_transfer_load_default_params(void);

typedef struct gf_transfer_plan {
    char *source;              /* the file's path */
    gf_weights_report *report;    /* per key: status, renamed-from (file_name), shapes */
    gf_transfer_role *roles;         /* report->n entries */
    bool strict, dry_run;
    bool applied;              /* the tensors marked loaded were copied into the model */
    int64_t params_total;      /* parameter elements */
    int64_t params_trainable;  /* of them, requiring grad */
    int tensors_trainable, tensors_frozen; /* parameter tensors */
    int bn_layers;             /* BatchNorm layers tracking running statistics */
    int bn_moving;             /* of them, not pinned: statistics move in training mode */
    int bn_moving_frozen;      /* of those, with frozen affine parameters (PyTorch's surprise) */
    bool bn_stats_move;        /* bn_moving > 0 */
    /* The first convolution when the file's input channels differ from the model's
     * (in_from > 0; else in_from = in_to = 0 and in_note ""): in_adapted when its weights were
     * adapted (for a dry run: would be; its key then counts as loaded), and a line saying so,
     * "conv1.weight: 1 -> 3 input channels, repeated and scaled (timm's rule)". */
    gf_transfer_in_channels in_channels; /* the mode of the load */
    int64_t in_from, in_to;
    bool in_adapted;
    char in_note[256];
} gf_transfer_plan;

void gf_transfer_plan_free(gf_transfer_plan *p);

/* Loads path into m through gf_weights_load_with(p->weights), adapting the first convolution
 * to the model's input channels as p->in_channels says, and stores a new plan in *plan (when
 * not NULL) on success, strict refusal and dry run alike. p NULL: the defaults. dry_run:
 * nothing is loaded. strict: an adapted first convolution counts as fitting; any other
 * missing, unexpected or mismatched key refuses the load (nothing loaded). Returns GF_OK or
 * the load's error. */
gf_status gf_transfer_load_with(gf_ctx *ctx, gf_module *m, const char *path,
                          const gf_transfer_load_params *p, gf_transfer_plan **plan);
/* gf_transfer_load_with with opt (NULL: defaults) and the default in_channels (adapt). */
gf_status gf_transfer_load(gf_ctx *ctx, gf_module *m, const char *path, const gf_weights_options *opt,
                     gf_transfer_plan **plan);
/* The dry runs: gf_transfer_load / gf_transfer_load_with with dry_run forced on. */
gf_status gf_transfer_plan_load(gf_ctx *ctx, gf_module *m, const char *path,
                          const gf_weights_options *opt, gf_transfer_plan **plan);
gf_status gf_transfer_plan_load_with(gf_ctx *ctx, gf_module *m, const char *path,
                               const gf_transfer_load_params *p, gf_transfer_plan **plan);

/* A human table: one line per key (all: also the loaded ones) with status, role, name, the
 * file key it was renamed from and shapes, then the summary (counts, trainable parameters,
 * whether BN statistics will move, the input-channel note). */
void gf_transfer_plan_print(const gf_transfer_plan *p, FILE *out, bool all);
/* The plan as JSON (an object with "source", "strict", "dry_run", "applied", "keys" (every
 * key: name, file_name or null, status, role, model_shape, file_shape, file_dtype),
 * "summary" and "in_channels" (mode, from, to, adapted, note; from/to 0 when they agree)).
 * Returns a new string (free with free()), or NULL with a ctx error. */
char *gf_transfer_plan_json(gf_ctx *ctx, const gf_transfer_plan *p);
/* Writes gf_transfer_plan_json to out. */
gf_status gf_transfer_plan_write_json(gf_ctx *ctx, const gf_transfer_plan *p, FILE *out);

/* ---- delta checkpoints -----------------------------------------------------------------------
 * A delta holds only the tensors of a model that differ from a base file: those whose values
 * are not bitwise equal to the base's (after the base's dtype conversion on load), plus those
 * the base lacks or holds in another shape (a new head, adapters, moved BN statistics,
 * fine-tuned layers). Its __metadata__ names the base by the SHA-256 of the base file's bytes
 * ("graft.base_sha256", what `sha256sum` prints), so it only ever applies to that exact file. */

/* SHA-256 of a file's bytes as 64 lowercase hex digits in hex[65]. */
gf_status gf_transfer_sha256_file(gf_ctx *ctx, const char *path, char hex[65]);

/* Writes the delta of m against base_path to out_path (atomically). base_map: the renaming
 * used to load the base into m (only its key mapping is used; NULL: names as they are).
 * n_written (may be NULL) gets the number of tensors in the delta. */
gf_status gf_transfer_delta_save(gf_ctx *ctx, const gf_module *m, const char *base_path,
                           const gf_weights_options *base_map, const char *out_path,
                           int *n_written);
/* Applies a delta to m, which must already hold the weights of base_path: checks that the
 * SHA-256 of base_path equals the delta's "graft.base_sha256" (else GF_ERR_STATE naming both
 * hashes, nothing loaded), that every delta tensor exists in m with its shape (else nothing
 * loaded), then loads them all. */
gf_status gf_transfer_delta_apply(gf_ctx *ctx, gf_module *m, const char *delta_path,
                            const char *base_path);
/* Loads base_path into m (non-strict, renamed by base_opt: NULL defaults) after verifying the
 * hash, then applies the delta: the fine-tuned model from the two files. */
gf_status gf_transfer_delta_load(gf_ctx *ctx, gf_module *m, const char *base_path,
                           const gf_weights_options *base_opt, const char *delta_path);

/* ---- trunk features and linear probes ------------------------------------------------------
 * The trunk is the model with its head replaced by an identity (PyTorch's `model.fc =
 * nn.Identity()`): the forward runs every module except the head, whatever comes after the head
 * still runs. */

/* Runs the trunk of m on x (head_path NULL: gf_transfer_default_head): swaps an Identity in for the
 * head, runs m, swaps the head back. Returns an arena tensor [N, ...] (the head's input), or
 * NULL with a ctx error. m is left as it was, also on error. */
gf_tensor *gf_transfer_trunk_forward(gf_ctx *ctx, gf_module *m, const char *head_path, gf_tensor *x);

/* Runs the trunk once over every example of ds in eval mode with no autograd (batches of
 * batch_size, 0: 256) and returns a new in-memory dataset (free with gf_ds_free) whose examples
 * are the flattened trunk outputs [F] with ds's labels or targets and class names. Works in a
 * scratch context with ctx's thread count, so ctx's arena tensors stay valid; m's training modes
 * are restored afterwards. NULL with a ctx error. */
gf_ds *gf_transfer_cache_features(gf_ctx *ctx, gf_module *m, const char *head_path, const gf_ds *ds,
                            int64_t batch_size);

/* ---- cut points: the outputs of modules inside a model -------------------------------------
 * Any module of a model can be a cut point, named by its dotted path ("features.2", "layer2",
 * "layer2.1"): its output, as the model's own forward computes it. */

typedef struct gf_transfer_points {
    int n;
    char **path;     /* dotted module paths, owned by the list */
    bool *block_end; /* in the default sweep (see gf_transfer_points_of) */
} gf_transfer_points;

/* The steps of m up to its head (head_path NULL: gf_transfer_default_head): m's children in
 * order, where a child that is a Sequential is replaced by its own children (recursively), as
 * gf_transfer_blocks_of walks them but with the modules holding no parameter too, stopping at
 * the head. A step is a block end unless the step after it is an activation (ReLU, GELU, ...),
 * a BatchNorm, a Dropout or the step itself is a Flatten (its input is the same features):
 * where a layer is complete. cnn-small: features.1, features.2, features.4, features.5,
 * classifier.2; resnet-mini: relu, layer1.0, layer1.1, ..., layer3.1, avgpool. New list (free
 * with gf_transfer_points_free), or NULL with a ctx error (no head, out of memory). */
gf_transfer_points *gf_transfer_points_of(gf_ctx *ctx, const gf_module *m, const char *head_path);
void gf_transfer_points_free(gf_transfer_points *p);

/* Runs m on x once and puts the outputs of the modules at paths[0..n) in outs (arena tensors
 * of ctx): each is wrapped for the call by a container that keeps its output, and put back.
 * GF_ERR_INVALID naming the path for a path m lacks, named twice, or whose module m's forward
 * did not run; the forward's errors otherwise. m is left as it was, also on error. */
gf_status gf_transfer_forward_points(gf_ctx *ctx, gf_module *m, gf_tensor *x,
                                     const char *const *paths, int n, gf_tensor **outs);

/* ---- ranking without training ---------------------------------------------------------------
 * Scores of how well features f [n, d] (row-major, float) would serve a classifier for labels
 * (n values in [0, n_classes)), computed without training: higher is better. Both work in
 * double on the d x d Gram or covariance matrix, eigendecomposed by LAPACK's dsyevd (OpenBLAS),
 * so d is at most GF_TRANSFER_SCORE_MAX_DIM. GF_ERR_INVALID for NULL pointers, n < 2, d < 1,
 * n_classes < 2, a label out of range or a non-finite feature. */
enum { GF_TRANSFER_SCORE_MAX_DIM = 8192 };

/* LogME (You et al., ICML 2021, "LogME: Practical Assessment of Pre-trained Models for Transfer
 * Learning", Algorithm 1): per class, the one-hot label column y is fitted by Bayesian linear
 * regression y = f w + noise with prior w ~ N(0, 1/alpha) and noise N(0, 1/beta); alpha and
 * beta maximise the evidence p(y | f) by the paper's fixed-point iteration (at most 11 rounds,
 * stopping when alpha/beta moves by under 1 %), on the eigendecomposition of f^T f. *out is
 * the mean over classes of the log evidence divided by n (the authors' code, epsilon 1e-5). */
gf_status gf_transfer_logme(gf_ctx *ctx, const float *f, int64_t n, int64_t d,
                            const int64_t *labels, int n_classes, double *out);

/* H-score (Bao et al., ICIP 2019, "An Information-Theoretic Approach to Transferability in
 * Task Transfer Learning"): tr(pinv(cov(f)) cov(E[f | y])), covariances with n - 1 and the
 * pseudo-inverse dropping eigenvalues under 1e-15 times the largest (numpy's pinv default,
 * as the authors' code). */
gf_status gf_transfer_hscore(gf_ctx *ctx, const float *f, int64_t n, int64_t d,
                             const int64_t *labels, int n_classes, double *out);

/* Spearman's rank correlation of a and b (n values each; ties get their average rank, as
 * scipy.stats.spearmanr): the Pearson correlation of the ranks. NaN when n < 2 or either side
 * is constant. */
double gf_transfer_spearman(const double *a, const double *b, int n);

#ifdef __cplusplus
}
#endif
#endif
