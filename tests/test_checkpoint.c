/* Checkpoint tests: gf_fit resumed from every checkpoint of a run (each optimizer step, the
 * last batch of an epoch, each epoch boundary) ends bitwise where the uninterrupted run ends,
 * in four configurations; checkpoints change nothing in the training; keep-last / keep-best
 * rotation; all-or-nothing restores with specific errors; the docs example; the fuzz seed
 * corpus (GRAFT_WRITE_CORPUS=1 rewrites tests/fuzz/corpus/checkpoint).
 * To add a case: add a configuration to `configs` in main (it then runs through
 * test_resume_everywhere), or write a test_* function and call it from main. */
#define _POSIX_C_SOURCE 200809L
#include "graft/graft.h"
#include "graft/checkpoint.h"
#include "testutil.h"
#include "fuzz/fuzz_checkpoint_setup.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { F = 4, K = 3 };

/* ---- a small run ------------------------------------------------------------------------- */

typedef struct cfg {
    const char *name;
    gf_optim_kind opt;
    int sched;          /* 0 none, 1 warmup + cosine per step, 2 plateau per epoch, 3 one-cycle */
    int accum;
    bool val, bn, dropout, restore_best, nan_example;
    int patience;
    double min_delta, clip_norm;
    gf_monitor mon;
    int epochs, threads;
} cfg;

typedef struct run {
    gf_ctx *ctx;
    gf_ds *tr, *va;
    gf_loader *lt, *lv;
    gf_module *m;
    gf_optim *o;
    gf_sched *s;
} run;

/* n examples of K Gaussian blobs (see test_train.c); nan_at >= 0 poisons one example. */
static gf_ds *blobs(gf_ctx *ctx, int64_t n, uint64_t seed, int64_t nan_at) {
    float *x = malloc(sizeof(float) * (size_t)(n * F));
    int64_t *y = malloc(sizeof(int64_t) * (size_t)n);
    gf_rng r;
    gf_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int64_t)gf_rng_below(&r, K);
        for (int j = 0; j < F; j++) x[i * F + j] = gf_rng_normal(&r) + (j == y[i] ? 2.0f : 0.0f);
    }
    if (nan_at >= 0) x[nan_at * F] = NAN;
    return test_ds_take(ctx, NULL, 1, (int64_t[]){F}, n, x, y, NULL, K);
}

static gf_module *model(gf_ctx *ctx, const cfg *c, int hidden) {
    gf_rng r;
    gf_rng_seed(&r, 3);
    gf_module *m = gf_nn_sequential(ctx);
    gf_module_append(ctx, m, gf_nn_linear(ctx, &r, F, hidden, true));
    if (c->bn) gf_module_append(ctx, m, gf_nn_batch_norm1d(ctx, hidden, NULL));
    gf_module_append(ctx, m, gf_nn_relu(ctx));
    if (c->dropout) gf_module_append(ctx, m, gf_nn_dropout(ctx, 0.2f));
    gf_module_append(ctx, m, gf_nn_linear(ctx, &r, hidden, K, true));
    return gf_ctx_status(ctx) == GF_OK ? m : (gf_module_free(m), NULL);
}

static gf_sched *schedule(gf_ctx *ctx, gf_optim *o, int kind, int64_t total_steps) {
    if (kind == 1) {
        gf_sched_params cos = gf_sched_default_params(GF_SCHED_COSINE);
        cos.t_max = 30;
        cos.interval = GF_SCHED_PER_STEP;
        return gf_sched_warmup(ctx, o, 5, 0.1, &cos);
    }
    gf_sched_params sp = gf_sched_default_params(kind == 2 ? GF_SCHED_PLATEAU : GF_SCHED_ONECYCLE);
    if (kind == 2) {
        sp.patience = 0;
        sp.factor = 0.5;
        sp.mode_max = true;
    } else {
        sp.max_lr = 0.05;
        sp.total_steps = total_steps;
    }
    return gf_sched_new(ctx, o, &sp);
}

static bool run_new(run *r, const cfg *c) {
    memset(r, 0, sizeof *r);
    gf_ctx_params cp = gf_ctx_default_params();
    cp.seed = 11;
    cp.n_threads = c->threads;
    r->ctx = gf_ctx_new(&cp);
    r->tr = blobs(r->ctx, 200, 1, c->nan_example ? 37 : -1);
    r->va = c->val ? blobs(r->ctx, 60, 2, -1) : NULL;
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 16; /* 13 batches, the last of 8 */
    lp.seed = 9;
    r->lt = gf_loader_new(r->ctx, r->tr, &lp);
    lp.shuffle = false;
    lp.batch_size = 25;
    r->lv = c->val ? gf_loader_new(r->ctx, r->va, &lp) : NULL;
    r->m = model(r->ctx, c, 16);
    gf_optim_params hp = gf_optim_default_params(c->opt);
    hp.lr = c->opt == GF_OPTIM_SGD ? 0.05 : 0.01;
    if (c->opt == GF_OPTIM_SGD) {
        hp.momentum = 0.9;
        hp.nesterov = true;
    }
    r->o = r->m ? gf_train_optim_new(r->ctx, r->m, &hp, NULL, 0) : NULL;
    const int64_t steps = (int64_t)c->epochs * ((13 + c->accum - 1) / c->accum);
    r->s = (c->sched && r->o) ? schedule(r->ctx, r->o, c->sched, steps) : NULL;
    return r->lt && r->m && r->o && (!c->val || r->lv) && (!c->sched || r->s);
}

static void run_free(run *r) {
    gf_sched_free(r->s);
    gf_optim_free(r->o);
    gf_module_free(r->m);
    gf_loader_free(r->lt);
    gf_loader_free(r->lv);
    gf_ds_free(r->tr);
    gf_ds_free(r->va);
    gf_ctx_free(r->ctx);
}

