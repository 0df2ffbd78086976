/* A copy of a module's parameters and buffers, to put back later: gf_fit's keep-best weights,
 * and the common starting point of gf_mt_fit's runs. Owned by the training layer; layers above
 * it (transfer) may use it. Not installed. */
#ifndef GRAFT_TRAIN_SNAPSHOT_H
#define GRAFT_TRAIN_SNAPSHOT_H

#include "graft/nn.h"

typedef struct gf_snapshot {
    gf_named_tensors *list; /* the module's tensors in state_dict order (borrowed); NULL: none */
    void **data;            /* one buffer per tensor, its dtype and numel */
    bool taken;             /* data holds a copy (gf_snapshot_take) */
} gf_snapshot;

/* Lists m's tensors and allocates a buffer for each (no copy yet). On failure the context error
 * is oom_message (or the listing's error); free s either way. */
gf_status gf_snapshot_init(gf_ctx *ctx, gf_snapshot *s, gf_module *m, const char *oom_message);
/* Copies the tensors into the buffers. */
void gf_snapshot_take(gf_snapshot *s);
/* Copies the buffers back into the tensors. */
void gf_snapshot_restore(const gf_snapshot *s);
/* Frees the buffers and the list; a zeroed or failed snapshot is fine. */
void gf_snapshot_free(gf_snapshot *s);

#endif
