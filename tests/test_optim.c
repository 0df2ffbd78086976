/* Optimizer tests: 10-step trajectories and final state of SGD / Adam / AdamW against
 * torch.optim (fixtures/optim_trajectories.json), plus the argument checks.
 * To add a case: append a config to CONFIGS in fixtures/gen_optim.py, rerun it with
 * /usr/bin/python3; the keys map onto gf_optim_params in params_from_json below. */
#include "graft/graft.h"
#include "graft/optim.h"
#include "optim/optim_internal.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* Every value within 1e-6 relative of PyTorch's (absolute below magnitude 1e-1). */
#define REL_TOL 1e-6
static bool close_to(double a, double b) {
    double scale = fabs(b) > 0.1 ? fabs(b) : 0.1;
    return fabs(a - b) <= REL_TOL * scale;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

static double num(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? 1.0 : 0.0;
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static gf_optim_params params_from_json(const cJSON *cfg) {
    const char *kind = cJSON_GetObjectItemCaseSensitive(cfg, "kind")->valuestring;
    gf_optim_kind k = strcmp(kind, "sgd") == 0    ? GF_OPTIM_SGD
                      : strcmp(kind, "adam") == 0 ? GF_OPTIM_ADAM
                                                  : GF_OPTIM_ADAMW;
    gf_optim_params p = gf_optim_default_params(k);
    p.lr = num(cfg, "lr", p.lr);
    p.weight_decay = num(cfg, "weight_decay", p.weight_decay);
    p.maximize = num(cfg, "maximize", 0) != 0;
    p.momentum = num(cfg, "momentum", p.momentum);
    p.dampening = num(cfg, "dampening", p.dampening);
    p.nesterov = num(cfg, "nesterov", 0) != 0;
    p.beta1 = num(cfg, "beta1", p.beta1);
    p.beta2 = num(cfg, "beta2", p.beta2);
    p.eps = num(cfg, "eps", p.eps);
    p.amsgrad = num(cfg, "amsgrad", 0) != 0;
    return p;
}

static void to_floats(const cJSON *arr, float *dst) {
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) dst[i++] = (float)v->valuedouble;
}

/* Compares n floats with a JSON array; reports the first mismatch with its context. */
static void compare(const char *what, const char *run, const char *param, int step,
                    const float *got, const cJSON *want, int64_t n, double *max_rel) {
    CHECK(cJSON_GetArraySize(want) == n);
    int64_t i = 0;
    const cJSON *v;
    bool ok = true;
    cJSON_ArrayForEach(v, want) {
        double b = v->valuedouble, a = got[i];
        double scale = fabs(b) > 0.1 ? fabs(b) : 0.1;
        if (fabs(a - b) / scale > *max_rel) *max_rel = fabs(a - b) / scale;
        if (ok && !close_to(a, b)) {
            fprintf(stderr, "%s %s.%s step %d [%lld]: got %.9g, torch %.9g\n", run, param, what,
                    step, (long long)i, a, b);
            ok = false;
        }
        i++;
    }
    CHECK(ok);
}

static void run_fixture(gf_ctx *ctx, const cJSON *run) {
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(run, "config");
    const char *name = cJSON_GetObjectItemCaseSensitive(cfg, "name")->valuestring;
    const cJSON *jparams = cJSON_GetObjectItemCaseSensitive(run, "params");
    int np = cJSON_GetArraySize(jparams);
    gf_tensor *params[8] = {0};
    CHECK(np <= 8);
    for (int i = 0; i < np; i++) {
        const cJSON *jp = cJSON_GetArrayItem(jparams, i);
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(jp, "shape");
        int64_t dims[GF_MAX_DIMS];
        int nd = cJSON_GetArraySize(shape);
        for (int d = 0; d < nd; d++) dims[d] = cJSON_GetArrayItem(shape, d)->valueint;
        params[i] = gf_tensor_new(ctx, GF_F32, nd, dims);
        to_floats(cJSON_GetObjectItemCaseSensitive(jp, "init"), gf_f32(params[i]));
        bool rg = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jp, "requires_grad"));
        gf_tensor_set_requires_grad(params[i], rg);
        if (!rg) { /* a frozen tensor with a stale gradient must still be skipped */
            params[i]->grad = gf_tensor_new(ctx, GF_F32, nd, dims);
            for (int64_t k = 0; k < params[i]->numel; k++) gf_f32(params[i]->grad)[k] = 1.0f;
        }
    }
    gf_optim_params hp = params_from_json(cfg);
    gf_optim *opt = gf_optim_new(ctx, &hp, params, np);
    CHECK(opt != NULL);
    if (!opt) return;
    double max_rel = 0;
    int steps = (int)num(run, "steps", 10);
    const cJSON *jp0 = cJSON_GetArrayItem(jparams, 0);
    steps = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(jp0, "grads"));
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < np; i++) {
            const cJSON *jp = cJSON_GetArrayItem(jparams, i);
            const cJSON *g = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(jp, "grads"), s);
            if (cJSON_IsNull(g)) continue;
            if (!params[i]->grad)
                params[i]->grad = gf_tensor_new(ctx, GF_F32, params[i]->ndim, params[i]->shape);
            to_floats(g, gf_f32(params[i]->grad));
        }
        CHECK(gf_optim_step(ctx, opt) == GF_OK);
        for (int i = 0; i < np; i++) {
            const cJSON *jp = cJSON_GetArrayItem(jparams, i);
            const char *pn = cJSON_GetObjectItemCaseSensitive(jp, "name")->valuestring;
            const cJSON *want =
                cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(jp, "trajectory"), s);
            compare("param", name, pn, s, gf_f32(params[i]), want, params[i]->numel, &max_rel);
        }
    }
    for (int i = 0; i < np; i++) {
        const cJSON *jp = cJSON_GetArrayItem(jparams, i);
        const char *pn = cJSON_GetObjectItemCaseSensitive(jp, "name")->valuestring;
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(jp, "state");
        CHECK(gf_optim_param_steps(opt, i) == (int64_t)num(jp, "steps", -1));
        const char *keys[] = {"momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
        for (int k = 0; k < 4; k++) {
            const cJSON *want = cJSON_GetObjectItemCaseSensitive(state, keys[k]);
            const float *got = gf_optim_state(opt, i, keys[k]);
            if (!want) {
                if (got) fprintf(stderr, "%s %s: unexpected state %s\n", name, pn, keys[k]);
                CHECK(got == NULL);
                continue;
            }
            CHECK(got != NULL);
            if (got) compare(keys[k], name, pn, steps, got, want, params[i]->numel, &max_rel);
        }
    }
    CHECK(gf_optim_steps(opt) == steps);
    printf("  %-20s max relative difference %.3g\n", name, max_rel);
    gf_optim_free(opt);
    for (int i = 0; i < np; i++) gf_tensor_free(params[i]);
}

