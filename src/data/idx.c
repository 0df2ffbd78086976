/* IDX reader (MNIST family) through zlib, which reads gzip and plain files alike, and the
 * image-classification dataset built on it: compact uint8 storage, float batches on demand. */
#define _DEFAULT_SOURCE /* realpath, mkdir, mmap */
#include "graft/data.h"
#include "core/internal.h"
#include "io/io_internal.h"
#include "kernels/vec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Reads are done in pieces of at most this size, and the buffer grows by doubling from at
 * most this size, so a header that promises gigabytes costs nothing until the bytes exist. */
#define IDX_CHUNK ((int64_t)1 << 26)
#define IDX_STEP ((int64_t)1 << 22)

static const char *type_name(int t) {
    switch (t) {
    case 0x08: return "uint8";
    case 0x09: return "int8";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    }
    return NULL;
}

/* zlib's message without the "path: " it starts with. */
static const char *zmsg(const char *msg, const char *path) {
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ') return msg + n + 2;
    return msg;
}

/* Explains why gzread came up short: corrupt data, a cut-off gzip stream or plain EOF. */
static gf_status short_read(gf_ctx *ctx, gzFile f, const char *path, const char *what,
                            int64_t want, int64_t got) {
    int err = Z_OK;
    const char *msg = gzerror(f, &err);
    if (err == Z_BUF_ERROR)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "idx: %s: truncated gzip stream while reading the %s "
                                "(got %lld of %lld bytes)",
                                path, what, (long long)got, (long long)want);
    if (err == Z_ERRNO)
        return gf_ctx_set_error(ctx, GF_ERR_IO, "idx: %s: read error: %s", path,
                                strerror(errno));
    if (err != Z_OK)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "idx: %s: corrupt gzip data (%s)", path,
                                zmsg(msg, path));
    if (got == 0 && strcmp(what, "header") == 0)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "idx: %s: empty file", path);
    return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                            "idx: %s: file ends early: the %s needs %lld bytes, found %lld",
                            path, what, (long long)want, (long long)got);
}

/* Reads exactly n bytes unless the file ends or fails; returns the count read or -1. */
static int64_t read_full(gzFile f, uint8_t *buf, int64_t n) {
    int64_t got = 0;
    while (got < n) {
        int64_t ask = n - got;
        if (ask > ((int64_t)1 << 30)) ask = (int64_t)1 << 30;
        int r = gzread(f, buf + got, (unsigned)ask);
        if (r < 0) return -1;
        if (r == 0) break;
        got += r;
    }
    return got;
}

static gf_status read_header(gf_ctx *ctx, gzFile f, const char *path, gf_idx *out) {
    uint8_t magic[4];
    int64_t got = read_full(f, magic, 4);
    if (got != 4) return short_read(ctx, f, path, "header", 4, got < 0 ? 0 : got);
    if (magic[0] != 0 || magic[1] != 0 || !type_name(magic[2]))
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "idx: %s: not an IDX file (magic bytes %02x %02x %02x %02x)",
                                path, magic[0], magic[1], magic[2], magic[3]);
    if (magic[2] != 0x08)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "idx: %s: element type %s (0x%02x) is not supported; only "
                                "uint8 (0x08) is read",
                                path, type_name(magic[2]), magic[2]);
    int ndim = magic[3];
    if (ndim < 1 || ndim > GF_IDX_MAX_DIMS)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                "idx: %s: %d dimensions in the header (1 to %d allowed)", path,
                                ndim, GF_IDX_MAX_DIMS);
    uint8_t raw[4 * GF_IDX_MAX_DIMS];
    got = read_full(f, raw, 4 * ndim);
    if (got != 4 * ndim)
        return short_read(ctx, f, path, "header", 4 + 4 * ndim, 4 + (got < 0 ? 0 : got));
    int64_t numel = 1;
    const int64_t max_bytes = gf_ctx_limits(ctx)->data_bytes;
    for (int i = 0; i < ndim; i++) {
        const uint8_t *b = raw + 4 * i;
        int64_t d = ((int64_t)b[0] << 24) | ((int64_t)b[1] << 16) | ((int64_t)b[2] << 8) | b[3];
        out->dims[i] = d;
        if (d > 0 && numel > max_bytes / d) {
            char s[GF_SHAPE_BUF];
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                    "idx: %s: absurd dimensions %s in the header (more than "
                                    "%lld bytes) " GF_LIMIT_HINT("data-bytes"),
                                    path, gf_dims_str(i + 1, out->dims, s, sizeof s),
                                    (long long)max_bytes);
        }
        numel *= d;
    }
    out->ndim = ndim;
    out->numel = numel;
    return GF_OK;
}

