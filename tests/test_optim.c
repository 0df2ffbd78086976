/* Optimizer tests: 10-step trajectories and final state of SGD / Adam / AdamW / RMSprop /
 * Adagrad against torch.optim and clip_grad_norm_ / clip_grad_value_ against torch.nn.utils
 * (fixtures/optim_trajectories.json); parameter groups (by list and by module name patterns),
 * frozen parameters, state export / import through safetensors, and the argument checks.
 * To add a case: append a config to CONFIGS in fixtures/gen_optim.py, rerun it with
 * /usr/bin/python3; the keys map onto gf_optim_params in params_from_json below. */
#include "graft/graft.h"
#include "graft/optim.h"
#include "graft/sched.h"
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

static double num(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? 1.0 : 0.0;
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static gf_optim_params params_from_json(const cJSON *cfg) {
    const char *kind = cJSON_GetObjectItemCaseSensitive(cfg, "kind")->valuestring;
    gf_optim_kind k = GF_OPTIM_KIND_COUNT;
    CHECK(gf_optim_kind_parse(kind, &k));
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
    p.alpha = num(cfg, "alpha", p.alpha);
    p.centered = num(cfg, "centered", 0) != 0;
    p.lr_decay = num(cfg, "lr_decay", p.lr_decay);
    p.initial_accumulator_value = num(cfg, "initial_accumulator_value", p.initial_accumulator_value);
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
        const char *keys[] = {"momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq",
                              "square_avg", "grad_avg", "sum"};
        for (int k = 0; k < 7; k++) {
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
    char *text = test_read_text(path);
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
    const char *key = hp->kind == GF_OPTIM_SGD       ? "momentum_buffer"
                      : hp->kind == GF_OPTIM_ADAGRAD ? "sum"
                      : hp->kind == GF_OPTIM_RMSPROP ? (hp->momentum > 0 ? "momentum_buffer"
                                                                        : "square_avg")
                                                     : "exp_avg_sq";
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
    gf_optim_params cases[10];
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
    cases[5] = gf_optim_default_params(GF_OPTIM_RMSPROP);
    cases[6] = gf_optim_default_params(GF_OPTIM_RMSPROP);
    cases[6].centered = true;
    cases[6].momentum = 0.9;
    cases[6].weight_decay = 0.01;
    cases[6].maximize = true;
    cases[7] = gf_optim_default_params(GF_OPTIM_RMSPROP);
    cases[7].centered = true;
    cases[8] = gf_optim_default_params(GF_OPTIM_ADAGRAD);
    cases[9] = gf_optim_default_params(GF_OPTIM_ADAGRAD);
    cases[9].lr_decay = 0.1;
    cases[9].weight_decay = 0.02;
    cases[9].initial_accumulator_value = 0.5;
    for (int c = 0; c < 10; c++) {
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

static cJSON *load_fixture(const char *file) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", src ? src : ".", file);
    char *text = test_read_text(path);
    if (!text) fprintf(stderr, "cannot read %s (set GRAFT_SOURCE_DIR)\n", path);
    CHECK(text != NULL);
    if (!text) return NULL;
    cJSON *doc = cJSON_Parse(text);
    free(text);
    CHECK(doc != NULL);
    return doc;
}

/* clip_grad_norm_ / clip_grad_value_ against torch.nn.utils: the total norm and the clipped
 * gradients within 1e-6 relative (the norm is summed in double here, in float32 by PyTorch). */
static void test_clip(gf_ctx *ctx) {
    cJSON *doc = load_fixture("optim_trajectories.json");
    if (!doc) return;
    const cJSON *c;
    int n_cases = 0;
    double max_rel = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(doc, "clip")) {
        gf_tensor *t[5] = {0};
        const cJSON *shapes = cJSON_GetObjectItemCaseSensitive(c, "shapes");
        const cJSON *grads = cJSON_GetObjectItemCaseSensitive(c, "grads");
        int nt = cJSON_GetArraySize(shapes);
        CHECK(nt == 3);
        for (int i = 0; i < nt; i++) {
            const cJSON *sh = cJSON_GetArrayItem(shapes, i);
            int64_t dims[4];
            int nd = cJSON_GetArraySize(sh);
            for (int d = 0; d < nd; d++) dims[d] = cJSON_GetArrayItem(sh, d)->valueint;
            t[i] = gf_tensor_new(ctx, GF_F32, nd, dims);
            gf_tensor_set_requires_grad(t[i], true);
            t[i]->grad = gf_tensor_new(ctx, GF_F32, nd, dims);
            to_floats(cJSON_GetArrayItem(grads, i), gf_f32(t[i]->grad));
        }
        int64_t d4[] = {4};
        t[3] = gf_tensor_new(ctx, GF_F32, 1, d4); /* no gradient: skipped */
        t[4] = NULL;                              /* NULL entries are skipped too */
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(c, "value");
        if (value) {
            CHECK(gf_clip_grad_value(ctx, t, 5, value->valuedouble) == GF_OK);
        } else {
            const cJSON *jn = cJSON_GetObjectItemCaseSensitive(c, "norm_type");
            double norm_type = cJSON_IsString(jn) ? INFINITY : jn->valuedouble;
            double total = -1;
            CHECK(gf_clip_grad_norm(ctx, t, 5, num(c, "max_norm", -1), norm_type, true, &total) ==
                  GF_OK);
            double want = num(c, "total_norm", -1);
            if (fabs(total - want) / want > max_rel) max_rel = fabs(total - want) / want;
            if (!close_to(total, want))
                fprintf(stderr, "clip case %d: total norm %.9g, torch %.9g\n", n_cases, total, want);
            CHECK(close_to(total, want));
        }
        for (int i = 0; i < nt; i++)
            compare("clipped", "clip", "g", n_cases, gf_f32(t[i]->grad),
                    cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "clipped"), i),
                    t[i]->numel, &max_rel);
        for (int i = 0; i < 4; i++) gf_tensor_free(t[i]);
        n_cases++;
    }
    CHECK(n_cases >= 8);
    printf("  %-20s %d cases, max relative difference %.3g\n", "clip", n_cases, max_rel);
    /* errors and edge cases */
    double total = -1;
    CHECK(gf_clip_grad_norm(ctx, NULL, 0, 1.0, 2.0, false, &total) == GF_OK && total == 0.0);
    int64_t d2[] = {2};
    gf_tensor *p = gf_tensor_new(ctx, GF_F32, 1, d2);
    gf_tensor_set_requires_grad(p, true);
    p->grad = gf_tensor_new(ctx, GF_F32, 1, d2);
    gf_f32(p->grad)[0] = NAN;
    gf_f32(p->grad)[1] = 1.0f;
    gf_ctx_clear_error(ctx);
    CHECK(gf_clip_grad_norm(ctx, &p, 1, 1.0, 2.0, true, &total) == GF_ERR_NUMERIC);
    CHECK(strstr(gf_ctx_error(ctx), "non-finite") || strstr(gf_ctx_error(ctx), "nan"));
    CHECK(gf_f32(p->grad)[1] == 1.0f); /* untouched */
    gf_ctx_clear_error(ctx);
    CHECK(gf_clip_grad_norm(ctx, &p, 1, 1.0, 0.0, false, &total) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_clip_grad_norm(ctx, &p, 1, -1.0, 2.0, false, &total) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_clip_grad_value(ctx, &p, 1, -0.5) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_clip_grad_norm(ctx, &p, 1, 1.0, 2.0, false, &total) == GF_OK);
    CHECK(isnan(gf_f32(p->grad)[1])); /* like PyTorch: scaled by NaN */
    gf_tensor_free(p);
    cJSON_Delete(doc);
}

