/* What must agree between the ranks: the start-up fingerprint (settings, data, model, graft
 * version) compared with rank 0's, the broadcast of rank 0's initial weights, and the hash of
 * every rank's weights after training. */
#define _POSIX_C_SOURCE 200809L
#include "dist/dist_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t gf_dist_hash(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void set_name(gf_dist_item *it, const char *name) {
    snprintf(it->name, sizeof it->name, "%s", name ? name : "?");
}

gf_dist_item gf_dist_item_text(const char *name, const char *text) {
    gf_dist_item it;
    memset(&it, 0, sizeof it);
    set_name(&it, name);
    if (!text) text = "(none)";
    snprintf(it.text, sizeof it.text, "%s", text);
    it.value = gf_dist_hash(GF_DIST_HASH_INIT, text, strlen(text));
    return it;
}

/* The targets of a regression dataset, read in chunks (they live beside the examples). */
static uint64_t hash_targets(const gf_ds *ds, uint64_t h, bool *ok) {
    enum { CHUNK = 64 };
    const int64_t n = gf_ds_count(ds), numel = gf_ds_sample_numel(ds);
    float *x = malloc((size_t)(CHUNK * numel) * sizeof *x);
    float y[CHUNK];
    int64_t idx[CHUNK];
    *ok = x != NULL;
    for (int64_t at = 0; *ok && at < n; at += CHUNK) {
        const int64_t m = n - at < CHUNK ? n - at : CHUNK;
        for (int64_t i = 0; i < m; i++) idx[i] = at + i;
        *ok = gf_ds_read(ds, idx, m, x, y, NULL, 0) == GF_OK;
        h = gf_dist_hash(h, y, (size_t)m * sizeof *y);
    }
    free(x);
    return h;
}

gf_dist_item gf_dist_item_dataset(gf_ctx *ctx, const char *name, const gf_ds *ds) {
    gf_dist_item it;
    memset(&it, 0, sizeof it);
    set_name(&it, name);
    if (!ds) {
        snprintf(it.text, sizeof it.text, "none");
        return it;
    }
    const int64_t n = gf_ds_count(ds);
    uint64_t h = gf_dist_hash(GF_DIST_HASH_INIT, &n, sizeof n);
    bool ok = true;
    if (gf_ds_n_classes(ds) > 0) {
        for (int64_t i = 0; i < n; i++) {
            int64_t y = gf_ds_label(ds, i);
            h = gf_dist_hash(h, &y, sizeof y);
        }
    } else {
        h = hash_targets(ds, h, &ok);
    }
    if (!ok) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dist: cannot read the targets of %s", it.name);
    it.value = h;
    snprintf(it.text, sizeof it.text, "%lld examples, labels %016" PRIx64, (long long)n, h);
    return it;
}

gf_dist_item gf_dist_item_module(gf_ctx *ctx, const char *name, const gf_module *m) {
    gf_dist_item it;
    memset(&it, 0, sizeof it);
    set_name(&it, name);
    gf_named_tensors *l = m ? gf_module_named_tensors(ctx, m, GF_STATE_ALL) : NULL;
    uint64_t h = GF_DIST_HASH_INIT;
    int64_t params = 0, trainable = 0;
    for (int i = 0; l && i < l->n; i++) {
        const gf_tensor *t = l->items[i].tensor;
        const unsigned char flags[3] = {(unsigned char)t->dtype, (unsigned char)t->requires_grad,
                                        (unsigned char)l->items[i].is_buffer};
        h = gf_dist_hash(h, l->items[i].name, strlen(l->items[i].name) + 1);
        h = gf_dist_hash(h, t->shape, (size_t)t->ndim * sizeof t->shape[0]);
        h = gf_dist_hash(h, flags, sizeof flags);
        if (!l->items[i].is_buffer) {
            params += t->numel;
            trainable += t->requires_grad ? t->numel : 0;
        }
    }
    it.value = h;
    snprintf(it.text, sizeof it.text, "%lld parameters (%lld trainable), layout %016" PRIx64,
             (long long)params, (long long)trainable, h);
    gf_named_tensors_free(l);
    return it;
}

