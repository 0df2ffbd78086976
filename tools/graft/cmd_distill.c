/* graft distill: a student trained on alpha * T^2 * KL(teacher/T || student/T) + (1 - alpha) *
 * cross-entropy. The loop is written out (it needs each batch's example indices to look up the
 * cached teacher logits): batch, student forward, teacher logits, loss, then gf_train_step
 * (backward, clipping, optimizer and schedule steps). */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct distill_run {
    gf_ctx *ctx;
    const cli_opts *o;
    gf_module *student, *teacher;
    gf_teacher_cache *cache; /* NULL: the teacher runs on every batch */
    cli_data *d;
    cli_fit_out *out;
} distill_run;

/* Epochs of distillation; fills out->hist and out->res. Returns CLI_CONTINUE or a code. */
static int distill_loop(distill_run *r) {
    const cli_opts *o = r->o;
    gf_ctx *ctx = r->ctx;
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = o->batch;
    lp.seed = o->seed;
    lp.transform = r->d->train_tf;
    gf_loader *train = gf_loader_new(ctx, r->d->train, &lp), *val = NULL;
    lp.shuffle = false;
    lp.transform = r->d->eval_tf;
    if (train && r->d->val) val = gf_loader_new(ctx, r->d->val, &lp);
    cli_fit_setup fs = {.trunk_factor = 1.0};
    gf_optim *opt = train ? cli_make_optim(ctx, o, r->student, &fs) : NULL;
    gf_sched *sched = opt ? cli_make_sched(ctx, o, opt, gf_loader_batches_per_epoch(train)) : NULL;
    int rc = CLI_FAILED;
    if (!opt || gf_ctx_status(ctx) != GF_OK) {
        cli_fail_ctx(o->cmd, ctx);
        goto done;
    }
    cli_progress prog;
    cli_progress_init(&prog, o, o->batch, gf_loader_batches_per_epoch(train));
    gf_loss_spec ce = gf_loss_default(GF_LOSS_CROSS_ENTROPY);
    cli_install_sigint();
    double t_run = cli_now();
    r->out->total = gf_module_param_count(r->student, false);
    r->out->trainable = gf_module_param_count(r->student, true);
    for (int epoch = 1; epoch <= o->epochs && !cli_interrupted; epoch++) {
        double t0 = cli_now(), loss_sum = 0;
        int64_t seen = 0, correct = 0, batches = 0;
        gf_module_train(r->student, true);
        gf_batch b;
        while (!cli_interrupted && gf_loader_next(ctx, train, &b)) {
            gf_tensor *s = gf_module_forward(ctx, r->student, b.x);
            gf_tensor *t;
            if (r->cache) {
                t = gf_teacher_cache_gather(ctx, r->cache, b.idx, b.n);
            } else {
                bool g = gf_ctx_set_grad_enabled(ctx, false);
                t = gf_module_forward(ctx, r->teacher, b.x);
                gf_ctx_set_grad_enabled(ctx, g);
            }
            gf_tensor *l = gf_distill_loss(ctx, s, t, b.y, (float)o->temperature, (float)o->alpha);
            if (!l) break;
            double lv = (double)gf_get_f32(l, 0);
            if (!isfinite(lv)) {
                gf_ctx_set_error(ctx, GF_ERR_NUMERIC, "the distillation loss is %g at epoch %d, "
                                 "batch %lld", lv, epoch, (long long)b.index + 1);
                break;
            }
            gf_optim_zero_grad(opt);
            const gf_step_params sp = {.clip_norm = o->clip_norm, .sched = sched};
            if (gf_train_step(ctx, l, &opt, 1, &sp) != GF_OK) break;
            /* training accuracy from the student's logits */
            int64_t k = s->shape[1];
            for (int64_t i = 0; i < b.n; i++) {
                int64_t best = 0;
                for (int64_t c = 1; c < k; c++)
                    if (gf_get_f32(s, i * k + c) > gf_get_f32(s, i * k + best)) best = c;
                correct += best == gf_i64(b.y)[i];
            }
            loss_sum += lv * (double)b.n;
            seen += b.n;
            batches++;
            r->out->res.steps++;
            gf_ctx_reset(ctx);
            cli_progress_step(&prog, epoch, o->epochs, b.index, lv);
        }
        gf_ctx_reset(ctx);
        if (gf_ctx_status(ctx) != GF_OK) {
            cli_fail(o->cmd, "training failed: %s", gf_ctx_error(ctx));
            goto done;
        }
        gf_epoch_stats es;
        memset(&es, 0, sizeof es);
        es.epoch = epoch;
        es.epochs = o->epochs;
        es.batches = batches;
        es.steps = r->out->res.steps;
        es.train_loss = seen ? loss_sum / (double)seen : NAN;
        es.train_acc = seen ? (double)correct / (double)seen : NAN;
        es.val_loss = es.val_acc = NAN;
        if (val && gf_evaluate(ctx, r->student, &ce, val, &es.val_loss, &es.val_acc) != GF_OK) {
            cli_fail_ctx(o->cmd, ctx);
            goto done;
        }
        if (sched && gf_sched_get_interval(sched) == GF_SCHED_PER_EPOCH &&
            gf_sched_step_metric(ctx, sched, es.val_loss) != GF_OK) {
            cli_fail_ctx(o->cmd, ctx);
            goto done;
        }
        es.lr = gf_optim_group_lr(opt, 0);
        es.seconds = cli_now() - t0;
        es.improved = false;
        r->out->res.epochs_run = epoch;
        r->out->res.last = es;
        if (r->out->hist.n == r->out->hist.cap) {
            int cap = r->out->hist.cap ? 2 * r->out->hist.cap : 16;
            gf_epoch_stats *e = realloc(r->out->hist.e, sizeof *e * (size_t)cap);
            if (e) {
                r->out->hist.e = e;
                r->out->hist.cap = cap;
            }
        }
        if (r->out->hist.n < r->out->hist.cap) r->out->hist.e[r->out->hist.n++] = es;
        cli_progress_epoch(&prog, &es);
    }
    r->out->interrupted = cli_interrupted != 0;
    r->out->seconds = cli_now() - t_run;
    if (r->out->interrupted) cli_log(o, "graft distill: interrupted\n");
    gf_module_train(r->student, false);
    rc = CLI_CONTINUE;
done:
    gf_sched_free(sched);
    gf_optim_free(opt);
    gf_loader_free(train);
    gf_loader_free(val);
    return rc;
}

