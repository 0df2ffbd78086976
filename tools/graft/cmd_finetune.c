/* graft finetune: pretrained weights loaded by name (renames, strict, dry run with a load plan),
 * a new head when the classes differ, freezing by pattern or by blocks, the BatchNorm policy,
 * optional LoRA adapters, discriminative learning rates, then training and a full or delta
 * weights file. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* Rows of the head's weight in the file (after renaming), or -1 when the file has none. */
static int64_t file_head_rows(gf_ctx *ctx, const char *path, const gf_weights_options *wo,
                              const char *head) {
    gf_st_file *f = gf_st_open(ctx, path);
    if (!f) return -1;
    char want[192], name[512];
    snprintf(want, sizeof want, "%s.weight", head);
    int64_t rows = -1;
    for (int i = 0; i < gf_st_count(f); i++) {
        const gf_st_info *t = gf_st_get(f, i);
        if (gf_weights_map_key(ctx, wo, t->name, name, sizeof name) != GF_OK) break;
        if (strcmp(name, want) == 0 && t->ndim == 2) rows = t->shape[0];
    }
    gf_st_close(f);
    return rows;
}

/* Output size of the Linear at path. */
static int64_t linear_out(const gf_module *m, const char *path) {
    char w[192];
    snprintf(w, sizeof w, "%s.weight", path);
    const gf_tensor *t = gf_module_tensor(NULL, m, w);
    return t && t->ndim == 2 ? t->shape[0] : -1;
}

/* LoRA targets when none are given: every Linear and Conv2d (groups 1) except the head. */
static int default_lora_targets(const gf_module *m, const char *head, char **out, int cap) {
    gf_named_tensors *ps = gf_module_named_tensors(NULL, m, GF_STATE_PARAMS);
    int n = 0;
    for (int i = 0; ps && i < ps->n && n < cap; i++) {
        const char *name = ps->items[i].name;
        size_t len = strlen(name);
        if (len < 8 || strcmp(name + len - 7, ".weight") != 0) continue;
        char path[192];
        snprintf(path, sizeof path, "%.*s", (int)(len - 7), name);
        if (strcmp(path, head) == 0) continue;
        const gf_module *c = gf_module_child(m, path);
        const char *t = c ? gf_module_type(c) : "";
        const gf_tensor *w = ps->items[i].tensor;
        bool conv = strcmp(t, "Conv2d") == 0 && w->ndim == 4;
        if (!conv && strcmp(t, "Linear") != 0) continue;
        out[n] = malloc(strlen(path) + 1);
        if (out[n]) strcpy(out[n++], path);
    }
    gf_named_tensors_free(ps);
    return n;
}

static const char *names_equal_note(const cli_meta *meta, const cli_data *d) {
    if (!meta->class_names || meta->n_classes != d->n_classes) return NULL;
    for (int k = 0; k < d->n_classes; k++)
        if (strcmp(meta->class_names[k], d->class_names[k]) != 0) return "different class names";
    return "";
}

typedef struct ft_state {
    gf_weights_options wo;
    gf_key_rule rules[CLI_MAX_LIST];
    bool head_replaced;
    char head_note[256];
    int lora_layers;
    int n_frozen_tensors;
} ft_state;

