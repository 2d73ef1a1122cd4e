/*
 * futex.c - the raw futex calls. FUTEX_PRIVATE_FLAG: a runtime's words are
 * never shared between processes. Deadlines are absolute CLOCK_MONOTONIC
 * (FUTEX_WAIT_BITSET), so a wait retried after EINTR does not stretch.
 */
#include "futex.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sysmark.h"

int weft__futex_wait(_Atomic uint32_t *word, uint32_t expect,
                     uint64_t deadline_ns)
{
    struct timespec ts, *tsp = NULL;
    if (deadline_ns) {
        ts.tv_sec = (time_t)(deadline_ns / 1000000000u);
        ts.tv_nsec = (long)(deadline_ns % 1000000000u);
        tsp = &ts;
    }
    for (;;) {
        weft__sys_enter(); /* weft's own call (sysmark.h) */
        long r = syscall(SYS_futex, (uint32_t *)word,
                         FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expect, tsp,
                         NULL, FUTEX_BITSET_MATCH_ANY);
        weft__sys_leave();
        if (r == 0 || errno == EAGAIN)
            return 0;
        if (errno == ETIMEDOUT)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return 0; /* treat as spurious; the caller re-checks */
    }
}

void weft__futex_wake(_Atomic uint32_t *word, int n)
{
    weft__sys_enter(); /* from a task's wake-up path too (sysmark.h) */
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n,
            NULL, NULL, 0);
    weft__sys_leave();
}
