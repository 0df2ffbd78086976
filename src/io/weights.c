/* Module state_dict <-> safetensors by name, with a report of every key; file keys can be
 * renamed on the way in (prefix strip, POSIX regex rules, prefix add) and a load can be a dry run. */
#define _POSIX_C_SOURCE 200809L
#include "graft/weights.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const key_status_names[] = {"loaded", "missing", "unexpected", "shape mismatch",
                                               "dtype mismatch"};

const char *gf_weights_key_status_name(gf_weights_key_status s) {
    return s <= GF_WEIGHTS_KEY_KIND ? key_status_names[s] : "?";
}

void gf_weights_report_free(gf_weights_report *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) {
        free(r->keys[i].name);
        free(r->keys[i].file_name);
    }
    free(r->keys);
    free(r);
}

void gf_weights_report_print(const gf_weights_report *r, FILE *out, bool all) {
    for (int i = 0; i < r->n; i++) {
        const gf_weights_key_report *k = &r->keys[i];
        if (k->status == GF_WEIGHTS_KEY_LOADED && !all) continue;
        fprintf(out, "  %-14s %s", gf_weights_key_status_name(k->status), k->name);
        if (k->file_name) fprintf(out, " (file key %s)", k->file_name);
        if (k->status == GF_WEIGHTS_KEY_SHAPE || k->status == GF_WEIGHTS_KEY_KIND)
            fprintf(out, "  (model %s, file %s %s)", k->model_shape, k->file_dtype, k->file_shape);
        else if (k->status == GF_WEIGHTS_KEY_UNEXPECTED)
            fprintf(out, "  (file %s %s)", k->file_dtype, k->file_shape);
        else if (k->status == GF_WEIGHTS_KEY_MISSING)
            fprintf(out, "  (model %s)", k->model_shape);
        fputc('\n', out);
    }
    fprintf(out, "  %d loaded, %d missing, %d unexpected, %d mismatched", r->loaded, r->missing,
            r->unexpected, r->mismatched);
    if (r->renamed) fprintf(out, ", %d renamed", r->renamed);
    fputc('\n', out);
}

gf_weights_options gf_weights_default_options(void) {
    gf_weights_options o;
    memset(&o, 0, sizeof o);
    return o;
}

/* ---- key renaming ----------------------------------------------------------------------- */

typedef struct {
    regex_t re;
    char *rep; /* replacement text (escapes still in it) */
    bool compiled;
} rule_c;

typedef struct {
    const char *strip, *add;
    rule_c *rules;
    int n;
} mapper;

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t len) {
    if (b->oom) return;
    if (b->n + len + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->n + len + 1) nc *= 2;
        char *p = realloc(b->p, nc);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

/* Splits a sed-style "s/REGEX/REPLACEMENT/" into its two parts (malloc'd); a backslash before
 * the delimiter stands for the delimiter, every other backslash is kept. */
static bool parse_sed(const char *s, char **pat, char **rep) {
    *pat = *rep = NULL;
    if (s[0] != 's' || !s[1] || isalnum((unsigned char)s[1]) || s[1] == '\\' || s[1] == '\n')
        return false;
    char delim = s[1];
    const char *p = s + 2;
    char *parts[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        sbuf b = {0};
        sb_add(&b, "", 0);
        for (; *p && *p != delim; p++) {
            if (p[0] == '\\' && p[1] == delim) {
                sb_add(&b, p + 1, 1);
                p++;
            } else if (p[0] == '\\' && p[1]) {
                sb_add(&b, p, 2);
                p++;
            } else {
                sb_add(&b, p, 1);
            }
        }
        parts[k] = b.p;
        if (b.oom || *p != delim) {
            free(parts[0]);
            free(parts[1]);
            return false;
        }
        p++;
    }
    if (*p) { /* flags are not supported */
        free(parts[0]);
        free(parts[1]);
        return false;
    }
    *pat = parts[0];
    *rep = parts[1];
    return true;
}

static void mapper_free(mapper *mp) {
    for (int i = 0; i < mp->n; i++) {
        if (mp->rules[i].compiled) regfree(&mp->rules[i].re);
        free(mp->rules[i].rep);
    }
    free(mp->rules);
    mp->rules = NULL;
    mp->n = 0;
}

static gf_status mapper_init(gf_ctx *ctx, mapper *mp, const gf_weights_options *opt) {
    memset(mp, 0, sizeof *mp);
    mp->strip = opt->strip_prefix && opt->strip_prefix[0] ? opt->strip_prefix : NULL;
    mp->add = opt->add_prefix && opt->add_prefix[0] ? opt->add_prefix : NULL;
    if (opt->n_rules < 0 || (opt->n_rules > 0 && !opt->rules))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "key rules: %d rules from %s", opt->n_rules,
                                opt->rules ? "an array" : "a NULL array");
    if (opt->n_rules == 0) return GF_OK;
    mp->rules = calloc((size_t)opt->n_rules, sizeof *mp->rules);
    if (!mp->rules) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "key rules: out of memory");
    mp->n = opt->n_rules;
    for (int i = 0; i < opt->n_rules; i++) {
        const gf_weights_key_rule *r = &opt->rules[i];
        rule_c *c = &mp->rules[i];
        char *pat = NULL;
        const char *shown = r->pattern ? r->pattern : "(null)";
        if (!r->pattern) {
            mapper_free(mp);
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "key rule %d: pattern is NULL", i + 1);
        }
        if (r->replacement) {
            pat = strdup(r->pattern);
            c->rep = strdup(r->replacement);
            if (!pat || !c->rep) {
                free(pat);
                mapper_free(mp);
                return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "key rules: out of memory");
            }
        } else if (!parse_sed(r->pattern, &pat, &c->rep)) {
            mapper_free(mp);
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "key rule %d \"%s\": expected s/REGEX/REPLACEMENT/ (no flags) "
                                    "or a (pattern, replacement) pair", i + 1, shown);
        }
        int rc = regcomp(&c->re, pat, REG_EXTENDED);
        free(pat);
        if (rc != 0) {
            char msg[160];
            regerror(rc, &c->re, msg, sizeof msg);
            mapper_free(mp);
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "key rule %d \"%s\": bad regex: %s", i + 1,
                                    shown, msg);
        }
        c->compiled = true;
        for (const char *q = c->rep; *q; q++) {
            if (q[0] != '\\' || !q[1]) continue;
            if (isdigit((unsigned char)q[1]) && (size_t)(q[1] - '0') > c->re.re_nsub) {
                int g = q[1] - '0';
                int nsub = (int)c->re.re_nsub;
                mapper_free(mp);
                return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                        "key rule %d \"%s\": replacement uses \\%d but the regex "
                                        "has %d group%s", i + 1, shown, g, nsub, nsub == 1 ? "" : "s");
            }
            q++;
        }
    }
    return GF_OK;
}

