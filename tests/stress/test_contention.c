/*
 * test_contention.c - polls are judged by the time their thread ran, not
 * by wall time. The runtime's workers share one CPU with busy-spinning
 * threads of the same process (the monitor alone keeps every CPU), so the
 * kernel takes that CPU from a worker for milliseconds at a time, in the
 * middle of polls that hold a few microseconds of work. Such polls must
 * not count as slow polls or violations, be warned about, preempted or
 * isolated; a task that really spins, under the same contention, still
 * is warned and isolated.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"
#include "preempt_util.h"

#define MS 1000000ull
enum { SPINNERS = 4, BATCH = 64 };

/* ---- the contention ---------------------------------------------------- */

typedef struct {
    cpu_set_t all; /* the process's CPUs before the test */
    pthread_t spin[SPINNERS];
    _Atomic int stop;
} crowd;

static void *spinner(void *arg)
{
    crowd *c = arg;
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed))
        ;
    return NULL;
}

/* Pin the calling thread to its first CPU: the runtime created next
 * inherits it for its workers. */
static void crowd_pin(crowd *c)
{
    CHECK_EQ_INT(sched_getaffinity(0, sizeof c->all, &c->all), 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &c->all)) {
            CPU_SET(i, &one);
            break;
        }
    CHECK_EQ_INT(pthread_setaffinity_np(pthread_self(), sizeof one, &one), 0);
}

/* A runtime of two workers on that CPU; its monitor gets every CPU back,
 * so that it keeps looking while the workers wait for theirs, and the
 * spinners start on the workers' CPU. */
static weft_rt *crowd_rt(crowd *c, weft_warn_fn fn)
{
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 2;
    cfg.max_tasks = 1024;
    weft_rt *rt = test_rt_cfg(&cfg);
    CHECK_OK(weft_set_warn_callback(rt, fn, NULL));
    CHECK_EQ_INT(pthread_setaffinity_np(rt->mon_thread, sizeof c->all, &c->all),
                 0);
    atomic_store(&c->stop, 0);
    for (int i = 0; i < SPINNERS; i++)
        CHECK_EQ_INT(pthread_create(&c->spin[i], NULL, spinner, c), 0);
    return rt;
}

static void crowd_end(crowd *c)
{
    atomic_store(&c->stop, 1);
    for (int i = 0; i < SPINNERS; i++)
        CHECK_EQ_INT(pthread_join(c->spin[i], NULL), 0);
    CHECK_EQ_INT(pthread_setaffinity_np(pthread_self(), sizeof c->all, &c->all),
                 0);
}

/* Time the workers' threads spent runnable but off the CPU so far
 * (run_delay in /proc/self/task/TID/schedstat), ns: proof that the
 * contention happened. 0 where schedstat is missing. */
static uint64_t workers_run_delay(weft_rt *rt)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        char path[64], buf[128];
        snprintf(path, sizeof path, "/proc/self/task/%d/schedstat",
                 atomic_load(&rt->thr[i].tid));
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = 0;
        unsigned long long cpu = 0, delay = 0;
        if (sscanf(buf, "%llu %llu", &cpu, &delay) == 2)
            sum += delay;
    }
    return sum;
}

static _Atomic int warnings, hog_warnings;

static void on_warn(void *arg, weft_task t, const char *name, uint64_t ns)
{
    (void)arg;
    (void)t;
    (void)ns;
    atomic_fetch_add(&warnings, 1);
    if (!strcmp(name, "hog"))
        atomic_fetch_add(&hog_warnings, 1);
}

/* ---- short polls only -------------------------------------------------- */

static void *polite(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        weft_yield();
    return NULL;
}

static void *polite_main(void *arg)
{
    long *tasks = arg;
    static const weft_spawn_attr pre = {WEFT_PRIO_NORMAL, WEFT_STACK_DEFAULT,
                                        WEFT_PREEMPTIBLE, "polite"};
    uint64_t t0 = weft_now_ns();
    /* Two seconds of batches, half of each preemptible. */
    while (weft_now_ns() - t0 < 2000 * MS) {
        weft_task t[BATCH];
        for (int i = 0; i < BATCH; i++)
            CHECK_OK(
                weft_spawn(NULL, &t[i], polite, NULL, i % 2 ? &pre : NULL));
        for (int i = 0; i < BATCH; i++)
            CHECK_OK(weft_join(t[i], NULL));
        *tasks += BATCH;
    }
    return NULL;
}

