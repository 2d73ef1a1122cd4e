/*
 * internal.h - test-only access to weft's internals (STYLE.md practice 14).
 *
 * White-box tests (tests/unit/, and the clean-teardown check every test
 * ends with) include this to reach the runtime object, the summary tree,
 * the stack pools and the task control blocks. The test binary links the
 * library's object files directly (weft_obj), so the hidden weft__*
 * functions are callable here. Nothing outside tests/ may include it.
 */
#ifndef WEFT_TESTS_INTERNAL_H
#define WEFT_TESTS_INTERNAL_H

#include "../src/base/check.h"
#include "../src/mem/stack.h"
#include "../src/mem/summary.h"
#include "../src/rt/rt.h"
#include "../src/sched/sched.h"
#include "../src/sched/slots.h"
#include "../src/sched/task.h"

/* The state word of the calling task (white-box); 0 outside a task. */
static inline uint64_t test_self_state(void)
{
    weft_worker *w = weft__worker_self();
    if (!w || !w->current)
        return 0;
    return atomic_load_explicit(&w->current->state, memory_order_relaxed);
}

/* Preemption requests the SIGURG handler turned down, all workers. */
static inline uint64_t test_preempt_refused(struct weft_rt *rt)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < rt->nworkers; i++)
        n += atomic_load_explicit(&rt->workers[i].st.preempt_refused,
                                  memory_order_relaxed);
    return n;
}

#endif
