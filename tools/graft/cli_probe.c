/* graft probe's candidates (cli_probe.h): the trunk of a TensorFlow.js model is the one
 * finetune builds (gf_tfjs_classifier, cut at the deepest layer probed), an ONNX model is loaded
 * with every cut point as an output (gf_onnx_options.cuts) behind the adapter fitting images to
 * its input (gf_nn_input_adapter, the TensorFlow.js one), a speech embedding is the chain
 * finetune builds (gf_speech_classifier: waveforms, the mel model, windows) with its embedding
 * cut at the cut points, a bundle's model runs whole with its modules at the cut points wrapped
 * to keep their outputs (gf_transfer_forward_points). */
#define _POSIX_C_SOURCE 200809L
#include "cli_probe.h"

#include <stdlib.h>
#include <string.h>

const char *cli_probe_kind_name(cli_probe_kind kind) {
    return kind == CLI_PROBE_TFJS     ? "TensorFlow.js"
           : kind == CLI_PROBE_ONNX   ? "ONNX"
           : kind == CLI_PROBE_SPEECH ? "speech embedding"
                                      : "bundle";
}

/* The usage error for a cut name pm lacks: a near name, and the first names of the sweep. */
static int unknown_cut(const cli_opts *o, const char *option, const cli_probe_model *pm,
                       const char *name, const char *const *names, int n,
                       const char *const *sweep, int n_sweep) {
    const char *near = cli_nearest(name, names, n);
    char some[512] = "";
    size_t at = 0;
    for (int k = 0; k < n_sweep && k < 6; k++) {
        int w = snprintf(some + at, sizeof some - at, "%s%s", k ? ", " : "", sweep[k]);
        if (w < 0 || (size_t)w >= sizeof some - at) break;
        at += (size_t)w;
    }
    const char *what = pm->kind == CLI_PROBE_TFJS     ? "layer"
                       : pm->kind == CLI_PROBE_BUNDLE ? "module"
                                                      : "tensor or node";
    char near_text[200] = "";
    if (near) snprintf(near_text, sizeof near_text, " (did you mean \"%s\"?)", near);
    if (pm->kind == CLI_PROBE_BUNDLE) /* graft inspect lists a bundle's tensors, not modules */
        return cli_usage_error(o->cmd, "%s: %s has no %s \"%s\"%s; the sweep cuts at %s%s",
                               option, pm->path, what, name, near_text, some[0] ? some : "(nothing)",
                               n_sweep > 6 ? ", ..." : "");
    return cli_usage_error(o->cmd, "%s: %s has no %s \"%s\"%s; the sweep cuts at %s%s (graft "
                           "inspect %s lists them all)", option, pm->path, what, name, near_text,
                           some[0] ? some : "(nothing)", n_sweep > 6 ? ", ..." : "", pm->path);
}

/* --cuts split into pm->cut, each checked by known(); duplicates refused. */
typedef int (*known_fn)(gf_ctx *ctx, const cli_opts *o, const cli_probe_model *pm,
                        const char *name);

