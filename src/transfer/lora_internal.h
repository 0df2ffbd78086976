/* Internal interface between the LoRA files (lora.c: layers, apply, merge; lora_io.c: PEFT
 * adapter files): the layer's user block and the module list with dotted paths. */
#ifndef GRAFT_LORA_INTERNAL_H
#define GRAFT_LORA_INTERNAL_H

#include "core/internal.h"
#include "graft/lora.h"
/* a Conv2d's stride/padding/dilation, a layer's forward pointer and its requested mode have no
 * public getter; the LoRA code only reads them */
#include "nn/nn_access.h"

/* The user block of a LoRA layer. weight/bias/A/B are borrowed from the layer itself. */
typedef struct lora_layer {
    bool conv;
    int r;
    float alpha, dropout;
    bool merged;
    int64_t in, out;
    int kh, kw;
    gf_conv_params cp;          /* the base conv's settings (groups 1) */
    gf_tensor *weight, *bias;   /* <path>.weight [out, in(, kh, kw)], <path>.bias [out] or NULL */
    gf_module *A, *B;           /* children lora_A, lora_B (no bias) */
    bool base_w_grad, base_b_grad; /* requires_grad of the base tensors before freezing */
} lora_layer;

/* PEFT: scaling = lora_alpha / r as a Python float, applied to float32 tensors as float. */
float gf_lora_scaling(const lora_layer *L);

/* ---- the module list: every descendant with its dotted path ------------------------------ */

typedef struct mod_entry {
    gf_module *m;
    char *path;          /* malloc'd */
    bool in_lora;        /* a descendant of a LoRA layer (lora_A, lora_B) */
} mod_entry;

typedef struct mod_list {
    mod_entry *e;
    int n, cap;
    bool oom;
} mod_list;

/* Pre-order list of m's descendants (not m). false with a ctx error when out of memory. */
bool gf_lora_list_modules(gf_ctx *ctx, gf_module *m, mod_list *l);
void gf_lora_list_free(mod_list *l);
/* Keeps only the LoRA layers of a list, in order. */
void gf_lora_keep_layers(mod_list *l);
/* Why the listed module cannot take an adapter, or NULL when it can. */
const char *gf_lora_unsupported(const mod_entry *e);

/* r >= 1, alpha > 0 finite, dropout in [0, 1); else an error naming op and the values. */
gf_status gf_lora_check_settings(gf_ctx *ctx, const char *op, int r, double alpha, double dropout);
/* Replaces targets[0..n) (each checked supported) by new LoRA layers, all or nothing;
 * freeze_base as gf_lora_params. */
gf_status gf_lora_apply_targets(gf_ctx *ctx, gf_module *model, const mod_entry *const *targets, int n,
                                int r, float alpha, float dropout, bool freeze_base, gf_rng *rng);
/* Makes every adapter in model trainable (after freezing everything). */
void gf_lora_adapters_trainable(gf_module *m);
/* Gives LoRA layers' base tensors back the requires_grad they had before (for a rollback). */
void gf_lora_restore_base_grad(gf_module *m);
/* dst += sign * scaling * B A (dst shaped like the layer's weight). */
gf_status gf_lora_add_delta(gf_ctx *ctx, const lora_layer *L, gf_tensor *dst, float sign);

#endif
