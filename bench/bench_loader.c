/* graft's loader benchmark: what feeding batches of Fashion-MNIST through gf_loader with
 * augmentation costs next to a CNN training step, all measured in one run.
 *
 * Usage: bench_loader [--threads N] [--steps K] [--rounds R] [--warmup W] [--batch B]
 *                     [--seed S] [--data fashion-mnist|synthetic]
 *
 * The pipeline: the 60000 training images (uint8, gf_ds_load_named), batches of B = 128 with a
 * fresh shuffle each epoch, RandomCrop(28, padding 2), RandomHorizontalFlip(0.5) and Normalize
 * (the training set's mean and std), through gf_loader. The step: zoo "cnn-small" (conv 32,
 * pool, conv 64, pool, fc 128, fc 10) with Adam(lr 1e-3): forward, cross-entropy, backward,
 * optimizer step, arena reset, on a context of N threads (default: every core).
 *
 * Measured (per batch; each round runs each row for K batches after W warm-up ones, R rounds
 * interleave the rows so that a noisy machine affects them alike; medians over all rounds):
 *   loader, no augmentation   gf_loader_next without transform, prefetch off (reading only)
 *   loader, prefetch off      gf_loader_next with the augmentation: the full CPU cost of a batch
 *   loader, prefetch on       the same with the background thread and a consumer that does no
 *                             work: the producer's rate, plus the hand-over
 *   cnn step                  one training step on a fixed batch, no loader
 *   loop, prefetch off / on   the real training loop: gf_loader_next then the step; reported
 *                             are the time spent in gf_loader_next (with prefetch on: the time
 *                             the consumer waits) and the whole iteration, whose excess over
 *                             "cnn step" also shows the prefetch thread competing for cores
 * The last line is one JSON object with the same numbers (milliseconds). */
#define _GNU_SOURCE
#include "graft/graft.h"
#include "graft/dataset.h"
#include "graft/loader.h"
#include "graft/optim.h"
#include "graft/transforms.h"
#include "graft/zoo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct opts {
    int threads, steps, rounds, warmup;
    int64_t batch;
    uint64_t seed;
    const char *data;
} opts;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A growing list of per-batch samples (ms). */
typedef struct samples {
    double *v;
    int n, cap;
} samples;

static void push(samples *s, double x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        double *nv = realloc(s->v, sizeof *nv * (size_t)s->cap);
        if (!nv) {
            fprintf(stderr, "bench_loader: out of memory\n");
            exit(1);
        }
        s->v = nv;
    }
    s->v[s->n++] = x;
}

static double med(const samples *s) {
    if (!s->n) return NAN;
    double *c = malloc(sizeof *c * (size_t)s->n);
    memcpy(c, s->v, sizeof *c * (size_t)s->n);
    qsort(c, (size_t)s->n, sizeof *c, cmp_double);
    double m = s->n % 2 ? c[s->n / 2] : 0.5 * (c[s->n / 2 - 1] + c[s->n / 2]);
    free(c);
    return m;
}

static double mean(const samples *s) {
    double t = 0;
    for (int i = 0; i < s->n; i++) t += s->v[i];
    return s->n ? t / s->n : NAN;
}

static int die(gf_ctx *ctx, const char *what) {
    fprintf(stderr, "bench_loader: %s: %s\n", what, gf_ctx_error(ctx));
    return 1;
}

static bool parse(int argc, char **argv, opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return false;
        if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--steps")) o->steps = atoi(v);
        else if (!strcmp(a, "--rounds")) o->rounds = atoi(v);
        else if (!strcmp(a, "--warmup")) o->warmup = atoi(v);
        else if (!strcmp(a, "--batch")) o->batch = atoll(v);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--data")) o->data = v;
        else return false;
        i++;
    }
    return o->threads >= 0 && o->steps > 0 && o->rounds > 0 && o->warmup >= 0 && o->batch > 0;
}

/* The Fashion-MNIST training set, or (asked for, or missing) 60000 random images of its size. */
static gf_ds *load_data(gf_ctx *ctx, const opts *o, const char **used) {
    if (strcmp(o->data, "synthetic") != 0) {
        gf_ds *ds = gf_ds_load_named(ctx, o->data, GF_DATASET_TRAIN);
        if (ds) {
            *used = o->data;
            return ds;
        }
        fprintf(stderr, "bench_loader: %s; using synthetic data\n", gf_ctx_error(ctx));
        gf_ctx_clear_error(ctx);
    }
    enum { N = 60000 };
    uint8_t *x = malloc((size_t)N * 784);
    int64_t *y = malloc(sizeof *y * N);
    gf_rng r;
    gf_rng_seed(&r, o->seed);
    for (size_t i = 0; i < (size_t)N * 784; i++) x[i] = (uint8_t)gf_rng_below(&r, 256);
    for (int i = 0; i < N; i++) y[i] = (int64_t)gf_rng_below(&r, 10);
    gf_ds_desc d = {.ndim = 3, .shape = {1, 28, 28}, .n = N, .x_u8 = x, .labels = y,
                    .n_classes = 10, .name = "synthetic"};
    gf_ds *ds = gf_ds_from_memory(ctx, &d);
    free(x);
    free(y);
    *used = "synthetic";
    return ds;
}

