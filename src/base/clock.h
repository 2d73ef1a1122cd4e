/*
 * clock.h - monotonic time in nanoseconds.
 */
#ifndef WEFT_BASE_CLOCK_H
#define WEFT_BASE_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in ns (vDSO, no system call on common kernels), read
 * under the system-call mark (sysmark.h). Any thread, signal safe. */
uint64_t weft__clock_ns(void);

/* The same, for weft_now_ns: the caller holds no runtime state, so a
 * preemption while it is in the vDSO is safe. Any thread. */
uint64_t weft__clock_ns_user(void);

/* CPU time of the calling thread in ns (CLOCK_THREAD_CPUTIME_ID: a system
 * call on most kernels, microseconds under some hypervisors). Any
 * thread. */
uint64_t weft__thread_cpu_ns(void);

#endif