static gf_status ratio_error(gf_ctx *ctx, const char *path, int64_t bytes, int64_t csize,
                             const char *how) {
    const int64_t ratio = gf_ctx_limits(ctx)->gzip_ratio;
    return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                            "idx: %s: %s %lld bytes from %lld compressed bytes, more than %lld "
                            "times as many (a gzip bomb?) " GF_LIMIT_HINT("gzip-ratio"),
                            path, how, (long long)bytes, (long long)csize, (long long)ratio);
}

/* The header's promise against the compressed file's size, before anything is allocated. */
static gf_status check_ratio(gf_ctx *ctx, const char *path, const gf_idx *x, int64_t csize) {
    if (!gf_gzip_over_ratio(ctx, x->numel, csize)) return GF_OK;
    return ratio_error(ctx, path, x->numel, csize, "the header declares");
}

static gf_status read_payload(gf_ctx *ctx, gzFile f, const char *path, bool gz, gf_idx *out) {
    int64_t want = out->numel;
    int64_t cap = want < IDX_CHUNK ? want : IDX_CHUNK;
    uint8_t *buf = malloc((size_t)(cap > 0 ? cap : 1));
    if (!buf)
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "idx: %s: out of memory for %lld bytes",
                                path, (long long)cap);
    int64_t got = 0;
    while (got < want) {
        if (got == cap) {
            int64_t ncap = cap * 2 < want ? cap * 2 : want;
            uint8_t *nb = realloc(buf, (size_t)ncap);
            if (!nb) {
                free(buf);
                return gf_ctx_set_error(ctx, GF_ERR_NOMEM,
                                        "idx: %s: out of memory for %lld bytes", path,
                                        (long long)ncap);
            }
            buf = nb;
            cap = ncap;
        }
        /* in steps, so the ratio is watched as the data streams: the header's total may pass
         * while a run of zeros inflates a thousandfold (and a FIFO has no size to check) */
        const int64_t ask = cap - got < IDX_STEP ? cap - got : IDX_STEP;
        int64_t r = read_full(f, buf + got, ask);
        if (r > 0) got += r;
        if (gz && gf_gzip_over_ratio(ctx, got, (int64_t)gzoffset(f))) {
            free(buf);
            return ratio_error(ctx, path, got, (int64_t)gzoffset(f), "inflated");
        }
        if (r < ask) break; /* the end of the file, or an error (short_read says which) */
    }
    if (got != want) {
        free(buf);
        char s[GF_SHAPE_BUF];
        char what[GF_SHAPE_BUF + 16];
        snprintf(what, sizeof what, "data of %s", gf_dims_str(out->ndim, out->dims, s, sizeof s));
        return short_read(ctx, f, path, what, want, got);
    }
    /* The file must end here. Reading on also checks the gzip trailer (CRC and length). */
    uint8_t extra[256];
    int64_t more = read_full(f, extra, sizeof extra);
    if (more != 0) {
        free(buf);
        if (more > 0)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                    "idx: %s: unexpected bytes after the %lld data bytes the "
                                    "header declares",
                                    path, (long long)want);
        return short_read(ctx, f, path, "trailer", 0, 0);
    }
    int err = Z_OK;
    const char *msg = gzerror(f, &err);
    if (err != Z_OK) {
        free(buf);
        if (err == Z_BUF_ERROR)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                    "idx: %s: truncated gzip stream (the data is complete but "
                                    "the gzip trailer is missing)",
                                    path);
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "idx: %s: corrupt gzip data (%s)", path,
                                zmsg(msg, path));
    }
    out->data = buf;
    return GF_OK;
}

