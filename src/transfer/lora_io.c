/* LoRA adapter files in PEFT's layout (include/graft/lora.h): adapter_model.safetensors with
 * base_model.model.<path>.lora_A/B.weight keys and adapter_config.json, written and checked. */
#define _POSIX_C_SOURCE 200809L
#include "transfer/lora_internal.h"
#include "graft/safetensors.h"
#include "io/io_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEFT_PREFIX "base_model.model."
#define CONFIG_NAME "adapter_config.json"
#define WEIGHTS_NAME "adapter_model.safetensors"

/* ---- saving (PEFT's save_pretrained layout) ------------------------------------------------ */

/* dir + "/" + name into buf; false when it does not fit. */
static bool join_path(char *buf, size_t n, const char *dir, const char *name) {
    return snprintf(buf, n, "%s/%s", dir, name) < (int)n;
}

/* v as the shortest decimal that reads back as the same float (0.05f -> 0.05). */
static double short_decimal(float v) {
    char s[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, (double)v);
        if (strtof(s, NULL) == v) return strtod(s, NULL);
    }
    return (double)v;
}

/* gf_atomic_write's callback: a text file. */
static bool write_text(int fd, void *arg) {
    const char *text = arg;
    return gf_write_all(fd, text, strlen(text));
}

/* Writes text to path atomically, refusing a path that is not a regular file. */
static gf_status write_atomic(gf_ctx *ctx, const char *path, const char *text) {
    return gf_atomic_write(ctx, path, write_text, (void *)text);
}

static gf_status save_config(gf_ctx *ctx, const mod_list *l, const char *path, const char *base) {
    const lora_layer *L = gf_module_user(l->e[0].m);
    /* PEFT writes its config with sorted keys; these are the LoraConfig fields graft sets. */
    cJSON *o = cJSON_CreateObject();
    cJSON *targets = cJSON_CreateArray();
    bool ok = o && targets;
    for (int i = 0; ok && i < l->n; i++) {
        cJSON *s = cJSON_CreateString(l->e[i].path);
        ok = s && cJSON_AddItemToArray(targets, s);
    }
    ok = ok && cJSON_AddObjectToObject(o, "alpha_pattern") &&
         (base ? cJSON_AddStringToObject(o, "base_model_name_or_path", base)
               : cJSON_AddNullToObject(o, "base_model_name_or_path")) &&
         cJSON_AddStringToObject(o, "bias", "none") && cJSON_AddFalseToObject(o, "fan_in_fan_out") &&
         cJSON_AddTrueToObject(o, "inference_mode") && cJSON_AddTrueToObject(o, "init_lora_weights") &&
         cJSON_AddNullToObject(o, "layers_pattern") && cJSON_AddNullToObject(o, "layers_to_transform") &&
         cJSON_AddNumberToObject(o, "lora_alpha", short_decimal(L->alpha)) &&
         cJSON_AddNumberToObject(o, "lora_dropout", short_decimal(L->dropout)) &&
         cJSON_AddNullToObject(o, "modules_to_save") && cJSON_AddStringToObject(o, "peft_type", "LORA") &&
         cJSON_AddNumberToObject(o, "r", L->r) && cJSON_AddObjectToObject(o, "rank_pattern") &&
         cJSON_AddNullToObject(o, "revision");
    if (ok) {
        ok = cJSON_AddItemToObject(o, "target_modules", targets);
        targets = NULL;
    }
    ok = ok && cJSON_AddNullToObject(o, "task_type") && cJSON_AddFalseToObject(o, "use_dora") &&
         cJSON_AddFalseToObject(o, "use_rslora");
    char *text = ok ? cJSON_Print(o) : NULL;
    cJSON_Delete(targets);
    cJSON_Delete(o);
    if (!text) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "lora save: out of memory building %s", path);
    gf_status st = write_atomic(ctx, path, text);
    cJSON_free(text);
    return st;
}

