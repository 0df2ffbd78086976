/* Trajectory parity with PyTorch: an MLP, a small CNN and a BasicBlock net, each trained 20
 * steps through gf_fit with SGD (Nesterov, clipping, StepLR), Adam (OneCycleLR cycling beta1),
 * AdamW (a 10x head group, CosineAnnealingLR), RMSprop (centered, momentum, warmup + cosine)
 * and Adagrad (lr_decay, StepLR), from PyTorch's initial weights on PyTorch's batch sequence
 * (fixtures/trajectory_*, written by gen_trajectory.py). Every step's loss and the final
 * state_dict (BatchNorm running statistics included) must match within the tolerances below
 * (docs/TRAINING.md explains them).
 * To add a run: append to RUNS in fixtures/gen_trajectory.py and rerun it with
 * /usr/bin/python3; runs.json's keys map onto graft's settings in run_one below. */
#include "graft/graft.h"
#include "graft/train.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* float32 forward/backward differ from PyTorch's in summation order (last bits); 20 steps
 * amplify that. Each loss within LOSS_TOL relative; each weight within WEIGHT_TOL of
 * PyTorch's, relative to max(|w|, 1): |a - b| <= WEIGHT_TOL * max(|b|, 1). */
#define LOSS_TOL 1e-5
#define WEIGHT_TOL 5e-5

static const char *src_dir(void) {
    const char *s = getenv("GRAFT_SOURCE_DIR");
    return s ? s : ".";
}

