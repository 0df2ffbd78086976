/* LSTM and GRU (graft/ops.h gf_lstm_layer / gf_gru_layer, graft/nn.h gf_nn_lstm / gf_nn_gru):
 * parity with torch.nn.LSTM / GRU (tests/fixtures/rnn_parity.json: state_dict names and shapes,
 * outputs, final states and every gradient, with variable lengths through torch's packed
 * sequences), finite-difference gradients of the fused ops, dropout between layers, error
 * messages, and float32 token ids in the embedding.
 *
 * To add a parity case: append it to CASES in tests/fixtures/gen_rnn.py and rerun it with
 * /usr/bin/python3; every case of the fixture is checked here. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "graft/graft.h"
#include "graft/nn.h"
#include "graft/spec.h"
#include "graft/train.h"

static const double ATOL = 2e-5, RTOL = 1e-5;

/* ---- fixture helpers -------------------------------------------------------------------- */

static cJSON *load_fixture(const char *file) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", src ? src : ".", file);
    return test_read_json(path);
}

static float *arr_f32(const cJSON *a) {
    int k = a ? cJSON_GetArraySize(a) : 0, i = 0;
    float *v = malloc(sizeof(float) * (size_t)(k ? k : 1));
    const cJSON *e;
    cJSON_ArrayForEach(e, a) v[i++] = (float)e->valuedouble;
    return v;
}

/* A persistent float tensor of the given shape from a JSON array (NULL for JSON null). */
static gf_tensor *from_json(gf_ctx *ctx, const cJSON *a, int ndim, const int64_t *shape,
                            bool grad) {
    if (!a || cJSON_IsNull(a)) return NULL;
    float *v = arr_f32(a);
    gf_tensor *t = gf_tensor_from_data(ctx, GF_F32, ndim, shape, v);
    free(v);
    if (t) gf_tensor_set_requires_grad(t, grad);
    return t;
}

/* |a - r| <= ATOL + RTOL |r| for every element of values (n of them) against ref. */
static bool close_vals(const char *what, const float *vals, int64_t n, const cJSON *ref) {
    if (!vals || !ref || cJSON_GetArraySize(ref) != n) {
        fprintf(stderr, "%s: missing values or %d reference values for %lld\n", what,
                ref ? cJSON_GetArraySize(ref) : -1, (long long)n);
        return false;
    }
    int64_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, ref) {
        double a = vals[i], r = e->valuedouble;
        if (!(fabs(a - r) <= ATOL + RTOL * fabs(r))) {
            fprintf(stderr, "%s: element %lld = %.9g, expected %.9g\n", what, (long long)i, a, r);
            return false;
        }
        i++;
    }
    return true;
}

static bool close_tensor(const char *what, const gf_tensor *t, const cJSON *ref) {
    if (!t) {
        fprintf(stderr, "%s: tensor is NULL\n", what);
        return false;
    }
    float *v = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    gf_copy_out(t, v);
    bool ok = close_vals(what, v, t->numel, ref);
    free(v);
    return ok;
}

static bool jbool(const cJSON *c, const char *k) {
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, k));
}

static const cJSON *jget(const cJSON *c, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(c, k);
}

/* ---- parity --------------------------------------------------------------------------------- */

typedef struct {
    bool lstm, bidir, batch_first;
    int layers;
    int64_t I, H, N, T;
} case_cfg;

static gf_module *build_case(gf_ctx *ctx, const cJSON *c, case_cfg *k) {
    k->lstm = strcmp(jget(c, "kind")->valuestring, "lstm") == 0;
    k->bidir = jbool(c, "bidir");
    k->batch_first = jbool(c, "batch_first");
    k->layers = jget(c, "layers")->valueint;
    const cJSON *sz = jget(c, "sizes");
    k->I = cJSON_GetArrayItem(sz, 0)->valueint, k->H = cJSON_GetArrayItem(sz, 1)->valueint;
    k->N = cJSON_GetArrayItem(sz, 2)->valueint, k->T = cJSON_GetArrayItem(sz, 3)->valueint;
    gf_nn_rnn_params p = gf_nn_rnn_default_params(k->I, k->H);
    p.num_layers = k->layers;
    p.bidirectional = k->bidir;
    p.batch_first = k->batch_first;
    p.bias = jbool(c, "bias");
    return k->lstm ? gf_nn_lstm(ctx, NULL, &p) : gf_nn_gru(ctx, NULL, &p);
}

/* state_dict names, shapes and order as torch's; then torch's values are loaded. */
static void check_and_load_params(gf_ctx *ctx, gf_module *m, const cJSON *c, const char *id) {
    gf_named_tensors *nt = gf_module_named_tensors(ctx, m, GF_STATE_ALL);
    const cJSON *ps = jget(c, "params");
    CHECK(nt && nt->n == cJSON_GetArraySize(ps));
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, ps) {
        if (!nt || i >= nt->n) break;
        const char *name = jget(p, "name")->valuestring;
        if (strcmp(nt->items[i].name, name) != 0)
            fprintf(stderr, "%s: parameter %d is %s, torch has %s\n", id, i, nt->items[i].name, name);
        CHECK(strcmp(nt->items[i].name, name) == 0);
        int64_t shape[2];
        int nd = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, jget(p, "shape")) shape[nd++] = (int64_t)e->valuedouble;
        float *v = arr_f32(jget(p, "data"));
        CHECK(gf_module_load(ctx, m, name, GF_F32, nd, shape, v) == GF_OK);
        free(v);
        i++;
    }
    gf_named_tensors_free(nt);
}

/* An arena tensor of the given shape from a JSON array (lives until gf_ctx_reset). */
static gf_tensor *arena_json(gf_ctx *ctx, const cJSON *a, int ndim, const int64_t *shape) {
    gf_tensor *t = gf_empty(ctx, GF_F32, ndim, shape);
    float *v = arr_f32(a);
    if (t) gf_copy_in(t, v);
    free(v);
    return t;
}