/* Fills the gradients of ps[0..n) for step s from a generator seeded by (seed, s); a parameter
 * whose index is in `late` gets none before step 3. */
static void fill_grads(gf_ctx *ctx, gf_tensor **ps, int n, uint64_t seed, int s, int late) {
    gf_rng r;
    gf_rng_seed(&r, seed * 1000 + (uint64_t)s);
    for (int i = 0; i < n; i++) {
        if (!ps[i]->requires_grad) continue;
        if (i == late && s < 3) {
            gf_tensor_free(ps[i]->grad);
            ps[i]->grad = NULL;
            continue;
        }
        if (!ps[i]->grad) ps[i]->grad = gf_tensor_new(ctx, GF_F32, ps[i]->ndim, ps[i]->shape);
        for (int64_t k = 0; k < ps[i]->numel; k++)
            gf_f32(ps[i]->grad)[k] = gf_rng_normal(&r) * (k % 5 == 0 ? 0.01f : 1.0f);
    }
}

static gf_tensor *new_param(gf_ctx *ctx, int64_t rows, int64_t cols, uint64_t seed) {
    int64_t d[] = {rows, cols};
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, cols ? 2 : 1, d);
    gf_rng r;
    gf_rng_seed(&r, seed);
    for (int64_t k = 0; k < t->numel; k++) gf_f32(t)[k] = gf_rng_normal(&r);
    gf_tensor_set_requires_grad(t, true);
    return t;
}

