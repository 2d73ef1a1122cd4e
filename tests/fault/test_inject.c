/*
 * test_inject.c - every failure along weft_rt_create, injected one call
 * at a time (inject.h): the Nth mmap, mprotect, pthread_create or
 * allocation fails, for every N the create makes. Each time the create
 * must return the documented error (-ENOMEM or -EAGAIN) with a
 * weft_last_error naming what failed, leave no mapping and no file
 * descriptor behind (/proc/self/maps and /proc/self/fd as before), and
 * leave the process able to create a runtime again. Growth paths are
 * covered too (the second half of this file): stacks whose guard cannot
 * be installed run on a canary, a spare thread the monitor cannot
 * create leaves the runtime working, the I/O layer's poller, descriptor
 * table and reference words made at a task's first wait return the
 * error to that call and are made at the next, and the blocking pool's
 * threads.
 */
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "inject.h"

/* Mappings of the process, but for the malloc heap, which grows (and
 * may be split by the kernel) as malloc pleases: what the library maps
 * itself is anonymous mmap memory, counted here. */
static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK_NOT_NULL(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += !strstr(line, "[heap]");
    fclose(f);
    return n;
}

static weft_config small_cfg(void)
{
    weft_config c;
    weft_config_default(&c);
    c.workers = 2;
    c.max_tasks = 1024;
    return c;
}

static void *nothing(void *arg)
{
    return arg;
}

/* A runtime from cfg works: runs a task, and is destroyed cleanly. */
static void works(const weft_config *cfg)
{
    weft_rt *rt;
    CHECK_OK(weft_rt_create(&rt, cfg));
    void *r;
    CHECK_OK(weft_rt_run(rt, nothing, (void *)7, &r));
    CHECK_EQ_PTR(r, (void *)7);
    CHECK_OK(weft_rt_destroy(rt));
}

/* Fail each call of kind k along weft_rt_create in turn; returns how
 * many points failed the create. */
static unsigned every_point(int k)
{
    weft_config cfg = small_cfg();
    works(&cfg); /* warm up: thread stacks cached, handlers installed */
    unsigned points = 0;
    for (unsigned n = 1; n < 200; n++) {
        int maps = count_maps(), fds = test_count_fds();
        fault_arm(k, n);
        weft_rt *rt = NULL;
        int err = weft_rt_create(&rt, &cfg);
        int fired = fault_fired(k);
        fault_arm(k, 0);
        if (!err) {
            CHECK_OK(weft_rt_destroy(rt));
            if (!fired)
                break; /* past the last call of this kind */
            /* A failure the create recovers from (an optional huge-page
             * mapping, a guard it can do without): fine. */
            continue;
        }
        CHECK(fired);
        points++;
        CHECK(err == -ENOMEM || err == -EAGAIN);
        const char *why = weft_last_error();
        CHECK(why[0] != '\0');
        fprintf(stderr, "# %s #%u: %s (%s)\n", fault_names[k], n,
                weft_err_name(err), why);
        /* Under a sanitizer its runtime maps memory of its own as threads
         * come and go (thread data, allocator regions): the mappings are
         * counted in the plain build only. */
        if (!TEST_SANITIZED)
            CHECK_CMP_INT(count_maps(), <=, maps);
        CHECK_EQ_INT(test_count_fds(), fds);
        works(&cfg); /* the process is still usable */
    }
    return points;
}

TEST_T(fault, inject_mmap_along_create, 60)
{
    CHECK_CMP_U64(every_point(FAULT_MMAP), >=, 1);
}

TEST_T(fault, inject_mprotect_along_create, 60)
{
    /* The class fences are mprotected only where the kernel has no
     * lightweight guards (mem/stack.c): there may be no point at all. */
    every_point(FAULT_MPROTECT);
}

TEST_T(fault, inject_pthread_create_along_create, 60)
{
    /* Two workers and the monitor. */
    CHECK_CMP_U64(every_point(FAULT_PTHREAD_CREATE), >=, 3);
}

TEST_T(fault, inject_alloc_along_create, 60)
{
    CHECK_CMP_U64(every_point(FAULT_CALLOC), >=, 1);
}

