/*
 * clock.h - monotonic time in nanoseconds.
 */
#ifndef WEFT_BASE_CLOCK_H
#define WEFT_BASE_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in ns (vDSO, no system call on common kernels). Any
 * thread, signal safe. */
uint64_t weft__clock_ns(void);

/* CPU time of the calling thread in ns (CLOCK_THREAD_CPUTIME_ID: a system
 * call on most kernels, microseconds under some hypervisors). Any
 * thread. */
uint64_t weft__thread_cpu_ns(void);

#endif
