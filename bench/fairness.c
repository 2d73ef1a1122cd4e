/*
 * fairness.c - `fairness`: one worker; CPU-bound tasks in all four
 * priority bands, two per band (one computing ~20 us per poll, one ~50
 * us), each yielding after every poll, for a fixed run (400 ms x
 * BENCH_SCALE, at least 50 ms). The share of a band is its tasks' CPU
 * time (the worker thread's CPU clock, read inside the polls, so time the
 * kernel takes the thread away is nobody's) over all tasks' CPU time; the
 * configured share is band_weight[b] / sum (8:4:2:1). Value: the worst
 * band's measured share / configured share (the one farthest from 1.0),
 * median of 5 runs; check=ok when it is within 10 %.
 *
 * `fairness` runs the default rule (deficit round robin);
 * `fairness_lottery` the lottery rule (same measure).
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

#define BANDS 4
#define PER_BAND 2

static const int prio_of_band[BANDS] = {WEFT_PRIO_CRITICAL, WEFT_PRIO_HIGH,
                                        WEFT_PRIO_NORMAL, WEFT_PRIO_LOW};
static const double weight[BANDS] = {8, 4, 2, 1};

typedef struct {
    weft_rt *rt;
    uint64_t run_ns;
} ctx;

typedef struct {
    _Atomic uint64_t ns[BANDS];
    _Atomic long polls[BANDS];
    _Atomic int stop;
} run;

typedef struct {
    run *r;
    int band;
    uint64_t poll_ns;
} job;

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *hog(void *arg)
{
    job *j = arg;
    while (!atomic_load_explicit(&j->r->stop, memory_order_relaxed)) {
        uint64_t t0 = cpu_ns(), t1;
        do
            t1 = cpu_ns();
        while (t1 - t0 < j->poll_ns);
        atomic_fetch_add_explicit(&j->r->ns[j->band], t1 - t0,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&j->r->polls[j->band], 1,
                                  memory_order_relaxed);
        weft_yield();
    }
    return NULL;
}

static double trial(void *p, int *ok)
{
    ctx *c = p;
    run r;
    job jobs[BANDS * PER_BAND];
    weft_task t[BANDS * PER_BAND];
    for (int b = 0; b < BANDS; b++) {
        atomic_init(&r.ns[b], 0);
        atomic_init(&r.polls[b], 0);
    }
    atomic_init(&r.stop, 0);
    for (int k = 0; k < BANDS * PER_BAND; k++) {
        weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
        a.priority = prio_of_band[k / PER_BAND];
        jobs[k] = (job){&r, k / PER_BAND, k % 2 ? 50000 : 20000};
        if (weft_spawn(c->rt, &t[k], hog, &jobs[k], &a)) {
            *ok = 0;
            return 0;
        }
    }
    struct timespec d = {(time_t)(c->run_ns / 1000000000u),
                         (long)(c->run_ns % 1000000000u)};
    nanosleep(&d, NULL);
    atomic_store(&r.stop, 1);
    for (int k = 0; k < BANDS * PER_BAND; k++)
        weft_join(t[k], NULL);
    double total = 0, wsum = 0, worst = 1.0;
    long polls = 0;
    for (int b = 0; b < BANDS; b++) {
        total += (double)atomic_load(&r.ns[b]);
        polls += atomic_load(&r.polls[b]);
        wsum += weight[b];
    }
    for (int b = 0; b < BANDS; b++) {
        double ratio =
            (double)atomic_load(&r.ns[b]) / total / (weight[b] / wsum);
        if (fabs(ratio - 1.0) > fabs(worst - 1.0))
            worst = ratio;
        if (getenv("BENCH_VERBOSE"))
            fprintf(stderr,
                    "  band %d: cpu share %.4f (configured %.4f), polls "
                    "%ld of %ld\n",
                    b, (double)atomic_load(&r.ns[b]) / total, weight[b] / wsum,
                    atomic_load(&r.polls[b]), polls);
    }
    return worst;
}

static int one(const char *name, int rule)
{
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 1;
    cfg.fairness = rule;
    weft_rt *rt;
    if (weft_rt_create(&rt, &cfg)) {
        fprintf(stderr, "weft-bench: weft_rt_create: %s\n", weft_last_error());
        exit(2);
    }
    uint64_t run_ns = (uint64_t)(400e6 * bench_scale());
    ctx c = {rt, run_ns < 50000000u ? 50000000u : run_ns};
    int ok = 1;
    double v = bench_median(trial, &c, &ok);
    weft_rt_destroy(rt);
    if (fabs(v - 1.0) > 0.10)
        ok = 0;
    return bench_report(name, 1, v, "ratio", ok);
}

int bench_fairness(void)
{
    /* -1: the preset's rule, deficit round robin. */
    int rc = one("fairness", -1);
    rc |= one("fairness_lottery", WEFT_FAIR_LOTTERY);
    return rc;
}