static int split_cuts(gf_ctx *ctx, const cli_opts *o, cli_probe_model *pm, known_fn known) {
    if (!(pm->cuts_copy = strdup(pm->cuts_arg))) return cli_fail(o->cmd, "out of memory");
    char *save = NULL;
    for (char *t = strtok_r(pm->cuts_copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (pm->n_cuts == CLI_PROBE_MAX_CUTS)
            return cli_usage_error(o->cmd, "--cuts: at most %d cut points", CLI_PROBE_MAX_CUTS);
        if (known(ctx, o, pm, t) < 0) return CLI_USAGE;
        for (int k = 0; k < pm->n_cuts; k++)
            if (strcmp(pm->cut[k], t) == 0)
                return cli_usage_error(o->cmd, "--cuts: %s is named twice", t);
        pm->cut[pm->n_cuts++] = t;
    }
    if (pm->n_cuts == 0) return cli_usage_error(o->cmd, "--cuts: no cut point named");
    return CLI_CONTINUE;
}

/* ---- TensorFlow.js ------------------------------------------------------------------------- */

/* The classifier cut at `cut` (NULL: the input of the last Dense layer). */
static int tfjs_build(gf_ctx *ctx, const cli_opts *o, const cli_data *d, cli_probe_model *pm,
                      const char *cut) {
    gf_module_free(pm->model);
    gf_tfjs_info_free(pm->tfjs);
    pm->model = NULL, pm->tfjs = NULL;
    gf_tfjs_classifier_params p = gf_tfjs_classifier_default_params();
    p.cut = cut;
    p.input_size = o->input_size;
    p.data_ndim = d->ndim;
    memcpy(p.data_shape, d->shape, sizeof(int64_t) * (size_t)d->ndim);
    p.n_classes = d->n_classes;
    gf_rng rng;
    gf_rng_seed(&rng, o->seed);
    gf_tfjs_classifier_info ti;
    if (!(pm->model = gf_tfjs_classifier(ctx, pm->path, &p, &rng, &ti)))
        return gf_ctx_status(ctx) == GF_ERR_INVALID ? cli_usage_error(o->cmd, "%s", gf_ctx_error(ctx))
                                                    : cli_fail_ctx(o->cmd, ctx);
    pm->tfjs = ti.trunk;
    snprintf(pm->end, sizeof pm->end, "%s", ti.cut);
    snprintf(pm->adapter, sizeof pm->adapter, "%s", ti.adapter);
    return CLI_CONTINUE;
}

static int tfjs_index(const cli_probe_model *pm, const char *name) {
    for (int i = 0; i < pm->tfjs->n_layers; i++)
        if (strcmp(pm->tfjs->layers[i].name, name) == 0) return i;
    return -1;
}

/* A usage error for a layer the file lacks; its index otherwise. */
static int tfjs_known(gf_ctx *ctx, const cli_opts *o, const cli_probe_model *pm,
                      const char *name) {
    int i = tfjs_index(pm, name);
    if (i >= 0) return i;
    const char *names[1024];
    int n = 0;
    for (int k = 0; k < pm->tfjs->n_layers && n < 1024; k++) names[n++] = pm->tfjs->layers[k].name;
    const char *sweep[8];
    int n_sweep = gf_tfjs_block_ends(ctx, gf_module_child(pm->model, "trunk"), sweep, 8);
    unknown_cut(o, "--cuts", pm, name, names, n, sweep, n_sweep > 0 ? n_sweep : 0);
    return -1;
}

static int tfjs_open(gf_ctx *ctx, const cli_opts *o, const cli_data *d, cli_probe_model *pm) {
    char first[160] = ""; /* --cuts: built first at the first layer named, for the names */
    if (pm->cuts_arg)
        snprintf(first, sizeof first, "%.*s", (int)strcspn(pm->cuts_arg, ","), pm->cuts_arg);
    int rc = tfjs_build(ctx, o, d, pm, pm->cuts_arg ? first : pm->cut_arg);
    if (rc != CLI_CONTINUE) {
        if (!pm->cuts_arg && !pm->cut_arg)
            fprintf(stderr, "graft probe: the sweep of %s ends at the input of the last Dense "
                    "layer; end it earlier with --cut LAYER (graft inspect lists them)\n", pm->path);
        return rc;
    }
    if (!pm->cuts_arg) {
        int n = gf_tfjs_block_ends(ctx, gf_module_child(pm->model, "trunk"), pm->cut,
                                   CLI_PROBE_MAX_CUTS);
        if (n < 0) return cli_fail_ctx(o->cmd, ctx);
        pm->n_cuts = n < CLI_PROBE_MAX_CUTS ? n : CLI_PROBE_MAX_CUTS;
        return CLI_CONTINUE;
    }
    if ((rc = split_cuts(ctx, o, pm, tfjs_known)) != CLI_CONTINUE) return rc;
    int deepest = 0;
    for (int k = 1; k < pm->n_cuts; k++)
        if (tfjs_index(pm, pm->cut[k]) > tfjs_index(pm, pm->cut[deepest])) deepest = k;
    /* the names stay valid: they point into cuts_copy, not into the trunk rebuilt */
    return strcmp(pm->cut[deepest], pm->end) == 0 ? CLI_CONTINUE
                                                  : tfjs_build(ctx, o, d, pm, pm->cut[deepest]);
}

/* ---- ONNX ---------------------------------------------------------------------------------- */

static int onnx_index(const cli_probe_model *pm, const char *name) {
    for (int i = 0; i < pm->onnx->n_cuts; i++)
        if (!strcmp(pm->onnx->cuts[i].tensor, name) || !strcmp(pm->onnx->cuts[i].node, name))
            return i;
    return -1;
}

/* The block ends up to cut point `until` (the sweep), into names (borrowed from pm->onnx). */
static int onnx_sweep(const cli_probe_model *pm, int until, const char **names, int cap) {
    int n = 0;
    for (int i = 0; i <= until && n < cap; i++)
        if (pm->onnx->cuts[i].block_end) names[n++] = pm->onnx->cuts[i].tensor;
    return n;
}

static int onnx_unknown(const cli_opts *o, const char *option, const cli_probe_model *pm,
                        const char *name) {
    const char *names[1024], *sweep[8];
    int n = 0;
    for (int i = 0; i < pm->onnx->n_cuts && n < 1024; i++) names[n++] = pm->onnx->cuts[i].tensor;
    int n_sweep = onnx_sweep(pm, pm->onnx->n_cuts - 1, sweep, 8);
    return unknown_cut(o, option, pm, name, names, n, sweep, n_sweep);
}

static int onnx_known(gf_ctx *ctx, const cli_opts *o, const cli_probe_model *pm,
                      const char *name) {
    (void)ctx;
    int i = onnx_index(pm, name);
    if (i < 0) onnx_unknown(o, "--cuts", pm, name);
    return i;
}

/* "[batch, 3, 224, 224]": an input's declared dimensions. */
static void declared(const gf_onnx_value_info *vi, char *buf, size_t cap) {
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < vi->ndim && at < cap; i++) {
        int w = vi->dims[i] >= 0 ? snprintf(buf + at, cap - at, "%s%lld", i ? ", " : "[",
                                            (long long)vi->dims[i])
                                 : snprintf(buf + at, cap - at, "%s%s", i ? ", " : "[",
                                            vi->dim_names[i] ? vi->dim_names[i] : "?");
        if (w < 0) return;
        at += (size_t)w;
    }
    if (at < cap) snprintf(buf + at, cap - at, "%s", vi->ndim > 0 ? "]" : "(any shape)");
}

