/*
 * test_cond_sem_wg.c - weft_cond, weft_sem and weft_wg: their semantics,
 * documented errors and deadlines, FIFO hand-off, and lost-wake-up stress
 * (a lost wake-up hangs; the runner's timeout reports it).
 */
#include <stdlib.h>

#include "sync_util.h"

/* ---- condition variables ---------------------------------------------- */

static weft_mutex cv_m;
static weft_cond cv_c;
static int cv_tokens; /* under cv_m */
static _Atomic int cv_woke;

static void *cv_waiter(void *arg)
{
    (void)arg;
    CHECK_OK(weft_mutex_lock(&cv_m));
    while (!cv_tokens)
        CHECK_OK(weft_cond_wait(&cv_c, &cv_m));
    cv_tokens--;
    atomic_fetch_add(&cv_woke, 1);
    CHECK_OK(weft_mutex_unlock(&cv_m));
    return NULL;
}

static void cv_setup(void)
{
    CHECK_OK(weft_mutex_init(&cv_m));
    CHECK_OK(weft_cond_init(&cv_c));
    cv_tokens = 0;
    atomic_store(&cv_woke, 0);
}

TEST(api, cond_signal_wakes_one)
{
    weft_rt *rt = test_rt_workers(256, 2);
    cv_setup();
    weft_task t[3];
    pthread_t th;
    for (int i = 0; i < 3; i++)
        t[i] = su_spawn(rt, cv_waiter, NULL);
    th = su_thread(cv_waiter, NULL);
    WAIT_FOR(su_wq_len(&cv_c.q_) == 4);
    CHECK_ERR(weft_cond_destroy(&cv_c), -EBUSY);
    CHECK_OK(weft_mutex_lock(&cv_m));
    cv_tokens = 1;
    CHECK_OK(weft_cond_signal(&cv_c));
    CHECK_EQ_INT(su_wq_len(&cv_c.q_), 3); /* exactly one taken off */
    CHECK_OK(weft_mutex_unlock(&cv_m));
    WAIT_FOR(atomic_load(&cv_woke) == 1);
    su_sleep_ms(20);
    CHECK_EQ_INT(atomic_load(&cv_woke), 1);
    CHECK_EQ_INT(su_wq_len(&cv_c.q_), 3);
    /* One more each, one signal at a time. */
    for (int k = 2; k <= 4; k++) {
        CHECK_OK(weft_mutex_lock(&cv_m));
        cv_tokens++;
        CHECK_OK(weft_cond_signal(&cv_c));
        CHECK_OK(weft_mutex_unlock(&cv_m));
        WAIT_FOR(atomic_load(&cv_woke) == k);
    }
    for (int i = 0; i < 3; i++)
        su_join(t[i]);
    su_thread_join(th);
    CHECK_OK(weft_cond_signal(&cv_c)); /* nobody waits: no effect */
    CHECK_OK(weft_cond_destroy(&cv_c));
    CHECK_OK(weft_mutex_destroy(&cv_m));
    test_rt_destroy_clean(rt);
}

TEST(api, cond_broadcast_wakes_all)
{
    enum { N = 20 };
    weft_rt *rt = test_rt_workers(256, 2);
    cv_setup();
    weft_task t[N];
    pthread_t th[2];
    for (int i = 0; i < N; i++)
        t[i] = su_spawn(rt, cv_waiter, NULL);
    for (int i = 0; i < 2; i++)
        th[i] = su_thread(cv_waiter, NULL);
    WAIT_FOR(su_wq_len(&cv_c.q_) == N + 2);
    CHECK_OK(weft_mutex_lock(&cv_m));
    cv_tokens = N + 2;
    CHECK_OK(weft_cond_broadcast(&cv_c));
    CHECK_EQ_INT(su_wq_len(&cv_c.q_), 0);
    CHECK_OK(weft_mutex_unlock(&cv_m));
    for (int i = 0; i < N; i++)
        su_join(t[i]);
    for (int i = 0; i < 2; i++)
        su_thread_join(th[i]);
    CHECK_EQ_INT(atomic_load(&cv_woke), N + 2);
    CHECK_OK(weft_cond_destroy(&cv_c));
    test_rt_destroy_clean(rt);
}

/* A signal or broadcast wakes only those already queued: a waiter that
 * queues after a broadcast stays asleep. */
