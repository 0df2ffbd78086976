/* Models named on the command line and weight files, through the library's bundles
 * (graft/bundle.h): the options become gf_bundle_opts, and the errors that are the command
 * line's fault (a model that does not fit the data's kind, a delta without its base) exit 2 in
 * the options' own words. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdlib.h>
#include <string.h>

int cli_check_model_arg(const char *cmd, const char *option, const char *arg) {
    if (!arg || cli_is_zoo(arg) || cli_is_file(arg)) return CLI_CONTINUE;
    if (strchr(arg, '/') || strstr(arg, ".json"))
        return cli_usage_error(cmd, "%s %s: no such file", option, arg);
    return cli_usage_error(cmd, "unknown model '%s' (zoo: mlp, lenet, cnn-small, resnet-mini, resnet18, "
                                "resnet34, resnet50; or "
                                "a model spec file .json)", arg);
}

bool cli_is_zoo(const char *arg) {
    for (const char *const *n = gf_zoo_names(); arg && *n; n++)
        if (strcmp(*n, arg) == 0) return true;
    return false;
}

void cli_model_free(cli_model *m) {
    gf_bundle_free(m->b);
    free(m->spec_path);
    memset(m, 0, sizeof *m);
}

const char *cli_model_desc(const cli_model *m) {
    return m->spec_path ? m->spec_path : m->b->info.model;
}

int cli_model_build(gf_ctx *ctx, const cli_opts *o, const char *arg, const gf_bundle_info *meta,
                    const cli_data *d, int n_classes, cli_model *out) {
    memset(out, 0, sizeof *out);
    int rc = cli_check_model_arg(o->cmd, "--model", arg);
    if (rc != CLI_CONTINUE) return rc;
    const char *name = arg ? arg : meta ? meta->model : NULL;
    const bool described = meta && ((strcmp(name ? name : "", "spec") == 0 && meta->spec) ||
                                    (strcmp(name ? name : "", "tfjs") == 0 && meta->tfjs) ||
                                    (strcmp(name ? name : "", "speech") == 0 && meta->speech));
    if (!name || (!cli_is_zoo(name) && !arg && !described))
        return cli_usage_error(o->cmd, "--model is required (the weights file does not name its "
                                       "model)");
    gf_bundle_opts bo = gf_bundle_default_opts();
    bo.model = arg;
    bo.command = o->cmd;
    bo.max_image_pixels = o->max_image_pixels;
    /* the widths the file records stand unless --hidden is given or --model names the model */
    if (arg || o->hidden_given || !meta) memcpy(bo.hidden, o->hidden, sizeof bo.hidden);
    gf_bundle_info info;
    memset(&info, 0, sizeof info);
    if (meta) info = *meta; /* a shallow copy: gf_bundle_build copies what it keeps */
    else if (gf_bundle_info_set_data(ctx, &info, d) != GF_OK) return cli_fail_ctx(o->cmd, ctx);
    if (meta && d) { /* the data's samples (checked against the file's where it records them) */
        info.in_ndim = d->ndim;
        memcpy(info.in_shape, d->shape, sizeof info.in_shape);
    }
    /* a zoo net asked to read samples it cannot take is the command line's mistake */
    const int ndim = info.in_ndim;
    const bool unfit = cli_is_zoo(name) && !(ndim == 3 || (ndim == 1 && strcmp(name, "mlp") == 0));
    out->b = gf_bundle_build(ctx, &info, n_classes, &bo, NULL);
    if (!meta) gf_bundle_info_free(&info);
    if (!out->b) return unfit ? cli_usage_error(o->cmd, "%s", gf_ctx_error(ctx)) : cli_fail_ctx(o->cmd, ctx);
    if (arg && !cli_is_zoo(arg) && !(out->spec_path = strdup(arg))) {
        cli_model_free(out);
        return cli_fail(o->cmd, "out of memory");
    }
    return CLI_CONTINUE;
}

/* The command and the data as the bundle will record them. */
static int describe(gf_ctx *ctx, const cli_opts *o, cli_model *cm, const cli_data *d) {
    gf_bundle_info *info = &cm->b->info;
    char *cmd = strdup(o->cmd);
    if (!cmd) return cli_fail(o->cmd, "out of memory");
    free(info->command);
    info->command = cmd;
    if (d && gf_bundle_info_set_data(ctx, info, d) != GF_OK) return cli_fail_ctx(o->cmd, ctx);
    return CLI_CONTINUE;
}

int cli_save_weights(gf_ctx *ctx, const cli_opts *o, cli_model *cm, const cli_data *d,
                     const char *path, const char *const *extra, int n_extra) {
    int rc = describe(ctx, o, cm, d);
    if (rc == CLI_CONTINUE && gf_bundle_save(ctx, cm->b, path, extra, n_extra) != GF_OK)
        rc = cli_fail(o->cmd, "writing %s: %s", path, gf_ctx_error(ctx));
    return rc;
}

int cli_save_delta(gf_ctx *ctx, const cli_opts *o, cli_model *cm, const cli_data *d,
                   const char *base, const gf_weights_options *base_map, const char *path,
                   const char *const *extra, int n_extra, int *n_written) {
    int rc = describe(ctx, o, cm, d);
    if (rc == CLI_CONTINUE &&
        gf_bundle_save_delta(ctx, cm->b, base, base_map, path, extra, n_extra, n_written) != GF_OK)
        rc = cli_fail(o->cmd, "writing the delta %s: %s", path, gf_ctx_error(ctx));
    return rc;
}

