/* Checkpoints: weights, optimizer and schedule state, RNG, data position and run counters in
 * one atomically written safetensors file, and a strict reader that restores all or nothing.
 * The directory side (naming, rotation) is checkpoint_dir.c. */
#define _POSIX_C_SOURCE 200809L
#include "graft/checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gf_ckpt_progress gf_ckpt_progress_init(void) {
    gf_ckpt_progress p;
    memset(&p, 0, sizeof p);
    p.best_metric = NAN;
    p.metric = NAN;
    return p;
}

static bool starts(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool reserved(const char *name) {
    return starts(name, "model.") || starts(name, "optim.") || starts(name, "sched.") ||
           starts(name, "graft.");
}

/* ---- canonical text forms of the small values ------------------------------------------- */

static void fmt_rng(char *buf, size_t n, const gf_rng *r) {
    snprintf(buf, n, "key=%016llx counter=%016llx block=%08x,%08x,%08x,%08x lane=%u",
             (unsigned long long)r->key, (unsigned long long)r->counter, (unsigned)r->block[0],
             (unsigned)r->block[1], (unsigned)r->block[2], (unsigned)r->block[3],
             (unsigned)r->lane);
}

/* Parses fmt_rng's text; only its exact canonical form is accepted. */
static bool parse_rng(const char *s, gf_rng *out) {
    unsigned long long key, counter;
    unsigned b[4], lane;
    int used = -1;
    if (sscanf(s, "key=%16llx counter=%16llx block=%8x,%8x,%8x,%8x lane=%u%n", &key, &counter,
               &b[0], &b[1], &b[2], &b[3], &lane, &used) != 7 || used < 0 || s[used] || lane > 4)
        return false;
    gf_rng r;
    memset(&r, 0, sizeof r);
    r.key = key;
    r.counter = counter;
    for (int i = 0; i < 4; i++) r.block[i] = b[i];
    r.lane = lane;
    char again[160];
    fmt_rng(again, sizeof again, &r);
    if (strcmp(again, s) != 0) return false;
    *out = r;
    return true;
}

/* Counts in a checkpoint (epochs, batches, steps) stay below 2^53: far beyond any run, and
 * incrementing them can never overflow. */
#define MAX_COUNT ((int64_t)1 << 53)

typedef struct pos {
    int64_t epoch, batch, batches;
} pos;

static void fmt_pos(char *buf, size_t n, const pos *p) {
    snprintf(buf, n, "epoch=%lld batch=%lld batches=%lld", (long long)p->epoch,
             (long long)p->batch, (long long)p->batches);
}

static bool parse_pos(const char *s, pos *out) {
    long long e, b, nb;
    int used = -1;
    if (sscanf(s, "epoch=%lld batch=%lld batches=%lld%n", &e, &b, &nb, &used) != 3 || used < 0 ||
        s[used] || e < 0 || b < 0 || nb < 1 || b > nb || e >= MAX_COUNT || nb >= MAX_COUNT)
        return false;
    pos p = {e, b, nb};
    char again[96];
    fmt_pos(again, sizeof again, &p);
    if (strcmp(again, s) != 0) return false;
    *out = p;
    return true;
}

static bool parse_i64(const char *s, int64_t *out) {
    if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9'))) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE) return false;
    *out = v;
    return true;
}

static bool parse_f64(const char *s, double *out) {
    if (!s || !*s || *s == ' ' || *s == '\t' || *s == '\n') return false;
    char *end;
    double v = strtod(s, &end);
    if (*end) return false;
    *out = v;
    return true;
}

/* ---- saving ------------------------------------------------------------------------------- */

static gf_status set_i64(gf_st_writer *w, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return gf_st_writer_set_metadata(w, key, buf);
}

static gf_status set_f64(gf_st_writer *w, const char *key, double v) {
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    return gf_st_writer_set_metadata(w, key, buf);
}

gf_status gf_ckpt_save(gf_ctx *ctx, const char *path, const gf_ckpt_parts *parts) {
    if (!path || !parts || !parts->model)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "checkpoint save: NULL path, parts or model");
    const gf_state_list *ex = parts->extra;
    for (int i = 0; i < gf_state_list_count(ex); i++)
        if (reserved(gf_state_list_name(ex, i)))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "checkpoint save %s: extra tensor '%s' "
                                    "uses a reserved prefix", path, gf_state_list_name(ex, i));
    for (int i = 0; i < gf_state_list_meta_count(ex); i++)
        if (reserved(gf_state_list_meta_key(ex, i)))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "checkpoint save %s: extra metadata '%s' "
                                    "uses a reserved prefix", path, gf_state_list_meta_key(ex, i));
    gf_st_writer *w = gf_st_writer_new(ctx);
    gf_state_list *l = gf_state_list_new(ctx);
    gf_named_tensors *mt = gf_module_named_tensors(ctx, parts->model, GF_STATE_ALL);
    gf_status st = (w && l && mt) ? GF_OK : gf_ctx_status(ctx);
    char *key = NULL;
    for (int i = 0; st == GF_OK && mt && i < mt->n; i++) {
        const gf_tensor *t = mt->items[i].tensor;
        size_t n = strlen(mt->items[i].name) + 8;
        char *k = realloc(key, n);
        if (!k) {
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "checkpoint save %s: out of memory", path);
            break;
        }
        key = k;
        snprintf(key, n, "model.%s", mt->items[i].name);
        st = gf_st_writer_add(w, key, t, t->dtype == GF_F32 ? GF_ST_F32 : GF_ST_I64);
    }
    free(key);
    if (st == GF_OK && parts->opt) st = gf_optim_export(ctx, parts->opt, l);
    if (st == GF_OK && parts->sched) st = gf_sched_export(ctx, parts->sched, l);
    if (st == GF_OK) st = gf_state_list_to_writer(ctx, l, w);
    if (st == GF_OK && ex) st = gf_state_list_to_writer(ctx, ex, w);
    const gf_ckpt_progress *p = &parts->progress;
    const int64_t step = parts->opt ? gf_optim_steps(parts->opt) : p->global_step;
    char buf[160];
    if (st == GF_OK) st = set_i64(w, "graft.checkpoint.version", GF_CKPT_VERSION);
    if (st == GF_OK) st = gf_st_writer_set_metadata(w, "graft.library", "graft " GF_VERSION_STRING);
    if (st == GF_OK) st = set_i64(w, "graft.epoch", p->epoch);
    if (st == GF_OK) st = set_i64(w, "graft.batch", p->batch);
    if (st == GF_OK) st = set_i64(w, "graft.global_step", step);
    if (st == GF_OK) st = set_f64(w, "graft.best_metric", p->best_metric);
    if (st == GF_OK) st = set_i64(w, "graft.best_epoch", p->best_epoch);
    if (st == GF_OK) st = set_i64(w, "graft.bad_epochs", p->bad_epochs);
    if (st == GF_OK) st = set_f64(w, "graft.metric", p->metric);
    if (st == GF_OK)
        st = gf_st_writer_set_metadata(w, "graft.settings", parts->settings ? parts->settings : "{}");
    if (st == GF_OK && parts->rng) {
        fmt_rng(buf, sizeof buf, parts->rng);
        st = gf_st_writer_set_metadata(w, "graft.rng", buf);
    }
    for (int v = 0; v < 2 && st == GF_OK; v++) {
        gf_loader *ld = v ? parts->val : parts->train;
        if (!ld) continue;
        pos q = {gf_loader_epoch(ld), gf_loader_batch_index(ld), gf_loader_batches_per_epoch(ld)};
        fmt_pos(buf, sizeof buf, &q);
        st = gf_st_writer_set_metadata(w, v ? "graft.loader.val" : "graft.loader.train", buf);
    }
    if (st == GF_OK) st = gf_st_writer_save(w, path);
    gf_st_writer_free(w);
    gf_state_list_free(l); /* after the save: it borrows the optimizer's buffers */
    gf_named_tensors_free(mt);
    return st;
}

