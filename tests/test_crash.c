/* Crash test: a training process (this program run as "child") that checkpoints every 2
 * optimizer steps is killed with SIGKILL 20 times at seeded random moments - half of them while
 * a checkpoint file is being written (the driver waits for the writer's temporary file to
 * appear), two while the restarted process is still starting and restoring - and restarted
 * each time from its newest checkpoint. After every kill: every listed checkpoint opens, the
 * newest restores completely into a fresh model/optimizer/schedule/loaders, and no temporary
 * file is listed as a checkpoint. At the end the interrupted chain, and a separate resume from
 * each kill's newest checkpoint, must reach bitwise the final weights of an uninterrupted run.
 * GRAFT_CRASH_SEED=n changes the kill schedule. To add a check: extend check_after_kill. */
#define _POSIX_C_SOURCE 200809L
#include "graft/graft.h"
#include "graft/checkpoint.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { F = 32, K = 8, N_TRAIN = 1024, N_VAL = 256, BATCH = 32, EPOCHS = 5, THREADS = 1,
       EVERY = 2, KILLS = 20 };
enum { STEPS_PER_EPOCH = N_TRAIN / BATCH, TOTAL_STEPS = EPOCHS * STEPS_PER_EPOCH };

/* ---- the training job (child and driver build it alike) ----------------------------------- */

typedef struct job {
    gf_ctx *ctx;
    gf_ds *tr, *va;
    gf_loader *lt, *lv;
    gf_module *m;
    gf_optim *o;
    gf_sched *s;
} job;

static gf_ds *blobs(gf_ctx *ctx, int64_t n, uint64_t seed) {
    float *x = malloc(sizeof(float) * (size_t)(n * F));
    int64_t *y = malloc(sizeof(int64_t) * (size_t)n);
    gf_rng r;
    gf_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int64_t)gf_rng_below(&r, K);
        for (int j = 0; j < F; j++) x[i * F + j] = gf_rng_normal(&r) + (j % K == y[i] ? 1.0f : 0.0f);
    }
    return test_ds_take(ctx, NULL, 1, (int64_t[]){F}, n, x, y, NULL, K);
}

/* Linear(32, 256) -> BatchNorm1d -> ReLU -> Dropout(0.1) -> Linear(256, 256) -> ReLU ->
 * Linear(256, 8): 77k parameters, about 1.2 MB per checkpoint with Adam's moments and the
 * keep-best weights. Adam, warmup then cosine per step. */
static bool job_new(job *j) {
    memset(j, 0, sizeof *j);
    gf_ctx_params cp = gf_ctx_default_params();
    cp.seed = 21;
    cp.n_threads = THREADS;
    j->ctx = gf_ctx_new(&cp);
    if (!j->ctx) return false;
    gf_ctx *ctx = j->ctx;
    j->tr = blobs(ctx, N_TRAIN, 1);
    j->va = blobs(ctx, N_VAL, 2);
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = BATCH;
    lp.seed = 5;
    j->lt = j->tr ? gf_loader_new(ctx, j->tr, &lp) : NULL;
    lp.shuffle = false;
    lp.batch_size = 128;
    j->lv = j->va ? gf_loader_new(ctx, j->va, &lp) : NULL;
    gf_rng r;
    gf_rng_seed(&r, 3);
    gf_module *kids[] = {gf_nn_linear(ctx, &r, F, 256, true), gf_nn_batch_norm1d(ctx, 256, NULL),
                         gf_nn_relu(ctx), gf_nn_dropout(ctx, 0.1f),
                         gf_nn_linear(ctx, &r, 256, 256, true), gf_nn_relu(ctx),
                         gf_nn_linear(ctx, &r, 256, K, true)};
    j->m = gf_nn_sequential_of(ctx, 7, kids);
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_ADAM);
    hp.lr = 3e-3;
    j->o = j->m ? gf_train_optim_new(ctx, j->m, &hp, NULL, 0) : NULL;
    gf_sched_params cos = gf_sched_default_params(GF_SCHED_COSINE);
    cos.t_max = TOTAL_STEPS - 10;
    cos.interval = GF_SCHED_PER_STEP;
    j->s = j->o ? gf_sched_warmup(ctx, j->o, 10, 0.1, &cos) : NULL;
    return j->lt && j->lv && j->s;
}

