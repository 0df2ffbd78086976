/* The atomic file writer behind every file graft writes (weights, checkpoints, reports, LoRA
 * adapters, the IDX cache): write a temporary file beside the target, make it durable, rename
 * it over the target. The target must be a regular file or absent: rename() replaces whatever
 * the name points at, so a device node, a FIFO or a symbolic link named as the output would
 * silently become a regular file (as root, --out /dev/null replaced /dev/null). */
#define _GNU_SOURCE
#include "io/io_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_INFIX ".tmp."
#define TMP_SUFFIX_LEN 6 /* mkstemp's XXXXXX */

/* When this process (or the library, when loaded later) started: temporary files modified
 * before it cannot belong to a write of this process. The coarse clock is the one the kernel
 * stamps files with, so a file written just after start never looks older than it. */
static struct timespec process_start;

__attribute__((constructor)) static void note_start(void) {
    clock_gettime(CLOCK_REALTIME_COARSE, &process_start);
}

bool gf_write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        c += k;
        n -= (size_t)k;
    }
    return true;
}

static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a folder";
    if (S_ISLNK(m)) return "a symbolic link";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

static gf_status fail(gf_ctx *ctx, gf_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static gf_status fail(gf_ctx *ctx, gf_status s, const char *fmt, ...) {
    if (!ctx) return s;
    va_list ap;
    va_start(ap, fmt);
    gf_ctx_set_errorv(ctx, s, fmt, ap);
    va_end(ap);
    return s;
}

gf_status gf_check_replaceable(gf_ctx *ctx, const char *path) {
    if (!path || !*path) return fail(ctx, GF_ERR_INVALID, "output path is empty");
    if (path[strlen(path) - 1] == '/')
        return fail(ctx, GF_ERR_IO, "%s: names a folder (it ends with '/'); give a file name", path);
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return fail(ctx, GF_ERR_IO,
                    "%s: exists and is %s; graft replaces only regular files (remove it or "
                    "choose another name)",
                    path, kind_of(st.st_mode));
    return GF_OK;
}

static bool older_than_start(const struct stat *st) {
    if (st->st_mtim.tv_sec != process_start.tv_sec) return st->st_mtim.tv_sec < process_start.tv_sec;
    return st->st_mtim.tv_nsec < process_start.tv_nsec;
}

/* name is base + ".tmp." + six letters or digits, as mkstemp makes them. */
static bool is_temp_of(const char *name, const char *base, size_t blen) {
    const size_t ilen = sizeof TMP_INFIX - 1;
    if (strncmp(name, base, blen) != 0 || strncmp(name + blen, TMP_INFIX, ilen) != 0) return false;
    const char *x = name + blen + ilen;
    size_t n = 0;
    for (; x[n]; n++)
        if (!((x[n] >= 'a' && x[n] <= 'z') || (x[n] >= 'A' && x[n] <= 'Z') ||
              (x[n] >= '0' && x[n] <= '9')))
            return false;
    return n == TMP_SUFFIX_LEN;
}

/* Splits path into its folder (in dir, "." for a bare name) and its last component. */
static const char *split_path(const char *path, char *dir, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, cap, ".");
        return path;
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    snprintf(dir, cap, "%.*s", (int)n, path);
    return slash + 1;
}

int gf_clean_stale_temps(const char *path) {
    char dir[4096];
    if (!path || strlen(path) >= sizeof dir) return 0;
    const char *base = split_path(path, dir, sizeof dir);
    const size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_temp_of(e->d_name, base, blen)) continue;
        struct stat st;
        /* lstat: a link of that name is not ours to follow or remove */
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
            !older_than_start(&st))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0) removed++;
    }
    closedir(d);
    return removed;
}

static void sync_folder(const char *path) {
    char dir[4096];
    if (strlen(path) >= sizeof dir) return;
    split_path(path, dir, sizeof dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

gf_status gf_atomic_write(gf_ctx *ctx, const char *path, gf_write_fn fn, void *arg) {
    gf_status st = gf_check_replaceable(ctx, path);
    if (st != GF_OK) return st;
    gf_clean_stale_temps(path);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof TMP_INFIX + TMP_SUFFIX_LEN);
    if (!tmp) return fail(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, plen + sizeof TMP_INFIX + TMP_SUFFIX_LEN, "%s" TMP_INFIX "XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        st = fail(ctx, GF_ERR_IO, "%s: cannot create a temporary file beside it: %s", path,
                  strerror(errno));
        free(tmp);
        return st;
    }
    bool ok = fchmod(fd, 0644) == 0 && fn(fd, arg) && fsync(fd) == 0;
    int err = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        err = errno;
    }
    /* the check again, as late as possible: the path may have changed during the write */
    if (ok && gf_check_replaceable(NULL, path) != GF_OK) {
        unlink(tmp);
        free(tmp);
        return gf_check_replaceable(ctx, path);
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        unlink(tmp);
        st = fail(ctx, GF_ERR_IO, "%s: write failed: %s (the previous file, if any, is unchanged)",
                  path, strerror(err));
    } else {
        sync_folder(path);
    }
    free(tmp);
    return st;
}
