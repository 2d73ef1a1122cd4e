/*
 * test_isolate.c - isolation: a task that holds its worker and cannot be
 * preempted (not preemptible, or blocked in a system call) keeps its
 * thread, and the worker's other tasks go on, on a spare thread that
 * takes the worker over; the task itself finishes normally, and the
 * thread goes back to the pool.
 *
 * Skipped under ThreadSanitizer: the handoff is done by the monitor's
 * signal, which TSan defers until the thread calls a function it
 * intercepts (a spinning task calls none).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"
#include "preempt_util.h"

#define MS 1000000ull

/* A probe that sleeps 1 ms at a time until told to stop, counting. */
typedef struct {
    _Atomic int stop;
    _Atomic long wakes;
} probe_ctx;

static void *probe(void *arg)
{
    probe_ctx *p = arg;
    while (!atomic_load(&p->stop)) {
        weft_sleep_ns(MS);
        atomic_fetch_add(&p->wakes, 1);
    }
    return NULL;
}

/* ---- a spinner that is not preemptible ---------------------------------- */

typedef struct {
    probe_ctx *p;
    long wakes_during;
    int ran_on_other_thread;
} spin_ctx;

static void *hog(void *arg)
{
    spin_ctx *s = arg;
    pthread_t me = pthread_self();
    long before = atomic_load(&s->p->wakes);
    uint64_t t0 = weft_now_ns();
    /* 400 ms, and on until the probe has woken 20 times meanwhile (it
     * cannot without isolation; a loaded machine may delay the monitor),
     * 10 s at most. */
    while (weft_now_ns() - t0 < 400 * MS ||
           (atomic_load(&s->p->wakes) - before < 20 &&
            weft_now_ns() - t0 < 10000 * MS))
        ;
    s->wakes_during = atomic_load(&s->p->wakes) - before;
    s->ran_on_other_thread = !pthread_equal(me, pthread_self());
    weft_yield(); /* lets its thread go back to the pool */
    return NULL;
}

/* The warn callback: called on the monitor thread once per promotion to
 * WARN or above. */
static _Atomic int hog_warnings, other_warnings;

static void on_warn(void *arg, weft_task t, const char *name, uint64_t ns)
{
    (void)arg;
    (void)t;
    (void)ns;
    if (!strcmp(name, "hog"))
        atomic_fetch_add(&hog_warnings, 1);
    else
        atomic_fetch_add(&other_warnings, 1);
}

static void *spin_main(void *arg)
{
    spin_ctx *s = arg;
    weft_task tp, th;
    weft_spawn_attr ha = WEFT_SPAWN_ATTR_INIT;
    ha.name = "hog";
    CHECK_OK(weft_spawn(NULL, &tp, probe, s->p, NULL));
    weft_yield(); /* the probe parks on its timer */
    CHECK_OK(weft_spawn(NULL, &th, hog, s, &ha));
    CHECK_OK(weft_join(th, NULL));
    atomic_store(&s->p->stop, 1);
    CHECK_OK(weft_join(tp, NULL));
    return NULL;
}

TEST(api, isolate_spinner_probe_goes_on)
{
    skip_tsan();
    weft_rt *rt = rt1();
    CHECK_OK(weft_set_warn_callback(rt, on_warn, NULL));
    probe_ctx p = {0, 0};
    spin_ctx s = {&p, 0, 0};
    test_run(rt, spin_main, &s);
    /* Warned once per escalation: WARN, YIELD, ISOLATE (balanced policy,
     * one endless poll climbs them all), and nobody else. */
    CHECK_EQ_INT(atomic_load(&hog_warnings), 3);
    CHECK_EQ_INT(atomic_load(&other_warnings), 0);
    /* 400 ms of spinning: isolated within a few budgets, after which the
     * probe wakes every ms on the worker's new thread. */
    CHECK_CMP_INT(s.wakes_during, >=, 20);
    CHECK_CMP_U64(atomic_load(&rt->isolations), >=, 1);
    CHECK_EQ_U64(test_stats(rt).preemptions, 0); /* not preemptible */
    test_rt_destroy_clean(rt);
}

/* ---- a task blocked in a system call ------------------------------------ */

typedef struct {
    probe_ctx *p;
    int fd;
    long wakes_during;
    ssize_t got;
    char byte;
} read_ctx;

