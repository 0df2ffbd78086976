/* Einsum: an equation over labelled axes ("bij,bjk->bik", "...ii->...i", "i,i"), with an
 * implicit output (the labels used once, in alphabetical order, after the ellipsis) when there is
 * no "->". Each operand first loses its repeated labels (diagonals, a gf_take of the flattened
 * pair) and the labels nothing else needs (gf_sum); operands are then contracted in pairs as one
 * batched gf_matmul after a permute and reshape, and the result is permuted into the output's
 * order. All recorded ops: the result is differentiable in every operand. */
#include "import/onnx_internal.h"

#include <string.h>

enum { EIN_MAX_IN = 8 };

typedef struct term {
    gf_tensor *t;
    int n;
    char lab[GF_MAX_DIMS]; /* one label per axis; ellipsis axes get '0'... */
} term;

/* Parses one operand's labels (spaces ignored) against its rank; ellipsis axes are labelled from
 * the right so that ellipses of different lengths broadcast. */
static bool parse_term(ox_exec *e, const char *s, size_t len, int rank, int ell_max, term *t) {
    int letters = 0, dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') dots++;
        else if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')) letters++;
        else if (s[i] != ' ') return ox_fail(e, GF_ERR_INVALID, "equation: unexpected '%c'", s[i]);
    }
    const int ell = dots ? rank - letters : 0;
    if ((dots && dots != 3) || ell < 0 || (!dots && letters != rank) || ell > ell_max)
        return ox_fail(e, GF_ERR_INVALID, "equation term '%.*s' does not fit an input of rank %d",
                       (int)len, s, rank);
    t->n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') continue;
        if (s[i] == '.') {
            i += 2; /* the three dots (counted above) */
            for (int k = 0; k < ell; k++) t->lab[t->n++] = (char)('0' + ell_max - ell + k);
            continue;
        }
        t->lab[t->n++] = s[i];
    }
    return t->n == rank;
}

static int find(const term *t, char c) {
    for (int i = 0; i < t->n; i++)
        if (t->lab[i] == c) return i;
    return -1;
}

/* Removes the axis at position b of t, whose label repeats at a < b: the diagonal. */
static bool diagonal(ox_exec *e, term *t, int a, int b) {
    gf_ctx *c = e->ctx;
    int64_t n = t->t->shape[a];
    if (t->t->shape[b] != n)
        return ox_fail(e, GF_ERR_SHAPE, "repeated label '%c' on axes of sizes %lld and %lld",
                       t->lab[a], (long long)n, (long long)t->t->shape[b]);
    int perm[GF_MAX_DIMS], k = 0;
    char lab[GF_MAX_DIMS];
    int64_t shape[GF_MAX_DIMS];
    for (int i = 0; i < t->n; i++)
        if (i != a && i != b) perm[k] = i, lab[k] = t->lab[i], shape[k++] = t->t->shape[i];
    perm[k] = a, perm[k + 1] = b;
    shape[k] = n * n;
    gf_tensor *idx = gf_empty(c, GF_I64, 1, &n);
    if (!idx) return false;
    for (int64_t i = 0; i < n; i++) gf_i64(idx)[i] = i * (n + 1);
    t->t = gf_take(c, gf_reshape(c, gf_permute(c, t->t, perm), k + 1, shape), idx, k);
    lab[k] = t->lab[a];
    memcpy(t->lab, lab, (size_t)(k + 1));
    t->n = k + 1;
    return t->t != NULL;
}

/* Takes diagonals until every label of t is unique. */
static bool dedupe(ox_exec *e, term *t) {
    for (bool again = true; again;) {
        again = false;
        for (int a = 0; a < t->n && !again; a++)
            for (int b = a + 1; b < t->n && !again; b++)
                if (t->lab[a] == t->lab[b]) {
                    if (!diagonal(e, t, a, b)) return false;
                    again = true;
                }
    }
    return true;
}

