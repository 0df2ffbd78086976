/* graft's benchmark program: trains or runs one fixed workload (MLP, CNN, CNN fine-tuning,
 * sgemm) and prints one JSON line of throughput, peak memory and start-up time, so that
 * bench/run.sh can put it next to bench/bench_torch.py running the same workload.
 *
 * Usage: bench_graft --workload mlp|cnn|finetune-frozen|finetune-full|sgemm|lstm|gru|
 *                               lstm-256|gru-256|transformer|mbv2-<S>-b<B>|mbv2-head|mbv2-full|
 *                               logmel
 *                    [--mode train|infer] [--threads N] [--steps K] [--windows W]
 *                    [--warmup S] [--batch B] [--data fashion-mnist|synthetic] [--seed S]
 *                    [--time-limit SECONDS] [--inplace on|off] [--replicas R]
 *
 * Workloads (the same in bench_torch.py):
 *   mlp              784-256-128-10, ReLU, batch 128, Adam(lr 1e-3), cross-entropy.
 *   cnn              conv(1->32, 3x3, pad 1)-ReLU-maxpool2-conv(32->64, 3x3, pad 1)-ReLU-
 *                    maxpool2-flatten-fc(3136->128)-ReLU-fc(128->10), batch 64, Adam.
 *   finetune-frozen  the cnn with its conv trunk frozen (requires_grad off): only the two fc
 *                    layers train; the trunk runs forward only and records no graph.
 *   finetune-full    the cnn with every layer trainable: the same computation as cnn train,
 *                    kept as its own name so the two fine-tuning rows sit side by side.
 *   transformer      the zoo's text classifier: Embedding(1000, 128, padding 0), sinusoidal
 *                    positions, a 2-layer batch-first TransformerEncoder (d 128, 4 heads,
 *                    feed-forward 256, dropout 0.1), mean pooling over the real steps,
 *                    fc(128->10); batch 32 of length 64, example i of batch b holding
 *                    16 + (37 i + 11 b) % 49 tokens (the rest padding, masked), Adam.
 *   sgemm            C = A B through gf_matmul for square n = 256, 512, 1024 and the MLP's
 *                    first-layer shape; GFLOP/s (2 m n k / s).
 *   lstm, gru        text classification: token ids [32, 64] (vocabulary 1000, right-padded
 *   lstm-256,        with id 0, lengths 32..64) -> Embedding(1000, 64) -> one LSTM / GRU layer
 *   gru-256          of hidden size 128 (256 for the -256 variants) with the lengths, batch
 *                    first -> the state at each example's last real step -> Linear(H, 2),
 *                    batch 32, Adam, cross-entropy. Synthetic ids drawn from the seed: the
 *                    label is whether the first id is below 500.
 *   mbv2-<S>-b<B>    MobileNetV2 inference (no graph) at batch B on S x S images: the
 *                    TensorFlow.js file of scripts/fetch-mobilenet.sh through
 *                    gf_tfjs_classifier (trunk cut at out_relu, global average pooling, a new
 *                    Linear(1280, 10)), images uniform in [-1, 1) from the seed, reused. With
 *                    several threads and B >= 2 the batch is split between them
 *                    (gf_replicas_forward, as gf_evaluate does; --replicas 1: every op's
 *                    work split instead).
 *   mbv2-head        the trunk's pooled features of 64 images at 224 x 224 (batches of 32, one
 *                    untimed batch first; a JSON line of mode "features" with that rate), then
 *                    the Linear head alone trained on them (batch 32, Adam), in one context.
 *   mbv2-full        every layer trained (BatchNorm on batch statistics), batch 32 at 96 x 96.
 *   logmel           log-mel features (mode "features") of batches of 64 one-second 16 kHz
 *                    clips, torchaudio's MelSpectrogram defaults with n_fft 400, hop 160, 40
 *                    mels, then log(x + 1e-6); graft runs a clip per thread (as its audio
 *                    loader does), PyTorch one batched torch.stft and a filterbank product.
 *                    256 synthetic clips (a rising tone and hash noise), reused.
 * Data: the Fashion-MNIST training images (uint8, read once with gf_dataset_load), converted
 * to float per batch with gf_dataset_batch (pixel / 255) in a fixed seeded order, as a real
 * training loop does. --data synthetic (or a missing dataset) uses random uint8 images of the
 * same size instead, converted the same way; the JSON's "data" field says which was used.
 *
 * Timing: `warmup` steps, then `windows` windows of `steps` steps each; samples/s is the
 * median over windows (samples_per_cpu_s: all windows' samples per second of process CPU
 * time); with --time-limit, no new window starts once that many seconds have
 * passed since the end of the warmup (at least one window always runs), which bounds a run on
 * a machine so busy that a window takes many times longer than planned. Peak RSS is
 * getrusage's ru_maxrss; arena_peak_mib the most the context arena held at once (one step's
 * activations, gradients and scratch). time_to_first_step_s runs from the kernel's process start time
 * (/proc/self/stat starttime, 10 ms resolution) to the end of the first training (or
 * inference) step: it includes loading the dataset and building the model.
 * Training with several threads splits each batch between them by examples (gf_replicas), as
 * gf_fit does by default; --replicas 1 splits every op's work instead (the older way), and
 * "replicas" in the JSON says which ran. arena_peak_mib then covers the main context only. */
#define _GNU_SOURCE
#include "graft/graft.h"
#include "graft/zoo.h"
#include "graft/data.h"
#include "graft/optim.h"
#include "graft/tfjs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { IMG = 28, PIX = IMG * IMG, N_CLASSES = 10, SYNTH_N = 8192, MAX_WINDOWS = 64 };

typedef struct opts {
    const char *workload; /* mlp, cnn, finetune-frozen, finetune-full, sgemm */
    const char *mode;     /* train, infer */
    const char *data;     /* fashion-mnist, synthetic */
    int threads, steps, windows, warmup;
    int replicas;         /* training: -1 auto (as gf_fit: one per thread), 1 off, >= 2 */
    int64_t batch;        /* 0: the workload's default */
    uint64_t seed;
    double time_limit;    /* seconds of timed windows before stopping early; 0: none */
    bool inplace;         /* gf_ctx_set_inplace (docs/NN.md, "Memory"); on by default */
} opts;