static void *reader(void *arg)
{
    read_ctx *r = arg;
    long before = atomic_load(&r->p->wakes);
    r->got = read(r->fd, &r->byte, 1); /* blocks its thread */
    r->wakes_during = atomic_load(&r->p->wakes) - before;
    return NULL;
}

static void *read_main(void *arg)
{
    read_ctx *r = arg;
    weft_task tp, tr;
    CHECK_OK(weft_spawn(NULL, &tp, probe, r->p, NULL));
    weft_yield();
    CHECK_OK(weft_spawn(NULL, &tr, reader, r, NULL));
    CHECK_OK(weft_join(tr, NULL));
    atomic_store(&r->p->stop, 1);
    CHECK_OK(weft_join(tp, NULL));
    return NULL;
}

typedef struct {
    weft_rt *rt;
    read_ctx *r;
    int wfd;
} writer_ctx;

static void *late_writer(void *arg)
{
    writer_ctx *w = arg;
    usleep(400 * 1000);
    char c = 'x';
    CHECK_EQ_INT(write(w->wfd, &c, 1), 1);
    return NULL;
}

TEST(api, isolate_blocking_syscall)
{
    skip_tsan();
#if !defined(__x86_64__)
    TEST_SKIP("blocking system calls are recognised on x86_64 only");
#endif
    weft_rt *rt = rt1();
    int fds[2];
    CHECK_EQ_INT(pipe(fds), 0);
    probe_ctx p = {0, 0};
    read_ctx r = {&p, fds[0], 0, 0, 0};
    writer_ctx wc = {rt, &r, fds[1]};
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, late_writer, &wc), 0);
    test_run(rt, read_main, &r);
    CHECK_EQ_INT(pthread_join(th, NULL), 0);
    CHECK_EQ_INT(r.got, 1);
    CHECK_EQ_INT(r.byte, 'x');
    CHECK_CMP_INT(r.wakes_during, >=, 20);
    CHECK_CMP_U64(atomic_load(&rt->isolations), >=, 1);
    close(fds[0]);
    close(fds[1]);
    test_rt_destroy_clean(rt);
}

/* ---- a sleep the kernel does not restart ---------------------------------
 * clock_nanosleep is never restarted after a signal handler (signal(7)):
 * the isolation request's SIGURG ends it with EINTR. The handler refused
 * to isolate there (the PC was past the syscall instruction, not on it),
 * so the monitor asked again every tick: a task sleeping 20 ms at a time
 * saw EINTR from nearly every call (215 of 216 in 500 ms, found by a
 * program written from weft.h). Now the first EINTR isolates the worker
 * and the rest sleep in peace. */

static void *sleeper(void *arg)
{
    int *eintr = arg;
    uint64_t t0 = weft_now_ns();
    while (weft_now_ns() - t0 < 400 * MS) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        if (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL) == EINTR)
            (*eintr)++;
    }
    return NULL;
}

TEST(api, isolate_sleep_not_restarted_one_eintr)
{
    skip_tsan();
#if !defined(__x86_64__)
    TEST_SKIP("blocking system calls are recognised on x86_64 only");
#endif
    weft_rt *rt = rt1();
    int eintr = 0;
    test_run(rt, sleeper, &eintr);
    CHECK_CMP_INT(eintr, <=, 2);
    CHECK_CMP_U64(atomic_load(&rt->isolations), >=, 1);
    test_rt_destroy_clean(rt);
}

/* ---- threads are reused -------------------------------------------------- */

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* 150 ms, and on until its thread has also had 150 ms of CPU or has been
 * isolated (lowered to nice 19): the monitor judges the time its thread
 * ran, and on a loaded machine 150 ms of wall time may be too little to
 * reach the Isolate tier. 10 s at most. Not preemptible: it keeps its
 * thread, whose CPU clock it reads. */
static void *short_hog(void *arg)
{
    (void)arg;
    uint64_t t0 = weft_now_ns(), c0 = thread_cpu_ns();
    int nice0 = getpriority(PRIO_PROCESS, 0);
    while (weft_now_ns() - t0 < 150 * MS ||
           (thread_cpu_ns() - c0 < 150 * MS &&
            getpriority(PRIO_PROCESS, 0) == nice0 &&
            weft_now_ns() - t0 < 10000 * MS))
        ;
    return NULL;
}

