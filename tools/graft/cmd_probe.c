/* graft probe: where to cut a pretrained TensorFlow.js model for a dataset. The frozen trunk
 * runs once over the data and every cut point's output is global-average-pooled and kept; per
 * cut point LogME and H-score rank the features without training (graft/transfer.h), a linear
 * probe trained on the cached features measures the accuracy they predict, and Spearman's rank
 * correlation says how well the scores ranked the cuts. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/tfjs.h"

enum { PROBE_MAX_CUTS = 256 };

typedef struct probe_cut {
    const char *name;         /* borrowed from the trunk or the --cuts copy */
    int64_t dim;
    float *x[3];              /* pooled features of train, val, test: [n, dim] */
    double logme, hscore, accuracy, f1, score_s, train_s;
} probe_cut;

typedef struct probe_run {
    gf_ctx *ctx;
    cli_opts *o;
    cli_data d;
    gf_module *model;         /* the classifier: input adapter, trunk, pool, flatten, head */
    gf_tfjs_info *info;
    char end[160], adapter[256];
    char *cuts_copy;          /* --cuts, split in place */
    int n_cuts;
    probe_cut cuts[PROBE_MAX_CUTS];
    int64_t n[3];
    int64_t *labels[3];
    double extract_s;
    double rho_logme, rho_hscore;
} probe_run;

/* ---- the model and the cut points ---------------------------------------------------------- */

/* The classifier cut at `cut` (NULL: the input of the last Dense layer). */
static int build(probe_run *r, const char *cut) {
    gf_module_free(r->model);
    gf_tfjs_info_free(r->info);
    r->model = NULL, r->info = NULL;
    gf_tfjs_classifier_params p = gf_tfjs_classifier_default_params();
    p.cut = cut;
    p.input_size = r->o->input_size;
    p.data_ndim = r->d.ndim;
    memcpy(p.data_shape, r->d.shape, sizeof(int64_t) * (size_t)r->d.ndim);
    p.n_classes = r->d.n_classes;
    gf_rng rng;
    gf_rng_seed(&rng, r->o->seed);
    gf_tfjs_classifier_info ti;
    if (!(r->model = gf_tfjs_classifier(r->ctx, r->o->from, &p, &rng, &ti)))
        return gf_ctx_status(r->ctx) == GF_ERR_INVALID
                   ? cli_usage_error(r->o->cmd, "%s", gf_ctx_error(r->ctx))
                   : cli_fail_ctx(r->o->cmd, r->ctx);
    r->info = ti.trunk;
    snprintf(r->end, sizeof r->end, "%s", ti.cut);
    snprintf(r->adapter, sizeof r->adapter, "%s", ti.adapter);
    return CLI_CONTINUE;
}

/* Index of layer name in the file, or -1 after printing the usage error (with a near name). */
static int layer_index(const probe_run *r, const char *name) {
    const char *names[1024];
    int n = 0;
    for (int i = 0; i < r->info->n_layers; i++) {
        if (strcmp(r->info->layers[i].name, name) == 0) return i;
        if (n < 1024) names[n++] = r->info->layers[i].name;
    }
    const char *near = cli_nearest(name, names, n);
    cli_usage_error(r->o->cmd, "--cuts: %s has no layer \"%s\"%s%s%s (graft inspect %s lists "
                    "them)", r->o->from, name, near ? "; did you mean \"" : "", near ? near : "",
                    near ? "\"?" : "", r->o->from);
    return -1;
}

