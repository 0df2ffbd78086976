/* gf_backward_watch: every watched parameter is told once, and when it is told its gradient
 * already equals what it holds after the whole backward (bit for bit), for every zoo model;
 * the head is told before the first layer; a failing callback stops the backward; a watch
 * does not outlive the backward it was meant for. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"

typedef struct seen {
    int n, told;
    gf_tensor **leaves;
    float **copy;  /* the gradient when told (NULL: none then) */
    int *count;    /* times told */
    int *rank;     /* when told: 0 first */
    int fail_at;   /* the told count at which the callback fails (-1: never) */
} seen;

static gf_status on_ready(gf_ctx *ctx, int i, void *user) {
    seen *s = user;
    if (s->told == s->fail_at)
        return gf_ctx_set_error(ctx, GF_ERR_STATE, "watch test: failing on purpose");
    s->count[i]++;
    s->rank[i] = s->told++;
    const gf_tensor *g = s->leaves[i]->grad;
    if (g) {
        s->copy[i] = malloc(sizeof(float) * (size_t)g->numel);
        memcpy(s->copy[i], g->data, sizeof(float) * (size_t)g->numel);
    }
    return GF_OK;
}

static void seen_init(seen *s, const gf_named_tensors *p) {
    memset(s, 0, sizeof *s);
    s->n = p->n;
    s->fail_at = -1;
    s->leaves = calloc((size_t)p->n, sizeof *s->leaves);
    s->copy = calloc((size_t)p->n, sizeof *s->copy);
    s->count = calloc((size_t)p->n, sizeof *s->count);
    s->rank = calloc((size_t)p->n, sizeof *s->rank);
    for (int i = 0; i < p->n; i++) s->leaves[i] = p->items[i].tensor;
}

static void seen_reset(seen *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->copy[i]);
        s->copy[i] = NULL;
        s->count[i] = 0;
    }
    s->told = 0;
}

static void seen_free(seen *s) {
    seen_reset(s);
    free(s->leaves);
    free(s->copy);
    free(s->count);
    free(s->rank);
}

/* A batch of 3 for the model: images, log-mel frames or token ids. */
static gf_tensor *batch(gf_ctx *ctx, const char *name, gf_rng *rng) {
    if (gf_zoo_is_text(name)) {
        gf_tensor *x = gf_zeros(ctx, GF_F32, 2, (int64_t[]){3, 9});
        for (int64_t i = 0; i < x->numel; i++) /* right-padded with 0 */
            gf_f32(x)[i] = (i % 9) < 5 + i / 9 ? (float)(1 + gf_rng_below(rng, 40)) : 0.0f;
        return x;
    }
    const bool kws = strcmp(name, "kws") == 0;
    gf_tensor *x = gf_zeros(ctx, GF_F32, 4, kws ? (int64_t[]){3, 1, 40, 24} : (int64_t[]){3, 1, 28, 28});
    for (int64_t i = 0; i < x->numel; i++) gf_f32(x)[i] = gf_rng_uniform(rng) - 0.5f;
    return x;
}

/* Two backwards (the gradients accumulate) of model `name` with every parameter watched. */
static void check_model(const char *name) {
    if (strncmp(name, "resnet", 6) == 0 && strcmp(name, "resnet-mini") != 0) return; /* slow */
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_rng rng;
    gf_rng_seed(&rng, 7);
    gf_zoo_params zp = gf_zoo_default_params();
    zp.vocab_size = 50;
    zp.seq_len = 16;
    if (strcmp(name, "kws") == 0) zp.height = 40, zp.width = 24;
    gf_module *m = gf_zoo_build(ctx, name, &zp, &rng);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "%s: %s\n", name, gf_ctx_error(ctx));
        gf_ctx_free(ctx);
        return;
    }
    gf_named_tensors *p = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    seen s;
    seen_init(&s, p);
    for (int round = 0; round < 2; round++) {
        seen_reset(&s);
        gf_tensor *x = batch(ctx, name, &rng);
        gf_tensor *y = gf_zeros(ctx, GF_I64, 1, (int64_t[]){3});
        for (int k = 0; k < 3; k++) gf_i64(y)[k] = k;
        gf_tensor *out = gf_module_forward(ctx, m, x);
        /* per-step outputs (the taggers): a loss over every step */
        gf_tensor *loss = out && out->ndim == 3
                              ? gf_mean(ctx, gf_mul(ctx, out, out), NULL, 0, false)
                              : gf_cross_entropy(ctx, out, y, GF_REDUCE_MEAN, -100);
        CHECK(gf_backward_watch(ctx, s.n, s.leaves, on_ready, &s) == GF_OK);
        CHECK(gf_backward(ctx, loss) == GF_OK);
        if (gf_ctx_status(ctx) != GF_OK) fprintf(stderr, "%s: %s\n", name, gf_ctx_error(ctx));
        int once = 1, equal = 1, reached = 0;
        for (int i = 0; i < s.n; i++) {
            const gf_tensor *g = s.leaves[i]->grad;
            once &= s.count[i] == 1;
            equal &= (g == NULL) == (s.copy[i] == NULL);
            if (g && s.copy[i]) {
                equal &= memcmp(g->data, s.copy[i], sizeof(float) * (size_t)g->numel) == 0;
                reached++;
            }
        }
        CHECK(once);
        CHECK(equal);
        CHECK(reached > 0);
        if (!once || !equal) fprintf(stderr, "  in model %s, round %d\n", name, round);
        gf_ctx_reset(ctx);
    }
    /* the first parameter feeds the first layer, the last one the head: the head's turns
     * final first */
    CHECK(s.rank[s.n - 1] < s.rank[0]);
    seen_free(&s);
    gf_named_tensors_free(p);
    gf_module_free(m);
    gf_ctx_free(ctx);
}

