/* gf_compare_run: the strategies of strategies.c on the same data, seeds and budget, each run in
 * its own context; then the statistics over seeds, the delta checkpoints, the table and JSON. */
#define _DEFAULT_SOURCE
#include "compare_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/transfer.h"

static const char *const strategy_names[GF_COMPARE_STRATEGY_COUNT] = {
    "scratch", "probe", "finetune", "finetune-frozen-bn", "fastai", "lora", "distill"};

const char *gf_compare_strategy_name(gf_compare_strategy s) {
    return (unsigned)s < GF_COMPARE_STRATEGY_COUNT ? strategy_names[s] : "?";
}

bool gf_compare_strategy_parse(const char *name, gf_compare_strategy *out) {
    for (int i = 0; name && i < GF_COMPARE_STRATEGY_COUNT; i++)
        if (strcmp(name, strategy_names[i]) == 0) {
            if (out) *out = (gf_compare_strategy)i;
            return true;
        }
    return false;
}

int gf_compare_strategies_parse(gf_ctx *ctx, const char *list, bool with_distill,
                                gf_compare_strategy *out, int cap) {
    if (!list || !out) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "compare: NULL strategy list");
        return -1;
    }
    int n = 0;
    const char *s = list;
    while (*s) {
        while (*s == ' ' || *s == ',') s++;
        if (!*s) break;
        size_t len = strcspn(s, ",");
        while (len > 0 && s[len - 1] == ' ') len--;
        char tok[64];
        if (len >= sizeof tok) len = sizeof tok - 1;
        memcpy(tok, s, len);
        tok[len] = '\0';
        s += strcspn(s, ",");
        gf_compare_strategy add[GF_COMPARE_STRATEGY_COUNT];
        int n_add = 0;
        if (strcmp(tok, "all") == 0) {
            for (int i = 0; i < GF_COMPARE_STRATEGY_COUNT; i++)
                if (i != GF_COMPARE_DISTILL || with_distill) add[n_add++] = (gf_compare_strategy)i;
        } else if (gf_compare_strategy_parse(tok, &add[0])) {
            n_add = 1;
        } else {
            gf_ctx_set_error(ctx, GF_ERR_INVALID,
                             "compare: unknown strategy \"%s\" (known: scratch, probe, finetune, "
                             "finetune-frozen-bn, fastai, lora, distill, all)", tok);
            return -1;
        }
        for (int a = 0; a < n_add; a++) {
            for (int j = 0; j < n; j++)
                if (out[j] == add[a]) {
                    gf_ctx_set_error(ctx, GF_ERR_INVALID, "compare: strategy \"%s\" listed twice",
                                     gf_compare_strategy_name(add[a]));
                    return -1;
                }
            if (n == cap) {
                gf_ctx_set_error(ctx, GF_ERR_INVALID, "compare: more than %d strategies", cap);
                return -1;
            }
            out[n++] = add[a];
        }
    }
    if (n == 0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "compare: no strategy in \"%s\"", list);
        return -1;
    }
    return n;
}

gf_compare_params gf_compare_default_params(void) {
    gf_compare_params p;
    memset(&p, 0, sizeof p);
    p.model = "cnn-small";
    p.zoo = gf_zoo_default_params();
    p.load = gf_weights_default_options();
    p.epochs = 30;
    p.batch_size = 64;
    p.optim = gf_optim_default_params(GF_OPTIM_ADAM);
    p.eval_batch = 64;
    p.fastai_frozen_epochs = 1;
    p.fastai_lr_div = 10.0;
    p.lora_r = 8;
    p.lora_alpha = 16.0f;
    p.distill_T = 4.0f;
    p.distill_alpha = 0.7f;
    return p;
}

/* ---- results ------------------------------------------------------------------------------ */

static void trial_free(gf_compare_trial *t) {
    free(t->train_loss);
    free(t->val_acc);
    free(t->confusion);
}

