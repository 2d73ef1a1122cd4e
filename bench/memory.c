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

static int run(const char *name, int small)
{
    int workers = bench_workers(), ok = 1;
    long n = bench_scaled(100000);
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = (unsigned)workers;
    if ((uint64_t)n + 64 > cfg.max_tasks)
        cfg.max_tasks = (uint32_t)n + 64;
    if (small && !getenv("WEFT_SMALL_STACK_SIZE"))
        cfg.small_stack_size = MEMORY_SMALL_STACK;
    weft_rt *rt;
    int err = weft_rt_create(&rt, &cfg);
    if (err) {
        fprintf(stderr, "weft-bench: weft_rt_create: %s (%s)\n",
                weft_strerror(err), weft_last_error());
        exit(2);
    }
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
    if (!wait_stat(rt, 0, parks0 + (uint64_t)spawned) ||
        stat_of(rt, 1) != (uint64_t)spawned)
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

int bench_memory(void)
{
    return run("memory", 0) | run("memory_small", 1);
}