static bool bitwise_equal(const gf_tensor *a, const gf_tensor *b) {
    return a->numel == b->numel && memcmp(a->data, b->data, sizeof(float) * (size_t)a->numel) == 0;
}

/* A group with its own hyperparameters updates exactly like a separate optimizer with them. */
static void test_groups(gf_ctx *ctx) {
    for (int kind = 0; kind < GF_OPTIM_KIND_COUNT; kind++) {
        gf_optim_params ha = gf_optim_default_params((gf_optim_kind)kind);
        ha.lr = 0.05;
        ha.momentum = kind == GF_OPTIM_SGD || kind == GF_OPTIM_RMSPROP ? 0.9 : 0.0;
        gf_optim_params hb = ha;
        hb.lr = 0.01;
        hb.weight_decay = 0.1;
        hb.centered = true;
        gf_tensor *g1[2] = {new_param(ctx, 3, 4, 1), new_param(ctx, 5, 0, 2)};
        gf_tensor *s1[1] = {new_param(ctx, 3, 4, 1)}, *s2[1] = {new_param(ctx, 5, 0, 2)};
        const char *na[] = {"a.weight"}, *nb[] = {"b.bias"};
        gf_optim_group groups[2] = {{"trunk", &ha, &g1[0], na, 1}, {"head", &hb, &g1[1], nb, 1}};
        gf_optim *og = gf_optim_new_groups(ctx, &ha, groups, 2);
        gf_optim *oa = gf_optim_new(ctx, &ha, s1, 1), *ob = gf_optim_new(ctx, &hb, s2, 1);
        CHECK(og && oa && ob);
        if (!og || !oa || !ob) return;
        CHECK(gf_optim_n_groups(og) == 2 && strcmp(gf_optim_group_name(og, 1), "head") == 0);
        CHECK(gf_optim_group_lr(og, 1) == 0.01 && gf_optim_param_group(og, 1) == 1);
        CHECK(strcmp(gf_optim_param_name(og, 1), "b.bias") == 0);
        CHECK(gf_optim_find_param(og, "a.weight") == 0 && gf_optim_find_param(og, "x") == -1);
        CHECK(strcmp(gf_optim_param_name(oa, 0), "0") == 0);
        for (int s = 0; s < 6; s++) {
            fill_grads(ctx, g1, 2, 5, s, -1);
            fill_grads(ctx, s1, 1, 5, s, -1);
            gf_rng r; /* s2 gets g1[1]'s gradient */
            (void)r;
            if (!s2[0]->grad) s2[0]->grad = gf_tensor_new(ctx, GF_F32, 1, s2[0]->shape);
            memcpy(gf_f32(s2[0]->grad), gf_f32(g1[1]->grad), sizeof(float) * 5);
            CHECK(gf_optim_step(ctx, og) == GF_OK && gf_optim_step(ctx, oa) == GF_OK &&
                  gf_optim_step(ctx, ob) == GF_OK);
        }
        CHECK(bitwise_equal(g1[0], s1[0]));
        CHECK(bitwise_equal(g1[1], s2[0]));
        /* set_lr changes every group; set_group_params checks */
        gf_optim_set_lr(og, 0.5);
        CHECK(gf_optim_group_lr(og, 0) == 0.5 && gf_optim_group_lr(og, 1) == 0.5);
        gf_optim_params bad = hb;
        bad.lr = 0;
        gf_ctx_clear_error(ctx);
        CHECK(gf_optim_set_group_params(ctx, og, 1, &bad) == GF_ERR_INVALID);
        bad = gf_optim_default_params(kind == GF_OPTIM_SGD ? GF_OPTIM_ADAM : GF_OPTIM_SGD);
        gf_ctx_clear_error(ctx);
        CHECK(gf_optim_set_group_params(ctx, og, 1, &bad) == GF_ERR_INVALID &&
              strstr(gf_ctx_error(ctx), "cannot change kind"));
        gf_ctx_clear_error(ctx);
        gf_optim_free(og);
        gf_optim_free(oa);
        gf_optim_free(ob);
        gf_tensor_free(g1[0]);
        gf_tensor_free(g1[1]);
        gf_tensor_free(s1[0]);
        gf_tensor_free(s2[0]);
    }
    /* errors of gf_optim_new_groups */
    gf_tensor *a = new_param(ctx, 2, 0, 1), *b = new_param(ctx, 2, 0, 2);
    gf_optim_params adam = gf_optim_default_params(GF_OPTIM_ADAM);
    gf_optim_params sgd = gf_optim_default_params(GF_OPTIM_SGD);
    gf_tensor *aa[] = {a}, *ab[] = {a, b};
    const char *same[] = {"x", "x"};
    gf_optim_group g2[2] = {{"one", NULL, aa, NULL, 1}, {"two", NULL, aa, NULL, 1}};
    EXPECT_ERR(ctx, gf_optim_new_groups(ctx, &adam, g2, 2), GF_ERR_INVALID, "same tensor", "one",
               "two");
    gf_optim_group g3[1] = {{"dup", NULL, ab, same, 2}};
    EXPECT_ERR(ctx, gf_optim_new_groups(ctx, &adam, g3, 1), GF_ERR_INVALID, "'x' appears twice");
    gf_optim_group g4[1] = {{"mixed", &sgd, aa, NULL, 1}};
    EXPECT_ERR(ctx, gf_optim_new_groups(ctx, &adam, g4, 1), GF_ERR_INVALID, "mixed", "sgd", "adam");
    gf_optim_group g5[1] = {{"empty", NULL, aa, NULL, 0}};
    EXPECT_ERR(ctx, gf_optim_new_groups(ctx, &adam, g5, 1), GF_ERR_INVALID, "no parameters");
    EXPECT_ERR(ctx, gf_optim_new_groups(ctx, &adam, NULL, 0), GF_ERR_INVALID, "at least one");
    gf_optim_params zero = adam;
    zero.lr = 0.0;
    gf_optim_group g6[1] = {{"zero", &zero, aa, NULL, 1}};
    EXPECT_ERR(ctx, gf_optim_new_groups(ctx, &adam, g6, 1), GF_ERR_INVALID, "learning rate 0");
    gf_ctx_clear_error(ctx);
    gf_tensor_free(a);
    gf_tensor_free(b);
}

