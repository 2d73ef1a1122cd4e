/*
 * test_blocking.c - weft_block_on (weft.h; src/io/blocking.c): blocking
 * code runs on the pool while only the calling task parks; the pool's
 * cap holds under 1,000 concurrent calls; shutdown cancels queued calls
 * but never leaves a running one; destroy waits for running calls;
 * idle threads retire.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "io/blocking.h"

#define MS 1000000ull

static int count_threads(void);

static weft_rt *rt_cap(unsigned workers, unsigned cap, uint32_t max_tasks)
{
    weft_config c;
    weft_config_default(&c);
    c.workers = workers;
    c.max_tasks = max_tasks;
    c.blocking_threads = cap;
    return test_rt_cfg(&c);
}

/* Threads of the process; a thread just joined may still be listed for
 * a moment, so wait (up to 1 s) for the count to fall to at most max. */
static int threads_fall_to(int max)
{
    int n = 0;
    for (int i = 0; i < 1000 && (n = count_threads()) > max; i++)
        usleep(1000);
    return n;
}

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    CHECK_NOT_NULL(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- the worker goes on while a task blocks ---------------------------- */

typedef struct {
    _Atomic int in_fn, release;
    _Atomic long ticks;
    pthread_t fn_thread;
} side_ctx;

static void *slow_double(void *arg)
{
    side_ctx *c = (side_ctx *)((void **)arg)[0];
    c->fn_thread = pthread_self();
    atomic_store(&c->in_fn, 1);
    while (!atomic_load(&c->release))
        usleep(100);
    return (void *)((uintptr_t)((void **)arg)[1] * 2);
}

static void *ticker(void *arg)
{
    side_ctx *c = arg;
    while (!atomic_load(&c->release)) {
        atomic_fetch_add(&c->ticks, 1);
        weft_sleep_ns(100000);
    }
    return NULL;
}

static void *blocker(void *arg)
{
    side_ctx *c = arg;
    void *args[2] = {c, (void *)21};
    void *r = NULL;
    CHECK_OK(weft_block_on(slow_double, args, &r));
    CHECK_EQ_PTR(r, (void *)42);
    CHECK(!pthread_equal(c->fn_thread, pthread_self()));
    return NULL;
}

TEST(api, block_on_parks_only_the_task)
{
    /* One worker: if block_on blocked it, the ticker could not run. */
    weft_rt *rt = rt_cap(1, 4, 64);
    side_ctx c = {0};
    weft_task b, t;
    CHECK_OK(weft_spawn(rt, &b, blocker, &c, NULL));
    CHECK_OK(weft_spawn(rt, &t, ticker, &c, NULL));
    while (!atomic_load(&c.in_fn))
        usleep(100);
    /* While the call holds its pool thread, the ticker ticks on: six
     * ticks, however slow the machine (a fixed 20 ms window saw 2 in
     * CI's TSan tree, the blocker still finishing its pthread_create on
     * the worker when the window opened). Had the call blocked the
     * worker, none would come: 10 s, then the test fails. */
    long before = atomic_load(&c.ticks);
    uint64_t t0 = weft_now_ns();
    while (atomic_load(&c.ticks) <= before + 5) {
        CHECK_CMP_U64(weft_now_ns() - t0, <, 10000000000ull);
        usleep(1000);
    }
    weft_task_info ti;
    CHECK_OK(weft_task_info_get(b, &ti));
    CHECK_EQ_INT(ti.state, WEFT_STATE_PARKED);
    CHECK_NOT_NULL(ti.wait);
    CHECK_EQ_STR(ti.wait, "blocking");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_OK(weft_dump(rt, f));
    fclose(f);
    CHECK(strstr(buf, "wait=[blocking ") != NULL);
    CHECK(strstr(buf, "blocking_threads=1") != NULL);
    free(buf);
    atomic_store(&c.release, 1);
    CHECK_OK(weft_join(b, NULL));
    CHECK_OK(weft_join(t, NULL));
    weft_stats s = test_stats(rt);
    CHECK_EQ_U64(s.blocking_calls, 1);
    CHECK_EQ_U64(s.blocking_threads, 1);
    test_rt_destroy_clean(rt);
}

static void *whoami(void *arg)
{
    (void)arg;
    return (void *)pthread_self();
}

TEST(api, block_on_plain_thread_runs_inline)
{
    void *r = NULL;
    CHECK_OK(weft_block_on(whoami, NULL, &r));
    CHECK(pthread_equal((pthread_t)r, pthread_self()));
    CHECK_EQ_INT(weft_block_on(NULL, NULL, &r), -EINVAL);
}

/* ---- 1,000 concurrent calls, the pool capped at 8 ---------------------- */

#define CALLS 1000
#define CAP 8

typedef struct {
    _Atomic int now, max;
    _Atomic long sum;
} cap_ctx;

static cap_ctx capc;

static void *one_ms(void *arg)
{
    int n = atomic_fetch_add(&capc.now, 1) + 1;
    int m = atomic_load(&capc.max);
    while (n > m && !atomic_compare_exchange_weak(&capc.max, &m, n))
        ;
    usleep(1000);
    atomic_fetch_sub(&capc.now, 1);
    return (void *)((uintptr_t)arg + 1);
}

static void *caller(void *arg)
{
    void *r = NULL;
    CHECK_OK(weft_block_on(one_ms, arg, &r));
    CHECK_EQ_PTR(r, (void *)((uintptr_t)arg + 1));
    atomic_fetch_add(&capc.sum, (long)(uintptr_t)r);
    return NULL;
}

TEST_T(api, block_on_thousand_calls_pool_capped, 60)
{
    weft_rt *rt = rt_cap(0, CAP, 2048);
    int threads0 = count_threads();
    memset(&capc, 0, sizeof capc);
    static weft_task t[CALLS];
    for (uintptr_t i = 0; i < CALLS; i++)
        CHECK_OK(weft_spawn(rt, &t[i], caller, (void *)i, NULL));
    for (int i = 0; i < CALLS; i++)
        CHECK_OK(weft_join(t[i], NULL));
    CHECK_EQ_U64((uint64_t)atomic_load(&capc.sum),
                 (uint64_t)CALLS * (CALLS + 1) / 2);
    weft_stats s = test_stats(rt);
    fprintf(stderr, "# %d calls: at most %d at once, %llu threads\n", CALLS,
            atomic_load(&capc.max), (unsigned long long)s.blocking_threads);
    CHECK_CMP_INT(atomic_load(&capc.max), <=, CAP);
    CHECK_CMP_INT(atomic_load(&capc.max), >=, 2);
    CHECK_EQ_U64(s.blocking_calls, CALLS);
    CHECK_CMP_U64(s.blocking_threads, <=, CAP);
    CHECK_CMP_INT(count_threads(), <=, threads0 + CAP);
    test_rt_destroy_clean(rt);
    CHECK_CMP_INT(threads_fall_to(threads0 - (int)s.workers), <=,
                  threads0 - (int)s.workers);
}

/* ---- shutdown: queued calls cancelled, a running one finished ---------- */

typedef struct {
    _Atomic int started, release, ran;
    int r1, r2;
    void *v1;
} sd_ctx;

static sd_ctx sdc;

static void *held(void *arg)
{
    (void)arg;
    atomic_store(&sdc.started, 1);
    while (!atomic_load(&sdc.release))
        usleep(100);
    return (void *)7;
}

static void *never(void *arg)
{
    (void)arg;
    atomic_store(&sdc.ran, 1);
    return NULL;
}

static void *first(void *arg)
{
    (void)arg;
    sdc.r1 = weft_block_on(held, NULL, &sdc.v1);
    return NULL;
}

static void *second(void *arg)
{
    (void)arg;
    sdc.r2 = weft_block_on(never, NULL, NULL);
    return NULL;
}

TEST(api, block_on_shutdown_cancels_queued_finishes_running)
{
    weft_rt *rt = rt_cap(2, 1, 64);
    memset(&sdc, 0, sizeof sdc);
    weft_task a, b;
    CHECK_OK(weft_spawn(rt, &a, first, NULL, NULL));
    while (!atomic_load(&sdc.started))
        usleep(100);
    CHECK_OK(weft_spawn(rt, &b, second, NULL, NULL));
    weft_task_info ti;
    do {
        usleep(200);
        CHECK_OK(weft_task_info_get(b, &ti));
    } while (ti.state != WEFT_STATE_PARKED);
    CHECK_OK(weft_rt_shutdown(rt));
    CHECK_OK(weft_join(b, NULL));
    CHECK_EQ_INT(sdc.r2, -ECANCELED);
    /* The running call is never left: the first task is still inside,
     * parked (it yielded in a loop before, spinning its worker for as
     * long as the call ran). */
    usleep(20000);
    CHECK_OK(test_wait_parked(a, "blocking"));
    atomic_store(&sdc.release, 1);
    CHECK_OK(weft_join(a, NULL));
    CHECK_EQ_INT(sdc.r1, 0);
    CHECK_EQ_PTR(sdc.v1, (void *)7);
    CHECK_EQ_INT(atomic_load(&sdc.ran), 0);
    CHECK_OK(weft_rt_destroy(rt));
}

/* ---- destroy waits for a running call ----------------------------------- */

static _Atomic int late_started, late_done;

static void *late(void *arg)
{
    char *stack_buf = arg;
    atomic_store(&late_started, 1);
    usleep(50000);
    memset(stack_buf, 0x5a, 64); /* the caller's stack: must still be
                                    there (ASan says if not) */
    atomic_store(&late_done, 1);
    return NULL;
}

static void *late_caller(void *arg)
{
    (void)arg;
    char buf[64];
    weft_block_on(late, buf, NULL);
    return NULL;
}

TEST(api, block_on_destroy_waits_for_running_call)
{
    weft_rt *rt = rt_cap(2, 2, 64);
    int threads0 = count_threads();
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, late_caller, NULL, NULL));
    /* Running on a pool thread, not merely submitted: a call not yet
     * submitted at the shutdown is cancelled, rightly (TSan once took
     * over 10 ms to get there). */
    uint64_t t0 = weft_now_ns();
    while (!atomic_load(&late_started)) {
        CHECK_CMP_U64(weft_now_ns() - t0, <, 5000 * MS);
        usleep(1000);
    }
    CHECK_OK(weft_rt_shutdown(rt));
    CHECK_OK(weft_rt_destroy(rt));
    CHECK_EQ_INT(atomic_load(&late_done), 1);
    CHECK_CMP_INT(threads_fall_to(threads0 - 3), <=, threads0 - 3);
}

