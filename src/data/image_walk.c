/* The ImageFolder walk: class folders, then every image file under each, in torchvision's order
 * (sorted(os.walk()): folders by full path, each folder's files by name). Unlike os.walk with
 * followlinks=True it must end and count each file once on any tree it is given: every folder
 * and file is keyed by device and inode, links that stay inside the root are never followed
 * (what they point to is read where it lies, under its own class), and links that leave it only
 * when the caller asks. */
#define _XOPEN_SOURCE 700
#include "data/images_internal.h"
#include "data/ds_internal.h"
#include "core/internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- a set of (device, inode) --------------------------------------------------------------- */

typedef struct id_key {
    uint64_t dev, ino;
} id_key;

typedef struct id_set {
    id_key *k;
    unsigned char *used;
    size_t cap, n;
} id_set;

static size_t id_hash(id_key k, size_t cap) {
    uint64_t h = (k.ino ^ (k.dev * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return (size_t)(h ^ (h >> 31)) & (cap - 1);
}

static bool id_grow(id_set *s) {
    size_t cap = s->cap ? 2 * s->cap : 1024;
    id_set t = {calloc(cap, sizeof *t.k), calloc(cap, 1), cap, 0};
    if (!t.k || !t.used) {
        free(t.k);
        free(t.used);
        return false;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->used[i]) continue;
        size_t j = id_hash(s->k[i], cap);
        while (t.used[j]) j = (j + 1) & (cap - 1);
        t.k[j] = s->k[i];
        t.used[j] = 1;
    }
    t.n = s->n;
    free(s->k);
    free(s->used);
    *s = t;
    return true;
}

/* 1: added, 0: already there, -1: out of memory. */
static int id_add(id_set *s, const struct stat *st) {
    if (2 * (s->n + 1) > s->cap && !id_grow(s)) return -1;
    id_key k = {(uint64_t)st->st_dev, (uint64_t)st->st_ino};
    size_t j = id_hash(k, s->cap);
    for (; s->used[j]; j = (j + 1) & (s->cap - 1))
        if (s->k[j].dev == k.dev && s->k[j].ino == k.ino) return 0;
    s->k[j] = k;
    s->used[j] = 1;
    s->n++;
    return 1;
}

/* ---- lists ----------------------------------------------------------------------------------- */

typedef struct strlist {
    char **s;
    int64_t n, cap;
} strlist;

static bool sl_push(strlist *l, char *s) {
    if (!s) return false;
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 16;
        char **p = realloc(l->s, (size_t)cap * sizeof *p);
        if (!p) {
            free(s);
            return false;
        }
        l->s = p;
        l->cap = cap;
    }
    l->s[l->n++] = s;
    return true;
}

static int cmp_strp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 2);
    if (!s) return NULL;
    memcpy(s, a, na);
    s[na] = '/';
    memcpy(s + na + 1, b, nb + 1);
    return s;
}

static const char *const extensions[] = {".jpg", ".jpeg", ".png",  ".ppm",  ".bmp",
                                         ".pgm", ".tif",  ".tiff", ".webp", NULL};

static bool has_ext(const char *const *exts, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; exts[i]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcasecmp(name + n - e, exts[i]) == 0) return true;
    }
    return false;
}

/* ---- one entry -------------------------------------------------------------------------------- */

typedef struct walk {
    gf_ctx *ctx;
    const char *root;
    char *root_real; /* realpath(root): "inside" is measured against it */
    bool follow;
    id_set seen;
    gf_images_report *rep;
    const char *const *exts; /* the file names walked: NULL-terminated suffixes, any case */
} walk;

static bool inside_root(const walk *w, const char *real) {
    size_t n = strlen(w->root_real);
    if (strncmp(real, w->root_real, n) != 0) return false;
    return real[n] == '\0' || real[n] == '/' || (n == 1 && w->root_real[0] == '/');
}