/* sum(y * gy) + sum(h_n * gh) (+ sum(c_n * gc)): the fixture's upstream gradients. */
static gf_tensor *case_loss(gf_ctx *ctx, const cJSON *c, gf_tensor *y, gf_tensor *hn,
                            gf_tensor *cn) {
    gf_tensor *gy = arena_json(ctx, jget(c, "gy"), y->ndim, y->shape);
    gf_tensor *gh = arena_json(ctx, jget(c, "gh"), hn->ndim, hn->shape);
    gf_tensor *gc = cn ? arena_json(ctx, jget(c, "gc"), cn->ndim, cn->shape) : NULL;
    gf_tensor *loss = gf_add(ctx, gf_sum(ctx, gf_mul(ctx, y, gy), NULL, 0, false),
                             gf_sum(ctx, gf_mul(ctx, hn, gh), NULL, 0, false));
    if (cn) loss = gf_add(ctx, loss, gf_sum(ctx, gf_mul(ctx, cn, gc), NULL, 0, false));
    return loss;
}

static void check_grads(gf_module *m, const cJSON *c, gf_tensor *x, gf_tensor *h0, gf_tensor *c0,
                        const char *id) {
    char what[128];
    const cJSON *p;
    cJSON_ArrayForEach(p, jget(c, "params")) {
        gf_tensor *t = gf_module_tensor(NULL, m, jget(p, "name")->valuestring);
        snprintf(what, sizeof what, "%s grad %s", id, jget(p, "name")->valuestring);
        CHECK(t && close_vals(what, t->grad ? gf_f32(t->grad) : NULL, t->numel, jget(p, "grad")));
    }
    snprintf(what, sizeof what, "%s grad x", id);
    CHECK(close_vals(what, x->grad ? gf_f32(x->grad) : NULL, x->numel, jget(c, "gx")));
    if (h0) {
        snprintf(what, sizeof what, "%s grad h0", id);
        CHECK(close_vals(what, h0->grad ? gf_f32(h0->grad) : NULL, h0->numel, jget(c, "gh0")));
    }
    if (c0) {
        snprintf(what, sizeof what, "%s grad c0", id);
        CHECK(close_vals(what, c0->grad ? gf_f32(c0->grad) : NULL, c0->numel, jget(c, "gc0")));
    }
}

/* The output of gf_module_forward_seq (and gf_module_forward when every step is real) equals
 * gf_nn_rnn_run's with zero states. */
static void check_seq_forward(gf_ctx *ctx, gf_module *m, gf_tensor *x, gf_tensor *lengths,
                              const case_cfg *k) {
    gf_tensor *a = gf_nn_rnn_run(ctx, m, x, lengths, NULL, NULL, NULL, NULL);
    gf_tensor *b = lengths ? gf_module_forward_seq(ctx, m, x, lengths) : gf_module_forward(ctx, m, x);
    CHECK(a && b && a->numel == b->numel && a->numel == k->N * k->T * k->H * (k->bidir ? 2 : 1));
    bool same = a && b;
    for (int64_t i = 0; same && i < a->numel; i++) same = gf_get_f32(a, i) == gf_get_f32(b, i);
    CHECK(same);
}

static void run_parity_case(gf_ctx *ctx, const cJSON *c, int idx) {
    case_cfg k;
    char id[64];
    gf_module *m = build_case(ctx, c, &k);
    CHECK(m != NULL);
    if (!m) return;
    snprintf(id, sizeof id, "case %d (%s, %d layers%s%s)", idx, k.lstm ? "lstm" : "gru", k.layers,
             k.bidir ? ", bidirectional" : "", k.batch_first ? ", batch_first" : "");
    check_and_load_params(ctx, m, c, id);
    const int64_t xs[3] = {k.batch_first ? k.N : k.T, k.batch_first ? k.T : k.N, k.I};
    const int64_t ss[3] = {k.layers * (k.bidir ? 2 : 1), k.N, k.H};
    gf_tensor *x = from_json(ctx, jget(c, "x"), 3, xs, true);
    gf_tensor *h0 = from_json(ctx, jget(c, "h0"), 3, ss, true);
    gf_tensor *c0 = from_json(ctx, jget(c, "c0"), 3, ss, true);
    gf_tensor *lengths = NULL;
    const cJSON *jl = jget(c, "lengths");
    if (jl && !cJSON_IsNull(jl)) {
        int64_t lv[16];
        int n = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, jl) lv[n++] = (int64_t)e->valuedouble;
        lengths = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){n}, lv);
    }
    gf_tensor *hn = NULL, *cn = NULL;
    gf_tensor *y = gf_nn_rnn_run(ctx, m, x, lengths, h0, c0, &hn, k.lstm ? &cn : NULL);
    CHECK(y && hn && (!k.lstm || cn));
    if (!y) fprintf(stderr, "%s: %s\n", id, gf_ctx_error(ctx));
    char what[128];
    snprintf(what, sizeof what, "%s output", id);
    CHECK(close_tensor(what, y, jget(c, "y")));
    snprintf(what, sizeof what, "%s h_n", id);
    CHECK(close_tensor(what, hn, jget(c, "h_n")));
    if (k.lstm) {
        snprintf(what, sizeof what, "%s c_n", id);
        CHECK(close_tensor(what, cn, jget(c, "c_n")));
    }
    gf_tensor *loss = y && hn ? case_loss(ctx, c, y, hn, cn) : NULL;
    CHECK(loss && gf_backward(ctx, loss) == GF_OK);
    check_grads(m, c, x, h0, c0, id);
    gf_ctx_reset(ctx);
    check_seq_forward(ctx, m, x, lengths, &k);
    gf_ctx_reset(ctx);
    gf_tensor_free(x), gf_tensor_free(h0), gf_tensor_free(c0), gf_tensor_free(lengths);
    gf_module_free(m);
}

static void test_parity(gf_ctx *ctx) {
    cJSON *fx = load_fixture("rnn_parity.json");
    CHECK(fx != NULL);
    if (!fx) return;
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, jget(fx, "cases")) run_parity_case(ctx, c, i++);
    CHECK(i >= 14);
    cJSON_Delete(fx);
}

/* ---- finite differences on the fused ops --------------------------------------------------- */

typedef struct {
    gf_tensor *x, *w_ih, *w_hh, *b_ih, *b_hh, *h0, *c0, *len;
    float *gy, *gh, *gc; /* fixed upstream gradients */
    bool lstm, reverse, batch_first;
} fd_case;

