/*
 * cancel.c - what shutdown does to waiting tasks, and how weft_rt_destroy
 * makes sure nothing outside the runtime still points into it.
 *
 * The problem. A task's wait record lives on its own stack, in the
 * runtime's arena, and is linked into objects that outlive the runtime:
 * a global event's queue, a channel of another runtime's tasks, the
 * joiner word of a task in another runtime. Before this file, destroy
 * abandoned parked tasks with their records still linked, and a later
 * weft_event_set walked into the unmapped arena (SIGSEGV). Two more
 * references cross the boundary in flight: a plain thread (or another
 * runtime's worker) that claimed a record is about to set its flag and
 * unpark the task, which touches the task's state word, the summary tree
 * and a worker's sleep word, all in the arena.
 *
 * The rule. weft_rt_shutdown cancels: every blocking call a task of the
 * runtime makes from then on that would block returns -ECANCELED (fast
 * paths that need not block still succeed), and every task already
 * blocked is woken to return -ECANCELED, unlinking its record as a
 * timeout does (sync/wait.c). A wait that a waker claimed before the
 * cancellation completes normally: the claimer already did the
 * operation for it (a unit of a semaphore, a channel element), so
 * dropping it would lose data.
 *
 * The in-wait flag. Each task's cold TCB has its wait kind (task.h): set
 * from before the task links a record anywhere (weft__wait_enter) until
 * the record is unlinked for good (weft__wait_leave); "in_wait" below is
 * that kind being one that links (weft__wk_links: not NONE, not an inline
 * join). Observers read the same word to say where a task waits. Entering is a store-then-load
 * against the canceller's store-then-load (Dekker), with an asymmetric
 * barrier between each store and load (base/membar.h: a compiler barrier
 * on the task's side, membarrier(2) on the canceller's; seq_cst fences on
 * both where the kernel lacks it):
 *
 *     task:      in_wait = 1;   light barrier;  load shutdown
 *     canceller: shutdown = 1;  heavy barrier;  load in_wait
 *
 * The heavy barrier runs a full fence on every thread of the process, so
 * one of the stores is visible to the other side's load: either the task sees
 * shutdown and never links (it clears the flag and returns -ECANCELED),
 * or the canceller sees in_wait = 1 and waits for it to clear. Hence:
 * once the destroyer has seen a task's flag at 0 after shutdown was set,
 * that task has no record linked and never links one again.
 *
 * No lost cancellation. A task that entered before shutdown re-checks
 * shutdown before every park (wait.c, block_task). The canceller, after
 * its store, unparks every PARKED task and sets WAKE on every RUNNABLE
 * one that is in a wait (weft__cancel_waits). Either the task's check
 * sees shutdown, or its park comes after the canceller's unpark: then the
 * park consumes WAKE (acquire, pairing with the unpark's release CAS,
 * which follows the shutdown store) or the unpark finds it PARKED and
 * runs it; either way its next check sees shutdown.
 *
 * Wakers in flight. A waker that is not one of the runtime's own workers
 * (a plain thread, another runtime's worker, a signal handler) holds
 * rt->ext_inflight from before it sets the record's flag until its unpark
 * is done (task.c, waiter_wake). The task leaves its wait only after
 * seeing the flag (acquire), then clears in_wait (release); the destroyer
 * reads in_wait = 0 (acquire) and only then waits for ext_inflight to
 * read 0 (acquire). So the increment happens before that read: a waker
 * that let the last task go is either counted or done. The runtime's own
 * workers need no count: the destroyer joins their threads.
 *
 * Joins that cross runtimes are waits too (task.c): a task of the
 * runtime joining anything enters a wait, and a join cancelled before
 * the child ended unregisters and detaches the child, which is then
 * reaped by whoever finishes it. Joiners from outside (a plain thread,
 * another runtime's task) of a task that the destroyed runtime abandons
 * are woken with -ECANCELED by the destroyer (weft__task_cancel_joiners).
 *
 * Joiners from outside. A plain thread or another runtime's task joining
 * a task of the runtime reads the task's state word, result and slot
 * until its reap, after its wait ended: the task may end while the
 * destroyer drains, wake its joiner normally, and the joiner's reap
 * would then touch an unmapped arena (the soak found it). So such a
 * joiner holds the runtime (weft__cancel_hold: ext_inflight + 1) from
 * before it claims the task until its join returns. The hold is a Dekker
 * pair with the destroyer's removal from the registry: the holder
 * increments (seq_cst) and then checks the runtime is still registered
 * (seq_cst); the destroyer removes it (seq_cst) and then waits for
 * ext_inflight to read 0. Either the holder sees it removed (and gives up
 * with -ESRCH, as for any handle of a destroyed runtime) or the destroyer
 * sees its hold and waits. A joiner left waiting on a task the destroyer
 * abandons is woken with -ECANCELED (weft__task_cancel_joiners), and one
 * that finds the joiner word taken but the task not DONE sees
 * rt->abandoned and gives up too, so every hold ends.
 *
 * The destroyer's order (rt.c): cancel (if shutdown was not asked), wait
 * for every in_wait flag to read 0 while the workers still run the
 * cancelled tasks, stop the workers, mark the runtime abandoned, wake
 * joiners from outside, leave the registry, wait for ext_inflight, unmap.
 */
