/* Fixture-driven op tests: parity with PyTorch (forward and input gradients) and a
 * central finite-difference check of every analytic gradient. See harness.h. */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IO 16
#define GC_MAX_POINTS 40 /* elements checked per input by finite differences */

static const gf_case_op *const tables[] = {gf_cases_core, gf_cases_act, gf_cases_conv,
                                           gf_cases_norm, gf_cases_loss, gf_cases_attention};

const gf_case_op *harness_find(const char *name) {
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const gf_case_op *c = tables[t]; c->name; c++)
            if (strcmp(c->name, name) == 0) return c;
    return NULL;
}

/* ---- parameter getters ---------------------------------------------------------------- */

int case_int(const cJSON *p, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
    return cJSON_IsNumber(v) ? v->valueint : cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

double case_num(const cJSON *p, const char *key, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsString(v)) { /* "inf", "-inf", "nan" */
        return strtod(v->valuestring, NULL);
    }
    return dflt;
}

bool case_bool(const cJSON *p, const char *key, bool dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : cJSON_IsNumber(v) ? v->valueint != 0 : dflt;
}

const char *case_str(const cJSON *p, const char *key, const char *dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

int case_i64s(const cJSON *p, const char *key, int64_t *dst, int max) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
    if (cJSON_IsNumber(v)) {
        for (int i = 0; i < max; i++) dst[i] = (int64_t)v->valuedouble;
        return max;
    }
    if (!cJSON_IsArray(v)) return 0;
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (n < max) dst[n++] = (int64_t)e->valuedouble;
    }
    return n;
}

int case_ints(const cJSON *p, const char *key, int *dst, int max) {
    int64_t tmp[64];
    if (max > 64) max = 64;
    int n = case_i64s(p, key, tmp, max);
    for (int i = 0; i < n; i++) dst[i] = (int)tmp[i];
    return n;
}

/* ---- fixture reading ------------------------------------------------------------------ */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = '\0';
    fclose(f);
    return buf;
}

static int read_shape(const cJSON *arr, int64_t *shape) {
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (n < GF_MAX_DIMS) shape[n] = (int64_t)e->valuedouble;
        n++;
    }
    return n;
}

static double *read_doubles(const cJSON *arr, int64_t *count) {
    int64_t n = cJSON_GetArraySize(arr), i = 0;
    double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        d[i++] = cJSON_IsString(e) ? strtod(e->valuestring, NULL) : e->valuedouble;
    }
    *count = n;
    return d;
}

typedef struct {
    const cJSON *json;
    const char *id;
    const gf_case_op *op;
    const cJSON *params;
    int n_in;
    gf_tensor *in[MAX_IO];
    const char *in_name[MAX_IO];
    int n_out;
    int64_t out_shape[MAX_IO][GF_MAX_DIMS];
    int out_nd[MAX_IO];
    double *out_ref[MAX_IO];
    gf_tensor *gout[MAX_IO]; /* persistent; NULL when the output has no gradient */
    double atol, rtol, gc_h;
    bool gc;
} fx_case;

static void case_free(fx_case *c) {
    for (int i = 0; i < c->n_in; i++) gf_tensor_free(c->in[i]);
    for (int i = 0; i < c->n_out; i++) {
        free(c->out_ref[i]);
        gf_tensor_free(c->gout[i]);
    }
}

static bool case_load(gf_ctx *ctx, const cJSON *j, fx_case *c) {
    memset(c, 0, sizeof *c);
    c->json = j;
    c->id = case_str(j, "id", "?");
    c->params = cJSON_GetObjectItemCaseSensitive(j, "params");
    c->atol = case_num(j, "atol", 1e-5);
    c->rtol = case_num(j, "rtol", 1e-4);
    c->gc_h = case_num(j, "gc_h", 1e-3);
    c->gc = case_bool(j, "gc", true);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "inputs")) {
        if (c->n_in == MAX_IO) return false;
        int64_t shape[GF_MAX_DIMS], n;
        int nd = read_shape(cJSON_GetObjectItemCaseSensitive(e, "shape"), shape);
        double *d = read_doubles(cJSON_GetObjectItemCaseSensitive(e, "data"), &n);
        bool is_int = strcmp(case_str(e, "dtype", "f32"), "i64") == 0;
        gf_tensor *t = gf_tensor_new(ctx, is_int ? GF_I64 : GF_F32, nd, shape);
        if (!t || t->numel != n) {
            free(d);
            gf_tensor_free(t);
            return false;
        }
        for (int64_t i = 0; i < n; i++) {
            if (is_int) gf_i64(t)[i] = (int64_t)d[i];
            else gf_f32(t)[i] = (float)d[i];
        }
        free(d);
        gf_tensor_set_requires_grad(t, !is_int && case_bool(e, "grad", false));
        c->in_name[c->n_in] = case_str(e, "name", "?");
        c->in[c->n_in++] = t;
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "outputs")) {
        if (c->n_out == MAX_IO) return false;
        int k = c->n_out++;
        int64_t n;
        c->out_nd[k] = read_shape(cJSON_GetObjectItemCaseSensitive(e, "shape"), c->out_shape[k]);
        c->out_ref[k] = read_doubles(cJSON_GetObjectItemCaseSensitive(e, "data"), &n);
        const cJSON *go = cJSON_GetObjectItemCaseSensitive(e, "gout");
        if (cJSON_IsArray(go)) {
            double *g = read_doubles(go, &n);
            c->gout[k] = gf_tensor_new(ctx, GF_F32, c->out_nd[k], c->out_shape[k]);
            if (!c->gout[k] || c->gout[k]->numel != n) {
                free(g);
                return false;
            }
            for (int64_t i = 0; i < n; i++) gf_f32(c->gout[k])[i] = (float)g[i];
            free(g);
        }
    }
    return true;
}

