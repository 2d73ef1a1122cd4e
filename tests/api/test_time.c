/*
 * test_time.c - weft_now_ns, sleeps and deadlines: monotonic time, sleep
 * accuracy, many concurrent sleepers, timers cancelled before they fire
 * (also from another worker than the one they were armed on), and every
 * blocking call's _until variant: timing out from a task and from a plain
 * thread, and deadlines already in the past.
 */
#include <stdlib.h>

#include "sync_util.h"

/* ---- time and sleeps ---------------------------------------------------- */

static void *monotonic_reader(void *arg)
{
    (void)arg;
    uint64_t prev = weft_now_ns();
    for (int i = 0; i < 200000; i++) {
        uint64_t t = weft_now_ns();
        if (t < prev)
            weft_check_fail(__FILE__, __LINE__,
                            "time went back: %" PRIu64 " after %" PRIu64, t,
                            prev);
        prev = t;
        if (i % 1000 == 0)
            weft_yield(); /* may resume on another worker */
    }
    return NULL;
}

TEST(api, now_ns_monotonic)
{
    weft_rt *rt = test_rt_workers(256, 2);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ref = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t now = weft_now_ns();
    CHECK_CMP_U64(now, >=, ref); /* CLOCK_MONOTONIC, nanoseconds */
    CHECK_CMP_U64(now - ref, <, 1000 * SU_MS);
    weft_task t[3];
    for (int i = 0; i < 3; i++)
        t[i] = su_spawn(rt, monotonic_reader, NULL);
    monotonic_reader(NULL);
    for (int i = 0; i < 3; i++)
        su_join(t[i]);
    test_rt_destroy_clean(rt);
}

enum { ACC_N = 200 };

static void *sleep_accuracy(void *arg)
{
    uint64_t *late = arg;
    for (int i = 0; i < ACC_N; i++) {
        uint64_t d = weft_now_ns() + SU_MS;
        CHECK_OK(weft_sleep_until(d));
        uint64_t t = weft_now_ns();
        CHECK_CMP_U64(t, >=, d); /* never early */
        late[i] = t - d;
    }
    return NULL;
}

static uint64_t p99_of(uint64_t *late)
{
    qsort(late, ACC_N, sizeof late[0], su_cmp_u64);
    return late[ACC_N * 99 / 100];
}

/* The bound is 2 ms at p99 on an idle runtime. The machine itself may be
 * busy (the suite runs groups in parallel on shared cores), so each
 * attempt also measures plain clock_nanosleep sleeps as a baseline: an
 * attempt passes with p99 < 2 ms, or with p99 within 2 ms of the
 * kernel's own p99 measured right after it, in the same attempt (the
 * lateness is the machine's, not the runtime's). Each attempt is judged
 * against its own baseline: CI once failed comparing weft's best attempt
 * (p99 2.26 ms, whose baseline was 3.20 ms) with the best baseline of
 * another attempt (0.11 ms), taken while a compiler had stopped. Three
 * attempts at most. Never early, in every attempt. */
TEST_T(api, sleep_accuracy_idle_runtime, 60)
{
    if (TEST_CHAOS)
        TEST_SKIP("the chaos build stalls every ordered atomic by design: "
                  "sleep accuracy is tested in the other builds");
    weft_rt *rt = test_rt_workers(256, 2);
    uint64_t late[ACC_N], bound = (TEST_SANITIZED ? 20 : 2) * SU_MS;
    uint64_t best = UINT64_MAX, best_base = 0;
    int pass = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        su_join(su_spawn(rt, sleep_accuracy, late));
        uint64_t mx = 0, p50;
        for (int i = 0; i < ACC_N; i++)
            mx = late[i] > mx ? late[i] : mx;
        uint64_t p99 = p99_of(late);
        p50 = late[ACC_N / 2];
        for (int i = 0; i < ACC_N; i++) { /* baseline: the kernel */
            uint64_t d = weft_now_ns() + SU_MS;
            struct timespec ts = {(time_t)(d / 1000000000u),
                                  (long)(d % 1000000000u)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
                   EINTR)
                ;
            late[i] = weft_now_ns() - d;
        }
        uint64_t base = p99_of(late);
        fprintf(stderr,
                "task sleep 1 ms x %d, lateness: p50 %.1f us, p99 %.1f us, "
                "max %.1f us (plain clock_nanosleep p99 %.1f us)\n",
                ACC_N, (double)p50 / 1e3, (double)p99 / 1e3, (double)mx / 1e3,
                (double)base / 1e3);
        if (p99 < best) { /* the best attempt, and its own baseline */
            best = p99;
            best_base = base;
        }
        if (p99 < bound || p99 < base + bound) {
            pass = 1;
            break;
        }
    }
    if (!pass)
        CHECK_CMP_U64(best, <, best_base + bound);
    /* weft_sleep_ns from a task and from a plain thread: never early. */
    sleep_accuracy(late);
    uint64_t t0 = weft_now_ns();
    CHECK_OK(weft_sleep_ns(3 * SU_MS));
    CHECK_CMP_U64(weft_now_ns() - t0, >=, 3 * SU_MS);
    CHECK_OK(weft_sleep_ns(0));
    CHECK_OK(weft_sleep_until(0));
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