/* Image samples [C, H, W] fitted to a declared image input [batch, C', H', W'] as a model.json's
 * are (gf_nn_input_adapter: grey repeated, resized bilinearly to the fixed H' x W', or to
 * --input-size where they are symbolic). CLI_CONTINUE when nothing is to be fitted or it is
 * fitted; the exit code after a message otherwise. */
static int onnx_fit_images(gf_ctx *ctx, const cli_opts *o, const cli_data *d, cli_probe_model *pm,
                           const gf_onnx_value_info *vi, const char *want_text) {
    const int64_t want[3] = {vi->dims[1] > 0 ? vi->dims[1] : 0,
                             vi->dims[2] > 0 ? vi->dims[2] : o->input_size,
                             vi->dims[3] > 0 ? vi->dims[3] : o->input_size};
    if (gf_nn_input_adapter(ctx, pm->path, d->shape, want, true, &pm->input, pm->adapter,
                                  sizeof pm->adapter) == GF_OK)
        return CLI_CONTINUE;
    char have[64];
    gf_dims_str(d->ndim, d->shape, have, sizeof have);
    return cli_usage_error(o->cmd, "--from %s takes '%s', %s %s, and the samples of %s are %s: %s",
                           pm->path, vi->name, vi->elem_type ? gf_onnx_type_name(vi->elem_type)
                                                             : "float32", want_text, d->spec,
                           have, gf_ctx_error(ctx));
}

/* One float input whose declared sample dimensions (where given) are the data's, or an image
 * input the data's images are fitted to. */
static int onnx_check_input(gf_ctx *ctx, const cli_opts *o, const cli_data *d,
                            cli_probe_model *pm) {
    int n_in = gf_onnx_num_inputs(pm->model);
    if (n_in != 1)
        return cli_usage_error(o->cmd, "--from %s: cut at %s the model takes %d inputs; graft "
                               "probe feeds it one, the data's samples", pm->path, pm->cut[0], n_in);
    const gf_onnx_value_info *vi = gf_onnx_input(pm->model, 0);
    gf_dtype dt;
    char want[256], have[64];
    declared(vi, want, sizeof want);
    bool fits = !vi->elem_type || (gf_onnx_type_dtype(vi->elem_type, &dt) && dt == GF_F32);
    if (fits && vi->ndim == 4 && d->ndim == 3) return onnx_fit_images(ctx, o, d, pm, vi, want);
    fits = fits && (vi->ndim < 0 || vi->ndim == d->ndim + 1);
    for (int i = 0; fits && vi->ndim > 0 && i < d->ndim; i++)
        fits = vi->dims[i + 1] <= 0 || vi->dims[i + 1] == d->shape[i];
    if (fits) return CLI_CONTINUE;
    gf_dims_str(d->ndim, d->shape, have, sizeof have);
    return cli_usage_error(o->cmd, "--from %s takes '%s', %s %s, but the samples of %s are %s: "
                           "graft probe feeds an ONNX model the data as it is, images fitted to "
                           "an image input [batch, C, H, W]%s", pm->path, vi->name,
                           vi->elem_type ? gf_onnx_type_name(vi->elem_type) : "float32", want,
                           d->spec, have, o->waveform ? " (the clips are read as waveforms for "
                           "a speech embedding among the candidates)" : "");
}

