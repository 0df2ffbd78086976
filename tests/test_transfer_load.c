/* Transfer primitives, part 2: load plans over renamed copies of the PyTorch interop files
 * ("module." prefixes, regex renames), strict plans, the table and JSON outputs, and delta
 * checkpoints (reproduce the fine-tuned model bitwise; refused on another base). To add a case:
 * write a static void test_x(gf_ctx *) with CHECKs and call it from main. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graft/graft.h"
#include "graft/transfer.h"

static char src[1024], dir[64];

static const char *fixture(const char *name) {
    static char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/interop/%s.safetensors", src, name);
    return path;
}

static const char *tmp(const char *name) {
    static char path[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

/* Copies `in` to `out` renaming every key: prefix + key with its first `from` replaced by `to`. */
static void write_renamed(gf_ctx *ctx, const char *in, const char *out, const char *prefix,
                          const char *from, const char *to) {
    gf_st_file *f = gf_st_open(ctx, in);
    gf_st_writer *w = gf_st_writer_new(ctx);
    int n = gf_st_count(f);
    gf_tensor **ts = calloc((size_t)n, sizeof *ts);
    for (int i = 0; i < n; i++) {
        const gf_st_info *info = gf_st_get(f, i);
        ts[i] = gf_st_load(ctx, f, info);
        char name[640], body[300];
        snprintf(body, sizeof body, "%s", info->name);
        const char *hit = from ? strstr(info->name, from) : NULL;
        if (hit)
            snprintf(body, sizeof body, "%.*s%s%s", (int)(hit - info->name), info->name, to,
                     hit + strlen(from));
        snprintf(name, sizeof name, "%s%s", prefix, body);
        CHECK(gf_st_writer_add(w, name, ts[i], ts[i]->dtype == GF_F32 ? GF_ST_F32 : GF_ST_I64) == GF_OK);
    }
    CHECK(gf_st_writer_save(w, out) == GF_OK);
    gf_st_writer_free(w);
    for (int i = 0; i < n; i++) gf_tensor_free(ts[i]);
    free(ts);
    gf_st_close(f);
}

static gf_module *build(gf_ctx *ctx, const char *name, int hw, int classes, uint64_t seed) {
    gf_zoo_params p = gf_zoo_default_params();
    p.height = p.width = hw;
    p.num_classes = classes;
    gf_rng r;
    gf_rng_seed(&r, seed);
    return gf_zoo_build(ctx, name, &p, &r);
}

/* True when every state tensor of a and b is bitwise equal. */
static bool same_state(gf_ctx *ctx, gf_module *a, gf_module *b) {
    gf_named_tensors *la = gf_module_named_tensors(ctx, a, GF_STATE_ALL);
    gf_named_tensors *lb = gf_module_named_tensors(ctx, b, GF_STATE_ALL);
    bool same = la->n == lb->n;
    for (int i = 0; same && i < la->n; i++) {
        const gf_tensor *x = la->items[i].tensor, *y = lb->items[i].tensor;
        same = strcmp(la->items[i].name, lb->items[i].name) == 0 && gf_same_shape(x, y) &&
               memcmp(x->data, y->data, (size_t)x->numel * gf_dtype_size(x->dtype)) == 0;
        if (!same) fprintf(stderr, "differs: %s\n", la->items[i].name);
    }
    gf_named_tensors_free(la);
    gf_named_tensors_free(lb);
    return same;
}

static gf_tensor *input(gf_ctx *ctx, int n, int hw, uint64_t seed) {
    int64_t s[4] = {n, 1, hw, hw};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, s);
    gf_rng r;
    gf_rng_seed(&r, seed);
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = gf_rng_normal(&r);
    return x;
}

/* ---- plans ---------------------------------------------------------------------------------- */

