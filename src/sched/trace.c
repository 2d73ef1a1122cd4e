/*
 * trace.c - the execution trace's rings (trace.h): made at the first
 * start, handed to the workers by a pointer each, taken away at stop,
 * unmapped when the runtime is destroyed; and the switch hook, which is
 * out of line so that the switch path keeps only its test.
 *
 * Rings stay mapped from the first start to the destroy, so a writer that
 * loaded a ring pointer just before a stop, or a dump reading while
 * workers write, never touches unmapped memory. A restart resets the
 * rings' counters; an event a late writer of the previous trace finishes
 * meanwhile lands with its old time base and is sorted among the new
 * ones (at most one per worker, at the very start).
 */
#include "trace.h"

#include <errno.h>
#include <sys/mman.h>

#include "../base/error.h"
#include "../mem/arena.h"
#include "runq.h"
#include "switch.h"

static size_t ring_size(const weft_tring *r)
{
    return sizeof(weft_tring) + (size_t)(r->mask + 1) * sizeof(weft_tev);
}

int weft__trace_start(weft_rt *rt, size_t ring_bytes, int wrap)
{
    if (atomic_load_explicit(&rt->trace_on, RLX))
        return -EALREADY;
    uint64_t cap = 64;
    while (cap * 2 * sizeof(weft_tev) <= ring_bytes &&
           cap < (UINT64_C(1) << 32))
        cap *= 2;
    uint32_t n = rt->nworkers + 1;
    if (rt->trace_rings && rt->trace_rings[0]->mask + 1 != cap)
        weft__trace_free(rt); /* another size: made again */
    if (!rt->trace_rings) {
        weft_tring **rings = weft__arena_map(n * sizeof *rings);
        if (!rings)
            return weft__error_set(-ENOMEM, "trace: ring table");
        for (uint32_t i = 0; i < n; i++) {
            size_t sz = sizeof(weft_tring) + (size_t)cap * sizeof(weft_tev);
            rings[i] = weft__arena_map(sz);
            if (!rings[i]) {
                while (i--)
                    weft__arena_unmap(rings[i], sz);
                weft__arena_unmap(rings, n * sizeof *rings);
                return weft__error_set(-ENOMEM, "trace: %u rings of %zu bytes",
                                       n, sz);
            }
            rings[i]->mask = cap - 1;
        }
        rt->trace_rings = rings;
    }
    for (uint32_t i = 0; i < n; i++) {
        weft_tring *r = rt->trace_rings[i];
        /* After a restart, the slots written before read as never
         * written (ts 0); a fresh mapping is zero already, and touching
         * it all would fault in every page (16 MiB a worker) up front. */
        uint64_t used = atomic_load_explicit(&r->next, RLX);
        if (used > r->mask)
            used = r->mask + 1;
        for (uint64_t k = 0; k < used; k++)
            atomic_store_explicit(&r->ev[k].ts, 0, RLX);
        atomic_store_explicit(&r->next, 0, RLX);
        atomic_store_explicit(&r->dropped, 0, RLX);
        r->wrap = wrap != 0;
        r->track = i < rt->nworkers ? i : WEFT_TRACK_OTHER;
    }
    uint64_t t0 = weft__clock_ns();
    for (uint32_t i = 0; i < n; i++)
        rt->trace_rings[i]->t0 = t0;
    rt->trace_t0 = t0;
    atomic_store_explicit(&rt->trace_wrap, wrap != 0, RLX);
    /* Release (each): the rings' fields are set before a writer that
     * loads the pointer (acquire, weft__trace_ring and poll_turn) uses
     * them. */
    weft_tring *other = rt->trace_rings[rt->nworkers];
    atomic_store_explicit(&rt->trace_other, other, memory_order_release);
    for (uint32_t i = 0; i < rt->nthr; i++)
        atomic_store_explicit(&rt->iso[i].trace, other, memory_order_release);
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        atomic_store_explicit(&rt->workers[i].trace, rt->trace_rings[i],
                              memory_order_release);
        atomic_store_explicit(&rt->workers[i].tracing, 1, RLX);
    }
    for (uint32_t i = 0; i < rt->nthr; i++)
        atomic_store_explicit(&rt->iso[i].tracing, 1, RLX);
    atomic_store_explicit(&rt->trace_on, 1, RLX);
    return 0;
}

