/* graft probe: which pretrained model, cut where, for a dataset. Each candidate (--from,
 * repeatable: a TensorFlow.js model.json, an ONNX model, a speech embedding or a graft bundle)
 * runs once frozen over the data and every cut point's output is global-average-pooled (a speech
 * embedding's per window, then pooled over the clip's windows as finetune pools them) and kept;
 * per (model, cut) pair LogME and H-score rank the features without training (graft/transfer.h),
 * a linear probe trained on the cached features measures the accuracy they predict, and
 * Spearman's rank correlation over all pairs says how well the scores ranked them. */
#define _POSIX_C_SOURCE 200809L
#include "cli_probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct probe_cut {
    int model;                /* index into probe_run.models */
    const char *name;         /* borrowed from the model */
    int64_t dim;
    float *x[3];              /* pooled features of train, val, test: [n, dim] */
    double logme, hscore, accuracy, f1, score_s, train_s;
} probe_cut;

typedef struct probe_run {
    gf_ctx *ctx;
    cli_opts *o;
    cli_data d;
    int n_models;
    cli_probe_model models[CLI_MAX_LIST];
    double extract_s[CLI_MAX_LIST];
    int n_cuts;               /* over all models */
    probe_cut *cuts;
    int *rank;                /* cut indices by LogME, best first */
    int64_t n[3];
    int64_t *labels[3];
    double rho_logme, rho_hscore;
} probe_run;

/* ---- features -------------------------------------------------------------------------------- */

/* One batch's pooled outputs at the cut points c[0..n), stored at row `start` of part p. */
static gf_status store_batch(probe_run *r, gf_ctx *w, probe_cut *c, int n, int p, int64_t start,
                             int64_t nb, gf_tensor **outs) {
    static const int hw[2] = {2, 3};
    for (int k = 0; k < n; k++) {
        gf_tensor *t = outs[k];
        if (t && t->ndim == 4) t = gf_mean(w, t, hw, 2, false);
        const int64_t flat[2] = {nb, -1};
        if (t) t = gf_contiguous(w, gf_reshape(w, t, 2, flat));
        if (!t) return gf_ctx_status(w);
        if (!c[k].x[p]) {
            if (c[k].dim == 0) c[k].dim = t->shape[1];
            if (!(c[k].x[p] = malloc(sizeof(float) * (size_t)(r->n[p] * c[k].dim))))
                return gf_ctx_set_error(w, GF_ERR_NOMEM, "out of memory for the features at %s",
                                        c[k].name);
        }
        if (t->shape[1] != c[k].dim)
            return gf_ctx_set_error(w, GF_ERR_SHAPE, "cut %s gives %lld features, %lld before",
                                    c[k].name, (long long)t->shape[1], (long long)c[k].dim);
        gf_copy_out(t, c[k].x[p] + start * c[k].dim);
    }
    return GF_OK;
}

/* Part p through the frozen trunk of pm in batches. */
static gf_status extract_part(probe_run *r, gf_ctx *w, cli_probe_model *pm, probe_cut *c, int p,
                              gf_ds *ds) {
    gf_tensor *outs[CLI_PROBE_MAX_CUTS];
    int64_t bs = r->o->batch > 0 ? r->o->batch : 64, idx[4096];
    if (bs > 4096) bs = 4096;
    int64_t xshape[GF_DS_MAX_DIMS + 1];
    memcpy(xshape + 1, gf_ds_shape(ds), sizeof(int64_t) * (size_t)gf_ds_ndim(ds));
    if (!r->labels[p] && !(r->labels[p] = malloc(sizeof(int64_t) * (size_t)r->n[p])))
        return gf_ctx_set_error(w, GF_ERR_NOMEM, "out of memory for the labels");
    for (int64_t start = 0; start < r->n[p]; start += bs) {
        int64_t nb = r->n[p] - start < bs ? r->n[p] - start : bs;
        for (int64_t i = 0; i < nb; i++) idx[i] = start + i;
        xshape[0] = nb;
        gf_tensor *x = gf_empty(w, GF_F32, gf_ds_ndim(ds) + 1, xshape);
        gf_tensor *y = gf_empty(w, GF_I64, 1, &nb);
        if (!x || !y || gf_ds_batch(w, ds, idx, nb, x, y) != GF_OK ||
            cli_probe_forward(w, pm, x, outs) != GF_OK ||
            store_batch(r, w, c, pm->n_cuts, p, start, nb, outs) != GF_OK)
            return gf_ctx_status(w);
        gf_copy_out(y, r->labels[p] + start);
        gf_ctx_reset(w);
    }
    cli_log(r->o, "graft probe: %s: features of the %lld %s examples at %d cut points\n",
            pm->path, (long long)r->n[p], p == 0 ? "train" : p == 1 ? "val" : "test", pm->n_cuts);
    return GF_OK;
}

