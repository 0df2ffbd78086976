/* ONNX export against other implementations, on the models of tests/fixtures/onnx_export
 * (gen_torch_onnx.py: PyTorch twins of graft specs and of the zoo's mlp, PyTorch-initialised):
 *   graft (spec + the safetensors weights)       == PyTorch's output (models.json)
 *   graft on PyTorch's torch.onnx.export file    == PyTorch's output
 *   graft -> ONNX (gf_onnx_export) -> graft      == graft
 *   graft -> ONNX -> ONNX Runtime                == graft (ort_outputs.json, written by
 *                                                   gen_onnx_export_ort.sh with onnxruntime-node)
 * Usage: test_onnx_export_ref                   the checks above on the committed files
 *        test_onnx_export_ref --export DIR      writes DIR/<model>.onnx, graft's export of each
 *                                               (gen_onnx_export_ort.sh runs ONNX Runtime on them)
 *        test_onnx_export_ref --ort FILE        ONNX Runtime's outputs from FILE instead (the live
 *                                               check, test_onnx_export_ort_live.sh) */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "testutil.h"

static char fixtures[4096];

typedef struct ref_model {
    const char *name;
    const cJSON *j;      /* its entry in models.json */
    gf_bundle *b;        /* spec or zoo model with the fixture's weights */
    int ndim;            /* sample shape */
    int64_t sample[GF_MAX_DIMS];
    gf_tensor *x;        /* the input batch (arena) */
} ref_model;

static gf_tensor *json_tensor(gf_ctx *ctx, const cJSON *shape, const cJSON *data) {
    int64_t s[GF_MAX_DIMS];
    int n = 0;
    for (const cJSON *d = shape ? shape->child : NULL; d && n < GF_MAX_DIMS; d = d->next)
        s[n++] = (int64_t)d->valuedouble;
    gf_tensor *t = gf_empty(ctx, GF_F32, n, s);
    int64_t i = 0;
    for (const cJSON *v = data ? data->child : NULL; t && v && i < t->numel; v = v->next)
        gf_f32(t)[i++] = (float)v->valuedouble;
    return t && i == t->numel ? t : NULL;
}

static bool open_model(gf_ctx *ctx, const cJSON *entry, ref_model *r) {
    char path[4200];
    r->name = entry->string;
    r->j = entry;
    snprintf(path, sizeof path, "%s/%s.safetensors", fixtures, r->name);
    r->b = gf_bundle_load(ctx, path, NULL);
    r->ndim = 0;
    for (const cJSON *d = cJSON_GetObjectItem(entry, "sample_shape")->child; d; d = d->next)
        r->sample[r->ndim++] = (int64_t)d->valuedouble;
    r->x = json_tensor(ctx, cJSON_GetObjectItem(entry, "input_shape"),
                       cJSON_GetObjectItem(entry, "input"));
    if (!r->b || !r->x) {
        fprintf(stderr, "%s: %s\n", r->name, gf_ctx_error(ctx));
        gf_bundle_free(r->b);
        r->b = NULL;
        return false;
    }
    gf_module_train(r->b->model, false);
    return true;
}

