/*
 * test_wakeups.c - no lost wake-up between plain threads and the worker:
 * plain threads spawn into a runtime whose worker keeps going to sleep,
 * and block in weft_join until a task wakes them. A lost wake-up in
 * either direction leaves a thread or the worker asleep with work
 * pending, and the test times out (sched/worker.c, the sleeping
 * argument). Pauses now and then let the worker reach its futex sleep.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "check.h"

enum { THREADS = 4, ROUNDS = 20000 };

static weft_rt *rt;

static void *bump(void *arg)
{
    return (void *)((uintptr_t)arg + 1);
}

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void *hammer(void *arg)
{
    uintptr_t th = (uintptr_t)arg;
    uint64_t state = th * 0x9e3779b97f4a7c15ULL + 1;
    for (uintptr_t i = 0; i < ROUNDS; i++) {
        weft_task t;
        void *r;
        uintptr_t v = th << 24 | i;
        CHECK_OK(weft_spawn(rt, &t, bump, (void *)v, NULL));
        CHECK_OK(weft_join(t, &r));
        CHECK_EQ_U64((uintptr_t)r, v + 1);
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if ((state & 63) == 0)
            pause_us((long)(state >> 58) * 10); /* 0..630 us */
    }
    return NULL;
}

TEST_T(stress, foreign_wakeups_not_lost, 60)
{
    rt = test_rt(1024);
    pthread_t th[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, hammer, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_join(th[i], NULL), 0);
    CHECK_EQ_U64(test_stats(rt).spawns, THREADS * ROUNDS);
    test_rt_destroy_clean(rt);
}

/* Tasks park on each other in chains while plain threads join the chain
 * ends: every wake-up crosses from a task to a task or to a thread. */
static void *chain(void *arg)
{
    uintptr_t n = (uintptr_t)arg;
    if (!n)
        return (void *)1;
    weft_task t;
    void *r;
    CHECK_OK(weft_spawn(NULL, &t, chain, (void *)(n - 1), NULL));
    if (n % 3 == 0)
        weft_yield();
    CHECK_OK(weft_join(t, &r));
    return (void *)((uintptr_t)r + 1);
}

static void *chain_thread(void *arg)
{
    (void)arg;
    for (uintptr_t i = 0; i < 500; i++) {
        weft_task t;
        void *r;
        uintptr_t len = 1 + i % 50;
        CHECK_OK(weft_spawn(rt, &t, chain, (void *)len, NULL));
        CHECK_OK(weft_join(t, &r));
        CHECK_EQ_U64((uintptr_t)r, len + 1);
        if (i % 16 == 0)
            pause_us(200);
    }
    return NULL;
}

TEST_T(stress, park_chains_with_plain_joiners, 60)
{
    rt = test_rt(4096);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, chain_thread, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_join(th[i], NULL), 0);
    test_rt_destroy_clean(rt);
}
