/* graft distill: a student trained on alpha * T^2 * KL(teacher/T || student/T) + (1 - alpha) *
 * cross-entropy: the training run of graft train (cli_fit, gf_fit) with the library's
 * distillation loss (gf_distill_loss_spec), which looks up each batch's cached teacher logits by
 * example index, or runs the teacher on the batch when the inputs are augmented. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdio.h>

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
    gf_teacher_cache *cache = NULL;
    gf_distill_spec ds = {NULL, NULL, (float)o->temperature, (float)o->alpha};
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
    if (d.train_tf) { /* augmented inputs: the teacher runs on every batch */
        ds.teacher = teacher.b->model;
    } else if (!(ds.cache = cache = gf_teacher_cache_build(ctx, teacher.b->model, d.train, 256))) {
        rc = cli_fail_ctx(cmd, ctx); /* else the teacher once over the training data */
        goto out_models;
    }
    cli_fit_setup fs = {.trunk_factor = 1.0, .loss = gf_distill_loss_spec(&ds)};
    rc = cli_fit(ctx, o, student.b->model, &d, &fs, &fo);
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
        cJSON_AddBoolToObject(dj, "cached_teacher", ds.cache != NULL);
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
    gf_teacher_cache_free(cache);
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