void gf_compare_result_free(gf_compare_result *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) {
        gf_compare_entry *e = &r->entries[i];
        for (int j = 0; j < e->n_trials; j++) trial_free(&e->trials[j]);
        free(e->trials);
        free(e->confusion);
    }
    free(r->entries);
    for (int i = 0; r->class_names && i < r->n_classes; i++) free(r->class_names[i]);
    free(r->class_names);
    free(r->model);
    free(r->pretrained);
    free(r->teacher);
    free(r->seeds);
    free(r);
}

const gf_compare_entry *gf_compare_find(const gf_compare_result *r, gf_compare_strategy s) {
    for (int i = 0; r && i < r->n; i++)
        if (r->entries[i].strategy == s) return &r->entries[i];
    return NULL;
}

static char *dup_or_null(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static long maxrss_kb(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
}

static int64_t file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static void mean_sd(const double *v, int n, double *mean, double *sd) {
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = n > 0 ? s / n : NAN;
    double q = 0;
    for (int i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0.0;
}

/* ---- checks ------------------------------------------------------------------------------- */

static gf_status check_params(gf_ctx *ctx, const gf_compare_params *p,
                              const gf_compare_strategy *s, int n, gf_ds *train, gf_ds *val,
                              gf_ds *test) {
    const char *op = "compare";
    if (!p || !s || n < 1 || !train || !test)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "%s: NULL params, strategies, train or test data, or n = %d", op, n);
    if (!p->model || !gf_zoo_head(p->model))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: unknown zoo model \"%s\"", op,
                                p->model ? p->model : "(null)");
    if (p->epochs < 1 || p->batch_size < 1 || p->eval_batch < 1 || p->n_seeds < 0 ||
        (p->n_seeds > 0 && !p->seeds))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "%s: epochs %d, batch_size %lld, eval_batch %lld must be >= 1 and "
                                "n_seeds %d >= 0 with seeds given", op, p->epochs,
                                (long long)p->batch_size, (long long)p->eval_batch, p->n_seeds);
    if (gf_optim_check_params(ctx, &p->optim) != GF_OK) return gf_ctx_status(ctx);
    const int k = gf_ds_n_classes(train);
    if (k < 2 || gf_ds_n_classes(test) != k || (val && gf_ds_n_classes(val) != k))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                "%s: the data must be classification with the same >= 2 classes "
                                "(train %d, val %d, test %d)", op, k, val ? gf_ds_n_classes(val) : k,
                                gf_ds_n_classes(test));
    for (int i = 0; i < n; i++) {
        const char *name = gf_compare_strategy_name(s[i]);
        if ((unsigned)s[i] >= GF_COMPARE_STRATEGY_COUNT)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: unknown strategy %d", op, (int)s[i]);
        for (int j = 0; j < i; j++)
            if (s[j] == s[i])
                return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: strategy %s listed twice", op,
                                        name);
        bool needs_base = s[i] != GF_COMPARE_SCRATCH &&
                          !(s[i] == GF_COMPARE_DISTILL && !p->distill_from_pretrained);
        if (needs_base && !p->pretrained)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "%s: strategy %s needs a pretrained model file", op, name);
        if (s[i] == GF_COMPARE_DISTILL && !p->teacher)
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "%s: strategy distill needs a teacher file", op);
        if (s[i] == GF_COMPARE_FASTAI &&
            (p->fastai_frozen_epochs < 1 || p->fastai_frozen_epochs >= p->epochs ||
             !(p->fastai_lr_div >= 1.0)))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "%s: fastai needs 1 <= fastai_frozen_epochs (%d) < epochs (%d) "
                                    "and fastai_lr_div (%g) >= 1", op, p->fastai_frozen_epochs,
                                    p->epochs, p->fastai_lr_div);
        if (s[i] == GF_COMPARE_LORA && (p->lora_r < 1 || !(p->lora_alpha > 0)))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "%s: lora needs lora_r (%d) >= 1 and lora_alpha (%g) > 0", op,
                                    p->lora_r, (double)p->lora_alpha);
        if (s[i] == GF_COMPARE_DISTILL &&
            (!(p->distill_T > 0) || !(p->distill_alpha >= 0 && p->distill_alpha <= 1)))
            return gf_ctx_set_error(ctx, GF_ERR_INVALID,
                                    "%s: distill needs T (%g) > 0 and alpha (%g) in [0, 1]", op,
                                    (double)p->distill_T, (double)p->distill_alpha);
    }
    return GF_OK;
}