/* ---- idle threads retire ------------------------------------------------ */

static void *nop(void *arg)
{
    return arg;
}

static void *nop_caller(void *arg)
{
    CHECK_OK(weft_block_on(nop, arg, NULL));
    return NULL;
}

TEST(api, block_on_idle_threads_retire)
{
    /* Atomic: the pool's threads read it (TSan saw the plain store race
     * with a thread of the second run). */
    uint64_t keep = atomic_load(&weft__blocking_keep_ns);
    atomic_store(&weft__blocking_keep_ns, 30 * MS);
    weft_rt *rt = rt_cap(2, 4, 64);
    test_run(rt, nop_caller, NULL);
    uint64_t t0 = weft_now_ns();
    while (test_stats(rt).blocking_threads) {
        CHECK_CMP_U64(weft_now_ns() - t0, <, 5000 * MS);
        usleep(1000);
    }
    /* A new call starts a thread again. */
    test_run(rt, nop_caller, NULL);
    CHECK_EQ_U64(test_stats(rt).blocking_calls, 2);
    test_rt_destroy_clean(rt);
    atomic_store(&weft__blocking_keep_ns, keep);
}

TEST(api, block_on_threads_config_checked)
{
    weft_config c;
    weft_config_default(&c);
    CHECK_EQ_U64(c.blocking_threads, 512);
    c.blocking_threads = 0;
    weft_rt *rt = NULL;
    CHECK_EQ_INT(weft_rt_create(&rt, &c), -EINVAL);
    CHECK(strstr(weft_last_error(), "WEFT_BLOCKING_THREADS") != NULL);
    setenv("WEFT_BLOCKING_THREADS", "3", 1);
    weft_config_default(&c);
    unsetenv("WEFT_BLOCKING_THREADS");
    CHECK_EQ_U64(c.blocking_threads, 3);
}
