/* graft distill: knowledge distillation (Hinton et al. 2015) — the soft-target loss against a
 * teacher's logits, a cache that runs the teacher once over a dataset, and the two together as
 * a loss for gf_fit. */
#ifndef GRAFT_DISTILL_H
#define GRAFT_DISTILL_H

#include "graft/dataset.h"
#include "graft/nn.h"
#include "graft/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
 *      + (1 - alpha) * cross_entropy(student, labels),
 * the KL term as torch.nn.KLDivLoss(reduction="batchmean")(log_softmax(student / T, 1),
 * softmax(teacher / T, 1)): summed over classes and samples, divided by N. The T^2 factor
 * keeps the soft term's gradient on the scale of the hard one as T changes. The cross entropy
 * is gf_cross_entropy's mean (ignore_index -100).
 *   student_logits  float32 [N, C] (the gradient flows into it)
 *   teacher_logits  float32 [N, C], a constant: no gradient reaches it even when it has one;
 *                   may be NULL only when alpha == 0
 *   labels          int64 [N] class indices; may be NULL only when alpha == 1
 *   T > 0 (finite), alpha in [0, 1].
 * Returns a 0-d arena tensor, or NULL with a context error naming the bad argument and the
 * shapes. Both terms are always computed when both inputs are given, so alpha = 0 gives
 * exactly gf_cross_entropy's value and gradient (0 * soft + 1 * hard in float arithmetic). */
gf_tensor *gf_distill_loss(gf_ctx *ctx, gf_tensor *student_logits, gf_tensor *teacher_logits,
                           gf_tensor *labels, float T, float alpha);

/* ---- teacher-logit cache -----------------------------------------------------------------
 * The teacher is run once, in evaluation mode and without recording a graph, over every
 * example of a dataset; later epochs read its logits by example index instead of running it
 * again. Memory: count * classes floats. */
typedef struct gf_teacher_cache gf_teacher_cache;

/* Runs teacher over ds (batches of batch_size, in index order) and keeps the logits [C] of
 * every example. The teacher must map [n, sample shape...] to [n, C]. It is put in eval mode
 * for the run and then back into the mode it was in (gf_module_train on the root); BatchNorm
 * statistics do not move. The run uses a private context with ctx's thread count, so ctx's
 * arena tensors, tape and RNG are untouched. Returns a new cache (free with
 * gf_teacher_cache_free) or NULL with an error in ctx (naming the batch when the forward
 * failed). */
gf_teacher_cache *gf_teacher_cache_build(gf_ctx *ctx, gf_module *teacher, const gf_ds *ds,
                                         int64_t batch_size);
void gf_teacher_cache_free(gf_teacher_cache *c);

int64_t gf_teacher_cache_count(const gf_teacher_cache *c);   /* examples (the dataset's) */
int64_t gf_teacher_cache_classes(const gf_teacher_cache *c); /* C */
/* The logits of example i (C floats, borrowed, valid until the cache is freed), or NULL when
 * i is out of range. */
const float *gf_teacher_cache_row(const gf_teacher_cache *c, int64_t i);
/* The logits of examples idx[0..n) as a new arena tensor [n, C] that requires no gradient
 * (e.g. idx = a gf_batch's idx), or NULL with an error naming an index out of range. */
gf_tensor *gf_teacher_cache_gather(gf_ctx *ctx, const gf_teacher_cache *c, const int64_t *idx,
                                   int64_t n);

/* ---- distillation with gf_fit ---------------------------------------------------------------
 * A batch loss (gf_loss_spec.batch_fn) that makes gf_fit a distillation loop: in training,
 * gf_distill_loss of the student's logits against the teacher's logits for the batch's examples
 * and the labels; in validation (gradients off, b->training false) the plain cross entropy.
 * The teacher's logits are the cache's rows for the batch's dataset indices (handed to the loss
 * as its extra rows: the cache must be built over the training loader's dataset) or, without a
 * cache, the teacher run on the batch's inputs without gradients (for a loader whose random
 * transforms change the inputs every epoch; put the teacher in eval mode first). */
typedef struct gf_distill_spec {
    const gf_teacher_cache *cache; /* the training data's teacher logits; or NULL and */
    gf_module *teacher;            /* the teacher, run on every training batch */
    float T, alpha;                /* as gf_distill_loss */
} gf_distill_spec;

/* The loss for gf_fit: kind CUSTOM, batch_fn, user d (borrowed: d, its cache and teacher must
 * outlive the run), and the cache's logits as the extra rows. */
gf_loss_spec gf_distill_loss_spec(const gf_distill_spec *d);

#ifdef __cplusplus
}
#endif
#endif