TEST(api, cond_signal_before_wait_not_kept)
{
    weft_rt *rt = test_rt_workers(256, 2);
    cv_setup();
    CHECK_OK(weft_cond_broadcast(&cv_c));
    CHECK_OK(weft_cond_signal(&cv_c));
    CHECK_OK(weft_mutex_lock(&cv_m));
    uint64_t t0 = weft_now_ns();
    CHECK_ERR(weft_cond_wait_until(&cv_c, &cv_m, t0 + 20 * SU_MS), -ETIMEDOUT);
    CHECK_CMP_U64(weft_now_ns() - t0, >=, 20 * SU_MS);
    CHECK_OK(weft_mutex_unlock(&cv_m));
    test_rt_destroy_clean(rt);
}

static _Atomic uint64_t cvt_released_at;
static _Atomic int cvt_queued;

static void *cvt_timed_waiter(void *arg)
{
    (void)arg;
    CHECK_OK(weft_mutex_lock(&cv_m));
    atomic_store(&cvt_queued, 1);
    uint64_t t0 = weft_now_ns();
    /* The holder must take the mutex before this deadline: scaled for
     * sanitizer builds, where spawning it took over 20 ms (TSan). */
    CHECK_ERR(weft_cond_wait_until(&cv_c, &cv_m, t0 + 20 * SU_MS * SU_SLOW),
              -ETIMEDOUT);
    uint64_t t1 = weft_now_ns();
    CHECK_CMP_U64(t1 - t0, >=, 20 * SU_MS * SU_SLOW);
    /* Re-acquired: the holder released it before we returned, and it is
     * ours now. */
    uint64_t rel = atomic_load(&cvt_released_at);
    CHECK_CMP_U64(rel, !=, 0);
    CHECK_CMP_U64(t1, >=, rel);
    CHECK_ERR(weft_mutex_try_lock(&cv_m), -EBUSY);
    CHECK_OK(weft_mutex_unlock(&cv_m));
    return NULL;
}

static void *cvt_holder(void *arg)
{
    (void)arg;
    CHECK_OK(weft_mutex_lock(&cv_m)); /* after the waiter released it */
    su_sleep_ms(80 * SU_SLOW);        /* well past its deadline */
    atomic_store(&cvt_released_at, weft_now_ns());
    CHECK_OK(weft_mutex_unlock(&cv_m));
    return NULL;
}