static void test_plan_renamed(gf_ctx *ctx) {
    const char *renamed = tmp("cnn-module.safetensors");
    write_renamed(ctx, fixture("cnn-small"), renamed, "module.", NULL, NULL);
    gf_module *m = build(ctx, "cnn-small", 12, 5, 1);
    CHECK(gf_transfer_freeze(ctx, m, "features.*") == 4);
    gf_tensor *w0 = gf_module_tensor(ctx, m, "features.0.weight");
    float before = gf_f32(w0)[0];

    /* dry run: every key renamed, loaded in the plan, nothing copied */
    gf_weights_options o = gf_weights_default_options();
    o.strip_prefix = "module.";
    gf_transfer_plan *p = NULL;
    CHECK(gf_transfer_plan_load(ctx, m, renamed, &o, &p) == GF_OK);
    CHECK(p && p->dry_run && !p->applied && gf_f32(w0)[0] == before);
    CHECK(p->report->loaded == 8 && p->report->renamed == 8 && p->report->missing == 0 &&
          p->report->unexpected == 0 && p->report->mismatched == 0);
    bool names_ok = true;
    for (int i = 0; i < p->report->n; i++) {
        const gf_weights_key_report *k = &p->report->keys[i];
        char want[300];
        snprintf(want, sizeof want, "module.%s", k->name);
        names_ok = names_ok && k->file_name && strcmp(k->file_name, want) == 0;
        bool feat = strncmp(k->name, "features.", 9) == 0;
        names_ok = names_ok && p->roles[i] == (feat ? GF_TRANSFER_ROLE_FROZEN : GF_TRANSFER_ROLE_TRAINABLE);
    }
    CHECK(names_ok);
    CHECK(p->params_trainable == gf_module_param_count(m, true) && p->tensors_frozen == 4 &&
          p->tensors_trainable == 4 && p->bn_layers == 0 && !p->bn_stats_move);

    /* the table shows the renames, the JSON has every key and the summary */
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    gf_transfer_plan_print(p, mem, true);
    fclose(mem);
    CHECK(strstr(buf, "frozen      features.0.weight  <- module.features.0.weight") != NULL);
    CHECK(strstr(buf, "8 renamed") && strstr(buf, "dry run"));
    free(buf);
    mem = open_memstream(&buf, &len);
    gf_transfer_plan_print(p, mem, false); /* only the keys that did not load, and one rename */
    fclose(mem);
    CHECK(strstr(buf, "8 renamed (e.g. features.0.weight <- module.features.0.weight)") != NULL);
    CHECK(strstr(buf, "trainable   classifier") == NULL);
    free(buf);
    char *js = gf_transfer_plan_json(ctx, p);
    cJSON *j = cJSON_Parse(js);
    CHECK(j != NULL);
    const cJSON *keys = cJSON_GetObjectItem(j, "keys");
    CHECK(cJSON_GetArraySize(keys) == 8);
    const cJSON *k0 = cJSON_GetArrayItem(keys, 0);
    CHECK(strcmp(cJSON_GetObjectItem(k0, "name")->valuestring, "features.0.weight") == 0);
    CHECK(strcmp(cJSON_GetObjectItem(k0, "file_name")->valuestring, "module.features.0.weight") == 0);
    CHECK(strcmp(cJSON_GetObjectItem(k0, "role")->valuestring, "frozen") == 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(k0, "model_shape")) == 4);
    const cJSON *sum = cJSON_GetObjectItem(j, "summary");
    CHECK(cJSON_GetObjectItem(sum, "renamed")->valueint == 8);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(sum, "bn_stats_move")));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "dry_run")));
    cJSON_Delete(j);
    free(js);
    gf_transfer_plan_free(p);

    /* the real load equals a load of the original file */
    CHECK(gf_transfer_load(ctx, m, renamed, &o, &p) == GF_OK && p->applied);
    gf_transfer_plan_free(p);
    gf_module *ref = build(ctx, "cnn-small", 12, 5, 2);
    CHECK(gf_weights_load(ctx, ref, fixture("cnn-small"), &(gf_weights_load_options){true}, NULL) == GF_OK);
    CHECK(same_state(ctx, m, ref));

    /* strict without the renaming: everything missing/unexpected, an error, nothing loaded */
    gf_module *fresh = build(ctx, "cnn-small", 12, 5, 3);
    float f0 = gf_f32(gf_module_tensor(ctx, fresh, "features.0.weight"))[0];
    gf_weights_options s = gf_weights_default_options();
    s.strict = true;
    CHECK(gf_transfer_load(ctx, fresh, renamed, &s, &p) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(ctx), "strict") && strstr(gf_ctx_error(ctx), "features.0.weight"));
    CHECK(p && !p->applied && p->report->missing == 8 && p->report->unexpected == 8);
    CHECK(gf_f32(gf_module_tensor(ctx, fresh, "features.0.weight"))[0] == f0);
    gf_transfer_plan_free(p);
    gf_ctx_clear_error(ctx);
    /* a strict dry run fails the same way */
    s.dry_run = true;
    CHECK(gf_transfer_load(ctx, fresh, renamed, &s, NULL) == GF_ERR_FORMAT);
    gf_ctx_clear_error(ctx);
    /* strict with the renaming but a different head: shape mismatch */
    gf_module *seven = build(ctx, "cnn-small", 12, 7, 3);
    s.strip_prefix = "module.";
    s.dry_run = false;
    CHECK(gf_transfer_load(ctx, seven, renamed, &s, &p) == GF_ERR_SHAPE);
    CHECK(strstr(gf_ctx_error(ctx), "classifier.3.weight") && strstr(gf_ctx_error(ctx), "module.classifier.3.weight"));
    CHECK(p && p->report->mismatched == 2 && !p->applied);
    gf_transfer_plan_free(p);
    gf_ctx_clear_error(ctx);
    gf_module_free(seven);
    gf_module_free(fresh);
    gf_module_free(ref);
    gf_module_free(m);
}

