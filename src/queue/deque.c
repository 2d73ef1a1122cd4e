/*
 * deque.c - Chase-Lev work-stealing deque, after "Correct and Efficient
 * Work-Stealing for Weak Memory Models" (Le, Pop, Cohen, Zappa Nardelli,
 * PPoPP 2013), with a fixed ring.
 *
 * Invariants.
 * - top only grows (CAS by thieves, and by the owner for the last item);
 *   bottom is written only by the owner. Items live in [top, bottom).
 * - top and bottom are signed 64-bit: take on an empty deque briefly makes
 *   bottom = top - 1, which an unsigned type would read as "full".
 * - bottom - top <= CAP, so the owner never overwrites a slot a thief may
 *   still read at index top; a stalled thief may read a slot the owner is
 *   rewriting after the thief's CAS will fail anyway, so slots are atomic
 *   (relaxed) to keep that read defined (DESIGN.md §9).
 *
 * The race. When one item is left, the owner's take and a thief's steal
 * both want it. The owner first publishes bottom - 1, then reads top; the
 * thief reads top, then bottom. Both must not miss each other: this needs
 * store->load order on each side, the paper's seq_cst fences. Here the
 * owner's publication is a seq_cst exchange (one xchg on x86, cheaper than
 * a store + mfence) followed by a seq_cst load of top; the thief's loads
 * are seq_cst. In the single total order of seq_cst operations either the
 * thief sees the lowered bottom (and finds the deque empty or races on
 * top) or the owner sees the thief's top; the last item is then decided
 * by the CAS on top, which exactly one side wins.
 *
 * Publication. push stores bottom with release and steal loads it with
 * acquire: that is the edge that makes the task's fields (written before
 * the push) visible to the thief, and an edge ThreadSanitizer can see
 * (it does not model stand-alone fences).
 */
#include "deque.h"

#define MASK (WEFT_DEQUE_CAP - 1)
#define RLX memory_order_relaxed
#define SC memory_order_seq_cst

uint32_t weft__deque_take(weft_deque *d)
{
    int64_t b = atomic_load_explicit(&d->bottom, RLX) - 1;
    /* seq_cst: orders this store before the load of top (the race). */
    atomic_exchange_explicit(&d->bottom, b, SC);
    int64_t t = atomic_load_explicit(&d->top, SC); /* pairs with the
                                                       thieves' seq_cst loads */
    if (t > b) {
        atomic_store_explicit(&d->bottom, b + 1, RLX);
        return WEFT_DEQUE_EMPTY;
    }
    uint32_t x = atomic_load_explicit(&d->buf[b & MASK], RLX);
    if (t == b) {
        /* The last item: whoever moves top past it owns it. */
        if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, SC,
                                                     RLX))
            x = WEFT_DEQUE_EMPTY;
        atomic_store_explicit(&d->bottom, b + 1, RLX);
    }
    return x;
}

uint32_t weft__deque_steal(weft_deque *d, void **job)
{
    int64_t t = atomic_load_explicit(&d->top, SC);
    /* seq_cst + acquire: pairs with take's exchange (the race) and with
     * push's release store (publication). */
    int64_t b = atomic_load_explicit(&d->bottom, SC);
    if (t >= b)
        return WEFT_DEQUE_EMPTY;
    uint32_t x = atomic_load_explicit(&d->buf[t & MASK], RLX);
    /* Before the CAS, like x: after it the owner may reuse the position. */
    if (weft__deque_is_job(x))
        *job = atomic_load_explicit(&d->jobs[t & MASK], RLX);
    if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, SC, RLX))
        return WEFT_DEQUE_ABORT;
    return x;
}

uint32_t weft__deque_grab(weft_deque *d, uint32_t *out, uint32_t n)
{
    for (;;) {
        int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
        int64_t b = atomic_load_explicit(&d->bottom, RLX);
        int64_t avail = b - t;
        if (avail <= 0)
            return 0;
        uint32_t k = avail < (int64_t)n ? (uint32_t)avail : n;
        for (uint32_t i = 0; i < k; i++)
            out[i] = atomic_load_explicit(&d->buf[(t + i) & MASK], RLX);
        /* Same CAS as a thief's: exactly one side gets each item. */
        if (atomic_compare_exchange_strong_explicit(&d->top, &t, t + k, SC,
                                                    RLX))
            return k;
    }
}