static void test_fixtures(gf_ctx *ctx) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/optim_trajectories.json", src ? src : ".");
    char *text = read_text(path);
    if (!text) fprintf(stderr, "cannot read %s (set GRAFT_SOURCE_DIR)\n", path);
    CHECK(text != NULL);
    if (!text) return;
    cJSON *doc = cJSON_Parse(text);
    free(text);
    CHECK(doc != NULL);
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(doc, "runs");
    CHECK(cJSON_GetArraySize(runs) >= 5);
    const cJSON *run;
    cJSON_ArrayForEach(run, runs) run_fixture(ctx, run);
    CHECK(gf_ctx_status(ctx) == GF_OK);
    cJSON_Delete(doc);
}

/* Bad hyperparameters and parameters: NULL with a message; nothing aborts. */
static void test_errors(gf_ctx *ctx) {
    int64_t d2[] = {2};
    gf_tensor *p = gf_tensor_new(ctx, GF_F32, 1, d2);
    gf_tensor *pi = gf_tensor_new(ctx, GF_I64, 1, d2);
    gf_tensor_set_requires_grad(p, true);
    struct {
        gf_optim_params hp;
        const char *needle;
    } bad[8];
    int nb = 0;
    bad[nb].hp = gf_optim_default_params(GF_OPTIM_SGD);
    bad[nb].hp.nesterov = true;
    bad[nb++].needle = "Nesterov";
    bad[nb].hp = gf_optim_default_params(GF_OPTIM_SGD);
    bad[nb].hp.lr = -1;
    bad[nb++].needle = "learning rate";
    bad[nb].hp = gf_optim_default_params(GF_OPTIM_ADAM);
    bad[nb].hp.beta1 = 1.0;
    bad[nb++].needle = "beta1";
    bad[nb].hp = gf_optim_default_params(GF_OPTIM_ADAMW);
    bad[nb].hp.beta2 = -0.1;
    bad[nb++].needle = "beta2";
    bad[nb].hp = gf_optim_default_params(GF_OPTIM_ADAM);
    bad[nb].hp.eps = NAN;
    bad[nb++].needle = "eps";
    bad[nb].hp = gf_optim_default_params(GF_OPTIM_ADAM);
    bad[nb].hp.weight_decay = -1e-3;
    bad[nb++].needle = "weight_decay";
    bad[nb].hp = gf_optim_default_params(GF_OPTIM_SGD);
    bad[nb].hp.kind = (gf_optim_kind)42;
    bad[nb++].needle = "kind";
    for (int i = 0; i < nb; i++) {
        gf_ctx_clear_error(ctx);
        CHECK(gf_optim_new(ctx, &bad[i].hp, &p, 1) == NULL);
        CHECK(gf_ctx_status(ctx) == GF_ERR_INVALID);
        CHECK(strstr(gf_ctx_error(ctx), bad[i].needle) != NULL);
    }
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_ADAM);
    gf_tensor *dup[] = {p, p};
    gf_ctx_clear_error(ctx);
    CHECK(gf_optim_new(ctx, &hp, dup, 2) == NULL && strstr(gf_ctx_error(ctx), "same tensor"));
    gf_tensor *null1[] = {p, NULL};
    gf_ctx_clear_error(ctx);
    CHECK(gf_optim_new(ctx, &hp, null1, 2) == NULL && strstr(gf_ctx_error(ctx), "NULL"));
    gf_ctx_clear_error(ctx);
    CHECK(gf_optim_new(ctx, &hp, &pi, 1) == NULL && strstr(gf_ctx_error(ctx), "int64"));
    gf_tensor *arena = gf_zeros(ctx, GF_F32, 1, d2);
    gf_ctx_clear_error(ctx);
    CHECK(gf_optim_new(ctx, &hp, &arena, 1) == NULL && strstr(gf_ctx_error(ctx), "arena"));
    gf_ctx_clear_error(ctx);
    CHECK(gf_optim_step(ctx, NULL) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    gf_tensor_free(p);
    gf_tensor_free(pi);
}

