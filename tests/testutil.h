/* Minimal checks for unit tests: each CHECK counts a pass or prints a failure with its
 * location; test_finish prints "N passed, M failed" and gives the exit status. */
#ifndef GRAFT_TESTUTIL_H
#define GRAFT_TESTUTIL_H

#include <math.h>
#include <stdio.h>

extern int gf_test_passed, gf_test_failed;

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (cond) gf_test_passed++;                                                         \
        else {                                                                              \
            gf_test_failed++;                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);        \
        }                                                                                   \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                               \
    do {                                                                                    \
        double a_ = (double)(a), b_ = (double)(b);                                          \
        if (fabs(a_ - b_) <= (tol)) gf_test_passed++;                                       \
        else {                                                                              \
            gf_test_failed++;                                                               \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %s = %.9g (tol %g)\n", __FILE__,    \
                    __LINE__, #a, a_, #b, b_, (double)(tol));                               \
        }                                                                                   \
    } while (0)

/* Prints the summary line and returns the process exit status. */
int test_finish(const char *name);

#endif