/* Every rank's item count, then the items, gathered on every rank. */
static gf_status gather_items(gf_ctx *ctx, gf_dist *d, const gf_dist_item *items, int n,
                              gf_dist_item **all, int *count) {
    int64_t mine = n, *counts = calloc((size_t)d->size, sizeof *counts);
    if (!counts) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dist: out of memory");
    MPI_Request req;
    gf_dist_enter(d, "the start-up checks");
    int rc = MPI_Iallgather(&mine, 1, MPI_INT64_T, counts, 1, MPI_INT64_T, d->comm, &req);
    gf_status st = rc != MPI_SUCCESS
                       ? gf_dist_mpi_error(ctx, d, "MPI_Iallgather", rc)
                       : gf_dist_wait(ctx, d, 1, &req, gf_dist_startup_timeout(d));
    for (int r = 1; st == GF_OK && r < d->size; r++)
        if (counts[r] != counts[0])
            st = gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                  "dist: rank %d (%s) describes its run with %lld items, rank 0 "
                                  "with %lld: the ranks run different programs or graft versions",
                                  r, gf_dist_describe_rank(d, r), (long long)counts[r],
                                  (long long)counts[0]);
    free(counts);
    if (st != GF_OK) return st;
    *all = malloc((size_t)d->size * (size_t)n * sizeof **all);
    if (!*all) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dist: out of memory");
    const int bytes = n * (int)sizeof(gf_dist_item);
    gf_dist_enter(d, "the start-up checks");
    rc = MPI_Iallgather(items, bytes, MPI_BYTE, *all, bytes, MPI_BYTE, d->comm, &req);
    st = rc != MPI_SUCCESS ? gf_dist_mpi_error(ctx, d, "MPI_Iallgather", rc)
                           : gf_dist_wait(ctx, d, 1, &req, gf_dist_startup_timeout(d));
    *count = n;
    return st;
}

gf_status gf_dist_check_same(gf_ctx *ctx, gf_dist *d, const gf_dist_item *items, int n) {
    if (!d || n < 0 || (n > 0 && !items))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "dist: start-up checks: NULL argument");
    if (d->size < 2) return GF_OK;
    gf_dist_item *mine = malloc((size_t)(n + 1) * sizeof *mine);
    if (!mine) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dist: out of memory");
    /* the version first: a different graft explains any other difference */
    mine[0] = gf_dist_item_text("graft version", GF_VERSION_STRING);
    if (n > 0) memcpy(mine + 1, items, (size_t)n * sizeof *items);
    gf_dist_item *all = NULL;
    int m = 0;
    gf_status st = gather_items(ctx, d, mine, n + 1, &all, &m);
    for (int r = 1; st == GF_OK && r < d->size; r++)
        for (int i = 0; i < m; i++) {
            const gf_dist_item *a = &all[i], *b = &all[(size_t)r * (size_t)m + i];
            if (a->value == b->value && strcmp(a->name, b->name) == 0) continue;
            st = gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                  "dist: rank %d (%s) was started with a different %s than rank "
                                  "0: %s (rank 0: %s); every rank must run the same graft with "
                                  "the same settings and data",
                                  r, gf_dist_describe_rank(d, r), b->name, b->text, a->text);
            break;
        }
    free(all);
    free(mine);
    return st;
}

