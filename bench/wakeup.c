/*
 * wakeup.c - `wakeup`: the wake-up latency of an idle runtime (issue 7).
 *
 * All workers; one task waits on an event. A plain thread lets the
 * runtime go idle (2 ms: every worker past its spin and asleep), reads the
 * clock, and sets the event; the task reads the clock when it resumes.
 * Value: the 50th and 99th percentile of (resume - set) over R = 200
 * rounds (x BENCH_SCALE), microseconds, as `wakeup_p50` and `wakeup_p99`
 * (single measurements: the rounds are the samples). No hardware wait
 * hint is used (docs/decisions/0006-wait-hints.md: this machine has none).
 *
 * `idle_cpu`: all workers; after one task has run and the runtime has had
 * 200 ms to settle (every worker asleep, and the monitor past its 100 ms
 * of 10 ms naps and into its sleep without timeout: sched/sysmon.c), the
 * CPU time (user + system, getrusage) the whole process uses over 1 s of
 * idleness. Value: milliseconds of CPU per second, `ms/s` (a single
 * measurement): anything a worker or the monitor does while it should
 * be asleep; the main thread only sleeps. check=ok needs the task to run and the figure to be under
 * 10 ms/s (1 % of a CPU).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"

typedef struct {
    weft_event ev;
    _Atomic uint64_t set_at, woke_at;
    _Atomic int round, done;
    long rounds;
} wk_ctx;

static void *waiter(void *arg)
{
    wk_ctx *c = arg;
    for (long r = 0; r < c->rounds; r++) {
        if (weft_event_wait(&c->ev))
            return (void *)1;
        atomic_store(&c->woke_at, weft_now_ns());
        weft_event_reset(&c->ev);
        atomic_store(&c->round, (int)r + 1);
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int bench_wakeup(void)
{
    int workers = bench_workers();
    weft_rt *rt = bench_rt((unsigned)workers, 0);
    wk_ctx c = {.rounds = bench_scaled(200)};
    weft_event_init(&c.ev);
    uint64_t *lat = calloc((size_t)c.rounds, sizeof *lat);
    weft_task t;
    int ok = lat && weft_spawn(rt, &t, waiter, &c, NULL) == 0;
    for (long r = 0; ok && r < c.rounds; r++) {
        struct timespec idle = {0, 2000000};
        nanosleep(&idle, NULL);
        uint64_t t0 = weft_now_ns();
        weft_event_set(&c.ev);
        while (atomic_load(&c.round) != r + 1) {
            struct timespec nap = {0, 20000};
            nanosleep(&nap, NULL);
        }
        uint64_t t1 = atomic_load(&c.woke_at);
        lat[r] = t1 > t0 ? t1 - t0 : 0;
    }
    void *res = NULL;
    if (ok)
        ok = weft_join(t, &res) == 0 && res == NULL;
    double p50 = 0, p99 = 0;
    if (ok) {
        qsort(lat, (size_t)c.rounds, sizeof *lat, cmp_u64);
        p50 = (double)lat[c.rounds / 2] / 1e3;
        p99 = (double)lat[(c.rounds * 99) / 100] / 1e3;
    }
    free(lat);
    weft_event_destroy(&c.ev);
    bench_verbose_stats(rt);
    weft_rt_destroy(rt);
    return bench_report("wakeup_p50", workers, p50, "us", ok) |
           bench_report("wakeup_p99", workers, p99, "us", ok);
}

static double cpu_ms(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec * 1e3 + (double)u.ru_utime.tv_usec / 1e3 +
           (double)u.ru_stime.tv_sec * 1e3 + (double)u.ru_stime.tv_usec / 1e3;
}

static void *nothing(void *arg)
{
    return arg;
}

int bench_idle_cpu(void)
{
    int workers = bench_workers();
    weft_rt *rt = bench_rt((unsigned)workers, 0);
    weft_task t;
    void *res = (void *)1;
    int ok = weft_spawn(rt, &t, nothing, NULL, NULL) == 0 &&
             weft_join(t, &res) == 0 && res == NULL;
    struct timespec settle = {0, 200000000}, second = {1, 0};
    nanosleep(&settle, NULL);
    double before = cpu_ms();
    nanosleep(&second, NULL);
    double used = cpu_ms() - before;
    bench_verbose_stats(rt);
    weft_rt_destroy(rt);
    return bench_report("idle_cpu", workers, used, "ms/s", ok && used < 10);
}
