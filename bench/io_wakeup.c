/*
 * io_wakeup.c - `io_wakeup`: how long a task parked in weft_read takes to
 * resume after a plain thread writes a byte to its pipe (issue 14).
 *
 * All workers; one task reads a pipe in a loop. Idle: the plain thread
 * lets the runtime go idle (2 ms: every worker asleep, one in the
 * poller), reads the clock and writes; the task reads the clock when its
 * read returns. Busy: the same with every worker also running a
 * CPU-bound task that yields every 100 us, so the readiness is found by
 * a busy worker's poll on its fairness tick or by the monitor. Values:
 * the 50th and 99th percentile over 200 rounds (x BENCH_SCALE), in
 * microseconds: io_wakeup_p50, io_wakeup_p99, io_wakeup_busy_p50,
 * io_wakeup_busy_p99.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

typedef struct {
    int p[2];
    _Atomic uint64_t woke_at;
    _Atomic long round;
    _Atomic int stop;
    long rounds;
} io_ctx;

static void *reader(void *arg)
{
    io_ctx *c = arg;
    for (long r = 0; r < c->rounds; r++) {
        char b;
        if (weft_read(c->p[0], &b, 1) != 1)
            return (void *)1;
        atomic_store(&c->woke_at, weft_now_ns());
        atomic_store(&c->round, r + 1);
    }
    return NULL;
}

/* CPU-bound, yielding every 100 us, until told to stop. */
static void *spinner(void *arg)
{
    io_ctx *c = arg;
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        uint64_t t0 = weft_now_ns();
        while (weft_now_ns() - t0 < 100000)
            ;
        weft_yield();
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int one_run(int workers, int busy, double *p50, double *p99)
{
    weft_rt *rt = bench_rt((unsigned)workers, 0);
    io_ctx c = {.rounds = bench_scaled(200)};
    uint64_t *lat = calloc((size_t)c.rounds, sizeof *lat);
    int ok = lat && pipe(c.p) == 0;
    weft_task t, s[64];
    int ns = busy ? (workers < 64 ? workers : 64) : 0;
    ok = ok && weft_spawn(rt, &t, reader, &c, NULL) == 0;
    for (int i = 0; ok && i < ns; i++)
        ok = weft_spawn(rt, &s[i], spinner, &c, NULL) == 0;
    for (long r = 0; ok && r < c.rounds; r++) {
        struct timespec gap = {0, 2000000};
        nanosleep(&gap, NULL);
        uint64_t t0 = weft_now_ns();
        ok = write(c.p[1], "x", 1) == 1;
        while (ok && atomic_load(&c.round) != r + 1) {
            struct timespec nap = {0, 20000};
            nanosleep(&nap, NULL);
        }
        uint64_t t1 = atomic_load(&c.woke_at);
        lat[r] = t1 > t0 ? t1 - t0 : 0;
    }
    atomic_store(&c.stop, 1);
    void *res = NULL;
    ok = ok && weft_join(t, &res) == 0 && res == NULL;
    for (int i = 0; i < ns; i++)
        weft_join(s[i], NULL);
    if (ok) {
        qsort(lat, (size_t)c.rounds, sizeof *lat, cmp_u64);
        *p50 = (double)lat[c.rounds / 2] / 1e3;
        *p99 = (double)lat[(c.rounds * 99) / 100] / 1e3;
    }
    free(lat);
    close(c.p[0]);
    close(c.p[1]);
    bench_verbose_stats(rt);
    weft_rt_destroy(rt);
    return ok;
}

int bench_io_wakeup(void)
{
    int workers = bench_workers();
    double p50 = 0, p99 = 0, b50 = 0, b99 = 0;
    int ok = one_run(workers, 0, &p50, &p99);
    int okb = one_run(workers, 1, &b50, &b99);
    return bench_report("io_wakeup_p50", workers, p50, "us", ok) |
           bench_report("io_wakeup_p99", workers, p99, "us", ok) |
           bench_report("io_wakeup_busy_p50", workers, b50, "us", okb) |
           bench_report("io_wakeup_busy_p99", workers, b99, "us", okb);
}