/* ---- one run ------------------------------------------------------------------------------ */

static gf_status run_one(gf_ctx *ctx, const gf_compare_params *p, gf_compare_entry *e,
                         gf_compare_trial *t, uint64_t seed, int threads, const char *head,
                         gf_ds *train, gf_ds *val, gf_ds *test, const char *dir, int *n_run) {
    const int k = gf_ds_n_classes(train);
    t->seed = seed;
    t->accuracy = t->macro_f1 = NAN;
    t->delta_bytes = -1;
    t->delta_tensors = -1;
    t->train_loss = malloc(sizeof(double) * (size_t)p->epochs);
    t->val_acc = malloc(sizeof(double) * (size_t)p->epochs);
    t->confusion = calloc((size_t)(k * k), sizeof(int64_t));
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = threads;
    cp.seed = seed;
    cp.limits = *gf_ctx_limits(ctx);
    gf_ctx *rc = gf_ctx_new(&cp);
    if (!t->train_loss || !t->val_acc || !t->confusion || !rc) {
        gf_ctx_free(rc);
        return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "compare: out of memory");
    }
    cmp_run r;
    memset(&r, 0, sizeof r);
    r.ctx = rc;
    r.p = p;
    r.strategy = e->strategy;
    r.seed = seed;
    r.k = k;
    r.head = head;
    r.train = train;
    r.val = val;
    r.trial = t;

    const long rss0 = maxrss_kb();
    const double t0 = gf_now_seconds();
    gf_status st = gf_cmp_train(&r);
    t->seconds = gf_now_seconds() - t0;
    t->rss_delta_kb = maxrss_kb() - rss0;
    t->arena_peak = gf_arena_peak(gf_ctx_arena(rc));
    t->state_bytes = r.state_bytes;
    if (st == GF_OK)
        st = gf_cmp_evaluate(rc, r.model, test, k, p->eval_batch, &t->accuracy, &t->macro_f1,
                             t->confusion);
    if (st == GF_OK && p->pretrained) {
        char path[1400];
        snprintf(path, sizeof path, "%s/%s-seed%llu.delta.safetensors", dir, e->name,
                 (unsigned long long)seed);
        int nt = 0;
        st = gf_transfer_delta_save(rc, r.model, p->pretrained, &p->load, path, &nt);
        if (st == GF_OK) {
            t->delta_bytes = file_size(path);
            t->delta_tensors = nt;
            if (!p->work_dir) remove(path);
        }
    }
    if (st == GF_OK) {
        if (*n_run == 0) {
            e->params_total = gf_module_param_count(r.model, false);
            e->params_trainable = r.params_trainable;
            memcpy(e->note, r.note, sizeof e->note);
        }
        (*n_run)++;
    } else {
        gf_ctx_set_error(ctx, gf_ctx_status(rc), "compare: %s, seed %llu: %s", e->name,
                         (unsigned long long)seed, gf_ctx_error(rc));
    }
    gf_module_free(r.model);
    gf_ctx_free(rc);
    return st;
}

