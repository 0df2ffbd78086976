/* LoRA layers (include/graft/lora.h): putting adapters on Linear/Conv2d targets chosen by glob,
 * their forward, merge/unmerge/unload. The adapter files are in lora_io.c. */
#define _POSIX_C_SOURCE 200809L
#include "transfer/lora_internal.h"
#include "graft/transfer.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define LORA_LINEAR "lora.Linear"
#define LORA_CONV "lora.Conv2d"

/* PEFT: scaling = lora_alpha / r as a Python float, applied to float32 tensors as float. */
float gf_lora_scaling(const lora_layer *L) { return (float)((double)L->alpha / L->r); }

gf_lora_params gf_lora_default_params(void) {
    gf_lora_params p;
    memset(&p, 0, sizeof p);
    p.r = 8;
    p.alpha = 8.0f;
    p.freeze_base = true;
    return p;
}

/* ---- forward ---------------------------------------------------------------------------- */

static gf_tensor *lora_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    lora_layer *L = user;
    if (!gf_check_tensor(ctx, L->conv ? "conv2d" : "linear", "input", x, GF_F32)) return NULL;
    char s[GF_SHAPE_BUF];
    if (L->conv && (x->ndim != 4 || x->shape[1] != L->in)) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "expected input [N, %lld, H, W], got %s",
                         (long long)L->in, gf_shape_str(x, s, sizeof s));
        return NULL;
    }
    if (!L->conv && (x->ndim < 1 || x->shape[x->ndim - 1] != L->in)) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "input %s does not end in in_features=%lld",
                         gf_shape_str(x, s, sizeof s), (long long)L->in);
        return NULL;
    }
    gf_tensor *y = L->conv ? gf_conv2d(ctx, x, L->weight, L->bias, &L->cp)
                           : gf_linear(ctx, x, L->weight, L->bias);
    if (!y || L->merged) return y; /* merged: the adapter is inside weight already */
    gf_tensor *h = gf_dropout(ctx, x, L->dropout, gf_module_is_training(self));
    gf_tensor *b = gf_module_forward(ctx, L->B, gf_module_forward(ctx, L->A, h));
    return gf_add(ctx, y, gf_mul_scalar(ctx, b, gf_lora_scaling(L)));
}

bool gf_lora_is_layer(const gf_module *m) { return m && gf_module_forward_of(m) == lora_forward; }

bool gf_lora_layer_info(const gf_module *layer, int *r, float *alpha, float *dropout,
                        bool *merged) {
    if (!gf_lora_is_layer(layer)) return false;
    const lora_layer *L = gf_module_user(layer);
    if (r) *r = L->r;
    if (alpha) *alpha = L->alpha;
    if (dropout) *dropout = L->dropout;
    if (merged) *merged = L->merged;
    return true;
}

/* ---- the module list: every descendant with its dotted path ------------------------------ */

void gf_lora_list_free(mod_list *l) {
    for (int i = 0; i < l->n; i++) free(l->e[i].path);
    free(l->e);
    memset(l, 0, sizeof *l);
}

static void list_walk(mod_list *l, gf_module *m, const char *prefix, bool in_lora) {
    for (int i = 0; i < gf_module_num_children(m) && !l->oom; i++) {
        const char *name;
        gf_module *c = gf_module_child_at(m, i, &name);
        if (l->n == l->cap) {
            mod_entry *g = realloc(l->e, sizeof *l->e * (size_t)(2 * l->cap));
            if (!g) {
                l->oom = true;
                return;
            }
            l->e = g;
            l->cap *= 2;
        }
        size_t n = strlen(prefix) + strlen(name) + 2;
        char *path = malloc(n);
        if (!path) {
            l->oom = true;
            return;
        }
        snprintf(path, n, "%s%s%s", prefix, prefix[0] ? "." : "", name);
        l->e[l->n++] = (mod_entry){c, path, in_lora};
        list_walk(l, c, path, in_lora || gf_lora_is_layer(c));
    }
}

/* Pre-order list of m's descendants (not m). false with a ctx error when out of memory. */
bool gf_lora_list_modules(gf_ctx *ctx, gf_module *m, mod_list *l) {
    memset(l, 0, sizeof *l);
    l->cap = 16;
    l->e = malloc(sizeof *l->e * (size_t)l->cap);
    if (l->e) list_walk(l, m, "", false);
    if (!l->e || l->oom) {
        gf_lora_list_free(l);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "lora: out of memory listing modules");
        return false;
    }
    return true;
}

