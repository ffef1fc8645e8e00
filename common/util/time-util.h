/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Microsecond time on CLOCK_MONOTONIC, for deadlines that survive clock
 * changes. */
#pragma once

#include <stdint.h>
#include <time.h>

typedef uint64_t usec_t;

#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_SEC  ((usec_t) 1000000ULL)
#define NSEC_PER_USEC ((uint64_t) 1000ULL)

static inline usec_t now_usec(clockid_t clock) {
        struct timespec ts;

        (void) clock_gettime(clock, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* An absolute CLOCK_MONOTONIC deadline "timeout from now"; 0 or infinity
 * mean none. */
static inline usec_t deadline_after(usec_t timeout) {
        usec_t n;

        if (timeout == 0 || timeout == USEC_INFINITY)
                return USEC_INFINITY;
        n = now_usec(CLOCK_MONOTONIC);
        return timeout > USEC_INFINITY - n ? USEC_INFINITY : n + timeout;
}

/* Milliseconds left until the deadline, as poll() wants them: -1 for none,
 * 0 once it has passed, rounded up so that we never wake just before it. */
static inline int deadline_poll_timeout(usec_t deadline) {
        usec_t n, left;

        if (deadline == USEC_INFINITY)
                return -1;
        n = now_usec(CLOCK_MONOTONIC);
        if (n >= deadline)
                return 0;
        left = (deadline - n + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
        return left > INT32_MAX ? INT32_MAX : (int) left;
}
