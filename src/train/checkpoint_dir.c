/* A directory of checkpoints (graft/checkpoint.h): naming, listing, keep-last-N and keep-best-K
 * rotation, and the temporary files a killed writer left. */
#define _POSIX_C_SOURCE 200809L
#include "graft/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- directories --------------------------------------------------------------------------- */

static const char *pfx(const char *prefix) { return prefix && *prefix ? prefix : "ckpt"; }

/* Reads exactly `digits` decimal digits at s. */
static bool digits_at(const char *s, int digits, int64_t *out) {
    int64_t v = 0;
    for (int i = 0; i < digits; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "<prefix>-e%06-b%09.safetensors" or "<prefix>-best-e%06.safetensors". */
static bool parse_name(const char *name, const char *prefix, int64_t *epoch, int64_t *batch,
                       bool *best) {
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || name[n] != '-') return false;
    const char *s = name + n + 1;
    if (strncmp(s, "best-e", 6) == 0) {
        *best = true;
        *batch = 0;
        return digits_at(s + 6, 6, epoch) && strcmp(s + 12, ".safetensors") == 0;
    }
    *best = false;
    return s[0] == 'e' && digits_at(s + 1, 6, epoch) && strncmp(s + 7, "-b", 2) == 0 &&
           digits_at(s + 9, 9, batch) && strcmp(s + 18, ".safetensors") == 0;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void gf_ckpt_list_free(gf_ckpt_list *l) {
    if (!l) return;
    for (int i = 0; i < l->n; i++) free(l->items[i].path);
    free(l->items);
    free(l);
}

static int by_order(const void *a, const void *b) {
    const gf_ckpt_entry *x = a, *y = b;
    if (x->best != y->best) return x->best ? 1 : -1;
    if (x->epoch != y->epoch) return x->epoch < y->epoch ? -1 : 1;
    if (x->batch != y->batch) return x->batch < y->batch ? -1 : 1;
    return 0;
}

static gf_status check_prefix(gf_ctx *ctx, const char *dir, const char *prefix) {
    if (!dir || !*dir) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "checkpoint: no directory");
    if (strchr(pfx(prefix), '/'))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "checkpoint: prefix '%s' holds a '/'", prefix);
    return GF_OK;
}

gf_ckpt_list *gf_ckpt_list_dir(gf_ctx *ctx, const char *dir, const char *prefix) {
    if (check_prefix(ctx, dir, prefix) != GF_OK) return NULL;
    prefix = pfx(prefix);
    DIR *d = opendir(dir);
    if (!d) {
        gf_ctx_set_error(ctx, GF_ERR_IO, "checkpoint directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    gf_ckpt_list *l = calloc(1, sizeof *l);
    int cap = 0;
    struct dirent *e;
    while (l && (e = readdir(d))) {
        gf_ckpt_entry en;
        if (!parse_name(e->d_name, prefix, &en.epoch, &en.batch, &en.best)) continue;
        if (l->n == cap) {
            cap = cap ? 2 * cap : 16;
            gf_ckpt_entry *it = realloc(l->items, sizeof *it * (size_t)cap);
            if (!it) goto nomem;
            l->items = it;
        }
        if (!(en.path = join(dir, e->d_name))) goto nomem;
        l->items[l->n++] = en;
    }
    closedir(d);
    if (!l) gf_ctx_set_error(ctx, GF_ERR_NOMEM, "checkpoint directory %s: out of memory", dir);
    else if (l->n) qsort(l->items, (size_t)l->n, sizeof *l->items, by_order);
    return l;
nomem:
    closedir(d);
    gf_ckpt_list_free(l);
    gf_ctx_set_error(ctx, GF_ERR_NOMEM, "checkpoint directory %s: out of memory", dir);
    return NULL;
}

gf_status gf_ckpt_latest(gf_ctx *ctx, const char *dir, const char *prefix, char *out, size_t cap) {
    gf_ckpt_list *l = gf_ckpt_list_dir(ctx, dir, prefix);
    if (!l) return gf_ctx_status(ctx);
    const gf_ckpt_entry *last = NULL;
    for (int i = 0; i < l->n; i++)
        if (!l->items[i].best) last = &l->items[i];
    gf_status st = GF_OK;
    if (!last)
        st = gf_ctx_set_error(ctx, GF_ERR_IO, "checkpoint directory %s: no checkpoint "
                              "'%s-e<epoch>-b<batch>.safetensors'", dir, pfx(prefix));
    else if (!out || strlen(last->path) >= cap)
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "checkpoint: path %s does not fit %zu bytes",
                              last->path, cap);
    else
        memcpy(out, last->path, strlen(last->path) + 1);
    gf_ckpt_list_free(l);
    return st;
}

static gf_status ensure_dir(gf_ctx *ctx, const char *dir) {
    if (mkdir(dir, 0755) == 0 || errno == EEXIST) return GF_OK;
    return gf_ctx_set_error(ctx, GF_ERR_IO, "checkpoint directory %s: cannot create it: %s", dir,
                            strerror(errno));
}

static gf_status remove_file(gf_ctx *ctx, const char *path) {
    if (unlink(path) == 0 || errno == ENOENT) return GF_OK;
    return gf_ctx_set_error(ctx, GF_ERR_IO, "checkpoint rotation: cannot delete %s: %s", path,
                            strerror(errno));
}

gf_status gf_ckpt_write(gf_ctx *ctx, const gf_ckpt_policy *pol, const gf_ckpt_parts *parts,
                        char *written, size_t cap) {
    if (!pol || !parts) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "checkpoint write: NULL argument");
    gf_status st = check_prefix(ctx, pol->dir, pol->prefix);
    if (st != GF_OK || (st = ensure_dir(ctx, pol->dir)) != GF_OK) return st;
    char name[400];
    snprintf(name, sizeof name, "%s-e%06lld-b%09lld.safetensors", pfx(pol->prefix),
             (long long)parts->progress.epoch, (long long)parts->progress.batch);
    char *path = join(pol->dir, name);
    if (!path) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "checkpoint write: out of memory");
    st = gf_ckpt_save(ctx, path, parts);
    if (st == GF_OK && written) {
        if (strlen(path) < cap) memcpy(written, path, strlen(path) + 1);
        else if (cap) written[0] = '\0';
    }
    free(path);
    if (st != GF_OK || pol->keep_last <= 0) return st;
    gf_ckpt_list *l = gf_ckpt_list_dir(ctx, pol->dir, pol->prefix);
    if (!l) return gf_ctx_status(ctx);
    int regular = 0;
    for (int i = 0; i < l->n; i++) regular += !l->items[i].best;
    for (int i = 0; i < l->n && regular > pol->keep_last && st == GF_OK; i++)
        if (!l->items[i].best) { /* oldest first */
            st = remove_file(ctx, l->items[i].path);
            regular--;
        }
    gf_ckpt_list_free(l);
    return st;
}