static gf_fit_params fit_params(const cfg *c) {
    gf_fit_params p = gf_fit_default_params();
    p.epochs = c->epochs;
    p.accum_steps = c->accum;
    p.clip_norm = c->clip_norm;
    p.restore_best = c->restore_best;
    p.patience = c->patience;
    p.min_delta = c->min_delta;
    p.monitor = c->mon;
    p.on_nonfinite = c->nan_example ? GF_NONFINITE_SKIP : GF_NONFINITE_STOP;
    return p;
}

/* ---- comparing whole states ------------------------------------------------------------- */

/* Field by field (the struct has padding). */
static bool same_rng(const gf_rng *a, const gf_rng *b) {
    return a->key == b->key && a->counter == b->counter && a->lane == b->lane &&
           memcmp(a->block, b->block, sizeof a->block) == 0;
}

/* Weights and buffers, optimizer and schedule state, RNG, loader positions: bitwise. */
static bool same_state(run *a, run *b, const char *what) {
    bool ok = true;
    gf_named_tensors *la = gf_module_named_tensors(a->ctx, a->m, GF_STATE_ALL);
    gf_named_tensors *lb = gf_module_named_tensors(b->ctx, b->m, GF_STATE_ALL);
    for (int i = 0; ok && i < la->n; i++) {
        const gf_tensor *x = la->items[i].tensor, *y = lb->items[i].tensor;
        ok = x->numel == y->numel &&
             memcmp(x->data, y->data, gf_dtype_size(x->dtype) * (size_t)x->numel) == 0;
        if (!ok) fprintf(stderr, "%s: %s differs\n", what, la->items[i].name);
    }
    gf_named_tensors_free(la);
    gf_named_tensors_free(lb);
    gf_state_list *sa = gf_state_list_new(a->ctx), *sb = gf_state_list_new(b->ctx);
    gf_optim_export(a->ctx, a->o, sa);
    gf_optim_export(b->ctx, b->o, sb);
    if (a->s) gf_sched_export(a->ctx, a->s, sa);
    if (b->s) gf_sched_export(b->ctx, b->s, sb);
    ok = ok && gf_state_list_meta_count(sa) == gf_state_list_meta_count(sb) &&
         gf_state_list_count(sa) == gf_state_list_count(sb);
    for (int i = 0; ok && i < gf_state_list_meta_count(sa); i++) {
        const char *v = gf_state_list_get_meta(sb, gf_state_list_meta_key(sa, i));
        ok = v && strcmp(v, gf_state_list_meta_value(sa, i)) == 0;
        if (!ok) fprintf(stderr, "%s: %s differs\n", what, gf_state_list_meta_key(sa, i));
    }
    for (int i = 0; ok && i < gf_state_list_count(sa); i++) {
        const gf_tensor *x = gf_state_list_tensor(sa, i);
        const gf_tensor *y = gf_state_list_find(sb, gf_state_list_name(sa, i));
        ok = y && memcmp(x->data, y->data, 4 * (size_t)x->numel) == 0;
        if (!ok) fprintf(stderr, "%s: %s differs\n", what, gf_state_list_name(sa, i));
    }
    gf_state_list_free(sa);
    gf_state_list_free(sb);
    if (ok && !same_rng(gf_ctx_rng(a->ctx), gf_ctx_rng(b->ctx))) {
        fprintf(stderr, "%s: the RNG differs\n", what);
        ok = false;
    }
    if (ok && (gf_loader_epoch(a->lt) != gf_loader_epoch(b->lt) ||
               gf_loader_batch_index(a->lt) != gf_loader_batch_index(b->lt))) {
        fprintf(stderr, "%s: the loader position differs\n", what);
        ok = false;
    }
    return ok;
}

static char *make_tmpdir(void) {
    char tmpl[] = "/tmp/graft-ckpt-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static int count_files(const char *dir, const char *substr) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && strstr(e->d_name, substr)) n++;
    if (d) closedir(d);
    return n;
}

static void remove_dir(char *dir) {
    if (!dir) return;
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4096];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
    free(dir);
}

/* ---- resume from every checkpoint ------------------------------------------------------------ */

static void test_resume_everywhere(const cfg *c) {
    char *dir = make_tmpdir();
    run ref, plain;
    CHECK(run_new(&ref, c) && run_new(&plain, c));
    gf_fit_params p = fit_params(c);
    p.checkpoint.dir = dir;
    p.checkpoint.every_steps = 1;
    p.checkpoint.every_epoch = true;
    gf_fit_result rr, rp;
    CHECK(gf_fit(ref.ctx, ref.m, NULL, ref.o, ref.s, ref.lt, ref.lv, &p, &rr) == GF_OK);
    if (gf_ctx_status(ref.ctx)) fprintf(stderr, "%s: %s\n", c->name, gf_ctx_error(ref.ctx));
    gf_fit_params q = fit_params(c);
    CHECK(gf_fit(plain.ctx, plain.m, NULL, plain.o, plain.s, plain.lt, plain.lv, &q, &rp) == GF_OK);
    CHECK(same_state(&ref, &plain, "checkpointing changed the run"));
    CHECK(rr.checkpoints > 0 && rp.checkpoints == 0 && !rr.resumed);
    CHECK(rr.steps == rp.steps && rr.best_epoch == rp.best_epoch && rr.epochs_run == rp.epochs_run);

    gf_ckpt_list *l = gf_ckpt_list_dir(ref.ctx, dir, NULL);
    CHECK(l && l->n == rr.checkpoints);
    int resumed = 0, mid = 0, last_batch = 0, boundary = 0;
    for (int i = 0; l && i < l->n; i++) {
        run r;
        CHECK(run_new(&r, c));
        gf_fit_params pr = fit_params(c);
        pr.resume_from = l->items[i].path;
        gf_fit_result res;
        gf_status st = gf_fit(r.ctx, r.m, NULL, r.o, r.s, r.lt, r.lv, &pr, &res);
        CHECK(st == GF_OK);
        if (st != GF_OK) fprintf(stderr, "%s: %s\n", c->name, gf_ctx_error(r.ctx));
        char what[512];
        snprintf(what, sizeof what, "%s resumed from %s", c->name, l->items[i].path);
        bool same = same_state(&ref, &r, what);
        CHECK(same);
        CHECK(res.resumed && res.steps == rr.steps && res.skipped == rr.skipped &&
              res.best_epoch == rr.best_epoch && res.epochs_run == rr.epochs_run &&
              res.stopped_early == rr.stopped_early && res.restored_best == rr.restored_best);
        CHECK(res.best_metric == rr.best_metric || (isnan(res.best_metric) && isnan(rr.best_metric)));
        resumed += same;
        if (l->items[i].batch == 0) boundary++;
        else if (l->items[i].batch == 13) last_batch++;
        else mid++;
        run_free(&r);
    }
    CHECK(mid > 0 && boundary > 0 && (c->accum > 1 || last_batch > 0));
    printf("%s: %d of %d checkpoints resumed bitwise (%d inside epochs, %d after a last batch, "
           "%d at epoch ends); %lld steps, best epoch %d%s%s\n",
           c->name, resumed, l ? l->n : 0, mid, last_batch, boundary, (long long)rr.steps,
           rr.best_epoch, rr.stopped_early ? ", stopped early" : "",
           rr.skipped ? ", skipped batches" : "");
    gf_ckpt_list_free(l);
    run_free(&ref);
    run_free(&plain);
    remove_dir(dir);
}

