/* A classifier on an imported TensorFlow.js trunk: the input adapter (channels and size), the
 * trunk cut where asked, global average pooling and a new Linear head. graft finetune builds it
 * to train, gf_bundle_load to rebuild what finetune saved: both go through this one function, so
 * a saved classifier comes back with the same children and names. */
#include "import/tfjs_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gf_tfjs_classifier_params gf_tfjs_classifier_default_params(void) {
    gf_tfjs_classifier_params p;
    memset(&p, 0, sizeof p);
    p.adapt_channels = true;
    return p;
}

/* ---- the input adapter ------------------------------------------------------------------------
 * Channels as timm's adapt_input_conv would (1 -> C: repeated; C -> 1: the mean) and the height
 * and width resized bilinearly (half-pixel centres, as TensorFlow's resize_bilinear with
 * half_pixel_centers and PyTorch's align_corners=False), as two matrix products. */
typedef struct adapter {
    int64_t c_in, c_out, h, w;
} adapter;

enum { ADAPTER_MAX_CHANNELS = 16 };

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
        gf_tensor *xs[ADAPTER_MAX_CHANNELS];
        for (int64_t i = 0; i < a->c_out && i < ADAPTER_MAX_CHANNELS; i++) xs[i] = x;
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

/* Adds the adapter from the data's samples to the trunk's input under "input" when they
 * differ; note says what it does. */
static gf_status add_adapter(gf_ctx *ctx, gf_module *model, const char *path,
                             const gf_tfjs_info *in, const gf_tfjs_classifier_params *p,
                             char *note, size_t note_cap) {
    char sd[64];
    gf_dims_str(p->data_ndim, p->data_shape, sd, sizeof sd);
    if (in->in_ndim != p->data_ndim || (in->in_ndim == 1 && in->in_shape[0] != p->data_shape[0]))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s takes samples of %d dimensions, the "
                                "data's are %s", path, in->in_ndim, sd);
    if (in->in_ndim != 3) return GF_OK;
    adapter a = {p->data_shape[0], in->in_shape[0], p->input_size ? p->input_size : in->in_shape[1],
                 p->input_size ? p->input_size : in->in_shape[2]};
    if (a.h < 1 || a.w < 1) a.h = a.w = 0; /* the model leaves the size open: keep the data's */
    bool chan = a.c_in != a.c_out, size = a.h && (a.h != p->data_shape[1] || a.w != p->data_shape[2]);
    if (chan && (!p->adapt_channels || (a.c_in != 1 && a.c_out != 1) ||
                 a.c_out > ADAPTER_MAX_CHANNELS))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s reads %lld channels, the data's samples "
                                "are %s (adapting turns 1 channel into C and C into 1)", path,
                                (long long)a.c_out, sd);
    if (!chan && !size) return GF_OK;
    snprintf(note, note_cap, "%lld -> %lld channels%s, %lldx%lld -> %lldx%lld (bilinear)",
             (long long)a.c_in, (long long)a.c_out,
             chan ? (a.c_in == 1 ? " (repeated)" : " (averaged)") : "",
             (long long)p->data_shape[1], (long long)p->data_shape[2],
             (long long)(a.h ? a.h : p->data_shape[1]), (long long)(a.w ? a.w : p->data_shape[2]));
    adapter *u = malloc(sizeof *u);
    if (!u) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", path);
    *u = a;
    gf_module *m = gf_nn_container(ctx, "InputAdapter", adapter_fwd, u, free);
    if (m) gf_module_set_reentrant(m, true);
    return gf_module_add(ctx, model, "input", m);
}

/* The input of the model's last Dense layer (its classifier), or its output. */
static gf_status default_cut(gf_ctx *ctx, const char *path, char *cut, size_t cap) {
    gf_tfjs_info *all = NULL;
    gf_module *m = gf_tfjs_load(ctx, path, NULL, &all);
    if (!m) return gf_ctx_status(ctx);
    const char *in = NULL;
    for (int i = 0; i < all->n_layers; i++)
        if (all->layers[i].kept && strcmp(all->layers[i].class_name, "Dense") == 0)
            in = all->layers[i].inputs;
    snprintf(cut, cap, "%s", in ? in : all->output_name);
    gf_tfjs_info_free(all);
    gf_module_free(m);
    return GF_OK;
}

/* trunk, pool (an image trunk), flatten and head into m. */
static gf_status add_trunk_and_head(gf_ctx *ctx, gf_module *m, gf_module *trunk,
                                    const gf_tfjs_info *in, const char *cut, int n_classes,
                                    gf_rng *rng) {
    const int64_t features = in->out_ndim == 3 || in->out_ndim == 1 ? in->out_shape[0] : -1;
    if (features < 1) {
        gf_module_free(trunk);
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "cut %s: its output %s is not [C, H, W] or "
                                "[F]; cut at another layer", cut,
                                in->out_ndim == 2 ? "[T, F]" : "of unknown size");
    }
    gf_module_add(ctx, m, "trunk", trunk);
    if (in->out_ndim == 3) gf_module_add(ctx, m, "pool", gf_nn_adaptive_avg_pool2d(ctx, 1, 1));
    gf_module_add(ctx, m, "flatten", gf_nn_flatten(ctx, 1, -1));
    gf_module_add(ctx, m, "head", gf_nn_linear(ctx, rng, features, n_classes, true));
    return gf_ctx_status(ctx);
}

gf_module *gf_tfjs_classifier(gf_ctx *ctx, const char *path, const gf_tfjs_classifier_params *p,
                              gf_rng *rng, gf_tfjs_classifier_info *info) {
    if (!path || !p || p->n_classes < 1 || p->data_ndim < 1 || p->data_ndim > GF_MAX_DIMS) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "tfjs classifier: %s (path %s, %d classes, data "
                         "of %d dimensions)", !path || !p ? "NULL argument" : "bad parameters",
                         path ? path : "NULL", p ? p->n_classes : 0, p ? p->data_ndim : 0);
        return NULL;
    }
    gf_tfjs_classifier_info got;
    memset(&got, 0, sizeof got);
    got.cut_default = !p->cut || !p->cut[0];
    if (!got.cut_default) snprintf(got.cut, sizeof got.cut, "%s", p->cut);
    else if (default_cut(ctx, path, got.cut, sizeof got.cut) != GF_OK) return NULL;
    gf_tfjs_options to = gf_tfjs_default_options();
    to.cut = got.cut;
    to.in_h = to.in_w = p->input_size;
    gf_module *trunk = gf_tfjs_load(ctx, path, &to, &got.trunk);
    gf_module *m = trunk ? gf_nn_container(ctx, "TFJSClassifier", NULL, NULL, NULL) : NULL;
    gf_status st = m ? add_adapter(ctx, m, path, got.trunk, p, got.adapter, sizeof got.adapter)
                     : gf_ctx_status(ctx);
    if (st == GF_OK) {
        st = add_trunk_and_head(ctx, m, trunk, got.trunk, got.cut, p->n_classes, rng);
        trunk = NULL; /* m's, or freed */
    }
    if (st != GF_OK) {
        gf_module_free(trunk);
        gf_module_free(m);
        gf_tfjs_info_free(got.trunk);
        return NULL;
    }
    gf_module_train(m, true);
    if (info) *info = got;
    else gf_tfjs_info_free(got.trunk);
    return m;
}
