/* TensorFlow.js layers models on the command line: `graft inspect model.json` lists what the
 * import makes of it, and `graft finetune --from model.json` cuts it (--cut), feeds it the data
 * in its channels and size (--input-size), puts a new head on it, freezes as asked and trains;
 * with a frozen trunk the features are computed once and cached (a linear probe). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* realpath */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/tfjs.h"

bool cli_is_tfjs(const char *path) { return gf_tfjs_is_model_file(path); }

/* ---- inspect ------------------------------------------------------------------------------- */

static cJSON *layer_json(const gf_tfjs_layer *l) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", l->name);
    cJSON_AddStringToObject(e, "class", l->class_name);
    cJSON_AddStringToObject(e, "inputs", l->inputs);
    if (l->kept) cJSON_AddItemToObject(e, "output", cli_json_shape(l->out_ndim, l->out_shape));
    else cJSON_AddNullToObject(e, "output");
    cJSON_AddNumberToObject(e, "parameters", (double)l->params);
    if (l->module) cJSON_AddStringToObject(e, "module", l->module);
    else cJSON_AddNullToObject(e, "module");
    cJSON_AddBoolToObject(e, "kept", l->kept);
    return e;
}

/* Layer counts per class in first-seen order: "Conv2D 35, ReLU 35, ...". */
static void class_counts(const gf_tfjs_info *in, char *buf, size_t cap, cJSON *obj) {
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < in->n_layers; i++) {
        const char *c = in->layers[i].class_name;
        int n = 0, first = i;
        for (int j = 0; j < in->n_layers; j++)
            if (strcmp(in->layers[j].class_name, c) == 0 && in->layers[j].kept) {
                if (n++ == 0) first = j;
            }
        if (first != i || n == 0) continue;
        if (obj) cJSON_AddNumberToObject(obj, c, n);
        if (at < cap) at += (size_t)snprintf(buf + at, cap - at, "%s%s %d", at ? ", " : "", c, n);
    }
}

static int inspect_json(const gf_tfjs_info *in) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "tfjs-layers");
    cJSON_AddStringToObject(root, "source", in->source);
    cJSON_AddStringToObject(root, "model", in->model_name);
    cJSON_AddStringToObject(root, "class", in->class_name);
    cJSON_AddStringToObject(root, "generated_by", in->generated_by);
    cJSON *io = cJSON_AddObjectToObject(root, "input");
    cJSON_AddStringToObject(io, "name", in->input_name);
    cJSON_AddItemToObject(io, "shape", cli_json_shape(in->in_ndim, in->in_shape));
    io = cJSON_AddObjectToObject(root, "output");
    cJSON_AddStringToObject(io, "name", in->output_name);
    cJSON_AddItemToObject(io, "shape", cli_json_shape(in->out_ndim, in->out_shape));
    cJSON_AddStringToObject(root, "layout", "NCHW");
    cJSON_AddNumberToObject(root, "parameters", (double)in->params);
    char counts[1024];
    class_counts(in, counts, sizeof counts, cJSON_AddObjectToObject(root, "layer_counts"));
    cJSON *ws = cJSON_AddObjectToObject(root, "weights");
    cJSON_AddNumberToObject(ws, "count", in->n_weights);
    cJSON_AddNumberToObject(ws, "used", in->weights_used);
    cJSON_AddNumberToObject(ws, "quantized", in->weights_quantized);
    cJSON_AddNumberToObject(ws, "bytes", (double)in->weight_bytes);
    cJSON *ls = cJSON_AddArrayToObject(root, "layers");
    for (int i = 0; i < in->n_layers; i++) cJSON_AddItemToArray(ls, layer_json(&in->layers[i]));
    return cli_json_print(root);
}

