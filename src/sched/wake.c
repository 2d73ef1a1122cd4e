/*
 * wake.c - unpark and the waiter record's wake-up: how a parked task
 * becomes runnable again, from any thread (a worker of its runtime,
 * another runtime's worker, a plain thread, a signal handler).
 *
 * Park and unpark. weft__task_park (worker.c) is a switch-out with MSG_PARK; the task
 * becomes PARKED in after_switch (switch.h, switch.c). weft__task_unpark CASes
 * PARKED -> RUNNABLE and makes the task ready; on a RUNNABLE task (not yet
 * switched out, or running) it sets WAKE, which the next park consumes
 * instead of parking. So an unpark can arrive before, during or after the
 * park and is never lost; at worst a later park returns early, which every
 * caller tolerates by re-checking its condition in a loop. Every unpark
 * of a RUNNABLE task is an RMW of its state, even when WAKE is set
 * already (two wakers): that is what orders the waker's flag before the
 * consumer's re-check (unpark, below).
 *
 * Cancelled joiners. When a runtime is destroyed with tasks left, their
 * finishers never run: weft__task_cancel_joiners wakes each registered
 * joiner record with `cancelled` set (sched/cancel.c).
 */
#include "../base/atomic.h"
#include "../base/futex.h"
#include "runq.h"

#define ACQ_REL memory_order_acq_rel
#define REL memory_order_release

static inline uint32_t hgen(const weft_rt *rt, uint64_t s)
{
    return weft__hgen(rt, s);
}

/* The trace's WAKE event, on the waker's ring; the waker is the task
 * running on w (a remote wake runs in a handler: no waker task). */
weft_cold weft_noinline static void trace_wake(weft_rt *rt, uint32_t slot,
                                               int remote, weft_worker *w)
{
    uint64_t by = 0;
    if (!remote && w && w->rt == rt && w->current)
        by = w->cur_slot + UINT64_C(1);
    weft__trace_event(rt, remote ? NULL : w, WEFT_TEV_WAKE, slot, 0, 0,
                      hgen(rt, atomic_load_explicit(&rt->hot[slot].state, RLX)),
                      by);
}

/* woken's local case while tracing: the event, then the wake. Its last
 * two lines are woken's local path, copied: change both together (kept
 * apart so that the untraced path carries no live values across the
 * hook; see woken). */
weft_cold weft_noinline static void trace_wake_local(weft_rt *rt, uint32_t slot,
                                                     weft_worker *w)
{
    trace_wake(rt, slot, 0, w);
    stat_inc(&w->st.wakes);
    weft__sched_ready_local(w, slot);
}

/* Make the task that was just unparked runnable, and count the wake: on
 * the waking worker's own counter when the waker is one of rt's workers,
 * else on the runtime's shared one. A remote wake may run in a signal
 * handler that interrupted the owner in the middle of its own
 * load-and-store increment: it always takes the shared counter, with an
 * RMW. */
/* self: the calling thread's worker (NULL: a plain thread or a remote
 * wake), looked up once by the callers. */
static inline __attribute__((always_inline)) void
woken(weft_rt *rt, uint32_t slot, int remote, weft_worker *w)
{
    /* The trace's WAKE: before the task can run anywhere (its RUN comes
     * after it), tested on a line the counter's increment writes. */
    if (w && w->rt == rt) {
        /* The hook first and out of line with the rest of the local
         * wake: done after the push, it kept rt, slot and w live across
         * it (callgrind pingpong +8 instructions a wake). */
        if (weft_unlikely(atomic_load_explicit(&w->tracing, RLX))) {
            trace_wake_local(rt, slot, w);
            return;
        }
        stat_inc(&w->st.wakes);
        weft__sched_ready_local(w, slot);
        return;
    }
    if (weft__tracing(rt))
        trace_wake(rt, slot, remote, w);
    atomic_fetch_add_explicit(&rt->ext_wakes, 1, RLX);
    if (!remote)
        weft__sched_ready(rt, slot);
    else if (WEFT_EV(rt, slot, WEFT_EV_SIG),
             weft__summary_signal(&rt->sum, slot))
        weft__wake_one(rt);
}

