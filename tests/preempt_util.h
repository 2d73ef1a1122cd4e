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

#endif