/* pm's cut points in its ONNX graph: --cuts, else the sweep up to --cut (a speech embedding's
 * sweep ends at its output: the embedding, as finetune reads it). */
static int onnx_cuts(gf_ctx *ctx, const cli_opts *o, cli_probe_model *pm) {
    if (!(pm->onnx = gf_onnx_inspect(ctx, pm->path))) return cli_fail_ctx(o->cmd, ctx);
    if (pm->cuts_arg) return split_cuts(ctx, o, pm, onnx_known);
    int until = pm->cut_arg ? onnx_index(pm, pm->cut_arg) : pm->onnx->n_cuts - 1;
    if (until < 0) return onnx_unknown(o, "--cut", pm, pm->cut_arg);
    pm->n_cuts = onnx_sweep(pm, until, pm->cut, CLI_PROBE_MAX_CUTS);
    if ((pm->cut_arg || pm->kind == CLI_PROBE_SPEECH) && !pm->onnx->cuts[until].block_end &&
        pm->n_cuts < CLI_PROBE_MAX_CUTS)
        pm->cut[pm->n_cuts++] = pm->onnx->cuts[until].tensor; /* the sweep ends at --cut */
    if (pm->n_cuts == 0)
        return cli_usage_error(o->cmd, "--from %s: no block end to cut at; name the cut "
                               "points with --cuts (graft inspect lists the tensors)", pm->path);
    return CLI_CONTINUE;
}

static int onnx_open(gf_ctx *ctx, const cli_opts *o, const cli_data *d, cli_probe_model *pm) {
    int rc = onnx_cuts(ctx, o, pm);
    if (rc != CLI_CONTINUE) return rc;
    gf_onnx_options opt = gf_onnx_default_options();
    opt.cuts = pm->cut;
    opt.n_cuts = pm->n_cuts;
    if (!(pm->model = gf_onnx_load(ctx, pm->path, &opt))) return cli_fail_ctx(o->cmd, ctx);
    return onnx_check_input(ctx, o, d, pm);
}

/* ---- speech embeddings ----------------------------------------------------------------------- */

bool cli_probe_is_speech(gf_ctx *ctx, const char *path) {
    if (!cli_is_onnx(path)) return false;
    gf_onnx_info *info = gf_onnx_inspect(ctx, path);
    const gf_onnx_value_info *vi = info && info->n_inputs == 1 ? &info->inputs[0] : NULL;
    const bool yes = vi && vi->ndim == 4 && vi->dims[1] == 76 && vi->dims[2] == 32 &&
                     vi->dims[3] == 1;
    gf_onnx_info_free(info);
    gf_ctx_clear_error(ctx);
    return yes;
}

/* The chain finetune builds for a speech embedding (gf_speech_classifier), without a head and
 * with the embedding cut at pm's cut points. */