/* sum(y gy) + sum(h_n gh) (+ sum(c_n gc)) in double, and with grad the backward of the same. */
static double fd_loss(gf_ctx *ctx, const fd_case *f, bool grad) {
    gf_rnn_args a = {f->w_ih, f->w_hh, f->b_ih, f->b_hh, f->h0, f->lstm ? f->c0 : NULL, f->len,
                     f->batch_first, f->reverse};
    gf_tensor *hn = NULL, *cn = NULL;
    gf_tensor *y = f->lstm ? gf_lstm_layer(ctx, f->x, &a, &hn, &cn) : gf_gru_layer(ctx, f->x, &a, &hn);
    if (!y) {
        fprintf(stderr, "fd: %s\n", gf_ctx_error(ctx));
        return NAN;
    }
    double s = 0;
    for (int64_t i = 0; i < y->numel; i++) s += (double)gf_get_f32(y, i) * f->gy[i];
    for (int64_t i = 0; i < hn->numel; i++) s += (double)gf_get_f32(hn, i) * f->gh[i];
    if (cn)
        for (int64_t i = 0; i < cn->numel; i++) s += (double)gf_get_f32(cn, i) * f->gc[i];
    if (grad) {
        gf_tensor *gy = gf_tensor_from_data(ctx, GF_F32, y->ndim, y->shape, f->gy);
        gf_tensor *gh = gf_tensor_from_data(ctx, GF_F32, 2, hn->shape, f->gh);
        gf_tensor *gc = gf_tensor_from_data(ctx, GF_F32, 2, hn->shape, f->gc);
        gf_tensor *l = gf_add(ctx, gf_sum(ctx, gf_mul(ctx, y, gy), NULL, 0, false),
                              gf_sum(ctx, gf_mul(ctx, hn, gh), NULL, 0, false));
        if (cn) l = gf_add(ctx, l, gf_sum(ctx, gf_mul(ctx, cn, gc), NULL, 0, false));
        CHECK(l && gf_backward(ctx, l) == GF_OK);
        gf_tensor_free(gy), gf_tensor_free(gh), gf_tensor_free(gc);
    }
    gf_ctx_reset(ctx);
    return s;
}

static gf_tensor *fd_param(gf_ctx *ctx, int ndim, const int64_t *shape, float scale) {
    gf_tensor *t = gf_tensor_new(ctx, GF_F32, ndim, shape);
    for (int64_t i = 0; i < t->numel; i++) gf_f32(t)[i] = scale * (gf_f32(gf_randn(ctx, 1, (int64_t[]){1}, 0, 1))[0]);
    gf_tensor_set_requires_grad(t, true);
    return t;
}

/* Compares every element's analytic gradient with a central difference of the loss. */
static void fd_compare(gf_ctx *ctx, const fd_case *f, gf_tensor *t, const char *name) {
    if (!t) return;
    const float h = 1e-2f;
    double worst = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        float *v = gf_f32(t) + i, keep = *v;
        *v = keep + h;
        double up = fd_loss(ctx, f, false);
        *v = keep - h;
        double down = fd_loss(ctx, f, false);
        *v = keep;
        double num = (up - down) / (2.0 * h), ana = gf_f32(t->grad)[i];
        double err = fabs(num - ana) / (1.0 + fabs(num));
        if (err > worst) worst = err;
    }
    if (worst > 2e-3) fprintf(stderr, "fd %s%s%s: worst relative error %g\n",
                              f->lstm ? "lstm " : "gru ", f->reverse ? "reverse " : "", name, worst);
    CHECK(worst <= 2e-3);
}

static void fd_run(gf_ctx *ctx, bool lstm, bool reverse, bool batch_first) {
    const int64_t I = 2, H = 3, N = 3, T = 4, G = lstm ? 4 : 3;
    fd_case f = {.lstm = lstm, .reverse = reverse, .batch_first = batch_first};
    const int64_t xs[3] = {batch_first ? N : T, batch_first ? T : N, I};
    f.x = fd_param(ctx, 3, xs, 1.0f);
    f.w_ih = fd_param(ctx, 2, (int64_t[]){G * H, I}, 0.6f);
    f.w_hh = fd_param(ctx, 2, (int64_t[]){G * H, H}, 0.6f);
    f.b_ih = fd_param(ctx, 1, (int64_t[]){G * H}, 0.3f);
    f.b_hh = fd_param(ctx, 1, (int64_t[]){G * H}, 0.3f);
    f.h0 = fd_param(ctx, 2, (int64_t[]){N, H}, 0.5f);
    f.c0 = lstm ? fd_param(ctx, 2, (int64_t[]){N, H}, 0.5f) : NULL;
    f.len = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){N}, (int64_t[]){4, 2, 0});
    f.gy = malloc(sizeof(float) * (size_t)(N * T * H));
    f.gh = malloc(sizeof(float) * (size_t)(N * H));
    f.gc = malloc(sizeof(float) * (size_t)(N * H));
    for (int64_t i = 0; i < N * T * H; i++) f.gy[i] = (float)((i * 7 % 11) - 5) / 5.0f;
    for (int64_t i = 0; i < N * H; i++) f.gh[i] = (float)((i * 5 % 7) - 3) / 3.0f;
    for (int64_t i = 0; i < N * H; i++) f.gc[i] = (float)((i * 3 % 5) - 2) / 2.0f;
    fd_loss(ctx, &f, true);
    gf_tensor *all[] = {f.x, f.w_ih, f.w_hh, f.b_ih, f.b_hh, f.h0, f.c0};
    const char *names[] = {"x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0", "c0"};
    for (int i = 0; i < 7; i++) fd_compare(ctx, &f, all[i], names[i]);
    /* example 2 has no real step: its final state is h0, its outputs 0 */
    gf_rnn_args a = {f.w_ih, f.w_hh, f.b_ih, f.b_hh, f.h0, f.c0, f.len, batch_first, reverse};
    gf_tensor *hn = NULL;
    gf_tensor *y = lstm ? gf_lstm_layer(ctx, f.x, &a, &hn, NULL) : gf_gru_layer(ctx, f.x, &a, &hn);
    CHECK(y && hn && gf_get_f32(hn, 2 * H) == gf_f32(f.h0)[2 * H]);
    CHECK(y && gf_get_f32(y, batch_first ? (2 * T + 3) * H : (3 * N + 1) * H) == 0.0f);
    gf_ctx_reset(ctx);
    for (int i = 0; i < 7; i++) gf_tensor_free(all[i]);
    gf_tensor_free(f.len);
    free(f.gy), free(f.gh), free(f.gc);
}