static void note_skip(walk *w, int64_t *counter, const char *path, const char *why,
                      const char *target) {
    (*counter)++;
    if (w->rep->first_skipped[0]) return;
    snprintf(w->rep->first_skipped, sizeof w->rep->first_skipped, "%s (%s%s%s)", path, why,
             target ? " " : "", target ? target : "");
}

typedef enum { E_SKIP, E_DIR, E_FILE, E_ERROR } ekind;

/* What path is, links resolved under the rules above; *st describes the target. For a link the
 * resolved path is returned in *real (malloc'd) when the caller wants it. */
static ekind classify(walk *w, const char *path, struct stat *st, char **real) {
    if (real) *real = NULL;
    if (lstat(path, st) != 0) return E_SKIP; /* vanished since readdir */
    if (S_ISLNK(st->st_mode)) {
        char *r = realpath(path, NULL);
        if (!r || stat(r, st) != 0) {
            note_skip(w, &w->rep->links_broken, path, "a broken link", NULL);
            free(r);
            return E_SKIP;
        }
        bool in = inside_root(w, r), dir = S_ISDIR(st->st_mode);
        if (real) {
            *real = r;
            return dir ? E_DIR : S_ISREG(st->st_mode) ? E_FILE : E_SKIP;
        }
        if (in)
            note_skip(w, &w->rep->links_inside, path, "a link inside the data folder, to", r);
        else if (!w->follow)
            note_skip(w, &w->rep->links_outside, path, "a link leading outside the data folder, to",
                      r);
        free(r);
        if (in || !w->follow) return E_SKIP;
    }
    return S_ISDIR(st->st_mode) ? E_DIR : S_ISREG(st->st_mode) ? E_FILE : E_SKIP;
}

/* ---- folders --------------------------------------------------------------------------------- */

typedef struct file_ent {
    char *name;
    struct stat st;
} file_ent;

typedef struct dir_rec {
    char *path;
    file_ent *files;
    int64_t n, cap;
} dir_rec;

static void dir_free(dir_rec *d) {
    if (!d) return;
    for (int64_t i = 0; i < d->n; i++) free(d->files[i].name);
    free(d->files);
    free(d->path);
    free(d);
}


static bool ents_push(file_ent **v, int64_t *n, int64_t *cap, char *name, const struct stat *st) {
    if (!name) return false;
    if (*n == *cap) {
        int64_t c = *cap ? 2 * *cap : 16;
        file_ent *p = realloc(*v, (size_t)c * sizeof *p);
        if (!p) {
            free(name);
            return false;
        }
        *v = p;
        *cap = c;
    }
    (*v)[*n].name = name;
    (*v)[(*n)++].st = *st;
    return true;
}

static gf_status oom(walk *w) {
    return gf_ctx_set_error(w->ctx, GF_ERR_NOMEM, "images: %s: out of memory", w->root);
}

/* Reads one folder: its image files (names) into d, its subfolders (full paths) into sub. */
static gf_status read_dir(walk *w, dir_rec *d, dir_rec *sub) {
    errno = 0;
    DIR *dd = opendir(d->path);
    if (!dd)
        return gf_ctx_set_error(w->ctx, GF_ERR_IO, "images: cannot open folder %s: %s", d->path,
                                strerror(errno));
    gf_status s = GF_OK;
    struct dirent *e;
    while (s == GF_OK && (e = readdir(dd))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *full = join(d->path, e->d_name);
        struct stat st;
        ekind k = full ? classify(w, full, &st, NULL) : E_ERROR;
        if (k == E_ERROR) {
            s = oom(w);
        } else if (k == E_DIR) {
            if (!ents_push(&sub->files, &sub->n, &sub->cap, full, &st)) s = oom(w);
            full = NULL;
        } else if (k == E_FILE && has_ext(w->exts, e->d_name) &&
                   !ents_push(&d->files, &d->n, &d->cap, gf_ds_strdup(e->d_name), &st)) {
            s = oom(w);
        }
        free(full);
    }
    closedir(dd);
    return s;
}

