/* Knowledge distillation (include/graft/distill.h): Hinton's soft-target loss composed from
 * existing ops, a cache of a teacher's logits computed once over a dataset, and the two as a
 * batch loss that turns gf_fit into the distillation loop. */
#include "core/internal.h"
#include "nn/nn_access.h" /* train_requested: restoring each module's mode exactly */
#include "graft/distill.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- the loss ------------------------------------------------------------------------------
 * With z_s = student / T, z_t = teacher / T, p = softmax(z_t), ls = log_softmax(z_s):
 *   KL_batchmean = (1/N) sum_{n,c} p (log p - ls)      (p log p computed as p * log_softmax(z_t))
 * d soft / d student = alpha T^2 (1/N) (softmax(z_s) - p) / T: the ops' own backward passes
 * give it (p and log p are constants, made with recording off). */

gf_tensor *gf_distill_loss(gf_ctx *ctx, gf_tensor *student, gf_tensor *teacher, gf_tensor *labels,
                           float T, float alpha) {
    const char *op = "distill_loss";
    if (!gf_check_tensor(ctx, op, "student_logits", student, GF_F32)) return NULL;
    char a[GF_SHAPE_BUF], b[GF_SHAPE_BUF];
    if (student->ndim != 2 || student->shape[0] < 1 || student->shape[1] < 1) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: student_logits must be [N, C] with N, C >= 1, got %s",
                         op, gf_shape_str(student, a, sizeof a));
        return NULL;
    }
    if (!(T > 0.0f) || !isfinite(T) || !(alpha >= 0.0f && alpha <= 1.0f)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: T=%g, alpha=%g: need T > 0 (finite) and alpha in "
                         "[0, 1]", op, (double)T, (double)alpha);
        return NULL;
    }
    if (teacher || alpha > 0.0f) {
        if (!teacher) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: teacher_logits is NULL with alpha=%g (only "
                             "alpha = 0 needs no teacher)", op, (double)alpha);
            return NULL;
        }
        if (!gf_check_tensor(ctx, op, "teacher_logits", teacher, GF_F32)) return NULL;
        if (!gf_same_shape(student, teacher)) {
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: student_logits %s and teacher_logits %s differ",
                             op, gf_shape_str(student, a, sizeof a), gf_shape_str(teacher, b, sizeof b));
            return NULL;
        }
    }
    if (labels || alpha < 1.0f) {
        if (!labels) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: labels is NULL with alpha=%g (only alpha = 1 "
                             "needs no labels)", op, (double)alpha);
            return NULL;
        }
        if (!gf_check_tensor(ctx, op, "labels", labels, GF_I64)) return NULL;
        if (labels->ndim != 1 || labels->shape[0] != student->shape[0]) {
            gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: labels %s do not fit student_logits %s (need [N])",
                             op, gf_shape_str(labels, a, sizeof a), gf_shape_str(student, b, sizeof b));
            return NULL;
        }
    }
    const float n = (float)student->shape[0];
    gf_tensor *soft = NULL, *hard = NULL;
    if (teacher) {
        gf_tensor *t = gf_scalar(ctx, T);
        bool prev = gf_ctx_set_grad_enabled(ctx, false); /* the teacher side is a constant */
        gf_tensor *zt = gf_div(ctx, teacher, t);
        gf_tensor *p = gf_softmax(ctx, zt, 1), *logp = gf_log_softmax(ctx, zt, 1);
        gf_ctx_set_grad_enabled(ctx, prev);
        gf_tensor *ls = gf_log_softmax(ctx, gf_div(ctx, student, t), 1);
        gf_tensor *kl_sum = gf_sum(ctx, gf_mul(ctx, p, gf_sub(ctx, logp, ls)), NULL, 0, false);
        soft = gf_mul_scalar(ctx, kl_sum, alpha * T * T / n);
        if (!soft) return NULL;
    }
    if (labels) {
        hard = gf_mul_scalar(ctx, gf_cross_entropy(ctx, student, labels, GF_REDUCE_MEAN, -100),
                             1.0f - alpha);
        if (!hard) return NULL;
    }
    return soft && hard ? gf_add(ctx, soft, hard) : soft ? soft : hard;
}