gf_status gf_lora_save(gf_ctx *ctx, const gf_module *model, const char *dir, const char *base_model) {
    const char *op = "lora save";
    if (!model || !dir || !dir[0])
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s is NULL or empty", op, model ? "dir" : "model");
    char wpath[4096], cpath[4096];
    if (!join_path(wpath, sizeof wpath, dir, WEIGHTS_NAME) || !join_path(cpath, sizeof cpath, dir, CONFIG_NAME))
        return gf_ctx_set_error(ctx, GF_ERR_IO, "%s: directory name too long: %s", op, dir);
    mod_list l;
    if (!gf_lora_list_modules(ctx, (gf_module *)model, &l)) return ctx->status;
    gf_lora_keep_layers(&l);
    gf_status st = GF_OK;
    if (l.n == 0)
        st = gf_ctx_set_error(ctx, GF_ERR_STATE, "%s: %s has no LoRA layer", op, gf_module_type(model));
    for (int i = 1; i < l.n && st == GF_OK; i++) {
        const lora_layer *a = gf_module_user(l.e[0].m), *b = gf_module_user(l.e[i].m);
        if (a->r != b->r || a->alpha != b->alpha || a->dropout != b->dropout)
            st = gf_ctx_set_error(ctx, GF_ERR_STATE,
                                  "%s: one adapter config cannot hold %s (r=%d, alpha=%g, dropout=%g) "
                                  "and %s (r=%d, alpha=%g, dropout=%g)", op, l.e[0].path, a->r,
                                  (double)a->alpha, (double)a->dropout, l.e[i].path, b->r,
                                  (double)b->alpha, (double)b->dropout);
    }
    if (st == GF_OK && mkdir(dir, 0777) != 0 && errno != EEXIST)
        st = gf_ctx_set_error(ctx, GF_ERR_IO, "%s: cannot create directory %s: %s", op, dir, strerror(errno));
    /* both names checked first, so a refused config never follows a written weights file */
    if (st == GF_OK) st = gf_check_replaceable(ctx, wpath);
    if (st == GF_OK) st = gf_check_replaceable(ctx, cpath);
    gf_st_writer *w = st == GF_OK ? gf_st_writer_new(ctx) : NULL;
    if (st == GF_OK && !w) st = ctx->status != GF_OK ? ctx->status : GF_ERR_NOMEM;
    char key[4200];
    for (int i = 0; i < l.n && st == GF_OK; i++) {
        const lora_layer *L = gf_module_user(l.e[i].m);
        const char *ab[2] = {"lora_A", "lora_B"};
        gf_module *mods[2] = {L->A, L->B};
        for (int k = 0; k < 2 && st == GF_OK; k++) {
            snprintf(key, sizeof key, PEFT_PREFIX "%s.%s.weight", l.e[i].path, ab[k]);
            st = gf_st_writer_add(w, key, gf_module_tensor(NULL, mods[k], "weight"), GF_ST_F32);
        }
    }
    if (st == GF_OK) st = gf_st_writer_set_metadata(w, "format", "pt");
    if (st == GF_OK) st = gf_st_writer_save(w, wpath);
    gf_st_writer_free(w);
    if (st == GF_OK) st = save_config(ctx, &l, cpath, base_model);
    gf_lora_list_free(&l);
    return st;
}

/* ---- loading ------------------------------------------------------------------------------ */

typedef struct lora_config {
    int r;
    double alpha, dropout;
    const cJSON *targets; /* array of strings, or a string (a regex) */
} lora_config;

/* True for null, false, 0, "", [] and {}: a PEFT option left at "off". */
static bool json_off(const cJSON *v) {
    return cJSON_IsNull(v) || cJSON_IsFalse(v) || (cJSON_IsNumber(v) && v->valuedouble == 0) ||
           (cJSON_IsString(v) && !v->valuestring[0]) ||
           ((cJSON_IsArray(v) || cJSON_IsObject(v)) && !v->child);
}

/* Reads and checks adapter_config.json; every key must be one PEFT writes and graft
 * understands (or can ignore), so a feature graft lacks is never dropped silently. */