/* [N, 6] -> Linear(6, 4) -> ReLU -> Linear(4, 3): names 0.weight, 0.bias, 2.weight, 2.bias. */
static gf_module *small_mlp(gf_ctx *ctx, uint64_t seed) {
    gf_rng r;
    gf_rng_seed(&r, seed);
    gf_module *kids[] = {gf_nn_linear(ctx, &r, 6, 4, true), gf_nn_relu(ctx),
                         gf_nn_linear(ctx, &r, 4, 3, true)};
    return gf_nn_sequential_of(ctx, 3, kids);
}

static void test_module_groups(gf_ctx *ctx) {
    gf_module *m = small_mlp(ctx, 3);
    CHECK(m != NULL);
    if (!m) return;
    gf_optim_params def = gf_optim_default_params(GF_OPTIM_ADAMW);
    def.lr = 1e-4;
    gf_optim_params head = def;
    head.lr = 1e-2;
    gf_group_spec one[] = {{"head", "2.*", &head}};
    gf_optim *o = gf_train_optim_new(ctx, m, &def, one, 1);
    CHECK(o && gf_optim_n_groups(o) == 2);
    if (o) {
        CHECK(strcmp(gf_optim_group_name(o, 0), "head") == 0);
        CHECK(strcmp(gf_optim_group_name(o, 1), "default") == 0);
        CHECK(gf_optim_group_count(o, 0) == 2 && gf_optim_group_count(o, 1) == 2);
        CHECK(strcmp(gf_optim_param_name(o, 0), "2.weight") == 0);
        CHECK(strcmp(gf_optim_param_name(o, 3), "0.bias") == 0);
        CHECK(gf_optim_group_lr(o, 0) == 1e-2 && gf_optim_group_lr(o, 1) == 1e-4);
        CHECK(gf_optim_param(o, 0) == gf_module_tensor(NULL, m, "2.weight"));
    }
    gf_optim_free(o);
    /* decay / no-decay split covering everything: no default group */
    gf_optim_params nodecay = def;
    nodecay.weight_decay = 0;
    gf_group_spec split[] = {{"decay", " *.weight ", NULL}, {NULL, "*.bias", &nodecay}};
    o = gf_train_optim_new(ctx, m, &def, split, 2);
    CHECK(o && gf_optim_n_groups(o) == 2);
    if (o) {
        CHECK(strcmp(gf_optim_group_name(o, 1), "*.bias") == 0);
        CHECK(gf_optim_group_params(o, 1)->weight_decay == 0.0);
        CHECK(gf_optim_group_params(o, 0)->weight_decay == def.weight_decay);
    }
    gf_optim_free(o);
    /* errors */
    gf_group_spec typo[] = {{"head", "2.*, fc.*", &head}};
    EXPECT_ERR(ctx, gf_train_optim_new(ctx, m, &def, typo, 1), GF_ERR_INVALID, "'fc.*'",
               "matches no parameter", "head", "0.weight");
    gf_group_spec overlap[] = {{"weights", "*.weight", NULL}, {"first", "0.*", &head}};
    EXPECT_ERR(ctx, gf_train_optim_new(ctx, m, &def, overlap, 2), GF_ERR_INVALID, "'0.weight'",
               "two groups", "weights", "first");
    gf_group_spec empty[] = {{"nothing", " , ", NULL}};
    EXPECT_ERR(ctx, gf_train_optim_new(ctx, m, &def, empty, 1), GF_ERR_INVALID, "no patterns");
    gf_optim_params sgd = gf_optim_default_params(GF_OPTIM_SGD);
    gf_group_spec kind[] = {{"head", "2.*", &sgd}};
    EXPECT_ERR(ctx, gf_train_optim_new(ctx, m, &def, kind, 1), GF_ERR_INVALID, "sgd", "adamw");
    gf_optim_params neg = head;
    neg.lr = -1e-3;
    gf_group_spec negs[] = {{"head", "2.*", &neg}};
    EXPECT_ERR(ctx, gf_train_optim_new(ctx, m, &def, negs, 1), GF_ERR_INVALID, "learning rate");
    gf_ctx_clear_error(ctx);

    /* Frozen parameters: no gradient, no state, no decay; they stay bitwise as they were. */
    gf_tensor *w0 = gf_module_tensor(NULL, m, "0.weight");
    gf_tensor_set_requires_grad(w0, false);
    float *before = malloc(sizeof(float) * (size_t)w0->numel);
    memcpy(before, gf_f32(w0), sizeof(float) * (size_t)w0->numel);
    o = gf_train_optim_new(ctx, m, &def, one, 1);
    CHECK(o != NULL);
    int64_t xs[] = {5, 6};
    for (int s = 0; s < 4 && o; s++) {
        gf_tensor *x = gf_randn(ctx, 2, xs, 0, 1);
        gf_tensor *y = gf_module_forward(ctx, m, x);
        gf_tensor *loss = gf_mean(ctx, gf_mul(ctx, y, y), NULL, 0, false);
        gf_optim_zero_grad(o);
        CHECK(loss && gf_backward(ctx, loss) == GF_OK && gf_optim_step(ctx, o) == GF_OK);
        gf_ctx_reset(ctx);
    }
    if (o) {
        int i0 = gf_optim_find_param(o, "0.weight");
        CHECK(memcmp(before, gf_f32(w0), sizeof(float) * (size_t)w0->numel) == 0);
        CHECK(w0->grad == NULL);
        CHECK(gf_optim_state(o, i0, "exp_avg") == NULL && gf_optim_param_steps(o, i0) == 0);
        /* state for 0.bias (4), 2.weight (12), 2.bias (3): exp_avg + exp_avg_sq */
        CHECK(gf_optim_state_bytes(o) == 2 * sizeof(float) * (4 + 12 + 3));
    }
    gf_optim_free(o);
    free(before);
    gf_module_free(m);
}

