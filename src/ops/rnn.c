/* Fused recurrent layers: one direction of one LSTM or GRU layer over a whole padded batch,
 * forward and backward through time. The input projection of every step is one GEMM, each
 * step one GEMM h W_hh^T and a fused gate kernel; the backward gathers the gate gradients of
 * all steps so that dW_ih, dW_hh and dx are one GEMM each.
 *
 * Layout: row(t, n) = t N + n (time-major) or n T + t (batch_first) indexes the rows of x, of
 * the output and of every saved buffer below, so batch_first costs no transposes. The running
 * state (h, c and their gradients) keeps the examples sorted by length, longest first
 * (order[k] is the example in slot k): the examples still running at step t are then the
 * first active[t] slots, in either direction, and each step's products skip the others, as
 * PyTorch's packed sequences do. */
#include "core/internal.h"
#include "graft/ops.h"

#include "kernels/gemm.h"

#include <math.h>

typedef enum { RNN_LSTM = 0, RNN_GRU = 1 } rnn_kind;

/* Sizes and settings of one run, shared by the forward and the backward. */
typedef struct {
    rnn_kind kind;
    int64_t T, N, I, H, G; /* G gates of H values each */
    bool batch_first, reverse;
} rnn_dims;

/* What the backward needs, saved per row(t, n) in the arena. */
typedef struct {
    rnn_dims d;
    int64_t *len;      /* [N] real steps per example */
    int64_t *order;    /* [N] examples by length, longest first (stable) */
    int64_t *active;   /* [T] examples with more than t real steps */
    const float *x;    /* [rows, I] the input in contiguous order */
    float *act;        /* [rows, G H] gate activations: i f g o (LSTM), r z n (GRU) */
    float *hprev;      /* [rows, H] the state entering the step */
    float *cprev;      /* LSTM: [rows, H] the cell entering the step */
    float *aux;        /* LSTM: tanh(c') [rows, H]; GRU: W_hn h + b_hn [rows, H] */
} rnn_saved;

static inline int64_t row_of(const rnn_dims *d, int64_t t, int64_t n) {
    return d->batch_first ? n * d->T + t : t * d->N + n;
}

/* The time index of the s-th step run. */
static inline int64_t time_of(const rnn_dims *d, int64_t s) {
    return d->reverse ? d->T - 1 - s : s;
}

static inline float sigm(float v) { return 1.0f / (1.0f + expf(-v)); }

/* tanh through expf, which glibc computes several times faster than tanhf (whose expm1f
 * dominated a profile): (1 - e^-2|v|) / (1 + e^-2|v|) with v's sign, within ~1e-7 of tanhf. */
static inline float tanh_fast(float v) {
    float e = expf(-2.0f * fabsf(v)), r = (1.0f - e) / (1.0f + e);
    return copysignf(r, v);
}

/* ---- argument checks ----------------------------------------------------------------------- */

/* t must be float32 of exactly the given shape; NULL passes when optional. */
static bool check_shape(gf_ctx *ctx, const char *op, const char *arg, const gf_tensor *t,
                        int ndim, const int64_t *want, bool optional) {
    if (!t) {
        if (optional) return true;
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: %s is NULL", op, arg);
        return false;
    }
    if (!gf_check_tensor(ctx, op, arg, t, GF_F32)) return false;
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == want[i];
    if (ok) return true;
    char got[GF_SHAPE_BUF], exp[GF_SHAPE_BUF];
    gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: %s is %s, expected %s", op, arg,
                     gf_shape_str(t, got, sizeof got), gf_dims_str(ndim, want, exp, sizeof exp));
    return false;
}

/* Reads the lengths into len[N] after checking them ([N] int64, each in [0, T]). */
static bool read_lengths(gf_ctx *ctx, const char *op, const gf_tensor *lengths,
                         const rnn_dims *d, int64_t *len) {
    if (!lengths) {
        for (int64_t n = 0; n < d->N; n++) len[n] = d->T;
        return true;
    }
    char s[GF_SHAPE_BUF];
    if (lengths->dtype != GF_I64 || lengths->ndim != 1 || lengths->shape[0] != d->N) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: lengths must be int64 [%lld], got %s %s", op,
                         (long long)d->N, gf_dtype_name(lengths->dtype),
                         gf_shape_str(lengths, s, sizeof s));
        return false;
    }
    for (int64_t n = 0; n < d->N; n++) {
        len[n] = gf_get_i64(lengths, n);
        if (len[n] < 0 || len[n] > d->T) {
            gf_ctx_set_error(ctx, GF_ERR_INVALID,
                             "%s: lengths[%lld] = %lld is outside [0, %lld] (the sequence length)",
                             op, (long long)n, (long long)len[n], (long long)d->T);
            return false;
        }
    }
    return true;
}

