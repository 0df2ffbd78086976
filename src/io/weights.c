/* Module state_dict <-> safetensors by name, with a report of every key. */
#define _POSIX_C_SOURCE 200809L
#include "graft/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const key_status_names[] = {"loaded", "missing", "unexpected", "shape mismatch",
                                               "dtype mismatch"};

const char *gf_key_status_name(gf_key_status s) {
    return s <= GF_KEY_KIND ? key_status_names[s] : "?";
}

void gf_load_report_free(gf_load_report *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) free(r->keys[i].name);
    free(r->keys);
    free(r);
}

void gf_load_report_print(const gf_load_report *r, FILE *out, bool all) {
    for (int i = 0; i < r->n; i++) {
        const gf_key_report *k = &r->keys[i];
        if (k->status == GF_KEY_LOADED && !all) continue;
        fprintf(out, "  %-14s %s", gf_key_status_name(k->status), k->name);
        if (k->status == GF_KEY_SHAPE || k->status == GF_KEY_KIND)
            fprintf(out, "  (model %s, file %s %s)", k->model_shape, k->file_dtype, k->file_shape);
        else if (k->status == GF_KEY_UNEXPECTED)
            fprintf(out, "  (file %s %s)", k->file_dtype, k->file_shape);
        else if (k->status == GF_KEY_MISSING)
            fprintf(out, "  (model %s)", k->model_shape);
        fputc('\n', out);
    }
    fprintf(out, "  %d loaded, %d missing, %d unexpected, %d mismatched\n", r->loaded, r->missing,
            r->unexpected, r->mismatched);
}

static bool is_float_st(gf_st_dtype dt) {
    return dt == GF_ST_F16 || dt == GF_ST_BF16 || dt == GF_ST_F32 || dt == GF_ST_F64;
}

static bool same_dims(const gf_tensor *t, const gf_st_info *info) {
    if (t->ndim != info->ndim) return false;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != info->shape[i]) return false;
    return true;
}

/* Builds the report; returns NULL on out-of-memory. */
static gf_load_report *plan(const gf_named_tensors *model, const gf_st_file *f) {
    gf_load_report *r = calloc(1, sizeof *r);
    int cap = model->n + gf_st_count(f);
    if (r) r->keys = calloc((size_t)(cap ? cap : 1), sizeof *r->keys);
    if (!r || !r->keys) {
        free(r);
        return NULL;
    }
    char *used = calloc((size_t)gf_st_count(f) + 1, 1);
    if (!used) {
        gf_load_report_free(r);
        return NULL;
    }
    for (int i = 0; i < model->n; i++) {
        const gf_named_tensor *nt = &model->items[i];
        gf_key_report *k = &r->keys[r->n++];
        k->name = strdup(nt->name);
        gf_shape_str(nt->tensor, k->model_shape, sizeof k->model_shape);
        const gf_st_info *info = gf_st_find(f, nt->name);
        if (!info) {
            k->status = GF_KEY_MISSING;
            r->missing++;
            continue;
        }
        used[info - gf_st_get(f, 0)] = 1;
        gf_dims_str(info->ndim, info->shape, k->file_shape, sizeof k->file_shape);
        snprintf(k->file_dtype, sizeof k->file_dtype, "%s", gf_st_dtype_name(info->dtype));
        if ((nt->tensor->dtype == GF_F32) != is_float_st(info->dtype)) {
            k->status = GF_KEY_KIND;
            r->mismatched++;
        } else if (!same_dims(nt->tensor, info)) {
            k->status = GF_KEY_SHAPE;
            r->mismatched++;
        } else {
            k->status = GF_KEY_LOADED;
            r->loaded++;
        }
    }
    for (int j = 0; j < gf_st_count(f); j++) {
        if (used[j]) continue;
        const gf_st_info *info = gf_st_get(f, j);
        gf_key_report *k = &r->keys[r->n++];
        k->name = strdup(info->name);
        k->status = GF_KEY_UNEXPECTED;
        gf_dims_str(info->ndim, info->shape, k->file_shape, sizeof k->file_shape);
        snprintf(k->file_dtype, sizeof k->file_dtype, "%s", gf_st_dtype_name(info->dtype));
        r->unexpected++;
    }
    free(used);
    for (int i = 0; i < r->n; i++)
        if (!r->keys[i].name) {
            gf_load_report_free(r);
            return NULL;
        }
    return r;
}

