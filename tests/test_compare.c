/* gf_compare_run on a small subset: the PyTorch-pretrained cnn-small
 * (tests/fixtures/pretrained/cnn_small_fmnist04.safetensors) moved to Fashion-MNIST classes 5-9
 * from 20 labels per class for 2 epochs, every strategy, two seeds; then resnet-mini (BatchNorm)
 * on random data for the BatchNorm policies. Checks the result structure, the trainable counts,
 * that frozen tensors stay bitwise unchanged (the delta checkpoints hold only what trained), the
 * JSON fields and the errors. Random 28x28 data stands in when Fashion-MNIST is not installed.
 * To add a case: write a static void test_x(gf_ctx *) with CHECKs and call it from main. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/compare.h"
#include "graft/graft.h"

static char src[1024];
static char base[1200];
static char work[64];

/* n random examples [1, hw, hw] of k classes with a class-dependent pattern. */
static gf_ds *random_ds(gf_ctx *ctx, int64_t n, int hw, int k, uint64_t seed) {
    gf_rng r;
    gf_rng_seed(&r, seed);
    const int64_t px = (int64_t)hw * hw;
    float *x = malloc(sizeof(float) * (size_t)(n * px));
    int64_t *y = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int64_t)(i % k);
        for (int64_t j = 0; j < px; j++)
            x[i * px + j] = 0.3f * gf_rng_uniform(&r) + ((j / hw + y[i]) % k == 0 ? 0.7f : 0.0f);
    }
    return test_ds_take(ctx, NULL, 3, (int64_t[]){1, hw, hw}, n, x, y, NULL, k);
}

/* The names in a delta file, comma-joined into buf. */
static const char *delta_names(gf_ctx *ctx, const char *strategy, uint64_t seed, char *buf,
                               size_t cap) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s-seed%llu.delta.safetensors", work, strategy,
             (unsigned long long)seed);
    buf[0] = '\0';
    gf_st_file *f = gf_st_open(ctx, path);
    if (!f) return buf;
    size_t at = 0;
    for (int i = 0; i < gf_st_count(f) && at + 2 < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", i ? "," : "", gf_st_get(f, i)->name);
    gf_st_close(f);
    return buf;
}

static void test_parse(gf_ctx *ctx) {
    gf_compare_strategy s[GF_COMPARE_STRATEGY_COUNT];
    CHECK(gf_compare_strategies_parse(ctx, "all", false, s, 7) == 6);
    CHECK(gf_compare_strategies_parse(ctx, "all", true, s, 7) == 7 && s[6] == GF_COMPARE_DISTILL);
    CHECK(gf_compare_strategies_parse(ctx, " probe , lora", false, s, 7) == 2 &&
          s[0] == GF_COMPARE_PROBE && s[1] == GF_COMPARE_LORA);
    gf_ctx_clear_error(ctx);
    CHECK(gf_compare_strategies_parse(ctx, "probe,finetuen", false, s, 7) == -1);
    CHECK(strstr(gf_ctx_error(ctx), "\"finetuen\"") != NULL);
    gf_ctx_clear_error(ctx);
    CHECK(gf_compare_strategies_parse(ctx, "probe,probe", false, s, 7) == -1);
    CHECK(strstr(gf_ctx_error(ctx), "twice") != NULL);
    gf_ctx_clear_error(ctx);
    for (int i = 0; i < GF_COMPARE_STRATEGY_COUNT; i++) {
        gf_compare_strategy back;
        CHECK(gf_compare_strategy_parse(gf_compare_strategy_name((gf_compare_strategy)i), &back) &&
              back == (gf_compare_strategy)i);
    }
    CHECK(strcmp(gf_compare_strategy_name(GF_COMPARE_FINETUNE_FROZEN_BN), "finetune-frozen-bn") == 0);
}

