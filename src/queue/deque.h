/*
 * deque.h - a worker's Chase-Lev work-stealing deque of 32-bit task slot
 * indices: the owner pushes and takes at the bottom (LIFO), thieves steal
 * at the top (FIFO). A fixed power-of-two ring: a full push fails and the
 * owner moves half of the ring to the global queue (DESIGN.md §9: a
 * growable buffer needs safe reclamation).
 */
#ifndef WEFT_QUEUE_DEQUE_H
#define WEFT_QUEUE_DEQUE_H

#include <stdatomic.h>
#include <stdint.h>

#include "../base/compiler.h"

#define WEFT_DEQUE_CAP 256u
#define WEFT_DEQUE_EMPTY UINT32_MAX
#define WEFT_DEQUE_ABORT (UINT32_MAX - 1)

typedef struct weft_deque {
    /* Thieves write top; the owner writes bottom: separate lines. */
    weft_aligned(WEFT_CACHELINE) _Atomic int64_t top;
    weft_aligned(WEFT_CACHELINE) _Atomic int64_t bottom;
    weft_aligned(WEFT_CACHELINE) _Atomic uint32_t buf[WEFT_DEQUE_CAP];
} weft_deque;

/* Push x at the bottom; 0, or -1 when full. Owner only. Inline: it is on
 * every spawn. See deque.c for the orders. */
static inline int weft__deque_push(weft_deque *d, uint32_t x)
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire); /* pairs
                           with the thieves' CAS on top: the slot we are
                           about to overwrite was read by its thief */
    if (b - t >= (int64_t)WEFT_DEQUE_CAP)
        return -1;
    atomic_store_explicit(&d->buf[b & (WEFT_DEQUE_CAP - 1)], x,
                          memory_order_relaxed);
    /* Release: pairs with weft__deque_steal's acquire load of bottom. */
    atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    return 0;
}

/* Take from the bottom; WEFT_DEQUE_EMPTY if empty. Owner only. */
uint32_t weft__deque_take(weft_deque *d);

/* Steal from the top; WEFT_DEQUE_EMPTY, WEFT_DEQUE_ABORT (lost a race:
 * retry or move on), or an index. Any thread. */
uint32_t weft__deque_steal(weft_deque *d);

/* Move up to n of the oldest items (from the top) into out[]; returns how
 * many. Owner only (used when a push finds the ring full). */
uint32_t weft__deque_grab(weft_deque *d, uint32_t *out, uint32_t n);

/* Owner's cheap emptiness hint: may say "non-empty" when a thief just
 * emptied it, never "empty" when the owner pushed. Owner only. */
static inline int weft__deque_maybe_nonempty(weft_deque *d)
{
    return atomic_load_explicit(&d->bottom, memory_order_relaxed) >
           atomic_load_explicit(&d->top, memory_order_relaxed);
}

#endif
