/* graft train: trains an MLP classifier on an image dataset (Fashion-MNIST by default) with
 * the public API only — a training loop a user can copy: batch, forward, loss, backward,
 * optimizer step, arena reset; evaluation without the graph. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include "graft/graft.h"
#include "graft/data.h"
#include "graft/optim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_LAYERS = 16, EVAL_BATCH = 1000 };

typedef struct train_opts {
    const char *model;
    const char *data;
    int epochs;
    int64_t batch;
    double lr;              /* < 0: the optimizer's default */
    double weight_decay;    /* < 0: the optimizer's default */
    double momentum;
    gf_optim_kind optim;
    int n_hidden;
    int64_t hidden[MAX_LAYERS];
    int threads;            /* 0: every available core */
    uint64_t seed;
    int64_t limit;          /* 0: every example */
} train_opts;

void cmd_train_usage(FILE *f) {
    fprintf(f,
            "usage: graft train [options]\n"
            "\n"
            "Trains a classifier and prints one line per epoch to stderr (loss, train and\n"
            "test accuracy, time, samples/s) and the final test accuracy to stdout.\n"
            "\n"
            "options:\n"
            "  --model NAME        model: mlp (default mlp)\n"
            "  --data NAME         fashion-mnist, mnist, or a folder with the four IDX files\n"
            "                      (default fashion-mnist; GRAFT_DATA_DIR overrides\n"
            "                      /usr/share/datasets)\n"
            "  --epochs N          passes over the training set (default 3)\n"
            "  --batch N           examples per step (default 128)\n"
            "  --lr X              learning rate (default 1e-3; sgd 1e-2)\n"
            "  --optim NAME        adam, adamw or sgd (default adam)\n"
            "  --weight-decay X    weight decay (default 0; adamw 1e-2)\n"
            "  --momentum X        sgd momentum (default 0)\n"
            "  --hidden LIST       hidden layer widths, comma separated (default 256,128)\n"
            "  --threads N         threads for kernels and BLAS (default: all cores)\n"
            "  --seed S            seed of initialisation and shuffling (default 0)\n"
            "  --limit N           use only the first N training and test examples\n"
            "  -h, --help          this text\n");
}

static int usage_error(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "graft train: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n\n");
    cmd_train_usage(stderr);
    return CLI_USAGE;
}

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool parse_f64(const char *s, double lo, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo) return false;
    *out = v;
    return true;
}

static bool parse_hidden(const char *s, train_opts *o) {
    o->n_hidden = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || end == p || v < 1 || v > (1 << 20) || o->n_hidden == MAX_LAYERS - 1)
            return false;
        o->hidden[o->n_hidden++] = v;
        if (*end == ',') p = end + 1;
        else if (*end == '\0') p = end;
        else return false;
        if (*end == ',' && *p == '\0') return false;
    }
    return o->n_hidden > 0;
}