static const cJSON *get(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}
static double num(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = get(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? 1.0 : 0.0;
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static gf_conv_params conv_p(int pad, int stride) {
    gf_conv_params c = gf_conv_default_params();
    c.padding[0] = c.padding[1] = pad;
    c.stride[0] = c.stride[1] = stride;
    return c;
}

/* The PyTorch twins of gen_trajectory.py, with the same child names. */
static gf_module *build(gf_ctx *ctx, const char *name) {
    if (strcmp(name, "mlp") == 0) {
        gf_zoo_params zp = gf_zoo_default_params();
        zp.height = zp.width = 8;
        zp.num_classes = 5;
        zp.hidden[0] = 24;
        zp.hidden[1] = 0;
        return gf_zoo_build(ctx, "mlp", &zp, NULL);
    }
    gf_conv_params c1 = conv_p(1, 1);
    gf_pool_params mp = gf_pool_default_params(2);
    if (strcmp(name, "cnn") == 0) {
        gf_module *f[] = {gf_nn_conv2d(ctx, NULL, 1, 4, 3, 3, &c1, true), gf_nn_relu(ctx),
                          gf_nn_max_pool2d(ctx, &mp), gf_nn_conv2d(ctx, NULL, 4, 8, 3, 3, &c1, true),
                          gf_nn_relu(ctx), gf_nn_max_pool2d(ctx, &mp)};
        gf_module *c[] = {gf_nn_flatten(ctx, 1, -1), gf_nn_linear(ctx, NULL, 32, 5, true)};
        gf_module *m = gf_nn_container(ctx, "CNN", NULL, NULL, NULL);
        gf_module_add(ctx, m, "features", gf_nn_sequential_of(ctx, 6, f));
        gf_module_add(ctx, m, "classifier", gf_nn_sequential_of(ctx, 2, c));
        return m;
    }
    gf_module *blocks[] = {gf_nn_basic_block(ctx, NULL, 8, 8, 1),
                           gf_nn_basic_block(ctx, NULL, 8, 16, 2)};
    gf_module *m = gf_nn_container(ctx, "BlockNet", NULL, NULL, NULL);
    gf_module_add(ctx, m, "conv1", gf_nn_conv2d(ctx, NULL, 1, 8, 3, 3, &c1, false));
    gf_module_add(ctx, m, "bn1", gf_nn_batch_norm2d(ctx, 8, NULL));
    gf_module_add(ctx, m, "relu", gf_nn_relu(ctx));
    gf_module_add(ctx, m, "layer1", gf_nn_sequential_of(ctx, 2, blocks));
    gf_module_add(ctx, m, "avgpool", gf_nn_adaptive_avg_pool2d(ctx, 1, 1));
    gf_module_add(ctx, m, "flatten", gf_nn_flatten(ctx, 1, -1));
    gf_module_add(ctx, m, "fc", gf_nn_linear(ctx, NULL, 16, 5, true));
    return m;
}

static gf_sched_params sched_from_json(const cJSON *c) {
    gf_sched_kind kind = GF_SCHED_STEP;
    CHECK(gf_sched_kind_parse(get(c, "kind")->valuestring, &kind));
    gf_sched_params p = gf_sched_default_params(kind);
    p.interval = GF_SCHED_PER_STEP;
    p.step_size = (int64_t)num(c, "step_size", (double)p.step_size);
    p.gamma = num(c, "gamma", p.gamma);
    p.t_max = (int64_t)num(c, "t_max", (double)p.t_max);
    p.eta_min = num(c, "eta_min", p.eta_min);
    p.max_lr = num(c, "max_lr", p.max_lr);
    p.total_steps = (int64_t)num(c, "total_steps", (double)p.total_steps);
    return p;
}

typedef struct losses {
    int n;
    double v[64];
} losses;

static bool record(const gf_step_stats *s, void *user) {
    losses *l = user;
    if (l->n < 64) l->v[l->n++] = s->loss;
    return true;
}

static gf_ds *load_data(gf_ctx *ctx) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/trajectory_data.safetensors", src_dir());
    gf_st_file *f = gf_st_open(ctx, path);
    if (!f) return NULL;
    gf_tensor *x = gf_st_load(ctx, f, gf_st_find(f, "x"));
    gf_tensor *y = gf_st_load(ctx, f, gf_st_find(f, "y"));
    gf_st_close(f);
    gf_ds *ds = NULL;
    if (x && y) {
        gf_ds_desc d;
        memset(&d, 0, sizeof d);
        d.ndim = 3;
        d.shape[0] = 1;
        d.shape[1] = d.shape[2] = 8;
        d.n = x->shape[0];
        d.x_f32 = gf_f32(x);
        d.labels = gf_i64(y);
        d.n_classes = 5;
        ds = gf_ds_from_memory(ctx, &d);
    }
    gf_tensor_free(x);
    gf_tensor_free(y);
    return ds;
}

static double worst_loss = 0, worst_weight = 0;

static void run_one(gf_ctx *ctx, const cJSON *run, gf_ds *ds) {
    const char *name = get(run, "name")->valuestring;
    const char *model = get(run, "model")->valuestring;
    const cJSON *oc = get(run, "optim");
    gf_module *m = build(ctx, model);
    CHECK(m != NULL);
    if (!m) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/trajectory_%s_init.safetensors", src_dir(),
             model);
    gf_weights_load_options lo = {true};
    CHECK(gf_weights_load(ctx, m, path, &lo, NULL) == GF_OK);

    gf_optim_kind kind = GF_OPTIM_SGD;
    CHECK(gf_optim_kind_parse(get(oc, "kind")->valuestring, &kind));
    gf_optim_params hp = gf_optim_default_params(kind);
    hp.lr = num(oc, "lr", hp.lr);
    hp.momentum = num(oc, "momentum", hp.momentum);
    hp.nesterov = num(oc, "nesterov", 0) != 0;
    hp.weight_decay = num(oc, "weight_decay", hp.weight_decay);
    hp.alpha = num(oc, "alpha", hp.alpha);
    hp.centered = num(oc, "centered", 0) != 0;
    hp.lr_decay = num(oc, "lr_decay", hp.lr_decay);
    gf_optim_params head = hp;
    double mult = num(run, "head_lr_mult", 0);
    head.lr = hp.lr * mult;
    gf_group_spec spec = {"head", get(run, "head_pattern")->valuestring, &head};
    gf_optim *o = gf_train_optim_new(ctx, m, &hp, &spec, mult > 0 ? 1 : 0);
    CHECK(o != NULL && gf_optim_n_groups(o) == (mult > 0 ? 2 : 1));

    const cJSON *sc = get(run, "sched");
    gf_sched_params sp = sched_from_json(sc);
    gf_sched *s = NULL;
    if (sp.kind == GF_SCHED_SEQUENTIAL) {
        gf_sched_params main = sched_from_json(get(sc, "main"));
        s = gf_sched_warmup(ctx, o, (int64_t)num(sc, "warmup_iters", 0), num(sc, "start_factor", 0),
                            &main);
    } else {
        s = gf_sched_new(ctx, o, &sp);
    }
    CHECK(s != NULL && gf_sched_get_interval(s) == GF_SCHED_PER_STEP);

    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 8;
    lp.shuffle = false;
    gf_loader *ld = gf_loader_new(ctx, ds, &lp);
    losses got = {0, {0}};
    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = 1;
    fp.clip_norm = num(run, "clip_norm", 0);
    fp.on_step = record;
    fp.user = &got;
    gf_fit_result res;
    CHECK(ld && gf_fit(ctx, m, NULL, o, s, ld, NULL, &fp, &res) == GF_OK);
    if (gf_ctx_status(ctx) != GF_OK) {
        fprintf(stderr, "%s: %s\n", name, gf_ctx_error(ctx));
        gf_ctx_clear_error(ctx);
    }

    /* the losses */
    const cJSON *want = get(run, "losses");
    CHECK(got.n == cJSON_GetArraySize(want) && got.n == 20);
    double run_loss = 0;
    for (int i = 0; i < got.n && i < cJSON_GetArraySize(want); i++) {
        double w = cJSON_GetArrayItem(want, i)->valuedouble;
        double rel = fabs(got.v[i] - w) / fabs(w);
        if (rel > run_loss) run_loss = rel;
        if (rel > LOSS_TOL) fprintf(stderr, "%s step %d: loss %.9g, torch %.9g\n", name, i, got.v[i], w);
        CHECK(rel <= LOSS_TOL);
    }
    /* the final state_dict */
    snprintf(path, sizeof path, "%s/tests/fixtures/trajectory_%s_final.safetensors", src_dir(),
             model);
    gf_st_file *f = gf_st_open(ctx, path);
    CHECK(f != NULL);
    gf_named_tensors *st = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    double run_w = 0;
    int n_keys = 0;
    for (int i = 0; f && st && i < st->n; i++) {
        char key[512];
        snprintf(key, sizeof key, "%s.%s", name, st->items[i].name);
        const gf_st_info *info = gf_st_find(f, key);
        CHECK(info != NULL);
        if (!info) continue;
        gf_tensor *ref = gf_st_load(ctx, f, info);
        gf_tensor *mine = st->items[i].tensor;
        CHECK(ref && ref->numel == mine->numel && ref->dtype == mine->dtype);
        if (!ref || ref->numel != mine->numel) continue;
        n_keys++;
        for (int64_t k = 0; k < ref->numel; k++) {
            double a = mine->dtype == GF_F32 ? gf_f32(mine)[k] : (double)gf_i64(mine)[k];
            double b = ref->dtype == GF_F32 ? gf_f32(ref)[k] : (double)gf_i64(ref)[k];
            double err = fabs(a - b) / (fabs(b) > 1 ? fabs(b) : 1);
            if (err > run_w) run_w = err;
            if (err > WEIGHT_TOL) {
                fprintf(stderr, "%s %s[%lld]: %.9g, torch %.9g\n", name, st->items[i].name,
                        (long long)k, a, b);
                CHECK(err <= WEIGHT_TOL);
                break;
            }
        }
        gf_tensor_free(ref);
    }
    CHECK(n_keys == (st ? st->n : -1) && n_keys > 0);
    printf("  %-14s loss %.4f -> %.4f   max rel diff: losses %.2g, final weights %.2g\n", name,
           got.v[0], got.v[got.n > 0 ? got.n - 1 : 0], run_loss, run_w);
    if (run_loss > worst_loss) worst_loss = run_loss;
    if (run_w > worst_weight) worst_weight = run_w;
    gf_named_tensors_free(st);
    gf_st_close(f);
    gf_loader_free(ld);
    gf_sched_free(s);
    gf_optim_free(o);
    gf_module_free(m);
}

int main(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/trajectory_runs.json", src_dir());
    char *text = test_read_text(path);
    if (!text) fprintf(stderr, "cannot read %s (set GRAFT_SOURCE_DIR)\n", path);
    CHECK(text != NULL);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    gf_ds *ds = load_data(ctx);
    CHECK(ds != NULL && gf_ds_count(ds) == 160);
    const cJSON *run;
    int n = 0;
    if (doc && ds)
        cJSON_ArrayForEach(run, get(doc, "runs")) {
            run_one(ctx, run, ds);
            n++;
        }
    CHECK(n == 15);
    printf("  worst: losses %.2g (tolerance %.0g), weights %.2g (tolerance %.0g)\n", worst_loss,
           LOSS_TOL, worst_weight, WEIGHT_TOL);
    cJSON_Delete(doc);
    gf_ds_free(ds);
    if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "left error: %s\n", gf_ctx_error(ctx));
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_free(ctx);
    return test_finish("test_trajectory");
}