/* ---- teacher-logit cache -------------------------------------------------------------------- */

struct gf_teacher_cache {
    int64_t n, classes;
    float *logits; /* [n, classes] */
};

void gf_teacher_cache_free(gf_teacher_cache *c) {
    if (!c) return;
    free(c->logits);
    free(c);
}

int64_t gf_teacher_cache_count(const gf_teacher_cache *c) { return c ? c->n : 0; }
int64_t gf_teacher_cache_classes(const gf_teacher_cache *c) { return c ? c->classes : 0; }

const float *gf_teacher_cache_row(const gf_teacher_cache *c, int64_t i) {
    return c && i >= 0 && i < c->n ? c->logits + i * c->classes : NULL;
}

/* The mode (train_requested) of m and every descendant, in pre-order. */
static int64_t count_modules(const gf_module *m) {
    int64_t k = 1;
    for (int i = 0; i < gf_module_num_children(m); i++) k += count_modules(gf_module_child_at(m, i, NULL));
    return k;
}

static void save_modes(const gf_module *m, bool *modes, int64_t *k) {
    modes[(*k)++] = gf_module_train_requested(m);
    for (int i = 0; i < gf_module_num_children(m); i++)
        save_modes(gf_module_child_at(m, i, NULL), modes, k);
}

/* Pre-order: each gf_module_train call is overridden by its descendants' own. Pins stay. */
static void restore_modes(gf_module *m, const bool *modes, int64_t *k) {
    gf_module_train(m, modes[(*k)++]);
    for (int i = 0; i < gf_module_num_children(m); i++)
        restore_modes(gf_module_child_at(m, i, NULL), modes, k);
}

/* Runs the teacher over every batch in run (a private context); fills c. */
static gf_status run_teacher(gf_ctx *ctx, gf_ctx *run, gf_module *teacher, const gf_ds *ds,
                             int64_t bs, gf_teacher_cache *c) {
    const char *op = "teacher cache";
    int nd = gf_ds_ndim(ds);
    int64_t shape[GF_MAX_DIMS];
    shape[0] = 0;
    memcpy(shape + 1, gf_ds_shape(ds), sizeof(int64_t) * (size_t)nd);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)bs);
    if (!idx) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", op);
    gf_status st = GF_OK;
    for (int64_t start = 0; start < c->n && st == GF_OK; start += bs) {
        int64_t nb = c->n - start < bs ? c->n - start : bs;
        for (int64_t i = 0; i < nb; i++) idx[i] = start + i;
        shape[0] = nb;
        gf_tensor *x = gf_empty(run, GF_F32, nd + 1, shape);
        gf_tensor *y = NULL;
        if (x && gf_ds_batch(run, ds, idx, nb, x, NULL) == GF_OK) y = gf_module_forward(run, teacher, x);
        char s[GF_SHAPE_BUF];
        if (!y) {
            st = gf_ctx_set_error(ctx, gf_ctx_status(run), "%s: examples %lld..%lld: %s", op,
                                  (long long)start, (long long)(start + nb - 1), gf_ctx_error(run));
        } else if (y->ndim != 2 || y->shape[0] != nb || (c->logits && y->shape[1] != c->classes) ||
                   y->shape[1] < 1) {
            st = gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: the teacher gave %s for %lld examples; expected "
                                  "[%lld, C] logits%s", op, gf_shape_str(y, s, sizeof s), (long long)nb,
                                  (long long)nb, c->logits ? " with the first batch's C" : "");
        } else {
            if (!c->logits) {
                c->classes = y->shape[1];
                c->logits = malloc(sizeof(float) * (size_t)(c->n * c->classes));
                if (!c->logits) st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory for %lld x "
                                                      "%lld logits", op, (long long)c->n, (long long)c->classes);
            }
            if (st == GF_OK) gf_copy_out(y, c->logits + start * c->classes);
        }
        gf_ctx_reset(run);
    }
    free(idx);
    return st;
}

