/*
 * bands.c - fairness between priority bands and the banded run order.
 *
 * Bands (priorities, DESIGN.md §6). Priority 0..15 lives in the state
 * word (bits 8-11); band = priority / 4 (critical, high, normal, low).
 * The run order's structures (LIFO slot, deque, yield queue; worker.c)
 * are the normal
 * band's; each other band has its own Chase-Lev deque (bdq, stealable)
 * and its own yield queue (byq, owner-only, through the same rt->link),
 * and w->xbands has bit b set while band b's queues may hold tasks. The
 * LIFO slot takes normal-band tasks only; every other way in (spawn,
 * unpark, the summary tree, the injection queue, mailboxes, a park that
 * raced with its wake-up, a yield) queues a task by its band. While
 * xbands is 0 and the running task is of the normal band, nothing
 * changes: worker.c's run order applies; the yield fast path tests lifo
 * and xbands with one 64-bit compare (they share a word) and adds one xor
 * (the band bits join the test of the state word it already loads), the
 * same instruction count as before; the ready path checks the band bits
 * of the task it queues. Otherwise weft__bands_find chooses a band
 * among those with work (a yielder's band counts, as if it were queued
 * behind its band-mates) by the rule, rt->fair_rule, which each worker
 * copies on its fairness tick when rt->fair_gen moved:
 *  - deficit round robin (default): a band earns band_weight x 250 us of
 *    CPU time per round and keeps the worker while it has deficit left;
 *    each poll is charged its duration (monotonic clock), and each turn
 *    is settled in thread CPU time when it ends (pick_band); clocks are
 *    read only on this multi-band path;
 *  - lottery: a draw from the worker's xorshift, band_weight tickets per
 *    band with work;
 *  - strict: the most urgent band with work.
 * Within a band: its deque (newest first, as the deque), then its yield
 * queue. A thief takes from the most urgent band any victim has (each
 * worker publishes xbands in xpub, a hint), then normal, then low.
 * Single-band work of another band than normal (everything CRITICAL,
 * say) is correct but takes the general path: no LIFO slot, no yield
 * fast path (docs/decisions/0007-bands.md).
 */
#include "runq.h"

#include "../base/clock.h"

#define DRR_UNIT_NS 250000 /* DRR quantum per unit of band weight */
#define DRR_DEBT 8         /* most quanta a band's deficit may owe */

/* Queue `slot` of band b (not normal) on its deque; a full ring moves its
 * older half to the injection queue, as weft__worker_push_overflow.
 * Owner only. */
weft_noinline void weft__bands_push(weft_worker *w, uint32_t slot, int b)
{
    weft_deque *d = xdq(w, b);
    WEFT_EVW(w, slot, WEFT_EV_BDQ);
    while (weft__deque_push(d, slot) < 0) {
        uint32_t half[WEFT_DEQUE_CAP / 2];
        uint32_t n = weft__deque_grab(d, half, WEFT_DEQUE_CAP / 2);
        for (uint32_t i = 0; i < n; i++)
            WEFT_EV(w->rt, half[i], WEFT_EV_INJ);
        weft__inject_push(&w->rt->inject, half, n);
        weft__wake_one(w->rt);
    }
    mark_band(w, b);
}

/* Copy the fairness rule and weights when they changed. Owner only. */
void weft__bands_sync(weft_worker *w)
{
    weft_rt *rt = w->rt;
    /* Acquire: pairs with the release fetch_add in
     * weft__sched_set_fairness, so the rule and weights it stored before
     * are the ones read here (or newer ones: then fair_gen moved again and
     * the next tick copies them again). */
    uint32_t g = atomic_load_explicit(&rt->fair_gen, memory_order_acquire);
    if (g == w->fair.gen)
        return;
    w->fair.gen = g;
    w->fair.rule = atomic_load_explicit(&rt->fair_rule, RLX);
    for (int b = 0; b < WEFT_BANDS; b++) {
        uint32_t x = atomic_load_explicit(&rt->fair_weight[b], RLX);
        w->fair.weight[b] = x ? x : 1;
    }
}