/* ---- growth paths: a running runtime's calls that may fail ------------- */

#define MS 1000000ull

static void *parked(void *arg)
{
    weft_event *ev = arg;
    CHECK_OK(weft_event_wait(ev));
    return NULL;
}

/*
 * A stack's guard page is installed at its first use (mem/stack.c): with
 * every guard call failing from the nth on (madvise for lightweight
 * guards, mprotect for PROT_NONE ones), the stacks handed out after it
 * run on a canary instead, and every task still runs to its end.
 */
TEST_T(fault, inject_guard_on_stack_growth, 60)
{
    weft_config cfg = small_cfg();
    works(&cfg);
    for (unsigned n = 1; n <= 3; n++) {
        int maps = count_maps(), fds = test_count_fds();
        weft_rt *rt;
        CHECK_OK(weft_rt_create(&rt, &cfg));
        weft_stats s0;
        CHECK_OK(weft_stats_get(rt, &s0));
        fault_arm_from(FAULT_MADVISE, n);
        fault_arm_from(FAULT_MPROTECT, n);
        /* 200 tasks parked at once: 200 stacks in use, most of them new. */
        weft_event ev;
        CHECK_OK(weft_event_init(&ev));
        weft_task t[200];
        for (int i = 0; i < 200; i++)
            CHECK_OK(weft_spawn(rt, &t[i], parked, &ev, NULL));
        weft_stats s1;
        do {
            usleep(1000);
            CHECK_OK(weft_stats_get(rt, &s1));
        } while (s1.parks < s0.parks + 200);
        int fired = fault_fired(FAULT_MADVISE) || fault_fired(FAULT_MPROTECT);
        fault_arm(FAULT_MADVISE, 0);
        fault_arm(FAULT_MPROTECT, 0);
        CHECK_OK(weft_event_set(&ev));
        for (int i = 0; i < 200; i++)
            CHECK_OK(weft_join(t[i], NULL));
        fprintf(stderr,
                "# guard calls failing from #%u: %s; %llu stacks guarded, "
                "%llu on a canary only\n",
                n, fired ? "failed" : "none made",
                (unsigned long long)s1.guarded_stacks,
                (unsigned long long)s1.canary_only);
        if (fired)
            CHECK_CMP_U64(s1.canary_only, >, s0.canary_only);
        CHECK_OK(weft_rt_destroy(rt));
        if (!TEST_SANITIZED)
            CHECK_CMP_INT(count_maps(), <=, maps);
        CHECK_EQ_INT(test_count_fds(), fds);
    }
    works(&cfg);
}

/* An isolation needs a spare thread for the worker (sched/isolate.c).
 * The hog spins 300 ms without calling weft; the probe sleeps 1 ms at a
 * time on the same worker. */
typedef struct {
    _Atomic int stop;
    _Atomic long wakes;
} iso_probe;

static void *iso_probe_main(void *arg)
{
    iso_probe *p = arg;
    while (!atomic_load(&p->stop)) {
        weft_sleep_ns(MS);
        atomic_fetch_add(&p->wakes, 1);
    }
    return NULL;
}

/* CPU time of the calling thread (the hog's, which isolation keeps). */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *iso_hog(void *arg)
{
    (void)arg;
    /* 300 ms of its thread's CPU, which is what the monitor judges (a
     * loaded machine stretches it in wall time), 10 s at most. */
    uint64_t c0 = thread_cpu_ns(), t0 = weft_now_ns();
    while (thread_cpu_ns() - c0 < 300 * MS && weft_now_ns() - t0 < 10000 * MS)
        ;
    weft_yield(); /* its thread may go back to the pool */
    return NULL;
}

typedef struct {
    iso_probe p;
    long after; /* probe wake-ups in the 100 ms after the hog */
} iso_run;

static void *iso_main(void *arg)
{
    iso_run *r = arg;
    weft_task tp, th;
    CHECK_OK(weft_spawn(NULL, &tp, iso_probe_main, &r->p, NULL));
    weft_yield();
    CHECK_OK(weft_spawn(NULL, &th, iso_hog, NULL, NULL));
    CHECK_OK(weft_join(th, NULL));
    long w0 = atomic_load(&r->p.wakes);
    CHECK_OK(weft_sleep_ns(100 * MS));
    r->after = atomic_load(&r->p.wakes) - w0;
    atomic_store(&r->p.stop, 1);
    CHECK_OK(weft_join(tp, NULL));
    return NULL;
}

