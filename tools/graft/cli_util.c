/* Shared helpers of the graft tool: checks of the files named on the command line, Ctrl-C,
 * JSON output and the progress display (a bar on a terminal, one line per epoch otherwise). */
#define _DEFAULT_SOURCE /* realpath */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <limits.h>
#include "cli.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- files -------------------------------------------------------------------------------- */

static char fold(char c) {
    if (c == '_') return '-';
    return (char)tolower((unsigned char)c);
}

/* Edit distance counting a swap of neighbours as one edit ("trian" is 1 from "train"), over
 * three rows of at most CLI_NEAR_MAX + 1 cells (longer words: no hint). */
#define CLI_NEAR_MAX 64
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > CLI_NEAR_MAX || lb > CLI_NEAR_MAX) return INT_MAX;
    int rows[3][CLI_NEAR_MAX + 1];
    int *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = fold(a[i - 1]) != fold(b[j - 1]);
            int d = prev[j - 1] + cost;
            if (prev[j] + 1 < d) d = prev[j] + 1;
            if (cur[j - 1] + 1 < d) d = cur[j - 1] + 1;
            if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) &&
                fold(a[i - 2]) == fold(b[j - 1]) && prev2[j - 2] + 1 < d)
                d = prev2[j - 2] + 1;
            cur[j] = d;
        }
        int *t = prev2;
        prev2 = prev, prev = cur, cur = t;
    }
    return prev[lb];
}

const char *cli_nearest(const char *word, const char *const *candidates, int n) {
    const char *best = NULL;
    int best_d = INT_MAX;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(word, candidates[i]);
        if (d < best_d) best_d = d, best = candidates[i];
    }
    size_t len = strlen(word);
    int allowed = len <= 4 ? 1 : (int)(len / 3);
    return best && best_d <= allowed ? best : NULL;
}

void cli_self_command(char *buf, size_t cap) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    snprintf(buf, cap, "graft");
    if (n <= 0) return;
    self[n] = 0;
    const char *path = getenv("PATH");
    while (path && *path) { /* is the graft that PATH finds this one? */
        size_t len = strcspn(path, ":");
        char cand[4200], real[4096];
        snprintf(cand, sizeof cand, "%.*s/graft", (int)(len < 4000 ? len : 4000), path);
        if (len > 0 && realpath(cand, real) && strcmp(real, self) == 0) return;
        path += len + (path[len] == ':');
    }
    char cwd[4096];
    size_t cl = getcwd(cwd, sizeof cwd) ? strlen(cwd) : 0;
    const char *rel = cl > 0 && strncmp(self, cwd, cl) == 0 && self[cl] == '/' ? self + cl + 1 : NULL;
    /* a bare name is looked up on PATH, which does not find this one: "./graft" */
    if (rel) snprintf(buf, cap, "%s%s", strchr(rel, '/') ? "" : "./", rel);
    else snprintf(buf, cap, "%s", self);
}

bool cli_is_dir(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool cli_is_file(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int cli_check_input(const char *cmd, const char *option, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0)
        return cli_usage_error(cmd, "%s %s: %s", option, path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return cli_usage_error(cmd, "%s %s: is a folder, not a file", option, path);
    return CLI_CONTINUE;
}

/* The folder part of path in buf ("." for a bare name). */
static void parent_of(const char *path, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", path);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0'; /* "dir/" names dir */
    char *slash = strrchr(buf, '/');
    if (!slash) snprintf(buf, cap, ".");
    else if (slash == buf) buf[1] = '\0';
    else *slash = '\0';
}

const char *const cli_report_files[] = {"index.html", NULL};
const char *const cli_lora_files[] = {"adapter_model.safetensors", "adapter_config.json", NULL};

static const char *kind_of(mode_t m) {
    if (S_ISLNK(m)) return "a symbolic link";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

/* An existing path that graft's write (a new file renamed over it) must not replace. */
static int check_replaceable(const char *cmd, const char *option, const char *shown,
                             const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return CLI_CONTINUE;
    if (S_ISDIR(st.st_mode))
        return cli_usage_error(cmd, "%s %s: %s is a folder; give a file name", option, shown, path);
    if (!S_ISREG(st.st_mode))
        return cli_usage_error(cmd, "%s %s: %s exists and is %s; graft replaces only regular files "
                                    "(remove it or choose another name)",
                               option, shown, path, kind_of(st.st_mode));
    return CLI_CONTINUE;
}

int cli_check_output(const char *cmd, const char *option, const char *path) {
    char dir[4096];
    if (!path[0]) return cli_usage_error(cmd, "%s: empty path", option);
    if (path[strlen(path) - 1] == '/')
        return cli_usage_error(cmd, "%s %s: ends with '/', which names a folder; give a file name",
                               option, path);
    int rc = check_replaceable(cmd, option, path, path);
    if (rc != CLI_CONTINUE) return rc;
    parent_of(path, dir, sizeof dir);
    if (!cli_is_dir(dir))
        return cli_usage_error(cmd, "%s %s: the folder %s does not exist", option, path, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return cli_usage_error(cmd, "%s %s: cannot write into %s: %s", option, path, dir,
                               strerror(errno));
    return CLI_CONTINUE;
}

int cli_check_output_dir(const char *cmd, const char *option, const char *dir,
                         const char *const *files) {
    if (!dir[0]) return cli_usage_error(cmd, "%s: empty path", option);
    if (cli_is_dir(dir)) {
        if (access(dir, W_OK | X_OK) != 0)
            return cli_usage_error(cmd, "%s %s: cannot write into it: %s", option, dir,
                                   strerror(errno));
        for (int i = 0; files && files[i]; i++) {
            char p[4400];
            snprintf(p, sizeof p, "%s/%s", dir, files[i]);
            int rc = check_replaceable(cmd, option, dir, p);
            if (rc != CLI_CONTINUE) return rc;
        }
        return CLI_CONTINUE;
    }
    struct stat st;
    if (lstat(dir, &st) == 0)
        return cli_usage_error(cmd, "%s %s: is %s, not a folder", option, dir,
                               S_ISREG(st.st_mode) ? "a file" : kind_of(st.st_mode));
    char parent[4096];
    parent_of(dir, parent, sizeof parent);
    if (!cli_is_dir(parent))
        return cli_usage_error(cmd, "%s %s: the folder %s does not exist", option, dir, parent);
    if (access(parent, W_OK | X_OK) != 0)
        return cli_usage_error(cmd, "%s %s: cannot create it in %s: %s", option, dir, parent,
                               strerror(errno));
    return CLI_CONTINUE;
}

char *cli_read_file(const char *path, size_t max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
        if (n > max) { /* a huge file, or a device that never ends */
            free(buf);
            fclose(f);
            errno = EFBIG;
            return NULL;
        }
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (!buf || bad) {
        free(buf);
        errno = bad ? EIO : ENOMEM;
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* ---- Ctrl-C ------------------------------------------------------------------------------- */

volatile sig_atomic_t cli_interrupted = 0;

static void on_sigint(int sig) {
    (void)sig;
    if (cli_interrupted) _exit(130); /* a second Ctrl-C: leave now */
    cli_interrupted = 1;
    static const char msg[] = "\ngraft: stopping after this step (Ctrl-C again to quit now)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
}

void cli_install_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* ---- JSON ------------------------------------------------------------------------------------ */

int cli_json_print(cJSON *root) {
    char *s = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!s) {
        fprintf(stderr, "graft: error: out of memory writing JSON\n");
        return CLI_FAILED;
    }
    puts(s);
    cJSON_free(s);
    fflush(stdout);
    return CLI_OK;
}

cJSON *cli_json_shape(int ndim, const int64_t *shape) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < ndim; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)shape[i]));
    return a;
}

cJSON *cli_json_names(int n, const char *const *names) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        char num[24];
        snprintf(num, sizeof num, "%d", i);
        cJSON_AddItemToArray(a, cJSON_CreateString(names && names[i] ? names[i] : num));
    }
    return a;
}

