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

/* The head's outputs the data needs: its classes, or one for a regression target. */
static int n_outputs(const cli_data *d) { return d->regression ? 1 : d->n_classes; }

static const char *names_equal_note(const gf_bundle_info *meta, const cli_data *d) {
    if (!meta->class_names || meta->n_classes != d->n_classes) return NULL;
    for (int k = 0; k < d->n_classes; k++)
        if (strcmp(meta->class_names[k], d->class_names[k]) != 0) return "different class names";
    return "";
}

/* One fine-tuning run: what the steps below share. */
typedef struct ft_run {
    gf_ctx *ctx;
    const cli_opts *o;
    gf_weights_options wo;    /* the file's keys renamed as asked */
    gf_weights_key_rule rules[CLI_MAX_LIST];
    gf_bundle_info meta;      /* the pretrained file's description */
    cli_data d;
    cli_model cm;
    gf_transfer_plan *plan, *plan2; /* the load as done, and as the model finally stands */
    bool head_replaced;
    char head_note[256];
    int64_t head_from;        /* the head's outputs as built (the file's size) */
    int lora_layers;
    char *lora_targets[64], **auto_targets;
    int n_lora_targets;
    cli_fit_out fo;
    cli_eval ev;
    int n_delta;
} ft_run;

/* The model, with the file's head size so the head loads too. */
static int build_model(ft_run *r) {
    gf_ctx *ctx = r->ctx;
    const cli_opts *o = r->o;
    const char *arg = o->model;
    const char *zoo = arg && cli_is_zoo(arg) ? arg
                      : !arg && r->meta.model && cli_is_zoo(r->meta.model) ? r->meta.model
                                                                           : NULL;
    int64_t k_file = zoo ? file_head_rows(ctx, o->from, &r->wo, gf_zoo_head(zoo)) : -1;
    gf_ctx_clear_error(ctx);
    int n_build = !zoo ? -1 : k_file > 0 ? (int)k_file : n_outputs(&r->d); /* a spec keeps its own */
    int rc = cli_model_build(ctx, o, arg, &r->meta, &r->d, n_build, &r->cm);
    if (rc != CLI_CONTINUE || strcmp(r->cm.b->info.model, "spec") != 0) return rc;
    gf_bundle *b = r->cm.b;
    int64_t kf = file_head_rows(ctx, o->from, &r->wo, b->head);
    gf_ctx_clear_error(ctx);
    if (kf > 0 && kf != linear_out(b->model, b->head) &&
        gf_transfer_replace_head(ctx, b->model, b->head, kf, NULL) != GF_OK)
        return cli_fail_ctx(o->cmd, ctx);
    return CLI_CONTINUE;
}

/* With --in-channels adapt the data's samples may differ from the file's in channels only. */
static bool samples_fit(const ft_run *r) {
    const gf_bundle_info *m = &r->meta;
    const cli_data *d = &r->d;
    bool channels_only = r->o->in_channels == GF_TRANSFER_IN_CHANNELS_ADAPT && m->in_ndim == 3 &&
                         d->ndim == 3 && m->in_shape[1] == d->shape[1] && m->in_shape[2] == d->shape[2];
    return channels_only || cli_meta_fits_samples(r->o->cmd, r->o->from, m, d);
}

/* Loads the file (strict and dry-run as asked; the first convolution adapted to the data's
 * channels per --in-channels); the plan records what happened. */
static int load_pretrained(ft_run *r) {
    gf_transfer_load_params lp = {r->wo, r->o->in_channels};
    lp.weights.dry_run = r->o->dry_run;
    if (gf_transfer_load_with(r->ctx, r->cm.b->model, r->o->from, &lp, &r->plan) != GF_OK) {
        cli_fail(r->o->cmd, "loading %s: %s", r->o->from, gf_ctx_error(r->ctx));
        if (r->plan) gf_transfer_plan_print(r->plan, stderr, false);
        return CLI_FAILED;
    }
    if (r->plan->report->loaded == 0) {
        cli_fail(r->o->cmd, "no tensor of %s matches the model's names (%d file keys; see "
                            "--dry-run, --strip-prefix, --rename)", r->o->from,
                 r->plan->report->unexpected + r->plan->report->mismatched);
        gf_transfer_plan_print(r->plan, stderr, false);
        return CLI_FAILED;
    }
    if (r->plan->in_from && !r->plan->in_adapted)
        return cli_fail(r->o->cmd, "%s: %s; the data has %lld channels (--in-channels adapt "
                                   "adapts it, --grayscale makes images grey)", r->o->from,
                        r->plan->in_note, (long long)r->plan->in_to);
    if (r->plan->in_note[0]) cli_log(r->o, "graft finetune: %s\n", r->plan->in_note);
    return CLI_CONTINUE;
}

