/*
 * memory.c - `memory`: all workers; N = 100,000 detached tasks each block
 * forever on a receive from a rendezvous channel of its own that nobody
 * sends on. Value: growth of the resident set (VmRSS, from
 * /proc/self/statm as the Go and Tokio peers read it) from just after the
 * runtime was created until every task is parked, divided by N: bytes per
 * blocked task, counting everything a blocked task needs (its stack
 * pages, its task slot, its channel, and the array of channel pointers,
 * as the Go peer's count includes its slice of channels). A single
 * measurement, as BENCHMARKS.md says. Afterwards the channels are closed,
 * every receiver gets -EPIPE and returns, and the runtime is destroyed.
 *
 * Two lines: `memory` (default stack class) and `memory_small` (spawn
 * attribute .stack = WEFT_STACK_SMALL, with the runtime's
 * small_stack_size set to MEMORY_SMALL_STACK, the smallest the config
 * accepts, unless WEFT_SMALL_STACK_SIZE names another size). The small
 * stack size used is printed on stderr. A blocked task of this file uses
 * about 700 bytes of its stack in a Release build, so 1 KiB is enough
 * there; sanitizer builds need more (WEFT_SMALL_STACK_SIZE=8k).
 *
 * check=ok needs every spawn and channel to succeed, every task to be
 * seen parked (weft_stats: parks and live), the resident set to grow, and
 * every receiver to have got -EPIPE after the close.
 *
 * `memory_million` (issue 16): 10^6 (scaled) detached small-class tasks
 * all parked on one weft_event, so that the bytes counted are the tasks'
 * alone. Three lines: memory_million (B/task, RSS growth over N as
 * above), memory_million_park (ms from the first spawn until the last
 * task is seen parked) and memory_million_wake (ms from weft_event_set
 * until the last task has ended). check=ok needs every spawn to succeed,
 * all N parked at once, and all N ended after the set.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"

#define MEMORY_SMALL_STACK 1024

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size, res;
    int n = f ? fscanf(f, "%ld %ld", &size, &res) : 0;
    if (f)
        fclose(f);
    return n == 2 ? res * sysconf(_SC_PAGESIZE) : -1;
}

static _Atomic long piped; /* receivers that got -EPIPE */

static void *blocked(void *arg)
{
    uint8_t x;
    if (weft_chan_recv(arg, &x) == -EPIPE)
        atomic_fetch_add_explicit(&piped, 1, memory_order_relaxed);
    return NULL;
}

static uint64_t stat_of(weft_rt *rt, int live)
{
    weft_stats s;
    if (weft_stats_get(rt, &s))
        return 0;
    return live ? s.live : s.parks;
}

/* Wait (up to 60 s) until stat_of(rt, live) satisfies the comparison. */
static int wait_stat(weft_rt *rt, int live, uint64_t target)
{
    for (int i = 0; i < 60000; i++) {
        uint64_t v = stat_of(rt, live);
        if (live ? v == target : v >= target)
            return 1;
        usleep(1000);
    }
    return 0;
}

/* Every one of the `spawned` tasks parked once (parks counted from
 * parks0) and is still live. */
static int all_parked(weft_rt *rt, uint64_t parks0, long spawned)
{
    return wait_stat(rt, 0, parks0 + (uint64_t)spawned) &&
           stat_of(rt, 1) == (uint64_t)spawned;
}

static int run(const char *name, int small)
{
    int workers = bench_workers(), ok = 1;
    long n = bench_scaled(100000);
    weft_config cfg;
    weft_rt *rt = bench_rt_sized((unsigned)workers, n,
                                 small ? MEMORY_SMALL_STACK : 0, &cfg);
    weft_spawn_attr attr = WEFT_SPAWN_ATTR_INIT;
    attr.flags = WEFT_DETACHED;
    if (small)
        attr.stack = WEFT_STACK_SMALL;
    atomic_store(&piped, 0);

    uint64_t parks0 = stat_of(rt, 0);
    long before = rss_bytes();
    weft_chan **ch = malloc((size_t)n * sizeof *ch);
    long spawned = 0;
    for (long i = 0; ch && i < n; i++) {
        if (weft_chan_create(&ch[i], 1, 0)) {
            ok = 0;
            break;
        }
        if (weft_spawn(rt, NULL, blocked, ch[i], &attr)) {
            weft_chan_destroy(ch[i]);
            ok = 0;
            break;
        }
        spawned++;
    }
    /* Every task parks once, in its receive. */
    if (!all_parked(rt, parks0, spawned))
        ok = 0;
    long after = rss_bytes();

    for (long i = 0; i < spawned; i++)
        weft_chan_close(ch[i]);
    if (!wait_stat(rt, 1, 0))
        ok = 0;
    for (long i = 0; i < spawned; i++)
        weft_chan_destroy(ch[i]);
    free(ch);
    if (atomic_load(&piped) != n || spawned != n || before <= 0 ||
        after <= before)
        ok = 0;
    bench_verbose_stats(rt);
    if (small)
        fprintf(stderr, "  %s: small_stack_size %zu\n", name,
                cfg.small_stack_size);
    if (weft_rt_destroy(rt))
        ok = 0;
    return bench_report(name, workers, (double)(after - before) / (double)n,
                        "B/task", ok);
}

static weft_event million_ev;
static _Atomic long million_woken;

static void *million_park(void *arg)
{
    (void)arg;
    if (weft_event_wait(&million_ev) == 0)
        atomic_fetch_add_explicit(&million_woken, 1, memory_order_relaxed);
    return NULL;
}

static int run_million(void)
{
    int workers = bench_workers(), ok = 1;
    long n = bench_scaled(1000000);
    weft_config cfg;
    weft_rt *rt =
        bench_rt_sized((unsigned)workers, n, MEMORY_SMALL_STACK, &cfg);
    weft_spawn_attr attr = WEFT_SPAWN_ATTR_INIT;
    attr.flags = WEFT_DETACHED;
    attr.stack = WEFT_STACK_SMALL;
    weft_event_init(&million_ev);
    atomic_store(&million_woken, 0);

    uint64_t parks0 = stat_of(rt, 0);
    long before = rss_bytes();
    double t0 = bench_now_ns();
    long spawned = 0;
    for (long i = 0; i < n; i++) {
        if (weft_spawn(rt, NULL, million_park, NULL, &attr)) {
            ok = 0;
            break;
        }
        spawned++;
    }
    if (!all_parked(rt, parks0, spawned))
        ok = 0;
    double t1 = bench_now_ns();
    long after = rss_bytes();

    double t2 = bench_now_ns();
    weft_event_set(&million_ev);
    while (stat_of(rt, 1) != 0 && bench_now_ns() - t2 < 60e9)
        usleep(200); /* the main thread keeps off the workers' CPUs */
    double t3 = bench_now_ns();
    if (stat_of(rt, 1) != 0 || atomic_load(&million_woken) != n ||
        spawned != n || before <= 0 || after <= before)
        ok = 0;
    bench_verbose_stats(rt);
    if (weft_event_destroy(&million_ev) || weft_rt_destroy(rt))
        ok = 0;
    int rc = bench_report("memory_million", workers,
                          (double)(after - before) / (double)n, "B/task", ok);
    rc |=
        bench_report("memory_million_park", workers, (t1 - t0) / 1e6, "ms", ok);
    rc |=
        bench_report("memory_million_wake", workers, (t3 - t2) / 1e6, "ms", ok);
    return rc;
}

int bench_memory(void)
{
    return run("memory", 0) | run("memory_small", 1) | run_million();
}
