/*
 * test_event.c - weft_event: set, reset, wait, deadlines, destroy; set
 * from a plain thread and from signal handlers (async-signal-safety):
 * on a blocked plain thread, on a worker running a task that spins
 * without ever switching, and a storm of handlers interrupting a thread
 * that keeps taking the event's lock.
 */
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include "sync_util.h"

static weft_event ev;
static _Atomic int ev_woke;

static void *ev_waiter(void *arg)
{
    (void)arg;
    CHECK_OK(weft_event_wait(&ev));
    CHECK(weft_event_is_set(&ev));
    atomic_fetch_add(&ev_woke, 1);
    return NULL;
}

static void ev_setup(void)
{
    CHECK_OK(weft_event_init(&ev));
    atomic_store(&ev_woke, 0);
}

TEST(api, event_set_reset_is_set)
{
    ev_setup();
    CHECK_EQ_INT(weft_event_is_set(&ev), 0);
    uint64_t t0 = weft_now_ns();
    CHECK_ERR(weft_event_wait_until(&ev, t0 + 10 * SU_MS), -ETIMEDOUT);
    CHECK_CMP_U64(weft_now_ns() - t0, >=, 10 * SU_MS);
    CHECK_OK(weft_event_set(&ev));
    CHECK_EQ_INT(weft_event_is_set(&ev), 1);
    CHECK_OK(weft_event_set(&ev));  /* idempotent */
    CHECK_OK(weft_event_wait(&ev)); /* lets later waits through */
    CHECK_OK(weft_event_wait(&ev));
    CHECK_OK(weft_event_wait_until(&ev, 1)); /* past deadline, satisfied */
    CHECK_OK(weft_event_reset(&ev));
    CHECK_EQ_INT(weft_event_is_set(&ev), 0);
    CHECK_OK(weft_event_reset(&ev));
    CHECK_ERR(weft_event_wait_until(&ev, 1), -ETIMEDOUT);
    CHECK_OK(weft_event_destroy(&ev));
    weft_event s = WEFT_EVENT_INIT;
    CHECK_EQ_INT(weft_event_is_set(&s), 0);
    CHECK_OK(weft_event_set(&s));
    CHECK_EQ_INT(weft_event_is_set(&s), 1);
}

static void *ev_timed(void *arg)
{
    (void)arg;
    uint64_t t0 = weft_now_ns();
    CHECK_ERR(weft_event_wait_until(&ev, t0 + 20 * SU_MS), -ETIMEDOUT);
    CHECK_CMP_U64(weft_now_ns() - t0, >=, 20 * SU_MS);
    return NULL;
}