/* End the DRR turn of w->fair.band_cur, if any: charge it the CPU time `cpu`
 * - turn_cpu0. Owner only. */
static void drr_close(weft_worker *w, uint64_t cpu)
{
    int b = w->fair.band_cur;
    if (b < 0)
        return;
    int64_t q = (int64_t)w->fair.weight[b] * DRR_UNIT_NS;
    w->fair.deficit[b] = w->fair.turn_def0 - (int64_t)(cpu - w->fair.turn_cpu0);
    if (w->fair.deficit[b] < -DRR_DEBT * q)
        w->fair.deficit[b] = -DRR_DEBT * q;
    w->fair.band_cur = -1;
}

/* No DRR turn from here on (one band, another rule, idle). Owner only. */
static inline void drr_stop(weft_worker *w)
{
    if (w->fair.band_cur >= 0)
        drr_close(w, weft__thread_cpu_ns());
}

/* Which band of `mask` (bands with runnable work, more than one) runs
 * next, by the worker's rule. Owner only. */
static int pick_band(weft_worker *w, uint32_t mask)
{
    if (w->fair.rule == WEFT_FAIR_STRICT) {
        drr_stop(w);
        return weft_ctz64(mask);
    }
    if (w->fair.rule == WEFT_FAIR_LOTTERY) {
        uint32_t total = 0, r;
        for (int b = 0; b < WEFT_BANDS; b++)
            if (mask & (1u << b))
                total += w->fair.weight[b];
        r = next_rand(w) % total;
        drr_stop(w);
        for (int b = 0;; b++)
            if (mask & (1u << b)) {
                if (r < w->fair.weight[b])
                    return b;
                r -= w->fair.weight[b];
            }
    }
    /* DRR in CPU time. A band's turn lasts while its deficit, less the
     * time since the turn began, is positive: that is read from the
     * monotonic clock (vDSO, tens of ns), so each poll is charged its
     * duration. When the turn ends, the band is charged the thread's CPU
     * time over the turn instead (one CPU-clock read per turn, not per
     * poll): time the kernel took the worker away is then nobody's, which
     * matters on an oversubscribed machine (measured: the low band got
     * 1.15-1.2x its share at load 9 on 2 cores with wall time alone).
     * Then the round moves to the next band with work, crediting it a
     * quantum (band_weight x DRR_UNIT_NS). A band without work loses its
     * deficit (classic DRR: idleness earns no credit). An overrun carries
     * over as a negative deficit, so shares hold for polls up to
     * DRR_DEBT quanta (2 ms for the low band, 16 ms for critical; longer
     * ones are the budgets' business, DESIGN.md §6). The bound keeps one
     * enormous poll from silencing its band for many rounds (measured
     * under TSan: the first poll of a task, binding its stack and fiber,
     * costs ~6 ms of CPU; unbounded, the low band then sat out 90 ms). */
    uint64_t now = weft__clock_ns();
    int b = w->fair.band_cur;
    if (b >= 0 && (mask & (1u << b)) &&
        w->fair.turn_def0 - (int64_t)(now - w->fair.turn_wall0) > 0)
        return b; /* its turn goes on */
    uint64_t cpu = weft__thread_cpu_ns();
    drr_close(w, cpu);
    for (int k = 0; k < WEFT_BANDS; k++)
        if (!(mask & (1u << k)))
            w->fair.deficit[k] = 0;
    for (;;) {
        b = (int)(w->fair.drr_next++ % WEFT_BANDS);
        if (!(mask & (1u << b)))
            continue;
        w->fair.deficit[b] += (int64_t)w->fair.weight[b] * DRR_UNIT_NS;
        if (w->fair.deficit[b] > 0)
            break;
    }
    w->fair.band_cur = b;
    w->fair.turn_def0 = w->fair.deficit[b];
    w->fair.turn_wall0 = now;
    w->fair.turn_cpu0 = cpu;
    return b;
}