int cmd_finetune(cli_opts *o) {
    const char *cmd = o->cmd;
    if (!o->from) return cli_usage_error(cmd, "--from is required (the pretrained weights)");
    int rc = cli_check_input(cmd, "--from", o->from);
    if (rc != CLI_CONTINUE || (rc = cli_check_train_paths(o)) != CLI_CONTINUE) return rc;
    if (o->delta && !o->out) return cli_usage_error(cmd, "--delta needs --out");
    if (o->lora_out && (rc = cli_check_output_dir(cmd, "--lora-out", o->lora_out, cli_lora_files)) != CLI_CONTINUE)
        return rc;
    if ((o->lora_out || o->lora_targets || o->lora_alpha > 0 || o->lora_dropout > 0) && !o->lora_rank)
        return cli_usage_error(cmd, "the --lora-* options need --lora-rank");
    if ((rc = cli_check_model_arg(cmd, "--model", o->model)) != CLI_CONTINUE) return rc;
    gf_ctx *ctx = cli_context(o);
    if (!ctx) return CLI_FAILED;
    ft_state fs;
    memset(&fs, 0, sizeof fs);
    fs.wo = gf_weights_default_options();
    fs.wo.strict = o->strict;
    fs.wo.strip_prefix = o->strip_prefix;
    for (int i = 0; i < o->n_rename; i++) fs.rules[i] = (gf_key_rule){o->rename[i], NULL};
    fs.wo.rules = fs.rules;
    fs.wo.n_rules = o->n_rename;
    cli_meta meta;
    cli_data d;
    cli_model cm = {0};
    cli_fit_out fo = {0};
    cli_eval ev = {0};
    gf_tl_plan *plan = NULL, *plan2 = NULL;
    char *lora_targets[64] = {0};
    int n_lora_targets = 0;
    rc = cli_meta_open(ctx, o, o->from, &meta);
    if (rc != CLI_CONTINUE) goto out_ctx;
    rc = cli_data_load(ctx, o, &d);
    if (rc != CLI_CONTINUE) goto out_meta;
    rc = CLI_FAILED;
    if (!cli_meta_fits_samples(cmd, o->from, &meta, &d)) goto out_data;

    /* the model, with the file's head size so the head loads too */
    const char *arg = o->model;
    int64_t k_file = -1;
    if (arg && cli_is_zoo(arg)) k_file = file_head_rows(ctx, o->from, &fs.wo, gf_zoo_head(arg));
    else if (!arg && meta.model && cli_is_zoo(meta.model))
        k_file = file_head_rows(ctx, o->from, &fs.wo, gf_zoo_head(meta.model));
    gf_ctx_clear_error(ctx);
    bool zoo = (arg && cli_is_zoo(arg)) || (!arg && meta.model && cli_is_zoo(meta.model));
    int n_build = !zoo ? -1 : k_file > 0 ? (int)k_file : d.n_classes; /* a spec keeps its own */
    rc = cli_model_build(ctx, o, arg, &meta, d.ndim, d.shape, n_build, NULL, &cm);
    if (rc != CLI_CONTINUE) goto out_data;
    rc = CLI_FAILED;
    if (strcmp(cm.name, "spec") == 0) {
        int64_t kf = file_head_rows(ctx, o->from, &fs.wo, cm.head);
        gf_ctx_clear_error(ctx);
        if (kf > 0 && kf != linear_out(cm.m, cm.head) &&
            gf_tl_replace_head(ctx, cm.m, cm.head, kf, NULL) != GF_OK) {
            cli_fail_ctx(cmd, ctx);
            goto out_model;
        }
    }

    /* load (strict and dry-run as asked); the plan records what happened */
    gf_weights_options lw = fs.wo;
    lw.dry_run = o->dry_run;
    gf_status st = gf_tl_load(ctx, cm.m, o->from, &lw, &plan);
    if (st != GF_OK) {
        cli_fail(cmd, "loading %s: %s", o->from, gf_ctx_error(ctx));
        if (plan) gf_tl_plan_print(plan, stderr, false);
        goto out_model;
    }
    if (plan->report->loaded == 0) {
        cli_fail(cmd, "no tensor of %s matches the model's names (%d file keys; see --dry-run, "
                      "--strip-prefix, --rename)", o->from,
                 plan->report->unexpected + plan->report->mismatched);
        gf_tl_plan_print(plan, stderr, false);
        goto out_model;
    }

    /* the head */
    int64_t k_model = linear_out(cm.m, cm.head);
    bool head_loaded = false;
    for (int i = 0; i < plan->report->n; i++) {
        const gf_key_report *kr = &plan->report->keys[i];
        size_t hl = strlen(cm.head);
        if (strncmp(kr->name, cm.head, hl) == 0 && kr->name[hl] == '.' && kr->status == GF_KEY_LOADED)
            head_loaded = true;
    }
    bool replace;
    const char *why = names_equal_note(&meta, &d);
    if (strcmp(o->head, "keep") == 0) {
        if (k_model != d.n_classes) {
            rc = cli_usage_error(cmd, "--head keep: the head gives %lld outputs but %s has %d "
                                      "classes", (long long)k_model, d.spec, d.n_classes);
            goto out_model;
        }
        replace = false;
    } else if (strcmp(o->head, "new") == 0) {
        replace = true;
        why = "--head new";
    } else if (strcmp(o->head, "auto") == 0) {
        replace = k_model != d.n_classes || !head_loaded || (why && why[0]);
        if (k_model != d.n_classes) why = "the classes differ in number";
        else if (!head_loaded) why = "the file has no head for it";
        else if (!why) why = "";
    } else {
        if (atoi(o->head) != d.n_classes) {
            rc = cli_usage_error(cmd, "--head %s: %s has %d classes", o->head, d.spec,
                                 d.n_classes);
            goto out_model;
        }
        replace = true;
        why = "--head N";
    }
    if (replace) {
        gf_rng rng;
        gf_rng_seed(&rng, o->seed ^ 0x68656164ULL);
        if (gf_tl_replace_head(ctx, cm.m, cm.head, d.n_classes, &rng) != GF_OK) {
            cli_fail_ctx(cmd, ctx);
            goto out_model;
        }
        fs.head_replaced = true;
        snprintf(fs.head_note, sizeof fs.head_note, "new head %s: %lld -> %d outputs (%s)",
                 cm.head, (long long)k_model, d.n_classes, why && why[0] ? why : "replaced");
        cli_log(o, "graft finetune: %s\n", fs.head_note);
    }

    /* freezing, BatchNorm, LoRA */
    if (o->train_last >= 0 && gf_tl_freeze_all_but(ctx, cm.m, o->train_last) < 0) {
        rc = cli_usage_error(cmd, "--train-last: %s", gf_ctx_error(ctx));
        goto out_model;
    }
    for (int i = 0; i < o->n_freeze; i++)
        if (gf_tl_freeze(ctx, cm.m, o->freeze[i]) < 0) {
            rc = cli_usage_error(cmd, "--freeze: %s", gf_ctx_error(ctx));
            goto out_model;
        }
    for (int i = 0; i < o->n_unfreeze; i++)
        if (gf_tl_unfreeze(ctx, cm.m, o->unfreeze[i]) < 0) {
            rc = cli_usage_error(cmd, "--unfreeze: %s", gf_ctx_error(ctx));
            goto out_model;
        }
    {
        gf_tl_bn_policy pol = GF_TL_BN_DEFAULT;
        const char *scope = NULL;
        char name[32] = "freeze-stats";
        if (o->bn_policy) {
            const char *colon = strchr(o->bn_policy, ':');
            snprintf(name, sizeof name, "%.*s",
                     (int)(colon ? (size_t)(colon - o->bn_policy) : strlen(o->bn_policy)),
                     o->bn_policy);
            scope = colon ? colon + 1 : NULL;
        }
        gf_tl_bn_policy_parse(name, &pol);
        /* with a scope, the layers outside it keep the default policy */
        if ((scope && gf_tl_set_bn_policy(ctx, cm.m, GF_TL_BN_DEFAULT, NULL) < 0) ||
            gf_tl_set_bn_policy(ctx, cm.m, pol, scope) < 0) {
            rc = cli_usage_error(cmd, "--bn-policy: %s", gf_ctx_error(ctx));
            goto out_model;
        }
    }
    if (o->lora_rank) {
        if (o->lora_targets) {
            char *copy = strdup(o->lora_targets), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t && n_lora_targets < 64;
                 t = strtok_r(NULL, ",", &save))
                lora_targets[n_lora_targets++] = strdup(t);
            free(copy);
        } else {
            n_lora_targets = default_lora_targets(cm.m, cm.head, lora_targets, 64);
        }
        if (n_lora_targets == 0) {
            rc = cli_usage_error(cmd, "--lora-rank: the model has no Linear or Conv2d outside "
                                      "the head to adapt");
            goto out_model;
        }
        gf_lora_params lp = gf_lora_default_params();
        lp.r = o->lora_rank;
        lp.alpha = (float)(o->lora_alpha > 0 ? o->lora_alpha : 2.0 * o->lora_rank);
        lp.dropout = (float)o->lora_dropout;
        lp.targets = (const char *const *)lora_targets;
        lp.n_targets = n_lora_targets;
        lp.freeze_base = true;
        gf_rng rng;
        gf_rng_seed(&rng, o->seed ^ 0x6c6f7261ULL);
        if (gf_lora_apply(ctx, cm.m, &lp, &rng) != GF_OK) {
            rc = cli_usage_error(cmd, "--lora-targets: %s", gf_ctx_error(ctx));
            goto out_model;
        }
        char pat[160];
        snprintf(pat, sizeof pat, "%s.*", cm.head);
        gf_tl_unfreeze(ctx, cm.m, pat); /* the head trains with the adapters */
        fs.lora_layers = gf_lora_count(cm.m);
    }
    if (gf_ctx_status(ctx) != GF_OK) {
        rc = cli_fail_ctx(cmd, ctx);
        goto out_model;
    }

    /* the plan of what will happen, as the model now stands */
    gf_weights_options pw = fs.wo;
    pw.strict = false;
    if (gf_tl_plan_load(ctx, cm.m, o->from, &pw, &plan2) != GF_OK) {
        rc = cli_fail_ctx(cmd, ctx);
        goto out_model;
    }
    if (o->dry_run) {
        if (o->json) {
            char *js = gf_tl_plan_json(ctx, plan2);
            cJSON *root = cJSON_CreateObject();
            cJSON_AddStringToObject(root, "command", "finetune");
            cJSON_AddBoolToObject(root, "dry_run", true);
            cJSON_AddStringToObject(root, "from", o->from);
            cJSON_AddStringToObject(root, "model", cm.name);
            cJSON_AddBoolToObject(root, "head_replaced", fs.head_replaced);
            cJSON_AddItemToObject(root, "plan", js ? cJSON_Parse(js) : cJSON_CreateNull());
            free(js);
            rc = cli_json_print(root);
        } else {
            if (fs.head_note[0]) printf("%s\n", fs.head_note);
            if (fs.lora_layers) printf("LoRA: %d layers adapted, rank %d\n", fs.lora_layers, o->lora_rank);
            gf_tl_plan_print(plan2, stdout, true);
            printf("dry run: nothing was trained or written\n");
            rc = CLI_OK;
        }
        goto out_model;
    }
    if (!o->quiet) gf_tl_plan_print(plan2, stderr, false);

    /* train */
    char desc[1024];
    cli_data_describe(&d, desc, sizeof desc);
    cli_log(o, "graft finetune: %s from %s on %s; %s, batch %lld, %d threads, seed %llu\n",
            cm.spec_path ? cm.spec_path : cm.name, o->from, desc, gf_optim_kind_name(o->optim),
            (long long)o->batch, gf_ctx_threads(ctx), (unsigned long long)o->seed);
    cli_fit_setup setup = {.loss = gf_loss_default(GF_LOSS_CROSS_ENTROPY), .head = cm.head,
                           .trunk_factor = o->lr_trunk_factor};
    setup.loss.label_smoothing = (float)o->label_smoothing;
    rc = cli_fit(ctx, o, cm.m, &d, &setup, &fo);
    if (rc != CLI_CONTINUE) goto out_model;
    const char *part;
    gf_ds *eval_ds = cli_final_part(&d, &part);
    rc = fo.interrupted ? CLI_CONTINUE /* leave quickly */
                        : cli_evaluate(ctx, cmd, cm.m, eval_ds, d.eval_tf, o->batch, &ev);
    if (rc != CLI_CONTINUE) goto out_model;

    /* write: adapters (PEFT layout), then merged weights or a delta */
    if (fs.lora_layers && o->lora_out && !fo.interrupted &&
        gf_lora_save(ctx, cm.m, o->lora_out, cm.name) != GF_OK) {
        rc = cli_fail(cmd, "--lora-out %s: %s", o->lora_out, gf_ctx_error(ctx));
        goto out_model;
    }
    if (fs.lora_layers && gf_lora_unload(ctx, cm.m, true) != GF_OK) {
        rc = cli_fail_ctx(cmd, ctx);
        goto out_model;
    }
    const char *written = NULL;
    int n_delta = 0;
    if (o->out && (!fo.interrupted || fo.res.steps > 0)) { /* Ctrl-C: the last step's weights */
        if (fo.interrupted)
            cli_log(o, "graft finetune: interrupted after %lld steps (%d full epochs); writing the "
                       "weights of the last step to %s\n", (long long)fo.res.steps,
                    fo.res.epochs_run, o->out);
        cJSON *map = cJSON_CreateObject();
        if (o->strip_prefix) cJSON_AddStringToObject(map, "strip_prefix", o->strip_prefix);
        cJSON *ren = cJSON_AddArrayToObject(map, "rename");
        for (int i = 0; i < o->n_rename; i++) cJSON_AddItemToArray(ren, cJSON_CreateString(o->rename[i]));
        char *map_text = cJSON_PrintUnformatted(map);
        cJSON_Delete(map);
        const char *extra[] = {"graft.from", o->from, "graft.base", o->from, "graft.base_map",
                               map_text ? map_text : "{}"};
        if (o->delta) {
            if (gf_tl_delta_save(ctx, cm.m, o->from, &fs.wo, o->out, &n_delta) != GF_OK)
                rc = cli_fail(cmd, "writing the delta %s: %s", o->out, gf_ctx_error(ctx));
            else
                rc = cli_add_metadata(ctx, o, &cm, &d, o->out, extra, 3);
        } else {
            rc = cli_save_weights(ctx, o, &cm, &d, o->out, extra, 1);
        }
        cJSON_free(map_text);
        if (rc != CLI_CONTINUE) goto out_model;
        written = o->out;
    }
    if (o->report) {
        rc = cli_report_run(ctx, o, cm.spec_path ? cm.spec_path : cm.name, &d, &fo, part, &ev,
                            written);
        if (rc != CLI_CONTINUE) goto out_model;
    }
    if (o->json) {
        cJSON *root = cli_run_json(o, cm.name, &d, &fo, part, &ev, written);
        cJSON *ft = cJSON_AddObjectToObject(root, "finetune");
        cJSON_AddStringToObject(ft, "from", o->from);
        cJSON_AddBoolToObject(ft, "head_replaced", fs.head_replaced);
        cJSON_AddStringToObject(ft, "head", cm.head);
        cJSON_AddNumberToObject(ft, "loaded", plan->report->loaded);
        cJSON_AddNumberToObject(ft, "renamed", plan->report->renamed);
        cJSON_AddNumberToObject(ft, "lora_layers", fs.lora_layers);
        cJSON_AddBoolToObject(ft, "delta", o->delta);
        if (o->delta) cJSON_AddNumberToObject(ft, "delta_tensors", n_delta);
        char *js = gf_tl_plan_json(ctx, plan2);
        cJSON_AddItemToObject(ft, "plan", js ? cJSON_Parse(js) : cJSON_CreateNull());
        free(js);
        rc = cli_json_print(root);
    } else {
        if (fs.head_note[0]) printf("head      %s\n", fs.head_note);
        printf("loaded    %d tensors from %s (%d renamed)\n", plan->report->loaded, o->from,
               plan->report->renamed);
        if (fs.lora_layers)
            printf("LoRA      %d layers, rank %d (merged into the saved weights)\n", fs.lora_layers,
                   o->lora_rank);
        if (o->delta && written) printf("delta     %d tensors differ from %s\n", n_delta, o->from);
        cli_print_run(o, cm.spec_path ? cm.spec_path : cm.name, &d, &fo, part, &ev, written);
        rc = CLI_OK;
    }
    if (fo.interrupted) rc = CLI_FAILED;
out_model:
    for (int i = 0; i < n_lora_targets; i++) free(lora_targets[i]);
    gf_tl_plan_free(plan);
    gf_tl_plan_free(plan2);
    cli_eval_free(&ev);
    cli_fit_out_free(&fo);
    cli_model_free(&cm);
out_data:
    cli_data_free(&d);
out_meta:
    cli_meta_free(&meta);
out_ctx:
    gf_ctx_free(ctx);
    return rc;
}
