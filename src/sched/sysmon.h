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

/* The runtime stops (rt->stopping set, the monitor stopped): ask every
 * worker running a preemptible task to switch it out, again every
 * millisecond until none runs one (or 1 s has passed): a preemptible
 * task that never calls weft otherwise kept its worker, and the
 * destroy's join of it, forever. Non-preemptible tasks are left to
 * switch by themselves (weft.h, weft_rt_destroy). Destroyer. */
void weft__sysmon_stop_preemptible(struct weft_rt *rt, uint32_t started);
/* A worker has left idle: wake the monitor if it sleeps with no timeout
 * (sysmon.c). Call after the seq_cst decrement of rt->idle, when a
 * seq_cst load of rt->mon_sleep reads WEFT_MON_DEEP. */
void weft__sysmon_kick(struct weft_rt *rt);
#define WEFT_MON_DEEP 2

/* The lost wake-up watchdog of WEFT_DEBUG builds (watchdog.c): the
 * monitor's view of the tasks it suspects. */
#define WEFT_WATCHDOG_SUSPECTS 16
typedef struct weft_suspect {
    uint32_t slot1; /* slot + 1, 0 for an unused entry */
    uint64_t state; /* its state word when first seen */
    uint64_t polls; /* its poll count then */
    uint64_t since; /* when first seen */
} weft_suspect;

typedef struct weft_watchdog {
    uint64_t last; /* when it last looked */
    weft_suspect s[WEFT_WATCHDOG_SUSPECTS];
} weft_watchdog;

/* The bound in ns (WEFT_WATCHDOG_MS; 0: off, and always 0 outside
 * WEFT_DEBUG builds). Any thread. */
uint64_t weft__watchdog_bound_ns(void);

/* A look while every worker sleeps: aborts, naming the task, when a
 * ready task has been left unrun for the bound, whatever else ran
 * meanwhile. Monitor only. */
void weft__watchdog_look(struct weft_rt *rt, weft_watchdog *wd, uint64_t now);

#endif