/* --cuts A,B,...: the names, and the model rebuilt to end at the deepest of them. */
static int cuts_from_list(probe_run *r) {
    if (!(r->cuts_copy = strdup(r->o->cuts))) return cli_fail(r->o->cmd, "out of memory");
    int deepest = -1;
    char *save = NULL;
    for (char *t = strtok_r(r->cuts_copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (r->n_cuts == PROBE_MAX_CUTS)
            return cli_usage_error(r->o->cmd, "--cuts: at most %d layers", PROBE_MAX_CUTS);
        int i = layer_index(r, t);
        if (i < 0) return CLI_USAGE;
        for (int k = 0; k < r->n_cuts; k++)
            if (strcmp(r->cuts[k].name, t) == 0)
                return cli_usage_error(r->o->cmd, "--cuts: %s is named twice", t);
        if (i > deepest) deepest = i;
        r->cuts[r->n_cuts++].name = t;
    }
    if (r->n_cuts == 0) return cli_usage_error(r->o->cmd, "--cuts: no layer named");
    char end[160];
    snprintf(end, sizeof end, "%s", r->info->layers[deepest].name); /* build frees r->info */
    return strcmp(end, r->end) == 0 ? CLI_CONTINUE : build(r, end);
}

/* The cut points: --cuts, else every block end up to --cut (default: the input of the last
 * Dense layer). */
static int choose_cuts(probe_run *r) {
    char first[160] = ""; /* --cuts: built first at the first layer named, for the names */
    if (r->o->cuts) snprintf(first, sizeof first, "%.*s", (int)strcspn(r->o->cuts, ","), r->o->cuts);
    int rc = build(r, r->o->cuts ? first : r->o->cut);
    if (rc != CLI_CONTINUE) {
        if (!r->o->cuts && !r->o->cut)
            fprintf(stderr, "graft probe: the sweep ends at the input of the last Dense layer; "
                    "end it earlier with --cut LAYER (graft inspect lists them)\n");
        return rc;
    }
    if (r->o->cuts) return cuts_from_list(r);
    const char *names[PROBE_MAX_CUTS];
    int n = gf_tfjs_block_ends(r->ctx, gf_module_child(r->model, "trunk"), names, PROBE_MAX_CUTS);
    if (n < 0) return cli_fail_ctx(r->o->cmd, r->ctx);
    r->n_cuts = n < PROBE_MAX_CUTS ? n : PROBE_MAX_CUTS;
    for (int k = 0; k < r->n_cuts; k++) r->cuts[k].name = names[k];
    return CLI_CONTINUE;
}

/* ---- features -------------------------------------------------------------------------------- */

/* One batch's pooled outputs at every cut point, stored at row `start` of part p. */
static gf_status store_batch(probe_run *r, gf_ctx *w, int p, int64_t start, int64_t nb,
                             gf_tensor **outs) {
    static const int hw[2] = {2, 3};
    for (int k = 0; k < r->n_cuts; k++) {
        gf_tensor *t = outs[k];
        if (t && t->ndim == 4) t = gf_mean(w, t, hw, 2, false);
        const int64_t flat[2] = {nb, -1};
        if (t) t = gf_contiguous(w, gf_reshape(w, t, 2, flat));
        if (!t) return gf_ctx_status(w);
        probe_cut *c = &r->cuts[k];
        if (!c->x[p]) {
            if (c->dim == 0) c->dim = t->shape[1];
            if (!(c->x[p] = malloc(sizeof(float) * (size_t)(r->n[p] * c->dim))))
                return gf_ctx_set_error(w, GF_ERR_NOMEM, "out of memory for the features at %s",
                                        c->name);
        }
        gf_copy_out(t, c->x[p] + start * c->dim);
    }
    return GF_OK;
}

/* Part p through the frozen trunk in batches. */
static gf_status extract_part(probe_run *r, gf_ctx *w, int p, gf_ds *ds) {
    gf_module *in = gf_module_child(r->model, "input"), *trunk = gf_module_child(r->model, "trunk");
    const char *names[PROBE_MAX_CUTS];
    gf_tensor *outs[PROBE_MAX_CUTS];
    for (int k = 0; k < r->n_cuts; k++) names[k] = r->cuts[k].name;
    int64_t bs = r->o->batch > 0 ? r->o->batch : 64, idx[4096];
    if (bs > 4096) bs = 4096;
    int64_t xshape[GF_DS_MAX_DIMS + 1];
    memcpy(xshape + 1, gf_ds_shape(ds), sizeof(int64_t) * (size_t)gf_ds_ndim(ds));
    if (!(r->labels[p] = malloc(sizeof(int64_t) * (size_t)r->n[p])))
        return gf_ctx_set_error(w, GF_ERR_NOMEM, "out of memory for the labels");
    for (int64_t start = 0; start < r->n[p]; start += bs) {
        int64_t nb = r->n[p] - start < bs ? r->n[p] - start : bs;
        for (int64_t i = 0; i < nb; i++) idx[i] = start + i;
        xshape[0] = nb;
        gf_tensor *x = gf_empty(w, GF_F32, gf_ds_ndim(ds) + 1, xshape);
        gf_tensor *y = gf_empty(w, GF_I64, 1, &nb);
        if (!x || !y || gf_ds_batch(w, ds, idx, nb, x, y) != GF_OK) return gf_ctx_status(w);
        if (in && !(x = gf_module_forward(w, in, x))) return gf_ctx_status(w);
        if (gf_tfjs_forward_layers(w, trunk, x, names, r->n_cuts, outs) != GF_OK ||
            store_batch(r, w, p, start, nb, outs) != GF_OK)
            return gf_ctx_status(w);
        gf_copy_out(y, r->labels[p] + start);
        gf_ctx_reset(w);
    }
    cli_log(r->o, "graft probe: features of the %lld %s examples at %d cut points\n",
            (long long)r->n[p], p == 0 ? "train" : p == 1 ? "val" : "test", r->n_cuts);
    return GF_OK;
}

/* Every part once through the frozen trunk (eval mode, no autograd, a scratch context). */
static int extract(probe_run *r) {
    const double t0 = cli_now();
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = gf_ctx_threads(r->ctx);
    cp.limits = *gf_ctx_limits(r->ctx);
    gf_ctx *w = gf_ctx_new(&cp);
    if (!w) return cli_fail(r->o->cmd, "out of memory");
    gf_ctx_set_grad_enabled(w, false);
    gf_module_train(r->model, false);
    gf_ds *parts[3] = {r->d.train, r->d.val, r->d.test};
    gf_status st = GF_OK;
    for (int p = 0; p < 3 && st == GF_OK; p++) {
        r->n[p] = parts[p] ? gf_ds_count(parts[p]) : 0;
        if (r->n[p] > 0) st = extract_part(r, w, p, parts[p]);
    }
    int rc = st == GF_OK ? CLI_CONTINUE
                         : cli_fail(r->o->cmd, "computing the features: %s", gf_ctx_error(w));
    gf_ctx_free(w);
    r->extract_s = cli_now() - t0;
    return rc;
}

/* ---- scores and probes ------------------------------------------------------------------------ */

static int score(probe_run *r, probe_cut *c) {
    const double t0 = cli_now();
    if (gf_transfer_logme(r->ctx, c->x[0], r->n[0], c->dim, r->labels[0], r->d.n_classes,
                          &c->logme) != GF_OK ||
        gf_transfer_hscore(r->ctx, c->x[0], r->n[0], c->dim, r->labels[0], r->d.n_classes,
                           &c->hscore) != GF_OK)
        return cli_fail(r->o->cmd, "cut %s: %s", c->name, gf_ctx_error(r->ctx));
    c->score_s = cli_now() - t0;
    return CLI_CONTINUE;
}

/* Part p of cut c as an in-memory dataset (NULL when the part is empty or on error). */
static gf_ds *part_ds(probe_run *r, const probe_cut *c, int p) {
    if (r->n[p] == 0) return NULL;
    gf_ds_desc dd;
    memset(&dd, 0, sizeof dd);
    dd.ndim = 1;
    dd.shape[0] = c->dim;
    dd.n = r->n[p];
    dd.x_f32 = c->x[p];
    dd.labels = r->labels[p];
    dd.n_classes = r->d.n_classes;
    dd.class_names = (const char *const *)r->d.class_names;
    dd.name = c->name;
    return gf_ds_from_memory(r->ctx, &dd);
}

/* A new Linear head trained on cut c's cached training features, evaluated on the final part. */
static int probe(probe_run *r, probe_cut *c) {
    const double t0 = cli_now();
    cli_data fd = r->d; /* a shallow copy: names and spec stay r->d's */
    fd.train = part_ds(r, c, 0), fd.val = part_ds(r, c, 1), fd.test = part_ds(r, c, 2);
    fd.ndim = 1, fd.shape[0] = c->dim;
    fd.train_tf = fd.eval_tf = NULL;
    gf_rng rng;
    gf_rng_seed(&rng, r->o->seed ^ 0x68656164ULL);
    gf_module *head = fd.train ? gf_nn_linear(r->ctx, &rng, c->dim, r->d.n_classes, true) : NULL;
    cli_fit_setup setup = {.loss = gf_loss_default(GF_LOSS_CROSS_ENTROPY), .trunk_factor = 1};
    cli_fit_out fo;
    memset(&fo, 0, sizeof fo);
    cli_eval ev;
    memset(&ev, 0, sizeof ev);
    int rc = head ? CLI_CONTINUE : cli_fail_ctx(r->o->cmd, r->ctx);
    const char *part;
    if (rc == CLI_CONTINUE && (rc = cli_fit(r->ctx, r->o, head, &fd, &setup, &fo)) == CLI_CONTINUE)
        rc = fo.interrupted ? CLI_FAILED
                            : cli_evaluate(r->ctx, r->o->cmd, head, cli_final_part(&fd, &part),
                                           NULL, r->o->batch, &ev);
    c->accuracy = ev.accuracy, c->f1 = ev.f1;
    c->train_s = cli_now() - t0;
    cli_eval_free(&ev);
    cli_fit_out_free(&fo);
    gf_module_free(head);
    gf_ds_free(fd.train);
    gf_ds_free(fd.val);
    gf_ds_free(fd.test);
    return rc;
}

static int score_and_probe(probe_run *r) {
    double lm[PROBE_MAX_CUTS], hs[PROBE_MAX_CUTS], acc[PROBE_MAX_CUTS];
    for (int k = 0; k < r->n_cuts; k++) {
        probe_cut *c = &r->cuts[k];
        cli_log(r->o, "graft probe: cut %d / %d at %s (%lld features)\n", k + 1, r->n_cuts,
                c->name, (long long)c->dim);
        int rc = score(r, c);
        if (rc != CLI_CONTINUE || (rc = probe(r, c)) != CLI_CONTINUE) return rc;
        lm[k] = c->logme, hs[k] = c->hscore, acc[k] = c->accuracy;
    }
    r->rho_logme = gf_transfer_spearman(lm, acc, r->n_cuts);
    r->rho_hscore = gf_transfer_spearman(hs, acc, r->n_cuts);
    return CLI_CONTINUE;
}

/* ---- output ----------------------------------------------------------------------------------- */

/* The cut with the largest value of field (accuracy or logme). */
static int best(const probe_run *r, bool by_logme) {
    int b = 0;
    for (int k = 1; k < r->n_cuts; k++)
        if (by_logme ? r->cuts[k].logme > r->cuts[b].logme
                     : r->cuts[k].accuracy > r->cuts[b].accuracy)
            b = k;
    return b;
}

static int print_json(const probe_run *r, const char *part) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "command", "probe");
    cJSON_AddStringToObject(root, "from", r->o->from);
    cJSON_AddStringToObject(root, "data", r->d.spec);
    cJSON_AddStringToObject(root, "input", r->adapter);
    cJSON_AddNumberToObject(root, "train_examples", (double)r->n[0]);
    cJSON_AddStringToObject(root, "evaluated_on", part);
    cJSON_AddNumberToObject(root, "evaluated_examples", (double)(r->n[2] ? r->n[2] : r->n[1] ? r->n[1] : r->n[0]));
    cJSON_AddNumberToObject(root, "seed", (double)r->o->seed);
    cJSON_AddNumberToObject(root, "features_seconds", r->extract_s);
    cJSON *cs = cJSON_AddArrayToObject(root, "cuts");
    for (int k = 0; k < r->n_cuts; k++) {
        const probe_cut *c = &r->cuts[k];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "cut", c->name);
        cJSON_AddNumberToObject(e, "features", (double)c->dim);
        cli_json_add_num(e, "logme", c->logme);
        cli_json_add_num(e, "hscore", c->hscore);
        cli_json_add_num(e, "accuracy", c->accuracy);
        cli_json_add_num(e, "f1", c->f1);
        cJSON_AddNumberToObject(e, "score_seconds", c->score_s);
        cJSON_AddNumberToObject(e, "probe_seconds", c->train_s);
        cJSON_AddItemToArray(cs, e);
    }
    cJSON_AddItemToObject(root, "spearman_logme_accuracy", cli_json_num(r->rho_logme));
    cJSON_AddItemToObject(root, "spearman_hscore_accuracy", cli_json_num(r->rho_hscore));
    cJSON_AddStringToObject(root, "best_by_logme", r->cuts[best(r, true)].name);
    cJSON_AddStringToObject(root, "best_by_accuracy", r->cuts[best(r, false)].name);
    return cli_json_print(root);
}

