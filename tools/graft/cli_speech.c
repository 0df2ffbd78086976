/* A speech embedding on the command line: `graft finetune --from embedding_model.onnx --data
 * audio:DIR` reads the clips as waveforms, builds openWakeWord's chain (graft/speech.h: the mel
 * model, windows, the embedding, a new head), freezes as asked and trains; with a frozen
 * embedding the features are computed once and cached. --out writes a bundle that eval and
 * gf_bundle_load rebuild from the two .onnx files (graft.speech). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* realpath */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/speech.h"

bool cli_is_onnx(const char *path) {
    size_t n = path ? strlen(path) : 0;
    return n > 5 && strcmp(path + n - 5, ".onnx") == 0;
}

typedef struct speech_run {
    gf_ctx *ctx;
    cli_opts *o;
    cli_data d, fd;             /* the data (waveforms); its cached embeddings */
    gf_module *model;           /* mel, trunk, head */
    gf_speech_info info;
    char front[4096];
    bool cached;
    double cache_seconds;
    float *mean, *std;          /* the cached training embeddings' statistics */
    gf_tf *norm;                /* standardising with them */
    cli_fit_out fo;
    cli_eval ev;
} speech_run;

static void mel_path(const cli_opts *o, char *buf, size_t cap) {
    const char *slash = strrchr(o->from, '/');
    if (o->front) snprintf(buf, cap, "%s", o->front);
    else if (slash) snprintf(buf, cap, "%.*s/melspectrogram.onnx", (int)(slash - o->from), o->from);
    else snprintf(buf, cap, "melspectrogram.onnx");
}

static int build(speech_run *r) {
    cli_opts *o = r->o;
    if (r->d.ndim != 2 || r->d.shape[0] != 1)
        return cli_usage_error(o->cmd, "--from %s: a speech embedding takes audio: data (clips "
                               "as waveforms); %s has other samples", o->from, o->data);
    gf_speech_params p = gf_speech_default_params();
    mel_path(o, r->front, sizeof r->front);
    p.mel_path = r->front;
    p.samples = r->d.shape[1];
    p.pool = gf_speech_pool_parse(o->pool);
    p.n_classes = r->d.n_classes;
    gf_rng rng;
    gf_rng_seed(&rng, o->seed ^ 0x68656164ULL);
    if (!(r->model = gf_speech_classifier(r->ctx, o->from, &p, &rng, &r->info)))
        return gf_ctx_status(r->ctx) == GF_ERR_INVALID ? cli_usage_error(o->cmd, "%s", gf_ctx_error(r->ctx))
                                                       : cli_fail(o->cmd, "%s", gf_ctx_error(r->ctx));
    return CLI_CONTINUE;
}

/* --train-last, --freeze, --unfreeze. */
static int freeze(speech_run *r) {
    return cli_apply_freezing(r->ctx, r->o, r->model);
}

/* Only the head trains and the data is not transformed: the embeddings never change. */
static bool trunk_fixed(speech_run *r) {
    if (r->d.train_tf || r->d.eval_tf) return false;
    gf_named_tensors *ps = gf_module_named_tensors(r->ctx, r->model, GF_STATE_PARAMS);
    bool fixed = ps != NULL;
    for (int i = 0; ps && i < ps->n; i++)
        if (strncmp(ps->items[i].name, "head.", 5) != 0 && ps->items[i].tensor->requires_grad)
            fixed = false;
    gf_named_tensors_free(ps);
    gf_ctx_clear_error(r->ctx);
    return fixed;
}

static int cache_features(speech_run *r) {
    int rc = cli_cache_head_features(r->ctx, r->o, r->model, &r->d, r->info.features,
                                     "the embedding", "clips", &r->fd, &r->cache_seconds);
    r->cached = rc == CLI_CONTINUE;
    return rc;
}

/* The cached embeddings standardised with the training part's mean and standard deviation,
 * as scikit-learn's StandardScaler before a linear model: the numbers of one embedding differ
 * in scale by orders of magnitude. fold_head moves the scaling into the trained head. */
static int standardise(speech_run *r) {
    const int64_t f = r->info.features;
    r->mean = malloc(sizeof(float) * (size_t)f);
    r->std = malloc(sizeof(float) * (size_t)f);
    if (!r->mean || !r->std) return cli_fail(r->o->cmd, "out of memory");
    if (gf_ds_channel_stats(r->ctx, r->fd.train, r->mean, r->std) != GF_OK)
        return cli_fail_ctx(r->o->cmd, r->ctx);
    for (int64_t j = 0; j < f; j++)
        if (!(r->std[j] > 1e-6f)) r->std[j] = 1.0f; /* a constant number stays as it is */
    if (!(r->norm = gf_tf_new(r->ctx)) ||
        gf_tf_normalize(r->ctx, r->norm, (int)f, r->mean, r->std) != GF_OK)
        return cli_fail_ctx(r->o->cmd, r->ctx);
    r->fd.train_tf = r->fd.eval_tf = r->norm;
    return CLI_CONTINUE;
}

