/*
 * blocking.h - the blocking pool (blocking.c) as the runtime's destroyer
 * and the statistics see it. weft_block_on is in weft.h.
 */
#ifndef WEFT_IO_BLOCKING_H
#define WEFT_IO_BLOCKING_H

#include <stdint.h>

#include "../sched/runtime.h"

/* Jobs the pool has run for tasks, and its threads now. Any thread. */
void weft__blocking_stats(weft_rt *rt, uint64_t *calls, uint64_t *threads);

/* rt is being destroyed (its workers stopped, its tasks' waits ended):
 * wait for the jobs still running, stop the threads, free the pool.
 * Before any task stack is released. Destroyer. */
void weft__blocking_rt_gone(weft_rt *rt);

/* How long an idle pool thread waits for work before it retires, in ns
 * (10 s). Tests shorten it; read when a thread starts to wait. */
extern _Atomic uint64_t weft__blocking_keep_ns;

#endif