static void test_finite_differences(gf_ctx *ctx) {
    fd_run(ctx, true, false, false);
    fd_run(ctx, true, true, true);
    fd_run(ctx, false, false, true);
    fd_run(ctx, false, true, false);
}

/* ---- the same bits at any thread count ----------------------------------------------------- */

/* One forward and backward of a bidirectional LSTM or GRU with lengths at `threads` threads;
 * the output and every gradient go to out (numel of them), same seed every time. */
static int64_t threads_run(bool lstm, int threads, float *out) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = threads;
    cp.seed = 5;
    gf_ctx *ctx = gf_ctx_new(&cp);
    gf_nn_rnn_params p = gf_nn_rnn_default_params(8, 64);
    p.bidirectional = true;
    gf_module *m = lstm ? gf_nn_lstm(ctx, NULL, &p) : gf_nn_gru(ctx, NULL, &p);
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 3, (int64_t[]){6, 16, 8});
    gf_copy_in(x, gf_f32(gf_randn(ctx, 3, x->shape, 0, 1)));
    gf_tensor_set_requires_grad(x, true);
    int64_t lv[16];
    for (int i = 0; i < 16; i++) lv[i] = i % 7;
    gf_tensor *len = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){16}, lv);
    gf_tensor *y = gf_module_forward_seq(ctx, m, x, len);
    gf_tensor *loss = y ? gf_sum(ctx, gf_mul(ctx, y, y), NULL, 0, false) : NULL;
    CHECK(loss && gf_backward(ctx, loss) == GF_OK);
    int64_t k = 0;
    for (int64_t i = 0; y && i < y->numel; i++) out[k++] = gf_get_f32(y, i);
    gf_named_tensors *pl = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    for (int i = 0; pl && i < pl->n; i++)
        for (int64_t j = 0; j < pl->items[i].tensor->numel; j++) out[k++] = gf_f32(pl->items[i].tensor->grad)[j];
    for (int64_t i = 0; i < x->numel; i++) out[k++] = gf_f32(x->grad)[i];
    gf_named_tensors_free(pl);
    gf_tensor_free(x), gf_tensor_free(len);
    gf_module_free(m);
    gf_ctx_free(ctx);
    return k;
}

static void test_threads(void) {
    enum { CAP = 6 * 16 * 128 + 2 * (256 * (8 + 64) + 512) + 6 * 16 * 8 };
    static float a[CAP], b[CAP];
    for (int kind = 0; kind < 2; kind++) {
        int64_t na = threads_run(kind == 0, 1, a), nb = threads_run(kind == 0, 3, b);
        CHECK(na == nb && na > 0 && na <= CAP);
        CHECK(memcmp(a, b, sizeof(float) * (size_t)na) == 0);
    }
}

/* ---- dropout, replicas, errors -------------------------------------------------------------- */

static void test_dropout(gf_ctx *ctx) {
    gf_nn_rnn_params p = gf_nn_rnn_default_params(3, 4);
    p.num_layers = 2;
    p.dropout = 0.5f;
    p.batch_first = true;
    gf_rng rng;
    gf_rng_seed(&rng, 7);
    gf_module *m = gf_nn_lstm(ctx, &rng, &p);
    p.dropout = 0.0f;
    gf_rng_seed(&rng, 7);
    gf_module *plain = gf_nn_lstm(ctx, &rng, &p);
    CHECK(m && plain && gf_module_replicable(m, NULL, 0));
    gf_tensor *x = gf_randn(ctx, 3, (int64_t[]){2, 5, 3}, 0, 1);
    gf_module_train(m, false);
    gf_tensor *e = gf_module_forward(ctx, m, x), *q = gf_module_forward(ctx, plain, x);
    bool same = e && q;
    for (int64_t i = 0; same && i < e->numel; i++) same = gf_get_f32(e, i) == gf_get_f32(q, i);
    CHECK(same); /* evaluation: no dropout */
    gf_module_train(m, true);
    gf_tensor *t = gf_module_forward(ctx, m, x);
    bool differs = false;
    for (int64_t i = 0; t && e && i < t->numel; i++) differs |= gf_get_f32(t, i) != gf_get_f32(e, i);
    CHECK(t && differs);
    gf_module_free(m), gf_module_free(plain);
    /* one layer: dropout applies between layers only, so training changes nothing */
    p.num_layers = 1;
    p.dropout = 0.9f;
    m = gf_nn_gru(ctx, NULL, &p);
    gf_tensor *a = gf_module_forward(ctx, m, x);
    gf_module_train(m, false);
    gf_tensor *b = gf_module_forward(ctx, m, x);
    same = a && b;
    for (int64_t i = 0; same && i < a->numel; i++) same = gf_get_f32(a, i) == gf_get_f32(b, i);
    CHECK(same);
    gf_module_free(m);
    gf_ctx_reset(ctx);
}

