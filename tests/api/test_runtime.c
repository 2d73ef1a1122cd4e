/*
 * test_runtime.c - weft_rt_run, weft_rt_shutdown, weft_rt_destroy and the
 * calling-context rules (weft_self, weft_current, -EPERM from tasks).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

static void *nothing(void *arg)
{
    (void)arg;
    return NULL;
}

static void *twice(void *arg)
{
    return (void *)((uintptr_t)arg * 2);
}

TEST(api, rt_run_returns_result)
{
    weft_rt *rt = test_rt(64);
    void *r = NULL;
    CHECK_OK(weft_rt_run(rt, twice, (void *)21, &r));
    CHECK_EQ_PTR(r, (void *)42);
    CHECK_OK(weft_rt_run(rt, twice, (void *)1, NULL));
    CHECK_EQ_PTR(test_run(rt, twice, (void *)5), (void *)10);
    test_rt_destroy_clean(rt);
}

TEST(api, rt_run_bad_arguments)
{
    weft_rt *rt = test_rt(64);
    CHECK_ERR(weft_rt_run(NULL, nothing, NULL, NULL), -EINVAL);
    CHECK_ERR(weft_rt_run(rt, NULL, NULL, NULL), -EINVAL);
    CHECK_EQ_U64(test_stats(rt).spawns, 0);
    test_rt_destroy_clean(rt);
}

static void *run_inside(void *arg)
{
    weft_rt *rt = arg;
    void *r = (void *)7;
    CHECK_ERR(weft_rt_run(rt, nothing, NULL, &r), -EPERM);
    CHECK_EQ_PTR(r, (void *)7);
    return (void *)1;
}

TEST(api, rt_run_inside_task)
{
    weft_rt *rt = test_rt(64);
    CHECK_EQ_PTR(test_run(rt, run_inside, rt), (void *)1);
    CHECK_EQ_U64(test_stats(rt).spawns, 1);
    test_rt_destroy_clean(rt);
}

static void *destroy_inside(void *arg)
{
    CHECK_ERR(weft_rt_destroy((weft_rt *)arg), -EPERM);
    return (void *)1;
}

TEST(api, rt_destroy_inside_task)
{
    weft_rt *rt = test_rt(64);
    CHECK_EQ_PTR(test_run(rt, destroy_inside, rt), (void *)1);
    test_rt_destroy_clean(rt);
}

static void *destroy_other_inside(void *arg)
{
    /* Not even another runtime may be destroyed from a worker. */
    CHECK_ERR(weft_rt_destroy((weft_rt *)arg), -EPERM);
    return NULL;
}

TEST(api, rt_destroy_other_runtime_inside_task)
{
    weft_rt *a = test_rt(64), *b = test_rt(64);
    test_run(a, destroy_other_inside, b);
    test_rt_destroy_clean(b);
    test_rt_destroy_clean(a);
}

TEST(api, rt_null_arguments)
{
    CHECK_ERR(weft_rt_destroy(NULL), -EINVAL);
    CHECK_ERR(weft_rt_shutdown(NULL), -EINVAL);
    weft_stats st;
    CHECK_ERR(weft_stats_get(NULL, &st), -EINVAL);
}

static _Atomic int release_flag;

static void *hold(void *arg)
{
    while (!atomic_load(&release_flag))
        weft_yield();
    return arg;
}

TEST(api, rt_destroy_busy)
{
    weft_rt *rt = test_rt(64);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, hold, (void *)9, NULL));
    CHECK_ERR(weft_rt_destroy(rt), -EBUSY);
    /* Refusing had no effect: the runtime still works. */
    CHECK_EQ_PTR(test_run(rt, twice, (void *)2), (void *)4);
    atomic_store(&release_flag, 1);
    void *r;
    CHECK_OK(weft_join(t, &r));
    CHECK_EQ_PTR(r, (void *)9);
    test_rt_destroy_clean(rt);
}

TEST(api, rt_destroy_busy_finished_unjoined)
{
    /* A finished task that nobody joined is still live (not reaped). */
    weft_rt *rt = test_rt(64);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, nothing, NULL, NULL));
    uint64_t end = test_now_ms() + 10000;
    while (test_stats(rt).finishes < 1 && test_now_ms() < end)
        usleep(100);
    CHECK_ERR(weft_rt_destroy(rt), -EBUSY);
    CHECK_OK(weft_join(t, NULL));
    test_rt_destroy_clean(rt);
}