/* graft on the weights, on PyTorch's ONNX file and on its own export; then ONNX Runtime's. */
static void check_model(gf_ctx *ctx, ref_model *r, const cJSON *ort) {
    const cJSON *want = cJSON_GetObjectItem(r->j, "torch_output");
    double abs_torch, abs_tonnx, abs_ort = INFINITY, abs_ort_torch = INFINITY;
    gf_tensor *y = gf_module_forward(ctx, r->b->model, r->x);
    CHECK(test_worst_vs_json(y, want, 1e-5, 1e-4, &abs_torch) <= 1.0);
    /* PyTorch's own export, read by graft */
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.onnx", fixtures, r->name);
    gf_module *tm = gf_onnx_load(ctx, path, NULL);
    gf_tensor *ty = tm ? gf_module_forward(ctx, tm, r->x) : NULL;
    CHECK(test_worst_vs_json(ty, want, 1e-5, 1e-4, &abs_tonnx) <= 1.0);
    /* graft -> ONNX -> graft */
    size_t size = 0;
    void *buf = gf_onnx_export_memory(ctx, r->b->model, r->ndim, r->sample, NULL, &size);
    gf_module *back = buf ? gf_onnx_load_memory(ctx, buf, size, r->name, NULL) : NULL;
    gf_tensor *by = back ? gf_module_forward(ctx, back, r->x) : NULL;
    const double abs_back = test_max_abs_diff(y, by);
    CHECK(abs_back <= 1e-6);
    /* graft -> ONNX -> ONNX Runtime */
    const cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(ort, "models"), r->name);
    CHECK(o != NULL);
    if (o)
        CHECK(test_worst_vs_json(y, cJSON_GetObjectItem(o, "graft_onnx_output"), 1e-6, 1e-4,
                                 &abs_ort) <= 1.0);
    /* and the harness itself: ONNX Runtime on PyTorch's file gives PyTorch's output */
    if (o) {
        gf_tensor *ot = json_tensor(ctx, cJSON_GetObjectItem(r->j, "output_shape"),
                                    cJSON_GetObjectItem(o, "torch_onnx_output"));
        CHECK(test_worst_vs_json(ot, want, 1e-5, 1e-4, &abs_ort_torch) <= 1.0);
    }
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s: %s\n", r->name, gf_ctx_error(ctx));
    printf("%-8s max |graft - torch| %.3g, |graft(torch .onnx) - torch| %.3g, "
           "|graft(export) - graft| %.3g, |ORT(export) - graft| %.3g, "
           "|ORT(torch .onnx) - torch| %.3g\n",
           r->name, abs_torch, abs_tonnx, abs_back, abs_ort, abs_ort_torch);
    gf_module_free(back);
    gf_module_free(tm);
    free(buf);
}

static int export_all(gf_ctx *ctx, const cJSON *models, const char *dir) {
    int failed = 0;
    for (const cJSON *e = models->child; e; e = e->next) {
        ref_model r;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.onnx", dir, e->string);
        if (!open_model(ctx, e, &r) ||
            gf_onnx_export(ctx, r.b->model, r.ndim, r.sample, path, NULL) != GF_OK) {
            fprintf(stderr, "%s: %s\n", e->string, gf_ctx_error(ctx));
            failed = 1;
        }
        if (r.b) gf_bundle_free(r.b);
        gf_ctx_reset(ctx);
    }
    return failed;
}

int main(int argc, char **argv) {
    if (!gf_onnx_available()) {
        printf("test_onnx_export_ref: skipped (built without ONNX support)\n");
        return 77;
    }
    const char *src = getenv("GRAFT_SOURCE_DIR");
    snprintf(fixtures, sizeof fixtures, "%s/tests/fixtures/onnx_export", src ? src : ".");
    char path[4200], ort_path[4200];
    snprintf(path, sizeof path, "%s/models.json", fixtures);
    snprintf(ort_path, sizeof ort_path, "%s/ort_outputs.json", fixtures);
    if (argc == 3 && !strcmp(argv[1], "--ort")) snprintf(ort_path, sizeof ort_path, "%s", argv[2]);
    cJSON *doc = test_read_json(path);
    const cJSON *models = cJSON_GetObjectItem(doc, "models");
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    gf_ctx_set_grad_enabled(ctx, false);
    int rc = 0;
    if (!models) {
        rc = 1;
    } else if (argc == 3 && !strcmp(argv[1], "--export")) {
        rc = export_all(ctx, models, argv[2]);
    } else {
        cJSON *ort = test_read_json(ort_path);
        CHECK(ort != NULL);
        if (ort) printf("ONNX Runtime %s (%s)\n", cJSON_GetStringValue(cJSON_GetObjectItem(ort, "onnxruntime")), ort_path);
        for (const cJSON *e = models->child; ort && e; e = e->next) {
            ref_model r;
            CHECK(open_model(ctx, e, &r));
            if (!r.b) continue;
            check_model(ctx, &r, ort);
            gf_bundle_free(r.b);
            gf_ctx_reset(ctx);
        }
        cJSON_Delete(ort);
        rc = test_finish("test_onnx_export_ref");
    }
    cJSON_Delete(doc);
    gf_ctx_free(ctx);
    return rc;
}
