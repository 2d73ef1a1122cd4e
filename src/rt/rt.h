/*
 * rt.h - the top layer's internal calls.
 */
#ifndef WEFT_RT_RT_H
#define WEFT_RT_RT_H

#include "../sched/sched.h"

/* Validate a config, resolving workers == 0. 0 or -EINVAL with
 * weft_last_error() set. */
int weft__config_check(weft_config *c);

/* Stacks in each class: one per task slot, plus room for every
 * stack cache (the workers' and the isolation identities', one per
 * thread: isolate.c keeps max(workers, 2) spares). A stack cache holds
 * free stacks that only its worker hands out, so with exactly max_tasks
 * stacks, max_tasks live tasks could find the pool empty while free
 * stacks sat in other workers' caches ("no stack left", stress
 * .slots_reclaim_races_spawns_and_reaps under ASan). The extra stacks
 * cost address space, not memory. */
static inline uint64_t weft__stacks_per_class(const weft_config *c)
{
    uint64_t caches =
        (uint64_t)c->workers * 2 + (c->workers < 2 ? 2 : c->workers);
    return (uint64_t)c->max_tasks + caches * WEFT_STACK_CACHE;
}

/* CPUs this process may use: its affinity mask, limited by a cgroup CPU
 * quota when one is set. Any thread. */
unsigned weft__config_cpus(void);

/* Install the stack-overflow reporter (overflow.c), once per process.
 * Plain thread (weft_rt_create). */
void weft__overflow_init(void);

#endif
