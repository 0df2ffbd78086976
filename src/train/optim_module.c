/* gf_train_optim_new: an optimizer over a module's parameters. The optimizer layer knows only
 * named parameters (gf_optim_new_named); this is where a module becomes such a list. */
#include "graft/train.h"

gf_optim *gf_train_optim_new(gf_ctx *ctx, gf_module *m, const gf_optim_params *defaults,
                              const gf_group_spec *specs, int n_specs) {
    /* the module-level checks first, in the order callers have always seen them */
    gf_optim_params def = defaults ? *defaults : gf_optim_default_params(GF_OPTIM_ADAM);
    if (gf_optim_check_params(ctx, &def) != GF_OK) return NULL;
    if (!m) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: NULL module");
        return NULL;
    }
    if (n_specs < 0 || (n_specs > 0 && !specs)) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: bad group spec list (n = %d)", n_specs);
        return NULL;
    }
    gf_named_tensors *names = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    if (!names) return NULL;
    gf_optim *o = NULL;
    if (names->n == 0)
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "optim: module %s has no parameters",
                         gf_module_type(m));
    else
        o = gf_optim_new_named(ctx, &def, names, specs, n_specs);
    gf_named_tensors_free(names);
    return o;
}
