/*
 * sysmark.h - marks the system calls (and vDSO reads) that weft's own
 * code makes on this thread, for the preemption and isolation handlers
 * (sched/preempt.c).
 *
 * Why. A SIGURG that lands in a system call, or in the vDSO, cannot tell
 * from the interrupted PC whether the program made the call or weft did.
 * If weft did, weft frames below it may hold a worker's state in
 * registers (the worker itself, a queue it is working on): switching the
 * task out there (preemption), or handing the thread to an isolation
 * identity while the worker goes on with another thread (isolation),
 * lets those frames carry on with a worker that is now someone else's.
 * Two threads then work one worker's owner-only queues, and a task is
 * lost (found by the soak: a task of the low band, ready in no queue,
 * after the DRR band order read the thread's CPU clock, a system call
 * inside the vDSO, and was preempted there). So every call weft makes
 * into the kernel or libc on a path a task can reach is bracketed by
 * weft__sys_enter and weft__sys_leave, and the handlers refuse while the
 * mark is up: the monitor asks again at its next tick.
 *
 * A depth, not a flag, so that marked calls may nest. It is only ever
 * changed by its own thread, and a task never switches inside a marked
 * section, so it stays balanced per thread; the compiler barriers keep
 * the stores where they are written, which is all a signal handler on
 * the same thread needs.
 */
#ifndef WEFT_BASE_SYSMARK_H
#define WEFT_BASE_SYSMARK_H

#include <stdatomic.h>

/* initial-exec: read from a signal handler. Atomic (relaxed) only so that
 * ThreadSanitizer, which sees a task and its worker's scheduler as two
 * fibers of one thread, does not take their turns at it for a race. */
extern _Thread_local _Atomic unsigned weft__in_sys
    __attribute__((tls_model("initial-exec")));

static inline void weft__sys_enter(void)
{
    atomic_store_explicit(
        &weft__in_sys,
        atomic_load_explicit(&weft__in_sys, memory_order_relaxed) + 1,
        memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* before the call */
}

static inline void weft__sys_leave(void)
{
    atomic_signal_fence(memory_order_seq_cst); /* after the call */
    atomic_store_explicit(
        &weft__in_sys,
        atomic_load_explicit(&weft__in_sys, memory_order_relaxed) - 1,
        memory_order_relaxed);
}

/* The depth, for the signal handlers. */
static inline unsigned weft__sys_depth(void)
{
    return atomic_load_explicit(&weft__in_sys, memory_order_relaxed);
}

#endif