static void cond_timeout_case(int as_task)
{
    weft_rt *rt = test_rt_workers(256, 2);
    cv_setup();
    atomic_store(&cvt_released_at, 0);
    atomic_store(&cvt_queued, 0);
    weft_task w = WEFT_TASK_NULL;
    pthread_t th = 0;
    if (as_task)
        w = su_spawn(rt, cvt_timed_waiter, NULL);
    else
        th = su_thread(cvt_timed_waiter, NULL);
    WAIT_FOR(su_wq_len(&cv_c.q_) == 1);
    weft_task h = su_spawn(rt, cvt_holder, NULL);
    su_join(h);
    if (as_task)
        su_join(w);
    else
        su_thread_join(th);
    CHECK_OK(weft_cond_destroy(&cv_c)); /* no node left behind */
    CHECK_OK(weft_mutex_destroy(&cv_m));
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

TEST(api, cond_wait_until_timeout_reacquires_task)
{
    cond_timeout_case(1);
}

TEST(api, cond_wait_until_timeout_reacquires_thread)
{
    cond_timeout_case(0);
}

TEST(api, cond_destroyed_and_null_einval)
{
    weft_cond c = WEFT_COND_INIT;
    weft_mutex m = WEFT_MUTEX_INIT;
    CHECK_OK(weft_cond_destroy(&c));
    CHECK_ERR(weft_cond_destroy(&c), -EINVAL);
    CHECK_ERR(weft_cond_signal(&c), -EINVAL);
    CHECK_ERR(weft_cond_broadcast(&c), -EINVAL);
    CHECK_OK(weft_mutex_lock(&m));
    CHECK_ERR(weft_cond_wait(&c, &m), -EINVAL);
    CHECK_ERR(weft_cond_wait_until(&c, &m, weft_now_ns() + SU_MS), -EINVAL);
    CHECK_ERR(weft_mutex_try_lock(&m), -EBUSY); /* still held, untouched */
    CHECK_OK(weft_mutex_unlock(&m));
    CHECK_ERR(weft_cond_init(NULL), -EINVAL);
    CHECK_ERR(weft_cond_destroy(NULL), -EINVAL);
    CHECK_ERR(weft_cond_signal(NULL), -EINVAL);
    CHECK_ERR(weft_cond_broadcast(NULL), -EINVAL);
    CHECK_OK(weft_cond_init(&c));
    CHECK_OK(weft_mutex_lock(&m));
    CHECK_ERR(weft_cond_wait(NULL, &m), -EINVAL);
    CHECK_ERR(weft_cond_wait(&c, NULL), -EINVAL);
    CHECK_ERR(weft_cond_wait_until(NULL, &m, WEFT_NO_DEADLINE), -EINVAL);
    CHECK_ERR(weft_cond_wait_until(&c, NULL, WEFT_NO_DEADLINE), -EINVAL);
    CHECK_OK(weft_mutex_unlock(&m));
}

/* Ping-pong through one mutex and one cond with a predicate: each side
 * waits for its turn, flips it and signals. A lost wake-up hangs. */
static weft_mutex pp_m = WEFT_MUTEX_INIT;
static weft_cond pp_c = WEFT_COND_INIT;
static int pp_turn;   /* under pp_m */
static long pp_count; /* under pp_m */
static long pp_rounds;

static void *pp_side(void *arg)
{
    int me = (int)(uintptr_t)arg;
    for (long i = 0; i < pp_rounds; i++) {
        CHECK_OK(weft_mutex_lock(&pp_m));
        while (pp_turn != me)
            CHECK_OK(weft_cond_wait(&pp_c, &pp_m));
        pp_turn = (me + 1) % 3;
        pp_count++;
        CHECK_OK(weft_cond_broadcast(&pp_c));
        CHECK_OK(weft_mutex_unlock(&pp_m));
    }
    return NULL;
}

/* Producer/consumer: a bounded queue of `items`, signal racing wait. */
static long pc_items, pc_consumed, pc_sum; /* under pp_m */
static weft_cond pc_notempty = WEFT_COND_INIT, pc_notfull = WEFT_COND_INIT;

static void *pc_producer(void *arg)
{
    (void)arg;
    for (long i = 1; i <= pp_rounds; i++) {
        CHECK_OK(weft_mutex_lock(&pp_m));
        while (pc_items >= 4)
            CHECK_OK(weft_cond_wait(&pc_notfull, &pp_m));
        pc_items++;
        pc_sum += i;
        CHECK_OK(weft_cond_signal(&pc_notempty));
        CHECK_OK(weft_mutex_unlock(&pp_m));
    }
    return NULL;
}

static void *pc_consumer(void *arg)
{
    (void)arg;
    for (long i = 0; i < pp_rounds; i++) {
        CHECK_OK(weft_mutex_lock(&pp_m));
        while (pc_items == 0)
            CHECK_OK(weft_cond_wait(&pc_notempty, &pp_m));
        pc_items--;
        pc_consumed++;
        CHECK_OK(weft_cond_signal(&pc_notfull));
        CHECK_OK(weft_mutex_unlock(&pp_m));
    }
    return NULL;
}

TEST_T(api, cond_lost_wakeup_stress, 60)
{
    weft_rt *rt = test_rt_workers(256, 2);
    pp_rounds = TEST_SANITIZED ? 10000 : 100000;
    /* Three-way ring: two tasks and a plain thread. */
    weft_task a = su_spawn(rt, pp_side, (void *)0);
    weft_task b = su_spawn(rt, pp_side, (void *)1);
    pthread_t c = su_thread(pp_side, (void *)2);
    su_join(a);
    su_join(b);
    su_thread_join(c);
    CHECK_EQ_INT(pp_count, 3 * pp_rounds);
    /* Producer/consumer, both tasks on two workers. */
    weft_task p = su_spawn(rt, pc_producer, NULL);
    weft_task q = su_spawn(rt, pc_consumer, NULL);
    su_join(p);
    su_join(q);
    CHECK_EQ_INT(pc_consumed, pp_rounds);
    CHECK_EQ_INT(pc_items, 0);
    CHECK_EQ_INT(pc_sum, pp_rounds * (pp_rounds + 1) / 2);
    CHECK_OK(weft_cond_destroy(&pp_c));
    CHECK_OK(weft_cond_destroy(&pc_notempty));
    CHECK_OK(weft_cond_destroy(&pc_notfull));
    CHECK_OK(weft_mutex_destroy(&pp_m));
    test_rt_destroy_clean(rt);
}

/* ---- semaphores -------------------------------------------------------- */

TEST(api, sem_counting)
{
    weft_sem s;
    CHECK_OK(weft_sem_init(&s, 3));
    CHECK_EQ_U64(weft_sem_value(&s), 3);
    for (int i = 0; i < 3; i++)
        CHECK_OK(weft_sem_try_wait(&s));
    CHECK_ERR(weft_sem_try_wait(&s), -EAGAIN);
    CHECK_EQ_U64(weft_sem_value(&s), 0);
    CHECK_OK(weft_sem_post(&s));
    CHECK_OK(weft_sem_post(&s));
    CHECK_EQ_U64(weft_sem_value(&s), 2);
    CHECK_OK(weft_sem_wait(&s));
    CHECK_OK(weft_sem_wait_until(&s, WEFT_NO_DEADLINE));
    CHECK_ERR(weft_sem_try_wait(&s), -EAGAIN);
    CHECK_OK(weft_sem_destroy(&s));
    weft_sem st = WEFT_SEM_INIT(5);
    CHECK_EQ_U64(weft_sem_value(&st), 5);
    CHECK_OK(weft_sem_try_wait(&st));
    CHECK_EQ_U64(weft_sem_value(&st), 4);
}

static void *sem_timed(void *arg)
{
    weft_sem *s = arg;
    uint64_t t0 = weft_now_ns();
    CHECK_ERR(weft_sem_wait_until(s, t0 + 20 * SU_MS), -ETIMEDOUT);
    uint64_t dt = weft_now_ns() - t0;
    CHECK_CMP_U64(dt, >=, 20 * SU_MS);
    CHECK_CMP_U64(dt, <, 2000 * SU_MS * SU_SLOW);
    return NULL;
}

TEST(api, sem_wait_until_timeout)
{
    weft_rt *rt = test_rt_workers(256, 2);
    weft_sem s = WEFT_SEM_INIT(0);
    su_join(su_spawn(rt, sem_timed, &s));
    sem_timed(&s);
    CHECK_EQ_U64(weft_sem_value(&s), 0);
    /* The timed-out waiters left: a post counts, destroy succeeds. */
    CHECK_OK(weft_sem_post(&s));
    CHECK_EQ_U64(weft_sem_value(&s), 1);
    CHECK_OK(weft_sem_destroy(&s));
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

static void *sem_wait_ret(void *arg)
{
    CHECK_OK(weft_sem_wait((weft_sem *)arg));
    return (void *)1;
}

static void *sem_post_ret(void *arg)
{
    CHECK_OK(weft_sem_post((weft_sem *)arg));
    return NULL;
}

TEST(api, sem_post_from_thread_wakes_task)
{
    weft_rt *rt = test_rt_workers(256, 2);
    weft_sem s = WEFT_SEM_INIT(0);
    weft_task t = su_spawn(rt, sem_wait_ret, &s);
    WAIT_FOR(su_wq_len(&s.q_) == 1);
    pthread_t th = su_thread(sem_post_ret, &s);
    su_thread_join(th);
    CHECK_EQ_U64((uintptr_t)su_join(t), 1);
    CHECK_EQ_U64(weft_sem_value(&s), 0);
    CHECK_OK(weft_sem_destroy(&s));
    test_rt_destroy_clean(rt);
}

TEST(api, sem_post_from_task_wakes_thread)
{
    weft_rt *rt = test_rt_workers(256, 2);
    weft_sem s = WEFT_SEM_INIT(0);
    pthread_t th = su_thread(sem_wait_ret, &s);
    WAIT_FOR(su_wq_len(&s.q_) == 1);
    su_join(su_spawn(rt, sem_post_ret, &s));
    CHECK_EQ_U64((uintptr_t)su_thread_join(th), 1);
    CHECK_EQ_U64(weft_sem_value(&s), 0);
    CHECK_OK(weft_sem_destroy(&s));
    test_rt_destroy_clean(rt);
}

enum { SF_N = 10 };
static weft_sem sf_s;
static _Atomic int sf_order[SF_N], sf_claim, sf_len;

static void *sf_waiter(void *arg)
{
    CHECK_OK(weft_sem_wait(&sf_s));
    /* Record first, count second: the test reads sf_order[i] as soon as
     * it sees sf_len reach i + 1. */
    sf_order[atomic_fetch_add(&sf_claim, 1)] = (int)(uintptr_t)arg;
    atomic_fetch_add(&sf_len, 1);
    return NULL;
}

/* post hands its unit to the first queued waiter: the poster cannot take
 * it back, and waiters are served in arrival order. */
TEST(api, sem_fifo_handoff)
{
    weft_rt *rt = test_rt_workers(256, 2);
    CHECK_OK(weft_sem_init(&sf_s, 0));
    atomic_store(&sf_len, 0);
    atomic_store(&sf_claim, 0);
    weft_task t[SF_N];
    pthread_t th[SF_N];
    for (int i = 0; i < SF_N; i++) {
        if (i % 3 == 2)
            th[i] = su_thread(sf_waiter, (void *)(uintptr_t)i);
        else
            t[i] = su_spawn(rt, sf_waiter, (void *)(uintptr_t)i);
        WAIT_FOR(su_wq_len(&sf_s.q_) == (unsigned)i + 1);
    }
    for (int i = 0; i < SF_N; i++) {
        CHECK_OK(weft_sem_post(&sf_s));
        CHECK_ERR(weft_sem_try_wait(&sf_s), -EAGAIN); /* no barging */
        CHECK_EQ_U64(weft_sem_value(&sf_s), 0);
        WAIT_FOR(atomic_load(&sf_len) == i + 1);
        CHECK_EQ_INT(atomic_load(&sf_order[i]), i);
    }
    for (int i = 0; i < SF_N; i++) {
        if (i % 3 == 2)
            su_thread_join(th[i]);
        else
            su_join(t[i]);
    }
    CHECK_OK(weft_sem_destroy(&sf_s));
    test_rt_destroy_clean(rt);
}

TEST(api, sem_overflow)
{
    weft_sem s;
    CHECK_ERR(weft_sem_init(&s, WEFT_SEM_MAX + 1), -EINVAL);
    CHECK_OK(weft_sem_init(&s, WEFT_SEM_MAX - 1));
    CHECK_OK(weft_sem_post(&s));
    CHECK_EQ_U64(weft_sem_value(&s), WEFT_SEM_MAX);
    CHECK_ERR(weft_sem_post(&s), -EOVERFLOW);
    CHECK_EQ_U64(weft_sem_value(&s), WEFT_SEM_MAX); /* no effect */
    CHECK_OK(weft_sem_try_wait(&s));
    CHECK_EQ_U64(weft_sem_value(&s), WEFT_SEM_MAX - 1);
    CHECK_OK(weft_sem_post(&s));
    CHECK_ERR(weft_sem_post(&s), -EOVERFLOW);
    CHECK_OK(weft_sem_destroy(&s));
    weft_sem z = WEFT_SEM_INIT(WEFT_SEM_MAX);
    CHECK_ERR(weft_sem_post(&z), -EOVERFLOW);
}

TEST(api, sem_destroy_with_waiters_ebusy)
{
    weft_rt *rt = test_rt_workers(256, 2);
    weft_sem s = WEFT_SEM_INIT(0);
    weft_task t = su_spawn(rt, sem_wait_ret, &s);
    WAIT_FOR(su_wq_len(&s.q_) == 1);
    CHECK_ERR(weft_sem_destroy(&s), -EBUSY);
    CHECK_OK(weft_sem_post(&s));
    su_join(t);
    CHECK_OK(weft_sem_destroy(&s));
    CHECK_ERR(weft_sem_destroy(&s), -EINVAL);
    CHECK_ERR(weft_sem_post(&s), -EINVAL);
    CHECK_ERR(weft_sem_wait(&s), -EINVAL);
    CHECK_ERR(weft_sem_try_wait(&s), -EINVAL);
    CHECK_ERR(weft_sem_wait_until(&s, weft_now_ns() + SU_MS), -EINVAL);
    CHECK_EQ_U64(weft_sem_value(&s), 0);
    test_rt_destroy_clean(rt);
}

TEST(api, sem_null_einval)
{
    CHECK_ERR(weft_sem_init(NULL, 0), -EINVAL);
    CHECK_ERR(weft_sem_destroy(NULL), -EINVAL);
    CHECK_ERR(weft_sem_wait(NULL), -EINVAL);
    CHECK_ERR(weft_sem_wait_until(NULL, WEFT_NO_DEADLINE), -EINVAL);
    CHECK_ERR(weft_sem_try_wait(NULL), -EINVAL);
    CHECK_ERR(weft_sem_post(NULL), -EINVAL);
    CHECK_EQ_U64(weft_sem_value(NULL), 0);
}

/* Lost wake-up stress: posts race waits, from tasks and plain threads. */
static weft_sem ss_s;
static long ss_per;

static void *ss_poster(void *arg)
{
    (void)arg;
    for (long i = 0; i < ss_per; i++) {
        CHECK_OK(weft_sem_post(&ss_s));
        if (i % 64 == 0)
            weft_yield();
    }
    return NULL;
}

static void *ss_waiter(void *arg)
{
    (void)arg;
    for (long i = 0; i < ss_per; i++) {
        if (i % 3 == 0)
            while (weft_sem_wait_until(&ss_s, weft_now_ns() + 50000) ==
                   -ETIMEDOUT)
                ;
        else
            CHECK_OK(weft_sem_wait(&ss_s));
    }
    return NULL;
}

TEST_T(api, sem_lost_wakeup_stress, 60)
{
    weft_rt *rt = test_rt_workers(256, 2);
    CHECK_OK(weft_sem_init(&ss_s, 0));
    ss_per = TEST_SANITIZED ? 5000 : 50000;
    weft_task tp[2], tw[2];
    pthread_t hp, hw;
    for (int i = 0; i < 2; i++) {
        tp[i] = su_spawn(rt, ss_poster, NULL);
        tw[i] = su_spawn(rt, ss_waiter, NULL);
    }
    hp = su_thread(ss_poster, NULL);
    hw = su_thread(ss_waiter, NULL);
    for (int i = 0; i < 2; i++) {
        su_join(tp[i]);
        su_join(tw[i]);
    }
    su_thread_join(hp);
    su_thread_join(hw);
    CHECK_EQ_U64(weft_sem_value(&ss_s), 0);
    CHECK_OK(weft_sem_destroy(&ss_s));
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

/* ---- wait groups ------------------------------------------------------- */

static weft_wg wg_g;
static _Atomic int wg_finished;

static void *wg_worker(void *arg)
{
    su_sleep_ms((uintptr_t)arg);
    atomic_fetch_add(&wg_finished, 1);
    CHECK_OK(weft_wg_done(&wg_g));
    return NULL;
}

static void *wg_waiter(void *arg)
{
    int expect = (int)(uintptr_t)arg;
    CHECK_OK(weft_wg_wait(&wg_g));
    CHECK_EQ_INT(atomic_load(&wg_finished), expect);
    return NULL;
}

TEST(api, wg_add_done_wait)
{
    weft_rt *rt = test_rt_workers(256, 2);
    CHECK_OK(weft_wg_init(&wg_g));
    atomic_store(&wg_finished, 0);
    CHECK_OK(weft_wg_add(&wg_g, 3));
    weft_task t[3];
    for (uintptr_t i = 0; i < 3; i++)
        t[i] = su_spawn(rt, wg_worker, (void *)(5 + 5 * i));
    su_join(su_spawn(rt, wg_waiter, (void *)3)); /* a task waits */
    CHECK_OK(weft_wg_wait(&wg_g));               /* and a plain thread */
    for (int i = 0; i < 3; i++)
        su_join(t[i]);
    CHECK_OK(weft_wg_destroy(&wg_g));
    test_rt_destroy_clean(rt);
}

TEST(api, wg_wait_on_zero_returns_at_once)
{
    weft_wg g = WEFT_WG_INIT;
    uint64_t t0 = weft_now_ns();
    CHECK_OK(weft_wg_wait(&g));
    CHECK_OK(weft_wg_wait_until(&g, t0 + 1000 * SU_MS));
    CHECK_OK(weft_wg_wait_until(&g, 1)); /* past deadline, satisfiable */
    CHECK_CMP_U64(weft_now_ns() - t0, <, 100 * SU_MS * SU_SLOW);
    CHECK_OK(weft_wg_add(&g, 0));
    CHECK_OK(weft_wg_wait(&g));
    CHECK_OK(weft_wg_destroy(&g));
}

TEST(api, wg_below_zero_einval)
{
    weft_wg g;
    CHECK_OK(weft_wg_init(&g));
    CHECK_ERR(weft_wg_done(&g), -EINVAL);
    CHECK_OK(weft_wg_add(&g, 2));
    CHECK_ERR(weft_wg_add(&g, -3), -EINVAL); /* changes nothing */
    CHECK_ERR(weft_wg_wait_until(&g, weft_now_ns() + SU_MS), -ETIMEDOUT);
    CHECK_OK(weft_wg_done(&g));
    CHECK_ERR(weft_wg_wait_until(&g, weft_now_ns() + SU_MS), -ETIMEDOUT);
    CHECK_OK(weft_wg_done(&g));
    CHECK_OK(weft_wg_wait(&g));
    CHECK_ERR(weft_wg_done(&g), -EINVAL);
    CHECK_ERR(weft_wg_add(&g, INT64_MIN), -EINVAL);
    CHECK_OK(weft_wg_add(&g, INT64_MAX));
    CHECK_ERR(weft_wg_add(&g, 1), -EINVAL); /* would overflow */
    CHECK_OK(weft_wg_add(&g, -INT64_MAX));
    CHECK_OK(weft_wg_wait(&g));
    CHECK_OK(weft_wg_destroy(&g));
}

TEST(api, wg_many_waiters_all_woken)
{
    enum { N = 50, T = 3 };
    weft_rt *rt = test_rt_workers(256, 2);
    CHECK_OK(weft_wg_init(&wg_g));
    atomic_store(&wg_finished, 0);
    CHECK_OK(weft_wg_add(&wg_g, 1));
    weft_task t[N];
    pthread_t th[T];
    for (int i = 0; i < N; i++)
        t[i] = su_spawn(rt, wg_waiter, (void *)1);
    for (int i = 0; i < T; i++)
        th[i] = su_thread(wg_waiter, (void *)1);
    WAIT_FOR(su_wq_len(&wg_g.q_) == N + T);
    CHECK_ERR(weft_wg_destroy(&wg_g), -EBUSY);
    atomic_fetch_add(&wg_finished, 1);
    CHECK_OK(weft_wg_done(&wg_g));
    CHECK_EQ_INT(su_wq_len(&wg_g.q_), 0);
    for (int i = 0; i < N; i++)
        su_join(t[i]);
    for (int i = 0; i < T; i++)
        su_thread_join(th[i]);
    CHECK_OK(weft_wg_destroy(&wg_g));
    test_rt_destroy_clean(rt);
}

static void *wg_timed(void *arg)
{
    weft_wg *g = arg;
    uint64_t t0 = weft_now_ns();
    CHECK_ERR(weft_wg_wait_until(g, t0 + 20 * SU_MS), -ETIMEDOUT);
    CHECK_CMP_U64(weft_now_ns() - t0, >=, 20 * SU_MS);
    return NULL;
}

TEST(api, wg_wait_until_timeout)
{
    weft_rt *rt = test_rt_workers(256, 2);
    weft_wg g = WEFT_WG_INIT;
    CHECK_OK(weft_wg_add(&g, 1));
    su_join(su_spawn(rt, wg_timed, &g));
    wg_timed(&g);
    CHECK_EQ_INT(su_wq_len(&g.q_), 0);
    CHECK_OK(weft_wg_done(&g));
    CHECK_OK(weft_wg_destroy(&g));
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

TEST(api, wg_destroyed_and_null_einval)
{
    weft_wg g = WEFT_WG_INIT;
    CHECK_OK(weft_wg_destroy(&g));
    CHECK_ERR(weft_wg_destroy(&g), -EINVAL);
    CHECK_ERR(weft_wg_add(&g, 1), -EINVAL);
    CHECK_ERR(weft_wg_done(&g), -EINVAL);
    CHECK_ERR(weft_wg_wait(&g), -EINVAL);
    CHECK_ERR(weft_wg_wait_until(&g, weft_now_ns() + SU_MS), -EINVAL);
    CHECK_ERR(weft_wg_init(NULL), -EINVAL);
    CHECK_ERR(weft_wg_destroy(NULL), -EINVAL);
    CHECK_ERR(weft_wg_add(NULL, 1), -EINVAL);
    CHECK_ERR(weft_wg_done(NULL), -EINVAL);
    CHECK_ERR(weft_wg_wait(NULL), -EINVAL);
    CHECK_ERR(weft_wg_wait_until(NULL, WEFT_NO_DEADLINE), -EINVAL);
}
