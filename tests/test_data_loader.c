/* The loader: each epoch a permutation, the same for the same seed and different across
 * epochs and seeds; batch sizes with and without drop_last; prefetching gives bitwise the
 * batches of the synchronous loader (transforms included) and really runs ahead on its own
 * thread; seek resumes exactly; errors are reported and sticky; freeing mid-epoch joins the
 * thread (ASan / valgrind see no leak). To add a case, add a function and call it in main. */
#include "data_helpers.h"

#include <pthread.h>
#include <time.h>

#include "graft/graft.h"
#include "graft/loader.h"
#include "testutil.h"

static gf_ctx *ctx;

/* n images [1, 4, 4] with pixel = (i * 7 + j) % 256, label i % 4. */
static gf_ds *make_images(int64_t n) {
    uint8_t *px = malloc((size_t)n * 16);
    int64_t *y = malloc((size_t)n * sizeof *y);
    for (int64_t i = 0; i < n; i++) {
        for (int j = 0; j < 16; j++) px[i * 16 + j] = (uint8_t)((i * 7 + j) % 256);
        y[i] = i % 4;
    }
    gf_ds_desc d = {0};
    d.ndim = 3;
    d.shape[0] = 1;
    d.shape[1] = 4;
    d.shape[2] = 4;
    d.n = n;
    d.x_u8 = px;
    d.labels = y;
    d.n_classes = 4;
    gf_ds *ds = gf_ds_from_memory(ctx, &d);
    free(px);
    free(y);
    return ds;
}

/* One epoch's examples in order; returns the number of batches. */
static int64_t epoch_order(gf_loader *ld, int64_t *out, int64_t *sizes) {
    gf_batch b;
    int64_t nb = 0, at = 0;
    while (gf_loader_next(ctx, ld, &b)) {
        memcpy(out + at, b.idx, (size_t)b.n * sizeof *out);
        at += b.n;
        if (sizes) sizes[nb] = b.n;
        nb++;
    }
    return nb;
}

static bool is_perm(const int64_t *v, int64_t n) {
    int *seen = calloc((size_t)n, sizeof *seen);
    bool ok = true;
    for (int64_t i = 0; i < n; i++) {
        if (v[i] < 0 || v[i] >= n || seen[v[i]]++) ok = false;
    }
    free(seen);
    return ok;
}