/* ---- the decompressed cache ------------------------------------------------------------
 * Inflating Fashion-MNIST's training images takes ~0.2 s, most of a training run's start-up;
 * an uncompressed copy mapped into memory costs nothing until its pages are touched. */

#define CACHE_MIN_BYTES ((int64_t)1 << 20) /* smaller payloads inflate in a few milliseconds */

static bool cache_enabled(void) {
    const char *e = getenv("GRAFT_IDX_CACHE");
    return !(e && strcmp(e, "0") == 0);
}

/* The cache folder: $GRAFT_CACHE_DIR/idx, $XDG_CACHE_HOME/graft/idx or ~/.cache/graft/idx. */
static bool cache_dir(char *out, size_t cap) {
    const char *g = getenv("GRAFT_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"),
               *h = getenv("HOME");
    int n;
    if (g && *g) n = snprintf(out, cap, "%s/idx", g);
    else if (x && *x) n = snprintf(out, cap, "%s/graft/idx", x);
    else if (h && *h) n = snprintf(out, cap, "%s/.cache/graft/idx", h);
    else return false;
    return n > 0 && (size_t)n < cap;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* The cache file of the source `path`: named after its file name and a hash of its resolved
 * path, size, modification time and inode, so a changed or replaced source gets a new name. */
static bool cache_path(const char *path, char *out, size_t cap) {
    char dir[PATH_MAX], real[PATH_MAX];
    struct stat st;
    if (!cache_enabled() || !cache_dir(dir, sizeof dir) || !realpath(path, real) ||
        stat(real, &st) != 0)
        return false;
    uint64_t h = fnv1a(0xcbf29ce484222325ull, real, strlen(real));
    const int64_t key[5] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec,
                            (int64_t)st.st_mtim.tv_nsec, (int64_t)st.st_ino,
                            (int64_t)st.st_dev};
    h = fnv1a(h, key, sizeof key);
    const char *base = strrchr(real, '/');
    base = base ? base + 1 : real;
    size_t len = strlen(base);
    if (len > 3 && strcmp(base + len - 3, ".gz") == 0) len -= 3;
    if (len > 100) len = 100;
    int n = snprintf(out, cap, "%s/%.*s-%016llx.idx", dir, (int)len, base, (unsigned long long)h);
    return n > 0 && (size_t)n < cap;
}

static size_t header_bytes(int ndim) { return 4 + 4 * (size_t)ndim; }

/* Maps a cache file; false (nothing changed) unless it is a complete uint8 IDX file whose
 * size is exactly what its header declares. */
static bool cache_map(const char *cpath, int64_t max_bytes, gf_idx *out) {
    int fd = open(cpath, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 8;
    void *map = ok ? mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
                   : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) return false;
    const uint8_t *b = map;
    const size_t len = (size_t)st.st_size;
    const int ndim = b[3];
    ok = b[0] == 0 && b[1] == 0 && b[2] == 0x08 && ndim >= 1 && ndim <= GF_IDX_MAX_DIMS &&
         len >= header_bytes(ndim);
    gf_idx x;
    memset(&x, 0, sizeof x);
    x.ndim = ndim;
    x.numel = 1;
    for (int i = 0; ok && i < ndim; i++) {
        const uint8_t *d = b + 4 + 4 * i;
        x.dims[i] = ((int64_t)d[0] << 24) | ((int64_t)d[1] << 16) | ((int64_t)d[2] << 8) | d[3];
        ok = x.dims[i] == 0 || x.numel <= max_bytes / x.dims[i];
        x.numel *= x.dims[i];
    }
    if (!ok || (size_t)x.numel != len - header_bytes(ndim)) {
        munmap(map, len);
        return false;
    }
    x.data = (uint8_t *)map + header_bytes(ndim);
    x.mapping = map;
    x.mapping_len = len;
    *out = x;
    return true;
}