static void job_free(job *j) {
    gf_sched_free(j->s);
    gf_optim_free(j->o);
    gf_module_free(j->m);
    gf_loader_free(j->lt);
    gf_loader_free(j->lv);
    gf_ds_free(j->tr);
    gf_ds_free(j->va);
    gf_ctx_free(j->ctx);
}

/* child DIR|- OUT RESUME|auto|-: trains to the end (checkpoints in DIR every EVERY steps and
 * each epoch, the newest 3 and the best 2 kept), resuming from RESUME or, with "auto", from
 * DIR's newest checkpoint if any; writes the final weights to OUT. */
static int child(int argc, char **argv) {
    if (argc != 5) return 2;
    const char *dir = strcmp(argv[2], "-") ? argv[2] : NULL, *out = argv[3], *resume = argv[4];
    job j;
    if (!job_new(&j)) return 3;
    gf_fit_params p = gf_fit_default_params();
    p.epochs = EPOCHS;
    p.restore_best = true;
    p.monitor = GF_MONITOR_VAL_ACC;
    p.checkpoint.dir = dir;
    p.checkpoint.every_steps = EVERY;
    p.checkpoint.every_epoch = true;
    p.checkpoint.keep_last = 3;
    p.checkpoint.keep_best = 2;
    char latest[4096];
    if (!strcmp(resume, "auto")) {
        if (dir && gf_ckpt_latest(j.ctx, dir, NULL, latest, sizeof latest) == GF_OK)
            p.resume_from = latest;
        gf_ctx_clear_error(j.ctx);
    } else if (strcmp(resume, "-")) {
        p.resume_from = resume;
    }
    gf_status st = gf_fit(j.ctx, j.m, NULL, j.o, j.s, j.lt, j.lv, &p, NULL);
    if (st == GF_OK) st = gf_weights_save(j.ctx, j.m, out, NULL, 0);
    if (st != GF_OK) fprintf(stderr, "crash child: %s\n", gf_ctx_error(j.ctx));
    job_free(&j);
    return st == GF_OK ? 0 : 1;
}

/* ---- the driver ------------------------------------------------------------------------------ */

static char self[4096];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static pid_t spawn(const char *dir, const char *out, const char *resume) {
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "child", dir, out, resume, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Runs a child to the end; returns its exit status (0 = success). */
static int run_child(const char *dir, const char *out, const char *resume) {
    pid_t pid = spawn(dir, out, resume);
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid) return -1;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
}

/* Files in dir whose name contains s. */
static int count(const char *dir, const char *s) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += strstr(e->d_name, s) != NULL;
    if (d) closedir(d);
    return n;
}

/* Temporary files in dir that are not in seen[0..n_seen) (a write in progress or cut short);
 * with record, they are added to seen. */
static int new_temps(const char *dir, char (*seen)[256], int *n_seen, int cap, bool record) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strstr(e->d_name, ".tmp.")) continue;
        bool old = false;
        for (int i = 0; i < *n_seen && !old; i++) old = !strcmp(seen[i], e->d_name);
        if (old) continue;
        n++;
        if (record && *n_seen < cap) snprintf(seen[(*n_seen)++], 256, "%s", e->d_name);
    }
    if (d) closedir(d);
    return n;
}

/* Optimizer steps reached by dir's newest checkpoint (from its name), -1 when none. */
static int64_t progress(gf_ctx *ctx, const char *dir) {
    gf_ckpt_list *l = gf_ckpt_list_dir(ctx, dir, NULL);
    int64_t best = -1;
    for (int i = 0; l && i < l->n; i++)
        if (!l->items[i].best) {
            int64_t s = l->items[i].epoch * STEPS_PER_EPOCH + l->items[i].batch;
            if (s > best) best = s;
        }
    gf_ckpt_list_free(l);
    gf_ctx_clear_error(ctx);
    return best;
}

