/* Shared helpers of the transfer primitives (freeze.c, plan.c, delta.c, features.c): a pre-order
 * walk over a module tree with dotted paths, and BatchNorm detection. Internal to libgraft. */
#ifndef GRAFT_TRANSFER_INTERNAL_H
#define GRAFT_TRANSFER_INTERNAL_H

#include "graft/transfer.h"

enum { GF_TRANSFER_PATH_MAX = 512 };

/* Called for m and each descendant in state_dict order with its dotted path ("" for the root;
 * borrowed, valid during the call). Returning false stops the walk. */
typedef bool (*gf_transfer_visit_fn)(gf_module *m, const char *path, void *user);
void gf_transfer_walk(gf_module *m, gf_transfer_visit_fn fn, void *user);

/* BatchNorm1d or BatchNorm2d. */
bool gf_transfer_is_bn(const gf_module *m);

#endif