static gf_status parse_config(gf_ctx *ctx, const char *path, cJSON **root, lora_config *cfg) {
    FILE *f = fopen(path, "rb");
    if (!f) return gf_ctx_set_error(ctx, GF_ERR_IO, "lora load: cannot open %s: %s", path, strerror(errno));
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    bool too_big = buf && n == (1 << 20) - 1 && fgetc(f) != EOF;
    fclose(f);
    if (!buf) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "lora load: out of memory reading %s", path);
    if (too_big) {
        free(buf);
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s is larger than 1 MiB", path);
    }
    buf[n] = '\0';
    *root = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (!cJSON_IsObject(*root))
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s is not a JSON object", path);
    static const char *const ignored[] = {
        "task_type", "auto_mapping", "base_model_name_or_path", "revision", "inference_mode",
        "init_lora_weights", "layers_pattern", "megatron_config", "megatron_core", "loftq_config",
        "eva_config", "corda_config", "runtime_config", "qalora_group_size"};
    static const char *const must_be_off[] = {
        "fan_in_fan_out", "use_rslora", "use_dora", "modules_to_save", "layers_to_transform",
        "rank_pattern", "alpha_pattern", "exclude_modules", "layer_replication", "lora_bias",
        "trainable_token_indices", "target_parameters", "use_qalora"};
    cfg->r = -1;
    cfg->alpha = 8.0;
    cfg->dropout = 0.0;
    cfg->targets = NULL;
    bool have_type = false;
    const cJSON *e;
    cJSON_ArrayForEach(e, *root) {
        const char *k = e->string;
        bool known = false;
        for (size_t i = 0; i < sizeof ignored / sizeof *ignored && !known; i++) known = !strcmp(k, ignored[i]);
        for (size_t i = 0; i < sizeof must_be_off / sizeof *must_be_off && !known; i++)
            if (!strcmp(k, must_be_off[i])) {
                if (!json_off(e))
                    return gf_ctx_set_error(ctx, GF_ERR_FORMAT,
                                            "lora load: %s: \"%s\" is set, a PEFT feature graft does not "
                                            "support", path, k);
                known = true;
            }
        if (known) continue;
        if (!strcmp(k, "peft_type")) {
            if (!cJSON_IsString(e) || strcmp(e->valuestring, "LORA"))
                return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s: peft_type is %s, expected \"LORA\"",
                                        path, cJSON_IsString(e) ? e->valuestring : "not a string");
            have_type = true;
        } else if (!strcmp(k, "r")) {
            if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 1 ||
                e->valuedouble > 1e6)
                return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s: r must be a positive integer", path);
            cfg->r = (int)e->valuedouble;
        } else if (!strcmp(k, "lora_alpha") || !strcmp(k, "lora_dropout")) {
            if (!cJSON_IsNumber(e))
                return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s: %s is not a number", path, k);
            if (!strcmp(k, "lora_alpha")) cfg->alpha = e->valuedouble;
            else cfg->dropout = e->valuedouble;
        } else if (!strcmp(k, "bias")) {
            if (!cJSON_IsString(e) || strcmp(e->valuestring, "none"))
                return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s: bias must be \"none\" (graft "
                                        "saves and loads no bias terms)", path);
        } else if (!strcmp(k, "target_modules")) {
            bool ok = cJSON_IsString(e) || cJSON_IsArray(e);
            const cJSON *t;
            if (cJSON_IsArray(e)) cJSON_ArrayForEach(t, e) ok = ok && cJSON_IsString(t);
            if (!ok)
                return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s: target_modules must be a "
                                        "list of names or a regular expression string", path);
            cfg->targets = e;
        } else {
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s: unknown key \"%s\"", path, k);
        }
    }
    if (!have_type || cfg->r < 0 || !cfg->targets)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s: missing \"%s\"", path,
                                !have_type ? "peft_type" : cfg->r < 0 ? "r" : "target_modules");
    if (!(cfg->alpha > 0.0 && cfg->alpha < 3.4e38) || !(cfg->dropout >= 0.0 && cfg->dropout < 1.0))
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s: lora_alpha %g must be > 0 and "
                                "lora_dropout %g in [0, 1)", path, cfg->alpha, cfg->dropout);
    return GF_OK;
}

/* PEFT's target rule: a list entry t matches path == t or path ending in "." t; a string is
 * a regular expression that must match the whole path. */
static int target_matches(const cJSON *targets, const char *path) {
    if (cJSON_IsString(targets)) {
        size_t n = strlen(targets->valuestring) + 8;
        char *pat = malloc(n);
        if (!pat) return -1;
        snprintf(pat, n, "^(%s)$", targets->valuestring);
        regex_t re;
        int rc = regcomp(&re, pat, REG_EXTENDED | REG_NOSUB);
        free(pat);
        if (rc != 0) return -1;
        bool m = regexec(&re, path, 0, NULL, 0) == 0;
        regfree(&re);
        return m;
    }
    const cJSON *t;
    size_t pl = strlen(path);
    cJSON_ArrayForEach(t, targets) {
        size_t tl = strlen(t->valuestring);
        if (!strcmp(path, t->valuestring)) return 1;
        if (pl > tl && path[pl - tl - 1] == '.' && !strcmp(path + pl - tl, t->valuestring)) return 1;
    }
    return 0;
}

typedef struct file_pair {
    const gf_st_info *a, *b;
    const mod_entry *mod;
} file_pair;