static void test_cnn(gf_ctx *ctx) {
    gf_ds *train = NULL, *val = NULL, *test = NULL;
    gf_ds *ftrain = gf_ds_load_named(ctx, "fashion-mnist", GF_DATASET_TRAIN);
    gf_ds *ftest = ftrain ? gf_ds_load_named(ctx, "fashion-mnist", GF_DATASET_TEST) : NULL;
    if (ftest) {
        gf_ds *b = gf_split_classes(ctx, ftrain, "5-9"), *bt = gf_split_classes(ctx, ftest, "5-9");
        train = gf_split_per_class(ctx, b, 20, false, 0, false);
        val = gf_split_per_class(ctx, b, 20, true, 5, false); /* may overlap train: curves only */
        test = gf_split_per_class(ctx, bt, 40, false, 0, false);
        gf_ds_free(b);
        gf_ds_free(bt);
    } else {
        printf("test_compare: Fashion-MNIST not found, random 28x28 data instead\n");
        gf_ctx_clear_error(ctx);
        train = random_ds(ctx, 100, 28, 5, 1);
        val = random_ds(ctx, 60, 28, 5, 2);
        test = random_ds(ctx, 100, 28, 5, 3);
    }
    gf_ds_free(ftrain);
    gf_ds_free(ftest);

    gf_compare_strategy s[GF_COMPARE_STRATEGY_COUNT];
    const int n = gf_compare_strategies_parse(ctx, "all", true, s, 7);
    const uint64_t seeds[2] = {3, 4};
    gf_compare_params p = gf_compare_default_params();
    p.pretrained = base;
    p.teacher = base; /* a 5-class cnn-small: a stand-in teacher, fine for the mechanics */
    p.epochs = 2;
    p.seeds = seeds;
    p.n_seeds = 2;
    p.work_dir = work;
    gf_compare_result *r = NULL;
    CHECK(gf_compare_run(ctx, &p, s, n, train, val, test, &r) == GF_OK);
    if (!r) {
        fprintf(stderr, "%s\n", gf_ctx_error(ctx));
        goto out;
    }
    gf_compare_print(r, stdout, false);
    CHECK(r->n == 7 && r->n_classes == 5 && r->n_seeds == 2 && r->epochs == 2);
    CHECK(r->n_train == 100 && r->n_test == gf_ds_count(test) && r->base_bytes > 0);
    const int64_t full = 420997, head = 128 * 5 + 5;
    /* adapters r = 8: features.0 72 + 256, features.3 2304 + 512, classifier.1 25088 + 1024 */
    const int64_t adapters = 72 + 256 + 2304 + 512 + 25088 + 1024;
    const int64_t want[7] = {full, head, full, full, full, adapters + head, full};
    for (int i = 0; i < r->n; i++) {
        const gf_compare_entry *e = &r->entries[i];
        CHECK(e->strategy == s[i] && strcmp(e->name, gf_compare_strategy_name(s[i])) == 0);
        CHECK(e->params_trainable == want[i]);
        if (e->params_trainable != want[i])
            fprintf(stderr, "%s: %lld trainable, expected %lld\n", e->name,
                    (long long)e->params_trainable, (long long)want[i]);
        CHECK(e->params_total == (s[i] == GF_COMPARE_LORA ? full + adapters : full));
        CHECK(e->n_trials == 2 && e->trials[0].seed == 3 && e->trials[1].seed == 4);
        int64_t sum = 0;
        for (int c = 0; c < 25; c++) sum += e->confusion[c];
        CHECK(sum == 2 * r->n_test);
        for (int t = 0; t < 2; t++) {
            const gf_compare_trial *tr = &e->trials[t];
            CHECK(tr->epochs == 2 && isfinite(tr->train_loss[1]) && isfinite(tr->val_acc[1]));
            CHECK(tr->accuracy >= 0 && tr->accuracy <= 1 && isfinite(tr->macro_f1));
            CHECK(tr->seconds > 0 && tr->state_bytes > 0 && tr->delta_bytes > 0);
            int64_t diag = 0;
            for (int c = 0; c < 5; c++) diag += tr->confusion[c * 5 + c];
            CHECK_NEAR((double)diag / (double)r->n_test, tr->accuracy, 1e-12);
        }
        CHECK(e->acc_sd >= 0 && e->peak_bytes >= e->trials[0].state_bytes);
        CHECK_NEAR(e->acc_mean, (e->trials[0].accuracy + e->trials[1].accuracy) / 2, 1e-12);
    }
    /* no BatchNorm: frozen-bn is finetune, bitwise the same run, and says so */
    const gf_compare_entry *ft = gf_compare_find(r, GF_COMPARE_FINETUNE);
    const gf_compare_entry *fb = gf_compare_find(r, GF_COMPARE_FINETUNE_FROZEN_BN);
    CHECK(ft && fb && strstr(fb->note, "no BatchNorm") != NULL);
    CHECK(ft && fb && ft->acc_mean == fb->acc_mean &&
          memcmp(ft->confusion, fb->confusion, sizeof(int64_t) * 25) == 0 &&
          ft->trials[1].train_loss[1] == fb->trials[1].train_loss[1]);
    /* frozen stays frozen: the deltas hold exactly the tensors that trained */
    char names[2048];
    CHECK(strcmp(delta_names(ctx, "probe", 3, names, sizeof names),
                 "classifier.3.weight,classifier.3.bias") == 0);
    CHECK(gf_compare_find(r, GF_COMPARE_PROBE)->trials[0].delta_tensors == 2);
    delta_names(ctx, "lora", 4, names, sizeof names);
    CHECK(gf_compare_find(r, GF_COMPARE_LORA)->trials[1].delta_tensors == 8);
    int n_lora = 0;
    for (char *tok = strtok(names, ","); tok; tok = strtok(NULL, ","))
        n_lora += strstr(tok, ".lora_A.") || strstr(tok, ".lora_B.") ||
                  strncmp(tok, "classifier.3.", 13) == 0;
    CHECK(n_lora == 8);
    CHECK(gf_compare_find(r, GF_COMPARE_FINETUNE)->trials[0].delta_tensors == 8);
    CHECK(gf_compare_find(r, GF_COMPARE_PROBE)->trials[0].delta_bytes <
          gf_compare_find(r, GF_COMPARE_LORA)->trials[0].delta_bytes);
    CHECK(strstr(gf_compare_find(r, GF_COMPARE_FASTAI)->note, "head only (645 parameters)") != NULL);

    /* JSON */
    char *js = gf_compare_json(ctx, r);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    CHECK(root != NULL);
    const char *top[] = {"model", "pretrained", "teacher", "classes", "n_train", "n_val", "n_test",
                         "budget", "threads", "seeds", "base_bytes", "seconds", "memory",
                         "strategies"};
    for (size_t i = 0; root && i < sizeof top / sizeof top[0]; i++)
        CHECK(cJSON_GetObjectItemCaseSensitive(root, top[i]) != NULL);
    cJSON *arr = root ? cJSON_GetObjectItemCaseSensitive(root, "strategies") : NULL;
    CHECK(cJSON_GetArraySize(arr) == 7);
    cJSON *lo = cJSON_GetArrayItem(arr, 5);
    CHECK(lo && strcmp(cJSON_GetObjectItemCaseSensitive(lo, "name")->valuestring, "lora") == 0);
    const char *fields[] = {"note", "params_total", "params_trainable", "accuracy", "macro_f1",
                            "seconds", "peak_bytes", "delta_bytes", "delta_tensors", "trials",
                            "confusion"};
    for (size_t i = 0; lo && i < sizeof fields / sizeof fields[0]; i++)
        CHECK(cJSON_GetObjectItemCaseSensitive(lo, fields[i]) != NULL);
    cJSON *acc = lo ? cJSON_GetObjectItemCaseSensitive(lo, "accuracy") : NULL;
    CHECK(acc && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(acc, "mean")) &&
          cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(acc, "trials")) == 2);
    cJSON *t0 = lo ? cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(lo, "trials"), 0) : NULL;
    const char *tf[] = {"seed", "accuracy", "macro_f1", "seconds", "arena_peak_bytes",
                        "state_bytes", "rss_delta_kb", "delta_bytes", "delta_tensors",
                        "train_loss", "val_acc", "confusion"};
    for (size_t i = 0; t0 && i < sizeof tf / sizeof tf[0]; i++)
        CHECK(cJSON_GetObjectItemCaseSensitive(t0, tf[i]) != NULL);
    CHECK(t0 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t0, "train_loss")) == 2);
    cJSON *cm = t0 ? cJSON_GetObjectItemCaseSensitive(t0, "confusion") : NULL;
    CHECK(cJSON_GetArraySize(cm) == 5 && cJSON_GetArraySize(cJSON_GetArrayItem(cm, 4)) == 5);
    cJSON_Delete(root);
    free(js);
    /* the table */
    char buf[8192] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    gf_compare_print(r, f, true);
    fclose(f);
    CHECK(strstr(buf, "strategy") && strstr(buf, "macro-F1") && strstr(buf, "finetune-frozen-bn") &&
          strstr(buf, "confusion") && strstr(buf, "train loss:"));
    gf_compare_result_free(r);

    /* errors */
    gf_compare_params q = gf_compare_default_params();
    gf_compare_strategy one = GF_COMPARE_FINETUNE, dist = GF_COMPARE_DISTILL,
                        fa = GF_COMPARE_FASTAI;
    r = NULL;
    CHECK(gf_compare_run(ctx, &q, &one, 1, train, val, test, &r) == GF_ERR_INVALID && !r);
    CHECK(strstr(gf_ctx_error(ctx), "finetune needs a pretrained model") != NULL);
    gf_ctx_clear_error(ctx);
    q.pretrained = base;
    CHECK(gf_compare_run(ctx, &q, &dist, 1, train, val, test, &r) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "teacher") != NULL);
    gf_ctx_clear_error(ctx);
    q.epochs = 1;
    CHECK(gf_compare_run(ctx, &q, &fa, 1, train, val, test, &r) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "fastai_frozen_epochs") != NULL);
    gf_ctx_clear_error(ctx);
    char other[1200];
    snprintf(other, sizeof other, "%s/tests/fixtures/interop/lenet.safetensors", src);
    q.pretrained = other;
    CHECK(gf_compare_run(ctx, &q, &one, 1, train, val, test, &r) != GF_OK && !r);
    CHECK(strstr(gf_ctx_error(ctx), "finetune, seed 0") && strstr(gf_ctx_error(ctx), "lenet"));
    gf_ctx_clear_error(ctx);