/* ---- opening ------------------------------------------------------------------------------ */

struct gf_ckpt {
    gf_st_file *f;
    gf_ckpt_progress progress;
    const char *settings;
    bool has_optim, has_sched, has_rng, has_loader[2];
    gf_rng rng;
    pos loader[2];
};

void gf_ckpt_close(gf_ckpt *ck) {
    if (!ck) return;
    gf_st_close(ck->f);
    free(ck);
}

const gf_st_file *gf_ckpt_file(const gf_ckpt *ck) { return ck ? ck->f : NULL; }
const gf_ckpt_progress *gf_ckpt_get_progress(const gf_ckpt *ck) { return ck ? &ck->progress : NULL; }
const char *gf_ckpt_settings(const gf_ckpt *ck) { return ck ? ck->settings : NULL; }
bool gf_ckpt_has_optim(const gf_ckpt *ck) { return ck && ck->has_optim; }
bool gf_ckpt_has_sched(const gf_ckpt *ck) { return ck && ck->has_sched; }
bool gf_ckpt_has_rng(const gf_ckpt *ck) { return ck && ck->has_rng; }
bool gf_ckpt_has_loader(const gf_ckpt *ck, bool val) { return ck && ck->has_loader[val ? 1 : 0]; }

static const char *const known_keys[] = {
    "graft.checkpoint.version", "graft.library", "graft.epoch", "graft.batch",
    "graft.global_step", "graft.best_metric", "graft.best_epoch", "graft.bad_epochs",
    "graft.metric", "graft.settings", "graft.rng", "graft.loader.train", "graft.loader.val",
};

