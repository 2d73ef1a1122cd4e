/*
 * time.c - the clock and sleeps. A task sleeps in a wait that nobody
 * claims, which ends by its deadline (a timer of its worker, wait.c) or by
 * its runtime's cancellation; a plain thread sleeps in the kernel on the
 * same clock (CLOCK_MONOTONIC, as weft_now_ns).
 */
#include <errno.h>
#include <time.h>

#include "../base/clock.h"
#include "wait.h"

uint64_t weft_now_ns(void)
{
    return weft__clock_ns_user();
}

int weft_sleep_until(uint64_t deadline)
{
    weft_caller me;
    if (weft__caller(&me)) {
        /* A wait nobody claims: it ends by its deadline, or by the
         * runtime's cancellation. */
        weft_wait wt;
        int r = weft__wait_init(&wt, 0, WEFT_WK_SLEEP, NULL);
        if (!r)
            r = weft__wait_block(&wt, deadline);
        return weft__wait_fini(&wt, r == -ECANCELED ? r : 0);
    }
    struct timespec ts = {(time_t)(deadline / 1000000000u),
                          (long)(deadline % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    return 0;
}

int weft_sleep_ns(uint64_t ns)
{
    uint64_t now = weft__clock_ns();
    return weft_sleep_until(now + ns < now ? UINT64_MAX : now + ns);
}
