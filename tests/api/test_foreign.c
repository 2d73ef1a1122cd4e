/*
 * test_foreign.c - plain threads (unknown to the runtime) spawn into it
 * and join tasks, concurrently, including tasks another thread spawned.
 * Each result carries its producer and sequence number (provenance).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

enum { THREADS = 4, PER_THREAD = 500 };

static weft_rt *rt;

/* arg = thread << 32 | seq; the result echoes it, transformed. */
static void *echo(void *arg)
{
    uint64_t v = (uint64_t)(uintptr_t)arg;
    weft_yield();
    return (void *)(uintptr_t)(v * 3 + 1);
}

static void *producer(void *arg)
{
    uint64_t th = (uint64_t)(uintptr_t)arg;
    uint64_t total = 0;
    for (uint64_t i = 0; i < PER_THREAD; i++) {
        uint64_t v = th << 32 | i;
        weft_task t;
        void *r;
        CHECK_OK(weft_spawn(rt, &t, echo, (void *)(uintptr_t)v, NULL));
        CHECK_OK(weft_join(t, &r));
        CHECK_EQ_U64((uint64_t)(uintptr_t)r, v * 3 + 1);
        total += (uint64_t)(uintptr_t)r;
    }
    /* A batch in flight at once, joined in reverse. */
    weft_task batch[64];
    for (uint64_t i = 0; i < 64; i++)
        CHECK_OK(weft_spawn(rt, &batch[i], echo,
                            (void *)(uintptr_t)(th << 32 | (i + 1000)), NULL));
    for (int i = 63; i >= 0; i--) {
        void *r;
        CHECK_OK(weft_join(batch[i], &r));
        CHECK_EQ_U64((uint64_t)(uintptr_t)r,
                     (th << 32 | (uint64_t)(i + 1000)) * 3 + 1);
    }
    return (void *)(uintptr_t)total;
}

TEST_T(api, foreign_threads_spawn_and_join, 60)
{
    rt = test_rt(4096);
    pthread_t th[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, producer, (void *)i), 0);
    for (uint64_t i = 0; i < THREADS; i++) {
        void *r;
        CHECK_EQ_INT(pthread_join(th[i], &r), 0);
        uint64_t expect = 0;
        for (uint64_t k = 0; k < PER_THREAD; k++)
            expect += (i << 32 | k) * 3 + 1;
        CHECK_EQ_U64((uint64_t)(uintptr_t)r, expect);
    }
    weft_stats st = test_stats(rt);
    CHECK_EQ_U64(st.spawns, THREADS * (PER_THREAD + 64));
    test_rt_destroy_clean(rt);
}

/* Thread A spawns, thread B joins. */
static weft_task handoff[256];
static _Atomic int handed;

static void *spawner_thread(void *arg)
{
    (void)arg;
    for (uintptr_t i = 0; i < 256; i++) {
        CHECK_OK(weft_spawn(rt, &handoff[i], echo, (void *)i, NULL));
        atomic_store(&handed, (int)i + 1);
    }
    return NULL;
}

static void *joiner_thread(void *arg)
{
    (void)arg;
    for (uintptr_t i = 0; i < 256; i++) {
        while (atomic_load(&handed) <= (int)i)
            sched_yield();
        void *r;
        CHECK_OK(weft_join(handoff[i], &r));
        CHECK_EQ_U64((uintptr_t)r, i * 3 + 1);
    }
    return NULL;
}

TEST(api, foreign_join_task_spawned_by_other_thread)
{
    rt = test_rt(4096);
    pthread_t a, b;
    CHECK_EQ_INT(pthread_create(&b, NULL, joiner_thread, NULL), 0);
    CHECK_EQ_INT(pthread_create(&a, NULL, spawner_thread, NULL), 0);
    CHECK_EQ_INT(pthread_join(a, NULL), 0);
    CHECK_EQ_INT(pthread_join(b, NULL), 0);
    test_rt_destroy_clean(rt);
}

/* A plain thread joins a task that a task spawned (handle crosses from a
 * task to a plain thread). */
static _Atomic uint64_t inner_id;
static _Atomic int inner_go;

static void *inner(void *arg)
{
    while (!atomic_load(&inner_go))
        weft_yield();
    return arg;
}

static void *outer(void *arg)
{
    (void)arg;
    weft_task t;
    CHECK_OK(weft_spawn(NULL, &t, inner, (void *)77, NULL));
    atomic_store(&inner_id, t.id);
    return NULL;
}

TEST(api, foreign_join_task_spawned_by_task)
{
    rt = test_rt(64);
    test_run(rt, outer, NULL);
    weft_task t = {atomic_load(&inner_id)};
    CHECK_NE_INT(t.id, 0);
    atomic_store(&inner_go, 1);
    void *r;
    CHECK_OK(weft_join(t, &r));
    CHECK_EQ_PTR(r, (void *)77);
    test_rt_destroy_clean(rt);
}