/* Checks x and the arguments and fills d. */
static bool check_args(gf_ctx *ctx, const char *op, const gf_tensor *x, const gf_rnn_args *a,
                       rnn_dims *d) {
    if (!a) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: arguments are NULL", op);
        return false;
    }
    if (!gf_check_tensor(ctx, op, "input", x, GF_F32) ||
        !gf_check_tensor(ctx, op, "weight_ih", a->w_ih, GF_F32) ||
        !gf_check_tensor(ctx, op, "weight_hh", a->w_hh, GF_F32))
        return false;
    char sx[GF_SHAPE_BUF], sw[GF_SHAPE_BUF];
    if (x->ndim != 3) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: input %s must be %s", op,
                         gf_shape_str(x, sx, sizeof sx), a->batch_first ? "[N, T, I]" : "[T, N, I]");
        return false;
    }
    const int64_t wh = a->w_hh->ndim == 2 ? a->w_hh->shape[1] : 0;
    if (a->w_hh->ndim != 2 || wh <= 0 || a->w_hh->shape[0] != d->G * wh) {
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: weight_hh %s must be [%lld * hidden, hidden]", op,
                         gf_shape_str(a->w_hh, sw, sizeof sw), (long long)d->G);
        return false;
    }
    d->H = wh;
    d->T = x->shape[a->batch_first ? 1 : 0];
    d->N = x->shape[a->batch_first ? 0 : 1];
    d->I = x->shape[2];
    d->batch_first = a->batch_first;
    d->reverse = a->reverse;
    const int64_t gh = d->G * d->H, nh[2] = {d->N, d->H};
    if (!check_shape(ctx, op, "weight_ih", a->w_ih, 2, (int64_t[]){gh, d->I}, false) ||
        !check_shape(ctx, op, "weight_hh", a->w_hh, 2, (int64_t[]){gh, d->H}, false) ||
        !check_shape(ctx, op, "bias_ih", a->b_ih, 1, &gh, true) ||
        !check_shape(ctx, op, "bias_hh", a->b_hh, 1, &gh, true) ||
        !check_shape(ctx, op, "h0", a->h0, 2, nh, true) ||
        !check_shape(ctx, op, "c0", d->kind == RNN_LSTM ? a->c0 : NULL, 2, nh, true))
        return false;
    if (d->kind == RNN_GRU && a->c0) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: a GRU has no cell state (c0 must be NULL)", op);
        return false;
    }
    if (!a->b_ih != !a->b_hh) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: bias_ih and bias_hh must both be given or "
                         "both be NULL", op);
        return false;
    }
    return true;
}

/* ---- forward ---------------------------------------------------------------------------------- */

/* One LSTM step at time t: gates from gx (input part, both biases folded in) and gh = h W_hh^T
 * (slot order, the first active[t] slots); writes the saved rows and the output, and moves
 * the state h, c. */
