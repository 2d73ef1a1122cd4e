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
 * CPU time the runtime's threads (every thread but the measuring one,
 * from /proc/self/task/N/schedstat) use over 1 s of idleness. Value:
 * milliseconds of CPU per second, `ms/s` (a single measurement):
 * anything a worker or the monitor does while it should be asleep.
 * (getrusage for the whole process read 0.1 ms/s here, the measuring
 * thread's own wake-up and calls.) check=ok needs the task to run and the figure to be under
 * 10 ms/s (1 % of a CPU).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <dirent.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
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

/* CPU time of every thread of the process but the caller, in ms: the
 * runtime's workers, monitor and spare threads (schedstat's run time, in
 * ns, per thread). -1 when /proc cannot be read. */
static double runtime_cpu_ms(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    long self = (long)syscall(SYS_gettid);
    double ms = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || atol(e->d_name) == self)
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long ns;
        if (f && fscanf(f, "%llu", &ns) == 1)
            ms += (double)ns / 1e6;
        if (f)
            fclose(f);
    }
    closedir(d);
    return ms;
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
    double before = runtime_cpu_ms();
    nanosleep(&second, NULL);
    double after = runtime_cpu_ms();
    double used = after - before;
    ok = ok && before >= 0 && after >= 0;
    bench_verbose_stats(rt);
    weft_rt_destroy(rt);
    return bench_report("idle_cpu", workers, used, "ms/s", ok && used < 10);
}
