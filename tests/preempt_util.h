/*
 * preempt_util.h - what the preemption and isolation tests share: the
 * ThreadSanitizer skip (TSan defers asynchronous signals until the thread
 * calls a function it intercepts, and a spinning task calls none, so the
 * monitor's signal is never handled while the task spins) and a
 * one-worker runtime in which every task shares that worker.
 */
#ifndef WEFT_TESTS_PREEMPT_UTIL_H
#define WEFT_TESTS_PREEMPT_UTIL_H

#include "check.h"

static inline void skip_tsan(void)
{
    if (TEST_TSAN)
        TEST_SKIP("TSan defers asynchronous signals (tests/preempt_util.h)");
}

/* One worker, 64 slots, preemption only for WEFT_PREEMPTIBLE tasks. */
static inline weft_rt *rt1(void)
{
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 1;
    cfg.max_tasks = 64;
    cfg.preempt_all = 0;
    return test_rt_cfg(&cfg);
}

/* ---- how long a task waits behind a preemptible hog -------------------- */

/* On a one-worker runtime (rt1): a preemptible hog spins until the probe
 * spawned after it runs, or gives up after 3 s; returns how long after the
 * hog started the probe ran. Without preemption that is the hog's 3 s, so
 * a caller checks the figure instead of hanging. */
typedef struct hog_probe {
    _Atomic int stop;
    _Atomic uint64_t hog_t0, probe_t;
} hog_probe;

static inline void *hp_hog(void *arg)
{
    hog_probe *hp = arg;
    uint64_t t0 = weft_now_ns();
    atomic_store(&hp->hog_t0, t0);
    while (!atomic_load_explicit(&hp->stop, memory_order_relaxed) &&
           weft_now_ns() - t0 < 3000000000ull)
        ;
    return NULL;
}

static inline void *hp_probe(void *arg)
{
    hog_probe *hp = arg;
    atomic_store(&hp->probe_t, weft_now_ns());
    atomic_store(&hp->stop, 1);
    return NULL;
}

static inline void *hp_main(void *arg)
{
    static const weft_spawn_attr pre = {WEFT_PRIO_NORMAL, WEFT_STACK_DEFAULT,
                                        WEFT_PREEMPTIBLE, "hog"};
    weft_task h, p;
    CHECK_OK(weft_spawn(NULL, &h, hp_hog, arg, &pre));
    weft_yield(); /* the hog starts and holds the worker */
    CHECK_OK(weft_spawn(NULL, &p, hp_probe, arg, NULL));
    CHECK_OK(weft_join(p, NULL));
    CHECK_OK(weft_join(h, NULL));
    return NULL;
}

static inline uint64_t wait_behind_hog(weft_rt *rt)
{
    hog_probe hp = {0, 0, 0};
    test_run(rt, hp_main, &hp);
    return atomic_load(&hp.probe_t) - atomic_load(&hp.hog_t0);
}

#endif
