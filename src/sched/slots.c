/*
 * slots.c - a worker's cache of task slots, and the reclaim that keeps
 * max_tasks exact.
 *
 * Problem. Every spawn reserved its slot with a CAS on the reservation
 * map (mem/summary.c) and every reap released it with a fetch_and: two
 * locked instructions a task, each ~20 cycles on x86, on the path that
 * fork-join runs once a node (fib: 490 instructions and four locked
 * instructions a node; rayon's join has one fence). oneTBB and rayon
 * allocate from per-thread caches for the same reason.
 *
 * Mechanism. A worker keeps slots it reserved in the map and has not
 * handed out: the bits sc_bits of one leaf sc_leaf. A spawn on the worker
 * takes the lowest one with a relaxed load and store; when the cache is
 * empty it reserves a batch of SC_BATCH slots of its home leaf with one
 * CAS (weft__summary_reserve_batch). A reap on a worker of the task's
 * runtime gives the slot back to that worker's cache when it is of the
 * cache's leaf, or when the cache is empty (the slot's leaf becomes the
 * cache's); else to the map. The map stays the allocator of record: a
 * cached slot is reserved there, so nobody else hands it out, and its
 * TCB says FREE with its generation moved on (reap does that first), so
 * stale handles stay stale. Isolation identities (isolate.c) keep no
 * cache: they come and go, and the reclaim below looks only at workers.
 * A cache holds at most one leaf's 63 slots.
 *
 * Reclaim. max_tasks stays exact: a spawn fails with -EAGAIN only when
 * max_tasks tasks are live, never because free slots sit in some
 * worker's cache. A reserver that finds the map full (rare: the runtime
 * is at its limit) empties every worker's cache into the map and tries
 * again. The owner uses its cache with plain (relaxed) loads and stores,
 * so the reclaimer must never take a cache while its owner is in the
 * middle of a take or a give. An asymmetric Dekker pair (base/membar.h)
 * keeps them apart:
 *
 *   owner:     sc_busy = 1; compiler barrier; r = sc_reclaim;
 *              if r == 0: use the cache; sc_busy = 0 (release)
 *   reclaimer: sc_reclaim += 1; heavy barrier; for each worker:
 *              wait for sc_busy == 0 (acquire), exchange sc_bits with 0,
 *              release those slots to the map; reserve; sc_reclaim -= 1.
 *
 * Claim: no owner uses its cache between a reclaimer's exchange of it and
 * that reclaimer's decrement, and no exchange falls inside an owner's
 * use. After the heavy barrier each owner either has its store of
 * sc_busy = 1 visible to the reclaimer, which then waits for the release
 * store of 0 that ends its use, or has not yet passed its compiler
 * barrier, so its load of sc_reclaim sees the increment and it leaves
 * the cache alone (takes from and gives to the map) until the count is
 * back to 0. The acquire load of sc_busy == 0 pairs with the owner's
 * release store, so the owner's last writes of sc_bits and sc_leaf
 * happen-before the exchange, and the map's release/acquire carries them
 * on to the slot's next reserver.
 *
 * Exactness: while sc_reclaim is non-zero no cache grows, and every
 * reclaimer drains every worker after it raised the count. Reclaimers
 * take turns (rt->sc_lock, held from the drain to the second try): a
 * slot a reclaimer has exchanged out of a cache is in nobody's cache and
 * not yet in the map until its release_batch, and a second reclaimer
 * that drained and tried in that window answered "full" with those
 * slots free (stress.slots_reclaim_races_spawns_and_reaps in the chaos
 * build, 3 runs in 1,000: 239-241 of the 244 spawns, the map full and
 * 7-9 TCBs FREE). With the turns, when a reclaimer's second try finds
 * the map full, every slot not live is in the map and reserved there by
 * someone, i.e. max_tasks are live or being spawned, the same answer a
 * single shared map gave. No deadlock: the lock's holder waits only for
 * owners' sections, and no section takes the lock (reserve_exact runs
 * after weft__slot_leave). The cost is on the rare side: a membarrier
 * system call (a few microseconds) per spawn that finds the map full,
 * only when the runtime is within 63 x workers slots of max_tasks.
 *
 * Measured (docs/decisions/0013-fork-join.md): fib 27.3 -> 17.9 ms at 2
 * workers, 54 -> 35.5 ms at 1; 490 -> 465 instructions a fib node.
 */
