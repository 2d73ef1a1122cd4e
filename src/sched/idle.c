/*
 * idle.c - a worker with nothing to run: spinning, sleeping, waking.
 *
 * Sleeping (the no-lost-wake-up argument). A worker with nothing to do
 * announces itself: sleep = 1, then an RMW idle += 1. It then re-checks
 * every place work can appear from another thread (summary top words,
 * the injection queue, every deque, the stop flag) and futex-waits on
 * `sleep` only if all are empty. A producer publishes its work, then does
 * an RMW idle += 0 and, if it read non-zero, clears some sleeper's `sleep`
 * (CAS 1 -> 0) and wakes it. The two RMWs on `idle` are ordered in its
 * modification order, and each reads the other's value or a later one:
 * - the sleeper's RMW first: the producer's RMW (acquire) reads a value
 *   from the sleeper's release sequence, so it sees idle >= 1 and the
 *   sleep = 1 stored before it, and wakes the worker (a futex wait on a
 *   word already 0 returns at once);
 * - the producer's RMW first: the sleeper's RMW (acquire) reads from it,
 *   so the producer's publication happens-before the sleeper's re-check,
 *   which sees the work and does not sleep.
 * Either way no work is left with every worker asleep. The edge is on a
 * variable, not a stand-alone fence, so ThreadSanitizer sees it too
 * (DESIGN.md §9). tests/unit/test_summary.c wakes parked tasks 10^6 times
 * from plain threads, and tests/stress the same across workers: a lost
 * wake-up hangs them.
 *
 * Wake-ups for new work on a worker's own deque (notify, runq.h) skip the
 * RMW: see notify for why that is safe. Mesh mode's mailboxes follow the
 * same argument (mesh.c).
 */
#include "runq.h"

#include <limits.h>

#include "../base/atomic.h"
#include "../base/clock.h"
#include "../base/futex.h"
#include "uring.h"

#define SPIN_ROUNDS 64

/* Anything another thread may have made runnable for this worker: the
 * injection queue, signal bits, another worker's deque, or the stop flag.
 * O(workers), on the way to sleep only. */
static int has_foreign_work(weft_worker *w)
{
    weft_rt *rt = w->rt;
    if (weft__inject_len(&rt->inject))
        return 1;
    if (weft__summary_any(&rt->sum))
        return 1;
    if (rt->mesh && atomic_load_explicit(&w->inbox_top, RLX))
        return 1;
    if (!weft__uring_closes_seen(w))
        return 1; /* a weft_close to act on (uring.c) */
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft_deque *d = &rt->workers[i].dq;
        if (atomic_load_explicit(&d->bottom, RLX) >
            atomic_load_explicit(&d->top, RLX))
            return 1;
        for (int b = 0; b < WEFT_BANDS - 1; b++) {
            d = &rt->workers[i].bdq[b];
            if (atomic_load_explicit(&d->bottom, RLX) >
                atomic_load_explicit(&d->top, RLX))
                return 1;
        }
    }
    return atomic_load_explicit(&rt->stopping, RLX);
}

/* Wake v if it sleeps (it takes the wake-up: sleep 1 -> 0); 1 if so. The
 * caller has done the RMW on rt->idle (header). Any thread. */
int weft__idle_wake(weft_worker *v)
{
    uint32_t one = 1;
    /* Acquire: pairs with the sleeper's release store of sleep, so that
     * in_poll, stored before it, is seen (poller.c). */
    if (atomic_load_explicit(&v->sleep, RLX) != 1 ||
        !atomic_compare_exchange_strong_explicit(&v->sleep, &one, 0,
                                                 memory_order_acquire, RLX))
        return 0;
    if (atomic_load_explicit(&v->in_poll, RLX))
        weft__poller_kick(v->rt); /* it sleeps in epoll_wait */
    else
        /* Every waiter of the word: the worker's thread, and a wait its
         * io_uring may still have armed from an earlier sleep (uring.c),
         * which must not take the wake-up meant for the thread. */
        weft__futex_wake(&v->sleep, INT_MAX);
    return 1;
}

void weft__wake_one(weft_rt *rt)
{
    /* acq_rel RMW: pairs with the sleeper's RMW on idle (header). */
    if (!atomic_fetch_add_explicit(&rt->idle, 0, memory_order_acq_rel))
        return;
    /* A worker asleep on its futex first: the one in the poller keeps
     * watching descriptors (poller.c). */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < rt->nworkers; i++) {
            weft_worker *v = &rt->workers[i];
            if (!pass && atomic_load_explicit(&v->in_poll, RLX))
                continue;
            if (weft__idle_wake(v))
                return;
        }
}

/*
 * Nothing to run: search (spin, watching for work anywhere) for a short
 * bound, then sleep. While searching the worker counts in rt->searching,
 * which tells notify() that new work will be found without a wake-up. A
 * searcher that finds work and was the last one wakes a successor, since
 * where one task appeared more may follow (Go's resetspinning); the chain
 * stops at the first worker that finds nothing. The spin is bounded
 * (DESIGN.md §9: unbounded stealing spins burn idle CPU).
 */
