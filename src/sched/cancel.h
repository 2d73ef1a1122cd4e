/*
 * cancel.h - cancellation of waits at shutdown, and the destroyer's
 * drain (cancel.c; the proof is there).
 */
#ifndef WEFT_SCHED_CANCEL_H
#define WEFT_SCHED_CANCEL_H

#include <errno.h>

#include "../base/membar.h"
#include "runtime.h"

/* Cancellation (cancel.c). enter: the calling task (slot of rt) is about
 * to link a wait record of kind (WEFT_WK_*) on obj somewhere; -ECANCELED
 * if rt is shut down (then nothing may be linked). leave: its record is
 * unlinked for good. Task only. */
static inline int weft__wait_enter(struct weft_rt *rt, uint32_t slot,
                                   unsigned kind, const void *obj)
{
    weft_tcb_cold *c = &rt->cold[slot];
    atomic_store_explicit(&c->wait_obj, obj, memory_order_relaxed);
    /* Store, barrier, load: the task's half of the Dekker pair with
     * weft__cancel_waits (cancel.c), whose half is the heavy barrier. */
    if (weft_likely(!weft__membar_store_load(&c->wait_kind, (uint8_t)kind,
                                             &rt->shutdown)))
        return 0;
    atomic_store_explicit(&c->wait_kind, WEFT_WK_NONE, memory_order_release);
    return -ECANCELED;
}
static inline void weft__wait_leave(struct weft_rt *rt, uint32_t slot)
{
    /* Release: pairs with weft__cancel_drain's acquire load; what the
     * task saw of its waker (the flag, and so the waker's ext_inflight
     * increment) happens before the destroyer's next reads. */
    atomic_store_explicit(&rt->cold[slot].wait_kind, WEFT_WK_NONE,
                          memory_order_release);
}

/* Is rt cancelling its tasks' waits (weft_rt_shutdown)? Any thread. */
static inline int weft__wait_cancelled(struct weft_rt *rt)
{
    return atomic_load_explicit(&rt->shutdown, memory_order_relaxed);
}

/* Shutdown: mark rt shut down and wake every task blocked in a wait, so
 * that it sees the cancellation. Any thread. */
void weft__cancel_waits(struct weft_rt *rt);

/* Destroyer, workers still running: wait until no task of rt is in a
 * wait. Then, workers stopped: wake joiners from outside rt of its
 * abandoned tasks with -ECANCELED (task.c), and wait for wakers from
 * outside rt still in flight. Plain thread. */
void weft__cancel_drain(struct weft_rt *rt);
void weft__task_cancel_joiners(struct weft_rt *rt);
void weft__cancel_settle(struct weft_rt *rt);

/* Hold rt from outside it (a joiner that is not one of its tasks): 0, or
 * -ESRCH when rt has left the registry (it is being destroyed). A holder
 * releases when it is done with rt's memory; weft__cancel_settle waits
 * for every holder. Any thread. */
int weft__cancel_hold(struct weft_rt *rt);
void weft__cancel_release(struct weft_rt *rt);

#endif