/* gf_atomic_write's callback: x as a plain IDX file. */
static bool write_idx(int fd, void *arg) {
    const gf_idx *x = arg;
    uint8_t head[4 + 4 * GF_IDX_MAX_DIMS] = {0, 0, 0x08, (uint8_t)x->ndim};
    for (int i = 0; i < x->ndim; i++)
        for (int k = 0; k < 4; k++) head[4 + 4 * i + k] = (uint8_t)(x->dims[i] >> (24 - 8 * k));
    return gf_write_all(fd, head, header_bytes(x->ndim)) &&
           gf_write_all(fd, x->data, (size_t)x->numel);
}

/* Writes `x` to the cache as a plain IDX file, atomically, so a reader never sees half of
 * one. Best effort: any failure leaves no file and no error. */
static void cache_store(const char *cpath, const gf_idx *x) {
    char dir[PATH_MAX];
    if (!cache_dir(dir, sizeof dir)) return;
    for (char *p = dir + 1; *p; p++) { /* mkdir -p */
        if (*p != '/') continue;
        *p = '\0';
        mkdir(dir, 0755);
        *p = '/';
    }
    mkdir(dir, 0755);
    gf_atomic_write(NULL, cpath, write_idx, (void *)x);
}

static bool is_gzip_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char m[2] = {0, 0};
    bool gz = fread(m, 1, 2, f) == 2 && m[0] == 0x1f && m[1] == 0x8b;
    fclose(f);
    return gz;
}

gf_status gf_idx_read(gf_ctx *ctx, const char *path, gf_idx *out) {
    if (!out) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_idx_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_idx_read: path is NULL");
    char cpath[PATH_MAX + 160];
    const bool gz = is_gzip_file(path);
    const bool cacheable = gz && cache_path(path, cpath, sizeof cpath);
    if (cacheable && cache_map(cpath, gf_ctx_limits(ctx)->data_bytes, out)) return GF_OK;
    struct stat sb;
    const int64_t csize = gz && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : -1;
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return gf_ctx_set_error(ctx, errno ? GF_ERR_IO : GF_ERR_NOMEM, "idx: %s: cannot open: %s",
                                path, errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1u << 17);
    gf_idx tmp;
    memset(&tmp, 0, sizeof tmp);
    gf_status s = read_header(ctx, f, path, &tmp);
    if (s == GF_OK) s = check_ratio(ctx, path, &tmp, csize);
    if (s == GF_OK) s = read_payload(ctx, f, path, gz, &tmp);
    gzclose(f);
    if (s != GF_OK) return s;
    if (cacheable && tmp.numel >= CACHE_MIN_BYTES) cache_store(cpath, &tmp);
    *out = tmp;
    return GF_OK;
}

void gf_idx_free(gf_idx *x) {
    if (!x) return;
    if (x->mapping) munmap(x->mapping, x->mapping_len);
    else free(x->data);
    memset(x, 0, sizeof *x);
}

/* ---- datasets ------------------------------------------------------------------------- */

void gf_dataset_free(gf_dataset *d) {
    if (!d) return;
    if (d->images_mapping) munmap(d->images_mapping, d->images_mapping_len);
    else free(d->images);
    free(d->labels);
    free(d);
}