/* Every part once through model i's frozen trunk (eval mode, no autograd, a scratch context)
 * into its cut points c. */
static int extract(probe_run *r, int i, probe_cut *c) {
    const double t0 = cli_now();
    cli_probe_model *pm = &r->models[i];
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = gf_ctx_threads(r->ctx);
    cp.limits = *gf_ctx_limits(r->ctx);
    gf_ctx *w = gf_ctx_new(&cp);
    if (!w) return cli_fail(r->o->cmd, "out of memory");
    gf_ctx_set_grad_enabled(w, false);
    gf_module_train(pm->model, false);
    gf_ds *parts[3] = {r->d.train, r->d.val, r->d.test};
    gf_status st = GF_OK;
    for (int p = 0; p < 3 && st == GF_OK; p++) {
        r->n[p] = parts[p] ? gf_ds_count(parts[p]) : 0;
        if (r->n[p] > 0) st = extract_part(r, w, pm, c, p, parts[p]);
    }
    int rc = CLI_CONTINUE;
    if (st != GF_OK) {
        char cuts[256];
        int at = snprintf(cuts, sizeof cuts, "%s", pm->cut[0]);
        if (pm->n_cuts > 1 && at > 0 && (size_t)at < sizeof cuts)
            snprintf(cuts + at, sizeof cuts - (size_t)at, " .. %s", pm->cut[pm->n_cuts - 1]);
        rc = cli_fail(r->o->cmd, "--from %s: computing the features at the cut points %s: %s",
                      pm->path, cuts, gf_ctx_error(w));
    }
    gf_ctx_free(w);
    r->extract_s[i] = cli_now() - t0;
    return rc;
}

/* ---- scores and probes ------------------------------------------------------------------------ */