/* ---- clocks and process facts ------------------------------------------------------------ */

static double now_s(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds since this process was started by the kernel (CLOCK_BOOTTIME minus field 22 of
 * /proc/self/stat), or -1 when /proc is unreadable. */
static double since_process_start(void) {
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return -1.0;
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces; fields follow its ')' */
    if (!p) return -1.0;
    unsigned long long start = 0;
    int field = 2; /* p points at the end of field 2 */
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
        if (++field == 22) {
            start = strtoull(tok, NULL, 10);
            break;
        }
    }
    if (field != 22) return -1.0;
    return now_s(CLOCK_BOOTTIME) - (double)start / (double)sysconf(_SC_CLK_TCK);
}

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double s[MAX_WINDOWS];
    memcpy(s, v, sizeof *v * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static int die(gf_ctx *ctx, const char *what) {
    fprintf(stderr, "bench_graft: %s: %s\n", what, ctx ? gf_ctx_error(ctx) : "out of memory");
    return 1;
}

/* ---- models ------------------------------------------------------------------------------ */

static gf_module *make_mlp(gf_ctx *ctx) {
    gf_module *layers[] = {
        gf_nn_linear(ctx, NULL, PIX, 256, true), gf_nn_relu(ctx),
        gf_nn_linear(ctx, NULL, 256, 128, true), gf_nn_relu(ctx),
        gf_nn_linear(ctx, NULL, 128, N_CLASSES, true),
    };
    return gf_nn_sequential_of(ctx, (int)(sizeof layers / sizeof *layers), layers);
}

/* Children 0..5 are the conv trunk, 6..9 the classifier (flatten, fc, relu, fc). */
enum { CNN_TRUNK = 6 };

static gf_module *make_cnn(gf_ctx *ctx) {
    gf_conv_params cp = gf_conv_default_params();
    cp.padding[0] = cp.padding[1] = 1;
    gf_pool_params pp = gf_pool_default_params(2);
    gf_module *layers[] = {
        gf_nn_conv2d(ctx, NULL, 1, 32, 3, 3, &cp, true),  gf_nn_relu(ctx),
        gf_nn_max_pool2d(ctx, &pp),                       /* [N, 32, 14, 14] */
        gf_nn_conv2d(ctx, NULL, 32, 64, 3, 3, &cp, true), gf_nn_relu(ctx),
        gf_nn_max_pool2d(ctx, &pp),                       /* [N, 64, 7, 7] */
        gf_nn_flatten(ctx, 1, -1),                        /* [N, 3136] */
        gf_nn_linear(ctx, NULL, 64 * 7 * 7, 128, true),   gf_nn_relu(ctx),
        gf_nn_linear(ctx, NULL, 128, N_CLASSES, true),
    };
    return gf_nn_sequential_of(ctx, (int)(sizeof layers / sizeof *layers), layers);
}

/* ---- data -------------------------------------------------------------------------------- */

/* The Fashion-MNIST training set, or SYNTH_N random images when it is missing or not wanted.
 * *real tells which. NULL (ctx error) only when out of memory. */
static gf_dataset *load_data(gf_ctx *ctx, const opts *o, bool *real) {
    *real = false;
    if (strcmp(o->data, "synthetic") != 0) {
        gf_dataset *d = gf_dataset_load(ctx, o->data, GF_DATASET_TRAIN);
        if (d) {
            *real = true;
            return d;
        }
        fprintf(stderr, "bench_graft: %s; using synthetic data\n", gf_ctx_error(ctx));
        gf_ctx_clear_error(ctx);
    }
    gf_dataset *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->n = SYNTH_N;
    d->rows = d->cols = IMG;
    d->n_classes = N_CLASSES;
    d->images = malloc((size_t)SYNTH_N * PIX);
    d->labels = malloc(SYNTH_N);
    if (!d->images || !d->labels) {
        gf_dataset_free(d);
        return NULL;
    }
    gf_rng r;
    gf_rng_seed(&r, o->seed + 1);
    for (int64_t i = 0; i < (int64_t)SYNTH_N * PIX; i++) d->images[i] = (uint8_t)gf_rng_u32(&r);
    for (int64_t i = 0; i < SYNTH_N; i++) d->labels[i] = (uint8_t)gf_rng_below(&r, N_CLASSES);
    return d;
}

/* ---- workloads --------------------------------------------------------------------------- */

typedef struct run_state {
    gf_module *model;
    gf_optim *opt;      /* NULL for inference */
    gf_replicas *rep;   /* training split by examples between threads (gf_fit's default) */
    gf_dataset *data;
    int64_t *perm;      /* a seeded permutation of the examples, walked batch by batch */
    int64_t pos;        /* next position in perm */
    int64_t batch;
    bool image_input;   /* [B, 1, 28, 28] (cnn) or [B, 784] (mlp) */
    double last_loss;
    float *ids;         /* text workloads: token ids and labels of the synthetic data */
    int64_t *labels;
    const gf_mel *mel;  /* logmel: the extractor, the clips and their features */
    float *clips, *feats;
    int threads;
} run_state;

/* One step: the next batch converted from uint8, forward, and for training the loss,
 * backward and an Adam update. Returns false with a ctx error on failure. */
static bool step(gf_ctx *ctx, run_state *s) {
    const int64_t B = s->batch;
    if (s->pos + B > s->data->n) s->pos = 0;
    int64_t xs4[4] = {B, 1, IMG, IMG}, xs2[2] = {B, PIX};
    gf_tensor *x = s->image_input ? gf_empty(ctx, GF_F32, 4, xs4) : gf_empty(ctx, GF_F32, 2, xs2);
    gf_tensor *y = gf_empty(ctx, GF_I64, 1, &B);
    if (!x || !y) return false;
    if (gf_dataset_batch(ctx, s->data, s->perm + s->pos, B, 0.0f, 1.0f, x, y) != GF_OK)
        return false;
    s->pos += B;
    if (s->rep) {
        gf_replicas_out ro;
        gf_optim_zero_grad(s->opt);
        if (gf_replicas_step(ctx, s->rep, NULL, x, y, 1.0f, &ro) != GF_OK ||
            gf_optim_step(ctx, s->opt) != GF_OK)
            return false;
        s->last_loss = ro.loss;
        gf_ctx_reset(ctx);
        return true;
    }
    gf_tensor *logits = gf_module_forward(ctx, s->model, x);
    if (!logits) return false;
    if (s->opt) {
        gf_tensor *loss = gf_cross_entropy(ctx, logits, y, GF_REDUCE_MEAN, -100);
        if (!loss) return false;
        gf_optim_zero_grad(s->opt);
        if (gf_backward(ctx, loss) != GF_OK || gf_optim_step(ctx, s->opt) != GF_OK) return false;
        s->last_loss = gf_f32(loss)[0];
    }
    gf_ctx_reset(ctx);
    return true;
}

static void print_json(const opts *o, const char *mode, int64_t batch, bool real, double sps,
                       const double *win, int n_win, double step_start, double first_step,
                       double start_to_main, double first_loss, double last_loss, int64_t trainable, int64_t params,
                       size_t arena_peak, int replicas) {
    printf("{\"impl\":\"graft\",\"workload\":\"%s\",\"mode\":\"%s\",\"threads\":%d,"
           "\"batch\":%lld,\"data\":\"%s\",\"samples_per_s\":%.1f,\"windows\":[",
           o->workload, mode, o->threads, (long long)batch, real ? "fashion-mnist" : "synthetic",
           sps);
    for (int i = 0; i < n_win; i++) printf("%s%.1f", i ? "," : "", win[i]);
    printf("],\"steps_per_window\":%d,\"peak_rss_mib\":%.1f,\"arena_peak_mib\":%.1f,"
           "\"time_to_step_start_s\":%.3f,\"time_to_first_step_s\":%.3f,"
           "\"process_start_to_main_s\":%.3f,\"params\":%lld,\"trainable_params\":%lld,"
           "\"blas\":\"%s\",\"blas_kernel\":\"%s\",\"replicas\":%d",
           o->steps, peak_rss_mib(), (double)arena_peak / 1048576.0, step_start, first_step,
           start_to_main,
           (long long)params, (long long)trainable, gf_blas_threading(), gf_blas_kernel(), replicas);
    if (strcmp(mode, "train") == 0)
        printf(",\"first_loss\":%.4f,\"last_loss\":%.4f", first_loss, last_loss);
    /* the caller may add fields, then ends the object */
}

/* Training replicas for --replicas: -1 (auto) as gf_fit, one per thread where the model allows
 * it (BatchNorm on batch statistics does not), else 1 (every op's work split). */
static int replica_count(const opts *o, const gf_module *model) {
    char why[384];
    if (o->replicas >= 0) return o->replicas;
    return gf_module_replicable(model, why, sizeof why) ? o->threads : 1;
}

/* A context with --threads and --seed. */
static gf_ctx *bench_context(const opts *o) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = o->threads;
    cp.seed = o->seed;
    return gf_ctx_new(&cp);
}