static void test_rules(gf_ctx *ctx) {
    const char *enc = tmp("cnn-encoder.safetensors");
    write_renamed(ctx, fixture("cnn-small"), enc, "module.", "features.", "encoder.");
    gf_module *m = build(ctx, "cnn-small", 12, 5, 4);
    /* sed form and (pattern, replacement) form with back-references */
    gf_weights_key_rule rules[2] = {{"s/^encoder\\./features./", NULL},
                            {"^classifier\\.([0-9]+)\\.(weight|bias)$", "classifier.\\1.\\2"}};
    gf_weights_options o = gf_weights_default_options();
    o.strip_prefix = "module.";
    o.rules = rules;
    o.n_rules = 2;
    o.strict = true;
    gf_transfer_plan *p = NULL;
    CHECK(gf_transfer_load(ctx, m, enc, &o, &p) == GF_OK);
    CHECK(p && p->applied && p->report->loaded == 8 && p->report->renamed == 8);
    CHECK(p && strcmp(p->report->keys[0].file_name, "module.encoder.0.weight") == 0);
    gf_transfer_plan_free(p);

    char out[128];
    gf_weights_key_rule r1[] = {{"s|^(layer[0-9])\\.([0-9])\\.|\\1.\\2.block.|", NULL}};
    gf_weights_options m1 = gf_weights_default_options();
    m1.rules = r1;
    m1.n_rules = 1;
    m1.add_prefix = "backbone.";
    CHECK(gf_weights_map_key(ctx, &m1, "layer1.0.conv1.weight", out, sizeof out) == GF_OK);
    CHECK(strcmp(out, "backbone.layer1.0.block.conv1.weight") == 0);
    CHECK(gf_weights_map_key(ctx, &m1, "fc.bias", out, sizeof out) == GF_OK);
    CHECK(strcmp(out, "backbone.fc.bias") == 0);
    gf_weights_key_rule r2[] = {{"s/a\\/b/c/", NULL}}; /* escaped delimiter */
    m1.rules = r2;
    m1.add_prefix = NULL;
    CHECK(gf_weights_map_key(ctx, &m1, "xa/by", out, sizeof out) == GF_OK && strcmp(out, "xcy") == 0);

    /* errors: bad regex, bad sed form, a group that does not exist, a collision */
    gf_weights_key_rule bad[] = {{"s/(/x/", NULL}};
    m1.rules = bad;
    CHECK(gf_weights_map_key(ctx, &m1, "a", out, sizeof out) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "bad regex") && strstr(gf_ctx_error(ctx), "s/(/x/"));
    gf_ctx_clear_error(ctx);
    gf_weights_key_rule bad2[] = {{"s/a/b", NULL}};
    m1.rules = bad2;
    CHECK(gf_weights_map_key(ctx, &m1, "a", out, sizeof out) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    gf_weights_key_rule bad3[] = {{"^(a)", "\\2"}};
    m1.rules = bad3;
    CHECK(gf_weights_map_key(ctx, &m1, "a", out, sizeof out) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "\\2"));
    gf_ctx_clear_error(ctx);
    gf_weights_key_rule all_same[] = {{"^.*$", "x"}};
    o.rules = all_same;
    o.n_rules = 1;
    CHECK(gf_transfer_load(ctx, m, enc, &o, &p) == GF_ERR_INVALID && p == NULL);
    CHECK(strstr(gf_ctx_error(ctx), "both map to 'x'"));
    gf_ctx_clear_error(ctx);
    gf_module_free(m);
}

/* BN statistics in the plan follow the policy and the frozen set. */
static void test_plan_bn(gf_ctx *ctx) {
    gf_module *m = build(ctx, "resnet-mini", 8, 5, 5);
    CHECK(gf_transfer_freeze_all_but(ctx, m, 1) > 0);
    CHECK(gf_transfer_set_bn_policy(ctx, m, GF_TRANSFER_BN_TRAIN_ALL, NULL) == 15);
    gf_transfer_plan *p = NULL;
    CHECK(gf_transfer_plan_load(ctx, m, fixture("resnet-mini"), NULL, &p) == GF_OK);
    CHECK(p && p->bn_stats_move && p->bn_layers == 15 && p->bn_moving == 15 && p->bn_moving_frozen == 15);
    CHECK(p && p->params_trainable == 64 * 5 + 5);
    int moving = 0;
    for (int i = 0; p && i < p->report->n; i++) moving += p->roles[i] == GF_TRANSFER_ROLE_STAT_MOVING;
    CHECK(moving == 45);
    gf_transfer_plan_free(p);
    CHECK(gf_transfer_set_bn_policy(ctx, m, GF_TRANSFER_BN_FREEZE_STATS, NULL) == 15);
    CHECK(gf_transfer_plan_load(ctx, m, fixture("resnet-mini"), NULL, &p) == GF_OK);
    CHECK(p && !p->bn_stats_move && p->bn_moving == 0);
    int fixed = 0;
    for (int i = 0; p && i < p->report->n; i++) fixed += p->roles[i] == GF_TRANSFER_ROLE_STAT_FIXED;
    CHECK(fixed == 45);
    FILE *devnull = fopen("/dev/null", "w");
    gf_transfer_plan_print(p, devnull, true);
    CHECK(gf_transfer_plan_write_json(ctx, p, devnull) == GF_OK);
    fclose(devnull);
    gf_transfer_plan_free(p);
    gf_module_free(m);
}

/* ---- deltas --------------------------------------------------------------------------------- */

static void train_steps(gf_ctx *ctx, gf_module *m, int steps, int hw, int classes) {
    gf_named_tensors *l = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    gf_tensor **ps = malloc(sizeof *ps * (size_t)l->n);
    for (int i = 0; i < l->n; i++) ps[i] = l->items[i].tensor;
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAM);
    op.lr = 1e-2;
    gf_optim *opt = gf_optim_new(ctx, &op, ps, l->n);
    gf_module_train(m, true);
    for (int s = 0; s < steps; s++) {
        gf_optim_zero_grad(opt);
        gf_tensor *x = input(ctx, 6, hw, 100 + (uint64_t)s);
        int64_t n = 6;
        gf_tensor *y = gf_zeros(ctx, GF_I64, 1, &n);
        for (int i = 0; i < 6; i++) gf_i64(y)[i] = i % classes;
        gf_tensor *loss = gf_cross_entropy(ctx, gf_module_forward(ctx, m, x), y, GF_REDUCE_MEAN, -100);
        CHECK(loss && gf_backward(ctx, loss) == GF_OK && gf_optim_step(ctx, opt) == GF_OK);
        gf_ctx_reset(ctx);
        gf_tensor_free(x);
    }
    gf_module_train(m, false);
    gf_optim_free(opt);
    free(ps);
    gf_named_tensors_free(l);
}