/* Take the next task of band b: for normal the LIFO slot, the deque,
 * then the yield queue; for the others their deque, then their yield
 * queue. -1 when empty (its bit is then cleared). Owner only. */
static int64_t take_band(weft_worker *w, int b)
{
    int64_t s;
    if (b == BAND_NORMAL) {
        w->lifo_runs = 0;
        if (w->lifo) {
            s = w->lifo - 1;
            w->lifo = 0;
            return s;
        }
        if (weft__deque_maybe_nonempty(&w->dq)) {
            uint32_t x = weft__deque_take(&w->dq);
            if (x < WEFT_DEQUE_JOB)
                return x;
            if (x != WEFT_DEQUE_EMPTY &&
                (s = weft__worker_claim(w, &w->dq, x)) >= 0)
                return s;
        }
        return yq_pop(w);
    }
    weft_deque *d = xdq(w, b);
    s = -1;
    if (weft__deque_maybe_nonempty(d)) {
        uint32_t x = weft__deque_take(d);
        if (x != WEFT_DEQUE_EMPTY)
            s = x;
    }
    if (s < 0)
        s = byq_pop(w, b);
    if (!w->byq[b].head && !weft__deque_maybe_nonempty(d))
        unmark_band(w, b);
    return s;
}

/* The run order when more than one band may have work (w->xbands, or a
 * yielder not of the normal band): gather what other threads made
 * runnable into its band, then choose a band by the rule and take its
 * next task. `yband` is the yielding task's band (it competes as if
 * queued at the end of its band) or -1; -2 means "the yielder goes on".
 * Owner only. */
weft_noinline int64_t weft__bands_find(weft_worker *w, int yband)
{
    weft_rt *rt = w->rt;
    int64_t s;
    if (rt->mesh) {
        if (w->mesh.nstaged)
            weft__mesh_flush(w);
        if (atomic_load_explicit(&w->inbox_top, RLX) &&
            (s = weft__mesh_from_mail(w)) >= 0)
            push_band(w, (uint32_t)s);
    }
    if (weft_unlikely(weft__summary_any(&rt->sum)) &&
        (s = weft__worker_from_summary(w)) >= 0)
        push_band(w, (uint32_t)s);
    for (;;) {
        uint32_t mask = w->xbands;
        if (w->lifo || weft__deque_maybe_nonempty(&w->dq) || w->yq.head)
            mask |= 1u << BAND_NORMAL;
        if (yband >= 0)
            mask |= 1u << yband;
        if (!mask) {
            drr_stop(w);
            if (weft__inject_len(&rt->inject) &&
                (s = weft__worker_from_inject(w)) >= 0) {
                push_band(w, (uint32_t)s);
                continue;
            }
            return -1;
        }
        int b;
        if (!(mask & (mask - 1))) { /* one band: no rule, no clock */
            drr_stop(w);            /* (but once, to end a turn) */
            b = weft_ctz64(mask);
        } else {
            b = pick_band(w, mask);
        }
        if ((s = take_band(w, b)) >= 0)
            return s;
        if (b == yband) /* only the yielder itself in its band */
            return -2;
        /* Empty after all (stolen, or a stale bit now cleared): again. */
    }
}

/* ---- fairness between bands ------------------------------------------ */

void weft__sched_set_fairness(weft_rt *rt, int rule,
                              const uint32_t weight[WEFT_BANDS])
{
    atomic_store_explicit(&rt->fair_rule, rule, RLX);
    for (int b = 0; b < WEFT_BANDS; b++)
        atomic_store_explicit(&rt->fair_weight[b], weight[b], RLX);
    /* Release: pairs with the acquire load of fair_gen by a worker that
     * then copies rule and weights. A worker racing with two updates may
     * copy a mix; it copies again at its next tick, as fair_gen moved. */
    atomic_fetch_add_explicit(&rt->fair_gen, 1, memory_order_release);
}