static int print_table(const probe_run *r, const char *part) {
    if (r->o->json) return print_json(r, part);
    char desc[1024];
    cli_data_describe(&r->d, desc, sizeof desc);
    printf("probe     %s on %s\n", r->o->from, desc);
    if (r->adapter[0]) printf("input     %s\n", r->adapter);
    printf("features  computed once by the frozen trunk at %d cut points (%.1f s); linear probe: "
           "%d epochs, %s, batch %lld, seed %llu\n", r->n_cuts, r->extract_s, r->o->epochs,
           gf_optim_kind_name(r->o->optim), (long long)r->o->batch,
           (unsigned long long)r->o->seed);
    printf("\n%-28s %9s %10s %10s %10s\n", "cut", "features", "LogME", "H-score",
           part);
    for (int k = 0; k < r->n_cuts; k++) {
        const probe_cut *c = &r->cuts[k];
        printf("%-28s %9lld %10.4f %10.3f %10.4f\n", c->name, (long long)c->dim, c->logme,
               c->hscore, c->accuracy);
    }
    int bl = best(r, true), ba = best(r, false);
    printf("\nSpearman rank correlation with the accuracy over %d cuts: LogME %.3f, H-score "
           "%.3f\n", r->n_cuts, r->rho_logme, r->rho_hscore);
    printf("best cut by LogME: %s (accuracy %.4f); by accuracy: %s (%.4f)\n",
           r->cuts[bl].name, r->cuts[bl].accuracy, r->cuts[ba].name, r->cuts[ba].accuracy);
    printf("fine-tune from there: graft finetune --from %s --cut %s ...\n", r->o->from,
           r->cuts[bl].name);
    return CLI_OK;
}