/* Known answers and bookkeeping: frozen/gradless parameters hold no state, zero_grad keeps
 * buffers, set_lr applies to the next step. */
static void test_basics(gf_ctx *ctx) {
    CHECK(strcmp(gf_optim_kind_name(GF_OPTIM_ADAMW), "adamw") == 0);
    gf_optim_params d = gf_optim_default_params(GF_OPTIM_ADAMW);
    CHECK(d.lr == 1e-3 && d.weight_decay == 1e-2 && d.beta1 == 0.9 && d.beta2 == 0.999 &&
          d.eps == 1e-8 && !d.amsgrad);
    int64_t d3[] = {3};
    float one[3] = {1, 2, 3};
    gf_tensor *a = gf_tensor_from_data(ctx, GF_F32, 1, d3, one);
    gf_tensor *frozen = gf_tensor_from_data(ctx, GF_F32, 1, d3, one);
    gf_tensor *unused = gf_tensor_from_data(ctx, GF_F32, 1, d3, one);
    gf_tensor_set_requires_grad(a, true);
    gf_tensor_set_requires_grad(unused, true);
    gf_tensor *ps[] = {a, frozen, unused};
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_SGD);
    hp.lr = 0.5;
    hp.momentum = 0.5;
    gf_optim *o = gf_optim_new(ctx, &hp, ps, 3);
    CHECK(o && gf_optim_n_params(o) == 3 && gf_optim_param(o, 1) == frozen);
    CHECK(gf_optim_state_bytes(o) == 0);
    a->grad = gf_tensor_new(ctx, GF_F32, 1, d3);
    for (int i = 0; i < 3; i++) gf_f32(a->grad)[i] = 1.0f;
    CHECK(gf_optim_step(ctx, o) == GF_OK);
    /* first step: buf = g = 1, p = p - 0.5 */
    CHECK_NEAR(gf_f32(a)[0], 0.5, 0);
    CHECK_NEAR(gf_optim_state(o, 0, "momentum_buffer")[2], 1.0, 0);
    CHECK(gf_optim_state(o, 1, "momentum_buffer") == NULL);
    CHECK(gf_optim_state(o, 2, "momentum_buffer") == NULL);
    CHECK(gf_optim_state(o, 0, "exp_avg") == NULL);
    CHECK(gf_optim_state_bytes(o) == 3 * sizeof(float));
    CHECK(gf_f32(frozen)[0] == 1.0f && gf_f32(unused)[0] == 1.0f);
    /* second step: buf = 0.5 * 1 + 1 = 1.5, p = 0.5 - 0.25 * 1.5 with lr 0.25 */
    gf_optim_set_lr(o, 0.25);
    CHECK(gf_optim_step(ctx, o) == GF_OK);
    CHECK_NEAR(gf_f32(a)[1], 2.0 - 0.5 - 0.375, 1e-7);
    gf_optim_zero_grad(o);
    CHECK(a->grad != NULL && gf_f32(a->grad)[0] == 0.0f);
    CHECK(gf_optim_steps(o) == 2 && gf_optim_param_steps(o, 0) == 2 &&
          gf_optim_param_steps(o, 1) == 0);
    gf_optim_free(o);
    gf_optim_free(NULL);
    gf_tensor_free(a);
    gf_tensor_free(frozen);
    gf_tensor_free(unused);
}

