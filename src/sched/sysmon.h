/*
 * sysmon.h - the monitor thread (sysmon.c).
 */
#ifndef WEFT_SCHED_SYSMON_H
#define WEFT_SCHED_SYSMON_H

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

#endif