static int run_model(const opts *o, double start_to_main) {
    const bool mlp = strcmp(o->workload, "mlp") == 0;
    const bool frozen = strcmp(o->workload, "finetune-frozen") == 0;
    const bool finetune = frozen || strcmp(o->workload, "finetune-full") == 0;
    const char *mode = finetune ? "train" : o->mode;
    const bool train = strcmp(mode, "train") == 0;
    if (!mlp && !finetune && strcmp(o->workload, "cnn") != 0) {
        fprintf(stderr, "bench_graft: unknown workload '%s'\n", o->workload);
        return 2;
    }
    if (!train && strcmp(mode, "infer") != 0) {
        fprintf(stderr, "bench_graft: unknown mode '%s'\n", mode);
        return 2;
    }
    gf_ctx *ctx = bench_context(o);
    if (!ctx) return die(NULL, "context");
    gf_ctx_set_inplace(ctx, o->inplace);

    run_state s = {0};
    s.batch = o->batch > 0 ? o->batch : (mlp ? 128 : 64);
    s.image_input = !mlp;
    bool real = false;
    s.data = load_data(ctx, o, &real);
    if (!s.data) return die(ctx, "data");
    s.perm = malloc(sizeof *s.perm * (size_t)s.data->n);
    if (!s.perm) return die(NULL, "permutation");
    for (int64_t i = 0; i < s.data->n; i++) s.perm[i] = i;
    gf_rng_shuffle(gf_ctx_rng(ctx), s.perm, s.data->n);

    s.model = mlp ? make_mlp(ctx) : make_cnn(ctx);
    if (!s.model) return die(ctx, "model");
    if (frozen)
        for (int i = 0; i < CNN_TRUNK; i++)
            gf_module_set_requires_grad(gf_module_child_at(s.model, i, NULL), false);
    if (train) {
        /* every parameter goes to Adam, as `Adam(model.parameters())` does; frozen ones get no
         * gradient buffer, so the optimizer skips them and allocates no state for them */
        gf_named_tensors *pl = gf_module_named_tensors(ctx, s.model, GF_STATE_PARAMS);
        if (!pl) return die(ctx, "parameters");
        gf_tensor *params[16];
        int n = 0;
        for (int i = 0; i < pl->n && n < 16; i++) params[n++] = pl->items[i].tensor;
        gf_named_tensors_free(pl);
        gf_optim_params hp = gf_optim_default_params(GF_OPTIM_ADAM);
        s.opt = gf_optim_new(ctx, &hp, params, n);
        if (!s.opt) return die(ctx, "optimizer");
        const int nrep = replica_count(o, s.model);
        if (nrep >= 2 && !(s.rep = gf_replicas_new(ctx, s.model, nrep))) return die(ctx, "replicas");
    } else {
        gf_module_train(s.model, false);
        gf_ctx_set_grad_enabled(ctx, false);
    }

    const double step_start = since_process_start(); /* data, model and optimizer ready */
    if (!step(ctx, &s)) return die(ctx, "first step");
    const double first_step = since_process_start();
    const double first_loss = s.last_loss;
    for (int i = 1; i < o->warmup; i++)
        if (!step(ctx, &s)) return die(ctx, "warmup");
    double win[MAX_WINDOWS];
    int n_win = 0;
    const double t_timed = now_s(CLOCK_MONOTONIC);
    while (n_win < o->windows &&
           (n_win == 0 || o->time_limit <= 0 || now_s(CLOCK_MONOTONIC) - t_timed < o->time_limit)) {
        double t0 = now_s(CLOCK_MONOTONIC);
        for (int i = 0; i < o->steps; i++)
            if (!step(ctx, &s)) return die(ctx, "step");
        win[n_win++] = (double)(o->steps * s.batch) / (now_s(CLOCK_MONOTONIC) - t0);
    }
    print_json(o, mode, s.batch, real, median(win, n_win), win, n_win, step_start, first_step,
               start_to_main, first_loss, s.last_loss, gf_module_param_count(s.model, true),
               gf_module_param_count(s.model, false), gf_arena_peak(gf_ctx_arena(ctx)),
               s.rep ? gf_replicas_count(s.rep) : 1);
    printf("}\n");
    gf_replicas_free(s.rep);
    gf_optim_free(s.opt);
    gf_module_free(s.model);
    free(s.perm);
    gf_dataset_free(s.data);
    gf_ctx_free(ctx);
    return 0;
}