TEST(api, rt_shutdown_rejects_spawn)
{
    weft_rt *rt = test_rt(64);
    CHECK_OK(weft_rt_shutdown(rt));
    CHECK_OK(weft_rt_shutdown(rt)); /* idempotent */
    weft_task t;
    CHECK_ERR(weft_spawn(rt, &t, nothing, NULL, NULL), -ECANCELED);
    CHECK_ERR(weft_rt_run(rt, nothing, NULL, NULL), -ECANCELED);
    CHECK_EQ_U64(test_stats(rt).spawns, 0);
    test_rt_destroy_clean(rt);
}

static void *shutdown_inside(void *arg)
{
    weft_rt *rt = arg;
    weft_task t;
    CHECK_OK(weft_spawn(NULL, &t, twice, (void *)3, NULL));
    CHECK_OK(weft_rt_shutdown(rt));
    weft_task u;
    CHECK_ERR(weft_spawn(NULL, &u, nothing, NULL, NULL), -ECANCELED);
    CHECK_ERR(weft_spawn(rt, &u, nothing, NULL, NULL), -ECANCELED);
    /* Tasks keep running after shutdown until destroy: the child ends
     * (a join that would wait is cancelled, so wait for DONE first; a
     * join of an ended task does not wait). */
    weft_task_info ti;
    do {
        weft_yield();
        CHECK_OK(weft_task_info_get(t, &ti));
    } while (ti.state != WEFT_STATE_DONE);
    void *r;
    CHECK_OK(weft_join(t, &r));
    CHECK_EQ_PTR(r, (void *)6);
    return (void *)1;
}

TEST(api, rt_shutdown_inside_task)
{
    weft_rt *rt = test_rt(64);
    CHECK_EQ_PTR(test_run(rt, shutdown_inside, rt), (void *)1);
    test_rt_destroy_clean(rt);
}

/* Two tasks that join each other park for good. */
static _Atomic uint64_t peer_of[2];
static _Atomic int joins_cancelled;

static void *join_peer(void *arg)
{
    _Atomic uint64_t *peer = arg;
    uint64_t id;
    while (!(id = atomic_load(peer)))
        weft_yield();
    /* Never returns before shutdown: the peer joins us. Shutdown cancels
     * the join (and detaches the peer), or, if the peer's cancelled join
     * let it end first, the join sees it ended. */
    int r = weft_join((weft_task){id}, NULL);
    CHECK(r == -ECANCELED || r == 0);
    if (r)
        atomic_fetch_add(&joins_cancelled, 1);
    return NULL;
}

static void *make_deadlock(void *arg)
{
    (void)arg;
    weft_task a, b;
    CHECK_OK(weft_spawn(NULL, &a, join_peer, &peer_of[0], NULL));
    CHECK_OK(weft_spawn(NULL, &b, join_peer, &peer_of[1], NULL));
    atomic_store(&peer_of[0], b.id);
    atomic_store(&peer_of[1], a.id);
    return NULL;
}

TEST_T(api, rt_destroy_after_shutdown_parked, 5)
{
    /* Tasks parked for good: shutdown cancels their waits, and destroy
     * returns. */
    weft_rt *rt = test_rt(64);
    test_run(rt, make_deadlock, NULL);
    uint64_t end = test_now_ms() + 10000;
    while (test_stats(rt).parks < 1 && test_now_ms() < end)
        usleep(100);
    /* Both are blocked for good once every worker sleeps (white-box);
     * with inline joins the pair may park as one context (b runs inline
     * in a's join, then joins a), so parks counts 1 or 2. */
    while (atomic_load(&rt->idle) < rt->nworkers && test_now_ms() < end)
        usleep(100);
    CHECK_EQ_U64(atomic_load(&rt->idle), rt->nworkers);
    CHECK_CMP_U64(test_stats(rt).parks, >=, 1);
    CHECK_EQ_U64(test_stats(rt).live, 2);
    CHECK_ERR(weft_rt_destroy(rt), -EBUSY);
    CHECK_OK(weft_rt_shutdown(rt));
    while (atomic_load(&joins_cancelled) < 1 && test_now_ms() < end)
        usleep(100);
    CHECK_CMP_U64(atomic_load(&joins_cancelled), >=, 1);
    CHECK_OK(weft_rt_destroy(rt));
}

