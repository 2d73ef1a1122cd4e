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
#include <string.h>
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

/* ---- two wakers, one WAKE bit ------------------------------------------
 * 64 tasks on 2 workers make weft_block_on calls back to back, each with
 * a function that returns at once, so the pool thread that ran a task's
 * call may still be in its unpark when the task, already past that wait
 * (it saw the woken flag after a spurious return), parks in its next
 * one, and the next call's pool thread finds the WAKE bit the late one
 * set. The second waker must still order its woken flag before the
 * task's next look at it (sched/wake.c, unpark): with an "already set,
 * return" the task consumed the first waker's bit, read its flag before
 * the second waker's store reached it, and parked for good (5 of 64
 * tasks within 1.3M calls in a Release build). Runs for BB_SECONDS; a
 * task with no progress for 5 s while the others finish fails it, naming
 * the task and its count. */

enum { BB_TASKS = 64 };
#define BB_SECONDS (TEST_SANITIZED ? 3u : 6u)

typedef struct {
    _Atomic uint64_t calls[BB_TASKS];
    _Atomic int stop;
} bb_ctx;

static void *bb_fn(void *arg)
{
    return (void *)((uintptr_t)arg + 1);
}

static bb_ctx *g_bb;

static void *bb_task(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    while (!atomic_load_explicit(&g_bb->stop, memory_order_relaxed)) {
        void *r = NULL;
        CHECK_OK(weft_block_on(bb_fn, (void *)i, &r));
        CHECK_EQ_U64((uintptr_t)r, i + 1);
        atomic_fetch_add_explicit(&g_bb->calls[i], 1, memory_order_relaxed);
    }
    return NULL;
}

TEST_T(stress, blocking_back_to_back_wakes, 60)
{
    static bb_ctx c;
    memset(&c, 0, sizeof c);
    g_bb = &c;
    weft_rt *rt = test_rt_workers(256, 2);
    weft_task t[BB_TASKS];
    for (uintptr_t i = 0; i < BB_TASKS; i++)
        CHECK_OK(weft_spawn(rt, &t[i], bb_task, (void *)i, NULL));
    uint64_t t0 = weft_now_ns(), last[BB_TASKS] = {0}, since[BB_TASKS];
    for (int i = 0; i < BB_TASKS; i++)
        since[i] = t0;
    for (;;) {
        pause_us(20000);
        uint64_t now = weft_now_ns(), total = 0;
        if (now - t0 >= (uint64_t)BB_SECONDS * 1000000000u)
            atomic_store(&c.stop, 1);
        int stopped = atomic_load(&c.stop), live = 0;
        for (int i = 0; i < BB_TASKS; i++) {
            uint64_t n = atomic_load(&c.calls[i]);
            total += n;
            weft_task_info ti;
            if (weft_task_info_get(t[i], &ti) == 0 &&
                ti.state == WEFT_STATE_DONE)
                continue;
            live++;
            if (n != last[i]) {
                last[i] = n;
                since[i] = now;
            } else if (now - since[i] > 5000000000u) {
                weft_check_fail(__FILE__, __LINE__,
                                "task %d made no weft_block_on call for 5 s "
                                "(stuck after %llu calls; %llu calls by all)",
                                i, (unsigned long long)n,
                                (unsigned long long)total);
            }
        }
        if (stopped && !live)
            break;
    }
    for (int i = 0; i < BB_TASKS; i++)
        CHECK_OK(weft_join(t[i], NULL));
    test_rt_destroy_clean(rt);
}