static int speech_open(gf_ctx *ctx, const cli_opts *o, const cli_data *d, cli_probe_model *pm) {
    if (d->ndim != 2 || d->shape[0] != 1) {
        char have[64];
        gf_dims_str(d->ndim, d->shape, have, sizeof have);
        return cli_usage_error(o->cmd, "--from %s is a speech embedding (its input is "
                               "openWakeWord's mel windows [batch, 76, 32, 1]): it takes audio: "
                               "data, clips as waveforms, but the samples of %s are %s", pm->path,
                               d->spec, have);
    }
    char front[4096];
    const char *slash = strrchr(pm->path, '/');
    if (o->front) snprintf(front, sizeof front, "%s", o->front);
    else if (slash) snprintf(front, sizeof front, "%.*s/melspectrogram.onnx", (int)(slash - pm->path), pm->path);
    else snprintf(front, sizeof front, "melspectrogram.onnx");
    char what[4200];
    snprintf(what, sizeof what, "--from %s: its mel model%s", pm->path,
             o->front ? ", --front" : " (--front, default beside it)");
    int rc = cli_check_input(o->cmd, what, front);
    if (rc != CLI_CONTINUE || (rc = onnx_cuts(ctx, o, pm)) != CLI_CONTINUE) return rc;
    gf_speech_params p = gf_speech_default_params();
    p.mel_path = front;
    p.samples = d->shape[1];
    p.pool = gf_speech_pool_parse(o->pool);
    p.cuts = pm->cut;
    p.n_cuts = pm->n_cuts;
    if (!(pm->model = gf_speech_classifier(ctx, pm->path, &p, NULL, &pm->speech)))
        return gf_ctx_status(ctx) == GF_ERR_INVALID
                   ? cli_usage_error(o->cmd, "--from %s: %s", pm->path, gf_ctx_error(ctx))
                   : cli_fail(o->cmd, "--from %s: %s", pm->path, gf_ctx_error(ctx));
    snprintf(pm->adapter, sizeof pm->adapter, "waveforms [1, %lld] -> %s: %lld mel frames, %lld "
             "windows of 76, pooled %s", (long long)d->shape[1], front,
             (long long)pm->speech.frames, (long long)pm->speech.windows, o->pool ? o->pool : "flat");
    return CLI_CONTINUE;
}

/* ---- bundles -------------------------------------------------------------------------------- */

static int bundle_unknown(const cli_opts *o, const char *option, const cli_probe_model *pm,
                          const char *name) {
    const char *names[1024], *sweep[8];
    int n = 0, n_sweep = 0;
    for (int i = 0; i < pm->points->n && n < 1024; i++) {
        names[n++] = pm->points->path[i];
        if (pm->points->block_end[i] && n_sweep < 8) sweep[n_sweep++] = pm->points->path[i];
    }
    return unknown_cut(o, option, pm, name, names, n, sweep, n_sweep);
}

static int bundle_known(gf_ctx *ctx, const cli_opts *o, const cli_probe_model *pm,
                        const char *name) {
    (void)ctx;
    if (gf_module_child(pm->model, name)) return 0;
    return bundle_unknown(o, "--cuts", pm, name), -1;
}

static int bundle_cuts(gf_ctx *ctx, const cli_opts *o, cli_probe_model *pm) {
    if (pm->cuts_arg) return split_cuts(ctx, o, pm, bundle_known);
    int until = pm->points->n - 1;
    if (pm->cut_arg) {
        while (until >= 0 && strcmp(pm->points->path[until], pm->cut_arg)) until--;
        if (until < 0) return bundle_unknown(o, "--cut", pm, pm->cut_arg);
    }
    for (int i = 0; i <= until && pm->n_cuts < CLI_PROBE_MAX_CUTS; i++)
        if (pm->points->block_end[i] || i == until) pm->cut[pm->n_cuts++] = pm->points->path[i];
    if (pm->n_cuts == 0)
        return cli_usage_error(o->cmd, "--from %s: the model has no module before its head to "
                               "cut at", pm->path);
    return CLI_CONTINUE;
}

static int bundle_open(gf_ctx *ctx, const cli_opts *o, const cli_data *d, cli_probe_model *pm) {
    if (!(pm->bundle = gf_bundle_load(ctx, pm->path, NULL))) return cli_fail_ctx(o->cmd, ctx);
    const gf_bundle_info *bi = &pm->bundle->info;
    if (bi->model && strcmp(bi->model, "speech") == 0)
        return cli_usage_error(o->cmd, "--from %s is a speech embedding with a trained head "
                               "(graft.model speech): graft probe takes the embedding itself, "
                               "--from the embedding_model.onnx it records in graft.speech",
                               pm->path);
    bool same = !bi->in_ndim || bi->in_ndim == d->ndim;
    for (int i = 0; same && bi->in_ndim && i < d->ndim; i++) same = bi->in_shape[i] == d->shape[i];
    if (!same) {
        char a[64], b[64];
        gf_dims_str(bi->in_ndim, bi->in_shape, a, sizeof a);
        gf_dims_str(d->ndim, d->shape, b, sizeof b);
        return cli_usage_error(o->cmd, "--from %s takes samples %s but the samples of %s are %s%s",
                               pm->path, a, d->spec, b,
                               d->ndim == 3 ? " (see --grayscale and --image-size)" : "");
    }
    pm->model = pm->bundle->model; /* the bundle's */
    if (!(pm->points = gf_transfer_points_of(ctx, pm->model, pm->bundle->head[0] ? pm->bundle->head
                                                                                  : NULL)))
        return cli_fail_ctx(o->cmd, ctx);
    int rc = bundle_cuts(ctx, o, pm);
    if (rc != CLI_CONTINUE) return rc;
    if (!(pm->norm = gf_bundle_transform(ctx, bi)) && gf_ctx_status(ctx) != GF_OK)
        return cli_fail_ctx(o->cmd, ctx);
    if (pm->norm) snprintf(pm->adapter, sizeof pm->adapter, "normalised with the file's mean and std");
    return CLI_CONTINUE;
}