/* ---- rotation -------------------------------------------------------------------------------- */

typedef struct metrics {
    double m[16];
    int n;
} metrics;

static bool record(const gf_epoch_stats *s, void *user) {
    metrics *mt = user;
    if (mt->n < 16) mt->m[mt->n++] = s->monitored;
    return true;
}

static void test_rotation(void) {
    cfg c = {"rotation", GF_OPTIM_ADAM, 1, 1, true, true, true, false, false, 0, 0, 0,
             GF_MONITOR_VAL_ACC, 6, 1};
    char *dir = make_tmpdir();
    run r;
    CHECK(run_new(&r, &c));
    metrics mt = {{0}, 0};
    gf_fit_params p = fit_params(&c);
    p.checkpoint.dir = dir;
    p.checkpoint.prefix = "run1";
    p.checkpoint.every_steps = 5;
    p.checkpoint.every_epoch = true;
    p.checkpoint.keep_last = 3;
    p.checkpoint.keep_best = 2;
    p.on_epoch = record;
    p.user = &mt;
    gf_fit_result res;
    CHECK(gf_fit(r.ctx, r.m, NULL, r.o, r.s, r.lt, r.lv, &p, &res) == GF_OK);
    gf_ckpt_list *l = gf_ckpt_list_dir(r.ctx, dir, "run1");
    int regular = 0, best = 0;
    for (int i = 0; l && i < l->n; i++) {
        if (l->items[i].best) {
            best++;
            gf_ckpt *ck = gf_ckpt_open(r.ctx, l->items[i].path);
            CHECK(ck != NULL);
            /* each kept copy holds an epoch among the two best by val accuracy */
            const gf_ckpt_progress *pr = ck ? gf_ckpt_get_progress(ck) : NULL;
            int better = 0;
            for (int e = 0; pr && e < mt.n; e++) better += mt.m[e] > pr->metric;
            CHECK(pr && pr->epoch == l->items[i].epoch && pr->metric == mt.m[pr->epoch - 1]);
            CHECK(better <= 1);
            gf_ckpt_close(ck);
        } else {
            regular++;
        }
    }
    CHECK(regular == 3 && best == 2);
    /* the newest three: steps 75 (epoch 6 batch 10), the end of epoch 6, and step 70 */
    CHECK(l && l->n == 5 && l->items[2].epoch == 6 && l->items[2].batch == 0 &&
          l->items[1].epoch == 5 && l->items[1].batch == 10 && l->items[0].batch == 5);
    char latest[1024];
    CHECK(gf_ckpt_latest(r.ctx, dir, "run1", latest, sizeof latest) == GF_OK);
    CHECK(l && strcmp(latest, l->items[2].path) == 0);
    CHECK(count_files(dir, ".tmp.") == 0 && count_files(dir, ".safetensors") == 5);
    /* no checkpoint under another prefix */
    CHECK(gf_ckpt_latest(r.ctx, dir, "other", latest, sizeof latest) == GF_ERR_IO);
    CHECK(strstr(gf_ctx_error(r.ctx), "no checkpoint") != NULL);
    gf_ctx_clear_error(r.ctx);
    /* stale temporary files of the prefix (a killed writer's) are removed, others kept */
    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s/run1-e000009-b000000000.safetensors.tmp.abc123", dir);
    snprintf(p2, sizeof p2, "%s/unrelated.safetensors.tmp.abc123", dir);
    FILE *f1 = fopen(p1, "w"), *f2 = fopen(p2, "w");
    if (f1) fclose(f1);
    if (f2) fclose(f2);
    gf_ckpt_list *l2 = gf_ckpt_list_dir(r.ctx, dir, "run1");
    CHECK(l2 && l2->n == 5); /* temporary files are never listed */
    gf_ckpt_list_free(l2);
    int removed = -1;
    CHECK(gf_ckpt_clean_temp(r.ctx, dir, "run1", &removed) == GF_OK && removed == 1);
    CHECK(access(p1, F_OK) != 0 && access(p2, F_OK) == 0);
    gf_ckpt_list_free(l);
    run_free(&r);
    remove_dir(dir);
}

/* ---- errors: specific messages, nothing changed ---------------------------------------------- */

/* Copies src to dst changing metadata (drop_key removed; set_key = set_val) and tensors
 * (drop_tensor removed; shrink_tensor replaced by a [1] tensor). */