/* Only the LoRA layers of a list, compacted in place (entries keep their order). */
void gf_lora_keep_layers(mod_list *l) {
    int k = 0;
    for (int i = 0; i < l->n; i++) {
        if (gf_lora_is_layer(l->e[i].m)) l->e[k++] = l->e[i];
        else free(l->e[i].path);
    }
    l->n = k;
}

int gf_lora_count(const gf_module *model) {
    if (!model) return 0;
    int n = gf_lora_is_layer(model) ? 1 : 0;
    for (int i = 0; i < gf_module_num_children(model); i++)
        n += gf_lora_count(gf_module_child_at(model, i, NULL));
    return n;
}

/* Why m cannot take an adapter, or NULL when it can. */
const char *gf_lora_unsupported(const mod_entry *e) {
    if (e->in_lora) return "it is part of a LoRA layer";
    if (gf_lora_is_layer(e->m)) return "it already has a LoRA adapter";
    const char *type = gf_module_type(e->m);
    bool lin = !strcmp(type, "Linear"), conv = !strcmp(type, "Conv2d");
    if (!lin && !conv) return "only Linear and Conv2d layers can take adapters";
    if (conv && gf_nn_affine_of(e->m).conv.groups != 1) return "grouped convolutions (groups != 1) are not supported";
    if (gf_module_num_children(e->m) > 0) return "it has child modules";
    return NULL;
}

/* ---- making and placing LoRA layers ------------------------------------------------------ */

/* A copy of t (persistent, contiguous) with requires_grad as given. */
static gf_tensor *copy_tensor(gf_ctx *ctx, const gf_tensor *t, bool requires_grad) {
    gf_tensor *c = gf_tensor_new(ctx, GF_F32, t->ndim, t->shape);
    if (!c) return NULL;
    gf_copy_out(t, gf_f32(c));
    gf_tensor_set_requires_grad(c, requires_grad);
    return c;
}

/* A new LoRA layer around (a copy of) base's tensors, in base's train/eval state. */
static gf_module *make_layer(gf_ctx *ctx, const gf_module *base, int r, float alpha,
                             float dropout, gf_rng *rng) {
    lora_layer *L = calloc(1, sizeof *L);
    if (!L) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "lora: out of memory");
        return NULL;
    }
    const gf_nn_affine cfg = gf_nn_affine_of(base), *c = &cfg;
    L->conv = !strcmp(gf_module_type(base), "Conv2d");
    L->r = r;
    L->alpha = alpha;
    L->dropout = dropout;
    L->in = c->in;
    L->out = c->out;
    L->kh = c->kh;
    L->kw = c->kw;
    L->cp = c->conv;
    L->base_w_grad = c->weight->requires_grad;
    L->base_b_grad = c->bias && c->bias->requires_grad;
    gf_module *m = gf_nn_container(ctx, L->conv ? LORA_CONV : LORA_LINEAR, lora_forward, L, free);
    if (!m) return NULL;
    gf_module_set_reentrant(m, true); /* reads L, never writes it */
    gf_rng zero_rng; /* lora_B is zeroed: its constructor's draws must not consume rng */
    gf_rng_seed(&zero_rng, 0);
    gf_conv_params one = gf_conv_default_params();
    gf_module *A = L->conv ? gf_nn_conv2d(ctx, rng, L->in, r, L->kh, L->kw, &L->cp, false)
                           : gf_nn_linear(ctx, rng, L->in, r, false);
    gf_module *B = L->conv ? gf_nn_conv2d(ctx, &zero_rng, r, L->out, 1, 1, &one, false)
                           : gf_nn_linear(ctx, &zero_rng, r, L->out, false);
    bool ok = A && B;
    gf_tensor *w = ok ? copy_tensor(ctx, c->weight, false) : NULL;
    ok = w && gf_module_add_parameter(ctx, m, "weight", w) == GF_OK;
    L->weight = ok ? w : NULL;
    if (ok && c->bias) {
        gf_tensor *b = copy_tensor(ctx, c->bias, false);
        ok = b && gf_module_add_parameter(ctx, m, "bias", b) == GF_OK;
        L->bias = ok ? b : NULL;
    }
    if (ok) {
        L->A = A;
        L->B = B;
        gf_module *a = A, *b = B;
        A = B = NULL; /* gf_module_add owns them from here, on failure too */
        ok = gf_module_add(ctx, m, "lora_A", a) == GF_OK;
        if (ok) ok = gf_module_add(ctx, m, "lora_B", b) == GF_OK;
        else gf_module_free(b);
    }
    if (ok) ok = gf_nn_init_constant(ctx, gf_module_tensor(ctx, L->B, "weight"), 0.0f) == GF_OK;
    gf_module_free(A);
    gf_module_free(B);
    if (!ok) {
        gf_module_free(m);
        return NULL;
    }
    gf_module_train(m, gf_module_train_requested(base));
    gf_module_pin_eval(m, gf_module_eval_pinned(base));
    return m;
}