#include "slots.h"

#include <errno.h>

#include "../base/spin.h"

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define ACQ_REL memory_order_acq_rel
#define SC memory_order_seq_cst

/* Slots a refill reserves at once: enough that fork-join pays one CAS per
 * eight spawns, few enough that small runtimes (max_tasks in the tens)
 * are not emptied into one cache. */
#define SC_BATCH 8

/* Empty every worker's cache into the map. The caller has raised
 * rt->sc_reclaim and lowers it when done. */
static void reclaim(weft_rt *rt)
{
    atomic_fetch_add_explicit(&rt->sc_reclaims, 1, RLX);
    weft__membar_heavy();
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft_worker *v = &rt->workers[i];
        /* Acquire: pairs with weft__slot_leave's release store. */
        for (unsigned spins = 0; atomic_load_explicit(&v->sc_busy, ACQ);
             spins++)
            weft__spin_backoff(spins);
        uint64_t b = atomic_exchange_explicit(&v->sc_bits, 0, ACQ_REL);
        if (b)
            weft__summary_release_batch(
                &rt->sum, atomic_load_explicit(&v->sc_leaf, RLX), b);
    }
}

/* Reserve one slot from the map; when it is full, reclaim the caches and
 * try once more. */
static int64_t reserve_exact(weft_rt *rt, uint32_t *hint)
{
    int64_t slot = weft__summary_reserve(&rt->sum, hint);
    if (weft_likely(slot >= 0))
        return slot;
    /* Seq_cst: the store half of the Dekker pair (membar.h: TSan builds
     * rely on it; elsewhere the heavy barrier orders it). */
    atomic_fetch_add_explicit(&rt->sc_reclaim, 1, SC);
    weft__spin_lock(&rt->sc_lock); /* after an earlier reclaimer's release */
    reclaim(rt);
    slot = weft__summary_reserve(&rt->sum, hint);
    weft__spin_unlock(&rt->sc_lock);
    atomic_fetch_sub_explicit(&rt->sc_reclaim, 1, SC);
    return slot;
}

int64_t weft__slot_refill(weft_rt *rt, weft_worker *w)
{
    if (w->iso_of)
        return -EAGAIN;
    uint64_t b = weft__summary_reserve_batch(&rt->sum, &w->resv_hint, SC_BATCH);
    if (!b)
        return -EAGAIN;
    uint64_t first = weft__slot_pick(b);
    atomic_store_explicit(&w->sc_leaf, w->resv_hint, RLX);
    atomic_store_explicit(&w->sc_bits, b & ~first, RLX);
    return (int64_t)w->resv_hint * WEFT_LEAF_SLOTS + weft_ctz64(first);
}

int64_t weft__slot_reserve(weft_rt *rt, weft_worker *w)
{
    if (w && w->rt == rt)
        return reserve_exact(rt, &w->resv_hint);
    uint32_t hint = atomic_load_explicit(&rt->ext_hint, RLX);
    int64_t slot = reserve_exact(rt, &hint);
    atomic_store_explicit(&rt->ext_hint, hint, RLX);
    return slot;
}

uint64_t weft__slots_cached(weft_rt *rt, uint32_t l)
{
    uint64_t acc = 0;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft_worker *v = &rt->workers[i];
        uint64_t b = atomic_load_explicit(&v->sc_bits, ACQ);
        if (b && atomic_load_explicit(&v->sc_leaf, RLX) == l)
            acc |= b;
    }
    return acc;
}
