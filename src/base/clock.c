#include "clock.h"

#include <time.h>

#include "sysmark.h"

/* sysmark.h: the depth of weft's own system calls on this thread. */
_Thread_local _Atomic unsigned weft__in_sys
    __attribute__((tls_model("initial-exec")));

uint64_t weft__clock_ns(void)
{
    struct timespec ts;
    /* The caller is weft code, which may hold a worker's state: while it
     * is in the vDSO, outside weft's text, the handlers must not take the
     * PC for the program's own (sysmark.h). */
    weft__sys_enter();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    weft__sys_leave();
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t weft__clock_ns_user(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t weft__thread_cpu_ns(void)
{
    struct timespec ts;
    /* A system call, made from inside the vDSO on x86-64 (its fallback
     * for clocks it cannot read): marked, as above. */
    weft__sys_enter();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    weft__sys_leave();
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