cJSON *cli_json_num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

void cli_json_add_num(cJSON *o, const char *key, double v) {
    cJSON_AddItemToObject(o, key, cli_json_num(v));
}

/* ---- progress ------------------------------------------------------------------------------- */

double cli_now(void) { return gf_now_seconds(); }

void cli_progress_init(cli_progress *p, const cli_opts *o, int64_t batch_size, int64_t batches) {
    memset(p, 0, sizeof *p);
    p->o = o;
    p->tty = !o->quiet && isatty(STDERR_FILENO);
    p->batch_size = batch_size;
    p->batches = batches;
    p->t_epoch = cli_now();
    p->loss_ema = NAN;
}

static void fmt_time(double s, char *buf, size_t cap) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

void cli_progress_step(cli_progress *p, int epoch, int epochs, int64_t batch, double loss) {
    if (batch == 0 || p->done_in_epoch > batch) { /* a new epoch (its clock started at the last
                                                     * epoch's end, or at init) */
        p->done_in_epoch = 0;
        p->loss_ema = NAN;
    }
    p->done_in_epoch = batch + 1;
    if (isfinite(loss)) p->loss_ema = isnan(p->loss_ema) ? loss : 0.9 * p->loss_ema + 0.1 * loss;
    if (!p->tty) return;
    double now = cli_now();
    if (now - p->t_last_draw < 0.1 && batch + 1 < p->batches) return;
    p->t_last_draw = now;
    double el = now - p->t_epoch;
    double rate = el > 0 ? (double)(p->done_in_epoch * p->batch_size) / el : 0;
    double eta = p->done_in_epoch > 0 ? el / (double)p->done_in_epoch *
                                            (double)(p->batches - p->done_in_epoch)
                                      : 0;
    char t[32];
    fmt_time(eta, t, sizeof t);
    const int width = 24;
    int fill = p->batches > 0 ? (int)(width * p->done_in_epoch / p->batches) : 0;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    char r[32] = "-";
    if (el > 0.05) snprintf(r, sizeof r, "%.0f", rate);
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %lld/%lld  loss %.4f  %s samples/s  ETA %s",
            epoch, epochs, bar, (long long)p->done_in_epoch, (long long)p->batches, p->loss_ema,
            r, t);
    fflush(stderr);
}

void cli_progress_epoch(cli_progress *p, const gf_epoch_stats *s) {
    if (p->o->quiet) return;
    if (p->tty) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "epoch %d/%d  loss %.4f", s->epoch, s->epochs, s->train_loss);
    if (!isnan(s->train_acc)) fprintf(stderr, "  acc %.4f", s->train_acc);
    if (!isnan(s->val_loss)) fprintf(stderr, "  val_loss %.4f", s->val_loss);
    if (!isnan(s->val_acc)) fprintf(stderr, "  val_acc %.4f", s->val_acc);
    double rate = s->seconds > 0 ? (double)(s->batches * p->batch_size) / s->seconds : 0;
    fprintf(stderr, "  lr %.3g  %.1fs  %.0f samples/s%s\n", s->lr, s->seconds, rate,
            s->improved && !isnan(s->val_loss) ? "  *" : "");
    p->done_in_epoch = 0;
    p->t_epoch = cli_now();
}
