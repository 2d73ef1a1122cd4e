/*
 * sync.c - the synchronisation workloads.
 *
 * `mutex_contended`: all workers; 4 x workers tasks each lock one shared
 * weft_mutex, increment a shared counter and unlock, N = 100,000 times.
 * Value: total time (spawn to last join) / total lock+unlock pairs, ns.
 * The counter must equal 4 x workers x N.
 *
 * `timer_churn`: one worker; two tasks alternate on two events, each
 * waiting with weft_event_wait_until(own event, now + 1 s), then
 * resetting its event and setting the other's. With one worker the other
 * task cannot run before the setter parks, so every wait finds its event
 * clear: it arms a timer on the worker's heap, parks, is woken by the set
 * and cancels the timer (the deadline is never reached). N = 1,000,000
 * waits in all. Value: total time / N, ns per arm+cancel pair. With only
 * the public API the pair cannot be timed alone: each unit also holds one
 * weft_now_ns(), one event wait (park), one event reset, one event set
 * (claim the waiter and unpark it) and one switch between the two tasks.
 * For scale, the same loop without a deadline (weft_event_wait: no timer)
 * is timed too and printed on stderr; the difference is what the timer
 * arm and cancel add. Checks: no wait timed out, and the runtime counted
 * at least one park per wait (a wait with a future deadline that parks
 * has armed a timer, sync/wait.c).
 */
#include <errno.h>
#include <stdio.h>

#include "bench.h"

/* ---- mutex_contended -------------------------------------------------- */

typedef struct {
    weft_rt *rt;
    int tasks;
    long n;
    weft_mutex m;
    long counter;
    int err;
} mx_ctx;

static void *locker(void *arg)
{
    mx_ctx *c = arg;
    for (long i = 0; i < c->n; i++) {
        if (weft_mutex_lock(&c->m))
            c->err = 1;
        c->counter++;
        if (weft_mutex_unlock(&c->m))
            c->err = 1;
    }
    return NULL;
}

static double mx_trial(void *p, int *ok)
{
    mx_ctx *c = p;
    weft_task t[256];
    c->counter = 0;
    c->err = 0;
    double t0 = bench_now_ns();
    for (int i = 0; i < c->tasks; i++)
        if (weft_spawn(c->rt, &t[i], locker, c, NULL)) {
            t[i] = WEFT_TASK_NULL;
            *ok = 0;
        }
    for (int i = 0; i < c->tasks; i++)
        if (t[i].id)
            weft_join(t[i], NULL);
    double t1 = bench_now_ns();
    if (c->err || c->counter != (long)c->tasks * c->n)
        *ok = 0;
    return (t1 - t0) / ((double)c->tasks * (double)c->n);
}

int bench_mutex_contended(void)
{
    int workers = bench_workers(), ok = 1;
    mx_ctx c = {bench_rt((unsigned)workers, 0),
                4 * workers > 256 ? 256 : 4 * workers,
                bench_scaled(100000),
                WEFT_MUTEX_INIT,
                0,
                0};
    double v = bench_median(mx_trial, &c, &ok);
    bench_verbose_stats(c.rt);
    if (weft_mutex_destroy(&c.m))
        ok = 0;
    weft_rt_destroy(c.rt);
    return bench_report("mutex_contended", workers, v, "ns/op", ok);
}

/* ---- timer_churn ------------------------------------------------------ */

typedef struct {
    weft_rt *rt;
    long rounds; /* per task: waits each of the two does */
    int timed;   /* 1: weft_event_wait_until, 0: weft_event_wait */
    weft_event e[2];
    int err;
} tc_ctx;

typedef struct {
    tc_ctx *c;
    int me;
} tc_arg;

static void *churner(void *arg)
{
    tc_arg *a = arg;
    tc_ctx *c = a->c;
    weft_event *mine = &c->e[a->me], *other = &c->e[!a->me];
    /* Task 1 is parked in its first wait when task 0 starts: task 0 sets
     * first. Each task waits `rounds` times; each wait is answered by the
     * other's set, and task 0's last set is left out (task 1 is done). */
    if (a->me == 0)
        weft_event_set(other);
    for (long i = 0; i < c->rounds; i++) {
        int r = c->timed
                    ? weft_event_wait_until(mine, weft_now_ns() + 1000000000u)
                    : weft_event_wait(mine);
        if (r)
            c->err = 1;
        weft_event_reset(mine);
        if (a->me == 1 || i < c->rounds - 1)
            weft_event_set(other);
    }
    return NULL;
}

static double tc_trial(void *p, int *ok)
{
    tc_ctx *c = p;
    weft_stats s0, s1;
    tc_arg a[2] = {{c, 0}, {c, 1}};
    weft_task t[2];
    c->err = 0;
    weft_event_reset(&c->e[0]);
    weft_event_reset(&c->e[1]);
    weft_stats_get(c->rt, &s0);
    /* Task 1 first, and let it park in its first wait (timer armed) so
     * that no wait finds its event already set. */
    if (weft_spawn(c->rt, &t[1], churner, &a[1], NULL)) {
        *ok = 0;
        return 0;
    }
    do
        weft_stats_get(c->rt, &s1);
    while (s1.parks == s0.parks);
    double t0 = bench_now_ns();
    if (weft_spawn(c->rt, &t[0], churner, &a[0], NULL)) {
        *ok = 0; /* task 1 stays parked: the runtime cannot be destroyed */
        return 0;
    }
    weft_join(t[0], NULL);
    weft_join(t[1], NULL);
    double t1 = bench_now_ns();
    weft_stats_get(c->rt, &s1);
    if (c->err || s1.parks - s0.parks < 2 * (uint64_t)c->rounds)
        *ok = 0;
    return (t1 - t0) / (2.0 * (double)c->rounds);
}

int bench_timer_churn(void)
{
    int ok = 1, ok0 = 1;
    tc_ctx c = {bench_rt(1, 0),
                bench_scaled(500000),
                1,
                {WEFT_EVENT_INIT, WEFT_EVENT_INIT},
                0};
    double v = bench_median(tc_trial, &c, &ok);
    c.timed = 0;
    double v0 = bench_median(tc_trial, &c, &ok0);
    fprintf(stderr,
            "  timer_churn: %.1f ns per timed wait/set, %.1f without a "
            "deadline (%s): the timer adds %.1f ns\n",
            v, v0, ok0 ? "ok" : "FAIL", v - v0);
    bench_verbose_stats(c.rt);
    weft_rt_destroy(c.rt);
    return bench_report("timer_churn", 1, v, "ns/op", ok);
}