static gf_status ck_err(gf_ctx *ctx, const gf_ckpt *ck, gf_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static gf_status ck_err(gf_ctx *ctx, const gf_ckpt *ck, gf_status s, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gf_ctx_set_error(ctx, s, "checkpoint %s: %s", gf_st_path(ck->f), msg);
}

static gf_status need_i64(gf_ctx *ctx, gf_ckpt *ck, const char *key, int64_t min, int64_t *out) {
    const char *v = gf_st_metadata_get(ck->f, key);
    if (!v) return ck_err(ctx, ck, GF_ERR_FORMAT, "missing metadata '%s'", key);
    if (!parse_i64(v, out) || *out < min || *out >= MAX_COUNT)
        return ck_err(ctx, ck, GF_ERR_FORMAT, "'%s' = '%.60s' is not an integer in [%lld, 2^53)",
                      key, v, (long long)min);
    return GF_OK;
}

static gf_status need_f64(gf_ctx *ctx, gf_ckpt *ck, const char *key, double *out) {
    const char *v = gf_st_metadata_get(ck->f, key);
    if (!v) return ck_err(ctx, ck, GF_ERR_FORMAT, "missing metadata '%s'", key);
    if (!parse_f64(v, out))
        return ck_err(ctx, ck, GF_ERR_FORMAT, "'%s' = '%.60s' is not a number", key, v);
    return GF_OK;
}

static gf_status validate(gf_ctx *ctx, gf_ckpt *ck) {
    const gf_st_file *f = ck->f;
    const char *ver = gf_st_metadata_get(f, "graft.checkpoint.version");
    if (!ver)
        return ck_err(ctx, ck, GF_ERR_FORMAT, "not a graft checkpoint (no 'graft.checkpoint.version' "
                      "metadata)");
    int64_t v;
    if (!parse_i64(ver, &v) || v != GF_CKPT_VERSION)
        return ck_err(ctx, ck, GF_ERR_FORMAT, "version '%.40s'; this graft reads version %d", ver,
                      GF_CKPT_VERSION);
    for (int i = 0; i < gf_st_metadata_count(f); i++) {
        const char *k = gf_st_metadata_key(f, i);
        if (!starts(k, "graft.")) continue;
        bool known = false;
        for (size_t j = 0; j < sizeof known_keys / sizeof known_keys[0] && !known; j++)
            known = strcmp(k, known_keys[j]) == 0;
        if (!known) return ck_err(ctx, ck, GF_ERR_FORMAT, "unknown metadata key '%.200s'", k);
    }
    gf_ckpt_progress *p = &ck->progress;
    gf_status st;
    if ((st = need_i64(ctx, ck, "graft.epoch", 0, &p->epoch)) != GF_OK ||
        (st = need_i64(ctx, ck, "graft.batch", 0, &p->batch)) != GF_OK ||
        (st = need_i64(ctx, ck, "graft.global_step", 0, &p->global_step)) != GF_OK ||
        (st = need_f64(ctx, ck, "graft.best_metric", &p->best_metric)) != GF_OK ||
        (st = need_i64(ctx, ck, "graft.best_epoch", 0, &p->best_epoch)) != GF_OK ||
        (st = need_i64(ctx, ck, "graft.bad_epochs", 0, &p->bad_epochs)) != GF_OK ||
        (st = need_f64(ctx, ck, "graft.metric", &p->metric)) != GF_OK)
        return st;
    if (p->best_epoch > p->epoch)
        return ck_err(ctx, ck, GF_ERR_FORMAT, "'graft.best_epoch' %lld is after 'graft.epoch' %lld",
                      (long long)p->best_epoch, (long long)p->epoch);
    ck->settings = gf_st_metadata_get(f, "graft.settings");
    if (!ck->settings) return ck_err(ctx, ck, GF_ERR_FORMAT, "missing metadata 'graft.settings'");
    cJSON *js = cJSON_Parse(ck->settings);
    bool obj = cJSON_IsObject(js);
    cJSON_Delete(js);
    if (!obj) return ck_err(ctx, ck, GF_ERR_FORMAT, "'graft.settings' is not a JSON object");
    const char *r = gf_st_metadata_get(f, "graft.rng");
    ck->has_rng = r != NULL;
    if (r && !parse_rng(r, &ck->rng))
        return ck_err(ctx, ck, GF_ERR_FORMAT, "'graft.rng' = '%.120s' is not 'key=<16 hex> "
                      "counter=<16 hex> block=<4 x 8 hex> lane=<0..4>'", r);
    for (int i = 0; i < 2; i++) {
        const char *k = i ? "graft.loader.val" : "graft.loader.train";
        const char *s = gf_st_metadata_get(f, k);
        ck->has_loader[i] = s != NULL;
        if (s && !parse_pos(s, &ck->loader[i]))
            return ck_err(ctx, ck, GF_ERR_FORMAT, "'%s' = '%.80s' is not 'epoch=E batch=B "
                          "batches=N' with 0 <= B <= N, N >= 1", k, s);
    }
    ck->has_optim = gf_st_metadata_get(f, "optim.kind") != NULL;
    ck->has_sched = gf_st_metadata_get(f, "sched.kind") != NULL;
    for (int i = 0; i < gf_st_metadata_count(f); i++) {
        const char *k = gf_st_metadata_key(f, i);
        if ((starts(k, "optim.") && !ck->has_optim) || (starts(k, "sched.") && !ck->has_sched))
            return ck_err(ctx, ck, GF_ERR_FORMAT, "metadata '%.200s' without '%s'", k,
                          starts(k, "optim.") ? "optim.kind" : "sched.kind");
    }
    for (int i = 0; i < gf_st_count(f); i++) {
        const gf_st_info *t = gf_st_get(f, i);
        /* an empty tensor may still claim huge dimensions, whose strides would overflow */
        int64_t span = 1;
        for (int d = 0; d < t->ndim; d++) {
            const int64_t n = t->shape[d];
            if (n == 0) continue;
            if (n >= MAX_COUNT || span > (MAX_COUNT - 1) / n)
                return ck_err(ctx, ck, GF_ERR_FORMAT, "tensor '%.200s': the product of its nonzero "
                              "dimensions exceeds 2^53", t->name);
            span *= n;
        }
        if (starts(t->name, "model.")) {
            if (t->dtype != GF_ST_F32 && t->dtype != GF_ST_I64)
                return ck_err(ctx, ck, GF_ERR_FORMAT, "tensor '%.200s' is %s; checkpoints store "
                              "F32 or I64 exactly", t->name, gf_st_dtype_name(t->dtype));
        } else if (starts(t->name, "optim.")) {
            if (!starts(t->name, "optim.state.") || t->dtype != GF_ST_F32 || !ck->has_optim)
                return ck_err(ctx, ck, GF_ERR_FORMAT, "tensor '%.200s' (%s) is not F32 optimizer "
                              "state under 'optim.state.' with 'optim.kind'", t->name,
                              gf_st_dtype_name(t->dtype));
        } else if (reserved(t->name)) {
            return ck_err(ctx, ck, GF_ERR_FORMAT, "tensor '%.200s' under a reserved prefix",
                          t->name);
        }
    }
    /* the optimizer's and schedule's counters: bounded, so that stepping on cannot overflow */
    for (int i = 0; i < gf_st_metadata_count(f); i++) {
        const char *k = gf_st_metadata_key(f, i), *val = gf_st_metadata_value(f, i);
        const char *dot = strrchr(k, '.');
        bool counter = starts(k, "optim.step.") ||
                       (starts(k, "sched.") && dot &&
                        (!strcmp(dot, ".last_epoch") || !strcmp(dot, ".step_count") ||
                         !strcmp(dot, ".num_bad_epochs") || !strcmp(dot, ".cooldown_counter")));
        int64_t c;
        if (counter && (!parse_i64(val, &c) || c <= -MAX_COUNT || c >= MAX_COUNT))
            return ck_err(ctx, ck, GF_ERR_FORMAT, "'%.200s' = '%.40s' is not an integer of "
                          "magnitude below 2^53", k, val);
    }
    if (ck->has_optim) {
        int64_t steps;
        if ((st = need_i64(ctx, ck, "optim.steps", 0, &steps)) != GF_OK) return st;
        if (steps != p->global_step)
            return ck_err(ctx, ck, GF_ERR_FORMAT, "'optim.steps' %lld differs from "
                          "'graft.global_step' %lld", (long long)steps, (long long)p->global_step);
    }
    return GF_OK;
}

static gf_ckpt *finish_open(gf_ctx *ctx, gf_st_file *f) {
    if (!f) return NULL;
    gf_ckpt *ck = calloc(1, sizeof *ck);
    if (!ck) {
        gf_st_close(f);
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "checkpoint: out of memory");
        return NULL;
    }
    ck->f = f;
    if (validate(ctx, ck) != GF_OK) {
        gf_ckpt_close(ck);
        return NULL;
    }
    return ck;
}