gf_status gf_compare_run(gf_ctx *ctx, const gf_compare_params *p,
                         const gf_compare_strategy *strategies, int n, gf_ds *train, gf_ds *val,
                         gf_ds *test, gf_compare_result **out) {
    if (out) *out = NULL;
    if (!out) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "compare: NULL out");
    if (check_params(ctx, p, strategies, n, train, val, test) != GF_OK) return gf_ctx_status(ctx);
    const double t0 = gf_now_seconds();
    const uint64_t one_seed = 0;
    const uint64_t *seeds = p->n_seeds > 0 ? p->seeds : &one_seed;
    const int n_seeds = p->n_seeds > 0 ? p->n_seeds : 1;
    const int k = gf_ds_n_classes(train);
    const int threads = p->n_threads > 0 ? p->n_threads : gf_ctx_threads(ctx);
    const char *head = p->head ? p->head : gf_zoo_head(p->model);

    gf_compare_result *r = calloc(1, sizeof *r);
    if (!r) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "compare: out of memory");
    r->model = dup_or_null(p->model);
    r->pretrained = dup_or_null(p->pretrained);
    r->teacher = dup_or_null(p->teacher);
    r->n_classes = k;
    r->class_names = calloc((size_t)k, sizeof *r->class_names);
    r->n_train = gf_ds_count(train);
    r->n_val = val ? gf_ds_count(val) : 0;
    r->n_test = gf_ds_count(test);
    r->epochs = p->epochs;
    r->batch_size = p->batch_size;
    r->optim = p->optim;
    r->n_threads = threads;
    r->n_seeds = n_seeds;
    r->seeds = malloc(sizeof(uint64_t) * (size_t)n_seeds);
    r->base_bytes = p->pretrained ? file_size(p->pretrained) : -1;
    r->entries = calloc((size_t)n, sizeof *r->entries);
    gf_status st = GF_OK;
    if (!r->model || !r->class_names || !r->seeds || !r->entries ||
        (p->pretrained && !r->pretrained) || (p->teacher && !r->teacher)) {
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "compare: out of memory");
        goto done;
    }
    memcpy(r->seeds, seeds, sizeof(uint64_t) * (size_t)n_seeds);
    for (int c = 0; c < k; c++) {
        const char *nm = gf_ds_class_name(train, c);
        char buf[24];
        if (!nm) snprintf(buf, sizeof buf, "%d", c), nm = buf;
        if (!(r->class_names[c] = dup_or_null(nm))) {
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "compare: out of memory");
            goto done;
        }
    }
    if (p->pretrained && r->base_bytes < 0) {
        st = gf_ctx_set_error(ctx, GF_ERR_IO, "compare: cannot read the pretrained file %s",
                              p->pretrained);
        goto done;
    }

    char dir[1024];
    if (p->work_dir) {
        snprintf(dir, sizeof dir, "%s", p->work_dir);
    } else {
        snprintf(dir, sizeof dir, "%s/graft-compare-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) {
            st = gf_ctx_set_error(ctx, GF_ERR_IO, "compare: cannot create a folder %s", dir);
            goto done;
        }
    }
    for (int i = 0; i < n && st == GF_OK; i++) {
        gf_compare_entry *e = &r->entries[i];
        r->n = i + 1;
        e->strategy = strategies[i];
        e->name = gf_compare_strategy_name(strategies[i]);
        e->trials = calloc((size_t)n_seeds, sizeof *e->trials);
        e->confusion = calloc((size_t)(k * k), sizeof(int64_t));
        if (!e->trials || !e->confusion) {
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "compare: out of memory");
            break;
        }
        int done_runs = 0;
        for (int s = 0; s < n_seeds && st == GF_OK; s++) {
            e->n_trials = s + 1;
            st = run_one(ctx, p, e, &e->trials[s], seeds[s], threads, head, train, val, test, dir,
                         &done_runs);
        }
        if (st != GF_OK) break;
        double *a = malloc(sizeof(double) * 3 * (size_t)n_seeds);
        if (!a) {
            st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "compare: out of memory");
            break;
        }
        double *f = a + n_seeds, *sc = a + 2 * n_seeds;
        for (int s = 0; s < n_seeds; s++) {
            const gf_compare_trial *t = &e->trials[s];
            a[s] = t->accuracy;
            f[s] = t->macro_f1;
            sc[s] = t->seconds;
            if (t->arena_peak + t->state_bytes > e->peak_bytes)
                e->peak_bytes = t->arena_peak + t->state_bytes;
            for (int c = 0; c < k * k; c++) e->confusion[c] += t->confusion[c];
        }
        mean_sd(a, n_seeds, &e->acc_mean, &e->acc_sd);
        mean_sd(f, n_seeds, &e->f1_mean, &e->f1_sd);
        double sd_unused;
        mean_sd(sc, n_seeds, &e->seconds_mean, &sd_unused);
        free(a);
    }
    if (!p->work_dir) rmdir(dir);