static int cmp_dir(const void *a, const void *b) {
    return strcmp((*(dir_rec *const *)a)->path, (*(dir_rec *const *)b)->path);
}

static int cmp_ent(const void *a, const void *b) {
    return strcmp(((const file_ent *)a)->name, ((const file_ent *)b)->name);
}

static void ents_free(file_ent *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) free(v[i].name);
    free(v);
}

/* Subfolders not seen before onto the stack, so that they are popped in name order (which of two
 * links to one folder is kept must not depend on readdir's order). Takes sub's names. */
static gf_status push_subdirs(walk *w, dir_rec *sub, file_ent **stack, int64_t *n, int64_t *cap) {
    if (sub->n > 1) qsort(sub->files, (size_t)sub->n, sizeof *sub->files, cmp_ent);
    gf_status s = GF_OK;
    for (int64_t i = 0; i < sub->n && s == GF_OK; i++) {
        int added = id_add(&w->seen, &sub->files[i].st);
        if (added < 0) {
            s = oom(w);
        } else if (added == 0) {
            note_skip(w, &w->rep->duplicates, sub->files[i].name, "a folder already read", NULL);
            free(sub->files[i].name);
            sub->files[i].name = NULL;
        }
    }
    for (int64_t i = sub->n; i-- > 0 && s == GF_OK;) {
        if (sub->files[i].name && !ents_push(stack, n, cap, sub->files[i].name, &sub->files[i].st))
            s = oom(w);
        sub->files[i].name = NULL;
    }
    return s;
}

/* The image files of the folders in name order, each file (device and inode) once: of two names
 * for one file the first in torchvision's order is kept. */
static gf_status emit_files(walk *w, dir_rec **dirs, int64_t n_dirs, strlist *out) {
    if (n_dirs > 1) qsort(dirs, (size_t)n_dirs, sizeof *dirs, cmp_dir);
    gf_status s = GF_OK;
    for (int64_t i = 0; i < n_dirs && s == GF_OK; i++) {
        dir_rec *d = dirs[i];
        if (d->n > 1) qsort(d->files, (size_t)d->n, sizeof *d->files, cmp_ent);
        for (int64_t j = 0; j < d->n && s == GF_OK; j++) {
            char *path = join(d->path, d->files[j].name);
            int added = path ? id_add(&w->seen, &d->files[j].st) : -1;
            if (added == 0) {
                note_skip(w, &w->rep->duplicates, path, "a file already read", NULL);
                free(path);
            } else if (added < 0 || !sl_push(out, path)) {
                if (added < 0) free(path);
                s = oom(w);
            }
        }
    }
    return s;
}

/* Every image file under class_dir (already in w->seen), in torchvision's order. */
static gf_status walk_class(walk *w, const char *class_dir, strlist *out) {
    dir_rec **dirs = NULL;
    int64_t n_dirs = 0, cap = 0, n_stack = 0, cap_stack = 0;
    file_ent *stack = NULL;
    struct stat none;
    memset(&none, 0, sizeof none);
    gf_status s = ents_push(&stack, &n_stack, &cap_stack, gf_ds_strdup(class_dir), &none)
                      ? GF_OK
                      : oom(w);
    while (s == GF_OK && n_stack > 0) {
        if (n_dirs == cap) {
            int64_t c = cap ? 2 * cap : 16;
            dir_rec **p = realloc(dirs, (size_t)c * sizeof *p);
            if (!p) {
                s = oom(w);
                break;
            }
            dirs = p;
            cap = c;
        }
        dir_rec *d = calloc(1, sizeof *d), sub;
        if (!d) {
            s = oom(w);
            break;
        }
        d->path = stack[--n_stack].name;
        dirs[n_dirs++] = d;
        memset(&sub, 0, sizeof sub);
        s = read_dir(w, d, &sub);
        if (s == GF_OK) s = push_subdirs(w, &sub, &stack, &n_stack, &cap_stack);
        ents_free(sub.files, sub.n);
    }
    if (s == GF_OK) s = emit_files(w, dirs, n_dirs, out);
    for (int64_t i = 0; i < n_dirs; i++) dir_free(dirs[i]);
    free(dirs);
    ents_free(stack, n_stack);
    return s;
}