/* Makes the adapters of every LoRA layer in model trainable (PEFT's mark_only_lora_as_trainable
 * after a freeze of everything). */
void gf_lora_adapters_trainable(gf_module *m) {
    if (gf_lora_is_layer(m)) {
        lora_layer *L = gf_module_user(m);
        gf_module_set_requires_grad(L->A, true);
        gf_module_set_requires_grad(L->B, true);
        return;
    }
    for (int i = 0; i < gf_module_num_children(m); i++) gf_lora_adapters_trainable(gf_module_child_at(m, i, NULL));
}

/* Gives every LoRA layer's base tensors back the requires_grad they had before the layer was
 * made (before unloading layers that must disappear without a trace). */
void gf_lora_restore_base_grad(gf_module *m) {
    if (gf_lora_is_layer(m)) {
        lora_layer *L = gf_module_user(m);
        gf_tensor_set_requires_grad(L->weight, L->base_w_grad);
        if (L->bias) gf_tensor_set_requires_grad(L->bias, L->base_b_grad);
        return;
    }
    for (int i = 0; i < gf_module_num_children(m); i++) gf_lora_restore_base_grad(gf_module_child_at(m, i, NULL));
}

/* Replaces the modules of targets[0..n) (checked: each supported) by LoRA layers: all are
 * built first, then swapped in, so a failure changes nothing. */
gf_status gf_lora_apply_targets(gf_ctx *ctx, gf_module *model, const mod_entry *const *targets,
                               int n, int r, float alpha, float dropout, bool freeze_base,
                               gf_rng *rng) {
    gf_module **made = calloc((size_t)(n ? n : 1), sizeof *made);
    if (!made) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "lora: out of memory");
    for (int i = 0; i < n; i++)
        if (!(made[i] = make_layer(ctx, targets[i]->m, r, alpha, dropout, rng))) {
            for (int k = 0; k < i; k++) gf_module_free(made[k]);
            free(made);
            return ctx->status;
        }
    if (freeze_base) gf_module_set_requires_grad(model, false);
    for (int i = 0; i < n; i++) {
        gf_module *old = gf_module_swap(ctx, model, targets[i]->path, made[i]);
        gf_module_free(old); /* cannot fail: the path was just listed and is a leaf */
    }
    if (freeze_base) gf_lora_adapters_trainable(model);
    free(made);
    return GF_OK;
}

gf_status gf_lora_check_settings(gf_ctx *ctx, const char *op, int r, double alpha, double dropout) {
    if (r < 1 || !(alpha > 0.0) || !isfinite(alpha) || !(dropout >= 0.0 && dropout < 1.0))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "%s: r=%d, alpha=%g, dropout=%g: need r >= 1, alpha > 0 (finite) "
                                "and dropout in [0, 1)", op, r, alpha, dropout);
    return GF_OK;
}