done:
    r->seconds = gf_now_seconds() - t0;
    if (st != GF_OK) {
        gf_compare_result_free(r);
        return st;
    }
    *out = r;
    return GF_OK;
}

/* ---- printing ------------------------------------------------------------------------------ */

static void fmt_bytes(double b, char *buf, size_t n) {
    if (b < 0) snprintf(buf, n, "-");
    else if (b >= 1024.0 * 1024.0) snprintf(buf, n, "%.2f MB", b / (1024.0 * 1024.0));
    else snprintf(buf, n, "%.1f KB", b / 1024.0);
}

static void fmt_count(int64_t v, char *buf, size_t n) {
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", (long long)v);
    size_t len = strlen(raw), at = 0;
    for (size_t i = 0; i < len && at + 2 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[at++] = ',';
        buf[at++] = raw[i];
    }
    buf[at] = '\0';
}

void gf_compare_print(const gf_compare_result *r, FILE *out, bool details) {
    if (!r || !out) return;
    fprintf(out, "compare: %s%s%s, %d classes, %lld train / %lld val / %lld test examples\n",
            r->model, r->pretrained ? " from " : "", r->pretrained ? r->pretrained : "",
            r->n_classes, (long long)r->n_train, (long long)r->n_val, (long long)r->n_test);
    fprintf(out, "budget: %d epochs, batch %lld, %s lr %g; %d seed%s; %d thread%s\n", r->epochs,
            (long long)r->batch_size, gf_optim_kind_name(r->optim.kind), r->optim.lr, r->n_seeds,
            r->n_seeds == 1 ? "" : "s", r->n_threads, r->n_threads == 1 ? "" : "s");
    fprintf(out, "%-19s %-17s %-17s %11s %8s %10s %10s\n", "strategy", "accuracy", "macro-F1",
            "trainable", "time s", "peak mem", "delta");
    for (int i = 0; i < r->n; i++) {
        const gf_compare_entry *e = &r->entries[i];
        char acc[32], f1[32], tr[32], mem[32], dl[32];
        snprintf(acc, sizeof acc, "%.4f ± %.4f", e->acc_mean, e->acc_sd);
        snprintf(f1, sizeof f1, "%.4f ± %.4f", e->f1_mean, e->f1_sd);
        fmt_count(e->params_trainable, tr, sizeof tr);
        fmt_bytes((double)e->peak_bytes, mem, sizeof mem);
        fmt_bytes(e->n_trials > 0 ? (double)e->trials[0].delta_bytes : -1.0, dl, sizeof dl);
        /* "±" is two bytes in UTF-8: pad by one more so the columns line up */
        fprintf(out, "%-19s %-18s %-18s %11s %8.1f %10s %10s\n", e->name, acc, f1, tr,
                e->seconds_mean, mem, dl);
    }
    char base[32];
    fmt_bytes((double)r->base_bytes, base, sizeof base);
    fprintf(out, "accuracy and macro-F1 on the test data, mean ± sample sd over seeds; peak mem = "
                 "arena peak + parameters, gradients, optimizer state and caches; delta = "
                 "gf_transfer_delta_save size against the base (%s)\n", base);
    for (int i = 0; i < r->n; i++)
        if (r->entries[i].note[0])
            fprintf(out, "  %s: %s\n", r->entries[i].name, r->entries[i].note);
    if (!details) return;
    const int k = r->n_classes;
    for (int i = 0; i < r->n; i++) {
        const gf_compare_entry *e = &r->entries[i];
        fprintf(out, "\n%s (%lld of %lld parameters trained)\n", e->name,
                (long long)e->params_trainable, (long long)e->params_total);
        for (int s = 0; s < e->n_trials; s++) {
            const gf_compare_trial *t = &e->trials[s];
            fprintf(out, "  seed %llu: accuracy %.4f, macro-F1 %.4f, %.1f s, arena peak %zu B, "
                         "state %zu B, maxrss +%ld KB, delta %lld B (%d tensors)\n",
                    (unsigned long long)t->seed, t->accuracy, t->macro_f1, t->seconds,
                    t->arena_peak, t->state_bytes, t->rss_delta_kb, (long long)t->delta_bytes,
                    t->delta_tensors);
            fprintf(out, "    train loss:");
            for (int j = 0; j < t->epochs; j++) fprintf(out, " %.4f", t->train_loss[j]);
            fprintf(out, "\n    val acc:   ");
            for (int j = 0; j < t->epochs; j++) fprintf(out, " %.4f", t->val_acc[j]);
            fprintf(out, "\n");
        }
        fprintf(out, "  confusion (summed over seeds; rows true, columns predicted):\n");
        for (int a = 0; a < k; a++) {
            fprintf(out, "    %-12.12s", r->class_names[a]);
            for (int b = 0; b < k; b++) fprintf(out, " %6lld", (long long)e->confusion[a * k + b]);
            fprintf(out, "\n");
        }
    }
}