out:
    gf_ds_free(train);
    gf_ds_free(val);
    gf_ds_free(test);
}

/* resnet-mini (BatchNorm) from graft's F16 interop fixture on random 8x8 data: frozen-bn keeps
 * every BatchNorm buffer out of the delta; finetune moves them. */
static void test_batchnorm(gf_ctx *ctx) {
    char rn[1200];
    snprintf(rn, sizeof rn, "%s/tests/fixtures/interop/resnet-mini.safetensors", src);
    gf_ds *train = random_ds(ctx, 40, 8, 3, 11), *test = random_ds(ctx, 30, 8, 3, 12);
    gf_compare_strategy s[3] = {GF_COMPARE_FINETUNE, GF_COMPARE_FINETUNE_FROZEN_BN,
                                GF_COMPARE_PROBE};
    gf_compare_params p = gf_compare_default_params();
    p.model = "resnet-mini";
    p.zoo.height = p.zoo.width = 8;
    p.pretrained = rn;
    p.epochs = 2;
    p.batch_size = 16;
    p.work_dir = work;
    gf_compare_result *r = NULL;
    CHECK(gf_compare_run(ctx, &p, s, 3, train, NULL, test, &r) == GF_OK);
    if (r) {
        const gf_compare_entry *ft = &r->entries[0], *fb = &r->entries[1], *pr = &r->entries[2];
        CHECK(strstr(fb->note, "BatchNorm layers in eval mode") != NULL);
        CHECK(strstr(ft->note, "train-all") != NULL);
        CHECK(isnan(ft->trials[0].val_acc[0])); /* no validation data */
        char names[8192];
        delta_names(ctx, "finetune-frozen-bn", 0, names, sizeof names);
        CHECK(names[0] && !strstr(names, "running_") && !strstr(names, "num_batches"));
        CHECK(!strstr(names, "bn1.weight")); /* freeze-stats also freezes the affine */
        delta_names(ctx, "finetune", 0, names, sizeof names);
        CHECK(strstr(names, "running_mean") && strstr(names, "bn1.weight"));
        CHECK(fb->params_trainable < ft->params_trainable);
        CHECK(strcmp(delta_names(ctx, "probe", 0, names, sizeof names), "fc.weight,fc.bias") == 0);
        CHECK(pr->params_trainable == 64 * 3 + 3);
        gf_compare_result_free(r);
    } else {
        fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    }
    gf_ds_free(train);
    gf_ds_free(test);
}

