/*
 * preempt.c - `preempt`: one worker; a hog task spins without yielding
 * (no call in its inner loop, as the peers' hogs) for 2 s while a probe
 * task sleeps 1 ms at a time and records how late each wake-up is. Value:
 * the 99th percentile of the lateness, ms. One run (not a median of
 * five): it takes 2 s x BENCH_SCALE, and every wake-up is a sample.
 *
 * `preempt`: the hog is spawned WEFT_PREEMPTIBLE with the default policy:
 * the monitor preempts it when the probe's timer has been due for close
 * to the latency target (2 ms), or when it overruns its 10 ms budget.
 * `preempt_isolate`: the hog is not preemptible; it climbs the tiers and
 * is isolated (its worker goes to a spare thread, the probe with it).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

typedef struct {
    _Atomic int hog_done;
    double *late;
    long nlate, cap;
    double hog_ran_ns, hog_for_ns;
    uint64_t sink;
    int preemptible;
} ctx;

static double mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *probe(void *arg)
{
    ctx *c = arg;
    while (!atomic_load_explicit(&c->hog_done, memory_order_acquire)) {
        double t0 = mono_ns();
        weft_sleep_ns(1000000);
        double late = (mono_ns() - t0 - 1e6) / 1e6;
        if (c->nlate < c->cap)
            c->late[c->nlate++] = late;
    }
    return NULL;
}

static void *hog(void *arg)
{
    ctx *c = arg;
    double start = mono_ns();
    uint64_t x = 1;
    while (mono_ns() - start < c->hog_for_ns)
        for (int i = 0; i < 10000; i++)
            x = x * 6364136223846793005u + 1442695040888963407u;
    c->sink = x;
    c->hog_ran_ns = mono_ns() - start;
    /* Release: pairs with the probe's acquire load. */
    atomic_store_explicit(&c->hog_done, 1, memory_order_release);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void *main_task(void *arg)
{
    ctx *c = arg;
    weft_task tp, th;
    weft_spawn_attr ha = WEFT_SPAWN_ATTR_INIT;
    ha.flags = c->preemptible ? WEFT_PREEMPTIBLE : 0;
    ha.name = "hog";
    if (weft_spawn(NULL, &tp, probe, c, NULL) ||
        weft_spawn(NULL, &th, hog, c, &ha))
        return NULL;
    weft_join(th, NULL);
    weft_join(tp, NULL);
    return c;
}

static int run(const char *name, int preemptible)
{
    ctx c = {0};
    c.preemptible = preemptible;
    c.hog_for_ns = 2e9 * bench_scale();
    c.cap = (long)(c.hog_for_ns / 1e6) + 16;
    c.late = calloc((size_t)c.cap, sizeof(double));
    weft_rt *rt = bench_rt(1, 0);
    void *r = NULL;
    int ok = weft_rt_run(rt, main_task, &c, &r) == 0 && r == &c;
    bench_verbose_stats(rt);
    weft_rt_destroy(rt);
    double p99 = 0;
    if (c.nlate > 0) {
        qsort(c.late, (size_t)c.nlate, sizeof(double), cmp);
        p99 = c.late[(size_t)((double)(c.nlate - 1) * 0.99)];
    } else {
        ok = 0;
    }
    ok = ok && c.hog_ran_ns >= c.hog_for_ns;
    free(c.late);
    return bench_report(name, 1, p99, "ms", ok);
}

int bench_preempt(void)
{
    return run("preempt", 1) | run("preempt_isolate", 0);
}