static void inspect_text(const gf_tfjs_info *in, bool cut) {
    char sh[96], counts[1024];
    printf("TensorFlow.js layers model %s: %s (%s)%s%s\n", in->source, in->model_name,
           in->class_name, in->generated_by[0] ? ", " : "", in->generated_by);
    printf("%-28s  %-22s  %-18s  %10s  %s\n", "layer (--cut NAME)", "class", "output", "parameters",
           "inputs");
    for (int i = 0; i < in->n_layers; i++) {
        const gf_tfjs_layer *l = &in->layers[i];
        if (!l->kept) continue;
        gf_dims_str(l->out_ndim, l->out_shape, sh, sizeof sh);
        printf("%-28s  %-22s  %-18s  %10lld  %s\n", l->name, l->class_name, sh,
               (long long)l->params, l->inputs);
    }
    class_counts(in, counts, sizeof counts, NULL);
    int kept = 0;
    for (int i = 0; i < in->n_layers; i++) kept += in->layers[i].kept;
    printf("\n%d layers%s: %s\n", kept, cut ? " up to the cut" : "", counts);
    gf_dims_str(in->in_ndim, in->in_shape, sh, sizeof sh);
    printf("input     %s %s (graft's NCHW; -1: any size)\n", in->input_name, sh);
    gf_dims_str(in->out_ndim, in->out_shape, sh, sizeof sh);
    printf("output    %s %s%s\n", in->output_name, sh, cut ? " (the cut)" : "");
    printf("%lld parameters; %d of %d weights used, %d of them quantised; %lld bytes of shards\n",
           (long long)in->params, in->weights_used, in->n_weights, in->weights_quantized,
           (long long)in->weight_bytes);
    printf("cut at any layer with --cut NAME (graft finetune --from %s --cut NAME)\n", in->source);
}

int cli_tfjs_inspect(gf_ctx *ctx, const cli_opts *o, const char *path) {
    gf_tfjs_options to = gf_tfjs_default_options();
    to.cut = o->cut;
    to.in_h = to.in_w = o->input_size;
    gf_tfjs_info *info = NULL;
    gf_module *m = gf_tfjs_load(ctx, path, &to, &info);
    if (!m) return cli_fail(o->cmd, "%s", gf_ctx_error(ctx));
    int rc = CLI_OK;
    if (o->json) rc = inspect_json(info);
    else inspect_text(info, o->cut != NULL);
    gf_tfjs_info_free(info);
    gf_module_free(m);
    return rc;
}

/* ---- the input adapter --------------------------------------------------------------------- */

/* ---- the classifier -------------------------------------------------------------------------- */

typedef struct tfjs_run {
    gf_ctx *ctx;
    cli_opts *o;
    cli_data d, fd;             /* the data; its cached trunk features */
    gf_tfjs_info *info;
    gf_module *model;           /* input adapter, trunk, pooling, head */
    char cut[160], note[280];
    bool cached;
    double cache_seconds;
    cli_fit_out fo;
    cli_eval ev;
} tfjs_run;

/* The classifier (graft/tfjs.h): input adapter, trunk cut at --cut (default: the input of the
 * last Dense layer), global average pooling of an image trunk, a new head. */
static int build(tfjs_run *r) {
    gf_ctx *ctx = r->ctx;
    cli_opts *o = r->o;
    gf_tfjs_classifier_params p = gf_tfjs_classifier_default_params();
    p.cut = o->cut;
    p.input_size = o->input_size;
    p.data_ndim = r->d.ndim;
    memcpy(p.data_shape, r->d.shape, sizeof(int64_t) * (size_t)r->d.ndim);
    p.n_classes = r->d.n_classes;
    p.adapt_channels = o->in_channels != GF_TRANSFER_IN_CHANNELS_ERROR;
    gf_rng rng;
    gf_rng_seed(&rng, o->seed ^ 0x68656164ULL);
    gf_tfjs_classifier_info ti;
    if (!(r->model = gf_tfjs_classifier(ctx, o->from, &p, &rng, &ti)))
        return gf_ctx_status(ctx) == GF_ERR_INVALID ? cli_usage_error(o->cmd, "%s", gf_ctx_error(ctx))
                                                     : cli_fail(o->cmd, "%s", gf_ctx_error(ctx));
    r->info = ti.trunk;
    snprintf(r->cut, sizeof r->cut, "%s", ti.cut);
    if (ti.cut_default)
        cli_log(o, "graft finetune: cut at %s (the input of the last Dense layer, or the model's "
                   "output; --cut to choose)\n", r->cut);
    if (ti.adapter[0]) snprintf(r->note, sizeof r->note, "input     %s", ti.adapter);
    return CLI_CONTINUE;
}