static void *reuse_main(void *arg)
{
    probe_ctx *p = arg;
    weft_task tp;
    CHECK_OK(weft_spawn(NULL, &tp, probe, p, NULL));
    weft_yield();
    for (int i = 0; i < 6; i++) {
        weft_task h;
        CHECK_OK(weft_spawn(NULL, &h, short_hog, NULL, NULL));
        CHECK_OK(weft_join(h, NULL));
    }
    atomic_store(&p->stop, 1);
    CHECK_OK(weft_join(tp, NULL));
    return NULL;
}

TEST_T(api, isolate_threads_reused, 60)
{
    skip_tsan();
    weft_rt *rt = rt1();
    probe_ctx p = {0, 0};
    test_run(rt, reuse_main, &p);
    /* Six isolations, one worker: more handoffs than the table has
     * threads, so retired threads were pooled and used again. */
    CHECK_CMP_U64(atomic_load(&rt->isolations), >=, 4);
    CHECK_CMP_U64(atomic_load(&rt->isolations), >, rt->nthr - 1);
    test_rt_destroy_clean(rt);
}

/* ---- a task that yields is never judged a hog --------------------------- */

static _Atomic int yield_warnings;
static _Atomic int yield_stop;

static void on_yield_warn(void *arg, weft_task t, const char *name, uint64_t ns)
{
    (void)arg;
    (void)t;
    (void)name;
    (void)ns;
    atomic_fetch_add(&yield_warnings, 1);
}

static void *yield_loop(void *arg)
{
    uint64_t end = weft_now_ns() + (uint64_t)(uintptr_t)arg;
    while (weft_now_ns() < end)
        weft_yield();
    return NULL;
}

static void *low_until_stop(void *arg)
{
    (void)arg;
    while (!atomic_load(&yield_stop))
        weft_yield();
    return NULL;
}

/* A yield that finds nothing else to run (a lone task; or, under strict
 * fairness, a critical task while only a lower band waits) let the task
 * go on without ending its poll: the monitor timed one endless poll,
 * warned "ran 10 ms without yielding" and isolated it at about 80 ms
 * (found by programs written from weft.h). Such a yield now ends the
 * poll.
 *
 * A trial with a warning is made again, up to three in all: the host of
 * this project's VMs stops a CPU for 100 ms now and then, and the
 * thread's CPU clock runs on across the stop (docs/decisions/0009), so
 * the poll between two yields can be judged to have run 100 ms (CI's
 * TSan tree: one warning, once). Before the fix every trial warned. */
static int yield_trial(void)
{
    weft_rt *rt = rt1();
    CHECK_OK(weft_set_warn_callback(rt, on_yield_warn, NULL));
    atomic_store(&yield_warnings, 0);
    weft_task t;
    CHECK_OK(
        weft_spawn(rt, &t, yield_loop, (void *)(uintptr_t)(200 * MS), NULL));
    CHECK_OK(weft_join(t, NULL));
    /* Strict fairness: the critical yielder always runs first. */
    weft_policy p;
    CHECK_OK(weft_policy_get(rt, &p));
    p.fairness = WEFT_FAIR_STRICT;
    CHECK_OK(weft_policy_set(rt, &p));
    atomic_store(&yield_stop, 0);
    weft_spawn_attr lo = WEFT_SPAWN_ATTR_INIT, hi = WEFT_SPAWN_ATTR_INIT;
    lo.priority = WEFT_PRIO_LOW;
    hi.priority = WEFT_PRIO_CRITICAL;
    weft_task tl, th;
    CHECK_OK(weft_spawn(rt, &tl, low_until_stop, NULL, &lo));
    CHECK_OK(
        weft_spawn(rt, &th, yield_loop, (void *)(uintptr_t)(200 * MS), &hi));
    CHECK_OK(weft_join(th, NULL));
    atomic_store(&yield_stop, 1);
    CHECK_OK(weft_join(tl, NULL));
    int warned = atomic_load(&yield_warnings);
    uint64_t isolations = test_stats(rt).isolations;
    fprintf(stderr, "warnings %d, isolations %" PRIu64 "\n", warned,
            isolations);
    CHECK_OK(weft_rt_destroy(rt));
    return warned || isolations;
}

TEST(api, isolate_never_a_task_that_yields)
{
    int bad = 0;
    for (int trial = 0; trial < 3 && (bad = yield_trial()); trial++)
        ;
    CHECK_EQ_INT(bad, 0);
}