/* Runs m in eval mode on a fixed input; returns a malloc'd copy of the output. */
static float *outputs(gf_ctx *ctx, gf_module *m, int hw, int64_t *n) {
    gf_tensor *x = input(ctx, 4, hw, 9);
    gf_module_train(m, false);
    gf_tensor *y = gf_module_forward(ctx, m, x);
    *n = y ? y->numel : 0;
    float *out = malloc(sizeof(float) * (size_t)(*n + 1));
    if (y) gf_copy_out(y, out);
    gf_ctx_reset(ctx);
    gf_tensor_free(x);
    return out;
}

static void test_delta(gf_ctx *ctx) {
    const char *base = fixture("cnn-small");
    const char *delta = tmp("cnn-delta.safetensors");
    /* fine-tune: base weights, frozen features, a new 7-class head, a few Adam steps */
    gf_module *a = build(ctx, "cnn-small", 12, 5, 1);
    CHECK(gf_weights_load(ctx, a, base, &(gf_weights_load_options){true}, NULL) == GF_OK);
    CHECK(gf_transfer_freeze(ctx, a, "features.*") == 4);
    gf_rng r;
    gf_rng_seed(&r, 1);
    CHECK(gf_transfer_replace_head(ctx, a, NULL, 7, &r) == GF_OK);
    train_steps(ctx, a, 4, 12, 7);
    int n = -1;
    CHECK(gf_transfer_delta_save(ctx, a, base, NULL, delta, &n) == GF_OK);
    CHECK(n == 4); /* classifier.1 (trained) and classifier.3 (new): features are the base's */
    gf_st_file *df = gf_st_open(ctx, delta);
    CHECK(df && gf_st_count(df) == 4 && !gf_st_find(df, "features.0.weight") &&
          gf_st_find(df, "classifier.1.weight") && gf_st_find(df, "classifier.3.bias"));
    char hex[65];
    CHECK(gf_transfer_sha256_file(ctx, base, hex) == GF_OK);
    CHECK(df && strcmp(gf_st_metadata_get(df, "graft.base_sha256"), hex) == 0);
    gf_st_close(df);

    /* base + delta = the fine-tuned model, bitwise */
    gf_module *b = build(ctx, "cnn-small", 12, 5, 2);
    gf_rng_seed(&r, 999);
    CHECK(gf_transfer_replace_head(ctx, b, NULL, 7, &r) == GF_OK);
    CHECK(gf_transfer_delta_load(ctx, b, base, NULL, delta) == GF_OK);
    CHECK(same_state(ctx, a, b));
    int64_t na, nb;
    float *ya = outputs(ctx, a, 12, &na), *yb = outputs(ctx, b, 12, &nb);
    CHECK(na == 4 * 7 && na == nb && memcmp(ya, yb, sizeof(float) * (size_t)na) == 0);
    free(ya);
    free(yb);

    /* the same weights re-saved by graft: other bytes, another hash, refused */
    const char *other = tmp("cnn-other.safetensors");
    gf_module *o = build(ctx, "cnn-small", 12, 5, 3);
    CHECK(gf_weights_load(ctx, o, base, NULL, NULL) == GF_OK);
    gf_f32(gf_module_tensor(ctx, o, "features.0.bias"))[0] += 1.0f;
    CHECK(gf_weights_save(ctx, o, other, NULL, 0) == GF_OK);
    char hex_other[65];
    CHECK(gf_transfer_sha256_file(ctx, other, hex_other) == GF_OK);
    gf_module *c = build(ctx, "cnn-small", 12, 5, 4);
    CHECK(gf_transfer_replace_head(ctx, c, NULL, 7, NULL) == GF_OK);
    CHECK(gf_weights_load(ctx, c, other, NULL, NULL) == GF_OK);
    float c0 = gf_f32(gf_module_tensor(ctx, c, "classifier.1.weight"))[0];
    CHECK(gf_transfer_delta_apply(ctx, c, delta, other) == GF_ERR_STATE);
    CHECK(strstr(gf_ctx_error(ctx), hex) && strstr(gf_ctx_error(ctx), hex_other) &&
          strstr(gf_ctx_error(ctx), "refusing"));
    CHECK(gf_f32(gf_module_tensor(ctx, c, "classifier.1.weight"))[0] == c0);
    gf_ctx_clear_error(ctx);
    CHECK(gf_transfer_delta_load(ctx, c, other, NULL, delta) == GF_ERR_STATE);
    gf_ctx_clear_error(ctx);
    /* not a delta; a delta that does not fit the model (5-class head) loads nothing */
    CHECK(gf_transfer_delta_apply(ctx, c, other, base) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(ctx), "not a graft delta"));
    gf_ctx_clear_error(ctx);
    gf_module *five = build(ctx, "cnn-small", 12, 5, 5);
    float f0 = gf_f32(gf_module_tensor(ctx, five, "classifier.1.weight"))[0];
    CHECK(gf_transfer_delta_apply(ctx, five, delta, base) == GF_ERR_SHAPE);
    CHECK(strstr(gf_ctx_error(ctx), "classifier.3.weight") && strstr(gf_ctx_error(ctx), "[7, 128]"));
    CHECK(gf_f32(gf_module_tensor(ctx, five, "classifier.1.weight"))[0] == f0);
    gf_ctx_clear_error(ctx);
    gf_module_free(five);
    gf_module_free(c);
    gf_module_free(o);
    gf_module_free(b);
    gf_module_free(a);
}

