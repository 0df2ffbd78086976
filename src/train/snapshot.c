/* Weight snapshots (train/snapshot.h): one buffer per state_dict tensor. */
#include "train/snapshot.h"

#include <stdlib.h>

gf_status gf_snapshot_init(gf_ctx *ctx, gf_snapshot *s, gf_module *m, const char *oom_message) {
    s->list = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    s->data = NULL;
    s->taken = false;
    if (!s->list) return gf_ctx_status(ctx);
    s->data = calloc((size_t)(s->list->n ? s->list->n : 1), sizeof *s->data);
    if (!s->data) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s", oom_message);
    for (int i = 0; i < s->list->n; i++) {
        const gf_tensor *t = s->list->items[i].tensor;
        s->data[i] = malloc(gf_dtype_size(t->dtype) * (size_t)(t->numel ? t->numel : 1));
        if (!s->data[i]) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s", oom_message);
    }
    return GF_OK;
}

void gf_snapshot_take(gf_snapshot *s) {
    for (int i = 0; i < s->list->n; i++) gf_copy_out(s->list->items[i].tensor, s->data[i]);
    s->taken = true;
}

void gf_snapshot_restore(const gf_snapshot *s) {
    for (int i = 0; i < s->list->n; i++) gf_copy_in(s->list->items[i].tensor, s->data[i]);
}

void gf_snapshot_free(gf_snapshot *s) {
    for (int i = 0; s->list && s->data && i < s->list->n; i++) free(s->data[i]);
    free(s->data);
    gf_named_tensors_free(s->list);
    s->list = NULL;
    s->data = NULL;
    s->taken = false;
}