/* --head: a new head when asked, or (auto) when the classes differ from the file's. */
static int choose_head(ft_run *r) {
    const cli_opts *o = r->o;
    const cli_data *d = &r->d;
    gf_bundle *b = r->cm.b;
    int64_t k_model = linear_out(b->model, b->head);
    bool head_loaded = false;
    for (int i = 0; i < r->plan->report->n; i++) {
        const gf_weights_key_report *kr = &r->plan->report->keys[i];
        size_t hl = strlen(b->head);
        if (strncmp(kr->name, b->head, hl) == 0 && kr->name[hl] == '.' && kr->status == GF_WEIGHTS_KEY_LOADED)
            head_loaded = true;
    }
    bool replace;
    const int k = n_outputs(d);
    const char *why = d->regression ? NULL : names_equal_note(&r->meta, d);
    if (strcmp(o->head, "keep") == 0) {
        if (k_model != k)
            return cli_usage_error(o->cmd, "--head keep: the head gives %lld outputs but %s %s %d",
                                   (long long)k_model, d->spec,
                                   d->regression ? "has a regression target: outputs" : "has classes:",
                                   k);
        replace = false;
    } else if (strcmp(o->head, "new") == 0) {
        replace = true;
        why = "--head new";
    } else if (strcmp(o->head, "auto") == 0) {
        /* a regression target is in new units: its head always starts new */
        replace = d->regression || k_model != k || !head_loaded || (why && why[0]);
        if (d->regression) why = "a regression target";
        else if (k_model != k) why = "the classes differ in number";
        else if (!head_loaded) why = "the file has no head for it";
        else if (!why) why = "";
    } else {
        if (atoi(o->head) != k)
            return cli_usage_error(o->cmd, "--head %s: %s %s %d", o->head, d->spec,
                                   d->regression ? "has a regression target: outputs" : "has classes:",
                                   k);
        replace = true;
        why = "--head N";
    }
    r->head_from = k_model;
    if (!replace) return CLI_CONTINUE;
    gf_rng rng;
    gf_rng_seed(&rng, o->seed ^ 0x68656164ULL);
    if (gf_transfer_replace_head(r->ctx, b->model, b->head, k, &rng) != GF_OK)
        return cli_fail_ctx(o->cmd, r->ctx);
    r->head_replaced = true;
    snprintf(r->head_note, sizeof r->head_note, "new head %s: %lld -> %d outputs (%s)", b->head,
             (long long)k_model, k, why && why[0] ? why : "replaced");
    return CLI_CONTINUE;
}

/* --train-last, --freeze, --unfreeze, --bn-policy. */
static int freeze(ft_run *r) {
    gf_ctx *ctx = r->ctx;
    const cli_opts *o = r->o;
    gf_module *m = r->cm.b->model;
    int rc = cli_apply_freezing(ctx, o, m);
    if (rc != CLI_CONTINUE) return rc;
    gf_transfer_bn_policy pol = GF_TRANSFER_BN_DEFAULT;
    const char *scope = NULL;
    char name[32] = "freeze-stats";
    if (o->bn_policy) {
        const char *colon = strchr(o->bn_policy, ':');
        snprintf(name, sizeof name, "%.*s",
                 (int)(colon ? (size_t)(colon - o->bn_policy) : strlen(o->bn_policy)), o->bn_policy);
        scope = colon ? colon + 1 : NULL;
    }
    gf_transfer_bn_policy_parse(name, &pol);
    /* with a scope, the layers outside it keep the default policy */
    if ((scope && gf_transfer_set_bn_policy(ctx, m, GF_TRANSFER_BN_DEFAULT, NULL) < 0) ||
        gf_transfer_set_bn_policy(ctx, m, pol, scope) < 0)
        return cli_usage_error(o->cmd, "--bn-policy: %s", gf_ctx_error(ctx));
    return CLI_CONTINUE;
}