/* A float16 base (resnet-mini's fixture) with frozen BatchNorm statistics: only the head
 * moves, so only the head is in the delta; with train-all the moved statistics are in it. */
static void test_delta_f16(gf_ctx *ctx) {
    const char *base = fixture("resnet-mini");
    const char *delta = tmp("resnet-delta.safetensors");
    for (int pass = 0; pass < 2; pass++) {
        gf_module *a = build(ctx, "resnet-mini", 8, 5, 1);
        CHECK(gf_weights_load(ctx, a, base, &(gf_weights_load_options){true}, NULL) == GF_OK);
        CHECK(gf_transfer_freeze_all_but(ctx, a, 1) > 0);
        CHECK(gf_transfer_set_bn_policy(ctx, a, pass ? GF_TRANSFER_BN_TRAIN_ALL : GF_TRANSFER_BN_FREEZE_STATS, NULL) == 15);
        train_steps(ctx, a, 2, 8, 5);
        int n = -1;
        CHECK(gf_transfer_delta_save(ctx, a, base, NULL, delta, &n) == GF_OK);
        /* pass 0: fc.weight, fc.bias; pass 1: also 15 x (mean, var, count) */
        CHECK(n == (pass ? 2 + 45 : 2));
        gf_module *b = build(ctx, "resnet-mini", 8, 5, 2);
        CHECK(gf_transfer_delta_load(ctx, b, base, NULL, delta) == GF_OK);
        CHECK(same_state(ctx, a, b));
        gf_module_free(b);
        gf_module_free(a);
    }
}

/* docs/TRANSFER.md's example (kept in step with it): a DataParallel checkpoint ("module." keys)
 * into resnet-mini, a new 3-class head, the last stage fine-tuned with fixed BatchNorm
 * statistics, then a delta checkpoint that rebuilds the model from the base. */
static int doc_example(const char *base, const char *delta) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_zoo_params zp = gf_zoo_default_params();
    zp.height = zp.width = 8;
    zp.num_classes = 5;
    gf_module *net = gf_zoo_build(ctx, "resnet-mini", &zp, NULL);

    /* load by name, "module." stripped; strict: every key must match */
    gf_weights_options wo = gf_weights_default_options();
    wo.strip_prefix = "module.";
    wo.strict = true;
    gf_transfer_plan *plan = NULL;
    if (gf_transfer_load(ctx, net, base, &wo, &plan) != GF_OK) {
        fprintf(stderr, "graft: %s\n", gf_ctx_error(ctx));
        if (plan) gf_transfer_plan_print(plan, stderr, false);  /* every key that did not fit */
        return 1;
    }
    gf_transfer_plan_free(plan);

    /* new head, train only the last stage and the head, BN statistics fixed */
    gf_rng rng;
    gf_rng_seed(&rng, 1);
    gf_transfer_replace_head(ctx, net, NULL, 3, &rng);                        /* "fc": 64 -> 3 */
    gf_transfer_freeze_all_but(ctx, net, 2);                                  /* layer3.1, fc */
    gf_transfer_set_bn_policy(ctx, net, GF_TRANSFER_BN_FREEZE_STATS, NULL);         /* every BN fixed... */
    gf_transfer_set_bn_policy(ctx, net, GF_TRANSFER_BN_TRAIN_AFFINE, "layer3.1.*"); /* ...scale/shift train */
    if (gf_ctx_status(ctx) != GF_OK) {
        fprintf(stderr, "graft: %s\n", gf_ctx_error(ctx));
        return 1;
    }
    wo.strict = false;                       /* the plan of the same file, now: roles, counts */
    gf_transfer_plan_load(ctx, net, base, &wo, &plan);
    gf_transfer_plan_print(plan, stdout, false);
    gf_transfer_plan_free(plan);

    /* a few Adam steps over the trainable tensors */
    gf_named_tensors *all = gf_module_named_tensors(ctx, net, GF_STATE_PARAMS);
    gf_tensor *train[64];
    int n_train = 0;
    for (int i = 0; i < all->n; i++)
        if (all->items[i].tensor->requires_grad) train[n_train++] = all->items[i].tensor;
    gf_named_tensors_free(all);
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAM);
    gf_optim *opt = gf_optim_new(ctx, &op, train, n_train);
    gf_module_train(net, true);              /* pinned BatchNorms stay in eval mode */
    int64_t y_shape[1] = {4};
    for (int step = 0; step < 3; step++) {
        gf_tensor *x = gf_randn(ctx, 4, (int64_t[]){4, 1, 8, 8}, 0.0f, 1.0f);
        gf_tensor *y = gf_zeros(ctx, GF_I64, 1, y_shape);
        gf_optim_zero_grad(opt);
        gf_tensor *loss = gf_cross_entropy(ctx, gf_module_forward(ctx, net, x), y, GF_REDUCE_MEAN, -100);
        if (!loss || gf_backward(ctx, loss) != GF_OK || gf_optim_step(ctx, opt) != GF_OK) return 1;
        gf_ctx_reset(ctx);
    }
    gf_optim_free(opt);

    /* save what changed; rebuild from base + delta */
    int n_delta = 0;
    if (gf_transfer_delta_save(ctx, net, base, &wo, delta, &n_delta) != GF_OK) return 1;
    printf("delta: %d tensors\n", n_delta);           /* layer3.1.* and fc.* */
    gf_module *again = gf_zoo_build(ctx, "resnet-mini", &zp, NULL);
    gf_transfer_replace_head(ctx, again, NULL, 3, NULL);
    if (gf_transfer_delta_load(ctx, again, base, &wo, delta) != GF_OK) {
        fprintf(stderr, "graft: %s\n", gf_ctx_error(ctx)); /* e.g. another base: both hashes */
        return 1;
    }
    int rc = same_state(ctx, net, again) ? 0 : 1;
    gf_module_free(again);
    gf_module_free(net);
    gf_ctx_free(ctx);
    return rc;
}

