/* graft under an MPI launcher (`mpirun -np N graft train ...`, docs/DISTRIBUTED.md): joining
 * the job, the ranks' roles (rank 0 alone prints, writes checkpoints, weights and reports), the
 * start-up checks and rank 0's weights before training, the agreed stop on Ctrl-C, and the
 * weight comparison after it. Built without MPI, graft refuses to run as several processes
 * rather than train N separate models. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef GRAFT_HAVE_MPI
#include <mpi.h> /* MPI_Get_library_version only: the rest goes through graft/dist.h */
#endif

#ifdef GRAFT_HAVE_MPI
static gf_dist *job; /* NULL: one process */
#endif

/* This process's rank as the launcher announces it (before or without MPI), 0 when none. */
static int env_rank(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return atoi(getenv(vars[i]));
    return 0;
}

/* Ranks on this machine, which share its cores. */
static int local_ranks(int size) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                                       "PMI_LOCAL_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]) && atoi(getenv(vars[i])) > 0) return atoi(getenv(vars[i]));
    return size;
}

const char *cli_dist_library(void) {
#ifdef GRAFT_HAVE_MPI
    static char buf[MPI_MAX_LIBRARY_VERSION_STRING + 64];
    char lib[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(lib, &len); /* one of the calls allowed before MPI_Init */
    lib[strcspn(lib, ",\n")] = '\0';
    snprintf(buf, sizeof buf, "MPI (%s): mpirun -np N graft train ... trains across processes",
             lib);
    return buf;
#else
    return "one (built without MPI: no training across processes)";
#endif
}

int cli_dist_size(void) {
#ifdef GRAFT_HAVE_MPI
    return job ? gf_dist_size(job) : 1;
#else
    return 1;
#endif
}

bool cli_dist_root(void) {
#ifdef GRAFT_HAVE_MPI
    return !job || gf_dist_rank(job) == 0;
#else
    return true;
#endif
}

/* Ranks other than 0 train only: their output would repeat rank 0's, their files collide. */
static void quiet_rank(cli_opts *o) {
    o->quiet = true;
    o->out = o->report = o->lora_out = o->work_dir = NULL;
    if (!freopen("/dev/null", "w", stdout)) fclose(stdout);
}

int cli_dist_begin(const cli_command *c, cli_opts *o) {
    const int n = gf_dist_launched() ? gf_dist_launched_size() : 1;
    const bool trains = strcmp(c->name, "train") == 0 || strcmp(c->name, "finetune") == 0 ||
                        strcmp(c->name, "distill") == 0 || strcmp(c->name, "multitask") == 0 ||
                        strcmp(c->name, "compare") == 0;
    if (n > 1 && !trains) {
        if (env_rank() == 0)
            cli_usage_error(c->name, "runs in one process, and the MPI launcher started %d: only "
                                     "train, finetune, distill, multitask and compare train across "
                                     "processes "
                                     "(docs/DISTRIBUTED.md)", n);
        return CLI_USAGE;
    }
#ifdef GRAFT_HAVE_MPI
    if (!trains || !gf_dist_launched()) return CLI_CONTINUE;
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_dist_params p = gf_dist_default_params();
    if (o->dist_timeout > 0) p.timeout = o->dist_timeout;
    if (o->dist_bucket_mb > 0) p.bucket_bytes = (int64_t)(o->dist_bucket_mb * 1048576.0);
    if (o->dist_overlap >= 0) p.overlap = o->dist_overlap != 0;
    job = ctx ? gf_dist_init(ctx, &p) : NULL;
    if (!job) {
        int rc = cli_fail(c->name, "cannot join the MPI job: %s",
                          ctx ? gf_ctx_error(ctx) : "out of memory");
        gf_ctx_free(ctx);
        return rc;
    }
    gf_ctx_free(ctx);
    if (gf_dist_size(job) > 1) {
        /* each rank its part of the cores, unless --threads says otherwise */
        if (o->threads == 0) {
            int t = gf_available_cores() / local_ranks(gf_dist_size(job));
            o->threads = t > 1 ? t : 1;
        }
        if (gf_dist_rank(job) != 0) quiet_rank(o);
    }
    return CLI_CONTINUE;
#else
    (void)o;
    if (n > 1) {
        if (env_rank() == 0)
            cli_usage_error(c->name, "this graft was built without MPI, and the launcher started "
                                     "%d processes: each would train a model of its own. Build "
                                     "graft with libopenmpi-dev installed (docs/DISTRIBUTED.md), "
                                     "or run one process without mpirun", n);
        return CLI_USAGE;
    }
    return CLI_CONTINUE;
#endif
}

int cli_dist_end(int rc) {
#ifdef GRAFT_HAVE_MPI
    fflush(stdout);
    gf_dist_finalize(job);
    job = NULL;
#endif
    return rc;
}

bool cli_stop_requested(void) {
#ifdef GRAFT_HAVE_MPI
    if (job && gf_dist_size(job) > 1) return gf_dist_stop_agreed(job);
#endif
    return cli_interrupted != 0;
}

#ifdef GRAFT_HAVE_MPI
/* Ctrl-C on mpirun reaches the ranks as SIGTERM (and SIGKILL a moment later: Open MPI's
 * odls_base_sigkill_timeout, 1 s by default); SIGUSR1 sent to mpirun is forwarded as it is.
 * Each sets the flag the next gradient exchange carries; a second signal leaves at once.
 * (SIGINT sent to a rank itself goes to cli_install_sigint's handler: the same flag.) */
static void on_signal(int sig) {
    (void)sig;
    if (cli_interrupted) _exit(130);
    cli_interrupted = 1;
    if (gf_dist_rank(job) == 0) {
        static const char msg[] = "\ngraft: stopping every rank after this step\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
    }
}

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    gf_dist_watch_stop(job, &cli_interrupted);
}