/* Two weight files hold bitwise the same tensors under the same names. */
static bool same_weights(gf_ctx *ctx, const char *a, const char *b) {
    gf_st_file *x = gf_st_open(ctx, a), *y = gf_st_open(ctx, b);
    bool ok = x && y && gf_st_count(x) == gf_st_count(y) && gf_st_count(x) > 0;
    for (int i = 0; ok && i < gf_st_count(x); i++) {
        const gf_st_info *p = gf_st_get(x, i), *q = gf_st_find(y, p->name);
        ok = q && p->end - p->begin == q->end - q->begin &&
             memcmp(p->data, q->data, (size_t)(p->end - p->begin)) == 0;
    }
    if (!ok) fprintf(stderr, "crash: %s and %s differ%s%s\n", a, b, gf_ctx_status(ctx) ? ": " : "",
                     gf_ctx_error(ctx));
    gf_st_close(x);
    gf_st_close(y);
    gf_ctx_clear_error(ctx);
    return ok;
}

static bool copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    bool ok = in && out;
    char buf[1 << 16];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    if (in) fclose(in);
    if (out && fclose(out) != 0) ok = false;
    return ok;
}

/* After a kill: nothing but complete checkpoints listed, all of them open, the newest restores
 * into a fresh job. Copies the newest to keep (when there is one); returns whether there is. */
