/*
 * chained_spawn.c - `chained_spawn`: a task spawns one child and finishes;
 * the child does the same, N = 100,000 links; the last wakes the waiting
 * thread. Value: ns per link.
 */
#include "bench.h"

typedef struct {
    weft_rt *rt;
    long n;
    bench_done done;
} ctx;

typedef struct {
    ctx *c;
    long left;
} link_arg;

static void *link_fn(void *arg);

static link_arg *args; /* one per link: the argument outlives its spawner */

static void *link_fn(void *arg)
{
    link_arg *a = arg;
    if (a->left == 0) {
        bench_done_signal(&a->c->done);
        return NULL;
    }
    link_arg *next = a + 1;
    next->c = a->c;
    next->left = a->left - 1;
    weft_spawn_attr at = WEFT_SPAWN_ATTR_INIT;
    at.flags = WEFT_DETACHED;
    if (weft_spawn(NULL, NULL, link_fn, next, &at) != 0)
        bench_done_signal(&a->c->done); /* the check below fails */
    return NULL;
}

static double trial(void *p, int *ok)
{
    ctx *c = p;
    bench_done_reset(&c->done);
    args[0].c = c;
    args[0].left = c->n - 1;
    for (long i = 1; i < c->n; i++)
        args[i].left = -1;
    weft_spawn_attr at = WEFT_SPAWN_ATTR_INIT;
    at.flags = WEFT_DETACHED;
    double t0 = bench_now_ns();
    if (weft_spawn(c->rt, NULL, link_fn, &args[0], &at)) {
        *ok = 0;
        return 0;
    }
    bench_done_wait(&c->done);
    double t1 = bench_now_ns();
    if (args[c->n - 1].left != 0)
        *ok = 0;
    return (t1 - t0) / (double)c->n;
}

#include <stdlib.h>

int bench_chained_spawn(void)
{
    ctx c = {.n = bench_scaled(100000)};
    int workers = bench_workers();
    c.rt = bench_rt((unsigned)workers, 0);
    args = calloc((size_t)c.n, sizeof *args);
    int ok = args != NULL;
    double v = ok ? bench_median(trial, &c, &ok) : 0;
    weft_rt_destroy(c.rt);
    free(args);
    return bench_report("chained_spawn", workers, v, "ns/op", ok);
}