/* An unbatched [T, I] input (and [L*D, H] states) equals the batch of one. */
static void test_unbatched(gf_ctx *ctx) {
    gf_nn_rnn_params p = gf_nn_rnn_default_params(3, 4);
    p.num_layers = 2;
    p.bidirectional = true;
    gf_module *m = gf_nn_lstm(ctx, NULL, &p);
    gf_tensor *x = gf_randn(ctx, 2, (int64_t[]){5, 3}, 0, 1);
    gf_tensor *h0 = gf_randn(ctx, 2, (int64_t[]){4, 4}, 0, 1), *c0 = gf_randn(ctx, 2, (int64_t[]){4, 4}, 0, 1);
    gf_tensor *hn, *cn, *hb, *cb;
    gf_tensor *y = gf_nn_rnn_run(ctx, m, x, NULL, h0, c0, &hn, &cn);
    gf_tensor *yb = gf_nn_rnn_run(ctx, m, gf_reshape(ctx, x, 3, (int64_t[]){5, 1, 3}), NULL,
                                  gf_reshape(ctx, h0, 3, (int64_t[]){4, 1, 4}),
                                  gf_reshape(ctx, c0, 3, (int64_t[]){4, 1, 4}), &hb, &cb);
    CHECK(y && yb && y->ndim == 2 && y->shape[0] == 5 && y->shape[1] == 8);
    CHECK(hn && hn->ndim == 2 && hn->shape[0] == 4 && cn && cn->ndim == 2);
    bool same = y && yb && hn && hb && cn && cb;
    for (int64_t i = 0; same && i < y->numel; i++) same = gf_get_f32(y, i) == gf_get_f32(yb, i);
    for (int64_t i = 0; same && i < hn->numel; i++)
        same = gf_get_f32(hn, i) == gf_get_f32(hb, i) && gf_get_f32(cn, i) == gf_get_f32(cb, i);
    CHECK(same);
    EXPECT_ERR(ctx, gf_nn_rnn_run(ctx, m, x, NULL, gf_randn(ctx, 3, (int64_t[]){4, 1, 4}, 0, 1),
                                  NULL, NULL, NULL),
               GF_ERR_SHAPE, "h0 is [4, 1, 4] with an unbatched input: expected float32 [4, 4]");
    gf_module_free(m);
    gf_ctx_reset(ctx);
}

static void test_errors(gf_ctx *ctx) {
    gf_nn_rnn_params p = gf_nn_rnn_default_params(3, 4);
    p.batch_first = true;
    p.num_layers = 2;
    gf_module *m = gf_nn_lstm(ctx, NULL, &p);
    gf_tensor *x = gf_zeros(ctx, GF_F32, 3, (int64_t[]){2, 5, 4});
    EXPECT_ERR(ctx, gf_module_forward(ctx, m, x), GF_ERR_SHAPE, "LSTM",
               "expected input [N, T, 3] (batch_first) or [T, 3], got [2, 5, 4]");
    x = gf_zeros(ctx, GF_F32, 3, (int64_t[]){2, 5, 3});
    gf_tensor *h0 = gf_zeros(ctx, GF_F32, 3, (int64_t[]){1, 2, 4});
    EXPECT_ERR(ctx, gf_nn_rnn_run(ctx, m, x, NULL, h0, NULL, NULL, NULL), GF_ERR_SHAPE,
               "h0 is float32 [1, 2, 4], expected float32 [2, 2, 4]");
    gf_tensor *len = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){2}, (int64_t[]){3, 6});
    EXPECT_ERR(ctx, gf_module_forward_seq(ctx, m, x, len), GF_ERR_INVALID,
               "lengths[1] = 6 is outside [0, 5]");
    gf_tensor_free(len);
    len = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){3}, (int64_t[]){1, 2, 3});
    EXPECT_ERR(ctx, gf_module_forward_seq(ctx, m, x, len), GF_ERR_SHAPE,
               "lengths must be int64 [2], got int64 [3]");
    gf_tensor_free(len);
    gf_module *g = gf_nn_gru(ctx, NULL, &p);
    EXPECT_ERR(ctx, gf_nn_rnn_run(ctx, g, x, NULL, NULL, h0, NULL, NULL), GF_ERR_INVALID,
               "GRU", "no cell state");
    gf_module *lin = gf_nn_linear(ctx, NULL, 3, 3, true);
    EXPECT_ERR(ctx, gf_nn_rnn_run(ctx, lin, x, NULL, NULL, NULL, NULL, NULL), GF_ERR_INVALID,
               "Linear is not an LSTM or GRU");
    p.hidden_size = 0;
    EXPECT_ERR(ctx, gf_nn_lstm(ctx, NULL, &p), GF_ERR_INVALID, "LSTM(input_size=3, hidden_size=0");
    /* the op itself */
    gf_tensor *w_ih = gf_zeros(ctx, GF_F32, 2, (int64_t[]){16, 3});
    gf_tensor *w_hh = gf_zeros(ctx, GF_F32, 2, (int64_t[]){12, 4});
    gf_rnn_args a = {w_ih, w_hh, NULL, NULL, NULL, NULL, NULL, true, false};
    EXPECT_ERR(ctx, gf_lstm_layer(ctx, x, &a, NULL, NULL), GF_ERR_SHAPE,
               "lstm: weight_hh [12, 4] must be [4 * hidden, hidden]");
    a.w_hh = gf_zeros(ctx, GF_F32, 2, (int64_t[]){16, 4});
    a.b_ih = gf_zeros(ctx, GF_F32, 1, (int64_t[]){16});
    EXPECT_ERR(ctx, gf_lstm_layer(ctx, x, &a, NULL, NULL), GF_ERR_INVALID,
               "bias_ih and bias_hh must both be given");
    a.b_ih = NULL;
    a.w_ih = gf_zeros(ctx, GF_F32, 2, (int64_t[]){16, 5});
    EXPECT_ERR(ctx, gf_lstm_layer(ctx, x, &a, NULL, NULL), GF_ERR_SHAPE,
               "lstm: weight_ih is [16, 5], expected [16, 3]");
    gf_ctx_clear_error(ctx);
    gf_module_free(m), gf_module_free(g), gf_module_free(lin);
    gf_ctx_reset(ctx);
}

/* ---- embedding of float32 token ids, then a sequence model with lengths ------------------------ */