/* One training step of a text workload on batch (x, y): cross entropy, Adam, in the replicas
 * when there are several threads. */
static bool train_batch(gf_ctx *ctx, gf_module *model, gf_optim *opt, gf_replicas *rep,
                        gf_tensor *x, gf_tensor *y, double *last_loss) {
    gf_optim_zero_grad(opt);
    if (rep) {
        gf_replicas_out ro;
        if (gf_replicas_step(ctx, rep, NULL, x, y, 1.0f, &ro) != GF_OK) return false;
        *last_loss = ro.loss;
    } else {
        gf_tensor *loss = gf_cross_entropy(ctx, gf_module_forward(ctx, model, x), y,
                                           GF_REDUCE_MEAN, -100);
        if (!loss || gf_backward(ctx, loss) != GF_OK) return false;
        *last_loss = gf_f32(loss)[0];
    }
    if (gf_optim_step(ctx, opt) != GF_OK) return false;
    gf_ctx_reset(ctx);
    return true;
}

/* ---- text workloads: embedding -> LSTM / GRU -> last real step -> Linear ---------------- */

enum { TXT_T = 64, TXT_VOCAB = 1000, TXT_EMB = 64, TXT_N = 4096, TXT_BATCH = 32 };

/* Lengths from the ids (the count of non-zero ids of each row), the embedding, the recurrent
 * layer and the head on its final state, which is the state at each example's last real
 * step. Changes nothing but ctx: marked reentrant, so replicas can run it. */
static gf_tensor *text_forward(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    const int64_t B = x->shape[0], T = x->shape[1];
    gf_tensor *len = gf_empty(ctx, GF_I64, 1, &B);
    if (!len) return NULL;
    for (int64_t b = 0; b < B; b++) {
        int64_t n = 0;
        for (int64_t t = 0; t < T; t++) n += gf_get_f32(x, b * T + t) != 0.0f;
        gf_i64(len)[b] = n;
    }
    gf_tensor *e = gf_module_forward(ctx, gf_module_child(self, "embedding"), x), *hn = NULL;
    if (!gf_nn_rnn_run(ctx, gf_module_child(self, "rnn"), e, len, NULL, NULL, &hn, NULL))
        return NULL;
    gf_tensor *last = gf_reshape(ctx, hn, 2, (int64_t[]){B, hn->shape[2]});
    return gf_module_forward(ctx, gf_module_child(self, "fc"), last);
}

static gf_module *make_text(gf_ctx *ctx, bool lstm, int64_t hidden) {
    gf_module *m = gf_nn_container(ctx, "TextClassifier", text_forward, NULL, NULL);
    gf_nn_rnn_params p = gf_nn_rnn_default_params(TXT_EMB, hidden);
    p.batch_first = true;
    if (!m || gf_module_add(ctx, m, "embedding", gf_nn_embedding(ctx, NULL, TXT_VOCAB, TXT_EMB, 0)) ||
        gf_module_add(ctx, m, "rnn", lstm ? gf_nn_lstm(ctx, NULL, &p) : gf_nn_gru(ctx, NULL, &p)) ||
        gf_module_add(ctx, m, "fc", gf_nn_linear(ctx, NULL, hidden, 2, true))) {
        gf_module_free(m);
        return NULL;
    }
    gf_module_set_reentrant(m, true);
    return m;
}

/* TXT_N rows of TXT_T token ids (1..999, then 0 padding) and labels. */
static void make_text_data(uint64_t seed, float *ids, int64_t *labels) {
    gf_rng r;
    gf_rng_seed(&r, seed + 1);
    for (int64_t i = 0; i < TXT_N; i++) {
        const int64_t len = TXT_T / 2 + (int64_t)gf_rng_below(&r, TXT_T / 2 + 1);
        for (int64_t t = 0; t < TXT_T; t++)
            ids[i * TXT_T + t] = t < len ? (float)(1 + gf_rng_below(&r, TXT_VOCAB - 1)) : 0.0f;
        labels[i] = ids[i * TXT_T] < TXT_VOCAB / 2;
    }
}

static bool text_step(gf_ctx *ctx, run_state *s) {
    const int64_t B = TXT_BATCH;
    if (s->pos + B > TXT_N) s->pos = 0;
    gf_tensor *x = gf_empty(ctx, GF_F32, 2, (int64_t[]){B, TXT_T});
    gf_tensor *y = gf_empty(ctx, GF_I64, 1, &B);
    if (!x || !y) return false;
    memcpy(gf_f32(x), s->ids + s->pos * TXT_T, sizeof(float) * (size_t)(B * TXT_T));
    memcpy(gf_i64(y), s->labels + s->pos, sizeof(int64_t) * (size_t)B);
    s->pos += B;
    return train_batch(ctx, s->model, s->opt, s->rep, x, y, &s->last_loss);
}

