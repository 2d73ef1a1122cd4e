/*
 * test_cancel.c - what a new user hit: a task of one runtime joining a
 * task of another, and objects that outlive the runtime whose tasks wait
 * on them. Written from weft.h alone: weft_rt_shutdown ends every wait of
 * the runtime's tasks with -ECANCELED, weft_rt_destroy leaves nothing
 * outside the runtime pointing into it, and the objects keep working.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"

/* ---- joins across runtimes --------------------------------------------- */

static weft_rt *rt_a;

static void *child_yields(void *arg)
{
    for (intptr_t i = 0; i < (intptr_t)arg; i++)
        weft_yield();
    return (void *)(intptr_t)(42 + (intptr_t)arg);
}

static void *child_sleeps(void *arg)
{
    weft_sleep_ns((uint64_t)(uintptr_t)arg);
    return (void *)7;
}

/* A task of runtime C spawns into runtime A and joins: children that end
 * before, during and long after the join starts. */
static void *join_across(void *arg)
{
    (void)arg;
    for (intptr_t i = 0; i < 200; i++) {
        weft_task t;
        void *r;
        CHECK_OK(weft_spawn(rt_a, &t, child_yields, (void *)(i % 8), NULL));
        if (i % 3 == 0)
            weft_yield();
        CHECK_OK(weft_join(t, &r));
        CHECK_EQ_PTR(r, (void *)(42 + i % 8));
    }
    for (int i = 0; i < 5; i++) {
        weft_task t;
        void *r;
        CHECK_OK(weft_spawn(rt_a, &t, child_sleeps, (void *)20000000, NULL));
        CHECK_OK(weft_join(t, &r)); /* still running: parks */
        CHECK_EQ_PTR(r, (void *)7);
    }
    return (void *)1;
}

TEST_T(api, join_task_of_another_runtime, 30)
{
    rt_a = test_rt(256);
    weft_rt *rt_c = test_rt(256);
    CHECK_EQ_PTR(test_run(rt_c, join_across, NULL), (void *)1);
    test_rt_destroy_clean(rt_c);
    test_rt_destroy_clean(rt_a);
}

/* ---- waits that shutdown cancels --------------------------------------- */

/* Objects that outlive the runtime. */
static weft_mutex g_mu, g_held; /* g_held: the main thread holds it */
static weft_cond g_cv;
static weft_sem g_sem;
static weft_wg g_wg;
static weft_event g_ev;
static weft_chan *g_chs, *g_chr, *g_sel[2]; /* rendezvous channels */
static weft_task g_far; /* a task of another runtime, never ending */
static _Atomic int far_go;

enum {
    W_MUTEX,
    W_COND,
    W_SEM,
    W_WG,
    W_EVENT,
    W_SEND,
    W_RECV,
    W_SELECT,
    W_SLEEP,
    W_JOIN_FAR,
    W_JOIN_SAME,
    W_UNTIL, /* a deadline wait (sem) cut short by shutdown */
    W_KINDS
};

static const weft_spawn_attr detached = {.priority = WEFT_PRIO_NORMAL,
                                         .flags = WEFT_DETACHED};

static _Atomic int results[W_KINDS];
static _Atomic int entered[W_KINDS];

static void *forever(void *arg)
{
    (void)arg;
    while (!atomic_load(&far_go))
        weft_sleep_ns(1000000);
    return NULL;
}

static void *waiter(void *arg)
{
    int k = (int)(intptr_t)arg;
    int r = 1;
    int v = 0;
    atomic_store(&entered[k], 1);
    switch (k) {
    case W_MUTEX:
        r = weft_mutex_lock(&g_held);
        break;
    case W_COND:
        CHECK_OK(weft_mutex_lock(&g_mu));
        r = weft_cond_wait(&g_cv, &g_mu);
        /* A cond wait returns with its mutex held, cancelled or not. */
        CHECK_OK(weft_mutex_unlock(&g_mu));
        break;
    case W_SEM:
        r = weft_sem_wait(&g_sem);
        break;
    case W_WG:
        r = weft_wg_wait(&g_wg);
        break;
    case W_EVENT:
        r = weft_event_wait(&g_ev);
        break;
    case W_SEND:
        v = 5;
        r = weft_chan_send(g_chs, &v); /* nobody receives */
        break;
    case W_RECV:
        r = weft_chan_recv(g_chr, &v); /* nobody sends */
        break;
    case W_SELECT: {
        weft_sel_case c[2] = {{g_sel[0], WEFT_SEL_RECV, &v, 0},
                              {g_sel[1], WEFT_SEL_SEND, &v, 0}};
        r = weft_select(c, 2);
        break;
    }
    case W_SLEEP:
        r = weft_sleep_ns(60ull * 1000000000ull);
        break;
    case W_JOIN_FAR:
        r = weft_join(g_far, NULL);
        break;
    case W_JOIN_SAME: {
        /* Another stack class: never run inline by the join. */
        weft_spawn_attr a = {.priority = WEFT_PRIO_NORMAL,
                             .stack = WEFT_STACK_SMALL};
        weft_task t;
        CHECK_OK(weft_spawn(NULL, &t, forever, NULL, &a));
        r = weft_join(t, NULL);
        break;
    }
    case W_UNTIL:
        r = weft_sem_wait_until(&g_sem, weft_now_ns() + 60000000000ull);
        break;
    }
    atomic_store(&results[k], r);
    return NULL;
}