/* --train-last, --freeze, --unfreeze, --bn-policy (freeze-stats unless told). */
static int freeze(tfjs_run *r) {
    gf_ctx *ctx = r->ctx;
    const cli_opts *o = r->o;
    int rc = cli_apply_freezing(ctx, o, r->model);
    if (rc != CLI_CONTINUE) return rc;
    char name[32] = "freeze-stats";
    const char *scope = NULL, *colon = o->bn_policy ? strchr(o->bn_policy, ':') : NULL;
    if (o->bn_policy)
        snprintf(name, sizeof name, "%.*s",
                 (int)(colon ? (size_t)(colon - o->bn_policy) : strlen(o->bn_policy)),
                 o->bn_policy);
    if (colon) scope = colon + 1;
    gf_transfer_bn_policy pol = GF_TRANSFER_BN_DEFAULT;
    gf_transfer_bn_policy_parse(name, &pol);
    if ((scope && gf_transfer_set_bn_policy(ctx, r->model, GF_TRANSFER_BN_DEFAULT, NULL) < 0) ||
        gf_transfer_set_bn_policy(ctx, r->model, pol, scope) < 0)
        return cli_usage_error(o->cmd, "--bn-policy: %s", gf_ctx_error(ctx));
    return CLI_CONTINUE;
}

/* Only the head trains, BatchNorm statistics are pinned and the data is not augmented: the
 * trunk's output for an example never changes, so it is computed once. */
static bool trunk_fixed(tfjs_run *r) {
    if (r->d.train_tf || r->d.eval_tf) return false;
    gf_named_tensors *ps = gf_module_named_tensors(r->ctx, r->model, GF_STATE_PARAMS);
    bool fixed = ps != NULL;
    for (int i = 0; ps && i < ps->n; i++)
        if (strncmp(ps->items[i].name, "head.", 5) != 0 && ps->items[i].tensor->requires_grad)
            fixed = false;
    gf_named_tensors_free(ps);
    gf_ctx_clear_error(r->ctx);
    for (int i = 0; i < r->info->n_layers; i++) /* the trunk's own Dropout layers draw noise */
        if (r->info->layers[i].kept && strcmp(r->info->layers[i].class_name, "Dropout") == 0)
            fixed = false;
    return fixed && gf_module_replicable(r->model, NULL, 0); /* no BatchNorm statistics move */
}

/* ---- training ------------------------------------------------------------------------------ */

/* The trunk's features of every part (r->fd: the data's parts as [F] samples, no transforms). */
static int cache_features(tfjs_run *r) {
    const int64_t features = gf_module_tensor(NULL, r->model, "head.weight")->shape[1];
    int rc = cli_cache_head_features(r->ctx, r->o, r->model, &r->d, features, "the trunk",
                                     "examples", &r->fd, &r->cache_seconds);
    r->cached = rc == CLI_CONTINUE;
    return rc;
}