static void test_order(void) {
    gf_ds *ds = make_images(103);
    gf_loader_params p = gf_loader_default_params();
    p.batch_size = 10;
    p.seed = 7;
    gf_loader *a = gf_loader_new(ctx, ds, &p), *b = gf_loader_new(ctx, ds, &p);
    p.seed = 8;
    gf_loader *c = gf_loader_new(ctx, ds, &p);
    CHECK(a && b && c && gf_loader_batches_per_epoch(a) == 11);
    int64_t e0[103], e1[103], f0[103], g0[103], sizes[11];
    CHECK(epoch_order(a, e0, sizes) == 11 && sizes[0] == 10 && sizes[10] == 3);
    CHECK(gf_loader_epoch(a) == 1 && gf_loader_batch_index(a) == 0);
    CHECK(epoch_order(a, e1, NULL) == 11);
    CHECK(epoch_order(b, f0, NULL) == 11);
    CHECK(epoch_order(c, g0, NULL) == 11);
    CHECK(is_perm(e0, 103) && is_perm(e1, 103) && is_perm(g0, 103));
    CHECK(memcmp(e0, f0, sizeof e0) == 0); /* same seed, same order */
    CHECK(memcmp(e0, e1, sizeof e0) != 0); /* a new shuffle each epoch */
    CHECK(memcmp(e0, g0, sizeof e0) != 0); /* another seed, another order */
    /* the order is available without loading */
    int64_t idx[10], cnt;
    CHECK(gf_loader_indices(ctx, a, 1, 3, idx, &cnt) == GF_OK && cnt == 10);
    CHECK(memcmp(idx, e1 + 30, sizeof idx) == 0);
    CHECK(gf_loader_indices(ctx, a, 0, 10, idx, &cnt) == GF_OK && cnt == 3);
    CHECK(gf_loader_indices(ctx, a, 0, 11, idx, &cnt) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    gf_loader_free(a);
    gf_loader_free(b);
    gf_loader_free(c);
    /* no shuffle: 0, 1, 2, ...; drop_last: 10 full batches */
    p = gf_loader_default_params();
    p.batch_size = 10;
    p.shuffle = false;
    p.drop_last = true;
    gf_loader *s = gf_loader_new(ctx, ds, &p);
    CHECK(s && gf_loader_batches_per_epoch(s) == 10);
    int64_t o[103];
    CHECK(epoch_order(s, o, sizes) == 10 && sizes[9] == 10);
    bool seq = true;
    for (int i = 0; i < 100; i++) seq &= o[i] == i;
    CHECK(seq);
    gf_loader_free(s);
    gf_ds_free(ds);
}

/* Runs `epochs` epochs and returns every x, y and idx value in order (malloc'd). */
static float *record(gf_ds *ds, gf_loader_params p, int epochs, size_t *len) {
    gf_loader *ld = gf_loader_new(ctx, ds, &p);
    CHECK(ld != NULL);
    if (!ld) return NULL;
    size_t cap = 1 << 16, n = 0;
    float *v = malloc(cap * sizeof *v);
    for (int e = 0; e < epochs; e++) {
        gf_batch b;
        while (gf_loader_next(ctx, ld, &b)) {
            size_t need = (size_t)(b.x->numel + 3 * b.n + 2);
            if (n + need > cap) {
                while (n + need > cap) cap *= 2;
                v = realloc(v, cap * sizeof *v);
            }
            memcpy(v + n, gf_f32(b.x), (size_t)b.x->numel * sizeof *v);
            n += (size_t)b.x->numel;
            for (int64_t i = 0; i < b.n; i++) {
                v[n++] = (float)gf_i64(b.y)[i];
                v[n++] = (float)b.idx[i];
            }
            v[n++] = (float)b.epoch;
            v[n++] = (float)b.index;
            CHECK(b.x->shape[0] == b.n && b.y->numel == b.n && b.x->ndim == 4);
        }
    }
    gf_loader_free(ld);
    *len = n;
    return v;
}

static void test_prefetch_same(void) {
    gf_ds *ds = make_images(57);
    gf_tf *tf = gf_tf_new(ctx);
    const float mean[1] = {0.5f}, sd[1] = {0.25f};
    gf_tf_random_crop(ctx, tf, 3, 3, 1);
    gf_tf_hflip(ctx, tf, 0.5f);
    gf_tf_affine(ctx, tf, 20, 0.1f, 0.9f, 1.1f);
    gf_tf_normalize(ctx, tf, 1, mean, sd);
    gf_tf_random_erasing(ctx, tf, 0.5f, 0.02f, 0.33f, 0.3f, 3.3f, 0.0f);
    gf_loader_params p = gf_loader_default_params();
    p.batch_size = 8;
    p.seed = 99;
    p.transform = tf;
    p.prefetch = false;
    size_t n1, n2;
    float *sync = record(ds, p, 3, &n1);
    p.prefetch = true;
    float *pre = record(ds, p, 3, &n2);
    CHECK(sync && pre && n1 == n2 && memcmp(sync, pre, n1 * sizeof *sync) == 0);
    /* the transform did something, and the output has the cropped shape */
    CHECK(n1 == (size_t)3 * (57 * 9 + 57 * 2 + 8 * 2));
    /* without a transform: the exact pixels / 255 */
    p.transform = NULL;
    p.shuffle = false;
    float *plain = record(ds, p, 1, &n1);
    CHECK(plain && plain[0] == 0.0f && plain[17] == 8.0f / 255.0f); /* example 1, pixel 1 */
    free(sync);
    free(pre);
    free(plain);
    gf_tf_free(tf);
    gf_ds_free(ds);
}

/* A dataset whose reads are counted and note the thread they run on. */
typedef struct probe {
    pthread_mutex_t mu;
    int reads;
    int off_thread;
    pthread_t main_thread;
    int fail_at; /* index whose read fails, or -1 */
} probe;

static gf_status probe_read(void *user, const int64_t *idx, int64_t n, float *x, void *y, char *err,
                            size_t cap) {
    probe *pr = user;
    pthread_mutex_lock(&pr->mu);
    if (x) {
        pr->reads++;
        if (!pthread_equal(pthread_self(), pr->main_thread)) pr->off_thread++;
    }
    pthread_mutex_unlock(&pr->mu);
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] == pr->fail_at) {
            snprintf(err, cap, "disk on fire at %lld", (long long)idx[i]);
            return GF_ERR_IO;
        }
        if (x) x[i] = (float)idx[i];
        if (y) ((int64_t *)y)[i] = idx[i] % 2;
    }
    return GF_OK;
}