/* --lora-rank: adapters on --lora-targets, or on the library's default targets. */
static int add_lora(ft_run *r) {
    gf_ctx *ctx = r->ctx;
    const cli_opts *o = r->o;
    gf_bundle *b = r->cm.b;
    if (o->lora_targets) {
        char *copy = strdup(o->lora_targets), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t && r->n_lora_targets < 64;
             t = strtok_r(NULL, ",", &save))
            r->lora_targets[r->n_lora_targets++] = strdup(t);
        free(copy);
    } else if (!(r->auto_targets = gf_lora_default_targets(ctx, b->model, b->head,
                                                           &r->n_lora_targets))) {
        return cli_fail_ctx(o->cmd, ctx);
    }
    if (r->n_lora_targets == 0)
        return cli_usage_error(o->cmd, "--lora-rank: the model has no Linear or Conv2d outside "
                                       "the head to adapt");
    gf_lora_params lp = gf_lora_default_params();
    lp.r = o->lora_rank;
    lp.alpha = (float)(o->lora_alpha > 0 ? o->lora_alpha : 2.0 * o->lora_rank);
    lp.dropout = (float)o->lora_dropout;
    lp.targets = (const char *const *)(r->auto_targets ? r->auto_targets : r->lora_targets);
    lp.n_targets = r->n_lora_targets;
    lp.freeze_base = true;
    gf_rng rng;
    gf_rng_seed(&rng, o->seed ^ 0x6c6f7261ULL);
    if (gf_lora_apply(ctx, b->model, &lp, &rng) != GF_OK)
        return cli_usage_error(o->cmd, "--lora-targets: %s", gf_ctx_error(ctx));
    char pat[160];
    snprintf(pat, sizeof pat, "%s.*", b->head);
    gf_transfer_unfreeze(ctx, b->model, pat); /* the head trains with the adapters */
    r->lora_layers = gf_lora_count(b->model);
    return CLI_CONTINUE;
}

/* What the run did with each tensor of the model: the load's status, except that a replaced
 * head is new whatever the file held. */
typedef struct ft_counts {
    int loaded, head, missing, mismatched, unused, renamed, total;
} ft_counts;

static bool in_head(const ft_run *r, const char *name) {
    const size_t hl = strlen(r->cm.b->head);
    return r->head_replaced && strncmp(name, r->cm.b->head, hl) == 0 && name[hl] == '.';
}

static ft_counts count_keys(const ft_run *r) {
    ft_counts c = {0, 0, 0, 0, 0, r->plan->report->renamed, 0};
    const gf_weights_report *rep = r->plan->report;
    for (int i = 0; i < rep->n; i++) {
        const gf_weights_key_report *k = &rep->keys[i];
        c.total += k->status != GF_WEIGHTS_KEY_UNEXPECTED;
        if (k->status == GF_WEIGHTS_KEY_UNEXPECTED) c.unused++;
        else if (in_head(r, k->name)) c.head++;
        else if (k->status == GF_WEIGHTS_KEY_MISSING) c.missing++;
        else if (k->status == GF_WEIGHTS_KEY_LOADED) c.loaded++;
        else c.mismatched++;
    }
    return c;
}

/* The top-level modules that hold frozen parameters ("conv1, layer1, layer2"). */
static void frozen_parts(const gf_transfer_plan *p, char *buf, size_t cap) {
    size_t at = 0;
    int listed = 0, more = 0;
    buf[0] = '\0';
    char last[96] = "";
    for (int i = 0; i < p->report->n; i++) {
        if (p->roles[i] != GF_TRANSFER_ROLE_FROZEN) continue;
        const char *name = p->report->keys[i].name, *dot = strchr(name, '.');
        char top[96];
        snprintf(top, sizeof top, "%.*s", (int)(dot ? (size_t)(dot - name) : strlen(name)), name);
        if (strcmp(top, last) == 0) continue;
        snprintf(last, sizeof last, "%s", top);
        if (listed == 6 || at >= cap) {
            more++;
            continue;
        }
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", listed ? ", " : "", top);
        listed++;
    }
    if (more && at < cap) snprintf(buf + at, cap - at, " and %d more", more);
}