static void rewrite(gf_ctx *ctx, const char *src, const char *dst, const char *drop_key,
                    const char *set_key, const char *set_val, const char *drop_tensor,
                    const char *shrink_tensor) {
    gf_st_file *f = gf_st_open(ctx, src);
    gf_st_writer *w = gf_st_writer_new(ctx);
    gf_tensor *keep[256];
    int n = 0;
    for (int i = 0; f && i < gf_st_count(f) && n < 256; i++) {
        const gf_st_info *info = gf_st_get(f, i);
        if (drop_tensor && !strcmp(info->name, drop_tensor)) continue;
        gf_tensor *t;
        if (shrink_tensor && !strcmp(info->name, shrink_tensor)) {
            int64_t one = 1;
            t = gf_tensor_new(ctx, GF_F32, 1, &one);
        } else {
            t = gf_st_load(ctx, f, info);
        }
        keep[n++] = t;
        gf_st_writer_add(w, info->name, t, t->dtype == GF_F32 ? GF_ST_F32 : GF_ST_I64);
    }
    for (int i = 0; f && i < gf_st_metadata_count(f); i++) {
        const char *k = gf_st_metadata_key(f, i);
        if (drop_key && !strcmp(k, drop_key)) continue;
        gf_st_writer_set_metadata(w, k, gf_st_metadata_value(f, i));
    }
    if (set_key) gf_st_writer_set_metadata(w, set_key, set_val);
    CHECK(gf_st_writer_save(w, dst) == GF_OK);
    gf_st_writer_free(w);
    for (int i = 0; i < n; i++) gf_tensor_free(keep[i]);
    gf_st_close(f);
}

/* Model bytes, optimizer and schedule exports, RNG and loader positions, as one string of
 * bytes to compare before and after a failed restore. */
static size_t fingerprint(run *r, unsigned char *buf, size_t cap) {
    size_t at = 0;
#define PUT(p, n)                                                                           \
    do {                                                                                    \
        if (at + (n) <= cap) memcpy(buf + at, (p), (n));                                    \
        at += (n);                                                                          \
    } while (0)
    gf_named_tensors *l = gf_module_named_tensors(r->ctx, r->m, GF_STATE_ALL);
    for (int i = 0; i < l->n; i++)
        PUT(l->items[i].tensor->data, gf_dtype_size(l->items[i].tensor->dtype) * (size_t)l->items[i].tensor->numel);
    gf_named_tensors_free(l);
    gf_state_list *s = gf_state_list_new(r->ctx);
    gf_optim_export(r->ctx, r->o, s);
    if (r->s) gf_sched_export(r->ctx, r->s, s);
    for (int i = 0; i < gf_state_list_meta_count(s); i++) {
        PUT(gf_state_list_meta_key(s, i), strlen(gf_state_list_meta_key(s, i)) + 1);
        PUT(gf_state_list_meta_value(s, i), strlen(gf_state_list_meta_value(s, i)) + 1);
    }
    for (int i = 0; i < gf_state_list_count(s); i++)
        PUT(gf_state_list_tensor(s, i)->data, 4 * (size_t)gf_state_list_tensor(s, i)->numel);
    gf_state_list_free(s);
    const gf_rng *g = gf_ctx_rng(r->ctx);
    PUT(&g->key, 8);
    PUT(&g->counter, 8);
    PUT(g->block, 16);
    PUT(&g->lane, 4);
    int64_t pos[2] = {gf_loader_epoch(r->lt), gf_loader_batch_index(r->lt)};
    PUT(pos, sizeof pos);
#undef PUT
    return at;
}

static unsigned char fp_before[1 << 16], fp_after[1 << 16];

/* Restores path into r expecting `status` and a message with `want`, and no change. */
static void expect_refused(run *r, const char *path, gf_status status, const char *want,
                           const gf_ckpt_parts *parts_in) {
    gf_ctx_clear_error(r->ctx);
    size_t n0 = fingerprint(r, fp_before, sizeof fp_before);
    gf_ckpt *ck = gf_ckpt_open(r->ctx, path);
    gf_status st = gf_ctx_status(r->ctx);
    if (ck) {
        gf_ckpt_parts parts;
        if (parts_in) parts = *parts_in;
        else {
            memset(&parts, 0, sizeof parts);
            parts.model = r->m;
            parts.opt = r->o;
            parts.sched = r->s;
            parts.rng = gf_ctx_rng(r->ctx);
            parts.train = r->lt;
            parts.val = r->lv;
        }
        st = gf_ckpt_restore(r->ctx, ck, &parts);
        gf_ckpt_close(ck);
    }
    CHECK(st == status);
    if (!strstr(gf_ctx_error(r->ctx), want)) {
        fprintf(stderr, "message '%s' lacks '%s'\n", gf_ctx_error(r->ctx), want);
        CHECK(0);
    }
    size_t n1 = fingerprint(r, fp_after, sizeof fp_after);
    CHECK(n0 == n1 && n0 <= sizeof fp_before && memcmp(fp_before, fp_after, n0) == 0);
    gf_ctx_clear_error(r->ctx);
}

