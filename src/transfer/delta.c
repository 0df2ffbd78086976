/* Delta checkpoints: only the tensors of a fine-tuned model that differ from its base file, tied
 * to that base by the SHA-256 of its bytes; applying one checks the hash before loading anything. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "transfer/transfer_internal.h"

#define META_DELTA "graft.delta"
#define META_HASH "graft.base_sha256"
#define META_BASE "graft.base_file"
#define META_COUNT "graft.delta_tensors"
#define META_SAME "graft.base_unchanged"

gf_status gf_transfer_sha256_file(gf_ctx *ctx, const char *path, char hex[65]) {
    if (!path || !hex) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "sha256: NULL path or output");
    FILE *f = fopen(path, "rb");
    if (!f) return gf_ctx_set_error(ctx, GF_ERR_IO, "sha256: cannot open %s: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool bad = !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1;
    unsigned char buf[1 << 16];
    size_t n;
    while (!bad && (n = fread(buf, 1, sizeof buf, f)) > 0) bad = EVP_DigestUpdate(md, buf, n) != 1;
    bad = bad || ferror(f) != 0;
    fclose(f);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    bad = bad || EVP_DigestFinal_ex(md, d, &len) != 1 || len != 32;
    EVP_MD_CTX_free(md);
    if (bad) return gf_ctx_set_error(ctx, GF_ERR_IO, "sha256: cannot hash %s", path);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return GF_OK;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* True when t holds exactly the values a load of info would put there. */
static bool same_as_base(gf_ctx *ctx, const gf_st_file *f, const gf_st_info *info,
                         const gf_tensor *t, bool *oom) {
    gf_tensor *b = gf_st_load(ctx, f, info);
    if (!b) {
        *oom = true;
        return false;
    }
    bool same = b->dtype == t->dtype && b->numel == t->numel;
    size_t bytes = (size_t)t->numel * gf_dtype_size(t->dtype);
    if (same && gf_tensor_is_contiguous(t)) {
        same = memcmp(b->data, t->data, bytes) == 0;
    } else if (same) {
        void *tmp = malloc(bytes ? bytes : 1);
        if (!tmp) *oom = true;
        else {
            gf_copy_out(t, tmp);
            same = memcmp(b->data, tmp, bytes) == 0;
            free(tmp);
        }
    }
    gf_tensor_free(b);
    return same;
}

gf_status gf_transfer_delta_save(gf_ctx *ctx, const gf_module *m, const char *base_path,
                           const gf_weights_options *base_map, const char *out_path,
                           int *n_written) {
    const char *op = "delta save";
    if (n_written) *n_written = 0;
    if (!m || !base_path || !out_path)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: NULL module or path", op);
    char hex[65];
    if (gf_transfer_sha256_file(ctx, base_path, hex) != GF_OK) return gf_ctx_status(ctx);
    gf_st_file *f = gf_st_open(ctx, base_path);
    if (!f) return gf_ctx_status(ctx);
    gf_weights_options o = base_map ? *base_map : gf_weights_default_options();
    o.strict = false;
    o.dry_run = true;
    gf_weights_report *r = NULL;
    gf_named_tensors *list = NULL;
    gf_st_writer *w = NULL;
    /* the plan only reads m; the cast is for the load API's signature */
    gf_status st = gf_weights_load_file_with(ctx, (gf_module *)m, f, &o, &r);
    if (st == GF_OK) list = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    if (list) w = gf_st_writer_new(ctx);
    if (!w) {
        st = gf_ctx_status(ctx);
        goto done;
    }
    int written = 0, unchanged = 0;
    for (int i = 0; i < list->n && st == GF_OK; i++) {
        const gf_weights_key_report *k = &r->keys[i]; /* model keys come first, in the same order */
        const gf_tensor *t = list->items[i].tensor;
        if (k->status == GF_WEIGHTS_KEY_LOADED) {
            bool oom = false;
            const gf_st_info *info = gf_st_find(f, k->file_name ? k->file_name : k->name);
            bool same = info && same_as_base(ctx, f, info, t, &oom);
            if (oom) {
                st = gf_ctx_status(ctx) ? gf_ctx_status(ctx)
                                        : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", op);
                break;
            }
            if (same) {
                unchanged++;
                continue;
            }
        }
        st = gf_st_writer_add(w, list->items[i].name, t, t->dtype == GF_F32 ? GF_ST_F32 : GF_ST_I64);
        written++;
    }
    char count[32], same[32];
    snprintf(count, sizeof count, "%d", written);
    snprintf(same, sizeof same, "%d", unchanged);
    if (st == GF_OK) st = gf_st_writer_set_metadata(w, META_DELTA, "1");
    if (st == GF_OK) st = gf_st_writer_set_metadata(w, META_HASH, hex);
    if (st == GF_OK) st = gf_st_writer_set_metadata(w, META_BASE, base_name(base_path));
    if (st == GF_OK) st = gf_st_writer_set_metadata(w, META_COUNT, count);
    if (st == GF_OK) st = gf_st_writer_set_metadata(w, META_SAME, same);
    if (st == GF_OK) st = gf_st_writer_save(w, out_path);
    if (st == GF_OK && n_written) *n_written = written;
done:
    gf_st_writer_free(w);
    gf_named_tensors_free(list);
    gf_weights_report_free(r);
    gf_st_close(f);
    return st;
}