gf_status gf_lora_apply(gf_ctx *ctx, gf_module *model, const gf_lora_params *p, gf_rng *rng) {
    const char *op = "lora apply";
    if (!model || !p) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s is NULL", op, model ? "params" : "model");
    if (gf_lora_check_settings(ctx, op, p->r, p->alpha, p->dropout) != GF_OK) return ctx->status;
    if (p->n_targets < 1 || !p->targets)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: no target patterns given", op);
    for (int t = 0; t < p->n_targets; t++)
        if (!p->targets[t] || !p->targets[t][0])
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: target pattern %d is NULL or empty", op, t);
    mod_list l;
    if (!gf_lora_list_modules(ctx, model, &l)) return ctx->status;
    const mod_entry **sel = calloc((size_t)(l.n ? l.n : 1), sizeof *sel);
    if (!sel) {
        gf_lora_list_free(&l);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", op);
    }
    int n_sel = 0;
    gf_status st = GF_OK;
    for (int t = 0; t < p->n_targets && st == GF_OK; t++) {
        int hits = 0;
        for (int i = 0; i < l.n && st == GF_OK; i++) {
            if (fnmatch(p->targets[t], l.e[i].path, 0) != 0) continue;
            hits++;
            const char *why = gf_lora_unsupported(&l.e[i]);
            if (why) {
                st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: target \"%s\" matches %s (%s): %s",
                                      op, p->targets[t], l.e[i].path, gf_module_type(l.e[i].m), why);
                break;
            }
            bool dup = false;
            for (int k = 0; k < n_sel && !dup; k++) dup = sel[k] == &l.e[i];
            if (!dup) sel[n_sel++] = &l.e[i];
        }
        if (st == GF_OK && hits == 0)
            st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: target \"%s\" matches no module of %s",
                                  op, p->targets[t], gf_module_type(model));
    }
    /* keep the tree's order (the RNG draws follow it), whatever the pattern order */
    for (int i = 1; i < n_sel; i++)
        for (int k = i; k > 0 && sel[k] < sel[k - 1]; k--) {
            const mod_entry *tmp = sel[k];
            sel[k] = sel[k - 1];
            sel[k - 1] = tmp;
        }
    if (st == GF_OK)
        st = gf_lora_apply_targets(ctx, model, sel, n_sel, p->r, p->alpha, p->dropout, p->freeze_base, rng);
    free(sel);
    gf_lora_list_free(&l);
    return st;
}

/* ---- merge, unmerge, unload ----------------------------------------------------------------- */

/* d = scaling * B A over the flattened kernel: B [out, r], A [r, in * kh * kw]. */
static void delta_weight(gf_ctx *ctx, const lora_layer *L, float *d) {
    const float *A = gf_f32(gf_module_tensor(NULL, L->A, "weight"));
    const float *B = gf_f32(gf_module_tensor(NULL, L->B, "weight"));
    int64_t out = L->out, r = L->r, k = L->weight->numel / L->out;
    float s = gf_lora_scaling(L);
#pragma omp parallel for num_threads(gf_threads_for(ctx, out * k * r))
    for (int64_t o = 0; o < out; o++)
        for (int64_t j = 0; j < k; j++) {
            float acc = 0.0f;
            for (int64_t q = 0; q < r; q++) acc += B[o * r + q] * A[q * k + j];
            d[o * k + j] = acc * s;
        }
}

/* Adds sign * delta to dst (a tensor shaped like L's weight). */
gf_status gf_lora_add_delta(gf_ctx *ctx, const lora_layer *L, gf_tensor *dst, float sign) {
    float *d = malloc(sizeof(float) * (size_t)L->weight->numel);
    if (!d) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "lora merge: out of memory");
    delta_weight(ctx, L, d);
    float *w = gf_f32(dst);
    for (int64_t i = 0; i < dst->numel; i++) w[i] += sign * d[i];
    free(d);
    return GF_OK;
}

static gf_status set_merged(gf_ctx *ctx, gf_module *m, bool merge) {
    if (gf_lora_is_layer(m)) {
        lora_layer *L = gf_module_user(m);
        if (L->merged == merge) return GF_OK;
        if (gf_lora_add_delta(ctx, L, L->weight, merge ? 1.0f : -1.0f) != GF_OK) return ctx->status;
        L->merged = merge;
        return GF_OK;
    }
    for (int i = 0; i < gf_module_num_children(m); i++)
        if (set_merged(ctx, gf_module_child_at(m, i, NULL), merge) != GF_OK) return ctx->status;
    return GF_OK;
}

gf_status gf_lora_merge(gf_ctx *ctx, gf_module *model) {
    if (!model) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "lora merge: model is NULL");
    return set_merged(ctx, model, true);
}