static void test_errors(void) {
    cfg c = {"errors", GF_OPTIM_ADAM, 1, 1, true, true, true, true, false, 0, 0, 0,
             GF_MONITOR_AUTO, 2, 1};
    char *dir = make_tmpdir();
    char good[1024], bad[1024];
    run r;
    CHECK(run_new(&r, &c));
    gf_fit_params p = fit_params(&c);
    p.checkpoint.dir = dir;
    p.checkpoint.every_steps = 7;
    CHECK(gf_fit(r.ctx, r.m, NULL, r.o, r.s, r.lt, r.lv, &p, NULL) == GF_OK);
    CHECK(gf_ckpt_latest(r.ctx, dir, NULL, good, sizeof good) == GF_OK); /* epoch 1, batch 8 */
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    run t; /* a fresh run to restore into: it must stay as it is after every refusal */
    CHECK(run_new(&t, &c));

    expect_refused(&t, "/nonexistent/x.safetensors", GF_ERR_IO, "/nonexistent/x.safetensors", NULL);
    CHECK(gf_weights_save(t.ctx, t.m, bad, NULL, 0) == GF_OK);
    expect_refused(&t, bad, GF_ERR_FORMAT, "not a graft checkpoint", NULL);
    rewrite(r.ctx, good, bad, NULL, "graft.checkpoint.version", "2", NULL, NULL);
    expect_refused(&t, bad, GF_ERR_FORMAT, "version '2'; this graft reads version 1", NULL);
    rewrite(r.ctx, good, bad, "graft.epoch", NULL, NULL, NULL, NULL);
    expect_refused(&t, bad, GF_ERR_FORMAT, "missing metadata 'graft.epoch'", NULL);
    rewrite(r.ctx, good, bad, NULL, "graft.batch", "-3", NULL, NULL);
    expect_refused(&t, bad, GF_ERR_FORMAT, "'graft.batch' = '-3' is not an integer in [0, 2^53)", NULL);
    rewrite(r.ctx, good, bad, NULL, "graft.rng", "key=1 counter=2", NULL, NULL);
    expect_refused(&t, bad, GF_ERR_FORMAT, "'graft.rng' = 'key=1 counter=2' is not", NULL);
    rewrite(r.ctx, good, bad, NULL, "graft.loader.train", "epoch=1 batch=14 batches=13", NULL, NULL);
    expect_refused(&t, bad, GF_ERR_FORMAT, "'graft.loader.train' = 'epoch=1 batch=14", NULL);
    rewrite(r.ctx, good, bad, NULL, "graft.settings", "[1, 2]", NULL, NULL);
    expect_refused(&t, bad, GF_ERR_FORMAT, "'graft.settings' is not a JSON object", NULL);
    rewrite(r.ctx, good, bad, NULL, "graft.epochs", "3", NULL, NULL);
    expect_refused(&t, bad, GF_ERR_FORMAT, "unknown metadata key 'graft.epochs'", NULL);
    rewrite(r.ctx, good, bad, NULL, "optim.steps", "999", NULL, NULL);
    expect_refused(&t, bad, GF_ERR_FORMAT, "'optim.steps' 999 differs from 'graft.global_step' 21", NULL);
    rewrite(r.ctx, good, bad, NULL, NULL, NULL, "model.0.weight", NULL);
    expect_refused(&t, bad, GF_ERR_FORMAT, "1 model key is missing, the first 'model.0.weight'", NULL);
    rewrite(r.ctx, good, bad, NULL, NULL, NULL, NULL, "model.1.running_mean");
    expect_refused(&t, bad, GF_ERR_SHAPE, "'model.1.running_mean' has shape [1], the model's is [16]", NULL);
    rewrite(r.ctx, good, bad, NULL, NULL, NULL, NULL, "optim.state.0.weight.exp_avg");
    expect_refused(&t, bad, GF_ERR_SHAPE, "optim import: 'optim.state.0.weight.exp_avg' is float32 [1]", NULL);
    rewrite(r.ctx, good, bad, "sched.last_epoch", NULL, NULL, NULL, NULL);
    expect_refused(&t, bad, GF_ERR_FORMAT, "sched.last_epoch", NULL); /* after the optimizer's import: undone */
    {   /* a cut file */
        FILE *in = fopen(good, "rb"), *out = fopen(bad, "wb");
        char buf[4096];
        size_t got = in ? fread(buf, 1, sizeof buf, in) : 0;
        if (out) fwrite(buf, 1, got / 2, out);
        if (in) fclose(in);
        if (out) fclose(out);
        expect_refused(&t, bad, GF_ERR_FORMAT, bad, NULL);
    }
    /* parts that do not fit the file */
    run o;
    CHECK(run_new(&o, &c));
    gf_module *m8 = model(o.ctx, &c, 8), *mbig = gf_nn_sequential(o.ctx);
    gf_module_append(o.ctx, mbig, model(o.ctx, &c, 16));
    gf_ckpt_parts parts;
    memset(&parts, 0, sizeof parts);
    parts.model = m8;
    expect_refused(&o, good, GF_ERR_SHAPE, "'model.0.weight' has shape [16, 4], the model's is [8, 4]", &parts);
    parts.model = mbig;
    expect_refused(&o, good, GF_ERR_FORMAT, "model keys are missing, the first 'model.0.0.weight'", &parts);
    gf_module *small = gf_nn_sequential(o.ctx);
    gf_rng rr;
    gf_rng_seed(&rr, 1);
    gf_module_append(o.ctx, small, gf_nn_linear(o.ctx, &rr, F, 16, true));
    parts.model = small;
    expect_refused(&o, good, GF_ERR_FORMAT, "unexpected tensor 'model.1.weight'", &parts);
    gf_optim_params sgd = gf_optim_default_params(GF_OPTIM_SGD);
    parts.model = o.m;
    parts.opt = gf_train_optim_new(o.ctx, o.m, &sgd, NULL, 0);
    expect_refused(&o, good, GF_ERR_INVALID, "the state is for adam, the optimizer is sgd", &parts);
    gf_optim_free(parts.opt);
    parts.opt = o.o;
    gf_sched_params step = gf_sched_default_params(GF_SCHED_STEP);
    step.step_size = 3;
    parts.sched = gf_sched_new(o.ctx, o.o, &step);
    gf_ctx_clear_error(o.ctx);
    /* the optimizer imports first, the schedule fails: the optimizer is put back */
    expect_refused(&o, good, GF_ERR_INVALID, "for a step schedule", &parts);
    gf_sched_free(parts.sched);
    parts.sched = NULL;
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 50;
    parts.train = gf_loader_new(o.ctx, o.tr, &lp);
    expect_refused(&o, good, GF_ERR_INVALID, "'graft.loader.train' has 13 batches per epoch, the loader 4", &parts);
    gf_loader_free(parts.train);
    parts.train = NULL;
    /* a file without optimizer state, asked for one */
    memset(&parts, 0, sizeof parts);
    parts.model = o.m;
    parts.progress = gf_ckpt_progress_init();
    CHECK(gf_ckpt_save(o.ctx, bad, &parts) == GF_OK);
    parts.opt = o.o;
    expect_refused(&o, bad, GF_ERR_FORMAT, "holds no optimizer state", &parts);
    parts.opt = NULL;
    parts.rng = gf_ctx_rng(o.ctx);
    expect_refused(&o, bad, GF_ERR_FORMAT, "holds no RNG state", &parts);
    /* weights only: the other parts of the file are ignored */
    gf_ckpt *ck = gf_ckpt_open(o.ctx, good);
    memset(&parts, 0, sizeof parts);
    parts.model = o.m;
    CHECK(ck && gf_ckpt_restore(o.ctx, ck, &parts) == GF_OK);
    CHECK(ck && gf_ckpt_has_optim(ck) && gf_ckpt_has_sched(ck) && gf_ckpt_has_rng(ck) &&
          gf_ckpt_has_loader(ck, false) && gf_ckpt_has_loader(ck, true));
    CHECK(ck && gf_ckpt_get_progress(ck)->epoch == 1 && gf_ckpt_get_progress(ck)->batch == 8 &&
          gf_ckpt_get_progress(ck)->global_step == 21);
    const gf_st_info *w0 = ck ? gf_st_find(gf_ckpt_file(ck), "model.0.weight") : NULL;
    CHECK(gf_optim_steps(o.o) == 0 && w0 &&
          memcmp(gf_module_tensor(NULL, o.m, "0.weight")->data, w0->data, 4 * 16 * F) == 0);
    gf_ckpt_close(ck);
    /* reserved names in extra */
    gf_state_list *x = gf_state_list_new(o.ctx);
    gf_state_list_set_meta(o.ctx, x, "graft.epoch", "1");
    parts.extra = x;
    CHECK(gf_ckpt_save(o.ctx, bad, &parts) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(o.ctx), "extra metadata 'graft.epoch' uses a reserved prefix") != NULL);
    gf_ctx_clear_error(o.ctx);
    gf_state_list_free(x);

    /* gf_fit's resume checks: settings that change the numbers, its own "fit.*" entries */
    gf_fit_params pr = fit_params(&c);
    pr.resume_from = good;
    pr.accum_steps = 2;
    size_t n0 = fingerprint(&t, fp_before, sizeof fp_before);
    CHECK(gf_fit(t.ctx, t.m, NULL, t.o, t.s, t.lt, t.lv, &pr, NULL) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(t.ctx), "was written with accum_steps = 1, this run has 2") != NULL);
    gf_ctx_clear_error(t.ctx);
    pr.accum_steps = 1;
    pr.epochs = 1;
    CHECK(gf_fit(t.ctx, t.m, NULL, t.o, t.s, t.lt, t.lv, &pr, NULL) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(t.ctx), "is at epoch 1 batch 8; this run has 1 epochs") != NULL);
    gf_ctx_clear_error(t.ctx);
    pr.epochs = 2;
    rewrite(r.ctx, good, bad, "fit.loss_sum", NULL, NULL, NULL, NULL);
    pr.resume_from = bad;
    CHECK(gf_fit(t.ctx, t.m, NULL, t.o, t.s, t.lt, t.lv, &pr, NULL) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(t.ctx), "missing metadata 'fit.loss_sum'") != NULL);
    gf_ctx_clear_error(t.ctx);
    rewrite(r.ctx, good, bad, NULL, "fit.seen", "x", NULL, NULL);
    CHECK(gf_fit(t.ctx, t.m, NULL, t.o, t.s, t.lt, t.lv, &pr, NULL) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(t.ctx), "malformed 'fit.*' sums") != NULL);
    gf_ctx_clear_error(t.ctx);
    rewrite(r.ctx, good, bad, NULL, NULL, NULL, "fit.best.0.weight", NULL);
    CHECK(gf_fit(t.ctx, t.m, NULL, t.o, t.s, t.lt, t.lv, &pr, NULL) == GF_ERR_FORMAT);
    CHECK(strstr(gf_ctx_error(t.ctx), "best weights 'fit.best.0.weight' missing") != NULL);
    gf_ctx_clear_error(t.ctx);
    size_t n1 = fingerprint(&t, fp_after, sizeof fp_after);
    CHECK(n0 == n1 && memcmp(fp_before, fp_after, n0) == 0);
    /* and the good file resumes into the same fresh run */
    pr.resume_from = good;
    gf_fit_result res;
    CHECK(gf_fit(t.ctx, t.m, NULL, t.o, t.s, t.lt, t.lv, &pr, &res) == GF_OK && res.resumed);
    CHECK(same_state(&r, &t, "errors: resume after refusals"));

    gf_module_free(m8);
    gf_module_free(mbig);
    gf_module_free(small);
    run_free(&o);
    run_free(&t);
    run_free(&r);
    remove_dir(dir);
}