/* Opens a delta and checks that base_path is its base; NULL with a ctx error otherwise. */
static gf_st_file *open_verified(gf_ctx *ctx, const char *delta_path, const char *base_path) {
    if (!delta_path || !base_path) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "delta apply: NULL path");
        return NULL;
    }
    gf_st_file *d = gf_st_open(ctx, delta_path);
    if (!d) return NULL;
    const char *want = gf_st_metadata_get(d, META_HASH);
    const char *kind = gf_st_metadata_get(d, META_DELTA);
    if (!want || !kind || strcmp(kind, "1") != 0) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                         "%s: not a graft delta checkpoint (no " META_DELTA "=1 and " META_HASH
                         " in its __metadata__)", delta_path);
        gf_st_close(d);
        return NULL;
    }
    char have[65];
    if (gf_transfer_sha256_file(ctx, base_path, have) != GF_OK) {
        gf_st_close(d);
        return NULL;
    }
    if (strcmp(want, have) != 0) {
        const char *made = gf_st_metadata_get(d, META_BASE);
        gf_ctx_set_error(ctx, GF_ERR_STATE,
                         "%s was made against a base with sha256 %s%s%s%s, but %s has sha256 %s; "
                         "refusing to apply it (nothing was loaded)", delta_path, want,
                         made ? " (" : "", made ? made : "", made ? ")" : "", base_path, have);
        gf_st_close(d);
        return NULL;
    }
    return d;
}

/* Loads every tensor of the delta into m, or nothing when one does not fit. */
static gf_status apply_open(gf_ctx *ctx, gf_module *m, gf_st_file *d) {
    gf_weights_options o = gf_weights_default_options();
    o.dry_run = true;
    gf_weights_report *r = NULL;
    gf_status st = gf_weights_load_file_with(ctx, m, d, &o, &r);
    for (int i = 0; st == GF_OK && i < r->n; i++) {
        const gf_weights_key_report *k = &r->keys[i];
        if (k->status == GF_WEIGHTS_KEY_LOADED || k->status == GF_WEIGHTS_KEY_MISSING) continue;
        char shapes[128] = "";
        if (k->status != GF_WEIGHTS_KEY_UNEXPECTED)
            snprintf(shapes, sizeof shapes, " (model %s, delta %s %s)", k->model_shape,
                     k->file_dtype, k->file_shape);
        st = gf_ctx_set_error(ctx, k->status == GF_WEIGHTS_KEY_SHAPE ? GF_ERR_SHAPE : GF_ERR_FORMAT,
                              "%s: delta tensor '%s' is %s%s in %s; nothing was loaded",
                              gf_st_path(d), k->name,
                              k->status == GF_WEIGHTS_KEY_UNEXPECTED ? "not in the model"
                                                             : gf_weights_key_status_name(k->status),
                              shapes, gf_module_type(m));
    }
    gf_weights_report_free(r);
    if (st != GF_OK) return st;
    o.dry_run = false;
    return gf_weights_load_file_with(ctx, m, d, &o, NULL);
}

gf_status gf_transfer_delta_apply(gf_ctx *ctx, gf_module *m, const char *delta_path,
                            const char *base_path) {
    if (!m) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "delta apply: module is NULL");
    gf_st_file *d = open_verified(ctx, delta_path, base_path);
    if (!d) return gf_ctx_status(ctx);
    gf_status st = apply_open(ctx, m, d);
    gf_st_close(d);
    return st;
}

gf_status gf_transfer_delta_load(gf_ctx *ctx, gf_module *m, const char *base_path,
                           const gf_weights_options *base_opt, const char *delta_path) {
    if (!m) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "delta load: module is NULL");
    gf_st_file *d = open_verified(ctx, delta_path, base_path);
    if (!d) return gf_ctx_status(ctx);
    gf_weights_options o = base_opt ? *base_opt : gf_weights_default_options();
    o.dry_run = false;
    gf_status st = gf_weights_load_with(ctx, m, base_path, &o, NULL);
    if (st == GF_OK) st = apply_open(ctx, m, d);
    gf_st_close(d);
    return st;
}
