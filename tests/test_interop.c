/* Weights move between PyTorch and graft unchanged: state_dicts written from PyTorch
 * (fixtures/gen_interop.py) load by name into graft's zoo models and reproduce PyTorch's
 * outputs; graft's saved files load back into PyTorch (checked by the same script when
 * python3-torch is installed). Also the load report for partial and strict loads. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graft/graft.h"

static char src[1024];

static gf_zoo_params params_of(const cJSON *m) {
    gf_zoo_params p = gf_zoo_default_params();
    p.in_channels = cJSON_GetObjectItem(m, "in_channels")->valueint;
    p.height = cJSON_GetObjectItem(m, "height")->valueint;
    p.width = cJSON_GetObjectItem(m, "width")->valueint;
    p.num_classes = cJSON_GetObjectItem(m, "num_classes")->valueint;
    const cJSON *h = cJSON_GetObjectItem(m, "hidden");
    if (h) {
        memset(p.hidden, 0, sizeof p.hidden);
        for (int i = 0; i < cJSON_GetArraySize(h) && i < 4; i++) p.hidden[i] = cJSON_GetArrayItem(h, i)->valueint;
    }
    return p;
}

static gf_tensor *input_of(gf_ctx *ctx, const cJSON *m) {
    int64_t shape[4];
    for (int i = 0; i < 4; i++) shape[i] = (int64_t)cJSON_GetArrayItem(cJSON_GetObjectItem(m, "input_shape"), i)->valuedouble;
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, shape);
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(m, "input")) gf_f32(x)[i++] = (float)v->valuedouble;
    return x;
}

/* Writes graft's weights and outputs for the PyTorch-side check. */
static void export_model(gf_ctx *ctx, const char *dir, const char *name, gf_module *m,
                         const cJSON *ref, const gf_tensor *y) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    const char *meta[] = {"producer", "graft"};
    CHECK(gf_weights_save(ctx, m, path, meta, 1) == GF_OK);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "input_shape", cJSON_Duplicate(cJSON_GetObjectItem(ref, "input_shape"), 1));
    cJSON_AddItemToObject(o, "input", cJSON_Duplicate(cJSON_GetObjectItem(ref, "input"), 1));
    cJSON *out = cJSON_AddArrayToObject(o, "output");
    for (int64_t i = 0; i < y->numel; i++) cJSON_AddItemToArray(out, cJSON_CreateNumber(gf_get_f32(y, i)));
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    char *s = cJSON_PrintUnformatted(o);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(s, f);
        fclose(f);
    }
    cJSON_free(s);
    cJSON_Delete(o);
}

