/* What code outside src/nn may read of a module beyond the public API (graft/nn.h): the LoRA
 * layers and the teacher cache of src/transfer need a module's requested mode, its forward
 * function and a Linear's or Conv2d's settings. The module's layout itself stays private to
 * src/nn (nn_internal.h). Not installed. */
#ifndef GRAFT_NN_ACCESS_H
#define GRAFT_NN_ACCESS_H

#include "graft/nn.h"

/* The mode last set by gf_module_train on m or an ancestor (true for a new module), whatever
 * gf_module_pin_eval says; gf_module_is_training gives the effective mode. */
bool gf_module_train_requested(const gf_module *m);

/* The forward function m was made with: modules of one kind made elsewhere (LoRA layers) are
 * recognised by it. */
gf_module_forward_fn gf_module_forward_of(const gf_module *m);

/* The sizes, settings and tensors of a Linear or Conv2d layer made by src/nn; for any other
 * module the values its layer settings hold (zeroes and NULL tensors for containers). */
typedef struct gf_nn_affine {
    gf_tensor *weight, *bias; /* borrowed from the layer; bias NULL when it has none */
    int64_t in, out;          /* in/out features (Linear) or channels (Conv2d) */
    int kh, kw;               /* Conv2d kernel size */
    gf_conv_params conv;      /* Conv2d stride, padding, dilation, groups */
} gf_nn_affine;

gf_nn_affine gf_nn_affine_of(const gf_module *m);

#endif