static void *yield_forever(void *arg)
{
    (void)arg;
    for (;;)
        weft_yield();
    return NULL;
}

TEST_T(api, rt_destroy_after_shutdown_yielding, 5)
{
    /* Two tasks yield to each other forever: each yield is a switch, and
     * after shutdown a worker stops at its next switch (weft.h), so
     * destroy returns. One worker, so that the two share it (on two
     * workers a lone yielder has nothing to switch to; see
     * stress.shutdown_under_load for many workers). */
    weft_rt *rt = test_rt_workers(64, 1);
    weft_task a, b;
    CHECK_OK(weft_spawn(rt, &a, yield_forever, NULL, NULL));
    CHECK_OK(weft_spawn(rt, &b, yield_forever, NULL, NULL));
    uint64_t end = test_now_ms() + 10000;
    while (test_stats(rt).yields < 1000 && test_now_ms() < end)
        usleep(100);
    CHECK_CMP_U64(test_stats(rt).yields, >=, 1000);
    CHECK_OK(weft_rt_shutdown(rt));
    CHECK_OK(weft_rt_destroy(rt));
}

/* A task that spins (no switch) until told to yield once. */
static _Atomic int go, queued_ran;

static void *spin_then_yield(void *arg)
{
    (void)arg;
    while (!atomic_load(&go))
        ;
    weft_yield();
    return NULL;
}

static void *mark_ran(void *arg)
{
    (void)arg;
    atomic_fetch_add(&queued_ran, 1);
    return NULL;
}

static void *destroy_thread(void *arg)
{
    return (void *)(intptr_t)weft_rt_destroy((weft_rt *)arg);
}

/* Tasks still queued when the worker stops: the worker is held by a
 * spinning task while three tasks are queued behind it and destroy
 * (after shutdown) begins; the spinner's yield is then the worker's next
 * switch. White-box: rt->stopping says destroy has begun. Returns
 * destroy's result; queued_ran counts the queued tasks that ran. */
static int destroy_with_queued_tasks(void)
{
    /* One worker: with more, an idle one would run the queued tasks at
     * once. And no isolation: it would hand the worker, queued tasks
     * and all, to another thread while the spinner spins. */
    weft_rt *rt = test_rt_workers(64, 1);
    weft_policy pol;
    CHECK_OK(weft_policy_get(rt, &pol));
    pol.tier[WEFT_TIER_YIELD].promote_violations = 0;
    pol.tier[WEFT_TIER_YIELD].promote_cpu_ms = 0;
    pol.tier[WEFT_TIER_YIELD].promote_slow_polls = 0;
    CHECK_OK(weft_policy_set(rt, &pol));
    weft_task s, q[3];
    CHECK_OK(weft_spawn(rt, &s, spin_then_yield, NULL, NULL));
    uint64_t end = test_now_ms() + 10000;
    while (test_stats(rt).switches < 1 && test_now_ms() < end)
        usleep(100);
    CHECK_EQ_U64(test_stats(rt).switches, 1); /* the spinner runs */
    for (int i = 0; i < 3; i++)
        CHECK_OK(weft_spawn(rt, &q[i], mark_ran, NULL, NULL));
    CHECK_OK(weft_rt_shutdown(rt));
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, destroy_thread, rt), 0);
    while (!atomic_load(&rt->stopping) && test_now_ms() < end)
        usleep(100);
    CHECK(atomic_load(&rt->stopping));
    atomic_store(&go, 1);
    void *r;
    CHECK_EQ_INT(pthread_join(th, &r), 0);
    return (int)(intptr_t)r;
}

TEST_T(api, rt_destroy_after_shutdown_queued, 5)
{
    CHECK_ERR(destroy_with_queued_tasks(), 0);
}

TEST_T(api, rt_destroy_after_shutdown_queued_never_run, 5)
{
    /* weft.h: after shutdown, each worker stops at its next switch; tasks
     * queued then are abandoned and never run. */
    destroy_with_queued_tasks();
    CHECK_EQ_INT(atomic_load(&queued_ran), 0);
}

/* ---- context ------------------------------------------------------------ */

TEST(api, self_current_outside_task)
{
    CHECK_EQ_U64(weft_self().id, 0);
    CHECK_NULL(weft_current());
    weft_rt *rt = test_rt(64);
    CHECK_EQ_U64(weft_self().id, 0);
    CHECK_NULL(weft_current());
    weft_yield(); /* a plain thread's yield just returns */
    test_rt_destroy_clean(rt);
}

