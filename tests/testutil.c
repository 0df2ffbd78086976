#include "testutil.h"

int gf_test_passed = 0, gf_test_failed = 0;

int test_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, gf_test_passed, gf_test_failed);
    return gf_test_failed == 0 && gf_test_passed > 0 ? 0 : 1;
}