static void lstm_step(gf_ctx *ctx, const rnn_saved *sv, int64_t t, const float *gx,
                      const float *gh, float *h, float *c, float *y) {
    const rnn_dims *d = &sv->d;
    const int64_t H = d->H, G4 = 4 * H, na = sv->active[t];
#pragma omp parallel for num_threads(gf_threads_for(ctx, d->N * G4 * 8)) schedule(static)
    for (int64_t k = 0; k < d->N; k++) {
        const int64_t r = row_of(d, t, sv->order[k]);
        float *hn = h + k * H, *cn = c + k * H, *yr = y + r * H;
        memcpy(sv->hprev + r * H, hn, sizeof(float) * (size_t)H);
        memcpy(sv->cprev + r * H, cn, sizeof(float) * (size_t)H);
        if (k >= na) {
            memset(yr, 0, sizeof(float) * (size_t)H);
            continue;
        }
        const float *xr = gx + r * G4, *hr = gh + k * G4;
        float *ar = sv->act + r * G4, *tc = sv->aux + r * H;
        for (int64_t j = 0; j < H; j++) {
            float i = sigm(xr[j] + hr[j]), f = sigm(xr[H + j] + hr[H + j]);
            float g = tanh_fast(xr[2 * H + j] + hr[2 * H + j]), o = sigm(xr[3 * H + j] + hr[3 * H + j]);
            float cc = f * cn[j] + i * g, th = tanh_fast(cc);
            ar[j] = i, ar[H + j] = f, ar[2 * H + j] = g, ar[3 * H + j] = o;
            tc[j] = th;
            cn[j] = cc;
            hn[j] = yr[j] = o * th;
        }
    }
}

/* One GRU step: gx holds W_i x + b_i, gh holds W_h h + b_h (the n part is needed apart). */
static void gru_step(gf_ctx *ctx, const rnn_saved *sv, int64_t t, const float *gx,
                     const float *gh, float *h, float *y) {
    const rnn_dims *d = &sv->d;
    const int64_t H = d->H, G3 = 3 * H, na = sv->active[t];
#pragma omp parallel for num_threads(gf_threads_for(ctx, d->N * G3 * 8)) schedule(static)
    for (int64_t k = 0; k < d->N; k++) {
        const int64_t r = row_of(d, t, sv->order[k]);
        float *hn = h + k * H, *yr = y + r * H;
        memcpy(sv->hprev + r * H, hn, sizeof(float) * (size_t)H);
        if (k >= na) {
            memset(yr, 0, sizeof(float) * (size_t)H);
            continue;
        }
        const float *xr = gx + r * G3, *hr = gh + k * G3;
        float *ar = sv->act + r * G3, *ghn = sv->aux + r * H;
        for (int64_t j = 0; j < H; j++) {
            float rr = sigm(xr[j] + hr[j]), z = sigm(xr[H + j] + hr[H + j]);
            float nn = tanh_fast(xr[2 * H + j] + rr * hr[2 * H + j]);
            ar[j] = rr, ar[H + j] = z, ar[2 * H + j] = nn;
            ghn[j] = hr[2 * H + j];
            hn[j] = yr[j] = (1.0f - z) * nn + z * hn[j];
        }
    }
}

/* rows copies of a bias vector (b1 + b2 when both are given) into dst [rows, width]. */
static void fill_bias(float *dst, int64_t rows, int64_t width, const float *b1, const float *b2) {
    if (!b1) {
        memset(dst, 0, sizeof(float) * (size_t)(rows * width));
        return;
    }
    for (int64_t j = 0; j < width; j++) dst[j] = b2 ? b1[j] + b2[j] : b1[j];
    for (int64_t r = 1; r < rows; r++) memcpy(dst + r * width, dst, sizeof(float) * (size_t)width);
}

/* The state entering the first step in slot order: h0's rows (or zeros). */
static float *initial_state(gf_ctx *ctx, const rnn_saved *sv, const gf_tensor *s0) {
    const int64_t N = sv->d.N, H = sv->d.H;
    if (!s0) return gf_scratch_zero_f32(ctx, N * H + 1);
    const float *src = gf_contig_f32(ctx, s0);
    float *dst = gf_scratch_f32(ctx, N * H + 1);
    if (!src || !dst) return NULL;
    for (int64_t k = 0; k < N; k++)
        memcpy(dst + k * H, src + sv->order[k] * H, sizeof(float) * (size_t)H);
    return dst;
}

/* Copies slot-ordered rows [N, H] to example order (dst[order[k]] = src[k]), adding when add. */
static void unsort_rows(const rnn_saved *sv, const float *src, float *dst, bool add) {
    const int64_t H = sv->d.H;
    for (int64_t k = 0; k < sv->d.N; k++) {
        float *o = dst + sv->order[k] * H;
        const float *i = src + k * H;
        for (int64_t j = 0; j < H; j++) o[j] = add ? o[j] + i[j] : i[j];
    }
}

/* order: the examples by length, longest first, ties in example order (a counting sort);
 * active[t]: how many have more than t real steps. */
