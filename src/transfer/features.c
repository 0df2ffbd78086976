/* Trunk features: the model run without its head (an Identity swapped in for it), and a cache of
 * those features over a whole dataset for linear probes that train only the head. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "transfer/transfer_internal.h"

gf_tensor *gf_transfer_trunk_forward(gf_ctx *ctx, gf_module *m, const char *head_path, gf_tensor *x) {
    char def[GF_TRANSFER_PATH_MAX];
    if (!m || !x) {
        if (gf_ctx_status(ctx) == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "trunk forward: %s is NULL", m ? "input" : "module");
        return NULL;
    }
    if (!head_path && !(head_path = gf_transfer_default_head(ctx, m, def, sizeof def))) return NULL;
    gf_module *id = gf_nn_identity(ctx);
    if (!id) return NULL;
    gf_module *head = gf_module_swap(ctx, m, head_path, id);
    if (!head) {
        gf_module_free(id);
        return NULL;
    }
    gf_tensor *y = gf_module_forward(ctx, m, x);
    gf_module_free(gf_module_swap(ctx, m, head_path, head)); /* cannot fail: the path exists */
    return y;
}

/* ---- saving and restoring training modes --------------------------------------------------- */

typedef struct {
    gf_module **mods;
    bool *mode; /* the mode asked of each module (a pinned one is asked too, and stays eval) */
    int n, cap;
    bool oom;
} modes;

static bool visit_mode(gf_module *m, const char *path, void *user) {
    (void)path;
    modes *s = user;
    if (s->n == s->cap) {
        int nc = s->cap ? 2 * s->cap : 32;
        gf_module **pm = realloc(s->mods, sizeof *pm * (size_t)nc);
        if (pm) s->mods = pm;
        bool *pb = pm ? realloc(s->mode, sizeof *pb * (size_t)nc) : NULL;
        if (pb) s->mode = pb;
        if (!pm || !pb) {
            s->oom = true;
            return false;
        }
        s->cap = nc;
    }
    bool pinned = gf_module_eval_pinned(m);
    if (pinned) gf_module_pin_eval(m, false); /* reveals the mode asked of it */
    s->mods[s->n] = m;
    s->mode[s->n++] = gf_module_is_training(m);
    if (pinned) gf_module_pin_eval(m, true);
    return true;
}

/* Restores in pre-order: a parent's call sets its subtree, each child then sets its own. */
static void restore_modes(const modes *s) {
    for (int i = 0; i < s->n; i++) gf_module_train(s->mods[i], s->mode[i]);
}

/* ---- the cache ---------------------------------------------------------------------------- */

gf_ds *gf_transfer_cache_features(gf_ctx *ctx, gf_module *m, const char *head_path, const gf_ds *ds,
                            int64_t batch_size) {
    const char *op = "cache features";
    char def[GF_TRANSFER_PATH_MAX];
    if (!m || !ds || batch_size < 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s", op,
                         !m ? "module is NULL" : !ds ? "dataset is NULL" : "batch size < 0");
        return NULL;
    }
    if (!head_path && !(head_path = gf_transfer_default_head(ctx, m, def, sizeof def))) return NULL;
    if (!gf_module_child(m, head_path)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: no module \"%s\" in %s", op, head_path,
                         gf_module_type(m));
        return NULL;
    }
    int64_t n = gf_ds_count(ds), bs = batch_size ? batch_size : 256;
    int n_classes = gf_ds_n_classes(ds);
    if (n < 1) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: the dataset is empty", op);
        return NULL;
    }
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = gf_ctx_threads(ctx);
    cp.limits = *gf_ctx_limits(ctx);
    gf_ctx *w = gf_ctx_new(&cp);
    modes saved = {0};
    gf_transfer_walk(m, visit_mode, &saved);
    int64_t *idx = malloc(sizeof *idx * (size_t)bs);
    void *y_all = malloc((size_t)n * (n_classes > 0 ? sizeof(int64_t) : sizeof(float)));
    const char **names = calloc((size_t)(n_classes > 0 ? n_classes : 1), sizeof *names);
    float *feats = NULL;
    int64_t f_dim = 0;
    gf_ds *out = NULL;
    if (!w || !idx || !y_all || !names || saved.oom) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", op);
        goto done;
    }
    gf_ctx_set_grad_enabled(w, false);
    gf_module_train(m, false);
    int64_t xshape[GF_DS_MAX_DIMS + 1];
    int xdim = gf_ds_ndim(ds) + 1;
    memcpy(xshape + 1, gf_ds_shape(ds), sizeof(int64_t) * (size_t)gf_ds_ndim(ds));
    for (int64_t start = 0; start < n; start += bs) {
        int64_t nb = n - start < bs ? n - start : bs;
        for (int64_t i = 0; i < nb; i++) idx[i] = start + i;
        xshape[0] = nb;
        gf_tensor *x = gf_empty(w, GF_F32, xdim, xshape);
        gf_tensor *y = gf_empty(w, n_classes > 0 ? GF_I64 : GF_F32, 1, &nb);
        if (!x || !y || gf_ds_batch(w, ds, idx, nb, x, y) != GF_OK) break;
        gf_tensor *f = gf_transfer_trunk_forward(w, m, head_path, x);
        if (!f) break;
        if (f->ndim < 1 || f->shape[0] != nb) {
            char s[96];
            gf_ctx_set_error(w, GF_ERR_SHAPE, "%s: the trunk returned %s for a batch of %lld", op,
                             gf_shape_str(f, s, sizeof s), (long long)nb);
            break;
        }
        int64_t per = f->numel / nb;
        if (!feats) {
            f_dim = per;
            feats = malloc(sizeof(float) * (size_t)(n * f_dim));
            if (!feats) {
                gf_ctx_set_error(w, GF_ERR_NOMEM, "%s: out of memory for %lld x %lld features", op,
                                 (long long)n, (long long)f_dim);
                break;
            }
        } else if (per != f_dim) {
            gf_ctx_set_error(w, GF_ERR_SHAPE, "%s: the trunk gave %lld features per example, "
                             "then %lld", op, (long long)f_dim, (long long)per);
            break;
        }
        gf_copy_out(f, feats + start * f_dim);
        gf_copy_out(y, (char *)y_all + (size_t)start * (n_classes > 0 ? sizeof(int64_t) : sizeof(float)));
        gf_ctx_reset(w);
    }
    if (gf_ctx_status(w) != GF_OK) {
        gf_ctx_set_error(ctx, gf_ctx_status(w), "%s: %s", op, gf_ctx_error(w));
        goto done;
    }
    if (f_dim < 1) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: the trunk returned no features", op);
        goto done;
    }
    for (int k = 0; k < n_classes; k++) names[k] = gf_ds_class_name(ds, k);
    gf_ds_desc d;
    memset(&d, 0, sizeof d);
    d.ndim = 1;
    d.shape[0] = f_dim;
    d.n = n;
    d.x_f32 = feats;
    if (n_classes > 0) d.labels = y_all;
    else d.targets = y_all;
    d.n_classes = n_classes;
    d.class_names = n_classes > 0 ? names : NULL;
    d.name = "trunk features";
    out = gf_ds_from_memory(ctx, &d);
done:
    if (!saved.oom) restore_modes(&saved);
    free(saved.mods);
    free(saved.mode);
    free(idx);
    free(y_all);
    free(names);
    free(feats);
    gf_ctx_free(w);
    return out;
}
