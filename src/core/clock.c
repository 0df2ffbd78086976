/* The one monotonic clock of the library (gf_now_seconds). */
#define _POSIX_C_SOURCE 200809L
#include "graft/core.h"

#include <time.h>

double gf_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