static bool sort_lengths(gf_ctx *ctx, rnn_saved *sv) {
    const int64_t N = sv->d.N, T = sv->d.T;
    sv->order = gf_scratch(ctx, sizeof(int64_t) * (size_t)(N + 1));
    sv->active = gf_scratch(ctx, sizeof(int64_t) * (size_t)(T + 1));
    int64_t *count = gf_scratch(ctx, sizeof(int64_t) * (size_t)(T + 2));
    if (!sv->order || !sv->active || !count) return false;
    memset(count, 0, sizeof(int64_t) * (size_t)(T + 2));
    for (int64_t n = 0; n < N; n++) count[T - sv->len[n] + 1]++;
    for (int64_t v = 1; v <= T + 1; v++) count[v] += count[v - 1];
    for (int64_t n = 0; n < N; n++) sv->order[count[T - sv->len[n]]++] = n;
    for (int64_t t = 0, k = N; t < T; t++) {
        while (k > 0 && sv->len[sv->order[k - 1]] <= t) k--;
        sv->active[t] = k;
    }
    return true;
}

/* Allocates the saved buffers of a run. */
static bool alloc_saved(gf_ctx *ctx, rnn_saved *sv) {
    const rnn_dims *d = &sv->d;
    const int64_t rows = d->T * d->N;
    sv->act = gf_scratch_f32(ctx, rows * d->G * d->H + 1);
    sv->hprev = gf_scratch_f32(ctx, rows * d->H + 1);
    sv->aux = gf_scratch_f32(ctx, rows * d->H + 1);
    sv->cprev = d->kind == RNN_LSTM ? gf_scratch_f32(ctx, rows * d->H + 1) : NULL;
    return sv->act && sv->hprev && sv->aux && (d->kind == RNN_GRU || sv->cprev);
}

/* Runs every step; out is [rows H | h_n N H | c_n N H (LSTM)]. */
static bool run_steps(gf_ctx *ctx, rnn_saved *sv, const gf_rnn_args *a, float *out) {
    const rnn_dims *d = &sv->d;
    const int64_t rows = d->T * d->N, GH = d->G * d->H, H = d->H;
    const bool lstm = d->kind == RNN_LSTM;
    const float *wih = gf_contig_f32(ctx, a->w_ih), *whh = gf_contig_f32(ctx, a->w_hh);
    const float *bih = a->b_ih ? gf_contig_f32(ctx, a->b_ih) : NULL;
    const float *bhh = a->b_hh ? gf_contig_f32(ctx, a->b_hh) : NULL;
    float *gx = gf_scratch_f32(ctx, rows * GH + 1), *gh = gf_scratch_f32(ctx, d->N * GH + 1);
    float *h = initial_state(ctx, sv, a->h0);
    float *c = lstm ? initial_state(ctx, sv, a->c0) : NULL;
    if (!wih || !whh || (a->b_ih && (!bih || !bhh)) || !gx || !gh || !h || (lstm && !c))
        return false;
    /* every step's input projection at once; an LSTM adds both biases here */
    fill_bias(gx, rows, GH, bih, lstm ? bhh : NULL);
    if (rows > 0 && d->I > 0)
        gf_gemm(ctx, false, true, rows, GH, d->I, 1.0f, sv->x, d->I, wih, d->I, 1.0f, gx, GH);
    for (int64_t s = 0; s < d->T; s++) {
        const int64_t t = time_of(d, s), na = sv->active[t];
        if (na > 0) {
            /* GRU keeps b_hh in gh: r multiplies W_hn h + b_hn */
            fill_bias(gh, na, GH, lstm ? NULL : bhh, NULL);
            gf_gemm(ctx, false, true, na, GH, H, 1.0f, h, H, whh, H, 1.0f, gh, GH);
        }
        if (lstm) lstm_step(ctx, sv, t, gx, gh, h, c, out);
        else gru_step(ctx, sv, t, gx, gh, h, out);
    }
    unsort_rows(sv, h, out + rows * H, false);
    if (lstm) unsort_rows(sv, c, out + (rows + d->N) * H, false);
    return true;
}

