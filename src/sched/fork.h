/*
 * fork.h - the fork record of weft_fork_join (fork.c), and the call that
 * turns one taken from a deque into a task. The deque holds the record's
 * address as a job entry (queue/deque.h); whoever takes such an entry
 * other than its own parent calls weft__fork_claim.
 */
#ifndef WEFT_SCHED_FORK_H
#define WEFT_SCHED_FORK_H

#include <stdatomic.h>
#include <stdint.h>

#include "runtime.h"

/* On its parent's stack, alive until the parent has its result. */
typedef struct weft_fork {
    weft_fn fn;
    void *arg;
    void *result;  /* written by the task it became, before word's DONE */
    uint64_t bits; /* the task's state bits (WEFT_TS_*), the parent's */
    /* WEFT_FORK_PENDING, _DONE, _REFUSED, or the parent's waiter record
     * (fork.c, "The word"). */
    _Atomic uintptr_t word;
} weft_fork;

/* Make fork record f, taken from a deque by worker w (a thief, or its
 * parent's worker's run loop), a task of w's runtime: the slot to run,
 * or -1 when no task can be made (max_tasks live, or shutdown): then its
 * parent runs it itself. Owner worker (w's thread). */
int64_t weft__fork_claim(weft_worker *w, weft_fork *f);

/* The task a claimed record became has ended and its slot is reaped:
 * tell the record's caller (DONE). Called by the task's end (task.c)
 * with the record, the task's result. Any worker. */
void weft__fork_done(void *f);

#endif