/* The model name for file key `key` (malloc'd), or NULL when out of memory. */
static char *mapper_apply(const mapper *mp, const char *key) {
    sbuf cur = {0};
    const char *s = key;
    if (mp->strip && strncmp(s, mp->strip, strlen(mp->strip)) == 0) s += strlen(mp->strip);
    sb_add(&cur, s, strlen(s));
    for (int i = 0; i < mp->n && !cur.oom; i++) {
        regmatch_t m[10];
        if (regexec(&mp->rules[i].re, cur.p, 10, m, 0) != 0) continue;
        sbuf out = {0};
        sb_add(&out, cur.p, (size_t)m[0].rm_so);
        for (const char *q = mp->rules[i].rep; *q; q++) {
            if (q[0] == '\\' && q[1]) {
                q++;
                if (isdigit((unsigned char)*q)) {
                    const regmatch_t *g = &m[*q - '0'];
                    if (g->rm_so >= 0) sb_add(&out, cur.p + g->rm_so, (size_t)(g->rm_eo - g->rm_so));
                } else {
                    sb_add(&out, q, 1);
                }
            } else {
                sb_add(&out, q, 1);
            }
        }
        sb_add(&out, cur.p + m[0].rm_eo, strlen(cur.p + m[0].rm_eo));
        sb_add(&out, "", 0);
        free(cur.p);
        cur = out;
    }
    if (mp->add && !cur.oom) {
        sbuf out = {0};
        sb_add(&out, mp->add, strlen(mp->add));
        sb_add(&out, cur.p, strlen(cur.p));
        free(cur.p);
        cur = out;
    }
    if (cur.oom) {
        free(cur.p);
        return NULL;
    }
    return cur.p;
}

gf_status gf_weights_map_key(gf_ctx *ctx, const gf_weights_options *opt, const char *key,
                             char *out, size_t cap) {
    if (!key || !out || cap == 0)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "map key: NULL key or output buffer");
    gf_weights_options def = gf_weights_default_options();
    mapper mp;
    gf_status st = mapper_init(ctx, &mp, opt ? opt : &def);
    if (st != GF_OK) return st;
    char *s = mapper_apply(&mp, key);
    mapper_free(&mp);
    if (!s) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "map key: out of memory");
    if (strlen(s) >= cap)
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "map key: \"%s\" maps to %zu characters, more "
                              "than the %zu given", key, strlen(s), cap - 1);
    else memcpy(out, s, strlen(s) + 1);
    free(s);
    return st;
}

/* ---- the plan ----------------------------------------------------------------------------- */