/* The views of the packed result: output [T, N, H] or [N, T, H], h_n and c_n [N, H]. */
static gf_tensor *unpack(gf_ctx *ctx, gf_tensor *packed, const rnn_dims *d, gf_tensor **h_n,
                         gf_tensor **c_n) {
    const int64_t ysz = d->T * d->N * d->H, ssz = d->N * d->H;
    const int64_t ys[3] = {d->batch_first ? d->N : d->T, d->batch_first ? d->T : d->N, d->H};
    const int64_t ss[2] = {d->N, d->H};
    gf_tensor *y = gf_reshape(ctx, gf_slice(ctx, packed, 0, 0, ysz, 1), 3, ys);
    if (h_n) *h_n = gf_reshape(ctx, gf_slice(ctx, packed, 0, ysz, ysz + ssz, 1), 2, ss);
    if (c_n)
        *c_n = d->kind == RNN_LSTM
                   ? gf_reshape(ctx, gf_slice(ctx, packed, 0, ysz + ssz, ysz + 2 * ssz, 1), 2, ss)
                   : NULL;
    if (!y || (h_n && !*h_n) || (c_n && d->kind == RNN_LSTM && !*c_n)) return NULL;
    return y;
}

static gf_tensor *rnn_forward(gf_ctx *ctx, rnn_kind kind, gf_tensor *x, const gf_rnn_args *a,
                              gf_tensor **h_n, gf_tensor **c_n) {
    const char *op = kind == RNN_LSTM ? "lstm" : "gru";
    if (h_n) *h_n = NULL;
    if (c_n) *c_n = NULL;
    rnn_saved sv = {.d = {.kind = kind, .G = kind == RNN_LSTM ? 4 : 3}};
    if (!check_args(ctx, op, x, a, &sv.d)) return NULL;
    const rnn_dims *d = &sv.d;
    sv.len = gf_scratch(ctx, sizeof(int64_t) * (size_t)(d->N + 1));
    if (!sv.len || !read_lengths(ctx, op, a->lengths, d, sv.len) || !sort_lengths(ctx, &sv))
        return NULL;
    sv.x = gf_contig_f32(ctx, x);
    if (!sv.x || !alloc_saved(ctx, &sv)) return NULL;
    const int64_t total = (d->T * d->N + (kind == RNN_LSTM ? 2 : 1) * d->N) * d->H;
    gf_tensor *packed = gf_empty(ctx, GF_F32, 1, &total);
    if (!packed || !run_steps(ctx, &sv, a, gf_f32(packed))) return NULL;
    gf_tensor *in[7] = {x, a->w_ih, a->w_hh, a->b_ih, a->b_hh, a->h0,
                        kind == RNN_LSTM ? a->c0 : NULL};
    if (gf_wants_grad(ctx, in, 7)) {
        gf_node *nd = gf_record(ctx, GF_OP_RNN, packed, in, 7, sizeof(rnn_saved));
        if (!nd) return NULL;
        *(rnn_saved *)nd->saved = sv;
    }
    return unpack(ctx, packed, d, h_n, c_n);
}

gf_tensor *gf_lstm_layer(gf_ctx *ctx, gf_tensor *x, const gf_rnn_args *a, gf_tensor **h_n,
                         gf_tensor **c_n) {
    return rnn_forward(ctx, RNN_LSTM, x, a, h_n, c_n);
}

gf_tensor *gf_gru_layer(gf_ctx *ctx, gf_tensor *x, const gf_rnn_args *a, gf_tensor **h_n) {
    return rnn_forward(ctx, RNN_GRU, x, a, h_n, NULL);
}

/* ---- backward --------------------------------------------------------------------------------- */

/* Gate gradients of one LSTM step (time t) into dg's rows, and for the running slots also
 * into dgc [active, 4H] (slot order, for the product with W_hh); dh, dc [N, H] (slot order)
 * hold the gradients reaching the state after the step and leave with those reaching it
 * before, except the term dgc W_hh that the caller adds to dh. Finished slots pass dh and dc
 * through. */