/* The monitored value stored in a keep-best copy; NaN (ranks last) when unreadable. */
static double stored_metric(gf_ctx *ctx, const char *path) {
    gf_ckpt *ck = gf_ckpt_open(ctx, path);
    double m = ck ? gf_ckpt_get_progress(ck)->metric : NAN;
    gf_ckpt_close(ck);
    if (!ck) gf_ctx_clear_error(ctx);
    return m;
}

/* true when a ranks before b (NaN last). */
static bool better(double a, double b, bool maximize) {
    if (isnan(b)) return !isnan(a);
    if (isnan(a)) return false;
    return maximize ? a > b : a < b;
}

gf_status gf_ckpt_write_best(gf_ctx *ctx, const gf_ckpt_policy *pol, const gf_ckpt_parts *parts,
                             bool maximize, bool *saved) {
    if (saved) *saved = false;
    if (!pol || !parts) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "checkpoint best: NULL argument");
    const double m = parts->progress.metric;
    if (pol->keep_best <= 0 || isnan(m)) return GF_OK;
    gf_status st = check_prefix(ctx, pol->dir, pol->prefix);
    if (st != GF_OK || (st = ensure_dir(ctx, pol->dir)) != GF_OK) return st;
    if (gf_ctx_status(ctx) != GF_OK) return gf_ctx_status(ctx);
    gf_ckpt_list *l = gf_ckpt_list_dir(ctx, pol->dir, pol->prefix);
    if (!l) return gf_ctx_status(ctx);
    /* the existing copies, other epochs only, worst first */
    int nb = 0;
    gf_ckpt_entry **bs = calloc((size_t)l->n + 1, sizeof *bs);
    double *ms = calloc((size_t)l->n + 1, sizeof *ms);
    if (!bs || !ms) {
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "checkpoint best: out of memory");
        goto done;
    }
    for (int i = 0; i < l->n; i++) {
        if (!l->items[i].best || l->items[i].epoch == parts->progress.epoch) continue;
        bs[nb] = &l->items[i];
        ms[nb] = stored_metric(ctx, l->items[i].path);
        nb++;
    }
    for (int i = 1; i < nb; i++) /* insertion sort, worst first */
        for (int j = i; j > 0 && better(ms[j - 1], ms[j], maximize); j--) {
            double tm = ms[j];
            ms[j] = ms[j - 1];
            ms[j - 1] = tm;
            gf_ckpt_entry *te = bs[j];
            bs[j] = bs[j - 1];
            bs[j - 1] = te;
        }
    /* the new copy ranks after the k worst (ties rank it lower: it must be strictly better);
     * the del worst of all nb + 1 go */
    int k = 0;
    while (k < nb && better(m, ms[k], maximize)) k++;
    const int del = nb + 1 > pol->keep_best ? nb + 1 - pol->keep_best : 0;
    if (del > k) goto done; /* it would not be kept */
    char name[400];
    snprintf(name, sizeof name, "%s-best-e%06lld.safetensors", pfx(pol->prefix),
             (long long)parts->progress.epoch);
    char *path = join(pol->dir, name);
    if (!path) {
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "checkpoint best: out of memory");
        goto done;
    }
    st = gf_ckpt_save(ctx, path, parts);
    free(path);
    if (st != GF_OK) goto done;
    if (saved) *saved = true;
    for (int i = 0; i < del && st == GF_OK; i++) st = remove_file(ctx, bs[i]->path);
done:
    free(bs);
    free(ms);
    gf_ckpt_list_free(l);
    return st;
}

gf_status gf_ckpt_clean_temp(gf_ctx *ctx, const char *dir, const char *prefix, int *removed) {
    if (removed) *removed = 0;
    gf_status st = check_prefix(ctx, dir, prefix);
    if (st != GF_OK) return st;
    prefix = pfx(prefix);
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return GF_OK; /* nothing written yet */
        return gf_ctx_set_error(ctx, GF_ERR_IO, "checkpoint directory %s: %s", dir, strerror(errno));
    }
    const size_t n = strlen(prefix);
    struct dirent *e;
    while (st == GF_OK && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, n) != 0 || e->d_name[n] != '-' ||
            !strstr(e->d_name, ".safetensors.tmp."))
            continue;
        char *p = join(dir, e->d_name);
        if (!p) {
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "checkpoint: out of memory");
            break;
        }
        st = remove_file(ctx, p);
        free(p);
        if (st == GF_OK && removed) (*removed)++;
    }
    closedir(d);
    return st;
}