/* The bytes of every parameter and buffer of m, in state_dict order, into *out (malloc'd). */
static gf_status pack_state(gf_ctx *ctx, const gf_module *m, gf_named_tensors **list,
                            unsigned char **out, int64_t *bytes) {
    *list = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    if (!*list) return gf_ctx_status(ctx);
    int64_t total = 0;
    for (int i = 0; i < (*list)->n; i++) {
        const gf_tensor *t = (*list)->items[i].tensor;
        total += t->numel * (int64_t)gf_dtype_size(t->dtype);
    }
    *out = malloc(total > 0 ? (size_t)total : 1);
    if (!*out) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dist: out of memory for %lld bytes "
                                       "of weights", (long long)total);
    int64_t at = 0;
    for (int i = 0; i < (*list)->n; i++) {
        const gf_tensor *t = (*list)->items[i].tensor;
        gf_copy_out(t, *out + at);
        at += t->numel * (int64_t)gf_dtype_size(t->dtype);
    }
    *bytes = total;
    return GF_OK;
}

gf_status gf_dist_broadcast_module(gf_ctx *ctx, gf_dist *d, gf_module *m) {
    if (!d || !m) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "dist: broadcast: NULL argument");
    if (d->size < 2) return GF_OK;
    gf_named_tensors *l = NULL;
    unsigned char *buf = NULL;
    int64_t bytes = 0;
    gf_status st = pack_state(ctx, m, &l, &buf, &bytes);
    /* in pieces of at most 1 GiB: MPI counts are ints */
    const int64_t piece = INT64_C(1) << 30;
    for (int64_t at = 0; st == GF_OK && at < bytes; at += piece) {
        const int64_t n = bytes - at < piece ? bytes - at : piece;
        MPI_Request req;
        gf_dist_enter(d, "the broadcast of rank 0's weights");
        int rc = MPI_Ibcast(buf + at, (int)n, MPI_BYTE, 0, d->comm, &req);
        st = rc != MPI_SUCCESS ? gf_dist_mpi_error(ctx, d, "MPI_Ibcast", rc)
                               : gf_dist_wait(ctx, d, 1, &req, gf_dist_startup_timeout(d));
    }
    int64_t at = 0;
    for (int i = 0; st == GF_OK && d->rank != 0 && i < l->n; i++) {
        gf_tensor *t = l->items[i].tensor;
        gf_copy_in(t, buf + at);
        at += t->numel * (int64_t)gf_dtype_size(t->dtype);
    }
    free(buf);
    gf_named_tensors_free(l);
    return st;
}

gf_status gf_dist_same_weights(gf_ctx *ctx, gf_dist *d, const gf_module *m, uint64_t *hash) {
    if (!d || !m) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "dist: weights: NULL argument");
    gf_named_tensors *l = NULL;
    unsigned char *buf = NULL;
    int64_t bytes = 0;
    gf_status st = pack_state(ctx, m, &l, &buf, &bytes);
    uint64_t h = st == GF_OK ? gf_dist_hash(GF_DIST_HASH_INIT, buf, (size_t)bytes) : 0;
    free(buf);
    gf_named_tensors_free(l);
    if (hash) *hash = h;
    if (st != GF_OK || d->size < 2) return st;
    uint64_t *all = malloc((size_t)d->size * sizeof *all);
    if (!all) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "dist: out of memory");
    MPI_Request req;
    gf_dist_enter(d, "the comparison of every rank's weights");
    int rc = MPI_Iallgather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, d->comm, &req);
    st = rc != MPI_SUCCESS ? gf_dist_mpi_error(ctx, d, "MPI_Iallgather", rc)
                           : gf_dist_wait(ctx, d, 1, &req, d->p.timeout);
    char list[256] = "";
    size_t len = 0;
    for (int r = 1; st == GF_OK && r < d->size; r++)
        if (all[r] != all[0] && len < sizeof list - 1)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", len ? ", " : "", r);
    if (st == GF_OK && len > 0)
        st = gf_ctx_set_error(ctx, GF_ERR_STATE,
                              "dist: the weights of rank(s) %s differ from rank 0's (hash %016" PRIx64
                              "): the ranks no longer train the same model",
                              list, all[0]);
    free(all);
    return st;
}