/* ---- the root ---------------------------------------------------------------------------------- */

/* A class folder that is a symbolic link: an error unless it leads outside root and links may be
 * followed (labels depend on the set of classes, so a class is never silently dropped). */
static gf_status class_link(walk *w, const char *path, const char *real) {
    if (inside_root(w, real))
        return gf_ctx_set_error(w->ctx, GF_ERR_FORMAT,
                                "images: class folder %s is a symbolic link to %s, inside the "
                                "data folder (its images would count twice)",
                                path, real);
    if (!w->follow)
        return gf_ctx_set_error(w->ctx, GF_ERR_FORMAT,
                                "images: class folder %s is a symbolic link leading outside the "
                                "data folder, to %s (set follow_links / --follow-links to read it)",
                                path, real);
    return GF_OK;
}

/* The class folders of root, sorted, each recorded in w->seen before any class is walked so a
 * link from one class cannot pull in another's images. */
static gf_status list_classes(walk *w, strlist *classes) {
    errno = 0;
    DIR *dd = opendir(w->root);
    if (!dd)
        return gf_ctx_set_error(w->ctx, GF_ERR_IO, "images: cannot open folder %s: %s", w->root,
                                strerror(errno));
    gf_status s = GF_OK;
    struct dirent *e;
    while (s == GF_OK && (e = readdir(dd))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *full = join(w->root, e->d_name), *real = NULL;
        struct stat st;
        ekind k = full ? classify(w, full, &st, &real) : E_ERROR;
        if (k == E_ERROR) s = oom(w);
        else if (k == E_DIR && real) s = class_link(w, full, real);
        if (s == GF_OK && k == E_DIR) {
            if (!sl_push(classes, full)) s = oom(w);
            full = NULL;
        }
        free(full);
        free(real);
    }
    closedir(dd);
    if (s != GF_OK) return s;
    if (classes->n > 1) qsort(classes->s, (size_t)classes->n, sizeof *classes->s, cmp_strp);
    for (int64_t k = 0; k < classes->n && s == GF_OK; k++) {
        struct stat st;
        int added = stat(classes->s[k], &st) == 0 ? id_add(&w->seen, &st) : 1;
        if (added < 0) s = oom(w);
        else if (added == 0)
            s = gf_ctx_set_error(w->ctx, GF_ERR_FORMAT,
                                 "images: class folder %s is a folder already read as another "
                                 "class (same device and inode)",
                                 classes->s[k]);
    }
    return s;
}

