/*
 * spin.h - a test-and-set spin lock for critical sections of a few dozen
 * instructions: the wait queues of sync/ (list edits, an element copy) and
 * the per-worker timer heaps (sched/timer.c). Nothing that blocks or
 * switches runs under it. A holder may still lose its CPU (a plain
 * thread), so after a bounded spin a waiter yields its thread.
 */
#ifndef WEFT_BASE_SPIN_H
#define WEFT_BASE_SPIN_H

#include <stdatomic.h>
#include <stdint.h>

#include "compiler.h"

void weft__spin_slow(_Atomic uint32_t *l);

/* One step of waiting for another thread's next few instructions: a
 * pause for the first 100 steps (spins counts them), then a yield of the
 * thread, whose holder may have lost its CPU (marked: base/sysmark.h).
 * Also the slot caches' reclaim and the join's wait for DONE. */
void weft__spin_backoff(unsigned spins);

static inline void weft__spin_lock(_Atomic uint32_t *l)
{
    /* Acquire: pairs with weft__spin_unlock's release. */
    if (weft_likely(!atomic_exchange_explicit(l, 1, memory_order_acquire)))
        return;
    weft__spin_slow(l);
}

static inline int weft__spin_trylock(_Atomic uint32_t *l)
{
    return !atomic_load_explicit(l, memory_order_relaxed) &&
           !atomic_exchange_explicit(l, 1, memory_order_acquire);
}

static inline void weft__spin_unlock(_Atomic uint32_t *l)
{
    atomic_store_explicit(l, 0, memory_order_release); /* pairs with the
                                                          lock's acquire */
}

#endif