/* Trains (the head on cached features, or the whole model) and evaluates the final part. */
static int train(tfjs_run *r) {
    const cli_opts *o = r->o;
    int rc;
    if (trunk_fixed(r) && (rc = cache_features(r)) != CLI_CONTINUE) return rc;
    gf_module *m = r->cached ? gf_module_child(r->model, "head") : r->model;
    cli_data *d = r->cached ? &r->fd : &r->d;
    cli_fit_setup setup = {.loss = gf_loss_default(GF_LOSS_CROSS_ENTROPY),
                           .head = r->cached ? NULL : "head", .trunk_factor = o->lr_trunk_factor};
    setup.loss.label_smoothing = (float)o->label_smoothing;
    char desc[1024];
    cli_data_describe(&r->d, desc, sizeof desc);
    cli_log(o, "graft finetune: %s cut at %s on %s; %s, batch %lld, %d threads, seed %llu\n",
            o->from, r->cut, desc, gf_optim_kind_name(o->optim), (long long)o->batch,
            gf_ctx_threads(r->ctx), (unsigned long long)o->seed);
    if ((rc = cli_fit(r->ctx, o, m, d, &setup, &r->fo)) != CLI_CONTINUE) return rc;
    r->fo.total = gf_module_param_count(r->model, false);
    r->fo.trainable = gf_module_param_count(r->model, true);
    const char *part;
    gf_ds *eval_ds = cli_final_part(d, &part);
    if (r->fo.interrupted) return CLI_CONTINUE;
    return cli_evaluate(r->ctx, o->cmd, m, eval_ds, d->eval_tf, o->batch, &r->ev);
}

/* --out: a bundle (graft/bundle.h) like any fine-tuned model: the classifier's state_dict with
 * its classes, input shape and preprocessing, and graft.tfjs saying how to rebuild it, so eval,
 * predict and gf_bundle_load use it. */
static int save(tfjs_run *r) {
    const cli_opts *o = r->o;
    if (!o->out || (r->fo.interrupted && r->fo.res.steps == 0)) return CLI_CONTINUE;
    char from[4096];
    if (!realpath(o->from, from)) snprintf(from, sizeof from, "%s", o->from);
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "from", from);
    cJSON_AddStringToObject(t, "cut", r->cut);
    cJSON_AddNumberToObject(t, "input_size", o->input_size);
    cJSON_AddBoolToObject(t, "adapt_channels", o->in_channels != GF_TRANSFER_IN_CHANNELS_ERROR);
    char *text = cJSON_PrintUnformatted(t);
    cJSON_Delete(t);
    const int rc = cli_save_rebuilt(r->ctx, o, r->model, &r->d, "tfjs", text);
    cJSON_free(text);
    return rc;
}

/* --report DIR: the run's HTML report, as for any fine-tuning. */
static int report(tfjs_run *r) {
    const cli_opts *o = r->o;
    if (!o->report || r->fo.interrupted) return CLI_CONTINUE;
    const char *part;
    cli_final_part(&r->d, &part);
    char desc[512];
    snprintf(desc, sizeof desc, "%s cut at %s + new head", o->from, r->cut);
    return cli_report_run(r->ctx, o, desc, &r->d, &r->fo, part, r->ev.cm ? &r->ev : NULL,
                          o->out);
}

static int print_dry_run(tfjs_run *r) {
    const cli_opts *o = r->o;
    int64_t total = gf_module_param_count(r->model, false);
    int64_t trainable = gf_module_param_count(r->model, true);
    bool fixed = trunk_fixed(r);
    if (o->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "command", "finetune");
        cJSON_AddBoolToObject(root, "dry_run", true);
        cJSON_AddStringToObject(root, "from", o->from);
        cJSON_AddStringToObject(root, "cut", r->cut);
        cJSON_AddNumberToObject(root, "parameters", (double)total);
        cJSON_AddNumberToObject(root, "trainable", (double)trainable);
        cJSON_AddBoolToObject(root, "features_cached", fixed);
        return cli_json_print(root);
    }
    char sh[96];
    gf_dims_str(r->info->out_ndim, r->info->out_shape, sh, sizeof sh);
    printf("trunk     %s cut at %s: %s, %lld parameters\n", o->from, r->cut, sh,
           (long long)r->info->params);
    if (r->note[0]) printf("%s\n", r->note);
    printf("head      %lld -> %d classes\n",
           (long long)gf_module_tensor(NULL, r->model, "head.weight")->shape[1], r->d.n_classes);
    printf("%lld parameters, %lld trainable; %s\n", (long long)total, (long long)trainable,
           fixed ? "the trunk is frozen: its features would be computed once"
                 : "the trunk trains (or its BatchNorm statistics move): no feature cache");
    printf("dry run: nothing was trained or written\n");
    return CLI_OK;
}

