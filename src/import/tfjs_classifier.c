/* A classifier on an imported TensorFlow.js trunk: the input adapter (channels and size), the
 * trunk cut where asked, global average pooling and a new Linear head. graft finetune builds it
 * to train, gf_bundle_load to rebuild what finetune saved: both go through this one function, so
 * a saved classifier comes back with the same children and names. */
#include "import/tfjs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gf_tfjs_classifier_params gf_tfjs_classifier_default_params(void) {
    gf_tfjs_classifier_params p;
    memset(&p, 0, sizeof p);
    p.adapt_channels = true;
    return p;
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
    /* the adapter graft probe also puts before an ONNX model (graft/transfer.h) */
    const int64_t want[3] = {in->in_shape[0], p->input_size ? p->input_size : in->in_shape[1],
                             p->input_size ? p->input_size : in->in_shape[2]};
    gf_module *a = NULL;
    gf_status st = gf_nn_input_adapter(ctx, path, p->data_shape, want, p->adapt_channels, &a,
                                             note, note_cap);
    if (st != GF_OK || !a) return st;
    return gf_module_add(ctx, model, "input", a);
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