gf_status gf_weights_load_file(gf_ctx *ctx, gf_module *m, const gf_st_file *f,
                               const gf_load_options *opt, gf_load_report **report) {
    if (report) *report = NULL;
    if (!m || !f) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "load weights: NULL module or file");
    gf_named_tensors *model = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    if (!model) return gf_ctx_status(ctx);
    gf_load_report *r = plan(model, f);
    if (!r) {
        gf_named_tensors_free(model);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory planning the load", gf_st_path(f));
    }
    gf_status st = GF_OK;
    bool strict = opt && opt->strict;
    if (strict && (r->missing || r->unexpected || r->mismatched)) {
        /* name the first offending key; the report lists them all */
        for (int i = 0; i < r->n; i++) {
            const gf_key_report *k = &r->keys[i];
            if (k->status == GF_KEY_LOADED) continue;
            st = gf_ctx_set_error(ctx, k->status == GF_KEY_SHAPE ? GF_ERR_SHAPE : GF_ERR_FORMAT,
                                  "%s: strict load refused: '%s' is %s%s%s%s%s (%d missing, %d unexpected, "
                                  "%d mismatched in all); nothing was loaded",
                                  gf_st_path(f), k->name, gf_key_status_name(k->status),
                                  k->status == GF_KEY_SHAPE ? ": model " : "",
                                  k->status == GF_KEY_SHAPE ? k->model_shape : "",
                                  k->status == GF_KEY_SHAPE ? ", file " : "",
                                  k->status == GF_KEY_SHAPE ? k->file_shape : "", r->missing,
                                  r->unexpected, r->mismatched);
            break;
        }
    } else {
        for (int i = 0; i < model->n && st == GF_OK; i++)
            if (r->keys[i].status == GF_KEY_LOADED)
                st = gf_st_read_into(ctx, f, gf_st_find(f, model->items[i].name), model->items[i].tensor);
    }
    gf_named_tensors_free(model);
    if (report) *report = r;
    else gf_load_report_free(r);
    return st;
}

gf_status gf_weights_load(gf_ctx *ctx, gf_module *m, const char *path, const gf_load_options *opt,
                          gf_load_report **report) {
    if (report) *report = NULL;
    gf_st_file *f = gf_st_open(ctx, path);
    if (!f) return gf_ctx_status(ctx);
    gf_status st = gf_weights_load_file(ctx, m, f, opt, report);
    gf_st_close(f);
    return st;
}

gf_status gf_weights_save(gf_ctx *ctx, const gf_module *m, const char *path, const char *const *meta,
                          int n_meta) {
    if (!m) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "save weights: NULL module");
    gf_named_tensors *list = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    if (!list) return gf_ctx_status(ctx);
    gf_st_writer *w = gf_st_writer_new(ctx);
    gf_status st = w ? GF_OK : gf_ctx_status(ctx);
    for (int i = 0; st == GF_OK && i < list->n; i++) {
        const gf_tensor *t = list->items[i].tensor;
        st = gf_st_writer_add(w, list->items[i].name, t, t->dtype == GF_F32 ? GF_ST_F32 : GF_ST_I64);
    }
    for (int i = 0; st == GF_OK && i < n_meta; i++)
        st = gf_st_writer_set_metadata(w, meta[2 * i], meta[2 * i + 1]);
    if (st == GF_OK) st = gf_st_writer_save(w, path);
    gf_st_writer_free(w);
    gf_named_tensors_free(list);
    return st;
}
