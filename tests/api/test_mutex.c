/*
 * test_mutex.c - weft_mutex: mutual exclusion, the documented errors,
 * deadlines, FIFO order of queued waiters, and the handoff policy's bound
 * on how long a contended locker waits.
 */
#include <stdlib.h>

#include "sync_util.h"

/* ---- mutual exclusion -------------------------------------------------- */

enum { EXCL_ITERS = 20 };

static weft_mutex excl_m = WEFT_MUTEX_INIT;
static uint64_t excl_counter; /* plain: only the mutex protects it */

static void *excl_task(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (int i = 0; i < EXCL_ITERS; i++) {
        CHECK_OK(weft_mutex_lock(&excl_m));
        uint64_t v = excl_counter;
        if ((i + id) % 4 == 0)
            weft_yield(); /* widen the window: others run meanwhile */
        excl_counter = v + 1;
        CHECK_OK(weft_mutex_unlock(&excl_m));
    }
    return NULL;
}

static void *excl_main(void *arg)
{
    uintptr_t n = (uintptr_t)arg;
    weft_task *t = malloc(n * sizeof *t);
    CHECK_NOT_NULL(t);
    for (uintptr_t i = 0; i < n; i++)
        t[i] = su_spawn_small(NULL, excl_task, (void *)i);
    for (uintptr_t i = 0; i < n; i++)
        su_join(t[i]);
    free(t);
    return NULL;
}

static void exclusion(unsigned workers)
{
    uintptr_t n = TEST_SANITIZED ? 2000 : 10000;
    weft_rt *rt = test_rt_workers((uint32_t)n + 16, workers);
    excl_counter = 0;
    test_run(rt, excl_main, (void *)n);
    CHECK_EQ_U64(excl_counter, n * EXCL_ITERS);
    CHECK_OK(weft_mutex_destroy(&excl_m));
    test_rt_destroy_clean(rt);
}

TEST_T(api, mutex_exclusion_2_workers, 60)
{
    exclusion(2);
}

TEST_T(api, mutex_exclusion_4_workers, 60)
{
    exclusion(4);
}

/* Plain threads and tasks of two runtimes share one mutex. */
static weft_mutex mixed_m = WEFT_MUTEX_INIT; /* static initializer */
static uint64_t mixed_counter;

static void *mixed_body(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        CHECK_OK(weft_mutex_lock(&mixed_m));
        uint64_t v = mixed_counter;
        if (i % 8 == 0)
            weft_yield();
        mixed_counter = v + 1;
        CHECK_OK(weft_mutex_unlock(&mixed_m));
    }
    return NULL;
}

TEST_T(api, mutex_static_init_shared_by_threads_and_runtimes, 60)
{
    weft_rt *a = test_rt_workers(256, 2), *b = test_rt_workers(256, 1);
    weft_task t[4];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        t[i] = su_spawn(a, mixed_body, NULL);
        t[2 + i] = su_spawn(b, mixed_body, NULL);
        th[i] = su_thread(mixed_body, NULL);
    }
    for (int i = 0; i < 4; i++)
        su_join(t[i]);
    for (int i = 0; i < 2; i++)
        su_thread_join(th[i]);
    CHECK_EQ_U64(mixed_counter, 6 * 2000);
    CHECK_OK(weft_mutex_destroy(&mixed_m));
    test_rt_destroy_clean(a);
    test_rt_destroy_clean(b);
}

/* ---- errors ------------------------------------------------------------ */

TEST(api, mutex_trylock_busy)
{
    weft_mutex m;
    CHECK_OK(weft_mutex_init(&m));
    CHECK_OK(weft_mutex_try_lock(&m));
    CHECK_ERR(weft_mutex_try_lock(&m), -EBUSY);
    CHECK_OK(weft_mutex_unlock(&m));
    CHECK_OK(weft_mutex_try_lock(&m));
    CHECK_OK(weft_mutex_unlock(&m));
    CHECK_OK(weft_mutex_destroy(&m));
}

TEST(api, mutex_unlock_unlocked_eperm)
{
    weft_mutex m = WEFT_MUTEX_INIT;
    CHECK_ERR(weft_mutex_unlock(&m), -EPERM);
    CHECK_OK(weft_mutex_lock(&m));
    CHECK_OK(weft_mutex_unlock(&m));
    CHECK_ERR(weft_mutex_unlock(&m), -EPERM);
    CHECK_OK(weft_mutex_destroy(&m));
}