static int score(probe_run *r, probe_cut *c) {
    const double t0 = cli_now();
    if (gf_transfer_logme(r->ctx, c->x[0], r->n[0], c->dim, r->labels[0], r->d.n_classes,
                          &c->logme) != GF_OK ||
        gf_transfer_hscore(r->ctx, c->x[0], r->n[0], c->dim, r->labels[0], r->d.n_classes,
                           &c->hscore) != GF_OK)
        return cli_fail(r->o->cmd, "--from %s, cut %s: %s", r->models[c->model].path, c->name,
                        gf_ctx_error(r->ctx));
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

/* Orders r->rank by LogME, best first (NaN last), ties by the order probed. */
static void rank_by_logme(probe_run *r) {
    for (int k = 0; k < r->n_cuts; k++) r->rank[k] = k;
    for (int a = 1; a < r->n_cuts; a++)
        for (int b = a; b > 0; b--) {
            double x = r->cuts[r->rank[b]].logme, y = r->cuts[r->rank[b - 1]].logme;
            if (!(x > y || (isnan(y) && !isnan(x)))) break;
            int t = r->rank[b];
            r->rank[b] = r->rank[b - 1], r->rank[b - 1] = t;
        }
}

/* A speech embedding's features standardised as finetune standardises them before its head
 * (scikit-learn's StandardScaler: the training part's mean and standard deviation of each
 * number, gf_ds_channel_stats; a constant number kept as it is), in place, with the arithmetic of
 * gf_tf_normalize, so the probe at the embedding's output is finetune's head to the last digit. */
static int standardise(probe_run *r, probe_cut *c) {
    gf_ds *train = part_ds(r, c, 0);
    float *mean = malloc(sizeof(float) * (size_t)c->dim), *sd = malloc(sizeof(float) * (size_t)c->dim);
    int rc = train && mean && sd && gf_ds_channel_stats(r->ctx, train, mean, sd) == GF_OK
                 ? CLI_CONTINUE
                 : cli_fail(r->o->cmd, "--from %s, cut %s: standardising the features: %s",
                            r->models[c->model].path, c->name,
                            gf_ctx_status(r->ctx) != GF_OK ? gf_ctx_error(r->ctx) : "out of memory");
    for (int64_t j = 0; rc == CLI_CONTINUE && j < c->dim; j++)
        if (!(sd[j] > 1e-6f)) sd[j] = 1.0f;
    for (int p = 0; rc == CLI_CONTINUE && p < 3; p++)
        for (int64_t i = 0; i < r->n[p]; i++) {
            float *x = c->x[p] + i * c->dim;
            for (int64_t j = 0; j < c->dim; j++) x[j] = (x[j] - mean[j]) / sd[j];
        }
    gf_ds_free(train);
    free(mean), free(sd);
    return rc;
}

/* Model by model: the features at its cut points, then per cut the scores and the probe; the
 * features are freed before the next model runs. */
static int score_and_probe(probe_run *r) {
    double *lm = malloc(sizeof(double) * (size_t)r->n_cuts);
    double *hs = malloc(sizeof(double) * (size_t)r->n_cuts);
    double *acc = malloc(sizeof(double) * (size_t)r->n_cuts);
    int rc = lm && hs && acc ? CLI_CONTINUE : cli_fail(r->o->cmd, "out of memory");
    for (int i = 0, first = 0; i < r->n_models && rc == CLI_CONTINUE; i++) {
        probe_cut *c = r->cuts + first;
        const int n = r->models[i].n_cuts;
        rc = extract(r, i, c);
        for (int k = 0; k < n && rc == CLI_CONTINUE && r->models[i].kind == CLI_PROBE_SPEECH; k++)
            rc = standardise(r, &c[k]);
        for (int k = 0; k < n && rc == CLI_CONTINUE; k++) {
            cli_log(r->o, "graft probe: %s: cut %d / %d at %s (%lld features)\n",
                    r->models[i].path, k + 1, n, c[k].name, (long long)c[k].dim);
            if ((rc = score(r, &c[k])) == CLI_CONTINUE) rc = probe(r, &c[k]);
            lm[first + k] = c[k].logme, hs[first + k] = c[k].hscore;
            acc[first + k] = c[k].accuracy;
        }
        for (int k = 0; k < n; k++)
            for (int p = 0; p < 3; p++) free(c[k].x[p]), c[k].x[p] = NULL;
        first += n;
    }
    if (rc == CLI_CONTINUE) {
        r->rho_logme = gf_transfer_spearman(lm, acc, r->n_cuts);
        r->rho_hscore = gf_transfer_spearman(hs, acc, r->n_cuts);
        rank_by_logme(r);
    }
    free(lm), free(hs), free(acc);
    return rc;
}

/* ---- output ----------------------------------------------------------------------------------- */

/* The cut with the largest accuracy. */
static int best_accuracy(const probe_run *r) {
    int b = 0;
    for (int k = 1; k < r->n_cuts; k++)
        if (r->cuts[k].accuracy > r->cuts[b].accuracy) b = k;
    return b;
}

static int print_json(const probe_run *r, const char *part) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "command", "probe");
    cJSON_AddStringToObject(root, "data", r->d.spec);
    cJSON_AddNumberToObject(root, "train_examples", (double)r->n[0]);
    cJSON_AddStringToObject(root, "evaluated_on", part);
    cJSON_AddNumberToObject(root, "evaluated_examples", (double)(r->n[2] ? r->n[2] : r->n[1] ? r->n[1] : r->n[0]));
    cJSON_AddNumberToObject(root, "seed", (double)r->o->seed);
    cJSON *ms = cJSON_AddArrayToObject(root, "models");
    for (int i = 0; i < r->n_models; i++) {
        const cli_probe_model *pm = &r->models[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "from", pm->path);
        cJSON_AddStringToObject(e, "kind", cli_probe_kind_name(pm->kind));
        cJSON_AddStringToObject(e, "input", pm->adapter);
        cJSON_AddNumberToObject(e, "cuts", pm->n_cuts);
        cJSON_AddNumberToObject(e, "features_seconds", r->extract_s[i]);
        cJSON_AddItemToArray(ms, e);
    }
    cJSON *cs = cJSON_AddArrayToObject(root, "cuts"); /* in the order probed */
    for (int k = 0; k < r->n_cuts; k++) {
        const probe_cut *c = &r->cuts[k];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "model", c->model);
        cJSON_AddStringToObject(e, "from", r->models[c->model].path);
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
    cJSON *rk = cJSON_AddArrayToObject(root, "ranking"); /* indices into cuts, by LogME */
    for (int k = 0; k < r->n_cuts; k++) cJSON_AddItemToArray(rk, cJSON_CreateNumber(r->rank[k]));
    cJSON_AddItemToObject(root, "spearman_logme_accuracy", cli_json_num(r->rho_logme));
    cJSON_AddItemToObject(root, "spearman_hscore_accuracy", cli_json_num(r->rho_hscore));
    const probe_cut *bl = &r->cuts[r->rank[0]], *ba = &r->cuts[best_accuracy(r)];
    cJSON_AddStringToObject(root, "best_by_logme", bl->name);
    cJSON_AddStringToObject(root, "best_by_logme_from", r->models[bl->model].path);
    cJSON_AddStringToObject(root, "best_by_accuracy", ba->name);
    cJSON_AddStringToObject(root, "best_by_accuracy_from", r->models[ba->model].path);
    return cli_json_print(root);
}

