/* The input adapter of a pretrained image model (graft/nn.h): the data's channels fitted
 * to the model's as timm's adapt_input_conv fits weights (1 -> C: repeated; C -> 1: the mean)
 * and the height and width resized bilinearly (half-pixel centres, as TensorFlow's
 * resize_bilinear with half_pixel_centers and PyTorch's align_corners=False), as two matrix
 * products. A TensorFlow.js classifier (gf_tfjs_classifier) and graft probe's ONNX candidates
 * use the same module. */
#include "graft/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "graft/ops.h"

typedef struct adapter {
    int64_t c_in, c_out, h, w;
} adapter;

/* R [out, in] (or its transpose): row i holds the two bilinear weights of output i. */
static gf_tensor *resize_matrix(gf_ctx *ctx, int64_t out, int64_t in, bool transpose) {
    const int64_t shape[2] = {transpose ? in : out, transpose ? out : in};
    gf_tensor *r = gf_zeros(ctx, GF_F32, 2, shape);
    if (!r) return NULL;
    for (int64_t i = 0; i < out; i++) {
        double src = ((double)i + 0.5) * (double)in / (double)out - 0.5;
        if (src < 0) src = 0;
        int64_t i0 = (int64_t)floor(src);
        if (i0 > in - 1) i0 = in - 1;
        int64_t i1 = i0 + 1 < in ? i0 + 1 : in - 1;
        float l = (float)(src - (double)i0);
        gf_f32(r)[transpose ? i0 * out + i : i * in + i0] += 1.0f - l;
        gf_f32(r)[transpose ? i1 * out + i : i * in + i1] += l;
    }
    return r;
}

static gf_tensor *adapter_fwd(gf_ctx *ctx, gf_module *self, gf_tensor *x, void *user) {
    (void)self;
    const adapter *a = user;
    if (!x || x->ndim != 4) return x;
    if (a->c_in == 1 && a->c_out > 1) {
        gf_tensor *xs[GF_NN_ADAPT_MAX_CHANNELS];
        for (int64_t i = 0; i < a->c_out && i < GF_NN_ADAPT_MAX_CHANNELS; i++) xs[i] = x;
        x = gf_concat(ctx, xs, (int)a->c_out, 1);
    } else if (a->c_out == 1 && a->c_in > 1) {
        const int ax = 1;
        x = gf_mean(ctx, x, &ax, 1, true);
    }
    if (x && a->h && (x->shape[2] != a->h || x->shape[3] != a->w))
        x = gf_matmul(ctx, gf_matmul(ctx, resize_matrix(ctx, a->h, x->shape[2], false), x),
                      resize_matrix(ctx, a->w, x->shape[3], true));
    return x;
}

gf_status gf_nn_input_adapter(gf_ctx *ctx, const char *what, const int64_t in[3],
                                    const int64_t want[3], bool adapt_channels,
                                    gf_module **adapter_out, char *note, size_t note_cap) {
    if (!in || !want || !adapter_out)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_nn_input_adapter: NULL argument");
    *adapter_out = NULL;
    if (note && note_cap) note[0] = '\0';
    if (!what) what = "the model";
    char sd[64];
    gf_dims_str(3, in, sd, sizeof sd);
    if (in[0] < 1 || in[1] < 1 || in[2] < 1)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: the data's samples %s are not images",
                                what, sd);
    adapter a = {in[0], want[0] > 0 ? want[0] : in[0], want[1], want[2]};
    if (a.h < 1 || a.w < 1) a.h = a.w = 0; /* the model leaves the size open: keep the data's */
    const bool chan = a.c_in != a.c_out, size = a.h && (a.h != in[1] || a.w != in[2]);
    if (chan && (!adapt_channels || (a.c_in != 1 && a.c_out != 1) ||
                 a.c_out > GF_NN_ADAPT_MAX_CHANNELS))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s reads %lld channels, the data's samples "
                                "are %s (adapting turns 1 channel into C and C into 1)", what,
                                (long long)a.c_out, sd);
    if (!chan && !size) return GF_OK;
    if (note && note_cap)
        snprintf(note, note_cap, "%lld -> %lld channels%s, %lldx%lld -> %lldx%lld (bilinear)",
                 (long long)a.c_in, (long long)a.c_out,
                 chan ? (a.c_in == 1 ? " (repeated)" : " (averaged)") : "", (long long)in[1],
                 (long long)in[2], (long long)(a.h ? a.h : in[1]), (long long)(a.w ? a.w : in[2]));
    adapter *u = malloc(sizeof *u);
    if (!u) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", what);
    *u = a;
    gf_module *m = gf_nn_container(ctx, "InputAdapter", adapter_fwd, u, free);
    if (!m) return gf_ctx_status(ctx);
    gf_module_set_reentrant(m, true);
    *adapter_out = m;
    return GF_OK;
}