/* The warm-up steps and the timed windows of `step` on batches of s->batch, printed as one
 * JSON line of mode `mode`. false after printing the error. */
static bool time_loop(gf_ctx *ctx, const opts *o, run_state *s,
                      bool (*step)(gf_ctx *, run_state *), const char *mode, double start_to_main) {
    const double step_start = since_process_start();
    if (!step(ctx, s)) return !die(ctx, "first step");
    const double first_step = since_process_start(), first_loss = s->last_loss;
    for (int i = 1; i < o->warmup; i++)
        if (!step(ctx, s)) return !die(ctx, "warmup");
    double win[MAX_WINDOWS];
    int n_win = 0;
    const double t_timed = now_s(CLOCK_MONOTONIC), cpu0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    while (n_win < o->windows &&
           (n_win == 0 || o->time_limit <= 0 || now_s(CLOCK_MONOTONIC) - t_timed < o->time_limit)) {
        double t0 = now_s(CLOCK_MONOTONIC);
        for (int i = 0; i < o->steps; i++)
            if (!step(ctx, s)) return !die(ctx, "step");
        win[n_win++] = (double)(o->steps * s->batch) / (now_s(CLOCK_MONOTONIC) - t0);
    }
    const double cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    print_json(o, mode, s->batch, false, median(win, n_win), win, n_win, step_start,
               first_step, start_to_main, first_loss, s->last_loss,
               gf_module_param_count(s->model, true), gf_module_param_count(s->model, false),
               gf_arena_peak(gf_ctx_arena(ctx)), s->rep ? gf_replicas_count(s->rep) : 1);
    /* samples per second of process CPU time (all threads): on a loaded machine, what one
     * idle core would give at 1 thread */
    printf(",\"samples_per_cpu_s\":%.1f}\n", (double)(n_win * o->steps * s->batch) / cpu);
    return true;
}

/* Adam over s->model's parameters, replicas as --threads / --replicas say. */
static bool train_setup(gf_ctx *ctx, const opts *o, run_state *s) {
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_ADAM);
    if (!(s->opt = gf_train_optim_new(ctx, s->model, &hp, NULL, 0))) return !die(ctx, "optimizer");
    const int nrep = replica_count(o, s->model);
    if (nrep >= 2 && !(s->rep = gf_replicas_new(ctx, s->model, nrep))) return !die(ctx, "replicas");
    return true;
}

/* train_setup, then time_loop; frees the optimizer, the replicas, the model and ctx. */
static int time_training(gf_ctx *ctx, const opts *o, run_state *s,
                         bool (*step)(gf_ctx *, run_state *), double start_to_main) {
    if (!train_setup(ctx, o, s)) return 1;
    const bool ok = time_loop(ctx, o, s, step, "train", start_to_main);
    gf_replicas_free(s->rep);
    gf_optim_free(s->opt);
    gf_module_free(s->model);
    gf_ctx_free(ctx);
    return ok ? 0 : 1;
}

static int run_text(const opts *o, double start_to_main) {
    const bool lstm = strncmp(o->workload, "lstm", 4) == 0;
    const int64_t hidden = strstr(o->workload, "-256") ? 256 : 128;
    gf_ctx *ctx = bench_context(o);
    if (!ctx) return die(NULL, "context");
    run_state s = {0};
    s.batch = TXT_BATCH;
    s.ids = malloc(sizeof(float) * TXT_N * TXT_T);
    s.labels = malloc(sizeof(int64_t) * TXT_N);
    if (!s.ids || !s.labels) return die(NULL, "data");
    make_text_data(o->seed, s.ids, s.labels);
    if (!(s.model = make_text(ctx, lstm, hidden))) return die(ctx, "model");
    const int rc = time_training(ctx, o, &s, text_step, start_to_main);
    free(s.ids);
    free(s.labels);
    return rc;
}

/* ---- the transformer workload ----------------------------------------------------------- */

enum { TX_VOCAB = 1000, TX_LEN = 64, TX_CLASSES = 10 };

/* Batch b of the synthetic token data (the same formula as bench_torch.py). */
static void tx_batch(int64_t b, int64_t n, float *x, int64_t *y) {
    for (int64_t i = 0; i < n; i++) {
        const int64_t len = 16 + (37 * i + 11 * b) % 49;
        for (int64_t j = 0; j < TX_LEN; j++)
            x[i * TX_LEN + j] = j < len ? (float)(1 + (131 * i + 17 * j + 7 * b) % (TX_VOCAB - 1)) : 0.0f;
        y[i] = (i + b) % TX_CLASSES;
    }
}

static bool tx_step(gf_ctx *ctx, run_state *s) {
    const int64_t B = s->batch;
    gf_tensor *x = gf_empty(ctx, GF_F32, 2, (int64_t[]){B, TX_LEN});
    gf_tensor *y = gf_empty(ctx, GF_I64, 1, &B);
    if (!x || !y) return false;
    tx_batch(s->pos++ % 16, B, gf_f32(x), gf_i64(y));
    return train_batch(ctx, s->model, s->opt, s->rep, x, y, &s->last_loss);
}

/* Training steps of the transformer text classifier, timed as run_model times its models. */
static int run_transformer(const opts *o, double start_to_main) {
    gf_ctx *ctx = bench_context(o);
    if (!ctx) return die(NULL, "context");
    run_state s = {0};
    s.batch = o->batch > 0 ? o->batch : 32;
    gf_zoo_params zp = gf_zoo_default_params();
    zp.vocab_size = TX_VOCAB;
    zp.seq_len = TX_LEN;
    zp.num_classes = TX_CLASSES;
    if (!(s.model = gf_zoo_build(ctx, "transformer", &zp, NULL))) return die(ctx, "model");
    return time_training(ctx, o, &s, tx_step, start_to_main);
}

/* ---- log-mel features ------------------------------------------------------------------- */

enum { MEL_CLIPS = 256, MEL_SAMPLES = 16000 };

/* Clip i of the synthetic audio (the same formula as bench_torch.py): a rising tone and a
 * deterministic hash noise, one second at 16 kHz. */