/* ---- input channels (timm's adapt_input_conv) ------------------------------------------------ */

/* timm's rule written the way timm writes it, independently of the library's loop: to 1
 * channel, the sum over dim 1; else tile the channels ceil(C / C_file) times, keep the first C,
 * multiply by C_file / C. w: [O, cf, k] -> out [O, c, k]. */
static void timm_rule(const float *w, int64_t O, int64_t cf, int64_t k, int64_t c, float *out) {
    if (c == 1) {
        for (int64_t o = 0; o < O; o++)
            for (int64_t j = 0; j < k; j++) {
                double s = 0;
                for (int64_t i = 0; i < cf; i++) s += w[(o * cf + i) * k + j];
                out[o * k + j] = (float)s;
            }
        return;
    }
    int64_t repeat = (c + cf - 1) / cf, tc = repeat * cf;
    float *tiled = malloc((size_t)(O * tc * k) * sizeof *tiled); /* w.repeat(1, repeat, 1, 1) */
    for (int64_t o = 0; o < O; o++)
        for (int64_t r = 0; r < repeat; r++)
            memcpy(tiled + (o * tc + r * cf) * k, w + o * cf * k, (size_t)(cf * k) * sizeof *w);
    const float scale = (float)cf / (float)c; /* python's 3 / float(in_chans), as float32 */
    for (int64_t o = 0; o < O; o++) /* [:, :c] * scale */
        for (int64_t i = 0; i < c * k; i++) out[o * c * k + i] = tiled[o * tc * k + i] * scale;
    free(tiled);
}

static bool matches_rule(const gf_tensor *file_w, const gf_tensor *model_w) {
    const int64_t O = model_w->shape[0], c = model_w->shape[1], k = model_w->shape[2] * model_w->shape[3];
    float *want = malloc((size_t)model_w->numel * sizeof *want);
    timm_rule(gf_f32((gf_tensor *)file_w), O, file_w->shape[1], k, c, want);
    double worst = 0;
    for (int64_t i = 0; i < model_w->numel; i++) {
        double d = fabs((double)gf_f32((gf_tensor *)model_w)[i] - want[i]);
        if (d > worst) worst = d;
    }
    free(want);
    if (worst > 1e-7) fprintf(stderr, "adapted weights differ from the rule by %g\n", worst);
    return worst <= 1e-7;
}

/* The rule on its own: 1 -> 3, 3 -> 1, 3 -> 5 (tile twice, cut), 2 -> 3; bad shapes refused. */
static void test_adapt_rule(gf_ctx *ctx) {
    static const int64_t cases[][2] = {{1, 3}, {3, 1}, {3, 5}, {2, 3}, {4, 1}};
    gf_rng r;
    gf_rng_seed(&r, 3);
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int64_t ss[4] = {4, cases[t][0], 2, 3}, ds[4] = {4, cases[t][1], 2, 3};
        gf_tensor *a = gf_tensor_new(ctx, GF_F32, 4, ss), *b = gf_tensor_new(ctx, GF_F32, 4, ds);
        for (int64_t i = 0; i < a->numel; i++) gf_f32(a)[i] = gf_rng_normal(&r);
        CHECK(gf_transfer_adapt_input_conv(ctx, a, b) == GF_OK);
        CHECK(matches_rule(a, b));
        gf_tensor_free(a);
        gf_tensor_free(b);
    }
    /* 1 -> 3 by hand: every channel is the grey one over 3 */
    int64_t ss[4] = {1, 1, 1, 2}, ds[4] = {1, 3, 1, 2}, bad[4] = {2, 3, 1, 2};
    float w[2] = {0.75f, -1.5f};
    gf_tensor *a = gf_tensor_from_data(ctx, GF_F32, 4, ss, w), *b = gf_tensor_new(ctx, GF_F32, 4, ds);
    CHECK(gf_transfer_adapt_input_conv(ctx, a, b) == GF_OK);
    CHECK(gf_f32(b)[0] == 0.75f * (1.0f / 3.0f) && gf_f32(b)[5] == -1.5f * (1.0f / 3.0f));
    gf_tensor *c = gf_tensor_new(ctx, GF_F32, 4, bad);
    CHECK(gf_transfer_adapt_input_conv(ctx, a, c) == GF_ERR_SHAPE);
    CHECK(strstr(gf_ctx_error(ctx), "[1, 1, 1, 2]") && strstr(gf_ctx_error(ctx), "[2, 3, 1, 2]"));
    gf_ctx_clear_error(ctx);
    gf_tensor_free(a);
    gf_tensor_free(b);
    gf_tensor_free(c);
    gf_transfer_in_channels mode;
    CHECK(gf_transfer_in_channels_parse("error", &mode) && mode == GF_TRANSFER_IN_CHANNELS_ERROR);
    CHECK(!gf_transfer_in_channels_parse("repeat", &mode));
    CHECK(strcmp(gf_transfer_in_channels_name(GF_TRANSFER_IN_CHANNELS_ADAPT), "adapt") == 0);
}

