/*
 * sysmon.h - the monitor thread (sysmon.c).
 */
#ifndef WEFT_SCHED_SYSMON_H
#define WEFT_SCHED_SYSMON_H

#include <stdint.h>

struct weft_rt;

/* Start and stop the monitor thread of rt (sysmon.c). Creator / destroyer
 * only. start returns 0 or -EAGAIN. */
int weft__sysmon_start(struct weft_rt *rt);
void weft__sysmon_stop(struct weft_rt *rt);
/* A worker has left idle: wake the monitor if it sleeps with no timeout
 * (sysmon.c). Call after the seq_cst decrement of rt->idle, when a
 * seq_cst load of rt->mon_sleep reads WEFT_MON_DEEP. */
void weft__sysmon_kick(struct weft_rt *rt);
#define WEFT_MON_DEEP 2

/* The lost wake-up watchdog of WEFT_DEBUG builds (watchdog.c): the
 * monitor's view of the last suspect. */
typedef struct weft_watchdog {
    uint32_t slot1;    /* suspect's slot + 1, 0 none */
    uint64_t state;    /* its state word when first seen */
    uint64_t since;    /* when first seen */
    uint64_t switches; /* the runtime's switches then */
} weft_watchdog;

/* The bound in ns (WEFT_WATCHDOG_MS; 0: off, and always 0 outside
 * WEFT_DEBUG builds). Any thread. */
uint64_t weft__watchdog_bound_ns(void);

/* A look while every worker sleeps and `switches` switches have been
 * made: aborts, naming the task, when one ready task has been left
 * unrun for the bound. Monitor only. */
void weft__watchdog_look(struct weft_rt *rt, weft_watchdog *wd, uint64_t now,
                         uint64_t switches);

#endif
