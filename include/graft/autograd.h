/* graft autograd: reverse mode over the tape of ops recorded in a context. An op is recorded
 * only when grad mode is on and one of its inputs requires a gradient, so frozen parts of a
 * network cost no graph, no gradient buffers and no backward work. */
#ifndef GRAFT_AUTOGRAD_H
#define GRAFT_AUTOGRAD_H

#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Backpropagates from a scalar (numel 1) loss with dL/dloss = 1. Gradients accumulate into
 * every tensor that requires one: persistent leaves keep theirs across gf_ctx_reset, so
 * several micro-batches can accumulate before an optimizer step. */
gf_status gf_backward(gf_ctx *ctx, gf_tensor *loss);
/* Same, from any output with an explicit upstream gradient of the output's shape. */
gf_status gf_backward_with(gf_ctx *ctx, gf_tensor *out, const gf_tensor *grad_out);

/* Same, from several outputs at once (e.g. the heads of a multi-task network). */
gf_status gf_backward_many(gf_ctx *ctx, int n, gf_tensor *const *outs,
                           const gf_tensor *const *grad_outs);

/* Gradient routing, for running one model's backward in several contexts at once (data
 * parallelism: graft/train.h, gf_replicas). While set, a backward in ctx accumulates the
 * gradient of leaves[i] (a persistent tensor) into buffers[i] (leaves[i]->numel floats, owned
 * by the caller, who zeroes them) and never touches leaves[i]->grad, so several contexts can
 * run backward through the same parameters at the same time. A persistent tensor that requires
 * a gradient but is not listed makes the backward fail with an error naming its shape. n = 0
 * clears the routing. The arrays are copied; the buffers must stay valid while routed. */
gf_status gf_backward_route_grads(gf_ctx *ctx, int n, gf_tensor *const *leaves, float *const *buffers);

/* Gradient-ready notification, for starting work on a gradient while the backward is still
 * running (summing it over processes as PyTorch's DDP does: graft/dist.h). The next backward
 * in ctx calls ready(ctx, i, user) once for each leaves[i], as soon as no node left in the
 * graph can add to leaves[i]->grad: right after the last node (in backward order) that takes
 * leaves[i] as an input, or before the first node when none does. leaves[i]->grad is then
 * final for this backward (NULL when nothing reached it). The watch is for that one backward
 * and is cleared by it, also when it fails (leaves not reached by then get no call); n = 0
 * clears it. A ready that returns an error stops the backward with that error. The list is
 * copied; the tensors must live until the backward. */
typedef gf_status (*gf_grad_ready_fn)(gf_ctx *ctx, int i, void *user);
gf_status gf_backward_watch(gf_ctx *ctx, int n, gf_tensor *const *leaves, gf_grad_ready_fn ready,
                            void *user);

/* Number of op nodes recorded since the last reset (for tests and diagnostics). */
int64_t gf_tape_size(const gf_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