/* The first convolution of a and b on x (a) and on x repeated over b's channels: a grey model
 * on grey images and the adapted RGB model on the same images in RGB give the same features. */
static double conv_gap(gf_ctx *ctx, gf_module *a, gf_module *b, const char *conv) {
    gf_module *ca = gf_module_child(a, conv), *cb = gf_module_child(b, conv);
    int64_t ca_in = gf_module_tensor(ctx, a, "features.0.weight")->shape[1];
    int64_t cb_in = gf_module_tensor(ctx, b, "features.0.weight")->shape[1];
    int64_t xs[4] = {2, ca_in, 12, 12}, ys[4] = {2, cb_in, 12, 12};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, xs), *y = gf_tensor_new(ctx, GF_F32, 4, ys);
    for (int64_t n = 0; n < 2; n++)
        for (int64_t i = 0; i < 144; i++) {
            float v = (float)((n * 144 + i) * 7 % 23) / 23.0f;
            for (int64_t ch = 0; ch < ca_in; ch++) gf_f32(x)[(n * ca_in + ch) * 144 + i] = v;
            for (int64_t ch = 0; ch < cb_in; ch++) gf_f32(y)[(n * cb_in + ch) * 144 + i] = v;
        }
    gf_tensor *fa = gf_module_forward(ctx, ca, x), *fb = gf_module_forward(ctx, cb, y);
    double worst = fa && fb && fa->numel == fb->numel ? 0 : INFINITY;
    for (int64_t i = 0; worst < INFINITY && i < fa->numel; i++) {
        double d = fabs(gf_get_f32(fa, i) - gf_get_f32(fb, i));
        if (d > worst) worst = d;
    }
    gf_ctx_reset(ctx);
    gf_tensor_free(x);
    gf_tensor_free(y);
    return worst;
}

static gf_module *build_c(gf_ctx *ctx, const char *name, int channels, int classes, uint64_t seed) {
    gf_zoo_params p = gf_zoo_default_params();
    p.in_channels = channels;
    p.height = p.width = 12;
    p.num_classes = classes;
    gf_rng r;
    gf_rng_seed(&r, seed);
    return gf_zoo_build(ctx, name, &p, &r);
}