/* Many sleepers at once, with deadlines spread over 100 ms. */
static weft_wg ms_wg;
static _Atomic uint64_t ms_early, ms_woke;
static uint64_t ms_base;

static void *ms_sleeper(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    uint64_t d = ms_base + (i * 7919 % 100) * SU_MS;
    weft_sleep_until(d);
    if (weft_now_ns() < d)
        atomic_fetch_add(&ms_early, 1);
    atomic_fetch_add(&ms_woke, 1);
    CHECK_OK(weft_wg_done(&ms_wg));
    return NULL;
}

static void *ms_main(void *arg)
{
    uintptr_t n = (uintptr_t)arg;
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.stack = WEFT_STACK_SMALL;
    a.flags = WEFT_DETACHED;
    CHECK_OK(weft_wg_add(&ms_wg, (int64_t)n));
    ms_base = weft_now_ns() + 200 * SU_MS;
    for (uintptr_t i = 0; i < n; i++)
        CHECK_OK(weft_spawn(NULL, NULL, ms_sleeper, (void *)i, &a));
    uint64_t spawned = weft_now_ns();
    CHECK_OK(weft_wg_wait(&ms_wg));
    fprintf(stderr,
            "%lu sleepers: spawned in %.1f ms, all woke %.1f ms "
            "after the first deadline\n",
            (unsigned long)n, (double)(spawned - (ms_base - 200 * SU_MS)) / 1e6,
            (double)(weft_now_ns() - ms_base) / 1e6);
    return NULL;
}

TEST_T(api, sleep_many_concurrent_tasks, 90)
{
    uintptr_t n = TEST_SANITIZED ? 10000 : 100000;
    weft_rt *rt = test_rt_workers((uint32_t)n + 256, 2);
    CHECK_OK(weft_wg_init(&ms_wg));
    test_run(rt, ms_main, (void *)n);
    test_wait_live(rt, 0, 10000);
    CHECK_EQ_U64(atomic_load(&ms_woke), n);
    CHECK_EQ_U64(atomic_load(&ms_early), 0);
    su_check_no_timers(rt);
    CHECK_OK(weft_wg_destroy(&ms_wg));
    test_rt_destroy_clean(rt);
}

/* ---- cancel before fire ------------------------------------------------ */

static weft_chan *cb_ch;

static void *cb_waiter(void *arg)
{
    (void)arg;
    uint64_t v, t0 = weft_now_ns();
    CHECK_OK(weft_chan_recv_until(cb_ch, &v, t0 + 10000 * SU_MS));
    CHECK_EQ_U64(v, 9);
    uint64_t dt = weft_now_ns() - t0;
    CHECK_CMP_U64(dt, <, 1000 * SU_MS * SU_SLOW);
    /* The 10 s timer is gone: a later wait is not disturbed by it. */
    t0 = weft_now_ns();
    CHECK_OK(weft_sleep_ns(30 * SU_MS));
    CHECK_CMP_U64(weft_now_ns() - t0, >=, 30 * SU_MS);
    return NULL;
}

static void *cb_sender(void *arg)
{
    (void)arg;
    su_sleep_ms(5);
    uint64_t v = 9;
    CHECK_OK(weft_chan_send(cb_ch, &v));
    return NULL;
}

