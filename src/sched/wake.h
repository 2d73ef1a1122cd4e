/*
 * wake.h - park and unpark, and the waiter record's wake-up (wake.c;
 * weft__task_park is worker.c's).
 */
#ifndef WEFT_SCHED_WAKE_H
#define WEFT_SCHED_WAKE_H

#include "runtime.h"

/* Park the calling task until weft__task_unpark; may return spuriously
 * (callers loop on their condition). Task only; switches. */
void weft__task_park(void);

/* Wake a parked task; idempotent, harmless on a running or finished one.
 * gen is the generation as its handle shows it (weft__handle_gen). Any
 * thread. */
void weft__task_unpark(struct weft_rt *rt, uint32_t slot, uint32_t gen);

/* As weft__task_unpark, but never touches the calling worker's own queues
 * (the task is signalled through the summary tree): safe in a signal
 * handler. Any thread. */
void weft__task_unpark_remote(struct weft_rt *rt, uint32_t slot, uint32_t gen);

/* The generation a handle to task `slot` shows now. Any thread. */
uint32_t weft__task_hgen(struct weft_rt *rt, uint32_t slot);

/* Wake w's owner. After this call w may already be gone: it copies what
 * it needs first. Any thread. */
void weft__waiter_wake(weft_waiter *w);

/* As weft__waiter_wake, but safe in a signal handler (no worker-local
 * queue is touched). Any thread. */
void weft__waiter_wake_remote(weft_waiter *w);

#endif
