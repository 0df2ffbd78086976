/* Case runners for the losses of fixtures/ops_loss.json (fixtures/gen_loss.py). */
#include "harness.h"

const gf_case_op gf_cases_loss[] = {{NULL, NULL, 0}};
