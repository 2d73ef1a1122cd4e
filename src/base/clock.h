/*
 * clock.h - monotonic time in nanoseconds.
 */
#ifndef WEFT_BASE_CLOCK_H
#define WEFT_BASE_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in ns (vDSO, no system call on common kernels). Any
 * thread, signal safe. */
uint64_t weft__clock_ns(void);

#endif