TEST(api, timer_cancelled_before_fire)
{
    weft_rt *rt = test_rt_workers(256, 2);
    CHECK_OK(weft_chan_create(&cb_ch, sizeof(uint64_t), 0));
    weft_task w = su_spawn(rt, cb_waiter, NULL);
    weft_task s = su_spawn(rt, cb_sender, NULL);
    su_join(s);
    su_join(w);
    su_check_no_timers(rt);
    /* And from a plain-thread sender. */
    w = su_spawn(rt, cb_waiter, NULL);
    cb_sender(NULL);
    su_join(w);
    su_check_no_timers(rt);
    su_sleep_ms(20);
    CHECK_EQ_U64(test_stats(rt).live, 0);
    CHECK_OK(weft_chan_destroy(cb_ch));
    test_rt_destroy_clean(rt);
}

/* A task arms its deadline's timer on the worker it blocks on, is woken
 * by a sender and resumes on the other worker, and cancels from there.
 * Waiters record their worker before and after each wait. */
enum { XW_PAIRS = 4 };
static weft_chan *xw_ch[XW_PAIRS];
static long xw_rounds;
static _Atomic long xw_migrated, xw_done;

static void *xw_waiter(void *arg)
{
    int p = (int)(uintptr_t)arg;
    long moved = 0;
    for (long r = 0; r < xw_rounds; r++) {
        int before = su_worker_id();
        uint64_t v;
        CHECK_OK(
            weft_chan_recv_until(xw_ch[p], &v, weft_now_ns() + 10000 * SU_MS));
        CHECK_EQ_U64(v, (uint64_t)r);
        if (su_worker_id() != before)
            moved++;
    }
    atomic_fetch_add(&xw_migrated, moved);
    return NULL;
}

static void *xw_sender(void *arg)
{
    int p = (int)(uintptr_t)arg;
    for (long r = 0; r < xw_rounds; r++) {
        uint64_t v = (uint64_t)r;
        CHECK_OK(weft_chan_send(xw_ch[p], &v));
        if (r % 8 == 0)
            weft_yield();
    }
    return NULL;
}

static void *xw_churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&xw_done))
        weft_yield();
    return NULL;
}

TEST_T(api, timer_armed_on_one_worker_cancelled_on_another, 60)
{
    weft_rt *rt = test_rt_workers(256, 2);
    xw_rounds = TEST_SANITIZED ? 1000 : 5000;
    atomic_store(&xw_migrated, 0);
    atomic_store(&xw_done, 0);
    weft_task w[XW_PAIRS], c[2];
    pthread_t s[XW_PAIRS];
    weft_task st[XW_PAIRS];
    for (int i = 0; i < 2; i++)
        c[i] = su_spawn(rt, xw_churn, NULL);
    for (int p = 0; p < XW_PAIRS; p++) {
        CHECK_OK(weft_chan_create(&xw_ch[p], sizeof(uint64_t), 0));
        w[p] = su_spawn(rt, xw_waiter, (void *)(uintptr_t)p);
        if (p % 2)
            s[p] = su_thread(xw_sender, (void *)(uintptr_t)p);
        else
            st[p] = su_spawn(rt, xw_sender, (void *)(uintptr_t)p);
    }
    for (int p = 0; p < XW_PAIRS; p++) {
        su_join(w[p]);
        if (p % 2)
            su_thread_join(s[p]);
        else
            su_join(st[p]);
    }
    atomic_store(&xw_done, 1);
    for (int i = 0; i < 2; i++)
        su_join(c[i]);
    long moved = atomic_load(&xw_migrated);
    fprintf(stderr,
            "waits with a deadline that resumed on another worker: "
            "%ld of %ld\n",
            moved, XW_PAIRS * xw_rounds);
    CHECK_CMP_INT(moved, >, 0);
    su_check_no_timers(rt);
    for (int p = 0; p < XW_PAIRS; p++)
        CHECK_OK(weft_chan_destroy(xw_ch[p]));
    test_rt_destroy_clean(rt);
}

/* ---- every _until call times out ---------------------------------------- */

typedef struct until_env {
    weft_mutex held, cm;
    weft_cond c;
    weft_sem s;
    weft_wg g;
    weft_event e;
    weft_chan *rv, *full; /* cap 0; cap 1 and full */
} until_env;