/* head(x) = W (x - mean) / std + b  ->  W' x + b' with W' = W / std, b' = b - W' mean. */
static void fold_head(speech_run *r) {
    gf_tensor *w = gf_module_tensor(NULL, r->model, "head.weight");
    gf_tensor *b = gf_module_tensor(NULL, r->model, "head.bias");
    if (!w || !b || !r->norm) return;
    float *wv = gf_f32(w), *bv = gf_f32(b);
    const int64_t k = w->shape[0], f = w->shape[1];
    for (int64_t i = 0; i < k; i++) {
        double shift = 0;
        for (int64_t j = 0; j < f; j++) {
            wv[i * f + j] /= r->std[j];
            shift += (double)wv[i * f + j] * r->mean[j];
        }
        bv[i] -= (float)shift;
    }
}

static int train(speech_run *r) {
    const cli_opts *o = r->o;
    int rc;
    if (trunk_fixed(r) &&
        ((rc = cache_features(r)) != CLI_CONTINUE || (rc = standardise(r)) != CLI_CONTINUE))
        return rc;
    gf_module *m = r->cached ? gf_module_child(r->model, "head") : r->model;
    cli_data *d = r->cached ? &r->fd : &r->d;
    cli_fit_setup setup = {.loss = gf_loss_default(GF_LOSS_CROSS_ENTROPY),
                           .head = r->cached ? NULL : "head", .trunk_factor = o->lr_trunk_factor};
    setup.loss.label_smoothing = (float)o->label_smoothing;
    char desc[1024];
    cli_data_describe(&r->d, desc, sizeof desc);
    cli_log(o, "graft finetune: %s (%lld windows of mel frames per clip) on %s; %s, batch %lld, "
               "%d threads, seed %llu\n", o->from, (long long)r->info.windows, desc,
            gf_optim_kind_name(o->optim), (long long)o->batch, gf_ctx_threads(r->ctx),
            (unsigned long long)o->seed);
    if ((rc = cli_fit(r->ctx, o, m, d, &setup, &r->fo)) != CLI_CONTINUE) return rc;
    r->fo.total = gf_module_param_count(r->model, false);
    r->fo.trainable = gf_module_param_count(r->model, true);
    const char *part;
    gf_ds *eval_ds = cli_final_part(d, &part);
    if (!r->fo.interrupted &&
        (rc = cli_evaluate(r->ctx, o->cmd, m, eval_ds, d->eval_tf, o->batch, &r->ev)) != CLI_CONTINUE)
        return rc;
    fold_head(r);
    return CLI_CONTINUE;
}

/* graft.speech: how gf_bundle_load rebuilds the classifier. */
static char *speech_json(const speech_run *r) {
    char from[4096], front[4096];
    if (!realpath(r->o->from, from)) snprintf(from, sizeof from, "%s", r->o->from);
    if (!realpath(r->front, front)) snprintf(front, sizeof front, "%s", r->front);
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "from", from);
    cJSON_AddStringToObject(t, "front", front);
    cJSON_AddStringToObject(t, "pool", r->o->pool ? r->o->pool : "flat");
    char *text = cJSON_PrintUnformatted(t);
    cJSON_Delete(t);
    return text;
}

static int save(speech_run *r) {
    const cli_opts *o = r->o;
    if (!o->out || (r->fo.interrupted && r->fo.res.steps == 0)) return CLI_CONTINUE;
    char *text = speech_json(r);
    const int rc = cli_save_rebuilt(r->ctx, o, r->model, &r->d, "speech", text);
    cJSON_free(text);
    return rc;
}

static void describe(const speech_run *r, char *buf, size_t cap) {
    snprintf(buf, cap, "%s (%lld windows, %s) + new head", r->o->from, (long long)r->info.windows,
             r->o->pool ? r->o->pool : "flat");
}

static int print_dry_run(speech_run *r) {
    const cli_opts *o = r->o;
    const int64_t total = gf_module_param_count(r->model, false);
    const int64_t trainable = gf_module_param_count(r->model, true);
    const bool fixed = trunk_fixed(r);
    if (o->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "command", "finetune");
        cJSON_AddBoolToObject(root, "dry_run", true);
        cJSON_AddStringToObject(root, "from", o->from);
        cJSON_AddStringToObject(root, "front", r->front);
        cJSON_AddNumberToObject(root, "windows", (double)r->info.windows);
        cJSON_AddNumberToObject(root, "parameters", (double)total);
        cJSON_AddNumberToObject(root, "trainable", (double)trainable);
        cJSON_AddBoolToObject(root, "features_cached", fixed);
        return cli_json_print(root);
    }
    printf("front     %s: %lld mel frames per clip of %lld samples\n", r->front,
           (long long)r->info.frames, (long long)r->d.shape[1]);
    printf("trunk     %s: %lld windows of 76 frames, %lld numbers each\n", o->from,
           (long long)r->info.windows, (long long)r->info.embedding);
    printf("head      %lld -> %d classes\n", (long long)r->info.features, r->d.n_classes);
    printf("%lld parameters, %lld trainable; %s\n", (long long)total, (long long)trainable,
           fixed ? "the embedding is frozen: its features would be computed once"
           : o->augment ? "the clips change every epoch (--augment): no feature cache"
                        : "the embedding trains: no feature cache");
    printf("dry run: nothing was trained or written\n");
    return CLI_OK;
}