static void lstm_step_bw(gf_ctx *ctx, const rnn_saved *sv, int64_t t, const float *gy, float *dg,
                         float *dgc, float *dh, float *dc) {
    const rnn_dims *d = &sv->d;
    const int64_t H = d->H, G4 = 4 * H, na = sv->active[t];
#pragma omp parallel for num_threads(gf_threads_for(ctx, d->N * G4 * 4)) schedule(static)
    for (int64_t k = 0; k < d->N; k++) {
        const int64_t r = row_of(d, t, sv->order[k]);
        float *g = dg + r * G4;
        if (k >= na) {
            memset(g, 0, sizeof(float) * (size_t)G4);
            continue;
        }
        const float *ar = sv->act + r * G4, *tc = sv->aux + r * H, *cp = sv->cprev + r * H;
        const float *gyr = gy + r * H;
        float *dhn = dh + k * H, *dcn = dc + k * H;
        for (int64_t j = 0; j < H; j++) {
            float i = ar[j], f = ar[H + j], gg = ar[2 * H + j], o = ar[3 * H + j], th = tc[j];
            float dhj = dhn[j] + gyr[j];
            float dcj = dcn[j] + dhj * o * (1.0f - th * th);
            g[j] = dcj * gg * i * (1.0f - i);
            g[H + j] = dcj * cp[j] * f * (1.0f - f);
            g[2 * H + j] = dcj * i * (1.0f - gg * gg);
            g[3 * H + j] = dhj * th * o * (1.0f - o);
            dcn[j] = dcj * f;
            dhn[j] = 0.0f;
        }
        memcpy(dgc + k * G4, g, sizeof(float) * (size_t)G4);
    }
}

/* GRU: dgx gets the gradients of the input-side pre-activations, dgh (and dgc, as in
 * lstm_step_bw) those of W_h h + b_h (they differ in the n part, scaled by r); dh leaves with
 * the direct z h term. */
static void gru_step_bw(gf_ctx *ctx, const rnn_saved *sv, int64_t t, const float *gy, float *dgx,
                        float *dgh, float *dgc, float *dh) {
    const rnn_dims *d = &sv->d;
    const int64_t H = d->H, G3 = 3 * H, na = sv->active[t];
#pragma omp parallel for num_threads(gf_threads_for(ctx, d->N * G3 * 4)) schedule(static)
    for (int64_t k = 0; k < d->N; k++) {
        const int64_t r = row_of(d, t, sv->order[k]);
        float *gxr = dgx + r * G3, *ghr = dgh + r * G3;
        if (k >= na) {
            memset(gxr, 0, sizeof(float) * (size_t)G3);
            memset(ghr, 0, sizeof(float) * (size_t)G3);
            continue;
        }
        const float *ar = sv->act + r * G3, *hp = sv->hprev + r * H, *ghn = sv->aux + r * H;
        const float *gyr = gy + r * H;
        float *dhn = dh + k * H;
        for (int64_t j = 0; j < H; j++) {
            float rr = ar[j], z = ar[H + j], nn = ar[2 * H + j];
            float dhj = dhn[j] + gyr[j];
            float dan = dhj * (1.0f - z) * (1.0f - nn * nn);
            float dz = dhj * (hp[j] - nn), dr = dan * ghn[j];
            gxr[j] = ghr[j] = dr * rr * (1.0f - rr);
            gxr[H + j] = ghr[H + j] = dz * z * (1.0f - z);
            gxr[2 * H + j] = dan;
            ghr[2 * H + j] = dan * rr;
            dhn[j] = dhj * z;
        }
        memcpy(dgc + k * G3, ghr, sizeof(float) * (size_t)G3);
    }
}

/* Column sums of g [rows, width] added to dst, each column summed in row order (the same
 * bits at any thread count); threads take blocks of columns and walk the rows. */
static void add_colsum(gf_ctx *ctx, float *dst, const float *g, int64_t rows, int64_t width) {
    if (!dst) return;
    enum { BLOCK = 64 };
    const int64_t nb = (width + BLOCK - 1) / BLOCK;
#pragma omp parallel for num_threads(gf_threads_for(ctx, rows * width)) schedule(static)
    for (int64_t b = 0; b < nb; b++) {
        const int64_t j0 = b * BLOCK, w = width - j0 < BLOCK ? width - j0 : BLOCK;
        float acc[BLOCK] = {0};
        for (int64_t r = 0; r < rows; r++) {
            const float *gr = g + r * width + j0;
            for (int64_t j = 0; j < w; j++) acc[j] += gr[j];
        }
        for (int64_t j = 0; j < w; j++) dst[j0 + j] += acc[j];
    }
}