/* An item "name: text" of the start-up checks, text printf-formatted. */
static void add_item(gf_dist_item *items, int *n, int cap, const char *name, const char *fmt, ...) {
    if (*n >= cap) return;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    items[(*n)++] = gf_dist_item_text(name, text);
}

static const char *str(const char *s) { return s ? s : "(none)"; }

/* What must be the same on every rank: the options that change what is trained, the data and
 * the model. (Threads, output files and --quiet may differ.) */
static int run_items(gf_ctx *ctx, const cli_opts *o, const gf_module *m, const cli_data *d,
                     gf_dist_item *it, int cap) {
    int n = 0;
    add_item(it, &n, cap, "command", "%s", o->cmd);
    add_item(it, &n, cap, "--data", "%s", str(o->data));
    add_item(it, &n, cap, "--model", "%s", str(o->model));
    add_item(it, &n, cap, "--batch", "%lld", (long long)o->batch);
    add_item(it, &n, cap, "--epochs", "%d", o->epochs);
    add_item(it, &n, cap, "--seed", "%llu", (unsigned long long)o->seed);
    add_item(it, &n, cap, "optimizer", "%s lr %g weight decay %g momentum %g",
             gf_optim_kind_name(o->optim), o->lr, o->weight_decay, o->momentum);
    add_item(it, &n, cap, "schedule", "%s warmup %d clip-norm %g label-smoothing %g", o->sched,
             o->warmup, o->clip_norm, o->label_smoothing);
    add_item(it, &n, cap, "stopping", "patience %d keep-best %d checkpoint-every %lld",
             o->patience, (int)o->keep_best, (long long)o->checkpoint_every);
    add_item(it, &n, cap, "--resume", "%s", str(o->resume));
    add_item(it, &n, cap, "--sync-bn", "%s", o->sync_bn ? "on" : "off");
    add_item(it, &n, cap, "data options", "per-class %lld limit %lld val %g split %g,%g,%g "
             "classes %s augment %s normalize %s image-size %d grayscale %d",
             (long long)o->per_class, (long long)o->limit, o->val, o->split[0], o->split[1],
             o->split[2], str(o->classes), str(o->augment), str(o->normalize), o->image_size,
             (int)o->grayscale);
    add_item(it, &n, cap, "fine-tuning", "from %s head %s train-last %d bn %s trunk %g lora %d "
             "%g %g %s", str(o->from), str(o->head), o->train_last, str(o->bn_policy),
             o->lr_trunk_factor, o->lora_rank, o->lora_alpha, o->lora_dropout,
             str(o->lora_targets));
    if (d && n < cap) it[n++] = gf_dist_item_dataset(ctx, "training data", d->train);
    if (d && n < cap) it[n++] = gf_dist_item_dataset(ctx, "validation data", d->val);
    if (strcmp(o->cmd, "compare") == 0)
        add_item(it, &n, cap, "comparison", "strategies %s labels %s seeds %s pretrained %s "
                 "teacher %s", str(o->strategies), str(o->labels), str(o->seeds), str(o->from),
                 str(o->teacher));
    if (m && n < cap) it[n++] = gf_dist_item_module(ctx, "model", m);
    return n;
}

/* A failure this rank cannot leave the others waiting on: printed, then the job stops. */
static int abort_job(const char *cmd, const char *what, gf_ctx *ctx) {
    cli_fail(cmd, "rank %d of %d: %s: %s", gf_dist_rank(job), gf_dist_size(job), what,
             gf_ctx_error(ctx));
    fflush(stderr);
    gf_dist_abort(job, CLI_FAILED);
    return CLI_FAILED;
}
#endif

#ifdef GRAFT_HAVE_MPI
/* --sync-bn: every rank must hold at least one example of every batch, since each takes part
 * in every BatchNorm's sums; a last batch smaller than the job is dropped (and said). */