gf_ckpt *gf_ckpt_open(gf_ctx *ctx, const char *path) {
    if (!path) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "checkpoint open: NULL path");
        return NULL;
    }
    return finish_open(ctx, gf_st_open(ctx, path));
}

gf_ckpt *gf_ckpt_open_memory(gf_ctx *ctx, const void *buf, size_t len, const char *label) {
    return finish_open(ctx, gf_st_open_memory(ctx, buf, len, label ? label : "<memory>"));
}

/* ---- restoring ---------------------------------------------------------------------------- */

/* Every state_dict key of m as "model.<key>" with its dtype and shape, and nothing else. */
static gf_status check_model(gf_ctx *ctx, const gf_ckpt *ck, gf_module *m) {
    gf_named_tensors *mt = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    if (!mt) return gf_ctx_status(ctx);
    gf_status st = GF_OK;
    char key[512], a[96], b[96];
    int missing = 0;
    const char *first_missing = NULL;
    for (int i = 0; i < mt->n && st == GF_OK; i++) {
        const gf_tensor *t = mt->items[i].tensor;
        snprintf(key, sizeof key, "model.%s", mt->items[i].name);
        const gf_st_info *info = gf_st_find(ck->f, key);
        if (!info) {
            if (!missing++) first_missing = mt->items[i].name;
            continue;
        }
        bool same = info->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = info->shape[d] == t->shape[d];
        if (!same)
            st = ck_err(ctx, ck, GF_ERR_SHAPE, "tensor '%s' has shape %s, the model's is %s", key,
                        gf_dims_str(info->ndim, info->shape, a, sizeof a),
                        gf_shape_str(t, b, sizeof b));
        else if ((t->dtype == GF_F32) != (info->dtype == GF_ST_F32))
            st = ck_err(ctx, ck, GF_ERR_DTYPE, "tensor '%s' is %s, the model's is %s", key,
                        gf_st_dtype_name(info->dtype), gf_dtype_name(t->dtype));
    }
    if (st == GF_OK && missing)
        st = ck_err(ctx, ck, GF_ERR_FORMAT, "%d model key%s missing, the first 'model.%s' (%d in "
                    "the model)", missing, missing > 1 ? "s are" : " is", first_missing, mt->n);
    for (int i = 0; st == GF_OK && i < gf_st_count(ck->f); i++) {
        const char *name = gf_st_get(ck->f, i)->name;
        if (starts(name, "model.") && !gf_module_tensor(NULL, m, name + 6))
            st = ck_err(ctx, ck, GF_ERR_FORMAT, "unexpected tensor '%.200s': the model (%s) has no "
                        "such key", name, gf_module_type(m));
    }
    gf_named_tensors_free(mt);
    return st;
}

