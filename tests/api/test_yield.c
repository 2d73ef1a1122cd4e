/*
 * test_yield.c - weft_yield lets every other ready task run once, then
 * continues: tasks that only yield run round-robin.
 */
#include <stdatomic.h>

#include "check.h"

enum { NTASKS = 3, ROUNDS = 200 };

static int log_ids[NTASKS * ROUNDS];
static _Atomic int log_len;

static void *append_and_yield(void *arg)
{
    int id = (int)(uintptr_t)arg;
    for (int i = 0; i < ROUNDS; i++) {
        int k = atomic_fetch_add(&log_len, 1);
        log_ids[k] = id;
        weft_yield();
    }
    return NULL;
}

static void *three_yielders(void *arg)
{
    (void)arg;
    weft_task t[NTASKS];
    for (int i = 0; i < NTASKS; i++)
        CHECK_OK(weft_spawn(NULL, &t[i], append_and_yield,
                            (void *)(uintptr_t)(i + 1), NULL));
    for (int i = 0; i < NTASKS; i++)
        CHECK_OK(weft_join(t[i], NULL));
    return NULL;
}

TEST(api, yield_round_robin)
{
    /* Round-robin order is per worker: run the three on one. */
    weft_rt *rt = test_rt_workers(64, 1);
    test_run(rt, three_yielders, NULL);
    CHECK_EQ_INT(atomic_load(&log_len), NTASKS * ROUNDS);
    /* Each round holds every task once, in the same order as the first. */
    int seen = 0;
    for (int k = 0; k < NTASKS; k++)
        seen |= 1 << log_ids[k];
    CHECK_EQ_INT(seen, 0xe); /* ids 1, 2, 3 */
    for (int r = 1; r < ROUNDS; r++)
        for (int k = 0; k < NTASKS; k++)
            if (log_ids[r * NTASKS + k] != log_ids[k])
                weft_check_fail(__FILE__, __LINE__,
                                "round %d position %d: task %d, expected %d", r,
                                k, log_ids[r * NTASKS + k], log_ids[k]);
    test_rt_destroy_clean(rt);
}

/* A yielder next to a task that keeps spawning: the yielder still gets a
 * turn every round (spawned tasks do not starve yielded ones forever). */
static _Atomic int yielder_turns, spawner_done;

static void *quick(void *arg)
{
    return arg;
}

static void *counting_yielder(void *arg)
{
    (void)arg;
    while (!atomic_load(&spawner_done)) {
        atomic_fetch_add(&yielder_turns, 1);
        weft_yield();
    }
    return NULL;
}

static void *spawner(void *arg)
{
    (void)arg;
    weft_task y;
    CHECK_OK(weft_spawn(NULL, &y, counting_yielder, NULL, NULL));
    for (int i = 0; i < 1000; i++) {
        weft_task t;
        CHECK_OK(weft_spawn(NULL, &t, quick, NULL, NULL));
        CHECK_OK(weft_join(t, NULL));
        weft_yield();
    }
    CHECK_CMP_INT(atomic_load(&yielder_turns), >=, 900);
    atomic_store(&spawner_done, 1);
    CHECK_OK(weft_join(y, NULL));
    return NULL;
}

TEST(api, yield_not_starved_by_spawns)
{
    /* One worker: with two, the yielder may be moved to (steal mode: taken
     * by) the other worker and run there, so the test would not show
     * that the spawner's own worker gives it its turns. In mesh mode the
     * move can also land it on a worker that takes milliseconds to wake,
     * which says nothing about starvation. */
    weft_rt *rt = test_rt_workers(64, 1);
    test_run(rt, spawner, NULL);
    test_rt_destroy_clean(rt);
}