static int sync_batch_norm(gf_ctx *ctx, const cli_opts *o, const cli_data *d,
                           gf_loader_params *lp) {
    const int64_t size = gf_dist_size(job), n = d->train ? gf_ds_count(d->train) : 0;
    if (o->batch < size)
        return cli_dist_root() ? cli_fail(o->cmd, "--sync-bn: a batch of %lld cannot give each "
                                          "of %lld ranks an example; use --batch %lld or more",
                                          (long long)o->batch, (long long)size, (long long)size)
                               : CLI_FAILED;
    const int64_t last = n % o->batch;
    if (last > 0 && last < size && !lp->drop_last) {
        lp->drop_last = true;
        cli_log(o, "graft %s: --sync-bn: the last batch of each epoch (%lld examples, fewer than "
                   "the %lld ranks) is dropped\n", o->cmd, (long long)last, (long long)size);
    }
    gf_dist_sync_batch_norm(job, ctx, true);
    return CLI_CONTINUE;
}
#endif

int cli_dist_prepare(gf_ctx *ctx, const cli_opts *o, gf_module *m, const cli_data *d,
                     gf_loader_params *lp, gf_fit_params *fp) {
#ifdef GRAFT_HAVE_MPI
    if (!job || gf_dist_size(job) < 2) return CLI_CONTINUE;
    install_signals();
    gf_dist_item items[24];
    const int n = run_items(ctx, o, m, d, items, 24);
    gf_status st = gf_ctx_status(ctx) == GF_OK ? gf_dist_check_same(ctx, job, items, n)
                                               : gf_ctx_status(ctx);
    if (st == GF_ERR_INVALID) /* the same verdict on every rank: rank 0 says it */
        return cli_dist_root() ? cli_fail(o->cmd, "%s", gf_ctx_error(ctx)) : CLI_FAILED;
    if (st != GF_OK) return abort_job(o->cmd, "start-up checks", ctx);
    if (m && gf_dist_broadcast_module(ctx, job, m) != GF_OK)
        return abort_job(o->cmd, "rank 0's weights", ctx);
    gf_dist_shard_loader(job, lp);
    gf_dist_fit_params(job, fp);
    if (o->sync_bn && !d)
        return cli_dist_root() ? cli_usage_error(o->cmd, "--sync-bn applies to train, finetune "
                                                 "and distill") : CLI_USAGE;
    if (o->sync_bn && sync_batch_norm(ctx, o, d, lp) != CLI_CONTINUE) return CLI_FAILED;
    cli_log(o, "graft %s: %d ranks, each with %d thread%s, a share of every batch of %lld; "
               "the job stops if a rank is silent for %g s (--dist-timeout)\n",
            o->cmd, gf_dist_size(job), o->threads, o->threads == 1 ? "" : "s",
            (long long)o->batch, o->dist_timeout > 0 ? o->dist_timeout : 60.0);
    return CLI_CONTINUE;
#else
    (void)ctx, (void)o, (void)m, (void)d, (void)lp, (void)fp;
    return CLI_CONTINUE;
#endif
}

int cli_dist_fit_failed(gf_ctx *ctx, const char *cmd) {
#ifdef GRAFT_HAVE_MPI
    if (job && gf_dist_size(job) > 1) return abort_job(cmd, "training failed", ctx);
#endif
    return cli_fail(cmd, "training failed: %s", gf_ctx_error(ctx));
}

int cli_dist_after(gf_ctx *ctx, const cli_opts *o, const gf_module *m, double seconds) {
#ifdef GRAFT_HAVE_MPI
    if (!job || gf_dist_size(job) < 2) return CLI_CONTINUE;
    uint64_t h = 0;
    gf_status st = gf_dist_same_weights(ctx, job, m, &h);
    if (st == GF_ERR_STATE && strstr(gf_ctx_error(ctx), "differ"))
        return cli_dist_root() ? cli_fail(o->cmd, "%s", gf_ctx_error(ctx)) : CLI_FAILED;
    if (st != GF_OK) return abort_job(o->cmd, "comparing the weights", ctx);
    const gf_dist_stats s = gf_dist_get_stats(job);
    if (s.exchanges > 0)
        cli_log(o, "graft %s: %d ranks; %lld gradient exchanges of %.2f MB, %.2f ms each "
                   "(%.2f ms of it waiting), %.1f%% of the training time; %lld of %lld buckets "
                   "started during the backward; weights identical on every rank (%016llx)\n",
                o->cmd, gf_dist_size(job), (long long)s.exchanges,
                (double)s.bytes / (double)s.exchanges / 1e6, 1e3 * s.seconds / (double)s.exchanges,
                1e3 * s.wait_seconds / (double)s.exchanges,
                seconds > 0 ? 100.0 * s.seconds / seconds : 0.0, (long long)s.buckets_early,
                (long long)s.buckets, (unsigned long long)h);
    /* the other ranks are done: rank 0 alone evaluates, writes and prints */
    return cli_dist_root() ? CLI_CONTINUE : CLI_OK;
#else
    (void)ctx, (void)o, (void)m, (void)seconds;
    return CLI_CONTINUE;
#endif
}