void weft__idle_wait(weft_worker *w)
{
    weft_rt *rt = w->rt;
    weft__steal_publish(w, 0); /* the yield queue is empty when idle */
    w->fair.band_cur = -1;     /* idle time is no band's */
    if (rt->mesh)
        weft__mesh_idle(w);
    /* Operations waiting in its ring are submitted, and completions
     * reaped, before it looks elsewhere (uring.c). */
    if (weft__uring_busy(w) && weft__uring_reap(w))
        return;
    atomic_fetch_add_explicit(&rt->searching, 1, RLX);
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if (has_foreign_work(w)) {
            if (atomic_fetch_sub_explicit(&rt->searching, 1, RLX) == 1 &&
                atomic_load_explicit(&rt->idle, RLX))
                weft__wake_one(rt);
            return;
        }
        weft_cpu_relax();
    }
    atomic_fetch_sub_explicit(&rt->searching, 1, RLX);
    /* Tasks wait on descriptors: one idle worker sleeps in the poller
     * instead (poller.c, with the proof for this path). */
    int poll = weft__poller_take(rt, w);
    if (poll)
        atomic_store_explicit(&w->in_poll, 1, RLX);
    /* Release: pairs with weft__idle_wake's acquire CAS (in_poll). */
    atomic_store_explicit(&w->sleep, 1, memory_order_release);
    /* acq_rel RMW: pairs with weft__wake_one's RMW on idle (header). */
    atomic_fetch_add_explicit(&rt->idle, 1, memory_order_acq_rel);
    /* Sleep until woken, or until this worker's earliest timer: only its
     * own tasks arm timers on it, and they do so while it is awake, so
     * the deadline read here cannot move earlier while it sleeps. */
    uint64_t next = weft__timer_next(&w->timers);
    if (!has_foreign_work(w)) {
        /* Idle time: the clock is read here, around the sleep, and
         * nowhere on the switch path (obs/stats.c derives busy time). */
        uint64_t t0 = weft__clock_ns();
        atomic_store_explicit(&w->sleep_since, t0, RLX);
        if (weft__tracing(rt))
            weft__trace_event(rt, w, WEFT_TEV_SLEEP, UINT32_MAX, (unsigned)poll,
                              0, 0, 0);
        if (weft__uring_busy(w)) {
            /* Operations in flight: it sleeps in its ring (uring.c). */
            if (atomic_load_explicit(&w->sleep, RLX) == 1 &&
                !atomic_load_explicit(&rt->stopping, RLX))
                weft__uring_sleep(w, poll, next == UINT64_MAX ? 0 : next);
        } else if (poll) {
            /* One round: an event, a kick, or the timer; the events
             * may have made tasks ready here. */
            if (atomic_load_explicit(&w->sleep, RLX) == 1 &&
                !atomic_load_explicit(&rt->stopping, RLX))
                weft__poller_block(rt, next == UINT64_MAX ? 0 : next);
        } else {
            while (atomic_load_explicit(&w->sleep, RLX) == 1 &&
                   !atomic_load_explicit(&rt->stopping, RLX))
                if (weft__futex_wait(&w->sleep, 1,
                                     next == UINT64_MAX ? 0 : next) < 0)
                    break; /* a timer is due */
        }
        uint64_t t1 = weft__clock_ns(), slept = t1 - t0;
        if (weft__tracing(rt))
            weft__trace_event(rt, w, WEFT_TEV_WAKEUP, UINT32_MAX, 0, 0, 0, 0);
        atomic_store_explicit(&w->st.idle_ns,
                              atomic_load_explicit(&w->st.idle_ns, RLX) + slept,
                              RLX);
        atomic_store_explicit(&w->sleep_since, 0, RLX);
        /* The monitor may have slept longer than a tick (all idle,
         * sysmon.c): its clock is brought up to date here, so polls are
         * not timed on a stale one. */
        atomic_store_explicit(&w->coarse_ns, t1, RLX);
    }
    if (poll) {
        atomic_store_explicit(&w->in_poll, 0, RLX);
        /* Not blocked after all (work appeared first): give the role
         * back; weft__poller_block gives it back itself. */
        uint32_t me = w->id + 1;
        atomic_compare_exchange_strong_explicit(&rt->poller.blocker, &me, 0,
                                                RLX, RLX);
    }
    atomic_store_explicit(&w->sleep, 0, RLX);
    /* seq_cst RMW, then seq_cst load: pairs with the monitor's store of
     * WEFT_MON_DEEP and its load of idle before it sleeps (sysmon.c). */
    atomic_fetch_sub_explicit(&rt->idle, 1, memory_order_seq_cst);
    if (weft_unlikely(
            atomic_load_explicit(&rt->mon_sleep, memory_order_seq_cst) ==
            WEFT_MON_DEEP))
        weft__sysmon_kick(rt);
}