/* ---- the example of docs/CHECKPOINTS.md --------------------------------------------------------- */

/* Trains with a checkpoint every 50 steps and at each epoch end (the newest 3 kept, plus the
 * 2 best epochs); when `dir` already holds a checkpoint, continues from the newest. */
static gf_status train_resumable(gf_ctx *ctx, gf_module *model, gf_optim *opt, gf_sched *sched,
                                 gf_loader *train, gf_loader *val, const char *dir) {
    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = 20;
    fp.patience = 5;
    fp.restore_best = true;
    fp.checkpoint.dir = dir;
    fp.checkpoint.every_steps = 50;
    fp.checkpoint.every_epoch = true;
    fp.checkpoint.keep_last = 3;
    fp.checkpoint.keep_best = 2;
    char latest[4096];
    if (gf_ckpt_latest(ctx, dir, NULL, latest, sizeof latest) == GF_OK)
        fp.resume_from = latest; /* the model, optimizer, schedule and loaders are made as before */
    else
        gf_ctx_clear_error(ctx); /* none yet: start fresh */
    gf_fit_result res;
    gf_status st = gf_fit(ctx, model, NULL, opt, sched, train, val, &fp, &res);
    if (st != GF_OK) fprintf(stderr, "graft: %s\n", gf_ctx_error(ctx));
    return st;
}

static bool stop_at_epoch_3(const gf_epoch_stats *s, void *user) {
    (void)user;
    return s->epoch < 3;
}