/* K batches through a loader with nothing else to do: per-batch time of gf_loader_next. */
static bool time_loader(gf_ctx *ctx, gf_loader *ld, const opts *o, samples *s) {
    gf_batch b;
    for (int i = 0; i < o->warmup + o->steps; i++) {
        double t0 = now_ms();
        bool got = gf_loader_next(ctx, ld, &b);
        if (!got && gf_ctx_status(ctx) == GF_OK) got = gf_loader_next(ctx, ld, &b); /* new epoch */
        double t1 = now_ms();
        if (!got) return false;
        if (i >= o->warmup) push(s, t1 - t0);
    }
    return true;
}

typedef struct trainer {
    gf_module *net;
    gf_optim *opt;
} trainer;

/* One training step on x [B, 1, 28, 28], y [B]. */
static bool step(gf_ctx *ctx, trainer *t, gf_tensor *x, gf_tensor *y) {
    gf_tensor *logits = gf_module_forward(ctx, t->net, x);
    gf_tensor *loss = gf_cross_entropy(ctx, logits, y, GF_REDUCE_MEAN, -100);
    gf_optim_zero_grad(t->opt);
    bool ok = loss && gf_backward(ctx, loss) == GF_OK && gf_optim_step(ctx, t->opt) == GF_OK;
    gf_ctx_reset(ctx);
    return ok;
}

/* The training loop: loader then step; `wait` gets the time in gf_loader_next, `iter` the
 * whole iteration. */
static bool time_loop(gf_ctx *ctx, gf_loader *ld, trainer *t, const opts *o, samples *wait,
                      samples *iter) {
    gf_batch b;
    for (int i = 0; i < o->warmup + o->steps; i++) {
        double t0 = now_ms();
        bool got = gf_loader_next(ctx, ld, &b);
        if (!got && gf_ctx_status(ctx) == GF_OK) got = gf_loader_next(ctx, ld, &b);
        double t1 = now_ms();
        if (!got || !step(ctx, t, b.x, b.y)) return false;
        double t2 = now_ms();
        if (i >= o->warmup) {
            push(wait, t1 - t0);
            push(iter, t2 - t0);
        }
    }
    return true;
}

enum { L_PLAIN, L_OFF, L_ON, N_LOADERS };

