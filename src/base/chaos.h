/*
 * chaos.h - the chaos build (-DWEFT_CHAOS=ON, debug builds only): every
 * atomic operation of the library with an order stronger than relaxed
 * becomes a place where the calling thread may stall, so that rare
 * interleavings of the scheduling, wake-up, summary, deque, mailbox,
 * timer and sync paths show up in ordinary test runs.
 *
 * How. The build force-includes this header into every source file of
 * the library (CMakeLists.txt, WEFT_CHAOS), after <stdatomic.h>, and
 * redefines the explicit atomic operations as the same GCC builtins with
 * a call to weft__chaos(order) before them. Relaxed accesses are left
 * alone: they publish nothing. At a point, with a seeded probability, the
 * thread spins for a random short while or calls sched_yield() (the
 * stall a preempted thread would see). Each thread draws from its own
 * xorshift stream, seeded from the process seed and a thread counter;
 * the seed is printed once ("weft: chaos seed N") and WEFT_CHAOS_SEED=N
 * replays the same streams (thread interleaving still varies: a replay
 * makes the same choices per thread, not the same schedule). The point is
 * async-signal-safe (the SIGURG handler runs atomics).
 *
 * Outside the chaos build this header is never included and nothing of
 * it is compiled.
 */
#ifndef WEFT_BASE_CHAOS_H
#define WEFT_BASE_CHAOS_H

#include <stdatomic.h>

/* A chaos point before an atomic of order o. Any thread, signal safe. */
void weft__chaos(int o);

#define WEFT_CHAOS_(o) weft__chaos((int)(o))

#undef atomic_load_explicit
#define atomic_load_explicit(p, o)                                             \
    __extension__({                                                            \
        WEFT_CHAOS_(o);                                                        \
        __atomic_load_n((p), (o));                                             \
    })
#undef atomic_store_explicit
#define atomic_store_explicit(p, v, o)                                         \
    __extension__({                                                            \
        WEFT_CHAOS_(o);                                                        \
        __atomic_store_n((p), (v), (o));                                       \
    })
#undef atomic_exchange_explicit
#define atomic_exchange_explicit(p, v, o)                                      \
    __extension__({                                                            \
        WEFT_CHAOS_(o);                                                        \
        __atomic_exchange_n((p), (v), (o));                                    \
    })
#undef atomic_compare_exchange_strong_explicit
#define atomic_compare_exchange_strong_explicit(p, e, v, s, f)                 \
    __extension__({                                                            \
        WEFT_CHAOS_(s);                                                        \
        __atomic_compare_exchange_n((p), (e), (v), 0, (s), (f));               \
    })
#undef atomic_compare_exchange_weak_explicit
#define atomic_compare_exchange_weak_explicit(p, e, v, s, f)                   \
    __extension__({                                                            \
        WEFT_CHAOS_(s);                                                        \
        __atomic_compare_exchange_n((p), (e), (v), 1, (s), (f));               \
    })
#undef atomic_fetch_add_explicit
#define atomic_fetch_add_explicit(p, v, o)                                     \
    __extension__({                                                            \
        WEFT_CHAOS_(o);                                                        \
        __atomic_fetch_add((p), (v), (o));                                     \
    })
#undef atomic_fetch_sub_explicit
#define atomic_fetch_sub_explicit(p, v, o)                                     \
    __extension__({                                                            \
        WEFT_CHAOS_(o);                                                        \
        __atomic_fetch_sub((p), (v), (o));                                     \
    })
#undef atomic_fetch_or_explicit
#define atomic_fetch_or_explicit(p, v, o)                                      \
    __extension__({                                                            \
        WEFT_CHAOS_(o);                                                        \
        __atomic_fetch_or((p), (v), (o));                                      \
    })
#undef atomic_fetch_and_explicit
#define atomic_fetch_and_explicit(p, v, o)                                     \
    __extension__({                                                            \
        WEFT_CHAOS_(o);                                                        \
        __atomic_fetch_and((p), (v), (o));                                     \
    })

#endif
