/*
 * calib.c - `calib`: a weft-free calibration of each CPU the process may
 * use. The main thread is pinned to each CPU in turn and times a call-heavy
 * serial recursion (fib(28) by plain calls, about a million of them); value:
 * the best of five, in ms, as name=calib_cpuN impl=none.
 *
 * Why: on the shared machines these benchmarks run on, one CPU can run
 * the same code 1.5x slower than the other for minutes at a time (the
 * host's load, not ours; docs/decisions/0013-fork-join.md). A weft figure
 * from such a period looks like a slow mode of the runtime. bench/fresh.sh
 * runs this in every fresh process, beside the workload, so that a slow
 * period shows as a slow calibration too.
 */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>

#include "bench.h"

__attribute__((noinline, noipa)) static uint64_t rec(int n)
{
    __asm__ __volatile__("" ::: "memory"); /* keep every call a call */
    return n < 2 ? (uint64_t)n : rec(n - 1) + rec(n - 2);
}

int bench_calib(void)
{
    cpu_set_t all, one;
    if (sched_getaffinity(0, sizeof all, &all))
        return 1;
    int rc = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &all))
            continue;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        if (sched_setaffinity(0, sizeof one, &one))
            continue;
        double best = 1e300;
        uint64_t r = 0;
        for (int i = 0; i < 6; i++) { /* the first is a warm-up */
            double t0 = bench_now_ns();
            r = rec(28);
            double t = (bench_now_ns() - t0) / 1e6;
            if (i && t < best)
                best = t;
        }
        char name[32];
        snprintf(name, sizeof name, "calib_cpu%d", cpu);
        rc |= bench_report_impl(name, "none", 1, best, "ms", r == 317811);
    }
    sched_setaffinity(0, sizeof all, &all);
    return rc;
}