/* ---- any ------------------------------------------------------------------------------------ */

static bool is_safetensors(const char *path) {
    size_t n = strlen(path);
    return n > 12 && strcmp(path + n - 12, ".safetensors") == 0;
}

int cli_probe_open(gf_ctx *ctx, const cli_opts *o, const cli_data *d, cli_probe_model *pm) {
    int rc = cli_check_input(o->cmd, "--from", pm->path);
    if (rc != CLI_CONTINUE) return rc;
    if (pm->cuts_arg && pm->cut_arg)
        return cli_usage_error(o->cmd, "--from %s: --cut ends a --cut-sweep; with --cuts the "
                               "deepest layer named ends the model", pm->path);
    if (cli_is_tfjs(pm->path)) pm->kind = CLI_PROBE_TFJS;
    else if (cli_probe_is_speech(ctx, pm->path)) pm->kind = CLI_PROBE_SPEECH;
    else if (cli_is_onnx(pm->path)) pm->kind = CLI_PROBE_ONNX;
    else if (is_safetensors(pm->path)) pm->kind = CLI_PROBE_BUNDLE;
    else
        return cli_usage_error(o->cmd, "--from %s: graft probe takes a TensorFlow.js layers "
                               "model.json, an ONNX model (.onnx) or a graft bundle "
                               "(.safetensors)", pm->path);
    rc = pm->kind == CLI_PROBE_TFJS     ? tfjs_open(ctx, o, d, pm)
         : pm->kind == CLI_PROBE_ONNX   ? onnx_open(ctx, o, d, pm)
         : pm->kind == CLI_PROBE_SPEECH ? speech_open(ctx, o, d, pm)
                                        : bundle_open(ctx, o, d, pm);
    gf_ctx_clear_error(ctx);
    return rc;
}

gf_status cli_probe_forward(gf_ctx *w, cli_probe_model *pm, gf_tensor *x, gf_tensor **outs) {
    if (pm->kind == CLI_PROBE_TFJS) {
        gf_module *in = gf_module_child(pm->model, "input");
        if (in && !(x = gf_module_forward(w, in, x))) return gf_ctx_status(w);
        return gf_tfjs_forward_layers(w, gf_module_child(pm->model, "trunk"), x, pm->cut,
                                      pm->n_cuts, outs);
    }
    if (pm->kind == CLI_PROBE_SPEECH) return gf_speech_forward_cuts(w, pm->model, x, outs, pm->n_cuts);
    if (pm->kind == CLI_PROBE_ONNX) {
        if (pm->input && !(x = gf_module_forward(w, pm->input, x))) return gf_ctx_status(w);
        int n = gf_onnx_run(w, pm->model, 1, &x, outs, pm->n_cuts);
        if (n >= 0 && n != pm->n_cuts)
            gf_ctx_set_error(w, GF_ERR_STATE, "%d outputs for %d cut points", n, pm->n_cuts);
        return gf_ctx_status(w);
    }
    if (pm->norm && !(x = gf_tf_apply(w, pm->norm, x, 0))) return gf_ctx_status(w);
    return gf_transfer_forward_points(w, pm->model, x, pm->cut, pm->n_cuts, outs);
}

void cli_probe_model_free(cli_probe_model *pm) {
    if (pm->kind != CLI_PROBE_BUNDLE) gf_module_free(pm->model);
    gf_module_free(pm->input);
    gf_bundle_free(pm->bundle);
    gf_tf_free(pm->norm);
    gf_tfjs_info_free(pm->tfjs);
    gf_onnx_info_free(pm->onnx);
    gf_transfer_points_free(pm->points);
    free(pm->cuts_copy);
    memset(pm, 0, sizeof *pm);
}
