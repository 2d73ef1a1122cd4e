/*
 * spawn.c - `spawn`: one task spawns N = 1,000,000 empty tasks, then the
 * run waits until all have finished. Value: ns per task (spawned, run and
 * finished). The tasks are detached; each counts itself and the last one
 * wakes the waiting thread.
 */
#include <stdatomic.h>

#include "bench.h"

typedef struct {
    weft_rt *rt;
    long n;
    _Atomic long finished;
    bench_done done;
} ctx;

static void *empty(void *arg)
{
    ctx *c = arg;
    if (atomic_fetch_add_explicit(&c->finished, 1, memory_order_relaxed) + 1 ==
        c->n)
        bench_done_signal(&c->done);
    return NULL;
}

static void *spawner(void *arg)
{
    ctx *c = arg;
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.flags = WEFT_DETACHED;
    for (long i = 0; i < c->n; i++)
        if (weft_spawn(NULL, NULL, empty, c, &a) != 0)
            return (void *)1;
    return NULL;
}

static double trial(void *p, int *ok)
{
    ctx *c = p;
    atomic_store(&c->finished, 0);
    bench_done_reset(&c->done);
    weft_task t;
    double t0 = bench_now_ns();
    if (weft_spawn(c->rt, &t, spawner, c, NULL)) {
        *ok = 0;
        return 0;
    }
    bench_done_wait(&c->done);
    double t1 = bench_now_ns();
    void *r;
    if (weft_join(t, &r) || r || atomic_load(&c->finished) != c->n)
        *ok = 0;
    return (t1 - t0) / (double)c->n;
}

int bench_spawn(void)
{
    ctx c = {.n = bench_scaled(1000000)};
    int workers = bench_workers();
    c.rt = bench_rt((unsigned)workers, (uint32_t)c.n + 64);
    int ok = 1;
    double v = bench_median(trial, &c, &ok);
    bench_verbose_stats(c.rt);
    weft_rt_destroy(c.rt);
    return bench_report("spawn", workers, v, "ns/op", ok);
}