static void test_embedding_ids(gf_ctx *ctx) {
    gf_module *emb = gf_nn_embedding(ctx, NULL, 6, 3, 0);
    const float ids[8] = {2, 5, 1, 0, 3, 4, 0, 0};
    const int64_t li[8] = {2, 5, 1, 0, 3, 4, 0, 0};
    gf_tensor *xf = gf_tensor_from_data(ctx, GF_F32, 2, (int64_t[]){2, 4}, ids);
    gf_tensor *xi = gf_tensor_from_data(ctx, GF_I64, 2, (int64_t[]){2, 4}, li);
    gf_tensor *a = gf_module_forward(ctx, emb, xf), *b = gf_module_forward(ctx, emb, xi);
    bool same = a && b && a->numel == 24;
    for (int64_t i = 0; same && i < a->numel; i++) same = gf_get_f32(a, i) == gf_get_f32(b, i);
    CHECK(same);
    gf_f32(xf)[5] = 1.5f;
    EXPECT_ERR(ctx, gf_module_forward(ctx, emb, xf), GF_ERR_INVALID, "Embedding", "1.5",
               "flat position 5", "not a whole number");
    gf_f32(xf)[5] = 6.0f;
    EXPECT_ERR(ctx, gf_module_forward(ctx, emb, xf), GF_ERR_INVALID,
               "index 6 out of range for vocabulary size 6", "flat position 5");
    gf_f32(xf)[5] = 4.0f;
    /* embedding -> LSTM with lengths 3 and 2 (counted non-zero ids): padded outputs are 0 */
    gf_nn_rnn_params p = gf_nn_rnn_default_params(3, 2);
    p.batch_first = true;
    gf_module *seq = gf_nn_sequential(ctx);
    gf_module_append(ctx, seq, emb);
    gf_module_append(ctx, seq, gf_nn_lstm(ctx, NULL, &p));
    gf_tensor *len = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){2}, (int64_t[]){3, 2});
    gf_tensor *y = gf_module_forward_seq(ctx, seq, xf, len);
    CHECK(y && y->ndim == 3 && y->shape[2] == 2);
    CHECK(y && gf_get_f32(y, 3 * 2) == 0.0f && gf_get_f32(y, 6 * 2 + 1) == 0.0f &&
          gf_get_f32(y, 0) != 0.0f);
    gf_tensor_free(xf), gf_tensor_free(xi), gf_tensor_free(len);
    gf_module_free(seq);
    gf_ctx_reset(ctx);
}

/* ---- data parallel training: a text classifier in two replicas ------------------------------ */

/* ids [N, T] -> lengths (non-zero ids) -> embedding -> GRU -> state at the last real step ->
 * Linear. Changes nothing but ctx, so it is marked reentrant. */
static gf_tensor *text_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)user;
    const int64_t N = x->shape[0], T = x->shape[1];
    gf_tensor *len = gf_empty(ctx, GF_I64, 1, &N);
    for (int64_t n = 0; len && n < N; n++) {
        gf_i64(len)[n] = 0;
        for (int64_t t = 0; t < T; t++) gf_i64(len)[n] += gf_get_f32(x, n * T + t) != 0.0f;
    }
    gf_tensor *e = gf_module_forward(ctx, gf_module_child(self, "embedding"), x), *hn = NULL;
    if (!len || !gf_nn_rnn_run(ctx, gf_module_child(self, "rnn"), e, len, NULL, NULL, &hn, NULL))
        return NULL;
    return gf_module_forward(ctx, gf_module_child(self, "fc"),
                             gf_reshape(ctx, hn, 2, (int64_t[]){N, hn->shape[2]}));
}

static void test_replicas(gf_ctx *ctx) {
    gf_module *m = gf_nn_container(ctx, "TextClassifier", text_fwd, NULL, NULL);
    gf_nn_rnn_params p = gf_nn_rnn_default_params(4, 5);
    p.batch_first = true;
    gf_module_add(ctx, m, "embedding", gf_nn_embedding(ctx, NULL, 9, 4, 0));
    gf_module_add(ctx, m, "rnn", gf_nn_gru(ctx, NULL, &p));
    gf_module_add(ctx, m, "fc", gf_nn_linear(ctx, NULL, 5, 3, true));
    gf_module_set_reentrant(m, true);
    CHECK(gf_ctx_status(ctx) == GF_OK && gf_module_replicable(m, NULL, 0));
    enum { N = 6, T = 5 };
    float ids[N * T];
    int64_t labels[N];
    for (int n = 0; n < N; n++) {
        for (int t = 0; t < T; t++) ids[n * T + t] = t < 1 + n % T ? (float)(1 + (n * 3 + t) % 8) : 0.0f;
        labels[n] = n % 3;
    }
    gf_tensor *x = gf_tensor_from_data(ctx, GF_F32, 2, (int64_t[]){N, T}, ids);
    gf_tensor *y = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){N}, labels);
    gf_tensor *loss = gf_cross_entropy(ctx, gf_module_forward(ctx, m, x), y, GF_REDUCE_MEAN, -100);
    CHECK(loss && gf_backward(ctx, loss) == GF_OK);
    gf_ctx_reset(ctx);
    gf_named_tensors *pl = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    int64_t total = 0;
    for (int i = 0; i < pl->n; i++) total += pl->items[i].tensor->numel;
    float *one = malloc(sizeof(float) * (size_t)total);
    for (int i = 0, k = 0; i < pl->n; k += (int)pl->items[i].tensor->numel, i++) {
        memcpy(one + k, gf_f32(pl->items[i].tensor->grad), sizeof(float) * (size_t)pl->items[i].tensor->numel);
        gf_tensor_zero_grad(pl->items[i].tensor);
    }
    gf_replicas *r = gf_replicas_new(ctx, m, 2);
    gf_replicas_out ro;
    CHECK(r && gf_replicas_step(ctx, r, NULL, x, y, 1.0f, &ro) == GF_OK);
    double worst = 0;
    for (int i = 0, k = 0; i < pl->n; k += (int)pl->items[i].tensor->numel, i++)
        for (int64_t j = 0; j < pl->items[i].tensor->numel; j++)
            worst = fmax(worst, fabs(gf_f32(pl->items[i].tensor->grad)[j] - one[k + j]));
    CHECK(worst < 1e-6);
    gf_replicas_free(r);
    gf_named_tensors_free(pl);
    free(one);
    gf_tensor_free(x), gf_tensor_free(y);
    gf_module_free(m);
    gf_ctx_reset(ctx);
}

/* ---- the memory rules of Sequential (docs/NN.md, "Memory") around a recurrent layer ------- */

