/*
 * What the C test programs share: CHECK macros counting failures, a sleep, and the summary.
 */
#ifndef VIGILO_TEST_CHECK_H
#define VIGILO_TEST_CHECK_H

#include <stdio.h>
#include <time.h>

#include "vigilo.h"

static int failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n",       \
                    __FILE__, __LINE__, #cond, vigilo_last_error());             \
            failures++;                                                          \
        }                                                                        \
    } while (0)

#define CHECK_STATUS(call, expected) CHECK((call) == (expected))
#define OK(call) CHECK_STATUS(call, VIGILO_STATUS_OK)

static inline void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* The program's exit status, with a line saying how it went. */
static int summary(const char *what) {
    if (failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", what, failures);
        return 1;
    }
    printf("%s: all checks passed\n", what);
    return 0;
}

#endif
