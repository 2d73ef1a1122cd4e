/*
 * preempt.h - switching a task out from a signal handler (preempt.c).
 */
#ifndef WEFT_SCHED_PREEMPT_H
#define WEFT_SCHED_PREEMPT_H

#include <stdint.h>

#include "worker.h"

/* Install the SIGURG handler and find the program's text (preempt.c).
 * Idempotent; plain thread (weft_rt_create). */
void weft__preempt_init(void);

/* Is pc in code where a task may be switched out by a signal: the main
 * program's text, outside weft's own? Async-signal-safe. */
int weft__preempt_pc_safe(uintptr_t pc);

/* Called by the SIGURG handler on a worker's thread, on the thread's
 * signal stack (sigstack.c): switch the running task out if the monitor
 * asked for it and it is safe (preempt.c). uc is the handler's ucontext.
 * Signal handler only. */
void weft__preempt_here(void *uc);

/* The SIGURG handler's own part of weft__preempt_here's check: may the
 * interrupted context (uc) be switched out? (preempt.c) */
int weft__preempt_uc_safe(void *uc);

#endif