/* Sums out the labels of t that neither the output nor another operand uses. */
static bool reduce_private(ox_exec *e, term *t, const term *all, int n_all, int self,
                           const char *out) {
    int axes[GF_MAX_DIMS], na = 0, k = 0;
    char keep[GF_MAX_DIMS];
    for (int i = 0; i < t->n; i++) {
        bool used = strchr(out, t->lab[i]) != NULL;
        for (int j = 0; j < n_all && !used; j++) used = j != self && find(&all[j], t->lab[i]) >= 0;
        if (used) keep[k++] = t->lab[i];
        else axes[na++] = i;
    }
    if (!na) return true;
    t->t = gf_sum(e->ctx, t->t, axes, na, false);
    memcpy(t->lab, keep, (size_t)k);
    t->n = k;
    return t->t != NULL;
}

/* a and b contracted over the labels they share that later operands and the output do not
 * need; the result is [batch, a's own, b's own] labelled so. */
static bool contract(ox_exec *e, term *a, term *b, const char *need) {
    gf_ctx *c = e->ctx;
    char bl[GF_MAX_DIMS], ll[GF_MAX_DIMS], rl[GF_MAX_DIMS], kl[GF_MAX_DIMS];
    int nb = 0, nl = 0, nr = 0, nk = 0;
    for (int i = 0; i < a->n; i++) {
        char x = a->lab[i];
        if (find(b, x) < 0) ll[nl++] = x;
        else if (strchr(need, x)) bl[nb++] = x;
        else kl[nk++] = x;
    }
    for (int i = 0; i < b->n; i++)
        if (find(a, b->lab[i]) < 0) rl[nr++] = b->lab[i];
    if (nb + nl + nr > GF_MAX_DIMS)
        return ox_fail(e, GF_ERR_SHAPE, "the product would have rank %d", nb + nl + nr);
    int pa[GF_MAX_DIMS], pb[GF_MAX_DIMS], k = 0;
    int64_t B = 1, L = 1, R = 1, K = 1, oshape[GF_MAX_DIMS];
    for (int i = 0; i < nb; i++) pa[k++] = find(a, bl[i]), B *= a->t->shape[find(a, bl[i])];
    for (int i = 0; i < nl; i++) pa[k++] = find(a, ll[i]), L *= a->t->shape[find(a, ll[i])];
    for (int i = 0; i < nk; i++) pa[k++] = find(a, kl[i]), K *= a->t->shape[find(a, kl[i])];
    k = 0;
    for (int i = 0; i < nb; i++) pb[k++] = find(b, bl[i]);
    for (int i = 0; i < nk; i++) pb[k++] = find(b, kl[i]);
    for (int i = 0; i < nr; i++) pb[k++] = find(b, rl[i]), R *= b->t->shape[find(b, rl[i])];
    for (int i = 0; i < a->n; i++) {
        int j = find(b, a->lab[i]);
        if (j >= 0 && a->t->shape[i] != b->t->shape[j])
            return ox_fail(e, GF_ERR_SHAPE, "label '%c' has sizes %lld and %lld", a->lab[i],
                           (long long)a->t->shape[i], (long long)b->t->shape[j]);
    }
    gf_tensor *x = gf_reshape(c, gf_permute(c, a->t, pa), 3, (int64_t[]){B, L, K});
    gf_tensor *y = gf_reshape(c, gf_permute(c, b->t, pb), 3, (int64_t[]){B, K, R});
    int on = 0;
    char olab[GF_MAX_DIMS];
    for (int i = 0; i < nb; i++) oshape[on] = a->t->shape[find(a, bl[i])], olab[on++] = bl[i];
    for (int i = 0; i < nl; i++) oshape[on] = a->t->shape[find(a, ll[i])], olab[on++] = ll[i];
    for (int i = 0; i < nr; i++) oshape[on] = b->t->shape[find(b, rl[i])], olab[on++] = rl[i];
    a->t = gf_reshape(c, gf_matmul(c, x, y), on, oshape);
    memcpy(a->lab, olab, (size_t)on);
    a->n = on;
    return a->t != NULL;
}