int weft__trace_stop(weft_rt *rt)
{
    if (!atomic_load_explicit(&rt->trace_on, RLX))
        return -ENOENT;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        atomic_store_explicit(&rt->workers[i].tracing, 0, RLX);
        atomic_store_explicit(&rt->workers[i].trace, NULL, RLX);
    }
    /* The destroy stops a trace after the threads are gone (rt.c). */
    for (uint32_t i = 0; rt->iso && i < rt->nthr; i++) {
        atomic_store_explicit(&rt->iso[i].tracing, 0, RLX);
        atomic_store_explicit(&rt->iso[i].trace, NULL, RLX);
    }
    atomic_store_explicit(&rt->trace_other, NULL, RLX);
    atomic_store_explicit(&rt->trace_on, 0, RLX);
    return 0;
}

void weft__trace_free(weft_rt *rt)
{
    if (!rt->trace_rings)
        return;
    uint32_t n = rt->nworkers + 1;
    for (uint32_t i = 0; i < n; i++)
        weft__arena_unmap(rt->trace_rings[i], ring_size(rt->trace_rings[i]));
    weft__arena_unmap(rt->trace_rings, n * sizeof *rt->trace_rings);
    rt->trace_rings = NULL;
}

weft_tring *weft__trace_ring(weft_rt *rt, weft_worker *w)
{
    /* Acquire: pairs with weft__trace_start's release stores. */
    if (w && w->rt == rt)
        return atomic_load_explicit(&w->trace, memory_order_acquire);
    return atomic_load_explicit(&rt->trace_other, memory_order_acquire);
}

/* The switch hook (poll_turn, worker.c): w now runs to_slot1 - 1 (0: its
 * scheduler); the poll of `from` ended by `why` (MSG_*). */
weft_noinline void weft__trace_run(weft_worker *w, weft_tcb *from,
                                   uint32_t to_slot1, uintptr_t why)
{
    weft_rt *rt = w->rt;
    /* Acquire: pairs with weft__trace_start's release store. */
    weft_tring *r = atomic_load_explicit(&w->trace, memory_order_acquire);
    if (!r)
        return; /* stopped meanwhile */
    /* Off weft_yield's fast path while tracing, whose switches would not
     * be recorded (worker.c, poll_turn); w is the caller's own worker. */
    w->top1 = NULL;
    unsigned wk = 0;
    if (from && why == MSG_PARK)
        wk = atomic_load_explicit(&rt->cold[slot_of(rt, from)].wait_kind, RLX);
    uint64_t gen = 0, nw[2] = {0, 0};
    uint32_t slot = UINT32_MAX;
    if (to_slot1) {
        slot = to_slot1 - 1;
        uint64_t s = atomic_load_explicit(&rt->hot[slot].state, RLX);
        gen = weft__hgen(rt, s);
        weft__name_words(&rt->names[slot], s, nw);
    }
    weft__trace_put(r, WEFT_TEV_RUN, slot, from ? (unsigned)why : 0xff, wk, gen,
                    nw[0], nw[1]);
}

/* Any other event, from a hook that knows its caller's worker. */
weft_noinline void weft__trace_event(weft_rt *rt, weft_worker *w, unsigned kind,
                                     uint32_t slot, unsigned x, unsigned y,
                                     uint64_t a, uint64_t b)
{
    weft_tring *r = weft__trace_ring(rt, w);
    if (r)
        weft__trace_put(r, kind, slot, x, y, a, b, 0);
}