static int probe_reads(probe *pr) {
    pthread_mutex_lock(&pr->mu);
    int r = pr->reads;
    pthread_mutex_unlock(&pr->mu);
    return r;
}

static void test_background(void) {
    probe pr;
    pthread_mutex_init(&pr.mu, NULL);
    pr.reads = pr.off_thread = 0;
    pr.main_thread = pthread_self();
    pr.fail_at = -1;
    gf_ds_source src = {probe_read, NULL, NULL, NULL};
    const int64_t shape[1] = {1};
    gf_ds *ds = gf_ds_from_source(ctx, &src, &pr, 40, 1, shape, 2, NULL, "probe");
    gf_loader_params p = gf_loader_default_params();
    p.batch_size = 4;
    gf_loader *ld = gf_loader_new(ctx, ds, &p);
    gf_batch b;
    CHECK(gf_loader_next(ctx, ld, &b));
    /* while the caller holds batch 0, batch 1 gets prepared without another call */
    bool ahead = false;
    for (int t = 0; t < 2000 && !ahead; t++) {
        ahead = probe_reads(&pr) >= 2;
        if (!ahead) nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    CHECK(ahead);
    CHECK(pr.off_thread == pr.reads); /* every read ran on the loader's thread */
    /* and only one batch ahead: two slots, one held */
    nanosleep(&(struct timespec){0, 20000000}, NULL);
    CHECK(probe_reads(&pr) == 2);
    /* free in the middle of an epoch: the thread is joined */
    gf_loader_free(ld);
    /* an error while reading: reported with epoch and batch, sticky; seek recovers */
    pr.fail_at = 9; /* batch 2 without shuffle */
    p.shuffle = false;
    ld = gf_loader_new(ctx, ds, &p);
    int got = 0;
    while (gf_loader_next(ctx, ld, &b)) got++;
    CHECK(got == 2 && gf_ctx_status(ctx) == GF_ERR_IO);
    CHECK(strstr(gf_ctx_error(ctx), "epoch 0 batch 2") &&
          strstr(gf_ctx_error(ctx), "disk on fire at 9"));
    gf_ctx_clear_error(ctx);
    CHECK(!gf_loader_next(ctx, ld, &b) && gf_ctx_status(ctx) == GF_ERR_IO);
    gf_ctx_clear_error(ctx);
    pr.fail_at = -1;
    CHECK(gf_loader_seek(ctx, ld, 0, 2) == GF_OK);
    CHECK(gf_loader_next(ctx, ld, &b) && b.index == 2 && b.idx[0] == 8);
    gf_loader_free(ld);
    gf_ds_free(ds);
    pthread_mutex_destroy(&pr.mu);
}

static void test_seek(void) {
    gf_ds *ds = make_images(30);
    gf_tf *tf = gf_tf_new(ctx);
    gf_tf_hflip(ctx, tf, 0.5f);
    gf_loader_params p = gf_loader_default_params();
    p.batch_size = 7;
    p.seed = 3;
    p.transform = tf;
    gf_loader *full = gf_loader_new(ctx, ds, &p), *resumed = gf_loader_new(ctx, ds, &p);
    gf_batch b, r;
    /* run the first loader to epoch 1, batch 2; resume the other there directly */
    for (int i = 0; i < 5; i++) CHECK(gf_loader_next(ctx, full, &b)); /* epoch 0: 5 batches */
    CHECK(!gf_loader_next(ctx, full, &b));
    for (int i = 0; i < 2; i++) CHECK(gf_loader_next(ctx, full, &b));
    CHECK(gf_loader_epoch(full) == 1 && gf_loader_batch_index(full) == 2);
    CHECK(gf_loader_seek(ctx, resumed, 1, 2) == GF_OK);
    int same = 0;
    for (int i = 0; i < 3; i++) {
        CHECK(gf_loader_next(ctx, full, &b) && gf_loader_next(ctx, resumed, &r));
        same += b.epoch == r.epoch && b.index == r.index && b.n == r.n &&
                memcmp(b.idx, r.idx, (size_t)b.n * sizeof *b.idx) == 0 &&
                memcmp(gf_f32(b.x), gf_f32(r.x), (size_t)b.x->numel * sizeof(float)) == 0;
    }
    CHECK(same == 3);
    CHECK(!gf_loader_next(ctx, full, &b) && !gf_loader_next(ctx, resumed, &r));
    /* seeking to the end of an epoch is the start of the next */
    CHECK(gf_loader_seek(ctx, resumed, 4, 5) == GF_OK && gf_loader_epoch(resumed) == 5 &&
          gf_loader_batch_index(resumed) == 0);
    CHECK(gf_loader_seek(ctx, resumed, 0, 6) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    gf_loader_free(full);
    gf_loader_free(resumed);
    gf_tf_free(tf);
    gf_ds_free(ds);
}

static void test_errors(void) {
    gf_ds *ds = make_images(5);
    gf_loader_params p = gf_loader_default_params();
    p.batch_size = 0;
    CHECK(gf_loader_new(ctx, ds, &p) == NULL && gf_ctx_status(ctx) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    p.batch_size = 6;
    p.drop_last = true;
    CHECK(gf_loader_new(ctx, ds, &p) == NULL && strstr(gf_ctx_error(ctx), "leaves no batch"));
    gf_ctx_clear_error(ctx);
    gf_tf *tf = gf_tf_new(ctx);
    gf_tf_random_crop(ctx, tf, 9, 9, 0);
    p = gf_loader_default_params();
    p.transform = tf;
    CHECK(gf_loader_new(ctx, ds, &p) == NULL && gf_ctx_status(ctx) == GF_ERR_SHAPE);
    gf_ctx_clear_error(ctx);
    CHECK(gf_loader_new(ctx, NULL, NULL) == NULL);
    gf_ctx_clear_error(ctx);
    /* the loader keeps the dataset alive; a batch larger than the dataset is one batch */
    p = gf_loader_default_params();
    gf_loader *ld = gf_loader_new(ctx, ds, &p);
    gf_ds_free(ds);
    gf_batch b;
    CHECK(ld && gf_loader_next(ctx, ld, &b) && b.n == 5 && b.x->shape[0] == 5);
    CHECK(!gf_loader_next(ctx, ld, &b));
    CHECK(!gf_loader_next(ctx, NULL, &b) && gf_ctx_status(ctx) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    gf_loader_free(ld);
    gf_loader_free(NULL);
    gf_tf_free(tf);
}

int main(void) {
    ctx = gf_ctx_new(NULL);
    test_order();
    test_prefetch_same();
    test_background();
    test_seek();
    test_errors();
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_free(ctx);
    return test_finish("test_data_loader");
}