gf_dataset *gf_dataset_load_idx(gf_ctx *ctx, const char *images_path, const char *labels_path) {
    gf_idx im, lb;
    memset(&lb, 0, sizeof lb);
    if (gf_idx_read(ctx, images_path, &im) != GF_OK) return NULL;
    char s[GF_SHAPE_BUF];
    if (im.ndim != 3) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                         "idx: %s: an images file needs 3 dimensions [n, rows, cols], found %s",
                         images_path, gf_dims_str(im.ndim, im.dims, s, sizeof s));
        goto fail;
    }
    if (im.dims[0] < 1 || im.dims[1] < 1 || im.dims[2] < 1) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "idx: %s: empty images file (shape %s)",
                         images_path, gf_dims_str(im.ndim, im.dims, s, sizeof s));
        goto fail;
    }
    if (gf_idx_read(ctx, labels_path, &lb) != GF_OK) goto fail;
    if (lb.ndim != 1) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                         "idx: %s: a labels file needs 1 dimension [n], found %s", labels_path,
                         gf_dims_str(lb.ndim, lb.dims, s, sizeof s));
        goto fail;
    }
    if (lb.dims[0] != im.dims[0]) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                         "idx: %lld images in %s but %lld labels in %s",
                         (long long)im.dims[0], images_path, (long long)lb.dims[0],
                         labels_path);
        goto fail;
    }
    gf_dataset *d = malloc(sizeof *d);
    if (!d) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "idx: out of memory for a dataset");
        goto fail;
    }
    d->n = im.dims[0];
    d->rows = im.dims[1];
    d->cols = im.dims[2];
    d->images = im.data;
    d->images_mapping = im.mapping;
    d->images_mapping_len = im.mapping_len;
    d->labels = lb.data;
    if (lb.mapping) { /* labels are small; keep gf_dataset's one mapping field for images */
        d->labels = malloc((size_t)lb.numel);
        if (!d->labels) {
            free(d);
            gf_ctx_set_error(ctx, GF_ERR_NOMEM, "idx: out of memory for %lld labels",
                             (long long)lb.numel);
            goto fail;
        }
        memcpy(d->labels, lb.data, (size_t)lb.numel);
        gf_idx_free(&lb);
    }
    int maxl = 0;
    for (int64_t i = 0; i < d->n; i++)
        if (d->labels[i] > maxl) maxl = d->labels[i];
    d->n_classes = maxl + 1;
    return d;
fail:
    gf_idx_free(&im);
    gf_idx_free(&lb);
    return NULL;
}

static const char *const known_sets[] = {"fashion-mnist", "mnist"};

gf_status gf_dataset_paths(gf_ctx *ctx, const char *name, gf_dataset_split split, char *images_path,
                           char *labels_path, size_t cap) {
    if (!name || !images_path || !labels_path || cap == 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_dataset_paths: NULL argument");
    if (split != GF_DATASET_TRAIN && split != GF_DATASET_TEST)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_dataset_paths: bad split %d",
                                (int)split);
    const char *pre = split == GF_DATASET_TRAIN ? "train" : "t10k";
    char dir[4096];
    if (strchr(name, '/')) {
        size_t n = strlen(name);
        while (n > 1 && name[n - 1] == '/') n--; /* "data/" and "data" name the same folder */
        if (n >= sizeof dir) goto too_long;
        memcpy(dir, name, n);
        dir[n] = '\0';
    } else {
        bool known = false;
        for (size_t i = 0; i < sizeof known_sets / sizeof known_sets[0]; i++)
            if (strcmp(name, known_sets[i]) == 0) known = true;
        if (!known)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "unknown dataset '%s' (known: fashion-mnist, mnist, or a "
                                    "folder path containing '/')",
                                    name);
        const char *root = getenv("GRAFT_DATA_DIR");
        const bool from_env = root && *root;
        if (!from_env) root = "/usr/share/datasets";
        if ((size_t)snprintf(dir, sizeof dir, "%s/%s", root, name) >= sizeof dir) goto too_long;
        /* GRAFT_DATA_DIR may also point straight at the folder holding the files */
        if (from_env) {
            char probe[4200];
            snprintf(probe, sizeof probe, "%s/%s-images-idx3-ubyte.gz", dir, pre);
            FILE *f = fopen(probe, "rb");
            if (f) fclose(f);
            else {
                snprintf(probe, sizeof probe, "%s/%s-images-idx3-ubyte.gz", root, pre);
                f = fopen(probe, "rb");
                if (f) {
                    fclose(f);
                    snprintf(dir, sizeof dir, "%s", root);
                }
            }
        }
    }
    if ((size_t)snprintf(images_path, cap, "%s/%s-images-idx3-ubyte.gz", dir, pre) >= cap ||
        (size_t)snprintf(labels_path, cap, "%s/%s-labels-idx1-ubyte.gz", dir, pre) >= cap)
        goto too_long;
    return GF_OK;