/* Checks one file tensor against the layer it is for: [r, in(, kh, kw)] or [out, r(, 1, 1)]. */
static gf_status check_shape(gf_ctx *ctx, const char *file, const gf_st_info *info, const gf_module *m,
                             bool is_a, int r) {
    bool lora = gf_lora_is_layer(m);
    const lora_layer *L = lora ? gf_module_user(m) : NULL;
    bool conv = lora ? L->conv : !strcmp(gf_module_type(m), "Conv2d");
    const gf_nn_affine cfg = gf_nn_affine_of(m);
    int64_t in = lora ? L->in : cfg.in, out = lora ? L->out : cfg.out;
    int kh = lora ? L->kh : cfg.kh, kw = lora ? L->kw : cfg.kw;
    int64_t want[4] = {is_a ? r : out, is_a ? in : r, is_a ? kh : 1, is_a ? kw : 1};
    int nd = conv ? 4 : 2;
    bool same = info->ndim == nd;
    for (int i = 0; same && i < nd; i++) same = info->shape[i] == want[i];
    char a[GF_SHAPE_BUF], b[GF_SHAPE_BUF];
    if (!same)
        return gf_ctx_set_error(ctx, GF_ERR_SHAPE, "lora load: %s: tensor '%s' has shape %s, the %s "
                                "with r=%d expects %s", file, info->name,
                                gf_dims_str(info->ndim, info->shape, a, sizeof a), gf_module_type(m), r,
                                gf_dims_str(nd, want, b, sizeof b));
    if (info->dtype != GF_ST_F32 && info->dtype != GF_ST_F16 && info->dtype != GF_ST_BF16 &&
        info->dtype != GF_ST_F64)
        return gf_ctx_set_error(ctx, GF_ERR_DTYPE, "lora load: %s: tensor '%s' is %s, expected a float "
                                "type", file, info->name, gf_st_dtype_name(info->dtype));
    return GF_OK;
}

/* Pairs the file's tensors by module path and checks every one against model and config. */
static gf_status match_file(gf_ctx *ctx, const gf_st_file *f, const char *file, const mod_list *l,
                            const lora_config *cfg, file_pair *pairs, int *n_pairs) {
    const size_t pl = strlen(PEFT_PREFIX);
    int n = 0;
    for (int i = 0; i < gf_st_count(f); i++) {
        const gf_st_info *info = gf_st_get(f, i);
        const char *k = info->name;
        size_t kl = strlen(k);
        const size_t sl = strlen(".lora_A.weight");
        bool ok = kl > pl + sl && !strncmp(k, PEFT_PREFIX, pl) &&
                  (!strcmp(k + kl - sl, ".lora_A.weight") || !strcmp(k + kl - sl, ".lora_B.weight"));
        if (!ok)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s: unexpected key '%s' (expected "
                                    PEFT_PREFIX "<module>.lora_A.weight / .lora_B.weight)", file, k);
        bool is_a = k[kl - sl + 6] == 'A';
        size_t path_len = kl - sl - pl;
        const mod_entry *mod = NULL;
        for (int j = 0; j < l->n && !mod; j++)
            if (strlen(l->e[j].path) == path_len && !strncmp(l->e[j].path, k + pl, path_len)) mod = &l->e[j];
        if (!mod)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "lora load: %s: key '%s' names module '%.*s', "
                                    "which the model does not have", file, k, (int)path_len, k + pl);
        if (!gf_lora_is_layer(mod->m) && gf_lora_unsupported(mod))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "lora load: %s: key '%s': module %s (%s) cannot "
                                    "take an adapter: %s", file, k, mod->path, gf_module_type(mod->m), gf_lora_unsupported(mod));
        int t = target_matches(cfg->targets, mod->path);
        if (t < 0)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: target_modules \"%s\" is not a regular "
                                    "expression graft can use", cfg->targets->valuestring);
        if (!t)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s: module %s has adapter weights but "
                                    "is not in the config's target_modules", file, mod->path);
        if (check_shape(ctx, file, info, mod->m, is_a, cfg->r) != GF_OK) return ctx->status;
        int j = 0;
        while (j < n && pairs[j].mod != mod) j++;
        if (j == n) pairs[n++] = (file_pair){NULL, NULL, mod};
        *(is_a ? &pairs[j].a : &pairs[j].b) = info;
    }
    for (int j = 0; j < n; j++)
        if (!pairs[j].a || !pairs[j].b)
            return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s: module %s has %s but no %s", file,
                                    pairs[j].mod->path, pairs[j].a ? "lora_A" : "lora_B",
                                    pairs[j].a ? "lora_B" : "lora_A");
    *n_pairs = n;
    return GF_OK;
}

