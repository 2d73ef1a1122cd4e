/*
 * sync_util.h - helpers shared by the synchronisation, channel and timer
 * tests (tests/api/test_mutex.c and friends, tests/stress/
 * test_sync_stress.c). White-box where a test must know that a waiter has
 * queued (the FIFO tests) or that no timer is left armed.
 */
#ifndef WEFT_TESTS_SYNC_UTIL_H
#define WEFT_TESTS_SYNC_UTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "internal.h"
#include "sync/wait.h"

/* Timing bounds are relaxed (never correctness checks) under sanitizers
 * and in the chaos build, whose ordered atomics stall by design (seeds 413
 * and 415: a 54-68 ms longest mutex wait against the 50 ms bound). */
#define SU_SLOW (TEST_TSAN ? 10 : TEST_ASAN ? 4 : TEST_CHAOS ? 4 : 1)

#define SU_MS UINT64_C(1000000)

static inline void su_sleep_ms(uint64_t ms)
{
    weft_sleep_ns(ms * SU_MS);
}

/* Poll `cond` (any thread: sleeps 100 us between looks) for up to 10 s
 * (scaled); fail the test if it never holds. */
#define WAIT_FOR(cond)                                                         \
    do {                                                                       \
        uint64_t wf_end_ = weft_now_ns() + (uint64_t)10000 * SU_MS * SU_SLOW;  \
        while (!(cond)) {                                                      \
            if (weft_now_ns() > wf_end_)                                       \
                weft_check_fail(__FILE__, __LINE__,                            \
                                "timed out waiting for %s", #cond);            \
            weft_sleep_ns(100000);                                             \
        }                                                                      \
    } while (0)

/* Number of nodes queued on a primitive's wait queue (mutex, cond, sem,
 * wait group: those whose queue lock is q->lock_). White-box. */
static inline unsigned su_wq_len(weft_waitq *q)
{
    _Atomic uint32_t *l = weft__wq_lock_word(q);
    weft__spin_lock(l);
    unsigned n = 0;
    weft_wnode *h = q->list_.head_, *x = h;
    if (h) /* a ring (sync/wait.h): round once */
        do
            n++;
        while ((x = x->next) != h);
    weft__spin_unlock(l);
    return n;
}

/* The calling worker's index, or -1 on a plain thread. White-box. */
static inline int su_worker_id(void)
{
    weft_worker *w = weft__worker_self();
    return w && w->current ? (int)w->id : -1;
}

/* No timer armed on any worker of rt. White-box. */
static inline void su_check_no_timers(weft_rt *rt)
{
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft_theap *h = &rt->workers[i].timers;
        weft__spin_lock(&h->lock);
        uint32_t n = h->n;
        weft__spin_unlock(&h->lock);
        if (n != 0)
            weft_check_fail(__FILE__, __LINE__,
                            "worker %u still has %u timers armed", i, n);
    }
}

static inline weft_task su_spawn(weft_rt *rt, weft_fn fn, void *arg)
{
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, fn, arg, NULL));
    return t;
}

static inline weft_task su_spawn_small(weft_rt *rt, weft_fn fn, void *arg)
{
    weft_task t;
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.stack = WEFT_STACK_SMALL;
    CHECK_OK(weft_spawn(rt, &t, fn, arg, &a));
    return t;
}

static inline void *su_join(weft_task t)
{
    void *r = NULL;
    CHECK_OK(weft_join(t, &r));
    return r;
}

static inline pthread_t su_thread(void *(*fn)(void *), void *arg)
{
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, fn, arg), 0);
    return th;
}

static inline void *su_thread_join(pthread_t th)
{
    void *r = NULL;
    CHECK_EQ_INT(pthread_join(th, &r), 0);
    return r;
}

static inline int su_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

#endif
