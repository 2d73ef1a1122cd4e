/*
 * futex.h - wait and wake on a 32-bit word, for plain threads and idle
 * workers. Tasks never call these: they park (sched/task.c).
 */
#ifndef WEFT_BASE_FUTEX_H
#define WEFT_BASE_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

/* Sleep while *word == expect, until woken or until the monotonic deadline
 * (0 = none). Returns 0 (woken, or *word had changed, or a spurious wake:
 * callers re-check their condition) or -ETIMEDOUT. EINTR is retried
 * internally, so signals never surface. Any thread; blocks it. */
int weft__futex_wait(_Atomic uint32_t *word, uint32_t expect,
                     uint64_t deadline_ns);

/* Wake up to n threads sleeping on word. Any thread, signal safe. */
void weft__futex_wake(_Atomic uint32_t *word, int n);

#endif