/* The first convolution's input channels: the data's against the file's. */
static void channel_note(const ft_run *r, char *buf, size_t cap) {
    buf[0] = '\0';
    if (r->plan->in_adapted) {
        snprintf(buf, cap, "; input channels: %s", r->plan->in_note);
        return;
    }
    const gf_weights_report *rep = r->plan->report;
    for (int i = 0; i < rep->n; i++) {
        const gf_weights_key_report *k = &rep->keys[i];
        if (k->model_ndim != 4) continue;
        if (k->file_ndim != 4)
            snprintf(buf, cap, "; input channels: %lld, the first convolution %s not in the file",
                     (long long)k->model_dims[1], k->name);
        else if (k->file_dims[1] == k->model_dims[1])
            snprintf(buf, cap, "; input channels: %lld, as in the file", (long long)k->model_dims[1]);
        else
            snprintf(buf, cap, "; input channels: the data has %lld, the file's %s takes %lld, so "
                     "it starts new (see --grayscale and --in-channels)", (long long)k->model_dims[1], k->name,
                     (long long)k->file_dims[1]);
        return;
    }
}

/* "2 new (head fc)", "5 new (head fc; 3 not in the file)". */
static void new_note(const ft_run *r, const ft_counts *c, char *buf, size_t cap) {
    if (c->head && c->missing)
        snprintf(buf, cap, "%d new (head %s; %d not in the file)", c->head + c->missing,
                 r->cm.b->head, c->missing);
    else if (c->head)
        snprintf(buf, cap, "%d new (head %s)", c->head, r->cm.b->head);
    else
        snprintf(buf, cap, "%d new (not in the file)", c->missing);
}

/* One paragraph on stderr: what came from the file, the head, what trains. */
static void print_summary(const ft_run *r) {
    const ft_counts c = count_keys(r);
    const gf_transfer_plan *p2 = r->plan2;
    char fresh[192], head[320], frozen[256], bn[128], ch[320];
    new_note(r, &c, fresh, sizeof fresh);
    const char *why = strchr(r->head_note, '(');
    const char *unit = r->d.regression ? "output" : "classes";
    if (r->head_replaced) /* the note's reason, "(the classes differ in number)" */
        snprintf(head, sizeof head, "head %s: %lld -> %d %s, new %s", r->cm.b->head,
                 (long long)r->head_from, n_outputs(&r->d), unit, why ? why : "");
    else
        snprintf(head, sizeof head, "head %s: %d %s, from the file", r->cm.b->head,
                 n_outputs(&r->d), unit);
    frozen_parts(p2, frozen, sizeof frozen);
    if (p2->bn_layers == 0) bn[0] = '\0';
    else if (!p2->bn_stats_move)
        snprintf(bn, sizeof bn, "; BatchNorm statistics fixed (%d layers)", p2->bn_layers);
    else
        snprintf(bn, sizeof bn, "; BatchNorm statistics move in %d of %d layers", p2->bn_moving,
                 p2->bn_layers);
    channel_note(r, ch, sizeof ch);
    cli_log(r->o, "graft %s: from %s: %d of %d tensors loaded (%d renamed), %s, %d of "
                  "another shape (left new), %d file keys unused; %s; training %lld of %lld "
                  "parameters, frozen: %s%s%s%s (-v lists every tensor)\n",
            r->o->cmd, r->o->from, c.loaded, c.total, c.renamed, fresh, c.mismatched, c.unused, head,
            (long long)p2->params_trainable, (long long)p2->params_total,
            frozen[0] ? frozen : "nothing", bn, ch,
            r->lora_layers ? "; LoRA adapters on the frozen layers" : "");
}