static void test_models(gf_ctx *ctx, const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/interop/interop.json", src);
    cJSON *doc = test_read_json(path);
    CHECK(doc != NULL);
    if (!doc) return;
    const cJSON *m;
    cJSON_ArrayForEach(m, doc) {
        const char *name = m->string;
        gf_zoo_params p = params_of(m);
        gf_module *model = gf_zoo_build(ctx, name, &p, NULL);
        CHECK(model != NULL);
        if (!model) {
            fprintf(stderr, "%s: %s\n", name, gf_ctx_error(ctx));
            continue;
        }
        /* names and shapes, in order, are PyTorch's state_dict */
        gf_named_tensors *l = gf_module_named_tensors(ctx, model, GF_STATE_ALL);
        const cJSON *keys = cJSON_GetObjectItem(m, "keys");
        bool same = l && l->n == cJSON_GetArraySize(keys);
        for (int i = 0; same && i < l->n; i++) {
            const cJSON *k = cJSON_GetArrayItem(keys, i);
            same = strcmp(cJSON_GetArrayItem(k, 0)->valuestring, l->items[i].name) == 0;
            const cJSON *shape = cJSON_GetArrayItem(k, 1);
            same = same && cJSON_GetArraySize(shape) == l->items[i].tensor->ndim;
            for (int d = 0; same && d < l->items[i].tensor->ndim; d++)
                same = (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble == l->items[i].tensor->shape[d];
        }
        if (!same) fprintf(stderr, "%s: state_dict names/shapes differ from PyTorch's\n", name);
        CHECK(same);
        gf_named_tensors_free(l);

        snprintf(path, sizeof path, "%s/tests/fixtures/interop/%s.safetensors", src, name);
        gf_weights_load_options strict = {true};
        gf_weights_report *rep = NULL;
        CHECK(gf_weights_load(ctx, model, path, &strict, &rep) == GF_OK);
        CHECK(rep && rep->missing == 0 && rep->unexpected == 0 && rep->mismatched == 0 && rep->loaded == rep->n);
        gf_weights_report_free(rep);

        gf_module_train(model, false);
        gf_tensor *x = input_of(ctx, m);
        gf_tensor *y = gf_module_forward(ctx, model, x);
        const cJSON *out = cJSON_GetObjectItem(m, "output");
        CHECK(y && y->numel == cJSON_GetArraySize(out));
        double worst = 0;
        for (int64_t i = 0; y && i < y->numel; i++) {
            double d = fabs(gf_get_f32(y, i) - cJSON_GetArrayItem(out, (int)i)->valuedouble);
            if (d > worst) worst = d;
        }
        printf("%-12s max |graft - torch| = %.3g\n", name, worst);
        CHECK(worst < 1e-4);
        if (y) export_model(ctx, dir, name, model, m, y);
        gf_ctx_reset(ctx);
        gf_tensor_free(x);
        gf_module_free(model);
    }
    cJSON_Delete(doc);
}

/* A head of another size, a model of another kind: every key is accounted for. */
static void test_partial_and_strict(gf_ctx *ctx) {
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/interop/cnn-small.safetensors", src);
    gf_zoo_params p = gf_zoo_default_params();
    p.height = p.width = 12;
    p.num_classes = 7; /* the file's head has 5 classes */
    gf_module *m = gf_zoo_build(ctx, "cnn-small", &p, NULL);
    gf_tensor *w0 = gf_module_tensor(ctx, m, "features.0.weight");
    float before = gf_f32(w0)[0];
    gf_weights_load_options strict = {true};
    gf_weights_report *rep = NULL;
    CHECK(gf_weights_load(ctx, m, path, &strict, &rep) == GF_ERR_SHAPE);
    CHECK(strstr(gf_ctx_error(ctx), "classifier.3.weight") && strstr(gf_ctx_error(ctx), "[7, 128]") &&
          strstr(gf_ctx_error(ctx), "[5, 128]"));
    CHECK(gf_f32(w0)[0] == before); /* strict failure loads nothing */
    CHECK(rep && rep->mismatched == 2 && rep->loaded == rep->n - 2);
    gf_weights_report_free(rep);
    gf_ctx_clear_error(ctx);
    gf_weights_load_options loose = {false};
    CHECK(gf_weights_load(ctx, m, path, &loose, &rep) == GF_OK);
    CHECK(gf_f32(w0)[0] != before && rep->mismatched == 2 && rep->missing == 0);
    gf_weights_report_free(rep);
    gf_module_free(m);

    /* an MLP file into LeNet: all of LeNet's keys missing, all of the file's unexpected */
    snprintf(path, sizeof path, "%s/tests/fixtures/interop/mlp.safetensors", src);
    p = gf_zoo_default_params();
    m = gf_zoo_build(ctx, "lenet", &p, NULL);
    CHECK(gf_weights_load(ctx, m, path, &loose, &rep) == GF_OK);
    CHECK(rep->loaded == 0 && rep->missing == 10 && rep->unexpected == 6);
    FILE *devnull = fopen("/dev/null", "w");
    gf_weights_report_print(rep, devnull, true);
    fclose(devnull);
    gf_weights_report_free(rep);
    gf_module_free(m);
    CHECK(gf_zoo_build(ctx, "resnet-huge", NULL, NULL) == NULL && strstr(gf_ctx_error(ctx), "resnet-huge"));
    gf_ctx_clear_error(ctx);
}

static void check_with_pytorch(const char *dir) {
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/fixtures/gen_interop.py --check %s", src, dir);
    if (access("/usr/bin/python3", X_OK) != 0) {
        printf("PyTorch check skipped: /usr/bin/python3 not found\n");
        return;
    }
    int rc = system(cmd);
    int code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    if (code == 77) printf("PyTorch check skipped: python3-torch is not installed\n");
    else CHECK(code == 0);
}

int main(void) {
    const char *s = getenv("GRAFT_SOURCE_DIR");
    snprintf(src, sizeof src, "%s", s ? s : ".");
    char dir[] = "/tmp/graft_interop_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_models(ctx, dir);
    test_partial_and_strict(ctx);
    check_with_pytorch(dir);
    gf_ctx_free(ctx);
    char rm[1200];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0) return 1;
    return test_finish("test_interop");
}
