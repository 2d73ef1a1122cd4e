/*
 * yield_many.c - `yield_many`: 2 x workers tasks, each yields N = 200,000
 * times. Value: total time / total yields, ns.
 */
#include "bench.h"

typedef struct {
    weft_rt *rt;
    int tasks;
    long n;
} ctx;

typedef struct {
    long n, done;
} job;

static void *yielder(void *arg)
{
    job *j = arg;
    for (long i = 0; i < j->n; i++) {
        j->done++;
        weft_yield();
    }
    return NULL;
}

static double trial(void *p, int *ok)
{
    ctx *c = p;
    job jobs[64];
    weft_task t[64];
    double t0 = bench_now_ns();
    for (int i = 0; i < c->tasks; i++) {
        jobs[i] = (job){c->n, 0};
        if (weft_spawn(c->rt, &t[i], yielder, &jobs[i], NULL))
            *ok = 0;
    }
    for (int i = 0; i < c->tasks; i++)
        weft_join(t[i], NULL);
    double t1 = bench_now_ns();
    for (int i = 0; i < c->tasks; i++)
        if (jobs[i].done != c->n)
            *ok = 0;
    return (t1 - t0) / (double)(c->tasks * c->n);
}

int bench_yield_many(void)
{
    const int workers = bench_workers();
    ctx c = {bench_rt(workers, 0), 2 * workers, bench_scaled(200000)};
    int ok = 1;
    double v = bench_median(trial, &c, &ok);
    bench_verbose_stats(c.rt);
    weft_rt_destroy(c.rt);
    return bench_report("yield_many", workers, v, "ns/op", ok);
}