static gf_status walk_all(walk *w, gf_img_tree *t) {
    struct stat st;
    w->root_real = realpath(w->root, NULL);
    if (!w->root_real || stat(w->root_real, &st) != 0 || !S_ISDIR(st.st_mode))
        return gf_ctx_set_error(w->ctx, GF_ERR_IO, "images: %s is not a readable folder", w->root);
    if (id_add(&w->seen, &st) < 0) return oom(w);
    strlist classes = {0}, files = {0};
    gf_status s = list_classes(w, &classes);
    t->classes = classes.s;
    t->n_classes = classes.n;
    if (s != GF_OK) return s;
    if (classes.n <= 0)
        return gf_ctx_set_error(w->ctx, GF_ERR_FORMAT,
                                "images: %s has no class folders (expected root/<class>/<image>)",
                                w->root);
    if (classes.n > 100000)
        return gf_ctx_set_error(w->ctx, GF_ERR_FORMAT, "images: %s has %lld class folders",
                                w->root, (long long)classes.n);
    if (!(t->starts = calloc((size_t)classes.n + 1, sizeof *t->starts))) return oom(w);
    for (int64_t k = 0; k < classes.n && s == GF_OK; k++) {
        t->starts[k] = files.n;
        s = walk_class(w, classes.s[k], &files);
        if (s == GF_OK && files.n == t->starts[k]) {
            char names[256] = "";
            for (int i = 0; w->exts[i]; i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                         i ? " " : "", w->exts[i]);
            s = gf_ctx_set_error(w->ctx, GF_ERR_FORMAT,
                                 "%s: class folder %s holds no %s files (%s)%s%s",
                                 w->exts == extensions ? "images" : "audio", classes.s[k],
                                 w->exts == extensions ? "image" : "audio", names,
                                 w->rep->first_skipped[0] ? "; first skipped: " : "",
                                 w->rep->first_skipped);
        }
    }
    t->starts[classes.n] = files.n;
    t->files = files.s;
    t->n_files = files.n;
    w->rep->files = files.n;
    return s;
}

gf_status gf_img_walk(gf_ctx *ctx, const char *root, bool follow_links, gf_img_tree *tree,
                      gf_images_report *rep) {
    return gf_img_walk_ext(ctx, root, follow_links, extensions, tree, rep);
}

gf_status gf_img_walk_ext(gf_ctx *ctx, const char *root, bool follow_links,
                          const char *const *exts, gf_img_tree *tree, gf_images_report *rep) {
    memset(tree, 0, sizeof *tree);
    memset(rep, 0, sizeof *rep);
    walk w = {ctx, root, NULL, follow_links, {0}, rep, exts};
    gf_status s = walk_all(&w, tree);
    free(w.root_real);
    free(w.seen.k);
    free(w.seen.used);
    if (s != GF_OK) gf_img_tree_free(tree);
    return s;
}

void gf_img_tree_free(gf_img_tree *t) {
    for (int64_t i = 0; i < t->n_classes; i++) free(t->classes[i]);
    for (int64_t i = 0; i < t->n_files; i++) free(t->files[i]);
    free(t->classes);
    free(t->files);
    free(t->starts);
    memset(t, 0, sizeof *t);
}

gf_status gf_images_list(gf_ctx *ctx, const char *root, bool follow_links, char ***paths,
                         int64_t *n, gf_images_report *report) {
    return gf_img_list_ext(ctx, root, follow_links, extensions, paths, n, report);
}

gf_status gf_img_list_ext(gf_ctx *ctx, const char *root, bool follow_links,
                          const char *const *exts, char ***paths, int64_t *n,
                          gf_images_report *report) {
    gf_images_report none;
    gf_images_report *rep = report ? report : &none;
    memset(rep, 0, sizeof *rep);
    if (paths) *paths = NULL;
    if (n) *n = 0;
    if (!root || !paths || !n)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_images_list: NULL folder or output");
    walk w = {ctx, root, NULL, follow_links, {0}, rep, exts};
    strlist files = {0};
    struct stat st;
    gf_status s;
    w.root_real = realpath(root, NULL);
    if (!w.root_real || stat(w.root_real, &st) != 0 || !S_ISDIR(st.st_mode))
        s = gf_ctx_set_error(ctx, GF_ERR_IO, "images: %s is not a readable folder", root);
    else if (id_add(&w.seen, &st) < 0)
        s = oom(&w);
    else /* the root walked as one class folder is: every image under it, in that order */
        s = walk_class(&w, root, &files);
    free(w.root_real);
    free(w.seen.k);
    free(w.seen.used);
    if (s != GF_OK) {
        for (int64_t i = 0; i < files.n; i++) free(files.s[i]);
        free(files.s);
        return s;
    }
    rep->files = files.n;
    *paths = files.s;
    *n = files.n;
    return GF_OK;
}