static void test_doc_example(void) {
    cfg c = {"doc", GF_OPTIM_ADAMW, 1, 1, true, true, true, true, false, 5, 0, 0,
             GF_MONITOR_AUTO, 20, 1};
    char *dir = make_tmpdir();
    run a, b;
    CHECK(run_new(&a, &c) && run_new(&b, &c));
    CHECK(train_resumable(a.ctx, a.m, a.o, a.s, a.lt, a.lv, dir) == GF_OK); /* uninterrupted */
    char *dir2 = make_tmpdir();
    /* b: stopped by a callback after epoch 3 (as if killed), then the same call resumes */
    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = 20;
    fp.patience = 5;
    fp.restore_best = true;
    fp.checkpoint.dir = dir2;
    fp.checkpoint.every_steps = 50;
    fp.checkpoint.every_epoch = true;
    fp.checkpoint.keep_last = 3;
    fp.checkpoint.keep_best = 2;
    fp.on_epoch = stop_at_epoch_3;
    gf_fit_result res;
    CHECK(gf_fit(b.ctx, b.m, NULL, b.o, b.s, b.lt, b.lv, &fp, &res) == GF_OK &&
          res.stopped_by_callback && res.epochs_run == 3);
    run b2;
    CHECK(run_new(&b2, &c));
    CHECK(train_resumable(b2.ctx, b2.m, b2.o, b2.s, b2.lt, b2.lv, dir2) == GF_OK);
    CHECK(same_state(&a, &b2, "docs example resumed"));
    run_free(&a);
    run_free(&b);
    run_free(&b2);
    remove_dir(dir);
    remove_dir(dir2);
}

/* ---- the fuzz seed corpus ------------------------------------------------------------------------ */

static gf_status corpus_restore(gf_ctx *ctx, const char *path, bool via_fit) {
    fz_setup s;
    if (!fz_setup_new(ctx, &s)) return gf_ctx_status(ctx);
    gf_status st;
    if (via_fit) {
        gf_fit_params fp = fz_fit_params(3);
        fp.resume_from = path;
        st = gf_fit(ctx, s.model, NULL, s.opt, s.sched, s.train, s.val, &fp, NULL);
    } else {
        gf_ckpt *ck = gf_ckpt_open(ctx, path);
        gf_ckpt_parts parts;
        memset(&parts, 0, sizeof parts);
        parts.model = s.model;
        parts.opt = s.opt;
        parts.sched = s.sched;
        parts.rng = gf_ctx_rng(ctx);
        parts.train = s.train;
        parts.val = s.val;
        st = ck ? gf_ckpt_restore(ctx, ck, &parts) : gf_ctx_status(ctx);
        gf_ckpt_close(ck);
    }
    fz_setup_free(&s);
    gf_ctx_clear_error(ctx);
    return st;
}

static void copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    char buf[1 << 14];
    size_t n;
    while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    if (in) fclose(in);
    if (out) fclose(out);
}

static void write_corpus(gf_ctx *ctx, const char *cdir) {
    char *tmp = make_tmpdir();
    fz_setup s;
    CHECK(fz_setup_new(ctx, &s));
    gf_fit_params fp = fz_fit_params(2);
    fp.checkpoint.dir = tmp;
    fp.checkpoint.every_steps = 1;
    fp.checkpoint.every_epoch = true;
    CHECK(gf_fit(ctx, s.model, NULL, s.opt, s.sched, s.train, s.val, &fp, NULL) == GF_OK);
    fz_setup_free(&s);
    const char *pick[][2] = {{"e000000-b000000001", "valid_first_step"},
                             {"e000000-b000000003", "valid_last_batch"},
                             {"e000001-b000000000", "valid_epoch_end"},
                             {"e000001-b000000002", "valid_mid_epoch2"}};
    char src[4400], dst[4400], base[4400];
    for (size_t i = 0; i < sizeof pick / sizeof pick[0]; i++) {
        snprintf(src, sizeof src, "%s/ckpt-%s.safetensors", tmp, pick[i][0]);
        snprintf(dst, sizeof dst, "%s/%s.safetensors", cdir, pick[i][1]);
        copy_file(src, dst);
    }
    snprintf(base, sizeof base, "%s/valid_mid_epoch2.safetensors", cdir);
    const struct { const char *name, *drop, *key, *val, *dropt, *shrink; } bad[] = {
        {"bad_version", NULL, "graft.checkpoint.version", "7", NULL, NULL},
        {"bad_rng", NULL, "graft.rng", "key=0000000000000001 counter=zz", NULL, NULL},
        {"bad_loader", NULL, "graft.loader.val", "epoch=0 batch=4 batches=3", NULL, NULL},
        {"bad_settings", NULL, "graft.settings", "{\"loop\": ", NULL, NULL},
        {"bad_unknown_key", NULL, "graft.extra", "1", NULL, NULL},
        {"bad_optim_steps", NULL, "optim.steps", "4", NULL, NULL},
        {"bad_fit_sums", "fit.seen", NULL, NULL, NULL, NULL},
        {"bad_fit_accum", NULL, "graft.settings", "{\"loop\":\"gf_fit\",\"accum_steps\":2}", NULL, NULL},
        {"bad_no_epoch", "graft.epoch", NULL, NULL, NULL, NULL},
        {"bad_missing_model", NULL, NULL, NULL, "model.3.bias", NULL},
        {"bad_model_shape", NULL, NULL, NULL, NULL, "model.0.weight"},
        {"bad_optim_shape", NULL, NULL, NULL, NULL, "optim.state.1.weight.exp_avg_sq"},
        {"bad_best_shape", NULL, NULL, NULL, NULL, "fit.best.1.running_var"},
        {"bad_sched", "sched.child.1.last_epoch", NULL, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(dst, sizeof dst, "%s/%s.safetensors", cdir, bad[i].name);
        rewrite(ctx, base, dst, bad[i].drop, bad[i].key, bad[i].val, bad[i].dropt, bad[i].shrink);
    }
    FILE *in = fopen(base, "rb");
    snprintf(dst, sizeof dst, "%s/bad_truncated.safetensors", cdir);
    FILE *out = fopen(dst, "wb");
    char buf[1 << 14];
    size_t got = in ? fread(buf, 1, sizeof buf, in) : 0;
    if (out) fwrite(buf, 1, got * 2 / 3, out);
    if (in) fclose(in);
    if (out) fclose(out);
    remove_dir(tmp);
}

static void test_corpus(void) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    if (!src) {
        printf("corpus: GRAFT_SOURCE_DIR not set, skipped\n");
        return;
    }
    char cdir[4096];
    if (strlen(src) > 3000) return;
    snprintf(cdir, sizeof cdir, "%s/tests/fuzz/corpus/checkpoint", src);
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    if (getenv("GRAFT_WRITE_CORPUS")) write_corpus(ctx, cdir);
    DIR *d = opendir(cdir);
    int valid = 0, bad = 0;
    struct dirent *e;
    char path[4400];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", cdir, e->d_name);
        gf_status a = corpus_restore(ctx, path, false), b = corpus_restore(ctx, path, true);
        if (!strncmp(e->d_name, "valid_", 6)) {
            valid++;
            CHECK(a == GF_OK && b == GF_OK);
        } else {
            bad++;
            CHECK(a != GF_OK || b != GF_OK);
            if (a == GF_OK && b == GF_OK) fprintf(stderr, "corpus: %s was accepted\n", e->d_name);
        }
    }
    if (d) closedir(d);
    CHECK(valid >= 4 && bad >= 10);
    printf("corpus: %d valid checkpoints restore, %d broken ones are refused\n", valid, bad);
    gf_ctx_free(ctx);
}