TEST(api, event_wait_until_timeout_task)
{
    weft_rt *rt = test_rt_workers(256, 2);
    ev_setup();
    su_join(su_spawn(rt, ev_timed, NULL));
    CHECK_OK(weft_event_destroy(&ev)); /* the waiter's node is gone */
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

TEST(api, event_set_wakes_all_waiters)
{
    enum { N = 30, T = 3 };
    weft_rt *rt = test_rt_workers(256, 2);
    ev_setup();
    weft_task t[N];
    pthread_t th[T];
    for (int i = 0; i < N; i++)
        t[i] = su_spawn(rt, ev_waiter, NULL);
    for (int i = 0; i < T; i++)
        th[i] = su_thread(ev_waiter, NULL);
    WAIT_FOR(test_stats(rt).parks >= N);
    su_sleep_ms(20); /* the plain threads have queued too, very likely */
    CHECK_ERR(weft_event_destroy(&ev), -EBUSY);
    CHECK_EQ_INT(atomic_load(&ev_woke), 0);
    CHECK_OK(weft_event_set(&ev));
    for (int i = 0; i < N; i++)
        su_join(t[i]);
    for (int i = 0; i < T; i++)
        su_thread_join(th[i]);
    CHECK_EQ_INT(atomic_load(&ev_woke), N + T);
    CHECK_OK(weft_event_destroy(&ev));
    test_rt_destroy_clean(rt);
}

static void *ev_set_thread(void *arg)
{
    (void)arg;
    su_sleep_ms(10);
    CHECK_OK(weft_event_set(&ev));
    return NULL;
}

TEST(api, event_set_from_plain_thread_wakes_task)
{
    weft_rt *rt = test_rt_workers(256, 2);
    ev_setup();
    weft_task t = su_spawn(rt, ev_waiter, NULL);
    WAIT_FOR(test_stats(rt).parks >= 1);
    su_thread_join(su_thread(ev_set_thread, NULL));
    su_join(t);
    CHECK_EQ_INT(atomic_load(&ev_woke), 1);
    CHECK_OK(weft_event_destroy(&ev));
    test_rt_destroy_clean(rt);
}

TEST(api, event_set_from_task_wakes_thread)
{
    weft_rt *rt = test_rt_workers(256, 2);
    ev_setup();
    pthread_t th = su_thread(ev_waiter, NULL);
    su_sleep_ms(20);
    su_join(su_spawn(rt, ev_set_thread, NULL));
    su_thread_join(th);
    CHECK_EQ_INT(atomic_load(&ev_woke), 1);
    CHECK_OK(weft_event_destroy(&ev));
    test_rt_destroy_clean(rt);
}

TEST(api, event_destroy_with_waiters_ebusy_then_einval)
{
    weft_rt *rt = test_rt_workers(256, 2);
    ev_setup();
    weft_task t = su_spawn(rt, ev_waiter, NULL);
    WAIT_FOR(test_stats(rt).parks >= 1);
    CHECK_ERR(weft_event_destroy(&ev), -EBUSY);
    CHECK_OK(weft_event_set(&ev));
    su_join(t);
    CHECK_OK(weft_event_destroy(&ev));
    CHECK_ERR(weft_event_destroy(&ev), -EINVAL);
    CHECK_ERR(weft_event_set(&ev), -EINVAL);
    CHECK_ERR(weft_event_reset(&ev), -EINVAL);
    CHECK_ERR(weft_event_wait(&ev), -EINVAL);
    CHECK_ERR(weft_event_wait_until(&ev, weft_now_ns() + SU_MS), -EINVAL);
    CHECK_EQ_INT(weft_event_is_set(&ev), 0);
    CHECK_ERR(weft_event_init(NULL), -EINVAL);
    CHECK_ERR(weft_event_destroy(NULL), -EINVAL);
    CHECK_ERR(weft_event_set(NULL), -EINVAL);
    CHECK_ERR(weft_event_reset(NULL), -EINVAL);
    CHECK_ERR(weft_event_wait(NULL), -EINVAL);
    CHECK_ERR(weft_event_wait_until(NULL, WEFT_NO_DEADLINE), -EINVAL);
    CHECK_EQ_INT(weft_event_is_set(NULL), 0);
    test_rt_destroy_clean(rt);
}

/* ---- from signal handlers --------------------------------------------- */

static _Atomic int sig_count;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    weft_event_set(&ev);
    atomic_fetch_add(&sig_count, 1);
    errno = saved;
}

static void install(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ_INT(sigaction(sig, &sa, NULL), 0);
    atomic_store(&sig_count, 0);
}

/* SIGALRM from an interval timer. Workers are created with SIGALRM
 * blocked, so it is delivered to the main thread, which polls in
 * clock_nanosleep (under TSan a handler only runs at an intercepted call:
 * a thread parked in a raw futex syscall would defer it indefinitely). */
