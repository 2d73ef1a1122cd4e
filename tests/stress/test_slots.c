/*
 * test_slots.c - the workers' slot caches (sched/slots.c) never make
 * max_tasks smaller: a spawn fails with -EAGAIN only when max_tasks tasks
 * are live, however many free slots sit in workers' caches, from a plain
 * thread or a task, at rest and while other tasks spawn and reap.
 *
 * Each test first checks that the caches do hold slots when it starts
 * filling up (so the reclaim is what it exercises); without the reclaim,
 * the fill-ups below stop short by the cached slots and the counts fail.
 */
#include <stdatomic.h>

#include "check.h"
#include "internal.h"

enum { MAX = 4 * 63, CHURNERS = 4, ROUNDS = 60 };

static _Atomic int churn_stop;

static void *nothing(void *arg)
{
    return arg;
}

static void *hold(void *arg)
{
    weft_sem *s = arg;
    CHECK_OK(weft_sem_wait(s));
    return NULL;
}

/* Spawn and join a child, over and over: fills this worker's cache. */
static void *churn(void *arg)
{
    long rounds = (long)(intptr_t)arg;
    for (long i = 0; rounds ? i < rounds : !atomic_load(&churn_stop); i++) {
        weft_task t;
        int err = weft_spawn(NULL, &t, nothing, (void *)(intptr_t)i, NULL);
        if (err == -EAGAIN) { /* the filler has the rest for now */
            weft_yield();
            continue;
        }
        CHECK_OK(err);
        void *r;
        CHECK_OK(weft_join(t, &r));
        CHECK_EQ_PTR(r, (void *)(intptr_t)i);
        if ((i & 15) == 0)
            weft_yield();
    }
    return NULL;
}

static uint64_t cached_total(weft_rt *rt)
{
    uint64_t n = 0;
    for (uint32_t l = 0; l < rt->sum.leaf_count; l++)
        n += (uint64_t)__builtin_popcountll(weft__slots_cached(rt, l));
    return n;
}

/* Churners on every worker, joined: caches filled, nothing live. */
static void warm_caches(weft_rt *rt)
{
    weft_task t[CHURNERS];
    for (int i = 0; i < CHURNERS; i++)
        CHECK_OK(weft_spawn(rt, &t[i], churn, (void *)(intptr_t)2000, NULL));
    for (int i = 0; i < CHURNERS; i++)
        CHECK_OK(weft_join(t[i], NULL));
    CHECK_CMP_U64(cached_total(rt), >, 0);
}

/* Spawn holders from the calling context until -EAGAIN; returns how
 * many; t gets their handles. */
static int fill(weft_rt *rt, weft_task *t, weft_sem *s)
{
    int n = 0, err;
    while ((err = weft_spawn(rt, &t[n], hold, s, NULL)) == 0)
        CHECK_CMP_INT(++n, <=, MAX);
    CHECK_ERR(err, -EAGAIN);
    return n;
}

static void release_all(weft_task *t, int n, weft_sem *s)
{
    for (int i = 0; i < n; i++)
        CHECK_OK(weft_sem_post(s));
    for (int i = 0; i < n; i++)
        CHECK_OK(weft_join(t[i], NULL));
}

TEST(stress, slots_plain_thread_fills_max_tasks_past_caches)
{
    weft_rt *rt = test_rt_workers(MAX, 4);
    static weft_task t[MAX + 1];
    weft_sem s;
    CHECK_OK(weft_sem_init(&s, 0));
    for (int round = 0; round < 5; round++) {
        warm_caches(rt);
        CHECK_EQ_INT(fill(rt, t, &s), MAX);
        release_all(t, MAX, &s);
    }
    CHECK_OK(weft_sem_destroy(&s));
    test_rt_destroy_clean(rt);
}

typedef struct {
    weft_rt *rt;
    weft_sem s;
    weft_task t[MAX + 1];
} task_fill;

static void *fill_from_task(void *arg)
{
    task_fill *f = arg;
    /* This task holds one slot; every other is spawnable. */
    CHECK_EQ_INT(fill(NULL, f->t, &f->s), MAX - 1);
    release_all(f->t, MAX - 1, &f->s);
    return NULL;
}

TEST(stress, slots_task_fills_max_tasks_past_caches)
{
    static task_fill f;
    f.rt = test_rt_workers(MAX, 4);
    CHECK_OK(weft_sem_init(&f.s, 0));
    for (int round = 0; round < 5; round++) {
        warm_caches(f.rt);
        test_run(f.rt, fill_from_task, &f);
    }
    CHECK_OK(weft_sem_destroy(&f.s));
    test_rt_destroy_clean(f.rt);
}

/* Churners keep spawning and reaping on every worker while a plain
 * thread fills the runtime up, ROUNDS times: each fill-up must reach
 * max_tasks less what the churners hold (each itself and at most one
 * child), and the churners' spawns that meet a full runtime must get
 * -EAGAIN, not lose a slot. At the end every slot is free again. */
TEST(stress, slots_reclaim_races_spawns_and_reaps)
{
    weft_rt *rt = test_rt_workers(MAX, 4);
    static weft_task t[MAX + 1];
    weft_sem s;
    CHECK_OK(weft_sem_init(&s, 0));
    atomic_store(&churn_stop, 0);
    weft_task c[CHURNERS];
    for (int i = 0; i < CHURNERS; i++)
        CHECK_OK(weft_spawn(rt, &c[i], churn, NULL, NULL));
    uint64_t reclaims0 = atomic_load(&rt->sc_reclaims);
    for (int round = 0; round < ROUNDS; round++) {
        int n = fill(rt, t, &s);
        CHECK_CMP_INT(n, >=, MAX - 2 * CHURNERS);
        release_all(t, n, &s);
    }
    /* Each fill-up ended in a reclaim (the map was full at least once
     * a round). */
    CHECK_CMP_U64(atomic_load(&rt->sc_reclaims) - reclaims0, >=, ROUNDS);
    atomic_store(&churn_stop, 1);
    for (int i = 0; i < CHURNERS; i++)
        CHECK_OK(weft_join(c[i], NULL));
    CHECK_OK(weft_sem_destroy(&s));
    test_rt_destroy_clean(rt);
}