/* Embedding -> LSTM -> ReLU -> Linear trained one step with the in-place rules on and off:
 * every gradient must be bitwise the same (the ReLU may overwrite the LSTM's output, which
 * its backward never reads). Writes the gradients of the run to out. */
static void memory_run(gf_ctx *ctx, bool inplace, gf_tensor *x, gf_tensor *len, float *out) {
    gf_rng rng;
    gf_rng_seed(&rng, 11);
    gf_nn_rnn_params p = gf_nn_rnn_default_params(4, 6);
    p.batch_first = true;
    p.bidirectional = true;
    gf_module *layers[] = {gf_nn_embedding(ctx, &rng, 9, 4, 0), gf_nn_lstm(ctx, &rng, &p),
                           gf_nn_relu(ctx), gf_nn_linear(ctx, &rng, 12, 2, true)};
    gf_module *m = gf_nn_sequential_of(ctx, 4, layers);
    gf_ctx_set_inplace(ctx, inplace);
    gf_tensor *y = gf_module_forward_seq(ctx, m, x, len);
    gf_tensor *loss = y ? gf_sum(ctx, gf_mul(ctx, y, y), NULL, 0, false) : NULL;
    CHECK(loss && gf_backward(ctx, loss) == GF_OK);
    gf_named_tensors *pl = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    for (int i = 0, k = 0; pl && i < pl->n; k += (int)pl->items[i].tensor->numel, i++)
        memcpy(out + k, gf_f32(pl->items[i].tensor->grad),
               sizeof(float) * (size_t)pl->items[i].tensor->numel);
    gf_named_tensors_free(pl);
    gf_module_free(m);
    gf_ctx_reset(ctx);
    gf_ctx_set_inplace(ctx, true);
}

static void test_memory_rules(gf_ctx *ctx) {
    const float ids[12] = {3, 1, 4, 1, 5, 0, 2, 6, 5, 3, 0, 0};
    gf_tensor *x = gf_tensor_from_data(ctx, GF_F32, 2, (int64_t[]){2, 6}, ids);
    gf_tensor *len = gf_tensor_from_data(ctx, GF_I64, 1, (int64_t[]){2}, (int64_t[]){6, 4});
    enum { NP = 9 * 4 + 2 * (24 * 4 + 24 * 6 + 48) + 12 * 2 + 2 };
    static float a[NP], b[NP];
    memory_run(ctx, true, x, len, a);
    memory_run(ctx, false, x, len, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    bool any = false;
    for (int i = 0; i < NP; i++) any |= a[i] != 0.0f;
    CHECK(any);
    gf_tensor_free(x), gf_tensor_free(len);
}

/* ---- model specs: embedding, lstm, gru ---------------------------------------------------- */

static gf_module *parse_spec(gf_ctx *ctx, const char *text, gf_spec_summary **sum) {
    return gf_spec_parse(ctx, text, strlen(text), NULL, sum);
}

static void test_spec(gf_ctx *ctx) {
    const char *net =
        "{\"type\": \"sequential\", \"input\": [7], \"children\": ["
        "{\"type\": \"embedding\", \"num_embeddings\": 20, \"embedding_dim\": 5, \"padding_idx\": 0},"
        "{\"type\": \"LSTM\", \"hidden_size\": 6, \"num_layers\": 2, \"bidirectional\": true,"
        " \"dropout\": 0.25},"
        "{\"type\": \"gru\", \"hidden_size\": 3, \"bias\": false}]}";
    gf_spec_summary *sum = NULL;
    gf_module *m = parse_spec(ctx, net, &sum);
    if (!m) fprintf(stderr, "spec: %s\n", gf_ctx_error(ctx));
    CHECK(m && sum && sum->out_ndim == 2 && sum->out_shape[0] == 7 && sum->out_shape[1] == 3);
    CHECK(sum && sum->n_layers == 4 && sum->layers[2].out_shape[1] == 12);
    gf_tensor *w = m ? gf_module_tensor(ctx, m, "1.weight_ih_l1_reverse") : NULL;
    CHECK(w && w->ndim == 2 && w->shape[0] == 24 && w->shape[1] == 12);
    w = m ? gf_module_tensor(ctx, m, "2.weight_hh_l0") : NULL;
    CHECK(w && w->shape[0] == 9 && w->shape[1] == 3);
    CHECK(m && gf_module_tensor(NULL, m, "2.bias_ih_l0") == NULL);
    CHECK(m && gf_module_param_count(m, false) ==
                   20 * 5 + 2 * (24 * (5 + 6) + 48) + 2 * (24 * (12 + 6) + 48) + 9 * (12 + 3));
    gf_spec_summary_free(sum);
    gf_module_free(m);
    EXPECT_ERR(ctx, parse_spec(ctx, "{\"type\": \"lstm\", \"input\": [4, 3], \"hidden_size\": 2,"
                                    " \"batch_first\": false}", NULL),
               GF_ERR_INVALID, "(lstm)", "\"batch_first\" must be true");
    EXPECT_ERR(ctx, parse_spec(ctx, "{\"type\": \"gru\", \"input\": [4], \"hidden_size\": 2}", NULL),
               GF_ERR_INVALID, "cannot infer \"input_size\" from the input [2, 4]");
    EXPECT_ERR(ctx, parse_spec(ctx, "{\"type\": \"gru\", \"input\": [4, 3], \"hidden\": 2}", NULL),
               GF_ERR_INVALID, "unknown key \"hidden\"");
    EXPECT_ERR(ctx, parse_spec(ctx, "{\"type\": \"lstm\", \"input\": [4, 3], \"input_size\": 5,"
                                    " \"hidden_size\": 2}", NULL),
               GF_ERR_SHAPE, "shapes do not connect", "[N, T, 5]");
    EXPECT_ERR(ctx, parse_spec(ctx, "{\"type\": \"embedding\", \"input\": [4], \"num_embeddings\": 5,"
                                    " \"embedding_dim\": 2, \"padding_idx\": 5}", NULL),
               GF_ERR_INVALID, "\"padding_idx\" must be a whole number in [-1, 4]");
    EXPECT_ERR(ctx, parse_spec(ctx, "{\"type\": \"lstm\", \"input\": [4, 3], \"hidden_size\": 1000000,"
                                    " \"num_layers\": 1000}", NULL),
               GF_ERR_INVALID, "parameters here");
    gf_ctx_clear_error(ctx);
}

/* ---- EmbeddingBag ------------------------------------------------------------------------ */

/* One case of embedding_bag_parity.json: output and weight gradient against torch's. */
static void embedding_bag_case(gf_ctx *ctx, const cJSON *c, int idx) {
    const char *mode = cJSON_GetObjectItem(c, "mode")->valuestring;
    const cJSON *pj = cJSON_GetObjectItem(c, "padding_idx");
    const int64_t V = (int64_t)cJSON_GetObjectItem(c, "num_embeddings")->valuedouble;
    const int64_t D = (int64_t)cJSON_GetObjectItem(c, "embedding_dim")->valuedouble;
    const cJSON *ids = cJSON_GetObjectItem(c, "ids");
    const int64_t N = cJSON_GetArraySize(ids), T = cJSON_GetArraySize(cJSON_GetArrayItem(ids, 0));
    gf_nn_bag_mode m = strcmp(mode, "sum") == 0 ? GF_NN_BAG_SUM
                       : strcmp(mode, "max") == 0 ? GF_NN_BAG_MAX : GF_NN_BAG_MEAN;
    gf_module *bag = gf_nn_embedding_bag(ctx, NULL, V, D, m, cJSON_IsNull(pj) ? -1 : (int64_t)pj->valuedouble);
    CHECK(bag != NULL);
    if (!bag) return;
    float *w = arr_f32(cJSON_GetObjectItem(c, "weight"));
    memcpy(gf_f32(gf_module_tensor(ctx, bag, "weight")), w, sizeof(float) * (size_t)(V * D));
    free(w);
    gf_tensor *x = gf_empty(ctx, GF_F32, 2, (int64_t[]){N, T});
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < T; j++)
            gf_f32(x)[i * T + j] = (float)cJSON_GetArrayItem(cJSON_GetArrayItem(ids, (int)i), (int)j)->valuedouble;
    gf_tensor *y = gf_module_forward(ctx, bag, x);
    gf_tensor *gy = from_json(ctx, cJSON_GetObjectItem(c, "gy"), 2, (int64_t[]){N, D}, false);
    char what[96];
    snprintf(what, sizeof what, "EmbeddingBag case %d (%s, padding_idx %s) output", idx, mode,
             cJSON_IsNull(pj) ? "None" : "0");
    CHECK(y && close_tensor(what, y, cJSON_GetObjectItem(c, "y")));
    gf_status st = gf_backward(ctx, gf_sum(ctx, gf_mul(ctx, y, gy), NULL, 0, false));
    if (st != GF_OK) fprintf(stderr, "%s: %s\n", what, gf_ctx_error(ctx));
    CHECK(st == GF_OK);
    gf_tensor *wt = gf_module_tensor(ctx, bag, "weight");
    snprintf(what, sizeof what, "EmbeddingBag case %d (%s) weight gradient", idx, mode);
    CHECK(wt->grad && close_tensor(what, wt->grad, cJSON_GetObjectItem(c, "grad_weight")));
    gf_tensor_free(gy);
    gf_module_free(bag);
    gf_ctx_reset(ctx);
}