/* Fills *o from argv; returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, train_opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            cmd_train_usage(stdout);
            return CLI_OK;
        }
        if (strncmp(arg, "--", 2) != 0) return usage_error("unexpected argument '%s'%s", arg, "");
        /* --name value or --name=value */
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof name) return usage_error("unknown option '%s'%s", arg, "");
        memcpy(name, arg, len);
        name[len] = '\0';
        static const char *const known[] = {"--model", "--data", "--epochs", "--batch", "--lr",
                                            "--optim", "--weight-decay", "--momentum",
                                            "--hidden", "--threads", "--seed", "--limit"};
        bool ok = false;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            if (strcmp(name, known[k]) == 0) ok = true;
        if (!ok) return usage_error("unknown option '%s'%s", name, "");
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else return usage_error("option %s needs a value%s", name, "");

        int64_t iv;
        double dv;
        if (strcmp(name, "--model") == 0) {
            if (strcmp(val, "mlp") != 0)
                return usage_error("unknown model '%s' (available: %s)", val, "mlp");
            o->model = val;
        } else if (strcmp(name, "--data") == 0) {
            o->data = val;
        } else if (strcmp(name, "--epochs") == 0) {
            if (!parse_i64(val, 1, 100000, &iv))
                return usage_error("--epochs: '%s' is not a whole number >= 1%s", val, "");
            o->epochs = (int)iv;
        } else if (strcmp(name, "--batch") == 0) {
            if (!parse_i64(val, 1, 1 << 20, &iv))
                return usage_error("--batch: '%s' is not a whole number >= 1%s", val, "");
            o->batch = iv;
        } else if (strcmp(name, "--lr") == 0) {
            if (!parse_f64(val, 0.0, &dv) || dv <= 0.0)
                return usage_error("--lr: '%s' is not a number > 0%s", val, "");
            o->lr = dv;
        } else if (strcmp(name, "--weight-decay") == 0) {
            if (!parse_f64(val, 0.0, &dv))
                return usage_error("--weight-decay: '%s' is not a number >= 0%s", val, "");
            o->weight_decay = dv;
        } else if (strcmp(name, "--momentum") == 0) {
            if (!parse_f64(val, 0.0, &dv))
                return usage_error("--momentum: '%s' is not a number >= 0%s", val, "");
            o->momentum = dv;
        } else if (strcmp(name, "--optim") == 0) {
            if (strcmp(val, "adam") == 0) o->optim = GF_OPTIM_ADAM;
            else if (strcmp(val, "adamw") == 0) o->optim = GF_OPTIM_ADAMW;
            else if (strcmp(val, "sgd") == 0) o->optim = GF_OPTIM_SGD;
            else
                return usage_error("unknown optimizer '%s' (available: %s)", val,
                                   "adam, adamw, sgd");
        } else if (strcmp(name, "--hidden") == 0) {
            if (!parse_hidden(val, o))
                return usage_error("--hidden: '%s' is not a comma-separated list of widths >= 1"
                                   "%s", val, "");
        } else if (strcmp(name, "--threads") == 0) {
            if (!parse_i64(val, 1, 4096, &iv))
                return usage_error("--threads: '%s' is not a whole number >= 1%s", val, "");
            o->threads = (int)iv;
        } else if (strcmp(name, "--seed") == 0) {
            if (!parse_i64(val, 0, INT64_MAX, &iv))
                return usage_error("--seed: '%s' is not a whole number >= 0%s", val, "");
            o->seed = (uint64_t)iv;
        } else if (strcmp(name, "--limit") == 0) {
            if (!parse_i64(val, 1, INT64_MAX, &iv))
                return usage_error("--limit: '%s' is not a whole number >= 1%s", val, "");
            o->limit = iv;
        }
    }
    if (o->momentum != 0.0 && o->optim != GF_OPTIM_SGD)
        return usage_error("--momentum applies to --optim sgd only%s%s", "", "");
    return -1;
}

/* ---- the model: Linear -> ReLU -> ... -> Linear ---------------------------------------- */

typedef struct mlp {
    int n;                       /* linear layers */
    gf_tensor *w[MAX_LAYERS];    /* [out, in] */
    gf_tensor *b[MAX_LAYERS];    /* [out] */
} mlp;

static void mlp_free(mlp *m) {
    for (int l = 0; l < m->n; l++) {
        gf_tensor_free(m->w[l]);
        gf_tensor_free(m->b[l]);
    }
    m->n = 0;
}

/* PyTorch's nn.Linear init: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform
 * with a = sqrt(5) for the weight), weight drawn first. */
static bool mlp_init(gf_ctx *ctx, mlp *m, int n_sizes, const int64_t *sizes) {
    memset(m, 0, sizeof *m);
    gf_rng *rng = gf_ctx_rng(ctx);
    for (int l = 0; l + 1 < n_sizes; l++) {
        int64_t ws[2] = {sizes[l + 1], sizes[l]};
        m->w[l] = gf_tensor_new(ctx, GF_F32, 2, ws);
        m->b[l] = gf_tensor_new(ctx, GF_F32, 1, ws);
        m->n = l + 1;
        if (!m->w[l] || !m->b[l]) return false;
        float bound = 1.0f / sqrtf((float)sizes[l]);
        gf_tensor *t[2] = {m->w[l], m->b[l]};
        for (int k = 0; k < 2; k++) {
            for (int64_t i = 0; i < t[k]->numel; i++)
                gf_f32(t[k])[i] = -bound + 2.0f * bound * gf_rng_uniform(rng);
            gf_tensor_set_requires_grad(t[k], true);
        }
    }
    return true;
}