/* Adds the slot-ordered state gradient src [N, H] into t's gradient, when t takes one. */
static void add_grad(gf_ctx *ctx, const rnn_saved *sv, gf_tensor *t, const float *src) {
    float *g = gf_grad_of(ctx, t);
    if (g) unsort_rows(sv, src, g, true);
}

/* The products after the time loop: dx, dW_ih, dW_hh and the biases from the gate gradients
 * of all rows (dgx, dgh: the same buffer for an LSTM). */
static void weight_grads(gf_ctx *ctx, gf_node *nd, const float *dgx, const float *dgh) {
    const rnn_saved *sv = nd->saved;
    const rnn_dims *d = &sv->d;
    const int64_t rows = d->T * d->N, GH = d->G * d->H;
    if (rows == 0) return;
    float *gx = gf_grad_of(ctx, nd->in[0]);
    if (gx && d->I > 0) {
        const float *wih = gf_contig_f32(ctx, nd->in[1]);
        if (!wih) return;
        gf_gemm(ctx, false, false, rows, d->I, GH, 1.0f, dgx, GH, wih, d->I, 1.0f, gx, d->I);
    }
    float *gwih = gf_grad_of(ctx, nd->in[1]);
    if (gwih && d->I > 0)
        gf_gemm(ctx, true, false, GH, d->I, rows, 1.0f, dgx, GH, sv->x, d->I, 1.0f, gwih, d->I);
    float *gwhh = gf_grad_of(ctx, nd->in[2]);
    if (gwhh)
        gf_gemm(ctx, true, false, GH, d->H, rows, 1.0f, dgh, GH, sv->hprev, d->H, 1.0f, gwhh,
                d->H);
    add_colsum(ctx, gf_grad_of(ctx, nd->in[3]), dgx, rows, GH);
    add_colsum(ctx, gf_grad_of(ctx, nd->in[4]), dgh, rows, GH);
}

/* Backward through time: the steps in the opposite order of the forward, each adding
 * dg_t W_hh to the running slots' state gradients, then the weight products over all rows
 * at once. */
void gf_bw_rnn(gf_ctx *ctx, gf_node *nd) {
    const rnn_saved *sv = nd->saved;
    const rnn_dims *d = &sv->d;
    const bool lstm = d->kind == RNN_LSTM;
    const int64_t rows = d->T * d->N, GH = d->G * d->H, H = d->H, NH = d->N * H;
    const float *g = gf_f32(nd->out->grad);
    float *dgx = gf_scratch_f32(ctx, rows * GH + 1);
    float *dgh = lstm ? dgx : gf_scratch_f32(ctx, rows * GH + 1);
    float *dgc = gf_scratch_f32(ctx, d->N * GH + 1);
    float *dh = gf_scratch_f32(ctx, NH + 1), *dc = lstm ? gf_scratch_f32(ctx, NH + 1) : NULL;
    const float *whh = gf_contig_f32(ctx, nd->in[2]);
    if (!dgx || !dgh || !dgc || !dh || (lstm && !dc) || !whh) return;
    for (int64_t k = 0; k < d->N; k++) {
        const int64_t n = sv->order[k];
        memcpy(dh + k * H, g + rows * H + n * H, sizeof(float) * (size_t)H);
        if (lstm) memcpy(dc + k * H, g + rows * H + NH + n * H, sizeof(float) * (size_t)H);
    }
    for (int64_t s = d->T - 1; s >= 0; s--) {
        const int64_t t = time_of(d, s), na = sv->active[t];
        if (lstm) lstm_step_bw(ctx, sv, t, g, dgx, dgc, dh, dc);
        else gru_step_bw(ctx, sv, t, g, dgx, dgh, dgc, dh);
        if (na > 0) gf_gemm(ctx, false, false, na, H, GH, 1.0f, dgc, GH, whh, H, 1.0f, dh, H);
    }
    add_grad(ctx, sv, nd->in[5], dh);
    if (lstm) add_grad(ctx, sv, nd->in[6], dc);
    weight_grads(ctx, nd, dgx, dgh);
}