static int print_run(speech_run *r) {
    const cli_opts *o = r->o;
    const char *part;
    const char *written = o->out && !(r->fo.interrupted && r->fo.res.steps == 0) ? o->out : NULL;
    cli_final_part(&r->d, &part);
    char desc[512];
    describe(r, desc, sizeof desc);
    if (!o->json) {
        if (r->cached)
            printf("features  computed once by the frozen embedding (%.1f s)\n", r->cache_seconds);
        cli_print_run(o, desc, &r->d, &r->fo, part, r->ev.cm ? &r->ev : NULL, written);
        if (written)
            printf("          (graft eval --weights %s rebuilds it from %s)\n", written,
                   o->from);
        return CLI_OK;
    }
    cJSON *root = cli_run_json(o, desc, &r->d, &r->fo, part, r->ev.cm ? &r->ev : NULL, written);
    cJSON *t = cJSON_AddObjectToObject(root, "speech");
    cJSON_AddStringToObject(t, "from", o->from);
    cJSON_AddStringToObject(t, "front", r->front);
    cJSON_AddNumberToObject(t, "windows", (double)r->info.windows);
    cJSON_AddBoolToObject(t, "features_cached", r->cached);
    cJSON_AddNumberToObject(t, "cache_seconds", r->cache_seconds);
    return cli_json_print(root);
}

/* Options of the safetensors path that mean nothing for an ONNX speech embedding. */
static int check_options(cli_opts *o) {
    const char *bad = o->model ? "--model" : o->strip_prefix ? "--strip-prefix"
                      : o->n_rename ? "--rename" : o->strict ? "--strict" : o->delta ? "--delta"
                      : o->lora_rank ? "--lora-rank" : o->resume ? "--resume"
                      : o->checkpoint_dir ? "--checkpoint-dir"
                      : o->cut ? "--cut" : o->input_size ? "--input-size" : o->n_mels ? "--n-mels"
                      : o->class_weight_balanced ? "--class-weight" : o->reg_loss_given ? "--loss"
                      : strcmp(o->head, "auto") && strcmp(o->head, "new") ? "--head" : NULL;
    if (bad)
        return cli_usage_error(o->cmd, "%s does not apply to an ONNX speech embedding --from "
                               "(the model comes from the file, the head is always new)", bad);
    const char *kind = o->data ? gf_ds_spec_kind(o->data) : NULL;
    if (o->data && (!kind || strcmp(kind, "audio") != 0))
        return cli_usage_error(o->cmd, "--from %s: an ONNX model is fine-tuned here as a speech "
                               "embedding (openWakeWord's embedding_model.onnx, docs/SPEECH.md) "
                               "on audio: data, not on %s", o->from, o->data);
    o->waveform = true;
    if (!(o->clip_seconds > 0)) o->clip_seconds = 1.5;
    /* the word in the middle of the embedding's windows, wherever the file has it: clips of
     * another engine or a microphone are placed as the training clips are */
    if (!o->align) o->align = "energy";
    return CLI_CONTINUE;
}

static void run_free(speech_run *r) {
    if (r->cached) cli_cached_free(&r->fd);
    gf_tf_free(r->norm);
    free(r->mean);
    free(r->std);
    cli_eval_free(&r->ev);
    cli_fit_out_free(&r->fo);
    gf_module_free(r->model);
    cli_data_free(&r->d);
    gf_ctx_free(r->ctx);
    free(r);
}

int cli_speech_finetune(cli_opts *o) {
    int rc = check_options(o);
    if (rc != CLI_CONTINUE) return rc;
    speech_run *r = calloc(1, sizeof *r);
    if (!r || !(r->ctx = cli_context(o))) {
        free(r);
        return CLI_FAILED;
    }
    r->o = o;
    if ((rc = cli_data_load(r->ctx, o, &r->d)) == CLI_CONTINUE &&
        (rc = build(r)) == CLI_CONTINUE && (rc = freeze(r)) == CLI_CONTINUE) {
        if (o->dry_run) rc = print_dry_run(r);
        else if ((rc = train(r)) == CLI_CONTINUE && (rc = save(r)) == CLI_CONTINUE)
            rc = r->fo.interrupted ? CLI_FAILED : print_run(r);
    }
    run_free(r);
    return rc;
}