static int print_run(tfjs_run *r) {
    const cli_opts *o = r->o;
    const char *part;
    const char *written = o->out && !(r->fo.interrupted && r->fo.res.steps == 0) ? o->out : NULL;
    cli_final_part(&r->d, &part);
    char desc[512];
    snprintf(desc, sizeof desc, "%s cut at %s + new head", o->from, r->cut);
    if (!o->json) {
        if (r->note[0]) printf("%s\n", r->note);
        if (r->cached)
            printf("features  computed once by the frozen trunk (%.1f s)\n", r->cache_seconds);
        cli_print_run(o, desc, &r->d, &r->fo, part, r->ev.cm ? &r->ev : NULL, written);
        if (written)
            printf("          (graft eval / predict --weights %s rebuild it from %s)\n", written,
                   o->from);
        return CLI_OK;
    }
    cJSON *root = cli_run_json(o, desc, &r->d, &r->fo, part, r->ev.cm ? &r->ev : NULL, written);
    cJSON *t = cJSON_AddObjectToObject(root, "tfjs");
    cJSON_AddStringToObject(t, "from", o->from);
    cJSON_AddStringToObject(t, "cut", r->cut);
    cJSON_AddBoolToObject(t, "features_cached", r->cached);
    cJSON_AddNumberToObject(t, "cache_seconds", r->cache_seconds);
    return cli_json_print(root);
}

/* Options of the safetensors path that mean nothing for a TensorFlow.js model. */
static int check_options(const cli_opts *o) {
    const char *bad = o->model ? "--model" : o->strip_prefix ? "--strip-prefix"
                      : o->n_rename ? "--rename" : o->strict ? "--strict" : o->delta ? "--delta"
                      : o->lora_rank ? "--lora-rank" : o->resume ? "--resume"
                      : o->checkpoint_dir ? "--checkpoint-dir"
                      : o->class_weight_balanced ? "--class-weight" : o->reg_loss_given ? "--loss"
                      : strcmp(o->head, "auto") && strcmp(o->head, "new") ? "--head" : NULL;
    if (bad)
        return cli_usage_error(o->cmd, "%s does not apply to a TensorFlow.js --from (the model "
                               "comes from the file, the head is always new)", bad);
    return CLI_CONTINUE;
}

int cli_tfjs_finetune(cli_opts *o) {
    int rc = check_options(o);
    if (rc != CLI_CONTINUE) return rc;
    tfjs_run *r = calloc(1, sizeof *r);
    if (!r || !(r->ctx = cli_context(o))) {
        free(r);
        return CLI_FAILED;
    }
    r->o = o;
    if ((rc = cli_data_load(r->ctx, o, &r->d)) == CLI_CONTINUE &&
        (rc = build(r)) == CLI_CONTINUE &&
        (rc = freeze(r)) == CLI_CONTINUE) {
        if (o->dry_run) rc = print_dry_run(r);
        else if ((rc = train(r)) == CLI_CONTINUE && (rc = save(r)) == CLI_CONTINUE &&
                 (rc = report(r)) == CLI_CONTINUE)
            rc = r->fo.interrupted ? CLI_FAILED : print_run(r);
    }
    if (r->cached) cli_cached_free(&r->fd);
    cli_eval_free(&r->ev);
    cli_fit_out_free(&r->fo);
    gf_module_free(r->model);
    gf_tfjs_info_free(r->info);
    cli_data_free(&r->d);
    gf_ctx_free(r->ctx);
    free(r);
    return rc;
}