/* The candidates, numbered as the table names them (#1, #2, ...). */
static void print_models(const probe_run *r) {
    for (int i = 0; i < r->n_models; i++) {
        const cli_probe_model *pm = &r->models[i];
        printf("model #%d  %s (%s, %d cut points, features %.1f s)\n", i + 1, pm->path,
               cli_probe_kind_name(pm->kind), pm->n_cuts, r->extract_s[i]);
        if (pm->adapter[0]) printf("          input %s\n", pm->adapter);
    }
}

static int print_table(const probe_run *r, const char *part) {
    if (r->o->json) return print_json(r, part);
    char desc[1024];
    cli_data_describe(&r->d, desc, sizeof desc);
    printf("probe     %d model%s on %s\n", r->n_models, r->n_models == 1 ? "" : "s", desc);
    print_models(r);
    printf("features  computed once by each frozen trunk; linear probe: %d epochs, %s, batch "
           "%lld, seed %llu\n", r->o->epochs, gf_optim_kind_name(r->o->optim),
           (long long)r->o->batch, (unsigned long long)r->o->seed);
    printf("\nranked by LogME:\n%4s %-6s %-28s %9s %10s %10s %10s\n", "rank", "model", "cut",
           "features", "LogME", "H-score", part);
    for (int k = 0; k < r->n_cuts; k++) {
        const probe_cut *c = &r->cuts[r->rank[k]];
        char model[16];
        snprintf(model, sizeof model, "#%d", c->model + 1);
        printf("%4d %-6s %-28s %9lld %10.4f %10.3f %10.4f\n", k + 1, model, c->name,
               (long long)c->dim, c->logme, c->hscore, c->accuracy);
    }
    const probe_cut *bl = &r->cuts[r->rank[0]], *ba = &r->cuts[best_accuracy(r)];
    printf("\nSpearman rank correlation with the accuracy over %d (model, cut) pairs: LogME "
           "%.3f, H-score %.3f\n", r->n_cuts, r->rho_logme, r->rho_hscore);
    printf("best by LogME: #%d at %s (accuracy %.4f); by accuracy: #%d at %s (%.4f)\n",
           bl->model + 1, bl->name, bl->accuracy, ba->model + 1, ba->name, ba->accuracy);
    const cli_probe_model *pm = &r->models[bl->model];
    if (pm->kind == CLI_PROBE_TFJS)
        printf("fine-tune from there: graft finetune --from %s --cut %s ...\n", pm->path, bl->name);
    else if (pm->kind == CLI_PROBE_SPEECH && bl->name == pm->cut[pm->n_cuts - 1])
        printf("fine-tune from there: graft finetune --from %s --freeze 'trunk.*' --pool %s "
               "--clip-seconds %g ...\n", pm->path, r->o->pool ? r->o->pool : "flat",
               r->o->clip_seconds);
    return CLI_OK;
}

/* ---- the command ------------------------------------------------------------------------------ */

