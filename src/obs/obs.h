/*
 * obs.h - the observation layer's internal calls (obs/stats.c,
 * obs/dump.c). Observation only reads the scheduler's state: owner-written
 * counters and published words, loaded relaxed, never a lock that a task
 * path takes.
 */
#ifndef WEFT_OBS_OBS_H
#define WEFT_OBS_OBS_H

#include "../sched/sched.h"

/* Take rt's baseline lock (obs_lock); with `try`, give up at once when it
 * is held and return 0 (signal handlers: the interrupted thread may hold
 * it). 1 when taken. Any thread. */
/* Tasks spawned and not yet reaped, workers and isolation identities
 * included (weft_stats.live; weft_rt_destroy's check). Any thread. */
uint64_t weft__obs_live(weft_rt *rt);

int weft__obs_lock(weft_rt *rt, int try);
void weft__obs_unlock(weft_rt *rt);

/* Worker i's counters at time `now` (weft__clock_ns), minus the baseline
 * of the last weft_stats_reset when `base` (the caller holds obs_lock).
 * Any thread, signal safe. */
void weft__obs_worker(weft_rt *rt, unsigned i, uint64_t now, int base,
                      weft_stats *o);

/* The totals and gauges of weft_stats, likewise. Any thread, signal
 * safe. */
void weft__obs_totals(weft_rt *rt, uint64_t now, int base, weft_stats *o);

/* A runtime created with cfg.dump_on_sigquit: install the SIGQUIT handler
 * if it is the first. Creator, after rt is in the registry. */
void weft__obs_sigquit_add(weft_rt *rt);

/* rt has left the registry and is about to be unmapped: wait out any
 * SIGQUIT dump that may still read it, and restore SIGQUIT's previous
 * disposition if it was the last runtime that asked for dumps. Destroyer
 * only. */
void weft__obs_rt_gone(weft_rt *rt);

/* The name of wait kind k (WEFT_WK_*), as dumps show it. */
const char *weft__obs_wait_name(unsigned k);

/* Start the execution trace with rt's configured ring size and mode
 * (obs/trace.c): 0 or -errno. */
int weft__obs_trace_begin(weft_rt *rt);

#endif