int main(int argc, char **argv) {
    opts o = {.threads = 0, .steps = 20, .rounds = 3, .warmup = 3, .batch = 128, .seed = 0,
              .data = "fashion-mnist"};
    if (!parse(argc, argv, &o)) {
        fprintf(stderr, "usage: bench_loader [--threads N] [--steps K] [--rounds R] "
                        "[--warmup W] [--batch B] [--seed S] [--data fashion-mnist|synthetic]\n");
        return 2;
    }
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = o.threads;
    cp.seed = o.seed;
    gf_ctx *ctx = gf_ctx_new(&cp);
    if (!ctx) return 1;
    const char *used = NULL;
    gf_ds *ds = load_data(ctx, &o, &used);
    if (!ds) return die(ctx, "dataset");

    /* augmentation: RandomCrop(28, padding=2), RandomHorizontalFlip(), Normalize(mean, std) */
    float mu, sd;
    double t0 = now_ms();
    if (gf_ds_channel_stats(ctx, ds, &mu, &sd) != GF_OK) return die(ctx, "channel stats");
    double stats_ms = now_ms() - t0;
    gf_tf *tf = gf_tf_new(ctx);
    if (!tf || gf_tf_random_crop(ctx, tf, 28, 28, 2) != GF_OK || gf_tf_hflip(ctx, tf, 0.5f) != GF_OK ||
        gf_tf_normalize(ctx, tf, 1, &mu, &sd) != GF_OK)
        return die(ctx, "transform");

    gf_loader *ld[N_LOADERS];
    for (int k = 0; k < N_LOADERS; k++) {
        gf_loader_params lp = gf_loader_default_params();
        lp.batch_size = o.batch;
        lp.seed = o.seed;
        lp.drop_last = true;
        lp.prefetch = k == L_ON;
        lp.transform = k == L_PLAIN ? NULL : tf;
        ld[k] = gf_loader_new(ctx, ds, &lp);
        if (!ld[k]) return die(ctx, "loader");
    }

    gf_zoo_params zp = gf_zoo_default_params();
    trainer t = {gf_zoo_build(ctx, "cnn-small", &zp, NULL), NULL};
    if (!t.net) return die(ctx, "model");
    gf_named_tensors *params = gf_module_named_tensors(ctx, t.net, GF_STATE_PARAMS);
    if (!params) return die(ctx, "parameters");
    gf_tensor *plist[16];
    int np = 0;
    for (int i = 0; i < params->n && np < 16; i++) plist[np++] = params->items[i].tensor;
    gf_named_tensors_free(params);
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_ADAM);
    t.opt = gf_optim_new(ctx, &hp, plist, np);
    if (!t.opt) return die(ctx, "optimizer");
    /* the fixed batch of the step-only row: the first augmented batch, copied */
    int64_t xs[4] = {o.batch, 1, 28, 28};
    gf_tensor *fx = gf_tensor_new(ctx, GF_F32, 4, xs), *fy = gf_tensor_new(ctx, GF_I64, 1, xs);
    gf_batch b;
    if (!fx || !fy || !gf_loader_next(ctx, ld[L_OFF], &b)) return die(ctx, "first batch");
    memcpy(fx->data, b.x->data, sizeof(float) * (size_t)fx->numel);
    memcpy(fy->data, b.y->data, sizeof(int64_t) * (size_t)fy->numel);

    samples s_plain = {0}, s_off = {0}, s_on = {0}, s_step = {0}, w_off = {0}, i_off = {0},
            w_on = {0}, i_on = {0};
    double begin = now_ms();
    for (int r = 0; r < o.rounds; r++) {
        bool ok = time_loader(ctx, ld[L_PLAIN], &o, &s_plain) &&
                  time_loader(ctx, ld[L_OFF], &o, &s_off) &&
                  time_loader(ctx, ld[L_ON], &o, &s_on);
        for (int i = 0; ok && i < o.warmup + o.steps; i++) {
            double a = now_ms();
            ok = step(ctx, &t, fx, fy);
            if (i >= o.warmup) push(&s_step, now_ms() - a);
        }
        ok = ok && time_loop(ctx, ld[L_OFF], &t, &o, &w_off, &i_off) &&
             time_loop(ctx, ld[L_ON], &t, &o, &w_on, &i_on);
        if (!ok) return die(ctx, "run");
    }
    double total_s = (now_ms() - begin) / 1e3;

    const double step_ms = med(&s_step);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("bench_loader: %s, batch %lld, RandomCrop(28, pad 2) + HFlip + Normalize; cnn-small + "
           "Adam; %d compute threads (%ld cores online); %d rounds x %d batches; %.1f s\n",
           used, (long long)o.batch, gf_ctx_threads(ctx), cores, o.rounds, o.steps, total_s);
    printf("  (train-set mean/std for Normalize: %.4f / %.4f, computed once in %.0f ms)\n", mu, sd,
           stats_ms);
    printf("  %-34s %9s %9s %12s\n", "per batch of 128", "median ms", "mean ms", "% of cnn step");
#define ROW(label, s) \
    printf("  %-34s %9.3f %9.3f %11.2f%%\n", label, med(s), mean(s), 100.0 * med(s) / step_ms)
    ROW("loader, no augmentation", &s_plain);
    ROW("loader, augmented, prefetch off", &s_off);
    ROW("loader, augmented, prefetch on", &s_on);
    ROW("cnn-small train step (no loader)", &s_step);
    ROW("loop prefetch off: in loader", &w_off);
    ROW("loop prefetch off: iteration", &i_off);
    ROW("loop prefetch on: consumer wait", &w_on);
    ROW("loop prefetch on: iteration", &i_on);
#undef ROW
    printf("  loader cost: %.2f%% of a step without prefetch; with prefetch the consumer waits "
           "%.3f ms (%.2f%%) and an iteration takes %+.2f%% vs the step alone\n",
           100.0 * med(&s_off) / step_ms, med(&w_on), 100.0 * med(&w_on) / step_ms,
           100.0 * (med(&i_on) - step_ms) / step_ms);
    printf("{\"bench\":\"loader\",\"data\":\"%s\",\"batch\":%lld,\"threads\":%d,\"cores\":%ld,"
           "\"loader_plain_ms\":%.4f,\"loader_off_ms\":%.4f,\"loader_on_ms\":%.4f,"
           "\"step_ms\":%.4f,\"loop_off_loader_ms\":%.4f,\"loop_off_iter_ms\":%.4f,"
           "\"loop_on_wait_ms\":%.4f,\"loop_on_iter_ms\":%.4f,\"loader_pct_of_step\":%.3f,"
           "\"wait_pct_of_step\":%.3f}\n",
           used, (long long)o.batch, gf_ctx_threads(ctx), cores, med(&s_plain), med(&s_off),
           med(&s_on), step_ms, med(&w_off), med(&i_off), med(&w_on), med(&i_on),
           100.0 * med(&s_off) / step_ms, 100.0 * med(&w_on) / step_ms);

    samples *all[] = {&s_plain, &s_off, &s_on, &s_step, &w_off, &i_off, &w_on, &i_on};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]->v);
    gf_tensor_free(fx);
    gf_tensor_free(fy);
    gf_optim_free(t.opt);
    gf_module_free(t.net);
    for (int k = 0; k < N_LOADERS; k++) gf_loader_free(ld[k]);
    gf_tf_free(tf);
    gf_ds_free(ds);
    gf_ctx_free(ctx);
    return 0;
}