/* ---- JSON --------------------------------------------------------------------------------- */

static cJSON *num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *num_array(const double *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, num(v[i]));
    return a;
}

static cJSON *matrix(const int64_t *m, int k) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < k; i++) {
        cJSON *row = cJSON_CreateArray();
        for (int j = 0; row && j < k; j++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)m[i * k + j]));
        cJSON_AddItemToArray(a, row);
    }
    return a;
}

static cJSON *str_or_null(const char *s) { return s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

static cJSON *stat_obj(double mean, double sd, const gf_compare_entry *e, int which) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "mean", num(mean));
    if (which != 2) cJSON_AddItemToObject(o, "sd", num(sd));
    cJSON *a = cJSON_CreateArray();
    for (int s = 0; s < e->n_trials; s++)
        cJSON_AddItemToArray(a, num(which == 0   ? e->trials[s].accuracy
                                    : which == 1 ? e->trials[s].macro_f1
                                                 : e->trials[s].seconds));
    cJSON_AddItemToObject(o, "trials", a);
    return o;
}

char *gf_compare_json(gf_ctx *ctx, const gf_compare_result *r) {
    if (!r) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "compare json: NULL result");
        return NULL;
    }
    cJSON *root = cJSON_CreateObject();
    if (!root) goto oom;
    cJSON_AddItemToObject(root, "model", str_or_null(r->model));
    cJSON_AddItemToObject(root, "pretrained", str_or_null(r->pretrained));
    cJSON_AddItemToObject(root, "teacher", str_or_null(r->teacher));
    cJSON *cls = cJSON_CreateArray();
    for (int i = 0; cls && i < r->n_classes; i++)
        cJSON_AddItemToArray(cls, cJSON_CreateString(r->class_names[i]));
    cJSON_AddItemToObject(root, "classes", cls);
    cJSON_AddNumberToObject(root, "n_train", (double)r->n_train);
    cJSON_AddNumberToObject(root, "n_val", (double)r->n_val);
    cJSON_AddNumberToObject(root, "n_test", (double)r->n_test);
    cJSON *b = cJSON_AddObjectToObject(root, "budget");
    cJSON_AddNumberToObject(b, "epochs", r->epochs);
    cJSON_AddNumberToObject(b, "batch_size", (double)r->batch_size);
    cJSON_AddStringToObject(b, "optimizer", gf_optim_kind_name(r->optim.kind));
    cJSON_AddNumberToObject(b, "lr", r->optim.lr);
    cJSON_AddNumberToObject(root, "threads", r->n_threads);
    cJSON *sd = cJSON_CreateArray();
    for (int i = 0; sd && i < r->n_seeds; i++)
        cJSON_AddItemToArray(sd, cJSON_CreateNumber((double)r->seeds[i]));
    cJSON_AddItemToObject(root, "seeds", sd);
    cJSON_AddNumberToObject(root, "base_bytes", (double)r->base_bytes);
    cJSON_AddNumberToObject(root, "seconds", r->seconds);
    cJSON_AddStringToObject(root, "memory",
                            "peak_bytes = max over trials of arena_peak_bytes (the run context's "
                            "arena: one step's activations, gradients, graph) + state_bytes "
                            "(parameters, gradient buffers, optimizer state, feature / teacher "
                            "caches); rss_delta_kb = growth of getrusage ru_maxrss during the run");
    cJSON *arr = cJSON_AddArrayToObject(root, "strategies");
    const int k = r->n_classes;
    for (int i = 0; arr && i < r->n; i++) {
        const gf_compare_entry *e = &r->entries[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "name", e->name);
        cJSON_AddStringToObject(o, "note", e->note);
        cJSON_AddNumberToObject(o, "params_total", (double)e->params_total);
        cJSON_AddNumberToObject(o, "params_trainable", (double)e->params_trainable);
        cJSON_AddItemToObject(o, "accuracy", stat_obj(e->acc_mean, e->acc_sd, e, 0));
        cJSON_AddItemToObject(o, "macro_f1", stat_obj(e->f1_mean, e->f1_sd, e, 1));
        cJSON_AddItemToObject(o, "seconds", stat_obj(e->seconds_mean, 0, e, 2));
        cJSON_AddNumberToObject(o, "peak_bytes", (double)e->peak_bytes);
        cJSON_AddNumberToObject(o, "delta_bytes",
                                e->n_trials ? (double)e->trials[0].delta_bytes : -1.0);
        cJSON_AddNumberToObject(o, "delta_tensors",
                                e->n_trials ? (double)e->trials[0].delta_tensors : -1.0);
        cJSON *ts = cJSON_AddArrayToObject(o, "trials");
        for (int s = 0; ts && s < e->n_trials; s++) {
            const gf_compare_trial *t = &e->trials[s];
            cJSON *to = cJSON_CreateObject();
            cJSON_AddItemToArray(ts, to);
            cJSON_AddNumberToObject(to, "seed", (double)t->seed);
            cJSON_AddItemToObject(to, "accuracy", num(t->accuracy));
            cJSON_AddItemToObject(to, "macro_f1", num(t->macro_f1));
            cJSON_AddNumberToObject(to, "seconds", t->seconds);
            cJSON_AddNumberToObject(to, "arena_peak_bytes", (double)t->arena_peak);
            cJSON_AddNumberToObject(to, "state_bytes", (double)t->state_bytes);
            cJSON_AddNumberToObject(to, "rss_delta_kb", (double)t->rss_delta_kb);
            cJSON_AddNumberToObject(to, "delta_bytes", (double)t->delta_bytes);
            cJSON_AddNumberToObject(to, "delta_tensors", (double)t->delta_tensors);
            cJSON_AddItemToObject(to, "train_loss", num_array(t->train_loss, t->epochs));
            cJSON_AddItemToObject(to, "val_acc", num_array(t->val_acc, t->epochs));
            cJSON_AddItemToObject(to, "confusion", matrix(t->confusion, k));
        }
        cJSON_AddItemToObject(o, "confusion", matrix(e->confusion, k));
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) goto oom;
    return s;
oom:
    gf_ctx_set_error(ctx, GF_ERR_NOMEM, "compare json: out of memory");
    return NULL;
}

gf_status gf_compare_write_json(gf_ctx *ctx, const gf_compare_result *r, FILE *out) {
    if (!out) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "compare json: NULL stream");
    char *s = gf_compare_json(ctx, r);
    if (!s) return gf_ctx_status(ctx);
    size_t n = strlen(s);
    bool ok = fwrite(s, 1, n, out) == n && fputc('\n', out) != EOF;
    free(s);
    return ok ? GF_OK : gf_ctx_set_error(ctx, GF_ERR_IO, "compare json: write failed");
}
