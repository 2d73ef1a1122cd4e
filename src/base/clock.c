#include "clock.h"

#include <time.h>

/* weft__clock_ns's caller is weft code, which may hold a worker's state:
 * while it reads the clock (in the vDSO, outside weft's text), the
 * preemption handler must not take the PC for the program's own
 * (sched/preempt.c). initial-exec: read from a signal handler. */
_Thread_local int weft__in_clock __attribute__((tls_model("initial-exec")));

uint64_t weft__clock_ns(void)
{
    struct timespec ts;
    weft__in_clock = 1;
    __asm__ __volatile__("" ::: "memory");
    clock_gettime(CLOCK_MONOTONIC, &ts);
    __asm__ __volatile__("" ::: "memory");
    weft__in_clock = 0;
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
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