too_long:
    return gf_ctx_set_error(ctx, GF_ERR_INVALID, "dataset path for '%s' is too long", name);
}

gf_dataset *gf_dataset_load(gf_ctx *ctx, const char *name, gf_dataset_split split) {
    char ip[4352], lp[4352];
    if (gf_dataset_paths(ctx, name, split, ip, lp, sizeof ip) != GF_OK) return NULL;
    gf_dataset *d = gf_dataset_load_idx(ctx, ip, lp);
    if (!d) return NULL;
    if (!strchr(name, '/')) { /* MNIST family: 28x28, ten classes */
        if (d->rows != 28 || d->cols != 28) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "idx: %s: %s images are 28x28, found %lldx%lld",
                             ip, name, (long long)d->rows, (long long)d->cols);
            gf_dataset_free(d);
            return NULL;
        }
        if (d->n_classes > 10) {
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "idx: %s: label %d outside %s's classes 0..9",
                             lp, d->n_classes - 1, name);
            gf_dataset_free(d);
            return NULL;
        }
    }
    return d;
}

gf_status gf_dataset_batch(gf_ctx *ctx, const gf_dataset *d, const int64_t *idx, int64_t n,
                           float mean, float std, gf_tensor *x, gf_tensor *y) {
    const char *op = "gf_dataset_batch";
    if (!d || !idx || !x)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: NULL dataset, index list or x", op);
    if (!gf_check_tensor(ctx, op, "x", x, GF_F32)) return ctx->status;
    if (y && !gf_check_tensor(ctx, op, "y", y, GF_I64)) return ctx->status;
    int64_t pix = d->rows * d->cols;
    char s[GF_SHAPE_BUF];
    if (n < 1 || x->ndim < 1 || x->shape[0] != n || x->numel != n * pix ||
        !gf_tensor_is_contiguous(x))
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                                "%s: x must be a contiguous float32 tensor [%lld, %lld] or "
                                "[%lld, 1, %lld, %lld], got %s",
                                op, (long long)n, (long long)pix, (long long)n,
                                (long long)d->rows, (long long)d->cols,
                                gf_shape_str(x, s, sizeof s));
    if (y && (y->numel != n || !gf_tensor_is_contiguous(y)))
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE,
                                "%s: y must be a contiguous int64 tensor of %lld elements, got %s",
                                op, (long long)n, gf_shape_str(y, s, sizeof s));
    if (!(std > 0.0f) || !isfinite(std) || !isfinite(mean))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: need finite mean and std > 0, got %g, %g",
                                op, (double)mean, (double)std);
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= d->n)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "%s: index %lld at position %lld is outside [0, %lld)", op,
                                    (long long)idx[i], (long long)i, (long long)d->n);
    /* As torchvision: ToTensor divides by 255, Normalize subtracts and divides; vectorised
     * divisions give exactly those floats. The images come in random order from a dataset
     * far larger than the caches, so each one's bytes are prefetched two images ahead. */
    float *xd = gf_f32(x);
    const int level = gf_vec_level();
#pragma omp parallel for num_threads(gf_threads_for(ctx, n * pix)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        if (i + 2 < n) gf_vec_prefetch(d->images + idx[i + 2] * pix, pix);
        gf_vec_u8_to_f32(level, d->images + idx[i] * pix, xd + i * pix, pix, mean, std);
    }
    if (y)
        for (int64_t i = 0; i < n; i++) gf_i64(y)[i] = d->labels[idx[i]];
    return GF_OK;
}