/* -v: every tensor of the model as the run leaves it, on stderr. */
static void print_tensors(const ft_run *r) {
    const gf_transfer_plan *p2 = r->plan2;
    const gf_weights_report *rep = r->plan->report;
    fprintf(stderr, "tensors of the model (status of the load from %s, role in training):\n",
            r->o->from);
    for (int i = 0; i < p2->report->n; i++) {
        const gf_weights_key_report *k = &p2->report->keys[i];
        if (k->status == GF_WEIGHTS_KEY_UNEXPECTED) continue;
        const char *status = "new";
        for (int j = 0; j < rep->n && !in_head(r, k->name); j++)
            if (strcmp(rep->keys[j].name, k->name) == 0) {
                status = rep->keys[j].status == GF_WEIGHTS_KEY_LOADED    ? "loaded"
                         : rep->keys[j].status == GF_WEIGHTS_KEY_MISSING ? "new"
                                                                 : "mismatched";
                break;
            }
        fprintf(stderr, "  %-10s %-11s %s  %s\n", status, gf_transfer_role_name(p2->roles[i]), k->name,
                k->model_shape);
    }
    for (int j = 0; j < rep->n; j++)
        if (rep->keys[j].status == GF_WEIGHTS_KEY_UNEXPECTED)
            fprintf(stderr, "  %-10s %-11s %s  %s (in the file only)\n", "unused", "-",
                    rep->keys[j].file_name ? rep->keys[j].file_name : rep->keys[j].name,
                    rep->keys[j].file_shape);
}

/* --dry-run: the plan and the head, nothing trained. */
static int print_dry_run(ft_run *r) {
    const cli_opts *o = r->o;
    if (!o->json) {
        if (r->head_note[0]) printf("%s\n", r->head_note);
        if (r->lora_layers) printf("LoRA: %d layers adapted, rank %d\n", r->lora_layers, o->lora_rank);
        gf_transfer_plan_print(r->plan2, stdout, true);
        printf("dry run: nothing was trained or written\n");
        return CLI_OK;
    }
    char *js = gf_transfer_plan_json(r->ctx, r->plan2);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "command", "finetune");
    cJSON_AddBoolToObject(root, "dry_run", true);
    cJSON_AddStringToObject(root, "from", o->from);
    cJSON_AddStringToObject(root, "model", r->cm.b->info.model);
    cJSON_AddBoolToObject(root, "head_replaced", r->head_replaced);
    cJSON_AddItemToObject(root, "plan", js ? cJSON_Parse(js) : cJSON_CreateNull());
    free(js);
    return cli_json_print(root);
}

/* Adapters (PEFT layout), then the merged weights or a delta; *written: the weights file. */
static int write_weights(ft_run *r, const char **written) {
    gf_ctx *ctx = r->ctx;
    const cli_opts *o = r->o;
    gf_bundle *b = r->cm.b;
    *written = NULL;
    if (r->lora_layers && o->lora_out && !r->fo.interrupted &&
        gf_lora_save(ctx, b->model, o->lora_out, b->info.model) != GF_OK)
        return cli_fail(o->cmd, "--lora-out %s: %s", o->lora_out, gf_ctx_error(ctx));
    if (r->lora_layers && gf_lora_unload(ctx, b->model, true) != GF_OK)
        return cli_fail_ctx(o->cmd, ctx);
    /* Ctrl-C keeps what was learned: the weights of the last step go to --out */
    if (!o->out || (r->fo.interrupted && r->fo.res.steps == 0)) return CLI_CONTINUE;
    if (r->fo.interrupted)
        cli_log(o, "graft finetune: interrupted after %lld steps (%d full epochs); writing the "
                   "weights of the last step to %s\n", (long long)r->fo.res.steps,
                r->fo.res.epochs_run, o->out);
    cJSON *map = cJSON_CreateObject();
    if (o->strip_prefix) cJSON_AddStringToObject(map, "strip_prefix", o->strip_prefix);
    cJSON *ren = cJSON_AddArrayToObject(map, "rename");
    for (int i = 0; i < o->n_rename; i++) cJSON_AddItemToArray(ren, cJSON_CreateString(o->rename[i]));
    char *map_text = cJSON_PrintUnformatted(map);
    cJSON_Delete(map);
    const char *extra[] = {"graft.from", o->from, "graft.base", o->from, "graft.base_map",
                           map_text ? map_text : "{}"};
    int rc = o->delta ? cli_save_delta(ctx, o, &r->cm, &r->d, o->from, &r->wo, o->out, extra, 3,
                                       &r->n_delta)
                      : cli_save_weights(ctx, o, &r->cm, &r->d, o->out, extra, 1);
    cJSON_free(map_text);
    if (rc == CLI_CONTINUE) *written = o->out;
    return rc;
}