static void mel_clip(int64_t i, float *x) {
    for (int64_t t = 0; t < MEL_SAMPLES; t++) {
        const double s = (double)t / 16000.0, f = 200.0 + 50.0 * (double)(i % 16);
        const uint32_t h = (uint32_t)(t * 2654435761u + (uint64_t)i * 40503u);
        x[t] = (float)(0.5 * sin(2.0 * M_PI * f * s * (1.0 + s)) +
                       0.05 * ((double)(h >> 8) / 16777216.0 - 0.5));
    }
}

/* Features of a batch of clips, one clip per thread at a time, as graft's audio loader
 * computes them. */
static bool mel_step(gf_ctx *ctx, run_state *s) {
    const int64_t B = s->batch, per = (int64_t)gf_mel_n_mels(s->mel) * gf_mel_frames(s->mel, MEL_SAMPLES);
    const int64_t first = s->pos;
    s->pos = (s->pos + B) % MEL_CLIPS;
    int failed = 0;
#pragma omp parallel for num_threads(s->threads) schedule(dynamic, 4) reduction(+ : failed)
    for (int64_t i = 0; i < B; i++) {
        const int64_t c = (first + i) % MEL_CLIPS;
        char err[128];
        failed += gf_mel_compute(s->mel, s->clips + c * MEL_SAMPLES, MEL_SAMPLES,
                                 s->feats + i * per, err, sizeof err) != GF_OK;
    }
    if (failed) gf_ctx_set_error(ctx, GF_ERR_INVALID, "logmel: %d clips failed", failed);
    s->last_loss = s->feats[per / 2];
    return failed == 0;
}

/* Log-mel features (torchaudio's MelSpectrogram defaults at 16 kHz, 40 mels, log(x + 1e-6))
 * of batches of one-second clips. */
static int run_logmel(const opts *o, double start_to_main) {
    gf_ctx *ctx = bench_context(o);
    if (!ctx) return die(NULL, "context");
    gf_mel_params mp = gf_mel_default_params();
    gf_mel *mel = gf_mel_new(ctx, &mp);
    if (!mel) return die(ctx, "log-mel extractor");
    run_state s = {0};
    s.batch = o->batch > 0 ? o->batch : 64;
    s.mel = mel;
    s.threads = o->threads;
    s.clips = malloc(sizeof(float) * MEL_CLIPS * MEL_SAMPLES);
    s.feats = malloc(sizeof(float) * (size_t)s.batch * (size_t)gf_mel_n_mels(mel) *
                     (size_t)gf_mel_frames(mel, MEL_SAMPLES));
    if (!s.clips || !s.feats) return die(NULL, "clips");
    for (int64_t i = 0; i < MEL_CLIPS; i++) mel_clip(i, s.clips + i * MEL_SAMPLES);
    const bool ok = time_loop(ctx, o, &s, mel_step, "features", start_to_main);
    free(s.clips);
    free(s.feats);
    gf_mel_free(mel);
    gf_ctx_free(ctx);
    return ok ? 0 : 1;
}

/* ---- MobileNetV2: the TensorFlow.js file of scripts/fetch-mobilenet.sh ------------------- */

enum { MB_CLASSES = 10, MB_FEAT_N = 64, MB_FEAT_DIM = 1280 };

/* mbv2-<size>-b<batch> (inference), mbv2-head (a Linear head trained on features cached from
 * the frozen trunk at 224x224), mbv2-full (every layer trained, batch 32 at 96x96). */
typedef struct mb_spec {
    int64_t size, batch;
    bool head, full;
} mb_spec;

static bool mb_parse(const char *w, mb_spec *m) {
    long long size = 0, batch = 0;
    char tail = 0;
    memset(m, 0, sizeof *m);
    if (!strcmp(w, "mbv2-head")) m->head = true, size = 224, batch = 32;
    else if (!strcmp(w, "mbv2-full")) m->full = true, size = 96, batch = 32;
    else if (sscanf(w, "mbv2-%lld-b%lld%c", &size, &batch, &tail) != 2 || size < 32 || batch < 1)
        return false;
    m->size = size;
    m->batch = batch;
    return true;
}

