/* graft distill: knowledge distillation (Hinton et al. 2015) — the soft-target loss against a
 * teacher's logits, and a cache that runs the teacher once over a dataset. */
#ifndef GRAFT_DISTILL_H
#define GRAFT_DISTILL_H

#include "graft/dataset.h"
#include "graft/nn.h"

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

#ifdef __cplusplus
}
#endif
#endif