/* Runs the op once; returns the number of outputs or -1. */
static int case_forward(gf_ctx *ctx, fx_case *c, gf_tensor **out) {
    gf_rng_seed(gf_ctx_rng(ctx), 1234);
    return c->op->run(ctx, c->params, c->in, c->n_in, out, MAX_IO);
}

/* sum_k <out_k, gout_k> in double. */
static double case_objective(const fx_case *c, gf_tensor **out, int n_out) {
    double s = 0;
    for (int k = 0; k < n_out; k++) {
        if (!c->gout[k]) continue;
        for (int64_t i = 0; i < out[k]->numel; i++)
            s += (double)gf_get_f32(out[k], i) * (double)gf_f32(c->gout[k])[i];
    }
    return s;
}

static bool close_enough(double got, double want, double atol, double rtol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= atol + rtol * fabs(want);
}

static int compare(const char *file, const fx_case *c, const char *what, const gf_tensor *t,
                   const double *ref, int64_t n) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double got = t->dtype == GF_I64 ? (double)gf_get_i64(t, i) : (double)gf_get_f32(t, i);
        if (!close_enough(got, ref[i], c->atol, c->rtol)) {
            if (bad < 3)
                fprintf(stderr, "%s: case %s: %s[%lld] = %.9g, PyTorch %.9g\n", file, c->id, what,
                        (long long)i, got, ref[i]);
            bad++;
        }
    }
    return bad ? 1 : 0;
}