/* $GRAFT_DATA_DIR/mobilenet-v2, else ${XDG_CACHE_HOME:-$HOME/.cache}/graft/mobilenet-v2 */
static void mb_model_path(char *buf, size_t cap) {
    const char *d = getenv("GRAFT_DATA_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (d && *d) snprintf(buf, cap, "%s/mobilenet-v2/model.json", d);
    else if (x && *x) snprintf(buf, cap, "%s/graft/mobilenet-v2/model.json", x);
    else snprintf(buf, cap, "%s/.cache/graft/mobilenet-v2/model.json", h ? h : ".");
}

/* The trunk cut at out_relu, global average pooling and a new Linear(1280, 10): what `graft
 * finetune --from model.json` trains (torchvision's mobilenet_v2 with its dropout removed). */
static gf_module *mb_model(gf_ctx *ctx, int64_t size) {
    char path[1200];
    mb_model_path(path, sizeof path);
    gf_tfjs_classifier_params p = gf_tfjs_classifier_default_params();
    p.cut = "out_relu";
    p.input_size = (int)size;
    p.data_ndim = 3;
    p.data_shape[0] = 3, p.data_shape[1] = size, p.data_shape[2] = size;
    p.n_classes = MB_CLASSES;
    gf_tfjs_classifier_info info;
    gf_module *m = gf_tfjs_classifier(ctx, path, &p, gf_ctx_rng(ctx), &info);
    if (m) gf_tfjs_info_free(info.trunk);
    return m;
}

/* Persistent images [n, 3, size, size] uniform in [-1, 1) and labels, drawn from the seed. */
static bool mb_data(gf_ctx *ctx, int64_t n, int64_t size, gf_tensor **x, gf_tensor **y) {
    *x = gf_tensor_new(ctx, GF_F32, 4, (int64_t[]){n, 3, size, size});
    *y = gf_tensor_new(ctx, GF_I64, 1, &n);
    if (!*x || !*y) return false;
    for (int64_t i = 0; i < (*x)->numel; i++)
        gf_f32(*x)[i] = 2.0f * gf_rng_uniform(gf_ctx_rng(ctx)) - 1.0f;
    for (int64_t i = 0; i < n; i++) gf_i64(*y)[i] = (int64_t)gf_rng_below(gf_ctx_rng(ctx), MB_CLASSES);
    return true;
}

typedef struct mb_state {
    run_state s;        /* first: the step functions get &mb_state.s */
    gf_tensor *x, *y;   /* one batch, reused by every step */
} mb_state;

static bool mb_infer_step(gf_ctx *ctx, run_state *s) {
    mb_state *m = (mb_state *)s;
    bool ok = (s->rep ? gf_replicas_forward(ctx, s->rep, m->x)
                      : gf_module_forward(ctx, s->model, m->x)) != NULL;
    gf_ctx_reset(ctx);
    return ok;
}

static bool mb_train_step(gf_ctx *ctx, run_state *s) {
    mb_state *m = (mb_state *)s;
    return train_batch(ctx, s->model, s->opt, s->rep, m->x, m->y, &s->last_loss);
}

/* One head step on the next batch of the cached features (s->ids [MB_FEAT_N, 1280]). */
static bool mb_head_step(gf_ctx *ctx, run_state *s) {
    const int64_t B = s->batch;
    if (s->pos + B > MB_FEAT_N) s->pos = 0;
    gf_tensor *x = gf_empty(ctx, GF_F32, 2, (int64_t[]){B, MB_FEAT_DIM});
    gf_tensor *y = gf_empty(ctx, GF_I64, 1, &B);
    if (!x || !y) return false;
    memcpy(gf_f32(x), s->ids + s->pos * MB_FEAT_DIM, sizeof(float) * (size_t)(B * MB_FEAT_DIM));
    memcpy(gf_i64(y), s->labels + s->pos, sizeof(int64_t) * (size_t)B);
    s->pos += B;
    return train_batch(ctx, s->model, s->opt, s->rep, x, y, &s->last_loss);
}

/* The frozen trunk, pooled and flattened, over MB_FEAT_N images in batches of B (after one
 * untimed batch) into feat; prints the rate as a JSON line of mode "features". */
static bool mb_features(gf_ctx *ctx, const opts *o, gf_module *model, mb_state *m, float *feat) {
    const char *path[] = {"trunk", "pool", "flatten"};
    const int64_t B = m->x->shape[0];
    gf_module_train(model, false);
    gf_ctx_set_grad_enabled(ctx, false);
    double t0 = 0, cpu0 = 0;
    for (int64_t i = -B; i < MB_FEAT_N; i += B) {
        if (i == 0) t0 = now_s(CLOCK_MONOTONIC), cpu0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        gf_tensor *f = m->x;
        for (int k = 0; k < 3 && f; k++) f = gf_module_forward(ctx, gf_module_child(model, path[k]), f);
        if (!f) return !die(ctx, "features");
        for (int64_t e = 0; i >= 0 && e < B * MB_FEAT_DIM; e++) feat[i * MB_FEAT_DIM + e] = gf_get_f32(f, e);
        gf_ctx_reset(ctx);
    }
    const double sps = (double)MB_FEAT_N / (now_s(CLOCK_MONOTONIC) - t0);
    const double cps = (double)MB_FEAT_N / (now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0);
    gf_ctx_set_grad_enabled(ctx, true);
    printf("{\"impl\":\"graft\",\"workload\":\"%s\",\"mode\":\"features\",\"threads\":%d,"
           "\"batch\":%lld,\"images\":%d,\"samples_per_s\":%.1f,\"samples_per_cpu_s\":%.1f,"
           "\"peak_rss_mib\":%.1f,\"arena_peak_mib\":%.1f,\"blas_kernel\":\"%s\"}\n",
           o->workload, o->threads, (long long)B, MB_FEAT_N, sps, cps, peak_rss_mib(),
           (double)gf_arena_peak(gf_ctx_arena(ctx)) / 1048576.0, gf_blas_kernel());
    return true;
}

/* mbv2-head: features, then the head alone trained on them (one context: the step is far too
 * small to split between threads unless --replicas asks). */
static int mb_run_head(gf_ctx *ctx, const opts *o, gf_module *model, mb_state *m,
                       double start_to_main) {
    m->s.ids = malloc(sizeof(float) * MB_FEAT_N * MB_FEAT_DIM);
    m->s.labels = malloc(sizeof(int64_t) * MB_FEAT_N);
    if (!m->s.ids || !m->s.labels) return die(NULL, "features");
    for (int64_t i = 0; i < MB_FEAT_N; i++) m->s.labels[i] = i % MB_CLASSES;
    if (!mb_features(ctx, o, model, m, m->s.ids)) return 1;
    opts oh = *o;
    if (oh.replicas < 0) oh.replicas = 1;
    m->s.model = gf_module_child(model, "head");
    const bool ok = train_setup(ctx, &oh, &m->s) &&
                    time_loop(ctx, &oh, &m->s, mb_head_step, "train", start_to_main);
    gf_replicas_free(m->s.rep);
    gf_optim_free(m->s.opt);
    gf_module_free(model);
    gf_ctx_free(ctx);
    free(m->s.ids);
    free(m->s.labels);
    return ok ? 0 : 1;
}

static int run_mbv2(const opts *o, double start_to_main) {
    mb_spec sp;
    if (!mb_parse(o->workload, &sp)) {
        fprintf(stderr, "bench_graft: unknown workload '%s'\n", o->workload);
        return 2;
    }
    gf_ctx *ctx = bench_context(o);
    if (!ctx) return die(NULL, "context");
    gf_ctx_set_inplace(ctx, o->inplace);
    mb_state m = {0};
    m.s.batch = o->batch > 0 ? o->batch : sp.batch;
    gf_module *model = mb_model(ctx, sp.size);
    if (!model || !mb_data(ctx, m.s.batch, sp.size, &m.x, &m.y)) return die(ctx, "model");
    if (sp.head) return mb_run_head(ctx, o, model, &m, start_to_main);
    m.s.model = model;
    if (sp.full) {
        gf_module_train(model, true);
        return time_training(ctx, o, &m.s, mb_train_step, start_to_main);
    }
    gf_module_train(model, false);
    gf_ctx_set_grad_enabled(ctx, false);
    /* a batch split between threads, as gf_evaluate does */
    const int nrep = m.s.batch >= 2 ? replica_count(o, model) : 1;
    if (nrep >= 2 && !(m.s.rep = gf_replicas_new(ctx, model, nrep))) return die(ctx, "replicas");
    const bool ok = time_loop(ctx, o, &m.s, mb_infer_step, "infer", start_to_main);
    gf_replicas_free(m.s.rep);
    gf_module_free(model);
    gf_ctx_free(ctx);
    return ok ? 0 : 1;
}

/* GFLOP/s of C[m, n] = A[m, k] B[k, n] through gf_matmul (no graph): the median over
 * `windows` windows of at least 0.2 s each. */
static double sgemm_gflops(gf_ctx *ctx, const opts *o, int64_t m, int64_t k, int64_t n) {
    int64_t as[2] = {m, k}, bs[2] = {k, n};
    gf_tensor *a = gf_tensor_new(ctx, GF_F32, 2, as), *b = gf_tensor_new(ctx, GF_F32, 2, bs);
    if (!a || !b) return -1.0;
    for (int64_t i = 0; i < a->numel; i++) gf_f32(a)[i] = gf_rng_uniform(gf_ctx_rng(ctx)) - 0.5f;
    for (int64_t i = 0; i < b->numel; i++) gf_f32(b)[i] = gf_rng_uniform(gf_ctx_rng(ctx)) - 0.5f;
    const double flop = 2.0 * (double)m * (double)n * (double)k;
    for (int i = 0; i < 3; i++) { /* warm up the BLAS threads and caches */
        gf_matmul(ctx, a, b);
        gf_ctx_reset(ctx);
    }
    double win[MAX_WINDOWS];
    for (int w = 0; w < o->windows; w++) {
        double t0 = now_s(CLOCK_MONOTONIC), t = 0;
        int64_t reps = 0;
        do {
            if (!gf_matmul(ctx, a, b)) return -1.0;
            gf_ctx_reset(ctx);
            reps++;
            t = now_s(CLOCK_MONOTONIC) - t0;
        } while (t < 0.2);
        win[w] = flop * (double)reps / t * 1e-9;
    }
    gf_tensor_free(a);
    gf_tensor_free(b);
    return median(win, o->windows);
}

static int run_sgemm(const opts *o) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = o->threads;
    gf_ctx *ctx = gf_ctx_new(&cp);
    if (!ctx) return die(NULL, "context");
    gf_ctx_set_grad_enabled(ctx, false);
    static const int64_t shapes[][3] = {{256, 256, 256}, {512, 512, 512}, {1024, 1024, 1024},
                                        {128, 784, 256}};
    static const char *const names[] = {"n256", "n512", "n1024", "mlp_fc1_128x784x256"};
    printf("{\"impl\":\"graft\",\"workload\":\"sgemm\",\"threads\":%d,\"blas\":\"%s\","
           "\"gflops\":{",
           o->threads, gf_blas_threading());
    for (int i = 0; i < 4; i++) {
        double g = sgemm_gflops(ctx, o, shapes[i][0], shapes[i][1], shapes[i][2]);
        if (g < 0) return die(ctx, "sgemm");
        printf("%s\"%s\":%.1f", i ? "," : "", names[i], g);
    }
    printf("},\"peak_rss_mib\":%.1f}\n", peak_rss_mib());
    gf_ctx_free(ctx);
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_graft --workload mlp|cnn|finetune-frozen|finetune-full|sgemm|\n"
            "                              lstm|gru|lstm-256|gru-256|transformer|\n"
            "                              mbv2-<size>-b<batch>|mbv2-head|mbv2-full\n"
            "                   [--mode train|infer] [--threads N] [--steps K] [--windows W]\n"
            "                   [--warmup S] [--batch B] [--data fashion-mnist|synthetic]\n"
            "                   [--seed S] [--time-limit SECONDS] [--inplace on|off]\n"
            "                   [--replicas R]\n");
}