/* x [B, in] -> logits [B, classes] (arena). */
static gf_tensor *mlp_forward(gf_ctx *ctx, const mlp *m, gf_tensor *x) {
    gf_tensor *h = x;
    for (int l = 0; l < m->n; l++) {
        h = gf_linear(ctx, h, m->w[l], m->b[l]);
        if (l + 1 < m->n) h = gf_relu(ctx, h);
    }
    return h;
}

/* Examples whose largest logit is at their label. logits [B, C] float32. */
static int64_t count_correct(const gf_tensor *logits, const gf_tensor *y, float *scratch) {
    int64_t b = logits->shape[0], c = logits->shape[1], hits = 0;
    gf_copy_out(logits, scratch);
    for (int64_t i = 0; i < b; i++) {
        const float *row = scratch + i * c;
        int64_t best = 0;
        for (int64_t k = 1; k < c; k++)
            if (row[k] > row[best]) best = k;
        hits += best == gf_i64(y)[i];
    }
    return hits;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Accuracy on the first n examples of d, in batches, without recording a graph. */
static double evaluate(gf_ctx *ctx, const mlp *m, const gf_dataset *d, int64_t n,
                       int64_t *idx, float *scratch) {
    bool prev = gf_ctx_set_grad_enabled(ctx, false);
    int64_t hits = 0, pix = d->rows * d->cols;
    for (int64_t s = 0; s < n && gf_ctx_status(ctx) == GF_OK; s += EVAL_BATCH) {
        int64_t bs = n - s < EVAL_BATCH ? n - s : EVAL_BATCH;
        for (int64_t i = 0; i < bs; i++) idx[i] = s + i;
        int64_t xs[2] = {bs, pix};
        gf_tensor *x = gf_empty(ctx, GF_F32, 2, xs), *y = gf_empty(ctx, GF_I64, 1, xs);
        if (!x || !y || gf_dataset_batch(ctx, d, idx, bs, 0.0f, 1.0f, x, y) != GF_OK) break;
        gf_tensor *logits = mlp_forward(ctx, m, x);
        if (logits) hits += count_correct(logits, y, scratch);
        gf_ctx_reset(ctx);
    }
    gf_ctx_set_grad_enabled(ctx, prev);
    return (double)hits / (double)n;
}

static int fail(gf_ctx *ctx) {
    fprintf(stderr, "graft train: error: %s\n", gf_ctx_error(ctx));
    return CLI_FAILED;
}

int cmd_train(int argc, char **argv) {
    train_opts o = {.model = "mlp", .data = "fashion-mnist", .epochs = 3, .batch = 128,
                    .lr = -1, .weight_decay = -1, .optim = GF_OPTIM_ADAM, .n_hidden = 2,
                    .hidden = {256, 128}};
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;

    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = o.threads;
    cp.seed = o.seed;
    gf_ctx *ctx = gf_ctx_new(&cp);
    if (!ctx) {
        fprintf(stderr, "graft train: error: out of memory creating a context\n");
        return CLI_FAILED;
    }
    gf_dataset *train = NULL, *test = NULL;
    gf_optim *opt = NULL;
    mlp m = {0};
    int64_t *perm = NULL, *idx = NULL;
    float *scratch = NULL;
    rc = CLI_FAILED;

    char ip[4352], lp[4352];
    if (gf_dataset_paths(ctx, o.data, GF_DATASET_TRAIN, ip, lp, sizeof ip) == GF_ERR_INVALID) {
        rc = usage_error("--data: %s%s", gf_ctx_error(ctx), "");
        gf_ctx_free(ctx);
        return rc;
    }
    train = gf_dataset_load(ctx, o.data, GF_DATASET_TRAIN);
    if (train) test = gf_dataset_load(ctx, o.data, GF_DATASET_TEST);
    if (!train || !test) goto done;
    int64_t n_train = o.limit && o.limit < train->n ? o.limit : train->n;
    int64_t n_test = o.limit && o.limit < test->n ? o.limit : test->n;
    int64_t pix = train->rows * train->cols;
    int n_classes = train->n_classes > test->n_classes ? train->n_classes : test->n_classes;
    if (test->rows * test->cols != pix) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "train images are %lldx%lld but test images %lldx%lld",
                         (long long)train->rows, (long long)train->cols, (long long)test->rows,
                         (long long)test->cols);
        goto done;
    }

    int64_t sizes[MAX_LAYERS + 1];
    int n_sizes = 0;
    sizes[n_sizes++] = pix;
    for (int i = 0; i < o.n_hidden; i++) sizes[n_sizes++] = o.hidden[i];
    sizes[n_sizes++] = n_classes;
    if (!mlp_init(ctx, &m, n_sizes, sizes)) goto done;

    gf_optim_params hp = gf_optim_default_params(o.optim);
    if (o.lr > 0) hp.lr = o.lr;
    if (o.weight_decay >= 0) hp.weight_decay = o.weight_decay;
    hp.momentum = o.momentum;
    gf_tensor *params[2 * MAX_LAYERS];
    int np = 0;
    int64_t n_params = 0;
    for (int l = 0; l < m.n; l++) {
        params[np++] = m.w[l];
        params[np++] = m.b[l];
        n_params += m.w[l]->numel + m.b[l]->numel;
    }
    opt = gf_optim_new(ctx, &hp, params, np);
    if (!opt) goto done;

    int64_t biggest = o.batch > EVAL_BATCH ? o.batch : EVAL_BATCH;
    perm = malloc(sizeof *perm * (size_t)n_train);
    idx = malloc(sizeof *idx * (size_t)EVAL_BATCH);
    scratch = malloc(sizeof *scratch * (size_t)(biggest * n_classes));
    if (!perm || !idx || !scratch) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory for the index lists");
        goto done;
    }
    for (int64_t i = 0; i < n_train; i++) perm[i] = i;
    gf_rng shuffle;
    gf_rng_seed(&shuffle, gf_rng_u64(gf_ctx_rng(ctx)));

    char arch[256];
    size_t k = 0;
    for (int i = 0; i < n_sizes && k < sizeof arch; i++)
        k += (size_t)snprintf(arch + k, sizeof arch - k, i ? "-%lld" : "%lld",
                              (long long)sizes[i]);
    fprintf(stderr,
            "graft train: mlp %s (%lld parameters), %s lr %g, batch %lld, %lld train / %lld "
            "test examples of %s, %d threads, seed %llu\n",
            arch, (long long)n_params, gf_optim_kind_name(o.optim), hp.lr, (long long)o.batch,
            (long long)n_train, (long long)n_test, o.data, gf_ctx_threads(ctx),
            (unsigned long long)o.seed);

    double test_acc = 0;
    for (int epoch = 1; epoch <= o.epochs; epoch++) {
        gf_rng_shuffle(&shuffle, perm, n_train);
        double t0 = now_s(), loss_sum = 0;
        int64_t hits = 0;
        for (int64_t s = 0; s < n_train; s += o.batch) {
            int64_t bs = n_train - s < o.batch ? n_train - s : o.batch;
            int64_t xs[2] = {bs, pix};
            gf_tensor *x = gf_empty(ctx, GF_F32, 2, xs), *y = gf_empty(ctx, GF_I64, 1, xs);
            if (!x || !y || gf_dataset_batch(ctx, train, perm + s, bs, 0.0f, 1.0f, x, y) != GF_OK)
                goto done;
            gf_tensor *logits = mlp_forward(ctx, &m, x);
            gf_tensor *loss = gf_cross_entropy(ctx, logits, y, GF_REDUCE_MEAN, -100);
            if (!loss) goto done;
            loss_sum += (double)gf_f32(loss)[0] * (double)bs;
            hits += count_correct(logits, y, scratch);
            gf_optim_zero_grad(opt);
            if (gf_backward(ctx, loss) != GF_OK || gf_optim_step(ctx, opt) != GF_OK) goto done;
            gf_ctx_reset(ctx);
        }
        double secs = now_s() - t0;
        test_acc = evaluate(ctx, &m, test, n_test, idx, scratch);
        if (gf_ctx_status(ctx) != GF_OK) goto done;
        fprintf(stderr,
                "epoch %d/%d  loss %.4f  train_acc %.4f  test_acc %.4f  %.2fs  %.0f samples/s\n",
                epoch, o.epochs, loss_sum / (double)n_train, (double)hits / (double)n_train,
                test_acc, secs, (double)n_train / secs);
    }
    printf("test_accuracy %.4f\n", test_acc);
    rc = CLI_OK;
done:
    if (rc != CLI_OK) fail(ctx);
    free(perm);
    free(idx);
    free(scratch);
    gf_optim_free(opt);
    mlp_free(&m);
    gf_dataset_free(train);
    gf_dataset_free(test);
    gf_ctx_free(ctx);
    return rc;
}
