/* Learning-rate schedule tests: 60+ steps of every schedule against torch.optim.lr_scheduler
 * (fixtures/optim_schedules.json: both groups' lr, and OneCycle's momentum / beta1, after
 * creation and after each step; compared bit for bit), state export / import giving the same
 * continuation, and the argument checks.
 * To add a case: append to SCHEDULES in fixtures/gen_optim.py and rerun it with
 * /usr/bin/python3; the keys map onto gf_sched_params in params_from_json below. */
#include "graft/graft.h"
#include "graft/sched.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const cJSON *get(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}
static double num(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = get(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? 1.0 : 0.0;
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* Arrays the params point into (kept alive for the schedule's creation). */
typedef struct arrays {
    int64_t milestones[16];
    double max_lrs[4], min_lrs[4];
} arrays;

static gf_sched_params params_from_json(const cJSON *c, arrays *a) {
    gf_sched_kind kind = GF_SCHED_KIND_COUNT;
    CHECK(gf_sched_kind_parse(get(c, "kind")->valuestring, &kind));
    gf_sched_params p = gf_sched_default_params(kind);
    p.step_size = (int64_t)num(c, "step_size", (double)p.step_size);
    p.gamma = num(c, "gamma", p.gamma);
    const cJSON *ms = get(c, "milestones");
    if (ms) {
        p.n_milestones = cJSON_GetArraySize(ms);
        for (int i = 0; i < p.n_milestones; i++)
            a->milestones[i] = (int64_t)cJSON_GetArrayItem(ms, i)->valuedouble;
        p.milestones = a->milestones;
    }
    p.t_max = (int64_t)num(c, "t_max", (double)p.t_max);
    p.eta_min = num(c, "eta_min", p.eta_min);
    p.start_factor = num(c, "start_factor", p.start_factor);
    p.end_factor = num(c, "end_factor", p.end_factor);
    p.total_iters = (int64_t)num(c, "total_iters", (double)p.total_iters);
    p.max_lr = num(c, "max_lr", p.max_lr);
    const cJSON *ml = get(c, "max_lrs");
    if (ml) {
        for (int i = 0; i < cJSON_GetArraySize(ml); i++)
            a->max_lrs[i] = cJSON_GetArrayItem(ml, i)->valuedouble;
        p.max_lrs = a->max_lrs;
    }
    p.total_steps = (int64_t)num(c, "total_steps", (double)p.total_steps);
    p.pct_start = num(c, "pct_start", p.pct_start);
    const cJSON *an = get(c, "anneal");
    if (an) p.anneal = strcmp(an->valuestring, "linear") == 0 ? GF_ANNEAL_LINEAR : GF_ANNEAL_COS;
    p.cycle_momentum = num(c, "cycle_momentum", p.cycle_momentum) != 0;
    p.base_momentum = num(c, "base_momentum", p.base_momentum);
    p.max_momentum = num(c, "max_momentum", p.max_momentum);
    p.div_factor = num(c, "div_factor", p.div_factor);
    p.final_div_factor = num(c, "final_div_factor", p.final_div_factor);
    p.three_phase = num(c, "three_phase", 0) != 0;
    p.mode_max = num(c, "mode_max", 0) != 0;
    p.threshold_abs = num(c, "threshold_abs", 0) != 0;
    p.factor = num(c, "factor", p.factor);
    p.patience = (int64_t)num(c, "patience", (double)p.patience);
    p.threshold = num(c, "threshold", p.threshold);
    p.cooldown = (int64_t)num(c, "cooldown", (double)p.cooldown);
    p.min_lr = num(c, "min_lr", p.min_lr);
    const cJSON *mn = get(c, "min_lrs");
    if (mn) {
        for (int i = 0; i < cJSON_GetArraySize(mn); i++)
            a->min_lrs[i] = cJSON_GetArrayItem(mn, i)->valuedouble;
        p.min_lrs = a->min_lrs;
    }
    p.eps = num(c, "eps", p.eps);
    return p;
}

/* An optimizer of `kind` with two groups (lr group_lrs[0], group_lrs[1]) over two small
 * tensors, as the generator builds it. */
typedef struct rig {
    gf_tensor *t[2];
    gf_optim *opt;
} rig;

static rig make_rig(gf_ctx *ctx, const char *kind, double lr0, double lr1) {
    rig r = {{NULL, NULL}, NULL};
    int64_t d2[] = {2}, d3[] = {3};
    r.t[0] = gf_tensor_new(ctx, GF_F32, 1, d2);
    r.t[1] = gf_tensor_new(ctx, GF_F32, 1, d3);
    gf_optim_kind k = GF_OPTIM_SGD;
    CHECK(gf_optim_kind_parse(kind, &k));
    gf_optim_params def = gf_optim_default_params(k);
    if (k == GF_OPTIM_SGD) def.lr = 0.05;
    gf_optim_params g0 = def, g1 = def;
    g0.lr = lr0;
    g1.lr = lr1;
    gf_optim_group groups[2] = {{"a", &g0, &r.t[0], NULL, 1}, {"b", &g1, &r.t[1], NULL, 1}};
    r.opt = gf_optim_new_groups(ctx, &def, groups, 2);
    CHECK(r.opt != NULL);
    return r;
}

static void free_rig(rig *r) {
    gf_optim_free(r->opt);
    gf_tensor_free(r->t[0]);
    gf_tensor_free(r->t[1]);
}

static gf_sched *make_sched(gf_ctx *ctx, gf_optim *opt, const cJSON *cfg) {
    arrays a;
    gf_sched_params p = params_from_json(cfg, &a);
    if (p.kind != GF_SCHED_SEQUENTIAL) return gf_sched_new(ctx, opt, &p);
    arrays b;
    gf_sched_params main = params_from_json(get(cfg, "main"), &b);
    return gf_sched_warmup(ctx, opt, (int64_t)num(cfg, "warmup_iters", 0),
                           num(cfg, "start_factor", 0), &main);
}

static int mismatches = 0;

/* Bit-for-bit comparison of group lrs (and momenta) with a fixture row. */
static void compare_row(const char *name, int step, const gf_optim *opt, const cJSON *row) {
    const cJSON *lr = get(row, "lr"), *mom = get(row, "mom");
    for (int g = 0; g < 2; g++) {
        double want = cJSON_GetArrayItem(lr, g)->valuedouble;
        double got = gf_optim_group_lr(opt, g);
        if (got != want && mismatches++ < 10)
            fprintf(stderr, "%s step %d group %d: lr %.17g, torch %.17g\n", name, step, g, got,
                    want);
        CHECK(got == want);
        if (!mom) continue;
        const gf_optim_params *hp = gf_optim_group_params(opt, g);
        bool beta = hp->kind == GF_OPTIM_ADAM || hp->kind == GF_OPTIM_ADAMW;
        double gm = beta ? hp->beta1 : hp->momentum;
        double wm = cJSON_GetArrayItem(mom, g)->valuedouble;
        if (gm != wm && mismatches++ < 10)
            fprintf(stderr, "%s step %d group %d: momentum %.17g, torch %.17g\n", name, step, g,
                    gm, wm);
        CHECK(gm == wm);
    }
}

static void test_fixtures(gf_ctx *ctx) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/optim_schedules.json", src ? src : ".");
    char *text = test_read_text(path);
    if (!text) fprintf(stderr, "cannot read %s (set GRAFT_SOURCE_DIR)\n", path);
    CHECK(text != NULL);
    if (!text) return;
    cJSON *doc = cJSON_Parse(text);
    free(text);
    const cJSON *run;
    int n_runs = 0;
    cJSON_ArrayForEach(run, get(doc, "runs")) {
        const cJSON *cfg = get(run, "config"), *rows = get(run, "rows");
        const cJSON *lrs = get(run, "group_lrs"), *metrics = get(run, "metrics");
        const char *name = get(cfg, "name")->valuestring;
        rig r = make_rig(ctx, get(run, "optim")->valuestring,
                         cJSON_GetArrayItem(lrs, 0)->valuedouble,
                         cJSON_GetArrayItem(lrs, 1)->valuedouble);
        gf_sched *s = r.opt ? make_sched(ctx, r.opt, cfg) : NULL;
        CHECK(s != NULL);
        if (!s) {
            fprintf(stderr, "%s: %s\n", name, gf_ctx_error(ctx));
            gf_ctx_clear_error(ctx);
            free_rig(&r);
            continue;
        }
        int n_rows = cJSON_GetArraySize(rows);
        CHECK(n_rows >= 51);
        compare_row(name, 0, r.opt, cJSON_GetArrayItem(rows, 0));
        for (int i = 1; i < n_rows; i++) {
            gf_status st = cJSON_IsArray(metrics)
                               ? gf_sched_step_metric(ctx, s,
                                                      cJSON_GetArrayItem(metrics, i - 1)->valuedouble)
                               : gf_sched_step(ctx, s);
            CHECK(st == GF_OK);
            compare_row(name, i, r.opt, cJSON_GetArrayItem(rows, i));
            CHECK(gf_sched_last_lr(s, 1) == gf_optim_group_lr(r.opt, 1));
        }
        CHECK(gf_sched_last_epoch(s) == n_rows - 1);
        printf("  %-32s %d steps: %s\n", name, n_rows - 1, mismatches ? "DIFFERS" : "bitwise");
        gf_sched_free(s);
        free_rig(&r);
        n_runs++;
    }
    CHECK(n_runs >= 20);
    cJSON_Delete(doc);
}

/* Export optimizer + schedule after K steps, import into fresh ones, continue: the lrs and the
 * trained parameters are bitwise those of an uninterrupted run. */
static void roundtrip_case(gf_ctx *ctx, const char *optim, gf_sched_params p, int warmup) {
    enum { K = 7, M = 9 };
    rig a = make_rig(ctx, optim, 0.1, 0.02), b = make_rig(ctx, optim, 0.1, 0.02);
    gf_sched *sa = warmup ? gf_sched_warmup(ctx, a.opt, warmup, 0.1, &p) : gf_sched_new(ctx, a.opt, &p);
    gf_sched *sb = warmup ? gf_sched_warmup(ctx, b.opt, warmup, 0.1, &p) : gf_sched_new(ctx, b.opt, &p);
    CHECK(sa && sb);
    if (!sa || !sb) {
        fprintf(stderr, "%s\n", gf_ctx_error(ctx));
        return;
    }
    gf_rng r;
    gf_rng_seed(&r, 3);
    float grads[K + M][5];
    for (int s = 0; s < K + M; s++)
        for (int i = 0; i < 5; i++) grads[s][i] = gf_rng_normal(&r);
    rig *rigs[2] = {&a, &b};
    for (int q = 0; q < 2; q++)
        for (int i = 0; i < 2; i++) {
            gf_tensor_set_requires_grad(rigs[q]->t[i], true);
            rigs[q]->t[i]->grad = gf_tensor_new(ctx, GF_F32, 1, rigs[q]->t[i]->shape);
        }
    double metric = 1.0;
#define STEP(R, S, s)                                                                      \
    do {                                                                                   \
        memcpy(gf_f32((R).t[0]->grad), grads[s], 2 * sizeof(float));                      \
        memcpy(gf_f32((R).t[1]->grad), grads[s] + 2, 3 * sizeof(float));                  \
        CHECK(gf_optim_step(ctx, (R).opt) == GF_OK);                                       \
        CHECK(gf_sched_step_metric(ctx, S, metric + (s % 3 == 0 ? 0.0 : 0.5)) == GF_OK);   \
    } while (0)
    for (int s = 0; s < K + M; s++) STEP(a, sa, s);
    for (int s = 0; s < K; s++) STEP(b, sb, s);
    gf_state_list *l = gf_state_list_new(ctx);
    CHECK(gf_optim_export(ctx, b.opt, l) == GF_OK && gf_sched_export(ctx, sb, l) == GF_OK);
    /* the list borrows b's buffers: keep b until the import */
    gf_sched *old_sb = sb;
    rig old_b = b;
    /* fresh ones, made the same way; importing puts them where b was */
    b = make_rig(ctx, optim, 0.1, 0.02);
    sb = warmup ? gf_sched_warmup(ctx, b.opt, warmup, 0.1, &p) : gf_sched_new(ctx, b.opt, &p);
    for (int i = 0; i < 2; i++) {
        gf_tensor_set_requires_grad(b.t[i], true);
        b.t[i]->grad = gf_tensor_new(ctx, GF_F32, 1, b.t[i]->shape);
    }
    /* the parameters themselves travel with the model's weights (not part of this state):
     * replay the K steps on a scratch rig to get them */
    {
        /* replay the K steps on a scratch rig to recover the parameters at step K */
        rig c = make_rig(ctx, optim, 0.1, 0.02);
        gf_sched *sc = warmup ? gf_sched_warmup(ctx, c.opt, warmup, 0.1, &p)
                              : gf_sched_new(ctx, c.opt, &p);
        for (int i = 0; i < 2; i++) {
            gf_tensor_set_requires_grad(c.t[i], true);
            c.t[i]->grad = gf_tensor_new(ctx, GF_F32, 1, c.t[i]->shape);
        }
        for (int s = 0; s < K; s++) STEP(c, sc, s);
        for (int i = 0; i < 2; i++)
            memcpy(gf_f32(b.t[i]), gf_f32(c.t[i]), sizeof(float) * (size_t)b.t[i]->numel);
        gf_sched_free(sc);
        free_rig(&c);
    }
    CHECK(gf_optim_import(ctx, b.opt, l) == GF_OK);
    CHECK(gf_sched_import(ctx, sb, l) == GF_OK);
    gf_sched_free(old_sb);
    free_rig(&old_b);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    CHECK(gf_sched_last_epoch(sb) == K);
    for (int s = K; s < K + M; s++) STEP(b, sb, s);
#undef STEP
    for (int g = 0; g < 2; g++) {
        CHECK(gf_optim_group_lr(a.opt, g) == gf_optim_group_lr(b.opt, g));
        CHECK(gf_sched_last_lr(sa, g) == gf_sched_last_lr(sb, g));
        CHECK(memcmp(gf_f32(a.t[g]), gf_f32(b.t[g]), sizeof(float) * (size_t)a.t[g]->numel) == 0);
    }
    gf_state_list_free(l);
    gf_sched_free(sa);
    gf_sched_free(sb);
    free_rig(&a);
    free_rig(&b);
}

static void test_roundtrip(gf_ctx *ctx) {
    gf_sched_params p = gf_sched_default_params(GF_SCHED_ONECYCLE);
    p.max_lr = 0.05;
    p.total_steps = 20;
    roundtrip_case(ctx, "adam", p, 0);
    roundtrip_case(ctx, "sgd", p, 0);
    p = gf_sched_default_params(GF_SCHED_COSINE);
    p.t_max = 10;
    roundtrip_case(ctx, "rmsprop", p, 0);
    roundtrip_case(ctx, "adamw", p, 4);
    p = gf_sched_default_params(GF_SCHED_PLATEAU);
    p.patience = 1;
    p.cooldown = 1;
    roundtrip_case(ctx, "sgd", p, 0);
    p = gf_sched_default_params(GF_SCHED_STEP);
    p.step_size = 3;
    roundtrip_case(ctx, "adagrad", p, 0);
}

static void test_errors(gf_ctx *ctx) {
    rig r = make_rig(ctx, "sgd", 0.1, 0.01);
    gf_sched_params p;
#define BAD(setup, ...)                                                                    \
    do {                                                                                   \
        setup;                                                                             \
        EXPECT_ERR(ctx, gf_sched_new(ctx, r.opt, &p), GF_ERR_INVALID, __VA_ARGS__);         \
    } while (0)
    BAD((p = gf_sched_default_params(GF_SCHED_STEP), p.step_size = 0), "StepLR", "step_size");
    BAD((p = gf_sched_default_params(GF_SCHED_STEP), p.gamma = -1), "StepLR", "gamma");
    BAD((p = gf_sched_default_params(GF_SCHED_MULTISTEP)), "MultiStepLR", "milestones");
    BAD((p = gf_sched_default_params(GF_SCHED_COSINE), p.t_max = 0), "CosineAnnealingLR", "T_max");
    BAD((p = gf_sched_default_params(GF_SCHED_LINEAR), p.start_factor = 0), "LinearLR",
        "start_factor");
    BAD((p = gf_sched_default_params(GF_SCHED_LINEAR), p.end_factor = 1.5), "LinearLR",
        "end_factor");
    BAD((p = gf_sched_default_params(GF_SCHED_ONECYCLE), p.max_lr = 0.1), "OneCycleLR",
        "total_steps");
    BAD((p = gf_sched_default_params(GF_SCHED_ONECYCLE), p.total_steps = 10), "OneCycleLR",
        "max_lr 0");
    BAD((p = gf_sched_default_params(GF_SCHED_ONECYCLE), p.total_steps = 10, p.max_lr = 1,
         p.pct_start = 1.5), "pct_start");
    BAD((p = gf_sched_default_params(GF_SCHED_PLATEAU), p.factor = 1.0), "ReduceLROnPlateau",
        "factor");
    BAD((p = gf_sched_default_params(GF_SCHED_PLATEAU), p.min_lr = -1), "min_lr");
    BAD((p = gf_sched_default_params(GF_SCHED_SEQUENTIAL)), "gf_sched_sequential");
    BAD((p = gf_sched_default_params((gf_sched_kind)99)), "unknown");
#undef BAD
    /* OneCycle on Adagrad needs cycle_momentum false */
    rig ada = make_rig(ctx, "adagrad", 0.1, 0.01);
    p = gf_sched_default_params(GF_SCHED_ONECYCLE);
    p.total_steps = 3;
    p.max_lr = 0.1;
    EXPECT_ERR(ctx, gf_sched_new(ctx, ada.opt, &p), GF_ERR_INVALID, "cycle_momentum");
    p.cycle_momentum = false;
    gf_sched *s = gf_sched_new(ctx, ada.opt, &p);
    CHECK(s != NULL);
    for (int i = 0; i < 3; i++) CHECK(gf_sched_step(ctx, s) == GF_OK);
    gf_ctx_clear_error(ctx);
    CHECK(gf_sched_step(ctx, s) == GF_ERR_STATE && strstr(gf_ctx_error(ctx), "total_steps is 3"));
    gf_ctx_clear_error(ctx);
    gf_sched_free(s);
    free_rig(&ada);
    /* plateau needs a metric */
    p = gf_sched_default_params(GF_SCHED_PLATEAU);
    s = gf_sched_new(ctx, r.opt, &p);
    CHECK(s && gf_sched_step(ctx, s) == GF_ERR_INVALID && strstr(gf_ctx_error(ctx), "metric"));
    gf_ctx_clear_error(ctx);
    /* sequential: a plateau child, bad milestones, another optimizer; children are freed */
    gf_sched_params st = gf_sched_default_params(GF_SCHED_STEP);
    gf_sched *kids[2] = {gf_sched_new(ctx, r.opt, &st), s};
    int64_t ms[] = {3};
    EXPECT_ERR(ctx, gf_sched_sequential(ctx, r.opt, kids, 2, ms), GF_ERR_INVALID,
               "ReduceLROnPlateau");
    kids[0] = gf_sched_new(ctx, r.opt, &st);
    kids[1] = gf_sched_new(ctx, r.opt, &st);
    int64_t zero[] = {0};
    EXPECT_ERR(ctx, gf_sched_sequential(ctx, r.opt, kids, 2, zero), GF_ERR_INVALID, "milestones");
    rig other = make_rig(ctx, "sgd", 0.1, 0.01);
    kids[0] = gf_sched_new(ctx, r.opt, &st);
    kids[1] = gf_sched_new(ctx, other.opt, &st);
    EXPECT_ERR(ctx, gf_sched_sequential(ctx, r.opt, kids, 2, ms), GF_ERR_INVALID,
               "another optimizer");
    free_rig(&other);
    /* import: wrong kind, unknown key; the schedule is unchanged */
    gf_sched *a = gf_sched_new(ctx, r.opt, &st);
    gf_sched_params cos = gf_sched_default_params(GF_SCHED_COSINE);
    cos.t_max = 5;
    gf_sched *b = gf_sched_new(ctx, r.opt, &cos);
    gf_state_list *l = gf_state_list_new(ctx);
    CHECK(gf_sched_step(ctx, a) == GF_OK && gf_sched_export(ctx, a, l) == GF_OK);
    gf_ctx_clear_error(ctx);
    CHECK(gf_sched_import(ctx, b, l) == GF_ERR_INVALID && strstr(gf_ctx_error(ctx), "cosine"));
    CHECK(gf_sched_last_epoch(b) == 0);
    gf_state_list_set_meta(ctx, l, "sched.warmup", "3");
    gf_ctx_clear_error(ctx);
    CHECK(gf_sched_import(ctx, a, l) == GF_ERR_INVALID && strstr(gf_ctx_error(ctx), "sched.warmup"));
    gf_ctx_clear_error(ctx);
    gf_state_list_free(l);
    gf_sched_free(a);
    gf_sched_free(b);
    CHECK(strcmp(gf_sched_kind_name(GF_SCHED_ONECYCLE), "onecycle") == 0);
    CHECK(gf_sched_default_params(GF_SCHED_ONECYCLE).interval == GF_SCHED_PER_STEP);
    CHECK(gf_sched_default_params(GF_SCHED_COSINE).interval == GF_SCHED_PER_EPOCH);
    free_rig(&r);
}

/* Known answers: the per-group lrs keep their ratio under the chainable schedules. */
static void test_known(gf_ctx *ctx) {
    rig r = make_rig(ctx, "adam", 0.1, 0.01);
    gf_sched_params p = gf_sched_default_params(GF_SCHED_STEP);
    p.step_size = 2;
    p.gamma = 0.5;
    gf_sched *s = gf_sched_new(ctx, r.opt, &p);
    CHECK(gf_optim_group_lr(r.opt, 0) == 0.1);
    for (int i = 0; i < 4; i++) gf_sched_step(ctx, s);
    CHECK(gf_optim_group_lr(r.opt, 0) == 0.025 && gf_optim_group_lr(r.opt, 1) == 0.0025);
    CHECK(gf_sched_get_kind(s) == GF_SCHED_STEP);
    gf_sched_free(s);
    free_rig(&r);
}

int main(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_fixtures(ctx);
    test_roundtrip(ctx);
    test_errors(ctx);
    test_known(ctx);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "left error: %s\n", gf_ctx_error(ctx));
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_free(ctx);
    return test_finish("test_sched");
}