static bool is_float_st(gf_st_dtype dt) {
    return dt == GF_ST_F16 || dt == GF_ST_BF16 || dt == GF_ST_F32 || dt == GF_ST_F64;
}

static bool same_dims(const gf_tensor *t, const gf_st_info *info) {
    if (t->ndim != info->ndim) return false;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != info->shape[i]) return false;
    return true;
}

/* File entries by mapped name, sorted for lookups. */
typedef struct {
    const char *name; /* mapped (owned by the names array) */
    int idx;          /* entry in the file */
} fkey;

static int fkey_cmp(const void *a, const void *b) {
    return strcmp(((const fkey *)a)->name, ((const fkey *)b)->name);
}

static int fkey_find(const fkey *keys, int n, const char *name) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(keys[mid].name, name);
        if (c == 0) return keys[mid].idx;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static void set_file_side(gf_weights_key_report *k, const gf_st_info *info) {
    gf_dims_str(info->ndim, info->shape, k->file_shape, sizeof k->file_shape);
    snprintf(k->file_dtype, sizeof k->file_dtype, "%s", gf_st_dtype_name(info->dtype));
    k->file_ndim = info->ndim;
    memcpy(k->file_dims, info->shape, sizeof(int64_t) * (size_t)info->ndim);
}

/* Builds the report from the mapped names (names[j] for file entry j); NULL when out of memory.
 * file_idx[i] gets the file entry of model key i (or -1). */
static gf_weights_report *plan(const gf_named_tensors *model, const gf_st_file *f, char *const *names,
                            const fkey *sorted, int *file_idx) {
    int nf = gf_st_count(f);
    gf_weights_report *r = calloc(1, sizeof *r);
    int cap = model->n + nf;
    if (r) r->keys = calloc((size_t)(cap ? cap : 1), sizeof *r->keys);
    char *used = calloc((size_t)nf + 1, 1);
    if (!r || !r->keys || !used) {
        if (r) free(r->keys);
        free(r);
        free(used);
        return NULL;
    }
    bool oom = false;
    for (int i = 0; i < model->n; i++) {
        const gf_named_tensor *nt = &model->items[i];
        gf_weights_key_report *k = &r->keys[r->n++];
        k->name = strdup(nt->name);
        oom |= !k->name;
        k->is_buffer = nt->is_buffer;
        k->model_ndim = nt->tensor->ndim;
        memcpy(k->model_dims, nt->tensor->shape, sizeof(int64_t) * (size_t)nt->tensor->ndim);
        k->file_ndim = -1;
        gf_shape_str(nt->tensor, k->model_shape, sizeof k->model_shape);
        int j = fkey_find(sorted, nf, nt->name);
        file_idx[i] = j;
        if (j < 0) {
            k->status = GF_WEIGHTS_KEY_MISSING;
            r->missing++;
            continue;
        }
        const gf_st_info *info = gf_st_get(f, j);
        used[j] = 1;
        if (strcmp(info->name, names[j]) != 0) {
            k->file_name = strdup(info->name);
            oom |= !k->file_name;
            r->renamed++;
        }
        set_file_side(k, info);
        if ((nt->tensor->dtype == GF_F32) != is_float_st(info->dtype)) {
            k->status = GF_WEIGHTS_KEY_KIND;
            r->mismatched++;
        } else if (!same_dims(nt->tensor, info)) {
            k->status = GF_WEIGHTS_KEY_SHAPE;
            r->mismatched++;
        } else {
            k->status = GF_WEIGHTS_KEY_LOADED;
            r->loaded++;
        }
    }
    for (int j = 0; j < nf; j++) {
        if (used[j]) continue;
        const gf_st_info *info = gf_st_get(f, j);
        gf_weights_key_report *k = &r->keys[r->n++];
        k->name = strdup(names[j]);
        oom |= !k->name;
        if (strcmp(info->name, names[j]) != 0) {
            k->file_name = strdup(info->name);
            oom |= !k->file_name;
            r->renamed++;
        }
        k->status = GF_WEIGHTS_KEY_UNEXPECTED;
        k->model_ndim = -1;
        set_file_side(k, info);
        r->unexpected++;
    }
    free(used);
    if (oom) {
        gf_weights_report_free(r);
        return NULL;
    }
    return r;
}

