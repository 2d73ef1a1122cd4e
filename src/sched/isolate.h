/*
 * isolate.h - a runtime's threads, and isolation: a thread that keeps a
 * task and gives its worker to another thread (isolate.c).
 */
#ifndef WEFT_SCHED_ISOLATE_H
#define WEFT_SCHED_ISOLATE_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "worker.h"

/* One OS thread of a runtime (isolate.c). */
typedef struct weft_thr {
    pthread_t th; /* set before anyone signals it */
    struct weft_rt *rt;
    char *altstack;         /* the signal stack installed on it now
                               (arena; sigstack.c): it changes when a
                               preempted task leaves with it or brings
                               one; its own thread only */
    char *spare;            /* taken from the pool for the preemption
                               under way; its own thread only */
    sigset_t mask;          /* its mask while that preemption's switch
                               blocks every signal; its own thread */
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

/* Signal stacks (sigstack.c): one per thread plus the pool that
 * preempted tasks take theirs from. count: how many a runtime has; init
 * (creator, after the thread table: the first nthr are the threads')
 * returns -1 without memory. */
#define WEFT_SIGSTACK_SPARE 256u
uint32_t weft__sigstack_count(uint32_t nthr, uint32_t max_tasks);
int weft__sigstack_init(struct weft_rt *rt, char *base);
void weft__sigstack_fini(struct weft_rt *rt);

/* The SIGURG handler's side, on w's thread; all signal safe. current:
 * the thread's signal stack (the handler's frame is on it). reserve: a
 * spare for the thread before a preemption, 0 if the pool is empty;
 * unreserve gives it back. leave: block every signal for the switch out.
 * install (the entered side of that switch, MSG_PREEMPT): the spare
 * becomes the thread's signal stack, the mask is restored. adopt (the
 * preempted task, resumed): `mine` becomes this thread's signal stack,
 * the one it had goes to the pool, and uc's saved stack names `mine` for
 * the sigreturn; every signal is blocked until then. */
char *weft__sigstack_current(weft_worker *w);
int weft__sigstack_reserve(weft_worker *w);
void weft__sigstack_unreserve(weft_worker *w);
void weft__sigstack_leave(weft_worker *w);
void weft__sigstack_install(weft_worker *w);
void weft__sigstack_adopt(weft_worker *w, char *mine, void *uc);

/* May the interrupted context be given a new identity (isolation): not
 * in weft's code; in the program's own code or blocked in a system call
 * the program made (preempt.c). Signal safe. */
int weft__isolate_uc_ok(void *uc);

#endif