/* Forward + parity of outputs, backward + parity of input grads, finite differences. */
static int run_case(gf_ctx *ctx, const char *file, fx_case *c) {
    gf_tensor *out[MAX_IO];
    int fails = 0;
    for (int i = 0; i < c->n_in; i++) gf_tensor_zero_grad(c->in[i]);
    int n_out = case_forward(ctx, c, out);
    if (n_out < 0 || gf_ctx_status(ctx) != GF_OK) {
        fprintf(stderr, "%s: case %s: op failed: %s\n", file, c->id, gf_ctx_error(ctx));
        return 1;
    }
    if (n_out != c->n_out) {
        fprintf(stderr, "%s: case %s: %d outputs, fixture has %d\n", file, c->id, n_out, c->n_out);
        return 1;
    }
    for (int k = 0; k < n_out; k++) {
        char what[32];
        snprintf(what, sizeof what, "output %d", k);
        if (out[k]->ndim != c->out_nd[k] ||
            memcmp(out[k]->shape, c->out_shape[k], sizeof(int64_t) * (size_t)c->out_nd[k])) {
            char a[96], b[96];
            fprintf(stderr, "%s: case %s: %s shape %s, PyTorch %s\n", file, c->id, what,
                    gf_shape_str(out[k], a, sizeof a), gf_dims_str(c->out_nd[k], c->out_shape[k], b, sizeof b));
            return 1;
        }
        fails |= compare(file, c, what, out[k], c->out_ref[k], out[k]->numel);
    }
    /* backward from every output that has an upstream gradient */
    gf_tensor *bo[MAX_IO];
    const gf_tensor *bg[MAX_IO];
    int nb = 0;
    for (int k = 0; k < n_out; k++)
        if (c->gout[k] && out[k]->requires_grad) {
            bo[nb] = out[k];
            bg[nb++] = c->gout[k];
        }
    const cJSON *grads = cJSON_GetObjectItemCaseSensitive(c->json, "grads");
    if (nb > 0 && gf_backward_many(ctx, nb, bo, bg) != GF_OK) {
        fprintf(stderr, "%s: case %s: backward failed: %s\n", file, c->id, gf_ctx_error(ctx));
        return 1;
    }
    for (int i = 0; i < c->n_in; i++) {
        const cJSON *ref = cJSON_GetObjectItemCaseSensitive(grads, c->in_name[i]);
        if (!ref || !c->in[i]->requires_grad) continue;
        int64_t n;
        double *r = read_doubles(ref, &n);
        char what[64];
        snprintf(what, sizeof what, "grad of %s", c->in_name[i]);
        if (!c->in[i]->grad) {
            bool all_zero = true;
            for (int64_t j = 0; j < n; j++) all_zero &= r[j] == 0.0;
            if (!all_zero) {
                fprintf(stderr, "%s: case %s: %s was never computed\n", file, c->id, what);
                fails |= 1;
            }
        } else {
            fails |= compare(file, c, what, c->in[i]->grad, r, n);
        }
        free(r);
    }
    gf_ctx_reset(ctx);
    if (!c->gc || nb == 0) return fails;

    /* finite differences of the objective, evaluated without recording */
    double tol = c->op->gc_tol > 0 ? c->op->gc_tol : 2e-2;
    bool prev = gf_ctx_set_grad_enabled(ctx, false);
    gf_rng pick;
    gf_rng_seed(&pick, 99);
    for (int i = 0; i < c->n_in && !fails; i++) {
        gf_tensor *x = c->in[i];
        if (!x->requires_grad || !x->grad) continue;
        int64_t n = x->numel, points = n < GC_MAX_POINTS ? n : GC_MAX_POINTS;
        double worst = 0;
        for (int64_t p = 0; p < points; p++) {
            int64_t j = n <= GC_MAX_POINTS ? p : (int64_t)gf_rng_below(&pick, (uint64_t)n);
            float orig = gf_f32(x)[j];
            double h = c->gc_h * (fabs(orig) > 1 ? fabs(orig) : 1);
            double fp, fm;
            gf_f32(x)[j] = (float)(orig + h);
            double hp = (double)gf_f32(x)[j] - orig; /* the step actually representable */
            int no = case_forward(ctx, c, out);
            fp = no > 0 ? case_objective(c, out, no) : NAN;
            gf_ctx_reset(ctx);
            gf_f32(x)[j] = (float)(orig - h);
            double hm = orig - (double)gf_f32(x)[j];
            no = case_forward(ctx, c, out);
            fm = no > 0 ? case_objective(c, out, no) : NAN;
            gf_ctx_reset(ctx);
            gf_f32(x)[j] = orig;
            double num = (fp - fm) / (hp + hm);
            double ana = gf_f32(x->grad)[j];
            double err = fabs(num - ana) / (1.0 + fabs(num));
            if (!(err <= tol)) {
                fprintf(stderr,
                        "%s: case %s: finite differences disagree for %s[%lld]: analytic %.7g, "
                        "numeric %.7g\n",
                        file, c->id, c->in_name[i], (long long)j, ana, num);
                fails = 1;
                break;
            }
            if (err > worst) worst = err;
        }
    }
    gf_ctx_set_grad_enabled(ctx, prev);
    return fails;
}

int harness_run_file(const char *path, int *n_cases) {
    *n_cases = 0;
    char *text = slurp(path);
    if (!text) {
        fprintf(stderr, "%s: cannot read fixture file\n", path);
        return -1;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) {
        fprintf(stderr, "%s: not valid JSON\n", path);
        return -1;
    }
    gf_ctx_params pp = gf_ctx_default_params();
    pp.arena_bytes = 1 << 20;
    gf_ctx *ctx = gf_ctx_new(&pp);
    int fails = 0;
    const cJSON *j;
    cJSON_ArrayForEach(j, cJSON_GetObjectItemCaseSensitive(root, "cases")) {
        (*n_cases)++;
        fx_case c;
        const char *opname = case_str(j, "op", "?");
        const gf_case_op *op = harness_find(opname);
        if (!op) {
            fprintf(stderr, "%s: case %s: no runner for op '%s'\n", path, case_str(j, "id", "?"), opname);
            fails++;
            continue;
        }
        if (!case_load(ctx, j, &c)) {
            fprintf(stderr, "%s: case %s: malformed case\n", path, case_str(j, "id", "?"));
            case_free(&c);
            fails++;
            continue;
        }
        c.op = op;
        int f = run_case(ctx, path, &c);
        fails += f;
        case_free(&c);
        gf_ctx_reset(ctx);
        gf_ctx_clear_error(ctx);
    }
    gf_ctx_free(ctx);
    cJSON_Delete(root);
    return fails;
}

