/*
 * switch.c - `switch`: one worker; two tasks hand control to each other
 * N = 10,000,000 times in total (each yields, the other runs). Value: ns
 * per switch.
 */
#include "bench.h"

typedef struct {
    weft_rt *rt;
    long half; /* yields per task */
} ctx;

typedef struct {
    long n;
    long done;
} side;

static void *pinger(void *arg)
{
    side *s = arg;
    for (long i = 0; i < s->n; i++) {
        s->done++;
        weft_yield();
    }
    return NULL;
}

static double trial(void *p, int *ok)
{
    ctx *c = p;
    side a = {c->half, 0}, b = {c->half, 0};
    weft_task ta, tb;
    double t0 = bench_now_ns();
    if (weft_spawn(c->rt, &ta, pinger, &a, NULL) ||
        weft_spawn(c->rt, &tb, pinger, &b, NULL)) {
        *ok = 0;
        return 0;
    }
    weft_join(ta, NULL);
    weft_join(tb, NULL);
    double t1 = bench_now_ns();
    if (a.done != c->half || b.done != c->half)
        *ok = 0;
    return (t1 - t0) / (double)(2 * c->half);
}

int bench_switch(void)
{
    ctx c = {bench_rt(1, 0), bench_scaled(10000000) / 2};
    int ok = 1;
    double v = bench_median(trial, &c, &ok);
    weft_rt_destroy(c.rt);
    return bench_report("switch", 1, v, "ns/op", ok);
}