/*
 * The monitor cannot create the spare thread: with every pthread_create
 * failing, the worker whose thread the hog keeps waits for one (the
 * monitor asks again every tick) and gets the hog's own thread back when
 * the hog yields; the probe then runs on. With only the first failing,
 * the next tick's attempt succeeds and the isolation goes through.
 * Either way every task ends and the runtime is destroyed cleanly.
 */
TEST_T(fault, inject_spare_thread_on_isolation, 60)
{
    if (TEST_TSAN)
        TEST_SKIP("TSan defers the monitor's signal (tests/preempt_util.h)");
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 1;
    cfg.max_tasks = 64;
    cfg.preempt_all = 0;
    /* Warm up with one isolation that works: the threads it creates leave
     * their stacks in libc's cache, which the mapping count would
     * otherwise take for a leak. */
    weft_rt *warm;
    CHECK_OK(weft_rt_create(&warm, &cfg));
    iso_run w = {{0, 0}, 0};
    CHECK_OK(weft_rt_run(warm, iso_main, &w, NULL));
    CHECK_OK(weft_rt_destroy(warm));
    for (int always = 1; always >= 0; always--) {
        int maps = count_maps(), fds = test_count_fds();
        weft_rt *rt;
        CHECK_OK(weft_rt_create(&rt, &cfg));
        if (always)
            fault_arm_from(FAULT_PTHREAD_CREATE, 1);
        else
            fault_arm(FAULT_PTHREAD_CREATE, 1);
        iso_run r = {{0, 0}, 0};
        CHECK_OK(weft_rt_run(rt, iso_main, &r, NULL));
        int fired = fault_fired(FAULT_PTHREAD_CREATE);
        unsigned tries = fault_calls(FAULT_PTHREAD_CREATE);
        fault_arm(FAULT_PTHREAD_CREATE, 0);
        weft_stats s;
        CHECK_OK(weft_stats_get(rt, &s));
        fprintf(stderr,
                "# spare threads %s: %u creations tried, %llu isolations, "
                "%ld probe wake-ups in the 100 ms after the hog\n",
                always ? "never created" : "created at the second try", tries,
                (unsigned long long)s.isolations, r.after);
        CHECK(fired);
        CHECK_CMP_U64(s.isolations, >=, 1);
        CHECK_CMP_INT(r.after, >=, 10); /* the worker has a thread again */
        if (!always)
            CHECK_CMP_U64(tries, >=, 2); /* it asked again */
        CHECK_OK(weft_rt_destroy(rt));
        if (!TEST_SANITIZED)
            CHECK_CMP_INT(count_maps(), <=, maps);
        CHECK_EQ_INT(test_count_fds(), fds);
    }
    works(&cfg);
}

/* ---- the I/O layer: made at a task's first wait on a descriptor -------- */

typedef struct {
    int fd;
    ssize_t r;
    char why[128];
} io_try;

static void *read_once(void *arg)
{
    io_try *t = arg;
    char b;
    t->r = weft_read_until(t->fd, &b, 1, weft_now_ns() + 20 * MS);
    snprintf(t->why, sizeof t->why, "%s", weft_last_error());
    return NULL;
}

/* Fail the nth call of kind k made while a task first waits on an empty
 * pipe: the read returns the error (EMFILE, ENOMEM) with a message
 * naming the call, the next read works (times out), and after destroy
 * every descriptor is gone. Returns whether the nth call failed. */