/* The fast kernels (vectorised, per CPU) against the reference ones on a large parameter
 * with awkward values: bitwise equal parameters and state after several steps. */
static void run_kernel_case(gf_ctx *ctx, const gf_optim_params *hp, bool reference,
                            float *out_p, float *out_state) {
    enum { N = 100003, STEPS = 4 };
    int64_t d[] = {N};
    gf_tensor *p = gf_tensor_new(ctx, GF_F32, 1, d);
    gf_tensor_set_requires_grad(p, true);
    p->grad = gf_tensor_new(ctx, GF_F32, 1, d);
    gf_rng r;
    gf_rng_seed(&r, 99);
    for (int64_t i = 0; i < N; i++) gf_f32(p)[i] = gf_rng_normal(&r) * 3.0f;
    gf_optim_use_reference_kernels(reference);
    gf_optim *o = gf_optim_new(ctx, hp, &p, 1);
    for (int s = 0; s < STEPS; s++) {
        for (int64_t i = 0; i < N; i++) {
            float g = gf_rng_normal(&r) * (i % 7 == 0 ? 1e-4f : 1.0f);
            gf_f32(p->grad)[i] = (i % 101 == 0) ? 0.0f : g;
        }
        CHECK(gf_optim_step(ctx, o) == GF_OK);
    }
    memcpy(out_p, gf_f32(p), sizeof(float) * N);
    const char *key = hp->kind == GF_OPTIM_SGD ? "momentum_buffer" : "exp_avg_sq";
    const float *st = gf_optim_state(o, 0, key);
    CHECK(st != NULL);
    if (st) memcpy(out_state, st, sizeof(float) * N);
    gf_optim_use_reference_kernels(false);
    gf_optim_free(o);
    gf_tensor_free(p);
}

static void test_fast_kernels(gf_ctx *ctx) {
    enum { N = 100003 };
    float *p0 = malloc(sizeof(float) * N), *p1 = malloc(sizeof(float) * N);
    float *s0 = malloc(sizeof(float) * N), *s1 = malloc(sizeof(float) * N);
    gf_optim_params cases[5];
    cases[0] = gf_optim_default_params(GF_OPTIM_ADAM);
    cases[1] = gf_optim_default_params(GF_OPTIM_ADAM);
    cases[1].weight_decay = 0.05;
    cases[1].amsgrad = true;
    cases[1].maximize = true;
    cases[2] = gf_optim_default_params(GF_OPTIM_ADAMW);
    cases[3] = gf_optim_default_params(GF_OPTIM_SGD);
    cases[3].momentum = 0.9;
    cases[3].nesterov = true;
    cases[3].weight_decay = 1e-3;
    cases[4] = gf_optim_default_params(GF_OPTIM_SGD);
    cases[4].momentum = 0.5;
    cases[4].dampening = 0.25;
    for (int c = 0; c < 5; c++) {
        run_kernel_case(ctx, &cases[c], true, p0, s0);
        run_kernel_case(ctx, &cases[c], false, p1, s1);
        int64_t diff = 0;
        for (int64_t i = 0; i < N; i++)
            diff += memcmp(&p0[i], &p1[i], 4) != 0 || memcmp(&s0[i], &s1[i], 4) != 0;
        if (diff)
            fprintf(stderr, "kernel case %d: %lld elements differ between the reference and "
                            "the fast kernels\n", c, (long long)diff);
        CHECK(diff == 0);
    }
    free(p0);
    free(p1);
    free(s0);
    free(s1);
}

int main(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_fixtures(ctx);
    test_errors(ctx);
    test_basics(ctx);
    test_fast_kernels(ctx);
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_free(ctx);
    return test_finish("test_optim");
}