/* ---- a step callback stops mid-epoch (Ctrl-C in the CLI) ---------------------------------------- */

typedef struct stopper {
    int64_t stop_after, seen; /* batches */
} stopper;

static bool stop_after_batches(const gf_step_stats *s, void *user) {
    (void)s;
    stopper *st = user;
    return ++st->seen < st->stop_after;
}

/* Stopped by the step callback after `k` batches with epoch checkpoints only: a checkpoint of
 * that batch (rounded up to its accumulation group) is written, the epoch's end is skipped, and
 * resuming from it ends bitwise where the uninterrupted run ends. */
static void test_stop_mid_epoch(const cfg *c, int64_t k) {
    char *dir = make_tmpdir();
    run ref, a, b;
    CHECK(run_new(&ref, c) && run_new(&a, c) && run_new(&b, c));
    gf_fit_params q = fit_params(c);
    gf_fit_result rr, ra, rb;
    CHECK(gf_fit(ref.ctx, ref.m, NULL, ref.o, ref.s, ref.lt, ref.lv, &q, &rr) == GF_OK);

    gf_fit_params p = fit_params(c);
    p.checkpoint.dir = dir;
    p.checkpoint.every_epoch = true;
    stopper sp = {k, 0};
    p.on_step = stop_after_batches;
    p.user = &sp;
    CHECK(gf_fit(a.ctx, a.m, NULL, a.o, a.s, a.lt, a.lv, &p, &ra) == GF_OK);
    const int64_t per_epoch = 13, in_epoch = (k - 1) % per_epoch + 1; /* batch k's position */
    int64_t end = ((in_epoch + c->accum - 1) / c->accum) * c->accum;  /* its group's end */
    if (end > per_epoch) end = per_epoch;
    const int64_t finished = (k - 1) / per_epoch + (end == per_epoch);
    CHECK(ra.stopped_by_callback && ra.epochs_run == finished);
    CHECK(sp.seen == k + (end - in_epoch));
    gf_ckpt_list *l = gf_ckpt_list_dir(a.ctx, dir, NULL);
    CHECK(l && l->n >= 1);
    if (l && l->n >= 1) {
        const gf_ckpt_entry *last = &l->items[l->n - 1];
        if (end == per_epoch)
            CHECK(last->epoch == finished && last->batch == 0);
        else
            CHECK(last->epoch == finished && last->batch == end);
        gf_fit_params pr = fit_params(c);
        pr.resume_from = last->path;
        CHECK(gf_fit(b.ctx, b.m, NULL, b.o, b.s, b.lt, b.lv, &pr, &rb) == GF_OK);
        char what[160];
        snprintf(what, sizeof what, "%s stopped after batch %lld and resumed", c->name,
                 (long long)k);
        CHECK(same_state(&ref, &b, what));
        CHECK(rb.steps == rr.steps && rb.epochs_run == rr.epochs_run &&
              rb.best_epoch == rr.best_epoch);
    }
    gf_ckpt_list_free(l);
    run_free(&ref);
    run_free(&a);
    run_free(&b);
    remove_dir(dir);
}

int main(void) {
    const cfg configs[] = {
        /* Adam, warmup + cosine per step, dropout, BatchNorm, validation, keep-best weights */
        {"adam-warmup-cosine", GF_OPTIM_ADAM, 1, 1, true, true, true, true, false, 0, 0, 0,
         GF_MONITOR_AUTO, 4, 2},
        /* SGD Nesterov, plateau on val accuracy, accumulation 3 (a short group at each epoch's
         * end), clipping, early stopping by patience */
        {"sgd-plateau-accum", GF_OPTIM_SGD, 2, 3, true, true, true, true, false, 2, 0.02, 1.0,
         GF_MONITOR_VAL_ACC, 8, 1},
        /* AdamW, one-cycle per step, no validation, a NaN example skipped */
        {"adamw-onecycle-skip", GF_OPTIM_ADAMW, 3, 1, false, false, true, false, true, 0, 0, 0,
         GF_MONITOR_AUTO, 3, 2},
        /* RMSprop, no schedule, two threads, keep-best on train accuracy */
        {"rmsprop-plain", GF_OPTIM_RMSPROP, 0, 2, false, true, false, true, false, 0, 0, 0,
         GF_MONITOR_TRAIN_ACC, 3, 2},
    };
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) test_resume_everywhere(&configs[i]);
    const int64_t stops[] = {5, 13, 20, 26, 27};
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        test_stop_mid_epoch(&configs[0], stops[i]); /* one batch per step */
        test_stop_mid_epoch(&configs[1], stops[i]); /* groups of 3 batches */
    }
    test_rotation();
    test_errors();
    test_doc_example();
    test_corpus();
    return test_finish("test_checkpoint");
}