/* A list owning copies of l's tensors and metadata (an optimizer export borrows live buffers
 * that an import frees). */
static gf_state_list *deep_copy(gf_ctx *ctx, const gf_state_list *l) {
    gf_state_list *c = gf_state_list_new(ctx);
    for (int i = 0; c && i < gf_state_list_count(l); i++) {
        const gf_tensor *t = gf_state_list_tensor(l, i);
        gf_tensor *copy = gf_tensor_new(ctx, t->dtype, t->ndim, t->shape);
        if (copy) gf_copy_out(t, copy->data);
        if (!copy || gf_state_list_add(ctx, c, gf_state_list_name(l, i), copy, true) != GF_OK) {
            gf_state_list_free(c);
            return NULL;
        }
    }
    for (int i = 0; c && i < gf_state_list_meta_count(l); i++)
        if (gf_state_list_set_meta(ctx, c, gf_state_list_meta_key(l, i),
                                   gf_state_list_meta_value(l, i)) != GF_OK) {
            gf_state_list_free(c);
            return NULL;
        }
    return c;
}

gf_status gf_ckpt_restore(gf_ctx *ctx, const gf_ckpt *ck, const gf_ckpt_parts *parts) {
    if (!ck || !parts || !parts->model)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "checkpoint restore: NULL checkpoint, parts or "
                                "model");
    /* 1. check everything that can be checked without changing anything */
    if (parts->opt && !ck->has_optim)
        return ck_err(ctx, ck, GF_ERR_FORMAT, "holds no optimizer state ('optim.kind' missing)");
    if (parts->sched && !ck->has_sched)
        return ck_err(ctx, ck, GF_ERR_FORMAT, "holds no schedule state ('sched.kind' missing)");
    if (parts->rng && !ck->has_rng)
        return ck_err(ctx, ck, GF_ERR_FORMAT, "holds no RNG state ('graft.rng' missing)");
    gf_loader *lds[2] = {parts->train, parts->val};
    for (int i = 0; i < 2; i++) {
        if (!lds[i]) continue;
        const char *k = i ? "graft.loader.val" : "graft.loader.train";
        if (!ck->has_loader[i]) return ck_err(ctx, ck, GF_ERR_FORMAT, "holds no '%s'", k);
        if (ck->loader[i].batches != gf_loader_batches_per_epoch(lds[i]))
            return ck_err(ctx, ck, GF_ERR_INVALID, "'%s' has %lld batches per epoch, the loader "
                          "%lld (another dataset or batch size?)", k,
                          (long long)ck->loader[i].batches,
                          (long long)gf_loader_batches_per_epoch(lds[i]));
    }
    gf_status st = check_model(ctx, ck, parts->model);
    if (st != GF_OK) return st;

    /* 2. optimizer and schedule: each import is atomic; a backup undoes the optimizer's when
     * the schedule's fails */
    gf_state_list *ol = NULL, *sl = NULL, *backup = NULL, *exported = NULL, *sbackup = NULL;
    if (parts->opt) {
        exported = gf_state_list_new(ctx);
        ol = gf_state_list_from_file(ctx, ck->f, "optim.");
        if (!exported || !ol || gf_optim_export(ctx, parts->opt, exported) != GF_OK ||
            !(backup = deep_copy(ctx, exported))) {
            st = gf_ctx_status(ctx);
            goto done;
        }
        gf_state_list_free(exported); /* before the import frees what it borrows */
        exported = NULL;
        if ((st = gf_optim_import(ctx, parts->opt, ol)) != GF_OK) goto done;
    }
    if (parts->sched) {
        sl = gf_state_list_from_file(ctx, ck->f, "sched.");
        sbackup = gf_state_list_new(ctx); /* metadata only: nothing borrowed */
        if (!sl || !sbackup || gf_sched_export(ctx, parts->sched, sbackup) != GF_OK)
            st = gf_ctx_status(ctx);
        else
            st = gf_sched_import(ctx, parts->sched, sl);
        if (st != GF_OK) {
            if (backup) gf_optim_import(ctx, parts->opt, backup);
            goto done;
        }
    }
    /* 3. loaders (a seek fails only when its thread cannot start) */
    pos old[2] = {{0, 0, 0}, {0, 0, 0}};
    for (int i = 0; i < 2; i++)
        if (lds[i]) old[i] = (pos){gf_loader_epoch(lds[i]), gf_loader_batch_index(lds[i]), 0};
    for (int i = 0; i < 2; i++) {
        if (!lds[i]) continue;
        if ((st = gf_loader_seek(ctx, lds[i], ck->loader[i].epoch, ck->loader[i].batch)) != GF_OK) {
            if (backup) gf_optim_import(ctx, parts->opt, backup);
            if (sbackup) gf_sched_import(ctx, parts->sched, sbackup);
            for (int j = 0; j < i; j++)
                if (lds[j]) gf_loader_seek(ctx, lds[j], old[j].epoch, old[j].batch);
            goto done;
        }
    }
    /* 4. weights and RNG: checked above, cannot fail */
    {
        gf_named_tensors *mt = gf_module_named_tensors(ctx, parts->model, GF_STATE_ALL);
        if (!mt) {
            st = gf_ctx_status(ctx);
            goto done;
        }
        char key[512];
        for (int i = 0; i < mt->n && st == GF_OK; i++) {
            snprintf(key, sizeof key, "model.%s", mt->items[i].name);
            st = gf_st_read_into(ctx, ck->f, gf_st_find(ck->f, key), mt->items[i].tensor);
        }
        gf_named_tensors_free(mt);
    }
    if (st == GF_OK && parts->rng) *parts->rng = ck->rng;
done:
    gf_state_list_free(exported);
    gf_state_list_free(ol);
    gf_state_list_free(sl);
    gf_state_list_free(backup);
    gf_state_list_free(sbackup);
    return st;
}
