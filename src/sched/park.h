/*
 * park.h - all that sync/ may know of the scheduler: who is calling (a
 * task, by runtime and slot, or a plain thread), the waiter record and
 * park/unpark, the cancellation flag a wait raises before it links a
 * record (cancel.c), a timer on the caller's worker for deadlines, and
 * whether spinning on a lock is useful. sync/ includes this header and
 * no other scheduler header, and reads no worker field: everything here
 * is a call or an inline that says what it reads.
 */
#ifndef WEFT_SCHED_PARK_H
#define WEFT_SCHED_PARK_H

#include "cancel.h"
#include "runtime.h"
#include "wake.h"

/* Who is calling: a task (its runtime and slot, 1) or not (0: a plain
 * thread, or a worker between tasks). Re-ask after anything that can
 * switch: the task may have moved. Any thread. */
typedef struct weft_caller {
    struct weft_rt *rt;
    weft_tcb *task;
    uint32_t slot;
} weft_caller;

static inline int weft__caller(weft_caller *c)
{
    weft_worker *w = weft__worker_self();
    if (!w || !w->current) {
        c->rt = NULL;
        c->task = NULL;
        c->slot = 0;
        return 0;
    }
    c->rt = w->rt;
    c->task = w->current;
    c->slot = w->cur_slot;
    return 1;
}

/* The calling task's wait kind, its in-wait flag (cancel.c). */
static inline _Atomic uint8_t *weft__caller_wait_flag(const weft_caller *c)
{
    return &c->rt->cold[c->slot].wait_kind;
}

/* Say where the calling task waits without raising the flag (a wait
 * nested inside one that raised it). Task only. */
static inline void weft__caller_wait_set(const weft_caller *c, unsigned kind,
                                         const void *obj)
{
    weft__cold_wait_set(&c->rt->cold[c->slot], kind, obj);
}

/* Is spinning for a lock useful: may its holder be running on another
 * CPU? Not for a task of a one-worker runtime. Any thread. */
static inline int weft__spin_useful(void)
{
    weft_worker *w = weft__worker_self();
    return !w || w->rt->nworkers > 1;
}

/* Arm tm for the calling task, on its worker, to wake waiter w at
 * deadline (timer.h). Task only. */
static inline void weft__timer_arm_here(weft_timer *tm, uint64_t deadline,
                                        weft_waiter *w)
{
    weft__timer_arm(weft__worker_self(), tm, deadline, w);
}

#endif