/* Runs `steps` steps (from step `from`) with fill_grads gradients. */
static void run_steps(gf_ctx *ctx, gf_optim *o, gf_tensor **ps, int n, int from, int steps,
                      int late) {
    for (int s = from; s < from + steps; s++) {
        fill_grads(ctx, ps, n, 9, s, late);
        CHECK(gf_optim_step(ctx, o) == GF_OK);
    }
}

/* Export after K steps, write to safetensors, read back into a fresh optimizer, continue:
 * bitwise the same as K + M uninterrupted steps, for every kind. */
static void test_state_roundtrip(gf_ctx *ctx) {
    enum { NP = 4, K = 5, M = 4 };
    const char *names[NP] = {"layer.weight", "layer.bias", "late", "frozen"};
    for (int kind = 0; kind < GF_OPTIM_KIND_COUNT; kind++) {
        gf_optim_params hp = gf_optim_default_params((gf_optim_kind)kind);
        hp.momentum = 0.8;
        hp.amsgrad = true;
        hp.centered = true;
        hp.weight_decay = 0.01;
        hp.lr_decay = 0.01;
        gf_optim_params hp2 = hp;
        hp2.lr *= 0.1;
        gf_tensor *ref[NP], *run[NP];
        for (int i = 0; i < NP; i++) {
            ref[i] = new_param(ctx, i == 0 ? 3 : 4, i == 0 ? 2 : 0, 40 + (uint64_t)i);
            run[i] = new_param(ctx, i == 0 ? 3 : 4, i == 0 ? 2 : 0, 40 + (uint64_t)i);
        }
        gf_tensor_set_requires_grad(ref[3], false);
        gf_tensor_set_requires_grad(run[3], false);
        gf_optim_group gr[2] = {{"body", &hp, ref, names, 2}, {"rest", &hp2, ref + 2, names + 2, 2}};
        gf_optim_group gr2[2] = {{"body", &hp, run, names, 2}, {"rest", &hp2, run + 2, names + 2, 2}};
        gf_optim *a = gf_optim_new_groups(ctx, &hp, gr, 2);
        gf_optim *b = gf_optim_new_groups(ctx, &hp, gr2, 2);
        CHECK(a && b);
        if (!a || !b) return;
        run_steps(ctx, a, ref, NP, 0, K + M, 2);
        run_steps(ctx, b, run, NP, 0, K, 2);
        gf_optim_set_group_lr(b, 1, gf_optim_group_lr(b, 1)); /* no-op, API check */
        gf_state_list *l = gf_state_list_new(ctx);
        CHECK(gf_optim_export(ctx, b, l) == GF_OK);
        CHECK(strcmp(gf_state_list_get_meta(l, "optim.kind"), gf_optim_kind_name(kind)) == 0);
        CHECK(gf_state_list_get_meta(l, "optim.step.frozen") == NULL);
        CHECK(strcmp(gf_state_list_get_meta(l, "optim.step.late"), "2") == 0);
        CHECK(strcmp(gf_state_list_get_meta(l, "optim.group.1.params"), "late,frozen") == 0);
        const char *path = "test_optim_state.safetensors";
        gf_st_writer *w = gf_st_writer_new(ctx);
        CHECK(gf_state_list_to_writer(ctx, l, w) == GF_OK);
        CHECK(gf_st_writer_save(w, path) == GF_OK);
        gf_st_writer_free(w);
        gf_state_list_free(l);
        gf_optim_free(b);
        /* a fresh optimizer with other hyperparameters: import restores them */
        gf_optim_params other = gf_optim_default_params((gf_optim_kind)kind);
        gf_optim *c = gf_optim_new_groups(ctx, &other, (gf_optim_group[]){
            {"body", NULL, run, names, 2}, {"rest", NULL, run + 2, names + 2, 2}}, 2);
        gf_st_file *f = gf_st_open(ctx, path);
        CHECK(f != NULL);
        gf_state_list *l2 = f ? gf_state_list_from_file(ctx, f, "optim.") : NULL;
        CHECK(l2 != NULL);
        CHECK(c && gf_optim_import(ctx, c, l2) == GF_OK);
        if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "import: %s\n", gf_ctx_error(ctx));
        CHECK(gf_optim_steps(c) == K && gf_optim_group_lr(c, 1) == hp2.lr);
        run_steps(ctx, c, run, NP, K, M, 2);
        for (int i = 0; i < NP; i++) CHECK(bitwise_equal(ref[i], run[i]));
        for (int i = 0; i < NP; i++)
            for (int k = 0; k < GF_OPTIM_MAX_BUFS; k++) {
                const char *key = gf_optim_buf_key((gf_optim_kind)kind, k);
                const float *sa = key ? gf_optim_state(a, i, key) : NULL;
                const float *sc = key ? gf_optim_state(c, i, key) : NULL;
                CHECK((sa == NULL) == (sc == NULL));
                if (sa && sc) CHECK(memcmp(sa, sc, sizeof(float) * (size_t)ref[i]->numel) == 0);
            }
        CHECK(gf_optim_state_bytes(a) == gf_optim_state_bytes(c));
        if (kind == GF_OPTIM_ADAM && l2) {
            /* refusals leave the optimizer as it was */
            int64_t steps = gf_optim_steps(c);
            gf_optim *sgd = gf_optim_new(ctx, &(gf_optim_params){.kind = GF_OPTIM_SGD, .lr = 0.1},
                                         run, 2);
            gf_ctx_clear_error(ctx);
            CHECK(gf_optim_import(ctx, sgd, l2) == GF_ERR_INVALID &&
                  strstr(gf_ctx_error(ctx), "the state is for adam"));
            gf_optim_free(sgd);
            gf_optim *renamed = gf_optim_new(ctx, &hp, run, 4);
            gf_ctx_clear_error(ctx);
            CHECK(gf_optim_import(ctx, renamed, l2) == GF_ERR_INVALID &&
                  strstr(gf_ctx_error(ctx), "groups"));
            gf_optim_free(renamed);
            gf_state_list_set_meta(ctx, l2, "optim.group.0.bogus", "1");
            gf_ctx_clear_error(ctx);
            CHECK(gf_optim_import(ctx, c, l2) == GF_ERR_INVALID &&
                  strstr(gf_ctx_error(ctx), "unknown entry 'optim.group.0.bogus'"));
            CHECK(gf_optim_steps(c) == steps);
            gf_state_list *l3 = gf_state_list_new(ctx);
            gf_optim_export(ctx, c, l3);
            int64_t d7[] = {7};
            gf_state_list_add(ctx, l3, "optim.state.late.grad_avg", gf_tensor_new(ctx, GF_F32, 1, d7),
                              true);
            gf_ctx_clear_error(ctx);
            CHECK(gf_optim_import(ctx, c, l3) == GF_ERR_INVALID &&
                  strstr(gf_ctx_error(ctx), "optim.state.late.grad_avg"));
            gf_state_list_free(l3);
            l3 = gf_state_list_new(ctx);
            gf_optim_export(ctx, c, l3);
            gf_state_list *l4 = gf_state_list_new(ctx);
            for (int i = 0; i < gf_state_list_meta_count(l3); i++)
                gf_state_list_set_meta(ctx, l4, gf_state_list_meta_key(l3, i),
                                       gf_state_list_meta_value(l3, i));
            gf_state_list_add(ctx, l4, "optim.state.late.exp_avg", gf_tensor_new(ctx, GF_F32, 1, d7),
                              true);
            gf_ctx_clear_error(ctx);
            CHECK(gf_optim_import(ctx, c, l4) == GF_ERR_SHAPE && strstr(gf_ctx_error(ctx), "[7]"));
            CHECK(gf_state_list_add(ctx, l4, "optim.state.late.exp_avg", NULL, false) ==
                  GF_ERR_INVALID);
            gf_state_list_free(l3);
            gf_state_list_free(l4);
            gf_ctx_clear_error(ctx);
        }
        gf_state_list_free(l2);
        gf_st_close(f);
        remove(path);
        gf_optim_free(a);
        gf_optim_free(c);
        for (int i = 0; i < NP; i++) {
            gf_tensor_free(ref[i]);
            gf_tensor_free(run[i]);
        }
    }
}