static void objects_init(void)
{
    CHECK_OK(weft_mutex_init(&g_mu));
    CHECK_OK(weft_mutex_init(&g_held));
    CHECK_OK(weft_cond_init(&g_cv));
    CHECK_OK(weft_sem_init(&g_sem, 0));
    CHECK_OK(weft_wg_init(&g_wg));
    CHECK_OK(weft_wg_add(&g_wg, 1));
    CHECK_OK(weft_event_init(&g_ev));
    CHECK_OK(weft_chan_create(&g_chs, sizeof(int), 0));
    CHECK_OK(weft_chan_create(&g_chr, sizeof(int), 0));
    for (int i = 0; i < 2; i++)
        CHECK_OK(weft_chan_create(&g_sel[i], sizeof(int), 0));
}

/* Every kind of wait parked in rt, on objects outside it; shutdown wakes
 * each with -ECANCELED; destroy returns 0; the objects then work from a
 * plain thread as if those waiters had never been. */
static void cancel_every_wait(unsigned workers)
{
    objects_init();
    weft_rt *far = test_rt(64);
    atomic_store(&far_go, 0);
    CHECK_OK(weft_spawn(far, &g_far, forever, NULL, NULL));
    weft_rt *rt = test_rt_workers(256, workers);
    CHECK_OK(weft_mutex_lock(&g_held));
    for (int k = 0; k < W_KINDS; k++) {
        atomic_store(&results[k], 1);
        atomic_store(&entered[k], 0);
        CHECK_OK(weft_spawn(rt, NULL, waiter, (void *)(intptr_t)k, &detached));
    }
    /* Let every waiter block. */
    uint64_t end = test_now_ms() + 10000;
    for (int k = 0; k < W_KINDS; k++)
        while (!atomic_load(&entered[k]) && test_now_ms() < end)
            usleep(100);
    usleep(50000);
    for (int k = 0; k < W_KINDS; k++)
        CHECK_EQ_INT(atomic_load(&results[k]), 1); /* all still blocked */

    CHECK_OK(weft_rt_shutdown(rt));
    for (int k = 0; k < W_KINDS; k++) {
        while (atomic_load(&results[k]) == 1 && test_now_ms() < end)
            usleep(100);
        CHECK_ERR(atomic_load(&results[k]), -ECANCELED);
    }
    CHECK_OK(weft_rt_destroy(rt));
    CHECK_OK(weft_mutex_unlock(&g_held));

    /* The objects, used after the runtime is gone: no waiter of it may be
     * found in them (before the fix: SIGSEGV in the event's set). */
    CHECK_OK(weft_event_set(&g_ev));
    CHECK_OK(weft_event_wait(&g_ev));
    CHECK_OK(weft_sem_post(&g_sem));
    CHECK_OK(weft_sem_try_wait(&g_sem));
    CHECK_OK(weft_wg_done(&g_wg));
    CHECK_OK(weft_wg_wait(&g_wg));
    CHECK_OK(weft_cond_broadcast(&g_cv));
    CHECK_OK(weft_mutex_lock(&g_mu));
    CHECK_OK(weft_mutex_unlock(&g_mu));
    CHECK_OK(weft_mutex_lock(&g_held));
    CHECK_OK(weft_mutex_unlock(&g_held));
    CHECK_OK(weft_mutex_destroy(&g_held));
    int v = 9;
    weft_chan *all[4] = {g_chs, g_chr, g_sel[0], g_sel[1]};
    for (int i = 0; i < 4; i++) {
        /* Nobody waits on them any more. */
        CHECK_ERR(weft_chan_try_send(all[i], &v), -EAGAIN);
        CHECK_ERR(weft_chan_try_recv(all[i], &v), -EAGAIN);
        CHECK_OK(weft_chan_close(all[i]));
        CHECK_OK(weft_chan_destroy(all[i]));
    }
    CHECK_OK(weft_event_destroy(&g_ev));
    CHECK_OK(weft_sem_destroy(&g_sem));
    CHECK_OK(weft_wg_destroy(&g_wg));
    CHECK_OK(weft_cond_destroy(&g_cv));
    CHECK_OK(weft_mutex_destroy(&g_mu));
    /* The cancelled join of the far task detached it: it is reaped when
     * it ends. */
    CHECK_ERR(weft_join(g_far, NULL), -EINVAL);
    atomic_store(&far_go, 1);
    test_wait_live(far, 0, 5000);
    test_rt_destroy_clean(far);
}