gf_status gf_lora_unmerge(gf_ctx *ctx, gf_module *model) {
    if (!model) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "lora unmerge: model is NULL");
    return set_merged(ctx, model, false);
}

/* A plain Linear/Conv2d equal to the LoRA layer's base (merged or not, as asked). */
static gf_module *plain_layer(gf_ctx *ctx, const gf_module *m, bool merge) {
    const lora_layer *L = gf_module_user(m);
    gf_rng rng; /* the weights are overwritten: do not consume the caller's RNG */
    gf_rng_seed(&rng, 0);
    gf_module *p = L->conv ? gf_nn_conv2d(ctx, &rng, L->in, L->out, L->kh, L->kw, &L->cp, L->bias != NULL)
                           : gf_nn_linear(ctx, &rng, L->in, L->out, L->bias != NULL);
    if (!p) return NULL;
    const gf_nn_affine pc = gf_nn_affine_of(p);
    gf_tensor *w = pc.weight, *b = pc.bias;
    gf_copy_out(L->weight, gf_f32(w));
    if (b) gf_copy_out(L->bias, gf_f32(b));
    if (merge != L->merged && gf_lora_add_delta(ctx, L, w, merge ? 1.0f : -1.0f) != GF_OK) {
        gf_module_free(p);
        return NULL;
    }
    gf_tensor_set_requires_grad(w, L->weight->requires_grad);
    if (b) gf_tensor_set_requires_grad(b, L->bias->requires_grad);
    gf_module_train(p, gf_module_train_requested(m));
    gf_module_pin_eval(p, gf_module_eval_pinned(m));
    return p;
}

gf_status gf_lora_unload(gf_ctx *ctx, gf_module *model, bool merge) {
    if (!model) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "lora unload: model is NULL");
    mod_list l;
    if (!gf_lora_list_modules(ctx, model, &l)) return ctx->status;
    gf_lora_keep_layers(&l);
    gf_module **made = calloc((size_t)(l.n ? l.n : 1), sizeof *made);
    gf_status st = made ? GF_OK : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "lora unload: out of memory");
    for (int i = 0; i < l.n && st == GF_OK; i++)
        if (!(made[i] = plain_layer(ctx, l.e[i].m, merge))) st = ctx->status;
    for (int i = 0; i < l.n && made; i++) {
        if (st == GF_OK) gf_module_free(gf_module_swap(ctx, model, l.e[i].path, made[i]));
        else gf_module_free(made[i]);
    }
    free(made);
    gf_lora_list_free(&l);
    return st;
}

/* ---- default targets ---------------------------------------------------------------------- */

void gf_lora_targets_free(char **targets) {
    for (char **t = targets; t && *t; t++) free(*t);
    free(targets);
}

char **gf_lora_default_targets(gf_ctx *ctx, const gf_module *model, const char *head, int *n_out) {
    if (n_out) *n_out = 0;
    char head_buf[256];
    if (!head && !(head = gf_transfer_default_head(ctx, model, head_buf, sizeof head_buf))) return NULL;
    gf_named_tensors *ps = gf_module_named_tensors(ctx, model, GF_STATE_PARAMS);
    if (!ps) return NULL;
    char **out = calloc((size_t)ps->n + 1, sizeof *out);
    int n = 0;
    bool ok = out != NULL;
    for (int i = 0; ok && i < ps->n; i++) {
        const char *name = ps->items[i].name;
        const char *dot = strrchr(name, '.');
        if (!dot || dot == name || strcmp(dot, ".weight") != 0) continue;
        size_t len = (size_t)(dot - name);
        if (strlen(head) == len && strncmp(name, head, len) == 0) continue;
        char path[512];
        if (len >= sizeof path) continue; /* no module path is this long */
        memcpy(path, name, len);
        path[len] = '\0';
        const gf_module *c = gf_module_child(model, path);
        const char *type = c ? gf_module_type(c) : "";
        if (strcmp(type, "Linear") != 0 && strcmp(type, "Conv2d") != 0) continue;
        ok = (out[n] = malloc(len + 1)) != NULL;
        if (ok) memcpy(out[n++], path, len + 1);
    }
    gf_named_tensors_free(ps);
    if (!ok) {
        gf_lora_targets_free(out);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "lora: out of memory listing the default targets");
        return NULL;
    }
    if (n_out) *n_out = n;
    return out;
}