static void env_init(until_env *u)
{
    CHECK_OK(weft_mutex_init(&u->held));
    CHECK_OK(weft_mutex_lock(&u->held));
    CHECK_OK(weft_mutex_init(&u->cm));
    CHECK_OK(weft_cond_init(&u->c));
    CHECK_OK(weft_sem_init(&u->s, 0));
    CHECK_OK(weft_wg_init(&u->g));
    CHECK_OK(weft_wg_add(&u->g, 1));
    CHECK_OK(weft_event_init(&u->e));
    CHECK_OK(weft_chan_create(&u->rv, sizeof(uint64_t), 0));
    CHECK_OK(weft_chan_create(&u->full, sizeof(uint64_t), 1));
    uint64_t v = 1;
    CHECK_OK(weft_chan_send(u->full, &v));
}

/* Everything unchanged, no waiter left: each destroy succeeds. */
static void env_destroy(until_env *u)
{
    CHECK_OK(weft_mutex_unlock(&u->held));
    CHECK_OK(weft_mutex_destroy(&u->held));
    CHECK_OK(weft_mutex_destroy(&u->cm));
    CHECK_OK(weft_cond_destroy(&u->c));
    CHECK_EQ_U64(weft_sem_value(&u->s), 0);
    CHECK_OK(weft_sem_destroy(&u->s));
    CHECK_OK(weft_wg_done(&u->g));
    CHECK_OK(weft_wg_destroy(&u->g));
    CHECK_EQ_INT(weft_event_is_set(&u->e), 0);
    CHECK_OK(weft_event_destroy(&u->e));
    uint64_t v;
    CHECK_ERR(weft_chan_try_recv(u->rv, &v), -EAGAIN);
    CHECK_OK(weft_chan_destroy(u->rv));
    CHECK_EQ_U64(weft_chan_len(u->full), 1);
    CHECK_OK(weft_chan_recv(u->full, &v));
    CHECK_EQ_U64(v, 1);
    CHECK_OK(weft_chan_destroy(u->full));
}

/* rel: deadline relative to now in ns (negative: in the past). Checks
 * each call returns -ETIMEDOUT after at least the deadline and, for past
 * deadlines, at once. */
#define EXPECT_TIMEOUT(call)                                                   \
    do {                                                                       \
        uint64_t t0_ = weft_now_ns();                                          \
        uint64_t dl_ = rel >= 0 ? t0_ + (uint64_t)rel : t0_ - (uint64_t)-rel;  \
        (void)dl_;                                                             \
        CHECK_ERR((call), -ETIMEDOUT);                                         \
        uint64_t t1_ = weft_now_ns();                                          \
        CHECK_CMP_U64(t1_, >=, dl_);                                           \
        if (rel <= 0)                                                          \
            CHECK_CMP_U64(t1_ - t0_, <, 50 * SU_MS * SU_SLOW);                 \
        else                                                                   \
            CHECK_CMP_U64(t1_ - t0_, <, 2000 * SU_MS * SU_SLOW);               \
    } while (0)

static void all_until_time_out(until_env *u, int64_t rel)
{
    uint64_t v = 5, w = 6;
    EXPECT_TIMEOUT(weft_mutex_lock_until(&u->held, dl_));
    CHECK_OK(weft_mutex_lock(&u->cm));
    EXPECT_TIMEOUT(weft_cond_wait_until(&u->c, &u->cm, dl_));
    CHECK_ERR(weft_mutex_try_lock(&u->cm), -EBUSY); /* re-acquired */
    CHECK_OK(weft_mutex_unlock(&u->cm));
    EXPECT_TIMEOUT(weft_sem_wait_until(&u->s, dl_));
    EXPECT_TIMEOUT(weft_wg_wait_until(&u->g, dl_));
    EXPECT_TIMEOUT(weft_event_wait_until(&u->e, dl_));
    EXPECT_TIMEOUT(weft_chan_send_until(u->rv, &v, dl_));
    EXPECT_TIMEOUT(weft_chan_send_until(u->full, &v, dl_));
    EXPECT_TIMEOUT(weft_chan_recv_until(u->rv, &v, dl_));
    weft_sel_case c[3] = {{u->rv, WEFT_SEL_RECV, &v, 1},
                          {u->full, WEFT_SEL_SEND, &w, 1},
                          {u->rv, WEFT_SEL_SEND, &w, 1}};
    EXPECT_TIMEOUT(weft_select_until(c, 3, dl_));
    uint64_t sd = rel >= 0 ? weft_now_ns() + (uint64_t)rel
                           : weft_now_ns() - (uint64_t)-rel;
    CHECK_OK(weft_sleep_until(sd));
    CHECK_CMP_U64(weft_now_ns(), >=, sd);
}