/* The output labels: after "->", or the labels used exactly once (ellipsis first). */
static bool output_labels(ox_exec *e, const char *eq, const term *t, int n, int ell_max,
                          char *out) {
    const char *arrow = strstr(eq, "->");
    int k = 0;
    if (arrow) {
        term o;
        int letters = 0, dots = 0;
        for (const char *p = arrow + 2; *p; p++)
            letters += (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'), dots += *p == '.';
        if (!parse_term(e, arrow + 2, strlen(arrow + 2), letters + (dots ? ell_max : 0), ell_max,
                        &o))
            return false;
        memcpy(out, o.lab, (size_t)o.n);
        out[o.n] = '\0';
        return true;
    }
    for (int i = 0; i < ell_max; i++) out[k++] = (char)('0' + i);
    for (int c = 'A'; c <= 'z'; c++) {
        int uses = 0;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < t[j].n; i++) uses += t[j].lab[i] == c;
        if (uses == 1 && k < GF_MAX_DIMS) out[k++] = (char)c;
    }
    out[k] = '\0';
    return true;
}

bool ox_op_einsum(ox_exec *e) {
    const char *eq = ox_attr_str(e->node, "equation", NULL);
    if (!eq || e->n_in < 1 || e->n_in > EIN_MAX_IN)
        return ox_fail(e, GF_ERR_INVALID, "no equation, or more than %d inputs", EIN_MAX_IN);
    term t[EIN_MAX_IN];
    const char *p = eq, *arrow = strstr(eq, "->");
    int ell_max = 0;
    for (int i = 0; i < e->n_in; i++)
        if (!ox_need(e, i, GF_F32)) return false;
    int terms = 1;
    for (const char *q = eq; *q && q != arrow; q++) terms += *q == ',';
    if (terms != e->n_in)
        return ox_fail(e, GF_ERR_INVALID, "equation '%s' has %d terms for %d inputs", eq, terms,
                       e->n_in);
    for (int i = 0; i < e->n_in; i++) { /* the longest ellipsis of any operand */
        const char *end = strchr(p, ',');
        if (!end || (arrow && end > arrow)) end = arrow ? arrow : p + strlen(p);
        int letters = 0;
        bool dots = false;
        for (const char *q = p; q < end; q++)
            letters += (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'), dots |= *q == '.';
        if (dots && e->in[i]->ndim - letters > ell_max) ell_max = e->in[i]->ndim - letters;
        p = *end == ',' ? end + 1 : end;
    }
    p = eq;
    for (int i = 0; i < e->n_in; i++) {
        const char *end = strchr(p, ',');
        if (i == e->n_in - 1 || !end || (arrow && end > arrow)) end = arrow ? arrow : p + strlen(p);
        t[i].t = e->in[i];
        if (!parse_term(e, p, (size_t)(end - p), e->in[i]->ndim, ell_max, &t[i])) return false;
        p = end + 1;
    }
    char out[GF_MAX_DIMS + 1];
    if (!output_labels(e, eq, t, e->n_in, ell_max, out)) return false;
    for (int i = 0; i < e->n_in; i++) {
        if (!dedupe(e, &t[i]) || !reduce_private(e, &t[i], t, e->n_in, i, out)) return false;
    }
    term acc = t[0];
    for (int i = 1; i < e->n_in; i++) {
        char need[64];
        size_t k = strlen(out);
        memcpy(need, out, k + 1);
        for (int j = i + 1; j < e->n_in && k + (size_t)t[j].n < sizeof need; j++)
            memcpy(need + k, t[j].lab, (size_t)t[j].n), k += (size_t)t[j].n, need[k] = '\0';
        if (!contract(e, &acc, &t[i], need)) return false;
    }
    if (!reduce_private(e, &acc, NULL, 0, 0, out)) return false;
    int perm[GF_MAX_DIMS];
    if ((int)strlen(out) != acc.n)
        return ox_fail(e, GF_ERR_INVALID, "output labels '%s' do not match the inputs", out);
    for (int i = 0; i < acc.n; i++)
        if ((perm[i] = find(&acc, out[i])) < 0)
            return ox_fail(e, GF_ERR_INVALID, "output label '%c' is in no input", out[i]);
    return (e->out[0] = gf_permute(e->ctx, acc.t, perm)) != NULL;
}