static gf_status strict_refusal(gf_ctx *ctx, const gf_st_file *f, const gf_weights_report *r) {
    for (int i = 0; i < r->n; i++) {
        const gf_weights_key_report *k = &r->keys[i];
        if (k->status == GF_WEIGHTS_KEY_LOADED) continue;
        bool shp = k->status == GF_WEIGHTS_KEY_SHAPE;
        char renamed[300] = "";
        if (k->file_name) snprintf(renamed, sizeof renamed, " (file key '%s')", k->file_name);
        return gf_ctx_set_error(ctx, shp ? GF_ERR_SHAPE : GF_ERR_FORMAT,
                                "%s: strict load refused: '%s'%s is %s%s%s%s%s (%d missing, %d "
                                "unexpected, %d mismatched in all); nothing was loaded",
                                gf_st_path(f), k->name, renamed, gf_weights_key_status_name(k->status),
                                shp ? ": model " : "", shp ? k->model_shape : "",
                                shp ? ", file " : "", shp ? k->file_shape : "", r->missing,
                                r->unexpected, r->mismatched);
    }
    return GF_OK;
}

gf_status gf_weights_load_file_with(gf_ctx *ctx, gf_module *m, const gf_st_file *f,
                                    const gf_weights_options *opt, gf_weights_report **report) {
    if (report) *report = NULL;
    if (!m || !f) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "load weights: NULL module or file");
    gf_weights_options def = gf_weights_default_options();
    if (!opt) opt = &def;
    mapper mp;
    if (mapper_init(ctx, &mp, opt) != GF_OK) return gf_ctx_status(ctx);

    int nf = gf_st_count(f);
    char **names = calloc((size_t)nf + 1, sizeof *names);
    fkey *sorted = calloc((size_t)nf + 1, sizeof *sorted);
    gf_named_tensors *model = NULL;
    int *file_idx = NULL;
    gf_weights_report *r = NULL;
    gf_status st = GF_OK;
    if (!names || !sorted) {
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory planning the load", gf_st_path(f));
        goto done;
    }
    for (int j = 0; j < nf; j++) {
        names[j] = mapper_apply(&mp, gf_st_get(f, j)->name);
        if (!names[j]) {
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory renaming keys", gf_st_path(f));
            goto done;
        }
        sorted[j] = (fkey){names[j], j};
    }
    qsort(sorted, (size_t)nf, sizeof *sorted, fkey_cmp);
    for (int j = 1; j < nf; j++)
        if (strcmp(sorted[j - 1].name, sorted[j].name) == 0) {
            int a = sorted[j - 1].idx < sorted[j].idx ? sorted[j - 1].idx : sorted[j].idx;
            int b = sorted[j - 1].idx < sorted[j].idx ? sorted[j].idx : sorted[j - 1].idx;
            st = gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                  "%s: file keys '%s' and '%s' both map to '%s'; fix the renaming",
                                  gf_st_path(f), gf_st_get(f, a)->name, gf_st_get(f, b)->name,
                                  sorted[j].name);
            goto done;
        }
    model = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    if (!model) {
        st = gf_ctx_status(ctx);
        goto done;
    }
    file_idx = calloc((size_t)model->n + 1, sizeof *file_idx);
    r = file_idx ? plan(model, f, names, sorted, file_idx) : NULL;
    if (!r) {
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory planning the load", gf_st_path(f));
        goto done;
    }
    if (opt->strict && (r->missing || r->unexpected || r->mismatched)) {
        st = strict_refusal(ctx, f, r);
    } else if (!opt->dry_run) {
        for (int i = 0; i < model->n && st == GF_OK; i++)
            if (r->keys[i].status == GF_WEIGHTS_KEY_LOADED)
                st = gf_st_read_into(ctx, f, gf_st_get(f, file_idx[i]), model->items[i].tensor);
        r->applied = st == GF_OK;
    }
done:
    for (int j = 0; names && j < nf; j++) free(names[j]);
    free(names);
    free(sorted);
    free(file_idx);
    gf_named_tensors_free(model);
    mapper_free(&mp);
    if (report) *report = r;
    else gf_weights_report_free(r);
    return st;
}

gf_status gf_weights_load_with(gf_ctx *ctx, gf_module *m, const char *path,
                               const gf_weights_options *opt, gf_weights_report **report) {
    if (report) *report = NULL;
    gf_st_file *f = gf_st_open(ctx, path);
    if (!f) return gf_ctx_status(ctx);
    gf_status st = gf_weights_load_file_with(ctx, m, f, opt, report);
    gf_st_close(f);
    return st;
}

gf_status gf_weights_load_file(gf_ctx *ctx, gf_module *m, const gf_st_file *f,
                               const gf_weights_load_options *opt, gf_weights_report **report) {
    gf_weights_options o = gf_weights_default_options();
    o.strict = opt && opt->strict;
    return gf_weights_load_file_with(ctx, m, f, &o, report);
}

gf_status gf_weights_load(gf_ctx *ctx, gf_module *m, const char *path, const gf_weights_load_options *opt,
                          gf_weights_report **report) {
    gf_weights_options o = gf_weights_default_options();
    o.strict = opt && opt->strict;
    return gf_weights_load_with(ctx, m, path, &o, report);
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