gf_teacher_cache *gf_teacher_cache_build(gf_ctx *ctx, gf_module *teacher, const gf_ds *ds,
                                         int64_t batch_size) {
    const char *op = "teacher cache";
    if (!teacher || !ds || batch_size < 1 || gf_ds_count(ds) < 1 || gf_ds_ndim(ds) + 1 > GF_MAX_DIMS) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: need a teacher, a non-empty dataset and batch_size >= 1 "
                         "(teacher %s, dataset %s, batch_size %lld)", op, teacher ? "set" : "NULL",
                         ds ? "set" : "NULL", (long long)batch_size);
        return NULL;
    }
    gf_teacher_cache *c = calloc(1, sizeof *c);
    int64_t n_mod = count_modules(teacher), k = 0;
    bool *modes = malloc(sizeof(bool) * (size_t)n_mod);
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = gf_ctx_threads(ctx);
    cp.limits = *gf_ctx_limits(ctx);
    gf_ctx *run = c && modes ? gf_ctx_new(&cp) : NULL;
    if (!run) {
        free(c);
        free(modes);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    c->n = gf_ds_count(ds);
    gf_ctx_set_grad_enabled(run, false);
    save_modes(teacher, modes, &k);
    gf_module_train(teacher, false);
    gf_status st = run_teacher(ctx, run, teacher, ds, batch_size, c);
    k = 0;
    restore_modes(teacher, modes, &k);
    free(modes);
    gf_ctx_free(run);
    if (st != GF_OK) {
        gf_teacher_cache_free(c);
        return NULL;
    }
    return c;
}

gf_tensor *gf_teacher_cache_gather(gf_ctx *ctx, const gf_teacher_cache *c, const int64_t *idx,
                                   int64_t n) {
    const char *op = "teacher cache gather";
    if (!c || (!idx && n > 0) || n < 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s", op, !c ? "cache is NULL" : "bad index list");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= c->n) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: index %lld (entry %lld) is outside [0, %lld)", op,
                             (long long)idx[i], (long long)i, (long long)c->n);
            return NULL;
        }
    gf_tensor *t = gf_empty(ctx, GF_F32, 2, (int64_t[]){n, c->classes});
    if (!t) return NULL;
    for (int64_t i = 0; i < n; i++)
        memcpy(gf_f32(t) + i * c->classes, c->logits + idx[i] * c->classes, sizeof(float) * (size_t)c->classes);
    return t;
}

/* ---- the loss for gf_fit ------------------------------------------------------------------------- */

static gf_tensor *distill_batch(gf_ctx *ctx, gf_tensor *out, const gf_batch_info *b, void *user) {
    const gf_distill_spec *d = user;
    if (!b->training) return gf_cross_entropy(ctx, out, b->y, GF_REDUCE_MEAN, -100);
    gf_tensor *t = b->extra; /* the cached logits of the batch's examples */
    if (!t) {
        if (!d->teacher) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "distill: neither a teacher cache nor a teacher "
                             "for the batch's logits");
            return NULL;
        }
        const bool g = gf_ctx_set_grad_enabled(ctx, false);
        t = gf_module_forward(ctx, d->teacher, b->x);
        gf_ctx_set_grad_enabled(ctx, g);
        if (!t) return NULL;
    }
    return gf_distill_loss(ctx, out, t, b->y, d->T, d->alpha);
}

gf_loss_spec gf_distill_loss_spec(const gf_distill_spec *d) {
    gf_loss_spec l = gf_loss_default(GF_LOSS_CUSTOM);
    l.batch_fn = distill_batch;
    l.user = (void *)d;
    if (d && d->cache) {
        l.extra = gf_teacher_cache_row(d->cache, 0);
        l.extra_width = gf_teacher_cache_classes(d->cache);
        l.extra_count = gf_teacher_cache_count(d->cache);
    }
    return l;
}