static weft_mutex held_m;
static _Atomic int held_go, held_release;

static void *hold_until_released(void *arg)
{
    (void)arg;
    CHECK_OK(weft_mutex_lock(&held_m));
    atomic_store(&held_go, 1);
    WAIT_FOR(atomic_load(&held_release));
    CHECK_OK(weft_mutex_unlock(&held_m));
    return NULL;
}

static void *lock_until_times_out(void *arg)
{
    (void)arg;
    uint64_t t0 = weft_now_ns();
    CHECK_ERR(weft_mutex_lock_until(&held_m, t0 + 20 * SU_MS), -ETIMEDOUT);
    uint64_t dt = weft_now_ns() - t0;
    CHECK_CMP_U64(dt, >=, 20 * SU_MS);
    CHECK_CMP_U64(dt, <, 2000 * SU_MS * SU_SLOW);
    CHECK_ERR(weft_mutex_try_lock(&held_m), -EBUSY); /* still the holder's */
    return NULL;
}

/* holder_task / waiter_task: 1 = a task of rt, 0 = a plain thread. */
static void lock_until_case(int holder_task, int waiter_task)
{
    weft_rt *rt = test_rt_workers(256, 2);
    CHECK_OK(weft_mutex_init(&held_m));
    atomic_store(&held_go, 0);
    atomic_store(&held_release, 0);
    weft_task ht = WEFT_TASK_NULL;
    pthread_t hth = 0;
    if (holder_task)
        ht = su_spawn(rt, hold_until_released, NULL);
    else
        hth = su_thread(hold_until_released, NULL);
    WAIT_FOR(atomic_load(&held_go));
    if (waiter_task)
        su_join(su_spawn(rt, lock_until_times_out, NULL));
    else
        lock_until_times_out(NULL);
    atomic_store(&held_release, 1);
    if (holder_task)
        su_join(ht);
    else
        su_thread_join(hth);
    CHECK_OK(weft_mutex_destroy(&held_m)); /* the timed-out waiter left */
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

TEST(api, mutex_lock_until_timeout_task_holder_task_waiter)
{
    lock_until_case(1, 1);
}

TEST(api, mutex_lock_until_timeout_thread_holder_task_waiter)
{
    lock_until_case(0, 1);
}

TEST(api, mutex_lock_until_timeout_task_holder_thread_waiter)
{
    lock_until_case(1, 0);
}

static void *lock_and_count(void *arg)
{
    CHECK_OK(weft_mutex_lock(&held_m));
    atomic_fetch_add((_Atomic int *)arg, 1);
    CHECK_OK(weft_mutex_unlock(&held_m));
    return NULL;
}

TEST(api, mutex_destroy_held_or_waited_ebusy)
{
    weft_rt *rt = test_rt_workers(256, 2);
    CHECK_OK(weft_mutex_init(&held_m));
    CHECK_OK(weft_mutex_lock(&held_m));
    CHECK_ERR(weft_mutex_destroy(&held_m), -EBUSY);
    _Atomic int got = 0;
    weft_task t = su_spawn(rt, lock_and_count, &got);
    WAIT_FOR(su_wq_len(&held_m.q_) == 1);
    CHECK_ERR(weft_mutex_destroy(&held_m), -EBUSY);
    CHECK_OK(weft_mutex_unlock(&held_m));
    su_join(t);
    CHECK_EQ_INT(atomic_load(&got), 1);
    CHECK_OK(weft_mutex_destroy(&held_m));
    test_rt_destroy_clean(rt);
}

TEST(api, mutex_use_after_destroy_einval)
{
    weft_mutex m = WEFT_MUTEX_INIT;
    CHECK_OK(weft_mutex_destroy(&m));
    CHECK_ERR(weft_mutex_lock(&m), -EINVAL);
    CHECK_ERR(weft_mutex_lock_until(&m, weft_now_ns() + SU_MS), -EINVAL);
    CHECK_ERR(weft_mutex_try_lock(&m), -EINVAL);
    CHECK_ERR(weft_mutex_unlock(&m), -EINVAL);
    CHECK_ERR(weft_mutex_destroy(&m), -EINVAL);
    /* _init makes it usable again. */
    CHECK_OK(weft_mutex_init(&m));
    CHECK_OK(weft_mutex_lock(&m));
    CHECK_OK(weft_mutex_unlock(&m));
}

TEST(api, mutex_null_einval)
{
    CHECK_ERR(weft_mutex_init(NULL), -EINVAL);
    CHECK_ERR(weft_mutex_destroy(NULL), -EINVAL);
    CHECK_ERR(weft_mutex_lock(NULL), -EINVAL);
    CHECK_ERR(weft_mutex_lock_until(NULL, WEFT_NO_DEADLINE), -EINVAL);
    CHECK_ERR(weft_mutex_try_lock(NULL), -EINVAL);
    CHECK_ERR(weft_mutex_unlock(NULL), -EINVAL);
}

/* Any thread may unlock: a plain thread unlocks what a task locked. */
static void *lock_only(void *arg)
{
    CHECK_OK(weft_mutex_lock((weft_mutex *)arg));
    return NULL;
}

TEST(api, mutex_unlock_from_other_thread)
{
    weft_rt *rt = test_rt_workers(256, 1);
    weft_mutex m = WEFT_MUTEX_INIT;
    su_join(su_spawn(rt, lock_only, &m));
    CHECK_ERR(weft_mutex_try_lock(&m), -EBUSY);
    CHECK_OK(weft_mutex_unlock(&m));
    CHECK_OK(weft_mutex_destroy(&m));
    test_rt_destroy_clean(rt);
}

/* ---- FIFO order -------------------------------------------------------- */

enum { FIFO_N = 12 };
static weft_mutex fifo_m;
static int fifo_order[FIFO_N]; /* under fifo_m */
static int fifo_len;

static void *fifo_waiter(void *arg)
{
    CHECK_OK(weft_mutex_lock(&fifo_m));
    fifo_order[fifo_len++] = (int)(uintptr_t)arg;
    CHECK_OK(weft_mutex_unlock(&fifo_m));
    return NULL;
}

/* The holder is the calling plain thread; waiters (tasks, or plain threads
 * for odd ids when mixed) queue one at a time. */
static void fifo_case(int mixed)
{
    weft_rt *rt = test_rt_workers(256, 2);
    CHECK_OK(weft_mutex_init(&fifo_m));
    fifo_len = 0;
    CHECK_OK(weft_mutex_lock(&fifo_m));
    weft_task t[FIFO_N];
    pthread_t th[FIFO_N];
    for (int i = 0; i < FIFO_N; i++) {
        if (mixed && (i & 1))
            th[i] = su_thread(fifo_waiter, (void *)(uintptr_t)i);
        else
            t[i] = su_spawn(rt, fifo_waiter, (void *)(uintptr_t)i);
        WAIT_FOR(su_wq_len(&fifo_m.q_) == (unsigned)i + 1);
    }
    su_sleep_ms(3); /* every waiter has now waited over the 1 ms mark */
    CHECK_OK(weft_mutex_unlock(&fifo_m));
    for (int i = 0; i < FIFO_N; i++) {
        if (mixed && (i & 1))
            su_thread_join(th[i]);
        else
            su_join(t[i]);
    }
    CHECK_EQ_INT(fifo_len, FIFO_N);
    fprintf(stderr, "mutex FIFO acquisition order:");
    for (int i = 0; i < FIFO_N; i++)
        fprintf(stderr, " %d", fifo_order[i]);
    fprintf(stderr, "\n");
    for (int i = 0; i < FIFO_N; i++)
        if (fifo_order[i] != i)
            weft_check_fail(__FILE__, __LINE__,
                            "acquisition %d went to waiter %d, not %d", i,
                            fifo_order[i], i);
    CHECK_OK(weft_mutex_destroy(&fifo_m));
    test_rt_destroy_clean(rt);
}

TEST(api, mutex_fifo_order_tasks)
{
    fifo_case(0);
}

TEST(api, mutex_fifo_order_tasks_and_threads)
{
    fifo_case(1);
}

/* ---- contended fairness ------------------------------------------------
 * K tasks loop lock/unlock for a fixed time; each acquisition's wait
 * (from the lock call to owning) is measured. Every task must be served
 * and the longest wait bounded.
 *
 * A trial over the wait bound is made again, up to FAIR_TRIALS in all.
 * The host of this project's VMs stops one CPU for 100 ms a few times a
 * minute (a plain pthread program sees it: docs/decisions/0009), and
 * the guest's clocks, the thread's CPU clock included, run on meanwhile.
 * A worker stopped there leaves its tasks and its mail untouched while
 * the other worker runs a task that re-takes the free mutex without a
 * switch, and every waiter waits 100 ms. Seen with weft_dump and the
 * workers' queues at such a wait: one worker between two tasks, mail
 * for it unread, not asleep, idle or searching; the other running the
 * task that held the mutex 44,000 times in the trial, the waiters
 * runnable in its queues. No cooperative scheduler can hide that; it
 * struck one 400 ms trial in five to twenty here, while a fault of
 * weft's makes every trial fail. */
enum { FAIR_K = 8, FAIR_TRIALS = 3 };
static weft_mutex fair_m;
static uint64_t fair_end;
static uint64_t fair_count[FAIR_K], fair_maxwait[FAIR_K];
static uint64_t fair_shared; /* under fair_m */
static uint64_t fair_start, fair_began[FAIR_K];

static void spin_ns(uint64_t ns)
{
    uint64_t end = weft_now_ns() + ns;
    while (weft_now_ns() < end)
        ;
}

static void *fair_task(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint64_t n = 0, maxw = 0;
    fair_began[id] = weft_now_ns() - fair_start;
    for (;;) {
        uint64_t t0 = weft_now_ns();
        if (t0 >= fair_end)
            break;
        CHECK_OK(weft_mutex_lock(&fair_m));
        uint64_t w = weft_now_ns() - t0;
        if (w > maxw)
            maxw = w;
        fair_shared++;
        spin_ns(2000); /* a short critical section */
        CHECK_OK(weft_mutex_unlock(&fair_m));
        n++;
        spin_ns(500);
    }
    fair_count[id] = n;
    fair_maxwait[id] = maxw;
    return NULL;
}

/* One 400 ms trial; returns its longest wait. */
static uint64_t fair_trial(weft_rt *rt, int trial)
{
    fair_shared = 0;
    fair_start = weft_now_ns();
    fair_end = fair_start + 400 * SU_MS;
    weft_task t[FAIR_K];
    for (uintptr_t i = 0; i < FAIR_K; i++)
        t[i] = su_spawn(rt, fair_task, (void *)i);
    for (int i = 0; i < FAIR_K; i++)
        su_join(t[i]);
    uint64_t mn = UINT64_MAX, mx = 0, maxw = 0, total = 0;
    fprintf(stderr,
            "trial %d: mutex fairness, %d tasks, 2 workers, 400 ms:", trial,
            FAIR_K);
    for (int i = 0; i < FAIR_K; i++) {
        fprintf(stderr, " %" PRIu64, fair_count[i]);
        mn = fair_count[i] < mn ? fair_count[i] : mn;
        mx = fair_count[i] > mx ? fair_count[i] : mx;
        maxw = fair_maxwait[i] > maxw ? fair_maxwait[i] : maxw;
        total += fair_count[i];
    }
    fprintf(stderr, "\n  total %" PRIu64 ", max/min %.2f, max wait %.3f ms\n",
            total, mn ? (double)mx / (double)mn : 0.0, (double)maxw / 1e6);
    CHECK_EQ_U64(fair_shared, total);
    /* Every task got to run at all (2 workers, 8 runnable tasks): a
     * scheduling problem, not the mutex's, if this fails. */
    for (int i = 0; i < FAIR_K; i++)
        if (fair_began[i] >= fair_end - fair_start)
            weft_check_fail(__FILE__, __LINE__,
                            "task %d first ran %.1f ms after the start, "
                            "after the 400 ms window",
                            i, (double)fair_began[i] / 1e6);
    CHECK_CMP_U64(mn, >, 0); /* nobody starved */
    return maxw;
}

TEST_T(api, mutex_contended_fairness, 30)
{
    weft_rt *rt = test_rt_workers(256, 2);
    CHECK_OK(weft_mutex_init(&fair_m));
    uint64_t maxw;
    int trial = 0;
    while ((maxw = fair_trial(rt, trial)) >= 50 * SU_MS * SU_SLOW &&
           ++trial < FAIR_TRIALS)
        ;
    CHECK_CMP_U64(maxw, <, 50 * SU_MS * SU_SLOW);
    CHECK_OK(weft_mutex_destroy(&fair_m));
    test_rt_destroy_clean(rt);
}
