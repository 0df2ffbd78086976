/* Splits and subsets: part sizes (sklearn's ceil for held-out parts), disjoint parts covering
 * the dataset, reproducible by seed, stratified class proportions, in-order splits, class
 * subsets relabelled 0..k-1, N per class (first / random), views of views, views outliving
 * their base, and the errors. To add a case, add a check to the function of its kind. */
#include "data_helpers.h"

#include "graft/graft.h"
#include "graft/dataset.h"
#include "graft/split.h"
#include "testutil.h"

static gf_ctx *ctx;

/* 100 examples, features [1] = the index, labels: 50 x class 0, 30 x class 1, 20 x class 2,
 * interleaved so classes are not contiguous. */
static gf_ds *make_base(void) {
    float x[100];
    int64_t y[100];
    for (int i = 0; i < 100; i++) {
        /* 7i mod 10 takes every residue once per 10 examples: 5 zeros, 3 ones, 2 twos */
        const int r = (7 * i) % 10;
        x[i] = (float)i;
        y[i] = r < 5 ? 0 : r < 8 ? 1 : 2;
    }
    static const char *const names[3] = {"zero", "one", "two"};
    gf_ds_desc d = {0};
    d.ndim = 1;
    d.shape[0] = 1;
    d.n = 100;
    d.x_f32 = x;
    d.labels = y;
    d.n_classes = 3;
    d.class_names = names;
    d.name = "base";
    return gf_ds_from_memory(ctx, &d);
}

/* The base index of each example of a view (its feature). */
static void base_indices(const gf_ds *v, int64_t *out) {
    for (int64_t i = 0; i < gf_ds_count(v); i++) {
        float f;
        gf_ds_read(v, &i, 1, &f, NULL, NULL, 0);
        out[i] = (int64_t)f;
    }
}

static void counts_of(const gf_ds *v, int64_t *c) { CHECK(gf_ds_class_counts(ctx, v, c) == GF_OK); }

static void test_random_split(gf_ds *base) {
    gf_split_params p = gf_split_default_params();
    p.val_fraction = 0.15;
    p.test_fraction = 0.201; /* ceil(20.1) = 21 */
    p.seed = 5;
    gf_ds *tr, *va, *te;
    CHECK(gf_split_dataset(ctx, base, &p, &tr, &va, &te) == GF_OK);
    CHECK(tr && va && te);
    if (!tr || !va || !te) return;
    CHECK(gf_ds_count(te) == 21 && gf_ds_count(va) == 15 && gf_ds_count(tr) == 64);
    int seen[100] = {0};
    int64_t idx[100];
    gf_ds *parts[3] = {tr, va, te};
    for (int q = 0; q < 3; q++) {
        base_indices(parts[q], idx);
        for (int64_t i = 0; i < gf_ds_count(parts[q]); i++) {
            seen[idx[i]]++;
            if (i > 0) CHECK(idx[i] > idx[i - 1]); /* dataset order inside a part */
            CHECK(gf_ds_label(parts[q], i) == gf_ds_label(base, idx[i]));
        }
    }
    int once = 0;
    for (int i = 0; i < 100; i++) once += seen[i] == 1;
    CHECK(once == 100);
    CHECK(gf_ds_n_classes(te) == 3 && strcmp(gf_ds_class_name(te, 2), "two") == 0);
    /* the same seed gives the same split; another seed another one */
    int64_t a[100], b[100];
    base_indices(te, a);
    gf_ds *te2, *te3;
    CHECK(gf_split_dataset(ctx, base, &p, NULL, NULL, &te2) == GF_OK);
    base_indices(te2, b);
    CHECK(memcmp(a, b, 21 * sizeof *a) == 0);
    p.seed = 6;
    CHECK(gf_split_dataset(ctx, base, &p, NULL, NULL, &te3) == GF_OK);
    base_indices(te3, b);
    CHECK(memcmp(a, b, 21 * sizeof *a) != 0);
    gf_ds_free(te2);
    gf_ds_free(te3);
    /* counts override fractions; a part of size 0 is NULL */
    gf_split_params q = gf_split_default_params();
    q.test_count = 7;
    gf_ds *tr4, *va4, *te4;
    CHECK(gf_split_dataset(ctx, base, &q, &tr4, &va4, &te4) == GF_OK);
    CHECK(gf_ds_count(te4) == 7 && va4 == NULL && gf_ds_count(tr4) == 93);
    gf_ds_free(tr4);
    gf_ds_free(te4);
    /* not shuffled: test is the last 20, val the 10 before (sklearn's shuffle=False) */
    q = gf_split_default_params();
    q.shuffle = false;
    q.val_fraction = 0.1;
    CHECK(gf_split_dataset(ctx, base, &q, &tr4, &va4, &te4) == GF_OK);
    base_indices(te4, a);
    base_indices(va4, b);
    CHECK(a[0] == 80 && a[19] == 99 && b[0] == 70 && b[9] == 79 && gf_ds_count(tr4) == 70);
    gf_ds_free(tr4);
    gf_ds_free(va4);
    gf_ds_free(te4);
    for (int k = 0; k < 3; k++) gf_ds_free(parts[k]);
}