static inline void unpark(weft_rt *rt, uint32_t slot, uint32_t gen, int remote,
                          weft_worker *self)
{
    weft_tcb *t = &rt->hot[slot];
    uint64_t s = atomic_load_explicit(&t->state, RLX);
    for (;;) {
        if (hgen(rt, s) != gen)
            return; /* it ended and its slot moved on */
        unsigned st = weft_ts_state(s);
        if (st == WEFT_TS_PARKED) {
            uint64_t n = (s & ~WEFT_TS_MASK) | WEFT_TS_RUNNABLE;
            /* Acquire: pairs with after_switch's release publishing the
             * parked context, which we are about to hand to a worker.
             * Release: what we wrote before waking is visible to it. */
            if (atomic_compare_exchange_weak_explicit(&t->state, &s, n, ACQ_REL,
                                                      RLX)) {
                WEFT_EV(rt, slot, WEFT_EV_UNPARK);
                woken(rt, slot, remote, self);
                return;
            }
        } else if (st == WEFT_TS_RUNNABLE) {
            /* Set WAKE; when another waker set it already, write it
             * again all the same (a CAS of s to s). Release: pairs with
             * the acquire CASes that consume WAKE (weft__task_park,
             * weft__switch_finish), so what this waker published before
             * the unpark (the woken flag of its wait) is visible to the
             * task once the bit it finds is consumed. With a plain
             * "already set: return", that bit was another waker's: a
             * late unpark from a wait the task had left. The task
             * consumed it and re-checked its flag, which this waker had
             * stored but which had not reached it (x86 lets a store wait
             * in the store buffer past a later load, here the load of
             * state), and parked for good: 5 of 64 tasks making
             * weft_block_on calls back to back hung within 1.3M calls
             * (stress.blocking_back_to_back_wakes). The RMW orders this
             * waker's flag before the task's consume in every case. */
            if (atomic_compare_exchange_weak_explicit(
                    &t->state, &s, s | WEFT_TS_WAKE, REL, RLX)) {
                WEFT_EV(rt, slot, WEFT_EV_WAKEBIT);
                return;
            }
        } else {
            return; /* DONE (or FREE: its slot moved on) */
        }
    }
}

void weft__task_unpark(weft_rt *rt, uint32_t slot, uint32_t gen)
{
    unpark(rt, slot, gen, 0, weft__worker_self());
}

void weft__task_unpark_remote(weft_rt *rt, uint32_t slot, uint32_t gen)
{
    unpark(rt, slot, gen, 1, NULL);
}

uint32_t weft__task_hgen(weft_rt *rt, uint32_t slot)
{
    return hgen(rt, atomic_load_explicit(&rt->hot[slot].state, RLX));
}

/* Wake a waiter. A waker from outside the task's runtime (a plain
 * thread, another runtime's worker, a signal handler) holds the runtime's
 * ext_inflight from before the flag until its unpark is done, so that a
 * destroyer never unmaps the arena under it (cancel.c). */
static inline void waiter_wake(weft_waiter *wt, int remote)
{
    /* Copy first: once the flag is set the record may vanish. */
    weft_rt *rt = wt->rt;
    weft_tcb *task = wt->task;
    uint32_t slot = wt->slot;
    if (!task) {
        /* Release: pairs with the blocked thread's acquire of the flag. */
        atomic_store_explicit(&wt->futex, 1, REL);
        /* A wake on a reused address is at worst spurious. */
        weft__futex_wake(&wt->futex, 1);
        return;
    }
    weft_worker *self = remote ? NULL : weft__worker_self();
    int outside = weft_unlikely(!self || self->rt != rt);
    if (outside) /* seq_cst: before the flag, which lets the task leave
                    (cancel.c, "Wakers in flight") */
        atomic_fetch_add_explicit(&rt->ext_inflight, 1, memory_order_seq_cst);
    uint32_t gen = hgen(rt, atomic_load_explicit(&task->state, RLX));
    /* Release: pairs with the waiter's acquire of the flag. */
    atomic_store_explicit(&wt->futex, 1, REL);
    unpark(rt, slot, gen, remote, self);
    if (outside) /* Release: pairs with weft__cancel_settle's acquire. */
        atomic_fetch_sub_explicit(&rt->ext_inflight, 1, REL);
}

void weft__waiter_wake(weft_waiter *wt)
{
    waiter_wake(wt, 0);
}

void weft__waiter_wake_remote(weft_waiter *wt)
{
    waiter_wake(wt, 1);
}

void weft__task_cancel_joiners(weft_rt *rt)
{
    /* The workers are stopped: every task left is abandoned, and its
     * finisher will never take the joiner word. Every task of rt has left
     * its waits (weft__cancel_drain), so a registered record belongs to a
     * plain thread or another runtime's task. */
    for (uint32_t slot = 0; slot < rt->cfg.max_tasks; slot++) {
        unsigned st =
            weft_ts_state(atomic_load_explicit(&rt->hot[slot].state, RLX));
        if (st == WEFT_TS_FREE || st == WEFT_TS_DONE)
            continue;
        /* acq_rel: pairs with the joiner's registering CAS. */
        uintptr_t j = atomic_exchange_explicit(&rt->cold[slot].joiner,
                                               WEFT_JOINER_DONE, ACQ_REL);
        if (j && j != WEFT_JOINER_DONE) {
            ((weft_waiter *)j)->cancelled = 1;
            weft__waiter_wake((weft_waiter *)j);
        }
    }
}
