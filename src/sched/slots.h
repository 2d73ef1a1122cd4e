/*
 * slots.h - a worker's cache of task slots: the spawn and reap fast
 * paths' way to the reservation map (mem/summary.c) without an atomic
 * read-modify-write. The mechanism, the reclaim that keeps max_tasks
 * exact, and the proof that the two never overlap are in slots.c.
 */
#ifndef WEFT_SCHED_SLOTS_H
#define WEFT_SCHED_SLOTS_H

#include "../base/bits.h"
#include "../base/membar.h"
#include "runtime.h"

/* The out-of-line halves (slots.c). Refill: inside the owner's section,
 * with its cache empty: reserve a batch, keep all but the one returned
 * (or -EAGAIN: the map is full). Reserve: one slot from the map, emptying
 * every cache first if the map is full; w is the caller's worker or NULL
 * (any runtime). */
int64_t weft__slot_refill(weft_rt *rt, weft_worker *w);
int64_t weft__slot_reserve(weft_rt *rt, weft_worker *w);

/* The owner's section around its cache: enter returns 1 when the cache
 * may be used (no reclaim in progress). Leave always, entered or not. */
static inline int weft__slot_enter(weft_rt *rt, weft_worker *w)
{
    return !weft__membar_store_load(&w->sc_busy, 1, &rt->sc_reclaim);
}
static inline void weft__slot_leave(weft_worker *w)
{
    /* Release: pairs with the reclaimer's acquire load of sc_busy, so
     * the section's cache writes happen-before its exchange. */
    atomic_store_explicit(&w->sc_busy, 0, memory_order_release);
}

/* Reserve a slot for a spawn. w: the calling thread's worker, or NULL;
 * any runtime. Returns the slot or -EAGAIN (max_tasks live). Any
 * thread. */
static inline int64_t weft__slot_take(weft_rt *rt, weft_worker *w)
{
    if (weft_likely(w && w->rt == rt)) {
        if (weft_likely(weft__slot_enter(rt, w))) {
            uint64_t b =
                atomic_load_explicit(&w->sc_bits, memory_order_relaxed);
            int64_t slot;
            if (weft_likely(b)) {
                uint64_t bit = weft__slot_pick(b);
                atomic_store_explicit(&w->sc_bits, b & ~bit,
                                      memory_order_relaxed);
                slot = (int64_t)atomic_load_explicit(&w->sc_leaf,
                                                     memory_order_relaxed) *
                           WEFT_LEAF_SLOTS +
                       weft_ctz64(bit);
            } else {
                slot = weft__slot_refill(rt, w);
            }
            weft__slot_leave(w);
            if (weft_likely(slot >= 0))
                return slot;
        } else {
            weft__slot_leave(w);
        }
    }
    return weft__slot_reserve(rt, w);
}

/* Free a reaped slot (its generation already moved on). w: the calling
 * thread's worker, or NULL; any runtime. Any thread. */
static inline void weft__slot_give(weft_rt *rt, weft_worker *w, uint32_t slot)
{
    uint32_t l = slot / WEFT_LEAF_SLOTS;
    /* The pre-check outside the section reads sc_leaf, which only the
     * owner writes, and sc_bits, which a reclaimer may only clear: at
     * worst it sends a slot to the map that the cache could have taken.
     * It keeps reaps of other leaves (a burst of spawns) at the map's
     * cost. */
    if (weft_likely(w && w->rt == rt) &&
        (l == atomic_load_explicit(&w->sc_leaf, memory_order_relaxed) ||
         !atomic_load_explicit(&w->sc_bits, memory_order_relaxed))) {
        if (weft_likely(weft__slot_enter(rt, w))) {
            uint64_t b =
                atomic_load_explicit(&w->sc_bits, memory_order_relaxed);
            /* Into the cache when of its leaf, or when it is empty (the
             * slot's leaf becomes the cache's; isolation identities keep
             * no cache). */
            if (b ? l == atomic_load_explicit(&w->sc_leaf, memory_order_relaxed)
                  : !w->iso_of) {
                if (!b)
                    atomic_store_explicit(&w->sc_leaf, l, memory_order_relaxed);
                atomic_store_explicit(
                    &w->sc_bits, b | UINT64_C(1) << (slot % WEFT_LEAF_SLOTS),
                    memory_order_relaxed);
                weft__slot_leave(w);
                return;
            }
        }
        weft__slot_leave(w);
    }
    weft__summary_release(&rt->sum, slot);
}

/* The slots of leaf l held in workers' caches (a snapshot; tests check
 * that every reserved slot is live, cached or permanent). Any thread. */
uint64_t weft__slots_cached(weft_rt *rt, uint32_t l);

#endif
