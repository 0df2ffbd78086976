/* graft lora: low-rank adapters (Hu et al. 2021) on Linear and Conv2d layers, laid out as
 * Hugging Face PEFT lays them out, so adapter files move between graft and PEFT unchanged. */
#ifndef GRAFT_LORA_H
#define GRAFT_LORA_H

#include "graft/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- what an adapted layer is ------------------------------------------------------------
 * gf_lora_apply replaces each target layer at <path> by a LoRA layer (type "lora.Linear" or
 * "lora.Conv2d") that holds
 *   <path>.weight, <path>.bias   the base layer's tensors, same names, frozen
 *   <path>.lora_A.weight         Linear: [r, in]; Conv2d: [r, in, kh, kw] (a Conv2d(in, r)
 *                                with the base's kernel, stride, padding and dilation)
 *   <path>.lora_B.weight         Linear: [out, r]; Conv2d: [out, r, 1, 1] (a 1x1 Conv2d)
 * and computes  y = base(x) + scaling * B(A(dropout(x))),  scaling = alpha / r.
 * lora_A starts as kaiming_uniform(a = sqrt(5)) and lora_B as zeros (PEFT's init), so a fresh
 * adapter leaves the model's output unchanged. Dropout (probability `dropout`, context RNG)
 * acts on the adapter's input in training mode only.
 *
 * The base layer's tensors are copied into the LoRA layer and the old layer is freed: pointers
 * to the old weight/bias are invalid after gf_lora_apply (build optimizers afterwards). A base
 * weight file still loads by name into an adapted model (the lora_* keys are then reported
 * missing by a non-strict gf_weights_load). */

typedef struct gf_lora_params {
    int r;                        /* rank, >= 1 (PEFT default 8) */
    float alpha;                  /* lora_alpha, > 0 (PEFT default 8); scaling = alpha / r */
    float dropout;                /* lora_dropout in [0, 1) (default 0) */
    const char *const *targets;   /* n_targets glob patterns (fnmatch: '*' also crosses dots)
                                     over dotted module paths, e.g. "fc", "features.*" */
    int n_targets;
    bool freeze_base;             /* true (default, PEFT's bias="none"): every parameter of
                                     the model except the adapters stops requiring a gradient;
                                     false: only the adapted layers' weight/bias are frozen */
} gf_lora_params;

/* r 8, alpha 8, dropout 0, no targets, freeze_base true. */
gf_lora_params gf_lora_default_params(void);

/* Adds adapters to every module whose dotted path matches one of p->targets. Each pattern
 * must match at least one module, and every match must be a Linear or a groups == 1 Conv2d
 * that has no adapter yet; otherwise nothing changes and the error names the pattern (or the
 * path and type of the offending module). rng (NULL: the context RNG) draws lora_A. All or
 * nothing: on error the model is left as it was. */
gf_status gf_lora_apply(gf_ctx *ctx, gf_module *model, const gf_lora_params *p, gf_rng *rng);

/* The targets graft adapts when none are named (graft finetune --lora-rank, the LoRA strategy
 * of gf_compare_run): the dotted path of every Linear and Conv2d of model except the head
 * (head NULL: gf_transfer_default_head), in state_dict order. Returns a new NULL-terminated array of
 * *n paths, exact names usable as p->targets (free with gf_lora_targets_free; *n may be 0), or
 * NULL with a context error (no memory, no head found). */
char **gf_lora_default_targets(gf_ctx *ctx, const gf_module *model, const char *head, int *n);
void gf_lora_targets_free(char **targets);

/* True for a LoRA layer made by gf_lora_apply / gf_lora_load. */
bool gf_lora_is_layer(const gf_module *m);
/* Number of LoRA layers in model's tree. */
int gf_lora_count(const gf_module *model);
/* The rank, alpha, dropout and merged state of one LoRA layer (returns false for another
 * module). Any out pointer may be NULL. */
bool gf_lora_layer_info(const gf_module *layer, int *r, float *alpha, float *dropout,
                        bool *merged);

/* Folds every adapter into its base weight: W += scaling * B A (for Conv2d the composed
 * kernel W[o, i, :, :] += scaling * sum_k B[o, k] A[k, i, :, :]). A merged layer computes
 * only the base layer (so the adapters get no gradient until gf_lora_unmerge). Layers
 * already merged are skipped. gf_lora_unmerge subtracts the same delta (restoring W to within
 * float rounding, ~1e-7 relative). Both return GF_OK or an error (NULL model, no memory). */
gf_status gf_lora_merge(gf_ctx *ctx, gf_module *model);
gf_status gf_lora_unmerge(gf_ctx *ctx, gf_module *model);

/* Replaces every LoRA layer by a plain Linear / Conv2d holding the base weight (merge true:
 * with the adapter folded in, PEFT's merge_and_unload; false: the original weight, PEFT's
 * unload). The new layers keep the base tensors' requires_grad (frozen unless changed). */
gf_status gf_lora_unload(gf_ctx *ctx, gf_module *model, bool merge);

/* ---- adapter files (PEFT's save_pretrained / from_pretrained layout) ----------------------
 * dir/adapter_model.safetensors   base_model.model.<path>.lora_A.weight, ...lora_B.weight (F32)
 * dir/adapter_config.json         {"peft_type": "LORA", "r", "lora_alpha", "lora_dropout",
 *                                  "target_modules": [<path>...], "bias": "none",
 *                                  "fan_in_fan_out": false, "base_model_name_or_path", ...}
 * Only the adapters are saved; all LoRA layers must share r, alpha and dropout (PEFT's single
 * config), else an error names two that differ. */

/* Writes both files into dir (created when missing; its parent must exist), each written
 * atomically. base_model may be NULL (written as null). Error: no LoRA layer, mixed
 * settings, I/O failure (naming the file). Merged layers are saved all the same (their
 * adapters are unchanged by merging). */
gf_status gf_lora_save(gf_ctx *ctx, const gf_module *model, const char *dir,
                       const char *base_model);

/* Reads dir/adapter_config.json and dir/adapter_model.safetensors and puts the adapters into
 * model. A model without adapters gets LoRA layers at exactly the paths named in the file
 * (each must be a Linear or Conv2d, and must match the config's target_modules by PEFT's rule:
 * a list entry t matches path == t or a path ending in "." t; a string is a regular expression
 * the whole path must match), with freeze_base. A model that already has adapters must have
 * them at exactly those paths, unmerged; they take the file's weights, alpha and dropout.
 * Everything is checked before anything changes: peft_type "LORA", r >= 1 agreeing with every
 * tensor, bias "none", no PEFT feature graft lacks (use_dora, use_rslora, rank_pattern,
 * modules_to_save, fan_in_fan_out, ...), no key in the config or the file that is not
 * understood, both lora_A and lora_B for each path, and shapes fitting the layer. Errors name
 * the file, key and both shapes. */
gf_status gf_lora_load(gf_ctx *ctx, gf_module *model, const char *dir);

#ifdef __cplusplus
}
#endif
#endif