/* The example of docs/COMPARE.md (there with real data and the default budget). */
static int doc_example(void) {
    gf_ctx *ctx = gf_ctx_new(&(gf_ctx_params){.n_threads = 1});
    gf_ds *train = random_ds(ctx, 60, 28, 5, 5), *val = random_ds(ctx, 30, 28, 5, 6);
    gf_ds *test = random_ds(ctx, 50, 28, 5, 7);
    FILE *json_file = tmpfile();
    int rc = 0;
    /* --- from here as in the doc --- */
    gf_compare_strategy s[GF_COMPARE_STRATEGY_COUNT];
    int n = gf_compare_strategies_parse(ctx, "scratch,probe,finetune,lora", false, s,
                                        GF_COMPARE_STRATEGY_COUNT);
    const uint64_t seeds[] = {0, 1, 2};
    gf_compare_params p = gf_compare_default_params(); /* cnn-small, 30 epochs, batch 64, Adam */
    p.pretrained = base;                               /* cnn_small_fmnist04.safetensors */
    p.seeds = seeds;
    p.n_seeds = 3;
    p.epochs = 1; /* (not in the doc: keeps the test fast) */
    gf_compare_result *r = NULL;
    if (n < 0 || gf_compare_run(ctx, &p, s, n, train, val, test, &r) != GF_OK) {
        fprintf(stderr, "graft: %s\n", gf_ctx_error(ctx));
        rc = 1;
    } else {
        gf_compare_print(r, stdout, false);          /* the table */
        gf_compare_write_json(ctx, r, json_file);    /* everything, curves included */
        const gf_compare_entry *ft = gf_compare_find(r, GF_COMPARE_FINETUNE);
        printf("fine-tune: %.4f ± %.4f\n", ft->acc_mean, ft->acc_sd);
        gf_compare_result_free(r);
    }
    /* --- end of the doc's code --- */
    fclose(json_file);
    gf_ds_free(train);
    gf_ds_free(val);
    gf_ds_free(test);
    gf_ctx_free(ctx);
    return rc;
}

int main(void) {
    const char *s = getenv("GRAFT_SOURCE_DIR");
    snprintf(src, sizeof src, "%s", s ? s : ".");
    snprintf(base, sizeof base, "%s/tests/fixtures/pretrained/cnn_small_fmnist04.safetensors", src);
    snprintf(work, sizeof work, "/tmp/graft-test-compare-XXXXXX");
    if (!mkdtemp(work)) {
        perror("mkdtemp");
        return 1;
    }
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    test_parse(ctx);
    test_cnn(ctx);
    test_batchnorm(ctx);
    gf_ctx_free(ctx);
    CHECK(doc_example() == 0);
    test_rm_tree(work);
    return test_finish("test_compare");
}