/* lr 0 and new hyperparameter checks; names in messages. */
static void test_new_errors(gf_ctx *ctx) {
    gf_tensor *p = new_param(ctx, 2, 0, 1);
    struct {
        gf_optim_kind kind;
        const char *field;
        double value;
        const char *needle;
    } bad[] = {
        {GF_OPTIM_SGD, "lr", 0.0, "learning rate 0"},
        {GF_OPTIM_RMSPROP, "alpha", -0.5, "alpha"},
        {GF_OPTIM_RMSPROP, "eps", -1.0, "eps"},
        {GF_OPTIM_RMSPROP, "momentum", -0.1, "momentum"},
        {GF_OPTIM_ADAGRAD, "lr_decay", -1.0, "lr_decay"},
        {GF_OPTIM_ADAGRAD, "initial_accumulator_value", -1.0, "initial_accumulator_value"},
        {GF_OPTIM_ADAGRAD, "lr", INFINITY, "learning rate"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gf_optim_params hp = gf_optim_default_params(bad[i].kind);
        if (!strcmp(bad[i].field, "lr")) hp.lr = bad[i].value;
        if (!strcmp(bad[i].field, "alpha")) hp.alpha = bad[i].value;
        if (!strcmp(bad[i].field, "eps")) hp.eps = bad[i].value;
        if (!strcmp(bad[i].field, "momentum")) hp.momentum = bad[i].value;
        if (!strcmp(bad[i].field, "lr_decay")) hp.lr_decay = bad[i].value;
        if (!strcmp(bad[i].field, "initial_accumulator_value"))
            hp.initial_accumulator_value = bad[i].value;
        EXPECT_ERR(ctx, gf_optim_new(ctx, &hp, &p, 1), GF_ERR_INVALID, bad[i].needle,
                   gf_optim_kind_name(bad[i].kind));
    }
    gf_optim_params d = gf_optim_default_params(GF_OPTIM_RMSPROP);
    CHECK(d.lr == 1e-2 && d.alpha == 0.99 && d.eps == 1e-8 && d.momentum == 0 && !d.centered);
    d = gf_optim_default_params(GF_OPTIM_ADAGRAD);
    CHECK(d.lr == 1e-2 && d.eps == 1e-10 && d.lr_decay == 0 && d.initial_accumulator_value == 0);
    gf_optim_kind k;
    CHECK(gf_optim_kind_parse("rmsprop", &k) && k == GF_OPTIM_RMSPROP);
    CHECK(!gf_optim_kind_parse("Adam", &k) && !gf_optim_kind_parse(NULL, &k));
    CHECK(strcmp(gf_optim_kind_name(GF_OPTIM_ADAGRAD), "adagrad") == 0);
    gf_ctx_clear_error(ctx);
    gf_tensor_free(p);
}

int main(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_fixtures(ctx);
    test_errors(ctx);
    test_basics(ctx);
    test_fast_kernels(ctx);
    test_clip(ctx);
    test_groups(ctx);
    test_module_groups(ctx);
    test_state_roundtrip(ctx);
    test_new_errors(ctx);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "left error: %s\n", gf_ctx_error(ctx));
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_free(ctx);
    return test_finish("test_optim");
}