/* One 2 s trial; 1 when any poll was judged long. */
static int short_polls_trial(void)
{
    crowd c;
    crowd_pin(&c);
    atomic_store(&warnings, 0);
    weft_rt *rt = crowd_rt(&c, on_warn);
    uint64_t delay0 = workers_run_delay(rt);
    long tasks = 0;
    test_run(rt, polite_main, &tasks);
    uint64_t delayed = workers_run_delay(rt) - delay0;
    crowd_end(&c);
    weft_stats s = test_stats(rt);
    uint64_t iso = atomic_load(&rt->isolations);
    int warned = atomic_load(&warnings);
    fprintf(stderr,
            "# %ld tasks; workers off-CPU while runnable %llu ms; slow "
            "%llu, violations %llu, preemptions %llu, warnings %d, "
            "isolations %llu\n",
            tasks, (unsigned long long)(delayed / MS),
            (unsigned long long)s.slow_polls, (unsigned long long)s.violations,
            (unsigned long long)s.preemptions, warned, (unsigned long long)iso);
    /* The contention was real: over 2 s, the two workers waited for
     * their CPU far longer than a slow poll, many times over. */
    if (delay0 || delayed)
        CHECK_CMP_U64(delayed, >=, 200 * MS);
    test_rt_destroy_clean(rt);
    return s.slow_polls || s.violations || s.preemptions || warned || iso;
}

/* A trial that judged a poll long is made again, up to three in all: the
 * host of this project's VMs stops a CPU for 100 ms now and then, and a
 * thread's CPU clock runs on across the stop (docs/decisions/0009), so a
 * short poll it lands in is judged 100 ms long (CI's ucontext tree: slow
 * 1, violations 1, warnings 3, once). Judging polls by wall time, which
 * this test guards against, fails every trial. */
TEST_T(stress, contention_short_polls_not_judged_hogs, 60)
{
    /* Under TSan the same tasks take some polls of over 5 ms of their
     * thread's own time (15 in a run of 2176 tasks): the polls are no
     * longer short. */
    if (TEST_TSAN)
        TEST_SKIP("TSan makes these polls long in CPU time");
    int bad = 0;
    for (int trial = 0; trial < 3 && (bad = short_polls_trial()); trial++)
        ;
    CHECK_EQ_INT(bad, 0);
}

/* ---- a real hog under the same contention ------------------------------ */

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *hog(void *arg)
{
    weft_rt *rt = arg;
    /* Not preemptible: it keeps its thread, whose CPU clock it reads.
     * 200 ms of CPU, or until isolated (then its thread runs at nice 19
     * beside the spinners and would take long to get there), 20 s at
     * most. */
    uint64_t c0 = thread_cpu_ns(), t0 = weft_now_ns();
    while (thread_cpu_ns() - c0 < 200 * MS &&
           !atomic_load_explicit(&rt->isolations, memory_order_relaxed) &&
           weft_now_ns() - t0 < 20000 * MS)
        ;
    return NULL;
}

static void *hog_main(void *arg)
{
    weft_task h;
    weft_spawn_attr ha = WEFT_SPAWN_ATTR_INIT;
    ha.name = "hog";
    CHECK_OK(weft_spawn(NULL, &h, hog, arg, &ha));
    CHECK_OK(weft_join(h, NULL));
    return NULL;
}

TEST_T(stress, contention_real_hog_still_caught, 60)
{
    skip_tsan();
    crowd c;
    crowd_pin(&c);
    weft_rt *rt = crowd_rt(&c, on_warn);
    test_run(rt, hog_main, rt);
    crowd_end(&c);
    /* WARN, YIELD and ISOLATE, one endless poll: as on a quiet machine,
     * only later in wall time. */
    CHECK_CMP_INT(atomic_load(&hog_warnings), >=, 1);
    CHECK_CMP_U64(test_stats(rt).violations, >=, 1);
    CHECK_CMP_U64(atomic_load(&rt->isolations), >=, 1);
    test_rt_destroy_clean(rt);
}