static void test_embedding_bag(gf_ctx *ctx) {
    gf_ctx_clear_error(ctx);
    cJSON *fx = load_fixture("embedding_bag_parity.json");
    CHECK(fx != NULL);
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(fx, "cases")) embedding_bag_case(ctx, c, i++);
    CHECK(i == 6);
    cJSON_Delete(fx);
    /* errors: a bag batch must be [N, T]; the mode must be known */
    gf_module *bag = gf_nn_embedding_bag(ctx, NULL, 5, 2, GF_NN_BAG_MEAN, 0);
    gf_tensor *x3 = gf_zeros(ctx, GF_F32, 3, (int64_t[]){2, 3, 1});
    EXPECT_ERR(ctx, gf_module_forward(ctx, bag, x3), GF_ERR_SHAPE, "bags [N, T], found [2, 3, 1]");
    gf_ctx_clear_error(ctx);
    gf_module_free(bag);
    EXPECT_ERR(ctx, gf_nn_embedding_bag(ctx, NULL, 5, 2, (gf_nn_bag_mode)7, 0), GF_ERR_INVALID,
               "mode 7");
    gf_ctx_clear_error(ctx);
    /* in a spec, sized by the data's vocabulary */
    gf_spec_params sp = gf_spec_default_params();
    sp.in_ndim = 1;
    sp.in_shape[0] = 6;
    sp.n_classes = 2;
    sp.vocab_size = 40;
    const char *spec = "{\"type\": \"sequential\", \"children\": {\"embedding\": {\"type\": "
                       "\"EmbeddingBag\", \"embedding_dim\": 8, \"mode\": \"max\"}, \"fc\": "
                       "{\"type\": \"linear\", \"out\": \"classes\"}}}";
    gf_module *m = gf_spec_parse(ctx, spec, strlen(spec), &sp, NULL);
    CHECK(m && gf_module_tensor(ctx, m, "embedding.weight")->shape[0] == 40);
    gf_module_free(m);
    char *text = gf_spec_resolve(ctx, spec, strlen(spec), &sp);
    CHECK(text && strstr(text, "\"num_embeddings\":40") && strstr(text, "\"out\":2"));
    free(text);
    sp.vocab_size = 0;
    EXPECT_ERR(ctx, gf_spec_parse(ctx, spec, strlen(spec), &sp, NULL), GF_ERR_INVALID,
               "vocabulary size of text data, which is not known here");
    gf_ctx_clear_error(ctx);
}

int main(void) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 2;
    cp.seed = 3;
    gf_ctx *ctx = gf_ctx_new(&cp);
    test_parity(ctx);
    test_finite_differences(ctx);
    test_dropout(ctx);
    test_errors(ctx);
    test_unbatched(ctx);
    test_threads();
    test_embedding_ids(ctx);
    test_embedding_bag(ctx);
    test_spec(ctx);
    test_replicas(ctx);
    test_memory_rules(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_rnn");
}