/* The summary: the run's, with what fine-tuning did. */
static int print_run(ft_run *r, const char *part, const char *written) {
    const cli_opts *o = r->o;
    const ft_counts c = count_keys(r);
    if (!o->json) {
        if (r->head_note[0]) printf("head      %s\n", r->head_note);
        printf("loaded    %d of %d tensors from %s (%d renamed); %d new, %d of another shape\n",
               c.loaded, c.total, o->from, c.renamed, c.head + c.missing, c.mismatched);
        if (r->plan->in_note[0]) printf("input     %s\n", r->plan->in_note);
        if (r->lora_layers)
            printf("LoRA      %d layers, rank %d (merged into the saved weights)\n", r->lora_layers,
                   o->lora_rank);
        if (o->delta && written) printf("delta     %d tensors differ from %s\n", r->n_delta, o->from);
        cli_print_run(o, cli_model_desc(&r->cm), &r->d, &r->fo, part, &r->ev, written);
        return CLI_OK;
    }
    cJSON *root = cli_run_json(o, r->cm.b->info.model, &r->d, &r->fo, part, &r->ev, written);
    cJSON *ft = cJSON_AddObjectToObject(root, "finetune");
    cJSON_AddStringToObject(ft, "from", o->from);
    cJSON_AddBoolToObject(ft, "head_replaced", r->head_replaced);
    cJSON_AddStringToObject(ft, "head", r->cm.b->head);
    cJSON_AddNumberToObject(ft, "loaded", c.loaded);
    cJSON_AddNumberToObject(ft, "new", c.head + c.missing);
    cJSON_AddNumberToObject(ft, "mismatched", c.mismatched);
    cJSON_AddNumberToObject(ft, "renamed", c.renamed);
    cJSON_AddNumberToObject(ft, "lora_layers", r->lora_layers);
    cJSON_AddBoolToObject(ft, "delta", o->delta);
    if (o->delta) cJSON_AddNumberToObject(ft, "delta_tensors", r->n_delta);
    char *js = gf_transfer_plan_json(r->ctx, r->plan2);
    cJSON_AddItemToObject(ft, "plan", js ? cJSON_Parse(js) : cJSON_CreateNull());
    free(js);
    return cli_json_print(root);
}

/* The model ready to train: built, loaded, its head chosen, frozen as asked, with adapters; the
 * plan of what training will do. */
static int prepare(ft_run *r) {
    int rc;
    if ((rc = build_model(r)) != CLI_CONTINUE || (rc = load_pretrained(r)) != CLI_CONTINUE ||
        (rc = choose_head(r)) != CLI_CONTINUE || (rc = freeze(r)) != CLI_CONTINUE ||
        (r->o->lora_rank && (rc = add_lora(r)) != CLI_CONTINUE))
        return rc;
    if (gf_ctx_status(r->ctx) != GF_OK) return cli_fail_ctx(r->o->cmd, r->ctx);
    gf_transfer_load_params pw = {r->wo, r->o->in_channels};
    pw.weights.strict = false;
    if (gf_transfer_plan_load_with(r->ctx, r->cm.b->model, r->o->from, &pw, &r->plan2) != GF_OK)
        return cli_fail_ctx(r->o->cmd, r->ctx);
    return CLI_CONTINUE;
}

/* The pretrained file's description, the data and the model ready to train. */
static int setup(ft_run *r) {
    int rc = cli_meta_open(r->ctx, r->o, r->o->from, &r->meta);
    /* a text model's embedding rows belong to its vocabulary: new text is tokenised with it;
     * a speech bundle reads clips as the waveforms it was trained on */
    const bool speech = r->meta.model && strcmp(r->meta.model, "speech") == 0;
    if (rc == CLI_CONTINUE)
        rc = cli_data_load_for(r->ctx, r->o,
                               r->meta.vocab || r->meta.has_audio || speech ? &r->meta : NULL, &r->d);
    if (rc != CLI_CONTINUE) return rc;
    if (!samples_fit(r)) return CLI_FAILED;
    return prepare(r);
}