static int io_point(int k, unsigned n, int want)
{
    int fds = test_count_fds();
    int p[2];
    CHECK_OK(pipe(p));
    weft_config cfg = small_cfg();
    weft_rt *rt;
    CHECK_OK(weft_rt_create(&rt, &cfg));
    io_try t = {.fd = p[0]};
    fault_arm(k, n);
    CHECK_OK(weft_rt_run(rt, read_once, &t, NULL));
    int fired = fault_fired(k);
    fault_arm(k, 0);
    if (fired) {
        fprintf(stderr, "# %s #%u: %s (%s)\n", fault_names[k], n,
                weft_err_name((int)t.r), t.why);
        CHECK_EQ_INT(t.r, want);
        CHECK(t.why[0] != '\0');
    } else {
        CHECK_EQ_INT(t.r, -ETIMEDOUT);
    }
    t.r = 0;
    CHECK_OK(weft_rt_run(rt, read_once, &t, NULL));
    CHECK_EQ_INT(t.r, -ETIMEDOUT); /* made now */
    CHECK_OK(weft_rt_destroy(rt));
    close(p[0]);
    close(p[1]);
    CHECK_EQ_INT(test_count_fds(), fds);
    return fired;
}

/* Every point of kind k, from the first: how many failed. */
static unsigned io_points(int k, int want)
{
    unsigned n = 1;
    while (io_point(k, n, want))
        n++;
    return n - 1;
}

TEST_T(fault, inject_io_poller_and_tables, 60)
{
    /* The process's reference words are made once, at the first call
     * (each test is a fresh process), after the runtime's table: so the
     * second mmap first, then every point from the first. */
    CHECK(io_point(FAULT_MMAP, 2, -ENOMEM));
    CHECK_CMP_U64(io_points(FAULT_MMAP, -ENOMEM), ==, 1);
    CHECK_CMP_U64(io_points(FAULT_EPOLL_CREATE1, -EMFILE), ==, 1);
    CHECK_CMP_U64(io_points(FAULT_EVENTFD, -EMFILE), ==, 1);
}

/* ---- the blocking pool's threads ---------------------------------------- */

typedef struct {
    int r;
    void *v;
    char why[128];
} bl_try;

static void *slow_echo(void *arg)
{
    usleep(20000);
    return arg;
}

static void *block_once(void *arg)
{
    bl_try *t = arg;
    t->r = weft_block_on(slow_echo, (void *)5, &t->v);
    snprintf(t->why, sizeof t->why, "%s", weft_last_error());
    return NULL;
}

TEST_T(fault, inject_blocking_pool_thread, 60)
{
    weft_config cfg = small_cfg();
    cfg.blocking_threads = 4;
    weft_rt *rt;
    CHECK_OK(weft_rt_create(&rt, &cfg));
    /* No thread can be started and none exists: -EAGAIN, named. */
    bl_try t = {0};
    fault_arm_from(FAULT_PTHREAD_CREATE, 1);
    CHECK_OK(weft_rt_run(rt, block_once, &t, NULL));
    fault_arm(FAULT_PTHREAD_CREATE, 0);
    fprintf(stderr, "# no pool thread: %s (%s)\n", weft_err_name(t.r), t.why);
    CHECK_EQ_INT(t.r, -EAGAIN);
    CHECK(strstr(t.why, "pthread_create") != NULL);
    /* The fault off: works. */
    CHECK_OK(weft_rt_run(rt, block_once, &t, NULL));
    CHECK_EQ_INT(t.r, 0);
    CHECK_EQ_PTR(t.v, (void *)5);
    /* One thread exists and no other can be started: four concurrent
     * calls queue behind it and all complete. */
    fault_arm_from(FAULT_PTHREAD_CREATE, 1);
    bl_try four[4] = {{0}};
    weft_task h[4];
    for (int i = 0; i < 4; i++)
        CHECK_OK(weft_spawn(rt, &h[i], block_once, &four[i], NULL));
    for (int i = 0; i < 4; i++) {
        CHECK_OK(weft_join(h[i], NULL));
        CHECK_EQ_INT(four[i].r, 0);
        CHECK_EQ_PTR(four[i].v, (void *)5);
    }
    fault_arm(FAULT_PTHREAD_CREATE, 0);
    weft_stats s;
    CHECK_OK(weft_stats_get(rt, &s));
    CHECK_EQ_U64(s.blocking_threads, 1);
    CHECK_EQ_U64(s.blocking_calls, 5);
    CHECK_OK(weft_rt_destroy(rt));
}
