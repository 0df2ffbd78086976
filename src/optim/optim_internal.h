/* Internal switches of the optimizers, for tests that compare the reference and the fast
 * update kernels. Not installed. */
#ifndef GRAFT_OPTIM_INTERNAL_H
#define GRAFT_OPTIM_INTERNAL_H

#include <stdbool.h>

/* true: every step uses the portable reference kernels; false (default): the fastest the
 * CPU supports. Process-wide; not thread-safe against concurrent steps. */
void gf_optim_use_reference_kernels(bool on);

#endif