static int run(ft_run *r) {
    gf_ctx *ctx = r->ctx;
    const cli_opts *o = r->o;
    int rc = setup(r);
    if (rc != CLI_CONTINUE) return rc;
    if (o->dry_run) return print_dry_run(r);
    if (o->verbose && !o->quiet) print_tensors(r);
    print_summary(r);
    char desc[1024];
    cli_data_describe(&r->d, desc, sizeof desc);
    cli_log(o, "graft finetune: %s from %s on %s; %s, batch %lld, %d threads, seed %llu\n",
            cli_model_desc(&r->cm), o->from, desc, gf_optim_kind_name(o->optim),
            (long long)o->batch, gf_ctx_threads(ctx), (unsigned long long)o->seed);
    cli_fit_setup setup = {.loss = gf_loss_default(GF_LOSS_CROSS_ENTROPY), .head = r->cm.b->head,
                           .trunk_factor = o->lr_trunk_factor};
    setup.loss.label_smoothing = (float)o->label_smoothing;
    float *class_w = NULL;
    if ((rc = cli_class_weights(ctx, o, &r->d, &class_w)) != CLI_CONTINUE) return rc;
    setup.loss.class_weights = class_w;
    setup.loss.n_class_weights = class_w ? r->d.n_classes : 0;
    if (r->d.regression) setup.loss = cli_regression_loss(o);
    rc = cli_fit(ctx, o, r->cm.b->model, &r->d, &setup, &r->fo);
    free(class_w);
    if (rc != CLI_CONTINUE) return rc;
    const char *part, *written = NULL;
    gf_ds *eval_ds = cli_final_part(&r->d, &part);
    if (!r->fo.interrupted && /* else leave quickly */
        (rc = r->d.regression ? cli_evaluate_regression(ctx, o->cmd, r->cm.b->model, &r->d, eval_ds,
                                                        r->d.eval_tf, o->batch, &r->ev)
                              : cli_evaluate(ctx, o->cmd, r->cm.b->model, eval_ds, r->d.eval_tf,
                                             o->batch, &r->ev)) != CLI_CONTINUE)
        return rc;
    if ((rc = write_weights(r, &written)) != CLI_CONTINUE) return rc;
    if (o->report && (rc = cli_report_run(ctx, o, cli_model_desc(&r->cm), &r->d, &r->fo, part,
                                          &r->ev, written)) != CLI_CONTINUE)
        return rc;
    rc = print_run(r, part, written);
    return r->fo.interrupted ? CLI_FAILED : rc;
}

static ft_run *ft_new(cli_opts *o) {
    ft_run *r = calloc(1, sizeof *r);
    if (!r || !(r->ctx = cli_context(o))) {
        free(r);
        return NULL;
    }
    r->o = o;
    r->wo = gf_weights_default_options();
    r->wo.strict = o->strict;
    r->wo.strip_prefix = o->strip_prefix;
    for (int i = 0; i < o->n_rename; i++) r->rules[i] = (gf_weights_key_rule){o->rename[i], NULL};
    r->wo.rules = r->rules;
    r->wo.n_rules = o->n_rename;
    return r;
}

static void ft_free(ft_run *r) {
    for (int i = 0; !r->auto_targets && i < r->n_lora_targets; i++) free(r->lora_targets[i]);
    gf_lora_targets_free(r->auto_targets);
    gf_transfer_plan_free(r->plan);
    gf_transfer_plan_free(r->plan2);
    cli_eval_free(&r->ev);
    cli_fit_out_free(&r->fo);
    cli_model_free(&r->cm);
    cli_data_free(&r->d);
    gf_bundle_info_free(&r->meta);
    gf_ctx_free(r->ctx);
    free(r);
}

int cli_finetune_with(cli_opts *o, cli_ft_fn fn) {
    ft_run *r = ft_new(o);
    if (!r) return CLI_FAILED;
    int rc = setup(r);
    if (rc == CLI_CONTINUE) {
        print_summary(r);
        rc = fn(r->ctx, o, &r->cm, &r->d, r->cm.b->head);
    }
    ft_free(r);
    return rc;
}

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
    if (cli_is_tfjs(o->from)) return cli_tfjs_finetune(o);
    if (cli_is_onnx(o->from)) return cli_speech_finetune(o);
    if (o->front || o->pool)
        return cli_usage_error(cmd, "--front and --pool apply to a speech embedding (--from "
                               "embedding_model.onnx)");
    if (o->cut || o->input_size)
        return cli_usage_error(cmd, "--cut and --input-size apply to a TensorFlow.js model.json");
    ft_run *r = ft_new(o);
    if (!r) return CLI_FAILED;
    rc = run(r);
    ft_free(r);
    return rc;
}