static void *record_self(void *arg)
{
    weft_task *out = arg;
    *out = weft_self();
    CHECK_NE_PTR(weft_current(), NULL);
    weft_yield();
    CHECK_EQ_U64(weft_self().id, out->id); /* stable across a switch */
    return weft_current();
}

static void *self_main(void *arg)
{
    weft_rt *rt = arg;
    CHECK_EQ_PTR(weft_current(), rt);
    weft_task me = weft_self();
    CHECK_NE_INT(me.id, 0);
    weft_task t, seen = WEFT_TASK_NULL;
    void *r;
    CHECK_OK(weft_spawn(NULL, &t, record_self, &seen, NULL));
    CHECK_OK(weft_join(t, &r));
    CHECK_EQ_U64(seen.id, t.id);
    CHECK_NE_INT(seen.id, me.id);
    CHECK_EQ_PTR(r, rt);
    return NULL;
}

TEST(api, self_current_inside_task)
{
    weft_rt *rt = test_rt(64);
    test_run(rt, self_main, rt);
    test_rt_destroy_clean(rt);
}

static void *current_of(void *arg)
{
    (void)arg;
    return weft_current();
}

TEST(api, runtimes_coexist)
{
    weft_rt *a = test_rt(64), *b = test_rt(64);
    CHECK_NE_PTR(a, b);
    CHECK_EQ_PTR(test_run(a, current_of, NULL), a);
    CHECK_EQ_PTR(test_run(b, current_of, NULL), b);
    weft_task ta, tb;
    void *ra, *rb;
    CHECK_OK(weft_spawn(a, &ta, current_of, NULL, NULL));
    CHECK_OK(weft_spawn(b, &tb, current_of, NULL, NULL));
    CHECK_OK(weft_join(tb, &rb));
    CHECK_OK(weft_join(ta, &ra));
    CHECK_EQ_PTR(ra, a);
    CHECK_EQ_PTR(rb, b);
    test_rt_destroy_clean(a);
    test_rt_destroy_clean(b);
}

/* ---- out of memory ------------------------------------------------------ */

TEST(api, rt_create_enomem)
{
    /* An address-space limit makes the arena reservation fail. The
     * sanitizers reserve terabytes of shadow and cannot run under one. */
    if (TEST_SANITIZED)
        TEST_SKIP("RLIMIT_AS is incompatible with ASan/TSan shadow memory");
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = 65536; /* about 17 GiB of address space */
    c.stack_size = 256 << 10;
    c.small_stack_size = 16 << 10;
    struct rlimit lim = {(rlim_t)1 << 32, (rlim_t)1 << 32}; /* 4 GiB */
    CHECK_EQ_INT(setrlimit(RLIMIT_AS, &lim), 0);
    weft_rt *rt = (weft_rt *)(uintptr_t)0x5eed;
    CHECK_ERR(weft_rt_create(&rt, &c), -ENOMEM);
    CHECK_STR_CONTAINS(weft_last_error(), "arena");
    CHECK_EQ_PTR(rt, (void *)(uintptr_t)0x5eed);
    /* Failing had no effect: a runtime that fits still works. */
    rt = test_rt(64);
    CHECK_EQ_PTR(test_run(rt, twice, (void *)4), (void *)8);
    test_rt_destroy_clean(rt);
}

/* Runtimes made and destroyed in a row, eight workers each (more than
 * this machine's CPUs): under ASan the shadow of a destroyed runtime's
 * task stacks stayed poisoned, and the next runtime's metadata at the
 * same address read as a stack-buffer-underflow in weft_rt_destroy
 * (found by a program written from weft.h; mem/arena.c). */
static void *spin_briefly(void *arg)
{
    uint64_t t0 = weft_now_ns();
    while (weft_now_ns() - t0 < 100000)
        ;
    return arg;
}

TEST(api, runtime_rounds_of_create_run_destroy)
{
    for (int round = 0; round < 20; round++) {
        weft_rt *rt = test_rt_workers(65536, 8); /* the default size */
        weft_task t;
        CHECK_OK(weft_spawn(rt, &t, spin_briefly, NULL, NULL));
        CHECK_OK(weft_join(t, NULL));
        CHECK_OK(weft_rt_destroy(rt));
    }
}