/* A grey checkpoint into an RGB model and back, through the load plan. */
static void test_in_channels(gf_ctx *ctx) {
    const char *grey = fixture("cnn-small"); /* in_channels 1, 12x12, 5 classes */
    gf_st_file *f = gf_st_open(ctx, grey);
    gf_tensor *file_w = gf_st_load(ctx, f, gf_st_find(f, "features.0.weight"));
    gf_st_close(f);
    gf_module *g = build_c(ctx, "cnn-small", 1, 5, 1);
    CHECK(gf_transfer_load(ctx, g, grey, NULL, NULL) == GF_OK);

    /* default: adapt, with the plan saying so */
    gf_module *rgb = build_c(ctx, "cnn-small", 3, 5, 2);
    gf_transfer_plan *p = NULL;
    CHECK(gf_transfer_load(ctx, rgb, grey, NULL, &p) == GF_OK);
    CHECK(p && p->applied && p->in_adapted && p->in_from == 1 && p->in_to == 3 &&
          p->in_channels == GF_TRANSFER_IN_CHANNELS_ADAPT);
    CHECK(p && p->report->loaded == p->report->n && p->report->mismatched == 0);
    CHECK(p && strcmp(p->in_note, "features.0.weight: 1 -> 3 input channels, repeated and "
                                  "scaled (timm's rule)") == 0);
    CHECK(matches_rule(file_w, gf_module_tensor(ctx, rgb, "features.0.weight")));
    CHECK(conv_gap(ctx, g, rgb, "features.0") < 1e-5);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    gf_transfer_plan_print(p, mem, true);
    fclose(mem);
    CHECK(strstr(buf, "input channels: features.0.weight: 1 -> 3 input channels") &&
          strstr(buf, "[32, 3, 3, 3] (adapted from file [32, 1, 3, 3])"));
    free(buf);
    char *js = gf_transfer_plan_json(ctx, p);
    cJSON *doc = js ? cJSON_Parse(js) : NULL;
    const cJSON *ic = cJSON_GetObjectItem(doc, "in_channels");
    CHECK(ic && cJSON_GetObjectItem(ic, "from")->valueint == 1 &&
          cJSON_GetObjectItem(ic, "to")->valueint == 3 &&
          cJSON_IsTrue(cJSON_GetObjectItem(ic, "adapted")) &&
          strcmp(cJSON_GetObjectItem(ic, "mode")->valuestring, "adapt") == 0);
    cJSON_Delete(doc);
    free(js);
    gf_transfer_plan_free(p);

    /* strict: the adapted key fits; a head of another size still refuses, loading nothing */
    gf_transfer_load_params lp = gf_transfer_load_default_params();
    lp.weights.strict = true;
    gf_module *rgb2 = build_c(ctx, "cnn-small", 3, 5, 3);
    CHECK(gf_transfer_load_with(ctx, rgb2, grey, &lp, NULL) == GF_OK);
    CHECK(matches_rule(file_w, gf_module_tensor(ctx, rgb2, "features.0.weight")));
    gf_module_free(rgb2);
    rgb2 = build_c(ctx, "cnn-small", 3, 7, 3);
    gf_tensor *w0 = gf_module_tensor(ctx, rgb2, "features.0.weight");
    float before = gf_f32(w0)[0];
    CHECK(gf_transfer_load_with(ctx, rgb2, grey, &lp, &p) == GF_ERR_SHAPE);
    CHECK(strstr(gf_ctx_error(ctx), "classifier.3.weight") && strstr(gf_ctx_error(ctx), "[7, 128]"));
    CHECK(p && !p->applied && gf_f32(w0)[0] == before);
    gf_ctx_clear_error(ctx);
    gf_transfer_plan_free(p);

    /* a dry run plans the adaptation and changes nothing; with a renamed file too */
    const char *renamed = tmp("cnn-grey-module.safetensors");
    write_renamed(ctx, grey, renamed, "module.", NULL, NULL);
    gf_weights_options o = gf_weights_default_options();
    o.strip_prefix = "module.";
    CHECK(gf_transfer_plan_load(ctx, rgb2, renamed, &o, &p) == GF_OK);
    CHECK(p && !p->applied && p->in_adapted && gf_f32(w0)[0] == before);
    CHECK(p && p->report->mismatched == 2); /* the head's weight and bias only */
    gf_transfer_plan_free(p);

    /* error: a mismatch like any other, the note says it was not adapted */
    lp = gf_transfer_load_default_params();
    lp.in_channels = GF_TRANSFER_IN_CHANNELS_ERROR;
    CHECK(gf_transfer_load_with(ctx, rgb2, grey, &lp, &p) == GF_OK);
    CHECK(p && p->applied && !p->in_adapted && p->in_from == 1 && p->report->mismatched == 3);
    CHECK(p && strstr(p->in_note, "not adapted") && gf_f32(w0)[0] == before);
    gf_transfer_plan_free(p);
    lp.weights.strict = true;
    CHECK(gf_transfer_load_with(ctx, rgb, grey, &lp, NULL) == GF_ERR_SHAPE);
    CHECK(strstr(gf_ctx_error(ctx), "features.0.weight"));
    gf_ctx_clear_error(ctx);
    gf_module_free(rgb2);

    /* RGB -> grey: summed; the grey model on grey images equals the RGB one on grey-as-RGB */
    const char *rgb_file = tmp("cnn-rgb.safetensors");
    CHECK(gf_weights_save(ctx, rgb, rgb_file, NULL, 0) == GF_OK);
    gf_tensor *rgb_w = gf_module_tensor(ctx, rgb, "features.0.weight");
    gf_module *g2 = build_c(ctx, "cnn-small", 1, 5, 4);
    CHECK(gf_transfer_load(ctx, g2, rgb_file, NULL, &p) == GF_OK);
    CHECK(p && p->in_adapted && p->in_from == 3 && p->in_to == 1 && strstr(p->in_note, "summed"));
    CHECK(matches_rule(rgb_w, gf_module_tensor(ctx, g2, "features.0.weight")));
    CHECK(conv_gap(ctx, g2, rgb, "features.0") < 1e-5);
    gf_transfer_plan_free(p);
    gf_module_free(g2);

    /* channels that agree: nothing to say */
    CHECK(gf_transfer_load(ctx, g, grey, NULL, &p) == GF_OK);
    CHECK(p && p->in_from == 0 && !p->in_adapted && p->in_note[0] == '\0');
    gf_transfer_plan_free(p);
    gf_module_free(rgb);
    gf_module_free(g);

    /* a float16 file and a BatchNorm net: resnet-mini's conv1 (no bias) */
    gf_module *rm = build_c(ctx, "resnet-mini", 3, 5, 5);
    CHECK(gf_transfer_load(ctx, rm, fixture("resnet-mini"), NULL, &p) == GF_OK);
    CHECK(p && p->in_adapted && strncmp(p->in_note, "conv1.weight: 1 -> 3", 20) == 0 &&
          p->report->mismatched == 0);
    gf_transfer_plan_free(p);
    gf_module_free(rm);
    gf_tensor_free(file_w);
}

int main(void) {
    const char *s = getenv("GRAFT_SOURCE_DIR");
    snprintf(src, sizeof src, "%s", s ? s : ".");
    snprintf(dir, sizeof dir, "/tmp/graft_transfer_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    gf_ctx_params cp = gf_ctx_default_params();
    cp.seed = 5;
    gf_ctx *ctx = gf_ctx_new(&cp);
    test_plan_renamed(ctx);
    test_rules(ctx);
    test_plan_bn(ctx);
    test_delta(ctx);
    test_delta_f16(ctx);
    test_adapt_rule(ctx);
    test_in_channels(ctx);
    const char *dp_base = tmp("resnet-dp.safetensors");
    write_renamed(ctx, fixture("resnet-mini"), dp_base, "module.", NULL, NULL);
    CHECK(doc_example(dp_base, tmp("resnet-doc-delta.safetensors")) == 0);
    gf_ctx_free(ctx);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0) return 1;
    return test_finish("test_transfer_load");
}