static void test_stratified(gf_ds *base) {
    gf_split_params p = gf_split_default_params();
    p.stratify = true;
    p.test_fraction = 0.2;
    p.val_fraction = 0.1;
    p.seed = 11;
    gf_ds *tr, *va, *te;
    CHECK(gf_split_dataset(ctx, base, &p, &tr, &va, &te) == GF_OK);
    int64_t c[3];
    counts_of(te, c);
    CHECK(c[0] == 10 && c[1] == 6 && c[2] == 4);
    counts_of(va, c);
    CHECK(c[0] == 5 && c[1] == 3 && c[2] == 2);
    counts_of(tr, c);
    CHECK(c[0] == 35 && c[1] == 21 && c[2] == 14);
    gf_ds_free(tr);
    gf_ds_free(va);
    gf_ds_free(te);
    /* sizes that do not divide: largest remainders keep the total exact (13: 6.5/3.9/2.6) */
    p.val_fraction = 0;
    p.test_count = 13;
    CHECK(gf_split_dataset(ctx, base, &p, NULL, NULL, &te) == GF_OK);
    counts_of(te, c);
    CHECK(c[0] + c[1] + c[2] == 13 && c[0] >= 6 && c[0] <= 7 && c[1] >= 3 && c[1] <= 4 &&
          c[2] >= 2 && c[2] <= 3);
    gf_ds_free(te);
    /* stratified in order: the last examples of each class */
    p = gf_split_default_params();
    p.stratify = true;
    p.shuffle = false;
    p.test_fraction = 0.1;
    CHECK(gf_split_dataset(ctx, base, &p, NULL, NULL, &te) == GF_OK);
    counts_of(te, c);
    CHECK(c[0] == 5 && c[1] == 3 && c[2] == 2);
    int64_t idx[10];
    base_indices(te, idx);
    CHECK(idx[9] == 99);
    gf_ds_free(te);
}