#include <errno.h>
#include <time.h>

#include "../base/membar.h"
#include "cancel.h"
#include "registry.h"
#include "runtime.h"
#include "wake.h"

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release
#define SC memory_order_seq_cst

/* weft__wait_enter and weft__wait_leave are inline (sched.h). */

void weft__cancel_waits(weft_rt *rt)
{
    /* Store, heavy barrier, load: the canceller's half of the Dekker
     * pair with weft__wait_enter (header). */
    atomic_store_explicit(&rt->shutdown, 1, SC); /* seq_cst for TSan builds
                                                    (base/membar.h) */
    weft__membar_heavy();
    for (uint32_t slot = 0; slot < rt->cfg.max_tasks; slot++) {
        uint64_t s = atomic_load_explicit(&rt->hot[slot].state, RLX);
        unsigned st = weft_ts_state(s);
        if (st == WEFT_TS_PARKED ||
            (st == WEFT_TS_RUNNABLE && weft__wk_links(atomic_load_explicit(
                                           &rt->cold[slot].wait_kind, SC))))
            weft__task_unpark(rt, slot, weft__hgen(rt, s));
    }
}

static void nap(void)
{
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
}

void weft__cancel_drain(weft_rt *rt)
{
    for (uint32_t slot = 0; slot < rt->cfg.max_tasks; slot++)
        /* Acquire: pairs with weft__wait_leave's release. */
        while (weft__wk_links(
            atomic_load_explicit(&rt->cold[slot].wait_kind, ACQ)))
            nap();
}

int weft__cancel_hold(weft_rt *rt)
{
    /* seq_cst increment, then seq_cst registry load: the holder's half
     * of the Dekker pair with weft__registry_remove and the settle load
     * (header, "Joiners from outside"). */
    atomic_fetch_add_explicit(&rt->ext_inflight, 1, SC);
    if (weft__registry_has(rt))
        return 0;
    weft__cancel_release(rt);
    return -ESRCH;
}

void weft__cancel_release(weft_rt *rt)
{
    /* Release: the holder's reads of the arena come before the
     * destroyer's acquire load of 0 (weft__cancel_settle). */
    atomic_fetch_sub_explicit(&rt->ext_inflight, 1, REL);
}

void weft__cancel_settle(weft_rt *rt)
{
    /* seq_cst: after the registry removal's seq_cst store (the Dekker
     * pair with weft__cancel_hold); acquire for the holders' and wakers'
     * release decrements. */
    while (atomic_load_explicit(&rt->ext_inflight, SC))
        nap();
}