static bool check_after_kill(gf_ctx *ctx, const char *dir, const char *keep, int k) {
    gf_ckpt_list *l = gf_ckpt_list_dir(ctx, dir, NULL);
    CHECK(l != NULL);
    bool any = false;
    for (int i = 0; l && i < l->n; i++) {
        CHECK(strstr(l->items[i].path, ".tmp") == NULL);
        gf_ckpt *ck = gf_ckpt_open(ctx, l->items[i].path);
        if (!ck) fprintf(stderr, "crash: kill %d left %s unreadable: %s\n", k, l->items[i].path,
                         gf_ctx_error(ctx));
        CHECK(ck != NULL);
        gf_ckpt_close(ck);
        gf_ctx_clear_error(ctx);
        any = any || !l->items[i].best;
    }
    gf_ckpt_list_free(l);
    if (!any) return false;
    char latest[4096];
    CHECK(gf_ckpt_latest(ctx, dir, NULL, latest, sizeof latest) == GF_OK);
    job j;
    CHECK(job_new(&j));
    gf_ckpt *ck = gf_ckpt_open(j.ctx, latest);
    gf_ckpt_parts parts;
    memset(&parts, 0, sizeof parts);
    parts.model = j.m;
    parts.opt = j.o;
    parts.sched = j.s;
    parts.rng = gf_ctx_rng(j.ctx);
    parts.train = j.lt;
    parts.val = j.lv;
    gf_status st = ck ? gf_ckpt_restore(j.ctx, ck, &parts) : gf_ctx_status(j.ctx);
    if (st != GF_OK) fprintf(stderr, "crash: kill %d: newest %s: %s\n", k, latest, gf_ctx_error(j.ctx));
    CHECK(st == GF_OK);
    gf_ckpt_close(ck);
    job_free(&j);
    CHECK(copy_file(latest, keep));
    return true;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "child")) return child(argc, argv);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        printf("test_crash: cannot find its own executable; skipped\n");
        return 77;
    }
    self[n] = '\0';
    const char *seed_env = getenv("GRAFT_CRASH_SEED");
    const uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : 20240611;
    char base[] = "/tmp/graft-crash-XXXXXX";
    if (!mkdtemp(base)) return 1;
    char ref_dir[512], chain[512], ref_out[512], plain_out[512], out[512], keep[KILLS][512];
    snprintf(ref_dir, sizeof ref_dir, "%s/ref", base);
    snprintf(chain, sizeof chain, "%s/chain", base);
    snprintf(ref_out, sizeof ref_out, "%s/ref.safetensors", base);
    snprintf(plain_out, sizeof plain_out, "%s/plain.safetensors", base);
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);

    /* the uninterrupted run, with and without checkpoints */
    double t0 = now();
    CHECK(run_child(ref_dir, ref_out, "-") == 0);
    const double t_ref = now() - t0;
    t0 = now();
    CHECK(run_child("-", plain_out, "-") == 0);
    const double t_plain = now() - t0;
    CHECK(same_weights(ctx, ref_out, plain_out));

    /* 20 kills: targets spread over the run (in optimizer steps reached), sorted */
    gf_rng rng;
    gf_rng_seed(&rng, seed);
    int64_t target[KILLS];
    for (int k = 0; k < KILLS; k++) target[k] = (int64_t)gf_rng_below(&rng, (uint64_t)(TOTAL_STEPS * 9 / 10));
    for (int a = 1; a < KILLS; a++)
        for (int b = a; b > 0 && target[b - 1] > target[b]; b--) {
            int64_t t = target[b];
            target[b] = target[b - 1];
            target[b - 1] = t;
        }
    int landed = 0, mid_write = 0, kept = 0, have_keep[KILLS] = {0};
    static char seen[64][256]; /* temporary files seen after earlier kills */
    int n_seen = 0;
    for (int k = 0; k < KILLS; k++) {
        const int mode = (k == 5 || k == 13) ? 2 : k % 2; /* 0 mid-write, 1 any moment, 2 startup */
        snprintf(out, sizeof out, "%s/chain-%d.safetensors", base, k);
        pid_t pid = spawn(chain, out, "auto");
        if (pid < 0) break;
        const double start = now();
        bool exited = false;
        int ws = 0;
        if (mode == 2) {
            sleep_us((long)gf_rng_below(&rng, 30000));
        } else {
            /* wait for the target step (at most 20 s) */
            while (!exited && progress(ctx, chain) < target[k] && now() - start < 20) {
                exited = waitpid(pid, &ws, WNOHANG) == pid;
                sleep_us(200);
            }
            if (mode == 0) /* then for a checkpoint write to begin */
                while (!exited && new_temps(chain, seen, &n_seen, 64, false) == 0 && now() - start < 20) {
                    exited = waitpid(pid, &ws, WNOHANG) == pid;
                    sleep_us(50);
                }
            sleep_us((long)gf_rng_below(&rng, mode == 0 ? 400 : 20000));
        }
        if (!exited && waitpid(pid, &ws, WNOHANG) != pid) {
            kill(pid, SIGKILL);
            waitpid(pid, &ws, 0);
        }
        const bool by_kill = WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL;
        landed += by_kill;
        if (!by_kill) fprintf(stderr, "crash: kill %d did not land (status %d)\n", k, ws);
        const int temps = new_temps(chain, seen, &n_seen, 64, true);
        mid_write += temps > 0;
        snprintf(keep[k], sizeof keep[k], "%s/kill-%d.safetensors", base, k);
        have_keep[k] = check_after_kill(ctx, chain, keep[k], k);
        kept += have_keep[k];
        printf("kill %2d: %-9s at %4.0f ms, target step %3lld, newest checkpoint at step %3lld%s\n", k,
               mode == 0 ? "mid-write" : mode == 1 ? "anytime" : "startup", 1e3 * (now() - start),
               (long long)target[k], (long long)progress(ctx, chain),
               temps ? ", cut a checkpoint write short" : "");
    }
    /* the chain to its end, from its newest checkpoint */
    snprintf(out, sizeof out, "%s/chain-final.safetensors", base);
    CHECK(run_child(chain, out, "auto") == 0);
    CHECK(same_weights(ctx, ref_out, out));
    CHECK(count(chain, ".tmp.") == 0);
    /* each kill's newest checkpoint, resumed separately to the end (no checkpoints) */
    int same = 0;
    t0 = now();
    for (int k = 0; k < KILLS; k++) {
        if (!have_keep[k]) continue;
        snprintf(out, sizeof out, "%s/resume-%d.safetensors", base, k);
        CHECK(run_child("-", out, keep[k]) == 0);
        bool s = same_weights(ctx, ref_out, out);
        CHECK(s);
        same += s;
    }
    printf("crash: uninterrupted run %.2f s (%.2f s without checkpoints); %d of %d kills landed "
           "(%d during a checkpoint write); after each the newest checkpoint restored; the chain "
           "and %d of %d separate resumes (%.1f s) ended bitwise on the uninterrupted weights\n",
           t_ref, t_plain, landed, KILLS, mid_write, same, kept, now() - t0);
    CHECK(landed == KILLS);
    CHECK(mid_write >= KILLS / 4);
    CHECK(kept >= KILLS - 3);
    gf_ctx_free(ctx);
    if (gf_test_failed == 0) { /* keep the files of a failure for a look */
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
        if (system(cmd) != 0) fprintf(stderr, "crash: could not remove %s\n", base);
    } else {
        fprintf(stderr, "crash: files kept in %s (seed %llu)\n", base, (unsigned long long)seed);
    }
    return test_finish("test_crash");
}