int cmd_distill(cli_opts *o) {
    const char *cmd = o->cmd;
    if (!o->teacher) return cli_usage_error(cmd, "--teacher is required (the teacher's weights)");
    int rc = cli_check_input(cmd, "--teacher", o->teacher);
    if (rc != CLI_CONTINUE || (rc = cli_check_train_paths(o)) != CLI_CONTINUE) return rc;
    const char *student_arg = o->student_model ? o->student_model : "mlp";
    if ((rc = cli_check_model_arg(cmd, "--student-model", student_arg)) != CLI_CONTINUE ||
        (rc = cli_check_model_arg(cmd, "--teacher-model", o->teacher_model)) != CLI_CONTINUE)
        return rc;
    gf_ctx *ctx = cli_context(o);
    if (!ctx) return CLI_FAILED;
    gf_bundle_info tmeta;
    cli_data d;
    cli_model teacher = {0}, student = {0};
    cli_fit_out fo = {0};
    cli_eval tev = {0}, sev = {0};
    distill_run run = {ctx, o, NULL, NULL, NULL, &d, &fo};
    rc = cli_meta_open(ctx, o, o->teacher, &tmeta);
    if (rc != CLI_CONTINUE) goto out_ctx;
    rc = cli_data_load(ctx, o, &d);
    if (rc != CLI_CONTINUE) goto out_meta;
    rc = cli_model_build(ctx, o, o->teacher_model, &tmeta, &d, d.n_classes, &teacher);
    if (rc != CLI_CONTINUE) goto out_data;
    rc = cli_load_weights(ctx, o, o->teacher, NULL, &tmeta, &teacher);
    if (rc != CLI_CONTINUE) goto out_models;
    gf_module_set_requires_grad(teacher.b->model, false);
    gf_module_train(teacher.b->model, false);
    rc = cli_model_build(ctx, o, student_arg, NULL, &d, d.n_classes, &student);
    if (rc != CLI_CONTINUE) goto out_models;
    const char *part;
    gf_ds *eval_ds = cli_final_part(&d, &part);
    rc = cli_evaluate(ctx, cmd, teacher.b->model, eval_ds, d.eval_tf, o->batch, &tev);
    if (rc != CLI_CONTINUE) goto out_models;
    int64_t tp = gf_module_param_count(teacher.b->model, false), sp = gf_module_param_count(student.b->model, false);
    cli_log(o, "graft distill: teacher %s (%lld parameters, %s accuracy %.4f) -> student %s (%lld "
               "parameters), T %g, alpha %g\n",
            cli_model_desc(&teacher), (long long)tp, part, tev.accuracy,
            cli_model_desc(&student), (long long)sp, o->temperature,
            o->alpha);
    run.student = student.b->model;
    run.teacher = teacher.b->model;
    if (!d.train_tf) { /* the teacher once over the training data */
        run.cache = gf_teacher_cache_build(ctx, teacher.b->model, d.train, 256);
        if (!run.cache) {
            rc = cli_fail_ctx(cmd, ctx);
            goto out_models;
        }
    }
    rc = distill_loop(&run);
    if (rc != CLI_CONTINUE) goto out_models;
    rc = fo.interrupted ? CLI_CONTINUE /* leave quickly */
                        : cli_evaluate(ctx, cmd, student.b->model, eval_ds, d.eval_tf, o->batch, &sev);
    if (rc != CLI_CONTINUE) goto out_models;
    const char *written = NULL;
    if (o->out && !fo.interrupted) {
        char t[64], a[64];
        snprintf(t, sizeof t, "%g", o->temperature);
        snprintf(a, sizeof a, "%g", o->alpha);
        const char *extra[] = {"graft.teacher", o->teacher, "graft.temperature", t, "graft.alpha", a};
        rc = cli_save_weights(ctx, o, &student, &d, o->out, extra, 3);
        if (rc != CLI_CONTINUE) goto out_models;
        written = o->out;
    }
    if (o->report) {
        rc = cli_report_run(ctx, o, cli_model_desc(&student), &d, &fo,
                            part, &sev, written);
        if (rc != CLI_CONTINUE) goto out_models;
    }
    if (o->json) {
        cJSON *root = cli_run_json(o, student.b->info.model, &d, &fo, part, &sev, written);
        cJSON *t = cJSON_AddObjectToObject(root, "teacher");
        cJSON_AddStringToObject(t, "weights", o->teacher);
        cJSON_AddStringToObject(t, "model", teacher.b->info.model);
        cJSON_AddNumberToObject(t, "parameters", (double)tp);
        cli_json_add_num(t, "accuracy", tev.accuracy);
        cli_json_add_num(t, "macro_f1", tev.f1);
        cJSON *dj = cJSON_AddObjectToObject(root, "distill");
        cJSON_AddNumberToObject(dj, "temperature", o->temperature);
        cJSON_AddNumberToObject(dj, "alpha", o->alpha);
        cJSON_AddBoolToObject(dj, "cached_teacher", run.cache != NULL);
        rc = cli_json_print(root);
    } else {
        printf("teacher   %s (%lld parameters): %s accuracy %.4f, macro F1 %.4f\n",
               cli_model_desc(&teacher), (long long)tp, part,
               tev.accuracy, tev.f1);
        printf("student   %s (%lld parameters, %.1fx smaller): %s accuracy %.4f, macro F1 %.4f\n",
               cli_model_desc(&student), (long long)sp,
               sp ? (double)tp / (double)sp : 0.0, part, sev.accuracy, sev.f1);
        printf("\n");
        cli_print_run(o, cli_model_desc(&student), &d, &fo, part, &sev,
                      written);
        rc = CLI_OK;
    }
    if (fo.interrupted) rc = CLI_FAILED;
out_models:
    gf_teacher_cache_free(run.cache);
    cli_eval_free(&tev);
    cli_eval_free(&sev);
    cli_fit_out_free(&fo);
    cli_model_free(&teacher);
    cli_model_free(&student);
out_data:
    cli_data_free(&d);
out_meta:
    gf_bundle_info_free(&tmeta);
out_ctx:
    gf_ctx_free(ctx);
    return rc;
}