static gf_tensor *leaf(gf_ctx *ctx, float v) {
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, 1, (int64_t[]){4});
    for (int i = 0; i < 4; i++) gf_f32(t)[i] = v + (float)i;
    gf_tensor_set_requires_grad(t, true);
    return t;
}

/* loss = sum(a * b) + sum(a); c watched but unused */
static gf_tensor *small_loss(gf_ctx *ctx, gf_tensor *a, gf_tensor *b) {
    gf_tensor *ab = gf_add(ctx, gf_mul(ctx, a, b), a);
    return gf_sum(ctx, ab, NULL, 0, false);
}

static void test_errors_and_lifetime(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_tensor *a = leaf(ctx, 1.0f), *b = leaf(ctx, -2.0f), *c = leaf(ctx, 0.5f);
    gf_tensor *leaves[3] = {a, b, c};
    gf_named_tensors nt = {3, NULL};
    gf_named_tensor items[3] = {{"a", a, false}, {"b", b, false}, {"c", c, false}};
    nt.items = items;
    seen s;
    seen_init(&s, &nt);
    /* an unused leaf is told (first, with no gradient); a leaf listed twice twice */
    gf_tensor *twice[4] = {a, b, c, a};
    seen s2;
    gf_named_tensor items2[4] = {{"a", a, false}, {"b", b, false}, {"c", c, false}, {"a", a, false}};
    seen_init(&s2, &(gf_named_tensors){4, items2});
    CHECK(gf_backward_watch(ctx, 4, twice, on_ready, &s2) == GF_OK);
    CHECK(gf_backward(ctx, small_loss(ctx, a, b)) == GF_OK);
    CHECK(s2.count[0] == 1 && s2.count[1] == 1 && s2.count[2] == 1 && s2.count[3] == 1);
    CHECK(s2.rank[2] == 0 && s2.copy[2] == NULL);
    CHECK(s2.copy[0] && s2.copy[3] && memcmp(s2.copy[0], s2.copy[3], 4 * sizeof(float)) == 0);
    CHECK(s2.copy[0] && s2.copy[0][1] == gf_f32(b)[1] + 1.0f);
    seen_free(&s2);
    gf_ctx_reset(ctx);
    /* a callback's error stops the backward and is returned */
    s.fail_at = 1;
    CHECK(gf_backward_watch(ctx, 3, leaves, on_ready, &s) == GF_OK);
    CHECK(gf_backward(ctx, small_loss(ctx, a, b)) == GF_ERR_STATE);
    CHECK(strstr(gf_ctx_error(ctx), "failing on purpose") != NULL);
    CHECK(s.told == 1);
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    /* a backward that fails before running drops the watch: the next one tells nobody */
    seen_reset(&s);
    s.fail_at = -1;
    CHECK(gf_backward_watch(ctx, 3, leaves, on_ready, &s) == GF_OK);
    gf_tensor *not_scalar = gf_mul(ctx, a, b);
    CHECK(gf_backward(ctx, not_scalar) == GF_ERR_SHAPE);
    gf_ctx_clear_error(ctx);
    gf_ctx_reset(ctx);
    CHECK(gf_backward(ctx, small_loss(ctx, a, b)) == GF_OK);
    CHECK(s.told == 0);
    gf_ctx_reset(ctx);
    /* bad arguments */
    CHECK(gf_backward_watch(ctx, -1, leaves, on_ready, &s) == GF_ERR_INVALID);
    CHECK(gf_backward_watch(ctx, 3, leaves, NULL, &s) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_backward_watch(ctx, 0, NULL, NULL, NULL) == GF_OK);
    seen_free(&s);
    gf_tensor_free(a);
    gf_tensor_free(b);
    gf_tensor_free(c);
    gf_ctx_free(ctx);
}

int main(void) {
    for (const char *const *n = gf_zoo_names(); *n; n++) check_model(*n);
    test_errors_and_lifetime();
    return test_finish("backward_watch");
}
