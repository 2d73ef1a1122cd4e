/*
 * rt.h - the top layer's internal calls.
 */
#ifndef WEFT_RT_RT_H
#define WEFT_RT_RT_H

#include "../sched/sched.h"

/* Validate a config, resolving workers == 0. 0 or -EINVAL with
 * weft_last_error() set. */
int weft__config_check(weft_config *c);

/* CPUs this process may use: its affinity mask, limited by a cgroup CPU
 * quota when one is set. Any thread. */
unsigned weft__config_cpus(void);

/* Install the stack-overflow reporter (overflow.c), once per process.
 * Plain thread (weft_rt_create). */
void weft__overflow_init(void);

#endif