static void test_classes(gf_ds *base) {
    gf_ds *v = gf_split_classes(ctx, base, "1-2");
    CHECK(v && gf_ds_count(v) == 50 && gf_ds_n_classes(v) == 2);
    if (v) {
        CHECK(strcmp(gf_ds_class_name(v, 0), "one") == 0 &&
              strcmp(gf_ds_class_name(v, 1), "two") == 0);
        int64_t idx[50], ok = 0;
        base_indices(v, idx);
        for (int i = 0; i < 50; i++) ok += gf_ds_label(v, i) == gf_ds_label(base, idx[i]) - 1;
        CHECK(ok == 50);
        /* labels come through batches remapped too */
        const int64_t xs[2] = {50, 1}, ys[1] = {50};
        gf_tensor *x = gf_tensor_new(ctx, GF_F32, 2, xs), *y = gf_tensor_new(ctx, GF_I64, 1, ys);
        int64_t all[50];
        for (int i = 0; i < 50; i++) all[i] = i;
        CHECK(gf_ds_batch(ctx, v, all, 50, x, y) == GF_OK);
        int good = 0;
        for (int i = 0; i < 50; i++)
            good += gf_i64(y)[i] == gf_ds_label(base, (int64_t)gf_f32(x)[i]) - 1;
        CHECK(good == 50);
        gf_tensor_free(x);
        gf_tensor_free(y);
    }
    /* "0,2" by numbers, and by names; a view of that view composes the maps */
    gf_ds *w = gf_split_classes(ctx, base, "0, 2");
    gf_ds *w2 = gf_split_classes(ctx, base, "two,zero");
    CHECK(w && w2 && gf_ds_count(w) == 70 && gf_ds_count(w2) == 70);
    if (w) {
        CHECK(strcmp(gf_ds_class_name(w, 1), "two") == 0);
        gf_ds *ww = gf_split_classes(ctx, w, "1"); /* class "two" of w = label 2 of base */
        CHECK(ww && gf_ds_count(ww) == 20 && gf_ds_n_classes(ww) == 1 && gf_ds_label(ww, 0) == 0);
        if (ww) CHECK(strcmp(gf_ds_class_name(ww, 0), "two") == 0);
        gf_ds_free(ww);
    }
    /* bad tokens name themselves */
    CHECK(gf_split_classes(ctx, base, "1,7") == NULL && strstr(gf_ctx_error(ctx), "'7'"));
    gf_ctx_clear_error(ctx);
    CHECK(gf_split_classes(ctx, base, "2-1") == NULL && strstr(gf_ctx_error(ctx), "'2-1'"));
    gf_ctx_clear_error(ctx);
    CHECK(gf_split_classes(ctx, base, "cat") == NULL && strstr(gf_ctx_error(ctx), "'cat'"));
    gf_ctx_clear_error(ctx);
    CHECK(gf_split_classes(ctx, base, "") == NULL && strstr(gf_ctx_error(ctx), "empty"));
    gf_ctx_clear_error(ctx);
    gf_ds_free(v);
    gf_ds_free(w);
    gf_ds_free(w2);
}