static void *until_in_task(void *arg)
{
    until_env *u = arg;
    all_until_time_out(u, (int64_t)(10 * SU_MS));
    all_until_time_out(u, -(int64_t)SU_MS);
    all_until_time_out(u, 0);
    return NULL;
}

TEST(api, until_every_call_times_out_task)
{
    weft_rt *rt = test_rt_workers(256, 2);
    until_env u;
    env_init(&u);
    su_join(su_spawn(rt, until_in_task, &u));
    env_destroy(&u);
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

TEST(api, until_every_call_times_out_thread)
{
    until_env u;
    env_init(&u);
    until_in_task(&u);
    env_destroy(&u);
}

/* Deadline 0 (long past) and just past: satisfiable calls succeed
 * ("still tries once without blocking"). */
static weft_chan *ps_rv;
static _Atomic int ps_blocking;

static void *ps_blocked_receiver(void *arg)
{
    (void)arg;
    uint64_t v;
    atomic_store(&ps_blocking, 1);
    CHECK_OK(weft_chan_recv(ps_rv, &v));
    return (void *)(uintptr_t)v;
}

static void *ps_blocked_sender(void *arg)
{
    (void)arg;
    uint64_t v = 31;
    atomic_store(&ps_blocking, 1);
    CHECK_OK(weft_chan_send(ps_rv, &v));
    return NULL;
}

static void *past_satisfiable(void *arg)
{
    weft_rt *rt = arg;
    uint64_t past[2] = {0, weft_now_ns() - SU_MS};
    for (int k = 0; k < 2; k++) {
        uint64_t d = past[k];
        weft_mutex m = WEFT_MUTEX_INIT;
        CHECK_OK(weft_mutex_lock_until(&m, d));
        CHECK_OK(weft_mutex_unlock(&m));
        weft_sem s = WEFT_SEM_INIT(1);
        CHECK_OK(weft_sem_wait_until(&s, d));
        CHECK_EQ_U64(weft_sem_value(&s), 0);
        weft_wg g = WEFT_WG_INIT;
        CHECK_OK(weft_wg_wait_until(&g, d));
        weft_event e = WEFT_EVENT_INIT;
        CHECK_OK(weft_event_set(&e));
        CHECK_OK(weft_event_wait_until(&e, d));
        weft_chan *b;
        CHECK_OK(weft_chan_create(&b, sizeof(uint64_t), 1));
        uint64_t v = 4;
        CHECK_OK(weft_chan_send_until(b, &v, d));
        v = 0;
        CHECK_OK(weft_chan_recv_until(b, &v, d));
        CHECK_EQ_U64(v, 4);
        weft_sel_case c = {b, WEFT_SEL_SEND, &v, 1};
        CHECK_EQ_INT(weft_select_until(&c, 1, d), 0);
        CHECK_EQ_INT(c.result, 0);
        CHECK_EQ_U64(weft_chan_len(b), 1);
        CHECK_OK(weft_chan_destroy(b));
        /* Rendezvous with a party already blocked on the other side. */
        CHECK_OK(weft_chan_create(&ps_rv, sizeof(uint64_t), 0));
        weft_task r = su_spawn(rt, ps_blocked_receiver, NULL);
        WAIT_FOR(atomic_exchange(&ps_blocking, 0));
        su_sleep_ms(20); /* it has blocked by now */
        v = 17;
        CHECK_OK(weft_chan_send_until(ps_rv, &v, d));
        CHECK_EQ_U64((uintptr_t)su_join(r), 17);
        weft_task s2 = su_spawn(rt, ps_blocked_sender, NULL);
        WAIT_FOR(atomic_exchange(&ps_blocking, 0));
        su_sleep_ms(20);
        weft_sel_case rc = {ps_rv, WEFT_SEL_RECV, &v, 1};
        CHECK_EQ_INT(weft_select_until(&rc, 1, d), 0);
        CHECK_EQ_U64(v, 31);
        su_join(s2);
        CHECK_OK(weft_chan_destroy(ps_rv));
    }
    return NULL;
}

TEST(api, until_past_deadline_satisfiable_succeeds_task)
{
    weft_rt *rt = test_rt_workers(256, 2);
    su_join(su_spawn(rt, past_satisfiable, rt));
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

TEST(api, until_past_deadline_satisfiable_succeeds_thread)
{
    weft_rt *rt = test_rt_workers(256, 2);
    past_satisfiable(rt);
    test_rt_destroy_clean(rt);
}