TEST_T(api, shutdown_cancels_every_wait, 30)
{
    cancel_every_wait(2);
}

TEST_T(api, shutdown_cancels_every_wait_one_worker, 30)
{
    cancel_every_wait(1);
}

/* After shutdown, a task's call that would block returns at once. */
static void *block_after_shutdown(void *arg)
{
    weft_rt *rt = arg;
    weft_sem s;
    CHECK_OK(weft_sem_init(&s, 1));
    CHECK_OK(weft_rt_shutdown(rt));
    CHECK_OK(weft_sem_wait(&s)); /* need not block: succeeds */
    uint64_t t0 = weft_now_ns();
    CHECK_ERR(weft_sem_wait(&s), -ECANCELED);
    CHECK_ERR(weft_sleep_ns(1000000000), -ECANCELED);
    CHECK_ERR(weft_sem_wait_until(&s, weft_now_ns() + 1000000000), -ECANCELED);
    CHECK_CMP_U64(weft_now_ns() - t0, <, 500000000);
    CHECK_OK(weft_sem_destroy(&s));
    return (void *)1;
}

TEST(api, blocking_call_after_shutdown_is_cancelled)
{
    weft_rt *rt = test_rt(64);
    CHECK_EQ_PTR(test_run(rt, block_after_shutdown, rt), (void *)1);
    test_rt_destroy_clean(rt);
}

/* A task joining its own child after shutdown, child still running: the
 * join is cancelled, and the child, detached by it, is reaped when it
 * ends (destroy finds nothing live). */
static _Atomic int child_release;

static void *child_waits_flag(void *arg)
{
    (void)arg;
    while (!atomic_load(&child_release))
        weft_yield();
    return (void *)3;
}

static void *join_cancelled(void *arg)
{
    weft_rt *rt = arg;
    weft_task t;
    weft_spawn_attr at = {.priority = WEFT_PRIO_NORMAL,
                          .stack = WEFT_STACK_SMALL};
    CHECK_OK(weft_spawn(NULL, &t, child_waits_flag, NULL, &at));
    weft_yield(); /* it starts (stack class differs: never run inline) */
    CHECK_OK(weft_rt_shutdown(rt));
    CHECK_ERR(weft_join(t, NULL), -ECANCELED);
    CHECK_ERR(weft_join(t, NULL), -EINVAL); /* detached now */
    atomic_store(&child_release, 1);
    return (void *)1;
}

TEST(api, join_after_shutdown_cancelled_child_reaped)
{
    weft_rt *rt = test_rt(64);
    CHECK_EQ_PTR(test_run(rt, join_cancelled, rt), (void *)1);
    test_wait_live(rt, 0, 5000);
    test_rt_destroy_clean(rt);
}

/* A plain thread joining a task that its runtime's destroy abandons: the
 * join returns -ECANCELED instead of waiting forever (or reading the
 * unmapped arena). */
static void *plain_join(void *arg)
{
    weft_task *t = arg;
    return (void *)(intptr_t)weft_join(*t, NULL);
}

static void *spin_yield_forever(void *arg)
{
    (void)arg;
    for (;;)
        weft_yield();
    return NULL;
}

TEST_T(api, plain_joiner_of_abandoned_task_cancelled, 10)
{
    weft_rt *rt = test_rt_workers(64, 1);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, spin_yield_forever, NULL, NULL));
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, plain_join, &t), 0);
    usleep(50000);
    CHECK_OK(weft_rt_shutdown(rt));
    CHECK_OK(weft_rt_destroy(rt));
    void *r;
    CHECK_EQ_INT(pthread_join(th, &r), 0);
    CHECK_ERR((int)(intptr_t)r, -ECANCELED);
}

/* Wakers from outside in flight while the runtime goes: plain threads
 * post a semaphore that the runtime's tasks wait on, in a loop, while the
 * runtime is shut down and destroyed; many rounds. Under ASan a waker
 * left touching the unmapped arena is a crash. */