static int check_options(const cli_opts *o) {
    if (o->n_from == 0)
        return cli_usage_error(o->cmd, "--from is required (a TensorFlow.js model.json, an ONNX "
                               "model or a graft bundle; repeat it to rank several)");
    if (o->cuts && o->cut_sweep) return cli_usage_error(o->cmd, "--cuts or --cut-sweep, not both");
    if (o->augment) return cli_usage_error(o->cmd, "--augment does not apply: the features are "
                                           "computed once");
    return CLI_CONTINUE;
}

/* A speech embedding among the candidates reads audio: data as finetune does (the clips as
 * waveforms, 1.5 s unless --clip-seconds, centred on their energy unless --align): set before
 * the data is read. One elsewhere is refused, naming the file; --pool and --front need one. */
static int speech_data(gf_ctx *ctx, cli_opts *o) {
    const char *speech = NULL;
    for (int i = 0; i < o->n_from && !speech; i++)
        if (cli_probe_is_speech(ctx, o->froms[i])) speech = o->froms[i];
    if (!speech)
        return o->pool || o->front
                   ? cli_usage_error(o->cmd, "%s applies to a speech embedding (openWakeWord's "
                                     "embedding_model.onnx) among the --from candidates",
                                     o->pool ? "--pool" : "--front")
                   : CLI_CONTINUE;
    const char *kind = o->data ? gf_ds_spec_kind(o->data) : NULL;
    if (!kind || strcmp(kind, "audio") != 0)
        return cli_usage_error(o->cmd, "--from %s is a speech embedding (its input is "
                               "openWakeWord's mel windows [batch, 76, 32, 1]): it takes audio: "
                               "data, not %s", speech, o->data ? o->data : "(no --data)");
    o->waveform = true;
    if (!(o->clip_seconds > 0)) o->clip_seconds = 1.5;
    if (!o->align) o->align = "energy";
    return CLI_CONTINUE;
}

static void run_free(probe_run *r) {
    for (int k = 0; k < r->n_cuts && r->cuts; k++)
        for (int p = 0; p < 3; p++) free(r->cuts[k].x[p]);
    for (int p = 0; p < 3; p++) free(r->labels[p]);
    for (int i = 0; i < r->n_models; i++) cli_probe_model_free(&r->models[i]);
    free(r->cuts);
    free(r->rank);
    cli_data_free(&r->d);
    gf_ctx_free(r->ctx);
    free(r);
}

/* Every candidate opened (a failure names its file and stops before any work), then one list
 * of the (model, cut) pairs. */
static int open_models(probe_run *r) {
    for (int i = 0; i < r->o->n_from; i++) {
        cli_probe_model *pm = &r->models[r->n_models++];
        pm->path = r->o->froms[i];
        pm->cuts_arg = r->o->from_cuts[i];
        pm->cut_arg = r->o->from_cut[i];
        int rc = cli_probe_open(r->ctx, r->o, &r->d, pm);
        if (rc != CLI_CONTINUE) return rc;
        r->n_cuts += pm->n_cuts;
    }
    r->cuts = calloc((size_t)r->n_cuts, sizeof *r->cuts);
    r->rank = calloc((size_t)r->n_cuts, sizeof *r->rank);
    if (!r->cuts || !r->rank) return cli_fail(r->o->cmd, "out of memory");
    for (int i = 0, k = 0; i < r->n_models; i++)
        for (int j = 0; j < r->models[i].n_cuts; j++, k++)
            r->cuts[k].model = i, r->cuts[k].name = r->models[i].cut[j];
    return CLI_CONTINUE;
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
    if ((rc = speech_data(r->ctx, o)) == CLI_CONTINUE &&
        (rc = cli_data_load(r->ctx, o, &r->d)) == CLI_CONTINUE && r->d.n_classes < 2)
        rc = cli_usage_error(o->cmd, "%s: graft probe needs a classification target with at "
                             "least 2 classes", o->data);
    if (rc == CLI_CONTINUE && (r->d.train_tf || r->d.eval_tf))
        rc = cli_usage_error(o->cmd, "--normalize does not apply: the trunk takes the data as "
                             "it is");
    const char *part = NULL;
    if (rc == CLI_CONTINUE && (rc = open_models(r)) == CLI_CONTINUE &&
        (rc = score_and_probe(r)) == CLI_CONTINUE) {
        cli_final_part(&r->d, &part);
        rc = print_table(r, part);
    }
    run_free(r);
    return rc;
}
