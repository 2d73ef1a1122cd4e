/*
 * spin.c - the spin lock's contended path (spin.h).
 */
#include "spin.h"

#include <sched.h>

#include "atomic.h"
#include "sysmark.h"

void weft__spin_slow(_Atomic uint32_t *l)
{
    for (unsigned spins = 0;; spins++) {
        /* Acquire: pairs with weft__spin_unlock's release. */
        if (!atomic_load_explicit(l, memory_order_relaxed) &&
            !atomic_exchange_explicit(l, 1, memory_order_acquire))
            return;
        weft__spin_backoff(spins);
    }
}

void weft__spin_backoff(unsigned spins)
{
    if (spins < 100) {
        weft_cpu_relax();
    } else {
        weft__sys_enter();
        sched_yield();
        weft__sys_leave();
    }
}