/* ---- the command ------------------------------------------------------------------------------ */

static int check_options(const cli_opts *o) {
    if (!o->from) return cli_usage_error(o->cmd, "--from is required (a TensorFlow.js model.json)");
    int rc = cli_check_input(o->cmd, "--from", o->from);
    if (rc != CLI_CONTINUE) return rc;
    if (!cli_is_tfjs(o->from))
        return cli_usage_error(o->cmd, "--from %s: graft probe takes a TensorFlow.js layers "
                               "model.json (ONNX models and safetensors files: not yet)", o->from);
    if (o->cuts && o->cut_sweep) return cli_usage_error(o->cmd, "--cuts or --cut-sweep, not both");
    if (o->cuts && o->cut)
        return cli_usage_error(o->cmd, "--cut ends a --cut-sweep; with --cuts the deepest layer "
                               "named ends the model");
    if (o->augment) return cli_usage_error(o->cmd, "--augment does not apply: the features are "
                                           "computed once");
    return CLI_CONTINUE;
}

static void run_free(probe_run *r) {
    for (int k = 0; k < r->n_cuts; k++)
        for (int p = 0; p < 3; p++) free(r->cuts[k].x[p]);
    for (int p = 0; p < 3; p++) free(r->labels[p]);
    free(r->cuts_copy);
    gf_module_free(r->model);
    gf_tfjs_info_free(r->info);
    cli_data_free(&r->d);
    gf_ctx_free(r->ctx);
    free(r);
}

int cmd_probe(cli_opts *o) {
    int rc = check_options(o);
    if (rc != CLI_CONTINUE) return rc;
    probe_run *r = calloc(1, sizeof *r);
    if (!r || !(r->ctx = cli_context(o))) {
        free(r);
        return CLI_FAILED;
    }
    r->o = o;
    if ((rc = cli_data_load(r->ctx, o, &r->d)) == CLI_CONTINUE && r->d.n_classes < 2)
        rc = cli_usage_error(o->cmd, "%s: graft probe needs a classification target with at "
                             "least 2 classes", o->data);
    if (rc == CLI_CONTINUE && (r->d.train_tf || r->d.eval_tf))
        rc = cli_usage_error(o->cmd, "--normalize does not apply: the trunk takes the data as "
                             "it is");
    const char *part = NULL;
    if (rc == CLI_CONTINUE && (rc = choose_cuts(r)) == CLI_CONTINUE &&
        (rc = extract(r)) == CLI_CONTINUE && (rc = score_and_probe(r)) == CLI_CONTINUE) {
        cli_final_part(&r->d, &part);
        rc = print_table(r, part);
    }
    run_free(r);
    return rc;
}