static weft_sem churn_sem;
static _Atomic int churn_stop;

static void *churn_poster(void *arg)
{
    (void)arg;
    while (!atomic_load(&churn_stop))
        weft_sem_post(&churn_sem);
    return NULL;
}

static void *churn_waiter(void *arg)
{
    (void)arg;
    /* It yields between takes: a task that never switches would keep
     * destroy waiting (weft.h). */
    while (weft_sem_wait(&churn_sem) == 0)
        weft_yield();
    return NULL;
}

TEST_T(api, destroy_with_outside_wakers_in_flight, 60)
{
    CHECK_OK(weft_sem_init(&churn_sem, 0));
    atomic_store(&churn_stop, 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, churn_poster, NULL), 0);
    for (int round = 0; round < 60; round++) {
        weft_rt *rt = test_rt(128);
        for (int i = 0; i < 16; i++)
            CHECK_OK(weft_spawn(rt, NULL, churn_waiter, NULL, &detached));
        usleep(round % 5 * 1000);
        CHECK_OK(weft_rt_shutdown(rt));
        CHECK_OK(weft_rt_destroy(rt));
    }
    atomic_store(&churn_stop, 1);
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(pthread_join(th[i], NULL), 0);
    /* Drain what the posters left; no waiter may remain queued. */
    while (weft_sem_try_wait(&churn_sem) == 0)
        ;
    CHECK_OK(weft_sem_destroy(&churn_sem));
}

/* The report as it was: a global event, a task of R parked on it,
 * shutdown and destroy, then a set from a plain thread (before: SIGSEGV,
 * the waiter record was in R's unmapped arena). */
static weft_event lone_ev;

static void *lone_wait(void *arg)
{
    (void)arg;
    weft_event_wait(&lone_ev);
    return NULL;
}

TEST_T(api, event_set_after_waiters_runtime_destroyed, 10)
{
    CHECK_OK(weft_event_init(&lone_ev));
    weft_rt *rt = test_rt(64);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, lone_wait, NULL, NULL));
    weft_task_info ti;
    uint64_t end = test_now_ms() + 5000;
    do {
        usleep(100);
        CHECK_OK(weft_task_info_get(t, &ti));
    } while (ti.state != WEFT_STATE_PARKED && test_now_ms() < end);
    CHECK_EQ_INT(ti.state, WEFT_STATE_PARKED);
    CHECK_OK(weft_rt_shutdown(rt));
    CHECK_OK(weft_rt_destroy(rt));
    CHECK_OK(weft_event_set(&lone_ev));
    CHECK_OK(weft_event_destroy(&lone_ev));
}

/* Found by the soak: a task of runtime A joins a task T of runtime B; B
 * is shut down and destroyed at once. T ends when its wait is cancelled
 * and its finisher wakes the joiner normally, which then reads T's state,
 * result and slot in B's arena: destroy must wait for it (before: SIGSEGV
 * within a few hundred rounds). */
static weft_event xj_ev;
static weft_task xj_target;

static void *xj_waiter(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)weft_event_wait(&xj_ev);
}

static void *xj_joiner(void *arg)
{
    (void)arg;
    void *r = NULL;
    int rc = weft_join(xj_target, &r);
    CHECK(rc == 0 || rc == -ECANCELED);
    if (rc == 0)
        CHECK_EQ_PTR(r, (void *)(intptr_t)-ECANCELED);
    return NULL;
}

TEST_T(api, destroy_waits_for_outside_joiner_of_ended_task, 120)
{
    CHECK_OK(weft_event_init(&xj_ev));
    weft_rt *a = test_rt(256);
    for (int i = 0; i < 2000; i++) {
        weft_config cfg;
        weft_config_default(&cfg);
        cfg.workers = 1;
        cfg.max_tasks = 64;
        weft_rt *b = test_rt_cfg(&cfg);
        weft_task j;
        CHECK_OK(weft_spawn(b, &xj_target, xj_waiter, NULL, NULL));
        CHECK_OK(weft_spawn(a, &j, xj_joiner, NULL, NULL));
        weft_task_info in;
        while (weft_task_info_get(j, &in) == 0 && in.state != WEFT_STATE_PARKED)
            usleep(20);
        CHECK_OK(weft_rt_shutdown(b));
        CHECK_OK(weft_rt_destroy(b));
        CHECK_OK(weft_join(j, NULL));
    }
    CHECK_OK(weft_event_destroy(&xj_ev));
    test_rt_destroy_clean(a);
}
