/*
 * spawn.c - `spawn`: one task spawns N = 1,000,000 empty tasks, then waits
 * until all have finished. Value: ns per task (spawned, run and
 * finished). Two ways to wait:
 *  - `spawn`: the spawner keeps each task's handle and joins them all, the
 *    runtime's own way to wait for its tasks (as the Tokio peer awaits
 *    its join handles; OpenMP's taskwait);
 *  - `spawn_detached`: the tasks are detached; each counts itself on one
 *    shared counter and the last one wakes the waiting thread. Every task
 *    that runs on another worker than the last one moves that counter's
 *    cache line: at two workers this costs more than the spawn itself
 *    (docs/decisions/0013-fork-join.md, "spawn's two modes").
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "bench.h"

typedef struct {
    weft_rt *rt;
    long n;
    _Atomic long finished;
    bench_done done;
    weft_task *handles; /* spawn: [n] */
} ctx;

static void *nothing(void *arg)
{
    return arg;
}

/* Spawn n joinable tasks, then join each; 1 on any failure. */
static void *spawn_join(void *arg)
{
    ctx *c = arg;
    for (long i = 0; i < c->n; i++)
        if (weft_spawn(NULL, &c->handles[i], nothing, NULL, NULL) != 0)
            return (void *)1;
    for (long i = 0; i < c->n; i++)
        if (weft_join(c->handles[i], NULL) != 0)
            return (void *)1;
    return NULL;
}

static double trial_join(void *p, int *ok)
{
    ctx *c = p;
    double t0 = bench_now_ns();
    void *r = (void *)1;
    if (weft_rt_run(c->rt, spawn_join, c, &r) || r)
        *ok = 0;
    double t1 = bench_now_ns();
    return (t1 - t0) / (double)c->n;
}

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
    c.handles = malloc((size_t)c.n * sizeof *c.handles);
    int ok = c.handles != NULL;
    double v = ok ? bench_median(trial_join, &c, &ok) : 0;
    bench_verbose_stats(c.rt);
    weft_rt_destroy(c.rt);
    free(c.handles);
    return bench_report("spawn", workers, v, "ns/op", ok);
}

int bench_spawn_detached(void)
{
    ctx c = {.n = bench_scaled(1000000)};
    int workers = bench_workers();
    c.rt = bench_rt((unsigned)workers, (uint32_t)c.n + 64);
    int ok = 1;
    double v = bench_median(trial, &c, &ok);
    bench_verbose_stats(c.rt);
    weft_rt_destroy(c.rt);
    return bench_report("spawn_detached", workers, v, "ns/op", ok);
}