bool cli_meta_fits_samples(const char *cmd, const char *path, const gf_bundle_info *meta,
                           const cli_data *d) {
    if (!meta->in_ndim) return true;
    bool same = meta->in_ndim == d->ndim;
    for (int i = 0; same && i < d->ndim; i++) same = meta->in_shape[i] == d->shape[i];
    if (same) return true;
    char a[64], b[64];
    gf_dims_str(meta->in_ndim, meta->in_shape, a, sizeof a);
    gf_dims_str(d->ndim, d->shape, b, sizeof b);
    cli_fail(cmd, "%s was trained on samples %s but %s has samples %s%s", path, a, d->spec, b,
             d->ndim == 3 ? " (see --grayscale and --image-size)" : "");
    return false;
}

int cli_meta_open(gf_ctx *ctx, const cli_opts *o, const char *path, gf_bundle_info *meta) {
    return gf_bundle_info_load(ctx, path, meta) == GF_OK ? CLI_CONTINUE : cli_fail_ctx(o->cmd, ctx);
}

int cli_load_weights(gf_ctx *ctx, const cli_opts *o, const char *path, const char *base,
                     const gf_bundle_info *meta, cli_model *cm) {
    if (meta->is_delta) {
        const char *b = base ? base : meta->base;
        if (!b)
            return cli_usage_error(o->cmd, "%s is a delta checkpoint; give the file it was "
                                           "written against with --base", path);
        if (!cli_is_file(b))
            return cli_usage_error(o->cmd, "%s is a delta against %s, which does not exist (give "
                                           "it with --base)", path, b);
    }
    gf_weights_report *rep = NULL;
    if (gf_bundle_load_weights(ctx, cm->b, path, base, &rep) != GF_OK) {
        cli_fail_ctx(o->cmd, ctx);
        if (rep) gf_weights_report_print(rep, stderr, false);
        gf_weights_report_free(rep);
        return CLI_FAILED;
    }
    return CLI_CONTINUE;
}

int cli_save_rebuilt(gf_ctx *ctx, const cli_opts *o, gf_module *model, const cli_data *d,
                     const char *kind, const char *json) {
    gf_bundle b;
    memset(&b, 0, sizeof b);
    b.model = model;
    snprintf(b.head, sizeof b.head, "head");
    char **how = strcmp(kind, "tfjs") == 0 ? &b.info.tfjs : &b.info.speech;
    int rc = CLI_CONTINUE;
    if (!json || gf_bundle_info_set_data(ctx, &b.info, d) != GF_OK ||
        !(b.info.model = strdup(kind)) || !(*how = strdup(json)) ||
        !(b.info.command = strdup(o->cmd)))
        rc = gf_ctx_status(ctx) != GF_OK ? cli_fail_ctx(o->cmd, ctx) : cli_fail(o->cmd, "out of memory");
    const char *meta[] = {"graft.from", o->from};
    if (rc == CLI_CONTINUE && gf_bundle_save(ctx, &b, o->out, meta, 1) != GF_OK)
        rc = cli_fail(o->cmd, "writing %s: %s", o->out, gf_ctx_error(ctx));
    gf_bundle_info_free(&b.info);
    return rc;
}

int cli_apply_freezing(gf_ctx *ctx, const cli_opts *o, gf_module *m) {
    if (o->train_last >= 0 && gf_transfer_freeze_all_but(ctx, m, o->train_last) < 0)
        return cli_usage_error(o->cmd, "--train-last: %s", gf_ctx_error(ctx));
    for (int i = 0; i < o->n_freeze; i++)
        if (gf_transfer_freeze(ctx, m, o->freeze[i]) < 0)
            return cli_usage_error(o->cmd, "--freeze: %s", gf_ctx_error(ctx));
    for (int i = 0; i < o->n_unfreeze; i++)
        if (gf_transfer_unfreeze(ctx, m, o->unfreeze[i]) < 0)
            return cli_usage_error(o->cmd, "--unfreeze: %s", gf_ctx_error(ctx));
    return CLI_CONTINUE;
}

int cli_cache_head_features(gf_ctx *ctx, const cli_opts *o, gf_module *model, const cli_data *d,
                            int64_t features, const char *what, const char *items, cli_data *fd,
                            double *seconds) {
    const double t0 = cli_now();
    gf_ds *const src[3] = {d->train, d->val, d->test};
    gf_ds *dst[3] = {NULL, NULL, NULL};
    int64_t n = 0;
    for (int i = 0; i < 3; i++) {
        if (!src[i]) continue;
        if (!(dst[i] = gf_transfer_cache_features(ctx, model, "head", src[i], o->batch))) {
            for (int k = 0; k < i; k++) gf_ds_free(dst[k]);
            return cli_fail_ctx(o->cmd, ctx);
        }
        n += gf_ds_count(src[i]);
    }
    *fd = *d;
    fd->train = dst[0], fd->val = dst[1], fd->test = dst[2];
    fd->ndim = 1;
    fd->shape[0] = features;
    *seconds = cli_now() - t0;
    cli_log(o, "graft %s: %s is frozen: its features of %lld %s computed once (%.1f s)\n", o->cmd,
            what, (long long)n, items, *seconds);
    return CLI_CONTINUE;
}

void cli_cached_free(cli_data *fd) {
    gf_ds_free(fd->train);
    gf_ds_free(fd->val);
    gf_ds_free(fd->test);
    fd->train = fd->val = fd->test = NULL;
}