int main(int argc, char **argv) {
    const double start_to_main = since_process_start();
    opts o = {"mlp", "train", "fashion-mnist", 1, 20, 5, 5, -1, 0, 0, 0.0, true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (!strcmp(a, "--workload")) o.workload = v;
        else if (!strcmp(a, "--mode")) o.mode = v;
        else if (!strcmp(a, "--data")) o.data = v;
        else if (!strcmp(a, "--threads")) o.threads = atoi(v);
        else if (!strcmp(a, "--steps")) o.steps = atoi(v);
        else if (!strcmp(a, "--windows")) o.windows = atoi(v);
        else if (!strcmp(a, "--warmup")) o.warmup = atoi(v);
        else if (!strcmp(a, "--batch")) o.batch = atoll(v);
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--time-limit")) o.time_limit = atof(v);
        else if (!strcmp(a, "--inplace")) o.inplace = strcmp(v, "off") != 0;
        else if (!strcmp(a, "--replicas")) o.replicas = atoi(v);
        else {
            fprintf(stderr, "bench_graft: unknown option '%s'\n", a);
            usage();
            return 2;
        }
    }
    if (o.threads < 1 || o.steps < 1 || o.windows < 1 || o.windows > MAX_WINDOWS ||
        o.warmup < 1 || o.batch < 0) {
        fprintf(stderr, "bench_graft: threads, steps, warmup >= 1; windows in 1..%d; batch >= 0\n",
                MAX_WINDOWS);
        return 2;
    }
    if (!strcmp(o.workload, "sgemm")) return run_sgemm(&o);
    if (!strcmp(o.workload, "lstm") || !strcmp(o.workload, "gru") ||
        !strcmp(o.workload, "lstm-256") || !strcmp(o.workload, "gru-256"))
        return run_text(&o, start_to_main);
    if (!strcmp(o.workload, "transformer")) return run_transformer(&o, start_to_main);
    if (!strncmp(o.workload, "mbv2-", 5)) return run_mbv2(&o, start_to_main);
    if (!strcmp(o.workload, "logmel")) return run_logmel(&o, start_to_main);
    return run_model(&o, start_to_main);
}
