/* Op test harness: runs the cases of a PyTorch fixture file (tests/fixtures/ops_*.json) and,
 * for every case, compares forward outputs and input gradients with PyTorch's and checks the
 * analytic gradients against central finite differences.
 *
 * To add a case: write it in a tests/fixtures/gen_*.py generator (see fixturelib.py), rerun
 * the generator with /usr/bin/python3, and give the op name a runner in a cases_*.c table. */
#ifndef GRAFT_TEST_HARNESS_H
#define GRAFT_TEST_HARNESS_H

#include <cjson/cJSON.h>

#include "graft/graft.h"

/* Runs the op on the fixture's inputs (in fixture order; float inputs are persistent
 * tensors with requires_grad as the fixture says, int inputs are int64). Writes up to
 * max_out outputs and returns how many, or -1 with the ctx error set. The harness reseeds
 * the context RNG before each call, so random ops repeat exactly. */
typedef int (*gf_case_run)(gf_ctx *ctx, const cJSON *params, gf_tensor **in, int n_in,
                           gf_tensor **out, int max_out);

typedef struct gf_case_op {
    const char *name;  /* the fixture's "op" */
    gf_case_run run;
    double gc_tol;     /* finite-difference tolerance; 0: default 2e-2 */
} gf_case_op;

/* One table per module, each ending with {NULL, NULL, 0}. */
extern const gf_case_op gf_cases_core[];
extern const gf_case_op gf_cases_act[];
extern const gf_case_op gf_cases_conv[];
extern const gf_case_op gf_cases_norm[];
extern const gf_case_op gf_cases_loss[];
extern const gf_case_op gf_cases_attention[];

/* Parameter getters: the default when the key is absent. */
int case_int(const cJSON *params, const char *key, int dflt);
double case_num(const cJSON *params, const char *key, double dflt);
bool case_bool(const cJSON *params, const char *key, bool dflt);
const char *case_str(const cJSON *params, const char *key, const char *dflt);
/* Fills dst from a JSON number or array (a single number is repeated max times); returns the
 * count written, or 0 when absent (dst then keeps its contents). */
int case_ints(const cJSON *params, const char *key, int *dst, int max);
int case_i64s(const cJSON *params, const char *key, int64_t *dst, int max);

/* Runs every case of one fixture file; prints failures; returns the number of failures
 * (or -1 when the file cannot be read). *n_cases receives the case count. */
int harness_run_file(const char *path, int *n_cases);

#endif