TEST(api, event_set_from_sigalrm_handler_wakes_task)
{
    sigset_t alrm, old;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    CHECK_EQ_INT(pthread_sigmask(SIG_BLOCK, &alrm, &old), 0);
    weft_rt *rt = test_rt_workers(256, 2); /* workers inherit the mask */
    CHECK_EQ_INT(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
    ev_setup();
    install(SIGALRM);
    weft_task t = su_spawn(rt, ev_waiter, NULL);
    WAIT_FOR(test_stats(rt).parks >= 1);
    struct itimerval it = {{0, 0}, {0, 10000}};
    CHECK_EQ_INT(setitimer(ITIMER_REAL, &it, NULL), 0);
    WAIT_FOR(atomic_load(&ev_woke) == 1);
    su_join(t);
    CHECK_EQ_INT(atomic_load(&sig_count), 1);
    CHECK_OK(weft_event_destroy(&ev));
    test_rt_destroy_clean(rt);
}

static _Atomic int blocked_stop, blocked_ready;

static void *blocked_thread(void *arg)
{
    (void)arg;
    atomic_store(&blocked_ready, 1);
    while (!atomic_load(&blocked_stop))
        pause(); /* blocked in the kernel when the signal comes */
    return NULL;
}

TEST(api, event_set_from_handler_on_blocked_plain_thread)
{
    weft_rt *rt = test_rt_workers(256, 2);
    ev_setup();
    install(SIGUSR1);
    atomic_store(&blocked_stop, 0);
    atomic_store(&blocked_ready, 0);
    weft_task t = su_spawn(rt, ev_waiter, NULL);
    WAIT_FOR(test_stats(rt).parks >= 1);
    pthread_t th = su_thread(blocked_thread, NULL);
    WAIT_FOR(atomic_load(&blocked_ready));
    su_sleep_ms(5);
    CHECK_EQ_INT(pthread_kill(th, SIGUSR1), 0);
    su_join(t);
    CHECK_EQ_INT(atomic_load(&ev_woke), 1);
    atomic_store(&blocked_stop, 1);
    CHECK_EQ_INT(pthread_kill(th, SIGUSR1), 0);
    su_thread_join(th);
    CHECK_OK(weft_event_destroy(&ev));
    test_rt_destroy_clean(rt);
}

/* A task spins on worker A and never switches; the waiter is parked; the
 * signal is delivered to A's thread, and its handler's set must wake the
 * waiter (on the other worker: A never schedules). The waiter then stops
 * the spinner. */
static _Atomic int spin_stop;
static _Atomic(pthread_t) spin_thread;
static _Atomic int spin_ready;

static void *spinner(void *arg)
{
    (void)arg;
    atomic_store(&spin_thread, pthread_self());
    atomic_store(&spin_ready, 1);
    uint64_t end = weft_now_ns() + 20000 * SU_MS; /* bounded: no hang */
    while (!atomic_load(&spin_stop) && weft_now_ns() < end)
        ;
    return (void *)(uintptr_t)atomic_load(&spin_stop);
}

static void *waiter_then_stop(void *arg)
{
    (void)arg;
    CHECK_OK(weft_event_wait(&ev));
    atomic_fetch_add(&ev_woke, 1);
    atomic_store(&spin_stop, 1);
    return NULL;
}

TEST_T(api, event_set_from_handler_on_worker_running_spinning_task, 60)
{
    weft_rt *rt = test_rt_workers(256, 2);
    ev_setup();
    install(SIGUSR1);
    atomic_store(&spin_stop, 0);
    atomic_store(&spin_ready, 0);
    weft_task w = su_spawn(rt, waiter_then_stop, NULL);
    WAIT_FOR(test_stats(rt).parks >= 1);
    weft_task s = su_spawn(rt, spinner, NULL);
    WAIT_FOR(atomic_load(&spin_ready));
    su_sleep_ms(5);
    CHECK_EQ_INT(pthread_kill(atomic_load(&spin_thread), SIGUSR1), 0);
    su_join(w);
    CHECK_EQ_U64((uintptr_t)su_join(s), 1); /* stopped by the waiter */
    CHECK_EQ_INT(atomic_load(&sig_count), 1);
    CHECK_EQ_INT(atomic_load(&ev_woke), 1);
    CHECK_OK(weft_event_destroy(&ev));
    test_rt_destroy_clean(rt);
}

/* A plain thread keeps taking the event's lock (timed waits that time
 * out, resets) while signals whose handler sets the event interrupt it:
 * sets then land while the interrupted code holds the lock. Nothing may
 * deadlock, and the last set still wakes a task. */
static _Atomic int storm_stop;
static _Atomic(pthread_t) storm_tid;

static void *storm_thread(void *arg)
{
    (void)arg;
    atomic_store(&storm_tid, pthread_self());
    while (!atomic_load(&storm_stop)) {
        weft_event_wait_until(&ev, weft_now_ns() + 20000);
        CHECK_OK(weft_event_reset(&ev));
    }
    return NULL;
}

TEST_T(api, event_set_signal_storm_no_deadlock, 60)
{
    weft_rt *rt = test_rt_workers(256, 2);
    ev_setup();
    install(SIGUSR1);
    atomic_store(&storm_stop, 0);
    atomic_store(&storm_tid, (pthread_t)0);
    pthread_t th = su_thread(storm_thread, NULL);
    WAIT_FOR(atomic_load(&storm_tid) != (pthread_t)0);
    int n = TEST_SANITIZED ? 500 : 3000;
    for (int i = 0; i < n; i++) {
        CHECK_EQ_INT(pthread_kill(th, SIGUSR1), 0);
        if (i % 4 == 0)
            sched_yield();
    }
    WAIT_FOR(atomic_load(&sig_count) >= 1);
    atomic_store(&storm_stop, 1);
    su_thread_join(th);
    /* Still a working event. */
    CHECK_OK(weft_event_reset(&ev));
    atomic_store(&ev_woke, 0);
    weft_task t = su_spawn(rt, ev_waiter, NULL);
    WAIT_FOR(test_stats(rt).parks >= 1);
    CHECK_EQ_INT(atomic_load(&ev_woke), 0);
    raise(SIGUSR1);
    su_join(t);
    CHECK_EQ_INT(atomic_load(&ev_woke), 1);
    fprintf(stderr, "signals handled: %d of %d sent\n", atomic_load(&sig_count),
            n + 1);
    CHECK_OK(weft_event_destroy(&ev));
    test_rt_destroy_clean(rt);
}