/* The model's adapters must be none, or exactly the file's (and unmerged). */
static gf_status check_existing(gf_ctx *ctx, const char *file, const mod_list *l, const file_pair *pairs,
                                int n, int r, bool *fresh) {
    int have = 0, in_file = 0;
    for (int i = 0; i < l->n; i++) {
        if (!gf_lora_is_layer(l->e[i].m)) continue;
        have++;
        const lora_layer *L = gf_module_user(l->e[i].m);
        bool found = false;
        for (int j = 0; j < n && !found; j++) found = pairs[j].mod == &l->e[i];
        if (!found)
            return gf_ctx_set_error(ctx, GF_ERR_STATE, "lora load: %s: the model's LoRA layer %s has no "
                                    "weights in the file", file, l->e[i].path);
        if (L->merged)
            return gf_ctx_set_error(ctx, GF_ERR_STATE, "lora load: LoRA layer %s is merged (unmerge it "
                                    "first)", l->e[i].path);
        if (L->r != r)
            return gf_ctx_set_error(ctx, GF_ERR_SHAPE, "lora load: %s: the model's LoRA layer %s (%s) has "
                                    "r=%d, the file r=%d", file, l->e[i].path, gf_module_type(l->e[i].m), L->r, r);
        in_file++;
    }
    if (have > 0 && in_file != n) {
        for (int j = 0; j < n; j++)
            if (!gf_lora_is_layer(pairs[j].mod->m))
                return gf_ctx_set_error(ctx, GF_ERR_STATE, "lora load: %s: module %s has adapter weights "
                                        "but no LoRA layer, while the model has others", file,
                                        pairs[j].mod->path);
    }
    *fresh = have == 0;
    return GF_OK;
}

gf_status gf_lora_load(gf_ctx *ctx, gf_module *model, const char *dir) {
    if (!model || !dir || !dir[0])
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "lora load: %s is NULL or empty", model ? "dir" : "model");
    char wpath[4096], cpath[4096];
    if (!join_path(wpath, sizeof wpath, dir, WEIGHTS_NAME) || !join_path(cpath, sizeof cpath, dir, CONFIG_NAME))
        return gf_ctx_set_error(ctx, GF_ERR_IO, "lora load: directory name too long: %s", dir);
    cJSON *root = NULL;
    lora_config cfg = {0};
    gf_st_file *f = NULL;
    mod_list l = {0};
    file_pair *pairs = NULL;
    int n = 0;
    bool fresh = false;
    gf_status st = parse_config(ctx, cpath, &root, &cfg);
    if (st == GF_OK && !(f = gf_st_open(ctx, wpath))) st = ctx->status;
    if (st == GF_OK && gf_st_count(f) == 0)
        st = gf_ctx_set_error(ctx, GF_ERR_FORMAT, "lora load: %s holds no tensors", wpath);
    if (st == GF_OK && !gf_lora_list_modules(ctx, model, &l)) st = ctx->status;
    if (st == GF_OK && !(pairs = calloc((size_t)gf_st_count(f), sizeof *pairs)))
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "lora load: out of memory");
    if (st == GF_OK) st = match_file(ctx, f, wpath, &l, &cfg, pairs, &n);
    if (st == GF_OK) st = check_existing(ctx, wpath, &l, pairs, n, cfg.r, &fresh);
    if (st == GF_OK && fresh) {
        /* new layers in tree order; lora_A's initial draws are overwritten just below */
        const mod_entry **t = calloc((size_t)n, sizeof *t);
        int k = 0;
        for (int i = 0; t && i < l.n; i++)
            for (int j = 0; j < n; j++)
                if (pairs[j].mod == &l.e[i]) t[k++] = &l.e[i];
        gf_rng rng;
        gf_rng_seed(&rng, 0);
        st = t ? gf_lora_apply_targets(ctx, model, t, n, cfg.r, (float)cfg.alpha, (float)cfg.dropout, false, &rng)
               : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "lora load: out of memory");
        free(t);
        if (st != GF_OK) fresh = false; /* nothing was added */
    }
    for (int j = 0; j < n && st == GF_OK; j++) {
        gf_module *m = gf_module_child(model, pairs[j].mod->path);
        lora_layer *L = gf_module_user(m);
        L->alpha = (float)cfg.alpha;
        L->dropout = (float)cfg.dropout;
        st = gf_st_read_into(ctx, f, pairs[j].a, gf_module_tensor(NULL, L->A, "weight"));
        if (st == GF_OK) st = gf_st_read_into(ctx, f, pairs[j].b, gf_module_tensor(NULL, L->B, "weight"));
    }
    if (fresh && st == GF_OK) {
        gf_module_set_requires_grad(model, false); /* freeze_base, as gf_lora_apply's default */
        gf_lora_adapters_trainable(model);
    } else if (fresh) {
        gf_lora_restore_base_grad(model); /* undo the layers just added; the first error stays */
        gf_lora_unload(ctx, model, false);
    }
    free(pairs);
    gf_lora_list_free(&l);
    gf_st_close(f);
    cJSON_Delete(root);
    return st;
}