static void test_per_class(gf_ds *base) {
    gf_ds *v = gf_split_per_class(ctx, base, 4, false, 0, false);
    CHECK(v && gf_ds_count(v) == 12);
    if (v) {
        int64_t c[3], idx[12];
        counts_of(v, c);
        CHECK(c[0] == 4 && c[1] == 4 && c[2] == 4);
        /* the first four of each class in dataset order */
        base_indices(v, idx);
        int64_t seen[3] = {0}, ok = 0;
        for (int64_t i = 0; i < 100; i++) {
            int64_t y = gf_ds_label(base, i);
            if (seen[y]++ < 4) {
                bool found = false;
                for (int j = 0; j < 12; j++) found |= idx[j] == i;
                ok += found;
            }
        }
        CHECK(ok == 12);
    }
    gf_ds *r1 = gf_split_per_class(ctx, base, 4, true, 3, false);
    gf_ds *r2 = gf_split_per_class(ctx, base, 4, true, 3, false);
    gf_ds *r3 = gf_split_per_class(ctx, base, 4, true, 4, false);
    int64_t a[12], b[12];
    base_indices(r1, a);
    base_indices(r2, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    base_indices(r3, b);
    CHECK(memcmp(a, b, sizeof a) != 0);
    /* a class with fewer examples: an error naming it, or all of them when allowed */
    CHECK(gf_split_per_class(ctx, base, 25, false, 0, false) == NULL);
    CHECK(strstr(gf_ctx_error(ctx), "class 2 (two) has 20 examples, 25 asked") != NULL);
    gf_ctx_clear_error(ctx);
    gf_ds *f = gf_split_per_class(ctx, base, 25, false, 0, true);
    CHECK(f && gf_ds_count(f) == 70);
    gf_ds_free(f);
    CHECK(gf_split_per_class(ctx, base, 0, false, 0, false) == NULL);
    gf_ctx_clear_error(ctx);
    gf_ds_free(v);
    gf_ds_free(r1);
    gf_ds_free(r2);
    gf_ds_free(r3);
}

static void test_views_and_errors(void) {
    gf_ds *base = make_base();
    const int64_t pick[4] = {99, 0, 99, 42};
    gf_ds *v = gf_split_indices(ctx, base, pick, 4);
    gf_ds *vv = gf_split_indices(ctx, v, (const int64_t[]){3, 0}, 2);
    gf_ds_free(base); /* the views keep the base alive */
    CHECK(v && vv && gf_ds_count(v) == 4);
    int64_t idx[4];
    base_indices(v, idx);
    CHECK(idx[0] == 99 && idx[1] == 0 && idx[2] == 99 && idx[3] == 42);
    base_indices(vv, idx);
    CHECK(idx[0] == 42 && idx[1] == 99);
    char desc[64];
    CHECK(strstr(gf_ds_describe(vv, desc, sizeof desc), "base (view): 2 x [1]") != NULL);
    CHECK(gf_split_indices(ctx, v, (const int64_t[]){4}, 1) == NULL);
    CHECK(strstr(gf_ctx_error(ctx), "index 4 (position 0) outside 0..3") != NULL);
    gf_ctx_clear_error(ctx);
    /* split parameters */
    gf_split_params p = gf_split_default_params();
    gf_ds *tr = (gf_ds *)1, *te = (gf_ds *)1;
    p.test_fraction = 1.0;
    CHECK(gf_split_dataset(ctx, v, &p, &tr, NULL, &te) == GF_ERR_INVALID && !tr && !te);
    gf_ctx_clear_error(ctx);
    p = gf_split_default_params();
    p.val_count = 2;
    p.test_count = 2;
    CHECK(gf_split_dataset(ctx, v, &p, &tr, NULL, &te) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "leave no training examples out of 4") != NULL);
    gf_ctx_clear_error(ctx);
    CHECK(gf_split_dataset(ctx, NULL, NULL, &tr, NULL, NULL) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    /* stratifying a regression dataset */
    const float x[4] = {1, 2, 3, 4};
    gf_ds_desc d = {0};
    d.ndim = 1;
    d.shape[0] = 1;
    d.n = 4;
    d.x_f32 = x;
    d.targets = x;
    gf_ds *reg = gf_ds_from_memory(ctx, &d);
    p = gf_split_default_params();
    p.stratify = true;
    CHECK(gf_split_dataset(ctx, reg, &p, &tr, NULL, &te) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "regression") != NULL);
    gf_ctx_clear_error(ctx);
    p.stratify = false; /* but a plain random split of it works */
    CHECK(gf_split_dataset(ctx, reg, &p, &tr, NULL, &te) == GF_OK && gf_ds_count(te) == 1);
    gf_ds_free(tr);
    gf_ds_free(te);
    CHECK(gf_split_classes(ctx, reg, "0") == NULL);
    gf_ctx_clear_error(ctx);
    gf_ds_free(reg);
    gf_ds_free(v);
    gf_ds_free(vv);
}

int main(void) {
    ctx = gf_ctx_new(NULL);
    gf_ds *base = make_base();
    CHECK(base != NULL);
    int64_t c[3];
    counts_of(base, c);
    CHECK(c[0] == 50 && c[1] == 30 && c[2] == 20);
    test_random_split(base);
    test_stratified(base);
    test_classes(base);
    test_per_class(base);
    gf_ds_free(base);
    test_views_and_errors();
    CHECK(gf_ctx_status(ctx) == GF_OK);
    gf_ctx_free(ctx);
    return test_finish("test_data_split");
}
