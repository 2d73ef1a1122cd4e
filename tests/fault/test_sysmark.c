/*
 * test_sysmark.c - every system call that weft's own code makes while a
 * task runs is marked (src/base/sysmark.h), so that a preemption or an
 * isolation never lands inside weft with a worker's state held below
 * the interrupted call. The calls go through the seam's wrappers
 * (inject.h), which count unmarked ones made from weft's text on a task.
 *
 * The workload drives each path that reaches the kernel from a task:
 * tasks of all four bands yielding (the DRR band order reads the
 * thread's CPU clock), timed waits (timer heaps behind spin locks, the
 * clock), spawns from a plain thread (the injection queue's lock), and
 * more stacks than the pool keeps (their release with madvise).
 */
#include <pthread.h>

#include "check.h"
#include "inject.h"

#define YIELDS 2000

static void *yielder(void *arg)
{
    (void)arg;
    for (int i = 0; i < YIELDS; i++)
        weft_yield();
    return NULL;
}

static void *sleeper(void *arg)
{
    (void)arg;
    weft_sem never = WEFT_SEM_INIT(0);
    for (int i = 0; i < 20; i++) {
        CHECK_OK(weft_sleep_ns(100000));
        CHECK_EQ_INT(weft_sem_wait_until(&never, 0), -ETIMEDOUT);
    }
    return NULL;
}

static void *leaf(void *arg)
{
    return arg;
}

static void *spawner(void *arg)
{
    weft_rt *rt = arg;
    for (int round = 0; round < 20; round++) {
        weft_task t[64];
        for (int i = 0; i < 64; i++)
            CHECK_OK(weft_spawn(rt, &t[i], leaf, NULL, NULL));
        for (int i = 0; i < 64; i++)
            CHECK_OK(weft_join(t[i], NULL));
    }
    return NULL;
}

TEST_T(fault, weft_system_calls_from_tasks_are_marked, 60)
{
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 2;
    cfg.max_tasks = 1024;
    cfg.stack_keep = 4; /* release stacks beyond four (madvise) */
    weft_rt *rt;
    CHECK_OK(weft_rt_create(&rt, &cfg));
    fault_unmarked_reset();
    pthread_t plain;
    CHECK_OK(pthread_create(&plain, NULL, spawner, rt));
    weft_task t[32];
    int n = 0;
    for (int b = 0; b < 4; b++)
        for (int k = 0; k < 4; k++) {
            weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
            a.priority = b * 4 + k % 4;
            CHECK_OK(
                weft_spawn(rt, &t[n++], k < 3 ? yielder : sleeper, NULL, &a));
        }
    for (int i = 0; i < n; i++)
        CHECK_OK(weft_join(t[i], NULL));
    CHECK_OK(pthread_join(plain, NULL));
    void *at;
    unsigned bad = fault_unmarked(&at);
    if (bad)
        fprintf(stderr,
                "# %u unmarked calls from weft's code on a task, "
                "the last from %p\n",
                bad, at);
    CHECK_EQ_INT(bad, 0);
    CHECK_OK(weft_rt_shutdown(rt));
    CHECK_OK(weft_rt_destroy(rt));
}
