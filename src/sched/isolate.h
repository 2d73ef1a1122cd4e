/*
 * isolate.h - a runtime's threads, and isolation: a thread that keeps a
 * task and gives its worker to another thread (isolate.c).
 */
#ifndef WEFT_SCHED_ISOLATE_H
#define WEFT_SCHED_ISOLATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "worker.h"

/* One OS thread of a runtime (isolate.c). */
typedef struct weft_thr {
    pthread_t th; /* set before anyone signals it */
    struct weft_rt *rt;
    char *altstack;         /* its signal stack (arena) */
    _Atomic uint32_t cmd;   /* futex word: 0 idle in the pool, k + 1 run
                                worker k, THR_EXIT; the monitor (or the
                                destroyer) sets, the thread waits */
    _Atomic uint32_t state; /* THR_* */
    _Atomic int tid;        /* kernel thread id */
    int started;            /* pthread_create succeeded; creator */
} weft_thr;

enum { THR_NONE = 0, THR_RUN = 1, THR_POOL = 2, THR_GONE = 3 };
#define THR_EXIT UINT32_MAX

/* Create the thread of worker i. -EAGAIN on failure. Creator. */
int weft__thr_start_worker(struct weft_rt *rt, uint32_t i);

/* Stop and join every thread of rt (stopping is set). Destroyer. */
void weft__thr_stop_all(struct weft_rt *rt);

/* Allocate / free the thread table and isolation identities. */
int weft__thr_init(struct weft_rt *rt, char *altstacks);
void weft__thr_fini(struct weft_rt *rt);

/* The monitor's tick: give a thread to every worker whose thread left
 * with an isolated task; create spares as needed, up to the bound.
 * Monitor only. */
void weft__thr_adopt_orphans(struct weft_rt *rt);

/* The pthread running worker w now (for signals). Any thread. */
pthread_t weft__thr_of(struct weft_rt *rt, weft_worker *w);

/* Signal handler on w's thread, interrupted context safe to leave (see
 * preempt.c): the thread keeps the running task under an isolation
 * identity and gives up w, which the monitor hands to a spare thread.
 * Returns 0 if no identity was free. (isolate.c) */
int weft__isolate_here(weft_worker *w);

/* An isolation identity claimed for / released by the calling thread;
 * release lowers nothing: restore_priority says whether the thread's
 * priority could be raised back (isolate.c). */
weft_worker *weft__iso_claim(struct weft_rt *rt);
void weft__iso_release(weft_worker *iso);
int weft__thr_restore_priority(void);
void weft__thr_lower_priority(void);

/* May the interrupted context be given a new identity (isolation): not
 * in weft's code; in the program's own code or blocked in a system call
 * the program made (preempt.c). Signal safe. */
int weft__isolate_uc_ok(void *uc);

#endif
